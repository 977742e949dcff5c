//! What an instance does around a change of state: gratuitous ARP / unsolicited NA
//! announcements after taking the VIPs, and the wait before removing them on resign.

use std::time::Duration;

use super::super::{
    Validator, DEFAULT_ANNOUNCE_COUNT, DEFAULT_ANNOUNCE_REFRESH, DEFAULT_ANNOUNCE_REPEAT_AFTER,
    DEFAULT_RESIGN_WAIT, MAX_ANNOUNCE_COUNT, MAX_RESIGN_WAIT,
};
use super::Inst;

/// An instance's validated announcement and resign timers.
pub(super) struct Announce {
    pub count: u32,
    /// `None` = off ("0s").
    pub repeat_after: Option<Duration>,
    pub refresh: Option<Duration>,
    pub resign_wait: Duration,
}

impl Validator<'_> {
    pub(super) fn announce(&mut self, inst: &Inst) -> Announce {
        let r = inst.raw;
        let count = match &r.announce_count {
            None => DEFAULT_ANNOUNCE_COUNT,
            Some(c) => self
                .ranged(
                    c,
                    &inst.at("announce_count"),
                    0,
                    MAX_ANNOUNCE_COUNT,
                    "accepted 0..=100 (0 = never announce)",
                )
                .map(|n| n as u32)
                .unwrap_or(DEFAULT_ANNOUNCE_COUNT),
        };
        let repeat_after = self.optional_period(
            &r.announce_repeat_after,
            &inst.at("announce_repeat_after"),
            DEFAULT_ANNOUNCE_REPEAT_AFTER,
            Duration::from_millis(100),
        );
        let refresh = self.optional_period(
            &r.announce_refresh,
            &inst.at("announce_refresh"),
            DEFAULT_ANNOUNCE_REFRESH,
            Duration::from_secs(1),
        );
        Announce {
            count,
            repeat_after,
            refresh,
            resign_wait: self.resign_wait(inst),
        }
    }

    /// `resign_wait`: "0s" (remove the VIPs at once) up to 60 s.
    fn resign_wait(&mut self, inst: &Inst) -> Duration {
        let Some(text) = &inst.raw.resign_wait else {
            return DEFAULT_RESIGN_WAIT;
        };
        match self.duration(text, &inst.at("resign_wait")) {
            Some(d) if d > MAX_RESIGN_WAIT => {
                self.err(
                    text.span(),
                    inst.at("resign_wait"),
                    format!(
                        "{:?} is too long; accepted \"0s\" (remove the VIPs at once) up to \"60s\"",
                        text.get_ref()
                    ),
                );
                DEFAULT_RESIGN_WAIT
            }
            Some(d) => d,
            None => DEFAULT_RESIGN_WAIT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::validator;
    use super::super::tests::planned;
    use super::*;

    fn announce(text: &str) -> (Announce, Vec<String>) {
        let mut v = validator(text);
        let p = planned(text);
        let a = v.announce(&Inst::new(&p));
        let errors = v
            .errors
            .iter()
            .map(|d| format!("{}:{}: {}: {}", d.line, d.column, d.key, d.message))
            .collect();
        (a, errors)
    }

    #[test]
    fn zero_turns_repeats_and_refreshes_off() {
        let (a, errors) = announce(
            "name = \"api\"\nannounce_repeat_after = \"0s\"\nannounce_refresh = \"0s\"\nresign_wait = \"0s\"\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!((a.repeat_after, a.refresh), (None, None));
        assert_eq!(a.resign_wait, Duration::ZERO);
        assert_eq!(a.count, DEFAULT_ANNOUNCE_COUNT);
    }

    #[test]
    fn periods_below_their_minimum_are_refused() {
        let (a, errors) = announce("name = \"api\"\nannounce_refresh = \"500ms\"\n");
        assert_eq!(a.refresh, Some(DEFAULT_ANNOUNCE_REFRESH));
        assert_eq!(
            errors,
            ["2:20: instance \"api\": announce_refresh: \"500ms\" is too short; accepted \"0s\" (off) or at least 1s"]
        );
    }

    #[test]
    fn resign_wait_above_60s_is_refused() {
        let (a, errors) = announce("name = \"api\"\nresign_wait = \"61s\"\n");
        assert_eq!(a.resign_wait, DEFAULT_RESIGN_WAIT);
        assert_eq!(
            errors,
            ["2:15: instance \"api\": resign_wait: \"61s\" is too long; accepted \"0s\" (remove the VIPs at once) up to \"60s\""]
        );
    }
}
