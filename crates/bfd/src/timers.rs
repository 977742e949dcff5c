//! The session's timers (a named table in the manner of quinn-proto's `TimerTable`) and the
//! RFC 5880 timer arithmetic: transmit jitter (section 6.8.7), the transmit interval
//! (section 6.8.2) and the detection time (section 6.8.4).
//!
//! Everything is integer nanoseconds; nothing rounds to a coarser unit, so tests can assert
//! deadlines exactly.

use std::time::{Duration, Instant};

/// Every timer a session runs. The discriminant indexes [`TimerTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Detection timer (RFC 5880 section 6.8.4): no valid packet from the remote system for a
    /// Detection Time.
    Detection,
    /// Next periodic Control packet (RFC 5880 section 6.8.7).
    Transmit,
}

impl Timer {
    /// All timers, in the order [`TimerTable::expired`] fires those due at the same instant:
    /// detection first, so a packet sent at that instant already carries the new Down state.
    pub const ALL: [Timer; 2] = [Timer::Detection, Timer::Transmit];

    /// Stable snake_case name, for status output.
    pub fn as_str(self) -> &'static str {
        match self {
            Timer::Detection => "detection",
            Timer::Transmit => "transmit",
        }
    }

    fn index(self) -> usize {
        match self {
            Timer::Detection => 0,
            Timer::Transmit => 1,
        }
    }
}

/// One optional deadline per [`Timer`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerTable {
    deadlines: [Option<Instant>; 2],
}

impl TimerTable {
    /// Arms `timer` for `at` (replacing any earlier deadline).
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    /// Stops `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    /// The deadline of `timer`, if it runs.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// The earliest running timer and its deadline; ties go to the first in [`Timer::ALL`].
    pub fn next(&self) -> Option<(Timer, Instant)> {
        Timer::ALL
            .iter()
            .filter_map(|&t| self.get(t).map(|at| (t, at)))
            .min_by_key(|&(_, at)| at)
    }

    /// Stops and returns every timer due at `now` (deadline <= now), in [`Timer::ALL`] order.
    pub fn expired(&mut self, now: Instant) -> impl Iterator<Item = Timer> {
        let mut due = [None; 2];
        for (slot, timer) in due.iter_mut().zip(Timer::ALL) {
            if self.get(timer).is_some_and(|at| at <= now) {
                self.stop(timer);
                *slot = Some(timer);
            }
        }
        due.into_iter().flatten()
    }
}

/// Where jitter comes from. The core draws no randomness itself: the daemon passes a real
/// random source, tests a fixed or scripted one, so every deadline is reproducible.
pub trait JitterSource {
    /// A uniformly distributed 32-bit value.
    fn next_u32(&mut self) -> u32;
}

impl<F: FnMut() -> u32> JitterSource for F {
    fn next_u32(&mut self) -> u32 {
        self()
    }
}

/// A jitter source that always returns the same value: 0 gives the full interval (90 % of it
/// with a Detect Mult of 1), `u32::MAX` the shortest one. For tests and for a daemon that
/// wants no jitter in a lab (not RFC-conformant outside one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedJitter(pub u32);

impl JitterSource for FixedJitter {
    fn next_u32(&mut self) -> u32 {
        self.0
    }
}

/// The delay before the next periodic packet: `interval` reduced by a random 0 to 25 %
/// (RFC 5880 section 6.8.7), or, when the local Detect Mult is 1, to between 75 % and 90 %
/// of it, so that a single late packet cannot look like a lost one.
///
/// `random` selects the point in that range linearly: 0 gives the longest delay (100 %, or
/// 90 % for Detect Mult 1), `u32::MAX` the shortest, which stays above 75 % by less than
/// a nanosecond's rounding.
pub fn jittered(interval: Duration, detect_mult: u8, random: u32) -> Duration {
    let nanos = interval.as_nanos();
    let fraction = u128::from(random);
    let scale = 1u128 << 32;
    let reduced = if detect_mult == 1 {
        // 90 % of the interval, minus up to a further 15 %: 75 % ..= 90 %.
        nanos * 90 / 100 - nanos * 15 * fraction / (100 * scale)
    } else {
        // The full interval minus up to 25 %: 75 % ..= 100 %.
        nanos - nanos * 25 * fraction / (100 * scale)
    };
    duration_from_nanos(reduced)
}

/// The periodic transmit interval (RFC 5880 section 6.8.2): the larger of what we want to send
/// at (`desired_min_tx`) and what the remote system can take (`remote_min_rx`). `None` when the
/// remote asked for no periodic packets (Required Min RX Interval 0, RFC 5880 section 6.8.3).
pub fn transmit_interval(desired_min_tx: Duration, remote_min_rx: Duration) -> Option<Duration> {
    if remote_min_rx.is_zero() {
        return None;
    }
    Some(desired_min_tx.max(remote_min_rx))
}

/// The Detection Time in Asynchronous mode (RFC 5880 section 6.8.4): the remote Detect Mult
/// times the larger of our Required Min RX Interval and the remote Desired Min TX Interval,
/// i.e. `remote_detect_mult` packets at the rate the remote will actually send. `None` when
/// that is zero (we asked for no packets and the remote advertised a zero interval), because
/// a zero timer cannot detect anything. Saturates at [`Duration::MAX`].
pub fn detection_time(
    remote_detect_mult: u8,
    required_min_rx: Duration,
    remote_desired_min_tx: Duration,
) -> Option<Duration> {
    let time = required_min_rx
        .max(remote_desired_min_tx)
        .saturating_mul(u32::from(remote_detect_mult));
    (!time.is_zero()).then_some(time)
}

fn duration_from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = nanos / NANOS_PER_SEC;
    // The remainder is below 10^9, which fits u32.
    let sub = (nanos % NANOS_PER_SEC) as u32;
    match u64::try_from(secs) {
        Ok(secs) => Duration::new(secs, sub),
        Err(_) => Duration::MAX,
    }
}
