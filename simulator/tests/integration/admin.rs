//! The `/_sim/` admin API: scaling, tasks, health, app replacement and removal, with their events.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Sse, delete, get_json, post, put, sim};

fn ids(tasks: &Value) -> Vec<String> {
    tasks
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn scale_up_clones_tasks_and_emits_running() {
    let s = sim().await;
    let base = s.base_url();
    let mut sse = Sse::open(&base, "event_type=status_update_event").await;
    let (st, r) = post(
        &format!("{base}/_sim/apps/web/site/scale?instances=4"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let new_ids = ids(&r["tasks"]);
    assert_eq!(new_ids.len(), 2);
    for id in &new_ids {
        let e = sse.expect("status_update_event").await;
        assert_eq!(e["taskId"], id.as_str());
        assert_eq!(e["taskStatus"], "TASK_RUNNING");
        assert_eq!(e["appId"], "/web/site");
        assert_eq!(e["slaveId"].as_str().map(str::is_empty), Some(false));
        assert!(e["ports"][0].as_u64().expect("port") > 31112);
        assert!(e["ipAddresses"].is_array());
    }
    let (_, body) = get_json(&format!("{base}/v2/apps/web/site")).await;
    let app = &body["app"];
    assert_eq!(app["instances"], 4);
    assert_eq!(app["tasksRunning"], 4);
    assert_eq!(app["tasksHealthy"], 4);
    let tasks = app["tasks"].as_array().expect("tasks");
    let all: HashSet<String> = ids(&app["tasks"]).into_iter().collect();
    assert_eq!(all.len(), 4, "fresh ids");
    let ports: HashSet<u64> = tasks
        .iter()
        .map(|t| t["ports"][0].as_u64().expect("port"))
        .collect();
    assert_eq!(ports.len(), 4, "fresh host ports");
    let t = &tasks[3];
    assert!(t["id"].as_str().expect("id").starts_with("web_site."));
    assert_eq!(t["host"], "198.51.100.22", "host cloned from the last task");
    assert_eq!(t["servicePorts"], json!([10111]));
    let hr = &t["healthCheckResults"][0];
    assert_eq!(hr["alive"], true);
    assert!(
        hr["instanceId"]
            .as_str()
            .expect("instanceId")
            .starts_with("web_site.instance-")
    );
    assert_ne!(
        app["version"], "2021-03-04T09:12:30.551Z",
        "scaling bumps the version"
    );
    assert_eq!(
        app["versionInfo"]["lastConfigChangeAt"],
        "2021-03-04T09:12:30.551Z"
    );
}

#[tokio::test]
async fn scale_down_kills_youngest_and_emits_killed() {
    let s = sim().await;
    let base = s.base_url();
    let mut sse = Sse::open(
        &base,
        "event_type=status_update_event&event_type=instance_changed_event",
    )
    .await;
    let (st, r) = post(
        &format!("{base}/_sim/apps/web/site/scale?instances=1"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        ids(&r["tasks"]),
        ["web_site.318fd0cd-b115-5d11-b006-b3361f10a9e5"]
    );
    let e = sse.expect("status_update_event").await;
    assert_eq!(e["taskStatus"], "TASK_KILLED");
    let i = sse.expect("instance_changed_event").await;
    assert_eq!(i["condition"], "Killed");
    assert_eq!(
        i["instanceId"],
        "web_site.instance-318fd0cd-b115-5d11-b006-b3361f10a9e5"
    );
    let (_, body) = get_json(&format!("{base}/v2/apps/web/site")).await;
    assert_eq!(body["app"]["tasks"].as_array().expect("tasks").len(), 1);
    assert_eq!(body["app"]["tasksRunning"], 1);

    let (st, _) = post(&format!("{base}/_sim/apps/nope/scale?instances=1"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = post(&format!("{base}/_sim/apps/web/site/scale"), None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn health_flip_marathon_side_check() {
    let s = sim().await;
    let base = s.base_url();
    let mut sse = Sse::open(
        &base,
        "event_type=health_status_changed_event&event_type=status_update_event",
    )
    .await;
    let task = "web_site.6e52d181-34fb-5d70-9d20-6bcb34cbcb25";
    let url = format!("{base}/_sim/apps/web/site/tasks/{task}/health?alive=false");
    let (st, r) = post(&url, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(r["changed"], true);
    let e = sse.expect("health_status_changed_event").await;
    assert_eq!(e["alive"], false);
    assert_eq!(e["appId"], "/web/site");
    assert_eq!(
        e["instanceId"],
        "web_site.instance-6e52d181-34fb-5d70-9d20-6bcb34cbcb25"
    );
    let (_, r) = post(&url, None).await;
    assert_eq!(r["changed"], false, "no flip, no event");
    assert!(sse.drain_for(Duration::from_millis(300)).await.is_empty());
    let (_, body) = get_json(&format!("{base}/v2/apps/web/site")).await;
    assert_eq!(body["app"]["tasksUnhealthy"], 1);
    assert_eq!(
        body["app"]["tasks"][0]["healthCheckResults"][0]["alive"],
        false
    );
    let (st, _) = post(
        &format!("{base}/_sim/apps/web/site/tasks/nope/health?alive=true"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_flip_mesos_side_check_is_a_status_update() {
    let s = sim().await;
    let base = s.base_url();
    let mut sse = Sse::open(&base, "").await;
    sse.expect("event_stream_attached").await;
    let task = "shop_api_v2.instance-9f0c4d2e-8e1a-11ea-9c4b-0242ac110002._app.1";
    post(
        &format!("{base}/_sim/apps/shop/api/v2/tasks/{task}/health?alive=false"),
        None,
    )
    .await;
    let e = sse.expect("status_update_event").await;
    assert_eq!(e["taskStatus"], "TASK_RUNNING");
    assert_eq!(e["taskId"], task);
    let h = sse.expect("instance_health_changed_event").await;
    assert_eq!(h["healthy"], false);
    assert_eq!(h["runSpecId"], "/shop/api/v2");
}

#[tokio::test]
async fn add_and_delete_tasks() {
    let s = sim().await;
    let base = s.base_url();
    let mut sse = Sse::open(&base, "event_type=status_update_event").await;
    let body = json!({"host": "127.0.0.1", "ports": [18080]});
    let (st, r) = post(&format!("{base}/_sim/apps/idle/tasks"), Some(body)).await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let t = &r["task"];
    assert_eq!(t["host"], "127.0.0.1");
    assert_eq!(t["ports"], json!([18080]));
    assert_eq!(t["servicePorts"], json!([10200]));
    assert_eq!(
        t["ipAddresses"],
        json!([{"ipAddress": "127.0.0.1", "protocol": "IPv4"}])
    );
    assert!(t["id"].as_str().expect("id").starts_with("idle."));
    let tid = t["id"].as_str().expect("id").to_string();
    let e = sse.expect("status_update_event").await;
    assert_eq!(e["taskStatus"], "TASK_RUNNING");
    assert_eq!(e["host"], "127.0.0.1");
    assert_eq!(e["ports"], json!([18080]));

    let (_, tasks) = get_json(&format!("{base}/v2/tasks")).await;
    assert!(ids(&tasks["tasks"]).contains(&tid));
    let (_, app) = get_json(&format!("{base}/v2/apps/idle")).await;
    assert_eq!(app["app"]["instances"], 1);
    assert_eq!(app["app"]["tasksRunning"], 1);

    let given = json!({"id": "idle.fixed", "host": "127.0.0.2", "state": "TASK_STAGING"});
    let (st, r) = post(&format!("{base}/_sim/apps/idle/tasks"), Some(given.clone())).await;
    assert_eq!(st, StatusCode::CREATED);
    assert!(
        r["task"].get("startedAt").is_none(),
        "a staging task has not started"
    );
    assert_eq!(
        sse.expect("status_update_event").await["taskStatus"],
        "TASK_STAGING"
    );
    let (st, _) = post(&format!("{base}/_sim/apps/idle/tasks"), Some(given)).await;
    assert_eq!(st, StatusCode::CONFLICT);

    let (st, r) = delete(&format!("{base}/_sim/apps/idle/tasks/{tid}")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(r["task"]["id"], tid.as_str());
    let e = sse.expect("status_update_event").await;
    assert_eq!(e["taskStatus"], "TASK_KILLED");
    assert_eq!(e["taskId"], tid.as_str());
    let (_, app) = get_json(&format!("{base}/v2/apps/idle")).await;
    assert_eq!(app["app"]["instances"], 1);
    assert_eq!(ids(&app["app"]["tasks"]), ["idle.fixed"]);
    let (st, r) = delete(&format!("{base}/_sim/apps/idle/tasks/{tid}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(r["message"], format!("Task '{tid}' does not exist"));
}

#[tokio::test]
async fn delete_app_kills_tasks_then_terminates() {
    let s = sim().await;
    let base = s.base_url();
    let mut sse = Sse::open(
        &base,
        "event_type=status_update_event&event_type=app_terminated_event",
    )
    .await;
    let (st, _) = delete(&format!("{base}/_sim/apps/shop/api/v2")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        sse.expect("status_update_event").await["taskStatus"],
        "TASK_KILLED"
    );
    assert_eq!(
        sse.expect("app_terminated_event").await["appId"],
        "/shop/api/v2"
    );
    let (st, _) = get_json(&format!("{base}/v2/apps/shop/api/v2")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = delete(&format!("{base}/_sim/apps/shop/api/v2")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn replacing_apps_emits_api_post_per_changed_app() {
    let s = sim().await;
    let base = s.base_url();
    let mut sse = Sse::open(
        &base,
        "event_type=api_post_event&event_type=app_terminated_event",
    )
    .await;
    let (_, doc) = get_json(&format!("{base}/_sim/apps")).await;
    let mut apps = doc["apps"].as_array().expect("apps").clone();
    apps[0]["labels"]["HAPROXY_0_VHOST"] = json!("new.example.test");
    apps.remove(2); // /idle goes away
    apps.push(json!({"id": "/fresh", "instances": 0, "labels": {}}));
    let (st, r) = put(&format!("{base}/_sim/apps"), json!({"apps": apps})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["apps"], 3);
    let e = sse.expect("api_post_event").await;
    assert_eq!(e["uri"], "/v2/apps/web/site");
    assert_eq!(
        e["appDefinition"]["labels"]["HAPROXY_0_VHOST"],
        "new.example.test"
    );
    assert!(e["appDefinition"].get("tasks").is_none());
    let e = sse.expect("api_post_event").await;
    assert_eq!(e["uri"], "/v2/apps");
    assert_eq!(e["appDefinition"]["id"], "/fresh");
    assert_eq!(sse.expect("app_terminated_event").await["appId"], "/idle");
    let (_, body) = get_json(&format!("{base}/v2/apps")).await;
    assert_eq!(
        body["apps"][0]["labels"]["HAPROXY_0_VHOST"],
        "new.example.test"
    );

    // Without events, and invalid documents.
    let (_, r) = put(
        &format!("{base}/_sim/apps?events=false"),
        json!({"apps": []}),
    )
    .await;
    assert_eq!(r["events"], 0);
    assert!(sse.drain_for(Duration::from_millis(300)).await.is_empty());
    let (st, _) = put(&format!("{base}/_sim/apps"), json!({"nope": 1})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}
