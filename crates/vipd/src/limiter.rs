//! Rate limits for log lines: a flood of bad packets must not become a flood of log lines.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Lets one log line per key through per period; the rest are counted, not printed.
#[derive(Debug)]
pub struct RateLimiter {
    period: Duration,
    last: HashMap<&'static str, Instant>,
}

impl RateLimiter {
    pub fn new(period: Duration) -> Self {
        RateLimiter {
            period,
            last: HashMap::new(),
        }
    }

    pub fn allow(&mut self, key: &'static str) -> bool {
        let now = Instant::now();
        match self.last.get(key) {
            Some(t) if now.saturating_duration_since(*t) < self.period => false,
            _ => {
                self.last.insert(key, now);
                true
            }
        }
    }
}
