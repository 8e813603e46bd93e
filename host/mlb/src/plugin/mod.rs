//! The WASM plugin host: the one place that generates bindings for
//! `wit/mlb-plugins.wit` and runs label plugins under wasmtime.
//!
//! A plugin is compiled once and pre-instantiated; every call gets a fresh
//! store with a memory cap and an epoch deadline, and no capabilities: an
//! empty WASI context (no files, environment, network or arguments), with
//! the guest's stderr captured so a panic message can be reported. A trap
//! (panic, out of memory, deadline) becomes an [`InterpretError`], never a
//! crash of the host.

mod convert;
mod native;

use std::sync::Arc;
use std::time::Duration;

use mlb_core::{InterpretError, Interpretation, LabelInterpreter};
use mlb_model::{App, InterpretOptions};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

pub use native::NativeLabelRules;

mod bindings {
    wasmtime::component::bindgen!({
        world: "label-plugin",
        path: "../../wit",
    });
}

use bindings::mlb::plugins::types as wit;

/// The default label plugin, built from `plugins/default-label` and embedded.
pub const DEFAULT_LABEL_PLUGIN: &[u8] = include_bytes!(env!("MLB_DEFAULT_LABEL_WASM"));

/// Whether the embedded plugin was built from source in this build
/// (`built`) or taken from `plugins/prebuilt/` (`prebuilt`).
pub const DEFAULT_LABEL_ORIGIN: &str = env!("MLB_DEFAULT_LABEL_ORIGIN");

/// Epoch ticks are 10 ms apart.
const TICK: Duration = Duration::from_millis(10);

/// Resource limits of one plugin call.
#[derive(Debug, Clone, Copy)]
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

/// A plugin that cannot be loaded. Fatal at start-up.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Compilation, linking or pre-instantiation failed.
    #[error("plugin {plugin}: {message}")]
    Load {
        /// Which plugin.
        plugin: String,
        /// What went wrong.
        message: String,
    },
}

/// Per-call store data: WASI context (empty), resource table and limits.
struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    plugin: Arc<str>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit::Host for State {}

impl bindings::mlb::plugins::host_log::Host for State {
    fn log(&mut self, level: wit::Severity, message: String) {
        let plugin = &*self.plugin;
        match level {
            wit::Severity::Info => tracing::info!(plugin, "{message}"),
            wit::Severity::Warning => tracing::warn!(plugin, "{message}"),
            wit::Severity::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

/// A label plugin compiled and pre-linked, ready to be called.
pub struct WasmLabelPlugin {
    name: Arc<str>,
    engine: Engine,
    pre: bindings::LabelPluginPre<State>,
    limits: PluginLimits,
}

impl std::fmt::Debug for WasmLabelPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmLabelPlugin")
            .field("name", &self.name)
            .field("limits", &self.limits)
            .finish()
    }
}

fn load_error(plugin: &str, e: impl std::fmt::Display) -> PluginError {
    PluginError::Load {
        plugin: plugin.to_owned(),
        message: e.to_string(),
    }
}

/// An engine with epoch interruption and a background ticker (the thread
/// ends when the engine is dropped).
fn new_engine() -> Result<Engine, PluginError> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    let engine = Engine::new(&config).map_err(|e| load_error("(engine)", e))?;
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
        .map_err(|e| load_error("(engine)", e))?;
    Ok(engine)
}

impl WasmLabelPlugin {
    /// Compile and pre-link the component `bytes`.
    pub fn load(name: &str, bytes: &[u8], limits: PluginLimits) -> Result<Self, PluginError> {
        let engine = new_engine()?;
        let component = Component::new(&engine, bytes).map_err(|e| load_error(name, e))?;
        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| load_error(name, e))?;
        bindings::LabelPlugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| load_error(name, e))?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| load_error(name, format!("{e:#}")))?;
        let pre = bindings::LabelPluginPre::new(instance_pre)
            .map_err(|e| load_error(name, format!("not a label plugin: {e:#}")))?;
        Ok(Self {
            name: name.into(),
            engine,
            pre,
            limits,
        })
    }

    /// The embedded default plugin.
    pub fn default_plugin(limits: PluginLimits) -> Result<Self, PluginError> {
        Self::load("default-label", DEFAULT_LABEL_PLUGIN, limits)
    }

    fn fail(&self, message: String) -> InterpretError {
        InterpretError::Plugin {
            plugin: self.name.to_string(),
            message,
        }
    }
}

impl LabelInterpreter for WasmLabelPlugin {
    fn interpret(
        &mut self,
        apps: &[App],
        options: &InterpretOptions,
    ) -> Result<Interpretation, InterpretError> {
        let stderr = MemoryOutputPipe::new(64 << 10);
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .build();
        let mut store = Store::new(
            &self.engine,
            State {
                wasi,
                table: ResourceTable::new(),
                limits,
                plugin: self.name.clone(),
            },
        );
        store.limiter(|s| &mut s.limits);
        let ticks = (self.limits.deadline.as_millis() / TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();

        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| self.fail(format!("cannot instantiate: {e:#}")))?;
        let apps: Vec<wit::App> = apps.iter().map(convert::app_to_wit).collect();
        let options = convert::options_to_wit(options);
        let result = instance.mlb_plugins_label_interpreter().call_interpret(
            &mut store,
            &apps,
            &[],
            &options,
        );
        match result {
            Ok(Ok(out)) => Ok(Interpretation {
                services: out
                    .services
                    .into_iter()
                    .map(convert::service_from_wit)
                    .collect(),
                diagnostics: out
                    .diagnostics
                    .into_iter()
                    .map(convert::diagnostic_from_wit)
                    .collect(),
            }),
            Ok(Err(message)) => Err(self.fail(message)),
            Err(trap) => {
                let guest = String::from_utf8_lossy(&stderr.contents())
                    .trim()
                    .to_owned();
                let mut message = format!("trapped: {trap:#}");
                if !guest.is_empty() {
                    message.push_str(&format!(" (guest stderr: {guest})"));
                }
                Err(self.fail(message))
            }
        }
    }
}
