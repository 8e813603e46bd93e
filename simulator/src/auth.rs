//! HTTP Basic authentication as Marathon's Jetty security handler does it: it guards every Marathon path
//! (`/ping` and `/v2/events` included) before any Marathon code runs, and answers a missing or wrong
//! credential with 401, `WWW-Authenticate: basic realm="Mesosphere"` (scheme in lowercase) and an HTML
//! page, not JSON.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::state::Sim;

const UNAUTHORIZED_HTML: &str = "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=ISO-8859-1\"/>\n\
<title>Error 401 Unauthorized</title>\n</head>\n<body><h2>HTTP ERROR 401</h2>\n\
<p>Problem accessing /. Reason:\n<pre>    Unauthorized</pre></p>\n</body>\n</html>\n";

/// Whether `headers` carry `Authorization: Basic <base64 of expected>`; the scheme is matched
/// case-insensitively.
pub fn is_authorized(headers: &HeaderMap, expected: &str) -> bool {
    headers.get_all(header::AUTHORIZATION).iter().any(|v| {
        let Ok(v) = v.to_str() else { return false };
        let Some((scheme, cred)) = v.trim().split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("basic")
            && STANDARD
                .decode(cred.trim())
                .is_ok_and(|d| d == expected.as_bytes())
    })
}

/// Middleware: rejects requests without the configured credentials.
pub async fn require(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    let admin = req.uri().path().starts_with("/_sim/");
    match sim.auth() {
        Some(expected) if !admin && !is_authorized(req.headers(), expected) => unauthorized(),
        _ => next.run(req).await,
    }
}

fn unauthorized() -> Response {
    let headers = [
        (
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("basic realm=\"Mesosphere\""),
        ),
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html;charset=iso-8859-1"),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("must-revalidate,no-cache,no-store"),
        ),
    ];
    (StatusCode::UNAUTHORIZED, headers, UNAUTHORIZED_HTML).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(v).expect("header"),
        );
        h
    }

    #[test]
    fn basic_credentials() {
        let good = format!("Basic {}", STANDARD.encode("u:p"));
        assert!(is_authorized(&with(&good), "u:p"));
        assert!(is_authorized(&with(&good.replace("Basic", "bAsIc")), "u:p"));
        assert!(!is_authorized(&with(&good), "u:q"));
        assert!(!is_authorized(&with("token=abc"), "u:p"));
        assert!(!is_authorized(&HeaderMap::new(), "u:p"));
    }
}
