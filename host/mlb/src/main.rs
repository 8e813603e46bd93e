//! The `marathon-lb` binary.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use marathon_lb::cli::Args;
use marathon_lb::settings::Settings;
use marathon_lb::{daemon, logging, longhelp, oneshot};

fn main() -> ExitCode {
    let args = Args::parse();
    if args.longhelp {
        print!("{}", longhelp::text());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = logging::init(&args.log_level, &args.log_format, &args.syslog_socket) {
        eprintln!("marathon-lb: {e}");
        return ExitCode::from(2);
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let settings = Settings::from_args(&args, &std::env::vars().collect::<Vec<_>>())
        .context("invalid arguments")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    if args.sse {
        let daemon = daemon::DaemonSettings::from_args(&args);
        runtime.block_on(daemon::run(settings, daemon))?;
    } else {
        runtime.block_on(oneshot::run(settings))?;
    }
    Ok(())
}
