//! Helpers: a simulator on the fixture, a JSON client and an SSE reader that keeps Marathon's framing
//! visible.

use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use marathon_sim::{SimConfig, SimHandle};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;
use tokio::time::{Instant, timeout_at};

pub const FIXTURE: &str = include_str!("../fixtures/apps.json");

/// A simulator serving the fixture, with a 200 ms keep-alive.
pub async fn sim() -> SimHandle {
    sim_with(|c| c).await
}

pub async fn sim_with(f: impl FnOnce(SimConfig) -> SimConfig) -> SimHandle {
    let doc: Value = serde_json::from_str(FIXTURE).expect("fixture");
    let config = SimConfig {
        keepalive: Duration::from_millis(200),
        ..SimConfig::default()
    }
    .with_apps_json(doc)
    .expect("apps");
    marathon_sim::start(f(config)).await.expect("start")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub async fn get_json(url: &str) -> (StatusCode, Value) {
    let r = client().get(url).send().await.expect("send");
    let status = r.status();
    (status, r.json().await.expect("json body"))
}

pub async fn post(url: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = client().post(url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("send");
    let status = r.status();
    (status, r.json().await.expect("json body"))
}

pub async fn put(url: &str, body: Value) -> (StatusCode, Value) {
    let r = client().put(url).json(&body).send().await.expect("send");
    let status = r.status();
    (status, r.json().await.expect("json body"))
}

pub async fn delete(url: &str) -> (StatusCode, Value) {
    let r = client().delete(url).send().await.expect("send");
    let status = r.status();
    (status, r.json().await.expect("json body"))
}

/// `GET http://127.0.0.1:port/`'s body.
pub async fn task_answer(port: &Value) -> String {
    let port = port.as_u64().expect("port");
    client()
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .expect("task answers")
        .text()
        .await
        .expect("body")
}

/// `GET /v2/apps{id}`'s app.
pub async fn app(base: &str, id: &str) -> Value {
    get_json(&format!("{base}/v2/apps{id}")).await.1["app"].clone()
}

/// Polls until the app's deployment is over; returns the app.
pub async fn settled(base: &str, id: &str) -> Value {
    for _ in 0..200 {
        let a = app(base, id).await;
        if a["deployments"] == serde_json::json!([]) {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deployment of {id} did not finish");
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>;

/// One parsed event: its type, payload and the exact frame text.
#[derive(Debug)]
pub struct Event {
    pub event_type: String,
    pub data: Value,
    pub raw: String,
}

/// Reads `/v2/events` frames, counting bare-CRLF keep-alives.
pub struct Sse {
    stream: ByteStream,
    buf: Vec<u8>,
    pub keepalives: usize,
    pub content_type: String,
}

impl Sse {
    /// Opens `/v2/events?<query>` with the exact Accept header Marathon requires.
    pub async fn open(base: &str, query: &str) -> Self {
        Self::open_with(client().get(format!("{base}/v2/events?{query}"))).await
    }

    pub async fn open_with(req: reqwest::RequestBuilder) -> Self {
        let r = req
            .header(ACCEPT, "text/event-stream")
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::OK);
        let content_type = r
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Self {
            stream: Box::pin(r.bytes_stream()),
            buf: Vec::new(),
            keepalives: 0,
            content_type,
        }
    }

    fn try_parse(&mut self) -> Option<Event> {
        while self.buf.starts_with(b"\r\n") {
            self.buf.drain(..2);
            self.keepalives += 1;
        }
        let pos = self.buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        let frame: Vec<u8> = self.buf.drain(..pos + 4).collect();
        let raw = String::from_utf8(frame).expect("utf-8 frame");
        let body = &raw[..pos];
        let (ev, data) = body.split_once("\r\n").expect("two lines");
        let event_type = ev.strip_prefix("event: ").expect("event line").to_string();
        let data = data.strip_prefix("data: ").expect("data line");
        assert!(
            !data.contains('\n') && !data.contains('\r'),
            "data is one line"
        );
        let data: Value = serde_json::from_str(data).expect("data is JSON");
        assert_eq!(data["eventType"], event_type.as_str());
        Some(Event {
            event_type,
            data,
            raw,
        })
    }

    /// Reads more bytes: `Some(true)` got data, `Some(false)` EOF or error, `None` deadline passed.
    async fn fill(&mut self, deadline: Instant) -> Option<bool> {
        match timeout_at(deadline, self.stream.next()).await {
            Err(_) => None,
            Ok(Some(Ok(b))) => {
                self.buf.extend_from_slice(&b);
                Some(true)
            }
            Ok(_) => Some(false),
        }
    }

    /// The next event within `within`, or `None`.
    pub async fn next_within(&mut self, within: Duration) -> Option<Event> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(e) = self.try_parse() {
                return Some(e);
            }
            if self.fill(deadline).await != Some(true) {
                return None;
            }
        }
    }

    /// The next event, which must be of type `ty`.
    pub async fn expect(&mut self, ty: &str) -> Value {
        let e = self
            .next_within(Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("no {ty} event"));
        assert_eq!(e.event_type, ty, "unexpected event {}", e.raw);
        e.data
    }

    /// Waits `d`, collecting everything; returns the events seen (keep-alives are counted).
    pub async fn drain_for(&mut self, d: Duration) -> Vec<Event> {
        let deadline = Instant::now() + d;
        let mut out = Vec::new();
        loop {
            while let Some(e) = self.try_parse() {
                out.push(e);
            }
            if self.fill(deadline).await != Some(true) {
                return out;
            }
        }
    }

    /// Whether nothing at all (not even a keep-alive byte) arrives within `d`.
    pub async fn silent_for(&mut self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        self.buf.is_empty() && self.fill(deadline).await.is_none()
    }

    /// Whether the stream ends (EOF) within `d`.
    pub async fn ends_within(&mut self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        loop {
            match self.fill(deadline).await {
                Some(true) => continue,
                Some(false) => return true,
                None => return false,
            }
        }
    }
}
