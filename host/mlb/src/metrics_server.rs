//! The `--metrics-address` endpoint: `GET /metrics` in the Prometheus text
//! format, served by hyper (HTTP/1.1) with bounds, so idle or slow clients
//! cannot exhaust file descriptors or CPU.
//!
//! # Bounds
//! * **One request per connection** (no keep-alive) and a **deadline per
//!   connection** ([`Limits::timeout`], default 10 s) covering the request
//!   headers and the answer: an idle or trickling client is closed.
//! * **At most [`Limits::max_connections`] connections** (default 64). When
//!   a new one arrives at the limit, the oldest connection that has not sent
//!   a complete request yet is closed to make room, so a crowd of idle
//!   connections cannot lock out the scraper; if every connection is busy
//!   answering, the new one is closed at once.
//! * **Accept errors** are logged (at most once a minute) and followed by a pause
//!   ([`ACCEPT_BACKOFF`]) instead of an immediate retry: no busy loop. When
//!   the error is a full file-descriptor table (EMFILE/ENFILE) and one of our
//!   connections is idle, the oldest idle one is closed first and the pause
//!   is short ([`EVICT_PAUSE`]), so a crowd of idle clients is cycled through
//!   and the scraper behind them gets its turn.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

use crate::metrics::Metrics;

/// The bounds of the endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Deadline of one connection, from accept to the end of the answer.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Pause after a failed accept.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Accept errors are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// Pause after closing an idle connection to free a file descriptor.
pub const EVICT_PAUSE: Duration = Duration::from_millis(10);

/// An open connection: how to close it (set once its task is spawned), and
/// whether its request arrived.
struct Open {
    abort: Option<AbortHandle>,
    busy: Arc<AtomicBool>,
}

type Table = Arc<Mutex<BTreeMap<u64, Open>>>;

/// Bind `addr` and serve until the task is dropped.
pub async fn serve_on(addr: SocketAddr, metrics: Arc<Metrics>, limits: Limits) {
    match TcpListener::bind(addr).await {
        Ok(listener) => {
            tracing::info!(%addr, "serving controller metrics on /metrics");
            serve(listener, metrics, limits).await;
        }
        Err(e) => tracing::error!(%addr, error = %e, "cannot serve metrics"),
    }
}

/// Serve `/metrics` on `listener` forever.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, limits: Limits) {
    let open: Table = Arc::default();
    let mut next_id = 0u64;
    let mut warned: Option<tokio::time::Instant> = None;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    tracing::warn!(error = %e, "metrics endpoint: accept failed; pausing");
                    warned = Some(tokio::time::Instant::now());
                }
                let out_of_fds = matches!(e.raw_os_error(), Some(23 | 24)); // ENFILE, EMFILE
                let pause = if out_of_fds && evict_oldest_idle(&open) {
                    EVICT_PAUSE
                } else {
                    ACCEPT_BACKOFF
                };
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        if !make_room(&open, limits.max_connections) {
            tracing::debug!("metrics endpoint: every connection is busy; new one closed");
            continue;
        }
        next_id += 1;
        let id = next_id;
        let busy = Arc::new(AtomicBool::new(false));
        track(&open, id, busy.clone(), || {
            tokio::spawn(connection(
                stream,
                metrics.clone(),
                limits.timeout,
                busy,
                Remove(open.clone(), id),
            ))
            .abort_handle()
        });
    }
}

/// Enter connection `id` in the table, then `spawn` its task (which removes
/// the entry when it ends) and record how to abort it. The entry goes in
/// first, so a task that ends at once cannot leave a dead entry behind.
/// Only the accept loop evicts, so nothing evicts between the two steps.
fn track(open: &Table, id: u64, busy: Arc<AtomicBool>, spawn: impl FnOnce() -> AbortHandle) {
    if let Ok(mut table) = open.lock() {
        table.insert(id, Open { abort: None, busy });
    }
    let abort = spawn();
    if let Ok(mut table) = open.lock()
        && let Some(entry) = table.get_mut(&id)
    {
        entry.abort = Some(abort);
    }
}

/// Below the limit, or made so by closing the oldest idle connection.
fn make_room(open: &Table, max: usize) -> bool {
    if open.lock().is_ok_and(|table| table.len() < max) {
        return true;
    }
    evict_oldest_idle(open)
}

/// Close the oldest connection that has not sent its request yet; `false`
/// when there is none.
fn evict_oldest_idle(open: &Table) -> bool {
    let Ok(mut table) = open.lock() else {
        return false;
    };
    let oldest_idle = table
        .iter()
        .find(|(_, c)| !c.busy.load(Ordering::Relaxed))
        .map(|(id, _)| *id);
    match oldest_idle.and_then(|id| table.remove(&id)) {
        Some(evicted) => {
            if let Some(abort) = evicted.abort {
                abort.abort();
            }
            true
        }
        None => false,
    }
}

/// Removes a connection from the table when its task ends (or is aborted).
struct Remove(Table, u64);

impl Drop for Remove {
    fn drop(&mut self) {
        if let Ok(mut table) = self.0.lock() {
            table.remove(&self.1);
        }
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    metrics: Arc<Metrics>,
    timeout: Duration,
    busy: Arc<AtomicBool>,
    _remove: Remove,
) {
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        busy.store(true, Ordering::Relaxed);
        let metrics = metrics.clone();
        async move { Ok::<_, Infallible>(answer(&req, &metrics)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    // Dropping the connection closes the socket.
    let _ = tokio::time::timeout(timeout, conn).await;
}

fn answer(req: &Request<hyper::body::Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, body) = if req.method() == hyper::Method::GET && req.uri().path() == "/metrics" {
        (StatusCode::OK, metrics.render())
    } else {
        (StatusCode::NOT_FOUND, "not found\n".to_owned())
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    use super::*;

    fn get_metrics(addr: SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn a_connection_that_ends_before_it_is_tracked_leaves_no_entry() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _enter = rt.enter();
        let open: Table = Arc::default();
        let busy = Arc::new(AtomicBool::new(true));
        // The task's end (its guard dropped) happens before spawn returns,
        // while the task itself is not finished yet.
        let pending = tokio::spawn(std::future::pending::<()>());
        track(&open, 1, busy, || {
            drop(Remove(open.clone(), 1));
            pending.abort_handle()
        });
        assert!(open.lock().unwrap().is_empty(), "a dead busy entry stayed");
        // A connection still running is tracked and can be evicted once idle.
        let running = tokio::spawn(std::future::pending::<()>());
        let idle = Arc::new(AtomicBool::new(false));
        track(&open, 2, idle, || running.abort_handle());
        assert!(evict_oldest_idle(&open));
        assert!(open.lock().unwrap().is_empty());
        pending.abort();
    }

    #[test]
    fn idle_connections_neither_block_metrics_nor_stay_open() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Limits {
            max_connections: 64,
            timeout: Duration::from_secs(1),
        };
        rt.spawn(serve(listener, Arc::new(Metrics::default()), limits));

        let idle: Vec<TcpStream> = (0..500)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        let answer = get_metrics(addr);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("mlb_reconciles_total"));

        let started = Instant::now();
        for mut s in idle {
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut buf = [0u8; 64];
            match s.read(&mut buf) {
                Ok(0) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                other => panic!("idle connection not closed: {other:?}"),
            }
        }
        println!(
            "500 idle connections all closed {} ms after /metrics answered",
            started.elapsed().as_millis()
        );
        let answer = get_metrics(addr);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}
