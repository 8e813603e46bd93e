//! Filter plugins: template filters registered in the renderer.
//!
//! One instance serves many calls (a call costs ~1 µs, an instantiation
//! ~30 µs, and a generation may apply a filter thousands of times); it is
//! discarded after a trap and instantiated again on the next call. After
//! [`TRAPS_BEFORE_BACKOFF`] traps in a row the plugin is backed off: calls
//! fail at once (the services using it are left out with a diagnostic)
//! until the backoff expires.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mlb_core::engine::TemplateFilter;
use wasmtime::Store;
use wasmtime::component::Component;

use super::bindings::filter::{FilterPlugin, FilterPluginPre};
use super::runtime::PluginRuntime;
use super::sandbox::{Call, Prelinked, Sandbox, State, trap_message};
use super::{LoadError, PluginError, WasmError};

/// Consecutive traps that back a filter plugin off.
pub const TRAPS_BEFORE_BACKOFF: u32 = 3;

/// Longest backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// A live instance and its store.
struct Live {
    store: Store<State>,
    instance: FilterPlugin,
    output: wasmtime_wasi::p2::pipe::MemoryOutputPipe,
}

#[derive(Default)]
struct Session {
    live: Option<Live>,
    traps: u32,
    backoff_until: Option<Instant>,
}

/// A filter plugin compiled and pre-linked.
pub struct WasmFilterPlugin {
    inner: Prelinked<FilterPluginPre<State>>,
    filters: Vec<String>,
    session: Mutex<Session>,
    failures: AtomicU64,
}

impl std::fmt::Debug for WasmFilterPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmFilterPlugin")
            .field("name", &self.inner.name())
            .field("filters", &self.filters)
            .finish_non_exhaustive()
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl WasmFilterPlugin {
    /// Pre-link `component` (already inspected as a filter plugin) and ask
    /// it for its filter names.
    pub(crate) fn new(
        runtime: &PluginRuntime,
        component: &Component,
        sandbox: Sandbox,
        config: Vec<(String, String)>,
    ) -> Result<Self, PluginError> {
        let name = sandbox.plugin().to_string();
        let load = |cause: LoadError| PluginError::load(&name, cause);
        let inner = Prelinked::new(
            runtime,
            component,
            sandbox,
            config,
            "filter plugin",
            FilterPluginPre::new,
        )?;
        let mut plugin = Self {
            inner,
            filters: Vec::new(),
            session: Mutex::new(Session::default()),
            failures: AtomicU64::new(0),
        };
        let mut live = plugin
            .instantiate()
            .map_err(|e| load(LoadError::Instantiate(e)))?;
        let filters = match live
            .instance
            .mlb_plugins_template_filter()
            .call_filters(&mut live.store, &plugin.inner.config)
        {
            Ok(Ok(filters)) => filters,
            Ok(Err(message)) => return Err(load(LoadError::RefusedConfig(message))),
            Err(trap) => {
                return Err(load(LoadError::Trap {
                    message: trap_message(&trap, &live.output),
                    trap: WasmError(trap),
                }));
            }
        };
        if let Some(bad) = filters.iter().find(|f| !is_identifier(f)) {
            return Err(load(LoadError::FilterName(bad.clone())));
        }
        plugin.filters = filters;
        plugin.session.get_mut().expect("not shared yet").live = Some(live);
        Ok(plugin)
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The filters it provides.
    pub fn filters(&self) -> &[String] {
        &self.filters
    }

    /// Calls that trapped (or were refused while backed off) since the last
    /// call of this method.
    pub fn take_failures(&self) -> u64 {
        self.failures.swap(0, Ordering::Relaxed)
    }

    fn instantiate(&self) -> Result<Live, String> {
        let Call { mut store, output } = self.inner.store()?;
        let instance = self
            .inner
            .pre
            .instantiate(&mut store)
            .map_err(|e| format!("cannot instantiate: {e:#}"))?;
        Ok(Live {
            store,
            instance,
            output,
        })
    }
}

impl TemplateFilter for WasmFilterPlugin {
    fn apply(&self, filter: &str, value: &str, args: &[String]) -> Result<String, String> {
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = session.backoff_until {
            if Instant::now() < until {
                self.failures.fetch_add(1, Ordering::Relaxed);
                return Err(format!(
                    "filter plugin {} is backed off after {} failures in a row",
                    self.name(),
                    session.traps
                ));
            }
            session.backoff_until = None;
        }
        let mut live = match session.live.take() {
            Some(live) => live,
            None => match self.instantiate() {
                Ok(live) => live,
                Err(e) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            },
        };
        self.inner.sandbox.arm(&mut live.store);
        let result = live.instance.mlb_plugins_template_filter().call_apply(
            &mut live.store,
            filter,
            value,
            args,
            &self.inner.config,
        );
        match result {
            Ok(out) => {
                session.traps = 0;
                session.live = Some(live);
                out
            }
            Err(trap) => {
                // The instance is poisoned: drop it, count, maybe back off.
                self.failures.fetch_add(1, Ordering::Relaxed);
                session.traps += 1;
                if session.traps >= TRAPS_BEFORE_BACKOFF {
                    let exp = (session.traps - TRAPS_BEFORE_BACKOFF).min(9);
                    let wait = (Duration::from_secs(1) * 2u32.pow(exp)).min(MAX_BACKOFF);
                    session.backoff_until = Some(Instant::now() + wait);
                    tracing::warn!(
                        plugin = self.name(),
                        traps = session.traps,
                        backoff_ms = wait.as_millis() as u64,
                        "filter plugin keeps failing; backing off"
                    );
                }
                Err(trap_message(&trap, &live.output))
            }
        }
    }
}
