//! `mlb-model` records ↔ the WIT records of the host bindings.

use mlb_model as m;

use super::bindings::label::mlb::plugins::types as wit;

/// Drop `value` on a short-lived thread (or here, if none can be started):
/// the WIT copies of a large batch, the apps of a generation, take
/// milliseconds to free. A process that exits does not wait for it.
pub fn drop_elsewhere<T: Send + 'static>(value: T) {
    if let Err(e) = std::thread::Builder::new()
        .name("drop".into())
        .spawn(move || drop(value))
    {
        tracing::debug!("freeing in place (no thread): {e}");
    }
}

pub(super) fn app_to_wit(a: &m::App) -> wit::App {
    wit::App {
        id: a.id.clone(),
        labels: a.labels.clone(),
        instances: a.instances,
        ports: a.ports.clone(),
        port_definitions: a.port_definitions.clone(),
        port_mappings: a
            .port_mappings
            .iter()
            .map(|p| wit::PortMapping {
                container_port: p.container_port,
                host_port: p.host_port,
                service_port: p.service_port,
            })
            .collect(),
        docker_network: a.docker_network.clone(),
        network_modes: a.network_modes.clone(),
        has_ip_address: a.has_ip_address,
        discovery_ports: a.discovery_ports.clone(),
        health_checks: a
            .health_checks
            .iter()
            .map(|c| wit::HealthCheck {
                protocol: c.protocol.clone(),
                path: c.path.clone(),
                port_index: c.port_index,
                port: c.port,
                timeout_seconds: c.timeout_seconds,
                interval_seconds: c.interval_seconds,
                grace_period_seconds: c.grace_period_seconds,
                max_consecutive_failures: c.max_consecutive_failures,
            })
            .collect(),
        last_scaling_at: a.last_scaling_at.clone(),
        tasks: a
            .tasks
            .iter()
            .map(|t| wit::Task {
                id: t.id.clone(),
                host: t.host.clone(),
                host_ip: t.host_ip.clone(),
                state: t.state.clone(),
                ip_addresses: t.ip_addresses.clone(),
                ports: t.ports.clone(),
                health_results: t.health_results.clone(),
                draining: t.draining,
            })
            .collect(),
    }
}

pub(super) fn options_to_wit(o: &m::InterpretOptions) -> wit::InterpretOptions {
    wit::InterpretOptions {
        groups: o.groups.clone(),
        strict_mode: o.strict_mode,
        health_check: o.health_check,
        min_serv_port_ip_per_task: o.min_serv_port_ip_per_task,
        max_serv_port_ip_per_task: o.max_serv_port_ip_per_task,
        framework_name: o.framework_name.clone(),
    }
}

pub(super) fn diagnostic_from_wit(d: wit::Diagnostic) -> m::Diagnostic {
    let severity = match d.severity {
        wit::Severity::Info => m::Severity::Info,
        wit::Severity::Warning => m::Severity::Warning,
        wit::Severity::Error => m::Severity::Error,
    };
    m::Diagnostic {
        severity,
        app_id: d.app_id,
        label: d.label,
        message: d.message,
    }
}

pub(super) fn service_from_wit(s: wit::Service) -> m::Service {
    m::Service {
        app_id: s.app_id,
        port_index: s.port_index,
        backend: s.backend,
        service_port: s.service_port,
        mode: s.mode,
        balance: s.balance,
        hostname: s.hostname,
        path: s.path,
        auth: s.auth.map(|a| m::Auth {
            realm: a.realm,
            user: a.user,
            password: a.password,
        }),
        sticky: s.sticky,
        redirect_to_https: s.redirect_to_https,
        use_hsts: s.use_hsts,
        ssl_cert: s.ssl_cert,
        bind_addr: s.bind_addr,
        bind_options: s.bind_options,
        backend_weight: s.backend_weight,
        proxypath: s.proxypath,
        revproxypath: s.revproxypath,
        redirpath: s.redirpath,
        network_allowed: s.network_allowed,
        health_check: s.health_check.map(|c| m::ServiceHealthCheck {
            protocol: c.protocol,
            path: c.path,
            port_index: c.port_index,
            timeout_seconds: c.timeout_seconds,
            interval_seconds: c.interval_seconds,
            grace_period_seconds: c.grace_period_seconds,
            max_consecutive_failures: c.max_consecutive_failures,
            backend_port: c.backend_port,
        }),
        groups: s.groups,
        servers: s
            .servers
            .into_iter()
            .map(|v| m::Server {
                host: v.host,
                ip: v.ip,
                port: v.port,
                name: v.name,
                id: v.id,
                draining: v.draining,
                health_port: v.health_port,
            })
            .collect(),
        templates: s.templates,
        vars: s.vars,
        frontend_snippets: s.frontend_snippets,
        backend_snippets: s.backend_snippets,
    }
}

pub(super) fn service_to_wit(s: &m::Service) -> wit::Service {
    wit::Service {
        app_id: s.app_id.clone(),
        port_index: s.port_index,
        backend: s.backend.clone(),
        service_port: s.service_port,
        mode: s.mode.clone(),
        balance: s.balance.clone(),
        hostname: s.hostname.clone(),
        path: s.path.clone(),
        auth: s.auth.as_ref().map(|a| wit::Auth {
            realm: a.realm.clone(),
            user: a.user.clone(),
            password: a.password.clone(),
        }),
        sticky: s.sticky,
        redirect_to_https: s.redirect_to_https,
        use_hsts: s.use_hsts,
        ssl_cert: s.ssl_cert.clone(),
        bind_addr: s.bind_addr.clone(),
        bind_options: s.bind_options.clone(),
        backend_weight: s.backend_weight,
        proxypath: s.proxypath.clone(),
        revproxypath: s.revproxypath.clone(),
        redirpath: s.redirpath.clone(),
        network_allowed: s.network_allowed.clone(),
        health_check: s.health_check.as_ref().map(|c| wit::ServiceHealthCheck {
            protocol: c.protocol.clone(),
            path: c.path.clone(),
            port_index: c.port_index,
            timeout_seconds: c.timeout_seconds,
            interval_seconds: c.interval_seconds,
            grace_period_seconds: c.grace_period_seconds,
            max_consecutive_failures: c.max_consecutive_failures,
            backend_port: c.backend_port,
        }),
        groups: s.groups.clone(),
        servers: s
            .servers
            .iter()
            .map(|v| wit::Server {
                host: v.host.clone(),
                ip: v.ip.clone(),
                port: v.port,
                name: v.name.clone(),
                id: v.id,
                draining: v.draining,
                health_port: v.health_port,
            })
            .collect(),
        templates: s.templates.clone(),
        vars: s.vars.clone(),
        frontend_snippets: s.frontend_snippets.clone(),
        backend_snippets: s.backend_snippets.clone(),
    }
}
