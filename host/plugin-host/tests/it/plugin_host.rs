//! The WASM plugin host: the embedded default plugin gives exactly what the
//! same rules give natively, on every corpus input; a trapping plugin is an
//! error, not a crash; garbage is refused at load time.

use crate::support;

use mlb_core::{LabelInterpreter, normalize_apps};
use mlb_model::InterpretOptions;
use mlb_plugin_host::{NativeLabelRules, PluginLimits, WasmLabelPlugin};

fn options(groups: &[&str]) -> InterpretOptions {
    InterpretOptions {
        groups: groups.iter().map(|g| g.to_string()).collect(),
        min_serv_port_ip_per_task: 10050,
        max_serv_port_ip_per_task: 10100,
        ..InterpretOptions::default()
    }
}

#[test]
fn wasm_and_native_rules_agree_on_the_corpus() {
    let mut wasm = support::default_plugin(PluginLimits::default()).unwrap();
    let mut native = NativeLabelRules;
    let mut checked = 0;
    for entry in std::fs::read_dir(support::golden_dir()).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let body = std::fs::read(&path).unwrap();
        let apps = normalize_apps(&body, |h| Some(h.to_owned())).unwrap().apps;
        for opts in [
            options(&["*"]),
            InterpretOptions {
                strict_mode: true,
                health_check: true,
                ..options(&["external"])
            },
        ] {
            let a = wasm.interpret(&apps, &opts).unwrap();
            let b = native.interpret(&apps, &opts).unwrap();
            assert_eq!(a.services, b.services, "{}", path.display());
            assert_eq!(a.diagnostics, b.diagnostics, "{}", path.display());
        }
        checked += 1;
    }
    assert!(checked > 50);
}

#[test]
fn a_trap_is_an_error_and_the_plugin_stays_usable() {
    let body = std::fs::read(support::golden_dir().join("many-apps-ordering.json")).unwrap();
    let apps = normalize_apps(&body, |h| Some(h.to_owned())).unwrap().apps;
    // 64 KiB cannot hold the guest's heap: the allocation fails and the guest traps.
    let tiny = PluginLimits {
        memory_bytes: 64 << 10,
        ..PluginLimits::default()
    };
    let mut plugin = support::default_plugin(tiny).unwrap();
    let err = plugin.interpret(&apps, &options(&["*"])).unwrap_err();
    assert!(err.to_string().contains("default-label"), "{err}");
    // A fresh store per call: a later call with enough memory works again.
    let mut plugin = support::default_plugin(PluginLimits::default()).unwrap();
    assert!(
        !plugin
            .interpret(&apps, &options(&["*"]))
            .unwrap()
            .services
            .is_empty()
    );
}

#[test]
fn garbage_is_refused_at_load() {
    let err = WasmLabelPlugin::load("junk", b"not wasm", PluginLimits::default()).unwrap_err();
    assert!(err.to_string().contains("junk"), "{err}");
}
