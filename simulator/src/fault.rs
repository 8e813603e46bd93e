//! Faults on demand for the Marathon endpoints (set with `POST /_sim/fault`).
//!
//! `{"mode": "500"|"502"|"503"|"stall"|"truncate"|"reset"|"non-json"|"redirect"|"none",
//!   "target": "http://other:8080", "status": 307, "paths": ["/v2/apps"], "count": 2}`
//!
//! * `500`: a JSON 500 `{"message": …}`. `502`/`503`: the HTML "no leader" page of an election.
//! * `stall`: the request hangs until the fault is changed (then it is answered normally).
//! * `truncate`: a complete HTTP response whose body is the first half of the real one (invalid JSON).
//!   `reset`: the real `Content-Length`, half the body, then the connection is dropped. On `/v2/events`
//!   both give a 200 stream that ends at once.
//! * `non-json`: 200 with an HTML body.
//! * `redirect`: to `target` + the same path and query; 302 for `/v2/events` (Marathon 1.7+ standby),
//!   307 elsewhere, unless `status` says otherwise.
//!
//! `paths` limits the fault to requests whose path starts with one of the prefixes (default: every
//! Marathon endpoint); `count` clears the fault after that many requests.

use std::io;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::state::Sim;

/// How Marathon endpoints misbehave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultMode {
    #[default]
    #[serde(rename = "none")]
    None,
    #[serde(rename = "500")]
    Error500,
    #[serde(rename = "502")]
    NoLeader502,
    #[serde(rename = "503")]
    NoLeader503,
    #[serde(rename = "stall")]
    Stall,
    #[serde(rename = "truncate")]
    Truncate,
    #[serde(rename = "reset")]
    Reset,
    #[serde(rename = "non-json")]
    NonJson,
    #[serde(rename = "redirect")]
    Redirect,
}

/// The current fault setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub mode: FaultMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl Fault {
    /// Checks the setting: `redirect` needs a `target`, `status` must be a 3xx, `count` must not be 0.
    pub fn validate(&self) -> Result<(), String> {
        if self.mode == FaultMode::Redirect && self.target.as_deref().is_none_or(str::is_empty) {
            return Err("mode \"redirect\" needs a \"target\" URL".into());
        }
        if self.status.is_some_and(|s| !(300..400).contains(&s)) {
            return Err("\"status\" must be a redirect status (3xx)".into());
        }
        if self.count == Some(0) {
            return Err("\"count\" must be at least 1".into());
        }
        Ok(())
    }

    /// Whether this fault hits a request for `path`.
    pub fn applies_to(&self, path: &str) -> bool {
        self.mode != FaultMode::None
            && (self.paths.is_empty() || self.paths.iter().any(|p| path.starts_with(p)))
    }
}

const LEADER: HeaderName = HeaderName::from_static("x-marathon-leader");

const NO_LEADER_HTML: &str = "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=utf-8\"/>\n\
<title>Error 503 Could not determine the current leader</title>\n</head>\n<body><h2>HTTP ERROR 503</h2>\n\
<p>Problem accessing /. Reason:\n<pre>    Could not determine the current leader</pre></p>\n</body>\n</html>\n";

const NON_JSON_HTML: &str = "<!DOCTYPE html>\n<html><head><title>Marathon</title></head>\n\
<body><p>This is not the JSON you are looking for.</p></body></html>\n";

fn html(status: StatusCode, body: &'static str) -> Response {
    let ct = HeaderValue::from_static("text/html;charset=utf-8");
    (status, [(header::CONTENT_TYPE, ct)], body).into_response()
}

/// Middleware: applies the current fault, if any, to a Marathon request.
pub async fn apply(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let fault = if path.starts_with("/_sim/") {
        None
    } else {
        sim.take_fault(&path)
    };
    let Some(fault) = fault else {
        return next.run(req).await;
    };
    let is_events = path == "/v2/events";
    match fault.mode {
        FaultMode::None => next.run(req).await,
        FaultMode::Error500 => {
            let body = json!({"message": "simulated internal server error"});
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
        FaultMode::NoLeader502 => html(StatusCode::BAD_GATEWAY, NO_LEADER_HTML),
        FaultMode::NoLeader503 => html(StatusCode::SERVICE_UNAVAILABLE, NO_LEADER_HTML),
        FaultMode::NonJson => html(StatusCode::OK, NON_JSON_HTML),
        FaultMode::Stall => {
            wait_while_stalled(&sim).await;
            next.run(req).await
        }
        FaultMode::Truncate | FaultMode::Reset if is_events => {
            let ct = HeaderValue::from_static("text/event-stream;charset=utf-8");
            (StatusCode::OK, [(header::CONTENT_TYPE, ct)], "").into_response()
        }
        FaultMode::Truncate | FaultMode::Reset => {
            let (mut parts, body) = next.run(req).await.into_parts();
            let full = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let half = full.slice(..full.len() / 2);
            parts.headers.remove(header::CONTENT_LENGTH);
            if fault.mode == FaultMode::Truncate {
                return Response::from_parts(parts, Body::from(half));
            }
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(full.len()));
            // Let the headers and the first half go out before the connection is dropped.
            let cut = async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err::<Bytes, _>(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "simulated reset",
                ))
            };
            let body = stream::once(async { Ok(half) }).chain(stream::once(cut));
            Response::from_parts(parts, Body::from_stream(body))
        }
        FaultMode::Redirect => {
            let target = fault.target.as_deref().unwrap_or("").trim_end_matches('/');
            let pq = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let default = if is_events {
                StatusCode::FOUND
            } else {
                StatusCode::TEMPORARY_REDIRECT
            };
            let status = fault
                .status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(default);
            let location = HeaderValue::from_str(&format!("{target}{pq}"));
            let leader = HeaderValue::from_str(target);
            match (location, leader) {
                (Ok(l), Ok(t)) => (status, [(header::LOCATION, l), (LEADER, t)]).into_response(),
                _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        }
    }
}

/// Waits until the fault is no longer `stall` or the simulator shuts down.
async fn wait_while_stalled(sim: &Sim) {
    let mut fault = sim.fault();
    let mut control = sim.control();
    loop {
        if fault.borrow_and_update().mode != FaultMode::Stall
            || control.borrow_and_update().shutdown
        {
            return;
        }
        tokio::select! {
            r = fault.changed() => if r.is_err() { return },
            r = control.changed() => if r.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let f: Fault = serde_json::from_value(json!({"mode": "redirect", "target": "http://x"}))
            .expect("fault");
        assert_eq!(f.mode, FaultMode::Redirect);
        assert!(f.validate().is_ok());
        let f: Fault = serde_json::from_value(json!({"mode": "redirect"})).expect("fault");
        assert!(f.validate().is_err());
        let f: Fault =
            serde_json::from_value(json!({"mode": "500", "paths": ["/v2/apps"]})).expect("fault");
        assert!(f.applies_to("/v2/apps/x"));
        assert!(!f.applies_to("/v2/events"));
        assert!(serde_json::from_value::<Fault>(json!({"mode": "bogus"})).is_err());
        assert!(!Fault::default().applies_to("/ping"));
    }
}
