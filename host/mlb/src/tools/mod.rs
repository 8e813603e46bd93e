//! `marathon-lb plugin check` and `marathon-lb plugin list`.
//!
//! # Layout
//! - this file: both tools and their report.
//! - `sample_apps.json`: the apps `plugin check` runs on by default (a
//!   vhost app, a Traefik-labelled app, an app with a template override).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use mlb_core::engine::TemplateFilter;
use mlb_core::{LabelInterpreter, normalize_apps};
use mlb_model::{App, InterpretOptions};
use sha2::{Digest, Sha256};

use mlb_plugin_host::{
    CompileSource, LoadError, LoadReport, LoadedPlugin, PluginError, PluginRuntime, PluginSpec,
    WIT_VERSION, WasmLabelPlugin, load_plugin,
};

/// The built-in sample apps.
pub const SAMPLE_APPS: &str = include_str!("sample_apps.json");

/// Why a tool could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The plugin cannot be loaded.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The apps file cannot be read or parsed.
    #[error("apps {path}: {message}")]
    Apps {
        /// Which file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn describe(report: &LoadReport, out: &mut String) {
    let i = &report.inspection;
    let _ = writeln!(out, "plugin:       {}", report.name);
    let _ = writeln!(out, "file:         {}", report.path.display());
    let _ = writeln!(
        out,
        "world:        {} (mlb:plugins@{WIT_VERSION})",
        i.world.name()
    );
    let source = match report.source {
        CompileSource::Cache => "loaded from the compile cache",
        CompileSource::Compiled => "compiled",
    };
    let _ = writeln!(
        out,
        "load:         {:.1} ms {source}, {:.1} ms inspect + link",
        ms(report.compile),
        ms(report.link)
    );
    let caps: Vec<&str> = i.capabilities.iter().map(|c| c.word()).collect();
    let _ = writeln!(
        out,
        "capabilities: {}",
        if caps.is_empty() {
            "none (pure computation)".to_owned()
        } else {
            caps.join(", ")
        }
    );
    let _ = writeln!(out, "exports:      {}", i.exports.join(", "));
    let _ = writeln!(out, "imports:      {}", i.imports.join(", "));
}

fn read_apps(path: Option<&Path>) -> Result<Vec<App>, ToolError> {
    let (name, body) = match path {
        Some(p) => (
            p.display().to_string(),
            std::fs::read(p).map_err(|e| ToolError::Apps {
                path: p.display().to_string(),
                message: e.to_string(),
            })?,
        ),
        None => (
            "(built-in samples)".to_owned(),
            SAMPLE_APPS.as_bytes().to_vec(),
        ),
    };
    let normalized =
        normalize_apps(&body, |host| Some(host.to_owned())).map_err(|e| ToolError::Apps {
            path: name,
            message: e.to_string(),
        })?;
    Ok(normalized.apps)
}

/// `plugin check`: print the report to `out`; `Ok(false)` if the plugin
/// failed its smoke run.
pub fn check(
    spec: &PluginSpec,
    apps: Option<&Path>,
    cache_dir: Option<&Path>,
    out: &mut String,
) -> Result<bool, ToolError> {
    let runtime = PluginRuntime::new(cache_dir)?;
    let (plugin, report) = load_plugin(&runtime, spec)?;
    describe(&report, out);
    let warm_start = Instant::now();
    let _ = load_plugin(&runtime, spec)?;
    let _ = writeln!(
        out,
        "warm load:    {:.1} ms (cache {})",
        ms(warm_start.elapsed()),
        if runtime.cache().is_some() {
            "on"
        } else {
            "off: compiled again"
        }
    );
    let apps = read_apps(apps)?;
    let options = InterpretOptions {
        groups: vec!["external".to_owned()],
        ..InterpretOptions::default()
    };
    let mut default = WasmLabelPlugin::with_runtime(
        &runtime,
        "default-label",
        mlb_plugin_host::DEFAULT_LABEL_PLUGIN,
        mlb_plugin_host::PluginLimits::default(),
    )?;
    let base = default
        .interpret(&apps, &options)
        .map_err(|e| PluginError::load("default-label", LoadError::Call(e.into())))?;
    let _ = writeln!(
        out,
        "smoke run:    {} apps, {} services from the default rules",
        apps.len(),
        base.services.len()
    );
    let ok = match plugin {
        LoadedPlugin::Label(p) => {
            let start = Instant::now();
            match p.call(&apps, &base.services, &options) {
                Ok(result) => {
                    let took = start.elapsed();
                    let _ = writeln!(
                        out,
                        "interpret:    {:.2} ms ({:.1} µs per app), peak memory {:.1} MiB",
                        ms(took),
                        took.as_secs_f64() * 1e6 / apps.len().max(1) as f64,
                        p.last_peak_memory() as f64 / (1 << 20) as f64
                    );
                    for s in &result.services {
                        let _ = writeln!(
                            out,
                            "  service {} app={} port={} mode={} vhost={} servers={}",
                            s.backend,
                            s.app_id,
                            s.service_port,
                            s.mode,
                            s.hostname.as_deref().unwrap_or("-"),
                            s.servers.len()
                        );
                    }
                    for d in &result.diagnostics {
                        let _ = writeln!(
                            out,
                            "  diagnostic {:?} {}: {}",
                            d.severity, d.app_id, d.message
                        );
                    }
                    let faults: Vec<String> = result
                        .services
                        .iter()
                        .filter_map(|s| {
                            mlb_core::validate::check_plugin_service(s)
                                .err()
                                .map(|f| format!("{}: {f}", s.backend))
                        })
                        .collect();
                    for f in &faults {
                        let _ = writeln!(out, "  INVALID service {f}");
                    }
                    faults.is_empty()
                }
                Err(e) => {
                    let _ = writeln!(out, "FAILED: {e}");
                    false
                }
            }
        }
        LoadedPlugin::Policy(p) => {
            let start = Instant::now();
            match p.review(&apps, &base.services) {
                Ok(verdicts) => {
                    let _ = writeln!(
                        out,
                        "review:       {:.2} ms, peak memory {:.1} MiB",
                        ms(start.elapsed()),
                        p.last_peak_memory() as f64 / (1 << 20) as f64
                    );
                    for (s, v) in base.services.iter().zip(verdicts) {
                        match v {
                            None => {
                                let _ = writeln!(out, "  allow {} ({})", s.backend, s.app_id);
                            }
                            Some(reason) => {
                                let _ =
                                    writeln!(out, "  deny  {} ({}): {reason}", s.backend, s.app_id);
                            }
                        }
                    }
                    true
                }
                Err(e) => {
                    let _ = writeln!(out, "FAILED: {e}");
                    false
                }
            }
        }
        LoadedPlugin::Filter(p) => {
            let p = Arc::new(p);
            let _ = writeln!(out, "filters:      {}", p.filters().join(", "));
            let mut ok = true;
            for f in p.filters() {
                let start = Instant::now();
                match p.apply(f, "Shop Web/10001", &[]) {
                    Ok(v) => {
                        let _ = writeln!(
                            out,
                            "  {{value|{f}}} on \"Shop Web/10001\" → \"{v}\" ({:.3} ms)",
                            ms(start.elapsed())
                        );
                    }
                    Err(e) if e.contains("trapped") || e.contains("timed out") => {
                        let _ = writeln!(out, "  {{value|{f}}} FAILED: {e}");
                        ok = false;
                    }
                    Err(e) => {
                        let _ = writeln!(out, "  {{value|{f}}} without arguments: error: {e}");
                    }
                }
            }
            ok
        }
    };
    let _ = writeln!(out, "result:       {}", if ok { "ok" } else { "FAILED" });
    Ok(ok)
}

fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `plugin list`: one block per plugin the controller would load.
pub fn list(
    specs: &[PluginSpec],
    cache_dir: Option<&Path>,
    out: &mut String,
) -> Result<(), ToolError> {
    let runtime = PluginRuntime::new(cache_dir)?;
    let _ = writeln!(
        out,
        "compile cache: {}",
        runtime
            .cache()
            .map_or_else(|| "off".to_owned(), |c| c.dir().display().to_string())
    );
    let default = PluginSpec {
        path: PathBuf::from("(embedded)"),
        name: "default-label".into(),
        config: Vec::new(),
        limits: mlb_plugin_host::PluginLimits::default(),
        grants: Default::default(),
    };
    let (_, report) = mlb_plugin_host::load_plugin_bytes(
        &runtime,
        &default,
        mlb_plugin_host::DEFAULT_LABEL_PLUGIN,
    )?;
    let _ = writeln!(
        out,
        "1. {} [{}] sha256:{} built-in ({}) — {:.1} ms {:?}",
        report.name,
        report.inspection.world.name(),
        short_hash(mlb_plugin_host::DEFAULT_LABEL_PLUGIN),
        mlb_plugin_host::DEFAULT_LABEL_ORIGIN,
        ms(report.compile),
        report.source
    );
    for (n, spec) in specs.iter().enumerate() {
        let bytes = std::fs::read(&spec.path).map_err(|source| {
            PluginError::load(
                &spec.name,
                LoadError::Read {
                    path: spec.path.clone(),
                    source,
                },
            )
        })?;
        let (_, report) = mlb_plugin_host::load_plugin_bytes(&runtime, spec, &bytes)?;
        let caps: Vec<&str> = report
            .inspection
            .capabilities
            .iter()
            .map(|c| c.word())
            .collect();
        let _ = writeln!(
            out,
            "{}. {} [{}] sha256:{} {} — {:.1} ms {:?}; memory {} MiB, {} ms per call; \
             capabilities: {}; config keys: {}",
            n + 2,
            report.name,
            report.inspection.world.name(),
            short_hash(&bytes),
            spec.path.display(),
            ms(report.compile),
            report.source,
            spec.limits.memory_bytes >> 20,
            spec.limits.deadline.as_millis(),
            if caps.is_empty() {
                "none".to_owned()
            } else {
                caps.join(", ")
            },
            if spec.config.is_empty() {
                "none".to_owned()
            } else {
                spec.config
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
    }
    Ok(())
}
