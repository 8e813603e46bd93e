//! The label reference: every label marathon-lb reads, where it applies and
//! what it means. `marathon-lb --longhelp` prints [`LABELS`] and
//! [`OVERRIDABLE_TEMPLATE_LABELS`]. The rules read app-level labels by the
//! constants the table uses; per-service-port labels go through the setter
//! table of the `labels` module. A unit test checks that each documented
//! label is handled and each handled label documented.

/// Where a label is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Once per app: `name` is the whole label, e.g. `HAPROXY_GROUP`.
    App,
    /// Per service port: `name` is the part after `HAPROXY_{n}_`.
    ServicePort,
}

/// Which part of marathon-lb reads a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The label rules of this crate.
    Rules,
    /// Only `marathon-lb zdd` (the zero-downtime deployment tool).
    Zdd,
}

/// One documented label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelSpec {
    /// The label (app level) or its name after `HAPROXY_{n}_` (per service port).
    pub name: &'static str,
    /// Where it is set.
    pub scope: Scope,
    /// Who reads it.
    pub reader: Reader,
    /// What it does, one or two sentences.
    pub meaning: &'static str,
}

impl LabelSpec {
    /// The label as an app writes it: `HAPROXY_GROUP`, `HAPROXY_{n}_VHOST`.
    pub fn label(&self) -> String {
        match self.scope {
            Scope::App => self.name.to_owned(),
            Scope::ServicePort => format!("HAPROXY_{{n}}_{}", self.name),
        }
    }
}

/// `HAPROXY_GROUP`.
pub const GROUP: &str = "HAPROXY_GROUP";
/// `HAPROXY_DEPLOYMENT_GROUP`.
pub const DEPLOYMENT_GROUP: &str = "HAPROXY_DEPLOYMENT_GROUP";
/// `HAPROXY_DEPLOYMENT_ALT_PORT`.
pub const DEPLOYMENT_ALT_PORT: &str = "HAPROXY_DEPLOYMENT_ALT_PORT";
/// `HAPROXY_DEPLOYMENT_COLOUR`.
pub const DEPLOYMENT_COLOUR: &str = "HAPROXY_DEPLOYMENT_COLOUR";
/// `HAPROXY_DEPLOYMENT_STARTED_AT`.
pub const DEPLOYMENT_STARTED_AT: &str = "HAPROXY_DEPLOYMENT_STARTED_AT";
/// `HAPROXY_DEPLOYMENT_TARGET_INSTANCES`.
pub const DEPLOYMENT_TARGET_INSTANCES: &str = "HAPROXY_DEPLOYMENT_TARGET_INSTANCES";
/// `HAPROXY_DEPLOYMENT_NEW_INSTANCES`.
pub const DEPLOYMENT_NEW_INSTANCES: &str = "HAPROXY_DEPLOYMENT_NEW_INSTANCES";

const fn app(name: &'static str, reader: Reader, meaning: &'static str) -> LabelSpec {
    LabelSpec {
        name,
        scope: Scope::App,
        reader,
        meaning,
    }
}

const fn port(name: &'static str, meaning: &'static str) -> LabelSpec {
    LabelSpec {
        name,
        scope: Scope::ServicePort,
        reader: Reader::Rules,
        meaning,
    }
}

/// Every label that is not a template override, in the order `--longhelp`
/// prints them.
pub const LABELS: &[LabelSpec] = &[
    app(
        GROUP,
        Reader::Rules,
        "HAPROXY_GROUP: comma-separated groups of the app; matched against --group ('*' matches all).",
    ),
    app(
        DEPLOYMENT_GROUP,
        Reader::Rules,
        "Blue/green deployment group: apps sharing it are merged into one app /<group>.",
    ),
    app(
        DEPLOYMENT_ALT_PORT,
        Reader::Zdd,
        "Alternate service port used by zdd.",
    ),
    app(
        DEPLOYMENT_COLOUR,
        Reader::Zdd,
        "blue or green (written by zdd).",
    ),
    app(
        DEPLOYMENT_STARTED_AT,
        Reader::Rules,
        "ISO-8601 start time of a deployment; the later app is the new one.",
    ),
    app(
        DEPLOYMENT_TARGET_INSTANCES,
        Reader::Rules,
        "Instance count the new app is scaled to.",
    ),
    app(
        DEPLOYMENT_NEW_INSTANCES,
        Reader::Rules,
        "Set during a zdd deployment: compare lastScalingAt and use TARGET_INSTANCES.",
    ),
    port(
        "GROUP",
        "Groups of this service port only (comma-separated), replacing HAPROXY_GROUP.",
    ),
    port(
        "VHOST",
        "Virtual host(s), comma-separated; lowercased. Enables :80/:443 routing and http mode.",
    ),
    port(
        "PATH",
        "Path prefix(es) pasted after path_beg; only effective with VHOST. Raises a BACKEND_WEIGHT of 0 to 1.",
    ),
    port(
        "MODE",
        "http or tcp (default: http with VHOST or an HTTP health check, else tcp).",
    ),
    port("BALANCE", "HAProxy balance algorithm (default roundrobin)."),
    port("STICKY", "true/t/yes/y: cookie-based stickiness."),
    port(
        "REDIRECT_TO_HTTPS",
        "true/t/yes/y: redirect http to https on :80 (vhost services).",
    ),
    port(
        "USE_HSTS",
        "true/t/yes/y: send Strict-Transport-Security (http mode).",
    ),
    port(
        "SSL_CERT",
        "Certificate for the service-port bind (and the vhost with --group-https-by-vhost).",
    ),
    port(
        "BIND_OPTIONS",
        "Extra options appended to the service-port bind.",
    ),
    port("BIND_ADDR", "Bind address of the service port (default *)."),
    port(
        "PORT",
        "Replaces the service port (names and bind). Must be an integer.",
    ),
    port(
        "BACKEND_WEIGHT",
        "Ordering of vhost ACL blocks, higher first. Must be an integer.",
    ),
    port(
        "AUTH",
        "realm:user:password-hash: HTTP basic auth on the vhost frontends.",
    ),
    port(
        "ENABLED",
        "true/t/yes/y enables, anything else disables (default: enabled unless --strict-mode).",
    ),
    port(
        "HTTP_BACKEND_PROXYPASS_PATH",
        "Path prefix stripped before forwarding (http).",
    ),
    port(
        "HTTP_BACKEND_REVPROXY_PATH",
        "Path the Location header is rewritten to (http).",
    ),
    port(
        "HTTP_BACKEND_REDIR",
        "Redirect target for requests to / on the vhost (http).",
    ),
    port(
        "BACKEND_NETWORK_ALLOWED_ACL",
        "Whitespace-separated networks allowed to reach the backend.",
    ),
    port(
        "BACKEND_HEALTHCHECK_PORT_INDEX",
        "Use the health check (and its ports) of another port index.",
    ),
];

/// Template names that an app may override per service port with
/// `HAPROXY_{n}_<NAME>` (the value is used verbatim, CRLF turned into LF).
pub const OVERRIDABLE_TEMPLATE_LABELS: &[&str] = &[
    "BACKEND_HEAD",
    "BACKEND_HSTS_OPTIONS",
    "BACKEND_HTTP_HEALTHCHECK_OPTIONS",
    "BACKEND_HTTP_OPTIONS",
    "BACKEND_REDIRECT_HTTP_TO_HTTPS",
    "BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH",
    "BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS",
    "BACKEND_SERVER_OPTIONS",
    "BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS",
    "BACKEND_STICKY_OPTIONS",
    "BACKEND_TCP_HEALTHCHECK_OPTIONS",
    "FRONTEND_BACKEND_GLUE",
    "FRONTEND_HEAD",
    "HTTPS_FRONTEND_ACL",
    "HTTPS_FRONTEND_ACL_ONLY_WITH_PATH",
    "HTTPS_FRONTEND_ACL_WITH_AUTH",
    "HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH",
    "HTTPS_FRONTEND_ACL_WITH_PATH",
    "HTTP_BACKEND_NETWORK_ALLOWED_ACL",
    "HTTP_BACKEND_PROXYPASS_GLUE",
    "HTTP_BACKEND_REVPROXY_GLUE",
    "HTTP_FRONTEND_ACL",
    "HTTP_FRONTEND_ACL_ONLY",
    "HTTP_FRONTEND_ACL_ONLY_WITH_PATH",
    "HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH",
    "HTTP_FRONTEND_ACL_WITH_AUTH",
    "HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH",
    "HTTP_FRONTEND_ACL_WITH_PATH",
    "HTTP_FRONTEND_APPID_ACL",
    "HTTP_FRONTEND_ROUTING_ONLY",
    "HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH",
    "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH",
    "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH",
    "MAP_HTTPS_FRONTEND_ACL",
    "MAP_HTTP_FRONTEND_ACL",
    "MAP_HTTP_FRONTEND_ACL_ONLY",
    "MAP_HTTP_FRONTEND_APPID_ACL",
    "TCP_BACKEND_NETWORK_ALLOWED_ACL",
    "USERLIST_HEAD",
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use mlb_model::{App, InterpretOptions};

    use super::*;
    use crate::labels::{SETTERS, apply_label, asked};

    fn documented(scope: Scope) -> BTreeSet<&'static str> {
        LABELS
            .iter()
            .filter(|l| l.scope == scope && l.reader == Reader::Rules)
            .map(|l| l.name)
            .collect()
    }

    /// Two apps of one blue/green deployment group that carry every
    /// documented label, so that every label read of the rules happens.
    fn apps_with_every_label() -> Vec<App> {
        let app = |id: &str, started: &str, scaled: &str| {
            let mut labels: Vec<(String, String)> = LABELS
                .iter()
                .map(|l| (l.label().replace("{n}", "0"), "1".to_owned()))
                .collect();
            labels.extend(
                OVERRIDABLE_TEMPLATE_LABELS
                    .iter()
                    .map(|t| (format!("HAPROXY_0_{t}"), "x".to_owned())),
            );
            for (key, value) in [(DEPLOYMENT_GROUP, "g"), (DEPLOYMENT_STARTED_AT, started)] {
                labels.retain(|(k, _)| k != key);
                labels.push((key.to_owned(), value.to_owned()));
            }
            App {
                id: id.into(),
                labels,
                ports: vec![10000],
                last_scaling_at: Some(scaled.into()),
                ..App::default()
            }
        };
        vec![
            app("/blue", "2021-01-01T00:00:00", "2021-01-01T00:00:00"),
            app("/green", "2021-01-02T00:00:00", "2021-01-02T00:00:00"),
        ]
    }

    #[test]
    fn each_documented_label_is_handled_and_each_handled_label_is_documented() {
        // Per service port: the labels with a setter are the documented ones...
        let handled: BTreeSet<&str> = SETTERS.iter().map(|(name, _)| *name).collect();
        let port = documented(Scope::ServicePort);
        assert_eq!(
            handled.difference(&port).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "per-port labels handled but not in reference::LABELS"
        );
        assert_eq!(
            port.difference(&handled).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "per-port labels in reference::LABELS that no rule handles"
        );
        // ... and, like the template overrides, reach a setter.
        let app = App::default();
        let mut out = Default::default();
        for name in port.iter().chain(OVERRIDABLE_TEMPLATE_LABELS) {
            let key = format!("HAPROXY_0_{name}");
            let applied = apply_label(&app, &key, name, "1", &mut out);
            assert!(!matches!(applied, Ok(false)), "{key} is not applied");
        }
        for name in OVERRIDABLE_TEMPLATE_LABELS {
            assert!(
                !port.contains(name),
                "{name} is both a label and a template"
            );
        }

        // App level: the names the rules ask for are the documented ones, on
        // apps with every label and on the same apps without labels (for
        // reads that happen only when another label is absent).
        let with_labels = apps_with_every_label();
        let without_labels: Vec<App> = with_labels
            .iter()
            .map(|app| App {
                labels: Vec::new(),
                ..app.clone()
            })
            .collect();
        asked::take();
        for apps in [&with_labels, &without_labels] {
            crate::interpret(apps, &InterpretOptions::default());
            for app in apps {
                crate::stands_alone(app);
            }
        }
        let asked = asked::take();
        let app_level = documented(Scope::App);
        assert_eq!(
            asked.difference(&app_level).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "app-level labels the rules read but reference::LABELS does not document \
             (or documents as read by zdd only)"
        );
        assert_eq!(
            app_level.difference(&asked).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "app-level labels in reference::LABELS that the rules never read"
        );
    }

    #[test]
    fn names_are_unique_and_printable() {
        let mut seen = BTreeSet::new();
        for l in LABELS {
            assert!(seen.insert(l.label()), "{} documented twice", l.label());
            assert!(
                !l.meaning.is_empty() && !l.meaning.contains('\n'),
                "{}",
                l.name
            );
            if l.scope == Scope::App {
                assert!(l.name.starts_with("HAPROXY_"), "{}", l.name);
            }
        }
    }
}
