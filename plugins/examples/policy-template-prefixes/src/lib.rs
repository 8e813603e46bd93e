//! Example policy plugin: only apps under given id prefixes may override
//! templates (world `policy-plugin` of `wit/mlb-plugins.wit`).
//!
//! A service *uses template overrides* if its `templates` list is non-empty,
//! or if its app (the app whose `id` equals the service's `app-id`) has a
//! label `HAPROXY_<n>_<X>` or `HAPROXY_<X>` where `X` is one of the 53
//! marathon-lb template names ([`TEMPLATE_NAMES`], e.g. `BACKEND_HEAD`,
//! `HTTP_FRONTEND_ACL`). Other `HAPROXY_*` labels (`HAPROXY_GROUP`,
//! `HAPROXY_0_VHOST`, `HAPROXY_0_PORT`, …) are not overrides.
//!
//! Such a service is allowed only if its app id starts with one of the
//! configured prefixes; otherwise it is denied with a reason naming the app
//! id, the labels and templates found, and the allowed prefixes. Services
//! without overrides are always allowed.
//!
//! # Configuration
//!
//! - `prefixes=/platform/,/team-a/` — the app id prefixes allowed to
//!   override templates (repeatable; entries add up; blank entries are
//!   skipped, never read as "every app"). Without it no app may override.
//!
//! Any other key makes `review` return an error, which denies the whole
//! batch (fail closed).
//!
//! # Layout
//!
//! - this file: WIT bindings, the exported `review`, the template name list
//!   and the policy as plain functions (`parse_config`,
//!   `override_labels`, `verdict`) with their unit tests.

wit_bindgen::generate!({
    world: "policy-plugin",
    path: "../../../wit",
});

use exports::mlb::plugins::policy::{Guest, Verdict};
use mlb::plugins::types::{App, Config, Service};

/// marathon-lb's template names, without the `HAPROXY_` prefix, in the
/// order of `templates/manifest.txt`.
pub const TEMPLATE_NAMES: [&str; 53] = [
    "HEAD",
    "USERLIST_HEAD",
    "HTTP_FRONTEND_HEAD",
    "HTTP_FRONTEND_APPID_HEAD",
    "HTTPS_FRONTEND_HEAD",
    "HTTPS_GROUPED_FRONTEND_HEAD",
    "HTTPS_GROUPED_VHOST_FRONTEND_HEAD",
    "HTTPS_GROUPED_VHOST_BACKEND_HEAD",
    "HTTPS_GROUPED_VHOST_FRONTEND_ACL",
    "FRONTEND_HEAD",
    "BACKEND_HEAD",
    "BACKEND_REDIRECT_HTTP_TO_HTTPS",
    "BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH",
    "BACKEND_HSTS_OPTIONS",
    "HTTP_FRONTEND_ACL",
    "MAP_HTTP_FRONTEND_ACL",
    "HTTP_FRONTEND_ACL_WITH_AUTH",
    "HTTP_FRONTEND_ACL_ONLY",
    "MAP_HTTP_FRONTEND_ACL_ONLY",
    "HTTP_FRONTEND_ROUTING_ONLY",
    "HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH",
    "HTTP_FRONTEND_ACL_WITH_PATH",
    "HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH",
    "HTTP_FRONTEND_ACL_ONLY_WITH_PATH",
    "HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH",
    "HTTPS_FRONTEND_ACL_ONLY_WITH_PATH",
    "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH",
    "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH",
    "HTTPS_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH",
    "HTTP_FRONTEND_APPID_ACL",
    "MAP_HTTP_FRONTEND_APPID_ACL",
    "HTTPS_FRONTEND_ACL",
    "MAP_HTTPS_FRONTEND_ACL",
    "HTTPS_FRONTEND_ACL_WITH_AUTH",
    "HTTPS_FRONTEND_AUTH_ACL_ONLY",
    "HTTPS_FRONTEND_AUTH_REQUEST_ONLY",
    "HTTPS_FRONTEND_ACL_WITH_PATH",
    "HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH",
    "BACKEND_HTTP_OPTIONS",
    "HTTP_BACKEND_PROXYPASS_GLUE",
    "HTTP_BACKEND_REVPROXY_GLUE",
    "HTTP_BACKEND_REDIR",
    "BACKEND_HTTP_HEALTHCHECK_OPTIONS",
    "BACKEND_TCP_HEALTHCHECK_OPTIONS",
    "BACKEND_STICKY_OPTIONS",
    "BACKEND_SERVER_OPTIONS",
    "BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS",
    "BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS",
    "FRONTEND_BACKEND_GLUE",
    "HTTP_BACKEND_NETWORK_ALLOWED_ACL",
    "HTTP_BACKEND_ACL_ALLOW_DENY",
    "TCP_BACKEND_NETWORK_ALLOWED_ACL",
    "TCP_BACKEND_ACL_ALLOW_DENY",
];

struct TemplatePrefixes;

impl Guest for TemplatePrefixes {
    fn review(
        apps: Vec<App>,
        services: Vec<Service>,
        config: Config,
    ) -> Result<Vec<Verdict>, String> {
        let prefixes = parse_config(&config)?;
        let by_id: std::collections::HashMap<&str, &App> =
            apps.iter().map(|a| (a.id.as_str(), a)).collect();
        Ok(services
            .iter()
            .map(|s| {
                let app = by_id.get(s.app_id.as_str()).copied();
                match verdict(&prefixes, app, s) {
                    Ok(()) => Verdict::Allow,
                    Err(reason) => Verdict::Deny(reason),
                }
            })
            .collect())
    }
}

export!(TemplatePrefixes);

/// Read `prefixes=p1,p2` entries; anything else is an error.
pub fn parse_config(config: &[(String, String)]) -> Result<Vec<String>, String> {
    let mut prefixes: Vec<String> = Vec::new();
    for (key, value) in config {
        if key != "prefixes" {
            return Err(format!("unknown config key `{key}` (known: prefixes)"));
        }
        for prefix in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if !prefixes.iter().any(|p| p == prefix) {
                prefixes.push(prefix.to_string());
            }
        }
    }
    Ok(prefixes)
}

/// Whether label `name` overrides a template: `HAPROXY_<X>` or
/// `HAPROXY_<n>_<X>` with `X` in [`TEMPLATE_NAMES`].
pub fn is_override_label(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("HAPROXY_") else {
        return false;
    };
    if TEMPLATE_NAMES.contains(&rest) {
        return true;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0
        && rest[digits..]
            .strip_prefix('_')
            .is_some_and(|x| TEMPLATE_NAMES.contains(&x))
}

/// The template-override labels of `app`, in label order.
pub fn override_labels(app: &App) -> Vec<&str> {
    app.labels
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| is_override_label(k))
        .collect()
}

/// `Ok(())` if `service` uses no template override or its app id starts
/// with one of `prefixes`; else the deny reason.
pub fn verdict(prefixes: &[String], app: Option<&App>, service: &Service) -> Result<(), String> {
    let labels = app.map(override_labels).unwrap_or_default();
    if labels.is_empty() && service.templates.is_empty() {
        return Ok(());
    }
    if prefixes
        .iter()
        .any(|p| service.app_id.starts_with(p.as_str()))
    {
        return Ok(());
    }
    let mut found = Vec::new();
    if !labels.is_empty() {
        found.push(format!("labels {}", labels.join(", ")));
    }
    if !service.templates.is_empty() {
        let names: Vec<&str> = service.templates.iter().map(|(n, _)| n.as_str()).collect();
        found.push(format!("templates {}", names.join(", ")));
    }
    let allowed = if prefixes.is_empty() {
        "none".to_string()
    } else {
        prefixes.join(", ")
    };
    Err(format!(
        "app {} overrides templates ({}) but its id does not start with an allowed prefix (allowed: {allowed})",
        service.app_id,
        found.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn app(id: &str, labels: &[&str]) -> App {
        App {
            id: id.to_string(),
            labels: labels
                .iter()
                .map(|k| (k.to_string(), "x".to_string()))
                .collect(),
            instances: Some(1),
            ports: vec![10000],
            port_definitions: None,
            port_mappings: Vec::new(),
            docker_network: None,
            network_modes: Vec::new(),
            has_ip_address: false,
            discovery_ports: Vec::new(),
            health_checks: Vec::new(),
            last_scaling_at: None,
            tasks: Vec::new(),
        }
    }

    fn service(app_id: &str, templates: &[&str]) -> Service {
        Service {
            app_id: app_id.to_string(),
            port_index: 0,
            backend: "b".to_string(),
            service_port: 10000,
            mode: "http".to_string(),
            balance: "roundrobin".to_string(),
            hostname: None,
            path: None,
            auth: None,
            sticky: false,
            redirect_to_https: false,
            use_hsts: false,
            ssl_cert: None,
            bind_addr: "*".to_string(),
            bind_options: None,
            backend_weight: 0,
            proxypath: None,
            revproxypath: None,
            redirpath: None,
            network_allowed: None,
            health_check: None,
            groups: vec!["external".to_string()],
            servers: Vec::new(),
            templates: templates
                .iter()
                .map(|t| (t.to_string(), "text\n".to_string()))
                .collect(),
            vars: Vec::new(),
            frontend_snippets: Vec::new(),
            backend_snippets: Vec::new(),
        }
    }

    fn prefixes() -> Vec<String> {
        parse_config(&cfg(&[("prefixes", "/platform/, /team-a/,")])).unwrap()
    }

    #[test]
    fn template_names_match_the_manifest_shape() {
        assert_eq!(TEMPLATE_NAMES.len(), 53);
        let mut sorted = TEMPLATE_NAMES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 53);
        assert!(TEMPLATE_NAMES.contains(&"HEAD"));
        assert!(TEMPLATE_NAMES.contains(&"TCP_BACKEND_ACL_ALLOW_DENY"));
    }

    #[test]
    fn override_labels_are_recognised() {
        for yes in [
            "HAPROXY_0_BACKEND_HEAD",
            "HAPROXY_12_HTTP_FRONTEND_ACL",
            "HAPROXY_HEAD",
            "HAPROXY_BACKEND_SERVER_OPTIONS",
            "HAPROXY_1_FRONTEND_HEAD",
        ] {
            assert!(is_override_label(yes), "{yes}");
        }
        for no in [
            "HAPROXY_GROUP",
            "HAPROXY_0_VHOST",
            "HAPROXY_0_PORT",
            "HAPROXY_0_BACKEND_WEIGHT",
            "HAPROXY_DEPLOYMENT_GROUP",
            "HAPROXY_0_HTTP_FRONTEND_ACL_EXTRA",
            "HAPROXY__BACKEND_HEAD",
            "HAPROXY_x_BACKEND_HEAD",
            "haproxy_0_backend_head",
            "BACKEND_HEAD",
        ] {
            assert!(!is_override_label(no), "{no}");
        }
    }

    #[test]
    fn config_keys() {
        assert_eq!(prefixes(), ["/platform/", "/team-a/"]);
        assert!(parse_config(&cfg(&[])).unwrap().is_empty());
        assert!(parse_config(&cfg(&[("prefixes", "")])).unwrap().is_empty());
        let err = parse_config(&cfg(&[("prefix", "/a/")])).unwrap_err();
        assert!(err.contains("unknown config key `prefix`"), "{err}");
    }

    #[test]
    fn services_without_overrides_are_allowed() {
        let a = app("/team-b/web", &["HAPROXY_GROUP", "HAPROXY_0_VHOST"]);
        assert_eq!(
            verdict(&prefixes(), Some(&a), &service("/team-b/web", &[])),
            Ok(())
        );
        assert_eq!(verdict(&[], None, &service("/x", &[])), Ok(()));
    }

    #[test]
    fn overrides_need_an_allowed_prefix() {
        let p = prefixes();
        let a = app("/team-a/web", &["HAPROXY_0_BACKEND_HEAD"]);
        assert_eq!(verdict(&p, Some(&a), &service("/team-a/web", &[])), Ok(()));
        let b = app("/team-b/web", &["HAPROXY_GROUP", "HAPROXY_0_BACKEND_HEAD"]);
        assert_eq!(
            verdict(&p, Some(&b), &service("/team-b/web", &["BACKEND_HEAD"])),
            Err(
                "app /team-b/web overrides templates (labels HAPROXY_0_BACKEND_HEAD; \
                 templates BACKEND_HEAD) but its id does not start with an allowed prefix \
                 (allowed: /platform/, /team-a/)"
                    .to_string()
            )
        );
    }

    #[test]
    fn service_templates_alone_count() {
        let err = verdict(
            &prefixes(),
            None,
            &service("/other", &["HTTP_FRONTEND_HEAD"]),
        )
        .unwrap_err();
        assert!(err.contains("(templates HTTP_FRONTEND_HEAD)"), "{err}");
        let err = verdict(&[], None, &service("/platform/x", &["HEAD"])).unwrap_err();
        assert!(err.ends_with("(allowed: none)"), "{err}");
    }
}
