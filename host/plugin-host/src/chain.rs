//! The plugin chain of one controller: the default label rules, custom
//! label plugins in order, then policy plugins.
//!
//! Failure isolation: when a custom plugin fails on a batch (trap, timeout,
//! memory cap, returned error), the host first checks whether it fails on
//! an empty batch too (then the plugin itself is broken and is backed off
//! as a whole); otherwise it re-runs on halves to find the apps that make
//! it fail, within a budget of calls and time. Those apps keep the plugin's
//! last good output for them (or, never having had one, the services that
//! reached the plugin) and are quarantined — not sent to that plugin again
//! — for a backoff that doubles with each failure. Every other app's output
//! is exactly what a healthy run gives. Policies fail closed: services a
//! policy could not review are left out; a backed-off policy reuses its last
//! verdict for a service only if the service is unchanged.
//!
//! A service belongs to the app with its id or, for blue/green deployments
//! merged by the default rules, to the first app of its deployment group
//! (`/<HAPROXY_DEPLOYMENT_GROUP>`).
//!
//! What a custom label plugin adds or changes is checked
//! ([`mlb_core::validate::check_plugin_service`]; template overrides may
//! only pass through): a service naming an app outside its batch, an
//! invalid name, or a snippet that would open a new section is refused with
//! a diagnostic, alone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlb_core::validate::check_plugin_service;
use mlb_core::{InterpretError, Interpretation, LabelInterpreter};
use mlb_model::{App, Diagnostic, InterpretOptions, Service, Severity};

use super::filter::WasmFilterPlugin;
use super::isolate::{Budget, Isolation, isolate_after};
use super::label::WasmLabelPlugin;
use super::policy::WasmPolicyPlugin;

/// Most calls spent isolating failing apps per plugin and reconcile.
const ISOLATION_CALLS: usize = 64;
/// Isolation time per plugin and reconcile, in call deadlines.
const ISOLATION_DEADLINES: u32 = 8;
/// First quarantine of an app, or backoff of a broken plugin.
const FIRST_PENALTY: Duration = Duration::from_secs(30);
/// Longest quarantine or backoff.
const MAX_PENALTY: Duration = Duration::from_secs(1800);

/// What the chain gathers during one interpretation: the services and
/// diagnostics it returns, and the plugins' telemetry it keeps in the
/// set's [`PluginReport`].
#[derive(Debug, Default)]
struct ChainOut {
    services: Vec<Service>,
    diagnostics: Vec<Diagnostic>,
    denied: Vec<(String, String)>,
    plugin_failures: Vec<String>,
}

impl ChainOut {
    /// The interpretation; the telemetry goes to `report`.
    fn finish(self, report: &mut PluginReport) -> Interpretation {
        report.denied.extend(self.denied);
        report.failures.extend(self.plugin_failures);
        Interpretation {
            services: self.services,
            diagnostics: self.diagnostics,
        }
    }
}

/// What the plugins did since the last [`PluginSet::take_report`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginReport {
    /// Services denied by policy plugins: (policy, backend).
    pub denied: Vec<(String, String)>,
    /// Plugins that failed (trapped, timed out, returned an error; filters
    /// also when refused while backed off): the name once per failed call.
    pub failures: Vec<String>,
}

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

/// The message of a plugin error without the "label plugin X failed" frame.
fn reason(e: InterpretError) -> String {
    match e {
        InterpretError::Plugin { message, .. } => message,
    }
}

/// Which app each service id belongs to: the app with that id, else the
/// first app of the deployment group of that id.
fn owners(apps: &[App]) -> HashMap<String, usize> {
    let mut owner = HashMap::with_capacity(apps.len());
    for (i, app) in apps.iter().enumerate() {
        owner.insert(app.id.clone(), i);
    }
    for (i, app) in apps.iter().enumerate() {
        if let Some((_, group)) = app
            .labels
            .iter()
            .find(|(k, _)| k == "HAPROXY_DEPLOYMENT_GROUP")
        {
            let id = if group.starts_with('/') {
                group.clone()
            } else {
                format!("/{group}")
            };
            owner.entry(id).or_insert(i);
        }
    }
    owner
}

/// Services grouped by owning app; services of no app are returned apart.
fn by_owner(
    services: Vec<Service>,
    owner: &HashMap<String, usize>,
) -> (HashMap<usize, Vec<Service>>, Vec<Service>) {
    let mut grouped: HashMap<usize, Vec<Service>> = HashMap::new();
    let mut orphans = Vec::new();
    for s in services {
        match owner.get(&s.app_id) {
            Some(&i) => grouped.entry(i).or_default().push(s),
            None => orphans.push(s),
        }
    }
    (grouped, orphans)
}

/// The isolation budget for a plugin with call deadline `deadline`.
fn budget(deadline: Duration) -> Budget {
    Budget::new(ISOLATION_CALLS, deadline * ISOLATION_DEADLINES)
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
    /// What app `i` gets when the plugin cannot run for it.
    fn fallback(
        &self,
        apps: &[App],
        i: usize,
        input: &mut HashMap<usize, Vec<Service>>,
    ) -> Vec<Service> {
        match self.last_good.get(&apps[i].id) {
            Some(services) => services.clone(),
            None => input.remove(&i).unwrap_or_default(),
        }
    }

    /// Check what a batch produced; keep the good services, grouped by app.
    fn accept(
        &self,
        batch: &[usize],
        input: &HashMap<usize, Vec<Service>>,
        owner: &HashMap<String, usize>,
        result: Interpretation,
        out: &mut ChainOut,
    ) -> HashMap<usize, Vec<Service>> {
        let name = self.plugin.name();
        out.diagnostics.extend(result.diagnostics);
        let in_batch: HashSet<usize> = batch.iter().copied().collect();
        let before: HashMap<&str, &Service> = batch
            .iter()
            .flat_map(|i| input.get(i).into_iter().flatten())
            .map(|s| (s.backend.as_str(), s))
            .collect();
        let mut kept: HashMap<usize, Vec<Service>> = HashMap::new();
        for s in result.services {
            let app = owner
                .get(&s.app_id)
                .copied()
                .filter(|i| in_batch.contains(i));
            let previous = before.get(s.backend.as_str()).copied();
            let verdict = match app {
                None => Err(format!(
                    "label plugin {name} returned service {} for app {}, which is not among \
                     the apps it was given",
                    s.backend.escape_debug(),
                    s.app_id.escape_debug()
                )),
                // Unchanged services passed through are not re-judged.
                Some(_) if previous == Some(&s) => Ok(()),
                Some(_)
                    if !s
                        .templates
                        .iter()
                        .all(|t| previous.is_some_and(|p| p.templates.contains(t))) =>
                {
                    Err(format!(
                        "label plugin {name} set template overrides on service {}; plugins may \
                         pass overrides through or drop them, but not set them (use vars or \
                         snippets)",
                        s.backend
                    ))
                }
                Some(_) => check_plugin_service(&s).map_err(|f| {
                    format!(
                        "label plugin {name} returned an invalid service {}: {f}",
                        s.backend.escape_debug()
                    )
                }),
            };
            match (verdict, app) {
                (Ok(()), Some(i)) => kept.entry(i).or_default().push(s),
                (Err(message), _) => {
                    tracing::warn!(plugin = name, app = %s.app_id, "{message}");
                    out.diagnostics
                        .push(diagnostic(Severity::Error, &s.app_id, message));
                }
                (Ok(()), None) => unreachable!("a service of no app in the batch is refused above"),
            }
        }
        kept
    }

    fn run(
        &mut self,
        apps: &[App],
        owner: &HashMap<String, usize>,
        input: Vec<Service>,
        options: &InterpretOptions,
        out: &mut ChainOut,
    ) -> Vec<Service> {
        let now = Instant::now();
        let name = self.plugin.name().to_owned();
        let (mut input, orphans) = by_owner(input, owner);
        let mut result = orphans;

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
            for i in 0..apps.len() {
                result.extend(self.fallback(apps, i, &mut input));
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
                    result.extend(self.fallback(apps, i, &mut input));
                }
                _ => eligible.push(i),
            }
        }

        let plugin = &self.plugin;
        let run_batch = |batch: &[usize], input: &HashMap<usize, Vec<Service>>| {
            let all = batch.len() == apps.len();
            let owned: Vec<App>;
            let batch_apps: &[App] = if all {
                apps
            } else {
                owned = batch.iter().map(|&i| apps[i].clone()).collect();
                &owned
            };
            let batch_services: Vec<Service> = batch
                .iter()
                .flat_map(|i| input.get(i).into_iter().flatten().cloned())
                .collect();
            plugin
                .call(batch_apps, &batch_services, options)
                .map_err(reason)
        };

        let iso: Isolation<Interpretation, String> = match run_batch(&eligible, &input) {
            Ok(r) => Isolation {
                ok: vec![(eligible, r)],
                failed: Vec::new(),
                unresolved: Vec::new(),
                calls: 1,
                failed_calls: 0,
            },
            Err(error) => {
                out.plugin_failures.push(name.clone());
                tracing::warn!(plugin = %name, "label plugin failed on the batch: {error}");
                if let Err(probe) = run_batch(&[], &input) {
                    // Fails without any app: the plugin itself is broken.
                    out.plugin_failures.push(name.clone());
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
                    for i in eligible {
                        result.extend(self.fallback(apps, i, &mut input));
                    }
                    return result;
                }
                let deadline = self.plugin.limits().deadline;
                isolate_after(eligible, error, budget(deadline), |b| run_batch(b, &input))
            }
        };
        self.broken = None;
        out.plugin_failures
            .extend(std::iter::repeat_n(name.clone(), iso.failed_calls));

        for (batch, interpretation) in iso.ok {
            let mut kept = self.accept(&batch, &input, owner, interpretation, out);
            for i in batch {
                let services = kept.remove(&i).unwrap_or_default();
                self.quarantine.remove(&apps[i].id);
                result.extend(services.iter().cloned());
                self.last_good.insert(apps[i].id.clone(), services);
            }
        }
        for (i, error) in iso.failed.into_iter().chain(iso.unresolved) {
            let id = &apps[i].id;
            let penalty = Penalty::next(self.quarantine.get(id).copied(), now);
            self.quarantine.insert(id.clone(), penalty);
            let message = format!(
                "label plugin {name} failed on this app: {error}; keeping its last good output \
                 and not sending it to the plugin for {} s",
                penalty.secs_left(now)
            );
            tracing::warn!(plugin = %name, app = %id, "{message}");
            out.diagnostics
                .push(diagnostic(Severity::Error, id, message));
            result.extend(self.fallback(apps, i, &mut input));
        }
        // Apps that left Marathon are forgotten.
        let present: HashSet<&str> = apps.iter().map(|a| a.id.as_str()).collect();
        self.last_good.retain(|k, _| present.contains(k.as_str()));
        self.quarantine.retain(|k, _| present.contains(k.as_str()));
        dedup_backends(&name, result, out)
    }
}

/// Keep the first service of each backend name; report the others.
fn dedup_backends(plugin: &str, services: Vec<Service>, out: &mut ChainOut) -> Vec<Service> {
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

/// A policy plugin with its last verdicts (used while it is backed off)
/// and the apps it failed on.
#[derive(Debug)]
struct PolicyStage {
    plugin: WasmPolicyPlugin,
    last_verdicts: HashMap<String, (Service, Option<String>)>,
    quarantine: HashMap<String, Penalty>,
    broken: Option<Penalty>,
}

impl PolicyStage {
    fn run(
        &mut self,
        apps: &[App],
        owner: &HashMap<String, usize>,
        services: Vec<Service>,
        out: &mut ChainOut,
    ) -> Vec<Service> {
        let now = Instant::now();
        let name = self.plugin.name().to_owned();
        let (groups, orphans) = by_owner(services, owner);
        // Reasons for services that get no verdict from the plugin, by app.
        let mut unreviewed: HashMap<usize, String> = HashMap::new();
        let mut reviewable: Vec<usize> = Vec::new();
        let mut ids: Vec<usize> = groups.keys().copied().collect();
        ids.sort_unstable();
        for &i in &ids {
            match self.quarantine.get(&apps[i].id) {
                Some(p) if p.active(now) => {
                    unreviewed.insert(
                        i,
                        format!(
                            "not reviewed for {} more s (the policy failed on this app {} times)",
                            p.secs_left(now),
                            p.failures
                        ),
                    );
                }
                _ => reviewable.push(i),
            }
        }
        let plugin = &self.plugin;
        let review = |batch: &[usize]| {
            let batch_apps: Vec<App> = batch.iter().map(|&i| apps[i].clone()).collect();
            let batch_services: Vec<Service> = batch
                .iter()
                .flat_map(|i| groups.get(i).into_iter().flatten().cloned())
                .collect();
            plugin.review(&batch_apps, &batch_services).map(|verdicts| {
                batch_services
                    .iter()
                    .map(|s| s.backend.clone())
                    .zip(verdicts)
                    .collect::<Vec<_>>()
            })
        };

        let mut verdicts: HashMap<String, Option<String>> = HashMap::new();
        let mut remembered = false;
        let backed_off = self.broken.filter(|p| p.active(now));
        if let Some(p) = backed_off {
            out.diagnostics.push(diagnostic(
                Severity::Warning,
                "",
                format!(
                    "policy {name} is backed off for {} s after {} failures; its last verdicts \
                     apply to unchanged services, everything else is left out",
                    p.secs_left(now),
                    p.failures
                ),
            ));
            remembered = true;
        } else {
            match review(&reviewable) {
                Ok(v) => {
                    self.broken = None;
                    verdicts.extend(v);
                }
                Err(error) => {
                    out.plugin_failures.push(name.clone());
                    tracing::warn!(plugin = %name, "policy failed on the batch: {error}");
                    if let Err(probe) = self.plugin.review(&[], &[]) {
                        out.plugin_failures.push(name.clone());
                        let penalty = Penalty::next(self.broken, now);
                        self.broken = Some(penalty);
                        out.diagnostics.push(diagnostic(
                            Severity::Error,
                            "",
                            format!(
                                "policy {name} fails even without services ({probe}); backed \
                                 off for {} s, its last verdicts apply to unchanged services",
                                penalty.secs_left(now)
                            ),
                        ));
                        remembered = true;
                    } else {
                        self.broken = None;
                        let deadline = self.plugin.limits().deadline;
                        let iso = isolate_after(reviewable, error, budget(deadline), review);
                        out.plugin_failures
                            .extend(std::iter::repeat_n(name.clone(), iso.failed_calls));
                        for (_, v) in iso.ok {
                            verdicts.extend(v);
                        }
                        for (i, error) in iso.failed.into_iter().chain(iso.unresolved) {
                            let penalty =
                                Penalty::next(self.quarantine.get(&apps[i].id).copied(), now);
                            self.quarantine.insert(apps[i].id.clone(), penalty);
                            unreviewed.insert(
                                i,
                                format!("the policy could not review this app: {error}"),
                            );
                        }
                    }
                }
            }
        }

        let mut kept = Vec::new();
        let deny = |s: &Service, reason: String, out: &mut ChainOut| {
            let message = format!("service {} denied by policy {name}: {reason}", s.backend);
            tracing::warn!(policy = %name, app = %s.app_id, "{message}");
            out.diagnostics
                .push(diagnostic(Severity::Error, &s.app_id, message));
            out.denied.push((name.clone(), s.backend.clone()));
        };
        for s in &orphans {
            deny(
                s,
                "it belongs to no app the policy could be shown".into(),
                out,
            );
        }
        let mut fresh = HashMap::new();
        for i in ids {
            for s in &groups[&i] {
                let verdict = if let Some(why) = unreviewed.get(&i) {
                    Some(why.clone())
                } else if remembered {
                    match self.last_verdicts.get(&s.backend) {
                        Some((seen, v)) if seen == s => v.clone(),
                        _ => Some("changed since the policy last reviewed it, and the policy is backed off".into()),
                    }
                } else {
                    let v = verdicts
                        .get(&s.backend)
                        .cloned()
                        .unwrap_or_else(|| Some("no verdict".into()));
                    fresh.insert(s.backend.clone(), (s.clone(), v.clone()));
                    self.quarantine.remove(&apps[i].id);
                    v
                };
                match verdict {
                    None => kept.push(s.clone()),
                    Some(reason) => deny(s, reason, out),
                }
            }
        }
        if !remembered {
            self.last_verdicts = fresh;
        }
        let present: HashSet<&str> = apps.iter().map(|a| a.id.as_str()).collect();
        self.quarantine.retain(|k, _| present.contains(k.as_str()));
        kept
    }
}

/// The default rules, custom label plugins and policies of a controller.
pub struct PluginSet {
    default: Box<dyn LabelInterpreter + Send>,
    labels: Vec<LabelStage>,
    policies: Vec<PolicyStage>,
    filters: Vec<Arc<WasmFilterPlugin>>,
    report: PluginReport,
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
            report: PluginReport::default(),
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
            quarantine: HashMap::new(),
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
                return Err(super::PluginError::load(
                    plugin.name(),
                    super::LoadError::FilterClash {
                        filter: clash.clone(),
                        other: existing.name().to_owned(),
                    },
                ));
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

    /// What the plugins did since the last call of this method: policy
    /// denials and failed calls of label, policy and filter plugins.
    pub fn take_report(&mut self) -> PluginReport {
        let mut report = std::mem::take(&mut self.report);
        report.failures.extend(
            self.filters
                .iter()
                .flat_map(|p| std::iter::repeat_n(p.name().to_owned(), p.take_failures() as usize)),
        );
        report
    }
}

impl LabelInterpreter for PluginSet {
    fn interpret(
        &mut self,
        apps: &[App],
        options: &InterpretOptions,
    ) -> Result<Interpretation, InterpretError> {
        let first = self.default.interpret(apps, options)?;
        let mut out = ChainOut {
            services: first.services,
            diagnostics: first.diagnostics,
            ..ChainOut::default()
        };
        // One order whatever the default rules reused or recomputed, so that
        // what a plugin sees (and which duplicate it keeps) never depends on
        // the history of changes.
        sort_services(&mut out.services);
        if self.labels.is_empty() && self.policies.is_empty() {
            return Ok(out.finish(&mut self.report));
        }
        let owner = owners(apps);
        for stage in &mut self.labels {
            let services = std::mem::take(&mut out.services);
            out.services = stage.run(apps, &owner, services, options, &mut out);
        }
        for stage in &mut self.policies {
            let services = std::mem::take(&mut out.services);
            out.services = stage.run(apps, &owner, services, &mut out);
        }
        Ok(out.finish(&mut self.report))
    }

    /// Only without custom label plugins and policies (which see every
    /// app and may relate them): the default rules' memo decides.
    fn interpret_changed(
        &mut self,
        apps: &[App],
        options: &InterpretOptions,
    ) -> Option<Result<Interpretation, InterpretError>> {
        if !self.labels.is_empty() || !self.policies.is_empty() {
            return None;
        }
        Some(
            self.default
                .interpret_changed(apps, options)?
                .map(|mut first| {
                    sort_services(&mut first.services);
                    first
                }),
        )
    }
}

/// Sort by app id, service port and backend, stably: through an index, so
/// that neither the ~0.6 KB records are moved about by the sort nor a
/// scratch copy of them is made (at 10,000 apps that copy is ~7 MB).
fn sort_services(services: &mut [Service]) {
    let mut order: Vec<usize> = (0..services.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&services[a], &services[b]);
        (&a.app_id, a.service_port, &a.backend).cmp(&(&b.app_id, b.service_port, &b.backend))
    });
    // Apply the permutation in place, one cycle at a time: position `i`
    // takes the record at `order[i]`.
    for start in 0..order.len() {
        let mut i = start;
        while order[i] != start {
            let next = order[i];
            services.swap(i, next);
            order[i] = i;
            i = next;
        }
        order[i] = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_sort_is_the_stable_sort() {
        // Duplicates of (app id, port, backend) that differ elsewhere show
        // whether the order among equals is kept.
        let services: Vec<Service> = (0..200u32)
            .map(|i| Service {
                app_id: format!("/app{}", (i * 7919) % 13),
                service_port: i64::from((i * 31) % 5),
                backend: format!("b{}", (i * 17) % 3),
                port_index: i,
                ..Service::default()
            })
            .collect();
        let mut expected = services.clone();
        expected.sort_by(|a, b| {
            (&a.app_id, a.service_port, &a.backend).cmp(&(&b.app_id, b.service_port, &b.backend))
        });
        let mut sorted = services;
        sort_services(&mut sorted);
        assert_eq!(sorted, expected);
    }
}
