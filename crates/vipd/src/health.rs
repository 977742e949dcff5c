//! Native health checks with keepalived's `vrrp_script` / `track_script` semantics.
//!
//! keepalived runs a shell script per check and feeds its exit code into a rise/fall counter; a
//! check's *status* then adds its weight to (or removes it from) each tracking instance's priority.
//! vipd keeps those semantics but runs the probes itself (HTTP GET, TCP connect, file exists, exec),
//! so a node needs no curl, no shell and no container runtime to decide whether it deserves a VIP.
//!
//! - [`config`]: the `[[check]]` table ([`CheckConfig`]) and its validated form ([`CheckSpec`]).
//! - [`state`]: the pure rise/fall state machine ([`CheckState`]).
//! - [`hold_down`]: optional damping of the reported status ([`HoldDown`]).
//! - [`probe`]: HTTP(S) GET, TCP connect, file exists, exec ([`SystemProber`]).
//! - [`monitor`]: one task per check, a `watch` of [`HealthSnapshot`] ([`HealthMonitor`]).
//! - [`openshift`]: OpenShift's master checks and weights as presets.
//! - [`priority`]: the pure weight arithmetic ([`effective_priority`]).

pub mod config;
pub mod config_error;
pub mod hold_down;
mod http;
pub mod monitor;
pub mod openshift;
pub mod priority;
pub mod probe;
mod probe_error;
pub mod state;
mod tcp;

pub use config::{
    validate_checks, CheckConfig, CheckError, CheckSpec, HttpTarget, Probe, ProbeConfig,
    ProbeConfigError, Scheme, TcpTarget,
};
pub use hold_down::HoldDown;
pub use monitor::{CheckReport, HealthMonitor, HealthSnapshot};
pub use openshift::openshift_master_checks;
pub use priority::{effective_priority, Priority, OWNER_PRIORITY};
pub use probe::{ProbeError, Prober, SystemProber};
pub use state::{CheckState, Status, Transition};
