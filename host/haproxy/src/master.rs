//! The HAProxy master CLI (`-S <socket>`): one command per connection, and
//! the parsed answer of `show proc`.
//!
//! The master CLI is not interactive here: the command is written and the
//! write side shut down (HAProxy 2.6 answers only after that half-close),
//! HAProxy answers and closes the connection. `@1 <command>` forwards a command to
//! the current worker (relative PID 1); `reload` makes the master re-execute
//! itself and closes the connection without an answer.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// How long one master CLI exchange may take by default.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(5);

/// Send `command` to the master socket and read the whole answer.
///
/// Fails with [`io::ErrorKind::ConnectionRefused`] (or `NotFound`) while no
/// master listens — which includes the moment of a reload, when the master
/// re-executes itself — and with [`io::ErrorKind::TimedOut`] after `timeout`.
pub async fn command(socket: &Path, command: &str, timeout: Duration) -> io::Result<String> {
    let exchange = async {
        let mut stream = UnixStream::connect(socket).await?;
        stream.write_all(command.as_bytes()).await?;
        stream.write_all(b"\n").await?;
        // The master answers once the client has finished writing: without
        // the half-close it waits for more commands.
        stream.shutdown().await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, io::Error>(String::from_utf8_lossy(&answer).into_owned())
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer to `{command}` within {timeout:?}"),
        )),
    }
}

/// One HAProxy process as listed by `show proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// Its PID.
    pub pid: u32,
    /// For a worker: how many reloads it has survived (0 = the newest).
    pub reloads: u64,
    /// Uptime as HAProxy prints it (`0d00h00m05s`).
    pub uptime: String,
}

/// The answer of `show proc` on the master CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processes {
    /// The master's PID (the process the supervisor started; it keeps its
    /// PID across reloads because it re-executes itself).
    pub master_pid: u32,
    /// Reloads of the master since it started, failed ones included.
    pub reloads: u64,
    /// Failed reloads (`[failed: N]`; HAProxy 2.6 prints it, older ones do
    /// not).
    pub failed_reloads: Option<u64>,
    /// The current worker(s) (`# workers`).
    pub workers: Vec<Process>,
    /// Workers of earlier generations still finishing their connections
    /// (`# old workers`).
    pub old_workers: Vec<Process>,
}

impl Processes {
    /// The PID of the current worker (the one with the fewest reloads).
    pub fn current_worker(&self) -> Option<u32> {
        self.workers.iter().min_by_key(|p| p.reloads).map(|p| p.pid)
    }

    /// Every worker PID, current and old.
    pub fn all_workers(&self) -> impl Iterator<Item = u32> + '_ {
        self.workers
            .iter()
            .chain(self.old_workers.iter())
            .map(|p| p.pid)
    }
}

/// Parse the answer of `show proc` (HAProxy 2.x layout):
///
/// ```text
/// #<PID>          <type>          <reloads>       <uptime>        <version>
/// 28818           master          2 [failed: 1]   0d00h00m05s     2.6.12
/// # workers
/// 28873           worker          0               0d00h00m02s     2.6.12
/// # old workers
/// 28821           worker          1               0d00h00m04s     2.6.12
/// # programs
/// ```
///
/// `None` when there is no master line (e.g. an error message).
pub fn parse_show_proc(text: &str) -> Option<Processes> {
    #[derive(PartialEq)]
    enum Section {
        Head,
        Workers,
        OldWorkers,
        Other,
    }
    let mut section = Section::Head;
    let mut master: Option<(u32, u64, Option<u64>)> = None;
    let mut workers = Vec::new();
    let mut old_workers = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('#') {
            section = match header.trim() {
                "workers" => Section::Workers,
                "old workers" => Section::OldWorkers,
                h if h.starts_with("<PID>") => Section::Head,
                _ => Section::Other,
            };
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(pid), Some(kind), Some(reloads)) = (
            fields.first().and_then(|f| f.parse::<u32>().ok()),
            fields.get(1).copied(),
            fields.get(2).and_then(|f| f.parse::<u64>().ok()),
        ) else {
            continue;
        };
        match (kind, &section) {
            ("master", _) => {
                let failed = match (fields.get(3), fields.get(4)) {
                    (Some(&"[failed:"), Some(n)) => n.trim_end_matches(']').parse().ok(),
                    _ => None,
                };
                master = Some((pid, reloads, failed));
            }
            ("worker", Section::Workers | Section::OldWorkers) => {
                // The uptime is the first field after the reload count.
                let uptime = fields.get(3).copied().unwrap_or_default().to_owned();
                let process = Process {
                    pid,
                    reloads,
                    uptime,
                };
                if section == Section::Workers {
                    workers.push(process);
                } else {
                    old_workers.push(process);
                }
            }
            _ => {}
        }
    }
    let (master_pid, reloads, failed_reloads) = master?;
    Some(Processes {
        master_pid,
        reloads,
        failed_reloads,
        workers,
        old_workers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER_RELOADS: &str = "\
#<PID>          <type>          <reloads>       <uptime>        <version>      
30548           master          2 [failed: 0]   0d00h00m03s     2.6.12-1+deb12u4
# workers
30571           worker          0               0d00h00m01s     2.6.12-1+deb12u4
# old workers
30561           worker          1               0d00h00m02s     2.6.12-1+deb12u4
30551           worker          2               0d00h00m03s     2.6.12-1+deb12u4
# programs

";

    #[test]
    fn parses_master_workers_and_old_workers() {
        let p = parse_show_proc(AFTER_RELOADS).unwrap();
        assert_eq!(p.master_pid, 30548);
        assert_eq!(p.reloads, 2);
        assert_eq!(p.failed_reloads, Some(0));
        assert_eq!(p.current_worker(), Some(30571));
        assert_eq!(p.workers[0].uptime, "0d00h00m01s");
        assert_eq!(
            p.old_workers.iter().map(|w| w.pid).collect::<Vec<_>>(),
            [30561, 30551]
        );
        assert_eq!(p.all_workers().count(), 3);
    }

    #[test]
    fn parses_a_failed_reload() {
        let text = "\
#<PID>          <type>          <reloads>       <uptime>        <version>
28818           master          2 [failed: 1]   0d00h00m05s     2.6.12-1+deb12u4
# workers
28873           worker          1               0d00h00m02s     2.6.12-1+deb12u4
# programs
";
        let p = parse_show_proc(text).unwrap();
        assert_eq!((p.reloads, p.failed_reloads), (2, Some(1)));
        assert_eq!(p.current_worker(), Some(28873));
        assert!(p.old_workers.is_empty());
    }

    #[test]
    fn older_layout_without_failed_count() {
        let text = "#<PID> <type> <relative PID> <reloads> <uptime>\n\
                    100 master 0 3 0d00h01m00s\n# workers\n";
        // The 2.0 layout has a relative PID column; the master line still
        // parses (reloads read from the third column), workers are absent.
        let p = parse_show_proc(text).unwrap();
        assert_eq!(p.master_pid, 100);
        assert_eq!(p.failed_reloads, None);
        assert!(p.workers.is_empty());
    }

    #[test]
    fn rejects_other_answers() {
        assert_eq!(parse_show_proc("Unknown command.\n"), None);
        assert_eq!(parse_show_proc(""), None);
    }
}
