//! Upstream resolvers from a resolv.conf, and a watcher that follows rewrites of the file.
//!
//! The node's resolv.conf lists the node itself first (openshift.md section 5: the NetworkManager
//! dispatcher does that), so forwarding to every `nameserver` line would loop queries back to
//! us. Loopback, unspecified addresses and the caller's `exclude` list (node addresses, VIPs) are
//! dropped, each with a [`Warning`] naming the line.

use std::fmt;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::Forwarder;

/// DNS port; resolv.conf has no syntax for another one.
pub const DNS_PORT: u16 = 53;

/// Something in a resolv.conf that did not become an upstream, or a list that ended up empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// A `nameserver` line naming this node, a VIP, loopback or the unspecified address:
    /// forwarding there would send queries back to ourselves.
    Excluded {
        line: usize,
        addr: IpAddr,
        reason: &'static str,
    },
    /// A `nameserver` line whose value is not an IPv4 or IPv6 address (optionally `%zone`).
    Unparsable { line: usize, value: String },
    /// An IPv6 zone (`fe80::1%eth0`) naming no interface of this host.
    UnknownZone { line: usize, zone: String },
    /// The same address listed twice; the later line is ignored.
    Duplicate { line: usize, addr: IpAddr },
    /// No usable `nameserver` line: only local names will resolve.
    NoUpstream,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Excluded { line, addr, reason } => {
                write!(f, "line {line}: nameserver {addr} skipped: {reason}")
            }
            Warning::Unparsable { line, value } => write!(
                f,
                "line {line}: nameserver {value:?} skipped: expected an IPv4 or IPv6 address, IPv6 optionally with %interface"
            ),
            Warning::UnknownZone { line, zone } => write!(
                f,
                "line {line}: nameserver zone %{zone} skipped: no such interface (expected a name from /sys/class/net or an index)"
            ),
            Warning::Duplicate { line, addr } => {
                write!(f, "line {line}: nameserver {addr} skipped: already listed")
            }
            Warning::NoUpstream => write!(
                f,
                "no usable nameserver line: names outside the cluster zone will get SERVFAIL until the file lists a resolver that is not this node"
            ),
        }
    }
}

/// The `nameserver` addresses of `text` in file order, on port 53, minus loopback, unspecified
/// and `exclude`d addresses. Never caps the count: glibc uses only the first three (MAXNS), but
/// the forwarder can try any number in sequence.
pub fn upstreams_from_resolv_conf(
    text: &str,
    exclude: &[IpAddr],
) -> (Vec<SocketAddr>, Vec<Warning>) {
    parse(text, exclude, DNS_PORT, &interface_index)
}

pub(crate) fn parse(
    text: &str,
    exclude: &[IpAddr],
    port: u16,
    zone_index: &dyn Fn(&str) -> Option<u32>,
) -> (Vec<SocketAddr>, Vec<Warning>) {
    let mut upstreams: Vec<SocketAddr> = Vec::new();
    let mut warnings = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let line = number + 1;
        // resolv.conf(5): '#' or ';' in the first column starts a comment; glibc also ends the
        // value at whitespace, so trailing words are ignored the same way.
        let mut words = raw.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(value) = words.next() else {
            warnings.push(Warning::Unparsable {
                line,
                value: String::new(),
            });
            continue;
        };
        let (host, zone) = match value.split_once('%') {
            Some((host, zone)) => (host, Some(zone)),
            None => (value, None),
        };
        let Ok(ip) = host.parse::<IpAddr>() else {
            warnings.push(Warning::Unparsable {
                line,
                value: value.to_string(),
            });
            continue;
        };
        if let Some(reason) = exclusion_reason(ip, exclude) {
            warnings.push(Warning::Excluded {
                line,
                addr: ip,
                reason,
            });
            continue;
        }
        let addr = match (ip, zone) {
            (IpAddr::V6(v6), Some(zone)) => {
                match zone.parse::<u32>().ok().or_else(|| zone_index(zone)) {
                    Some(index) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, index)),
                    None => {
                        warnings.push(Warning::UnknownZone {
                            line,
                            zone: zone.to_string(),
                        });
                        continue;
                    }
                }
            }
            (IpAddr::V4(_), Some(_)) => {
                warnings.push(Warning::Unparsable {
                    line,
                    value: value.to_string(),
                });
                continue;
            }
            (ip, None) => SocketAddr::new(ip, port),
        };
        if upstreams.contains(&addr) {
            warnings.push(Warning::Duplicate { line, addr: ip });
            continue;
        }
        upstreams.push(addr);
    }
    if upstreams.is_empty() {
        warnings.push(Warning::NoUpstream);
    }
    (upstreams, warnings)
}

fn exclusion_reason(ip: IpAddr, exclude: &[IpAddr]) -> Option<&'static str> {
    // ::ffff:127.0.0.1 reaches the same loopback socket as 127.0.0.1.
    let canonical = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if canonical.is_loopback() {
        Some("loopback (this host)")
    } else if canonical.is_unspecified() {
        Some("unspecified address means this host")
    } else if exclude.contains(&ip) || exclude.contains(&canonical) {
        Some("address of this node or a VIP")
    } else {
        None
    }
}

/// Interface index for an IPv6 zone name, read from sysfs (no libc call needed).
fn interface_index(name: &str) -> Option<u32> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    std::fs::read_to_string(Path::new("/sys/class/net").join(name).join("ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What to watch and how.
#[derive(Debug, Clone)]
pub struct ResolvConfWatch {
    /// `/var/run/NetworkManager/resolv.conf` on nodes, `/etc/resolv.conf` on the bootstrap.
    pub path: PathBuf,
    /// This node's addresses and the VIPs: never forwarded to.
    pub exclude: Vec<IpAddr>,
    /// How often the file is re-read; it is small, so content is compared rather than mtime
    /// (a rewrite within the same second keeps the mtime on coarse filesystems).
    pub interval: Duration,
}

impl ResolvConfWatch {
    pub fn new(path: impl Into<PathBuf>, exclude: Vec<IpAddr>) -> Self {
        Self {
            path: path.into(),
            exclude,
            interval: Duration::from_secs(1),
        }
    }
}

/// Polls a resolv.conf and applies every change to a [`Forwarder`]. Stops when dropped.
pub struct ResolvConfWatcher {
    task: JoinHandle<()>,
}

impl ResolvConfWatcher {
    /// Reads the file now, applies it, and keeps polling. Must be called inside a tokio runtime.
    /// A missing or unreadable file keeps the current upstreams (logged once per state change).
    pub fn spawn(forwarder: Arc<Forwarder>, watch: ResolvConfWatch) -> Self {
        let task = tokio::spawn(async move {
            let mut last: Option<Result<String, String>> = None;
            let mut ticker = tokio::time::interval(watch.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let current = tokio::fs::read_to_string(&watch.path)
                    .await
                    .map_err(|e| e.to_string());
                if last.as_ref() == Some(&current) {
                    continue;
                }
                match &current {
                    Ok(text) => apply(&forwarder, &watch, text),
                    Err(error) => tracing::warn!(
                        path = %watch.path.display(),
                        %error,
                        "cannot read resolv.conf; keeping the current upstreams"
                    ),
                }
                last = Some(current);
            }
        });
        Self { task }
    }
}

fn apply(forwarder: &Forwarder, watch: &ResolvConfWatch, text: &str) {
    let path = watch.path.display();
    let (upstreams, warnings) = upstreams_from_resolv_conf(text, &watch.exclude);
    for warning in &warnings {
        tracing::warn!(path = %path, "resolv.conf {warning}");
    }
    let before: Vec<SocketAddr> = forwarder.upstreams().iter().map(|u| u.addr).collect();
    if before != upstreams {
        tracing::info!(
            path = %path,
            "forwarding upstreams changed from [{}] to [{}]",
            list(&before),
            list(&upstreams)
        );
        forwarder.set_upstreams(upstreams);
    }
}

fn list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Drop for ResolvConfWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link_local(addr: &str, scope_id: u32) -> SocketAddr {
        SocketAddr::V6(SocketAddrV6::new(
            addr.parse().unwrap(),
            DNS_PORT,
            0,
            scope_id,
        ))
    }

    fn no_zones(_: &str) -> Option<u32> {
        None
    }

    #[test]
    fn comments_options_and_search_lines_are_ignored() {
        let text = "# generated\n; old\nsearch example.com\noptions ndots:5\nnameserver 192.0.2.53 # site\n";
        let (ups, warnings) = parse(text, &[], 53, &no_zones);
        assert_eq!(ups, vec!["192.0.2.53:53".parse::<SocketAddr>().unwrap()]);
        assert!(warnings.is_empty());
    }

    #[test]
    fn mapped_loopback_is_excluded() {
        let (ups, warnings) = parse("nameserver ::ffff:127.0.0.1\n", &[], 53, &no_zones);
        assert!(ups.is_empty());
        assert_eq!(
            warnings,
            vec![
                Warning::Excluded {
                    line: 1,
                    addr: "::ffff:127.0.0.1".parse().unwrap(),
                    reason: "loopback (this host)"
                },
                Warning::NoUpstream
            ]
        );
    }

    #[test]
    fn named_zone_is_resolved_through_the_lookup() {
        let zones = |name: &str| (name == "br-ex").then_some(7);
        let (ups, _) = parse("nameserver fe80::1%br-ex\n", &[], 53, &zones);
        assert_eq!(ups, vec![link_local("fe80::1", 7)]);
    }
}
