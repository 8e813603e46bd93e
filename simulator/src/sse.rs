//! `GET /v2/events`: the server-sent event stream, as Marathon's Jetty `EventSourceServlet` serves it.
//!
//! * The request must carry exactly `Accept: text/event-stream`, else 405 with an HTML page.
//! * 200 with `text/event-stream;charset=utf-8` and `Connection: close`; headers go out at once.
//! * Each event is `event: <type>\r\ndata: <json>\r\n\r\n`; no `id:` or `retry:`.
//! * Keep-alive: a bare `\r\n` (`\r`, flush, `\n`, flush) every period on a fixed schedule from the moment
//!   the stream opened, not reset by events.
//! * `event_type=` (repeatable) keeps only events whose `eventType` equals one of the values;
//!   `plan-format=light` strips `plan.original`/`plan.target` from deployment events.
//! * The client is subscribed before `event_stream_attached` is published, so it gets its own (filters
//!   permitting); on disconnect the others get `event_stream_detached`.
//! * A client more than [`EVENT_BUFFER`](crate::state::EVENT_BUFFER) events behind is disconnected (1.8+).
//!
//! Deviation: hyper frames the unbounded body with chunked transfer encoding, where Jetty writes a raw
//! body delimited by the connection close. HTTP clients see the same bytes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;

use crate::events::{self, SimEvent};
use crate::query::Query;
use crate::state::{Control, Sim};

const NOT_SSE_HTML: &str = "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=ISO-8859-1\"/>\n\
<title>Error 405 HTTP method GET is not supported by this URL</title>\n</head>\n<body><h2>HTTP ERROR 405</h2>\n\
<p>Problem accessing /v2/events. Reason:\n<pre>    HTTP method GET is not supported by this URL</pre></p>\n</body>\n</html>\n";

type Chunk = Result<Bytes, Infallible>;

/// The handler of `GET /v2/events`.
pub async fn events(
    State(sim): State<Sim>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let exact = headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.as_bytes() == b"text/event-stream");
    if !exact {
        let ct = HeaderValue::from_static("text/html;charset=iso-8859-1");
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::CONTENT_TYPE, ct)],
            NOT_SSE_HTML,
        )
            .into_response();
    }
    let q = Query::parse(raw.as_deref());
    let types: Vec<String> = q.all("event_type").map(str::to_string).collect();
    let filter = (!types.is_empty()).then_some(types);
    let light = q.first("plan-format") == Some("light");

    let events = sim.subscribe();
    let control = sim.control();
    let start_gen = control.borrow().disconnect_gen;
    let remote = peer.ip().to_string();
    let _ = sim.publish(events::stream(true, &remote));

    let (tx, rx) = mpsc::channel::<Chunk>(16);
    let client = Client {
        sim,
        events,
        control,
        start_gen,
        filter,
        light,
        tx,
        remote,
    };
    tokio::spawn(client.run());
    let ct = HeaderValue::from_static("text/event-stream;charset=utf-8");
    let headers = [
        (header::CONTENT_TYPE, ct),
        (header::CONNECTION, HeaderValue::from_static("close")),
    ];
    (
        StatusCode::OK,
        headers,
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response()
}

/// One open stream: forwards events and keep-alives to the response body.
struct Client {
    sim: Sim,
    events: broadcast::Receiver<Arc<SimEvent>>,
    control: watch::Receiver<Control>,
    start_gen: u64,
    filter: Option<Vec<String>>,
    light: bool,
    tx: mpsc::Sender<Chunk>,
    remote: String,
}

impl Client {
    fn wants(&self, ev: &SimEvent) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| f.contains(&ev.event_type))
    }

    async fn send(&self, bytes: impl Into<Bytes>) -> bool {
        self.tx.send(Ok(bytes.into())).await.is_ok()
    }

    async fn run(mut self) {
        let period = self.sim.keepalive();
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let shutdown = loop {
            let ctl = self.control.borrow_and_update().clone();
            if ctl.shutdown || ctl.disconnect_gen != self.start_gen {
                break ctl.shutdown;
            }
            if ctl.stalled {
                tokio::select! {
                    _ = self.tx.closed() => break false,
                    r = self.control.changed() => if r.is_err() { break true },
                }
                continue;
            }
            tokio::select! {
                biased;
                _ = self.tx.closed() => break false,
                r = self.control.changed() => if r.is_err() { break true },
                _ = ticker.tick() => {
                    if !(self.send(&b"\r"[..]).await && self.send(&b"\n"[..]).await) {
                        break false;
                    }
                }
                ev = self.events.recv() => match ev {
                    Ok(ev) => {
                        if self.wants(&ev) && !self.send(ev.frame(self.light)).await {
                            break false;
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(remote = %self.remote, missed = n, "slow event-stream client disconnected");
                        break false;
                    }
                    Err(RecvError::Closed) => break true,
                },
            }
        };
        drop(self.events);
        drop(self.tx);
        if !shutdown {
            let _ = self.sim.publish(events::stream(false, &self.remote));
        }
    }
}
