//! HTTP Basic auth on every Marathon endpoint, none on the admin API.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};

use crate::common::{Sse, client, sim_with};

#[tokio::test]
async fn basic_auth_guards_marathon_endpoints() {
    let s = sim_with(|c| marathon_sim::SimConfig {
        auth: Some("lb:secret".into()),
        ..c
    })
    .await;
    let base = s.base_url();
    let c = client();
    for path in [
        "/v2/apps",
        "/v2/apps/web/site",
        "/v2/tasks",
        "/ping",
        "/v2/info",
        "/v2/events",
    ] {
        let r = c
            .get(format!("{base}{path}"))
            .header(ACCEPT, "text/event-stream")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(r.headers()[WWW_AUTHENTICATE], "basic realm=\"Mesosphere\"");
        assert!(
            r.headers()[CONTENT_TYPE]
                .to_str()
                .expect("ct")
                .starts_with("text/html")
        );
    }
    let wrong = c
        .get(format!("{base}/v2/apps"))
        .basic_auth("lb", Some("nope"))
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let token = c
        .get(format!("{base}/v2/apps"))
        .header("authorization", "token=abc")
        .send()
        .await
        .expect("send");
    assert_eq!(token.status(), StatusCode::UNAUTHORIZED);

    let ok = c
        .get(format!("{base}/v2/apps"))
        .basic_auth("lb", Some("secret"))
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), StatusCode::OK);
    let mut sse = Sse::open_with(
        c.get(format!("{base}/v2/events"))
            .basic_auth("lb", Some("secret")),
    )
    .await;
    sse.expect("event_stream_attached").await;

    // The admin API needs no credentials; the request log shows which requests carried them.
    let r = c
        .get(format!("{base}/_sim/requests"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let log: serde_json::Value = r.json().await.expect("json");
    let log = log.as_array().expect("log");
    assert!(!log[0]["auth"].as_bool().expect("bool"));
    assert_eq!(log.last().expect("last")["authScheme"], "Basic");
}
