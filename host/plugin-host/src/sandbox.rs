//! The world a plugin call runs in: a fresh store with a memory cap and an
//! epoch deadline, and a WASI context that gives nothing unless granted — no
//! directories, an empty environment, clocks frozen at the Unix epoch, a
//! network that refuses every address, empty stdin; stdout and stderr are
//! captured so a panic message can be reported.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    FsPerms, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use super::bindings::label::mlb::plugins::{host_log, types as wit};
use super::spec::Grants;
use super::{PluginError, PluginLimits};

/// Epoch ticks are 10 ms apart.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Bytes of guest output kept per call.
const CAPTURE_BYTES: usize = 64 << 10;

/// The memory cap of one store: the sum of all its linear memories (a
/// component may have several), with the peak recorded.
pub(crate) struct Limits {
    cap: usize,
    used: usize,
    peak: usize,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.used.saturating_sub(current).saturating_add(desired);
        if after > self.cap {
            return Ok(false);
        }
        self.used = after;
        self.peak = self.peak.max(after);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        64
    }
}

/// Per-store data: WASI context, resource table, limits, plugin name.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Limits,
    plugin: Arc<str>,
    log: LogBudget,
}

/// Most `host-log` messages kept per call.
const LOG_MESSAGES: u32 = 100;
/// Most `host-log` bytes (after escaping) kept per call.
const LOG_BYTES: usize = 64 << 10;
/// Longest single `host-log` message, in characters (before escaping).
const LOG_MESSAGE_CHARS: usize = 4096;

/// What one call has logged so far.
#[derive(Debug, Default)]
struct LogBudget {
    messages: u32,
    bytes: usize,
    exhausted: bool,
}

/// What to do with one `host-log` message.
#[derive(Debug, PartialEq, Eq)]
enum LogLine {
    /// Log this (escaped, shortened) text.
    Write(String),
    /// The budget just ran out: say so once.
    Exhausted,
    /// The budget ran out earlier: drop it.
    Drop,
}

impl LogBudget {
    /// The line to log for `message`: control characters and Unicode line
    /// separators escaped (one message is one log line), at most
    /// [`LOG_MESSAGE_CHARS`] characters, within the per-call budget.
    fn take(&mut self, message: &str) -> LogLine {
        if self.exhausted {
            return LogLine::Drop;
        }
        let mut line = String::new();
        for (i, c) in message.chars().enumerate() {
            if i == LOG_MESSAGE_CHARS {
                line.push_str("… (message truncated)");
                break;
            }
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}') {
                line.extend(c.escape_default());
            } else {
                line.push(c);
            }
        }
        if self.messages >= LOG_MESSAGES || self.bytes + line.len() > LOG_BYTES {
            self.exhausted = true;
            return LogLine::Exhausted;
        }
        self.messages += 1;
        self.bytes += line.len();
        LogLine::Write(line)
    }
}

impl State {
    /// The most linear memory the store's instances held at once, in bytes.
    pub(crate) fn peak_memory(&self) -> usize {
        self.limits.peak
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit::Host for State {}

impl host_log::Host for State {
    fn log(&mut self, level: wit::Severity, message: String) {
        let plugin = &*self.plugin;
        let message = match self.log.take(&message) {
            LogLine::Write(line) => line,
            LogLine::Exhausted => {
                tracing::warn!(
                    plugin,
                    "host-log: more than {LOG_MESSAGES} messages or {LOG_BYTES} bytes in one call; the rest of this call's messages are dropped"
                );
                return;
            }
            LogLine::Drop => return,
        };
        match level {
            wit::Severity::Info => tracing::info!(plugin, "{message}"),
            wit::Severity::Warning => tracing::warn!(plugin, "{message}"),
            wit::Severity::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

/// A clock stopped at the Unix epoch (what an ungranted plugin sees).
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}

/// What one plugin's calls may reach, fixed at start-up.
#[derive(Debug, Clone)]
pub(crate) struct Sandbox {
    plugin: Arc<str>,
    limits: PluginLimits,
    clock: bool,
    dirs: Vec<String>,
    env: Vec<(String, String)>,
}

/// A store ready for one call, and the guest's captured output.
pub(crate) struct Call {
    pub(crate) store: Store<State>,
    pub(crate) output: MemoryOutputPipe,
}

impl Sandbox {
    /// A sandbox for `plugin` with `grants` (environment values are read now).
    pub(crate) fn new(
        plugin: &str,
        limits: PluginLimits,
        grants: &Grants,
    ) -> Result<Self, PluginError> {
        let mut dirs = Vec::new();
        for dir in &grants.dirs {
            if !dir.is_dir() {
                return Err(PluginError::load(
                    plugin,
                    super::LoadError::NotADirectory(dir.clone()),
                ));
            }
            dirs.push(dir.to_string_lossy().into_owned());
        }
        Ok(Self {
            plugin: plugin.into(),
            limits,
            clock: grants.clock,
            dirs,
            env: grants
                .env
                .iter()
                .filter_map(|k| std::env::var(k).ok().map(|v| (k.clone(), v)))
                .collect(),
        })
    }

    /// The plugin's name.
    pub(crate) fn plugin(&self) -> &Arc<str> {
        &self.plugin
    }

    /// The plugin's limits.
    pub(crate) fn limits(&self) -> PluginLimits {
        self.limits
    }

    /// A fresh store for one call.
    pub(crate) fn store(&self, engine: &Engine) -> Result<Call, String> {
        let output = MemoryOutputPipe::new(CAPTURE_BYTES);
        let mut builder = WasiCtxBuilder::new();
        builder.stderr(output.clone()).stdout(output.clone());
        if !self.clock {
            builder.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
        }
        for (k, v) in &self.env {
            builder.env(k, v);
        }
        for dir in &self.dirs {
            builder
                .preopened_dir(dir, dir, FsPerms::ReadOnly)
                .map_err(|e| format!("cannot open granted directory {dir}: {e}"))?;
        }
        let limits = Limits {
            cap: self.limits.memory_bytes,
            used: 0,
            peak: 0,
        };
        let mut store = Store::new(
            engine,
            State {
                wasi: builder.build(),
                table: ResourceTable::new(),
                limits,
                plugin: self.plugin.clone(),
                log: LogBudget::default(),
            },
        );
        store.limiter(|s| &mut s.limits);
        self.arm(&mut store);
        Ok(Call { store, output })
    }

    /// Reset the call deadline of `store` (before each call on a reused
    /// instance).
    pub(crate) fn arm(&self, store: &mut Store<State>) {
        let ticks = (self.limits.deadline.as_millis() / TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.data_mut().log = LogBudget::default();
        store.epoch_deadline_trap();
    }
}

/// Describe a trap, with what the guest printed (its panic message).
pub(crate) fn trap_message(trap: &wasmtime::Error, output: &MemoryOutputPipe) -> String {
    let guest = String::from_utf8_lossy(&output.contents())
        .trim()
        .to_owned();
    let mut message = match trap.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => "timed out (call deadline exceeded)".to_owned(),
        _ => format!("trapped: {trap:#}"),
    };
    if !guest.is_empty() {
        let tail: String = guest
            .chars()
            .rev()
            .take(1000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        message.push_str(&format!(" (guest output: {tail})"));
    }
    message
}

/// What every plugin type holds: its pre-linked component (`P`, one
/// world's typed pre-instance), its engine, sandbox and configuration, and
/// the peak memory of its last call.
pub(crate) struct Prelinked<P> {
    pub(crate) engine: Engine,
    pub(crate) pre: P,
    pub(crate) sandbox: Sandbox,
    pub(crate) config: Vec<(String, String)>,
    peak_memory: std::sync::atomic::AtomicUsize,
}

impl<P> Prelinked<P> {
    /// Pre-link `component` for the world `kind` (`typed` checks its exports).
    pub(crate) fn new(
        runtime: &super::PluginRuntime,
        component: &wasmtime::component::Component,
        sandbox: Sandbox,
        config: Vec<(String, String)>,
        kind: &str,
        typed: impl FnOnce(wasmtime::component::InstancePre<State>) -> wasmtime::Result<P>,
    ) -> Result<Self, PluginError> {
        let pre = runtime.prelink(sandbox.plugin(), component, kind, typed)?;
        Ok(Self {
            engine: runtime.engine().clone(),
            pre,
            sandbox,
            config,
            peak_memory: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// The plugin's name.
    pub(crate) fn name(&self) -> &str {
        self.sandbox.plugin()
    }

    /// A fresh store for one call.
    pub(crate) fn store(&self) -> Result<Call, String> {
        self.sandbox.store(&self.engine)
    }

    /// Remember how much linear memory a finished call's store used.
    pub(crate) fn record_peak(&self, store: &Store<State>) {
        self.peak_memory.store(
            store.data().peak_memory(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Linear memory the last call used at its peak, in bytes.
    pub(crate) fn last_peak_memory(&self) -> usize {
        self.peak_memory.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_log_is_escaped_and_bounded_per_call() {
        let mut budget = LogBudget::default();
        assert_eq!(
            budget.take("a\nb\r\u{1b}[31m\u{2028}c"),
            LogLine::Write("a\\nb\\r\\u{1b}[31m\\u{2028}c".into())
        );
        let LogLine::Write(long) = budget.take(&"x".repeat(10_000)) else {
            panic!("a long message is shortened, not dropped");
        };
        assert!(long.len() < LOG_MESSAGE_CHARS + 64 && long.ends_with("(message truncated)"));
        let mut written = 2;
        let mut said = 0;
        for _ in 0..100_000 {
            match budget.take("a message\n") {
                LogLine::Write(_) => written += 1,
                LogLine::Exhausted => said += 1,
                LogLine::Drop => {}
            }
        }
        assert_eq!(written, LOG_MESSAGES);
        assert_eq!(said, 1, "the truncation is announced once");
        // Bytes are bounded too.
        let mut budget = LogBudget::default();
        let big = "y".repeat(LOG_MESSAGE_CHARS);
        let kept = (0..100)
            .filter(|_| matches!(budget.take(&big), LogLine::Write(_)))
            .count();
        assert_eq!(kept, LOG_BYTES / LOG_MESSAGE_CHARS);
    }
}
