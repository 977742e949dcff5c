//! Sans-I/O BFD core for vipd: RFC 5880 Asynchronous mode over RFC 5881 single-hop UDP, IPv4
//! and IPv6.
//!
//! Nothing in this crate touches a socket, reads a clock or draws a random number: the caller
//! passes `now` into every input, supplies the transmit jitter through a [`JitterSource`], and
//! drains packets, events and the next deadline afterwards (the quinn-proto pattern, as in
//! `vipd-vrrp`). See `docs/bfd.md`.
//!
//! - [`packet`]: the Control packet codec ([`ControlPacket`] view, [`Repr`]), RFC 5881 ports
//!   and TTL.
//! - [`timers`]: the named timer table, jitter, transmit interval and detection time.
//! - [`session`]: the per-peer state machine ([`Session`]).
//!
//! CONTRACT (what the daemon relies on; details in [`session`]):
//! - One [`Session`] per peer. Feed it [`Session::handle_datagram`] (or
//!   [`Session::handle_packet`] with a parsed [`Repr`]), [`Session::handle_timeout`] when
//!   `now >= poll_timeout()`, and [`Session::set_admin_down`] / [`Session::set_desired_min_tx`]
//!   / [`Session::set_required_min_rx`]; after each call drain [`Session::poll_transmit`] and
//!   [`Session::poll_event`].
//! - Every packet from `poll_transmit` goes to the peer's UDP port [`packet::CONTROL_PORT`]
//!   from a source port in [`packet::SOURCE_PORT_MIN`]`..=`[`packet::SOURCE_PORT_MAX`] with
//!   TTL / hop limit [`packet::REQUIRED_TTL`]; the received TTL / hop limit must be passed in.
//! - A packet that is malformed or out of spec is counted under a stable
//!   [`drop_reason`] label and reported as [`Event::Dropped`]; it never changes any state or
//!   timer.
//! - [`Event::SessionUp`] / [`Event::SessionDown`] (with the [`Diagnostic`]) mark entering and
//!   leaving Up: "the session to the current Master went Down" is `SessionDown`.
//!
//! Authentication (RFC 5880 section 6.7), Demand mode on our side and the Echo function are
//! not implemented: packets with the A bit are dropped as [`drop_reason::AUTH_UNSUPPORTED`].

pub mod packet;
pub mod session;
pub mod timers;

pub use packet::{ControlPacket, Diagnostic, EmitError, ParseError, Repr, State};
pub use session::{
    drop_reason, ConfigError, Counters, Datagram, DropCounters, Event, Received, RemoteInfo,
    Session, SessionConfig,
};
pub use timers::{FixedJitter, JitterSource, Timer, TimerTable};
