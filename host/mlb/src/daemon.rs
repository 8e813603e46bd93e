//! The long-running controller (`--sse` or `--poll-interval`): triggers →
//! coalesce → reconcile, until SIGTERM/SIGINT.
//!
//! Triggers come from the event stream (through `forward_stream`, which
//! also records the stream's metrics), signals and the resync timer, over
//! one channel. [`coalesce::next_batch`] turns them into one reconcile at a
//! time, never more often than `--min-reload-interval` after the last
//! reload; [`Reconciler::reconcile`] does the work and returns a
//! [`ReconcileReport`], which is recorded ([`Metrics::record`]) and logged
//! here. A failed reconcile is retried after 1 s, doubling up to 30 s.
//! SIGTERM/SIGINT end the loop at once, abandoning an in-flight Marathon
//! request (a hung Marathon must not delay shutdown).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mlb_marathon::backoff::{Backoff, Jitter};
use mlb_marathon::sse::{self, SseConfig, StreamEvent};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{Instrument, info_span};

use crate::coalesce;
use crate::metrics::Metrics;
use crate::reconcile::{ReconcileReport, Reconciler, StartError, Work};
use crate::report;
use crate::settings::Settings;
use crate::trigger::{Cause, Event, Trigger};

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
    /// Where to serve the controller's metrics.
    pub metrics_address: Option<std::net::SocketAddr>,
    /// Where to write our PID.
    pub pid_file: Option<PathBuf>,
}

/// Log the line of a successful reconcile.
fn log_done(cause: Cause, report: &ReconcileReport) {
    let summary = report::summary(&report.changes);
    if report.generated {
        let us = |d: Duration| d.as_micros() as u64;
        tracing::debug!(
            parse_us = report.timings.parse_us as u64,
            interpret_us = report.timings.interpret_us as u64,
            render_us = report.timings.render_us as u64,
            changed_only = report.timings.changed_only,
            write_us = us(report.write),
            load_us = us(report.load),
            compare_us = us(report.compare),
            host_us = us(report.host_check),
            "reconcile stages"
        );
    }
    // The line, at INFO when something changed (services, the files,
    // HAProxy), else at DEBUG: events that change nothing are common.
    macro_rules! line {
        ($level:expr) => {
            tracing::event!(
                $level,
                trigger = cause.as_str(),
                apps = report.apps,
                services = report.services,
                servers = report.servers,
                rejected = report.rejected,
                config = report.config.map_or("-", |c| c.as_str()),
                haproxy = report.haproxy.map_or("-", |h| h.as_str()),
                reason = report.reload_reason,
                fetch = report.fetched.map(|f| f.as_str()),
                reload_ms = report.haproxy.and_then(|h| match h {
                    mlb_haproxy::Loaded::Reloaded(d) => Some(d.as_millis() as u64),
                    _ => None,
                }),
                elapsed_ms = report.elapsed.as_millis() as u64,
                "reconcile: {summary}"
            )
        };
    }
    let nothing_changed = report.changes.is_empty()
        && report.haproxy.is_none()
        && !matches!(
            report.config,
            Some(crate::reconcile::ConfigOutcome::Written)
        );
    if nothing_changed {
        line!(tracing::Level::DEBUG);
    } else {
        line!(tracing::Level::INFO);
    }
}

/// Run until SIGTERM/SIGINT.
pub async fn run(settings: Settings, daemon: DaemonSettings) -> Result<(), StartError> {
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
    let mut reconciler = Reconciler::new(&settings, false, Some(stop_rx.clone()))?;

    let (tx, mut rx) = mpsc::channel::<Trigger>(256);
    let _ = tx.try_send(Trigger::Reset(Cause::Start));
    if daemon.follow_events {
        let sse_config =
            SseConfig::from_client(&settings.client, daemon.watchdog, daemon.max_backoff);
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

    let mut pacing = coalesce::Pacing {
        min_interval: daemon.min_reload_interval,
        ..coalesce::Pacing::default()
    };
    loop {
        pacing.last_reload = reconciler.haproxy().last_reload();
        let batch = tokio::select! {
            b = coalesce::next_batch(&mut rx, &mut pacing) => match b {
                Some(b) => b,
                None => break,
            },
            _ = &mut shutdown => break,
        };
        let span = info_span!("reconcile", trigger = batch.cause.as_str());
        let refetched = batch.work != Work::Revalidate;
        let report = reconciler
            .reconcile(batch.work)
            .instrument(span.clone())
            .await;
        if let Some(stats) = reconciler.haproxy().supervisor_stats() {
            let _ = metrics.supervisor.set(stats);
        }
        if batch.refetch_after {
            // Events came with the revalidation: a full fetch covers them.
            let _ = tx.try_send(Trigger::Reset(Cause::Event));
        }
        // Only a refetch (or events applied) settles a pending retry: a
        // SIGUSR1 revalidation in between leaves it to fire.
        if refetched && let Some(task) = retry.take() {
            task.abort();
        }
        match &report.result {
            Ok(()) => {
                metrics.record(batch.cause.as_str(), &report);
                for at in &batch.events_received {
                    metrics.event_to_applied.observe(at.elapsed());
                }
                if refetched {
                    retry_backoff.reset();
                }
                span.in_scope(|| log_done(batch.cause, &report));
            }
            Err(e) if *stop_rx.borrow() => {
                tracing::info!(parent: &span, error = %e, "reconcile abandoned: shutting down");
                break;
            }
            Err(e) => {
                metrics.record(batch.cause.as_str(), &report);
                let delay = retry_backoff.next_delay();
                tracing::error!(
                    parent: &span,
                    trigger = batch.cause.as_str(),
                    error_kind = e.kind(),
                    elapsed_ms = report.elapsed.as_millis() as u64,
                    retry_in_s = delay.as_secs(),
                    "reconcile failed: {e}; {}",
                    reconciler.after_failure(e)
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
    reconciler.shutdown().await;
    Ok(())
}

/// The event stream's events → metrics; a reset for every (re)connect, and
/// every relevant event for the state kept from events.
async fn forward_stream(
    mut events: mpsc::Receiver<StreamEvent>,
    tx: mpsc::Sender<Trigger>,
    metrics: Arc<Metrics>,
) {
    while let Some(event) = events.recv().await {
        metrics.stream(&event);
        match event {
            // Events may have been missed: refetch everything. Sent without
            // waiting: when the channel is full a reset is already pending.
            StreamEvent::Connected { .. } => {
                let reset = Trigger::Reset(Cause::StreamConnected);
                if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(reset) {
                    return;
                }
            }
            // Every relevant event counts, in order: waited for (the
            // stream waits meanwhile).
            StreamEvent::Event {
                relevant: true,
                event_type,
                payload,
            } => {
                let apply = Trigger::Apply(Event {
                    event_type,
                    payload,
                    received: Instant::now(),
                });
                if tx.send(apply).await.is_err() {
                    return;
                }
            }
            _ => {}
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
            metrics_address: args.metrics_address,
            pid_file: args.pid_file.clone(),
        }
    }
}
