//! `answer()` on hostile input: never panics, and whatever it sends parses as DNS.

mod common;

use common::{zone, Edns, Query, CD};
use hickory_proto::op::Message;
use proptest::prelude::*;
use vipd_dns::answer::{answer, Outcome, Transport};

fn check(query: &[u8], transport: Transport, max_udp: u16) {
    let mut out = vec![0u8; 65535];
    if let Outcome::Respond(len) = answer(&zone(), query, &mut out, transport, max_udp) {
        let response = &out[..len];
        if transport == Transport::Udp {
            assert!(len <= usize::from(max_udp.max(512)), "{len} bytes over UDP");
        }
        assert_eq!(
            &response[..2],
            &query[..2],
            "response ID differs from the query's"
        );
        assert!(
            Message::from_vec(response).is_ok(),
            "unparsable response {response:02x?} to {query:02x?}"
        );
    }
}

fn valid_queries() -> Vec<Vec<u8>> {
    let names = [
        format!("api.{CD}"),
        format!("a.b.apps.{CD}"),
        "master-0".to_owned(),
        "10.2.0.192.in-addr.arpa".to_owned(),
        "example.org".to_owned(),
    ];
    let mut queries = Vec::new();
    for name in &names {
        for qtype in [1u16, 28, 12, 255, 666] {
            queries.push(Query::new(name, qtype).bytes());
            queries.push(Query::new(name, qtype).edns(Edns::default()).bytes());
        }
    }
    queries
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_responses_parse(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        tcp in any::<bool>(),
    ) {
        let transport = if tcp { Transport::Tcp } else { Transport::Udp };
        check(&bytes, transport, 512);
    }

    #[test]
    fn mutated_valid_queries_never_panic_and_responses_parse(
        index in 0usize..50,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let queries = valid_queries();
        let mut query = queries[index % queries.len()].clone();
        for (at, value) in flips {
            let len = query.len();
            query[at % len] = value;
        }
        let keep = 12 + cut % (query.len() - 11);
        query.truncate(keep);
        check(&query, Transport::Udp, 1232);
    }
}
