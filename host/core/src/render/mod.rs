//! Services → HAProxy config text and map files (marathon-lb's `config`).
//!
//! Services are rendered one at a time into a [`parts::Parts`] value and only
//! then merged into the shared sections, so a service whose template fails
//! (an unknown `{placeholder}` in a label, say) is left out with a diagnostic
//! and leaves no trace in the frontends, maps or "first map user" state.
//!
//! # Layout
//! - `service`: one service's frontend, backend and app-id pieces.
//! - `vhost_plan`: which ACL template goes where for one service's vhosts
//!   (`generateHttpVhostAcl`'s decisions as data, no template text).
//! - `vhost`: renders that plan into the :80/:443 ACL blocks of one service.
//! - `parts`: the pieces of one service and the shared state they update.
//! - `assemble`: merging parts into the final file, in marathon-lb's order.
//! - `ahead`: the later services rendered on a second core meanwhile, taken
//!   where the shared state they were rendered in turns out right.
//! - `http_options`: options added to every HTTP-mode frontend and listen
//!   section (supervised mode's `idle-close-on-response`).
//! - `cache`: one service's parts reused across renders while it and what
//!   it reads are unchanged ([`Renderer::enable_cache`]).
//! - `splice`: services of which only the backend section changed, put
//!   into the last full render's text ([`Renderer::rerender`]).

mod ahead;
mod assemble;
mod cache;
mod http_options;
mod parts;
mod service;
mod splice;
mod vhost;
mod vhost_plan;

use mlb_model::{Diagnostic, Service};

use crate::engine::{Engine, EngineError};
use crate::templates::{TemplateName, Templates};

pub use parts::MapFile;

/// Settings from the command line that shape the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderSettings {
    /// Emit the :80 and :443 frontends (false with `--dont-bind-http-https`).
    pub bind_http_https: bool,
    /// `--ssl-certs` (comma list; empty or unset means `/etc/ssl/cert.pem`).
    pub ssl_certs: Option<String>,
    /// `--haproxy-map`: route plain vhosts and app ids through map files.
    pub haproxy_map: bool,
    /// `--group-https-by-vhost`: SNI-split :443.
    pub group_https_by_vhost: bool,
    /// Directory of the config file (map files live there).
    pub haproxy_dir: String,
    /// `option` lines added to every HTTP-mode `frontend` and `listen`
    /// section (see [`add_http_frontend_options`]); empty for marathon-lb's
    /// output.
    pub http_frontend_options: Vec<String>,
}

impl Default for RenderSettings {
    fn default() -> Self {
        Self {
            bind_http_https: true,
            ssl_certs: None,
            haproxy_map: false,
            group_https_by_vhost: false,
            haproxy_dir: "/etc/haproxy".to_owned(),
            http_frontend_options: Vec::new(),
        }
    }
}

/// The generated files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    /// `haproxy.cfg`.
    pub config: String,
    /// `domain2backend.map` (empty without `--haproxy-map`).
    pub domain_map: String,
    /// `app2backend.map` (empty without `--haproxy-map`).
    pub app_map: String,
    /// Services left out while rendering, and why.
    pub diagnostics: Vec<Diagnostic>,
    /// Backend names of the rendered services, in output order (shared:
    /// a spliced render reuses the list of the render it builds on).
    pub backends: std::sync::Arc<[String]>,
    /// A global template failed (its text is broken, or a filter failed
    /// where no single service can be left out instead): this config must
    /// not be used.
    pub fatal: Option<String>,
}

/// A template that failed for one service.
#[derive(Debug)]
pub(crate) struct TemplateFailure {
    /// The template, or the label that overrode it.
    pub(crate) template: TemplateName,
    /// Whether the text came from the service's own label.
    pub(crate) from_label: bool,
    pub(crate) error: EngineError,
}

/// Renders services with a template set; compiled templates are cached
/// across calls.
#[derive(Debug)]
pub struct Renderer {
    templates: Templates,
    engine: Engine,
    /// Parts of earlier renders (`None`: not caching).
    cache: Option<cache::PartsCache>,
    /// A plugin filter is registered (its output may not be pure).
    filters: bool,
    /// Renders of at least this many services use a second thread.
    ahead_from: usize,
    /// Full renders of services so far, while caching.
    renders: u64,
    /// The last of them, to splice changed backends into.
    last: Option<splice::LastRender>,
}

impl Renderer {
    /// A renderer for `templates`.
    pub fn new(templates: Templates) -> Self {
        Self {
            templates,
            engine: Engine::new(),
            cache: None,
            filters: false,
            ahead_from: ahead::MIN_SERVICES,
            renders: 0,
            last: None,
        }
    }

    /// Reuse each service's rendered text from earlier renders while the
    /// service, the settings and what it reads of the services before it
    /// are unchanged (the output stays byte-identical). Not done once a
    /// plugin filter is registered.
    pub fn enable_cache(&mut self) {
        self.cache.get_or_insert_with(Default::default);
    }

    /// Services reused and rendered by the last render, when caching.
    pub fn cache_stats(&self) -> Option<(usize, usize)> {
        let cache = self.cache.as_ref().filter(|_| !self.filters)?;
        Some((cache.hits, cache.misses))
    }

    fn caching(&self) -> bool {
        self.cache.is_some() && !self.filters
    }

    /// Make a plugin filter available to every template (`{name|filter}`).
    pub fn add_filter(
        &mut self,
        name: &str,
        provider: std::sync::Arc<dyn crate::engine::TemplateFilter>,
    ) {
        self.filters = true;
        self.engine.add_filter(name, provider);
    }

    /// The global templates in use.
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// Render `services` (in any order: they are sorted by app id and port).
    pub fn render(&mut self, services: &[Service], settings: &RenderSettings) -> Rendered {
        let (rendered, layout) = assemble::render(self, services, settings);
        let rendered = self.add_http_options(rendered, settings);
        // A render of the global part alone (no service) is not one to
        // build on, nor does it replace the one kept.
        if self.caching() && !services.is_empty() {
            self.renders += 1;
            self.last = splice::LastRender::new(self.renders, settings, &rendered, layout);
        }
        rendered
    }

    /// Which full render [`rerender`](Self::rerender) builds on (`None`:
    /// none can be, e.g. not caching); every full render of services
    /// changes it.
    pub fn last_render(&self) -> Option<u64> {
        self.last.as_ref().map(|l| l.id)
    }

    /// The last full render (see [`last_render`](Self::last_render)) with
    /// `changes` — pairs of a service it rendered and the same service
    /// (backend, app id, service port) changed — as a full render of its
    /// services with those replaced would give it, byte for byte; that
    /// result becomes the one built on next. `None` (nothing changes) when
    /// a changed service adds anything but its backend section
    /// differently (a frontend, an ACL, a map entry), fails to render, or
    /// when the settings are not the last render's: render fully instead.
    pub fn rerender(
        &mut self,
        changes: &[(&Service, &Service)],
        settings: &RenderSettings,
    ) -> Option<Rendered> {
        if !self.caching() {
            return None;
        }
        let mut last = self.last.take()?;
        let rendered = splice::rerender(self, &mut last, changes, settings);
        self.last = Some(last);
        rendered
    }

    /// Hand back the text of an older render that is no longer needed: the
    /// next [`rerender`](Self::rerender) builds its text in that buffer
    /// instead of a new one (at 10,000 services a new 8 MB buffer costs
    /// ~2,000 page faults). Kept only while a render can be built on.
    pub fn recycle(&mut self, text: String) {
        if let Some(last) = self.last.as_mut() {
            last.spare = Some(text);
        }
    }

    /// Supervised mode's options added to every HTTP-mode frontend.
    fn add_http_options(&self, mut rendered: Rendered, settings: &RenderSettings) -> Rendered {
        if !settings.http_frontend_options.is_empty() {
            let (config, added) =
                http_options::add(&rendered.config, &settings.http_frontend_options);
            rendered.config = config;
            // A global, constant diagnostic: logged once, when it first appears.
            if added > 0 && custom_head(&self.templates) {
                rendered.diagnostics.push(Diagnostic::info(
                    "",
                    Some("HAPROXY_HEAD"),
                    format!(
                        "custom HAPROXY_HEAD: supervised mode adds `option {}` to every HTTP-mode \
                         frontend and listen section that does not set it (including those of \
                         the custom HEAD and of template overrides); without it keep-alive \
                         clients see failed requests on reloads",
                        settings.http_frontend_options.join("`, `option ")
                    ),
                ));
            }
        }
        rendered
    }
}

/// `config` with `  option <name>` added to every HTTP-mode `frontend` and
/// `listen` section that does not set (or negate, or inherit) the option —
/// after its `mode http` line, or after its header when it inherits HTTP
/// mode from `defaults` — whatever template produced the section. Options
/// such as `idle-close-on-response` are frontend options that HAProxy
/// accepts only in HTTP mode: put in `defaults`, they make HAProxy warn for
/// every TCP-mode frontend on every load ("'option idle-close-on-response'
/// ignored for frontend 'x' as it requires HTTP mode") and for every backend
/// that sets it itself.
pub fn add_http_frontend_options(config: &str, options: &[String]) -> String {
    http_options::add(config, options).0
}

/// Whether the HEAD in use is not the built-in one (its `option` lines,
/// which `HAPROXY_GLOBAL_DEFAULT_OPTIONS` changes, aside).
fn custom_head(templates: &Templates) -> bool {
    let without_options = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.trim_start().starts_with("option"))
            .map(str::to_owned)
            .collect()
    };
    let built_in = Templates::default_text(TemplateName::HEAD.as_str()).unwrap_or_default();
    without_options(templates.get(TemplateName::HEAD)) != without_options(&built_in)
}

/// Render with a one-off renderer.
pub fn render(services: &[Service], settings: &RenderSettings, templates: Templates) -> Rendered {
    Renderer::new(templates).render(services, settings)
}

pub(crate) use mlb_model::sanitize;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod cache_tests;
