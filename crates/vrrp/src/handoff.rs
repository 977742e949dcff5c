//! The bootstrap hand-off decision (OpenShift, docs/configuration.md `[handoff]`): when a
//! bootstrap that holds the API VIP above every master gives it away, and when it takes it back.
//!
//! Today's OpenShift stops the bootstrap's keepalived after five failed `/readyz` probes one
//! second apart, once the API has been up, and only when Ironic is down too; keepalived's
//! priority-0 advert then lets the best master take over. The daemon feeds this machine one
//! probe result per interval and carries out its decisions (resign make-before-break, resume).
//! No I/O and no clock.

/// Where the bootstrap's API stands, as far as the hand-off is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The API has not answered yet: it is still starting, and its failures mean nothing.
    NeverUp,
    /// The API has answered at least once; the VIP stays unless it fails `failures` times.
    Up,
    /// The VIP was handed to the masters; `recoveries` good probes take it back.
    HandedOff,
}

impl Phase {
    /// Stable snake_case name (status output).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::NeverUp => "never_up",
            Phase::Up => "up",
            Phase::HandedOff => "handed_off",
        }
    }
}

/// What one probe result changed. Each is logged once, on one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The API answered for the first time.
    ApiUp,
    /// `failures` failures in a row after having been up, every `also_down` probe failing too:
    /// resign the instances.
    HandOff,
    /// `failures` failures in a row, but an `also_down` service still answers: the VIP stays.
    /// Reported once per run of failures.
    HeldBack,
    /// `recoveries` successes in a row after the hand-off: rejoin the election.
    Rejoin,
}

/// The hand-off decision as a state machine over probe results:
/// `NeverUp -> Up` on the first success, `Up -> HandedOff` after `failures` consecutive failures
/// with every `also_down` probe failing, `HandedOff -> Up` after `recoveries` consecutive
/// successes. No I/O and no clock: the task feeds it one result per interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffMachine {
    failures_needed: u32,
    recoveries_needed: u32,
    phase: Phase,
    failures: u32,
    successes: u32,
    held_back: bool,
}

impl HandoffMachine {
    /// `failures` and `recoveries` are at least 1 (config validation); 0 is treated as 1.
    pub fn new(failures: u32, recoveries: u32) -> Self {
        HandoffMachine {
            failures_needed: failures.max(1),
            recoveries_needed: recoveries.max(1),
            phase: Phase::NeverUp,
            failures: 0,
            successes: 0,
            held_back: false,
        }
    }

    /// A machine that continues from `phase` with fresh counts (after a reload).
    pub fn resumed(failures: u32, recoveries: u32, phase: Phase) -> Self {
        HandoffMachine {
            phase,
            ..HandoffMachine::new(failures, recoveries)
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// API failures in a row counted so far (only counted once the API has been up).
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// API successes in a row counted since the hand-off.
    pub fn consecutive_successes(&self) -> u32 {
        self.successes
    }

    /// Whether a failure observed now reaches the threshold, so the `also_down` services must
    /// be probed to decide; otherwise their state does not matter and they are left alone.
    pub fn needs_others(&self) -> bool {
        self.phase == Phase::Up && self.failures.saturating_add(1) >= self.failures_needed
    }

    /// The API probe succeeded.
    pub fn api_up(&mut self) -> Option<Decision> {
        self.failures = 0;
        self.held_back = false;
        match self.phase {
            Phase::NeverUp => {
                self.phase = Phase::Up;
                Some(Decision::ApiUp)
            }
            Phase::Up => None,
            Phase::HandedOff => {
                self.successes = self.successes.saturating_add(1);
                if self.successes >= self.recoveries_needed {
                    self.successes = 0;
                    self.phase = Phase::Up;
                    Some(Decision::Rejoin)
                } else {
                    None
                }
            }
        }
    }

    /// The API probe failed. `others_down`: every `also_down` probe failed as well (true when
    /// there are none); only read when [`Self::needs_others`] was true.
    pub fn api_down(&mut self, others_down: bool) -> Option<Decision> {
        self.successes = 0;
        if self.phase != Phase::Up {
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures < self.failures_needed {
            return None;
        }
        if others_down {
            self.failures = 0;
            self.held_back = false;
            self.phase = Phase::HandedOff;
            Some(Decision::HandOff)
        } else if !self.held_back {
            self.held_back = true;
            Some(Decision::HeldBack)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `steps` ('+' API up, '-' API down with the others down, 'o' API down with an
    /// `also_down` service up) and returns the decisions by step index.
    fn run_steps(machine: &mut HandoffMachine, steps: &str) -> Vec<(usize, Decision)> {
        steps
            .chars()
            .enumerate()
            .filter_map(|(i, c)| {
                let d = match c {
                    '+' => machine.api_up(),
                    '-' => machine.api_down(true),
                    'o' => machine.api_down(false),
                    _ => panic!("unknown step {c:?}"),
                };
                d.map(|d| (i, d))
            })
            .collect()
    }

    #[test]
    fn failures_before_the_api_was_ever_up_never_hand_off() {
        let mut m = HandoffMachine::new(5, 3);
        assert_eq!(run_steps(&mut m, "----------"), []);
        assert_eq!(m.phase(), Phase::NeverUp);
        assert_eq!(m.consecutive_failures(), 0);
    }

    #[test]
    fn the_first_success_arms_the_handoff() {
        let mut m = HandoffMachine::new(5, 3);
        assert_eq!(run_steps(&mut m, "---+"), [(3, Decision::ApiUp)]);
        assert_eq!(m.phase(), Phase::Up);
    }

    #[test]
    fn five_failures_in_a_row_with_the_others_down_hand_off_on_the_fifth() {
        let mut m = HandoffMachine::new(5, 3);
        assert_eq!(
            run_steps(&mut m, "+-----"),
            [(0, Decision::ApiUp), (5, Decision::HandOff)]
        );
        assert_eq!(m.phase(), Phase::HandedOff);
    }

    #[test]
    fn a_success_in_between_restarts_the_count() {
        let mut m = HandoffMachine::new(5, 3);
        assert_eq!(
            run_steps(&mut m, "+----+----+-----"),
            [(0, Decision::ApiUp), (15, Decision::HandOff)]
        );
    }

    #[test]
    fn an_also_down_service_still_up_holds_the_vip_and_says_so_once() {
        let mut m = HandoffMachine::new(5, 3);
        assert_eq!(
            run_steps(&mut m, "+ooooooo"),
            [(0, Decision::ApiUp), (5, Decision::HeldBack)]
        );
        assert_eq!(m.phase(), Phase::Up);
        assert_eq!(m.consecutive_failures(), 7);
    }

    #[test]
    fn the_others_going_down_later_hand_off_at_once() {
        let mut m = HandoffMachine::new(5, 3);
        assert_eq!(
            run_steps(&mut m, "+ooooooo-"),
            [
                (0, Decision::ApiUp),
                (5, Decision::HeldBack),
                (8, Decision::HandOff)
            ]
        );
    }

    #[test]
    fn three_successes_in_a_row_after_the_handoff_rejoin_on_the_third() {
        let mut m = HandoffMachine::new(5, 3);
        run_steps(&mut m, "+-----");
        assert_eq!(run_steps(&mut m, "++-++-+++"), [(8, Decision::Rejoin)]);
        assert_eq!(m.phase(), Phase::Up);
    }

    #[test]
    fn after_rejoining_the_next_outage_hands_off_again() {
        let mut m = HandoffMachine::new(5, 3);
        assert_eq!(
            run_steps(&mut m, "+-----+++-----"),
            [
                (0, Decision::ApiUp),
                (5, Decision::HandOff),
                (8, Decision::Rejoin),
                (13, Decision::HandOff)
            ]
        );
    }

    #[test]
    fn failures_after_the_handoff_change_nothing() {
        let mut m = HandoffMachine::new(5, 3);
        run_steps(&mut m, "+-----");
        assert_eq!(run_steps(&mut m, "----------"), []);
        assert_eq!(m.phase(), Phase::HandedOff);
        assert_eq!(m.consecutive_failures(), 0);
    }

    #[test]
    fn one_failure_and_one_recovery_act_on_the_first_result() {
        let mut m = HandoffMachine::new(1, 1);
        assert_eq!(
            run_steps(&mut m, "+-+"),
            [
                (0, Decision::ApiUp),
                (1, Decision::HandOff),
                (2, Decision::Rejoin)
            ]
        );
    }

    #[test]
    fn the_others_are_probed_only_for_the_failure_that_reaches_the_threshold() {
        let mut m = HandoffMachine::new(3, 3);
        assert!(!m.needs_others());
        m.api_up();
        assert!(!m.needs_others());
        m.api_down(false);
        assert!(!m.needs_others());
        m.api_down(false);
        assert!(m.needs_others());
    }

    #[test]
    fn a_resumed_machine_keeps_its_phase_with_fresh_counts() {
        let mut m = HandoffMachine::resumed(5, 3, Phase::HandedOff);
        assert_eq!(run_steps(&mut m, "+++"), [(2, Decision::Rejoin)]);
    }
}
