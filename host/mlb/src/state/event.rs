//! The payload fields the state rules read, typed (see
//! `shared/spec/marathon-api.md` §3.4 for the shapes by Marathon version).

use serde_json::{Map, Value, json};

/// An event that concerns the apps.
#[derive(Debug)]
pub(super) enum AppEvent {
    /// `status_update_event`.
    Status(StatusUpdate),
    /// `health_status_changed_event` / `instance_health_changed_event`:
    /// health results changed, and the event does not carry them.
    Health(String),
    /// `api_post_event`: the app's definition was written.
    Changed(String),
    /// `app_terminated_event`: the app is gone.
    Terminated(String),
    /// `deployment_info` whose current step stops these apps: Marathon
    /// dropped them from its list when the deployment started.
    Stopped(Vec<String>),
}

/// What Marathon does with a task in a given state.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum TaskFate {
    /// Still listed with this state (`TASK_STAGING`, `TASK_STARTING`,
    /// `TASK_RUNNING`, `TASK_KILLING`).
    Listed,
    /// Terminal: the instance is expunged, the task no longer listed.
    Expunged,
    /// `TASK_LOST`, `TASK_UNREACHABLE`, `TASK_UNKNOWN` or a state this
    /// code does not know: how Marathon lists it is not proved (an
    /// unreachable instance stays listed and still routes).
    Unproven,
}

/// A `status_update_event`.
#[derive(Debug)]
pub(super) struct StatusUpdate {
    pub(super) app: String,
    pub(super) task: String,
    pub(super) state: String,
    pub(super) version: Option<String>,
    host: Option<String>,
    slave: Option<String>,
    ports: Option<Value>,
    ip_addresses: Option<Value>,
}

fn text(payload: &Value, key: &str) -> Option<String> {
    payload.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn need(payload: &Value, key: &'static str) -> Result<String, &'static str> {
    text(payload, key).ok_or(key)
}

/// The event, `Ok(None)` for types that do not concern the apps, `Err`
/// naming a missing field.
pub(super) fn parse(event_type: &str, payload: &Value) -> Result<Option<AppEvent>, &'static str> {
    Ok(Some(match event_type {
        "status_update_event" => AppEvent::Status(StatusUpdate {
            app: need(payload, "appId")?,
            task: need(payload, "taskId")?,
            state: need(payload, "taskStatus")?,
            version: text(payload, "version"),
            host: text(payload, "host"),
            slave: text(payload, "slaveId").filter(|s| !s.is_empty()),
            ports: payload.get("ports").filter(|p| p.is_array()).cloned(),
            ip_addresses: payload.get("ipAddresses").filter(|p| p.is_array()).cloned(),
        }),
        // Before 1.4 the first carried `taskId`; both carry the app.
        "health_status_changed_event" => AppEvent::Health(need(payload, "appId")?),
        "instance_health_changed_event" => AppEvent::Health(need(payload, "runSpecId")?),
        "api_post_event" => AppEvent::Changed(
            payload
                .get("appDefinition")
                .and_then(|d| text(d, "id"))
                .ok_or("appDefinition.id")?,
        ),
        "app_terminated_event" => AppEvent::Terminated(need(payload, "appId")?),
        "deployment_info" => {
            let actions = payload
                .pointer("/currentStep/actions")
                .and_then(Value::as_array)
                .ok_or("currentStep.actions")?;
            let stopped: Vec<String> = actions
                .iter()
                .filter(|a| a.get("action").and_then(Value::as_str) == Some("StopApplication"))
                .filter_map(|a| text(a, "app"))
                .collect();
            if stopped.is_empty() {
                return Ok(None);
            }
            AppEvent::Stopped(stopped)
        }
        _ => return Ok(None),
    }))
}

impl StatusUpdate {
    pub(super) fn fate(&self) -> TaskFate {
        match self.state.as_str() {
            "TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING" | "TASK_KILLING" => TaskFate::Listed,
            "TASK_FINISHED"
            | "TASK_FAILED"
            | "TASK_KILLED"
            | "TASK_ERROR"
            | "TASK_DROPPED"
            | "TASK_GONE"
            | "TASK_GONE_BY_OPERATOR" => TaskFate::Expunged,
            _ => TaskFate::Unproven,
        }
    }

    /// Whether a task in this state receives traffic.
    pub(super) fn routable(&self) -> bool {
        self.state == "TASK_RUNNING"
    }

    /// The fields the event carries, as a task's JSON fields.
    fn fields(&self) -> Vec<(&'static str, Value)> {
        let mut out = vec![("state", json!(self.state))];
        if let Some(h) = &self.host {
            out.push(("host", json!(h)));
        }
        if let Some(p) = &self.ports {
            out.push(("ports", p.clone()));
        }
        if let Some(a) = &self.ip_addresses {
            out.push(("ipAddresses", a.clone()));
        }
        out
    }

    /// Set the listed task's fields to the event's; whether anything changed.
    pub(super) fn merge_into(&self, task: &mut Value) -> bool {
        let Some(task) = task.as_object_mut() else {
            return false;
        };
        let mut changed = false;
        for (key, value) in self.fields() {
            if task.get(key) != Some(&value) {
                task.insert(key.to_owned(), value);
                changed = true;
            }
        }
        changed
    }

    /// A task the state did not hold, from the event's fields.
    pub(super) fn new_task(&self) -> Value {
        let mut task = Map::new();
        task.insert("id".into(), json!(self.task));
        task.insert("appId".into(), json!(self.app));
        if let Some(s) = &self.slave {
            task.insert("slaveId".into(), json!(s));
        }
        if let Some(v) = &self.version {
            task.insert("version".into(), json!(v));
        }
        for (key, value) in self.fields() {
            task.insert(key.to_owned(), value);
        }
        Value::Object(task)
    }
}
