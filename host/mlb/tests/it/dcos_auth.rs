//! DC/OS service-account auth end to end: a loopback login endpoint that
//! verifies the RS256 JWT with the account's public key and hands out
//! tokens, and a loopback "Marathon" (hand-rolled HTTP) that requires
//! `Authorization: token=<token>` on `/v2/apps` and `/v2/events`. The real
//! binary runs one-shot against them; the event-stream follower and the REST
//! client run in process. The key is the throw-away test key of
//! `tests/data/` (see its README).

mod support;

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mlb_marathon::sse::{SseConfig, follow};
use mlb_marathon::{ClientConfig, DcosAuth, MarathonClient};
use marathon_lb::metrics::Metrics;
use marathon_lb::trigger::{Cause, Trigger};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const PKCS1: &str = include_str!("data/dcos-test-key.pkcs1.pem");
const PKCS8: &str = include_str!("data/dcos-test-key.pkcs8.pem");
const PUBLIC: &str = include_str!("data/dcos-test-key.pub.pem");
const UID: &str = "mlb-test";
const LOGIN_PATH: &str = "/acs/api/v1/auth/login";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// One parsed HTTP/1.1 request.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while body.len() < len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    extra: &str,
    content_type: &str,
    body: &str,
) {
    let text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// How the login endpoint answers a valid login.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// `{"token": "tok-N"}`.
    Json,
    /// Only `Set-Cookie: dcos-acs-auth-cookie=tok-N` (marathon-lb reads this).
    Cookie,
    /// 401 as DC/OS does for unknown accounts.
    Refuse,
}

/// Why the JWT of a login is not acceptable, if it is not.
fn check_login(req: &Request, public: &[u8]) -> Result<(), String> {
    if req.method != "POST" || req.path != LOGIN_PATH {
        return Err(format!("{} {}", req.method, req.path));
    }
    if !req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return Err("not JSON".into());
    }
    let body: Value = serde_json::from_slice(&req.body).map_err(|e| e.to_string())?;
    if body["uid"] != UID {
        return Err(format!("uid {}", body["uid"]));
    }
    let exp = body["exp"].as_i64().ok_or("no exp")?;
    if (exp - (now() + 3600)).abs() > 5 {
        return Err(format!("login exp {exp} is not now+3600"));
    }
    let jwt = body["token"].as_str().ok_or("no token")?;
    let (input, signature) = jwt.rsplit_once('.').ok_or("not a JWT")?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|e| e.to_string())?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
        .verify(input.as_bytes(), &signature)
        .map_err(|_| "bad signature".to_owned())?;
    let (header, claims) = input.split_once('.').ok_or("not a JWT")?;
    let decode = |s: &str| -> Result<Value, String> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())
    };
    if decode(header)? != json!({"alg": "RS256", "typ": "JWT"}) {
        return Err("JWT header".into());
    }
    let claims = decode(claims)?;
    if claims["uid"] != UID {
        return Err("JWT uid".into());
    }
    let exp = claims["exp"].as_i64().ok_or("JWT without exp")?;
    if (exp - (now() + 60)).abs() > 5 {
        return Err(format!("JWT exp {exp} is not now+60"));
    }
    Ok(())
}

/// The loopback DC/OS login endpoint.
struct Login {
    endpoint: String,
    logins: Arc<AtomicUsize>,
    rejected: Arc<Mutex<Vec<String>>>,
}

impl Login {
    async fn start(answer: Answer) -> Self {
        let public = SubjectPublicKeyInfoDer::from_pem_slice(PUBLIC.as_bytes())
            .unwrap()
            .to_vec();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}{LOGIN_PATH}", listener.local_addr().unwrap());
        let logins = Arc::new(AtomicUsize::new(0));
        let rejected = Arc::new(Mutex::new(Vec::new()));
        let (l, r) = (logins.clone(), rejected.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (public, logins, rejected) = (public.clone(), l.clone(), r.clone());
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut stream).await else {
                        return;
                    };
                    if let Err(why) = check_login(&req, &public) {
                        rejected.lock().unwrap().push(why.clone());
                        let body = json!({"title": "Invalid token", "description": why});
                        let body = body.to_string();
                        respond(
                            &mut stream,
                            "401 Unauthorized",
                            "",
                            "application/json",
                            &body,
                        )
                        .await;
                        return;
                    }
                    let n = logins.fetch_add(1, Ordering::SeqCst) + 1;
                    let token = format!("tok-{n}");
                    match answer {
                        Answer::Json => {
                            let body = json!({"token": token}).to_string();
                            respond(&mut stream, "200 OK", "", "application/json", &body).await;
                        }
                        Answer::Cookie => {
                            let cookie = format!(
                                "Set-Cookie: dcos-acs-auth-cookie={token}; Path=/; HttpOnly\r\n"
                            );
                            respond(&mut stream, "200 OK", &cookie, "application/json", "{}").await;
                        }
                        Answer::Refuse => {
                            let body = json!({
                                "title": "Invalid credentials",
                                "description": "unknown service account",
                                "code": "ERR_INVALID_CREDENTIALS"
                            })
                            .to_string();
                            respond(
                                &mut stream,
                                "401 Unauthorized",
                                "",
                                "application/json",
                                &body,
                            )
                            .await;
                        }
                    }
                });
            }
        });
        Self {
            endpoint,
            logins,
            rejected,
        }
    }

    fn logins(&self) -> usize {
        self.logins.load(Ordering::SeqCst)
    }

    fn rejected(&self) -> Vec<String> {
        self.rejected.lock().unwrap().clone()
    }

    /// The service-account JSON for this endpoint.
    fn credentials(&self, key: &str) -> String {
        json!({
            "uid": UID,
            "private_key": key,
            "login_endpoint": self.endpoint,
            "scheme": "RS256",
        })
        .to_string()
    }
}

fn apps() -> Value {
    json!({"apps": [{
        "id": "/dcosapp", "instances": 1,
        "labels": {"HAPROXY_GROUP": "external"},
        "portDefinitions": [{"port": 10001}],
        "tasks": [{"id": "dcosapp.t1", "host": "10.0.0.1", "ports": [31001], "state": "TASK_RUNNING"}]
    }]})
}

/// (path, Authorization) of every request.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// The loopback Marathon: `/v2/apps` and `/v2/events` for requests whose
/// `Authorization` satisfies `accept`, 401 (HTML, as Jetty) otherwise.
struct Marathon {
    url: String,
    seen: Seen,
}

impl Marathon {
    async fn start(accept: fn(&str) -> bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Seen::default();
        let s = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let seen = s.clone();
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut stream).await else {
                        return;
                    };
                    let auth = req.header("authorization").map(str::to_owned);
                    seen.lock().unwrap().push((req.path.clone(), auth.clone()));
                    if !auth.as_deref().is_some_and(accept) {
                        let html = "<html><body><h2>HTTP ERROR 401</h2></body></html>";
                        respond(&mut stream, "401 Unauthorized", "", "text/html", html).await;
                    } else if req.path.starts_with("/v2/apps") {
                        respond(
                            &mut stream,
                            "200 OK",
                            "",
                            "application/json",
                            &apps().to_string(),
                        )
                        .await;
                    } else if req.path.starts_with("/v2/events") {
                        event_stream(stream).await;
                    } else {
                        respond(&mut stream, "404 Not Found", "", "application/json", "{}").await;
                    }
                });
            }
        });
        Self { url, seen }
    }

    /// The `Authorization` of each request to a path starting with `prefix`.
    fn auth_of(&self, prefix: &str) -> Vec<Option<String>> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(_, a)| a.clone())
            .collect()
    }
}

/// One status update, then keep-alives for at most 10 s.
async fn event_stream(mut stream: TcpStream) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let event =
        "event: status_update_event\r\ndata: {\"eventType\":\"status_update_event\"}\r\n\r\n";
    if stream.write_all(event.as_bytes()).await.is_err() {
        return;
    }
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if stream.write_all(b"\r\n").await.is_err() {
            return;
        }
    }
}

fn token_only(expected: &'static str) -> fn(&str) -> bool {
    match expected {
        "tok-1" => |a| a == "token=tok-1",
        "tok-2" => |a| a == "token=tok-2",
        _ => |_| false,
    }
}

/// How the binary gets the credentials.
enum Creds {
    Flag(String),
    Env(String),
}

/// What one one-shot run of the binary did.
struct Run {
    output: Output,
    log: String,
    config: Option<String>,
}

fn run_binary(marathon: &str, creds: Creds, extra: &[&str]) -> Run {
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("haproxy.cfg");
    let mut cmd = Command::new(support::binary());
    cmd.current_dir(work.path())
        .env_remove("DCOS_SERVICE_ACCOUNT_CREDENTIAL")
        .args(["--marathon", marathon, "--haproxy-config"])
        .arg(&cfg)
        .args([
            "--group",
            "*",
            "--skip-validation",
            "--command",
            "true",
            // Another test's HAProxy may be running: do not wait for a new one.
            "--max-reload-retries",
            "0",
            "--reload-interval",
            "0",
            "--syslog-socket",
            "/dev/null",
            "--log-level",
            "DEBUG",
        ])
        .args(extra);
    for (k, _) in std::env::vars() {
        if k.starts_with("HAPROXY_") || k == "FRAMEWORK_NAME" {
            cmd.env_remove(k);
        }
    }
    match creds {
        Creds::Flag(json) => {
            cmd.arg("--dcos-auth-credentials").arg(json);
        }
        Creds::Env(json) => {
            cmd.env("DCOS_SERVICE_ACCOUNT_CREDENTIAL", json);
        }
    }
    let output = cmd.output().unwrap();
    Run {
        log: String::from_utf8_lossy(&output.stderr).into_owned(),
        config: std::fs::read_to_string(&cfg).ok(),
        output,
    }
}

/// The log quotes neither the key nor a token.
fn assert_no_secrets(log: &str) {
    for secret in ["PRIVATE KEY", "tok-1", "tok-2", "eyJ"] {
        assert!(!log.contains(secret), "log shows {secret:?}:\n{log}");
    }
    for line in PKCS1.lines().chain(PKCS8.lines()) {
        if let Some(start) = line.get(..20).filter(|_| !line.starts_with("-----")) {
            assert!(!log.contains(start), "log shows key material:\n{log}");
        }
    }
}

fn assert_config(run: &Run) {
    assert!(
        run.output.status.success(),
        "exit {}; log:\n{}",
        run.output.status,
        run.log
    );
    let config = run.config.as_deref().expect("config written");
    assert!(config.contains("backend dcosapp_10001"), "{config}");
    assert!(config.contains("10.0.0.1:31001"), "{config}");
}

#[test]
fn oneshot_logs_in_and_sends_the_token() {
    let rt = support::runtime();
    let (login, marathon) = rt.block_on(async {
        (
            Login::start(Answer::Json).await,
            Marathon::start(token_only("tok-1")).await,
        )
    });
    let run = run_binary(&marathon.url, Creds::Flag(login.credentials(PKCS1)), &[]);
    assert_config(&run);
    assert_eq!(login.rejected(), Vec::<String>::new());
    assert_eq!(login.logins(), 1);
    assert_eq!(
        marathon.auth_of("/v2/apps"),
        vec![Some("token=tok-1".to_owned())]
    );
    assert!(run.log.contains("logged in to DC/OS"), "{}", run.log);
    assert_no_secrets(&run.log);
}

#[test]
fn env_credentials_pkcs8_key_and_cookie_answer() {
    let rt = support::runtime();
    let (login, marathon) = rt.block_on(async {
        (
            Login::start(Answer::Cookie).await,
            Marathon::start(token_only("tok-1")).await,
        )
    });
    let run = run_binary(&marathon.url, Creds::Env(login.credentials(PKCS8)), &[]);
    assert_config(&run);
    assert_eq!(login.rejected(), Vec::<String>::new());
    assert_eq!(login.logins(), 1);
    assert_no_secrets(&run.log);
}

#[test]
fn refused_token_is_renewed_once() {
    let rt = support::runtime();
    let (login, marathon) = rt.block_on(async {
        (
            Login::start(Answer::Json).await,
            Marathon::start(token_only("tok-2")).await,
        )
    });
    let run = run_binary(&marathon.url, Creds::Flag(login.credentials(PKCS1)), &[]);
    assert_config(&run);
    assert_eq!(login.logins(), 2);
    assert_eq!(
        marathon.auth_of("/v2/apps"),
        vec![
            Some("token=tok-1".to_owned()),
            Some("token=tok-2".to_owned())
        ]
    );
    assert_no_secrets(&run.log);
}

#[test]
fn persistent_401_fails_after_one_renewal() {
    let rt = support::runtime();
    let (login, marathon) = rt.block_on(async {
        (
            Login::start(Answer::Json).await,
            Marathon::start(token_only("none")).await,
        )
    });
    let run = run_binary(&marathon.url, Creds::Flag(login.credentials(PKCS1)), &[]);
    assert!(!run.output.status.success(), "{}", run.log);
    assert!(run.config.is_none());
    assert_eq!(login.logins(), 2, "one login, one renewal, no loop");
    assert_eq!(marathon.auth_of("/v2/apps").len(), 2);
    assert!(run.log.contains("401"), "{}", run.log);
    assert_no_secrets(&run.log);
}

#[test]
fn refused_login_is_reported() {
    let rt = support::runtime();
    let (login, marathon) = rt.block_on(async {
        (
            Login::start(Answer::Refuse).await,
            Marathon::start(|_| true).await,
        )
    });
    let run = run_binary(&marathon.url, Creds::Env(login.credentials(PKCS1)), &[]);
    assert!(!run.output.status.success(), "{}", run.log);
    assert!(run.log.contains("DC/OS login at"), "{}", run.log);
    assert!(run.log.contains("Invalid credentials"), "{}", run.log);
    assert!(
        marathon.auth_of("/").is_empty(),
        "no request without a token"
    );
    assert_no_secrets(&run.log);
}

#[test]
fn basic_credentials_beat_dcos() {
    let rt = support::runtime();
    let (login, marathon) = rt.block_on(async {
        (
            Login::start(Answer::Json).await,
            Marathon::start(|a| a.starts_with("Basic ")).await,
        )
    });
    let run = run_binary(
        &marathon.url,
        Creds::Env(login.credentials(PKCS1)),
        &["--auth-credentials", "bob:s3cret"],
    );
    assert_config(&run);
    assert_eq!(login.logins(), 0);
    assert_eq!(
        marathon.auth_of("/v2/apps"),
        vec![Some("Basic Ym9iOnMzY3JldA==".to_owned())]
    );
}

#[test]
fn bad_credentials_stop_at_start() {
    let run = run_binary(
        "http://127.0.0.1:9",
        Creds::Flag(
            json!({"uid": UID, "private_key": "nope", "login_endpoint": "http://127.0.0.1:9/x"})
                .to_string(),
        ),
        &[],
    );
    assert!(!run.output.status.success());
    assert!(
        run.log.contains("DC/OS credentials: private_key"),
        "{}",
        run.log
    );
    assert!(!run.log.contains("not supported"), "{}", run.log);
}

async fn next(rx: &mut mpsc::Receiver<Trigger>) -> Trigger {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a trigger within 5 s")
        .expect("channel open")
}

#[test]
fn event_stream_and_rest_client_share_one_login() {
    let rt = support::runtime();
    rt.block_on(async {
        let login = Login::start(Answer::Json).await;
        let marathon = Marathon::start(token_only("tok-1")).await;
        let auth = DcosAuth::from_json(&login.credentials(PKCS8), None, false).unwrap();

        let mut config = ClientConfig::new(vec![marathon.url.clone()]);
        config.dcos = Some(auth.clone());
        let body = MarathonClient::new(config)
            .unwrap()
            .fetch_apps()
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&body).contains("dcosapp"));

        let mut sse = SseConfig::new(vec![marathon.url.clone()]);
        sse.dcos = Some(auth.clone());
        sse.watchdog = Duration::from_secs(2);
        assert!(!format!("{sse:?}").contains("PRIVATE"));
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(follow(sse, tx, Arc::new(Metrics::default())));
        assert_eq!(next(&mut rx).await, Trigger::Reset(Cause::StreamConnected));
        assert_eq!(next(&mut rx).await, Trigger::Reset(Cause::Event));
        drop(rx);
        tokio::time::timeout(Duration::from_secs(3), task)
            .await
            .unwrap()
            .unwrap();

        assert_eq!(login.logins(), 1, "one token for both clients");
        assert_eq!(
            marathon.auth_of("/v2/events"),
            vec![Some("token=tok-1".to_owned())]
        );
    });
}

#[test]
fn event_stream_renews_a_refused_token() {
    let rt = support::runtime();
    rt.block_on(async {
        let login = Login::start(Answer::Json).await;
        let marathon = Marathon::start(token_only("tok-2")).await;
        let mut sse = SseConfig::new(vec![marathon.url.clone()]);
        sse.dcos = Some(DcosAuth::from_json(&login.credentials(PKCS1), None, false).unwrap());
        sse.watchdog = Duration::from_secs(2);
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(follow(sse, tx, Arc::new(Metrics::default())));
        assert_eq!(next(&mut rx).await, Trigger::Reset(Cause::StreamConnected));
        drop(rx);
        tokio::time::timeout(Duration::from_secs(3), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(login.logins(), 2);
        assert_eq!(
            marathon.auth_of("/v2/events"),
            vec![
                Some("token=tok-1".to_owned()),
                Some("token=tok-2".to_owned())
            ]
        );
    });
}
