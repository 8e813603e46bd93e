//! WIT records ↔ `mlb-model` records (field for field).

use crate::mlb::plugins::types as wit;

impl From<wit::PortMapping> for mlb_model::PortMapping {
    fn from(m: wit::PortMapping) -> Self {
        Self {
            container_port: m.container_port,
            host_port: m.host_port,
            service_port: m.service_port,
        }
    }
}

impl From<wit::HealthCheck> for mlb_model::HealthCheck {
    fn from(c: wit::HealthCheck) -> Self {
        Self {
            protocol: c.protocol,
            path: c.path,
            port_index: c.port_index,
            port: c.port,
            timeout_seconds: c.timeout_seconds,
            interval_seconds: c.interval_seconds,
            grace_period_seconds: c.grace_period_seconds,
            max_consecutive_failures: c.max_consecutive_failures,
        }
    }
}

impl From<wit::Task> for mlb_model::Task {
    fn from(t: wit::Task) -> Self {
        Self {
            id: t.id,
            host: t.host,
            host_ip: t.host_ip,
            state: t.state,
            ip_addresses: t.ip_addresses,
            ports: t.ports,
            health_results: t.health_results,
            draining: t.draining,
        }
    }
}

impl From<wit::App> for mlb_model::App {
    fn from(a: wit::App) -> Self {
        Self {
            id: a.id,
            labels: a.labels,
            instances: a.instances,
            ports: a.ports,
            port_definitions: a.port_definitions,
            port_mappings: a.port_mappings.into_iter().map(Into::into).collect(),
            docker_network: a.docker_network,
            network_modes: a.network_modes,
            has_ip_address: a.has_ip_address,
            discovery_ports: a.discovery_ports,
            health_checks: a.health_checks.into_iter().map(Into::into).collect(),
            last_scaling_at: a.last_scaling_at,
            tasks: a.tasks.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<wit::InterpretOptions> for mlb_model::InterpretOptions {
    fn from(o: wit::InterpretOptions) -> Self {
        Self {
            groups: o.groups,
            strict_mode: o.strict_mode,
            health_check: o.health_check,
            min_serv_port_ip_per_task: o.min_serv_port_ip_per_task,
            max_serv_port_ip_per_task: o.max_serv_port_ip_per_task,
            framework_name: o.framework_name,
        }
    }
}

impl From<mlb_model::Diagnostic> for wit::Diagnostic {
    fn from(d: mlb_model::Diagnostic) -> Self {
        Self {
            severity: match d.severity {
                mlb_model::Severity::Info => wit::Severity::Info,
                mlb_model::Severity::Warning => wit::Severity::Warning,
                mlb_model::Severity::Error => wit::Severity::Error,
            },
            app_id: d.app_id,
            label: d.label,
            message: d.message,
        }
    }
}

impl From<mlb_model::Service> for wit::Service {
    fn from(s: mlb_model::Service) -> Self {
        Self {
            app_id: s.app_id,
            port_index: s.port_index,
            backend: s.backend,
            service_port: s.service_port,
            mode: s.mode,
            balance: s.balance,
            hostname: s.hostname,
            path: s.path,
            auth: s.auth.map(|a| wit::Auth {
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
            health_check: s.health_check.map(|c| wit::ServiceHealthCheck {
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
                .map(|v| wit::Server {
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
}
