//! The timer table and the RFC 5880 timer arithmetic, exact to the nanosecond.

use std::time::{Duration, Instant};

use vipd_bfd::timers::{detection_time, transmit_interval};
use vipd_bfd::{Timer, TimerTable};

const MS: Duration = Duration::from_millis(1);

#[test]
fn poll_timeout_is_the_earliest_deadline_and_ties_go_to_detection() {
    let t0 = Instant::now();
    let mut t = TimerTable::default();
    assert_eq!(t.next(), None);
    t.set(Timer::Transmit, t0 + 300 * MS);
    t.set(Timer::Detection, t0 + 900 * MS);
    assert_eq!(t.next(), Some((Timer::Transmit, t0 + 300 * MS)));
    t.set(Timer::Transmit, t0 + 900 * MS);
    assert_eq!(t.next(), Some((Timer::Detection, t0 + 900 * MS)));
}

#[test]
fn expired_fires_exactly_the_due_timers_and_stops_them() {
    let t0 = Instant::now();
    let mut t = TimerTable::default();
    t.set(Timer::Transmit, t0 + 300 * MS);
    t.set(Timer::Detection, t0 + 900 * MS);
    assert_eq!(
        t.expired(t0 + 300 * MS - Duration::from_nanos(1)).count(),
        0
    );
    assert_eq!(
        t.expired(t0 + 300 * MS).collect::<Vec<_>>(),
        vec![Timer::Transmit]
    );
    assert_eq!(t.get(Timer::Transmit), None);
    assert_eq!(t.get(Timer::Detection), Some(t0 + 900 * MS));
    t.set(Timer::Transmit, t0 + 900 * MS);
    assert_eq!(
        t.expired(t0 + 900 * MS).collect::<Vec<_>>(),
        vec![Timer::Detection, Timer::Transmit]
    );
    assert_eq!(t.next(), None);
}

#[test]
fn rfc5880_6_8_2_transmit_interval_is_the_larger_and_none_for_zero_remote_rx() {
    assert_eq!(transmit_interval(300 * MS, 500 * MS), Some(500 * MS));
    assert_eq!(transmit_interval(300 * MS, 100 * MS), Some(300 * MS));
    assert_eq!(transmit_interval(300 * MS, Duration::ZERO), None);
}

#[test]
fn rfc5880_6_8_4_detection_time_is_remote_mult_times_the_larger_interval() {
    assert_eq!(detection_time(3, 300 * MS, 200 * MS), Some(900 * MS));
    assert_eq!(detection_time(5, 100 * MS, 250 * MS), Some(1250 * MS));
    assert_eq!(detection_time(3, Duration::ZERO, Duration::ZERO), None);
    assert_eq!(
        detection_time(255, Duration::MAX, Duration::ZERO),
        Some(Duration::MAX)
    );
}
