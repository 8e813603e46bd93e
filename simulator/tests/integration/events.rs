//! `/v2/events`: framing, attach, filters, keep-alives, plan format, stall and disconnect.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use serde_json::json;

use crate::common::{Sse, client, post, sim};

#[tokio::test]
async fn attached_first_then_events_in_marathon_framing() {
    let s = sim().await;
    let base = s.base_url();
    let mut sse = Sse::open(&base, "plan-format=light").await;
    assert_eq!(sse.content_type, "text/event-stream;charset=utf-8");
    let attached = sse.expect("event_stream_attached").await;
    assert_eq!(attached["remoteAddress"], "127.0.0.1");
    let ts = attached["timestamp"].as_str().expect("timestamp");
    assert_eq!(ts.len(), 24, "three fractional digits and Z: {ts}");
    assert!(ts.ends_with('Z'));

    let ev = json!({"eventType": "custom_event", "timestamp": "2020-05-04T10:00:00.000Z", "x": 1});
    let (st, _) = post(&format!("{base}/_sim/events"), Some(ev)).await;
    assert_eq!(st, StatusCode::OK);
    let e = sse
        .next_within(Duration::from_secs(5))
        .await
        .expect("event");
    assert_eq!(
        e.raw,
        "event: custom_event\r\ndata: {\"eventType\":\"custom_event\",\"timestamp\":\"2020-05-04T10:00:00.000Z\",\"x\":1}\r\n\r\n"
    );
    // A timestamp is added when the pushed event has none; eventType is required.
    post(
        &format!("{base}/_sim/events"),
        Some(json!({"eventType": "t"})),
    )
    .await;
    assert!(sse.expect("t").await["timestamp"].is_string());
    let (st, _) = post(&format!("{base}/_sim/events"), Some(json!({"x": 1}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn repeated_event_type_filters_by_exact_name() {
    let s = sim().await;
    let base = s.base_url();
    let mut sse = Sse::open(
        &base,
        "event_type=status_update_event&event_type=api_post_event&event_type=nope",
    )
    .await;
    for t in [
        "event_stream_attached",
        "api_post_event",
        "Status_Update_Event",
        "status_update_event",
    ] {
        post(
            &format!("{base}/_sim/events"),
            Some(json!({"eventType": t})),
        )
        .await;
    }
    let got: Vec<String> = sse
        .drain_for(Duration::from_millis(500))
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(got, ["api_post_event", "status_update_event"]);
}

#[tokio::test]
async fn keepalive_is_a_bare_crlf_on_schedule() {
    let s = sim().await; // 200 ms keep-alive
    let mut sse = Sse::open(&s.base_url(), "event_type=none").await;
    let events = sse.drain_for(Duration::from_millis(900)).await;
    assert!(events.is_empty());
    assert!(
        (2..=5).contains(&sse.keepalives),
        "keep-alives in 900 ms: {}",
        sse.keepalives
    );
}

#[tokio::test]
async fn accept_header_must_be_exactly_event_stream() {
    let s = sim().await;
    let c = client();
    for accept in [
        None,
        Some("text/event-stream, */*"),
        Some("text/event-stream;charset=utf-8"),
    ] {
        let mut req = c.get(format!("{}/v2/events", s.base_url()));
        if let Some(a) = accept {
            req = req.header(ACCEPT, a);
        }
        let r = req.send().await.expect("send");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{accept:?}");
    }
}

#[tokio::test]
async fn plan_format_light_strips_group_trees() {
    let s = sim().await;
    let base = s.base_url();
    let mut light = Sse::open(&base, "event_type=deployment_info&plan-format=light").await;
    let mut full = Sse::open(&base, "event_type=deployment_info").await;
    let ev = json!({"eventType": "deployment_info",
        "plan": {"id": "d1", "steps": [{"actions": [{"action": "ScaleApplication", "app": "/web/site"}]}],
                 "version": "v", "original": {"id": "/"}, "target": {"id": "/"}},
        "currentStep": {"actions": [{"action": "ScaleApplication", "app": "/web/site"}]}});
    post(&format!("{base}/_sim/events"), Some(ev)).await;
    let l = light.expect("deployment_info").await;
    assert!(l["plan"].get("original").is_none() && l["plan"].get("target").is_none());
    assert_eq!(
        l["plan"]["steps"][0]["actions"][0]["action"],
        "ScaleApplication"
    );
    let f = full.expect("deployment_info").await;
    assert!(f["plan"]["original"].is_object());
}

#[tokio::test]
async fn stall_freezes_streams_until_resume() {
    let s = sim().await;
    let base = s.base_url();
    let mut sse = Sse::open(&base, "").await;
    sse.expect("event_stream_attached").await;
    post(&format!("{base}/_sim/sse/stall"), None).await;
    post(
        &format!("{base}/_sim/events"),
        Some(json!({"eventType": "during_stall"})),
    )
    .await;
    assert!(
        sse.silent_for(Duration::from_millis(600)).await,
        "nothing, not even keep-alives"
    );
    let (_, r) = post(&format!("{base}/_sim/sse/resume"), None).await;
    assert_eq!(r["stalled"], false);
    sse.expect("during_stall").await;
}

#[tokio::test]
async fn disconnect_closes_streams_and_detach_is_announced() {
    let s = sim().await;
    let base = s.base_url();
    let mut watcher = Sse::open(&base, "event_type=event_stream_detached").await;
    let other = Sse::open(&base, "").await;
    drop(other);
    // The closed stream is noticed at the latest on its next keep-alive write.
    let d = watcher.expect("event_stream_detached").await;
    assert_eq!(d["remoteAddress"], "127.0.0.1");
    let (_, r) = post(&format!("{base}/_sim/sse/disconnect"), None).await;
    assert_eq!(r["disconnected"], 1);
    assert!(watcher.ends_within(Duration::from_secs(2)).await);
    // New streams work after a disconnect.
    let mut again = Sse::open(&base, "").await;
    again.expect("event_stream_attached").await;
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let s = sim().await;
    let mut sse = Sse::open(&s.base_url(), "").await;
    sse.expect("event_stream_attached").await;
    tokio::time::timeout(Duration::from_secs(6), s.shutdown())
        .await
        .expect("shutdown completes");
    assert!(sse.ends_within(Duration::from_secs(2)).await);
}
