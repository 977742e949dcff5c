//! The demo behind scripts/demo.sh: three vipd nodes and a client in network namespaces; fail the
//! Master, watch the VIP move and measure what the client saw; restore it and watch it come back.
//!
//! With vipd every node also serves the cluster DNS (api, api-int, *.apps, node names): the
//! client asks its first node's server before and after the failover, and the node that lost
//! its cable is asked too once it is back.
//!
//! `--keepalived` runs the same demo with keepalived, for comparison (VRRP only).

use std::net::IpAddr;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lab::scenarios::{self, Dns, NodeConfig};
use lab::{keepalived, vipd, Lab, Proc};

const VIP: &str = "192.0.2.5";
/// The ingress VIP (`*.apps`), held by its own instance.
const INGRESS_VIP: &str = "192.0.2.10";
const DOMAIN: &str = "ostest.example.test";
const PRIORITIES: [u8; 3] = [70, 40, 40];
const ADVERT: Duration = Duration::from_secs(1);

fn say(text: &str) {
    println!("\n== {text}");
}

fn holder_line(lab: &Lab, vip: IpAddr, node: usize) -> Result<String> {
    let n = lab.node(node);
    Ok(format!(
        "node {node} ({}, MAC {}) holds {vip}",
        n.ipv4(),
        lab.node_mac(node)?
    ))
}

fn demo(use_keepalived: bool) -> Result<()> {
    let vip: IpAddr = VIP.parse()?;
    let daemon = if use_keepalived { "keepalived" } else { "vipd" };
    say(&format!("Building a lab: 3 nodes running {daemon}, 1 client, one switch (all in network namespaces)"));
    let lab = Lab::new(3)?;
    for (i, priority) in PRIORITIES.iter().enumerate() {
        let n = lab.node(i);
        println!(
            "   node {i}: {} / {}  priority {priority}",
            n.ipv4(),
            n.ipv6()
        );
    }
    println!(
        "   client: {}   VIP: {vip}   adverts every {ADVERT:?}",
        lab.client().ipv4()
    );
    println!("   logs: {}", lab.log_dir().display());

    let result = run(&lab, use_keepalived, vip);
    if result.is_err() {
        lab.print_log_tails(15);
    }
    result
}

/// vipd on every node with `api` and `ingress` and the cluster DNS on the node's address.
fn start_vipd_with_dns(lab: &Lab, vip: IpAddr) -> Result<Vec<Proc>> {
    let ingress_vip: IpAddr = INGRESS_VIP.parse()?;
    let names: Vec<(String, Vec<IpAddr>)> = (0..lab.len())
        .map(|i| (format!("master-{i}"), vec![lab.node(i).ipv4().into()]))
        .collect();
    (0..lab.len())
        .map(|i| {
            let host = lab.node(i);
            let api =
                vipd::cluster_instance(lab, i, &PRIORITIES, vip, ADVERT, vipd::Peering::Unicast);
            let mut ingress = vipd::cluster_instance(
                lab,
                i,
                &PRIORITIES,
                ingress_vip,
                ADVERT,
                vipd::Peering::Unicast,
            );
            ingress.name = "ingress".into();
            ingress.vrid = Some(93);
            let resolv_conf = host.dir()?.join("resolv.conf");
            std::fs::write(&resolv_conf, "nameserver 198.51.100.1\n")?;
            let config = NodeConfig {
                base_domain: Some("example.test".into()),
                instances: vec![(api, Vec::new()), (ingress, Vec::new())],
                dns: Some(Dns {
                    listen: vec![std::net::SocketAddr::new(host.ipv4().into(), 53)],
                    resolv_conf,
                    nodes: names.clone(),
                }),
                ..NodeConfig::new()
            };
            scenarios::start(host, &config).with_context(|| format!("starting vipd on node {i}"))
        })
        .collect()
}

/// The client asks `server` for the names OpenShift's CoreDNS answered, and prints the answers.
fn show_dns(lab: &Lab, server: usize) -> Result<()> {
    let addr: IpAddr = lab.node(server).ipv4().into();
    println!("   the client asks node {server}'s DNS ({addr}:53):");
    let names = [
        format!("api.{DOMAIN}"),
        format!("api-int.{DOMAIN}"),
        format!("console-openshift-console.apps.{DOMAIN}"),
        format!("master-2.{DOMAIN}"),
    ];
    for name in &names {
        let reply = scenarios::dig(lab.client(), addr, name, "A")?;
        let answer = match reply.rdata().as_slice() {
            [] => reply.status.clone(),
            a => a.join(" "),
        };
        println!("     {name:<48} -> {answer}");
    }
    Ok(())
}

fn run(lab: &Lab, use_keepalived: bool, vip: IpAddr) -> Result<()> {
    let _procs = if use_keepalived {
        keepalived::start_cluster(lab, &PRIORITIES, vip, ADVERT)?
    } else {
        start_vipd_with_dns(lab, vip)?
    };

    say("Election: every node starts as Backup; the highest priority becomes Master after ~3.7 s");
    let t0 = Instant::now();
    let master = lab
        .wait_single_holder(vip, Duration::from_secs(10))
        .context("no single Master was elected")?;
    println!(
        "   after {:.1} s: {}",
        t0.elapsed().as_secs_f64(),
        holder_line(lab, vip, master)?
    );
    if !lab.client_reaches(vip, Duration::from_secs(2))? {
        println!("   (the client cannot reach the VIP yet)");
    }
    println!(
        "   client's neighbour entry for {vip}: {}",
        lab.client_neigh(vip)?.unwrap_or_else(|| "none".into())
    );
    // The DNS server a client uses is a node's own address (resolv.conf), not the VIP.
    let dns_node = if master == 0 { 1 } else { 0 };
    if !use_keepalived {
        say("Cluster DNS (vipd replaces CoreDNS): api and api-int answer the API VIP, *.apps the ingress VIP");
        show_dns(lab, dns_node)?;
    }

    say(&format!(
        "Pulling node {master}'s cable while the client pings {vip} every 10 ms"
    ));
    let prober = lab.prober(vip, Duration::from_millis(10))?;
    thread::sleep(Duration::from_millis(500));
    lab.cut_link(master)?;
    let t1 = Instant::now();
    let others: Vec<usize> = (0..3).filter(|&i| i != master).collect();
    let new_master = lab
        .wait_single_holder_among(vip, &others, Duration::from_secs(10))
        .context("no Backup took over")?;
    println!(
        "   after {:.1} s: {}",
        t1.elapsed().as_secs_f64(),
        holder_line(lab, vip, new_master)?
    );
    lab.wait_client_neigh_is(vip, new_master, Duration::from_secs(5))?;
    thread::sleep(Duration::from_millis(300));
    let outage = prober.stop()?;
    println!(
        "   the client now sends to {}",
        lab.client_neigh(vip)?.unwrap_or_else(|| "nobody".into())
    );
    println!(
        "   client-seen outage: {:.0} ms ({} of {} pings lost)",
        outage.longest_gap_ms(),
        outage.lost,
        outage.sent
    );
    if !use_keepalived {
        say(
            "Cluster DNS after the failover: the same answers (the names point at VIPs, not nodes)",
        );
        show_dns(lab, dns_node)?;
    }

    say(&format!("Plugging node {master} back in: with the higher priority it takes the VIP back (preemption)"));
    lab.restore_link(master)?;
    let t2 = Instant::now();
    lab.wait_holder_is(vip, master, Duration::from_secs(10))?;
    println!(
        "   after {:.1} s: {}",
        t2.elapsed().as_secs_f64(),
        holder_line(lab, vip, master)?
    );
    if !use_keepalived {
        say(&format!(
            "Node {master}, back on the switch, answers the same names"
        ));
        show_dns(lab, master)?;
    }

    say("Done; removing the lab");
    Ok(())
}

fn main() -> ExitCode {
    let use_keepalived = std::env::args().any(|a| a == "--keepalived");
    match demo(use_keepalived) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\ndemo failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
