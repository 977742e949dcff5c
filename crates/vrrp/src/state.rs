//! The states of a virtual router (RFC 9568 section 6.4), shared by the router and the sync
//! groups.

/// RFC 9568 states, plus keepalived's FAULT and vipd's make-before-break `Resigning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started (or stopped after shutdown).
    Initialize,
    Backup,
    /// "Active" in RFC 9568.
    Master,
    /// A tracked check with weight 0 failed: no VIPs, no adverts, ignores the election.
    Fault,
    /// Shutdown was requested while Master: a priority-0 advert went out and the VIPs are
    /// still held until another router's advert is seen or `resign_wait` expires.
    Resigning,
}
