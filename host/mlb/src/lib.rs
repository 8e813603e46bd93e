//! `marathon-lb`, the binary: command line and settings, and the one
//! reconciler that wires the crates around the pure core — the Marathon
//! client (`mlb-marathon`), the plugin host (`mlb-plugin-host`) and HAProxy
//! control (`mlb-haproxy`) — in both modes.
//!
//! # Layout
//! - [`cli`]: every marathon-lb flag (same names and defaults).
//! - [`settings`]: flags validated into what the run needs.
//! - [`pipeline`]: [`pipeline::Generator`], JSON → apps → services → config
//!   (the pure core and the plugin chain), built once from the settings.
//! - [`reconcile`]: [`reconcile::Reconciler`]: fetch, generate, check the
//!   host, write, load; one [`reconcile::ReconcileReport`] per reconcile.
//! - [`oneshot`]: marathon-lb without `--sse`: one reconcile, then exit.
//! - [`daemon`]: `--sse` / `--poll-interval`: triggers → coalesce →
//!   reconcile, retries, shutdown.
//! - [`coalesce`]: debounce, `Reset` beats `Reload`, minimum reload interval.
//! - [`trigger`]: what makes the long-running mode regenerate or reload.
//! - [`report`]: what a reconcile changed (its log line), new diagnostics.
//! - [`metrics`]: the controller's own Prometheus metrics, recorded from
//!   reports and stream events in one place each.
//! - [`histogram`]: a lock-free Prometheus histogram of durations.
//! - [`metrics_server`]: the bounded `--metrics-address` HTTP endpoint.
//! - [`state`]: Marathon's apps kept in memory and updated by events
//!   (which need no fetch, which need one app or everything).
//! - [`health_cache`]: last health verdict per task (`--health-check`).
//! - [`resolve`]: agent host names → IPv4 addresses, cached.
//! - [`logging`]: `--log-level` / `--log-format` on top of `tracing`.
//! - [`longhelp`]: the generated label and template reference.
//! - [`tools`]: `marathon-lb plugin check` and `plugin list`.
//! - [`syslog_relay`]: `marathon-lb syslogd` (the container's `HAPROXY_SYSLOGD`).
//! - [`zdd`]: `marathon-lb zdd`, zero-downtime deployments (zdd.py).

#![forbid(unsafe_code)]

pub mod cli;
pub mod coalesce;
pub mod daemon;
pub mod health_cache;
pub mod histogram;
pub mod logging;
pub mod longhelp;
pub mod metrics;
pub mod metrics_server;
pub mod oneshot;
pub mod pipeline;
pub mod reconcile;
pub mod report;
pub mod resolve;
pub mod settings;
pub mod state;
pub mod syslog_relay;
pub mod tools;
pub mod trigger;
pub mod zdd;
