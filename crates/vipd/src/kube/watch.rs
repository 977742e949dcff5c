//! The task that watches `/api/v1/nodes` and hands the daemon settled peer sets and DNS records.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tokio::sync::mpsc;

use super::derive::{dns_nodes, node_facts, peer_set, Member, NodeFacts, PeerRule, Settler};
use super::{InstanceSource, KubeStatus, KubeUpdate, KubernetesConfig};

/// Pause before reading the kubeconfig again after it could not be used (first boot: the
/// kubelet writes it later).
const CLIENT_RETRY: Duration = Duration::from_secs(15);

type PeerValue = Result<Vec<IpAddr>, super::PeerSetProblem>;
/// DNS node records: short name and addresses.
type DnsRecords = Vec<(String, Vec<IpAddr>)>;

/// The daemon's handle on the watch task.
pub struct KubeSource {
    members: mpsc::Sender<Vec<(String, Member)>>,
    pub status: Arc<Mutex<KubeStatus>>,
    task: tokio::task::JoinHandle<()>,
}

impl KubeSource {
    /// Starts watching; settled values go to `updates`.
    pub fn start(config: KubernetesConfig, updates: mpsc::Sender<KubeUpdate>) -> KubeSource {
        let status = Arc::new(Mutex::new(KubeStatus {
            kubeconfig: config.kubeconfig.display().to_string(),
            ..KubeStatus::default()
        }));
        let (tx, rx) = mpsc::channel(8);
        let watch = Watch {
            config,
            updates,
            status: Arc::clone(&status),
            nodes: BTreeMap::new(),
            staging: None,
            synced: false,
            members: Vec::new(),
            peers: BTreeMap::new(),
            dns: None,
        };
        let task = tokio::spawn(watch.run(rx));
        KubeSource {
            members: tx,
            status,
            task,
        }
    }

    /// Where each API-fed instance runs (its own address and subnet), once placed; again after
    /// a reload. The sets are derived for these.
    pub async fn set_members(&self, members: Vec<(String, Member)>) {
        let _ = self.members.send(members).await;
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

struct Watch {
    config: KubernetesConfig,
    updates: mpsc::Sender<KubeUpdate>,
    status: Arc<Mutex<KubeStatus>>,
    /// The nodes of the last complete view, by name.
    nodes: BTreeMap<String, NodeFacts>,
    /// A re-list in progress (the old view stays in force until it is complete).
    staging: Option<BTreeMap<String, NodeFacts>>,
    synced: bool,
    members: Vec<(String, Member)>,
    peers: BTreeMap<String, (Settler<PeerValue>, Option<String>)>,
    dns: Option<Settler<DnsRecords>>,
}

impl Watch {
    async fn run(mut self, mut members: mpsc::Receiver<Vec<(String, Member)>>) {
        loop {
            let client = match self.client().await {
                Ok(c) => c,
                Err(e) => {
                    self.error(format!("{e:#}"));
                    if self.wait(&mut members, CLIENT_RETRY).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let api: Api<Node> = Api::all(client);
            let mut stream = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            loop {
                let deadline = self.next_deadline();
                tokio::select! {
                    event = stream.next() => match event {
                        Some(Ok(e)) => self.on_event(e).await,
                        Some(Err(e)) => self.error(format!("watching /api/v1/nodes: {e}")),
                        None => break,
                    },
                    m = members.recv() => match m {
                        Some(m) => { self.members = m; self.derive().await; }
                        None => return,
                    },
                    _ = sleep_until(deadline) => self.settle_due().await,
                }
            }
        }
    }

    /// Waits `d`, taking member updates meanwhile; `Err` when the daemon is gone.
    async fn wait(
        &mut self,
        members: &mut mpsc::Receiver<Vec<(String, Member)>>,
        d: Duration,
    ) -> Result<(), ()> {
        let until = tokio::time::Instant::now() + d;
        loop {
            tokio::select! {
                m = members.recv() => match m {
                    Some(m) => self.members = m,
                    None => return Err(()),
                },
                _ = tokio::time::sleep_until(until) => return Ok(()),
            }
        }
    }

    async fn client(&self) -> anyhow::Result<Client> {
        let path = &self.config.kubeconfig;
        let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
            anyhow::anyhow!(
                "[kubernetes] kubeconfig {}: cannot read it: {e}",
                path.display()
            )
        })?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "[kubernetes] kubeconfig {}: cannot use it: {e}",
                        path.display()
                    )
                })?;
        if let Ok(mut s) = self.status.lock() {
            s.server = Some(config.cluster_url.to_string());
        }
        Client::try_from(config).map_err(|e| {
            anyhow::anyhow!(
                "[kubernetes] kubeconfig {}: cannot build a client: {e}",
                path.display()
            )
        })
    }

    async fn on_event(&mut self, event: Event<Node>) {
        match event {
            Event::Init => self.staging = Some(BTreeMap::new()),
            Event::InitApply(node) => {
                if let Some((name, facts)) = self.facts(&node) {
                    self.staging
                        .get_or_insert_with(BTreeMap::new)
                        .insert(name, facts);
                }
            }
            Event::InitDone => {
                self.nodes = self.staging.take().unwrap_or_default();
                if !self.synced {
                    tracing::info!(
                        nodes = self.nodes.len(),
                        "kubernetes: first node list received; peers and node records now follow it"
                    );
                }
                self.synced = true;
                self.derive().await;
            }
            Event::Apply(node) => {
                if let Some((name, facts)) = self.facts(&node) {
                    self.nodes.insert(name, facts);
                }
                self.derive().await;
            }
            Event::Delete(node) => {
                if let Some(name) = node.metadata.name.as_deref() {
                    self.nodes.remove(name);
                }
                self.derive().await;
            }
        }
    }

    /// The facts of one node; a node without a name is skipped and reported.
    fn facts(&self, node: &Node) -> Option<(String, NodeFacts)> {
        let Some(name) = node.metadata.name.clone() else {
            self.skipped("a node without metadata.name".into());
            return None;
        };
        let labels = node
            .metadata
            .labels
            .iter()
            .flat_map(|l| l.keys().map(String::as_str));
        let addresses = node
            .status
            .iter()
            .flat_map(|s| s.addresses.iter().flatten())
            .map(|a| (a.type_.as_str(), a.address.as_str()));
        let (facts, bad) = node_facts(&name, labels, addresses);
        if !bad.is_empty() {
            self.skipped(format!(
                "node {name}: unparsable InternalIP {}",
                bad.join(", ")
            ));
        }
        if facts.internal_ips.is_empty() {
            self.skipped(format!("node {name}: no InternalIP in status.addresses"));
        }
        Some((name, facts))
    }

    fn skipped(&self, why: String) {
        if let Ok(mut s) = self.status.lock() {
            if !s.skipped.contains(&why) {
                tracing::warn!("kubernetes: {why}; it is left out of peers and node records");
                s.skipped.push(why);
                if s.skipped.len() > 32 {
                    s.skipped.remove(0);
                }
            }
        }
    }

    fn error(&self, message: String) {
        if let Ok(mut s) = self.status.lock() {
            s.errors += 1;
            // Logged on a change of message, not at every retry.
            if s.last_error.as_deref() != Some(message.as_str()) {
                tracing::warn!(
                    "kubernetes: {message}; the last good peers and node records stay in effect"
                );
            }
            s.last_error = Some(message);
            s.last_error_at = Some(SystemTime::now());
        }
    }

    /// Recomputes every set from the current view and offers it to its settler.
    async fn derive(&mut self) {
        if !self.synced {
            return;
        }
        let now = Instant::now();
        let nodes: Vec<NodeFacts> = self.nodes.values().cloned().collect();
        let settle = self.config.settle;
        let mut ready = Vec::new();
        for (instance, member) in &self.members {
            let value = peer_set(&nodes, *member);
            let entry = self
                .peers
                .entry(instance.clone())
                .or_insert_with(|| (Settler::new(settle), None));
            entry.1 = value.as_ref().err().map(ToString::to_string);
            // Too few members: refused, the last good set stays (never an empty list).
            if matches!(value, Err(super::PeerSetProblem::TooFew { .. })) {
                continue;
            }
            if let Some(v) = entry.0.offer(now, value) {
                ready.push(KubeUpdate::Peers {
                    instance: instance.clone(),
                    peers: v,
                });
            }
        }
        if self.config.dns_nodes {
            let records = dns_nodes(&nodes);
            let settler = self.dns.get_or_insert_with(|| Settler::new(settle));
            if let Some(v) = settler.offer(now, records) {
                ready.push(KubeUpdate::DnsNodes(v));
            }
        }
        self.send(ready).await;
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter_map(|(s, _)| s.poll_timeout())
            .chain(self.dns.iter().filter_map(Settler::poll_timeout))
            .min()
    }

    async fn settle_due(&mut self) {
        let now = Instant::now();
        let mut ready = Vec::new();
        for (instance, (settler, _)) in self.peers.iter_mut() {
            if let Some(v) = settler.handle_timeout(now) {
                ready.push(KubeUpdate::Peers {
                    instance: instance.clone(),
                    peers: v,
                });
            }
        }
        if let Some(v) = self.dns.as_mut().and_then(|s| s.handle_timeout(now)) {
            ready.push(KubeUpdate::DnsNodes(v));
        }
        self.send(ready).await;
    }

    async fn send(&mut self, ready: Vec<KubeUpdate>) {
        let changed = !ready.is_empty();
        for u in ready {
            let _ = self.updates.send(u).await;
        }
        self.publish(changed);
    }

    fn publish(&self, changed: bool) {
        let Ok(mut s) = self.status.lock() else {
            return;
        };
        s.synced = self.synced;
        s.nodes = self.nodes.len();
        if changed {
            s.last_change = Some(SystemTime::now());
        }
        let mut instances = Vec::new();
        for (name, member) in &self.members {
            let (settler, problem) = match self.peers.get(name) {
                Some(p) => (Some(&p.0), p.1.clone()),
                None => (None, None),
            };
            let previous = s.instances.iter().find(|i| &i.instance == name);
            let applied = settler
                .and_then(|s| s.applied())
                .and_then(|v| v.as_ref().ok())
                .cloned();
            let applied_at = match previous {
                Some(p) if p.applied == applied => p.applied_at,
                _ => applied.as_ref().map(|_| SystemTime::now()),
            };
            instances.push(InstanceSource {
                instance: name.clone(),
                rule: rule_name(member.rule),
                applied,
                applied_at,
                applied_secs_ago: None,
                pending: settler
                    .and_then(|s| s.pending())
                    .and_then(|(v, _)| v.as_ref().ok())
                    .cloned(),
                problem,
            });
        }
        s.instances = instances;
        s.dns_nodes = self.dns.as_ref().and_then(|d| d.applied()).map(Vec::len);
    }
}

fn rule_name(rule: PeerRule) -> &'static str {
    rule.as_str()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
