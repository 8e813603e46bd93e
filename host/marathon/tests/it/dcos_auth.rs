//! DC/OS service-account auth in process: the event-stream follower and
//! the REST client against the loopback login endpoint and Marathon of
//! [`dcos_server`](crate::dcos_server) (the marathon-lb binary's one-shot
//! runs against them are in `host/mlb/tests/it/dcos_auth.rs`).

use std::time::Duration;

use mlb_marathon::sse::{SseConfig, StreamEvent, follow};
use mlb_marathon::{ClientConfig, DcosAuth, MarathonClient};
use tokio::sync::mpsc;

use crate::dcos_server::{Answer, Login, Marathon, PKCS1, PKCS8, token_only};
use crate::support;

/// The next event that is not keep-alive activity.
async fn next(rx: &mut mpsc::Receiver<StreamEvent>) -> StreamEvent {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an event within 5 s")
            .expect("channel open");
        if e != StreamEvent::Activity {
            return e;
        }
    }
}

#[test]
fn event_stream_and_rest_client_share_one_login() {
    let rt = support::runtime();
    rt.block_on(async {
        let login = Login::start(Answer::Json).await;
        let marathon = Marathon::start(token_only("tok-1")).await;
        let auth = DcosAuth::from_json(&login.credentials(PKCS8), None, false).unwrap();

        let mut config = ClientConfig::new(vec![marathon.url.clone()]);
        config.dcos = Some(auth.clone());
        let body = MarathonClient::new(config)
            .unwrap()
            .fetch_apps()
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&body).contains("dcosapp"));

        let mut sse = SseConfig::new(vec![marathon.url.clone()]);
        sse.dcos = Some(auth.clone());
        sse.watchdog = Duration::from_secs(2);
        assert!(!format!("{sse:?}").contains("PRIVATE"));
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(follow(sse, tx));
        let first = next(&mut rx).await;
        assert!(support::connected(&first), "{first:?}");
        assert_eq!(
            next(&mut rx).await,
            StreamEvent::Event {
                event_type: "status_update_event".into(),
                relevant: true,
                payload: Default::default(),
            }
        );
        drop(rx);
        tokio::time::timeout(Duration::from_secs(3), task)
            .await
            .unwrap()
            .unwrap();

        assert_eq!(login.logins(), 1, "one token for both clients");
        assert_eq!(
            marathon.auth_of("/v2/events"),
            vec![Some("token=tok-1".to_owned())]
        );
    });
}

#[test]
fn event_stream_renews_a_refused_token() {
    let rt = support::runtime();
    rt.block_on(async {
        let login = Login::start(Answer::Json).await;
        let marathon = Marathon::start(token_only("tok-2")).await;
        let mut sse = SseConfig::new(vec![marathon.url.clone()]);
        sse.dcos = Some(DcosAuth::from_json(&login.credentials(PKCS1), None, false).unwrap());
        sse.watchdog = Duration::from_secs(2);
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(follow(sse, tx));
        let first = next(&mut rx).await;
        assert!(support::connected(&first), "{first:?}");
        drop(rx);
        tokio::time::timeout(Duration::from_secs(3), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(login.logins(), 2);
        assert_eq!(
            marathon.auth_of("/v2/events"),
            vec![
                Some("token=tok-1".to_owned()),
                Some("token=tok-2".to_owned())
            ]
        );
    });
}
