//! Typed parsing of the per-service-port labels `HAPROXY_{n}_*`.
//!
//! marathon-lb applies label setters in alphabetical order of the label name;
//! the only place where that order shows is `PATH` raising a `BACKEND_WEIGHT`
//! of 0 to 1, which [`ServiceLabels::weight`] reproduces.

use mlb_model::{App, Auth, Diagnostic};

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

/// marathon-lb's boolean labels: true iff the lowercased value is one of
/// `true`, `t`, `yes`, `y`.
pub fn is_truthy(value: &str) -> bool {
    matches!(value.to_lowercase().as_str(), "true" | "t" | "yes" | "y")
}

/// Everything the `HAPROXY_{n}_*` labels of one service port say.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceLabels {
    pub(crate) group: Option<Vec<String>>,
    pub(crate) hostname: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) mode: Option<String>,
    pub(crate) balance: Option<String>,
    pub(crate) sticky: bool,
    pub(crate) redirect_to_https: bool,
    pub(crate) use_hsts: bool,
    pub(crate) ssl_cert: Option<String>,
    pub(crate) bind_options: Option<String>,
    pub(crate) bind_addr: Option<String>,
    pub(crate) port: Option<i64>,
    pub(crate) backend_weight: Option<i64>,
    pub(crate) auth: Option<Auth>,
    pub(crate) enabled: Option<bool>,
    pub(crate) proxypath: Option<String>,
    pub(crate) revproxypath: Option<String>,
    pub(crate) redirpath: Option<String>,
    pub(crate) network_allowed: Option<String>,
    pub(crate) healthcheck_port_index: Option<i64>,
    pub(crate) templates: Vec<(String, String)>,
}

impl ServiceLabels {
    /// The ordering weight: `BACKEND_WEIGHT` (default 0), raised to 1 by `PATH`
    /// when it is 0.
    pub(crate) fn weight(&self) -> i64 {
        let weight = self.backend_weight.unwrap_or(0);
        if self.path.is_some() && weight == 0 {
            1
        } else {
            weight
        }
    }
}

/// Parse Python-`int()`-style integers: surrounding whitespace, a sign, and
/// `_` between digits are accepted.
fn parse_int(value: &str) -> Option<i64> {
    let t = value.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let n: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -n } else { n })
}

/// A label value that ends up inside a config line must not contain control
/// characters (a newline would inject directives into shared sections).
fn check_single_line(app: &App, key: &str, value: &str) -> Result<(), Diagnostic> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(Diagnostic::error(
            &app.id,
            Some(key),
            format!(
                "value contains the control character {:?}; this label must be a single line",
                c
            ),
        )),
        None => Ok(()),
    }
}

/// Characters that would unbalance the `{ ... }` / `%[...]` syntax of the lines
/// a host name is pasted into.
fn check_vhost(app: &App, key: &str, value: &str) -> Result<(), Diagnostic> {
    check_single_line(app, key, value)?;
    match value
        .chars()
        .find(|c| c.is_whitespace() || matches!(c, '{' | '}' | '[' | ']' | '#' | '"' | '\'' | '\\'))
    {
        Some(c) => Err(Diagnostic::error(
            &app.id,
            Some(key),
            format!("host name list {value:?} contains {c:?}, which is not allowed in a host name"),
        )),
        None => Ok(()),
    }
}

/// Read every `HAPROXY_{index}_*` label of `app`. The first invalid label
/// rejects the service: the error names the app, the label and the problem.
pub(crate) fn parse_service_labels(app: &App, index: usize) -> Result<ServiceLabels, Diagnostic> {
    let prefix = format!("HAPROXY_{index}_");
    let mut out = ServiceLabels::default();
    for (key, value) in &app.labels {
        let Some(name) = key.strip_prefix(&prefix) else {
            continue;
        };
        apply_label(app, key, name, value, &mut out)?;
    }
    Ok(out)
}

fn int_label(app: &App, key: &str, value: &str) -> Result<i64, Diagnostic> {
    parse_int(value).ok_or_else(|| {
        Diagnostic::error(&app.id, Some(key), format!("{value:?} is not an integer"))
    })
}

fn apply_label(
    app: &App,
    key: &str,
    name: &str,
    value: &str,
    out: &mut ServiceLabels,
) -> Result<(), Diagnostic> {
    let text = || -> Result<String, Diagnostic> {
        check_single_line(app, key, value)?;
        Ok(value.to_owned())
    };
    match name {
        "GROUP" => out.group = Some(text()?.split(',').map(str::to_owned).collect()),
        "VHOST" => {
            check_vhost(app, key, value)?;
            out.hostname = Some(value.to_lowercase());
        }
        "PATH" => out.path = Some(text()?),
        "MODE" => out.mode = Some(text()?.to_lowercase()),
        "BALANCE" => out.balance = Some(text()?),
        "STICKY" => out.sticky = is_truthy(value),
        "REDIRECT_TO_HTTPS" => out.redirect_to_https = is_truthy(value),
        "USE_HSTS" => out.use_hsts = is_truthy(value),
        "ENABLED" => out.enabled = Some(is_truthy(value)),
        "SSL_CERT" => out.ssl_cert = Some(text()?),
        "BIND_OPTIONS" => out.bind_options = Some(text()?),
        "BIND_ADDR" => out.bind_addr = Some(text()?),
        "PORT" => out.port = Some(int_label(app, key, value)?),
        "BACKEND_WEIGHT" => out.backend_weight = Some(int_label(app, key, value)?),
        "BACKEND_HEALTHCHECK_PORT_INDEX" => {
            out.healthcheck_port_index = Some(int_label(app, key, value)?)
        }
        "AUTH" => {
            check_single_line(app, key, value)?;
            let parts: Vec<&str> = value.split(':').collect();
            let [realm, user, password] = parts[..] else {
                return Err(Diagnostic::error(
                    &app.id,
                    Some(key),
                    format!(
                        "expected realm:user:password (exactly three ':'-separated parts), got {} part(s)",
                        parts.len()
                    ),
                ));
            };
            if realm.contains('"') {
                return Err(Diagnostic::error(
                    &app.id,
                    Some(key),
                    "the realm must not contain '\"'",
                ));
            }
            out.auth = Some(Auth {
                realm: realm.to_owned(),
                user: user.to_owned(),
                password: password.to_owned(),
            });
        }
        "HTTP_BACKEND_PROXYPASS_PATH" => out.proxypath = Some(text()?),
        "HTTP_BACKEND_REVPROXY_PATH" => out.revproxypath = Some(text()?),
        "HTTP_BACKEND_REDIR" => out.redirpath = Some(text()?),
        "BACKEND_NETWORK_ALLOWED_ACL" => out.network_allowed = Some(text()?),
        _ if OVERRIDABLE_TEMPLATE_LABELS.contains(&name) => {
            out.templates
                .push((name.to_owned(), value.replace("\r\n", "\n")));
        }
        // Unknown HAPROXY_{n}_* labels are ignored, as in marathon-lb.
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(labels: &[(&str, &str)]) -> App {
        App {
            id: "/a".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..App::default()
        }
    }

    #[test]
    fn python_int_rules() {
        assert_eq!(parse_int(" 42 "), Some(42));
        assert_eq!(parse_int("-3"), Some(-3));
        assert_eq!(parse_int("+7"), Some(7));
        assert_eq!(parse_int("1_000"), Some(1000));
        assert_eq!(parse_int("1__0"), None);
        assert_eq!(parse_int("4x"), None);
        assert_eq!(parse_int(""), None);
    }

    #[test]
    fn bools_follow_marathon_lb() {
        for v in ["true", "T", "YES", "y"] {
            assert!(is_truthy(v), "{v}");
        }
        for v in ["1", "on", "false", ""] {
            assert!(!is_truthy(v), "{v}");
        }
    }

    #[test]
    fn path_bumps_zero_weight_only() {
        let l = parse_service_labels(&app(&[("HAPROXY_0_PATH", "/x")]), 0).unwrap();
        assert_eq!(l.weight(), 1);
        let l = parse_service_labels(
            &app(&[("HAPROXY_0_PATH", "/x"), ("HAPROXY_0_BACKEND_WEIGHT", "-2")]),
            0,
        )
        .unwrap();
        assert_eq!(l.weight(), -2);
    }

    #[test]
    fn bad_values_name_the_label() {
        let err = parse_service_labels(&app(&[("HAPROXY_0_PORT", "80a")]), 0).unwrap_err();
        assert_eq!(err.label.as_deref(), Some("HAPROXY_0_PORT"));
        let err = parse_service_labels(&app(&[("HAPROXY_0_AUTH", "a:b")]), 0).unwrap_err();
        assert_eq!(err.label.as_deref(), Some("HAPROXY_0_AUTH"));
        let err =
            parse_service_labels(&app(&[("HAPROXY_0_VHOST", "a.test\n  bind :1")]), 0).unwrap_err();
        assert_eq!(err.label.as_deref(), Some("HAPROXY_0_VHOST"));
    }

    #[test]
    fn template_labels_keep_newlines_but_not_crlf() {
        let l = parse_service_labels(
            &app(&[("HAPROXY_0_BACKEND_HEAD", "\r\nbackend {backend}\r\n")]),
            0,
        )
        .unwrap();
        assert_eq!(
            l.templates,
            vec![(
                "BACKEND_HEAD".to_string(),
                "\nbackend {backend}\n".to_string()
            )]
        );
    }

    #[test]
    fn other_indexes_are_ignored() {
        let l = parse_service_labels(&app(&[("HAPROXY_1_PORT", "x")]), 0).unwrap();
        assert_eq!(l.port, None);
    }
}
