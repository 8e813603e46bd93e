//! Bad input never replaces the existing config with a broken or partial one,
//! and errors name the URL, or the app and label, at fault.

use crate::support;

use std::path::Path;
use std::process::{Command, Output};

use marathon_sim::{Fault, FaultMode};
use serde_json::json;

const PREVIOUS: &str = "# the config that was running before\n";

fn run(dir: &Path, urls: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = support::command();
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

/// A loopback server answering every request with 200 and `body`.
fn fixed_body_server(body: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
    });
    url
}

#[test]
fn an_apps_document_framed_as_json_but_broken_inside_keeps_the_config() {
    // The Marathon client checks only the frame of the document; the parse
    // is the full check and fails the run with a clear error.
    let url = fixed_body_server("{\"apps\": [{\"id\": \"/a\", }]}\n");
    let dir = with_previous_config();
    let out = run(dir.path(), &[&url], &["--skip-validation"], &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("response is not a Marathon apps document: "),
        "{err}"
    );
    assert_eq!(config(dir.path()), PREVIOUS);
}

/// A loopback server answering every request with 200 and an endless
/// chunked body; returns its URL and the count of body bytes it sent.
fn endless_body_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
            while stream.write_all(chunk.as_bytes()).is_ok() {
                counter.fetch_add(0x10000, Ordering::Relaxed);
            }
        }
    });
    (url, sent)
}

#[test]
fn an_endless_body_is_refused_at_the_cap_and_the_config_kept() {
    let (url, sent) = endless_body_server();
    let dir = with_previous_config();
    let out = run(
        dir.path(),
        &[&url],
        &["--skip-validation", "--marathon-max-body-mib", "2"],
        &[],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&url) && err.contains("larger than 2 MiB (--marathon-max-body-mib)"),
        "{err}"
    );
    assert_eq!(config(dir.path()), PREVIOUS);
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "endless body: the server got {} MiB out before marathon-lb hung up (cap 2 MiB)",
        sent >> 20
    );
    // The rest is socket buffers, not marathon-lb reading on.
    assert!(sent < 64 << 20, "{sent} bytes read");
}

#[test]
fn credentials_in_a_marathon_url_never_reach_the_log() {
    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({"apps": [good_app("/a", 10001)]}));
    let with_password = |base: &str| base.replacen("http://", "http://bob:s3cr3tpw@", 1);
    let dead = with_password("http://127.0.0.1:9");
    let live = with_password(&sim.base_url());
    let dir = with_previous_config();
    // A failure line (the dead one), then the fetch line (DEBUG) of the live one.
    let out = run(
        dir.path(),
        &[&dead, &live],
        &["--skip-validation", "--log-level", "DEBUG"],
        &[],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("http://127.0.0.1:9/"), "{err}");
    assert!(err.contains("fetching apps"), "{err}");
    // Every Marathon failing: the error lines.
    let out = run(dir.path(), &[&dead], &["--skip-validation"], &[]);
    let err2 = stderr(&out);
    assert!(!out.status.success());
    for log in [&err, &err2] {
        assert!(!log.contains("s3cr3tpw"), "password in the log:\n{log}");
        assert!(!log.contains("bob:"), "user info in the log:\n{log}");
    }
    rt.block_on(sim.shutdown());
}

/// A Marathon that answers the first `GET /v2/apps` with no apps and then
/// hangs: later apps requests (and the event stream) are accepted and never
/// answered. Sends a message for every hanging apps request.
fn marathon_that_hangs_after_one_answer() -> (String, std::sync::mpsc::Receiver<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (hanging_tx, hanging_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut answered = false;
        let mut held = Vec::new();
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let apps = head.starts_with(b"GET /v2/apps");
            if apps && !answered {
                answered = true;
                let body = r#"{"apps": []}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                continue;
            }
            if apps {
                let _ = hanging_tx.send(());
            }
            held.push(stream);
        }
    });
    (url, hanging_rx)
}

#[test]
fn sigterm_does_not_wait_for_a_hung_marathon() {
    let (url, hanging) = marathon_that_hangs_after_one_answer();
    let dir = tempfile::tempdir().unwrap();
    let mut child = support::command()
        .current_dir(dir.path())
        .args(["--sse", "--group", "external", "--command", "true"])
        .args([
            "--skip-validation",
            "--max-reload-retries",
            "0",
            "--reload-interval",
            "0",
        ])
        .args(["--log-level", "INFO", "--syslog-socket", "/dev/null"])
        .arg("--marathon")
        .arg(&url)
        .arg("--haproxy-config")
        .arg(dir.path().join("haproxy.cfg"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let kill = |sig: &str| {
        assert!(
            Command::new("kill")
                .args([sig, &child.id().to_string()])
                .status()
                .unwrap()
                .success()
        )
    };
    // The first reconcile is answered; a SIGHUP refetch then hangs.
    support::http::wait_for(
        "the first apply",
        std::time::Duration::from_secs(20),
        || dir.path().join("haproxy.cfg").exists(),
    );
    kill("-HUP");
    hanging
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("marathon-lb refetches");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let start = std::time::Instant::now();
    kill("-TERM");
    let deadline = start + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let exited_after = start.elapsed();
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let status = status.unwrap_or_else(|| panic!("still running 10 s after SIGTERM:\n{log}"));
    println!(
        "SIGTERM during a hung Marathon request: exited after {} ms",
        exited_after.as_millis()
    );
    assert!(status.success(), "{status}\n{log}");
    assert!(log.contains("shutting down"), "{log}");
}

/// A self-signed certificate for 127.0.0.1 (key and cert in one PEM for
/// HAProxy, the cert alone for --marathon-ca-cert); `extra`: more `openssl
/// req` arguments.
fn self_signed(dir: &Path, name: &str, extra: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
    let (key, cert) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.crt")),
    );
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .args(extra)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let both = dir.join(format!("{name}.pem"));
    let pem = std::fs::read_to_string(&cert).unwrap() + &std::fs::read_to_string(&key).unwrap();
    std::fs::write(&both, pem).unwrap();
    (both, cert)
}

#[test]
fn marathon_ca_cert_shapes_that_work_and_the_error_that_says_what_to_do() {
    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({"apps": [good_app("/a", 10001)]}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // `openssl req -x509` marks the certificate as a CA by default.
    let (ca_pem, ca_cert) = self_signed(d, "ca-true", &[]);
    let (leaf_pem, leaf_cert) = self_signed(
        d,
        "ca-false",
        &["-addext", "basicConstraints=critical,CA:FALSE"],
    );
    // HAProxy terminates TLS in front of the simulator.
    let (p_ca, p_leaf) = (support::http::free_port(), support::http::free_port());
    let sim_addr = sim.addr();
    let cfg = d.join("tls.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 50\ndefaults\n  mode http\n  timeout connect 3s\n  timeout client 10s\n  timeout server 10s\n\
             frontend ca_true\n  bind 127.0.0.1:{p_ca} ssl crt {ca}\n  default_backend sim\n\
             frontend ca_false\n  bind 127.0.0.1:{p_leaf} ssl crt {leaf}\n  default_backend sim\n\
             backend sim\n  server s {sim_addr}\n",
            ca = ca_pem.display(),
            leaf = leaf_pem.display()
        ),
    )
    .unwrap();
    let mut haproxy = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    support::http::wait_for("HAProxy TLS", std::time::Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", p_leaf)).is_ok()
    });

    let work = with_previous_config();
    let (ca_cert, leaf_cert) = (
        ca_cert.display().to_string(),
        leaf_cert.display().to_string(),
    );
    let refused = run(
        work.path(),
        &[&format!("https://127.0.0.1:{p_ca}")],
        &["--skip-validation", "--marathon-ca-cert", &ca_cert],
        &[],
    );
    let err = stderr(&refused);
    assert!(!refused.status.success());
    assert!(err.contains("CaUsedAsEndEntity"), "{err}");
    assert!(
        err.contains("give --marathon-ca-cert the CA that signed") && err.contains("CA:FALSE"),
        "the error says what to do: {err}"
    );
    assert_eq!(config(work.path()), PREVIOUS);

    let accepted = run(
        work.path(),
        &[&format!("https://127.0.0.1:{p_leaf}")],
        &["--skip-validation", "--marathon-ca-cert", &leaf_cert],
        &[],
    );
    let _ = haproxy.kill();
    let _ = haproxy.wait();
    assert!(accepted.status.success(), "{}", stderr(&accepted));
    assert!(config(work.path()).contains("backend a_10001"));
    rt.block_on(sim.shutdown());
}

#[test]
fn temp_files_of_a_killed_run_are_removed_at_start() {
    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({"apps": [good_app("/a", 10001)]}));
    let dir = with_previous_config();
    let stale = [".haproxy.cfg.Ab12Cd.tmp", ".domain2backend.map.xY98zW.tmp"];
    let foreign = ["notes.tmp", ".haproxy.cfg.tmp"];
    for name in stale.iter().chain(&foreign) {
        std::fs::write(dir.path().join(name), "left over").unwrap();
    }
    let out = run(dir.path(), &[&sim.base_url()], &["--skip-validation"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    for name in stale {
        assert!(!dir.path().join(name).exists(), "{name} left");
    }
    for name in foreign {
        assert!(dir.path().join(name).exists(), "{name} removed");
    }
    assert!(
        stderr(&out).contains("removed a temp file left by an earlier run"),
        "{}",
        stderr(&out)
    );
    rt.block_on(sim.shutdown());
}

fn repo_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn loopback_cert() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/loopback-cert.pem")
}

/// `marathon-lb --dry` run from `cwd` with the default templates directory
/// (`./templates`), or `templates_dir`; returns the printed config.
fn dry_config(cwd: &Path, sim: &str, out: &Path, templates_dir: Option<&Path>) -> String {
    let mut cmd = support::command();
    cmd.current_dir(cwd)
        .args(["--marathon", sim, "--group", "external", "--dry"])
        .args(["--log-level", "INFO", "--syslog-socket", "/dev/null"])
        .arg("--haproxy-config")
        .arg(out.join("haproxy.cfg"))
        .arg("--ssl-certs")
        .arg(loopback_cert());
    if let Some(dir) = templates_dir {
        cmd.arg("--templates-dir").arg(dir);
    }
    for (k, _) in std::env::vars() {
        if k.starts_with("HAPROXY_") {
            cmd.env_remove(k);
        }
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not validated"),
        "--dry says it does not validate: {}",
        stderr(&o)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// `haproxy -c` on `config`, with the Lua files of the HEAD installed in
/// `dir` (the HEAD loads them from /marathon-lb).
fn haproxy_check(dir: &Path, config: &str) -> Result<(), String> {
    let lua = dir.join("lua");
    mlb_haproxy::install_lua(&lua).unwrap();
    let file = dir.join("check.cfg");
    let text = config.replace(
        "lua-load /marathon-lb/",
        &format!("lua-load {}/", lua.display()),
    );
    std::fs::write(&file, text).unwrap();
    let o = Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(&o)
        ))
    }
}

#[test]
fn the_default_templates_from_the_repository_root_make_a_valid_config() {
    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({"apps": [good_app("/a", 10001)]}));
    let out = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    // From the repository root, `./templates` holds the shipped defaults:
    // they are not overrides, and the result is the built-in defaults'.
    let from_root = dry_config(&repo_root(), &sim.base_url(), out.path(), None);
    let builtin = dry_config(out.path(), &sim.base_url(), out.path(), Some(empty.path()));
    assert!(!from_root.contains("@@"), "{from_root}");
    assert_eq!(from_root, builtin);
    assert!(from_root.contains("  option            redispatch\n"));
    haproxy_check(out.path(), &from_root).unwrap();

    // A copy of the shipped HEAD edited as an override (lower maxconn)
    // gets the option lines too instead of a stray marker.
    let overrides = tempfile::tempdir().unwrap();
    let head = std::fs::read_to_string(repo_root().join("templates/HAPROXY_HEAD")).unwrap();
    std::fs::write(
        overrides.path().join("HAPROXY_HEAD"),
        head.replace("maxconn 50000", "maxconn 1000"),
    )
    .unwrap();
    let edited = dry_config(
        out.path(),
        &sim.base_url(),
        out.path(),
        Some(overrides.path()),
    );
    assert!(!edited.contains("@@"), "{edited}");
    assert!(edited.contains("  maxconn 1000\n"));
    assert_eq!(edited.replace("maxconn 1000", "maxconn 50000"), builtin);
    haproxy_check(out.path(), &edited).unwrap();
    rt.block_on(sim.shutdown());
}

/// `--help` keeps each flag's text whole (clap reads `{n}` as a line break).
#[test]
fn help_keeps_the_strict_mode_text_whole() {
    let o = support::command().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("Services are disabled unless labelled HAPROXY_<n>_ENABLED=true"),
        "{help}"
    );
    assert!(
        !help.lines().any(|l| l.trim_start().starts_with('_')),
        "{help}"
    );
}

/// Each bad flag fails at once with one line that names the flag and says
/// what to do.
#[test]
fn bad_flags_fail_with_one_line_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &[&str]); 7] = [
        (
            &["--marathon", "marathon.mesos:8080"],
            &[
                "--marathon marathon.mesos:8080",
                "http://marathon.mesos:8080",
            ],
        ),
        (
            // User info without a scheme: named, but the password is not echoed.
            &["--marathon", "bob:s3cr3tpw@marathon.mesos:8080"],
            &[
                "--marathon <user info>@marathon.mesos:8080",
                "http://marathon.mesos:8080",
            ],
        ),
        (
            &["--templates-dir", "/nonexistent/templates"],
            &["--templates-dir /nonexistent/templates: no such directory"],
        ),
        (
            &[
                "--marathon-auth-credential-file",
                "/nonexistent/credentials",
            ],
            &[
                "--marathon-auth-credential-file /nonexistent/credentials: cannot read it",
                "user:password",
            ],
        ),
        (
            &["--plugin", ",memory-mib=8"],
            &["--plugin", "no plugin file given"],
        ),
        (
            &["--plugin", "/nonexistent/x.wasm,memory-mib=lots"],
            &["--plugin", "memory-mib"],
        ),
        (
            &["--haproxy-admin-socket", "/run/haproxy/admin.sock"],
            &["--haproxy-admin-socket needs --sse or --poll-interval"],
        ),
    ];
    for (args, expected) in cases {
        let mut cmd = support::command();
        cmd.current_dir(dir.path())
            .args(["--group", "external", "--syslog-socket", "/dev/null"])
            .arg("--haproxy-config")
            .arg(dir.path().join("haproxy.cfg"))
            .args(args);
        let o = cmd.output().unwrap();
        assert!(!o.status.success(), "{args:?}");
        let err = stderr(&o);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        for e in expected {
            assert!(lines[0].contains(e), "{args:?}: {e:?} not in {err}");
        }
        assert!(
            !err.contains("s3cr3tpw"),
            "{args:?}: password echoed: {err}"
        );
    }
}

/// Default-format lines carry the level; `--log-format json` carries the
/// same fields, numbers as numbers.
#[test]
fn log_lines_carry_the_level_and_json_the_same_fields() {
    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({"apps": [good_app("/a", 10001)]}));
    let dir = tempfile::tempdir().unwrap();
    let run_with = |format: Option<&str>| {
        let mut cmd = support::command();
        cmd.current_dir(dir.path())
            .args([
                "--marathon",
                &sim.base_url(),
                "--group",
                "external",
                "--dry",
            ])
            .args(["--syslog-socket", "/dev/null"])
            .arg("--haproxy-config")
            .arg(dir.path().join("haproxy.cfg"));
        if let Some(f) = format {
            cmd.args(["--log-format", f]);
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stderr(&o)
    };
    let text = run_with(None);
    let line = text
        .lines()
        .find(|l| l.contains("config printed"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(" INFO marathon_lb: config printed"), "{line}");
    assert!(
        line.contains(" trigger=oneshot apps=1 services=1 servers=1 rejected=0"),
        "{line}"
    );
    assert!(
        text.lines()
            .all(|l| [" DEBUG ", " INFO ", " WARNING ", " ERROR "]
                .iter()
                .any(|lv| l.contains(lv))),
        "every line has its level:\n{text}"
    );
    let json_text = run_with(Some("json"));
    let line: serde_json::Value = json_text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("config printed"))
        })
        .unwrap_or_else(|| panic!("{json_text}"));
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["trigger"], "oneshot");
    assert_eq!(line["apps"], 1);
    assert_eq!(line["servers"], 1);
    assert!(line["elapsed_ms"].is_u64());
    rt.block_on(sim.shutdown());
}
