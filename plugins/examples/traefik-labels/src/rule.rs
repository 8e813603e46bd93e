//! The `traefik.frontend.rule` parser.
//!
//! A rule is a `;`-separated list of matchers `Name:value`. Two matchers are
//! understood:
//!
//! - `Host:a.example.com,b.example.com` — the vhosts (lowercased; `*` allowed
//!   as a wildcard label, as in `*.example.com`);
//! - `PathPrefix:/api` — the path prefix.
//!
//! Blanks around matchers, names and values are ignored, and so are empty
//! matchers (`Host:a.test;` is fine). Anything else is an error naming the
//! offending part.

/// A parsed `traefik.frontend.rule`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// Vhosts of the `Host` matcher, lowercased, in the order given.
    pub hosts: Vec<String>,
    /// The `PathPrefix` matcher's value.
    pub path: Option<String>,
}

/// Parse a `traefik.frontend.rule` value.
pub fn parse_rule(text: &str) -> Result<Rule, String> {
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!("contains the control character {c:?}"));
    }
    let mut rule = Rule::default();
    let mut seen_host = false;
    for matcher in text.split(';').map(str::trim) {
        if matcher.is_empty() {
            continue;
        }
        let Some((name, value)) = matcher.split_once(':') else {
            return Err(format!(
                "matcher `{matcher}` is not of the form Name:value (supported: Host, PathPrefix)"
            ));
        };
        let (name, value) = (name.trim(), value.trim());
        match name {
            "Host" => {
                if seen_host {
                    return Err("matcher Host is given more than once".to_string());
                }
                seen_host = true;
                rule.hosts = parse_hosts(value)?;
            }
            "PathPrefix" => {
                if rule.path.is_some() {
                    return Err("matcher PathPrefix is given more than once".to_string());
                }
                rule.path = Some(parse_path(value)?);
            }
            other => {
                return Err(format!(
                    "unsupported matcher `{other}` (supported: Host, PathPrefix)"
                ));
            }
        }
    }
    Ok(rule)
}

/// The vhosts of a `Host:` matcher: a comma list, lowercased, each made of
/// `[a-z0-9.-*]` only.
fn parse_hosts(value: &str) -> Result<Vec<String>, String> {
    let mut hosts = Vec::new();
    for host in value.split(',').map(str::trim) {
        if host.is_empty() {
            return Err(format!("Host matcher `{value}` has an empty hostname"));
        }
        let host = host.to_lowercase();
        if let Some(c) = host.chars().find(|&c| !is_host_char(c)) {
            return Err(format!(
                "hostname `{host}` contains {c:?} (allowed: a-z, 0-9, '.', '-', '*')"
            ));
        }
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    Ok(hosts)
}

fn is_host_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '*')
}

/// The value of a `PathPrefix:` matcher: starts with `/`, no blanks.
fn parse_path(value: &str) -> Result<String, String> {
    if !value.starts_with('/') {
        return Err(format!("PathPrefix `{value}` does not start with '/'"));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(format!("PathPrefix `{value}` contains blanks"));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn host_list_is_split_and_lowercased() {
        let rule = parse_rule("Host:A.Example.com, b.example.com").unwrap();
        assert_eq!(rule.hosts, hosts(&["a.example.com", "b.example.com"]));
        assert_eq!(rule.path, None);
    }

    #[test]
    fn host_and_path_prefix() {
        let rule = parse_rule(" Host: api.example.com ; PathPrefix:/v1 ;").unwrap();
        assert_eq!(rule.hosts, hosts(&["api.example.com"]));
        assert_eq!(rule.path.as_deref(), Some("/v1"));
    }

    #[test]
    fn path_prefix_alone() {
        let rule = parse_rule("PathPrefix:/api").unwrap();
        assert!(rule.hosts.is_empty());
        assert_eq!(rule.path.as_deref(), Some("/api"));
    }

    #[test]
    fn wildcards_are_allowed_and_duplicates_dropped() {
        let rule = parse_rule("Host:*.example.com,*.EXAMPLE.com").unwrap();
        assert_eq!(rule.hosts, hosts(&["*.example.com"]));
    }

    #[test]
    fn empty_rule_is_empty() {
        assert_eq!(parse_rule("").unwrap(), Rule::default());
        assert_eq!(parse_rule(" ; ").unwrap(), Rule::default());
    }

    #[test]
    fn unknown_matchers_are_rejected() {
        let err = parse_rule("Host:a.test;PathPrefixStrip:/x").unwrap_err();
        assert!(
            err.contains("unsupported matcher `PathPrefixStrip`"),
            "{err}"
        );
        let err = parse_rule("HostRegexp:{sub:[a-z]+}.test").unwrap_err();
        assert!(err.contains("HostRegexp"), "{err}");
        let err = parse_rule("a.example.com").unwrap_err();
        assert!(err.contains("Name:value"), "{err}");
    }

    #[test]
    fn bad_hostnames_are_rejected() {
        for rule in [
            "Host:a b.test",
            "Host:a_b.test",
            "Host:a.test,",
            "Host:",
            "Host:ex\u{e4}mple.test",
            "Host:a.test/x",
        ] {
            assert!(parse_rule(rule).is_err(), "{rule} was accepted");
        }
    }

    #[test]
    fn control_characters_are_rejected() {
        let err = parse_rule("Host:a.test\n  bind :80").unwrap_err();
        assert!(err.contains("control character"), "{err}");
        assert!(parse_rule("PathPrefix:/a\t").is_err());
    }

    #[test]
    fn bad_paths_are_rejected() {
        assert!(parse_rule("PathPrefix:api").is_err());
        assert!(parse_rule("PathPrefix:").is_err());
        assert!(parse_rule("PathPrefix:/a b").is_err());
    }

    #[test]
    fn repeated_matchers_are_rejected() {
        assert!(parse_rule("Host:a.test;Host:b.test").is_err());
        assert!(parse_rule("PathPrefix:/a;PathPrefix:/b").is_err());
    }
}
