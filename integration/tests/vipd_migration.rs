//! docs/migration.md, followed on a three-master lab: keepalived runs the API and ingress VIPs as
//! OpenShift renders them (VRRPv2, PASS, unicast, 1 s; API at 40, ingress at 20 on every master);
//! each node's keepalived.conf and OpenShift's Corefile are translated with `vipd import`,
//! checked with `vipd check-config`, and the nodes are switched one at a time, the VIP holder last
//! (sections 2 and 4). After every node: one holder per VIP, the node's vipd answers the cluster
//! names and forwards the rest (section 5). At the end no keepalived runs and the client reaches
//! the API VIP. Needs root, the vipd binary, keepalived, lab-responder and dig.

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use lab::keepalived::{self, Instance, Version};
use lab::scenarios;
use lab::{Lab, Proc};

const RESPONDER: &str = env!("CARGO_BIN_EXE_lab-responder");
const DOMAIN: &str = "ostest.test.metalkube.org";
/// Election at equal priority 40: Master_Down_Interval 3.84 s after start, plus margin.
const ELECTION: Duration = Duration::from_secs(8);

fn api_vip() -> IpAddr {
    "192.0.2.5".parse().unwrap()
}

fn ingress_vip() -> IpAddr {
    "192.0.2.10".parse().unwrap()
}

/// The keepalived instances OpenShift renders on master `i` (reference/openshift.md section 3).
fn keepalived_instances(lab: &Lab, i: usize) -> Vec<Instance> {
    let me: IpAddr = lab.node(i).ipv4().into();
    let peers: Vec<IpAddr> = (0..3)
        .filter(|&j| j != i)
        .map(|j| lab.node(j).ipv4().into())
        .collect();
    let api = Instance::openshift_api("ostest", 14, 40, api_vip(), me, peers.clone());
    let ingress = Instance {
        name: "ostest_INGRESS".into(),
        vrid: 93,
        priority: 20,
        advert: Duration::from_secs(1),
        version: Version::V2,
        vip: ingress_vip(),
        password: Some("ostest_ingress_vip".into()),
        unicast_src: Some(me),
        unicast_peers: peers,
        track_bfd: None,
    };
    vec![api, ingress]
}

/// Section 2: `vipd import keepalived keepalived.conf --corefile Corefile`, then what a lab node
/// needs on top (the site's resolv.conf path, a per-node control socket: the nodes share one
/// file system), written to the node's config path, then `vipd check-config`.
fn translate(lab: &Lab, i: usize) -> Result<()> {
    let host = lab.node(i);
    let dir = host.dir()?;
    let bin = lab::vipd::binary()?;
    let corefile = lab::topology::workspace_dir().join("tests/openshift/Corefile");
    let out = std::process::Command::new(&bin)
        .args(["import", "keepalived"])
        .arg(dir.join("keepalived.conf"))
        .arg("--corefile")
        .arg(&corefile)
        .output()
        .context("running vipd import")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("vipd import failed on node {i}:\n{stderr}");
    }
    let imported = String::from_utf8(out.stdout).context("vipd import printed non-UTF-8")?;
    // What the importer itself points at (section 2's table): the host's resolv.conf path.
    let host_resolv = "resolv_conf = \"/var/run/NetworkManager/resolv.conf\"";
    if !imported.contains(host_resolv) {
        bail!("expected {host_resolv} in the import of node {i}:\n{imported}");
    }
    let resolv = dir.join("resolv.conf");
    fs::write(
        &resolv,
        format!("search {DOMAIN}\nnameserver {}\n", lab.client().ipv4()),
    )?;
    let mut config = imported.replace(
        host_resolv,
        &format!("resolv_conf = \"{}\"", resolv.display()),
    );
    config.push_str(&format!(
        "\n[control]\nsocket = \"{}\"\n",
        scenarios::control_socket(host)?.display()
    ));
    let path = scenarios::config_path(host)?;
    fs::write(&path, &config)?;
    let check = std::process::Command::new(&bin)
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .context("running vipd check-config")?;
    if !check.status.success() {
        bail!(
            "vipd check-config refused node {i}'s imported config:\n{}\n{config}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    Ok(())
}

/// Section 5 on node `i`: its vipd answers the cluster names and forwards the rest.
fn verify_dns(lab: &Lab, i: usize) {
    let server: IpAddr = lab.node(i).ipv4().into();
    let client = lab.client();
    let a = |name: &str| scenarios::dig(client, server, name, "A").unwrap();
    for (name, want) in [
        (format!("api.{DOMAIN}"), "192.0.2.5"),
        (format!("api-int.{DOMAIN}"), "192.0.2.5"),
        (
            format!("console-openshift-console.apps.{DOMAIN}"),
            "192.0.2.10",
        ),
        ("master-1".to_owned(), "192.0.2.12"),
        ("example.test".to_owned(), "198.51.100.7"),
    ] {
        let reply = a(&name);
        assert_eq!(reply.status, "NOERROR", "node {i}: {name}: {reply:?}");
        assert_eq!(reply.rdata(), vec![want.to_owned()], "node {i}: {name}");
    }
    let aaaa = scenarios::dig(client, server, &format!("api.{DOMAIN}"), "AAAA").unwrap();
    assert_eq!(aaaa.status, "NOERROR", "node {i}: AAAA api: {aaaa:?}");
    assert!(aaaa.rdata().is_empty(), "node {i}: AAAA api: {aaaa:?}");
}

fn single_holders(lab: &Lab) -> (usize, usize) {
    let api = lab.wait_single_holder(api_vip(), ELECTION).unwrap();
    let ingress = lab.wait_single_holder(ingress_vip(), ELECTION).unwrap();
    (api, ingress)
}

#[test]
fn the_migration_guide_replaces_keepalived_node_by_node_with_one_vip_holder_throughout() {
    let lab = Lab::new(3).unwrap();
    let _upstream = scenarios::start_dns_responder(
        lab.client(),
        RESPONDER,
        SocketAddr::new(lab.client().ipv4().into(), 53),
        "example.test.",
        "198.51.100.7".parse().unwrap(),
    )
    .unwrap();
    let mut ka: Vec<Option<Proc>> = (0..3)
        .map(|i| Some(keepalived::start(lab.node(i), &keepalived_instances(&lab, i)).unwrap()))
        .collect();
    // Equal priorities: the node whose timer ran out first (the first started) takes both VIPs,
    // and the others, hearing an equal priority, stay Backup.
    let (h, ingress_h) = single_holders(&lab);
    assert_eq!(h, ingress_h, "one keepalived node should hold both VIPs");
    let holder_ip = lab.node(h).ipv4().to_string();
    lab.wait_client_neigh_is(api_vip(), h, Duration::from_secs(2))
        .unwrap();

    // Section 4: the nodes that hold no VIP first. Clients must not notice.
    let prober = lab.prober(api_vip(), Duration::from_millis(10)).unwrap();
    let mut vipd: Vec<Proc> = Vec::new();
    let others: Vec<usize> = (0..3).filter(|&i| i != h).collect();
    for &i in &others {
        translate(&lab, i).unwrap();
        ka[i]
            .take()
            .unwrap()
            .terminate(Duration::from_secs(5))
            .unwrap();
        // Section 4 step 3, with the translated file.
        vipd.push(scenarios::start_written(lab.node(i)).unwrap());
        // A Backup's Master_Down_Interval passes: keepalived's Master keeps both VIPs.
        lab.assert_holder_stays(api_vip(), h, Duration::from_secs(4))
            .unwrap();
        assert_eq!(single_holders(&lab), (h, h));
        let api = scenarios::instance_status(lab.node(i), "api").unwrap();
        assert_eq!(api["state"], "BACKUP", "node {i}: {api}");
        assert_eq!(
            api["master"]["address"],
            holder_ip.as_str(),
            "node {i}: {api}"
        );
        assert_eq!(api["vrid"], 14);
        let ingress = scenarios::instance_status(lab.node(i), "ingress").unwrap();
        assert_eq!(ingress["vrid"], 93);
        assert_eq!(
            ingress["master"]["address"],
            holder_ip.as_str(),
            "node {i}: {ingress}"
        );
        verify_dns(&lab, i);
    }
    let quiet = prober.stop().unwrap();
    // Counted in probes (at most one 10 ms probe unanswered, the one in flight at the stop).
    assert!(
        quiet.longest_unanswered <= Duration::from_millis(20) && quiet.lost <= 1,
        "switching the Backups lost API probes: {quiet:?}"
    );

    // Last the holder: keepalived resigns with priority 0, a vipd Backup takes over after
    // Skew_Time (0.84 s at 40), then the old holder joins as vipd.
    let prober = lab.prober(api_vip(), Duration::from_millis(10)).unwrap();
    translate(&lab, h).unwrap();
    ka[h]
        .take()
        .unwrap()
        .terminate(Duration::from_secs(5))
        .unwrap();
    let (api, ingress) = single_holders(&lab);
    assert!(
        others.contains(&api) && others.contains(&ingress),
        "holders {api} / {ingress}"
    );
    vipd.push(scenarios::start_written(lab.node(h)).unwrap());
    // Equal priority does not preempt: the new Master keeps the VIPs while the old one joins.
    lab.assert_holder_stays(api_vip(), api, Duration::from_secs(5))
        .unwrap();
    assert_eq!(single_holders(&lab), (api, ingress));
    lab.wait_client_neigh_is(api_vip(), api, Duration::from_secs(2))
        .unwrap();
    let handover = prober.stop().unwrap();
    // keepalived removes the VIP at once and the Backups wait Skew_Time: about 0.85 s.
    assert!(
        handover.longest_unanswered < Duration::from_millis(1500),
        "the holder's switch cost more than keepalived's own resign: {handover:?}"
    );
    verify_dns(&lab, h);

    // keepalived is gone everywhere; three vipd agree on one Master per instance.
    assert!(ka.iter().all(Option::is_none));
    for name in ["api", "ingress"] {
        let masters: Vec<usize> = (0..3)
            .filter(|&i| {
                scenarios::instance_status(lab.node(i), name).unwrap()["state"] == "MASTER"
            })
            .collect();
        let holder = if name == "api" { api } else { ingress };
        assert_eq!(masters, vec![holder], "{name}");
    }
    for p in &mut vipd {
        p.ensure_running().unwrap();
    }
}
