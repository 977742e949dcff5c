//! Peers and node records from the Kubernetes API (`[kubernetes]`): the scale-out source that
//! replaces OpenShift's keepalived-monitor and CoreDNS monitor re-rendering configs every 10 s
//! and 30 s. The API is the distributed engine here; vipd adds no membership protocol.
//!
//! One task ([`watch`]) lists and watches `/api/v1/nodes` with the node's kubeconfig (kube-rs's
//! watcher: LIST, then WATCH from the list's resourceVersion with bookmarks, a new LIST on
//! 410 Gone, backoff on errors). After every change it derives ([`derive`]) each configured
//! instance's peer set and the DNS node records, and hands the daemon each value once it has
//! been stable for the settle time. What the daemon does with them: `daemon.rs`.
//!
//! Rules that keep a wrong API answer harmless: before the first complete list the static
//! configuration applies; an API error or an unreachable API keeps the last good sets; a set
//! with fewer than two members (or without this node) is refused and reported, never applied as
//! an empty list (and so never turns an instance into multicast).

pub mod derive;
pub mod watch;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use derive::{Member, PeerRule, PeerSetProblem};
pub use watch::KubeSource;

/// `[kubernetes]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesConfig {
    /// `kubeconfig`: the node's kubeconfig (server, CA, client certificate and key).
    pub kubeconfig: PathBuf,
    /// `settle`: how long a derived set must stay the same before it is applied.
    pub settle: Duration,
    /// Instances whose peers come from the API, with their rule (`api_instances`: control-plane
    /// nodes; `ingress_instances`: all nodes).
    pub instances: Vec<(String, PeerRule)>,
    /// This node is the bootstrap: it is not in the masters' list and one master is enough.
    pub bootstrap: bool,
    /// `dns_nodes`: `[dns]` node records follow the node list.
    pub dns_nodes: bool,
}

/// What the watch hands the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeUpdate {
    /// The settled peer set of an instance, or why the instance must not run on this node.
    Peers {
        instance: String,
        peers: Result<Vec<IpAddr>, PeerSetProblem>,
    },
    /// The settled DNS node records: short name and addresses.
    DnsNodes(Vec<(String, Vec<IpAddr>)>),
}

/// What `vipd status` and `/metrics` show of the API source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KubeStatus {
    pub kubeconfig: String,
    /// The API server the kubeconfig names.
    pub server: Option<String>,
    /// A complete list has been received (the sets come from the API, not the static config).
    pub synced: bool,
    /// Nodes in the last complete view.
    pub nodes: usize,
    #[serde(skip)]
    pub last_change: Option<SystemTime>,
    pub seconds_since_change: Option<u64>,
    pub errors: u64,
    pub last_error: Option<String>,
    #[serde(skip)]
    pub last_error_at: Option<SystemTime>,
    pub seconds_since_error: Option<u64>,
    /// Nodes left out (no name, no address of a family, unparsable addresses), with why.
    pub skipped: Vec<String>,
    pub instances: Vec<InstanceSource>,
    /// DNS node records from the API (count), when `dns_nodes` is on and synced.
    pub dns_nodes: Option<usize>,
}

/// One instance's peers as the API gives them.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceSource {
    pub instance: String,
    pub rule: &'static str,
    /// The set in force from the API (`None`: the static configuration still applies).
    pub applied: Option<Vec<IpAddr>>,
    #[serde(skip)]
    pub applied_at: Option<SystemTime>,
    pub applied_secs_ago: Option<u64>,
    /// A different set waiting for the settle time.
    pub pending: Option<Vec<IpAddr>>,
    /// Why the latest list gives no usable set (the last good one stays).
    pub problem: Option<String>,
}

impl KubeStatus {
    /// Fills the "seconds ago" fields from the stored times.
    pub fn with_ages(mut self, now: SystemTime) -> KubeStatus {
        let ago = |t: Option<SystemTime>| {
            t.and_then(|t| now.duration_since(t).ok())
                .map(|d| d.as_secs())
        };
        self.seconds_since_change = ago(self.last_change);
        self.seconds_since_error = ago(self.last_error_at);
        for i in &mut self.instances {
            i.applied_secs_ago = ago(i.applied_at);
        }
        self
    }
}

impl PeerRule {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerRule::ControlPlane => "control-plane nodes",
            PeerRule::AllNodes => "all nodes",
        }
    }
}
