//! The `marathon-lb` binary.
//!
//! Its only `unsafe` is [`one_malloc_arena`] (one glibc call at start).

#![deny(unsafe_code)]

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser as _;
use marathon_lb::cli::{Args, PluginTool, Tool};
use marathon_lb::settings::{Settings, plugin_cache_dir};
use marathon_lb::{daemon, logging, longhelp, oneshot, tools, zdd};

fn main() -> ExitCode {
    one_malloc_arena();
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

/// One glibc malloc arena for all threads, unless the operator chose
/// (`MALLOC_ARENA_MAX`, `GLIBC_TUNABLES`). glibc gives a thread that
/// allocates while another holds an arena an arena of its own, and memory
/// freed into one arena is not reused by another: with the helper threads
/// of parse, plugin and render, the peak RSS of a one-shot run at 10,000
/// apps was 80 or 91–97 MB depending on which thread was still alive when
/// (76–79 MB with one arena; docs/performance.md, session 6).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn one_malloc_arena() {
    let env = |name| std::env::var_os(name).unwrap_or_default();
    if !env("MALLOC_ARENA_MAX").is_empty()
        || env("GLIBC_TUNABLES")
            .to_string_lossy()
            .contains("malloc.arena_max")
    {
        return;
    }
    /// `M_ARENA_MAX` of glibc's `<malloc.h>`.
    const M_ARENA_MAX: std::ffi::c_int = -8;
    unsafe extern "C" {
        fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
    // SAFETY: mallopt only sets a malloc parameter (it returns 0 if it
    // refuses, which leaves the default); called before any thread starts.
    unsafe {
        mallopt(M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}

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
