//! Label plugins: apps (and the services so far) in, services out.

use mlb_core::{InterpretError, Interpretation, LabelInterpreter};
use mlb_model::{App, InterpretOptions, Service};
use wasmtime::component::Component;

use super::bindings::label::LabelPluginPre;
use super::bindings::label::mlb::plugins::types as wit;
use super::runtime::PluginRuntime;
use super::sandbox::{Prelinked, Sandbox, State, trap_message};
use super::{PluginError, PluginLimits, convert};

/// A label plugin compiled and pre-linked, ready to be called.
pub struct WasmLabelPlugin {
    inner: Prelinked<LabelPluginPre<State>>,
}

impl std::fmt::Debug for WasmLabelPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmLabelPlugin")
            .field("name", &self.inner.name())
            .field("limits", &self.inner.sandbox.limits())
            .finish_non_exhaustive()
    }
}

impl WasmLabelPlugin {
    /// Pre-link `component` (already inspected as a label plugin).
    pub(crate) fn new(
        runtime: &PluginRuntime,
        component: &Component,
        sandbox: Sandbox,
        config: Vec<(String, String)>,
    ) -> Result<Self, PluginError> {
        let inner = Prelinked::new(
            runtime,
            component,
            sandbox,
            config,
            "label plugin",
            LabelPluginPre::new,
        )?;
        Ok(Self { inner })
    }

    /// Compile and pre-link the label plugin `bytes` with a private engine
    /// and no disk cache, granting nothing.
    pub fn load(name: &str, bytes: &[u8], limits: PluginLimits) -> Result<Self, PluginError> {
        let runtime = PluginRuntime::new(None)?;
        Self::with_runtime(&runtime, name, bytes, limits)
    }

    /// Compile (or load from the cache) and pre-link the label plugin
    /// `bytes` on `runtime`, granting nothing.
    pub fn with_runtime(
        runtime: &PluginRuntime,
        name: &str,
        bytes: &[u8],
        limits: PluginLimits,
    ) -> Result<Self, PluginError> {
        let compiled = runtime.compile(name, bytes)?;
        let grants = super::Grants::default();
        let inspection = super::inspect(name, runtime.engine(), &compiled.component, &grants)?;
        if inspection.world != super::World::Label {
            return Err(PluginError::World {
                plugin: name.to_owned(),
                message: format!("is a {}, not a label plugin", inspection.world.name()),
            });
        }
        let sandbox = Sandbox::new(name, limits, &grants)?;
        Self::new(runtime, &compiled.component, sandbox, Vec::new())
    }

    /// The embedded default plugin.
    pub fn default_plugin(limits: PluginLimits) -> Result<Self, PluginError> {
        Self::load("default-label", super::DEFAULT_LABEL_PLUGIN, limits)
    }

    /// Linear memory the last call used at its peak, in bytes.
    pub fn last_peak_memory(&self) -> usize {
        self.inner.last_peak_memory()
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Its memory cap and call deadline.
    pub fn limits(&self) -> PluginLimits {
        self.inner.sandbox.limits()
    }

    fn fail(&self, message: String) -> InterpretError {
        InterpretError::Plugin {
            plugin: self.name().to_owned(),
            message,
        }
    }

    /// Interpret `apps`, given the services of the previous plugin.
    pub fn call(
        &self,
        apps: &[App],
        services: &[Service],
        options: &InterpretOptions,
    ) -> Result<Interpretation, InterpretError> {
        let mut call = self.inner.store().map_err(|e| self.fail(e))?;
        let instance = self
            .inner
            .pre
            .instantiate(&mut call.store)
            .map_err(|e| self.fail(format!("cannot instantiate: {e:#}")))?;
        let apps: Vec<wit::App> = apps.iter().map(convert::app_to_wit).collect();
        let services: Vec<wit::Service> = services.iter().map(convert::service_to_wit).collect();
        let options = convert::options_to_wit(options);
        let result = instance.mlb_plugins_label_interpreter().call_interpret(
            &mut call.store,
            &apps,
            &services,
            &options,
            &self.inner.config,
        );
        // Freeing ~10 MB of copies at 10,000 apps takes ~17 ms: off the
        // reconcile's critical path.
        convert::drop_elsewhere((apps, services));
        self.inner.record_peak(&call.store);
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
                ..Interpretation::default()
            }),
            Ok(Err(message)) => Err(self.fail(format!("returned an error: {message}"))),
            Err(trap) => Err(self.fail(trap_message(&trap, &call.output))),
        }
    }
}

impl LabelInterpreter for WasmLabelPlugin {
    fn interpret(
        &mut self,
        apps: &[App],
        options: &InterpretOptions,
    ) -> Result<Interpretation, InterpretError> {
        self.call(apps, &[], options)
    }
}
