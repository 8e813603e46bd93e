//! The :80 / :443 ACL blocks of one service (marathon-lb's
//! `generateHttpVhostAcl`), including map mode and the per-vhost pieces of
//! `--group-https-by-vhost`.

use mlb_model::Service;

use super::parts::{GroupedVhost, Parts, Shared, VhostParts};
use super::service::vars;
use super::{RenderSettings, Renderer, TemplateFailure, sanitize};

impl Renderer {
    /// Render the vhost routing of `s` (which has a non-empty hostname).
    pub(crate) fn vhost_acls(
        &mut self,
        s: &Service,
        settings: &RenderSettings,
        shared: &Shared,
        parts: &mut Parts,
    ) -> Result<VhostParts, TemplateFailure> {
        let hostname = s.hostname.clone().unwrap_or_default();
        let backend = s.backend.clone();
        let app_id = s.app_id.clone();
        let app_short = app_id.get(1..).unwrap_or("").replace('/', "_");
        let path = s.path.clone().filter(|p| !p.is_empty());
        let realm = s
            .auth
            .as_ref()
            .map(|a| a.realm.clone())
            .filter(|r| !r.is_empty());
        let map = settings.haproxy_map;
        let dir = settings.haproxy_dir.clone();
        let bind_addr = s.bind_addr.clone();
        let mut map_http_done = shared.map_http_done;
        let mut map_https_done = shared.map_https_done;
        let mut v = VhostParts {
            weight: s.backend_weight,
            ..VhostParts::default()
        };
        let mut http = String::new();
        let mut https = String::new();

        if hostname.contains(',') {
            let vhosts: Vec<&str> = hostname.split(',').collect();
            let acl = format!("{}_{app_short}", sanitize(vhosts[0]));
            if let Some(path) = &path {
                if let Some(realm) = &realm {
                    self.emit(&mut http, s, "HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH", "HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH",
                        vars! {"path" => path.as_str(), "cleanedUpHostname" => acl.as_str(), "hostname" => vhosts[0], "realm" => realm.as_str(), "backend" => backend.as_str()})?;
                    self.emit(&mut https, s, "HTTPS_FRONTEND_ACL_ONLY_WITH_PATH", "HTTPS_FRONTEND_ACL_ONLY_WITH_PATH",
                        vars! {"path" => path.as_str(), "cleanedUpHostname" => acl.as_str(), "hostname" => vhosts[0], "realm" => realm.as_str(), "backend" => backend.as_str()})?;
                } else {
                    self.emit(
                        &mut http,
                        s,
                        "HTTP_FRONTEND_ACL_ONLY_WITH_PATH",
                        "HTTP_FRONTEND_ACL_ONLY_WITH_PATH",
                        vars! {"path" => path.as_str(), "backend" => backend.as_str()},
                    )?;
                    self.emit(
                        &mut https,
                        s,
                        "HTTPS_FRONTEND_ACL_ONLY_WITH_PATH",
                        "HTTPS_FRONTEND_ACL_ONLY_WITH_PATH",
                        vars! {"path" => path.as_str(), "backend" => backend.as_str()},
                    )?;
                }
            }
            let head = https.clone();
            for vhost in vhosts {
                push_chunk(&mut v, vhost, head.clone());
                add_tls_settings(&mut v, vhost, s);

                if map && path.is_none() && realm.is_none() && !s.redirect_to_https {
                    if !map_http_done {
                        v.weight = -1;
                        self.emit(
                            &mut http,
                            s,
                            "MAP_HTTP_FRONTEND_ACL_ONLY",
                            "HTTP_FRONTEND_ACL_ONLY",
                            vars! {"haproxy_dir" => dir.as_str()},
                        )?;
                        map_http_done = true;
                        parts.claims_map_http = true;
                    }
                    parts
                        .domain_entries
                        .push((vhost.to_owned(), backend.clone()));
                } else {
                    self.emit(
                        &mut http,
                        s,
                        "HTTP_FRONTEND_ACL_ONLY",
                        "HTTP_FRONTEND_ACL_ONLY",
                        vars! {"cleanedUpHostname" => acl.as_str(), "hostname" => vhost},
                    )?;
                }

                let mut chunk = String::new();
                if path.is_some() {
                    if let Some(realm) = &realm {
                        self.emit(&mut chunk, s, "HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH", "HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH",
                            vars! {"cleanedUpHostname" => acl.as_str(), "hostname" => vhost, "appId" => app_id.as_str(), "realm" => realm.as_str(), "backend" => backend.as_str()})?;
                    } else {
                        self.emit(&mut chunk, s, "HTTPS_FRONTEND_ACL_WITH_PATH", "HTTPS_FRONTEND_ACL_WITH_PATH",
                            vars! {"cleanedUpHostname" => acl.as_str(), "hostname" => vhost, "appId" => app_id.as_str(), "backend" => backend.as_str()})?;
                    }
                } else if let Some(realm) = &realm {
                    self.emit(&mut chunk, s, "HTTPS_FRONTEND_ACL_WITH_AUTH", "HTTPS_FRONTEND_ACL_WITH_AUTH",
                        vars! {"cleanedUpHostname" => acl.as_str(), "hostname" => vhost, "appId" => app_id.as_str(), "realm" => realm.as_str(), "backend" => backend.as_str()})?;
                } else if map {
                    if !map_https_done {
                        v.weight = -1;
                        self.emit(
                            &mut chunk,
                            s,
                            "MAP_HTTPS_FRONTEND_ACL",
                            "HTTPS_FRONTEND_ACL",
                            vars! {"hostname" => vhost, "haproxy_dir" => dir.as_str()},
                        )?;
                        map_https_done = true;
                        parts.claims_map_https = true;
                    } else {
                        parts
                            .domain_entries
                            .push((vhost.to_owned(), backend.clone()));
                        continue;
                    }
                    parts
                        .domain_entries
                        .push((vhost.to_owned(), backend.clone()));
                } else {
                    self.emit(&mut chunk, s, "HTTPS_FRONTEND_ACL", "HTTPS_FRONTEND_ACL",
                        vars! {"cleanedUpHostname" => acl.as_str(), "hostname" => vhost, "appId" => app_id.as_str(), "backend" => backend.as_str()})?;
                }
                https.push_str(&chunk);
                push_chunk(&mut v, vhost, chunk);
            }

            if s.redirect_to_https {
                if path.is_some() {
                    self.emit(&mut http, s, "BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH", "BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH",
                        vars! {"bindAddr" => bind_addr.as_str(), "cleanedUpHostname" => acl.as_str(), "backend" => backend.as_str()})?;
                } else {
                    self.emit(&mut http, s, "BACKEND_REDIRECT_HTTP_TO_HTTPS", "BACKEND_REDIRECT_HTTP_TO_HTTPS",
                        vars! {"bindAddr" => bind_addr.as_str(), "cleanedUpHostname" => acl.as_str()})?;
                }
            } else if path.is_some() {
                if let Some(realm) = &realm {
                    self.emit(&mut http, s, "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH", "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH",
                        vars! {"cleanedUpHostname" => acl.as_str(), "realm" => realm.as_str(), "backend" => backend.as_str()})?;
                } else {
                    self.emit(
                        &mut http,
                        s,
                        "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH",
                        "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH",
                        vars! {"cleanedUpHostname" => acl.as_str(), "backend" => backend.as_str()},
                    )?;
                }
            } else if let Some(realm) = &realm {
                self.emit(&mut http, s, "HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH", "HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH",
                    vars! {"cleanedUpHostname" => acl.as_str(), "realm" => realm.as_str(), "backend" => backend.as_str()})?;
            } else if !map {
                self.emit(
                    &mut http,
                    s,
                    "HTTP_FRONTEND_ROUTING_ONLY",
                    "HTTP_FRONTEND_ROUTING_ONLY",
                    vars! {"cleanedUpHostname" => acl.as_str(), "backend" => backend.as_str()},
                )?;
            }
        } else {
            let vhost = hostname.as_str();
            let acl = format!("{}_{app_short}", sanitize(vhost));
            add_tls_settings(&mut v, vhost, s);
            if let Some(path) = &path {
                if s.redirect_to_https {
                    self.emit(
                        &mut http,
                        s,
                        "HTTP_FRONTEND_ACL_ONLY",
                        "HTTP_FRONTEND_ACL_ONLY",
                        vars! {"cleanedUpHostname" => acl.as_str(), "hostname" => vhost},
                    )?;
                    self.emit(&mut http, s, "HTTP_FRONTEND_ACL_ONLY_WITH_PATH", "HTTP_FRONTEND_ACL_ONLY_WITH_PATH",
                        vars! {"cleanedUpHostname" => acl.as_str(), "hostname" => vhost, "path" => path.as_str(), "backend" => backend.as_str()})?;
                    self.emit(&mut http, s, "BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH", "BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH",
                        vars! {"bindAddr" => bind_addr.as_str(), "cleanedUpHostname" => acl.as_str(), "backend" => backend.as_str()})?;
                } else if let Some(realm) = &realm {
                    self.emit(&mut http, s, "HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH", "HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH",
                        vars! {"cleanedUpHostname" => acl.as_str(), "hostname" => vhost, "path" => path.as_str(), "appId" => app_id.as_str(), "realm" => realm.as_str(), "backend" => backend.as_str()})?;
                } else {
                    self.emit(&mut http, s, "HTTP_FRONTEND_ACL_WITH_PATH", "HTTP_FRONTEND_ACL_WITH_PATH",
                        vars! {"cleanedUpHostname" => acl.as_str(), "hostname" => vhost, "path" => path.as_str(), "appId" => app_id.as_str(), "backend" => backend.as_str()})?;
                }
                let mut chunk = String::new();
                self.emit(
                    &mut chunk,
                    s,
                    "HTTPS_FRONTEND_ACL_ONLY_WITH_PATH",
                    "HTTPS_FRONTEND_ACL_ONLY_WITH_PATH",
                    vars! {"path" => path.as_str(), "backend" => backend.as_str()},
                )?;
                https.push_str(&chunk);
                push_chunk(&mut v, vhost, chunk);
                let mut chunk = String::new();
                if let Some(realm) = &realm {
                    self.emit(&mut chunk, s, "HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH", "HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH",
                        vars! {"cleanedUpHostname" => acl.as_str(), "hostname" => vhost, "path" => path.as_str(), "appId" => app_id.as_str(), "realm" => realm.as_str(), "backend" => backend.as_str()})?;
                } else {
                    self.emit(&mut chunk, s, "HTTPS_FRONTEND_ACL_WITH_PATH", "HTTPS_FRONTEND_ACL_WITH_PATH",
                        vars! {"cleanedUpHostname" => acl.as_str(), "hostname" => vhost, "appId" => app_id.as_str(), "backend" => backend.as_str()})?;
                }
                https.push_str(&chunk);
                push_chunk(&mut v, vhost, chunk);
            } else {
                if s.redirect_to_https {
                    self.emit(&mut http, s, "HTTP_FRONTEND_ACL", "HTTP_FRONTEND_ACL",
                        vars! {"cleanedUpHostname" => acl.as_str(), "hostname" => vhost, "backend" => backend.as_str()})?;
                    self.emit(&mut http, s, "BACKEND_REDIRECT_HTTP_TO_HTTPS", "BACKEND_REDIRECT_HTTP_TO_HTTPS",
                        vars! {"bindAddr" => bind_addr.as_str(), "cleanedUpHostname" => acl.as_str()})?;
                } else if let Some(realm) = &realm {
                    self.emit(&mut http, s, "HTTP_FRONTEND_ACL_WITH_AUTH", "HTTP_FRONTEND_ACL_WITH_AUTH",
                        vars! {"cleanedUpHostname" => acl.as_str(), "hostname" => vhost, "appId" => app_id.as_str(), "realm" => realm.as_str(), "backend" => backend.as_str()})?;
                } else if map {
                    if !map_http_done {
                        v.weight = -1;
                        self.emit(
                            &mut http,
                            s,
                            "MAP_HTTP_FRONTEND_ACL",
                            "HTTP_FRONTEND_ACL",
                            vars! {"haproxy_dir" => dir.as_str()},
                        )?;
                        parts.claims_map_http = true;
                    }
                    parts
                        .domain_entries
                        .push((vhost.to_owned(), backend.clone()));
                } else {
                    self.emit(&mut http, s, "HTTP_FRONTEND_ACL", "HTTP_FRONTEND_ACL",
                        vars! {"cleanedUpHostname" => acl.as_str(), "hostname" => vhost, "appId" => app_id.as_str(), "backend" => backend.as_str()})?;
                }
                let mut chunk = String::new();
                if let Some(realm) = &realm {
                    self.emit(&mut chunk, s, "HTTPS_FRONTEND_ACL_WITH_AUTH", "HTTPS_FRONTEND_ACL_WITH_AUTH",
                        vars! {"cleanedUpHostname" => acl.as_str(), "hostname" => vhost, "appId" => app_id.as_str(), "realm" => realm.as_str(), "backend" => backend.as_str()})?;
                } else if map {
                    parts
                        .domain_entries
                        .push((vhost.to_owned(), backend.clone()));
                    if map_https_done {
                        v.http = http;
                        v.https = https;
                        return Ok(v);
                    }
                    v.weight = -1;
                    self.emit(
                        &mut chunk,
                        s,
                        "MAP_HTTPS_FRONTEND_ACL",
                        "HTTPS_FRONTEND_ACL",
                        vars! {"hostname" => vhost, "haproxy_dir" => dir.as_str()},
                    )?;
                    parts.claims_map_https = true;
                } else {
                    self.emit(&mut chunk, s, "HTTPS_FRONTEND_ACL", "HTTPS_FRONTEND_ACL",
                        vars! {"cleanedUpHostname" => acl.as_str(), "hostname" => vhost, "appId" => app_id.as_str(), "backend" => backend.as_str()})?;
                }
                https.push_str(&chunk);
                push_chunk(&mut v, vhost, chunk);
            }
        }
        v.http = http;
        v.https = https;
        Ok(v)
    }
}

/// The grouped-https entry of `vhost` (created on first use, like the
/// original's `defaultdict`).
fn grouped<'a>(v: &'a mut VhostParts, vhost: &str) -> &'a mut GroupedVhost {
    v.grouped.entry(vhost.to_owned()).or_default()
}

/// Add an :443 chunk for `vhost` at the service's current weight.
fn push_chunk(v: &mut VhostParts, vhost: &str, chunk: String) {
    let weight = v.weight;
    grouped(v, vhost).chunks.push((weight, chunk));
}

/// Record the service's `SSL_CERT` / `BIND_OPTIONS` for `vhost`'s TLS frontend.
fn add_tls_settings(v: &mut VhostParts, vhost: &str, s: &Service) {
    if let Some(cert) = &s.ssl_cert {
        grouped(v, vhost).certs.insert(cert.clone());
    }
    if let Some(opts) = &s.bind_options {
        grouped(v, vhost).bind_options.insert(opts.clone());
    }
}
