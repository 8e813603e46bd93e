//! marathon-lb 1.15's label rules, as a pure function from apps to services.
//!
//! This crate is compiled twice: into the default label plugin (a
//! `wasm32-wasip2` component embedded in the `marathon-lb` binary) and natively
//! (for tests and for the WASM-versus-native benchmark). It has no I/O, no
//! clock and no global state: the same apps and options always give the same
//! services and diagnostics.
//!
//! # Layout
//! - [`interpret`]: the entry point (marathon-lb's `get_apps` plus the per-service
//!   filters of `config`).
//! - `deployment`: the blue/green deployment-group merge (`HAPROXY_DEPLOYMENT_*`).
//! - `network`: network mode, task address and task ports.
//! - `ports`: service ports and the IP-per-task service-port assigner.
//! - [`reference`](mod@reference): every label, where it applies and what it means (printed by
//!   `--longhelp`; a test keeps it and the rules in step).
//! - `labels`: typed parsing of `HAPROXY_{n}_*` labels and app-level label reads.
//! - `health`: which health check applies to a port, and its ports.
//! - `servers`: server names and stable server ids.
//! - `timestamp`: the small ISO-8601 parser the deployment merge needs.
//! - [`stands_alone`]: which apps do not depend on other apps (for hosts
//!   that reuse earlier results).

#![forbid(unsafe_code)]

mod deployment;
mod health;
mod independence;
mod interpret;
mod labels;
mod network;
mod ports;
pub mod reference;
mod servers;
mod timestamp;

pub use independence::stands_alone;
pub use interpret::{EXCLUDED_TASK_STATES, Output, interpret};
pub use labels::is_truthy;
pub use reference::OVERRIDABLE_TEMPLATE_LABELS;
pub use servers::{calculate_server_id, server_name};
