//! A generation from the changed apps alone (issue 10, item 2).
//!
//! The common change at scale is a task of an existing app starting or
//! going away. A full generation reads every app, compares every app with
//! the plugin memo and every service with the render cache, and assembles
//! the whole text: ~100 ms at 5,000 apps. [`changed`] reads only the apps
//! [`MarathonState::normalized_changes`] names, interprets only them
//! ([`LabelInterpreter::interpret_changed`]) and splices their backend
//! sections into the last text ([`Renderer::rerender`]). It gives up (`None`,
//! and the caller generates fully) wherever it could not prove that a full
//! generation gives the same: apps added or removed, a changed app with a
//! diagnostic (before or after) or whose services changed beyond their
//! backend section, services depending on other apps, custom label plugins
//! or policies, health verdicts taken from the cache, or a full render
//! (the config cleanup's) in between. The equality is tested against full
//! generations over random sequences of changes (`tests`).
//!
//! [`Renderer::rerender`]: mlb_core::render::Renderer::rerender
//! [`LabelInterpreter::interpret_changed`]: mlb_core::LabelInterpreter::interpret_changed

use std::sync::Arc;
use std::time::Instant;

use mlb_core::LabelInterpreter;
use mlb_model::{Diagnostic, Service};

use super::{Generated, Generator, Timings};
use crate::state::MarathonState;

/// What the last generation from a state left to build on.
#[derive(Debug)]
pub(super) struct Last {
    /// Its services, in the plugin chain's order (by app id first).
    pub(super) services: Arc<Vec<Service>>,
    /// Its diagnostics, every stage's.
    pub(super) diagnostics: Vec<Diagnostic>,
    /// Apps read.
    pub(super) apps: usize,
    /// Some task's health verdict came from the health cache.
    pub(super) health_cached: bool,
    /// The full render it ended with ([`Renderer::last_render`]).
    ///
    /// [`Renderer::last_render`]: mlb_core::render::Renderer::last_render
    pub(super) render: u64,
}

/// The generation `state` gives, from the apps changed since the last one
/// alone; `None`: generate fully (nothing was lost: the state's apps are
/// normalised either way).
pub(super) fn changed(
    g: &mut Generator,
    state: &mut MarathonState,
    t0: Instant,
) -> Option<Generated> {
    // Taken: whatever happens below, the full generation records anew.
    let last = g.last.take()?;
    if g.renderer.last_render() != Some(last.render) || last.health_cached {
        return None;
    }
    let resolver = &mut g.resolver;
    let changes = state.normalized_changes(|host| resolver.resolve(host))?;
    let mut apps = Vec::with_capacity(changes.len());
    for change in changes {
        let ((Some(_), before), (Some(after), now)) = (change.before, change.after) else {
            return None;
        };
        let quiet = before.is_empty()
            && now.is_empty()
            && !last.diagnostics.iter().any(|d| d.app_id == change.id);
        if !quiet || after.id != change.id {
            return None;
        }
        apps.push(after);
    }
    if g.interpret.health_check && g.health.apply(&mut apps) > 0 {
        return None;
    }
    let t1 = Instant::now();
    let interpretation = g.plugins.interpret_changed(&apps, &g.interpret)?.ok()?;
    if !interpretation.diagnostics.is_empty() {
        return None;
    }
    // Each changed app's services, paired with its last ones by position.
    let mut services = last.services;
    let mut pairs: Vec<(usize, Service)> = Vec::with_capacity(interpretation.services.len());
    let mut fresh = interpretation.services;
    for app in &apps {
        let from = services.partition_point(|s| s.app_id < app.id);
        let had = services[from..]
            .iter()
            .take_while(|s| s.app_id == app.id)
            .count();
        // In the chain's order, as the last ones.
        let (mine, others): (Vec<Service>, Vec<Service>) =
            fresh.into_iter().partition(|s| s.app_id == app.id);
        fresh = others;
        if mine.len() != had {
            return None;
        }
        pairs.extend((from..).zip(mine));
    }
    if !fresh.is_empty() {
        // A service of another app.
        return None;
    }
    let t2 = Instant::now();
    let replace: Vec<(&Service, &Service)> = pairs
        .iter()
        .map(|(at, new)| (&services[*at], new))
        .collect();
    let rendered = g.renderer.rerender(&replace, &g.render)?;
    drop(replace);
    let list = Arc::make_mut(&mut services);
    for (at, new) in pairs {
        list[at] = new;
    }
    let t3 = Instant::now();
    let report = g.plugins.take_report();
    g.last = Some(Last {
        services: Arc::clone(&services),
        diagnostics: last.diagnostics.clone(),
        apps: last.apps,
        health_cached: false,
        render: last.render,
    });
    Some(Generated {
        services: rendered.backends.len(),
        rendered,
        interpreted: services,
        diagnostics: last.diagnostics,
        denied: report.denied,
        plugin_failures: report.failures,
        apps: last.apps,
        timings: Timings {
            parse_us: (t1 - t0).as_micros(),
            interpret_us: (t2 - t1).as_micros(),
            render_us: (t3 - t2).as_micros(),
            changed_only: true,
        },
    })
}
