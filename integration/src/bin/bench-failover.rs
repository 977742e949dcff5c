//! Failover benchmark: keepalived and vipd in the same run, same lab, same faults; prints markdown
//! tables. Run through scripts/bench-failover.sh (root, release build).
//!
//! Scenarios, each on a fresh 2-node lab (priorities 70/40, unicast as OpenShift configures it):
//! unplanned failover (the Master's cable pulled) at 1 s and 100 ms adverts, and a planned
//! handover (SIGTERM on the Master) at 1 s. Runs alternate between the daemons so that both see
//! the same load on the shared machine.
//!
//! `--bfd` instead runs the unplanned failover at 1 s adverts twice: as above, and with BFD at
//! 50 ms x 3 between the nodes (vipd: `[instance.bfd]`, BFD driving Master_Down; keepalived:
//! a `bfd_instance` to the other node with `track_bfd` weight 10, keepalived's only use of BFD
//! for VRRP, a priority change; weight 0 would put the Backup in FAULT when the Master dies).
//!
//! Three figures per run:
//! - the client-seen outage: the longest gap between replies to `ping -i 0.01` of the VIP;
//! - the longest run of consecutive unanswered probes (receive-side scheduling jitter on a
//!   loaded machine stretches the first figure without any probe going unanswered; 0 = none
//!   lost). `ping -i 0.01` actually sends every 16-18 ms on the 2-vCPU VM this was written on,
//!   and slows down further while its neighbour entry for the VIP is failed, so a probe count is
//!   not a duration;
//! - the Backup's takeover time from a capture on the Backup: the old Master's last advert before
//!   the cut (or its priority-0 advert) to the Backup's first gratuitous ARP for the VIP.
//!
//! The cable is pulled right after the Backup hears an advert. Where in the advert cycle a cut
//! falls decides up to one advert interval of the outage (Master_Down_Interval runs from the last
//! advert heard), so an unsynchronised cut would compare phases, not daemons; right after an
//! advert is the worst case, the one the target "within Master_Down_Interval + 30 ms" bounds.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use lab::{keepalived, vipd, Host, Lab, Proc};

const VIP: &str = "192.0.2.5";
const PRIORITIES: [u8; 2] = [70, 40];
const PROBE: Duration = Duration::from_millis(10);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Daemon {
    Keepalived,
    Vipd,
}

impl Daemon {
    fn name(self) -> &'static str {
        match self {
            Daemon::Keepalived => "keepalived 2.2.7",
            Daemon::Vipd => "vipd",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    LinkCut,
    Sigterm,
}

struct Scenario {
    title: &'static str,
    advert: Duration,
    fault: Fault,
    /// BFD 50 ms x 3 between the nodes.
    bfd: bool,
}

/// BFD's interval and multiplier in the `--bfd` scenario.
const BFD_INTERVAL: Duration = Duration::from_millis(50);
const BFD_MULTIPLIER: u8 = 3;

impl Scenario {
    /// What the Backup (P=40) must wait by the protocol before it takes over: Master_Down_Interval
    /// after the last advert for a cut, Skew_Time after a priority-0 advert (RFC 9568 6.1).
    fn protocol_wait_ms(&self) -> f64 {
        let adv = self.advert.as_secs_f64() * 1000.0;
        let skew = (256.0 - f64::from(PRIORITIES[1])) * adv / 256.0;
        match self.fault {
            Fault::LinkCut if self.bfd => {
                // vipd: BFD's detection time plus Liveness_Skew (crates/vrrp/src/liveness.rs).
                let detection = BFD_INTERVAL.as_secs_f64() * 1000.0 * f64::from(BFD_MULTIPLIER);
                detection + (256.0 - f64::from(PRIORITIES[1])) * detection / 256.0
            }
            Fault::LinkCut => 3.0 * adv + skew,
            Fault::Sigterm => skew,
        }
    }

    /// The target for the client-seen outage.
    fn target(&self) -> String {
        match self.fault {
            Fault::LinkCut if self.bfd => "<= 300 ms (vipd)".into(),
            Fault::LinkCut => format!(
                "<= MDI + 30 = {:.1} ms, and <= keepalived",
                self.protocol_wait_ms() + 30.0
            ),
            Fault::Sigterm => "<= 20 ms".into(),
        }
    }
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        title: "unplanned (link cut), 1 s adverts",
        advert: Duration::from_secs(1),
        fault: Fault::LinkCut,
        bfd: false,
    },
    Scenario {
        title: "unplanned (link cut), 100 ms adverts",
        advert: Duration::from_millis(100),
        fault: Fault::LinkCut,
        bfd: false,
    },
    Scenario {
        title: "planned (SIGTERM), 1 s adverts",
        advert: Duration::from_secs(1),
        fault: Fault::Sigterm,
        bfd: false,
    },
];

/// `--bfd`: the same cut without and with BFD, in the same run.
const BFD_SCENARIOS: [Scenario; 2] = [
    Scenario {
        title: "unplanned (link cut), 1 s adverts",
        advert: Duration::from_secs(1),
        fault: Fault::LinkCut,
        bfd: false,
    },
    Scenario {
        title: "unplanned (link cut), 1 s adverts, BFD 50 ms x 3 (keepalived: track_bfd)",
        advert: Duration::from_secs(1),
        fault: Fault::LinkCut,
        bfd: true,
    },
];

/// The BFD session node `i` runs with the other node.
fn bfd_session(lab: &Lab, i: usize) -> lab::bfd_peers::Session {
    lab::bfd_peers::Session {
        local: lab.node(i).ipv4().into(),
        peer: lab.node(1 - i).ipv4().into(),
        interval: BFD_INTERVAL,
        multiplier: BFD_MULTIPLIER,
    }
}

/// Starts vipd as the systemd unit does (`vipd run --config`, default log level), with the config
/// the lab renders for node `i`.
fn start_vipd(lab: &Lab, i: usize, s: &Scenario) -> Result<Proc> {
    let (vip, advert): (IpAddr, _) = (VIP.parse()?, s.advert);
    let mut inst = vipd::cluster_instance(lab, i, &PRIORITIES, vip, advert, vipd::Peering::Unicast);
    if s.bfd {
        inst.bfd = Some(vipd::Bfd::every(BFD_INTERVAL, BFD_MULTIPLIER));
    }
    // The dialect keepalived speaks in the same scenario: v2 PASS unicast for whole seconds
    // (OpenShift), v3 unicast below a second (v2 cannot express it).
    if advert.subsec_nanos() == 0 {
        inst.version = 2;
        inst.password = Some("ostest_api_vip".into());
    }
    spawn_vipd(lab.node(i), &[inst])
}

fn spawn_vipd(host: &Host, instances: &[vipd::Instance]) -> Result<Proc> {
    let bin = vipd::binary()?;
    let dir = host.dir()?;
    let conf = dir.join("vipd.toml");
    let socket = dir.join("vipd.sock");
    std::fs::write(
        &conf,
        vipd::render("ostest", instances, &socket.to_string_lossy()),
    )
    .with_context(|| format!("writing {}", conf.display()))?;
    let (bin, conf) = (bin.to_string_lossy(), conf.to_string_lossy());
    let mut proc = host.spawn("vipd", &[&bin, "run", "--config", &conf])?;
    // A refused config shows within milliseconds, far below any VRRP timer here.
    thread::sleep(Duration::from_millis(150));
    proc.ensure_running()?;
    Ok(proc)
}

fn start(lab: &Lab, daemon: Daemon, s: &Scenario) -> Result<Vec<Proc>> {
    let vip: IpAddr = VIP.parse()?;
    match daemon {
        Daemon::Keepalived if s.bfd => (0..PRIORITIES.len())
            .map(|i| {
                let me: IpAddr = lab.node(i).ipv4().into();
                let peer: IpAddr = lab.node(1 - i).ipv4().into();
                let mut inst = keepalived::Instance::openshift_api(
                    "ostest",
                    14,
                    PRIORITIES[i],
                    vip,
                    me,
                    vec![peer],
                );
                inst.track_bfd = Some((bfd_session(lab, i), 10));
                keepalived::start_with_bfd(lab.node(i), &[inst])
            })
            .collect(),
        Daemon::Keepalived => keepalived::start_cluster(lab, &PRIORITIES, vip, s.advert),
        Daemon::Vipd => (0..PRIORITIES.len())
            .map(|i| start_vipd(lab, i, s))
            .collect(),
    }
}

/// A packet the capture on the Backup saw.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    /// An advert from the Master, with its priority.
    Advert { at: f64, priority: u8 },
    /// An ARP from the Backup's own MAC that names the VIP (a gratuitous ARP).
    Garp { at: f64 },
}

/// Reads one line of `tcpdump -tt -n` output (epoch timestamp first).
fn parse_capture_line(line: &str) -> Option<Seen> {
    let (ts, rest) = line.split_once(' ')?;
    let at: f64 = ts.parse().ok()?;
    if rest.contains("VRRP") {
        let priority = rest
            .split(", ")
            .find_map(|f| f.strip_prefix("prio "))?
            .parse()
            .ok()?;
        return Some(Seen::Advert { at, priority });
    }
    if rest.starts_with("ARP") && rest.contains(&format!(" {VIP} ")) {
        return Some(Seen::Garp { at });
    }
    None
}

/// tcpdump on the Backup's lab interface: the Master's adverts and the Backup's own ARPs.
struct Capture {
    child: Child,
    rx: Receiver<Seen>,
    seen: Vec<Seen>,
}

impl Capture {
    fn start(backup: &Host, master_ip: IpAddr) -> Result<Capture> {
        let filter = format!(
            "(ip proto 112 and src host {master_ip}) or (arp and ether src {})",
            backup.mac()?
        );
        // --immediate-mode and -l: each packet is printed as it arrives, so the cut can follow an
        // advert by milliseconds. -p: no promiscuous mode, the interface behaves as without us.
        let mut child = Command::new("ip")
            .args(["netns", "exec", backup.ns(), "tcpdump"])
            .args(["-tt", "-n", "-l", "-p", "--immediate-mode", "-i", "eth0"])
            .arg(&filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting tcpdump on the Backup (scripts/setup.sh installs it)")?;
        let stdout = child.stdout.take().context("tcpdump's stdout")?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(s) = parse_capture_line(&line) {
                    if tx.send(s).is_err() {
                        break;
                    }
                }
            }
        });
        Ok(Capture {
            child,
            rx,
            seen: Vec::new(),
        })
    }

    /// Waits for the next advert the Backup receives (ignoring any already printed).
    fn next_advert(&mut self, timeout: Duration) -> Result<f64> {
        self.seen.extend(self.rx.try_iter());
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(s) => {
                    self.seen.push(s);
                    if let Seen::Advert { at, .. } = s {
                        return Ok(at);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    bail!("the Backup's capture saw no advert from the Master within {timeout:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("tcpdump on the Backup exited (is it installed? scripts/setup.sh)")
                }
            }
        }
    }

    /// Stops tcpdump and returns everything it saw.
    fn finish(mut self) -> Vec<Seen> {
        // Lets the last lines through the pipe before the process goes.
        thread::sleep(Duration::from_millis(100));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut seen = std::mem::take(&mut self.seen);
        seen.extend(self.rx.try_iter());
        seen
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Backup's takeover in ms: from the reference advert (the last one before `fault_at` for a cut,
/// the first priority-0 one for SIGTERM) to the Backup's first gratuitous ARP after it.
fn takeover_ms(seen: &[Seen], fault: Fault, fault_at: f64) -> Result<f64> {
    let reference = match fault {
        Fault::LinkCut => seen
            .iter()
            .filter_map(|s| match *s {
                Seen::Advert { at, .. } if at <= fault_at => Some(at),
                _ => None,
            })
            .fold(None, |m: Option<f64>, at| Some(m.map_or(at, |m| m.max(at)))),
        Fault::Sigterm => seen.iter().find_map(|s| match *s {
            Seen::Advert { at, priority: 0 } => Some(at),
            _ => None,
        }),
    }
    .context("the capture on the Backup holds no reference advert from the Master")?;
    let garp = seen
        .iter()
        .find_map(|s| match *s {
            Seen::Garp { at } if at > reference => Some(at),
            _ => None,
        })
        .with_context(|| format!("the capture on the Backup holds no gratuitous ARP for {VIP}"))?;
    Ok((garp - reference) * 1000.0)
}

struct Run {
    gap_ms: f64,
    lost_in_a_row: u32,
    takeover_ms: f64,
    /// How long after the advert the cut was done (link cut only).
    phase_ms: Option<f64>,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn run_once(daemon: Daemon, s: &Scenario) -> Result<Run> {
    let vip: IpAddr = VIP.parse()?;
    let lab = Lab::new(PRIORITIES.len())?;
    let mut procs = start(&lab, daemon, s)?;
    if s.bfd {
        // The sessions come Up within a few slow-rate (1 s) exchanges.
        thread::sleep(Duration::from_secs(3));
    }
    lab.wait_holder_is(vip, 0, s.advert * 4 + Duration::from_secs(4))
        .context("initial election")?;
    // Let the start-up GARP bursts and the Backup settle before measuring.
    thread::sleep(s.advert * 2 + Duration::from_millis(500));
    if !lab.client_reaches(vip, Duration::from_secs(2))? {
        bail!("the client cannot reach {vip} before the fault");
    }
    let mut capture = Capture::start(lab.node(1), lab.node(0).ipv4().into())?;
    let prober = lab.prober(vip, PROBE)?;
    thread::sleep(Duration::from_millis(500));
    let (fault_at, phase_ms) = match s.fault {
        Fault::LinkCut => {
            let advert_at = capture.next_advert(s.advert * 3)?;
            lab.cut_link(0)?;
            let cut_at = now_secs();
            (cut_at, Some((cut_at - advert_at) * 1000.0))
        }
        Fault::Sigterm => {
            let at = now_secs();
            procs[0].terminate(Duration::from_secs(10))?;
            (at, None)
        }
    };
    lab.wait_single_holder_among(vip, &[1], s.advert * 4 + Duration::from_secs(3))?;
    lab.wait_client_neigh_is(vip, 1, Duration::from_secs(5))?;
    thread::sleep(Duration::from_millis(500));
    let outage = prober.stop()?;
    let takeover_ms = takeover_ms(&capture.finish(), s.fault, fault_at)?;
    Ok(Run {
        gap_ms: outage.longest_gap_ms(),
        // `longest_unanswered` is (unanswered in a row + 1) x the nominal interval.
        lost_in_a_row: (outage.longest_unanswered.as_millis() / PROBE.as_millis())
            .saturating_sub(1)
            .try_into()
            .unwrap_or(u32::MAX),
        takeover_ms,
        phase_ms,
    })
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

/// `median (min-max)` of the runs that produced the figure, plus how many runs failed.
fn cell(values: &[f64], failed: usize) -> String {
    if values.is_empty() {
        return format!("n/a ({failed} failed)");
    }
    let mut v = values.to_vec();
    let med = median(&mut v);
    let failed = if failed == 0 {
        String::new()
    } else {
        format!(", {failed} failed")
    };
    format!("{med:.0} ({:.0}-{:.0}{failed})", v[0], v[v.len() - 1])
}

#[derive(Default)]
struct Results {
    runs: Vec<Run>,
    errors: Vec<String>,
}

impl Results {
    fn cell(&self, f: impl Fn(&Run) -> Option<f64>) -> String {
        let v: Vec<f64> = self.runs.iter().filter_map(f).collect();
        cell(&v, self.errors.len())
    }
}

fn parse_args() -> std::result::Result<(usize, Vec<Daemon>, bool), String> {
    let mut runs = 5;
    let mut bfd = false;
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
                None => return Err("--runs needs a positive number".into()),
            },
            "--only" => match args.next().as_deref() {
                Some("keepalived") => daemons = vec![Daemon::Keepalived],
                Some("vipd") => daemons = vec![Daemon::Vipd],
                _ => return Err("--only takes keepalived or vipd".into()),
            },
            "--bfd" => bfd = true,
            _ => {
                return Err(
                    "usage: bench-failover [--bfd] [--runs N] [--only keepalived|vipd]".into(),
                )
            }
        }
    }
    Ok((runs, daemons, bfd))
}

fn main() -> ExitCode {
    let (runs, daemons, bfd) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };

    let scenarios: &[Scenario] = if bfd { &BFD_SCENARIOS } else { &SCENARIOS };
    // results[scenario][daemon]
    let mut results: Vec<Vec<Results>> = scenarios
        .iter()
        .map(|_| daemons.iter().map(|_| Results::default()).collect())
        .collect();
    for r in 1..=runs {
        for (si, s) in scenarios.iter().enumerate() {
            // Alternate which daemon goes first, so neither always runs right after a lab teardown.
            let mut order: Vec<usize> = (0..daemons.len()).collect();
            if r % 2 == 0 {
                order.reverse();
            }
            for di in order {
                let d = daemons[di];
                let slot = &mut results[si][di];
                match run_once(d, s) {
                    Ok(run) => {
                        eprintln!(
                            "{} | {} | run {r}/{runs}: gap {:.0} ms, {} probes lost in a row, takeover {:.1} ms{}",
                            d.name(),
                            s.title,
                            run.gap_ms,
                            run.lost_in_a_row,
                            run.takeover_ms,
                            run.phase_ms
                                .map(|p| format!(", cut {p:.1} ms after an advert"))
                                .unwrap_or_default()
                        );
                        slot.runs.push(run);
                    }
                    Err(e) => {
                        eprintln!("{} | {} | run {r}/{runs} failed: {e:#}", d.name(), s.title);
                        slot.errors.push(format!("{e:#}"));
                    }
                }
            }
        }
    }

    let names: Vec<&str> = daemons.iter().map(|d| d.name()).collect();
    let header = |first: &str, extra: &str| {
        println!("| {first} |{extra} {} |", names.join(" | "));
        println!(
            "|---|{}{}",
            if extra.is_empty() { "" } else { "---|" },
            "---|".repeat(names.len())
        );
    };

    println!(
        "\nClient-seen outage in ms: longest gap between replies to `ping -i 0.01` of the VIP (16-18 ms apart in practice); median (min-max) of {runs} runs.\n"
    );
    header("scenario", " target |");
    for (s, row) in scenarios.iter().zip(&results) {
        let cells: Vec<String> = row.iter().map(|r| r.cell(|x| Some(x.gap_ms))).collect();
        println!("| {} | {} | {} |", s.title, s.target(), cells.join(" | "));
    }

    println!("\nLongest run of consecutive unanswered probes (0 = no probe lost):\n");
    header("scenario", "");
    for (s, row) in scenarios.iter().zip(&results) {
        let cells: Vec<String> = row
            .iter()
            .map(|r| r.cell(|x| Some(f64::from(x.lost_in_a_row))))
            .collect();
        println!("| {} | {} |", s.title, cells.join(" | "));
    }

    println!(
        "\nBackup's takeover in ms, captured on the Backup: the Master's last advert before the cut (SIGTERM: its priority-0 advert) to the Backup's first gratuitous ARP:\n"
    );
    header("scenario", " protocol wait |");
    for (s, row) in scenarios.iter().zip(&results) {
        let cells: Vec<String> = row
            .iter()
            .map(|r| r.cell(|x| Some(x.takeover_ms)))
            .collect();
        let wait = match s.fault {
            Fault::LinkCut if s.bfd => "vipd: BFD detection + Liveness_Skew",
            Fault::LinkCut => "MDI",
            Fault::Sigterm => "Skew_Time",
        };
        println!(
            "| {} | {wait} {:.1} | {} |",
            s.title,
            s.protocol_wait_ms(),
            cells.join(" | ")
        );
    }

    println!("\nCut this long after the advert the Backup heard last (ms; the capture's receive time to the end of `ip link set down`):\n");
    header("scenario", "");
    for (s, row) in scenarios.iter().zip(&results) {
        if s.fault != Fault::LinkCut {
            continue;
        }
        let cells: Vec<String> = row.iter().map(|r| r.cell(|x| x.phase_ms)).collect();
        println!("| {} | {} |", s.title, cells.join(" | "));
    }

    let mut complete = true;
    for (s, row) in scenarios.iter().zip(&results) {
        for (d, r) in daemons.iter().zip(row) {
            for e in &r.errors {
                println!("\nfailed run, {} | {}: {e}", d.name(), s.title);
            }
            complete &= !r.runs.is_empty();
        }
    }
    // A failed run is reported above and counted in its cell; only a cell without a single
    // measurement makes the benchmark itself a failure.
    if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v2_advert_line_yields_its_time_and_priority() {
        let line = "1732530000.123456 IP 192.0.2.11 > 192.0.2.12: VRRPv2, Advertisement, vrid 14, prio 70, authtype simple, intvl 1s, length 20";
        assert_eq!(
            parse_capture_line(line),
            Some(Seen::Advert {
                at: 1732530000.123456,
                priority: 70
            })
        );
    }

    #[test]
    fn a_v3_resign_advert_has_priority_zero() {
        let line = "1732530001.5 IP 192.0.2.11 > 192.0.2.12: VRRPv3, Advertisement, vrid 14, prio 0, intvl 10cs, length 12";
        assert_eq!(
            parse_capture_line(line),
            Some(Seen::Advert {
                at: 1732530001.5,
                priority: 0
            })
        );
    }

    #[test]
    fn an_arp_naming_the_vip_is_a_garp_and_other_arps_are_ignored() {
        let garp = "1732530002.25 ARP, Request who-has 192.0.2.5 tell 192.0.2.5, length 28";
        let other = "1732530002.5 ARP, Request who-has 192.0.2.11 tell 192.0.2.12, length 28";
        assert_eq!(
            parse_capture_line(garp),
            Some(Seen::Garp { at: 1732530002.25 })
        );
        assert_eq!(parse_capture_line(other), None);
    }

    #[test]
    fn cut_takeover_runs_from_the_last_advert_before_the_cut_to_the_first_garp() {
        let seen = [
            Seen::Advert {
                at: 10.0,
                priority: 70,
            },
            Seen::Advert {
                at: 11.0,
                priority: 70,
            },
            Seen::Garp { at: 14.85 },
            Seen::Garp { at: 14.9 },
        ];
        let ms = takeover_ms(&seen, Fault::LinkCut, 11.01).unwrap();
        assert_eq!(ms.round(), 3850.0);
    }

    #[test]
    fn sigterm_takeover_runs_from_the_priority_zero_advert() {
        let seen = [
            Seen::Advert {
                at: 10.0,
                priority: 70,
            },
            Seen::Advert {
                at: 10.4,
                priority: 0,
            },
            Seen::Garp { at: 11.25 },
        ];
        let ms = takeover_ms(&seen, Fault::Sigterm, 10.39).unwrap();
        assert_eq!(ms.round(), 850.0);
    }

    #[test]
    fn mdi_and_skew_at_priority_40_match_rfc_9568_6_1() {
        let [cut_1s, cut_100ms, sigterm] = &SCENARIOS;
        assert_eq!(cut_1s.protocol_wait_ms(), 3843.75);
        assert_eq!(cut_100ms.protocol_wait_ms(), 384.375);
        assert_eq!(sigterm.protocol_wait_ms(), 843.75);
    }

    #[test]
    fn cell_shows_median_range_and_failures() {
        assert_eq!(cell(&[30.0, 10.0, 20.0], 0), "20 (10-30)");
        assert_eq!(cell(&[30.0, 10.0], 1), "20 (10-30, 1 failed)");
        assert_eq!(cell(&[], 2), "n/a (2 failed)");
    }
}
