//! `--live`: membership changes of a loaded app at scale, end to end.
//!
//! The real `marathon-lb` binary (`--sse --supervise-haproxy`, the default
//! templates with only `maxconn` and the binds moved to loopback) follows the
//! in-process Marathon simulator serving `--apps` HTTP apps with vhosts (their
//! tasks on loopback addresses nothing listens on, without health checks, so
//! HAProxy never sends them anything) plus one app, `/live`, whose tasks are
//! real HTTP servers of this process. Clients load `/live` through HAProxy's
//! `:80` frontend (keep-alive and new connections) while tasks of `/live` are
//! added and removed through the simulator's admin API, which emits the
//! Marathon events. Printed per change: event → first request served by a new
//! task, event → last request reaching a removed task; then reloads (the
//! controller's `mlb_reloads_ok_total`), requests and failures, and the RSS of
//! the controller and of HAProxy.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// Service port of `/live`; the filler apps count up from 20000.
const LIVE_PORT: u16 = 19999;
const LIVE_VHOST: &str = "live.example.test";

/// A task of `/live`: a loopback HTTP server that remembers when it served.
struct Task {
    port: u16,
    /// Milliseconds since `epoch` of the first and last request (0: none).
    first: Arc<AtomicU64>,
    last: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    /// The simulator's task id.
    id: String,
}

impl Task {
    fn start(epoch: Instant) -> anyhow::Result<Task> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let (first, last, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (f, l, s) = (first.clone(), last.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (f, l) = (f.clone(), l.clone());
                std::thread::spawn(move || serve(conn, port, epoch, &f, &l));
            }
        });
        Ok(Task {
            port,
            first,
            last,
            stop,
            id: String::new(),
        })
    }

    fn first_ms(&self) -> u64 {
        self.first.load(Ordering::Relaxed)
    }

    fn last_ms(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// HTTP/1.1 keep-alive: answer every request with the task's port.
fn serve(conn: TcpStream, port: u16, epoch: Instant, first: &AtomicU64, last: &AtomicU64) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut out = conn;
    loop {
        let mut line = String::new();
        let mut headers = 0;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" || line == "\n" => break,
                Ok(_) => headers += 1,
            }
        }
        if headers == 0 {
            return;
        }
        let now = (epoch.elapsed().as_millis() as u64).max(1);
        let _ = first.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        last.store(now, Ordering::Relaxed);
        let body = port.to_string();
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
            body.len()
        );
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// One request over `conn` (or a new connection): the status, `None` on a
/// transport error.
fn get(
    conn: &mut Option<BufReader<TcpStream>>,
    port: u16,
    host: &str,
    keep_alive: bool,
) -> Option<u16> {
    if conn.is_none() {
        let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        *conn = Some(BufReader::new(s));
    }
    let reader = conn.as_mut()?;
    let close = if keep_alive {
        ""
    } else {
        "Connection: close\r\n"
    };
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n{close}\r\n");
    let result = (|| {
        reader.get_mut().write_all(req.as_bytes()).ok()?;
        let mut status = String::new();
        reader.read_line(&mut status).ok()?;
        let code: u16 = status.split_whitespace().nth(1)?.parse().ok()?;
        let mut length = 0usize;
        let mut closing = false;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).ok()? == 0 {
                return None;
            }
            if h == "\r\n" {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().ok()?;
            }
            if lower.starts_with("connection:") && lower.contains("close") {
                closing = true;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        Some((code, closing))
    })();
    match result {
        Some((code, closing)) => {
            if closing || !keep_alive {
                *conn = None;
            }
            Some(code)
        }
        None => {
            *conn = None;
            None
        }
    }
}

/// Four clients (two keep-alive, two new connections) loading `host`
/// through HAProxy's `:80` frontend at `port`.
fn start_load(
    port: u16,
    host: &'static str,
    epoch: Instant,
) -> (Arc<Load>, Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>) {
    let stats = Arc::new(Load::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients = [true, true, false, false]
        .into_iter()
        .map(|keep_alive| {
            let (s, t) = (stats.clone(), stop.clone());
            std::thread::spawn(move || load(port, host, keep_alive, s, t, epoch))
        })
        .collect();
    (stats, stop, clients)
}

/// Requests and failures of the load.
#[derive(Default)]
struct Load {
    ok: AtomicU64,
    failed: AtomicU64,
    failures: Mutex<Vec<String>>,
}

fn load(
    port: u16,
    host: &'static str,
    keep_alive: bool,
    stats: Arc<Load>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
) {
    let mut conn = None;
    while !stop.load(Ordering::Relaxed) {
        match get(&mut conn, port, host, keep_alive) {
            Some(200) => {
                stats.ok.fetch_add(1, Ordering::Relaxed);
            }
            other => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut f) = stats.failures.lock()
                    && f.len() < 20
                {
                    f.push(format!(
                        "{:?} at {} ms (keep-alive {keep_alive})",
                        other,
                        epoch.elapsed().as_millis()
                    ));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn app(id: &str, service_port: u16, vhost: &str, tasks: &[Value]) -> Value {
    json!({
        "id": id,
        "instances": tasks.len(),
        "labels": {
            "HAPROXY_GROUP": "external",
            "HAPROXY_0_VHOST": vhost,
            "HAPROXY_0_BIND_ADDR": "127.0.0.1",
        },
        "portDefinitions": [{"port": service_port, "protocol": "tcp", "labels": {}}],
        "ports": [service_port],
        "requirePorts": false,
        "healthChecks": [],
        "version": "2026-12-07T00:00:00.000Z",
        "versionInfo": {
            "lastConfigChangeAt": "2026-12-07T00:00:00.000Z",
            "lastScalingAt": "2026-12-07T00:00:00.000Z"
        },
        "tasks": tasks,
    })
}

fn task_json(app_id: &str, n: usize, port: u16) -> Value {
    json!({
        "id": format!("{}.{n}", app_id.trim_start_matches('/').replace('/', "_")),
        "appId": app_id,
        "host": "127.0.0.1",
        "ports": [port],
        "servicePorts": [],
        "startedAt": "2026-12-07T00:00:00.000Z",
        "stagedAt": "2026-12-07T00:00:00.000Z",
        "state": "TASK_RUNNING",
        "version": "2026-12-07T00:00:00.000Z",
        "healthCheckResults": [],
    })
}

/// A tiny HTTP/1.1 request to the simulator's admin API; the JSON answer.
fn admin(addr: &str, method: &str, path: &str, body: &str) -> anyhow::Result<Value> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP answer")?;
    if !head.starts_with("HTTP/1.1 2") {
        bail!("{method} {path}: {head}");
    }
    Ok(serde_json::from_str(body).unwrap_or(Value::Null))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Sum of the RSS of every process named `haproxy`.
fn haproxy_rss_kib() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "haproxy")
        })
        .map(rss_kib)
        .sum()
}

fn metrics_text(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

fn metric(port: u16, name: &str) -> Option<f64> {
    let text = metrics_text(port)?;
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// The default HEAD with `maxconn` lowered and every path and bind moved
/// into `dir` and onto loopback.
fn head(dir: &Path, stats: u16) -> anyhow::Result<String> {
    let text = mlb_core::Templates::default_text("HEAD").context("the default HEAD")?;
    Ok(text
        .replace("maxconn 50000", "maxconn 4096")
        .replace("bind 0.0.0.0:9090", &format!("bind 127.0.0.1:{stats}"))
        .replace(
            "/var/run/haproxy/socket",
            &dir.join("haproxy.sock").display().to_string(),
        )
        .replace(
            "/var/state/haproxy/",
            &format!("{}/", dir.join("state").display()),
        )
        .replace("/marathon-lb/", &format!("{}/", dir.join("lua").display()))
        .replace("  log /dev/log local0\n", "")
        .replace("  log /dev/log local1 notice\n", ""))
}

/// Statistics of a list of milliseconds: (p50, max).
fn p50_max(mut v: Vec<u64>) -> (u64, u64) {
    if v.is_empty() {
        return (0, 0);
    }
    v.sort_unstable();
    (v[v.len() / 2], v[v.len() - 1])
}

/// Run the live scale test: `apps` filler apps, `changes` membership
/// changes of `/live` (alternately one task added, the oldest removed).
pub fn run(apps: usize, changes: usize, mlb: &Path) -> anyhow::Result<()> {
    let epoch = Instant::now();
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    std::fs::create_dir_all(d.join("state"))?;
    let cert = d.join("cert.pem");
    let key = d.join("key.pem");
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=live.example.test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?
        .success();
    if !ok {
        bail!("openssl could not make a certificate");
    }
    let mut pem = std::fs::read(&cert)?;
    pem.extend(std::fs::read(&key)?);
    std::fs::write(&cert, pem)?;

    let mut tasks: Vec<Task> = Vec::new();
    for _ in 0..2 {
        tasks.push(Task::start(epoch)?);
    }
    let mut doc = Vec::with_capacity(apps + 1);
    for i in 0..apps {
        let id = format!("/filler/app-{i}");
        let port = 20000 + i as u16;
        let t = [task_json(&id, 1, 1 + (i % 60000) as u16)];
        doc.push(app(&id, port, &format!("app-{i}.example.test"), &t));
    }
    let live: Vec<Value> = tasks
        .iter()
        .enumerate()
        .map(|(n, t)| task_json("/live", n, t.port))
        .collect();
    doc.push(app("/live", LIVE_PORT, LIVE_VHOST, &live));
    for (n, t) in tasks.iter_mut().enumerate() {
        t.id = format!("live.{n}");
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let sim = rt.block_on(marathon_sim::start(
        marathon_sim::SimConfig::default().with_apps_json(json!({ "apps": doc }))?,
    ))?;
    let sim_addr = sim.addr().to_string();

    let (http, https, appid, stats, metrics) = (
        free_port()?,
        free_port()?,
        free_port()?,
        free_port()?,
        free_port()?,
    );
    let log = d.join("marathon-lb.log");
    // `MLB_BENCH_LOG=PATH`: the controller logs at DEBUG (with its
    // per-reconcile stage times) and the log is copied to PATH at the end.
    let keep_log = std::env::var_os("MLB_BENCH_LOG").map(PathBuf::from);
    let level = if keep_log.is_some() { "DEBUG" } else { "INFO" };
    let mut child: Child = Command::new(mlb)
        .current_dir(d)
        .args(["--sse", "--supervise-haproxy", "--group", "external"])
        .args(["--syslog-socket", "/dev/null", "--log-level", level])
        .arg("--marathon")
        .arg(sim.base_url())
        .arg("--haproxy-config")
        .arg(d.join("haproxy.cfg"))
        .arg("--haproxy-run-dir")
        .arg(d.join("run"))
        .arg("--server-state-file")
        .arg(d.join("state/global"))
        .arg("--lua-dir")
        .arg(d.join("lua"))
        .arg("--ssl-certs")
        .arg(&cert)
        .arg("--plugin-cache-dir")
        .arg(d.join("plugin-cache"))
        .arg("--metrics-address")
        .arg(format!("127.0.0.1:{metrics}"))
        .env("HAPROXY_HEAD", head(d, stats)?)
        .env(
            "HAPROXY_HTTP_FRONTEND_HEAD",
            format!("\nfrontend marathon_http_in\n  bind 127.0.0.1:{http}\n  mode http\n"),
        )
        .env(
            "HAPROXY_HTTPS_FRONTEND_HEAD",
            format!(
                "\nfrontend marathon_https_in\n  bind 127.0.0.1:{https} ssl {{sslCerts}}\n  mode http\n"
            ),
        )
        .env(
            "HAPROXY_HTTP_FRONTEND_APPID_HEAD",
            format!("\nfrontend marathon_http_appid_in\n  bind 127.0.0.1:{appid}\n  mode http\n"),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("cannot start marathon-lb")?;
    let result = measure(
        &mut tasks, changes, apps, http, metrics, &sim_addr, epoch, &child,
    );
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    rt.block_on(sim.shutdown());
    if let Some(path) = keep_log {
        std::fs::copy(&log, &path)
            .with_context(|| format!("copying the log to {}", path.display()))?;
    }
    if result.is_err() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        eprintln!("marathon-lb log (last lines):");
        for l in tail.iter().rev() {
            eprintln!("  {l}");
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn measure(
    tasks: &mut Vec<Task>,
    changes: usize,
    apps: usize,
    http: u16,
    metrics: u16,
    sim: &str,
    epoch: Instant,
    child: &Child,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut conn = None;
    while get(&mut conn, http, LIVE_VHOST, false) != Some(200) {
        if start.elapsed() > Duration::from_secs(300) {
            bail!("/live not served through HAProxy within 300 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let first_config = start.elapsed();
    // Let the start-up settle: nothing but the load from here on.
    std::thread::sleep(Duration::from_secs(2));
    let reloads_before = metric(metrics, "mlb_reloads_ok_total").unwrap_or(0.0);
    let (stats, stop, clients) = start_load(http, LIVE_VHOST, epoch);
    std::thread::sleep(Duration::from_secs(1));

    let (mut served, mut drained) = (Vec::new(), Vec::new());
    for change in 0..changes {
        if change % 2 == 0 {
            let mut task = Task::start(epoch)?;
            let at = epoch.elapsed().as_millis() as u64;
            let body = json!({"host": "127.0.0.1", "ports": [task.port], "state": "TASK_RUNNING"});
            let answer = admin(sim, "POST", "/_sim/apps/live/tasks", &body.to_string())?;
            task.id = answer["task"]["id"].as_str().unwrap_or_default().to_owned();
            let waited = Instant::now();
            while task.first_ms() == 0 && waited.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(5));
            }
            if task.first_ms() == 0 {
                bail!("the new task {} got no request within 60 s", task.id);
            }
            served.push(task.first_ms().saturating_sub(at));
            tasks.push(task);
        } else {
            let task = tasks.remove(0);
            let at = epoch.elapsed().as_millis() as u64;
            admin(
                sim,
                "DELETE",
                &format!("/_sim/apps/live/tasks/{}", task.id),
                "",
            )?;
            // The task keeps serving (as during a kill grace period); its
            // last request tells when HAProxy stopped sending it traffic:
            // wait until it got none for 2 s (at most 60 s).
            let waited = Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let now = epoch.elapsed().as_millis() as u64;
                if now.saturating_sub(task.last_ms().max(at)) > 2_000
                    || waited.elapsed() > Duration::from_secs(60)
                {
                    break;
                }
            }
            drained.push(task.last_ms().saturating_sub(at));
        }
        std::thread::sleep(Duration::from_millis(1500));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let reloads = metric(metrics, "mlb_reloads_ok_total").unwrap_or(0.0) - reloads_before;
    let restart = rolling_restart(sim, http, metrics, epoch)?;
    let (s50, smax) = p50_max(served);
    let (d50, dmax) = p50_max(drained);
    println!(
        "| apps | changes | reloads | event → served p50 / max | event → no traffic p50 / max | requests | failed | controller RSS | HAProxy RSS | first config |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {changes} | {reloads} | {s50} / {smax} ms | {d50} / {dmax} ms | {} | {} | {} MiB | {} MiB | {:.1} s |",
        apps + 1,
        stats.ok.load(Ordering::Relaxed) + stats.failed.load(Ordering::Relaxed),
        stats.failed.load(Ordering::Relaxed),
        rss_kib(child.id()) / 1024,
        haproxy_rss_kib() / 1024,
        first_config.as_secs_f64(),
    );
    if let Ok(f) = stats.failures.lock() {
        for failure in f.iter() {
            println!("failed request: {failure}");
        }
    }
    let reasons: Vec<String> = metrics_text(metrics)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.starts_with("mlb_reloads_total{")
                || l.starts_with("mlb_runtime_updates_total ")
                || l.starts_with("mlb_fetches_total{")
        })
        .map(str::to_owned)
        .collect();
    println!("controller metrics: {}", reasons.join(", "));
    println!();
    println!("| rolling restart | kill grace | requests | failed | reloads | duration |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {RESTART_TASKS} tasks (minimum health 0.5, over-capacity 0.25) | {RESTART_GRACE_S} s | {} | {} | {} | {:.1} s |",
        restart.requests,
        restart.failed,
        restart.reloads,
        restart.duration.as_secs_f64()
    );
    for failure in &restart.failures {
        println!("failed request (restart): {failure}");
    }
    Ok(())
}

const RESTART_VHOST: &str = "restart.example.test";
const RESTART_TASKS: usize = 4;
const RESTART_GRACE_S: u64 = 3;

/// What the rolling restart saw.
struct Restart {
    requests: u64,
    failed: u64,
    failures: Vec<String>,
    reloads: f64,
    duration: Duration,
}

/// An app of [`RESTART_TASKS`] simulator-run tasks (real loopback servers
/// with HTTP health checks) under load, restarted by Marathon's
/// `POST /v2/apps/{id}/restart`: every task replaced, each killed one
/// serving through its kill grace period.
fn rolling_restart(sim: &str, http: u16, metrics: u16, epoch: Instant) -> anyhow::Result<Restart> {
    let app = json!({
        "id": "/restart",
        "cmd": "serve",
        "instances": RESTART_TASKS,
        "labels": {
            "HAPROXY_GROUP": "external",
            "HAPROXY_0_VHOST": RESTART_VHOST,
            "HAPROXY_0_BIND_ADDR": "127.0.0.1",
        },
        "portDefinitions": [{"port": 19998, "protocol": "tcp"}],
        "healthChecks": [{
            "protocol": "HTTP", "path": "/", "portIndex": 0,
            "intervalSeconds": 1, "timeoutSeconds": 1,
            "maxConsecutiveFailures": 3, "gracePeriodSeconds": 5
        }],
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.25},
        "taskKillGracePeriodSeconds": RESTART_GRACE_S,
    });
    admin(sim, "POST", "/v2/apps", &app.to_string())?;
    let started = Instant::now();
    let mut conn = None;
    while get(&mut conn, http, RESTART_VHOST, false) != Some(200) || deploying(sim)? {
        if started.elapsed() > Duration::from_secs(120) {
            bail!("/restart not served within 120 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let reloads_before = metric(metrics, "mlb_reloads_ok_total").unwrap_or(0.0);
    let (stats, stop, clients) = start_load(http, RESTART_VHOST, epoch);
    std::thread::sleep(Duration::from_secs(1));
    let began = Instant::now();
    admin(sim, "POST", "/v2/apps/restart/restart", "")?;
    std::thread::sleep(Duration::from_millis(500));
    while deploying(sim)? {
        if began.elapsed() > Duration::from_secs(180) {
            bail!("the rolling restart did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let duration = began.elapsed();
    // Requests still in flight to the last killed tasks finish.
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let failures = stats.failures.lock().map(|f| f.clone()).unwrap_or_default();
    Ok(Restart {
        requests: stats.ok.load(Ordering::Relaxed) + stats.failed.load(Ordering::Relaxed),
        failed: stats.failed.load(Ordering::Relaxed),
        failures,
        reloads: metric(metrics, "mlb_reloads_ok_total").unwrap_or(0.0) - reloads_before,
        duration,
    })
}

/// Whether the simulator runs a deployment.
fn deploying(sim: &str) -> anyhow::Result<bool> {
    let list = admin(sim, "GET", "/v2/deployments", "")?;
    Ok(list.as_array().is_some_and(|d| !d.is_empty()))
}

/// The `marathon-lb` binary beside this one, or `explicit`.
pub fn binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    crate::oneshot::find_marathon_lb(explicit)
}
