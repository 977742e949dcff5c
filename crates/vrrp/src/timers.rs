//! RFC 9568 section 6.1 timer arithmetic.
//!
//! CONTRACT: `skew_time(version, priority, master_adver_interval) -> Duration`,
//! `master_down_interval(version, priority, master_adver_interval) -> Duration`, exact to the
//! nanosecond (no truncation to seconds or centiseconds), plus `interval_from_cs(u16) -> Duration`.
