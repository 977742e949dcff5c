//! This node's IP in the cluster network, the way OpenShift's `runtimecfg node-ip` chooses it:
//! what the resolv-prepender puts first in resolv.conf (`vipd node-ip` replaces its
//! `podman run ... runtimecfg node-ip show`), and the hint interface detection prefers.
//!
//! - The hint files that `nodeip-configuration.service` (`runtimecfg node-ip set`) writes,
//!   `/run/nodeip-configuration/{primary-ip,ipv4,ipv6}` (one address, no trailing newline).
//! - Without them: the first usable address whose subnet holds one of the VIPs (`NODEIP_HINT`,
//!   an address inside the wanted subnet, is tried first, as `node-ip set` prepends it to the
//!   VIPs); IPv6 /128 addresses count as /64. Usable: not link-local, not deprecated, not
//!   tentative, not a VIP.
//! - Without a match (or with `--user-managed-lb`, whose VIPs are not on this network): the
//!   first usable address of the interface that carries the default route.
//!
//! The preferred family (IPv4 unless `prefer_ipv6`) decides between matches of both families.

use std::net::IpAddr;
use std::path::Path;

use vipd_dns::server::network_of;

use super::iface::LocalAddress;

/// Where `nodeip-configuration.service` writes its choice.
pub const HINT_DIR: &str = "/run/nodeip-configuration";

/// The addresses `runtimecfg node-ip set` recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    pub primary: Option<IpAddr>,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
}

impl Hints {
    /// Reads `dir/primary-ip`, `dir/ipv4`, `dir/ipv6`; a missing or unparsable file is `None`
    /// (the files have no trailing newline, but one is tolerated).
    pub fn read(dir: &Path) -> Hints {
        let read = |name: &str| -> Option<IpAddr> {
            std::fs::read_to_string(dir.join(name))
                .ok()
                .and_then(|t| t.trim().parse().ok())
        };
        Hints {
            primary: read("primary-ip"),
            ipv4: read("ipv4").filter(IpAddr::is_ipv4),
            ipv6: read("ipv6").filter(IpAddr::is_ipv6),
        }
    }

    /// The hint for an address of `vip`'s family.
    pub fn for_family_of(&self, vip: IpAddr) -> Option<IpAddr> {
        if vip.is_ipv4() {
            self.ipv4
        } else {
            self.ipv6
        }
    }
}

/// Why no node IP could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeIpError {
    #[error("no usable address is in the subnet of {vips} and no interface has a default route with a usable address")]
    NotFound { vips: String },
}

/// An address a node IP may be: not link-local, deprecated, tentative or a VIP.
fn usable(a: &LocalAddress, vips: &[IpAddr]) -> bool {
    !a.link_local && !a.deprecated && !a.tentative && !vips.contains(&a.address)
}

/// `a`'s subnet holds `target` (IPv6 /128 widened to /64, as runtimecfg does).
fn holds(a: &LocalAddress, target: IpAddr) -> bool {
    if a.address.is_ipv4() != target.is_ipv4() {
        return false;
    }
    let prefix = if a.address.is_ipv6() && a.prefix_len >= 128 {
        64
    } else {
        a.prefix_len
    };
    network_of(a.address, prefix) == network_of(target, prefix)
}

/// Chooses the node IP from this host's addresses; `targets` are the hint (if any) then the
/// VIPs; `default_route_ifindex` the interface of the default route of each family.
pub fn choose(
    addrs: &[LocalAddress],
    targets: &[IpAddr],
    vips: &[IpAddr],
    prefer_ipv6: bool,
    default_route_ifindex: (Option<u32>, Option<u32>),
) -> Result<IpAddr, NodeIpError> {
    let families = if prefer_ipv6 {
        [true, false]
    } else {
        [false, true]
    };
    for want_v6 in families {
        let matched = targets
            .iter()
            .filter(|t| t.is_ipv6() == want_v6)
            .find_map(|t| addrs.iter().find(|a| usable(a, vips) && holds(a, *t)));
        if let Some(a) = matched {
            return Ok(a.address);
        }
    }
    for want_v6 in families {
        let ifindex = if want_v6 {
            default_route_ifindex.1
        } else {
            default_route_ifindex.0
        };
        let Some(ifindex) = ifindex else { continue };
        if let Some(a) = addrs
            .iter()
            .find(|a| a.ifindex == ifindex && a.address.is_ipv6() == want_v6 && usable(a, vips))
        {
            return Ok(a.address);
        }
    }
    Err(NodeIpError::NotFound {
        vips: targets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The interface of the IPv4 and of the IPv6 default route (main table), if any.
pub async fn default_route_interfaces() -> Result<(Option<u32>, Option<u32>), super::NetError> {
    use futures_util::TryStreamExt;
    use rtnetlink::packet_route::route::{RouteAttribute, RouteMessage};
    use rtnetlink::packet_route::AddressFamily;
    let handle = super::iface::connect()?;
    let mut out = (None, None);
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family;
        let routes: Vec<RouteMessage> = handle
            .route()
            .get(msg)
            .execute()
            .try_collect()
            .await
            .map_err(|e| super::NetError::netlink("listing routes (RTM_GETROUTE dump)", e))?;
        let oif = routes
            .iter()
            .filter(|r| r.header.destination_prefix_length == 0)
            .find_map(|r| {
                r.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Oif(i) => Some(*i),
                    _ => None,
                })
            });
        if family == AddressFamily::Inet {
            out.0 = oif;
        } else {
            out.1 = oif;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ifindex: u32, a: &str, prefix: u8) -> LocalAddress {
        let address: IpAddr = a.parse().unwrap();
        LocalAddress {
            ifindex,
            ifname: format!("eth{ifindex}"),
            address,
            prefix_len: prefix,
            deprecated: false,
            tentative: false,
            link_local: a.starts_with("fe80") || a.starts_with("169.254"),
            secondary: false,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn host() -> Vec<LocalAddress> {
        vec![
            addr(1, "127.0.0.1", 8),
            addr(2, "198.51.100.7", 24),
            addr(3, "192.0.2.10", 24),
            addr(3, "192.0.2.5", 32),
            addr(3, "fe80::10", 64),
            addr(3, "2001:db8::10", 128),
        ]
    }

    #[test]
    fn the_address_in_the_vips_subnet_wins_over_the_default_route() {
        let vips = [ip("192.0.2.5"), ip("192.0.2.6")];
        let got = choose(&host(), &vips, &vips, false, (Some(2), None)).unwrap();
        assert_eq!(got, ip("192.0.2.10"));
    }

    #[test]
    fn a_held_vip_is_never_the_node_ip_and_ipv6_128_counts_as_64() {
        let vips = [ip("2001:db8::5")];
        let got = choose(&host(), &vips, &vips, true, (None, None)).unwrap();
        assert_eq!(got, ip("2001:db8::10"));
    }

    #[test]
    fn the_hint_goes_first() {
        let vips = [ip("192.0.2.5")];
        let targets = [ip("198.51.100.1"), ip("192.0.2.5")];
        let got = choose(&host(), &targets, &vips, false, (None, None)).unwrap();
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn without_a_match_the_default_route_interface_decides() {
        let got = choose(&host(), &[ip("203.0.113.5")], &[], false, (Some(2), None)).unwrap();
        assert_eq!(got, ip("198.51.100.7"));
        assert!(choose(&host(), &[ip("203.0.113.5")], &[], false, (None, None)).is_err());
    }

    #[test]
    fn hint_files_are_read_with_or_without_a_newline() {
        let dir = std::env::temp_dir().join(format!("vipd-nodeip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("primary-ip"), "192.0.2.10").unwrap();
        std::fs::write(dir.join("ipv4"), "192.0.2.10\n").unwrap();
        std::fs::write(dir.join("ipv6"), "garbage").unwrap();
        let h = Hints::read(&dir);
        assert_eq!(h.primary, Some(ip("192.0.2.10")));
        assert_eq!(h.for_family_of(ip("192.0.2.5")), Some(ip("192.0.2.10")));
        assert_eq!(h.ipv6, None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
