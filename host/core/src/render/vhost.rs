//! The :80 / :443 ACL blocks of one service (marathon-lb's
//! `generateHttpVhostAcl`), including map mode and the per-vhost pieces of
//! `--group-https-by-vhost`: renders the steps `vhost_plan` decides.

use std::borrow::Cow;

use mlb_model::Service;

use super::parts::{GroupedVhost, Parts, Shared, VhostParts};
use super::vhost_plan::{Acl, MapSide, Routing, Sink, Step, Var, plan};
use super::{RenderSettings, Renderer, TemplateFailure, sanitize};

/// The values of the [`Var`]s for one service.
struct Values<'a> {
    service: &'a Service,
    acl: String,
    haproxy_dir: &'a str,
}

impl<'a> Values<'a> {
    fn new(s: &'a Service, settings: &'a RenderSettings) -> Self {
        let first = s
            .hostname
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .next()
            .unwrap_or_default();
        let app_short = s.app_id.get(1..).unwrap_or("").replace('/', "_");
        Self {
            service: s,
            acl: format!("{}_{app_short}", sanitize(first)),
            haproxy_dir: &settings.haproxy_dir,
        }
    }

    fn get(&self, var: Var, vhost: &'a str) -> &str {
        let s = self.service;
        match var {
            Var::Path => s.path.as_deref().unwrap_or_default(),
            Var::Acl => &self.acl,
            Var::Host => vhost,
            Var::Realm => s.auth.as_ref().map_or("", |a| a.realm.as_str()),
            Var::Backend => &s.backend,
            Var::AppId => &s.app_id,
            Var::BindAddr => &s.bind_addr,
            Var::HaproxyDir => self.haproxy_dir,
        }
    }
}

impl Renderer {
    /// Render the vhost routing of `s` (which has a non-empty hostname):
    /// the steps of its [`plan`], in order.
    pub(crate) fn vhost_acls(
        &mut self,
        s: &Service,
        settings: &RenderSettings,
        shared: &Shared,
        parts: &mut Parts,
    ) -> Result<VhostParts, TemplateFailure> {
        let values = Values::new(s, settings);
        let mut v = VhostParts {
            weight: s.backend_weight,
            ..VhostParts::default()
        };
        // The :443 lines shared by every vhost (Sink::HttpsShared).
        let mut head = String::new();
        for step in plan(&Routing::of(s, settings, shared)) {
            match step {
                Step::Tls(vhost) => add_tls_settings(&mut v, vhost, s),
                Step::ShareHead(vhost) => push_chunk(&mut v, vhost, head.clone()),
                Step::ClaimMap(side) => {
                    v.weight = -1;
                    match side {
                        MapSide::Http => parts.claims_map_http = true,
                        MapSide::Https => parts.claims_map_https = true,
                    }
                }
                Step::DomainEntry(vhost) => {
                    parts
                        .domain_entries
                        .push((vhost.to_owned(), s.backend.clone()));
                }
                Step::Emit(acl) => self.emit_acl(s, &values, acl, &mut v, &mut head)?,
            }
        }
        Ok(v)
    }

    /// Render one planned ACL into its sink.
    fn emit_acl<'a>(
        &mut self,
        s: &Service,
        values: &Values<'a>,
        acl: Acl<'a>,
        v: &mut VhostParts,
        head: &mut String,
    ) -> Result<(), TemplateFailure> {
        let vars = acl
            .vars
            .iter()
            .map(|var| (var.name(), Cow::Borrowed(values.get(*var, acl.vhost))))
            .collect();
        match acl.sink {
            Sink::Http => self.emit(&mut v.http, s, acl.template, vars),
            Sink::HttpsShared => {
                let start = v.https.len();
                self.emit(&mut v.https, s, acl.template, vars)?;
                head.push_str(&v.https[start..]);
                Ok(())
            }
            Sink::Https(vhost) => {
                let mut chunk = String::new();
                self.emit(&mut chunk, s, acl.template, vars)?;
                v.https.push_str(&chunk);
                push_chunk(v, vhost, chunk);
                Ok(())
            }
        }
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
