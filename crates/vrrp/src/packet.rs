//! VRRP advertisement codec.
//!
//! CONTRACT (owned by the codec work; the state machine and daemon rely on these names):
//! - [`Advertisement`] is the plain representation (`Repr` in smoltcp terms).
//! - [`VrrpPacket<T: AsRef<[u8]>>`] is the checked zero-copy view with `new_checked`.
//! - `Advertisement::parse(bytes, src, dst) -> Result<(Advertisement, ChecksumForm), ParseError>`
//!   validates everything (length, version, type, count, interval, checksum, auth) and reports which
//!   checksum form matched.
//! - `Advertisement::emit(&self, buf, src, dst, form) -> Result<usize, EmitError>` writes the VRRP
//!   payload (no IP header) and returns its length; `buffer_len()` says how many bytes it needs.
//!
//! Wire layout (RFC 9568 section 5.1 for v3, RFC 3768 section 5.1 for v2):
//! ```text
//!  0               1               2               3
//! +-------+-------+---------------+---------------+---------------+
//! |Version| Type  |     VRID      |   Priority    |     Count     |
//! +-------+-------+---------------+---------------+---------------+
//! v3: |Rsvd | Max Adver Int (12 bits, cs) |          Checksum             |
//! v2: |  Auth Type    |Adver Int (s)  |          Checksum             |
//! +---------------------------------------------------------------+
//! |        Count addresses (IPv4: 4 bytes each, IPv6: 16 bytes each)       |
//! +---------------------------------------------------------------+
//! v2 only: 8 bytes of authentication data
//! ```
//!
//! Message length policy: the socket layer hands over exactly the IP payload (IP total length
//! minus the header, so Ethernet padding is already gone). The message must then be exactly
//! `8 + count * address length` bytes (v3) or `8 + count * 4 + 8` bytes (v2); anything longer or
//! shorter is [`ParseError::LengthMismatch`]. RFC 9568 section 7.1 requires the receiver to verify
//! that the packet holds the complete message, and section 5.2.8 defines the checksum over "the
//! entire VRRP message", which stops being well defined once bytes the count does not explain
//! are appended; keepalived likewise drops adverts whose length disagrees with their count. The
//! exact-length rule also keeps CARP (same IP protocol, same first byte as a v2 advert, 36 bytes)
//! from being read as VRRP.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of VRRP (RFC 9568 section 5.1.1.3).
pub const IP_PROTOCOL: u8 = 112;

/// Named field offsets and sizes of the VRRP header.
pub mod field {
    /// Version (high nibble) and Type (low nibble).
    pub const VERSION_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    /// Count IPvX Addr (v3) / Count IP Addrs (v2).
    pub const COUNT: usize = 3;
    /// v3: 4 reserved bits + 12-bit Max Adver Int, big endian.
    pub const MAX_ADVER_INT: usize = 4;
    /// v2: Auth Type.
    pub const AUTH_TYPE: usize = 4;
    /// v2: Adver Int in seconds.
    pub const ADVER_INT: usize = 5;
    pub const CHECKSUM: usize = 6;
    /// First address byte.
    pub const ADDRESSES: usize = 8;
    /// Size of the fixed header that precedes the addresses.
    pub const HEADER_LEN: usize = 8;
    /// v2: size of the authentication data that follows the addresses.
    pub const AUTH_DATA_LEN: usize = 8;
}

/// Mask of the 12-bit Max Adver Int; the 4 high bits are reserved (RFC 9568 section 5.2.6:
/// "MUST be set to zero on transmission and ignored on reception").
const MAX_ADVER_INT_MASK: u16 = 0x0FFF;
/// The only VRRP message type (RFC 9568 section 5.2.2).
const TYPE_ADVERTISEMENT: u8 = 1;
/// v2 Auth Type values (RFC 3768 section 5.3.6; type 1 is "reserved" there but still the
/// simple-text password keepalived and OpenShift use).
const AUTH_TYPE_NONE: u8 = 0;
const AUTH_TYPE_PASS: u8 = 1;
/// Largest v3 interval: the 12-bit field, in centiseconds (40.95 s).
pub const MAX_V3_INTERVAL_CS: u16 = 4095;
/// Largest v2 interval: the 8-bit seconds field.
pub const MAX_V2_INTERVAL_SECS: u8 = 255;

/// Protocol version carried in the first nibble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4 only, interval in seconds, optional authentication.
    V2,
    /// RFC 9568 / 5798: IPv4 and IPv6, interval in centiseconds, no authentication.
    V3,
}

impl Version {
    /// The value of the Version nibble.
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// The version for a Version nibble, if supported.
    pub fn from_number(n: u8) -> Option<Version> {
        match n {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VRRPv{}", self.number())
    }
}

/// IP address family: of an instance's VIPs and adverts, of a socket (the one definition the
/// workspace uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    Ipv4,
    Ipv6,
}

impl AddressFamily {
    /// The family of `addr`.
    pub fn of(addr: IpAddr) -> AddressFamily {
        match addr {
            IpAddr::V4(_) => AddressFamily::Ipv4,
            IpAddr::V6(_) => AddressFamily::Ipv6,
        }
    }

    /// Bytes per address in the message.
    pub fn address_len(self) -> usize {
        match self {
            AddressFamily::Ipv4 => 4,
            AddressFamily::Ipv6 => 16,
        }
    }
}

impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressFamily::Ipv4 => "IPv4",
            AddressFamily::Ipv6 => "IPv6",
        })
    }
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

impl Auth {
    /// The on-wire form of a configured password, as keepalived builds it: the first 8 *bytes*
    /// of the UTF-8 string, zero-padded when shorter. OpenShift configures `<cluster>_api_vip`,
    /// of which only `<cluster>_a...` up to 8 bytes ever reaches the wire (openshift.md section
    /// 3), so `ostest_api_vip` and `ostest_a` are the same password.
    pub fn pass_from_password(password: &str) -> Auth {
        let mut data = [0u8; field::AUTH_DATA_LEN];
        let bytes = password.as_bytes();
        let n = bytes.len().min(data.len());
        data[..n].copy_from_slice(&bytes[..n]);
        Auth::Pass(data)
    }
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

impl ChecksumForm {
    /// The form actually used for a message of `version` over `family` when `requested` is
    /// configured: the choice only exists for v3 over IPv4 (RFC 9568 section 5.2.8 for IPv6,
    /// RFC 3768 section 5.3.8 for v2).
    pub fn effective(version: Version, family: AddressFamily, requested: ChecksumForm) -> Self {
        match (version, family) {
            (Version::V2, _) => ChecksumForm::Plain,
            (Version::V3, AddressFamily::Ipv6) => ChecksumForm::PseudoHeader,
            (Version::V3, AddressFamily::Ipv4) => requested,
        }
    }
}

impl fmt::Display for ChecksumForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChecksumForm::Plain => "plain (RFC 9568)",
            ChecksumForm::PseudoHeader => "with IP pseudo-header",
        })
    }
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
    #[error(
        "IP source {src} and destination {dst} are of different families; the socket layer \
         must pass the addresses of the packet's own IP header"
    )]
    FamilyMismatch { src: IpAddr, dst: IpAddr },
    #[error("VRRPv2 advert received over IPv6; VRRPv2 (RFC 3768) is IPv4-only, use VRRPv3")]
    V2OverIpv6,
    #[error(
        "{version} {family} packet is {len} bytes but its count field ({count} addresses) \
         requires exactly {expected}"
    )]
    LengthMismatch {
        version: Version,
        family: AddressFamily,
        len: usize,
        count: u8,
        expected: usize,
    },
    #[error(
        "checksum field is {found:#06x} but the message sums to {expected:#06x} ({form}){}",
        alternative_note(*.expected_pseudo_header)
    )]
    BadChecksum {
        found: u16,
        /// What the checksum field should hold in the form the RFC mandates for this version
        /// and family (`form`).
        expected: u16,
        form: ChecksumForm,
        /// v3 over IPv4 only: the value in the keepalived/FRR pseudo-header form, also accepted.
        expected_pseudo_header: Option<u16>,
    },
    #[error("count field is 0; an advertisement carries at least one address (RFC 9568 5.2.5)")]
    NoAddresses,
    #[error("VRID field is 0; virtual router ids are 1..=255 (RFC 9568 5.2.3)")]
    ZeroVrid,
    #[error(
        "{version} advertisement interval field is 0; it must be at least 1 (v3: centiseconds, \
         v2: seconds)"
    )]
    ZeroInterval { version: Version },
    #[error(
        "VRRPv2 auth type {0} is not supported (0 = none and 1 = simple password are; \
         IP Authentication Header, type 2, is not)"
    )]
    UnknownAuthType(u8),
}

fn alternative_note(pseudo: Option<u16>) -> String {
    match pseudo {
        Some(v) => format!(" or {v:#06x} (with IP pseudo-header, keepalived/FRR form)"),
        None => String::new(),
    }
}

/// Why an advertisement could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    #[error("buffer of {available} bytes is too small for the {needed}-byte advertisement")]
    BufferTooSmall { needed: usize, available: usize },
    #[error("IP source {src} and destination {dst} are of different families")]
    FamilyMismatch { src: IpAddr, dst: IpAddr },
    #[error(
        "virtual address {address} is not {expected} like the source address; one advertisement \
         carries one family"
    )]
    AddressFamily {
        address: IpAddr,
        expected: AddressFamily,
    },
    #[error("VRRPv2 cannot be sent over IPv6 (RFC 3768 is IPv4-only); use VRRPv3")]
    V2OverIpv6,
    #[error(
        "VRRPv2 interval of {interval_cs} cs is not a whole number of seconds in 1..=255 \
         (the v2 Adver Int field counts seconds)"
    )]
    V2Interval { interval_cs: u16 },
    #[error("VRRPv3 interval of {interval_cs} cs is outside the Max Adver Int range 1..=4095 cs")]
    V3Interval { interval_cs: u16 },
    #[error("{count} virtual addresses do not fit the 8-bit count field (at most 255)")]
    TooManyAddresses { count: usize },
    #[error("an advertisement needs at least one virtual address (RFC 9568 5.2.5)")]
    NoAddresses,
    #[error("VRID 0 is not a valid virtual router id (1..=255)")]
    ZeroVrid,
    #[error("VRRPv3 has no authentication (RFC 9568 removed it); configure auth only with v2")]
    AuthInV3,
}

/// Zero-copy view of a VRRP message (`Packet` in smoltcp terms).
///
/// [`VrrpPacket::new_checked`] validates every length once; after that every accessor is
/// infallible and cannot index out of bounds. [`VrrpPacket::new_unchecked`] skips the checks:
/// its accessors panic on a buffer that `new_checked` would refuse, so use it only on buffers
/// this code sized itself.
#[derive(Debug, Clone)]
pub struct VrrpPacket<T: AsRef<[u8]>> {
    buffer: T,
    family: AddressFamily,
}

impl<T: AsRef<[u8]>> VrrpPacket<T> {
    /// Wraps `buffer` without any check.
    pub fn new_unchecked(buffer: T, family: AddressFamily) -> Self {
        VrrpPacket { buffer, family }
    }

    /// Wraps `buffer` after checking that it is a complete message of a known version whose
    /// length is exactly what its count field implies (see the module's length policy).
    pub fn new_checked(buffer: T, family: AddressFamily) -> Result<Self, ParseError> {
        let packet = Self::new_unchecked(buffer, family);
        packet.check_len()?;
        Ok(packet)
    }

    /// The length checks of [`VrrpPacket::new_checked`].
    pub fn check_len(&self) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        if len < field::HEADER_LEN {
            return Err(ParseError::Truncated {
                len,
                min: field::HEADER_LEN,
            });
        }
        let version =
            Version::from_number(self.version()).ok_or(ParseError::BadVersion(self.version()))?;
        if version == Version::V2 && self.family == AddressFamily::Ipv6 {
            return Err(ParseError::V2OverIpv6);
        }
        let expected = message_len(version, self.family, usize::from(self.count()));
        if len != expected {
            return Err(ParseError::LengthMismatch {
                version,
                family: self.family,
                len,
                count: self.count(),
                expected,
            });
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The family the addresses are read as.
    pub fn family(&self) -> AddressFamily {
        self.family
    }

    /// The Version nibble.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION_TYPE] >> 4
    }

    /// The Type nibble (1 = advertisement).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION_TYPE] & 0x0F
    }

    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    /// Number of addresses.
    pub fn count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// v3: Max Adver Int in centiseconds, the 4 reserved bits masked off.
    pub fn max_adver_int(&self) -> u16 {
        self.read_u16(field::MAX_ADVER_INT) & MAX_ADVER_INT_MASK
    }

    /// v2: Auth Type.
    pub fn auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_TYPE]
    }

    /// v2: Adver Int in seconds.
    pub fn adver_int_secs(&self) -> u8 {
        self.buffer.as_ref()[field::ADVER_INT]
    }

    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The address bytes (`count` addresses of the view's family).
    pub fn address_bytes(&self) -> &[u8] {
        let end = field::ADDRESSES + self.addresses_len();
        &self.buffer.as_ref()[field::ADDRESSES..end]
    }

    /// The `index`th address.
    pub fn address(&self, index: usize) -> IpAddr {
        let n = self.family.address_len();
        address_from_bytes(
            self.family,
            &self.address_bytes()[index * n..(index + 1) * n],
        )
    }

    /// v2: the 8 authentication data bytes after the addresses.
    pub fn auth_data(&self) -> [u8; field::AUTH_DATA_LEN] {
        let start = field::ADDRESSES + self.addresses_len();
        let mut data = [0u8; field::AUTH_DATA_LEN];
        data.copy_from_slice(&self.buffer.as_ref()[start..start + field::AUTH_DATA_LEN]);
        data
    }

    /// Whether the checksum field is right for `form` given the IP addresses. This is the
    /// receive-side rule of RFC 1071 (section 1 (4)): the one's-complement sum over the
    /// pseudo-header (if any) and the whole message *including* the checksum field must be
    /// all ones. It deliberately shares no code with [`VrrpPacket::compute_checksum`], which
    /// sums with the field left out, so a bug in one shows up against the other.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr, form: ChecksumForm) -> bool {
        let data = self.buffer.as_ref();
        let mut sum = match form {
            ChecksumForm::Plain => 0,
            ChecksumForm::PseudoHeader => pseudo_header_sum(src, dst, data.len()),
        };
        sum = add_words(sum, data);
        fold(sum) == 0xFFFF
    }

    /// The value the checksum field should hold for `form`, computed with the field itself
    /// treated as zero (RFC 9568 section 5.2.8).
    pub fn compute_checksum(&self, src: IpAddr, dst: IpAddr, form: ChecksumForm) -> u16 {
        let data = self.buffer.as_ref();
        let mut sum = match form {
            ChecksumForm::Plain => 0,
            ChecksumForm::PseudoHeader => pseudo_header_sum(src, dst, data.len()),
        };
        sum = add_words(sum, &data[..field::CHECKSUM]);
        sum = add_words(sum, &data[field::CHECKSUM + 2..]);
        !fold(sum)
    }

    fn addresses_len(&self) -> usize {
        usize::from(self.count()) * self.family.address_len()
    }

    fn read_u16(&self, at: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[at], b[at + 1]])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VrrpPacket<T> {
    /// Writes Version and Type.
    pub fn set_version_type(&mut self, version: u8, msg_type: u8) {
        self.buffer.as_mut()[field::VERSION_TYPE] = (version << 4) | (msg_type & 0x0F);
    }

    pub fn set_vrid(&mut self, vrid: u8) {
        self.buffer.as_mut()[field::VRID] = vrid;
    }

    pub fn set_priority(&mut self, priority: u8) {
        self.buffer.as_mut()[field::PRIORITY] = priority;
    }

    pub fn set_count(&mut self, count: u8) {
        self.buffer.as_mut()[field::COUNT] = count;
    }

    /// v3: writes the 12-bit Max Adver Int with the reserved bits zero (RFC 9568 5.2.6).
    pub fn set_max_adver_int(&mut self, cs: u16) {
        self.write_u16(field::MAX_ADVER_INT, cs & MAX_ADVER_INT_MASK);
    }

    /// v2: writes Auth Type.
    pub fn set_auth_type(&mut self, auth_type: u8) {
        self.buffer.as_mut()[field::AUTH_TYPE] = auth_type;
    }

    /// v2: writes Adver Int in seconds.
    pub fn set_adver_int_secs(&mut self, secs: u8) {
        self.buffer.as_mut()[field::ADVER_INT] = secs;
    }

    pub fn set_checksum(&mut self, checksum: u16) {
        self.write_u16(field::CHECKSUM, checksum);
    }

    /// Mutable address bytes (sized by the count field, so set the count first).
    pub fn address_bytes_mut(&mut self) -> &mut [u8] {
        let end = field::ADDRESSES + self.addresses_len();
        &mut self.buffer.as_mut()[field::ADDRESSES..end]
    }

    /// v2: writes the 8 authentication data bytes (after the addresses; set the count first).
    pub fn set_auth_data(&mut self, data: &[u8; field::AUTH_DATA_LEN]) {
        let start = field::ADDRESSES + self.addresses_len();
        self.buffer.as_mut()[start..start + field::AUTH_DATA_LEN].copy_from_slice(data);
    }

    /// Computes and writes the checksum for `form`.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr, form: ChecksumForm) {
        let checksum = self.compute_checksum(src, dst, form);
        self.set_checksum(checksum);
    }

    fn write_u16(&mut self, at: usize, value: u16) {
        self.buffer.as_mut()[at..at + 2].copy_from_slice(&value.to_be_bytes());
    }
}

impl Advertisement {
    /// Decodes and validates the VRRP payload `bytes` (IP header already stripped) received
    /// from `src` to `dst`. The address family of the message is that of `src`.
    ///
    /// Checks, in order: family of `src`/`dst`, lengths ([`VrrpPacket::check_len`]), type,
    /// checksum, then the field values (count, VRID, interval, auth type), so a corrupted
    /// packet is reported as a checksum error rather than as whatever field the corruption hit.
    ///
    /// Checksum forms accepted: v2 plain only; v3 over IPv6 pseudo-header only; v3 over IPv4
    /// both the RFC 9568 plain form and the keepalived/FRR pseudo-header form, plain tried
    /// first. The returned [`ChecksumForm`] says which one verified.
    ///
    /// The password of a v2 advert is returned as received ([`Auth::Pass`]); comparing it with
    /// the configured one is the router's job.
    pub fn parse(
        bytes: &[u8],
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<(Advertisement, ChecksumForm), ParseError> {
        let mut advert = Advertisement {
            version: Version::V3,
            vrid: 0,
            priority: 0,
            interval_cs: 0,
            addresses: Vec::new(),
            auth: Auth::None,
        };
        let form = advert.parse_into(bytes, src, dst)?;
        Ok((advert, form))
    }

    /// [`Advertisement::parse`] into `self`, reusing its address list's allocation: a receive
    /// loop keeps one `Advertisement` and decodes every packet into it without allocating.
    /// On error `self` is left exactly as it was.
    pub fn parse_into(
        &mut self,
        bytes: &[u8],
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<ChecksumForm, ParseError> {
        let family = AddressFamily::of(src);
        if AddressFamily::of(dst) != family {
            return Err(ParseError::FamilyMismatch { src, dst });
        }
        let packet = VrrpPacket::new_checked(bytes, family)?;
        // check_len accepted the version nibble.
        let version = match Version::from_number(packet.version()) {
            Some(v) => v,
            None => return Err(ParseError::BadVersion(packet.version())),
        };
        if packet.msg_type() != TYPE_ADVERTISEMENT {
            return Err(ParseError::BadType(packet.msg_type()));
        }
        let form = verified_form(&packet, version, src, dst)?;

        if packet.count() == 0 {
            return Err(ParseError::NoAddresses);
        }
        if packet.vrid() == 0 {
            return Err(ParseError::ZeroVrid);
        }
        let (interval_cs, auth) = match version {
            Version::V3 => (packet.max_adver_int(), Auth::None),
            Version::V2 => {
                let auth = match packet.auth_type() {
                    AUTH_TYPE_NONE => Auth::None,
                    AUTH_TYPE_PASS => Auth::Pass(packet.auth_data()),
                    other => return Err(ParseError::UnknownAuthType(other)),
                };
                (u16::from(packet.adver_int_secs()) * 100, auth)
            }
        };
        if interval_cs == 0 {
            return Err(ParseError::ZeroInterval { version });
        }
        self.version = version;
        self.vrid = packet.vrid();
        self.priority = packet.priority();
        self.interval_cs = interval_cs;
        self.auth = auth;
        self.addresses.clear();
        // new_checked verified that `count` addresses fit. A plain loop: Vec::extend's
        // machinery cost more than building the addresses.
        for bytes in packet.address_bytes().chunks_exact(family.address_len()) {
            self.addresses.push(address_from_bytes(family, bytes));
        }
        Ok(form)
    }

    /// Bytes needed to emit this advertisement with addresses of `family`.
    pub fn buffer_len(&self, family: AddressFamily) -> usize {
        message_len(self.version, family, self.addresses.len())
    }

    /// Writes the VRRP payload (no IP header) into the front of `buf` and returns its length.
    ///
    /// `form` only matters for v3 over IPv4 (see [`ChecksumForm::effective`]). For v2 the
    /// interval must be whole seconds and [`Auth::None`] is sent as type 0 with 8 zero bytes.
    /// Every field is validated first, so nothing is written on error.
    pub fn emit(
        &self,
        buf: &mut [u8],
        src: IpAddr,
        dst: IpAddr,
        form: ChecksumForm,
    ) -> Result<usize, EmitError> {
        let family = AddressFamily::of(src);
        if AddressFamily::of(dst) != family {
            return Err(EmitError::FamilyMismatch { src, dst });
        }
        let count = self.validate_for_emit(family)?;
        let len = self.buffer_len(family);
        let available = buf.len();
        let Some(out) = buf.get_mut(..len) else {
            return Err(EmitError::BufferTooSmall {
                needed: len,
                available,
            });
        };

        let mut packet = VrrpPacket::new_unchecked(out, family);
        packet.set_version_type(self.version.number(), TYPE_ADVERTISEMENT);
        packet.set_vrid(self.vrid);
        packet.set_priority(self.priority);
        packet.set_count(count);
        match self.version {
            Version::V3 => packet.set_max_adver_int(self.interval_cs),
            Version::V2 => {
                // validate_for_emit proved interval_cs is a multiple of 100 up to 25500.
                let secs = u8::try_from(self.interval_cs / 100).unwrap_or(MAX_V2_INTERVAL_SECS);
                packet.set_adver_int_secs(secs);
                let (auth_type, data) = match self.auth {
                    Auth::None => (AUTH_TYPE_NONE, [0u8; field::AUTH_DATA_LEN]),
                    Auth::Pass(data) => (AUTH_TYPE_PASS, data),
                };
                packet.set_auth_type(auth_type);
                packet.set_auth_data(&data);
            }
        }
        packet.set_checksum(0);
        let address_len = family.address_len();
        for (slot, address) in packet
            .address_bytes_mut()
            .chunks_exact_mut(address_len)
            .zip(&self.addresses)
        {
            match address {
                IpAddr::V4(a) => slot.copy_from_slice(&a.octets()),
                IpAddr::V6(a) => slot.copy_from_slice(&a.octets()),
            }
        }
        packet.fill_checksum(
            src,
            dst,
            ChecksumForm::effective(self.version, family, form),
        );
        Ok(len)
    }

    /// Everything [`Advertisement::parse`] would refuse, checked before writing. Returns the
    /// count field value.
    fn validate_for_emit(&self, family: AddressFamily) -> Result<u8, EmitError> {
        if self.vrid == 0 {
            return Err(EmitError::ZeroVrid);
        }
        if self.addresses.is_empty() {
            return Err(EmitError::NoAddresses);
        }
        let count =
            u8::try_from(self.addresses.len()).map_err(|_| EmitError::TooManyAddresses {
                count: self.addresses.len(),
            })?;
        if let Some(&address) = self
            .addresses
            .iter()
            .find(|a| AddressFamily::of(**a) != family)
        {
            return Err(EmitError::AddressFamily {
                address,
                expected: family,
            });
        }
        match self.version {
            Version::V3 => {
                if self.interval_cs == 0 || self.interval_cs > MAX_V3_INTERVAL_CS {
                    return Err(EmitError::V3Interval {
                        interval_cs: self.interval_cs,
                    });
                }
                if self.auth != Auth::None {
                    return Err(EmitError::AuthInV3);
                }
            }
            Version::V2 => {
                if family == AddressFamily::Ipv6 {
                    return Err(EmitError::V2OverIpv6);
                }
                let max_cs = u16::from(MAX_V2_INTERVAL_SECS) * 100;
                if self.interval_cs == 0 || self.interval_cs % 100 != 0 || self.interval_cs > max_cs
                {
                    return Err(EmitError::V2Interval {
                        interval_cs: self.interval_cs,
                    });
                }
            }
        }
        Ok(count)
    }
}

/// Exact message length for `count` addresses.
fn message_len(version: Version, family: AddressFamily, count: usize) -> usize {
    let addresses = count * family.address_len();
    match version {
        Version::V3 => field::HEADER_LEN + addresses,
        Version::V2 => field::HEADER_LEN + addresses + field::AUTH_DATA_LEN,
    }
}

/// Tries the checksum forms valid for `version` over the packet's family.
fn verified_form(
    packet: &VrrpPacket<&[u8]>,
    version: Version,
    src: IpAddr,
    dst: IpAddr,
) -> Result<ChecksumForm, ParseError> {
    let candidates: &[ChecksumForm] = match (version, packet.family()) {
        (Version::V2, _) => &[ChecksumForm::Plain],
        (Version::V3, AddressFamily::Ipv6) => &[ChecksumForm::PseudoHeader],
        // The RFC's form first: it is what vipd, keepalived and FRR send by default, so most
        // adverts are verified with one pass over the bytes.
        (Version::V3, AddressFamily::Ipv4) => &[ChecksumForm::PseudoHeader, ChecksumForm::Plain],
    };
    if let Some(&form) = candidates
        .iter()
        .find(|&&form| packet.verify_checksum(src, dst, form))
    {
        return Ok(form);
    }
    // Reported as before the order changed: the plain sum, and the pseudo-header one beside
    // it where both were tried.
    let form = if candidates.len() > 1 {
        ChecksumForm::Plain
    } else {
        candidates[0]
    };
    Err(ParseError::BadChecksum {
        found: packet.checksum(),
        expected: packet.compute_checksum(src, dst, form),
        form,
        expected_pseudo_header: (candidates.len() > 1)
            .then(|| packet.compute_checksum(src, dst, ChecksumForm::PseudoHeader)),
    })
}

fn address_from_bytes(family: AddressFamily, bytes: &[u8]) -> IpAddr {
    match family {
        AddressFamily::Ipv4 => {
            let mut octets = [0u8; 4];
            octets.copy_from_slice(bytes);
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        AddressFamily::Ipv6 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(bytes);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
    }
}

/// One's-complement partial sum of the pseudo-header.
///
/// IPv4 (RFC 768 layout): src, dst, a zero byte, the protocol, the 16-bit length. IPv6 (RFC 8200
/// section 8.1): src, dst, the 32-bit upper-layer length, three zero bytes, the next header.
/// Summed as 16-bit words both come to `addresses + protocol + high and low halves of the
/// length`; for IPv4 the high half is zero because a VRRP message is under 2^16 bytes. (FRR
/// swapped the bytes of the IPv6 length for seven years; the external IPv6 vector in the tests
/// guards against the same slip here.)
fn pseudo_header_sum(src: IpAddr, dst: IpAddr, len: usize) -> u32 {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    let sum = add_address(add_address(0, src), dst);
    sum + u32::from(IP_PROTOCOL) + (len >> 16) + (len & 0xFFFF)
}

fn add_address(sum: u32, addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => add_words(sum, &a.octets()),
        IpAddr::V6(a) => add_words(sum, &a.octets()),
    }
}

/// Adds `data` as big-endian 16-bit words to `sum`, an odd last byte padded with zero
/// (RFC 1071). `sum` stays far from overflow: a VRRP message has at most 2k words.
fn add_words(sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    let mut sum = chunks.by_ref().fold(sum, |acc, w| {
        acc + u32::from(u16::from_be_bytes([w[0], w[1]]))
    });
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// Folds the carries of a 32-bit partial sum into 16 bits.
fn fold(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    // The loop leaves sum <= 0xFFFF.
    sum as u16
}
