//! The plugin host's integration tests, one binary (one link) for all:
//! the WASM default plugin against the native rules, the memoizing and
//! splitting interpreters, and the committed prebuilt plugin's freshness.

mod memo;
mod plugin_host;
mod prebuilt_plugin;
mod support;
