//! The file as written: serde structures with spans, no defaults applied, no checks beyond types.
//! `deny_unknown_fields` everywhere so a misspelt key is an error, not a silent default.
//! Integers are read as `i64` so that range errors come from validation, with the accepted range.

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Required unless an OpenShift file gives it.
    pub cluster_name: Option<S<String>>,
    pub base_domain: Option<S<String>>,
    pub role: Option<S<String>>,
    pub api_vips: Option<S<Vec<S<String>>>>,
    pub ingress_vips: Option<S<Vec<S<String>>>>,
    pub openshift_infrastructure: Option<S<String>>,
    pub openshift_install_config: Option<S<String>>,
    #[serde(default)]
    pub instance: Vec<S<RawInstance>>,
    #[serde(default)]
    pub check: Vec<S<crate::health::CheckConfig>>,
    pub dns: Option<S<RawDns>>,
    pub http: Option<S<RawHttp>>,
    pub control: Option<S<RawControl>>,
    pub resolver: Option<S<RawResolver>>,
    pub handoff: Option<S<RawHandoff>>,
    pub kubernetes: Option<S<RawKubernetes>>,
    #[serde(default)]
    pub sync_group: Vec<S<RawSyncGroup>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInstance {
    pub name: S<String>,
    /// Required unless a role instance of the same name gives it.
    pub vips: Option<S<Vec<S<String>>>>,
    pub interface: Option<S<String>>,
    pub vrid: Option<S<i64>>,
    pub priority: Option<S<i64>>,
    pub advert_interval: Option<S<String>>,
    pub version: Option<S<i64>>,
    pub password: Option<S<String>>,
    pub checksum: Option<S<String>>,
    pub preempt: Option<bool>,
    pub unicast_source: Option<S<String>>,
    pub unicast_peers: Option<S<Vec<S<String>>>>,
    pub ttl_min: Option<S<i64>>,
    pub ttl_max: Option<S<i64>>,
    pub announce_count: Option<S<i64>>,
    pub announce_repeat_after: Option<S<String>>,
    pub announce_refresh: Option<S<String>>,
    pub resign_wait: Option<S<String>>,
    /// Drop adverts from senders that are neither `unicast_peers` nor `accept_from`.
    pub check_source: Option<S<bool>>,
    /// Senders admitted besides the unicast peers (e.g. the bootstrap node).
    pub accept_from: Option<S<Vec<S<String>>>>,
    /// `None` = not written (a role's list applies); `Some([])` = track nothing.
    pub track: Option<Vec<S<RawTrack>>>,
    /// `[instance.bfd]`, validated in validate/instance/bfd.rs.
    pub bfd: Option<S<RawBfd>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBfd {
    pub min_tx: Option<S<String>>,
    pub min_rx: Option<S<String>>,
    pub multiplier: Option<S<i64>>,
    #[serde(default)]
    pub peer: Vec<S<RawBfdPeer>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBfdPeer {
    pub address: S<String>,
    pub min_tx: Option<S<String>>,
    pub min_rx: Option<S<String>>,
    pub multiplier: Option<S<i64>>,
}

/// The timer keys of `[instance.bfd]` and of one `[[instance.bfd.peer]]`.
#[derive(Debug, Clone)]
pub struct RawBfdTimers {
    pub min_tx: Option<S<String>>,
    pub min_rx: Option<S<String>>,
    pub multiplier: Option<S<i64>>,
}

impl RawBfd {
    pub fn timers(&self) -> RawBfdTimers {
        RawBfdTimers {
            min_tx: self.min_tx.clone(),
            min_rx: self.min_rx.clone(),
            multiplier: self.multiplier.clone(),
        }
    }
}

impl RawBfdPeer {
    pub fn timers(&self) -> RawBfdTimers {
        RawBfdTimers {
            min_tx: self.min_tx.clone(),
            min_rx: self.min_rx.clone(),
            multiplier: self.multiplier.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrack {
    pub check: S<String>,
    pub weight: Option<S<i64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    pub listen: Option<S<Vec<S<String>>>>,
    pub resolv_conf: Option<S<String>>,
    pub ttl: Option<S<i64>>,
    pub max_udp_size: Option<S<i64>>,
    pub api_instances: Option<S<Vec<S<String>>>>,
    pub ingress_instances: Option<S<Vec<S<String>>>>,
    pub api_vips: Option<S<Vec<S<String>>>>,
    pub ingress_vips: Option<S<Vec<S<String>>>>,
    pub allow: Option<S<Vec<S<String>>>>,
    /// A static upstream list instead of `resolv_conf`'s name servers.
    pub upstreams: Option<S<Vec<S<String>>>>,
    pub force_tcp: Option<S<bool>>,
    /// `"cluster"` or `"nodes"`.
    pub records: Option<S<String>>,
    pub api_int_vips: Option<S<Vec<S<String>>>>,
    pub batch_scheduling: Option<S<bool>>,
    #[serde(default)]
    pub node: Vec<S<RawDnsNode>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDnsNode {
    pub name: S<String>,
    pub addresses: S<Vec<S<String>>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub listen: Option<S<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawControl {
    pub socket: Option<S<String>>,
    pub group: Option<S<String>>,
}

/// `[resolver]`, validated in validate/resolver.rs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResolver {
    pub manage: Option<bool>,
    pub target: Option<S<String>>,
    pub source: Option<S<String>>,
    pub upstream_copy: Option<S<String>>,
    pub nameserver: Option<S<String>>,
    pub search: Option<S<Vec<S<String>>>>,
}

/// `[handoff]`, validated in validate/handoff.rs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHandoff {
    pub enabled: Option<bool>,
    /// A name or a list of names; checked in validation so the message can say both forms.
    pub instance: Option<S<toml::Value>>,
    pub probe: Option<S<String>>,
    pub also_down: Option<S<Vec<S<String>>>>,
    pub interval: Option<S<String>>,
    pub failures: Option<S<i64>>,
    pub recoveries: Option<S<i64>>,
}

/// `[kubernetes]`, validated in validate/kubernetes.rs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKubernetes {
    pub kubeconfig: S<String>,
    pub settle: Option<S<String>>,
    pub api_instances: Option<S<Vec<S<String>>>>,
    pub ingress_instances: Option<S<Vec<S<String>>>>,
    pub dns_nodes: Option<bool>,
}

/// `[[sync_group]]`, validated in validate/sync_groups.rs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSyncGroup {
    pub name: S<String>,
    pub instances: S<Vec<S<String>>>,
}
