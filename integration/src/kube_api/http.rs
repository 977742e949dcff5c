//! The HTTP/1.1 side of a connection: request heads read with bounds, responses with
//! `Content-Length` or `Transfer-Encoding: chunked`, keep-alive as Go's net/http does it.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::store::http_date;

/// Longest request head (Go's default `MaxHeaderBytes` is 1 MiB; kube sends far less).
const MAX_HEAD: usize = 64 * 1024;
/// Longest request body read and discarded (the stand-in serves no writes).
const MAX_BODY: usize = 1024 * 1024;
/// One write of a response may take this long (a client that never reads).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

type Tls = TlsStream<TcpStream>;

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request line as sent (`GET /api/v1/nodes?limit=500 HTTP/1.1`).
    pub line: String,
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// Whether the connection closes after this exchange.
    pub fn closes(&self) -> bool {
        let conn = self.header("connection").unwrap_or("").to_ascii_lowercase();
        conn.contains("close") || (self.version == "HTTP/1.0" && !conn.contains("keep-alive"))
    }
}

/// What reading a request head gave.
pub enum Read {
    Request(Request),
    /// EOF, an error or the idle timeout: close without answering.
    Closed,
    /// A malformed request: answer `400 Bad Request` (plain text, as Go does) and close.
    Bad(&'static str),
}

/// Who is on the other end, from the client certificate.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

/// One TLS connection, split so that a watch can notice the client going away while it writes.
pub struct Conn {
    rd: ReadHalf<Tls>,
    wr: WriteHalf<Tls>,
    buf: Vec<u8>,
    pub peer: SocketAddr,
    pub identity: Identity,
}

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn parse_head(head: &str) -> Result<Request, &'static str> {
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default().to_string();
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts.as_slice() else {
        return Err("malformed HTTP request");
    };
    if !matches!(*version, "HTTP/1.1" | "HTTP/1.0") || method.is_empty() || !target.starts_with('/')
    {
        return Err("malformed HTTP request");
    }
    let mut headers = Vec::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let (k, v) = l.split_once(':').ok_or("malformed MIME header line")?;
        if k.is_empty() || k.contains(' ') {
            return Err("malformed MIME header line");
        }
        headers.push((k.to_string(), v.trim().to_string()));
    }
    let req = Request {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        line,
        headers,
    };
    if req.version == "HTTP/1.1" && req.header("host").is_none() {
        return Err("missing required Host header");
    }
    Ok(req)
}

impl Conn {
    pub fn new(tls: Tls, peer: SocketAddr, identity: Identity) -> Self {
        let (rd, wr) = tokio::io::split(tls);
        Conn {
            rd,
            wr,
            buf: Vec::new(),
            peer,
            identity,
        }
    }

    /// Reads the next request head (and discards a body), waiting at most `idle` for it.
    pub async fn read_request(&mut self, idle: Duration) -> Read {
        let read = async {
            loop {
                if let Some(end) = head_end(&self.buf) {
                    let head = String::from_utf8_lossy(&self.buf[..end - 4]).into_owned();
                    self.buf.drain(..end);
                    return match parse_head(&head) {
                        Ok(req) => self.skip_body(req).await,
                        Err(why) => Read::Bad(why),
                    };
                }
                if self.buf.len() > MAX_HEAD {
                    return Read::Bad("request header too large");
                }
                let mut chunk = [0u8; 4096];
                match self.rd.read(&mut chunk).await {
                    Ok(0) | Err(_) => return Read::Closed,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        };
        tokio::time::timeout(idle, read)
            .await
            .unwrap_or(Read::Closed)
    }

    async fn skip_body(&mut self, req: Request) -> Read {
        if req.header("transfer-encoding").is_some() {
            return Read::Bad("request bodies in chunked encoding are not served");
        }
        let len = match req.header("content-length").map(str::parse::<usize>) {
            None => 0,
            Some(Ok(n)) if n <= MAX_BODY => n,
            Some(_) => return Read::Bad("bad Content-Length"),
        };
        while self.buf.len() < len {
            let mut chunk = [0u8; 4096];
            match self.rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return Read::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
        self.buf.drain(..len);
        Read::Request(req)
    }

    /// Resolves when the client closes its side or the connection fails (for a watch or a hang;
    /// anything the client sends meanwhile is kept for the next request).
    pub async fn peer_closed(&mut self) {
        let mut chunk = [0u8; 4096];
        loop {
            match self.rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if self.buf.len() < MAX_HEAD {
                        self.buf.extend_from_slice(&chunk[..n]);
                    }
                }
            }
        }
    }

    /// Writes all of `bytes` within [`WRITE_TIMEOUT`].
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let write = async {
            self.wr.write_all(bytes).await?;
            self.wr.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(r) => r,
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }

    /// Ends the TLS session with close_notify (bounded).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.wr.shutdown()).await;
    }
}

/// The reason phrase of a status code.
pub fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        410 => "Gone",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// A response head as kube-apiserver writes it (Audit-Id, Cache-Control, Date, ...).
pub fn head(
    code: u16,
    content_type: &str,
    length: Option<usize>,
    audit_id: &str,
    extra: &[(&str, String)],
) -> String {
    let mut h = format!(
        "HTTP/1.1 {code} {}\r\nAudit-Id: {audit_id}\r\nCache-Control: no-cache, private\r\nContent-Type: {content_type}\r\nDate: {}\r\n",
        reason(code),
        http_date(SystemTime::now())
    );
    for (k, v) in extra {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    match length {
        Some(n) => h.push_str(&format!("Content-Length: {n}\r\n\r\n")),
        None => h.push_str("Transfer-Encoding: chunked\r\n\r\n"),
    }
    h
}

/// One chunk of a chunked body.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// The last chunk: the body ends cleanly.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Go's answer to a malformed request: plain text, connection closed.
pub fn plain_bad_request(why: &str) -> String {
    let body = format!("400 Bad Request: {why}");
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Whether `Accept` allows JSON: absent, `*/*`, `application/*` or `application/json` (with no
/// `as=` conversion, which this stand-in does not serve).
pub fn accepts_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return true;
    };
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let converts = parts.any(|p| p.to_ascii_lowercase().starts_with("as="));
        matches!(media.as_str(), "*/*" | "application/*" | "application/json") && !converts
    })
}
