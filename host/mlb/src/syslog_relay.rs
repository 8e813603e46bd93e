//! `marathon-lb syslogd SOCKET`: a minimal syslog receiver that prints every
//! datagram it gets on a Unix socket as one line on stdout. The container's
//! `run` starts it when `HAPROXY_SYSLOGD` is set, so HAProxy's `log /dev/log`
//! lines reach the container's log (marathon-lb's image ran a syslogd for
//! this; this one needs no extra package).
//!
//! It stops when its parent (the entrypoint, then marathon-lb) is gone, so it
//! never outlives the container's main process.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

/// Why the relay could not run.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The socket cannot be created.
    #[error("cannot listen on {path}: {error}")]
    Bind {
        /// The socket path.
        path: String,
        /// The cause.
        error: io::Error,
    },
}

/// One received datagram as a printable line: trailing newlines and NULs
/// removed, other control characters shown as `\xNN` so one datagram is
/// always one line.
pub fn line(datagram: &[u8]) -> String {
    let text = String::from_utf8_lossy(datagram);
    let text = text.trim_end_matches(['\n', '\r', '\0']);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Listen on `path` (replacing a stale socket; mode 666 so HAProxy's
/// workers can write) and print each datagram on stdout until the parent
/// process exits.
pub fn run(path: &Path) -> Result<(), RelayError> {
    let bind_error = |error| RelayError::Bind {
        path: path.display().to_string(),
        error,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(bind_error)?;
    }
    let _ = std::fs::remove_file(path);
    let socket = UnixDatagram::bind(path).map_err(bind_error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(bind_error)?;
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(bind_error)?;
    let parent = std::os::unix::process::parent_id();
    let mut buf = vec![0u8; 64 * 1024];
    while std::os::unix::process::parent_id() == parent {
        match socket.recv(&mut buf) {
            Ok(n) => {
                let mut out = io::stdout().lock();
                if writeln!(out, "{}", line(&buf[..n]))
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::error!(error = %e, "syslog relay stopped");
                break;
            }
        }
    }
    let _ = std::fs::remove_file(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_datagram_is_one_line() {
        assert_eq!(
            line(b"<134>Dec  7 13:00:00 haproxy[7]: 127.0.0.1 GET /\n\0"),
            "<134>Dec  7 13:00:00 haproxy[7]: 127.0.0.1 GET /"
        );
        assert_eq!(line(b"a\nb\tc\n"), "a\\x0ab\\x09c");
    }
}
