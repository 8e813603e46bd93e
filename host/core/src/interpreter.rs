//! The seam between the core and label rules (WASM plugins or native code).

use mlb_model::{App, Diagnostic, InterpretOptions, Service};

/// Services and diagnostics for one batch of apps.
#[derive(Debug, Clone, Default)]
pub struct Interpretation {
    /// Services to render.
    pub services: Vec<Service>,
    /// Why apps, services or tasks were left out.
    pub diagnostics: Vec<Diagnostic>,
}

/// Why a label interpreter produced nothing for a batch.
///
/// Not retryable as is: the interpreter (plugin) itself failed, so the caller
/// keeps the last good config and reports.
#[derive(Debug, thiserror::Error)]
pub enum InterpretError {
    /// The plugin trapped (panic, out of memory, deadline) or returned an error.
    #[error("label plugin {plugin} failed: {message}")]
    Plugin {
        /// Which plugin.
        plugin: String,
        /// What happened, including the guest's panic message when known.
        message: String,
    },
}

/// Turns apps into services. Implemented by the WASM plugin host and by the
/// native build of the default rules; called once per reconcile with every app.
pub trait LabelInterpreter {
    /// Interpret one batch of apps.
    fn interpret(
        &mut self,
        apps: &[App],
        options: &InterpretOptions,
    ) -> Result<Interpretation, InterpretError>;
}
