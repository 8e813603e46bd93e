//! The default label rules compiled natively: the same code the default
//! plugin runs, for the WASM-versus-native comparison and as a fallback for
//! tests.

use mlb_core::{InterpretError, Interpretation, LabelInterpreter};
use mlb_model::{App, InterpretOptions};

/// marathon-lb's label rules without a WASM sandbox.
#[derive(Debug, Default, Clone, Copy)]
pub struct NativeLabelRules;

impl LabelInterpreter for NativeLabelRules {
    fn interpret(
        &mut self,
        apps: &[App],
        options: &InterpretOptions,
    ) -> Result<Interpretation, InterpretError> {
        let out = mlb_label_rules::interpret(apps, options);
        Ok(Interpretation {
            services: out.services,
            diagnostics: out.diagnostics,
        })
    }
}
