//! Marathon apps as the label rules see them.
//!
//! The host fills these from `/v2/apps?embed=apps.tasks` after dropping every
//! `null` (marathon-lb's `cleanup_json`), so "absent" and "null" are the same
//! thing here. Nothing is interpreted yet: network mode, service ports and task
//! addresses are derived by the label rules, which is where marathon-lb keeps
//! them too.

/// One Marathon app with its tasks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct App {
    /// The app id, e.g. `/shop/web`.
    pub id: String,
    /// Labels in the order Marathon sent them.
    pub labels: Vec<(String, String)>,
    /// `instances`, when present.
    pub instances: Option<i64>,
    /// Old-API `ports` (absent = empty).
    pub ports: Vec<i64>,
    /// `portDefinitions[].port`, `None` when the key `portDefinitions` is absent;
    /// entries without a `port` are `None`.
    pub port_definitions: Option<Vec<Option<i64>>>,
    /// `container.docker.portMappings` when non-empty, else `container.portMappings`.
    pub port_mappings: Vec<PortMapping>,
    /// `container.docker.network` (`BRIDGE`, `USER`, `HOST`, ...).
    pub docker_network: Option<String>,
    /// `networks[].mode` in order; a network without `mode` is `None`.
    pub network_modes: Vec<Option<String>>,
    /// `ipAddress` is present and not empty.
    pub has_ip_address: bool,
    /// `ipAddress.discovery.ports[].number`.
    pub discovery_ports: Vec<i64>,
    /// `healthChecks` in order.
    pub health_checks: Vec<HealthCheck>,
    /// `versionInfo.lastScalingAt`.
    pub last_scaling_at: Option<String>,
    /// The embedded tasks.
    pub tasks: Vec<Task>,
}

impl App {
    /// The value of label `key`, if set.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One entry of an app's port mappings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PortMapping {
    /// `containerPort`.
    pub container_port: Option<i64>,
    /// `hostPort`.
    pub host_port: Option<i64>,
    /// `servicePort`.
    pub service_port: Option<i64>,
}

/// One Marathon task.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Task {
    /// Task id.
    pub id: String,
    /// The agent host name (may be empty: such tasks are skipped).
    pub host: String,
    /// `host` resolved to an IPv4 address by the host process (DNS is I/O, so
    /// it happens outside the rules); `None` when resolution failed.
    pub host_ip: Option<String>,
    /// Mesos task state, e.g. `TASK_RUNNING`.
    pub state: Option<String>,
    /// `ipAddresses[].ipAddress` in order (a missing address is `""`).
    pub ip_addresses: Vec<String>,
    /// Host (or container) ports of the task.
    pub ports: Vec<i64>,
    /// `healthCheckResults[].alive`; `None` when the key is absent.
    pub health_results: Option<Vec<bool>>,
    /// Set by the deployment-group merge: the server is rendered `disabled`.
    pub draining: bool,
}

/// One Marathon health check definition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthCheck {
    /// `HTTP`, `HTTPS`, `TCP`, `COMMAND`, `MESOS_HTTP`, `MESOS_HTTPS`, `MESOS_TCP`.
    pub protocol: String,
    /// `path` (HTTP checks).
    pub path: Option<String>,
    /// `portIndex`.
    pub port_index: Option<i64>,
    /// `port`.
    pub port: Option<i64>,
    /// `timeoutSeconds`.
    pub timeout_seconds: i64,
    /// `intervalSeconds`.
    pub interval_seconds: i64,
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: i64,
    /// `maxConsecutiveFailures`.
    pub max_consecutive_failures: i64,
}
