//! Harness of `container.rs`: run `docker/run` as the image would, with
//! the image's paths under a temporary root, and look at what it started.
//!
//! # Layout
//! - paths and processes: [`repo`], [`image_path`], [`procs_mentioning`],
//!   [`is_root`], [`ns_pids`], [`catches_sigterm`].
//! - [`Entrypoint`]: one `docker/run` process group, its root and output.
//! - templates: [`image_head`], [`loopback_env`].
//! - HTTP(S) on loopback: [`http`], [`http10`], [`served`], [`https_get`].
//! - certificates: [`openssl`], [`make_cert`].

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support;
use crate::support::http::{free_port, request};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `PATH` with the binary under test first, as `/usr/local/bin` in the image.
pub fn image_path() -> String {
    let bin = support::binary();
    format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        bin.parent().unwrap().display()
    )
}

/// Processes whose command line mentions `needle` (a unique temp path).
pub fn procs_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push((pid, cmdline));
            }
        }
    }
    found
}

pub fn kill(sig: &str, target: &str) {
    let _ = Command::new("kill")
        .args([sig, "--", target])
        .stderr(Stdio::null())
        .status();
}

/// One `docker/run` (its own process group, as tini -g treats it).
pub struct Entrypoint {
    pub child: Child,
    pub root: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Entrypoint {
    /// Run `command` (the entrypoint or a shell around it) with a clean
    /// environment: `PATH`, `MLB_ROOT=<dir>/root` and `env`.
    pub fn start(dir: &Path, command: &mut Command, env: &[(&str, String)]) -> Self {
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let (stdout, stderr) = (dir.join("run.out"), dir.join("run.err"));
        command
            .env_clear()
            .env("PATH", image_path())
            .env("MLB_ROOT", &root)
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .process_group(0);
        Entrypoint {
            child: command.spawn().expect("docker/run starts"),
            root,
            stdout,
            stderr,
        }
    }

    pub fn root_str(&self) -> String {
        self.root.display().to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// stderr then stdout, for failure messages.
    pub fn log(&self) -> String {
        format!(
            "--- stderr\n{}\n--- stdout\n{}",
            std::fs::read_to_string(&self.stderr).unwrap_or_default(),
            std::fs::read_to_string(&self.stdout).unwrap_or_default()
        )
    }

    /// Poll `f` until it holds; on timeout panic with this run's output.
    pub fn wait_for(&self, what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
        let start = Instant::now();
        while !f() {
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        start.elapsed()
    }

    /// Wait up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGTERM, then: exit status 0 and no process left under the root
    /// (HAProxy, the syslog relay).
    pub fn stop_cleanly(&mut self) {
        let status = self
            .terminate()
            .unwrap_or_else(|| panic!("no exit after SIGTERM\n{}", self.log()));
        assert!(status.success(), "{status}\n{}", self.log());
        assert_nothing_left(&self.root_str(), &self.log());
    }

    /// SIGTERM to the process group (what `docker stop` does through `tini -g`).
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        kill("-TERM", &format!("-{}", self.pid()));
        self.wait_exit(Duration::from_secs(15))
    }
}

impl Drop for Entrypoint {
    fn drop(&mut self) {
        if self.wait_exit(Duration::ZERO).is_none() {
            kill("-TERM", &format!("-{}", self.pid()));
            if self.wait_exit(Duration::from_secs(10)).is_none() {
                kill("-KILL", &format!("-{}", self.pid()));
                let _ = self.child.wait();
            }
        }
        // Anything still running under this root was started by this test.
        for (pid, _) in procs_mentioning(&self.root_str()) {
            kill("-KILL", &pid.to_string());
        }
    }
}

/// `text` with every `from` replaced; panics when `from` is absent (the
/// default HEAD no longer has the path or line the image relies on).
pub fn replace_present(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "templates/HAPROXY_HEAD no longer contains {from:?}; docker/run and the Dockerfile rely on it"
    );
    text.replace(from, to)
}

/// The default HAPROXY_HEAD with every image path moved under `root` (each
/// must exist in the default: they are the paths docker/run provides), a
/// low maxconn and the stats listener on `127.0.0.1:stats`.
pub fn image_head(root: &Path, stats: u16) -> String {
    let r = root.display();
    let mut head = read(repo().join("templates/HAPROXY_HEAD"));
    for path in [
        "/dev/log",
        "/var/run/haproxy/",
        "/var/state/haproxy/",
        "/marathon-lb/",
    ] {
        head = replace_present(&head, &format!(" {path}"), &format!(" {r}{path}"));
    }
    head = replace_present(&head, "maxconn 50000", "maxconn 200");
    head = replace_present(
        &head,
        "bind 0.0.0.0:9090",
        &format!("bind 127.0.0.1:{stats}"),
    );
    if head.contains("@@HAPROXY_GLOBAL_DEFAULT_OPTIONS@@") {
        head = head.replace(
            "@@HAPROXY_GLOBAL_DEFAULT_OPTIONS@@",
            "  option redispatch\n  option http-server-close\n  option dontlognull",
        );
    }
    head
}

/// Loopback ports of one load balancer.
#[derive(Clone, Copy)]
pub struct Ports {
    pub http: u16,
    pub https: u16,
    pub stats: u16,
}

impl Ports {
    pub fn new() -> Self {
        Ports {
            http: free_port(),
            https: free_port(),
            stats: free_port(),
        }
    }
}

/// `$MESOS_SANDBOX` with `templates/HAPROXY_HEAD`, and the environment that
/// binds every frontend to loopback: the operator-side overrides a test
/// needs, nothing else.
pub fn loopback_env<'a>(dir: &Path, root: &Path, ports: Ports) -> Vec<(&'a str, String)> {
    let sandbox = dir.join("sandbox");
    std::fs::create_dir_all(sandbox.join("templates")).unwrap();
    std::fs::write(
        sandbox.join("templates/HAPROXY_HEAD"),
        image_head(root, ports.stats),
    )
    .unwrap();
    let frontend_head = replace_present(
        &read(repo().join("templates/HAPROXY_FRONTEND_HEAD")),
        "{bindAddr}",
        "127.0.0.1",
    );
    vec![
        ("MESOS_SANDBOX", sandbox.display().to_string()),
        (
            "HAPROXY_HTTP_FRONTEND_HEAD",
            format!(
                "\nfrontend marathon_http_in\n  bind 127.0.0.1:{}\n  mode http\n",
                ports.http
            ),
        ),
        (
            "HAPROXY_HTTPS_FRONTEND_HEAD",
            format!(
                "\nfrontend marathon_https_in\n  bind 127.0.0.1:{} ssl {{sslCerts}}\n  mode http\n",
                ports.https
            ),
        ),
        (
            "HAPROXY_HTTP_FRONTEND_APPID_HEAD",
            format!(
                "\nfrontend marathon_http_appid_in\n  bind 127.0.0.1:{}\n  mode http\n",
                free_port()
            ),
        ),
        ("HAPROXY_FRONTEND_HEAD", frontend_head),
    ]
}

pub fn http(port: u16, host: &str, path: &str) -> Option<(u16, String)> {
    request(port, host, path).map(|r| (r.status, r.body))
}

/// `GET path` in HTTP/1.0 (the body may still be chunked: HAProxy's stats
/// page is, even to an HTTP/1.0 client): status and body, or what went wrong.
pub fn http10(port: u16, path: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: lb\r\n\r\n").map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).map_err(|e| e.to_string())?;
    let raw = || String::from_utf8_lossy(&resp).into_owned();
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no header end in {:?}", raw()))?;
    let head = String::from_utf8_lossy(&resp[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {:?}", raw()))?;
    let mut body = &resp[split + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return Ok((status, String::from_utf8_lossy(body).into_owned()));
    }
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| format!("bad chunk in {:?}", raw()))?;
        let size = std::str::from_utf8(&body[..line_end])
            .ok()
            .and_then(|h| usize::from_str_radix(h.trim(), 16).ok())
            .ok_or_else(|| format!("bad chunk size in {:?}", raw()))?;
        if size == 0 {
            return Ok((status, String::from_utf8_lossy(&out).into_owned()));
        }
        let data = body
            .get(line_end + 2..line_end + 2 + size)
            .ok_or_else(|| format!("short chunk in {:?}", raw()))?;
        out.extend_from_slice(data);
        body = body.get(line_end + 4 + size..).unwrap_or_default();
    }
}

pub fn served(port: u16, host: &str, who: &str) -> bool {
    http(port, host, "/").is_some_and(|(s, body)| s == 200 && body == who)
}

/// `GET https://host:port/` through curl (SNI = host), without verification.
pub fn https_get(port: u16, host: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "5", "--resolve"])
        .arg(format!("{host}:{port}:127.0.0.1"))
        .arg(format!("https://{host}:{port}/"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn web_app(service: u16, task_port: u16) -> Value {
    json!({
        "id": "/web", "instances": 1,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.test"},
        "portDefinitions": [{"port": service}],
        "tasks": [{"id": "web.t1", "host": "127.0.0.1", "ports": [task_port], "state": "TASK_RUNNING"}]
    })
}

/// Digits-only PIDs in `body`, and whether one of them is an HAProxy of `root`.
pub fn pids_include_haproxy_of(body: &str, root: &str) -> bool {
    let pids: Vec<&str> = body.split_whitespace().collect();
    assert!(
        !pids.is_empty() && pids.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())),
        "getpids answered {body:?}"
    );
    let ours: Vec<String> = procs_mentioning(root)
        .into_iter()
        .filter(|(_, c)| c.contains("haproxy"))
        .map(|(p, _)| p.to_string())
        .collect();
    pids.iter().any(|p| ours.iter().any(|o| o == p))
}

/// No process mentioning `root` (HAProxy, the syslog relay) is left.
pub fn assert_nothing_left(root: &str, log: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = procs_mentioning(root);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left behind after SIGTERM: {left:?}\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A self-signed certificate + key for `cn`, as PEM text.
pub fn make_cert(dir: &Path, cn: &str) -> String {
    let (key, crt) = (format!("{cn}.key"), format!("{cn}.crt"));
    let subject = format!("/CN={cn}");
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &EC_KEY,
            &["-subj", &subject, "-keyout", &key, "-out", &crt],
        ]
        .concat(),
    );
    read(dir.join(crt)) + &read(dir.join(key))
}

/// Whether this test runs as root (read from /proc).
pub fn is_root() -> bool {
    read("/proc/self/status")
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        .unwrap_or(false)
}

/// `NSpid` of a process: its PIDs from the outermost to its own namespace.
pub fn ns_pids(pid: u32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Whether `pid` has a SIGTERM handler installed (marathon-lb's graceful stop).
pub fn catches_sigterm(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (15 - 1)) != 0)
}

/// openssl options for a new P-256 key, unencrypted, valid two days.
pub const EC_KEY: [&str; 7] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "2",
];

/// openssl with `args` in `dir`, panicking with its stderr on failure.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
