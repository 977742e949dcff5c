//! vipd: the daemon and CLI around the VRRP core and the cluster DNS.
//!
//! - [`config`]: the TOML configuration, validated before anything is touched.
//! - [`cli`]: command-line entry points.
//! - [`net`]: raw VRRP sockets, netlink VIP management, GARP / unsolicited NA, interface detection.
//! - [`health`]: native health checks with keepalived's weight semantics.
//! - [`daemon`]: the tokio driver around `vipd_vrrp::Router` instances.
//! - [`bfd`]: BFD sessions (RFC 5880/5881) that report a lost Master to the instances.
//! - [`http`]: health, readiness and Prometheus metrics endpoints.
//! - [`import`]: translation of OpenShift's keepalived.conf and Corefile (`vipd import`).
//! - [`kube`]: peers and node records from the Kubernetes API (`[kubernetes]`).
//! - [`resolver`]: optional rewriting of the node's resolv.conf to use its own DNS first.

pub mod bfd;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod health;
pub mod http;
pub mod import;
pub mod kube;
pub mod limiter;
pub mod net;
pub mod resolver;
