//! marathon-lb's integration tests, one binary (one link) for all: the
//! golden corpus, bad input, the daemon end to end with a real HAProxy,
//! plugins through the binary, DC/OS auth, zdd and the container image.
//!
//! Every run of the binary goes through [`support::command`], which keeps
//! its plugin compile cache inside the target directory.

mod bad_apps;
mod bad_input;
mod container;
mod daemon_e2e;
mod daemon_plugins;
mod dcos_auth;
#[path = "../../../marathon/tests/it/dcos_server.rs"]
mod dcos_server;
mod docs;
mod e2e_haproxy;
mod golden;
mod plugin_cli;
mod properties;
mod support;
mod zdd;
