//! The admin API under `/_sim/` (not Marathon's; no auth, not logged, never faulted).
//!
//! | request | effect |
//! |---|---|
//! | `GET /_sim/apps` | the raw app document |
//! | `PUT /_sim/apps[?events=false]` | replace it (`{"apps": [...]}` or a list); emits the diff's events |
//! | `POST /_sim/apps/{id}/scale?instances=N` | clone the last task / kill tasks; task events |
//! | `POST /_sim/apps/{id}/tasks` + task JSON | add a task (given fields over a fresh clone); 201 |
//! | `POST /_sim/apps/{id}/tasks/{taskId}/health?alive=B` | set health; health events on a flip |
//! | `DELETE /_sim/apps/{id}/tasks/{taskId}[?scale=false]` | kill a task (lowers `instances` unless `scale=false`) |
//! | `DELETE /_sim/apps/{id}` | remove an app: `TASK_KILLED`s, then `app_terminated_event` |
//! | `POST /_sim/events` + `{"eventType": …}` | broadcast an arbitrary event |
//! | `GET`/`POST /_sim/fault` | read / set the fault (see [`crate::fault`]) |
//! | `POST /_sim/sse/stall`, `/_sim/sse/resume` | freeze / unfreeze open streams, keep-alives included |
//! | `POST /_sim/sse/disconnect` | close every open stream (as on leader loss) |
//! | `GET`/`DELETE /_sim/requests` | the Marathon requests received / clear them |

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::apps::{self, app_id};
use crate::error::SimError;
use crate::fault::Fault;
use crate::marathon::json_response;
use crate::ops;
use crate::query::Query;
use crate::state::Sim;

/// The admin routes.
pub fn router() -> Router<Sim> {
    Router::new()
        .route("/_sim/apps", get(get_apps).put(put_apps))
        .route("/_sim/apps/{*rest}", post(post_app).delete(delete_app))
        .route("/_sim/events", post(post_event))
        .route("/_sim/fault", get(get_fault).post(set_fault))
        .route("/_sim/sse/stall", post(stall))
        .route("/_sim/sse/resume", post(resume))
        .route("/_sim/sse/disconnect", post(disconnect))
        .route("/_sim/requests", get(requests).delete(clear_requests))
}

type Answer = Result<Response, SimError>;

fn ok(body: Value) -> Answer {
    Ok(json_response(StatusCode::OK, &body))
}

fn parse_json(body: &Bytes) -> Result<Value, SimError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| SimError::BadRequest(format!("Invalid JSON: {e}")))
}

/// `a/b` or `/a/b/` → `/a/b`.
fn norm_id(s: &str) -> String {
    format!("/{}", s.trim_matches('/'))
}

async fn get_apps(State(sim): State<Sim>) -> Response {
    json_response(StatusCode::OK, &json!({ "apps": &*sim.apps() }))
}

async fn put_apps(State(sim): State<Sim>, RawQuery(raw): RawQuery, body: Bytes) -> Answer {
    let emit = Query::parse(raw.as_deref()).first("events") != Some("false");
    let list = apps::parse_doc(parse_json(&body)?).map_err(SimError::BadRequest)?;
    let n = list.len();
    let events = sim.replace_apps(list, emit);
    ok(json!({"apps": n, "events": events}))
}

/// `POST /_sim/apps/{id}/scale`, `…/{id}/tasks` and `…/{id}/tasks/{taskId}/health`.
async fn post_app(
    State(sim): State<Sim>,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Answer {
    let q = Query::parse(raw.as_deref());
    let rest = rest.trim_end_matches('/');
    if let Some(id) = rest.strip_suffix("/scale") {
        let id = norm_id(id);
        let n = q
            .first("instances")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| SimError::BadRequest("scale needs ?instances=N (N >= 0)".into()))?;
        let changed = sim.mutate(|list, ctx, out| ops::scale(list, &id, n, ctx, out))?;
        return ok(json!({"app": id, "instances": n, "tasks": changed}));
    }
    if let Some((id, task)) = rest
        .strip_suffix("/health")
        .and_then(|r| r.rsplit_once("/tasks/"))
    {
        let (id, task) = (norm_id(id), task.to_string());
        let alive = match q.first("alive") {
            Some("true") => true,
            Some("false") => false,
            _ => {
                return Err(SimError::BadRequest(
                    "health needs ?alive=true|false".into(),
                ));
            }
        };
        let (changed, t) =
            sim.mutate(|list, _, out| ops::set_health(list, &id, &task, alive, out))?;
        return ok(json!({"changed": changed, "task": t}));
    }
    if let Some(id) = rest.strip_suffix("/tasks") {
        let id = norm_id(id);
        let partial: Map<String, Value> = match parse_json(&body)? {
            Value::Object(m) => m,
            _ => return Err(SimError::BadRequest("a task must be a JSON object".into())),
        };
        let t = sim.mutate(|list, ctx, out| ops::add_task(list, &id, partial, ctx, out))?;
        return Ok(json_response(StatusCode::CREATED, &json!({ "task": t })));
    }
    Err(SimError::NotFound(format!(
        "no admin action at /_sim/apps/{rest}"
    )))
}

/// `DELETE /_sim/apps/{id}/tasks/{taskId}` or `DELETE /_sim/apps/{id}`.
async fn delete_app(
    State(sim): State<Sim>,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let scale = Query::parse(raw.as_deref()).first("scale") != Some("false");
    let rest = rest.trim_end_matches('/');
    if let Some((id, task)) = rest.rsplit_once("/tasks/") {
        let id = norm_id(id);
        if sim.apps().iter().any(|a| app_id(a) == id) {
            let t = sim.mutate(|list, _, out| ops::remove_task(list, &id, task, scale, out))?;
            return ok(json!({ "task": t }));
        }
    }
    let id = norm_id(rest);
    let app = sim.mutate(|list, _, out| ops::remove_app(list, &id, out))?;
    ok(json!({ "app": app_id(&app) }))
}

async fn post_event(State(sim): State<Sim>, body: Bytes) -> Answer {
    match parse_json(&body)? {
        Value::Object(m) => {
            sim.publish(m)?;
            ok(json!({"ok": true, "subscribers": sim.subscribers()}))
        }
        _ => Err(SimError::BadRequest(
            "an event must be a JSON object".into(),
        )),
    }
}

async fn get_fault(State(sim): State<Sim>) -> Response {
    json_response(StatusCode::OK, &*sim.fault().borrow())
}

async fn set_fault(State(sim): State<Sim>, body: Bytes) -> Answer {
    let fault: Fault = serde_json::from_value(parse_json(&body)?)
        .map_err(|e| SimError::BadRequest(format!("Invalid fault: {e}")))?;
    fault.validate().map_err(SimError::BadRequest)?;
    sim.set_fault(fault.clone());
    Ok(json_response(StatusCode::OK, &fault))
}

async fn stall(State(sim): State<Sim>) -> Response {
    sim.set_sse_stalled(true);
    json_response(
        StatusCode::OK,
        &json!({"stalled": true, "streams": sim.subscribers()}),
    )
}

async fn resume(State(sim): State<Sim>) -> Response {
    sim.set_sse_stalled(false);
    json_response(
        StatusCode::OK,
        &json!({"stalled": false, "streams": sim.subscribers()}),
    )
}

async fn disconnect(State(sim): State<Sim>) -> Response {
    let streams = sim.subscribers();
    sim.disconnect_streams();
    json_response(StatusCode::OK, &json!({ "disconnected": streams }))
}

async fn requests(State(sim): State<Sim>) -> Response {
    json_response(StatusCode::OK, &sim.requests())
}

async fn clear_requests(State(sim): State<Sim>) -> impl IntoResponse {
    sim.clear_requests();
    StatusCode::NO_CONTENT
}
