//! One size, measured in this process: every stage of the pure path timed on
//! its own over several iterations, plus the whole path through
//! [`marathon_lb::pipeline::generate`], plus peak RSS.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use marathon_lb::pipeline;
use mlb_plugin_host::{Memoized, NativeLabelRules, PluginLimits, Split, WasmLabelPlugin};
use marathon_lb::resolve::Resolver;
use mlb_core::render::Renderer;
use mlb_core::{LabelInterpreter, RenderSettings, Templates, normalize_apps};
use mlb_model::{InterpretOptions, Service};
use serde::{Deserialize, Serialize};

/// Minimum and median of one stage, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Stat {
    /// Fastest iteration.
    pub min: f64,
    /// Median iteration.
    pub median: f64,
}

impl Stat {
    pub fn of(samples: &mut [Duration]) -> Self {
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let n = samples.len();
        let median = if n % 2 == 1 {
            ms(samples[n / 2])
        } else {
            (ms(samples[n / 2 - 1]) + ms(samples[n / 2])) / 2.0
        };
        Self {
            min: ms(samples[0]),
            median,
        }
    }
}

/// Everything measured for one input.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Row {
    /// Apps normalised.
    pub apps: usize,
    /// Tasks over all apps.
    pub tasks: usize,
    /// Services (backends) rendered.
    pub services: usize,
    /// Size of the `/v2/apps` document.
    pub json_bytes: usize,
    /// `haproxy.cfg` without `--haproxy-map`.
    pub config_bytes: usize,
    /// `haproxy.cfg` with `--haproxy-map`.
    pub config_map_bytes: usize,
    /// Both map files with `--haproxy-map`.
    pub maps_bytes: usize,
    /// Diagnostics of one generation.
    pub diagnostics: usize,
    /// Iterations per stage.
    pub iterations: usize,
    /// Compiling and pre-linking the embedded plugin (once).
    pub plugin_load_ms: f64,
    /// `Renderer::new(Templates::defaults())` (once).
    pub renderer_new_ms: f64,
    /// JSON parse and normalisation.
    pub parse: Stat,
    /// Label interpretation by the WASM default plugin.
    pub wasm: Stat,
    /// The same rules compiled natively.
    pub native: Stat,
    /// The WASM plugin in calls of 1,000 apps, one at a time.
    #[serde(default)]
    pub wasm_batched: Stat,
    /// The WASM plugin in calls of 1,000 apps, two at a time (the
    /// controller's default on a 2-core machine).
    #[serde(default)]
    pub wasm_split: Stat,
    /// Rendering without `--haproxy-map`.
    pub render: Stat,
    /// Rendering with `--haproxy-map`.
    pub render_map: Stat,
    /// `pipeline::generate` end to end, WASM plugin, no map.
    pub total: Stat,
    /// Interpretation by the WASM plugin behind `Memoized` after one app
    /// changed (the controller's steady state).
    pub wasm_one_change: Stat,
    /// The same with the native rules behind `Memoized`.
    pub native_one_change: Stat,
    /// Full regeneration with the native rules (parse + native + render).
    pub total_native: Stat,
    /// The same with `--haproxy-map`.
    pub total_map: Stat,
    /// VmRSS once the input document is in memory.
    pub input_rss_kb: u64,
    /// VmRSS once the plugin is compiled and the renderer built.
    pub loaded_rss_kb: u64,
    /// Of that, mapped files (the binary's own pages, mostly).
    pub loaded_rss_file_kb: u64,
    /// Peak RSS (VmHWM, reset before each stage) of the first iteration's
    /// stages: parse, wasm, native, render, render+map, generate. Empty where
    /// the peak cannot be reset.
    pub stage_peak_rss_kb: Vec<u64>,
    /// VmHWM at the end: the peak of the whole run.
    pub peak_rss_kb: u64,
}

/// A `/proc/self/status` field in kB (0 where unavailable).
pub fn proc_status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(str::to_owned))
        })
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Reset VmHWM to the current RSS (`/proc/self/clear_refs`, Linux ≥ 4.0).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Record the peak since the last reset (when `enabled`) and reset it.
fn stage_peak(enabled: bool, peaks: &mut Vec<u64>, peak_so_far: &mut u64) {
    if enabled {
        let hwm = proc_status_kb("VmHWM");
        *peak_so_far = (*peak_so_far).max(hwm);
        peaks.push(hwm);
        reset_peak();
    }
}

/// The options marathon-lb's default Docker command implies
/// (`sse --health-check --group external`).
pub fn options() -> InterpretOptions {
    InterpretOptions {
        groups: vec!["external".to_owned()],
        strict_mode: false,
        health_check: true,
        min_serv_port_ip_per_task: 10050,
        max_serv_port_ip_per_task: 10100,
        framework_name: None,
    }
}

fn settings(haproxy_map: bool) -> RenderSettings {
    RenderSettings {
        haproxy_dir: "/etc/haproxy".into(),
        haproxy_map,
        ..Default::default()
    }
}

/// Services in the chain's order (split calls return them in another).
fn sorted(mut services: Vec<Service>) -> Vec<Service> {
    services.sort_by(|a, b| {
        (&a.app_id, a.service_port, &a.backend).cmp(&(&b.app_id, b.service_port, &b.backend))
    });
    services
}

fn timed<T>(samples: &mut Vec<Duration>, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    samples.push(t.elapsed());
    out
}

/// Measure `body` (`tasks` is only reported).
pub fn run(body: &[u8], tasks: usize, iterations: usize) -> anyhow::Result<Row> {
    let iterations = iterations.max(1);
    let options = options();
    let plain = settings(false);
    let mapped = settings(true);
    let mut row = Row {
        json_bytes: body.len(),
        tasks,
        iterations,
        input_rss_kb: proc_status_kb("VmRSS"),
        ..Row::default()
    };

    let t = Instant::now();
    let mut wasm = WasmLabelPlugin::default_plugin(PluginLimits::default())
        .context("loading the default plugin")?;
    row.plugin_load_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let mut renderer = Renderer::new(Templates::defaults());
    row.renderer_new_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut native = NativeLabelRules;
    let mut batched = WasmLabelPlugin::default_plugin(PluginLimits::default())
        .context("loading the default plugin")?
        .split_independent(Split {
            workers: 1,
            batch_apps: 1_000,
        });
    let mut split = WasmLabelPlugin::default_plugin(PluginLimits::default())
        .context("loading the default plugin")?
        .split_independent(Split {
            workers: 2,
            batch_apps: 1_000,
        });
    let mut resolver = Resolver::new(1000);
    row.loaded_rss_kb = proc_status_kb("VmRSS");
    row.loaded_rss_file_kb = proc_status_kb("RssFile");
    // The overall peak is kept aside while per-stage peaks are taken.
    let mut peak_so_far = proc_status_kb("VmHWM");
    let mut stage_peaks = Vec::new();
    let can_reset = reset_peak();

    let mut s = [(); 10].map(|()| Vec::with_capacity(iterations));
    for i in 0..iterations {
        let normalized = timed(&mut s[0], || {
            normalize_apps(body, |host| resolver.resolve(host))
        })
        .context("normalising")?;
        stage_peak(i == 0 && can_reset, &mut stage_peaks, &mut peak_so_far);
        let by_wasm = timed(&mut s[1], || wasm.interpret(&normalized.apps, &options))
            .context("WASM plugin")?;
        stage_peak(i == 0 && can_reset, &mut stage_peaks, &mut peak_so_far);
        let by_native = timed(&mut s[2], || native.interpret(&normalized.apps, &options))
            .context("native rules")?;
        stage_peak(i == 0 && can_reset, &mut stage_peaks, &mut peak_so_far);
        let by_batched = timed(&mut s[8], || batched.interpret(&normalized.apps, &options))
            .context("WASM plugin in batches")?;
        let by_split = timed(&mut s[9], || split.interpret(&normalized.apps, &options))
            .context("WASM plugin in batches, two at a time")?;
        if i == 0 {
            ensure!(
                by_wasm.services == by_native.services,
                "WASM and native label rules disagree ({} vs {} services)",
                by_wasm.services.len(),
                by_native.services.len()
            );
            let reference = sorted(by_native.services.clone());
            ensure!(
                sorted(by_batched.services) == reference && sorted(by_split.services) == reference,
                "the WASM plugin in batches disagrees with one call"
            );
        }
        drop(by_native);
        let rendered = timed(&mut s[3], || renderer.render(&by_wasm.services, &plain));
        stage_peak(i == 0 && can_reset, &mut stage_peaks, &mut peak_so_far);
        if i == 0 {
            row.apps = normalized.apps.len();
            row.services = rendered.backends.len();
            row.config_bytes = rendered.config.len();
            row.diagnostics = normalized.diagnostics.len()
                + by_wasm.diagnostics.len()
                + rendered.diagnostics.len();
        }
        drop(rendered);
        let rendered = timed(&mut s[4], || renderer.render(&by_wasm.services, &mapped));
        stage_peak(i == 0 && can_reset, &mut stage_peaks, &mut peak_so_far);
        if i == 0 {
            row.config_map_bytes = rendered.config.len();
            row.maps_bytes = rendered.domain_map.len() + rendered.app_map.len();
        }
        drop((rendered, by_wasm, normalized));

        for (k, settings) in [(5, &plain), (6, &mapped)] {
            let generated = timed(&mut s[k], || {
                pipeline::generate(
                    body,
                    &mut resolver,
                    &mut wasm,
                    &mut renderer,
                    &options,
                    settings,
                )
            })
            .context("pipeline::generate")?;
            drop(generated);
            if k == 5 {
                stage_peak(i == 0 && can_reset, &mut stage_peaks, &mut peak_so_far);
            }
        }
        // The same regeneration with the rules compiled natively, in the
        // same loop so that both see the same machine.
        let mut native = NativeLabelRules;
        let generated = timed(&mut s[7], || {
            pipeline::generate(
                body,
                &mut resolver,
                &mut native,
                &mut renderer,
                &options,
                &plain,
            )
        })
        .context("pipeline::generate")?;
        drop(generated);
    }
    let [
        parse,
        wasm_s,
        native_s,
        render,
        render_map,
        total,
        total_map,
        total_native,
        wasm_batched,
        wasm_split,
    ] = &mut s;
    row.parse = Stat::of(parse);
    row.wasm = Stat::of(wasm_s);
    row.native = Stat::of(native_s);
    row.wasm_batched = Stat::of(wasm_batched);
    row.wasm_split = Stat::of(wasm_split);
    row.render = Stat::of(render);
    row.render_map = Stat::of(render_map);
    row.total = Stat::of(total);
    row.total_map = Stat::of(total_map);
    row.total_native = Stat::of(total_native);
    row.peak_rss_kb = proc_status_kb("VmHWM").max(peak_so_far);

    // Steady state: the same document with one app's task list changed.
    let mut memo_wasm = Memoized::new(wasm);
    let mut memo_native = Memoized::new(NativeLabelRules);
    let mut a = Vec::with_capacity(iterations);
    let mut b = Vec::with_capacity(iterations);
    let apps = normalize_apps(body, |host| resolver.resolve(host))
        .context("normalising")?
        .apps;
    memo_wasm
        .interpret(&apps, &options)
        .context("WASM plugin")?;
    memo_native
        .interpret(&apps, &options)
        .context("native rules")?;
    for i in 0..iterations {
        let mut changed = apps.clone();
        if let Some(app) = changed.get_mut(i % apps.len().max(1)) {
            app.tasks.pop();
        }
        timed(&mut a, || memo_wasm.interpret(&changed, &options)).context("WASM plugin")?;
        timed(&mut b, || memo_native.interpret(&changed, &options)).context("native rules")?;
    }
    row.wasm_one_change = Stat::of(&mut a);
    row.native_one_change = Stat::of(&mut b);
    row.stage_peak_rss_kb = stage_peaks;
    Ok(row)
}
