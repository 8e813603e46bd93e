use mlb_model::{Server, Service};

use super::*;

fn service(app: &str, port: i64, vhost: Option<&str>) -> Service {
    Service {
        app_id: app.into(),
        backend: format!("{}_{port}", app[1..].replace('/', "_")),
        service_port: port,
        mode: if vhost.is_some() { "http" } else { "tcp" }.into(),
        balance: "roundrobin".into(),
        hostname: vhost.map(str::to_owned),
        bind_addr: "*".into(),
        servers: vec![Server {
            host: "10.0.0.1".into(),
            ip: "10.0.0.1".into(),
            port: 31000,
            name: "10_0_0_1_31000".into(),
            id: 1,
            ..Server::default()
        }],
        ..Service::default()
    }
}

#[test]
fn output_is_sorted_and_order_independent() {
    let a = service("/b", 10001, Some("b.test"));
    let b = service("/a", 10000, None);
    let one = render(
        &[a.clone(), b.clone()],
        &RenderSettings::default(),
        Templates::defaults(),
    );
    let two = render(&[b, a], &RenderSettings::default(), Templates::defaults());
    assert_eq!(one, two);
    assert_eq!(*one.backends, ["a_10000", "b_10001"]);
    assert!(
        one.config
            .contains("frontend a_10000\n  bind *:10000\n  mode tcp\n  use_backend a_10000\n")
    );
}

#[test]
fn bad_label_template_costs_only_its_service() {
    let mut bad = service("/bad", 10002, Some("bad.test"));
    bad.templates = vec![("BACKEND_HEAD".into(), "\nbackend {nope}\n".into())];
    let good = service("/good", 10003, Some("good.test"));
    let out = render(
        &[bad, good],
        &RenderSettings::default(),
        Templates::defaults(),
    );
    assert!(!out.config.contains("bad"), "{}", out.config);
    assert!(out.config.contains("backend good_10003"));
    assert_eq!(out.diagnostics.len(), 1);
    assert_eq!(
        out.diagnostics[0].label.as_deref(),
        Some("HAPROXY_0_BACKEND_HEAD")
    );
}

#[test]
fn map_mode_dedupes_and_first_user_sorts_last() {
    let settings = RenderSettings {
        haproxy_map: true,
        ..RenderSettings::default()
    };
    let a = service("/a", 10000, Some("x.test"));
    let b = service("/b", 10001, Some("x.test"));
    let out = render(&[a, b], &settings, Templates::defaults());
    assert_eq!(out.domain_map, "x.test a_10000\nx.test b_10001\n");
    assert_eq!(out.app_map, "/a a_10000\n/b b_10001\n");
    assert_eq!(
        out.config
            .matches("map(/etc/haproxy/domain2backend.map)")
            .count(),
        2
    );
}

fn with_backend_head(text: &str) -> Templates {
    let mut sources = crate::TemplateSources::default();
    sources.env.insert("BACKEND_HEAD".into(), text.into());
    Templates::resolve(&sources).unwrap()
}

#[test]
fn a_broken_global_template_is_fatal() {
    let out = render(
        &[service("/a", 10000, None)],
        &RenderSettings::default(),
        with_backend_head("\nbackend {backend}\n  # {nope}\n"),
    );
    let fatal = out.fatal.expect("fatal");
    assert!(
        fatal.contains("HAPROXY_BACKEND_HEAD") && fatal.contains("nope"),
        "{fatal}"
    );
}

#[test]
fn a_global_template_using_a_plugin_variable_costs_only_services_without_it() {
    let mut tagged = service("/tagged", 10000, None);
    tagged.vars = vec![("team".into(), "blue".into())];
    let plain = service("/plain", 10001, None);
    let out = render(
        &[tagged, plain],
        &RenderSettings::default(),
        with_backend_head("\nbackend {backend}\n  # team {team}\n"),
    );
    assert_eq!(out.fatal, None);
    assert!(
        out.config.contains("backend tagged_10000\n  # team blue\n"),
        "{}",
        out.config
    );
    assert!(
        !out.config.contains("backend plain_10001"),
        "{}",
        out.config
    );
    assert_eq!(out.diagnostics.len(), 1);
    assert_eq!(out.diagnostics[0].app_id, "/plain");
}

#[test]
fn http_frontend_options_go_only_into_http_frontends() {
    // `e` has no `mode` line: it is in HTTP mode by its `defaults`.
    let config = "defaults\n  mode http\nfrontend a\n  bind :80\n  mode http\n\nfrontend b\n  mode tcp\nbackend c\n  mode http\nlisten d\n  mode http\n  option idle-close-on-response\nfrontend e\n  bind :1\n";
    let out = super::add_http_frontend_options(config, &["idle-close-on-response".to_owned()]);
    assert_eq!(
        out,
        "defaults\n  mode http\nfrontend a\n  bind :80\n  mode http\n  option idle-close-on-response\n\nfrontend b\n  mode tcp\nbackend c\n  mode http\nlisten d\n  mode http\n  option idle-close-on-response\nfrontend e\n  option idle-close-on-response\n  bind :1\n"
    );
}

#[test]
fn http_mode_is_inherited_from_the_defaults_a_section_uses() {
    let options = ["idle-close-on-response".to_owned(), "x".to_owned()];
    let config = "global\n  daemon\n\
        defaults web\n  mode http\n  option x\n\
        frontend a\n  bind :1\n\
        listen b  # comment\n  mode http   # http\n\
        defaults\n  timeout client 1s\n\
        frontend c\n  bind :2\n\
        frontend d from web\n  bind :3\n\
        defaults tcpish from web\n  mode tcp\n\
        frontend e\n  bind :4\n\
        defaults quiet from web\n  no option idle-close-on-response\n\
        frontend f\n  bind :5\n\
        listen g\n  bind :6";
    let (out, changed) = super::http_options::add(config, &options);
    assert_eq!(
        out,
        "global\n  daemon\n\
        defaults web\n  mode http\n  option x\n\
        frontend a\n  option idle-close-on-response\n  bind :1\n\
        listen b  # comment\n  mode http   # http\n  option idle-close-on-response\n\
        defaults\n  timeout client 1s\n\
        frontend c\n  bind :2\n\
        frontend d from web\n  option idle-close-on-response\n  bind :3\n\
        defaults tcpish from web\n  mode tcp\n\
        frontend e\n  bind :4\n\
        defaults quiet from web\n  no option idle-close-on-response\n\
        frontend f\n  bind :5\n\
        listen g\n  bind :6"
    );
    assert_eq!(changed, 3);
    let (same, none) = super::http_options::add(config, &[]);
    assert_eq!((same.as_str(), none), (config, 0));
}

/// A HEAD of one's own: its `defaults` in HTTP mode and a `listen` without a `mode` line.
fn custom_head_templates() -> Templates {
    let head = "global\n  stats socket /var/run/haproxy/socket expose-fd listeners\n\
        defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
        listen health\n  bind 127.0.0.1:9091\n  monitor-uri /_health\n";
    let mut sources = crate::TemplateSources::default();
    sources.env.insert("HEAD".into(), head.into());
    Templates::resolve(&sources).expect("templates")
}

fn supervised() -> RenderSettings {
    RenderSettings {
        http_frontend_options: vec!["idle-close-on-response".into()],
        ..RenderSettings::default()
    }
}

#[test]
fn a_custom_head_gets_the_supervised_options_and_says_so() {
    let services = [service("/web", 10000, Some("web.test"))];
    let out = render(&services, &supervised(), custom_head_templates());
    assert!(
        out.config
            .contains("listen health\n  option idle-close-on-response\n  bind 127.0.0.1:9091\n"),
        "{}",
        out.config
    );
    assert!(out.config.contains(
        "frontend marathon_http_in\n  bind *:80\n  mode http\n  option idle-close-on-response\n"
    ));
    let notes: Vec<_> = out
        .diagnostics
        .iter()
        .filter(|d| d.label.as_deref() == Some("HAPROXY_HEAD"))
        .collect();
    assert_eq!(notes.len(), 1, "{:?}", out.diagnostics);
    assert_eq!(notes[0].severity, mlb_model::Severity::Info);
    assert_eq!(notes[0].app_id, "");
    assert!(notes[0].message.contains("option idle-close-on-response"));

    // The built-in HEAD (even with other default options) gets the option without the note.
    let sources = crate::TemplateSources {
        global_default_options: Some("redispatch,dontlognull".into()),
        ..Default::default()
    };
    let built_in = Templates::resolve(&sources).expect("templates");
    let out = render(&services, &supervised(), built_in);
    assert!(
        out.config
            .contains("  mode http\n  option idle-close-on-response\n")
    );
    assert!(
        out.diagnostics
            .iter()
            .all(|d| d.label.as_deref() != Some("HAPROXY_HEAD"))
    );

    // Unsupervised: nothing added, no note.
    let out = render(
        &services,
        &RenderSettings::default(),
        custom_head_templates(),
    );
    assert!(!out.config.contains("idle-close-on-response"));
    assert!(out.diagnostics.is_empty());
}
