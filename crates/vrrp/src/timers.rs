//! RFC 9568 section 6.1 / RFC 3768 section 6.1 timer arithmetic.
//!
//! Everything is computed in integer nanoseconds. The lesson from an earlier Rust implementation
//! (reference/vrrp.md) is that truncating Skew_Time to whole seconds or centiseconds makes every
//! Backup wait the same time and turns the priority-ordered takeover into a race, so nothing here
//! rounds to anything coarser than a nanosecond.

use std::time::Duration;

use crate::packet::Version;

const NANOS_PER_CS: u128 = 10_000_000;
const NANOS_PER_SEC: u128 = 1_000_000_000;

/// The advertisement interval cannot be carried in the chosen version's wire field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IntervalError {
    /// RFC 9568 section 5.2.7: 12 bits of centiseconds, and 0 is not an interval.
    #[error(
        "is not representable in VRRPv3; accepted multiples of 10ms from \"10ms\" to \"40.95s\""
    )]
    V3,
    /// RFC 3768 section 5.3.7: 8 bits of whole seconds, and 0 is not an interval.
    #[error("is not representable in VRRPv2; accepted whole seconds from \"1s\" to \"255s\"")]
    V2,
}

/// Whether `interval` fits the Advertisement Interval field of `version`: v3 whole
/// centiseconds 1..=4095 (10 ms to 40.95 s), v2 whole seconds 1..=255. The one home of this
/// rule: the configuration validator and [`crate::RouterConfig::check`] both call it.
pub fn check_interval(version: Version, interval: Duration) -> Result<(), IntervalError> {
    let nanos = interval.as_nanos();
    let (unit, max_units, err) = match version {
        Version::V3 => (NANOS_PER_CS, 4095, IntervalError::V3),
        Version::V2 => (NANOS_PER_SEC, 255, IntervalError::V2),
    };
    if nanos % unit == 0 && (1..=max_units).contains(&(nanos / unit)) {
        Ok(())
    } else {
        Err(err)
    }
}

/// Skew_Time for a router of `priority` (the *local* priority, not the Master's).
///
/// - v3 (RFC 9568 section 6.1): `((256 - Priority) * Master_Adver_Interval) / 256`; it scales with
///   the interval the Master advertises.
/// - v2 (RFC 3768 section 6.1): `(256 - Priority) / 256` seconds, independent of the interval.
///
/// The only inexactness is the sub-nanosecond remainder of the division by 256, which is
/// truncated (it can be at most 255/256 ns). For intervals that are whole centiseconds the v3
/// result is exact to half a nanosecond, and the v2 result is always exact
/// (`10^9 / 256 = 3_906_250` ns).
pub fn skew_time(version: Version, priority: u8, master_adver_interval: Duration) -> Duration {
    let weight = 256 - u128::from(priority);
    let nanos = match version {
        Version::V3 => master_adver_interval.as_nanos(),
        Version::V2 => NANOS_PER_SEC,
    };
    // In 64 bits whenever the product fits (any interval below about 2 years): a Backup
    // computes this for every advert it hears, and a 128-bit division is a library call.
    match u64::try_from(weight * nanos) {
        Ok(product) => Duration::from_nanos(product / 256),
        Err(_) => duration_from_nanos(weight * nanos / 256),
    }
}

/// Master_Down_Interval: `3 * Master_Adver_Interval + Skew_Time` (RFC 9568 section 6.1; RFC 3768
/// uses the same formula with Advertisement_Interval). A Backup that hears nothing for this long
/// becomes Master.
///
/// Saturates at [`Duration::MAX`] rather than panicking on absurd inputs (the largest real v3
/// interval is 40.95 s, the largest v2 one 255 s, far below any overflow).
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_adver_interval: Duration,
) -> Duration {
    master_adver_interval
        .saturating_mul(3)
        .saturating_add(skew_time(version, priority, master_adver_interval))
}

/// The advertisement interval carried in a v3 Max Adver Int field (centiseconds, RFC 9568
/// section 5.2.7) or in [`crate::Advertisement::interval_cs`], as a [`Duration`]. Exact.
pub fn interval_from_cs(cs: u16) -> Duration {
    Duration::from_millis(u64::from(cs) * 10)
}

/// Converts an interval to whole centiseconds, the unit of the v3 Max Adver Int field.
///
/// Rounding rule: to the **nearest** centisecond, halves rounding up (5 ms -> 1 cs, 4.999 ms ->
/// 0 cs), saturating at `u16::MAX`. The result is not range-checked: 0 or anything above 4095 is
/// not a valid v3 interval and is refused by [`crate::Advertisement::emit`], so configuration
/// should validate before sending (ideally insisting on whole centiseconds, where this is exact).
pub fn interval_to_cs(d: Duration) -> u16 {
    let rounded = d.as_nanos() + NANOS_PER_CS / 2;
    // 64-bit division where it fits (every interval a Master sends with), as in skew_time.
    let cs = match (u64::try_from(rounded), u64::try_from(NANOS_PER_CS)) {
        (Ok(n), Ok(unit)) => u128::from(n / unit),
        _ => rounded / NANOS_PER_CS,
    };
    u16::try_from(cs).unwrap_or(u16::MAX)
}

fn duration_from_nanos(nanos: u128) -> Duration {
    let secs = nanos / NANOS_PER_SEC;
    let sub = (nanos % NANOS_PER_SEC) as u32;
    match u64::try_from(secs) {
        Ok(secs) => Duration::new(secs, sub),
        Err(_) => Duration::MAX,
    }
}
