//! The forwarder's handling of an upstream reply (vipd_dns::forward::fuzzing::upstream_reply:
//! the receive task's match, TC=1 handling, layout walk, rcode policy, TTL cap, cache, fitting
//! to the client). Replies are raw bytes or built from the query and then damaged: wrong ID,
//! wrong question, truncated, oversized (many records), compression loops, flipped bytes.
//!
//! Checks: no panic; the client always gets an answer with its own ID and QR=1, within its UDP
//! limit; a reply with the wrong ID or question is never relayed (the client gets vipd's own
//! SERVFAIL); a cached copy served later has the same length and the client's ID.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vipd_dns::forward::fuzzing::{forwarder, upstream_reply};
use vipd_dns::forward::{ClientTransport, Forwarder};

fn fwd() -> &'static Forwarder {
    static F: OnceLock<Forwarder> = OnceLock::new();
    F.get_or_init(forwarder)
}

#[derive(Debug, Arbitrary)]
struct Record {
    /// 0: pointer to the question name; 1: pointer to itself (loop); 2: root; else raw labels.
    owner: u8,
    raw_owner: Vec<u8>,
    rtype: u16,
    ttl: u32,
    rdata: Vec<u8>,
    /// SOA-shaped RDATA (for negative caching) instead of `rdata`.
    soa_minimum: Option<u32>,
}

#[derive(Debug, Arbitrary)]
enum Reply {
    Raw(Vec<u8>),
    Built {
        wrong_id: bool,
        /// Changes one byte of the echoed question.
        wrong_question: Option<(u8, u8)>,
        flags: u16,
        answers: Vec<Record>,
        authority: Vec<Record>,
        additional: Vec<Record>,
        /// Repeats the answer records this many times (oversized replies).
        repeat: u8,
        cut: Option<u16>,
        flips: Vec<(u16, u8)>,
    },
}

#[derive(Debug, Arbitrary)]
struct Input {
    client_id: u16,
    sent_id: u16,
    name: Vec<u8>,
    qtype: u16,
    edns: Option<(u16, bool)>,
    /// Raw query instead of the built one.
    raw_query: Option<Vec<u8>>,
    tcp: bool,
    max_response: u16,
    age_s: u8,
    reply: Reply,
}

fn query(input: &Input) -> Vec<u8> {
    if let Some(raw) = &input.raw_query {
        return raw.clone();
    }
    let mut q = Vec::new();
    q.extend_from_slice(&input.client_id.to_be_bytes());
    q.extend_from_slice(&[
        0x01,
        0x00,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        u8::from(input.edns.is_some()),
    ]);
    for label in input.name.split(|&b| b == b'.').take(8) {
        let label = &label[..label.len().min(63)];
        if !label.is_empty() {
            q.push(label.len() as u8);
            q.extend_from_slice(label);
        }
    }
    q.push(0);
    q.extend_from_slice(&input.qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    if let Some((size, dnssec_ok)) = input.edns {
        q.extend_from_slice(&[0, 0, 41]);
        q.extend_from_slice(&size.to_be_bytes());
        q.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
    }
    q
}

fn push_record(out: &mut Vec<u8>, r: &Record) {
    let here = out.len();
    match r.owner % 4 {
        0 => out.extend_from_slice(&[0xc0, 12]),
        1 => out.extend_from_slice(&[0xc0 | ((here >> 8) as u8 & 0x3f), here as u8]),
        2 => out.push(0),
        _ => out.extend_from_slice(&r.raw_owner[..r.raw_owner.len().min(64)]),
    }
    out.extend_from_slice(&r.rtype.to_be_bytes());
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&r.ttl.to_be_bytes());
    let rdata = match r.soa_minimum {
        Some(min) => {
            let mut d = vec![0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            d.extend_from_slice(&min.to_be_bytes());
            d
        }
        None => r.rdata[..r.rdata.len().min(512)].to_vec(),
    };
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
}

fn reply(input: &Input, query: &[u8]) -> Vec<u8> {
    match &input.reply {
        Reply::Raw(bytes) => bytes.clone(),
        Reply::Built {
            wrong_id,
            wrong_question,
            flags,
            answers,
            authority,
            additional,
            repeat,
            cut,
            flips,
        } => {
            let end = vipd_dns_question_end(query).unwrap_or(query.len().min(12));
            let mut out = query[..end].to_vec();
            if out.len() < 12 {
                return out;
            }
            let id = if *wrong_id {
                input.sent_id.wrapping_add(1)
            } else {
                input.sent_id
            };
            out[..2].copy_from_slice(&id.to_be_bytes());
            out[2..4].copy_from_slice(&(flags | 0x8000).to_be_bytes());
            if let Some((at, value)) = wrong_question {
                if end > 12 {
                    let i = 12 + usize::from(*at) % (end - 12);
                    out[i] ^= value | 1;
                }
            }
            let reps = usize::from(*repeat % 64) + 1;
            let counts = [answers.len() * reps, authority.len(), additional.len()];
            for (i, c) in counts.iter().enumerate() {
                out[6 + 2 * i..8 + 2 * i].copy_from_slice(&(*c as u16).to_be_bytes());
            }
            for _ in 0..reps {
                for r in answers.iter().take(8) {
                    push_record(&mut out, r);
                }
            }
            for r in authority.iter().take(8).chain(additional.iter().take(8)) {
                push_record(&mut out, r);
            }
            for (at, value) in flips.iter().take(8) {
                let len = out.len();
                out[usize::from(*at) % len] ^= value;
            }
            if let Some(cut) = cut {
                out.truncate(usize::from(*cut));
            }
            out.truncate(65_507);
            out
        }
    }
}

/// End of the question of a well-formed one-question query.
fn vipd_dns_question_end(q: &[u8]) -> Option<usize> {
    let mut at = 12;
    loop {
        let len = usize::from(*q.get(at)?);
        if len == 0 {
            return (at + 5 <= q.len()).then_some(at + 5);
        }
        if len & 0xc0 != 0 {
            return None;
        }
        at += 1 + len;
    }
}

fuzz_target!(|input: Input| {
    let query = query(&input);
    let reply = reply(&input, &query);
    let transport = if input.tcp {
        ClientTransport::Tcp
    } else {
        ClientTransport::Udp {
            max_response: input.max_response,
        }
    };
    let age = Duration::from_secs(input.age_s.into());
    let relayed = upstream_reply(fwd(), &query, input.sent_id, &reply, transport, age);
    if query.len() < 12 || query[2] & 0x80 != 0 {
        assert!(relayed.response.is_empty(), "answered a response or a runt");
        return;
    }
    for response in std::iter::once(&relayed.response).chain(relayed.cached.as_ref()) {
        assert!(
            response.len() >= 12,
            "short answer to the client: {response:02x?}"
        );
        assert_eq!(
            response[..2],
            query[..2],
            "answer with another ID than the client's"
        );
        assert!(response[2] & 0x80 != 0, "answer without QR");
        if !input.tcp {
            let limit = usize::from(input.max_response.max(512));
            assert!(
                response.len() <= limit,
                "{} bytes over a {limit} UDP limit",
                response.len()
            );
        }
    }
    let id_ok = reply.len() >= 12 && reply[..2] == input.sent_id.to_be_bytes();
    if !id_ok {
        assert!(!relayed.accepted, "a reply with the wrong ID was accepted");
    }
    if !relayed.accepted && relayed.response.len() >= 4 && relayed.response != reply {
        // Not relayed: vipd's own SERVFAIL / FORMERR, or the upstream's error rcode.
        let rcode = relayed.response[3] & 0x0f;
        assert!(
            matches!(rcode, 1 | 2 | 5),
            "unaccepted reply answered with rcode {rcode}"
        );
    }
    if let Some(cached) = &relayed.cached {
        assert_eq!(
            cached.len(),
            relayed.response.len(),
            "cached copy differs in length"
        );
    }
});
