//! The daemon's network edge: everything that touches a socket or netlink.
//!
//! - [`socket`]: raw IP protocol 112 sockets carrying VRRP payloads (no codec here: bytes in, bytes
//!   out; the VRRP codec lives in `vipd_vrrp::packet`).
//! - [`netlink`]: adding, removing and watching VIPs with rtnetlink.
//! - [`announce`]: gratuitous ARP and unsolicited Neighbor Advertisements after a VIP moves.
//! - [`iface`]: interface and address discovery, and the pure `detect` that picks the interface
//!   whose subnet carries a VIP.
//! - [`nodeip`]: this node's cluster IP as OpenShift's node-ip configuration chooses it.
//! - [`timer`]: the BFD task's protocol deadline on a timerfd (fewer wake-ups than tokio's timer).
//! - [`poller`]: the VRRP thread's event loop (epoll) and the mailbox the daemon posts to.
//! - [`error`]: the error type shared by the netlink-backed functions.
//!
//! Everything here is thin on purpose: decisions (which interface, which packet is ours) are pure
//! functions with unit tests; the socket and netlink calls are exercised by the namespace tests in
//! `crates/vipd/tests/net_*.rs`.

pub mod announce;
pub mod error;
pub mod iface;
pub mod netlink;
pub mod nodeip;
pub mod placement;
pub mod poller;
pub mod socket;
pub mod timer;

pub use error::NetError;
