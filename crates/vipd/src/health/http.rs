//! A minimal HTTP/1.1 GET for health probes (RFC 9112): one request per connection, only the
//! status line is read, redirects are not followed (a 3xx is a failure, as `curl` without `-L`
//! in the scripts vipd replaces), and a 2xx status is success.
//!
//! `https` skips certificate verification: the endpoints probed (kube-apiserver `/readyz` on
//! localhost) present certificates for cluster names signed by a cluster CA the node may not
//! have yet, and keepalived's script used `curl -k`. Config validation only lets that happen
//! towards loopback hosts unless the operator sets `insecure = true`. The handshake signature
//! is still checked, so the connection is a real TLS session with an unauthenticated peer.

use std::io;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsConnector;

use super::config::{HttpTarget, Scheme};
use super::probe_error::ProbeError;
use super::tcp::connect;

/// Longest status line accepted; real ones are under 40 bytes.
const MAX_STATUS_LINE: usize = 1024;

/// GETs `target` and succeeds on a 2xx status.
pub(super) async fn get(target: &HttpTarget) -> Result<String, ProbeError> {
    let url = target.to_string();
    let tcp = connect(&target.host, target.port).await?;
    let (code, reason) = match target.scheme {
        Scheme::Http => exchange(tcp, target, &url).await?,
        Scheme::Https => {
            let tls_err = |source| ProbeError::Tls {
                target: url.clone(),
                source,
            };
            let config = tls_config().map_err(|e| tls_err(io::Error::other(e)))?;
            let name = ServerName::try_from(target.host.clone())
                .map_err(|e| tls_err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
            let tls = TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(tls_err)?;
            exchange(tls, target, &url).await?
        }
    };
    if (200..300).contains(&code) {
        Ok(format!("HTTP {code} {reason}").trim_end().to_string())
    } else {
        Err(ProbeError::HttpStatus {
            target: url,
            code,
            reason,
        })
    }
}

/// Sends the request and reads the status line.
async fn exchange<S>(
    mut stream: S,
    target: &HttpTarget,
    url: &str,
) -> Result<(u16, String), ProbeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io_err = |source| ProbeError::Io {
        target: url.to_string(),
        source,
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: vipd/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        target.path,
        target.host_header(),
        env!("CARGO_PKG_VERSION"),
    );
    stream.write_all(request.as_bytes()).await.map_err(io_err)?;
    stream.flush().await.map_err(io_err)?;

    let bad = |reason: String| ProbeError::BadResponse {
        target: url.to_string(),
        reason,
    };
    let mut buf = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            return parse_status_line(&buf[..end]).map_err(bad);
        }
        if buf.len() > MAX_STATUS_LINE {
            return Err(bad(format!(
                "no status line within the first {MAX_STATUS_LINE} bytes"
            )));
        }
        let n = stream.read(&mut chunk).await.map_err(io_err)?;
        if n == 0 {
            return Err(bad("connection closed before a status line arrived".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `HTTP-version SP status-code SP [reason-phrase]` (RFC 9112 section 4); a missing space after
/// the code is tolerated, as most clients do.
fn parse_status_line(line: &[u8]) -> Result<(u16, String), String> {
    let text = String::from_utf8_lossy(line);
    let shown = || text.chars().take(80).collect::<String>();
    let rest = text
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(1..))
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| format!("status line {:?} does not start with HTTP/1.x", shown()))?;
    let code = rest
        .get(..3)
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..=599).contains(c))
        .ok_or_else(|| format!("status line {:?} has no 3-digit status code", shown()))?;
    let reason = rest.get(3..).unwrap_or_default().trim().to_string();
    Ok((code, reason))
}

/// One client config for all https probes, built on first use.
fn tls_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("building the TLS client configuration: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
                .with_no_client_auth();
            // Without ALPN a server picks HTTP/1.1 anyway; saying so avoids an h2 preference.
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        })
        .clone()
}

/// Accepts any server certificate but checks handshake signatures with the provider.
#[derive(Debug)]
struct AnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_with_reason() {
        assert_eq!(
            parse_status_line(b"HTTP/1.1 200 OK"),
            Ok((200, "OK".to_string()))
        );
        assert_eq!(
            parse_status_line(b"HTTP/1.0 500 Internal Server Error"),
            Ok((500, "Internal Server Error".to_string()))
        );
    }

    #[test]
    fn status_line_without_reason() {
        assert_eq!(
            parse_status_line(b"HTTP/1.1 204 "),
            Ok((204, String::new()))
        );
        assert_eq!(parse_status_line(b"HTTP/1.1 204"), Ok((204, String::new())));
    }

    #[test]
    fn status_line_garbage_is_rejected() {
        assert_eq!(
            parse_status_line(b"SSH-2.0-OpenSSH_9.6"),
            Err("status line \"SSH-2.0-OpenSSH_9.6\" does not start with HTTP/1.x".into())
        );
        assert!(parse_status_line(b"HTTP/1.1 2x0 OK").is_err());
        assert!(parse_status_line(b"HTTP/1.1 999 Nope").is_err());
    }
}
