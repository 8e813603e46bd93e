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

    /// Interpret only `apps`, apps of the last call's batch that changed
    /// since, for an interpreter that remembers that call (the plugin
    /// host's memo): their services and diagnostics, which replace theirs
    /// in the last result; every other app's stay valid. The apps keep
    /// their ids. `None`: this interpreter cannot tell that the others stay
    /// valid (it does not remember, the options changed, an app's result
    /// depends on other apps); call [`interpret`](Self::interpret) with
    /// every app instead.
    fn interpret_changed(
        &mut self,
        apps: &[App],
        options: &InterpretOptions,
    ) -> Option<Result<Interpretation, InterpretError>> {
        let _ = (apps, options);
        None
    }
}
