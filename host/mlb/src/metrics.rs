//! The controller's own metrics, rendered in the Prometheus text format.
//!
//! Plain atomics and small maps: updated from the reconcile loop (and the
//! event-stream adapter), read by the metrics endpoint; the HAProxy
//! supervisor's counters are its own ([`SupervisorStats`]), read at scrape.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, OnceLock};

use std::time::{SystemTime, UNIX_EPOCH};

use mlb_haproxy::SupervisorStats;
use mlb_marathon::sse::StreamEvent;

use crate::histogram::LatencyHistogram;
use crate::reconcile::ReconcileReport;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Every metric of the controller.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Reconciles by trigger cause.
    pub reconciles: Mutex<BTreeMap<&'static str, u64>>,
    /// Sum of reconcile durations, milliseconds.
    pub reconcile_ms_sum: AtomicU64,
    /// Duration of the last reconcile, milliseconds.
    pub reconcile_ms_last: AtomicU64,
    /// Failed reconciles (Marathon, plugin or apply errors).
    pub reconcile_errors: AtomicU64,
    /// Failed reconciles by what failed ([`ReconcileError::kind`](crate::reconcile::ReconcileError::kind):
    /// `marathon`, `generate`, `host`, `io`, `validation`, `command`, `start`,
    /// `reload_rejected`, `reload_timeout`, ...).
    pub reconcile_failures: Mutex<BTreeMap<String, u64>>,
    /// Marathon events received, by type.
    pub events: Mutex<BTreeMap<String, u64>>,
    /// Event-stream (re)connections.
    pub stream_connects: AtomicU64,
    /// Event-stream reconnects forced by the watchdog (silence).
    pub stream_watchdog_reconnects: AtomicU64,
    /// Unix time (seconds) of the last byte received on the event stream.
    pub stream_last_activity: AtomicI64,
    /// Supervised reloads by why the change could not be applied at run
    /// time (`structure`, `backend`, `balance`, `cookie`, `server_id`,
    /// `maps`, `requested`, `runtime_failed`, ...).
    pub reloads_by_reason: Mutex<BTreeMap<String, u64>>,
    /// Marathon fetches by kind: `full` (`/v2/apps`), `apps` (single apps),
    /// `none` (the events proved the change).
    pub fetches: Mutex<BTreeMap<String, u64>>,
    /// Marathon events applied to the state kept from events.
    pub events_applied: AtomicU64,
    /// Differences the periodic resync found between the state kept from
    /// events and Marathon's (each is a bug; they are logged).
    pub resync_drift: AtomicU64,
    /// Membership changes applied through HAProxy's runtime API (no reload).
    pub runtime_updates: AtomicU64,
    /// Servers added / put in drain through the runtime API.
    pub runtime_servers_added: AtomicU64,
    /// Servers put in maintenance (drained, deleted later) at run time.
    pub runtime_servers_removed: AtomicU64,
    /// The supervisor's own counters (reloads, starts, old workers, up),
    /// once it runs; read at scrape time. All 0 without a supervisor.
    pub supervisor: OnceLock<Arc<SupervisorStats>>,
    /// Services rejected (diagnostics of severity error) in the last reconcile.
    pub rejected: AtomicU64,
    /// Services denied by policy plugins, by policy.
    pub policy_denials: Mutex<BTreeMap<String, u64>>,
    /// Failed plugin calls (trap, timeout, error), by plugin.
    pub plugin_failures: Mutex<BTreeMap<String, u64>>,
    /// Apps in the last reconcile.
    pub apps: AtomicU64,
    /// Services rendered in the last reconcile.
    pub services: AtomicU64,
    /// Servers rendered in the last reconcile.
    pub servers: AtomicU64,
    /// Unix time (seconds) of the last successful apply.
    pub last_apply: AtomicI64,
    /// From a Marathon event's arrival on the stream to the end of the
    /// reconcile that applied it (HAProxy serving the change).
    pub event_to_applied: LatencyHistogram,
}

/// The event types Marathon documents (1.x); any other `eventType` is
/// counted as `other`, so a stream cannot create unbounded label values.
pub const KNOWN_EVENT_TYPES: [&str; 30] = [
    "add_health_check_event",
    "api_post_event",
    "app_terminated_event",
    "deployment_failed",
    "deployment_info",
    "deployment_step_failure",
    "deployment_step_success",
    "deployment_success",
    "event_stream_attached",
    "event_stream_detached",
    "failed_health_check_event",
    "framework_message_event",
    "group_change_failed",
    "group_change_success",
    "health_status_changed_event",
    "instance_changed_event",
    "instance_health_changed_event",
    "pod_created_event",
    "pod_deleted_event",
    "pod_updated_event",
    "remove_health_check_event",
    "scheduler_disconnected_event",
    "scheduler_registered_event",
    "scheduler_reregistered_event",
    "status_update_event",
    "subscribe_event",
    "unhealthy_instance_kill_event",
    "unhealthy_task_kill_event",
    "unknown_instance_terminated_event",
    "unsubscribe_event",
];

impl Metrics {
    /// Count one event of `kind` (`other` unless it is a known type).
    pub fn event(&self, kind: &str) {
        let kind = KNOWN_EVENT_TYPES
            .iter()
            .find(|k| **k == kind)
            .copied()
            .unwrap_or("other");
        if let Ok(mut m) = self.events.lock() {
            *m.entry(kind.to_owned()).or_default() += 1;
        }
    }

    /// Record what happened on the event stream: connects, events by
    /// type, watchdog reconnects, the time of the last activity.
    pub fn stream(&self, event: &StreamEvent) {
        match event {
            StreamEvent::Connected { .. } => {
                self.stream_connects.fetch_add(1, Ordering::Relaxed);
            }
            StreamEvent::Event { event_type, .. } => self.event(event_type),
            StreamEvent::Silent { .. } => {
                self.stream_watchdog_reconnects
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
            StreamEvent::Activity => {}
            StreamEvent::Failed { .. } => return,
        }
        self.stream_last_activity
            .store(unix_now(), Ordering::Relaxed);
    }

    /// Record one reconcile caused by `cause`: its count and duration, its
    /// failure (by kind), what it generated and what the plugins did.
    pub fn record(&self, cause: &'static str, report: &ReconcileReport) {
        let elapsed_ms = report.elapsed.as_millis() as u64;
        if let Ok(mut m) = self.reconciles.lock() {
            *m.entry(cause).or_default() += 1;
        }
        self.reconcile_ms_sum
            .fetch_add(elapsed_ms, Ordering::Relaxed);
        self.reconcile_ms_last.store(elapsed_ms, Ordering::Relaxed);
        if let Err(e) = &report.result {
            self.reconcile_errors.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut m) = self.reconcile_failures.lock() {
                *m.entry(e.kind().to_owned()).or_default() += 1;
            }
        }
        if let Some(reason) = report.reload_reason
            && let Ok(mut m) = self.reloads_by_reason.lock()
        {
            *m.entry(reason.to_owned()).or_default() += 1;
        }
        if let Some(fetched) = report.fetched
            && let Ok(mut m) = self.fetches.lock()
        {
            *m.entry(fetched.as_str().to_owned()).or_default() += 1;
        }
        self.events_applied
            .fetch_add(report.events as u64, Ordering::Relaxed);
        self.resync_drift
            .fetch_add(report.drift as u64, Ordering::Relaxed);
        if let Some(mlb_haproxy::Loaded::Runtime(applied)) = &report.haproxy {
            self.runtime_updates.fetch_add(1, Ordering::Relaxed);
            self.runtime_servers_added
                .fetch_add(applied.added as u64, Ordering::Relaxed);
            self.runtime_servers_removed
                .fetch_add(applied.removed as u64, Ordering::Relaxed);
        }
        if report.generated {
            self.apps.store(report.apps as u64, Ordering::Relaxed);
            self.services
                .store(report.services as u64, Ordering::Relaxed);
            self.servers.store(report.servers as u64, Ordering::Relaxed);
            self.rejected
                .store(report.rejected as u64, Ordering::Relaxed);
        }
        self.plugin_outcomes(&report.denied, &report.plugin_failures);
        if report.applied() {
            self.last_apply.store(unix_now(), Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, kind: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
        let none = SupervisorStats::default();
        let sup = self.supervisor.get().map_or(&none, |s| &**s);
        let geti = |a: &AtomicI64| a.load(Ordering::Relaxed).to_string();
        counter(
            "mlb_reconcile_duration_ms_sum",
            "Total reconcile time in milliseconds.",
            "counter",
            get(&self.reconcile_ms_sum),
        );
        counter(
            "mlb_reconcile_duration_ms_last",
            "Duration of the last reconcile in milliseconds.",
            "gauge",
            get(&self.reconcile_ms_last),
        );
        counter(
            "mlb_reconcile_errors_total",
            "Reconciles that failed.",
            "counter",
            get(&self.reconcile_errors),
        );
        counter(
            "mlb_stream_connects_total",
            "Event stream (re)connections.",
            "counter",
            get(&self.stream_connects),
        );
        counter(
            "mlb_stream_watchdog_reconnects_total",
            "Event stream reconnects after silence.",
            "counter",
            get(&self.stream_watchdog_reconnects),
        );
        counter(
            "mlb_stream_last_activity_seconds",
            "Unix time of the last byte on the event stream.",
            "gauge",
            geti(&self.stream_last_activity),
        );
        counter(
            "mlb_reloads_ok_total",
            "Successful HAProxy reloads.",
            "counter",
            get(&sup.reloads_ok),
        );
        counter(
            "mlb_reloads_failed_total",
            "Failed HAProxy reloads.",
            "counter",
            get(&sup.reloads_failed),
        );
        counter(
            "mlb_haproxy_starts_total",
            "HAProxy starts by the supervisor.",
            "counter",
            get(&sup.starts),
        );
        counter(
            "mlb_haproxy_up",
            "1 while the supervised HAProxy is running, else 0 (not started, failed to start, restarting).",
            "gauge",
            get(&sup.up),
        );
        counter(
            "mlb_haproxy_old_workers",
            "HAProxy workers left from earlier reloads.",
            "gauge",
            get(&sup.old_workers),
        );
        counter(
            "mlb_rejected_services",
            "Services rejected in the last reconcile.",
            "gauge",
            get(&self.rejected),
        );
        counter(
            "mlb_apps",
            "Apps in the last reconcile.",
            "gauge",
            get(&self.apps),
        );
        counter(
            "mlb_services",
            "Services rendered in the last reconcile.",
            "gauge",
            get(&self.services),
        );
        counter(
            "mlb_servers",
            "Servers rendered in the last reconcile.",
            "gauge",
            get(&self.servers),
        );
        counter(
            "mlb_last_apply_seconds",
            "Unix time of the last successful apply.",
            "gauge",
            geti(&self.last_apply),
        );
        counter(
            "mlb_events_applied_total",
            "Marathon events applied to the state kept from events.",
            "counter",
            get(&self.events_applied),
        );
        counter(
            "mlb_resync_drift_total",
            "Differences the periodic resync found between the state kept from events and Marathon's (bugs; logged).",
            "counter",
            get(&self.resync_drift),
        );
        counter(
            "mlb_runtime_updates_total",
            "Changes applied through HAProxy's runtime API, without a reload.",
            "counter",
            get(&self.runtime_updates),
        );
        counter(
            "mlb_runtime_servers_added_total",
            "Servers added through HAProxy's runtime API.",
            "counter",
            get(&self.runtime_servers_added),
        );
        counter(
            "mlb_runtime_servers_removed_total",
            "Servers drained (maintenance, deleted once idle) through HAProxy's runtime API.",
            "counter",
            get(&self.runtime_servers_removed),
        );
        let _ = writeln!(
            out,
            "# HELP mlb_reconciles_total Reconciles by trigger.\n# TYPE mlb_reconciles_total counter"
        );
        if let Ok(m) = self.reconciles.lock() {
            for (cause, n) in m.iter() {
                let _ = writeln!(out, "mlb_reconciles_total{{trigger=\"{cause}\"}} {n}");
            }
        }
        labelled(
            &mut out,
            "mlb_fetches_total",
            "Marathon fetches by kind: full (/v2/apps), apps (single apps), none (the events proved the change).",
            "kind",
            &self.fetches,
        );
        labelled(
            &mut out,
            "mlb_reloads_total",
            "Supervised reloads by why the change needed one (structure, backend, balance, cookie, server_id, maps, requested, runtime_failed, ...).",
            "reason",
            &self.reloads_by_reason,
        );
        labelled(
            &mut out,
            "mlb_reconcile_failures_total",
            "Failed reconciles by what failed (marathon, generate, host, io, validation, command, start, reload_rejected, reload_timeout, ...).",
            "kind",
            &self.reconcile_failures,
        );
        labelled(
            &mut out,
            "mlb_policy_denials_total",
            "Services denied by policy plugins.",
            "policy",
            &self.policy_denials,
        );
        labelled(
            &mut out,
            "mlb_plugin_failures_total",
            "Failed plugin calls (trap, timeout, memory cap, error; filters: also calls refused while backed off).",
            "plugin",
            &self.plugin_failures,
        );
        let _ = writeln!(
            out,
            "# HELP mlb_events_total Marathon events by type.\n# TYPE mlb_events_total counter"
        );
        if let Ok(m) = self.events.lock() {
            for (kind, n) in m.iter() {
                let kind: String = kind
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let _ = writeln!(out, "mlb_events_total{{type=\"{kind}\"}} {n}");
            }
        }
        self.event_to_applied.render(
            &mut out,
            "mlb_event_to_applied_seconds",
            "From a Marathon event's arrival to HAProxy serving the change (the end of the reconcile that applied it).",
        );
        out
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A counter family with one label (values reduced to `[A-Za-z0-9_.-]`).
fn labelled(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    counts: &Mutex<BTreeMap<String, u64>>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    if let Ok(m) = counts.lock() {
        for (key, n) in m.iter() {
            let key: String = key
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                .collect();
            let _ = writeln!(out, "{name}{{{label}=\"{key}\"}} {n}");
        }
    }
}

impl Metrics {
    /// Count policy denials and plugin failures of one interpretation.
    pub fn plugin_outcomes(&self, denied: &[(String, String)], failures: &[String]) {
        if let Ok(mut m) = self.policy_denials.lock() {
            for (policy, _) in denied {
                *m.entry(policy.clone()).or_default() += 1;
            }
        }
        if let Ok(mut m) = self.plugin_failures.lock() {
            for plugin in failures {
                *m.entry(plugin.clone()).or_default() += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.event("status_update_event");
        let mut report = ReconcileReport::new(crate::reconcile::Work::Refetch);
        report.elapsed = std::time::Duration::from_millis(12);
        m.record("event", &report);
        let sup = Arc::new(SupervisorStats::default());
        sup.reloads_ok.fetch_add(1, Ordering::Relaxed);
        m.supervisor.set(sup).unwrap();
        m.plugin_outcomes(&[("vhost-domains".into(), "a_1".into())], &["chaos".into()]);
        let text = m.render();
        assert!(text.contains("mlb_policy_denials_total{policy=\"vhost-domains\"} 1"));
        assert!(text.contains("mlb_plugin_failures_total{plugin=\"chaos\"} 1"));
        assert!(text.contains("mlb_events_total{type=\"status_update_event\"} 1"));
        assert!(text.contains("mlb_reconciles_total{trigger=\"event\"} 1"));
        assert!(text.contains("mlb_reloads_ok_total 1"));
    }

    #[test]
    fn a_failed_reload_is_counted_by_kind() {
        use mlb_haproxy::{ControlError, HaproxyError};
        let m = Metrics::default();
        let mut report = ReconcileReport::new(crate::reconcile::Work::Refetch);
        report.result =
            Err(ControlError::Reload(HaproxyError::ReloadRejected("bad".into())).into());
        m.record("event", &report);
        report.result = Err(ControlError::Reload(HaproxyError::ReloadTimeout(
            std::time::Duration::from_secs(10),
        ))
        .into());
        m.record("retry", &report);
        let text = m.render();
        assert!(text.contains("mlb_reconcile_errors_total 2"), "{text}");
        assert!(
            text.contains("mlb_reconcile_failures_total{kind=\"reload_rejected\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mlb_reconcile_failures_total{kind=\"reload_timeout\"} 1"),
            "{text}"
        );
        // A failed reconcile generated nothing: the gauges keep their value.
        assert!(text.contains("mlb_last_apply_seconds 0"), "{text}");
    }

    #[test]
    fn event_types_are_bounded() {
        let m = Metrics::default();
        for i in 0..20_000 {
            m.event(&format!("invented_{i}_event"));
        }
        m.event("deployment_info");
        let text = m.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("mlb_events_total{"))
            .count();
        assert_eq!(series, 2, "{text}");
        assert!(text.contains("mlb_events_total{type=\"other\"} 20000"));
        assert!(text.contains("mlb_events_total{type=\"deployment_info\"} 1"));
    }
}
