//! Optional damping of a check's reported status (`hold_down`), between the rise/fall counter
//! ([`CheckState`](super::state::CheckState)) and what instances track.
//!
//! The rule, with `hold_down = H` (zero = off, keepalived semantics: every change of the
//! counter is reported when it happens):
//!
//! - A change of the counter is reported at once unless a reported change happened less than
//!   `H` ago. So the first change after a quiet period (at least `H` without a reported change)
//!   moves the VIP at once: damping never delays the first move.
//! - Otherwise the change is held back until `H` has passed since the last reported change. At
//!   that moment the status the counter shows *then* is reported: a check that ended bad is
//!   reported bad, one that came back to the reported status reports nothing.
//! - Hence at most one reported change per `H`, and never a held-back status older than `H`.
//! - The first result decides the initial status as without damping; it is not a change and
//!   starts no hold-down.
//!
//! One rule for both directions: holding back only recoveries (failures always at once) would
//! let a flapping check move the VIP twice per hold-down, away and back.
//!
//! Pure: the caller passes the time and arms a timer for [`HoldDown::release_at`].

use std::time::Duration;

use tokio::time::Instant;

use super::state::{Status, Transition};

/// What a check reports, given what its rise/fall counter shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldDown {
    period: Duration,
    /// What the rise/fall counter shows.
    shown: Status,
    /// What instances see.
    reported: Status,
    /// When the reported status last changed between good and bad.
    last_change: Option<Instant>,
    status_changes: u64,
    held_back_changes: u64,
}

impl HoldDown {
    /// `period` zero: off.
    pub fn new(period: Duration) -> Self {
        HoldDown {
            period,
            shown: Status::Unknown,
            reported: Status::Unknown,
            last_change: None,
            status_changes: 0,
            held_back_changes: 0,
        }
    }

    /// The status instances track.
    pub fn reported(&self) -> Status {
        self.reported
    }

    /// The status the counter shows while the hold-down keeps it from being reported.
    pub fn held_back(&self) -> Option<Status> {
        (self.shown != self.reported).then_some(self.shown)
    }

    /// When [`release`](Self::release) reports the held-back status (if the counter still
    /// shows it then); `None` while nothing is held back.
    pub fn release_at(&self) -> Option<Instant> {
        self.held_back()?;
        self.hold_ends()
    }

    /// Reported changes between good and bad.
    pub fn status_changes(&self) -> u64 {
        self.status_changes
    }

    /// Changes of the counter away from the reported status that were not reported when they
    /// happened.
    pub fn held_back_changes(&self) -> u64 {
        self.held_back_changes
    }

    /// Takes the counter's status after a result; returns the change to report, if any.
    pub fn record(&mut self, now: Instant, shown: Status) -> Option<Transition> {
        let moved_away = shown != self.shown && shown != self.reported;
        self.shown = shown;
        let reported = self.release(now);
        if moved_away && reported.is_none() {
            self.held_back_changes = self.held_back_changes.saturating_add(1);
        }
        reported
    }

    /// Reports what the counter shows if that differs from the reported status and no
    /// hold-down runs; called by [`record`](Self::record) and when [`release_at`](Self::release_at)
    /// comes.
    pub fn release(&mut self, now: Instant) -> Option<Transition> {
        if self.shown == self.reported || self.hold_ends().is_some_and(|end| now < end) {
            return None;
        }
        let from = self.reported;
        self.reported = self.shown;
        if from != Status::Unknown {
            self.last_change = Some(now);
            self.status_changes = self.status_changes.saturating_add(1);
        }
        Some(Transition {
            from,
            to: self.shown,
        })
    }

    /// The end of the running hold-down, if one ever started (off: the last change itself).
    fn hold_ends(&self) -> Option<Instant> {
        self.last_change?.checked_add(self.period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    const H: Duration = Duration::from_secs(30);

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    #[test]
    fn the_first_result_is_reported_and_starts_no_hold_down() {
        let t0 = Instant::now();
        let mut h = HoldDown::new(H);
        assert_eq!(
            h.record(t0, Good),
            Some(Transition {
                from: Unknown,
                to: Good
            })
        );
        // The first failure, one second later, is not held back.
        assert_eq!(
            h.record(at(t0, 1), Bad),
            Some(Transition {
                from: Good,
                to: Bad
            })
        );
        assert_eq!((h.status_changes(), h.held_back_changes()), (1, 0));
    }

    #[test]
    fn a_change_within_the_hold_down_waits_for_its_end() {
        let t0 = Instant::now();
        let mut h = HoldDown::new(H);
        h.record(t0, Good);
        h.record(at(t0, 10), Bad);
        assert_eq!(h.record(at(t0, 12), Good), None);
        assert_eq!(h.reported(), Bad);
        assert_eq!(h.held_back(), Some(Good));
        assert_eq!(h.release_at(), Some(at(t0, 40)));
        assert_eq!(h.release(at(t0, 39)), None);
        assert_eq!(
            h.release(at(t0, 40)),
            Some(Transition {
                from: Bad,
                to: Good
            })
        );
        assert_eq!((h.held_back(), h.release_at()), (None, None));
        assert_eq!((h.status_changes(), h.held_back_changes()), (2, 1));
    }

    #[test]
    fn a_held_back_change_that_reverts_is_never_reported() {
        let t0 = Instant::now();
        let mut h = HoldDown::new(H);
        h.record(t0, Good);
        h.record(at(t0, 10), Bad);
        assert_eq!(h.record(at(t0, 12), Good), None);
        assert_eq!(h.record(at(t0, 14), Bad), None);
        assert_eq!((h.held_back(), h.release_at()), (None, None));
        assert_eq!(h.release(at(t0, 40)), None);
        assert_eq!(h.reported(), Bad);
        // A later change, past the hold-down, goes through at once.
        assert!(h.record(at(t0, 41), Good).is_some());
        assert_eq!(h.held_back_changes(), 1);
    }

    #[test]
    fn a_result_at_the_end_of_the_hold_down_is_reported_at_once() {
        let t0 = Instant::now();
        let mut h = HoldDown::new(H);
        h.record(t0, Good);
        h.record(at(t0, 10), Bad);
        assert!(h.record(at(t0, 40), Good).is_some());
        assert_eq!(h.held_back_changes(), 0);
    }

    #[test]
    fn off_reports_every_change_of_the_counter() {
        let t0 = Instant::now();
        let mut h = HoldDown::new(Duration::ZERO);
        for (i, s) in [Good, Bad, Good, Bad, Bad, Good].into_iter().enumerate() {
            let before = h.reported();
            let t = h.record(t0, s);
            assert_eq!(t.is_some(), before != s, "{i}");
            assert_eq!(h.reported(), s);
        }
        assert_eq!((h.status_changes(), h.held_back_changes()), (4, 0));
    }
}
