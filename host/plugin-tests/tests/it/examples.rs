//! Each example plugin in a chain with the default rules, through to the
//! rendered config (and `haproxy -c` where HAProxy is involved).

use crate::support;

use mlb_plugin_host::{PluginError, load_set};
use mlb_plugin_tests::{example, python_policy};
use serde_json::json;
use support::*;

fn backend<'a>(cfg: &'a str, name: &str) -> &'a str {
    cfg.split("\nbackend ")
        .find(|s| s.starts_with(name))
        .unwrap_or_else(|| panic!("no backend {name} in\n{cfg}"))
}

#[test]
fn traefik_labels_become_services_beside_the_default_ones() {
    let mut set = plugins(&[spec(&example("mlb_example_traefik_labels"), "")]);
    let mut r = renderer(&set, &[]);
    let mut apps = ordinary_apps();
    apps.push(app(
        "/blog",
        10050,
        json!({
            "traefik.enable": "true",
            "traefik.frontend.rule": "Host:Blog.Example.com,www.blog.example.com;PathPrefix:/posts",
            "traefik.port": "8080",
            "traefik.backend.loadbalancer.method": "leastconn"
        }),
        2,
    ));
    apps.push(app(
        "/broken",
        10051,
        json!({"traefik.frontend.rule": "Method:GET"}),
        1,
    ));
    let g = run(&mut set, &mut r, &doc(&apps));
    let cfg = &g.rendered.config;
    let b = backend(cfg, "traefik_blog_10050");
    assert!(b.contains("balance leastconn"), "{b}");
    assert!(b.contains("server 127_0_0_1_8080 127.0.0.1:8080"), "{b}");
    assert!(
        cfg.contains("acl host_blog_example_com_blog hdr(host) -i www.blog.example.com"),
        "{cfg}"
    );
    assert!(cfg.contains("path_beg /posts"), "{cfg}");
    assert!(
        has_diagnostic(&g, "/broken", "Method"),
        "{}",
        diagnostics(&g)
    );
    // The default rules' services are untouched.
    let mut plain = plugins(&[]);
    let mut r2 = renderer(&plain, &[]);
    let without = run(&mut plain, &mut r2, &doc(&ordinary_apps()))
        .rendered
        .config;
    for line in without.lines().filter(|l| l.starts_with("backend ")) {
        assert!(cfg.contains(line), "{line} missing");
    }
}

#[test]
fn filters_work_in_global_overrides_and_per_app_labels() {
    let set_specs = [spec(&example("mlb_example_text_filters"), ",suffix=-blue")];
    let mut set = plugins(&set_specs);
    let mut r = renderer(
        &set,
        &[(
            "BACKEND_HEAD",
            "\nbackend {backend}\n  balance {balance}\n  mode {mode}\n  # {backend|slug|truncate(9)}\n",
        )],
    );
    let mut apps = ordinary_apps();
    apps.push(app(
        "/shop/Web",
        10060,
        json!({
            "HAPROXY_GROUP": "external",
            "HAPROXY_0_FRONTEND_HEAD": "\nfrontend {backend}\n  bind {bindAddr}:{servicePort}{sslCert}{bindOptions}\n  mode {mode}\n  # {backend|suffix}\n"
        }),
        1,
    ));
    apps.push(app(
        "/typo",
        10061,
        json!({"HAPROXY_GROUP": "external", "HAPROXY_0_BACKEND_HEAD": "\nbackend {backend|nosuch}\n"}),
        1,
    ));
    let g = run(&mut set, &mut r, &doc(&apps));
    let cfg = &g.rendered.config;
    assert!(
        cfg.contains(
            "backend fleet_app00_10100\n  balance roundrobin\n  mode http\n  # fleet-app\n"
        ),
        "{cfg}"
    );
    assert!(cfg.contains("  # shop_Web_10060-blue\n"), "{cfg}");
    assert!(!cfg.contains("typo"), "{cfg}");
    assert!(
        has_diagnostic(&g, "/typo", "unknown filter 'nosuch'"),
        "{}",
        diagnostics(&g)
    );
}

#[test]
fn a_filter_plugin_that_refuses_its_configuration_is_refused_at_start_up() {
    let err = load_set(
        runtime(),
        &[spec(&example("mlb_example_text_filters"), ",colour=red")],
    )
    .expect_err("unknown key");
    assert!(matches!(err, PluginError::Load { .. }), "{err}");
    assert!(
        err.to_string().contains("refused its configuration"),
        "{err}"
    );
}

#[test]
fn vhosts_outside_the_groups_domains_are_denied() {
    let mut set = plugins(&[spec(
        &example("mlb_example_policy_vhost_domains"),
        ",group.external=example.com",
    )]);
    let mut r = renderer(&set, &[]);
    let mut apps = ordinary_apps();
    apps.push(app(
        "/rogue",
        10070,
        json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "login.bank.test"}),
        1,
    ));
    let g = run(&mut set, &mut r, &doc(&apps));
    assert!(!g.rendered.config.contains("rogue"));
    assert!(g.rendered.config.contains("app0.example.com"));
    assert_eq!(
        g.denied,
        vec![(
            "mlb_example_policy_vhost_domains".to_owned(),
            "rogue_10070".to_owned()
        )]
    );
    assert!(has_diagnostic(
        &g,
        "/rogue",
        "login.bank.test is not under a domain allowed"
    ));
}

#[test]
fn template_overrides_only_for_allowed_prefixes() {
    let mut set = plugins(&[spec(
        &example("mlb_example_policy_template_prefixes"),
        ",prefixes=/platform/",
    )]);
    let mut r = renderer(&set, &[]);
    let head = "\nbackend {backend}\n  balance {balance}\n  mode {mode}\n  # custom\n";
    let mut apps = ordinary_apps();
    apps.push(app(
        "/platform/edge",
        10080,
        json!({"HAPROXY_GROUP": "external", "HAPROXY_0_BACKEND_HEAD": head}),
        1,
    ));
    apps.push(app(
        "/team-b/api",
        10081,
        json!({"HAPROXY_GROUP": "external", "HAPROXY_0_BACKEND_HEAD": head}),
        1,
    ));
    let g = run(&mut set, &mut r, &doc(&apps));
    let cfg = &g.rendered.config;
    assert!(backend(cfg, "platform_edge_10080").contains("# custom"));
    assert!(!cfg.contains("team-b_api"), "{cfg}");
    assert!(
        has_diagnostic(&g, "/team-b/api", "/platform/"),
        "{}",
        diagnostics(&g)
    );
    assert_eq!(g.denied.len(), 1);
}

fn python(extra: &str) -> mlb_plugin_host::PluginSpec {
    spec(&python_policy(), extra)
}

#[test]
fn the_python_policy_needs_stubs_and_then_denies_ownerless_apps() {
    let err = load_set(runtime(), &[python("")]).expect_err("imports clocks etc.");
    assert!(matches!(err, PluginError::Capability { .. }), "{err}");
    let mut set = plugins(&[python(",stub=files,clock,network,owners=team-a,team-b")]);
    let mut r = renderer(&set, &[]);
    let apps = vec![
        app(
            "/a",
            10090,
            json!({"HAPROXY_GROUP": "external", "OWNER": "team-a"}),
            1,
        ),
        app(
            "/b",
            10091,
            json!({"HAPROXY_GROUP": "external", "OWNER": "bob"}),
            1,
        ),
        app("/c", 10092, json!({"HAPROXY_GROUP": "external"}), 1),
    ];
    let g = run(&mut set, &mut r, &doc(&apps));
    let cfg = &g.rendered.config;
    assert!(cfg.contains("backend a_10090"));
    assert!(
        !cfg.contains("backend b_10091") && !cfg.contains("backend c_10092"),
        "{cfg}"
    );
    assert!(
        has_diagnostic(&g, "/b", "owner 'bob' is not one of team-a, team-b"),
        "{}",
        diagnostics(&g)
    );
    assert!(
        has_diagnostic(&g, "/c", "has no OWNER label"),
        "{}",
        diagnostics(&g)
    );
}

/// A policy that cannot review fails closed: nothing it did not approve
/// is served. (A configuration it refuses is caught at start-up.)
#[test]
fn a_failing_policy_fails_closed() {
    let bad = python(",stub=files,clock,network,colour=red");
    let err = load_set(runtime(), std::slice::from_ref(&bad)).expect_err("refused");
    assert!(
        err.to_string().contains("unknown config key 'colour'"),
        "{err}"
    );
    let mut set = plugins_unchecked(&[bad]);
    let mut r = renderer(&set, &[]);
    let g = run(&mut set, &mut r, &doc(&ordinary_apps()));
    assert!(
        !g.rendered.config.contains("\nbackend "),
        "{}",
        g.rendered.config
    );
    assert_eq!(g.plugin_failures.len(), 2, "the batch and the empty probe");
    assert!(
        has_diagnostic(&g, "", "fails even without services"),
        "{}",
        diagnostics(&g)
    );
}

/// The whole chain at once, validated by HAProxy itself.
#[test]
fn a_config_from_every_example_passes_haproxy_check() {
    let mut set = plugins(&[
        spec(&example("mlb_example_traefik_labels"), ""),
        spec(&example("mlb_test_chaos"), ""),
        spec(&example("mlb_example_text_filters"), ",suffix=x"),
        spec(
            &example("mlb_example_policy_vhost_domains"),
            ",group.external=example.com",
        ),
        spec(
            &example("mlb_example_policy_template_prefixes"),
            ",prefixes=/fleet/",
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let head = format!(
        "global\n  maxconn 100\n  stats socket {}/s.sock expose-fd listeners\ndefaults\n  mode http\n  \
         timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n",
        dir.path().display()
    );
    let https = "\nfrontend marathon_https_in\n  bind 127.0.0.1:18443\n  mode http\n";
    let mut r = renderer(
        &set,
        &[
            ("HEAD", head.as_str()),
            ("HTTPS_FRONTEND_HEAD", https),
            (
                "BACKEND_HEAD",
                "\nbackend {backend}\n  balance {balance}\n  mode {mode}\n  # {backend|slug}\n",
            ),
        ],
    );
    let mut apps = ordinary_apps();
    apps.push(app(
        "/blog",
        10050,
        json!({"traefik.frontend.rule": "Host:blog.example.com", "CHAOS": "snippet"}),
        1,
    ));
    let g = run(&mut set, &mut r, &doc(&apps));
    let cfg = dir.path().join("haproxy.cfg");
    mlb_haproxy::apply::check(&cfg, &g.rendered, false)
        .unwrap_or_else(|e| panic!("haproxy -c refused the config: {e}\n{}", g.rendered.config));
    assert!(g.rendered.config.contains("X-Chaos"));
    assert!(g.rendered.config.contains("traefik_blog_10050"));
}

/// A filter failing in a once-per-config template would leave a config
/// that parses but routes wrongly: the generation fails instead and the
/// running config stays.
#[test]
fn a_filter_failing_in_a_global_template_fails_the_generation() {
    let set = plugins(&[spec(&example("mlb_example_text_filters"), ",suffix=x")]);
    let mut r = renderer(
        &set,
        &[(
            "HTTPS_FRONTEND_HEAD",
            "\nfrontend marathon_https_in\n  bind *:443 ssl {sslCerts|truncate}\n  mode http\n",
        )],
    );
    let mut set = set;
    let err = marathon_lb::pipeline::generate(
        &doc(&ordinary_apps()),
        &mut marathon_lb::resolve::Resolver::new(4),
        &mut set,
        &mut r,
        &mlb_model::InterpretOptions {
            groups: vec!["external".into()],
            ..Default::default()
        },
        &mlb_core::RenderSettings::default(),
    )
    .expect_err("fatal");
    let m = err.to_string();
    assert!(
        m.contains("HAPROXY_HTTPS_FRONTEND_HEAD") && m.contains("truncate"),
        "{m}"
    );
    assert!(m.contains("nothing is written"), "{m}");
}
