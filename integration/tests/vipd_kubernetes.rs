//! Peers and DNS node records from the Kubernetes API (issue 10, `[kubernetes]`): three vipd
//! nodes fed by the lab's strict stand-in API server (`lab-kube-api`, integration/src/kube_api),
//! which runs in the client namespace on 192.0.2.100:6443 with TLS and client certificates.
//! Needs root, the vipd binary and dig.
//!
//! The nodes start with no static peers (multicast, as OpenShift's bootstrap-era config); the
//! first complete node list turns them into unicast in place. Priorities 100 / 70 / 40, so node 0
//! holds the API VIP throughout, and every step checks that it never moves.

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use lab::holders::HolderSampler;
use lab::kube_api::control::ControlClient;
use lab::scenarios::{self, Dns, Kube, NodeConfig};
use lab::vipd::Instance;
use lab::{Lab, Proc};

const KUBE_API: &str = env!("CARGO_BIN_EXE_lab-kube-api");
const ADVERT: Duration = Duration::from_secs(1);
const PRIORITIES: [u8; 3] = [100, 70, 40];
const SETTLE: Duration = Duration::from_secs(2);
const DOMAIN: &str = "ostest.test.metalkube.org";

fn vip() -> IpAddr {
    "192.0.2.5".parse().unwrap()
}

fn ip(i: usize) -> String {
    format!("192.0.2.{}", 11 + i)
}

/// The stand-in with the three masters; returns it, its directory and its control client.
fn start_api(lab: &Lab) -> (Proc, PathBuf, ControlClient) {
    let dir = lab.client().dir().unwrap().join("kube");
    fs::create_dir_all(&dir).unwrap();
    let dir_s = dir.to_string_lossy().into_owned();
    let nodes: Vec<String> = (0..3)
        .map(|i| {
            format!(
                "master-{i} master,control-plane,worker InternalIP={} Hostname=master-{i}",
                ip(i)
            )
        })
        .collect();
    let mut argv = vec![
        KUBE_API,
        "--listen",
        "192.0.2.100:6443",
        "--dir",
        &dir_s,
        "--server-name",
        "api-int.ostest.test.metalkube.org",
        "--bookmark-period",
        "5",
    ];
    for n in &nodes {
        argv.extend(["--node", n.as_str()]);
    }
    let proc = lab.client().spawn("kube-api", &argv).unwrap();
    let ready = lab::wait_until(Duration::from_secs(20), || {
        Ok(proc
            .log()
            .lines()
            .any(|l| l.trim() == "ready")
            .then_some(()))
    })
    .unwrap();
    assert!(
        ready.is_some(),
        "lab-kube-api did not start: {}",
        proc.log()
    );
    let control = ControlClient::new(dir.join("control.sock"));
    (proc, dir, control)
}

fn node_config(lab: &Lab, i: usize, kubeconfig: PathBuf) -> NodeConfig {
    let mut api = Instance::new(vip(), PRIORITIES[i], ADVERT);
    api.unicast_source = Some(ip(i).parse().unwrap());
    // The ingress VIP (all nodes are its peers) on VRID 93; [dns] needs both.
    let mut ingress = Instance::new("192.0.2.10".parse().unwrap(), PRIORITIES[i], ADVERT);
    ingress.name = "ingress".into();
    ingress.vrid = Some(93);
    ingress.unicast_source = api.unicast_source;
    let resolv_conf = lab.node(i).dir().unwrap().join("resolv.conf");
    fs::write(&resolv_conf, "nameserver 192.0.2.100\n").unwrap();
    NodeConfig {
        base_domain: Some("test.metalkube.org".into()),
        instances: vec![(api, Vec::new()), (ingress, Vec::new())],
        dns: Some(Dns {
            listen: vec![SocketAddr::new(ip(i).parse().unwrap(), 53)],
            resolv_conf,
            nodes: Vec::new(),
        }),
        kubernetes: Some(Kube {
            kubeconfig,
            settle: SETTLE,
            api_instances: None,
            ingress_instances: None,
        }),
        ..NodeConfig::new()
    }
}

fn kube_status(lab: &Lab, i: usize) -> Value {
    scenarios::status_json(lab.node(i)).unwrap()["kubernetes"].clone()
}

/// The API-fed peers of `api` on node `i` (`None`: the static configuration still applies).
fn peers(lab: &Lab, i: usize) -> Option<Vec<String>> {
    let k = kube_status(lab, i);
    let inst = k["instances"]
        .as_array()?
        .iter()
        .find(|x| x["instance"] == "api")?;
    inst["applied"].as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    })
}

fn wait_peers(lab: &Lab, i: usize, want: &[String], within: Duration) {
    let got = lab::wait_until(within, || {
        Ok((peers(lab, i).as_deref() == Some(want)).then_some(()))
    })
    .unwrap();
    if got.is_none() {
        lab.print_log_tails(20);
        panic!(
            "node {i}: peers {:?} after {within:?}, wanted {want:?}; status {}",
            peers(lab, i),
            kube_status(lab, i)
        );
    }
}

fn others(i: usize, n: usize) -> Vec<String> {
    (0..n).filter(|&j| j != i).map(ip).collect()
}

fn dig_a(lab: &Lab, i: usize, name: &str) -> Vec<String> {
    scenarios::dig(lab.client(), ip(i).parse().unwrap(), name, "A")
        .map(|r| r.rdata())
        .unwrap_or_default()
}

fn ctl(c: &ControlClient, line: &str) -> String {
    c.send(line)
        .unwrap_or_else(|e| panic!("lab-kube-api ctl {line:?}: {e:#}"))
}

#[test]
fn kubernetes_peers_and_node_records_follow_the_node_list_without_moving_the_vip() {
    let lab = Lab::new(3).unwrap();
    let (_api, dir, control) = start_api(&lab);
    let kubeconfig = dir.join("kubeconfig");
    let _vipd: Vec<Proc> = (0..3)
        .map(|i| scenarios::start(lab.node(i), &node_config(&lab, i, kubeconfig.clone())).unwrap())
        .collect();
    lab.wait_holder_is(vip(), 0, Duration::from_secs(10))
        .unwrap();
    // The first list applies at once: multicast -> unicast to the two other masters.
    for i in 0..3 {
        wait_peers(&lab, i, &others(i, 3), Duration::from_secs(15));
    }
    assert_eq!(dig_a(&lab, 1, &format!("master-2.{DOMAIN}")), [ip(2)]);
    let sampler = HolderSampler::start(
        &lab,
        vip(),
        Duration::from_millis(50),
        Duration::from_secs(120),
    );

    // A fourth master joins: after the settle time every node peers with it, and its name
    // resolves on every node.
    ctl(
        &control,
        &format!(
            "add master-3 master,control-plane InternalIP=192.0.2.14 Hostname=master-3.{DOMAIN}"
        ),
    );
    let with_new: Vec<Vec<String>> = (0..3)
        .map(|i| {
            let mut p = others(i, 3);
            p.push("192.0.2.14".into());
            p
        })
        .collect();
    for (i, want) in with_new.iter().enumerate() {
        wait_peers(&lab, i, want, SETTLE * 5);
    }
    let resolved = lab::wait_until(Duration::from_secs(10), || {
        Ok((dig_a(&lab, 2, "master-3") == ["192.0.2.14"]).then_some(()))
    })
    .unwrap();
    assert!(resolved.is_some(), "master-3 never resolved on node 2");

    // It leaves again.
    ctl(&control, "delete master-3");
    for i in 0..3 {
        wait_peers(&lab, i, &others(i, 3), SETTLE * 5);
    }

    // The API is unreachable for a while: nothing changes, the error shows.
    ctl(&control, "fault hang any");
    ctl(&control, "close-watches");
    std::thread::sleep(Duration::from_secs(8));
    for i in 0..3 {
        assert_eq!(
            peers(&lab, i).unwrap(),
            others(i, 3),
            "node {i} while the API hangs"
        );
    }
    ctl(&control, "fault none");

    let timeline = sampler.stop().unwrap();
    assert_eq!(timeline.takeovers(), 0, "the VIP moved: {timeline:?}");
    assert!(timeline.multi_holder_windows().is_empty());
    assert_eq!(lab.who_has(vip()).unwrap(), [0]);
}

#[test]
fn kubernetes_refuses_a_list_with_one_master_and_stops_an_instance_whose_node_left() {
    let lab = Lab::new(3).unwrap();
    let (_api, dir, control) = start_api(&lab);
    let kubeconfig = dir.join("kubeconfig");
    let _vipd: Vec<Proc> = (0..3)
        .map(|i| scenarios::start(lab.node(i), &node_config(&lab, i, kubeconfig.clone())).unwrap())
        .collect();
    lab.wait_holder_is(vip(), 0, Duration::from_secs(10))
        .unwrap();
    for i in 0..3 {
        wait_peers(&lab, i, &others(i, 3), Duration::from_secs(15));
    }

    // master-2 leaves the list: nodes 0 and 1 peer only with each other; node 2 is not in
    // the list any more and stops its instance (it was Backup: no VIP moves).
    ctl(&control, "delete master-2");
    wait_peers(&lab, 0, &[ip(1)], SETTLE * 5);
    wait_peers(&lab, 1, &[ip(0)], SETTLE * 5);
    let stopped = lab::wait_until(SETTLE * 5, || {
        let s = scenarios::status_json(lab.node(2))?;
        Ok(s["instances"]
            .as_array()
            .is_some_and(|a| a.is_empty())
            .then_some(()))
    })
    .unwrap();
    assert!(stopped.is_some(), "node 2 still runs the instance");
    assert_eq!(lab.who_has(vip()).unwrap(), [0]);

    // master-1 leaves too: one master is fewer than two; the set is refused and reported, and
    // node 0 keeps its last good peers.
    ctl(&control, "delete master-1");
    let refused = lab::wait_until(SETTLE * 5, || {
        let k = kube_status(&lab, 0);
        let problem = k["instances"][0]["problem"].as_str().map(String::from);
        Ok(problem.filter(|p| p.contains("at least two")))
    })
    .unwrap();
    assert!(
        refused.is_some(),
        "no refusal reported: {}",
        kube_status(&lab, 0)
    );
    assert_eq!(peers(&lab, 0).unwrap(), [ip(1)]);

    // Both come back: node 2 starts its instance again, as Backup.
    let started = Instant::now();
    for i in [1, 2] {
        ctl(
            &control,
            &format!(
                "add master-{i} master,control-plane InternalIP={} Hostname=master-{i}",
                ip(i)
            ),
        );
    }
    for i in 0..3 {
        wait_peers(&lab, i, &others(i, 3), SETTLE * 5);
    }
    scenarios::wait_instance(lab.node(2), "api", SETTLE * 5, "BACKUP again", |s| {
        s["state"] == "BACKUP"
    })
    .unwrap();
    assert!(started.elapsed() < SETTLE * 10);
    assert_eq!(lab.who_has(vip()).unwrap(), [0]);
}

#[test]
fn kubernetes_bad_answers_change_nothing_and_show_in_status_and_metrics() {
    let lab = Lab::new(3).unwrap();
    let (_api, dir, control) = start_api(&lab);
    let kubeconfig = dir.join("kubeconfig");
    let mut procs: Vec<Proc> = (0..2)
        .map(|i| scenarios::start(lab.node(i), &node_config(&lab, i, kubeconfig.clone())).unwrap())
        .collect();
    // Node 2's kubeconfig cannot be read: it runs on its static configuration and says why.
    let mut bad = node_config(&lab, 2, dir.join("no-such-kubeconfig"));
    bad.http = Some(SocketAddr::new(ip(2).parse().unwrap(), 18080));
    procs.push(scenarios::start(lab.node(2), &bad).unwrap());
    for i in 0..2 {
        wait_peers(&lab, i, &others(i, 3), Duration::from_secs(15));
    }
    let k2 = kube_status(&lab, 2);
    assert_eq!(k2["synced"], false, "{k2}");
    assert!(
        k2["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("cannot read"),
        "{k2}"
    );
    let (code, metrics) =
        scenarios::http_get(lab.client(), &format!("http://{}:18080/metrics", ip(2))).unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("vipd_kube_synced 0"), "{metrics}");

    // Garbage, then 403, then a node without addresses: peers stay, errors count up.
    for fault in ["fault not-json any", "fault forbidden any"] {
        ctl(&control, fault);
        ctl(&control, "close-watches");
        std::thread::sleep(Duration::from_secs(4));
        ctl(&control, "fault none");
        for i in 0..2 {
            assert_eq!(
                peers(&lab, i).unwrap(),
                others(i, 3),
                "node {i} after {fault}"
            );
        }
    }
    assert!(kube_status(&lab, 0)["errors"].as_u64().unwrap_or(0) > 0);
    ctl(&control, "add-json {\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"master-9\",\"labels\":{\"node-role.kubernetes.io/master\":\"\"}},\"status\":{}}");
    // The watch retries with kube-rs's backoff (up to 30 s after repeated errors).
    let skipped = lab::wait_until(Duration::from_secs(60), || {
        let s = kube_status(&lab, 0)["skipped"].to_string();
        Ok(s.contains("master-9").then_some(s))
    })
    .unwrap();
    assert!(
        skipped.is_some(),
        "master-9 never reported: {}",
        kube_status(&lab, 0)
    );
    std::thread::sleep(SETTLE * 2);
    for i in 0..2 {
        assert_eq!(
            peers(&lab, i).unwrap(),
            others(i, 3),
            "node {i} after a node without addresses"
        );
    }
    assert_eq!(lab.who_has(vip()).unwrap(), [0]);
    for p in &mut procs {
        p.ensure_running().unwrap();
    }
}
