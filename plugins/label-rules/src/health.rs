//! Which Marathon health check applies to a service port, and the ports that
//! HAProxy's checks use.

use mlb_model::{App, HealthCheck};

/// marathon-lb's association: the first check with a non-zero `port` applies
/// to every port index; otherwise the first check whose `portIndex` is `index`.
pub(crate) fn health_check_for(app: &App, index: i64) -> Option<&HealthCheck> {
    app.health_checks
        .iter()
        .find(|c| c.port.is_some_and(|p| p != 0) || c.port_index == Some(index))
}

/// Protocols whose borrowed check (`BACKEND_HEALTHCHECK_PORT_INDEX`) makes the
/// service `http`.
pub(crate) fn is_http_protocol(protocol: &str) -> bool {
    matches!(protocol, "HTTP" | "HTTPS" | "MESOS_HTTP" | "MESOS_HTTPS")
}

/// Whether the renderer will emit health-check options for a service in
/// `mode` with a check of `protocol` (TCP templates for tcp mode or TCP
/// checks, HTTP templates for http mode, nothing otherwise).
pub(crate) fn emits_check_options(mode: &str, protocol: &str) -> bool {
    mode == "tcp" || mode == "http" || protocol == "TCP" || protocol == "MESOS_TCP"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(port: Option<i64>, port_index: Option<i64>, protocol: &str) -> HealthCheck {
        HealthCheck {
            protocol: protocol.into(),
            port,
            port_index,
            ..HealthCheck::default()
        }
    }

    #[test]
    fn explicit_port_applies_to_every_index() {
        let app = App {
            health_checks: vec![check(None, Some(1), "TCP"), check(Some(9000), None, "HTTP")],
            ..App::default()
        };
        assert_eq!(health_check_for(&app, 0).unwrap().protocol, "HTTP");
        assert_eq!(health_check_for(&app, 1).unwrap().protocol, "TCP");
    }

    #[test]
    fn command_without_port_index_is_ignored() {
        let app = App {
            health_checks: vec![check(None, None, "COMMAND")],
            ..App::default()
        };
        assert!(health_check_for(&app, 0).is_none());
    }
}
