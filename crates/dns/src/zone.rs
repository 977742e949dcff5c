//! The cluster zone: which names vipd answers itself, validated once and then served from an
//! immutable snapshot.
//!
//! Names owned (OpenShift's CoreDNS Corefile, see docs/dns.md):
//! - `api.<cd>`, `api-int.<cd>` -> API VIPs;
//! - `*.apps.<cd>` with one or more labels before `apps` -> ingress VIPs (`apps.<cd>` itself is not
//!   ours and is forwarded, as CoreDNS does);
//! - `<node>` and `<node>.<cd>` -> that node's addresses, with PTR records for each address.
//!
//! Everything else, including other names inside the cluster domain, is forwarded. With
//! [`Records::Nodes`] (OpenShift's `dnsRecordsType: External`) the zone holds the node names
//! and their PTR records only: `api`, `api-int` and `*.apps` are forwarded like any other name.
//!
//! Lookups take the question name in lowercase wire format (length-prefixed labels ending in the
//! root label) and never allocate: exact names sit in a hash map keyed by wire bytes, the `*.apps`
//! wildcard is a suffix comparison on a label boundary.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use arc_swap::ArcSwap;

/// TTL written into every local answer when the configuration does not say otherwise: what
/// `cache 30` in the CoreDNS Corefile caps clients to today.
pub const DEFAULT_TTL: u32 = 30;

pub use crate::protocol::MAX_NAME_WIRE_LEN;

/// One cluster node as the zone sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Short host name, a single DNS label (`master-0`); served as `<name>` and `<name>.<cd>`.
    pub name: String,
    /// Internal addresses, both families allowed.
    pub addresses: Vec<IpAddr>,
}

/// What the operator configures; turned into a [`ClusterZone`] by [`ClusterZone::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneConfig {
    /// First label of the cluster domain (`ostest`).
    pub cluster_name: String,
    /// Base domain (`test.metalkube.org`); the cluster domain is `<cluster_name>.<base_domain>`.
    pub base_domain: String,
    pub api_vips: Vec<IpAddr>,
    pub ingress_vips: Vec<IpAddr>,
    pub nodes: Vec<Node>,
    /// TTL of every local record, also the negative TTL of the SOA (RFC 2308 section 5). 0 is
    /// legal (RFC 1035 section 3.2.1: use for this transaction only) and disables caching.
    pub ttl: u32,
}

impl Default for ZoneConfig {
    fn default() -> Self {
        ZoneConfig {
            cluster_name: String::new(),
            base_domain: String::new(),
            api_vips: Vec::new(),
            ingress_vips: Vec::new(),
            nodes: Vec::new(),
            ttl: DEFAULT_TTL,
        }
    }
}

/// Which names the zone holds (`[dns] records`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Records {
    /// `api`, `api-int`, `*.apps` and the nodes: OpenShift's default (`dnsRecordsType:
    /// Internal`).
    #[default]
    Cluster,
    /// The nodes and their PTR records only (`dnsRecordsType: External`, where the site's DNS
    /// holds `api`, `api-int` and `*.apps`): every other name, those three included, is
    /// forwarded, never answered NXDOMAIN or NODATA here.
    Nodes,
}

/// Zone settings beyond [`ZoneConfig`], for [`ClusterZone::with_options`]; the default is what
/// [`ClusterZone::new`] serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneOptions {
    pub records: Records,
    /// The addresses of `api-int.<cd>` when they differ from those of `api.<cd>` (OpenShift's
    /// cloud template answers `api-int` from the internal load balancer); `None`: the API VIPs.
    pub api_int_vips: Option<Vec<IpAddr>>,
}

/// A zone configuration that cannot be served. Each variant names the field at fault and what
/// would have been accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZoneError {
    #[error("zone field `{field}` = {value:?} is not a valid DNS label: {reason} (accepted: 1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-')")]
    InvalidLabel {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("zone field `base_domain` = {value:?} is not a valid domain: {reason} (accepted: lowercase dot-separated labels of a-z, 0-9 and '-', without a trailing dot)")]
    InvalidDomain { value: String, reason: &'static str },
    #[error("cluster domain {domain:?} is {len} bytes in wire format, too long to hold `api-int` and node names under it (at most {max} bytes accepted)")]
    DomainTooLong {
        domain: String,
        len: usize,
        max: usize,
    },
    #[error("zone field `nodes` lists {name:?} twice; node names must be unique")]
    DuplicateNode { name: String },
    #[error("zone field `nodes` has a node named {name:?}, which collides with the record vipd serves as `{name}.<cluster domain>`; rename the node or drop it from the zone")]
    ReservedNodeName { name: String },
}

/// The records held at one owned name. Empty lists are valid: the name is still ours and answers
/// NOERROR with no data (never NXDOMAIN, see reference/dns.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSet {
    pub a: Vec<Ipv4Addr>,
    pub aaaa: Vec<Ipv6Addr>,
    /// PTR targets in wire format (lowercase, ending in the root label).
    pub ptr: Vec<Box<[u8]>>,
    /// True when the name is at or under the cluster domain, so negative answers can carry the
    /// cluster domain's SOA. Node short names and reverse names are not: vipd is not the
    /// authority for the root or for `in-addr.arpa`.
    pub in_cluster_domain: bool,
}

impl RecordSet {
    fn addresses(addrs: &[IpAddr], in_cluster_domain: bool) -> Self {
        let mut set = RecordSet {
            in_cluster_domain,
            ..RecordSet::default()
        };
        for addr in addrs {
            match addr {
                IpAddr::V4(v4) if !set.a.contains(v4) => set.a.push(*v4),
                IpAddr::V6(v6) if !set.aaaa.contains(v6) => set.aaaa.push(*v6),
                _ => {}
            }
        }
        set
    }
}

/// The hash of the zone's name map: one 64x64->128-bit multiply folded to 64 bits per 8 bytes
/// of name, a few instructions per query where std's SipHash took about 290 (callgrind). No
/// key is needed: clients choose the names looked up but never what the map holds, so a
/// colliding name costs one lookup a few more comparisons among the zone's own names (the
/// forwarder's cache, which clients do fill, keeps a keyed hash).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NameHasher(u64);

/// An odd constant with bits spread over both halves (the fractional digits of pi).
const NAME_HASH_MULTIPLIER: u64 = 0x243f_6a88_85a3_08d3;

impl NameHasher {
    fn mix(&mut self, word: u64) {
        let product = u128::from(self.0 ^ word) * u128::from(NAME_HASH_MULTIPLIER);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.mix(u64::from_le_bytes(word.try_into().unwrap_or([0; 8])));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(word));
        }
    }

    /// The length prefix std writes before a slice's bytes.
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type NameMap<V> = HashMap<Box<[u8]>, V, BuildHasherDefault<NameHasher>>;

/// Where an owned name was found, for the answer writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<'z> {
    pub records: &'z RecordSet,
    /// Number of labels (root excluded) of the cluster domain suffix when the name is under it;
    /// lets the writer point its SOA at the cluster domain inside the echoed question.
    pub cluster_domain_labels: Option<usize>,
}

/// A validated, immutable cluster zone. Build with [`ClusterZone::new`], share via [`ZoneHandle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterZone {
    /// `<cluster>.<base>` in lowercase wire format.
    domain_wire: Box<[u8]>,
    domain_labels: usize,
    /// `apps.<cd>` in lowercase wire format, the wildcard's suffix.
    apps_suffix: Box<[u8]>,
    records: Records,
    /// False with [`Records::Nodes`]: `*.apps.<cd>` is forwarded.
    apps_wildcard: bool,
    exact: NameMap<RecordSet>,
    ingress: RecordSet,
    ttl: u32,
    domain_text: String,
}

impl ClusterZone {
    /// Validates `config` and precomputes every owned name ([`Records::Cluster`], `api-int`
    /// answering the API VIPs).
    pub fn new(config: &ZoneConfig) -> Result<Self, ZoneError> {
        Self::with_options(config, &ZoneOptions::default())
    }

    /// [`ClusterZone::new`] holding the names `options` select.
    pub fn with_options(config: &ZoneConfig, options: &ZoneOptions) -> Result<Self, ZoneError> {
        check_label("cluster_name", &config.cluster_name)?;
        check_domain(&config.base_domain)?;
        let domain_text = format!("{}.{}", config.cluster_name, config.base_domain);
        let domain_wire = text_to_wire(&domain_text);
        // The longest name we build is `api-int.<cd>` or `<63-byte node>.<cd>`.
        let max = MAX_NAME_WIRE_LEN - 64;
        if domain_wire.len() > max {
            return Err(ZoneError::DomainTooLong {
                domain: domain_text,
                len: domain_wire.len(),
                max,
            });
        }
        let domain_labels = config.base_domain.split('.').count() + 1;
        let under = |label: &str| {
            let mut name = Vec::with_capacity(label.len() + 1 + domain_wire.len());
            name.push(label.len() as u8);
            name.extend_from_slice(label.as_bytes());
            name.extend_from_slice(&domain_wire);
            name.into_boxed_slice()
        };

        let mut exact: NameMap<RecordSet> = NameMap::default();
        let vips = options.records == Records::Cluster;
        if vips {
            let api_int = options.api_int_vips.as_ref().unwrap_or(&config.api_vips);
            exact.insert(under("api"), RecordSet::addresses(&config.api_vips, true));
            exact.insert(under("api-int"), RecordSet::addresses(api_int, true));
        }

        let mut reverse: NameMap<RecordSet> = NameMap::default();
        for (index, node) in config.nodes.iter().enumerate() {
            check_label("nodes[].name", &node.name).map_err(|err| match err {
                ZoneError::InvalidLabel { value, reason, .. } => ZoneError::InvalidLabel {
                    field: "nodes[].name",
                    value: format!("{value} (node #{index})"),
                    reason,
                },
                other => other,
            })?;
            // Kept with `Records::Nodes` too: such a node would shadow a name the site serves.
            if matches!(node.name.as_str(), "api" | "api-int" | "apps") {
                return Err(ZoneError::ReservedNodeName {
                    name: node.name.clone(),
                });
            }
            let fqdn = under(&node.name);
            if exact.contains_key(&fqdn) {
                return Err(ZoneError::DuplicateNode {
                    name: node.name.clone(),
                });
            }
            exact.insert(fqdn.clone(), RecordSet::addresses(&node.addresses, true));
            let mut short = Vec::with_capacity(node.name.len() + 2);
            short.push(node.name.len() as u8);
            short.extend_from_slice(node.name.as_bytes());
            short.push(0);
            exact.insert(
                short.into_boxed_slice(),
                RecordSet::addresses(&node.addresses, false),
            );
            for addr in &node.addresses {
                let set = reverse.entry(reverse_name(*addr)).or_default();
                if !set.ptr.contains(&fqdn) {
                    set.ptr.push(fqdn.clone());
                }
            }
        }
        exact.extend(reverse);

        let mut apps_suffix = Vec::with_capacity(5 + domain_wire.len());
        apps_suffix.push(4);
        apps_suffix.extend_from_slice(b"apps");
        apps_suffix.extend_from_slice(&domain_wire);

        Ok(ClusterZone {
            domain_wire: domain_wire.into_boxed_slice(),
            domain_labels,
            apps_suffix: apps_suffix.into_boxed_slice(),
            records: options.records,
            apps_wildcard: vips,
            exact,
            ingress: RecordSet::addresses(if vips { &config.ingress_vips } else { &[] }, true),
            ttl: config.ttl,
            domain_text,
        })
    }

    /// Which names the zone holds.
    pub fn records(&self) -> Records {
        self.records
    }

    /// TTL of local records and negative TTL of the SOA.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// The cluster domain, `<cluster>.<base>`, without a trailing dot.
    pub fn domain(&self) -> &str {
        &self.domain_text
    }

    /// The cluster domain in lowercase wire format.
    pub fn domain_wire(&self) -> &[u8] {
        &self.domain_wire
    }

    /// Looks up a lowercase wire-format name. `label_starts[i]` is the offset of label `i` in
    /// `name` (root excluded), so the wildcard test compares suffixes only on label boundaries.
    /// Returns `None` for names that are not ours (to be forwarded).
    pub fn lookup<'z>(&'z self, name: &[u8], label_starts: &[u8]) -> Option<Found<'z>> {
        let labels = label_starts.len();
        let under_domain = labels >= self.domain_labels
            && name[usize::from(label_starts[labels - self.domain_labels])..] == *self.domain_wire;
        let cluster_domain_labels = under_domain.then_some(self.domain_labels);
        if let Some(records) = self.exact.get(name) {
            return Some(Found {
                records,
                cluster_domain_labels: if records.in_cluster_domain {
                    cluster_domain_labels
                } else {
                    None
                },
            });
        }
        // `*.apps.<cd>`: at least one label before `apps` (labels >= domain + 2).
        let apps_labels = self.domain_labels + 1;
        if self.apps_wildcard
            && labels > apps_labels
            && name[usize::from(label_starts[labels - apps_labels])..] == *self.apps_suffix
        {
            return Some(Found {
                records: &self.ingress,
                cluster_domain_labels,
            });
        }
        None
    }

    /// Text-name convenience over [`ClusterZone::lookup`], for tests and diagnostics (allocates).
    pub fn lookup_text(&self, name: &str) -> Option<&RecordSet> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let wire = text_to_wire(&name);
        let mut starts = Vec::new();
        let mut at = 0;
        while at < wire.len() && wire[at] != 0 {
            starts.push(u8::try_from(at).ok()?);
            at += usize::from(wire[at]) + 1;
        }
        self.lookup(&wire, &starts).map(|found| found.records)
    }
}

/// `a.b.c` -> `\x01a\x01b\x01c\x00`. Callers pass validated text.
fn text_to_wire(text: &str) -> Vec<u8> {
    let mut wire = Vec::with_capacity(text.len() + 2);
    for label in text.split('.').filter(|label| !label.is_empty()) {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.push(0);
    wire
}

/// The PTR owner name of an address in wire format: `4.3.2.1.in-addr.arpa` (RFC 1035 section 3.5)
/// or the nibble form under `ip6.arpa` (RFC 3596 section 2.5).
pub fn reverse_name(addr: IpAddr) -> Box<[u8]> {
    let mut text = String::with_capacity(72);
    match addr {
        IpAddr::V4(v4) => {
            for octet in v4.octets().iter().rev() {
                text.push_str(&format!("{octet}."));
            }
            text.push_str("in-addr.arpa");
        }
        IpAddr::V6(v6) => {
            for octet in v6.octets().iter().rev() {
                text.push_str(&format!("{:x}.{:x}.", octet & 0xf, octet >> 4));
            }
            text.push_str("ip6.arpa");
        }
    }
    text_to_wire(&text).into_boxed_slice()
}

/// Why `label` is not a DNS label as the cluster zone accepts it (RFC 1123 section 2.1 host
/// names, lower case), or `None`. The one home of this rule: the zone and the configuration
/// validator (cluster name, node names, domains) both call it.
pub fn label_problem(label: &str) -> Option<&'static str> {
    if label.is_empty() {
        Some("it is empty")
    } else if label.len() > 63 {
        Some("it is longer than 63 characters")
    } else if label.starts_with('-') || label.ends_with('-') {
        Some("it starts or ends with '-'")
    } else if label.bytes().any(|b| b.is_ascii_uppercase()) {
        Some("it contains uppercase letters")
    } else if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("it contains a character other than a-z, 0-9 and '-'")
    } else {
        None
    }
}

/// Why `name` (dot-separated, no trailing dot) is not a domain name of such labels, or `None`.
pub fn domain_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.len() > 253 {
        return Some("it is longer than 253 characters");
    }
    if name.ends_with('.') {
        return Some("it ends with a dot");
    }
    name.split('.').find_map(label_problem)
}

fn check_label(field: &'static str, value: &str) -> Result<(), ZoneError> {
    match label_problem(value) {
        Some(reason) => Err(ZoneError::InvalidLabel {
            field,
            value: value.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

fn check_domain(value: &str) -> Result<(), ZoneError> {
    match domain_problem(value) {
        Some(reason) => Err(ZoneError::InvalidDomain {
            value: value.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The zone currently served. Readers get a lock-free snapshot; [`ZoneHandle::replace`] swaps in
/// a new one atomically, so every query sees either the old or the new zone, never a mix, and
/// none waits.
#[derive(Debug, Clone)]
pub struct ZoneHandle {
    current: Arc<ArcSwap<ClusterZone>>,
}

impl ZoneHandle {
    pub fn new(zone: ClusterZone) -> Self {
        ZoneHandle {
            current: Arc::new(ArcSwap::from_pointee(zone)),
        }
    }

    /// The snapshot to answer one query (or one batch) from. Cheap and allocation free; hold it
    /// only briefly, a held guard keeps the old zone alive after a replace.
    pub fn load(&self) -> arc_swap::Guard<Arc<ClusterZone>> {
        self.current.load()
    }

    /// Atomically replaces the served zone.
    pub fn replace(&self, zone: ClusterZone) {
        self.current.store(Arc::new(zone));
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn name_hash_spreads_similar_names_over_the_low_bits() {
        // hashbrown picks the bucket from the low bits: 10,000 node names differing in a digit
        // or two must not pile up there (what an unfolded multiplicative hash does).
        let build = BuildHasherDefault::<NameHasher>::default();
        let mut buckets = vec![0u32; 1 << 14];
        let mut hashes = std::collections::HashSet::new();
        for i in 0..10_000 {
            let name = text_to_wire(&format!("node-{i}.ostest.test.metalkube.org"));
            let hash = build.hash_one(name.into_boxed_slice());
            assert!(hashes.insert(hash), "two names share the hash {hash:#x}");
            buckets[(hash & 0x3fff) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| n <= 8),
            "{:?}",
            buckets.iter().max()
        );
    }
}
