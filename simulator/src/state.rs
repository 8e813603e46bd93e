//! The shared simulator state: the app list, the event bus, stream control, faults and the request log.
//!
//! Apps live in an `Arc<Vec<App>>` behind a mutex: readers take a snapshot and serialise it without holding
//! the lock; writers copy on write. Events are published while the lock is held, so every client sees
//! them in the order the changes were made.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{broadcast, watch};

use crate::apps::{self, App};
use crate::backend::TaskServer;

/// How long a killed task keeps running when its app sets no
/// `taskKillGracePeriodSeconds` (the Mesos command executor's default
/// escalation from SIGTERM to SIGKILL).
pub const DEFAULT_KILL_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// The kill grace period of `app` (`taskKillGracePeriodSeconds`, else
/// [`DEFAULT_KILL_GRACE`]); `None` (no app) also gets the default.
pub fn kill_grace(app: Option<&serde_json::Map<String, serde_json::Value>>) -> std::time::Duration {
    app.and_then(|a| a.get("taskKillGracePeriodSeconds"))
        .and_then(serde_json::Value::as_f64)
        .map_or(DEFAULT_KILL_GRACE, |s| {
            std::time::Duration::from_secs_f64(s.clamp(0.0, 3600.0))
        })
}
use crate::clock::UuidGen;
use crate::error::SimError;
use crate::events::SimEvent;
use crate::fault::Fault;
use crate::ops::{self, Payload};
use crate::restart::Restart;
use crate::tasks::{self, Ctx};

/// Events buffered per SSE client; a client that falls further behind is disconnected (Marathon 1.8+
/// `--event_stream_max_outstanding_messages`).
pub const EVENT_BUFFER: usize = 1024;

/// Request-log entries kept (oldest dropped first).
const MAX_REQUESTS: usize = 100_000;

/// Stream control shared with every open `/v2/events` stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Control {
    /// Streams send nothing, not even keep-alives, while set.
    pub stalled: bool,
    /// Bumped to close every open stream (as on leadership loss).
    pub disconnect_gen: u64,
    /// Set when the simulator shuts down.
    pub shutdown: bool,
}

/// One Marathon request seen by the simulator (admin `/_sim/` requests are not logged).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Whether an `Authorization` header was present.
    pub auth: bool,
    /// The scheme word of `Authorization` (`Basic`, `token=…` gives `token`).
    pub auth_scheme: Option<String>,
    pub accept: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug)]
struct State {
    apps: Arc<Vec<App>>,
    next_port: u32,
    requests: Vec<RequestRecord>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<SimEvent>>,
    control: watch::Sender<Control>,
    fault: watch::Sender<Fault>,
    uuids: UuidGen,
    auth: Option<String>,
    keepalive: Duration,
    leader: OnceLock<String>,
    /// Apps written through the REST API, driven by [`crate::engine`].
    managed: Mutex<HashSet<String>>,
    /// The loopback servers of their tasks (one per host port), by task id.
    servers: Mutex<HashMap<String, Vec<TaskServer>>>,
    /// Rolling restarts in progress, by app id.
    restarts: Mutex<HashMap<String, Restart>>,
}

/// A handle on the simulator state; cheap to clone.
#[derive(Debug, Clone)]
pub struct Sim {
    inner: Arc<Inner>,
}

impl Sim {
    /// A simulator serving `apps`, requiring `auth` (`user:pass`) if given, with keep-alives every
    /// `keepalive`.
    pub fn new(mut apps: Vec<App>, auth: Option<String>, keepalive: Duration) -> Self {
        apps.iter_mut().for_each(apps::normalise);
        let next_port = tasks::first_free_port(&apps);
        let state = State {
            apps: Arc::new(apps),
            next_port,
            requests: Vec::new(),
        };
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                events: broadcast::channel(EVENT_BUFFER).0,
                control: watch::channel(Control::default()).0,
                fault: watch::channel(Fault::default()).0,
                uuids: UuidGen::default(),
                auth,
                keepalive,
                leader: OnceLock::new(),
                managed: Mutex::default(),
                servers: Mutex::default(),
                restarts: Mutex::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A snapshot of the apps.
    pub fn apps(&self) -> Arc<Vec<App>> {
        Arc::clone(&self.lock().apps)
    }

    /// Runs `f` on the app list and publishes the events it returns, under the state lock.
    pub fn mutate<T>(
        &self,
        f: impl FnOnce(&mut Vec<App>, &mut Ctx<'_>, &mut Vec<Payload>) -> Result<T, SimError>,
    ) -> Result<T, SimError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let mut out = Vec::new();
        let mut ctx = Ctx {
            uuids: &self.inner.uuids,
            next_port: &mut st.next_port,
        };
        let r = f(Arc::make_mut(&mut st.apps), &mut ctx, &mut out)?;
        out.into_iter().for_each(|e| self.send(e));
        Ok(r)
    }

    /// Replaces every app; with `emit`, publishes the events of the difference ([`ops::diff`]).
    /// Returns how many events that was.
    pub fn replace_apps(&self, mut new: Vec<App>, emit: bool) -> usize {
        new.iter_mut().for_each(apps::normalise);
        let r = self.mutate(|list, ctx, out| {
            if emit {
                ops::diff(list, &new, out);
            }
            *ctx.next_port = (*ctx.next_port).max(tasks::first_free_port(&new));
            *list = new;
            Ok(out.len())
        });
        r.unwrap_or(0)
    }

    /// Publishes an arbitrary event to the stream; it must carry a string `eventType`.
    pub fn publish(&self, payload: Map<String, Value>) -> Result<(), SimError> {
        let ev = SimEvent::new(payload)
            .ok_or_else(|| SimError::BadRequest("an event needs a string \"eventType\"".into()))?;
        let _guard = self.lock();
        // No receiver is not an error: the event is simply not seen.
        let _ = self.inner.events.send(Arc::new(ev));
        Ok(())
    }

    fn send(&self, payload: Payload) {
        if let Some(ev) = SimEvent::new(payload) {
            let _ = self.inner.events.send(Arc::new(ev));
        }
    }

    /// A new subscription to the event bus.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<SimEvent>> {
        self.inner.events.subscribe()
    }

    /// How many event-bus subscribers (open streams) there are.
    pub fn subscribers(&self) -> usize {
        self.inner.events.receiver_count()
    }

    /// Watches the stream control.
    pub fn control(&self) -> watch::Receiver<Control> {
        self.inner.control.subscribe()
    }

    /// Stops (or resumes) all output on open streams, keep-alives included, without closing them.
    pub fn set_sse_stalled(&self, stalled: bool) {
        self.inner.control.send_modify(|c| c.stalled = stalled);
    }

    /// Closes every open event stream.
    pub fn disconnect_streams(&self) {
        self.inner.control.send_modify(|c| c.disconnect_gen += 1);
    }

    /// Marks the simulator as shutting down: streams close and stalled requests are released.
    pub fn begin_shutdown(&self) {
        self.inner.control.send_modify(|c| c.shutdown = true);
    }

    /// Watches the fault setting.
    pub fn fault(&self) -> watch::Receiver<Fault> {
        self.inner.fault.subscribe()
    }

    /// Replaces the fault setting.
    pub fn set_fault(&self, fault: Fault) {
        self.inner.fault.send_replace(fault);
    }

    /// Takes one use of the current fault if it applies to `path`: a fault with a `count` clears itself
    /// once used up.
    pub fn take_fault(&self, path: &str) -> Option<Fault> {
        let mut taken = None;
        self.inner.fault.send_if_modified(|f| {
            if !f.applies_to(path) {
                return false;
            }
            taken = Some(f.clone());
            match &mut f.count {
                Some(1) => *f = Fault::default(),
                Some(n) => *n -= 1,
                None => return false,
            }
            true
        });
        taken
    }

    /// Appends to the request log.
    pub fn record(&self, r: RequestRecord) {
        let mut st = self.lock();
        if st.requests.len() >= MAX_REQUESTS {
            st.requests.remove(0);
        }
        st.requests.push(r);
    }

    /// The request log.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().requests.clone()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// The required `user:pass`, if any.
    pub fn auth(&self) -> Option<&str> {
        self.inner.auth.as_deref()
    }

    /// The keep-alive period of event streams.
    pub fn keepalive(&self) -> Duration {
        self.inner.keepalive
    }

    /// `host:port` of this (leading) Marathon.
    pub fn leader(&self) -> &str {
        self.inner
            .leader
            .get()
            .map(String::as_str)
            .unwrap_or("127.0.0.1:8080")
    }

    /// A fresh UUID-shaped id.
    pub fn next_uuid(&self) -> String {
        self.inner.uuids.next()
    }

    /// Marks an app as driven by the engine (written through the REST API).
    pub fn manage(&self, id: &str) {
        lock(&self.inner.managed).insert(id.to_owned());
    }

    /// Stops driving an app (deleted).
    pub fn unmanage(&self, id: &str) {
        lock(&self.inner.managed).remove(id);
    }

    /// Whether the engine drives any app.
    pub fn manages_any(&self) -> bool {
        !lock(&self.inner.managed).is_empty()
    }

    /// Whether the engine drives this app.
    pub fn is_managed(&self, id: &str) -> bool {
        lock(&self.inner.managed).contains(id)
    }

    /// Keeps a server of a task running until [`Sim::stop_server`].
    pub fn add_server(&self, task_id: &str, server: TaskServer) {
        lock(&self.inner.servers)
            .entry(task_id.to_owned())
            .or_default()
            .push(server);
    }

    /// Stops a task's servers (no-op for tasks without one).
    pub fn stop_server(&self, task_id: &str) {
        lock(&self.inner.servers).remove(task_id);
    }

    /// A killed task: as on Mesos, the process gets its kill grace period
    /// (see [`kill_grace`]) before it dies, so requests routed to it
    /// meanwhile are still answered; its servers stop accepting afterwards.
    /// Only the servers: the REST endpoints and the engine kill through
    /// [`crate::kill`], which also lists the task as `TASK_KILLING` meanwhile.
    /// Must be called inside a tokio runtime.
    pub fn kill_server(&self, task_id: &str, grace: std::time::Duration) {
        let servers = lock(&self.inner.servers).remove(task_id);
        if let Some(servers) = servers
            && !grace.is_zero()
        {
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                drop(servers);
            });
        }
    }

    /// Takes a task's servers out of the simulator's keeping: they serve
    /// until the caller drops them.
    pub(crate) fn take_servers(&self, task_id: &str) -> Vec<TaskServer> {
        lock(&self.inner.servers)
            .remove(task_id)
            .unwrap_or_default()
    }

    /// Publishes events that change no app, in order with every change.
    pub(crate) fn emit(&self, events: Vec<Payload>) {
        let _guard = self.lock();
        events.into_iter().for_each(|e| self.send(e));
    }

    /// Records the rolling restart of an app (replacing any earlier one).
    pub(crate) fn set_restart(&self, app_id: &str, restart: Restart) {
        lock(&self.inner.restarts).insert(app_id.to_owned(), restart);
    }

    /// The rolling restart of an app, if one runs.
    pub(crate) fn restart_of(&self, app_id: &str) -> Option<Restart> {
        lock(&self.inner.restarts).get(app_id).cloned()
    }

    /// Forgets the rolling restart of an app (finished or superseded).
    pub(crate) fn end_restart(&self, app_id: &str) {
        lock(&self.inner.restarts).remove(app_id);
    }

    pub(crate) fn set_leader(&self, hostport: String) {
        let _ = self.inner.leader.set(hostport);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
