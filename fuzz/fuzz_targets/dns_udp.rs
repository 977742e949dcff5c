//! The entry of the UDP fast path on a raw datagram, as `udp_worker` runs it: the received
//! bytes (cut at the 2048-byte receive buffer) into `answer()` with an output slot of exactly
//! `max_udp_size` bytes. Byte 0..2 of the input pick `max_udp_size` (512..=4096, as the server
//! clamps it); the rest is the datagram.
//!
//! Checks: no panic; a response parses with hickory, carries the query's ID, fits the client's
//! limit (512 without EDNS, else min(client size, ours)), and answers the question asked.
//! A forwarded query is whole and ours to forward (never a response, never under 12 bytes).
#![no_main]

use std::sync::OnceLock;

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use vipd_dns::answer::{answer, Outcome, Transport, MIN_UDP_SIZE};
use vipd_dns::zone::ClusterZone;

/// server.rs UDP_QUERY_BUFFER.
const UDP_QUERY_BUFFER: usize = 2048;

fn zone() -> &'static ClusterZone {
    static ZONE: OnceLock<ClusterZone> = OnceLock::new();
    ZONE.get_or_init(vipd_fuzz::zone)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let max_udp_size = u16::from_be_bytes([data[0], data[1]])
        .clamp(MIN_UDP_SIZE, vipd_dns::server::UDP_RESPONSE_BUFFER as u16);
    let query = &data[2..data.len().min(2 + UDP_QUERY_BUFFER)];
    let mut out = [0u8; vipd_dns::server::UDP_RESPONSE_BUFFER];
    let out = &mut out[..usize::from(max_udp_size)];
    match answer(zone(), query, out, Transport::Udp, max_udp_size) {
        Outcome::Respond(n) => {
            // The client's limit, read with hickory: its EDNS size (floored at 512) capped at ours.
            let limit = match Message::from_vec(query).ok().and_then(|m| m.edns) {
                Some(edns) => edns.max_payload().clamp(MIN_UDP_SIZE, max_udp_size),
                None => MIN_UDP_SIZE,
            };
            vipd_fuzz::check_reply(zone(), query, &out[..n], usize::from(limit));
        }
        Outcome::Forward { max_response } => {
            assert!(query.len() >= 12 && query[2] & 0x80 == 0);
            assert!((MIN_UDP_SIZE..=max_udp_size).contains(&max_response));
        }
        Outcome::Drop => {}
    }
});
