//! `vipd run --vip-lifetime`: VIPs with a finite lifetime, renewed while this process holds them,
//! dropped by the kernel once it stops (a SIGKILLed vipd cannot remove them itself). Its own test
//! binary: the lifetime is process-wide.

mod net_lab;

use std::time::Duration;

use net_lab::*;
use vipd::net::netlink::{set_vip_lifetime, VipManager};

fn vip_line(ns: &Netns, addr: &str) -> Option<String> {
    vip_line_in(&ns.ip(&["-o", "addr", "show", "dev", ns.ifname]), addr)
}

fn vip_line_in(listing: &str, addr: &str) -> Option<String> {
    listing
        .lines()
        .find(|l| l.contains(&format!(" {addr}/")))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[test]
fn a_vip_with_a_lifetime_is_renewed_while_held_and_expires_after() {
    set_vip_lifetime(Some(Duration::from_secs(2)));
    let lab = Lab::new();
    let idx = lab.a.ifindex();
    // 3 s: past the 2 s lifetime, so only the renewals (every 0.5 s) keep the VIP.
    let listing = || lab.a.ip(&["-o", "addr", "show", "dev", lab.a.ifname]);
    let (added, held) = lab.a.run(|| async move {
        let vips = VipManager::new().await.unwrap();
        vips.add(idx, ip("192.0.2.100")).await.unwrap();
        let added = vip_line_in(&listing(), "192.0.2.100");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let held = vips.present(idx, ip("192.0.2.100")).await.unwrap();
        (added, held)
    });
    let added = added.unwrap_or_default();
    assert!(
        added.contains(" vip") && added.contains("valid_lft 2sec preferred_lft 2sec"),
        "{added}"
    );
    assert!(held, "the VIP expired while its manager was renewing it");
    // The runtime (and its renewal task) is gone, as in a killed vipd: the kernel removes it
    // once the lifetime since the last renewal runs out. Its expiry check is rounded up to a
    // whole second (IPv4 check_lifetime), so allow up to 5 s, polling every 100 ms.
    let gone = std::time::Instant::now();
    let mut line = vip_line(&lab.a, "192.0.2.100");
    while line.is_some() && gone.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
        line = vip_line(&lab.a, "192.0.2.100");
    }
    assert_eq!(
        line,
        None,
        "still there {:?} after the renewals stopped",
        gone.elapsed()
    );
    assert!(
        gone.elapsed() >= Duration::from_millis(1000),
        "gone after {:?}: sooner than the 2 s lifetime minus one 0.5 s renewal period allows",
        gone.elapsed()
    );
}

#[test]
fn a_removed_vip_is_not_brought_back_by_a_renewal() {
    set_vip_lifetime(Some(Duration::from_secs(2)));
    let lab = Lab::new();
    let idx = lab.a.ifindex();
    let present = lab.a.run(|| async move {
        let vips = VipManager::new().await.unwrap();
        vips.add(idx, ip("192.0.2.101")).await.unwrap();
        vips.remove(idx, ip("192.0.2.101")).await.unwrap();
        // Two renewal periods.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        vips.present(idx, ip("192.0.2.101")).await.unwrap()
    });
    assert!(!present);
}
