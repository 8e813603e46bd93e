use super::diff::UNROUTED_STATES;
use super::*;
use marathon_sim::App as SimApp;
use marathon_sim::clock::UuidGen;
use marathon_sim::ops::{self, Payload};
use marathon_sim::tasks::Ctx;
use proptest::prelude::*;
use serde_json::json;

fn app(id: &str, port: i64, extra: Value) -> SimApp {
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
fn initial() -> Vec<SimApp> {
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

fn doc(apps: &[SimApp]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "apps": apps })).expect("json")
}

fn one(apps: &[SimApp], id: &str) -> Option<Vec<u8>> {
    let app = apps.iter().find(|a| a["id"] == id)?;
    Some(serde_json::to_vec(&json!({ "app": app })).expect("json"))
}

fn status(app: &str, task: &str, state: &str, version: &str) -> Value {
    json!({"eventType": "status_update_event", "appId": app, "taskId": task, "taskStatus": state,
           "version": version, "host": "127.0.0.1", "slaveId": "s1", "ports": [32000],
           "ipAddresses": [{"ipAddress": "127.0.0.1", "protocol": "IPv4"}]})
}

const V: &str = "2020-05-01T08:30:12.345Z";

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
    assert_eq!(s.apply("deployment_info", &json!({})), Decision::Ignored);
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
    let end = json!({"appId": "/checked"});
    assert!(matches!(
        s.apply("app_terminated_event", &end),
        Decision::Applied { changed: true, .. }
    ));
    apps.remove(1);
    assert_eq!(s.diff(&doc(&apps)).expect("diff"), vec![]);
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

/// One change a Marathon operator or the cluster makes.
#[derive(Debug, Clone)]
enum Op {
    /// A new running task (no version change).
    Add(usize),
    /// A new staging task.
    Stage(usize),
    /// The first staging task starts running.
    Promote(usize),
    /// A task starts its kill grace period.
    Killing(usize, usize),
    /// A task dies (`scale`: instances lowered too).
    Kill(usize, usize, bool),
    /// A task becomes unreachable.
    Unreachable(usize, usize),
    /// Scale to n (new version, no `api_post_event`).
    Scale(usize, usize),
    /// A health result flips.
    Health(usize, usize, bool),
    /// The definition changes (`api_post_event`, new version).
    Relabel(usize),
    /// The app is deleted.
    Remove(usize),
    /// A new app.
    Create,
}

fn op() -> impl Strategy<Value = Op> {
    let i = 0..5usize;
    prop_oneof![
        3 => i.clone().prop_map(Op::Add),
        1 => i.clone().prop_map(Op::Stage),
        1 => i.clone().prop_map(Op::Promote),
        2 => (i.clone(), 0..3usize).prop_map(|(a, t)| Op::Killing(a, t)),
        3 => (i.clone(), 0..3usize, any::<bool>()).prop_map(|(a, t, s)| Op::Kill(a, t, s)),
        1 => (i.clone(), 0..3usize).prop_map(|(a, t)| Op::Unreachable(a, t)),
        1 => (i.clone(), 0..3usize).prop_map(|(a, n)| Op::Scale(a, n)),
        1 => (i.clone(), 0..3usize, any::<bool>()).prop_map(|(a, t, h)| Op::Health(a, t, h)),
        1 => i.clone().prop_map(Op::Relabel),
        1 => i.prop_map(Op::Remove),
        1 => Just(Op::Create),
    ]
}

/// Marathon: the simulator's operations on its app list.
struct Marathon {
    apps: Vec<SimApp>,
    uuids: UuidGen,
    next_port: u32,
    created: usize,
}

impl Marathon {
    fn task_id(&self, a: usize, t: usize) -> Option<(String, String)> {
        let app = self.apps.get(a)?;
        let id = app["id"].as_str()?.to_owned();
        let task = app.get("tasks")?.as_array()?.get(t)?;
        Some((id, task["id"].as_str()?.to_owned()))
    }

    /// Change one task's state as Marathon would (`ops::diff` emits the events).
    fn set_state(
        &mut self,
        a: usize,
        pick: impl Fn(&Value) -> bool,
        state: &str,
        out: &mut Vec<Payload>,
    ) {
        let old = self.apps.clone();
        let Some(tasks) = self
            .apps
            .get_mut(a)
            .and_then(|x| x.get_mut("tasks"))
            .and_then(Value::as_array_mut)
        else {
            return;
        };
        if let Some(t) = tasks.iter_mut().find(|t| pick(t)) {
            t["state"] = json!(state);
            ops::diff(&old, &self.apps, out);
        }
    }

    fn run(&mut self, op: &Op) -> Vec<Payload> {
        let mut out = Vec::new();
        let mut ctx = Ctx {
            uuids: &self.uuids,
            next_port: &mut self.next_port,
        };
        let id = |apps: &[SimApp], a: usize| {
            apps.get(a)
                .and_then(|x| x["id"].as_str())
                .map(str::to_owned)
        };
        match *op {
            Op::Add(a) => {
                if let Some(id) = id(&self.apps, a) {
                    let _ = ops::add_task(&mut self.apps, &id, Map::new(), &mut ctx, &mut out);
                }
            }
            Op::Stage(a) => {
                if let Some(id) = id(&self.apps, a) {
                    let partial = json!({"state": "TASK_STAGING"})
                        .as_object()
                        .cloned()
                        .expect("obj");
                    let _ = ops::add_task(&mut self.apps, &id, partial, &mut ctx, &mut out);
                }
            }
            Op::Promote(a) => self.set_state(
                a,
                |t| t["state"] == "TASK_STAGING",
                "TASK_RUNNING",
                &mut out,
            ),
            Op::Killing(a, t) | Op::Unreachable(a, t) => {
                let state = if matches!(op, Op::Killing(..)) {
                    "TASK_KILLING"
                } else {
                    "TASK_UNREACHABLE"
                };
                if let Some((_, tid)) = self.task_id(a, t) {
                    self.set_state(a, |x| x["id"] == tid.as_str(), state, &mut out);
                }
            }
            Op::Kill(a, t, scale) => {
                if let Some((id, tid)) = self.task_id(a, t) {
                    let _ = ops::remove_task(&mut self.apps, &id, &tid, scale, &mut out);
                }
            }
            Op::Scale(a, n) => {
                // `PUT /v2/apps/{id}` with `instances`: `api_post_event` first.
                if let Some(id) = id(&self.apps, a) {
                    let mut tasks = Vec::new();
                    let _ = ops::scale(&mut self.apps, &id, n, &mut ctx, &mut tasks);
                    let def = marathon_sim::apps::definition(&self.apps[a]);
                    out.push(marathon_sim::events::api_post(
                        &format!("/v2/apps{id}"),
                        def,
                    ));
                    out.append(&mut tasks);
                }
            }
            Op::Health(a, t, alive) => {
                if let Some((id, tid)) = self.task_id(a, t)
                    && self.apps[a].contains_key("healthChecks")
                {
                    let _ = ops::set_health(&mut self.apps, &id, &tid, alive, &mut out);
                }
            }
            Op::Relabel(a) => {
                let old = self.apps.clone();
                if let Some(app) = self.apps.get_mut(a) {
                    let n = app["labels"].as_object().map_or(0, Map::len);
                    app["labels"][format!("X{n}")] = json!("y");
                    app["version"] = json!(marathon_sim::clock::now());
                    ops::diff(&old, &self.apps, &mut out);
                }
            }
            Op::Remove(a) => {
                if let Some(id) = id(&self.apps, a) {
                    let _ = ops::remove_app(&mut self.apps, &id, &mut out);
                }
            }
            Op::Create => {
                let old = self.apps.clone();
                self.created += 1;
                let n = self.created;
                self.apps
                    .push(app(&format!("/new{n}"), 11000 + n as i64, json!({})));
                ops::diff(&old, &self.apps, &mut out);
            }
        }
        out
    }
}

/// What the generated config is made from: the label rules' services.
fn services(body: &[u8], options: &mlb_model::InterpretOptions) -> Vec<mlb_model::Service> {
    let n = mlb_core::normalize_apps(body, |h| Some(h.to_owned())).expect("doc");
    mlb_label_rules::interpret(&n.apps, options).services
}

/// How a follower fared.
#[derive(Debug, Default)]
struct Counts {
    applied: usize,
    app_refetches: usize,
    full_fetches: usize,
}

/// Run `ops` on a simulated Marathon and follow it: apply each event,
/// refetch the app or everything when told (the answer may already include
/// up to `lags[k]` later operations), and whenever the follower has caught
/// up with the answers it holds, call `check(state, marathon's document,
/// op index)`.
fn follow(
    ops: &[Op],
    lags: &[usize],
    options: StateOptions,
    mut check: impl FnMut(&mut MarathonState, &[u8], usize) -> Result<(), TestCaseError>,
) -> Result<Counts, TestCaseError> {
    let mut marathon = Marathon {
        apps: initial(),
        uuids: UuidGen::default(),
        next_port: 31000,
        created: 0,
    };
    marathon.next_port = marathon_sim::tasks::first_free_port(&marathon.apps);
    // Marathon after each op: the events of op k lead to snapshots[k + 1].
    let mut snapshots = vec![marathon.apps.clone()];
    let mut events = Vec::new();
    for op in ops {
        events.push(marathon.run(op));
        snapshots.push(marathon.apps.clone());
    }
    let mut state = MarathonState::new(options);
    state.reset(&doc(&snapshots[0]));
    let mut seen = 0;
    let mut counts = Counts::default();
    for (k, batch) in events.iter().enumerate() {
        for e in batch {
            let kind = e["eventType"].as_str().expect("type");
            let answer = (k + 1 + lags[k % lags.len()]).min(ops.len());
            match state.apply(kind, &Value::Object(e.clone())) {
                Decision::Applied { .. } => counts.applied += 1,
                Decision::Ignored => {}
                Decision::RefetchApp(id) => {
                    counts.app_refetches += 1;
                    match one(&snapshots[answer], &id) {
                        Some(body) => prop_assert!(state.replace_app(&body)),
                        None => {
                            counts.full_fetches += 1;
                            state.reset(&doc(&snapshots[answer]));
                        }
                    }
                    seen = seen.max(answer);
                }
                Decision::FullFetch(_) => {
                    counts.full_fetches += 1;
                    state.reset(&doc(&snapshots[answer]));
                    seen = seen.max(answer);
                }
            }
        }
        if k + 1 >= seen {
            check(&mut state, &doc(&snapshots[k + 1]), k)?;
        }
    }
    Ok(counts)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The state follows a simulated Marathon through random changes;
    /// whenever it has caught up with the answers it holds the same apps as
    /// a full fetch would give, and the label rules make the same services.
    #[test]
    fn events_keep_the_state_equal_to_a_full_fetch(
        ops in proptest::collection::vec(op(), 1..40),
        lags in proptest::collection::vec(0..3usize, 40),
        health_check in any::<bool>(),
    ) {
        let rules = mlb_model::InterpretOptions {
            health_check,
            groups: vec!["external".into()],
            ..Default::default()
        };
        let counts = follow(&ops, &lags, StateOptions { health_check }, |state, now, k| {
            prop_assert_eq!(state.diff(now).expect("diff"), vec![], "after op {} ({:?})", k, ops[k]);
            prop_assert_eq!(services(&state.document(), &rules), services(now, &rules));
            // The per-app normalisation equals a whole one (a resolver
            // that fails for some hosts).
            let resolve = |h: &str| h.starts_with("127.").then(|| h.to_owned());
            let whole = mlb_core::normalize_apps(&state.document(), resolve).expect("doc");
            let parts = state.normalized(resolve).expect("doc");
            prop_assert_eq!(parts.apps, whole.apps);
            prop_assert_eq!(parts.diagnostics, whole.diagnostics);
            Ok(())
        })?;
        // Each path was taken somewhere in the run (printed with --nocapture).
        eprintln!("{counts:?}");
    }
}

/// Issue 10, item 2, end to end: a long-running generator fed from the
/// state (apps re-read only when changed, the plugin memo, the render
/// cache) writes exactly the config and maps that another one makes from
/// Marathon's full document, after every step of a random sequence.
#[test]
fn incremental_generation_equals_full_generation() {
    use crate::pipeline::Generator;
    use clap::Parser as _;
    let args = crate::cli::Args::try_parse_from([
        "marathon-lb",
        "--group",
        "external",
        "--marathon",
        "http://127.0.0.1:1",
        "--haproxy-map",
        "--plugin-cache-dir",
        "",
    ])
    .expect("args");
    let settings = crate::settings::Settings::from_args(&args, &[]).expect("settings");
    let mut full = Generator::new(&settings, false).expect("generator");
    let mut incremental = Generator::new(&settings, false).expect("generator");
    let ops_strategy = proptest::collection::vec(op(), 60);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let ops =
        proptest::strategy::ValueTree::current(&ops_strategy.new_tree(&mut runner).expect("ops"));
    let (mut checked, mut servers) = (0, 0);
    let counts = follow(
        &ops,
        &[0, 1, 0, 2],
        StateOptions::default(),
        |state, now, k| {
            let a = full.generate(now).expect("full");
            let b = incremental.generate_state(state).expect("incremental");
            prop_assert_eq!(
                &b.rendered.config,
                &a.rendered.config,
                "after op {} ({:?})",
                k,
                ops[k]
            );
            prop_assert_eq!(&b.rendered.domain_map, &a.rendered.domain_map);
            prop_assert_eq!(&b.rendered.app_map, &a.rendered.app_map);
            prop_assert_eq!(&b.diagnostics, &a.diagnostics);
            servers += a.rendered.config.matches("\n  server ").count();
            checked += 1;
            Ok(())
        },
    )
    .expect("follow");
    eprintln!("{checked} checks, {servers} server lines compared, {counts:?}");
    assert!(checked > 20 && servers > checked && counts.applied > 10);
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
