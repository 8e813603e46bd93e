//! The write endpoints and deployments: Marathon's status codes, error bodies and defaults for
//! `POST /v2/apps`, tasks launched as real loopback HTTP servers, health probed against them, scale up
//! and down, task kills with `scale`, deletion, events, and a crash-looping version.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};

use crate::common::{Sse, app, client, delete, get_json, post, put, settled, sim, task_answer};

/// `POST` with an explicit content type: status, `Location`, `Marathon-Deployment-Id`, JSON body.
async fn post_raw(
    url: &str,
    content_type: &str,
    body: &str,
) -> (StatusCode, [Option<String>; 2], Value) {
    let r = client()
        .post(url)
        .header(CONTENT_TYPE, content_type)
        .body(body.to_owned())
        .send()
        .await
        .expect("send");
    let status = r.status();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_owned())
    };
    let headers = [header(LOCATION.as_str()), header("marathon-deployment-id")];
    (status, headers, r.json().await.expect("json body"))
}

#[tokio::test]
async fn deployments_run_real_task_servers() {
    let s = sim().await;
    let base = s.base_url();
    // No kill grace: a killed task stops listening at once (checked below).
    let def = json!({"id": "web", "instances": 2, "portDefinitions": [{"port": 10100}],
        "taskKillGracePeriodSeconds": 0,
        "healthChecks": [{"protocol": "HTTP", "path": "/"}]});
    let (st, created) = post(&format!("{base}/v2/apps"), Some(def.clone())).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(created["id"], "/web");
    assert_eq!(created["deployments"].as_array().map(Vec::len), Some(1));
    let (st, deployments) = get_json(&format!("{base}/v2/deployments")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(deployments[0]["affectedApps"], json!(["/web"]));
    let (st, _) = post(&format!("{base}/v2/apps"), Some(def)).await;
    assert_eq!(st, StatusCode::CONFLICT);

    let a = settled(&base, "/web").await;
    let tasks = a["tasks"].as_array().expect("tasks").clone();
    assert_eq!(tasks.len(), 2);
    for t in &tasks {
        assert_eq!(t["state"], "TASK_RUNNING");
        assert_eq!(t["healthCheckResults"][0]["alive"], true);
        let body = task_answer(&t["ports"][0]).await;
        assert!(body.starts_with("/web "), "{body}");
    }

    let (st, r) = put(&format!("{base}/v2/apps/web"), json!({"instances": 3})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert!(r["deploymentId"].is_string());
    assert_eq!(
        settled(&base, "/web").await["tasks"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    let victim = tasks[0]["id"].as_str().expect("id");
    let (st, _) = post(
        &format!("{base}/v2/tasks/delete?scale=true"),
        Some(json!({"ids": [victim]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let a = settled(&base, "/web").await;
    assert_eq!(a["instances"], 2);
    assert!(
        a["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .all(|t| t["id"] != victim)
    );
    let port = tasks[0]["ports"][0].as_u64().expect("port");
    assert!(
        client()
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .is_err(),
        "killed task stopped listening"
    );

    let (st, _) = delete(&format!("{base}/v2/apps/web")).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = get_json(&format!("{base}/v2/apps/web")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_crashing_version_loops_and_keeps_its_deployment() {
    let s = sim().await;
    let base = s.base_url();
    let def = json!({"id": "bad", "instances": 1, "portDefinitions": [{"port": 10101}],
        "env": {"SIM_TASK_FAIL": "crash"}});
    let (st, _) = post(&format!("{base}/v2/apps"), Some(def)).await;
    assert_eq!(st, StatusCode::CREATED);
    let mut failure = Value::Null;
    for _ in 0..100 {
        failure = app(&base, "/bad").await["lastTaskFailure"].clone();
        if !failure.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failure["state"], "TASK_FAILED");
    let a = app(&base, "/bad").await;
    assert_eq!(
        a["deployments"].as_array().map(Vec::len),
        Some(1),
        "never finishes"
    );
    let (st, _) = put(&format!("{base}/v2/apps/bad"), json!({"instances": 0})).await;
    assert_eq!(st, StatusCode::CONFLICT, "locked by its deployment");
    let (st, _) = put(
        &format!("{base}/v2/apps/bad?force=true"),
        json!({"instances": 0}),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn created_app_gets_marathons_answer_defaults_and_events() {
    let s = sim().await;
    let base = s.base_url();
    let mut sse = Sse::open(
        &base,
        "event_type=api_post_event&event_type=status_update_event&event_type=instance_changed_event",
    )
    .await;
    let app = json!({
        "id": "nginx", "instances": 2,
        "container": {"type": "DOCKER", "docker": {"image": "nginx"},
            "portMappings": [{"containerPort": 80, "hostPort": 0, "servicePort": 0},
                {"containerPort": 81, "hostPort": 0, "servicePort": 0}]},
        "networks": [{"mode": "container/bridge"}],
        "tasks": [{"id": "ignored"}]
    });
    let url = format!("{base}/v2/apps");
    let (st, [location, deployment], body) =
        post_raw(&url, "application/json", &app.to_string()).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(location.as_deref(), Some("/nginx"));
    assert_eq!(body["id"], "/nginx");
    assert_eq!(deployment.as_deref(), body["deployments"][0]["id"].as_str());
    assert_eq!(
        [
            &body["tasksStaged"],
            &body["tasksRunning"],
            &body["instances"]
        ],
        [&json!(0), &json!(0), &json!(2)]
    );
    assert!(body.get("tasks").is_none() && body.get("versionInfo").is_none());
    assert_eq!((&body["labels"], &body["env"]), (&json!({}), &json!({})));
    // Service ports of 0: the lowest free ones from 10000 (the fixture uses 10080, 10111, 10200).
    let service_ports: Vec<u64> = body["container"]["portMappings"]
        .as_array()
        .expect("mappings")
        .iter()
        .map(|m| m["servicePort"].as_u64().expect("assigned"))
        .collect();
    assert_eq!(service_ports, [10_000, 10_001]);

    let posted = sse.expect("api_post_event").await;
    assert_eq!(posted["uri"], "/v2/apps");
    assert_eq!(posted["appDefinition"]["id"], "/nginx");
    assert!(posted["appDefinition"].get("tasks").is_none());
    for _ in 0..2 {
        let update = sse.expect("status_update_event").await;
        assert_eq!(update["taskStatus"], "TASK_STAGING");
        let changed = sse.expect("instance_changed_event").await;
        assert_eq!(changed["condition"], "Staging");
        assert_eq!(changed["runSpecId"], "/nginx");
    }
    let update = sse.expect("status_update_event").await;
    assert_eq!(update["taskStatus"], "TASK_RUNNING");
    assert_eq!(
        sse.expect("instance_changed_event").await["condition"],
        "Running"
    );

    // The tasks run on loopback, each port served by the simulator's own server for the task.
    let got = settled(&base, "/nginx").await;
    let tasks = got["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 2);
    assert_eq!(got["tasksRunning"], 2);
    for t in tasks {
        assert_eq!(t["host"], "127.0.0.1");
        assert_eq!(t["state"], "TASK_RUNNING");
        assert_eq!(t["servicePorts"], json!(service_ports));
        let ports = t["ports"].as_array().expect("ports");
        assert_eq!(ports.len(), 2);
        for port in ports {
            let answer = task_answer(port).await;
            assert_eq!(
                answer.trim_end(),
                format!("/nginx {}", t["id"].as_str().expect("id"))
            );
        }
    }
    assert_ne!(tasks[0]["ports"], tasks[1]["ports"]);

    // The next app's free ports skip the ones now taken.
    let (st, _, body) = post_raw(
        &url,
        "application/json",
        r#"{"id": "/next", "instances": 0, "portDefinitions": [{"port": 0}]}"#,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(body["portDefinitions"][0]["port"], 10_002);
}

#[tokio::test]
async fn bad_writes_get_marathons_status_codes_and_bodies() {
    let s = sim().await;
    let base = s.base_url();
    let url = format!("{base}/v2/apps");
    let (st, _, body) = post_raw(&url, "text/plain", r#"{"id": "/x"}"#).await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(body["message"], "HTTP 415 Unsupported Media Type");
    let (st, _, body) = post_raw(&url, "application/json", "{not json").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["message"], "Invalid JSON");
    assert_eq!(
        body["details"][0]["errors"],
        json!(["error.expected.jsobject"])
    );
    let (st, _, body) = post_raw(&url, "application/json", r#"{"instances": 1}"#).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["message"], "Object is not valid");
    assert_eq!(
        body["details"],
        json!([{"path": "/id", "errors": ["error.path.missing"]}])
    );
    let (st, _, _) = post_raw(
        &url,
        "application/json",
        r#"{"id": "/dup", "instances": 0}"#,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _, body) = post_raw(&url, "application/json; charset=utf-8", r#"{"id": "dup"}"#).await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["message"], "An app with id [/dup] already exists.");
    // The other writes take JSON too.
    let r = client()
        .put(format!("{base}/v2/apps/dup"))
        .body(r#"{"instances": 1}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (st, body) = post(&format!("{base}/v2/tasks/delete"), Some(json!({}))).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["details"][0]["path"], "/ids");
}
