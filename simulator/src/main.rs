//! `marathon-sim`: serves a simulated Marathon until SIGINT/SIGTERM.
//!
//! Prints `listening on http://127.0.0.1:PORT` as the first line of stdout (and writes the URL to
//! `--port-file`, atomically) so scripts and tests can find it.

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use marathon_sim::SimConfig;
use tracing_subscriber::EnvFilter;

/// A Marathon 1.x simulator: REST API, /v2/events SSE, basic auth, faults, and an admin API under /_sim/.
#[derive(Debug, Parser)]
#[command(name = "marathon-sim", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Apps document to serve: {"apps": [...]} as /v2/apps?embed=apps.tasks returns it.
    #[arg(long)]
    apps: Option<PathBuf>,
    /// Require HTTP Basic auth with these credentials (user:pass) on Marathon endpoints.
    #[arg(long, env = "MARATHON_SIM_AUTH")]
    auth: Option<String>,
    /// Write the base URL (http://host:port) to this file once listening.
    #[arg(long)]
    port_file: Option<PathBuf>,
    /// Seconds between the bare-CRLF keep-alives of /v2/events (fractions allowed).
    #[arg(long, default_value_t = 10.0)]
    keepalive_secs: f64,
}

fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if !(args.keepalive_secs.is_finite() && args.keepalive_secs > 0.0) {
        bail!("--keepalive-secs must be a positive number");
    }
    let mut config = SimConfig {
        listen: args.listen,
        auth: args.auth,
        keepalive: Duration::from_secs_f64(args.keepalive_secs),
        ..SimConfig::default()
    };
    if let Some(path) = &args.apps {
        config = config.with_apps_file(path)?;
    }
    let handle = marathon_sim::start(config).await?;
    let url = handle.base_url();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {url}")?;
        out.flush()?;
    }
    if let Some(path) = &args.port_file {
        write_atomically(path, &url)?;
    }
    terminated().await;
    tracing::info!("shutting down");
    handle.shutdown().await;
    Ok(())
}
