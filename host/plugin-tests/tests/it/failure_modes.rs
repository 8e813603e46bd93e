//! Every way a label plugin can fail, with the chaos fixture
//! (`plugins/examples/fixtures/chaos`): the host survives, the offending
//! app is isolated, and every other app's output is byte-identical.

use crate::support;

use mlb_plugin_tests::example;
use serde_json::{Value, json};
use support::*;

const CHAOS_APP: &str = "/team/chaos";

fn chaos_app(mode: Option<&str>, tasks: u16) -> Value {
    let mut labels = json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "chaos.example.com"});
    if let Some(mode) = mode {
        labels["CHAOS"] = json!(mode);
    }
    app(CHAOS_APP, 10099, labels, tasks)
}

fn with_chaos(mode: Option<&str>) -> Vec<u8> {
    let mut apps = ordinary_apps();
    apps.push(chaos_app(mode, 2));
    doc(&apps)
}

/// The config with the chaos plugin in the chain but no misbehaviour.
fn baseline(extra: &str) -> String {
    let mut set = plugins(&[spec(&example("mlb_test_chaos"), extra)]);
    let mut r = renderer(&set, &[]);
    run(&mut set, &mut r, &with_chaos(None)).rendered.config
}

/// `mode` makes the plugin fail on one app: the generation still succeeds,
/// the config equals the healthy one (the app keeps the services that
/// reached the plugin), and the failure is reported against that app.
fn isolates(mode: &str, extra: &str, needle: &str) {
    let chaos = spec(&example("mlb_test_chaos"), extra);
    let mut set = plugins(&[chaos]);
    let mut r = renderer(&set, &[]);
    let g = run(&mut set, &mut r, &with_chaos(Some(mode)));
    assert_eq!(g.rendered.config, baseline(extra), "{mode}: config differs");
    assert!(
        has_diagnostic(&g, CHAOS_APP, needle),
        "{mode}: no diagnostic with '{needle}' for {CHAOS_APP}:\n{}",
        diagnostics(&g)
    );
    assert!(
        g.plugin_failures.iter().any(|p| p == "mlb_test_chaos"),
        "{mode}: failure not counted"
    );
    // No other app is blamed.
    assert!(
        !g.diagnostics
            .iter()
            .any(|d| d.app_id.starts_with("/fleet/") && d.message.contains("failed")),
        "{mode}: another app blamed:\n{}",
        diagnostics(&g)
    );
}

#[test]
fn a_panic_costs_only_its_app() {
    isolates("panic", "", "chaos: panic for /team/chaos");
}

#[test]
fn an_endless_loop_hits_the_deadline_and_costs_only_its_app() {
    isolates("loop", ",timeout-ms=300", "timed out");
}

#[test]
fn a_memory_blow_up_hits_the_cap_and_costs_only_its_app() {
    isolates("oom", ",memory-mib=48", "trapped");
}

#[test]
fn a_returned_error_costs_only_its_app() {
    isolates("error", "", "chaos: error for /team/chaos");
}

/// Output that names an app outside the batch or carries an invalid name
/// or a section-opening snippet is refused alone; the plugin did not fail.
#[test]
fn invalid_output_is_refused_service_by_service() {
    for (mode, needle) in [
        ("unknown-app", "not among the apps it was given"),
        ("bad-name", "is not a valid HAProxy name"),
    ] {
        let mut set = plugins(&[spec(&example("mlb_test_chaos"), "")]);
        let mut r = renderer(&set, &[]);
        let g = run(&mut set, &mut r, &with_chaos(Some(mode)));
        assert_eq!(g.rendered.config, baseline(""), "{mode}");
        assert!(g.plugin_failures.is_empty(), "{mode}");
        let blamed = if mode == "unknown-app" {
            "/no-such-app"
        } else {
            CHAOS_APP
        };
        assert!(
            has_diagnostic(&g, blamed, needle),
            "{mode}:\n{}",
            diagnostics(&g)
        );
    }
    // A snippet that would open a section: the app's services are refused,
    // everything else is as without the app.
    let mut set = plugins(&[spec(&example("mlb_test_chaos"), "")]);
    let mut r = renderer(&set, &[]);
    let g = run(&mut set, &mut r, &with_chaos(Some("bad-snippet")));
    assert!(has_diagnostic(
        &g,
        CHAOS_APP,
        "would open a new 'backend' section"
    ));
    assert!(!g.rendered.config.contains("evil"));
    let mut set = plugins(&[spec(&example("mlb_test_chaos"), "")]);
    let mut r = renderer(&set, &[]);
    let without = run(&mut set, &mut r, &doc(&ordinary_apps()))
        .rendered
        .config;
    assert_eq!(g.rendered.config, without);
}

/// An app that made the plugin fail keeps the plugin's last good output
/// for it (old servers, the plugin's snippet) while everything else moves
/// on, and is not sent to the plugin again during its quarantine.
#[test]
fn a_failing_app_keeps_its_last_good_output_and_is_quarantined() {
    let mut set = plugins(&[spec(&example("mlb_test_chaos"), "")]);
    let mut r = renderer(&set, &[]);
    let mut apps = ordinary_apps();
    apps.push(chaos_app(Some("snippet"), 1));
    let first = run(&mut set, &mut r, &doc(&apps));
    assert!(
        first
            .rendered
            .config
            .contains("  http-response set-header X-Chaos yes\n")
    );
    assert!(first.plugin_failures.is_empty());

    // Now the app has three tasks and makes the plugin panic; another app
    // scales too.
    let mut apps = ordinary_apps();
    apps[1] = app(
        "/fleet/app01",
        10101,
        json!({"HAPROXY_GROUP": "external"}),
        3,
    );
    apps.push(chaos_app(Some("snippet,panic"), 3));
    let second = run(&mut set, &mut r, &doc(&apps));
    let chaos_backend = |cfg: &str| -> String {
        cfg.split("\nbackend ")
            .find(|s| s.starts_with("team_chaos_10099"))
            .expect("chaos backend present")
            .to_owned()
    };
    assert_eq!(
        chaos_backend(&second.rendered.config),
        chaos_backend(&first.rendered.config),
        "the failing app must keep its last good output"
    );
    assert_eq!(
        second.rendered.config.matches("server 127_0_0_1_").count(),
        first.rendered.config.matches("server 127_0_0_1_").count() + 1,
        "the healthy app's new task must appear"
    );
    assert!(has_diagnostic(
        &second,
        CHAOS_APP,
        "keeping its last good output"
    ));

    let third = run(&mut set, &mut r, &doc(&apps));
    assert!(
        third.plugin_failures.is_empty(),
        "quarantined app was sent again"
    );
    assert!(
        has_diagnostic(&third, CHAOS_APP, "not sent to label plugin mlb_test_chaos"),
        "{}",
        diagnostics(&third)
    );
    assert_eq!(third.rendered.config, second.rendered.config);
}

/// A plugin that fails without any app (here: it refuses its
/// configuration) is refused at start-up; should one start failing on
/// every batch at run time, it is backed off as a whole, not hammered, and
/// every app keeps what reached the plugin.
#[test]
fn a_plugin_broken_for_every_batch_is_backed_off() {
    let bad = spec(&example("mlb_test_chaos"), ",unknown-key=1");
    let err = mlb_plugin_host::load_set(runtime(), std::slice::from_ref(&bad))
        .expect_err("refused at start-up");
    assert!(err.to_string().contains("fails on an empty batch"), "{err}");
    let mut set = plugins_unchecked(&[bad]);
    let mut r = renderer(&set, &[]);
    let body = with_chaos(None);
    let first = run(&mut set, &mut r, &body);
    assert_eq!(
        first.plugin_failures.len(),
        2,
        "the batch and the empty probe"
    );
    assert!(
        has_diagnostic(&first, "", "fails even without apps"),
        "{}",
        diagnostics(&first)
    );
    assert_eq!(first.rendered.config, baseline(""));
    let second = run(&mut set, &mut r, &body);
    assert!(
        second.plugin_failures.is_empty(),
        "called again while backed off"
    );
    assert!(has_diagnostic(&second, "", "is backed off"));
    assert_eq!(second.rendered.config, baseline(""));
}

/// Snippets land in the service's own frontend and backend, and plugin
/// variables reach that service's templates (here a per-app label).
#[test]
fn snippets_and_variables_stay_in_their_service() {
    let mut set = plugins(&[spec(&example("mlb_test_chaos"), "")]);
    let mut r = renderer(&set, &[]);
    let mut apps = ordinary_apps();
    let mut chaos = chaos_app(Some("snippet,var"), 1);
    chaos["labels"]["HAPROXY_0_BACKEND_HEAD"] =
        json!("\nbackend {backend}\n  balance {balance}\n  mode {mode}\n  # note {chaos_note}\n");
    apps.push(chaos);
    let g = run(&mut set, &mut r, &doc(&apps));
    let cfg = &g.rendered.config;
    let backend = cfg
        .split("\nbackend ")
        .find(|s| s.starts_with("team_chaos_10099"))
        .expect("backend");
    assert!(backend.contains("  # note hello\n"), "{backend}");
    assert!(
        backend.contains("  http-response set-header X-Chaos yes\n"),
        "{backend}"
    );
    let frontend = cfg
        .split("\nfrontend ")
        .find(|s| s.starts_with("team_chaos_10099"))
        .expect("frontend");
    assert!(
        frontend.contains(
            "  http-request set-header X-Chaos-Front yes\n  use_backend team_chaos_10099\n"
        ),
        "{frontend}"
    );
    assert_eq!(
        cfg.matches("X-Chaos").count(),
        2,
        "snippets appear once each"
    );
}

/// Blue/green services (merged by the default rules under the deployment
/// group's id) pass through custom label plugins and policies like any
/// other: the golden deployment-groups case renders byte-identically with a
/// pass-through plugin and an allow-all policy in the chain.
#[test]
fn blue_green_services_survive_the_chain() {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/golden/deployment-groups.json"
    ))
    .unwrap();
    let expected = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/golden/deployment-groups.expected.cfg"
    ))
    .unwrap();
    let mut set = plugins(&[
        spec(&example("mlb_test_chaos"), ""),
        spec(
            &example("mlb_example_policy_template_prefixes"),
            ",prefixes=/",
        ),
    ]);
    let mut r = renderer(&set, &[]);
    let g = run(&mut set, &mut r, &body);
    assert!(g.denied.is_empty(), "{}", diagnostics(&g));
    assert_eq!(g.rendered.config, expected, "{}", diagnostics(&g));
}
