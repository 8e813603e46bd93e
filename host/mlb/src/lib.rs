//! `marathon-lb`: the shells around the pure core — command line, Marathon
//! client, WASM plugin host, HAProxy apply — and the one-shot run that wires
//! them together.
//!
//! # Layout
//! - [`cli`]: every marathon-lb flag (same names and defaults).
//! - [`settings`]: flags validated into what the run needs.
//! - [`marathon`]: `GET /v2/apps` with failover and basic auth.
//! - [`health_cache`]: last health verdict per task (`--health-check`).
//! - [`resolve`]: agent host names → IPv4 addresses, cached.
//! - [`plugin`]: wasmtime host for label, filter and policy plugins; the
//!   embedded default plugin; the plugin chain with failure isolation.
//! - [`tools`]: `marathon-lb plugin check` and `plugin list`.
//! - [`syslog_relay`]: `marathon-lb syslogd` (the container's `HAPROXY_SYSLOGD`).
//! - [`pipeline`]: JSON → apps → services → config (calls the pure core).
//! - [`apply`]: compare, write atomically, validate with `haproxy -c`, reload.
//! - [`cleanup`]: find the apps that make `haproxy -c` fail, by bisection.
//! - [`daemon`]: `--sse`: the long-running controller (reconcile loop).
//! - [`backoff`]: jittered exponential backoff.
//! - [`haproxy`]: the built-in HAProxy supervisor (master-worker, seamless reloads).
//! - [`oneshot`]: marathon-lb without `--sse`: fetch, generate, apply, exit.
//! - [`report`]: what a reconcile changed (its log line), new diagnostics.
//! - [`trigger`]: what makes the long-running mode regenerate or reload.
//! - [`metrics`]: the controller's own Prometheus metrics.
//! - [`metrics_server`]: the bounded `--metrics-address` HTTP endpoint.
//! - [`logging`]: `--log-level` / `--log-format` on top of `tracing`.
//! - [`longhelp`]: the generated label and template reference.
//! - [`zdd`]: `marathon-lb zdd`, zero-downtime deployments (zdd.py).

#![forbid(unsafe_code)]

pub mod cli;
pub mod coalesce;
pub mod daemon;
pub mod health_cache;
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
pub mod syslog_relay;
pub mod tools;
pub mod trigger;
pub mod zdd;
