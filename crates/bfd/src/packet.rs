//! BFD Control packet codec (RFC 5880 section 4.1), carried in UDP per RFC 5881.
//!
//! CONTRACT (the session and the daemon rely on these names):
//! - [`ControlPacket<T: AsRef<[u8]>>`] is the zero-copy view. [`ControlPacket::new_checked`]
//!   makes sure the buffer holds the 24-byte mandatory section; after that no accessor can fail
//!   or index out of bounds. It checks *lengths only*, as smoltcp's views do.
//! - [`Repr`] is the plain representation. [`Repr::parse`] runs the RFC 5880 section 6.8.6
//!   checks that need nothing but the packet, in the RFC's order, and names the field at fault
//!   in a typed [`ParseError`] whose [`ParseError::drop_reason`] is the stable counter label.
//!   [`Repr::emit`] writes exactly [`Repr::buffer_len`] bytes, never panics, and refuses (with
//!   nothing written) a packet that `parse` would refuse, so `parse(emit(x)) == x`.
//!
//! Wire layout (RFC 5880 section 4.1), all integers big endian:
//! ```text
//!  0                   1                   2                   3
//! +-----+---------+---+-+-+-+-+-+-+---------------+---------------+
//! | Vers|  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! +-----+---------+---+-+-+-+-+-+-+---------------+---------------+
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                  Desired Min TX Interval (us)                 |
//! |                 Required Min RX Interval (us)                 |
//! |               Required Min Echo RX Interval (us)              |
//! +---------------------------------------------------------------+
//! | Auth Type | Auth Len | auth data ...   (only when A is set)   |
//! ```
//!
//! Authentication (RFC 5880 section 6.7) is not implemented. `parse` accepts a well-formed
//! packet with the A bit and reports its Auth Type in [`Repr::auth`], so the session can drop
//! and count it (`auth_unsupported`); `emit` refuses to write one.
//!
//! Length policy: the Length field must be at least 24 (26 with the A bit) and at most the UDP
//! payload handed to `parse` (RFC 5880 section 6.8.6). Bytes of the payload beyond Length are
//! ignored, and without the A bit so are bytes between offset 24 and Length: the RFC lists no
//! other length rule, and an unknown trailer must not make a live session flap.

use std::fmt;

/// The only protocol version (RFC 5880 section 4.1).
pub const VERSION: u8 = 1;

/// UDP destination port of single-hop BFD Control packets (RFC 5881 section 4).
pub const CONTROL_PORT: u16 = 3784;

/// First UDP source port a sender may use (RFC 5881 section 4: 49152 through 65535).
pub const SOURCE_PORT_MIN: u16 = 49152;

/// Last UDP source port a sender may use (RFC 5881 section 4).
pub const SOURCE_PORT_MAX: u16 = 65535;

/// TTL / hop limit every single-hop Control packet is sent with, and the only value accepted on
/// receipt (RFC 5881 section 5, the GTSM rule of RFC 5082): a packet that crossed a router
/// cannot arrive with 255.
pub const REQUIRED_TTL: u8 = 255;

/// True when `port` is a valid source port for a single-hop Control packet (RFC 5881 section 4).
pub fn is_valid_source_port(port: u16) -> bool {
    (SOURCE_PORT_MIN..=SOURCE_PORT_MAX).contains(&port)
}

/// Named offsets and sizes of the Control packet (RFC 5880 section 4.1).
pub mod field {
    /// Version (3 high bits) and Diagnostic (5 low bits).
    pub const VERS_DIAG: usize = 0;
    /// State (2 high bits) and the P F C A D M flags.
    pub const STATE_FLAGS: usize = 1;
    pub const DETECT_MULT: usize = 2;
    pub const LENGTH: usize = 3;
    pub const MY_DISCRIMINATOR: usize = 4;
    pub const YOUR_DISCRIMINATOR: usize = 8;
    pub const DESIRED_MIN_TX: usize = 12;
    pub const REQUIRED_MIN_RX: usize = 16;
    pub const REQUIRED_MIN_ECHO_RX: usize = 20;
    /// Auth Type, the first byte of the optional authentication section.
    pub const AUTH_TYPE: usize = 24;
    /// Auth Len: the length of the whole authentication section, these two bytes included.
    pub const AUTH_LEN: usize = 25;
    /// Size of the mandatory section.
    pub const HEADER_LEN: usize = 24;
    /// Smallest Length with the A bit: the mandatory section plus Auth Type and Auth Len.
    pub const MIN_AUTH_LEN: usize = 26;

    /// Bit masks inside [`STATE_FLAGS`].
    pub mod flag {
        pub const POLL: u8 = 0x20;
        pub const FINAL: u8 = 0x10;
        pub const CONTROL_PLANE_INDEPENDENT: u8 = 0x08;
        pub const AUTH_PRESENT: u8 = 0x04;
        pub const DEMAND: u8 = 0x02;
        pub const MULTIPOINT: u8 = 0x01;
    }
}

/// Mask of the 5-bit Diagnostic field.
const DIAG_MASK: u8 = 0x1F;

/// Session state as carried in the State field (RFC 5880 section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    AdminDown,
    Down,
    Init,
    Up,
}

impl State {
    /// The 2-bit State field value.
    pub fn number(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }

    /// The state for a 2-bit field value (only the low 2 bits of `n` are used, so every value
    /// maps to a state).
    pub fn from_number(n: u8) -> State {
        match n & 0x03 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    /// Stable snake_case name, for status output and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            State::AdminDown => "admin_down",
            State::Down => "down",
            State::Init => "init",
            State::Up => "up",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        })
    }
}

/// Diagnostic code (RFC 5880 section 4.1): why the sender's session last changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diagnostic {
    /// 0
    None,
    /// 1: the detection timer expired (RFC 5880 section 6.8.4).
    ControlDetectionTimeExpired,
    /// 2
    EchoFunctionFailed,
    /// 3: the remote said Down or AdminDown (RFC 5880 section 6.8.6).
    NeighborSignaledSessionDown,
    /// 4
    ForwardingPlaneReset,
    /// 5
    PathDown,
    /// 6
    ConcatenatedPathDown,
    /// 7: the session was put in AdminDown (RFC 5880 section 6.8.16).
    AdministrativelyDown,
    /// 8
    ReverseConcatenatedPathDown,
    /// 9..=31, reserved for future use. Received values are kept so they can be shown;
    /// values above 31 do not fit the field and are refused by [`Repr::emit`].
    Reserved(u8),
}

impl Diagnostic {
    /// The 5-bit field value.
    pub fn number(self) -> u8 {
        match self {
            Diagnostic::None => 0,
            Diagnostic::ControlDetectionTimeExpired => 1,
            Diagnostic::EchoFunctionFailed => 2,
            Diagnostic::NeighborSignaledSessionDown => 3,
            Diagnostic::ForwardingPlaneReset => 4,
            Diagnostic::PathDown => 5,
            Diagnostic::ConcatenatedPathDown => 6,
            Diagnostic::AdministrativelyDown => 7,
            Diagnostic::ReverseConcatenatedPathDown => 8,
            Diagnostic::Reserved(n) => n,
        }
    }

    /// The diagnostic for a field value (the low 5 bits of `n`).
    pub fn from_number(n: u8) -> Diagnostic {
        match n & DIAG_MASK {
            0 => Diagnostic::None,
            1 => Diagnostic::ControlDetectionTimeExpired,
            2 => Diagnostic::EchoFunctionFailed,
            3 => Diagnostic::NeighborSignaledSessionDown,
            4 => Diagnostic::ForwardingPlaneReset,
            5 => Diagnostic::PathDown,
            6 => Diagnostic::ConcatenatedPathDown,
            7 => Diagnostic::AdministrativelyDown,
            8 => Diagnostic::ReverseConcatenatedPathDown,
            other => Diagnostic::Reserved(other),
        }
    }

    /// Stable snake_case name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Diagnostic::None => "none",
            Diagnostic::ControlDetectionTimeExpired => "control_detection_time_expired",
            Diagnostic::EchoFunctionFailed => "echo_function_failed",
            Diagnostic::NeighborSignaledSessionDown => "neighbor_signaled_session_down",
            Diagnostic::ForwardingPlaneReset => "forwarding_plane_reset",
            Diagnostic::PathDown => "path_down",
            Diagnostic::ConcatenatedPathDown => "concatenated_path_down",
            Diagnostic::AdministrativelyDown => "administratively_down",
            Diagnostic::ReverseConcatenatedPathDown => "reverse_concatenated_path_down",
            Diagnostic::Reserved(_) => "reserved",
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.as_str(), self.number())
    }
}

/// Why a Control packet was refused. Each variant names the field at fault; the variants are
/// listed in the order [`Repr::parse`] checks them (RFC 5880 section 6.8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty UDP payload; a BFD Control packet has at least 24 bytes")]
    Empty,
    #[error("Version field is {0}; only BFD version 1 exists (RFC 5880 section 4.1)")]
    BadVersion(u8),
    #[error("UDP payload of {len} bytes is shorter than the 24-byte mandatory section")]
    Truncated { len: usize },
    #[error(
        "Length field is {length} but must be at least {min} ({})",
        if *.min == field::MIN_AUTH_LEN { "26 with the A bit set" } else { "24 without authentication" }
    )]
    LengthTooShort { length: u8, min: usize },
    #[error("Length field is {length} but the UDP payload holds only {payload} bytes")]
    LengthExceedsPayload { length: u8, payload: usize },
    #[error("Auth Len field is {auth_len}; with the A bit the section must be 2..={max} bytes to fit Length {length}")]
    BadAuthLength {
        auth_len: u8,
        length: u8,
        max: usize,
    },
    #[error("Detect Mult field is 0; it must be at least 1 (RFC 5880 section 6.8.6)")]
    ZeroDetectMult,
    #[error("Multipoint (M) bit is set; it is reserved and must be 0 (RFC 5880 section 6.8.6)")]
    Multipoint,
    #[error(
        "My Discriminator field is 0; a sender's discriminator is nonzero (RFC 5880 section 6.8.6)"
    )]
    ZeroMyDiscriminator,
    #[error(
        "Your Discriminator field is 0 with State {state}; it may be 0 only in Down or AdminDown \
         (RFC 5880 section 6.8.6)"
    )]
    ZeroYourDiscriminator { state: State },
}

impl ParseError {
    /// The stable drop-reason label (see [`crate::drop_reason`]) this error is counted under.
    pub fn drop_reason(&self) -> &'static str {
        use crate::drop_reason as r;
        match self {
            ParseError::BadVersion(_) => r::BAD_VERSION,
            ParseError::Empty
            | ParseError::Truncated { .. }
            | ParseError::LengthTooShort { .. }
            | ParseError::LengthExceedsPayload { .. }
            | ParseError::BadAuthLength { .. } => r::BAD_LENGTH,
            ParseError::ZeroDetectMult => r::ZERO_DETECT_MULT,
            ParseError::Multipoint => r::MULTIPOINT,
            ParseError::ZeroMyDiscriminator => r::ZERO_MY_DISCRIMINATOR,
            ParseError::ZeroYourDiscriminator { .. } => r::ZERO_YOUR_DISCRIMINATOR,
        }
    }
}

/// Why a [`Repr`] could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    #[error("buffer of {available} bytes is too small for the {needed}-byte Control packet")]
    BufferTooSmall { needed: usize, available: usize },
    #[error("authentication is not implemented; cannot emit a packet with the A bit")]
    AuthUnsupported,
    #[error(
        "a Control packet must not have both the Poll and Final bits set (RFC 5880 section 6.8.7)"
    )]
    PollAndFinal,
    #[error("diagnostic {0} does not fit the 5-bit Diag field (0..=31)")]
    Diagnostic(u8),
    #[error("refusing to emit a packet every receiver must drop: {0}")]
    Invalid(#[source] ParseError),
}

/// The Auth Type and Auth Len of a received authentication section (RFC 5880 section 4.1).
/// Reported so the packet can be counted and shown; the session drops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthHeader {
    pub auth_type: u8,
    pub auth_len: u8,
}

/// Zero-copy view of a Control packet (`Packet` in smoltcp terms).
#[derive(Debug, Clone)]
pub struct ControlPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ControlPacket<T> {
    /// Wraps `buffer` without any check. Accessors panic on a buffer shorter than 24 bytes (or,
    /// for the auth accessors, than 26), so use this only on buffers this code sized itself.
    pub fn new_unchecked(buffer: T) -> Self {
        ControlPacket { buffer }
    }

    /// Wraps `buffer` after checking that it holds the 24-byte mandatory section. Field values
    /// (Version, Length, ...) are checked by [`Repr::parse`], not here.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// The length check of [`ControlPacket::new_checked`].
    pub fn check_len(&self) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        if len < field::HEADER_LEN {
            return Err(ParseError::Truncated { len });
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERS_DIAG] >> 5
    }

    pub fn diag(&self) -> Diagnostic {
        Diagnostic::from_number(self.buffer.as_ref()[field::VERS_DIAG])
    }

    pub fn state(&self) -> State {
        State::from_number(self.buffer.as_ref()[field::STATE_FLAGS] >> 6)
    }

    fn flag(&self, mask: u8) -> bool {
        self.buffer.as_ref()[field::STATE_FLAGS] & mask != 0
    }

    pub fn poll(&self) -> bool {
        self.flag(field::flag::POLL)
    }

    pub fn final_(&self) -> bool {
        self.flag(field::flag::FINAL)
    }

    pub fn control_plane_independent(&self) -> bool {
        self.flag(field::flag::CONTROL_PLANE_INDEPENDENT)
    }

    pub fn auth_present(&self) -> bool {
        self.flag(field::flag::AUTH_PRESENT)
    }

    pub fn demand(&self) -> bool {
        self.flag(field::flag::DEMAND)
    }

    pub fn multipoint(&self) -> bool {
        self.flag(field::flag::MULTIPOINT)
    }

    pub fn detect_mult(&self) -> u8 {
        self.buffer.as_ref()[field::DETECT_MULT]
    }

    /// The Length field: the whole packet in bytes, authentication section included.
    pub fn length(&self) -> u8 {
        self.buffer.as_ref()[field::LENGTH]
    }

    pub fn my_discriminator(&self) -> u32 {
        self.read_u32(field::MY_DISCRIMINATOR)
    }

    pub fn your_discriminator(&self) -> u32 {
        self.read_u32(field::YOUR_DISCRIMINATOR)
    }

    /// Desired Min TX Interval, microseconds.
    pub fn desired_min_tx(&self) -> u32 {
        self.read_u32(field::DESIRED_MIN_TX)
    }

    /// Required Min RX Interval, microseconds.
    pub fn required_min_rx(&self) -> u32 {
        self.read_u32(field::REQUIRED_MIN_RX)
    }

    /// Required Min Echo RX Interval, microseconds.
    pub fn required_min_echo_rx(&self) -> u32 {
        self.read_u32(field::REQUIRED_MIN_ECHO_RX)
    }

    /// Auth Type and Auth Len, when the A bit is set and the buffer holds them.
    pub fn auth_header(&self) -> Option<AuthHeader> {
        let b = self.buffer.as_ref();
        if !self.auth_present() {
            return None;
        }
        Some(AuthHeader {
            auth_type: *b.get(field::AUTH_TYPE)?,
            auth_len: *b.get(field::AUTH_LEN)?,
        })
    }

    fn read_u32(&self, at: usize) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ControlPacket<T> {
    /// Writes Version and Diagnostic (each masked to its field width).
    pub fn set_version_diag(&mut self, version: u8, diag: u8) {
        self.buffer.as_mut()[field::VERS_DIAG] = (version << 5) | (diag & DIAG_MASK);
    }

    /// Writes State and the six flag bits (`flags` is an OR of [`field::flag`] masks).
    pub fn set_state_flags(&mut self, state: State, flags: u8) {
        self.buffer.as_mut()[field::STATE_FLAGS] = (state.number() << 6) | (flags & 0x3F);
    }

    pub fn set_detect_mult(&mut self, mult: u8) {
        self.buffer.as_mut()[field::DETECT_MULT] = mult;
    }

    pub fn set_length(&mut self, length: u8) {
        self.buffer.as_mut()[field::LENGTH] = length;
    }

    pub fn set_my_discriminator(&mut self, value: u32) {
        self.write_u32(field::MY_DISCRIMINATOR, value);
    }

    pub fn set_your_discriminator(&mut self, value: u32) {
        self.write_u32(field::YOUR_DISCRIMINATOR, value);
    }

    pub fn set_desired_min_tx(&mut self, us: u32) {
        self.write_u32(field::DESIRED_MIN_TX, us);
    }

    pub fn set_required_min_rx(&mut self, us: u32) {
        self.write_u32(field::REQUIRED_MIN_RX, us);
    }

    pub fn set_required_min_echo_rx(&mut self, us: u32) {
        self.write_u32(field::REQUIRED_MIN_ECHO_RX, us);
    }

    fn write_u32(&mut self, at: usize, value: u32) {
        self.buffer.as_mut()[at..at + 4].copy_from_slice(&value.to_be_bytes());
    }
}

/// One Control packet, decoded (`Repr` in smoltcp terms). The Version is always 1 and the
/// M bit always 0 (anything else is refused), so neither is a field; Length is implied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub diag: Diagnostic,
    pub state: State,
    /// P: the sender asks for a packet with F in reply (a Poll Sequence, RFC 5880 section 6.5).
    pub poll: bool,
    /// F: the reply to a packet with P.
    pub final_: bool,
    /// C: the sender's BFD does not share fate with its control plane.
    pub control_plane_independent: bool,
    /// D: the sender wishes to run Demand mode.
    pub demand: bool,
    pub detect_mult: u8,
    pub my_discriminator: u32,
    pub your_discriminator: u32,
    /// Microseconds.
    pub desired_min_tx_us: u32,
    /// Microseconds; 0 means "send me no periodic Control packets".
    pub required_min_rx_us: u32,
    /// Microseconds; 0 means "I do not take Echo packets".
    pub required_min_echo_rx_us: u32,
    /// Set when the A bit was set: the received Auth Type and Auth Len. Authentication is not
    /// implemented, so `emit` refuses `Some`.
    pub auth: Option<AuthHeader>,
}

impl Repr {
    /// Decodes the UDP payload `bytes` (IP and UDP headers stripped).
    ///
    /// Checks, in the order of RFC 5880 section 6.8.6 (the first failure is reported): Version
    /// is 1; Length is at least 24 (26 with A) and at most the payload; with A, Auth Len fits
    /// inside Length; Detect Mult is nonzero; M is clear; My Discriminator is nonzero; Your
    /// Discriminator is zero only with State Down or AdminDown. The checks that need session
    /// context (Your Discriminator lookup, A bit against the configured authentication, TTL)
    /// are the session's.
    pub fn parse(bytes: &[u8]) -> Result<Repr, ParseError> {
        // Version comes first in RFC 5880 section 6.8.6, so it is read before the mandatory
        // section is known to be there: a short packet of another version is `bad_version`.
        let first = *bytes.first().ok_or(ParseError::Empty)?;
        let version = first >> 5;
        if version != VERSION {
            return Err(ParseError::BadVersion(version));
        }
        let packet = ControlPacket::new_checked(bytes)?;

        // RFC 5880 section 6.8.6: Length below the minimum for the A bit, or beyond the payload.
        let length = packet.length();
        let min = if packet.auth_present() {
            field::MIN_AUTH_LEN
        } else {
            field::HEADER_LEN
        };
        if usize::from(length) < min {
            return Err(ParseError::LengthTooShort { length, min });
        }
        if usize::from(length) > bytes.len() {
            return Err(ParseError::LengthExceedsPayload {
                length,
                payload: bytes.len(),
            });
        }
        // Length >= 26 was checked above, so the header is there. The section must at least
        // hold its own two bytes and end within Length (RFC 5880 section 4.1).
        let auth = packet.auth_header();
        if let Some(header) = auth {
            let max = usize::from(length) - field::HEADER_LEN;
            if header.auth_len < 2 || usize::from(header.auth_len) > max {
                return Err(ParseError::BadAuthLength {
                    auth_len: header.auth_len,
                    length,
                    max,
                });
            }
        }
        // RFC 5880 section 6.8.6: "Detect Mult field is zero" -> discard, then a set M bit
        // (reserved for point-to-multipoint extensions) -> discard. Detect Mult is checked
        // again by `check_fields`; it is here too so the M bit cannot be reported first.
        if packet.detect_mult() == 0 {
            return Err(ParseError::ZeroDetectMult);
        }
        if packet.multipoint() {
            return Err(ParseError::Multipoint);
        }

        let repr = Repr {
            diag: packet.diag(),
            state: packet.state(),
            poll: packet.poll(),
            final_: packet.final_(),
            control_plane_independent: packet.control_plane_independent(),
            demand: packet.demand(),
            detect_mult: packet.detect_mult(),
            my_discriminator: packet.my_discriminator(),
            your_discriminator: packet.your_discriminator(),
            desired_min_tx_us: packet.desired_min_tx(),
            required_min_rx_us: packet.required_min_rx(),
            required_min_echo_rx_us: packet.required_min_echo_rx(),
            auth,
        };
        repr.check_fields()?;
        Ok(repr)
    }

    /// The field-value checks of RFC 5880 section 6.8.6 that a `Repr` can fail (a `Repr` built
    /// by hand rather than parsed may hold any values): Detect Mult, My Discriminator, Your
    /// Discriminator against State. The session runs this on every packet it is handed.
    pub fn check_fields(&self) -> Result<(), ParseError> {
        // RFC 5880 section 6.8.6: "Detect Mult field is zero" -> discard.
        if self.detect_mult == 0 {
            return Err(ParseError::ZeroDetectMult);
        }
        // RFC 5880 section 6.8.6: a zero My Discriminator -> discard.
        if self.my_discriminator == 0 {
            return Err(ParseError::ZeroMyDiscriminator);
        }
        // RFC 5880 section 6.8.6: Your Discriminator may be zero only while the sender has not
        // heard from us, i.e. in Down or AdminDown.
        if self.your_discriminator == 0 && !matches!(self.state, State::Down | State::AdminDown) {
            return Err(ParseError::ZeroYourDiscriminator { state: self.state });
        }
        Ok(())
    }

    /// Bytes `emit` writes: the mandatory section (authentication is never emitted).
    pub fn buffer_len(&self) -> usize {
        field::HEADER_LEN
    }

    /// Writes the packet (the UDP payload) into the front of `buf` and returns its length.
    /// Everything is validated first, so nothing is written on error.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        if self.auth.is_some() {
            return Err(EmitError::AuthUnsupported);
        }
        // RFC 5880 section 6.8.7: P and F are never set together.
        if self.poll && self.final_ {
            return Err(EmitError::PollAndFinal);
        }
        let diag = self.diag.number();
        if diag > DIAG_MASK {
            return Err(EmitError::Diagnostic(diag));
        }
        self.check_fields().map_err(EmitError::Invalid)?;
        let len = self.buffer_len();
        let available = buf.len();
        let Some(out) = buf.get_mut(..len) else {
            return Err(EmitError::BufferTooSmall {
                needed: len,
                available,
            });
        };

        let mut flags = 0;
        for (set, mask) in [
            (self.poll, field::flag::POLL),
            (self.final_, field::flag::FINAL),
            (
                self.control_plane_independent,
                field::flag::CONTROL_PLANE_INDEPENDENT,
            ),
            (self.demand, field::flag::DEMAND),
        ] {
            if set {
                flags |= mask;
            }
        }
        let mut packet = ControlPacket::new_unchecked(out);
        packet.set_version_diag(VERSION, diag);
        packet.set_state_flags(self.state, flags);
        packet.set_detect_mult(self.detect_mult);
        // HEADER_LEN is 24, which fits the 8-bit Length field.
        packet.set_length(field::HEADER_LEN as u8);
        packet.set_my_discriminator(self.my_discriminator);
        packet.set_your_discriminator(self.your_discriminator);
        packet.set_desired_min_tx(self.desired_min_tx_us);
        packet.set_required_min_rx(self.required_min_rx_us);
        packet.set_required_min_echo_rx(self.required_min_echo_rx_us);
        Ok(len)
    }
}
