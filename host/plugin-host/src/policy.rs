//! Policy plugins: a verdict for each final service.

use mlb_model::{App, Service};
use wasmtime::component::Component;

use super::bindings::policy::PolicyPluginPre;
use super::bindings::policy::exports::mlb::plugins::policy::Verdict;
use super::runtime::PluginRuntime;
use super::sandbox::{Prelinked, Sandbox, State, trap_message};
use super::{PluginError, convert};

/// A policy plugin compiled and pre-linked.
pub struct WasmPolicyPlugin {
    inner: Prelinked<PolicyPluginPre<State>>,
}

impl std::fmt::Debug for WasmPolicyPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPolicyPlugin")
            .field("name", &self.inner.name())
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
        let inner = Prelinked::new(
            runtime,
            component,
            sandbox,
            config,
            "policy plugin",
            PolicyPluginPre::new,
        )?;
        Ok(Self { inner })
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
    pub fn limits(&self) -> super::PluginLimits {
        self.inner.sandbox.limits()
    }

    /// One verdict per service: `None` allows, `Some(reason)` denies. An
    /// error means no verdict at all (the caller fails closed).
    pub fn review(
        &self,
        apps: &[App],
        services: &[Service],
    ) -> Result<Vec<Option<String>>, String> {
        let mut call = self.inner.store()?;
        let instance = self
            .inner
            .pre
            .instantiate(&mut call.store)
            .map_err(|e| format!("cannot instantiate: {e:#}"))?;
        let apps: Vec<_> = apps.iter().map(convert::app_to_wit).collect();
        let wit_services: Vec<_> = services.iter().map(convert::service_to_wit).collect();
        let result = instance.mlb_plugins_policy().call_review(
            &mut call.store,
            &apps,
            &wit_services,
            &self.inner.config,
        );
        convert::drop_elsewhere((apps, wit_services));
        self.inner.record_peak(&call.store);
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
