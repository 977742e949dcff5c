//! The TOML configuration: raw serde structures, then one validation pass that produces a
//! [`Config`] with every default applied and every value resolved (VRIDs derived, durations
//! parsed, authentication encoded).
//!
//! Nothing here touches the network or the file system beyond reading the file (and the
//! OpenShift file it may name, see [`openshift`]): a config that loads is one the daemon can start
//! with, except for what only the running host can tell (interface detection, the interface's
//! primary address).
//!
//! `role = "bootstrap" | "master" | "worker"` ([`role`]) supplies OpenShift's keepalived
//! settings as defaults; every value a role supplied is recorded ([`InstanceConfig::role_keys`])
//! so that `vipd check-config` shows where it came from.
//!
//! Every refusal is a [`Diagnostic`] naming `file:line:column`, the key and what would be
//! accepted; see docs/configuration.md for the reference of every key.

pub(crate) mod duration;
pub mod openshift;
mod raw;
pub mod resolver;
pub mod role;
pub mod validate;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use vipd_vrrp::{Auth, ChecksumForm, RouterConfig, SourceFilter, TtlPolicy, Version};

/// A client network of `[dns] allow` (`192.0.2.0/24`, `2001:db8::/32`; host bits zero).
pub use vipd_dns::server::ClientNet;

pub use duration::{format_duration, parse_duration};
pub use role::Role;

/// Where the daemon looks for its configuration when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/vipd/vipd.toml";

/// A validated configuration. Every field is resolved; nothing is left for the daemon to default.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this was loaded from (or the name given to [`Config::parse`]), for messages.
    pub source: PathBuf,
    /// `cluster_name`: the OpenShift cluster name, input of the VRID derivation.
    pub cluster_name: String,
    /// `base_domain`, when given. The cluster domain is `<cluster_name>.<base_domain>`.
    pub base_domain: Option<String>,
    /// `[[instance]]`, in file order.
    pub instances: Vec<InstanceConfig>,
    /// `[[check]]`, validated, in file order.
    pub checks: Vec<crate::health::CheckSpec>,
    /// `[dns]`; `None` = the DNS server is off.
    pub dns: Option<DnsConfig>,
    /// `[http]`; `None` = no HTTP endpoint.
    pub http: Option<HttpConfig>,
    /// `[control]`; always present (defaults apply).
    pub control: ControlConfig,
    /// `[resolver]` with `manage = true`; `None` = vipd never touches resolv.conf.
    pub resolver: Option<resolver::ResolverConfig>,
    /// `[handoff]`: the bootstrap gives the API VIP away once its own API is gone. On by default
    /// with `role = "bootstrap"`; `None` = off.
    pub handoff: Option<HandoffConfig>,
    /// `[kubernetes]`: peers and DNS node records follow the node list; `None` = static only.
    pub kubernetes: Option<crate::kube::KubernetesConfig>,
    /// `[[sync_group]]`: instances that move together.
    pub sync_groups: Vec<SyncGroupConfig>,
    /// Accepted but suspicious settings (e.g. a VRRPv2 password longer than 8 bytes). The daemon
    /// logs them at start; `vipd check-config` prints them.
    pub warnings: Vec<Diagnostic>,
    /// `role`, whose OpenShift defaults filled the values not written in the file.
    pub role: Option<Role>,
    /// Names of the `checks` that are the role's presets (not written as `[[check]]`).
    pub role_checks: Vec<String>,
    /// Where `cluster_name` / `base_domain` / the VIPs were read from when an OpenShift file
    /// was used: `"<path> (metadata.name, baseDomain, ...)"`.
    pub identity_source: Option<String>,
}

/// IP address family of an instance (all its VIPs share one).
pub use vipd_vrrp::AddressFamily as Family;

/// Where an instance's VRID came from (shown by `vipd check-config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VridSource {
    /// `vrid = N` in the file.
    Configured,
    /// Derived with OpenShift's fletcher8 from this string (`<cluster_name>-<instance name>`).
    Derived(String),
}

/// One `[[instance]]`: a virtual router.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceConfig {
    /// `name`: unique; part of the derived VRID input and of log lines and metrics.
    pub name: String,
    /// `vrid`, or derived from `<cluster_name>-<name>`; 1..=255.
    pub vrid: u8,
    pub vrid_source: VridSource,
    /// `vips`: at least one, all of `family`, no duplicates.
    pub vips: Vec<IpAddr>,
    pub family: Family,
    /// `interface`; `None` = detect from the VIP's subnet at start.
    pub interface: Option<String>,
    /// `priority`, 1..=255 (default 100).
    pub priority: u8,
    /// `advert_interval` (default 1 s); representable in the chosen version's wire field.
    pub advert_interval: Duration,
    /// `version` (default 3).
    pub version: Version,
    /// From `password` (v2 only): PASS with the first 8 bytes, zero-padded; else `Auth::None`.
    pub auth: Auth,
    /// Checksum form sent for VRRPv3 over IPv4 (`checksum`, default pseudo-header).
    /// Resolved to `Plain` for v2 and `PseudoHeader` for IPv6, the only forms those allow.
    pub checksum: ChecksumForm,
    /// `preempt` (default true).
    pub preempt: bool,
    /// `unicast_source`; `None` = the interface's primary address of this family.
    pub unicast_source: Option<IpAddr>,
    /// `unicast_peers`; empty = multicast (224.0.0.18 / ff02::12).
    pub peers: Vec<IpAddr>,
    /// `check_source`: act only on adverts from `peers` or `accept_from` (default: on when
    /// there is such a list, except a master role's API instance without `accept_from`).
    pub check_source: bool,
    /// `accept_from`: senders admitted besides the peers (e.g. the bootstrap node).
    pub accept_from: Vec<IpAddr>,
    /// Accepted received TTL / hop limit range, inclusive (`ttl_min`, `ttl_max`).
    pub ttl: (u8, u8),
    /// `announce_count`: GARPs / unsolicited NAs per burst (default 5).
    pub announce_count: u32,
    /// `announce_repeat_after` (default 5 s); `None` = "0s" = no second burst.
    pub announce_repeat_after: Option<Duration>,
    /// `announce_refresh` (default 60 s); `None` = "0s" = no periodic announcement.
    pub announce_refresh: Option<Duration>,
    /// `resign_wait` (default 3 s): make-before-break bound on shutdown.
    pub resign_wait: Duration,
    /// `track`: health checks that change the effective priority.
    pub track: Vec<TrackConfig>,
    /// `[instance.bfd]`: BFD sessions that let a Backup take over as soon as the Master is
    /// lost; `None` = off (plain VRRP timing).
    pub bfd: Option<BfdConfig>,
    /// Keys whose value is the `role`'s default rather than written in the file (`"priority"`,
    /// `"version"`, `"password"`, `"track"`, ...).
    pub role_keys: Vec<&'static str>,
}

impl InstanceConfig {
    /// True when adverts go to `peers` rather than the VRRP multicast group.
    pub fn is_unicast(&self) -> bool {
        !self.peers.is_empty()
    }

    /// The receive TTL check in the form the protocol core takes.
    pub fn ttl_policy(&self) -> TtlPolicy {
        match self.ttl {
            (255, 255) => TtlPolicy::Require255,
            (min, max) => TtlPolicy::Range { min, max },
        }
    }

    /// The protocol core's configuration, once the driver knows the address adverts are sent
    /// from (`unicast_source` or the interface's primary address; IPv6: link-local).
    pub fn router_config(&self, primary_address: IpAddr) -> RouterConfig {
        RouterConfig {
            version: self.version,
            vrid: self.vrid,
            priority: self.priority,
            advert_interval: self.advert_interval,
            primary_address,
            vips: self.vips.clone(),
            preempt: self.preempt,
            auth: self.auth,
            send_checksum: self.checksum,
            ttl_policy: self.ttl_policy(),
            resign_wait: self.resign_wait,
            announce_repeat_after: self.announce_repeat_after,
            announce_refresh: self.announce_refresh,
            sources: self.source_filter(),
        }
    }

    /// The senders the protocol core acts on.
    pub fn source_filter(&self) -> SourceFilter {
        if self.check_source {
            SourceFilter::Only(
                self.peers
                    .iter()
                    .chain(&self.accept_from)
                    .copied()
                    .collect(),
            )
        } else {
            SourceFilter::Any
        }
    }
}

/// One `[[sync_group]]`: instances that move together (keepalived's `vrrp_sync_group`): one
/// becomes Master, Backup (stepping down) or Fault, the others follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupConfig {
    pub name: String,
    pub instances: Vec<String>,
}

/// `[instance.bfd]` of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdConfig {
    /// `min_tx`, `min_rx`, `multiplier` (default 50 ms, 50 ms, 3).
    pub timers: BfdTimers,
    /// `[[instance.bfd.peer]]`: other timers for some unicast peers.
    pub peers: Vec<(IpAddr, BfdTimers)>,
}

pub use crate::bfd::Timers as BfdTimers;

impl BfdConfig {
    /// The timers of the session with `peer`: its own `[[instance.bfd.peer]]`, else the
    /// instance's.
    pub fn timers_for(&self, peer: IpAddr) -> BfdTimers {
        self.peers
            .iter()
            .find(|(p, _)| *p == peer)
            .map_or(self.timers, |(_, t)| *t)
    }
}

/// One `track` entry of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackConfig {
    /// Name of a `[[check]]`.
    pub check: String,
    /// keepalived semantics: added to the priority while the check is good (negative: subtracted
    /// while bad); 0 = a failing check puts the instance in FAULT. -253..=253;
    /// default: the check's own `weight`.
    pub weight: i32,
}

/// `[dns]`: the cluster DNS server.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsConfig {
    /// `<cluster_name>.<base_domain>`, lower case, without the trailing dot.
    pub cluster_domain: String,
    /// `listen` (default `0.0.0.0:53` and `[::]:53`), UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// `resolv_conf`: where the upstream name servers are read from (watched live), unless
    /// `upstreams` is written.
    pub resolv_conf: PathBuf,
    /// `upstreams`: a static list tried in this order; empty = the name servers of
    /// `resolv_conf`.
    pub upstreams: Vec<SocketAddr>,
    /// `force_tcp` (default false): every forwarded query goes upstream over TCP.
    pub force_tcp: bool,
    /// `records` (default `"cluster"`): `Nodes` serves the node records only and forwards
    /// `api`, `api-int` and `*.apps` (OpenShift's `dnsRecordsType: External`).
    pub records: vipd_dns::zone::Records,
    /// `ttl` of local answers, seconds (default 30).
    pub ttl: u32,
    /// `max_udp_size` (default 512): larger answers are truncated, clients retry over TCP.
    pub max_udp_size: u16,
    /// Addresses for `api.<cd>` (and `api-int.<cd>` unless `api_int_vips` differ), from
    /// `api_vips` or the `api_instances`; empty with `records = "nodes"`.
    pub api_vips: Vec<IpAddr>,
    /// Addresses for `api-int.<cd>`: `api_int_vips`, else the same as `api_vips`.
    pub api_int_vips: Vec<IpAddr>,
    /// Addresses for `*.apps.<cd>`, from `ingress_vips` or the `ingress_instances`.
    pub ingress_vips: Vec<IpAddr>,
    /// `allow`: client networks answered; empty = everyone.
    pub allow: Vec<ClientNet>,
    /// `[[dns.node]]`: node names and their addresses (A/AAAA and PTR).
    pub nodes: Vec<DnsNode>,
    /// `batch_scheduling` (default true): the UDP workers run under SCHED_BATCH.
    pub batch_scheduling: bool,
}

/// One `[[dns.node]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsNode {
    /// Short host name (one DNS label, lower case), served as `<name>` and `<name>.<cd>`.
    pub name: String,
    pub addresses: Vec<IpAddr>,
}

/// `[handoff]`: when the bootstrap resigns its API VIP (openshift.md section 3). The decision
/// itself is `daemon::handoff`.
#[derive(Debug, Clone, PartialEq)]
pub struct HandoffConfig {
    /// `instance`: the instances resigned (one name or a list); default: `api` and the role's
    /// second-family `api-v4` / `api-v6` where defined.
    pub instances: Vec<String>,
    /// `probe`: this node's own API health URL (loopback only); default
    /// `https://localhost:6443/readyz`.
    pub probe: crate::health::HttpTarget,
    /// `also_down`: URLs that must all fail too before the hand-off (default Ironic,
    /// `http://localhost:6385/v1`); empty = the API alone decides.
    pub also_down: Vec<crate::health::HttpTarget>,
    /// `interval` between probes (default 1 s); also each probe's timeout.
    pub interval: Duration,
    /// `failures`: consecutive API failures, after it was up once, that hand off (default 5).
    pub failures: u32,
    /// `recoveries`: consecutive API successes after a hand-off that rejoin (default 3).
    pub recoveries: u32,
    /// True when no `[handoff]` table was written and the role turned it on.
    pub from_role: bool,
}

/// `[http]`: `/health`, `/ready` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// `listen` (default `0.0.0.0:18080`, the port OpenShift's liveness probe uses).
    pub listen: SocketAddr,
}

/// `[control]`: the local control socket used by the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    /// `socket` (default `/run/vipd/vipd.sock`).
    pub socket: PathBuf,
    /// `group` (default none): members may use the socket like root (mode 0660, that group).
    pub group: Option<String>,
}

/// One problem found in a configuration file, located to the character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line and column (in characters) of the offending key or value.
    pub line: usize,
    pub column: usize,
    /// Which key: e.g. `instance "api": vips`, `dns: api_instances`.
    pub key: String,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.key,
            self.message
        )
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read the configuration file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// One or more problems; each renders as `file:line:column: key: message` on its own line.
    #[error("{}", DiagnosticList(.0))]
    Invalid(Vec<Diagnostic>),
}

impl ConfigError {
    /// The located problems (empty for a read error).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid(d) => d,
        }
    }
}

struct DiagnosticList<'a>(&'a [Diagnostic]);

impl fmt::Display for DiagnosticList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Validates `text`; `path` is only used in messages and recorded in [`Config::source`].
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        validate::parse(text, path.as_ref())
    }

    /// The cluster domain `<cluster_name>.<base_domain>`, when `base_domain` is set.
    pub fn cluster_domain(&self) -> Option<String> {
        self.base_domain
            .as_ref()
            .map(|b| format!("{}.{}", self.cluster_name, b))
    }

    /// The instance called `name`.
    pub fn instance(&self, name: &str) -> Option<&InstanceConfig> {
        self.instances.iter().find(|i| i.name == name)
    }
}
