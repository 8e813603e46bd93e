//! Following Marathon's event stream (`--sse`): [`follow`] yields what
//! happens on the stream as typed [`StreamEvent`]s (connected, event,
//! activity, silent, failed), like kube-runtime's watcher. It neither
//! triggers reconciles nor counts metrics itself: the controller maps the
//! events to both (every relevant event and every (re)connect asks for a
//! full refetch).
//!
//! # Behaviour
//! * `GET <url>/v2/events?plan-format=light&event_type=api_post_event&event_type=health_status_changed_event&event_type=status_update_event`
//!   with exactly `Accept: text/event-stream`, `Cache-Control: no-cache`
//!   and basic auth or a DC/OS token when configured. Anything but 200 is a
//!   failed attempt, except that a 401 with a DC/OS token drops the token
//!   and is retried once, within the attempt, after a new login.
//! * After each successful (re)connect: [`StreamEvent::Connected`] (events
//!   may have been missed while disconnected). Each Marathon event:
//!   [`StreamEvent::Event`] with its type (the JSON `eventType`, else the
//!   SSE `event:` name) and whether it is relevant (`api_post_event`,
//!   `health_status_changed_event`, `status_update_event`). Every received
//!   chunk, keep-alives included: [`StreamEvent::Activity`]. The channel is
//!   bounded and sent to with `send().await`: a consumer that falls behind
//!   slows the reading of the stream (TCP flow control), never memory.
//! * The URL is taken round-robin from the list on each (re)connect,
//!   starting with the first (as marathon-lb's `itertools.cycle`).
//! * Between failed attempts: [`Backoff::marathon_lb`] (`random() × wait`,
//!   wait from 3 s ×1.5 up to `--max-backoff`, back to 3 s after a stream
//!   that lived more than 600 s).
//!
//! # Deviations from marathon-lb
//! * **Watchdog instead of the 300 s low-speed abort.** Marathon writes a
//!   keep-alive every 10 s, so a stream silent for [`SseConfig::watchdog`]
//!   (default 15 s) is dead (half-open TCP, a stuck proxy, a frozen leader):
//!   it is dropped and the next URL is tried at once, without backoff (as
//!   marathon-lb does after its curl timeout). A server that accepts but sends
//!   no response headers within the watchdog counts as a failed attempt.
//! * **Rotation without waiting on every failure.** A failed attempt (or an
//!   ended stream) moves on to the next URL immediately; the backoff is slept
//!   once per round, i.e. after every `urls.len()`-th failure, so one dead or
//!   hanging Marathon never delays the others while a flapping cluster still
//!   backs off. With a single URL this is marathon-lb's behaviour. A stream
//!   that lived more than 600 s resets the count and the backoff.
//! * **Redirects with auth.** Non-leaders (Marathon 1.7+) answer 30x to the
//!   leader. Redirects are followed here (up to [`MAX_REDIRECTS`] hops; the
//!   original: 1) and the credentials (basic or DC/OS token) are re-sent
//!   to the new host, as marathon-lb's curl `UNRESTRICTED_AUTH` does
//!   (reqwest would strip them), except on a redirect from `https` to plain
//!   `http`, which is refused.
//! * **TLS is verified** (against `--marathon-ca-cert` when given); skipping
//!   verification needs the explicit [`SseConfig::insecure`].
//! * No `Accept-Encoding: gzip`: Marathon 1.6+ never compresses the stream.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL, LOCATION};
use reqwest::{StatusCode, Url};
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use super::sse_decoder::{
    DecodeError, MAX_EVENT_BYTES, MarathonEvent, SseDecoder, SseEvent, marathon_events,
};
use super::{
    Auth, Credentials, DcosAuth, DcosError, MarathonError, SetupError, describe,
    redact_url as redact,
};
use crate::backoff::Backoff;

/// Path and query of the event stream (server-side filtering, light plans).
pub const EVENTS_PATH: &str = "/v2/events?plan-format=light&event_type=api_post_event&event_type=health_status_changed_event&event_type=status_update_event&event_type=app_terminated_event";

/// The event types that can change the config (marathon-lb's three, and
/// `app_terminated_event`, which removes an app kept from events).
pub const RELEVANT_EVENTS: [&str; 4] = [
    "api_post_event",
    "health_status_changed_event",
    "status_update_event",
    "app_terminated_event",
];

/// Most redirects followed per connection attempt.
pub const MAX_REDIRECTS: usize = 3;

/// Whether an event of `event_type` triggers a reset.
pub fn is_relevant(event_type: &str) -> bool {
    RELEVANT_EVENTS.contains(&event_type)
}

/// What happens on the event stream, in order.
///
/// `Clone` and `PartialEq` (tests compare events): a failure carries its
/// [`SseError`] behind an [`Arc`], and two failures are equal when their URL,
/// backoff, [`SseError::kind`] and message are.
#[derive(Debug, Clone)]
pub enum StreamEvent {
    /// A (re)connect succeeded. Events may have been missed before it.
    Connected {
        /// The URL the stream came from (after redirects; no user info).
        url: String,
    },
    /// A Marathon event.
    Event {
        /// Its `eventType` (else the SSE `event:` name).
        event_type: String,
        /// Whether it can change the config ([`is_relevant`]).
        relevant: bool,
        /// The JSON document (`Null` when the data was not JSON); not
        /// compared by `==`.
        payload: Arc<serde_json::Value>,
    },
    /// Bytes arrived (keep-alives included): the stream is alive.
    Activity,
    /// Nothing arrived for the watchdog period: the stream is dropped and
    /// the next URL is tried at once.
    Silent {
        /// The URL that went silent (no user info).
        url: String,
    },
    /// An attempt failed, or the stream ended or broke.
    Failed {
        /// The URL tried (no user info).
        url: String,
        /// What happened (no credentials). Match on `&*error` for the
        /// variant, or use [`SseError::kind`].
        error: Arc<SseError>,
        /// The backoff slept before the next attempt (`None`: the next URL
        /// is tried at once).
        retry_in: Option<Duration>,
    },
}

impl PartialEq for StreamEvent {
    fn eq(&self, other: &Self) -> bool {
        use StreamEvent::*;
        match (self, other) {
            (Connected { url: a }, Connected { url: b })
            | (Silent { url: a }, Silent { url: b }) => a == b,
            (
                Event {
                    event_type: a,
                    relevant: ra,
                    ..
                },
                Event {
                    event_type: b,
                    relevant: rb,
                    ..
                },
            ) => a == b && ra == rb,
            (Activity, Activity) => true,
            (
                Failed {
                    url: a,
                    error: ea,
                    retry_in: ra,
                },
                Failed {
                    url: b,
                    error: eb,
                    retry_in: rb,
                },
            ) => a == b && ra == rb && ea.kind() == eb.kind() && ea.to_string() == eb.to_string(),
            _ => false,
        }
    }
}

impl Eq for StreamEvent {}

/// Why one attempt to follow the stream failed, or how the stream ended.
/// No variant quotes a credential or a URL's user info.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    /// The `--marathon` URL does not parse.
    #[error("bad Marathon URL: {0}")]
    BadUrl(#[source] BoxError),
    /// The DC/OS login failed.
    #[error("{0}")]
    Auth(#[from] DcosError),
    /// Connecting or sending the request failed (refused, TLS, connect
    /// timeout, ...). Without its URL; the text is the whole chain.
    #[error("{}", describe(.0))]
    Request(#[source] reqwest::Error),
    /// Anything but 200 (after redirects and the one DC/OS retry).
    #[error("{url} answered {status}")]
    Status {
        /// The URL asked (no user info).
        url: String,
        /// Its answer.
        status: StatusCode,
    },
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    /// A redirect without a `Location` that is a string.
    #[error("{0} without a usable Location")]
    NoLocation(StatusCode),
    /// A redirect whose `Location` is not a URL.
    #[error("{status} to a bad Location: {source}")]
    BadLocation {
        /// The redirect status.
        status: StatusCode,
        /// Why the location does not parse.
        source: BoxError,
    },
    /// A redirect from `https` to plain `http` while sending credentials.
    #[error("refusing to send credentials over a redirect from https to {to}")]
    InsecureRedirect {
        /// Where it pointed (no user info).
        to: String,
    },
    /// No response headers within the watchdog period.
    #[error("no response within {} ms", .0.as_millis())]
    NoResponse(Duration),
    /// The server closed the stream.
    #[error("the stream ended")]
    Ended,
    /// Reading the stream failed (reset, ...). Without its URL.
    #[error("{}", describe(.0))]
    Read(#[source] reqwest::Error),
    /// The stream is not valid SSE (an event too large).
    #[error("{0}")]
    Decode(#[from] DecodeError),
}

/// A cause without a nameable type (`url`'s parse error).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl SseError {
    /// A short stable label: `bad_url`, `auth`, `request`, `status`,
    /// `redirect` (too many, no or bad `Location`, https → http), `no_response`,
    /// `ended`, `read`, `decode`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BadUrl(_) => "bad_url",
            Self::Auth(_) => "auth",
            Self::Request(_) => "request",
            Self::Status { .. } => "status",
            Self::TooManyRedirects
            | Self::NoLocation(_)
            | Self::BadLocation { .. }
            | Self::InsecureRedirect { .. } => "redirect",
            Self::NoResponse(_) => "no_response",
            Self::Ended => "ended",
            Self::Read(_) => "read",
            Self::Decode(_) => "decode",
        }
    }
}

/// Settings of the event-stream follower.
#[derive(Clone)]
pub struct SseConfig {
    /// Marathon base URLs, used round-robin.
    pub urls: Vec<String>,
    /// Basic-auth credentials (re-sent on redirects; beat `dcos`).
    pub credentials: Option<Credentials>,
    /// DC/OS service account (its token is re-sent on redirects). Clone the
    /// REST client's to share its token.
    pub dcos: Option<DcosAuth>,
    /// PEM CA bundle used instead of the system roots.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Accept any TLS certificate. Only when explicitly asked for.
    pub insecure: bool,
    /// Reconnect when nothing at all (not even a keep-alive) arrived for
    /// this long; also the limit for the response headers. Default 15 s.
    pub watchdog: Duration,
    /// Cap of the reconnect backoff (`--max-backoff`, default 300 s).
    pub max_backoff: Duration,
    /// TCP (and TLS) connect timeout (marathon-lb: 10 s).
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for SseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseConfig")
            .field(
                "urls",
                &self.urls.iter().map(|u| redact(u)).collect::<Vec<_>>(),
            )
            .field("credentials", &self.credentials)
            .field("dcos", &self.dcos)
            .field(
                "ca_cert_pem",
                &self
                    .ca_cert_pem
                    .as_ref()
                    .map(|p| format!("{} bytes", p.len())),
            )
            .field("insecure", &self.insecure)
            .field("watchdog", &self.watchdog)
            .field("max_backoff", &self.max_backoff)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl SseConfig {
    /// Defaults for `urls`: no auth, system CA roots, watchdog 15 s, max
    /// backoff 300 s, connect timeout 10 s.
    pub fn new(urls: Vec<String>) -> Self {
        Self {
            urls,
            credentials: None,
            dcos: None,
            ca_cert_pem: None,
            insecure: false,
            watchdog: Duration::from_secs(15),
            max_backoff: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// The connection settings of the REST client (`urls`, auth, TLS, connect
    /// timeout) with the stream's own `watchdog` and `max_backoff`; sharing
    /// `dcos` shares the REST client's token.
    pub fn from_client(
        client: &super::ClientConfig,
        watchdog: Duration,
        max_backoff: Duration,
    ) -> Self {
        Self {
            urls: client.urls.clone(),
            credentials: client.credentials.clone(),
            dcos: client.dcos.clone(),
            ca_cert_pem: client.ca_cert_pem.clone(),
            insecure: client.insecure,
            watchdog,
            max_backoff,
            connect_timeout: client.connect_timeout,
        }
    }

    /// Checks what [`follow`] would otherwise only report in its log: at
    /// least one URL, and a usable CA bundle.
    pub fn validate(&self) -> Result<(), MarathonError> {
        if self.urls.is_empty() {
            return Err(SetupError::NoUrl.into());
        }
        self.http_client().map(|_| ())
    }

    fn http_client(&self) -> Result<reqwest::Client, MarathonError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .user_agent("marathon-lb")
            .redirect(reqwest::redirect::Policy::none());
        builder = super::tls::configure(builder, self.ca_cert_pem.as_deref(), self.insecure)?;
        Ok(builder.build().map_err(SetupError::Build)?)
    }
}

/// Follows the event stream, sending what happens to `events`, until
/// `events` is closed.
///
/// Never returns an error: every failure is logged and retried (see the
/// module documentation). An unusable configuration (no URL, bad CA bundle;
/// check with [`SseConfig::validate`]) is logged once, and then this only
/// waits for the channel to close.
pub async fn follow(config: SseConfig, events: mpsc::Sender<StreamEvent>) {
    let http = match config.validate().and_then(|()| config.http_client()) {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(cause = %e, "cannot follow the Marathon event stream");
            events.closed().await;
            return;
        }
    };
    let urls: Vec<String> = config
        .urls
        .iter()
        .map(|u| u.trim_end_matches('/').to_owned())
        .collect();
    let follower = Follower {
        http,
        auth: Auth::new(config.credentials.clone(), config.dcos.clone()),
        config: &config,
        events: &events,
    };
    let mut backoff = Backoff::marathon_lb(config.max_backoff);
    let mut failures = 0usize;
    for base in urls.iter().cycle() {
        let url = redact(base);
        let end = tokio::select! {
            _ = events.closed() => return,
            end = follower.attempt(base, &url) => end,
        };
        match end {
            End::Closed => return,
            End::Watchdog { lived } => {
                if backoff.lived(lived) {
                    failures = 0;
                }
                if !follower
                    .emit(StreamEvent::Silent { url: url.clone() })
                    .await
                {
                    return;
                }
                tracing::warn!(
                    %url,
                    cause = "watchdog",
                    silence_ms = config.watchdog.as_millis() as u64,
                    "event stream silent, reconnecting"
                );
            }
            End::Failed { lived, error } => {
                if lived.is_some_and(|l| backoff.lived(l)) {
                    failures = 0;
                }
                failures += 1;
                let retry_in = failures
                    .is_multiple_of(urls.len())
                    .then(|| backoff.next_delay());
                let error = Arc::new(error);
                let failed = StreamEvent::Failed {
                    url: url.clone(),
                    error: Arc::clone(&error),
                    retry_in,
                };
                if !follower.emit(failed).await {
                    return;
                }
                if let Some(delay) = retry_in {
                    tracing::warn!(
                        %url,
                        cause = %error,
                        retry_in_ms = delay.as_millis() as u64,
                        "event stream failed"
                    );
                    tokio::select! {
                        _ = events.closed() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                } else {
                    tracing::warn!(%url, cause = %error, "event stream failed, trying the next Marathon");
                }
            }
        }
    }
}

/// How one connection attempt ended.
#[derive(Debug)]
enum End {
    /// The event channel is closed: stop.
    Closed,
    /// The stream was up but went silent for the watchdog period.
    Watchdog {
        /// How long the stream had been up.
        lived: Duration,
    },
    /// The attempt failed, or the stream ended or broke.
    Failed {
        /// How long the stream had been up, if it was.
        lived: Option<Duration>,
        /// What happened.
        error: SseError,
    },
}

struct Follower<'a> {
    http: reqwest::Client,
    auth: Auth,
    config: &'a SseConfig,
    events: &'a mpsc::Sender<StreamEvent>,
}

impl Follower<'_> {
    /// Connects to `base` and reads the stream until it ends.
    async fn attempt(&self, base: &str, url: &str) -> End {
        tracing::debug!(%url, "connecting to the event stream");
        let resp = match tokio::time::timeout(self.config.watchdog, self.open(base)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(error)) => return End::Failed { lived: None, error },
            Err(_) => {
                return End::Failed {
                    lived: None,
                    error: SseError::NoResponse(self.config.watchdog),
                };
            }
        };
        self.read(resp).await
    }

    /// `GET` the stream, following redirects with the credentials re-sent.
    async fn open(&self, base: &str) -> Result<reqwest::Response, SseError> {
        let mut url = Url::parse(&format!("{base}{EVENTS_PATH}"))
            .map_err(|e| SseError::BadUrl(Box::new(e)))?;
        let mut renewed = false;
        let mut hop = 0;
        while hop <= MAX_REDIRECTS {
            let header = self.auth.header().await?;
            let mut req = self
                .http
                .get(url.clone())
                .header(ACCEPT, "text/event-stream")
                .header(CACHE_CONTROL, "no-cache");
            if let Some(h) = &header {
                req = req.header(AUTHORIZATION, h.clone());
            }
            let resp = req
                .send()
                .await
                .map_err(|e| SseError::Request(e.without_url()))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED
                && !renewed
                && self.auth.renews_on_401()
                && let Some(h) = &header
            {
                self.auth.invalidate(h).await;
                renewed = true;
                continue;
            }
            if status.is_redirection() {
                if hop == MAX_REDIRECTS {
                    return Err(SseError::TooManyRedirects);
                }
                let next = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or(SseError::NoLocation(status))
                    .and_then(|l| {
                        url.join(l).map_err(|e| SseError::BadLocation {
                            status,
                            source: Box::new(e),
                        })
                    })?;
                if header.is_some() && url.scheme() == "https" && next.scheme() != "https" {
                    return Err(SseError::InsecureRedirect {
                        to: redact(next.as_str()),
                    });
                }
                tracing::info!(
                    from = %redact(url.as_str()),
                    to = %redact(next.as_str()),
                    status = status.as_u16(),
                    "event stream redirected (leader)"
                );
                url = next;
                hop += 1;
                continue;
            }
            if status != StatusCode::OK {
                return Err(SseError::Status {
                    url: redact(url.as_str()),
                    status,
                });
            }
            if hop > 0 {
                tracing::info!(leader = %redact(url.as_str()), "event stream via redirect");
            }
            return Ok(resp);
        }
        Err(SseError::TooManyRedirects)
    }

    /// Reads an open stream, sending what happens, until it ends, breaks
    /// or goes silent.
    async fn read(&self, mut resp: reqwest::Response) -> End {
        let connected = Instant::now();
        let url = redact(resp.url().as_str());
        tracing::info!(%url, "event stream connected");
        if !self.emit(StreamEvent::Connected { url }).await {
            return End::Closed;
        }
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        loop {
            let lived = connected.elapsed();
            let chunk = match tokio::time::timeout(self.config.watchdog, resp.chunk()).await {
                Err(_) => return End::Watchdog { lived },
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => {
                    return End::Failed {
                        lived: Some(lived),
                        error: SseError::Ended,
                    };
                }
                Ok(Err(e)) => {
                    return End::Failed {
                        lived: Some(lived),
                        error: SseError::Read(e.without_url()),
                    };
                }
            };
            if !self.emit(StreamEvent::Activity).await {
                return End::Closed;
            }
            if let Err(e) = decoder.feed(&chunk, &mut events) {
                return End::Failed {
                    lived: Some(lived),
                    error: e.into(),
                };
            }
            for ev in events.drain(..) {
                for m in marathon_events(&ev) {
                    let relevant = is_relevant(&m.event_type);
                    tracing::debug!(event_type = %m.event_type, relevant, "Marathon event");
                    let event = StreamEvent::Event {
                        event_type: m.event_type,
                        relevant,
                        payload: Arc::new(m.payload),
                    };
                    if !self.emit(event).await {
                        return End::Closed;
                    }
                }
            }
        }
    }

    /// Sends `event`, waiting while the consumer is behind; `false` when
    /// the channel is closed.
    async fn emit(&self, event: StreamEvent) -> bool {
        self.events.send(event).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    use crate::test_server::{answering_with, refusing};

    /// The first failure of following `url` alone.
    async fn first_failure(url: String) -> Arc<SseError> {
        let mut config = SseConfig::new(vec![url]);
        config.watchdog = Duration::from_secs(5);
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(follow(config, tx));
        let error = loop {
            match rx.recv().await.expect("the follower runs") {
                StreamEvent::Failed { error, .. } => break error,
                _ => continue,
            }
        };
        drop(rx);
        task.await.unwrap();
        error
    }

    #[tokio::test]
    async fn an_error_status_is_a_status_failure() {
        let url = answering_with("401 Unauthorized", "", "").await;
        let e = first_failure(url.clone()).await;
        assert!(
            matches!(&*e, SseError::Status { status, .. } if *status == StatusCode::UNAUTHORIZED),
            "{e:?}"
        );
        assert_eq!(e.kind(), "status");
        assert_eq!(
            e.to_string(),
            format!("{url}{EVENTS_PATH} answered 401 Unauthorized")
        );
    }

    #[tokio::test]
    async fn a_refused_connection_keeps_its_io_cause() {
        let e = first_failure(refusing().await).await;
        let SseError::Request(r) = &*e else {
            panic!("{e:?}");
        };
        assert!(r.is_connect(), "{e}");
        let mut source = e.source();
        let mut refused = false;
        while let Some(s) = source {
            refused |= s
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
            source = s.source();
        }
        assert!(refused, "{}", crate::chain(&*e));
    }

    #[tokio::test]
    async fn an_endless_redirect_is_a_redirect_failure() {
        let url = answering_with("302 Found", "Location: /v2/events\r\n", "").await;
        let e = first_failure(url).await;
        assert!(matches!(&*e, SseError::TooManyRedirects), "{e:?}");
        assert_eq!(e.kind(), "redirect");
    }

    #[tokio::test]
    async fn a_closed_stream_ended() {
        let url = answering_with("200 OK", "Content-Type: text/event-stream\r\n", ": hi\n\n").await;
        let e = first_failure(url).await;
        assert!(matches!(&*e, SseError::Ended), "{e:?}");
    }

    #[test]
    fn failures_compare_by_url_kind_and_message() {
        let failed = |error| StreamEvent::Failed {
            url: "u".into(),
            error: Arc::new(error),
            retry_in: None,
        };
        assert_eq!(failed(SseError::Ended), failed(SseError::Ended));
        assert_ne!(failed(SseError::Ended), failed(SseError::TooManyRedirects));
        assert_ne!(
            failed(SseError::NoResponse(Duration::from_secs(1))),
            failed(SseError::NoResponse(Duration::from_secs(2)))
        );
        assert_ne!(failed(SseError::Ended), StreamEvent::Activity);
    }

    #[test]
    fn redacts_user_info() {
        assert_eq!(redact("http://bob:s3cret@m1:8080/x"), "http://m1:8080/x");
        assert_eq!(redact("http://m1:8080"), "http://m1:8080");
        assert!(!format!("{:?}", SseConfig::new(vec!["http://a:b@h".into()])).contains("a:b"));
    }

    #[test]
    fn relevant_types() {
        assert!(is_relevant("status_update_event"));
        assert!(!is_relevant("deployment_info"));
        assert!(EVENTS_PATH.contains("plan-format=light"));
    }

    #[test]
    fn validate_rejects_bad_settings() {
        assert!(SseConfig::new(vec![]).validate().is_err());
        let mut c = SseConfig::new(vec!["http://m:8080".into()]);
        assert!(c.validate().is_ok());
        c.ca_cert_pem = Some(b"not a certificate".to_vec());
        assert!(c.validate().is_err());
        c.ca_cert_pem = Some(
            b"-----BEGIN CERTIFICATE-----\n!!notbase64!!\n-----END CERTIFICATE-----\n".to_vec(),
        );
        assert!(c.validate().is_err());
    }
}
