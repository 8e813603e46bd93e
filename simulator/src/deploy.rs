//! Marathon's write endpoints, with deployments: `POST /v2/apps`,
//! `PUT /v2/apps/{id}` (scale; `?force=true` overrides a running deployment),
//! `DELETE /v2/apps/{id}`, `POST /v2/tasks/delete[?scale=true]` and
//! `GET /v2/deployments` (`POST /v2/apps/{id}/restart` is in
//! [`crate::restart`]). Kills go through [`crate::kill`]. Bodies are checked (and new apps completed) by
//! [`crate::appdef`], with Marathon's status codes and error shapes.
//!
//! An app written here is *managed*: the [`crate::engine`] launches its
//! tasks as real loopback HTTP servers ([`crate::backend`]), runs its
//! health checks against them and finishes its deployment once every task
//! runs (and is healthy). While a deployment runs, the app lists it in
//! `deployments` and `GET /v2/deployments` shows it.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::appdef;
use crate::apps::{self, App, app_id};
use crate::clock;
use crate::error::SimError;
use crate::events;
use crate::kill;
use crate::marathon::json_response;
use crate::query::Query;
use crate::state::Sim;

type Answer = Result<Response, SimError>;

/// Starts a deployment of `app`: `deployments: [{"id"}]`; returns its id.
pub(crate) fn start_deployment(sim: &Sim, app: &mut App) -> String {
    let id = sim.next_uuid();
    app.insert("deployments".into(), json!([{ "id": id }]));
    id
}

/// A deployment result: 200 `{"version", "deploymentId"}` with the
/// `Marathon-Deployment-Id` header.
pub(crate) fn deployment_answer(version: &str, deployment: &str) -> Response {
    let mut resp = json_response(
        StatusCode::OK,
        &json!({"version": version, "deploymentId": deployment}),
    );
    if let Ok(v) = HeaderValue::from_str(deployment) {
        resp.headers_mut().insert("marathon-deployment-id", v);
    }
    resp
}

/// The app `id` of `list`, to be changed: 404 if unknown, 409 while a
/// deployment runs on it unless `force`.
pub(crate) fn unlocked<'a>(
    list: &'a mut [App],
    id: &str,
    force: bool,
) -> Result<&'a mut App, SimError> {
    let app = list
        .iter_mut()
        .find(|a| app_id(a) == id)
        .ok_or_else(|| SimError::no_app(id))?;
    let locked = app
        .get("deployments")
        .and_then(Value::as_array)
        .is_some_and(|d| !d.is_empty());
    if locked && !force {
        return Err(SimError::Conflict(
            "App is locked by one or more deployments. Override with the option '?force=true'."
                .into(),
        ));
    }
    Ok(app)
}

/// `POST /v2/apps`: create an app ([`appdef`] checks and completes it; 409 if the id is taken). The
/// answer is Marathon's: 201, `Location` and `Marathon-Deployment-Id`, the app as created with counts
/// of 0 and its deployment, without tasks or `versionInfo`.
pub async fn create(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Answer {
    let mut app = appdef::new_app(appdef::json_object(&headers, &body)?)?;
    let id = app_id(&app).to_owned();
    let now = clock::now();
    app.insert("version".into(), Value::from(now.clone()));
    let sim2 = sim.clone();
    let (mut answer, deployment) = sim.mutate(|list, _, out| {
        if list.iter().any(|a| app_id(a) == id) {
            return Err(SimError::Conflict(format!(
                "An app with id [{id}] already exists."
            )));
        }
        appdef::assign_service_ports(&mut app, list);
        out.push(events::api_post("/v2/apps", app.clone()));
        let answer = app.clone();
        app.insert(
            "versionInfo".into(),
            json!({"lastScalingAt": now, "lastConfigChangeAt": now}),
        );
        app.insert("tasks".into(), json!([]));
        let deployment = start_deployment(&sim2, &mut app);
        apps::refresh_counts(&mut app);
        list.push(app);
        Ok((answer, deployment))
    })?;
    sim.manage(&id);
    for k in [
        "tasksStaged",
        "tasksRunning",
        "tasksHealthy",
        "tasksUnhealthy",
    ] {
        answer.insert(k.into(), json!(0));
    }
    answer.insert("deployments".into(), json!([{ "id": deployment }]));
    let mut resp = json_response(StatusCode::CREATED, &answer);
    for (name, value) in [
        (header::LOCATION.as_str(), &id),
        ("marathon-deployment-id", &deployment),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.headers_mut().insert(name, v);
        }
    }
    Ok(resp)
}

/// `PUT /v2/apps/{id}[?force=true]`: update fields (an `instances` change
/// scales); 409 while a deployment runs, unless forced.
pub async fn update(
    State(sim): State<Sim>,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let force = Query::parse(raw.as_deref()).first("force") == Some("true");
    let id = format!("/{}", rest.trim_matches('/'));
    let patch = appdef::json_object(&headers, &body)?;
    let now = clock::now();
    let sim2 = sim.clone();
    let deployment = sim.mutate(|list, _, out| {
        let app = unlocked(list, &id, force)?;
        let scaling = patch.contains_key("instances");
        for (k, v) in patch {
            if k != "id" && !apps::RUNTIME_KEYS.contains(&k.as_str()) {
                app.insert(k, v);
            }
        }
        app.insert("version".into(), Value::from(now.clone()));
        if let Some(vi) = app.get_mut("versionInfo").and_then(Value::as_object_mut) {
            let key = if scaling {
                "lastScalingAt"
            } else {
                "lastConfigChangeAt"
            };
            vi.insert(key.into(), Value::from(now.clone()));
        }
        out.push(events::api_post(
            &format!("/v2/apps{id}"),
            apps::definition(app),
        ));
        Ok(start_deployment(&sim2, app))
    })?;
    sim.manage(&id);
    Ok(deployment_answer(&now, &deployment))
}

/// `DELETE /v2/apps/{id}`: remove it and kill its tasks ([`kill::app_removed`]:
/// `TASK_KILLING` now; `TASK_KILLED` and `app_terminated_event` after the
/// kill grace period).
pub async fn destroy(State(sim): State<Sim>, Path(rest): Path<String>) -> Answer {
    let id = format!("/{}", rest.trim_matches('/'));
    let sim2 = sim.clone();
    sim.mutate(|list, _, out| {
        let pos = list
            .iter()
            .position(|a| app_id(a) == id)
            .ok_or_else(|| SimError::no_app(&id))?;
        let app = list.remove(pos);
        kill::app_removed(&sim2, &app, out);
        Ok(())
    })?;
    sim.unmanage(&id);
    sim.end_restart(&id);
    Ok(deployment_answer(&clock::now(), &sim.next_uuid()))
}

/// `POST /v2/tasks/delete[?scale=true]` + `{"ids": [...]}`: kill tasks
/// ([`kill::begin`]: `TASK_KILLING`, the grace period, `TASK_KILLED`); with
/// `scale` their apps' `instances` drop accordingly (a task already being
/// killed is not counted twice).
pub async fn kill_tasks(
    State(sim): State<Sim>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let scale = Query::parse(raw.as_deref()).first("scale") == Some("true");
    let ids: Vec<String> = appdef::json_object(&headers, &body)?
        .get("ids")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .ok_or_else(|| SimError::Invalid {
            path: "/ids".into(),
            error: "error.path.missing".into(),
        })?;
    let sim2 = sim.clone();
    let (killed, deployment): (Vec<Value>, String) = sim.mutate(|list, _, out| {
        let mut killed = Vec::new();
        let mut deployment = String::new();
        for tid in &ids {
            let owner = list.iter().find_map(|a| {
                apps::tasks(a)
                    .iter()
                    .any(|t| t.get("id").and_then(Value::as_str) == Some(tid))
                    .then(|| app_id(a).to_owned())
            });
            let Some(app) = owner.and_then(|o| list.iter_mut().find(|a| app_id(a) == o)) else {
                continue;
            };
            let Some((task, started)) = kill::begin(&sim2, app, tid, out) else {
                continue;
            };
            killed.push(task);
            if scale {
                if started {
                    let n = app.get("instances").and_then(Value::as_u64).unwrap_or(1);
                    app.insert("instances".into(), Value::from(n.saturating_sub(1)));
                }
                deployment = start_deployment(&sim2, app);
            }
        }
        if killed.is_empty() {
            return Err(SimError::NotFound(format!("Tasks {ids:?} do not exist")));
        }
        Ok((killed, deployment))
    })?;
    if scale {
        return Ok(deployment_answer(&clock::now(), &deployment));
    }
    Ok(json_response(StatusCode::OK, &json!({ "tasks": killed })))
}

/// `GET /v2/deployments`: one entry per app with a running deployment.
pub async fn list(State(sim): State<Sim>) -> Response {
    let apps = sim.apps();
    let deployments: Vec<Value> = apps
        .iter()
        .flat_map(|a| {
            let id = app_id(a).to_owned();
            let version = a.get("version").cloned().unwrap_or(Value::Null);
            let restart = sim.restart_of(&id).map(|r| r.deployment);
            a.get("deployments")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |d| {
                    let did = d.get("id").and_then(Value::as_str);
                    let action = if restart.is_some() && restart.as_deref() == did {
                        "RestartApplication"
                    } else {
                        "ScaleApplication"
                    };
                    json!({
                        "id": d.get("id").cloned().unwrap_or(Value::Null),
                        "version": version,
                        "affectedApps": [id],
                        "affectedPods": [],
                        "steps": [{"actions": [{"action": action, "app": id}]}],
                        "currentActions": [{"action": action, "app": id, "readinessCheckResults": []}],
                        "currentStep": 1,
                        "totalSteps": 1
                    })
                })
        })
        .collect();
    json_response(StatusCode::OK, &deployments)
}
