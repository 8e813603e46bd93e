//! The state follows a simulated Marathon (the simulator's own operations,
//! `marathon_sim::ops`) through random changes, and generation from it
//! equals generation from Marathon's full document.

use marathon_sim::App as SimApp;
use marathon_sim::clock::UuidGen;
use marathon_sim::ops::{self, Payload};
use marathon_sim::tasks::Ctx;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::tests::{app, doc, initial, one};
use super::{Decision, MarathonState, StateOptions};

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
    /// The app is deleted (the simulator's admin form: tasks killed at once).
    Remove(usize),
    /// `DELETE /v2/apps/{id}`: gone from the list at once, its tasks
    /// `TASK_KILLING`; killed, then `app_terminated_event`, at the next
    /// [`Op::Settle`] (their kill grace period).
    Delete(usize),
    /// Kill grace periods end.
    Settle,
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
        1 => i.clone().prop_map(Op::Remove),
        1 => i.prop_map(Op::Delete),
        1 => Just(Op::Settle),
        1 => Just(Op::Create),
    ]
}

/// Marathon: the simulator's operations on its app list.
struct Marathon {
    apps: Vec<SimApp>,
    uuids: UuidGen,
    next_port: u32,
    created: usize,
    /// Events due when kill grace periods end.
    pending: Vec<Payload>,
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
                    if n % 2 == 0 {
                        // Routing changes (the frontends, ACLs and maps).
                        app["labels"]["HAPROXY_0_VHOST"] = json!(format!("v{n}.example.test"));
                    }
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
            Op::Delete(a) => {
                if a < self.apps.len() {
                    let app = self.apps.remove(a);
                    let id = app["id"].as_str().unwrap_or_default().to_owned();
                    let version = app["version"].as_str().unwrap_or_default().to_owned();
                    let step = json!({"actions": [{"action": "StopApplication", "app": id}]});
                    out.push(
                        json!({"eventType": "deployment_info", "currentStep": step,
                               "plan": {"id": "p", "steps": [step], "version": version}})
                        .as_object()
                        .cloned()
                        .expect("object"),
                    );
                    for t in marathon_sim::apps::tasks(&app) {
                        out.extend(marathon_sim::events::task_changed(
                            &id,
                            t,
                            "TASK_KILLING",
                            &version,
                        ));
                        self.pending.extend(marathon_sim::events::task_changed(
                            &id,
                            t,
                            "TASK_KILLED",
                            &version,
                        ));
                    }
                    self.pending.push(marathon_sim::events::app_terminated(&id));
                }
            }
            Op::Settle => out.append(&mut self.pending),
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
        pending: Vec::new(),
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
/// cache, backend sections spliced into the last text) writes exactly the
/// config and maps that another one makes from Marathon's full document,
/// after every step of a random sequence.
#[test]
fn incremental_generation_equals_full_generation() {
    generate_both_ways(&["--haproxy-map"], false);
}

/// The same without map files, with health checks and with supervised
/// mode's frontend options (which the splice must leave where they are).
#[test]
fn incremental_generation_equals_full_generation_without_maps() {
    generate_both_ways(&["--health-check", "--sse", "--supervise-haproxy"], true);
}

/// A long-running controller's settings with `flags`.
fn settings(flags: &[&str]) -> crate::settings::Settings {
    use clap::Parser as _;
    let mut argv = vec![
        "marathon-lb",
        "--group",
        "external",
        "--marathon",
        "http://127.0.0.1:1",
        "--plugin-cache-dir",
        "",
    ];
    argv.extend_from_slice(flags);
    let args = crate::cli::Args::try_parse_from(argv).expect("args");
    crate::settings::Settings::from_args(&args, &[]).expect("settings")
}

/// A changed app whose routing changes too (its vhost: the :80 and :443
/// ACLs), not only its servers, is generated fully; one whose servers
/// alone change is not; both equal a full generation.
#[test]
fn only_server_changes_are_generated_from_the_changed_apps_alone() {
    use crate::pipeline::Generator;
    let settings = settings(&["--sse", "--supervise-haproxy"]);
    let mut apps = initial();
    let mut state = MarathonState::new(StateOptions::default());
    state.reset(&doc(&apps));
    let mut g = Generator::new(&settings, false).expect("generator");
    let first = g.generate_state(&mut state).expect("first");
    assert!(!first.timings.changed_only);
    let mut check = |apps: &[SimApp], changed_only: bool| {
        assert!(state.replace_app(&one(apps, "/web").expect("web")));
        let b = g.generate_state(&mut state).expect("from the state");
        let mut fresh = Generator::new(&settings, false).expect("generator");
        let a = fresh.generate(&doc(apps)).expect("full");
        assert_eq!(b.rendered, a.rendered);
        assert_eq!(b.timings.changed_only, changed_only);
    };
    let mut task = apps[0]["tasks"][0].clone();
    task["id"] = json!("web.instance-1._app.1");
    task["ports"] = json!([41000]);
    apps[0]["tasks"].as_array_mut().expect("tasks").push(task);
    check(&apps, true);
    apps[0]["labels"]["HAPROXY_0_VHOST"] = json!("elsewhere.example.com");
    check(&apps, false);
    apps[0]["tasks"].as_array_mut().expect("tasks").pop();
    check(&apps, true);
}

fn generate_both_ways(flags: &[&str], health_check: bool) {
    use crate::pipeline::Generator;
    let settings = settings(flags);
    let mut full = Generator::new(&settings, false).expect("generator");
    let mut incremental = Generator::new(&settings, false).expect("generator");
    let ops_strategy = proptest::collection::vec(op(), 60);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let ops =
        proptest::strategy::ValueTree::current(&ops_strategy.new_tree(&mut runner).expect("ops"));
    let (mut checked, mut servers, mut changed_only) = (0, 0, 0);
    let counts = follow(
        &ops,
        &[0, 1, 0, 2],
        StateOptions { health_check },
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
            changed_only += usize::from(b.timings.changed_only);
            Ok(())
        },
    )
    .expect("follow");
    eprintln!(
        "{checked} checks ({changed_only} from changed apps alone), {servers} server lines \
         compared, {counts:?}"
    );
    assert!(checked > 20 && servers > checked && counts.applied > 10);
    // The generation from the changed apps alone was taken (and checked).
    assert!(
        changed_only > 5,
        "{changed_only} generations from changed apps alone"
    );
}

/// Printed figures (debug build unless run with `--release`), not
/// assertions on time: `cargo test -p marathon-lb --lib generation_figures
/// -- --ignored --nocapture` (5,000 apps; `MLB_FIGURES_APPS=N` for
/// another size).
#[test]
#[ignore = "prints timings; run on demand"]
fn generation_figures() {
    use crate::pipeline::Generator;
    use clap::Parser as _;
    use std::time::Instant;
    let args = crate::cli::Args::try_parse_from([
        "marathon-lb",
        "--group",
        "external",
        "--marathon",
        "http://127.0.0.1:1",
        "--plugin-cache-dir",
        "",
    ])
    .expect("args");
    let settings = crate::settings::Settings::from_args(&args, &[]).expect("settings");
    let n: i64 = std::env::var("MLB_FIGURES_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let mut apps: Vec<SimApp> = (0..n)
        .map(|i| app(&format!("/app{i}"), 10000 + i, json!({})))
        .collect();
    // No memo, no render cache (the one-shot generator); the long-running
    // one from the document (memo and render cache); and from the state.
    let mut bare = Generator::new(&settings, true).expect("generator");
    let mut full = Generator::new(&settings, false).expect("generator");
    let mut incremental = Generator::new(&settings, false).expect("generator");
    let mut state = MarathonState::new(StateOptions::default());
    state.reset(&doc(&apps));
    full.generate(&doc(&apps)).expect("warm");
    incremental.generate_state(&mut state).expect("warm");
    let (mut bare_ms, mut full_ms, mut incremental_ms) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..5 {
        // One task added to app k, as Marathon's event says.
        let task = json!({"id": format!("app{k}.new"), "appId": format!("/app{k}"),
            "host": "127.0.0.2", "state": "TASK_RUNNING", "ports": [40000 + k],
            "version": "2020-05-01T08:30:12.345Z",
            "ipAddresses": [{"ipAddress": "127.0.0.2", "protocol": "IPv4"}]});
        apps[k]["tasks"]
            .as_array_mut()
            .expect("tasks")
            .push(task.clone());
        let event = json!({"eventType": "status_update_event", "appId": format!("/app{k}"),
            "taskId": task["id"], "taskStatus": "TASK_RUNNING", "version": task["version"],
            "host": "127.0.0.2", "ports": task["ports"], "ipAddresses": task["ipAddresses"]});
        let body = doc(&apps);
        let t = Instant::now();
        let c = bare.generate(&body).expect("bare");
        bare_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let a = full.generate(&body).expect("full");
        full_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        assert!(matches!(
            state.apply("status_update_event", &event),
            Decision::Applied { changed: true, .. }
        ));
        let b = incremental.generate_state(&mut state).expect("incremental");
        incremental_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(a.rendered, b.rendered);
        assert_eq!(c.rendered, b.rendered);
        eprintln!(
            "stages: no caches {:?} / from the document {:?} / from the state {:?}",
            c.timings, a.timings, b.timings
        );
    }
    let min = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
    println!(
        "{n} apps, one task added: generation without caches {:.0} ms; from the \
         document with memo and render cache {:.0} ms; event applied + generation \
         from the state {:.0} ms (best of 5)",
        min(&bare_ms),
        min(&full_ms),
        min(&incremental_ms)
    );
}
