//! `mlb-bench --oneshot`: the whole one-shot run, as an operator runs it.
//!
//! For each size, the synthetic document is served from memory by a
//! loopback fake Marathon ([`crate::serve`]), and the real `marathon-lb`
//! binary is spawned: `--marathon URL --group external --command true
//! --skip-validation --haproxy-config DIR/haproxy.cfg --max-reload-retries 0
//! --reload-interval 0` (no waiting for a new HAProxy process), in an empty
//! temporary directory, with a plugin compile cache that a first, untimed
//! run has warmed. Wall time is spawn to exit; peak RSS is the child's
//! `ru_maxrss` as reported by GNU time (`/usr/bin/time -f %M`), or, where
//! that is missing, VmHWM sampled from `/proc` every millisecond (a lower
//! bound, marked as such). Every run's config must be byte-identical to the
//! first one.
//!
//! marathon-lb 1.15 runs the same way when it is on the machine
//! (`MARATHON_LB_115="python3 /path/to/marathon_lb.py"`, or
//! `marathon_lb.py` on the `PATH` or in `/marathon-lb`); otherwise that
//! column is skipped with a message.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};

use crate::measure::Stat;
use crate::serve::FakeMarathon;
use crate::synth;

const GNU_TIME: &str = "/usr/bin/time";

/// One program measured on one size.
#[derive(Debug, Clone)]
pub struct Runs {
    /// Wall time, spawn to exit.
    pub wall: Stat,
    /// Peak RSS in kB: min, median, max over the runs.
    pub rss_kb: [u64; 3],
    /// Whether the RSS is exact (`ru_maxrss`) or sampled.
    pub rss_exact: bool,
    /// Size of the config written.
    pub config_bytes: usize,
}

/// One size.
#[derive(Debug, Clone)]
pub struct Row {
    /// Apps in the document.
    pub apps: usize,
    /// Document size.
    pub json_bytes: usize,
    /// `marathon-lb` (this project).
    pub ours: Runs,
    /// marathon-lb 1.15, when available.
    pub reference: Option<Runs>,
}

/// How to start marathon-lb 1.15, if it is here.
pub fn reference_command() -> Option<Vec<String>> {
    if let Ok(cmd) = std::env::var("MARATHON_LB_115")
        && !cmd.trim().is_empty()
    {
        return Some(cmd.split_whitespace().map(str::to_owned).collect());
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("marathon_lb.py"))
                .collect()
        })
        .unwrap_or_default();
    candidates.push(PathBuf::from("/marathon-lb/marathon_lb.py"));
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .map(|p| vec!["python3".to_owned(), p.display().to_string()])
}

/// The `marathon-lb` binary beside this one (same profile), or `explicit`.
pub fn find_marathon_lb(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let exe = std::env::current_exe().context("locating this binary")?;
    let beside = exe.with_file_name("marathon-lb");
    ensure!(
        beside.is_file(),
        "{} not found; build it (cargo build --release -p marathon-lb) or pass --mlb PATH",
        beside.display()
    );
    Ok(beside)
}

/// One run of `program` against `url` in a fresh empty directory: wall
/// time, peak RSS in kB (exact?), the config written.
fn run_once(
    program: &[String],
    url: &str,
    cache: &Path,
) -> anyhow::Result<(Duration, u64, bool, Vec<u8>)> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let config = dir.path().join("haproxy.cfg");
    let rss_file = dir.path().join("rss");
    let use_time = Path::new(GNU_TIME).is_file();
    let mut cmd = if use_time {
        let mut c = Command::new(GNU_TIME);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).args(program);
        c
    } else {
        let mut c = Command::new(&program[0]);
        c.args(&program[1..]);
        c
    };
    cmd.arg("--marathon")
        .arg(url)
        .arg("--group")
        .arg("external")
        .arg("--command")
        .arg("true")
        .arg("--skip-validation")
        .arg("--haproxy-config")
        .arg(&config)
        // With `--command true`, marathon-lb waits for a new HAProxy process
        // whenever one is running on the machine (another test's): not part
        // of the generation.
        .arg("--max-reload-retries")
        .arg("0")
        .arg("--reload-interval")
        .arg("0")
        .current_dir(dir.path())
        .env("MLB_PLUGIN_CACHE_DIR", cache)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", program.join(" ")))?;
    let mut sampled = 0;
    if !use_time {
        let status = format!("/proc/{}/status", child.id());
        while child.try_wait()?.is_none() {
            if let Some(kb) = std::fs::read_to_string(&status)
                .ok()
                .and_then(|s| vm_hwm_kb(&s))
            {
                sampled = sampled.max(kb);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let out = child.wait_with_output()?;
    let wall = start.elapsed();
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            program.join(" "),
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 2000)
        );
    }
    let rss = if use_time {
        let text = std::fs::read_to_string(&rss_file).context("reading GNU time's output")?;
        text.lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .next_back()
            .context("GNU time printed no peak RSS")?
    } else {
        sampled
    };
    let written =
        std::fs::read(&config).with_context(|| format!("{} wrote no config", program.join(" ")))?;
    Ok((wall, rss, use_time, written))
}

fn vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..=s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    &s[start..]
}

/// `iterations` timed runs of `program` after one untimed warm-up run.
fn measure(program: &[String], url: &str, cache: &Path, iterations: usize) -> anyhow::Result<Runs> {
    let (_, _, _, first) = run_once(program, url, cache)?;
    let mut walls = Vec::with_capacity(iterations);
    let mut rss = Vec::with_capacity(iterations);
    let mut exact = true;
    for _ in 0..iterations {
        let (wall, kb, is_exact, config) = run_once(program, url, cache)?;
        ensure!(
            config == first,
            "{} wrote a different config on a repeated run",
            program.join(" ")
        );
        walls.push(wall);
        rss.push(kb);
        exact &= is_exact;
    }
    rss.sort_unstable();
    Ok(Runs {
        wall: Stat::of(&mut walls),
        rss_kb: [rss[0], rss[rss.len() / 2], rss[rss.len() - 1]],
        rss_exact: exact,
        config_bytes: first.len(),
    })
}

/// One document to serve: its apps and its bytes.
#[derive(Debug)]
pub struct Document {
    /// Apps in it.
    pub apps: usize,
    /// The `/v2/apps?embed=apps.tasks` body.
    pub body: Vec<u8>,
}

impl Document {
    /// The synthetic document of `apps` apps.
    pub fn synthetic(apps: usize, seed: u64) -> Self {
        let (body, _) = synth::generate(apps, seed);
        Self { apps, body }
    }

    /// A document read from `path` (e.g. `gen_apps.py`'s output).
    pub fn file(path: &Path) -> anyhow::Result<Self> {
        #[derive(serde::Deserialize)]
        struct Apps {
            apps: Vec<serde::de::IgnoredAny>,
        }
        let body = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let apps = serde_json::from_slice::<Apps>(&body)
            .with_context(|| format!("{} is not a Marathon apps document", path.display()))?
            .apps
            .len();
        Ok(Self { apps, body })
    }
}

/// Measure every document; the markdown report.
pub fn run(documents: Vec<Document>, iterations: usize, mlb: &Path) -> anyhow::Result<String> {
    let iterations = iterations.max(1);
    let reference = reference_command();
    if reference.is_none() {
        eprintln!(
            "marathon-lb 1.15 not found (set MARATHON_LB_115=\"python3 /path/to/marathon_lb.py\"); \
             its column is skipped"
        );
    }
    let cache = tempfile::tempdir().context("creating the plugin cache directory")?;
    let ours = vec![mlb.display().to_string()];
    let mut rows = Vec::with_capacity(documents.len());
    for Document { apps: n, body } in documents {
        let json_bytes = body.len();
        let server = FakeMarathon::start(body, 0).context("starting the fake Marathon")?;
        eprintln!("one-shot, {n} apps ({iterations} runs + 1 warm-up)...");
        let ours = measure(&ours, &server.url(), cache.path(), iterations)?;
        let reference = match &reference {
            Some(cmd) => Some(measure(cmd, &server.url(), cache.path(), iterations)?),
            None => None,
        };
        rows.push(Row {
            apps: n,
            json_bytes,
            ours,
            reference,
        });
    }
    Ok(markdown(&rows, iterations, reference.is_some()))
}

const MB: f64 = 1024.0 * 1024.0;

fn markdown(rows: &[Row], iterations: usize, with_reference: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Whole one-shot run of the `marathon-lb` binary against a loopback fake Marathon \
         (`--group external --command true --skip-validation`, warm plugin cache, empty \
         directory): wall ms `min / median` and peak RSS MB `min / median / max` of \
         {iterations} runs.\n"
    );
    out.push_str("| apps | JSON MB | config MB | wall ms | peak RSS MB | RSS per 1,000 apps MB |");
    if with_reference {
        out.push_str(" marathon-lb 1.15 wall ms | 1.15 peak RSS MB | speed-up |");
    }
    out.push('\n');
    out.push_str("|---:|---:|---:|---:|---:|---:|");
    if with_reference {
        out.push_str("---:|---:|---:|");
    }
    out.push('\n');
    for r in rows {
        let [lo, mid, hi] = r.ours.rss_kb.map(|kb| kb as f64 / 1024.0);
        let _ = write!(
            out,
            "| {} | {:.1} | {:.1} | {:.0} / {:.0} | {:.0} / {:.0} / {:.0}{} | {:.1} |",
            r.apps,
            r.json_bytes as f64 / MB,
            r.ours.config_bytes as f64 / MB,
            r.ours.wall.min,
            r.ours.wall.median,
            lo,
            mid,
            hi,
            if r.ours.rss_exact { "" } else { " (sampled)" },
            mid * 1000.0 / r.apps.max(1) as f64,
        );
        if let Some(reference) = &r.reference {
            let _ = write!(
                out,
                " {:.0} / {:.0} | {:.0} | {:.0}× |",
                reference.wall.min,
                reference.wall.median,
                reference.rss_kb[1] as f64 / 1024.0,
                reference.wall.median / r.ours.wall.median.max(f64::MIN_POSITIVE),
            );
        } else if with_reference {
            out.push_str(" – | – | – |");
        }
        out.push('\n');
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && last.apps > first.apps
    {
        let slope = (last.ours.rss_kb[1] as f64 - first.ours.rss_kb[1] as f64)
            / 1024.0
            / ((last.apps - first.apps) as f64 / 1000.0);
        let _ = writeln!(
            out,
            "\nPeak RSS grows by {slope:.1} MB per 1,000 apps between {} and {} apps (medians).",
            first.apps, last.apps
        );
    }
    if !with_reference {
        out.push_str(
            "\nmarathon-lb 1.15 was not found on this machine (set `MARATHON_LB_115`); not compared.\n",
        );
    }
    out
}
