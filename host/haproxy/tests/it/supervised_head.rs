//! Supervised mode with a HEAD of one's own: every HTTP-mode frontend and listen section — including
//! those the custom HEAD writes without a `mode` line, in HTTP mode by its `defaults` — gets
//! [`mlb_haproxy::SUPERVISED_GLOBAL_OPTIONS`], and the real HAProxy accepts each of them as an HTTP-mode
//! option (it warns "'option idle-close-on-response' ignored for frontend 'x' as it requires HTTP mode"
//! for any put where it does not apply: the control case shows the check sees that).

use std::process::Command;

use mlb_core::{RenderSettings, TemplateSources, Templates, render};
use mlb_model::{Server, Service};

/// `haproxy -c` on `config`: (valid, stderr).
fn check(dir: &std::path::Path, config: &str) -> (bool, String) {
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).expect("write config");
    let out = Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .expect("haproxy runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn service(port: i64, vhost: Option<&str>) -> Service {
    let mode = if vhost.is_some() { "http" } else { "tcp" };
    Service {
        app_id: format!("/app{port}"),
        backend: format!("app{port}_{port}"),
        service_port: port,
        mode: mode.into(),
        balance: "roundrobin".into(),
        hostname: vhost.map(str::to_owned),
        bind_addr: "127.0.0.1".into(),
        servers: vec![Server {
            host: "127.0.0.1".into(),
            ip: "127.0.0.1".into(),
            port: 31000,
            name: "127_0_0_1_31000".into(),
            id: 1,
            ..Server::default()
        }],
        ..Service::default()
    }
}

#[test]
fn a_custom_head_keeps_supervised_reloads_seamless() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("socket");
    // The HEAD a user might write: HTTP mode in `defaults`, its own sections without a `mode` line
    // (`haproxy -c` binds nothing: the ports need not be free).
    let head = format!(
        "global\n  stats socket {} expose-fd listeners\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         listen health\n  bind 127.0.0.1:19091\n  monitor-uri /_health\n\
         frontend api\n  bind 127.0.0.1:19092\n  default_backend api\n\
         backend api\n  server a 127.0.0.1:31001\n",
        socket.display()
    );
    let mut sources = TemplateSources::default();
    sources.env.insert("HEAD".into(), head);
    let templates = Templates::resolve(&sources).expect("templates");
    let settings = RenderSettings {
        // No :80/:443 frontends (their certificate is not on this host).
        bind_http_https: false,
        http_frontend_options: mlb_haproxy::SUPERVISED_GLOBAL_OPTIONS
            .iter()
            .map(|o| (*o).to_owned())
            .collect(),
        ..RenderSettings::default()
    };
    let services = [service(10001, Some("web.test")), service(10002, None)];
    let rendered = render(&services, &settings, templates);
    let config = &rendered.config;
    for section in ["listen health\n", "frontend api\n"] {
        assert!(
            config.contains(&format!("{section}  option idle-close-on-response\n")),
            "{section:?} lacks the option:\n{config}"
        );
    }
    assert!(
        rendered
            .diagnostics
            .iter()
            .any(|d| d.label.as_deref() == Some("HAPROXY_HEAD")),
        "the addition is reported once: {:?}",
        rendered.diagnostics
    );

    let (valid, stderr) = check(dir.path(), config);
    assert!(valid, "{stderr}\n{config}");
    assert!(
        !stderr.contains("idle-close-on-response"),
        "HAProxy applies the option in every section it was added to:\n{stderr}\n{config}"
    );

    // Control: the same option in a TCP-mode section is what HAProxy warns about.
    let tcp = config.replacen("listen health\n", "listen health\n  mode tcp\n", 1);
    let (valid, stderr) = check(dir.path(), &tcp);
    assert!(valid, "{stderr}");
    assert!(
        stderr.contains("'option idle-close-on-response' ignored for proxy 'health'")
            || stderr.contains("'option idle-close-on-response' ignored for frontend 'health'"),
        "{stderr}"
    );
}
