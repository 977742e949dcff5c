//! One namespace of the lab (a node or the client) and the processes started in it.

use std::fs::{self, File};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::cmd::{run, run_in};

/// The interface name of the lab link inside every node and the client.
pub const IFACE: &str = "eth0";

/// An address as `ip -j addr` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub label: Option<String>,
    pub tentative: bool,
    pub deprecated: bool,
}

#[derive(Debug, Clone)]
pub struct Host {
    ns: String,
    name: String,
    port: String,
    ipv4: Ipv4Addr,
    ipv6: Ipv6Addr,
    log_dir: PathBuf,
}

impl Host {
    pub(crate) fn new(
        ns: String,
        name: String,
        port: String,
        ipv4: Ipv4Addr,
        ipv6: Ipv6Addr,
        log_dir: PathBuf,
    ) -> Host {
        Host {
            ns,
            name,
            port,
            ipv4,
            ipv6,
            log_dir,
        }
    }

    /// The network namespace name (for `ip netns exec`).
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Short name used for log files: `n0`, `n1`, ..., `client`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This host's port on the lab switch.
    pub fn port(&self) -> &str {
        &self.port
    }

    pub fn ipv4(&self) -> Ipv4Addr {
        self.ipv4
    }

    pub fn ipv6(&self) -> Ipv6Addr {
        self.ipv6
    }

    /// A scratch directory for this host's config files (inside the lab's log dir, so it is kept
    /// with the logs for inspection after a failure).
    pub fn dir(&self) -> Result<PathBuf> {
        let dir = self.log_dir.join(&self.name);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    /// Runs a command to completion inside this namespace and returns its stdout.
    pub fn exec(&self, argv: &[&str]) -> Result<String> {
        run_in(&self.ns, argv)
    }

    /// Starts a long-running command in this namespace; stdout and stderr go to
    /// `<lab log dir>/<host>-<label>.log`. The returned guard kills it on drop.
    pub fn spawn(&self, label: &str, argv: &[&str]) -> Result<Proc> {
        let log_path = self.log_dir.join(format!("{}-{label}.log", self.name));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .with_context(|| format!("duplicating {}", log_path.display()))?;
        // `ip netns exec` execs the program itself, so the child pid is the daemon's pid and signals
        // sent to it reach the daemon, not a wrapper.
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(argv)
            .stdin(Stdio::null())
            // Plain text logs: they are read in files and in test output, not on a terminal.
            .env("NO_COLOR", "1")
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .with_context(|| format!("starting `{}` in {}", argv.join(" "), self.ns))?;
        Ok(Proc {
            child: Some(child),
            label: format!("{}/{label}", self.name),
            log_path,
        })
    }

    /// Addresses on the lab interface, from `ip -j addr`.
    pub fn addresses(&self) -> Result<Vec<IfAddr>> {
        let json = run(&["ip", "-n", &self.ns, "-j", "addr", "show", "dev", IFACE])?;
        parse_addresses(&json)
    }

    /// MAC address of the lab interface.
    pub fn mac(&self) -> Result<String> {
        let json = run(&["ip", "-n", &self.ns, "-j", "link", "show", "dev", IFACE])?;
        let v: Value =
            serde_json::from_str(&json).with_context(|| format!("parsing `ip -j link`: {json}"))?;
        v[0]["address"]
            .as_str()
            .map(str::to_string)
            .with_context(|| {
                format!(
                    "`ip -j link show {IFACE}` in {} has no address: {json}",
                    self.ns
                )
            })
    }
}

/// Parses `ip -j addr show dev X` output.
pub fn parse_addresses(json: &str) -> Result<Vec<IfAddr>> {
    let v: Value =
        serde_json::from_str(json).with_context(|| format!("parsing `ip -j addr`: {json}"))?;
    let mut out = Vec::new();
    for link in v.as_array().into_iter().flatten() {
        for a in link["addr_info"].as_array().into_iter().flatten() {
            let Some(local) = a["local"].as_str() else {
                continue;
            };
            let addr: IpAddr = local
                .parse()
                .with_context(|| format!("`ip -j addr` local {local:?}"))?;
            let prefix_len = a["prefixlen"].as_u64().unwrap_or(0) as u8;
            out.push(IfAddr {
                addr,
                prefix_len,
                label: a["label"].as_str().map(str::to_string),
                tentative: a["tentative"].as_bool().unwrap_or(false),
                deprecated: a["deprecated"].as_bool().unwrap_or(false),
            });
        }
    }
    Ok(out)
}

/// A process started in a lab namespace; killed (SIGKILL) when dropped.
pub struct Proc {
    child: Option<Child>,
    label: String,
    log_path: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn signal(&self, sig: Signal) -> Result<()> {
        let pid = self
            .pid()
            .with_context(|| format!("{} was already reaped", self.label))?;
        kill(Pid::from_raw(pid), sig)
            .with_context(|| format!("sending {sig} to {} (pid {pid})", self.label))
    }

    /// Fails, quoting the log, if the process has already exited: a daemon that refused its
    /// config should say so, not surface later as "nobody holds the VIP".
    pub fn ensure_running(&mut self) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        anyhow::bail!(
            "{} exited right after start; its log ({}):\n{}",
            self.label,
            self.log_path.display(),
            tail.join("\n")
        )
    }

    /// SIGTERM, then waits up to `grace` for a clean exit (SIGKILL after that). Returns how long
    /// the process took to exit.
    pub fn terminate(&mut self, grace: Duration) -> Result<Duration> {
        let start = Instant::now();
        self.signal(Signal::SIGTERM)?;
        while start.elapsed() < grace {
            if !self.is_running() {
                self.child = None;
                return Ok(start.elapsed());
            }
            thread::sleep(Duration::from_millis(5));
        }
        self.kill();
        anyhow::bail!(
            "{} did not exit within {grace:?} of SIGTERM; killed it",
            self.label
        )
    }

    /// SIGKILL and reap: the unclean death of a crash or an OOM kill.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_addresses_reads_label_and_flags() {
        let json = r#"[{"ifindex":2,"ifname":"eth0","addr_info":[
            {"family":"inet","local":"192.0.2.11","prefixlen":24,"label":"eth0"},
            {"family":"inet","local":"192.0.2.5","prefixlen":32,"label":"vip"},
            {"family":"inet6","local":"2001:db8::5","prefixlen":128,"deprecated":true,"tentative":true}]}]"#;
        let addrs = parse_addresses(json).unwrap();
        assert_eq!(addrs.len(), 3);
        assert_eq!(addrs[1].addr, "192.0.2.5".parse::<IpAddr>().unwrap());
        assert_eq!(addrs[1].prefix_len, 32);
        assert_eq!(addrs[1].label.as_deref(), Some("vip"));
        assert!(addrs[2].deprecated);
        assert!(addrs[2].tentative);
        assert!(!addrs[0].deprecated);
    }
}
