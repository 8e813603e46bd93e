//! Reuse of the default rules' output for unchanged apps.
//!
//! Most reconciles change a few apps out of thousands, yet every app
//! crosses the plugin boundary each time (~20 µs per app). [`Memoized`]
//! sends the label interpreter only the apps that changed since the last
//! call, plus every app whose result depends on other apps
//! ([`mlb_label_rules::stands_alone`]: blue/green members, apps whose
//! service ports the IP-per-task assigner picks); the others get their
//! previous services and diagnostics back. Any change of options starts
//! afresh. The result equals a full interpretation (tested on the golden
//! corpus) — only for rules with that independence, i.e. the default ones.

use std::collections::{HashMap, HashSet};

use mlb_core::{InterpretError, Interpretation, LabelInterpreter};
use mlb_label_rules::stands_alone;
use mlb_model::{App, Diagnostic, InterpretOptions, Service};

/// One app's last input and output.
#[derive(Debug)]
struct Entry {
    app: App,
    services: Vec<Service>,
    diagnostics: Vec<Diagnostic>,
}

/// A label interpreter that only sees changed (or inter-dependent) apps.
#[derive(Debug)]
pub struct Memoized<L> {
    inner: L,
    options: Option<InterpretOptions>,
    entries: HashMap<String, Entry>,
    /// The deployment-group ids of the last call's apps.
    group_ids: HashSet<String>,
    /// Apps sent to the inner interpreter by the last call.
    last_sent: usize,
}

impl<L> Memoized<L> {
    /// Wrap `inner` (which must follow the default rules' independence).
    pub fn new(inner: L) -> Self {
        Self {
            inner,
            options: None,
            entries: HashMap::new(),
            group_ids: HashSet::new(),
            last_sent: 0,
        }
    }

    /// How many apps the last call sent to the inner interpreter.
    pub fn last_sent(&self) -> usize {
        self.last_sent
    }
}

/// The id an app's services carry when it is merged into a deployment group.
pub(super) fn group_id(app: &App) -> Option<String> {
    let (_, group) = app
        .labels
        .iter()
        .find(|(k, _)| k == "HAPROXY_DEPLOYMENT_GROUP")?;
    Some(if group.starts_with('/') {
        group.clone()
    } else {
        format!("/{group}")
    })
}

impl<L: LabelInterpreter> LabelInterpreter for Memoized<L> {
    fn interpret(
        &mut self,
        apps: &[App],
        options: &InterpretOptions,
    ) -> Result<Interpretation, InterpretError> {
        if self.options.as_ref() != Some(options) {
            self.entries.clear();
            self.options = Some(options.clone());
        }
        // Ids that dependent apps' services may carry: a stand-alone app with
        // such an id could be mixed with them, so it is sent along.
        let group_ids: HashSet<String> = apps.iter().filter_map(group_id).collect();
        let mut alone: HashSet<&str> = HashSet::new();
        // Indices of the apps to send.
        let mut send: Vec<usize> = Vec::new();
        let mut reused: Vec<&Entry> = Vec::new();
        for (i, app) in apps.iter().enumerate() {
            let independent = stands_alone(app) && !group_ids.contains(&app.id);
            if independent {
                alone.insert(app.id.as_str());
                if let Some(entry) = self.entries.get(&app.id).filter(|e| e.app == *app) {
                    reused.push(entry);
                    continue;
                }
            }
            send.push(i);
        }
        self.last_sent = send.len();
        let fresh = if send.is_empty() {
            Interpretation::default()
        } else if send.len() == apps.len() {
            // Nothing reused (the first call, or everything changed): no copy.
            self.inner.interpret(apps, options)?
        } else {
            let subset: Vec<App> = send.iter().map(|&i| apps[i].clone()).collect();
            self.inner.interpret(&subset, options)?
        };

        let mut out = Interpretation::default();
        for entry in &reused {
            out.services.extend(entry.services.iter().cloned());
            out.diagnostics.extend(entry.diagnostics.iter().cloned());
        }
        // New results of stand-alone apps are remembered.
        let mut new_entries: HashMap<String, Entry> = HashMap::new();
        for app in send
            .iter()
            .map(|&i| &apps[i])
            .filter(|a| alone.contains(a.id.as_str()))
        {
            new_entries.insert(
                app.id.clone(),
                Entry {
                    app: app.clone(),
                    services: Vec::new(),
                    diagnostics: Vec::new(),
                },
            );
        }
        for s in fresh.services {
            if let Some(e) = new_entries.get_mut(&s.app_id) {
                e.services.push(s.clone());
            }
            out.services.push(s);
        }
        for d in fresh.diagnostics {
            if let Some(e) = new_entries.get_mut(&d.app_id) {
                e.diagnostics.push(d.clone());
            }
            out.diagnostics.push(d);
        }
        // Keep the entries of apps still present.
        let present: HashSet<&str> = apps.iter().map(|a| a.id.as_str()).collect();
        self.entries
            .retain(|id, _| present.contains(id.as_str()) && alone.contains(id.as_str()));
        self.entries.extend(new_entries);
        self.group_ids = group_ids;
        Ok(out)
    }

    /// Only apps that stood alone in the last call and still do (no
    /// deployment group, no assigned ports, not named by a group) are
    /// interpreted; the last call's group ids stay those of the batch, as
    /// no such app adds or removes one.
    fn interpret_changed(
        &mut self,
        apps: &[App],
        options: &InterpretOptions,
    ) -> Option<Result<Interpretation, InterpretError>> {
        if self.options.as_ref() != Some(options) {
            return None;
        }
        let alone = |app: &App| {
            stands_alone(app)
                && !self.group_ids.contains(&app.id)
                && self.entries.contains_key(&app.id)
        };
        if !apps.iter().all(alone) {
            return None;
        }
        self.last_sent = apps.len();
        let fresh = match self.inner.interpret(apps, options) {
            Ok(fresh) => fresh,
            Err(e) => {
                // The memo no longer matches these apps' last results.
                for app in apps {
                    self.entries.remove(&app.id);
                }
                return Some(Err(e));
            }
        };
        for app in apps {
            self.entries.insert(
                app.id.clone(),
                Entry {
                    app: app.clone(),
                    services: fresh
                        .services
                        .iter()
                        .filter(|s| s.app_id == app.id)
                        .cloned()
                        .collect(),
                    diagnostics: fresh
                        .diagnostics
                        .iter()
                        .filter(|d| d.app_id == app.id)
                        .cloned()
                        .collect(),
                },
            );
        }
        Some(Ok(fresh))
    }
}
