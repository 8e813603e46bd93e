//! `POST /v2/apps`: create an app, as
//! `curl -H 'Content-Type: application/json' <marathon>/v2/apps -d@app.json` does.
//!
//! What Marathon does, in the simulator's terms: the body must be JSON sent as `application/json` (415
//! otherwise), with a string `id` (422); an existing id is a 409. Service ports left at 0
//! (`portDefinitions[].port`, `container.portMappings[].servicePort`) are assigned from 10000 up, skipping
//! those other apps use; `instances` (1), `labels` and `env` ({}) get Marathon's defaults. The deployment is instant: `instances` (default 1) tasks start at once on
//! `127.0.0.1` with fresh host ports (so a test can serve them on loopback). Events: `api_post_event`, then
//! `status_update_event` + `instance_changed_event` per task. The answer is 201 with `Location` and the app
//! as created: counts 0, `deployments: [{"id"}]`, no `versionInfo`, no tasks.

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::apps::{App, RUNTIME_KEYS, app_id, refresh_counts};
use crate::clock;
use crate::events;
use crate::marathon::json_response;
use crate::ops::Payload;
use crate::state::Sim;
use crate::tasks::{self, Ctx};

/// The first service port Marathon hands out (its `--local_port_min`).
const SERVICE_PORT_MIN: u64 = 10_000;

/// `POST /v2/apps`.
pub async fn create_app(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json_type {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({"message": "HTTP 415 Unsupported Media Type"}),
        );
    }
    let mut app: App = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => m,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                json!({"message": "Invalid JSON", "details": [{"path": "/", "errors": ["error.expected.jsobject"]}]}),
            );
        }
    };
    let Some(id) = app.get("id").and_then(Value::as_str) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Object is not valid", "details": [{"path": "/id", "errors": ["error.path.missing"]}]}),
        );
    };
    let id = format!("/{}", id.trim_matches('/'));
    app.insert("id".into(), Value::from(id.clone()));
    for key in RUNTIME_KEYS {
        app.remove(*key);
    }
    // Defaults Marathon fills in (and always returns).
    app.entry("instances").or_insert_with(|| Value::from(1));
    app.entry("labels").or_insert_with(|| json!({}));
    app.entry("env").or_insert_with(|| json!({}));
    let now = clock::now();
    app.insert("version".into(), Value::from(now.clone()));
    let created = sim.mutate(|list, ctx, out| {
        if list.iter().any(|a| app_id(a) == id) {
            return Err(crate::error::SimError::Conflict(format!(
                "An app with id [{id}] already exists."
            )));
        }
        assign_service_ports(&mut app, list);
        let answer = app.clone();
        out.push(events::api_post("/v2/apps", app.clone()));
        let mut stored = app.clone();
        stored.insert(
            "versionInfo".into(),
            json!({"lastScalingAt": now, "lastConfigChangeAt": now}),
        );
        start_tasks(&mut stored, ctx, out);
        list.push(stored);
        Ok((answer, ctx.uuids.next()))
    });
    match created {
        Ok((mut answer, deployment)) => {
            for k in [
                "tasksStaged",
                "tasksRunning",
                "tasksHealthy",
                "tasksUnhealthy",
            ] {
                answer.insert(k.into(), Value::from(0));
            }
            answer.insert("deployments".into(), json!([{"id": deployment}]));
            let mut resp = json_response(StatusCode::CREATED, &answer);
            if let Ok(loc) = HeaderValue::from_str(&id) {
                resp.headers_mut().insert(header::LOCATION, loc);
            }
            resp
        }
        Err(e) => e.into_response(),
    }
}

fn error(status: StatusCode, body: Value) -> Response {
    json_response(status, &body)
}

/// The service-port slots of `app`: `portDefinitions[].port` or `container.portMappings[].servicePort`.
fn service_port_slots(app: &mut App) -> Vec<&mut Value> {
    let mut slots = Vec::new();
    for (key, value) in app.iter_mut() {
        let (list, field) = match key.as_str() {
            "portDefinitions" => (Some(value), "port"),
            "container" => (value.get_mut("portMappings"), "servicePort"),
            _ => continue,
        };
        if let Some(items) = list.and_then(Value::as_array_mut) {
            slots.extend(items.iter_mut().filter_map(|i| i.get_mut(field)));
        }
    }
    slots
}

/// Replace service ports of 0 with the lowest ports from [`SERVICE_PORT_MIN`] that no app uses.
fn assign_service_ports(app: &mut App, others: &mut [App]) {
    let mut used: HashSet<u64> = others
        .iter_mut()
        .flat_map(|a| {
            service_port_slots(a)
                .into_iter()
                .filter_map(|v| v.as_u64())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut next = SERVICE_PORT_MIN;
    for slot in service_port_slots(app) {
        if slot.as_u64() == Some(0) {
            while used.contains(&next) {
                next += 1;
            }
            *slot = Value::from(next);
            used.insert(next);
        }
    }
}

/// Start `instances` tasks on loopback with fresh host ports.
fn start_tasks(app: &mut App, ctx: &mut Ctx<'_>, out: &mut Vec<Payload>) {
    let n = app.get("instances").and_then(Value::as_u64).unwrap_or(1);
    let id = app_id(app).to_owned();
    let version = app
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut started = Vec::new();
    for _ in 0..n {
        let template = started.last().cloned();
        let t = tasks::new_task(app, template.as_ref(), None, ctx);
        out.push(events::status_update(&id, &t, "TASK_RUNNING", &version));
        out.push(events::instance_changed(
            &id,
            &t,
            &tasks::instance_id(&t),
            "TASK_RUNNING",
            &version,
        ));
        started.push(t);
    }
    app.insert("tasks".into(), Value::Array(started));
    refresh_counts(app);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> App {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn zero_service_ports_get_free_ones() {
        let mut others = vec![obj(
            json!({"id": "/a", "portDefinitions": [{"port": 10000}]}),
        )];
        let mut app = obj(json!({"id": "/b", "container": {"portMappings": [
            {"containerPort": 80, "servicePort": 0}, {"containerPort": 81, "servicePort": 10500}, {"containerPort": 82, "servicePort": 0}
        ]}}));
        assign_service_ports(&mut app, &mut others);
        let ports: Vec<_> = service_port_slots(&mut app)
            .into_iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(ports, [10001, 10500, 10002]);
    }
}
