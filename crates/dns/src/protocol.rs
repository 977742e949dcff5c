//! DNS protocol numbers shared by the local answer path (`answer`), the forwarder
//! (`forward::wire`) and the TCP server: one definition each (RFC 1035 section 4.1, RFC 6891).
//! Flag bits stay with their users, which read them from the header in different widths.

/// Header length (RFC 1035 section 4.1.1); shorter messages cannot be answered at all.
pub const HEADER_LEN: usize = 12;

/// Longest name in wire format (RFC 1035 section 2.3.4).
pub const MAX_NAME_WIRE_LEN: usize = 255;

pub const TYPE_A: u16 = 1;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;

pub const OPCODE_QUERY: u8 = 0;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_NOTIMP: u8 = 4;
pub const RCODE_REFUSED: u8 = 5;
/// Extended rcode 16 (RFC 6891 section 9): upper 8 bits (1) in the OPT TTL, lower 4 (0) in the
/// header.
pub const RCODE_BADVERS: u16 = 16;
