//! Typed parsing of the per-service-port labels `HAPROXY_{n}_*` (one setter
//! per documented label, [`SETTERS`]), and the one way the rules read an
//! app-level label ([`app_label`]).
//!
//! marathon-lb applies label setters in alphabetical order of the label name;
//! the only place where that order shows is `PATH` raising a `BACKEND_WEIGHT`
//! of 0 to 1, which [`ServiceLabels::weight`] reproduces.

use mlb_model::allowlist::{self, Class};
use mlb_model::{App, Auth, Diagnostic};

use crate::reference::OVERRIDABLE_TEMPLATE_LABELS;

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

/// A label value that ends up in the config must fit its class of the
/// allow-list ([`mlb_model::allowlist`]): a newline would inject directives into
/// shared sections, a quote would let HAProxy expand `${VAR}`, and so on.
fn check_value(app: &App, key: &str, value: &str, class: Class) -> Result<(), Diagnostic> {
    allowlist::check(class, value).map_err(|refusal| {
        let single_line = if allowlist::is_line_break(refusal.character) {
            "; this label must be a single line"
        } else {
            ""
        };
        Diagnostic::error(
            &app.id,
            Some(key),
            format!("value {refusal}{single_line}; fix or remove the label"),
        )
    })
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

/// One `HAPROXY_{n}_*` label of an app, being applied.
pub(crate) struct Label<'a> {
    app: &'a App,
    key: &'a str,
    value: &'a str,
}

impl Label<'_> {
    /// The value, if it fits `class` of the allow-list.
    fn text(&self, class: Class) -> Result<String, Diagnostic> {
        check_value(self.app, self.key, self.value, class)?;
        Ok(self.value.to_owned())
    }

    fn int(&self) -> Result<i64, Diagnostic> {
        parse_int(self.value).ok_or_else(|| {
            Diagnostic::error(
                &self.app.id,
                Some(self.key),
                format!("{:?} is not an integer", self.value),
            )
        })
    }

    fn truthy(&self) -> bool {
        is_truthy(self.value)
    }
}

/// What one label does to the labels of its service port.
pub(crate) type Setter = fn(&Label<'_>, &mut ServiceLabels) -> Result<(), Diagnostic>;

/// The per-service-port labels the rules apply, by their name after
/// `HAPROXY_{n}_` (marathon-lb's `label_keys`). Each must be documented in
/// [`crate::reference::LABELS`]; the template overrides
/// ([`OVERRIDABLE_TEMPLATE_LABELS`]) are handled after these.
pub(crate) const SETTERS: &[(&str, Setter)] = &[
    ("GROUP", |l, out| {
        out.group = Some(l.text(Class::Line)?.split(',').map(str::to_owned).collect());
        Ok(())
    }),
    ("VHOST", |l, out| {
        check_value(l.app, l.key, l.value, Class::HostList)?;
        out.hostname = Some(l.value.to_lowercase());
        Ok(())
    }),
    ("PATH", |l, out| {
        out.path = Some(l.text(Class::Line)?);
        Ok(())
    }),
    ("MODE", |l, out| {
        out.mode = Some(l.text(Class::Word)?.to_lowercase());
        Ok(())
    }),
    ("BALANCE", |l, out| {
        out.balance = Some(l.text(Class::Line)?);
        Ok(())
    }),
    ("STICKY", |l, out| {
        out.sticky = l.truthy();
        Ok(())
    }),
    ("REDIRECT_TO_HTTPS", |l, out| {
        out.redirect_to_https = l.truthy();
        Ok(())
    }),
    ("USE_HSTS", |l, out| {
        out.use_hsts = l.truthy();
        Ok(())
    }),
    ("ENABLED", |l, out| {
        out.enabled = Some(l.truthy());
        Ok(())
    }),
    ("SSL_CERT", |l, out| {
        out.ssl_cert = Some(l.text(Class::Word)?);
        Ok(())
    }),
    ("BIND_OPTIONS", |l, out| {
        out.bind_options = Some(l.text(Class::Line)?);
        Ok(())
    }),
    ("BIND_ADDR", |l, out| {
        out.bind_addr = Some(l.text(Class::Address)?);
        Ok(())
    }),
    ("PORT", |l, out| {
        out.port = Some(l.int()?);
        Ok(())
    }),
    ("BACKEND_WEIGHT", |l, out| {
        out.backend_weight = Some(l.int()?);
        Ok(())
    }),
    ("BACKEND_HEALTHCHECK_PORT_INDEX", |l, out| {
        out.healthcheck_port_index = Some(l.int()?);
        Ok(())
    }),
    ("AUTH", set_auth),
    ("HTTP_BACKEND_PROXYPASS_PATH", |l, out| {
        out.proxypath = Some(l.text(Class::Word)?);
        Ok(())
    }),
    ("HTTP_BACKEND_REVPROXY_PATH", |l, out| {
        out.revproxypath = Some(l.text(Class::FormatWord)?);
        Ok(())
    }),
    ("HTTP_BACKEND_REDIR", |l, out| {
        out.redirpath = Some(l.text(Class::FormatWord)?);
        Ok(())
    }),
    ("BACKEND_NETWORK_ALLOWED_ACL", |l, out| {
        out.network_allowed = Some(l.text(Class::Line)?);
        Ok(())
    }),
];

fn set_auth(l: &Label<'_>, out: &mut ServiceLabels) -> Result<(), Diagnostic> {
    let (app, key, value) = (l.app, l.key, l.value);
    check_value(app, key, value, Class::Line)?;
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
    for (part, v, class) in [
        ("realm", realm, Class::Quoted),
        ("user", user, Class::Word),
        ("password", password, Class::Word),
    ] {
        allowlist::check(class, v).map_err(|refusal| {
            Diagnostic::error(
                &app.id,
                Some(key),
                format!("the {part} {refusal}; fix or remove the label"),
            )
        })?;
    }
    out.auth = Some(Auth {
        realm: realm.to_owned(),
        user: user.to_owned(),
        password: password.to_owned(),
    });
    Ok(())
}

/// Apply the label `key` (`HAPROXY_{n}_<name>`); `Ok(false)` when no rule
/// reads `name` (ignored, as in marathon-lb).
pub(crate) fn apply_label(
    app: &App,
    key: &str,
    name: &str,
    value: &str,
    out: &mut ServiceLabels,
) -> Result<bool, Diagnostic> {
    if let Some((_, set)) = SETTERS.iter().find(|(n, _)| *n == name) {
        set(&Label { app, key, value }, out)?;
    } else if OVERRIDABLE_TEMPLATE_LABELS.contains(&name) {
        out.templates
            .push((name.to_owned(), value.replace("\r\n", "\n")));
    } else {
        return Ok(false);
    }
    Ok(true)
}

/// An app-level label (`HAPROXY_GROUP`, `HAPROXY_DEPLOYMENT_*`). The rules
/// read app-level labels only through here, so a test can record which
/// names they ask for.
pub(crate) fn app_label<'a>(app: &'a App, name: &'static str) -> Option<&'a str> {
    #[cfg(test)]
    asked::record(name);
    app.label(name)
}

/// The app-level label names asked for on this thread (tests only).
#[cfg(test)]
pub(crate) mod asked {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    thread_local! {
        static ASKED: RefCell<BTreeSet<&'static str>> = const { RefCell::new(BTreeSet::new()) };
    }

    pub(crate) fn record(name: &'static str) {
        ASKED.with(|asked| asked.borrow_mut().insert(name));
    }

    /// The names asked for since the last call.
    pub(crate) fn take() -> BTreeSet<&'static str> {
        ASKED.with(|asked| std::mem::take(&mut *asked.borrow_mut()))
    }
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
    fn values_that_would_reach_the_environment_are_refused() {
        for (key, value) in [
            ("HAPROXY_0_AUTH", "${SOME_VAR}:user:pass"),
            ("HAPROXY_0_AUTH", "$SOME_VAR:user:pass"),
            ("HAPROXY_0_HTTP_BACKEND_REDIR", "/x%[env(SOME_VAR)]"),
            ("HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH", "%[env(SOME_VAR)]"),
            ("HAPROXY_0_VHOST", "%[env(SOME_VAR)]"),
            ("HAPROXY_0_PATH", "/x\"${SOME_VAR}\""),
            ("HAPROXY_0_BIND_OPTIONS", "ciphers \"${SOME_VAR}\""),
            ("HAPROXY_0_BALANCE", "roundrobin\u{2028}backend x"),
        ] {
            let err = parse_service_labels(&app(&[(key, value)]), 0).unwrap_err();
            assert_eq!(err.label.as_deref(), Some(key), "{value}");
            assert!(err.message.contains("fix or remove the label"), "{err}");
        }
        let l =
            parse_service_labels(&app(&[("HAPROXY_0_AUTH", "Realm:u:$6$salt$hash")]), 0).unwrap();
        assert_eq!(l.auth.unwrap().password, "$6$salt$hash");
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
