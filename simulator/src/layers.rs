//! Middleware every Marathon endpoint passes through: the request log and Marathon's response headers.

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::{RequestRecord, Sim};

fn header_str(req: &Request, name: HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Middleware: logs the request for `GET /_sim/requests`.
pub async fn record(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/_sim/") {
        return next.run(req).await;
    }
    let auth = header_str(&req, header::AUTHORIZATION);
    let auth_scheme = auth
        .as_deref()
        .map(|a| a.split([' ', '=']).next().unwrap_or_default().to_string());
    sim.record(RequestRecord {
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        auth: auth.is_some(),
        auth_scheme,
        accept: header_str(&req, header::ACCEPT),
        user_agent: header_str(&req, header::USER_AGENT),
    });
    tracing::debug!(method = %req.method(), uri = %req.uri(), "marathon request");
    next.run(req).await
}

/// Middleware: the headers Marathon puts on every response (cache-disabling filter, leader, hardening).
pub async fn marathon_headers(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::EXPIRES, HeaderValue::from_static("0"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_XSS_PROTECTION,
        HeaderValue::from_static("1; mode=block"),
    );
    if let Ok(leader) = HeaderValue::from_str(&format!("http://{}", sim.leader())) {
        h.entry("x-marathon-leader").or_insert(leader);
    }
    resp
}
