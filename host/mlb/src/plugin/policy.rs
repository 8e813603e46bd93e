//! Policy plugins: a verdict for each final service.

use mlb_model::{App, Service};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::bindings::policy::PolicyPluginPre;
use super::bindings::policy::exports::mlb::plugins::policy::Verdict;
use super::runtime::PluginRuntime;
use super::sandbox::{Sandbox, State, trap_message};
use super::{PluginError, convert};

/// A policy plugin compiled and pre-linked.
pub struct WasmPolicyPlugin {
    engine: Engine,
    pre: PolicyPluginPre<State>,
    sandbox: Sandbox,
    config: Vec<(String, String)>,
    peak_memory: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for WasmPolicyPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPolicyPlugin")
            .field("name", self.sandbox.plugin())
            .finish_non_exhaustive()
    }
}

impl WasmPolicyPlugin {
    /// Pre-link `component` (already inspected as a policy plugin).
    pub(crate) fn new(
        runtime: &PluginRuntime,
        component: &Component,
        sandbox: Sandbox,
        config: Vec<(String, String)>,
    ) -> Result<Self, PluginError> {
        let pre = runtime.prelink(
            sandbox.plugin(),
            component,
            "policy plugin",
            PolicyPluginPre::new,
        )?;
        Ok(Self {
            engine: runtime.engine().clone(),
            pre,
            sandbox,
            config,
            peak_memory: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Linear memory the last call used at its peak, in bytes.
    pub fn last_peak_memory(&self) -> usize {
        self.peak_memory.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.sandbox.plugin()
    }

    /// Its memory cap and call deadline.
    pub fn limits(&self) -> super::PluginLimits {
        self.sandbox.limits()
    }

    /// One verdict per service: `None` allows, `Some(reason)` denies. An
    /// error means no verdict at all (the caller fails closed).
    pub fn review(
        &self,
        apps: &[App],
        services: &[Service],
    ) -> Result<Vec<Option<String>>, String> {
        let mut call = self.sandbox.store(&self.engine)?;
        let instance = self
            .pre
            .instantiate(&mut call.store)
            .map_err(|e| format!("cannot instantiate: {e:#}"))?;
        let apps: Vec<_> = apps.iter().map(convert::app_to_wit).collect();
        let wit_services: Vec<_> = services.iter().map(convert::service_to_wit).collect();
        let result = instance.mlb_plugins_policy().call_review(
            &mut call.store,
            &apps,
            &wit_services,
            &self.config,
        );
        convert::drop_elsewhere((apps, wit_services));
        self.peak_memory.store(
            call.store.data().peak_memory(),
            std::sync::atomic::Ordering::Relaxed,
        );
        match result {
            Ok(Ok(verdicts)) if verdicts.len() == services.len() => Ok(verdicts
                .into_iter()
                .map(|v| match v {
                    Verdict::Allow => None,
                    Verdict::Deny(reason) => Some(reason),
                })
                .collect()),
            Ok(Ok(verdicts)) => Err(format!(
                "returned {} verdicts for {} services",
                verdicts.len(),
                services.len()
            )),
            Ok(Err(message)) => Err(format!("returned an error: {message}")),
            Err(trap) => Err(trap_message(&trap, &call.output)),
        }
    }
}
