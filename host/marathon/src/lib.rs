//! Talking to Marathon's REST API: `GET /v2/apps?embed=apps.tasks` with
//! failover across several `--marathon` URLs, and basic or DC/OS auth
//! ([`dcos`]).
//!
//! Failover follows marathon-lb: URLs are tried in order; a connection error
//! or timeout moves on to the next; when a later URL answers, the list is
//! rotated so it is tried first next time. An HTTP error status is not a
//! failover trigger (that Marathon answered), except that a body which is not
//! JSON moves on as well.
//!
//! With DC/OS auth, a 401 drops the token; the request is retried once
//! after a new login.
//!
//! The body is read chunk by chunk and refused as soon as it grows past
//! [`ClientConfig::max_body_bytes`] (`--marathon-max-body-mib`), so a
//! Marathon (or anything posing as one) that sends an endless or huge body
//! costs at most the cap in memory; the attempt fails like a connection
//! error and the last good config keeps serving. URLs are logged and
//! reported only through [`redact_url`] (no user info).
//!
//! # Layout
//! - this file: [`MarathonClient`] (`GET /v2/apps`, failover, body cap).
//! - `auth`: basic-auth credentials (`--auth-credentials`, `--dcos-auth-credentials`).
//! - [`dcos`]: DC/OS service-account login (RS256 JWT) and the token cache.
//! - `tls`: verified TLS, `--marathon-ca-cert`.
//! - [`sse`]: the `/v2/events` follower yielding [`sse::StreamEvent`]s.
//! - `sse_decoder`: the `text/event-stream` decoder (bounded events).
//! - [`backoff`]: jittered exponential backoff (marathon-lb's, and others).

#![forbid(unsafe_code)]

mod auth;
pub mod backoff;
pub mod dcos;
pub mod sse;
mod sse_decoder;
mod tls;

use std::time::Duration;

pub use auth::{Credentials, CredentialsError};
pub use dcos::{Auth, DcosAuth, DcosError};

/// What the controller fetches.
const APPS: &str = "/v2/apps?embed=apps.tasks";

/// Why apps could not be fetched.
///
/// Every variant is retryable (the next poll or event may succeed); the
/// caller keeps the last good config meanwhile.
#[derive(Debug, thiserror::Error)]
pub enum MarathonError {
    /// No URL answered.
    #[error("no Marathon answered: {}", .0.join("; "))]
    AllHostsFailed(Vec<String>),
    /// A Marathon answered with an error status.
    #[error("{url} answered {status}: {message}")]
    Status {
        /// The URL asked.
        url: String,
        /// HTTP status.
        status: u16,
        /// Marathon's `message`, or the start of the body.
        message: String,
    },
    /// The HTTP client could not be built (bad CA file, ...).
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// The DC/OS login failed.
    #[error(transparent)]
    Auth(#[from] DcosError),
    /// The request was abandoned because the controller is shutting down.
    #[error("request abandoned: shutting down")]
    Cancelled,
}

/// Settings of the Marathon client (`Debug` shows the URLs redacted).
#[derive(Clone)]
pub struct ClientConfig {
    /// Base URLs in failover order.
    pub urls: Vec<String>,
    /// Basic-auth credentials (beat `dcos`).
    pub credentials: Option<Credentials>,
    /// DC/OS service account (used when `credentials` is `None`).
    pub dcos: Option<DcosAuth>,
    /// PEM CA bundle used instead of the system roots.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Skip TLS verification (`--marathon-insecure`; never the default).
    pub insecure: bool,
    /// Connect timeout (marathon-lb: 3.05 s).
    pub connect_timeout: Duration,
    /// Whole-request timeout (marathon-lb's read timeout: 46 s).
    pub request_timeout: Duration,
    /// Largest response body accepted (`--marathon-max-body-mib`).
    pub max_body_bytes: u64,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field(
                "urls",
                &self.urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
            )
            .field("credentials", &self.credentials)
            .field("dcos", &self.dcos)
            .field("ca_cert_pem", &self.ca_cert_pem.as_ref().map(Vec::len))
            .field("insecure", &self.insecure)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

/// Default of `--marathon-max-body-mib`.
pub const DEFAULT_MAX_BODY_MIB: u64 = 256;

impl ClientConfig {
    /// Defaults of marathon-lb for `urls`.
    pub fn new(urls: Vec<String>) -> Self {
        Self {
            urls,
            credentials: None,
            dcos: None,
            ca_cert_pem: None,
            insecure: false,
            connect_timeout: Duration::from_millis(3050),
            request_timeout: Duration::from_secs(46),
            max_body_bytes: DEFAULT_MAX_BODY_MIB << 20,
        }
    }
}

/// A Marathon client with failover.
#[derive(Debug)]
pub struct MarathonClient {
    http: reqwest::Client,
    urls: Vec<String>,
    auth: Auth,
    max_body_bytes: u64,
}

impl MarathonClient {
    /// Build a client. TLS is always verified (against `ca_cert_pem` when
    /// given, else the system roots).
    pub fn new(config: ClientConfig) -> Result<Self, MarathonError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent("marathon-lb")
            .redirect(reqwest::redirect::Policy::limited(1));
        builder = tls::configure(builder, config.ca_cert_pem.as_deref(), config.insecure)
            .map_err(MarathonError::Client)?;
        let http = builder
            .build()
            .map_err(|e| MarathonError::Client(e.to_string()))?;
        Ok(Self {
            http,
            urls: config
                .urls
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            auth: Auth::new(config.credentials, config.dcos),
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// The URLs in their current failover order.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// `GET /v2/apps?embed=apps.tasks`: the raw JSON body.
    pub async fn fetch_apps(&mut self) -> Result<Vec<u8>, MarathonError> {
        self.request(reqwest::Method::GET, APPS, None).await
    }

    /// `method path` (path with query) on the first Marathon that answers,
    /// with `body` as JSON: the raw JSON body of a 2xx answer. A write moves
    /// on to the next URL only when the connection could not be made (it
    /// was then never received); a read also on timeouts and non-JSON
    /// bodies.
    pub async fn request(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Vec<u8>, MarathonError> {
        let mut failures = Vec::new();
        for i in 0..self.urls.len() {
            let url = format!("{}{path}", self.urls[i]);
            let shown = redact_url(&url);
            if path == APPS {
                tracing::debug!(url = %shown, "fetching apps");
            } else {
                tracing::debug!(url = %shown, %method, "asking Marathon");
            }
            match self.send(&method, &url, &shown, body).await {
                Ok(body) => {
                    if i != 0 {
                        self.urls.rotate_left(i);
                    }
                    return body;
                }
                Err(failure) if method == reqwest::Method::GET || failure.unsent => {
                    tracing::warn!(url = %shown, cause = %failure.cause, "Marathon did not answer, trying the next one");
                    failures.push(format!("{shown}: {}", failure.cause));
                }
                Err(failure) => {
                    failures.push(format!("{shown}: {}", failure.cause));
                    break;
                }
            }
        }
        Err(MarathonError::AllHostsFailed(failures))
    }

    /// One request (`shown`: `url` for messages). `Err` = no answer (maybe
    /// try the next host); `Ok(Err)` = final answer.
    async fn send(
        &self,
        method: &reqwest::Method,
        url: &str,
        shown: &str,
        body: Option<&[u8]>,
    ) -> Result<Result<Vec<u8>, MarathonError>, Failure> {
        let mut renewed = false;
        let resp = loop {
            let header = match self.auth.header().await {
                Ok(header) => header,
                Err(e) => return Ok(Err(e.into())),
            };
            let mut req = self
                .http
                .request(method.clone(), url)
                .header("Accept", "application/json")
                .header("Content-Type", "application/json");
            if let Some(h) = &header {
                req = req.header(reqwest::header::AUTHORIZATION, h.clone());
            }
            if let Some(body) = body {
                req = req.body(body.to_vec());
            }
            let resp = req.send().await.map_err(Failure::from)?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED
                && !renewed
                && self.auth.renews_on_401()
                && let Some(h) = &header
            {
                self.auth.invalidate(h).await;
                renewed = true;
                continue;
            }
            break resp;
        };
        let status = resp.status();
        let body = read_capped(resp, self.max_body_bytes)
            .await
            .map_err(Failure::answered)?;
        // A body that is not JSON is treated like a connection problem
        // (marathon-lb with requests >= 2.27 does the same). A good answer
        // is only checked here (no second tree of a large document).
        let not_json =
            |e: serde_json::Error| Failure::answered(format!("{status}, body is not JSON ({e})"));
        if status.is_success() {
            serde_json::from_slice::<serde::de::IgnoredAny>(&body).map_err(not_json)?;
            return Ok(Ok(body));
        }
        let json: serde_json::Value = serde_json::from_slice(&body).map_err(not_json)?;
        {
            let message = json
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| json.to_string().chars().take(200).collect());
            Ok(Err(MarathonError::Status {
                url: shown.to_owned(),
                status: status.as_u16(),
                message,
            }))
        }
    }
}

/// The body of `resp`, refused as soon as it grows past `cap` bytes (the
/// error names the flag that sets the cap).
async fn read_capped(mut resp: reqwest::Response, cap: u64) -> Result<Vec<u8>, String> {
    let too_large = || {
        format!(
            "the response body is larger than {} (--marathon-max-body-mib); refused",
            human_size(cap)
        )
    };
    if resp.content_length().is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0).min(cap) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(describe)? {
        if body.len() as u64 + chunk.len() as u64 > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `n` bytes as MiB (or bytes below 1 MiB).
fn human_size(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

/// `url` without user info, for every log line and error message (REST,
/// event stream, DC/OS login). Something that does not parse as a URL
/// with a host (`user:pass@host` without a scheme parses as scheme `user`)
/// is not echoed at all: it might hold a password.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) if u.host().is_none() => "<unparsable URL>".to_owned(),
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                return u.to_string();
            }
            url.to_owned()
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

/// A request that got no usable answer.
struct Failure {
    cause: String,
    /// The connection was never made: the request was not received.
    unsent: bool,
}

impl Failure {
    /// The request reached Marathon but the answer is unusable.
    fn answered(cause: String) -> Self {
        Self {
            cause,
            unsent: false,
        }
    }
}

impl From<reqwest::Error> for Failure {
    fn from(e: reqwest::Error) -> Self {
        Self {
            unsent: e.is_connect(),
            cause: describe(e),
        }
    }
}

/// The error and its causes on one line, without the URL (it may carry
/// credentials; callers name the redacted URL themselves).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    if let Some(hint) = tls::hint(&out) {
        out.push_str(" (");
        out.push_str(hint);
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_drops_user_info_only() {
        assert_eq!(
            redact_url("http://bob:s3cret@m1:8080/x"),
            "http://m1:8080/x"
        );
        assert_eq!(redact_url("https://bob@m1/"), "https://m1/");
        assert_eq!(redact_url("http://m1:8080"), "http://m1:8080");
        assert_eq!(redact_url("bob:s3cret@m1:8080"), "<unparsable URL>");
        assert_eq!(redact_url("not a url"), "<unparsable URL>");
        let config = ClientConfig::new(vec!["http://bob:s3cret@m1:8080".into()]);
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
