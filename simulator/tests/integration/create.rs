//! `POST /v2/apps`: status codes and bodies, Marathon's defaults, tasks on loopback, events.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};

use crate::common::{Sse, client, get_json, sim};

async fn post_raw(
    url: &str,
    content_type: &str,
    body: &str,
) -> (StatusCode, Option<String>, Value) {
    let r = client()
        .post(url)
        .header(CONTENT_TYPE, content_type)
        .body(body.to_owned())
        .send()
        .await
        .expect("send");
    let status = r.status();
    let location = r
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    (status, location, r.json().await.expect("json body"))
}

#[tokio::test]
async fn created_app_runs_on_loopback_and_emits_marathon_events() {
    let s = sim().await;
    let base = s.base_url();
    let url = format!("{base}/v2/apps");
    let mut sse = Sse::open(
        &base,
        "event_type=api_post_event&event_type=status_update_event",
    )
    .await;
    let app = json!({
        "id": "nginx", "instances": 2,
        "container": {"type": "DOCKER", "docker": {"image": "nginx"},
            "portMappings": [{"containerPort": 80, "hostPort": 0, "servicePort": 0}]},
        "networks": [{"mode": "container/bridge"}]
    });
    let (st, location, body) = post_raw(&url, "application/json", &app.to_string()).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(location.as_deref(), Some("/nginx"));
    assert_eq!(body["id"], "/nginx");
    assert_eq!(body["tasksRunning"], 0);
    assert!(body["deployments"][0]["id"].is_string());
    assert!(body.get("tasks").is_none() && body.get("versionInfo").is_none());
    assert_eq!(body["labels"], json!({}));
    let service_port = body["container"]["portMappings"][0]["servicePort"]
        .as_u64()
        .unwrap();
    assert!(service_port >= 10_000, "{service_port}");

    let posted = sse.expect("api_post_event").await;
    assert_eq!(posted["appDefinition"]["id"], "/nginx");
    sse.expect("status_update_event").await;
    sse.expect("status_update_event").await;

    let (st, got) = get_json(&format!("{base}/v2/apps/nginx?embed=app.tasks")).await;
    assert_eq!(st, StatusCode::OK);
    let tasks = got["app"]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    for t in tasks {
        assert_eq!(t["host"], "127.0.0.1");
        assert_eq!(t["state"], "TASK_RUNNING");
        assert!(t["ports"][0].as_u64().unwrap() >= 31_000);
        assert_eq!(t["servicePorts"], json!([service_port]));
    }
    assert_ne!(tasks[0]["ports"], tasks[1]["ports"]);
    assert_eq!(got["app"]["tasksRunning"], 2);
}

#[tokio::test]
async fn bad_posts_get_marathon_status_codes() {
    let s = sim().await;
    let url = format!("{}/v2/apps", s.base_url());
    let (st, _, body) = post_raw(&url, "text/plain", r#"{"id": "/x"}"#).await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let (st, _, body) = post_raw(&url, "application/json", "{not json").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["message"], "Invalid JSON");
    let (st, _, body) = post_raw(&url, "application/json", r#"{"instances": 1}"#).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["details"][0]["path"], "/id");
    let (st, _, _) = post_raw(&url, "application/json", r#"{"id": "/dup"}"#).await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _, body) = post_raw(&url, "application/json; charset=utf-8", r#"{"id": "dup"}"#).await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["message"], "An app with id [/dup] already exists.");
}
