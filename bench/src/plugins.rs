//! `mlb-bench --plugins`: what plugins cost — cold compile, warm load from
//! the compile cache, and work per app in a 10,000-app batch — for the
//! default plugin and every example.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use mlb_plugin_host::{
    DEFAULT_LABEL_PLUGIN, LoadedPlugin, PluginRuntime, PluginSpec, load_plugin_bytes,
};
use mlb_core::engine::TemplateFilter;
use mlb_core::{LabelInterpreter, normalize_apps};

use crate::measure::{Stat, options};

/// One plugin to measure.
struct Candidate {
    name: &'static str,
    bytes: Vec<u8>,
    extra: &'static str,
}

fn candidates() -> anyhow::Result<Vec<Candidate>> {
    let read = |p: PathBuf| std::fs::read(&p).with_context(|| format!("reading {}", p.display()));
    let ex = mlb_plugin_tests::example;
    Ok(vec![
        Candidate {
            name: "default-label (Rust, built in)",
            bytes: DEFAULT_LABEL_PLUGIN.to_vec(),
            extra: "",
        },
        Candidate {
            name: "traefik-labels (Rust)",
            bytes: read(ex("mlb_example_traefik_labels"))?,
            extra: "",
        },
        Candidate {
            name: "text-filters (Rust)",
            bytes: read(ex("mlb_example_text_filters"))?,
            extra: ",suffix=-x",
        },
        Candidate {
            name: "policy-vhost-domains (Rust)",
            bytes: read(ex("mlb_example_policy_vhost_domains"))?,
            extra: ",group.external=example.com,example.org",
        },
        Candidate {
            name: "policy-template-prefixes (Rust)",
            bytes: read(ex("mlb_example_policy_template_prefixes"))?,
            extra: ",prefixes=/platform/",
        },
        Candidate {
            name: "chaos fixture: apps in, nothing out (boundary cost)",
            bytes: read(ex("mlb_test_chaos"))?,
            extra: "",
        },
        Candidate {
            name: "chaos fixture: apps and services in and out (boundary cost)",
            bytes: read(ex("mlb_test_chaos"))?,
            extra: "",
        },
        Candidate {
            name: "python-owner-policy (Python)",
            bytes: read(mlb_plugin_tests::python_policy())?,
            extra: ",stub=files,clock,network",
        },
    ])
}

fn spec(dir: &Path, c: &Candidate) -> PluginSpec {
    // Generous limits: the benchmark measures, it does not enforce.
    format!(
        "{}{},timeout-ms=60000,memory-mib=2048",
        dir.join("plugin.wasm").display(),
        c.extra
    )
    .parse()
    .expect("valid spec")
}

/// The table, as markdown.
pub fn run(apps: usize, iterations: usize, seed: u64) -> anyhow::Result<String> {
    let iterations = iterations.max(1);
    let (body, _) = crate::synth::generate(apps, seed);
    let normalized = normalize_apps(&body, |h| Some(h.to_owned())).context("normalising")?;
    let options = options();
    let base = mlb_plugin_host::NativeLabelRules
        .interpret(&normalized.apps, &options)
        .context("native rules")?;
    let n_apps = normalized.apps.len();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "| plugin | size | cold compile ms | warm load ms (cache) | batch of {n_apps} apps, {} services: ms | µs per app | guest memory MiB |",
        base.services.len()
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for c in candidates()? {
        let tmp = tempfile::tempdir()?;
        let spec = spec(tmp.path(), &c);
        let cold_runs = if c.bytes.len() > 4 << 20 {
            1
        } else {
            iterations
        };
        let mut cold = Vec::new();
        for _ in 0..cold_runs {
            let runtime = PluginRuntime::new(None)?;
            let t = Instant::now();
            load_plugin_bytes(&runtime, &spec, &c.bytes)?;
            cold.push(t.elapsed());
        }
        let cache = tmp.path().join("cache");
        load_plugin_bytes(&PluginRuntime::new(Some(&cache))?, &spec, &c.bytes)?;
        let mut warm = Vec::new();
        let mut loaded = None;
        for _ in 0..iterations {
            let runtime = PluginRuntime::new(Some(&cache))?;
            let t = Instant::now();
            let (plugin, _) = load_plugin_bytes(&runtime, &spec, &c.bytes)?;
            warm.push(t.elapsed());
            loaded = Some(plugin);
        }
        let mut batch = Vec::new();
        let mut peak = 0usize;
        let loaded = loaded.expect("at least one iteration");
        for _ in 0..iterations {
            let t = Instant::now();
            match &loaded {
                LoadedPlugin::Label(p)
                    if c.name.starts_with("default") || c.name.contains("nothing out") =>
                {
                    p.call(&normalized.apps, &[], &options)?;
                }
                LoadedPlugin::Label(p) => {
                    p.call(&normalized.apps, &base.services, &options)?;
                }
                LoadedPlugin::Policy(p) => {
                    p.review(&normalized.apps, &base.services)
                        .map_err(anyhow::Error::msg)?;
                }
                LoadedPlugin::Filter(p) => {
                    for s in &base.services {
                        p.apply("slug", &s.backend, &[])
                            .map_err(anyhow::Error::msg)?;
                    }
                }
            }
            batch.push(t.elapsed());
            peak = match &loaded {
                LoadedPlugin::Label(p) => p.last_peak_memory(),
                LoadedPlugin::Policy(p) => p.last_peak_memory(),
                LoadedPlugin::Filter(_) => 0,
            };
        }
        let (cold, warm, batch) = (
            Stat::of(&mut cold),
            Stat::of(&mut warm),
            Stat::of(&mut batch),
        );
        let per_app = if matches!(loaded, LoadedPlugin::Filter(_)) {
            format!(
                "{:.2} per call",
                batch.min * 1e3 / base.services.len().max(1) as f64
            )
        } else {
            format!("{:.1}", batch.min * 1e3 / n_apps.max(1) as f64)
        };
        let _ = writeln!(
            out,
            "| {} | {} KB | {:.0} | {:.2} / {:.2} | {:.1} / {:.1} | {per_app} | {} |",
            c.name,
            c.bytes.len() / 1024,
            cold.min,
            warm.min,
            warm.median,
            batch.min,
            batch.median,
            if peak == 0 {
                "-".to_owned()
            } else {
                format!("{:.0}", peak as f64 / (1 << 20) as f64)
            },
        );
    }
    let _ = writeln!(
        out,
        "\nmin / median of {iterations} runs (cold compile of components over 4 MB: one run). \
         Filters: one `slug` call per service on one long-lived instance."
    );
    Ok(out)
}
