//! VRRP decode: v2/v3 adverts over IPv4 and IPv6, both checksum forms, and the raw IPv4
//! datagram the receive socket hands over (`parse_ipv4`, then `Advertisement::parse`).
//!
//! Input: byte 0 selects the mode, then the IP addresses (4 or 16 bytes each), then the VRRP
//! payload (or, in mode 0, the whole IPv4 datagram).
//! Checks: no panic; a decoded advert is internally consistent (one family, count >= 1,
//! VRID != 0, interval in range, v3 without auth), re-emits to bytes that decode to the same
//! advert with the same checksum form, and the checked view's accessors agree with it.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use vipd_vrrp::packet::{AddressFamily, VrrpPacket};
use vipd_vrrp::{Advertisement, Auth, ChecksumForm, Version};

fn v4(b: &[u8]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

fn v6(b: &[u8]) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    IpAddr::V6(Ipv6Addr::from(a))
}

fn check(payload: &[u8], src: IpAddr, dst: IpAddr) {
    let family = AddressFamily::of(src);
    // The checked view never panics on any accessor once new_checked accepted the buffer.
    if let Ok(view) = VrrpPacket::new_checked(payload, family) {
        let _ = (
            view.version(),
            view.msg_type(),
            view.vrid(),
            view.priority(),
        );
        let _ = (
            view.max_adver_int(),
            view.auth_type(),
            view.adver_int_secs(),
        );
        let _ = (view.checksum(), view.address_bytes());
        for i in 0..usize::from(view.count()) {
            let _ = view.address(i);
        }
        if view.version() == 2 {
            let _ = view.auth_data();
        }
        for form in [ChecksumForm::Plain, ChecksumForm::PseudoHeader] {
            let _ = view.verify_checksum(src, dst, form);
            let _ = view.compute_checksum(src, dst, form);
        }
    }
    let Ok((advert, form)) = Advertisement::parse(payload, src, dst) else {
        return;
    };
    assert!(
        !advert.addresses.is_empty(),
        "decoded advert without addresses"
    );
    assert!(advert.vrid != 0, "decoded advert with VRID 0");
    assert!(
        advert
            .addresses
            .iter()
            .all(|a| AddressFamily::of(*a) == family),
        "addresses of another family than the source: {advert:?}"
    );
    match advert.version {
        Version::V3 => {
            assert!((1..=4095).contains(&advert.interval_cs), "{advert:?}");
            assert_eq!(advert.auth, Auth::None);
        }
        Version::V2 => {
            assert_eq!(family, AddressFamily::Ipv4, "v2 decoded over IPv6");
            assert!(advert.interval_cs % 100 == 0 && (100..=25500).contains(&advert.interval_cs));
            assert_eq!(form, ChecksumForm::Plain);
        }
    }
    if family == AddressFamily::Ipv6 {
        assert_eq!(form, ChecksumForm::PseudoHeader);
    }
    let view = VrrpPacket::new_checked(payload, family).expect("parse accepted it");
    assert!(view.verify_checksum(src, dst, form));
    assert_eq!(view.priority(), advert.priority);
    assert_eq!(usize::from(view.count()), advert.addresses.len());

    // Round trip: what we decoded, we can send, and it decodes to the same thing.
    let mut buf = vec![0u8; advert.buffer_len(family)];
    let n = advert
        .emit(&mut buf, src, dst, form)
        .unwrap_or_else(|e| panic!("decoded advert {advert:?} does not emit: {e}"));
    assert_eq!(n, payload.len(), "re-emitted length differs");
    let (again, again_form) =
        Advertisement::parse(&buf[..n], src, dst).expect("re-emitted advert does not decode");
    assert_eq!(again, advert);
    assert_eq!(again_form, form);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        // The raw socket path: an IPv4 datagram with its header.
        0 => {
            if let Ok(d) = vipd::net::socket::parse_ipv4(rest) {
                assert!(d.payload.start >= 20 && d.payload.end <= rest.len());
                check(&rest[d.payload], IpAddr::V4(d.src), IpAddr::V4(d.dst));
            }
        }
        1 if rest.len() >= 8 => check(&rest[8..], v4(&rest[..4]), v4(&rest[4..8])),
        2 if rest.len() >= 32 => check(&rest[32..], v6(&rest[..16]), v6(&rest[16..32])),
        _ => {}
    }
});
