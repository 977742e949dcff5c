//! Gratuitous ARP and unsolicited NA, captured on the peer side of a veth pair.

mod net_lab;

use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use net_lab::*;
use socket2::{Domain, Protocol, Socket, Type};
use vipd::net::announce::Announcer;

const ETH_P_ALL: u16 = 0x0003;

/// An AF_PACKET socket capturing every frame arriving on `vb` in the current namespace.
fn capture_on_vb() -> Socket {
    let socket = Socket::new(
        Domain::PACKET,
        Type::RAW,
        Some(Protocol::from(i32::from(ETH_P_ALL.to_be()))),
    )
    .unwrap();
    let link = nix::ifaddrs::getifaddrs()
        .unwrap()
        .filter(|i| i.interface_name == "vb")
        .find_map(|i| i.address.and_then(|a| a.as_link_addr().copied()))
        .expect("vb has a link address");
    nix::sys::socket::bind(socket.as_raw_fd(), &link).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    socket
}

/// Announces `vip` from namespace a and returns the first frame arriving in b that `wanted`
/// accepts.
fn announce_and_capture(lab: &Lab, vip: IpAddr, wanted: impl Fn(&[u8]) -> bool + Send) -> Vec<u8> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let ifindex = lab.a.ifindex();
    let (a, b) = (&lab.a, &lab.b);
    std::thread::scope(|s| {
        let capture = s.spawn(move || {
            b.enter();
            let socket = capture_on_vb();
            ready_tx.send(()).unwrap();
            let deadline = Instant::now() + TIMEOUT;
            let mut buf = [0u8; 2048];
            while Instant::now() < deadline {
                if let Ok(n) = std::io::Read::read(&mut &socket, &mut buf) {
                    if wanted(&buf[..n]) {
                        return buf[..n].to_vec();
                    }
                }
            }
            panic!("no matching frame captured within {TIMEOUT:?}");
        });
        let send = s.spawn(move || {
            a.enter();
            ready_rx
                .recv_timeout(TIMEOUT)
                .expect("capture never started");
            Announcer::new(ifindex).unwrap().announce(vip).unwrap();
        });
        send.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        capture
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

fn is_arp(frame: &[u8]) -> bool {
    frame.len() >= 42 && frame[12..14] == [0x08, 0x06]
}

/// IPv6 + ICMPv6 (next header 58, no extension headers) of type 136.
fn is_neighbor_advertisement(frame: &[u8]) -> bool {
    frame.len() >= 14 + 40 + 32
        && frame[12..14] == [0x86, 0xdd]
        && frame[20] == 58
        && frame[54] == 136
}

fn icmpv6_checksum_ok(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> bool {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for chunk in bytes.chunks(2) {
            let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(message.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(message);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

#[test]
fn gratuitous_arp_is_a_broadcast_request_for_the_vip_from_our_mac() {
    let lab = Lab::new();
    let frame = announce_and_capture(&lab, ip("192.0.2.100"), is_arp);
    let mut expected = vec![0xff; 6];
    expected.extend_from_slice(&A_MAC);
    expected.extend_from_slice(&[0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
    expected.extend_from_slice(&A_MAC);
    expected.extend_from_slice(&[192, 0, 2, 100]);
    expected.extend_from_slice(&[0; 6]);
    expected.extend_from_slice(&[192, 0, 2, 100]);
    assert_eq!(&frame[..42], expected.as_slice());
}

#[test]
fn unsolicited_na_goes_to_all_nodes_with_hop_limit_255_override_and_our_mac() {
    let lab = Lab::new();
    let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
    let frame = announce_and_capture(&lab, IpAddr::V6(vip), is_neighbor_advertisement);
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&frame[22..38]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&frame[38..54]).unwrap());
    // Ethernet: to the all-nodes MAC (33:33 + low 32 bits of ff02::1), from our MAC.
    assert_eq!(&frame[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!(&frame[6..12], &A_MAC);
    assert_eq!(frame[21], 255, "hop limit");
    assert_eq!(dst, all_nodes);
    assert_eq!(src, lab.a.link_local());
    let na = &frame[54..86];
    assert_eq!(
        u16::from_be_bytes([frame[18], frame[19]]),
        32,
        "payload length"
    );
    assert_eq!(na[1], 0, "code");
    assert_eq!(&na[4..8], &[0x20, 0, 0, 0], "flags: Override only");
    assert_eq!(&na[8..24], &vip.octets(), "target");
    assert_eq!(&na[24..26], &[2, 1], "target link-layer address option");
    assert_eq!(&na[26..32], &A_MAC);
    assert!(icmpv6_checksum_ok(src, dst, na), "ICMPv6 checksum");
}

#[test]
fn announcer_for_a_missing_interface_says_so() {
    let lab = Lab::new();
    let err = lab
        .a
        .run(|| async { Announcer::new(999).unwrap_err().to_string() });
    assert_eq!(err, "interface index 999 does not exist");
}
