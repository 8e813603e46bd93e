//! Merging the services' parts into the final file, in marathon-lb's order:
//! HEAD, userlists, :80 frontend, :9091 frontend, :443 frontend (or the
//! SNI-grouped variant), service frontends, backends.

use std::collections::{BTreeMap, HashSet};

use std::borrow::Cow;
use std::sync::Arc;

use crate::engine::Vars;
use crate::templates::TemplateName;
use mlb_model::{Diagnostic, Service};

use super::parts::{GroupedVhost, Parts, Shared};
use super::{RenderSettings, Rendered, Renderer, TemplateFailure, sanitize};
use super::{ahead, cache};

/// Render a global template. A failure there cannot be blamed on one app
/// and would leave a config that parses but routes wrongly: it is reported
/// and makes the whole generation fatal (the running config stays).
fn global(
    r: &mut Renderer,
    name: TemplateName,
    vars: Vars<'_>,
    diagnostics: &mut Vec<Diagnostic>,
    fatal: &mut Option<String>,
) -> String {
    let text = r.templates.get(name).to_owned();
    r.engine.render(&text, &vars).unwrap_or_else(|e| {
        let message = format!("global template HAPROXY_{name} cannot be rendered: {e}");
        diagnostics.push(Diagnostic::error(
            "",
            Some(&format!("HAPROXY_{name}")),
            message.clone(),
        ));
        fatal.get_or_insert(message);
        String::new()
    })
}

/// Whether a template failure is in the template text itself (so it fails
/// for every service), not in one service's values. A variable that some
/// service's plugin provides (`plugin_vars`) is a per-service matter.
fn is_text_error(e: &crate::engine::EngineError, plugin_vars: &HashSet<&str>) -> bool {
    use crate::engine::EngineError as E;
    match e {
        E::Syntax(_) | E::UnknownFilter { .. } => true,
        E::UnknownVariable { name, .. } => !plugin_vars.contains(name.as_str()),
        E::ShadowedVariable(_) | E::Engine(_) | E::Structure(_) => false,
    }
}

fn failure_diagnostic(service: &Service, f: TemplateFailure) -> Diagnostic {
    let label = if f.from_label {
        format!("HAPROXY_{}_{}", service.port_index, f.template)
    } else {
        format!("HAPROXY_{}", f.template)
    };
    Diagnostic::error(
        &service.app_id,
        Some(&label),
        format!(
            "template for service port {} cannot be rendered: {}; service left out",
            service.service_port, f.error
        ),
    )
}

fn by_weight_desc<T>(list: &mut [(i64, T)]) {
    list.sort_by_key(|entry| std::cmp::Reverse(entry.0));
}

/// The rendered services' parts and the contexts they were rendered in,
/// in output order (one per name of [`Rendered::backends`]).
pub(super) struct Layout {
    pub(super) kept: Vec<Arc<Parts>>,
    pub(super) contexts: Vec<cache::Context>,
}

pub(super) fn render(
    r: &mut Renderer,
    services: &[Service],
    settings: &RenderSettings,
) -> (Rendered, Layout) {
    let mut diagnostics = Vec::new();
    let mut fatal = None;
    // A render without services (the global part alone) leaves the cache be.
    let caching = r.caching() && !services.is_empty();
    if let Some(c) = r.cache.as_mut().filter(|_| caching) {
        c.begin(settings);
    }
    let plugin_vars: HashSet<&str> = services
        .iter()
        .flat_map(|s| s.vars.iter().map(|(n, _)| n.as_str()))
        .collect();
    let mut order: Vec<&Service> = services.iter().collect();
    order.sort_by(|a, b| {
        a.app_id
            .cmp(&b.app_id)
            .then(a.service_port.cmp(&b.service_port))
    });
    let ssl_certs: Vec<&str> = settings
        .ssl_certs
        .as_deref()
        .filter(|c| !c.is_empty())
        .unwrap_or("/etc/ssl/cert.pem")
        .split(',')
        .collect();
    let crt_list = |certs: &mut dyn Iterator<Item = &str>| {
        certs
            .map(|c| format!("crt {c}"))
            .collect::<Vec<_>>()
            .join(" ")
    };

    let mut http_frontends = r.templates.get(TemplateName::HTTP_FRONTEND_HEAD).to_owned();
    let mut https_frontends = if settings.group_https_by_vhost {
        r.templates
            .get(TemplateName::HTTPS_GROUPED_FRONTEND_HEAD)
            .to_owned()
    } else {
        let certs = crt_list(&mut ssl_certs.iter().copied());
        global(
            r,
            TemplateName::HTTPS_FRONTEND_HEAD,
            vec![("sslCerts", Cow::from(certs))],
            &mut diagnostics,
            &mut fatal,
        )
    };
    // (weight, index in `kept`) of the services with vhost routing.
    let mut http_list: Vec<(i64, usize)> = Vec::new();
    let mut grouped: BTreeMap<String, GroupedVhost> = BTreeMap::new();
    let mut shared = Shared::default();
    let mut names = Vec::with_capacity(order.len());

    // The later services render on a second core meanwhile (not with
    // plugin filters, which may not be pure, nor on top of a warm cache).
    let cache_cold = r.cache.as_ref().is_none_or(|c| c.is_empty());
    let split = ahead::split_point(order.len(), r.ahead_from).filter(|_| !r.filters && cache_cold);
    let templates = split.map(|_| r.templates.clone());
    // The parts of every rendered service, in order (shared with the cache).
    let (kept, contexts) = std::thread::scope(|scope| {
        let helper = split.zip(templates).map(|(mid, templates)| {
            let expected = ahead::expected_after(&order[..mid], settings);
            let later = &order[mid..];
            (
                mid,
                scope.spawn(move || ahead::render(templates, later, settings, expected)),
            )
        });
        let (mid, mut helper) = match helper {
            Some((mid, handle)) => (mid, Some(handle)),
            None => (usize::MAX, None),
        };
        let mut ahead: Vec<ahead::Rendered> = Vec::new();
        let mut kept: Vec<Arc<Parts>> = Vec::with_capacity(order.len());
        let mut contexts: Vec<cache::Context> = Vec::with_capacity(order.len());
        for (i, service) in order.iter().copied().enumerate() {
            if i == mid {
                // A panicking helper only costs time: everything renders here.
                ahead = helper
                    .take()
                    .and_then(|h| h.join().ok())
                    .unwrap_or_default();
            }
            let context = cache::Context::of(service, &shared);
            // Only services that passed the checks and rendered are cached.
            let hit = match &mut r.cache {
                Some(c) if caching => c.get(service, context),
                _ => None,
            };
            let pre = i
                .checked_sub(mid)
                .and_then(|j| ahead.get_mut(j))
                .and_then(Option::take)
                .filter(|(rendered_in, _)| *rendered_in == context)
                .map(|(_, parts)| parts);
            let parts = match (hit, pre) {
                (Some(parts), _) => parts,
                (None, Some(parts)) => {
                    if let Some(c) = r.cache.as_mut().filter(|_| caching) {
                        c.put(service, context, Arc::clone(&parts));
                    }
                    parts
                }
                (None, None) => {
                    if let Err(fault) = crate::validate::check_service(service) {
                        diagnostics.push(Diagnostic::error(
                            &service.app_id.escape_debug().to_string(),
                            Some(&fault.source(service.port_index)),
                            format!(
                                "service port {}: {fault}; fix the value (the service is left out meanwhile)",
                                service.service_port
                            ),
                        ));
                        continue;
                    }
                    match r.render_service(service, settings, &shared) {
                        Ok(parts) => {
                            let parts = Arc::new(parts);
                            if let Some(c) = r.cache.as_mut().filter(|_| caching) {
                                c.put(service, context, Arc::clone(&parts));
                            }
                            parts
                        }
                        Err(f) => {
                            if !f.from_label && is_text_error(&f.error, &plugin_vars) {
                                fatal.get_or_insert(format!(
                                    "global template HAPROXY_{} cannot be rendered: {}",
                                    f.template, f.error
                                ));
                            }
                            diagnostics.push(failure_diagnostic(service, f));
                            continue;
                        }
                    }
                }
            };
            shared.commit(&parts);
            names.push(service.backend.clone());
            if let Some(v) = &parts.vhost {
                http_list.push((v.weight, kept.len()));
                if settings.group_https_by_vhost {
                    for (vhost, g) in &v.grouped {
                        let entry = grouped.entry(vhost.clone()).or_default();
                        entry.chunks.extend(g.chunks.iter().cloned());
                        entry.certs.extend(g.certs.iter().cloned());
                        entry.bind_options.extend(g.bind_options.iter().cloned());
                    }
                }
            }
            kept.push(parts);
            contexts.push(context);
        }
        (kept, contexts)
    });
    let vhost = |i: usize| {
        kept[i]
            .vhost
            .as_ref()
            .expect("listed services have vhost parts")
    };

    // Stable: equal weights keep the services' order.
    by_weight_desc(&mut http_list);
    for (_, i) in &http_list {
        http_frontends.push_str(&vhost(*i).http);
    }
    if settings.group_https_by_vhost {
        for vhost in grouped.keys() {
            https_frontends.push_str(&global(
                r,
                TemplateName::HTTPS_GROUPED_VHOST_FRONTEND_ACL,
                vec![
                    ("backend", Cow::from(sanitize(vhost))),
                    ("host", Cow::from(vhost.as_str())),
                ],
                &mut diagnostics,
                &mut fatal,
            ));
        }
    } else {
        for (_, i) in &http_list {
            https_frontends.push_str(&vhost(*i).https);
        }
    }

    // The file is written once, into a buffer of its final size (give or
    // take the grouped :443 sections), straight from the services' parts.
    let head = r.templates.get(TemplateName::HEAD);
    let appid_head = r.templates.get(TemplateName::HTTP_FRONTEND_APPID_HEAD);
    let size = head.len()
        + http_frontends.len()
        + appid_head.len()
        + https_frontends.len()
        + kept
            .iter()
            .map(|p| p.userlist.len() + p.appid_acl.len() + p.frontend.len() + p.backend.len())
            .sum::<usize>();
    let mut config = String::with_capacity(size);
    config.push_str(head);
    kept.iter().for_each(|p| config.push_str(&p.userlist));
    if settings.bind_http_https {
        config.push_str(&http_frontends);
    }
    config.push_str(appid_head);
    kept.iter().for_each(|p| config.push_str(&p.appid_acl));
    if settings.bind_http_https {
        config.push_str(&https_frontends);
        if settings.group_https_by_vhost {
            for (vhost, g) in &mut grouped {
                let name = sanitize(vhost);
                config.push_str(&global(
                    r,
                    TemplateName::HTTPS_GROUPED_VHOST_BACKEND_HEAD,
                    vec![("name", Cow::from(name.as_str()))],
                    &mut diagnostics,
                    &mut fatal,
                ));
                let certs = if g.certs.is_empty() {
                    let mut seen = Vec::new();
                    for c in &ssl_certs {
                        if !seen.contains(c) {
                            seen.push(*c);
                        }
                    }
                    crt_list(&mut seen.into_iter())
                } else {
                    crt_list(&mut g.certs.iter().map(String::as_str))
                };
                let bind_opts = g
                    .bind_options
                    .iter()
                    .map(|o| format!(" {o}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                let mut frontend = global(
                    r,
                    TemplateName::HTTPS_GROUPED_VHOST_FRONTEND_HEAD,
                    vec![
                        ("name", Cow::from(name.as_str())),
                        ("sslCerts", Cow::from(certs)),
                        ("bindOpts", Cow::from(bind_opts)),
                    ],
                    &mut diagnostics,
                    &mut fatal,
                );
                by_weight_desc(&mut g.chunks);
                for (_, chunk) in &g.chunks {
                    frontend.push_str(chunk);
                }
                config.push_str(&frontend);
            }
        }
    }
    kept.iter().for_each(|p| config.push_str(&p.frontend));
    kept.iter().for_each(|p| config.push_str(&p.backend));

    if let Some(c) = r.cache.as_mut().filter(|_| caching) {
        c.finish();
    }
    let (domain_map, app_map) = if settings.haproxy_map {
        (shared.domain_map.text(), shared.app_map.text())
    } else {
        (String::new(), String::new())
    };
    let rendered = Rendered {
        config,
        domain_map,
        app_map,
        diagnostics,
        backends: names.into(),
        fatal,
    };
    (rendered, Layout { kept, contexts })
}
