//! SSE mode end to end: the simulator's event stream drives `marathon-lb
//! --sse --supervise-haproxy`, which runs a real HAProxy on loopback in front
//! of real HTTP backends.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use support::http::{backend, free_port, request, wait_for};

fn http(port: u16, host: &str, path: &str) -> Option<(u16, String)> {
    request(port, host, path).map(|r| (r.status, r.body))
}

struct Daemon(Child);

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

fn task(port: u16) -> Map<String, Value> {
    json!({"host": "127.0.0.1", "ports": [port], "state": "TASK_RUNNING"})
        .as_object()
        .unwrap()
        .clone()
}

fn metric(port: u16, name: &str) -> u64 {
    let body = (0..50)
        .find_map(|_| match http(port, "x", "/metrics") {
            Some((200, body)) if body.contains("mlb_reconciles_total") => Some(body),
            _ => {
                std::thread::sleep(Duration::from_millis(20));
                None
            }
        })
        .expect("metrics endpoint answers");
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn signal(pid: u32, sig: &str) {
    assert!(
        Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn sse_mode_follows_marathon_with_a_supervised_haproxy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b, c) = (
        backend("backend-a"),
        backend("backend-b"),
        backend("backend-c"),
    );
    let (http_port, stats, metrics, service) = (free_port(), free_port(), free_port(), free_port());
    let lua = d.join("lua");
    let head = format!(
        "global\n  maxconn 200\n  stats socket {dir}/haproxy.sock mode 600 expose-fd listeners level admin\n  hard-stop-after 10s\n\
         \x20 lua-load {lua}/getpids.lua\n  lua-load {lua}/getconfig.lua\n  lua-load {lua}/getmaps.lua\n  lua-load {lua}/signalmlb.lua\n\
         defaults\n  timeout connect 3s\n  timeout client 30s\n  timeout server 30s\n  option redispatch\n  option idle-close-on-response\n\
         listen stats\n  bind 127.0.0.1:{stats}\n  mode http\n  stats enable\n  monitor-uri /_haproxy_health_check\n\
         \x20 acl getpid path /_haproxy_getpids\n  http-request use-service lua.getpids if getpid\n\
         \x20 acl signalmlbhup path /_mlb_signal/hup\n  http-request use-service lua.signalmlbhup if signalmlbhup\n",
        dir = d.display(),
        lua = lua.display()
    );
    let frontend = |name: &str| {
        format!(
            "\nfrontend {name}\n  bind 127.0.0.1:{}\n  mode http\n",
            if name == "marathon_http_in" {
                http_port
            } else {
                free_port()
            }
        )
    };
    let doc = json!({"apps": [{
        "id": "/e2e/web", "instances": 1,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.e2e.test", "HAPROXY_0_BIND_ADDR": "127.0.0.1"},
        "portDefinitions": [{"port": service}],
        "tasks": [{"id": "e2e_web.a", "host": "127.0.0.1", "ports": [a], "state": "TASK_RUNNING"}]
    }]});

    let rt = support::runtime();
    let sim = support::start_sim(&rt, doc.clone());
    let sim_addr = sim.addr();
    let pid_file = d.join("marathon-lb.pid");
    let mut cmd = Command::new(support::binary());
    cmd.current_dir(d)
        .args([
            "--sse",
            "--supervise-haproxy",
            "--group",
            "external",
            "--log-level",
            "INFO",
            "--syslog-socket",
            "/dev/null",
        ])
        .arg("--marathon")
        .arg(sim.base_url())
        .arg("--haproxy-config")
        .arg(d.join("haproxy.cfg"))
        .arg("--haproxy-run-dir")
        .arg(d)
        .arg("--server-state-file")
        .arg(d.join("server-state"))
        .arg("--lua-dir")
        .arg(&lua)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("--metrics-address")
        .arg(format!("127.0.0.1:{metrics}"))
        .env("MLB_PID_FILE", &pid_file)
        .env("HAPROXY_HEAD", &head)
        .env("HAPROXY_HTTP_FRONTEND_HEAD", frontend("marathon_http_in"))
        .env(
            "HAPROXY_HTTP_FRONTEND_APPID_HEAD",
            frontend("marathon_http_appid_in"),
        )
        .env("HAPROXY_HTTPS_FRONTEND_HEAD", frontend("marathon_https_in"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("marathon-lb.log")).unwrap());
    let daemon = Daemon(cmd.spawn().unwrap());
    let log = || std::fs::read_to_string(d.join("marathon-lb.log")).unwrap_or_default();
    let pid = daemon.0.id();

    let served = |who: &str| {
        http(http_port, "web.e2e.test", "/").is_some_and(|(s, body)| s == 200 && body == who)
    };
    wait_for(
        "HAProxy to serve backend-a",
        Duration::from_secs(20),
        || served("backend-a"),
    );

    // Scale up: the new task serves within 1 s of the event.
    let t0 = Instant::now();
    sim.sim()
        .mutate(|list, ctx, out| marathon_sim::ops::add_task(list, "/e2e/web", task(b), ctx, out))
        .unwrap();
    wait_for("backend-b", Duration::from_secs(5), || served("backend-b"));
    let latency = t0.elapsed();
    println!("event -> serving latency: {} ms", latency.as_millis());
    assert!(
        latency <= Duration::from_secs(1),
        "new task served after {latency:?}\n{}",
        log()
    );

    // Scale down: the killed task is gone.
    sim.sim()
        .mutate(|list, _, out| {
            marathon_sim::ops::remove_task(list, "/e2e/web", "e2e_web.a", false, out)
        })
        .unwrap();
    wait_for("backend-a to be gone", Duration::from_secs(5), || {
        (0..6).all(|_| served("backend-b"))
    });

    // A burst of changes becomes a handful of reconciles.
    let before = metric(metrics, "mlb_reconciles_total");
    for _ in 0..200 {
        sim.sim()
            .mutate(|list, ctx, out| {
                marathon_sim::ops::add_task(list, "/e2e/web", task(b), ctx, out)
            })
            .unwrap();
    }
    std::thread::sleep(Duration::from_secs(3));
    let burst = metric(metrics, "mlb_reconciles_total").saturating_sub(before);
    println!("reconciles for a burst of 200 task additions: {burst}");
    assert!((1..=10).contains(&burst), "{burst} reconciles\n{}", log());

    // SIGHUP refetches; SIGUSR1 re-validates and reloads; /_mlb_signal/hup signals us.
    let hups = metric(metrics, "mlb_reconciles_total{trigger=\"sighup\"}");
    signal(pid, "-HUP");
    wait_for("a SIGHUP reconcile", Duration::from_secs(5), || {
        metric(metrics, "mlb_reconciles_total{trigger=\"sighup\"}") > hups
    });
    let reloads = metric(metrics, "mlb_reloads_ok_total");
    signal(pid, "-USR1");
    wait_for("a SIGUSR1 reload", Duration::from_secs(5), || {
        metric(metrics, "mlb_reloads_ok_total") > reloads
    });
    let (status, body) = http(stats, "x", "/_mlb_signal/hup").unwrap();
    assert_eq!(status, 200, "{body}");
    wait_for(
        "a /_mlb_signal/hup reconcile",
        Duration::from_secs(5),
        || metric(metrics, "mlb_reconciles_total{trigger=\"sighup\"}") > hups + 1,
    );

    // Marathon down: the last config keeps serving.
    rt.block_on(sim.shutdown());
    std::thread::sleep(Duration::from_secs(2));
    assert!(served("backend-b"));
    // Marathon back (same address) with a different task: converges.
    let mut doc2 = doc;
    doc2["apps"][0]["tasks"][0]["ports"] = json!([c]);
    let sim = rt.block_on(async {
        let config = marathon_sim::SimConfig {
            listen: sim_addr,
            ..marathon_sim::SimConfig::default()
                .with_apps_json(doc2)
                .unwrap()
        };
        marathon_sim::start(config).await.unwrap()
    });
    wait_for("convergence to backend-c", Duration::from_secs(30), || {
        served("backend-c")
    });

    // HAProxy killed: restarted by the supervisor, traffic resumes.
    let pids = std::fs::read_to_string(d.join("haproxy.pid")).unwrap_or_default();
    if let Some(master) = pids.split_whitespace().next() {
        signal(master.parse().unwrap(), "-KILL");
        wait_for("HAProxy restart", Duration::from_secs(20), || {
            served("backend-c")
        });
    }
    // App deleted: its vhost is gone.
    sim.sim()
        .mutate(|list, _, out| marathon_sim::ops::remove_app(list, "/e2e/web", out).map(|_| ()))
        .unwrap();
    wait_for("the deleted app to be gone", Duration::from_secs(5), || {
        http(http_port, "web.e2e.test", "/").is_some_and(|(s, _)| s == 503)
    });
    assert!(Path::new(&pid_file).exists());
    drop(daemon);
    rt.block_on(sim.shutdown());
}

/// A supervised daemon on loopback: HEAD and the :80/:443/app-id frontends
/// moved to loopback ports, its log in `<dir>/marathon-lb.log`.
struct Loopback {
    _daemon: Daemon,
    dir: std::path::PathBuf,
    http: u16,
    metrics: u16,
}

impl Loopback {
    /// Start `marathon-lb --sse --supervise-haproxy` against `marathon`
    /// with `extra` flags, at the default log level.
    fn start(dir: &Path, marathon: &str, extra: &[&str]) -> Self {
        Self::with_maxconn(dir, marathon, extra, 200)
    }

    /// [`start`](Self::start) with another global `maxconn`.
    fn with_maxconn(dir: &Path, marathon: &str, extra: &[&str], maxconn: u64) -> Self {
        let (http_port, https, stats, metrics) =
            (free_port(), free_port(), free_port(), free_port());
        let lua = dir.join("lua");
        let head = format!(
            "global\n  maxconn {maxconn}\n  stats socket {d}/haproxy.sock mode 600 expose-fd listeners level admin\n  hard-stop-after 10s\n\
             \x20 lua-load {lua}/getpids.lua\n  lua-load {lua}/getconfig.lua\n  lua-load {lua}/getmaps.lua\n  lua-load {lua}/signalmlb.lua\n\
             defaults\n  timeout connect 3s\n  timeout client 30s\n  timeout server 30s\n  option redispatch\n\
             listen stats\n  bind 127.0.0.1:{stats}\n  mode http\n  stats enable\n  monitor-uri /_haproxy_health_check\n",
            d = dir.display(),
            lua = lua.display()
        );
        let mut cmd = Command::new(support::binary());
        cmd.current_dir(dir)
            .args(["--sse", "--supervise-haproxy", "--group", "external"])
            .args(["--syslog-socket", "/dev/null", "--marathon", marathon])
            .arg("--haproxy-config")
            .arg(dir.join("haproxy.cfg"))
            .arg("--haproxy-run-dir")
            .arg(dir)
            .arg("--server-state-file")
            .arg(dir.join("server-state"))
            .arg("--lua-dir")
            .arg(&lua)
            .arg("--metrics-address")
            .arg(format!("127.0.0.1:{metrics}"))
            .args(extra)
            .env("HAPROXY_HEAD", &head)
            .env(
                "HAPROXY_HTTP_FRONTEND_HEAD",
                format!("\nfrontend marathon_http_in\n  bind 127.0.0.1:{http_port}\n  mode http\n"),
            )
            .env(
                "HAPROXY_HTTP_FRONTEND_APPID_HEAD",
                format!(
                    "\nfrontend marathon_http_appid_in\n  bind 127.0.0.1:{}\n  mode http\n",
                    free_port()
                ),
            )
            .env(
                "HAPROXY_HTTPS_FRONTEND_HEAD",
                format!("\nfrontend marathon_https_in\n  bind 127.0.0.1:{https} ssl {{sslCerts}}\n  mode http\n"),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("marathon-lb.log")).unwrap());
        Self {
            _daemon: Daemon(cmd.spawn().unwrap()),
            dir: dir.to_owned(),
            http: http_port,
            metrics,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("marathon-lb.log")).unwrap_or_default()
    }

    fn serves(&self, who: &str) -> bool {
        http(self.http, "web.e2e.test", "/").is_some_and(|(s, body)| s == 200 && body == who)
    }
}

fn web_app(service: u16, task_port: u16) -> Value {
    json!({"apps": [{
        "id": "/e2e/web", "instances": 1,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.e2e.test", "HAPROXY_0_BIND_ADDR": "127.0.0.1"},
        "portDefinitions": [{"port": service}],
        "tasks": [{"id": "e2e_web.a", "host": "127.0.0.1", "ports": [task_port], "state": "TASK_RUNNING"}]
    }]})
}

/// A missing certificate of the :443 frontend is reported as what it is
/// (one global message naming the setting, not every app "left out"),
/// metrics say HAProxy is down, and the controller starts HAProxy by
/// itself once the certificate appears.
#[test]
fn a_missing_certificate_is_explained_and_haproxy_starts_once_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = backend("backend-a");
    let rt = support::runtime();
    let sim = support::start_sim(&rt, web_app(free_port(), a));
    let cert = d.join("cert.pem");
    let cert_flag = cert.display().to_string();
    let lb = Loopback::start(d, &sim.base_url(), &["--ssl-certs", &cert_flag]);
    wait_for("the certificate message", Duration::from_secs(20), || {
        lb.log().contains("no certificate at")
    });
    let log = lb.log();
    let line = log
        .lines()
        .find(|l| l.contains("no certificate at"))
        .unwrap()
        .to_owned();
    assert!(
        line.contains(" ERROR ")
            && line.contains(&format!("ssl crt {cert_flag}`"))
            && line.contains("--ssl-certs")
            && line.contains("HAProxy is not running"),
        "{line}"
    );
    assert!(!log.contains("left out"), "{log}");
    assert!(!d.join("haproxy.cfg").exists(), "nothing written yet");
    assert_eq!(metric(lb.metrics, "mlb_haproxy_up"), 0);

    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/loopback-cert.pem"),
        &cert,
    )
    .unwrap();
    wait_for(
        "HAProxy to serve once the certificate is there",
        Duration::from_secs(40),
        || lb.serves("backend-a"),
    );
    // (HAProxy serves a moment before the supervisor sees its worker.)
    wait_for("mlb_haproxy_up 1", Duration::from_secs(5), || {
        metric(lb.metrics, "mlb_haproxy_up") == 1
    });
    assert!(
        lb.log()
            .lines()
            .any(|l| l.contains("reconcile: ") && l.contains("trigger=retry")),
        "{}",
        lb.log()
    );
    drop(lb);
    rt.block_on(sim.shutdown());
}

/// A maxconn the open-files limit cannot hold is one message with the
/// numbers and the fix, and nothing is written.
#[test]
fn a_maxconn_above_the_open_files_limit_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rt = support::runtime();
    let sim = support::start_sim(&rt, web_app(free_port(), backend("backend-a")));
    // More connections than any limit here can hold (the hard limit, or
    // fs.nr_open for a process that may raise it).
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(1 << 20);
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20);
    let maxconn = hard.max(nr_open);
    let lb = Loopback::with_maxconn(d, &sim.base_url(), &["--dont-bind-http-https"], maxconn);
    wait_for("the open-files message", Duration::from_secs(20), || {
        lb.log().contains("open files")
    });
    let log = lb.log();
    let line = log.lines().find(|l| l.contains("open files")).unwrap();
    assert!(
        line.contains(&format!("global `maxconn {maxconn}` needs ~"))
            && line.contains("the limit here is")
            && line.contains("raise the hard `ulimit -n`")
            && line.contains("lower `maxconn` in HAPROXY_HEAD")
            && line.contains("HAProxy is not running"),
        "{line}"
    );
    assert!(!d.join("haproxy.cfg").exists(), "nothing written");
    assert_eq!(metric(lb.metrics, "mlb_haproxy_up"), 0);
    drop(lb);
    rt.block_on(sim.shutdown());
}

/// One scale-up logs one line at INFO and above: the reconcile line saying
/// what changed. At the default level (DEBUG, as marathon-lb) the rest is
/// the controller's own debug lines (the event, the fetch) — never HAProxy's
/// reload chatter ("Proxy X stopped", version banners) nor a warning about
/// an option the controller added itself (`idle-close-on-response` on
/// TCP-mode frontends).
#[test]
fn one_reload_logs_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b) = (backend("backend-a"), backend("backend-b"));
    let rt = support::runtime();
    let mut doc = web_app(free_port(), a);
    // A TCP app beside the HTTP one.
    doc["apps"].as_array_mut().unwrap().push(json!({
        "id": "/e2e/tcp", "instances": 1,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_BIND_ADDR": "127.0.0.1"},
        "portDefinitions": [{"port": free_port()}],
        "tasks": [{"id": "e2e_tcp.a", "host": "127.0.0.1", "ports": [a], "state": "TASK_RUNNING"}]
    }));
    let sim = support::start_sim(&rt, doc);
    let cert = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/loopback-cert.pem");
    let cert = cert.display().to_string();
    let lb = Loopback::start(d, &sim.base_url(), &["--ssl-certs", &cert]);
    wait_for(
        "HAProxy to serve backend-a",
        Duration::from_secs(20),
        || lb.serves("backend-a"),
    );
    std::thread::sleep(Duration::from_millis(500));
    let before = lb.log().lines().count();
    sim.sim()
        .mutate(|list, ctx, out| marathon_sim::ops::add_task(list, "/e2e/web", task(b), ctx, out))
        .unwrap();
    wait_for("backend-b", Duration::from_secs(5), || {
        lb.serves("backend-b")
    });
    // Let a straggling line (an old worker's output) arrive.
    std::thread::sleep(Duration::from_millis(1000));
    let log = lb.log();
    let lines: Vec<&str> = log
        .lines()
        .skip(before)
        .filter(|l| !l.contains(" DEBUG "))
        .collect();
    assert_eq!(lines.len(), 1, "{}", lines.join("\n"));
    let line = lines[0];
    assert!(
        line.contains(" INFO marathon_lb: reconcile: +1 server in e2e_web_")
            && line.contains("trigger=event")
            && line.contains("haproxy=reloaded")
            && line.contains("reload_ms="),
        "{line}"
    );
    let debug: Vec<&str> = log
        .lines()
        .skip(before)
        .filter(|l| l.contains(" DEBUG "))
        .collect();
    assert!(debug.len() <= 4, "{}", debug.join("\n"));
    for noise in [
        "stopped (cumulated",
        "idle-close-on-response",
        "haproxy version",
        "ReloadReport",
    ] {
        assert!(!log.contains(noise), "{noise}:\n{log}");
    }
    drop(lb);
    rt.block_on(sim.shutdown());
}
