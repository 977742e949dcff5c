//! Failover benchmark: keepalived and vipd in the same run, same lab, same faults; prints a
//! markdown table. Run through scripts/bench-failover.sh (root, release build).
//!
//! Scenarios, each on a fresh 2-node lab (priorities 70/40, unicast as OpenShift configures it):
//! unplanned failover (the Master's cable pulled) at 1 s and 100 ms adverts, and a planned
//! handover (SIGTERM on the Master) at 1 s. The figure is the longest gap the client's 10 ms ping
//! sees, median of N runs; plus the resident memory of each daemon once elected.

use std::net::IpAddr;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use lab::{keepalived, vipd, Lab, Proc};

const VIP: &str = "192.0.2.5";
const PRIORITIES: [u8; 2] = [70, 40];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Daemon {
    Keepalived,
    Vipd,
}

#[derive(Clone, Copy)]
enum Fault {
    LinkCut,
    Sigterm,
}

struct Scenario {
    title: &'static str,
    advert: Duration,
    fault: Fault,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        title: "unplanned (link cut), 1 s adverts",
        advert: Duration::from_secs(1),
        fault: Fault::LinkCut,
    },
    Scenario {
        title: "unplanned (link cut), 100 ms adverts",
        advert: Duration::from_millis(100),
        fault: Fault::LinkCut,
    },
    Scenario {
        title: "planned (SIGTERM), 1 s adverts",
        advert: Duration::from_secs(1),
        fault: Fault::Sigterm,
    },
];

fn start(lab: &Lab, daemon: Daemon, advert: Duration) -> Result<Vec<Proc>> {
    let vip: IpAddr = VIP.parse()?;
    match daemon {
        Daemon::Keepalived => keepalived::start_cluster(lab, &PRIORITIES, vip, advert),
        Daemon::Vipd => (0..PRIORITIES.len())
            .map(|i| {
                // The same dialect keepalived speaks in this scenario: v2 PASS unicast for whole
                // seconds (OpenShift), v3 unicast below a second (v2 cannot express it).
                let mut inst = vipd::cluster_instance(
                    lab,
                    i,
                    &PRIORITIES,
                    vip,
                    advert,
                    vipd::Peering::Unicast,
                );
                if advert.subsec_nanos() == 0 {
                    inst.version = 2;
                    inst.password = Some("ostest_api_vip".into());
                }
                vipd::start(lab.node(i), &[inst])
            })
            .collect(),
    }
}

fn rss(daemon: Daemon, lab: &Lab, procs: &[Proc]) -> Result<u64> {
    match daemon {
        Daemon::Keepalived => keepalived::rss_kib(lab.node(0)),
        Daemon::Vipd => vipd::rss_kib(&procs[0]),
    }
}

/// One run: returns (client gap in ms, RSS of the Master before the fault in KiB).
fn run_once(daemon: Daemon, s: &Scenario) -> Result<(f64, u64)> {
    let vip: IpAddr = VIP.parse()?;
    let lab = Lab::new(PRIORITIES.len())?;
    let mut procs = start(&lab, daemon, s.advert)?;
    lab.wait_holder_is(vip, 0, s.advert * 4 + Duration::from_secs(4))
        .context("initial election")?;
    // Let the start-up GARP bursts and the Backup settle before measuring.
    thread::sleep(s.advert * 2 + Duration::from_millis(500));
    if !lab.client_reaches(vip, Duration::from_secs(2))? {
        bail!("the client cannot reach {vip} before the fault");
    }
    let rss = rss(daemon, &lab, &procs)?;
    let prober = lab.prober(vip, Duration::from_millis(10))?;
    thread::sleep(Duration::from_millis(500));
    match s.fault {
        Fault::LinkCut => lab.cut_link(0)?,
        Fault::Sigterm => {
            procs[0].terminate(Duration::from_secs(10))?;
        }
    }
    lab.wait_single_holder_among(vip, &[1], s.advert * 4 + Duration::from_secs(3))?;
    lab.wait_client_neigh_is(vip, 1, Duration::from_secs(5))?;
    thread::sleep(Duration::from_millis(500));
    let outage = prober.stop()?;
    Ok((outage.longest_gap_ms(), rss))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn cell(results: &[f64], errors: &[String]) -> String {
    if results.is_empty() {
        return format!(
            "n/a ({})",
            errors.first().map(String::as_str).unwrap_or("no runs")
        );
    }
    let mut v = results.to_vec();
    let (min, max) = (
        v.iter().copied().fold(f64::MAX, f64::min),
        v.iter().copied().fold(0.0, f64::max),
    );
    let failed = if errors.is_empty() {
        String::new()
    } else {
        format!(", {} failed", errors.len())
    };
    format!(
        "{:.0} ms ({:.0}-{:.0}, n={}{failed})",
        median(&mut v),
        min,
        max,
        results.len()
    )
}

fn main() -> ExitCode {
    let mut runs = 5;
    let mut daemons = vec![Daemon::Keepalived, Daemon::Vipd];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => match args
                .next()
                .and_then(|n| n.parse().ok())
                .filter(|&n: &usize| n > 0)
            {
                Some(n) => runs = n,
                None => {
                    eprintln!("--runs needs a positive number");
                    return ExitCode::from(2);
                }
            },
            "--only" => match args.next().as_deref() {
                Some("keepalived") => daemons = vec![Daemon::Keepalived],
                Some("vipd") => daemons = vec![Daemon::Vipd],
                _ => {
                    eprintln!("--only takes keepalived or vipd");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("usage: bench-failover [--runs N] [--only keepalived|vipd]");
                return ExitCode::from(2);
            }
        }
    }

    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut rss_cells = Vec::new();
    let mut any_error = false;
    for s in &SCENARIOS {
        let mut cells = Vec::new();
        for &d in &daemons {
            let (mut gaps, mut rss, mut errors) = (Vec::new(), Vec::new(), Vec::new());
            for r in 1..=runs {
                match run_once(d, s) {
                    Ok((gap, kib)) => {
                        eprintln!(
                            "{d:?} | {} | run {r}/{runs}: {gap:.0} ms, RSS {kib} KiB",
                            s.title
                        );
                        gaps.push(gap);
                        rss.push(kib as f64);
                    }
                    Err(e) => {
                        eprintln!("{d:?} | {} | run {r}/{runs} failed: {e:#}", s.title);
                        errors.push(
                            format!("{e:#}")
                                .lines()
                                .next()
                                .unwrap_or_default()
                                .to_string(),
                        );
                        any_error = true;
                    }
                }
            }
            cells.push(cell(&gaps, &errors));
            if matches!(s.fault, Fault::LinkCut) && s.advert == Duration::from_secs(1) {
                let mut r = rss.clone();
                rss_cells.push(if r.is_empty() {
                    "n/a".into()
                } else {
                    format!("{:.0} KiB", median(&mut r))
                });
            }
        }
        rows.push((s.title.to_string(), cells));
    }
    rows.push(("RSS of the Master (median)".into(), rss_cells));

    let names: Vec<&str> = daemons
        .iter()
        .map(|d| match d {
            Daemon::Keepalived => "keepalived 2.2.7",
            Daemon::Vipd => "vipd",
        })
        .collect();
    println!("\nClient-seen outage: longest gap between replies to a 10 ms ping of the VIP; median (min-max) of {runs} runs.\n");
    println!("| scenario | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    for (title, cells) in rows {
        println!("| {title} | {} |", cells.join(" | "));
    }
    if any_error {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
