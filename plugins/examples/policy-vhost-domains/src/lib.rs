//! Example policy plugin: a service's vhosts must lie under the domains
//! allowed for its groups (world `policy-plugin` of `wit/mlb-plugins.wit`).
//!
//! A service without a `hostname` (none or empty) is allowed. Otherwise each
//! comma-separated vhost of its `hostname` (trimmed, compared lowercased)
//! must equal an allowed domain or end with `.` + an allowed domain, where
//! the allowed domains are those configured for any of the service's
//! `groups`. A group without a configuration entry allows nothing. The first
//! vhost that fails denies the service, e.g.
//!
//! ```text
//! vhost shop.evil.test is not under a domain allowed for group external (allowed: example.com, example.org)
//! ```
//!
//! # Configuration
//!
//! - `group.<GROUP>=domain1,domain2` — the domains allowed for `GROUP`
//!   (repeatable; repeated keys for one group add up). Domains are
//!   lowercased; blank entries are skipped, so `group.x=` configures a group
//!   that allows nothing. A domain must be made of `a-z 0-9 . -` and may not
//!   start or end with `.`.
//!
//! Any other key (or an empty group name or bad domain) makes `review`
//! return an error, which denies the whole batch (fail closed).
//!
//! # Layout
//!
//! - this file: WIT bindings, the exported `review`, and the policy as plain
//!   functions (`parse_config`, `verdict`) with their unit tests.

wit_bindgen::generate!({
    world: "policy-plugin",
    path: "../../../wit",
});

use exports::mlb::plugins::policy::{Guest, Verdict};
use mlb::plugins::types::{App, Config, Service};

struct VhostDomains;

impl Guest for VhostDomains {
    fn review(
        _apps: Vec<App>,
        services: Vec<Service>,
        config: Config,
    ) -> Result<Vec<Verdict>, String> {
        let allowed = parse_config(&config)?;
        Ok(services
            .iter()
            .map(
                |s| match verdict(&allowed, s.hostname.as_deref(), &s.groups) {
                    Ok(()) => Verdict::Allow,
                    Err(reason) => Verdict::Deny(reason),
                },
            )
            .collect())
    }
}

export!(VhostDomains);

/// The allowed domains of each configured group, in configuration order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Allowed {
    groups: Vec<(String, Vec<String>)>,
}

impl Allowed {
    /// Domains configured for `group` (none if it has no entry).
    pub fn domains(&self, group: &str) -> &[String] {
        self.groups
            .iter()
            .find(|(g, _)| g == group)
            .map(|(_, d)| d.as_slice())
            .unwrap_or(&[])
    }
}

/// Read `group.<GROUP>=d1,d2` entries; anything else is an error.
pub fn parse_config(config: &[(String, String)]) -> Result<Allowed, String> {
    let mut allowed = Allowed::default();
    for (key, value) in config {
        let Some(group) = key.strip_prefix("group.") else {
            return Err(format!(
                "unknown config key `{key}` (expected group.<GROUP>=domain,…)"
            ));
        };
        if group.is_empty() {
            return Err(format!("config key `{key}` has an empty group name"));
        }
        let index = match allowed.groups.iter().position(|(g, _)| g == group) {
            Some(i) => i,
            None => {
                allowed.groups.push((group.to_string(), Vec::new()));
                allowed.groups.len() - 1
            }
        };
        for domain in value.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let domain = domain.to_ascii_lowercase();
            let chars_ok = domain
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
            if !chars_ok || domain.starts_with('.') || domain.ends_with('.') {
                return Err(format!(
                    "config {key}: domain {domain:?} must be made of a-z, 0-9, '.', '-' and not start or end with '.'"
                ));
            }
            let domains = &mut allowed.groups[index].1;
            if !domains.contains(&domain) {
                domains.push(domain);
            }
        }
    }
    Ok(allowed)
}

/// Whether `vhost` equals `domain` or lies under it.
pub fn under(vhost: &str, domain: &str) -> bool {
    vhost == domain
        || vhost
            .strip_suffix(domain)
            .is_some_and(|head| head.ends_with('.'))
}

/// `Ok(())` if every vhost of `hostname` is under a domain allowed for one
/// of `groups`; else the deny reason for the first vhost that is not.
pub fn verdict(allowed: &Allowed, hostname: Option<&str>, groups: &[String]) -> Result<(), String> {
    let Some(hostname) = hostname.filter(|h| !h.trim().is_empty()) else {
        return Ok(());
    };
    let mut domains: Vec<&str> = Vec::new();
    for group in groups {
        for d in allowed.domains(group) {
            if !domains.contains(&d.as_str()) {
                domains.push(d);
            }
        }
    }
    for vhost in hostname.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        let lower = vhost.to_lowercase();
        if domains.iter().any(|d| under(&lower, d)) {
            continue;
        }
        let whose = match groups {
            [] => "any group (the service has none)".to_string(),
            [one] => format!("group {one}"),
            many => format!("groups {}", many.join(", ")),
        };
        let list = if domains.is_empty() {
            "none".to_string()
        } else {
            domains.join(", ")
        };
        return Err(format!(
            "vhost {vhost} is not under a domain allowed for {whose} (allowed: {list})"
        ));
    }
    Ok(())
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

    fn groups(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn allowed() -> Allowed {
        parse_config(&cfg(&[
            ("group.external", "example.com, Example.org"),
            ("group.internal", "corp.test"),
            ("group.external", "example.net,example.com"),
            ("group.closed", ""),
        ]))
        .unwrap()
    }

    #[test]
    fn config_is_merged_per_group() {
        let a = allowed();
        assert_eq!(
            a.domains("external"),
            ["example.com", "example.org", "example.net"]
        );
        assert_eq!(a.domains("internal"), ["corp.test"]);
        assert!(a.domains("closed").is_empty());
        assert!(a.domains("other").is_empty());
    }

    #[test]
    fn bad_config_is_an_error() {
        let err = parse_config(&cfg(&[("domains", "example.com")])).unwrap_err();
        assert!(err.contains("unknown config key `domains`"), "{err}");
        assert!(parse_config(&cfg(&[("group.", "example.com")])).is_err());
        assert!(parse_config(&cfg(&[("group.x", ".example.com")])).is_err());
        assert!(parse_config(&cfg(&[("group.x", "exa mple.com")])).is_err());
        assert!(parse_config(&cfg(&[("group.x", "*.example.com")])).is_err());
    }

    #[test]
    fn under_needs_a_label_boundary() {
        assert!(under("example.com", "example.com"));
        assert!(under("shop.example.com", "example.com"));
        assert!(under("*.example.com", "example.com"));
        assert!(!under("badexample.com", "example.com"));
        assert!(!under("example.com.evil.test", "example.com"));
        assert!(!under("com", "example.com"));
    }

    #[test]
    fn services_without_hostname_are_allowed() {
        let a = allowed();
        assert_eq!(verdict(&a, None, &groups(&["external"])), Ok(()));
        assert_eq!(verdict(&a, Some(""), &groups(&[])), Ok(()));
    }

    #[test]
    fn every_vhost_must_be_allowed() {
        let a = allowed();
        let ext = groups(&["external"]);
        assert_eq!(
            verdict(&a, Some("Shop.Example.com,example.org"), &ext),
            Ok(())
        );
        assert_eq!(
            verdict(&a, Some("shop.example.com,shop.evil.test"), &ext),
            Err(
                "vhost shop.evil.test is not under a domain allowed for group external \
                 (allowed: example.com, example.org, example.net)"
                    .to_string()
            )
        );
    }

    #[test]
    fn any_of_the_services_groups_may_allow() {
        let a = allowed();
        let both = groups(&["external", "internal"]);
        assert_eq!(
            verdict(&a, Some("app.corp.test,example.com"), &both),
            Ok(())
        );
        let err = verdict(&a, Some("x.other.test"), &both).unwrap_err();
        assert!(err.contains("for groups external, internal"), "{err}");
        assert!(
            err.ends_with("(allowed: example.com, example.org, example.net, corp.test)"),
            "{err}"
        );
    }

    #[test]
    fn unconfigured_or_empty_groups_allow_nothing() {
        let a = allowed();
        let err = verdict(&a, Some("example.com"), &groups(&["closed"])).unwrap_err();
        assert!(err.ends_with("(allowed: none)"), "{err}");
        assert!(verdict(&a, Some("example.com"), &groups(&["nope"])).is_err());
        let err = verdict(&a, Some("example.com"), &groups(&[])).unwrap_err();
        assert!(err.contains("any group"), "{err}");
    }
}
