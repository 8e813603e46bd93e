//! Settings from the command line that change how labels are interpreted.

/// What a label interpreter needs to know besides the apps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InterpretOptions {
    /// `--group` values (`*` matches every app).
    pub groups: Vec<String>,
    /// `--strict-mode`: services are disabled unless `HAPROXY_{n}_ENABLED` is true.
    pub strict_mode: bool,
    /// `--health-check`: honour Marathon's health results.
    pub health_check: bool,
    /// `--min-serv-port-ip-per-task` (0 with max 0 disables auto-assignment).
    pub min_serv_port_ip_per_task: i64,
    /// `--max-serv-port-ip-per-task`.
    pub max_serv_port_ip_per_task: i64,
    /// `FRAMEWORK_NAME`: the app `/<name>` is skipped (marathon-lb itself).
    pub framework_name: Option<String>,
}
