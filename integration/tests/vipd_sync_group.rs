//! `[[sync_group]]` (keepalived's `vrrp_sync_group`, rendered by OpenShift for dual-stack VIPs on
//! OpenStack): instances that move together. Needs root, the vipd binary and lab-responder.
//!
//! Two nodes, two instances each ("api-a" 192.0.2.5 on VRID 14, "api-b" 192.0.2.6 on VRID 15),
//! priorities 100 on node 0 and 50 on node 1, in one group. Only node 0's api-a tracks a check
//! (weight 0: a failure is FAULT). Without the group, a failing check would move 192.0.2.5 alone
//! and split the pair across the nodes; with it, both move, and both come back.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lab::scenarios::{self, HttpCheck, NodeConfig, Track};
use lab::vipd::Instance;
use lab::{Lab, Proc};
use nix::sys::signal::Signal;

const RESPONDER: &str = env!("CARGO_BIN_EXE_lab-responder");
const ADVERT: Duration = Duration::from_secs(1);

fn vip_a() -> IpAddr {
    "192.0.2.5".parse().unwrap()
}

fn vip_b() -> IpAddr {
    "192.0.2.6".parse().unwrap()
}

fn endpoint() -> SocketAddr {
    "127.0.0.1:9444".parse().unwrap()
}

fn config(lab: &Lab, i: usize) -> NodeConfig {
    let priority = if i == 0 { 100 } else { 50 };
    let peer = lab.node(1 - i).ipv4().into();
    let me = lab.node(i).ipv4().into();
    let instance = |name: &str, vip: IpAddr, vrid: u8| {
        let mut inst = Instance::new(vip, priority, ADVERT);
        inst.name = name.into();
        inst.vrid = Some(vrid);
        inst.unicast_source = Some(me);
        inst.unicast_peers = vec![peer];
        inst
    };
    let track = if i == 0 {
        vec![Track {
            check: "chk_api".into(),
            weight: Some(0),
        }]
    } else {
        Vec::new()
    };
    NodeConfig {
        checks: if i == 0 {
            vec![HttpCheck {
                name: "chk_api".into(),
                url: format!("http://{}/readyz", endpoint()),
                interval: Duration::from_millis(500),
                rise: 2,
                fall: 2,
                weight: 0,
            }]
        } else {
            Vec::new()
        },
        instances: vec![
            (instance("api-a", vip_a(), 14), track),
            (instance("api-b", vip_b(), 15), Vec::new()),
        ],
        sync_groups: vec![("VG_API".into(), vec!["api-a".into(), "api-b".into()])],
        ..NodeConfig::new()
    }
}

#[test]
fn a_fault_of_one_member_moves_the_whole_group_and_it_comes_back_together() {
    let lab = Lab::new(2).unwrap();
    let responder = scenarios::start_http_responder(lab.node(0), RESPONDER, endpoint()).unwrap();
    let _vipd: Vec<Proc> = (0..2)
        .map(|i| scenarios::start(lab.node(i), &config(&lab, i)).unwrap())
        .collect();
    let election = Duration::from_secs(8);
    lab.wait_holder_is(vip_a(), 0, election).unwrap();
    lab.wait_holder_is(vip_b(), 0, election).unwrap();

    // Node 0's check fails: api-a goes to FAULT, and api-b with it.
    responder.signal(Signal::SIGKILL).unwrap();
    let moved = Duration::from_secs(6);
    lab.wait_holder_is(vip_a(), 1, moved).unwrap();
    lab.wait_holder_is(vip_b(), 1, moved).unwrap();
    scenarios::wait_instance(lab.node(0), "api-b", moved, "FAULT with api-a", |s| {
        s["state"] == "FAULT"
    })
    .unwrap();

    // The check recovers: both leave FAULT and node 0 (priority 100) takes both back.
    let _responder = scenarios::start_http_responder(lab.node(0), RESPONDER, endpoint()).unwrap();
    lab.wait_holder_is(vip_a(), 0, election).unwrap();
    lab.wait_holder_is(vip_b(), 0, election).unwrap();
}
