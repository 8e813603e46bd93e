//! A loopback fake Marathon that serves one `/v2/apps` document from memory.
//!
//! Just enough HTTP/1.1 for marathon-lb's one-shot fetch: every `GET
//! /v2/apps…` is answered `200` with the document, anything else `404`;
//! one connection per request (`Connection: close`), each on its own thread.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

/// A running server (it lives as long as the process).
#[derive(Debug)]
pub struct FakeMarathon {
    addr: SocketAddr,
}

impl FakeMarathon {
    /// Bind `127.0.0.1:port` (0: any free port) and serve `body`.
    pub fn start(body: Vec<u8>, port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let body: Arc<[u8]> = body.into();
        std::thread::Builder::new()
            .name("fake-marathon".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let body = Arc::clone(&body);
                    let _ = std::thread::Builder::new()
                        .name("fake-marathon-conn".into())
                        .spawn(move || {
                            if let Err(e) = answer(stream, &body) {
                                eprintln!("fake Marathon: {e}");
                            }
                        });
                }
            })?;
        Ok(Self { addr })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn answer(stream: TcpStream, body: &[u8]) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers (the request has no body).
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let mut out = stream;
    if request_line.starts_with("GET ") && path.starts_with("/v2/apps") {
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        )?;
        out.write_all(body)?;
    } else {
        let msg = br#"{"message":"not found"}"#;
        write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            msg.len()
        )?;
        out.write_all(msg)?;
    }
    out.flush()
}
