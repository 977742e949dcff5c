//! Just enough of the DNS wire format (RFC 1035 section 4) for a transparent relay: header
//! fields, the question, and a walk over the resource records that remembers where each TTL
//! sits, where the OPT record is (RFC 6891 section 6.1.2) and what an SOA in the authority
//! section says about negative caching (RFC 2308 section 5). Messages are never re-encoded:
//! the forwarder patches bytes in place.

use thiserror::Error;

pub(crate) use crate::protocol::{
    HEADER_LEN, OPCODE_QUERY, RCODE_FORMERR, RCODE_NOERROR, RCODE_NOTIMP, RCODE_NXDOMAIN,
    RCODE_REFUSED, RCODE_SERVFAIL,
};
use crate::protocol::{MAX_NAME_WIRE_LEN, TYPE_OPT, TYPE_SOA};

// Flag bits, RFC 1035 section 4.1.1: byte 2 is QR|Opcode(4)|AA|TC|RD, byte 3 is RA|Z|AD|CD|RCODE(4)
// (AD and CD from RFC 4035 section 3.2).
const FLAG_QR: u8 = 0x80;
const FLAG_AA: u8 = 0x04;
const FLAG_TC: u8 = 0x02;
const FLAG_RD: u8 = 0x01;
const FLAG_RA: u8 = 0x80;
const FLAG_CD: u8 = 0x10;
/// DO is the top bit of the OPT record's flags (RFC 3225 section 3), i.e. the third TTL byte.
const OPT_FLAG_DO: u8 = 0x80;

/// More compression pointers than this in one name can only be a loop or an attack.
const MAX_POINTER_HOPS: usize = 64;

/// Why a message could not be walked; the forwarder counts these and never panics on them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("message is {len} bytes, shorter than the {needed} bytes its fields require")]
    Truncated { needed: usize, len: usize },
    #[error("label at offset {offset} has reserved type bits 0x{bits:02x} (only plain labels and compression pointers are accepted)")]
    BadLabel { offset: usize, bits: u8 },
    #[error("name at offset {offset} is longer than 255 octets")]
    NameTooLong { offset: usize },
    #[error(
        "name at offset {offset} follows more than {MAX_POINTER_HOPS} compression pointers (loop)"
    )]
    PointerLoop { offset: usize },
    #[error("QDCOUNT is {0}; exactly 1 question is accepted")]
    QuestionCount(u16),
    #[error("{0} bytes follow the last record announced by the header counts")]
    TrailingBytes(usize),
}

pub(crate) fn id(msg: &[u8]) -> u16 {
    u16::from_be_bytes([msg[0], msg[1]])
}

pub(crate) fn set_id(msg: &mut [u8], id: u16) {
    msg[..2].copy_from_slice(&id.to_be_bytes());
}

pub(crate) fn is_response(msg: &[u8]) -> bool {
    msg[2] & FLAG_QR != 0
}

pub(crate) fn opcode(msg: &[u8]) -> u8 {
    (msg[2] >> 3) & 0x0f
}

pub(crate) fn is_truncated(msg: &[u8]) -> bool {
    msg[2] & FLAG_TC != 0
}

pub(crate) fn rcode(msg: &[u8]) -> u8 {
    msg[3] & 0x0f
}

/// Copies the RD bit of `query` into `response` (RFC 1035 section 4.1.1: RD is copied into the
/// response), used when a cached answer first fetched for another client is served.
pub(crate) fn copy_rd(response: &mut [u8], query: &[u8]) {
    response[2] = (response[2] & !FLAG_RD) | (query[2] & FLAG_RD);
}

fn count(msg: &[u8], index: usize) -> u16 {
    u16::from_be_bytes([msg[4 + 2 * index], msg[5 + 2 * index]])
}

fn read_u16(msg: &[u8], at: usize) -> Result<u16, WireError> {
    match msg.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(WireError::Truncated {
            needed: at + 2,
            len: msg.len(),
        }),
    }
}

pub(crate) fn read_u32(msg: &[u8], at: usize) -> Result<u32, WireError> {
    match msg.get(at..at + 4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(WireError::Truncated {
            needed: at + 4,
            len: msg.len(),
        }),
    }
}

/// Reads the name starting at `pos`. Returns the position right after the name as it sits at
/// `pos` (pointers are followed for the content only) and, when `lowered` is given, appends the
/// uncompressed name in wire form with ASCII letters lowercased (RFC 4343).
fn read_name(
    msg: &[u8],
    pos: usize,
    mut lowered: Option<&mut Vec<u8>>,
) -> Result<usize, WireError> {
    let start = pos;
    let mut at = pos;
    let mut end_here = None;
    let mut hops = 0;
    let mut name_len = 0;
    loop {
        let len_byte = *msg.get(at).ok_or(WireError::Truncated {
            needed: at + 1,
            len: msg.len(),
        })?;
        match len_byte & 0xc0 {
            0x00 => {
                let len = usize::from(len_byte);
                name_len += len + 1;
                if name_len > MAX_NAME_WIRE_LEN {
                    return Err(WireError::NameTooLong { offset: start });
                }
                let label = msg.get(at + 1..at + 1 + len).ok_or(WireError::Truncated {
                    needed: at + 1 + len,
                    len: msg.len(),
                })?;
                if let Some(out) = lowered.as_deref_mut() {
                    out.push(len_byte);
                    out.extend(label.iter().map(u8::to_ascii_lowercase));
                }
                at += 1 + len;
                if len == 0 {
                    return Ok(end_here.unwrap_or(at));
                }
            }
            0xc0 => {
                let target = usize::from(read_u16(msg, at)? & 0x3fff);
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return Err(WireError::PointerLoop { offset: start });
                }
                end_here.get_or_insert(at + 2);
                at = target;
            }
            bits => return Err(WireError::BadLabel { offset: at, bits }),
        }
    }
}

/// The question of a message: identity used for matching responses and as the cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Question {
    /// Uncompressed, lowercased wire-form name.
    pub name: Vec<u8>,
    pub qtype: u16,
    pub qclass: u16,
}

/// Where things are in one message, found by a single walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub question: Question,
    /// Byte range of the question section (name, type, class) as it sits in the message.
    pub question_end: usize,
    pub answer_count: u16,
    /// Offsets of the TTL field of every record except OPT (whose "TTL" carries flags).
    pub ttl_offsets: Vec<u16>,
    /// Smallest TTL among those records.
    pub min_ttl: Option<u32>,
    /// RFC 2308 section 5: min(SOA TTL, SOA MINIMUM) of an SOA in the authority section.
    pub negative_ttl: Option<u32>,
    pub opt: Option<OptRecord>,
}

/// Location and content of the OPT pseudo-record (RFC 6891 section 6.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OptRecord {
    /// The whole record, from its owner name to the end of its RDATA.
    pub start: usize,
    pub end: usize,
    /// Offset of the CLASS field, which holds the requestor's UDP payload size.
    pub payload_size_offset: usize,
    pub payload_size: u16,
    pub dnssec_ok: bool,
}

impl Layout {
    /// Walks `msg`; accepts exactly one question and nothing after the last record.
    pub(crate) fn parse(msg: &[u8]) -> Result<Self, WireError> {
        if msg.len() < HEADER_LEN {
            return Err(WireError::Truncated {
                needed: HEADER_LEN,
                len: msg.len(),
            });
        }
        let qdcount = count(msg, 0);
        if qdcount != 1 {
            return Err(WireError::QuestionCount(qdcount));
        }
        let mut name = Vec::with_capacity(32);
        let mut pos = read_name(msg, HEADER_LEN, Some(&mut name))?;
        let qtype = read_u16(msg, pos)?;
        let qclass = read_u16(msg, pos + 2)?;
        pos += 4;
        let question_end = pos;
        let answer_count = count(msg, 1);
        let authority_count = count(msg, 2);
        let records =
            usize::from(answer_count) + usize::from(authority_count) + usize::from(count(msg, 3));
        let mut layout = Layout {
            question: Question {
                name,
                qtype,
                qclass,
            },
            question_end,
            answer_count,
            ttl_offsets: Vec::new(),
            min_ttl: None,
            negative_ttl: None,
            opt: None,
        };
        for index in 0..records {
            let start = pos;
            pos = read_name(msg, pos, None)?;
            let rtype = read_u16(msg, pos)?;
            let class_offset = pos + 2;
            let ttl_offset = pos + 4;
            let ttl = read_u32(msg, ttl_offset)?;
            let rdlength = usize::from(read_u16(msg, pos + 8)?);
            let rdata_end = pos + 10 + rdlength;
            if rdata_end > msg.len() {
                return Err(WireError::Truncated {
                    needed: rdata_end,
                    len: msg.len(),
                });
            }
            pos = rdata_end;
            if rtype == TYPE_OPT {
                layout.opt = Some(OptRecord {
                    start,
                    end: rdata_end,
                    payload_size_offset: class_offset,
                    payload_size: read_u16(msg, class_offset)?,
                    dnssec_ok: msg[ttl_offset + 2] & OPT_FLAG_DO != 0,
                });
                continue;
            }
            // Offsets fit u16: a DNS message is at most 65535 bytes (RFC 1035 section 4.2.2).
            layout
                .ttl_offsets
                .push(u16::try_from(ttl_offset).map_err(|_| WireError::Truncated {
                    needed: ttl_offset,
                    len: usize::from(u16::MAX),
                })?);
            layout.min_ttl = Some(layout.min_ttl.map_or(ttl, |m| m.min(ttl)));
            let in_authority = index >= usize::from(answer_count)
                && index < usize::from(answer_count) + usize::from(authority_count);
            if in_authority && rtype == TYPE_SOA && rdlength >= 20 {
                // MINIMUM is the last of the five 32-bit fields that close the SOA RDATA.
                let minimum = read_u32(msg, rdata_end - 4)?;
                layout.negative_ttl = Some(ttl.min(minimum));
            }
        }
        if pos != msg.len() {
            return Err(WireError::TrailingBytes(msg.len() - pos));
        }
        Ok(layout)
    }
}

/// Header and question only, for matching a response to an in-flight query cheaply.
pub(crate) fn parse_question(msg: &[u8]) -> Result<Question, WireError> {
    if msg.len() < HEADER_LEN {
        return Err(WireError::Truncated {
            needed: HEADER_LEN,
            len: msg.len(),
        });
    }
    let qdcount = count(msg, 0);
    if qdcount != 1 {
        return Err(WireError::QuestionCount(qdcount));
    }
    let mut name = Vec::with_capacity(32);
    let pos = read_name(msg, HEADER_LEN, Some(&mut name))?;
    Ok(Question {
        name,
        qtype: read_u16(msg, pos)?,
        qclass: read_u16(msg, pos + 2)?,
    })
}

/// Lowers every TTL to at most `cap` (the `cache 30` behaviour clients see today).
pub(crate) fn cap_ttls(msg: &mut [u8], ttl_offsets: &[u16], cap: u32) {
    for &offset in ttl_offsets {
        let at = usize::from(offset);
        if let Ok(ttl) = read_u32(msg, at) {
            if ttl > cap {
                msg[at..at + 4].copy_from_slice(&cap.to_be_bytes());
            }
        }
    }
}

/// Subtracts `age` seconds from every TTL, stopping at zero (RFC 1035 section 7.4 style aging).
pub(crate) fn age_ttls(msg: &mut [u8], ttl_offsets: &[u16], age: u32) {
    if age == 0 {
        return;
    }
    for &offset in ttl_offsets {
        let at = usize::from(offset);
        if let Ok(ttl) = read_u32(msg, at) {
            msg[at..at + 4].copy_from_slice(&ttl.saturating_sub(age).to_be_bytes());
        }
    }
}

/// End of the question section of a message with one question, for answers that cannot be
/// walked completely (an upstream may cut a TC=1 answer in the middle of a record).
pub(crate) fn question_end(msg: &[u8]) -> Result<usize, WireError> {
    if msg.len() < HEADER_LEN {
        return Err(WireError::Truncated {
            needed: HEADER_LEN,
            len: msg.len(),
        });
    }
    let end = read_name(msg, HEADER_LEN, None)? + 4;
    if end > msg.len() {
        return Err(WireError::Truncated {
            needed: end,
            len: msg.len(),
        });
    }
    Ok(end)
}

/// The response a UDP client gets when the full answer is larger than it accepts: the header
/// with TC=1 and no records, the question, and the OPT record if the answer had one and it fits
/// (RFC 6891 section 7: keep OPT in responses to EDNS queries; RFC 2181 section 9: a truncated
/// answer makes the client retry over TCP).
pub(crate) fn truncated_copy(
    msg: &[u8],
    question_end: usize,
    opt: Option<&OptRecord>,
    max_len: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(max_len.min(msg.len()));
    out.extend_from_slice(&msg[..question_end]);
    out[2] |= FLAG_TC;
    out[6..12].fill(0);
    if let Some(opt) = opt {
        if out.len() + (opt.end - opt.start) <= max_len {
            out.extend_from_slice(&msg[opt.start..opt.end]);
            out[10..12].copy_from_slice(&1u16.to_be_bytes());
        }
    }
    out
}

/// Builds an error response (SERVFAIL, FORMERR, NOTIMP...) from a query: same ID, opcode, RD
/// and CD; the question when `question_end` says where it ends; an OPT record when the query
/// had one (RFC 6891 section 7), advertising `payload_size`.
pub(crate) fn error_response(
    query: &[u8],
    question_end: Option<usize>,
    query_opt: Option<&OptRecord>,
    rcode: u8,
    payload_size: u16,
) -> Vec<u8> {
    let question_end = question_end.unwrap_or(HEADER_LEN);
    let mut out = Vec::with_capacity(question_end + 11);
    out.extend_from_slice(&query[..question_end]);
    out[2] = FLAG_QR | (query[2] & (0x78 | FLAG_RD));
    out[2] &= !FLAG_AA;
    out[3] = FLAG_RA | (query[3] & FLAG_CD) | (rcode & 0x0f);
    let qdcount: u16 = if question_end > HEADER_LEN { 1 } else { 0 };
    out[4..6].copy_from_slice(&qdcount.to_be_bytes());
    out[6..12].fill(0);
    if let Some(opt) = query_opt {
        // Root owner, TYPE=OPT, CLASS=payload size, TTL=ext-rcode 0, version 0, DO echoed
        // (RFC 3225 section 3), RDLENGTH 0.
        out.push(0);
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&payload_size.to_be_bytes());
        out.extend_from_slice(&[0, 0, if opt.dnssec_ok { OPT_FLAG_DO } else { 0 }, 0]);
        out.extend_from_slice(&0u16.to_be_bytes());
        out[10..12].copy_from_slice(&1u16.to_be_bytes());
    }
    out
}

pub(crate) fn checking_disabled(msg: &[u8]) -> bool {
    msg[3] & FLAG_CD != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `www.example.com. A IN` query, ID 0x1234, RD=1, with an OPT record (payload 4096, DO=1).
    fn query_with_opt() -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        q.extend_from_slice(b"\x03WWW\x07example\x03com\x00\x00\x01\x00\x01");
        q.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 0]);
        q
    }

    #[test]
    fn question_name_is_lowercased_and_uncompressed() {
        let layout = Layout::parse(&query_with_opt()).unwrap();
        assert_eq!(
            layout.question.name,
            b"\x03www\x07example\x03com\x00".to_vec()
        );
        assert_eq!((layout.question.qtype, layout.question.qclass), (1, 1));
        assert_eq!(layout.question_end, 33);
    }

    #[test]
    fn opt_record_payload_size_and_do_bit_are_found() {
        let layout = Layout::parse(&query_with_opt()).unwrap();
        let opt = layout.opt.unwrap();
        assert_eq!((opt.start, opt.end, opt.payload_size_offset), (33, 44, 36));
        assert_eq!(opt.payload_size, 4096);
        assert!(opt.dnssec_ok);
        assert!(layout.ttl_offsets.is_empty());
    }

    #[test]
    fn ttl_offsets_and_negative_ttl_come_from_the_records() {
        let mut r = vec![0x12, 0x34, 0x81, 0x83, 0, 1, 0, 0, 0, 1, 0, 0];
        r.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        // Authority: SOA with TTL 900, MINIMUM 60; names compressed to the question's "example.com".
        r.extend_from_slice(&[0xc0, 16, 0, 6, 0, 1, 0, 0, 0x03, 0x84, 0, 24]);
        r.extend_from_slice(&[0xc0, 16, 0xc0, 16]);
        for field in [1u32, 7200, 3600, 1_209_600, 60] {
            r.extend_from_slice(&field.to_be_bytes());
        }
        let layout = Layout::parse(&r).unwrap();
        assert_eq!(layout.ttl_offsets, vec![39]);
        assert_eq!(layout.min_ttl, Some(900));
        assert_eq!(layout.negative_ttl, Some(60));
    }

    #[test]
    fn compression_pointer_loop_is_rejected() {
        let mut q = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(
            Layout::parse(&q),
            Err(WireError::PointerLoop { offset: 12 })
        );
    }

    #[test]
    fn bytes_after_the_last_record_are_rejected() {
        let mut q = query_with_opt();
        q.push(0);
        assert_eq!(Layout::parse(&q), Err(WireError::TrailingBytes(1)));
    }

    #[test]
    fn servfail_echoes_id_question_rd_and_opt() {
        let q = query_with_opt();
        let layout = Layout::parse(&q).unwrap();
        let r = error_response(
            &q,
            Some(layout.question_end),
            layout.opt.as_ref(),
            RCODE_SERVFAIL,
            1232,
        );
        let mut expected = vec![0x12, 0x34, 0x81, 0x82, 0, 1, 0, 0, 0, 0, 0, 1];
        expected.extend_from_slice(&q[12..33]);
        expected.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
        assert_eq!(r, expected);
    }

    #[test]
    fn aging_stops_at_zero() {
        let mut msg = vec![0, 0, 0, 5, 0, 0, 0, 40];
        age_ttls(&mut msg, &[0, 4], 10);
        assert_eq!(msg, vec![0, 0, 0, 0, 0, 0, 0, 30]);
    }
}
