//! The command line: every marathon-lb 1.15 flag with its name and default,
//! plus this implementation's additions (`--templates-dir`).

use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use clap::{ArgAction, Parser, Subcommand};

use mlb_plugin_host::PluginSpec;

/// marathon-lb: keep HAProxy in step with Marathon.
#[derive(Clone, Parser)]
#[command(
    name = "marathon-lb",
    version,
    about = "Marathon-LB: HAProxy configuration from Marathon apps (Rust re-implementation of marathon-lb 1.15)",
    after_help = "See --longhelp for the label and template reference. \
                  `marathon-lb zdd --help`: zero-downtime deployments (zdd.py).",
    // As argparse: a flag given twice takes the last value (the container's
    // `run` passes some flags itself before the user's).
    args_override_self = true
)]
pub struct Args {
    /// Print the label and template reference and exit.
    #[arg(long)]
    pub longhelp: bool,

    /// Marathon endpoint(s), e.g. -m http://marathon1:8080 http://marathon2:8080
    #[arg(short = 'm', long, num_args = 1.., default_values_t = vec!["http://master.mesos:8080".to_owned()])]
    pub marathon: Vec<String>,

    /// Location of the HAProxy configuration (its directory also holds the map files).
    #[arg(long, default_value = "/etc/haproxy/haproxy.cfg")]
    pub haproxy_config: PathBuf,

    /// HAProxy group(s) to serve; repeatable; '*' matches every app, even apps without a group.
    #[arg(long, action = ArgAction::Append)]
    pub group: Vec<String>,

    /// Command that reloads HAProxy (split like a shell would).
    #[arg(short = 'c', long)]
    pub command: Option<String>,

    /// Re-run the reload command up to N times while no new HAProxy process appears (-1: forever).
    #[arg(long, default_value_t = 10, allow_hyphen_values = true)]
    pub max_reload_retries: i64,

    /// Seconds between reload retries.
    #[arg(long, default_value_t = 10)]
    pub reload_interval: u64,

    /// Services are disabled unless labelled HAPROXY_<n>_ENABLED=true (n: the service port index, as in HAPROXY_0_VHOST).
    #[arg(long)]
    pub strict_mode: bool,

    /// Follow Marathon's event stream instead of running once.
    #[arg(short = 's', long)]
    pub sse: bool,

    /// Number of previous config versions to keep (as <config>.1 .. <config>.N); 0 keeps none.
    #[arg(long, default_value_t = 5)]
    pub archive_versions: u32,

    /// Only route to tasks Marathon reports healthy (for apps with health checks).
    #[arg(short = 'H', long)]
    pub health_check: bool,

    /// Capacity of the DNS (and health-result) caches.
    #[arg(long, default_value_t = 1000)]
    pub lru_cache_capacity: usize,

    /// Route vhosts and app ids through HAProxy map files.
    #[arg(long)]
    pub haproxy_map: bool,

    /// Do not emit the :80 and :443 frontends.
    #[arg(long)]
    pub dont_bind_http_https: bool,

    /// Split :443 by SNI into one TLS frontend per vhost.
    #[arg(long)]
    pub group_https_by_vhost: bool,

    /// Comma-separated certificate files for the :443 frontend.
    #[arg(long, default_value = "/etc/ssl/cert.pem")]
    pub ssl_certs: String,

    /// Do not validate the config with `haproxy -c`.
    #[arg(long)]
    pub skip_validation: bool,

    /// When validation fails, do not try to find and drop the apps that break it.
    #[arg(long)]
    pub skip_config_cleanup: bool,

    /// Print the generated config instead of writing it (only if it differs from the file).
    #[arg(short = 'd', long)]
    pub dry: bool,

    /// Start of the service-port range auto-assigned to IP-per-task apps.
    #[arg(long, default_value_t = 10050)]
    pub min_serv_port_ip_per_task: i64,

    /// End of that range (inclusive); 0 and 0 disable auto-assignment.
    #[arg(long, default_value_t = 10100)]
    pub max_serv_port_ip_per_task: i64,

    /// Cap (seconds) of the event-stream reconnect backoff.
    #[arg(long, default_value_t = 300)]
    pub max_backoff: u64,

    /// Syslog socket to also send logs to; /dev/null disables it.
    #[arg(long, default_value = "/dev/log")]
    pub syslog_socket: PathBuf,

    /// Log line format (Python logging style: %(asctime)s %(name)s %(levelname)s %(message)s), or json. marathon-lb's default had no level: '%(asctime)-15s %(name)s: %(message)s'.
    #[arg(
        long,
        default_value = "%(asctime)-15s %(levelname)s %(name)s: %(message)s"
    )]
    pub log_format: String,

    /// Log level: CRITICAL, ERROR, WARNING, INFO, DEBUG or NOTSET.
    #[arg(long, default_value = "DEBUG")]
    pub log_level: String,

    /// File whose first line is user:password for Marathon basic auth.
    #[arg(long)]
    pub marathon_auth_credential_file: Option<PathBuf>,

    /// user:password for Marathon basic auth (prefer the credential file: arguments are visible to other users).
    #[arg(long)]
    pub auth_credentials: Option<String>,

    /// DC/OS service-account credentials: JSON with uid, private_key (PEM RSA), login_endpoint and optionally scheme (RS256); used when no basic credentials are given.
    #[arg(long, env = "DCOS_SERVICE_ACCOUNT_CREDENTIAL", hide_env_values = true)]
    pub dcos_auth_credentials: Option<String>,

    /// CA bundle to verify Marathon's TLS certificate (system roots are used otherwise). Give the CA that signed Marathon's certificate; a self-signed server certificate works only if it is not marked as a CA (basicConstraints CA:FALSE or absent, host name in subjectAltName) — `openssl req -x509`'s default CA:TRUE fails with CaUsedAsEndEntity.
    #[arg(long)]
    pub marathon_ca_cert: Option<PathBuf>,

    /// Largest Marathon response body accepted, in MiB; a larger (or endless) body is refused while it streams in and the last good config keeps serving.
    #[arg(long, default_value_t = mlb_marathon::DEFAULT_MAX_BODY_MIB, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub marathon_max_body_mib: u64,

    /// Directory of global template overrides (HAPROXY_<NAME> files); default ./templates.
    #[arg(long)]
    pub templates_dir: Option<PathBuf>,

    /// SSE mode: reopen the event stream after this many seconds without any byte (Marathon sends a keep-alive every 10 s).
    #[arg(long, default_value_t = 15.0)]
    pub sse_watchdog: f64,

    /// SSE mode: minimum seconds between two reloads; changes in between are coalesced.
    #[arg(long, default_value_t = 0.5)]
    pub min_reload_interval: f64,

    /// SSE mode: seconds between full resyncs even without events.
    #[arg(long, default_value_t = 300.0)]
    pub resync_interval: f64,

    /// Without --sse: keep running and refetch every SECONDS instead of
    /// following the event stream (the container's `run poll`); SIGHUP,
    /// SIGUSR1 and --supervise-haproxy work as in SSE mode.
    #[arg(long, value_name = "SECONDS")]
    pub poll_interval: Option<f64>,

    /// SSE or poll (--poll-interval) mode: run HAProxy as a child (master-worker, seamless reloads, restarted if it dies) instead of a --command.
    #[arg(long)]
    pub supervise_haproxy: bool,

    /// With --command in SSE or poll mode: an admin-level stats socket of the HAProxy the command reloads (`stats socket PATH level admin` in the HEAD). Membership changes (servers added to, removed from or toggled in existing backends) then go through HAProxy's runtime API instead of the command; every other change still runs it. Off by default.
    #[arg(long, env = "MLB_HAPROXY_ADMIN_SOCKET", value_name = "PATH", conflicts_with_all = ["supervise_haproxy", "no_runtime_updates"])]
    pub haproxy_admin_socket: Option<PathBuf>,

    /// Reload HAProxy for every change, membership changes included: never use HAProxy's runtime API.
    #[arg(long)]
    pub no_runtime_updates: bool,

    /// With --supervise-haproxy: directory of the master socket.
    #[arg(long, default_value = "/var/run/haproxy")]
    pub haproxy_run_dir: PathBuf,

    /// With --supervise-haproxy: where server states are saved before each reload.
    #[arg(long, default_value = "/var/state/haproxy/global")]
    pub server_state_file: PathBuf,

    /// With --supervise-haproxy: directory the 9090 Lua services are installed into.
    #[arg(long, default_value = "/marathon-lb")]
    pub lua_dir: PathBuf,

    /// Serve the controller's Prometheus metrics on this address (e.g. 127.0.0.1:9102).
    #[arg(long)]
    pub metrics_address: Option<std::net::SocketAddr>,

    /// Protect port 9090: bind the HEAD's `listen stats` section to this address instead (e.g. 127.0.0.1:9090). Off by default (marathon-lb binds 0.0.0.0:9090).
    #[arg(long, env = "MLB_STATS_BIND", value_name = "ADDR:PORT")]
    pub stats_bind: Option<std::net::SocketAddr>,

    /// Protect port 9090: file whose first line is user:password (better user:crypt-hash, e.g. from `openssl passwd -6`); every endpoint of the `listen stats` section but the health check then asks for these credentials (HTTP basic auth). Off by default.
    #[arg(long, env = "MLB_STATS_AUTH_FILE", value_name = "PATH")]
    pub stats_auth_file: Option<PathBuf>,

    /// Write this process's PID here (read by the /_mlb_signal endpoints).
    #[arg(long)]
    pub pid_file: Option<PathBuf>,

    /// Do not verify Marathon's TLS certificate (unsafe; marathon-lb's old default).
    #[arg(long)]
    pub marathon_insecure: bool,

    /// Load a WASM plugin: `PATH.wasm[,key=value…]`. Repeatable. Label
    /// plugins run after the default rules, in the order given; policies run
    /// last; filter plugins add template filters. Host keys: `name`,
    /// `memory-mib` (default 256), `timeout-ms` (default 2000), `allow-clock`,
    /// `allow-dir=/abs/path` (read-only), `allow-env=NAME`,
    /// `stub=files,clock,network` (link inert WASI); every other key is
    /// passed to the plugin.
    #[arg(long = "plugin", value_name = "PATH[,KEY=VALUE…]", action = ArgAction::Append, global = true)]
    pub plugins: Vec<PluginSpec>,

    /// Directory for compiled plugins (default: `$XDG_CACHE_HOME/marathon-lb`
    /// or `~/.cache/marathon-lb`; an empty value disables the cache).
    #[arg(long, env = "MLB_PLUGIN_CACHE_DIR", global = true, value_parser = clap::builder::OsStringValueParser::new().map(PathBuf::from))]
    pub plugin_cache_dir: Option<PathBuf>,

    /// A tool instead of the load balancer.
    #[command(subcommand)]
    pub tool: Option<Tool>,
}

/// Tools (`marathon-lb plugin …`).
#[derive(Clone, Debug, Subcommand)]
pub enum Tool {
    /// Inspect and try plugins.
    #[command(subcommand)]
    Plugin(PluginTool),
    /// Print every syslog datagram received on SOCKET as a line on stdout
    /// (the container's HAPROXY_SYSLOGD); stops when the parent exits.
    Syslogd {
        /// The Unix datagram socket to create, e.g. /dev/log.
        socket: PathBuf,
    },
}

/// `marathon-lb plugin …`.
#[derive(Clone, Debug, Subcommand)]
pub enum PluginTool {
    /// Load one plugin (world, WIT version, imports and capabilities), run
    /// it on sample apps (or `--apps`) and print the result and timings.
    /// Exit status 1 if it cannot be loaded or fails.
    Check {
        /// The plugin, with the same syntax as `--plugin`.
        plugin: PluginSpec,
        /// A Marathon `/v2/apps?embed=apps.tasks` document to run on
        /// instead of the built-in samples.
        #[arg(long)]
        apps: Option<PathBuf>,
    },
    /// List the plugins a controller with these flags would load (the
    /// default label plugin and every `--plugin`), with world, version,
    /// capabilities and cache state.
    List,
}

/// Secrets (`--auth-credentials`, `--dcos-auth-credentials`) are never printed.
impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |set: bool| if set { "<hidden>" } else { "<unset>" };
        f.debug_struct("Args")
            .field(
                "marathon",
                &self
                    .marathon
                    .iter()
                    .map(|u| mlb_marathon::redact_url(u))
                    .collect::<Vec<_>>(),
            )
            .field("haproxy_config", &self.haproxy_config)
            .field("group", &self.group)
            .field("sse", &self.sse)
            .field("auth_credentials", &hidden(self.auth_credentials.is_some()))
            .field(
                "dcos_auth_credentials",
                &hidden(self.dcos_auth_credentials.is_some()),
            )
            .finish_non_exhaustive()
    }
}
