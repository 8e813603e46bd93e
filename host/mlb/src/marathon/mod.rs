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

mod auth;
pub mod dcos;
pub mod sse;
mod sse_decoder;
mod tls;

use std::time::Duration;

pub use auth::{Credentials, CredentialsError};
pub use dcos::{Auth, DcosAuth, DcosError};

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
}

/// Settings of the Marathon client.
#[derive(Debug, Clone)]
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
}

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
        }
    }
}

/// A Marathon client with failover.
#[derive(Debug)]
pub struct MarathonClient {
    http: reqwest::Client,
    urls: Vec<String>,
    auth: Auth,
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
        })
    }

    /// The URLs in their current failover order.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// `GET /v2/apps?embed=apps.tasks`: the raw JSON body.
    pub async fn fetch_apps(&mut self) -> Result<Vec<u8>, MarathonError> {
        let mut failures = Vec::new();
        for i in 0..self.urls.len() {
            let url = format!("{}/v2/apps?embed=apps.tasks", self.urls[i]);
            tracing::debug!(%url, "fetching apps");
            match self.get(&url).await {
                Ok(body) => {
                    if i != 0 {
                        self.urls.rotate_left(i);
                    }
                    return body;
                }
                Err(cause) => {
                    tracing::warn!(%url, %cause, "Marathon did not answer, trying the next one");
                    failures.push(format!("{url}: {cause}"));
                }
            }
        }
        Err(MarathonError::AllHostsFailed(failures))
    }

    /// One request. `Err` = try the next host; `Ok(Err)` = final answer.
    async fn get(&self, url: &str) -> Result<Result<Vec<u8>, MarathonError>, String> {
        let mut renewed = false;
        let resp = loop {
            let header = match self.auth.header().await {
                Ok(header) => header,
                Err(e) => return Ok(Err(e.into())),
            };
            let mut req = self
                .http
                .get(url)
                .header("Accept", "application/json")
                .header("Content-Type", "application/json");
            if let Some(h) = &header {
                req = req.header(reqwest::header::AUTHORIZATION, h.clone());
            }
            let resp = req.send().await.map_err(describe)?;
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
        let body = resp.bytes().await.map_err(describe)?.to_vec();
        // A body that is not JSON is treated like a connection problem
        // (marathon-lb with requests >= 2.27 does the same).
        let json: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| format!("{status}, body is not JSON ({e})"))?;
        if !status.is_success() {
            let message = json
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| json.to_string().chars().take(200).collect());
            return Ok(Err(MarathonError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
                message,
            }));
        }
        Ok(Ok(body))
    }
}

/// The error and its causes on one line.
fn describe(e: reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
