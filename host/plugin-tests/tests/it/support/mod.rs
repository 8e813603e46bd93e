//! Helpers shared by the plugin tests: Marathon documents, plugin sets on
//! a shared compile cache, one generation.

#![allow(dead_code)]

use std::path::Path;
use std::sync::LazyLock;

use marathon_lb::pipeline::{Generated, generate};
use marathon_lb::resolve::Resolver;
use mlb_core::render::Renderer;
use mlb_core::{RenderSettings, Templates};
use mlb_model::InterpretOptions;
use mlb_plugin_host::{
    DEFAULT_LABEL_PLUGIN, LoadedPlugin, PluginLimits, PluginRuntime, PluginSet, PluginSpec,
    WasmLabelPlugin, load_plugin, load_set,
};
use serde_json::{Value, json};

/// An app with `labels`, one service port and `tasks` backends
/// (127.0.0.1:31000+i).
pub fn app(id: &str, port: u16, labels: Value, tasks: u16) -> Value {
    let tasks: Vec<Value> = (0..tasks)
        .map(|i| {
            json!({
                "id": format!("{}.{i}", id.trim_start_matches('/').replace('/', "_")),
                "host": "127.0.0.1",
                "state": "TASK_RUNNING",
                "ports": [31000 + port % 1000 * 10 + i],
                "ipAddresses": []
            })
        })
        .collect();
    json!({
        "id": id,
        "labels": labels,
        "instances": tasks.len(),
        "ports": [port],
        "portDefinitions": [{"port": port, "protocol": "tcp"}],
        "healthChecks": [],
        "tasks": tasks
    })
}

/// A `/v2/apps` document.
pub fn doc(apps: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "apps": apps })).expect("json")
}

/// Twelve ordinary apps of group `external`, half with vhosts.
pub fn ordinary_apps() -> Vec<Value> {
    (0..12u16)
        .map(|i| {
            let labels = if i % 2 == 0 {
                json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": format!("app{i}.example.com")})
            } else {
                json!({"HAPROXY_GROUP": "external"})
            };
            app(&format!("/fleet/app{i:02}"), 10100 + i, labels, 2)
        })
        .collect()
}

/// The runtime every test shares (one engine per test binary), with a
/// compile cache that survives across tests and runs.
pub fn runtime() -> &'static PluginRuntime {
    static RUNTIME: LazyLock<PluginRuntime> = LazyLock::new(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache");
        PluginRuntime::new(Some(&dir)).expect("runtime")
    });
    &RUNTIME
}

/// A `--plugin` value for `path` plus `extra` (`,key=value…`).
pub fn spec(path: &Path, extra: &str) -> PluginSpec {
    format!("{}{extra}", path.display()).parse().expect("spec")
}

/// The default plugin followed by `specs`.
pub fn plugins(specs: &[PluginSpec]) -> PluginSet {
    load_set(runtime(), specs).expect("plugins load").0
}

/// Like [`plugins`] but without the start-up check on an empty batch, to
/// reach the run-time handling of a plugin that fails on every batch.
pub fn plugins_unchecked(specs: &[PluginSpec]) -> PluginSet {
    let runtime = runtime();
    let default = WasmLabelPlugin::with_runtime(
        runtime,
        "default-label",
        DEFAULT_LABEL_PLUGIN,
        PluginLimits::default(),
    )
    .expect("default plugin");
    let mut set = PluginSet::new(Box::new(default));
    for spec in specs {
        match load_plugin(runtime, spec).expect("plugin loads").0 {
            LoadedPlugin::Label(p) => set.push_label(p),
            LoadedPlugin::Policy(p) => set.push_policy(p),
            LoadedPlugin::Filter(p) => set.push_filter(p).expect("no clash"),
        }
    }
    set
}

/// A renderer with the default templates (plus `overrides`) and the
/// filters of `set`.
pub fn renderer(set: &PluginSet, overrides: &[(&str, &str)]) -> Renderer {
    let mut sources = mlb_core::TemplateSources::default();
    for (name, text) in overrides {
        sources.env.insert((*name).to_owned(), (*text).to_owned());
    }
    let mut r = Renderer::new(Templates::resolve(&sources).expect("templates"));
    set.register_filters(&mut r);
    r
}

/// One generation of `body` with group `external`.
pub fn run(set: &mut PluginSet, renderer: &mut Renderer, body: &[u8]) -> Generated {
    let options = InterpretOptions {
        groups: vec!["external".to_owned()],
        ..InterpretOptions::default()
    };
    let mut generated = generate(
        body,
        &mut Resolver::new(16),
        set,
        renderer,
        &options,
        &RenderSettings::default(),
    )
    .expect("generation succeeds");
    let report = set.take_report();
    generated.denied = report.denied;
    generated.plugin_failures = report.failures;
    generated
}

/// Whether some diagnostic about `app` contains `needle`.
pub fn has_diagnostic(g: &Generated, app: &str, needle: &str) -> bool {
    g.diagnostics
        .iter()
        .any(|d| d.app_id == app && d.message.contains(needle))
}

/// All diagnostics, one per line (for assertion messages).
pub fn diagnostics(g: &Generated) -> String {
    g.diagnostics
        .iter()
        .map(|d| format!("{:?} {}: {}", d.severity, d.app_id, d.message))
        .collect::<Vec<_>>()
        .join("\n")
}
