//! Cluster DNS for vipd: serves the internal cluster zone (`api`, `api-int`, `*.apps`, node
//! names) from an immutable snapshot and forwards everything else transparently.
//!
//! - [`zone`]: the cluster zone model and its atomically swapped snapshot.
//! - [`answer`]: local answers, built straight on the wire (the hot path).
//! - [`forward`]: transparent forwarding to the upstream resolvers, with a small cache.
//! - [`server`]: UDP/TCP listeners tying the two together.
//!
//! Records served, answer semantics and the server design: docs/dns.md.

pub mod answer;
pub mod forward;
pub mod protocol;
pub mod server;
pub mod zone;
