//! The client's errors: [`MarathonError`] (why apps could not be fetched),
//! [`RequestError`] (why one request to one Marathon got no usable answer:
//! the fail-over cause) and [`SetupError`] (why an HTTP client could not be
//! built).
//!
//! # Display and `source()`
//! Each `Display` is the whole one-line story, the cause included, as the
//! log lines have always shown it (`%error`), and never quotes a URL with
//! user info or a credential. `source()` exposes the typed cause as well
//! (`reqwest::Error`, and below it `hyper`/`io` errors; `serde_json::Error`)
//! for matching and downcasting; a printer that walks the chain should skip
//! a cause whose text its parent already shows.

use crate::dcos::DcosError;

/// Why apps could not be fetched.
///
/// Every variant but [`MarathonError::DryRun`] is retryable (the next poll
/// or event may succeed); the caller keeps the last good config meanwhile.
#[derive(Debug, thiserror::Error)]
pub enum MarathonError {
    /// No URL answered: what each one gave, in the order tried.
    #[error("no Marathon answered: {}", join(.0))]
    AllHostsFailed(Vec<HostFailure>),
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
    Client(#[source] SetupError),
    /// The DC/OS login failed.
    #[error("{0}")]
    Auth(#[from] DcosError),
    /// A write was refused because the client is read-only (a dry run).
    #[error("refusing {method} {path} in a dry run")]
    DryRun {
        /// The HTTP method.
        method: String,
        /// Path and query.
        path: String,
    },
    /// The request was abandoned because the controller is shutting down.
    #[error("request abandoned: shutting down")]
    Cancelled,
}

impl From<SetupError> for MarathonError {
    fn from(e: SetupError) -> Self {
        Self::Client(e)
    }
}

impl MarathonError {
    /// A short stable label of the variant (for metrics and tests):
    /// `all_hosts_failed`, `status`, `client`, `auth`, `dry_run`, `cancelled`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AllHostsFailed(_) => "all_hosts_failed",
            Self::Status { .. } => "status",
            Self::Client(_) => "client",
            Self::Auth(_) => "auth",
            Self::DryRun { .. } => "dry_run",
            Self::Cancelled => "cancelled",
        }
    }
}

fn join(failures: &[HostFailure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What one Marathon URL gave instead of an answer.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {error}")]
pub struct HostFailure {
    /// The URL tried (no user info).
    pub url: String,
    /// Why it gave no usable answer.
    #[source]
    pub error: RequestError,
}

/// Why one request to one Marathon got no usable answer (the next URL may
/// be tried: see [`crate::MarathonClient::request`]).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Connecting, sending or receiving failed (refused, timed out, TLS,
    /// reset, ...). Kept without its URL (it may carry credentials); the
    /// text is the whole chain plus a hint for TLS failures the CA bundle
    /// can fix.
    #[error("{}", describe(.0))]
    Http(#[source] reqwest::Error),
    /// The body grew past the cap (`--marathon-max-body-mib`).
    #[error(
        "the response body is larger than {} (--marathon-max-body-mib); refused",
        human_size(*.cap)
    )]
    TooLarge {
        /// The cap in bytes.
        cap: u64,
    },
    /// The body is not JSON (marathon-lb with requests >= 2.27 fails over
    /// on it as on a connection problem).
    #[error("{status}, body is not JSON ({source})")]
    NotJson {
        /// The status of the answer.
        status: reqwest::StatusCode,
        /// Why it does not parse.
        source: serde_json::Error,
    },
}

impl RequestError {
    /// `e` without its URL.
    pub(crate) fn http(e: reqwest::Error) -> Self {
        Self::Http(e.without_url())
    }

    /// The connection was never made: the request was not received, so
    /// even a write may be sent to the next URL.
    pub fn unsent(&self) -> bool {
        matches!(self, Self::Http(e) if e.is_connect())
    }

    /// The request timed out (connect or whole request).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Http(e) if e.is_timeout())
    }
}

/// Why an HTTP client (REST, event stream or DC/OS login) could not be set
/// up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// No `--marathon` URL.
    #[error("no Marathon URL")]
    NoUrl,
    /// The `--marathon-ca-cert` bundle does not parse.
    #[error("--marathon-ca-cert: {0}")]
    CaBundle(#[source] reqwest::Error),
    /// The `--marathon-ca-cert` bundle holds no certificate.
    #[error("--marathon-ca-cert: no PEM certificate found")]
    NoCertificate,
    /// reqwest refused the settings (TLS back-end, ...).
    #[error("{0}")]
    Build(#[source] reqwest::Error),
}

/// `n` bytes as MiB (or bytes below 1 MiB).
pub(crate) fn human_size(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

/// The error and its causes on one line, with a hint for TLS verification
/// failures. `e` must already be without its URL (it may carry
/// credentials; callers name the redacted URL themselves).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut out = chain(e);
    if let Some(hint) = crate::tls::hint(&out) {
        out.push_str(" (");
        out.push_str(hint);
        out.push(')');
    }
    out
}

/// `e` and its sources on one line, `: `-separated, skipping a source whose
/// text its parent already shows.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("cannot do it: {0}")]
        Shown(#[source] std::io::Error),
        #[error("cannot do it")]
        Hidden(#[source] std::io::Error),
    }

    #[test]
    fn chain_shows_each_cause_once() {
        let io = || std::io::Error::other("disk on fire");
        assert_eq!(chain(&Outer::Shown(io())), "cannot do it: disk on fire");
        assert_eq!(chain(&Outer::Hidden(io())), "cannot do it: disk on fire");
        let e = MarathonError::Client(SetupError::NoCertificate);
        assert_eq!(
            chain(&e),
            "cannot set up the HTTP client: --marathon-ca-cert: no PEM certificate found"
        );
        assert_eq!(e.kind(), "client");
    }
}
