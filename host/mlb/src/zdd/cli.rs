//! `marathon-lb zdd` flags: every flag of marathon-lb's `zdd.py` with its
//! name, short form and default, plus this implementation's safety flags
//! (`--deadline`, `--rollback`, `--request-timeout`, `--marathon-insecure`).

use std::path::PathBuf;

use clap::Parser;

/// Zero-downtime (blue/green, canary) deployment orchestrator for marathon-lb.
#[derive(Clone, Parser)]
#[command(
    name = "marathon-lb zdd",
    about = "Zero-downtime deployment orchestrator for marathon-lb (drop-in for zdd.py / bluegreen_deploy.py)",
    after_help = "Exit codes: 0 done, 1 declined at a prompt, 2 unexpected error, 3 invalid arguments, \
                  4 missing field in the app JSON, 5 marathon-lb endpoint, 6 Marathon endpoint, \
                  7 create failed, 8 delete failed, 9 scale failed, 10 failed and rolled back, \
                  11 rollback failed (both apps kept). See --longhelp."
)]
pub struct ZddArgs {
    /// Print the zdd reference (algorithm, labels, exit codes) and exit.
    #[arg(long)]
    pub longhelp: bool,

    /// [required] Marathon endpoint(s), e.g. -m http://marathon1:8080 (several: failover).
    #[arg(short = 'm', long, num_args = 1..)]
    pub marathon: Vec<String>,

    /// [required] marathon-lb stats endpoint, e.g. -l http://marathon-lb.marathon.mesos:9090;
    /// every IPv4 address the name resolves to is one instance. Repeatable (or comma-separated)
    /// for instances behind different names.
    #[arg(short = 'l', long, value_delimiter = ',')]
    pub marathon_lb: Vec<String>,

    /// [required] App JSON file.
    #[arg(short = 'j', long)]
    pub json: Option<PathBuf>,

    /// Print what would be done (the app JSON, or the resume/rollback plan) and make no change.
    #[arg(short = 'd', long)]
    pub dry_run: bool,

    /// Do not prompt for confirmation.
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Delay (in seconds) between each successive deployment step.
    #[arg(short = 's', long, default_value_t = 5.0)]
    pub step_delay: f64,

    /// Initial number of new instances (capped by the existing instance count).
    #[arg(short = 'i', long, default_value_t = 1)]
    pub initial_instances: u64,

    /// Scale the new app up by this many instances per step instead of by 50 %.
    #[arg(long, default_value_t = 0)]
    pub linear_increase: u64,

    /// Resume a previous deployment.
    #[arg(short = 'r', long)]
    pub resume: bool,

    /// Maximum time (in seconds) to wait for HAProxy to drain connections in one step;
    /// after it, old tasks in maintenance on every instance are killed even with sessions.
    #[arg(short = 'w', long, default_value_t = 300.0)]
    pub max_wait: f64,

    /// Number of new instances to replace existing ones (hybrid/canary: both apps keep running).
    #[arg(short = 'n', long, default_value_t = 0)]
    pub new_instances: u64,

    /// Change a hybrid deployment entirely to the current (new) app.
    #[arg(short = 'c', long)]
    pub complete_cur: bool,

    /// Change a hybrid deployment entirely to the previous (old) app.
    #[arg(short = 'p', long)]
    pub complete_prev: bool,

    /// Executable called before each kill with 3 JSON arguments: old app, task ids, new app;
    /// a non-zero exit stops the deployment (and rolls it back).
    #[arg(long)]
    pub pre_kill_hook: Option<PathBuf>,

    /// Syslog socket to also send logs to; /dev/null disables it.
    #[arg(long, default_value = "/dev/log")]
    pub syslog_socket: PathBuf,

    /// Log line format (Python logging style), or `json` for JSON lines.
    #[arg(long, default_value = "%(asctime)-15s %(name)s: %(message)s")]
    pub log_format: String,

    /// Log level: CRITICAL, ERROR, WARNING, INFO, DEBUG or NOTSET.
    #[arg(long, default_value = "DEBUG")]
    pub log_level: String,

    /// File whose first line is user:password for Marathon basic auth.
    #[arg(long)]
    pub marathon_auth_credential_file: Option<PathBuf>,

    /// user:password for Marathon basic auth (prefer the credential file).
    #[arg(long)]
    pub auth_credentials: Option<String>,

    /// DC/OS service-account credentials (JSON).
    #[arg(long, env = "DCOS_SERVICE_ACCOUNT_CREDENTIAL", hide_env_values = true)]
    pub dcos_auth_credentials: Option<String>,

    /// CA bundle to verify Marathon's TLS certificate (system roots otherwise).
    #[arg(long)]
    pub marathon_ca_cert: Option<PathBuf>,

    /// Do not verify Marathon's TLS certificate (unsafe).
    #[arg(long)]
    pub marathon_insecure: bool,

    /// Give up (and roll back) when the whole deployment takes longer than this many seconds.
    #[arg(long, default_value_t = 3600.0)]
    pub deadline: f64,

    /// Timeout (seconds) of every single HTTP request.
    #[arg(long, default_value_t = 10.0)]
    pub request_timeout: f64,

    /// Undo a half-done deployment of the group of --json: scale the old app back to its
    /// target, wait until it is healthy, delete the new app.
    #[arg(long)]
    pub rollback: bool,
}

/// Secrets are never printed.
impl std::fmt::Debug for ZddArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZddArgs")
            .field("marathon", &self.marathon)
            .field("marathon_lb", &self.marathon_lb)
            .field("json", &self.json)
            .field("dry_run", &self.dry_run)
            .field("auth_credentials", &self.auth_credentials.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// zdd.py's defaults, then every one of its flags in long form and
    /// every short form it has, each parsed into its field.
    #[test]
    fn every_zdd_py_flag_parses_with_its_default() {
        let d = ZddArgs::try_parse_from(["zdd"]).unwrap();
        assert_eq!(
            (
                d.step_delay,
                d.initial_instances,
                d.linear_increase,
                d.max_wait,
                d.new_instances
            ),
            (5.0, 1, 0, 300.0, 0)
        );
        assert_eq!(d.syslog_socket, PathBuf::from("/dev/log"));
        assert_eq!(d.log_format, "%(asctime)-15s %(name)s: %(message)s");
        assert_eq!(d.log_level, "DEBUG");
        assert!(
            !(d.longhelp || d.dry_run || d.force || d.resume || d.complete_cur || d.complete_prev)
        );

        let long = ZddArgs::try_parse_from([
            "zdd",
            "--longhelp",
            "--marathon",
            "http://m1:8080",
            "http://m2:8080",
            "--marathon-lb",
            "http://lb:9090",
            "--json",
            "app.json",
            "--dry-run",
            "--force",
            "--step-delay",
            "0.5",
            "--initial-instances",
            "2",
            "--linear-increase",
            "3",
            "--resume",
            "--max-wait",
            "7",
            "--new-instances",
            "4",
            "--complete-cur",
            "--complete-prev",
            "--pre-kill-hook",
            "/bin/hook",
            "--syslog-socket",
            "/dev/null",
            "--log-format",
            "%(message)s",
            "--log-level",
            "info",
            "--marathon-auth-credential-file",
            "/c",
            "--auth-credentials",
            "u:p",
            "--dcos-auth-credentials",
            "{}",
            "--marathon-ca-cert",
            "/ca.pem",
        ])
        .unwrap();
        assert!(long.longhelp && long.dry_run && long.force && long.resume);
        assert!(long.complete_cur && long.complete_prev);
        assert_eq!(long.marathon, ["http://m1:8080", "http://m2:8080"]);
        assert_eq!(long.marathon_lb, ["http://lb:9090"]);
        assert_eq!(long.json, Some(PathBuf::from("app.json")));
        assert_eq!(
            (
                long.step_delay,
                long.initial_instances,
                long.linear_increase,
                long.max_wait,
                long.new_instances
            ),
            (0.5, 2, 3, 7.0, 4)
        );
        assert_eq!(long.pre_kill_hook, Some(PathBuf::from("/bin/hook")));
        assert_eq!(long.syslog_socket, PathBuf::from("/dev/null"));
        assert_eq!(
            (long.log_format.as_str(), long.log_level.as_str()),
            ("%(message)s", "info")
        );
        assert_eq!(
            long.marathon_auth_credential_file,
            Some(PathBuf::from("/c"))
        );
        assert_eq!(long.auth_credentials.as_deref(), Some("u:p"));
        assert_eq!(long.dcos_auth_credentials.as_deref(), Some("{}"));
        assert_eq!(long.marathon_ca_cert, Some(PathBuf::from("/ca.pem")));

        let short = ZddArgs::try_parse_from([
            "zdd",
            "-m",
            "http://m:8080",
            "-l",
            "http://lb:9090",
            "-j",
            "a.json",
            "-d",
            "-f",
            "-s",
            "2",
            "-i",
            "3",
            "-r",
            "-w",
            "9",
            "-n",
            "1",
            "-c",
            "-p",
        ])
        .unwrap();
        assert_eq!(short.marathon, ["http://m:8080"]);
        assert_eq!(short.marathon_lb, ["http://lb:9090"]);
        assert_eq!(short.json, Some(PathBuf::from("a.json")));
        assert!(
            short.dry_run
                && short.force
                && short.resume
                && short.complete_cur
                && short.complete_prev
        );
        assert_eq!(
            (
                short.step_delay,
                short.initial_instances,
                short.max_wait,
                short.new_instances
            ),
            (2.0, 3, 9.0, 1)
        );
    }
}
