//! Real traffic through a config made by a plugin chain: a Traefik-labelled
//! app reached through HAProxy 2.6 by its vhost, with the chaos fixture's
//! response-header snippet on it, and a vhost denied by the domain policy
//! answered by HAProxy's 503.

use crate::support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mlb_plugin_tests::example;
use serde_json::json;
use support::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP backend on loopback that answers every request with `body`.
fn backend(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    port
}

fn get(port: u16, host: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /posts/1 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_plugin_made_route_serves_traffic() {
    let upstream = backend("hello from blog");
    let (http, https, appid, service) = (free_port(), free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let mut set = plugins(&[
        spec(&example("mlb_example_traefik_labels"), ""),
        spec(&example("mlb_test_chaos"), ""),
        spec(
            &example("mlb_example_policy_vhost_domains"),
            ",group.external=example.com",
        ),
    ]);
    let head = format!(
        "global\n  maxconn 100\n  stats socket {}/s.sock expose-fd listeners\ndefaults\n  mode http\n  \
         timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n",
        dir.path().display()
    );
    let front = |name: &str, port: u16| {
        format!("\nfrontend {name}\n  bind 127.0.0.1:{port}\n  mode http\n")
    };
    let (http_head, https_head, appid_head) = (
        front("marathon_http_in", http),
        front("marathon_https_in", https),
        front("marathon_http_appid_in", appid),
    );
    let mut r = renderer(
        &set,
        &[
            ("HEAD", head.as_str()),
            ("HTTP_FRONTEND_HEAD", http_head.as_str()),
            ("HTTPS_FRONTEND_HEAD", https_head.as_str()),
            ("HTTP_FRONTEND_APPID_HEAD", appid_head.as_str()),
            (
                "FRONTEND_HEAD",
                "\nfrontend {backend}\n  bind 127.0.0.1:{servicePort}\n  mode {mode}\n",
            ),
        ],
    );
    let apps = vec![
        json!({
            "id": "/blog",
            "labels": {
                "traefik.frontend.rule": "Host:blog.example.com;PathPrefix:/posts",
                "CHAOS": "snippet"
            },
            "ports": [service],
            "portDefinitions": [{"port": service}],
            "tasks": [{"id": "blog.1", "host": "127.0.0.1", "state": "TASK_RUNNING", "ports": [upstream]}]
        }),
        app(
            "/rogue",
            free_port(),
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "rogue.test"}),
            1,
        ),
    ];
    let g = run(&mut set, &mut r, &doc(&apps));
    assert!(
        has_diagnostic(&g, "/rogue", "denied by policy"),
        "{}",
        diagnostics(&g)
    );
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, &g.rendered.config).unwrap();

    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdout(Stdio::null())
        .spawn()
        .expect("haproxy runs");
    let _guard = Haproxy(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", http)).is_err() {
        assert!(
            Instant::now() < deadline,
            "haproxy did not start:\n{}",
            g.rendered.config
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let ok = get(http, "blog.example.com");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("hello from blog"), "{ok}");
    assert!(
        ok.to_ascii_lowercase().contains("x-chaos: yes"),
        "snippet header missing: {ok}"
    );
    let denied = get(http, "rogue.test");
    assert!(denied.starts_with("HTTP/1.1 503"), "{denied}");
    // The service port reaches the same backend.
    let direct = get(service, "anything");
    assert!(direct.contains("hello from blog"), "{direct}");
}
