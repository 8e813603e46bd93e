//! Plain data shared by the host, the renderer and the label plugins.
//!
//! These records mirror the WIT types of `wit/mlb-plugins.wit` one to one: the
//! host converts Marathon JSON into [`App`]s, a label interpreter (the default
//! WASM plugin, or the same rules compiled natively) turns them into
//! [`Service`]s, and the renderer turns services into HAProxy config text.
//!
//! # Layout
//! - [`app`]: what Marathon tells us (apps, tasks, health checks), normalised.
//! - [`service`]: what the renderer needs (one record per service port).
//! - [`options`]: the command-line settings a label interpreter needs.
//! - [`diagnostic`]: why an app, a service or a task was left out.
//! - [`allowlist`]: the one list of what a Marathon-sourced value may contain.

#![forbid(unsafe_code)]

pub mod allowlist;
pub mod app;
pub mod diagnostic;
pub mod options;
pub mod service;

pub use app::{App, HealthCheck, PortMapping, Task};
pub use diagnostic::{Diagnostic, Severity};
pub use options::InterpretOptions;
pub use service::{Auth, Server, Service, ServiceHealthCheck};

/// marathon-lb's name rule: every character outside `[a-zA-Z0-9-]` becomes `_`
/// (server names, ACL names, grouped-vhost frontends).
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
