//! The one reconcile of both modes: fetch Marathon's apps, generate the
//! config, check the host, write it, load it into HAProxy — and say what
//! happened in a [`ReconcileReport`]. The one-shot run is one reconcile;
//! the long-running mode calls it once per coalesced batch of triggers.
//!
//! The reconciler owns the Marathon client, the [`Generator`] and the
//! [`HaproxyControl`]; it carries the last reconcile's backends and
//! diagnostics ([`Changes`]) so the report names what changed and only new
//! diagnostics are logged.

use std::time::Duration;

use mlb_haproxy::apply::{ApplyError, Outcome};
use mlb_haproxy::preflight;
use mlb_haproxy::{ControlError, HaproxyControl, Loaded};
use mlb_marathon::{MarathonClient, MarathonError};
use mlb_model::Severity;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::pipeline::{Generator, PipelineError, SetupError, Timings};
use crate::report::Changes;
use crate::settings::Settings;
use crate::state::{Decision, MarathonState, StateOptions};
use crate::trigger::Event;

/// What a reconcile is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Refetch the apps, regenerate, write if changed, load.
    Refetch,
    /// The periodic resync: a refetch that also counts how the state kept
    /// from events drifted from Marathon's (differences are bugs).
    Resync,
    /// Apply Marathon events to the state kept from events; fetch only
    /// what they cannot prove (one app, or everything), regenerate from
    /// the state, write if changed, load.
    Apply(Vec<Event>),
    /// Validate the config file on disk and load it (SIGUSR1).
    Revalidate,
}

/// What was fetched from Marathon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// Nothing: the events proved the change.
    Nothing,
    /// Single apps (`GET /v2/apps/{id}`).
    Apps,
    /// Everything (`GET /v2/apps`).
    Everything,
}

impl Fetched {
    /// A word for logs and the `mlb_fetches_total{kind}` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Fetched::Nothing => "none",
            Fetched::Apps => "apps",
            Fetched::Everything => "full",
        }
    }
}

/// Why a reconcile failed. Retryable: the next trigger may succeed; the
/// last good config keeps serving meanwhile.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Marathon could not be read.
    #[error(transparent)]
    Marathon(#[from] MarathonError),
    /// Nothing could be generated.
    #[error(transparent)]
    Generate(#[from] PipelineError),
    /// The config needs something this host lacks (supervised HAProxy).
    #[error(transparent)]
    Host(#[from] preflight::Problem),
    /// Writing, validating or loading the config failed.
    #[error(transparent)]
    Haproxy(#[from] ControlError),
}

impl From<ApplyError> for ReconcileError {
    fn from(e: ApplyError) -> Self {
        ReconcileError::Haproxy(e.into())
    }
}

impl ReconcileError {
    /// A short stable name of what failed (log field, metric label).
    pub fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Marathon(MarathonError::Cancelled) => "cancelled",
            ReconcileError::Marathon(_) => "marathon",
            ReconcileError::Generate(_) => "generate",
            ReconcileError::Host(_) => "host",
            ReconcileError::Haproxy(e) => e.kind(),
        }
    }
}

/// Why the run cannot start (bad templates, a plugin that does not load,
/// an unusable Marathon client, Lua files that cannot be installed).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The generator cannot be built.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The Marathon client cannot be built.
    #[error(transparent)]
    Marathon(#[from] MarathonError),
    /// The HAProxy files cannot be prepared.
    #[error(transparent)]
    Haproxy(#[from] ApplyError),
}

/// What the config file became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigOutcome {
    /// The generated config equals the files on disk.
    Unchanged,
    /// New files are in place.
    Written,
    /// `--dry`: printed, not written.
    Printed,
    /// `--dry`: the same as on disk, so not printed (one-shot).
    NotPrinted,
    /// SIGUSR1: the file on disk was validated.
    Revalidated,
    /// SIGUSR1 under `--dry`: nothing done.
    DryRevalidate,
}

impl ConfigOutcome {
    /// A few words for the reconcile line (`config=`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigOutcome::Unchanged => "unchanged",
            ConfigOutcome::Written => "written",
            ConfigOutcome::Printed => "printed (--dry: not written, not validated)",
            ConfigOutcome::NotPrinted => "same as the file on disk, not printed (--dry)",
            ConfigOutcome::Revalidated => "revalidated",
            ConfigOutcome::DryRevalidate => "not reloaded (--dry)",
        }
    }
}

/// Everything one reconcile did: its log line and its metrics.
#[derive(Debug)]
pub struct ReconcileReport {
    /// What was asked.
    pub work: Work,
    /// Apps read.
    pub apps: usize,
    /// Services rendered.
    pub services: usize,
    /// Servers of the interpreted services.
    pub servers: usize,
    /// Services rejected (diagnostics of severity error).
    pub rejected: usize,
    /// Services denied by policy plugins: (policy, backend).
    pub denied: Vec<(String, String)>,
    /// Plugins that failed (once per failed call).
    pub plugin_failures: Vec<String>,
    /// What changed since the last reconcile ("+1 server in x", ...).
    pub changes: Vec<String>,
    /// What the config file became (`None`: failed before).
    pub config: Option<ConfigOutcome>,
    /// What HAProxy did (`None`: nothing).
    pub haproxy: Option<Loaded>,
    /// Why HAProxy was reloaded rather than updated at run time (with
    /// `haproxy` = reloaded by the supervisor).
    pub reload_reason: Option<&'static str>,
    /// Whether a config was generated (apps to services below are set).
    pub generated: bool,
    /// What was fetched from Marathon (`None`: nothing was tried).
    pub fetched: Option<Fetched>,
    /// Events applied to the state kept from events.
    pub events: usize,
    /// Resync: how the state kept from events differed from Marathon's.
    pub drift: usize,
    /// Stage durations of the generation.
    pub timings: Timings,
    /// Writing the files (with `haproxy -c`, or its excerpt for a runtime
    /// change).
    pub write: Duration,
    /// Loading them into HAProxy (runtime API, reload, command).
    pub load: Duration,
    /// Comparing the services and diagnostics with the last reconcile's
    /// (the change list and which diagnostics are new).
    pub compare: Duration,
    /// Checking what the config needs from the host (supervised).
    pub host_check: Duration,
    /// Wall time of the whole reconcile.
    pub elapsed: Duration,
    /// Whether it succeeded.
    pub result: Result<(), ReconcileError>,
}

impl ReconcileReport {
    /// An empty report of `work` (nothing done yet).
    pub fn new(work: Work) -> Self {
        Self {
            work,
            apps: 0,
            services: 0,
            servers: 0,
            rejected: 0,
            denied: Vec::new(),
            plugin_failures: Vec::new(),
            changes: Vec::new(),
            config: None,
            haproxy: None,
            reload_reason: None,
            generated: false,
            fetched: None,
            events: 0,
            drift: 0,
            timings: Timings::default(),
            write: Duration::ZERO,
            compare: Duration::ZERO,
            host_check: Duration::ZERO,
            load: Duration::ZERO,
            elapsed: Duration::ZERO,
            result: Ok(()),
        }
    }

    /// Whether new files were put in place.
    pub fn applied(&self) -> bool {
        self.result.is_ok()
            && matches!(
                self.config,
                Some(ConfigOutcome::Written | ConfigOutcome::Unchanged)
            )
    }
}

/// How `--dry` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryPrint {
    /// Only a config that differs from the file (one-shot, as marathon-lb).
    IfChanged,
    /// Every generated config (long-running).
    Always,
}

/// The reconciler: Marathon client, generator, HAProxy control and what
/// the last reconcile served.
#[derive(Debug)]
pub struct Reconciler {
    client: MarathonClient,
    generator: Generator,
    haproxy: HaproxyControl,
    changes: Changes,
    host_warnings: Vec<String>,
    dry: Option<DryPrint>,
    /// Turns `true` on shutdown: an in-flight Marathon request is abandoned.
    stop: Option<watch::Receiver<bool>>,
    /// Long-running: Marathon's apps kept from the last fetch and events
    /// (`None`: one-shot).
    state: Option<MarathonState>,
}

impl Reconciler {
    /// A reconciler for `settings`. `once`: a single reconcile (one-shot);
    /// `stop`: a shutdown signal that abandons a Marathon request.
    pub fn new(
        settings: &Settings,
        once: bool,
        stop: Option<watch::Receiver<bool>>,
    ) -> Result<Self, StartError> {
        let mut haproxy = HaproxyControl::new(
            settings.haproxy_config.clone(),
            settings.render.haproxy_map,
            settings.apply.clone(),
            settings.skip_config_cleanup,
            settings.supervise.clone(),
        )?;
        haproxy.set_runtime_updates(settings.runtime_updates);
        if let Some(socket) = &settings.admin_socket {
            haproxy.set_admin_socket(socket.clone());
        }
        if !settings.dry {
            haproxy.remove_stale_temps();
        }
        Ok(Self {
            generator: Generator::new(settings, once)?,
            client: MarathonClient::new(settings.client.clone())?,
            haproxy,
            changes: Changes::default(),
            host_warnings: Vec::new(),
            dry: settings.dry.then_some(if once {
                DryPrint::IfChanged
            } else {
                DryPrint::Always
            }),
            stop,
            state: (!once).then(|| {
                MarathonState::new(StateOptions {
                    health_check: settings.interpret.health_check,
                })
            }),
        })
    }

    /// The HAProxy control (last reload time, supervisor counters).
    pub fn haproxy(&self) -> &HaproxyControl {
        &self.haproxy
    }

    /// Do `work` and report what happened.
    pub async fn reconcile(&mut self, work: Work) -> ReconcileReport {
        let started = Instant::now();
        let mut report = ReconcileReport::new(work.clone());
        report.result = match work {
            Work::Refetch => self.refetch(&mut report, false).await,
            Work::Resync => self.refetch(&mut report, true).await,
            Work::Apply(events) => self.apply(events, &mut report).await,
            Work::Revalidate => self.revalidate(&mut report).await,
        };
        report.elapsed = started.elapsed();
        report
    }

    /// What a failed reconcile left in place, for its log line.
    pub fn after_failure(&self, error: &ReconcileError) -> &'static str {
        let after_write = matches!(error, ReconcileError::Haproxy(e) if e.after_write());
        self.haproxy.after_failure(after_write)
    }

    /// Stop the supervised HAProxy, if any.
    pub async fn shutdown(self) {
        self.haproxy.stop().await;
    }

    /// `GET /v2/apps` (`app`: `GET /v2/apps/{app}` with its tasks),
    /// abandoned on shutdown.
    async fn fetch(&mut self, app: Option<&str>) -> Result<Vec<u8>, ReconcileError> {
        let path = app.map(|id| format!("/v2/apps/{}?embed=app.tasks", id.trim_start_matches('/')));
        let client = &mut self.client;
        let request = async move {
            match &path {
                Some(path) => client.request(reqwest::Method::GET, path, None).await,
                None => client.fetch_apps().await,
            }
        };
        let Some(stop) = &self.stop else {
            return Ok(request.await?);
        };
        let mut stop = stop.clone();
        tokio::select! {
            body = request => Ok(body?),
            _ = stop.wait_for(|stopping| *stopping) => Err(MarathonError::Cancelled.into()),
        }
    }

    /// Fetch everything, regenerate, write, load. `resync`: also count how
    /// the state kept from events differs from what Marathon says.
    async fn refetch(
        &mut self,
        report: &mut ReconcileReport,
        resync: bool,
    ) -> Result<(), ReconcileError> {
        let body = self.fetch(None).await?;
        report.fetched = Some(Fetched::Everything);
        if let Some(state) = &mut self.state {
            if resync && state.is_ready() {
                let drift = tokio::task::block_in_place(|| state.diff(&body)).unwrap_or_default();
                for d in &drift {
                    tracing::warn!("the state kept from events differs from Marathon's: {d}");
                }
                report.drift = drift.len();
            }
            state.reset(&body);
        }
        let generator = &mut self.generator;
        let state = self.state.as_mut();
        let generated = tokio::task::block_in_place(|| match state {
            // Long-running: generate from the document just installed, so
            // each app is read once here and kept for the events that follow.
            Some(state) => generator.generate_state(state),
            // One-shot: the body is freed as soon as it is decoded.
            None => generator.generate_owned(body),
        })?;
        self.put_in_place(generated, report).await
    }

    /// Apply `events` to the state kept from events; fetch one app or
    /// everything only where they prove nothing.
    async fn apply(
        &mut self,
        events: Vec<Event>,
        report: &mut ReconcileReport,
    ) -> Result<(), ReconcileError> {
        report.events = events.len();
        let Some(state) = &mut self.state else {
            return self.refetch(report, false).await;
        };
        let mut apps = std::collections::BTreeSet::new();
        let mut changed = false;
        for event in &events {
            match state.apply(&event.event_type, &event.payload) {
                Decision::Applied { changed: c, .. } => changed |= c,
                Decision::RefetchApp(id) => {
                    apps.insert(id);
                }
                Decision::FullFetch(reason) => {
                    tracing::debug!(%reason, event = %event.event_type, "full fetch");
                    return self.refetch(report, false).await;
                }
                Decision::Ignored => {}
            }
        }
        for id in &apps {
            let body = self.fetch(Some(id)).await?;
            report.fetched = Some(Fetched::Apps);
            let held = self.state.as_mut().is_some_and(|s| s.replace_app(&body));
            if !held {
                tracing::debug!(app = %id, "app not held: full fetch");
                return self.refetch(report, false).await;
            }
            changed = true;
        }
        report.fetched.get_or_insert(Fetched::Nothing);
        if !changed {
            report.config = Some(ConfigOutcome::Unchanged);
            return Ok(());
        }
        let Some(state) = self.state.as_mut() else {
            return self.refetch(report, false).await;
        };
        let generator = &mut self.generator;
        let generated = tokio::task::block_in_place(|| generator.generate_state(state))?;
        self.put_in_place(generated, report).await
    }

    /// Report what was generated, log new diagnostics, then print it
    /// (`--dry`) or check the host, write and load it.
    async fn put_in_place(
        &mut self,
        mut generated: crate::pipeline::Generated,
        report: &mut ReconcileReport,
    ) -> Result<(), ReconcileError> {
        report.generated = true;
        report.apps = generated.apps;
        report.services = generated.services;
        report.servers = generated.interpreted.iter().map(|s| s.servers.len()).sum();
        report.rejected = generated
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        report.timings = generated.timings;
        report.denied = std::mem::take(&mut generated.denied);
        report.plugin_failures = std::mem::take(&mut generated.plugin_failures);
        let compared = Instant::now();
        let (fresh, mut diagnostic_changes) = self.changes.diagnostics(&generated.diagnostics);
        report.compare = compared.elapsed();
        log_diagnostics(fresh);

        if let Some(dry) = self.dry {
            // As marathon-lb: --dry prints the config instead of applying it.
            let print = dry == DryPrint::Always || self.haproxy.differs(&generated.rendered);
            if print {
                println!("{}", generated.rendered.config);
            }
            report.config = Some(if print {
                ConfigOutcome::Printed
            } else {
                ConfigOutcome::NotPrinted
            });
            mlb_plugin_host::drop_elsewhere(generated);
            return Ok(());
        }
        let checked = Instant::now();
        self.check_host()?;
        report.host_check = checked.elapsed();
        let haproxy = &self.haproxy;
        let (renderer, settings) = self.generator.renderer();
        let written = Instant::now();
        let outcome = tokio::task::block_in_place(|| {
            haproxy.write(
                &generated.rendered,
                &generated.interpreted,
                renderer,
                settings,
            )
        })?;
        report.config = Some(match outcome {
            Outcome::Unchanged => ConfigOutcome::Unchanged,
            Outcome::Written => ConfigOutcome::Written,
        });
        // A runtime change's load needs the text just written; ours is not
        // needed any more, so it moves instead of being copied.
        self.haproxy
            .keep_written(std::mem::take(&mut generated.rendered.config));
        let loaded = Instant::now();
        report.write = loaded - written;
        report.haproxy = self.haproxy.load(&outcome).await?;
        report.load = loaded.elapsed();
        if let Some(text) = self.haproxy.take_retired() {
            self.generator.recycle(text);
        }
        report.reload_reason = self.reload_reason(report.haproxy);
        let compared = Instant::now();
        let (mut served, snapshot) = self.changes.services(&generated.interpreted);
        self.changes.commit(snapshot);
        report.compare += compared.elapsed();
        served.append(&mut diagnostic_changes);
        report.changes = served;
        // Freeing the services and the config takes milliseconds at scale.
        mlb_plugin_host::drop_elsewhere(generated);
        Ok(())
    }

    /// SIGUSR1: validate the file on disk, then load it.
    async fn revalidate(&mut self, report: &mut ReconcileReport) -> Result<(), ReconcileError> {
        if self.dry.is_some() {
            report.config = Some(ConfigOutcome::DryRevalidate);
            return Ok(());
        }
        report.haproxy = self.haproxy.revalidate().await?;
        report.reload_reason = self.reload_reason(report.haproxy);
        report.config = Some(ConfigOutcome::Revalidated);
        Ok(())
    }

    /// Why the supervised HAProxy was reloaded, when it was.
    fn reload_reason(&self, loaded: Option<Loaded>) -> Option<&'static str> {
        match loaded {
            Some(Loaded::Reloaded(_)) => self.haproxy.last_reload_reason().map(|r| r.label()),
            _ => None,
        }
    }

    /// Supervised: what the config needs from the host, checked on its
    /// global part (rendered without any app) before anything is written,
    /// so a missing certificate or a too-low open-files limit is reported
    /// once as what it is rather than as every app failing validation.
    fn check_host(&mut self) -> Result<(), ReconcileError> {
        if !self.haproxy.supervised() {
            return Ok(());
        }
        let global = self.generator.render_global();
        let warnings = preflight::check(&global.config, &preflight::Host::current())?;
        if warnings != self.host_warnings {
            for w in &warnings {
                tracing::warn!("{w}");
            }
            self.host_warnings = warnings;
        }
        Ok(())
    }
}

/// Log every diagnostic at its severity, with the app and label as fields.
fn log_diagnostics<'d>(diagnostics: impl IntoIterator<Item = &'d mlb_model::Diagnostic>) {
    for d in diagnostics {
        let label = d.label.as_deref().unwrap_or("-");
        match d.severity {
            Severity::Error => tracing::error!(app = %d.app_id, label, "{}", d.message),
            Severity::Warning => tracing::warn!(app = %d.app_id, label, "{}", d.message),
            Severity::Info => tracing::info!(app = %d.app_id, label, "{}", d.message),
        }
    }
}
