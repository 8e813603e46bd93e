//! Loopback HTTP servers for the unit tests: one that answers every request
//! the same way, and a port nothing listens on.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback server answering every request with `status`, `headers`
/// (`Name: value\r\n` lines) and `body`, then closing the connection. Its
/// base URL.
pub(crate) async fn answering_with(
    status: &'static str,
    headers: &'static str,
    body: &'static str,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(answer.as_bytes()).await;
        }
    });
    format!("http://{addr}")
}

/// [`answering_with`] a JSON content type.
pub(crate) async fn answering(status: &'static str, body: &'static str) -> String {
    answering_with(status, "Content-Type: application/json\r\n", body).await
}

/// A loopback URL nothing listens on.
pub(crate) async fn refusing() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}
