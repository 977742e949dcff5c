//! The lab: N node namespaces and one client namespace, each joined by a veth pair to a Linux bridge
//! that lives in its own "switch" namespace. Nothing is created in, or moved through, the host's root
//! namespace: both ends of each veth are created directly inside their namespaces.
//!
//! ```text
//!   vl<pid>_<n>-n0 [eth0 192.0.2.11] ──veth── [p0 ┐
//!   vl<pid>_<n>-n1 [eth0 192.0.2.12] ──veth── [p1 ├ br0 ]  vl<pid>_<n>-sw
//!   vl<pid>_<n>-c  [eth0 192.0.2.100] ─veth── [pc ┘
//! ```

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::cmd::{run, run_in};
use crate::host::Host;
pub use crate::host::{IfAddr, IFACE};
use crate::probe::Prober;

/// Every namespace this harness creates starts with this prefix, followed by the creating process id.
pub const PREFIX: &str = "vl";

/// Stands for the client's switch port in [`Lab::partition`] groups.
pub const CLIENT: usize = usize::MAX;

/// The bridge every port joins while the network is whole.
const BRIDGE: &str = "br0";

/// nftables table in the switch namespace that holds the loss rules (see [`Lab::loss`]).
const NFT_TABLE: &str = "lab";

static LAB_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// IPv4 address of node `i` (0-based): 192.0.2.11, .12, ...
pub fn node_ipv4(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 11 + i as u8)
}

/// IPv6 address of node `i` (0-based): 2001:db8::11, ::12, ... (the decimal digits written as hex,
/// so the last group reads the same as the IPv4 host part).
pub fn node_ipv6(i: usize) -> Ipv6Addr {
    let digits = 11 + i as u16;
    let group = (digits / 10) * 16 + digits % 10;
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, group)
}

/// The client's addresses: 192.0.2.100 and 2001:db8::100.
pub const CLIENT_IPV4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
pub const CLIENT_IPV6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);

pub struct Lab {
    name: String,
    switch_ns: String,
    nodes: Vec<Host>,
    client: Host,
    log_dir: PathBuf,
    extra_bridges: Vec<String>,
}

impl Lab {
    /// Builds a lab with `nodes` node namespaces and one client. Leftovers of dead runs are removed first.
    pub fn new(nodes: usize) -> Result<Lab> {
        if nodes == 0 || nodes > 80 {
            bail!("a lab needs 1..=80 nodes (addresses 192.0.2.11..=90), asked for {nodes}");
        }
        if !nix::unistd::geteuid().is_root() {
            bail!("the namespace lab needs root (ip netns); run the scenario tests as root");
        }
        remove_leftovers()?;
        let n = LAB_COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{PREFIX}{}_{n}", std::process::id());
        let log_dir = workspace_dir().join("target").join("lab-logs").join(&name);
        // A fresh directory per lab: a pid reused from an older run must not mix logs.
        let _ = fs::remove_dir_all(&log_dir);
        fs::create_dir_all(&log_dir)
            .with_context(|| format!("creating lab log dir {}", log_dir.display()))?;

        let mut lab = Lab {
            switch_ns: format!("{name}-sw"),
            nodes: (0..nodes)
                .map(|i| {
                    Host::new(
                        format!("{name}-n{i}"),
                        format!("n{i}"),
                        format!("p{i}"),
                        node_ipv4(i),
                        node_ipv6(i),
                        log_dir.clone(),
                    )
                })
                .collect(),
            client: Host::new(
                format!("{name}-c"),
                "client".into(),
                "pc".into(),
                CLIENT_IPV4,
                CLIENT_IPV6,
                log_dir.clone(),
            ),
            name,
            log_dir,
            extra_bridges: Vec::new(),
        };
        // If set-up fails half-way, dropping `lab` removes whatever was created.
        lab.create()
            .with_context(|| format!("building lab {}", lab.name))?;
        Ok(lab)
    }

    fn create(&mut self) -> Result<()> {
        let sw = self.switch_ns.clone();
        make_netns(&sw)?;
        run(&[
            "ip",
            "-n",
            &sw,
            "link",
            "add",
            BRIDGE,
            "type",
            "bridge",
            "stp_state",
            "0",
        ])?;
        // Multicast snooping off: without a querier it may stop flooding ff02::12 / 224.0.0.18
        // groups that nobody joined via MLD/IGMP, and VRRP must reach every port.
        run(&[
            "ip",
            "-n",
            &sw,
            "link",
            "set",
            BRIDGE,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        run(&["ip", "-n", &sw, "link", "set", BRIDGE, "up"])?;
        let hosts: Vec<Host> = self
            .nodes
            .iter()
            .chain(std::iter::once(&self.client))
            .cloned()
            .collect();
        for host in &hosts {
            make_netns(host.ns())?;
            run(&[
                "ip",
                "-n",
                &sw,
                "link",
                "add",
                host.port(),
                "type",
                "veth",
                "peer",
                "name",
                IFACE,
                "netns",
                host.ns(),
            ])?;
            run(&[
                "ip",
                "-n",
                &sw,
                "link",
                "set",
                host.port(),
                "master",
                BRIDGE,
            ])?;
            run(&["ip", "-n", &sw, "link", "set", host.port(), "up"])?;
            let v4 = format!("{}/24", host.ipv4());
            let v6 = format!("{}/64", host.ipv6());
            run(&["ip", "-n", host.ns(), "addr", "add", &v4, "dev", IFACE])?;
            run(&[
                "ip",
                "-n",
                host.ns(),
                "addr",
                "add",
                &v6,
                "dev",
                IFACE,
                "nodad",
            ])?;
            run(&["ip", "-n", host.ns(), "link", "set", IFACE, "up"])?;
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    pub fn switch_ns(&self) -> &str {
        &self.switch_ns
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i` (0-based; node 0 has 192.0.2.11). Panics on a bad index: that is a bug in the test.
    pub fn node(&self, i: usize) -> &Host {
        &self.nodes[i]
    }

    pub fn client(&self) -> &Host {
        &self.client
    }

    fn port(&self, i: usize) -> &str {
        if i == CLIENT {
            self.client.port()
        } else {
            self.nodes[i].port()
        }
    }

    /// Pulls node `i`'s cable: the switch-side veth goes down, so the node sees NO-CARRIER on eth0.
    ///
    /// Chosen over 100% packet loss because a pulled cable (or a dead switch port) is what carrier
    /// loss models: keepalived reacts to the carrier going away (FAULT state, VIP removed), and a
    /// daemon that only watched for missing adverts would keep the VIP on a dead link. Silent loss
    /// with the carrier up is available separately as `loss(i, 100)`.
    pub fn cut_link(&self, i: usize) -> Result<()> {
        run(&[
            "ip",
            "-n",
            &self.switch_ns,
            "link",
            "set",
            self.port(i),
            "down",
        ])
        .map(|_| ())
    }

    pub fn restore_link(&self, i: usize) -> Result<()> {
        run(&[
            "ip",
            "-n",
            &self.switch_ns,
            "link",
            "set",
            self.port(i),
            "up",
        ])
        .map(|_| ())
    }

    /// Drops `percent`% of the frames to and from node `i`, independently in each direction.
    ///
    /// Done with an nftables bridge rule in the switch namespace (`numgen random`), because the
    /// kernels this runs on do not all ship `sch_netem`. Replaces any earlier loss on that port.
    pub fn loss(&self, i: usize, percent: u8) -> Result<()> {
        if percent > 100 {
            bail!("loss percentage must be 0..=100, got {percent}");
        }
        self.clear_loss(i)?;
        if percent == 0 {
            return Ok(());
        }
        self.ensure_nft_table()?;
        let port = self.port(i);
        // `numgen random mod 100` yields 0..=99, so "< 100" is out of nft's range: total loss is a
        // plain drop.
        let chance = if percent == 100 {
            String::new()
        } else {
            format!("numgen random mod 100 < {percent} ")
        };
        let script = format!(
            "add rule bridge {NFT_TABLE} impair iifname \"{port}\" {chance}drop comment \"{port}\"\n\
             add rule bridge {NFT_TABLE} impair oifname \"{port}\" {chance}drop comment \"{port}\"\n"
        );
        self.nft(&script)
    }

    /// Drops every UDP datagram to or from port `port` on node `i`'s cable, and nothing else:
    /// e.g. BFD (3784) filtered while VRRP adverts still flow. [`Lab::clear_loss`] lifts it.
    pub fn drop_udp_port(&self, i: usize, port: u16) -> Result<()> {
        self.ensure_nft_table()?;
        let p = self.port(i);
        let script = format!(
            "add rule bridge {NFT_TABLE} impair iifname \"{p}\" udp dport {port} drop comment \"{p}\"\n\
             add rule bridge {NFT_TABLE} impair iifname \"{p}\" udp sport {port} drop comment \"{p}\"\n\
             add rule bridge {NFT_TABLE} impair oifname \"{p}\" udp dport {port} drop comment \"{p}\"\n\
             add rule bridge {NFT_TABLE} impair oifname \"{p}\" udp sport {port} drop comment \"{p}\"\n"
        );
        self.nft(&script)
    }

    /// Removes the loss rules for node `i`.
    pub fn clear_loss(&self, i: usize) -> Result<()> {
        if run_in(
            &self.switch_ns,
            &["nft", "list", "table", "bridge", NFT_TABLE],
        )
        .is_err()
        {
            return Ok(());
        }
        let port = self.port(i);
        let listing = run_in(
            &self.switch_ns,
            &["nft", "-a", "list", "chain", "bridge", NFT_TABLE, "impair"],
        )?;
        for line in listing.lines() {
            if !line.contains(&format!("comment \"{port}\"")) {
                continue;
            }
            let handle = line
                .rsplit("# handle ")
                .next()
                .map(str::trim)
                .unwrap_or_default();
            if handle.is_empty() || handle.parse::<u64>().is_err() {
                bail!("cannot find the nft rule handle in `{line}`");
            }
            run_in(
                &self.switch_ns,
                &[
                    "nft", "delete", "rule", "bridge", NFT_TABLE, "impair", "handle", handle,
                ],
            )?;
        }
        Ok(())
    }

    /// Applies a netem-style impairment to traffic toward node `i`. `"loss N%"` is served by
    /// [`Lab::loss`] (both directions, no kernel module needed); anything else is handed to
    /// `tc qdisc ... netem` on the switch-side port and fails clearly where `sch_netem` is missing.
    pub fn netem(&self, i: usize, spec: &str) -> Result<()> {
        let words: Vec<&str> = spec.split_whitespace().collect();
        if let ["loss", pct] = words.as_slice() {
            let percent: u8 = pct.trim_end_matches('%').parse().with_context(|| {
                format!("netem spec `{spec}`: expected `loss N%` with N in 0..=100")
            })?;
            return self.loss(i, percent);
        }
        let mut argv = vec![
            "ip",
            "netns",
            "exec",
            &self.switch_ns,
            "tc",
            "qdisc",
            "replace",
            "dev",
        ];
        argv.push(self.port(i));
        argv.extend(["root", "netem"]);
        argv.extend(words.iter().copied());
        run(&argv)
            .map(|_| ())
            .with_context(|| format!("netem `{spec}` on node {i}: this kernel may lack sch_netem"))
    }

    /// Removes every impairment set by [`Lab::netem`] / [`Lab::loss`] on node `i`.
    pub fn clear_netem(&self, i: usize) -> Result<()> {
        self.clear_loss(i)?;
        // No netem qdisc is the normal case; only a qdisc that exists and will not go away is an error.
        let _ = run_in(
            &self.switch_ns,
            &["tc", "qdisc", "del", "dev", self.port(i), "root"],
        );
        Ok(())
    }

    fn ensure_nft_table(&self) -> Result<()> {
        // Forward hook: the bridge calls it once per output port, so flooded multicast (VRRP) is
        // dropped per receiver, like independent loss on each cable.
        self.nft(&format!(
            "add table bridge {NFT_TABLE}\n\
             add chain bridge {NFT_TABLE} impair {{ type filter hook forward priority 0; policy accept; }}\n"
        ))
    }

    fn nft(&self, script: &str) -> Result<()> {
        let path = self.log_dir.join("nft-script.nft");
        fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
        let path_str = path.to_string_lossy().into_owned();
        run_in(&self.switch_ns, &["nft", "-f", &path_str]).map(|_| ())
    }

    /// Splits the network: each group gets its own bridge; ports in no group, and the first group,
    /// stay on the main bridge. Use [`CLIENT`] for the client's port. Pure iproute2 (a port moved
    /// to another bridge), so no ebtables/nft module is needed and the split is exact.
    pub fn partition(&mut self, groups: &[&[usize]]) -> Result<()> {
        self.heal()?;
        for (g, group) in groups.iter().enumerate().skip(1) {
            let bridge = format!("br{g}");
            run(&[
                "ip",
                "-n",
                &self.switch_ns,
                "link",
                "add",
                &bridge,
                "type",
                "bridge",
                "stp_state",
                "0",
            ])?;
            self.extra_bridges.push(bridge.clone());
            run(&[
                "ip",
                "-n",
                &self.switch_ns,
                "link",
                "set",
                &bridge,
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ])?;
            run(&["ip", "-n", &self.switch_ns, "link", "set", &bridge, "up"])?;
            for &i in group.iter() {
                run(&[
                    "ip",
                    "-n",
                    &self.switch_ns,
                    "link",
                    "set",
                    self.port(i),
                    "master",
                    &bridge,
                ])?;
            }
        }
        Ok(())
    }

    /// Undoes [`Lab::partition`]: every port back on the main bridge.
    pub fn heal(&mut self) -> Result<()> {
        let ports: Vec<String> = (0..self.nodes.len())
            .chain(std::iter::once(CLIENT))
            .map(|i| self.port(i).to_string())
            .collect();
        for bridge in std::mem::take(&mut self.extra_bridges) {
            for port in &ports {
                let master = run(&["ip", "-n", &self.switch_ns, "-j", "link", "show", port])?;
                if master.contains(&format!("\"master\":\"{bridge}\"")) {
                    run(&[
                        "ip",
                        "-n",
                        &self.switch_ns,
                        "link",
                        "set",
                        port,
                        "master",
                        BRIDGE,
                    ])?;
                }
            }
            run(&["ip", "-n", &self.switch_ns, "link", "del", &bridge])?;
        }
        Ok(())
    }

    /// Addresses on node `i`'s lab interface.
    pub fn addresses(&self, i: usize) -> Result<Vec<IfAddr>> {
        self.nodes[i].addresses()
    }

    /// The nodes (0-based) that currently hold `vip` on their lab interface.
    pub fn who_has(&self, vip: IpAddr) -> Result<Vec<usize>> {
        let mut holders = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.addresses()?.iter().any(|a| a.addr == vip) {
                holders.push(i);
            }
        }
        Ok(holders)
    }

    /// The MAC the client's neighbour table maps `vip` to, if it has a usable entry.
    pub fn client_neigh(&self, vip: IpAddr) -> Result<Option<String>> {
        let vip_s = vip.to_string();
        let json = run(&[
            "ip",
            "-n",
            self.client.ns(),
            "-j",
            "neigh",
            "show",
            "to",
            &vip_s,
            "dev",
            IFACE,
        ])?;
        let entries: Value = serde_json::from_str(&json)
            .with_context(|| format!("parsing `ip -j neigh`: {json}"))?;
        let usable = entries.as_array().into_iter().flatten().find(|e| {
            let states = e["state"]
                .as_array()
                .map(|s| s.iter().filter_map(Value::as_str).collect::<Vec<_>>());
            !states
                .unwrap_or_default()
                .iter()
                .any(|s| *s == "FAILED" || *s == "INCOMPLETE")
        });
        Ok(usable
            .and_then(|e| e["lladdr"].as_str())
            .map(str::to_string))
    }

    /// Forgets the client's neighbour entry for `vip`, so the next packet resolves it afresh.
    pub fn flush_client_neigh(&self, vip: IpAddr) -> Result<()> {
        let vip_s = vip.to_string();
        run(&[
            "ip",
            "-n",
            self.client.ns(),
            "neigh",
            "flush",
            "to",
            &vip_s,
            "dev",
            IFACE,
        ])
        .map(|_| ())
    }

    /// Node `i`'s MAC address on the lab link.
    pub fn node_mac(&self, i: usize) -> Result<String> {
        self.nodes[i].mac()
    }

    /// Starts pinging `target` from the client every `interval` (10 ms is the usual probe).
    pub fn prober(&self, target: IpAddr, interval: Duration) -> Result<Prober> {
        Prober::start(&self.client, target, interval)
    }

    /// Waits until exactly one node holds `vip` and returns it; fails with who held it at the deadline.
    pub fn wait_single_holder(&self, vip: IpAddr, timeout: Duration) -> Result<usize> {
        let mut last = Vec::new();
        let found = wait_until(timeout, || {
            last = self.who_has(vip)?;
            Ok((last.len() == 1).then(|| last[0]))
        })?;
        found.ok_or_else(|| {
            anyhow!("after {timeout:?}, expected exactly one node holding {vip}, found {last:?}")
        })
    }

    /// Waits until `node` holds `vip` and nobody else does.
    pub fn wait_holder_is(&self, vip: IpAddr, node: usize, timeout: Duration) -> Result<()> {
        let mut last = Vec::new();
        let found = wait_until(timeout, || {
            last = self.who_has(vip)?;
            Ok((last == [node]).then_some(()))
        })?;
        found.ok_or_else(|| {
            anyhow!("after {timeout:?}, expected only node {node} holding {vip}, found {last:?}")
        })
    }

    /// Like [`Lab::wait_single_holder`], looking only at `nodes` (e.g. leaving out a node whose
    /// cable is pulled: whether it keeps the VIP on a dead link is its own business).
    pub fn wait_single_holder_among(
        &self,
        vip: IpAddr,
        nodes: &[usize],
        timeout: Duration,
    ) -> Result<usize> {
        let mut last = Vec::new();
        let found = wait_until(timeout, || {
            last = self
                .who_has(vip)?
                .into_iter()
                .filter(|n| nodes.contains(n))
                .collect();
            Ok((last.len() == 1).then(|| last[0]))
        })?;
        found.ok_or_else(|| {
            anyhow!("after {timeout:?}, expected exactly one of nodes {nodes:?} holding {vip}, found {last:?}")
        })
    }

    /// Checks every 100 ms for `duration` that `node`, and only `node`, holds `vip`.
    pub fn assert_holder_stays(&self, vip: IpAddr, node: usize, duration: Duration) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < duration {
            let holders = self.who_has(vip)?;
            if holders != [node] {
                bail!(
                    "{:.1} s into a {duration:?} watch, {vip} was held by {holders:?}; expected only node {node}",
                    start.elapsed().as_secs_f64()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Samples the holders of `vip` every `every` for `duration`; returns (time since start, holders).
    pub fn sample_holders(
        &self,
        vip: IpAddr,
        duration: Duration,
        every: Duration,
    ) -> Result<Vec<(Duration, Vec<usize>)>> {
        let start = Instant::now();
        let mut samples = Vec::new();
        while start.elapsed() < duration {
            samples.push((start.elapsed(), self.who_has(vip)?));
            thread::sleep(every);
        }
        Ok(samples)
    }

    /// True once the client gets an echo reply from `addr` (one probe every 200 ms or less, up to
    /// `timeout`).
    pub fn client_reaches(&self, addr: IpAddr, timeout: Duration) -> Result<bool> {
        let addr = addr.to_string();
        let argv = [
            "ip",
            "netns",
            "exec",
            self.client.ns(),
            "ping",
            "-n",
            "-c",
            "1",
            "-W",
            "0.2",
            addr.as_str(),
        ];
        let reached = wait_until(timeout, || {
            Ok(crate::cmd::output(&argv)?.status.success().then_some(()))
        })?;
        Ok(reached.is_some())
    }

    /// Waits until the client's neighbour entry for `vip` is node `node`'s MAC (sending an echo
    /// each round so the entry is in use). Fails naming the MAC it last saw.
    pub fn wait_client_neigh_is(&self, vip: IpAddr, node: usize, timeout: Duration) -> Result<()> {
        let want = self.node_mac(node)?;
        let mut last = None;
        let found = wait_until(timeout, || {
            let _ = self.client_reaches(vip, Duration::ZERO)?;
            last = self.client_neigh(vip)?;
            Ok((last.as_deref() == Some(want.as_str())).then_some(()))
        })?;
        found.ok_or_else(|| {
            anyhow!("after {timeout:?}, the client maps {vip} to {last:?}, expected node {node}'s MAC {want}")
        })
    }

    /// Prints the last lines of every log in this lab's log directory to stderr.
    pub fn print_log_tails(&self, lines: usize) {
        let Ok(entries) = fs::read_dir(&self.log_dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
        {
            let text = fs::read_to_string(path).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            eprintln!(
                "----- {} (last {} of {} lines) -----",
                path.display(),
                tail.len(),
                all.len()
            );
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "lab {}: test failed; logs are in {}",
                self.name,
                self.log_dir.display()
            );
            self.print_log_tails(40);
        }
        let mut all: Vec<String> = self.nodes.iter().map(|h| h.ns().to_string()).collect();
        all.push(self.client.ns().to_string());
        all.push(self.switch_ns.clone());
        for ns in all {
            destroy_netns(&ns);
        }
    }
}

/// Polls `f` every 20 ms until it returns `Some` or `timeout` passes (then `None`).
pub fn wait_until<T>(
    timeout: Duration,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f()? {
            return Ok(Some(v));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The workspace root (integration/..).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn make_netns(ns: &str) -> Result<()> {
    run(&["ip", "netns", "add", ns])?;
    // DAD off before any interface exists, so addresses (and the link-local VRRPv3 source) are
    // usable at once instead of after ~2 s of tentative state (RFC 4862 5.4).
    for key in [
        "net.ipv6.conf.all.accept_dad=0",
        "net.ipv6.conf.default.accept_dad=0",
    ] {
        run_in(ns, &["sysctl", "-qw", key])?;
    }
    run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
    Ok(())
}

/// Kills every process inside `ns` and deletes it. Best effort: this runs in Drop.
fn destroy_netns(ns: &str) {
    for _ in 0..3 {
        let pids = run(&["ip", "netns", "pids", ns]).unwrap_or_default();
        let pids: Vec<i32> = pids
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = run(&["ip", "netns", "del", ns]);
}

/// Removes namespaces left by lab runs whose process is gone (killed test, Ctrl-C in a script).
pub fn remove_leftovers() -> Result<()> {
    let list = run(&["ip", "netns", "list"])?;
    for line in list.lines() {
        let Some(ns) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = owner_pid(ns) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            destroy_netns(ns);
        }
    }
    Ok(())
}

/// `vl1234_0-n1` -> 1234; None for names that are not ours.
fn owner_pid(ns: &str) -> Option<u32> {
    let rest = ns.strip_prefix(PREFIX)?;
    let (pid, tail) = rest.split_once('_')?;
    let (_counter, _role) = tail.split_once('-')?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_count_up_from_11_in_both_families() {
        assert_eq!(node_ipv4(0), Ipv4Addr::new(192, 0, 2, 11));
        assert_eq!(node_ipv4(2), Ipv4Addr::new(192, 0, 2, 13));
        assert_eq!(node_ipv6(0), "2001:db8::11".parse::<Ipv6Addr>().unwrap());
        assert_eq!(node_ipv6(9), "2001:db8::20".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn owner_pid_reads_only_our_namespace_names() {
        assert_eq!(owner_pid("vl1234_0-sw"), Some(1234));
        assert_eq!(owner_pid("vl99_12-n3"), Some(99));
        assert_eq!(owner_pid("vlan-prod"), None);
        assert_eq!(owner_pid("vl1234"), None);
        assert_eq!(owner_pid("cni-1234_0-x"), None);
    }
}
