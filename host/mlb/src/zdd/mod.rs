//! `marathon-lb zdd`: zero-downtime blue/green and canary deployments
//! through marathon-lb, a drop-in for marathon-lb's `zdd.py` (same flags,
//! labels, app JSON, Marathon writes and exit codes) that is safe to run in
//! production: preflight checks, timeouts everywhere, `--deadline`, steps
//! gated on health in Marathon *and* on every marathon-lb instance, and a
//! rollback when anything fails. See `docs/zdd.md`.
//!
//! # Layout
//! - [`cli`]: the flags.
//! - [`error`]: failures and their exit codes.
//! - [`labels`]: bookkeeping (colour, ports, labels, timestamps, scale
//!   arithmetic), pure.
//! - [`pyjson`]: the app JSON printed exactly as zdd.py prints it.
//! - [`stats`]: the HAProxy stats CSV by header name, pure.
//! - [`step`]: one step of the swap (wait / kill / scale / complete), pure.
//! - [`api`]: the Marathon reads and writes.
//! - [`lbs`]: the marathon-lb instances (DNS expansion, PIDs, stats).
//! - [`preflight`]: checks before any write.
//! - [`swap`]: the swap loop; [`rollback`]: undoing a deployment.
//! - [`progress`]: state-change lines on stderr.
//! - [`run`]: one run, wiring the above.

pub mod api;
pub mod cli;
pub mod error;
pub mod labels;
pub mod lbs;
pub mod preflight;
pub mod progress;
pub mod pyjson;
pub mod rollback;
pub mod run;
pub mod stats;
pub mod step;
pub mod swap;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use cli::ZddArgs;
use swap::Ended;

/// Names under which the binary behaves as zdd (symlinks for scripts that
/// call marathon-lb's `zdd.py` / `bluegreen_deploy.py`).
const ALIASES: &[&str] = &["zdd", "zdd.py", "bluegreen_deploy", "bluegreen_deploy.py"];

/// The zdd arguments in `argv`, if it asks for zdd: `marathon-lb zdd ...`,
/// or the binary called by one of the [`ALIASES`].
pub fn invoked(argv: &[OsString]) -> Option<Vec<OsString>> {
    let name = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str());
    if name.is_some_and(|n| ALIASES.contains(&n)) {
        return Some(argv.to_vec());
    }
    (argv.get(1).and_then(|a| a.to_str()) == Some("zdd")).then(|| argv[1..].to_vec())
}

/// `--longhelp`.
pub const LONGHELP: &str = include_str!("longhelp.txt");

/// Run zdd with `argv` (program name first); the exit status.
pub fn main(argv: Vec<OsString>) -> ExitCode {
    let args = match ZddArgs::try_parse_from(argv) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    if args.longhelp {
        print!("{LONGHELP}");
        return ExitCode::SUCCESS;
    }
    for (missing, flag) in [
        (args.marathon.is_empty(), "--marathon/-m"),
        (args.marathon_lb.is_empty(), "--marathon-lb/-l"),
        (args.json.is_none(), "--json/-j"),
    ] {
        if missing {
            eprintln!("marathon-lb zdd: error: argument {flag} is required");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = crate::logging::init(&args.log_level, &args.log_format, &args.syslog_socket) {
        eprintln!("marathon-lb zdd: {e}");
        return ExitCode::from(3);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("marathon-lb zdd: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let mut stdout = std::io::stdout();
    match runtime.block_on(run::run(&args, &mut stdout)) {
        Ok(Ended::Done) => ExitCode::SUCCESS,
        Ok(Ended::Declined) => ExitCode::from(1),
        Err(e) => {
            tracing::error!(target: "zdd", exit_code = e.exit_code(), "{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
