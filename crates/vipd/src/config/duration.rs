//! Humane durations: `"1s"`, `"100ms"`, `"1.5s"`, `"2m"`, `"0s"`.

use std::time::Duration;

/// Parses a decimal number followed by a unit (`ms`, `s`, `m` or `h`), exactly to the
/// nanosecond. A bare number is refused: `1` could mean seconds (keepalived) or milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let accepted = "write a number and a unit, e.g. \"1s\", \"100ms\", \"1.5s\", \"2m\"";
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let nanos_per_unit: u128 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "" => return Err(format!("{text:?} has no unit; {accepted}")),
        other => {
            return Err(format!(
                "{text:?} has unit {other:?}; the units are ms, s, m and h; {accepted}"
            ))
        }
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits_ok(whole) || !digits_ok(fraction) || number.ends_with('.') {
        return Err(format!("{text:?} is not a duration; {accepted}"));
    }
    let too_long = || format!("{text:?} is too long for a duration");
    let whole: u128 = whole.parse().map_err(|_| too_long())?;
    let mut nanos = whole.checked_mul(nanos_per_unit).ok_or_else(too_long)?;
    if !fraction.is_empty() {
        let scale = 10u128
            .checked_pow(u32::try_from(fraction.len()).map_err(|_| too_long())?)
            .ok_or_else(too_long)?;
        let frac: u128 = fraction.parse().map_err(|_| too_long())?;
        let scaled = frac.checked_mul(nanos_per_unit).ok_or_else(too_long)?;
        if scaled % scale != 0 {
            return Err(format!("{text:?} is finer than a nanosecond"));
        }
        nanos = nanos.checked_add(scaled / scale).ok_or_else(too_long)?;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    let sub = u32::try_from(nanos % 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(secs, sub))
}

/// Formats a duration the way the configuration writes it (`1s`, `100ms`, `1.5s`).
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        "0s".to_owned()
    } else if nanos % 1_000_000_000 == 0 {
        format!("{}s", nanos / 1_000_000_000)
    } else if nanos >= 1_000_000_000 && nanos % 1_000_000 == 0 {
        let ms = nanos / 1_000_000;
        let frac = format!("{:03}", ms % 1000);
        format!("{}.{}s", ms / 1000, frac.trim_end_matches('0'))
    } else if nanos % 1_000_000 == 0 {
        format!("{}ms", nanos / 1_000_000)
    } else {
        format!("{d:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn milliseconds() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
    }

    #[test]
    fn decimal_seconds_are_exact() {
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("40.95s"), Ok(Duration::from_millis(40_950)));
    }

    #[test]
    fn minutes_and_hours() {
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn zero_is_a_duration() {
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn bare_number_is_refused_with_the_accepted_form() {
        assert_eq!(
            parse_duration("1"),
            Err("\"1\" has no unit; write a number and a unit, e.g. \"1s\", \"100ms\", \"1.5s\", \"2m\"".to_owned())
        );
    }

    #[test]
    fn unknown_unit_is_refused() {
        assert_eq!(
            parse_duration("3 sec"),
            Err("\"3 sec\" has unit \" sec\"; the units are ms, s, m and h; write a number and a unit, e.g. \"1s\", \"100ms\", \"1.5s\", \"2m\"".to_owned())
        );
    }

    #[test]
    fn malformed_numbers_are_refused() {
        assert!(parse_duration(".5s").is_err());
        assert!(parse_duration("1.s").is_err());
        assert!(parse_duration("1.2.3s").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn sub_nanosecond_is_refused() {
        assert_eq!(
            parse_duration("0.0000000001s"),
            Err("\"0.0000000001s\" is finer than a nanosecond".to_owned())
        );
    }

    #[test]
    fn overflow_is_refused_not_wrapped() {
        assert_eq!(
            parse_duration("99999999999999999999999999999h"),
            Err("\"99999999999999999999999999999h\" is too long for a duration".to_owned())
        );
    }

    #[test]
    fn formatting_round_trips_config_values() {
        for text in ["0s", "1s", "100ms", "1.5s", "40.95s", "60s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
        }
    }
}
