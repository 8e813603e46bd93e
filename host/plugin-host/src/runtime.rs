//! The shared wasmtime engine (one epoch ticker for every plugin), the
//! linker, and compilation through the on-disk cache.

use std::path::Path;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Config, Engine};

use super::bindings::label::LabelPlugin;
use super::cache::{CompileCache, Miss, key};
use super::sandbox::{State, TICK};
use super::{LoadError, PluginError, WasmError};

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileSource {
    /// Compiled now (and stored in the cache if there is one).
    Compiled,
    /// Loaded from the on-disk cache.
    Cache,
}

/// A compiled component and how long it took.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The component.
    pub component: Component,
    /// Where it came from.
    pub source: CompileSource,
    /// Time to compile or load it.
    pub elapsed: Duration,
}

/// The engine and linker every plugin shares.
pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<State>,
    cache: Option<CompileCache>,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

fn engine_error(e: impl Into<super::BoxError>) -> PluginError {
    PluginError::load("(engine)", LoadError::Engine(e.into()))
}

/// [`engine_error`] for wasmtime's errors (shown with their context chain).
fn wasm_engine_error(e: wasmtime::Error) -> PluginError {
    engine_error(WasmError(e))
}

impl PluginRuntime {
    /// An engine with epoch interruption and a background ticker (the thread
    /// ends when the engine is dropped), and an optional compile cache.
    pub fn new(cache_dir: Option<&Path>) -> Result<Self, PluginError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        // For profiling plugins with `perf`: /tmp/perf-<pid>.map names the
        // compiled guest functions.
        if std::env::var_os("MLB_WASM_PERFMAP").is_some_and(|v| v == "1") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(wasm_engine_error)?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .map_err(engine_error)?;
        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(wasm_engine_error)?;
        LabelPlugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(wasm_engine_error)?;
        let cache = match cache_dir {
            Some(dir) => match CompileCache::open(dir) {
                Ok(cache) => Some(cache),
                Err(e) => {
                    tracing::warn!("plugin compile cache disabled: {e}");
                    None
                }
            },
            None => None,
        };
        Ok(Self {
            engine,
            linker,
            cache,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Link `component` against the host's imports once; `typed` then
    /// checks its exports against one world's bindings (`kind` names the
    /// world in the error).
    pub(crate) fn prelink<P>(
        &self,
        plugin: &str,
        component: &Component,
        kind: &str,
        typed: impl FnOnce(InstancePre<State>) -> wasmtime::Result<P>,
    ) -> Result<P, PluginError> {
        let instance_pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| PluginError::load(plugin, LoadError::Link(WasmError(e))))?;
        typed(instance_pre).map_err(|e| {
            let source = WasmError(e);
            PluginError::World {
                plugin: plugin.to_owned(),
                message: format!("not a {kind}: {source}"),
                source: Some(source),
            }
        })
    }

    /// The compile cache, if enabled.
    pub fn cache(&self) -> Option<&CompileCache> {
        self.cache.as_ref()
    }

    /// Compile `bytes`, or load the cached compilation.
    pub fn compile(&self, plugin: &str, bytes: &[u8]) -> Result<Compiled, PluginError> {
        let start = Instant::now();
        let key = self.cache.as_ref().map(|_| key(&self.engine, bytes));
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            match cache.load(&self.engine, key) {
                Ok(component) => {
                    return Ok(Compiled {
                        component,
                        source: CompileSource::Cache,
                        elapsed: start.elapsed(),
                    });
                }
                Err(Miss::Absent) => {}
                Err(Miss::Rejected(why)) => {
                    tracing::warn!(plugin, "cached compilation not used ({why}); recompiling")
                }
            }
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| PluginError::load(plugin, LoadError::Compile(WasmError(e))))?;
        if let (Some(cache), Some(key)) = (&self.cache, &key)
            && let Err(e) = cache.store(key, &component)
        {
            tracing::warn!(plugin, "cannot store compiled plugin in the cache: {e}");
        }
        Ok(Compiled {
            component,
            source: CompileSource::Compiled,
            elapsed: start.elapsed(),
        })
    }
}
