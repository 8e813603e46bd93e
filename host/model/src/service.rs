//! Services: one per (app, service port), ready to render.

/// Everything the renderer needs for one frontend/backend pair.
///
/// A label interpreter returns only services that are to be rendered: group
/// matching, `ENABLED`/`--strict-mode` and "has at least one server" are
/// already applied, and the mode default (`http` with a vhost, else `tcp`)
/// is resolved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Service {
    /// Marathon app id (after the deployment-group rewrite), e.g. `/shop/web`.
    pub app_id: String,
    /// Index `{n}` of the service port in the app (for `HAPROXY_{n}_*` labels).
    pub port_index: u32,
    /// Frontend/backend name, e.g. `shop_web_10020`.
    pub backend: String,
    /// Service port (after `HAPROXY_{n}_PORT`).
    pub service_port: i64,
    /// `http` or `tcp` (or whatever `HAPROXY_{n}_MODE` said, lowercased).
    pub mode: String,
    /// `balance` algorithm.
    pub balance: String,
    /// `HAPROXY_{n}_VHOST` lowercased, comma list kept as is.
    pub hostname: Option<String>,
    /// `HAPROXY_{n}_PATH`.
    pub path: Option<String>,
    /// `HAPROXY_{n}_AUTH`.
    pub auth: Option<Auth>,
    /// `HAPROXY_{n}_STICKY`.
    pub sticky: bool,
    /// `HAPROXY_{n}_REDIRECT_TO_HTTPS`.
    pub redirect_to_https: bool,
    /// `HAPROXY_{n}_USE_HSTS`.
    pub use_hsts: bool,
    /// `HAPROXY_{n}_SSL_CERT`.
    pub ssl_cert: Option<String>,
    /// `HAPROXY_{n}_BIND_ADDR` (default `*`).
    pub bind_addr: String,
    /// `HAPROXY_{n}_BIND_OPTIONS`.
    pub bind_options: Option<String>,
    /// Ordering weight of the vhost ACL blocks (higher first).
    pub backend_weight: i64,
    /// `HAPROXY_{n}_HTTP_BACKEND_PROXYPASS_PATH`.
    pub proxypath: Option<String>,
    /// `HAPROXY_{n}_HTTP_BACKEND_REVPROXY_PATH`.
    pub revproxypath: Option<String>,
    /// `HAPROXY_{n}_HTTP_BACKEND_REDIR`.
    pub redirpath: Option<String>,
    /// `HAPROXY_{n}_BACKEND_NETWORK_ALLOWED_ACL` (whitespace-separated).
    pub network_allowed: Option<String>,
    /// The health check that applies to this port, with resolved ports.
    pub health_check: Option<ServiceHealthCheck>,
    /// Groups this service was matched with.
    pub groups: Vec<String>,
    /// Servers, sorted by (host, port), with ids assigned.
    pub servers: Vec<Server>,
    /// Per-service template overrides: template name (without `HAPROXY_`) → text.
    pub templates: Vec<(String, String)>,
    /// Extra template variables set by a label plugin: name → value.
    pub vars: Vec<(String, String)>,
    /// Lines a label plugin adds to this service's own frontend section.
    pub frontend_snippets: Vec<String>,
    /// Lines a label plugin adds to this service's backend section.
    pub backend_snippets: Vec<String>,
}

impl Service {
    /// The per-service override of template `name`, if the app set one.
    pub fn template(&self, name: &str) -> Option<&str> {
        self.templates
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `realm:user:password` of `HAPROXY_{n}_AUTH`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    /// Realm shown by the browser.
    pub realm: String,
    /// User name.
    pub user: String,
    /// Password hash (or `insecure-password` text) as given.
    pub password: String,
}

/// A health check as it applies to one service.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceHealthCheck {
    /// Marathon protocol.
    pub protocol: String,
    /// `path`, if any.
    pub path: Option<String>,
    /// `portIndex`, if any.
    pub port_index: Option<i64>,
    /// `timeoutSeconds`.
    pub timeout_seconds: i64,
    /// `intervalSeconds`.
    pub interval_seconds: i64,
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: i64,
    /// `maxConsecutiveFailures`.
    pub max_consecutive_failures: i64,
    /// Port for the backend-level options (`healthCheckPort`).
    pub backend_port: Option<i64>,
}

/// One `server` line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Server {
    /// Agent host name.
    pub host: String,
    /// Address HAProxy connects to.
    pub ip: String,
    /// Port HAProxy connects to.
    pub port: i64,
    /// Server name (`host_ip_port` or `ip_port`, sanitised).
    pub name: String,
    /// Stable server id (1..=32767, unique in its backend).
    pub id: u32,
    /// Rendered `disabled` (deployment-group draining).
    pub draining: bool,
    /// Port for this server's health check options (`healthCheckPort`).
    pub health_port: Option<i64>,
}
