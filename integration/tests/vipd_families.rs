//! vipd with an IPv6 instance and with unicast peers (OpenShift's layout). Needs root and the
//! vipd binary.

use std::net::IpAddr;
use std::thread;
use std::time::Duration;

use lab::vipd::{self, Peering};
use lab::Lab;

const ADVERT: Duration = Duration::from_secs(1);
const PRIORITIES: [u8; 3] = [70, 40, 40];
const ELECTION: Duration = Duration::from_secs(8);

#[test]
fn ipv6_instance_elects_one_master_holding_a_usable_vip() {
    let lab = Lab::new(3).unwrap();
    let vip: IpAddr = "2001:db8::5".parse().unwrap();
    let _vipd = vipd::start_cluster(&lab, &PRIORITIES, vip, ADVERT, Peering::Multicast).unwrap();
    lab.wait_holder_is(vip, 0, ELECTION).unwrap();
    lab.assert_holder_stays(vip, 0, Duration::from_secs(3))
        .unwrap();
    let held = lab
        .addresses(0)
        .unwrap()
        .into_iter()
        .find(|a| a.addr == vip)
        .unwrap();
    // A tentative or dadfailed VIP would not answer (reference/vrrp.md: add it with NODAD).
    assert!(!held.tentative, "{held:?}");
    assert!(lab.client_reaches(vip, Duration::from_secs(2)).unwrap());
    assert_eq!(
        lab.client_neigh(vip).unwrap(),
        Some(lab.node_mac(0).unwrap())
    );
}

#[test]
fn ipv6_failover_moves_the_clients_neighbour_entry_by_unsolicited_na() {
    let lab = Lab::new(3).unwrap();
    let vip: IpAddr = "2001:db8::5".parse().unwrap();
    let _vipd = vipd::start_cluster(&lab, &PRIORITIES, vip, ADVERT, Peering::Multicast).unwrap();
    lab.wait_holder_is(vip, 0, ELECTION).unwrap();
    assert!(lab.client_reaches(vip, Duration::from_secs(2)).unwrap());
    let prober = lab.prober(vip, Duration::from_millis(10)).unwrap();
    thread::sleep(Duration::from_millis(300));

    lab.cut_link(0).unwrap();
    let new_master = lab
        .wait_single_holder_among(vip, &[1, 2], Duration::from_secs(7))
        .unwrap();
    // The client's entry is REACHABLE and would stay on node 0's MAC for ~30 s without an
    // unsolicited NA with the override flag (RFC 4861 7.2.6).
    lab.wait_client_neigh_is(vip, new_master, Duration::from_secs(2))
        .unwrap();
    let outage = prober.stop().unwrap();
    eprintln!(
        "vipd IPv6 link-cut outage: {:.0} ms",
        outage.longest_gap_ms()
    );
    assert!(
        (2800.0..=5000.0).contains(&outage.longest_gap_ms()),
        "{outage:?}"
    );
}

#[test]
fn unicast_peers_elect_one_master_and_fail_over() {
    let lab = Lab::new(3).unwrap();
    let vip: IpAddr = "192.0.2.5".parse().unwrap();
    let mut vipd = vipd::start_cluster(&lab, &PRIORITIES, vip, ADVERT, Peering::Unicast).unwrap();
    lab.wait_holder_is(vip, 0, ELECTION).unwrap();
    lab.assert_holder_stays(vip, 0, Duration::from_secs(3))
        .unwrap();

    vipd[0].terminate(Duration::from_secs(5)).unwrap();
    let new_master = lab.wait_single_holder(vip, Duration::from_secs(3)).unwrap();
    assert!(
        new_master == 1 || new_master == 2,
        "VIP on node {new_master}"
    );
    lab.assert_holder_stays(vip, new_master, Duration::from_secs(2))
        .unwrap();
    lab.wait_client_neigh_is(vip, new_master, Duration::from_secs(2))
        .unwrap();
}
