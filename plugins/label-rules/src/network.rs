//! Network mode, task address and task ports (marathon-lb `utils.py`).

use mlb_model::{App, Task};

/// How an app's tasks are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NetworkMode {
    /// Agent address + host port.
    Host,
    /// Agent address + host port (Docker bridge / `container/bridge`).
    ContainerBridge,
    /// Task IP + container port (IP-per-task).
    Container,
    /// A `networks[].mode` marathon-lb does not know: agent address, but the
    /// container branch for ports (what the original's string compares do).
    Other,
}

/// The network mode of an app: `ipAddress` means container; Docker's `USER` /
/// `BRIDGE` network; Marathon ≥ 1.5 `networks[]`, whose last entry wins
/// (a network without `mode` counts as `container`).
pub(crate) fn networking_mode(app: &App) -> NetworkMode {
    let mut mode = if app.has_ip_address {
        NetworkMode::Container
    } else {
        NetworkMode::Host
    };
    match app.docker_network.as_deref() {
        Some("USER") => mode = NetworkMode::Container,
        Some("BRIDGE") => mode = NetworkMode::ContainerBridge,
        _ => {}
    }
    for network in &app.network_modes {
        mode = match network.as_deref().unwrap_or("container") {
            "container" => NetworkMode::Container,
            "container/bridge" => NetworkMode::ContainerBridge,
            "host" => NetworkMode::Host,
            _ => NetworkMode::Other,
        };
    }
    mode
}

fn port_definition_ports(app: &App) -> Vec<i64> {
    app.port_definitions
        .iter()
        .flatten()
        .filter_map(|p| *p)
        .collect()
}

fn port_mapping_ports(app: &App) -> Vec<i64> {
    app.port_mappings
        .iter()
        .filter_map(|m| m.container_port)
        .collect()
}

/// The ports under which a task's services are reached.
pub(crate) fn task_ports(app: &App, task: &Task, mode: NetworkMode) -> Vec<i64> {
    match mode {
        NetworkMode::Host => {
            if !task.ports.is_empty() {
                return task.ports.clone();
            }
            port_definition_ports(app)
        }
        NetworkMode::ContainerBridge => {
            if !task.ports.is_empty() {
                return task.ports.clone();
            }
            let defs = port_definition_ports(app);
            if !defs.is_empty() {
                return defs;
            }
            port_mapping_ports(app)
        }
        NetworkMode::Container | NetworkMode::Other => {
            if !app.discovery_ports.is_empty() {
                return app.discovery_ports.clone();
            }
            port_mapping_ports(app)
        }
    }
}

/// The address HAProxy connects to: the task's own IP for IP-per-task, else
/// the agent address the host process resolved.
pub(crate) fn task_ip(task: &Task, mode: NetworkMode) -> Option<String> {
    let ip = match mode {
        NetworkMode::Container => task.ip_addresses.first().cloned(),
        NetworkMode::Host | NetworkMode::ContainerBridge | NetworkMode::Other => {
            if task.host.is_empty() {
                None
            } else {
                task.host_ip.clone()
            }
        }
    };
    ip.filter(|ip| !ip.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_network_wins_and_missing_mode_is_container() {
        let app = App {
            docker_network: Some("BRIDGE".into()),
            network_modes: vec![Some("host".into()), None],
            ..App::default()
        };
        assert_eq!(networking_mode(&app), NetworkMode::Container);
        let app = App {
            has_ip_address: true,
            docker_network: Some("BRIDGE".into()),
            ..App::default()
        };
        assert_eq!(networking_mode(&app), NetworkMode::ContainerBridge);
        assert_eq!(networking_mode(&App::default()), NetworkMode::Host);
    }

    #[test]
    fn container_tasks_use_their_own_ip_and_discovery_ports() {
        let app = App {
            has_ip_address: true,
            discovery_ports: vec![8080],
            ..App::default()
        };
        let task = Task {
            host: "agent".into(),
            host_ip: Some("10.0.0.1".into()),
            ip_addresses: vec!["172.17.0.2".into()],
            ports: vec![31000],
            ..Task::default()
        };
        let mode = networking_mode(&app);
        assert_eq!(task_ip(&task, mode).as_deref(), Some("172.17.0.2"));
        assert_eq!(task_ports(&app, &task, mode), vec![8080]);
        let no_ip = Task {
            ip_addresses: vec![],
            ..task
        };
        assert_eq!(task_ip(&no_ip, mode), None);
    }
}
