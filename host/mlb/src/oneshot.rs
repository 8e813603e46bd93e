//! marathon-lb without `--sse`: fetch, generate, compare, write, validate,
//! reload, exit.

use std::time::Instant;

use mlb_core::Templates;
use mlb_core::render::Renderer;
use mlb_model::Severity;

use mlb_haproxy::apply::{self, ApplyError, Outcome};
use mlb_haproxy::cleanup;
use mlb_marathon::{MarathonClient, MarathonError};
use crate::pipeline::{self, PipelineError};
use mlb_plugin_host::PluginError;
use crate::resolve::Resolver;
use crate::settings::Settings;

/// Why a one-shot run failed (the config on disk is unchanged in every case).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Marathon could not be read.
    #[error(transparent)]
    Marathon(#[from] MarathonError),
    /// The global templates are unusable.
    #[error(transparent)]
    Templates(#[from] mlb_core::TemplateError),
    /// The label plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Generation failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// Writing, validating or reloading failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The config needs something this host lacks (supervised HAProxy).
    #[error(transparent)]
    Host(#[from] mlb_haproxy::preflight::Problem),
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunResult {
    /// `--dry`: the config was printed (or not, when unchanged).
    Dry {
        /// Whether it differed from the file (and so was printed).
        printed: bool,
    },
    /// The apply outcome.
    Applied(Outcome),
}

/// Apply; when `haproxy -c` rejects the config (and cleanup is not
/// disabled), find the apps that break it, leave them out and apply the rest.
pub(crate) fn apply_with_cleanup(
    settings: &Settings,
    generated: &pipeline::Generated,
    renderer: &mut Renderer,
) -> Result<Outcome, ApplyError> {
    let config = &settings.haproxy_config;
    let map = settings.render.haproxy_map;
    match apply::apply(config, &generated.rendered, map, &settings.apply) {
        Err(ApplyError::Invalid { output }) if !settings.skip_config_cleanup => {
            tracing::warn!(%output, "haproxy -c rejected the config; looking for the apps that break it");
            let cleaned = cleanup::drop_invalid_apps(
                &generated.interpreted,
                renderer,
                &settings.render,
                |r| {
                    apply::check(config, r, map).map_err(|e| match e {
                        ApplyError::Invalid { output } => output,
                        other => other.to_string(),
                    })
                },
            );
            if let Some(reason) = cleaned.global {
                // The problem is global (HEAD, a global template, a
                // certificate of the :443 frontend): no app is to blame.
                return Err(ApplyError::Global { output: reason });
            }
            for d in &cleaned.dropped {
                tracing::error!(app = %d.app_id, reason = %d.reason, "app left out: HAProxy rejects the config with it");
            }
            tracing::info!(
                validations = cleaned.validations,
                dropped = cleaned.dropped.len(),
                "config cleanup done"
            );
            let apps: std::collections::HashSet<&str> = generated
                .interpreted
                .iter()
                .map(|s| s.app_id.as_str())
                .collect();
            if cleaned.dropped.len() >= apps.len() {
                // Every app fails on its own: keep what is running rather
                // than serve nothing.
                return Err(ApplyError::Invalid { output });
            }
            apply::apply(config, &cleaned.rendered, map, &settings.apply)
        }
        other => other,
    }
}

/// Log every diagnostic at its severity, with the app and label as fields.
pub(crate) fn log_diagnostics<'d>(
    diagnostics: impl IntoIterator<Item = &'d mlb_model::Diagnostic>,
) {
    for d in diagnostics {
        let label = d.label.as_deref().unwrap_or("-");
        match d.severity {
            Severity::Error => tracing::error!(app = %d.app_id, label, "{}", d.message),
            Severity::Warning => tracing::warn!(app = %d.app_id, label, "{}", d.message),
            Severity::Info => tracing::info!(app = %d.app_id, label, "{}", d.message),
        }
    }
}

/// Run once.
pub async fn run(settings: Settings) -> Result<RunResult, RunError> {
    let start = Instant::now();
    if !settings.dry {
        apply::remove_stale_temps(&settings.haproxy_config);
    }
    let templates = Templates::resolve(&settings.templates)?;
    let (mut plugin, _) = settings.load_plugins(true)?;
    let mut renderer = Renderer::new(templates);
    plugin.register_filters(&mut renderer);
    let mut client = MarathonClient::new(settings.client.clone())?;
    let body = client.fetch_apps().await?;
    let mut resolver = Resolver::new(settings.cache_capacity);
    let generated = tokio::task::block_in_place(|| {
        pipeline::generate_owned(
            body,
            &mut resolver,
            &mut plugin,
            &mut renderer,
            &settings.interpret,
            &settings.render,
        )
    })?;
    log_diagnostics(&generated.diagnostics);
    tracing::debug!(
        parse_us = generated.timings.parse_us as u64,
        interpret_us = generated.timings.interpret_us as u64,
        render_us = generated.timings.render_us as u64,
        "generated"
    );

    let (result, what) = if settings.dry {
        let printed = apply::differs(
            &settings.haproxy_config,
            &generated.rendered,
            settings.render.haproxy_map,
        );
        if printed {
            println!("{}", generated.rendered.config);
        }
        let what = if printed {
            "printed (--dry: not written, not validated with haproxy -c)"
        } else {
            "same as the file on disk, not printed (--dry)"
        };
        (RunResult::Dry { printed }, what)
    } else {
        let outcome = tokio::task::block_in_place(|| {
            apply_with_cleanup(&settings, &generated, &mut renderer)
        })?;
        let what = match outcome {
            Outcome::Unchanged => "unchanged",
            Outcome::Applied { reloaded: true } => "written, HAProxy reloaded",
            Outcome::Applied { reloaded: false } => "written",
        };
        (RunResult::Applied(outcome), what)
    };
    let servers: usize = generated.interpreted.iter().map(|s| s.servers.len()).sum();
    let rejected = generated
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    tracing::info!(
        trigger = "oneshot",
        apps = generated.apps,
        services = generated.services,
        servers,
        rejected,
        elapsed_ms = start.elapsed().as_millis() as u64,
        "config {what}"
    );
    // The process is about to exit: freeing the services and the config
    // (~10 ms at 10,000 apps) is not waited for.
    mlb_plugin_host::drop_elsewhere(generated);
    Ok(result)
}
