//! Marathon's apps kept in memory and brought up to date by events, so that
//! the common change — a task of an existing app starting or going away —
//! needs no `/v2/apps` fetch (issue 10, item 1).
//!
//! [`MarathonState`] holds the last full document split into its apps (each
//! app's JSON text, in document order). [`MarathonState::apply`] takes one
//! event and says what it proved ([`Decision`]): applied (the state now
//! gives what a full fetch would give, up to what cannot change the
//! output, see [`diff`]), "refetch this app" or "full fetch". Nothing here
//! does I/O or reads a clock: the caller fetches and hands the answers back
//! ([`MarathonState::reset`], [`MarathonState::replace_app`]).
//! [`MarathonState::normalized`] gives the apps as the generator reads
//! them, re-reading only those changed since the last call.
//!
//! # Contract for the caller
//! Apply events in stream order. While a fetch is in flight, queue the
//! events that arrive; install its answer, then apply the queue (every
//! handler sets a task to what its event says, so an event already
//! reflected in the answer is harmless). A stream (re)connect, the resync
//! timer and SIGHUP are full fetches decided by the caller.
//!
//! # Layout
//! - `event`: the payload fields the rules read, typed.
//! - [`diff`]: what a full document and the state may differ in, and the
//!   comparison the periodic resync counts.

pub mod diff;
mod event;

use std::collections::HashMap;

use mlb_core::{NormalizeError, Normalized};
use mlb_model::{App, Diagnostic};
use serde_json::{Map, Value};

use event::{AppEvent, StatusUpdate, TaskFate};

/// What one event proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The state was updated from the event alone. `changed`: whether the
    /// document changed (a duplicate update changes nothing).
    Applied {
        /// The app the event named (`a,b` for a deployment step stopping
        /// several).
        app: String,
        /// Whether [`MarathonState::document`] changed.
        changed: bool,
    },
    /// Only this app must be read again (`GET /v2/apps/{id}`, which embeds
    /// its tasks); hand the answer to [`MarathonState::replace_app`].
    RefetchApp(String),
    /// Only a full `/v2/apps` fetch restores an exact state; hand it to
    /// [`MarathonState::reset`].
    FullFetch(FullFetchReason),
    /// The event does not concern the apps (another event type).
    Ignored,
}

/// Why an event needs the full fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FullFetchReason {
    /// No full document was installed yet.
    #[error("no state yet")]
    NoState,
    /// The last document could not be split into apps (not JSON, not
    /// UTF-8, no `apps` list): only a new one can replace it.
    #[error("the last document could not be read app by app")]
    Unsplittable,
    /// The event lacks a field the rules need.
    #[error("{event} without {field}")]
    Malformed {
        /// The event type.
        event: String,
        /// The missing field.
        field: &'static str,
    },
    /// The app is not in the state (created without an event we follow, or
    /// its place in the document is unknown).
    #[error("unknown app {0}")]
    UnknownApp(String),
    /// The task runs a version of the app newer than the one held.
    #[error("app {app} has a newer version {event} than the one held ({held})")]
    NewerVersion {
        /// The app.
        app: String,
        /// The version the event carries.
        event: String,
        /// The version held.
        held: String,
    },
    /// A running task that is not in the state and does not run the held
    /// version: where it belongs cannot be proved.
    #[error("app {app}: new running task {task} of version {version:?}, not the held one")]
    UnprovenTask {
        /// The app.
        app: String,
        /// The task.
        task: String,
        /// The version the event carries.
        version: Option<String>,
    },
    /// The app's services depend on other apps (`HAPROXY_DEPLOYMENT_GROUP`,
    /// or service ports the IP-per-task assigner picks).
    #[error("app {0} depends on other apps (deployment group or assigned service ports)")]
    Dependent(String),
    /// The app held cannot be read (the full fetch reports why).
    #[error("app {0} cannot be read")]
    Unreadable(String),
}

/// How the state reads apps (the options that change what matters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateOptions {
    /// `--health-check`: tasks of apps with health checks route only when
    /// healthy, and events do not carry health results.
    pub health_check: bool,
}

/// One app of the document.
#[derive(Debug, Clone)]
struct Entry {
    id: String,
    /// The app's JSON object, as fetched or as the events left it.
    json: String,
    /// `json` normalised; `None` until asked for and after each change.
    normalized: Option<OneApp>,
    /// What `normalized` was at the last normalisation, while `json` has
    /// changed since.
    previous: Option<OneApp>,
}

/// One app normalised: the app (`None` if it is left out) and its
/// diagnostics.
pub type OneApp = (Option<App>, Vec<Diagnostic>);

/// An app of the document changed since the last normalisation (see
/// [`MarathonState::normalized_changes`]).
#[derive(Debug, Clone)]
pub struct ChangedApp {
    /// Its id.
    pub id: String,
    /// What it was at the last normalisation.
    pub before: OneApp,
    /// What it is now.
    pub after: OneApp,
}

impl Entry {
    fn new(id: String, json: String) -> Self {
        Self {
            id,
            json,
            normalized: None,
            previous: None,
        }
    }

    fn set(&mut self, json: String) {
        self.json = json;
        if let Some(last) = self.normalized.take() {
            self.previous = Some(last);
        }
    }
}

/// Ask `resolve` for a task's host address again (a failed lookup is not
/// cached, so an answer may change); whether it changed. A host that is an
/// address in its canonical form is its own answer, whatever the resolver
/// (literals never reach DNS nor its cache): not asked.
fn ask_again(task: &mut mlb_model::Task, resolve: &mut impl FnMut(&str) -> Option<String>) -> bool {
    if task.host_ip.as_deref() == Some(task.host.as_str())
        && task.host.parse::<std::net::IpAddr>().is_ok()
    {
        return false;
    }
    let ip = if task.host.is_empty() {
        None
    } else {
        resolve(&task.host)
    };
    let moved = ip != task.host_ip;
    task.host_ip = ip;
    moved
}

/// One app's JSON object normalised, as in a document of its own.
fn normalize_one(
    json: &str,
    resolve: impl FnMut(&str) -> Option<String>,
) -> Result<OneApp, NormalizeError> {
    let doc = format!("{{\"apps\":[{json}]}}");
    let mut one = mlb_core::normalize_apps(doc.as_bytes(), resolve)?;
    Ok((one.apps.pop(), one.diagnostics))
}

#[derive(Debug, Clone)]
enum Doc {
    /// The body as fetched, kept verbatim (it could not be split).
    Opaque(Vec<u8>),
    /// The apps in document order, and where each id is.
    Apps {
        apps: Vec<Entry>,
        index: HashMap<String, usize>,
    },
}

/// The last full Marathon state, kept up to date by events.
#[derive(Debug, Clone, Default)]
pub struct MarathonState {
    doc: Option<Doc>,
    options: StateOptions,
    /// Apps were added or removed (or a document installed) since the last
    /// normalisation of every app.
    reshaped: bool,
}

/// The field a `{"apps": [...]}` document is split on.
#[derive(serde::Deserialize)]
struct Split<'a> {
    #[serde(borrow)]
    apps: Vec<&'a serde_json::value::RawValue>,
}

#[derive(serde::Deserialize)]
struct IdOnly {
    id: Option<String>,
}

impl MarathonState {
    /// An empty state (every event asks for the full fetch).
    pub fn new(options: StateOptions) -> Self {
        Self {
            doc: None,
            options,
            reshaped: true,
        }
    }

    /// Install a full `/v2/apps?embed=apps.tasks` body.
    pub fn reset(&mut self, body: &[u8]) {
        self.reshaped = true;
        self.doc = Some(split(body).unwrap_or_else(|| Doc::Opaque(body.to_vec())));
    }

    /// Whether a full document is installed.
    pub fn is_ready(&self) -> bool {
        self.doc.is_some()
    }

    /// Install a `GET /v2/apps/{id}` body (`{"app": {...}}`) for an app
    /// the state holds, in its place. `false` (nothing changed) when the
    /// body is not such an answer or the app is not held: do a full fetch.
    pub fn replace_app(&mut self, body: &[u8]) -> bool {
        #[derive(serde::Deserialize)]
        struct One<'a> {
            #[serde(borrow)]
            app: &'a serde_json::value::RawValue,
        }
        let Some(Doc::Apps { apps, index }) = &mut self.doc else {
            return false;
        };
        let Ok(one) = serde_json::from_slice::<One<'_>>(body) else {
            return false;
        };
        let Some(id) = serde_json::from_str::<IdOnly>(one.app.get())
            .ok()
            .and_then(|i| i.id)
        else {
            return false;
        };
        match index.get(&id) {
            Some(&at) => {
                apps[at].set(one.app.get().to_owned());
                true
            }
            None => false,
        }
    }

    /// The state as a `/v2/apps` document (for the generator).
    pub fn document(&self) -> Vec<u8> {
        match &self.doc {
            None => b"{\"apps\":[]}".to_vec(),
            Some(Doc::Opaque(body)) => body.clone(),
            Some(Doc::Apps { apps, .. }) => {
                let len = apps.iter().map(|a| a.json.len() + 1).sum::<usize>() + 12;
                let mut out = Vec::with_capacity(len);
                out.extend_from_slice(b"{\"apps\":[");
                for (i, app) in apps.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(app.json.as_bytes());
                }
                out.extend_from_slice(b"]}");
                out
            }
        }
    }

    /// [`document`](Self::document) normalised, as
    /// [`mlb_core::normalize_apps`] would (same apps, diagnostics and
    /// `resolve` calls in the same order), re-reading only the apps that
    /// changed since the last call: the others are copied and only their
    /// tasks' host addresses asked again (a failed lookup is not cached by
    /// the resolver, so an answer may change).
    pub fn normalized(
        &mut self,
        mut resolve: impl FnMut(&str) -> Option<String>,
    ) -> Result<Normalized, NormalizeError> {
        let apps = match &mut self.doc {
            None => return mlb_core::normalize_apps(b"{\"apps\":[]}", resolve),
            Some(Doc::Opaque(body)) => return mlb_core::normalize_apps(body, resolve),
            Some(Doc::Apps { apps, .. }) => apps,
        };
        let mut out = Normalized {
            apps: Vec::with_capacity(apps.len()),
            diagnostics: Vec::new(),
        };
        for entry in apps.iter_mut() {
            entry.previous = None;
            match &mut entry.normalized {
                Some((app, diagnostics)) => {
                    for task in app.iter_mut().flat_map(|a| a.tasks.iter_mut()) {
                        ask_again(task, &mut resolve);
                    }
                    out.apps.extend(app.iter().cloned());
                    out.diagnostics.extend(diagnostics.iter().cloned());
                }
                None => {
                    let (app, diagnostics) = normalize_one(&entry.json, &mut resolve)?;
                    out.apps.extend(app.iter().cloned());
                    out.diagnostics.extend(diagnostics.iter().cloned());
                    entry.normalized = Some((app, diagnostics));
                }
            }
        }
        self.reshaped = false;
        Ok(out)
    }

    /// The apps changed since the last normalisation, each as it was then
    /// and as it is now, in document order, normalised as
    /// [`normalized`](Self::normalized) does; the other apps are as they
    /// were (their tasks' hosts are asked again, in the same order).
    /// `None` when that cannot be told: apps were added or removed, or no
    /// normalisation of every app was done since the document was
    /// installed, or a task host of an unchanged app now resolves
    /// differently. Call [`normalized`](Self::normalized) then.
    pub fn normalized_changes(
        &mut self,
        mut resolve: impl FnMut(&str) -> Option<String>,
    ) -> Option<Vec<ChangedApp>> {
        if self.reshaped {
            return None;
        }
        let Some(Doc::Apps { apps, .. }) = &mut self.doc else {
            return None;
        };
        let mut changed = Vec::new();
        let mut moved = false;
        for entry in apps.iter_mut() {
            match &mut entry.normalized {
                Some((app, _)) => {
                    for task in app.iter_mut().flat_map(|a| a.tasks.iter_mut()) {
                        moved |= ask_again(task, &mut resolve);
                    }
                }
                None => {
                    let after = normalize_one(&entry.json, &mut resolve).ok()?;
                    entry.normalized = Some(after.clone());
                    let before = entry.previous.take()?;
                    changed.push(ChangedApp {
                        id: entry.id.clone(),
                        before,
                        after,
                    });
                }
            }
        }
        (!moved).then_some(changed)
    }

    /// Apply one Marathon event (`eventType` and its JSON payload).
    pub fn apply(&mut self, event_type: &str, payload: &Value) -> Decision {
        let options = self.options;
        let (apps, index) = match &mut self.doc {
            None => return Decision::FullFetch(FullFetchReason::NoState),
            Some(Doc::Opaque(_)) => return Decision::FullFetch(FullFetchReason::Unsplittable),
            Some(Doc::Apps { apps, index }) => (apps, index),
        };
        let event = match event::parse(event_type, payload) {
            Ok(Some(e)) => e,
            Ok(None) => return Decision::Ignored,
            Err(field) => {
                return Decision::FullFetch(FullFetchReason::Malformed {
                    event: event_type.to_owned(),
                    field,
                });
            }
        };
        match event {
            AppEvent::Terminated(id) => {
                let changed = remove(apps, index, std::slice::from_ref(&id));
                self.reshaped |= changed;
                Decision::Applied { app: id, changed }
            }
            AppEvent::Stopped(ids) => {
                let changed = remove(apps, index, &ids);
                self.reshaped |= changed;
                Decision::Applied {
                    app: ids.join(","),
                    changed,
                }
            }
            AppEvent::Changed(id) | AppEvent::Health(id) => {
                let Some(&at) = index.get(&id) else {
                    return Decision::FullFetch(FullFetchReason::UnknownApp(id));
                };
                match read(&apps[at].json, options) {
                    Err(reason) => Decision::FullFetch(reason),
                    Ok(_) => Decision::RefetchApp(id),
                }
            }
            AppEvent::Status(update) => {
                let Some(&at) = index.get(&update.app) else {
                    return Decision::FullFetch(FullFetchReason::UnknownApp(update.app));
                };
                status_update(&mut apps[at], update, options)
            }
        }
    }
}

/// Remove the apps `ids`; whether any was held.
fn remove(apps: &mut Vec<Entry>, index: &mut HashMap<String, usize>, ids: &[String]) -> bool {
    if !ids.iter().any(|id| index.contains_key(id)) {
        return false;
    }
    apps.retain(|a| !ids.contains(&a.id));
    *index = reindex(apps);
    true
}

fn reindex(apps: &[Entry]) -> HashMap<String, usize> {
    apps.iter()
        .enumerate()
        .map(|(i, a)| (a.id.clone(), i))
        .collect()
}

/// `body` split into its apps; `None` when it is not a readable document
/// or two apps share an id (kept verbatim then).
fn split(body: &[u8]) -> Option<Doc> {
    let doc: Split<'_> = serde_json::from_slice(body).ok()?;
    let mut apps = Vec::with_capacity(doc.apps.len());
    for raw in doc.apps {
        let id = serde_json::from_str::<IdOnly>(raw.get()).ok()?.id?;
        apps.push(Entry::new(id, raw.get().to_owned()));
    }
    let index = reindex(&apps);
    (index.len() == apps.len()).then_some(Doc::Apps { apps, index })
}

/// What the rules need to know of a held app.
#[derive(Debug)]
struct Held {
    app: Map<String, Value>,
    /// Health results decide routing, and events do not carry them.
    health_matters: bool,
}

/// Read a held app: its JSON object, and whether the events can update it.
fn read(json: &str, options: StateOptions) -> Result<Held, FullFetchReason> {
    let id = || {
        serde_json::from_str::<IdOnly>(json)
            .ok()
            .and_then(|i| i.id)
            .unwrap_or_default()
    };
    let normalized = normalized(json).ok_or_else(|| FullFetchReason::Unreadable(id()))?;
    if !mlb_label_rules::stands_alone(&normalized) {
        return Err(FullFetchReason::Dependent(normalized.id));
    }
    let Ok(Value::Object(app)) = serde_json::from_str::<Value>(json) else {
        return Err(FullFetchReason::Unreadable(normalized.id));
    };
    Ok(Held {
        app,
        health_matters: options.health_check && !normalized.health_checks.is_empty(),
    })
}

/// The app as the label rules see it (no DNS: addresses do not matter
/// here); `None` when it would be left out.
fn normalized(json: &str) -> Option<App> {
    let doc = format!("{{\"apps\":[{json}]}}");
    let mut n = mlb_core::normalize_apps(doc.as_bytes(), |_| None).ok()?;
    n.apps.pop()
}

fn status_update(entry: &mut Entry, update: StatusUpdate, options: StateOptions) -> Decision {
    let mut held = match read(&entry.json, options) {
        Ok(h) => h,
        Err(reason) => return Decision::FullFetch(reason),
    };
    let id = update.app.clone();
    let fate = update.fate();
    // Whether a running task routes depends on its health results, which
    // the event lacks (a duplicate TASK_RUNNING is how Mesos-side checks
    // report a flip); a task going away needs none.
    if held.health_matters && fate != TaskFate::Expunged && update.routable() {
        return Decision::RefetchApp(id);
    }
    let version = held
        .app
        .get("version")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let (Some(event), Some(held)) = (&update.version, &version)
        && event > held
    {
        return Decision::FullFetch(FullFetchReason::NewerVersion {
            app: id,
            event: event.clone(),
            held: held.clone(),
        });
    }
    let tasks = match held.app.get_mut("tasks") {
        Some(Value::Array(t)) => t,
        _ => return Decision::FullFetch(FullFetchReason::Unreadable(id)),
    };
    let position = tasks
        .iter()
        .position(|t| t.get("id").and_then(Value::as_str) == Some(update.task.as_str()));
    let changed = match (fate, position) {
        (TaskFate::Unproven, _) => return Decision::RefetchApp(id),
        (TaskFate::Expunged, None) => false,
        (TaskFate::Expunged, Some(at)) => {
            tasks.remove(at);
            true
        }
        (TaskFate::Listed, Some(at)) => update.merge_into(&mut tasks[at]),
        (TaskFate::Listed, None) => {
            if update.routable()
                && update
                    .version
                    .as_deref()
                    .is_none_or(|v| Some(v) != version.as_deref())
            {
                return Decision::FullFetch(FullFetchReason::UnprovenTask {
                    app: id,
                    task: update.task,
                    version: update.version,
                });
            }
            tasks.push(update.new_task());
            true
        }
    };
    if changed {
        entry.set(Value::Object(held.app).to_string());
    }
    Decision::Applied { app: id, changed }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod follow_tests;
