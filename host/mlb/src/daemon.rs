//! SSE mode: the long-running controller.
//!
//! One reconcile loop owns all state (plugin, renderer, resolver, Marathon
//! client, HAProxy supervisor) and consumes [`Trigger`]s from the event
//! stream, signals and the resync timer. Triggers are coalesced: after the
//! first one the loop waits a short debounce, then takes everything pending
//! (a `Reset` beats a `Reload`), and never reloads more often than
//! `--min-reload-interval` — a burst of a thousand events during a deployment
//! becomes a handful of reconciles, not a thousand. The interval counts from
//! the last reload, by the supervisor (`--supervise-haproxy`) or by the
//! `--command` of an apply. SIGTERM/SIGINT end the loop at once, abandoning
//! an in-flight Marathon request (a hung Marathon must not delay shutdown).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mlb_core::Templates;
use mlb_core::render::Renderer;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{Instrument, info_span};

use mlb_haproxy::apply::{self, ApplyError, Outcome};
use mlb_marathon::backoff::{Backoff, Jitter};
use mlb_haproxy::{Supervisor, SupervisorConfig, preflight};
use crate::health_cache::HealthCache;
use mlb_marathon::sse::{self, SseConfig, StreamEvent};
use mlb_marathon::{MarathonClient, MarathonError};
use crate::metrics::Metrics;
use crate::oneshot::{RunError, apply_with_cleanup, log_diagnostics};
use crate::pipeline;
use mlb_plugin_host::PluginSet;
use crate::report::{self, Changes};
use crate::resolve::Resolver;
use crate::settings::Settings;
use crate::trigger::{Cause, Trigger};

/// How long the loop waits after a trigger for more to arrive.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// After a failed reconcile the loop tries again after 1 s, doubling up to
/// 30 s, until one succeeds (a certificate that appears, a Marathon that
/// comes back, a port that frees up).
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between two retries.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Settings of the long-running mode.
#[derive(Debug, Clone)]
pub struct DaemonSettings {
    /// Reopen a silent event stream after this long.
    pub watchdog: Duration,
    /// Minimum time between two reloads.
    pub min_reload_interval: Duration,
    /// Full resync period.
    pub resync_interval: Duration,
    /// Follow the event stream (`--sse`); without it, only the resync
    /// (`--poll-interval`) and signals trigger a refetch.
    pub follow_events: bool,
    /// Reconnect backoff cap.
    pub max_backoff: Duration,
    /// Run HAProxy as a child.
    pub supervise: Option<SupervisorConfig>,
    /// Where to serve the controller's metrics.
    pub metrics_address: Option<std::net::SocketAddr>,
    /// Where to write our PID.
    pub pid_file: Option<PathBuf>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Everything the reconcile loop owns.
struct Controller {
    settings: Settings,
    client: MarathonClient,
    plugin: PluginSet,
    renderer: Renderer,
    resolver: Resolver,
    health: HealthCache,
    supervisor: Option<Supervisor>,
    supervise: Option<SupervisorConfig>,
    metrics: Arc<Metrics>,
    /// When HAProxy was last (re)loaded — by the supervisor or by the
    /// `--command` of an apply — for `--min-reload-interval`.
    last_reload: Option<Instant>,
    /// Turns `true` on SIGTERM/SIGINT: an in-flight Marathon request is
    /// abandoned then.
    stop: watch::Receiver<bool>,
    /// What the last reconciles served and reported.
    changes: Changes,
    /// The host warnings logged last (logged again only when they change).
    host_warnings: Vec<String>,
}

/// What one successful reconcile did (its log line).
#[derive(Default)]
struct Done {
    apps: usize,
    services: usize,
    servers: usize,
    rejected: usize,
    changes: Vec<String>,
    config: &'static str,
    haproxy: Option<&'static str>,
    reload_ms: Option<u64>,
}

impl Controller {
    /// Refetch, regenerate, apply, reload.
    async fn reset(&mut self) -> Result<Done, RunError> {
        let mut stop = self.stop.clone();
        let body = tokio::select! {
            body = self.client.fetch_apps() => body?,
            _ = stop.wait_for(|stopping| *stopping) => {
                return Err(MarathonError::Cancelled.into());
            }
        };
        let generated = tokio::task::block_in_place(|| {
            pipeline::generate_with(
                &body,
                &mut self.resolver,
                &mut self.health,
                &mut self.plugin,
                &mut self.renderer,
                &self.settings.interpret,
                &self.settings.render,
            )
        })?;
        if self.settings.dry {
            // As marathon-lb: --dry prints the config instead of applying it.
            println!("{}", generated.rendered.config);
            return Ok(Done {
                apps: generated.apps,
                services: generated.services,
                config: "printed (--dry: not written, not validated)",
                ..Done::default()
            });
        }
        self.check_host()?;
        let (fresh, mut changes) = self.changes.diagnostics(&generated.diagnostics);
        log_diagnostics(fresh);
        let m = &self.metrics;
        m.plugin_outcomes(&generated.denied, &generated.plugin_failures);
        m.plugin_outcomes(&[], &self.plugin.take_filter_failures());
        let servers: usize = generated.interpreted.iter().map(|s| s.servers.len()).sum();
        let rejected = generated
            .diagnostics
            .iter()
            .filter(|d| d.severity == mlb_model::Severity::Error)
            .count();
        m.apps.store(generated.apps as u64, Ordering::Relaxed);
        m.services
            .store(generated.services as u64, Ordering::Relaxed);
        m.servers.store(servers as u64, Ordering::Relaxed);
        m.rejected.store(rejected as u64, Ordering::Relaxed);
        let outcome = tokio::task::block_in_place(|| {
            apply_with_cleanup(&self.settings, &generated, &mut self.renderer)
        })?;
        m.last_apply.store(unix_now(), Ordering::Relaxed);
        if outcome == (Outcome::Applied { reloaded: true }) {
            // The `--command` reloaded HAProxy.
            self.last_reload = Some(Instant::now());
        }
        let mut done = Done {
            apps: generated.apps,
            services: generated.services,
            servers,
            rejected,
            config: if outcome == Outcome::Unchanged {
                "unchanged"
            } else {
                "written"
            },
            // Without the supervisor: whether `--command` ran.
            haproxy: (outcome == Outcome::Applied { reloaded: true }).then_some("reloaded"),
            ..Done::default()
        };
        if outcome != Outcome::Unchanged || self.supervisor.is_none() {
            self.reload_haproxy(&mut done).await?;
        }
        let (mut served, snapshot) = self.changes.services(&generated.interpreted);
        self.changes.commit(snapshot);
        served.append(&mut changes);
        done.changes = served;
        Ok(done)
    }

    /// Supervised: what the config needs from the host, checked on its
    /// global part (rendered without any app) before anything is written,
    /// so a missing certificate or a too-low open-files limit is reported
    /// once as what it is rather than as every app failing validation.
    fn check_host(&mut self) -> Result<(), RunError> {
        if self.supervise.is_none() {
            return Ok(());
        }
        let global = self.renderer.render(&[], &self.settings.render);
        let warnings = preflight::check(&global.config, &preflight::Host::current())?;
        if warnings != self.host_warnings {
            for w in &warnings {
                tracing::warn!("{w}");
            }
            self.host_warnings = warnings;
        }
        Ok(())
    }

    /// SIGUSR1: validate the file on disk, then reload.
    async fn revalidate(&mut self) -> Result<Done, RunError> {
        if self.settings.dry {
            return Ok(Done {
                config: "not reloaded (--dry)",
                ..Done::default()
            });
        }
        if !self.settings.apply.skip_validation {
            apply::validate(&self.settings.haproxy_config)?;
        }
        let mut done = Done {
            config: "revalidated",
            ..Done::default()
        };
        if self.supervise.is_none() {
            let opts = self.settings.apply.clone();
            if tokio::task::block_in_place(|| apply::reload(&opts))? {
                self.last_reload = Some(Instant::now());
                done.haproxy = Some("reloaded");
            }
            return Ok(done);
        }
        self.reload_haproxy(&mut done).await?;
        Ok(done)
    }

    /// Reload (or first start) the supervised HAProxy.
    async fn reload_haproxy(&mut self, done: &mut Done) -> Result<(), RunError> {
        let Some(cfg) = &self.supervise else {
            return Ok(());
        };
        self.last_reload = Some(Instant::now());
        match &self.supervisor {
            None => {
                if !self.settings.haproxy_config.exists() {
                    return Ok(());
                }
                let sup = Supervisor::start(cfg.clone())
                    .await
                    .map_err(|e| {
                        RunError::Apply(ApplyError::Reload {
                            command: "haproxy (supervised start)".into(),
                            message: e.to_string(),
                        })
                    })?;
                let _ = self.metrics.supervisor.set(sup.stats());
                self.supervisor = Some(sup);
                done.haproxy = Some("started");
            }
            Some(sup) => {
                let report = sup.reload().await.map_err(|e| {
                    RunError::Apply(ApplyError::Reload {
                        command: "haproxy reload (master socket)".into(),
                        message: e.to_string(),
                    })
                })?;
                done.haproxy = Some("reloaded");
                done.reload_ms = Some(report.duration.as_millis() as u64);
            }
        }
        Ok(())
    }

    /// What a failure left in place, for its log line.
    fn after_failure(&self, error: &RunError) -> &'static str {
        let serving = self
            .supervisor
            .as_ref()
            .is_some_and(|s| s.master_pid().is_some());
        match (&self.supervise, error) {
            (Some(_), _) if !serving => "HAProxy is not running",
            (_, RunError::Apply(ApplyError::Reload { .. })) => {
                "the new config is written but HAProxy may not have loaded it"
            }
            (Some(_), _) => "HAProxy keeps serving the running config",
            (None, _) => "the config on disk is unchanged",
        }
    }
}

/// Log the line of a successful reconcile.
fn log_done(cause: Cause, done: &Done, elapsed_ms: u64) {
    let summary = report::summary(&done.changes);
    tracing::info!(
        trigger = cause.as_str(),
        apps = done.apps,
        services = done.services,
        servers = done.servers,
        rejected = done.rejected,
        config = done.config,
        haproxy = done.haproxy.unwrap_or("-"),
        reload_ms = done.reload_ms,
        elapsed_ms,
        "reconcile: {summary}"
    );
}

/// Collect every trigger already queued; returns (reset, reload, cause).
fn drain(
    rx: &mut mpsc::Receiver<Trigger>,
    mut reset: Option<Cause>,
    mut reload: Option<Cause>,
) -> (Option<Cause>, Option<Cause>) {
    while let Ok(t) = rx.try_recv() {
        match t {
            Trigger::Reset(c) => reset = reset.or(Some(c)),
            Trigger::Reload(c) => reload = reload.or(Some(c)),
        }
    }
    (reset, reload)
}

/// Run until SIGTERM/SIGINT.
pub async fn run(settings: Settings, daemon: DaemonSettings) -> Result<(), RunError> {
    let metrics = Arc::new(Metrics::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    if let Some(path) = &daemon.pid_file
        && let Err(e) = std::fs::write(path, format!("{}\n", std::process::id()))
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the pid file");
    }
    apply::remove_stale_temps(&settings.haproxy_config);
    let templates = Templates::resolve(&settings.templates)?;
    let (plugin, _) = settings.load_plugins(false)?;
    let mut renderer = Renderer::new(templates);
    plugin.register_filters(&mut renderer);
    let mut ctl = Controller {
        client: MarathonClient::new(settings.client.clone())?,
        plugin,
        renderer,
        resolver: Resolver::new(settings.cache_capacity),
        health: HealthCache::new(settings.cache_capacity),
        supervisor: None,
        supervise: daemon.supervise.clone(),
        metrics: metrics.clone(),
        last_reload: None,
        stop: stop_rx.clone(),
        changes: Changes::default(),
        host_warnings: Vec::new(),
        settings,
    };
    if let Some(cfg) = &ctl.supervise {
        ctl.settings.apply.run_reload = false;
        // The HEAD lua-loads these; they must exist before the first `haproxy -c`.
        if let Some(dir) = &cfg.lua_dir {
            mlb_haproxy::install_lua(dir).map_err(|e| {
                RunError::Apply(ApplyError::Io {
                    path: dir.display().to_string(),
                    error: e,
                })
            })?;
        }
    }

    let (tx, mut rx) = mpsc::channel::<Trigger>(256);
    let _ = tx.try_send(Trigger::Reset(Cause::Start));

    let sse_config =
        SseConfig::from_client(&ctl.settings.client, daemon.watchdog, daemon.max_backoff);
    if daemon.follow_events {
        let (events_tx, events_rx) = mpsc::channel(256);
        tokio::spawn(sse::follow(sse_config, events_tx));
        tokio::spawn(forward_stream(events_rx, tx.clone(), metrics.clone()));
    }
    tokio::spawn(resync(tx.clone(), daemon.resync_interval));
    tokio::spawn(signals(tx.clone()));
    if let Some(addr) = daemon.metrics_address {
        tokio::spawn(crate::metrics_server::serve_on(
            addr,
            metrics.clone(),
            crate::metrics_server::Limits::default(),
        ));
    }
    let mut stopping = stop_rx.clone();
    let mut shutdown = std::pin::pin!(async move {
        let _ = stopping.wait_for(|s| *s).await;
    });
    let mut retry: Option<tokio::task::JoinHandle<()>> = None;
    let mut retry_backoff = Backoff::new(FIRST_RETRY, 2.0, MAX_RETRY, Jitter::None, MAX_RETRY);

    loop {
        let first = tokio::select! {
            t = rx.recv() => match t { Some(t) => t, None => break },
            _ = &mut shutdown => break,
        };
        let (mut reset, mut reload) = match first {
            Trigger::Reset(c) => (Some(c), None),
            Trigger::Reload(c) => (None, Some(c)),
        };
        // Wait the debounce, and at least until --min-reload-interval has
        // passed since the last reload; everything that arrives meanwhile
        // is coalesced into this one reconcile.
        let mut ready = Instant::now() + DEBOUNCE;
        if let Some(last) = ctl.last_reload {
            ready = ready.max(last + daemon.min_reload_interval);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(ready) => {}
            _ = &mut shutdown => break,
        }
        (reset, reload) = drain(&mut rx, reset, reload);
        let cause = reset.or(reload).unwrap_or(Cause::Start);
        let span = info_span!("reconcile", trigger = cause.as_str());
        let started = Instant::now();
        let result = async {
            if reset.is_some() {
                ctl.reset().await
            } else {
                ctl.revalidate().await
            }
        }
        .instrument(span.clone())
        .await;
        let elapsed = started.elapsed().as_millis() as u64;
        metrics.reconcile(cause.as_str(), elapsed);
        // Only a reset (a refetch) settles a pending retry: a SIGUSR1
        // revalidation in between leaves it to fire.
        let refetched = reset.is_some();
        if refetched && let Some(task) = retry.take() {
            task.abort();
        }
        match result {
            Ok(done) => {
                if refetched {
                    retry_backoff.reset();
                }
                span.in_scope(|| log_done(cause, &done, elapsed));
            }
            Err(e) if *stop_rx.borrow() => {
                tracing::info!(parent: &span, error = %e, "reconcile abandoned: shutting down");
                break;
            }
            Err(e) => {
                metrics.reconcile_errors.fetch_add(1, Ordering::Relaxed);
                let delay = retry_backoff.next_delay();
                tracing::error!(
                    parent: &span,
                    trigger = cause.as_str(),
                    elapsed_ms = elapsed,
                    retry_in_s = delay.as_secs(),
                    "reconcile failed: {e}; {}",
                    ctl.after_failure(&e)
                );
                if let Some(pending) = retry.take() {
                    pending.abort();
                }
                let tx = tx.clone();
                retry = Some(tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(Trigger::Reset(Cause::Retry)).await;
                }));
            }
        }
    }
    tracing::info!("shutting down");
    if let Some(sup) = ctl.supervisor.take() {
        sup.stop().await;
    }
    Ok(())
}

/// The event stream's events → metrics, and a reset for every (re)connect
/// and relevant event. Triggers are sent without waiting: when the channel
/// is full a reset is already pending and the loop coalesces them.
async fn forward_stream(
    mut events: mpsc::Receiver<StreamEvent>,
    tx: mpsc::Sender<Trigger>,
    metrics: Arc<Metrics>,
) {
    while let Some(event) = events.recv().await {
        metrics.stream(&event);
        let cause = match event {
            StreamEvent::Connected { .. } => Cause::StreamConnected,
            StreamEvent::Event { relevant: true, .. } => Cause::Event,
            _ => continue,
        };
        if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Trigger::Reset(cause)) {
            return;
        }
    }
}

async fn resync(tx: mpsc::Sender<Trigger>, every: Duration) {
    let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
    loop {
        ticker.tick().await;
        if tx.send(Trigger::Reset(Cause::Resync)).await.is_err() {
            return;
        }
    }
}

/// SIGHUP → reset, SIGUSR1 → reload.
async fn signals(tx: mpsc::Sender<Trigger>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut hup), Ok(mut usr1)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined1()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        let trigger = tokio::select! {
            _ = hup.recv() => Trigger::Reset(Cause::Hup),
            _ = usr1.recv() => Trigger::Reload(Cause::Usr1),
        };
        tracing::info!(trigger = ?trigger, "signal received");
        if tx.send(trigger).await.is_err() {
            return;
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        }
        _ => std::future::pending().await,
    }
}

impl DaemonSettings {
    /// The long-running settings of `args`.
    pub fn from_args(args: &crate::cli::Args) -> Self {
        // Flag values in seconds; NaN, negative and absurd values (`inf`)
        // are clamped instead of panicking.
        let secs = |s: f64| {
            let s = if s.is_nan() { 0.0 } else { s.clamp(0.0, 1.0e9) };
            Duration::from_secs_f64(s)
        };
        Self {
            watchdog: secs(args.sse_watchdog),
            min_reload_interval: secs(args.min_reload_interval),
            resync_interval: secs(args.poll_interval.unwrap_or(args.resync_interval).max(1.0)),
            follow_events: args.sse,
            max_backoff: Duration::from_secs(args.max_backoff.max(1)),
            supervise: args.supervise_haproxy.then(|| SupervisorConfig {
                haproxy: PathBuf::from("haproxy"),
                config: args.haproxy_config.clone(),
                run_dir: args.haproxy_run_dir.clone(),
                state_file: args.server_state_file.clone(),
                lua_dir: Some(args.lua_dir.clone()),
            }),
            metrics_address: args.metrics_address,
            pid_file: args.pid_file.clone(),
        }
    }
}
