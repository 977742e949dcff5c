//! Probes against fake servers, files and processes this test creates on 127.0.0.1.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use vipd::health::probe::run_probe;
use vipd::health::{CheckConfig, Probe, ProbeError};

/// The probe of a check written like an operator would.
fn probe(cfg: CheckConfig) -> Probe {
    CheckConfig {
        name: "t".into(),
        ..cfg
    }
    .validate()
    .unwrap()
    .probe
}

fn http(url: &str) -> Probe {
    probe(CheckConfig {
        http: Some(url.into()),
        ..Default::default()
    })
}

/// Reads one request head (up to the blank line).
async fn read_head<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        if s.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// An HTTP server on 127.0.0.1 answering every request with `response`; request heads are
/// sent to the returned channel.
async fn http_server(response: &'static str) -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let head = read_head(&mut s).await;
            let _ = tx.send(head);
            let _ = s.write_all(response.as_bytes()).await;
        }
    });
    (port, rx)
}

/// A port on 127.0.0.1 with nothing listening: bound, then released.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn http_200_is_good_and_sends_get_with_host_header() {
    let (port, mut heads) = http_server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
    let result = run_probe(&http(&format!("http://127.0.0.1:{port}/healthz"))).await;
    assert_eq!(result.unwrap(), "HTTP 200 OK");
    let head = heads.recv().await.unwrap();
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some("GET /healthz HTTP/1.1"));
    assert_eq!(
        lines.next(),
        Some(format!("Host: 127.0.0.1:{port}").as_str())
    );
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
}

#[tokio::test]
async fn http_500_is_a_failure_naming_url_and_status() {
    let (port, _heads) =
        http_server("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n").await;
    let url = format!("http://127.0.0.1:{port}/readyz");
    let err = run_probe(&http(&url)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{url}: HTTP status 500 Internal Server Error, expected 2xx")
    );
}

#[tokio::test]
async fn http_redirect_is_not_followed_and_fails() {
    let (port, mut heads) =
        http_server("HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")
            .await;
    let err = run_probe(&http(&format!("http://127.0.0.1:{port}/")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProbeError::HttpStatus { code: 302, .. }),
        "{err}"
    );
    heads.recv().await.unwrap();
    assert!(heads.try_recv().is_err(), "a second request was sent");
}

#[tokio::test]
async fn http_server_that_never_answers_hangs_until_the_caller_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let p = http(&format!("http://127.0.0.1:{port}/"));
    let outcome = tokio::time::timeout(Duration::from_millis(200), run_probe(&p)).await;
    assert!(outcome.is_err(), "probe finished: {outcome:?}");
    server.abort();
}

#[tokio::test]
async fn http_connection_refused_is_a_failure() {
    let port = closed_port().await;
    let err = run_probe(&http(&format!("http://127.0.0.1:{port}/")))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("connecting to 127.0.0.1:{port}: ")),
        "{text}"
    );
    assert!(matches!(err, ProbeError::Connect { .. }));
}

#[tokio::test]
async fn http_garbage_response_is_a_failure() {
    let (port, _heads) = http_server("SSH-2.0-OpenSSH_9.6\r\n").await;
    let err = run_probe(&http(&format!("http://127.0.0.1:{port}/")))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::BadResponse { .. }), "{err}");
}

/// An HTTPS server with a freshly generated self-signed certificate for `localhost`.
async fn https_server(response: &'static str) -> (u16, mpsc::UnboundedReceiver<String>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_der = cert.cert.der().clone();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert_der], key_der)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(s).await else {
                continue;
            };
            let head = read_head(&mut tls).await;
            let _ = tx.send(head);
            let _ = tls.write_all(response.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
    });
    (port, rx)
}

#[tokio::test]
async fn https_with_self_signed_certificate_is_good_on_loopback() {
    let (port, mut heads) = https_server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
    let result = run_probe(&http(&format!("https://localhost:{port}/readyz"))).await;
    assert_eq!(result.unwrap(), "HTTP 200 OK");
    let head = heads.recv().await.unwrap();
    assert!(
        head.starts_with(&format!(
            "GET /readyz HTTP/1.1\r\nHost: localhost:{port}\r\n"
        )),
        "{head}"
    );
}

#[tokio::test]
async fn https_500_is_a_failure() {
    let (port, _heads) =
        https_server("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n").await;
    let err = run_probe(&http(&format!("https://127.0.0.1:{port}/readyz")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProbeError::HttpStatus { code: 503, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn https_to_a_plain_http_server_fails_the_handshake() {
    // Answers plain text without waiting for a request, as an HTTP server would to the
    // ClientHello it cannot parse.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let p = http(&format!("https://127.0.0.1:{port}/"));
    let err = tokio::time::timeout(Duration::from_secs(5), run_probe(&p))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, ProbeError::Tls { .. }), "{err}");
    server.abort();
}

#[tokio::test]
async fn tcp_connect_to_a_listener_is_good() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let p = probe(CheckConfig {
        tcp: Some(format!("127.0.0.1:{port}")),
        ..Default::default()
    });
    assert_eq!(
        run_probe(&p).await.unwrap(),
        format!("connected to 127.0.0.1:{port}")
    );
}

#[tokio::test]
async fn tcp_connect_to_a_closed_port_is_a_failure() {
    let port = closed_port().await;
    let p = probe(CheckConfig {
        tcp: Some(format!("127.0.0.1:{port}")),
        ..Default::default()
    });
    assert!(matches!(
        run_probe(&p).await,
        Err(ProbeError::Connect { .. })
    ));
}

/// A path under the temp dir, removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> Self {
        TempPath(
            std::env::temp_dir().join(format!("vipd-health-test-{}-{tag}", std::process::id())),
        )
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn file_probe_follows_the_file_existence() {
    let path = TempPath::new("flag");
    let p = probe(CheckConfig {
        file: Some(path.0.clone()),
        ..Default::default()
    });
    assert_eq!(
        run_probe(&p).await.unwrap_err().to_string(),
        format!("{}: does not exist", path.0.display())
    );
    std::fs::write(&path.0, b"").unwrap();
    assert_eq!(
        run_probe(&p).await.unwrap(),
        format!("{} exists", path.0.display())
    );
}

fn exec(argv: &[&str]) -> Probe {
    probe(CheckConfig {
        exec: Some(argv.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    })
}

#[tokio::test]
async fn exec_exit_zero_is_good() {
    assert_eq!(
        run_probe(&exec(&["/bin/sh", "-c", "exit 0"]))
            .await
            .unwrap(),
        "/bin/sh exited 0"
    );
}

#[tokio::test]
async fn exec_nonzero_exit_is_a_failure_with_stderr() {
    let err = run_probe(&exec(&["/bin/sh", "-c", "echo haproxy down >&2; exit 3"]))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "/bin/sh exited 3, expected 0, stderr: haproxy down"
    );
}

#[tokio::test]
async fn exec_of_a_missing_program_is_a_failure() {
    let err = run_probe(&exec(&["/nonexistent/vipd-check"]))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("starting /nonexistent/vipd-check: "),
        "{err}"
    );
}

/// True once `pid` is gone or a zombie; polls for at most two seconds.
async fn process_ends(pid: u32) -> bool {
    for _ in 0..40 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z')) =>
            {
                return true
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    false
}

#[tokio::test]
async fn exec_timeout_kills_the_whole_process_group() {
    let pidfile = TempPath::new("pid");
    let script = format!("sleep 30 & echo $! > {}; wait", pidfile.0.display());
    let p = exec(&["/bin/sh", "-c", &script]);
    let outcome = tokio::time::timeout(Duration::from_millis(500), run_probe(&p)).await;
    assert!(outcome.is_err(), "probe finished: {outcome:?}");
    let pid: u32 = std::fs::read_to_string(&pidfile.0)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(process_ends(pid).await, "sleep {pid} survived the timeout");
}

#[tokio::test]
async fn all_of_fails_on_the_first_bad_member() {
    let path = TempPath::new("allof");
    let (port, _heads) = http_server("HTTP/1.1 200 OK\r\n\r\n").await;
    let p: CheckConfig = toml::from_str(&format!(
        "name = \"lb\"\nall_of = [{{ http = \"http://127.0.0.1:{port}/haproxy_ready\" }}, {{ file = {:?} }}]",
        path.0
    ))
    .unwrap();
    let p = p.validate().unwrap().probe;
    assert_eq!(
        run_probe(&p).await.unwrap_err().to_string(),
        format!("all_of: {}: does not exist", path.0.display())
    );
    std::fs::write(&path.0, b"").unwrap();
    assert_eq!(
        run_probe(&p).await.unwrap(),
        format!("HTTP 200 OK; {} exists", path.0.display())
    );
}

#[tokio::test]
async fn any_of_is_good_when_one_member_is() {
    let (good, _h) = http_server("HTTP/1.1 200 OK\r\n\r\n").await;
    let bad = closed_port().await;
    let p: CheckConfig = toml::from_str(&format!(
        "name = \"both\"\nany_of = [{{ http = \"http://127.0.0.1:{bad}/\" }}, {{ http = \"http://127.0.0.1:{good}/\" }}]"
    ))
    .unwrap();
    assert_eq!(
        run_probe(&p.validate().unwrap().probe).await.unwrap(),
        "HTTP 200 OK"
    );
}
