//! Other BFD implementations as lab peers of vipd: FRR's `bfdd` and keepalived's `bfd_instance`
//! (Debian bookworm: FRR 8.4.4, keepalived 2.2.7), each running alone in a node's namespace with
//! one single-hop session, for the interop scenarios and the failover benchmark.

use std::fmt::Write as _;
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::host::{Host, Proc};

/// One single-hop session as the other implementation configures it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// This host's address.
    pub local: IpAddr,
    /// The vipd node's address.
    pub peer: IpAddr,
    /// Desired Min TX and Required Min RX.
    pub interval: Duration,
    pub multiplier: u8,
}

/// The directory FRR uses on `host` (config, pid, vty and control sockets): world-writable,
/// since bfdd drops to the `frr` user.
fn frr_dir(host: &Host) -> Result<std::path::PathBuf> {
    let dir = host.dir()?.join("frr");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777))
        .with_context(|| format!("chmod {}", dir.display()))?;
    Ok(dir)
}

/// Starts FRR's bfdd on `host` with one peer, without zebra (bfdd runs single-hop sessions on
/// its own), and returns it once it runs.
pub fn start_frr_bfdd(host: &Host, s: &Session) -> Result<Proc> {
    let dir = frr_dir(host)?;
    let ms = s.interval.as_millis();
    let conf = dir.join("bfdd.conf");
    fs::write(
        &conf,
        format!(
            "bfd\n peer {} local-address {}\n  receive-interval {ms}\n  transmit-interval {ms}\n  \
             detect-multiplier {}\n !\n!\n",
            s.peer, s.local, s.multiplier
        ),
    )
    .with_context(|| format!("writing {}", conf.display()))?;
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let log = format!("file:{}", p("bfdd.log"));
    let mut proc = host.spawn(
        "bfdd",
        &[
            "/usr/lib/frr/bfdd",
            "-f",
            &p("bfdd.conf"),
            "-i",
            &p("bfdd.pid"),
            "--vty_socket",
            &p(""),
            "--bfdctl",
            &p("bfdd.sock"),
            "-z",
            &p("zserv.api"),
            "-P",
            "0",
            "--log",
            &log,
        ],
    )?;
    thread::sleep(Duration::from_millis(300));
    proc.ensure_running()?;
    Ok(proc)
}

/// `show bfd peers` of the bfdd on `host`.
pub fn frr_peers(host: &Host) -> Result<String> {
    let dir = frr_dir(host)?;
    let vty = dir.to_string_lossy().into_owned();
    host.exec(&["vtysh", "--vty_socket", &vty, "-c", "show bfd peers"])
}

/// keepalived's `bfd_instance` block for `s`, named `name` (for `track_bfd`).
pub fn keepalived_bfd_instance(name: &str, s: &Session) -> String {
    let ms = s.interval.as_millis();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "bfd_instance {name} {{\n    neighbor_ip {}\n    source_ip {}\n    min_rx {ms}\n    \
         min_tx {ms}\n    multiplier {}\n}}",
        s.peer, s.local, s.multiplier
    );
    out
}

/// Starts keepalived on `host` running only its BFD subsystem with one `bfd_instance`.
pub fn start_keepalived_bfd(host: &Host, s: &Session) -> Result<Proc> {
    let dir = host.dir()?;
    let conf = dir.join("keepalived-bfd.conf");
    fs::write(&conf, keepalived_bfd_instance("vipd", s))
        .with_context(|| format!("writing {}", conf.display()))?;
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    for stale in ["keepalived-bfd.pid", "keepalived-bfd-child.pid"] {
        let _ = fs::remove_file(dir.join(stale));
    }
    let mut proc = host.spawn(
        "keepalived-bfd",
        &[
            "keepalived",
            "--dont-fork",
            "--log-console",
            "--log-detail",
            "--no-syslog",
            "-f",
            &p("keepalived-bfd.conf"),
            "-p",
            &p("keepalived-bfd.pid"),
            "-b",
            &p("keepalived-bfd-child.pid"),
        ],
    )?;
    thread::sleep(Duration::from_millis(300));
    proc.ensure_running()?;
    Ok(proc)
}
