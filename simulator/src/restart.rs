//! Rolling restarts: `POST /v2/apps/{id}/restart[?force=true]` replaces
//! every task of an app by a new one, honouring its `upgradeStrategy` the
//! way Marathon's `TaskReplaceActor` does:
//!
//! * `minHealthy = ceil(instances × minimumHealthCapacity)` tasks stay
//!   running (and healthy, with health checks) throughout;
//! * at most `maxCapacity = floor(instances × (1 + maximumOverCapacity))`
//!   tasks exist at once — killing ones included until they are dead — plus
//!   one when `minHealthy == maxCapacity`, so the restart can proceed;
//! * old tasks beyond `minHealthy` are killed at once; then each new task
//!   that runs (and is healthy) lets one more old task be killed, and each
//!   old task that is gone makes room to launch a new one.
//!
//! Kills go through [`crate::kill`] (`TASK_KILLING`, the grace period, then
//! `TASK_KILLED`); new tasks are launched by the engine as real loopback
//! servers (`TASK_STAGING`, `TASK_RUNNING`, health probed). The restart is a
//! deployment with one step (`RestartApplication`): `deployment_info` when
//! it starts, `deployment_step_success` and `deployment_success` when every
//! task is new, running and healthy and the old ones are dead. The app gets
//! a new `version` (a configuration change: `versionInfo` both timestamps);
//! tasks launched before it are the old ones. Marathon emits no
//! `api_post_event` for a restart.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::apps::{self, App, app_id, task_state};
use crate::clock;
use crate::deploy::{deployment_answer, start_deployment, unlocked};
use crate::engine;
use crate::error::SimError;
use crate::events;
use crate::kill;
use crate::ops::Payload;
use crate::query::Query;
use crate::state::Sim;
use crate::tasks::{self, Ctx};

/// A rolling restart in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Restart {
    /// The deployment it runs as.
    pub deployment: String,
    /// The app version of the new tasks.
    pub version: String,
    /// Tasks that must stay running and healthy.
    pub min_healthy: usize,
    /// Most tasks (old, killing and new) at once.
    pub max_capacity: usize,
    /// The deployment plan (light form).
    pub plan: Value,
}

/// `minHealthy` and `maxCapacity` for `instances` tasks of which `running`
/// run now (Marathon's `computeRestartStrategy`, non-resident apps).
pub fn strategy(app: &App, instances: usize, running: usize) -> (usize, usize) {
    let us = app.get("upgradeStrategy");
    let factor = |key: &str| {
        us.and_then(|u| u.get(key))
            .and_then(Value::as_f64)
            .unwrap_or(1.0)
            .clamp(0.0, 1.0)
    };
    let n = instances as f64;
    let min_healthy = (n * factor("minimumHealthCapacity")).ceil() as usize;
    let mut max_capacity = (n * (1.0 + factor("maximumOverCapacity"))) as usize;
    if min_healthy == max_capacity && max_capacity <= running {
        max_capacity += 1;
    }
    (min_healthy, max_capacity)
}

fn step(app: &str) -> Value {
    json!({"actions": [{"action": "RestartApplication", "app": app}]})
}

/// `POST /v2/apps/{id}/restart[?force=true]`: 200 with a deployment result
/// and `Marathon-Deployment-Id`; 404 for an unknown app, 409 while another
/// deployment runs unless forced. Other `POST /v2/apps/…` paths: 405.
pub async fn restart(
    State(sim): State<Sim>,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, SimError> {
    let Some(id) = rest.trim_end_matches('/').strip_suffix("/restart") else {
        return Ok(StatusCode::METHOD_NOT_ALLOWED.into_response());
    };
    let id = format!("/{}", id.trim_matches('/'));
    let force = Query::parse(raw.as_deref()).first("force") == Some("true");
    let now = clock::now();
    let sim2 = sim.clone();
    let deployment = sim.mutate(|list, _, out| {
        let app = unlocked(list, &id, force)?;
        app.insert("version".into(), Value::from(now.clone()));
        if let Some(vi) = app.get_mut("versionInfo").and_then(Value::as_object_mut) {
            vi.insert("lastScalingAt".into(), Value::from(now.clone()));
            vi.insert("lastConfigChangeAt".into(), Value::from(now.clone()));
        }
        let deployment = start_deployment(&sim2, app);
        let instances = app.get("instances").and_then(Value::as_u64).unwrap_or(0) as usize;
        let running = apps::tasks(app)
            .iter()
            .filter(|t| task_state(t) == "TASK_RUNNING")
            .count();
        let (min_healthy, max_capacity) = strategy(app, instances, running);
        let plan = json!({"id": deployment, "steps": [step(&id)], "version": now});
        out.push(events::deployment_info(&plan, &step(&id)));
        sim2.set_restart(
            &id,
            Restart {
                deployment: deployment.clone(),
                version: now.clone(),
                min_healthy,
                max_capacity,
                plan,
            },
        );
        Ok(deployment)
    })?;
    sim.manage(&id);
    Ok(deployment_answer(&now, &deployment))
}

/// The restart of `app` if it is still the app's running deployment (a
/// forced update or scale supersedes it).
pub(crate) fn active(sim: &Sim, app: &App) -> Option<Restart> {
    let id = app_id(app);
    let r = sim.restart_of(id)?;
    let current = app
        .get("deployments")
        .and_then(Value::as_array)
        .and_then(|d| d.first())
        .and_then(|d| d.get("id"))
        .and_then(Value::as_str);
    if current == Some(r.deployment.as_str()) {
        Some(r)
    } else {
        sim.end_restart(id);
        None
    }
}

/// One engine tick of a restart (after staging tasks started running):
/// kill what the strategy allows, launch what capacity allows, and finish
/// the deployment once only new, ready tasks are left.
pub(crate) fn advance(
    sim: &Sim,
    app: &mut App,
    r: &Restart,
    ctx: &mut Ctx<'_>,
    out: &mut Vec<Payload>,
) {
    let id = app_id(app).to_owned();
    let want = app.get("instances").and_then(Value::as_u64).unwrap_or(0) as usize;
    let checked = engine::has_check(app);
    let is_new = |t: &Value| t.get("version").and_then(Value::as_str) == Some(&r.version);
    let ready = |t: &Value| {
        task_state(t) == "TASK_RUNNING" && (!checked || tasks::healthy(t) == Some(true))
    };
    let list = apps::tasks(app);
    let old: Vec<String> = list
        .iter()
        .filter(|t| !kill::is_killing(t) && !is_new(t))
        .filter_map(|t| t.get("id")?.as_str().map(str::to_owned))
        .collect();
    let mut new = list
        .iter()
        .filter(|t| !kill::is_killing(t) && is_new(t))
        .count();
    let new_ready = list
        .iter()
        .filter(|t| !kill::is_killing(t) && is_new(t) && ready(t))
        .count();
    // Old tasks go while enough others stay running: oldest first.
    let mut old_left = old.len();
    for tid in &old {
        if old_left + new_ready <= r.min_healthy {
            break;
        }
        kill::begin(sim, app, tid, out);
        old_left -= 1;
    }
    // Killing tasks take room until they are dead (a grace of 0: at once).
    let dying = apps::tasks(app)
        .iter()
        .filter(|t| kill::is_killing(t))
        .count();
    while new < want && old_left + dying + new < r.max_capacity {
        if !engine::launch(sim, app, ctx, out) {
            break;
        }
        new += 1;
    }
    let done = old_left == 0 && dying == 0 && new == want && new_ready == want;
    if done {
        app.insert("deployments".into(), json!([]));
        out.push(events::deployment_step_success(&r.plan, &step(&id)));
        out.push(events::deployment_success(&r.deployment, &r.plan));
        sim.end_restart(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(strategy: Value) -> App {
        json!({"id": "/a", "upgradeStrategy": strategy})
            .as_object()
            .cloned()
            .expect("object")
    }

    #[test]
    fn strategy_as_marathon_computes_it() {
        let s = |min: f64, over: f64, n, running| {
            let a = app(json!({"minimumHealthCapacity": min, "maximumOverCapacity": over}));
            strategy(&a, n, running)
        };
        assert_eq!(s(0.5, 0.25, 4, 4), (2, 5));
        assert_eq!(s(1.0, 1.0, 4, 4), (4, 8));
        assert_eq!(s(0.0, 0.0, 4, 4), (0, 4));
        // Equal bounds: one extra task so the restart can proceed.
        assert_eq!(s(1.0, 0.0, 2, 2), (2, 3));
        assert_eq!(s(1.0, 0.0, 2, 1), (2, 2));
        // No strategy: Marathon's default (1, 1).
        let bare = json!({"id": "/a"}).as_object().cloned().expect("object");
        assert_eq!(strategy(&bare, 3, 3), (3, 6));
    }
}
