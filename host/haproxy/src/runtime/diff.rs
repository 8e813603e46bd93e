//! The pure decision: given the config HAProxy runs and the new one, is the
//! difference only `server` lines of existing backends that HAProxy 2.6 can
//! change at run time? Either a [`Plan`] of server adds, removes and
//! maintenance toggles per backend, or the [`ReloadReason`] why not.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::config::{Section, ServerLine, changed_sections, header_of, parse_time, section_texts};

/// More operations than this in one change: reload instead (one reload is
/// cheaper than thousands of round trips, and a change that large is rarely
/// membership only).
pub const MAX_OPS: usize = 5000;

/// HAProxy's `retries` default.
const DEFAULT_RETRIES: u32 = 3;
/// Used when no `timeout connect` is set (HAProxy then has none).
const DEFAULT_CONNECT: Duration = Duration::from_secs(5);

/// Server keywords `add server` accepts on HAProxy 2.6 (management guide,
/// "add server"), with how many arguments each takes. Anything else on a
/// changed server line means a reload (`cookie` before 3.0, `track`,
/// `resolvers`, `init-addr`, `redir`, …).
pub(super) const RUNTIME_KEYWORDS: &[(&str, usize)] = &[
    ("addr", 1),
    ("agent-addr", 1),
    ("agent-check", 0),
    ("agent-inter", 1),
    ("agent-port", 1),
    ("agent-send", 1),
    ("allow-0rtt", 0),
    ("alpn", 1),
    ("backup", 0),
    ("ca-file", 1),
    ("check", 0),
    ("check-alpn", 1),
    ("check-proto", 1),
    ("check-send-proxy", 0),
    ("check-sni", 1),
    ("check-ssl", 0),
    ("ciphers", 1),
    ("ciphersuites", 1),
    ("crl-file", 1),
    ("crt", 1),
    ("downinter", 1),
    ("error-limit", 1),
    ("fall", 1),
    ("fastinter", 1),
    ("id", 1),
    ("inter", 1),
    ("maxconn", 1),
    ("maxqueue", 1),
    ("minconn", 1),
    ("no-check-ssl", 0),
    ("no-send-proxy", 0),
    ("no-ssl", 0),
    ("no-sslv3", 0),
    ("no-tlsv10", 0),
    ("no-tlsv11", 0),
    ("no-tlsv12", 0),
    ("no-tlsv13", 0),
    ("no-verifyhost", 0),
    ("observe", 1),
    ("on-error", 1),
    ("on-marked-down", 1),
    ("on-marked-up", 1),
    ("pool-low-conn", 1),
    ("pool-max-conn", 1),
    ("pool-purge-delay", 1),
    ("port", 1),
    ("proto", 1),
    ("proxy-v2-options", 1),
    ("rise", 1),
    ("send-proxy", 0),
    ("send-proxy-v2", 0),
    ("send-proxy-v2-ssl", 0),
    ("send-proxy-v2-ssl-cn", 0),
    ("slowstart", 1),
    ("sni", 1),
    ("ssl", 0),
    ("ssl-max-ver", 1),
    ("ssl-min-ver", 1),
    ("tfo", 0),
    ("verify", 1),
    ("verifyhost", 1),
    ("weight", 1),
    ("ws", 1),
];

/// Why a change needs a reload (a metric label: [`ReloadReason::label`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadReason {
    /// What HAProxy runs is not known (a failed reload, an unreadable file).
    Unknown,
    /// SIGUSR1: a reload was asked for.
    Requested,
    /// Runtime updates are turned off.
    RuntimeOff,
    /// The map files changed.
    Maps,
    /// A section other than a backend changed (global, defaults, a
    /// frontend, a userlist, …), or sections were added, removed or
    /// reordered.
    Structure {
        /// The first section that differs (its header).
        section: String,
    },
    /// A line of a backend other than a `server` line changed.
    Backend {
        /// The backend.
        backend: String,
    },
    /// The backend's balance algorithm is not dynamic (`static-rr`, a hash
    /// without `hash-type consistent`).
    Balance {
        /// The backend.
        backend: String,
        /// Its `balance` value.
        algorithm: String,
    },
    /// `default-server` in the backend or its defaults: `add server` does
    /// not inherit it.
    DefaultServer {
        /// The backend.
        backend: String,
    },
    /// A server has `cookie` (a STICKY app): not accepted by `add server`
    /// before HAProxy 3.0.
    Cookie {
        /// The backend.
        backend: String,
        /// The server.
        server: String,
    },
    /// A server keyword `add server` does not take, or a line it cannot
    /// parse.
    Keyword {
        /// The backend.
        backend: String,
        /// The server.
        server: String,
        /// The keyword (or what is wrong).
        keyword: String,
    },
    /// A server address that is not an IP literal with a port (HAProxy
    /// does not resolve names for `add server`).
    Address {
        /// The backend.
        backend: String,
        /// The server.
        server: String,
    },
    /// The id of a server that stays changed (marathon-lb's id hashing moves
    /// a server's id when another one takes its slot); the runtime cannot
    /// change an id.
    ServerId {
        /// The backend.
        backend: String,
        /// The server.
        server: String,
    },
    /// A new server's id is still held by a server being drained.
    IdInUse {
        /// The backend.
        backend: String,
        /// The id.
        id: u32,
    },
    /// A server that stays changed in another way than ` disabled`.
    ServerChanged {
        /// The backend.
        backend: String,
        /// The server.
        server: String,
    },
    /// More than [`MAX_OPS`] runtime operations.
    TooMany {
        /// How many.
        ops: usize,
    },
    /// The runtime path was tried and failed (a command's reply, the socket,
    /// or the verification); the file on disk is already right.
    RuntimeFailed {
        /// What went wrong.
        detail: String,
    },
}

impl ReloadReason {
    /// A short stable name (the `reason` label of a reload metric).
    pub fn label(&self) -> &'static str {
        match self {
            ReloadReason::Unknown => "unknown",
            ReloadReason::Requested => "requested",
            ReloadReason::RuntimeOff => "runtime_off",
            ReloadReason::Maps => "maps",
            ReloadReason::Structure { .. } => "structure",
            ReloadReason::Backend { .. } => "backend",
            ReloadReason::Balance { .. } => "balance",
            ReloadReason::DefaultServer { .. } => "default_server",
            ReloadReason::Cookie { .. } => "cookie",
            ReloadReason::Keyword { .. } => "server_keyword",
            ReloadReason::Address { .. } => "server_address",
            ReloadReason::ServerId { .. } | ReloadReason::IdInUse { .. } => "server_id",
            ReloadReason::ServerChanged { .. } => "server_options",
            ReloadReason::TooMany { .. } => "too_many",
            ReloadReason::RuntimeFailed { .. } => "runtime_failed",
        }
    }
}

impl std::fmt::Display for ReloadReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadReason::Unknown => write!(f, "the running config is not known"),
            ReloadReason::Requested => write!(f, "a reload was requested"),
            ReloadReason::RuntimeOff => write!(f, "runtime updates are off"),
            ReloadReason::Maps => write!(f, "the map files changed"),
            ReloadReason::Structure { section } => write!(f, "section `{section}` changed"),
            ReloadReason::Backend { backend } => {
                write!(f, "backend {backend}: a line other than `server` changed")
            }
            ReloadReason::Balance { backend, algorithm } => {
                write!(f, "backend {backend}: `balance {algorithm}` is not dynamic")
            }
            ReloadReason::DefaultServer { backend } => {
                write!(f, "backend {backend}: `default-server` applies")
            }
            ReloadReason::Cookie { backend, server } => {
                write!(f, "{backend}/{server}: `cookie` (sticky) needs a reload")
            }
            ReloadReason::Keyword {
                backend,
                server,
                keyword,
            } => write!(
                f,
                "{backend}/{server}: `{keyword}` cannot be set at run time"
            ),
            ReloadReason::Address { backend, server } => {
                write!(f, "{backend}/{server}: the address is not an IP and port")
            }
            ReloadReason::ServerId { backend, server } => {
                write!(f, "{backend}/{server}: the server id changed")
            }
            ReloadReason::IdInUse { backend, id } => {
                write!(f, "backend {backend}: id {id} is held by a draining server")
            }
            ReloadReason::ServerChanged { backend, server } => {
                write!(f, "{backend}/{server}: the server line changed")
            }
            ReloadReason::TooMany { ops } => write!(f, "{ops} runtime operations"),
            ReloadReason::RuntimeFailed { detail } => write!(f, "runtime update failed: {detail}"),
        }
    }
}

/// What changes at run time in one backend.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackendPlan {
    /// The backend.
    pub backend: String,
    /// How long a removed server stays in maintenance before `del server`
    /// is tried: `timeout connect` × (`retries` + 1) of the backend.
    pub grace: Duration,
    /// Servers gone from the file: maintenance now, deleted later.
    pub remove: Vec<ServerLine>,
    /// New servers.
    pub add: Vec<ServerLine>,
    /// New servers the runtime still has, draining, with the same line:
    /// made ready again (or left in maintenance when `disabled`).
    pub revive: Vec<ServerLine>,
    /// Servers that lost ` disabled`: ready.
    pub enable: Vec<String>,
    /// Servers that gained ` disabled`: maintenance.
    pub disable: Vec<String>,
    /// Every server of the backend in the new file (for the verification).
    pub expected: Vec<ServerLine>,
    /// The `server` lines of the backend in the new file, and in the file
    /// HAProxy runs, trimmed (what [`super::shape`] compares to skip
    /// `haproxy -c`).
    pub lines: ServerTexts,
}

/// The `server` lines of a backend before and after a change, verbatim
/// but trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerTexts {
    /// In the new file, in order.
    pub new: Vec<String>,
    /// In the file HAProxy runs.
    pub running: Vec<String>,
}

impl BackendPlan {
    /// Runtime commands this plan sends (roughly: for the batch cap).
    pub fn ops(&self) -> usize {
        2 * self.remove.len()
            + 3 * self.add.len()
            + self.revive.len()
            + self.enable.len()
            + self.disable.len()
    }
}

/// The runtime changes of a config change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Per backend that changed, in config order.
    pub backends: Vec<BackendPlan>,
}

impl Plan {
    /// Runtime commands of the whole plan.
    pub fn ops(&self) -> usize {
        self.backends.iter().map(BackendPlan::ops).sum()
    }
}

/// What to do with a new config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The texts are equal.
    Unchanged,
    /// Only server membership changed: apply it at run time.
    Runtime(Plan),
    /// Reload, and why.
    Reload(ReloadReason),
}

/// Compare the running config `old` with `new`. `pending(backend)`: the
/// servers of a backend that the runtime still has in maintenance although
/// the file no longer lists them (removed earlier, not deleted yet).
pub fn decide<'p>(old: &str, new: &str, pending: impl Fn(&str) -> Vec<&'p ServerLine>) -> Decision {
    if old == new {
        return Decision::Unchanged;
    }
    match plan(old, new, pending) {
        Ok(plan) if plan.ops() > MAX_OPS => {
            Decision::Reload(ReloadReason::TooMany { ops: plan.ops() })
        }
        Ok(plan) if plan.backends.is_empty() => Decision::Unchanged,
        Ok(plan) => Decision::Runtime(plan),
        Err(reason) => Decision::Reload(reason),
    }
}

/// Only the sections that can differ are looked at
/// ([`changed_sections`]: found from what the texts share at their start
/// and end), and among them only those whose texts differ are cut into
/// lines, so the cost follows what changed, not the size of the config.
/// Sections outside that span are the same texts at the same index, equal
/// texts make equal sections, and differing texts go through the
/// line-by-line comparison: the decisions are those of comparing every
/// section line by line (the whole texts are cut when the span cannot be
/// shown).
fn plan<'p>(
    old: &str,
    new: &str,
    pending: impl Fn(&str) -> Vec<&'p ServerLine>,
) -> Result<Plan, ReloadReason> {
    match changed_sections(old, new) {
        Some(span) => {
            let defaults = span.defaults.map(|d| Section::parse(d, false));
            plan_sections(&span.old, &span.new, false, defaults, pending)
        }
        None => plan_sections(
            &section_texts(old),
            &section_texts(new),
            true,
            None,
            pending,
        ),
    }
}

/// [`plan`] over the whole texts, every section (the reference of the
/// narrowed one in the tests).
#[cfg(test)]
fn plan_whole<'p>(
    old: &str,
    new: &str,
    pending: impl Fn(&str) -> Vec<&'p ServerLine>,
) -> Result<Plan, ReloadReason> {
    plan_sections(
        &section_texts(old),
        &section_texts(new),
        true,
        None,
        pending,
    )
}

/// [`plan`] over the section texts `old` and `new`, aligned by index
/// (`preamble`: the first is the text before the first section),
/// `defaults` the last `defaults` section before them.
fn plan_sections<'t, 'p>(
    old: &[&str],
    new: &[&'t str],
    preamble: bool,
    mut defaults: Option<Section<'t>>,
    pending: impl Fn(&str) -> Vec<&'p ServerLine>,
) -> Result<Plan, ReloadReason> {
    let mut plan = Plan::default();
    for i in 0..old.len().max(new.len()) {
        let first = preamble && i == 0;
        let (Some(&o), Some(&n)) = (old.get(i), new.get(i)) else {
            let section = new
                .get(i)
                .or(old.get(i))
                .map_or("", |t| header_of(t, first));
            return Err(ReloadReason::Structure {
                section: section.to_owned(),
            });
        };
        let header = header_of(n, first);
        if header_of(o, first) != header {
            return Err(ReloadReason::Structure {
                section: header.to_owned(),
            });
        }
        let keyword = header.split_whitespace().next().unwrap_or_default();
        if keyword == "defaults" {
            defaults = Some(Section::parse(n, first));
        }
        if o == n {
            continue;
        }
        let (o, n) = (Section::parse(o, first), Section::parse(n, first));
        if keyword != "backend" {
            if o.lines != n.lines {
                return Err(ReloadReason::Structure {
                    section: header.to_owned(),
                });
            }
            continue;
        }
        if o.lines == n.lines {
            continue;
        }
        let backend = n.name().unwrap_or_default();
        if !other_lines(&o).eq(other_lines(&n)) {
            return Err(ReloadReason::Backend {
                backend: backend.to_owned(),
            });
        }
        if let Some(p) = backend_plan(backend, &o, &n, defaults.as_ref(), &pending(backend))? {
            plan.backends.push(p);
        }
    }
    Ok(plan)
}

/// The lines of a backend other than its `server` lines.
fn other_lines<'s>(section: &'s Section<'_>) -> impl Iterator<Item = &'s str> {
    section
        .lines
        .iter()
        .copied()
        .filter(|l| !Section::is_server_line(l))
}

fn server_texts(section: &Section<'_>) -> Vec<String> {
    section
        .lines
        .iter()
        .filter(|l| Section::is_server_line(l))
        .map(|l| l.trim().to_owned())
        .collect()
}

fn servers(section: &Section<'_>, backend: &str) -> Result<Vec<ServerLine>, ReloadReason> {
    section
        .lines
        .iter()
        .filter(|l| Section::is_server_line(l))
        .map(|l| {
            ServerLine::parse(l).ok_or_else(|| ReloadReason::Keyword {
                backend: backend.to_owned(),
                server: l.trim().to_owned(),
                keyword: "unparsable line".to_owned(),
            })
        })
        .collect()
}

fn backend_plan(
    backend: &str,
    old: &Section<'_>,
    new: &Section<'_>,
    defaults: Option<&Section<'_>>,
    pending: &[&ServerLine],
) -> Result<Option<BackendPlan>, ReloadReason> {
    let old_servers = servers(old, backend)?;
    let new_servers = servers(new, backend)?;
    if old_servers == new_servers {
        return Ok(None);
    }
    guard_backend(backend, new, defaults)?;
    let before: BTreeMap<&str, &ServerLine> =
        old_servers.iter().map(|s| (s.name.as_str(), s)).collect();
    let after: BTreeMap<&str, &ServerLine> =
        new_servers.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut p = BackendPlan {
        backend: backend.to_owned(),
        grace: grace(new, defaults),
        expected: new_servers.clone(),
        lines: ServerTexts {
            new: server_texts(new),
            running: server_texts(old),
        },
        ..BackendPlan::default()
    };
    for s in &old_servers {
        if !after.contains_key(s.name.as_str()) {
            p.remove.push(s.clone());
        }
    }
    for s in new_servers.iter().chain(&p.remove) {
        guard_server(backend, s)?;
    }
    // Ids still held at run time after this plan: kept servers, servers
    // being drained now or earlier.
    let mut held: BTreeSet<u32> = old_servers.iter().filter_map(|s| s.id).collect();
    held.extend(pending.iter().filter_map(|s| s.id));
    // Servers that stay first: an id that moved is the reason to report
    // (the new server that took it comes with it).
    for s in &new_servers {
        match before.get(s.name.as_str()) {
            None => {}
            Some(was) if *was == s => {}
            Some(was) => {
                if was.id != s.id {
                    return Err(ReloadReason::ServerId {
                        backend: backend.to_owned(),
                        server: s.name.clone(),
                    });
                }
                if (was.addr.as_str(), &was.options) != (s.addr.as_str(), &s.options) {
                    return Err(ReloadReason::ServerChanged {
                        backend: backend.to_owned(),
                        server: s.name.clone(),
                    });
                }
                if s.disabled {
                    p.disable.push(s.name.clone());
                } else {
                    p.enable.push(s.name.clone());
                }
            }
        }
    }
    for s in &new_servers {
        if !before.contains_key(s.name.as_str()) {
            match pending.iter().find(|d| d.name == s.name) {
                Some(d) if (d.addr.as_str(), &d.options) == (s.addr.as_str(), &s.options) => {
                    p.revive.push(s.clone());
                }
                Some(_) => {
                    return Err(ReloadReason::ServerChanged {
                        backend: backend.to_owned(),
                        server: s.name.clone(),
                    });
                }
                None => {
                    if let Some(id) = s.id.filter(|id| held.contains(id)) {
                        return Err(ReloadReason::IdInUse {
                            backend: backend.to_owned(),
                            id,
                        });
                    }
                    p.add.push(s.clone());
                }
            }
        }
    }
    Ok(Some(p))
}

/// The backend-wide guards: a dynamic balance algorithm and no
/// `default-server`.
fn guard_backend(
    backend: &str,
    section: &Section<'_>,
    defaults: Option<&Section<'_>>,
) -> Result<(), ReloadReason> {
    let setting = |d: &str| {
        section
            .directive(d)
            .or(defaults.and_then(|s| s.directive(d)))
    };
    if section.directive("default-server").is_some()
        || defaults.is_some_and(|s| s.directive("default-server").is_some())
    {
        return Err(ReloadReason::DefaultServer {
            backend: backend.to_owned(),
        });
    }
    let algorithm = setting("balance").unwrap_or("roundrobin");
    let kind = algorithm
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or_default();
    let consistent =
        setting("hash-type").is_some_and(|h| h.split_whitespace().next() == Some("consistent"));
    let dynamic = match kind {
        "roundrobin" | "leastconn" | "first" | "random" => true,
        "source" | "uri" | "url_param" | "hdr" | "rdp-cookie" | "hash" => consistent,
        _ => false,
    };
    if dynamic {
        Ok(())
    } else {
        Err(ReloadReason::Balance {
            backend: backend.to_owned(),
            algorithm: algorithm.to_owned(),
        })
    }
}

/// A server line `add server` can take: an IP address and port, and only
/// keywords of [`RUNTIME_KEYWORDS`] (`cookie` has its own reason).
fn guard_server(backend: &str, server: &ServerLine) -> Result<(), ReloadReason> {
    let keyword = |keyword: &str| ReloadReason::Keyword {
        backend: backend.to_owned(),
        server: server.name.clone(),
        keyword: keyword.to_owned(),
    };
    if server.socket.is_none() {
        return Err(ReloadReason::Address {
            backend: backend.to_owned(),
            server: server.name.clone(),
        });
    }
    let mut words = server.options.iter();
    while let Some(word) = words.next() {
        if word == "cookie" {
            return Err(ReloadReason::Cookie {
                backend: backend.to_owned(),
                server: server.name.clone(),
            });
        }
        let Some((_, args)) = RUNTIME_KEYWORDS.iter().find(|(k, _)| k == word) else {
            return Err(keyword(word));
        };
        for _ in 0..*args {
            words.next().ok_or_else(|| keyword(word))?;
        }
    }
    Ok(())
}

/// `timeout connect` × (`retries` + 1): how long a stream may still try to
/// reach a server after it left load balancing.
fn grace(section: &Section<'_>, defaults: Option<&Section<'_>>) -> Duration {
    let setting = |d: &str| {
        section
            .directive(d)
            .or(defaults.and_then(|s| s.directive(d)))
    };
    let connect = setting("timeout connect")
        .and_then(parse_time)
        .unwrap_or(DEFAULT_CONNECT);
    let retries = setting("retries")
        .and_then(|r| r.parse().ok())
        .unwrap_or(DEFAULT_RETRIES);
    connect * (retries + 1)
}

#[cfg(test)]
mod tests;
