//! BFD in the daemon: the sessions that tell a Backup within tens of milliseconds that its
//! Master is gone (RFC 5880 asynchronous mode over RFC 5881 single-hop UDP).
//!
//! The protocol is `vipd_bfd`'s sans-I/O [`vipd_bfd::Session`]; this module is its shell: UDP
//! sockets ([`socket`]), one task driving every session on one timer ([`service`]), and the
//! reports it hands to the VRRP instances that asked for the session:
//! [`vipd_vrrp::Liveness::Lost`] when a session that was Up goes Down, and
//! [`vipd_vrrp::Liveness::Heard`] at the first packet from that peer afterwards. What a Backup
//! does with them is the VRRP core's decision (`crates/vrrp/src/liveness.rs`).
//!
//! Sessions: one per (interface, local address, peer), shared by every instance that wants it
//! (the API and ingress instances of a node usually have the same peers). A unicast instance
//! with `[instance.bfd]` wants one to each of its `unicast_peers`; a multicast one, to the Master
//! it currently hears. A peer that sets its end AdminDown is not reported lost (RFC 5882
//! section 3.2: that is a decision, not a failure).

pub mod service;
pub mod socket;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub use service::{BfdHandle, BfdStatus, SessionReport};

/// Timers of one session: `[instance.bfd]`, or a `[[instance.bfd.peer]]` override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// bfd.DesiredMinTxInterval while Up (1 s while not Up, RFC 5880 section 6.8.3).
    pub min_tx: Duration,
    /// bfd.RequiredMinRxInterval.
    pub min_rx: Duration,
    /// bfd.DetectMult.
    pub multiplier: u8,
}

impl Timers {
    /// 50 ms x 3: a lost Master is noticed in 150 ms (`docs/configuration.md`).
    pub const DEFAULT: Timers = Timers {
        min_tx: Duration::from_millis(50),
        min_rx: Duration::from_millis(50),
        multiplier: 3,
    };
}

/// Where a session's reports go: called with the peer and the report; returns false when the
/// receiver is gone or full (the service logs it).
pub type Subscriber = Arc<dyn Fn(IpAddr, vipd_vrrp::Liveness) -> bool + Send + Sync>;

/// What one VRRP instance asks of BFD (computed by the daemon once the instance is placed).
#[derive(Clone)]
pub struct InstanceBfd {
    pub instance: String,
    pub ifindex: u32,
    pub ifname: String,
    /// The instance's source address: every session of it is sent from here.
    pub local: IpAddr,
    /// Unicast peers with their timers; empty for a multicast instance.
    pub peers: Vec<(IpAddr, Timers)>,
    /// Multicast: a session to whichever router the instance hears as Master, with these
    /// timers. `None` for a unicast instance.
    pub follow_master: Option<Timers>,
    pub reports: Subscriber,
}

impl std::fmt::Debug for InstanceBfd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceBfd")
            .field("instance", &self.instance)
            .field("ifname", &self.ifname)
            .field("local", &self.local)
            .field("peers", &self.peers)
            .field("follow_master", &self.follow_master)
            .finish_non_exhaustive()
    }
}
