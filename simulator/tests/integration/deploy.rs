//! The write endpoints and deployments: tasks launched as real loopback HTTP servers, health probed
//! against them, scale up and down, task kills with `scale`, deletion, and a crash-looping version.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{client, delete, get_json, post, put, sim};

async fn app(base: &str, id: &str) -> Value {
    get_json(&format!("{base}/v2/apps{id}")).await.1["app"].clone()
}

/// Polls until the app's deployment is over; returns the app.
async fn settled(base: &str, id: &str) -> Value {
    for _ in 0..100 {
        let a = app(base, id).await;
        if a["deployments"] == json!([]) {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deployment of {id} did not finish");
}

#[tokio::test]
async fn deployments_run_real_task_servers() {
    let s = sim().await;
    let base = s.base_url();
    let def = json!({"id": "web", "instances": 2, "portDefinitions": [{"port": 10100}],
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
        let port = t["ports"][0].as_u64().expect("port");
        let body = client()
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .expect("task answers")
            .text()
            .await
            .expect("body");
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
