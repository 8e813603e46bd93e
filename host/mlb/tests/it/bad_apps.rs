//! Every class of bad app costs only that app: the config equals the config
//! rendered without it, byte for byte, and a diagnostic names the app and the
//! label at fault.

use mlb_core::render::Renderer;
use mlb_core::{LabelInterpreter, RenderSettings, Templates, normalize_apps};
use mlb_model::{Diagnostic, InterpretOptions, Severity};
use mlb_plugin_host::{PluginLimits, WasmLabelPlugin};
use serde_json::{Value, json};

fn good_apps() -> Vec<Value> {
    vec![
        json!({"id": "/shop/web", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.test"},
               "portDefinitions": [{"port": 10001}],
               "healthChecks": [{"protocol": "HTTP", "path": "/health", "portIndex": 0, "timeoutSeconds": 2,
                                 "intervalSeconds": 5, "gracePeriodSeconds": 10, "maxConsecutiveFailures": 3}],
               "tasks": [{"id": "w1", "host": "10.0.0.1", "ports": [31001]}, {"id": "w2", "host": "10.0.0.2", "ports": [31002]}]}),
        json!({"id": "/db", "labels": {"HAPROXY_GROUP": "external"},
               "portDefinitions": [{"port": 10002}],
               "tasks": [{"id": "d1", "host": "10.0.0.3", "ports": [31003]}]}),
    ]
}

fn bad_app(labels: Value) -> Value {
    let mut l = json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "bad.test"});
    for (k, v) in labels.as_object().unwrap() {
        l[k] = v.clone();
    }
    json!({"id": "/bad", "labels": l,
           "portDefinitions": [{"port": 10003}, {"port": 10004}],
           "healthChecks": [{"protocol": "HTTP", "path": "/", "port": 8080, "timeoutSeconds": 2,
                             "intervalSeconds": 5, "gracePeriodSeconds": 10, "maxConsecutiveFailures": 3}],
           "tasks": [{"id": "b1", "host": "10.0.0.4", "ports": [31004, 31005]}]})
}

fn generate(apps: Vec<Value>) -> (String, Vec<Diagnostic>) {
    let body = json!({ "apps": apps }).to_string();
    let normalized = normalize_apps(body.as_bytes(), |h| Some(h.to_owned())).unwrap();
    let options = InterpretOptions {
        groups: vec!["external".into()],
        ..InterpretOptions::default()
    };
    // One plugin for every case (loading it is most of a case's time).
    static PLUGIN: std::sync::Mutex<Option<WasmLabelPlugin>> = std::sync::Mutex::new(None);
    let mut plugin = PLUGIN.lock().unwrap_or_else(|e| e.into_inner());
    let plugin = plugin
        .get_or_insert_with(|| WasmLabelPlugin::default_plugin(PluginLimits::default()).unwrap());
    let out = plugin.interpret(&normalized.apps, &options).unwrap();
    let rendered =
        Renderer::new(Templates::defaults()).render(&out.services, &RenderSettings::default());
    let mut diagnostics = normalized.diagnostics;
    diagnostics.extend(out.diagnostics);
    diagnostics.extend(rendered.diagnostics);
    (rendered.config, diagnostics)
}

#[test]
fn each_bad_app_class_costs_only_that_app() {
    let (expected, _) = generate(good_apps());
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "malformed AUTH",
            json!({"HAPROXY_0_AUTH": "realm:user-only"}),
            "HAPROXY_0_AUTH",
        ),
        (
            "AUTH with too many parts",
            json!({"HAPROXY_0_AUTH": "r:u:p:x"}),
            "HAPROXY_0_AUTH",
        ),
        (
            "non-integer PORT",
            json!({"HAPROXY_0_PORT": "80a"}),
            "HAPROXY_0_PORT",
        ),
        (
            "non-integer BACKEND_WEIGHT",
            json!({"HAPROXY_0_BACKEND_WEIGHT": "heavy"}),
            "HAPROXY_0_BACKEND_WEIGHT",
        ),
        (
            "non-integer BACKEND_HEALTHCHECK_PORT_INDEX",
            json!({"HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX": "one"}),
            "HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX",
        ),
        (
            "health-check port index equal to the service count (marathon-lb: IndexError)",
            json!({"HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX": "2"}),
            "HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX",
        ),
        (
            "unknown placeholder",
            json!({"HAPROXY_0_BACKEND_HEAD": "\nbackend {backend}\n  balance {nope}\n"}),
            "HAPROXY_0_BACKEND_HEAD",
        ),
        (
            "unclosed placeholder",
            json!({"HAPROXY_0_FRONTEND_HEAD": "\nfrontend {backend\n"}),
            "HAPROXY_0_FRONTEND_HEAD",
        ),
        (
            "newline in VHOST",
            json!({"HAPROXY_0_VHOST": "bad.test\n  use_backend x"}),
            "HAPROXY_0_VHOST",
        ),
        (
            "newline in BIND_OPTIONS",
            json!({"HAPROXY_0_BIND_OPTIONS": "ssl\n  bind :1"}),
            "HAPROXY_0_BIND_OPTIONS",
        ),
        (
            "brace in VHOST",
            json!({"HAPROXY_0_VHOST": "bad.test }"}),
            "HAPROXY_0_VHOST",
        ),
    ];
    for (what, labels, label) in cases {
        let mut apps = good_apps();
        // A second bad port is disabled so only the labelled port matters.
        let mut bad = bad_app(labels);
        if bad["labels"]
            .get("HAPROXY_1_BACKEND_HEALTHCHECK_PORT_INDEX")
            .is_none()
        {
            bad["labels"]["HAPROXY_1_ENABLED"] = json!("false");
        }
        apps.insert(1, bad);
        let (config, diagnostics) = generate(apps);
        assert_eq!(
            config, expected,
            "{what}: other apps changed or the bad app leaked"
        );
        assert!(
            diagnostics.iter().any(|d| d.severity == Severity::Error
                && d.app_id == "/bad"
                && d.label.as_deref() == Some(label)),
            "{what}: no diagnostic naming /bad and {label}: {diagnostics:?}"
        );
    }
}

#[test]
fn missing_keys_cost_only_that_app() {
    let (expected, _) = generate(good_apps());
    for (what, app, label) in [
        ("no labels", json!({"id": "/bad", "tasks": []}), "labels"),
        ("no tasks", json!({"id": "/bad", "labels": {}}), "tasks"),
        (
            "task without host",
            json!({"id": "/bad", "labels": {"HAPROXY_GROUP": "external"}, "portDefinitions": [{"port": 10009}], "tasks": [{"id": "t", "ports": [1]}]}),
            "tasks[].host",
        ),
        (
            "health check without protocol",
            json!({"id": "/bad", "labels": {}, "tasks": [], "healthChecks": [{"portIndex": 0}]}),
            "healthChecks[].protocol",
        ),
        (
            "labels that are not strings",
            json!({"id": "/bad", "labels": {"HAPROXY_GROUP": 7}, "tasks": []}),
            "",
        ),
    ] {
        let mut apps = good_apps();
        apps.push(app);
        let (config, diagnostics) = generate(apps);
        assert_eq!(config, expected, "{what}");
        assert!(
            diagnostics
                .iter()
                .any(|d| d.app_id == "/bad"
                    && (label.is_empty() || d.label.as_deref() == Some(label))),
            "{what}: {diagnostics:?}"
        );
    }
}

/// Issue 15, item 2: every Marathon field outside the labels that reaches
/// the config or the maps (app id, deployment group, health-check fields,
/// task host and IP-per-task address) is checked against the allow-list; a
/// bad value costs only its app (or, for a task's address, only that task)
/// and the diagnostic names the app and the field.
#[test]
fn marathon_fields_outside_the_allow_list_cost_only_their_app() {
    let (expected, _) = generate(good_apps());
    let check = |path: &str| {
        json!([{"protocol": "HTTP", "path": path, "portIndex": 0, "timeoutSeconds": 2,
                "intervalSeconds": 5, "gracePeriodSeconds": 10, "maxConsecutiveFailures": 3}])
    };
    let base = |id: &str| {
        json!({"id": id, "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "bad.test"},
               "portDefinitions": [{"port": 10003}],
               "tasks": [{"id": "b1", "host": "10.0.0.4", "ports": [31004]}]})
    };
    let inject = "\n  http-request deny";
    let mut cases: Vec<(&str, Value, &str, &str)> = Vec::new();
    cases.push((
        "newline in the app id",
        base(&format!("/bad{inject}")),
        "/bad\\n  http-request deny",
        "id",
    ));
    let mut group = base("/bad");
    group["labels"]["HAPROXY_DEPLOYMENT_GROUP"] = json!(format!("g{inject}"));
    cases.push((
        "newline in HAPROXY_DEPLOYMENT_GROUP",
        group,
        "/bad",
        "HAPROXY_DEPLOYMENT_GROUP",
    ));
    let mut hc = base("/bad");
    hc["healthChecks"] = check(&format!("/h{inject}"));
    cases.push((
        "newline in a health-check path",
        hc,
        "/bad",
        "healthChecks[].path",
    ));
    let mut proto = base("/bad");
    proto["healthChecks"] = check("/h");
    proto["healthChecks"][0]["protocol"] = json!("HTTP\u{2028}x");
    cases.push((
        "line separator in a health-check protocol",
        proto,
        "/bad",
        "healthChecks[].protocol",
    ));
    let mut host = base("/bad");
    host["tasks"][0]["host"] = json!(format!("10.0.0.4{inject}"));
    cases.push(("newline in a task host", host, "/bad", "tasks[].host"));
    let mut ippt = base("/bad");
    ippt["ipAddress"] = json!({"discovery": {"ports": [{"number": 8080}]}});
    ippt["tasks"][0]["ipAddresses"] = json!([{"ipAddress": format!("10.1.0.4{inject}")}]);
    cases.push((
        "newline in an IP-per-task address",
        ippt,
        "/bad",
        "tasks[].ipAddresses[].ipAddress",
    ));
    let mut realm = base("/bad");
    realm["labels"]["HAPROXY_0_AUTH"] = json!("${SOME_VAR}:user:pass");
    cases.push(("${VAR} in the auth realm", realm, "/bad", "HAPROXY_0_AUTH"));
    let mut redir = base("/bad");
    redir["labels"]["HAPROXY_0_HTTP_BACKEND_REDIR"] = json!("/x%[env(SOME_VAR)]");
    cases.push((
        "%[env()] in a redirect",
        redir,
        "/bad",
        "HAPROXY_0_HTTP_BACKEND_REDIR",
    ));
    let mut section = base("/bad");
    section["labels"]["HAPROXY_0_HTTP_FRONTEND_ACL"] = json!("  # x\nbackend evil\n");
    cases.push((
        "template override opening a section",
        section,
        "/bad",
        "HAPROXY_0_HTTP_FRONTEND_ACL",
    ));
    let mut other = base("/bad");
    other["labels"]["HAPROXY_0_BACKEND_HEAD"] = json!("\nbackend db_10002\n  balance roundrobin\n");
    cases.push((
        "BACKEND_HEAD naming another app's backend",
        other,
        "/bad",
        "HAPROXY_0_BACKEND_HEAD",
    ));
    for (what, app, id, field) in cases {
        let mut apps = good_apps();
        apps.insert(1, app);
        let (config, diagnostics) = generate(apps);
        assert_eq!(
            config, expected,
            "{what}: other apps changed or the bad app leaked"
        );
        assert!(
            diagnostics.iter().any(|d| d.severity >= Severity::Warning
                && d.app_id == id
                && d.label.as_deref() == Some(field)),
            "{what}: no diagnostic naming {id} and {field}: {diagnostics:?}"
        );
    }
}
