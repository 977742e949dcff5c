//! From the Kubernetes node list to what vipd runs with: the unicast peers of an instance and
//! the DNS node records, by the rules OpenShift's keepalived-monitor and CoreDNS monitor apply
//! today (runtimecfg `GetLBConfig` / `GetIngressConfig` / `PopulateNodeAddresses`), plus a settle
//! timer in place of their "seen on three polls". Pure: the watch task feeds nodes and `now`.
//!
//! - API peers: the control-plane nodes (label `node-role.kubernetes.io/master` or
//!   `node-role.kubernetes.io/control-plane`), each by its `InternalIP` of the VIP's family.
//! - Ingress peers: every node, the same way.
//! - A node with no `InternalIP` of the family is left out (and reported).
//! - The set is this node's peers only while this node is in it ("an instance is rendered only
//!   when this node is in the list"), and only with two or more members ("the number of
//!   backends must be at least 2"); otherwise it is refused and the last good set stays. A
//!   bootstrap node is not in the masters' list: for it both rules are off, as today.
//! - DNS records: every node with a name and at least one `InternalIP`, as `<short name>` (the
//!   first label of its `Hostname` address, else of its name) with all its `InternalIP`s.
//!
//! Where runtimecfg is arbitrary this is deterministic: peers are sorted numerically (runtimecfg
//! sorts API peers as strings, "10.0.0.10" before "10.0.0.9"), and a node with two `InternalIP`s of
//! the family contributes the one inside this node's own subnet, else the first.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use vipd_dns::server::network_of;

/// Labels that make a node a control-plane node.
pub const CONTROL_PLANE_LABELS: [&str; 2] = [
    "node-role.kubernetes.io/master",
    "node-role.kubernetes.io/control-plane",
];

/// What vipd uses of one Node object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// `metadata.name`.
    pub name: String,
    pub control_plane: bool,
    /// `status.addresses` of type `InternalIP`, in order.
    pub internal_ips: Vec<IpAddr>,
    /// The first label of the `Hostname` address (else of the name), lower case.
    pub short_name: String,
}

/// Builds [`NodeFacts`] from the parts of a Node object; `addresses` are `(type, address)`.
/// Unparsable addresses are skipped and returned, so the caller can report them.
pub fn node_facts<'a>(
    name: &str,
    labels: impl IntoIterator<Item = &'a str>,
    addresses: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (NodeFacts, Vec<String>) {
    let control_plane = labels
        .into_iter()
        .any(|l| CONTROL_PLANE_LABELS.contains(&l));
    let mut internal_ips = Vec::new();
    let mut hostname = None;
    let mut bad = Vec::new();
    for (kind, address) in addresses {
        match kind {
            "InternalIP" => match address.trim().parse::<IpAddr>() {
                Ok(ip) => internal_ips.push(ip),
                Err(_) => bad.push(address.to_string()),
            },
            "Hostname" if hostname.is_none() => hostname = Some(address),
            _ => {}
        }
    }
    let short_name = hostname
        .unwrap_or(name)
        .split('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    (
        NodeFacts {
            name: name.to_string(),
            control_plane,
            internal_ips,
            short_name,
        },
        bad,
    )
}

/// Which nodes an instance peers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRule {
    /// Control-plane nodes (the API VIP).
    ControlPlane,
    /// Every node (the ingress VIP).
    AllNodes,
}

/// How one instance sits in the cluster: its rule, its own address and the prefix of its subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub rule: PeerRule,
    /// This node's address on the instance's interface (the source of its adverts).
    pub own: IpAddr,
    /// Prefix length of `own`'s subnet (prefers a node's address inside it).
    pub prefix: u8,
    /// The bootstrap: not in the list itself, and one other node is enough.
    pub bootstrap: bool,
}

/// Why a node list gives an instance no usable peer set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerSetProblem {
    #[error("this node ({own}) is not in the list ({members}): the instance does not run here")]
    NotInList { own: IpAddr, members: String },
    #[error("only {found} node(s) with an address of the VIP's family ({members}); at least two are needed, the last good set stays")]
    TooFew { found: usize, members: String },
}

/// The peers of `m` (every member but this node), sorted, or why there are none.
pub fn peer_set(nodes: &[NodeFacts], m: Member) -> Result<Vec<IpAddr>, PeerSetProblem> {
    let own_net = network_of(m.own, m.prefix);
    let mut members: Vec<IpAddr> = nodes
        .iter()
        .filter(|n| m.rule == PeerRule::AllNodes || n.control_plane)
        .filter_map(|n| {
            let family: Vec<IpAddr> = n
                .internal_ips
                .iter()
                .copied()
                .filter(|ip| ip.is_ipv4() == m.own.is_ipv4())
                .collect();
            family
                .iter()
                .copied()
                .find(|ip| network_of(*ip, m.prefix) == own_net)
                .or_else(|| family.first().copied())
        })
        .collect();
    members.sort();
    members.dedup();
    let list = || {
        members
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let has_self = members.contains(&m.own);
    if !m.bootstrap && !has_self {
        return Err(PeerSetProblem::NotInList {
            own: m.own,
            members: list(),
        });
    }
    let needed = if m.bootstrap { 1 } else { 2 };
    if members.len() < needed {
        return Err(PeerSetProblem::TooFew {
            found: members.len(),
            members: list(),
        });
    }
    members.retain(|ip| *ip != m.own);
    Ok(members)
}

/// The DNS node records: short name -> every `InternalIP`, names sorted; nodes without an
/// address are left out. Two nodes with the same short name share the entry.
pub fn dns_nodes(nodes: &[NodeFacts]) -> Vec<(String, Vec<IpAddr>)> {
    let mut out: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    for n in nodes.iter().filter(|n| !n.short_name.is_empty()) {
        if n.internal_ips.is_empty() {
            continue;
        }
        let entry = out.entry(n.short_name.clone()).or_default();
        for ip in &n.internal_ips {
            if !entry.contains(ip) {
                entry.push(*ip);
            }
        }
    }
    out.into_iter().collect()
}

/// A value that must stay the same for `settle` before it is applied (OpenShift's monitors
/// want it seen on three polls 10 s apart; a watch sees every change at once, so a flapping
/// node list would otherwise move peers around at once).
#[derive(Debug, Clone)]
pub struct Settler<T> {
    settle: Duration,
    applied: Option<T>,
    candidate: Option<(T, Instant)>,
}

impl<T: Clone + PartialEq> Settler<T> {
    pub fn new(settle: Duration) -> Self {
        Settler {
            settle,
            applied: None,
            candidate: None,
        }
    }

    /// The value in force (`None` before the first one settled).
    pub fn applied(&self) -> Option<&T> {
        self.applied.as_ref()
    }

    /// The value waiting to settle, and since when.
    pub fn pending(&self) -> Option<&(T, Instant)> {
        self.candidate.as_ref()
    }

    /// A freshly derived value at `now`. Returns it when it is to be applied at once: the
    /// first value ever (before it, only the static configuration applied), or with a settle
    /// time of zero.
    pub fn offer(&mut self, now: Instant, value: T) -> Option<T> {
        if self.applied.as_ref() == Some(&value) {
            self.candidate = None;
            return None;
        }
        if self.applied.is_none() || self.settle.is_zero() {
            self.candidate = None;
            self.applied = Some(value.clone());
            return Some(value);
        }
        match &self.candidate {
            Some((c, _)) if *c == value => {}
            _ => self.candidate = Some((value, now)),
        }
        self.handle_timeout(now)
    }

    /// When the pending value settles.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.candidate
            .as_ref()
            .and_then(|(_, since)| since.checked_add(self.settle))
    }

    /// Applies the pending value if it has been stable for the settle time.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<T> {
        let due = self.poll_timeout().is_some_and(|t| t <= now);
        if !due {
            return None;
        }
        let (value, _) = self.candidate.take()?;
        self.applied = Some(value.clone());
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn node(name: &str, cp: bool, ips: &[&str]) -> NodeFacts {
        let labels: Vec<&str> = if cp {
            vec![
                "node-role.kubernetes.io/master",
                "node-role.kubernetes.io/worker",
            ]
        } else {
            vec!["node-role.kubernetes.io/worker"]
        };
        let addrs: Vec<(&str, &str)> = ips
            .iter()
            .map(|a| ("InternalIP", *a))
            .chain(std::iter::once(("Hostname", name)))
            .collect();
        node_facts(name, labels, addrs).0
    }

    fn member(rule: PeerRule, own: &str) -> Member {
        Member {
            rule,
            own: ip(own),
            prefix: 24,
            bootstrap: false,
        }
    }

    fn cluster() -> Vec<NodeFacts> {
        vec![
            node(
                "master-0.ostest.example",
                true,
                &["192.0.2.10", "2001:db8::10"],
            ),
            node("master-1.ostest.example", true, &["192.0.2.9"]),
            node("master-2.ostest.example", true, &["192.0.2.11"]),
            node("worker-0.ostest.example", false, &["192.0.2.20"]),
        ]
    }

    #[test]
    fn facts_take_internal_ips_in_order_and_the_short_hostname() {
        let (f, bad) = node_facts(
            "ocp-control1.domain.local",
            ["node-role.kubernetes.io/control-plane"],
            [
                ("InternalIP", "172.10.57.6"),
                ("ExternalIP", "198.51.100.7"),
                ("InternalIP", "2001:db8::6"),
                ("InternalIP", "not-an-ip"),
                ("Hostname", "OCP-Control1.domain.local"),
            ],
        );
        assert!(f.control_plane);
        assert_eq!(f.internal_ips, [ip("172.10.57.6"), ip("2001:db8::6")]);
        assert_eq!(f.short_name, "ocp-control1");
        assert_eq!(bad, ["not-an-ip"]);
    }

    #[test]
    fn api_peers_are_the_other_control_plane_nodes_sorted_numerically() {
        let peers = peer_set(&cluster(), member(PeerRule::ControlPlane, "192.0.2.10")).unwrap();
        // 192.0.2.9 before 192.0.2.11: numeric, not runtimecfg's string order.
        assert_eq!(peers, [ip("192.0.2.9"), ip("192.0.2.11")]);
    }

    #[test]
    fn ingress_peers_are_every_other_node() {
        let peers = peer_set(&cluster(), member(PeerRule::AllNodes, "192.0.2.20")).unwrap();
        assert_eq!(peers, [ip("192.0.2.9"), ip("192.0.2.10"), ip("192.0.2.11")]);
    }

    #[test]
    fn ipv6_instances_take_the_ipv6_internal_ips() {
        let mut m = member(PeerRule::ControlPlane, "2001:db8::10");
        m.prefix = 64;
        let mut nodes = cluster();
        nodes[1].internal_ips.push(ip("2001:db8::9"));
        assert_eq!(peer_set(&nodes, m).unwrap(), [ip("2001:db8::9")]);
    }

    #[test]
    fn a_node_with_two_addresses_of_the_family_contributes_the_one_in_our_subnet() {
        let mut nodes = cluster();
        nodes[1].internal_ips = vec![ip("198.51.100.9"), ip("192.0.2.9")];
        let peers = peer_set(&nodes, member(PeerRule::ControlPlane, "192.0.2.10")).unwrap();
        assert_eq!(peers, [ip("192.0.2.9"), ip("192.0.2.11")]);
    }

    #[test]
    fn this_node_missing_from_the_list_means_the_instance_does_not_run() {
        let e = peer_set(&cluster(), member(PeerRule::ControlPlane, "192.0.2.20")).unwrap_err();
        assert!(matches!(e, PeerSetProblem::NotInList { .. }), "{e}");
    }

    #[test]
    fn fewer_than_two_members_is_refused() {
        let nodes = vec![node("master-0", true, &["192.0.2.10"])];
        let e = peer_set(&nodes, member(PeerRule::ControlPlane, "192.0.2.10")).unwrap_err();
        assert_eq!(
            e,
            PeerSetProblem::TooFew {
                found: 1,
                members: "192.0.2.10".into()
            }
        );
        assert_eq!(
            peer_set(&[], member(PeerRule::AllNodes, "192.0.2.10")).unwrap_err(),
            PeerSetProblem::NotInList {
                own: ip("192.0.2.10"),
                members: String::new()
            }
        );
    }

    #[test]
    fn the_bootstrap_peers_with_every_master_without_being_listed() {
        let mut m = member(PeerRule::ControlPlane, "192.0.2.5");
        m.bootstrap = true;
        let peers = peer_set(&cluster(), m).unwrap();
        assert_eq!(peers, [ip("192.0.2.9"), ip("192.0.2.10"), ip("192.0.2.11")]);
        assert!(peer_set(&cluster()[..1], m).is_ok());
    }

    #[test]
    fn dns_records_merge_both_families_and_skip_nodes_without_addresses() {
        let mut nodes = cluster();
        nodes.push(node("new-0", false, &[]));
        let records = dns_nodes(&nodes);
        assert_eq!(
            records[0],
            (
                "master-0".into(),
                vec![ip("192.0.2.10"), ip("2001:db8::10")]
            )
        );
        assert_eq!(records.len(), 4);
        assert!(!records.iter().any(|(n, _)| n == "new-0"));
    }

    #[test]
    fn the_first_value_applies_at_once_later_ones_after_the_settle_time() {
        let t0 = Instant::now();
        let s10 = Duration::from_secs(10);
        let mut s = Settler::new(s10);
        assert_eq!(s.offer(t0, 1), Some(1));
        assert_eq!(s.offer(t0, 1), None);
        assert_eq!(s.offer(t0 + Duration::from_secs(1), 2), None);
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(11)));
        assert_eq!(s.handle_timeout(t0 + Duration::from_secs(10)), None);
        assert_eq!(s.handle_timeout(t0 + Duration::from_secs(11)), Some(2));
        assert_eq!(s.applied(), Some(&2));
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn a_value_that_changes_again_restarts_the_settle_time_and_one_that_returns_cancels() {
        let t0 = Instant::now();
        let mut s = Settler::new(Duration::from_secs(10));
        s.offer(t0, 1);
        s.offer(t0 + Duration::from_secs(1), 2);
        s.offer(t0 + Duration::from_secs(5), 3);
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(15)));
        // Back to the applied value: nothing pending.
        assert_eq!(s.offer(t0 + Duration::from_secs(6), 1), None);
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(s.handle_timeout(t0 + Duration::from_secs(60)), None);
        assert_eq!(s.applied(), Some(&1));
    }
}
