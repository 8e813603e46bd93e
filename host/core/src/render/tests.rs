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
    assert_eq!(one.backends, vec!["a_10000", "b_10001"]);
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
    let config = "defaults\n  mode http\nfrontend a\n  bind :80\n  mode http\n\nfrontend b\n  mode tcp\nbackend c\n  mode http\nlisten d\n  mode http\n  option idle-close-on-response\nfrontend e\n  bind :1\n";
    let out = super::add_http_frontend_options(config, &["idle-close-on-response".to_owned()]);
    assert_eq!(
        out,
        "defaults\n  mode http\nfrontend a\n  bind :80\n  mode http\n  option idle-close-on-response\n\nfrontend b\n  mode tcp\nbackend c\n  mode http\nlisten d\n  mode http\n  option idle-close-on-response\nfrontend e\n  bind :1\n"
    );
}
