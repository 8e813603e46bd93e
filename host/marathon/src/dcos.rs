//! DC/OS service-account authentication (`--dcos-auth-credentials` or
//! `DCOS_SERVICE_ACCOUNT_CREDENTIAL`), and [`Auth`], the one way both the
//! REST client and the event-stream client authenticate.
//!
//! # Behaviour (as marathon-lb's `DCOSAuth`)
//! * The credentials are the JSON DC/OS hands a service account:
//!   `{"uid", "private_key" (PEM RSA, PKCS#1 or PKCS#8), "login_endpoint",
//!   "scheme": "RS256"}` (`scheme` optional; anything but `RS256` is refused).
//! * Login: a JWT `{"uid", "exp": now+60}` signed RS256 with the private key
//!   is POSTed as `{"uid", "token": <jwt>, "exp": now+3600}` to
//!   `login_endpoint`; the answer's `token` field (or, failing that, its
//!   `dcos-acs-auth-cookie` cookie) is sent as `Authorization: token=<token>`
//!   on every Marathon request and on the event stream.
//! * The token is reused until `now >= expiry - 10 s`, then renewed before
//!   the request. `expiry` is the `exp` of the answer's token when it is a
//!   JWT (decoded, not verified: it is only a hint), else the `exp` asked
//!   for; never less than 30 s ahead, so a skewed clock cannot turn every
//!   request into a login.
//! * A 401 from Marathon drops the token; the caller logs in again and
//!   retries once ([`Auth::invalidate`]).
//! * One token is shared (behind a mutex) by every clone of a [`DcosAuth`],
//!   so the REST client and the event stream log in once, and concurrent
//!   requests wait for a single login.
//!
//! # Deviations from marathon-lb
//! * **The login endpoint's TLS certificate is verified** (against
//!   `--marathon-ca-cert` when given, else the system roots); only
//!   `--marathon-insecure` turns that off. The original did not verify
//!   without a CA file.
//! * The answer's JSON `token` is accepted as well as the cookie.
//!
//! # Secrets
//! The private key and the tokens never appear in `Debug` output, logs or
//! error messages; header values are marked sensitive.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::Url;
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue, SET_COOKIE};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::{self, PemObject};
use serde::Serialize;
use tokio::sync::Mutex;

use super::{Credentials, SetupError, describe};

/// The cookie DC/OS's login answer sets to the token.
pub const LOGIN_COOKIE: &str = "dcos-acs-auth-cookie";
/// A token is renewed when less than this many seconds of it remain.
pub const REFRESH_MARGIN_SECS: u64 = 10;
/// Lifetime (s) of the login JWT (its `exp` claim).
pub const JWT_LIFETIME_SECS: u64 = 60;
/// Lifetime (s) of the token asked for (the `exp` of the login request).
pub const TOKEN_LIFETIME_SECS: u64 = 3600;
/// A token is considered valid for at least this long after the login.
pub const MIN_TOKEN_LIFETIME_SECS: u64 = 30;
/// Connect timeout of the login request (marathon-lb: 3.05 s).
pub const LOGIN_CONNECT_TIMEOUT: Duration = Duration::from_millis(3050);
/// Whole-request timeout of the login request (marathon-lb: 46 s).
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(46);
/// Largest login answer read.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// How a client authenticates to Marathon.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// No `Authorization` header.
    #[default]
    None,
    /// HTTP basic auth.
    Basic(Credentials),
    /// DC/OS service-account token.
    Dcos(DcosAuth),
}

impl Auth {
    /// Basic credentials beat DC/OS ones (marathon-lb's precedence: credential
    /// file > `--auth-credentials` > DC/OS; the first two are already merged
    /// into `basic`).
    pub fn new(basic: Option<Credentials>, dcos: Option<DcosAuth>) -> Self {
        match (basic, dcos) {
            (Some(c), _) => Self::Basic(c),
            (None, Some(d)) => Self::Dcos(d),
            (None, None) => Self::None,
        }
    }

    /// Whether requests carry no credentials.
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }

    /// The `Authorization` header for the next request (logging in to DC/OS
    /// first when there is no valid token). Marked sensitive.
    pub async fn header(&self) -> Result<Option<HeaderValue>, DcosError> {
        match self {
            Self::None => Ok(None),
            Self::Basic(c) => Ok(Some(basic_header(c))),
            Self::Dcos(d) => d.header().await.map(Some),
        }
    }

    /// Whether a 401 answer is worth one retry with a new token.
    pub fn renews_on_401(&self) -> bool {
        matches!(self, Self::Dcos(_))
    }

    /// Marathon refused `used` (401): forget it, so that the next
    /// [`Auth::header`] logs in again. A no-op for basic auth.
    pub async fn invalidate(&self, used: &HeaderValue) {
        if let Self::Dcos(d) = self {
            d.invalidate(used).await;
        }
    }
}

/// `Basic base64(user:password)`, as reqwest's `basic_auth` builds it.
fn basic_header(c: &Credentials) -> HeaderValue {
    let encoded = STANDARD.encode(format!("{}:{}", c.user, c.password));
    let mut value =
        HeaderValue::from_str(&format!("Basic {encoded}")).expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

/// Unusable DC/OS credentials, or a failed login. The messages never quote
/// the private key or a token.
#[derive(Debug, thiserror::Error)]
pub enum DcosError {
    /// The credentials are not a JSON object.
    #[error("DC/OS credentials are not a JSON object ({0})")]
    Json(String),
    /// A required field is missing or not a string.
    #[error("DC/OS credentials: field {0:?} is missing or not a string")]
    Field(&'static str),
    /// `scheme` is not RS256.
    #[error("DC/OS credentials: unsupported scheme {0:?} (only RS256)")]
    Scheme(String),
    /// The private key cannot be used.
    #[error("DC/OS credentials: private_key: {0}")]
    Key(String),
    /// `login_endpoint` is not an http(s) URL.
    #[error("DC/OS credentials: login_endpoint: {0}")]
    Endpoint(String),
    /// The login HTTP client could not be built (bad CA bundle, ...).
    #[error("cannot set up the DC/OS login client: {0}")]
    Client(#[source] SetupError),
    /// Signing the login JWT failed.
    #[error("cannot sign the DC/OS login token")]
    Sign,
    /// The login request failed or was refused.
    #[error("DC/OS login at {endpoint} failed: {message}")]
    Login {
        /// The login endpoint (without user info).
        endpoint: String,
        /// What went wrong.
        message: String,
        /// The HTTP error, when the request failed (without its URL).
        #[source]
        source: Option<reqwest::Error>,
    },
}

/// A DC/OS service account that logs in on demand and caches its token.
/// Cheap to clone; clones share the token.
#[derive(Clone)]
pub struct DcosAuth {
    inner: Arc<Inner>,
}

struct Inner {
    uid: String,
    key: RsaKeyPair,
    endpoint: Url,
    /// `endpoint` without user info, for messages.
    endpoint_display: String,
    http: reqwest::Client,
    cache: Mutex<TokenCache>,
}

impl fmt::Debug for DcosAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DcosAuth")
            .field("uid", &self.inner.uid)
            .field("login_endpoint", &self.inner.endpoint_display)
            .field("private_key", &"<hidden>")
            .finish_non_exhaustive()
    }
}

impl DcosAuth {
    /// Parse the service-account JSON and set up the login client, which
    /// verifies TLS against `ca_cert_pem` (else the system roots) unless
    /// `insecure`.
    pub fn from_json(
        json: &str,
        ca_cert_pem: Option<&[u8]>,
        insecure: bool,
    ) -> Result<Self, DcosError> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| DcosError::Json(e.to_string()))?;
        let object = value
            .as_object()
            .ok_or_else(|| DcosError::Json("not an object".into()))?;
        // marathon-lb drops null values first: a null field is a missing one.
        let field = |name: &'static str| -> Result<Option<&str>, DcosError> {
            match object.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(DcosError::Field(name)),
            }
        };
        let required = |name: &'static str| field(name)?.ok_or(DcosError::Field(name));
        if let Some(scheme) = field("scheme")?
            && scheme != "RS256"
        {
            return Err(DcosError::Scheme(scheme.chars().take(20).collect()));
        }
        let uid = required("uid")?.to_owned();
        if uid.is_empty() {
            return Err(DcosError::Field("uid"));
        }
        let key = parse_private_key(required("private_key")?)?;
        let endpoint = Url::parse(required("login_endpoint")?)
            .map_err(|e| DcosError::Endpoint(e.to_string()))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(DcosError::Endpoint(format!(
                "scheme {:?} is not http or https",
                endpoint.scheme()
            )));
        }
        let endpoint_display = super::redact_url(endpoint.as_str());
        if endpoint.scheme() == "http" {
            tracing::warn!(
                login_endpoint = %endpoint_display,
                "the DC/OS login endpoint is plain http: the login and its token are not encrypted"
            );
        }
        let http = login_client(ca_cert_pem, insecure)?;
        Ok(Self {
            inner: Arc::new(Inner {
                uid,
                key,
                endpoint,
                endpoint_display,
                http,
                cache: Mutex::new(TokenCache::default()),
            }),
        })
    }

    /// The service account.
    pub fn uid(&self) -> &str {
        &self.inner.uid
    }

    /// The login endpoint, without user info.
    pub fn login_endpoint(&self) -> &str {
        &self.inner.endpoint_display
    }

    /// `token=<token>` for the next request, logging in when there is no
    /// token or it expires within [`REFRESH_MARGIN_SECS`].
    pub async fn header(&self) -> Result<HeaderValue, DcosError> {
        let mut cache = self.inner.cache.lock().await;
        let now = unix_now();
        if let Some(header) = cache.current(now) {
            return Ok(header);
        }
        let token = self.login(now).await?;
        tracing::info!(
            uid = %self.inner.uid,
            login_endpoint = %self.inner.endpoint_display,
            expires_in_s = token.expiry.saturating_sub(now),
            "logged in to DC/OS"
        );
        let header = token.header.clone();
        cache.store(token);
        Ok(header)
    }

    /// Forget `used` if it is still the cached token (Marathon refused it).
    pub async fn invalidate(&self, used: &HeaderValue) {
        if self.inner.cache.lock().await.invalidate(used) {
            tracing::info!(uid = %self.inner.uid, "DC/OS token refused, logging in again");
        }
    }

    async fn login(&self, now: u64) -> Result<Token, DcosError> {
        let inner = &self.inner;
        let fail = |message: String| DcosError::Login {
            endpoint: inner.endpoint_display.clone(),
            message,
            source: None,
        };
        let failed = |e: reqwest::Error| {
            let e = e.without_url();
            DcosError::Login {
                endpoint: inner.endpoint_display.clone(),
                message: describe(&e),
                source: Some(e),
            }
        };
        let jwt = build_jwt(&inner.key, &inner.uid, now + JWT_LIFETIME_SECS)?;
        let requested = now + TOKEN_LIFETIME_SECS;
        let body = LoginRequest {
            uid: &inner.uid,
            token: &jwt,
            exp: requested,
        };
        let mut resp = inner
            .http
            .post(inner.endpoint.clone())
            .header(ACCEPT, "application/json")
            .json(&body)
            .send()
            .await
            .map_err(failed)?;
        let status = resp.status();
        let cookie = login_cookie(resp.headers());
        let mut answer = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(failed)? {
            if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(fail(format!(
                    "{status}, answer larger than {MAX_ANSWER_BYTES} bytes"
                )));
            }
            answer.extend_from_slice(&chunk);
        }
        let json = serde_json::from_slice::<serde_json::Value>(&answer).ok();
        if !status.is_success() {
            return Err(fail(format!("{status}{}", problem(json.as_ref()))));
        }
        let token = json
            .as_ref()
            .and_then(|j| j.get("token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .or(cookie)
            .ok_or_else(|| {
                fail(format!(
                    "{status} without a token (no \"token\" field, no {LOGIN_COOKIE} cookie)"
                ))
            })?;
        let mut header = HeaderValue::from_str(&format!("token={token}"))
            .map_err(|_| fail("the token is not a valid header value".into()))?;
        header.set_sensitive(true);
        Ok(Token {
            header,
            expiry: token_expiry(&token, requested, now),
        })
    }
}

/// The login request body.
#[derive(Serialize)]
struct LoginRequest<'a> {
    uid: &'a str,
    token: &'a str,
    exp: u64,
}

/// The JWT claims.
#[derive(Serialize)]
struct Claims<'a> {
    uid: &'a str,
    exp: u64,
}

/// The JWT header: RS256.
const JWT_HEADER: &str = r#"{"alg":"RS256","typ":"JWT"}"#;

/// `header.claims.signature` (base64url without padding), the claims
/// `{"uid", "exp"}`, signed RSASSA-PKCS1-v1_5 with SHA-256.
pub(crate) fn build_jwt(key: &RsaKeyPair, uid: &str, exp: u64) -> Result<String, DcosError> {
    let claims = serde_json::to_vec(&Claims { uid, exp }).map_err(|_| DcosError::Sign)?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(JWT_HEADER),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| DcosError::Sign)?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// The `exp` claim of `token` if it is a JWT (not verified).
fn jwt_exp(token: &str) -> Option<u64> {
    let mut parts = token.split('.');
    let (_, claims, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let claims = URL_SAFE_NO_PAD.decode(claims.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&claims).ok()?;
    let exp = claims.get("exp")?;
    exp.as_u64()
        .or_else(|| exp.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

/// When a token obtained at `now` with `requested` as its asked-for `exp`
/// stops being used.
fn token_expiry(token: &str, requested: u64, now: u64) -> u64 {
    jwt_exp(token)
        .unwrap_or(requested)
        .max(now + MIN_TOKEN_LIFETIME_SECS)
}

/// The `dcos-acs-auth-cookie` value among the `Set-Cookie` headers.
fn login_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(name, _)| name.trim() == LOGIN_COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// `: <title>: <description>` of a DC/OS error answer (never the token).
fn problem(json: Option<&serde_json::Value>) -> String {
    let Some(json) = json else {
        return String::new();
    };
    let text: Vec<&str> = ["title", "description", "message"]
        .iter()
        .filter_map(|k| json.get(*k)?.as_str())
        .collect();
    if text.is_empty() {
        String::new()
    } else {
        format!(
            ": {}",
            text.join(": ").chars().take(300).collect::<String>()
        )
    }
}

/// A PEM RSA private key, PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8
/// (`PRIVATE KEY`). Error messages never quote the key.
pub(crate) fn parse_private_key(text: &str) -> Result<RsaKeyPair, DcosError> {
    let der = match PrivateKeyDer::from_pem_slice(text.as_bytes()) {
        // Keys pasted with their newlines escaped twice ("\\n").
        Err(_) if text.contains("\\n") => {
            PrivateKeyDer::from_pem_slice(text.replace("\\n", "\n").as_bytes())
        }
        other => other,
    }
    .map_err(|e| {
        DcosError::Key(
            match e {
                pem::Error::NoItemsFound => {
                    "no unencrypted PEM private key (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)"
                }
                pem::Error::MissingSectionEnd { .. } => "PEM section without its END line",
                _ => "malformed PEM",
            }
            .into(),
        )
    })?;
    let parsed = match &der {
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Sec1(_) => {
            return Err(DcosError::Key(
                "an EC key; DC/OS service accounts use RSA (RS256)".into(),
            ));
        }
        _ => return Err(DcosError::Key("unsupported key format".into())),
    };
    parsed.map_err(|e| DcosError::Key(format!("not a usable RSA key (2048 to 8192 bits): {e}")))
}

fn login_client(ca_cert_pem: Option<&[u8]>, insecure: bool) -> Result<reqwest::Client, DcosError> {
    let builder = reqwest::Client::builder()
        .connect_timeout(LOGIN_CONNECT_TIMEOUT)
        .timeout(LOGIN_TIMEOUT)
        .user_agent("marathon-lb")
        .redirect(reqwest::redirect::Policy::none());
    let builder =
        super::tls::configure(builder, ca_cert_pem, insecure).map_err(DcosError::Client)?;
    builder
        .build()
        .map_err(|e| DcosError::Client(SetupError::Build(e)))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A token and when it stops being used (Unix seconds).
struct Token {
    header: HeaderValue,
    expiry: u64,
}

/// The cached token: the refresh and invalidation rules, without I/O.
#[derive(Default)]
struct TokenCache {
    token: Option<Token>,
}

impl TokenCache {
    /// The token's header, unless missing or `now >= expiry - 10 s`.
    fn current(&self, now: u64) -> Option<HeaderValue> {
        self.token
            .as_ref()
            .filter(|t| now < t.expiry.saturating_sub(REFRESH_MARGIN_SECS))
            .map(|t| t.header.clone())
    }

    fn store(&mut self, token: Token) {
        self.token = Some(token);
    }

    /// Drops the token if it is `used` (not a newer one another request
    /// already got); whether it did.
    fn invalidate(&mut self, used: &HeaderValue) -> bool {
        if self.token.as_ref().is_some_and(|t| t.header == *used) {
            self.token = None;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    use super::*;

    const PKCS1: &str = include_str!("../tests/data/dcos-test-key.pkcs1.pem");
    const PKCS8: &str = include_str!("../tests/data/dcos-test-key.pkcs8.pem");

    fn credentials(key: &str) -> String {
        serde_json::json!({
            "uid": "mlb-test",
            "private_key": key,
            "login_endpoint": "https://leader.mesos/acs/api/v1/auth/login",
            "scheme": "RS256",
        })
        .to_string()
    }

    fn decode(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn verify(key: &RsaKeyPair, jwt: &str) -> bool {
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key().as_ref());
        public
            .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
            .is_ok()
    }

    #[test]
    fn jwt_is_rs256_signed_with_the_key() {
        let key = parse_private_key(PKCS8).unwrap();
        let jwt = build_jwt(&key, "mlb-test", 1_700_000_060).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert!(!jwt.contains('=') && !jwt.contains('+') && !jwt.contains('/'));
        assert_eq!(
            decode(parts[0]),
            serde_json::json!({"alg": "RS256", "typ": "JWT"})
        );
        assert_eq!(
            decode(parts[1]),
            serde_json::json!({"uid": "mlb-test", "exp": 1_700_000_060u64})
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 256);
        assert!(verify(&key, &jwt));

        // Tampered claims do not verify.
        let forged_claims = URL_SAFE_NO_PAD.encode(r#"{"uid":"root","exp":1700000060}"#);
        let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
        assert!(!verify(&key, &forged));
        assert_eq!(jwt_exp(&jwt), Some(1_700_000_060));
    }

    #[test]
    fn pkcs1_and_pkcs8_are_the_same_key() {
        let k1 = parse_private_key(PKCS1).unwrap();
        let k8 = parse_private_key(PKCS8).unwrap();
        assert_eq!(k1.public_key().as_ref(), k8.public_key().as_ref());
        // PKCS#1 v1.5 signatures are deterministic.
        let a = build_jwt(&k1, "u", 5).unwrap();
        assert_eq!(a, build_jwt(&k8, "u", 5).unwrap());
        assert!(verify(&k8, &a));
        // Newlines escaped twice are tolerated.
        assert!(parse_private_key(&PKCS1.replace('\n', "\\n")).is_ok());
    }

    #[tokio::test]
    async fn a_failed_login_keeps_the_http_error_and_a_refusal_has_none() {
        use std::error::Error as _;
        let login = |endpoint: String| {
            let json = serde_json::json!({
                "uid": "mlb-test",
                "private_key": PKCS1,
                "login_endpoint": format!("{endpoint}/acs/api/v1/auth/login"),
            })
            .to_string();
            DcosAuth::from_json(&json, None, false).unwrap()
        };
        let e = login(crate::test_server::refusing().await)
            .header()
            .await
            .unwrap_err();
        assert!(
            matches!(&e, DcosError::Login { source: Some(r), .. } if r.is_connect()),
            "{e:?}"
        );
        assert!(e.source().is_some_and(|s| s.is::<reqwest::Error>()));
        let refusing = crate::test_server::answering("401 Unauthorized", r#"{"title":"no"}"#).await;
        let e = login(refusing).header().await.unwrap_err();
        assert!(
            matches!(&e, DcosError::Login { source: None, message, .. } if message.starts_with("401")),
            "{e:?}"
        );
    }

    #[test]
    fn credentials_parse_and_stay_hidden() {
        let auth = DcosAuth::from_json(&credentials(PKCS1), None, false).unwrap();
        assert_eq!(auth.uid(), "mlb-test");
        assert_eq!(
            auth.login_endpoint(),
            "https://leader.mesos/acs/api/v1/auth/login"
        );
        let debug = format!("{:?}", Auth::Dcos(auth.clone()));
        assert!(debug.contains("mlb-test"), "{debug}");
        let secret_line = PKCS1.lines().nth(5).unwrap();
        for shown in [&debug, &format!("{auth:?}")] {
            assert!(!shown.contains("PRIVATE KEY") && !shown.contains(secret_line));
        }
        // The scheme is optional; user info of the endpoint is not shown.
        let json = serde_json::json!({
            "uid": "u", "private_key": PKCS8,
            "login_endpoint": "https://a:b@leader.mesos/acs/api/v1/auth/login",
        });
        let auth = DcosAuth::from_json(&json.to_string(), None, false).unwrap();
        assert!(!auth.login_endpoint().contains("a:b"));
    }

    #[test]
    fn bad_credentials_are_refused_without_quoting_the_key() {
        let secret_line = PKCS1.lines().nth(5).unwrap();
        let base = serde_json::from_str::<serde_json::Value>(&credentials(PKCS1)).unwrap();
        let with = |k: &str, v: serde_json::Value| {
            let mut j = base.clone();
            j[k] = v;
            j.to_string()
        };
        let without = |k: &str| {
            let mut j = base.clone();
            j.as_object_mut().unwrap().remove(k);
            j.to_string()
        };
        let truncated = PKCS1.lines().take(8).collect::<Vec<_>>().join("\n");
        let corrupted = PKCS1.replace(secret_line, &format!("*{}", &secret_line[1..]));
        let cases = [
            "not json".to_owned(),
            "[1]".to_owned(),
            without("uid"),
            without("private_key"),
            without("login_endpoint"),
            with("uid", serde_json::Value::Null),
            with("uid", serde_json::json!(7)),
            with("scheme", serde_json::json!("HS256")),
            with("login_endpoint", serde_json::json!("ftp://x/login")),
            with("login_endpoint", serde_json::json!("not a url")),
            with("private_key", serde_json::json!("no pem here")),
            with("private_key", serde_json::json!(truncated)),
            with("private_key", serde_json::json!(corrupted)),
            with(
                "private_key",
                serde_json::json!(
                    "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"
                ),
            ),
        ];
        for (i, case) in cases.iter().enumerate() {
            let err = DcosAuth::from_json(case, None, false)
                .map(|_| format!("case {i} accepted"))
                .expect_err("refused")
                .to_string();
            assert!(!err.contains(secret_line) && !err.contains("MII"), "{err}");
        }
        let err = DcosAuth::from_json(&credentials(PKCS1), Some(b"not a cert"), false).unwrap_err();
        assert!(matches!(err, DcosError::Client(_)), "{err}");
    }

    fn token(value: &str, expiry: u64) -> Token {
        let mut header = HeaderValue::from_str(&format!("token={value}")).unwrap();
        header.set_sensitive(true);
        Token { header, expiry }
    }

    #[test]
    fn token_is_renewed_ten_seconds_before_expiry() {
        let mut cache = TokenCache::default();
        assert!(cache.current(1000).is_none());
        cache.store(token("t1", 1000 + 3600));
        assert_eq!(cache.current(1000).unwrap(), "token=t1");
        assert!(cache.current(1000 + 3589).is_some());
        assert!(cache.current(1000 + 3590).is_none(), "now >= expiry - 10");
        assert!(cache.current(1000 + 4000).is_none());
        // Debug of the header hides it.
        assert!(!format!("{:?}", cache.current(1000).unwrap()).contains("t1"));
    }

    #[test]
    fn only_the_refused_token_is_dropped() {
        let mut cache = TokenCache::default();
        cache.store(token("t2", 5000));
        assert!(!cache.invalidate(&HeaderValue::from_static("token=t1")));
        assert!(cache.current(100).is_some(), "a newer token survives");
        assert!(cache.invalidate(&HeaderValue::from_static("token=t2")));
        assert!(cache.current(100).is_none());
    }

    #[test]
    fn expiry_from_the_answer() {
        let now = 1_700_000_000;
        let requested = now + TOKEN_LIFETIME_SECS;
        // Opaque token: the exp asked for.
        assert_eq!(token_expiry("opaque-token", requested, now), requested);
        // A JWT: its exp, decoded without verification.
        let claims = |c: &str| format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(c));
        let jwt = claims(&format!(r#"{{"uid":"u","exp":{}}}"#, now + 600));
        assert_eq!(token_expiry(&jwt, requested, now), now + 600);
        let jwt = claims(&format!(r#"{{"exp":{}.5}}"#, now + 7200));
        assert_eq!(token_expiry(&jwt, requested, now), now + 7200);
        // No exp, or garbage: the exp asked for.
        assert_eq!(
            token_expiry(&claims(r#"{"uid":"u"}"#), requested, now),
            requested
        );
        assert_eq!(token_expiry("a.!!!.c", requested, now), requested);
        assert_eq!(token_expiry("a.b.c.d", requested, now), requested);
        // Already expired (skewed clock): still used for a while, no login storm.
        let jwt = claims(&format!(r#"{{"exp":{}}}"#, now - 100));
        assert_eq!(
            token_expiry(&jwt, requested, now),
            now + MIN_TOKEN_LIFETIME_SECS
        );
    }

    #[test]
    fn cookie_and_problem() {
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("other=1; Path=/"));
        assert_eq!(login_cookie(&h), None);
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("dcos-acs-auth-cookie=\"abc.def\"; Path=/; HttpOnly"),
        );
        assert_eq!(login_cookie(&h).as_deref(), Some("abc.def"));
        let answer = serde_json::json!({"title": "Invalid credentials", "description": "bad signature", "code": "ERR"});
        assert_eq!(
            problem(Some(&answer)),
            ": Invalid credentials: bad signature"
        );
        assert_eq!(problem(None), "");
    }

    #[test]
    fn precedence_and_basic_header() {
        let basic = Credentials::parse("bob:s3cret", "t").unwrap();
        let dcos = DcosAuth::from_json(&credentials(PKCS8), None, false).unwrap();
        assert!(matches!(
            Auth::new(Some(basic.clone()), Some(dcos.clone())),
            Auth::Basic(_)
        ));
        assert!(matches!(Auth::new(None, Some(dcos)), Auth::Dcos(_)));
        assert!(Auth::new(None, None).is_none());
        let h = basic_header(&basic);
        assert_eq!(h, "Basic Ym9iOnMzY3JldA==");
        assert!(h.is_sensitive());
    }
}
