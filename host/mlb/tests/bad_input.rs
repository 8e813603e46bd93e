//! Bad input never replaces the existing config with a broken or partial one,
//! and errors name the URL, or the app and label, at fault.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use marathon_sim::{Fault, FaultMode};
use serde_json::json;

const PREVIOUS: &str = "# the config that was running before\n";

fn run(dir: &Path, urls: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(support::binary());
    cmd.current_dir(dir).arg("--marathon").args(urls);
    cmd.arg("--haproxy-config").arg(dir.join("haproxy.cfg"));
    cmd.args([
        "--group",
        "external",
        "--command",
        "true",
        // Another test's HAProxy may be running: do not wait for a new one.
        "--max-reload-retries",
        "0",
        "--reload-interval",
        "0",
        "--log-level",
        "INFO",
        "--syslog-socket",
        "/dev/null",
    ]);
    cmd.args(extra);
    for (k, _) in std::env::vars() {
        if k.starts_with("HAPROXY_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn with_previous_config() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("haproxy.cfg"), PREVIOUS).unwrap();
    dir
}

fn config(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("haproxy.cfg")).unwrap()
}

fn good_app(id: &str, port: u16) -> serde_json::Value {
    json!({
        "id": id, "instances": 1,
        "labels": {"HAPROXY_GROUP": "external"},
        "portDefinitions": [{"port": port}],
        "tasks": [{"id": format!("{}.t1", &id[1..]), "host": "10.0.0.1", "ports": [31000 + port % 1000], "state": "TASK_RUNNING"}]
    })
}

#[test]
fn unreachable_marathon_names_the_url_and_keeps_the_config() {
    let dir = with_previous_config();
    let dead = format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let out = run(dir.path(), &[&dead], &["--skip-validation"], &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&dead) && err.contains("Connection refused"),
        "{err}"
    );
    assert_eq!(config(dir.path()), PREVIOUS);
}

#[test]
fn truncated_and_non_json_answers_keep_the_config() {
    let rt = support::runtime();
    for mode in [FaultMode::Truncate, FaultMode::NonJson] {
        let sim = support::start_sim(&rt, json!({"apps": [good_app("/a", 10001)]}));
        sim.sim().set_fault(Fault {
            mode,
            ..Fault::default()
        });
        let dir = with_previous_config();
        let out = run(dir.path(), &[&sim.base_url()], &["--skip-validation"], &[]);
        assert!(!out.status.success(), "{mode:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&sim.base_url()) && err.contains("not JSON"),
            "{mode:?}: {err}"
        );
        assert_eq!(config(dir.path()), PREVIOUS, "{mode:?}");
        rt.block_on(sim.shutdown());
    }
}

#[test]
fn a_dead_marathon_fails_over_to_the_next() {
    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({"apps": [good_app("/a", 10001)]}));
    let dir = with_previous_config();
    let out = run(
        dir.path(),
        &["http://127.0.0.1:9", &sim.base_url()],
        &["--skip-validation"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(config(dir.path()).contains("backend a_10001"));
    rt.block_on(sim.shutdown());
}

#[test]
fn bad_apps_cost_only_themselves() {
    let rt = support::runtime();
    let mut bad_port = good_app("/bad/port", 10003);
    bad_port["labels"]["HAPROXY_0_PORT"] = json!("80a");
    let doc = json!({"apps": [
        good_app("/good", 10001),
        {"id": "/no/labels", "instances": 1, "portDefinitions": [{"port": 10004}], "tasks": []},
        {"id": "/no/host", "instances": 1, "labels": {"HAPROXY_GROUP": "external"}, "portDefinitions": [{"port": 10006}],
         "tasks": [{"id": "no_host.t1", "ports": [31006], "state": "TASK_RUNNING"}]},
        bad_port,
    ]});
    let sim = support::start_sim(&rt, doc);
    let dir = with_previous_config();
    let out = run(dir.path(), &[&sim.base_url()], &["--skip-validation"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cfg = config(dir.path());
    assert!(cfg.contains("backend good_10001"), "{cfg}");
    for gone in ["no_labels", "no_host", "bad_port"] {
        assert!(!cfg.contains(gone), "{gone} rendered:\n{cfg}");
    }
    let err = stderr(&out);
    for (app, label) in [
        ("/no/labels", "labels"),
        ("/no/host", "tasks[].host"),
        ("/bad/port", "HAPROXY_0_PORT"),
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains(app) && l.contains(&format!("label={label}"))),
            "no diagnostic for {app} / {label}:\n{err}"
        );
    }
    rt.block_on(sim.shutdown());
}

#[test]
fn a_config_haproxy_rejects_never_replaces_the_running_one() {
    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({"apps": [good_app("/a", 10001)]}));
    let dir = with_previous_config();
    let head = "global\n  stats socket /tmp/x.sock expose-fd listeners\ndefaults\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n";
    let out = run(
        dir.path(),
        &[&sim.base_url()],
        &["--dont-bind-http-https"],
        &[
            ("HAPROXY_HEAD", head),
            (
                "HAPROXY_BACKEND_HEAD",
                "\nbackend {backend}\n  no-such-directive here\n",
            ),
        ],
    );
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("haproxy -c rejected"),
        "{}",
        stderr(&out)
    );
    assert_eq!(config(dir.path()), PREVIOUS);
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .count();
    assert_eq!(leftovers, 0, "temp files left behind");
    rt.block_on(sim.shutdown());
}

#[test]
fn apps_haproxy_rejects_are_found_by_bisection_and_left_out() {
    let rt = support::runtime();
    let mut apps: Vec<serde_json::Value> = (0..12)
        .map(|i| good_app(&format!("/app{i:02}"), 10100 + i))
        .collect();
    // Two apps whose own template label is invalid HAProxy syntax.
    for i in [3, 8] {
        apps[i]["labels"]["HAPROXY_0_BACKEND_HEAD"] =
            json!("\nbackend {backend}\n  balance roundrobin\n  not-a-directive\n");
    }
    let sim = support::start_sim(&rt, json!({ "apps": apps }));
    let dir = with_previous_config();
    let head = "global\n  stats socket /tmp/x.sock expose-fd listeners\ndefaults\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n";
    let out = run(
        dir.path(),
        &[&sim.base_url()],
        &["--dont-bind-http-https"],
        &[("HAPROXY_HEAD", head)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let cfg = config(dir.path());
    assert!(!cfg.contains("not-a-directive"), "{cfg}");
    assert_eq!(cfg.matches("\nbackend app").count(), 10, "{cfg}");
    let err = stderr(&out);
    for bad in ["/app03", "/app08"] {
        assert!(
            err.lines().any(|l| l.contains("app left out")
                && l.contains(bad)
                && l.contains("not-a-directive")),
            "no report for {bad}:\n{err}"
        );
    }
    rt.block_on(sim.shutdown());
}
