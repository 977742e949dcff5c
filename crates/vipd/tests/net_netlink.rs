//! VIP management and interface discovery against a real kernel, inside a network namespace.

mod net_lab;

use net_lab::*;
use tokio::time::timeout;
use vipd::net::iface::{self, detect_on_host, interface_by_index, interface_by_name};
use vipd::net::netlink::{AddressEvent, AddressEventKind, VipManager};

/// The `ip -o addr show` lines of the lab interface that mention `addr/`.
fn addr_lines(ns: &Netns, addr: &str) -> Vec<String> {
    ns.ip(&["-o", "addr", "show", "dev", ns.ifname])
        .lines()
        .filter(|l| l.contains(&format!(" {addr}/")))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn ipv4_vip_is_added_as_a_slash_32_labelled_vip() {
    let lab = Lab::new();
    let idx = lab.a.ifindex();
    let present = lab.a.run(|| async move {
        let vips = VipManager::new().await.unwrap();
        vips.add(idx, ip("192.0.2.100")).await.unwrap();
        vips.present(idx, ip("192.0.2.100")).await.unwrap()
    });
    assert!(present);
    assert_eq!(
        addr_lines(&lab.a, "192.0.2.100"),
        [format!(
            "{idx}: va inet 192.0.2.100/32 scope global vip\\ valid_lft forever preferred_lft forever"
        )]
    );
}

#[test]
fn adding_an_ipv4_vip_twice_leaves_one_address() {
    let lab = Lab::new();
    let idx = lab.a.ifindex();
    lab.a.run(|| async move {
        let vips = VipManager::new().await.unwrap();
        vips.add(idx, ip("192.0.2.100")).await.unwrap();
        vips.add(idx, ip("192.0.2.100")).await.unwrap();
    });
    assert_eq!(addr_lines(&lab.a, "192.0.2.100").len(), 1);
}

#[test]
fn ipv6_vip_is_a_slash_128_nodad_and_deprecated_valid_forever() {
    let lab = Lab::new();
    let idx = lab.a.ifindex();
    lab.a.run(|| async move {
        let vips = VipManager::new().await.unwrap();
        vips.add(idx, ip("2001:db8::100")).await.unwrap();
    });
    assert_eq!(
        addr_lines(&lab.a, "2001:db8::100"),
        [format!(
            "{idx}: va inet6 2001:db8::100/128 scope global nodad deprecated \\ valid_lft forever \
             preferred_lft 0sec"
        )]
    );
}

#[test]
fn adding_an_ipv6_vip_repairs_one_added_preferred_and_with_dad() {
    let lab = Lab::new();
    let idx = lab.a.ifindex();
    lab.a.ip(&["addr", "add", "2001:db8::100/128", "dev", "va"]);
    lab.a.run(|| async move {
        let vips = VipManager::new().await.unwrap();
        vips.add(idx, ip("2001:db8::100")).await.unwrap();
    });
    let lines = addr_lines(&lab.a, "2001:db8::100");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(" nodad deprecated "), "{lines:?}");
    assert!(
        lines[0].ends_with("valid_lft forever preferred_lft 0sec"),
        "{lines:?}"
    );
}

#[test]
fn removing_a_vip_deletes_it_and_removing_again_is_ok() {
    let lab = Lab::new();
    let idx = lab.a.ifindex();
    let (after_first, after_second) = lab.a.run(|| async move {
        let vips = VipManager::new().await.unwrap();
        vips.add(idx, ip("192.0.2.100")).await.unwrap();
        vips.add(idx, ip("2001:db8::100")).await.unwrap();
        vips.remove(idx, ip("192.0.2.100")).await.unwrap();
        vips.remove(idx, ip("2001:db8::100")).await.unwrap();
        let first = (
            vips.present(idx, ip("192.0.2.100")).await.unwrap(),
            vips.present(idx, ip("2001:db8::100")).await.unwrap(),
        );
        let second = (
            vips.remove(idx, ip("192.0.2.100")).await.is_ok(),
            vips.remove(idx, ip("2001:db8::100")).await.is_ok(),
        );
        (first, second)
    });
    assert_eq!(after_first, (false, false));
    assert_eq!(after_second, (true, true));
    assert!(addr_lines(&lab.a, "192.0.2.100").is_empty());
    assert!(addr_lines(&lab.a, "2001:db8::100").is_empty());
}

#[test]
fn removing_deletes_a_vip_added_by_hand_with_another_prefix_and_keeps_the_node_address() {
    let lab = Lab::new();
    let idx = lab.a.ifindex();
    lab.a.ip(&["addr", "add", "192.0.2.100/24", "dev", "va"]);
    lab.a.run(|| async move {
        let vips = VipManager::new().await.unwrap();
        vips.remove(idx, ip("192.0.2.100")).await.unwrap();
    });
    assert!(addr_lines(&lab.a, "192.0.2.100").is_empty());
    assert_eq!(addr_lines(&lab.a, A_V4).len(), 1);
}

#[test]
fn a_multicast_vip_is_refused_naming_it() {
    let lab = Lab::new();
    let idx = lab.a.ifindex();
    let err = lab.a.run(|| async move {
        let vips = VipManager::new().await.unwrap();
        vips.add(idx, ip("224.0.0.18"))
            .await
            .unwrap_err()
            .to_string()
    });
    assert_eq!(
        err,
        "224.0.0.18 cannot be used as a VIP: it is a multicast address"
    );
}

#[test]
fn adding_to_a_missing_interface_names_the_index_and_the_kernel_error() {
    let lab = Lab::new();
    let err = lab.a.run(|| async move {
        let vips = VipManager::new().await.unwrap();
        vips.add(999, ip("192.0.2.100"))
            .await
            .unwrap_err()
            .to_string()
    });
    assert!(
        err.starts_with("netlink: adding VIP 192.0.2.100/32 to if999 (index 999) failed:"),
        "{err}"
    );
}

#[test]
fn watch_reports_a_vip_deleted_with_ip_addr_del() {
    let lab = Lab::new();
    let idx = lab.a.ifindex();
    let ns = &lab.a;
    let event = ns.run(|| async move {
        let vips = VipManager::new().await.unwrap();
        vips.add(idx, ip("192.0.2.100")).await.unwrap();
        let mut events = vips.watch().await.unwrap();
        ns.ip(&["addr", "del", "192.0.2.100/32", "dev", "va"]);
        timeout(TIMEOUT, async {
            loop {
                let e = events.recv().await.expect("watch channel closed");
                if e.kind == AddressEventKind::Removed {
                    return e;
                }
            }
        })
        .await
        .expect("no deletion event within the timeout")
    });
    assert_eq!(
        event,
        AddressEvent {
            kind: AddressEventKind::Removed,
            ifindex: idx,
            address: ip("192.0.2.100"),
            prefix_len: 32,
        }
    );
}

#[test]
fn watch_reports_an_ipv6_address_added_by_hand() {
    let lab = Lab::new();
    let idx = lab.a.ifindex();
    let ns = &lab.a;
    let event = ns.run(|| async move {
        let vips = VipManager::new().await.unwrap();
        let mut events = vips.watch().await.unwrap();
        ns.ip(&["addr", "add", "2001:db8::7/64", "dev", "va", "nodad"]);
        timeout(TIMEOUT, events.recv())
            .await
            .expect("no event within the timeout")
            .expect("watch channel closed")
    });
    assert_eq!(
        event,
        AddressEvent {
            kind: AddressEventKind::Added,
            ifindex: idx,
            address: ip("2001:db8::7"),
            prefix_len: 64,
        }
    );
}

#[test]
fn every_watcher_of_the_shared_subscription_gets_each_event_after_another_one_left() {
    let lab = Lab::new();
    let ns = &lab.a;
    let (first, third) = ns.run(|| async move {
        let vips = VipManager::new().await.unwrap();
        let mut one = vips.watch().await.unwrap();
        let two = vips.watch().await.unwrap();
        // A clone shares the subscription too (each instance holds a clone).
        let mut three = vips.clone().watch().await.unwrap();
        drop(two);
        ns.ip(&["addr", "add", "2001:db8::8/64", "dev", "va", "nodad"]);
        let first = timeout(TIMEOUT, one.recv())
            .await
            .expect("no event for the first watcher");
        let third = timeout(TIMEOUT, three.recv())
            .await
            .expect("no event for the third watcher");
        (first, third)
    });
    let first = first.expect("the first watcher's queue closed");
    assert_eq!(first.address, ip("2001:db8::8"));
    assert_eq!(third, Some(first));
}

#[test]
fn interface_by_name_reports_mac_addresses_and_state() {
    let lab = Lab::new();
    let idx = lab.a.ifindex();
    let link_local = lab.a.link_local();
    let info = lab
        .a
        .run(|| async { interface_by_name("va").await.unwrap() });
    assert_eq!(
        info,
        iface::InterfaceInfo {
            ifindex: idx,
            ifname: "va".into(),
            mac: Some(A_MAC),
            primary_v4: Some(A_V4.parse().unwrap()),
            link_local_v6: Some(link_local),
            up: true,
        }
    );
}

#[test]
fn interface_by_index_finds_the_same_interface() {
    let lab = Lab::new();
    let idx = lab.a.ifindex();
    let name = lab
        .a
        .run(|| async move { interface_by_index(idx).await.unwrap().ifname });
    assert_eq!(name, "va");
}

#[test]
fn a_missing_interface_is_reported_with_the_ones_that_exist() {
    let lab = Lab::new();
    let err = lab
        .a
        .run(|| async { interface_by_name("eth9").await.unwrap_err().to_string() });
    assert_eq!(err, "interface eth9 does not exist (seen: lo, va)");
}

#[test]
fn a_missing_interface_index_is_reported_with_the_ones_that_exist() {
    let lab = Lab::new();
    let idx = lab.a.ifindex();
    let err = lab
        .a
        .run(|| async { interface_by_index(999).await.unwrap_err().to_string() });
    assert_eq!(
        err,
        format!("interface index 999 does not exist (seen: lo (index 1), va (index {idx}))")
    );
}

#[test]
fn local_addresses_lists_flags_as_the_kernel_reports_them() {
    let lab = Lab::new();
    let idx = lab.a.ifindex();
    let addrs = lab.a.run(|| async move {
        let vips = VipManager::new().await.unwrap();
        vips.add(idx, ip("2001:db8::100")).await.unwrap();
        iface::local_addresses().await.unwrap()
    });
    let vip = addrs
        .iter()
        .find(|a| a.address == ip("2001:db8::100"))
        .expect("VIP listed");
    assert_eq!(
        (
            vip.ifindex,
            vip.ifname.as_str(),
            vip.prefix_len,
            vip.deprecated,
            vip.tentative
        ),
        (idx, "va", 128, true, false)
    );
    let link_local = addrs
        .iter()
        .find(|a| a.address == std::net::IpAddr::V6(lab.a.link_local()))
        .expect("link-local listed");
    assert!(link_local.link_local);
}

#[test]
fn detect_on_host_picks_the_lab_interface_while_we_hold_the_vip() {
    let lab = Lab::new();
    let idx = lab.a.ifindex();
    let detected = lab.a.run(|| async move {
        let vips = VipManager::new().await.unwrap();
        vips.add(idx, ip("192.0.2.100")).await.unwrap();
        detect_on_host(ip("192.0.2.100"), &[]).await.unwrap()
    });
    assert_eq!(
        detected,
        iface::Detected {
            ifindex: idx,
            ifname: "va".into(),
            local_address: ip(A_V4),
            subnet: (ip("192.0.2.0"), 24),
        }
    );
}
