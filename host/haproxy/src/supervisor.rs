//! The supervisor: starts HAProxy in master-worker mode, restarts it when it
//! dies, reloads it one reload at a time with confirmation, stops it
//! gracefully. See the [module documentation](super) for the protocol.

use std::collections::VecDeque;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::master::{self, CLI_TIMEOUT, Processes};
use super::state::{EMPTY_SERVER_STATE, is_server_state, write_atomic};
use super::{
    FIRST_RESTART_DELAY, HaproxyError, MAX_RESTART_DELAY, RELOAD_TIMEOUT, ReloadReport,
    START_TIMEOUT, STOP_TIMEOUT, SupervisorConfig, lua,
};

/// How often the monitor refreshes the old-workers gauge.
const GAUGE_INTERVAL: Duration = Duration::from_secs(5);
/// Poll interval while waiting for the master socket or a new worker.
const POLL: Duration = Duration::from_millis(20);
/// HAProxy output lines kept for error messages.
const OUTPUT_LINES: usize = 400;

/// How [`Supervisor::stop`] ended HAProxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// The master exited after the soft stop (SIGUSR1): every worker
    /// finished its connections.
    Graceful,
    /// The timeout passed; the master was killed (its workers exit with it).
    Killed,
    /// HAProxy was not running (it had died and was waiting for a restart).
    NotRunning,
}

/// Recent HAProxy output lines with sequence numbers, so a reload can pick
/// the `[ALERT]` lines written after it began.
#[derive(Debug, Default)]
struct OutputLog {
    lines: StdMutex<VecDeque<(u64, String)>>,
    next: AtomicU64,
}

impl OutputLog {
    fn push(&self, line: String) {
        let seq = self.next.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut lines) = self.lines.lock() {
            if lines.len() == OUTPUT_LINES {
                lines.pop_front();
            }
            lines.push_back((seq, line));
        }
    }

    /// The sequence number the next line will get.
    fn mark(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }

    /// `[ALERT]` lines since `mark`, without their `[ALERT] (pid) :` prefix,
    /// joined with "; " (the last lines of output when there are none).
    fn alerts_since(&self, mark: u64) -> String {
        let Ok(lines) = self.lines.lock() else {
            return String::new();
        };
        let recent: Vec<&str> = lines
            .iter()
            .filter(|(seq, _)| *seq >= mark)
            .map(|(_, l)| l.as_str())
            .collect();
        let alerts: Vec<&str> = recent
            .iter()
            .filter(|l| l.starts_with("[ALERT]"))
            .map(|l| {
                let message = l.split_once(" : ").map_or(*l, |(_, m)| m);
                message.strip_prefix("config : ").unwrap_or(message).trim()
            })
            .filter(|l| {
                !l.contains("Error(s) found in configuration file")
                    && !l.contains("Fatal errors found in configuration")
            })
            .collect();
        if alerts.is_empty() {
            let tail = &recent[recent.len().saturating_sub(5)..];
            tail.join("; ")
        } else {
            alerts.join("; ")
        }
    }
}

/// What the supervisor counts, for the controller's metrics (read at
/// scrape time; the supervisor is the only writer).
#[derive(Debug, Default)]
pub struct SupervisorStats {
    /// 1 while a HAProxy master runs, else 0.
    pub up: AtomicU64,
    /// HAProxy masters started (the first start and every restart).
    pub starts: AtomicU64,
    /// Workers of earlier generations still running (last `show proc`).
    pub old_workers: AtomicU64,
    /// Reloads confirmed by a new worker.
    pub reloads_ok: AtomicU64,
    /// Reloads that failed (rejected config, timeout, HAProxy down).
    pub reloads_failed: AtomicU64,
}

/// State shared by the [`Supervisor`] handle and its monitor task.
#[derive(Debug)]
struct Shared {
    cfg: SupervisorConfig,
    stats: Arc<SupervisorStats>,
    /// The running master's PID (`None` while HAProxy is down).
    master_pid: StdMutex<Option<u32>>,
    output: OutputLog,
    /// What HAProxy's output has already logged (see [`Relay`]).
    relay: StdMutex<Relay>,
}

impl Shared {
    fn master_pid(&self) -> Option<u32> {
        self.master_pid.lock().ok().and_then(|p| *p)
    }

    fn set_master_pid(&self, pid: Option<u32>) {
        if let Ok(mut p) = self.master_pid.lock() {
            *p = pid;
        }
        self.stats
            .up
            .store(u64::from(pid.is_some()), Ordering::Relaxed);
    }

    fn socket_display(&self) -> String {
        self.cfg.master_socket().display().to_string()
    }

    async fn cli(&self, command: &str) -> Result<String, HaproxyError> {
        master::command(&self.cfg.master_socket(), command, CLI_TIMEOUT)
            .await
            .map_err(|error| HaproxyError::Master {
                socket: self.socket_display(),
                error,
            })
    }

    /// [`cli`](Self::cli), retried for up to 2 s while the master refuses
    /// connections (it does while it re-executes itself for a reload that
    /// was not ours, e.g. a SIGUSR2).
    async fn cli_patient(&self, command: &str) -> Result<String, HaproxyError> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.cli(command).await {
                Err(HaproxyError::Master { error, .. })
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
                    ) && Instant::now() < deadline =>
                {
                    tokio::time::sleep(POLL).await;
                }
                other => return other,
            }
        }
    }

    async fn show_proc(&self) -> Result<Processes, HaproxyError> {
        self.parse_proc(self.cli("show proc").await?)
    }

    fn parse_proc(&self, answer: String) -> Result<Processes, HaproxyError> {
        master::parse_show_proc(&answer).ok_or_else(|| HaproxyError::Master {
            socket: self.socket_display(),
            error: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unexpected answer to `show proc`: {}", answer.trim()),
            ),
        })
    }

    fn update_old_workers(&self, procs: &Processes) {
        self.stats
            .old_workers
            .store(procs.old_workers.len() as u64, Ordering::Relaxed);
    }
}

/// A stop request for the monitor task.
#[derive(Debug)]
struct StopRequest {
    timeout: Duration,
    done: oneshot::Sender<StopOutcome>,
}

/// HAProxy running under the controller.
///
/// Dropping the supervisor without [`stop`](Self::stop) kills HAProxy
/// (SIGKILL to the master; its workers exit with it).
#[derive(Debug)]
pub struct Supervisor {
    shared: Arc<Shared>,
    reload_lock: Mutex<()>,
    stop_tx: Option<mpsc::Sender<StopRequest>>,
    monitor: Option<JoinHandle<()>>,
}

impl Supervisor {
    /// Install the Lua files (when [`SupervisorConfig::lua_dir`] is set),
    /// create the run and state directories, start HAProxy and wait until
    /// the master socket answers and lists a worker. Must be called within a
    /// tokio runtime; a background task then watches HAProxy and restarts it
    /// when it dies.
    pub async fn start(cfg: SupervisorConfig) -> Result<Supervisor, HaproxyError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |error| HaproxyError::Io { path, error }
        };
        if let Some(dir) = &cfg.lua_dir {
            lua::install_lua(dir).map_err(io(dir))?;
        }
        std::fs::create_dir_all(&cfg.run_dir).map_err(io(&cfg.run_dir))?;
        if !cfg.state_file.exists() {
            write_atomic(&cfg.state_file, EMPTY_SERVER_STATE.as_bytes())
                .map_err(io(&cfg.state_file))?;
        }
        let shared = Arc::new(Shared {
            cfg,
            stats: Arc::default(),
            master_pid: StdMutex::new(None),
            output: OutputLog::default(),
            relay: StdMutex::new(Relay::default()),
        });
        if shared.show_proc().await.is_ok() {
            return Err(HaproxyError::AlreadyRunning(shared.socket_display()));
        }
        let child = start_haproxy(&shared).await?;
        let (stop_tx, stop_rx) = mpsc::channel(1);
        let monitor = tokio::spawn(monitor(shared.clone(), child, stop_rx));
        Ok(Supervisor {
            shared,
            reload_lock: Mutex::new(()),
            stop_tx: Some(stop_tx),
            monitor: Some(monitor),
        })
    }

    /// What the supervisor counts (shared: the counters keep moving).
    pub fn stats(&self) -> Arc<SupervisorStats> {
        self.shared.stats.clone()
    }

    /// The supervised files and paths.
    pub fn config(&self) -> &SupervisorConfig {
        &self.shared.cfg
    }

    /// The running master's PID (`None` while HAProxy is down and a restart
    /// is pending).
    pub fn master_pid(&self) -> Option<u32> {
        self.shared.master_pid()
    }

    /// `show proc`: the master, the current and the old workers.
    pub async fn processes(&self) -> Result<Processes, HaproxyError> {
        self.shared.show_proc().await
    }

    /// Send a command to the master CLI and return its answer.
    pub async fn master_command(&self, command: &str) -> Result<String, HaproxyError> {
        self.shared.cli(command).await
    }

    /// Send a runtime-API command to the current worker (`@1 <command>`
    /// through the master), e.g. `set server app/srv1 addr 10.0.0.5 port
    /// 31000`, and return its answer.
    pub async fn worker_command(&self, command: &str) -> Result<String, HaproxyError> {
        self.shared.cli(&format!("@1 {command}")).await
    }

    /// Save the current worker's server state (`show servers state`) to
    /// [`SupervisorConfig::state_file`], atomically. An answer that is not a
    /// state dump is an error and leaves the file alone.
    pub async fn save_server_state(&self) -> Result<(), HaproxyError> {
        let dump = self.worker_command("show servers state").await?;
        if !is_server_state(&dump) {
            return Err(HaproxyError::Master {
                socket: self.shared.socket_display(),
                error: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("unexpected answer to `show servers state`: {}", dump.trim()),
                ),
            });
        }
        let path = &self.shared.cfg.state_file;
        write_atomic(path, dump.as_bytes()).map_err(|error| HaproxyError::Io {
            path: path.display().to_string(),
            error,
        })
    }

    /// Reload HAProxy with the config file as it is on disk now: save the
    /// server state, send `reload` to the master, and wait until a new
    /// worker is listed (see the [module documentation](super)). Reloads
    /// are serialised: a second caller waits for the first to be confirmed.
    ///
    /// A config HAProxy refuses is [`HaproxyError::ReloadRejected`]; the
    /// previous worker keeps serving. Counts
    /// [`reloads_ok`](SupervisorStats::reloads_ok) /
    /// [`reloads_failed`](SupervisorStats::reloads_failed).
    pub async fn reload(&self) -> Result<ReloadReport, HaproxyError> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let started = Instant::now();
        let result = self.reload_locked(started).await;
        let stats = &self.shared.stats;
        match &result {
            Ok(report) => {
                stats.reloads_ok.fetch_add(1, Ordering::Relaxed);
                // The caller's reconcile line reports the reload.
                tracing::trace!(
                    elapsed_ms = report.duration.as_millis() as u64,
                    new_worker = report.new_worker_pid,
                    old_workers = report.old_workers.len(),
                    "HAProxy reloaded"
                );
            }
            Err(e) => {
                stats.reloads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "HAProxy reload failed");
            }
        }
        result
    }

    async fn reload_locked(&self, started: Instant) -> Result<ReloadReport, HaproxyError> {
        let shared = &self.shared;
        let Some(master_pid) = shared.master_pid() else {
            return Err(HaproxyError::NotRunning);
        };
        let before = shared.parse_proc(shared.cli_patient("show proc").await?)?;
        if before.master_pid != master_pid {
            return Err(HaproxyError::Restarted);
        }
        let state_saved = match self.save_server_state().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "server state not saved before the reload");
                false
            }
        };
        let mark = shared.output.mark();
        // The master answers nothing to `reload` and closes the connection
        // once it re-executes itself: an empty answer is success.
        shared.cli_patient("reload").await?;
        let deadline = Instant::now() + RELOAD_TIMEOUT;
        loop {
            tokio::time::sleep(POLL).await;
            if shared.master_pid() != Some(master_pid) {
                return Err(HaproxyError::Restarted);
            }
            // Refused connections are expected while the master re-executes.
            if let Ok(now) = shared.show_proc().await {
                if now.master_pid != master_pid {
                    return Err(HaproxyError::Restarted);
                }
                if now.reloads > before.reloads {
                    let failed = match (now.failed_reloads, before.failed_reloads) {
                        (Some(n), Some(b)) => n > b,
                        _ => false,
                    };
                    if failed {
                        // Let the output reader catch up with the alerts.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        shared.update_old_workers(&now);
                        return Err(HaproxyError::ReloadRejected(
                            shared.output.alerts_since(mark),
                        ));
                    }
                    if let Some(new_worker_pid) = now
                        .current_worker()
                        .filter(|pid| !before.workers.iter().any(|w| w.pid == *pid))
                    {
                        shared.update_old_workers(&now);
                        return Ok(ReloadReport {
                            duration: started.elapsed(),
                            new_worker_pid,
                            old_workers: now.old_workers.iter().map(|w| w.pid).collect(),
                            state_saved,
                        });
                    }
                }
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    output = %shared.output.alerts_since(mark),
                    "no new HAProxy worker after the reload"
                );
                return Err(HaproxyError::ReloadTimeout(RELOAD_TIMEOUT));
            }
        }
    }

    /// Stop HAProxy gracefully: SIGUSR1 to the master (soft stop: listeners
    /// close, connections finish), wait up to [`STOP_TIMEOUT`], then SIGKILL.
    pub async fn stop(self) -> StopOutcome {
        self.stop_with_timeout(STOP_TIMEOUT).await
    }

    /// [`stop`](Self::stop) with another timeout before the kill.
    pub async fn stop_with_timeout(mut self, timeout: Duration) -> StopOutcome {
        let Some(tx) = self.stop_tx.take() else {
            return StopOutcome::NotRunning;
        };
        let (done, outcome) = oneshot::channel();
        let outcome = if tx.send(StopRequest { timeout, done }).await.is_ok() {
            outcome.await.unwrap_or(StopOutcome::NotRunning)
        } else {
            StopOutcome::NotRunning
        };
        if let Some(task) = self.monitor.take() {
            let _ = task.await;
        }
        let _ = std::fs::remove_file(self.shared.cfg.pid_file());
        outcome
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Closing the channel tells the monitor to kill HAProxy; when the
        // runtime is gone, `kill_on_drop` on the child does it.
        self.stop_tx.take();
    }
}

/// The `global` lines that bound old workers ([`super::RECOMMENDED_GLOBAL_LINES`]),
/// minus those whose directive the config sets itself, as a second config
/// file loaded after the main one (HAProxy merges `global` sections).
fn write_supervised_globals(
    cfg: &super::SupervisorConfig,
) -> Result<std::path::PathBuf, HaproxyError> {
    let main = std::fs::read_to_string(&cfg.config).unwrap_or_default();
    let mut text =
        String::from("# Written by marathon-lb --supervise-haproxy: bounds old workers.\nglobal\n");
    for line in super::RECOMMENDED_GLOBAL_LINES {
        let directive = line.split_whitespace().next().unwrap_or_default();
        let set_by_config = main
            .lines()
            .any(|l| l.split_whitespace().next() == Some(directive));
        if !set_by_config {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
    }
    let path = cfg.run_dir.join("supervised-globals.cfg");
    std::fs::write(&path, text).map_err(|error| HaproxyError::Io {
        path: path.display().to_string(),
        error,
    })?;
    Ok(path)
}

/// The only environment variables the supervised HAProxy inherits. HAProxy
/// expands `${VAR}` in double-quoted config strings and `%[env(VAR)]` in
/// log-format arguments, so the controller's environment (credentials, a
/// DC/OS service-account secret) must not reach it: `PATH` (the Lua
/// `getpids` endpoint runs `pidof`), `MLB_PID_FILE` (read by the Lua
/// `signalmlb` endpoints), and `TZ`, `LANG`, `LC_ALL` (log timestamps and
/// messages). HAProxy sets its own `HAPROXY_*` variables.
pub const HAPROXY_ENV: &[&str] = &["PATH", "MLB_PID_FILE", "TZ", "LANG", "LC_ALL"];

/// Spawn HAProxy and forward its output to `tracing`.
fn spawn_haproxy(shared: &Arc<Shared>) -> Result<Child, HaproxyError> {
    let cfg = &shared.cfg;
    let globals = write_supervised_globals(cfg)?;
    let mut socket = cfg.master_socket().into_os_string();
    socket.push(",mode,600");
    let mut child = Command::new(&cfg.haproxy)
        .env_clear()
        .envs(
            HAPROXY_ENV
                .iter()
                .filter_map(|k| Some((k, std::env::var_os(k)?))),
        )
        .arg("-W")
        .arg("-db")
        .arg("-S")
        .arg(socket)
        .arg("-p")
        .arg(cfg.pid_file())
        .arg("-f")
        .arg(&cfg.config)
        .arg("-f")
        .arg(&globals)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a Ctrl-C meant for the controller must not
        // hard-stop HAProxy behind the controller's back.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| HaproxyError::Spawn {
            haproxy: cfg.haproxy.display().to_string(),
            error,
        })?;
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward_output(out, shared.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward_output(err, shared.clone()));
    }
    Ok(child)
}

/// How long an output line already logged stays quiet when it comes again.
const REPEAT_WINDOW: Duration = Duration::from_secs(600);

/// What to do with one line of HAProxy's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relayed {
    /// Routine (version banner, "New worker forked", "Loading success",
    /// "Proxy X stopped" of every proxy of an old worker, a worker that
    /// exited normally, the master leaving after a soft stop): logged only
    /// at NOTSET (trace).
    Routine,
    /// `[ALERT]`: error, verbatim.
    Alert,
    /// `[WARNING]`: warning, verbatim.
    Warning,
    /// Anything else (a Lua script's output): info.
    Other,
}

/// Sort a line of HAProxy 2.6 output.
fn classify(line: &str) -> Relayed {
    let message = line.split_once(" : ").map_or(line, |(_, m)| m);
    // A worker that served runtime API commands prefixes its messages with
    // their origin ("CLI : Proxy x stopped ...").
    let message = message.strip_prefix("CLI : ").unwrap_or(message);
    if line.starts_with("[NOTICE]")
        || (message.starts_with("Proxy ") && message.contains(" stopped ("))
        || (message.contains(" worker (") && message.contains("exited with code 0"))
        || message.starts_with("All workers exited. Exiting... (0)")
        || message.starts_with("Exiting Master process...")
        // The runtime path's own `set server … state maint|ready`.
        || (message.starts_with("Server ")
            && (message.contains(" is going DOWN for maintenance")
                || message.contains(" (leaving forced maintenance)")))
    {
        Relayed::Routine
    } else if line.starts_with("[ALERT]") {
        Relayed::Alert
    } else if line.starts_with("[WARNING]") {
        Relayed::Warning
    } else {
        Relayed::Other
    }
}

/// De-duplicates HAProxy's output: each reload prints the same warnings
/// again (from the new worker, with a new PID), so a line logged in the
/// last [`REPEAT_WINDOW`] — compared without its PID and numbers — is
/// logged only at NOTSET (trace).
#[derive(Debug, Default)]
struct Relay {
    seen: std::collections::HashMap<String, Instant>,
}

impl Relay {
    /// Whether `line` is new (and remember it).
    fn fresh(&mut self, line: &str, now: Instant) -> bool {
        let message = line.split_once(" : ").map_or(line, |(_, m)| m);
        let mut key = String::with_capacity(message.len());
        for c in message.chars() {
            if c.is_ascii_digit() {
                if !key.ends_with('#') {
                    key.push('#');
                }
            } else {
                key.push(c);
            }
        }
        self.seen
            .retain(|_, at| now.duration_since(*at) < REPEAT_WINDOW);
        if self.seen.contains_key(&key) {
            return false;
        }
        self.seen.insert(key, now);
        true
    }
}

/// Log HAProxy's output lines, summarised (see [`classify`] and [`Relay`]),
/// and keep them all for error messages. Invalid UTF-8 is replaced, never a
/// reason to stop reading (a full pipe would block HAProxy).
async fn forward_output(stream: impl AsyncRead + Unpin, shared: Arc<Shared>) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
        if line.is_empty() {
            continue;
        }
        let kind = classify(&line);
        let fresh = kind != Relayed::Routine
            && shared
                .relay
                .lock()
                .is_ok_and(|mut r| r.fresh(&line, Instant::now()));
        match (kind, fresh) {
            (Relayed::Alert, true) => tracing::error!(target: "haproxy", "{line}"),
            (Relayed::Warning, true) => tracing::warn!(target: "haproxy", "{line}"),
            (Relayed::Other, true) => tracing::info!(target: "haproxy", "{line}"),
            _ => tracing::trace!(target: "haproxy", "{line}"),
        }
        shared.output.push(line);
    }
}

/// Spawn HAProxy and wait until its master answers with a worker; count the
/// start.
async fn start_haproxy(shared: &Arc<Shared>) -> Result<Child, HaproxyError> {
    let mark = shared.output.mark();
    let mut child = spawn_haproxy(shared)?;
    let pid = child.id().unwrap_or_default();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            // Let the output reader catch up with the alerts.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(HaproxyError::StartFailed(format!(
                "exited with {status}: {}",
                shared.output.alerts_since(mark)
            )));
        }
        if let Ok(procs) = shared.show_proc().await
            && procs.master_pid == pid
            && let Some(worker) = procs.current_worker()
        {
            shared.set_master_pid(Some(pid));
            shared.update_old_workers(&procs);
            shared.stats.starts.fetch_add(1, Ordering::Relaxed);
            tracing::info!(master = pid, worker, "HAProxy started");
            return Ok(child);
        }
        if Instant::now() >= deadline {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(HaproxyError::StartFailed(format!(
                "no worker on {} within {START_TIMEOUT:?}: {}",
                shared.socket_display(),
                shared.output.alerts_since(mark)
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Restart delays: 1 s, doubling, at most 30 s.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            next: FIRST_RESTART_DELAY,
        }
    }

    fn reset(&mut self) {
        self.next = FIRST_RESTART_DELAY;
    }

    fn delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_RESTART_DELAY);
        delay
    }
}

/// Watch the child: restart it when it exits on its own, stop it on request
/// (or kill it when the supervisor is dropped), refresh the old-workers gauge.
async fn monitor(shared: Arc<Shared>, mut child: Child, mut stop_rx: mpsc::Receiver<StopRequest>) {
    let mut backoff = Backoff::new();
    let mut running_since = Instant::now();
    let mut gauge = tokio::time::interval(GAUGE_INTERVAL);
    gauge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            request = stop_rx.recv() => {
                let outcome = match &request {
                    Some(r) => graceful_stop(&shared, &mut child, r.timeout).await,
                    None => kill(&shared, &mut child).await,
                };
                shared.set_master_pid(None);
                if let Some(r) = request {
                    let _ = r.done.send(outcome);
                }
                return;
            }
            status = child.wait() => {
                shared.set_master_pid(None);
                log_exit(status);
                if running_since.elapsed() >= MAX_RESTART_DELAY {
                    backoff.reset();
                }
                match restart(&mut backoff, &mut stop_rx, || start_haproxy(&shared)).await {
                    Ok(c) => {
                        child = c;
                        running_since = Instant::now();
                    }
                    Err(request) => {
                        // Nothing is running (an unfinished start is
                        // dropped, which kills it).
                        if let Some(r) = request {
                            let _ = r.done.send(StopOutcome::NotRunning);
                        }
                        return;
                    }
                }
            }
            _ = gauge.tick() => {
                if let Ok(procs) = shared.show_proc().await {
                    shared.update_old_workers(&procs);
                }
            }
        }
    }
}

/// After HAProxy died: wait `backoff`'s next delay and `start` it, again
/// until a start succeeds. `Err` with the stop request (`None`: the
/// supervisor was dropped) when one comes first.
async fn restart<T, S, F>(
    backoff: &mut Backoff,
    stop_rx: &mut mpsc::Receiver<StopRequest>,
    mut start: S,
) -> Result<T, Option<StopRequest>>
where
    S: FnMut() -> F,
    F: std::future::Future<Output = Result<T, HaproxyError>>,
{
    loop {
        let delay = backoff.delay();
        tracing::warn!(delay_ms = delay.as_millis() as u64, "restarting HAProxy");
        let attempt = async {
            tokio::time::sleep(delay).await;
            start().await
        };
        tokio::select! {
            request = stop_rx.recv() => return Err(request),
            started = attempt => match started {
                Ok(c) => return Ok(c),
                Err(e) => tracing::error!(error = %e, "HAProxy restart failed"),
            }
        }
    }
}

fn log_exit(status: std::io::Result<ExitStatus>) {
    match status {
        Ok(s) => tracing::error!(status = %s, "HAProxy exited unexpectedly"),
        Err(e) => tracing::error!(error = %e, "waiting for HAProxy failed"),
    }
}

/// Send `signal` to `pid`.
fn signal(pid: u32, signal: rustix::process::Signal) -> std::io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    rustix::process::kill_process(pid, signal).map_err(std::io::Error::from)
}

/// Whether `pid` is still a running (not zombie) `haproxy` process.
fn is_live_haproxy(pid: u32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    comm.trim() == "haproxy" && !matches!(state, Some("Z" | "X") | None)
}

/// Workers left running after their master is gone are killed (they exit
/// by themselves when they notice the master died; this is the backstop).
async fn reap_workers(workers: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while workers.iter().any(|&w| is_live_haproxy(w)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for &w in workers.iter().filter(|&&w| is_live_haproxy(w)) {
        tracing::warn!(worker = w, "killing a HAProxy worker left behind");
        let _ = signal(w, rustix::process::Signal::KILL);
    }
}

async fn graceful_stop(shared: &Shared, child: &mut Child, timeout: Duration) -> StopOutcome {
    let workers: Vec<u32> = match shared.show_proc().await {
        Ok(p) => p.all_workers().collect(),
        Err(_) => Vec::new(),
    };
    let Some(pid) = child.id() else {
        return StopOutcome::NotRunning;
    };
    tracing::info!(master = pid, "stopping HAProxy (soft stop)");
    let outcome = if signal(pid, rustix::process::Signal::USR1).is_ok()
        && tokio::time::timeout(timeout, child.wait()).await.is_ok()
    {
        StopOutcome::Graceful
    } else {
        tracing::warn!(master = pid, "HAProxy did not stop in time; killing it");
        let _ = child.start_kill();
        let _ = child.wait().await;
        StopOutcome::Killed
    };
    reap_workers(&workers).await;
    outcome
}

async fn kill(shared: &Shared, child: &mut Child) -> StopOutcome {
    let workers: Vec<u32> = match shared.show_proc().await {
        Ok(p) => p.all_workers().collect(),
        Err(_) => Vec::new(),
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    reap_workers(&workers).await;
    StopOutcome::Killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn restarts_wait_one_two_four_seconds_until_a_start_succeeds() {
        let (_stop_tx, mut stop_rx) = mpsc::channel(1);
        let mut backoff = Backoff::new();
        let t0 = tokio::time::Instant::now();
        let mut attempts = Vec::new();
        let started = restart(&mut backoff, &mut stop_rx, || {
            attempts.push(t0.elapsed());
            let n = attempts.len();
            async move {
                if n < 4 {
                    Err(HaproxyError::StartFailed(format!("attempt {n}")))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(started.ok(), Some(4));
        let secs: Vec<u64> = attempts.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [1, 3, 7, 15], "1 s, then 2, 4, 8 s between attempts");
        // The next death waits 16 s (the schedule goes on), 30 s at most.
        assert_eq!(backoff.delay(), Duration::from_secs(16));
        assert_eq!(backoff.delay(), MAX_RESTART_DELAY);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_request_ends_the_restart_wait() {
        let (stop_tx, mut stop_rx) = mpsc::channel(1);
        let mut backoff = Backoff::new();
        let (done, _) = oneshot::channel();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let _ = stop_tx
                .send(StopRequest {
                    timeout: Duration::from_secs(1),
                    done,
                })
                .await;
        });
        let t0 = tokio::time::Instant::now();
        let result: Result<(), _> = restart(&mut backoff, &mut stop_rx, || async {
            Err(HaproxyError::NotRunning)
        })
        .await;
        assert!(matches!(result, Err(Some(_))));
        assert_eq!(
            t0.elapsed(),
            Duration::from_millis(500),
            "no start was attempted"
        );
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new();
        let secs: Vec<u64> = (0..8).map(|_| b.delay().as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        b.reset();
        assert_eq!(b.delay(), Duration::from_secs(1));
    }

    #[test]
    fn alerts_are_condensed() {
        let log = OutputLog::default();
        log.push("[NOTICE]   (1) : Reloading HAProxy".into());
        let mark = log.mark();
        log.push("[ALERT]    (1) : config : parsing [h.cfg:15] : unknown keyword 'bogus' in 'frontend' section".into());
        log.push("[ALERT]    (1) : config : Error(s) found in configuration file : h.cfg".into());
        log.push("[ALERT]    (1) : config : Fatal errors found in configuration.".into());
        log.push("[WARNING]  (1) : Loading failure!".into());
        assert_eq!(
            log.alerts_since(mark),
            "parsing [h.cfg:15] : unknown keyword 'bogus' in 'frontend' section"
        );
        assert_eq!(log.alerts_since(log.mark()), "");
    }

    #[test]
    fn routine_output_is_dropped_and_repeats_are_quiet() {
        let reload = [
            "[NOTICE]   (18171) : Reloading HAProxy",
            "[NOTICE]   (18171) : haproxy version is 2.6.12-1+deb12u4",
            "[WARNING]  (18175) : Proxy f_tcp stopped (cumulated conns: FE: 0, BE: 0).",
            "[WARNING]  (18175) : Proxy <HTTPCLIENT> stopped (cumulated conns: FE: 0, BE: 0).",
            "[NOTICE]   (18171) : New worker (18266) forked",
            "[NOTICE]   (18171) : Loading success.",
            "[WARNING]  (18171) : Former worker (18175) exited with code 0 (Exit)",
            "[WARNING]  (30431) : Current worker (30748) exited with code 0 (Exit)",
            "[WARNING]  (30431) : All workers exited. Exiting... (0)",
            "[WARNING]  (18967) : Exiting Master process...",
        ];
        assert!(reload.iter().all(|l| classify(l) == Relayed::Routine));
        assert_eq!(
            classify(
                "[WARNING]  (4600) : CLI : Proxy web stopped (cumulated conns: FE: 5, BE: 0)."
            ),
            Relayed::Routine
        );
        assert_eq!(
            classify(
                "[WARNING]  (7) : Server be/s1 is going DOWN for maintenance. 1 active and 0 backup servers left."
            ),
            Relayed::Routine
        );
        let alert = "[ALERT]    (18175) : sendmsg()/writev() failed in logger #1: No such file or directory (errno=2)";
        assert_eq!(classify(alert), Relayed::Alert);
        let down = "[WARNING]  (18175) : Server b/s1 is DOWN, reason: Layer4 connection problem, check duration: 0ms.";
        assert_eq!(classify(down), Relayed::Warning);
        assert_eq!(
            classify("[WARNING]  (1) : Former worker (2) exited with code 134 (Aborted)"),
            Relayed::Warning
        );
        let mut relay = Relay::default();
        let t0 = Instant::now();
        assert!(relay.fresh(down, t0));
        // The next worker says it again, with another PID and duration.
        assert!(!relay.fresh(
            &down.replace("18175", "18266").replace("0ms", "1ms"),
            t0 + Duration::from_secs(1)
        ));
        assert!(relay.fresh(alert, t0));
        assert!(relay.fresh(down, t0 + REPEAT_WINDOW));
    }

    #[test]
    fn output_log_is_bounded() {
        let log = OutputLog::default();
        for i in 0..(OUTPUT_LINES + 10) {
            log.push(format!("line {i}"));
        }
        assert_eq!(log.lines.lock().unwrap().len(), OUTPUT_LINES);
        assert_eq!(
            log.alerts_since(0),
            format!(
                "line {}; line {}; line {}; line {}; line {}",
                OUTPUT_LINES + 5,
                OUTPUT_LINES + 6,
                OUTPUT_LINES + 7,
                OUTPUT_LINES + 8,
                OUTPUT_LINES + 9
            )
        );
    }
}
