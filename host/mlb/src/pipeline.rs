//! One generation: Marathon JSON → apps → services → config text, timed.
//!
//! [`Generator`] owns what a generation needs and keeps between runs (the
//! DNS and health caches, the plugin set, the renderer), built once from the
//! settings; [`generate`] is the same path for callers that bring their own
//! parts (benchmarks, plugin tests).
//!
//! # Layout
//! - this file: [`Generator`], [`generate`] and their result.
//! - `incremental`: a generation from the apps changed since the last one
//!   alone, when that provably gives the same.

mod incremental;

use std::sync::Arc;
use std::time::Instant;

use mlb_core::normalize::normalize_apps;
use mlb_core::render::Renderer;
use mlb_core::{InterpretError, LabelInterpreter, NormalizeError, RenderSettings, Rendered};
use mlb_model::{Diagnostic, InterpretOptions};

use crate::health_cache::HealthCache;
use crate::resolve::Resolver;
use crate::settings::Settings;

/// Why a [`Generator`] cannot be built (the run cannot start).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The global templates are unusable.
    #[error(transparent)]
    Templates(#[from] mlb_core::TemplateError),
    /// A plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] mlb_plugin_host::PluginError),
}

/// Everything one generation needs, kept from one to the next.
#[derive(Debug)]
pub struct Generator {
    resolver: Resolver,
    health: HealthCache,
    plugins: mlb_plugin_host::PluginSet,
    renderer: Renderer,
    interpret: InterpretOptions,
    render: RenderSettings,
    /// What the last generation from a state left to build on.
    last: Option<incremental::Last>,
}

impl Generator {
    /// Templates resolved, plugins loaded (filters registered with the
    /// renderer), caches sized by `--lru-cache-capacity`. `once`: for a
    /// single generation (one-shot), without the plugins' memo of
    /// unchanged apps and the renderer's cache of unchanged services.
    pub fn new(settings: &Settings, once: bool) -> Result<Self, SetupError> {
        let templates = mlb_core::Templates::resolve(&settings.templates)?;
        let (plugins, _) = settings.load_plugins(once)?;
        let mut renderer = Renderer::new(templates);
        if !once {
            // Unchanged services' text is reused (off once a filter is registered).
            renderer.enable_cache();
        }
        plugins.register_filters(&mut renderer);
        Ok(Self {
            resolver: Resolver::new(settings.cache_capacity),
            health: HealthCache::new(if once { 1 } else { settings.cache_capacity }),
            plugins,
            renderer,
            interpret: settings.interpret.clone(),
            render: settings.render.clone(),
            last: None,
        })
    }

    /// One generation from a `/v2/apps` body.
    pub fn generate(&mut self, body: &[u8]) -> Result<Generated, PipelineError> {
        let t0 = Instant::now();
        let normalized = decode(body, &mut self.resolver, &mut self.health, &self.interpret)?;
        self.finish(normalized, t0)
    }

    /// [`generate`](Self::generate) for a body the caller gives up: it is
    /// freed as soon as it is decoded, so the document and the rest of the
    /// generation are never in memory at once.
    pub fn generate_owned(&mut self, body: Vec<u8>) -> Result<Generated, PipelineError> {
        let t0 = Instant::now();
        let normalized = decode(&body, &mut self.resolver, &mut self.health, &self.interpret)?;
        drop(body);
        self.finish(normalized, t0)
    }

    /// One generation from a [`MarathonState`](crate::state::MarathonState):
    /// the same as [`generate`](Self::generate) of its document, but only
    /// the apps changed since the last call are read again — and only they
    /// are interpreted and rendered again when nothing but their backend
    /// sections changes (see `incremental`; [`Timings::changed_only`]).
    pub fn generate_state(
        &mut self,
        state: &mut crate::state::MarathonState,
    ) -> Result<Generated, PipelineError> {
        let t0 = Instant::now();
        if let Some(generated) = incremental::changed(self, state, t0) {
            return Ok(generated);
        }
        let resolver = &mut self.resolver;
        let mut normalized = state.normalized(|host| resolver.resolve(host))?;
        let health_cached =
            self.interpret.health_check && self.health.apply(&mut normalized.apps) > 0;
        let generated = self.finish(normalized, t0)?;
        self.last = self.renderer.last_render().map(|render| incremental::Last {
            services: Arc::clone(&generated.interpreted),
            diagnostics: generated.diagnostics.clone(),
            apps: generated.apps,
            health_cached,
            render,
        });
        Ok(generated)
    }

    fn finish(
        &mut self,
        normalized: mlb_core::normalize::Normalized,
        t0: Instant,
    ) -> Result<Generated, PipelineError> {
        let generated = finish(
            normalized,
            t0,
            &mut self.plugins,
            &mut self.renderer,
            &self.interpret,
            &self.render,
        );
        // Taken even when the generation failed, so that nothing of this
        // run is reported with the next.
        let report = self.plugins.take_report();
        let mut generated = generated?;
        generated.denied = report.denied;
        generated.plugin_failures = report.failures;
        Ok(generated)
    }

    /// The config without any app: what the global part needs from the
    /// host (certificates, open files), checked before anything is written.
    pub fn render_global(&mut self) -> Rendered {
        self.renderer.render(&[], &self.render)
    }

    /// Hand back the text of an older generation (see
    /// [`Renderer::recycle`]).
    pub fn recycle(&mut self, text: String) {
        self.renderer.recycle(text);
    }

    /// The renderer and its settings, for re-rendering subsets of services
    /// (the config cleanup).
    pub fn renderer(&mut self) -> (&mut Renderer, &RenderSettings) {
        (&mut self.renderer, &self.render)
    }
}

/// Why nothing could be generated. Retryable: the next trigger may succeed;
/// the last good config stays in place meanwhile.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Marathon's answer is unusable.
    #[error(transparent)]
    Normalize(#[from] NormalizeError),
    /// The label plugin failed.
    #[error(transparent)]
    Interpret(#[from] InterpretError),
    /// A global template cannot be rendered (see [`Rendered::fatal`]).
    #[error("{0}; nothing is written")]
    Template(String),
}

/// Durations of the stages, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// JSON parse and normalisation (including DNS).
    pub parse_us: u128,
    /// Label interpretation.
    pub interpret_us: u128,
    /// Template rendering.
    pub render_us: u128,
    /// Only the apps changed since the last generation were interpreted
    /// and rendered.
    pub changed_only: bool,
}

/// The result of one generation.
#[derive(Debug)]
pub struct Generated {
    /// Config and map files.
    pub rendered: Rendered,
    /// The services that were rendered from (for the config cleanup);
    /// shared with the generator, which builds the next generation on them.
    pub interpreted: Arc<Vec<mlb_model::Service>>,
    /// Every diagnostic of every stage.
    pub diagnostics: Vec<Diagnostic>,
    /// Services denied by policy plugins: (policy, backend). Filled by
    /// [`Generator`] from the plugin set's report; empty from [`generate`].
    pub denied: Vec<(String, String)>,
    /// Plugins that failed (once per failed call), as `denied`.
    pub plugin_failures: Vec<String>,
    /// Apps read.
    pub apps: usize,
    /// Services rendered.
    pub services: usize,
    /// Stage durations.
    pub timings: Timings,
}

/// Run the pure path on one `/v2/apps` body (without a health-result cache
/// carried over from earlier runs).
pub fn generate(
    body: &[u8],
    resolver: &mut Resolver,
    interpreter: &mut dyn LabelInterpreter,
    renderer: &mut Renderer,
    options: &InterpretOptions,
    settings: &RenderSettings,
) -> Result<Generated, PipelineError> {
    let mut health = HealthCache::new(1);
    let t0 = Instant::now();
    let normalized = decode(body, resolver, &mut health, options)?;
    finish(normalized, t0, interpreter, renderer, options, settings)
}

/// JSON → apps, with health results carried over.
fn decode(
    body: &[u8],
    resolver: &mut Resolver,
    health: &mut HealthCache,
    options: &InterpretOptions,
) -> Result<mlb_core::normalize::Normalized, PipelineError> {
    let mut normalized = normalize_apps(body, |host| resolver.resolve(host))?;
    if options.health_check {
        health.apply(&mut normalized.apps);
    }
    Ok(normalized)
}

/// Apps → services → config. The apps are freed before rendering.
fn finish(
    mut normalized: mlb_core::normalize::Normalized,
    t0: Instant,
    interpreter: &mut dyn LabelInterpreter,
    renderer: &mut Renderer,
    options: &InterpretOptions,
    settings: &RenderSettings,
) -> Result<Generated, PipelineError> {
    let t1 = Instant::now();
    let interpretation = interpreter.interpret(&normalized.apps, options)?;
    let apps = normalized.apps.len();
    // Freed here, before rendering, not on a helper thread: the renderer's
    // own helper thread would otherwise often start while that one still
    // holds the allocator arena the apps' memory went back to, and take a
    // fresh arena (+11 MB peak RSS at 10,000 apps).
    drop(std::mem::take(&mut normalized.apps));
    let t2 = Instant::now();
    let rendered = renderer.render(&interpretation.services, settings);
    if let Some(fatal) = rendered.fatal.clone() {
        return Err(PipelineError::Template(fatal));
    }
    let t3 = Instant::now();
    let mut diagnostics = normalized.diagnostics;
    diagnostics.extend(interpretation.diagnostics);
    diagnostics.extend(rendered.diagnostics.iter().cloned());
    Ok(Generated {
        apps,
        services: rendered.backends.len(),
        rendered,
        interpreted: Arc::new(interpretation.services),
        diagnostics,
        denied: Vec::new(),
        plugin_failures: Vec::new(),
        timings: Timings {
            parse_us: (t1 - t0).as_micros(),
            interpret_us: (t2 - t1).as_micros(),
            render_us: (t3 - t2).as_micros(),
            changed_only: false,
        },
    })
}
