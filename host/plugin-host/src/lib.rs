//! The WASM plugin host: loads label, filter and policy plugins (WIT
//! package `mlb:plugins`, `wit/mlb-plugins.wit`) and runs them under
//! wasmtime with no capabilities unless granted.
//!
//! A plugin is compiled once (or loaded from the on-disk compile cache),
//! inspected — world and WIT version from its exports, capabilities from
//! its imports — and pre-linked; every call gets a fresh store with a
//! memory cap and an epoch deadline. A trap (panic, out of memory,
//! deadline) becomes an error of that call, never a crash of the host.
//!
//! # Layout
//! - [`spec`]: the `--plugin PATH[,key=value…]` flag.
//! - [`inspect`](mod@inspect): world, version and import checks.
//! - `runtime`: the shared engine, linker and compile path.
//! - `cache`: the on-disk compile cache (the crate's one `unsafe` block).
//! - `sandbox`: stores, limits and the empty WASI context.
//! - `label`, `filter`, `policy`: one type per world.
//! - `chain`: default rules → custom label plugins → policies, with failure
//!   isolation ([`PluginSet`]).
//! - `isolate`: re-running on halves to find failing apps.
//! - `memo`: reusing the default rules' output for unchanged apps.
//! - `native`: the default rules compiled natively (benchmarks, tests).
//! - `convert`: model records ↔ WIT records.
//! - `error`: [`PluginError`] (which plugin, what is wrong) and
//!   [`LoadError`] (which loading step failed, with its cause as `source()`).

mod cache;
mod chain;
mod convert;
mod error;
mod filter;
pub mod inspect;
mod isolate;
mod label;
mod memo;
mod native;
mod policy;
mod runtime;
mod sandbox;
pub mod spec;

use std::path::PathBuf;
use std::time::Duration;

pub use cache::CompileCache;
pub use chain::{PluginReport, PluginSet};
pub use convert::drop_elsewhere;
pub use error::{BoxError, LoadError, PluginError, WasmError};
pub use filter::WasmFilterPlugin;
pub use inspect::{Inspection, WIT_VERSION, World, inspect};
pub use label::{Split, WasmLabelPlugin};
pub use memo::Memoized;
pub use native::NativeLabelRules;
pub use policy::WasmPolicyPlugin;
pub use runtime::{CompileSource, Compiled, PluginRuntime};
pub use spec::{Capability, Grants, PluginSpec, SpecError};

/// Bindings for the three worlds; the shared `types` and `host-log`
/// interfaces are generated once (in `label`) and reused.
mod bindings {
    pub mod label {
        wasmtime::component::bindgen!({
            world: "label-plugin",
            path: "../../wit",
        });
    }
    pub mod filter {
        wasmtime::component::bindgen!({
            world: "filter-plugin",
            path: "../../wit",
            with: {
                "mlb:plugins/types": super::label::mlb::plugins::types,
                "mlb:plugins/host-log": super::label::mlb::plugins::host_log,
            },
        });
    }
    pub mod policy {
        wasmtime::component::bindgen!({
            world: "policy-plugin",
            path: "../../wit",
            with: {
                "mlb:plugins/types": super::label::mlb::plugins::types,
                "mlb:plugins/host-log": super::label::mlb::plugins::host_log,
            },
        });
    }
}

/// The default label plugin, built from `plugins/default-label` and embedded.
pub const DEFAULT_LABEL_PLUGIN: &[u8] = include_bytes!(env!("MLB_DEFAULT_LABEL_WASM"));

/// Whether the embedded plugin was built from source in this build
/// (`built`) or taken from `plugins/prebuilt/` (`prebuilt`).
pub const DEFAULT_LABEL_ORIGIN: &str = env!("MLB_DEFAULT_LABEL_ORIGIN");

/// Resource limits of one plugin call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Linear-memory cap in bytes.
    pub memory_bytes: usize,
    /// Wall-clock budget of one call.
    pub deadline: Duration,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 512 << 20,
            deadline: Duration::from_secs(10),
        }
    }
}

/// A loaded plugin of any world.
#[derive(Debug)]
pub enum LoadedPlugin {
    /// A label plugin.
    Label(WasmLabelPlugin),
    /// A filter plugin.
    Filter(WasmFilterPlugin),
    /// A policy plugin.
    Policy(WasmPolicyPlugin),
}

/// What loading a plugin found and cost.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Plugin name.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// World, imports, exports, capabilities.
    pub inspection: Inspection,
    /// Compiled now or loaded from the cache.
    pub source: CompileSource,
    /// Compile or cache-load time.
    pub compile: Duration,
    /// Inspection and pre-linking (and, for filters, asking for their names).
    pub link: Duration,
}

/// Read, compile (or load from the cache), inspect and pre-link one plugin.
pub fn load_plugin(
    runtime: &PluginRuntime,
    spec: &PluginSpec,
) -> Result<(LoadedPlugin, LoadReport), PluginError> {
    let bytes = std::fs::read(&spec.path).map_err(|source| {
        PluginError::load(
            &spec.name,
            LoadError::Read {
                path: spec.path.clone(),
                source,
            },
        )
    })?;
    load_plugin_bytes(runtime, spec, &bytes)
}

/// [`load_plugin`] for bytes already in memory.
pub fn load_plugin_bytes(
    runtime: &PluginRuntime,
    spec: &PluginSpec,
    bytes: &[u8],
) -> Result<(LoadedPlugin, LoadReport), PluginError> {
    let compiled = runtime.compile(&spec.name, bytes)?;
    let start = std::time::Instant::now();
    let inspection = inspect(
        &spec.name,
        runtime.engine(),
        &compiled.component,
        &spec.grants,
    )?;
    let sandbox = sandbox::Sandbox::new(&spec.name, spec.limits, &spec.grants)?;
    let config = spec.config.clone();
    let component = &compiled.component;
    let loaded = match inspection.world {
        World::Label => {
            LoadedPlugin::Label(WasmLabelPlugin::new(runtime, component, sandbox, config)?)
        }
        World::Filter => {
            LoadedPlugin::Filter(WasmFilterPlugin::new(runtime, component, sandbox, config)?)
        }
        World::Policy => {
            LoadedPlugin::Policy(WasmPolicyPlugin::new(runtime, component, sandbox, config)?)
        }
    };
    let report = LoadReport {
        name: spec.name.clone(),
        path: spec.path.clone(),
        inspection,
        source: compiled.source,
        compile: compiled.elapsed,
        link: start.elapsed(),
    };
    Ok((loaded, report))
}

/// The controller's plugins: the embedded default label plugin (compiled
/// through `runtime`'s cache), then every `--plugin` in order. Label
/// plugins run in the order given, after the default; policies run after
/// every label plugin, in the order given.
pub fn load_set(
    runtime: &PluginRuntime,
    specs: &[PluginSpec],
) -> Result<(PluginSet, Vec<LoadReport>), PluginError> {
    load_chain(runtime, specs, true)
}

/// [`load_set`] for a single generation (the one-shot run): the default
/// rules are not wrapped in [`Memoized`] — there is nothing to reuse, and
/// remembering would copy every app and service.
pub fn load_set_once(
    runtime: &PluginRuntime,
    specs: &[PluginSpec],
) -> Result<(PluginSet, Vec<LoadReport>), PluginError> {
    load_chain(runtime, specs, false)
}

fn load_chain(
    runtime: &PluginRuntime,
    specs: &[PluginSpec],
    reuse: bool,
) -> Result<(PluginSet, Vec<LoadReport>), PluginError> {
    let default = WasmLabelPlugin::with_runtime(
        runtime,
        "default-label",
        DEFAULT_LABEL_PLUGIN,
        PluginLimits::default(),
    )?
    .split_independent(Split::for_this_machine());
    let mut set = if reuse {
        PluginSet::new(Box::new(Memoized::new(default)))
    } else {
        PluginSet::new(Box::new(default))
    };
    let mut reports = Vec::new();
    for spec in specs {
        let (plugin, report) = load_plugin(runtime, spec)?;
        tracing::info!(
            plugin = %report.name,
            world = report.inspection.world.name(),
            source = ?report.source,
            compile_ms = report.compile.as_secs_f64() * 1e3,
            "plugin loaded"
        );
        // A configuration the plugin refuses shows now, not at the first
        // reconcile: label plugins and policies get an empty batch (filter
        // plugins were already asked for their filters).
        let refused = |e: BoxError| PluginError::load(&report.name, LoadError::EmptyBatch(e));
        match plugin {
            LoadedPlugin::Label(p) => {
                p.call(&[], &[], &mlb_model::InterpretOptions::default())
                    .map_err(|e| refused(e.into()))?;
                set.push_label(p);
            }
            LoadedPlugin::Filter(p) => set.push_filter(p)?,
            LoadedPlugin::Policy(p) => {
                p.review(&[], &[]).map_err(|e| refused(e.into()))?;
                set.push_policy(p);
            }
        }
        reports.push(report);
    }
    Ok((set, reports))
}
