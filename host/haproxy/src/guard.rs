//! Opt-in protection of the port-9090 endpoints (`--stats-bind`,
//! `--stats-auth-file`) without rewriting `HAPROXY_HEAD`.
//!
//! # Layout
//! * [`StatsGuard`]: the two options, read and checked once at start.
//! * [`StatsGuard::apply`]: rewrites the `listen stats` section of a HEAD
//!   template: its first `bind` line gets the new address (its options
//!   kept), further `bind` lines are dropped;
//!   with credentials, a `userlist mlb_stats` section is put before it and an
//!   `http-request auth` rule first in it, so every endpoint of the section
//!   (stats page, Prometheus exporter, `/_haproxy_*`, `/_mlb_signal/*`)
//!   needs them, except the section's `monitor-uri` (health checks of an
//!   outer load balancer carry no credentials).
//!
//! With neither option the HEAD is not touched (the output stays
//! byte-identical to marathon-lb's).

use std::net::SocketAddr;
use std::path::Path;

/// Name of the userlist holding the 9090 credentials.
pub const USERLIST: &str = "mlb_stats";

/// Why the protection cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The credential file is unusable.
    #[error("--stats-auth-file {path}: {reason}")]
    AuthFile {
        /// The file.
        path: String,
        /// What is wrong (never the password).
        reason: String,
    },
    /// The HEAD has no `listen stats` section to protect.
    #[error(
        "{flag} needs a `listen stats` section in HAPROXY_HEAD (the default HEAD has one); add it, or protect port 9090 in your own HEAD and drop {flag}"
    )]
    NoStatsSection {
        /// The flag that needs it.
        flag: &'static str,
    },
    /// `--stats-bind` but the section has no `bind` line.
    #[error(
        "--stats-bind: the `listen stats` section of HAPROXY_HEAD has no `bind` line to replace"
    )]
    NoBind,
}

/// Credentials for the 9090 endpoints.
#[derive(Clone)]
pub struct StatsAuth {
    user: String,
    /// A crypt(3) hash (`$5$…`, `$6$…`, `$2b$…`, `$y$…`), else plain text.
    secret: String,
}

impl std::fmt::Debug for StatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsAuth")
            .field("user", &self.user)
            .field("secret", &"<hidden>")
            .finish()
    }
}

impl StatsAuth {
    /// Parse `user:password` (first line of the file). The password may be
    /// a crypt(3) hash, which is what should be used: the plain text ends up
    /// in haproxy.cfg as an `insecure-password`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, GuardError> {
        let err = |reason: &str| GuardError::AuthFile {
            path: path.display().to_string(),
            reason: reason.to_owned(),
        };
        let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
        let (user, secret) = line
            .split_once(':')
            .ok_or_else(|| err("the first line must be user:password"))?;
        if user.is_empty()
            || !user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(err(
                "the user name may hold only letters, digits, '_', '-', '.'",
            ));
        }
        if secret.is_empty() || secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(
                "the password must be non-empty, without spaces or control characters; \
                 for a password with spaces, put its crypt hash there (`openssl passwd -6`)",
            ));
        }
        let auth = Self {
            user: user.to_owned(),
            secret: secret.to_owned(),
        };
        // Pasted unquoted into haproxy.cfg, these would be read as a
        // comment, quotes or an escape.
        if !auth.is_hashed() && secret.contains(['#', '\'', '"', '\\']) {
            return Err(err(
                "a plain-text password must not contain #, ', \" or \\ (HAProxy would read it differently); \
                 put a crypt hash there instead, e.g. the output of `openssl passwd -6`",
            ));
        }
        Ok(auth)
    }

    /// Read and parse `path`.
    pub fn from_file(path: &Path) -> Result<Self, GuardError> {
        let text = std::fs::read_to_string(path).map_err(|e| GuardError::AuthFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, path)
    }

    /// Whether the secret is a crypt(3) hash.
    pub fn is_hashed(&self) -> bool {
        ["$5$", "$6$", "$2a$", "$2b$", "$2y$", "$y$"]
            .iter()
            .any(|p| self.secret.starts_with(p))
    }

    fn userlist(&self) -> String {
        let kind = if self.is_hashed() {
            "password"
        } else {
            "insecure-password"
        };
        format!(
            "userlist {USERLIST}\n  user {} {kind} {}\n",
            self.user, self.secret
        )
    }
}

/// The opt-in protection of port 9090.
#[derive(Debug, Clone, Default)]
pub struct StatsGuard {
    /// `--stats-bind`: the address the `listen stats` section binds.
    pub bind: Option<SocketAddr>,
    /// `--stats-auth-file`: credentials every 9090 endpoint but the health
    /// check asks for.
    pub auth: Option<StatsAuth>,
}

impl StatsGuard {
    /// Whether any protection is on.
    pub fn is_on(&self) -> bool {
        self.bind.is_some() || self.auth.is_some()
    }

    /// `head` with the `listen stats` section protected (unchanged when no
    /// option is on).
    pub fn apply(&self, head: &str) -> Result<String, GuardError> {
        if !self.is_on() {
            return Ok(head.to_owned());
        }
        let flag = if self.bind.is_some() {
            "--stats-bind"
        } else {
            "--stats-auth-file"
        };
        let lines: Vec<&str> = head.split_inclusive('\n').collect();
        let start = lines
            .iter()
            .position(|l| {
                let mut words = l.split_whitespace();
                words.next() == Some("listen") && words.next() == Some("stats")
            })
            .ok_or(GuardError::NoStatsSection { flag })?;
        // The section ends at the next line that starts a section (no indent).
        let end = lines[start + 1..]
            .iter()
            .position(|l| l.starts_with(|c: char| !c.is_whitespace()))
            .map_or(lines.len(), |i| start + 1 + i);
        let section = &lines[start + 1..end];
        let monitor = section.iter().find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("monitor-uri"))
                .then(|| words.next())
                .flatten()
        });

        let mut out = String::with_capacity(head.len() + 256);
        lines[..start].iter().for_each(|l| out.push_str(l));
        if let Some(auth) = &self.auth {
            out.push_str(&auth.userlist());
        }
        out.push_str(lines[start]);
        if !lines[start].ends_with('\n') {
            out.push('\n');
        }
        if self.auth.is_some() {
            out.push_str(&format!("  acl mlb_stats_auth http_auth({USERLIST})\n"));
            match monitor {
                Some(uri) => {
                    out.push_str(&format!("  acl mlb_stats_health path {uri}\n"));
                    out.push_str(
                        "  http-request auth realm marathon-lb if !mlb_stats_auth !mlb_stats_health\n",
                    );
                }
                None => {
                    out.push_str("  http-request auth realm marathon-lb if !mlb_stats_auth\n");
                }
            }
        }
        let mut binds = 0;
        for line in section {
            match self.bind {
                Some(addr) if line.split_whitespace().next() == Some("bind") => {
                    binds += 1;
                    if binds > 1 {
                        // One address replaces them all (e.g. IPv4 + IPv6).
                        continue;
                    }
                    let indent = &line[..line.len() - line.trim_start().len()];
                    // Keep the options after the address (ssl crt …).
                    let options: Vec<&str> = line.split_whitespace().skip(2).collect();
                    out.push_str(indent);
                    out.push_str(&format!("bind {addr}"));
                    for o in options {
                        out.push(' ');
                        out.push_str(o);
                    }
                    out.push('\n');
                }
                _ => out.push_str(line),
            }
        }
        if self.bind.is_some() && binds == 0 {
            return Err(GuardError::NoBind);
        }
        lines[end..].iter().for_each(|l| out.push_str(l));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "global\n  maxconn 1\nlisten stats\n  bind 0.0.0.0:9090\n  mode http\n  monitor-uri /_haproxy_health_check\n  http-request use-service lua.getpids if { path /_haproxy_getpids }\n";

    fn auth(text: &str) -> StatsAuth {
        StatsAuth::parse(text, Path::new("f")).unwrap()
    }

    #[test]
    fn off_is_identity() {
        assert_eq!(StatsGuard::default().apply(HEAD).unwrap(), HEAD);
    }

    #[test]
    fn rewrites_the_bind_and_puts_auth_before_every_rule() {
        let guard = StatsGuard {
            bind: Some("127.0.0.1:9091".parse().unwrap()),
            auth: Some(auth("ops:$6$salt$hash\n")),
        };
        let out = guard.apply(HEAD).unwrap();
        assert!(
            out.contains("userlist mlb_stats\n  user ops password $6$salt$hash\nlisten stats\n")
        );
        assert!(out.contains("  bind 127.0.0.1:9091\n"));
        assert!(!out.contains("0.0.0.0:9090"));
        let auth_at = out.find("http-request auth").unwrap();
        assert!(auth_at < out.find("use-service").unwrap());
        assert!(out.contains("acl mlb_stats_health path /_haproxy_health_check"));
    }

    #[test]
    fn the_default_head_is_protected_before_every_endpoint() {
        let head = mlb_core::Templates::defaults()
            .get(mlb_core::TemplateName::HEAD)
            .to_owned();
        let guard = StatsGuard {
            bind: Some("127.0.0.1:9090".parse().unwrap()),
            auth: Some(auth("ops:$6$s$h")),
        };
        let out = guard.apply(&head).unwrap();
        assert!(!out.contains("0.0.0.0:9090"));
        assert_eq!(out.matches("  bind 127.0.0.1:9090\n").count(), 1);
        let auth_at = out.find("http-request auth realm marathon-lb").unwrap();
        let stats_at = out.find("listen stats").unwrap();
        assert!(stats_at < auth_at);
        for rule in [
            "prometheus-exporter",
            "lua.getpids",
            "lua.getconfig",
            "lua.signalmlbusr1",
        ] {
            assert!(auth_at < out.find(rule).unwrap(), "{rule}");
        }
        assert!(out.contains("acl mlb_stats_health path /_haproxy_health_check\n"));
        // Everything else is untouched.
        let unchanged = |s: &str| {
            s.lines()
                .filter(|l| {
                    !l.contains("mlb_stats") && !l.contains("bind ") && !l.contains("  user ops")
                })
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(unchanged(&out), unchanged(&head));
        // HAProxy accepts it (Lua files where the test can write them).
        let dir = tempfile::tempdir().unwrap();
        crate::install_lua(dir.path()).unwrap();
        let cfg = dir.path().join("haproxy.cfg");
        let lua = format!("lua-load {}/", dir.path().display());
        std::fs::write(&cfg, out.replace("lua-load /marathon-lb/", &lua)).unwrap();
        crate::apply::validate(&cfg).unwrap();
    }

    #[test]
    fn plain_password_is_insecure_password_and_never_debug_printed() {
        let a = auth("ops:s3cret");
        assert!(!a.is_hashed());
        assert!(a.userlist().contains("insecure-password s3cret"));
        assert!(!format!("{a:?}").contains("s3cret"));
    }

    #[test]
    fn bad_input_is_refused() {
        for bad in ["nocolon", ":pw", "a b:pw", "ops:", "ops:a b", "ops:x\u{7}"] {
            assert!(StatsAuth::parse(bad, Path::new("f")).is_err(), "{bad:?}");
        }
        for bad in [
            "ops:a#b",
            "ops:it's",
            "ops:say\"x\"",
            "ops:back\\slash",
            "ops:tab\tx",
        ] {
            let e = StatsAuth::parse(bad, Path::new("f"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("--stats-auth-file f:"), "{e}");
            assert!(!e.contains(&bad[4..]), "the password is not echoed: {e}");
            assert!(e.contains("openssl passwd -6"), "{e}");
        }
        // A crypt hash is taken as it is.
        assert!(auth("ops:$6$salt$abc./XYZ").is_hashed());
        let guard = StatsGuard {
            bind: Some("127.0.0.1:1".parse().unwrap()),
            auth: None,
        };
        assert!(matches!(
            guard.apply("global\n  maxconn 1\n"),
            Err(GuardError::NoStatsSection {
                flag: "--stats-bind"
            })
        ));
        assert!(matches!(
            guard.apply("listen stats\n  mode http\n"),
            Err(GuardError::NoBind)
        ));
    }
}
