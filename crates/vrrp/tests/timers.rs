//! Timer arithmetic against the table in reference/vrrp.md (RFC 9568 section 6.1, RFC 3768 6.1).
//! Every expected value is written as exact nanoseconds: the table's 3.008 s is 3.0078125 s.

use std::time::Duration;

use vipd_vrrp::timers::{
    check_interval, interval_from_cs, interval_to_cs, master_down_interval, skew_time,
    IntervalError,
};
use vipd_vrrp::Version;

const ONE_SECOND: Duration = Duration::from_secs(1);
const HUNDRED_MS: Duration = Duration::from_millis(100);

fn ns(n: u64) -> Duration {
    Duration::from_nanos(n)
}

#[test]
fn v3_master_down_interval_at_1s_matches_the_reference_table() {
    let rows = [
        (254, 3_007_812_500),
        (200, 3_218_750_000),
        (100, 3_609_375_000),
        (40, 3_843_750_000),
        (1, 3_996_093_750),
    ];
    for (priority, expected) in rows {
        assert_eq!(
            master_down_interval(Version::V3, priority, ONE_SECOND),
            ns(expected),
            "priority {priority}"
        );
    }
}

#[test]
fn v3_master_down_interval_at_100ms_matches_the_reference_table() {
    let rows = [
        (254, 300_781_250),
        (200, 321_875_000),
        (100, 360_937_500),
        (40, 384_375_000),
        (1, 399_609_375),
    ];
    for (priority, expected) in rows {
        assert_eq!(
            master_down_interval(Version::V3, priority, HUNDRED_MS),
            ns(expected),
            "priority {priority}"
        );
    }
}

#[test]
fn v3_skew_after_a_resignation_at_priority_40_is_0_84375_of_the_interval() {
    // RFC 9568 6.4.2: on a priority-0 advert a Backup waits only Skew_Time (its own priority).
    assert_eq!(skew_time(Version::V3, 40, ONE_SECOND), ns(843_750_000));
    assert_eq!(skew_time(Version::V3, 40, HUNDRED_MS), ns(84_375_000));
}

#[test]
fn v3_skew_is_not_truncated_to_centiseconds_at_high_priority() {
    // 10 ms interval, priority 254: 2/256 * 10 ms = 78.125 us; truncating to cs would give zero.
    assert_eq!(
        skew_time(Version::V3, 254, Duration::from_millis(10)),
        ns(78_125)
    );
}

#[test]
fn v3_skew_scales_with_the_masters_interval() {
    assert_eq!(
        skew_time(Version::V3, 100, Duration::from_secs(2)),
        ns(1_218_750_000)
    );
}

#[test]
fn v3_skew_at_priority_zero_is_the_whole_interval() {
    assert_eq!(skew_time(Version::V3, 0, ONE_SECOND), ONE_SECOND);
}

#[test]
fn v3_skew_at_owner_priority_255_is_1_over_256_of_the_interval() {
    assert_eq!(skew_time(Version::V3, 255, ONE_SECOND), ns(3_906_250));
}

#[test]
fn v3_skew_truncates_only_the_sub_nanosecond_remainder() {
    // 1 cs * 255 / 256 = 9_960_937.5 ns.
    assert_eq!(
        skew_time(Version::V3, 1, Duration::from_millis(10)),
        ns(9_960_937)
    );
}

#[test]
fn v2_skew_is_in_seconds_and_ignores_the_interval() {
    // RFC 3768 6.1: Skew_Time = (256 - Priority) / 256 seconds. OpenShift's bootstrap: priority 70.
    assert_eq!(skew_time(Version::V2, 70, ONE_SECOND), ns(726_562_500));
    assert_eq!(
        skew_time(Version::V2, 70, Duration::from_secs(5)),
        ns(726_562_500)
    );
}

#[test]
fn v2_master_down_interval_is_three_intervals_plus_the_seconds_skew() {
    assert_eq!(
        master_down_interval(Version::V2, 40, ONE_SECOND),
        ns(3_843_750_000)
    );
    assert_eq!(
        master_down_interval(Version::V2, 40, Duration::from_secs(2)),
        ns(6_843_750_000)
    );
}

#[test]
fn master_down_interval_saturates_instead_of_overflowing() {
    assert_eq!(
        master_down_interval(Version::V3, 1, Duration::MAX),
        Duration::MAX
    );
}

#[test]
fn interval_from_cs_converts_centiseconds_exactly() {
    assert_eq!(interval_from_cs(1), Duration::from_millis(10));
    assert_eq!(interval_from_cs(100), ONE_SECOND);
    assert_eq!(interval_from_cs(4095), Duration::from_millis(40_950));
}

#[test]
fn interval_to_cs_is_exact_for_whole_centiseconds() {
    assert_eq!(interval_to_cs(ONE_SECOND), 100);
    assert_eq!(interval_to_cs(Duration::from_millis(40_950)), 4095);
    assert_eq!(interval_to_cs(Duration::ZERO), 0);
}

#[test]
fn interval_to_cs_rounds_to_nearest_with_halves_up() {
    assert_eq!(interval_to_cs(Duration::from_micros(4_999)), 0);
    assert_eq!(interval_to_cs(Duration::from_millis(5)), 1);
    assert_eq!(interval_to_cs(Duration::from_millis(1_004)), 100);
    assert_eq!(interval_to_cs(Duration::from_millis(1_005)), 101);
}

#[test]
fn interval_to_cs_saturates_at_u16_max() {
    assert_eq!(interval_to_cs(Duration::from_secs(100_000)), u16::MAX);
}

#[test]
fn interval_round_trips_through_centiseconds_for_every_field_value() {
    for cs in 0..=4095u16 {
        assert_eq!(interval_to_cs(interval_from_cs(cs)), cs);
    }
}

#[test]
fn rfc9568_5_2_7_v3_interval_is_whole_centiseconds_from_10_ms_to_40_95_s() {
    let ms = Duration::from_millis;
    assert_eq!(check_interval(Version::V3, ms(10)), Ok(()));
    assert_eq!(check_interval(Version::V3, ms(40_950)), Ok(()));
    assert_eq!(check_interval(Version::V3, ms(15)), Err(IntervalError::V3));
    assert_eq!(
        check_interval(Version::V3, ms(40_960)),
        Err(IntervalError::V3)
    );
    assert_eq!(
        check_interval(Version::V3, Duration::ZERO),
        Err(IntervalError::V3)
    );
}

#[test]
fn rfc3768_5_3_7_v2_interval_is_whole_seconds_from_1_to_255() {
    assert_eq!(check_interval(Version::V2, ONE_SECOND), Ok(()));
    assert_eq!(
        check_interval(Version::V2, Duration::from_secs(255)),
        Ok(())
    );
    assert_eq!(
        check_interval(Version::V2, Duration::from_millis(1500)),
        Err(IntervalError::V2)
    );
    assert_eq!(
        check_interval(Version::V2, Duration::from_secs(256)),
        Err(IntervalError::V2)
    );
    assert_eq!(
        check_interval(Version::V2, Duration::ZERO),
        Err(IntervalError::V2)
    );
}
