//! [`HaproxyControl`]: the one owner of how a generated config reaches
//! HAProxy — written atomically and validated ([`apply`]),
//! cleaned of the apps HAProxy rejects ([`cleanup`]), and
//! loaded, by one of two reloaders:
//!
//! * [`Reloader::Command`] — marathon-lb's way: `--command` (or what the
//!   init system offers) runs after a changed config.
//! * [`Reloader::Supervised`] — the built-in master-worker
//!   [`Supervisor`]: started when the first config is in place, reloaded
//!   over the master socket after every change.
//!
//! The reload decision lives in one place, [`HaproxyControl::load`]:
//!
//! | reloader   | config unchanged          | config written  |
//! |------------|---------------------------|-----------------|
//! | command    | nothing                   | run the command |
//! | command + admin socket | nothing      | runtime update or the command |
//! | supervised, not started | start (if the file exists) | start |
//! | supervised, running | nothing          | runtime update or reload |
//!
//! A running supervised HAProxy (or, with `--haproxy-admin-socket`, the
//! one the command reloads) gets a change that only adds, removes or
//! toggles `server` lines of existing backends through its runtime API
//! ([`runtime`](crate::runtime)) instead of a reload: the config it runs is
//! kept here (set at start and at every reload or runtime update) and
//! compared with the file just written. Every other change, and any failure
//! of the runtime path, reloads; [`HaproxyControl::last_reload_reason`]
//! says why.
//!
//! SIGUSR1 ([`HaproxyControl::revalidate`]) validates the file on disk and
//! loads it whatever changed. The time of the last reload is kept here for
//! `--min-reload-interval`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mlb_core::RenderSettings;
use mlb_core::Rendered;
use mlb_core::render::Renderer;
use mlb_model::Service;
use tokio::time::Instant;

use crate::apply::{self, ApplyError, ApplyOptions, Outcome};
use crate::runtime::{self, Applied, Decision, ReloadReason, SharedDraining, WorkerCli};
use crate::{HaproxyError, StopOutcome, Supervisor, SupervisorConfig, SupervisorStats, cleanup};

/// How HAProxy is (re)loaded.
#[derive(Debug)]
pub enum Reloader {
    /// Run `--command` (or the init system's reload) after a change.
    Command {
        /// `--haproxy-admin-socket`: an admin-level stats socket of the
        /// HAProxy the command reloads; membership changes then go through
        /// it instead of the command.
        admin_socket: Option<PathBuf>,
    },
    /// Run HAProxy as a supervised child.
    Supervised {
        /// Where it lives.
        cfg: SupervisorConfig,
        /// The running supervisor (`None` until the first start).
        running: Option<Supervisor>,
    },
}

/// What a load did to HAProxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// The reload command ran.
    CommandRan,
    /// The supervised HAProxy was started.
    Started,
    /// The supervised HAProxy reloaded; how long it took (why:
    /// [`HaproxyControl::last_reload_reason`]).
    Reloaded(Duration),
    /// The supervised HAProxy took the change through its runtime API, with
    /// no reload.
    Runtime(Applied),
}

impl Loaded {
    /// A word for the reconcile line (`haproxy=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Loaded::Started => "started",
            Loaded::CommandRan | Loaded::Reloaded(_) => "reloaded",
            Loaded::Runtime(_) => "runtime",
        }
    }
}

/// Why a config could not be put in place or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Writing or validating failed (the files on disk are the previous
    /// ones), or the reload command failed (the new config is in place).
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The supervised HAProxy could not be started.
    #[error("cannot start the supervised HAProxy: {0}")]
    Start(#[source] HaproxyError),
    /// The supervised HAProxy did not take the new config.
    #[error("supervised HAProxy reload failed: {0}")]
    Reload(#[source] HaproxyError),
}

impl ControlError {
    /// A short stable name of what failed (a log field and metric label).
    pub fn kind(&self) -> &'static str {
        match self {
            // io, validation, command (or a supervisor error's kind)
            ControlError::Apply(e) => e.kind(),
            ControlError::Start(_) => "start",
            ControlError::Reload(HaproxyError::ReloadRejected(_)) => "reload_rejected",
            ControlError::Reload(HaproxyError::ReloadTimeout(_)) => "reload_timeout",
            ControlError::Reload(e) => e.kind(),
        }
    }

    /// Whether the new config may already be on disk (the failure came
    /// after it was written).
    pub fn after_write(&self) -> bool {
        matches!(
            self,
            ControlError::Apply(ApplyError::Reload { .. } | ApplyError::Supervisor(_))
                | ControlError::Start(_)
                | ControlError::Reload(_)
        )
    }
}

/// The files, the apply options and the reloader.
#[derive(Debug)]
pub struct HaproxyControl {
    config: PathBuf,
    haproxy_map: bool,
    options: ApplyOptions,
    skip_cleanup: bool,
    reloader: Reloader,
    last_reload: Option<Instant>,
    /// Membership changes through the runtime API (supervised only).
    runtime_updates: bool,
    /// The files the supervised HAProxy runs (`None`: not known).
    running: Option<Files>,
    /// Why the last reload happened.
    last_reason: Option<ReloadReason>,
    /// Servers removed at run time, not deleted yet.
    draining: SharedDraining,
    /// The task deleting them.
    sweeper: Option<tokio::task::JoinHandle<()>>,
    /// The runtime plan of the last [`write`](HaproxyControl::write), when
    /// it was a runtime change: [`load`](HaproxyControl::load) applies that
    /// plan instead of reading the files back and diffing them again (at
    /// 5,000 backends two 4 MB reads and diffs).
    prepared: std::sync::Mutex<Option<Prepared>>,
    /// How runtime changes were checked.
    checks: RuntimeChecks,
    /// Syncs the files of runtime changes once they are loaded.
    syncer: crate::durable::Syncer,
    /// The config text HAProxy ran before the last runtime change
    /// ([`take_retired`](HaproxyControl::take_retired)).
    retired: Option<String>,
}

/// A runtime change written, waiting for its load.
#[derive(Debug)]
struct Prepared {
    plan: runtime::Plan,
    /// The length of the config written.
    len: usize,
    /// The config written, when the caller handed it over
    /// ([`HaproxyControl::keep_written`]).
    config: Option<String>,
    /// Its files, renamed into place, synced once the change is loaded.
    unsynced: apply::Unsynced,
}

/// A change the runtime API can make, as decided.
struct RuntimeChange {
    plan: runtime::Plan,
    /// Why an excerpt was checked with `haproxy -c` (`None`: not needed).
    check: Option<String>,
    /// Time taken to decide, and to check.
    decided: std::time::Duration,
    checked: std::time::Duration,
}

/// Counters of [`HaproxyControl::runtime_checks`].
#[derive(Debug, Default)]
struct RuntimeChecks {
    excerpt: std::sync::atomic::AtomicU64,
    skipped: std::sync::atomic::AtomicU64,
}

/// The config and map texts HAProxy runs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Files {
    config: String,
    maps: Option<(String, String)>,
}

impl HaproxyControl {
    /// Control of `config` (and its maps with `haproxy_map`). A supervised
    /// reloader gets its Lua files installed now: the HEAD `lua-load`s
    /// them, so they must exist before the first `haproxy -c`.
    pub fn new(
        config: PathBuf,
        haproxy_map: bool,
        options: ApplyOptions,
        skip_cleanup: bool,
        supervise: Option<SupervisorConfig>,
    ) -> Result<Self, ApplyError> {
        let reloader = match supervise {
            None => Reloader::Command { admin_socket: None },
            Some(cfg) => {
                if let Some(dir) = &cfg.lua_dir {
                    crate::install_lua(dir).map_err(|error| ApplyError::Io {
                        path: dir.display().to_string(),
                        error,
                    })?;
                }
                Reloader::Supervised { cfg, running: None }
            }
        };
        Ok(Self {
            config,
            haproxy_map,
            options,
            skip_cleanup,
            reloader,
            last_reload: None,
            runtime_updates: true,
            running: None,
            last_reason: None,
            draining: SharedDraining::default(),
            sweeper: None,
            prepared: std::sync::Mutex::new(None),
            checks: RuntimeChecks::default(),
            syncer: crate::durable::Syncer::new(),
            retired: None,
        })
    }

    /// Turn membership changes through the runtime API off (every change
    /// reloads: `--no-runtime-updates`) or on (the default).
    pub fn set_runtime_updates(&mut self, on: bool) {
        self.runtime_updates = on;
    }

    /// With the command reloader: membership changes go through the
    /// admin-level stats socket `socket` (`--haproxy-admin-socket`) instead
    /// of the command. What HAProxy runs is known only once the command has
    /// run, so the first change after start runs the command.
    pub fn set_admin_socket(&mut self, socket: PathBuf) {
        if let Reloader::Command { admin_socket } = &mut self.reloader {
            *admin_socket = Some(socket);
        }
    }

    /// Why the last reload of the supervised HAProxy happened.
    pub fn last_reload_reason(&self) -> Option<&ReloadReason> {
        self.last_reason.as_ref()
    }

    /// The running supervisor.
    pub fn supervisor(&self) -> Option<&Supervisor> {
        match &self.reloader {
            Reloader::Supervised { running, .. } => running.as_ref(),
            Reloader::Command { .. } => None,
        }
    }

    /// How many servers removed at run time still wait for their delete
    /// (in maintenance).
    pub async fn draining(&self) -> usize {
        self.draining.lock().await.len()
    }

    /// The files on disk, as HAProxy would load them now.
    fn read_files(&self) -> std::io::Result<Files> {
        let config = std::fs::read_to_string(&self.config)?;
        let maps = if self.haproxy_map {
            let (domain, app) = apply::map_paths(&self.config);
            Some((
                std::fs::read_to_string(domain)?,
                std::fs::read_to_string(app)?,
            ))
        } else {
            None
        };
        Ok(Files { config, maps })
    }

    /// The config file.
    pub fn config(&self) -> &std::path::Path {
        &self.config
    }

    /// Whether HAProxy runs under this process.
    pub fn supervised(&self) -> bool {
        matches!(self.reloader, Reloader::Supervised { .. })
    }

    /// The supervisor's counters, once it runs.
    pub fn supervisor_stats(&self) -> Option<Arc<SupervisorStats>> {
        match &self.reloader {
            Reloader::Supervised {
                running: Some(sup), ..
            } => Some(sup.stats()),
            _ => None,
        }
    }

    /// When HAProxy was last (re)loaded, by either reloader.
    pub fn last_reload(&self) -> Option<Instant> {
        self.last_reload
    }

    /// Whether `rendered` differs from the files on disk.
    pub fn differs(&self, rendered: &Rendered) -> bool {
        apply::differs(&self.config, rendered, self.haproxy_map)
    }

    /// Remove temp files a killed run left beside the config.
    pub fn remove_stale_temps(&self) -> usize {
        apply::remove_stale_temps(&self.config)
    }

    /// Write `rendered` if it changed, validated with `haproxy -c`. When
    /// HAProxy rejects it (and cleanup is not disabled), find the apps of
    /// `services` that break it by bisection, leave them out, and write the
    /// rest. Blocking (runs `haproxy -c`).
    pub fn write(
        &self,
        rendered: &Rendered,
        services: &[Service],
        renderer: &mut Renderer,
        settings: &RenderSettings,
    ) -> Result<Outcome, ApplyError> {
        self.sync_unloaded_change();
        if let Some(written) = self.write_runtime_change(rendered) {
            return written;
        }
        let (config, map) = (&self.config, self.haproxy_map);
        match apply::apply(config, rendered, map, &self.options) {
            Err(ApplyError::Invalid { output }) if !self.skip_cleanup => {
                tracing::warn!(%output, "haproxy -c rejected the config; looking for the apps that break it");
                let cleaned = cleanup::drop_invalid_apps(services, renderer, settings, |r| {
                    apply::check(config, r, map).map_err(|e| match e {
                        ApplyError::Invalid { output } => output,
                        other => other.to_string(),
                    })
                });
                if let Some(reason) = cleaned.global {
                    // The problem is global (HEAD, a global template, a
                    // certificate of the :443 frontend): no app is to blame.
                    return Err(ApplyError::Global { output: reason });
                }
                for d in &cleaned.dropped {
                    tracing::error!(app = %d.app_id, reason = %d.reason, "app left out: HAProxy rejects the config with it");
                }
                tracing::info!(
                    validations = cleaned.validations,
                    dropped = cleaned.dropped.len(),
                    "config cleanup done"
                );
                let apps: std::collections::HashSet<&str> =
                    services.iter().map(|s| s.app_id.as_str()).collect();
                if cleaned.dropped.len() >= apps.len() {
                    // Every app fails on its own: keep what is running
                    // rather than serve nothing.
                    return Err(ApplyError::Invalid { output });
                }
                apply::apply(config, &cleaned.rendered, map, &self.options)
            }
            other => other,
        }
    }

    /// A change the running HAProxy can take at run time (see
    /// [`load`](Self::load)) needs no full `haproxy -c`: the rest of the
    /// config is what HAProxy runs already. When the changed `server`
    /// lines provably pass ([`runtime::shape`]: shaped like running ones,
    /// names and ids unique, removed names referenced nowhere) nothing is
    /// checked; otherwise an excerpt is — the touched backends and the
    /// non-proxy sections ([`runtime::config::excerpt`]). Then the files
    /// are written without comparing them with the disk first: the new
    /// config differs from what HAProxy runs, so it must be written and
    /// loaded even if the disk already had it, and synced only once the
    /// change is loaded ([`apply::replace`]). `None`: not such a change, or
    /// the excerpt fails; the full check, with its cleanup, then decides.
    fn write_runtime_change(&self, rendered: &Rendered) -> Option<Result<Outcome, ApplyError>> {
        if self.options.skip_validation || !self.runtime_updates || self.worker_cli().is_none() {
            return None;
        }
        let running = self.running.as_ref()?;
        let maps = (rendered.domain_map.as_str(), rendered.app_map.as_str());
        if self.haproxy_map
            && running.maps.as_ref().map(|(d, a)| (d.as_str(), a.as_str())) != Some(maps)
        {
            return None;
        }
        let started = std::time::Instant::now();
        // The files are written beside their targets on a second thread
        // while the change is decided and checked (at 10,000 backends each
        // takes milliseconds); they are removed unused when it is not a
        // runtime change.
        let (decided, staged) = std::thread::scope(|s| {
            let writer = s.spawn(|| {
                let t = std::time::Instant::now();
                let staged = apply::stage_replacement(&self.config, rendered, self.haproxy_map);
                (staged, t.elapsed())
            });
            let decided = self.decide_runtime_change(&running.config, rendered);
            (decided, writer.join())
        });
        let RuntimeChange {
            plan,
            check,
            decided,
            checked,
        } = decided?;
        let (staged, staged_in) = match staged {
            Ok(staged) => staged,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let options = ApplyOptions {
            skip_validation: true,
            ..self.options.clone()
        };
        let put = std::time::Instant::now();
        let written = staged
            .and_then(|staged| apply::put_replacement(staged, &self.config, rendered, &options));
        tracing::debug!(
            decide_us = decided.as_micros() as u64,
            check_us = checked.as_micros() as u64,
            checked = check.is_some(),
            file_us = staged_in.as_micros() as u64,
            put_us = put.elapsed().as_micros() as u64,
            total_us = started.elapsed().as_micros() as u64,
            "runtime change written"
        );
        let written = written.map(|(outcome, unsynced)| {
            if outcome == Outcome::Written
                && let Ok(mut prepared) = self.prepared.lock()
            {
                *prepared = Some(Prepared {
                    plan,
                    len: rendered.config.len(),
                    config: None,
                    unsynced,
                });
            }
            outcome
        });
        Some(written)
    }

    /// The plan of a runtime change from `running` to `rendered`, and why
    /// its excerpt was checked (`None`: nothing to check), with the time
    /// the decision and the check took; `None`: not a runtime change, or
    /// the excerpt fails `haproxy -c`.
    fn decide_runtime_change(&self, running: &str, rendered: &Rendered) -> Option<RuntimeChange> {
        let started = std::time::Instant::now();
        let plan = {
            let draining = self.draining.try_lock().ok()?;
            match runtime::decide(running, &rendered.config, |b| draining.servers(b)) {
                Decision::Runtime(plan) => plan,
                _ => return None,
            }
        };
        let decided = started.elapsed();
        let checked = std::time::Instant::now();
        let check = runtime::shape::check_needed(&plan, &rendered.config);
        let counter = match check {
            Some(_) => &self.checks.excerpt,
            None => &self.checks.skipped,
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(why) = &check {
            tracing::debug!(%why, "runtime change: haproxy -c of the touched backends");
            if let Err(e) = self.check_excerpt(&rendered.config, &plan) {
                tracing::debug!(error = %e, "the runtime change fails haproxy -c; checking the whole config");
                return None;
            }
        }
        Some(RuntimeChange {
            plan,
            check,
            decided,
            checked: checked.elapsed(),
        })
    }

    /// `haproxy -c` of the excerpt of `config` that `plan` touches.
    fn check_excerpt(&self, config: &str, plan: &runtime::Plan) -> Result<(), ApplyError> {
        let backends: Vec<&str> = plan.backends.iter().map(|b| b.backend.as_str()).collect();
        let excerpt = runtime::config::excerpt(config, &backends);
        let dir = self.config.parent().filter(|d| !d.as_os_str().is_empty());
        let io = |error| ApplyError::Io {
            path: self.config.display().to_string(),
            error,
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".mlb-runtime-check.")
            .suffix(".cfg")
            .tempfile_in(dir.unwrap_or(std::path::Path::new(".")))
            .map_err(io)?;
        std::io::Write::write_all(&mut tmp, excerpt.as_bytes()).map_err(io)?;
        apply::validate(tmp.path())
    }

    /// How the runtime changes so far were checked: (`haproxy -c` of an
    /// excerpt, whatever it found; no check because it could not fail).
    pub fn runtime_checks(&self) -> (u64, u64) {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        (get(&self.checks.excerpt), get(&self.checks.skipped))
    }

    /// The config text HAProxy ran before the last runtime change, no
    /// longer needed here: a buffer the next generation can reuse.
    pub fn take_retired(&mut self) -> Option<String> {
        self.retired.take()
    }

    /// Wait for the background sync of runtime writes; then how many were
    /// synced, and how many were superseded by a newer write first.
    pub fn runtime_writes_synced(&self) -> (u64, u64) {
        self.syncer.flush();
        self.syncer.counts()
    }

    /// Hand over the config text the last [`write`](Self::write) put in
    /// place (the caller's `rendered.config`, which it no longer needs):
    /// when that was a runtime change, the [`load`](Self::load) that follows
    /// then knows what HAProxy will run without copying it. Without it the
    /// load reads the file back (the disk is the source of truth). A text
    /// of another length than the one written is ignored.
    pub fn keep_written(&self, config: String) {
        if let Ok(mut prepared) = self.prepared.lock()
            && let Some(p) = prepared.as_mut()
            && p.len == config.len()
        {
            p.config = Some(config);
        }
    }

    /// Drop the runtime change written but never loaded (HAProxy stopped
    /// in between), if any: its files are in place, and synced all the same.
    fn sync_unloaded_change(&self) {
        if let Some(stale) = self.take_prepared() {
            self.syncer.submit(stale.unsynced);
        }
    }

    /// The plan of the last runtime write, if any (taken: it serves one
    /// load).
    fn take_prepared(&self) -> Option<Prepared> {
        self.prepared.lock().ok().and_then(|mut p| p.take())
    }

    /// Load what [`write`](Self::write) did into HAProxy: the one reload
    /// decision (see the module documentation). `None`: nothing to do.
    pub async fn load(&mut self, outcome: &Outcome) -> Result<Option<Loaded>, ControlError> {
        let changed = *outcome == Outcome::Written;
        match &self.reloader {
            Reloader::Command { admin_socket: None } if changed => self.run_command(),
            Reloader::Supervised { running: None, .. } => self.start().await,
            _ if changed => self.update().await,
            _ => Ok(None),
        }
    }

    /// A changed config for the running HAProxy (supervised, or reloaded by
    /// the command with an admin socket): through the runtime API when only
    /// servers changed, else (or when that fails) a reload.
    async fn update(&mut self) -> Result<Option<Loaded>, ControlError> {
        if let Some(prepared) = self.take_prepared() {
            let config = match prepared.config {
                Some(config) => Some(config),
                None => std::fs::read_to_string(&self.config).ok(),
            };
            // The maps are those HAProxy runs (a runtime write needs them
            // unchanged).
            let (old_config, maps) = match self.running.take() {
                Some(old) => (Some(old.config), old.maps),
                None => (None, None),
            };
            self.retired = old_config;
            let files = config.map(|config| Files { config, maps });
            let loaded = self.apply_plan(prepared.plan, files).await;
            self.syncer.submit(prepared.unsynced);
            return loaded;
        }
        let files = self.read_files().ok();
        let decision = match (&self.running, &files) {
            _ if !self.runtime_updates => Decision::Reload(ReloadReason::RuntimeOff),
            (Some(old), Some(new)) if old.maps != new.maps => Decision::Reload(ReloadReason::Maps),
            (Some(old), Some(new)) => {
                let draining = self.draining.lock().await;
                runtime::decide(&old.config, &new.config, |b| draining.servers(b))
            }
            _ => Decision::Reload(ReloadReason::Unknown),
        };
        let plan = match decision {
            Decision::Unchanged => {
                self.running = files;
                return Ok(None);
            }
            Decision::Reload(reason) => return self.reload_for(reason, files).await,
            Decision::Runtime(plan) => plan,
        };
        self.apply_plan(plan, files).await
    }

    /// Apply `plan` through the runtime API; HAProxy then runs `files`. A
    /// failure reloads (the files on disk are right).
    async fn apply_plan(
        &mut self,
        plan: runtime::Plan,
        files: Option<Files>,
    ) -> Result<Option<Loaded>, ControlError> {
        let Some(cli) = self.worker_cli() else {
            return self.reload_for(ReloadReason::Unknown, files).await;
        };
        let result = {
            let mut draining = self.draining.lock().await;
            runtime::apply::apply(&cli, &plan, &mut draining).await
        };
        match result {
            Ok(applied) => {
                tracing::debug!(
                    commands = applied.commands,
                    round_trips = applied.round_trips,
                    took_us = applied.took.as_micros() as u64,
                    "runtime update applied"
                );
                self.running = files;
                self.start_sweeper(cli);
                Ok(Some(Loaded::Runtime(applied)))
            }
            Err(e) => {
                tracing::warn!(error = %e, "runtime update failed; reloading (the config on disk is right)");
                let detail = e.to_string();
                let loaded = self
                    .reload_for(ReloadReason::RuntimeFailed { detail }, files)
                    .await?;
                runtime::apply::after_reload(&cli, &plan).await;
                Ok(loaded)
            }
        }
    }

    /// The CLI of the HAProxy serving traffic, when the runtime path can
    /// reach it.
    fn worker_cli(&self) -> Option<WorkerCli> {
        match &self.reloader {
            Reloader::Supervised {
                cfg,
                running: Some(_),
            } => Some(WorkerCli::master(cfg.master_socket())),
            Reloader::Command {
                admin_socket: Some(socket),
            } => Some(WorkerCli::admin(socket.clone())),
            _ => None,
        }
    }

    /// Delete drained servers in the background (one task at a time).
    fn start_sweeper(&mut self, cli: WorkerCli) {
        if self.sweeper.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let draining = self.draining.clone();
        self.sweeper = Some(tokio::spawn(runtime::apply::sweep(cli, draining)));
    }

    /// Reload for `reason`; on success HAProxy runs `files` and no server
    /// drains any more (the new worker loaded the file).
    async fn reload_for(
        &mut self,
        reason: ReloadReason,
        files: Option<Files>,
    ) -> Result<Option<Loaded>, ControlError> {
        tracing::trace!(%reason, reason_label = reason.label(), "reloading HAProxy");
        self.last_reason = Some(reason);
        self.running = None;
        let loaded = self.reload().await?;
        self.running = files;
        self.draining.lock().await.clear();
        Ok(loaded)
    }

    /// SIGUSR1: validate the file on disk (unless validation is skipped),
    /// then load it whether or not it changed.
    pub async fn revalidate(&mut self) -> Result<Option<Loaded>, ControlError> {
        if !self.options.skip_validation {
            apply::validate(&self.config)?;
        }
        match &self.reloader {
            Reloader::Command { admin_socket: None } => self.run_command(),
            Reloader::Supervised { running: None, .. } => self.start().await,
            _ => {
                let files = self.read_files().ok();
                self.reload_for(ReloadReason::Requested, files).await
            }
        }
    }

    fn run_command(&mut self) -> Result<Option<Loaded>, ControlError> {
        let options = &self.options;
        let ran = tokio::task::block_in_place(|| apply::reload(options))?;
        if !ran {
            return Ok(None);
        }
        self.last_reload = Some(Instant::now());
        Ok(Some(Loaded::CommandRan))
    }

    async fn start(&mut self) -> Result<Option<Loaded>, ControlError> {
        self.sync_unloaded_change();
        let files = self.read_files().ok();
        let Reloader::Supervised { cfg, running } = &mut self.reloader else {
            return Ok(None);
        };
        if !self.config.exists() {
            // Nothing written yet (e.g. --dry, or every reconcile failed).
            return Ok(None);
        }
        self.last_reload = Some(Instant::now());
        // Cold start: a server state saved by an earlier run would be
        // replayed over this config (forced maintenance, weights, even
        // ports of servers of the same name), so start from none.
        if let Err(error) =
            crate::state::write_atomic(&cfg.state_file, crate::state::EMPTY_SERVER_STATE.as_bytes())
        {
            tracing::warn!(file = %cfg.state_file.display(), %error, "stale server state not cleared");
        }
        let sup = Supervisor::start(cfg.clone())
            .await
            .map_err(ControlError::Start)?;
        *running = Some(sup);
        self.running = files;
        self.last_reason = None;
        Ok(Some(Loaded::Started))
    }

    async fn reload(&mut self) -> Result<Option<Loaded>, ControlError> {
        let sup = match &self.reloader {
            Reloader::Supervised {
                running: Some(sup), ..
            } => sup,
            Reloader::Supervised { running: None, .. } => return Ok(None),
            Reloader::Command { .. } => return self.run_command(),
        };
        self.last_reload = Some(Instant::now());
        let report = sup.reload().await.map_err(ControlError::Reload)?;
        Ok(Some(Loaded::Reloaded(report.duration)))
    }

    /// What a failed reconcile left in place, for its log line.
    pub fn after_failure(&self, error_after_write: bool) -> &'static str {
        match &self.reloader {
            Reloader::Supervised { running, .. }
                if running.as_ref().is_none_or(|s| s.master_pid().is_none()) =>
            {
                "HAProxy is not running"
            }
            _ if error_after_write => {
                "the new config is written but HAProxy may not have loaded it"
            }
            Reloader::Supervised { .. } => "HAProxy keeps serving the running config",
            Reloader::Command { .. } => "the config on disk is unchanged",
        }
    }

    /// Stop the supervised HAProxy (nothing to do for a command reloader).
    pub async fn stop(self) -> Option<StopOutcome> {
        if let Some(task) = &self.sweeper {
            task.abort();
        }
        match self.reloader {
            Reloader::Supervised {
                running: Some(sup), ..
            } => Some(sup.stop().await),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(dir: &std::path::Path, command: &str) -> HaproxyControl {
        let options = ApplyOptions {
            skip_validation: true,
            command: Some(command.into()),
            archive_versions: 0,
            max_reload_retries: 0,
            reload_interval: Duration::from_millis(10),
        };
        HaproxyControl::new(dir.join("haproxy.cfg"), false, options, true, None).unwrap()
    }

    fn rendered(config: &str) -> Rendered {
        Rendered {
            config: config.into(),
            ..Rendered::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_command_runs_only_after_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("reloaded");
        let mut ctl = control(dir.path(), &format!("touch {}", marker.display()));
        let mut renderer = Renderer::new(mlb_core::Templates::defaults());
        let settings = RenderSettings::default();
        let first = ctl
            .write(&rendered("a\n"), &[], &mut renderer, &settings)
            .unwrap();
        assert_eq!(first, Outcome::Written);
        assert_eq!(ctl.load(&first).await.unwrap(), Some(Loaded::CommandRan));
        assert!(marker.exists());
        assert!(ctl.last_reload().is_some());
        std::fs::remove_file(&marker).unwrap();
        let again = ctl
            .write(&rendered("a\n"), &[], &mut renderer, &settings)
            .unwrap();
        assert_eq!(again, Outcome::Unchanged);
        assert_eq!(ctl.load(&again).await.unwrap(), None);
        assert!(!marker.exists(), "no reload without a change");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_failing_command_is_an_error_after_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctl = control(dir.path(), "false");
        let e = ctl.load(&Outcome::Written).await.unwrap_err();
        assert_eq!(e.kind(), "command");
        assert!(e.after_write());
        assert_eq!(
            ctl.after_failure(e.after_write()),
            "the new config is written but HAProxy may not have loaded it"
        );
        assert_eq!(ctl.last_reload(), None);
    }
}
