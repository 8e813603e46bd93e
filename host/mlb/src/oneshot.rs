//! marathon-lb without `--sse`: one reconcile (fetch, generate, compare,
//! write, validate, reload), then exit.

use crate::reconcile::{ConfigOutcome, ReconcileError, Reconciler, StartError, Work};
use crate::settings::Settings;

/// Why a one-shot run failed (the config on disk is unchanged in every
/// case, except after a failed reload command).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The reconcile failed.
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
}

/// Run once; what the config file became.
pub async fn run(settings: Settings) -> Result<ConfigOutcome, RunError> {
    let mut reconciler = Reconciler::new(&settings, true, None)?;
    let report = reconciler.reconcile(Work::Refetch).await;
    report.result?;
    let config = report.config.unwrap_or(ConfigOutcome::Unchanged);
    let what = match (config, report.haproxy) {
        (ConfigOutcome::Written, Some(_)) => "written, HAProxy reloaded",
        (ConfigOutcome::Written, None) => "written",
        (ConfigOutcome::Printed, _) => {
            "printed (--dry: not written, not validated with haproxy -c)"
        }
        (other, _) => other.as_str(),
    };
    tracing::debug!(
        parse_us = report.timings.parse_us as u64,
        interpret_us = report.timings.interpret_us as u64,
        render_us = report.timings.render_us as u64,
        "generated"
    );
    tracing::info!(
        trigger = "oneshot",
        apps = report.apps,
        services = report.services,
        servers = report.servers,
        rejected = report.rejected,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "config {what}"
    );
    Ok(config)
}
