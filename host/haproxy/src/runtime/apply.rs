//! Sending a [`Plan`] to the running HAProxy through the master CLI
//! (`@1 <command>`, forwarded to the current worker at admin level), checking
//! every reply, verifying the result with `show servers state`, and the
//! drain-then-delete of removed servers.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::commands::{self, Command, NO_SUCH_SERVER, STILL_CONNECTED};
use super::config::ServerLine;
use super::diff::{BackendPlan, Plan};
use crate::master::{self, CLI_TIMEOUT};

/// How often a drained server with sessions left is looked at again.
const RETRY: Duration = Duration::from_millis(500);
/// After this many looks, a drained server is left in maintenance for the
/// next reload to drop.
const MAX_TRIES: u32 = 1200;

/// Why a runtime update failed (the caller reloads).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The master socket did not answer.
    #[error("master socket {socket}: {error}")]
    Socket {
        /// The socket.
        socket: String,
        /// Why.
        error: std::io::Error,
    },
    /// A command got another reply than its success reply.
    #[error("`{command}` answered `{reply}`")]
    Reply {
        /// The command.
        command: String,
        /// HAProxy's reply (trimmed).
        reply: String,
    },
    /// `show servers state` does not match the file.
    #[error("backend {backend}: {detail}")]
    Mismatch {
        /// The backend.
        backend: String,
        /// What differs.
        detail: String,
    },
}

/// The CLI of the HAProxy process serving traffic: the current worker
/// behind a master socket (supervised mode), or an admin-level stats socket
/// of the process a `--command` reloads (`--haproxy-admin-socket`).
#[derive(Debug, Clone)]
pub struct WorkerCli {
    socket: PathBuf,
    /// `@1 ` through the master (to the newest worker), nothing otherwise.
    prefix: &'static str,
}

impl WorkerCli {
    /// The current worker of the master listening on `socket`.
    pub fn master(socket: PathBuf) -> Self {
        Self {
            socket,
            prefix: "@1 ",
        }
    }

    /// The process behind the admin-level stats socket `socket`.
    pub fn admin(socket: PathBuf) -> Self {
        Self { socket, prefix: "" }
    }

    /// Send `command` to the worker; its reply.
    pub async fn send(&self, command: &str) -> Result<String, RuntimeError> {
        master::command(
            &self.socket,
            &format!("{}{command}", self.prefix),
            CLI_TIMEOUT,
        )
        .await
        .map_err(|error| RuntimeError::Socket {
            socket: self.socket.display().to_string(),
            error,
        })
    }

    /// Send `commands` in as few exchanges as [`commands::batch_lines`]
    /// makes: one reply per command, and how many exchanges it took.
    async fn batch(&self, commands: &[&str]) -> Result<(Vec<String>, usize), RuntimeError> {
        let lines = commands::batch_lines(self.prefix, commands);
        let mut replies = Vec::with_capacity(commands.len());
        for (line, n) in &lines {
            let answer = master::command(&self.socket, line, CLI_TIMEOUT)
                .await
                .map_err(|error| RuntimeError::Socket {
                    socket: self.socket.display().to_string(),
                    error,
                })?;
            let split =
                commands::split_replies(&answer, *n).ok_or_else(|| RuntimeError::Reply {
                    command: line.clone(),
                    reply: answer.trim().to_owned(),
                })?;
            replies.extend(split.into_iter().map(str::to_owned));
        }
        Ok((replies, lines.len()))
    }

    /// `show servers state <backend>`, parsed.
    async fn servers_state(
        &self,
        backend: &str,
    ) -> Result<Vec<commands::ServerState>, RuntimeError> {
        let command = commands::show_servers_state(backend);
        let reply = self.send(&command).await?;
        commands::parse_servers_state(&reply).ok_or_else(|| RuntimeError::Reply {
            command,
            reply: reply.trim().to_owned(),
        })
    }
}

/// A removed server still in the runtime, in maintenance.
#[derive(Debug, Clone)]
struct Drain {
    line: ServerLine,
    /// When `del server` may be tried (maintenance + grace).
    due: Instant,
    tries: u32,
    /// Left for the next reload (too many tries, or an unexpected reply).
    given_up: bool,
}

/// The servers gone from the file that the runtime still has, in
/// maintenance, until they have no session left and their grace has
/// passed. A reload drops them all.
#[derive(Debug, Default)]
pub struct Draining {
    servers: BTreeMap<Key, Drain>,
}

/// A server: (backend, name).
type Key = (String, String);

/// [`Draining`], shared with the task that deletes them.
pub type SharedDraining = Arc<tokio::sync::Mutex<Draining>>;

impl Draining {
    /// The draining servers of `backend`.
    pub fn servers(&self, backend: &str) -> Vec<&ServerLine> {
        self.servers
            .iter()
            .filter(|((b, _), _)| b == backend)
            .map(|(_, d)| &d.line)
            .collect()
    }

    /// How many servers are draining.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Forget them all (after a reload, which dropped them).
    pub fn clear(&mut self) {
        self.servers.clear();
    }

    /// The servers whose grace has passed at `now`, as they are now.
    fn due(&self, now: Instant) -> Vec<(Key, Drain)> {
        self.servers
            .iter()
            .filter(|(_, d)| !d.given_up && d.due <= now)
            .map(|(k, d)| (k.clone(), d.clone()))
            .collect()
    }

    fn next_due(&self) -> Option<Instant> {
        self.servers
            .values()
            .filter(|d| !d.given_up)
            .map(|d| d.due)
            .min()
    }
}

/// What a runtime update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// Servers added.
    pub added: usize,
    /// Servers put in maintenance because they left the file (deleted
    /// later, see [`Draining`]).
    pub removed: usize,
    /// Draining servers that came back.
    pub revived: usize,
    /// Servers whose ` disabled` changed.
    pub toggled: usize,
    /// Commands sent (verification included).
    pub commands: usize,
    /// Exchanges with the CLI they took (one unless the commands are many).
    pub round_trips: usize,
    /// How long it took.
    pub took: Duration,
}

/// Apply `plan`: removed servers to maintenance first (no new request
/// reaches them; in-flight ones finish), then additions (add, `enable
/// health` when checked, ready unless `disabled`), revivals and toggles;
/// then verify every touched backend with `show servers state`.
///
/// All of it goes in one exchange with the CLI (more only when the
/// commands exceed [`commands::MAX_LINE`]): the commands on one line,
/// separated by `;`, each with its own `@1` through the master CLI.
/// HAProxy runs them in order whatever the earlier ones answered, so every
/// reply is checked, and the first one that is not its command's success
/// reply fails the update (the caller reloads, which also drops whatever
/// the later commands did).
pub async fn apply(
    cli: &WorkerCli,
    plan: &Plan,
    draining: &mut Draining,
) -> Result<Applied, RuntimeError> {
    let started = Instant::now();
    let mut applied = Applied::default();
    let mut sent: Vec<Command> = Vec::new();
    for b in &plan.backends {
        for s in &b.remove {
            sent.push(commands::set_state(&b.backend, &s.name, false));
            let drain = Drain {
                line: s.clone(),
                due: Instant::now() + b.grace,
                tries: 0,
                given_up: false,
            };
            draining
                .servers
                .insert((b.backend.clone(), s.name.clone()), drain);
        }
    }
    for b in &plan.backends {
        for s in &b.add {
            sent.push(commands::add(&b.backend, s));
            if s.checked() {
                sent.push(commands::enable_health(&b.backend, &s.name));
            }
        }
        for s in &b.revive {
            let key = (b.backend.clone(), s.name.clone());
            draining.servers.remove(&key);
        }
        for s in b.add.iter().chain(&b.revive).filter(|s| !s.disabled) {
            sent.push(commands::set_state(&b.backend, &s.name, true));
        }
        let toggles =
            (b.enable.iter().map(|n| (n, true))).chain(b.disable.iter().map(|n| (n, false)));
        for (name, ready) in toggles {
            sent.push(commands::set_state(&b.backend, name, ready));
        }
    }
    let shows: Vec<String> = plan
        .backends
        .iter()
        .map(|b| commands::show_servers_state(&b.backend))
        .collect();
    let lines: Vec<&str> = (sent.iter().map(|c| c.line.as_str()))
        .chain(shows.iter().map(String::as_str))
        .collect();
    let (replies, round_trips) = cli.batch(&lines).await?;
    applied.commands = lines.len();
    applied.round_trips = round_trips;
    for (command, reply) in sent.iter().zip(&replies) {
        if !command.succeeded(reply) {
            return Err(RuntimeError::Reply {
                command: command.line.clone(),
                reply: reply.trim().to_owned(),
            });
        }
        tracing::trace!(command = %command.line, "runtime command");
    }
    let dumps = replies.iter().skip(sent.len());
    for ((b, command), reply) in plan.backends.iter().zip(&shows).zip(dumps) {
        let state = commands::parse_servers_state(reply).ok_or_else(|| RuntimeError::Reply {
            command: command.clone(),
            reply: reply.trim().to_owned(),
        })?;
        verify(b, &state, draining)?;
        applied.added += b.add.len();
        applied.removed += b.remove.len();
        applied.revived += b.revive.len();
        applied.toggled += b.enable.len() + b.disable.len();
    }
    applied.took = started.elapsed();
    Ok(applied)
}

/// `show servers state <backend>` against the file: the same servers (the
/// file's plus the draining ones), ids, addresses and ports; the servers
/// the plan touched ready or in maintenance as the file says; the draining
/// ones in maintenance.
fn verify(
    b: &BackendPlan,
    state: &[commands::ServerState],
    draining: &Draining,
) -> Result<(), RuntimeError> {
    let mismatch = |detail: String| RuntimeError::Mismatch {
        backend: b.backend.clone(),
        detail,
    };
    let draining = draining.servers(&b.backend);
    let expected = b.expected.len() + draining.len();
    if state.len() != expected {
        let names: Vec<&str> = state.iter().map(|s| s.name.as_str()).collect();
        return Err(mismatch(format!(
            "{} servers at run time ({}), {expected} expected",
            state.len(),
            names.join(" ")
        )));
    }
    let touched = |name: &str| {
        b.add.iter().chain(&b.revive).any(|s| s.name == name)
            || b.enable.iter().chain(&b.disable).any(|n| n == name)
    };
    for s in &b.expected {
        let Some(rt) = state.iter().find(|r| r.name == s.name) else {
            return Err(mismatch(format!("{} is missing", s.name)));
        };
        let addr: Option<IpAddr> = rt.addr.parse().ok();
        if s.id.is_some_and(|id| id != rt.id)
            || s.socket.map(|(ip, port)| (Some(ip), port)) != Some((addr, rt.port))
        {
            return Err(mismatch(format!(
                "{} is {}:{} id {} at run time, {} {:?} in the file",
                s.name, rt.addr, rt.port, rt.id, s.addr, s.id
            )));
        }
        if touched(&s.name) && (rt.maint() != s.disabled || (!s.disabled && !rt.ready())) {
            return Err(mismatch(format!(
                "{} has admin state {:#x}, the file says {}",
                s.name,
                rt.admin,
                if s.disabled { "disabled" } else { "ready" }
            )));
        }
    }
    for d in draining {
        match state.iter().find(|r| r.name == d.name) {
            Some(rt) if rt.maint() => {}
            _ => return Err(mismatch(format!("{} should be draining", d.name))),
        }
    }
    Ok(())
}

/// After a fallback reload: the server-state file the supervisor saved just
/// before it is replayed over the new config — forced maintenance and even
/// the port of a server of the same name — so what the failed plan (or a
/// hand-made change) left at run time would stay. Put the touched
/// backends' servers back to the file's address, port and state; best
/// effort (failures are logged).
pub async fn after_reload(cli: &WorkerCli, plan: &Plan) {
    for b in &plan.backends {
        let Ok(state) = cli.servers_state(&b.backend).await else {
            continue;
        };
        for s in &b.expected {
            let (Some(rt), Some((ip, port))) = (state.iter().find(|r| r.name == s.name), s.socket)
            else {
                continue;
            };
            let mut fixes = Vec::new();
            if rt.addr.parse::<IpAddr>().ok() != Some(ip) || rt.port != port {
                fixes.push(format!(
                    "set server {}/{} addr {ip} port {port}",
                    b.backend, s.name
                ));
            }
            if !s.disabled && rt.maint() {
                fixes.push(commands::set_state(&b.backend, &s.name, true).line);
            }
            for fix in fixes {
                match cli.send(&fix).await {
                    Ok(reply) => {
                        tracing::info!(command = %fix, reply = reply.trim(), "server state reconciled after the reload")
                    }
                    Err(e) => {
                        tracing::warn!(command = %fix, error = %e, "server state not reconciled after the reload")
                    }
                }
            }
        }
    }
}

/// Delete the draining servers as they become free: each once its grace has
/// passed and `show stat` shows no session or queue, with `del server`.
/// Retried every [`RETRY`] while sessions remain; returns when no server
/// waits (a reload clears the set).
///
/// The set is locked only to pick the due servers and to delete them, not
/// while their state is asked for: a runtime change waiting for the lock
/// would otherwise be checked and written the slow way. A server revived
/// or drained anew meanwhile (its entry gone or changed) is left alone.
pub async fn sweep(cli: WorkerCli, draining: SharedDraining) {
    loop {
        let due = draining.lock().await.due(Instant::now());
        if !due.is_empty() {
            let mut probed = Vec::with_capacity(due.len());
            for (key, drain) in due {
                let probe = probe(&cli, &key.0, &key.1).await;
                probed.push((key, drain, probe));
            }
            let mut d = draining.lock().await;
            settle(&cli, &mut d, probed).await;
        }
        let Some(next) = draining.lock().await.next_due() else {
            return;
        };
        tokio::time::sleep_until(next.max(Instant::now() + Duration::from_millis(50))).await;
    }
}

/// What `show servers state` and `show stat` say of a draining server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// Not in its backend any more (HAProxy restarted).
    Gone,
    /// No session or queue left.
    Free,
    /// Sessions left, or no clear answer: look again later.
    Busy,
}

async fn probe(cli: &WorkerCli, backend: &str, name: &str) -> Probe {
    let Ok(state) = cli.servers_state(backend).await else {
        return Probe::Busy;
    };
    let Some(s) = state.iter().find(|s| s.name == name) else {
        return Probe::Gone;
    };
    match cli.send(&commands::show_stat(s.backend_id, s.id)).await {
        Ok(reply) if commands::parse_sessions(&reply, name) == Some(0) => Probe::Free,
        _ => Probe::Busy,
    }
}

/// Act on the probes of servers whose entries did not change since they
/// were picked: forget the gone ones, delete the free ones.
async fn settle(cli: &WorkerCli, draining: &mut Draining, probed: Vec<(Key, Drain, Probe)>) {
    let now = Instant::now();
    for (key, picked, probe) in probed {
        let unchanged = draining
            .servers
            .get(&key)
            .is_some_and(|d| d.due == picked.due && d.tries == picked.tries && !d.given_up);
        if !unchanged {
            continue;
        }
        let server = format!("{}/{}", key.0, key.1);
        let outcome = match probe {
            Probe::Gone => {
                tracing::debug!(%server, "drained server no longer at run time");
                Some(true)
            }
            Probe::Busy => None,
            Probe::Free => match cli.send(&commands::delete(&key.0, &key.1).line).await {
                Ok(r) if r.trim() == "Server deleted." || r.trim() == NO_SUCH_SERVER => Some(true),
                Ok(r) if r.trim() == STILL_CONNECTED => None,
                Ok(r) => {
                    tracing::warn!(%server, reply = r.trim(), "drained server not deleted; the next reload drops it");
                    Some(false)
                }
                Err(_) => None,
            },
        };
        match outcome {
            Some(true) => {
                tracing::debug!(%server, "drained server deleted");
                draining.servers.remove(&key);
            }
            Some(false) => {
                if let Some(d) = draining.servers.get_mut(&key) {
                    d.given_up = true;
                }
            }
            None => {
                if let Some(d) = draining.servers.get_mut(&key) {
                    d.tries += 1;
                    d.due = now + RETRY;
                    d.given_up = d.tries >= MAX_TRIES;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const STATE: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n\
        4 be 5 s 127.0.0.1 0 1 1 1 1 1 0 0 2 0 0 1 - 18903 - 0 0 - - 0\n\n";
    const STAT: &str = "# pxname,svname,qcur,qmax,scur,smax\nbe,s,0,0,0,0\n\n";

    /// A master CLI on `socket` answering a draining server `be/s` with no
    /// sessions; every command it gets goes to the returned list. On
    /// `show stat`, `meanwhile` runs first (a runtime change taking the
    /// draining set).
    fn fake_cli(
        socket: PathBuf,
        meanwhile: impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + 'static,
    ) -> Arc<std::sync::Mutex<Vec<String>>> {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let listener = tokio::net::UnixListener::bind(socket).unwrap();
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut line = String::new();
                stream.read_to_string(&mut line).await.unwrap();
                let line = line.trim().to_owned();
                log.lock().unwrap().push(line.clone());
                let reply = if line.starts_with("@1 show servers state") {
                    STATE
                } else if line.starts_with("@1 show stat") {
                    meanwhile().await;
                    STAT
                } else if line.starts_with("@1 del server") {
                    "Server deleted.\n\n"
                } else {
                    "Unknown command.\n\n"
                };
                stream.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        seen
    }

    fn draining_s() -> SharedDraining {
        let mut d = Draining::default();
        let line = ServerLine::parse("server s 127.0.0.1:18903 id 5").unwrap();
        let drain = Drain {
            line,
            due: Instant::now(),
            tries: 0,
            given_up: false,
        };
        d.servers.insert(("be".into(), "s".into()), drain);
        Arc::new(tokio::sync::Mutex::new(d))
    }

    #[tokio::test]
    async fn a_free_drained_server_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("master.sock");
        let seen = fake_cli(socket.clone(), || Box::pin(async {}));
        let draining = draining_s();
        let cli = WorkerCli::master(socket);
        tokio::time::timeout(CLI_TIMEOUT, sweep(cli, draining.clone()))
            .await
            .unwrap();
        assert!(draining.lock().await.is_empty());
        assert_eq!(seen.lock().unwrap().last().unwrap(), "@1 del server be/s");
    }

    #[tokio::test]
    async fn a_server_revived_while_it_is_probed_is_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("master.sock");
        let draining = draining_s();
        let revive = draining.clone();
        // While the sweeper asks `show stat`, a runtime change revives the
        // server (it takes the set: the sweeper must not hold it).
        let seen = fake_cli(socket.clone(), move || {
            let d = revive.clone();
            Box::pin(async move {
                d.lock().await.servers.remove(&("be".into(), "s".into()));
            })
        });
        let cli = WorkerCli::master(socket);
        tokio::time::timeout(CLI_TIMEOUT, sweep(cli, draining.clone()))
            .await
            .expect("the sweeper holds the draining set while it probes");
        let seen = seen.lock().unwrap();
        assert!(
            seen.iter().any(|c| c.starts_with("@1 show stat")),
            "{seen:?}"
        );
        assert!(
            !seen.iter().any(|c| c.starts_with("@1 del server")),
            "{seen:?}"
        );
    }
}
