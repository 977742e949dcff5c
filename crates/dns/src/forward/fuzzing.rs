//! Entry point for fuzz/fuzz_targets/dns_forward_reply.rs, not an API: the forwarder's handling
//! of one upstream reply without sockets. It runs the same functions, in the same order, as
//! [`Forwarder::forward`] and `resolve` do between the upstream socket and the client: the
//! receive task's ID + question match (`dispatch`), the TC=1 branches, the layout walk, the
//! rcode policy, TTL capping, the cache (insert, then a hit served to a second client), and
//! fitting the answer to the client's transport.

use std::time::{Duration, Instant};

use super::cache::{cacheable_ttl, CacheKey};
use super::upstream::{dispatch_to_one, tcp_answer_matches};
use super::wire::{self, Layout};
use super::{ClientTransport, Forwarder, ForwarderConfig, MIN_UDP_PAYLOAD};

/// What the client gets back for its query, when `reply` is the upstream's only datagram.
#[derive(Debug)]
pub struct Relayed {
    /// Bytes sent to the client (empty: nothing is sent).
    pub response: Vec<u8>,
    /// The reply was accepted as the answer to the query (ID and question matched, it walked,
    /// and its rcode is one that is relayed).
    pub accepted: bool,
    /// A second client's identical query answered from the cache, when the answer was cached.
    pub cached: Option<Vec<u8>>,
}

/// A forwarder with default settings and no upstreams, whose cache the calls below use.
pub fn forwarder() -> Forwarder {
    Forwarder::new(ForwarderConfig::default()).expect("default forwarder settings are valid")
}

/// Relays `query` as if the upstream (asked with ID `sent_id`) answered `reply` over UDP and,
/// when that has TC=1 and the client can take more, `reply` again over TCP.
/// `age` is how long after the answer the cached copy is served.
pub fn upstream_reply(
    forwarder: &Forwarder,
    query: &[u8],
    sent_id: u16,
    reply: &[u8],
    transport: ClientTransport,
    age: Duration,
) -> Relayed {
    let mut relayed = Relayed {
        response: Vec::new(),
        accepted: false,
        cached: None,
    };
    if query.len() < wire::HEADER_LEN || wire::is_response(query) {
        return relayed;
    }
    let Ok(layout) = Layout::parse(query) else {
        relayed.response = wire::error_response(
            query,
            None,
            None,
            wire::RCODE_FORMERR,
            forwarder.payload_size(transport),
        );
        return relayed;
    };
    // resolve(): the query as sent upstream.
    let mut outgoing = query.to_vec();
    let upstream_limit = match (layout.opt, transport) {
        (None, _) => MIN_UDP_PAYLOAD,
        (Some(opt), ClientTransport::Udp { max_response }) => {
            opt.payload_size.min(max_response).max(MIN_UDP_PAYLOAD)
        }
        (Some(_), ClientTransport::Tcp) => forwarder.config.upstream_udp_size,
    };
    if let Some(opt) = layout.opt {
        outgoing[opt.payload_size_offset..opt.payload_size_offset + 2]
            .copy_from_slice(&upstream_limit.to_be_bytes());
    }
    wire::set_id(&mut outgoing, sent_id);
    let client_id = wire::id(query);
    let servfail = |f: &Forwarder| f.servfail(query, &layout, transport);

    let Some(answer) = dispatch_to_one(reply, sent_id, &layout.question, &forwarder.counters)
    else {
        // Unmatched: dropped and counted; the query times out and gets SERVFAIL.
        relayed.response = servfail(forwarder);
        return relayed;
    };
    let answer = if wire::is_truncated(&answer) {
        match transport {
            ClientTransport::Udp { max_response } if upstream_limit >= max_response => {
                relayed.response = match forwarder.too_large_for_client(&answer, max_response) {
                    super::Outcome::TooLargeForClient(mut response) => {
                        relayed.accepted = true;
                        wire::set_id(&mut response, client_id);
                        response
                    }
                    _ => servfail(forwarder),
                };
                return relayed;
            }
            // The TCP retry: the same bytes as its answer.
            _ => match tcp_answer_matches(reply, sent_id, &layout.question) {
                Ok(true) => reply.to_vec(),
                _ => {
                    relayed.response = servfail(forwarder);
                    return relayed;
                }
            },
        }
    } else {
        answer
    };
    let Ok(answer_layout) = Layout::parse(&answer) else {
        relayed.response = servfail(forwarder);
        return relayed;
    };
    let mut response = answer;
    let rcode = wire::rcode(&response);
    if rcode == wire::RCODE_SERVFAIL || rcode == wire::RCODE_REFUSED {
        // Failed(Some): the last error answer is relayed.
        wire::set_id(&mut response, client_id);
        relayed.response = forwarder.fit(
            response,
            answer_layout.question_end,
            answer_layout.opt.as_ref(),
            transport,
        );
        return relayed;
    }
    relayed.accepted = true;
    // forward(): Outcome::Answer.
    let key = CacheKey {
        question: layout.question.clone(),
        edns: layout.opt.is_some(),
        dnssec_ok: layout.opt.is_some_and(|opt| opt.dnssec_ok),
        checking_disabled: wire::checking_disabled(query),
    };
    wire::cap_ttls(
        &mut response,
        &answer_layout.ttl_offsets,
        forwarder.config.max_ttl,
    );
    let now = Instant::now();
    let cached = cacheable_ttl(&response, &answer_layout, forwarder.config.max_ttl);
    if let Some(ttl) = cached {
        forwarder
            .cache
            .insert(key.clone(), &response, &answer_layout, ttl, now);
    }
    wire::set_id(&mut response, client_id);
    relayed.response = forwarder.fit(
        response,
        answer_layout.question_end,
        answer_layout.opt.as_ref(),
        transport,
    );
    // forward(): a cache hit for the same question from another client.
    if cached.is_some() {
        if let Some(hit) = forwarder.cache.get(&key, now + age) {
            let mut response = hit.bytes.to_vec();
            wire::set_id(&mut response, client_id);
            wire::copy_rd(&mut response, query);
            if hit.question_end == layout.question_end {
                response[wire::HEADER_LEN..hit.question_end]
                    .copy_from_slice(&query[wire::HEADER_LEN..layout.question_end]);
            }
            wire::age_ttls(&mut response, &hit.ttl_offsets, hit.age);
            relayed.cached =
                Some(forwarder.fit(response, hit.question_end, hit.opt.as_ref(), transport));
        }
    }
    relayed
}
