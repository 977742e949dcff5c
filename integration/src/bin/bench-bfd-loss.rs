//! Wrong take-overs under packet loss, with and without BFD: three 3-node clusters side by side
//! in one run (vipd with BFD 50 ms x 3, vipd without BFD, keepalived 2.2.7), OpenShift's shape
//! (priorities 100 / 70 / 40, unicast, 1 s adverts; vipd VRRPv3, keepalived v2 PASS as OpenShift
//! renders it), nobody fails: every VIP move is a
//! wrong one. Run through scripts/bench-bfd-loss.sh (root, release build).
//!
//! For each loss level the lab switch drops frames on every node's port in both directions
//! (independently on the way in and the way out, so the per-port rate p gives 1 - (1 - p)^2
//! between two nodes: 5 % per port is 9.75 %, 16 % per port is 29.4 %). The holders of each
//! cluster's VIP are sampled every 250 ms for the whole period.
//!
//! Prints, per loss level and cluster: VIP moves (a node that did not hold the VIP in the
//! previous sample holds it now), time with two or more holders, the longest such stretch, and
//! for vipd with BFD the take-overs BFD caused and how many of them the live Master refuted.

use std::net::IpAddr;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use lab::holders::HolderSampler;
use lab::{keepalived, scenarios, vipd, Lab, Proc};

const PRIORITIES: [u8; 3] = [100, 70, 40];
const ADVERT: Duration = Duration::from_secs(1);
const SAMPLE: Duration = Duration::from_millis(250);
/// (end-to-end loss in %, per-port loss in %)
const LEVELS: [(f64, u8); 2] = [(9.75, 5), (29.4, 16)];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    VipdBfd,
    Vipd,
    Keepalived,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::VipdBfd => "vipd, BFD 50 ms x 3",
            Kind::Vipd => "vipd, no BFD",
            Kind::Keepalived => "keepalived 2.2.7",
        }
    }
}

struct Cluster {
    kind: Kind,
    // Before `lab`: the daemons stop before their namespaces go.
    _procs: Vec<Proc>,
    lab: Lab,
}

fn vip() -> IpAddr {
    IpAddr::from([192, 0, 2, 5])
}

fn start(kind: Kind) -> Result<Cluster> {
    let lab = Lab::new(PRIORITIES.len())?;
    let procs = match kind {
        Kind::Keepalived => keepalived::start_cluster(&lab, &PRIORITIES, vip(), ADVERT)?,
        Kind::Vipd | Kind::VipdBfd => (0..PRIORITIES.len())
            .map(|i| {
                let mut inst = vipd::cluster_instance(
                    &lab,
                    i,
                    &PRIORITIES,
                    vip(),
                    ADVERT,
                    vipd::Peering::Unicast,
                );
                if kind == Kind::VipdBfd {
                    inst.bfd = Some(vipd::Bfd::every(Duration::from_millis(50), 3));
                }
                let config = scenarios::NodeConfig {
                    instances: vec![(inst, Vec::new())],
                    ..scenarios::NodeConfig::new()
                };
                scenarios::start(lab.node(i), &config)
            })
            .collect::<Result<Vec<_>>>()?,
    };
    Ok(Cluster {
        kind,
        _procs: procs,
        lab,
    })
}

/// BFD take-overs and refutations summed over the nodes of a vipd cluster.
fn bfd_counts(c: &Cluster) -> Result<(u64, u64)> {
    let mut sum = (0, 0);
    for i in 0..c.lab.len() {
        let s = scenarios::instance_status(c.lab.node(i), "api")?;
        let l = &s["counters"]["liveness"];
        sum.0 += l["takeover"].as_u64().unwrap_or(0);
        sum.1 += l["refuted"].as_u64().unwrap_or(0);
    }
    Ok(sum)
}

struct Row {
    moves: usize,
    two_holders: Duration,
    longest: Duration,
    bfd: Option<(u64, u64)>,
}

fn measure(clusters: &[Cluster], port_loss: u8, period: Duration) -> Result<Vec<Row>> {
    let before: Vec<Option<(u64, u64)>> = clusters
        .iter()
        .map(|c| (c.kind == Kind::VipdBfd).then(|| bfd_counts(c)).transpose())
        .collect::<Result<_>>()?;
    for c in clusters {
        for i in 0..c.lab.len() {
            c.lab.loss(i, port_loss)?;
        }
    }
    let samplers: Vec<HolderSampler> = clusters
        .iter()
        .map(|c| HolderSampler::start(&c.lab, vip(), SAMPLE, period + Duration::from_secs(60)))
        .collect();
    thread::sleep(period);
    let mut rows = Vec::new();
    for ((c, sampler), before) in clusters.iter().zip(samplers).zip(before) {
        let timeline = sampler.stop()?;
        for i in 0..c.lab.len() {
            c.lab.clear_loss(i)?;
        }
        let windows = timeline.multi_holder_windows();
        let bfd = match before {
            Some(b) => {
                let after = bfd_counts(c)?;
                Some((after.0 - b.0, after.1 - b.1))
            }
            None => None,
        };
        rows.push(Row {
            // The first sample's holder is not a move.
            moves: timeline.takeovers(),
            two_holders: windows.iter().map(|w| w.len).sum(),
            longest: timeline.max_multi_holder(),
            bfd,
        });
    }
    Ok(rows)
}

fn parse_args() -> std::result::Result<Duration, String> {
    let mut minutes = 10u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--minutes" => {
                minutes = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--minutes needs a positive whole number")?
            }
            _ => {
                return Err(
                    "usage: bench-bfd-loss [--minutes N] (per loss level, default 10)".into(),
                )
            }
        }
    }
    Ok(Duration::from_secs(minutes * 60))
}

fn run(period: Duration) -> Result<()> {
    let clusters = [Kind::VipdBfd, Kind::Vipd, Kind::Keepalived]
        .into_iter()
        .map(start)
        .collect::<Result<Vec<_>>>()?;
    for c in &clusters {
        c.lab
            .wait_holder_is(vip(), 0, Duration::from_secs(10))
            .with_context(|| format!("{}: initial election", c.kind.name()))?;
    }
    // BFD sessions come Up within a few slow-rate seconds.
    thread::sleep(Duration::from_secs(5));
    println!(
        "\nNobody fails; every move is a wrong one. {} min per loss level, holders sampled every {} ms.\n",
        period.as_secs() / 60,
        SAMPLE.as_millis()
    );
    println!("| loss between two nodes | cluster | VIP moves | BFD take-overs (refuted) | time with two holders | longest two-holder stretch |");
    println!("|---|---|---|---|---|---|");
    for (loss, port) in LEVELS {
        let rows = measure(&clusters, port, period)?;
        for (c, r) in clusters.iter().zip(rows) {
            let bfd = r
                .bfd
                .map_or("-".to_string(), |(t, refuted)| format!("{t} ({refuted})"));
            println!(
                "| {loss} % | {} | {} | {bfd} | {:.2} s | {:.2} s |",
                c.kind.name(),
                r.moves,
                r.two_holders.as_secs_f64(),
                r.longest.as_secs_f64()
            );
        }
        // Let every cluster settle before the next level.
        thread::sleep(Duration::from_secs(10));
    }
    Ok(())
}

fn main() -> ExitCode {
    let period = match parse_args() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(period) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-bfd-loss failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
