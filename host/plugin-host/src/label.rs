//! Label plugins: apps (and the services so far) in, services out.
//!
//! The default plugin may interpret a large batch in several calls, run two
//! at a time on their own threads ([`WasmLabelPlugin::split_independent`]):
//! apps whose result depends on other apps (blue/green members, ports
//! handed out by the IP-per-task assigner — [`mlb_label_rules::stands_alone`])
//! all go to the first call, in order; the stand-alone apps are shared out. That is the
//! same independence [`super::Memoized`] relies on, and only the default
//! rules have it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use mlb_core::{InterpretError, Interpretation, LabelInterpreter};
use mlb_label_rules::stands_alone;
use mlb_model::{App, InterpretOptions, Service};
use wasmtime::component::Component;

use super::bindings::label::mlb::plugins::types as wit;
use super::bindings::label::{LabelPlugin, LabelPluginPre};
use super::runtime::PluginRuntime;
use super::sandbox::{Call, Prelinked, Sandbox, State, trap_message};
use super::{PluginError, PluginLimits, convert};

/// A label plugin compiled and pre-linked, ready to be called.
pub struct WasmLabelPlugin {
    inner: Prelinked<LabelPluginPre<State>>,
    /// How a large batch is split (`None`: never).
    split: Option<Split>,
}

/// How the default plugin interprets a large batch: in calls of at most
/// about `batch_apps` apps each (smaller guest memories, smaller WIT
/// copies at once), `workers` calls at a time on their own threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Calls running at once.
    pub workers: usize,
    /// Apps per call (the first call also takes every app that depends on
    /// others, however many).
    pub batch_apps: usize,
}

impl Split {
    /// One worker per available core, at most 2 (the controller's target
    /// machine), and 1,000 apps per call.
    pub fn for_this_machine() -> Self {
        Self {
            workers: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, 2),
            batch_apps: 1_000,
        }
    }
}

impl std::fmt::Debug for WasmLabelPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmLabelPlugin")
            .field("name", &self.inner.name())
            .field("limits", &self.inner.sandbox.limits())
            .field("split", &self.split)
            .finish_non_exhaustive()
    }
}

impl WasmLabelPlugin {
    /// Pre-link `component` (already inspected as a label plugin).
    pub(crate) fn new(
        runtime: &PluginRuntime,
        component: &Component,
        sandbox: Sandbox,
        config: Vec<(String, String)>,
    ) -> Result<Self, PluginError> {
        let inner = Prelinked::new(
            runtime,
            component,
            sandbox,
            config,
            "label plugin",
            LabelPluginPre::new,
        )?;
        Ok(Self { inner, split: None })
    }

    /// Interpret batches larger than `split.batch_apps` in several calls,
    /// `split.workers` at a time. Only for rules with the default rules'
    /// independence (see the module docs): the services come back in
    /// another order than from one call (the chain sorts them), the same
    /// set.
    pub fn split_independent(mut self, split: Split) -> Self {
        self.split = Some(split);
        self
    }

    /// How large batches are split, if they are.
    pub fn split(&self) -> Option<Split> {
        self.split
    }

    /// Compile and pre-link the label plugin `bytes` with a private engine
    /// and no disk cache, granting nothing.
    pub fn load(name: &str, bytes: &[u8], limits: PluginLimits) -> Result<Self, PluginError> {
        let runtime = PluginRuntime::new(None)?;
        Self::with_runtime(&runtime, name, bytes, limits)
    }

    /// Compile (or load from the cache) and pre-link the label plugin
    /// `bytes` on `runtime`, granting nothing.
    pub fn with_runtime(
        runtime: &PluginRuntime,
        name: &str,
        bytes: &[u8],
        limits: PluginLimits,
    ) -> Result<Self, PluginError> {
        let compiled = runtime.compile(name, bytes)?;
        let grants = super::Grants::default();
        let inspection = super::inspect(name, runtime.engine(), &compiled.component, &grants)?;
        if inspection.world != super::World::Label {
            return Err(PluginError::World {
                plugin: name.to_owned(),
                message: format!("is a {}, not a label plugin", inspection.world.name()),
                source: None,
            });
        }
        let sandbox = Sandbox::new(name, limits, &grants)?;
        Self::new(runtime, &compiled.component, sandbox, Vec::new())
    }

    /// The embedded default plugin.
    pub fn default_plugin(limits: PluginLimits) -> Result<Self, PluginError> {
        Self::load("default-label", super::DEFAULT_LABEL_PLUGIN, limits)
    }

    /// Linear memory the last call used at its peak, in bytes.
    pub fn last_peak_memory(&self) -> usize {
        self.inner.last_peak_memory()
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Its memory cap and call deadline.
    pub fn limits(&self) -> PluginLimits {
        self.inner.sandbox.limits()
    }

    fn fail(&self, message: String) -> InterpretError {
        InterpretError::Plugin {
            plugin: self.name().to_owned(),
            message,
        }
    }

    /// Interpret `apps`, given the services of the previous plugin.
    pub fn call(
        &self,
        apps: &[App],
        services: &[Service],
        options: &InterpretOptions,
    ) -> Result<Interpretation, InterpretError> {
        let apps: Vec<&App> = apps.iter().collect();
        self.call_refs(&apps, services, options)
    }

    fn call_refs(
        &self,
        apps: &[&App],
        services: &[Service],
        options: &InterpretOptions,
    ) -> Result<Interpretation, InterpretError> {
        let (mut call, instance) = self.instance()?;
        self.call_on(&mut call, &instance, apps, services, options)
    }

    /// A fresh store and instance.
    fn instance(&self) -> Result<(Call, LabelPlugin), InterpretError> {
        let mut call = self.inner.store().map_err(|e| self.fail(e))?;
        let instance = self
            .inner
            .pre
            .instantiate(&mut call.store)
            .map_err(|e| self.fail(format!("cannot instantiate: {e:#}")))?;
        Ok((call, instance))
    }

    /// One call on `instance` (with a fresh call deadline).
    fn call_on(
        &self,
        call: &mut Call,
        instance: &LabelPlugin,
        apps: &[&App],
        services: &[Service],
        options: &InterpretOptions,
    ) -> Result<Interpretation, InterpretError> {
        self.inner.sandbox.arm(&mut call.store);
        let apps: Vec<wit::App> = apps.iter().map(|a| convert::app_to_wit(a)).collect();
        let services: Vec<wit::Service> = services.iter().map(convert::service_to_wit).collect();
        let options = convert::options_to_wit(options);
        let result = instance.mlb_plugins_label_interpreter().call_interpret(
            &mut call.store,
            &apps,
            &services,
            &options,
            &self.inner.config,
        );
        // Freeing ~10 MB of copies at 10,000 apps takes ~17 ms: off the
        // reconcile's critical path.
        convert::drop_elsewhere((apps, services));
        self.inner.record_peak(&call.store);
        match result {
            Ok(Ok(out)) => Ok(Interpretation {
                services: out
                    .services
                    .into_iter()
                    .map(convert::service_from_wit)
                    .collect(),
                diagnostics: out
                    .diagnostics
                    .into_iter()
                    .map(convert::diagnostic_from_wit)
                    .collect(),
            }),
            Ok(Err(message)) => Err(self.fail(format!("returned an error: {message}"))),
            Err(trap) => Err(self.fail(trap_message(&trap, &call.output))),
        }
    }

    /// Interpret `apps` in batches (see the module docs), `split.workers`
    /// calls at a time; the batches' results are concatenated in batch
    /// order. The first failing batch fails the whole call, like one call.
    fn call_batches(
        &self,
        apps: &[App],
        split: Split,
        options: &InterpretOptions,
    ) -> Result<Interpretation, InterpretError> {
        let batches = batches(apps, split.batch_apps);
        let workers = split.workers.clamp(1, batches.len().max(1));
        let next = AtomicUsize::new(0);
        // Each worker keeps one instance for all its batches: its guest
        // memory is grown once and reused (the default rules keep no state
        // between calls), instead of a fresh memory faulted in per batch.
        let work = || {
            let mut done = Vec::new();
            let mut instance = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = batches.get(i) else { break };
                let result = match &mut instance {
                    Some((call, plugin)) => self.call_on(call, plugin, batch, &[], options),
                    None => self.instance().and_then(|(mut call, plugin)| {
                        let result = self.call_on(&mut call, &plugin, batch, &[], options);
                        instance = Some((call, plugin));
                        result
                    }),
                };
                let failed = result.is_err();
                done.push((i, result));
                if failed {
                    // The other workers stop at their next batch.
                    next.store(batches.len(), Ordering::Relaxed);
                    break;
                }
            }
            done
        };
        let mut results: Vec<(usize, Result<Interpretation, InterpretError>)> =
            std::thread::scope(|scope| {
                let helpers: Vec<_> = (1..workers).map(|_| scope.spawn(work)).collect();
                let mut all = work();
                for helper in helpers {
                    all.extend(helper.join().unwrap_or_else(|_| {
                        vec![(
                            usize::MAX,
                            Err(self.fail("a worker thread panicked".to_owned())),
                        )]
                    }));
                }
                all
            });
        results.sort_by_key(|(key, _)| *key);
        let mut out = Interpretation::default();
        // Exactly the room needed: a service record is ~0.6 KB, and growing
        // by doubling would leave up to half of 10,000 of them unused.
        let services = results
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .map(|part| part.services.len())
            .sum();
        out.services.reserve_exact(services);
        for (_, result) in results {
            let part = result?;
            out.services.extend(part.services);
            out.diagnostics.extend(part.diagnostics);
        }
        Ok(out)
    }
}

/// `apps` in batches of about `size`: every app that depends on others (and
/// every stand-alone app whose id a deployment group's services carry) in
/// the first batch, however many there are, topped up with stand-alone
/// apps; the other stand-alone apps in batches of `size`. Document order is
/// kept within each batch.
fn batches(apps: &[App], size: usize) -> Vec<Vec<&App>> {
    let size = size.max(1);
    let group_ids: HashSet<String> = apps.iter().filter_map(super::memo::group_id).collect();
    let (mut first, alone): (Vec<&App>, Vec<&App>) = apps
        .iter()
        .partition(|a| !stands_alone(a) || group_ids.contains(&a.id));
    let mut alone = alone.into_iter();
    let room = size.saturating_sub(first.len());
    first.extend(alone.by_ref().take(room));
    let rest: Vec<&App> = alone.collect();
    let mut out = vec![first];
    out.extend(rest.chunks(size).map(<[&App]>::to_vec));
    out
}

impl LabelInterpreter for WasmLabelPlugin {
    fn interpret(
        &mut self,
        apps: &[App],
        options: &InterpretOptions,
    ) -> Result<Interpretation, InterpretError> {
        if let Some(split) = self.split
            && apps.len() > split.batch_apps
        {
            return self.call_batches(apps, split, options);
        }
        self.call(apps, &[], options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: &str, ports: Vec<i64>, group: Option<&str>) -> App {
        App {
            id: id.into(),
            ports,
            labels: group
                .map(|g| vec![("HAPROXY_DEPLOYMENT_GROUP".to_owned(), g.to_owned())])
                .unwrap_or_default(),
            ..App::default()
        }
    }

    #[test]
    fn dependent_apps_all_go_to_the_first_batch_in_order() {
        let apps = vec![
            app("/a", vec![1], None),
            app("/blue", vec![2], Some("web")),
            app("/b", vec![3], None),
            app("/portless", vec![], None),
            app("/web", vec![4], None),
            app("/c", vec![5], None),
            app("/d", vec![6], None),
            app("/green", vec![7], Some("web")),
        ];
        fn ids<'a>(b: &[&'a App]) -> Vec<&'a str> {
            b.iter().map(|a| a.id.as_str()).collect()
        }
        let out: Vec<Vec<&str>> = batches(&apps, 2).iter().map(|b| ids(b)).collect();
        // Four dependent apps (two group members, a portless app, and the
        // app whose id the group's services carry) exceed the size: the first
        // batch takes them all and no stand-alone app.
        assert_eq!(
            out,
            vec![
                vec!["/blue", "/portless", "/web", "/green"],
                vec!["/a", "/b"],
                vec!["/c", "/d"],
            ]
        );
        let out: Vec<Vec<&str>> = batches(&apps, 5).iter().map(|b| ids(b)).collect();
        assert_eq!(
            out,
            vec![
                vec!["/blue", "/portless", "/web", "/green", "/a"],
                vec!["/b", "/c", "/d"]
            ]
        );
    }
}
