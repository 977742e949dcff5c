//! keepalived as OpenShift runs it (reference/openshift.md section 3), for the baseline tests, the
//! mixed vipd + keepalived clusters and the failover benchmark.
//!
//! What the rendering keeps from OpenShift's template: every node starts as BACKUP and preempts,
//! VRRPv2 with PASS authentication for IPv4 and v3 without authentication for IPv6, unicast to the
//! other nodes, a `/32` IPv4 VIP labelled `vip` (a `/128` IPv6 VIP), and GARP 5 on becoming
//! Master, 5 more after 5 s, one every 60 s. Health-check scripts are left out: the lab moves VIPs
//! by cutting links and killing daemons, not by failing checks.

use std::fmt::Write as _;
use std::fs;
use std::net::IpAddr;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::host::{Host, Proc};
use crate::topology::{Lab, IFACE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// RFC 3768; whole-second adverts only.
    V2,
    /// RFC 9568 (5798); keepalived 2.2.7 always computes the IPv4 checksum with a pseudo-header.
    V3,
}

/// One `vrrp_instance` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    pub vrid: u8,
    pub priority: u8,
    pub advert: Duration,
    pub version: Version,
    pub vip: IpAddr,
    /// PASS authentication (VRRPv2 only; keepalived sends the first 8 bytes).
    pub password: Option<String>,
    /// Our own address for unicast adverts; with no peers the instance uses multicast.
    pub unicast_src: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    /// A `bfd_instance` to this session's peer, tracked with `track_bfd` and this weight
    /// (keepalived's only use of BFD for VRRP: a priority change, or FAULT with weight 0).
    pub track_bfd: Option<(crate::bfd_peers::Session, i32)>,
}

impl Instance {
    /// OpenShift's API instance for `cluster` on a lab node: VRRPv2 PASS for an IPv4 VIP, v3 for an
    /// IPv6 one, 1 s adverts, unicast to `peers`.
    pub fn openshift_api(
        cluster: &str,
        vrid: u8,
        priority: u8,
        vip: IpAddr,
        src: IpAddr,
        peers: Vec<IpAddr>,
    ) -> Instance {
        let v6 = vip.is_ipv6();
        Instance {
            name: format!("{cluster}_API"),
            vrid,
            priority,
            advert: Duration::from_secs(1),
            version: if v6 { Version::V3 } else { Version::V2 },
            vip,
            password: (!v6).then(|| format!("{cluster}_api_vip")),
            unicast_src: Some(src),
            unicast_peers: peers,
            track_bfd: None,
        }
    }
}

/// Renders a complete keepalived.conf.
pub fn render(instances: &[Instance]) -> Result<String> {
    let mut out = String::new();
    // Same global settings as OpenShift's template; the GARP pair is keepalived's default, written
    // out so the baseline does not depend on it.
    out.push_str(
        "global_defs {\n    enable_script_security\n    script_user root\n    max_auto_priority -1\n    \
         vrrp_garp_master_delay 5\n    vrrp_garp_master_repeat 5\n    vrrp_garp_master_refresh 60\n}\n",
    );
    for i in instances {
        render_instance(&mut out, i)?;
    }
    Ok(out)
}

fn render_instance(out: &mut String, i: &Instance) -> Result<()> {
    if i.version == Version::V2
        && (i.vip.is_ipv6() || i.advert.subsec_nanos() != 0 || i.advert.is_zero())
    {
        bail!(
            "keepalived instance {}: VRRPv2 carries IPv4 only and whole-second adverts (got VIP {}, advert {:?})",
            i.name,
            i.vip,
            i.advert
        );
    }
    if i.version == Version::V3 && i.password.is_some() {
        bail!(
            "keepalived instance {}: VRRPv3 has no authentication; drop the password",
            i.name
        );
    }
    let advert = i.advert.as_secs_f64();
    // `writeln!` into a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(out, "\nvrrp_instance {} {{", i.name);
    let _ = writeln!(out, "    state BACKUP");
    let _ = writeln!(out, "    interface {IFACE}");
    let _ = writeln!(out, "    virtual_router_id {}", i.vrid);
    let _ = writeln!(out, "    priority {}", i.priority);
    let _ = writeln!(out, "    advert_int {advert}");
    let _ = writeln!(
        out,
        "    version {}",
        if i.version == Version::V2 { 2 } else { 3 }
    );
    if let Some(src) = i.unicast_src.filter(|_| !i.unicast_peers.is_empty()) {
        let _ = writeln!(out, "    unicast_src_ip {src}");
        let _ = writeln!(out, "    unicast_peer {{");
        for p in &i.unicast_peers {
            let _ = writeln!(out, "        {p}");
        }
        let _ = writeln!(out, "    }}");
    }
    if let Some(pw) = &i.password {
        let _ = writeln!(
            out,
            "    authentication {{\n        auth_type PASS\n        auth_pass {pw}\n    }}"
        );
    }
    let vip = match i.vip {
        IpAddr::V4(v4) => format!("{v4}/32 label vip"),
        IpAddr::V6(v6) => format!("{v6}/128"),
    };
    let _ = writeln!(out, "    virtual_ipaddress {{\n        {vip}\n    }}");
    let bfd_name = format!("{}_bfd", i.name);
    if let Some((_, weight)) = &i.track_bfd {
        let _ = writeln!(
            out,
            "    track_bfd {{\n        {bfd_name} weight {weight}\n    }}"
        );
    }
    let _ = writeln!(out, "}}");
    if let Some((session, _)) = &i.track_bfd {
        out.push_str(&crate::bfd_peers::keepalived_bfd_instance(
            &bfd_name, session,
        ));
    }
    Ok(())
}

/// Writes the config into the host's directory and starts keepalived (VRRP subsystem only, in the
/// foreground, logging to the lab log). Pid files are per host, so several run side by side.
pub fn start(host: &Host, instances: &[Instance]) -> Result<Proc> {
    spawn(host, instances, false)
}

/// As [`start`], with the BFD subsystem too (for instances with `track_bfd`).
pub fn start_with_bfd(host: &Host, instances: &[Instance]) -> Result<Proc> {
    spawn(host, instances, true)
}

fn spawn(host: &Host, instances: &[Instance], bfd: bool) -> Result<Proc> {
    let dir = host.dir()?;
    let conf = dir.join("keepalived.conf");
    fs::write(&conf, render(instances)?).with_context(|| format!("writing {}", conf.display()))?;
    let s = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let (conf_s, pid, vrrp_pid) = (s("keepalived.conf"), s("keepalived.pid"), s("vrrp.pid"));
    // A stale pid file from a killed run makes keepalived refuse to start.
    let _ = fs::remove_file(&pid);
    let _ = fs::remove_file(&vrrp_pid);
    let bfd_pid = s("bfd.pid");
    let _ = fs::remove_file(&bfd_pid);
    let mut argv = vec![
        "keepalived",
        "--dont-fork",
        "--log-console",
        "--log-detail",
        "--no-syslog",
        "-f",
        &conf_s,
        "-p",
        &pid,
        "-r",
        &vrrp_pid,
    ];
    if bfd {
        argv.extend(["-b", &bfd_pid]);
    } else {
        argv.push("--vrrp");
    }
    let mut proc = host.spawn("keepalived", &argv)?;
    // keepalived reports config errors and exits at once; catch that here, not as a missing VIP.
    thread::sleep(Duration::from_millis(150));
    proc.ensure_running()?;
    Ok(proc)
}

/// Starts OpenShift's API instance on lab nodes `0..priorities.len()`, node `i` with
/// `priorities[i]`, unicast to the other nodes, `advert` between adverts (v3 when sub-second or
/// IPv6, else v2 PASS). VRID 14 is `ostest-api` (reference/openshift.md section 2).
pub fn start_cluster(
    lab: &Lab,
    priorities: &[u8],
    vip: IpAddr,
    advert: Duration,
) -> Result<Vec<Proc>> {
    let addr = |i: usize| -> IpAddr {
        if vip.is_ipv6() {
            lab.node(i).ipv6().into()
        } else {
            lab.node(i).ipv4().into()
        }
    };
    let mut procs = Vec::new();
    for (i, &priority) in priorities.iter().enumerate() {
        let peers = (0..priorities.len())
            .filter(|&j| j != i)
            .map(addr)
            .collect();
        let mut inst = Instance::openshift_api("ostest", 14, priority, vip, addr(i), peers);
        inst.advert = advert;
        if advert.subsec_nanos() != 0 {
            inst.version = Version::V3;
            inst.password = None;
        }
        procs.push(
            start(lab.node(i), &[inst])
                .with_context(|| format!("starting keepalived on node {i}"))?,
        );
    }
    Ok(procs)
}

/// Resident memory of keepalived on `host` (parent + VRRP child), in KiB.
pub fn rss_kib(host: &Host) -> Result<u64> {
    let dir = host.dir()?;
    let mut total = 0;
    for file in ["keepalived.pid", "vrrp.pid"] {
        let path = dir.join(file);
        let pid =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        total += crate::proc_rss_kib(
            pid.trim()
                .parse()
                .with_context(|| format!("pid in {}", path.display()))?,
        )?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openshift_ipv4_api_instance_renders_v2_pass_unicast_with_a_labelled_32() {
        let i = Instance::openshift_api(
            "ostest",
            14,
            70,
            "192.0.2.5".parse().unwrap(),
            "192.0.2.11".parse().unwrap(),
            vec!["192.0.2.12".parse().unwrap(), "192.0.2.13".parse().unwrap()],
        );
        let conf = render(&[i]).unwrap();
        let block = conf.split("vrrp_instance").nth(1).unwrap();
        assert_eq!(
            block,
            " ostest_API {\n    state BACKUP\n    interface eth0\n    virtual_router_id 14\n    priority 70\n    \
             advert_int 1\n    version 2\n    unicast_src_ip 192.0.2.11\n    unicast_peer {\n        192.0.2.12\n        \
             192.0.2.13\n    }\n    authentication {\n        auth_type PASS\n        auth_pass ostest_api_vip\n    }\n    \
             virtual_ipaddress {\n        192.0.2.5/32 label vip\n    }\n}\n"
        );
        assert!(conf.contains("vrrp_garp_master_refresh 60"));
    }

    #[test]
    fn openshift_ipv6_api_instance_is_v3_without_authentication() {
        let i = Instance::openshift_api(
            "ostest",
            14,
            40,
            "2001:db8::5".parse().unwrap(),
            "2001:db8::11".parse().unwrap(),
            vec![],
        );
        let conf = render(&[i]).unwrap();
        assert!(conf.contains("    version 3\n"));
        assert!(conf.contains("        2001:db8::5/128\n"));
        assert!(!conf.contains("authentication"));
        assert!(!conf.contains("unicast_peer"));
    }

    #[test]
    fn sub_second_adverts_render_as_decimal_seconds() {
        let mut i = Instance::openshift_api(
            "c",
            1,
            40,
            "2001:db8::5".parse().unwrap(),
            "2001:db8::11".parse().unwrap(),
            vec![],
        );
        i.advert = Duration::from_millis(100);
        assert!(render(&[i]).unwrap().contains("    advert_int 0.1\n"));
    }

    #[test]
    fn v2_with_a_sub_second_advert_is_refused() {
        let mut i = Instance::openshift_api(
            "c",
            1,
            40,
            "192.0.2.5".parse().unwrap(),
            "192.0.2.11".parse().unwrap(),
            vec![],
        );
        i.advert = Duration::from_millis(100);
        assert!(render(&[i]).is_err());
    }
}
