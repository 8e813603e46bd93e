//! Helpers shared by the integration tests: the corpus location, running the
//! real binary against an in-process Marathon simulator.

#![allow(dead_code)]

pub mod http;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A running daemon: on drop, SIGTERM, up to 10 s to exit, then SIGKILL.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary under test. Run it with [`command`] (or give it
/// [`cache_env`]), never bare: its plugin compile cache would go to
/// `~/.cache`.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_marathon-lb"))
}

/// `XDG_CACHE_HOME` for every run of the binary: the target directory's
/// scratch space (`CARGO_TARGET_TMPDIR`), never the user's `~/.cache`. Its
/// `marathon-lb/` plugin compile cache is shared by the tests and kept
/// across runs (the default plugin is compiled once, not once per run).
pub fn cache_env() -> (&'static str, PathBuf) {
    (
        "XDG_CACHE_HOME",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache"),
    )
}

/// A command running the binary under test with [`cache_env`].
pub fn command() -> Command {
    let mut cmd = Command::new(binary());
    let (k, v) = cache_env();
    cmd.env(k, v);
    cmd
}

/// `tests/golden` at the workspace root.
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

/// The directory the corpus's config path points into (map templates embed it).
pub const CORPUS_OUTPUT_DIR: &str = "/tmp/mlb-golden";

/// What one run wrote.
#[derive(Debug)]
pub struct CaseOutput {
    /// The config, with the run's directory rewritten to [`CORPUS_OUTPUT_DIR`].
    pub config: String,
    /// `domain2backend.map` and `app2backend.map` ("" when absent).
    pub maps: [String; 2],
    /// Combined stderr of the run.
    pub log: String,
}

impl CaseOutput {
    /// Contents of `<name>.map` beside the config ("" if absent).
    pub fn map(&self, name: &str) -> &str {
        match name {
            "domain2backend" => &self.maps[0],
            _ => &self.maps[1],
        }
    }
}

/// A tokio runtime for the simulator.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Start a simulator serving `doc`.
pub fn start_sim(rt: &tokio::runtime::Runtime, doc: serde_json::Value) -> marathon_sim::SimHandle {
    rt.block_on(async {
        marathon_sim::start(
            marathon_sim::SimConfig::default()
                .with_apps_json(doc)
                .unwrap(),
        )
        .await
        .unwrap()
    })
}

/// Run corpus case `name` of `dir` through the binary (one-shot, as
/// marathon-lb without --sse) and collect what it wrote.
pub fn run_case(dir: &Path, name: &str) -> Result<CaseOutput, String> {
    let file = |suffix: &str| dir.join(format!("{name}.{suffix}"));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file("json")).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let args = std::fs::read_to_string(file("args")).unwrap_or_default();
    let args = shlex::split(args.lines().next().unwrap_or("")).ok_or("bad args")?;
    let rt = runtime();
    let sim = start_sim(&rt, doc);
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out_dir = work.path().join("out");
    let cwd = work.path().join("cwd");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::create_dir_all(cwd.join("templates")).unwrap();
    if let Ok(entries) = std::fs::read_dir(file("templates")) {
        for e in entries.flatten() {
            std::fs::copy(e.path(), cwd.join("templates").join(e.file_name())).unwrap();
        }
    }
    let cfg = out_dir.join("haproxy.cfg");
    let mut cmd = command();
    cmd.current_dir(&cwd)
        .arg("--marathon")
        .arg(sim.base_url())
        .arg("--haproxy-config")
        .arg(&cfg)
        .args([
            "--command",
            "true",
            "--skip-validation",
            "--log-level",
            "WARNING",
            "--syslog-socket",
            "/dev/null",
            // Any HAProxy on the machine (another test's) would make the
            // reload wait for a new HAProxy process, up to 10 s × retries
            // per case: none is involved here.
            "--max-reload-retries",
            "0",
            "--reload-interval",
            "0",
        ])
        .args(&args);
    for (k, _) in std::env::vars() {
        if k.starts_with("HAPROXY_") || k == "FRAMEWORK_NAME" {
            cmd.env_remove(k);
        }
    }
    if let Ok(env) = std::fs::read_to_string(file("env")) {
        for line in env.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            if let Some((k, v)) = line.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    let output = cmd.output().map_err(|e| e.to_string())?;
    rt.block_on(sim.shutdown());
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    let config = std::fs::read_to_string(&cfg).map_err(|e| {
        format!(
            "no config written ({e}); exit {}; log:\n{log}",
            output.status
        )
    })?;
    Ok(CaseOutput {
        config: config.replace(&out_dir.display().to_string(), CORPUS_OUTPUT_DIR),
        maps: ["domain2backend", "app2backend"]
            .map(|m| std::fs::read_to_string(out_dir.join(format!("{m}.map"))).unwrap_or_default()),
        log,
    })
}

/// A short line diff for failure messages.
pub fn diff(expected: &str, got: &str) -> String {
    let (e, g): (Vec<_>, Vec<_>) = (expected.lines().collect(), got.lines().collect());
    let mut out = String::new();
    for i in 0..e.len().max(g.len()) {
        let (a, b) = (e.get(i), g.get(i));
        if a != b {
            out.push_str(&format!(
                "line {}:\n  expected: {:?}\n  got:      {:?}\n",
                i + 1,
                a,
                b
            ));
            if out.len() > 2000 {
                break;
            }
        }
    }
    out
}
