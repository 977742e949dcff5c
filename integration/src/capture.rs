//! Packet captures in lab namespaces (`tcpdump`, text output with kernel timestamps) and what
//! the soak scenarios read from them: VRRP adverts, gratuitous ARPs and unsolicited NAs.
//!
//! A capture on a node's `eth0` sees the adverts the node sends and those that reached it
//! through the lab switch (loss is applied in the switch), so it shows exactly what the node
//! heard and when: [`master_episodes`] turns that into "became Master, heard a better router,
//! stopped advertising".

use std::net::IpAddr;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Result};
use nix::sys::signal::Signal;

use crate::host::{Host, Proc};
use crate::topology::{wait_until, IFACE};

/// A running `tcpdump` on a host's lab interface.
pub struct Capture {
    proc: Proc,
}

impl Capture {
    /// Starts `tcpdump -e -n -tt -l -i eth0 FILTER` in `host` and waits until it listens.
    pub fn start(host: &Host, label: &str, filter: &str) -> Result<Capture> {
        let mut argv = vec![
            "tcpdump", "-e", "-n", "-tt", "-l", "-U", "-s", "128", "-i", IFACE,
        ];
        argv.extend(filter.split_whitespace());
        let mut proc = host.spawn(&format!("tcpdump-{label}"), &argv)?;
        let ready = wait_until(Duration::from_secs(5), || {
            proc.ensure_running()?;
            Ok(proc.log().contains("listening on").then_some(()))
        })?;
        if ready.is_none() {
            bail!(
                "tcpdump in {} did not start within 5 s; see {}",
                host.name(),
                proc.log_path().display()
            );
        }
        Ok(Capture { proc })
    }

    /// Stops the capture (SIGINT, so tcpdump flushes) and returns its text.
    pub fn stop(mut self) -> Result<String> {
        self.proc.signal(Signal::SIGINT)?;
        for _ in 0..100 {
            if !self.proc.is_running() {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        self.proc.kill();
        Ok(self.proc.log())
    }
}

/// One VRRP advertisement as tcpdump printed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Advert {
    /// UNIX time, seconds.
    pub at: f64,
    pub src: IpAddr,
    pub vrid: u8,
    pub prio: u8,
}

/// `1764882000.123456 02:.. > 01:00:5e:00:00:12, ethertype IPv4 (0x0800), length 54:
/// 192.0.2.11 > 224.0.0.18: VRRPv3, Advertisement, vrid 14, prio 70, intvl 10cs, length 12`
pub fn parse_adverts(text: &str) -> Vec<Advert> {
    text.lines()
        .filter(|l| l.contains("VRRP") && l.contains("Advertisement"))
        .filter_map(|l| {
            let at = l.split_whitespace().next()?.parse().ok()?;
            // The IP part follows the link-layer header: "length N: SRC > DST: VRRP...".
            let ip_part = l
                .split(": ")
                .find(|p| p.contains(" > ") && !p.contains(','))?;
            let src = ip_part.split(" > ").next()?.trim().parse().ok()?;
            let field = |key: &str| -> Option<u8> {
                l.split(key)
                    .nth(1)?
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            };
            Some(Advert {
                at,
                src,
                vrid: field("vrid ")?,
                prio: field("prio ")?,
            })
        })
        .collect()
}

/// A gratuitous ARP or unsolicited NA for some address, as seen on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Announcement {
    pub at: f64,
    /// Source MAC of the frame.
    pub mac: String,
    /// The address announced.
    pub addr: IpAddr,
}

/// ARP requests or replies whose sender address equals the target (`who-has X tell X`,
/// `X is-at MAC` broadcast) and neighbour advertisements (`tgt is X`).
pub fn parse_announcements(text: &str) -> Vec<Announcement> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let at = words.next()?.parse().ok()?;
            let mac = words.next()?.to_string();
            let addr: IpAddr = if let Some(rest) = l.split("who-has ").nth(1) {
                let mut w = rest.split_whitespace();
                let target = w.next()?;
                let tell = rest.split(" tell ").nth(1)?.split([',', ' ']).next()?;
                if target != tell {
                    return None;
                }
                target.parse().ok()?
            } else if let Some(rest) = l
                .split(": Reply ")
                .nth(1)
                .or_else(|| l.split("ARP, Reply ").nth(1))
                // A reply is gratuitous only when broadcast; unicast replies answer a request.
                .filter(|r| r.contains(" is-at ") && l.contains("> ff:ff:ff:ff:ff:ff,"))
            {
                rest.split_whitespace().next()?.parse().ok()?
            } else if l.contains("neighbor advertisement") {
                l.split("tgt is ")
                    .nth(1)?
                    .split([',', ' '])
                    .next()?
                    .parse()
                    .ok()?
            } else {
                return None;
            };
            Some(Announcement { at, mac, addr })
        })
        .collect()
}

/// Whether an advert from (`prio`, `src`) makes a Master with (`my_prio`, `me`) step down
/// (RFC 9568 6.4.3: a higher priority, or the same priority from a higher address).
pub fn beats(prio: u8, src: IpAddr, my_prio: u8, me: IpAddr) -> bool {
    prio > my_prio || (prio == my_prio && src > me)
}

/// One stretch of a node advertising as Master, from its own capture.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// Its first advert of the stretch.
    pub start: f64,
    /// Its last advert of the stretch.
    pub end: f64,
    /// The first advert that beats it heard during the stretch (or within one interval after
    /// its last advert), if any.
    pub heard_better: Option<f64>,
}

impl Episode {
    /// From its first advert to the first better advert it heard (how long the other side's
    /// adverts were lost), or to its last advert if it heard none.
    pub fn unheard(&self) -> f64 {
        self.heard_better.unwrap_or(self.end) - self.start
    }

    /// From the first better advert heard to its own last advert: how long it went on as
    /// Master after hearing it (negative or zero: stopped at once).
    pub fn reaction(&self) -> Option<f64> {
        self.heard_better.map(|h| self.end - h)
    }
}

/// Stretches of `me` (VRID `vrid`, priority `my_prio`) advertising as Master, in its own
/// capture `adverts`: consecutive own adverts less than two intervals apart form one stretch.
pub fn master_episodes(
    adverts: &[Advert],
    me: IpAddr,
    vrid: u8,
    my_prio: u8,
    interval: Duration,
) -> Vec<Episode> {
    let gap = 2.0 * interval.as_secs_f64();
    let own: Vec<f64> = adverts
        .iter()
        .filter(|a| a.vrid == vrid && a.src == me && a.prio == my_prio)
        .map(|a| a.at)
        .collect();
    let mut episodes: Vec<Episode> = Vec::new();
    for t in own {
        match episodes.last_mut() {
            Some(e) if t - e.end < gap => e.end = t,
            _ => episodes.push(Episode {
                start: t,
                end: t,
                heard_better: None,
            }),
        }
    }
    for e in &mut episodes {
        e.heard_better = adverts
            .iter()
            .filter(|a| a.vrid == vrid && a.src != me && beats(a.prio, a.src, my_prio, me))
            .map(|a| a.at)
            .find(|&at| at >= e.start && at <= e.end + interval.as_secs_f64());
    }
    episodes
}

#[cfg(test)]
mod tests {
    use super::*;

    const VRRP: &str = "\
1764882000.100000 02:00:00:00:00:0b > 01:00:5e:00:00:12, ethertype IPv4 (0x0800), length 54: 192.0.2.11 > 224.0.0.18: VRRPv3, Advertisement, vrid 14, prio 70, intvl 10cs, length 12
1764882000.500000 02:00:00:00:00:0c > 01:00:5e:00:00:12, ethertype IPv4 (0x0800), length 54: 192.0.2.12 > 224.0.0.18: VRRPv3, Advertisement, vrid 14, prio 40, intvl 10cs, length 12
1764882000.600000 02:00:00:00:00:0c > 01:00:5e:00:00:12, ethertype IPv4 (0x0800), length 54: 192.0.2.12 > 224.0.0.18: VRRPv3, Advertisement, vrid 14, prio 40, intvl 10cs, length 12
1764882000.650000 02:00:00:00:00:0b > 01:00:5e:00:00:12, ethertype IPv4 (0x0800), length 54: 192.0.2.11 > 224.0.0.18: VRRPv3, Advertisement, vrid 14, prio 70, intvl 10cs, length 12
1764882001.100000 02:00:00:00:00:0c > 01:00:5e:00:00:12, ethertype IPv4 (0x0800), length 54: 192.0.2.12 > 224.0.0.18: VRRPv3, Advertisement, vrid 14, prio 40, intvl 10cs, length 12
";

    #[test]
    fn adverts_are_read_with_time_source_vrid_and_priority() {
        let a = parse_adverts(VRRP);
        assert_eq!(a.len(), 5);
        assert_eq!(a[0].src, "192.0.2.11".parse::<IpAddr>().unwrap());
        assert_eq!((a[0].vrid, a[0].prio), (14, 70));
        assert!((a[1].at - 1764882000.5).abs() < 1e-6);
    }

    #[test]
    fn an_episode_ends_when_the_node_stops_and_records_the_better_advert_it_heard() {
        let a = parse_adverts(VRRP);
        let me = "192.0.2.12".parse().unwrap();
        let e = master_episodes(&a, me, 14, 40, Duration::from_millis(100));
        assert_eq!(e.len(), 2);
        assert!((e[0].start - 1764882000.5).abs() < 1e-6);
        assert!((e[0].end - 1764882000.6).abs() < 1e-6);
        assert_eq!(e[0].heard_better, Some(1764882000.65));
        assert!(e[0].reaction().unwrap() < 0.0);
        assert!((e[0].unheard() - 0.15).abs() < 1e-6);
        assert_eq!(e[1].heard_better, None);
    }

    #[test]
    fn equal_priority_from_a_higher_address_beats_us() {
        let lo: IpAddr = "192.0.2.12".parse().unwrap();
        let hi: IpAddr = "192.0.2.13".parse().unwrap();
        assert!(beats(40, hi, 40, lo));
        assert!(!beats(40, lo, 40, hi));
        assert!(beats(70, lo, 40, hi));
    }

    #[test]
    fn announcements_are_gratuitous_arps_and_unsolicited_nas() {
        let text = "\
1764882000.100000 02:00:00:00:00:0b > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 192.0.2.5 tell 192.0.2.5, length 28
1764882000.200000 02:00:00:00:00:0c > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 192.0.2.5 tell 192.0.2.100, length 28
1764882000.300000 02:00:00:00:00:0b > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Reply 192.0.2.5 is-at 02:00:00:00:00:0b, length 28
1764882000.400000 02:00:00:00:00:0b > 33:33:00:00:00:01, ethertype IPv6 (0x86dd), length 86: 2001:db8::5 > ff02::1: ICMP6, neighbor advertisement, tgt is 2001:db8::5, length 32
";
        let a = parse_announcements(text);
        assert_eq!(a.len(), 3, "{a:?}");
        assert_eq!(a[0].mac, "02:00:00:00:00:0b");
        assert_eq!(a[0].addr, "192.0.2.5".parse::<IpAddr>().unwrap());
        assert_eq!(a[2].addr, "2001:db8::5".parse::<IpAddr>().unwrap());
    }
}
