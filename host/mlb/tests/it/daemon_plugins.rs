//! The SSE controller with plugins: a Traefik-labelled app is served, a
//! policy keeps a rogue vhost out — at start and when it appears later
//! through the event stream — and the denials show in the metrics.

use crate::support;

use std::process::Stdio;
use std::time::Duration;

use mlb_plugin_tests::example;
use serde_json::{Value, json};
use support::Daemon;
use support::http::{free_port, request, wait_for};

fn app(id: &str, port: u16, labels: Value) -> Value {
    json!({
        "id": id, "instances": 1, "labels": labels,
        "portDefinitions": [{"port": port}],
        "tasks": [{"id": format!("{}.t1", &id[1..]), "host": "127.0.0.1", "ports": [31000 + port % 1000], "state": "TASK_RUNNING"}]
    })
}

fn denials(metrics: u16) -> u64 {
    let Some(r) = request(metrics, "x", "/metrics") else {
        return 0;
    };
    r.body
        .lines()
        .filter(|l| l.starts_with("mlb_policy_denials_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn the_controller_runs_the_plugin_chain_on_every_reconcile() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = d.join("haproxy.cfg");
    let metrics = free_port();
    let rt = support::runtime();
    let sim = support::start_sim(
        &rt,
        json!({"apps": [
            app("/shop", 10001, json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.example.com"})),
            app("/blog", 10002, json!({"traefik.frontend.rule": "Host:blog.example.com"})),
            app("/rogue", 10003, json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "login.bank.test"})),
        ]}),
    );
    let policy = format!(
        "{},group.external=example.com",
        example("mlb_example_policy_vhost_domains").display()
    );
    let traefik = example("mlb_example_traefik_labels");
    let mut cmd = support::command();
    cmd.current_dir(d)
        .args(["--sse", "--group", "external", "--log-level", "INFO"])
        .args([
            "--syslog-socket",
            "/dev/null",
            "--skip-validation",
            "--command",
            "true",
        ])
        // Another test's HAProxy may be running: do not wait for a new one.
        .args(["--max-reload-retries", "0", "--reload-interval", "0"])
        .arg("--marathon")
        .arg(sim.base_url())
        .arg("--haproxy-config")
        .arg(&cfg)
        .arg("--metrics-address")
        .arg(format!("127.0.0.1:{metrics}"))
        .arg("--plugin")
        .arg(&traefik)
        .arg("--plugin")
        .arg(&policy)
        .env("MLB_PLUGIN_CACHE_DIR", d.join("cache"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("marathon-lb.log")).unwrap());
    let _daemon = Daemon(cmd.spawn().unwrap());
    let log = || std::fs::read_to_string(d.join("marathon-lb.log")).unwrap_or_default();
    let config = || std::fs::read_to_string(&cfg).unwrap_or_default();

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !config().contains("backend traefik_blog_10002") {
        assert!(
            std::time::Instant::now() < deadline,
            "no config with the plugin's backend:\n{}\n{}",
            config(),
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let first = config();
    assert!(first.contains("backend shop_10001"), "{first}");
    assert!(!first.contains("rogue"), "{first}");
    wait_for("a denial in the metrics", Duration::from_secs(20), || {
        denials(metrics) >= 1
    });
    let before = denials(metrics);

    // A second rogue app arrives through the event stream.
    let mut apps: Vec<Value> = vec![
        app(
            "/shop",
            10001,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.example.com"}),
        ),
        app(
            "/blog",
            10002,
            json!({"traefik.frontend.rule": "Host:blog.example.com"}),
        ),
        app(
            "/rogue",
            10003,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "login.bank.test"}),
        ),
        app(
            "/shop2",
            10004,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "two.example.com"}),
        ),
        app(
            "/rogue2",
            10005,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "evil.test"}),
        ),
    ];
    let apps: Vec<_> = apps
        .drain(..)
        .map(|v| v.as_object().unwrap().clone())
        .collect();
    sim.sim().replace_apps(apps, true);
    wait_for("the new app", Duration::from_secs(20), || {
        config().contains("backend shop2_10004")
    });
    assert!(!config().contains("rogue2"), "{}", config());
    wait_for("more denials", Duration::from_secs(20), || {
        denials(metrics) >= before + 2
    });
    assert!(
        log().contains("denied by policy mlb_example_policy_vhost_domains"),
        "{}",
        log()
    );
}
