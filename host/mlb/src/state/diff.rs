//! The periodic resync's check: the state against a fresh full document.
//!
//! Both are normalised and compared app by app after [`project`], which
//! drops what cannot change the generated config of a stand-alone app
//! (apps in a deployment group or with assigned service ports are compared
//! whole — events never change them):
//! - tasks in states the label rules never route (`TASK_STAGING`,
//!   `TASK_KILLING`, terminal states: Marathon lists some of them for a
//!   while, placeholders of 1.8+ instances included);
//! - `instances` and `versionInfo.lastScalingAt` (read only by the
//!   deployment-group merge);
//! - health results where they do not decide routing (no `--health-check`,
//!   or an app without health checks);
//! - the order of tasks (servers are sorted);
//! - an app on one side only that has no routed task left (it makes no
//!   service: Marathon drops a deleted app at once, its tasks are killed
//!   and `app_terminated_event` follows after their grace period).
//!
//! What remains differing is a bug of the incremental path.

use std::collections::HashMap;

use mlb_core::NormalizeError;
use mlb_model::App;

use super::{MarathonState, StateOptions};

/// Task states the label rules leave out.
pub(super) use mlb_label_rules::EXCLUDED_TASK_STATES as UNROUTED_STATES;

/// One difference between the state and a full document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The app (empty for the document as a whole).
    pub app: String,
    /// What differs, in a few words.
    pub what: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.app.is_empty() {
            f.write_str(&self.what)
        } else {
            write!(f, "app {}: {}", self.app, self.what)
        }
    }
}

/// `app` without what cannot change its output (see the module docs).
pub fn project(mut app: App, options: StateOptions) -> App {
    if !mlb_label_rules::stands_alone(&app) {
        return app;
    }
    app.instances = None;
    app.last_scaling_at = None;
    let health_matters = options.health_check && !app.health_checks.is_empty();
    app.tasks.retain(|t| {
        t.host.is_empty()
            || !t
                .state
                .as_deref()
                .is_some_and(|s| UNROUTED_STATES.contains(&s))
    });
    for t in &mut app.tasks {
        if !health_matters {
            t.health_results = None;
        }
    }
    app.tasks.sort_by(|a, b| a.id.cmp(&b.id));
    app
}

fn projected(body: &[u8], options: StateOptions) -> Result<Vec<App>, NormalizeError> {
    Ok(mlb_core::normalize_apps(body, |_| None)?
        .apps
        .into_iter()
        .map(|a| project(a, options))
        .collect())
}

/// What differs between two projected apps of the same id.
fn describe(held: &App, fresh: &App) -> Vec<String> {
    let mut out = Vec::new();
    let tasks = |a: &App| -> HashMap<String, mlb_model::Task> {
        a.tasks.iter().map(|t| (t.id.clone(), t.clone())).collect()
    };
    let (h, f) = (tasks(held), tasks(fresh));
    let mut ids: Vec<&String> = h.keys().chain(f.keys()).collect();
    ids.sort();
    ids.dedup();
    for id in ids {
        match (h.get(id), f.get(id)) {
            (Some(_), None) => out.push(format!("task {id} held, not in Marathon")),
            (None, Some(_)) => out.push(format!("task {id} in Marathon, not held")),
            (Some(a), Some(b)) if a != b => out.push(format!("task {id} differs")),
            _ => {}
        }
    }
    let bare = |a: &App| App {
        tasks: Vec::new(),
        ..a.clone()
    };
    if bare(held) != bare(fresh) {
        out.push("definition differs".to_owned());
    }
    out
}

impl MarathonState {
    /// Differences between the state and a fresh full `/v2/apps` body
    /// (empty: the incremental path kept up).
    pub fn diff(&self, full: &[u8]) -> Result<Vec<Difference>, NormalizeError> {
        let held = projected(&self.document(), self.options)?;
        let fresh = projected(full, self.options)?;
        let by_id = |apps: &[App]| -> HashMap<String, usize> {
            apps.iter()
                .enumerate()
                .map(|(i, a)| (a.id.clone(), i))
                .collect()
        };
        let (h, f) = (by_id(&held), by_id(&fresh));
        let silent = |a: &App| a.tasks.is_empty() && mlb_label_rules::stands_alone(a);
        let mut out = Vec::new();
        for app in &fresh {
            match h.get(&app.id) {
                None if silent(app) => {}
                None => out.push(Difference {
                    app: app.id.clone(),
                    what: "in Marathon, not held".to_owned(),
                }),
                Some(&i) => {
                    out.extend(describe(&held[i], app).into_iter().map(|what| Difference {
                        app: app.id.clone(),
                        what,
                    }))
                }
            }
        }
        for app in held.iter().filter(|a| !f.contains_key(&a.id) && !silent(a)) {
            out.push(Difference {
                app: app.id.clone(),
                what: "held, not in Marathon".to_owned(),
            });
        }
        let common = |apps: &[App], other: &HashMap<String, usize>| -> Vec<String> {
            apps.iter()
                .filter(|a| other.contains_key(&a.id))
                .map(|a| a.id.clone())
                .collect()
        };
        if common(&held, &f) != common(&fresh, &h) {
            out.push(Difference {
                app: String::new(),
                what: "apps in a different order".to_owned(),
            });
        }
        Ok(out)
    }
}
