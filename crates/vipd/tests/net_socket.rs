//! Raw VRRP sockets between two network namespaces joined by a veth pair.

mod net_lab;

use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::mpsc;

use net_lab::*;
use socket2::{Domain, Protocol, Socket, Type};
use vipd::net::socket::{Family, ReceivedPacket, SocketConfig, VrrpSocket};

/// v3 IPv4 advert from reference/vrrp.md: VRID 93, priority 40, 100 cs, VIP 192.0.2.10.
const ADVERT_V4_VRID93: &str = "315d280100644198c000020a";
/// v3 IPv6 advert from reference/vrrp.md: VRID 51, priority 100, 100 cs, VIP 2001:db8::100.
const ADVERT_V6_VRID51: &str = "313364010064943920010db8000000000000000000000100";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn config(ns: &Netns, family: Family, vrid: u8, source: &str, peers: &[&str]) -> SocketConfig {
    SocketConfig {
        ifname: ns.ifname.to_owned(),
        ifindex: ns.ifindex(),
        family,
        vrid,
        source: ip(source),
        peers: peers.iter().map(|p| ip(p)).collect(),
    }
}

/// Opens a VrrpSocket in `receiver`'s namespace, runs `send` in the other namespace once it is
/// open, and returns the first packet the socket delivers (with its payload).
fn receive_while(
    receiver: &Netns,
    cfg: SocketConfig,
    sender: &Netns,
    send: impl FnOnce() + Send,
) -> (ReceivedPacket, Vec<u8>) {
    receive_beside(receiver, cfg, None, sender, send)
}

/// Like `receive_while`, with a second socket (`beside`) open in the receiver's namespace.
fn receive_beside(
    receiver: &Netns,
    cfg: SocketConfig,
    beside: Option<SocketConfig>,
    sender: &Netns,
    send: impl FnOnce() + Send,
) -> (ReceivedPacket, Vec<u8>) {
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::scope(|s| {
        let rx = s.spawn(move || {
            receiver.enter();
            let socket = VrrpSocket::open(&cfg).unwrap();
            let _beside = beside.map(|b| VrrpSocket::open(&b).unwrap());
            ready_tx.send(()).unwrap();
            let mut buf = [0u8; 1500];
            let packet = socket
                .recv_timeout(&mut buf, TIMEOUT)
                .unwrap()
                .expect("nothing received within the timeout");
            let payload = packet.payload(&buf).to_vec();
            (packet, payload)
        });
        let tx = s.spawn(move || {
            sender.enter();
            ready_rx
                .recv_timeout(TIMEOUT)
                .expect("receiver never opened");
            send();
        });
        tx.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        rx.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Sends payloads with VrrpSocket::send from inside the current (sender) namespace.
fn send_vrrp(cfg: SocketConfig, packets: Vec<(Vec<u8>, IpAddr)>) {
    let socket = VrrpSocket::open(&cfg).unwrap();
    for (payload, dst) in packets {
        socket.send(&payload, dst).unwrap();
    }
}

/// A hand-made IPv4 datagram (IP_HDRINCL) so tests control TTL, options and source.
fn ipv4_datagram(src: &str, ttl: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let ihl = 5 + options.len() / 4;
    let total = ihl * 4 + payload.len();
    let mut d = vec![0x40 | ihl as u8, 0xc0];
    d.extend_from_slice(&(total as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0, 0, 0, ttl, 112, 0, 0]);
    d.extend_from_slice(&ip_v4(src).octets());
    d.extend_from_slice(&[224, 0, 0, 18]);
    d.extend_from_slice(options);
    d.extend_from_slice(payload);
    d
}

fn ip_v4(s: &str) -> std::net::Ipv4Addr {
    s.parse().unwrap()
}

/// Sends hand-made datagrams to 224.0.0.18 out of `va` in the current namespace.
fn send_raw_v4(datagrams: &[Vec<u8>]) {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
    socket.set_header_included_v4(true).unwrap();
    socket.bind_device(Some(b"va")).unwrap();
    let group: SocketAddr = SocketAddrV4::new(ip_v4("224.0.0.18"), 0).into();
    for d in datagrams {
        socket.send_to(d, &group.into()).unwrap();
    }
}

fn with_vrid(advert: &str, vrid: u8) -> Vec<u8> {
    let mut p = hex(advert);
    p[1] = vrid;
    p
}

#[test]
fn ipv4_multicast_advert_arrives_with_source_group_ttl_and_payload() {
    let lab = Lab::new();
    let rx_cfg = config(&lab.b, Family::Ipv4, 93, B_V4, &[]);
    let tx_cfg = config(&lab.a, Family::Ipv4, 93, A_V4, &[]);
    let (packet, payload) = receive_while(&lab.b, rx_cfg, &lab.a, || {
        send_vrrp(tx_cfg, vec![(hex(ADVERT_V4_VRID93), ip("224.0.0.18"))])
    });
    assert_eq!(
        packet,
        ReceivedPacket {
            src: ip(A_V4),
            dst: ip("224.0.0.18"),
            ttl: 255,
            ifindex: lab.b.ifindex(),
            start: 20,
            len: 12,
        }
    );
    assert_eq!(payload, hex(ADVERT_V4_VRID93));
}

#[test]
fn ipv6_multicast_advert_arrives_from_the_link_local_with_hop_limit_255() {
    let lab = Lab::new();
    // A global source is configured: IPv6 adverts must still leave from the link-local.
    let rx_cfg = config(&lab.b, Family::Ipv6, 51, B_V6, &[]);
    let tx_cfg = config(&lab.a, Family::Ipv6, 51, A_V6, &[]);
    let (packet, payload) = receive_while(&lab.b, rx_cfg, &lab.a, || {
        send_vrrp(tx_cfg, vec![(hex(ADVERT_V6_VRID51), ip("ff02::12"))])
    });
    assert_eq!(
        packet,
        ReceivedPacket {
            src: IpAddr::V6(lab.a.link_local()),
            dst: ip("ff02::12"),
            ttl: 255,
            ifindex: lab.b.ifindex(),
            start: 0,
            len: 24,
        }
    );
    assert_eq!(payload, hex(ADVERT_V6_VRID51));
}

#[test]
fn ipv4_unicast_advert_arrives_addressed_to_the_peer_with_ttl_255() {
    let lab = Lab::new();
    let rx_cfg = config(&lab.b, Family::Ipv4, 93, B_V4, &[A_V4]);
    let tx_cfg = config(&lab.a, Family::Ipv4, 93, A_V4, &[B_V4]);
    let (packet, payload) = receive_while(&lab.b, rx_cfg, &lab.a, || {
        send_vrrp(tx_cfg, vec![(hex(ADVERT_V4_VRID93), ip(B_V4))])
    });
    assert_eq!(
        (packet.src, packet.dst, packet.ttl),
        (ip(A_V4), ip(B_V4), 255)
    );
    assert_eq!(payload, hex(ADVERT_V4_VRID93));
}

#[test]
fn ipv6_unicast_advert_arrives_addressed_to_the_peer_with_hop_limit_255() {
    let lab = Lab::new();
    let rx_cfg = config(&lab.b, Family::Ipv6, 51, B_V6, &[A_V6]);
    let tx_cfg = config(&lab.a, Family::Ipv6, 51, A_V6, &[B_V6]);
    let (packet, payload) = receive_while(&lab.b, rx_cfg, &lab.a, || {
        send_vrrp(tx_cfg, vec![(hex(ADVERT_V6_VRID51), ip(B_V6))])
    });
    assert_eq!(
        (packet.src, packet.dst, packet.ttl),
        (IpAddr::V6(lab.a.link_local()), ip(B_V6), 255)
    );
    assert_eq!(payload, hex(ADVERT_V6_VRID51));
}

#[test]
fn a_unicast_socket_ignores_the_group_joined_by_another_instance() {
    let lab = Lab::new();
    let unicast = config(&lab.b, Family::Ipv4, 93, B_V4, &[A_V4]);
    let multicast = config(&lab.b, Family::Ipv4, 93, B_V4, &[]);
    let tx_cfg = config(&lab.a, Family::Ipv4, 93, A_V4, &[]);
    let (packet, _) = receive_beside(&lab.b, unicast, Some(multicast), &lab.a, || {
        send_vrrp(
            tx_cfg,
            vec![
                (hex(ADVERT_V4_VRID93), ip("224.0.0.18")),
                (hex(ADVERT_V4_VRID93), ip(B_V4)),
            ],
        )
    });
    assert_eq!(packet.dst, ip(B_V4));
}

#[test]
fn ipv4_filter_drops_adverts_of_other_vrids() {
    let lab = Lab::new();
    let rx_cfg = config(&lab.b, Family::Ipv4, 93, B_V4, &[]);
    let tx_cfg = config(&lab.a, Family::Ipv4, 94, A_V4, &[]);
    let (_, payload) = receive_while(&lab.b, rx_cfg, &lab.a, || {
        send_vrrp(
            tx_cfg,
            vec![
                (with_vrid(ADVERT_V4_VRID93, 94), ip("224.0.0.18")),
                (with_vrid(ADVERT_V4_VRID93, 92), ip("224.0.0.18")),
                (hex(ADVERT_V4_VRID93), ip("224.0.0.18")),
            ],
        )
    });
    assert_eq!(payload, hex(ADVERT_V4_VRID93));
}

#[test]
fn ipv4_adverts_of_other_vrids_do_reach_a_socket_for_that_vrid() {
    // Counterpart of the test above: the VRID 94 advert is on the wire, only filtered.
    let lab = Lab::new();
    let rx_cfg = config(&lab.b, Family::Ipv4, 94, B_V4, &[]);
    let tx_cfg = config(&lab.a, Family::Ipv4, 94, A_V4, &[]);
    let (_, payload) = receive_while(&lab.b, rx_cfg, &lab.a, || {
        send_vrrp(
            tx_cfg,
            vec![(with_vrid(ADVERT_V4_VRID93, 94), ip("224.0.0.18"))],
        )
    });
    assert_eq!(payload, with_vrid(ADVERT_V4_VRID93, 94));
}

#[test]
fn ipv6_filter_drops_adverts_of_other_vrids() {
    let lab = Lab::new();
    let rx_cfg = config(&lab.b, Family::Ipv6, 51, B_V6, &[]);
    let tx_cfg = config(&lab.a, Family::Ipv6, 51, A_V6, &[]);
    let (_, payload) = receive_while(&lab.b, rx_cfg, &lab.a, || {
        send_vrrp(
            tx_cfg,
            vec![
                (with_vrid(ADVERT_V6_VRID51, 52), ip("ff02::12")),
                (hex(ADVERT_V6_VRID51), ip("ff02::12")),
            ],
        )
    });
    assert_eq!(payload, hex(ADVERT_V6_VRID51));
}

#[test]
fn ipv4_filter_finds_the_vrid_behind_header_options() {
    let lab = Lab::new();
    let rx_cfg = config(&lab.b, Family::Ipv4, 93, B_V4, &[]);
    // NOP NOP NOP EOL: a 24-byte header, so the VRID is at offset 25, not 21.
    let options = [1, 1, 1, 0];
    let (packet, payload) = receive_while(&lab.b, rx_cfg, &lab.a, || {
        send_raw_v4(&[
            ipv4_datagram(A_V4, 255, &options, &with_vrid(ADVERT_V4_VRID93, 94)),
            ipv4_datagram(A_V4, 255, &options, &hex(ADVERT_V4_VRID93)),
        ])
    });
    assert_eq!(packet.len, 12);
    assert_eq!(payload, hex(ADVERT_V4_VRID93));
}

#[test]
fn ttl_is_reported_as_received() {
    let lab = Lab::new();
    let rx_cfg = config(&lab.b, Family::Ipv4, 93, B_V4, &[]);
    let (packet, _) = receive_while(&lab.b, rx_cfg, &lab.a, || {
        send_raw_v4(&[ipv4_datagram(A_V4, 64, &[], &hex(ADVERT_V4_VRID93))])
    });
    assert_eq!(packet.ttl, 64);
}

#[test]
fn packets_from_our_own_source_address_are_skipped() {
    let lab = Lab::new();
    // Let vb accept a datagram claiming one of its own addresses as source, as a looping
    // switch would deliver our own advert back to us.
    lab.b.exec(&[
        "sysctl",
        "-qw",
        "net.ipv4.conf.vb.accept_local=1",
        "net.ipv4.conf.vb.rp_filter=0",
        "net.ipv4.conf.all.rp_filter=0",
    ]);
    let rx_cfg = config(&lab.b, Family::Ipv4, 93, B_V4, &[]);
    let mut ours = hex(ADVERT_V4_VRID93);
    ours[2] = 200; // priority: tells the two adverts apart
    let (packet, payload) = receive_while(&lab.b, rx_cfg, &lab.a, || {
        send_raw_v4(&[
            ipv4_datagram(B_V4, 255, &[], &ours),
            ipv4_datagram(A_V4, 255, &[], &hex(ADVERT_V4_VRID93)),
        ])
    });
    assert_eq!(packet.src, ip(A_V4));
    assert_eq!(payload, hex(ADVERT_V4_VRID93));
}

#[test]
fn opening_with_a_source_that_is_not_local_names_interface_and_address() {
    let lab = Lab::new();
    let cfg = config(&lab.a, Family::Ipv4, 93, "192.0.2.99", &[]);
    let err = lab
        .a
        .run(|| async move { VrrpSocket::open(&cfg).unwrap_err().to_string() });
    assert!(
        err == (
            "VRRP socket on va: source 192.0.2.99 is not an address of va (its IPv4 addresses: 192.0.2.1); expected the interface's primary IPv4 address"
        ),
        "{err}"
    );
}

#[test]
fn sending_to_an_address_of_the_other_family_is_refused() {
    let lab = Lab::new();
    let cfg = config(&lab.a, Family::Ipv4, 93, A_V4, &[]);
    let err = lab.a.run(|| async move {
        let socket = VrrpSocket::open(&cfg).unwrap();
        socket
            .send(&hex(ADVERT_V4_VRID93), ip("ff02::12"))
            .unwrap_err()
            .to_string()
    });
    assert_eq!(
        err,
        "VRRP socket on va: cannot send to ff02::12, it is not of the instance's family"
    );
}
