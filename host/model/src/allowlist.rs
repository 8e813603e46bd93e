//! The one list of what a Marathon-sourced value may contain, by where it
//! lands in the HAProxy config or the map files.
//!
//! Every string that comes from Marathon (a label value, the app id, a
//! deployment group, a task's host or address, a health check's path) and
//! is pasted into the config is checked against one [`Class`] of this list:
//! by the default label rules (so their diagnostics name the label), by the
//! host when it reads `/v2/apps` (app ids, task addresses, health checks),
//! and again by the renderer on every service whatever plugin produced it.
//! Template-override labels (`HAPROXY_{n}_<TEMPLATE>`) and plugin snippets
//! are literal config by design and are not in this list; what they may not
//! do (open a section) is checked by the renderer.
//!
//! Why these characters:
//! - control characters, including U+0085 NEL, and U+2028/U+2029 end a line
//!   (HAProxy only splits on `\n`, but logs, maps and other readers do not
//!   agree on the rest): a value would inject lines;
//! - `"` and `'` start a quoted string, in which HAProxy expands `$VAR` and
//!   `${VAR}` from its environment, and `\` escapes the next character;
//!   `#` starts a comment that would cut the template's own condition off;
//! - `$` is refused where the template puts the value in double quotes;
//! - `%` is refused where the value lands in a log-format argument
//!   (`set-header`, `redirect location`, `replace-header`), where `%[...]`
//!   runs a sample fetch such as `env(NAME)`;
//! - whitespace is refused where the value must stay one word.

/// What one kind of value may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// App ids and deployment groups: ASCII letters, digits, `-`, `.`, `_`,
    /// `/` (Marathon's own rule, plus `_`).
    AppId,
    /// Task hosts and addresses, bind addresses: ASCII letters, digits,
    /// `-`, `.`, `_`, `:` (IPv6), `*` (any address).
    Address,
    /// A host-name list (`HAPROXY_{n}_VHOST`): one word without
    /// `{ } [ ] %`, commas separate names.
    HostList,
    /// One word: no whitespace (file names, a health-check path, modes).
    Word,
    /// One word that lands in a log-format argument: no `%` either.
    FormatWord,
    /// A single line of words (paths lists, `balance`, bind options).
    Line,
    /// A single line pasted between double quotes (the auth realm): no `$`.
    Quoted,
}

/// The allow-list: each row names the value, where it comes from in
/// Marathon, where it lands, and its [`Class`]. Documentation
/// (`docs/security-input.md`) and tests read this table.
pub const TABLE: &[(&str, &str, &str, Class)] = &[
    (
        "app id",
        "id, HAPROXY_DEPLOYMENT_GROUP",
        "ACL patterns, app map keys, comments",
        Class::AppId,
    ),
    (
        "task host",
        "tasks[].host",
        "server lines (host_ipv4 when it is an address)",
        Class::Address,
    ),
    (
        "task address",
        "tasks[].ipAddresses[].ipAddress",
        "server lines",
        Class::Address,
    ),
    (
        "health check protocol",
        "healthChecks[].protocol",
        "template variable",
        Class::Word,
    ),
    (
        "health check path",
        "healthChecks[].path",
        "option httpchk GET <path>",
        Class::Word,
    ),
    (
        "vhost",
        "HAPROXY_{n}_VHOST",
        "ACL patterns, set-header Host, domain map keys",
        Class::HostList,
    ),
    (
        "path",
        "HAPROXY_{n}_PATH",
        "path_beg ACL patterns",
        Class::Line,
    ),
    ("mode", "HAPROXY_{n}_MODE", "mode <mode>", Class::Word),
    (
        "balance",
        "HAPROXY_{n}_BALANCE",
        "balance <algorithm>",
        Class::Line,
    ),
    (
        "ssl cert",
        "HAPROXY_{n}_SSL_CERT",
        "bind ... ssl crt <file>",
        Class::Word,
    ),
    (
        "bind options",
        "HAPROXY_{n}_BIND_OPTIONS",
        "bind ... <options>",
        Class::Line,
    ),
    (
        "bind address",
        "HAPROXY_{n}_BIND_ADDR",
        "bind <addr>:<port>",
        Class::Address,
    ),
    (
        "auth realm",
        "HAPROXY_{n}_AUTH (realm)",
        "http-request auth realm \"<realm>\"",
        Class::Quoted,
    ),
    (
        "auth user",
        "HAPROXY_{n}_AUTH (user)",
        "userlist: user <user>",
        Class::Word,
    ),
    (
        "auth password",
        "HAPROXY_{n}_AUTH (password)",
        "userlist: password <hash>",
        Class::Word,
    ),
    (
        "proxy path",
        "HAPROXY_{n}_HTTP_BACKEND_PROXYPASS_PATH",
        "replace-path regex",
        Class::Word,
    ),
    (
        "reverse proxy path",
        "HAPROXY_{n}_HTTP_BACKEND_REVPROXY_PATH",
        "replace-header format",
        Class::FormatWord,
    ),
    (
        "redirect",
        "HAPROXY_{n}_HTTP_BACKEND_REDIR",
        "redirect location format",
        Class::FormatWord,
    ),
    (
        "allowed networks",
        "HAPROXY_{n}_BACKEND_NETWORK_ALLOWED_ACL",
        "acl ... src <networks>",
        Class::Line,
    ),
    (
        "plugin variable",
        "a label plugin's vars",
        "wherever an override template puts it",
        Class::Line,
    ),
];

/// Why a value is refused: the offending character and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The character.
    pub character: char,
    /// Why it is not allowed here.
    pub reason: &'static str,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "contains {:?}, {}", self.character, self.reason)
    }
}

/// Characters that end a line for some reader.
pub fn is_line_break(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

fn base(c: char) -> Option<&'static str> {
    if is_line_break(c) {
        Some("a control or line-separator character (it would inject a line)")
    } else if matches!(c, '"' | '\'' | '\\') {
        Some("a quote or backslash (HAProxy would expand ${VAR} or unescape inside it)")
    } else if c == '#' {
        Some("a comment sign (it would cut the rest of the config line off)")
    } else {
        None
    }
}

fn refusal(c: char, class: Class) -> Option<&'static str> {
    const ADDRESS: &str = "not allowed in an address (letters, digits, '-', '.', '_', ':', '*')";
    match class {
        Class::AppId => (!(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/')))
            .then_some("not allowed in an app id (letters, digits, '-', '.', '_', '/')"),
        Class::Address => (!(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '*')))
            .then_some(ADDRESS),
        Class::HostList => base(c).or_else(|| {
            (c.is_whitespace() || matches!(c, '{' | '}' | '[' | ']' | '%'))
                .then_some("not allowed in a host name")
        }),
        Class::Word => base(c).or_else(|| {
            c.is_whitespace()
                .then_some("whitespace (this value must be one word)")
        }),
        Class::FormatWord => base(c).or_else(|| {
            if c.is_whitespace() {
                Some("whitespace (this value must be one word)")
            } else {
                (c == '%').then_some(
                    "a '%' (the value lands in a log-format argument, where %[...] would run a sample fetch)",
                )
            }
        }),
        Class::Line => base(c),
        Class::Quoted => base(c).or_else(|| {
            (c == '$').then_some(
                "a '$' (the value is pasted between double quotes, where HAProxy expands ${VAR})",
            )
        }),
    }
}

/// Check `value` against `class`.
pub fn check(class: Class, value: &str) -> Result<(), Refusal> {
    // Letters, digits, '-', '.', '_' are allowed everywhere: most values are
    // only that, and this runs for every value of every service.
    if value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Ok(());
    }
    match value
        .chars()
        .find_map(|c| refusal(c, class).map(|reason| (c, reason)))
    {
        Some((character, reason)) => Err(Refusal { character, reason }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_keeps_ordinary_values_and_refuses_injection() {
        let ok = [
            (Class::AppId, "/shop/web-1.v2_x"),
            (Class::Address, "fd00::1"),
            (Class::Address, "10.0.0.1"),
            (Class::HostList, "a.test,*.b.test,C.test:8080"),
            (Class::Word, "/etc/ssl/a.pem"),
            (Class::FormatWord, "/dashboard/"),
            (Class::Line, "-i /Static /assets"),
            (Class::Quoted, "My Realm"),
            (Class::Word, "$6$salt$hash"),
        ];
        for (class, v) in ok {
            check(class, v).unwrap_or_else(|e| panic!("{class:?} {v:?}: {e}"));
        }
        let bad = [
            (Class::AppId, "/a b"),
            (Class::AppId, "/a\n"),
            (Class::Address, "1.2.3.4 backup"),
            (Class::HostList, "a.test\u{2028}b"),
            (Class::HostList, "%[env(X)]"),
            (Class::Word, "/p\u{85}x"),
            (Class::FormatWord, "/x%[env(X)]"),
            (Class::Line, "/x\"${X}\""),
            (Class::Line, "a\\"),
            (Class::Line, "a # b"),
            (Class::Quoted, "${SOME_VAR}"),
            (Class::Quoted, "a\"b"),
        ];
        for (class, v) in bad {
            assert!(check(class, v).is_err(), "{class:?} {v:?}");
        }
    }
}
