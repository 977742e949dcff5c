//! The per-virtual-router state machine (RFC 9568 section 6), sans-I/O.
//!
//! CONTRACT (the daemon drives it exactly like this):
//! ```text
//! let mut r = Router::new(config, now);     // state Initialize, nothing queued
//! r.startup(now);                           // RFC 6.4.1
//! loop {
//!     // on a received, already-decoded advert for this VRID:
//!     r.handle_advert(now, Received { src, ttl, advert: &adv, checksum_form });
//!     // when now >= r.poll_timeout():
//!     r.handle_timeout(now);
//!     // health tracking changed the effective priority / fault state:
//!     r.set_priority(now, p);  r.set_fault(now, true|false);
//!     // after every input, drain:
//!     while let Some(a) = r.poll_action() { ... }
//! }
//! r.shutdown(now);   // make-before-break resign; keep driving until r.is_stopped()
//! ```

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::packet::{Advertisement, Auth, ChecksumForm, Version};

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

/// How the received TTL / hop limit is checked (RFC 9568 section 7.1 requires 255 for multicast).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlPolicy {
    /// Drop anything whose TTL/hop limit is not 255 (multicast; the RFC rule).
    Require255,
    /// Accept an inclusive range (unicast peers behind routers, as keepalived's min/max_ttl).
    Range { min: u8, max: u8 },
}

/// Static configuration of one virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    pub version: Version,
    pub vrid: u8,
    /// Configured (base) priority, 1..=255. 255 = address owner.
    pub priority: u8,
    /// Our advertisement interval.
    pub advert_interval: Duration,
    /// This router's primary address on the interface (v4: the interface's primary IPv4;
    /// v6: its link-local). Used for the tie-break on equal priority.
    pub primary_address: IpAddr,
    /// Virtual addresses, all one family, same family as `primary_address`.
    pub vips: Vec<IpAddr>,
    pub preempt: bool,
    /// v2 only.
    pub auth: Auth,
    /// Checksum form used when sending v3 over IPv4.
    pub send_checksum: ChecksumForm,
    pub ttl_policy: TtlPolicy,
    /// Make-before-break bound: how long a resigning Master keeps the VIPs waiting for
    /// another router's advert before removing them anyway.
    pub resign_wait: Duration,
    /// Announce (GARP / unsolicited NA) again this long after becoming Master. `None` = never.
    pub announce_repeat_after: Option<Duration>,
    /// Periodic re-announce while Master. `None` = never.
    pub announce_refresh: Option<Duration>,
}

/// A decoded advert plus what the socket layer learnt about it.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub src: IpAddr,
    /// IPv4 TTL or IPv6 hop limit as received.
    pub ttl: u8,
    pub advert: &'a Advertisement,
    /// Which checksum form verified (informational; counted).
    pub checksum_form: ChecksumForm,
}

/// What the driver must do. Drained with [`Router::poll_action`], in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this advertisement (to multicast or to every unicast peer).
    Send(Advertisement),
    /// Assign all VIPs to the interface.
    AddVips,
    /// Remove all VIPs from the interface.
    RemoveVips,
    /// Send gratuitous ARP / unsolicited NA for all VIPs (a burst; count is the driver's).
    Announce,
    /// Something worth logging / counting / showing in status.
    Event(Event),
}

/// Observable events (the driver logs them, rate-limited where noted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    StateChanged { from: State, to: State, reason: &'static str },
    /// An advert was dropped; `reason` is a stable snake_case label also used as a metric label.
    Dropped { from: IpAddr, reason: &'static str },
    /// Peer's address list differs from ours (RFC 9568 7.1: log, do not drop).
    AddressMismatch { from: IpAddr },
    /// Another router claims Master with a lower priority than ours while we are Master.
    LowerPriorityMaster { from: IpAddr, priority: u8 },
}

/// Per-instance counters in the spirit of RFC 8347 (ietf-vrrp statistics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub adverts_rx: u64,
    pub adverts_tx: u64,
    pub priority_zero_rx: u64,
    pub priority_zero_tx: u64,
    pub master_transitions: u64,
    pub transitions: u64,
    pub address_list_mismatch: u64,
    pub checksum_pseudo_header_rx: u64,
    pub checksum_plain_rx: u64,
    pub drop_ttl: u64,
    pub drop_version: u64,
    pub drop_vrid: u64,
    pub drop_auth: u64,
    pub drop_interval: u64,
    pub drop_family: u64,
}

/// What the router currently believes about the Master (for status output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MasterInfo {
    pub address: IpAddr,
    pub priority: u8,
    pub interval: Duration,
    pub last_seen: Instant,
}
