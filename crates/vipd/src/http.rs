//! The HTTP endpoints on :18080 (CoreDNS's `health` port, used as the liveness probe):
//!
//! - `GET /health`: 200 while the daemon runs (CoreDNS-compatible body `OK`).
//! - `GET /ready`: 200 once every instance and listener is up, 503 before and while stopping.
//! - `GET /metrics`: Prometheus text format.
//!
//! A hand-written HTTP/1.1 responder: three fixed routes do not justify an HTTP framework, and
//! this keeps the daemon's memory small. One request per connection, bounded in size and time.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::daemon::Shared;

/// Longest request head read.
const MAX_REQUEST: usize = 8192;
/// A client must send its request line within this time.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many connections are served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 64;

/// Serves until the runtime stops.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(READ_TIMEOUT * 2, handle(stream, &shared)).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::debug!("HTTP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle(mut stream: TcpStream, shared: &Shared) {
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    // Read until the end of the request head (or the buffer is full).
    while len < buf.len() {
        let n = match tokio::time::timeout(READ_TIMEOUT, stream.read(&mut buf[len..])).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => n,
        };
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n")
            || buf[..len].windows(2).any(|w| w == b"\n\n")
        {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let (status, content_type, body) = route(head.lines().next().unwrap_or(""), shared);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Maps a request line to (status line, content type, body).
pub fn route(request_line: &str, shared: &Shared) -> (&'static str, &'static str, String) {
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    const TEXT: &str = "text/plain; charset=utf-8";
    if method != "GET" && method != "HEAD" {
        return (
            "405 Method Not Allowed",
            TEXT,
            "only GET is supported\n".into(),
        );
    }
    match path {
        "/health" => ("200 OK", TEXT, "OK".into()),
        "/ready" => {
            if shared.ready.load(Ordering::SeqCst) {
                ("200 OK", TEXT, "OK".into())
            } else {
                (
                    "503 Service Unavailable",
                    TEXT,
                    "starting or stopping\n".into(),
                )
            }
        }
        "/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            crate::daemon::metrics::render(shared),
        ),
        _ => (
            "404 Not Found",
            TEXT,
            "not found; try /health, /ready or /metrics\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;
    use std::time::SystemTime;

    use super::*;

    fn shared(ready: bool) -> Shared {
        Shared {
            ready: AtomicBool::new(ready),
            instances: Mutex::new(Vec::new()),
            health: Mutex::new(None),
            dns: Mutex::new(None),
            handoff: Mutex::new(None),
            config_path: "/etc/vipd/vipd.toml".into(),
            started: SystemTime::now(),
            reloads: Mutex::new(Default::default()),
        }
    }

    #[test]
    fn health_answers_ok_like_coredns() {
        assert_eq!(
            route("GET /health HTTP/1.1", &shared(false)),
            ("200 OK", "text/plain; charset=utf-8", "OK".to_string())
        );
    }

    #[test]
    fn ready_is_503_until_the_daemon_is_up() {
        assert_eq!(
            route("GET /ready HTTP/1.1", &shared(false)).0,
            "503 Service Unavailable"
        );
        assert_eq!(route("GET /ready HTTP/1.1", &shared(true)).0, "200 OK");
    }

    #[test]
    fn metrics_are_prometheus_text_with_the_reload_counters() {
        let (status, content_type, body) = route("GET /metrics HTTP/1.1", &shared(true));
        assert_eq!(status, "200 OK");
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        assert!(body.contains("# TYPE vipd_vrrp_state gauge\n"));
        assert!(body.contains("vipd_reloads_total{result=\"failed\"} 0\n"));
    }

    #[test]
    fn query_strings_are_ignored_and_unknown_paths_are_404() {
        assert_eq!(
            route("GET /health?verbose=1 HTTP/1.1", &shared(true)).0,
            "200 OK"
        );
        assert_eq!(
            route("GET /nope HTTP/1.1", &shared(true)).0,
            "404 Not Found"
        );
    }

    #[test]
    fn only_get_and_head_are_served() {
        assert_eq!(
            route("POST /health HTTP/1.1", &shared(true)).0,
            "405 Method Not Allowed"
        );
        assert_eq!(route("", &shared(true)).0, "405 Method Not Allowed");
    }
}
