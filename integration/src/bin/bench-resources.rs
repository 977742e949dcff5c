//! Resource benchmark: memory and CPU of keepalived and vipd, same lab shape, same run; prints
//! markdown tables. Run through scripts/bench-resources.sh (root, release build).
//!
//! Each round runs three scenarios on 2-node labs (priorities 70/40, unicast as OpenShift
//! configures it; node 0 is Master of every instance, node 1 Backup):
//! - two instances (API 192.0.2.5 + ingress 192.0.2.6), 1 s adverts (v2 PASS, as OpenShift):
//!   memory from /proc/PID/smaps_rollup after the steady-state window, and CPU over it;
//! - one instance, 10 ms adverts (v3): CPU over the window;
//! - two instances, 10 ms adverts (v3): CPU over the window.
//!
//! `--growth` instead runs 1, 10 and 50 instances at 100 ms adverts (v3), memory and CPU of
//! each, and prints what one more instance costs: the growth per instance should be linear.
//!
//! `--bfd` instead runs OpenShift's two instances at 1 s adverts without BFD, with BFD at
//! 50 ms x 3 and at 10 ms x 3 to the other node (vipd: `[instance.bfd]` on both instances, one
//! shared session; keepalived: one `bfd_instance` tracked by the first instance, its BFD child
//! process counted with the others): what a BFD session costs in CPU.
//!
//! The keepalived lab and the vipd lab of a scenario run at the same time, so both daemons see
//! the same load from the rest of the (shared) machine. CPU is the scheduler's run time of every
//! thread of every process of the daemon (`/proc/PID/task/*/schedstat`; utime + stime only where
//! schedstat is missing), as a percentage of one core over the window. keepalived is
//! started as a stand-alone keepalived is (`--dont-fork`, no `--vrrp`), so it forks what it
//! decides it needs; every process it runs is counted and the tables say how many there were.
//! vipd is started as the systemd unit starts it (`vipd run --config`, default log level), with
//! VRRP only (no `[dns]`, no `[http]`).

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lab::{keepalived, vipd, Lab, Proc};

const PRIORITIES: [u8; 2] = [70, 40];
/// The instances, in the order they are added: OpenShift's API and ingress first, then as
/// many more as a growth scenario asks for.
const FIRST_INSTANCES: [(&str, u8, [u8; 4]); 2] =
    [("api", 14, [192, 0, 2, 5]), ("ingress", 15, [192, 0, 2, 6])];
/// The most instances a scenario may have: VIPs 192.0.2.130.. stay below the lab's .255.
const MAX_INSTANCES: usize = 64;

/// (name, VRID, VIP) of instance `k` (0-based).
fn instance_at(k: usize) -> (String, u8, IpAddr) {
    match FIRST_INSTANCES.get(k) {
        Some(&(name, vrid, vip)) => (name.to_string(), vrid, IpAddr::from(vip)),
        // VRIDs 30.. and VIPs 192.0.2.130.. (the lab's nodes are .11-.90, its client .100).
        None => (
            format!("extra{k}"),
            28 + k as u8,
            IpAddr::from([192, 0, 2, 128 + k as u8]),
        ),
    }
}

/// The first `n` instances.
fn instances(n: usize) -> Vec<(String, u8, IpAddr)> {
    (0..n.min(MAX_INSTANCES)).map(instance_at).collect()
}

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

    /// A log line each time the Backup becomes Master: a flap during the window would be counted.
    fn master_marker(self) -> &'static str {
        match self {
            Daemon::Keepalived => "Entering MASTER STATE",
            Daemon::Vipd => "-> Master",
        }
    }
}

struct Scenario {
    title: String,
    instances: usize,
    advert: Duration,
    memory: bool,
    /// BFD to the other node at this interval, multiplier 3.
    bfd: Option<Duration>,
}

impl Scenario {
    fn new(title: &str, instances: usize, advert: Duration, memory: bool) -> Scenario {
        Scenario {
            title: title.to_string(),
            instances,
            advert,
            memory,
            bfd: None,
        }
    }
}

/// `--bfd`: two instances at 1 s adverts, without BFD and with it at 50 ms and 10 ms.
fn bfd_scenarios() -> Vec<Scenario> {
    [None, Some(50), Some(10)]
        .into_iter()
        .map(|ms| {
            let title = match ms {
                None => "two instances, 1 s adverts, no BFD".to_string(),
                Some(ms) => format!("two instances, 1 s adverts, BFD {ms} ms x 3"),
            };
            Scenario {
                bfd: ms.map(Duration::from_millis),
                ..Scenario::new(&title, 2, Duration::from_secs(1), true)
            }
        })
        .collect()
}

/// The BFD session node `node` runs with the other node of the 2-node lab.
fn bfd_session(lab: &Lab, node: usize, interval: Duration) -> lab::bfd_peers::Session {
    lab::bfd_peers::Session {
        local: lab.node(node).ipv4().into(),
        peer: lab.node(1 - node).ipv4().into(),
        interval,
        multiplier: 3,
    }
}

/// The default scenarios: OpenShift's shape at rest (memory), then CPU at 10 ms adverts.
fn default_scenarios() -> Vec<Scenario> {
    vec![
        Scenario::new(
            "two instances, 1 s adverts",
            2,
            Duration::from_secs(1),
            true,
        ),
        Scenario::new(
            "one instance, 10 ms adverts",
            1,
            Duration::from_millis(10),
            false,
        ),
        Scenario::new(
            "two instances, 10 ms adverts",
            2,
            Duration::from_millis(10),
            false,
        ),
    ]
}

/// Instance counts of `--growth`.
const GROWTH: [usize; 3] = [1, 10, 50];

/// `--growth`: memory and CPU with 1, 10 and 50 instances at 100 ms adverts.
fn growth_scenarios() -> Vec<Scenario> {
    GROWTH
        .iter()
        .map(|&n| {
            let title = format!(
                "{n} instance{}, 100 ms adverts",
                if n == 1 { "" } else { "s" }
            );
            Scenario::new(&title, n, Duration::from_millis(100), true)
        })
        .collect()
}

fn vips(n: usize) -> Vec<IpAddr> {
    instances(n).into_iter().map(|(_, _, v)| v).collect()
}

fn start_keepalived(lab: &Lab, node: usize, s: &Scenario, wrap: &[String]) -> Result<Proc> {
    let host = lab.node(node);
    let peers: Vec<IpAddr> = (0..PRIORITIES.len())
        .filter(|&j| j != node)
        .map(|j| lab.node(j).ipv4().into())
        .collect();
    let mut configs = Vec::new();
    for (name, vrid, vip) in instances(s.instances) {
        let mut i = keepalived::Instance::openshift_api(
            "ostest",
            vrid,
            PRIORITIES[node],
            vip,
            host.ipv4().into(),
            peers.clone(),
        );
        i.name = format!("ostest_{}", name.to_uppercase());
        i.password = Some(format!("ostest_{name}_vip"));
        i.advert = s.advert;
        if s.advert.subsec_nanos() != 0 {
            i.version = keepalived::Version::V3;
            i.password = None;
        }
        if let (Some(interval), true) = (s.bfd, configs.is_empty()) {
            i.track_bfd = Some((bfd_session(lab, node, interval), 10));
        }
        configs.push(i);
    }
    let dir = host.dir()?;
    let conf = dir.join("keepalived.conf");
    fs::write(&conf, keepalived::render(&configs)?)
        .with_context(|| format!("writing {}", conf.display()))?;
    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let (conf, pid, vrrp_pid, check_pid, bfd_pid) = (
        path("keepalived.conf"),
        path("keepalived.pid"),
        path("vrrp.pid"),
        path("checkers.pid"),
        path("bfd.pid"),
    );
    for stale in [&pid, &vrrp_pid, &check_pid, &bfd_pid] {
        // A pid file left by a killed run makes keepalived refuse to start.
        let _ = fs::remove_file(stale);
    }
    let argv = [
        "keepalived",
        "--dont-fork",
        "--log-console",
        "--no-syslog",
        "-f",
        &conf,
        "-p",
        &pid,
        "-r",
        &vrrp_pid,
        "-c",
        &check_pid,
        "-b",
        &bfd_pid,
    ];
    let mut proc = host.spawn("keepalived", &wrapped(wrap, &argv))?;
    thread::sleep(start_grace(wrap));
    proc.ensure_running()?;
    Ok(proc)
}

fn start_vipd(lab: &Lab, node: usize, s: &Scenario, wrap: &[String]) -> Result<Proc> {
    let host = lab.node(node);
    let mut configs = Vec::new();
    for (name, vrid, vip) in instances(s.instances) {
        let mut i = vipd::cluster_instance(
            lab,
            node,
            &PRIORITIES,
            vip,
            s.advert,
            vipd::Peering::Unicast,
        );
        i.name = name.clone();
        i.vrid = Some(vrid);
        if s.advert.subsec_nanos() == 0 {
            i.version = 2;
            i.password = Some(format!("ostest_{name}_vip"));
        }
        i.bfd = s.bfd.map(|interval| vipd::Bfd::every(interval, 3));
        configs.push(i);
    }
    let bin = vipd::binary()?;
    let dir = host.dir()?;
    let conf = dir.join("vipd.toml");
    let socket = dir.join("vipd.sock");
    fs::write(
        &conf,
        vipd::render("ostest", &configs, &socket.to_string_lossy()),
    )
    .with_context(|| format!("writing {}", conf.display()))?;
    let (bin, conf) = (bin.to_string_lossy(), conf.to_string_lossy());
    let mut proc = host.spawn("vipd", &wrapped(wrap, &[&bin, "run", "--config", &conf]))?;
    thread::sleep(start_grace(wrap));
    proc.ensure_running()?;
    Ok(proc)
}

/// One daemon's 2-node lab.
struct Cluster {
    daemon: Daemon,
    // Before `lab`: the daemons stop before their namespaces go.
    procs: Vec<Proc>,
    lab: Lab,
}

impl Cluster {
    fn start(daemon: Daemon, s: &Scenario) -> Result<Cluster> {
        Cluster::start_wrapped(daemon, s, None, &[])
    }

    /// As [`Cluster::start`], with the daemon of node `wrapped.0` started under the command
    /// `wrapped.1` (e.g. valgrind).
    fn start_wrapped(
        daemon: Daemon,
        s: &Scenario,
        node: Option<usize>,
        wrap: &[String],
    ) -> Result<Cluster> {
        let lab = Lab::new(PRIORITIES.len())?;
        let procs = (0..PRIORITIES.len())
            .map(|i| {
                let w = if node == Some(i) { wrap } else { &[] };
                match daemon {
                    Daemon::Keepalived => start_keepalived(&lab, i, s, w),
                    Daemon::Vipd => start_vipd(&lab, i, s, w),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Cluster { daemon, lab, procs })
    }

    fn wait_elected(&self, s: &Scenario) -> Result<()> {
        self.wait_elected_within(s, s.advert * 4 + Duration::from_secs(4))
    }

    fn wait_elected_within(&self, s: &Scenario, limit: Duration) -> Result<()> {
        for vip in vips(s.instances) {
            self.lab
                .wait_holder_is(vip, 0, limit)
                .with_context(|| format!("{}: initial election of {vip}", self.daemon.name()))?;
        }
        Ok(())
    }

    /// Every process of the daemon on `node`: the one started and its descendants.
    fn pids(&self, node: usize) -> Result<Vec<u32>> {
        let root = self.procs[node]
            .pid()
            .context("the daemon was already reaped")?;
        descendants(root as u32)
    }

    fn masters_on_backup(&self) -> usize {
        self.procs[1]
            .log()
            .matches(self.daemon.master_marker())
            .count()
    }
}

/// `pid` and every process below it, from the parent ids in /proc/*/stat.
fn descendants(pid: u32) -> Result<Vec<u32>> {
    let mut parent_of = Vec::new();
    for entry in fs::read_dir("/proc").context("listing /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // Processes may exit while we look; a missing stat file is not an error.
        if let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) {
            if let Some(ppid) = stat_field(&stat, 4) {
                parent_of.push((p, ppid as u32));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(
            parent_of
                .iter()
                .filter(|&&(_, pp)| pp == parent)
                .map(|&(p, _)| p),
        );
        i += 1;
    }
    Ok(out)
}

/// Field `n` (1-based, as in proc(5)) of /proc/PID/stat. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its closing parenthesis.
fn stat_field(stat: &str, n: usize) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(n.checked_sub(3)?)?.parse().ok()
}

/// CPU time of `pid` in seconds: the scheduler's exact run time summed over its threads
/// (`/proc/PID/task/*/schedstat`, nanoseconds). utime + stime are sampled at the timer tick,
/// which is biased for a daemon whose wake-ups follow a timer (it is on the CPU at a tick far
/// more or less often than its share), so they are only the fallback where schedstat is off.
fn cpu_seconds(pid: u32, hz: f64) -> Result<f64> {
    let dir = format!("/proc/{pid}/task");
    let mut ns: u64 = 0;
    let mut threads = 0;
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let path = entry?.path().join("schedstat");
        // A thread that ended between the listing and the read has nothing left to count.
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        if let Some(run) = text
            .split_whitespace()
            .next()
            .and_then(|f| f.parse::<u64>().ok())
        {
            ns += run;
            threads += 1;
        }
    }
    if threads == 0 {
        return Ok(cpu_ticks(pid)? as f64 / hz);
    }
    Ok(ns as f64 / 1e9)
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    match (stat_field(&stat, 14), stat_field(&stat, 15)) {
        (Some(u), Some(s)) => Ok(u + s),
        _ => bail!("{path}: no utime/stime in fields 14/15: {stat}"),
    }
}

fn clock_ticks_per_second() -> Result<f64> {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("running getconf CLK_TCK")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .with_context(|| format!("getconf CLK_TCK printed {text:?}"))
}

/// The figures of /proc/PID/smaps_rollup, in KiB.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Memory {
    rss: u64,
    pss: u64,
    /// Unique set size: Private_Clean + Private_Dirty.
    uss: u64,
    /// Anonymous memory (heap, stacks): what only swap could reclaim. The rest of RSS is clean
    /// file pages (code, read-only data) the kernel can drop and read back at any time.
    anon: u64,
}

impl std::ops::AddAssign for Memory {
    fn add_assign(&mut self, o: Memory) {
        self.rss += o.rss;
        self.pss += o.pss;
        self.uss += o.uss;
        self.anon += o.anon;
    }
}

fn parse_smaps_rollup(text: &str) -> Memory {
    let mut m = Memory::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let kib: u64 = value
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap_or(0);
        match key {
            "Rss" => m.rss = kib,
            "Pss" => m.pss = kib,
            "Private_Clean" | "Private_Dirty" => m.uss += kib,
            "Anonymous" => m.anon = kib,
            _ => {}
        }
    }
    m
}

fn memory(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(parse_smaps_rollup(&text))
}

/// Rss and Pss (KiB) per mapping in /proc/PID/smaps: file basename and permissions, `[heap]`,
/// `[stack]`, or `[anon]`; largest Rss first.
fn parse_smaps_breakdown(text: &str) -> Vec<(String, u64, u64)> {
    let mut by_name: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if first.contains('-') && !first.ends_with(':') {
            // A mapping header: range perms offset dev inode [path]. Files are split by
            // permissions: r-xp is code, r--p read-only data, rw-p writable data.
            let perms = words.next().unwrap_or_default();
            current = match words.nth(3) {
                Some(path) if path.starts_with('/') => {
                    format!("{} {perms}", path.rsplit('/').next().unwrap_or(path))
                }
                Some(special) => special.to_string(),
                None => "[anon]".to_string(),
            };
            continue;
        }
        let kib = || -> u64 {
            words
                .clone()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        match first {
            "Rss:" => by_name.entry(current.clone()).or_default().0 += kib(),
            "Pss:" => by_name.entry(current.clone()).or_default().1 += kib(),
            _ => {}
        }
    }
    let mut v: Vec<(String, u64, u64)> = by_name
        .into_iter()
        .filter(|(_, (rss, _))| *rss > 0)
        .map(|(n, (rss, pss))| (n, rss, pss))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

fn breakdown(pids: &[u32]) -> Result<Vec<(String, u64, u64)>> {
    let mut total: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for pid in pids {
        let path = format!("/proc/{pid}/smaps");
        let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        for (name, rss, pss) in parse_smaps_breakdown(&text) {
            let e = total.entry(name).or_default();
            e.0 += rss;
            e.1 += pss;
        }
    }
    let mut v: Vec<(String, u64, u64)> = total.into_iter().map(|(n, (r, p))| (n, r, p)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(v)
}

/// What one daemon on one node did over the window.
#[derive(Debug, Clone)]
struct NodeFigures {
    processes: usize,
    cpu_percent: f64,
    memory: Option<Memory>,
    breakdown: Vec<(String, u64, u64)>,
}

/// Figures of one scenario for one daemon: `[Master, Backup]`, plus Backup -> Master flaps.
struct ClusterFigures {
    nodes: [NodeFigures; 2],
    flaps: usize,
}

fn measure(
    s: &Scenario,
    daemons: &[Daemon],
    window: Duration,
    hz: f64,
) -> Result<Vec<ClusterFigures>> {
    let clusters = daemons
        .iter()
        .map(|&d| Cluster::start(d, s))
        .collect::<Result<Vec<_>>>()?;
    for c in &clusters {
        c.wait_elected(s)?;
    }
    // Past the start-up GARP burst; vipd drops its start-up code pages ~2 s after start.
    thread::sleep(Duration::from_secs(3));
    let mut before = Vec::new();
    for c in &clusters {
        let mut per_node = Vec::new();
        for node in 0..2 {
            let pids = c.pids(node)?;
            let cpu: f64 = pids
                .iter()
                .map(|&p| cpu_seconds(p, hz))
                .sum::<Result<f64>>()?;
            per_node.push((pids, cpu));
        }
        before.push((per_node, c.masters_on_backup()));
    }
    let start = Instant::now();
    thread::sleep(window);
    let elapsed = start.elapsed().as_secs_f64();
    let mut out = Vec::new();
    for (c, (per_node, masters_before)) in clusters.iter().zip(before) {
        let mut nodes = Vec::new();
        for (node, (pids, cpu_before)) in per_node.into_iter().enumerate() {
            let now_pids = c.pids(node)?;
            if now_pids != pids {
                bail!(
                    "{} on node {node}: its processes changed during the window ({pids:?} -> {now_pids:?})",
                    c.daemon.name()
                );
            }
            let cpu: f64 = pids
                .iter()
                .map(|&p| cpu_seconds(p, hz))
                .sum::<Result<f64>>()?;
            let mut mem = None;
            let mut parts = Vec::new();
            if s.memory {
                let mut total = Memory::default();
                for &p in &pids {
                    total += memory(p)?;
                }
                mem = Some(total);
                parts = breakdown(&pids)?;
            }
            nodes.push(NodeFigures {
                processes: pids.len(),
                cpu_percent: (cpu - cpu_before).max(0.0) / elapsed * 100.0,
                memory: mem,
                breakdown: parts,
            });
        }
        for vip in vips(s.instances) {
            let holders = c.lab.who_has(vip)?;
            if holders != [0] {
                bail!(
                    "{}: {vip} is held by nodes {holders:?} at the end of the window, expected node 0 only",
                    c.daemon.name()
                );
            }
        }
        let [master, backup]: [NodeFigures; 2] = nodes
            .try_into()
            .map_err(|_| anyhow::anyhow!("expected figures for two nodes"))?;
        out.push(ClusterFigures {
            nodes: [master, backup],
            flaps: c.masters_on_backup().saturating_sub(masters_before),
        });
    }
    Ok(out)
}

/// `argv` run under `wrap` (nothing when `wrap` is empty).
fn wrapped<'a>(wrap: &'a [String], argv: &[&'a str]) -> Vec<&'a str> {
    wrap.iter()
        .map(String::as_str)
        .chain(argv.iter().copied())
        .collect()
}

/// How long a daemon gets to start before it is checked: valgrind needs seconds.
fn start_grace(wrap: &[String]) -> Duration {
    if wrap.is_empty() {
        Duration::from_millis(150)
    } else {
        Duration::from_secs(3)
    }
}

/// IPv4 packets received in `host`'s namespace so far (`Ip: InReceives` of /proc/net/snmp):
/// in a 2-node lab at rest, the Backup receives the Master's adverts and nothing else of note.
fn ip_in_receives(host: &lab::Host) -> Result<u64> {
    let snmp = host.exec(&["cat", "/proc/net/snmp"])?;
    let mut lines = snmp.lines().filter(|l| l.starts_with("Ip:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        bail!("no Ip: lines in /proc/net/snmp of {}", host.ns());
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "InReceives")
        .and_then(|(_, v)| v.parse().ok())
        .context("no InReceives counter in /proc/net/snmp")
}

/// The `summary:` (or `totals:`) instruction count of a callgrind output file.
fn callgrind_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The shorter of the two runs [`instructions`] compares.
const SHORT_RUN: Duration = Duration::from_secs(2);

/// User-space instructions per advert of one daemon on one node (0 = Master, 1 = Backup), 10 ms
/// adverts, one instance: the node's daemon runs under callgrind twice, once for [`SHORT_RUN`]
/// and once for `window` longer after the election has settled; the difference of the two
/// totals (each counted from start to a clean exit) over the difference of the adverts is
/// the cost of one advert, start-up and shutdown cancelling out. Adverts are counted as the
/// IPv4 packets the Backup received (at rest the Master sends only adverts).
///
/// The counters are not zeroed and dumped in a running daemon (callgrind_control): that
/// freezes a multi-threaded process for about 100 ms while valgrind's gdbserver serves the
/// request, long enough for a 10 ms Backup to take over.
fn instructions(daemon: Daemon, node: usize, window: Duration) -> Result<(u64, u64)> {
    let (short_total, short_adverts) = instructions_of_run(daemon, node, SHORT_RUN)?;
    let (long_total, long_adverts) = instructions_of_run(daemon, node, SHORT_RUN + window)?;
    if long_adverts <= short_adverts || long_total < short_total {
        bail!(
            "{}: the longer run counted {long_total} instructions and {long_adverts} adverts, \
             the shorter {short_total} and {short_adverts}: no difference to divide",
            daemon.name()
        );
    }
    Ok((long_total - short_total, long_adverts - short_adverts))
}

/// One run of [`instructions`]: the daemon of `node` under callgrind, `window` after the
/// election has settled, then SIGTERM; its instructions from start to exit (summed over its
/// processes) and the adverts the Backup received in the window.
fn instructions_of_run(daemon: Daemon, node: usize, window: Duration) -> Result<(u64, u64)> {
    let s = &default_scenarios()[1];
    let dir = std::env::temp_dir().join(format!("vipd-callgrind-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let wrap: Vec<String> = vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        "--trace-children=yes".into(),
        "-q".into(),
        format!("--callgrind-out-file={}/callgrind.%p", dir.display()),
    ];
    let mut c = Cluster::start_wrapped(daemon, s, Some(node), &wrap)?;
    c.wait_elected_within(s, Duration::from_secs(30))?;
    thread::sleep(Duration::from_secs(3));
    let before = ip_in_receives(c.lab.node(1))?;
    thread::sleep(window);
    let adverts = ip_in_receives(c.lab.node(1))?.saturating_sub(before);
    let masters = c.masters_on_backup();
    c.procs[node]
        .terminate(Duration::from_secs(30))
        .with_context(|| format!("{}: stopping the measured daemon", daemon.name()))?;
    // Let forked children (keepalived's VRRP process) write their dumps too.
    thread::sleep(Duration::from_millis(500));
    drop(c);
    let mut total = 0;
    let mut dumps = 0;
    for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        // The dump at exit is callgrind.<pid>.
        let is_dump = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("callgrind."))
            .is_some_and(|pid| !pid.is_empty() && pid.chars().all(|ch| ch.is_ascii_digit()));
        if is_dump {
            let text =
                fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            total += callgrind_total(&text)
                .with_context(|| format!("no instruction total in {}", path.display()))?;
            dumps += 1;
        }
    }
    if std::env::var_os("KEEP_CALLGRIND").is_some() {
        // For `callgrind_annotate <dir>/callgrind.<pid>`: where the instructions go.
        let kept = dir.with_file_name(format!(
            "vipd-callgrind-{}-{node}-{}s",
            daemon.name().replace(' ', "-"),
            window.as_secs()
        ));
        let _ = fs::remove_dir_all(&kept);
        fs::rename(&dir, &kept).with_context(|| format!("keeping {}", dir.display()))?;
        eprintln!("callgrind output kept in {}", kept.display());
    } else {
        let _ = fs::remove_dir_all(&dir);
    }
    if dumps == 0 {
        bail!("{}: callgrind wrote no dump at exit", daemon.name());
    }
    if masters > 0 && node == 1 {
        bail!("{}: the Backup became Master during the run", daemon.name());
    }
    if adverts == 0 {
        bail!(
            "{}: no advert reached the Backup in the window",
            daemon.name()
        );
    }
    Ok((total, adverts))
}

fn instructions_table(daemons: &[Daemon], rounds: usize, window: Duration) -> ExitCode {
    println!(
        "\nUser-space instructions per advert (callgrind), one instance, 10 ms adverts (VRRPv3, unicast), {} s window; median (min-max) of {rounds} rounds:\n",
        window.as_secs()
    );
    println!(
        "| daemon | node | adverts in window | instructions in window | instructions per advert |"
    );
    println!("|---|---|---|---|---|");
    let mut failed = false;
    for &d in daemons {
        for (node, role) in ["Master (sends)", "Backup (receives)"].iter().enumerate() {
            let mut adverts = Vec::new();
            let mut total = Vec::new();
            let mut per = Vec::new();
            for r in 1..=rounds {
                match instructions(d, node, window) {
                    Ok((ir, n)) => {
                        eprintln!(
                            "{} | {role} | round {r}/{rounds}: {ir} instructions, {n} adverts",
                            d.name()
                        );
                        adverts.push(n as f64);
                        total.push(ir as f64);
                        per.push(ir as f64 / n as f64);
                    }
                    Err(e) => {
                        eprintln!("{} | {role} | round {r}/{rounds} failed: {e:#}", d.name());
                        failed = true;
                    }
                }
            }
            println!(
                "| {} | {role} | {} | {} | {} |",
                d.name(),
                cell(&adverts, 0),
                cell(&total, 0),
                cell(&per, 0)
            );
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// One figure of every successful round of scenario `si`, daemon `di`, node `node`.
fn per_round(
    figures: &[Vec<Vec<ClusterFigures>>],
    si: usize,
    di: usize,
    node: usize,
    f: impl Fn(&NodeFigures) -> Option<f64>,
) -> Vec<f64> {
    figures[si]
        .iter()
        .filter_map(|round| f(&round[di].nodes[node]))
        .collect()
}

/// The memory table: every scenario that measured memory, both daemons, Master and Backup.
fn print_memory(
    scenarios: &[Scenario],
    figures: &[Vec<Vec<ClusterFigures>>],
    daemons: &[Daemon],
    secs: u64,
) {
    println!(
        "\nMemory {secs} s after the election; KiB, sum over the daemon's processes (from /proc/PID/smaps_rollup); median (min-max) of the rounds:\n"
    );
    println!("| scenario | daemon | node | processes | RSS | PSS | USS | anonymous |");
    println!("|---|---|---|---|---|---|---|---|");
    for (si, s) in scenarios.iter().enumerate().filter(|(_, s)| s.memory) {
        for (di, d) in daemons.iter().enumerate() {
            for (node, role) in ["Master", "Backup"].iter().enumerate() {
                let pick = |f: fn(&Memory) -> u64| {
                    per_round(figures, si, di, node, |n| {
                        n.memory.as_ref().map(|m| f(m) as f64)
                    })
                };
                let procs = per_round(figures, si, di, node, |n| Some(n.processes as f64));
                println!(
                    "| {} | {} | {role} | {} | {} | {} | {} | {} |",
                    s.title,
                    d.name(),
                    cell(&procs, 0),
                    cell(&pick(|m| m.rss), 0),
                    cell(&pick(|m| m.pss), 0),
                    cell(&pick(|m| m.uss), 0),
                    cell(&pick(|m| m.anon), 0)
                );
            }
        }
    }
}

/// `--growth`: what each instance beyond the first costs, from the medians of the smallest and
/// of each larger scenario: (figure(n) - figure(1)) / (n - 1).
fn print_growth(scenarios: &[Scenario], figures: &[Vec<Vec<ClusterFigures>>], daemons: &[Daemon]) {
    println!(
        "\nCost of one more instance (100 ms adverts), from the medians: (figure with n instances - figure with {}) / (n - {}); CPU in % of one core, memory in KiB:\n",
        scenarios[0].instances, scenarios[0].instances
    );
    println!("| daemon | node | instances | CPU per instance | PSS per instance | anonymous per instance |");
    println!("|---|---|---|---|---|---|");
    let med = |mut v: Vec<f64>| (!v.is_empty()).then(|| median(&mut v));
    for (di, d) in daemons.iter().enumerate() {
        for (node, role) in ["Master", "Backup"].iter().enumerate() {
            let figure = |si: usize, f: &dyn Fn(&NodeFigures) -> Option<f64>| {
                med(per_round(figures, si, di, node, f))
            };
            let cpu = |n: &NodeFigures| Some(n.cpu_percent);
            let pss = |n: &NodeFigures| n.memory.as_ref().map(|m| m.pss as f64);
            let anon = |n: &NodeFigures| n.memory.as_ref().map(|m| m.anon as f64);
            for si in 1..scenarios.len() {
                let extra = (scenarios[si].instances - scenarios[0].instances) as f64;
                let slope = |f: &dyn Fn(&NodeFigures) -> Option<f64>, decimals: usize| match (
                    figure(0, f),
                    figure(si, f),
                ) {
                    (Some(a), Some(b)) => format!("{:.decimals$}", (b - a) / extra),
                    _ => "n/a".into(),
                };
                println!(
                    "| {} | {role} | {} | {} | {} | {} |",
                    d.name(),
                    scenarios[si].instances,
                    slope(&cpu, 3),
                    slope(&pss, 0),
                    slope(&anon, 0)
                );
            }
        }
    }
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

/// `median (min-max)` with `decimals` decimals; `n/a` without values.
fn cell(values: &[f64], decimals: usize) -> String {
    if values.is_empty() {
        return "n/a".into();
    }
    let mut v = values.to_vec();
    let med = median(&mut v);
    format!(
        "{med:.decimals$} ({:.decimals$}-{:.decimals$})",
        v[0],
        v[v.len() - 1]
    )
}

struct Args {
    rounds: usize,
    window: Duration,
    daemons: Vec<Daemon>,
    instructions: bool,
    growth: bool,
    bfd: bool,
}

const USAGE: &str =
    "usage: bench-resources [--instructions | --growth | --bfd] [--rounds N] [--seconds S] [--only keepalived|vipd]";

fn parse_args() -> std::result::Result<Args, String> {
    let mut instructions = false;
    let mut growth = false;
    let mut bfd = false;
    let mut rounds = 3;
    let mut window = Duration::from_secs(30);
    let mut daemons = vec![Daemon::Keepalived, Daemon::Vipd];
    let mut args = std::env::args().skip(1);
    let positive = |v: Option<String>| v.and_then(|n| n.parse().ok()).filter(|&n: &u64| n > 0);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => match positive(args.next()) {
                Some(n) => rounds = n as usize,
                None => return Err("--rounds needs a positive number".into()),
            },
            "--seconds" => match positive(args.next()) {
                Some(n) => window = Duration::from_secs(n),
                None => return Err("--seconds needs a positive number of seconds".into()),
            },
            "--only" => match args.next().as_deref() {
                Some("keepalived") => daemons = vec![Daemon::Keepalived],
                Some("vipd") => daemons = vec![Daemon::Vipd],
                _ => return Err("--only takes keepalived or vipd".into()),
            },
            "--instructions" => instructions = true,
            "--growth" => growth = true,
            "--bfd" => bfd = true,
            _ => return Err(USAGE.into()),
        }
    }
    if [instructions, growth, bfd].iter().filter(|b| **b).count() > 1 {
        return Err(format!(
            "--instructions, --growth and --bfd are separate benchmarks: pick one\n{USAGE}"
        ));
    }
    Ok(Args {
        rounds,
        window,
        daemons,
        instructions,
        growth,
        bfd,
    })
}

fn main() -> ExitCode {
    let Args {
        rounds,
        window,
        daemons,
        instructions,
        growth,
        bfd,
    } = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if instructions {
        return instructions_table(&daemons, rounds, window);
    }
    let hz = match clock_ticks_per_second() {
        Ok(hz) => hz,
        Err(e) => {
            eprintln!("bench-resources: {e:#}");
            return ExitCode::FAILURE;
        }
    };

    let scenarios = if growth {
        growth_scenarios()
    } else if bfd {
        bfd_scenarios()
    } else {
        default_scenarios()
    };
    // figures[scenario] = one Vec<ClusterFigures> (per daemon) per successful round.
    let mut figures: Vec<Vec<Vec<ClusterFigures>>> = scenarios.iter().map(|_| Vec::new()).collect();
    let mut errors = Vec::new();
    for r in 1..=rounds {
        for (si, s) in scenarios.iter().enumerate() {
            match measure(s, &daemons, window, hz) {
                Ok(f) => {
                    for (d, c) in daemons.iter().zip(&f) {
                        let mem = |n: &NodeFigures| {
                            n.memory
                                .map(|m| {
                                    format!(
                                        ", RSS {} PSS {} USS {} anonymous {} KiB",
                                        m.rss, m.pss, m.uss, m.anon
                                    )
                                })
                                .unwrap_or_default()
                        };
                        eprintln!(
                            "{} | {} | round {r}/{rounds}: Master {} proc, CPU {:.2} %{}; Backup {} proc, CPU {:.2} %{}; flaps {}",
                            d.name(),
                            s.title,
                            c.nodes[0].processes,
                            c.nodes[0].cpu_percent,
                            mem(&c.nodes[0]),
                            c.nodes[1].processes,
                            c.nodes[1].cpu_percent,
                            mem(&c.nodes[1]),
                            c.flaps
                        );
                    }
                    figures[si].push(f);
                }
                Err(e) => {
                    eprintln!("{} | round {r}/{rounds} failed: {e:#}", s.title);
                    errors.push(format!("{} | round {r}: {e:#}", s.title));
                }
            }
        }
    }

    let secs = window.as_secs();
    print_memory(&scenarios, &figures, &daemons, secs);
    println!(
        "\nCPU, run time (schedstat) over {secs} s as % of one core, sum over the daemon's processes; median (min-max) of the rounds; Backup -> Master flaps in the windows:\n"
    );
    let mut head = String::from("| scenario |");
    let mut rule = String::from("|---|");
    for d in &daemons {
        head.push_str(&format!(" {0} Master | {0} Backup |", d.name()));
        rule.push_str("---|---|");
    }
    head.push_str(" flaps |");
    rule.push_str("---|");
    println!("{head}\n{rule}");
    for (s, rounds_of) in scenarios.iter().zip(&figures) {
        let mut row = format!("| {} |", s.title);
        let mut flaps = Vec::new();
        for (di, d) in daemons.iter().enumerate() {
            for node in 0..2 {
                let v: Vec<f64> = rounds_of
                    .iter()
                    .map(|round| round[di].nodes[node].cpu_percent)
                    .collect();
                row.push_str(&format!(" {} |", cell(&v, 2)));
            }
            let n: usize = rounds_of.iter().map(|round| round[di].flaps).sum();
            flaps.push(format!("{} {n}", d.name()));
        }
        row.push_str(&format!(" {} |", flaps.join(", ")));
        println!("{row}");
    }

    if growth {
        print_growth(&scenarios, &figures, &daemons);
    }

    if let Some(last) = figures[0].last() {
        for (d, c) in daemons.iter().zip(last) {
            let m = &c.nodes[0];
            println!(
                "\nWhat makes up the Master's RSS, {}, {} (last round; KiB, largest first, the 15 largest of 64 KiB or more):\n",
                d.name(),
                scenarios[0].title
            );
            println!("| mapping | RSS | PSS |");
            println!("|---|---|---|");
            for (name, rss, pss) in m.breakdown.iter().filter(|b| b.1 >= 64).take(15) {
                println!("| {name} | {rss} | {pss} |");
            }
        }
    }

    for e in &errors {
        println!("\nfailed round, {e}");
    }
    // A failed round is listed above; only a scenario without a single measurement fails the run.
    if figures.iter().all(|f| !f.is_empty()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_a_command_name_with_spaces() {
        let stat =
            "4242 (vrrp (child) x) S 4241 4242 4242 0 -1 4194560 300 0 0 0 17 9 0 0 20 0 1 0 100 0";
        assert_eq!(stat_field(stat, 4), Some(4241));
        assert_eq!(stat_field(stat, 14), Some(17));
        assert_eq!(stat_field(stat, 15), Some(9));
    }

    #[test]
    fn smaps_rollup_uss_is_private_clean_plus_private_dirty() {
        let text = "\
55d0c0a00000-7ffd8f1f3000 ---p 00000000 00:00 0                          [rollup]
Rss:                2100 kB
Pss:                1500 kB
Pss_Anon:            700 kB
Shared_Clean:        900 kB
Shared_Dirty:          0 kB
Private_Clean:       400 kB
Private_Dirty:       800 kB
Referenced:         2100 kB
Anonymous:           700 kB
";
        assert_eq!(
            parse_smaps_rollup(text),
            Memory {
                rss: 2100,
                pss: 1500,
                uss: 1200,
                anon: 700
            }
        );
    }

    #[test]
    fn smaps_breakdown_splits_files_by_permissions_and_names_anonymous_mappings() {
        let text = "\
55d0c0a00000-55d0c0b00000 r--p 00000000 fd:01 1234 /usr/local/bin/vipd
Rss:                 100 kB
Pss:                 100 kB
55d0c0b00000-55d0c0c00000 r-xp 00100000 fd:01 1234 /usr/local/bin/vipd
Rss:                  40 kB
Pss:                  40 kB
55d0c0c00000-55d0c0d00000 r-xp 00200000 fd:01 1234 /usr/local/bin/vipd
Rss:                  20 kB
Pss:                  20 kB
55d0c1000000-55d0c1100000 rw-p 00000000 00:00 0 [heap]
Rss:                 300 kB
Pss:                 300 kB
7f0000000000-7f0000100000 rw-p 00000000 00:00 0 
Rss:                  40 kB
Pss:                  40 kB
7f0000100000-7f0000200000 r-xp 00000000 fd:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                   0 kB
Pss:                   0 kB
";
        assert_eq!(
            parse_smaps_breakdown(text),
            vec![
                ("[heap]".to_string(), 300, 300),
                ("vipd r--p".to_string(), 100, 100),
                ("vipd r-xp".to_string(), 60, 60),
                ("[anon]".to_string(), 40, 40),
            ]
        );
    }

    #[test]
    fn cell_shows_median_and_range() {
        assert_eq!(cell(&[0.5, 0.25, 2.0], 2), "0.50 (0.25-2.00)");
        assert_eq!(cell(&[], 0), "n/a");
    }
}
