//! A Marathon 1.x simulator for tests, benchmarks and demos: it speaks Marathon's REST and event-stream
//! shapes (see `shared/spec/marathon-api.md`) over an app document loaded from a file, and an admin API
//! under `/_sim/` drives it (scale, add/kill tasks, flip health, push events, inject faults, stall
//! streams).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let doc = serde_json::json!({"apps": []});
//! let sim = marathon_sim::start(marathon_sim::SimConfig::default().with_apps_json(doc)?).await?;
//! println!("Marathon at {}", sim.base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! * [`state`]: the shared [`Sim`] state (apps snapshot, event bus, stream control, faults, request log).
//! * [`apps`]: pure views of the app document (`embed`, counts, zero-copy serialisation).
//! * [`tasks`], [`ops`]: building tasks and the operations on the app list, each returning the events
//!   Marathon would emit; [`events`] holds the event shapes and SSE framing.
//! * [`marathon`]: the REST read endpoints; [`sse`]: `GET /v2/events`.
//! * [`deploy`]: the REST write endpoints and deployments, with Marathon's checks, defaults and service-port
//!   assignment for written apps ([`appdef`]); [`engine`] drives the apps written through them (staging,
//!   running, health, crash loops) with real loopback HTTP servers per task ([`backend`]); [`kill`]
//!   kills tasks as Mesos does (`TASK_KILLING`, the kill grace period, `TASK_KILLED`); [`restart`]
//!   runs rolling restarts (`POST /v2/apps/{id}/restart`) by the app's `upgradeStrategy`.
//! * [`auth`], [`fault`], [`layers`]: the middleware of Marathon endpoints (basic auth, injected faults,
//!   request log and Marathon's response headers).
//! * [`admin`]: the `/_sim/` admin API.
//! * [`selector`], [`query`], [`clock`], [`error`]: label selectors, query strings, timestamps and IDs,
//!   error bodies.
//! * `main.rs`: the `marathon-sim` binary, a thin CLI over [`start`].

#![forbid(unsafe_code)]

pub mod admin;
pub mod appdef;
pub mod apps;
pub mod auth;
pub mod backend;
pub mod clock;
pub mod deploy;
pub mod engine;
pub mod error;
pub mod events;
pub mod fault;
pub mod kill;
pub mod layers;
pub mod marathon;
pub mod ops;
pub mod query;
pub mod restart;
pub mod selector;
pub mod sse;
pub mod state;
pub mod tasks;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::middleware::from_fn_with_state;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use crate::apps::App;
pub use crate::fault::{Fault, FaultMode};
pub use crate::state::{RequestRecord, Sim};

/// The version `/v2/info` reports.
pub const MARATHON_VERSION: &str = "1.10.0";

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The apps served, in `/v2/apps?embed=apps.tasks` shape.
    pub apps: Vec<App>,
    /// `user:pass` that Marathon endpoints require with HTTP Basic auth.
    pub auth: Option<String>,
    /// Period of the bare-CRLF keep-alive on event streams (Marathon: 10 s).
    pub keepalive: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            apps: Vec::new(),
            auth: None,
            keepalive: Duration::from_secs(10),
        }
    }
}

impl SimConfig {
    /// Serves the apps of `doc` (`{"apps": [...]}` or a bare list).
    pub fn with_apps_json(mut self, doc: serde_json::Value) -> anyhow::Result<Self> {
        self.apps = apps::parse_doc(doc).map_err(anyhow::Error::msg)?;
        Ok(self)
    }

    /// Serves the apps of a JSON file (`{"apps": [...]}` or a bare list).
    pub fn with_apps_file(self, path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let doc =
            serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
        self.with_apps_json(doc)
            .with_context(|| format!("loading apps from {}", path.display()))
    }
}

/// The router with every endpoint, for `sim`.
pub fn router(sim: Sim) -> Router {
    marathon::router()
        .layer(from_fn_with_state(sim.clone(), fault::apply))
        .layer(from_fn_with_state(sim.clone(), layers::marathon_headers))
        .layer(from_fn_with_state(sim.clone(), auth::require))
        .layer(from_fn_with_state(sim.clone(), layers::record))
        .merge(admin::router())
        .with_state(sim)
}

/// Binds and serves a simulator in the background of the current tokio runtime.
pub async fn start(config: SimConfig) -> anyhow::Result<SimHandle> {
    if config.keepalive.is_zero() {
        bail!("the keep-alive period must be positive");
    }
    if config.auth.as_deref().is_some_and(|a| !a.contains(':')) {
        bail!("--auth must be user:pass");
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let sim = Sim::new(config.apps, config.auth, config.keepalive);
    sim.set_leader(connect_addr(addr).to_string());
    let app = router(sim.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let mut control = sim.control();
    let stop = async move {
        while !control.borrow_and_update().shutdown {
            if control.changed().await.is_err() {
                break;
            }
        }
    };
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "marathon-sim server failed");
        }
    });
    tokio::spawn(engine::run(sim.clone()));
    tracing::info!(%addr, "marathon-sim listening");
    Ok(SimHandle {
        addr,
        sim,
        task: Some(task),
    })
}

/// The address a client should use: the bound one, with an unspecified IP replaced by loopback.
fn connect_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// A running simulator. Dropping it shuts the server down (open streams are closed).
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    sim: Sim,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", connect_addr(self.addr))
    }

    /// The state, for driving the simulator in-process instead of through `/_sim/`.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// Shuts the server down and waits (up to 5 s) for it to finish.
    pub async fn shutdown(mut self) {
        self.sim.begin_shutdown();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.sim.begin_shutdown();
    }
}
