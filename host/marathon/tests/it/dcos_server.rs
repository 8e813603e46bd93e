//! Loopback DC/OS servers for the DC/OS auth tests (this crate's and the
//! marathon-lb binary's, which includes this file): a login endpoint that
//! verifies the RS256 JWT with the account's public key and hands out
//! tokens, and a "Marathon" (hand-rolled HTTP) that requires
//! `Authorization: token=<token>` on `/v2/apps` and `/v2/events`. The key
//! is the throw-away test key of `tests/data/` (see its README).

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const PKCS1: &str = include_str!("../data/dcos-test-key.pkcs1.pem");
pub const PKCS8: &str = include_str!("../data/dcos-test-key.pkcs8.pem");
pub const PUBLIC: &str = include_str!("../data/dcos-test-key.pub.pem");
pub const UID: &str = "mlb-test";
pub const LOGIN_PATH: &str = "/acs/api/v1/auth/login";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// One parsed HTTP/1.1 request.
#[derive(Debug)]
pub struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub async fn read_request(stream: &mut TcpStream) -> Option<Request> {
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

pub async fn respond(
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
pub enum Answer {
    /// `{"token": "tok-N"}`.
    Json,
    /// Only `Set-Cookie: dcos-acs-auth-cookie=tok-N` (marathon-lb reads this).
    Cookie,
    /// 401 as DC/OS does for unknown accounts.
    Refuse,
}

/// Why the JWT of a login is not acceptable, if it is not.
pub fn check_login(req: &Request, public: &[u8]) -> Result<(), String> {
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
pub struct Login {
    endpoint: String,
    logins: Arc<AtomicUsize>,
    rejected: Arc<Mutex<Vec<String>>>,
}

impl Login {
    pub async fn start(answer: Answer) -> Self {
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

    pub fn logins(&self) -> usize {
        self.logins.load(Ordering::SeqCst)
    }

    pub fn rejected(&self) -> Vec<String> {
        self.rejected.lock().unwrap().clone()
    }

    /// The service-account JSON for this endpoint.
    pub fn credentials(&self, key: &str) -> String {
        json!({
            "uid": UID,
            "private_key": key,
            "login_endpoint": self.endpoint,
            "scheme": "RS256",
        })
        .to_string()
    }
}

pub fn apps() -> Value {
    json!({"apps": [{
        "id": "/dcosapp", "instances": 1,
        "labels": {"HAPROXY_GROUP": "external"},
        "portDefinitions": [{"port": 10001}],
        "tasks": [{"id": "dcosapp.t1", "host": "10.0.0.1", "ports": [31001], "state": "TASK_RUNNING"}]
    }]})
}

/// (path, Authorization) of every request.
pub type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// The loopback Marathon: `/v2/apps` and `/v2/events` for requests whose
/// `Authorization` satisfies `accept`, 401 (HTML, as Jetty) otherwise.
pub struct Marathon {
    pub url: String,
    seen: Seen,
}

impl Marathon {
    pub async fn start(accept: fn(&str) -> bool) -> Self {
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
    pub fn auth_of(&self, prefix: &str) -> Vec<Option<String>> {
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
pub async fn event_stream(mut stream: TcpStream) {
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

pub fn token_only(expected: &'static str) -> fn(&str) -> bool {
    match expected {
        "tok-1" => |a| a == "token=tok-1",
        "tok-2" => |a| a == "token=tok-2",
        _ => |_| false,
    }
}
