//! Event payloads in Marathon's shapes (spec §3.4) and their SSE framing (spec §3.1).
//!
//! Every payload carries `eventType` and `timestamp`; unknown optional fields are left out.

use serde_json::{Map, Value, json};

use crate::apps::App;
use crate::clock;

/// Deployment events whose `plan` is affected by `plan-format`.
const PLAN_EVENTS: &[&str] = &[
    "deployment_info",
    "deployment_success",
    "deployment_failed",
    "deployment_step_success",
    "deployment_step_failure",
];

/// An event ready to send: its type and its single-line JSON in full and light plan format.
#[derive(Debug, Clone)]
pub struct SimEvent {
    pub event_type: String,
    full: String,
    light: Option<String>,
}

impl SimEvent {
    /// Wraps a payload; adds `timestamp` when missing. The payload must carry a string `eventType`.
    pub fn new(mut payload: Map<String, Value>) -> Option<Self> {
        let event_type = payload.get("eventType")?.as_str()?.to_string();
        payload
            .entry("timestamp")
            .or_insert_with(|| Value::from(clock::now()));
        let full = Value::Object(payload);
        let light = light_form(&event_type, &full).map(|v| v.to_string());
        Some(Self {
            event_type,
            full: full.to_string(),
            light,
        })
    }

    /// The JSON sent to a client that asked (or not) for `plan-format=light`.
    pub fn json(&self, light: bool) -> &str {
        match (&self.light, light) {
            (Some(l), true) => l,
            _ => &self.full,
        }
    }

    /// The SSE frame: `event: <type>\r\ndata: <json>\r\n\r\n`, as Jetty's `EventSourceServlet` writes it.
    pub fn frame(&self, light: bool) -> String {
        format!(
            "event: {}\r\ndata: {}\r\n\r\n",
            self.event_type,
            self.json(light)
        )
    }
}

/// For deployment events, the plan without `original` and `target` (the group trees), if that changes it.
fn light_form(event_type: &str, full: &Value) -> Option<Value> {
    if !PLAN_EVENTS.contains(&event_type) {
        return None;
    }
    let plan = full.get("plan")?.as_object()?;
    if !plan.contains_key("original") && !plan.contains_key("target") {
        return None;
    }
    let mut light = full.clone();
    if let Some(p) = light.get_mut("plan").and_then(Value::as_object_mut) {
        p.remove("original");
        p.remove("target");
    }
    Some(light)
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// `status_update_event` for a task reaching `status` (a `TASK_*` name).
pub fn status_update(
    app_id: &str,
    task: &Value,
    status: &str,
    app_version: &str,
) -> Map<String, Value> {
    let host = str_of(task, "host")
        .filter(|h| !h.is_empty())
        .unwrap_or("unknown");
    obj(json!({
        "slaveId": str_of(task, "slaveId").unwrap_or(""),
        "taskId": str_of(task, "id").unwrap_or(""),
        "taskStatus": status,
        "message": "",
        "appId": app_id,
        "host": host,
        "ipAddresses": task.get("ipAddresses").filter(|v| v.is_array()).cloned().unwrap_or(json!([])),
        "ports": task.get("ports").filter(|v| v.is_array()).cloned().unwrap_or(json!([])),
        "version": str_of(task, "version").unwrap_or(app_version),
        "eventType": "status_update_event",
        "timestamp": clock::now(),
    }))
}

/// The instance condition that Marathon reports for a Mesos task state.
pub fn condition(state: &str) -> &'static str {
    match state {
        "TASK_STAGING" => "Staging",
        "TASK_STARTING" => "Starting",
        "TASK_RUNNING" => "Running",
        "TASK_KILLING" => "Killing",
        "TASK_KILLED" => "Killed",
        "TASK_FINISHED" => "Finished",
        "TASK_FAILED" => "Failed",
        "TASK_ERROR" => "Error",
        "TASK_LOST" | "TASK_UNREACHABLE" => "Unreachable",
        "TASK_GONE" | "TASK_GONE_BY_OPERATOR" => "Gone",
        "TASK_DROPPED" => "Dropped",
        _ => "Unknown",
    }
}

/// `instance_changed_event`, sent after the `status_update_event` of the same change.
pub fn instance_changed(
    app_id: &str,
    task: &Value,
    instance_id: &str,
    status: &str,
    app_version: &str,
) -> Map<String, Value> {
    obj(json!({
        "instanceId": instance_id,
        "condition": condition(status),
        "runSpecId": app_id,
        "agentId": task.get("slaveId").cloned().unwrap_or(Value::Null),
        "host": task.get("host").cloned().unwrap_or(Value::Null),
        "runSpecVersion": str_of(task, "version").unwrap_or(app_version),
        "timestamp": clock::now(),
        "eventType": "instance_changed_event",
    }))
}

/// The `status_update_event` + `instance_changed_event` pair of a task reaching `status`, in Marathon's
/// order.
pub fn task_changed(
    app_id: &str,
    task: &Value,
    status: &str,
    app_version: &str,
) -> [Map<String, Value>; 2] {
    let instance = crate::tasks::instance_id(task);
    [
        status_update(app_id, task, status, app_version),
        instance_changed(app_id, task, &instance, status, app_version),
    ]
}

/// `health_status_changed_event` (Marathon-side HTTP/HTTPS/TCP checks only).
pub fn health_status_changed(
    app_id: &str,
    instance_id: &str,
    version: &str,
    alive: bool,
) -> Map<String, Value> {
    obj(json!({
        "appId": app_id,
        "instanceId": instance_id,
        "version": version,
        "alive": alive,
        "eventType": "health_status_changed_event",
        "timestamp": clock::now(),
    }))
}

/// `instance_health_changed_event` (any kind of check).
pub fn instance_health_changed(
    app_id: &str,
    instance_id: &str,
    version: &str,
    healthy: bool,
) -> Map<String, Value> {
    obj(json!({
        "instanceId": instance_id,
        "runSpecId": app_id,
        "healthy": healthy,
        "runSpecVersion": version,
        "timestamp": clock::now(),
        "eventType": "instance_health_changed_event",
    }))
}

/// `api_post_event` for a created (`uri` = `/v2/apps`) or updated (`/v2/apps/<id>`) app.
pub fn api_post(uri: &str, definition: App) -> Map<String, Value> {
    obj(json!({
        "clientIp": "127.0.0.1",
        "uri": uri,
        "appDefinition": Value::Object(definition),
        "eventType": "api_post_event",
        "timestamp": clock::now(),
    }))
}

/// `app_terminated_event`, once an app is gone.
pub fn app_terminated(app_id: &str) -> Map<String, Value> {
    obj(json!({"appId": app_id, "eventType": "app_terminated_event", "timestamp": clock::now()}))
}

/// `deployment_info`: a step of the deployment `plan` starts.
pub fn deployment_info(plan: &Value, step: &Value) -> Map<String, Value> {
    obj(json!({
        "plan": plan,
        "currentStep": step,
        "eventType": "deployment_info",
        "timestamp": clock::now(),
    }))
}

/// `deployment_step_success`: a step of the deployment `plan` finished.
pub fn deployment_step_success(plan: &Value, step: &Value) -> Map<String, Value> {
    obj(json!({
        "plan": plan,
        "currentStep": step,
        "eventType": "deployment_step_success",
        "timestamp": clock::now(),
    }))
}

/// `deployment_success`: the deployment `id` finished.
pub fn deployment_success(id: &str, plan: &Value) -> Map<String, Value> {
    obj(json!({
        "id": id,
        "plan": plan,
        "eventType": "deployment_success",
        "timestamp": clock::now(),
    }))
}

/// `event_stream_attached` / `event_stream_detached`.
pub fn stream(attached: bool, remote: &str) -> Map<String, Value> {
    let t = if attached {
        "event_stream_attached"
    } else {
        "event_stream_detached"
    };
    obj(json!({"remoteAddress": remote, "eventType": t, "timestamp": clock::now()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_is_crlf_event_then_data() {
        let e = SimEvent::new(obj(json!({"eventType": "x", "timestamp": "t"}))).expect("event");
        assert_eq!(
            e.frame(false),
            "event: x\r\ndata: {\"eventType\":\"x\",\"timestamp\":\"t\"}\r\n\r\n"
        );
        assert!(SimEvent::new(obj(json!({"no": "type"}))).is_none());
    }

    #[test]
    fn light_plan_drops_group_trees() {
        let e = SimEvent::new(obj(json!({"eventType": "deployment_info",
            "plan": {"id": "d", "steps": [], "original": {"apps": []}, "target": {"apps": []}}})))
        .expect("event");
        assert!(e.json(false).contains("original"));
        assert!(!e.json(true).contains("original"));
        assert!(e.json(true).contains("\"steps\""));
    }

    #[test]
    fn status_update_shape() {
        let t = json!({"id": "a.1", "host": "h", "slaveId": "s", "ports": [1], "version": "v"});
        let e = status_update("/a", &t, "TASK_KILLED", "av");
        assert_eq!(e["taskId"], "a.1");
        assert_eq!(e["taskStatus"], "TASK_KILLED");
        assert_eq!(e["ipAddresses"], json!([]));
        assert_eq!(e["version"], "v");
        let e = status_update("/a", &json!({"id": "a.2"}), "TASK_RUNNING", "av");
        assert_eq!(e["host"], "unknown");
        assert_eq!(e["slaveId"], "");
    }
}
