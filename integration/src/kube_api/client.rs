//! A small blocking HTTPS/1.1 client for tests of the stand-in: raw requests, responses with
//! `Content-Length` or chunked bodies, and watch streams read event by event. Every read is
//! bounded by the client's timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;

use super::{ClientCert, Pki};

/// Where and how to connect.
#[derive(Clone)]
pub struct HttpsClient {
    config: Arc<rustls::ClientConfig>,
    pub addr: SocketAddr,
    server_name: ServerName<'static>,
    pub timeout: Duration,
}

impl HttpsClient {
    /// A client trusting `ca_pem`, checking the server as `server_name` (an IP or DNS name), with
    /// `client`'s certificate if given.
    pub fn new(
        addr: SocketAddr,
        server_name: &str,
        ca_pem: &str,
        client: Option<&ClientCert>,
    ) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert?)?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let mut config = match client {
            Some(c) => {
                let chain = CertificateDer::pem_slice_iter(c.cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()?;
                let key = PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes())?;
                builder.with_client_auth_cert(chain, key)?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(HttpsClient {
            config: Arc::new(config),
            addr,
            server_name: ServerName::try_from(server_name.to_string()).context("server name")?,
            timeout: Duration::from_secs(10),
        })
    }

    /// The lab client (`system:node:master-0`), checking the server by its IP address.
    pub fn for_pki(pki: &Pki, addr: SocketAddr) -> Result<Self> {
        HttpsClient::new(
            addr,
            &addr.ip().to_string(),
            &pki.ca_cert_pem,
            Some(&pki.client),
        )
    }

    /// Opens a connection and completes the TLS handshake (a refused client certificate shows
    /// here with TLS 1.2, or at the first read with TLS 1.3).
    pub fn connect(&self) -> Result<Connection> {
        let tcp = TcpStream::connect_timeout(&self.addr, self.timeout)?;
        tcp.set_read_timeout(Some(self.timeout))?;
        tcp.set_write_timeout(Some(self.timeout))?;
        let conn =
            rustls::ClientConnection::new(Arc::clone(&self.config), self.server_name.clone())?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .context("TLS handshake")?;
        }
        Ok(Connection {
            stream,
            buf: Vec::new(),
            host: self.addr.to_string(),
        })
    }

    /// `GET target` on a new connection.
    pub fn get(&self, target: &str) -> Result<Response> {
        self.connect()?.get(target)
    }

    /// `GET target` on a new connection, expecting a watch stream (any status: check it).
    pub fn watch(&self, target: &str) -> Result<WatchStream> {
        let mut conn = self.connect()?;
        conn.send_get(target, &[])?;
        conn.watch_stream()
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("body is not JSON: {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

type Stream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// One open connection (keep-alive: several requests in turn).
pub struct Connection {
    stream: Stream,
    buf: Vec<u8>,
    host: String,
}

impl Connection {
    /// Sends raw bytes (a hand-made request).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()?;
        Ok(())
    }

    /// Sends `GET target` with `Host` and extra headers.
    pub fn send_get(&mut self, target: &str, headers: &[(&str, &str)]) -> Result<()> {
        let mut req = format!("GET {target} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.send_raw(req.as_bytes())
    }

    pub fn get(&mut self, target: &str) -> Result<Response> {
        self.send_get(target, &[])?;
        self.read_response()
    }

    /// Reads more bytes; false at EOF.
    fn fill(&mut self) -> Result<bool> {
        let mut chunk = [0u8; 16384];
        match self.stream.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) => Err(anyhow!(e)),
        }
    }

    fn take_until(&mut self, delim: &[u8]) -> Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(delim.len()).position(|w| w == delim) {
                let out = self.buf[..i].to_vec();
                self.buf.drain(..i + delim.len());
                return Ok(out);
            }
            if !self.fill()? {
                bail!(
                    "connection closed before {:?}",
                    String::from_utf8_lossy(delim)
                );
            }
        }
    }

    fn take_exact(&mut self, n: usize) -> Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill()? {
                bail!(
                    "connection closed in a body ({} of {n} bytes)",
                    self.buf.len()
                );
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads a response head: status and headers.
    pub fn read_head(&mut self) -> Result<(u16, Vec<(String, String)>)> {
        let head = String::from_utf8_lossy(&self.take_until(b"\r\n\r\n")?).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Ok((status, headers))
    }

    /// Reads one chunk of a chunked body; `None` after the last chunk.
    fn read_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        let size_line = String::from_utf8_lossy(&self.take_until(b"\r\n")?).into_owned();
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("bad chunk size line {size_line:?}"))?;
        if size == 0 {
            self.take_until(b"\r\n")?;
            return Ok(None);
        }
        let data = self.take_exact(size)?;
        if self.take_exact(2)? != b"\r\n" {
            bail!("chunk not followed by CRLF");
        }
        Ok(Some(data))
    }

    /// Reads a whole response.
    pub fn read_response(&mut self) -> Result<Response> {
        let (status, headers) = self.read_head()?;
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if let Some(n) = response.header("content-length") {
            let n: usize = n.parse().context("Content-Length")?;
            response.body = self.take_exact(n)?;
        } else if response.header("transfer-encoding") == Some("chunked") {
            while let Some(data) = self.read_chunk()? {
                response.body.extend_from_slice(&data);
            }
        } else {
            while self.fill()? {}
            response.body = std::mem::take(&mut self.buf);
        }
        Ok(response)
    }

    /// Reads a response head; if it is a chunked 200, the watch stream, else the error response.
    pub fn watch_stream(mut self) -> Result<WatchStream> {
        let (status, headers) = self.read_head()?;
        let chunked = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v == "chunked");
        if status != 200 || !chunked {
            let mut response = Response {
                status,
                headers,
                body: Vec::new(),
            };
            if let Some(n) = response.header("content-length") {
                let n: usize = n.parse()?;
                response.body = self.take_exact(n)?;
            }
            bail!("watch answered {status}: {}", response.text());
        }
        Ok(WatchStream {
            conn: self,
            status,
            headers,
            lines: Vec::new(),
            ended: false,
        })
    }
}

/// An open watch: events one by one.
pub struct WatchStream {
    conn: Connection,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    lines: Vec<u8>,
    ended: bool,
}

impl WatchStream {
    /// The next line of the stream as raw text; `None` once the body ended with its last chunk.
    pub fn next_line(&mut self) -> Result<Option<String>> {
        loop {
            if let Some(i) = self.lines.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.lines.drain(..=i).collect();
                return Ok(Some(String::from_utf8_lossy(&line[..i]).into_owned()));
            }
            if self.ended {
                return Ok(None);
            }
            match self.conn.read_chunk()? {
                Some(data) => self.lines.extend_from_slice(&data),
                None => self.ended = true,
            }
        }
    }

    /// The next event (`{"type":...,"object":...}`); `None` once the stream ended cleanly.
    pub fn next_event(&mut self) -> Result<Option<Value>> {
        match self.next_line()? {
            Some(line) => Ok(Some(
                serde_json::from_str(&line)
                    .with_context(|| format!("event is not JSON: {line}"))?,
            )),
            None => Ok(None),
        }
    }

    /// The next event that is not a BOOKMARK.
    pub fn next_change(&mut self) -> Result<Option<Value>> {
        loop {
            match self.next_event()? {
                Some(e) if e["type"] == "BOOKMARK" => continue,
                other => return Ok(other),
            }
        }
    }

    /// Whether the body ended with its last chunk.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The connection, for the next request once the stream ended.
    pub fn into_connection(self) -> Connection {
        self.conn
    }

    /// Changes the read timeout of the underlying socket.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.conn.stream.sock.set_read_timeout(Some(timeout))?;
        Ok(())
    }
}

/// A stand-in on loopback with its PKI in a scratch directory (removed when dropped), and a
/// client holding the lab client certificate: the setup of the `kube_api_*` tests.
pub struct Fixture {
    pub dir: std::path::PathBuf,
    pub pki: Pki,
    pub server: super::ApiServer,
    pub client: HttpsClient,
}

impl Fixture {
    /// Serves on `127.0.0.1:0` (SANs `127.0.0.1`, `::1`, `localhost`,
    /// `api-int.ostest.test.metalkube.org`), logging requests to `DIR/requests.log`.
    pub fn start(name: &str, options: super::Options) -> Result<Fixture> {
        Fixture::start_on(name, SocketAddr::from(([127, 0, 0, 1], 0)), options)
    }

    pub fn start_on(
        name: &str,
        listen: SocketAddr,
        mut options: super::Options,
    ) -> Result<Fixture> {
        let dir = std::env::temp_dir().join(format!("kube-api-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let names = [
            "127.0.0.1",
            "::1",
            "localhost",
            "api-int.ostest.test.metalkube.org",
        ];
        let pki = Pki::generate(&dir, &names)?;
        if options.request_log.is_none() {
            options.request_log = Some(dir.join("requests.log"));
        }
        let server = super::ApiServer::start(listen, &pki, options)?;
        let client = HttpsClient::for_pki(&pki, server.addr())?;
        Ok(Fixture {
            dir,
            pki,
            server,
            client,
        })
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.server.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
