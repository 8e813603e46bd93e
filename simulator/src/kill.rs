//! Killing tasks as Marathon and Mesos do: the task turns `TASK_KILLING` at
//! once (a `status_update_event` and an `instance_changed_event` with
//! condition `Killing`) and stays listed in that state — in
//! `/v2/apps?embed=apps.tasks`, `/v2/apps/{id}` and `/v2/tasks` — while its
//! process gets the app's kill grace period
//! ([`crate::state::kill_grace`], `taskKillGracePeriodSeconds`, default 3 s)
//! and its real loopback servers keep answering. Then it dies: its servers
//! close, `TASK_KILLED` is emitted and it leaves the list. A grace of 0
//! does both at once (`TASK_KILLING` then `TASK_KILLED`, in the same
//! change).
//!
//! Marathon 1.x lists a killing task: the instance stays in the instance
//! tracker with condition `Killing` until Mesos reports a terminal state
//! (`TASK_KILLED`), and every task endpoint shows the instances the tracker
//! holds. Load balancers must not send new traffic to it (marathon-lb
//! routes only `TASK_RUNNING`, `TASK_LOST` and `TASK_UNREACHABLE` tasks).
//!
//! Used by the REST write endpoints and the engine (scale-down, task kills,
//! app deletion, rolling restarts). The admin API and [`crate::ops`] keep
//! removing tasks at once, as before.

use serde_json::Value;

use crate::apps::{self, App, app_id, task_state};
use crate::events;
use crate::ops::Payload;
use crate::state::{Sim, kill_grace};

/// The state of a task being killed.
pub const KILLING: &str = "TASK_KILLING";

/// Whether `task` is being killed.
pub fn is_killing(task: &Value) -> bool {
    task_state(task) == KILLING
}

fn task_id(t: &Value) -> &str {
    t.get("id").and_then(Value::as_str).unwrap_or("")
}

/// Starts killing the task `tid` of `app` (see the module docs). Returns
/// the task as it is now, and whether this call started the kill: a task
/// already being killed is returned unchanged, without events. `None` when
/// the app has no such task. Call inside [`Sim::mutate`], in a tokio
/// runtime.
pub fn begin(sim: &Sim, app: &mut App, tid: &str, out: &mut Vec<Payload>) -> Option<(Value, bool)> {
    let id = app_id(app).to_owned();
    let v = apps::app_version(app).to_owned();
    let grace = kill_grace(Some(app));
    let list = app.get_mut("tasks")?.as_array_mut()?;
    let pos = list.iter().position(|t| task_id(t) == tid)?;
    if is_killing(&list[pos]) {
        return Some((list[pos].clone(), false));
    }
    if let Some(t) = list[pos].as_object_mut() {
        t.insert("state".into(), Value::from(KILLING));
    }
    let task = list[pos].clone();
    out.extend(events::task_changed(&id, &task, KILLING, &v));
    let servers = sim.take_servers(tid);
    if grace.is_zero() {
        drop(servers);
        list.remove(pos);
        out.extend(events::task_changed(&id, &task, "TASK_KILLED", &v));
    } else {
        let (sim, tid) = (sim.clone(), tid.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            // The process exits, then Mesos reports it.
            drop(servers);
            let _ = sim.mutate(|list, _, out| {
                finish(list, &id, &tid, out);
                Ok(())
            });
        });
    }
    apps::refresh_counts(app);
    Some((task, true))
}

/// The end of a kill: the task, if still listed as killing, leaves its app
/// with `TASK_KILLED`.
fn finish(list: &mut [App], id: &str, tid: &str, out: &mut Vec<Payload>) {
    let Some(app) = list.iter_mut().find(|a| app_id(a) == id) else {
        return;
    };
    let v = apps::app_version(app).to_owned();
    let Some(tasks) = app.get_mut("tasks").and_then(Value::as_array_mut) else {
        return;
    };
    let Some(pos) = tasks
        .iter()
        .position(|t| task_id(t) == tid && is_killing(t))
    else {
        return;
    };
    let task = tasks.remove(pos);
    out.extend(events::task_changed(id, &task, "TASK_KILLED", &v));
    apps::refresh_counts(app);
}

/// Kills every task of an app just removed from the list (`DELETE
/// /v2/apps/{id}`): `TASK_KILLING` for each now, and after the grace period
/// `TASK_KILLED` for each, then `app_terminated_event` (Marathon sends it
/// once the stop step has finished). Call inside [`Sim::mutate`], in a
/// tokio runtime.
pub fn app_removed(sim: &Sim, app: &App, out: &mut Vec<Payload>) {
    let id = app_id(app).to_owned();
    let v = apps::app_version(app).to_owned();
    let grace = kill_grace(Some(app));
    let tasks = apps::tasks(app).to_vec();
    let mut servers = Vec::new();
    for t in &tasks {
        if !is_killing(t) {
            out.extend(events::task_changed(&id, t, KILLING, &v));
        }
        servers.push(sim.take_servers(task_id(t)));
    }
    let end = move |out: &mut Vec<Payload>| {
        for t in &tasks {
            out.extend(events::task_changed(&id, t, "TASK_KILLED", &v));
        }
        out.push(events::app_terminated(&id));
    };
    if grace.is_zero() {
        end(out);
        return;
    }
    let sim = sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        drop(servers);
        let mut events = Vec::new();
        end(&mut events);
        sim.emit(events);
    });
}
