//! The plugin flags and tools through the real binary: `plugin list`,
//! `plugin check`, and a controller refusing a bad `--plugin` at start-up
//! before it touches Marathon or the config.

use crate::support;

use std::process::Output;

fn marathon_lb(args: &[&str], cache: &std::path::Path) -> Output {
    support::command()
        .args(["--syslog-socket", "/dev/null"])
        .args(args)
        .env("MLB_PLUGIN_CACHE_DIR", cache)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn plugin_list_shows_the_default_plugin_and_uses_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let first = marathon_lb(&["plugin", "list"], &cache);
    assert!(first.status.success(), "{}", text(&first));
    let out = text(&first);
    assert!(out.contains("1. default-label [label-plugin]"), "{out}");
    assert!(out.contains("Compiled"), "{out}");
    let second = marathon_lb(&["plugin", "list"], &cache);
    assert!(text(&second).contains("Cache"), "{}", text(&second));
}

#[test]
fn plugin_check_fails_loudly_on_a_missing_or_foreign_file() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let missing = marathon_lb(&["plugin", "check", "/nonexistent/p.wasm"], &cache);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing).contains("cannot read /nonexistent/p.wasm"),
        "{}",
        text(&missing)
    );
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not a component").unwrap();
    let junk_out = marathon_lb(&["plugin", "check", junk.to_str().unwrap()], &cache);
    assert_eq!(junk_out.status.code(), Some(1));
    assert!(
        text(&junk_out).contains("not a valid component"),
        "{}",
        text(&junk_out)
    );
}

#[test]
fn a_bad_plugin_flag_stops_the_controller_before_anything_happens() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, "# running\n").unwrap();
    for (flag, needle) in [
        ("/nonexistent/p.wasm", "cannot read /nonexistent/p.wasm"),
        ("/x.wasm,memory-mib=0", "memory-mib=0"),
        ("/x.wasm,allow-network=yes", "cannot be granted"),
    ] {
        let out = marathon_lb(
            &[
                "--marathon",
                "http://127.0.0.1:9",
                "--group",
                "external",
                "--haproxy-config",
                cfg.to_str().unwrap(),
                "--plugin",
                flag,
            ],
            &dir.path().join("cache"),
        );
        assert!(!out.status.success(), "{flag}");
        assert!(text(&out).contains(needle), "{flag}: {}", text(&out));
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "# running\n");
    }
}

#[test]
fn a_plugins_host_log_is_bounded_per_call_and_one_line_per_message() {
    let dir = tempfile::tempdir().unwrap();
    // 300 apps in one batch, each asking the chaos plugin to log a message
    // with a newline that tries to forge a log line.
    let apps: Vec<serde_json::Value> = (0..300)
        .map(|i| {
            serde_json::json!({
                "id": format!("/app{i}"), "instances": 1,
                "labels": {"HAPROXY_GROUP": "external", "CHAOS_LOG": format!("msg{i}\nFORGED line {i}")},
                "portDefinitions": [{"port": 10000 + i}],
                "tasks": []
            })
        })
        .collect();
    let file = dir.path().join("apps.json");
    std::fs::write(&file, serde_json::json!({ "apps": apps }).to_string()).unwrap();
    let chaos = mlb_plugin_tests::example("mlb_test_chaos");
    let out = marathon_lb(
        &[
            "--log-format",
            "%(levelname)s %(message)s",
            "plugin",
            "check",
            chaos.to_str().unwrap(),
            "--apps",
            file.to_str().unwrap(),
        ],
        &dir.path().join("cache"),
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    let messages = log.lines().filter(|l| l.contains("msg")).count();
    let calls = log
        .matches("the rest of this call's messages are dropped")
        .count();
    println!("300 host-log messages per call: {messages} logged over {calls} call(s)");
    assert!(calls >= 1, "the truncation is announced:\n{log}");
    assert!(
        messages <= 100 * calls,
        "{messages} messages for {calls} calls"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED")),
        "a newline in a message started a new log line:\n{log}"
    );
    assert!(log.contains("msg0\\nFORGED line 0"), "{log}");
}
