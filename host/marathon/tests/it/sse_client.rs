//! The event-stream follower against the in-process Marathon simulator:
//! `Connected` on each (re)connect, `Event`s, keep-alive `Activity`, the watchdog, rotation past dead and
//! hanging Marathons, basic auth, and leader redirects with auth.

use std::time::Duration;

use marathon_sim::{Fault, FaultMode, SimConfig, SimHandle};
use mlb_marathon::Credentials;
use mlb_marathon::sse::{SseConfig, StreamEvent, follow};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

use crate::support::{self, connected, logs, relevant_event, start};

fn doc() -> serde_json::Value {
    json!({"apps": [{
        "id": "/a", "instances": 1,
        "labels": {"HAPROXY_GROUP": "external"},
        "portDefinitions": [{"port": 10001}],
        "tasks": [{"id": "a.t1", "host": "10.0.0.1", "ports": [31001], "state": "TASK_RUNNING"}]
    }]})
}

async fn sim(auth: Option<&str>, keepalive: Duration) -> SimHandle {
    let mut config = SimConfig::default().with_apps_json(doc()).unwrap();
    config.auth = auth.map(str::to_owned);
    config.keepalive = keepalive;
    marathon_sim::start(config).await.unwrap()
}

/// Scales `/a` to `n` tasks (status_update_event per task).
fn scale(sim: &SimHandle, n: usize) {
    sim.sim()
        .mutate(|list, ctx, out| marathon_sim::ops::scale(list, "/a", n, ctx, out))
        .unwrap();
}

fn config(urls: Vec<String>) -> SseConfig {
    let mut c = SseConfig::new(urls);
    c.watchdog = Duration::from_millis(500);
    c.connect_timeout = Duration::from_secs(1);
    c.max_backoff = Duration::from_millis(300);
    c
}

fn events_requests(sim: &SimHandle) -> Vec<marathon_sim::RequestRecord> {
    sim.sim()
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/v2/events"))
        .collect()
}

#[test]
fn resets_on_connect_and_on_events() {
    logs();
    support::runtime().block_on(async {
        let sim = sim(None, Duration::from_millis(100)).await;
        let mut f = start(config(vec![format!("{}/", sim.base_url())]));
        f.expect("Connected", connected, Duration::from_secs(5))
            .await;
        assert_eq!(f.connects(), 1);
        let req = &events_requests(&sim)[0];
        assert_eq!(
            req.path,
            "/v2/events?plan-format=light&event_type=api_post_event\
             &event_type=health_status_changed_event&event_type=status_update_event\
             &event_type=app_terminated_event"
        );
        assert_eq!(req.accept.as_deref(), Some("text/event-stream"));
        assert!(!req.auth);

        // Keep-alives alone ask for no refetch; they are activity.
        f.expect_no_reset(Duration::from_millis(350)).await;
        assert!(f.count(|e| *e == StreamEvent::Activity) > 0, "{:?}", f.seen);

        scale(&sim, 2);
        f.expect("a relevant Event", relevant_event, Duration::from_secs(5))
            .await;
        // Other types are filtered out by Marathon (the `event_type` query).
        sim.sim()
            .publish(
                json!({"eventType": "deployment_info"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .unwrap();
        sim.sim()
            .publish(
                json!({"eventType": "api_post_event", "uri": "/v2/apps/a"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .unwrap();
        f.expect("a relevant Event", relevant_event, Duration::from_secs(5))
            .await;
        let of_type = |f: &support::Follower, t: &str| {
            f.seen
                .iter()
                .filter(|e| matches!(e, StreamEvent::Event { event_type, .. } if event_type == t))
                .count()
        };
        f.drain();
        assert!(of_type(&f, "status_update_event") >= 1, "{:?}", f.summary());
        assert_eq!(of_type(&f, "api_post_event"), 1, "{:?}", f.summary());
        assert_eq!(of_type(&f, "deployment_info"), 0, "{:?}", f.summary());
        assert!(
            f.seen.iter().all(|e| !matches!(
                e,
                StreamEvent::Event {
                    relevant: false,
                    ..
                }
            )),
            "{:?}",
            f.summary()
        );
        assert_eq!(f.connects(), 1);
        assert_eq!(f.silences(), 0);

        // A closed stream (leader loss) reconnects and resets again.
        sim.sim().disconnect_streams();
        f.expect("Connected", connected, Duration::from_secs(5))
            .await;
        assert_eq!(f.connects(), 2);
        f.stop().await;
        sim.shutdown().await;
    });
}

#[test]
fn watchdog_reconnects_a_silent_stream() {
    logs();
    support::runtime().block_on(async {
        let sim = sim(None, Duration::from_millis(100)).await;
        let mut f = start(config(vec![sim.base_url()]));
        f.expect("Connected", connected, Duration::from_secs(5))
            .await;

        // Keep-alives every 100 ms keep a 500 ms watchdog quiet.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(f.silences(), 0);

        sim.sim().set_sse_stalled(true);
        f.expect("Connected", connected, Duration::from_secs(5))
            .await;
        assert!(f.silences() >= 1, "{:?}", f.summary());
        assert!(f.connects() >= 2);

        // Once the stream flows again, the next change arrives.
        sim.sim().set_sse_stalled(false);
        tokio::time::sleep(Duration::from_millis(800)).await;
        f.drain();
        scale(&sim, 2);
        f.expect("a relevant Event", relevant_event, Duration::from_secs(5))
            .await;
        f.stop().await;
        sim.shutdown().await;
    });
}

/// A port with nothing listening.
fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// A server that accepts connections and never answers.
async fn hanging_url() -> (String, JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    (url, task)
}

#[test]
fn dead_and_hanging_marathons_do_not_stall_updates() {
    logs();
    support::runtime().block_on(async {
        let sim = sim(None, Duration::from_millis(100)).await;
        let (hanging, hang_task) = hanging_url().await;
        let mut f = start(config(vec![closed_port_url(), hanging, sim.base_url()]));
        let t = Instant::now();
        f.expect("Connected", connected, Duration::from_secs(4))
            .await;
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        scale(&sim, 2);
        f.expect("a relevant Event", relevant_event, Duration::from_secs(3))
            .await;

        // Losing the good stream goes round the list (dead, hanging, back off,
        // good) and comes back.
        sim.sim().disconnect_streams();
        f.expect("Connected", connected, Duration::from_secs(6))
            .await;
        assert_eq!(f.connects(), 2);
        assert_eq!(events_requests(&sim).len(), 2);
        scale(&sim, 3);
        f.expect("a relevant Event", relevant_event, Duration::from_secs(3))
            .await;
        f.stop().await;
        hang_task.abort();
        sim.shutdown().await;
    });
}

#[test]
fn basic_auth_is_sent() {
    logs();
    support::runtime().block_on(async {
        let sim = sim(Some("bob:s3cret"), Duration::from_millis(100)).await;

        // Without credentials: 401, retried with backoff, never connected.
        let mut f = start(config(vec![sim.base_url()]));
        f.expect_no_reset(Duration::from_millis(800)).await;
        assert_eq!(f.connects(), 0);
        assert!(!events_requests(&sim).is_empty());
        f.stop().await;
        sim.sim().clear_requests();

        let mut c = config(vec![sim.base_url()]);
        c.credentials = Some(Credentials::parse("bob:s3cret", "test").unwrap());
        let mut f = start(c);
        f.expect("Connected", connected, Duration::from_secs(5))
            .await;
        let reqs = events_requests(&sim);
        assert!(
            reqs.iter()
                .all(|r| r.auth && r.auth_scheme.as_deref() == Some("Basic")),
            "{reqs:?}"
        );
        scale(&sim, 2);
        f.expect("a relevant Event", relevant_event, Duration::from_secs(5))
            .await;
        f.stop().await;
        sim.shutdown().await;
    });
}

#[test]
fn leader_redirect_is_followed_with_auth() {
    logs();
    support::runtime().block_on(async {
        let leader = sim(Some("bob:s3cret"), Duration::from_millis(100)).await;
        let standby = sim(Some("bob:s3cret"), Duration::from_millis(100)).await;
        standby.sim().set_fault(Fault {
            mode: FaultMode::Redirect,
            target: Some(leader.base_url()),
            ..Fault::default()
        });
        let mut c = config(vec![standby.base_url()]);
        c.credentials = Some(Credentials::parse("bob:s3cret", "test").unwrap());
        let mut f = start(c);
        f.expect("Connected", connected, Duration::from_secs(5))
            .await;
        assert_eq!(f.connects(), 1);

        let asked = events_requests(&standby);
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert!(asked[0].auth);
        let followed = events_requests(&leader);
        assert_eq!(followed.len(), 1, "{followed:?}");
        assert!(followed[0].auth, "credentials re-sent to the leader");
        assert_eq!(followed[0].path, asked[0].path, "same query");

        scale(&leader, 2);
        f.expect("a relevant Event", relevant_event, Duration::from_secs(5))
            .await;
        f.stop().await;
        standby.shutdown().await;
        leader.shutdown().await;
    });
}

#[test]
fn error_status_backs_off_and_recovers() {
    logs();
    support::runtime().block_on(async {
        let sim = sim(None, Duration::from_millis(100)).await;
        sim.sim().set_fault(Fault {
            mode: FaultMode::NoLeader502,
            paths: vec!["/v2/events".into()],
            count: Some(2),
            ..Fault::default()
        });
        let mut f = start(config(vec![sim.base_url()]));
        f.expect("Connected", connected, Duration::from_secs(5))
            .await;
        assert_eq!(f.connects(), 1);
        assert_eq!(events_requests(&sim).len(), 3);
        f.stop().await;
        sim.shutdown().await;
    });
}

#[test]
fn redirect_loops_are_cut() {
    logs();
    support::runtime().block_on(async {
        let a = sim(None, Duration::from_millis(100)).await;
        a.sim().set_fault(Fault {
            mode: FaultMode::Redirect,
            target: Some(a.base_url()),
            ..Fault::default()
        });
        let mut f = start(config(vec![a.base_url()]));
        f.expect_no_reset(Duration::from_millis(600)).await;
        assert_eq!(f.connects(), 0);
        let n = events_requests(&a).len();
        assert!(n >= 4, "{n}");
        f.stop().await;
        a.shutdown().await;
    });
}

/// The reconnect backoff in paused time (the clock jumps over the sleeps,
/// so minutes of backoff take no real time): with two dead Marathons the
/// follower moves on to the next one at once and sleeps once per round,
/// each sleep within marathon-lb's wait (3 s, ×1.5, capped at
/// `--max-backoff`; full jitter), and the next attempt comes no earlier
/// than the announced wait.
#[tokio::test(start_paused = true)]
async fn failed_attempts_back_off_once_per_round_on_marathon_lbs_schedule() {
    let mut c = config(vec![closed_port_url(), closed_port_url()]);
    c.max_backoff = Duration::from_secs(20);
    let (tx, mut rx) = mpsc::channel(64);
    let task = tokio::spawn(follow(c, tx));
    let mut waits = Vec::new();
    let mut previous: Option<(Instant, Duration)> = None;
    for i in 0..16 {
        let e = rx.recv().await.expect("the follower keeps going");
        let StreamEvent::Failed { retry_in, .. } = e else {
            panic!("attempt {i}: {e:?}");
        };
        let now = Instant::now();
        if let Some((at, wait)) = previous {
            assert!(
                now - at >= wait,
                "attempt {i} after {:?}, not {wait:?}",
                now - at
            );
        }
        if i % 2 == 0 {
            assert_eq!(retry_in, None, "attempt {i}: the next URL at once");
        } else {
            waits.push(retry_in.expect("a backoff after each round"));
        }
        previous = Some((now, retry_in.unwrap_or_default()));
    }
    let mut wait = 3.0f64;
    for (round, got) in waits.iter().enumerate() {
        assert!(
            got.as_secs_f64() <= wait + 1e-6,
            "round {round}: {got:?} > {wait} s"
        );
        wait = (wait * 1.5).min(20.0);
    }
    assert!(waits.iter().any(|w| *w > Duration::ZERO), "{waits:?}");
    // Closing the channel stops the follower, even in a backoff sleep.
    drop(rx);
    timeout(Duration::from_secs(3), task)
        .await
        .unwrap()
        .unwrap();
}
