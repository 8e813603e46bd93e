//! One service's frontend, backend and :9091 pieces.

use mlb_model::{Server, Service, ServiceHealthCheck};
use sha1::{Digest, Sha1};

use super::parts::{Parts, Shared};
use super::{RenderSettings, Renderer, TemplateFailure, sanitize};
use crate::engine::EngineError;
use crate::templates::TemplateName as T;
use crate::validate::check_sections;

/// Build a variable list for a template render.
macro_rules! vars {
    ($($name:literal => $value:expr),* $(,)?) => {
        vec![$(($name, ::std::borrow::Cow::from($value))),*]
    };
}

/// Python's `str()` of an optional string: `None` when absent.
pub(crate) fn py_opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "None".to_owned())
}

fn py_opt_int(v: Option<i64>) -> String {
    v.map_or_else(|| "None".to_owned(), |v| v.to_string())
}

impl Renderer {
    /// The text of template `name` for `service`: its label override, else
    /// the global template.
    pub(crate) fn text_for<'a>(&'a self, service: &'a Service, name: T) -> (&'a str, bool) {
        match service.template(name.as_str()) {
            Some(t) => (t, true),
            None => (self.templates.get(name), false),
        }
    }

    /// Render template `name` for `service` into `out`; the per-service
    /// label that overrides it is [`T::label`] (differs for the MAP_*
    /// templates).
    pub(crate) fn emit(
        &mut self,
        out: &mut String,
        service: &Service,
        name: T,
        vars: crate::engine::Vars<'_>,
    ) -> Result<(), TemplateFailure> {
        let label = name.label();
        let (text, from_label) = match service.template(label.as_str()) {
            Some(t) => (t, true),
            None => (self.templates.get(name), false),
        };
        let start = out.len();
        self.engine
            .render_into_with(out, text, &vars, &service.vars)
            .and_then(|()| {
                check_sections(name, &service.backend, &out[start..])
                    .map_err(EngineError::Structure)
            })
            .map_err(|error| {
                out.truncate(start);
                TemplateFailure {
                    template: if from_label { label } else { name },
                    from_label,
                    error,
                }
            })
    }

    /// Append raw template `name` (label override or global) to `out`.
    pub(crate) fn emit_raw(
        &self,
        out: &mut String,
        service: &Service,
        name: T,
    ) -> Result<(), TemplateFailure> {
        let (text, from_label) = self.text_for(service, name);
        check_sections(name, &service.backend, text).map_err(|e| TemplateFailure {
            template: name,
            from_label,
            error: EngineError::Structure(e),
        })?;
        out.push_str(text);
        Ok(())
    }

    /// Render everything `service` contributes.
    pub(crate) fn render_service(
        &mut self,
        service: &Service,
        settings: &RenderSettings,
        shared: &Shared,
    ) -> Result<Parts, TemplateFailure> {
        let mut parts = Parts::default();
        let backend = service.backend.as_str();

        if let Some(auth) = service.auth.as_ref().filter(|a| !a.user.is_empty()) {
            self.emit(
                &mut parts.userlist,
                service,
                T::USERLIST_HEAD,
                vars! {
                    "backend" => backend,
                    "user" => auth.user.as_str(),
                    "passwd" => auth.password.as_str(),
                },
            )?;
        }

        let ssl_cert = service.ssl_cert.as_deref().filter(|c| !c.is_empty());
        let bind_options = service.bind_options.as_deref().filter(|o| !o.is_empty());
        self.emit(
            &mut parts.frontend,
            service,
            T::FRONTEND_HEAD,
            vars! {
                "bindAddr" => service.bind_addr.as_str(),
                "backend" => backend,
                "servicePort" => service.service_port.to_string(),
                "mode" => service.mode.as_str(),
                "sslCert" => ssl_cert.map(|c| format!(" ssl crt {c}")).unwrap_or_default(),
                "bindOptions" => bind_options.map(|o| format!(" {o}")).unwrap_or_default(),
            },
        )?;

        self.emit(
            &mut parts.backend,
            service,
            T::BACKEND_HEAD,
            vars! {
                "backend" => backend,
                "balance" => service.balance.as_str(),
                "mode" => service.mode.as_str(),
            },
        )?;

        let has_vhost = service.hostname.as_deref().is_some_and(|h| !h.is_empty());
        if settings.bind_http_https && has_vhost {
            parts.vhost = Some(self.vhost_acls(service, settings, shared, &mut parts)?);
        }

        if service.mode == "http" && !shared.appids.contains(&service.app_id) {
            parts.appid = Some(service.app_id.clone());
            if settings.haproxy_map {
                if !shared.map_appid_done {
                    self.emit(
                        &mut parts.appid_acl,
                        service,
                        T::MAP_HTTP_FRONTEND_APPID_ACL,
                        vars! {"haproxy_dir" => settings.haproxy_dir.as_str()},
                    )?;
                    parts.claims_map_appid = true;
                }
                parts
                    .app_entries
                    .push((service.app_id.clone(), backend.to_owned()));
            } else {
                self.emit(
                    &mut parts.appid_acl,
                    service,
                    T::HTTP_FRONTEND_APPID_ACL,
                    vars! {
                        "cleanedUpAppId" => sanitize(&service.app_id),
                        "hostname" => py_opt(&service.hostname),
                        "appId" => service.app_id.as_str(),
                        "backend" => backend,
                    },
                )?;
            }
        }

        self.backend_body(service, &mut parts)?;
        push_snippets(&mut parts.backend, &service.backend_snippets);
        push_snippets(&mut parts.frontend, &service.frontend_snippets);
        self.emit(
            &mut parts.frontend,
            service,
            T::FRONTEND_BACKEND_GLUE,
            vars! {"backend" => backend},
        )?;
        self.servers(service, &mut parts.backend)?;
        Ok(parts)
    }

    fn backend_body(
        &mut self,
        service: &Service,
        parts: &mut Parts,
    ) -> Result<(), TemplateFailure> {
        let out = &mut parts.backend;
        let hostname = py_opt(&service.hostname);
        if service.mode == "http" {
            if service.use_hsts {
                self.emit_raw(out, service, T::BACKEND_HSTS_OPTIONS)?;
            }
            self.emit_raw(out, service, T::BACKEND_HTTP_OPTIONS)?;
            if let Some(path) = service.proxypath.as_deref().filter(|p| !p.is_empty()) {
                self.emit(
                    out,
                    service,
                    T::HTTP_BACKEND_PROXYPASS_GLUE,
                    vars! {"hostname" => hostname.as_str(), "proxypath" => path},
                )?;
            }
            if let Some(path) = service.revproxypath.as_deref().filter(|p| !p.is_empty()) {
                self.emit(
                    out,
                    service,
                    T::HTTP_BACKEND_REVPROXY_GLUE,
                    vars! {"hostname" => hostname.as_str(), "rootpath" => path},
                )?;
            }
            if let Some(path) = service.redirpath.as_deref().filter(|p| !p.is_empty()) {
                self.emit(
                    out,
                    service,
                    T::HTTP_BACKEND_REDIR,
                    vars! {"hostname" => hostname.as_str(), "redirpath" => path},
                )?;
            }
        }
        if let Some(networks) = service.network_allowed.as_deref().filter(|n| !n.is_empty()) {
            let templates = match service.mode.as_str() {
                "http" => Some((
                    T::HTTP_BACKEND_NETWORK_ALLOWED_ACL,
                    T::HTTP_BACKEND_ACL_ALLOW_DENY,
                )),
                "tcp" => Some((
                    T::TCP_BACKEND_NETWORK_ALLOWED_ACL,
                    T::TCP_BACKEND_ACL_ALLOW_DENY,
                )),
                _ => None,
            };
            if let Some((acl, allow_deny)) = templates {
                for network in networks.split_whitespace() {
                    self.emit(out, service, acl, vars! {"network_allowed" => network})?;
                }
                out.push_str(self.templates.get(allow_deny));
            }
        }
        if service.sticky {
            self.emit_raw(out, service, T::BACKEND_STICKY_OPTIONS)?;
        }
        Ok(())
    }

    fn servers(&mut self, service: &Service, out: &mut String) -> Result<(), TemplateFailure> {
        let check = service.health_check.as_ref();
        // TCP templates for tcp mode or TCP checks, HTTP templates for http mode.
        let kind = check.and_then(|c| {
            if service.mode == "tcp" || c.protocol == "TCP" || c.protocol == "MESOS_TCP" {
                Some((
                    T::BACKEND_TCP_HEALTHCHECK_OPTIONS,
                    T::BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS,
                ))
            } else if service.mode == "http" {
                Some((
                    T::BACKEND_HTTP_HEALTHCHECK_OPTIONS,
                    T::BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS,
                ))
            } else {
                None
            }
        });
        if let (Some(check), Some((backend_tpl, _))) = (check, kind)
            && !self.text_for(service, backend_tpl).0.is_empty()
        {
            self.emit(
                out,
                service,
                backend_tpl,
                health_vars(check, check.backend_port),
            )?;
        }
        let server_tpl = kind.map(|(_, server_tpl)| {
            let text = self.text_for(service, server_tpl).0.trim();
            let text = if text.is_empty() {
                String::new()
            } else {
                format!(" {text}")
            };
            (server_tpl, text)
        });
        for server in &service.servers {
            let mut health = String::new();
            if let (Some(check), Some((name, text))) = (check, &server_tpl)
                && !text.is_empty()
            {
                self.engine
                    .render_into_with(
                        &mut health,
                        text,
                        &health_vars(check, server.health_port),
                        &service.vars,
                    )
                    .and_then(|()| {
                        if health.contains(mlb_model::allowlist::is_line_break) {
                            Err(EngineError::Structure(
                                "the server options must stay on the server line".to_owned(),
                            ))
                        } else {
                            Ok(())
                        }
                    })
                    .map_err(|error| TemplateFailure {
                        template: *name,
                        from_label: service.template(name.as_str()).is_some(),
                        error,
                    })?;
            }
            self.emit(
                out,
                service,
                T::BACKEND_SERVER_OPTIONS,
                server_vars(service, server, health),
            )?;
        }
        Ok(())
    }
}

/// A label plugin's config lines, indented like the templates' own lines
/// (the host checked them: one line each, no section keyword).
fn push_snippets(out: &mut String, snippets: &[String]) {
    for line in snippets {
        out.push_str("  ");
        out.push_str(line.trim());
        out.push('\n');
    }
}

fn server_vars<'a>(
    service: &'a Service,
    server: &'a Server,
    health: String,
) -> crate::engine::Vars<'a> {
    let cookie = if service.sticky {
        let digest = Sha1::digest(server.name.as_bytes());
        let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
        format!(" check cookie {hex}")
    } else {
        String::new()
    };
    vars! {
        "host" => server.host.as_str(),
        "host_ipv4" => server.ip.as_str(),
        "port" => server.port.to_string(),
        "serverName" => server.name.as_str(),
        "serverId" => server.id.to_string(),
        "cookieOptions" => cookie,
        "healthCheckOptions" => health,
        "otherOptions" => if server.draining { " disabled" } else { "" },
    }
}

/// The variables of the health-check templates.
fn health_vars(check: &ServiceHealthCheck, port: Option<i64>) -> crate::engine::Vars<'_> {
    vars! {
        "healthCheckPortIndex" => py_opt_int(check.port_index),
        "healthCheckPort" => py_opt_int(port),
        "healthCheckProtocol" => check.protocol.as_str(),
        "healthCheckPath" => check.path.clone().unwrap_or_else(|| "/".to_owned()),
        "healthCheckTimeoutSeconds" => check.timeout_seconds.to_string(),
        "healthCheckIntervalSeconds" => check.interval_seconds.to_string(),
        "healthCheckGracePeriodSeconds" => check.grace_period_seconds.to_string(),
        "healthCheckMaxConsecutiveFailures" => check.max_consecutive_failures.to_string(),
        "healthCheckFalls" => (check.max_consecutive_failures + 1).to_string(),
        "healthCheckPortOptions" => match port {
            Some(p) if p != 0 => format!(" port {p}"),
            _ => String::new(),
        },
    }
}
