//! SSE mode end to end: the simulator's event stream drives `marathon-lb
//! --sse --supervise-haproxy`, which runs a real HAProxy on loopback in front
//! of real HTTP backends.

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use support::Daemon;
use support::http::{backend, free_port, request, wait_for};

fn http(port: u16, host: &str, path: &str) -> Option<(u16, String)> {
    request(port, host, path).map(|r| (r.status, r.body))
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

/// How long a step may take on a loaded CI machine before the test gives up.
const PATIENCE: Duration = Duration::from_secs(30);

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
    let mut cmd = support::command();
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

    // Scale up: the new task serves. The latency is printed, not asserted (a
    // loaded CI machine is no place for timing; `mlb-bench --live` measures it).
    let t0 = Instant::now();
    sim.sim()
        .mutate(|list, ctx, out| marathon_sim::ops::add_task(list, "/e2e/web", task(b), ctx, out))
        .unwrap();
    wait_for("backend-b", PATIENCE, || served("backend-b"));
    println!("event -> serving latency: {} ms", t0.elapsed().as_millis());
    let waited = Instant::now();
    while metric(metrics, "mlb_event_to_applied_seconds_count") == 0 {
        assert!(
            waited.elapsed() < PATIENCE,
            "no latency recorded\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Scale down: the killed task is gone.
    sim.sim()
        .mutate(|list, _, out| {
            marathon_sim::ops::remove_task(list, "/e2e/web", "e2e_web.a", false, out)
        })
        .unwrap();
    wait_for("backend-a to be gone", PATIENCE, || {
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
    // Wait until the reconciles settle (no new one for 2 s), however slow the machine.
    let mut settled = (metric(metrics, "mlb_reconciles_total"), Instant::now());
    let waited = Instant::now();
    while settled.1.elapsed() < Duration::from_secs(2) && waited.elapsed() < PATIENCE {
        std::thread::sleep(Duration::from_millis(200));
        let now = metric(metrics, "mlb_reconciles_total");
        if now != settled.0 {
            settled = (now, Instant::now());
        }
    }
    let burst = settled.0.saturating_sub(before);
    println!("reconciles for a burst of 200 task additions: {burst}");
    assert!((1..=10).contains(&burst), "{burst} reconciles\n{}", log());

    // SIGHUP refetches; SIGUSR1 re-validates and reloads; /_mlb_signal/hup signals us.
    let hups = metric(metrics, "mlb_reconciles_total{trigger=\"sighup\"}");
    signal(pid, "-HUP");
    let waited = Instant::now();
    while metric(metrics, "mlb_reconciles_total{trigger=\"sighup\"}") <= hups {
        assert!(
            waited.elapsed() < PATIENCE,
            "no SIGHUP reconcile:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let reloads = metric(metrics, "mlb_reloads_ok_total");
    signal(pid, "-USR1");
    wait_for("a SIGUSR1 reload", PATIENCE, || {
        metric(metrics, "mlb_reloads_ok_total") > reloads
    });
    let (status, body) = http(stats, "x", "/_mlb_signal/hup").unwrap();
    assert_eq!(status, 200, "{body}");
    wait_for("a /_mlb_signal/hup reconcile", PATIENCE, || {
        metric(metrics, "mlb_reconciles_total{trigger=\"sighup\"}") > hups + 1
    });

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
    wait_for("the deleted app to be gone", PATIENCE, || {
        http(http_port, "web.e2e.test", "/").is_some_and(|(s, _)| s == 503)
    });
    assert!(Path::new(&pid_file).exists());
    drop(daemon);
    rt.block_on(sim.shutdown());
}

/// `GET path` on `port` with optional basic-auth `credentials` (base64).
fn get_as(port: u16, path: &str, credentials: Option<&str>) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = credentials
        .map(|c| format!("Authorization: Basic {c}\r\n"))
        .unwrap_or_default();
    // One write: several small ones meet Nagle and delayed ACKs (40 ms each).
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

#[test]
fn port_9090_is_cheap_coalesced_redacted_and_protectable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (old_stats, stats, metrics) = (free_port(), free_port(), free_port());
    let lua = d.join("lua");
    // Count `pidof` runs: a wrapper first in HAProxy's PATH.
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = d.join("pidof.calls");
    let real = [
        "/usr/bin/pidof",
        "/bin/pidof",
        "/sbin/pidof",
        "/usr/sbin/pidof",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .map(|p| format!("exec {p} \"$@\""))
    .unwrap_or_else(|| "exit 1".into());
    let wrapper = bin.join("pidof");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\necho run >> {}\n{real}\n", calls.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pidof_runs = || {
        std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .count()
    };

    let head = format!(
        "global\n  maxconn 200\n  stats socket {dir}/haproxy.sock mode 600 expose-fd listeners level admin\n  hard-stop-after 10s\n\
         \x20 lua-load {lua}/getpids.lua\n  lua-load {lua}/getconfig.lua\n  lua-load {lua}/getmaps.lua\n  lua-load {lua}/signalmlb.lua\n\
         defaults\n  timeout connect 3s\n  timeout client 30s\n  timeout server 30s\n  option redispatch\n  option idle-close-on-response\n\
         userlist app_users\n  user alice password $6$mlbsalt9$r4i/2sBis63I54bc0kmHofFb.oUtJR.BtjQWFZ5ZKy7VekEZ2Igs4gVXdLRwC4.308KHdxbmYmtSD13AuNoxF0\n\
         listen stats\n  bind 127.0.0.1:{old_stats}\n  mode http\n  stats enable\n  stats auth admin:st4tspw\n  monitor-uri /_haproxy_health_check\n\
         \x20 acl getpid path /_haproxy_getpids\n  http-request use-service lua.getpids if getpid\n\
         \x20 acl getconfig path /_haproxy_getconfig\n  http-request use-service lua.getconfig if getconfig\n\
         \x20 acl signalmlbusr1 path /_mlb_signal/usr1\n  http-request use-service lua.signalmlbusr1 if signalmlbusr1\n",
        dir = d.display(),
        lua = lua.display()
    );
    let frontend = |name: &str| {
        format!(
            "\nfrontend {name}\n  bind 127.0.0.1:{}\n  mode http\n",
            free_port()
        )
    };
    // The hash of "op3r8tor" (openssl passwd -6 -salt mlbsalt9 op3r8tor).
    std::fs::write(
        d.join("stats-auth"),
        "ops:$6$mlbsalt9$r4i/2sBis63I54bc0kmHofFb.oUtJR.BtjQWFZ5ZKy7VekEZ2Igs4gVXdLRwC4.308KHdxbmYmtSD13AuNoxF0\n",
    )
    .unwrap();
    const OPS: &str = "b3BzOm9wM3I4dG9y"; // base64("ops:op3r8tor")

    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({"apps": []}));
    let pid_file = d.join("marathon-lb.pid");
    let mut cmd = support::command();
    cmd.current_dir(d)
        .args(["--sse", "--supervise-haproxy", "--group", "external"])
        .args(["--log-level", "INFO", "--syslog-socket", "/dev/null"])
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
        .arg("--stats-bind")
        .arg(format!("127.0.0.1:{stats}"))
        .arg("--stats-auth-file")
        .arg(d.join("stats-auth"))
        .env("MLB_PID_FILE", &pid_file)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("HAPROXY_HEAD", &head)
        .env("HAPROXY_HTTP_FRONTEND_HEAD", frontend("marathon_http_in"))
        .env(
            "HAPROXY_HTTP_FRONTEND_APPID_HEAD",
            frontend("marathon_http_appid_in"),
        )
        .env("HAPROXY_HTTPS_FRONTEND_HEAD", frontend("marathon_https_in"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("marathon-lb.log")).unwrap());
    let _daemon = Daemon(cmd.spawn().unwrap());
    let log = || std::fs::read_to_string(d.join("marathon-lb.log")).unwrap_or_default();

    // Protection: the new address, credentials for everything but the health check.
    wait_for("HAProxy on --stats-bind", Duration::from_secs(20), || {
        get_as(stats, "/_haproxy_health_check", None).is_some_and(|(s, _)| s == 200)
    });
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", old_stats)).is_err(),
        "the HEAD's own bind is replaced"
    );
    for path in [
        "/_haproxy_getpids",
        "/_haproxy_getconfig",
        "/_mlb_signal/usr1",
    ] {
        let (status, _) = get_as(stats, path, None).unwrap();
        assert_eq!(status, 401, "{path} without credentials");
        let (status, _) = get_as(stats, path, Some("b3BzOndyb25n")).unwrap();
        assert_eq!(status, 401, "{path} with a wrong password");
    }
    let (status, pids) = get_as(stats, "/_haproxy_getpids", Some(OPS)).unwrap();
    assert_eq!(status, 200);
    assert!(
        pids.split(' ').all(|p| p.parse::<u32>().is_ok()),
        "{pids:?}"
    );

    // getconfig: no password hash, no stats password.
    let (status, config) = get_as(stats, "/_haproxy_getconfig", Some(OPS)).unwrap();
    assert_eq!(status, 200);
    assert!(config.contains("listen stats"), "{config}");
    for secret in ["r4i/2sBis63I54bc0kmHofFb", "st4tspw"] {
        assert!(!config.contains(secret), "{secret} in getconfig:\n{config}");
    }
    assert!(
        config.contains("user alice password <redacted>"),
        "{config}"
    );

    // getpids: no process per request.
    let before = pidof_runs();
    let t = Instant::now();
    for _ in 0..300 {
        assert_eq!(
            get_as(stats, "/_haproxy_getpids", Some(OPS)).unwrap().0,
            200
        );
    }
    let took = t.elapsed();
    let runs = pidof_runs() - before;
    println!(
        "300 /_haproxy_getpids in {} ms ({:.0} req/s): {runs} pidof runs",
        took.as_millis(),
        300.0 / took.as_secs_f64()
    );
    assert!(
        runs as u64 <= took.as_secs() + 2,
        "{runs} pidof runs for 300 requests in {took:?}"
    );

    // Signals: a burst of 300 is a couple of signals and reloads.
    let signals = || log().matches("signal received").count();
    let (signals_before, reloads_before) = (signals(), metric(metrics, "mlb_reloads_ok_total"));
    let t = Instant::now();
    for _ in 0..300 {
        let (status, body) = get_as(stats, "/_mlb_signal/usr1", Some(OPS)).unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let took = t.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    let sent = signals() - signals_before;
    let reloads = metric(metrics, "mlb_reloads_ok_total") - reloads_before;
    println!(
        "300 /_mlb_signal/usr1 in {} ms: {sent} signals, {reloads} reloads",
        took.as_millis()
    );
    // About one signal per second of burst (two around a reload: the old
    // worker flushes what it coalesced, the new one starts its own window);
    // without coalescing it would be one per request.
    let secs = took.as_secs() + 1;
    assert!(
        (1..=2 * secs + 1).contains(&(sent as u64)),
        "{sent} signals\n{}",
        log()
    );
    // Never more than one reload per --min-reload-interval (0.5 s), and
    // none without a signal.
    let reload_bound = (took + Duration::from_secs(3)).as_secs_f64() / 0.5 + 1.0;
    assert!(
        reloads >= 1 && reloads as f64 <= reload_bound && reloads <= sent as u64 + 1,
        "{reloads} reloads for {sent} signals\n{}",
        log()
    );
    rt.block_on(sim.shutdown());
}

#[test]
fn min_reload_interval_bounds_the_reload_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let runs_file = d.join("reloads");
    let rt = support::runtime();
    let sim = support::start_sim(
        &rt,
        json!({"apps": [{
            "id": "/w", "instances": 1, "labels": {"HAPROXY_GROUP": "external"},
            "portDefinitions": [{"port": 10001}],
            "tasks": [{"id": "w.a", "host": "127.0.0.1", "ports": [20000], "state": "TASK_RUNNING"}]
        }]}),
    );
    let interval = 1.0;
    let started = Instant::now();
    let _daemon = Daemon(
        support::command()
            .current_dir(d)
            .args(["--sse", "--group", "external", "--skip-validation"])
            .args(["--log-level", "INFO", "--syslog-socket", "/dev/null"])
            .args(["--max-reload-retries", "0", "--reload-interval", "0"])
            .args(["--min-reload-interval", &interval.to_string()])
            .arg("--command")
            .arg(format!("sh -c 'echo run >> {}'", runs_file.display()))
            .arg("--marathon")
            .arg(sim.base_url())
            .arg("--haproxy-config")
            .arg(d.join("haproxy.cfg"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let runs = || {
        std::fs::read_to_string(&runs_file)
            .unwrap_or_default()
            .lines()
            .count()
    };
    wait_for("the first apply", Duration::from_secs(20), || runs() >= 1);
    // A change every 100 ms for 4 s.
    for i in 0..40u16 {
        sim.sim()
            .mutate(|list, ctx, out| {
                marathon_sim::ops::add_task(list, "/w", task(20001 + i), ctx, out)
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let elapsed = started.elapsed().as_secs_f64();
    let n = runs();
    let bound = (elapsed / interval).ceil() as usize + 1;
    println!(
        "40 changes in 4 s with --min-reload-interval {interval}: --command ran {n} times in {elapsed:.1} s (bound {bound})"
    );
    assert!(n >= 2, "the changes were applied");
    assert!(n <= bound, "--command ran {n} times in {elapsed:.1} s");
    rt.block_on(sim.shutdown());
}

#[test]
fn dry_sse_prints_each_config_and_applies_nothing() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (marker, config) = (d.join("command-ran"), d.join("haproxy.cfg"));
    let rt = support::runtime();
    let sim = support::start_sim(
        &rt,
        json!({"apps": [{
            "id": "/w", "instances": 1, "labels": {"HAPROXY_GROUP": "external"},
            "portDefinitions": [{"port": 10001}],
            "tasks": [{"id": "w.a", "host": "127.0.0.1", "ports": [20000], "state": "TASK_RUNNING"}]
        }]}),
    );
    let mut child = support::command()
        .current_dir(d)
        .args(["--sse", "--dry", "--group", "external"])
        .args(["--syslog-socket", "/dev/null"])
        .arg("--command")
        .arg(format!("touch {}", marker.display()))
        .arg("--marathon")
        .arg(sim.base_url())
        .arg("--haproxy-config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _daemon = Daemon(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let printed = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) if line.contains(needle) => return,
                Ok(line) => seen.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(e) => panic!("stdout closed ({e}) before {needle:?}: {seen:?}"),
            }
        }
        panic!("{needle:?} not printed: {seen:?}");
    };
    printed("127.0.0.1:20000");
    // A second reconcile: had the first one applied anything, the command
    // would have run before this config was printed.
    sim.sim()
        .mutate(|list, ctx, out| marathon_sim::ops::add_task(list, "/w", task(20001), ctx, out))
        .unwrap();
    printed("127.0.0.1:20001");
    assert!(!config.exists(), "--dry wrote {}", config.display());
    assert!(!marker.exists(), "--dry ran --command");
    rt.block_on(sim.shutdown());
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat; the first after ")" is field 3.
    fields
        .get(11)
        .and_then(|f| f.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
}

#[test]
fn metrics_endpoint_survives_running_out_of_file_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let metrics = free_port();
    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({"apps": []}));
    let log_file = d.join("marathon-lb.log");
    // A small descriptor table: the idle crowd below fills it.
    let daemon = Daemon(
        Command::new("prlimit")
            .arg("--nofile=64:64")
            .arg(support::binary())
            .env(support::cache_env().0, support::cache_env().1)
            .current_dir(d)
            .args([
                "--sse",
                "--group",
                "external",
                "--skip-validation",
                "--command",
                "true",
            ])
            .args(["--max-reload-retries", "0", "--reload-interval", "0"])
            .args(["--log-level", "INFO", "--syslog-socket", "/dev/null"])
            .arg("--metrics-address")
            .arg(format!("127.0.0.1:{metrics}"))
            .arg("--marathon")
            .arg(sim.base_url())
            .arg("--haproxy-config")
            .arg(d.join("haproxy.cfg"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_file).unwrap())
            .spawn()
            .unwrap(),
    );
    let log = || std::fs::read_to_string(&log_file).unwrap_or_default();
    let pid = daemon.0.id();
    metric(metrics, "mlb_reconciles_total");
    let idle: Vec<std::net::TcpStream> = (0..200)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", metrics)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (ticks, t) = (cpu_ticks(pid), Instant::now());
    let took = wait_for(
        "/metrics through the idle crowd",
        Duration::from_secs(60),
        || {
            http(metrics, "x", "/metrics")
                .is_some_and(|(s, body)| s == 200 && body.contains("mlb_apps"))
        },
    );
    let cpu = cpu_ticks(pid) - ticks;
    println!(
        "fd table full of 200 idle connections: /metrics answered after {} ms, controller CPU {} ticks in {} ms",
        took.as_millis(),
        cpu,
        t.elapsed().as_millis()
    );
    assert!(
        log().contains("accept failed; pausing"),
        "EMFILE path not reached:\n{}",
        log()
    );
    assert!(
        log().matches("accept failed; pausing").count() <= 2,
        "the accept error is not logged per attempt:\n{}",
        log()
    );
    drop(idle);
    rt.block_on(sim.shutdown());
}

/// Issue 15, item 1: the supervised HAProxy runs with a minimal environment
/// (only `PATH`, `MLB_PID_FILE`, `TZ`, `LANG`, `LC_ALL`), so a secret in the
/// controller's environment cannot reach it even through a template that
/// says `"${SOME_VAR}"`; and an auth realm `${SOME_VAR}` from a label is
/// refused (that app only).
#[test]
fn supervised_haproxy_runs_with_a_minimal_environment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = backend("backend-a");
    let (http_port, stats, service) = (free_port(), free_port(), free_port());
    let head = format!(
        "global\n  maxconn 200\n  hard-stop-after 10s\n\
         \x20 stats socket {dir}/haproxy.sock mode 600 expose-fd listeners level admin\n\
         defaults\n  timeout connect 3s\n  timeout client 30s\n  timeout server 30s\n\
         listen stats\n  bind 127.0.0.1:{stats}\n  mode http\n\
         \x20 http-request return status 200 content-type text/plain string \"env=[${{SOME_VAR}}][${{HOME}}]\" if {{ path /env }}\n",
        dir = d.display()
    );
    let frontend = |name: &str, port: u16| {
        format!("\nfrontend {name}\n  bind 127.0.0.1:{port}\n  mode http\n")
    };
    let app = |id: &str, vhost: &str, port: u16, extra: (&str, &str)| {
        json!({"id": id, "instances": 1,
               "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": vhost,
                          "HAPROXY_0_BIND_ADDR": "127.0.0.1", extra.0: extra.1},
               "portDefinitions": [{"port": port}],
               "tasks": [{"id": format!("{}.a", &id[1..]).replace('/', "_"), "host": "127.0.0.1",
                          "ports": [a], "state": "TASK_RUNNING"}]})
    };
    let doc = json!({"apps": [
        app("/e2e/web", "web.e2e.test", service, ("HAPROXY_0_ENABLED", "true")),
        app("/evil/realm", "realm.e2e.test", free_port(), ("HAPROXY_0_AUTH", "${SOME_VAR}:user:pass")),
    ]});
    let rt = support::runtime();
    let sim = support::start_sim(&rt, doc);
    let mut cmd = support::command();
    cmd.current_dir(d)
        .args([
            "--sse",
            "--supervise-haproxy",
            "--group",
            "external",
            "--log-level",
            "INFO",
        ])
        .args(["--syslog-socket", "/dev/null"])
        .arg("--marathon")
        .arg(sim.base_url())
        .arg("--haproxy-config")
        .arg(d.join("haproxy.cfg"))
        .arg("--haproxy-run-dir")
        .arg(d)
        .arg("--server-state-file")
        .arg(d.join("server-state"))
        .arg("--lua-dir")
        .arg(d.join("lua"))
        .arg("--metrics-address")
        .arg(format!("127.0.0.1:{}", free_port()))
        .env("SOME_VAR", "topsecret")
        .env("HOME", "/home/topsecret")
        .env("MLB_PID_FILE", d.join("marathon-lb.pid"))
        .env("HAPROXY_HEAD", &head)
        .env(
            "HAPROXY_HTTP_FRONTEND_HEAD",
            frontend("marathon_http_in", http_port),
        )
        .env(
            "HAPROXY_HTTP_FRONTEND_APPID_HEAD",
            frontend("marathon_http_appid_in", free_port()),
        )
        .env(
            "HAPROXY_HTTPS_FRONTEND_HEAD",
            frontend("marathon_https_in", free_port()),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("marathon-lb.log")).unwrap());
    let daemon = Daemon(cmd.spawn().unwrap());
    let log = || std::fs::read_to_string(d.join("marathon-lb.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http(http_port, "web.e2e.test", "/").is_none_or(|(s, _)| s != 200) {
        assert!(
            Instant::now() < deadline,
            "HAProxy does not serve:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Even an operator template that names the variables gets nothing.
    assert_eq!(
        http(stats, "x", "/env"),
        Some((200, "env=[][]".to_owned())),
        "{}",
        log()
    );
    let r = request(http_port, "realm.e2e.test", "/").unwrap();
    let all = format!("{} {:?} {}", r.status, r.headers, r.body);
    assert!(!all.contains("topsecret"), "{all}");
    assert_eq!(
        r.status, 503,
        "the app with the realm ${{SOME_VAR}} is left out: {all}"
    );
    assert!(log().contains("HAPROXY_0_AUTH"), "{}", log());

    let master = std::fs::read_to_string(d.join("haproxy.pid")).unwrap();
    let master = master.split_whitespace().next().unwrap();
    let environ = std::fs::read(format!("/proc/{master}/environ")).unwrap();
    let names: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| {
            String::from_utf8_lossy(v)
                .split('=')
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert!(names.iter().any(|n| n == "PATH"), "{names:?}");
    for name in &names {
        assert!(
            ["PATH", "MLB_PID_FILE", "TZ", "LANG", "LC_ALL"].contains(&name.as_str())
                || name.starts_with("HAPROXY_"),
            "HAProxy inherited {name}: {names:?}"
        );
    }
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
        let mut cmd = support::command();
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
            .envs(loopback_frontends(http_port, https))
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

/// The one line (DEBUG aside) logged after line `before`, once a
/// straggling line (an old worker's output) had time to arrive; at most
/// five DEBUG lines beside it.
fn one_new_line(lb: &Loopback, before: usize) -> String {
    let new_lines = |log: &str| {
        log.lines()
            .skip(before)
            .filter(|l| !l.contains(" DEBUG "))
            .count()
    };
    // The reconcile line follows the change HAProxy serves (however loaded
    // the machine), then stragglers get a second.
    wait_for("the reconcile line", PATIENCE, || new_lines(&lb.log()) >= 1);
    std::thread::sleep(Duration::from_millis(1000));
    let log = lb.log();
    let lines: Vec<&str> = log
        .lines()
        .skip(before)
        .filter(|l| !l.contains(" DEBUG "))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{}",
        log.lines().skip(before).collect::<Vec<_>>().join("\n")
    );
    let debug = log
        .lines()
        .skip(before)
        .filter(|l| l.contains(" DEBUG "))
        .count();
    // The event, maybe a fetch (its reason and URL), the runtime write and
    // update, the stages: a handful, not a line per server or section.
    assert!(debug <= 8, "{log}");
    lines[0].to_owned()
}

/// The `:80`, `:443` and app-id frontend HEADs moved to loopback: HTTP on
/// `http`, HTTPS (with `--ssl-certs`) on `https`, app-id on a free port.
fn loopback_frontends(http: u16, https: u16) -> [(&'static str, String); 3] {
    [
        (
            "HAPROXY_HTTP_FRONTEND_HEAD",
            format!("\nfrontend marathon_http_in\n  bind 127.0.0.1:{http}\n  mode http\n"),
        ),
        (
            "HAPROXY_HTTP_FRONTEND_APPID_HEAD",
            format!(
                "\nfrontend marathon_http_appid_in\n  bind 127.0.0.1:{}\n  mode http\n",
                free_port()
            ),
        ),
        (
            "HAPROXY_HTTPS_FRONTEND_HEAD",
            format!(
                "\nfrontend marathon_https_in\n  bind 127.0.0.1:{https} ssl {{sslCerts}}\n  mode http\n"
            ),
        ),
    ]
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
    // Twice: the reconciles already queued (start, stream connected) have
    // failed, so what brings HAProxy up once the certificate is there is a
    // retry.
    wait_for(
        "the certificate message twice",
        Duration::from_secs(20),
        || lb.log().matches("no certificate at").count() >= 2,
    );
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
    wait_for("mlb_haproxy_up 1", Duration::from_secs(20), || {
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
    // A membership change goes through the runtime API: one line, no reload.
    let before = lb.log().lines().count();
    sim.sim()
        .mutate(|list, ctx, out| marathon_sim::ops::add_task(list, "/e2e/web", task(b), ctx, out))
        .unwrap();
    wait_for("backend-b", Duration::from_secs(20), || {
        lb.serves("backend-b")
    });
    let line = one_new_line(&lb, before);
    assert!(
        line.contains(" INFO marathon_lb: reconcile: +1 server in e2e_web_")
            && line.contains("trigger=event")
            && line.contains("haproxy=runtime")
            && !line.contains("reload_ms="),
        "{line}"
    );
    // A removed app changes the sections: one reload, one line.
    let before = lb.log().lines().count();
    sim.sim()
        .mutate(|list, _, out| marathon_sim::ops::remove_app(list, "/e2e/tcp", out))
        .unwrap();
    wait_for("the reload", Duration::from_secs(20), || {
        lb.log()
            .lines()
            .skip(before)
            .any(|l| l.contains("reconcile: "))
    });
    let line = one_new_line(&lb, before);
    assert!(
        line.contains(" INFO marathon_lb: reconcile: -backend e2e_tcp_")
            && line.contains("haproxy=reloaded")
            && line.contains("reload_ms="),
        "{line}"
    );
    let log = lb.log();
    for noise in [
        "stopped (cumulated",
        // HAProxy's warning; the once-at-start note about a custom HEAD names the option.
        "idle-close-on-response' ignored",
        "haproxy version",
        "ReloadReport",
    ] {
        assert!(!log.contains(noise), "{noise}:\n{log}");
    }
    // The loopback HEAD is a custom one: the supervised option is announced once, not per reload.
    assert_eq!(
        log.matches("custom HAPROXY_HEAD: supervised mode adds")
            .count(),
        1
    );
    drop(lb);
    rt.block_on(sim.shutdown());
}

/// marathon-lb's own mode: `--command` starts and reloads an HAProxy the
/// controller does not supervise. With `--haproxy-admin-socket` a
/// membership change goes through that HAProxy's admin socket (the command
/// does not run); a new app still runs the command.
#[test]
fn command_mode_with_an_admin_socket_applies_membership_without_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b, c) = (
        backend("backend-a"),
        backend("backend-b"),
        backend("backend-c"),
    );
    let (http_port, metrics, service) = (free_port(), free_port(), free_port());
    let rt = support::runtime();
    let sim = support::start_sim(&rt, web_app(service, a));
    let (runs_file, pid_file, socket) =
        (d.join("runs"), d.join("haproxy.pid"), d.join("admin.sock"));
    // What marathon-lb's reload script does: start HAProxy, or replace the
    // running one (-sf).
    let script = d.join("reload.sh");
    std::fs::write(
        &script,
        format!(
            "echo run >> {runs}\nold=$(cat {pid} 2>/dev/null)\nexec haproxy -f {d}/haproxy.cfg -p {pid} -D ${{old:+-sf $old}}\n",
            runs = runs_file.display(),
            pid = pid_file.display(),
            d = d.display()
        ),
    )
    .unwrap();
    /// Stops the HAProxy the command started (and shows the log when the
    /// test failed).
    struct Stop(std::path::PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let log = self.0.with_file_name("marathon-lb.log");
                let config = self.0.with_file_name("haproxy.cfg");
                for file in [log, config] {
                    eprintln!("{}", std::fs::read_to_string(file).unwrap_or_default());
                }
            }
            for pid in std::fs::read_to_string(&self.0)
                .unwrap_or_default()
                .split_whitespace()
            {
                let _ = Command::new("kill").arg(pid).status();
            }
        }
    }
    let _stop = Stop(pid_file.clone());
    let head = format!(
        "global\n  maxconn 200\n  stats socket {} mode 600 expose-fd listeners level admin\n\
         defaults\n  timeout connect 3s\n  timeout client 30s\n  timeout server 30s\n  option redispatch\n",
        socket.display()
    );
    let _daemon = Daemon(
        support::command()
            .current_dir(d)
            .args(["--sse", "--group", "external", "--log-level", "INFO"])
            .args(["--syslog-socket", "/dev/null", "--max-reload-retries", "0"])
            .arg("--command")
            .arg(format!("sh {}", script.display()))
            .arg("--haproxy-admin-socket")
            .arg(&socket)
            .arg("--marathon")
            .arg(sim.base_url())
            .arg("--haproxy-config")
            .arg(d.join("haproxy.cfg"))
            .arg("--metrics-address")
            .arg(format!("127.0.0.1:{metrics}"))
            .env("HAPROXY_HEAD", &head)
            .envs(loopback_frontends(http_port, free_port()))
            .arg("--ssl-certs")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/loopback-cert.pem"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("marathon-lb.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let log = || std::fs::read_to_string(d.join("marathon-lb.log")).unwrap_or_default();
    let runs = || {
        std::fs::read_to_string(&runs_file)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let serves = |host: &str, who: &str| {
        http(http_port, host, "/").is_some_and(|(s, body)| s == 200 && body == who)
    };
    wait_for("HAProxy to serve backend-a", PATIENCE, || {
        serves("web.e2e.test", "backend-a")
    });
    assert_eq!(runs(), 1, "{}", log());

    // A new task: through the admin socket, not the command.
    sim.sim()
        .mutate(|list, ctx, out| marathon_sim::ops::add_task(list, "/e2e/web", task(b), ctx, out))
        .unwrap();
    wait_for("backend-b", PATIENCE, || {
        serves("web.e2e.test", "backend-b")
    });
    // A task gone: set to maintenance through the socket at once.
    sim.sim()
        .mutate(|list, _, out| {
            marathon_sim::ops::remove_task(list, "/e2e/web", "e2e_web.a", false, out)
        })
        .unwrap();
    wait_for("backend-a to be gone", PATIENCE, || {
        (0..6).all(|_| serves("web.e2e.test", "backend-b"))
    });
    assert_eq!(
        runs(),
        1,
        "the command ran for a membership change\n{}",
        log()
    );
    assert!(
        metric(metrics, "mlb_runtime_updates_total") >= 2,
        "{}",
        log()
    );
    let on_disk = std::fs::read_to_string(d.join("haproxy.cfg")).unwrap();
    assert!(
        on_disk.contains(&format!("127.0.0.1:{b}")) && !on_disk.contains(&format!("127.0.0.1:{a}")),
        "the file is right too:\n{on_disk}"
    );

    // A new app changes the sections: the command runs.
    let mut web = web_app(free_port(), b)["apps"][0].clone();
    web["portDefinitions"] = json!([{"port": service}]);
    let other = json!({
        "id": "/e2e/other", "instances": 1,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "other.e2e.test", "HAPROXY_0_BIND_ADDR": "127.0.0.1"},
        "portDefinitions": [{"port": free_port()}],
        "tasks": [{"id": "e2e_other.c", "host": "127.0.0.1", "ports": [c], "state": "TASK_RUNNING"}]
    });
    let apps = [web, other].map(|a| a.as_object().unwrap().clone());
    sim.sim().replace_apps(apps.to_vec(), true);
    wait_for("the new app", PATIENCE, || {
        serves("other.e2e.test", "backend-c")
    });
    assert_eq!(runs(), 2, "{}", log());
    assert!(serves("web.e2e.test", "backend-b"));
    rt.block_on(sim.shutdown());
}
