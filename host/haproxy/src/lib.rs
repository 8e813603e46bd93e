//! HAProxy under the controller: started, watched, reloaded and stopped by
//! the `marathon-lb` process itself — no runit, no shell scripts (marathon-lb
//! used `runsvdir` with `service/haproxy/run` and `reload_haproxy.sh`, spec
//! §1.4).
//!
//! # Process model
//! HAProxy runs in **master-worker** mode with a master CLI socket:
//! `haproxy -W -db -S <run_dir>/master.sock -p <run_dir>/haproxy.pid -f <config>`.
//! The master (the child the supervisor spawned, PID stable across reloads
//! because it re-executes itself) owns the listening sockets and hands them
//! to every new worker, so `-x` is not needed. `-db` keeps the master in the
//! foreground, so the supervisor sees it exit; its output (`[NOTICE]`,
//! `[WARNING]`, `[ALERT]` lines) is forwarded to `tracing`. If the master
//! dies unexpectedly, its workers exit too and the supervisor starts HAProxy
//! again with a backoff of 1 s, doubling to at most 30 s
//! ([`SupervisorStats::starts`]).
//!
//! # The reload protocol, and why
//! The platform measurements (`shared/notes/platform-facts.md`, "Reloads
//! under load") shape every step:
//! 1. **One reload at a time.** The master socket refuses connections while
//!    the master re-executes itself, and reload requests that overlap (two
//!    SIGUSR2s 200 ms apart) were *merged* — the second change would be lost
//!    silently. [`Supervisor::reload`] holds a mutex for the whole protocol.
//! 2. **Save server state first**: `@1 show servers state` through the
//!    master (forwarded to the current worker), written atomically to
//!    [`SupervisorConfig::state_file`]. The new worker reads it back through
//!    `server-state-file` / `load-server-state-from-file global` in the HEAD,
//!    so health-check and drain states survive the reload (what marathon-lb's
//!    `reload_haproxy.sh` did with socat). A failure here is logged, never
//!    fatal, and never overwrites the last good file. HAProxy applies a
//!    saved state to the server *of the same name*, its saved address and
//!    port included (haproxy/haproxy#985): server names must identify the
//!    address, as marathon-lb's `<ip>_<port>` names do — a custom
//!    `HAPROXY_BACKEND_SERVER_OPTIONS` that keeps a name while the address
//!    changes would keep sending traffic to the old address. A missing state
//!    file is created empty at start (`1\n`), so HAProxy does not warn.
//! 3. **`reload` on the master socket.** The master re-parses the config on
//!    disk. An invalid config does not stop HAProxy: the master keeps the
//!    old worker (and counts a failed reload).
//! 4. **Confirm it.** The command has no answer (the connection closes as
//!    the master re-executes), so the supervisor polls `show proc` until the
//!    master's reload counter has moved; then either the failed-reload
//!    counter moved (→ [`HaproxyError::ReloadRejected`], with HAProxy's
//!    `[ALERT]` lines; the old worker keeps serving) or a new current worker
//!    PID is listed (→ [`ReloadReport`]). No confirmation within 10 s is
//!    [`HaproxyError::ReloadTimeout`].
//! 5. **Report old workers** (`# old workers` of `show proc`: previous
//!    generations still finishing connections) in
//!    [`ReloadReport::old_workers`] and the
//!    [`SupervisorStats::old_workers`]
//!    gauge (also refreshed every few seconds).
//!
//! # What the supervised config needs
//! * `option idle-close-on-response` in `defaults` — with every reload
//!   method measured, keep-alive clients saw 25–82 read errors per 50
//!   reloads without it and **0** with it: a stopping worker otherwise closes
//!   idle keep-alive connections under a client that is about to reuse them.
//!   The controller adds [`SUPERVISED_GLOBAL_OPTIONS`] to every HTTP-mode
//!   `frontend` and `listen` section it renders
//!   (`RenderSettings::http_frontend_options`), not to `defaults`: HAProxy
//!   accepts the option only there and warns for every TCP-mode frontend
//!   otherwise. A hand-written config can use [`with_supervised_options`].
//! * Bounded old workers: `hard-stop-after` (old workers are killed that
//!   long after a reload) and `mworker-max-reloads` (a worker that survived
//!   that many reloads gets SIGTERM), see [`RECOMMENDED_GLOBAL_LINES`]; the
//!   supervisor loads them from a second config file (`supervised-globals.cfg`
//!   in the run directory) unless the config sets them itself. At
//!   10,000 backends a worker takes 250–385 MB, ~3× that during a reload:
//!   unbounded old workers from frequent reloads exhaust memory.
//! * A `maxconn` whose file descriptors fit the open-files limit (the HEAD's
//!   `maxconn 50000` cannot start under a hard limit of 20,000).
//! * The Lua files of `lua-load` ([`lua::install_lua`], done by
//!   [`Supervisor::start`] when [`SupervisorConfig::lua_dir`] is set).
//!
//! Reloads are expensive at scale (0.6–1.9 s at 10,000 backends); callers
//! should rate-limit them and prefer the runtime API
//! ([`Supervisor::worker_command`]) for server membership changes.
//!
//! # Layout
//! - [`control`]: [`HaproxyControl`], the one owner of write, cleanup and
//!   reload (the `--command` reloader or the supervisor).
//! - [`apply`]: compare, write atomically, validate with `haproxy -c`, the
//!   reload command.
//! - [`durable`]: the background fsync of files a runtime change renamed
//!   into place.
//! - [`cleanup`]: find the apps that make `haproxy -c` fail, by bisection.
//! - [`runtime`]: membership changes without a reload: the pure diff of two
//!   configs (or the reason a reload is needed), the runtime API commands,
//!   drain then delete, verification.
//! - [`supervisor`]: the master-worker supervisor and its [`SupervisorStats`].
//! - [`master`]: the master CLI socket and `show proc`.
//! - [`state`]: the server-state file.
//! - [`preflight`]: what the config needs from the host (certificates,
//!   open files), checked before anything is written.
//! - [`guard`]: the port-9090 stats protection (`--stats-bind`, `--stats-auth-file`).
//! - [`lua`]: the Lua files of the 9090 endpoints.

#![forbid(unsafe_code)]

pub mod apply;
pub mod cleanup;
pub mod control;
pub mod durable;
pub mod guard;
pub mod lua;
pub mod master;
pub mod preflight;
pub mod runtime;
pub mod state;
pub mod supervisor;

use std::path::PathBuf;
use std::time::Duration;

pub use control::{ControlError, HaproxyControl, Loaded, Reloader};
pub use guard::{GuardError, StatsAuth, StatsGuard};
pub use lua::install_lua;
pub use master::{Process, Processes};
pub use supervisor::{StopOutcome, Supervisor, SupervisorStats};

/// Where the supervised HAProxy and its files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorConfig {
    /// The HAProxy executable (`"haproxy"`: looked up in `PATH`).
    pub haproxy: PathBuf,
    /// The config file HAProxy loads (and re-reads on every reload).
    pub config: PathBuf,
    /// Runtime directory: the master socket (`master.sock`) and the pid
    /// file (`haproxy.pid`, the master's PID). Created if missing. Keep the
    /// path short: a Unix socket path is limited to 107 bytes, and it must
    /// not contain a comma (`-S` takes comma-separated options).
    pub run_dir: PathBuf,
    /// The server-state file written before each reload (marathon-lb:
    /// `/var/state/haproxy/global`, read back by `server-state-file global` +
    /// `server-state-base /var/state/haproxy/` in the HEAD).
    pub state_file: PathBuf,
    /// Where to install the Lua files before starting (marathon-lb:
    /// `/marathon-lb`); `None`: not installed.
    pub lua_dir: Option<PathBuf>,
}

impl SupervisorConfig {
    /// marathon-lb's locations for `config`: `haproxy` from `PATH`, run
    /// directory `/var/run/haproxy`, state file `/var/state/haproxy/global`,
    /// Lua files in `/marathon-lb`.
    pub fn new(config: impl Into<PathBuf>) -> Self {
        Self {
            haproxy: PathBuf::from("haproxy"),
            config: config.into(),
            run_dir: PathBuf::from("/var/run/haproxy"),
            state_file: PathBuf::from("/var/state/haproxy/global"),
            lua_dir: Some(PathBuf::from("/marathon-lb")),
        }
    }

    /// The master CLI socket: `<run_dir>/master.sock`.
    pub fn master_socket(&self) -> PathBuf {
        self.run_dir.join("master.sock")
    }

    /// The pid file (master PID): `<run_dir>/haproxy.pid`.
    pub fn pid_file(&self) -> PathBuf {
        self.run_dir.join("haproxy.pid")
    }
}

/// `option` names the supervised HAProxy needs in `defaults`, to be added to
/// `HAPROXY_GLOBAL_DEFAULT_OPTIONS` (default
/// `redispatch,http-server-close,dontlognull`) when the controller supervises
/// HAProxy. Without `idle-close-on-response`, keep-alive clients see read
/// errors on every reload (platform facts: 25–82 errors per 50 reloads).
pub const SUPERVISED_GLOBAL_OPTIONS: &[&str] = &["idle-close-on-response"];

/// `global` lines recommended in the supervised HEAD to bound old workers:
/// a worker left from a reload is stopped 30 s after the reload at the
/// latest, and one that survived 10 reloads gets SIGTERM (reloads that come
/// faster than connections finish otherwise pile up workers of 250–385 MB
/// each at 10,000 backends).
pub const RECOMMENDED_GLOBAL_LINES: &[&str] = &["hard-stop-after 30s", "mworker-max-reloads 10"];

/// `HAPROXY_GLOBAL_DEFAULT_OPTIONS` with [`SUPERVISED_GLOBAL_OPTIONS`]
/// appended where missing (comma-separated, as marathon-lb reads it).
///
/// ```
/// use mlb_haproxy::with_supervised_options;
/// assert_eq!(
///     with_supervised_options("redispatch,http-server-close,dontlognull"),
///     "redispatch,http-server-close,dontlognull,idle-close-on-response"
/// );
/// assert_eq!(with_supervised_options("idle-close-on-response"), "idle-close-on-response");
/// ```
pub fn with_supervised_options(options: &str) -> String {
    let mut list: Vec<&str> = options
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .collect();
    for option in SUPERVISED_GLOBAL_OPTIONS {
        if !list.contains(option) {
            list.push(option);
        }
    }
    list.join(",")
}

/// How long [`Supervisor::start`] waits for the master socket and a worker.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Supervisor::reload`] waits for the new worker.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Supervisor::stop`] waits after the soft stop before killing.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// First restart delay after HAProxy died; doubled after each further
/// failure up to [`MAX_RESTART_DELAY`].
pub const FIRST_RESTART_DELAY: Duration = Duration::from_secs(1);
/// Longest restart delay. A HAProxy that ran at least this long before it
/// died is restarted after [`FIRST_RESTART_DELAY`] again.
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);

/// What a successful reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// From taking the reload lock to the new worker being listed
    /// (server-state save included).
    pub duration: Duration,
    /// The worker serving the new config.
    pub new_worker_pid: u32,
    /// Workers of earlier generations still running (finishing connections
    /// until `hard-stop-after`).
    pub old_workers: Vec<u32>,
    /// Whether the server state was saved before the reload.
    pub state_saved: bool,
}

/// Why a supervisor operation failed.
///
/// Match on the variant, or use [`HaproxyError::kind`] as a metric label.
/// The I/O variants keep their `std::io::Error` as `source()` as well as in
/// the message.
#[derive(Debug, thiserror::Error)]
pub enum HaproxyError {
    /// Preparing a file or directory failed.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: String,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// The HAProxy executable could not be started.
    #[error("cannot run {haproxy}: {error}")]
    Spawn {
        /// The executable.
        haproxy: String,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// Another HAProxy already answers on the master socket.
    #[error("a HAProxy master already answers on {0}")]
    AlreadyRunning(String),
    /// HAProxy exited or did not become ready while starting.
    #[error("HAProxy did not start: {0}")]
    StartFailed(String),
    /// HAProxy is not running (it died and is being restarted, or the
    /// supervisor is stopping).
    #[error("HAProxy is not running (restart pending)")]
    NotRunning,
    /// Talking to the master socket failed.
    #[error("master socket {socket}: {error}")]
    Master {
        /// The socket.
        socket: String,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// HAProxy refused the new config; the previous worker keeps serving.
    #[error("HAProxy rejected the new config (previous config keeps serving): {0}")]
    ReloadRejected(String),
    /// No new worker appeared in time.
    #[error("reload not confirmed within {0:?} (no new worker)")]
    ReloadTimeout(Duration),
    /// HAProxy was restarted (a new master) while the reload was underway.
    #[error("HAProxy was restarted during the reload")]
    Restarted,
}

impl HaproxyError {
    /// A short stable label of the variant, for metrics and logs:
    /// `io`, `spawn`, `already_running`, `start_failed`, `not_running`,
    /// `master_socket`, `rejected` ([`HaproxyError::ReloadRejected`]),
    /// `timeout` ([`HaproxyError::ReloadTimeout`]), `restarted`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::Spawn { .. } => "spawn",
            Self::AlreadyRunning(_) => "already_running",
            Self::StartFailed(_) => "start_failed",
            Self::NotRunning => "not_running",
            Self::Master { .. } => "master_socket",
            Self::ReloadRejected(_) => "rejected",
            Self::ReloadTimeout(_) => "timeout",
            Self::Restarted => "restarted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supervised_options_are_added_once() {
        assert_eq!(
            with_supervised_options(" redispatch , dontlognull"),
            "redispatch,dontlognull,idle-close-on-response"
        );
        assert_eq!(with_supervised_options(""), "idle-close-on-response");
        assert_eq!(
            with_supervised_options("idle-close-on-response,redispatch"),
            "idle-close-on-response,redispatch"
        );
    }

    #[test]
    fn paths_under_run_dir() {
        let cfg = SupervisorConfig::new("/marathon-lb/haproxy.cfg");
        assert_eq!(
            cfg.master_socket(),
            PathBuf::from("/var/run/haproxy/master.sock")
        );
        assert_eq!(
            cfg.pid_file(),
            PathBuf::from("/var/run/haproxy/haproxy.pid")
        );
    }
}
