//! Marathon's read endpoints: `/v2/apps`, `/v2/apps/{id}`, `/v2/apps/{id}/tasks`, `/v2/apps/{group}/*`,
//! `/v2/tasks`, `/v2/info`, `/v2/leader`, `/ping`; `/v2/events` is in [`crate::sse`]; the write endpoints
//! and `/v2/deployments` are in [`crate::deploy`].

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Value, json};

use crate::apps::{self, App, AppView, Embed, app_id, contains_ci};
use crate::deploy;
use crate::error::SimError;
use crate::query::Query;
use crate::restart;
use crate::selector::Selector;
use crate::sse;
use crate::state::Sim;

/// The Marathon routes (without middleware).
pub fn router() -> Router<Sim> {
    Router::new()
        .route("/v2/apps", get(list_apps).post(deploy::create))
        .route("/v2/apps/", get(list_apps).post(deploy::create))
        .route(
            "/v2/apps/{*rest}",
            get(app_path)
                .put(deploy::update)
                .delete(deploy::destroy)
                .post(restart::restart),
        )
        .route("/v2/tasks", get(list_tasks))
        .route("/v2/tasks/delete", post(deploy::kill_tasks))
        .route("/v2/deployments", get(deploy::list))
        .route("/v2/info", get(info))
        .route("/v2/leader", get(leader))
        .route("/ping", get(ping))
        .route("/v2/events", get(sse::events))
        .fallback(not_found)
}

/// A JSON response serialised straight from `body`.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let ct = HeaderValue::from_static("application/json");
            (status, [(header::CONTENT_TYPE, ct)], Body::from(bytes)).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Serialize)]
struct AppsBody<'a> {
    apps: Vec<AppView<'a>>,
}

async fn list_apps(State(sim): State<Sim>, RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw.as_deref());
    let embed = Embed::for_list(q.all("embed"));
    let selector = match q.first("label").filter(|l| !l.is_empty()) {
        Some(l) => match Selector::parse(l) {
            Some(s) => Some(s),
            None => {
                return SimError::BadRequest(format!("Invalid label selector: {l}"))
                    .into_response();
            }
        },
        None => None,
    };
    let (id_f, cmd_f) = (q.first("id"), q.first("cmd"));
    let apps = sim.apps();
    let keep = |a: &App| {
        id_f.is_none_or(|f| contains_ci(app_id(a), f))
            && cmd_f.is_none_or(|f| {
                a.get("cmd")
                    .and_then(Value::as_str)
                    .is_some_and(|c| contains_ci(c, f))
            })
            && selector
                .as_ref()
                .is_none_or(|s| s.matches(a.get("labels").and_then(Value::as_object)))
    };
    let apps = apps
        .iter()
        .filter(|a| keep(a))
        .map(|app| AppView { app, embed })
        .collect();
    json_response(StatusCode::OK, &AppsBody { apps })
}

/// `/v2/apps/{id}`, `/v2/apps/{id}/tasks` and `/v2/apps/{group}/*`.
async fn app_path(
    State(sim): State<Sim>,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let embed = Embed::for_single(q.all("embed"));
    let apps = sim.apps();
    let path = format!("/{}", rest.trim_matches('/'));
    let find = |id: &str| apps.iter().find(|a| app_id(a) == id);
    if let Some(group) = path.strip_suffix('*') {
        let group = if group.ends_with('/') {
            group.to_string()
        } else {
            format!("{group}/")
        };
        let views: Vec<AppView<'_>> = apps
            .iter()
            .filter(|a| app_id(a).starts_with(&group))
            .map(|app| AppView { app, embed })
            .collect();
        return json_response(StatusCode::OK, &json!({ "*": views }));
    }
    if let Some(app) = path.strip_suffix("/tasks").and_then(find) {
        return json_response(StatusCode::OK, &json!({ "tasks": apps::tasks(app) }));
    }
    match find(&path) {
        Some(app) => json_response(StatusCode::OK, &json!({ "app": AppView { app, embed } })),
        None => SimError::no_app(&path).into_response(),
    }
}

/// `/v2/tasks`, filtered by `status` / `status[]` (`running`, `staging`, … matched against `TASK_*`).
async fn list_tasks(State(sim): State<Sim>, RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw.as_deref());
    let wanted: Vec<String> = q
        .all("status")
        .chain(q.all("status[]"))
        .map(|s| format!("TASK_{}", s.to_ascii_uppercase()))
        .collect();
    let apps = sim.apps();
    let tasks: Vec<&Value> = apps
        .iter()
        .flat_map(apps::tasks)
        .filter(|t| wanted.is_empty() || wanted.iter().any(|w| w == apps::task_state(t)))
        .collect();
    json_response(StatusCode::OK, &json!({ "tasks": tasks }))
}

async fn info(State(sim): State<Sim>) -> Response {
    let leader = sim.leader();
    let port = leader
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(8080);
    let body = json!({
        "name": "marathon",
        "version": crate::MARATHON_VERSION,
        "buildref": "marathon-sim",
        "elected": true,
        "leader": leader,
        "frameworkId": "marathon-sim-0000-0000-0000-000000000000-0000",
        "marathon_config": {
            "hostname": leader.rsplit_once(':').map_or(leader, |(h, _)| h),
            "http_port": port,
            "local_port_min": 10000,
            "local_port_max": 20000,
            "master": "zk://localhost:2181/mesos",
            "mesos_role": null,
            "mesos_user": "root",
            "task_launch_timeout": 300000
        },
        "zookeeper_config": {
            "zk": "zk://localhost:2181/marathon",
            "zk_timeout": 10000,
            "zk_session_timeout": 10000,
            "zk_max_versions": 50
        },
        "http_config": {"http_port": port, "https_port": 8443}
    });
    json_response(StatusCode::OK, &body)
}

async fn leader(State(sim): State<Sim>) -> Response {
    json_response(StatusCode::OK, &json!({ "leader": sim.leader() }))
}

/// `pong` as text/plain; `"pong"` for `Accept: application/json`; 204 when the Accept header matches
/// neither.
async fn ping(headers: HeaderMap) -> Response {
    let accept: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let any = |needle: &str| accept.iter().any(|a| a.contains(needle));
    if accept.is_empty() || any("text/plain") || any("*/*") || any("text/*") {
        let ct = HeaderValue::from_static("text/plain");
        return (StatusCode::OK, [(header::CONTENT_TYPE, ct)], "pong").into_response();
    }
    if any("application/json") {
        return json_response(StatusCode::OK, &"pong");
    }
    StatusCode::NO_CONTENT.into_response()
}

/// An unmatched route: Marathon 1.6+ answers 500 `{"message":"URI not found"}` (an unknown admin path
/// gets a plain 404).
async fn not_found(uri: Uri) -> Response {
    if uri.path().starts_with("/_sim/") {
        return SimError::NotFound(format!("no admin endpoint {}", uri.path())).into_response();
    }
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({"message": "URI not found"}),
    )
}
