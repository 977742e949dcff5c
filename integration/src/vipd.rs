//! vipd on lab nodes: a TOML config per node (docs/configuration.md) and `vipd run --config FILE`
//! in the node's namespace.
//!
//! The binary is `$VIPD_BIN` when set, else `<workspace>/target/debug/vipd` (scripts/test.sh builds
//! it before the scenario tests; scripts/demo.sh and bench-failover.sh point `VIPD_BIN` at the
//! release build).

use std::fmt::Write as _;
use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::host::{Host, Proc};
use crate::topology::{workspace_dir, Lab, IFACE};

/// One `[[instance]]`. `None` fields are left out, so vipd's own defaults apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    pub vips: Vec<IpAddr>,
    pub priority: u8,
    pub advert: Duration,
    /// 2 or 3.
    pub version: u8,
    pub vrid: Option<u8>,
    /// VRRPv2 PASS password.
    pub password: Option<String>,
    /// `"pseudo-header"` (keepalived's form) or `"rfc9568"`; VRRPv3 over IPv4 only.
    pub checksum: Option<String>,
    pub preempt: Option<bool>,
    pub unicast_source: Option<IpAddr>,
    /// Empty: multicast.
    pub unicast_peers: Vec<IpAddr>,
    pub resign_wait: Option<Duration>,
    /// `check_source`; `None`: vipd's default (on when there are unicast peers).
    pub check_source: Option<bool>,
    /// `accept_from`: senders admitted besides the peers.
    pub accept_from: Vec<IpAddr>,
    /// `[instance.bfd]`: BFD to the peers (or to the Master heard, multicast).
    pub bfd: Option<Bfd>,
}

/// `[instance.bfd]` timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bfd {
    pub min_tx: Duration,
    pub min_rx: Duration,
    pub multiplier: u8,
}

impl Bfd {
    /// `interval` both ways, detection after `multiplier` intervals.
    pub fn every(interval: Duration, multiplier: u8) -> Bfd {
        Bfd {
            min_tx: interval,
            min_rx: interval,
            multiplier,
        }
    }
}

impl Instance {
    /// An instance named `api` on the lab interface: VRRPv3, multicast, vipd's defaults for
    /// everything not given here. VRID 14 matches keepalived::start_cluster so mixed clusters agree.
    pub fn new(vip: IpAddr, priority: u8, advert: Duration) -> Instance {
        Instance {
            name: "api".into(),
            vips: vec![vip],
            priority,
            advert,
            version: 3,
            vrid: Some(14),
            password: None,
            checksum: None,
            preempt: None,
            unicast_source: None,
            unicast_peers: Vec::new(),
            resign_wait: None,
            check_source: None,
            accept_from: Vec::new(),
            bfd: None,
        }
    }
}

/// Renders a vipd config: `cluster_name`, the instances on `eth0`, and a control socket in `dir`
/// (the default under /run would be shared by every node of the lab, which share one file system).
pub fn render(cluster: &str, instances: &[Instance], control_socket: &str) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(out, "cluster_name = {cluster:?}");
    for i in instances {
        let _ = writeln!(out, "\n[[instance]]");
        let _ = writeln!(out, "name = {:?}", i.name);
        let vips: Vec<String> = i.vips.iter().map(|v| format!("\"{v}\"")).collect();
        let _ = writeln!(out, "vips = [{}]", vips.join(", "));
        let _ = writeln!(out, "interface = \"{IFACE}\"");
        if let Some(vrid) = i.vrid {
            let _ = writeln!(out, "vrid = {vrid}");
        }
        let _ = writeln!(out, "priority = {}", i.priority);
        let _ = writeln!(out, "advert_interval = \"{}ms\"", i.advert.as_millis());
        let _ = writeln!(out, "version = {}", i.version);
        if let Some(pw) = &i.password {
            let _ = writeln!(out, "password = {pw:?}");
        }
        if let Some(c) = &i.checksum {
            let _ = writeln!(out, "checksum = {c:?}");
        }
        if let Some(p) = i.preempt {
            let _ = writeln!(out, "preempt = {p}");
        }
        if let Some(src) = i.unicast_source {
            let _ = writeln!(out, "unicast_source = \"{src}\"");
        }
        if !i.unicast_peers.is_empty() {
            let peers: Vec<String> = i.unicast_peers.iter().map(|p| format!("\"{p}\"")).collect();
            let _ = writeln!(out, "unicast_peers = [{}]", peers.join(", "));
        }
        if let Some(w) = i.resign_wait {
            let _ = writeln!(out, "resign_wait = \"{}ms\"", w.as_millis());
        }
        if let Some(c) = i.check_source {
            let _ = writeln!(out, "check_source = {c}");
        }
        if !i.accept_from.is_empty() {
            let from: Vec<String> = i.accept_from.iter().map(|p| format!("\"{p}\"")).collect();
            let _ = writeln!(out, "accept_from = [{}]", from.join(", "));
        }
        if let Some(b) = i.bfd {
            let _ = writeln!(
                out,
                "[instance.bfd]\nmin_tx = \"{}ms\"\nmin_rx = \"{}ms\"\nmultiplier = {}",
                b.min_tx.as_millis(),
                b.min_rx.as_millis(),
                b.multiplier
            );
        }
    }
    let _ = writeln!(out, "\n[control]\nsocket = {control_socket:?}");
    out
}

/// The vipd binary to run: `$VIPD_BIN`, else `<workspace>/target/debug/vipd`.
pub fn binary() -> Result<PathBuf> {
    let path = match std::env::var_os("VIPD_BIN") {
        Some(p) => PathBuf::from(p),
        None => workspace_dir().join("target").join("debug").join("vipd"),
    };
    if !path.is_file() {
        bail!(
            "vipd binary not found at {}; build it with `cargo build -p vipd` (scripts/test.sh does) or set VIPD_BIN",
            path.display()
        );
    }
    Ok(path)
}

/// Writes `<host dir>/vipd.toml` and starts `vipd run --config` in the host's namespace.
pub fn start(host: &Host, instances: &[Instance]) -> Result<Proc> {
    let bin = binary()?;
    let dir = host.dir()?;
    let conf = dir.join("vipd.toml");
    let socket = dir.join("vipd.sock");
    // A socket file left by a SIGKILLed run must not stop the restart.
    let _ = fs::remove_file(&socket);
    fs::write(
        &conf,
        render("ostest", instances, &socket.to_string_lossy()),
    )
    .with_context(|| format!("writing {}", conf.display()))?;
    let bin_s = bin.to_string_lossy().into_owned();
    let conf_s = conf.to_string_lossy().into_owned();
    let argv = [
        bin_s.as_str(),
        "run",
        "--config",
        &conf_s,
        "--log-level",
        "info,vipd=debug",
    ];
    let mut proc = host.spawn("vipd", &argv)?;
    // Config errors show within milliseconds; 150 ms is far below any VRRP timer in the tests.
    thread::sleep(Duration::from_millis(150));
    proc.ensure_running()?;
    Ok(proc)
}

/// How nodes of a vipd cluster address each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peering {
    Multicast,
    /// Every node lists every other node (OpenShift's layout).
    Unicast,
}

/// The address family of `vip` on node `i`.
pub fn node_addr(lab: &Lab, i: usize, vip: IpAddr) -> IpAddr {
    if vip.is_ipv6() {
        lab.node(i).ipv6().into()
    } else {
        lab.node(i).ipv4().into()
    }
}

/// The instance node `i` of a `priorities.len()`-node cluster runs.
pub fn cluster_instance(
    lab: &Lab,
    i: usize,
    priorities: &[u8],
    vip: IpAddr,
    advert: Duration,
    peering: Peering,
) -> Instance {
    let mut inst = Instance::new(vip, priorities[i], advert);
    if peering == Peering::Unicast {
        inst.unicast_source = Some(node_addr(lab, i, vip));
        inst.unicast_peers = (0..priorities.len())
            .filter(|&j| j != i)
            .map(|j| node_addr(lab, j, vip))
            .collect();
    }
    inst
}

/// Starts vipd on nodes `0..priorities.len()`, node `i` with `priorities[i]`.
pub fn start_cluster(
    lab: &Lab,
    priorities: &[u8],
    vip: IpAddr,
    advert: Duration,
    peering: Peering,
) -> Result<Vec<Proc>> {
    (0..priorities.len())
        .map(|i| {
            let inst = cluster_instance(lab, i, priorities, vip, advert, peering);
            start(lab.node(i), &[inst]).with_context(|| format!("starting vipd on node {i}"))
        })
        .collect()
}

/// Resident memory of a running vipd, in KiB.
pub fn rss_kib(proc: &Proc) -> Result<u64> {
    let pid = proc.pid().context("vipd was already reaped")?;
    crate::proc_rss_kib(pid as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_given_key_and_nothing_else() {
        let mut i = Instance::new("192.0.2.5".parse().unwrap(), 40, Duration::from_millis(100));
        i.version = 2;
        i.password = Some("ostest_api_vip".into());
        i.unicast_source = Some("192.0.2.11".parse().unwrap());
        i.unicast_peers = vec!["192.0.2.12".parse().unwrap()];
        let text = render("ostest", &[i], "/tmp/x/vipd.sock");
        assert_eq!(
            text,
            "cluster_name = \"ostest\"\n\n[[instance]]\nname = \"api\"\nvips = [\"192.0.2.5\"]\n\
             interface = \"eth0\"\nvrid = 14\npriority = 40\nadvert_interval = \"100ms\"\nversion = 2\n\
             password = \"ostest_api_vip\"\nunicast_source = \"192.0.2.11\"\n\
             unicast_peers = [\"192.0.2.12\"]\n\n[control]\nsocket = \"/tmp/x/vipd.sock\"\n"
        );
    }

    #[test]
    fn rendered_configs_load_in_vipd() {
        let mut v2 = Instance::new("192.0.2.5".parse().unwrap(), 70, Duration::from_secs(1));
        v2.version = 2;
        v2.password = Some("ostest_api_vip".into());
        v2.unicast_source = Some("192.0.2.11".parse().unwrap());
        v2.unicast_peers = vec!["192.0.2.12".parse().unwrap(), "192.0.2.13".parse().unwrap()];
        let mut v3 = Instance::new("192.0.2.6".parse().unwrap(), 40, Duration::from_millis(100));
        v3.name = "ingress".into();
        v3.vrid = Some(93);
        v3.checksum = Some("pseudo-header".into());
        let mut v6 = Instance::new("2001:db8::5".parse().unwrap(), 40, Duration::from_secs(1));
        v6.name = "api6".into();
        v6.vrid = Some(15);
        v6.resign_wait = Some(Duration::from_millis(500));
        let text = render("ostest", &[v2, v3, v6], "/tmp/lab/vipd.sock");
        let config = vipd::config::Config::parse(&text, "lab.toml").unwrap();
        assert_eq!(config.instances.len(), 3);
        assert_eq!(config.instances[0].vrid, 14);
        assert_eq!(config.instances[0].peers.len(), 2);
        assert_eq!(
            config.instances[1].advert_interval,
            Duration::from_millis(100)
        );
        assert_eq!(config.instances[2].resign_wait, Duration::from_millis(500));
        assert_eq!(config.control.socket, PathBuf::from("/tmp/lab/vipd.sock"));
    }
}
