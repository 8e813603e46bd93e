//! Checks on services that a custom label plugin returned: what the
//! renderer and HAProxy rely on, so a plugin cannot break the config of
//! other apps or write outside its own service's sections.

use mlb_model::Service;

use crate::templates::TEMPLATE_NAMES;

/// Why a plugin's service is refused: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ServiceFault {
    /// The service field at fault.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Section keywords a snippet may not start (they would open a new
/// section, escaping the service's own).
const SECTION_KEYWORDS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "userlist",
    "peers",
    "resolvers",
    "mailers",
    "program",
    "http-errors",
    "ring",
    "cache",
    "fcgi-app",
];

fn fault(field: &str, message: impl Into<String>) -> ServiceFault {
    ServiceFault {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// A proxy name HAProxy accepts: letters, digits, `-`, `_`, `.`, `:`.
pub fn is_proxy_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn one_line(field: &str, value: &str) -> Result<(), ServiceFault> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(fault(
            field,
            format!("contains the control character {:?}", c),
        )),
        None => Ok(()),
    }
}

fn word(field: &str, value: &str) -> Result<(), ServiceFault> {
    one_line(field, value)?;
    if value.is_empty() || value.contains(char::is_whitespace) {
        return Err(fault(
            field,
            format!("'{value}' must be one non-empty word"),
        ));
    }
    Ok(())
}

fn snippet(field: &str, line: &str) -> Result<(), ServiceFault> {
    one_line(field, line)?;
    let first = line.split_whitespace().next().unwrap_or_default();
    if first.is_empty() {
        return Err(fault(field, "empty line"));
    }
    if SECTION_KEYWORDS.contains(&first) {
        return Err(fault(
            field,
            format!(
                "'{line}' would open a new '{first}' section; snippets stay in their service's section"
            ),
        ));
    }
    Ok(())
}

/// Check one service returned by a custom label plugin.
pub fn check_plugin_service(s: &Service) -> Result<(), ServiceFault> {
    if !is_proxy_name(&s.backend) {
        return Err(fault(
            "backend",
            format!(
                "'{}' is not a valid HAProxy name (letters, digits, '-', '_', '.', ':')",
                s.backend.escape_debug()
            ),
        ));
    }
    if !(1..=65535).contains(&s.service_port) {
        return Err(fault(
            "service-port",
            format!("{} is outside 1..65535", s.service_port),
        ));
    }
    if s.mode != "http" && s.mode != "tcp" {
        return Err(fault(
            "mode",
            format!("'{}' is neither http nor tcp", s.mode),
        ));
    }
    one_line("balance", &s.balance)?;
    if s.balance.trim().is_empty() {
        return Err(fault("balance", "empty"));
    }
    word("bind-addr", &s.bind_addr)?;
    for (field, value) in [
        ("hostname", &s.hostname),
        ("path", &s.path),
        ("ssl-cert", &s.ssl_cert),
        ("bind-options", &s.bind_options),
        ("proxypath", &s.proxypath),
        ("revproxypath", &s.revproxypath),
        ("redirpath", &s.redirpath),
        ("network-allowed", &s.network_allowed),
    ] {
        if let Some(v) = value {
            one_line(field, v)?;
        }
    }
    if let Some(h) = &s.hostname
        && h.contains([' ', '{', '}'])
    {
        return Err(fault(
            "hostname",
            format!("'{h}' contains a space or brace"),
        ));
    }
    if let Some(auth) = &s.auth {
        for v in [&auth.realm, &auth.user, &auth.password] {
            one_line("auth", v)?;
        }
    }
    if let Some(check) = &s.health_check {
        word("health-check.protocol", &check.protocol)?;
        if let Some(p) = &check.path {
            one_line("health-check.path", p)?;
        }
    }
    let mut ids = std::collections::HashSet::new();
    for server in &s.servers {
        word("servers.host", &server.host)?;
        word("servers.ip", &server.ip)?;
        word("servers.name", &server.name)?;
        if !(1..=65535).contains(&server.port) {
            return Err(fault(
                "servers.port",
                format!("{} is outside 1..65535", server.port),
            ));
        }
        if !(1..=32767).contains(&server.id) || !ids.insert(server.id) {
            return Err(fault(
                "servers.id",
                format!("{} is outside 1..32767 or used twice", server.id),
            ));
        }
    }
    for (name, _) in &s.templates {
        if !TEMPLATE_NAMES.contains(&name.as_str()) {
            return Err(fault(
                "templates",
                format!("'{name}' is not a template name"),
            ));
        }
    }
    for (name, value) in &s.vars {
        if !is_identifier(name) {
            return Err(fault("vars", format!("'{name}' is not an identifier")));
        }
        one_line("vars", value)?;
    }
    for line in &s.frontend_snippets {
        snippet("frontend-snippets", line)?;
    }
    for line in &s.backend_snippets {
        snippet("backend-snippets", line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlb_model::Server;

    fn good() -> Service {
        Service {
            app_id: "/a".into(),
            backend: "a_10000".into(),
            service_port: 10000,
            mode: "http".into(),
            balance: "roundrobin".into(),
            bind_addr: "*".into(),
            servers: vec![Server {
                host: "h".into(),
                ip: "127.0.0.1".into(),
                port: 8080,
                name: "127_0_0_1_8080".into(),
                id: 1,
                ..Server::default()
            }],
            backend_snippets: vec!["http-response set-header X-A b".into()],
            vars: vec![("team".into(), "blue".into())],
            ..Service::default()
        }
    }

    #[test]
    fn a_well_formed_service_passes() {
        check_plugin_service(&good()).unwrap();
    }

    #[test]
    fn each_fault_names_its_field() {
        type Breaker = Box<dyn Fn(&mut Service)>;
        let cases: Vec<(&str, Breaker)> = vec![
            ("backend", Box::new(|s| s.backend = "bad name".into())),
            ("backend", Box::new(|s| s.backend = "x\nfrontend y".into())),
            ("service-port", Box::new(|s| s.service_port = 0)),
            ("mode", Box::new(|s| s.mode = "udp".into())),
            (
                "hostname",
                Box::new(|s| s.hostname = Some("a.test\n".into())),
            ),
            (
                "servers.ip",
                Box::new(|s| s.servers[0].ip = "1.2.3.4 backup".into()),
            ),
            ("servers.id", Box::new(|s| s.servers[0].id = 0)),
            (
                "templates",
                Box::new(|s| s.templates = vec![("NOPE".into(), "x".into())]),
            ),
            (
                "vars",
                Box::new(|s| s.vars = vec![("a-b".into(), "x".into())]),
            ),
            (
                "backend-snippets",
                Box::new(|s| s.backend_snippets = vec!["backend evil".into()]),
            ),
            (
                "frontend-snippets",
                Box::new(|s| s.frontend_snippets = vec!["acl a\nlisten x".into()]),
            ),
        ];
        for (field, breakit) in cases {
            let mut s = good();
            breakit(&mut s);
            let f = check_plugin_service(&s).unwrap_err();
            assert_eq!(f.field, field, "{f}");
        }
    }
}
