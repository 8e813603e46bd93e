//! Reuse of one service's rendered [`Parts`] across renders (issue 10,
//! item 2): most reconciles change a few services out of thousands.
//!
//! A service's parts are a function of the templates (fixed per
//! [`Renderer`](super::Renderer)), the settings, the service value and the
//! shared state it reads ([`Context`]: whether its app id already has its
//! :9091 ACL, and the "first map user" flags). An entry is reused only when
//! all of them are equal, so a cached render equals a full one byte for
//! byte; any change of settings empties the cache. Only services that
//! passed the checks and rendered are kept (a failing one is checked and
//! rendered again, with its diagnostics), so a hit skips both. Parts are
//! shared ([`Arc`]), not copied.
//! Template filters from plugins may not be pure, so a renderer with
//! filters does not cache.
//!
//! Entries unused for [`KEEP`] renders are dropped, so the partial renders
//! of the config cleanup do not empty the cache (a render without services,
//! the global part alone, does not count).

use std::collections::HashMap;
use std::sync::Arc;

use mlb_model::Service;

use super::RenderSettings;
use super::parts::{Parts, Shared};

/// Renders an entry may go unused before it is dropped.
pub(super) const KEEP: u64 = 8;

/// What a service's rendering reads from the services before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Context {
    appid_done: bool,
    map_http_done: bool,
    map_https_done: bool,
    map_appid_done: bool,
}

impl Context {
    pub(crate) fn of(service: &Service, shared: &Shared) -> Self {
        Self {
            appid_done: shared.appids.contains(&service.app_id),
            map_http_done: shared.map_http_done,
            map_https_done: shared.map_https_done,
            map_appid_done: shared.map_appid_done,
        }
    }

    /// A shared state that `service` reads as this context (what it
    /// renders from is the same as in the full state).
    pub(crate) fn shared_for(self, service: &Service) -> Shared {
        let mut shared = Shared {
            map_http_done: self.map_http_done,
            map_https_done: self.map_https_done,
            map_appid_done: self.map_appid_done,
            ..Shared::default()
        };
        if self.appid_done {
            shared.appids.insert(service.app_id.clone());
        }
        shared
    }
}

#[derive(Debug)]
struct Entry {
    service: Service,
    context: Context,
    parts: Arc<Parts>,
    used: u64,
}

/// Parts of earlier renders, by backend name.
#[derive(Debug, Default)]
pub(crate) struct PartsCache {
    settings: Option<RenderSettings>,
    entries: HashMap<String, Vec<Entry>>,
    epoch: u64,
    /// Services reused / rendered by the last render.
    pub(crate) hits: usize,
    pub(crate) misses: usize,
}

impl PartsCache {
    /// Start a render with `settings`.
    pub(crate) fn begin(&mut self, settings: &RenderSettings) {
        if self.settings.as_ref() != Some(settings) {
            self.entries.clear();
            self.settings = Some(settings.clone());
        }
        self.epoch += 1;
        self.hits = 0;
        self.misses = 0;
    }

    /// Nothing is cached (the first render, or after a change of settings
    /// is seen).
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The parts of `service` rendered in `context` before, if any.
    pub(crate) fn get(&mut self, service: &Service, context: Context) -> Option<Arc<Parts>> {
        let epoch = self.epoch;
        let found = self
            .entries
            .get_mut(&service.backend)?
            .iter_mut()
            .find(|e| e.context == context && e.service == *service);
        match found {
            Some(e) => {
                e.used = epoch;
                self.hits += 1;
                Some(Arc::clone(&e.parts))
            }
            None => None,
        }
    }

    /// Remember the parts `service` rendered to in `context`.
    pub(crate) fn put(&mut self, service: &Service, context: Context, parts: Arc<Parts>) {
        self.misses += 1;
        self.entries
            .entry(service.backend.clone())
            .or_default()
            .push(Entry {
                service: service.clone(),
                context,
                parts,
                used: self.epoch,
            });
    }

    /// Entries held (every context of every backend).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.values().map(Vec::len).sum()
    }

    /// `new`'s parts in `context` replace `old`'s (same backend) outside a
    /// render ([`Renderer::rerender`](super::Renderer::rerender)), which
    /// does not age entries: without the replacement every change would
    /// add one until the next full render.
    pub(crate) fn replace(
        &mut self,
        old: &Service,
        new: &Service,
        context: Context,
        parts: Arc<Parts>,
    ) {
        let list = self.entries.entry(new.backend.clone()).or_default();
        list.retain(|e| !(e.context == context && e.service == *old));
        list.push(Entry {
            service: new.clone(),
            context,
            parts,
            used: self.epoch,
        });
    }

    /// End a render: drop what has not been used lately.
    pub(crate) fn finish(&mut self) {
        let epoch = self.epoch;
        self.entries.retain(|_, list| {
            list.retain(|e| epoch - e.used < KEEP);
            !list.is_empty()
        });
    }
}
