//! Serves a fixed test cluster zone for benchmarks (scripts/bench-dns.sh).
//!
//! `serve LISTEN WORKERS [UPSTREAM]`, e.g. `serve 127.0.0.1:5300 1 127.0.0.1:5400`. The zone is
//! `ostest.test.metalkube.org` with API VIP 192.0.2.5, ingress VIP 192.0.2.6 and three masters
//! at 192.0.2.10-12; everything else goes to UPSTREAM through the real forwarder.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use vipd_dns::forward::{Forwarder, ForwarderConfig};
use vipd_dns::server::{DnsServer, ServerConfig};
use vipd_dns::zone::{ClusterZone, Node, ZoneConfig, ZoneHandle};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: serve LISTEN WORKERS [UPSTREAM]";
    let listen: SocketAddr = args.get(1).ok_or(usage)?.parse()?;
    let workers: usize = args.get(2).ok_or(usage)?.parse()?;
    let upstreams: Vec<SocketAddr> = match args.get(3) {
        Some(upstream) => vec![upstream.parse()?],
        None => Vec::new(),
    };
    let ip = |text: &str| -> Result<IpAddr, std::net::AddrParseError> { text.parse() };
    let zone = ClusterZone::new(&ZoneConfig {
        cluster_name: "ostest".into(),
        base_domain: "test.metalkube.org".into(),
        api_vips: vec![ip("192.0.2.5")?],
        ingress_vips: vec![ip("192.0.2.6")?],
        nodes: (0..3)
            .map(|i| {
                Ok(Node {
                    name: format!("master-{i}"),
                    addresses: vec![ip(&format!("192.0.2.{}", 10 + i))?],
                })
            })
            .collect::<Result<_, std::net::AddrParseError>>()?,
        ttl: 30,
    })?;
    // Tokio only carries TCP and forwarded queries; UDP workers are their own threads.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let forwarder = Arc::new(Forwarder::new(ForwarderConfig {
            upstreams,
            ..ForwarderConfig::default()
        })?);
        let config = ServerConfig {
            listen: vec![listen],
            workers,
            ..ServerConfig::default()
        };
        let handle = DnsServer::start(config, ZoneHandle::new(zone), forwarder)?;
        eprintln!("serving on {:?}", handle.local_addrs());
        tokio::signal::ctrl_c().await?;
        let metrics = handle.metrics();
        handle.shutdown().await;
        eprintln!("{metrics:?}");
        Ok(())
    })
}
