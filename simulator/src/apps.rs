//! Pure views of the app document: `embed` resolution, task counts and the serialisers that serve apps
//! without copying them.
//!
//! Apps are kept as raw JSON objects exactly as loaded (so a 1.4-shaped file is served in 1.4 shape), plus
//! the runtime parts Marathon embeds on request: `tasks`, counts, `deployments`, `readinessCheckResults`,
//! `lastTaskFailure` and `taskStats`.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

/// One app as a JSON object.
pub type App = Map<String, Value>;

/// Keys that are runtime state rather than the app definition.
pub const RUNTIME_KEYS: &[&str] = &[
    "tasks",
    "tasksStaged",
    "tasksRunning",
    "tasksHealthy",
    "tasksUnhealthy",
    "deployments",
    "readinessCheckResults",
    "lastTaskFailure",
    "taskStats",
];

const COUNT_KEYS: [&str; 4] = [
    "tasksStaged",
    "tasksRunning",
    "tasksHealthy",
    "tasksUnhealthy",
];

/// What to embed in each served app.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Embed {
    pub tasks: bool,
    pub readiness: bool,
    pub last_task_failure: bool,
    pub task_stats: bool,
}

impl Embed {
    /// Resolves `embed` values as `GET /v2/apps` does. Values may carry the prefix `apps.`, `app.` or
    /// `group.apps.`; unknown values are ignored. Counts and deployments are always embedded.
    pub fn for_list<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut e = Self::default();
        for v in values {
            let v = ["group.apps.", "apps.", "app."]
                .iter()
                .find_map(|p| v.strip_prefix(p))
                .unwrap_or(v);
            match v {
                "tasks" => e.tasks = true,
                "readiness" => e.readiness = true,
                "lastTaskFailure" => e.last_task_failure = true,
                "failures" => {
                    e.tasks = true;
                    e.last_task_failure = true;
                }
                "taskStats" => e.task_stats = true,
                _ => {}
            }
        }
        e
    }

    /// `GET /v2/apps/{id}` always embeds tasks and the last task failure as well.
    pub fn for_single<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            tasks: true,
            last_task_failure: true,
            ..Self::for_list(values)
        }
    }
}

/// The apps of a document: `{"apps": [...]}` (the `/v2/apps?embed=apps.tasks` shape) or a bare list.
/// Every app must be an object with a string `id`.
pub fn parse_doc(doc: Value) -> Result<Vec<App>, String> {
    let list = match doc {
        Value::Object(mut m) => match m.remove("apps") {
            Some(Value::Array(a)) => a,
            _ => return Err("expected {\"apps\": [...]} or a list of apps".into()),
        },
        Value::Array(a) => a,
        _ => return Err("expected {\"apps\": [...]} or a list of apps".into()),
    };
    list.into_iter()
        .enumerate()
        .map(|(i, a)| match a {
            Value::Object(m) if m.get("id").is_some_and(Value::is_string) => Ok(m),
            _ => Err(format!("app #{i} is not an object with a string \"id\"")),
        })
        .collect()
}

/// The app's ID (`""` when missing).
pub fn app_id(app: &App) -> &str {
    app.get("id").and_then(Value::as_str).unwrap_or("")
}

/// The app's `version` (empty when it has none).
pub fn app_version(app: &App) -> &str {
    app.get("version").and_then(Value::as_str).unwrap_or("")
}

/// The app's task array, if any.
pub fn tasks(app: &App) -> &[Value] {
    app.get("tasks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A task's `state` (`""` when missing).
pub fn task_state(task: &Value) -> &str {
    task.get("state").and_then(Value::as_str).unwrap_or("")
}

/// `tasksStaged`, `tasksRunning`, `tasksHealthy` and `tasksUnhealthy` computed from the tasks.
pub fn compute_counts(tasks: &[Value]) -> [u64; 4] {
    let mut c = [0u64; 4];
    for t in tasks {
        match task_state(t) {
            "TASK_STAGING" | "TASK_STARTING" => c[0] += 1,
            "TASK_RUNNING" => c[1] += 1,
            _ => {}
        }
        let results = t
            .get("healthCheckResults")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if !results.is_empty() {
            let alive = |r: &Value| r.get("alive").and_then(Value::as_bool).unwrap_or(false);
            if results.iter().all(alive) {
                c[2] += 1;
            } else {
                c[3] += 1;
            }
        }
    }
    c
}

/// Rewrites the app's counts from its tasks (after the simulator changed them).
pub fn refresh_counts(app: &mut App) {
    let counts = compute_counts(tasks(app));
    for (k, n) in COUNT_KEYS.iter().zip(counts) {
        app.insert((*k).to_string(), Value::from(n));
    }
}

/// Brings a loaded app into the shape the simulator relies on: tasks carry `appId`.
pub fn normalise(app: &mut App) {
    let id = app_id(app).to_string();
    if let Some(Value::Array(ts)) = app.get_mut("tasks") {
        for t in ts.iter_mut().filter_map(Value::as_object_mut) {
            t.entry("appId").or_insert_with(|| Value::from(id.clone()));
        }
    }
}

/// The app definition alone, as carried by `api_post_event`.
pub fn definition(app: &App) -> App {
    app.iter()
        .filter(|(k, _)| !RUNTIME_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Serialises an app with the given embeds, without copying it.
#[derive(Debug, Clone, Copy)]
pub struct AppView<'a> {
    pub app: &'a App,
    pub embed: Embed,
}

impl Serialize for AppView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.embed;
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.app {
            let keep = match k.as_str() {
                "tasks" => e.tasks,
                "readinessCheckResults" => e.readiness,
                "lastTaskFailure" => e.last_task_failure,
                "taskStats" => e.task_stats,
                _ => true,
            };
            if keep {
                m.serialize_entry(k, v)?;
            }
        }
        if !self.app.contains_key("tasksStaged") {
            let c = compute_counts(tasks(self.app));
            for (k, n) in COUNT_KEYS.iter().zip(c) {
                m.serialize_entry(k, &n)?;
            }
        }
        if !self.app.contains_key("deployments") {
            m.serialize_entry("deployments", &[(); 0])?;
        }
        if e.tasks && !self.app.contains_key("tasks") {
            m.serialize_entry("tasks", &[(); 0])?;
        }
        if e.readiness && !self.app.contains_key("readinessCheckResults") {
            m.serialize_entry("readinessCheckResults", &[(); 0])?;
        }
        m.end()
    }
}

/// Case-insensitive substring match, as Marathon applies the `id` and `cmd` filters.
pub fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(v: Value) -> App {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn embed_prefixes_and_unknowns() {
        let e = Embed::for_list(["apps.tasks", "bogus", "group.apps.readiness"]);
        assert!(e.tasks && e.readiness && !e.last_task_failure);
        let e = Embed::for_list(["apps.failures"]);
        assert!(e.tasks && e.last_task_failure);
        // Comma lists are not split by Marathon: the whole value is unknown.
        assert_eq!(
            Embed::for_list(["apps.tasks,apps.counts"]),
            Embed::default()
        );
        assert!(Embed::for_single([]).tasks);
    }

    #[test]
    fn view_strips_and_defaults() {
        let a = app(
            json!({"id": "/a", "labels": {}, "tasks": [{"id": "t", "state": "TASK_RUNNING",
            "healthCheckResults": [{"alive": false}]}], "lastTaskFailure": {"x": 1}}),
        );
        let plain = serde_json::to_value(AppView {
            app: &a,
            embed: Embed::default(),
        })
        .expect("ser");
        assert!(plain.get("tasks").is_none());
        assert!(plain.get("lastTaskFailure").is_none());
        assert_eq!(plain["tasksRunning"], 1);
        assert_eq!(plain["tasksUnhealthy"], 1);
        assert_eq!(plain["deployments"], json!([]));
        let full = serde_json::to_value(AppView {
            app: &a,
            embed: Embed::for_single([]),
        })
        .expect("ser");
        assert_eq!(full["tasks"][0]["id"], "t");
        assert_eq!(full["lastTaskFailure"]["x"], 1);
    }

    #[test]
    fn counts_from_tasks() {
        let ts = [
            json!({"state": "TASK_STAGING"}),
            json!({"state": "TASK_RUNNING", "healthCheckResults": [{"alive": true}]}),
            json!({"state": "TASK_RUNNING", "healthCheckResults": [{"alive": true}, {"alive": false}]}),
        ];
        assert_eq!(compute_counts(&ts), [1, 2, 1, 1]);
    }
}
