//! Errors of the netlink-backed network functions, each naming the interface, address or
//! operation at fault.

use std::io;
use std::net::IpAddr;

use crate::net::iface::DetectError;

/// An error from the network edge. Messages are meant for an operator: they name the
/// interface, the address and what was being attempted.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A netlink request failed (the kernel refused it or the socket broke).
    #[error("netlink: {op} failed: {source}")]
    Netlink {
        /// What was attempted, e.g. "adding VIP 192.0.2.5/32 to eth0 (index 3)".
        op: String,
        #[source]
        source: rtnetlink::Error,
    },
    /// An I/O error outside netlink requests (opening the netlink socket, reading interfaces).
    #[error("{op}: {source}")]
    Io {
        /// What was attempted.
        op: String,
        #[source]
        source: io::Error,
    },
    /// No interface has this name.
    #[error("interface {name} does not exist (seen: {})", seen.join(", "))]
    NoSuchInterface {
        /// The name that was asked for.
        name: String,
        /// The interface names that do exist, in kernel order.
        seen: Vec<String>,
    },
    /// No interface has this index.
    #[error("interface index {ifindex} does not exist (seen: {})", seen.join(", "))]
    NoSuchIndex {
        /// The index that was asked for.
        ifindex: u32,
        /// The interfaces that do exist, as "name (index N)".
        seen: Vec<String>,
    },
    /// A VIP address that cannot be managed as a VIP (multicast, unspecified, loopback).
    #[error("{vip} cannot be used as a VIP: {reason}")]
    BadVip {
        /// The address at fault.
        vip: IpAddr,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Interface detection found no usable subnet or a reserved address.
    #[error(transparent)]
    Detect(#[from] DetectError),
}

impl NetError {
    pub(crate) fn netlink(op: impl Into<String>, source: rtnetlink::Error) -> Self {
        NetError::Netlink {
            op: op.into(),
            source,
        }
    }

    pub(crate) fn io(op: impl Into<String>, source: io::Error) -> Self {
        NetError::Io {
            op: op.into(),
            source,
        }
    }

    /// The errno the kernel answered with, when this is a netlink NACK.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Netlink {
                source: rtnetlink::Error::NetlinkError(msg),
                ..
            } => Some(msg.raw_code().abs()),
            _ => None,
        }
    }
}
