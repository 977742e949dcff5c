//! Fast failure detection as an input of the state machine: a Backup whose detector (BFD,
//! RFC 5880/5881) loses the Master takes over without waiting out Master_Down_Interval.
//!
//! VRRP alone learns that the Master is gone only when Master_Down_Interval (3 advert
//! intervals plus Skew_Time, 3.84 s at OpenShift's 1 s adverts) passes without an advert. A BFD
//! session to the Master notices in its detection time (150 ms at 50 ms x 3). The router treats
//! "the detector lost the Master" as Master_Down_Interval expiring, after a skew of its own:
//!
//! ```text
//! Liveness_Skew = ((256 - Priority) * Detection_Time) / 256
//! ```
//!
//! the RFC 9568 Skew_Time formula with the detector's detection time in place of
//! Master_Adver_Interval, so the highest-priority Backup moves first and the others, hearing its
//! advert, stay Backup (an advert resets their Master_Down_Timer as always).
//!
//! The detector can be wrong while the Master is alive (BFD alone filtered, or packet loss
//! taking `multiplier` BFD packets in a row). Three rules keep that harmless:
//!
//! 1. **Any sign of life cancels.** A report that the peer was heard again
//!    ([`Liveness::Heard`]: any BFD packet from it) or an advert from the Master before the
//!    skew has run puts the Master_Down_Timer back where the last advert left it.
//! 2. **VRRP settles the rest.** A Backup that did take over is a Master like any other: the
//!    live Master hears its advert and re-asserts at once (or the Backup hears the Master's
//!    next periodic advert), and the ordinary RFC 9568 6.4.3 comparison leaves one Master. So
//!    a wrong report costs at most one advert interval of two Masters, never more.
//! 3. **A refuted report silences the detector for a while, longer each time.** If, within
//!    one Master_Down_Interval of a take-over that a report caused, the Master we believed
//!    lost advertises again, reports about it are ignored for a hold-down of
//!    [`HOLD_DOWN_INTERVALS`] Master_Down_Intervals; plain VRRP timing applies meanwhile. A
//!    refutation within four times the previous hold-down's length of its start doubles the
//!    hold-down (up to 2^[`MAX_HOLD_DOWN_DOUBLINGS`] times), as route-flap damping does. A
//!    detector that keeps lying (BFD filtered while adverts flow, or heavy loss) therefore
//!    moves the VIP at most once per hold-down, and ever more rarely.
//!
//! Reports about a router that is not the current Master (as this Backup last heard it) are
//! ignored: only the Master's death matters to a Backup.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What a fast failure detector reports about another router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The detector's session to the peer went down after being up: nothing heard from it for
    /// `detection_time` (BFD: remote detect multiplier x agreed receive interval).
    Lost { detection_time: Duration },
    /// A packet from the peer arrived after a `Lost` report: it is alive.
    Heard,
}

/// How long (in Master_Down_Intervals) reports about a Master are ignored after one of them
/// was refuted by that Master's own advert (the first time; see [`HoldDown::next`]).
pub const HOLD_DOWN_INTERVALS: u32 = 10;
/// At most this many doublings of the hold-down (10 x 2^5 = 320 Master_Down_Intervals, 20
/// minutes at 1 s adverts).
pub const MAX_HOLD_DOWN_DOUBLINGS: u32 = 5;

/// Reports about `peer` are ignored until `until`; `length` was the hold-down given, so a
/// refutation soon after it ends can double it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldDown {
    pub peer: IpAddr,
    pub since: Instant,
    pub until: Instant,
    pub doublings: u32,
}

impl HoldDown {
    /// The hold-down after a refutation about `peer` at `now`: [`HOLD_DOWN_INTERVALS`] x
    /// `master_down_interval`, doubled once more than `previous` when that one was about the
    /// same peer and `now` is within four times its length of its start. `None` if the end is not
    /// representable.
    pub fn next(
        previous: Option<HoldDown>,
        peer: IpAddr,
        now: Instant,
        master_down_interval: Duration,
    ) -> Option<HoldDown> {
        let doublings = match previous {
            Some(p)
                if p.peer == peer
                    && now.saturating_duration_since(p.since)
                        <= p.until.saturating_duration_since(p.since).saturating_mul(4) =>
            {
                (p.doublings + 1).min(MAX_HOLD_DOWN_DOUBLINGS)
            }
            _ => 0,
        };
        let length = master_down_interval
            .saturating_mul(HOLD_DOWN_INTERVALS)
            .saturating_mul(1 << doublings);
        Some(HoldDown {
            peer,
            since: now,
            until: now.checked_add(length)?,
            doublings,
        })
    }
}

/// `((256 - priority) * detection_time) / 256`, exact to the nanosecond (truncated below).
pub fn liveness_skew(priority: u8, detection_time: Duration) -> Duration {
    let weight = 256 - u128::from(priority);
    let nanos = weight * detection_time.as_nanos() / 256;
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

/// The router's memory of detector reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LivenessState {
    /// A report lost this Master; the Master_Down_Timer runs on the shortened deadline.
    pub pending: Option<IpAddr>,
    /// We became Master because a report lost this router, at this time.
    pub takeover: Option<(IpAddr, Instant)>,
    /// Reports about this router are ignored for a while (the last refutation's hold-down,
    /// kept after it ends so the next one can double it).
    pub hold_down: Option<HoldDown>,
}

impl LivenessState {
    /// Whether reports about `peer` are ignored at `now` (a refuted report's hold-down).
    pub fn held_down(&self, peer: IpAddr, now: Instant) -> bool {
        self.hold_down
            .is_some_and(|h| h.peer == peer && now < h.until)
    }

    /// Whether an advert from `src` at `now` refutes the take-over a report caused: the
    /// router we believed lost is advertising within one `master_down_interval` of it.
    pub fn refuted_by(&self, src: IpAddr, now: Instant, master_down_interval: Duration) -> bool {
        self.takeover.is_some_and(|(lost, at)| {
            lost == src && now.saturating_duration_since(at) <= master_down_interval
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn skew_orders_by_priority_and_scales_with_the_detection_time() {
        // 50 ms x 3: 150 ms detection time.
        let d = 150 * MS;
        assert_eq!(liveness_skew(255, d), Duration::from_nanos(585_937));
        assert_eq!(
            liveness_skew(70, d),
            Duration::from_nanos(186 * 150_000_000 / 256)
        );
        assert!(liveness_skew(70, d) < liveness_skew(40, d));
        assert_eq!(
            liveness_skew(1, d),
            Duration::from_nanos(255 * 150_000_000 / 256)
        );
        assert_eq!(liveness_skew(40, 300 * MS), liveness_skew(40, d) * 2);
    }

    #[test]
    fn hold_down_applies_to_one_peer_until_its_deadline() {
        let t = Instant::now();
        let a = IpAddr::from([192, 0, 2, 11]);
        let b = IpAddr::from([192, 0, 2, 12]);
        let s = LivenessState {
            hold_down: Some(HoldDown {
                peer: a,
                since: t,
                until: t + 10 * MS,
                doublings: 0,
            }),
            ..Default::default()
        };
        assert!(s.held_down(a, t));
        assert!(s.held_down(a, t + 9 * MS));
        assert!(!s.held_down(a, t + 10 * MS));
        assert!(!s.held_down(b, t));
    }

    #[test]
    fn the_hold_down_doubles_when_refuted_again_soon_and_starts_over_otherwise() {
        let t = Instant::now();
        let a = IpAddr::from([192, 0, 2, 11]);
        let b = IpAddr::from([192, 0, 2, 12]);
        let mdi = Duration::from_secs(4);
        let first = HoldDown::next(None, a, t, mdi).unwrap();
        assert_eq!(first.until, t + 40 * Duration::from_secs(1));
        assert_eq!(first.doublings, 0);
        // Refuted again 50 s later (within 4 x 40 s of the first): 80 s.
        let t2 = t + Duration::from_secs(50);
        let second = HoldDown::next(Some(first), a, t2, mdi).unwrap();
        assert_eq!(second.until, t2 + Duration::from_secs(80));
        // Capped after five doublings: 10 x 32 x 4 s.
        let mut h = second;
        for _ in 0..10 {
            h = HoldDown::next(Some(h), a, h.until, mdi).unwrap();
        }
        assert_eq!(h.doublings, MAX_HOLD_DOWN_DOUBLINGS);
        assert_eq!(h.until - h.since, Duration::from_secs(1280));
        // Long quiet, or another peer: back to the first length.
        let later = HoldDown::next(Some(second), a, t2 + Duration::from_secs(321), mdi).unwrap();
        assert_eq!(later.doublings, 0);
        assert_eq!(
            HoldDown::next(Some(second), b, t2, mdi).unwrap().doublings,
            0
        );
    }

    #[test]
    fn only_the_lost_router_advertising_within_the_window_refutes() {
        let t = Instant::now();
        let a = IpAddr::from([192, 0, 2, 11]);
        let b = IpAddr::from([192, 0, 2, 12]);
        let s = LivenessState {
            takeover: Some((a, t)),
            ..Default::default()
        };
        let mdi = 3_844 * MS;
        assert!(s.refuted_by(a, t + 5 * MS, mdi));
        assert!(s.refuted_by(a, t + mdi, mdi));
        assert!(!s.refuted_by(a, t + mdi + MS, mdi));
        assert!(!s.refuted_by(b, t + 5 * MS, mdi));
        assert!(!LivenessState::default().refuted_by(a, t, mdi));
    }
}
