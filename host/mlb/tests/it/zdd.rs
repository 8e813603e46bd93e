//! `marathon-lb zdd`: the dry-run bookkeeping (blue, green, blue again,
//! `--initial-instances`, hybrid), bad inputs with their exit codes, the
//! fixed zdd.py bugs, and full deployments end to end: the simulator
//! (deployments through the real API, tasks as loopback HTTP servers), two
//! `marathon-lb --sse --supervise-haproxy` instances each running a real
//! HAProxy, and loopback load running throughout.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Daemon;
use support::http::{free_port, wait_for};

/// One end-to-end scenario at a time: each runs two controllers and two HAProxys.
static E2E: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn zdd(args: &[&str]) -> Output {
    support::command()
        .arg("zdd")
        .args(["--syslog-socket", "/dev/null", "--log-level", "INFO"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_json(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p
}

/// marathon-lb's tests/1-nginx.json shape: docker port mappings.
fn nginx() -> Value {
    json!({
        "id": "nginx", "instances": 3, "cpus": 0.1, "mem": 65,
        "acceptedResourceRoles": ["*", "slave_public"],
        "container": {"type": "DOCKER", "docker": {"image": "brndnmtthws/nginx-echo-sleep",
            "network": "BRIDGE", "forcePullImage": true,
            "portMappings": [{"containerPort": 8080, "hostPort": 0, "servicePort": 10000}]}},
        "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0, "timeoutSeconds": 15,
            "gracePeriodSeconds": 15, "intervalSeconds": 3, "maxConsecutiveFailures": 10}],
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_DEPLOYMENT_GROUP": "nginx",
                   "HAPROXY_DEPLOYMENT_ALT_PORT": "10001"}
    })
}

/// A running app of the group as Marathon ≥ 1.5 returns it (no `ports`).
fn running(colour: &str, port: u64, started: &str) -> Value {
    let mut app = nginx();
    app["id"] = json!(format!("/nginx-{colour}"));
    app["container"]["docker"]["portMappings"][0]["servicePort"] = json!(port);
    let labels = app["labels"].as_object_mut().unwrap();
    for (k, v) in [
        ("HAPROXY_DEPLOYMENT_COLOUR", colour),
        ("HAPROXY_DEPLOYMENT_STARTED_AT", started),
        ("HAPROXY_0_PORT", "10000"),
        ("HAPROXY_APP_ID", "nginx"),
        ("HAPROXY_DEPLOYMENT_TARGET_INSTANCES", "3"),
        ("HAPROXY_DEPLOYMENT_NEW_INSTANCES", "0"),
    ] {
        labels.insert(k.into(), json!(v));
    }
    app["tasks"] = json!([]);
    app
}

/// Runs `zdd --dry-run` for `app` against a simulator serving `apps`.
fn dry_run(app: &Value, apps: Vec<Value>, extra: &[&str]) -> (Output, Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = write_json(dir.path(), "app.json", app);
    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({ "apps": apps }));
    let url = sim.base_url();
    let mut args = vec![
        "-m",
        &url,
        "-l",
        "http://127.0.0.1:9",
        "-j",
        file.to_str().unwrap(),
        "--dry-run",
    ];
    args.extend_from_slice(extra);
    let out = zdd(&args);
    let writes: Vec<_> = sim
        .sim()
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert!(writes.is_empty(), "a dry run wrote: {writes:?}");
    let printed = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, printed)
}

fn blank_started_at(mut v: Value) -> Value {
    v["labels"]["HAPROXY_DEPLOYMENT_STARTED_AT"] = json!("");
    v
}

#[test]
fn dry_run_first_deploy_is_blue_on_the_service_port() {
    let (out, printed) = dry_run(&nginx(), vec![], &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let started = printed["labels"]["HAPROXY_DEPLOYMENT_STARTED_AT"]
        .as_str()
        .unwrap()
        .to_owned();
    // datetime.isoformat(): 2016-02-01T15:51:38.184623
    assert!(
        started.len() >= 19 && &started[10..11] == "T" && !started.ends_with('Z'),
        "{started}"
    );
    let mut expected = nginx();
    expected["id"] = json!("/nginx-blue");
    for (k, v) in [
        ("HAPROXY_0_PORT", "10000"),
        ("HAPROXY_APP_ID", "nginx"),
        ("HAPROXY_DEPLOYMENT_COLOUR", "blue"),
        ("HAPROXY_DEPLOYMENT_NEW_INSTANCES", "0"),
        ("HAPROXY_DEPLOYMENT_STARTED_AT", ""),
        ("HAPROXY_DEPLOYMENT_TARGET_INSTANCES", "3"),
    ] {
        expected["labels"][k] = json!(v);
    }
    assert_eq!(blank_started_at(printed.clone()), expected);
    // Printed as Python's json.dumps(sort_keys=True, indent=2).
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("{\n  \"acceptedResourceRoles\": [\n    \"*\",\n    \"slave_public\"\n  ],\n  \"container\": {\n"), "{text}");
    assert!(text.contains("\n  \"cpus\": 0.1,\n"), "{text}");
}

#[test]
fn dry_run_second_deploy_is_green_on_the_alternate_port() {
    // zdd.py's test_simple: the running blue app has 3 instances.
    let (out, printed) = dry_run(
        &nginx(),
        vec![running("blue", 10000, "2016-02-01T15:51:38.184623")],
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(printed["id"], "/nginx-green");
    assert_eq!(printed["instances"], 1);
    assert_eq!(
        printed["container"]["docker"]["portMappings"][0]["servicePort"],
        10001
    );
    assert_eq!(printed["labels"]["HAPROXY_0_PORT"], "10000");
    assert_eq!(printed["labels"]["HAPROXY_DEPLOYMENT_COLOUR"], "green");
    assert_eq!(
        printed["labels"]["HAPROXY_DEPLOYMENT_TARGET_INSTANCES"],
        "3"
    );
    assert_eq!(printed["labels"]["HAPROXY_DEPLOYMENT_NEW_INSTANCES"], "0");
}

#[test]
fn dry_run_third_deploy_on_marathon_1_5_is_blue_on_the_original_port() {
    // zdd.py looked at `ports`, absent on Marathon ≥ 1.5, and asked for the
    // alternate port again (Marathon rejects it: the green app holds it).
    let (out, printed) = dry_run(
        &nginx(),
        vec![running("green", 10001, "2016-02-02T10:00:00")],
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(printed["id"], "/nginx-blue");
    assert_eq!(
        printed["container"]["docker"]["portMappings"][0]["servicePort"],
        10000
    );
}

#[test]
fn dry_run_initial_instances_and_hybrid() {
    let prev = || vec![running("blue", 10000, "2016-02-01T15:51:38.184623")];
    let (out, printed) = dry_run(&nginx(), prev(), &["--initial-instances", "2"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(printed["instances"], 2);
    let (out, printed) = dry_run(&nginx(), prev(), &["-i", "9"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(printed["instances"], 3, "capped by the running instances");
    // zdd.py's test_hybrid.
    let (out, printed) = dry_run(&nginx(), prev(), &["--new-instances", "1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(printed["instances"], 1);
    assert_eq!(printed["labels"]["HAPROXY_DEPLOYMENT_NEW_INSTANCES"], "1");
    assert_eq!(
        printed["labels"]["HAPROXY_DEPLOYMENT_TARGET_INSTANCES"],
        "3"
    );
    let (_, printed) = dry_run(&nginx(), prev(), &["-n", "7"]);
    assert_eq!(
        printed["labels"]["HAPROXY_DEPLOYMENT_NEW_INSTANCES"], "3",
        "capped"
    );
}

#[test]
fn dry_run_port_definitions_only_app() {
    // zdd.py indexed the literal string 'portDefinitions': a crash.
    let mut app = nginx();
    app.as_object_mut().unwrap().remove("container");
    app["portDefinitions"] = json!([{"port": 10000, "protocol": "tcp"}]);
    let (out, printed) = dry_run(&app, vec![], &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(printed["portDefinitions"][0]["port"], 10000);
    assert_eq!(printed["labels"]["HAPROXY_0_PORT"], "10000");
    let mut prev = running("blue", 10000, "2016-02-01T00:00:00");
    prev.as_object_mut().unwrap().remove("container");
    prev["portDefinitions"] = json!([{"port": 10000}]);
    let (out, printed) = dry_run(&app, vec![prev], &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(printed["portDefinitions"][0]["port"], 10001);
}

/// App JSON, running apps, extra flags, exit code, message.
type BadCase = (Value, Vec<Value>, Vec<&'static str>, i32, &'static str);

#[test]
fn bad_inputs_exit_with_their_codes_and_messages() {
    let cases: Vec<BadCase> = vec![
        (
            {
                let mut a = nginx();
                a["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("HAPROXY_DEPLOYMENT_GROUP");
                a
            },
            vec![],
            vec![],
            4,
            "HAPROXY_DEPLOYMENT_GROUP",
        ),
        (
            {
                let mut a = nginx();
                a["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("HAPROXY_DEPLOYMENT_ALT_PORT");
                a
            },
            vec![],
            vec![],
            4,
            "HAPROXY_DEPLOYMENT_ALT_PORT",
        ),
        (
            {
                let mut a = nginx();
                a.as_object_mut().unwrap().remove("container");
                a
            },
            vec![],
            vec![],
            4,
            "service port",
        ),
        (
            nginx(),
            vec![
                running("blue", 10000, "2016-01-01T00:00:00"),
                running("green", 10001, "2016-01-02T00:00:00"),
            ],
            vec!["--force"],
            2,
            "existing deployment in progress",
        ),
        (
            nginx(),
            vec![running("blue", 10000, "2016-01-01T00:00:00")],
            vec!["--complete-cur"],
            3,
            "not hybrid",
        ),
    ];
    for (app, apps, extra, want, message) in cases {
        let (out, _) = dry_run(&app, apps, &extra);
        let err = stderr(&out);
        assert_eq!(code(&out), want, "{message}: {err}");
        assert!(err.contains(message), "expected {message:?} in:\n{err}");
    }
    let out = zdd(&["-m", "http://127.0.0.1:9", "-j", "x.json"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--marathon-lb/-l is required"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn declining_the_prompt_exits_1_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_json(dir.path(), "app.json", &nginx());
    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({"apps": []}));
    let url = sim.base_url();
    // stdin is empty: no answer is no.
    let out = zdd(&[
        "-m",
        &url,
        "-l",
        "http://127.0.0.1:9",
        "-j",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Continue with deployment? [Y/n]"));
    assert!(sim.sim().requests().iter().all(|r| r.method == "GET"));
}

#[test]
fn dry_run_is_honoured_when_resuming() {
    // zdd.py went ahead and wrote with --resume / --complete-* despite --dry-run.
    let apps = vec![
        running("blue", 10000, "2016-01-01T00:00:00"),
        running("green", 10001, "2016-01-02T00:00:00"),
    ];
    for flag in [
        "--resume",
        "--complete-cur",
        "--complete-prev",
        "--rollback",
    ] {
        let (out, printed) = dry_run(&nginx(), apps.clone(), &[flag, "--force"]);
        assert_eq!(code(&out), 0, "{flag}: {}", stderr(&out));
        assert!(printed.get("action").is_some(), "{flag}: {printed}");
    }
    let (_, printed) = dry_run(&nginx(), apps, &["--complete-prev"]);
    assert_eq!(printed["new"], "/nginx-blue");
    assert_eq!(printed["old"], "/nginx-green");
}

#[test]
fn every_zdd_py_flag_is_accepted_and_longhelp_explains() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    std::fs::write(&creds, "user:pass\n").unwrap();
    let hook = dir.path().join("hook.sh");
    std::fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
    let file = write_json(dir.path(), "app.json", &nginx());
    let rt = support::runtime();
    let sim = rt.block_on(async {
        marathon_sim::start(marathon_sim::SimConfig {
            auth: Some("user:pass".into()),
            ..marathon_sim::SimConfig::default()
        })
        .await
        .unwrap()
    });
    let url = sim.base_url();
    let out = zdd(&[
        "--marathon",
        &url,
        "--marathon-lb",
        "http://127.0.0.1:9",
        "--json",
        file.to_str().unwrap(),
        "--dry-run",
        "--force",
        "--step-delay",
        "1",
        "--initial-instances",
        "1",
        "--linear-increase",
        "0",
        "--max-wait",
        "30",
        "--new-instances",
        "0",
        "--pre-kill-hook",
        hook.to_str().unwrap(),
        "--log-format",
        "%(asctime)s %(message)s",
        "--marathon-auth-credential-file",
        creds.to_str().unwrap(),
        "--auth-credentials",
        "user:pass",
        "--dcos-auth-credentials",
        "{}",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        sim.sim().requests().iter().all(|r| r.auth),
        "basic auth sent"
    );
    let out = zdd(&[
        "-m",
        &url,
        "-l",
        "http://127.0.0.1:9",
        "-j",
        file.to_str().unwrap(),
        "-d",
        "-f",
        "-s",
        "1",
        "-i",
        "1",
        "-w",
        "3",
        "-n",
        "0",
        "-r",
        "--marathon-ca-cert",
        creds.to_str().unwrap(),
    ]);
    assert_eq!(
        code(&out),
        3,
        "a file without certificates is refused: {}",
        stderr(&out)
    );
    for short in [["-c"], ["-p"]] {
        let out = zdd(&[
            "-m",
            &url,
            "-l",
            "http://127.0.0.1:9",
            "-j",
            file.to_str().unwrap(),
            "-d",
            short[0],
            "--auth-credentials",
            "user:pass",
        ]);
        assert_eq!(code(&out), 3, "{}", stderr(&out));
    }
    let out = zdd(&["--longhelp"]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "HAPROXY_DEPLOYMENT_ALT_PORT",
        "Exit codes",
        "--rollback",
        "drained",
    ] {
        assert!(text.contains(needle), "--longhelp lacks {needle}:\n{text}");
    }
}

#[test]
fn a_marathon_that_never_answers_times_out() {
    // zdd.py had no HTTP timeout: a stalled Marathon hung it forever.
    let dir = tempfile::tempdir().unwrap();
    let file = write_json(dir.path(), "app.json", &nginx());
    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({"apps": []}));
    sim.sim()
        .set_fault(serde_json::from_value(json!({"mode": "stall"})).unwrap());
    let url = sim.base_url();
    let out = zdd(&[
        "-m",
        &url,
        "-l",
        "http://127.0.0.1:9",
        "-j",
        file.to_str().unwrap(),
        "-d",
        "--request-timeout",
        "0.5",
    ]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(stderr(&out).contains("Marathon"), "{}", stderr(&out));
}

#[test]
fn a_failed_delete_exits_8() {
    // zdd.py built AppDeleteException with the wrong arguments: a TypeError, exit 2.
    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({"apps": []}));
    let config = mlb_marathon::ClientConfig::new(vec![sim.base_url()]);
    let client = mlb_marathon::MarathonClient::new(config).unwrap();
    let mut api = marathon_lb::zdd::api::Api::new(client, false);
    let err = rt.block_on(api.delete("/nginx-blue", false)).unwrap_err();
    assert_eq!(err.exit_code(), 8, "{err}");
}

// ---------------------------------------------------------------------------
// End to end.

/// A marathon-lb instance with its own HAProxy: stats on 127.0.0.1:`stats`,
/// service frontends on `bind_ip`.
struct Lb {
    stats: u16,
    daemon: Daemon,
    log: PathBuf,
    /// One line per `pidof` run by this instance's HAProxy (a wrapper first
    /// in its PATH records the call, then runs the real one).
    pidof_calls: PathBuf,
}

fn start_lb(dir: &Path, name: &str, marathon: &str, bind_ip: &str) -> Lb {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let stats = free_port();
    let lua = d.join("lua");
    let head = format!(
        "global\n  maxconn 500\n  stats socket {dir}/haproxy.sock mode 600 expose-fd listeners level admin\n  hard-stop-after 10s\n  log stdout format raw local0 info\n\
         \x20 lua-load {lua}/getpids.lua\n  lua-load {lua}/getconfig.lua\n  lua-load {lua}/getmaps.lua\n  lua-load {lua}/signalmlb.lua\n\
         defaults\n  log global\n  option httplog\n  option dontlog-normal\n  timeout connect 3s\n  timeout client 30s\n  timeout server 30s\n  retries 3\n  option redispatch\n  option http-server-close\n  option idle-close-on-response\n\
         listen stats\n  bind 127.0.0.1:{stats}\n  mode http\n  stats enable\n  monitor-uri /_haproxy_health_check\n\
         \x20 acl getpid path /_haproxy_getpids\n  http-request use-service lua.getpids if getpid\n",
        dir = d.display(),
        lua = lua.display()
    );
    let unused = |name: &str| {
        format!(
            "\nfrontend {name}\n  bind 127.0.0.1:{}\n  mode http\n",
            free_port()
        )
    };
    let log = d.join("marathon-lb.log");
    // `/_haproxy_getpids` must not start processes inside HAProxy (a fork in
    // the worker made concurrent requests fail with 502): record any pidof.
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let pidof_calls = d.join("pidof-calls");
    let wrapper = bin.join("pidof");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$$\" >> {}\nPATH={}\nexec pidof \"$@\"\n",
            pidof_calls.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = support::command();
    cmd.env("PATH", path);
    cmd.current_dir(&d)
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
        .args(["--marathon", marathon, "--min-reload-interval", "0.1"])
        .arg("--haproxy-config")
        .arg(d.join("haproxy.cfg"))
        .arg("--haproxy-run-dir")
        .arg(&d)
        .arg("--server-state-file")
        .arg(d.join("server-state"))
        .arg("--lua-dir")
        .arg(&lua)
        .env("HAPROXY_HEAD", &head)
        .env(
            "HAPROXY_FRONTEND_HEAD",
            format!("\nfrontend {{backend}}\n  bind {bind_ip}:{{servicePort}}\n  mode {{mode}}\n"),
        )
        .env("HAPROXY_HTTP_FRONTEND_HEAD", unused("marathon_http_in"))
        .env(
            "HAPROXY_HTTP_FRONTEND_APPID_HEAD",
            unused("marathon_http_appid_in"),
        )
        .env("HAPROXY_HTTPS_FRONTEND_HEAD", unused("marathon_https_in"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for (k, _) in std::env::vars() {
        if k.starts_with("HAPROXY_") && !["HAPROXY_HEAD"].contains(&k.as_str()) {
            cmd.env_remove(k);
        }
    }
    let daemon = Daemon(cmd.spawn().unwrap());
    Lb {
        stats,
        daemon,
        log,
        pidof_calls,
    }
}

/// The web app of the end-to-end tests: 2 instances, an HTTP health check.
fn web(service: u16, alt: u16, fail: bool) -> Value {
    let mut app = json!({
        "id": "web", "instances": 2,
        "portDefinitions": [{"port": service, "protocol": "tcp"}],
        "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0, "intervalSeconds": 1,
            "timeoutSeconds": 1, "gracePeriodSeconds": 5, "maxConsecutiveFailures": 3}],
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_DEPLOYMENT_GROUP": "web",
                   "HAPROXY_DEPLOYMENT_ALT_PORT": alt.to_string()}
    });
    if fail {
        app["env"] = json!({"SIM_TASK_FAIL": "crash"});
    }
    app
}

/// One `GET /` through HAProxy: the status, or which step failed and how
/// (refused, reset, timed out, cut short).
fn probe(port: u16) -> Result<u16, String> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)
        .map_err(|e| format!("read: {e} (got {:?})", resp.get(..40)))?;
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line in {:?}", resp.get(..80)))
}

/// `HH:MM:SS.mmm` UTC, to line failures up with zdd's log lines.
fn utc_now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (s, ms) = (t.as_secs() % 86_400, t.subsec_millis());
    format!("{:02}:{:02}:{:02}.{ms:03}", s / 3600, s / 60 % 60, s % 60)
}

/// Loopback load through one HAProxy frontend until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(port: u16) -> Self {
        let (stop, ok, failed) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
        println!("load started at {}", utc_now());
        let thread = std::thread::spawn(move || {
            let mut errors = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match probe(port) {
                    Ok(200) => o.fetch_add(1, Ordering::Relaxed),
                    other => {
                        if errors.len() < 5 {
                            errors.push(format!("{other:?} at {}", utc_now()));
                        }
                        f.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            errors
        });
        Self {
            stop,
            ok,
            failed,
            thread: Some(thread),
        }
    }

    /// (ok, failed, first failures).
    fn finish(mut self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let errors = self.thread.take().unwrap().join().unwrap();
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            errors,
        )
    }
}

/// Fields drop in order: the instances first, the directory last.
struct Env {
    lbs: Vec<Lb>,
    sim: marathon_sim::SimHandle,
    _rt: tokio::runtime::Runtime,
    dir: PathBuf,
    _dir: tempfile::TempDir,
    service: u16,
    alt: u16,
}

impl Env {
    /// Simulator, two marathon-lb instances, and the blue app deployed by
    /// zdd (first deploy) and served by the first instance.
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let rt = support::runtime();
        let sim = support::start_sim(&rt, json!({"apps": []}));
        let lbs = vec![
            start_lb(&path, "lb1", &sim.base_url(), "127.0.0.1"),
            start_lb(&path, "lb2", &sim.base_url(), "127.0.0.2"),
        ];
        let env = Self {
            lbs,
            sim,
            _rt: rt,
            dir: path,
            _dir: dir,
            service: free_port(),
            alt: free_port(),
        };
        let out = env.zdd(&web(env.service, env.alt, false), &[]);
        assert_eq!(code(&out), 0, "first deploy: {}", stderr(&out));
        let t = Instant::now();
        while !(env.serves("/web-blue", "127.0.0.1") && env.serves("/web-blue", "127.0.0.2")) {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "blue does not serve on both instances after 30 s\nsimulator apps: {:?}\nmarathon-lb logs:\n{}",
                env.sim.sim().apps(),
                env.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        env.settle();
        env
    }

    /// Waits until both blue tasks are healthy in Marathon and neither
    /// marathon-lb has logged anything for a second (no reload in flight),
    /// so the load of a test starts on a settled pair of HAProxies: the
    /// tests measure what zdd does, not the set-up's last reloads.
    fn settle(&self) {
        wait_for("both blue tasks healthy", Duration::from_secs(30), || {
            self.app("/web-blue")
                .is_some_and(|a| a["tasksHealthy"] == 2)
        });
        let quiet = Duration::from_secs(1);
        let mut last = (self.logs(), Instant::now());
        wait_for(
            "the marathon-lb logs to go quiet",
            Duration::from_secs(30),
            || {
                let now = self.logs();
                if now != last.0 {
                    last = (now, Instant::now());
                }
                last.1.elapsed() >= quiet
            },
        );
    }

    fn serves(&self, who: &str, ip: &str) -> bool {
        let req = || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect((ip, self.service)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            s.write_all(b"GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n")
                .ok()?;
            let mut r = String::new();
            s.read_to_string(&mut r).ok()?;
            Some(r)
        };
        req().is_some_and(|r| r.starts_with("HTTP/1.1 200") && r.contains(who))
    }

    fn zdd(&self, app: &Value, extra: &[&str]) -> Output {
        let file = write_json(&self.dir, "web.json", app);
        let lbs: Vec<String> = self
            .lbs
            .iter()
            .map(|l| format!("http://127.0.0.1:{}", l.stats))
            .collect();
        let mut args = vec![
            "-m".to_owned(),
            self.sim.base_url(),
            "-l".to_owned(),
            lbs.join(","),
            "-j".to_owned(),
            file.display().to_string(),
            "--force".to_owned(),
        ];
        for (flag, value) in [
            ("--step-delay", "0.2"),
            ("--max-wait", "20"),
            ("--deadline", "90"),
            ("--request-timeout", "2"),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        zdd(&args)
    }

    fn app(&self, id: &str) -> Option<Value> {
        self.sim
            .sim()
            .apps()
            .iter()
            .find(|a| a["id"] == id)
            .map(|a| Value::Object(a.clone()))
    }

    fn logs(&self) -> String {
        self.lbs
            .iter()
            .map(|l| std::fs::read_to_string(&l.log).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    }
}

fn running_tasks(app: &Value) -> Vec<String> {
    app["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["state"] == "TASK_RUNNING")
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn blue_green_deploy_under_load_drops_no_request() {
    let _serial = E2E.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::start();
    let load = Load::start(env.service);
    // The pre-kill hook gets old app, task ids and new app as JSON arguments.
    let hook = env.dir.join("hook.sh");
    let calls = env.dir.join("hook-calls");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\nprintf '%s\\n' \"$2\" >> {}\n", calls.display()),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&hook).status().unwrap();
    let t0 = Instant::now();
    let out = env.zdd(
        &web(env.service, env.alt, false),
        &["--pre-kill-hook", hook.to_str().unwrap()],
    );
    let took = t0.elapsed();
    wait_for("green to serve", Duration::from_secs(20), || {
        env.serves("/web-green", "127.0.0.1")
    });
    std::thread::sleep(Duration::from_millis(500));
    let (ok, failed, errors) = load.finish();
    println!(
        "blue->green with 2 marathon-lb instances: {ok} requests ok, {failed} failed, deploy took {} ms",
        took.as_millis()
    );
    let err = stderr(&out);
    println!("zdd progress:\n{err}");
    assert_eq!(code(&out), 0, "{err}\n{}", env.logs());
    assert_eq!(
        failed,
        0,
        "failures: {errors:?}\n{err}\nmarathon-lb logs:\n{}",
        env.logs()
    );
    assert!(ok > 0);
    assert!(env.app("/web-blue").is_none(), "the old app is gone");
    let green = env.app("/web-green").expect("green exists");
    assert_eq!(green["instances"], 2);
    assert_eq!(green["labels"]["HAPROXY_DEPLOYMENT_COLOUR"], "green");
    assert!(err.contains("killing drained old tasks"), "{err}");
    // zdd polled /_haproxy_getpids all along: answered from the master CLI's
    // `show proc`, without a process started inside HAProxy.
    for lb in &env.lbs {
        let pids = support::http::request(lb.stats, "lb", "/_haproxy_getpids").expect("getpids");
        assert_eq!(pids.status, 200);
        let n = pids.body.split_whitespace().count();
        assert!(
            (2..=3).contains(&n),
            "master and worker(s): {:?}",
            pids.body
        );
        let calls = std::fs::read_to_string(&lb.pidof_calls).unwrap_or_default();
        assert_eq!(calls.lines().count(), 0, "pidof ran in HAProxy: {calls}");
    }
    let calls = std::fs::read_to_string(&calls).unwrap_or_default();
    assert!(
        calls.starts_with("[\"web-blue."),
        "hook arguments: {calls:?}"
    );
    let writes: Vec<String> = env
        .sim
        .sim()
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        writes
            .iter()
            .any(|w| w == "POST /v2/tasks/delete?scale=true"),
        "{writes:?}"
    );
    assert!(
        writes
            .iter()
            .any(|w| w.starts_with("PUT /v2/apps/web-green")),
        "{writes:?}"
    );
    assert!(
        writes.iter().any(|w| w == "DELETE /v2/apps/web-blue"),
        "{writes:?}"
    );
}

#[test]
fn a_failing_new_version_is_rolled_back_without_dropping_requests() {
    let _serial = E2E.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::start();
    let blue_tasks = running_tasks(&env.app("/web-blue").unwrap());
    let load = Load::start(env.service);
    let out = env.zdd(&web(env.service, env.alt, true), &["--log-format", "json"]);
    std::thread::sleep(Duration::from_millis(500));
    let (ok, failed, errors) = load.finish();
    println!("failing version, rolled back: {ok} requests ok, {failed} failed");
    let err = stderr(&out);
    println!("zdd progress:\n{err}");
    assert_eq!(code(&out), 10, "{err}\n{}", env.logs());
    assert_eq!(
        failed,
        0,
        "failures: {errors:?}\n{err}\nmarathon-lb logs:\n{}",
        env.logs()
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with('{') && l.contains("\"exit_code\"")),
        "JSON lines: {err}"
    );
    assert!(env.app("/web-green").is_none(), "the new app is gone");
    let blue = env.app("/web-blue").expect("blue kept");
    assert_eq!(running_tasks(&blue), blue_tasks, "blue untouched");
    assert!(env.serves("/web-blue", "127.0.0.1"));
}

#[test]
fn a_marathon_lb_instance_dying_mid_deploy_stops_and_rolls_back() {
    let _serial = E2E.lock().unwrap_or_else(|e| e.into_inner());
    let mut env = Env::start();
    let load = Load::start(env.service);
    let file = write_json(&env.dir, "web.json", &web(env.service, env.alt, false));
    let lbs: Vec<String> = env
        .lbs
        .iter()
        .map(|l| format!("http://127.0.0.1:{}", l.stats))
        .collect();
    let child = support::command()
        .args([
            "zdd",
            "--syslog-socket",
            "/dev/null",
            "--log-level",
            "INFO",
            "--force",
            "--step-delay",
            "0.5",
            "--deadline",
            "90",
            "--request-timeout",
            "1",
        ])
        .args([
            "-m",
            &env.sim.base_url(),
            "-l",
            &lbs.join(","),
            "-j",
            file.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("a green task to run", Duration::from_secs(30), || {
        env.app("/web-green")
            .is_some_and(|g| !running_tasks(&g).is_empty())
    });
    let blue_left = running_tasks(&env.app("/web-blue").unwrap());
    drop(env.lbs.remove(1).daemon);
    let out = child.wait_with_output().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (ok, failed, errors) = load.finish();
    println!("marathon-lb instance lost mid-deploy: {ok} requests ok, {failed} failed");
    let err = stderr(&out);
    println!("zdd progress:\n{err}");
    assert_eq!(code(&out), 10, "{err}");
    assert!(err.contains("unreachable"), "{err}");
    assert_eq!(
        failed,
        0,
        "failures: {errors:?}\n{err}\nmarathon-lb logs:\n{}",
        env.logs()
    );
    let blue = env.app("/web-blue").expect("blue kept");
    let now = running_tasks(&blue);
    assert!(
        blue_left.iter().all(|t| now.contains(t)),
        "no old task killed after the loss: {blue_left:?} -> {now:?}"
    );
    assert_eq!(blue["instances"], 2, "back at its target");
    assert!(env.app("/web-green").is_none());
    // A green task killed by the rollback may still answer during its kill
    // grace period on an instance that had not listed it yet (no request
    // fails: the load above counts them); blue answers once it is gone.
    wait_for("blue to answer", Duration::from_secs(20), || {
        env.serves("/web-blue", "127.0.0.1")
    });
}

#[test]
fn the_deadline_stops_and_rolls_back() {
    let _serial = E2E.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::start();
    let load = Load::start(env.service);
    let out = env.zdd(&web(env.service, env.alt, false), &["--deadline", "0.3"]);
    std::thread::sleep(Duration::from_millis(300));
    let (ok, failed, errors) = load.finish();
    println!("--deadline 0.3 s: {ok} requests ok, {failed} failed");
    let err = stderr(&out);
    assert_eq!(code(&out), 10, "{err}");
    assert!(err.contains("--deadline reached"), "{err}");
    assert_eq!(
        failed,
        0,
        "failures: {errors:?}\n{err}\nmarathon-lb logs:\n{}",
        env.logs()
    );
    assert!(env.app("/web-green").is_none());
    assert_eq!(env.app("/web-blue").expect("blue kept")["instances"], 2);
}

#[test]
fn a_canary_keeps_both_apps_and_rollback_undoes_it() {
    let _serial = E2E.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::start();
    let load = Load::start(env.service);
    let out = env.zdd(&web(env.service, env.alt, false), &["--new-instances", "1"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(err.contains("hybrid deployment complete"), "{err}");
    let (blue, green) = (
        env.app("/web-blue").expect("blue"),
        env.app("/web-green").expect("green"),
    );
    assert_eq!(
        (blue["instances"].as_u64(), green["instances"].as_u64()),
        (Some(1), Some(1))
    );
    wait_for("both colours to serve", Duration::from_secs(20), || {
        env.serves("/web-green", "127.0.0.1") && env.serves("/web-blue", "127.0.0.1")
    });
    let out = env.zdd(&web(env.service, env.alt, false), &["--rollback"]);
    std::thread::sleep(Duration::from_millis(300));
    let (ok, failed, errors) = load.finish();
    println!("canary then --rollback: {ok} requests ok, {failed} failed");
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert_eq!(
        failed,
        0,
        "failures: {errors:?}\n{err}\nmarathon-lb logs:\n{}",
        env.logs()
    );
    assert!(env.app("/web-green").is_none(), "{err}");
    assert_eq!(env.app("/web-blue").expect("blue")["instances"], 2);
}

#[test]
fn an_interrupted_deploy_is_resumed() {
    let _serial = E2E.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::start();
    let load = Load::start(env.service);
    let file = write_json(&env.dir, "web.json", &web(env.service, env.alt, false));
    let lbs: Vec<String> = env
        .lbs
        .iter()
        .map(|l| format!("http://127.0.0.1:{}", l.stats))
        .collect();
    let mut child = support::command()
        .args([
            "zdd",
            "--syslog-socket",
            "/dev/null",
            "--force",
            "--step-delay",
            "5",
        ])
        .args([
            "-m",
            &env.sim.base_url(),
            "-l",
            &lbs.join(","),
            "-j",
            file.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.dir.join("zdd-interrupted.log")).unwrap())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while env.app("/web-green").is_none() {
        let exited = child.try_wait().unwrap();
        assert!(
            exited.is_none() && t.elapsed() < Duration::from_secs(30),
            "no green app after {:?} (zdd exited: {exited:?})\nzdd:\n{}\nmarathon-lb logs:\n{}",
            t.elapsed(),
            std::fs::read_to_string(env.dir.join("zdd-interrupted.log")).unwrap_or_default(),
            env.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // zdd dies between steps: two apps in the group.
    child.kill().unwrap();
    child.wait().unwrap();
    let out = env.zdd(&web(env.service, env.alt, false), &[]);
    assert_eq!(code(&out), 2, "no --resume: {}", stderr(&out));
    let out = env.zdd(&web(env.service, env.alt, false), &["--resume"]);
    std::thread::sleep(Duration::from_millis(300));
    let (ok, failed, errors) = load.finish();
    println!("interrupted, then --resume: {ok} requests ok, {failed} failed");
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert_eq!(
        failed,
        0,
        "failures: {errors:?}\nzdd --resume:\n{err}\nmarathon-lb logs:\n{}",
        env.logs()
    );
    assert!(env.app("/web-blue").is_none(), "{err}");
    assert_eq!(env.app("/web-green").expect("green")["instances"], 2);
}
