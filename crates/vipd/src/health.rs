//! Native health checks with keepalived's `vrrp_script` / `track_script` semantics.
//!
//! keepalived runs a shell script per check and feeds its exit code into a rise/fall counter; a
//! check's *status* then adds its weight to (or removes it from) each tracking instance's priority.
//! vipd keeps those semantics but runs the probes itself (HTTP GET, TCP connect, file exists, exec),
//! so a node needs no curl, no shell and no container runtime to decide whether it deserves a VIP.
//!
//! - [`config`]: the `[[check]]` table ([`CheckConfig`]) and its validated form ([`CheckSpec`]).

pub mod config;

pub use config::{
    validate_checks, CheckConfig, CheckSpec, HttpTarget, Probe, ProbeConfig, Scheme, TcpTarget,
};
