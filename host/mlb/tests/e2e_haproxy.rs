//! End to end with real parts: the Marathon simulator, the `marathon-lb`
//! binary (one-shot, validating with `haproxy -c`), a real HAProxy started on
//! the generated config and two real HTTP backends on loopback.
//!
//! Ports and paths are moved to loopback and a temp dir through the template
//! overrides a user would use (`HAPROXY_HEAD`, `HAPROXY_HTTP_FRONTEND_HEAD`, ...).

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

/// A tiny HTTP server answering every request with its own name.
fn backend(name: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
                    name.len()
                );
                let _ = stream.write_all(resp.as_bytes());
            });
        }
    });
    port
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /` with `Host: host` through HAProxy; (status, body).
fn get(port: u16, host: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    Some((status, body))
}

struct HaproxyProcess(Child);

impl Drop for HaproxyProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn app_doc(service_port: u16, backends: &[u16]) -> serde_json::Value {
    let tasks: Vec<_> = backends
        .iter()
        .enumerate()
        .map(|(i, port)| {
            json!({
                "id": format!("e2e_web.task-{i}"),
                "appId": "/e2e/web",
                "host": "127.0.0.1",
                "ports": [port],
                "state": "TASK_RUNNING",
                "startedAt": "2026-01-01T00:00:00.000Z",
                "stagedAt": "2026-01-01T00:00:00.000Z",
                "version": "2026-01-01T00:00:00.000Z"
            })
        })
        .collect();
    json!({"apps": [{
        "id": "/e2e/web",
        "instances": backends.len(),
        "labels": {
            "HAPROXY_GROUP": "external",
            "HAPROXY_0_VHOST": "web.e2e.test",
            "HAPROXY_0_BIND_ADDR": "127.0.0.1"
        },
        "portDefinitions": [{"port": service_port, "protocol": "tcp", "name": "http", "labels": {}}],
        "tasks": tasks
    }]})
}

fn run_marathon_lb(dir: &Path, marathon: &str, env: &[(String, String)], command: &str) {
    let mut cmd = Command::new(support::binary());
    cmd.current_dir(dir)
        .args([
            "--marathon",
            marathon,
            "--group",
            "external",
            "--log-level",
            "INFO",
            "--syslog-socket",
            "/dev/null",
        ])
        .arg("--haproxy-config")
        .arg(dir.join("haproxy.cfg"))
        .args(["--command", command, "--reload-interval", "2"]);
    for (k, _) in std::env::vars() {
        if k.starts_with("HAPROXY_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "marathon-lb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn vhost_request_reaches_backends_through_real_haproxy() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (backend("backend-a"), backend("backend-b"));
    let (http, https, appid, stats, service) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let sock = dir.path().join("haproxy.sock");
    let head = format!(
        "global\n  maxconn 200\n  stats socket {} mode 600 expose-fd listeners level admin\n\
         defaults\n  retries 3\n  timeout connect 3s\n  timeout client 30s\n  timeout server 30s\n  option redispatch\n\
         listen stats\n  bind 127.0.0.1:{stats}\n  mode http\n  stats enable\n  monitor-uri /_haproxy_health_check\n",
        sock.display()
    );
    let env = vec![
        ("HAPROXY_HEAD".to_owned(), head),
        (
            "HAPROXY_HTTP_FRONTEND_HEAD".to_owned(),
            format!("\nfrontend marathon_http_in\n  bind 127.0.0.1:{http}\n  mode http\n"),
        ),
        (
            "HAPROXY_HTTP_FRONTEND_APPID_HEAD".to_owned(),
            format!("\nfrontend marathon_http_appid_in\n  bind 127.0.0.1:{appid}\n  mode http\n"),
        ),
        (
            "HAPROXY_HTTPS_FRONTEND_HEAD".to_owned(),
            format!("\nfrontend marathon_https_in\n  bind 127.0.0.1:{https}\n  mode http\n"),
        ),
    ];

    let rt = support::runtime();
    let sim = support::start_sim(&rt, app_doc(service, &[a]));
    run_marathon_lb(dir.path(), &sim.base_url(), &env, "true");
    let cfg = std::fs::read_to_string(dir.path().join("haproxy.cfg")).unwrap();
    assert!(
        cfg.contains("acl host_web_e2e_test_e2e_web hdr(host) -i web.e2e.test"),
        "{cfg}"
    );

    let child = Command::new("haproxy")
        .args(["-W", "-db", "-f"])
        .arg(dir.path().join("haproxy.cfg"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy must be installed (apt-get install haproxy)");
    let master = child.id();
    let _haproxy = HaproxyProcess(child);

    // One backend: the vhost routes to it, an unknown host gets no backend.
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        if let Some(r) = get(http, "web.e2e.test") {
            break r;
        }
        assert!(Instant::now() < deadline, "HAProxy did not come up");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(first, (200, "backend-a".to_owned()));
    assert_eq!(get(http, "other.e2e.test").map(|r| r.0), Some(503));
    // The service-port frontend routes too.
    assert_eq!(
        get(service, "anything").map(|r| r.1),
        Some("backend-a".to_owned())
    );

    // Scale to two tasks; marathon-lb rewrites the config and reloads the master.
    sim.sim().replace_apps(
        marathon_sim::apps::parse_doc(app_doc(service, &[a, b])).unwrap(),
        true,
    );
    run_marathon_lb(
        dir.path(),
        &sim.base_url(),
        &env,
        &format!("kill -USR2 {master}"),
    );
    let cfg = std::fs::read_to_string(dir.path().join("haproxy.cfg")).unwrap();
    assert_eq!(cfg.matches("  server 127_0_0_1_").count(), 2, "{cfg}");

    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 2 && Instant::now() < deadline {
        if let Some((200, body)) = get(http, "web.e2e.test") {
            seen.insert(body);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        vec!["backend-a".to_owned(), "backend-b".to_owned()],
        "round robin over both backends after the reload"
    );
    rt.block_on(sim.shutdown());
}
