//! Command-line flags validated into the settings of one run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mlb_core::RenderSettings;
use mlb_core::templates::{TEMPLATE_NAMES, TemplateSources};
use mlb_model::InterpretOptions;

use crate::cli::Args;
use mlb_marathon::{ClientConfig, Credentials, DcosAuth};

/// Everything a run needs, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Marathon client settings.
    pub client: ClientConfig,
    /// Label interpretation options.
    pub interpret: InterpretOptions,
    /// Rendering options.
    pub render: RenderSettings,
    /// Global template overrides.
    pub templates: TemplateSources,
    /// The config file.
    pub haproxy_config: PathBuf,
    /// Apply options.
    pub apply: mlb_haproxy::apply::ApplyOptions,
    /// `--dry`.
    pub dry: bool,
    /// `--lru-cache-capacity`.
    pub cache_capacity: usize,
    /// `--skip-config-cleanup`.
    pub skip_config_cleanup: bool,
    /// `--plugin`, in order.
    pub plugins: Vec<mlb_plugin_host::PluginSpec>,
    /// Where compiled plugins are cached (`None`: no cache).
    pub plugin_cache_dir: Option<PathBuf>,
    /// Run HAProxy as a supervised child (`--supervise-haproxy`).
    pub supervise: Option<mlb_haproxy::SupervisorConfig>,
    /// Membership changes through HAProxy's runtime API (not
    /// `--no-runtime-updates`).
    pub runtime_updates: bool,
    /// `--haproxy-admin-socket`: the runtime path for the command reloader.
    pub admin_socket: Option<PathBuf>,
}

/// `--plugin-cache-dir`, or the user's cache directory (`None` disables).
pub fn plugin_cache_dir(flag: Option<&Path>, env: &[(String, String)]) -> Option<PathBuf> {
    if let Some(dir) = flag {
        return (!dir.as_os_str().is_empty()).then(|| dir.to_owned());
    }
    let get = |k: &str| {
        env.iter()
            .find(|(n, v)| n == k && !v.is_empty())
            .map(|(_, v)| PathBuf::from(v))
    };
    get("XDG_CACHE_HOME")
        .or_else(|| get("HOME").map(|h| h.join(".cache")))
        .map(|d| d.join("marathon-lb"))
}

/// Flags that contradict each other or files that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// `--supervise-haproxy` without `--sse`.
    #[error(
        "--supervise-haproxy needs --sse or --poll-interval (a one-shot run cannot keep HAProxy running)"
    )]
    SuperviseNeedsSse,
    /// `--haproxy-admin-socket` in a one-shot run.
    #[error(
        "--haproxy-admin-socket needs --sse or --poll-interval (a one-shot run does not know what HAProxy runs, so every change runs --command)"
    )]
    AdminSocketNeedsDaemon,
    /// `--group` missing.
    #[error("--group is required (use --group '*' to serve every app)")]
    NoGroup,
    /// Bad IP-per-task range.
    #[error(
        "--min-serv-port-ip-per-task and --max-serv-port-ip-per-task must both be 0 or both be set with min <= max (got {0} and {1})"
    )]
    PortRange(i64, i64),
    /// Credentials problem.
    #[error(transparent)]
    Credentials(#[from] mlb_marathon::CredentialsError),
    /// The port-9090 protection cannot be set up.
    #[error(transparent)]
    Guard(#[from] mlb_haproxy::GuardError),
    /// The global templates are unusable.
    #[error(transparent)]
    Templates(#[from] mlb_core::TemplateError),
    /// Unusable DC/OS service-account credentials.
    #[error(transparent)]
    Dcos(#[from] mlb_marathon::DcosError),
    /// A `--marathon` URL without `http://` or `https://`.
    #[error(
        "--marathon {0}: not an http:// or https:// URL: give the scheme, e.g. --marathon http://{1}"
    )]
    MarathonUrl(String, String),
    /// An explicit `--templates-dir` that is not a directory.
    #[error(
        "--templates-dir {0}: no such directory (give the directory that holds your HAPROXY_<NAME> template files, or leave the flag out to use the defaults)"
    )]
    TemplatesDir(String),
    /// A file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// Which file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, SettingsError> {
    std::fs::read(path).map_err(|error| SettingsError::Read {
        path: path.display().to_string(),
        error,
    })
}

/// Read `HAPROXY_<NAME>` files from `dir` (a missing directory means none).
/// A file identical to the shipped default (`templates/HAPROXY_<NAME>` of
/// this repository, which is the default `./templates` when the binary runs
/// from the repository root) is not an override.
pub fn template_files(dir: &Path) -> Result<BTreeMap<String, String>, SettingsError> {
    let mut files = BTreeMap::new();
    for name in TEMPLATE_NAMES {
        let path = dir.join(format!("HAPROXY_{name}"));
        match std::fs::read_to_string(&path) {
            Ok(text) if mlb_core::templates::is_shipped_default(name, &text) => {}
            Ok(text) => {
                files.insert(name.to_owned(), text);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(SettingsError::Read {
                    path: path.display().to_string(),
                    error,
                });
            }
        }
    }
    Ok(files)
}

/// `HAPROXY_<NAME>` environment variables and `HAPROXY_GLOBAL_DEFAULT_OPTIONS`.
pub fn template_env(
    vars: impl Iterator<Item = (String, String)>,
) -> (BTreeMap<String, String>, Option<String>) {
    let mut env = BTreeMap::new();
    let mut options = None;
    for (key, value) in vars {
        if key == "HAPROXY_GLOBAL_DEFAULT_OPTIONS" {
            options = Some(value);
        } else if let Some(name) = key.strip_prefix("HAPROXY_")
            && TEMPLATE_NAMES.contains(&name)
        {
            env.insert(name.to_owned(), value);
        }
    }
    (env, options)
}

/// Replace the effective HEAD of `sources` by its protected version.
fn protect_head(
    sources: &mut TemplateSources,
    guard: &mlb_haproxy::StatsGuard,
) -> Result<(), SettingsError> {
    let head = mlb_core::Templates::resolve(sources)?
        .get(mlb_core::TemplateName::HEAD)
        .to_owned();
    if guard.auth.as_ref().is_some_and(|a| !a.is_hashed()) {
        tracing::warn!(
            "--stats-auth-file holds a plain-text password: it is written to the HAProxy config as an insecure-password; prefer a crypt hash (openssl passwd -6)"
        );
    }
    // The resolved HEAD already has the global options in; as a file
    // override (the environment beats files) it is taken verbatim.
    sources.env.remove("HEAD");
    sources.files.insert("HEAD".to_owned(), guard.apply(&head)?);
    Ok(())
}

/// The Marathon-access flags shared by the controller and `zdd`.
#[derive(Debug, Clone, Copy)]
pub struct MarathonAccess<'a> {
    /// `--marathon-auth-credential-file`.
    pub credential_file: Option<&'a Path>,
    /// `--auth-credentials`.
    pub auth_credentials: Option<&'a str>,
    /// `--dcos-auth-credentials`.
    pub dcos_auth_credentials: Option<&'a str>,
    /// `--marathon-ca-cert`.
    pub ca_cert: Option<&'a Path>,
    /// `--marathon-insecure`.
    pub insecure: bool,
}

/// The Marathon client settings for `urls` and the access flags
/// (precedence as marathon-lb: credential file, then `--auth-credentials`,
/// then DC/OS credentials).
pub fn client_config(
    urls: Vec<String>,
    access: &MarathonAccess<'_>,
) -> Result<ClientConfig, SettingsError> {
    let credentials = if let Some(file) = access.credential_file {
        Some(Credentials::from_file(file)?)
    } else if let Some(text) = access.auth_credentials {
        Some(Credentials::parse(text, "--auth-credentials")?)
    } else {
        None
    };
    let mut client = ClientConfig::new(urls);
    client.ca_cert_pem = access.ca_cert.map(read).transpose()?;
    client.insecure = access.insecure;
    if credentials.is_none()
        && let Some(json) = access.dcos_auth_credentials
    {
        client.dcos = Some(DcosAuth::from_json(
            json,
            client.ca_cert_pem.as_deref(),
            client.insecure,
        )?);
    }
    client.credentials = credentials;
    Ok(client)
}

impl Settings {
    /// Validate `args`; `env` is the process environment.
    pub fn from_args(args: &Args, env: &[(String, String)]) -> Result<Self, SettingsError> {
        if args.group.is_empty() {
            return Err(SettingsError::NoGroup);
        }
        if args.supervise_haproxy && !args.sse && args.poll_interval.is_none() {
            return Err(SettingsError::SuperviseNeedsSse);
        }
        if args.haproxy_admin_socket.is_some() && !args.sse && args.poll_interval.is_none() {
            return Err(SettingsError::AdminSocketNeedsDaemon);
        }
        for url in &args.marathon {
            let parsed = reqwest::Url::parse(url);
            if !parsed.is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host()) {
                // Without a scheme, `user:pass@host` does not parse as a URL
                // with user info: drop everything up to the last `@` so a
                // password never reaches the message (or the logs).
                let bare = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
                let (shown, bare) = match bare.rsplit_once('@') {
                    Some((_, host)) => (format!("<user info>@{host}"), host.to_owned()),
                    None => (url.clone(), bare.to_owned()),
                };
                return Err(SettingsError::MarathonUrl(shown, bare));
            }
        }
        let (min, max) = (
            args.min_serv_port_ip_per_task,
            args.max_serv_port_ip_per_task,
        );
        if (min == 0) != (max == 0) || min > max || min < 0 {
            return Err(SettingsError::PortRange(min, max));
        }
        let mut client = client_config(
            args.marathon.clone(),
            &MarathonAccess {
                credential_file: args.marathon_auth_credential_file.as_deref(),
                auth_credentials: args.auth_credentials.as_deref(),
                dcos_auth_credentials: args.dcos_auth_credentials.as_deref(),
                ca_cert: args.marathon_ca_cert.as_deref(),
                insecure: args.marathon_insecure,
            },
        )?;
        client.max_body_bytes = args.marathon_max_body_mib << 20;

        let framework_name = env
            .iter()
            .find(|(k, _)| k == "FRAMEWORK_NAME")
            .map(|(_, v)| v.clone());
        let (env_templates, global_default_options) = template_env(env.iter().cloned());
        // Measured: without `idle-close-on-response`, keep-alive clients see
        // errors on reloads (notes/platform-facts.md). Added only when we run
        // HAProxy, so the one-shot output stays byte-identical, and only to
        // HTTP-mode frontends: HAProxy warns about it anywhere else.
        let http_frontend_options = if args.supervise_haproxy {
            mlb_haproxy::SUPERVISED_GLOBAL_OPTIONS
                .iter()
                .map(|o| (*o).to_owned())
                .collect()
        } else {
            Vec::new()
        };
        // marathon-lb reads `./templates` when it exists; a directory named
        // on purpose must exist.
        if let Some(dir) = &args.templates_dir
            && !dir.is_dir()
        {
            return Err(SettingsError::TemplatesDir(dir.display().to_string()));
        }
        let templates_dir = args
            .templates_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("templates"));
        let mut templates = TemplateSources {
            global_default_options,
            env: env_templates,
            files: template_files(&templates_dir)?,
        };
        let guard = mlb_haproxy::StatsGuard {
            bind: args.stats_bind,
            auth: args
                .stats_auth_file
                .as_deref()
                .map(mlb_haproxy::StatsAuth::from_file)
                .transpose()?,
        };
        if guard.is_on() {
            protect_head(&mut templates, &guard)?;
        }
        let haproxy_dir = args
            .haproxy_config
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        Ok(Self {
            client,
            interpret: InterpretOptions {
                groups: args.group.clone(),
                strict_mode: args.strict_mode,
                health_check: args.health_check,
                min_serv_port_ip_per_task: min,
                max_serv_port_ip_per_task: max,
                framework_name,
            },
            render: RenderSettings {
                bind_http_https: !args.dont_bind_http_https,
                ssl_certs: Some(args.ssl_certs.clone()),
                haproxy_map: args.haproxy_map,
                group_https_by_vhost: args.group_https_by_vhost,
                haproxy_dir,
                http_frontend_options,
            },
            templates,
            haproxy_config: args.haproxy_config.clone(),
            apply: mlb_haproxy::apply::ApplyOptions {
                skip_validation: args.skip_validation,
                command: args.command.clone(),
                archive_versions: args.archive_versions,
                max_reload_retries: args.max_reload_retries,
                reload_interval: std::time::Duration::from_secs(args.reload_interval),
            },
            dry: args.dry,
            cache_capacity: args.lru_cache_capacity,
            skip_config_cleanup: args.skip_config_cleanup || args.skip_validation,
            plugins: args.plugins.clone(),
            plugin_cache_dir: plugin_cache_dir(args.plugin_cache_dir.as_deref(), env),
            supervise: args
                .supervise_haproxy
                .then(|| mlb_haproxy::SupervisorConfig {
                    haproxy: PathBuf::from("haproxy"),
                    config: args.haproxy_config.clone(),
                    run_dir: args.haproxy_run_dir.clone(),
                    state_file: args.server_state_file.clone(),
                    lua_dir: Some(args.lua_dir.clone()),
                }),
            runtime_updates: !args.no_runtime_updates,
            admin_socket: args.haproxy_admin_socket.clone(),
        })
    }
}

impl Settings {
    /// The plugin set of these settings: a runtime with the configured
    /// compile cache, the default plugin and every `--plugin`. `once`: for a
    /// single reconcile (one-shot mode), without the memo of unchanged apps.
    pub fn load_plugins(
        &self,
        once: bool,
    ) -> Result<
        (mlb_plugin_host::PluginSet, Vec<mlb_plugin_host::LoadReport>),
        mlb_plugin_host::PluginError,
    > {
        let runtime = mlb_plugin_host::PluginRuntime::new(self.plugin_cache_dir.as_deref())?;
        if once {
            mlb_plugin_host::load_set_once(&runtime, &self.plugins)
        } else {
            mlb_plugin_host::load_set(&runtime, &self.plugins)
        }
    }
}
