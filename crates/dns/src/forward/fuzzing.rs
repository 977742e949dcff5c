//! Entry point for fuzz/fuzz_targets/dns_forward_reply.rs, not an API: the forwarder's handling
//! of one upstream reply without sockets. It runs the same functions, in the same order, as
//! [`Forwarder::forward`] and `resolve` do between the upstream socket and the client: the
//! receive task's ID + question match (`dispatch`), the TC=1 branches, the layout walk, the
//! rcode policy, TTL capping, the cache (insert, then a hit served to a second client), and
//! fitting the answer to the client's transport.

use std::time::{Duration, Instant};

use super::cache::{cacheable_ttl, CacheKey};
use super::tcp::tcp_answer_matches;
use super::upstream::dispatch_to_one;
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
    let upstream_limit = outgoing(forwarder, query, &layout, transport, sent_id);
    let exchange = Exchange {
        forwarder,
        query,
        layout: &layout,
        transport,
    };
    match exchange.answer(reply, sent_id, upstream_limit) {
        Ok(answer) => exchange.relay(answer, age),
        Err(relayed) => relayed,
    }
}

/// resolve(): the query as sent upstream (the client's OPT size clamped, a fresh ID); returns
/// the size the upstream may answer over UDP.
fn outgoing(
    forwarder: &Forwarder,
    query: &[u8],
    layout: &Layout,
    transport: ClientTransport,
    sent_id: u16,
) -> u16 {
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
    upstream_limit
}

/// One client query on its way through the forwarder.
struct Exchange<'a> {
    forwarder: &'a Forwarder,
    query: &'a [u8],
    layout: &'a Layout,
    transport: ClientTransport,
}

impl Exchange<'_> {
    fn servfail(&self) -> Relayed {
        Relayed {
            response: self
                .forwarder
                .servfail(self.query, self.layout, self.transport),
            accepted: false,
            cached: None,
        }
    }

    /// The receive task's match, then resolve()'s TC=1 branches: the answer to walk, or what
    /// the client gets without one (vipd's SERVFAIL, or header + question with TC=1).
    fn answer(&self, reply: &[u8], sent_id: u16, upstream_limit: u16) -> Result<Vec<u8>, Relayed> {
        let question = &self.layout.question;
        let Some(answer) = dispatch_to_one(reply, sent_id, question, &self.forwarder.counters)
        else {
            // Unmatched: dropped and counted; the query times out and gets SERVFAIL.
            return Err(self.servfail());
        };
        if !wire::is_truncated(&answer) {
            return Ok(answer);
        }
        match self.transport {
            ClientTransport::Udp { max_response } if upstream_limit >= max_response => {
                match self.forwarder.too_large_for_client(&answer, max_response) {
                    super::Outcome::TooLargeForClient(mut response) => {
                        wire::set_id(&mut response, wire::id(self.query));
                        Err(Relayed {
                            response,
                            accepted: true,
                            cached: None,
                        })
                    }
                    _ => Err(self.servfail()),
                }
            }
            // The TCP retry: the same bytes as its answer.
            _ => match tcp_answer_matches(reply, sent_id, question) {
                Ok(true) => Ok(reply.to_vec()),
                _ => Err(self.servfail()),
            },
        }
    }

    /// The layout walk and rcode policy, then forward()'s Outcome::Answer: TTLs capped, cached,
    /// fitted to the client; and a second client's identical query `age` later, from the cache.
    fn relay(&self, answer: Vec<u8>, age: Duration) -> Relayed {
        let forwarder = self.forwarder;
        let Ok(answer_layout) = Layout::parse(&answer) else {
            return self.servfail();
        };
        let client_id = wire::id(self.query);
        let mut response = answer;
        let rcode = wire::rcode(&response);
        if rcode == wire::RCODE_SERVFAIL || rcode == wire::RCODE_REFUSED {
            // Failed(Some): the last error answer is relayed.
            wire::set_id(&mut response, client_id);
            return Relayed {
                response: forwarder.fit(
                    response,
                    answer_layout.question_end,
                    answer_layout.opt.as_ref(),
                    self.transport,
                ),
                accepted: false,
                cached: None,
            };
        }
        let key = super::cache_key(self.query, self.layout);
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
        Relayed {
            response: forwarder.fit(
                response,
                answer_layout.question_end,
                answer_layout.opt.as_ref(),
                self.transport,
            ),
            accepted: true,
            cached: cached.and_then(|_| self.second_client(&key, now + age)),
        }
    }

    /// forward(): a cache hit for the same question from another client, at `at`.
    fn second_client(&self, key: &CacheKey, at: Instant) -> Option<Vec<u8>> {
        let hit = self.forwarder.cache.get(key, at)?;
        Some(
            self.forwarder
                .answer_from_cache(self.query, self.layout, &hit, self.transport),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UDP: ClientTransport = ClientTransport::Udp { max_response: 512 };

    /// `a.example. A IN`, ID 0x1234, RD.
    fn query() -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x01a\x07example\x00\x00\x01\x00\x01");
        q
    }

    /// The upstream's answer to `query()` sent with ID 0x0777: `flags`, one A record, TTL 300.
    fn reply(flags: [u8; 2], records: u16) -> Vec<u8> {
        let mut r = query();
        r[..4].copy_from_slice(&[0x07, 0x77, flags[0], flags[1]]);
        r[6..8].copy_from_slice(&records.to_be_bytes());
        for _ in 0..records {
            r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1]);
        }
        r
    }

    fn relay(reply: &[u8], transport: ClientTransport) -> Relayed {
        upstream_reply(
            &forwarder(),
            &query(),
            0x0777,
            reply,
            transport,
            Duration::from_secs(2),
        )
    }

    #[test]
    fn a_matching_answer_is_relayed_capped_and_served_from_the_cache() {
        let got = relay(&reply([0x81, 0x80], 1), UDP);
        assert!(got.accepted);
        assert_eq!(got.response[..2], [0x12, 0x34]);
        assert_eq!(
            got.response[got.response.len() - 10..][..4],
            30u32.to_be_bytes()
        );
        let cached = got.cached.unwrap();
        assert_eq!(cached.len(), got.response.len());
        assert_eq!(cached[..2], [0x12, 0x34]);
        assert_eq!(cached[cached.len() - 10..][..4], 28u32.to_be_bytes());
    }

    #[test]
    fn a_wrong_id_gets_our_servfail_and_an_error_rcode_is_relayed_uncached() {
        let mut wrong = reply([0x81, 0x80], 1);
        wrong[1] ^= 1;
        let got = relay(&wrong, UDP);
        assert!(!got.accepted);
        assert_eq!(
            (&got.response[..2], got.response[3] & 0x0f),
            (&[0x12u8, 0x34][..], 2)
        );
        let got = relay(&reply([0x81, 0x85], 0), UDP);
        assert!(!got.accepted && got.cached.is_none());
        assert_eq!(
            (&got.response[..2], got.response[3] & 0x0f),
            (&[0x12u8, 0x34][..], 5)
        );
    }

    #[test]
    fn a_truncated_answer_is_cut_for_udp_and_taken_over_tcp() {
        let got = relay(&reply([0x83, 0x80], 1), UDP);
        assert!(got.accepted);
        assert_eq!(got.response.len(), query().len());
        assert_eq!(got.response[2] & 0x02, 0x02);
        let got = relay(&reply([0x83, 0x80], 1), ClientTransport::Tcp);
        assert!(got.accepted);
        assert_eq!(got.response.len(), reply([0x83, 0x80], 1).len());
        assert!(got.cached.is_none(), "TC=1 answers are not cached");
    }

    #[test]
    fn a_query_that_is_not_one_gets_nothing_or_formerr() {
        let mut response = query();
        response[2] |= 0x80;
        assert!(
            upstream_reply(&forwarder(), &response, 1, &[], UDP, Duration::ZERO)
                .response
                .is_empty()
        );
        let got = upstream_reply(&forwarder(), &query()[..15], 1, &[], UDP, Duration::ZERO);
        assert_eq!(got.response[3] & 0x0f, 1);
    }
}
