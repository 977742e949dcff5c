//! Adverts that must not move a VIP (issue 14, docs/security.md): forged adverts from a host that
//! is nobody's unicast peer, and another cluster's adverts on our VRID (RFC 9568 section 7.1).
//! Needs root and the vipd binary (`$VIPD_BIN` or target/debug/vipd).
//!
//! 1 s adverts, VRRPv3, VRID 14. Node 2 is the outsider in both scenarios.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use nix::sys::signal::Signal;

use lab::scenarios::{self, NodeConfig};
use lab::vipd::{self as labvipd, Instance, Peering};
use lab::{Lab, Proc};

const ADVERT: Duration = Duration::from_secs(1);
const ELECTION: Duration = Duration::from_secs(8);
const FORGED: u32 = 30;
const FORGE_SPACING_MS: u32 = 100;

fn vip() -> IpAddr {
    "192.0.2.5".parse().unwrap()
}

fn metrics_listen() -> SocketAddr {
    "192.0.2.11:18080".parse().unwrap()
}

/// `lab-forge` in node 2: `FORGED` VRRPv3 adverts for VRID 14 / the VIP, `priority`, to `dst`.
fn forge(lab: &Lab, dst: IpAddr, priority: u8) -> Proc {
    let src = lab.node(2).ipv4().to_string();
    let dst = dst.to_string();
    let vip = vip().to_string();
    let (priority, count, spacing) = (
        priority.to_string(),
        FORGED.to_string(),
        FORGE_SPACING_MS.to_string(),
    );
    lab.node(2)
        .spawn(
            "forge",
            &[
                env!("CARGO_BIN_EXE_lab-forge"),
                "--src",
                &src,
                "--dst",
                &dst,
                "--vrid",
                "14",
                "--vip",
                &vip,
                "--priority",
                &priority,
                "--count",
                &count,
                "--interval-ms",
                &spacing,
            ],
        )
        .unwrap()
}

/// Waits for `lab-forge` to print `sent N`.
fn wait_forged(proc: &mut Proc) {
    let done = lab::wait_until(Duration::from_secs(10), || {
        Ok(proc.log().contains(&format!("sent {FORGED}")).then_some(()))
    })
    .unwrap();
    assert!(done.is_some(), "lab-forge did not finish: {}", proc.log());
}

fn unicast_config(lab: &Lab, i: usize, check_source: Option<bool>) -> NodeConfig {
    let mut inst = labvipd::cluster_instance(lab, i, &[100, 50], vip(), ADVERT, Peering::Unicast);
    inst.check_source = check_source;
    NodeConfig {
        instances: vec![(inst, Vec::new())],
        http: (i == 0).then(metrics_listen),
        ..NodeConfig::new()
    }
}

#[test]
fn forged_owner_adverts_from_a_host_that_is_no_peer_leave_the_vip_where_it_is() {
    let lab = Lab::new(3).unwrap();
    // Nodes 0 and 1 are unicast peers of each other (sources checked by default); node 2 is on
    // the segment but in nobody's list.
    let mut vipd: Vec<Proc> = (0..2)
        .map(|i| scenarios::start(lab.node(i), &unicast_config(&lab, i, None)).unwrap())
        .collect();
    lab.wait_holder_is(vip(), 0, ELECTION).unwrap();
    scenarios::wait_instance(lab.node(1), "api", ELECTION, "node 0 as Master", |s| {
        s["master"]["address"] == "192.0.2.11"
    })
    .unwrap();

    // The attack of issue 14: priority-255 adverts to the Master (it would step down at once)
    // and priority-0 adverts to the Backup (it would take over after Skew_Time).
    let mut to_master = forge(&lab, lab.node(0).ipv4().into(), 255);
    let mut to_backup = forge(&lab, lab.node(1).ipv4().into(), 0);
    let attack = Duration::from_millis(u64::from(FORGED * FORGE_SPACING_MS)) + ADVERT;
    lab.assert_holder_stays(vip(), 0, attack).unwrap();
    wait_forged(&mut to_master);
    wait_forged(&mut to_backup);

    let master = scenarios::instance_status(lab.node(0), "api").unwrap();
    assert_eq!(master["state"], "MASTER");
    assert_eq!(master["counters"]["transitions"], 2, "{master:#}");
    assert_eq!(
        master["counters"]["drops"]["unknown_source"], FORGED,
        "{master:#}"
    );
    let outsider = master["peers"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["address"] == "192.0.2.13"))
        .unwrap_or_else(|| panic!("192.0.2.13 not listed: {master:#}"));
    assert_eq!(
        outsider["conflict"],
        "adverts dropped (unknown_source): the sender is neither a unicast peer nor in accept_from"
    );
    let backup = scenarios::instance_status(lab.node(1), "api").unwrap();
    assert_eq!(backup["state"], "BACKUP");
    assert_eq!(
        backup["counters"]["drops"]["unknown_source"], FORGED,
        "{backup:#}"
    );
    let (code, body) = scenarios::http_get(
        lab.client(),
        &format!("http://{}/metrics", metrics_listen()),
    )
    .unwrap();
    assert_eq!(code, 200);
    let line =
        format!("vipd_vrrp_dropped_total{{instance=\"api\",reason=\"unknown_source\"}} {FORGED}");
    assert!(body.lines().any(|l| l == line), "{line} missing:\n{body}");

    // The same attack with check_source = false (keepalived's default) does move the Master:
    // the check above is what stopped it.
    scenarios::write_config(lab.node(0), &unicast_config(&lab, 0, Some(false))).unwrap();
    vipd[0].signal(Signal::SIGHUP).unwrap();
    scenarios::wait_instance(
        lab.node(0),
        "api",
        Duration::from_secs(3),
        "check_source off",
        |s| {
            s["mode"]
                .as_str()
                .is_some_and(|m| m.ends_with("adverts from any source"))
        },
    )
    .unwrap();
    let mut again = forge(&lab, lab.node(0).ipv4().into(), 255);
    let moved = lab::wait_until(Duration::from_secs(3), || {
        Ok((!lab.who_has(vip())?.contains(&0)).then_some(()))
    })
    .unwrap();
    assert!(
        moved.is_some(),
        "node 0 kept the VIP against forged adverts with check_source = false: the attack in this \
         test is not effective, so the first half proves nothing"
    );
    wait_forged(&mut again);
    for p in &mut vipd {
        p.terminate(Duration::from_secs(5)).unwrap();
    }
}

#[test]
fn another_cluster_with_a_higher_priority_on_our_vrid_cannot_silence_us_and_both_hold_their_vips() {
    let lab = Lab::new(3).unwrap();
    // Cluster A: nodes 0 and 1, VIP .5, priorities 70 / 40, multicast. Cluster B: node 2, VIP .6,
    // priority 100, the same VRID 14 (two cluster names whose fletcher8 VRIDs collide).
    let ours = |i: usize| {
        let inst = labvipd::cluster_instance(&lab, i, &[70, 40], vip(), ADVERT, Peering::Multicast);
        NodeConfig {
            instances: vec![(inst, Vec::new())],
            http: (i == 0).then(metrics_listen),
            ..NodeConfig::new()
        }
    };
    let theirs_vip: IpAddr = "192.0.2.6".parse().unwrap();
    let theirs = NodeConfig {
        cluster_name: "other".into(),
        instances: vec![(Instance::new(theirs_vip, 100, ADVERT), Vec::new())],
        ..NodeConfig::new()
    };
    let mut procs = vec![scenarios::start(lab.node(2), &theirs).unwrap()];
    lab.wait_holder_is(theirs_vip, 2, ELECTION).unwrap();
    for i in 0..2 {
        procs.push(scenarios::start(lab.node(i), &ours(i)).unwrap());
    }
    lab.wait_holder_is(vip(), 0, ELECTION).unwrap();
    // Both stay put for three advert intervals: nobody obeys the other cluster.
    lab.assert_holder_stays(vip(), 0, 3 * ADVERT).unwrap();
    assert_eq!(lab.who_has(theirs_vip).unwrap(), vec![2]);

    let api = scenarios::instance_status(lab.node(0), "api").unwrap();
    assert_eq!(api["state"], "MASTER");
    let other = api["peers"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["address"] == "192.0.2.13"))
        .unwrap_or_else(|| panic!("192.0.2.13 not listed: {api:#}"));
    assert_eq!(
        other["conflict"],
        "adverts dropped (address_list_mismatch): another cluster or a misconfigured router uses this VRID"
    );
    let backup = scenarios::instance_status(lab.node(1), "api").unwrap();
    assert_eq!(backup["state"], "BACKUP");
    assert_eq!(backup["master"]["address"], "192.0.2.11", "{backup:#}");
    let theirs_status = scenarios::instance_status(lab.node(2), "api").unwrap();
    assert_eq!(theirs_status["state"], "MASTER");

    let (code, body) = scenarios::http_get(
        lab.client(),
        &format!("http://{}/metrics", metrics_listen()),
    )
    .unwrap();
    assert_eq!(code, 200);
    assert!(
        body.lines()
            .any(|l| l == "vipd_vrrp_peer_conflict{instance=\"api\",peer=\"192.0.2.13\"} 1"),
        "{body}"
    );
    assert!(
        body.lines().any(|l| l.starts_with(
            "vipd_vrrp_dropped_total{instance=\"api\",reason=\"address_list_mismatch\"} "
        )),
        "{body}"
    );

    // Our Master stops: it resigns to our own Backup, whose take-over the other cluster's
    // adverts do not end or prevent.
    procs[1].terminate(Duration::from_secs(5)).unwrap();
    lab.wait_holder_is(vip(), 1, ELECTION).unwrap();
    assert_eq!(lab.who_has(theirs_vip).unwrap(), vec![2]);
}
