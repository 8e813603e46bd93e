//! The plugin chain of one controller: the default label rules, custom
//! label plugins in order, then policy plugins.
//!
//! Failure isolation: when a custom plugin fails on a batch (trap, timeout,
//! memory cap, returned error), the host first checks whether it fails on
//! an empty batch too (then the plugin itself is broken and is backed off
//! as a whole); otherwise it re-runs on halves to find the apps that make
//! it fail. Those apps keep the plugin's last good output for them (or,
//! never having had one, the services that reached the plugin) and are
//! quarantined — not sent to that plugin again — for a backoff that
//! doubles with each failure. Every other app's output is exactly what a
//! healthy run gives. Policies fail closed: services a policy could not
//! review are left out; a backed-off policy reuses its last verdicts.
//!
//! Output of custom label plugins is checked
//! ([`mlb_core::validate::check_plugin_service`]): a service naming an app
//! that is not in its batch, an invalid name, or a snippet that would open
//! a new section is refused with a diagnostic, alone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlb_core::validate::check_plugin_service;
use mlb_core::{InterpretError, Interpretation, LabelInterpreter};
use mlb_model::{App, Diagnostic, InterpretOptions, Service, Severity};

use super::filter::WasmFilterPlugin;
use super::isolate::{Isolation, isolate_after};
use super::label::WasmLabelPlugin;
use super::policy::WasmPolicyPlugin;

/// Most calls spent isolating failing apps per plugin and reconcile.
const ISOLATION_BUDGET: usize = 64;
/// First quarantine of an app, or backoff of a broken plugin.
const FIRST_PENALTY: Duration = Duration::from_secs(30);
/// Longest quarantine or backoff.
const MAX_PENALTY: Duration = Duration::from_secs(1800);

/// Repeated failures and when the next attempt is allowed.
#[derive(Debug, Clone, Copy)]
struct Penalty {
    failures: u32,
    until: Instant,
}

impl Penalty {
    fn next(previous: Option<Penalty>, now: Instant) -> Penalty {
        let failures = previous.map_or(1, |p| p.failures + 1);
        let wait = (FIRST_PENALTY * 2u32.pow((failures - 1).min(10))).min(MAX_PENALTY);
        Penalty {
            failures,
            until: now + wait,
        }
    }

    fn active(&self, now: Instant) -> bool {
        now < self.until
    }

    fn secs_left(&self, now: Instant) -> u64 {
        self.until.saturating_duration_since(now).as_secs()
    }
}

fn diagnostic(severity: Severity, app_id: &str, message: String) -> Diagnostic {
    Diagnostic {
        severity,
        app_id: app_id.to_owned(),
        label: None,
        message,
    }
}

/// Services grouped by app id, in input order.
fn by_app(services: Vec<Service>) -> HashMap<String, Vec<Service>> {
    let mut map: HashMap<String, Vec<Service>> = HashMap::new();
    for s in services {
        map.entry(s.app_id.clone()).or_default().push(s);
    }
    map
}

/// A custom label plugin with its memory of good output and failing apps.
#[derive(Debug)]
struct LabelStage {
    plugin: WasmLabelPlugin,
    last_good: HashMap<String, Vec<Service>>,
    quarantine: HashMap<String, Penalty>,
    broken: Option<Penalty>,
}

impl LabelStage {
    /// What an app gets when the plugin cannot run for it.
    fn fallback(&self, app: &str, input: &mut HashMap<String, Vec<Service>>) -> Vec<Service> {
        match self.last_good.get(app) {
            Some(services) => services.clone(),
            None => input.remove(app).unwrap_or_default(),
        }
    }

    /// Check the services a batch produced; keep the good ones.
    fn accept(
        &self,
        batch: &HashSet<&str>,
        result: Interpretation,
        out: &mut Interpretation,
    ) -> Vec<Service> {
        let name = self.plugin.name();
        out.diagnostics.extend(result.diagnostics);
        let mut kept = Vec::with_capacity(result.services.len());
        for s in result.services {
            let verdict = if batch.contains(s.app_id.as_str()) {
                check_plugin_service(&s).map_err(|f| {
                    format!(
                        "label plugin {name} returned an invalid service {}: {f}",
                        s.backend.escape_debug()
                    )
                })
            } else {
                Err(format!(
                    "label plugin {name} returned service {} for app {}, which is not among \
                     the apps it was given",
                    s.backend.escape_debug(),
                    s.app_id.escape_debug()
                ))
            };
            match verdict {
                Ok(()) => kept.push(s),
                Err(message) => {
                    tracing::warn!(plugin = name, app = %s.app_id, "{message}");
                    out.diagnostics
                        .push(diagnostic(Severity::Error, &s.app_id, message));
                }
            }
        }
        kept
    }

    fn run(
        &mut self,
        apps: &[App],
        input: Vec<Service>,
        options: &InterpretOptions,
        out: &mut Interpretation,
    ) -> Vec<Service> {
        let now = Instant::now();
        let name = self.plugin.name().to_owned();
        let mut input = by_app(input);
        let mut result = Vec::new();

        if let Some(p) = self.broken.filter(|p| p.active(now)) {
            out.diagnostics.push(diagnostic(
                Severity::Warning,
                "",
                format!(
                    "label plugin {name} is backed off for {} s after {} failures in a row; \
                     every app keeps its last good output",
                    p.secs_left(now),
                    p.failures
                ),
            ));
            for app in apps {
                result.extend(self.fallback(&app.id, &mut input));
            }
            return result;
        }

        let mut eligible = Vec::with_capacity(apps.len());
        for (i, app) in apps.iter().enumerate() {
            match self.quarantine.get(&app.id) {
                Some(p) if p.active(now) => {
                    out.diagnostics.push(diagnostic(
                        Severity::Warning,
                        &app.id,
                        format!(
                            "not sent to label plugin {name} for {} more s (it failed on this app \
                             {} times); keeping the last good output",
                            p.secs_left(now),
                            p.failures
                        ),
                    ));
                    result.extend(self.fallback(&app.id, &mut input));
                }
                _ => eligible.push(i),
            }
        }

        let run_batch = |batch: &[usize], input: &HashMap<String, Vec<Service>>| {
            let batch_apps: Vec<App> = batch.iter().map(|&i| apps[i].clone()).collect();
            let batch_services: Vec<Service> = batch_apps
                .iter()
                .flat_map(|a| input.get(&a.id).into_iter().flatten().cloned())
                .collect();
            self.plugin
                .call(&batch_apps, &batch_services, options)
                .map_err(|e| e.to_string())
        };

        let iso: Isolation<Interpretation, String> = match run_batch(&eligible, &input) {
            Ok(r) => Isolation {
                ok: vec![(eligible, r)],
                failed: Vec::new(),
                unresolved: Vec::new(),
                calls: 1,
            },
            Err(error) => {
                out.plugin_failures.push(name.clone());
                tracing::warn!(plugin = %name, "label plugin failed on the batch: {error}");
                if let Err(probe) = run_batch(&[], &input) {
                    // Fails without any app: the plugin itself is broken.
                    let penalty = Penalty::next(self.broken, now);
                    self.broken = Some(penalty);
                    out.diagnostics.push(diagnostic(
                        Severity::Error,
                        "",
                        format!(
                            "label plugin {name} fails even without apps ({probe}); backed off \
                             for {} s, every app keeps its last good output",
                            penalty.secs_left(now)
                        ),
                    ));
                    for &i in &eligible {
                        result.extend(self.fallback(&apps[i].id, &mut input));
                    }
                    return result;
                }
                isolate_after(eligible, error, ISOLATION_BUDGET, |b| run_batch(b, &input))
            }
        };
        self.broken = None;

        for (batch, interpretation) in iso.ok {
            let ids: HashSet<&str> = batch.iter().map(|&i| apps[i].id.as_str()).collect();
            let kept = self.accept(&ids, interpretation, out);
            let mut grouped = by_app(kept);
            for &i in &batch {
                let id = &apps[i].id;
                let services = grouped.remove(id).unwrap_or_default();
                self.quarantine.remove(id);
                result.extend(services.iter().cloned());
                self.last_good.insert(id.clone(), services);
            }
        }
        for (i, error) in iso.failed.into_iter().chain(iso.unresolved) {
            let id = &apps[i].id;
            let penalty = Penalty::next(self.quarantine.get(id).copied(), now);
            self.quarantine.insert(id.clone(), penalty);
            let message = format!(
                "label plugin {name} failed on this app ({error}); keeping its last good output \
                 and not sending it to the plugin for {} s",
                penalty.secs_left(now)
            );
            tracing::warn!(plugin = %name, app = %id, "{message}");
            out.diagnostics
                .push(diagnostic(Severity::Error, id, message));
            result.extend(self.fallback(id, &mut input));
        }
        // Apps that left Marathon are forgotten.
        let present: HashSet<&str> = apps.iter().map(|a| a.id.as_str()).collect();
        self.last_good.retain(|k, _| present.contains(k.as_str()));
        self.quarantine.retain(|k, _| present.contains(k.as_str()));
        dedup_backends(&name, result, out)
    }
}

/// Keep the first service of each backend name; report the others.
fn dedup_backends(plugin: &str, services: Vec<Service>, out: &mut Interpretation) -> Vec<Service> {
    let mut seen = HashSet::new();
    services
        .into_iter()
        .filter(|s| {
            let fresh = seen.insert(s.backend.clone());
            if !fresh {
                out.diagnostics.push(diagnostic(
                    Severity::Error,
                    &s.app_id,
                    format!(
                        "after label plugin {plugin}, backend {} is defined twice; this one is \
                         left out",
                        s.backend
                    ),
                ));
            }
            fresh
        })
        .collect()
}

/// A policy plugin with its last verdicts (used while it is backed off).
#[derive(Debug)]
struct PolicyStage {
    plugin: WasmPolicyPlugin,
    last_verdicts: HashMap<String, Option<String>>,
    broken: Option<Penalty>,
}

impl PolicyStage {
    fn run(
        &mut self,
        apps: &[App],
        services: Vec<Service>,
        out: &mut Interpretation,
    ) -> Vec<Service> {
        let now = Instant::now();
        let name = self.plugin.name().to_owned();
        let reviewed: HashSet<&str> = services.iter().map(|s| s.app_id.as_str()).collect();
        let apps: Vec<&App> = apps
            .iter()
            .filter(|a| reviewed.contains(a.id.as_str()))
            .collect();
        let groups = by_app(services);

        let review = |batch: &[usize]| {
            let batch_apps: Vec<App> = batch.iter().map(|&i| apps[i].clone()).collect();
            let batch_services: Vec<Service> = batch_apps
                .iter()
                .flat_map(|a| groups.get(&a.id).into_iter().flatten().cloned())
                .collect();
            self.plugin
                .review(&batch_apps, &batch_services)
                .map(|verdicts| {
                    batch_services
                        .iter()
                        .map(|s| s.backend.clone())
                        .zip(verdicts)
                        .collect::<Vec<_>>()
                })
        };

        let mut verdicts: HashMap<String, Option<String>> = HashMap::new();
        let mut unreviewed: HashMap<&str, String> = HashMap::new();
        let all: Vec<usize> = (0..apps.len()).collect();
        let backed_off = self.broken.filter(|p| p.active(now));
        if let Some(p) = backed_off {
            out.diagnostics.push(diagnostic(
                Severity::Warning,
                "",
                format!(
                    "policy {name} is backed off for {} s after {} failures; its last verdicts \
                     apply and services it never reviewed are left out",
                    p.secs_left(now),
                    p.failures
                ),
            ));
            verdicts = self.last_verdicts.clone();
        } else {
            match review(&all) {
                Ok(v) => {
                    self.broken = None;
                    verdicts.extend(v);
                }
                Err(error) => {
                    out.plugin_failures.push(name.clone());
                    tracing::warn!(plugin = %name, "policy failed on the batch: {error}");
                    if let Err(probe) = self.plugin.review(&[], &[]) {
                        let penalty = Penalty::next(self.broken, now);
                        self.broken = Some(penalty);
                        out.diagnostics.push(diagnostic(
                            Severity::Error,
                            "",
                            format!(
                                "policy {name} fails even without services ({probe}); backed \
                                 off for {} s, its last verdicts apply",
                                penalty.secs_left(now)
                            ),
                        ));
                        verdicts = self.last_verdicts.clone();
                    } else {
                        let iso = isolate_after(all, error, ISOLATION_BUDGET, review);
                        for (_, v) in iso.ok {
                            verdicts.extend(v);
                        }
                        for (i, error) in iso.failed.into_iter().chain(iso.unresolved) {
                            unreviewed.insert(apps[i].id.as_str(), error);
                        }
                    }
                }
            }
        }

        let mut kept = Vec::new();
        let mut ids: Vec<&String> = groups.keys().collect();
        ids.sort();
        for id in ids {
            for s in &groups[id] {
                let verdict = match unreviewed.get(id.as_str()) {
                    Some(error) => Some(format!("the policy could not review this app: {error}")),
                    None => match verdicts.get(&s.backend) {
                        Some(v) => v.clone(),
                        None => Some("no verdict (the policy is backed off)".to_owned()),
                    },
                };
                match verdict {
                    None => kept.push(s.clone()),
                    Some(reason) => {
                        let message =
                            format!("service {} denied by policy {name}: {reason}", s.backend);
                        tracing::warn!(policy = %name, app = %s.app_id, "{message}");
                        out.diagnostics
                            .push(diagnostic(Severity::Error, &s.app_id, message));
                        out.denied.push((name.clone(), s.backend.clone()));
                    }
                }
            }
        }
        if backed_off.is_none() && self.broken.is_none() {
            self.last_verdicts = verdicts;
        }
        kept
    }
}

/// The default rules, custom label plugins and policies of a controller.
pub struct PluginSet {
    default: Box<dyn LabelInterpreter + Send>,
    labels: Vec<LabelStage>,
    policies: Vec<PolicyStage>,
    filters: Vec<Arc<WasmFilterPlugin>>,
}

impl std::fmt::Debug for PluginSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSet")
            .field("labels", &self.labels)
            .field("policies", &self.policies)
            .field("filters", &self.filters)
            .finish_non_exhaustive()
    }
}

impl PluginSet {
    /// Only the default rules.
    pub fn new(default: Box<dyn LabelInterpreter + Send>) -> Self {
        Self {
            default,
            labels: Vec::new(),
            policies: Vec::new(),
            filters: Vec::new(),
        }
    }

    /// Append a custom label plugin to the chain.
    pub fn push_label(&mut self, plugin: WasmLabelPlugin) {
        self.labels.push(LabelStage {
            plugin,
            last_good: HashMap::new(),
            quarantine: HashMap::new(),
            broken: None,
        });
    }

    /// Append a policy.
    pub fn push_policy(&mut self, plugin: WasmPolicyPlugin) {
        self.policies.push(PolicyStage {
            plugin,
            last_verdicts: HashMap::new(),
            broken: None,
        });
    }

    /// Add a filter plugin (registered in renderers by [`Self::register_filters`]).
    pub fn push_filter(&mut self, plugin: WasmFilterPlugin) -> Result<(), super::PluginError> {
        for existing in &self.filters {
            if let Some(clash) = plugin
                .filters()
                .iter()
                .find(|f| existing.filters().contains(f))
            {
                return Err(super::PluginError::Load {
                    plugin: plugin.name().to_owned(),
                    message: format!(
                        "filter '{clash}' is already provided by plugin {}",
                        existing.name()
                    ),
                });
            }
        }
        self.filters.push(Arc::new(plugin));
        Ok(())
    }

    /// Register every filter plugin's filters in `renderer`.
    pub fn register_filters(&self, renderer: &mut mlb_core::render::Renderer) {
        for plugin in &self.filters {
            for filter in plugin.filters() {
                renderer.add_filter(filter, plugin.clone());
            }
        }
    }
}

impl LabelInterpreter for PluginSet {
    fn interpret(
        &mut self,
        apps: &[App],
        options: &InterpretOptions,
    ) -> Result<Interpretation, InterpretError> {
        let mut out = self.default.interpret(apps, options)?;
        for stage in &mut self.labels {
            let services = std::mem::take(&mut out.services);
            out.services = stage.run(apps, services, options, &mut out);
        }
        for stage in &mut self.policies {
            let services = std::mem::take(&mut out.services);
            out.services = stage.run(apps, services, &mut out);
        }
        Ok(out)
    }
}
