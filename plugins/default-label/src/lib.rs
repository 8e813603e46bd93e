//! marathon-lb's default label plugin: the `label-plugin` world of
//! `wit/mlb-plugins.wit`, implemented by the rules of `mlb-label-rules`.
//!
//! Built for `wasm32-wasip2` (a component) and embedded in the `marathon-lb`
//! binary. It imports nothing but WASI's no-op defaults (no files, network,
//! clock or environment are granted by the host).
//!
//! # Layout
//! - this file: the WIT bindings and the exported `interpret`.
//! - `convert`: WIT records ↔ `mlb-model` records.

mod convert;

wit_bindgen::generate!({
    world: "label-plugin",
    path: "../../wit",
});

use exports::mlb::plugins::label_interpreter::{Guest, LabelOutput};
use mlb::plugins::types::{App, Config, InterpretOptions, Service};

struct DefaultLabels;

impl Guest for DefaultLabels {
    fn interpret(
        apps: Vec<App>,
        _services: Vec<Service>,
        options: InterpretOptions,
        _config: Config,
    ) -> Result<LabelOutput, String> {
        let apps: Vec<mlb_model::App> = apps.into_iter().map(Into::into).collect();
        let out = mlb_label_rules::interpret(&apps, &options.into());
        Ok(LabelOutput {
            services: out.services.into_iter().map(Into::into).collect(),
            diagnostics: out.diagnostics.into_iter().map(Into::into).collect(),
        })
    }
}

export!(DefaultLabels);
