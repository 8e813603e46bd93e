//! One step of the swap, pure: given both apps (from Marathon) and every
//! marathon-lb instance's server rows for the group's backend, decide what
//! to wait for, which old tasks to kill, how far to scale the new app, or
//! that the deployment is complete.
//!
//! Safety rules (beyond zdd.py): a step proceeds only when every new task
//! is healthy in Marathon *and* UP on every instance; only old tasks in
//! maintenance and drained on *every* instance are killed (in maintenance
//! everywhere once `--max-wait` ran out, as zdd.py); a kill never leaves
//! fewer healthy instances than the target; crash-looping new tasks fail
//! the deployment at once.

use serde_json::Value;

use super::labels::{self, instances, new_instance_count, target_instances};
use super::stats::{Row, task_port, task_row};

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing yet; the text says what for.
    Wait(String),
    /// Kill these old tasks (may be empty), then scale the new app to `scale`.
    Step {
        /// Old task ids, drained on every instance.
        kill: Vec<String>,
        /// New instance count, if it grows.
        scale: Option<u64>,
    },
    /// Every old task is drained and the new app is at its target: delete
    /// the old app (not in hybrid mode: there the deployment is complete).
    Complete,
    /// The new version cannot become healthy.
    Fail(String),
}

/// Per-instance counts, for progress lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LbCounts {
    /// Server rows of the backend.
    pub rows: usize,
    /// New tasks UP.
    pub new_up: usize,
    /// Old tasks in maintenance.
    pub old_maint: usize,
    /// Old tasks drained.
    pub old_drained: usize,
}

/// The inputs of one step.
#[derive(Debug)]
pub struct View<'a> {
    /// The old app, tasks embedded.
    pub old: &'a Value,
    /// The new app, tasks embedded.
    pub new: &'a Value,
    /// Per instance: the backend's server rows.
    pub lbs: &'a [Vec<&'a Row>],
    /// Hybrid (canary) deployment: stop at `NEW_INSTANCES`, keep the old app.
    pub hybrid: bool,
    /// `--max-wait` ran out while waiting for old tasks to drain.
    pub drain_timed_out: bool,
    /// `--linear-increase`.
    pub linear: u64,
}

fn tasks(app: &Value) -> Vec<&Value> {
    app.get("tasks")
        .and_then(Value::as_array)
        .map(|t| t.iter().collect())
        .unwrap_or_default()
}

fn state(task: &Value) -> &str {
    task.get("state").and_then(Value::as_str).unwrap_or("")
}

fn id(task: &Value) -> String {
    task.get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// Whether marathon-lb routes to the task: it leaves out staging, killing
/// and terminal tasks (`mlb_label_rules::EXCLUDED_TASK_STATES`). A killed
/// task stays listed as `TASK_KILLING` for its kill grace period; its
/// server goes to maintenance on every instance and may stay listed there
/// until its last session ends.
pub fn routable(task: &Value) -> bool {
    !mlb_label_rules::EXCLUDED_TASK_STATES.contains(&state(task))
}

/// Why instance `rows` has not caught up with Marathon, if it has not:
/// a routable task of either app without a server row, or a server row
/// taking traffic (not in maintenance) that belongs to no routable task
/// (a killed task the instance has not taken out yet). Rows of removed
/// servers in maintenance are fine: marathon-lb keeps them until their
/// sessions end.
fn behind(rows: &[&Row], live: &[&Value]) -> Option<String> {
    let missing = live.iter().filter(|t| task_row(rows, t).is_none()).count();
    let stale = rows
        .iter()
        .filter(|r| !r.is_maint())
        .filter(|r| {
            !live
                .iter()
                .any(|t| task_row(std::slice::from_ref(*r), t).is_some())
        })
        .count();
    (missing > 0 || stale > 0).then(|| {
        format!(
            "{missing} of {} running task(s) not listed, {stale} server(s) of gone tasks still taking traffic",
            live.len()
        )
    })
}

fn has_checks(app: &Value) -> bool {
    app.get("healthChecks")
        .and_then(Value::as_array)
        .is_some_and(|h| !h.is_empty())
}

/// Running and (if the app has health checks) healthy in Marathon.
pub fn healthy(app: &Value, task: &Value) -> bool {
    if state(task) != "TASK_RUNNING" || task_port(task).is_none() {
        return false;
    }
    if !has_checks(app) {
        return true;
    }
    task.get("healthCheckResults")
        .and_then(Value::as_array)
        .is_some_and(|r| {
            !r.is_empty() && r.iter().all(|r| r.get("alive") == Some(&Value::Bool(true)))
        })
}

/// Why the new version is failing, if it is: a failed task, or a health
/// check failed `maxConsecutiveFailures` times in a row.
fn failing(new: &Value) -> Option<String> {
    if let Some(f) = new.get("lastTaskFailure") {
        return Some(format!(
            "new task {} {}: {}",
            f.get("taskId").and_then(Value::as_str).unwrap_or("?"),
            f.get("state").and_then(Value::as_str).unwrap_or("failed"),
            f.get("message").and_then(Value::as_str).unwrap_or("")
        ));
    }
    let limit = new
        .get("healthChecks")
        .and_then(|h| h.get(0))
        .and_then(|h| h.get("maxConsecutiveFailures"))
        .and_then(Value::as_u64)
        .unwrap_or(3);
    for t in tasks(new) {
        if matches!(
            state(t),
            "TASK_FAILED" | "TASK_ERROR" | "TASK_LOST" | "TASK_DROPPED"
        ) {
            return Some(format!("new task {} is {}", id(t), state(t)));
        }
        let failures = t
            .get("healthCheckResults")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("consecutiveFailures")?.as_u64())
            .max()
            .unwrap_or(0);
        if limit > 0 && failures >= limit {
            return Some(format!(
                "new task {} failed its health check {failures} times in a row",
                id(t)
            ));
        }
    }
    None
}

/// Counts per instance.
pub fn counts(view: &View<'_>) -> Vec<LbCounts> {
    view.lbs
        .iter()
        .map(|rows| {
            let old = tasks(view.old);
            LbCounts {
                rows: rows.len(),
                new_up: tasks(view.new)
                    .iter()
                    .filter(|t| task_row(rows, t).is_some_and(Row::is_up))
                    .count(),
                old_maint: old
                    .iter()
                    .filter(|t| task_row(rows, t).is_some_and(Row::is_maint))
                    .count(),
                old_drained: old
                    .iter()
                    .filter(|t| task_row(rows, t).is_some_and(Row::is_drained))
                    .count(),
            }
        })
        .collect()
}

/// Decide the step.
pub fn decide(view: &View<'_>) -> Decision {
    let (old, new) = (view.old, view.new);
    if let Some(why) = failing(new) {
        return Decision::Fail(why);
    }
    if new
        .get("deployments")
        .and_then(Value::as_array)
        .is_some_and(|d| !d.is_empty())
    {
        return Decision::Wait(format!(
            "Marathon to finish deploying {}",
            labels::app_id(new)
        ));
    }
    // Killed (TASK_KILLING) and staging tasks are left out: marathon-lb
    // routes to neither, and a killed one is not killed twice.
    let old_tasks: Vec<&Value> = tasks(old).into_iter().filter(|t| routable(t)).collect();
    let new_tasks = tasks(new);
    let live: Vec<&Value> = old_tasks
        .iter()
        .chain(new_tasks.iter().filter(|t| routable(t)))
        .copied()
        .collect();
    for (i, rows) in view.lbs.iter().enumerate() {
        if let Some(why) = behind(rows, &live) {
            return Decision::Wait(format!("marathon-lb #{} to catch up ({why})", i + 1));
        }
    }
    let new_ready = |t: &&&Value| {
        healthy(new, t)
            && view
                .lbs
                .iter()
                .all(|rows| task_row(rows, t).is_some_and(Row::is_up))
    };
    let ready = new_tasks.iter().filter(new_ready).count() as u64;
    if ready < instances(new) || (new_tasks.len() as u64) < instances(new) {
        return Decision::Wait(format!(
            "new tasks to be healthy and UP on every marathon-lb ({ready}/{})",
            instances(new)
        ));
    }
    let target = target_instances(new);
    for (i, rows) in view.lbs.iter().enumerate() {
        let up = rows.iter().filter(|r| r.is_up()).count() as u64;
        if up < target.min(live.len() as u64) {
            return Decision::Wait(format!(
                "marathon-lb #{} to have {target} servers UP (has {up})",
                i + 1
            ));
        }
    }
    let everywhere = |t: &&Value, pred: fn(&Row) -> bool| {
        view.lbs
            .iter()
            .all(|rows| task_row(rows, t).is_some_and(pred))
    };
    let drained: Vec<&Value> = old_tasks
        .iter()
        .copied()
        .filter(|t| everywhere(t, Row::is_drained))
        .collect();
    let maint: Vec<&Value> = old_tasks
        .iter()
        .copied()
        .filter(|t| everywhere(t, Row::is_maint))
        .collect();
    let new_count = new_instance_count(new);
    if view.hybrid {
        if instances(new) == new_count && instances(old) == target.saturating_sub(new_count) {
            return Decision::Complete;
        }
    } else if instances(new) == target && drained.len() == old_tasks.len() {
        return Decision::Complete;
    }
    let candidates = if view.drain_timed_out { maint } else { drained };
    if candidates.is_empty() && instances(old) > 0 {
        return Decision::Wait(format!(
            "old tasks to drain on every marathon-lb ({} in maintenance everywhere)",
            old_tasks
                .iter()
                .filter(|t| everywhere(t, Row::is_maint))
                .count()
        ));
    }
    // Never below the target: healthy old tasks left + ready new ones.
    let old_healthy = old_tasks.iter().filter(|t| healthy(old, t)).count() as u64;
    let spare = (old_healthy + ready).saturating_sub(target);
    let kill: Vec<String> = candidates
        .iter()
        .take(spare as usize)
        .map(|t| id(t))
        .collect();
    let cap = if view.hybrid { new_count } else { target };
    let scale = (instances(new) < cap)
        .then(|| labels::next_scale(new, instances(old), view.linear, view.hybrid));
    if kill.is_empty() && scale.is_none() {
        return Decision::Wait(format!(
            "old tasks to drain on every marathon-lb ({} drained, none can go without dropping below {target})",
            candidates.len()
        ));
    }
    Decision::Step { kill, scale }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zdd::stats::Row;
    use serde_json::json;

    fn task(id: &str, port: u64, alive: bool) -> Value {
        json!({"id": id, "host": "127.0.0.1", "ports": [port], "state": "TASK_RUNNING",
               "healthCheckResults": [{"alive": alive}]})
    }

    fn app(id: &str, n: u64, tasks: Vec<Value>, labels: Value) -> Value {
        json!({"id": id, "instances": n, "tasks": tasks, "labels": labels,
               "healthChecks": [{"protocol": "HTTP"}], "deployments": []})
    }

    fn row(port: u64, status: &str, scur: u64) -> Row {
        Row {
            pxname: "web_10000".into(),
            svname: format!("127_0_0_1_{port}"),
            status: status.into(),
            qcur: 0,
            scur,
        }
    }

    fn decide_with(old: &Value, new: &Value, lbs: &[Vec<Row>], hybrid: bool) -> Decision {
        let rows: Vec<Vec<&Row>> = lbs.iter().map(|l| l.iter().collect()).collect();
        decide(&View {
            old,
            new,
            lbs: &rows,
            hybrid,
            drain_timed_out: false,
            linear: 0,
        })
    }

    fn labels(target: u64, new: u64) -> Value {
        json!({"HAPROXY_DEPLOYMENT_TARGET_INSTANCES": target.to_string(),
               "HAPROXY_DEPLOYMENT_NEW_INSTANCES": new.to_string()})
    }

    #[test]
    fn kills_only_what_is_drained_on_every_instance() {
        let old = app(
            "/b",
            2,
            vec![task("b1", 1, true), task("b2", 2, true)],
            json!({}),
        );
        let new = app("/g", 1, vec![task("g1", 3, true)], labels(2, 0));
        let lb = |b1: &str, scur: u64| vec![row(1, b1, scur), row(2, "UP", 0), row(3, "UP", 0)];
        // Drained on one instance, sessions on the other: wait.
        let d = decide_with(&old, &new, &[lb("MAINT", 0), lb("MAINT", 2)], false);
        assert!(
            matches!(d, Decision::Wait(ref w) if w.contains("drain")),
            "{d:?}"
        );
        // Drained everywhere: kill it and scale the new app to the target.
        let d = decide_with(&old, &new, &[lb("MAINT", 0), lb("MAINT", 0)], false);
        assert_eq!(
            d,
            Decision::Step {
                kill: vec!["b1".into()],
                scale: Some(2)
            }
        );
        // An instance that does not list the new task yet: wait.
        let short = vec![row(1, "MAINT", 0), row(2, "UP", 0)];
        let d = decide_with(&old, &new, &[lb("MAINT", 0), short], false);
        assert!(
            matches!(d, Decision::Wait(ref w) if w.contains("catch up")),
            "{d:?}"
        );
    }

    #[test]
    fn a_killed_task_is_neither_expected_nor_killed_again() {
        // b1 was killed: Marathon lists it TASK_KILLING for its grace
        // period; marathon-lb keeps its server in maintenance until its
        // sessions end.
        let mut b1 = task("b1", 1, true);
        b1["state"] = json!("TASK_KILLING");
        let old = app("/b", 1, vec![b1, task("b2", 2, true)], json!({}));
        let new = app(
            "/g",
            2,
            vec![task("g1", 3, true), task("g2", 4, true)],
            labels(2, 0),
        );
        let lb = |b1: Option<&str>, b2: &str| {
            let mut rows = vec![row(2, b2, 0), row(3, "UP", 0), row(4, "UP", 0)];
            rows.extend(b1.map(|s| row(1, s, 0)));
            rows
        };
        // Listed in maintenance, or gone: b2 drained everywhere → complete.
        let d = decide_with(
            &old,
            &new,
            &[lb(Some("MAINT"), "MAINT"), lb(None, "MAINT")],
            false,
        );
        assert_eq!(d, Decision::Complete);
        // b2 still up: wait for it, never kill b1 again.
        let d = decide_with(
            &old,
            &new,
            &[lb(Some("MAINT"), "UP"), lb(None, "UP")],
            false,
        );
        assert!(
            matches!(d, Decision::Wait(ref w) if w.contains("drain")),
            "{d:?}"
        );
        // An instance still sending traffic to the killed task: it is behind.
        let d = decide_with(
            &old,
            &new,
            &[lb(Some("UP"), "MAINT"), lb(None, "MAINT")],
            false,
        );
        assert!(
            matches!(d, Decision::Wait(ref w) if w.contains("#1 to catch up") && w.contains("1 server(s) of gone tasks")),
            "{d:?}"
        );
    }

    #[test]
    fn never_below_the_target() {
        // The new task is healthy in Marathon but DOWN in HAProxy: nothing moves.
        let old = app(
            "/b",
            2,
            vec![task("b1", 1, true), task("b2", 2, true)],
            json!({}),
        );
        let new = app("/g", 1, vec![task("g1", 3, true)], labels(2, 0));
        let lb = vec![row(1, "MAINT", 0), row(2, "UP", 0), row(3, "DOWN", 0)];
        let d = decide_with(&old, &new, &[lb.clone(), lb], false);
        assert!(
            matches!(d, Decision::Wait(ref w) if w.contains("healthy and UP")),
            "{d:?}"
        );
        // An unhealthy old task does not count: killing the drained one would leave 1 of 2.
        let old = app(
            "/b",
            2,
            vec![task("b1", 1, true), task("b2", 2, false)],
            json!({}),
        );
        let lb = vec![row(1, "MAINT", 0), row(2, "UP", 0), row(3, "UP", 0)];
        let d = decide_with(&old, &new, &[lb.clone(), lb], false);
        assert_eq!(
            d,
            Decision::Step {
                kill: vec![],
                scale: Some(2)
            }
        );
    }

    #[test]
    fn complete_and_hybrid_complete() {
        let old = app("/b", 1, vec![task("b1", 1, true)], json!({}));
        let new = app(
            "/g",
            2,
            vec![task("g1", 3, true), task("g2", 4, true)],
            labels(2, 0),
        );
        let lb = vec![row(1, "MAINT", 0), row(3, "UP", 0), row(4, "UP", 0)];
        assert_eq!(
            decide_with(&old, &new, &[lb.clone(), lb], false),
            Decision::Complete
        );
        // Canary: 1 new of 3, 2 old left → complete, both apps kept.
        let old = app(
            "/b",
            2,
            vec![task("b1", 1, true), task("b2", 2, true)],
            json!({}),
        );
        let new = app("/g", 1, vec![task("g1", 3, true)], labels(3, 1));
        let lb = vec![row(1, "UP", 0), row(2, "UP", 0), row(3, "UP", 0)];
        assert_eq!(decide_with(&old, &new, &[lb], true), Decision::Complete);
    }

    #[test]
    fn crash_looping_new_tasks_fail_fast() {
        let old = app("/b", 1, vec![task("b1", 1, true)], json!({}));
        let mut new = app("/g", 1, vec![], labels(1, 0));
        new["lastTaskFailure"] =
            json!({"taskId": "g.1", "state": "TASK_FAILED", "message": "exit 1"});
        assert!(
            matches!(decide_with(&old, &new, &[], false), Decision::Fail(ref w) if w.contains("g.1"))
        );
        let mut t = task("g2", 3, false);
        t["healthCheckResults"][0]["consecutiveFailures"] = json!(3);
        let new = app("/g", 1, vec![t], labels(1, 0));
        assert!(matches!(
            decide_with(&old, &new, &[], false),
            Decision::Fail(_)
        ));
    }
}
