//! VRRP advertisement codec.
//!
//! CONTRACT (owned by the codec work; the state machine and daemon rely on these names):
//! - [`Advertisement`] is the plain representation (`Repr` in smoltcp terms).
//! - `VrrpPacket<T: AsRef<[u8]>>` is the checked zero-copy view with `new_checked`.
//! - `Advertisement::parse(bytes, src, dst) -> Result<(Advertisement, ChecksumForm), ParseError>`
//!   validates everything (length, version, type, count, interval, checksum, auth) and reports which
//!   checksum form matched.
//! - `Advertisement::emit(&self, buf, src, dst, form) -> Result<usize, EmitError>` writes the VRRP
//!   payload (no IP header) and returns its length; `buffer_len()` says how many bytes it needs.

use std::net::IpAddr;

/// IP protocol number of VRRP (RFC 9568 section 5.1.1.3).
pub const IP_PROTOCOL: u8 = 112;

/// Protocol version carried in the first nibble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4 only, interval in seconds, optional authentication.
    V2,
    /// RFC 9568 / 5798: IPv4 and IPv6, interval in centiseconds, no authentication.
    V3,
}

/// VRRPv2 authentication (RFC 3768 section 5.3.6). VRRPv3 has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Auth type 0; the 8 authentication bytes are sent as zero for v2.
    None,
    /// Auth type 1, "simple text password": exactly 8 bytes on the wire, the
    /// configured password truncated or zero-padded as keepalived does.
    Pass([u8; 8]),
}

/// Which checksum convention a VRRPv3-over-IPv4 advert uses (see reference/vrrp.md).
/// For IPv6 the pseudo-header is always used; for VRRPv2 it never is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumForm {
    /// RFC 9568: checksum over the VRRP message only (also the v2 rule).
    Plain,
    /// keepalived / FRR default for v3 over IPv4, and the only rule for IPv6:
    /// the IP pseudo-header is included.
    PseudoHeader,
}

/// One VRRP advertisement, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    pub version: Version,
    /// Virtual router id, 1..=255.
    pub vrid: u8,
    /// 0 = the Master is resigning, 255 = address owner.
    pub priority: u8,
    /// Advertisement interval in centiseconds. v3: the 12-bit Max Adver Int (1..=4095).
    /// v2: the 8-bit seconds field times 100 (so a v2 value is always a multiple of 100).
    pub interval_cs: u16,
    /// The virtual addresses, all of one family (IPv4 for v2).
    pub addresses: Vec<IpAddr>,
    /// v2 only; always [`Auth::None`] for v3.
    pub auth: Auth,
}

/// Why an advertisement was refused. Each variant names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("packet of {len} bytes is shorter than the {min}-byte minimum")]
    Truncated { len: usize, min: usize },
    #[error("VRRP version {0} is not supported (2 and 3 are)")]
    BadVersion(u8),
    #[error("VRRP type {0} is not an advertisement (type 1)")]
    BadType(u8),
}
