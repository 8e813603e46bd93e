//! Membership changes through the runtime API against a real HAProxy 2.6
//! on loopback, started by the supervisor through [`HaproxyControl`]: a
//! server added serves with no reload; a removed one gets no new request
//! while its in-flight request completes, then is deleted; the guards
//! (sticky, `static-rr`, `balance source`, an id collision pair) reload;
//! a failing runtime command reloads and HAProxy ends up running the file.
//!
//! Backends are tiny HTTP servers in this file answering their own name
//! (`GET /slow` after 1.5 s). Every path lives in a temp dir. Run with
//! `--nocapture` for the timings.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mlb_core::render::Renderer;
use mlb_core::{RenderSettings, Rendered, Templates};
use mlb_haproxy::apply::{ApplyOptions, Outcome};
use mlb_haproxy::runtime::Applied;
use mlb_haproxy::{HaproxyControl, Loaded, SupervisorConfig};

/// One HAProxy at a time (2-core machine).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP/1.1 server on loopback answering `name` to every request (one
/// per connection), `GET /slow` after 1.5 s. Returns its port.
fn backend(name: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    return;
                }
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                if first.starts_with("GET /slow ") {
                    std::thread::sleep(Duration::from_millis(1500));
                }
                let _ = (&stream).write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
                        name.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    port
}

/// `GET path` through HAProxy on `port`: (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// A backend of the test config: its name, `balance`, extra lines, servers.
struct Be<'a> {
    name: &'a str,
    balance: &'a str,
    extra: &'a str,
    servers: Vec<String>,
}

/// marathon-lb's shape (HEAD's state-file lines, the app's `frontend` named
/// like its backend and before it, `backend` + `balance` + `mode`,
/// `server <ip>_<port> <ip>:<port> id N …` lines), small timeouts.
fn config(dir: &Path, port: u16, backends: &[Be<'_>]) -> String {
    let mut c = format!(
        "global\n  server-state-file global\n  server-state-base {}/\n\
         defaults\n  load-server-state-from-file global\n  mode http\n  retries 1\n\
         \x20 timeout connect 100ms\n  timeout client 10s\n  timeout server 10s\n\
         \nfrontend {name}\n  bind 127.0.0.1:{port}\n  default_backend {name}\n",
        dir.display(),
        name = backends[0].name
    );
    for b in backends {
        c.push_str(&format!(
            "\nbackend {}\n  balance {}\n  mode http\n{}",
            b.name, b.balance, b.extra
        ));
        for s in &b.servers {
            c.push_str(&format!("  server {s}\n"));
        }
    }
    c
}

fn server(port: u16, id: u32, options: &str) -> String {
    format!("127_0_0_1_{port} 127.0.0.1:{port} id {id}{options}")
}

struct Lb {
    ctl: HaproxyControl,
    dir: tempfile::TempDir,
    renderer: Renderer,
    port: u16,
}

impl Lb {
    fn new() -> Lb {
        let dir = tempfile::tempdir().unwrap();
        let options = ApplyOptions {
            skip_validation: false,
            command: None,
            archive_versions: 0,
            max_reload_retries: 0,
            reload_interval: Duration::from_millis(10),
        };
        let sup = SupervisorConfig {
            haproxy: "haproxy".into(),
            config: dir.path().join("haproxy.cfg"),
            run_dir: dir.path().join("run"),
            state_file: dir.path().join("global"),
            lua_dir: None,
        };
        let ctl = HaproxyControl::new(
            dir.path().join("haproxy.cfg"),
            false,
            options,
            true,
            Some(sup),
        )
        .unwrap();
        Lb {
            ctl,
            dir,
            renderer: Renderer::new(Templates::defaults()),
            port: free_port(),
        }
    }

    /// Write the config of `backends` and load it (start, runtime or reload).
    async fn load(&mut self, backends: &[Be<'_>]) -> Loaded {
        let rendered = Rendered {
            config: config(self.dir.path(), self.port, backends),
            ..Rendered::default()
        };
        let outcome = self
            .ctl
            .write(
                &rendered,
                &[],
                &mut self.renderer,
                &RenderSettings::default(),
            )
            .unwrap();
        self.ctl.load(&outcome).await.unwrap().expect("loaded")
    }

    async fn reloads(&self) -> u64 {
        self.ctl
            .supervisor()
            .unwrap()
            .processes()
            .await
            .unwrap()
            .reloads
    }

    /// `show servers state <backend>`: (name, port, admin state) per server.
    async fn servers(&self, backend: &str) -> Vec<(String, u16, u32)> {
        let text = self
            .ctl
            .supervisor()
            .unwrap()
            .worker_command(&format!("show servers state {backend}"))
            .await
            .unwrap();
        let state = mlb_haproxy::runtime::commands::parse_servers_state(&text).unwrap();
        state
            .into_iter()
            .map(|s| (s.name, s.port, s.admin))
            .collect()
    }

    /// The answers of `n` requests, all 200: which backends answered.
    async fn bodies(&self, n: usize) -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..n {
            let (status, body) = self.get("/").await;
            assert_eq!(status, 200);
            seen.insert(body);
        }
        seen.into_iter().collect()
    }

    fn reason(&self) -> &'static str {
        self.ctl.last_reload_reason().map_or("-", |r| r.label())
    }

    async fn get(&self, path: &'static str) -> (u16, String) {
        let port = self.port;
        tokio::task::spawn_blocking(move || get(port, path))
            .await
            .unwrap()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn app(servers: Vec<String>) -> Vec<Be<'static>> {
    vec![Be {
        name: "app_10000",
        balance: "roundrobin",
        extra: "",
        servers,
    }]
}

#[test]
fn servers_come_and_go_without_a_reload_and_drain_first() {
    let _one = serial();
    rt().block_on(async {
        let (a, b) = (backend("A"), backend("B"));
        let mut lb = Lb::new();
        assert_eq!(lb.load(&app(vec![server(a, 11, "")])).await, Loaded::Started);
        assert_eq!(lb.get("/").await, (200, "A".into()));
        let reloads = lb.reloads().await;

        // Add B (health-checked) at run time.
        let with_b = app(vec![server(a, 11, ""), server(b, 22, " check inter 1s fall 2")]);
        let started = Instant::now();
        let Loaded::Runtime(applied) = lb.load(&with_b).await else {
            panic!("runtime update expected, reason {}", lb.reason());
        };
        let add_took = started.elapsed();
        assert_eq!((applied.added, applied.removed), (1, 0));
        let applied_add = applied;
        assert_eq!(lb.bodies(6).await, ["A", "B"]);
        assert_eq!(lb.reloads().await, reloads, "no reload for an added server");

        // Back to A only; a slow request sits on A; then A leaves and C
        // comes: no new request reaches A, the slow one completes.
        let c = backend("C");
        let Loaded::Runtime(_) = lb.load(&app(vec![server(a, 11, "")])).await else {
            panic!("runtime update expected, reason {}", lb.reason());
        };
        let port = lb.port;
        let slow = tokio::task::spawn_blocking(move || get(port, "/slow"));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Loaded::Runtime(applied) = lb.load(&app(vec![server(c, 33, "")])).await else {
            panic!("runtime update expected, reason {}", lb.reason());
        };
        assert_eq!((applied.added, applied.removed), (1, 1));
        for _ in 0..5 {
            assert_eq!(lb.get("/").await, (200, "C".into()));
        }
        let a_name = format!("127_0_0_1_{a}");
        let listed = lb.servers("app_10000").await;
        let a_state = listed.iter().find(|s| s.0 == a_name).map(|s| s.2);
        assert!(a_state.is_some_and(|admin| admin & 1 == 1), "A in maintenance while its request runs: {listed:?}");
        assert_eq!(slow.await.unwrap(), (200, "A".into()), "the in-flight request completes");
        // Then A is deleted (sessions gone, grace 100 ms × 2 passed).
        let deadline = Instant::now() + Duration::from_secs(10);
        while lb.servers("app_10000").await.iter().any(|s| s.0 == a_name) {
            assert!(Instant::now() < deadline, "A never deleted");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(lb.ctl.draining().await, 0);
        assert_eq!(lb.reloads().await, reloads, "no reload for any of it");

        // A reload keeps the runtime-added server (the file has it).
        let started = Instant::now();
        let Some(Loaded::Reloaded(took)) = lb.ctl.revalidate().await.unwrap() else {
            panic!("reload expected");
        };
        let reload_wall = started.elapsed();
        assert_eq!(lb.get("/").await, (200, "C".into()));
        let listed = lb.servers("app_10000").await;
        assert_eq!(listed.iter().map(|s| (s.0.as_str(), s.2)).collect::<Vec<_>>(), [(format!("127_0_0_1_{c}").as_str(), 0)]);
        println!(
            "runtime add of one server: {:?} ({} commands, verification included; {add_took:?} with the write and haproxy -c); \
             reload of the same config: {took:?} ({reload_wall:?} with haproxy -c)",
            applied_add.took, applied_add.commands
        );
        lb.ctl.stop().await;
    });
}

#[test]
fn guards_reload() {
    let _one = serial();
    rt().block_on(async {
        let (a, b) = (backend("A"), backend("B"));
        let mut lb = Lb::new();
        let sticky_extra = "  cookie mesosphere_server_id insert indirect nocache\n";
        let make = |step: usize| {
            // Backend i gets its second server from step i + 1 on.
            let two = |i: usize, first: String, second: String| {
                if step > i {
                    vec![first, second]
                } else {
                    vec![first]
                }
            };
            vec![
                Be {
                    name: "plain_1",
                    balance: "roundrobin",
                    extra: "",
                    servers: vec![server(a, 1, "")],
                },
                Be {
                    name: "sticky_2",
                    balance: "roundrobin",
                    extra: sticky_extra,
                    servers: two(
                        0,
                        server(a, 1, " check cookie aaaaaaaaaa"),
                        server(b, 2, " check cookie bbbbbbbbbb"),
                    ),
                },
                Be {
                    name: "staticrr_3",
                    balance: "static-rr",
                    extra: "",
                    servers: two(1, server(a, 1, ""), server(b, 2, "")),
                },
                Be {
                    name: "source_4",
                    balance: "source",
                    extra: "",
                    servers: two(2, server(a, 1, ""), server(b, 2, "")),
                },
                Be {
                    name: "ids_5",
                    balance: "roundrobin",
                    extra: "",
                    // B takes A's id, A moves on (marathon-lb's collision chain).
                    servers: if step > 3 {
                        vec![server(a, 31325, ""), server(b, 9734, "")]
                    } else {
                        vec![server(a, 9734, "")]
                    },
                },
            ]
        };
        assert_eq!(lb.load(&make(0)).await, Loaded::Started);
        for (step, (backend, reason)) in [
            ("sticky_2", "cookie"),
            ("staticrr_3", "balance"),
            ("source_4", "balance"),
            ("ids_5", "server_id"),
        ]
        .into_iter()
        .enumerate()
        {
            let before = lb.reloads().await;
            let loaded = lb.load(&make(step + 1)).await;
            assert!(
                matches!(loaded, Loaded::Reloaded(_)),
                "{backend}: {loaded:?}"
            );
            assert_eq!(lb.reason(), reason, "{backend}");
            assert_eq!(lb.reloads().await, before + 1, "{backend}");
            assert_eq!(
                lb.servers(backend).await.len(),
                2,
                "{backend}: the file's servers run"
            );
        }
        // `hash-type consistent` makes `balance source` dynamic.
        let mut last = make(4);
        last[3].extra = "  hash-type consistent\n";
        assert!(
            matches!(lb.load(&last).await, Loaded::Reloaded(_)),
            "a backend line changed"
        );
        last[3].servers.pop();
        let loaded = lb.load(&last).await;
        assert!(
            matches!(loaded, Loaded::Runtime(_)),
            "{loaded:?}, {}",
            lb.reason()
        );
        // `--no-runtime-updates`: the same kind of change reloads.
        lb.ctl.set_runtime_updates(false);
        last[3].servers.push(server(b, 2, ""));
        let loaded = lb.load(&last).await;
        assert!(matches!(loaded, Loaded::Reloaded(_)), "{loaded:?}");
        assert_eq!(lb.reason(), "runtime_off");
        lb.ctl.stop().await;
    });
}

#[test]
fn a_failing_runtime_command_reloads_and_the_file_wins() {
    let _one = serial();
    rt().block_on(async {
        let (a, b, other) = (backend("A"), backend("B"), backend("other"));
        let mut lb = Lb::new();
        assert_eq!(
            lb.load(&app(vec![server(a, 11, "")])).await,
            Loaded::Started
        );
        // Drift behind the controller's back: B's name, another port, in
        // maintenance (`add server` leaves it there).
        let b_name = format!("127_0_0_1_{b}");
        let reply = lb
            .ctl
            .supervisor()
            .unwrap()
            .worker_command(&format!(
                "add server app_10000/{b_name} 127.0.0.1:{other} id 22"
            ))
            .await
            .unwrap();
        assert_eq!(reply.trim(), "New server registered.");
        let before = lb.reloads().await;
        let loaded = lb
            .load(&app(vec![server(a, 11, ""), server(b, 22, "")]))
            .await;
        assert!(matches!(loaded, Loaded::Reloaded(_)), "{loaded:?}");
        assert_eq!(lb.reason(), "runtime_failed");
        let detail = lb.ctl.last_reload_reason().unwrap().to_string();
        assert!(
            detail.contains("add server") && detail.contains("already used"),
            "{detail}"
        );
        assert_eq!(lb.reloads().await, before + 1);
        // The saved server state replayed the drift (port, maintenance);
        // the controller put B back to what the file says.
        let listed = lb.servers("app_10000").await;
        assert!(listed.contains(&(b_name.clone(), b, 0)), "{listed:?}");
        assert_eq!(lb.bodies(6).await, ["A", "B"]);
        lb.ctl.stop().await;
    });
}

#[test]
fn a_cold_start_ignores_a_stale_server_state() {
    let _one = serial();
    rt().block_on(async {
        let a = backend("A");
        let mut lb = Lb::new();
        // Left by an earlier run: A in forced maintenance on another port.
        let name = format!("127_0_0_1_{a}");
        let stale = format!(
            "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n\
             3 app_10000 11 {name} 127.0.0.1 0 1 1 1 5 1 0 0 0 0 0 1 - 1 - 0 0 - - 0\n"
        );
        std::fs::write(lb.dir.path().join("global"), stale).unwrap();
        assert_eq!(lb.load(&app(vec![server(a, 11, "")])).await, Loaded::Started);
        assert_eq!(lb.servers("app_10000").await, [(name, a, 0)]);
        assert_eq!(lb.get("/").await, (200, "A".into()));
        lb.ctl.stop().await;
    });
}

#[test]
fn a_draining_toggle_is_a_maintenance_change() {
    let _one = serial();
    rt().block_on(async {
        let (a, b) = (backend("A"), backend("B"));
        let mut lb = Lb::new();
        // ZDD: the old task's server says ` disabled`.
        let draining = app(vec![server(a, 11, ""), server(b, 22, " disabled")]);
        assert_eq!(lb.load(&draining).await, Loaded::Started);
        assert_eq!(lb.bodies(4).await, ["A"]);
        let reloads = lb.reloads().await;
        // Disabled in the config, then ready at run time: serves.
        let both = app(vec![server(a, 11, ""), server(b, 22, "")]);
        let loaded = lb.load(&both).await;
        assert!(
            matches!(loaded, Loaded::Runtime(Applied { toggled: 1, .. })),
            "{loaded:?}"
        );
        assert_eq!(lb.bodies(6).await, ["A", "B"]);
        let loaded = lb.load(&draining).await;
        assert!(
            matches!(loaded, Loaded::Runtime(Applied { toggled: 1, .. })),
            "{loaded:?}"
        );
        assert_eq!(lb.bodies(6).await, ["A"]);
        assert_eq!(lb.reloads().await, reloads);
        lb.ctl.stop().await;
    });
}

#[test]
fn after_a_restart_the_runtime_path_goes_on() {
    let _one = serial();
    rt().block_on(async {
        let (a, b) = (backend("A"), backend("B"));
        let mut lb = Lb::new();
        assert_eq!(
            lb.load(&app(vec![server(a, 11, "")])).await,
            Loaded::Started
        );
        let with_b = app(vec![server(a, 11, ""), server(b, 22, "")]);
        assert!(matches!(lb.load(&with_b).await, Loaded::Runtime(_)));
        // HAProxy dies; the supervisor starts it again from the file, which
        // has B.
        let sup = lb.ctl.supervisor().unwrap();
        let master = sup.master_pid().unwrap();
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &master.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        while sup.master_pid().is_none_or(|p| p == master) {
            assert!(Instant::now() < deadline, "HAProxy not restarted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(lb.bodies(6).await, ["A", "B"]);
        // The next membership change still goes through the runtime API.
        let loaded = lb.load(&app(vec![server(b, 22, "")])).await;
        assert!(
            matches!(loaded, Loaded::Runtime(Applied { removed: 1, .. })),
            "{loaded:?}, {}",
            lb.reason()
        );
        assert_eq!(lb.bodies(4).await, ["B"]);
        lb.ctl.stop().await;
    });
}

#[test]
fn a_bad_server_value_is_refused_before_the_write() {
    let _one = serial();
    rt().block_on(async {
        let (a, b) = (backend("A"), backend("B"));
        let mut lb = Lb::new();
        let good = app(vec![server(a, 11, "")]);
        assert_eq!(lb.load(&good).await, Loaded::Started);
        let on_disk = std::fs::read_to_string(lb.ctl.config()).unwrap();
        let bad = Rendered {
            config: config(
                lb.dir.path(),
                lb.port,
                &app(vec![server(a, 11, ""), server(b, 22, " check inter abc")]),
            ),
            ..Rendered::default()
        };
        let settings = RenderSettings::default();
        let refused = lb.ctl.write(&bad, &[], &mut lb.renderer, &settings);
        let Err(mlb_haproxy::apply::ApplyError::Invalid { output }) = refused else {
            panic!("haproxy -c should refuse it: {refused:?}");
        };
        assert!(output.contains("inter"), "{output}");
        assert_eq!(lb.ctl.runtime_checks(), (1, 0), "a new value is checked");
        assert_eq!(std::fs::read_to_string(lb.ctl.config()).unwrap(), on_disk);
        assert_eq!(lb.bodies(3).await, ["A"]);
        lb.ctl.stop().await;
    });
}

#[test]
fn a_server_line_shaped_like_a_running_one_skips_haproxy_c() {
    let _one = serial();
    rt().block_on(async {
        let (a, b, c) = (backend("A"), backend("B"), backend("C"));
        let mut lb = Lb::new();
        assert_eq!(
            lb.load(&app(vec![server(a, 11, "")])).await,
            Loaded::Started
        );
        // B differs from A only in name, address and id: no check, and
        // the whole change is one exchange with the master CLI.
        let with_b = app(vec![server(a, 11, ""), server(b, 22, "")]);
        let Loaded::Runtime(applied) = lb.load(&with_b).await else {
            panic!("runtime update expected, reason {}", lb.reason());
        };
        assert_eq!((applied.added, applied.round_trips), (1, 1));
        assert_eq!(lb.ctl.runtime_checks(), (0, 1), "(excerpt checks, skipped)");
        assert_eq!(lb.bodies(6).await, ["A", "B"]);
        // A removed server named nowhere else: no check either.
        let Loaded::Runtime(_) = lb.load(&app(vec![server(b, 22, "")])).await else {
            panic!("runtime update expected, reason {}", lb.reason());
        };
        assert_eq!(lb.ctl.runtime_checks(), (0, 2));
        // C brings keywords B does not have: checked.
        let with_c = app(vec![server(b, 22, ""), server(c, 33, " check inter 1s")]);
        let Loaded::Runtime(applied) = lb.load(&with_c).await else {
            panic!("runtime update expected, reason {}", lb.reason());
        };
        assert_eq!(applied.added, 1);
        assert_eq!(lb.ctl.runtime_checks(), (1, 2));
        // Each runtime write was renamed into place unsynced and synced
        // once loaded, unless the next one superseded it first.
        let (synced, superseded) = lb.ctl.runtime_writes_synced();
        assert_eq!((synced + superseded, synced >= 1), (3, true));
        assert_eq!(lb.bodies(6).await, ["B", "C"]);
        let on_disk = std::fs::read_to_string(lb.ctl.config()).unwrap();
        assert_eq!(on_disk, config(lb.dir.path(), lb.port, &with_c));
        // A runtime change written but never loaded is synced all the same
        // when the next write comes.
        let only_c = app(vec![server(c, 33, " check inter 1s")]);
        let rendered = Rendered {
            config: config(lb.dir.path(), lb.port, &only_c),
            ..Rendered::default()
        };
        let settings = RenderSettings::default();
        let written = lb.ctl.write(&rendered, &[], &mut lb.renderer, &settings);
        assert_eq!(written.unwrap(), Outcome::Written);
        let Loaded::Runtime(_) = lb.load(&only_c).await else {
            panic!("runtime update expected, reason {}", lb.reason());
        };
        let (synced, superseded) = lb.ctl.runtime_writes_synced();
        assert_eq!(synced + superseded, 5);
        lb.ctl.stop().await;
    });
}
