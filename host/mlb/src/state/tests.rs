//! Unit tests of the state rules, the diff and the per-app normalisation.

use super::diff::UNROUTED_STATES;
use super::*;
use marathon_sim::App as SimApp;
use serde_json::json;

pub(super) fn app(id: &str, port: i64, extra: Value) -> SimApp {
    let mut a = json!({
        "id": id, "instances": 1, "version": "2020-05-01T08:30:12.345Z",
        "versionInfo": {"lastScalingAt": "2020-05-01T08:30:12.345Z",
                        "lastConfigChangeAt": "2020-05-01T08:30:12.345Z"},
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": format!("{}.example.com", &id[1..])},
        "portDefinitions": [{"port": port, "protocol": "tcp", "labels": {}}],
        "networks": [{"mode": "host"}],
        "tasks": [{"id": format!("{}.instance-0._app.1", &id[1..]), "appId": id,
                   "host": "127.0.0.1", "state": "TASK_RUNNING", "ports": [31000 + port],
                   "version": "2020-05-01T08:30:12.345Z", "servicePorts": [port],
                   "ipAddresses": [{"ipAddress": "127.0.0.1", "protocol": "IPv4"}],
                   "healthCheckResults": [], "localVolumes": []}]
    });
    let obj = a.as_object_mut().expect("object");
    if let Value::Object(extra) = extra {
        obj.extend(extra);
    }
    obj.clone()
}

/// Four apps: plain, with a Marathon-side health check, in a deployment
/// group, and one whose service port the IP-per-task assigner picks.
pub(super) fn initial() -> Vec<SimApp> {
    let mut checked = app(
        "/checked",
        10001,
        json!({"healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0,
        "gracePeriodSeconds": 30, "intervalSeconds": 10, "timeoutSeconds": 5,
        "maxConsecutiveFailures": 3}]}),
    );
    checked["tasks"][0]["host"] = json!("agent-2");
    checked["tasks"][0]["healthCheckResults"] =
        json!([{"alive": true, "consecutiveFailures": 0, "instanceId": "checked.instance-0"}]);
    let mut grouped = app("/blue", 10002, json!({}));
    grouped["labels"]["HAPROXY_DEPLOYMENT_GROUP"] = json!("shop");
    grouped["labels"]["HAPROXY_DEPLOYMENT_ALT_PORT"] = json!("10003");
    let mut bridged = app(
        "/bridged",
        0,
        json!({"networks": [{"mode": "container", "name": "dcos"}],
        "container": {"type": "DOCKER", "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}}),
    );
    bridged.remove("portDefinitions");
    bridged["tasks"][0]["ipAddresses"] = json!([{"ipAddress": "127.0.0.9", "protocol": "IPv4"}]);
    vec![app("/web", 10000, json!({})), checked, grouped, bridged]
}

pub(super) fn doc(apps: &[SimApp]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "apps": apps })).expect("json")
}

pub(super) fn one(apps: &[SimApp], id: &str) -> Option<Vec<u8>> {
    let app = apps.iter().find(|a| a["id"] == id)?;
    Some(serde_json::to_vec(&json!({ "app": app })).expect("json"))
}

pub(super) fn status(app: &str, task: &str, state: &str, version: &str) -> Value {
    json!({"eventType": "status_update_event", "appId": app, "taskId": task, "taskStatus": state,
           "version": version, "host": "127.0.0.1", "slaveId": "s1", "ports": [32000],
           "ipAddresses": [{"ipAddress": "127.0.0.1", "protocol": "IPv4"}]})
}

pub(super) const V: &str = "2020-05-01T08:30:12.345Z";

fn ready(options: StateOptions) -> MarathonState {
    let mut s = MarathonState::new(options);
    s.reset(&doc(&initial()));
    s
}

#[test]
fn nothing_is_proved_before_the_first_full_fetch() {
    let mut s = MarathonState::new(StateOptions::default());
    assert_eq!(
        s.apply(
            "status_update_event",
            &status("/web", "t", "TASK_RUNNING", V)
        ),
        Decision::FullFetch(FullFetchReason::NoState)
    );
    s.reset(b"not json");
    assert_eq!(
        s.apply(
            "status_update_event",
            &status("/web", "t", "TASK_RUNNING", V)
        ),
        Decision::FullFetch(FullFetchReason::Unsplittable)
    );
    assert_eq!(s.document(), b"not json", "kept verbatim");
}

#[test]
fn running_tasks_of_the_held_version_are_added_and_terminal_ones_removed() {
    let mut s = ready(StateOptions::default());
    let applied = |changed| Decision::Applied {
        app: "/web".into(),
        changed,
    };
    let run = status("/web", "web.new", "TASK_RUNNING", V);
    assert_eq!(s.apply("status_update_event", &run), applied(true));
    assert_eq!(s.apply("status_update_event", &run), applied(false));
    let n = mlb_core::normalize_apps(&s.document(), |_| None).expect("doc");
    let task = n.apps[0]
        .tasks
        .iter()
        .find(|t| t.id == "web.new")
        .expect("added");
    assert_eq!(
        (task.state.as_deref(), &task.ports[..]),
        (Some("TASK_RUNNING"), &[32000][..])
    );

    let killing = status("/web", "web.new", "TASK_KILLING", V);
    assert_eq!(s.apply("status_update_event", &killing), applied(true));
    for state in ["TASK_KILLED", "TASK_FAILED", "TASK_FINISHED", "TASK_GONE"] {
        let gone = status("/web", "web.instance-0._app.1", state, V);
        s.apply("status_update_event", &gone);
    }
    let gone = status("/web", "web.new", "TASK_KILLED", V);
    assert_eq!(s.apply("status_update_event", &gone), applied(true));
    let n = mlb_core::normalize_apps(&s.document(), |_| None).expect("doc");
    assert!(n.apps[0].tasks.is_empty(), "{:?}", n.apps[0].tasks);
    assert_eq!(s.apply("status_update_event", &gone), applied(false));
}

#[test]
fn what_cannot_be_proved_asks_for_a_fetch() {
    let mut s = ready(StateOptions { health_check: true });
    let newer = "2021-01-01T00:00:00.000Z";
    let full = |d: Decision| matches!(d, Decision::FullFetch(_));
    assert!(full(s.apply(
        "status_update_event",
        &status("/x", "t", "TASK_RUNNING", V)
    )));
    assert!(full(s.apply(
        "status_update_event",
        &status("/web", "t", "TASK_RUNNING", newer)
    )));
    let older = "2019-01-01T00:00:00.000Z";
    assert!(full(s.apply(
        "status_update_event",
        &status("/web", "t", "TASK_RUNNING", older)
    )));
    assert!(full(s.apply(
        "status_update_event",
        &status("/blue", "t", "TASK_RUNNING", V)
    )));
    assert!(full(s.apply(
        "status_update_event",
        &status("/bridged", "t", "TASK_RUNNING", V)
    )));
    assert!(full(
        s.apply("status_update_event", &json!({"appId": "/web"}))
    ));
    let refetch = Decision::RefetchApp("/web".into());
    let lost = status("/web", "web.instance-0._app.1", "TASK_UNREACHABLE", V);
    assert_eq!(s.apply("status_update_event", &lost), refetch);
    let post = json!({"appDefinition": {"id": "/web"}, "uri": "/v2/apps/web"});
    assert_eq!(s.apply("api_post_event", &post), refetch);
    let health = json!({"runSpecId": "/web", "instanceId": "i", "healthy": true});
    assert_eq!(s.apply("instance_health_changed_event", &health), refetch);
    // Health decides routing of /checked, and the event has none.
    let run = status("/checked", "checked.new", "TASK_RUNNING", V);
    assert_eq!(
        s.apply("status_update_event", &run),
        Decision::RefetchApp("/checked".into())
    );
    let scale =
        json!({"currentStep": {"actions": [{"action": "ScaleApplication", "app": "/web"}]}});
    assert_eq!(s.apply("deployment_info", &scale), Decision::Ignored);
    assert!(full(s.apply("deployment_info", &json!({}))));
    assert_eq!(
        s.apply("event_stream_attached", &json!({})),
        Decision::Ignored
    );
    // Going away needs no health data.
    let task = "checked.instance-0._app.1";
    for (state, changed) in [
        ("TASK_KILLING", true),
        ("TASK_KILLED", true),
        ("TASK_KILLED", false),
    ] {
        assert_eq!(
            s.apply("status_update_event", &status("/checked", task, state, V)),
            Decision::Applied {
                app: "/checked".into(),
                changed
            }
        );
    }
}

#[test]
fn refetched_and_terminated_apps_keep_their_place() {
    let mut s = ready(StateOptions::default());
    let mut apps = initial();
    apps[0]["labels"]["HAPROXY_0_VHOST"] = json!("new.example.com");
    assert!(s.replace_app(&one(&apps, "/web").expect("app")));
    assert!(!s.replace_app(b"{\"app\":{\"id\":\"/unknown\"}}"));
    assert_eq!(s.diff(&doc(&apps)).expect("diff"), vec![]);
    let stop = json!({"currentStep": {"actions": [
        {"action": "StopApplication", "app": "/bridged"},
        {"action": "StopApplication", "app": "/unknown"}]}});
    assert_eq!(
        s.apply("deployment_info", &stop),
        Decision::Applied {
            app: "/bridged,/unknown".into(),
            changed: true
        }
    );
    apps.remove(3);
    let end = json!({"appId": "/checked"});
    assert!(matches!(
        s.apply("app_terminated_event", &end),
        Decision::Applied { changed: true, .. }
    ));
    apps.remove(1);
    assert_eq!(s.diff(&doc(&apps)).expect("diff"), vec![]);
    // Deleted in Marathon: gone from its list at once, tasks killing.
    let mut gone = s.clone();
    let killing = status("/web", "web.instance-0._app.1", "TASK_KILLING", V);
    gone.apply("status_update_event", &killing);
    let mut deleted = apps.clone();
    deleted.remove(0);
    assert_eq!(gone.diff(&doc(&deleted)).expect("diff"), vec![]);
    let running = status("/web", "web.instance-0._app.1", "TASK_RUNNING", V);
    gone.apply("status_update_event", &running);
    let d = gone.diff(&doc(&deleted)).expect("diff");
    assert_eq!(d[0].to_string(), "app /web: held, not in Marathon");
    apps.swap(0, 1);
    let d = s.diff(&doc(&apps)).expect("diff");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].to_string(), "apps in a different order");
}

#[test]
fn normalized_rereads_only_changed_apps_and_asks_every_address_again() {
    let mut apps = initial();
    apps[0].remove("labels");
    apps[3]["tasks"][0]
        .as_object_mut()
        .expect("task")
        .remove("host");
    let body = doc(&apps);
    let mut s = MarathonState::new(StateOptions::default());
    s.reset(&body);
    let mut calls = 0;
    let first = s
        .normalized(|_| {
            calls += 1;
            None
        })
        .expect("doc");
    assert_eq!(first.apps.len(), 3, "/web has no labels");
    assert_eq!(first.diagnostics.len(), 2, "{:?}", first.diagnostics);
    let whole = mlb_core::normalize_apps(&body, |h| Some(format!("ip-of-{h}"))).expect("doc");
    let again = s.normalized(|h| Some(format!("ip-of-{h}"))).expect("doc");
    assert_eq!(
        (again.apps, again.diagnostics),
        (whole.apps, whole.diagnostics)
    );
    assert_eq!(calls, 2, "one call per task with a host");
}

#[test]
fn the_unrouted_states_are_the_label_rules_ones() {
    let states = [
        "TASK_RUNNING",
        "TASK_LOST",
        "TASK_UNREACHABLE",
        "TASK_WHATEVER",
    ];
    for state in UNROUTED_STATES.iter().chain(&states) {
        let mut a = initial().remove(0);
        a["tasks"][0]["state"] = json!(state);
        let n = mlb_core::normalize_apps(&doc(&[a]), |_| Some("127.0.0.1".into())).expect("doc");
        let options = mlb_model::InterpretOptions {
            groups: vec!["external".into()],
            ..Default::default()
        };
        let out = mlb_label_rules::interpret(&n.apps, &options);
        assert_eq!(
            out.services.is_empty(),
            UNROUTED_STATES.contains(state),
            "{state}"
        );
    }
}

/// Printed figures, not assertions on time:
/// `cargo test -p marathon-lb --lib state_figures -- --ignored --nocapture`.
#[test]
#[ignore = "prints timings; run on demand"]
fn state_figures() {
    use std::time::Instant;
    let n = 5000;
    let apps: Vec<SimApp> = (0..n)
        .map(|i| app(&format!("/app{i}"), 10000 + i, json!({})))
        .collect();
    let body = doc(&apps);
    let mut s = MarathonState::new(StateOptions::default());
    let t = Instant::now();
    s.reset(&body);
    let reset = t.elapsed();
    let t = Instant::now();
    for k in 0..100 {
        let e = status(
            &format!("/app{k}"),
            &format!("app{k}.new"),
            "TASK_RUNNING",
            V,
        );
        assert!(matches!(
            s.apply("status_update_event", &e),
            Decision::Applied { changed: true, .. }
        ));
    }
    let apply = t.elapsed() / 100;
    let t = Instant::now();
    let document = s.document();
    let render = t.elapsed();
    let resolve = |h: &str| Some(h.to_owned());
    let t = Instant::now();
    let whole = mlb_core::normalize_apps(&document, resolve).expect("doc");
    let whole_time = t.elapsed();
    s.normalized(resolve).expect("doc");
    let e = status("/app7", "app7.other", "TASK_RUNNING", V);
    s.apply("status_update_event", &e);
    let t = Instant::now();
    let parts = s.normalized(resolve).expect("doc");
    let parts_time = t.elapsed();
    assert_eq!(parts.apps.len(), whole.apps.len());
    println!(
        "{n} apps, {} MB: reset {reset:?}, one status update {apply:?}, document() {render:?}; \
         normalising the document {whole_time:?}, normalized() after one event {parts_time:?}",
        document.len() / 1_000_000
    );
}
