//! Mixed clusters: vipd and real keepalived 2.2.7 on the same VRID elect one Master and fail
//! over in both directions, in the three dialects OpenShift clusters speak. Needs root and the
//! vipd binary.
//!
//! Each test: vipd (node 0, 70) + keepalived (node 1, 40). keepalived must stay Backup past its
//! Master_Down_Interval (it accepts vipd's adverts); SIGTERM on vipd hands over to keepalived
//! within Skew_Time (it understood priority 0). Then vipd comes back at 30: it must stay Backup
//! (it accepts keepalived's adverts), and SIGTERM on keepalived hands back to vipd.

use std::net::IpAddr;
use std::time::Duration;

use lab::keepalived::{self, Version};
use lab::vipd;
use lab::Lab;

const ADVERT: Duration = Duration::from_secs(1);

#[derive(Clone, Copy)]
enum Dialect {
    /// VRRPv3 over IPv4, checksum with the IPv4 pseudo-header (keepalived's only form in 2.2.7).
    V3Ipv4,
    V3Ipv6,
    /// VRRPv2, PASS authentication, unicast: what OpenShift renders for IPv4 today.
    V2PassUnicast,
}

fn vip(d: Dialect) -> IpAddr {
    match d {
        Dialect::V3Ipv6 => "2001:db8::5".parse().unwrap(),
        _ => "192.0.2.5".parse().unwrap(),
    }
}

fn vipd_instance(lab: &Lab, d: Dialect, priority: u8) -> vipd::Instance {
    let mut i = vipd::Instance::new(vip(d), priority, ADVERT);
    match d {
        Dialect::V3Ipv4 => i.checksum = Some("pseudo-header".into()),
        Dialect::V3Ipv6 => {}
        Dialect::V2PassUnicast => {
            i.version = 2;
            i.password = Some("ostest_api_vip".into());
            i.unicast_source = Some(lab.node(0).ipv4().into());
            i.unicast_peers = vec![lab.node(1).ipv4().into()];
        }
    }
    i
}

fn keepalived_instance(lab: &Lab, d: Dialect, priority: u8) -> keepalived::Instance {
    let v2 = matches!(d, Dialect::V2PassUnicast);
    keepalived::Instance {
        name: "ostest_API".into(),
        vrid: 14,
        priority,
        advert: ADVERT,
        version: if v2 { Version::V2 } else { Version::V3 },
        vip: vip(d),
        password: v2.then(|| "ostest_api_vip".into()),
        unicast_src: v2.then(|| lab.node(1).ipv4().into()),
        unicast_peers: if v2 {
            vec![lab.node(0).ipv4().into()]
        } else {
            vec![]
        },
        track_bfd: None,
    }
}

fn elects_one_master_and_fails_over_both_ways(d: Dialect) {
    let lab = Lab::new(2).unwrap();
    let v = vip(d);
    let mut vipd_proc = vipd::start(lab.node(0), &[vipd_instance(&lab, d, 70)]).unwrap();
    let mut ka = keepalived::start(lab.node(1), &[keepalived_instance(&lab, d, 40)]).unwrap();

    lab.wait_holder_is(v, 0, Duration::from_secs(8)).unwrap();
    // keepalived's Master_Down_Interval at 40 is 3.844 s from its start; watch past it.
    lab.assert_holder_stays(v, 0, Duration::from_secs(4))
        .unwrap();
    lab.wait_client_neigh_is(v, 0, Duration::from_secs(2))
        .unwrap();

    // vipd -> keepalived: a priority-0 advert makes keepalived wait only Skew_Time (0.844 s),
    // well before the 3.844 s it would take without understanding it.
    vipd_proc.terminate(Duration::from_secs(5)).unwrap();
    lab.wait_holder_is(v, 1, Duration::from_millis(2500))
        .unwrap();
    lab.wait_client_neigh_is(v, 1, Duration::from_secs(2))
        .unwrap();

    // vipd back at 30: it must hear keepalived's 40 and stay Backup past its own 3.883 s.
    vipd_proc = vipd::start(lab.node(0), &[vipd_instance(&lab, d, 30)]).unwrap();
    lab.assert_holder_stays(v, 1, Duration::from_secs(5))
        .unwrap();

    // keepalived -> vipd.
    ka.terminate(Duration::from_secs(5)).unwrap();
    lab.wait_holder_is(v, 0, Duration::from_millis(2500))
        .unwrap();
    lab.wait_client_neigh_is(v, 0, Duration::from_secs(2))
        .unwrap();
    drop(vipd_proc);
}

#[test]
fn vipd_and_keepalived_v3_ipv4_with_keepalived_checksum_fail_over_both_ways() {
    elects_one_master_and_fails_over_both_ways(Dialect::V3Ipv4);
}

#[test]
fn vipd_and_keepalived_v3_ipv6_fail_over_both_ways() {
    elects_one_master_and_fails_over_both_ways(Dialect::V3Ipv6);
}

#[test]
fn vipd_and_keepalived_v2_pass_unicast_fail_over_both_ways() {
    elects_one_master_and_fails_over_both_ways(Dialect::V2PassUnicast);
}
