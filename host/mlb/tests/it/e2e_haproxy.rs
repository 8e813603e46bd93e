//! End to end with real parts: the Marathon simulator, the `marathon-lb`
//! binary (one-shot, validating with `haproxy -c`), a real HAProxy started on
//! the generated config and two real HTTP backends on loopback.
//!
//! Ports and paths are moved to loopback and a temp dir through the template
//! overrides a user would use (`HAPROXY_HEAD`, `HAPROXY_HTTP_FRONTEND_HEAD`, ...).

use crate::support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::http::{backend, free_port, get, request};

struct HaproxyProcess(Child);

impl Drop for HaproxyProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn app_doc(service_port: u16, backends: &[u16]) -> serde_json::Value {
    app_doc_with(service_port, backends, json!({}))
}

fn app_doc_with(
    service_port: u16,
    backends: &[u16],
    extra_labels: serde_json::Value,
) -> serde_json::Value {
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
    let mut labels = json!({
        "HAPROXY_GROUP": "external",
        "HAPROXY_0_VHOST": "web.e2e.test",
        "HAPROXY_0_BIND_ADDR": "127.0.0.1"
    });
    for (k, v) in extra_labels.as_object().unwrap() {
        labels[k] = v.clone();
    }
    json!({"apps": [{
        "id": "/e2e/web",
        "instances": backends.len(),
        "labels": labels,
        "portDefinitions": [{"port": service_port, "protocol": "tcp", "name": "http", "labels": {}}],
        "tasks": tasks
    }]})
}

fn run_marathon_lb(dir: &Path, marathon: &str, env: &[(String, String)], command: &str) {
    let mut cmd = support::command();
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

/// Loopback ports of one HAProxy instance.
struct Ports {
    http: u16,
    service: u16,
}

/// The template overrides a user would set to move marathon-lb's frontends
/// to loopback ports and its sockets into `dir`.
fn loopback_env(dir: &Path) -> (Ports, Vec<(String, String)>) {
    let (http, https, appid, stats, service) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let sock = dir.join("haproxy.sock");
    let head = format!(
        "global\n  maxconn 200\n  stats socket {} mode 600 expose-fd listeners level admin\n\
         defaults\n  retries 3\n  timeout connect 3s\n  timeout client 30s\n  timeout server 30s\n  option redispatch\n\
         listen stats\n  bind 127.0.0.1:{stats}\n  mode http\n  stats enable\n  monitor-uri /_haproxy_health_check\n",
        sock.display()
    );
    let frontend = |name: &str, port: u16| {
        format!("\nfrontend {name}\n  bind 127.0.0.1:{port}\n  mode http\n")
    };
    let env = vec![
        ("HAPROXY_HEAD".to_owned(), head),
        (
            "HAPROXY_HTTP_FRONTEND_HEAD".to_owned(),
            frontend("marathon_http_in", http),
        ),
        (
            "HAPROXY_HTTP_FRONTEND_APPID_HEAD".to_owned(),
            frontend("marathon_http_appid_in", appid),
        ),
        (
            "HAPROXY_HTTPS_FRONTEND_HEAD".to_owned(),
            frontend("marathon_https_in", https),
        ),
    ];
    (Ports { http, service }, env)
}

/// `haproxy -W -db` (master-worker, foreground) on the generated config.
fn start_haproxy(dir: &Path) -> (HaproxyProcess, u32) {
    let child = Command::new("haproxy")
        .args(["-W", "-db", "-f"])
        .arg(dir.join("haproxy.cfg"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy must be installed (apt-get install haproxy)");
    let pid = child.id();
    (HaproxyProcess(child), pid)
}

#[test]
fn vhost_request_reaches_backends_through_real_haproxy() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (backend("backend-a"), backend("backend-b"));
    let (ports, env) = loopback_env(dir.path());
    let (http, service) = (ports.http, ports.service);

    let rt = support::runtime();
    let sim = support::start_sim(&rt, app_doc(service, &[a]));
    run_marathon_lb(dir.path(), &sim.base_url(), &env, "true");
    let cfg = std::fs::read_to_string(dir.path().join("haproxy.cfg")).unwrap();
    assert!(
        cfg.contains("acl host_web_e2e_test_e2e_web hdr(host) -i web.e2e.test"),
        "{cfg}"
    );

    let (_haproxy, master) = start_haproxy(dir.path());

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

/// The three default templates that used directives removed in HAProxy 2.1
/// (`rspadd`, `reqirep`, `rspirep`) are replaced by modern equivalents; they
/// must do what the labels promise on a real HAProxy 2.6.
#[test]
fn hsts_proxypass_and_revproxy_work_on_modern_haproxy() {
    let dir = tempfile::tempdir().unwrap();
    let a = backend("backend-a");
    let (ports, env) = loopback_env(dir.path());
    let rt = support::runtime();
    let labels = json!({
        "HAPROXY_0_USE_HSTS": "true",
        "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH": "/legacy",
        "HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH": "/wiki"
    });
    let sim = support::start_sim(&rt, app_doc_with(ports.service, &[a], labels));
    // Validated by the real `haproxy -c` (no --skip-validation).
    run_marathon_lb(dir.path(), &sim.base_url(), &env, "true");
    let cfg = std::fs::read_to_string(dir.path().join("haproxy.cfg")).unwrap();
    for removed in ["rspadd", "reqirep", "rspirep"] {
        assert!(!cfg.contains(removed), "{removed} in:\n{cfg}");
    }
    let (_haproxy, _) = start_haproxy(dir.path());
    let deadline = Instant::now() + Duration::from_secs(10);
    let resp = loop {
        if let Some(r) = request(ports.http, "web.e2e.test", "/legacy/page?q=1") {
            break r;
        }
        assert!(Instant::now() < deadline, "HAProxy did not come up");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(resp.status, 200);
    // proxypass: the /legacy prefix is stripped before the backend sees the path.
    assert_eq!(resp.body, "backend-a /page?q=1");
    // HSTS on every response of the backend.
    assert_eq!(
        resp.header("Strict-Transport-Security"),
        Some("max-age=15768000")
    );
    // revproxy: an absolute redirect to the vhost is rewritten under /wiki.
    let redirect = request(ports.http, "web.e2e.test", "/legacy/redirect").unwrap();
    assert_eq!(redirect.header("Location"), Some("/wiki/login?next=1"));
    rt.block_on(sim.shutdown());
}

/// One app of the hostile batch: `labels` on top of a vhost, one loopback task.
fn hostile_app(
    id: &str,
    vhost: &str,
    port: u16,
    backend: u16,
    labels: serde_json::Value,
) -> serde_json::Value {
    let mut l = json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": vhost, "HAPROXY_0_BIND_ADDR": "127.0.0.1"});
    for (k, v) in labels.as_object().unwrap() {
        l[k] = v.clone();
    }
    json!({"id": id, "instances": 1, "labels": l,
           "portDefinitions": [{"port": port}],
           "tasks": [{"id": format!("{}.t", id.replace('/', "_")), "host": "127.0.0.1", "ports": [backend],
                      "state": "TASK_RUNNING"}]})
}

/// Issue 15, items 1, 2 and 8 on a real HAProxy that has `SOME_VAR=topsecret`
/// in its environment: no Marathon value reaches that environment (an auth
/// realm `${SOME_VAR}`, a redirect `%[env(SOME_VAR)]`), no newline in a
/// deployment group, a health-check path, an app id or a task address
/// injects a line, and a template override that opens a section costs only
/// its own app, not the apps whose lines come after it.
#[test]
fn hostile_marathon_values_cost_only_their_app_on_a_real_haproxy() {
    let dir = tempfile::tempdir().unwrap();
    let (ports, env) = loopback_env(dir.path());
    let a = backend("backend-a");
    let z = backend("backend-z");
    let hc = |path: &str| {
        json!([{"protocol": "HTTP", "path": path, "portIndex": 0, "timeoutSeconds": 2,
                "intervalSeconds": 5, "gracePeriodSeconds": 10, "maxConsecutiveFailures": 3}])
    };
    let injected = "\n  http-request return status 200 content-type text/plain string INJECTED";
    let deny_web = "\n  http-request deny if { hdr(host) -i web.e2e.test }";
    let mut apps = vec![
        hostile_app("/e2e/web", "web.e2e.test", ports.service, a, json!({})),
        hostile_app(
            "/evil/realm",
            "realm.e2e.test",
            free_port(),
            a,
            json!({"HAPROXY_0_AUTH": "${SOME_VAR}:user:$5$Lm3nB7vC$Xz9yW8vU7tS6rQ5pO4nM3lK2jI1hG0fE9dC8bA7zY6"}),
        ),
        hostile_app(
            "/evil/redir",
            "redir.e2e.test",
            free_port(),
            a,
            json!({"HAPROXY_0_HTTP_BACKEND_REDIR": "/x%[env(SOME_VAR)]"}),
        ),
        hostile_app(
            "/evil/group",
            "group.e2e.test",
            free_port(),
            a,
            json!({"HAPROXY_DEPLOYMENT_GROUP": format!("grp{deny_web}")}),
        ),
        hostile_app("/evil/hc", "hc.e2e.test", free_port(), a, json!({})),
        hostile_app(
            &format!("/evil/id{deny_web}"),
            "id.e2e.test",
            free_port(),
            a,
            json!({}),
        ),
        hostile_app("/evil/ip", "ip.e2e.test", free_port(), a, json!({})),
        // Sorts before the /z apps, whose :80 ACL lines come after its own.
        hostile_app(
            "/evil/section",
            "section.e2e.test",
            free_port(),
            a,
            json!({"HAPROXY_0_HTTP_FRONTEND_ACL": "  # x\nbackend evil\n"}),
        ),
    ];
    apps[4]["healthChecks"] = hc(&format!("/{injected}"));
    apps[6]["tasks"][0]["host"] = json!(format!("127.0.0.1{deny_web}"));
    let innocent: Vec<String> = (0..4).map(|i| format!("z{i}.e2e.test")).collect();
    for (i, vhost) in innocent.iter().enumerate() {
        apps.push(hostile_app(
            &format!("/z{i}"),
            vhost,
            free_port(),
            z,
            json!({}),
        ));
    }

    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({ "apps": apps }));
    run_marathon_lb(dir.path(), &sim.base_url(), &env, "true");

    let child = Command::new("haproxy")
        .args(["-W", "-db", "-f"])
        .arg(dir.path().join("haproxy.cfg"))
        .env("SOME_VAR", "topsecret")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy must be installed");
    let _haproxy = HaproxyProcess(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(ports.http, "web.e2e.test").is_none() {
        assert!(Instant::now() < deadline, "HAProxy did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        get(ports.http, "web.e2e.test"),
        Some((200, "backend-a".to_owned()))
    );
    for vhost in &innocent {
        assert_eq!(
            get(ports.http, vhost),
            Some((200, "backend-z".to_owned())),
            "{vhost}"
        );
    }
    for vhost in [
        "realm.e2e.test",
        "redir.e2e.test",
        "hc.e2e.test",
        "section.e2e.test",
    ] {
        let r = request(ports.http, vhost, "/").unwrap();
        let all = format!("{} {:?} {}", r.status, r.headers, r.body);
        assert!(
            !all.contains("topsecret") && !all.contains("INJECTED"),
            "{vhost}: {all}"
        );
        assert_eq!(r.status, 503, "{vhost} is left out: {all}");
    }
    let cfg = std::fs::read_to_string(dir.path().join("haproxy.cfg")).unwrap();
    for leaked in [
        "SOME_VAR",
        "INJECTED",
        "evil",
        "grp",
        "hdr(host) -i web.e2e.test }",
    ] {
        assert!(
            !cfg.contains(leaked),
            "{leaked:?} reached the config:\n{cfg}"
        );
    }
    rt.block_on(sim.shutdown());
}
