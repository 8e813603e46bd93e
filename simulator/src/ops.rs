//! Operations on the app list. Each one changes the apps and returns the events Marathon would emit for the
//! change, in Marathon's order (`status_update_event` before `instance_changed_event`).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::apps::{self, App, app_id, refresh_counts, task_state};
use crate::clock;
use crate::error::SimError;
use crate::events;
use crate::tasks::{self, Ctx};

/// An event payload (a JSON object with `eventType`).
pub type Payload = Map<String, Value>;

fn find<'a>(list: &'a mut [App], id: &str) -> Result<&'a mut App, SimError> {
    list.iter_mut()
        .find(|a| app_id(a) == id)
        .ok_or_else(|| SimError::no_app(id))
}

fn version(app: &App) -> String {
    app.get("version")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn tasks_mut(app: &mut App) -> &mut Vec<Value> {
    let t = app.entry("tasks").or_insert_with(|| json!([]));
    if !t.is_array() {
        *t = json!([]);
    }
    t.as_array_mut().expect("array")
}

/// The `status_update_event` + `instance_changed_event` pair for a task reaching `status`.
fn task_events(app: &App, task: &Value, status: &str, out: &mut Vec<Payload>) {
    let (id, v) = (app_id(app), version(app));
    out.extend(events::task_changed(id, task, status, &v));
}

fn set_instances(app: &mut App, n: u64) {
    app.insert("instances".into(), Value::from(n));
}

/// Scales the app to `n` tasks: clones its last task with fresh IDs and host ports, or kills tasks by its
/// `killSelection` (youngest first by default). Bumps `version` and `versionInfo.lastScalingAt`.
/// Returns the added or killed tasks.
pub fn scale(
    list: &mut [App],
    id: &str,
    n: usize,
    ctx: &mut Ctx<'_>,
    out: &mut Vec<Payload>,
) -> Result<Vec<Value>, SimError> {
    let app = find(list, id)?;
    let now = clock::now();
    app.insert("version".into(), Value::from(now.clone()));
    if let Some(vi) = app.get_mut("versionInfo").and_then(Value::as_object_mut) {
        vi.insert("lastScalingAt".into(), Value::from(now));
    }
    set_instances(app, n as u64);
    let mut changed = Vec::new();
    let current = apps::tasks(app).len();
    if n > current {
        for _ in current..n {
            let template = apps::tasks(app).last().cloned();
            let t = tasks::new_task(app, template.as_ref(), None, ctx);
            tasks_mut(app).push(t.clone());
            task_events(app, &t, "TASK_RUNNING", out);
            changed.push(t);
        }
    } else {
        let oldest_first = app.get("killSelection").and_then(Value::as_str) == Some("OLDEST_FIRST");
        for _ in n..current {
            let ts = tasks_mut(app);
            let t = if oldest_first {
                ts.remove(0)
            } else {
                ts.pop().expect("non-empty")
            };
            task_events(app, &t, "TASK_KILLED", out);
            changed.push(t);
        }
    }
    refresh_counts(app);
    Ok(changed)
}

/// Adds a task built from `partial` over a fresh clone of the app's last task (unset fields get fresh
/// values), and counts it in `instances`.
pub fn add_task(
    list: &mut [App],
    id: &str,
    partial: Map<String, Value>,
    ctx: &mut Ctx<'_>,
    out: &mut Vec<Payload>,
) -> Result<Value, SimError> {
    let app = find(list, id)?;
    let forced = partial.get("id").and_then(Value::as_str);
    if let Some(tid) = forced
        && apps::tasks(app)
            .iter()
            .any(|t| t.get("id").and_then(Value::as_str) == Some(tid))
    {
        return Err(SimError::Conflict(format!("Task '{tid}' already exists")));
    }
    let template = apps::tasks(app).last().cloned();
    let mut t = tasks::new_task(app, template.as_ref(), forced, ctx);
    let obj = t.as_object_mut().expect("object");
    if let Some(host) = partial.get("host").and_then(Value::as_str)
        && !partial.contains_key("ipAddresses")
    {
        obj.insert("ipAddresses".into(), tasks::ip_addresses(host));
    }
    let started_given = partial.contains_key("startedAt");
    obj.extend(partial);
    obj.insert("appId".into(), Value::from(id));
    let staged = matches!(task_state(&t), "TASK_STAGING" | "TASK_STARTING");
    if staged && !started_given {
        t.as_object_mut().expect("object").remove("startedAt");
    }
    let status = task_state(&t).to_string();
    tasks_mut(app).push(t.clone());
    let n = app.get("instances").and_then(Value::as_u64).unwrap_or(0);
    set_instances(app, n + 1);
    refresh_counts(app);
    task_events(app, &t, &status, out);
    Ok(t)
}

/// Kills one task (`TASK_KILLED`); with `scale` it also lowers `instances`.
pub fn remove_task(
    list: &mut [App],
    id: &str,
    task_id: &str,
    scale: bool,
    out: &mut Vec<Payload>,
) -> Result<Value, SimError> {
    let app = find(list, id)?;
    let ts = tasks_mut(app);
    let pos = ts
        .iter()
        .position(|t| t.get("id").and_then(Value::as_str) == Some(task_id))
        .ok_or_else(|| SimError::no_task(task_id))?;
    let t = ts.remove(pos);
    if scale {
        let n = app.get("instances").and_then(Value::as_u64).unwrap_or(1);
        set_instances(app, n.saturating_sub(1));
    }
    refresh_counts(app);
    task_events(app, &t, "TASK_KILLED", out);
    Ok(t)
}

/// Sets a task's health. Emits events only when its health flips: `health_status_changed_event` for
/// Marathon-side checks, a `TASK_RUNNING` `status_update_event` for Mesos-side ones, then
/// `instance_health_changed_event`. Returns whether it flipped and the task.
pub fn set_health(
    list: &mut [App],
    id: &str,
    task_id: &str,
    alive: bool,
    out: &mut Vec<Payload>,
) -> Result<(bool, Value), SimError> {
    let app = find(list, id)?;
    let def = app.clone();
    let ts = tasks_mut(app);
    let t = ts
        .iter_mut()
        .find(|t| t.get("id").and_then(Value::as_str) == Some(task_id))
        .ok_or_else(|| SimError::no_task(task_id))?;
    let before = tasks::healthy(t);
    tasks::set_alive(&def, t, alive);
    let t = t.clone();
    refresh_counts(app);
    let changed = before != Some(alive);
    if changed {
        health_events(app, &t, alive, out);
    }
    Ok((changed, t))
}

fn health_events(app: &App, task: &Value, alive: bool, out: &mut Vec<Payload>) {
    let (id, v, inst) = (app_id(app), version(app), tasks::instance_id(task));
    if tasks::marathon_side_health(app) {
        out.push(events::health_status_changed(id, &inst, &v, alive));
    } else {
        out.push(events::status_update(id, task, task_state(task), &v));
    }
    out.push(events::instance_health_changed(id, &inst, &v, alive));
}

/// Removes an app: its tasks are killed, then `app_terminated_event`.
pub fn remove_app(list: &mut Vec<App>, id: &str, out: &mut Vec<Payload>) -> Result<App, SimError> {
    let pos = list
        .iter()
        .position(|a| app_id(a) == id)
        .ok_or_else(|| SimError::no_app(id))?;
    let app = list.remove(pos);
    terminate(&app, out);
    Ok(app)
}

fn terminate(app: &App, out: &mut Vec<Payload>) {
    for t in apps::tasks(app) {
        task_events(app, t, "TASK_KILLED", out);
    }
    out.push(events::app_terminated(app_id(app)));
}

/// The events that turn `old` into `new`: `api_post_event` for each created or redefined app, task
/// events for started, changed and vanished tasks, health events for flips, and termination of removed
/// apps.
pub fn diff(old: &[App], new: &[App], out: &mut Vec<Payload>) {
    let old_by_id: HashMap<&str, &App> = old.iter().map(|a| (app_id(a), a)).collect();
    for app in new {
        let id = app_id(app);
        let prev = old_by_id.get(id).copied();
        let def = apps::definition(app);
        match prev {
            None => out.push(events::api_post("/v2/apps", def)),
            Some(p) if apps::definition(p) != def => {
                out.push(events::api_post(&format!("/v2/apps{id}"), def))
            }
            Some(_) => {}
        }
        let prev_tasks: HashMap<&str, &Value> = prev
            .map(|p| {
                apps::tasks(p)
                    .iter()
                    .filter_map(|t| Some((t.get("id")?.as_str()?, t)))
                    .collect()
            })
            .unwrap_or_default();
        for t in apps::tasks(app) {
            let tid = t.get("id").and_then(Value::as_str).unwrap_or("");
            match prev_tasks.get(tid) {
                None => task_events(app, t, task_state(t), out),
                Some(p) if task_state(p) != task_state(t) => {
                    task_events(app, t, task_state(t), out)
                }
                Some(p) => {
                    if let (Some(b), Some(a)) = (tasks::healthy(p), tasks::healthy(t))
                        && a != b
                    {
                        health_events(app, t, a, out);
                    }
                }
            }
        }
        let now: Vec<&str> = apps::tasks(app)
            .iter()
            .filter_map(|t| t.get("id")?.as_str())
            .collect();
        for (tid, t) in &prev_tasks {
            if !now.contains(tid) {
                task_events(app, t, "TASK_KILLED", out);
            }
        }
    }
    let new_ids: Vec<&str> = new.iter().map(app_id).collect();
    for app in old.iter().filter(|a| !new_ids.contains(&app_id(a))) {
        terminate(app, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::UuidGen;

    fn doc() -> Vec<App> {
        let v = json!([{"id": "/a/b", "instances": 1, "version": "v", "labels": {},
            "portDefinitions": [{"port": 10000}], "healthChecks": [{"protocol": "HTTP"}],
            "tasks": [{"id": "a_b.1", "appId": "/a/b", "host": "10.0.0.1", "state": "TASK_RUNNING",
                       "ports": [31000], "healthCheckResults": [{"alive": true, "instanceId": "a_b.instance-1"}]}]}]);
        serde_json::from_value(v).expect("apps")
    }

    fn types(out: &[Payload]) -> Vec<&str> {
        out.iter()
            .map(|e| e["eventType"].as_str().expect("type"))
            .collect()
    }

    #[test]
    fn scale_up_and_down() {
        let mut list = doc();
        let uuids = UuidGen::default();
        let mut next = tasks::first_free_port(&list);
        let mut ctx = Ctx {
            uuids: &uuids,
            next_port: &mut next,
        };
        let mut out = Vec::new();
        let added = scale(&mut list, "/a/b", 3, &mut ctx, &mut out).expect("scale");
        assert_eq!(added.len(), 2);
        assert_eq!(apps::tasks(&list[0]).len(), 3);
        assert_eq!(list[0]["tasksRunning"], 3);
        assert_eq!(added[0]["ports"], json!([31001]));
        assert_eq!(
            types(&out)[..2],
            ["status_update_event", "instance_changed_event"]
        );
        out.clear();
        let killed = scale(&mut list, "/a/b", 0, &mut ctx, &mut out).expect("scale");
        assert_eq!(killed.len(), 3);
        assert_eq!(out[0]["taskStatus"], "TASK_KILLED");
        assert_eq!(list[0]["instances"], 0);
        assert!(scale(&mut list, "/nope", 1, &mut ctx, &mut out).is_err());
    }

    #[test]
    fn health_flip_emits_once() {
        let mut list = doc();
        let mut out = Vec::new();
        let (changed, _) = set_health(&mut list, "/a/b", "a_b.1", false, &mut out).expect("health");
        assert!(changed);
        assert_eq!(
            types(&out),
            [
                "health_status_changed_event",
                "instance_health_changed_event"
            ]
        );
        assert_eq!(out[0]["instanceId"], "a_b.instance-1");
        out.clear();
        let (changed, _) = set_health(&mut list, "/a/b", "a_b.1", false, &mut out).expect("health");
        assert!(!changed);
        assert!(out.is_empty());
    }

    #[test]
    fn diff_reports_changes() {
        let old = doc();
        let mut new = doc();
        new[0].insert("labels".into(), json!({"x": "y"}));
        tasks_mut(&mut new[0]).clear();
        let mut extra = doc()[0].clone();
        extra.insert("id".into(), json!("/c"));
        extra.remove("tasks");
        new.push(extra);
        let mut out = Vec::new();
        diff(&old, &new, &mut out);
        assert_eq!(
            types(&out),
            [
                "api_post_event",
                "status_update_event",
                "instance_changed_event",
                "api_post_event"
            ]
        );
        assert_eq!(out[0]["uri"], "/v2/apps/a/b");
        assert!(out[0]["appDefinition"].get("tasks").is_none());
        assert_eq!(out[3]["uri"], "/v2/apps");
        out.clear();
        diff(&new, &[], &mut out);
        assert_eq!(
            types(&out),
            ["app_terminated_event", "app_terminated_event"]
        );
    }
}
