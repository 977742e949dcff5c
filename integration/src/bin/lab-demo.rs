//! The demo behind scripts/demo.sh: three vipd nodes and a client in network namespaces; fail the
//! Master, watch the VIP move and measure what the client saw; restore it and watch it come back.
//!
//! `--keepalived` runs the same demo with keepalived, for comparison.

use std::net::IpAddr;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lab::{keepalived, vipd, Lab};

const VIP: &str = "192.0.2.5";
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

fn run(lab: &Lab, use_keepalived: bool, vip: IpAddr) -> Result<()> {
    let _procs = if use_keepalived {
        keepalived::start_cluster(lab, &PRIORITIES, vip, ADVERT)?
    } else {
        vipd::start_cluster(lab, &PRIORITIES, vip, ADVERT, vipd::Peering::Unicast)?
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

    say(&format!("Plugging node {master} back in: with the higher priority it takes the VIP back (preemption)"));
    lab.restore_link(master)?;
    let t2 = Instant::now();
    lab.wait_holder_is(vip, master, Duration::from_secs(10))?;
    println!(
        "   after {:.1} s: {}",
        t2.elapsed().as_secs_f64(),
        holder_line(lab, vip, master)?
    );

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
