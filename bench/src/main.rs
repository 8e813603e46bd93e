//! `mlb-bench`: how long marathon-lb's pure path takes, stage by stage, and
//! how much memory it needs.
//!
//! ```text
//! mlb-bench [--apps 1000,10000] [--input FILE]... [--iterations 5] [--seed 42]
//! mlb-bench --emit 1000 > apps.json      # just print a synthetic document
//! mlb-bench --plugins [--apps 10000]      # plugin load and per-app costs
//! mlb-bench --oneshot --apps 1000,10000,20000  # the real binary, whole run
//! mlb-bench --oneshot --input apps.json...     # the same, on given documents
//! mlb-bench --serve 10000 [--port 8080]   # only serve the document (profilers)
//! mlb-bench --serve 0 --input apps.json   # the same, serving that file
//! mlb-bench --live --apps 5000 [--changes 10]  # membership changes under load
//! ```
//!
//! Each size runs in a child process of this binary (hidden `--single`), so
//! the peak RSS of one size is not inherited by the next. The result is a
//! markdown table of `min / median` milliseconds over the iterations.
//!
//! # Layout
//! - [`synth`]: the seeded synthetic `/v2/apps?embed=apps.tasks` document.
//! - [`measure`]: one size timed in-process (stages, whole path, RSS).
//! - [`report`]: the markdown table.
//! - [`plugins`]: cold/warm plugin loads and per-app plugin costs.
//! - [`oneshot`]: the whole one-shot run of the `marathon-lb` binary (and of
//!   marathon-lb 1.15 when present), wall time and peak RSS.
//! - [`serve`]: the loopback fake Marathon serving a document from memory.
//! - [`live`]: membership changes of a loaded app at scale, end to end
//!   (`--sse --supervise-haproxy`, real HAProxy, the simulator).

#![forbid(unsafe_code)]

mod live;
mod measure;
mod oneshot;
mod plugins;
mod report;
mod serve;
mod synth;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};
use clap::Parser;

use crate::measure::Row;

/// Time marathon-lb's pure path: parse, label plugin (WASM and native), render.
#[derive(Debug, Parser)]
#[command(name = "mlb-bench")]
struct Args {
    /// Synthetic document sizes (apps), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    apps: Vec<usize>,
    /// Measure these `/v2/apps?embed=apps.tasks` files instead of synthetic ones.
    #[arg(long)]
    input: Vec<PathBuf>,
    /// Iterations per stage (min and median are reported).
    #[arg(long, default_value_t = 5)]
    iterations: usize,
    /// Seed of the synthetic documents.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the synthetic document of this many apps to stdout and exit.
    #[arg(long, value_name = "APPS")]
    emit: Option<usize>,
    /// Measure every size in this process (for profilers); RSS is then cumulative.
    #[arg(long)]
    in_process: bool,
    /// Measure plugin loading (cold, warm from the compile cache) and per-app
    /// cost of the default and example plugins, on the largest `--apps` size.
    #[arg(long)]
    plugins: bool,
    /// Time the whole one-shot run of the `marathon-lb` binary (spawned
    /// against a loopback fake Marathon) with its peak RSS, per `--apps` size.
    #[arg(long)]
    oneshot: bool,
    /// The `marathon-lb` binary for `--oneshot` (default: the one beside
    /// this binary).
    #[arg(long, value_name = "PATH")]
    mlb: Option<PathBuf>,
    /// Serve the synthetic document of this many apps on loopback until
    /// killed (for running `marathon-lb` under a profiler by hand); with
    /// one `--input`, that file instead.
    #[arg(long, value_name = "APPS")]
    serve: Option<usize>,
    /// Membership changes of a loaded app under `--sse --supervise-haproxy`
    /// with the largest `--apps` size of other apps: reloads, event →
    /// serving and event → no traffic, failed requests, RSS.
    #[arg(long)]
    live: bool,
    /// Membership changes for `--live` (alternately a task added, the
    /// oldest removed).
    #[arg(long, default_value_t = 10)]
    changes: usize,
    /// Port for `--serve` (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Child mode: measure one synthetic size and print the result as JSON.
    #[arg(long, hide = true, value_name = "APPS")]
    single: Option<usize>,
    /// Child mode: measure one file and print the result as JSON.
    #[arg(long, hide = true, value_name = "FILE")]
    single_input: Option<PathBuf>,
}

/// One input to measure.
#[derive(Debug, Clone)]
enum Input {
    Synthetic(usize),
    File(PathBuf),
}

impl Input {
    fn label(&self) -> String {
        match self {
            Input::Synthetic(n) => format!("synthetic, {n} apps"),
            Input::File(p) => p.display().to_string(),
        }
    }
}

fn measure_here(input: &Input, iterations: usize, seed: u64) -> anyhow::Result<Row> {
    let (body, tasks) = match input {
        Input::Synthetic(n) => {
            let (body, stats) = synth::generate(*n, seed);
            (body, stats.tasks)
        }
        Input::File(path) => {
            let body =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            (body, 0)
        }
    };
    let mut row = measure::run(&body, tasks, iterations)?;
    if row.tasks == 0 {
        row.tasks = count_tasks(&body);
    }
    Ok(row)
}

/// Tasks in a document read from a file (not timed).
fn count_tasks(body: &[u8]) -> usize {
    mlb_core::normalize_apps(body, |h| Some(h.to_owned()))
        .map(|n| n.apps.iter().map(|a| a.tasks.len()).sum())
        .unwrap_or(0)
}

fn measure_in_child(input: &Input, iterations: usize, seed: u64) -> anyhow::Result<Row> {
    let exe = std::env::current_exe().context("locating this binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--iterations")
        .arg(iterations.to_string())
        .arg("--seed")
        .arg(seed.to_string());
    match input {
        Input::Synthetic(n) => cmd.arg("--single").arg(n.to_string()),
        Input::File(p) => cmd.arg("--single-input").arg(p),
    };
    let out = cmd.output().context("running the child measurement")?;
    if !out.status.success() {
        bail!(
            "measuring {} failed ({}): {}",
            input.label(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "child output is not a result: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(n) = args.emit {
        let (body, _) = synth::generate(n, args.seed);
        std::io::stdout().lock().write_all(&body)?;
        return Ok(());
    }
    if let Some(n) = args.serve {
        let (body, what) = match args.input.as_slice() {
            [] => (synth::generate(n, args.seed).0, format!("{n} apps")),
            [file] => (
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?,
                file.display().to_string(),
            ),
            _ => bail!("--serve takes at most one --input"),
        };
        let bytes = body.len();
        let server = serve::FakeMarathon::start(body, args.port)?;
        println!("{}", server.url());
        eprintln!("serving {what} ({bytes} bytes) at {}/v2/apps", server.url());
        loop {
            std::thread::park();
        }
    }
    if args.live {
        let mlb = live::binary(args.mlb.as_deref())?;
        let apps = args.apps.iter().copied().max().unwrap_or(5_000);
        return live::run(apps, args.changes, &mlb);
    }
    if args.oneshot {
        let mlb = oneshot::find_marathon_lb(args.mlb.as_deref())?;
        let documents = if args.input.is_empty() {
            args.apps
                .iter()
                .map(|&n| oneshot::Document::synthetic(n, args.seed))
                .collect()
        } else {
            args.input
                .iter()
                .map(|p| oneshot::Document::file(p))
                .collect::<anyhow::Result<Vec<_>>>()?
        };
        print!("{}", oneshot::run(documents, args.iterations, &mlb)?);
        return Ok(());
    }
    if args.plugins {
        let apps = args.apps.iter().copied().max().unwrap_or(10_000);
        print!("{}", plugins::run(apps, args.iterations, args.seed)?);
        return Ok(());
    }
    let single = match (args.single, &args.single_input) {
        (Some(n), _) => Some(Input::Synthetic(n)),
        (None, Some(p)) => Some(Input::File(p.clone())),
        (None, None) => None,
    };
    if let Some(input) = single {
        let row = measure_here(&input, args.iterations, args.seed)?;
        println!("{}", serde_json::to_string(&row)?);
        return Ok(());
    }

    let inputs: Vec<Input> = if args.input.is_empty() {
        args.apps.iter().copied().map(Input::Synthetic).collect()
    } else {
        args.input.iter().cloned().map(Input::File).collect()
    };
    let mut rows = Vec::with_capacity(inputs.len());
    for input in &inputs {
        eprintln!(
            "measuring {} ({} iterations)...",
            input.label(),
            args.iterations
        );
        let row = if args.in_process {
            measure_here(input, args.iterations, args.seed)?
        } else {
            measure_in_child(input, args.iterations, args.seed)?
        };
        rows.push(row);
    }
    print!("{}", report::markdown(&rows, args.in_process));
    Ok(())
}
