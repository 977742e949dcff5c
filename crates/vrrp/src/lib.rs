//! Sans-I/O VRRP protocol core for vipd.
//!
//! Nothing in this crate touches a socket or reads a clock: the caller passes
//! `now` into every input and drains actions and the next deadline afterwards
//! (the quinn-proto pattern). See `docs/architecture.md`.
//!
//! - [`packet`]: VRRPv3 (RFC 9568) and VRRPv2 (RFC 3768) codec and checksums.
//! - [`timers`]: Skew_Time / Master_Down_Interval arithmetic.
//! - [`router`]: the per-virtual-router state machine ([`Router`]).
//! - [`handoff`]: when an OpenShift bootstrap gives the API VIP to the masters.
//! - [`liveness`]: fast failure detection (BFD) as an input: [`Liveness`] reports bring the
//!   Master_Down_Timer forward.
//! - [`sync_group`]: virtual routers that move together (keepalived's `vrrp_sync_group`).
//! - [`vrid`]: OpenShift's fletcher8 virtual router id derivation.
//! - `sim` (cargo feature `sim`, on in this crate's own tests): a deterministic LAN simulator.

pub mod handoff;
pub mod liveness;
pub mod packet;
pub mod reassert;
pub mod router;
#[cfg(feature = "sim")]
pub mod sim;
pub mod state;
pub mod sync_group;
pub mod timer_table;
pub mod timers;
pub mod vrid;

pub use liveness::Liveness;
pub use packet::{AddressFamily, Advertisement, Auth, ChecksumForm, ParseError, Version};
pub use router::{
    Action, Counters, Event, MasterInfo, Received, Router, RouterConfig, SourceFilter, State,
    TtlPolicy,
};
pub use timer_table::{Timer, TimerTable};
