//! Network-namespace labs for vipd: several nodes, keepalived peers, a client.
//!
//! - [`topology`]: [`Lab`], the namespaces, the switch, link cuts, loss and partitions.
//! - [`host`]: one namespace ([`Host`]) and the processes started in it ([`Proc`]).
//! - [`probe`]: the client-side outage prober.
//! - [`keepalived`]: keepalived configs rendered the way OpenShift renders them, and runners.
//! - [`vipd`]: vipd configs for lab nodes, and runners.
//! - [`holders`]: who holds a VIP over time, sampled in the background.
//! - [`capture`]: tcpdump in a namespace; VRRP adverts, gratuitous ARPs / NAs read from it.
//! - [`hostile`]: the `lab-hostile` clients of the soak scenarios, and daemon-side figures.
//!
//! Everything here needs root; every namespace is removed when the [`Lab`] is dropped, and
//! leftovers of killed runs are removed by the next [`Lab::new`].

pub mod bfd_peers;
pub mod capture;
pub mod cmd;
pub mod holders;
pub mod host;
pub mod hostile;
pub mod probe;
pub mod topology;

pub use host::{Host, Proc};
pub use probe::{Outage, Prober};
pub use topology::{wait_until, IfAddr, Lab, CLIENT, IFACE};
pub mod keepalived;
pub mod kube_api;
pub mod scenarios;
pub mod vipd;

/// Resident set size of process `pid` in KiB (`VmRSS` in /proc/<pid>/status).
pub fn proc_rss_kib(pid: u32) -> anyhow::Result<u64> {
    use anyhow::Context;
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS line in {path}"))
}
