//! TCP connections for the `tcp` probe and the HTTP(S) probe.

use std::io;

use tokio::net::TcpStream;

use super::config::TcpTarget;
use super::probe_error::ProbeError;

/// Connects to every address `host` resolves to, in resolver order, until one accepts.
pub(super) async fn connect(host: &str, port: u16) -> Result<TcpStream, ProbeError> {
    let target = TcpTarget {
        host: host.to_string(),
        port,
    };
    tcp_connect(&target).await.map(|(_, stream)| stream)
}

pub(super) async fn tcp_connect(
    target: &TcpTarget,
) -> Result<(std::net::SocketAddr, TcpStream), ProbeError> {
    let addrs: Vec<_> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|source| ProbeError::Resolve {
            host: target.host.clone(),
            source,
        })?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no addresses");
    for addr in &addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok((*addr, s)),
            Err(e) => last = e,
        }
    }
    let target = match addrs.as_slice() {
        [one] => one.to_string(),
        _ => format!("{}:{}", target.host, target.port),
    };
    Err(ProbeError::Connect {
        target,
        source: last,
    })
}
