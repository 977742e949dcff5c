//! Network-namespace labs for vipd: several nodes, keepalived peers, a client.
//!
//! - [`topology`]: [`Lab`], the namespaces, the switch, link cuts, loss and partitions.
//! - [`host`]: one namespace ([`Host`]) and the processes started in it ([`Proc`]).
//! - [`probe`]: the client-side outage prober.
//! - [`keepalived`]: keepalived configs rendered the way OpenShift renders them, and runners.
//! - [`vipd`]: vipd configs for lab nodes, and runners.
//!
//! Everything here needs root; every namespace is removed when the [`Lab`] is dropped, and
//! leftovers of killed runs are removed by the next [`Lab::new`].

pub mod cmd;
pub mod host;
pub mod probe;
pub mod topology;

pub use host::{Host, Proc};
pub use probe::{Outage, Prober};
pub use topology::{wait_until, IfAddr, Lab, CLIENT, IFACE};
