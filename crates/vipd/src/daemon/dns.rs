//! The cluster DNS inside the daemon: zone from the config, forwarder fed by a static
//! `upstreams` list or by resolv.conf (watched).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use vipd_dns::forward::{
    ForwardMetrics, Forwarder, ForwarderConfig, ResolvConfWatch, ResolvConfWatcher,
};
use vipd_dns::server::{DnsMetrics, DnsServer, DnsServerHandle, ServerConfig};
use vipd_dns::zone::{ClusterZone, Node, Records, ZoneConfig, ZoneHandle, ZoneOptions};

use crate::config::{Config, DnsConfig};

/// The running DNS server and what feeds it.
pub struct DnsRuntime {
    server: Arc<Mutex<Option<DnsServerHandle>>>,
    forwarder: Arc<Forwarder>,
    zone: ZoneHandle,
    /// Follows `resolv_conf`; `None` with a static `upstreams` list.
    watcher: Option<ResolvConfWatcher>,
    /// Where the upstreams come from, for the status.
    upstream_source: Arc<Mutex<String>>,
    config: DnsConfig,
    /// Node records from the Kubernetes API (with the file's), kept across reloads.
    api_nodes: Option<Vec<crate::config::DnsNode>>,
    // Last: dropped after everything that runs on it.
    runtime: DnsThreads,
}

/// The DNS part's own tokio runtime: forwarded queries, TCP connections and the resolv.conf
/// watcher run here, on two worker threads, so a burst of DNS work never delays a VRRP timer
/// on the daemon's single-threaded runtime (and the VRRP loop pays no multi-thread scheduler
/// overhead on each advert). The UDP hot path has its own threads (vipd_dns::server).
struct DnsThreads(Option<tokio::runtime::Runtime>);

impl DnsThreads {
    fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(2)
            .thread_name("vipd-dns")
            .enable_all()
            .build()
            .context("cannot start the DNS threads")?;
        Ok(DnsThreads(Some(runtime)))
    }

    /// Runs `f` with this runtime as the current one, so what it spawns or registers (tasks,
    /// sockets) lives here.
    fn enter<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.0 {
            Some(rt) => {
                let _guard = rt.enter();
                f()
            }
            None => f(),
        }
    }
}

impl Drop for DnsThreads {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside the daemon's runtime.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A cheap handle for status and metrics.
#[derive(Clone)]
pub struct DnsView {
    server: Arc<Mutex<Option<DnsServerHandle>>>,
    forwarder: Arc<Forwarder>,
    zone: ZoneHandle,
    upstream_source: Arc<Mutex<String>>,
    force_tcp: bool,
}

impl DnsRuntime {
    pub async fn start(dns: &DnsConfig, config: &Config) -> anyhow::Result<Self> {
        let zone = ZoneHandle::new(build_zone(dns, config)?);
        let runtime = DnsThreads::start()?;
        let (forwarder, watcher, server) = runtime.enter(|| -> anyhow::Result<_> {
            let forwarder = Arc::new(
                Forwarder::new(forwarder_config(dns)).context("cannot set up the DNS forwarder")?,
            );
            let watcher = watch_resolv_conf(&forwarder, dns, config);
            let server =
                DnsServer::start(server_config(dns)?, zone.clone(), Arc::clone(&forwarder))?;
            Ok((forwarder, watcher, server))
        })?;
        warn_static_upstreams_here(dns);
        tracing::info!(
            domain = %dns.cluster_domain,
            listen = ?server.local_addrs(),
            upstreams = %upstream_source(dns),
            force_tcp = dns.force_tcp,
            records = ?dns.records,
            "cluster DNS serving"
        );
        Ok(DnsRuntime {
            server: Arc::new(Mutex::new(Some(server))),
            forwarder,
            zone,
            watcher,
            upstream_source: Arc::new(Mutex::new(upstream_source(dns))),
            config: dns.clone(),
            api_nodes: None,
            runtime,
        })
    }

    pub fn view(&self) -> DnsView {
        DnsView {
            server: Arc::clone(&self.server),
            forwarder: Arc::clone(&self.forwarder),
            zone: self.zone.clone(),
            upstream_source: Arc::clone(&self.upstream_source),
            force_tcp: self.config.force_tcp,
        }
    }

    /// Replaces the node records (from the Kubernetes API): the zone is rebuilt from the
    /// running `[dns]` with `nodes` and swapped atomically.
    pub fn set_nodes(
        &mut self,
        nodes: Vec<crate::config::DnsNode>,
        config: &Config,
    ) -> anyhow::Result<()> {
        let dns = DnsConfig {
            nodes,
            ..self.config.clone()
        };
        let zone = build_zone(&dns, config)?;
        self.zone.replace(zone);
        self.api_nodes = Some(dns.nodes);
        Ok(())
    }

    /// Applies a reloaded configuration: the zone is swapped atomically (no query lost); the
    /// resolv.conf path and exclusions are re-armed; listeners stay (a restart changes them).
    pub async fn reload(&mut self, dns: Option<&DnsConfig>, config: &Config) -> anyhow::Result<()> {
        let Some(dns) = dns else {
            tracing::warn!("reload: [dns] was removed; DNS keeps serving until vipd restarts");
            return Ok(());
        };
        let mut dns = dns.clone();
        if let Some(nodes) = &self.api_nodes {
            for n in nodes {
                dns.nodes.retain(|m| m.name != n.name);
                dns.nodes.push(n.clone());
            }
        }
        let dns = &dns;
        let zone = build_zone(dns, config)?;
        if dns.listen != self.config.listen
            || dns.max_udp_size != self.config.max_udp_size
            || dns.allow != self.config.allow
            || dns.force_tcp != self.config.force_tcp
            || dns.batch_scheduling != self.config.batch_scheduling
        {
            tracing::warn!("reload: DNS listen / max_udp_size / allow / force_tcp / batch_scheduling changed; they take effect when vipd restarts");
        }
        self.zone.replace(zone);
        self.reload_upstreams(dns, config);
        if let Ok(mut source) = self.upstream_source.lock() {
            *source = upstream_source(dns);
        }
        self.config = dns.clone();
        Ok(())
    }

    /// A static list replaces the upstreams at once and stops the watcher; going back to
    /// resolv.conf, or to another file, starts one (it reads the file at once).
    fn reload_upstreams(&mut self, dns: &DnsConfig, config: &Config) {
        if !dns.upstreams.is_empty() {
            if dns.upstreams != self.config.upstreams {
                self.watcher = None;
                self.forwarder.set_upstreams(dns.upstreams.clone());
                warn_static_upstreams_here(dns);
            }
        } else if !self.config.upstreams.is_empty() || dns.resolv_conf != self.config.resolv_conf {
            let forwarder = &self.forwarder;
            self.watcher = self
                .runtime
                .enter(|| watch_resolv_conf(forwarder, dns, config));
        }
    }

    pub async fn shutdown(self) {
        let server = self.server.lock().ok().and_then(|mut s| s.take());
        if let Some(server) = server {
            server.shutdown().await;
        }
        drop(self.watcher);
    }
}

impl DnsView {
    pub fn server_metrics(&self) -> Option<DnsMetrics> {
        self.server.lock().ok()?.as_ref().map(|s| s.metrics())
    }

    pub fn forward_metrics(&self) -> ForwardMetrics {
        self.forwarder.metrics()
    }

    pub fn status(&self) -> serde_json::Value {
        let zone = self.zone.load();
        let upstreams: Vec<serde_json::Value> = self
            .forwarder
            .upstreams()
            .iter()
            .map(|u| {
                serde_json::json!({
                    "address": u.addr.to_string(),
                    "healthy": u.healthy,
                    "last_rtt_ms": u.last_rtt.map(|d| d.as_secs_f64() * 1000.0),
                    "queries": u.queries,
                    "failures": u.failures,
                    "timeouts": u.timeouts,
                })
            })
            .collect();
        let m = self.server_metrics().unwrap_or_default();
        serde_json::json!({
            "domain": zone.domain(),
            "listen": self.server.lock().ok().and_then(|s| s.as_ref().map(|s| s.local_addrs().iter().map(|a| a.to_string()).collect::<Vec<_>>())),
            "records": match zone.records() { Records::Cluster => "cluster", Records::Nodes => "nodes" },
            "upstream_source": self.upstream_source.lock().map(|s| s.clone()).unwrap_or_default(),
            "force_tcp": self.force_tcp,
            "upstreams": upstreams,
            "answered_locally": m.answered_locally,
            "forwarded": m.forwarded,
        })
    }
}

fn build_zone(dns: &DnsConfig, config: &Config) -> anyhow::Result<ClusterZone> {
    let base_domain = config
        .base_domain
        .clone()
        .context("[dns] needs `base_domain` at the top level")?;
    let zone_config = ZoneConfig {
        cluster_name: config.cluster_name.to_ascii_lowercase(),
        base_domain: base_domain.to_ascii_lowercase(),
        api_vips: dns.api_vips.clone(),
        ingress_vips: dns.ingress_vips.clone(),
        nodes: dns
            .nodes
            .iter()
            .map(|n| Node {
                name: n.name.to_ascii_lowercase(),
                addresses: n.addresses.clone(),
            })
            .collect(),
        ttl: dns.ttl,
    };
    let options = ZoneOptions {
        records: dns.records,
        api_int_vips: Some(dns.api_int_vips.clone()),
    };
    ClusterZone::with_options(&zone_config, &options)
        .with_context(|| format!("{}: [dns]", config.source.display()))
}

/// The zone the daemon serves for `config`'s `[dns]`, as it builds it at start (for tests and
/// `vipd import` checks: the same records, answered by `vipd_dns::answer`).
pub fn zone_for(config: &Config) -> anyhow::Result<Option<ClusterZone>> {
    config
        .dns
        .as_ref()
        .map(|dns| build_zone(dns, config))
        .transpose()
}

/// The forwarder settings the daemon starts with for `dns` (upstreams empty: read from
/// resolv.conf by the watcher).
pub fn forwarder_config(dns: &DnsConfig) -> ForwarderConfig {
    ForwarderConfig {
        upstreams: dns.upstreams.clone(),
        force_tcp: dns.force_tcp,
        ..ForwarderConfig::default()
    }
}

/// A watcher of `resolv_conf`, unless `upstreams` is a static list.
fn watch_resolv_conf(
    forwarder: &Arc<Forwarder>,
    dns: &DnsConfig,
    config: &Config,
) -> Option<ResolvConfWatcher> {
    dns.upstreams.is_empty().then(|| {
        ResolvConfWatcher::spawn(
            Arc::clone(forwarder),
            ResolvConfWatch::new(dns.resolv_conf.clone(), excluded_upstreams(dns, config)),
        )
    })
}

/// "static" or the resolv.conf path.
fn upstream_source(dns: &DnsConfig) -> String {
    if dns.upstreams.is_empty() {
        dns.resolv_conf.display().to_string()
    } else {
        "static".to_owned()
    }
}

/// A static upstream that is one of this node's own addresses on a port DNS listens on sends
/// queries back here (validation can only see loopback and the VIPs).
fn warn_static_upstreams_here(dns: &DnsConfig) {
    let local = local_addresses();
    for upstream in &dns.upstreams {
        let here = local.contains(&upstream.ip())
            && dns.listen.iter().any(|l| {
                l.port() == upstream.port() && (l.ip().is_unspecified() || l.ip() == upstream.ip())
            });
        if here {
            tracing::warn!(%upstream, "[dns] upstreams names this node on a port vipd listens on: forwarded queries will come back here");
        }
    }
}

fn server_config(dns: &DnsConfig) -> anyhow::Result<ServerConfig> {
    let allow = dns.allow.clone();
    Ok(ServerConfig {
        listen: dns.listen.clone(),
        // Two UDP sockets per address saturate this daemon's share of a node; more threads
        // would only add memory.
        workers: std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(2),
        max_udp_size: dns.max_udp_size,
        allow,
        batch_scheduling: dns.batch_scheduling,
        ..ServerConfig::default()
    })
}

/// Addresses never used as upstreams: our own VIPs and node addresses (CoreDNS's renderer
/// dropped the node's own IP so it would not forward to itself).
fn excluded_upstreams(dns: &DnsConfig, config: &Config) -> Vec<IpAddr> {
    let mut exclude: Vec<IpAddr> = config
        .instances
        .iter()
        .flat_map(|i| i.vips.iter().copied())
        .chain(dns.api_vips.iter().copied())
        .chain(dns.api_int_vips.iter().copied())
        .chain(dns.ingress_vips.iter().copied())
        .collect();
    exclude.extend(local_addresses());
    exclude.sort();
    exclude.dedup();
    exclude
}

fn local_addresses() -> Vec<IpAddr> {
    nix::ifaddrs::getifaddrs()
        .map(|addrs| {
            addrs
                .filter_map(|a| a.address)
                .filter_map(|s| {
                    s.as_sockaddr_in()
                        .map(|v4| IpAddr::V4(v4.ip()))
                        .or_else(|| s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
                })
                .collect()
        })
        .unwrap_or_default()
}
