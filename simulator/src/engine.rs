//! Drives the apps written through the REST API ([`crate::deploy`]) the way
//! Marathon's scheduler would, one tick at a time:
//!
//! 1. staging tasks (launched in the previous tick) start running — or, for
//!    an app whose `env.SIM_TASK_FAIL` is `crash`, fail (`TASK_FAILED`,
//!    `lastTaskFailure`) and are launched again next tick: a crash loop;
//! 2. health checks of running tasks are probed for real against their
//!    loopback servers (HTTP: `GET path` answered 2xx/3xx; TCP: a
//!    connection); `SIM_TASK_FAIL=unhealthy` tasks answer 500;
//! 3. missing tasks are launched (`TASK_STAGING`, a new loopback server
//!    per host port), surplus ones killed youngest first (through
//!    [`crate::kill`]: `TASK_KILLING`, the kill grace period, `TASK_KILLED`)
//!    — or, while a rolling restart runs, [`crate::restart`] decides;
//! 4. a deployment finishes once every task runs and is healthy and the
//!    killed ones are dead.
//!
//! Each task change emits `status_update_event` + `instance_changed_event`;
//! a finished deployment `deployment_success`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::apps::{self, App, app_id, task_state};
use crate::backend;
use crate::clock;
use crate::events;
use crate::kill;
use crate::ops::Payload;
use crate::restart;
use crate::state::Sim;
use crate::tasks::{self, Ctx};

/// How often the engine ticks (and so how long a task stages).
pub const TICK: Duration = Duration::from_millis(100);

/// Runs the engine until the simulator shuts down.
pub async fn run(sim: Sim) {
    let mut control = sim.control();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => tick(&sim).await,
            r = control.changed() => if r.is_err() || control.borrow().shutdown { return },
        }
    }
}

fn fail_mode(app: &App) -> Option<&str> {
    app.get("env")?.get("SIM_TASK_FAIL")?.as_str()
}

/// `Some(path)` for HTTP checks, `None` for TCP-style ones; no entry
/// without health checks.
fn check(app: &App) -> Option<Option<String>> {
    let hc = app.get("healthChecks")?.as_array()?.first()?;
    let protocol = hc.get("protocol").and_then(Value::as_str).unwrap_or("HTTP");
    Some(protocol.contains("HTTP").then(|| {
        hc.get("path")
            .and_then(Value::as_str)
            .unwrap_or("/")
            .to_owned()
    }))
}

fn task_id(t: &Value) -> &str {
    t.get("id").and_then(Value::as_str).unwrap_or("")
}

async fn tick(sim: &Sim) {
    // Apps loaded from a file are left alone (and not copied on write).
    if !sim.manages_any() {
        return;
    }
    let apps = sim.apps();
    let mut probes = Vec::new();
    for app in apps.iter().filter(|a| sim.is_managed(app_id(a))) {
        let Some(path) = check(app) else { continue };
        for t in apps::tasks(app)
            .iter()
            .filter(|t| task_state(t) == "TASK_RUNNING")
        {
            if let Some(port) = t
                .get("ports")
                .and_then(|p| p.get(0))
                .and_then(Value::as_u64)
            {
                let (app, task, path) =
                    (app_id(app).to_owned(), task_id(t).to_owned(), path.clone());
                probes.push(async move {
                    let alive = backend::probe(port as u16, path.as_deref()).await;
                    (app, task, alive)
                });
            }
        }
    }
    let results = futures_util::future::join_all(probes).await;
    let sim2 = sim.clone();
    let _ = sim.mutate(|list, ctx, out| {
        for (app, task, alive) in &results {
            let _ = crate::ops::set_health(list, app, task, *alive, out);
        }
        for app in list.iter_mut().filter(|a| sim2.is_managed(app_id(a))) {
            advance(&sim2, app, ctx, out);
        }
        Ok(())
    });
}

fn advance(sim: &Sim, app: &mut App, ctx: &mut Ctx<'_>, out: &mut Vec<Payload>) {
    let id = app_id(app).to_owned();
    let version = apps::app_version(app).to_owned();
    let crash = fail_mode(app) == Some("crash");
    let mut list = apps::tasks(app).to_vec();
    // 1. Staging → running (or failed).
    let mut failed = None;
    list.retain_mut(|t| {
        if task_state(t) != "TASK_STAGING" {
            return true;
        }
        if crash {
            out.extend(events::task_changed(&id, t, "TASK_FAILED", &version));
            failed = Some(json!({
                "appId": id, "host": t.get("host").cloned().unwrap_or(json!("127.0.0.1")),
                "message": "Command exited with status 1", "state": "TASK_FAILED",
                "taskId": task_id(t), "timestamp": clock::now(), "version": version,
                "slaveId": t.get("slaveId").cloned().unwrap_or(json!("sim-agent-S0"))
            }));
            sim.stop_server(task_id(t));
            return false;
        }
        let obj = t.as_object_mut().expect("task object");
        obj.insert("state".into(), json!("TASK_RUNNING"));
        obj.insert("startedAt".into(), json!(clock::now()));
        out.extend(events::task_changed(&id, t, "TASK_RUNNING", &version));
        true
    });
    app.insert("tasks".into(), Value::from(list));
    if let Some(f) = failed {
        app.insert("lastTaskFailure".into(), f);
    }
    if let Some(r) = restart::active(sim, app) {
        restart::advance(sim, app, &r, ctx, out);
        apps::refresh_counts(app);
        return;
    }
    // 3. Launch or kill to reach `instances`; tasks being killed no longer count.
    let want = app.get("instances").and_then(Value::as_u64).unwrap_or(0) as usize;
    let live: Vec<String> = apps::tasks(app)
        .iter()
        .filter(|t| !kill::is_killing(t))
        .map(|t| task_id(t).to_owned())
        .collect();
    for tid in live.iter().skip(want).rev() {
        kill::begin(sim, app, tid, out);
    }
    for _ in live.len()..want {
        if !launch(sim, app, ctx, out) {
            break; // retried next tick
        }
    }
    // 4. Deployment done (every task running and healthy, the killed ones dead)?
    let checked = has_check(app);
    let list = apps::tasks(app);
    let done = list.len() == want
        && list.iter().all(|t| {
            task_state(t) == "TASK_RUNNING" && (!checked || tasks::healthy(t) == Some(true))
        });
    apps::refresh_counts(app);
    if done
        && app
            .get("deployments")
            .and_then(Value::as_array)
            .is_some_and(|d| !d.is_empty())
    {
        app.insert("deployments".into(), json!([]));
        let mut ev = serde_json::Map::new();
        ev.insert("eventType".into(), json!("deployment_success"));
        ev.insert("id".into(), json!(sim.next_uuid()));
        ev.insert("timestamp".into(), json!(clock::now()));
        out.push(ev);
    }
}

/// Whether the app has a health check the engine probes.
pub(crate) fn has_check(app: &App) -> bool {
    check(app).is_some()
}

/// Launches one task of `app` (`TASK_STAGING`, one loopback server per
/// host port; it runs next tick). `false` when a server could not start:
/// nothing was launched, try again next tick.
pub(crate) fn launch(sim: &Sim, app: &mut App, ctx: &mut Ctx<'_>, out: &mut Vec<Payload>) -> bool {
    let id = app_id(app).to_owned();
    let version = apps::app_version(app).to_owned();
    let crash = fail_mode(app) == Some("crash");
    let mut t = tasks::new_task(app, None, None, ctx);
    let label = format!("{id} {}", task_id(&t));
    // One server per host port (at least one), so every port of the task answers.
    let n_ports = t
        .get("ports")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
        .max(1);
    let unhealthy = fail_mode(app) == Some("unhealthy");
    let mut ports = Vec::new();
    while !crash && ports.len() < n_ports {
        match backend::serve(&label, unhealthy) {
            Ok((port, server)) => {
                sim.add_server(task_id(&t), server);
                ports.push(port);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start a task server");
                sim.stop_server(task_id(&t));
                return false;
            }
        }
    }
    let obj = t.as_object_mut().expect("task object");
    if !crash {
        obj.insert("ports".into(), json!(ports));
    }
    obj.insert("state".into(), json!("TASK_STAGING"));
    obj.remove("startedAt");
    obj.remove("healthCheckResults");
    out.extend(events::task_changed(&id, &t, "TASK_STAGING", &version));
    let tasks = app.entry("tasks").or_insert_with(|| json!([]));
    if let Some(list) = tasks.as_array_mut() {
        list.push(t);
    }
    true
}
