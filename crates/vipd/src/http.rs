//! The HTTP endpoints on :18080 (CoreDNS's `health` port, used as the liveness probe):
//!
//! - `GET /health`: 200 while the daemon runs (CoreDNS-compatible body `OK`).
//! - `GET /ready`: 200 once every instance and listener is up, 503 before and while stopping.
//! - `GET /metrics`: Prometheus text format.
//!
//! A hand-written HTTP/1.1 responder: three fixed routes do not justify an HTTP framework, and
//! this keeps the daemon's memory small. One request per connection, bounded in size and time.
//!
//! Slow or garbage clients must not hold the liveness probe off: every connection is accepted
//! at once (none waits in the kernel's backlog behind slow ones), its request head must arrive
//! within [`HEAD_TIMEOUT`], and when [`MAX_CONNECTIONS`] are open the oldest connection of the
//! peer holding the most is dropped to make room for the new one. A probe sends its request the
//! moment it connects and is answered within the millisecond, so it is never the oldest for
//! long; a client trickling requests, or reconnecting in a loop, evicts its own connections.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// What the endpoints need from the daemon: a narrow view, so this module does not depend on
/// the daemon's state (the daemon's `Shared` implements it).
pub trait Endpoints: Send + Sync + 'static {
    /// `/ready`: every instance is placed and running.
    fn ready(&self) -> bool;
    /// `/metrics`: the Prometheus text.
    fn metrics(&self) -> String;
}

/// Longest request head read.
const MAX_REQUEST: usize = 8192;
/// A client must send its whole request head within this time, however it trickles it.
const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// Writing the answer may take at most this long (a client that never reads).
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// At most this many connections are served at once; a new one beyond that closes the oldest.
const MAX_CONNECTIONS: usize = 64;

/// Serves until the runtime stops.
pub async fn serve<E: Endpoints>(listener: TcpListener, shared: Arc<E>) {
    let mut open = Connections::new(MAX_CONNECTIONS);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let shared = Arc::clone(&shared);
                let task = tokio::spawn(async move { handle(stream, &*shared).await });
                if open.admit(Some(peer.ip()), task.abort_handle()) {
                    tracing::debug!(
                        "HTTP: {MAX_CONNECTIONS} connections open; closed the oldest for a new one"
                    );
                }
            }
            Err(e) => {
                // EMFILE and friends: back off rather than spin.
                tracing::debug!("HTTP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The connections being served, oldest first, with their peer address, bounded by eviction
/// (also used by the control socket, without addresses, for clients that have not sent their
/// request yet). When full, the oldest connection of the peer holding the most is closed, so
/// one client flooding the port evicts itself and not a probe from elsewhere.
pub(crate) struct Connections {
    tasks: VecDeque<(Option<IpAddr>, AbortHandle)>,
    max: usize,
}

impl Connections {
    pub(crate) fn new(max: usize) -> Self {
        Connections {
            tasks: VecDeque::with_capacity(max),
            max: max.max(1),
        }
    }

    /// Adds a new connection's task; returns true if another had to be closed for it.
    pub(crate) fn admit(&mut self, peer: Option<IpAddr>, task: AbortHandle) -> bool {
        self.tasks.retain(|(_, t)| !t.is_finished());
        self.tasks.push_back((peer, task));
        if self.tasks.len() <= self.max {
            return false;
        }
        let count = |p: &Option<IpAddr>| self.tasks.iter().filter(|(q, _)| q == p).count();
        let greediest = self
            .tasks
            .iter()
            .map(|(p, _)| (count(p), *p))
            .max_by_key(|(n, _)| *n)
            .map(|(_, p)| p);
        if let Some(i) = self.tasks.iter().position(|(p, _)| Some(*p) == greediest) {
            if let Some((_, oldest)) = self.tasks.remove(i) {
                oldest.abort();
            }
        }
        true
    }
}

async fn handle<E: Endpoints>(mut stream: TcpStream, shared: &E) {
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    // Read until the end of the request head, the buffer is full, EOF, or the deadline. A head
    // that did not arrive in time gets no answer: the client is too slow to be a probe.
    let read = async {
        while len < buf.len() {
            match stream.read(&mut buf[len..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => len += n,
            }
            if buf[..len].windows(4).any(|w| w == b"\r\n\r\n")
                || buf[..len].windows(2).any(|w| w == b"\n\n")
            {
                break;
            }
        }
    };
    if tokio::time::timeout(HEAD_TIMEOUT, read).await.is_err() {
        return;
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let (status, content_type, body) = route(head.lines().next().unwrap_or(""), shared);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, write).await;
}

/// Maps a request line to (status line, content type, body).
pub fn route<E: Endpoints>(request_line: &str, shared: &E) -> (&'static str, &'static str, String) {
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
            if shared.ready() {
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
            shared.metrics(),
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
    use super::*;
    use crate::daemon::Shared;

    fn shared(ready: bool) -> Shared {
        let shared = Shared::new("/etc/vipd/vipd.toml".into(), Default::default());
        shared
            .ready
            .store(ready, std::sync::atomic::Ordering::SeqCst);
        shared
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

    #[tokio::test]
    async fn the_oldest_connection_of_the_greediest_peer_is_closed_at_the_bound() {
        let a: Option<IpAddr> = Some("192.0.2.100".parse().unwrap());
        let b: Option<IpAddr> = Some("192.0.2.11".parse().unwrap());
        let mut open = Connections::new(3);
        let tasks: Vec<_> = (0..5)
            .map(|_| tokio::spawn(std::future::pending::<()>()))
            .collect();
        assert!(!open.admit(b, tasks[0].abort_handle()));
        assert!(!open.admit(a, tasks[1].abort_handle()));
        assert!(!open.admit(a, tasks[2].abort_handle()));
        // Full: b's connection is the oldest, but a holds the most.
        assert!(open.admit(a, tasks[3].abort_handle()));
        tokio::task::yield_now().await;
        assert!(tasks[1].is_finished(), "a's oldest was not closed");
        assert!(!tasks[0].is_finished() && !tasks[2].is_finished() && !tasks[3].is_finished());
        // Finished connections free their place without closing anyone.
        tasks[2].abort();
        tokio::task::yield_now().await;
        assert!(!open.admit(b, tasks[4].abort_handle()));
        assert!(!tasks[0].is_finished() && !tasks[3].is_finished());
    }

    /// More slow clients than the bound, each trickling an unfinished request head: /health
    /// still answers at once, and a trickler gets no answer after the head deadline.
    #[tokio::test]
    async fn slow_clients_beyond_the_bound_do_not_hold_off_health() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Arc::new(shared(true))));
        let mut slow = Vec::new();
        for _ in 0..(2 * MAX_CONNECTIONS) {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\nX-Slow: ")
                .await
                .unwrap();
            slow.push(s);
        }
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\n\r\n").await.unwrap();
            let mut reply = String::new();
            tokio::time::timeout(Duration::from_secs(1), s.read_to_string(&mut reply))
                .await
                .expect("health was held off by slow clients")
                .unwrap();
            assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
            assert!(reply.ends_with("\r\n\r\nOK"), "{reply}");
            assert!(
                t.elapsed() < Duration::from_millis(500),
                "{:?}",
                t.elapsed()
            );
        }
        // The newest trickler is still open; after the head deadline it is closed unanswered.
        let mut last = slow.pop().unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(HEAD_TIMEOUT * 2, last.read_to_end(&mut rest)).await;
        assert!(
            read.is_ok(),
            "a trickling client outlived the head deadline"
        );
        assert!(rest.is_empty(), "a trickler was answered: {rest:?}");
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
