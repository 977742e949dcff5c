//! What an operator does with a running vipd, in a 3-node lab: `vipd status` (table and JSON),
//! SIGHUP and `vipd reload`, `vipd resign` / `vipd resume`, a second cluster on our VRID, and an
//! unclean restart. Needs root and the vipd binary.
//!
//! Priorities 70/40/40 as on an OpenShift bootstrap + masters; 1 s adverts, VRRPv3 multicast.
//! Timer figures (RFC 9568 6.1): Master_Down_Interval = 3 s + Skew_Time, Skew_Time =
//! (256 - priority) / 256 s: 3.727 s at 70, 3.844 s at 40.

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::thread;
use std::time::Duration;

use nix::sys::signal::Signal;

use lab::scenarios::{self, NodeConfig};
use lab::vipd::{self as labvipd, Instance, Peering};
use lab::{Lab, Proc};

const ADVERT: Duration = Duration::from_secs(1);
const PRIORITIES: [u8; 3] = [70, 40, 40];
const ELECTION: Duration = Duration::from_secs(8);
/// A reload or a control request is handled within milliseconds; this bounds a slow machine.
const PROMPT: Duration = Duration::from_secs(3);

fn vip() -> IpAddr {
    "192.0.2.5".parse().unwrap()
}

/// `[http]` of node 0, on its lab address so the client can scrape it.
fn metrics_listen() -> SocketAddr {
    "192.0.2.11:18080".parse().unwrap()
}

fn node_config(lab: &Lab, i: usize) -> NodeConfig {
    let inst = labvipd::cluster_instance(lab, i, &PRIORITIES, vip(), ADVERT, Peering::Multicast);
    NodeConfig {
        instances: vec![(inst, Vec::new())],
        http: (i == 0).then(metrics_listen),
        ..NodeConfig::new()
    }
}

/// vipd on the three nodes; returns once node 0 holds the VIP and both Backups have heard it.
fn start_cluster(lab: &Lab) -> Vec<Proc> {
    let procs: Vec<Proc> = (0..3)
        .map(|i| scenarios::start(lab.node(i), &node_config(lab, i)).unwrap())
        .collect();
    lab.wait_holder_is(vip(), 0, ELECTION).unwrap();
    for i in 1..3 {
        scenarios::wait_instance(lab.node(i), "api", ELECTION, "node 0 as Master", |s| {
            s["master"]["address"] == "192.0.2.11"
        })
        .unwrap();
    }
    procs
}

fn reloads(lab: &Lab, i: usize) -> serde_json::Value {
    scenarios::status_json(lab.node(i)).unwrap()["reloads"].clone()
}

#[test]
fn status_shows_state_effective_priority_master_and_the_vips_held() {
    let lab = Lab::new(3).unwrap();
    let _vipd = start_cluster(&lab);

    let master = scenarios::instance_status(lab.node(0), "api").unwrap();
    assert_eq!(master["state"], "MASTER");
    assert_eq!(master["effective_priority"], 70);
    assert_eq!(master["base_priority"], 70);
    assert_eq!(master["holding_vips"], true);
    assert_eq!(master["vips"], serde_json::json!(["192.0.2.5"]));
    assert_eq!(master["vrid"], 14);
    let backup = scenarios::instance_status(lab.node(1), "api").unwrap();
    assert_eq!(backup["state"], "BACKUP");
    assert_eq!(backup["effective_priority"], 40);
    assert_eq!(backup["holding_vips"], false);
    assert_eq!(backup["master"]["address"], "192.0.2.11");
    assert_eq!(backup["master"]["priority"], 70);

    let table = scenarios::ctl(lab.node(0), &["status"]).unwrap();
    assert!(table.success, "{}", table.stderr);
    for line in [
        "instance api  VRID 14  VRRPv3  multicast  on eth0 from 192.0.2.11",
        "  state      MASTER   VIPs 192.0.2.5 (held here)",
        "  priority   70 effective (base 70)   advert interval 1000 ms",
    ] {
        assert!(
            table.stdout.lines().any(|l| l == line),
            "no line {line:?} in:\n{}",
            table.stdout
        );
    }
    let table = scenarios::ctl(lab.node(1), &["status"]).unwrap();
    for line in [
        "  state      BACKUP   VIPs 192.0.2.5 (not held here)",
        "  priority   40 effective (base 40)   advert interval 1000 ms",
    ] {
        assert!(
            table.stdout.lines().any(|l| l == line),
            "no line {line:?} in:\n{}",
            table.stdout
        );
    }
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with("  master     192.0.2.11 priority 70, last advert ")),
        "{}",
        table.stdout
    );
}

#[test]
fn sighup_with_an_unchanged_config_keeps_the_master_without_a_vip_flap() {
    let lab = Lab::new(3).unwrap();
    let vipd = start_cluster(&lab);
    assert!(lab.client_reaches(vip(), Duration::from_secs(2)).unwrap());
    let before = scenarios::instance_status(lab.node(0), "api").unwrap();
    let prober = lab.prober(vip(), Duration::from_millis(10)).unwrap();
    thread::sleep(Duration::from_millis(300));

    vipd[0].signal(Signal::SIGHUP).unwrap();
    // Two advert intervals: long enough for a restarted instance to have dropped the VIP.
    lab.assert_holder_stays(vip(), 0, 2 * ADVERT).unwrap();
    let outage = prober.stop().unwrap();

    assert_eq!(reloads(&lab, 0)["ok"], 1);
    assert_eq!(reloads(&lab, 0)["failed"], 0);
    let after = scenarios::instance_status(lab.node(0), "api").unwrap();
    assert_eq!(after["state"], "MASTER");
    assert_eq!(
        after["counters"]["transitions"],
        before["counters"]["transitions"]
    );
    assert!(
        vipd[0].log().contains("reloaded: instances 1 unchanged"),
        "{}",
        vipd[0].log()
    );
    eprintln!("SIGHUP, unchanged config: {outage:?}");
    assert_eq!(outage.lost, 0, "{outage:?}");
    assert_eq!(outage.duplicates, 0, "{outage:?}");
}

#[test]
fn sighup_with_a_broken_config_keeps_running_and_status_shows_the_reload_error() {
    let lab = Lab::new(3).unwrap();
    let mut vipd = start_cluster(&lab);
    let path = scenarios::config_path(lab.node(0)).unwrap();
    let good = fs::read_to_string(&path).unwrap();
    fs::write(&path, good.replace("priority = 70", "priority = 0")).unwrap();

    vipd[0].signal(Signal::SIGHUP).unwrap();
    let mut last = serde_json::Value::Null;
    let failed = lab::wait_until(PROMPT, || {
        last = reloads(&lab, 0);
        Ok((last["failed"] == 1).then_some(()))
    })
    .unwrap();
    assert!(failed.is_some(), "no failed reload counted: {last}");
    let error = last["last_error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.contains(&*path.to_string_lossy()) && error.contains("priority"),
        "the reload error should name the file and the key: {error}"
    );
    assert!(vipd[0].is_running());
    let api = scenarios::instance_status(lab.node(0), "api").unwrap();
    assert_eq!(api["state"], "MASTER");
    assert_eq!(api["base_priority"], 70);
    lab.assert_holder_stays(vip(), 0, ADVERT).unwrap();
    let table = scenarios::ctl(lab.node(0), &["status"]).unwrap();
    assert!(
        table.stdout.contains(&format!(
            "LAST RELOAD FAILED (running configuration kept): {error}"
        )),
        "{}",
        table.stdout
    );
}

#[test]
fn vipd_reload_reports_a_refused_and_then_an_applied_configuration() {
    let lab = Lab::new(3).unwrap();
    let _vipd = start_cluster(&lab);
    let path = scenarios::config_path(lab.node(0)).unwrap();
    let good = fs::read_to_string(&path).unwrap();

    fs::write(&path, good.replace("priority = 70", "priority = 0")).unwrap();
    let refused = scenarios::ctl(lab.node(0), &["reload"]).unwrap();
    assert!(!refused.success, "{refused:?}");
    assert!(
        refused.stderr.contains(&*path.to_string_lossy()) && refused.stderr.contains("priority"),
        "{refused:?}"
    );

    // A new priority keeps the instance's identity: it is updated in place.
    fs::write(&path, good.replace("priority = 70", "priority = 80")).unwrap();
    let applied = scenarios::ctl(lab.node(0), &["reload"]).unwrap();
    assert!(applied.success, "{applied:?}");
    assert_eq!(
        applied.stdout.trim(),
        format!(
            "configuration {} reloaded: instances 1 updated in place",
            path.display()
        )
    );
    let api = scenarios::instance_status(lab.node(0), "api").unwrap();
    assert_eq!(api["base_priority"], 80);
    assert_eq!(api["effective_priority"], 80);
    assert_eq!(reloads(&lab, 0)["ok"], 1);
    assert_eq!(reloads(&lab, 0)["failed"], 1);
    assert_eq!(reloads(&lab, 0)["last_error"], serde_json::Value::Null);
    lab.assert_holder_stays(vip(), 0, ADVERT).unwrap();
}

#[test]
fn vipd_resign_hands_over_make_before_break_and_vipd_resume_preempts_back() {
    let lab = Lab::new(3).unwrap();
    let _vipd = start_cluster(&lab);
    assert!(lab.client_reaches(vip(), Duration::from_secs(2)).unwrap());
    let prober = lab.prober(vip(), Duration::from_millis(10)).unwrap();
    thread::sleep(Duration::from_millis(300));

    // The reply comes once a Backup has taken over and node 0 has released the VIP.
    let resign = scenarios::ctl(lab.node(0), &["resign", "api"]).unwrap();
    assert!(resign.success, "{resign:?}");
    let new_master = lab.wait_single_holder(vip(), PROMPT).unwrap();
    assert!(
        new_master == 1 || new_master == 2,
        "VIP on node {new_master}"
    );
    lab.wait_client_neigh_is(vip(), new_master, Duration::from_secs(2))
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    let outage = prober.stop().unwrap();
    eprintln!(
        "vipd resign: {:?} unanswered at most, longest reply gap {:.1} ms, {} lost; reply {:?}",
        outage.longest_unanswered,
        outage.longest_gap_ms(),
        outage.lost,
        resign.stdout.trim()
    );
    // The reply's tail (how to rejoin) is worded by the daemon; what it confirms is fixed.
    assert!(
        resign
            .stdout
            .starts_with("instance api: resigned; VIPs released; "),
        "{resign:?}"
    );
    // Counted in probes: at most one 10 ms probe unanswered.
    assert!(
        outage.longest_unanswered <= Duration::from_millis(20),
        "{outage:?}"
    );
    assert_eq!(
        scenarios::instance_status(lab.node(0), "api").unwrap()["state"],
        "RESIGNED"
    );
    // Resigned means out of the election for good, not for one Master_Down_Interval.
    lab.assert_holder_stays(vip(), new_master, Duration::from_secs(5))
        .unwrap();

    let resume = scenarios::ctl(lab.node(0), &["resume", "api"]).unwrap();
    assert!(resume.success, "{resume:?}");
    lab.wait_holder_is(vip(), 0, ELECTION).unwrap();
    lab.wait_client_neigh_is(vip(), 0, Duration::from_secs(2))
        .unwrap();
}

#[test]
fn a_second_cluster_on_our_vrid_is_listed_as_a_conflicting_peer_and_exported_as_a_metric() {
    let lab = Lab::new(3).unwrap();
    // Ours on nodes 0 and 1: VRRPv2 as OpenShift renders it. Node 2 is another cluster whose
    // name derives the same VRID: other VIP, other password (only the first 8 bytes count,
    // "ostest_a" against "other_ap").
    let mut procs = Vec::new();
    for i in 0..2 {
        let mut config = node_config(&lab, i);
        config.instances[0].0.version = 2;
        config.instances[0].0.password = Some("ostest_api_vip".into());
        procs.push(scenarios::start(lab.node(i), &config).unwrap());
    }
    let mut theirs = Instance::new("192.0.2.6".parse().unwrap(), 50, ADVERT);
    theirs.version = 2;
    theirs.password = Some("other_api_vip".into());
    let config = NodeConfig {
        cluster_name: "other".into(),
        instances: vec![(theirs, Vec::new())],
        ..NodeConfig::new()
    };
    procs.push(scenarios::start(lab.node(2), &config).unwrap());

    lab.wait_holder_is(vip(), 0, ELECTION).unwrap();
    let api = scenarios::wait_instance(
        lab.node(0),
        "api",
        ELECTION,
        "a conflicting peer 192.0.2.13",
        |s| {
            s["peers"].as_array().is_some_and(|peers| {
                peers
                    .iter()
                    .any(|p| p["address"] == "192.0.2.13" && p["conflict"].is_string())
            })
        },
    )
    .unwrap();
    let peers = api["peers"].as_array().unwrap();
    let other = peers.iter().find(|p| p["address"] == "192.0.2.13").unwrap();
    assert_eq!(
        other["conflict"],
        "adverts dropped (auth_mismatch): another cluster or a misconfigured router uses this VRID"
    );
    // Our own Backup is a peer too, and no conflict.
    if let Some(ours) = peers.iter().find(|p| p["address"] == "192.0.2.12") {
        assert_eq!(ours["conflict"], serde_json::Value::Null, "{api:#}");
    }

    let url = format!("http://{}/metrics", metrics_listen());
    let (code, body) = scenarios::http_get(lab.client(), &url).unwrap();
    assert_eq!(code, 200);
    assert!(
        body.lines()
            .any(|l| l == "vipd_vrrp_peer_conflict{instance=\"api\",peer=\"192.0.2.13\"} 1"),
        "{body}"
    );
    assert!(
        !body.contains("peer=\"192.0.2.12\""),
        "our own Backup is not a conflict: {body}"
    );
    // The other cluster's adverts are dropped, so ours is undisturbed.
    lab.assert_holder_stays(vip(), 0, ADVERT).unwrap();
    assert_eq!(lab.who_has("192.0.2.6".parse().unwrap()).unwrap(), vec![2]);
}

#[test]
fn sigkill_of_the_master_then_restart_removes_its_stale_vip_and_leaves_one_holder() {
    let lab = Lab::new(3).unwrap();
    let mut vipd = start_cluster(&lab);

    // An unclean death cannot remove the VIP: node 0 keeps it while a Backup takes over.
    vipd[0].kill();
    let mut last = Vec::new();
    let takeover = lab::wait_until(Duration::from_secs(7), || {
        last = lab.who_has(vip())?;
        Ok((last.len() == 2 && last[0] == 0).then(|| last[1]))
    })
    .unwrap();
    let new_master =
        takeover.unwrap_or_else(|| panic!("expected node 0 (stale) and a Backup, saw {last:?}"));

    let log_before = vipd[0].log().len();
    vipd[0] = scenarios::start(lab.node(0), &node_config(&lab, 0)).unwrap();
    // The stale VIP goes before the instance starts; then node 0 preempts back.
    lab.wait_holder_is(vip(), new_master, Duration::from_secs(2))
        .unwrap();
    let restarted_log = vipd[0].log()[log_before..].to_string();
    let stale: Vec<&str> = restarted_log
        .lines()
        .filter(|l| l.contains("removed a VIP left behind by an earlier run"))
        .collect();
    assert_eq!(stale.len(), 1, "{restarted_log}");
    assert!(stale[0].contains("vip=192.0.2.5"), "{}", stale[0]);

    lab.wait_holder_is(vip(), 0, ELECTION).unwrap();
    lab.assert_holder_stays(vip(), 0, Duration::from_secs(2))
        .unwrap();
    lab.wait_client_neigh_is(vip(), 0, Duration::from_secs(2))
        .unwrap();
}

#[test]
fn a_second_vipd_on_the_same_node_is_refused_and_leaves_the_masters_vip_alone() {
    let lab = Lab::new(3).unwrap();
    let vipd = start_cluster(&lab);

    // The same config started again on the Master's node (an operator running `vipd run` by
    // hand beside the unit): it must stop before it touches the interface.
    let bin = labvipd::binary().unwrap();
    let conf = scenarios::config_path(lab.node(0)).unwrap();
    let mut second = lab
        .node(0)
        .spawn(
            "vipd-second",
            &[
                &bin.to_string_lossy(),
                "run",
                "--config",
                &conf.to_string_lossy(),
            ],
        )
        .unwrap();
    let exited = lab::wait_until(PROMPT, || Ok((!second.is_running()).then_some(()))).unwrap();
    assert!(exited.is_some(), "the second vipd is still running");
    let refused = second.log();
    assert!(
        refused.contains("another vipd is already running"),
        "{refused}"
    );
    assert!(
        !refused.contains("removed a VIP left behind"),
        "the second vipd removed the running Master's VIP:\n{refused}"
    );

    lab.assert_holder_stays(vip(), 0, 2 * ADVERT).unwrap();
    let first = vipd[0].log();
    assert!(
        !first.contains("removed from the interface by someone else"),
        "the VIP was taken off the running Master:\n{first}"
    );
    // The refused start did not take the control socket from the running daemon.
    assert_eq!(
        scenarios::instance_status(lab.node(0), "api").unwrap()["state"],
        "MASTER"
    );
}

#[test]
fn a_vip_deleted_by_hand_on_the_master_is_restored_and_counted() {
    let lab = Lab::new(3).unwrap();
    let vipd = start_cluster(&lab);

    // Someone (a script, a network manager) deletes the VIP under the running Master: the
    // address watch sees it and the Master puts it back and announces it, staying Master.
    lab.node(0)
        .exec(&["ip", "addr", "del", "192.0.2.5/32", "dev", "eth0"])
        .unwrap();
    lab.wait_holder_is(vip(), 0, PROMPT).unwrap();
    lab.assert_holder_stays(vip(), 0, 2 * ADVERT).unwrap();
    let log = vipd[0].log();
    assert!(
        log.contains(
            "removed from the interface by someone else while this node is Master; restoring it"
        ),
        "{log}"
    );
    let status = scenarios::instance_status(lab.node(0), "api").unwrap();
    assert_eq!(status["state"], "MASTER", "{status}");
    assert_eq!(status["counters"]["vip_repairs"], 1, "{status}");
    // The Backups were not disturbed.
    for i in 1..3 {
        assert_eq!(
            scenarios::instance_status(lab.node(i), "api").unwrap()["state"],
            "BACKUP"
        );
    }
}
