//! `[instance.bfd]`: the BFD sessions that let a Backup take over as soon as its Master is lost
//! (`crates/vrrp/src/liveness.rs`), and `[[instance.bfd.peer]]` timers for single peers.

use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

use super::super::super::raw::{RawBfdTimers, S};
use super::super::super::{BfdConfig, BfdTimers, InstanceConfig};
use super::super::Validator;
use super::Inst;

/// Shortest `min_tx` / `min_rx`: below this the scheduling delay of a loaded node is a
/// sizeable part of the interval, and false detections follow.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Longest: BFD that slow adds nothing to VRRP's own Master_Down_Interval.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

impl Validator<'_> {
    /// `[instance.bfd]`, given the instance's validated unicast peers (empty: multicast) and its
    /// Master_Down_Interval (for the warning when BFD would be slower than VRRP).
    pub(super) fn bfd(
        &mut self,
        inst: &Inst,
        peers: &[IpAddr],
        master_down_interval: Duration,
    ) -> Option<BfdConfig> {
        let raw = inst.raw.bfd.as_ref()?;
        let key = inst.at("bfd");
        let timers = self.bfd_timers(&raw.get_ref().timers(), BfdTimers::DEFAULT, &key);
        let mut overrides: Vec<(IpAddr, BfdTimers)> = Vec::new();
        for p in &raw.get_ref().peer {
            let pkey = inst.at("bfd.peer");
            let Some(addr) = self.address(&p.get_ref().address, &format!("{pkey}.address")) else {
                continue;
            };
            let why = if peers.is_empty() {
                Some("this instance is multicast (no unicast_peers): its session follows whichever router it hears as Master, so per-peer timers do not apply; set them in [instance.bfd]".to_string())
            } else if !peers.contains(&addr) {
                Some(format!("{addr} is not one of this instance's unicast_peers; [[instance.bfd.peer]] only gives a listed peer its own timers"))
            } else if overrides.iter().any(|(a, _)| *a == addr) {
                Some(format!("{addr} is listed twice"))
            } else {
                None
            };
            if let Some(why) = why {
                self.err(p.get_ref().address.span(), format!("{pkey}.address"), why);
                continue;
            }
            let t = self.bfd_timers(&p.get_ref().timers(), timers, &format!("{pkey} {addr}"));
            overrides.push((addr, t));
        }
        let config = BfdConfig {
            timers,
            peers: overrides,
        };
        self.bfd_slower_than_vrrp(raw.span(), &key, &config, peers, master_down_interval);
        Some(config)
    }

    /// `min_tx`, `min_rx`, `multiplier`; what is not written comes from `base`.
    fn bfd_timers(&mut self, raw: &RawBfdTimers, base: BfdTimers, key: &str) -> BfdTimers {
        let interval = |v: &mut Self, text: &Option<S<String>>, name: &str, default: Duration| {
            let Some(text) = text else { return default };
            let k = format!("{key}.{name}");
            match v.duration(text, &k) {
                Some(d)
                    if (MIN_INTERVAL..=MAX_INTERVAL).contains(&d)
                        && d.subsec_nanos() % 1000 == 0 =>
                {
                    d
                }
                Some(_) => {
                    v.err(text.span(), k, format!("{:?} is out of range; accepted \"10ms\" to \"60s\" in whole microseconds (BFD carries microseconds; below 10 ms a busy node's scheduling delay causes false detections)", text.get_ref()));
                    default
                }
                None => default,
            }
        };
        let min_tx = interval(self, &raw.min_tx, "min_tx", base.min_tx);
        let min_rx = interval(self, &raw.min_rx, "min_rx", base.min_rx);
        let multiplier = match &raw.multiplier {
            None => base.multiplier,
            Some(m) => self
                .ranged(
                    m,
                    &format!("{key}.multiplier"),
                    1,
                    255,
                    "accepted 1..=255 (BFD's Detect Mult; 3 is usual)",
                )
                .map_or(base.multiplier, |n| n as u8),
        };
        BfdTimers {
            min_tx,
            min_rx,
            multiplier,
        }
    }

    /// A detection time at or above Master_Down_Interval buys nothing: VRRP notices as fast.
    fn bfd_slower_than_vrrp(
        &mut self,
        span: Range<usize>,
        key: &str,
        config: &BfdConfig,
        peers: &[IpAddr],
        master_down_interval: Duration,
    ) {
        let slowest = peers
            .iter()
            .map(|p| config.timers_for(*p))
            .chain(std::iter::once(config.timers))
            .map(|t| t.min_rx.saturating_mul(u32::from(t.multiplier)))
            .max()
            .unwrap_or_default();
        if slowest >= master_down_interval {
            self.warn(
                span,
                key.to_string(),
                format!(
                    "detection time min_rx x multiplier = {slowest:?} is not shorter than VRRP's own Master_Down_Interval ({master_down_interval:?}); BFD cannot speed up the take-over, lower min_rx or multiplier"
                ),
            );
        }
    }

    /// One session per peer serves every instance: instances that name the same peer must ask
    /// for the same timers.
    pub(in super::super) fn bfd_across(
        &mut self,
        instances: &[InstanceConfig],
        spans: &[Option<Range<usize>>],
    ) {
        let mut seen: Vec<(IpAddr, BfdTimers, &str)> = Vec::new();
        for (i, span) in instances.iter().zip(spans) {
            let (Some(bfd), Some(span)) = (&i.bfd, span) else {
                continue;
            };
            for peer in &i.peers {
                let t = bfd.timers_for(*peer);
                match seen.iter().find(|(p, _, _)| p == peer) {
                    Some((_, other, name)) if *other != t => {
                        let msg = format!(
                            "BFD runs one session per peer, and instance {name:?} asks for other timers for {peer} ({other:?} here {t:?}); give both instances the same min_tx, min_rx and multiplier for it"
                        );
                        self.err(span.clone(), format!("instance {:?}: bfd", i.name), msg);
                    }
                    Some(_) => {}
                    None => seen.push((*peer, t, &i.name)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::validator;
    use super::super::tests::planned;
    use super::super::Inst;

    use std::net::IpAddr;
    use std::time::Duration;

    const MS: Duration = Duration::from_millis(1);
    const MDI: Duration = Duration::from_millis(3_844);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_empty_table_turns_bfd_on_with_50_ms_x_3() {
        let p = planned("name = \"api\"\n[bfd]\n");
        let mut v = validator("");
        let bfd = v.bfd(&Inst::new(&p), &[ip("192.0.2.12")], MDI).unwrap();
        assert_eq!(bfd.timers.min_tx, 50 * MS);
        assert_eq!(bfd.timers.min_rx, 50 * MS);
        assert_eq!(bfd.timers.multiplier, 3);
        assert!(v.errors.is_empty());
    }

    #[test]
    fn no_table_no_bfd() {
        let p = planned("name = \"api\"\n");
        let mut v = validator("");
        assert!(v.bfd(&Inst::new(&p), &[], MDI).is_none());
    }

    #[test]
    fn a_peer_override_keeps_the_instance_values_it_does_not_name() {
        let text = "name = \"api\"\n[bfd]\nmin_tx = \"100ms\"\nmultiplier = 5\n[[bfd.peer]]\naddress = \"192.0.2.12\"\nmin_rx = \"20ms\"\n";
        let p = planned(text);
        let mut v = validator(text);
        let bfd = v
            .bfd(&Inst::new(&p), &[ip("192.0.2.12"), ip("192.0.2.13")], MDI)
            .unwrap();
        let t = bfd.timers_for(ip("192.0.2.12"));
        assert_eq!((t.min_tx, t.min_rx, t.multiplier), (100 * MS, 20 * MS, 5));
        assert_eq!(bfd.timers_for(ip("192.0.2.13")), bfd.timers);
        assert!(v.errors.is_empty(), "{:?}", v.errors);
    }

    #[test]
    fn out_of_range_intervals_and_multiplier_are_refused_with_the_key() {
        let text = "name = \"api\"\n[bfd]\nmin_tx = \"5ms\"\nmin_rx = \"2m\"\nmultiplier = 0\n";
        let p = planned(text);
        let mut v = validator(text);
        v.bfd(&Inst::new(&p), &[ip("192.0.2.12")], MDI);
        let keys: Vec<&str> = v.errors.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "instance \"api\": bfd.min_tx",
                "instance \"api\": bfd.min_rx",
                "instance \"api\": bfd.multiplier"
            ]
        );
        assert!(v.errors[0].message.contains("\"10ms\" to \"60s\""));
    }

    #[test]
    fn a_peer_that_is_not_a_unicast_peer_is_refused() {
        let text = "name = \"api\"\n[bfd]\n[[bfd.peer]]\naddress = \"192.0.2.99\"\n";
        let p = planned(text);
        let mut v = validator(text);
        v.bfd(&Inst::new(&p), &[ip("192.0.2.12")], MDI);
        assert_eq!(v.errors.len(), 1);
        assert_eq!(v.errors[0].key, "instance \"api\": bfd.peer.address");
        assert!(v.errors[0]
            .message
            .contains("not one of this instance's unicast_peers"));
    }

    #[test]
    fn per_peer_timers_on_a_multicast_instance_are_refused() {
        let text = "name = \"api\"\n[bfd]\n[[bfd.peer]]\naddress = \"192.0.2.12\"\n";
        let p = planned(text);
        let mut v = validator(text);
        v.bfd(&Inst::new(&p), &[], MDI);
        assert!(v.errors[0].message.contains("multicast"));
    }

    #[test]
    fn a_detection_time_not_below_master_down_interval_draws_a_warning() {
        let text = "name = \"api\"\n[bfd]\nmin_rx = \"2s\"\nmultiplier = 3\n";
        let p = planned(text);
        let mut v = validator(text);
        assert!(v.bfd(&Inst::new(&p), &[ip("192.0.2.12")], MDI).is_some());
        assert!(v.errors.is_empty());
        assert_eq!(v.warnings.len(), 1);
        assert!(v.warnings[0].message.contains("Master_Down_Interval"));
    }
}
