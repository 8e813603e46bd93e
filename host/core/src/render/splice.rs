//! Re-rendering services of which only the backend section changes (issue
//! 10, item 2). The common change at scale — a task of an app starting or
//! going away — changes the `server` lines of one backend and nothing else,
//! and marathon-lb's order puts every backend section, one per service, at
//! the end of the file. [`LastRender`] keeps the last full render's text,
//! the services' parts and the contexts they were rendered in; a service
//! rendered again in its context whose parts differ from the last ones in
//! the backend section alone replaces that section in the text (the part
//! before the backend sections is kept, the sections are the parts'). The result
//! equals a full render of the services with the change byte for byte: the
//! other services render from the same values in the same contexts, the
//! shared sections (frontends, maps) are built from parts that did not
//! change, and only backend sections, which the supervised-mode frontend
//! options never touch, are swapped for backend sections (both checked at
//! the swap; when the last render is kept, only that its text ends with
//! the services' sections as rendered).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use mlb_model::Service;

use super::assemble::Layout;
use super::cache::Context;
use super::parts::Parts;
use super::{RenderSettings, Rendered, Renderer};

/// The last full render of services, as [`Renderer::rerender`] builds on.
#[derive(Debug)]
pub(super) struct LastRender {
    /// Which render this was (see [`Renderer::last_render`]).
    pub(super) id: u64,
    settings: RenderSettings,
    /// The render without its text (`config` is empty).
    rendered: Rendered,
    /// The text before the backend sections.
    head: String,
    /// The length of the backend sections.
    total: usize,
    kept: Vec<Arc<Parts>>,
    contexts: Vec<Context>,
    /// Index in `kept` by backend name; [`TWICE`] for a name rendered twice.
    position: HashMap<String, usize>,
    /// A buffer for the next text ([`Renderer::recycle`]).
    pub(super) spare: Option<String>,
}

/// A backend name more than one rendered service has.
const TWICE: usize = usize::MAX;

impl LastRender {
    /// Keep `rendered` (with its parts) unless its text does not end with
    /// the services' backend sections exactly (then nothing can be spliced).
    pub(super) fn new(
        id: u64,
        settings: &RenderSettings,
        rendered: &Rendered,
        layout: Layout,
    ) -> Option<Self> {
        if rendered.fatal.is_some() || layout.kept.len() != rendered.backends.len() {
            return None;
        }
        let total: usize = layout.kept.iter().map(|p| p.backend.len()).sum();
        let backends_at = rendered.config.len().checked_sub(total)?;
        let bytes = rendered.config.as_bytes();
        let mut at = backends_at;
        for parts in &layout.kept {
            let end = at + parts.backend.len();
            if bytes[at..end] != *parts.backend.as_bytes() {
                return None;
            }
            at = end;
        }
        let head = rendered.config[..backends_at].to_owned();
        let rendered = Rendered {
            config: String::new(),
            domain_map: rendered.domain_map.clone(),
            app_map: rendered.app_map.clone(),
            diagnostics: rendered.diagnostics.clone(),
            backends: std::sync::Arc::clone(&rendered.backends),
            fatal: None,
        };
        let mut position = HashMap::with_capacity(rendered.backends.len());
        for (i, name) in rendered.backends.iter().enumerate() {
            match position.entry(name.clone()) {
                Entry::Vacant(v) => {
                    v.insert(i);
                }
                Entry::Occupied(mut o) => {
                    o.insert(TWICE);
                }
            }
        }
        Some(Self {
            id,
            settings: settings.clone(),
            rendered,
            head,
            total,
            kept: layout.kept,
            contexts: layout.contexts,
            position,
            spare: None,
        })
    }
}

/// Whether every section `text` opens is a `backend` (the frontend options
/// of supervised mode go into `frontend` and `listen` sections only).
fn only_backends(text: &str) -> bool {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with(char::is_whitespace) && !l.starts_with('#'))
        .all(|l| l.split_whitespace().next() == Some("backend"))
}

/// [`Renderer::rerender`]: `changes` against `last`, which is updated only
/// when every change can be spliced.
pub(super) fn rerender(
    r: &mut Renderer,
    last: &mut LastRender,
    changes: &[(&Service, &Service)],
    settings: &RenderSettings,
) -> Option<Rendered> {
    if last.settings != *settings {
        return None;
    }
    // The new parts by position in `kept` (few: no map, a sorted list).
    let mut fresh: Vec<(usize, Arc<Parts>, Context, &Service, &Service)> = Vec::new();
    for &(old, new) in changes {
        if old.backend != new.backend
            || old.app_id != new.app_id
            || old.service_port != new.service_port
        {
            return None;
        }
        let at = *last.position.get(&new.backend).filter(|&&i| i != TWICE)?;
        let context = last.contexts[at];
        crate::validate::check_service(new).ok()?;
        let parts = r
            .render_service(new, settings, &context.shared_for(new))
            .ok()?;
        // Both sections open only backends, which the frontend options leave
        // alone (checked here, for the two sections swapped, not for every
        // section of every full render).
        let old_parts = &last.kept[at];
        if !parts.same_but_backend(old_parts)
            || !only_backends(&parts.backend)
            || !only_backends(&old_parts.backend)
        {
            return None;
        }
        fresh.push((at, Arc::new(parts), context, old, new));
    }
    fresh.sort_by_key(|f| f.0);
    if fresh.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    let old_len: usize = fresh.iter().map(|f| last.kept[f.0].backend.len()).sum();
    let new_len: usize = fresh.iter().map(|f| f.1.backend.len()).sum();
    let size = last.head.len() + last.total + new_len - old_len;
    for (at, new, context, old, service) in fresh {
        if let Some(cache) = r.cache.as_mut() {
            cache.replace(old, service, context, Arc::clone(&new));
        }
        last.kept[at] = new;
    }
    last.total = size - last.head.len();
    // A recycled buffer that is large enough, else a new one with room for
    // the next changes (so that it can be recycled for them in turn).
    let mut config = match last.spare.take() {
        Some(spare) if spare.capacity() >= size => spare,
        _ => String::with_capacity(size + size / 64),
    };
    config.clear();
    config.push_str(&last.head);
    for parts in &last.kept {
        config.push_str(&parts.backend);
    }
    Some(Rendered {
        config,
        ..last.rendered.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::only_backends;

    #[test]
    fn only_backend_sections_are_spliced() {
        assert!(only_backends("\nbackend a\n  server x 127.0.0.1:1\n"));
        assert!(only_backends(
            "\nbackend a\n# note\nbackend b\n  mode http\n"
        ));
        assert!(!only_backends("\nlisten a\n  bind :1\n"));
        assert!(!only_backends("\nbackend a\nfrontend b\n"));
    }
}
