//! The rise/fall state machine of one check (keepalived `vrrp_script` semantics).
//!
//! - Before any result the status is [`Status::Unknown`].
//! - The first result decides the initial status on its own: keepalived starts its counter one
//!   short of `rise` ("one success is enough") and a failure drops it to bad at once.
//! - From good, `fall` consecutive failures make the check bad; from bad, `rise` consecutive
//!   successes make it good. A result that goes the other way resets the opposite count.
//! - A probe that times out is a failure (the caller records it as one).
//!
//! Pure: no clock, no I/O; the monitor feeds it probe results.

use serde::Serialize;

/// What a check currently says about the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// No probe has finished yet.
    Unknown,
    Good,
    Bad,
}

impl Status {
    /// `None` while unknown, else whether the check is good: the form
    /// [`effective_priority`](super::priority::effective_priority) takes.
    pub fn as_option(self) -> Option<bool> {
        match self {
            Status::Unknown => None,
            Status::Good => Some(true),
            Status::Bad => Some(false),
        }
    }
}

/// A status change caused by one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
}

/// Rise/fall counter of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckState {
    rise: u32,
    fall: u32,
    status: Status,
    consecutive_successes: u32,
    consecutive_failures: u32,
}

impl CheckState {
    /// `rise` and `fall` below 1 are treated as 1 (validation already rejects them).
    pub fn new(rise: u32, fall: u32) -> Self {
        CheckState {
            rise: rise.max(1),
            fall: fall.max(1),
            status: Status::Unknown,
            consecutive_successes: 0,
            consecutive_failures: 0,
        }
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// Successes in a row up to and including the last result.
    pub fn consecutive_successes(&self) -> u32 {
        self.consecutive_successes
    }

    /// Failures in a row up to and including the last result.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Records one probe result (`true` = success, a timeout is `false`) and returns the
    /// transition it caused, if any.
    pub fn record(&mut self, success: bool) -> Option<Transition> {
        if success {
            self.consecutive_successes = self.consecutive_successes.saturating_add(1);
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.consecutive_successes = 0;
        }
        let next = match self.status {
            Status::Unknown if success => Status::Good,
            Status::Unknown => Status::Bad,
            Status::Good if self.consecutive_failures >= self.fall => Status::Bad,
            Status::Bad if self.consecutive_successes >= self.rise => Status::Good,
            unchanged => unchanged,
        };
        let from = self.status;
        self.status = next;
        (from != next).then_some(Transition { from, to: next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    /// Feeds `results` and returns the status after each one.
    fn run(rise: u32, fall: u32, results: &[bool]) -> Vec<Status> {
        let mut s = CheckState::new(rise, fall);
        results
            .iter()
            .map(|&r| {
                s.record(r);
                s.status()
            })
            .collect()
    }

    #[test]
    fn status_is_unknown_before_the_first_result() {
        assert_eq!(CheckState::new(3, 3).status(), Unknown);
    }

    #[test]
    fn first_success_is_good_at_once_whatever_rise() {
        assert_eq!(run(3, 3, &[true]), [Good]);
    }

    #[test]
    fn first_failure_is_bad_at_once_whatever_fall() {
        assert_eq!(run(3, 3, &[false]), [Bad]);
    }

    #[test]
    fn good_needs_fall_consecutive_failures_to_turn_bad() {
        assert_eq!(
            run(3, 2, &[true, false, false, false]),
            [Good, Good, Bad, Bad]
        );
    }

    #[test]
    fn a_success_between_failures_restarts_the_fall_count() {
        assert_eq!(
            run(3, 2, &[true, false, true, false, true, false, false]),
            [Good, Good, Good, Good, Good, Good, Bad]
        );
    }

    #[test]
    fn bad_needs_rise_consecutive_successes_to_turn_good() {
        assert_eq!(run(3, 2, &[false, true, true, true]), [Bad, Bad, Bad, Good]);
    }

    #[test]
    fn a_failure_between_successes_restarts_the_rise_count() {
        assert_eq!(
            run(3, 3, &[false, true, true, false, true, true, true]),
            [Bad, Bad, Bad, Bad, Bad, Bad, Good]
        );
    }

    #[test]
    fn rise_and_fall_of_one_follow_every_result() {
        assert_eq!(
            run(1, 1, &[true, false, true, false]),
            [Good, Bad, Good, Bad]
        );
    }

    #[test]
    fn record_returns_exactly_the_transitions() {
        let mut s = CheckState::new(2, 2);
        assert_eq!(
            s.record(true),
            Some(Transition {
                from: Unknown,
                to: Good
            })
        );
        assert_eq!(s.record(false), None);
        assert_eq!(
            s.record(false),
            Some(Transition {
                from: Good,
                to: Bad
            })
        );
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(true), None);
        assert_eq!(
            s.record(true),
            Some(Transition {
                from: Bad,
                to: Good
            })
        );
    }

    #[test]
    fn consecutive_counts_track_the_current_run() {
        let mut s = CheckState::new(3, 3);
        for r in [true, true, false, false, false, false] {
            s.record(r);
        }
        assert_eq!(
            (s.consecutive_successes(), s.consecutive_failures()),
            (0, 4)
        );
        s.record(true);
        assert_eq!(
            (s.consecutive_successes(), s.consecutive_failures()),
            (1, 0)
        );
    }
}
