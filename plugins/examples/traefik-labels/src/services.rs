//! Building one service per Traefik-enabled app (pure functions over the WIT
//! records; no host calls).

use crate::mlb::plugins::types::{App, Diagnostic, Server, Service, Severity, Task};
use crate::rule::{Rule, parse_rule};
use std::collections::{HashMap, HashSet};

/// Labels read by this plugin.
pub const ENABLE: &str = "traefik.enable";
pub const RULE: &str = "traefik.frontend.rule";
pub const PORT_INDEX: &str = "traefik.portIndex";
pub const PORT: &str = "traefik.port";
pub const BACKEND: &str = "traefik.backend";
pub const LB_METHOD: &str = "traefik.backend.loadbalancer.method";

/// The plugin's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `groups` of every service built (config key `group`, repeatable).
    pub groups: Vec<String>,
}

/// Read the plugin configuration: `group=NAME` (repeatable; default
/// `external`). Any other key is an error.
pub fn parse_config(config: &[(String, String)]) -> Result<Settings, String> {
    let mut groups: Vec<String> = Vec::new();
    for (key, value) in config {
        match key.as_str() {
            "group" => {
                let group = value.trim();
                if group.is_empty() || group.chars().any(|c| c.is_control() || c == ',') {
                    return Err(format!(
                        "config group={value:?}: a group name must be non-empty, without commas or control characters"
                    ));
                }
                if !groups.iter().any(|g| g == group) {
                    groups.push(group.to_string());
                }
            }
            other => return Err(format!("unknown config key `{other}` (known: group)")),
        }
    }
    if groups.is_empty() {
        groups.push("external".to_string());
    }
    Ok(Settings { groups })
}

/// Services and diagnostics of one batch.
#[derive(Debug, Default)]
pub struct Output {
    pub services: Vec<Service>,
    pub diagnostics: Vec<Diagnostic>,
}

/// The input `services` (untouched, in order) followed by one Traefik
/// service per enabled app that passes validation.
pub fn interpret(apps: &[App], services: Vec<Service>, settings: &Settings) -> Output {
    let mut out = Output {
        services,
        diagnostics: Vec::new(),
    };
    // Lookups by (app id, service port) and by backend name, so a batch of
    // many apps stays linear.
    let mut taken_ports: HashSet<(String, i64)> = out
        .services
        .iter()
        .map(|s| (s.app_id.clone(), s.service_port))
        .collect();
    let mut backends: HashMap<String, String> = HashMap::new();
    for s in &out.services {
        backends
            .entry(s.backend.clone())
            .or_insert_with(|| s.app_id.clone());
    }
    for app in apps {
        let service = match traefik_service(app, settings, &mut out.diagnostics) {
            Ok(Some(service)) => service,
            Ok(None) => continue,
            Err((label, message)) => {
                out.diagnostics
                    .push(diagnostic(Severity::Error, app, label, message));
                continue;
            }
        };
        if taken_ports.contains(&(app.id.clone(), service.service_port)) {
            out.diagnostics.push(diagnostic(
                Severity::Warning,
                app,
                None,
                format!(
                    "service port {} of this app is already served by a previous plugin; traefik service left out",
                    service.service_port
                ),
            ));
            continue;
        }
        if let Some(other) = backends.get(&service.backend) {
            out.diagnostics.push(diagnostic(
                Severity::Error,
                app,
                label_if(app, BACKEND),
                format!(
                    "backend name {} is already used by app {other}; traefik service left out",
                    service.backend
                ),
            ));
            continue;
        }
        backends.insert(service.backend.clone(), app.id.clone());
        taken_ports.insert((app.id.clone(), service.service_port));
        out.services.push(service);
    }
    out
}

/// The value of label `name` of `app`.
pub fn label<'a>(app: &'a App, name: &str) -> Option<&'a str> {
    app.labels
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn label_if(app: &App, name: &str) -> Option<String> {
    label(app, name).map(|_| name.to_string())
}

fn diagnostic(severity: Severity, app: &App, label: Option<String>, message: String) -> Diagnostic {
    Diagnostic {
        severity,
        app_id: app.id.clone(),
        label,
        message,
    }
}

/// A validation failure: the label at fault and the message.
type Reject = (Option<String>, String);

fn reject(label: &str, message: String) -> Reject {
    (Some(label.to_string()), message)
}

/// Whether `app` asks for a Traefik service: `traefik.enable=true`, or a
/// `traefik.frontend.rule` without `traefik.enable=false`.
pub fn enabled(app: &App) -> Result<bool, Reject> {
    match label(app, ENABLE).map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(reject(
            ENABLE,
            format!("{ENABLE}={v:?} is neither true nor false"),
        )),
        None => Ok(label(app, RULE).is_some()),
    }
}

/// The Traefik service of one app: `Ok(None)` when the app does not ask for
/// one or no task remains (the latter with an info diagnostic in `diags`).
pub fn traefik_service(
    app: &App,
    settings: &Settings,
    diags: &mut Vec<Diagnostic>,
) -> Result<Option<Service>, Reject> {
    if !enabled(app)? {
        return Ok(None);
    }
    for (name, value) in &app.labels {
        if name.starts_with("traefik.") && value.chars().any(char::is_control) {
            return Err((
                Some(name.clone()),
                format!("label {name} contains control characters"),
            ));
        }
    }
    let rule = match label(app, RULE) {
        Some(text) => parse_rule(text).map_err(|e| reject(RULE, format!("{RULE}: {e}")))?,
        None => Rule::default(),
    };
    let port_index = match label(app, PORT_INDEX) {
        Some(v) => v.trim().parse::<u32>().map_err(|_| {
            reject(
                PORT_INDEX,
                format!("{PORT_INDEX}={v:?} is not a non-negative integer"),
            )
        })?,
        None => 0,
    };
    let idx = port_index as usize;
    // Marathon's `portDefinitions` when present, else the legacy `ports`.
    let service_ports: Vec<i64> = match &app.port_definitions {
        Some(defs) => defs.iter().flatten().copied().collect(),
        None => app.ports.clone(),
    };
    let Some(&service_port) = service_ports.get(idx) else {
        return Err(reject(
            PORT_INDEX,
            format!(
                "the app has no service port at index {idx} (it has {})",
                service_ports.len()
            ),
        ));
    };
    if !valid_port(service_port) {
        return Err(reject(
            PORT_INDEX,
            format!("service port {service_port} at index {idx} is outside 1..65535"),
        ));
    }
    let fixed_port = match label(app, PORT) {
        Some(v) => Some(parse_port(v).map_err(|e| reject(PORT, format!("{PORT}={v:?} {e}")))?),
        None => None,
    };
    let backend = match label(app, BACKEND) {
        Some(v) => {
            let v = v.trim();
            if v.is_empty() || !v.chars().all(is_backend_char) {
                return Err(reject(
                    BACKEND,
                    format!(
                        "{BACKEND}={v:?} must be non-empty and made of A-Z, a-z, 0-9, '_', '.', ':', '-'"
                    ),
                ));
            }
            v.to_string()
        }
        None => default_backend(&app.id, service_port),
    };
    let balance = match label(app, LB_METHOD) {
        Some(v) => match balance(v) {
            Some(b) => b,
            None => {
                diags.push(diagnostic(
                    Severity::Warning,
                    app,
                    Some(LB_METHOD.to_string()),
                    format!("{LB_METHOD}={v:?} is not wrr, drr or leastconn; using roundrobin"),
                ));
                "roundrobin"
            }
        },
        None => "roundrobin",
    };
    let servers = servers(&app.tasks, idx, fixed_port);
    if servers.is_empty() {
        diags.push(diagnostic(
            Severity::Info,
            app,
            None,
            format!("no running task with a port for service port {service_port}; traefik service left out"),
        ));
        return Ok(None);
    }
    Ok(Some(Service {
        app_id: app.id.clone(),
        port_index,
        backend,
        service_port,
        mode: "http".to_string(),
        balance: balance.to_string(),
        hostname: (!rule.hosts.is_empty()).then(|| rule.hosts.join(",")),
        path: rule.path,
        auth: None,
        sticky: false,
        redirect_to_https: false,
        use_hsts: false,
        ssl_cert: None,
        bind_addr: "*".to_string(),
        bind_options: None,
        backend_weight: 0,
        proxypath: None,
        revproxypath: None,
        redirpath: None,
        network_allowed: None,
        health_check: None,
        groups: settings.groups.clone(),
        servers,
        templates: Vec::new(),
        vars: Vec::new(),
        frontend_snippets: Vec::new(),
        backend_snippets: Vec::new(),
    }))
}

fn valid_port(port: i64) -> bool {
    (1..=65535).contains(&port)
}

/// A port label value: an integer in 1..65535.
pub fn parse_port(text: &str) -> Result<i64, String> {
    let port: i64 = text
        .trim()
        .parse()
        .map_err(|_| "is not an integer".to_string())?;
    if valid_port(port) {
        Ok(port)
    } else {
        Err("is outside 1..65535".to_string())
    }
}

fn is_backend_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

/// Replace every char outside `[A-Za-z0-9-]` by `_`.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `traefik_<app id without its leading '/', sanitized>_<service port>`.
pub fn default_backend(app_id: &str, service_port: i64) -> String {
    let id = app_id.strip_prefix('/').unwrap_or(app_id);
    format!("traefik_{}_{service_port}", sanitize(id))
}

/// HAProxy `balance` for a `traefik.backend.loadbalancer.method`.
pub fn balance(method: &str) -> Option<&'static str> {
    match method.trim().to_ascii_lowercase().as_str() {
        "wrr" | "drr" => Some("roundrobin"),
        "leastconn" => Some("leastconn"),
        _ => None,
    }
}

/// One server per running task (state none or `TASK_RUNNING`) that has a
/// port: `fixed_port`, else the task's port at `idx`. Sorted by (ip, port),
/// duplicates dropped, ids 1..n.
pub fn servers(tasks: &[Task], idx: usize, fixed_port: Option<i64>) -> Vec<Server> {
    let mut found: Vec<(String, i64, &Task)> = tasks
        .iter()
        .filter(|t| t.state.as_deref().is_none_or(|s| s == "TASK_RUNNING"))
        .filter_map(|t| {
            let port = fixed_port.or_else(|| t.ports.get(idx).copied())?;
            if !valid_port(port) {
                return None;
            }
            let ip = t.host_ip.clone().unwrap_or_else(|| t.host.clone());
            if ip.is_empty() {
                return None;
            }
            Some((ip, port, t))
        })
        .collect();
    found.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    found.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    found
        .into_iter()
        .zip(1u32..)
        .map(|((ip, port, task), id)| Server {
            host: task.host.clone(),
            name: sanitize(&format!("{ip}_{port}")),
            ip,
            port,
            id,
            draining: task.draining,
            health_port: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(host: &str, ip: Option<&str>, state: Option<&str>, ports: &[i64]) -> Task {
        Task {
            id: format!("task-{host}"),
            host: host.to_string(),
            host_ip: ip.map(str::to_string),
            state: state.map(str::to_string),
            ip_addresses: Vec::new(),
            ports: ports.to_vec(),
            health_results: None,
            draining: false,
        }
    }

    fn app(id: &str, labels: &[(&str, &str)], ports: &[i64], tasks: Vec<Task>) -> App {
        App {
            id: id.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            instances: Some(tasks.len() as i64),
            ports: ports.to_vec(),
            port_definitions: None,
            port_mappings: Vec::new(),
            docker_network: None,
            network_modes: Vec::new(),
            has_ip_address: false,
            discovery_ports: Vec::new(),
            health_checks: Vec::new(),
            last_scaling_at: None,
            tasks,
        }
    }

    fn web(labels: &[(&str, &str)]) -> App {
        app(
            "/shop/web",
            labels,
            &[10000, 10001],
            vec![
                task(
                    "agent-2",
                    Some("10.0.0.2"),
                    Some("TASK_RUNNING"),
                    &[31000, 31001],
                ),
                task("agent-1", Some("10.0.0.1"), None, &[31002, 31003]),
                task("agent-3", None, Some("TASK_STAGING"), &[31004, 31005]),
            ],
        )
    }

    fn settings() -> Settings {
        parse_config(&[]).unwrap()
    }

    fn run(apps: &[App], services: Vec<Service>) -> Output {
        interpret(apps, services, &settings())
    }

    #[test]
    fn config_defaults_and_errors() {
        assert_eq!(settings().groups, ["external"]);
        let cfg = |pairs: &[(&str, &str)]| {
            parse_config(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            cfg(&[("group", "internal"), ("group", "edge")])
                .unwrap()
                .groups,
            ["internal", "edge"]
        );
        assert!(cfg(&[("group", "")]).is_err());
        assert!(cfg(&[("group", "a,b")]).is_err());
        let err = cfg(&[("groups", "x")]).unwrap_err();
        assert!(err.contains("unknown config key `groups`"), "{err}");
    }

    #[test]
    fn builds_a_service_from_the_rule() {
        let a = web(&[
            (ENABLE, "true"),
            (
                RULE,
                "Host:Shop.Example.com,www.example.com;PathPrefix:/api",
            ),
        ]);
        let out = run(&[a], Vec::new());
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        let [s] = out.services.as_slice() else {
            panic!("{:?}", out.services)
        };
        assert_eq!(s.app_id, "/shop/web");
        assert_eq!(s.backend, "traefik_shop_web_10000");
        assert_eq!(s.service_port, 10000);
        assert_eq!(s.port_index, 0);
        assert_eq!(s.mode, "http");
        assert_eq!(s.balance, "roundrobin");
        assert_eq!(s.bind_addr, "*");
        assert_eq!(s.groups, ["external"]);
        assert_eq!(
            s.hostname.as_deref(),
            Some("shop.example.com,www.example.com")
        );
        assert_eq!(s.path.as_deref(), Some("/api"));
        let servers: Vec<_> = s
            .servers
            .iter()
            .map(|v| {
                (
                    v.id,
                    v.ip.as_str(),
                    v.port,
                    v.name.as_str(),
                    v.host.as_str(),
                )
            })
            .collect();
        assert_eq!(
            servers,
            [
                (1, "10.0.0.1", 31002, "10_0_0_1_31002", "agent-1"),
                (2, "10.0.0.2", 31000, "10_0_0_2_31000", "agent-2"),
            ]
        );
        assert!(s.servers.iter().all(|v| v.health_port.is_none()));
    }

    #[test]
    fn rule_alone_enables_unless_disabled() {
        let out = run(&[web(&[(RULE, "Host:a.example.com")])], Vec::new());
        assert_eq!(out.services.len(), 1);
        let out = run(
            &[web(&[(RULE, "Host:a.example.com"), (ENABLE, "false")])],
            Vec::new(),
        );
        assert!(out.services.is_empty() && out.diagnostics.is_empty());
        let out = run(&[web(&[("HAPROXY_GROUP", "external")])], Vec::new());
        assert!(out.services.is_empty() && out.diagnostics.is_empty());
        let out = run(&[web(&[(ENABLE, "yes")])], Vec::new());
        assert!(out.services.is_empty());
        assert_eq!(out.diagnostics[0].label.as_deref(), Some(ENABLE));
    }

    #[test]
    fn enable_without_rule_has_no_vhost() {
        let out = run(&[web(&[(ENABLE, "true")])], Vec::new());
        let s = &out.services[0];
        assert_eq!(s.hostname, None);
        assert_eq!(s.path, None);
    }

    #[test]
    fn port_index_port_backend_and_method() {
        let a = web(&[
            (ENABLE, "true"),
            (PORT_INDEX, "1"),
            (BACKEND, "shop-backend"),
            (LB_METHOD, "leastconn"),
        ]);
        let s = &run(&[a], Vec::new()).services[0];
        assert_eq!((s.port_index, s.service_port), (1, 10001));
        assert_eq!(s.backend, "shop-backend");
        assert_eq!(s.balance, "leastconn");
        let ports: Vec<_> = s.servers.iter().map(|v| v.port).collect();
        assert_eq!(ports, [31003, 31001]);

        let a = web(&[(ENABLE, "true"), (PORT_INDEX, "1"), (PORT, "8080")]);
        let s = &run(&[a], Vec::new()).services[0];
        assert_eq!(s.backend, "traefik_shop_web_10001");
        let ports: Vec<_> = s.servers.iter().map(|v| v.port).collect();
        assert_eq!(ports, [8080, 8080]);
        assert_eq!(s.servers[0].name, "10_0_0_1_8080");
    }

    #[test]
    fn load_balancer_methods() {
        assert_eq!(balance("wrr"), Some("roundrobin"));
        assert_eq!(balance("drr"), Some("roundrobin"));
        assert_eq!(balance("leastconn"), Some("leastconn"));
        assert_eq!(balance("random"), None);
        let out = run(
            &[web(&[(ENABLE, "true"), (LB_METHOD, "random")])],
            Vec::new(),
        );
        assert_eq!(out.services[0].balance, "roundrobin");
        assert_eq!(out.diagnostics[0].severity, Severity::Warning);
    }

    #[test]
    fn default_backend_names() {
        assert_eq!(default_backend("/a/b.c_d-e", 80), "traefik_a_b_c_d-e_80");
        assert_eq!(default_backend("plain", 1), "traefik_plain_1");
    }

    #[test]
    fn invalid_labels_reject_the_app_only() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[(RULE, "Host:a.test;Headers:X,y")], RULE),
            (&[(RULE, "Host:a_b.test")], RULE),
            (&[(RULE, "Host:a.test\nbackend x")], RULE),
            (&[(ENABLE, "true"), (PORT_INDEX, "x")], PORT_INDEX),
            (&[(ENABLE, "true"), (PORT_INDEX, "-1")], PORT_INDEX),
            (&[(ENABLE, "true"), (PORT_INDEX, "2")], PORT_INDEX),
            (&[(ENABLE, "true"), (PORT, "0")], PORT),
            (&[(ENABLE, "true"), (PORT, "65536")], PORT),
            (&[(ENABLE, "true"), (PORT, "80.5")], PORT),
            (&[(ENABLE, "true"), (BACKEND, "bad name")], BACKEND),
            (
                &[
                    (ENABLE, "true"),
                    ("traefik.frontend.passHostHeader", "tr\rue"),
                ],
                "traefik.frontend.passHostHeader",
            ),
        ];
        for (labels, at) in cases {
            let good = app("/good", &[(ENABLE, "true")], &[10100], web(&[]).tasks);
            let out = run(&[web(labels), good], Vec::new());
            assert_eq!(out.services.len(), 1, "{labels:?}");
            assert_eq!(out.services[0].app_id, "/good");
            let [d] = out.diagnostics.as_slice() else {
                panic!("{labels:?}: {:?}", out.diagnostics)
            };
            assert_eq!(d.severity, Severity::Error, "{labels:?}");
            assert_eq!(d.app_id, "/shop/web");
            assert_eq!(d.label.as_deref(), Some(*at), "{labels:?}: {}", d.message);
        }
    }

    #[test]
    fn unknown_matcher_message_is_clear() {
        let out = run(&[web(&[(RULE, "Path:/x")])], Vec::new());
        let d = &out.diagnostics[0];
        assert!(
            d.message.contains("unsupported matcher `Path`"),
            "{}",
            d.message
        );
    }

    #[test]
    fn no_running_task_gives_info() {
        let mut a = web(&[(ENABLE, "true")]);
        for t in &mut a.tasks {
            t.state = Some("TASK_KILLED".to_string());
        }
        let out = run(&[a], Vec::new());
        assert!(out.services.is_empty());
        assert_eq!(out.diagnostics[0].severity, Severity::Info);
    }

    #[test]
    fn input_services_come_first_and_win_on_port_clash() {
        let first = run(&[web(&[(ENABLE, "true")])], Vec::new()).services;
        let mut previous = first[0].clone();
        previous.backend = "shop_web_10000".to_string();
        let other = app("/other", &[(ENABLE, "true")], &[10200], web(&[]).tasks);
        let out = run(&[web(&[(ENABLE, "true")]), other], vec![previous]);
        let backends: Vec<_> = out.services.iter().map(|s| s.backend.as_str()).collect();
        assert_eq!(backends, ["shop_web_10000", "traefik_other_10200"]);
        assert_eq!(out.diagnostics.len(), 1);
        assert_eq!(out.diagnostics[0].severity, Severity::Warning);
        assert_eq!(out.diagnostics[0].app_id, "/shop/web");
    }

    #[test]
    fn backend_names_must_be_unique() {
        let a = web(&[(ENABLE, "true"), (BACKEND, "shared")]);
        let b = app(
            "/b",
            &[(ENABLE, "true"), (BACKEND, "shared")],
            &[10300],
            web(&[]).tasks,
        );
        let out = run(&[a, b], Vec::new());
        assert_eq!(out.services.len(), 1);
        assert_eq!(out.diagnostics[0].app_id, "/b");
        assert_eq!(out.diagnostics[0].label.as_deref(), Some(BACKEND));
    }

    #[test]
    fn servers_fall_back_to_host_and_drop_duplicates() {
        let tasks = vec![
            task("b.agent", None, Some("TASK_RUNNING"), &[2000]),
            task("a.agent", None, Some("TASK_RUNNING"), &[2000]),
            task("a.agent", None, Some("TASK_RUNNING"), &[2000]),
            task("a.agent", None, Some("TASK_RUNNING"), &[]),
        ];
        let servers = servers(&tasks, 0, None);
        let names: Vec<_> = servers.iter().map(|s| (s.id, s.name.as_str())).collect();
        assert_eq!(names, [(1, "a_agent_2000"), (2, "b_agent_2000")]);
    }
}
