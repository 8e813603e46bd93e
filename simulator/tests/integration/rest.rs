//! Marathon's read endpoints: embeds, nested IDs, tasks, info, ping, headers, the request log.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::json;

use crate::common::{client, get_json, sim};

#[tokio::test]
async fn apps_without_embed_strip_tasks_but_keep_counts_and_deployments() {
    let s = sim().await;
    let (st, body) = get_json(&format!("{}/v2/apps", s.base_url())).await;
    assert_eq!(st, StatusCode::OK);
    let apps = body["apps"].as_array().expect("apps");
    assert_eq!(apps.len(), 3);
    for a in apps {
        assert!(a.get("tasks").is_none(), "tasks stripped: {}", a["id"]);
        assert!(a.get("readinessCheckResults").is_none());
        assert!(a.get("lastTaskFailure").is_none());
        assert!(a["tasksRunning"].is_u64());
        assert!(a["tasksHealthy"].is_u64());
        assert_eq!(a["deployments"], json!([]));
    }
    // The fixture's values are served as they are; an app without counts gets computed ones.
    assert_eq!(apps[0]["tasksRunning"], 2);
    assert_eq!(apps[2]["tasksRunning"], 0);
    // The definition passes through untouched (1.4-style nulls stay).
    assert!(apps[0]["ipAddress"].is_null());
    assert_eq!(apps[0]["labels"]["HAPROXY_0_VHOST"], "site.example.test");
}

#[tokio::test]
async fn apps_embed_values_and_prefixes() {
    let s = sim().await;
    let base = s.base_url();
    let (_, body) = get_json(&format!(
        "{base}/v2/apps?embed=apps.tasks&embed=apps.counts"
    ))
    .await;
    let apps = body["apps"].as_array().expect("apps");
    assert_eq!(apps[0]["tasks"].as_array().expect("tasks").len(), 2);
    assert_eq!(apps[0]["tasks"][0]["appId"], "/web/site");
    assert_eq!(apps[2]["tasks"], json!([]), "an app without tasks gets []");
    assert!(apps[1].get("readinessCheckResults").is_none());

    for embed in ["app.tasks", "tasks", "group.apps.tasks", "apps.failures"] {
        let (_, body) = get_json(&format!("{base}/v2/apps?embed={embed}")).await;
        assert!(body["apps"][0]["tasks"].is_array(), "embed={embed}");
    }
    // Unknown values are ignored and comma lists are not split (as Marathon).
    let (st, body) = get_json(&format!(
        "{base}/v2/apps?embed=bogus&embed=apps.tasks,apps.counts"
    ))
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(body["apps"][0].get("tasks").is_none());

    let (_, body) = get_json(&format!(
        "{base}/v2/apps?embed=apps.readiness&embed=apps.lastTaskFailure"
    ))
    .await;
    let shop = &body["apps"][1];
    assert_eq!(shop["readinessCheckResults"][0]["ready"], true);
    assert_eq!(shop["lastTaskFailure"]["state"], "TASK_FAILED");
    assert!(shop.get("tasks").is_none());
    assert!(
        body["apps"][0].get("lastTaskFailure").is_none(),
        "only when a failure exists"
    );
}

#[tokio::test]
async fn apps_filters_id_cmd_label() {
    let s = sim().await;
    let base = s.base_url();
    let ids = |b: serde_json::Value| -> Vec<String> {
        b["apps"]
            .as_array()
            .expect("apps")
            .iter()
            .map(|a| a["id"].as_str().expect("id").to_string())
            .collect()
    };
    assert_eq!(
        ids(get_json(&format!("{base}/v2/apps?id=SHOP")).await.1),
        ["/shop/api/v2"]
    );
    assert_eq!(
        ids(get_json(&format!("{base}/v2/apps?cmd=sleep")).await.1),
        ["/idle"]
    );
    let (_, b) = get_json(&format!(
        "{base}/v2/apps?label=HAPROXY_GROUP%3D%3Dexternal,tier!%3Dapi"
    ))
    .await;
    assert_eq!(ids(b), ["/web/site"]);
}

#[tokio::test]
async fn single_app_with_nested_id_embeds_tasks() {
    let s = sim().await;
    let base = s.base_url();
    let (st, body) = get_json(&format!("{base}/v2/apps/shop/api/v2")).await;
    assert_eq!(st, StatusCode::OK);
    let app = &body["app"];
    assert_eq!(app["id"], "/shop/api/v2");
    assert_eq!(app["tasks"][0]["ports"], json!([31245]));
    assert_eq!(app["lastTaskFailure"]["host"], "10.0.1.18");
    assert_eq!(app["tasksRunning"], 1);
    assert!(app.get("readinessCheckResults").is_none());
    let (_, body) = get_json(&format!("{base}/v2/apps//shop/api/v2/?embed=app.readiness")).await;
    assert!(body["app"]["readinessCheckResults"].is_array());

    let (st, body) = get_json(&format!("{base}/v2/apps/shop/api/v2/tasks")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["tasks"][0]["appId"], "/shop/api/v2");

    let (_, body) = get_json(&format!("{base}/v2/apps/shop/*")).await;
    assert_eq!(body["*"][0]["id"], "/shop/api/v2");

    let (st, body) = get_json(&format!("{base}/v2/apps/shop/x")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"message": "App '/shop/x' does not exist"}));
}

#[tokio::test]
async fn tasks_carry_app_id_and_filter_by_status() {
    let s = sim().await;
    let base = s.base_url();
    let (_, body) = get_json(&format!("{base}/v2/tasks")).await;
    let tasks = body["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 3);
    assert!(tasks.iter().all(|t| t["appId"].is_string()));
    let (_, body) = get_json(&format!("{base}/v2/tasks?status=staging")).await;
    assert_eq!(body["tasks"], json!([]));
    let (_, body) = get_json(&format!("{base}/v2/tasks?status[]=running")).await;
    assert_eq!(body["tasks"].as_array().expect("tasks").len(), 3);
}

#[tokio::test]
async fn info_leader_ping_and_headers() {
    let s = sim().await;
    let base = s.base_url();
    let leader = s.addr().to_string();
    let (_, info) = get_json(&format!("{base}/v2/info")).await;
    assert_eq!(info["name"], "marathon");
    assert_eq!(info["leader"], leader.as_str());
    assert_eq!(info["elected"], true);
    let (_, l) = get_json(&format!("{base}/v2/leader")).await;
    assert_eq!(l, json!({"leader": leader}));

    let c = client();
    let r = c.get(format!("{base}/ping")).send().await.expect("ping");
    assert_eq!(r.headers()[CONTENT_TYPE], "text/plain");
    assert_eq!(
        r.headers()["cache-control"],
        "no-cache, no-store, must-revalidate"
    );
    assert_eq!(
        r.headers()["x-marathon-leader"],
        format!("http://{leader}").as_str()
    );
    assert_eq!(r.text().await.expect("text"), "pong");
    let r = c
        .get(format!("{base}/ping"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .expect("ping");
    assert_eq!(r.text().await.expect("text"), "\"pong\"");
    let r = c
        .get(format!("{base}/ping"))
        .header(ACCEPT, "image/png")
        .send()
        .await
        .expect("ping");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let r = c.get(format!("{base}/v2/apps")).send().await.expect("apps");
    assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(r.headers()["pragma"], "no-cache");
    assert_eq!(r.headers()["expires"], "0");

    let (st, body) = get_json(&format!("{base}/v2/nope")).await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, json!({"message": "URI not found"}));
}

#[tokio::test]
async fn request_log_records_marathon_requests_only() {
    let s = sim().await;
    let base = s.base_url();
    let c = client();
    c.get(format!("{base}/v2/apps?embed=apps.tasks"))
        .header("authorization", "token=abc")
        .send()
        .await
        .expect("get");
    c.get(format!("{base}/ping")).send().await.expect("get");
    let (_, log) = get_json(&format!("{base}/_sim/requests")).await;
    let log = log.as_array().expect("log");
    assert_eq!(log.len(), 2, "admin requests are not logged: {log:?}");
    assert_eq!(log[0]["method"], "GET");
    assert_eq!(log[0]["path"], "/v2/apps?embed=apps.tasks");
    assert_eq!(log[0]["auth"], true);
    assert_eq!(log[0]["authScheme"], "token");
    assert_eq!(log[1]["auth"], false);
    let r = c
        .delete(format!("{base}/_sim/requests"))
        .send()
        .await
        .expect("clear");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, log) = get_json(&format!("{base}/_sim/requests")).await;
    assert_eq!(log, json!([]));
}
