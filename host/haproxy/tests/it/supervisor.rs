//! The HAProxy supervisor against a real HAProxy 2.6 on loopback: start,
//! serve, reload, stop; 50 reloads under load without a failed request; a
//! killed master is restarted; an invalid config is refused while the old
//! worker keeps serving.
//!
//! Backends are small keep-alive HTTP servers in this file (Python's
//! http.server does not take the load). Every HAProxy path lives in a temp
//! dir; ports are loopback ports picked at random. The tests run one at a
//! time (they time requests and reloads on a 2-core machine). Run with
//! `--nocapture` to see the load-test figures.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mlb_haproxy::{
    HaproxyError, RECOMMENDED_GLOBAL_LINES, StopOutcome, Supervisor, SupervisorConfig,
    with_supervised_options,
};

/// One test at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Read one HTTP/1.1 message head (up to the blank line) from `r`.
/// `Ok(None)`: the peer closed before sending anything.
fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<Vec<String>>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            if lines.is_empty() {
                return Ok(None);
            }
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed inside a message head",
            ));
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            return Ok(Some(lines));
        }
        lines.push(line);
    }
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A keep-alive HTTP/1.1 server on loopback answering every request with
/// `name` (thread per connection); `GET /slow` is answered after 1.5 s.
fn backend(name: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
                let Ok(mut writer) = stream.try_clone() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                while let Ok(Some(head)) = read_head(&mut reader) {
                    let close = header(&head, "connection")
                        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                        || head[0].ends_with("HTTP/1.0");
                    if head[0].starts_with("GET /slow ") {
                        std::thread::sleep(Duration::from_millis(1500));
                    }
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{name}",
                        name.len(),
                        if close { "Connection: close\r\n" } else { "" }
                    );
                    if writer.write_all(resp.as_bytes()).is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A response: status, whether the server closes the connection, body.
#[derive(Debug)]
struct Response {
    status: u16,
    close: bool,
    body: String,
}

/// Send one `GET path` on `conn` and read the whole response.
fn exchange(conn: &mut BufReader<TcpStream>, path: &str, close: bool) -> Result<Response, String> {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\n{}\r\n",
        if close { "Connection: close\r\n" } else { "" }
    );
    conn.get_mut()
        .write_all(req.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let head = read_head(conn)
        .map_err(|e| format!("read head: {e}"))?
        .ok_or("closed before any response byte")?;
    let status = head[0]
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {:?}", head[0]))?;
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .ok_or("no content-length")?;
    let mut body = vec![0; length];
    conn.read_exact(&mut body)
        .map_err(|e| format!("read body: {e}"))?;
    Ok(Response {
        status,
        close: close
            || header(&head, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close")),
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn connect(port: u16) -> Result<BufReader<TcpStream>, String> {
    let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_nodelay(true).unwrap();
    Ok(BufReader::new(s))
}

/// `GET path` on a new connection.
fn get(port: u16, path: &str) -> Result<Response, String> {
    exchange(&mut connect(port)?, path, true)
}

/// Loopback ports of one HAProxy.
#[derive(Debug, Clone, Copy)]
struct Ports {
    http: u16,
    stats: u16,
}

/// A supervised HAProxy's files in a temp dir.
struct Setup {
    dir: tempfile::TempDir,
    ports: Ports,
}

impl Setup {
    fn new() -> Self {
        Setup {
            dir: tempfile::tempdir().unwrap(),
            ports: Ports {
                http: free_port(),
                stats: free_port(),
            },
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn supervisor_config(&self) -> SupervisorConfig {
        SupervisorConfig {
            haproxy: PathBuf::from("haproxy"),
            config: self.path("haproxy.cfg"),
            run_dir: self.path("run"),
            state_file: self.path("state/global"),
            lua_dir: Some(self.path("lua")),
        }
    }

    /// Write the config routing the HTTP port to `backends`.
    fn write_config(&self, backends: &[u16]) {
        std::fs::write(self.path("haproxy.cfg"), self.config(backends)).unwrap();
    }

    /// A HEAD as a user would override it for a supervised HAProxy under a
    /// 20,000 open-files limit: low maxconn, loopback binds, temp paths, the
    /// recommended global lines, and the default options plus the supervised
    /// ones (`option idle-close-on-response`).
    fn config(&self, backends: &[u16]) -> String {
        let dir = self.dir.path().display();
        let recommended: String = RECOMMENDED_GLOBAL_LINES
            .iter()
            .map(|l| format!("  {l}\n"))
            .collect();
        let options = mlb_core::templates::global_option_lines(&with_supervised_options(
            mlb_core::templates::DEFAULT_GLOBAL_OPTIONS,
        ));
        // marathon-lb names servers after their address (`<ip>_<port>`): a
        // saved server state is applied to the server of the same name,
        // address and port included, so a name must not move to another
        // address.
        let servers: String = backends
            .iter()
            .map(|p| format!("  server 127_0_0_1_{p} 127.0.0.1:{p} check inter 2s\n"))
            .collect();
        let Ports { http, stats } = self.ports;
        format!(
            "global
  maxconn 2000
  stats socket {dir}/stats.sock mode 600 level admin expose-fd listeners
  server-state-file {dir}/state/global
{recommended}  lua-load {dir}/lua/getpids.lua
  lua-load {dir}/lua/getconfig.lua
  lua-load {dir}/lua/getmaps.lua
  lua-load {dir}/lua/signalmlb.lua
defaults
  load-server-state-from-file global
  mode http
  retries 3
  maxconn 1000
  timeout connect 3s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 1s
  timeout http-request 15s
  timeout queue 30s
{options}listen stats
  bind 127.0.0.1:{stats}
  stats enable
  monitor-uri /_haproxy_health_check
  http-request use-service lua.getpids if {{ path /_haproxy_getpids }}
  http-request use-service lua.getconfig if {{ path /_haproxy_getconfig }}
frontend web
  bind 127.0.0.1:{http}
  default_backend app
backend app
  balance roundrobin
{servers}"
        )
    }
}

fn is_running(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().next());
    !matches!(state, None | Some("Z" | "X"))
}

/// Wait until `f` is true (polling every 50 ms) or panic after `timeout`.
fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn start_serve_reload_stop() {
    let _serial = serial();
    let rt = runtime();
    let (a, b) = (backend("A"), backend("B"));
    let setup = Setup::new();
    setup.write_config(&[a]);
    rt.block_on(async {
        let sup = Supervisor::start(setup.supervisor_config()).await.unwrap();
        let counts = sup.stats();
        let master = sup.master_pid().unwrap();
        let first = sup.processes().await.unwrap();
        assert_eq!(first.master_pid, master);
        let first_worker = first.current_worker().unwrap();
        assert_eq!(counts.starts.load(Ordering::Relaxed), 1);
        assert!(setup.path("run/haproxy.pid").exists());
        let state = std::fs::read_to_string(setup.path("state/global")).unwrap();
        assert_eq!(state, "1\n", "an empty state file is created at start");

        // Serves, and the installed Lua services answer on the stats port.
        let port = setup.ports.http;
        let r = tokio::task::spawn_blocking(move || get(port, "/"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "A"));
        let stats = setup.ports.stats;
        let pids = tokio::task::spawn_blocking(move || get(stats, "/_haproxy_getpids"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            pids.body.split(' ').any(|p| p == first_worker.to_string()),
            "{pids:?}"
        );
        let cfg = tokio::task::spawn_blocking(move || get(stats, "/_haproxy_getconfig"))
            .await
            .unwrap()
            .unwrap();
        let (s1, s2) = (
            format!("server 127_0_0_1_{a} "),
            format!("server 127_0_0_1_{b} "),
        );
        assert!(cfg.body.contains(&s1) && !cfg.body.contains(&s2));

        // A second backend: the reload picks it up. A request in flight
        // keeps the first worker running as an old worker until it is
        // answered.
        let slow = std::thread::spawn(move || get(port, "/slow"));
        tokio::time::sleep(Duration::from_millis(300)).await;
        setup.write_config(&[a, b]);
        let report = sup.reload().await.unwrap();
        println!("reload: {report:?}");
        assert_ne!(report.new_worker_pid, first_worker);
        assert_eq!(report.old_workers, [first_worker]);
        assert_eq!(counts.old_workers.load(Ordering::Relaxed), 1);
        let slow = tokio::task::spawn_blocking(move || slow.join().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((slow.status, slow.body.as_str()), (200, "A"));
        tokio::time::timeout(Duration::from_secs(5), async {
            while !sup.processes().await.unwrap().old_workers.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the old worker exits once its request is answered");
        assert!(!is_running(first_worker));
        assert!(report.state_saved);
        assert_eq!(sup.master_pid(), Some(master), "the master keeps its PID");
        let state = std::fs::read_to_string(setup.path("state/global")).unwrap();
        assert!(state.starts_with("1\n# be_id"), "{state}");
        assert!(
            state.contains(&format!(" app 1 127_0_0_1_{a} 127.0.0.1 ")),
            "{state}"
        );
        let bodies = tokio::task::spawn_blocking(move || {
            (0..6)
                .map(|_| get(port, "/").unwrap().body)
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
        assert!(
            bodies.iter().any(|b| b == "A") && bodies.iter().any(|b| b == "B"),
            "{bodies:?}"
        );
        let cfg = tokio::task::spawn_blocking(move || get(stats, "/_haproxy_getconfig"))
            .await
            .unwrap()
            .unwrap();
        assert!(cfg.body.contains(&s2), "the new worker loaded the new file");
        assert_eq!(counts.reloads_ok.load(Ordering::Relaxed), 1);

        // Stop: everything goes away.
        let workers: Vec<u32> = sup.processes().await.unwrap().all_workers().collect();
        assert_eq!(sup.stop().await, StopOutcome::Graceful);
        assert!(!is_running(master));
        for w in workers {
            assert!(!is_running(w), "worker {w} still running");
        }
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        assert!(!setup.path("run/haproxy.pid").exists());
    });
}

/// What the load clients saw.
#[derive(Debug, Default)]
struct Load {
    ok: AtomicU64,
    failed: AtomicU64,
    connections: AtomicU64,
    errors: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Load {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut e) = self.errors.lock()
            && e.len() < 20
        {
            e.push(what);
        }
    }

    fn record(&self, result: &Result<Response, String>) {
        match result {
            Ok(r) if r.status == 200 => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => self.fail(format!("status {} ({})", r.status, r.body.trim())),
            Err(e) => self.fail(e.clone()),
        }
    }
}

/// Send requests at `rate` per second until `load.stop`: on one keep-alive
/// connection (reconnecting when the server announces a close) or on a new
/// connection each.
fn client(port: u16, rate: u32, keep_alive: bool, load: Arc<Load>) {
    let interval = Duration::from_secs(1) / rate;
    let start = Instant::now();
    let mut conn: Option<BufReader<TcpStream>> = None;
    let mut n = 0u32;
    while !load.stop.load(Ordering::Relaxed) {
        let due = start + interval * n;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        n += 1;
        if conn.is_none() {
            match connect(port) {
                Ok(c) => {
                    load.connections.fetch_add(1, Ordering::Relaxed);
                    conn = Some(c);
                }
                Err(e) => {
                    load.fail(e);
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let result = exchange(c, "/", !keep_alive);
        load.record(&result);
        if !matches!(&result, Ok(r) if !r.close) {
            conn = None;
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn fifty_reloads_under_load_lose_no_request() {
    let _serial = serial();
    let rt = runtime();
    let (a, b) = (backend("A"), backend("B"));
    let setup = Setup::new();
    setup.write_config(&[a, b]);
    let sup = rt
        .block_on(Supervisor::start(setup.supervisor_config()))
        .unwrap();
    let counts = sup.stats();

    let load = Arc::new(Load::default());
    let port = setup.ports.http;
    let clients: Vec<_> = [(200, true), (150, false)]
        .into_iter()
        .map(|(rate, keep_alive)| {
            let load = load.clone();
            std::thread::spawn(move || client(port, rate, keep_alive, load))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut max_old_workers = 0;
    let (one, both) = ([a], [a, b]);
    for i in 0..50 {
        // Alternate between one and two backends: every reload changes the
        // config.
        setup.write_config(if i % 2 == 0 { &one[..] } else { &both[..] });
        let report = rt
            .block_on(sup.reload())
            .unwrap_or_else(|e| panic!("reload {i}: {e}"));
        latencies.push(report.duration);
        max_old_workers = max_old_workers.max(report.old_workers.len());
        std::thread::sleep(Duration::from_millis(100));
    }
    let reload_phase = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    load.stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let old_workers_now = rt.block_on(sup.processes()).unwrap().old_workers.len();
    assert_eq!(rt.block_on(sup.stop()), StopOutcome::Graceful);

    latencies.sort();
    let ok = load.ok.load(Ordering::Relaxed);
    let failed = load.failed.load(Ordering::Relaxed);
    let elapsed = reload_phase + Duration::from_secs(1);
    println!(
        "50 reloads in {:.1} s under load: {} requests ({:.0}/s), {} failed, {} client connections",
        reload_phase.as_secs_f64(),
        ok + failed,
        (ok + failed) as f64 / elapsed.as_secs_f64(),
        failed,
        load.connections.load(Ordering::Relaxed),
    );
    println!(
        "reload latency: min {:?}, median {:?}, p90 {:?}, max {:?}; old workers: at most {} after a reload, {} at the end",
        latencies[0],
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        latencies[latencies.len() - 1],
        max_old_workers,
        old_workers_now,
    );
    let errors = load.errors.lock().unwrap().clone();
    assert_eq!(failed, 0, "failed requests: {errors:?}");
    assert!(ok > 1000, "only {ok} requests");
    assert_eq!(counts.reloads_ok.load(Ordering::Relaxed), 50);
    assert_eq!(counts.reloads_failed.load(Ordering::Relaxed), 0);
    assert_eq!(counts.starts.load(Ordering::Relaxed), 1);
}

#[test]
fn killed_master_is_restarted() {
    let _serial = serial();
    let rt = runtime();
    let a = backend("A");
    let setup = Setup::new();
    setup.write_config(&[a]);
    let sup = rt
        .block_on(Supervisor::start(setup.supervisor_config()))
        .unwrap();
    let counts = sup.stats();
    let port = setup.ports.http;
    assert_eq!(get(port, "/").unwrap().body, "A");
    let master = sup.master_pid().unwrap();

    let killed = Instant::now();
    let pid = rustix::process::Pid::from_raw(master as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    wait_for("the restart", Duration::from_secs(20), || {
        sup.master_pid().is_some_and(|p| p != master) && get(port, "/").is_ok()
    });
    println!("traffic resumed {:?} after SIGKILL", killed.elapsed());
    assert_eq!(get(port, "/").unwrap().body, "A");
    assert_eq!(counts.starts.load(Ordering::Relaxed), 2);

    // The restarted HAProxy reloads as before.
    let b = backend("B");
    setup.write_config(&[b]);
    rt.block_on(sup.reload()).unwrap();
    assert_eq!(get(port, "/").unwrap().body, "B");
    assert_eq!(rt.block_on(sup.stop()), StopOutcome::Graceful);
}

#[test]
fn invalid_config_is_refused_and_the_old_worker_keeps_serving() {
    let _serial = serial();
    let rt = runtime();
    let a = backend("A");
    let setup = Setup::new();
    setup.write_config(&[a]);
    let sup = rt
        .block_on(Supervisor::start(setup.supervisor_config()))
        .unwrap();
    let counts = sup.stats();
    let port = setup.ports.http;
    let worker = rt
        .block_on(sup.processes())
        .unwrap()
        .current_worker()
        .unwrap();

    let bad = format!("{}  bogus-directive here\n", setup.config(&[a]));
    std::fs::write(setup.path("haproxy.cfg"), bad).unwrap();
    let err = rt.block_on(sup.reload()).unwrap_err();
    println!("invalid config: {err}");
    match &err {
        HaproxyError::ReloadRejected(msg) => {
            assert!(msg.contains("unknown keyword 'bogus-directive'"), "{msg}")
        }
        other => panic!("expected ReloadRejected, got {other:?}"),
    }
    assert_eq!(counts.reloads_failed.load(Ordering::Relaxed), 1);
    let procs = rt.block_on(sup.processes()).unwrap();
    assert_eq!(
        procs.current_worker(),
        Some(worker),
        "the old worker is kept"
    );
    for _ in 0..5 {
        let r = get(port, "/").unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "A"));
    }

    // A valid config again: the next reload works.
    let b = backend("B");
    setup.write_config(&[b]);
    let report = rt.block_on(sup.reload()).unwrap();
    assert_ne!(report.new_worker_pid, worker);
    assert_eq!(get(port, "/").unwrap().body, "B");
    assert_eq!(counts.reloads_ok.load(Ordering::Relaxed), 1);
    assert_eq!(rt.block_on(sup.stop()), StopOutcome::Graceful);
}

#[test]
fn a_config_that_cannot_start_is_an_error() {
    let _serial = serial();
    let rt = runtime();
    let setup = Setup::new();
    std::fs::write(setup.path("haproxy.cfg"), "global\n  no-such-keyword\n").unwrap();
    let err = rt
        .block_on(Supervisor::start(setup.supervisor_config()))
        .unwrap_err();
    println!("bad start: {err}");
    assert!(
        matches!(err, HaproxyError::StartFailed(ref m) if m.contains("no-such-keyword")),
        "{err}"
    );
    // Nothing of the failed start is left running or counted (its
    // counters went with it): a valid config starts in the same place, as
    // the first start.
    setup.write_config(&[backend("A")]);
    let sup = rt
        .block_on(Supervisor::start(setup.supervisor_config()))
        .unwrap();
    assert_eq!(sup.stats().starts.load(Ordering::Relaxed), 1);
    assert_eq!(get(setup.ports.http, "/").unwrap().body, "A");
    assert_eq!(rt.block_on(sup.stop()), StopOutcome::Graceful);
}
