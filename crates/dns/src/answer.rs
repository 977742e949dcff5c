//! Local answers, parsed and written straight on the wire: the hot path.
//!
//! [`answer`] reads the header and the one question by hand (bounded, label by label, case folded
//! into a stack buffer), looks the name up in the [`ClusterZone`] and writes the response into the
//! caller's buffer. Nothing is allocated per query. Anything that is not ours comes back as
//! [`Outcome::Forward`] so the server hands the untouched query to the forwarder.
//!
//! Decisions (docs/dns.md lists them for operators):
//! - names we own answer with AA=1; a type we hold no data for answers NOERROR with no records
//!   (NODATA), plus the cluster domain's SOA in the authority section when the name is under the
//!   cluster domain, so resolvers can cache the negative answer for the zone TTL (RFC 2308 section 5);
//! - `ANY` (RFC 8482 section 4.2 allows any subset) returns every record we hold at the name: at
//!   most the A, AAAA and PTR sets, which are small, so there is no amplification to avoid;
//! - a class other than IN is never ours: forwarded, as CoreDNS does (its `hosts` plugin only
//!   matches IN and falls through to `forward`);
//! - EDNS (RFC 6891): a version above 0 gets BADVERS for every name, since vipd is the responder the
//!   client talks to; unknown options are ignored; our OPT advertises `max_udp_size` and echoes DO.

use crate::zone::{ClusterZone, Found};

/// Smallest UDP payload every DNS client accepts (RFC 1035 section 4.2.1); also the limit for
/// clients that send no OPT and the floor for those that advertise less (RFC 6891 section 6.2.5).
pub const MIN_UDP_SIZE: u16 = 512;

/// Largest DNS message over TCP (two-byte length prefix, RFC 1035 section 4.2.2).
pub const MAX_TCP_SIZE: usize = 65535;

const OPT_RR_LEN: usize = 11;

use crate::protocol::{CLASS_IN, HEADER_LEN, MAX_NAME_WIRE_LEN};
pub use crate::protocol::{
    RCODE_BADVERS, RCODE_FORMERR, RCODE_NOERROR, RCODE_NOTIMP, RCODE_NXDOMAIN, RCODE_REFUSED,
    RCODE_SERVFAIL, TYPE_A, TYPE_AAAA, TYPE_ANY, TYPE_OPT, TYPE_PTR, TYPE_SOA,
};

// Header flag bits, in the 16-bit flags word (RFC 1035 section 4.1.1, RFC 4035 section 3.2).
const FLAG_QR: u16 = 0x8000;
const OPCODE_MASK: u16 = 0x7800;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;
const FLAG_CD: u16 = 0x0010;
/// DO bit in the OPT TTL's flags half (RFC 3225 section 3).
const EDNS_DO: u16 = 0x8000;

/// SOA timers for negative answers (RFC 1912 section 2.2 ranges). Only MINIMUM matters to
/// clients: it is replaced by the zone TTL. Nobody transfers this zone, so the rest are nominal.
const SOA_REFRESH: u32 = 3600;
const SOA_RETRY: u32 = 600;
const SOA_EXPIRE: u32 = 86400;

/// Which transport the query arrived on; decides the response size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What the server does with a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Send the first `n` bytes of the output buffer back to the client.
    Respond(usize),
    /// Not ours: hand the query to the forwarder. `max_response` is the largest response the
    /// client accepts on this transport (for UDP: its EDNS size capped at ours, or 512).
    Forward { max_response: u16 },
    /// Not worth an answer: a response (QR=1, e.g. reflected traffic) or fewer than 12 bytes.
    Drop,
}

/// The question, case folded for lookup; offsets refer to the query.
struct Question {
    /// Lowercase copy of the name in wire format.
    lower: [u8; MAX_NAME_WIRE_LEN],
    lower_len: usize,
    /// Offset of each label inside the name (root excluded).
    starts: [u8; 128],
    labels: usize,
    qtype: u16,
    qclass: u16,
    /// Offset just past the question section in the query.
    end: usize,
}

#[derive(Clone, Copy)]
struct Edns {
    udp_size: u16,
    version: u8,
    dnssec_ok: bool,
}

impl Question {
    const EMPTY: Question = Question {
        lower: [0; MAX_NAME_WIRE_LEN],
        lower_len: 0,
        starts: [0; 128],
        labels: 0,
        qtype: 0,
        qclass: 0,
        end: 0,
    };
}

/// Why a query could not be parsed; all map to FORMERR.
struct Malformed;

/// Answers `query` from `zone` into `out`, or says to forward or drop it.
///
/// `max_udp_size` is the EDNS payload size vipd advertises (config `max_udp_size`, 512 by default
/// as CoreDNS's `bufsize 512`); UDP responses never exceed the smaller of it and the client's.
/// `out` should hold at least [`MIN_UDP_SIZE`] bytes for UDP and [`MAX_TCP_SIZE`] for TCP; a
/// smaller buffer lowers the limit further.
pub fn answer(
    zone: &ClusterZone,
    query: &[u8],
    out: &mut [u8],
    transport: Transport,
    max_udp_size: u16,
) -> Outcome {
    if query.len() < HEADER_LEN {
        return Outcome::Drop;
    }
    let flags = read_u16(query, 2);
    if flags & FLAG_QR != 0 {
        return Outcome::Drop;
    }
    let qdcount = read_u16(query, 4);
    let mut question = Question::EMPTY;
    let parsed = if qdcount == 1 {
        parse(query, &mut question).ok()
    } else {
        None
    };
    let opcode = (flags & OPCODE_MASK) >> 11;
    let Some(edns) = parsed else {
        let rcode = if opcode != 0 {
            RCODE_NOTIMP
        } else {
            RCODE_FORMERR
        };
        return header_only(query, out, rcode);
    };

    let limit = match transport {
        Transport::Tcp => MAX_TCP_SIZE,
        Transport::Udp => match edns {
            Some(edns) => usize::from(edns.udp_size.min(max_udp_size).max(MIN_UDP_SIZE)),
            None => usize::from(MIN_UDP_SIZE),
        },
    };
    let ours = max_udp_size.max(MIN_UDP_SIZE);

    if opcode != 0 {
        return Writer::new(query, out, limit, &question, edns, ours).map_or(Outcome::Drop, |w| {
            w.finish_empty(RCODE_NOTIMP as u16, false)
        });
    }
    if let Some(edns) = edns {
        if edns.version > 0 {
            return Writer::new(query, out, limit, &question, Some(edns), ours)
                .map_or(Outcome::Drop, |w| w.finish_empty(RCODE_BADVERS, false));
        }
    }
    let found = if question.qclass == CLASS_IN {
        zone.lookup(
            &question.lower[..question.lower_len],
            &question.starts[..question.labels],
        )
    } else {
        None
    };
    let Some(found) = found else {
        return Outcome::Forward {
            max_response: u16::try_from(limit).unwrap_or(u16::MAX),
        };
    };
    match Writer::new(query, out, limit, &question, edns, ours) {
        Some(writer) => writer.finish_owned(zone, &question, found),
        None => Outcome::Drop,
    }
}

/// Parses the question into `question` (written in place: the struct is ~400 bytes, and
/// returning it by value cost a copy per query) and the OPT record, skipping any
/// answer/authority records a client put in.
fn parse(query: &[u8], question: &mut Question) -> Result<Option<Edns>, Malformed> {
    // Walk the labels for their offsets, then copy the whole name and fold its case at once:
    // length bytes are at most 63, below b'A', so folding leaves them alone.
    let mut pos = HEADER_LEN;
    loop {
        let len = usize::from(*query.get(pos).ok_or(Malformed)?);
        if len == 0 {
            break;
        }
        // Compression pointers (0xC0) and the reserved label types (0x40, 0x80): the question is
        // the first name in the message, so a pointer could only point into the header.
        if len > 63 {
            return Err(Malformed);
        }
        let at = pos - HEADER_LEN;
        // Room for this label plus the root label (RFC 1035 section 2.3.4: 255 bytes in all).
        if at + 1 + len + 1 > MAX_NAME_WIRE_LEN {
            return Err(Malformed);
        }
        question.starts[question.labels] = at as u8;
        question.labels += 1;
        pos += 1 + len;
    }
    // `pos` is the root label, read above: the name is all there.
    pos += 1;
    let name = query.get(HEADER_LEN..pos).ok_or(Malformed)?;
    let lower = question.lower.get_mut(..name.len()).ok_or(Malformed)?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    question.lower_len = name.len();
    let fixed = query.get(pos..pos + 4).ok_or(Malformed)?;
    question.qtype = read_u16(fixed, 0);
    question.qclass = read_u16(fixed, 2);
    pos += 4;
    question.end = pos;

    let skipped = usize::from(read_u16(query, 6)) + usize::from(read_u16(query, 8));
    for _ in 0..skipped {
        pos = skip_name(query, pos)?;
        let rdlen = usize::from(read_u16(query.get(pos..pos + 10).ok_or(Malformed)?, 8));
        pos += 10 + rdlen;
    }
    let mut edns = None;
    for _ in 0..read_u16(query, 10) {
        let root_owner = query.get(pos) == Some(&0);
        pos = skip_name(query, pos)?;
        let fixed = query.get(pos..pos + 10).ok_or(Malformed)?;
        let rdlen = usize::from(read_u16(fixed, 8));
        if read_u16(fixed, 0) == TYPE_OPT {
            // RFC 6891 section 6.1.1: one OPT at most, owned by the root.
            if edns.is_some() || !root_owner {
                return Err(Malformed);
            }
            edns = Some(Edns {
                udp_size: read_u16(fixed, 2),
                version: fixed[5],
                dnssec_ok: read_u16(fixed, 6) & EDNS_DO != 0,
            });
            // Options are walked only to check their lengths; unknown ones are ignored
            // (RFC 6891 section 6.1.2).
            let mut option = pos + 10;
            let options_end = option + rdlen;
            while option < options_end {
                let header = query.get(option..option + 4).ok_or(Malformed)?;
                option += 4 + usize::from(read_u16(header, 2));
            }
            if option != options_end {
                return Err(Malformed);
            }
        }
        pos += 10 + rdlen;
    }
    if pos > query.len() {
        return Err(Malformed);
    }
    Ok(edns)
}

/// Steps over a possibly compressed name in a record we do not read.
fn skip_name(msg: &[u8], mut pos: usize) -> Result<usize, Malformed> {
    loop {
        let len = *msg.get(pos).ok_or(Malformed)?;
        match len & 0xC0 {
            0x00 if len == 0 => return Ok(pos + 1),
            0x00 => pos += 1 + usize::from(len),
            0xC0 => {
                return if pos + 2 <= msg.len() {
                    Ok(pos + 2)
                } else {
                    Err(Malformed)
                }
            }
            _ => return Err(Malformed),
        }
    }
}

/// FORMERR or NOTIMP for a query whose question cannot be read: the header alone, counts zero.
fn header_only(query: &[u8], out: &mut [u8], rcode: u8) -> Outcome {
    let Some(header) = out.get_mut(..HEADER_LEN) else {
        return Outcome::Drop;
    };
    let flags = read_u16(query, 2);
    let flags = FLAG_QR | (flags & (OPCODE_MASK | FLAG_RD | FLAG_CD)) | FLAG_RA | u16::from(rcode);
    header[..2].copy_from_slice(&query[..2]);
    header[2..4].copy_from_slice(&flags.to_be_bytes());
    header[4..].fill(0);
    Outcome::Respond(HEADER_LEN)
}

/// Writes one response: header, the echoed question, records, OPT.
struct Writer<'a> {
    out: &'a mut [u8],
    pos: usize,
    /// Bytes available for answer and authority records (OPT already reserved).
    records_limit: usize,
    flags: u16,
    edns: Option<Edns>,
    our_udp_size: u16,
}

impl<'a> Writer<'a> {
    /// Copies the header fields and the question verbatim, which preserves the client's case
    /// (RFC 4343 section 4.1). `None` when even that does not fit the buffer.
    fn new(
        query: &[u8],
        out: &'a mut [u8],
        limit: usize,
        question: &Question,
        edns: Option<Edns>,
        our_udp_size: u16,
    ) -> Option<Self> {
        let limit = limit.min(out.len());
        let opt_len = if edns.is_some() { OPT_RR_LEN } else { 0 };
        if question.end + opt_len > limit {
            return None;
        }
        out[..2].copy_from_slice(&query[..2]);
        out[4..6].copy_from_slice(&1u16.to_be_bytes());
        out[HEADER_LEN..question.end].copy_from_slice(&query[HEADER_LEN..question.end]);
        let flags = FLAG_QR | (read_u16(query, 2) & (OPCODE_MASK | FLAG_RD | FLAG_CD)) | FLAG_RA;
        Some(Writer {
            out,
            pos: question.end,
            records_limit: limit - opt_len,
            flags,
            edns,
            our_udp_size,
        })
    }

    /// Question (and OPT) only: NODATA, NOTIMP, BADVERS, or a truncated response.
    fn finish_empty(mut self, rcode: u16, authoritative: bool) -> Outcome {
        if authoritative {
            self.flags |= FLAG_AA;
        }
        self.finish(rcode, 0, 0)
    }

    fn finish(mut self, rcode: u16, ancount: u16, nscount: u16) -> Outcome {
        let mut arcount: u16 = 0;
        if let Some(edns) = self.edns {
            let opt = &mut self.out[self.pos..self.pos + OPT_RR_LEN];
            opt[0] = 0;
            opt[1..3].copy_from_slice(&TYPE_OPT.to_be_bytes());
            opt[3..5].copy_from_slice(&self.our_udp_size.to_be_bytes());
            opt[5] = (rcode >> 4) as u8;
            opt[6] = 0;
            let do_flag = if edns.dnssec_ok { EDNS_DO } else { 0 };
            opt[7..9].copy_from_slice(&do_flag.to_be_bytes());
            opt[9..11].fill(0);
            self.pos += OPT_RR_LEN;
            arcount = 1;
        }
        let flags = self.flags | (rcode & 0x000F);
        self.out[2..4].copy_from_slice(&flags.to_be_bytes());
        self.out[6..8].copy_from_slice(&ancount.to_be_bytes());
        self.out[8..10].copy_from_slice(&nscount.to_be_bytes());
        self.out[10..12].copy_from_slice(&arcount.to_be_bytes());
        Outcome::Respond(self.pos)
    }

    /// Appends one record whose owner is the question name (pointer to offset 12). Returns false,
    /// writing nothing, when it does not fit.
    fn record(&mut self, owner: u16, rtype: u16, ttl: u32, rdata: &[&[u8]]) -> bool {
        let rdlen: usize = rdata.iter().map(|part| part.len()).sum();
        let end = self.pos + 12 + rdlen;
        if end > self.records_limit {
            return false;
        }
        let rr = &mut self.out[self.pos..end];
        rr[0..2].copy_from_slice(&(0xC000 | owner).to_be_bytes());
        rr[2..4].copy_from_slice(&rtype.to_be_bytes());
        rr[4..6].copy_from_slice(&CLASS_IN.to_be_bytes());
        rr[6..10].copy_from_slice(&ttl.to_be_bytes());
        rr[10..12].copy_from_slice(&(rdlen as u16).to_be_bytes());
        let mut at = 12;
        for part in rdata {
            rr[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        self.pos = end;
        true
    }

    fn finish_owned(mut self, zone: &ClusterZone, question: &Question, found: Found) -> Outcome {
        self.flags |= FLAG_AA;
        let ttl = zone.ttl();
        let records = found.records;
        let qtype = question.qtype;
        let question_name = HEADER_LEN as u16;
        let mut ancount: u16 = 0;
        let mut fits = true;
        let mut add = |writer: &mut Self, rtype: u16, rdata: &[&[u8]]| {
            if fits && writer.record(question_name, rtype, ttl, rdata) {
                ancount += 1;
            } else {
                fits = false;
            }
        };
        if qtype == TYPE_A || qtype == TYPE_ANY {
            for addr in &records.a {
                add(&mut self, TYPE_A, &[&addr.octets()]);
            }
        }
        if qtype == TYPE_AAAA || qtype == TYPE_ANY {
            for addr in &records.aaaa {
                add(&mut self, TYPE_AAAA, &[&addr.octets()]);
            }
        }
        if qtype == TYPE_PTR || qtype == TYPE_ANY {
            for target in &records.ptr {
                add(&mut self, TYPE_PTR, &[target]);
            }
        }
        if !fits {
            // RFC 2181 section 9: a partial RRset must not be cached, so send none of it and set
            // TC; the client retries over TCP.
            self.pos = question.end;
            self.flags |= FLAG_TC;
            return self.finish(u16::from(RCODE_NOERROR), 0, 0);
        }
        let mut nscount = 0;
        if ancount == 0 {
            if let Some(domain_labels) = found.cluster_domain_labels {
                // The SOA owner and the names inside it point at the cluster domain as the client
                // spelled it in the question.
                let domain_at = question.starts[question.labels - domain_labels];
                let domain = HEADER_LEN as u16 + u16::from(domain_at);
                let pointer = (0xC000 | domain).to_be_bytes();
                let mut timers = [0u8; 20];
                for (slot, value) in
                    timers
                        .chunks_exact_mut(4)
                        .zip([1, SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, ttl])
                {
                    slot.copy_from_slice(&value.to_be_bytes());
                }
                let soa: [&[u8]; 5] = [b"\x04vipd", &pointer, b"\x0ahostmaster", &pointer, &timers];
                // Without room for the SOA the NODATA answer is still correct, just not cacheable.
                if self.record(domain, TYPE_SOA, ttl, &soa) {
                    nscount = 1;
                }
            }
        }
        self.finish(u16::from(RCODE_NOERROR), ancount, nscount)
    }
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

/// The QTYPE of a message's first question, for metrics; `None` when it cannot be read.
pub fn question_type(msg: &[u8]) -> Option<u16> {
    if msg.len() < HEADER_LEN || read_u16(msg, 4) == 0 {
        return None;
    }
    let mut pos = HEADER_LEN;
    loop {
        let len = *msg.get(pos)?;
        match len {
            0 => break,
            1..=63 => pos += 1 + usize::from(len),
            _ => return None,
        }
    }
    let fixed = msg.get(pos + 1..pos + 3)?;
    Some(read_u16(fixed, 0))
}

/// The header RCODE (low 4 bits) of a message; `None` for fewer than 12 bytes.
pub fn header_rcode(msg: &[u8]) -> Option<u8> {
    (msg.len() >= HEADER_LEN).then(|| msg[3] & 0x0F)
}

/// Whether the TC bit is set.
pub fn is_truncated(msg: &[u8]) -> bool {
    msg.len() >= HEADER_LEN && read_u16(msg, 2) & FLAG_TC != 0
}
