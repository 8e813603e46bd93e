//! Talking to Marathon's REST API: `GET /v2/apps?embed=apps.tasks` with
//! failover across several `--marathon` URLs, and basic or DC/OS auth
//! ([`dcos`]).
//!
//! Failover follows marathon-lb: URLs are tried in order; a connection error
//! or timeout moves on to the next; when a later URL answers, the list is
//! rotated so it is tried first next time. An HTTP error status is not a
//! failover trigger (that Marathon answered), except that a body which is not
//! JSON moves on as well (for the `/v2/apps` document: one that is not even
//! framed as a JSON object; its parse checks the rest).
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
//!
//! Errors are typed at every seam (module `error`): one attempt against one
//! URL gives an answer, a final error ([`MarathonError`]: Marathon answered
//! with an error status, or the DC/OS login failed) or a fail-over cause
//! ([`RequestError`], keeping reqwest's error chain or the JSON error as
//! `source()`); the event stream's failures are [`sse::SseError`]s.
//!
//! # Layout
//! - this file: [`MarathonClient`] (`GET /v2/apps`, failover, body cap).
//! - `error`: [`MarathonError`], [`RequestError`], [`SetupError`], [`chain`].
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
mod error;
pub mod sse;
mod sse_decoder;
#[cfg(test)]
mod test_server;
mod tls;

use std::time::Duration;

pub use auth::{Credentials, CredentialsError};
pub use dcos::{Auth, DcosAuth, DcosError};
pub(crate) use error::describe;
pub use error::{HostFailure, MarathonError, RequestError, SetupError, chain};

/// What the controller fetches.
const APPS: &str = "/v2/apps?embed=apps.tasks";

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
        builder = tls::configure(builder, config.ca_cert_pem.as_deref(), config.insecure)?;
        let http = builder.build().map_err(SetupError::Build)?;
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
            let error = match self.send(&method, &url, &shown, body).await {
                Attempt::Answer(body) => {
                    self.urls.rotate_left(i);
                    return Ok(body);
                }
                Attempt::Final(e) => {
                    self.urls.rotate_left(i);
                    return Err(e);
                }
                Attempt::FailOver(error) => error,
            };
            let next = method == reqwest::Method::GET || error.unsent();
            if next {
                tracing::warn!(url = %shown, cause = %error, "Marathon did not answer, trying the next one");
            }
            failures.push(HostFailure { url: shown, error });
            if !next {
                break;
            }
        }
        Err(MarathonError::AllHostsFailed(failures))
    }

    /// One request (`shown`: `url` for messages).
    async fn send(
        &self,
        method: &reqwest::Method,
        url: &str,
        shown: &str,
        body: Option<&[u8]>,
    ) -> Attempt {
        let mut renewed = false;
        let resp = loop {
            let header = match self.auth.header().await {
                Ok(header) => header,
                Err(e) => return Attempt::Final(e.into()),
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
            let resp = match req.send().await {
                Ok(resp) => resp,
                Err(e) => return Attempt::FailOver(RequestError::http(e)),
            };
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
        let body = match read_capped(resp, self.max_body_bytes).await {
            Ok(body) => body,
            Err(e) => return Attempt::FailOver(e),
        };
        // A body that is not JSON is treated like a connection problem
        // (marathon-lb with requests >= 2.27 does the same). A good answer
        // is only checked here (no second tree of a large document), and
        // the apps document only for its frame: its parse is the check.
        let not_json = |source| Attempt::FailOver(RequestError::NotJson { status, source });
        if status.is_success() {
            if url.ends_with(APPS) && framed_as_object(&body) {
                return Attempt::Answer(body);
            }
            return match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
                Ok(_) => Attempt::Answer(body),
                Err(e) => not_json(e),
            };
        }
        let json: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(json) => json,
            Err(e) => return not_json(e),
        };
        let message = json
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| json.to_string().chars().take(200).collect());
        Attempt::Final(MarathonError::Status {
            url: shown.to_owned(),
            status: status.as_u16(),
            message,
        })
    }
}

/// What one attempt against one URL gave.
#[derive(Debug)]
enum Attempt {
    /// A 2xx answer with a JSON body.
    Answer(Vec<u8>),
    /// Marathon answered with an error status, or the DC/OS login failed:
    /// the other URLs are not asked.
    Final(MarathonError),
    /// No usable answer: a read moves on to the next URL, a write only when
    /// it was never sent ([`RequestError::unsent`]).
    FailOver(RequestError),
}

/// Whether `body` starts with `{` and ends with `}` (JSON white space
/// aside): the shape of the `/v2/apps` document. Such a body is passed on
/// unscanned: its consumer's parse (`mlb_core::normalize_apps`, the event
/// state's split) is itself a full JSON check, so scanning it here too
/// would read 20 MB twice at 10,000 apps. A framed body that still is not
/// JSON fails its generation with the parse error (the last good config
/// keeps serving; the next fetch asks again). Any other body (an HTML error
/// page, most truncated documents) is scanned here and fails over to the
/// next Marathon with the JSON error.
fn framed_as_object(body: &[u8]) -> bool {
    let json_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let first = body.iter().find(|b| !json_space(b));
    let last = body.iter().rev().find(|b| !json_space(b));
    first == Some(&b'{') && last == Some(&b'}')
}

/// The body of `resp`, refused as soon as it grows past `cap` bytes (the
/// error names the flag that sets the cap).
async fn read_capped(mut resp: reqwest::Response, cap: u64) -> Result<Vec<u8>, RequestError> {
    if resp.content_length().is_some_and(|n| n > cap) {
        return Err(RequestError::TooLarge { cap });
    }
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0).min(cap) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(RequestError::http)? {
        if body.len() as u64 + chunk.len() as u64 > cap {
            return Err(RequestError::TooLarge { cap });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    use crate::test_server::{answering, refusing};

    fn client(urls: Vec<String>) -> MarathonClient {
        MarathonClient::new(ClientConfig::new(urls)).unwrap()
    }

    #[tokio::test]
    async fn an_error_status_is_final() {
        let url = answering("401 Unauthorized", r#"{"message":"Invalid credentials"}"#).await;
        let c = client(vec![url.clone()]);
        let got = c
            .send(
                &reqwest::Method::GET,
                &format!("{url}{APPS}"),
                "shown",
                None,
            )
            .await;
        match got {
            Attempt::Final(MarathonError::Status {
                status, message, ..
            }) => {
                assert_eq!((status, message.as_str()), (401, "Invalid credentials"));
            }
            other => panic!("not a final 401: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_refused_connection_fails_over_with_its_cause() {
        let url = refusing().await;
        let c = client(vec![url.clone()]);
        let got = c
            .send(
                &reqwest::Method::POST,
                &format!("{url}/v2/apps"),
                "shown",
                None,
            )
            .await;
        let Attempt::FailOver(e) = got else {
            panic!("not a fail-over: {got:?}");
        };
        assert!(e.unsent(), "{e}");
        assert!(matches!(e, RequestError::Http(_)), "{e:?}");
        // The chain reaches the io error that refused the connection.
        let mut source = e.source();
        let mut io = None;
        while let Some(s) = source {
            io = io.or(s.downcast_ref::<std::io::Error>());
            source = s.source();
        }
        assert_eq!(
            io.map(std::io::Error::kind),
            Some(std::io::ErrorKind::ConnectionRefused),
            "{}",
            chain(&e)
        );
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_fails_over_with_the_parse_error() {
        let url = answering("200 OK", "<html>").await;
        let c = client(vec![url.clone()]);
        let got = c
            .send(
                &reqwest::Method::GET,
                &format!("{url}{APPS}"),
                "shown",
                None,
            )
            .await;
        let Attempt::FailOver(e) = got else {
            panic!("not a fail-over: {got:?}");
        };
        assert!(!e.unsent());
        assert!(
            e.source().is_some_and(|s| s.is::<serde_json::Error>()),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with("200 OK, body is not JSON ("),
            "{e}"
        );
    }

    #[tokio::test]
    async fn the_apps_document_is_checked_only_for_its_frame() {
        // A truncated document is not framed as an object: it fails over
        // with the JSON error, like any other body that is not JSON.
        let cut = answering("200 OK", r#"{"apps": [{"id": "/a"#).await;
        // Framed, not JSON: passed on to the parse, which is the check.
        let framed = answering("200 OK", " {not json}\n").await;
        let mut c = client(vec![cut.clone(), framed.clone()]);
        assert_eq!(c.fetch_apps().await.unwrap(), b" {not json}\n");
        assert_eq!(c.urls(), [framed.clone(), cut.clone()], "rotated");
        // Other answers are still checked whole.
        let got = c
            .send(
                &reqwest::Method::GET,
                &format!("{framed}/v2/info"),
                "shown",
                None,
            )
            .await;
        assert!(
            matches!(got, Attempt::FailOver(RequestError::NotJson { .. })),
            "{got:?}"
        );
        for (body, framed) in [
            (&b"{}"[..], true),
            (b"\r\n\t {\"apps\": []} \n", true),
            (b"[{}]", false),
            (b"{", false),
            (b"}", false),
            (b"", false),
            (b"<html>{}</html>", false),
        ] {
            assert_eq!(framed_as_object(body), framed, "{body:?}");
        }
    }

    #[tokio::test]
    async fn a_read_moves_on_and_rotates_a_final_answer_stops() {
        let dead = refusing().await;
        let good = answering("200 OK", r#"{"apps":[]}"#).await;
        let mut c = client(vec![dead.clone(), good.clone()]);
        assert_eq!(c.fetch_apps().await.unwrap(), br#"{"apps":[]}"#);
        assert_eq!(c.urls(), [good.clone(), dead.clone()], "rotated");

        let refused = answering("403 Forbidden", r#"{"message":"no"}"#).await;
        let mut c = client(vec![refused, good]);
        let e = c.fetch_apps().await.unwrap_err();
        assert!(
            matches!(e, MarathonError::Status { status: 403, .. }),
            "{e}"
        );
        assert_eq!(e.kind(), "status");
    }

    #[tokio::test]
    async fn no_answer_names_every_url_with_a_typed_cause() {
        let (a, b) = (refusing().await, refusing().await);
        let mut c = client(vec![a.clone(), b.clone()]);
        let e = c.fetch_apps().await.unwrap_err();
        let MarathonError::AllHostsFailed(failures) = &e else {
            panic!("{e}");
        };
        let urls: Vec<&str> = failures.iter().map(|f| f.url.as_str()).collect();
        assert_eq!(urls, [format!("{a}{APPS}"), format!("{b}{APPS}")]);
        assert!(failures.iter().all(|f| f.error.unsent()), "{e}");
        assert!(failures[0].source().is_some());
        // One line, each URL once, the cause once.
        let text = chain(&e);
        assert_eq!(text.matches(&a).count(), 1, "{text}");
    }

    #[tokio::test]
    async fn a_write_that_was_received_is_not_sent_again() {
        let broken = answering("200 OK", "not json").await;
        let good = answering("200 OK", "{}").await;
        let mut c = client(vec![broken, good]);
        let e = c
            .request(reqwest::Method::POST, "/v2/apps", Some(b"{}"))
            .await
            .unwrap_err();
        let MarathonError::AllHostsFailed(failures) = &e else {
            panic!("{e}");
        };
        assert_eq!(failures.len(), 1, "{e}");
        assert!(matches!(failures[0].error, RequestError::NotJson { .. }));
    }

    #[test]
    fn setup_errors_keep_their_cause() {
        let mut config = ClientConfig::new(vec!["http://m:8080".into()]);
        config.ca_cert_pem = Some(
            b"-----BEGIN CERTIFICATE-----\n!!notbase64!!\n-----END CERTIFICATE-----\n".to_vec(),
        );
        let e = MarathonClient::new(config).unwrap_err();
        assert!(
            matches!(e, MarathonError::Client(SetupError::CaBundle(_))),
            "{e:?}"
        );
        assert!(e.source().and_then(|s| s.source()).is_some(), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("cannot set up the HTTP client: --marathon-ca-cert: ")
        );
    }

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
