//! Checks on services before they are rendered, whatever produced them
//! (the default label rules or a custom label plugin): every value is
//! checked against its class of the allow-list ([`mlb_model::allowlist`]), so
//! no value can inject a line, a section or an HAProxy expansion, and a
//! plugin cannot write outside its own service's sections. The renderer
//! applies [`check_service`] to every service; the plugin chain applies
//! [`check_plugin_service`] (the same checks plus what only a plugin can get
//! wrong) to report a plugin's faults early.
//!
//! [`check_sections`] is the check on rendered template text (template
//! overrides are literal config by design, but may open only the section
//! their template opens).

use mlb_model::Service;
use mlb_model::allowlist::{self, Class};

use crate::templates::TemplateName;

/// Why a service is refused: the field and what is wrong.
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
pub const SECTION_KEYWORDS: &[&str] = &[
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
    "log-forward",
    "crt-store",
    "traces",
    "acme",
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
    match value.chars().find(|c| allowlist::is_line_break(*c)) {
        Some(c) => Err(fault(
            field,
            format!("contains the control character {:?}", c),
        )),
        None => Ok(()),
    }
}

/// The keyword a config line starts with as HAProxy reads it (quotes and
/// backslashes removed), if the line opens a section or is a conditional
/// block directive (`.if`, `.endif`, ...), which would swallow the lines
/// that follow.
pub fn opens_section(line: &str) -> Option<String> {
    // HAProxy splits words where C's isspace() holds (this runs on every
    // rendered line: no Unicode decoding).
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let bytes = line.as_bytes();
    let start = bytes.iter().position(|b| !space(b))?;
    let len = bytes[start..]
        .iter()
        .position(space)
        .unwrap_or(bytes.len() - start);
    // Spaces are ASCII: both ends are character boundaries.
    let token = &line[start..start + len];
    let first: std::borrow::Cow<'_, str> =
        if token.bytes().any(|b| matches!(b, b'"' | b'\'' | b'\\')) {
            token
                .chars()
                .filter(|c| !matches!(c, '"' | '\'' | '\\'))
                .collect::<String>()
                .into()
        } else {
            token.into()
        };
    (first.starts_with('.') || SECTION_KEYWORDS.contains(&first.as_ref()))
        .then(|| first.into_owned())
}

fn snippet(field: &str, line: &str) -> Result<(), ServiceFault> {
    one_line(field, line)?;
    if line.trim().is_empty() {
        return Err(fault(field, "empty line"));
    }
    if let Some(first) = opens_section(line) {
        return Err(fault(
            field,
            format!(
                "'{line}' would open a new '{first}' section; snippets stay in their service's section"
            ),
        ));
    }
    Ok(())
}

/// The section a service's rendering of template `template` may open (its
/// keyword and name), `None` for the templates that add lines to a section.
fn own_section(template: TemplateName, backend: &str) -> Option<(&'static str, String)> {
    match template {
        TemplateName::FRONTEND_HEAD => Some(("frontend", backend.to_owned())),
        TemplateName::BACKEND_HEAD => Some(("backend", backend.to_owned())),
        TemplateName::USERLIST_HEAD => Some(("userlist", format!("user_{backend}"))),
        _ => None,
    }
}

/// Check the rendered text of template `template` for a service: it may
/// open only its own section (`backend <backend>` for `BACKEND_HEAD`, ...),
/// once, and nothing else may open a section or a conditional block, which
/// would move other apps' lines into it.
pub fn check_sections(template: TemplateName, backend: &str, rendered: &str) -> Result<(), String> {
    let own = own_section(template, backend);
    let mut opened = 0;
    for line in rendered.lines() {
        let Some(keyword) = opens_section(line) else {
            continue;
        };
        let name = line.split_whitespace().nth(1).unwrap_or_default();
        match &own {
            Some((k, n)) if opened == 0 && keyword == *k && name == n => opened += 1,
            Some((k, n)) => {
                return Err(format!(
                    "the line {:?} opens a section; this template may only open '{k} {n}', once",
                    line.trim()
                ));
            }
            None => {
                return Err(format!(
                    "the line {:?} opens a section or a conditional block; this template adds \
                     lines to a section and may not open one",
                    line.trim()
                ));
            }
        }
    }
    Ok(())
}

fn value(field: &str, class: Class, v: &str) -> Result<(), ServiceFault> {
    allowlist::check(class, v).map_err(|refusal| fault(field, refusal.to_string()))
}

fn port(field: &str, p: i64) -> Result<(), ServiceFault> {
    if (1..=65535).contains(&p) {
        Ok(())
    } else {
        Err(fault(field, format!("{p} is outside 1..65535")))
    }
}

/// Check every value of a service against the allow-list: what the renderer
/// applies to each service before it is rendered.
pub fn check_service(s: &Service) -> Result<(), ServiceFault> {
    value("app-id", Class::AppId, &s.app_id)?;
    if !is_proxy_name(&s.backend) {
        return Err(fault(
            "backend",
            format!(
                "'{}' is not a valid HAProxy name (letters, digits, '-', '_', '.', ':')",
                s.backend.escape_debug()
            ),
        ));
    }
    port("service-port", s.service_port)?;
    value("mode", Class::Word, &s.mode)?;
    value("balance", Class::Line, &s.balance)?;
    value("bind-addr", Class::Address, &s.bind_addr)?;
    for (field, class, v) in [
        ("hostname", Class::HostList, &s.hostname),
        ("path", Class::Line, &s.path),
        ("ssl-cert", Class::Word, &s.ssl_cert),
        ("bind-options", Class::Line, &s.bind_options),
        ("proxypath", Class::Word, &s.proxypath),
        ("revproxypath", Class::FormatWord, &s.revproxypath),
        ("redirpath", Class::FormatWord, &s.redirpath),
        ("network-allowed", Class::Line, &s.network_allowed),
    ] {
        if let Some(v) = v {
            value(field, class, v)?;
        }
    }
    if let Some(auth) = &s.auth {
        value("auth.realm", Class::Quoted, &auth.realm)?;
        value("auth.user", Class::Word, &auth.user)?;
        value("auth.password", Class::Word, &auth.password)?;
    }
    if let Some(check) = &s.health_check {
        value("health-check.protocol", Class::Word, &check.protocol)?;
        if let Some(p) = &check.path {
            value("health-check.path", Class::Word, p)?;
        }
        // 0 means "no port option".
        if let Some(p) = check.backend_port.filter(|p| *p != 0) {
            port("health-check.port", p)?;
        }
    }
    let mut ids: Vec<u32> = s.servers.iter().map(|server| server.id).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(fault("servers.id", format!("{} is used twice", w[0])));
    }
    for server in &s.servers {
        value("servers.host", Class::Address, &server.host)?;
        value("servers.ip", Class::Address, &server.ip)?;
        if !is_proxy_name(&server.name) {
            return Err(fault(
                "servers.name",
                format!(
                    "'{}' is not a valid HAProxy name",
                    server.name.escape_debug()
                ),
            ));
        }
        port("servers.port", server.port)?;
        if let Some(p) = server.health_port.filter(|p| *p != 0) {
            port("servers.health-port", p)?;
        }
        if !(1..=32767).contains(&server.id) {
            return Err(fault(
                "servers.id",
                format!("{} is outside 1..32767", server.id),
            ));
        }
    }
    for (name, _) in &s.templates {
        if let Err(unknown) = name.parse::<TemplateName>() {
            return Err(fault(
                "templates",
                format!("'{}' is not a template name", unknown.0),
            ));
        }
    }
    for (name, v) in &s.vars {
        if !is_identifier(name) {
            return Err(fault("vars", format!("'{name}' is not an identifier")));
        }
        value("vars", Class::Line, v)?;
    }
    for line in &s.frontend_snippets {
        snippet("frontend-snippets", line)?;
    }
    for line in &s.backend_snippets {
        snippet("backend-snippets", line)?;
    }
    Ok(())
}

/// Check one service returned by a custom label plugin: [`check_service`]
/// plus what the default rules always get right (a known mode, a balance).
pub fn check_plugin_service(s: &Service) -> Result<(), ServiceFault> {
    check_service(s)?;
    if s.mode != "http" && s.mode != "tcp" {
        return Err(fault(
            "mode",
            format!("'{}' is neither http nor tcp", s.mode),
        ));
    }
    if s.balance.trim().is_empty() {
        return Err(fault("balance", "empty"));
    }
    let protocol = s.health_check.as_ref().map(|c| c.protocol.as_str());
    for (field, v) in [
        ("bind-addr", Some(s.bind_addr.as_str())),
        ("health-check.protocol", protocol),
    ]
    .into_iter()
    .chain(s.servers.iter().flat_map(|server| {
        [
            ("servers.host", Some(server.host.as_str())),
            ("servers.ip", Some(server.ip.as_str())),
        ]
    })) {
        if v.is_some_and(str::is_empty) {
            return Err(fault(field, "empty"));
        }
    }
    Ok(())
}

impl ServiceFault {
    /// Where the faulty value came from in Marathon, for diagnostics:
    /// the label or app field an operator can fix.
    pub fn source(&self, port_index: u32) -> String {
        let label = |name: &str| format!("HAPROXY_{port_index}_{name}");
        match self.field.as_str() {
            "app-id" => "id (or HAPROXY_DEPLOYMENT_GROUP)".to_owned(),
            "hostname" => label("VHOST"),
            "path" => label("PATH"),
            "mode" => label("MODE"),
            "balance" => label("BALANCE"),
            "bind-addr" => label("BIND_ADDR"),
            "ssl-cert" => label("SSL_CERT"),
            "bind-options" => label("BIND_OPTIONS"),
            "proxypath" => label("HTTP_BACKEND_PROXYPASS_PATH"),
            "revproxypath" => label("HTTP_BACKEND_REVPROXY_PATH"),
            "redirpath" => label("HTTP_BACKEND_REDIR"),
            "network-allowed" => label("BACKEND_NETWORK_ALLOWED_ACL"),
            f if f.starts_with("auth.") => label("AUTH"),
            f if f.starts_with("health-check.") => {
                format!("healthChecks[].{}", &f["health-check.".len()..])
            }
            "servers.host" => "tasks[].host".to_owned(),
            "servers.ip" => "tasks[].ipAddresses / tasks[].host".to_owned(),
            f => f.to_owned(),
        }
    }
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
            (
                "backend-snippets",
                Box::new(|s| s.backend_snippets = vec!["\"backend\" evil".into()]),
            ),
            (
                "frontend-snippets",
                Box::new(|s| s.frontend_snippets = vec![".if 0".into()]),
            ),
            ("app-id", Box::new(|s| s.app_id = "/a\nb".into())),
            (
                "auth.realm",
                Box::new(|s| {
                    s.auth = Some(mlb_model::Auth {
                        realm: "${SOME_VAR}".into(),
                        user: "u".into(),
                        password: "p".into(),
                    })
                }),
            ),
            (
                "redirpath",
                Box::new(|s| s.redirpath = Some("/x%[env(SOME_VAR)]".into())),
            ),
            (
                "health-check.path",
                Box::new(|s| {
                    s.health_check = Some(mlb_model::ServiceHealthCheck {
                        protocol: "HTTP".into(),
                        path: Some("/h\n  http-request deny".into()),
                        ..Default::default()
                    })
                }),
            ),
            ("servers.port", Box::new(|s| s.servers[0].port = 0)),
            ("bind-addr", Box::new(|s| s.bind_addr = String::new())),
            ("servers.ip", Box::new(|s| s.servers[0].ip = String::new())),
        ];
        for (field, breakit) in cases {
            let mut s = good();
            breakit(&mut s);
            let f = check_plugin_service(&s).unwrap_err();
            assert_eq!(f.field, field, "{f}");
        }
    }

    #[test]
    fn rendered_templates_open_only_their_own_section() {
        assert!(
            check_sections(
                TemplateName::BACKEND_HEAD,
                "a_1",
                "\nbackend a_1\n  balance x\n"
            )
            .is_ok()
        );
        assert!(
            check_sections(TemplateName::USERLIST_HEAD, "a_1", "\nuserlist user_a_1\n").is_ok()
        );
        for (template, text) in [
            (TemplateName::BACKEND_HEAD, "\nbackend other_2\n"),
            (TemplateName::BACKEND_HEAD, "\nbackend a_1\nbackend a_1\n"),
            (
                TemplateName::FRONTEND_HEAD,
                "\nfrontend a_1\n  bind :1\nlisten x\n",
            ),
            (TemplateName::HTTP_FRONTEND_ACL, "  # x\nbackend evil\n"),
            (TemplateName::HTTP_FRONTEND_ACL, "  acl a b\n  .if 0\n"),
            (TemplateName::BACKEND_HTTP_OPTIONS, "'backend' evil\n"),
            (
                TemplateName::BACKEND_HTTP_OPTIONS,
                "  \u{c}\rbackend\u{b}evil\n",
            ),
        ] {
            assert!(
                check_sections(template, "a_1", text).is_err(),
                "{template} {text:?}"
            );
        }
    }
}
