//! `[resolver]` as validated (validate/resolver.rs builds it; crate::resolver carries it out).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// `[resolver] target` default: the file the node's libc reads.
pub const DEFAULT_TARGET: &str = "/etc/resolv.conf";
/// `[resolver] source` default: NetworkManager's copy with the real upstreams.
pub const DEFAULT_SOURCE: &str = "/var/run/NetworkManager/resolv.conf";
/// `[resolver] upstream_copy` default: where the original is saved when source = target.
pub const DEFAULT_UPSTREAM_COPY: &str = "/run/vipd/resolv.conf.upstream";

/// `[resolver]` with `manage = true`, validated. Absent (`Config::resolver` is `None`) when the
/// table is missing or `manage = false` (the default): vipd then never touches resolv.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConfig {
    /// `target` (default `/etc/resolv.conf`).
    pub target: PathBuf,
    /// `source` (default `/var/run/NetworkManager/resolv.conf`); equal to `target` on a
    /// bootstrap node without NetworkManager's copy.
    pub source: PathBuf,
    /// `upstream_copy` (default `/run/vipd/resolv.conf.upstream`), used when source = target.
    pub upstream_copy: PathBuf,
    /// `nameserver`, or how to find it at start.
    pub nameserver: OwnNameserver,
    /// `search`; `None` = the cluster domain, then the source's search list.
    pub search: Option<Vec<String>>,
    /// The cluster domain (`[resolver]` requires `[dns]`, which requires `base_domain`).
    pub cluster_domain: String,
}

impl ResolverConfig {
    /// The file holding the real upstreams: what the DNS forwarder must read.
    pub fn upstream_file(&self) -> &Path {
        if self.source == self.target {
            &self.upstream_copy
        } else {
            &self.source
        }
    }
}

/// The address written as the first `nameserver`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnNameserver {
    /// Configured, a `unicast_source`, or a specific `[dns] listen` address.
    Address(IpAddr),
    /// The primary IPv4 address of the interface this instance runs on, known only at start.
    InstanceAddress(String),
}
