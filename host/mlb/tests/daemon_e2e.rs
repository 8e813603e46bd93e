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
    let mut cmd = Command::new(support::binary());
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
