//! Apps → services: marathon-lb's `get_apps` and the per-service filters of
//! its `config`.

use std::collections::{HashMap, HashSet};

use mlb_model::{
    App, Diagnostic, HealthCheck, InterpretOptions, Server, Service, ServiceHealthCheck,
};

use crate::deployment::merge_deployment_groups;
use crate::health::{emits_check_options, health_check_for, is_http_protocol};
use crate::labels::{ServiceLabels, app_label, parse_service_labels};
use crate::network::{networking_mode, task_ip, task_ports};
use crate::ports::ServicePortAssigner;
use crate::reference::GROUP;
use crate::servers::{calculate_server_id, server_name};

/// Mesos states whose tasks get no traffic (all others, including
/// `TASK_LOST`, `TASK_UNREACHABLE` and a missing state, are kept).
pub const EXCLUDED_TASK_STATES: &[&str] = &[
    "TASK_STAGING",
    "TASK_STARTING",
    "TASK_KILLING",
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_ERROR",
    "TASK_DROPPED",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
    "TASK_UNKNOWN",
];

/// The result of one interpretation.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Services to render (group, enabled and non-empty filters applied).
    pub services: Vec<Service>,
    /// Why apps, services or tasks were left out.
    pub diagnostics: Vec<Diagnostic>,
}

/// One backend before sorting and naming.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Backend {
    host: String,
    port: i64,
    ip: String,
    draining: bool,
}

/// A service port under construction.
#[derive(Debug)]
struct Draft<'a> {
    app_id: String,
    app_groups: &'a [String],
    index: usize,
    service_port: i64,
    labels: ServiceLabels,
    health_check: Option<&'a HealthCheck>,
    mode: Option<String>,
    backends: Vec<Backend>,
}

/// Interpret every app: one service per service port that has at least one
/// usable task, matching `options.groups` and enabled.
pub fn interpret(apps: &[App], options: &InterpretOptions) -> Output {
    let mut diagnostics = Vec::new();
    let processed = merge_deployment_groups(apps, &mut diagnostics);
    let mut assigner = ServicePortAssigner::new(
        options.min_serv_port_ip_per_task,
        options.max_serv_port_ip_per_task,
    );
    let group_labels: Vec<Vec<String>> = processed
        .iter()
        .map(|app| {
            app_label(app, GROUP)
                .map(|g| g.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        })
        .collect();

    let mut drafts: Vec<Draft<'_>> = Vec::new();
    for (app, app_groups) in processed.iter().zip(&group_labels) {
        if options
            .framework_name
            .as_deref()
            .is_some_and(|name| app.id.get(1..) == Some(name))
        {
            continue;
        }
        drafts.extend(app_drafts(
            app,
            app_groups,
            options,
            &mut assigner,
            &mut diagnostics,
        ));
    }

    let services = finish(&drafts, options, &mut diagnostics);
    Output {
        services,
        diagnostics,
    }
}

/// The services of one app, each with its backends.
fn app_drafts<'a>(
    app: &'a App,
    app_groups: &'a [String],
    options: &InterpretOptions,
    assigner: &mut ServicePortAssigner,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Draft<'a>> {
    let service_ports = assigner.service_ports(app);
    // Keyed by the original service port; a later duplicate replaces the
    // earlier one in place (Python dict semantics). `None` = rejected.
    let mut by_port: Vec<(i64, Option<Draft<'a>>)> = Vec::new();
    for (index, port) in service_ports.iter().enumerate() {
        let Some(port) = *port else {
            diagnostics.push(Diagnostic::warning(
                &app.id,
                None,
                format!(
                    "no service port for port index {index} (IP-per-task range exhausted); skipped"
                ),
            ));
            continue;
        };
        let draft = match parse_service_labels(app, index) {
            Ok(labels) => Some(new_draft(app, app_groups, index, port, labels)),
            Err(diag) => {
                diagnostics.push(diag);
                None
            }
        };
        match by_port.iter_mut().find(|(p, _)| *p == port) {
            Some(slot) => slot.1 = draft,
            None => by_port.push((port, draft)),
        }
    }

    let mode = networking_mode(app);
    for task in &app.tasks {
        if task.host.is_empty() {
            diagnostics.push(Diagnostic::warning(
                &app.id,
                None,
                format!("task {} has no host; skipped", task.id),
            ));
            continue;
        }
        if let Some(state) = task.state.as_deref()
            && EXCLUDED_TASK_STATES.contains(&state)
        {
            continue;
        }
        if options.health_check && !app.health_checks.is_empty() {
            let alive = task
                .health_results
                .as_ref()
                .is_some_and(|results| results.iter().any(|a| *a));
            if !alive {
                continue;
            }
        }
        let Some(ip) = task_ip(task, mode) else {
            diagnostics.push(Diagnostic::info(
                &app.id,
                None,
                format!("task {} has no resolvable address; skipped", task.id),
            ));
            continue;
        };
        let ports = task_ports(app, task, mode);
        for (task_port, service_port) in ports.iter().zip(&service_ports) {
            let Some(service_port) = service_port else {
                continue;
            };
            if let Some((_, Some(draft))) = by_port.iter_mut().find(|(p, _)| p == service_port) {
                draft.backends.push(Backend {
                    host: task.host.clone(),
                    port: *task_port,
                    ip: ip.clone(),
                    draining: task.draining,
                });
            }
        }
    }
    by_port
        .into_iter()
        .filter_map(|(_, d)| d)
        .filter(|d| !d.backends.is_empty())
        .collect()
}

fn new_draft<'a>(
    app: &'a App,
    app_groups: &'a [String],
    index: usize,
    port: i64,
    labels: ServiceLabels,
) -> Draft<'a> {
    let mut health_check = health_check_for(app, index as i64);
    let mut mode = health_check
        .filter(|c| c.protocol == "HTTP")
        .map(|_| "http".to_owned());
    if let Some(m) = &labels.mode {
        mode = Some(m.clone());
    }
    if health_check.is_none()
        && let Some(k) = labels.healthcheck_port_index
    {
        health_check = health_check_for(app, k);
        if health_check.is_some_and(|c| is_http_protocol(&c.protocol)) {
            mode = Some("http".to_owned());
        }
    }
    Draft {
        app_id: app.id.clone(),
        app_groups,
        index,
        service_port: labels.port.unwrap_or(port),
        labels,
        health_check,
        mode,
        backends: Vec::new(),
    }
}

fn has_group(wanted: &[String], groups: &[String]) -> bool {
    wanted.iter().any(|g| g == "*") || groups.iter().any(|g| wanted.contains(g))
}

/// Sort backends, resolve health-check ports, filter, and build services.
fn finish(
    drafts: &[Draft<'_>],
    options: &InterpretOptions,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Service> {
    let sorted: Vec<Vec<&Backend>> = drafts
        .iter()
        .map(|d| {
            let mut b: Vec<&Backend> = d.backends.iter().collect();
            b.sort();
            b
        })
        .collect();
    // Services of each app, ordered by (app id, service port) as marathon-lb's
    // health-check port lookup sees them.
    let mut by_app: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, d) in drafts.iter().enumerate() {
        by_app.entry(d.app_id.as_str()).or_default().push(i);
    }
    for members in by_app.values_mut() {
        members.sort_by_key(|&i| drafts[i].service_port);
    }

    let mut services = Vec::new();
    for (i, draft) in drafts.iter().enumerate() {
        let groups: &[String] = match &draft.labels.group {
            Some(g) if !g.is_empty() => g,
            _ => draft.app_groups,
        };
        if !has_group(&options.groups, groups) {
            continue;
        }
        if !draft.labels.enabled.unwrap_or(!options.strict_mode) {
            continue;
        }
        let lookup = |idx: usize| -> Result<i64, String> {
            backend_port(
                draft,
                &sorted[i],
                &by_app[draft.app_id.as_str()],
                &sorted,
                idx,
            )
        };
        match build_service(draft, &sorted[i], groups, lookup) {
            Ok(service) => services.push(service),
            Err(message) => diagnostics.push(Diagnostic::error(
                &draft.app_id,
                Some(&format!(
                    "HAPROXY_{}_BACKEND_HEALTHCHECK_PORT_INDEX",
                    draft.index
                )),
                message,
            )),
        }
    }
    services
}

/// marathon-lb's `get_backend_port`: the port of the `idx`-th backend of the
/// app's `BACKEND_HEALTHCHECK_PORT_INDEX`-th service (or of this service when
/// the index is unset or out of range).
fn backend_port(
    draft: &Draft<'_>,
    own: &[&Backend],
    same_app: &[usize],
    sorted: &[Vec<&Backend>],
    idx: usize,
) -> Result<i64, String> {
    let count = same_app.len() as i64;
    let target: &[&Backend] = match draft.labels.healthcheck_port_index {
        Some(k) if k.abs() <= count => {
            let pos = if k < 0 { count + k } else { k };
            let Some(&service) = same_app.get(pos as usize) else {
                return Err(format!(
                    "port index {k} is out of range: the app has {count} service(s) with tasks"
                ));
            };
            &sorted[service]
        }
        _ => own,
    };
    target.get(idx).map(|b| b.port).ok_or_else(|| {
        format!(
            "the service borrowed by the health-check port index has {} server(s), fewer than this one",
            target.len()
        )
    })
}

fn build_service(
    draft: &Draft<'_>,
    backends: &[&Backend],
    groups: &[String],
    lookup: impl Fn(usize) -> Result<i64, String>,
) -> Result<Service, String> {
    let labels = &draft.labels;
    let hostname = labels.hostname.clone();
    let mode = draft.mode.clone().unwrap_or_else(|| {
        if hostname.as_deref().is_some_and(|h| !h.is_empty()) {
            "http".to_owned()
        } else {
            "tcp".to_owned()
        }
    });
    let health_check = match draft.health_check {
        Some(check) => {
            let backend_port = if emits_check_options(&mode, &check.protocol) {
                Some(lookup(0)?)
            } else {
                None
            };
            Some(ServiceHealthCheck {
                protocol: check.protocol.clone(),
                path: check.path.clone(),
                port_index: check.port_index,
                timeout_seconds: check.timeout_seconds,
                interval_seconds: check.interval_seconds,
                grace_period_seconds: check.grace_period_seconds,
                max_consecutive_failures: check.max_consecutive_failures,
                backend_port,
            })
        }
        None => None,
    };
    let mut taken = HashSet::new();
    let mut servers = Vec::with_capacity(backends.len());
    for (idx, b) in backends.iter().enumerate() {
        let name = server_name(&b.host, &b.ip, b.port);
        let id = calculate_server_id(&name, &mut taken);
        let health_port = match draft.health_check {
            Some(check) if emits_check_options(&mode, &check.protocol) => {
                if labels.healthcheck_port_index.is_some() {
                    Some(lookup(idx)?)
                } else {
                    check.port
                }
            }
            _ => None,
        };
        servers.push(Server {
            host: b.host.clone(),
            ip: b.ip.clone(),
            port: b.port,
            name,
            id,
            draining: b.draining,
            health_port,
        });
    }
    let app_id = draft.app_id.clone();
    let backend = format!(
        "{}_{}",
        app_id.get(1..).unwrap_or("").replace('/', "_"),
        draft.service_port
    );
    Ok(Service {
        port_index: draft.index as u32,
        backend,
        service_port: draft.service_port,
        mode,
        balance: labels
            .balance
            .clone()
            .unwrap_or_else(|| "roundrobin".to_owned()),
        hostname,
        path: labels.path.clone(),
        auth: labels.auth.clone(),
        sticky: labels.sticky,
        redirect_to_https: labels.redirect_to_https,
        use_hsts: labels.use_hsts,
        ssl_cert: labels.ssl_cert.clone(),
        bind_addr: labels.bind_addr.clone().unwrap_or_else(|| "*".to_owned()),
        bind_options: labels.bind_options.clone(),
        backend_weight: labels.weight(),
        proxypath: labels.proxypath.clone(),
        revproxypath: labels.revproxypath.clone(),
        redirpath: labels.redirpath.clone(),
        network_allowed: labels.network_allowed.clone(),
        health_check,
        groups: groups.to_vec(),
        servers,
        templates: labels.templates.clone(),
        app_id,
        ..Service::default()
    })
}
