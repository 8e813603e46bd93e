//! Faults on demand: errors, stalls, broken bodies, redirects; scoping by path and count.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};

use crate::common::{client, get_json, post, sim};

async fn set_fault(base: &str, fault: Value) {
    let (st, r) = post(&format!("{base}/_sim/fault"), Some(fault)).await;
    assert_eq!(st, StatusCode::OK, "{r}");
}

#[tokio::test]
async fn error_statuses_and_clearing() {
    let s = sim().await;
    let base = s.base_url();
    set_fault(&base, json!({"mode": "500"})).await;
    let (st, body) = get_json(&format!("{base}/v2/apps")).await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body["message"].is_string());
    // The admin API is never faulted.
    let (st, f) = get_json(&format!("{base}/_sim/fault")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(f["mode"], "500");

    set_fault(&base, json!({"mode": "503"})).await;
    let r = client()
        .get(format!("{base}/v2/apps"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.text()
            .await
            .expect("text")
            .contains("Could not determine the current leader")
    );

    set_fault(&base, json!({"mode": "none"})).await;
    assert_eq!(get_json(&format!("{base}/v2/apps")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn count_and_paths_scope_a_fault() {
    let s = sim().await;
    let base = s.base_url();
    set_fault(
        &base,
        json!({"mode": "500", "count": 2, "paths": ["/v2/apps"]}),
    )
    .await;
    let c = client();
    assert_eq!(
        c.get(format!("{base}/ping"))
            .send()
            .await
            .expect("ping")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        get_json(&format!("{base}/v2/apps/web/site")).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        get_json(&format!("{base}/v2/apps")).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        get_json(&format!("{base}/v2/apps")).await.0,
        StatusCode::OK,
        "cleared after 2"
    );
    assert_eq!(
        get_json(&format!("{base}/_sim/fault")).await.1["mode"],
        "none"
    );

    for bad in [
        json!({"mode": "redirect"}),
        json!({"mode": "bogus"}),
        json!({"mode": "500", "count": 0}),
    ] {
        let (st, _) = post(&format!("{base}/_sim/fault"), Some(bad)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn stall_hangs_until_cleared() {
    let s = sim().await;
    let base = s.base_url();
    set_fault(&base, json!({"mode": "stall"})).await;
    let r = client()
        .get(format!("{base}/v2/apps"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(r.expect_err("stalls").is_timeout());

    let url = format!("{base}/v2/apps");
    let pending = tokio::spawn(async move { client().get(url).send().await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!pending.is_finished());
    set_fault(&base, json!({"mode": "none"})).await;
    let st = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("released")
        .expect("join")
        .expect("response");
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn broken_bodies() {
    let s = sim().await;
    let base = s.base_url();
    let c = client();

    set_fault(&base, json!({"mode": "truncate"})).await;
    let r = c
        .get(format!("{base}/v2/apps?embed=apps.tasks"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.expect("complete HTTP message");
    assert!(!text.is_empty());
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "truncated JSON"
    );

    set_fault(&base, json!({"mode": "reset"})).await;
    let r = c
        .get(format!("{base}/v2/apps?embed=apps.tasks"))
        .send()
        .await
        .expect("headers");
    assert!(r.bytes().await.is_err(), "body cut off");

    set_fault(&base, json!({"mode": "non-json"})).await;
    let r = c.get(format!("{base}/v2/apps")).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[CONTENT_TYPE]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    assert!(r.json::<Value>().await.is_err());

    // On the event stream, a broken body is a stream that ends at once.
    set_fault(&base, json!({"mode": "truncate", "paths": ["/v2/events"]})).await;
    let r = c
        .get(format!("{base}/v2/events"))
        .header(ACCEPT, "text/event-stream")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.bytes().await.expect("eof").is_empty());
}

#[tokio::test]
async fn redirect_to_leader() {
    let s = sim().await;
    let base = s.base_url();
    set_fault(
        &base,
        json!({"mode": "redirect", "target": "http://leader.example:8080/"}),
    )
    .await;
    let c = client();
    let r = c
        .get(format!("{base}/v2/apps?embed=apps.tasks"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        r.headers()[LOCATION],
        "http://leader.example:8080/v2/apps?embed=apps.tasks"
    );
    let r = c
        .get(format!(
            "{base}/v2/events?plan-format=light&event_type=api_post_event"
        ))
        .header(ACCEPT, "text/event-stream")
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        StatusCode::FOUND,
        "a 1.7+ standby answers /v2/events with 302"
    );
    assert_eq!(
        r.headers()[LOCATION],
        "http://leader.example:8080/v2/events?plan-format=light&event_type=api_post_event"
    );
    set_fault(
        &base,
        json!({"mode": "redirect", "target": "http://l:1", "status": 301}),
    )
    .await;
    let r = c.get(format!("{base}/ping")).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
}

#[tokio::test]
async fn redirect_chain_between_two_simulators() {
    let leader = sim().await;
    let standby = sim().await;
    set_fault(
        &standby.base_url(),
        json!({"mode": "redirect", "target": leader.base_url()}),
    )
    .await;
    let c = reqwest::Client::new();
    let r = c
        .get(format!("{}/v2/apps", standby.base_url()))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.url().as_str(), format!("{}/v2/apps", leader.base_url()));
    let log = get_json(&format!("{}/_sim/requests", leader.base_url()))
        .await
        .1;
    assert_eq!(log[0]["path"], "/v2/apps");
}
