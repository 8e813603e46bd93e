//! The `marathon-lb` binary.
//!
//! Its only `unsafe` is in `allocator::tune` (mimalloc's options, set at
//! start).

#![deny(unsafe_code)]

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser as _;
use marathon_lb::cli::{Args, PluginTool, Tool};
use marathon_lb::settings::{Settings, plugin_cache_dir};
use marathon_lb::{daemon, logging, longhelp, oneshot, tools, zdd};

fn main() -> ExitCode {
    allocator::tune();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(zdd_args) = zdd::invoked(&argv) {
        return zdd::main(zdd_args);
    }
    let args = match Args::try_parse_from(argv) {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // One line naming the flag ("error: invalid value 'x' for
            // '--plugin <…>': why"), not clap's usage block.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("marathon-lb: {first} (see --help)");
            return ExitCode::from(2);
        }
    };
    if args.longhelp {
        print!("{}", longhelp::text());
        return ExitCode::SUCCESS;
    }
    // The tools print a report; the controller's DEBUG default would bury it.
    let level = if args.tool.is_some() && args.log_level == "DEBUG" {
        "INFO"
    } else {
        args.log_level.as_str()
    };
    if let Err(e) = logging::init(level, &args.log_format, &args.syslog_socket) {
        eprintln!("marathon-lb: {e}");
        return ExitCode::from(2);
    }
    match &args.tool {
        Some(Tool::Plugin(tool)) => return run_tool(&args, tool),
        Some(Tool::Syslogd { socket }) => {
            return match marathon_lb::syslog_relay::run(socket) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("marathon-lb syslogd: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The chain on one line, each cause once (typed errors show
            // their cause and also expose it as `source()`).
            tracing::error!("{}", mlb_marathon::chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// The allocator: mimalloc, tuned to give memory back at once.
///
/// glibc's malloc spent ~18 % of a 10,000-app one-shot run in `malloc`,
/// `free` and their consolidation, and gave every thread that allocates
/// while another holds an arena an arena of its own (the peak RSS was
/// bimodal, 77 or 91–97 MB; 77 MB with one arena). mimalloc with its
/// defaults is ~35 % faster there but holds freed memory for a while (peak
/// RSS 108–125 MB); purging at once (set here) with arenas committed on
/// demand (compiled in: `.cargo/config.toml`, since the first arena is
/// reserved before `main` runs) it is as fast and peaks at 73 MB
/// (docs/performance.md, session 6). An operator's own
/// `MIMALLOC_PURGE_DELAY` / `MIMALLOC_ARENA_EAGER_COMMIT` are kept.
mod allocator {
    #[global_allocator]
    static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

    /// `mi_option_purge_delay` of the mimalloc (v3) that `libmimalloc-sys`
    /// builds (`mimalloc.h`, `mi_option_e`; the crate exports no constant).
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

    /// Set the options, before the work allocates anything large.
    #[allow(unsafe_code)]
    pub(super) fn tune() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: mi_option_set stores a number in mimalloc's option
            // table; it is not thread-safe, and no other thread exists yet
            // (called first thing in main).
            unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
        }
    }
}

/// `marathon-lb plugin check|list`.
fn run_tool(args: &Args, tool: &PluginTool) -> ExitCode {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let cache = plugin_cache_dir(args.plugin_cache_dir.as_deref(), &env);
    let mut out = String::new();
    let result = match tool {
        PluginTool::Check { plugin, apps } => {
            tools::check(plugin, apps.as_deref(), cache.as_deref(), &mut out)
        }
        PluginTool::List => tools::list(&args.plugins, cache.as_deref(), &mut out).map(|()| true),
    };
    print!("{out}");
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("marathon-lb: {e}");
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
    if args.sse || args.poll_interval.is_some() {
        let daemon = daemon::DaemonSettings::from_args(&args);
        runtime.block_on(daemon::run(settings, daemon))?;
    } else {
        runtime.block_on(oneshot::run(settings))?;
    }
    Ok(())
}
