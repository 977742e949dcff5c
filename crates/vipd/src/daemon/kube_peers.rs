//! The daemon's side of `[kubernetes]` (crate::kube): settled peer sets go to the running
//! instances in place, node records to the DNS zone; an instance whose node list leaves this
//! node out stops (resigning make-before-break) and starts again when the node is back.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use tokio::sync::mpsc;

use crate::config::{Config, DnsNode, InstanceConfig};
use crate::kube::{KubeSource, KubeUpdate, Member, PeerSetProblem};
use crate::net::iface;

use super::instance::{Command, InstanceHandle};

/// What the daemon keeps of the API source.
pub struct KubeState {
    pub source: KubeSource,
    pub updates: mpsc::Receiver<KubeUpdate>,
    /// The settled peers of each API-fed instance (they replace the file's `unicast_peers`).
    pub peers: BTreeMap<String, Vec<IpAddr>>,
    /// Instances the node list leaves this node out of: not running.
    pub excluded: BTreeSet<String>,
}

impl KubeState {
    /// Starts the watch when `[kubernetes]` is configured.
    pub fn start(config: &Config) -> Option<KubeState> {
        let k = config.kubernetes.clone()?;
        let (tx, rx) = mpsc::channel(16);
        tracing::info!(
            kubeconfig = %k.kubeconfig.display(),
            instances = ?k.instances,
            dns_nodes = k.dns_nodes,
            "kubernetes: watching the node list for peers and node records"
        );
        Some(KubeState {
            source: KubeSource::start(k, tx),
            updates: rx,
            peers: BTreeMap::new(),
            excluded: BTreeSet::new(),
        })
    }

    /// `ic` as it runs now: with the API's peers when they are known.
    pub fn effective(&self, ic: &InstanceConfig) -> InstanceConfig {
        let mut ic = ic.clone();
        if let Some(peers) = self.peers.get(&ic.name) {
            if ic.peers.is_empty() && ic.accept_from.is_empty() {
                ic.check_source = true;
            }
            ic.peers = peers.clone();
        }
        ic
    }
}

/// Where each API-fed instance of `config` runs: its own address (on the instance's interface,
/// in the VIP's subnet; not the IPv6 link-local VRRP sends from) and that subnet's prefix.
pub async fn members(config: &Config, instances: &[InstanceHandle]) -> Vec<(String, Member)> {
    let Some(k) = &config.kubernetes else {
        return Vec::new();
    };
    let local = iface::local_addresses().await.unwrap_or_default();
    let mut out = Vec::new();
    for (name, rule) in &k.instances {
        let Some(h) = instances.iter().find(|h| &h.name == name) else {
            continue;
        };
        let vip = h.config.vips.first().copied();
        let own = h
            .config
            .unicast_source
            .and_then(|s| local.iter().find(|a| a.address == s))
            .or_else(|| {
                local.iter().find(|a| {
                    a.ifindex == h.placement.interface.ifindex
                        && !a.link_local
                        && !a.deprecated
                        && vip.is_some_and(|v| {
                            v.is_ipv4() == a.address.is_ipv4()
                                && vipd_dns::server::network_of(v, a.prefix_len)
                                    == vipd_dns::server::network_of(a.address, a.prefix_len)
                        })
                })
            });
        let (own, prefix) = match own {
            Some(a) => (a.address, a.prefix_len),
            None => (
                h.placement.source,
                if h.placement.source.is_ipv4() { 24 } else { 64 },
            ),
        };
        out.push((
            name.clone(),
            Member {
                rule: *rule,
                own,
                prefix,
                bootstrap: k.bootstrap,
            },
        ));
    }
    out
}

/// The DNS node records: the file's `[[dns.node]]` plus the API's (the API's win by name).
pub fn merged_nodes(config: &Config, api: &[(String, Vec<IpAddr>)]) -> Vec<DnsNode> {
    let mut nodes: Vec<DnsNode> = config
        .dns
        .as_ref()
        .map(|d| d.nodes.clone())
        .unwrap_or_default();
    for (name, addresses) in api {
        nodes.retain(|n| &n.name != name);
        nodes.push(DnsNode {
            name: name.clone(),
            addresses: addresses.clone(),
        });
    }
    nodes
}

impl super::Daemon {
    /// One settled value from the API.
    pub(super) async fn on_kube(&mut self, update: KubeUpdate) {
        match update {
            KubeUpdate::Peers {
                instance,
                peers: Ok(peers),
            } => self.kube_peers(instance, peers).await,
            KubeUpdate::Peers {
                instance,
                peers: Err(problem),
            } => self.kube_exclude(instance, problem).await,
            KubeUpdate::DnsNodes(nodes) => {
                let merged = merged_nodes(&self.config, &nodes);
                if let Some(dns) = &mut self.dns {
                    if let Err(e) = dns.set_nodes(merged, &self.config) {
                        tracing::error!(
                            "kubernetes: cannot apply {} node records to the DNS zone: {e:#}",
                            nodes.len()
                        );
                    } else {
                        tracing::info!(nodes = nodes.len(), "kubernetes: DNS node records updated");
                    }
                }
            }
        }
    }

    async fn kube_peers(&mut self, instance: String, peers: Vec<IpAddr>) {
        let Some(kube) = &mut self.kube else { return };
        kube.peers.insert(instance.clone(), peers.clone());
        if kube.excluded.remove(&instance) {
            if let Some(ic) = self.config.instances.iter().find(|i| i.name == instance) {
                let ic = kube.effective(ic);
                tracing::info!(instance = %instance, peers = ?peers, "kubernetes: this node is in the list again; starting the instance");
                if let Err(e) = self.start_one(ic).await {
                    tracing::error!(instance = %instance, "kubernetes: cannot start the instance: {e:#}");
                }
            }
        } else if let Some(h) = self.instances.iter_mut().find(|h| h.name == instance) {
            h.config.peers = peers.clone();
            let _ = h.commands.send(Command::SetPeers(peers)).await;
        }
        self.bfd
            .configure(super::instance_bfd(&self.instances))
            .await;
    }

    async fn kube_exclude(&mut self, instance: String, problem: PeerSetProblem) {
        let Some(kube) = &mut self.kube else { return };
        if !kube.excluded.insert(instance.clone()) {
            return;
        }
        tracing::warn!(instance = %instance, "kubernetes: {problem}; resigning and stopping it");
        if let Some(pos) = self.instances.iter().position(|h| h.name == instance) {
            let handle = self.instances.remove(pos);
            super::stop_instance(handle).await;
            super::publish_instances(&self.shared, &self.instances);
            self.bfd
                .configure(super::instance_bfd(&self.instances))
                .await;
        }
    }
}
