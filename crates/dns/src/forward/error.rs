//! How one exchange with an upstream fails, over UDP or TCP, and whether that says it is down.

use std::io;
use std::time::Duration;

use super::wire::WireError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("network error: {0}")]
    Network(#[from] io::Error),
    #[error("answer is malformed: {0}")]
    Malformed(#[from] WireError),
    #[error("answer over TCP does not match the query's ID and question")]
    Mismatch,
    #[error("no free query ID on the socket (too many queries in flight)")]
    IdsExhausted,
    #[error("all {0} TCP connections to the upstream stayed busy for the whole attempt")]
    Busy(usize),
}

impl ExchangeError {
    /// Timeouts and network errors say the upstream is unreachable; a malformed or mismatched
    /// answer says nothing certain about it, and busy connections say it is alive.
    pub(crate) fn marks_down(&self) -> bool {
        matches!(self, ExchangeError::Timeout(_) | ExchangeError::Network(_))
    }
}
