//! The zone answer builder against hickory's parser, on structured queries: names near the
//! zone's (api, api-int, *.apps, node names, reverse names, case and label variations, foreign
//! names), any type and class, opcodes, header bits, EDNS with any size, version, DO and options.
//!
//! Checks: every reply parses with hickory, has the query's ID, fits the transport's limit and
//! answers the question asked with exactly the zone's records (vipd_fuzz::check_reply); a name
//! the zone holds is never forwarded; only plain (opcode QUERY, EDNS version 0) queries are.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vipd_dns::answer::{answer, Outcome, Transport, MAX_TCP_SIZE, MIN_UDP_SIZE};
use vipd_dns::zone::ClusterZone;

fn zone() -> &'static ClusterZone {
    static ZONE: OnceLock<ClusterZone> = OnceLock::new();
    ZONE.get_or_init(vipd_fuzz::zone)
}

const NAMES: [&str; 12] = [
    "api.ostest.test.metalkube.org",
    "api-int.ostest.test.metalkube.org",
    "console-openshift-console.apps.ostest.test.metalkube.org",
    "apps.ostest.test.metalkube.org",
    "master-0",
    "master-0.ostest.test.metalkube.org",
    "worker-0",
    "ostest.test.metalkube.org",
    "10.2.0.192.in-addr.arpa",
    "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    "example.org",
    "",
];

#[derive(Debug, Arbitrary)]
struct Input {
    id: u16,
    name: u8,
    /// Extra labels in front of the name (wildcards, deeper names).
    prefix: Vec<Vec<u8>>,
    /// Bit i flips the letter case of byte i of the name.
    case: u64,
    qtype: u16,
    common_type: Option<u8>,
    qclass: Option<u16>,
    opcode: u8,
    flags: u16,
    edns: Option<Edns>,
    tcp: bool,
    max_udp_size: u16,
    /// Records a client put in the answer/authority sections.
    junk_records: u8,
}

#[derive(Debug, Arbitrary)]
struct Edns {
    udp_size: u16,
    version: u8,
    dnssec_ok: bool,
    options: Vec<(u16, Vec<u8>)>,
}

fn build(input: &Input) -> Vec<u8> {
    let mut name: Vec<u8> = Vec::new();
    for label in input.prefix.iter().take(4) {
        let label = &label[..label.len().min(63)];
        if !label.is_empty() {
            name.push(label.len() as u8);
            name.extend_from_slice(label);
        }
    }
    for label in NAMES[usize::from(input.name) % NAMES.len()]
        .split('.')
        .filter(|l| !l.is_empty())
    {
        name.push(label.len() as u8);
        name.extend_from_slice(label.as_bytes());
    }
    for (i, b) in name.iter_mut().enumerate().take(64) {
        if input.case & (1 << i) != 0 && b.is_ascii_alphabetic() {
            *b ^= 0x20;
        }
    }
    name.push(0);
    let qtype = match input.common_type {
        Some(t) => [1u16, 28, 12, 255, 6, 16, 5, 2][usize::from(t) % 8],
        None => input.qtype,
    };
    let mut msg = Vec::new();
    msg.extend_from_slice(&input.id.to_be_bytes());
    let flags = (input.flags & !0xf800) | (u16::from(input.opcode % 16) << 11);
    let flags = if input.opcode >= 16 {
        flags & !0x7800
    } else {
        flags
    };
    msg.extend_from_slice(&flags.to_be_bytes());
    let junk = input.junk_records % 3;
    msg.extend_from_slice(&1u16.to_be_bytes());
    msg.extend_from_slice(&u16::from(junk).to_be_bytes());
    msg.extend_from_slice(&0u16.to_be_bytes());
    msg.extend_from_slice(&u16::from(input.edns.is_some()).to_be_bytes());
    msg.extend_from_slice(&name);
    msg.extend_from_slice(&qtype.to_be_bytes());
    msg.extend_from_slice(&input.qclass.unwrap_or(1).to_be_bytes());
    for _ in 0..junk {
        // A compressed owner pointing at the question, type A, class IN, TTL 1, 4 bytes.
        msg.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 192, 0, 2, 1]);
    }
    if let Some(edns) = &input.edns {
        msg.push(0);
        msg.extend_from_slice(&41u16.to_be_bytes());
        msg.extend_from_slice(&edns.udp_size.to_be_bytes());
        msg.push(0);
        msg.push(edns.version);
        msg.extend_from_slice(&(if edns.dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
        let mut rdata = Vec::new();
        for (code, data) in edns.options.iter().take(4) {
            let data = &data[..data.len().min(64)];
            rdata.extend_from_slice(&code.to_be_bytes());
            rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
            rdata.extend_from_slice(data);
        }
        msg.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        msg.extend_from_slice(&rdata);
    }
    msg
}

fuzz_target!(|input: Input| {
    let query = build(&input);
    let max_udp_size = input
        .max_udp_size
        .clamp(MIN_UDP_SIZE, vipd_dns::server::UDP_RESPONSE_BUFFER as u16);
    let (transport, limit) = if input.tcp {
        (Transport::Tcp, MAX_TCP_SIZE)
    } else {
        let limit = match &input.edns {
            Some(e) => e.udp_size.clamp(MIN_UDP_SIZE, max_udp_size),
            None => MIN_UDP_SIZE,
        };
        (Transport::Udp, usize::from(limit))
    };
    let mut out = vec![0u8; limit.max(usize::from(max_udp_size))];
    let outcome = answer(zone(), &query, &mut out, transport, max_udp_size);
    let plain = input.opcode % 16 == 0 || input.opcode >= 16;
    let plain = plain && input.edns.as_ref().is_none_or(|e| e.version == 0);
    let in_class = input.qclass.unwrap_or(1) == 1;
    match outcome {
        Outcome::Respond(n) => vipd_fuzz::check_reply(zone(), &query, &out[..n], limit),
        Outcome::Forward { max_response } => {
            // A class other than IN is never ours (forwarded, as CoreDNS does).
            assert!(
                plain,
                "a non-QUERY or EDNS>0 query was forwarded: {query:02x?}"
            );
            if in_class {
                let name_ok = vipd_fuzz::owned_name(zone(), &query);
                assert!(
                    !name_ok,
                    "a name the zone holds was forwarded: {query:02x?}"
                );
            }
            assert!(usize::from(max_response) <= limit.max(usize::from(MIN_UDP_SIZE)) || input.tcp);
        }
        Outcome::Drop => panic!("a well-formed query was dropped: {query:02x?}"),
    }
});
