//! Before the supervised HAProxy starts: what the config needs from this
//! host, checked so that a start failure is one message naming the setting
//! and the fix instead of an `[ALERT]` after the fact.
//!
//! Checked on the config rendered without any app (the global part: HEAD
//! and the :80/:443 frontends), so a problem found here is global — no app
//! is to blame and none is left out for it:
//! * **certificates**: every `crt` of a `bind … ssl` line must exist (file or
//!   directory; relative paths under `crt-base`);
//! * **open files**: HAProxy needs about two descriptors per connection of
//!   the global `maxconn` and cannot start when that exceeds the limit it
//!   may raise itself to ("Cannot raise FD limit to N, limit is M");
//! * **privileged ports**: binding below
//!   `net.ipv4.ip_unprivileged_port_start` (1024) needs root or
//!   `CAP_NET_BIND_SERVICE`;
//! * **log target** (a warning only: HAProxy starts, its logs are lost): a
//!   `log` line naming a Unix socket that does not exist.
//!
//! # Layout
//! - [`Host`]: the facts about this host the checks use.
//! - [`check`]: the checks on a config text.
//! - [`Problem`]: what stops HAProxy, one message each.

use std::path::{Path, PathBuf};

/// What the checks need to know about the host HAProxy runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The most open files HAProxy may raise itself to: the hard
    /// `RLIMIT_NOFILE`, or `fs.nr_open` with `CAP_SYS_RESOURCE`.
    pub open_files: Option<u64>,
    /// Ports below this need privileges (`ip_unprivileged_port_start`, or
    /// 0 when running as root or with `CAP_NET_BIND_SERVICE`).
    pub privileged_below: u16,
    /// HAProxy's default thread count (the CPUs available).
    pub threads: u64,
}

/// `CAP_NET_BIND_SERVICE`.
const CAP_NET_BIND_SERVICE: u32 = 10;
/// `CAP_SYS_RESOURCE`.
const CAP_SYS_RESOURCE: u32 = 24;

fn effective_capability(cap: u32) -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
            u64::from_str_radix(hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << cap) != 0)
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl Host {
    /// This process's limits and privileges (HAProxy inherits them).
    pub fn current() -> Self {
        use rustix::process::{Resource, getrlimit};
        let hard = getrlimit(Resource::Nofile).maximum;
        let open_files = if effective_capability(CAP_SYS_RESOURCE) {
            read_number("/proc/sys/fs/nr_open").or(hard)
        } else {
            hard
        };
        let privileged =
            rustix::process::geteuid().is_root() || effective_capability(CAP_NET_BIND_SERVICE);
        let start = read_number("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .and_then(|n| u16::try_from(n).ok())
            .unwrap_or(1024);
        Self {
            open_files,
            privileged_below: if privileged { 0 } else { start },
            threads: std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(1)
                .min(64),
        }
    }
}

/// A host problem that keeps HAProxy from starting with this config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A certificate named by `bind … ssl crt` does not exist.
    #[error(
        "{section}: `bind {bind} … ssl crt {path}`: no certificate at {resolved}: put a PEM file \
         (certificate and key) there, or name another with --ssl-certs (the :443 frontend) or \
         HAPROXY_{{n}}_SSL_CERT (an app's)"
    )]
    Certificate {
        /// `frontend <name>` or `listen <name>`.
        section: String,
        /// The bind address.
        bind: String,
        /// The path as written.
        path: String,
        /// The path HAProxy would open.
        resolved: String,
    },
    /// The global `maxconn` needs more descriptors than the host allows.
    #[error(
        "global `maxconn {maxconn}` needs ~{needed} open files (2 per connection plus \
         {overhead}), the limit here is {limit}: raise the hard `ulimit -n` (docker run \
         --ulimit nofile={needed}:{needed}) or lower `maxconn` in HAPROXY_HEAD (the environment \
         variable or a HAPROXY_HEAD file in --templates-dir)"
    )]
    OpenFiles {
        /// The global `maxconn`.
        maxconn: u64,
        /// What HAProxy would ask for.
        needed: u64,
        /// Listeners, threads and reserved descriptors.
        overhead: u64,
        /// The highest limit HAProxy can set.
        limit: u64,
    },
    /// `ulimit-n` in `global` is above the host's limit.
    #[error(
        "global `ulimit-n {wanted}` is above the limit here ({limit}): raise the hard \
         `ulimit -n` or lower `ulimit-n` in HAPROXY_HEAD"
    )]
    UlimitN {
        /// `ulimit-n`.
        wanted: u64,
        /// The highest limit HAProxy can set.
        limit: u64,
    },
    /// A port below the unprivileged start without the privilege.
    #[error(
        "{section}: `bind {bind}`: port {port} needs root or CAP_NET_BIND_SERVICE (ports below \
         {below} are privileged here): run as root, grant the capability (setcap \
         cap_net_bind_service=+ep on haproxy, or --cap-add NET_BIND_SERVICE), or bind a port \
         >= {below} (--dont-bind-http-https drops the :80/:443 frontends)"
    )]
    PrivilegedPort {
        /// `frontend <name>` or `listen <name>`.
        section: String,
        /// The bind address.
        bind: String,
        /// The port.
        port: u16,
        /// The unprivileged start.
        below: u16,
    },
}

/// One `bind` line: its section, address list and the rest of its words.
struct Bind<'a> {
    section: String,
    address: &'a str,
    words: Vec<&'a str>,
}

/// Sections, `bind` lines and global settings of a config.
#[derive(Default)]
struct Parsed<'a> {
    binds: Vec<Bind<'a>>,
    maxconn: Option<u64>,
    ulimit_n: Option<u64>,
    crt_base: Option<&'a str>,
    logs: Vec<&'a str>,
}

fn parse(config: &str) -> Parsed<'_> {
    let mut parsed = Parsed::default();
    let mut section = String::new();
    for line in config.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(&first) = words.first() else {
            continue;
        };
        if line.starts_with(|c: char| c.is_ascii_alphabetic()) {
            section = words.iter().take(2).copied().collect::<Vec<_>>().join(" ");
            continue;
        }
        let number = || words.get(1).and_then(|n| n.parse::<u64>().ok());
        match (section.as_str(), first) {
            ("global", "maxconn") => parsed.maxconn = number(),
            ("global", "ulimit-n") => parsed.ulimit_n = number(),
            ("global", "crt-base") => parsed.crt_base = words.get(1).copied(),
            ("global", "log") => parsed.logs.extend(words.get(1).copied()),
            (s, "bind") if s.starts_with("frontend") || s.starts_with("listen") => {
                if let Some(address) = words.get(1) {
                    parsed.binds.push(Bind {
                        section: section.clone(),
                        address,
                        words: words[2..].to_vec(),
                    });
                }
            }
            _ => {}
        }
    }
    parsed
}

/// The ports of a bind address list (`*:80`, `127.0.0.1:8080-8090,:443`,
/// `[::]:80`, `ipv4@:80`); Unix sockets and file descriptors have none.
fn ports(address: &str) -> Vec<u16> {
    address
        .split(',')
        .filter(|a| !a.starts_with('/') && !a.contains("unix@") && !a.contains("fd@"))
        .filter_map(|a| a.rsplit_once(':'))
        .filter_map(|(_, port)| port.split('-').next()?.parse().ok())
        .collect()
}

/// Descriptors HAProxy 2.6 asks for with global `maxconn` (haproxy.c,
/// `compute_ideal_maxsock()`): 2 per connection (client and server side),
/// 2 per pipe (none: the templates do not splice), 1 poller and a 2-fd
/// wake-up pipe per thread, on top of the 10 reserved at start-up plus one
/// per listener. Returns (needed, overhead).
pub fn descriptors_needed(maxconn: u64, listeners: u64, threads: u64) -> (u64, u64) {
    let overhead = 10 + listeners + 3 * threads;
    (2 * maxconn + overhead, overhead)
}

/// Check `config` against `host`. `Err`: HAProxy would not start; `Ok`:
/// warnings (HAProxy starts, but something is off).
pub fn check(config: &str, host: &Host) -> Result<Vec<String>, Problem> {
    let parsed = parse(config);
    for bind in &parsed.binds {
        let ssl = bind.words.contains(&"ssl");
        let crts = bind
            .words
            .windows(2)
            .filter(|w| w[0] == "crt")
            .map(|w| w[1]);
        for path in crts.filter(|_| ssl) {
            let resolved = match parsed.crt_base {
                Some(base) if !path.starts_with('/') => Path::new(base).join(path),
                _ => PathBuf::from(path),
            };
            if !resolved.exists() {
                return Err(Problem::Certificate {
                    section: bind.section.clone(),
                    bind: bind.address.to_owned(),
                    path: path.to_owned(),
                    resolved: resolved.display().to_string(),
                });
            }
        }
        if let Some(port) = ports(bind.address)
            .into_iter()
            .find(|p| *p > 0 && *p < host.privileged_below)
        {
            return Err(Problem::PrivilegedPort {
                section: bind.section.clone(),
                bind: bind.address.to_owned(),
                port,
                below: host.privileged_below,
            });
        }
    }
    if let Some(limit) = host.open_files {
        if let Some(wanted) = parsed.ulimit_n {
            if wanted > limit {
                return Err(Problem::UlimitN { wanted, limit });
            }
        } else if let Some(maxconn) = parsed.maxconn {
            let listeners: u64 = parsed
                .binds
                .iter()
                .map(|b| ports(b.address).len().max(1) as u64)
                .sum();
            let (needed, overhead) = descriptors_needed(maxconn, listeners, host.threads);
            if needed > limit {
                return Err(Problem::OpenFiles {
                    maxconn,
                    needed,
                    overhead,
                    limit,
                });
            }
        }
    }
    let mut warnings = Vec::new();
    for target in &parsed.logs {
        let path = target.strip_prefix("unix@").unwrap_or(target);
        if path.starts_with('/') && !Path::new(path).exists() {
            warnings.push(format!(
                "global `log {target}`: no syslog socket at {path}, so HAProxy's own logs are \
                 dropped: run a syslog daemon, or log elsewhere from HAPROXY_HEAD (e.g. `log \
                 stdout format raw local0`)"
            ));
        }
    }
    warnings.dedup();
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            open_files: Some(20_000),
            privileged_below: 1024,
            threads: 2,
        }
    }

    const HEAD: &str = "global\n  maxconn 1000\n  log /nonexistent/dev/log local0\ndefaults\n  timeout connect 1s\nlisten stats\n  bind 0.0.0.0:9090\n  mode http\n";

    #[test]
    fn a_small_config_passes_with_a_log_warning() {
        let warnings = check(HEAD, &host()).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("global `log /nonexistent/dev/log`: no syslog socket"));
    }

    #[test]
    fn maxconn_above_the_limit_names_setting_and_fix() {
        let config = HEAD.replace("maxconn 1000", "maxconn 50000");
        let err = check(&config, &host()).unwrap_err();
        // 2 × 50000 + 10 reserved + 1 listener + 3 × 2 threads.
        assert_eq!(
            err,
            Problem::OpenFiles {
                maxconn: 50_000,
                needed: 100_017,
                overhead: 17,
                limit: 20_000
            }
        );
        let message = err.to_string();
        assert!(message.starts_with("global `maxconn 50000` needs ~100017 open files"));
        assert!(message.contains("the limit here is 20000: raise the hard `ulimit -n`"));
        assert!(message.contains("lower `maxconn` in HAPROXY_HEAD"));
        // `ulimit-n` replaces the computation.
        let config = config.replace("global\n", "global\n  ulimit-n 30000\n");
        assert_eq!(
            check(&config, &host()).unwrap_err(),
            Problem::UlimitN {
                wanted: 30_000,
                limit: 20_000
            }
        );
        // No known limit: nothing to compare with.
        let unlimited = Host {
            open_files: None,
            ..host()
        };
        assert!(check(&HEAD.replace("maxconn 1000", "maxconn 50000"), &unlimited).is_ok());
    }

    #[test]
    fn missing_certificates_are_named_with_their_frontend() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let config = format!(
            "{HEAD}frontend marathon_https_in\n  bind *:4443 ssl crt {} crt other.pem\n  mode http\n",
            cert.display()
        );
        let err = check(&config, &host()).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "frontend marathon_https_in: `bind *:4443 … ssl crt {c}`: no certificate at {c}: put a PEM file",
                c = cert.display()
            )),
            "{err}"
        );
        std::fs::write(&cert, "pem").unwrap();
        // The second one, relative to crt-base.
        let config = config.replace(
            "global\n",
            &format!("global\n  crt-base {}\n", dir.path().display()),
        );
        let Problem::Certificate { resolved, .. } = check(&config, &host()).unwrap_err() else {
            panic!()
        };
        assert_eq!(resolved, dir.path().join("other.pem").display().to_string());
        // A directory of certificates is fine too.
        std::fs::create_dir(dir.path().join("other.pem")).unwrap();
        assert!(check(&config, &host()).is_ok());
        // Without `ssl`, `crt` is not read.
        assert!(check("frontend x\n  bind :4443 crt /nope\n", &host()).is_ok());
    }

    #[test]
    fn privileged_ports_need_root_or_the_capability() {
        let config = "frontend marathon_http_in\n  bind *:80\n  mode http\n";
        let err = check(config, &host()).unwrap_err();
        assert_eq!(
            err,
            Problem::PrivilegedPort {
                section: "frontend marathon_http_in".into(),
                bind: "*:80".into(),
                port: 80,
                below: 1024
            }
        );
        assert!(
            err.to_string()
                .contains("needs root or CAP_NET_BIND_SERVICE")
        );
        let root = Host {
            privileged_below: 0,
            ..host()
        };
        assert!(check(config, &root).is_ok());
        assert_eq!(
            ports("127.0.0.1:8080-8090,[::]:443,/run/x.sock,ipv4@:80"),
            [8080, 443, 80]
        );
    }
}
