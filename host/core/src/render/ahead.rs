//! Rendering the later services on a second core while the earlier ones
//! render on this one (issue 12: a full render of 10,000 apps is ~540 M
//! instructions, 92 % of them in rendering services one at a time).
//!
//! A service's parts depend only on the templates, the settings, the
//! service and the shared state left by the services before it
//! ([`Context`], the same key the render cache relies on). The helper
//! renders the second half of the (sorted) services starting from the
//! state the first half is *expected* to leave ([`expected_after`]); the
//! merge then takes a pre-rendered service only where the context it was
//! rendered in equals the real one, and renders any other service again on
//! the merging thread. A wrong guess costs time, never bytes: the output
//! equals a sequential render. Services that fail their checks or a
//! template are left to the merging thread too, so their diagnostics come
//! out in order.

use std::sync::Arc;

use mlb_model::Service;

use super::cache::Context;
use super::parts::{Parts, Shared};
use super::{RenderSettings, Renderer};
use crate::templates::Templates;

/// Fewer services than this render on one thread (a thread costs more).
pub(super) const MIN_SERVICES: usize = 256;

/// Where the helper starts, if a helper is worth starting for `services`
/// (at least `from` of them).
pub(super) fn split_point(services: usize, from: usize) -> Option<usize> {
    (services >= from.max(2)).then_some(services / 2)
}

/// The shared state `before` are expected to leave when they all render.
pub(super) fn expected_after(before: &[&Service], settings: &RenderSettings) -> Shared {
    let mut shared = Shared::default();
    for s in before.iter().filter(|s| s.mode == "http") {
        shared.appids.insert(s.app_id.clone());
    }
    if settings.haproxy_map && before.iter().any(|s| s.mode == "http") {
        shared.map_appid_done = true;
        let vhost = before
            .iter()
            .any(|s| s.mode == "http" && s.hostname.as_deref().is_some_and(|h| !h.is_empty()));
        shared.map_http_done = vhost && settings.bind_http_https;
        shared.map_https_done = shared.map_http_done;
    }
    shared
}

/// One pre-rendered service: the context it was rendered in, and its parts
/// (`None`: left to the merge, which reports why).
pub(super) type Rendered = Option<(Context, Arc<Parts>)>;

/// Render `services` in order from `shared`, with a renderer of its own
/// (the same templates, a fresh template cache).
pub(super) fn render(
    templates: Templates,
    services: &[&Service],
    settings: &RenderSettings,
    mut shared: Shared,
) -> Vec<Rendered> {
    let mut renderer = Renderer::new(templates);
    services
        .iter()
        .map(|service| {
            crate::validate::check_service(service).ok()?;
            let context = Context::of(service, &shared);
            let parts = renderer.render_service(service, settings, &shared).ok()?;
            shared.commit(&parts);
            Some((context, Arc::new(parts)))
        })
        .collect()
}
