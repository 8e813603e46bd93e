//! Task lifecycles as Marathon and Mesos run them: a killed task turns `TASK_KILLING`, stays listed and
//! keeps serving for its kill grace period, then dies (`TASK_KILLED`, gone, its port closed); and a
//! rolling restart (`POST /v2/apps/{id}/restart`) replaces every task within the app's
//! `upgradeStrategy`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    Event, Sse, app, client, delete, get_json, post, put, settled, sim, task_answer,
};

/// The next event within 5 s, which must exist.
async fn next(sse: &mut Sse) -> Event {
    sse.next_within(Duration::from_secs(5))
        .await
        .expect("an event within 5 s")
}

/// Skips events until one of type `ty` whose payload satisfies `pred`.
async fn until(sse: &mut Sse, ty: &str, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let e = next(sse).await;
        if e.event_type == ty && pred(&e.data) {
            return e.data;
        }
    }
    panic!("no matching {ty}");
}

fn ids(a: &Value) -> Vec<String> {
    a["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_owned())
        .collect()
}

fn listed<'a>(a: &'a Value, tid: &str) -> Option<&'a Value> {
    a["tasks"].as_array()?.iter().find(|t| t["id"] == tid)
}

/// Whether nothing listens on `port` any more (polled: a dropped listener closes on the runtime).
async fn closes(port: &Value) -> bool {
    let port = port.as_u64().expect("port");
    for _ in 0..100 {
        if client()
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .is_err()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_killed_task_keeps_serving_as_task_killing_for_its_grace_then_dies() {
    let s = sim().await;
    let base = s.base_url();
    let def = json!({"id": "grace", "instances": 3, "portDefinitions": [{"port": 10150}],
        "taskKillGracePeriodSeconds": 0.3});
    let (st, _) = post(&format!("{base}/v2/apps"), Some(def)).await;
    assert_eq!(st, StatusCode::CREATED);
    let before = settled(&base, "/grace").await;
    let mut sse = Sse::open(&base, "").await;
    let victim = before["tasks"][2].clone();
    let tid = victim["id"].as_str().expect("id");

    // Killed without scaling: TASK_KILLING at once, with the real payload.
    let (st, r) = post(
        &format!("{base}/v2/tasks/delete"),
        Some(json!({"ids": [tid]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["tasks"][0]["state"], "TASK_KILLING");
    let e = until(&mut sse, "status_update_event", |e| e["taskId"] == tid).await;
    assert_eq!(e["taskStatus"], "TASK_KILLING");
    assert_eq!(e["appId"], "/grace");
    assert_eq!(e["host"], "127.0.0.1");
    assert_eq!(e["ports"], victim["ports"]);
    assert_eq!(e["version"], victim["version"]);
    assert_eq!(e["slaveId"], victim["slaveId"]);
    assert!(e["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    let e = next(&mut sse).await;
    assert_eq!(e.event_type, "instance_changed_event");
    assert_eq!(e.data["condition"], "Killing");

    // During the grace period: listed as TASK_KILLING (not counted as running), still answering.
    let (_, all) = get_json(&format!("{base}/v2/apps?embed=apps.tasks")).await;
    let listed_app = all["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .find(|a| a["id"] == "/grace")
        .expect("app");
    assert_eq!(
        listed(listed_app, tid).expect("still listed")["state"],
        "TASK_KILLING"
    );
    let (_, tasks) = get_json(&format!("{base}/v2/apps/grace/tasks")).await;
    assert!(
        tasks["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .any(|t| t["id"] == tid)
    );
    let answer = task_answer(&victim["ports"][0]).await;
    assert_eq!(answer.trim_end(), format!("/grace {tid}"));

    // Then it dies: TASK_KILLED, gone from the list, its port closed. A replacement was launched
    // (instances unchanged).
    let e = until(&mut sse, "status_update_event", |e| {
        e["taskId"] == tid && e["taskStatus"] != "TASK_KILLING"
    })
    .await;
    assert_eq!(e["taskStatus"], "TASK_KILLED");
    assert_eq!(
        next(&mut sse).await.data["condition"],
        "Killed",
        "instance_changed_event follows"
    );
    assert!(listed(&app(&base, "/grace").await, tid).is_none());
    assert!(
        closes(&victim["ports"][0]).await,
        "the killed task stopped listening"
    );
    let a = settled(&base, "/grace").await;
    assert_eq!(a["tasks"].as_array().map(Vec::len), Some(3));

    // Scale down: the youngest tasks go through TASK_KILLING too.
    let (st, _) = put(&format!("{base}/v2/apps/grace"), json!({"instances": 1})).await;
    assert_eq!(st, StatusCode::OK);
    let a = app(&base, "/grace").await;
    let young = ids(&a)[1..].to_vec();
    for _ in 0..2 {
        let e = until(&mut sse, "status_update_event", |e| {
            e["taskStatus"] == "TASK_KILLING"
        })
        .await;
        assert!(young.iter().any(|t| e["taskId"] == t.as_str()), "{e}");
    }
    let a = settled(&base, "/grace").await;
    assert_eq!(ids(&a), ids(&before)[..1].to_vec(), "the oldest task stays");

    // Deleting the app: it leaves the list at once; its tasks are killing, then killed, then the app
    // is terminated.
    let last = a["tasks"][0]["id"].as_str().expect("id").to_owned();
    let (st, _) = delete(&format!("{base}/v2/apps/grace")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        get_json(&format!("{base}/v2/apps/grace")).await.0,
        StatusCode::NOT_FOUND
    );
    let e = until(&mut sse, "status_update_event", |e| e["taskId"] == last).await;
    assert_eq!(e["taskStatus"], "TASK_KILLING");
    let e = until(&mut sse, "status_update_event", |e| e["taskId"] == last).await;
    assert_eq!(e["taskStatus"], "TASK_KILLED");
    until(&mut sse, "app_terminated_event", |e| e["appId"] == "/grace").await;
}

/// What the event stream says about the tasks of one app during a restart.
#[derive(Default)]
struct Watch {
    /// Last status per task.
    status: HashMap<String, String>,
    /// Instance id per task.
    instance: HashMap<String, String>,
    healthy: HashSet<String>,
    last_task: String,
    /// Statuses each task went through, in order.
    history: HashMap<String, Vec<String>>,
}

impl Watch {
    fn see(&mut self, e: &Event) {
        let d = &e.data;
        match e.event_type.as_str() {
            "status_update_event" => {
                let (t, st) = (
                    d["taskId"].as_str().expect("task"),
                    d["taskStatus"].as_str().expect("status"),
                );
                self.status.insert(t.to_owned(), st.to_owned());
                self.history
                    .entry(t.to_owned())
                    .or_default()
                    .push(st.to_owned());
                self.last_task = t.to_owned();
            }
            "instance_changed_event" => {
                let inst = d["instanceId"].as_str().expect("instance").to_owned();
                self.instance.insert(self.last_task.clone(), inst);
            }
            "health_status_changed_event" => {
                let inst = d["instanceId"].as_str().expect("instance").to_owned();
                if d["alive"] == true {
                    self.healthy.insert(inst);
                } else {
                    self.healthy.remove(&inst);
                }
            }
            _ => {}
        }
    }

    /// Tasks running and healthy (not killing).
    fn available(&self) -> usize {
        self.status
            .iter()
            .filter(|(t, s)| {
                s.as_str() == "TASK_RUNNING"
                    && self
                        .instance
                        .get(*t)
                        .is_some_and(|i| self.healthy.contains(i))
            })
            .count()
    }

    /// Tasks that exist (staging, running or killing).
    fn existing(&self) -> usize {
        self.status
            .values()
            .filter(|s| matches!(s.as_str(), "TASK_STAGING" | "TASK_RUNNING" | "TASK_KILLING"))
            .count()
    }
}

#[tokio::test]
async fn a_rolling_restart_replaces_every_task_within_the_upgrade_strategy() {
    let s = sim().await;
    let base = s.base_url();
    // 4 tasks: at least ceil(4 × 0.5) = 2 healthy, at most floor(4 × 1.25) = 5 at once.
    let def = json!({"id": "roll", "instances": 4, "portDefinitions": [{"port": 10151}],
        "taskKillGracePeriodSeconds": 0.3,
        "healthChecks": [{"protocol": "HTTP", "path": "/"}],
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.25}});
    let (st, _) = post(&format!("{base}/v2/apps"), Some(def)).await;
    assert_eq!(st, StatusCode::CREATED);
    let before = settled(&base, "/roll").await;
    let old = ids(&before);
    assert_eq!(old.len(), 4);
    let mut watch = Watch::default();
    for t in before["tasks"].as_array().expect("tasks") {
        let tid = t["id"].as_str().expect("id").to_owned();
        let inst = t["healthCheckResults"][0]["instanceId"]
            .as_str()
            .expect("inst")
            .to_owned();
        assert_eq!(t["healthCheckResults"][0]["alive"], true);
        watch.status.insert(tid.clone(), "TASK_RUNNING".into());
        watch.instance.insert(tid, inst.clone());
        watch.healthy.insert(inst);
    }
    let mut sse = Sse::open(&base, "").await;

    let r = client()
        .post(format!("{base}/v2/apps/roll/restart"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let header = r
        .headers()
        .get("marathon-deployment-id")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body: Value = r.json().await.expect("json");
    let deployment = body["deploymentId"]
        .as_str()
        .expect("deploymentId")
        .to_owned();
    let version = body["version"].as_str().expect("version").to_owned();
    assert_eq!(header.as_deref(), Some(deployment.as_str()));
    let (st, _) = post(&format!("{base}/v2/apps/roll/restart"), None).await;
    assert_eq!(st, StatusCode::CONFLICT, "locked by the restart");
    let (_, deployments) = get_json(&format!("{base}/v2/deployments")).await;
    assert_eq!(deployments[0]["id"], deployment.as_str());
    assert_eq!(
        deployments[0]["currentActions"][0]["action"],
        "RestartApplication"
    );
    let (st, _) = post(&format!("{base}/v2/apps/nope/restart"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let mut kinds = Vec::new();
    let (mut min_available, mut max_existing) = (usize::MAX, 0);
    loop {
        let e = next(&mut sse).await;
        watch.see(&e);
        min_available = min_available.min(watch.available());
        max_existing = max_existing.max(watch.existing());
        if e.event_type.starts_with("deployment_") {
            kinds.push(e.event_type.clone());
            assert_eq!(
                e.data.get("plan").map(|p| &p["id"]).or(e.data.get("id")),
                Some(&json!(deployment))
            );
        }
        if e.event_type == "deployment_info" {
            assert_eq!(
                e.data["currentStep"]["actions"][0]["action"],
                "RestartApplication"
            );
            assert_eq!(e.data["currentStep"]["actions"][0]["app"], "/roll");
        }
        if e.event_type == "deployment_success" {
            break;
        }
    }
    println!(
        "restart of 4 tasks: at least {min_available} healthy throughout, at most {max_existing} at once"
    );
    assert_eq!(
        kinds,
        [
            "deployment_info",
            "deployment_step_success",
            "deployment_success"
        ]
    );
    assert!(
        min_available >= 2,
        "never below minimumHealthCapacity × instances"
    );
    assert!(
        max_existing <= 5,
        "never above (1 + maximumOverCapacity) × instances"
    );
    for t in &old {
        assert_eq!(
            watch.history[t],
            ["TASK_KILLING", "TASK_KILLED"],
            "old task {t}"
        );
    }

    let after = app(&base, "/roll").await;
    assert_eq!(after["deployments"], json!([]));
    assert_eq!(after["version"], version.as_str());
    assert_eq!(after["tasksHealthy"], 4);
    let new = ids(&after);
    assert_eq!(new.len(), 4);
    for t in after["tasks"].as_array().expect("tasks") {
        let tid = t["id"].as_str().expect("id");
        assert!(!old.iter().any(|o| o == tid), "every task replaced");
        assert_eq!(t["state"], "TASK_RUNNING");
        assert_eq!(t["version"], version.as_str());
        assert_eq!(
            watch.history[tid],
            ["TASK_STAGING", "TASK_RUNNING"],
            "new task {tid}"
        );
        assert_eq!(
            task_answer(&t["ports"][0]).await.trim_end(),
            format!("/roll {tid}")
        );
    }
    for t in before["tasks"].as_array().expect("tasks") {
        assert!(closes(&t["ports"][0]).await, "old task {} closed", t["id"]);
    }
    let (_, deployments) = get_json(&format!("{base}/v2/deployments")).await;
    assert_eq!(deployments, json!([]));
}

#[tokio::test]
async fn one_by_one_restart_keeps_every_instance_up() {
    // Marathon's default strategy (1, 1) on 2 tasks; and (1, 0): one extra task at a time.
    let s = sim().await;
    let base = s.base_url();
    let def = json!({"id": "one", "instances": 2, "portDefinitions": [{"port": 10152}],
        "taskKillGracePeriodSeconds": 0,
        "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 0}});
    let (st, created) = post(&format!("{base}/v2/apps"), Some(def)).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(created["upgradeStrategy"]["maximumOverCapacity"], 0);
    let before = settled(&base, "/one").await;
    let mut sse = Sse::open(&base, "event_type=status_update_event").await;
    let (st, _) = post(&format!("{base}/v2/apps/one/restart?force=true"), None).await;
    assert_eq!(st, StatusCode::OK);
    let mut running: HashSet<String> = ids(&before).into_iter().collect();
    let mut existing = running.len();
    let (mut min_running, mut max_existing) = (usize::MAX, 0);
    let mut killed = 0;
    while killed < 2 {
        let e = next(&mut sse).await;
        let tid = e.data["taskId"].as_str().expect("task").to_owned();
        match e.data["taskStatus"].as_str().expect("status") {
            "TASK_STAGING" => existing += 1,
            "TASK_RUNNING" => {
                running.insert(tid);
            }
            "TASK_KILLING" => {
                running.remove(&tid);
            }
            "TASK_KILLED" => {
                existing -= 1;
                killed += 1;
            }
            other => panic!("unexpected {other}"),
        }
        min_running = min_running.min(running.len());
        max_existing = max_existing.max(existing);
    }
    assert_eq!((min_running, max_existing), (2, 3));
    let after = settled(&base, "/one").await;
    let new = ids(&after);
    assert_eq!(new.len(), 2);
    assert!(new.iter().all(|t| !ids(&before).contains(t)));
}
