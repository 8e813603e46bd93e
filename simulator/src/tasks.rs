//! Building and changing single tasks: fresh IDs in the style of the app's existing tasks, fresh host ports,
//! health results.

use std::net::IpAddr;

use serde_json::{Map, Value, json};

use crate::apps::{App, app_id, tasks};
use crate::clock::{self, UuidGen};

/// Allocation state shared by the operations that create tasks.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub uuids: &'a UuidGen,
    /// The next host port to hand out (31000–65535, wrapping).
    pub next_port: &'a mut u32,
}

impl Ctx<'_> {
    fn port(&mut self) -> u32 {
        let p = *self.next_port;
        *self.next_port = if p >= 65_535 { 31_000 } else { p + 1 };
        p
    }
}

/// The first host port above every port in `apps` (at least 31000).
pub fn first_free_port(apps: &[App]) -> u32 {
    let max = apps
        .iter()
        .flat_map(tasks)
        .filter_map(|t| t.get("ports").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_u64)
        .max()
        .unwrap_or(0);
    (max as u32 + 1).clamp(31_000, 65_535)
}

/// `/shop/web` → `shop_web`, the prefix of its task IDs.
pub fn safe_id(app_id: &str) -> String {
    app_id.trim_start_matches('/').replace('/', "_")
}

/// The instance ID that health results and instance events carry for a task.
pub fn instance_id(task: &Value) -> String {
    let from_health = task
        .get("healthCheckResults")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(|r| r.get("instanceId"))
        .and_then(Value::as_str);
    if let Some(i) = from_health {
        return i.to_string();
    }
    let id = task.get("id").and_then(Value::as_str).unwrap_or("");
    if let Some((inst, _)) = id.split_once("._app.") {
        return inst.to_string();
    }
    match id.rsplit_once('.') {
        Some((prefix, uuid)) => format!("{prefix}.marathon-{uuid}"),
        None => id.to_string(),
    }
}

/// A fresh task ID, and its instance ID, in the style of `template` (1.8+ `app.instance-<uuid>._app.1`,
/// otherwise `app.<uuid>`).
fn fresh_ids(app: &App, template: Option<&Value>, uuids: &UuidGen) -> (String, String) {
    let safe = safe_id(app_id(app));
    let uuid = uuids.next();
    let tid = template
        .and_then(|t| t.get("id"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if tid.contains("._app.") {
        let inst = format!("{safe}.instance-{uuid}");
        return (format!("{inst}._app.1"), inst);
    }
    let t_inst = template.map(instance_id).unwrap_or_default();
    let inst = if t_inst.contains(".instance-") {
        format!("{safe}.instance-{uuid}")
    } else {
        format!("{safe}.marathon-{uuid}")
    };
    (format!("{safe}.{uuid}"), inst)
}

/// The app's service ports, from `portDefinitions`, `container.portMappings` or legacy `ports`.
fn service_ports(app: &App) -> Vec<Value> {
    let defs = app.get("portDefinitions").and_then(Value::as_array);
    let mappings = app
        .get("container")
        .and_then(|c| {
            c.get("portMappings")
                .or_else(|| c.get("docker")?.get("portMappings"))
        })
        .and_then(Value::as_array);
    if let Some(d) = defs.filter(|d| !d.is_empty()) {
        return d.iter().filter_map(|p| p.get("port").cloned()).collect();
    }
    if let Some(m) = mappings.filter(|m| !m.is_empty()) {
        return m
            .iter()
            .filter_map(|p| p.get("servicePort").cloned())
            .collect();
    }
    app.get("ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn health_checks(app: &App) -> &[Value] {
    app.get("healthChecks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// One passing health result, in the style (`null`s or not, `taskId` or `instanceId`) of `like`.
fn healthy_result(task_id: &str, inst: &str, like: Option<&Value>) -> Value {
    let now = clock::now();
    let mut r =
        json!({"alive": true, "consecutiveFailures": 0, "firstSuccess": now, "lastSuccess": now});
    let like = like.and_then(Value::as_object);
    let m = r.as_object_mut().expect("object");
    if like.is_some_and(|l| l.contains_key("lastFailure")) {
        m.insert("lastFailure".into(), Value::Null);
        m.insert("lastFailureCause".into(), Value::Null);
    }
    if like.is_some_and(|l| l.contains_key("taskId") && !l.contains_key("instanceId")) {
        m.insert("taskId".into(), Value::from(task_id));
    } else {
        m.insert("instanceId".into(), Value::from(inst));
    }
    r
}

/// A new running task for `app`, cloned from `template` (usually the app's last task) with fresh IDs,
/// timestamps, host ports and passing health results. `id` forces the task ID.
pub fn new_task(app: &App, template: Option<&Value>, id: Option<&str>, ctx: &mut Ctx<'_>) -> Value {
    let (mut tid, mut inst) = fresh_ids(app, template, ctx.uuids);
    if let Some(id) = id {
        tid = id.to_string();
        inst = instance_id(&json!({"id": id}));
    }
    let mut t: Map<String, Value> = template
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let now = clock::now();
    let version = app
        .get("version")
        .cloned()
        .unwrap_or_else(|| Value::from(now.clone()));
    let host = t
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("127.0.0.1")
        .to_string();
    let n_ports = match t.get("ports").and_then(Value::as_array) {
        Some(p) => p.len(),
        None => service_ports(app).len(),
    };
    let ports: Vec<Value> = (0..n_ports).map(|_| Value::from(ctx.port())).collect();
    let like = template
        .and_then(|t| t.get("healthCheckResults"))
        .and_then(Value::as_array)
        .and_then(|r| r.first());
    let results: Vec<Value> = health_checks(app)
        .iter()
        .map(|_| healthy_result(&tid, &inst, like))
        .collect();
    t.insert("id".into(), Value::from(tid));
    t.insert("appId".into(), Value::from(app_id(app)));
    t.insert("host".into(), Value::from(host.clone()));
    t.entry("slaveId")
        .or_insert_with(|| Value::from("sim-agent-S0"));
    t.insert("state".into(), Value::from("TASK_RUNNING"));
    t.insert("stagedAt".into(), Value::from(now.clone()));
    t.insert("startedAt".into(), Value::from(now));
    t.insert("version".into(), version);
    t.insert("ports".into(), Value::from(ports));
    t.insert("servicePorts".into(), Value::from(service_ports(app)));
    if !t.contains_key("ipAddresses") {
        t.insert("ipAddresses".into(), ip_addresses(&host));
    }
    if results.is_empty() {
        t.remove("healthCheckResults");
    } else {
        t.insert("healthCheckResults".into(), Value::from(results));
    }
    t.entry("localVolumes").or_insert_with(|| json!([]));
    Value::Object(t)
}

/// `[{"ipAddress": host, "protocol": "IPv4"|"IPv6"}]` when `host` is an IP address, else `[]`.
pub fn ip_addresses(host: &str) -> Value {
    match host.parse::<IpAddr>() {
        Ok(ip) => {
            let proto = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
            json!([{"ipAddress": host, "protocol": proto}])
        }
        Err(_) => json!([]),
    }
}

/// Whether the app's health is checked by Marathon itself (HTTP, HTTPS, TCP) rather than by Mesos
/// (`MESOS_*`, `COMMAND`). Decides which events a health flip produces.
pub fn marathon_side_health(app: &App) -> bool {
    match health_checks(app).first() {
        None => true,
        Some(hc) => matches!(
            hc.get("protocol").and_then(Value::as_str).unwrap_or("HTTP"),
            "HTTP" | "HTTPS" | "TCP"
        ),
    }
}

/// `Some(all alive)` from the task's health results, `None` when it has none.
pub fn healthy(task: &Value) -> Option<bool> {
    let rs = task.get("healthCheckResults")?.as_array()?;
    if rs.is_empty() {
        return None;
    }
    Some(
        rs.iter()
            .all(|r| r.get("alive").and_then(Value::as_bool) == Some(true)),
    )
}

/// Sets every health result of `task` to `alive` (creating one per health check, at least one, if the task
/// has none) and updates the failure counters and timestamps.
pub fn set_alive(app: &App, task: &mut Value, alive: bool) {
    let inst = instance_id(task);
    let tid = task
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(t) = task.as_object_mut() else {
        return;
    };
    let rs = t.entry("healthCheckResults").or_insert_with(|| json!([]));
    if !rs.is_array() {
        *rs = json!([]);
    }
    let rs = rs.as_array_mut().expect("array");
    if rs.is_empty() {
        let n = health_checks(app).len().max(1);
        rs.extend((0..n).map(|_| healthy_result(&tid, &inst, None)));
    }
    let now = clock::now();
    for r in rs.iter_mut().filter_map(Value::as_object_mut) {
        r.insert("alive".into(), Value::from(alive));
        if alive {
            r.insert("consecutiveFailures".into(), Value::from(0));
            r.insert("lastSuccess".into(), Value::from(now.clone()));
            if r.get("firstSuccess").is_none_or(Value::is_null) {
                r.insert("firstSuccess".into(), Value::from(now.clone()));
            }
        } else {
            let n = r
                .get("consecutiveFailures")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            r.insert("consecutiveFailures".into(), Value::from(n + 1));
            r.insert("lastFailure".into(), Value::from(now.clone()));
            r.insert("lastFailureCause".into(), Value::from("simulated failure"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(v: Value) -> App {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn instance_ids_from_task_ids() {
        assert_eq!(instance_id(&json!({"id": "a_b.123"})), "a_b.marathon-123");
        assert_eq!(
            instance_id(&json!({"id": "a.instance-9._app.1"})),
            "a.instance-9"
        );
        let t = json!({"id": "a.1", "healthCheckResults": [{"instanceId": "a.instance-1"}]});
        assert_eq!(instance_id(&t), "a.instance-1");
    }

    #[test]
    fn new_task_clones_template_with_fresh_ids_and_ports() {
        let a = app(
            json!({"id": "/web/site", "version": "v1", "portDefinitions": [{"port": 10111}],
            "healthChecks": [{"protocol": "HTTP"}]}),
        );
        let tmpl = json!({"id": "web_site.x", "host": "10.0.0.1", "ports": [31111], "region": "r",
            "healthCheckResults": [{"alive": false, "lastFailure": "t", "instanceId": "web_site.instance-x"}]});
        let uuids = UuidGen::default();
        let mut next = 32_000;
        let mut ctx = Ctx {
            uuids: &uuids,
            next_port: &mut next,
        };
        let t = new_task(&a, Some(&tmpl), None, &mut ctx);
        assert!(t["id"].as_str().expect("id").starts_with("web_site."));
        assert_ne!(t["id"], "web_site.x");
        assert_eq!(t["ports"], json!([32000]));
        assert_eq!(t["servicePorts"], json!([10111]));
        assert_eq!(t["region"], "r");
        assert_eq!(t["healthCheckResults"][0]["alive"], true);
        assert!(t["healthCheckResults"][0]["lastFailure"].is_null());
        assert!(
            t["healthCheckResults"][0]["instanceId"]
                .as_str()
                .expect("inst")
                .contains(".instance-")
        );
        let t2 = new_task(&a, None, Some("web_site.given"), &mut ctx);
        assert_eq!(t2["id"], "web_site.given");
        assert_eq!(t2["ports"], json!([32001]));
        assert_eq!(t2["host"], "127.0.0.1");
    }

    #[test]
    fn set_alive_flips_results() {
        let a = app(json!({"id": "/a", "healthChecks": [{"protocol": "MESOS_HTTP"}]}));
        assert!(!marathon_side_health(&a));
        let mut t = json!({"id": "a.1"});
        assert_eq!(healthy(&t), None);
        set_alive(&a, &mut t, false);
        assert_eq!(healthy(&t), Some(false));
        assert_eq!(t["healthCheckResults"][0]["consecutiveFailures"], 1);
        set_alive(&a, &mut t, true);
        assert_eq!(healthy(&t), Some(true));
    }
}
