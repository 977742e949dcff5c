//! Interface and address discovery, and `detect`: which interface and subnet carry a VIP.
//!
//! `detect` replaces OpenShift's `get_vip_subnet_cidr` (installer era) and its successor in
//! baremetal-runtimecfg. The old helper was IPv4-only, crashed on a /32 entry, matched the VIP's
//! own /32 once the VIP was up, and silently never matched a VIP equal to a subnet's network or
//! broadcast address. Here each of those cases has a defined outcome and a test.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::Handle;

use crate::net::NetError;

/// One address as the kernel lists it (`ip addr`), in kernel order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddress {
    pub ifindex: u32,
    pub ifname: String,
    pub address: IpAddr,
    pub prefix_len: u8,
    /// IFA_F_DEPRECATED: preferred lifetime over (a VIP added by vipd or keepalived is deprecated).
    pub deprecated: bool,
    /// IFA_F_TENTATIVE or IFA_F_DADFAILED: not (yet) usable as a source.
    pub tentative: bool,
    /// fe80::/10 or 169.254.0.0/16.
    pub link_local: bool,
    /// IFA_F_SECONDARY: an IPv4 address inside the subnet of an earlier (primary) one.
    pub secondary: bool,
}

/// What `interface_by_name` / `interface_by_index` report about one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    pub ifindex: u32,
    pub ifname: String,
    /// The hardware address, when the link has a 6-byte one (Ethernet, veth, bond, VLAN).
    pub mac: Option<[u8; 6]>,
    /// The first non-secondary, non-link-local IPv4 address in kernel order: the source VRRP uses.
    pub primary_v4: Option<Ipv4Addr>,
    /// The interface's link-local IPv6 address (a non-tentative one when there is a choice).
    pub link_local_v6: Option<Ipv6Addr>,
    /// IFF_UP: administratively up.
    pub up: bool,
}

/// The outcome of [`detect`]: the interface and subnet that carry a VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub ifindex: u32,
    pub ifname: String,
    /// The node's own address whose subnet contains the VIP.
    pub local_address: IpAddr,
    /// The subnet as (network address, prefix length), e.g. (192.0.2.0, 24).
    pub subnet: (IpAddr, u8),
}

/// Why an address took no part in the match, as listed in [`DetectError::NoMatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The address is one of the VIPs (the VIP itself or one in `vips_to_ignore`).
    IsVip,
    LinkLocal,
    Deprecated,
    Tentative,
    /// IPv4 address for an IPv6 VIP or the reverse.
    OtherFamily,
    /// Its subnet (given) does not contain the VIP.
    NotInSubnet {
        network: IpAddr,
        prefix_len: u8,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::IsVip => f.write_str("is a VIP, skipped"),
            SkipReason::LinkLocal => f.write_str("link-local, skipped"),
            SkipReason::Deprecated => f.write_str("deprecated, skipped"),
            SkipReason::Tentative => f.write_str("tentative, skipped"),
            SkipReason::OtherFamily => f.write_str("other address family"),
            SkipReason::NotInSubnet {
                network,
                prefix_len,
            } => write!(f, "subnet {network}/{prefix_len} does not contain it"),
        }
    }
}

/// One address `detect` looked at, and why it did not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Considered {
    pub ifname: String,
    pub address: IpAddr,
    pub prefix_len: u8,
    pub reason: SkipReason,
}

impl fmt::Display for Considered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{} ({})",
            self.ifname, self.address, self.prefix_len, self.reason
        )
    }
}

/// Which reserved address of an IPv4 subnet a VIP was set to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservedKind {
    Network,
    Broadcast,
}

impl fmt::Display for ReservedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReservedKind::Network => "network",
            ReservedKind::Broadcast => "broadcast",
        })
    }
}

/// Why [`detect`] found no interface for a VIP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    /// No usable local address has a subnet containing the VIP.
    #[error("no local address has a subnet containing VIP {vip}; considered: {}", list(.considered))]
    NoMatch {
        vip: IpAddr,
        considered: Vec<Considered>,
    },
    /// The VIP is the network or broadcast address of the first subnet that contains it: hosts
    /// cannot use it (RFC 1122 3.2.1.3 / RFC 919), so it is a configuration mistake.
    #[error(
        "VIP {vip} is the {kind} address of subnet {network}/{prefix_len} on {ifname} \
         (local address {local_address}); choose a host address inside the subnet"
    )]
    ReservedAddress {
        vip: IpAddr,
        kind: ReservedKind,
        ifname: String,
        local_address: IpAddr,
        network: IpAddr,
        prefix_len: u8,
    },
}

fn list(considered: &[Considered]) -> String {
    if considered.is_empty() {
        return "no addresses at all".to_owned();
    }
    considered
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prefix masking has one home (`vipd_dns::server::network_of`); interface detection uses it.
pub use vipd_dns::server::network_of;

fn broadcast_of(addr: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    let host_bits = u32::MAX
        .checked_shr(u32::from(prefix_len.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from(u32::from(addr) | host_bits)
}

fn is_link_local(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// A /128 from DHCPv6 carries no on-link prefix; like baremetal-runtimecfg, assume the /64 that
/// router advertisements almost always announce.
const DHCPV6_WIDENED_PREFIX: u8 = 64;

/// Picks the interface and subnet that carry `vip`: the first address in kernel order whose
/// subnet contains the VIP, skipping the VIP itself and `vips_to_ignore` (a VIP we already hold
/// is a /32 or /128 that would otherwise match itself), link-local, deprecated and tentative
/// addresses. IPv6 /128 addresses are widened to /64. A VIP equal to the network or broadcast
/// address of the first IPv4 subnet (prefix <= 30) that contains it is an error.
pub fn detect(
    vip: IpAddr,
    addrs: &[LocalAddress],
    vips_to_ignore: &[IpAddr],
) -> Result<Detected, DetectError> {
    let mut considered = Vec::with_capacity(addrs.len());
    for a in addrs {
        let skip = if a.address.is_ipv4() != vip.is_ipv4() {
            Some(SkipReason::OtherFamily)
        } else if a.address == vip || vips_to_ignore.contains(&a.address) {
            Some(SkipReason::IsVip)
        } else if a.link_local || is_link_local(a.address) {
            Some(SkipReason::LinkLocal)
        } else if a.deprecated {
            Some(SkipReason::Deprecated)
        } else if a.tentative {
            Some(SkipReason::Tentative)
        } else {
            None
        };
        if let Some(reason) = skip {
            considered.push(Considered {
                ifname: a.ifname.clone(),
                address: a.address,
                prefix_len: a.prefix_len,
                reason,
            });
            continue;
        }
        let prefix_len = match a.address {
            IpAddr::V6(_) if a.prefix_len >= 128 => DHCPV6_WIDENED_PREFIX,
            IpAddr::V4(_) => a.prefix_len.min(32),
            IpAddr::V6(_) => a.prefix_len,
        };
        let network = network_of(a.address, prefix_len);
        if network_of(vip, prefix_len) != network {
            considered.push(Considered {
                ifname: a.ifname.clone(),
                address: a.address,
                prefix_len: a.prefix_len,
                reason: SkipReason::NotInSubnet {
                    network,
                    prefix_len,
                },
            });
            continue;
        }
        if let (IpAddr::V4(v4), IpAddr::V4(net4)) = (vip, network) {
            // /31 (RFC 3021) and /32 have no network or broadcast address.
            if prefix_len <= 30 {
                let kind = if v4 == net4 {
                    Some(ReservedKind::Network)
                } else if v4 == broadcast_of(net4, prefix_len) {
                    Some(ReservedKind::Broadcast)
                } else {
                    None
                };
                if let Some(kind) = kind {
                    return Err(DetectError::ReservedAddress {
                        vip,
                        kind,
                        ifname: a.ifname.clone(),
                        local_address: a.address,
                        network,
                        prefix_len,
                    });
                }
            }
        }
        return Ok(Detected {
            ifindex: a.ifindex,
            ifname: a.ifname.clone(),
            local_address: a.address,
            subnet: (network, prefix_len),
        });
    }
    Err(DetectError::NoMatch { vip, considered })
}

/// Opens a short-lived rtnetlink connection whose task runs on the current tokio runtime.
pub(crate) fn connect() -> Result<Handle, NetError> {
    let (conn, handle, _) = rtnetlink::new_connection()
        .map_err(|e| NetError::io("opening a NETLINK_ROUTE socket", e))?;
    tokio::spawn(conn);
    Ok(handle)
}

pub(crate) async fn dump_links(handle: &Handle) -> Result<Vec<LinkMessage>, NetError> {
    handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| NetError::netlink("listing interfaces (RTM_GETLINK dump)", e))
}

pub(crate) async fn dump_addresses(handle: &Handle) -> Result<Vec<AddressMessage>, NetError> {
    handle
        .address()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| NetError::netlink("listing addresses (RTM_GETADDR dump)", e))
}

fn link_name(link: &LinkMessage) -> String {
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        })
        .unwrap_or_else(|| format!("if{}", link.header.index))
}

/// The interface-local address of an address message: IFA_LOCAL when present (it differs from
/// IFA_ADDRESS only on point-to-point links, where IFA_ADDRESS is the peer), else IFA_ADDRESS.
pub(crate) fn message_address(msg: &AddressMessage) -> Option<IpAddr> {
    let mut address = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => return Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            _ => {}
        }
    }
    address
}

/// The full 32-bit flags: IFA_FLAGS when present, else the 8-bit header field.
pub(crate) fn message_flags(msg: &AddressMessage) -> AddressFlags {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::Flags(f) => Some(*f),
            _ => None,
        })
        .unwrap_or_else(|| AddressFlags::from_bits_retain(u32::from(msg.header.flags.bits())))
}

fn to_local_address(msg: &AddressMessage, names: &HashMap<u32, String>) -> Option<LocalAddress> {
    let address = message_address(msg)?;
    let flags = message_flags(msg);
    let ifindex = msg.header.index;
    Some(LocalAddress {
        ifindex,
        ifname: names
            .get(&ifindex)
            .cloned()
            .unwrap_or_else(|| format!("if{ifindex}")),
        address,
        prefix_len: msg.header.prefix_len,
        deprecated: flags.contains(AddressFlags::Deprecated),
        tentative: flags.intersects(AddressFlags::Tentative | AddressFlags::Dadfailed),
        link_local: is_link_local(address),
        secondary: flags.contains(AddressFlags::Secondary),
    })
}

/// Every address on every interface, in kernel order (IPv4 first, as `ip addr` dumps them).
pub async fn local_addresses() -> Result<Vec<LocalAddress>, NetError> {
    let handle = connect()?;
    let names: HashMap<u32, String> = dump_links(&handle)
        .await?
        .iter()
        .map(|l| (l.header.index, link_name(l)))
        .collect();
    Ok(dump_addresses(&handle)
        .await?
        .iter()
        .filter_map(|m| to_local_address(m, &names))
        .collect())
}

fn info_from(link: &LinkMessage, addrs: &[LocalAddress]) -> InterfaceInfo {
    let ifindex = link.header.index;
    let mac = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok(),
        _ => None,
    });
    let mine = || addrs.iter().filter(move |a| a.ifindex == ifindex);
    let primary_v4 = mine().find_map(|a| match a.address {
        IpAddr::V4(v4) if !a.secondary && !a.link_local => Some(v4),
        _ => None,
    });
    let link_locals = || {
        mine().filter_map(|a| match a.address {
            IpAddr::V6(v6) if a.link_local => Some((v6, a.tentative)),
            _ => None,
        })
    };
    let link_local_v6 = link_locals()
        .find(|(_, tentative)| !tentative)
        .or_else(|| link_locals().next())
        .map(|(v6, _)| v6);
    InterfaceInfo {
        ifindex,
        ifname: link_name(link),
        mac,
        primary_v4,
        link_local_v6,
        up: link.header.flags.contains(LinkFlags::Up),
    }
}

async fn interface_where(
    matches: impl Fn(&LinkMessage) -> bool,
    not_found: impl FnOnce(&[LinkMessage]) -> NetError,
) -> Result<InterfaceInfo, NetError> {
    let handle = connect()?;
    let links = dump_links(&handle).await?;
    let Some(link) = links.iter().find(|l| matches(l)) else {
        return Err(not_found(&links));
    };
    let names = HashMap::from([(link.header.index, link_name(link))]);
    let addrs: Vec<LocalAddress> = dump_addresses(&handle)
        .await?
        .iter()
        .filter(|m| m.header.index == link.header.index)
        .filter_map(|m| to_local_address(m, &names))
        .collect();
    Ok(info_from(link, &addrs))
}

/// Looks an interface up by name; the error lists the names that do exist.
pub async fn interface_by_name(name: &str) -> Result<InterfaceInfo, NetError> {
    interface_where(
        |l| link_name(l) == name,
        |links| NetError::NoSuchInterface {
            name: name.to_owned(),
            seen: links.iter().map(link_name).collect(),
        },
    )
    .await
}

/// Looks an interface up by index; the error lists the interfaces that do exist.
pub async fn interface_by_index(ifindex: u32) -> Result<InterfaceInfo, NetError> {
    interface_where(
        |l| l.header.index == ifindex,
        |links| NetError::NoSuchIndex {
            ifindex,
            seen: links
                .iter()
                .map(|l| format!("{} (index {})", link_name(l), l.header.index))
                .collect(),
        },
    )
    .await
}

/// `detect` against this host's addresses: what `vipd detect-interface` prints.
pub async fn detect_on_host(vip: IpAddr, vips_to_ignore: &[IpAddr]) -> Result<Detected, NetError> {
    let addrs = local_addresses().await?;
    Ok(detect(vip, &addrs, vips_to_ignore)?)
}

/// `detect` with the address OpenShift's node-ip configuration chose (`hint`) looked at first,
/// as runtimecfg's `getInterfaceAndNonVIPAddr` does: when the hinted address is on this host
/// and its subnet holds the VIP, its interface carries the instance.
pub async fn detect_on_host_with_hint(
    vip: IpAddr,
    vips_to_ignore: &[IpAddr],
    hint: Option<IpAddr>,
) -> Result<Detected, NetError> {
    let mut addrs = local_addresses().await?;
    if let Some(pos) = hint.and_then(|h| addrs.iter().position(|a| a.address == h)) {
        let hinted = addrs.remove(pos);
        addrs.insert(0, hinted);
    }
    Ok(detect(vip, &addrs, vips_to_ignore)?)
}

/// What the synchronous socket constructors need to know about an interface, read with
/// getifaddrs(3) so that `VrrpSocket::open` and `Announcer::new` need no runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkBasics {
    pub ifname: String,
    pub mac: Option<[u8; 6]>,
    pub link_local_v6: Option<Ipv6Addr>,
    /// IPv4 addresses of the interface. glibc names IPv4 entries by their label, so a labelled
    /// VIP is missed here, which is fine: only the node's own source address is looked for.
    pub ipv4: Vec<Ipv4Addr>,
    /// The AF_PACKET address of the interface, to bind packet sockets to it.
    pub packet_addr: Option<nix::sys::socket::LinkAddr>,
}

pub(crate) fn link_basics(ifindex: u32) -> io::Result<LinkBasics> {
    let ifname = nix::net::if_::if_indextoname(ifindex)
        .ok()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("interface index {ifindex} does not exist"),
            )
        })?;
    let mut basics = LinkBasics {
        ifname,
        mac: None,
        link_local_v6: None,
        ipv4: Vec::new(),
        packet_addr: None,
    };
    for ifa in nix::ifaddrs::getifaddrs()? {
        if ifa.interface_name != basics.ifname {
            continue;
        }
        let Some(addr) = ifa.address else { continue };
        if let Some(link) = addr.as_link_addr() {
            basics.mac = link.addr().filter(|_| link.halen() == 6);
            basics.packet_addr = Some(*link);
        } else if let Some(v4) = addr.as_sockaddr_in() {
            basics.ipv4.push(v4.ip());
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            let ip = v6.ip();
            if basics.link_local_v6.is_none() && is_link_local(IpAddr::V6(ip)) {
                basics.link_local_v6 = Some(ip);
            }
        }
    }
    Ok(basics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ifindex: u32, ifname: &str, cidr: &str) -> LocalAddress {
        let (ip, prefix) = cidr.split_once('/').unwrap();
        let address: IpAddr = ip.parse().unwrap();
        LocalAddress {
            ifindex,
            ifname: ifname.to_owned(),
            address,
            prefix_len: prefix.parse().unwrap(),
            deprecated: false,
            tentative: false,
            link_local: is_link_local(address),
            secondary: false,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn lo() -> LocalAddress {
        addr(1, "lo", "127.0.0.1/8")
    }

    #[test]
    fn ipv4_vip_matches_the_subnet_of_the_interface_address() {
        let addrs = [lo(), addr(2, "eth0", "192.0.2.11/24")];
        assert_eq!(
            detect(ip("192.0.2.5"), &addrs, &[]),
            Ok(Detected {
                ifindex: 2,
                ifname: "eth0".into(),
                local_address: ip("192.0.2.11"),
                subnet: (ip("192.0.2.0"), 24),
            })
        );
    }

    #[test]
    fn ipv6_vip_matches_the_subnet_of_the_interface_address() {
        let addrs = [addr(2, "eth0", "2001:db8:0:1::11/64")];
        assert_eq!(
            detect(ip("2001:db8:0:1::100"), &addrs, &[]),
            Ok(Detected {
                ifindex: 2,
                ifname: "eth0".into(),
                local_address: ip("2001:db8:0:1::11"),
                subnet: (ip("2001:db8:0:1::"), 64),
            })
        );
    }

    #[test]
    fn first_match_in_kernel_order_wins() {
        let addrs = [
            addr(3, "br-ex", "192.0.2.12/24"),
            addr(2, "eth0", "192.0.2.11/24"),
        ];
        let d = detect(ip("192.0.2.5"), &addrs, &[]).unwrap();
        assert_eq!((d.ifindex, d.ifname.as_str()), (3, "br-ex"));
    }

    #[test]
    fn our_own_vip_listed_first_does_not_match_itself() {
        // While Master, the VIP is a /32 on the interface, often listed before the node address
        // of another subnet; get_vip_subnet_cidr returned 192.0.2.5/32 here.
        let addrs = [
            addr(2, "eth0", "192.0.2.5/32"),
            addr(2, "eth0", "192.0.2.11/24"),
        ];
        let d = detect(ip("192.0.2.5"), &addrs, &[]).unwrap();
        assert_eq!(d.local_address, ip("192.0.2.11"));
        assert_eq!(d.subnet, (ip("192.0.2.0"), 24));
    }

    #[test]
    fn addresses_equal_to_another_vip_are_skipped() {
        // The ingress VIP held as a /24 by a misconfigured node must not decide the API VIP.
        let addrs = [
            addr(3, "eth1", "192.0.2.7/24"),
            addr(2, "eth0", "192.0.2.11/24"),
        ];
        let d = detect(ip("192.0.2.5"), &addrs, &[ip("192.0.2.7")]).unwrap();
        assert_eq!(
            (d.ifname.as_str(), d.local_address),
            ("eth0", ip("192.0.2.11"))
        );
    }

    #[test]
    fn link_local_addresses_are_skipped() {
        let addrs = [
            addr(2, "eth0", "fe80::1/64"),
            addr(2, "eth0", "2001:db8::11/64"),
        ];
        let d = detect(ip("2001:db8::100"), &addrs, &[]).unwrap();
        assert_eq!(d.local_address, ip("2001:db8::11"));
    }

    #[test]
    fn ipv4_link_local_subnet_never_matches() {
        let addrs = [addr(2, "eth0", "169.254.10.1/16")];
        let err = detect(ip("169.254.10.5"), &addrs, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no local address has a subnet containing VIP 169.254.10.5; considered: \
             eth0 169.254.10.1/16 (link-local, skipped)"
        );
    }

    #[test]
    fn deprecated_addresses_are_skipped() {
        let mut old = addr(3, "eth1", "2001:db8::12/64");
        old.deprecated = true;
        let addrs = [old, addr(2, "eth0", "2001:db8::11/64")];
        assert_eq!(
            detect(ip("2001:db8::100"), &addrs, &[]).unwrap().ifname,
            "eth0"
        );
    }

    #[test]
    fn tentative_addresses_are_skipped() {
        let mut dad = addr(3, "eth1", "2001:db8::12/64");
        dad.tentative = true;
        let addrs = [dad, addr(2, "eth0", "2001:db8::11/64")];
        assert_eq!(
            detect(ip("2001:db8::100"), &addrs, &[]).unwrap().ifname,
            "eth0"
        );
    }

    #[test]
    fn ipv6_dhcp_slash_128_is_widened_to_slash_64() {
        let addrs = [addr(2, "eth0", "2001:db8::11/128")];
        assert_eq!(
            detect(ip("2001:db8::100"), &addrs, &[]).unwrap().subnet,
            (ip("2001:db8::"), 64)
        );
    }

    #[test]
    fn ipv4_slash_32_address_does_not_crash_and_does_not_match_other_addresses() {
        let addrs = [addr(2, "eth0", "198.51.100.1/32")];
        assert_eq!(
            detect(ip("198.51.100.2"), &addrs, &[]),
            Err(DetectError::NoMatch {
                vip: ip("198.51.100.2"),
                considered: vec![Considered {
                    ifname: "eth0".into(),
                    address: ip("198.51.100.1"),
                    prefix_len: 32,
                    reason: SkipReason::NotInSubnet {
                        network: ip("198.51.100.1"),
                        prefix_len: 32
                    },
                }],
            })
        );
    }

    #[test]
    fn ipv4_slash_31_has_no_reserved_addresses() {
        let addrs = [addr(2, "eth0", "198.51.100.0/31")];
        let d = detect(ip("198.51.100.1"), &addrs, &[]).unwrap();
        assert_eq!(d.subnet, (ip("198.51.100.0"), 31));
    }

    #[test]
    fn vip_equal_to_the_network_address_is_an_error_naming_it() {
        let addrs = [addr(2, "eth0", "192.0.2.11/24")];
        let err = detect(ip("192.0.2.0"), &addrs, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "VIP 192.0.2.0 is the network address of subnet 192.0.2.0/24 on eth0 (local address \
             192.0.2.11); choose a host address inside the subnet"
        );
    }

    #[test]
    fn vip_equal_to_the_broadcast_address_is_an_error_naming_it() {
        let addrs = [addr(2, "eth0", "192.0.2.11/30")];
        assert_eq!(
            detect(ip("192.0.2.11"), &[addr(2, "eth0", "192.0.2.9/30")], &[]),
            Err(DetectError::ReservedAddress {
                vip: ip("192.0.2.11"),
                kind: ReservedKind::Broadcast,
                ifname: "eth0".into(),
                local_address: ip("192.0.2.9"),
                network: ip("192.0.2.8"),
                prefix_len: 30,
            })
        );
        // The VIP equal to the node's own address is skipped as a VIP, not reported reserved.
        assert!(matches!(
            detect(ip("192.0.2.11"), &addrs, &[]),
            Err(DetectError::NoMatch { .. })
        ));
    }

    #[test]
    fn other_family_addresses_do_not_match() {
        let addrs = [addr(2, "eth0", "192.0.2.11/24")];
        assert!(matches!(
            detect(ip("2001:db8::100"), &addrs, &[]),
            Err(DetectError::NoMatch { .. })
        ));
    }

    #[test]
    fn no_match_lists_every_address_considered_and_why() {
        let mut dep = addr(2, "eth0", "2001:db8:1::5/64");
        dep.deprecated = true;
        let addrs = [
            lo(),
            addr(2, "eth0", "192.0.2.11/24"),
            addr(2, "eth0", "192.0.2.5/32"),
            addr(2, "eth0", "fe80::1/64"),
            dep,
        ];
        let err = detect(ip("198.51.100.5"), &addrs, &[ip("192.0.2.5")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no local address has a subnet containing VIP 198.51.100.5; considered: \
             lo 127.0.0.1/8 (subnet 127.0.0.0/8 does not contain it), \
             eth0 192.0.2.11/24 (subnet 192.0.2.0/24 does not contain it), \
             eth0 192.0.2.5/32 (is a VIP, skipped), \
             eth0 fe80::1/64 (other address family), \
             eth0 2001:db8:1::5/64 (other address family)"
        );
    }

    #[test]
    fn no_addresses_at_all_says_so() {
        assert_eq!(
            detect(ip("192.0.2.5"), &[], &[]).unwrap_err().to_string(),
            "no local address has a subnet containing VIP 192.0.2.5; considered: no addresses at all"
        );
    }

    #[test]
    fn network_of_masks_host_bits() {
        assert_eq!(network_of(ip("192.0.2.77"), 26), ip("192.0.2.64"));
        assert_eq!(network_of(ip("192.0.2.77"), 0), ip("0.0.0.0"));
        assert_eq!(network_of(ip("2001:db8::1:2"), 112), ip("2001:db8::1:0"));
    }
}
