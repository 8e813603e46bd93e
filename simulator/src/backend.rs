//! Real HTTP servers behind simulated tasks: each task of an app deployed
//! through the REST write API listens on its own loopback port, so HAProxy
//! routes real requests to it; and the probes Marathon's health checks run
//! against them.
//!
//! A task server answers every request with `200` and `<appId> <taskId>`
//! (`500` for a failing version);
//! `Connection: close`. Killing the task stops accepting; requests already
//! being answered complete.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A listening task; dropping it stops the listener.
#[derive(Debug)]
pub struct TaskServer {
    accept: JoinHandle<()>,
}

impl Drop for TaskServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Starts a server answering `label` (or 500 when `failing`) on a free
/// loopback port. Must be called inside a tokio runtime.
pub fn serve(label: &str, failing: bool) -> std::io::Result<(u16, TaskServer)> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let port = std_listener.local_addr()?.port();
    let listener = TcpListener::from_std(std_listener)?;
    let body = format!("{label}\n");
    let accept = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(answer(stream, body.clone(), failing));
                }
                // A connection aborted before it was accepted, or a passing
                // shortage of descriptors or buffers, must not end the task's
                // server (it would reset every connection still queued).
                Err(e) => {
                    tracing::warn!(port, error = %e, "task server: accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    });
    Ok((port, TaskServer { accept }))
}

async fn answer(mut stream: TcpStream, body: String, failing: bool) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 && buf.len() < 16 * 1024 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    }
    let status = if failing {
        "500 Internal Server Error"
    } else {
        "200 OK"
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// One health probe: `GET path` answered 2xx/3xx (HTTP checks) or a
/// connection accepted (`tcp`), within 1 s.
pub async fn probe(port: u16, path: Option<&str>) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let Some(path) = path else {
            return Some(true);
        };
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.ok()?;
        let status: u16 = std::str::from_utf8(&head[9..12]).ok()?.parse().ok()?;
        Some((200..400).contains(&status))
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
