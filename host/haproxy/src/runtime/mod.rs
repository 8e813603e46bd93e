//! Membership changes without a reload: when the new config differs from
//! the running one only in `server` lines of existing backends, the change
//! goes to HAProxy's runtime API instead of a reload (the file on disk is
//! always written first, so a reload at any point loads the same servers).
//!
//! Facts this relies on (HAProxy 2.6.12, measured; see
//! `shared/notes/haproxy-runtime-api.md`):
//! * `add server` / `del server` need the admin level: the master CLI
//!   forwards `@1 <command>` to the current worker at admin level, so no
//!   extra socket is needed.
//! * `add server` needs a dynamic balance algorithm (not `static-rr`, a hash
//!   only with `hash-type consistent`), takes no `cookie` before 3.0, does
//!   not inherit `default-server`, and cannot change an existing server's
//!   id: each is a reload ([`ReloadReason`]).
//! * A new server is added in maintenance, without `enabled` (broken on
//!   2.6.12), its check enabled, then made ready.
//! * A removed server goes to maintenance at once (no new request reaches
//!   it, in-flight ones finish) and is deleted only when `show stat` shows
//!   no session and `timeout connect` × (`retries` + 1) has passed (2.6
//!   can crash deleting a server streams still point at); otherwise the
//!   next reload drops it.
//! * Anything unexpected — a reply, the socket, `show servers state` not
//!   matching the file — falls back to a reload.
//!
//! # Layout
//! - [`config`]: sections and `server` lines of a config text (pure).
//! - [`diff`]: the decision — runtime [`Plan`] or [`ReloadReason`] (pure).
//! - [`shape`]: when `haproxy -c` of a plan cannot fail, so it is skipped
//!   (pure).
//! - [`commands`]: command lines, success replies, `show servers state`
//!   and `show stat` parsers (pure).
//! - [`apply`]: sending a plan through the master CLI, verifying it, and
//!   deleting drained servers.

pub mod apply;
pub mod commands;
pub mod config;
pub mod diff;
pub mod shape;

pub use apply::{Applied, Draining, RuntimeError, SharedDraining, WorkerCli};
pub use diff::{BackendPlan, Decision, Plan, ReloadReason, decide};
