//! The `marathon-sim` binary: first stdout line, port file, flags.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn temp_path(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "marathon-sim-{}-{nanos}-{name}",
        std::process::id()
    ))
}

#[tokio::test]
async fn binary_prints_address_and_writes_port_file() {
    let apps = temp_path("apps.json");
    std::fs::write(&apps, crate::common::FIXTURE).expect("write apps");
    let port_file = temp_path("url");
    let mut child = Command::new(env!("CARGO_BIN_EXE_marathon-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--auth",
            "u:p",
            "--keepalive-secs",
            "0.5",
            "--apps",
        ])
        .arg(&apps)
        .arg("--port-file")
        .arg(&port_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn marathon-sim");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("prints in time")
        .expect("read")
        .expect("a line");
    let url = first
        .strip_prefix("listening on ")
        .expect("prefix")
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    // The port file is written right after the line is printed.
    let mut written = String::new();
    for _ in 0..50 {
        written = std::fs::read_to_string(&port_file).unwrap_or_default();
        if !written.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(written, url);

    let c = reqwest::Client::new();
    let r = c.get(format!("{url}/v2/apps")).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .get(format!("{url}/v2/apps/web/site"))
        .basic_auth("u", Some("p"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["app"]["tasks"].as_array().expect("tasks").len(), 2);

    child.start_kill().expect("kill");
    let _ = child.wait().await;
    let _ = std::fs::remove_file(&apps);
    let _ = std::fs::remove_file(&port_file);
}

#[tokio::test]
async fn binary_rejects_a_bad_apps_file() {
    let apps = temp_path("bad.json");
    std::fs::write(&apps, "{\"apps\": 3}").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_marathon-sim"))
        .arg("--apps")
        .arg(&apps)
        .output()
        .await
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.json"));
    let _ = std::fs::remove_file(&apps);
}
