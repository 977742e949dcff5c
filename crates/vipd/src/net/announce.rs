//! Gratuitous ARP and unsolicited Neighbor Advertisements, sent from the interface's own MAC
//! after a VIP moves to this node, so that hosts and switches update their caches at once.
//!
//! Like OpenShift's keepalived, vipd uses no virtual MAC (RFC 9568 7.3): the VIP lives on the
//! node's own interface and is announced with the node's MAC.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use socket2::{Domain, Protocol, SockFilter, Socket, Type};

use crate::net::iface;

/// Destination of unsolicited NAs: all-nodes (RFC 4861 7.2.6).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Every Neighbor Discovery message is sent with hop limit 255 and dropped by receivers
/// otherwise (RFC 4861 7.1.2), which proves it came from the link.
pub const ND_HOP_LIMIT: u32 = 255;
/// Ethernet frames are at least 60 bytes before the FCS; the ARP payload is shorter.
const ETHERNET_MIN_FRAME: usize = 60;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ARP_HTYPE_ETHERNET: u16 = 1;
const ARP_OP_REQUEST: u16 = 1;
const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_OVERRIDE: u8 = 0x20;
const ND_OPT_TARGET_LINK_LAYER_ADDRESS: u8 = 2;
/// Length of a Neighbor Advertisement with one target link-layer address option.
pub const NA_LEN: usize = 32;

/// A gratuitous ARP in request form (RFC 5227 2.3 "ARP Announcement"): broadcast, sender and
/// target protocol address both the VIP, target hardware address zero. The request form is the
/// one every stack updates its cache from (some ignore gratuitous replies).
pub fn gratuitous_arp(mac: [u8; 6], vip: Ipv4Addr) -> [u8; ETHERNET_MIN_FRAME] {
    let mut f = [0u8; ETHERNET_MIN_FRAME];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&ARP_HTYPE_ETHERNET.to_be_bytes());
    f[16..18].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&ARP_OP_REQUEST.to_be_bytes());
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&vip.octets());
    // 32..38: target hardware address, zero.
    f[38..42].copy_from_slice(&vip.octets());
    f
}

/// An unsolicited Neighbor Advertisement (RFC 4861 4.4, 7.2.6): Solicited clear, Override set so
/// that receivers replace the old MAC, the target link-layer address option carrying ours. The
/// checksum stays zero: the kernel fills it in on ICMPv6 raw sockets (RFC 3542 3.1).
pub fn neighbor_advertisement(mac: [u8; 6], vip: Ipv6Addr, router: bool) -> [u8; NA_LEN] {
    let mut p = [0u8; NA_LEN];
    p[0] = ICMPV6_NEIGHBOR_ADVERTISEMENT;
    p[4] = NA_FLAG_OVERRIDE | if router { NA_FLAG_ROUTER } else { 0 };
    p[8..24].copy_from_slice(&vip.octets());
    p[24] = ND_OPT_TARGET_LINK_LAYER_ADDRESS;
    p[25] = 1; // option length in units of 8 bytes
    p[26..32].copy_from_slice(&mac);
    p
}

/// Sends announcements for VIPs on one interface.
#[derive(Debug)]
pub struct Announcer {
    ifindex: u32,
    ifname: String,
    mac: [u8; 6],
    arp: Socket,
    icmp6: Socket,
}

fn context(ifname: &str, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("announcer on {ifname}: {what}: {e}"))
}

/// A filter that accepts nothing: these sockets only send, and a raw ICMPv6 socket would
/// otherwise queue every ICMPv6 packet on the host until its buffer fills.
const DROP_ALL: [SockFilter; 1] = [SockFilter::new(0x06, 0, 0, 0)];

impl Announcer {
    /// Opens the sending sockets for interface `ifindex`. Fails when the interface does not
    /// exist or has no 6-byte hardware address (ARP and NDP need one).
    pub fn new(ifindex: u32) -> io::Result<Self> {
        let basics = iface::link_basics(ifindex)?;
        let name = basics.ifname.clone();
        let c = |what: &'static str| {
            let name = name.clone();
            move |e: io::Error| context(&name, what, e)
        };
        let (Some(mac), Some(packet_addr)) = (basics.mac, basics.packet_addr) else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "announcer on {name}: the interface has no Ethernet (6-byte) hardware \
                     address, so gratuitous ARP / neighbor advertisements cannot be sent"
                ),
            ));
        };
        // Protocol 0: the packet socket receives nothing and only sends what we give it.
        let arp = Socket::new(Domain::PACKET, Type::RAW, None)
            .map_err(c("creating an AF_PACKET socket (needs CAP_NET_RAW)"))?;
        arp.set_nonblocking(true).map_err(c("O_NONBLOCK"))?;
        arp.attach_filter(&DROP_ALL)
            .map_err(c("SO_ATTACH_FILTER"))?;
        nix::sys::socket::bind(std::os::fd::AsRawFd::as_raw_fd(&arp), &packet_addr)
            .map_err(|e| c("binding the AF_PACKET socket to the interface")(e.into()))?;

        let icmp6 = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
            .map_err(c("creating a raw ICMPv6 socket (needs CAP_NET_RAW)"))?;
        icmp6.set_nonblocking(true).map_err(c("O_NONBLOCK"))?;
        icmp6
            .attach_filter(&DROP_ALL)
            .map_err(c("SO_ATTACH_FILTER"))?;
        icmp6
            .bind_device(Some(name.as_bytes()))
            .map_err(c("SO_BINDTODEVICE"))?;
        icmp6
            .set_multicast_hops_v6(ND_HOP_LIMIT)
            .map_err(c("IPV6_MULTICAST_HOPS"))?;
        icmp6
            .set_unicast_hops_v6(ND_HOP_LIMIT)
            .map_err(c("IPV6_UNICAST_HOPS"))?;
        icmp6
            .set_multicast_if_v6(ifindex)
            .map_err(c("IPV6_MULTICAST_IF"))?;
        icmp6
            .set_multicast_loop_v6(false)
            .map_err(c("IPV6_MULTICAST_LOOP"))?;
        Ok(Announcer {
            ifindex,
            ifname: basics.ifname,
            mac,
            arp,
            icmp6,
        })
    }

    /// The MAC address announcements carry.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Whether the interface forwards IPv6: the NA Router flag must say so (RFC 4861 7.2.4), or
    /// hosts using this node as a router would drop it from their default router list.
    fn forwarding_v6(&self) -> bool {
        std::fs::read_to_string(format!(
            "/proc/sys/net/ipv6/conf/{}/forwarding",
            self.ifname
        ))
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
    }

    /// IPv4: one gratuitous ARP (request form, sender = target = VIP, broadcast).
    /// IPv6: one unsolicited NA to ff02::1, hop limit 255, Override set, target link-layer
    /// address option. Never blocks: a full send queue is reported as `WouldBlock`.
    pub fn announce(&self, vip: IpAddr) -> io::Result<()> {
        let sent = match vip {
            IpAddr::V4(v4) => self.arp.send(&gratuitous_arp(self.mac, v4)),
            IpAddr::V6(v6) => {
                let na = neighbor_advertisement(self.mac, v6, self.forwarding_v6());
                let dst = SocketAddr::V6(SocketAddrV6::new(ALL_NODES, 0, 0, self.ifindex));
                self.icmp6.send_to(&na, &dst.into())
            }
        };
        sent.map(drop).map_err(|e| {
            let what = match vip {
                IpAddr::V4(_) => "gratuitous ARP",
                IpAddr::V6(_) => "unsolicited neighbor advertisement",
            };
            io::Error::new(
                e.kind(),
                format!(
                    "announcer on {}: sending {what} for {vip}: {e}",
                    self.ifname
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];

    #[test]
    fn gratuitous_arp_is_a_broadcast_request_with_sender_and_target_the_vip() {
        let f = gratuitous_arp(MAC, Ipv4Addr::new(192, 0, 2, 5));
        let expected_head: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination: broadcast
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, // source: our MAC
            0x08, 0x06, // ARP
            0x00, 0x01, 0x08, 0x00, 6, 4, // Ethernet / IPv4
            0x00, 0x01, // request
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, // sender hardware address
            192, 0, 2, 5, // sender protocol address
            0, 0, 0, 0, 0, 0, // target hardware address
            192, 0, 2, 5, // target protocol address
        ];
        assert_eq!(&f[..42], &expected_head);
        assert_eq!(f.len(), 60);
        assert_eq!(&f[42..], &[0u8; 18]);
    }

    #[test]
    fn neighbor_advertisement_sets_override_and_carries_target_and_mac() {
        let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let p = neighbor_advertisement(MAC, vip, false);
        let mut expected = [0u8; 32];
        expected[0] = 136;
        expected[4] = 0x20;
        expected[8..24].copy_from_slice(&vip.octets());
        expected[24..32].copy_from_slice(&[2, 1, 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]);
        assert_eq!(p, expected);
    }

    #[test]
    fn neighbor_advertisement_of_a_forwarding_node_sets_the_router_flag() {
        let p = neighbor_advertisement(MAC, "2001:db8::100".parse().unwrap(), true);
        assert_eq!(p[4], 0xa0);
    }
}
