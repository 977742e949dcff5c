//! Shared pieces of the fuzz targets: the test cluster zone and the DNS reply oracle.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use vipd_dns::zone::{ClusterZone, Node, ZoneConfig};

/// The cluster domain of [`zone`].
pub const CD: &str = "ostest.test.metalkube.org";

/// Dual-stack zone: the same cluster as crates/dns/tests/common, with both VIP families.
pub fn zone() -> ClusterZone {
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    ClusterZone::new(&ZoneConfig {
        cluster_name: "ostest".into(),
        base_domain: "test.metalkube.org".into(),
        api_vips: vec![ip("192.0.2.5"), ip("2001:db8::5")],
        ingress_vips: vec![ip("192.0.2.6"), ip("2001:db8::6")],
        nodes: vec![
            Node {
                name: "master-0".into(),
                addresses: vec![ip("192.0.2.10"), ip("2001:db8::10")],
            },
            Node {
                name: "worker-0".into(),
                addresses: vec![ip("192.0.2.20")],
            },
        ],
        ttl: 30,
    })
    .expect("the fuzz zone is valid")
}

/// Checks a response vipd built locally for `query`, the way a client reads it:
/// - it parses with hickory, is a response, has the query's ID and is at most `limit` bytes;
/// - a question it carries is the one asked, byte for byte (letter case included);
/// - when the query is one plain question (class IN, opcode QUERY, EDNS version 0 or none)
///   for a name the zone holds, the answer section holds exactly the zone's records of the
///   asked type at that name (unless TC=1), with AA=1 and NOERROR.
pub fn check_reply(zone: &ClusterZone, query: &[u8], reply: &[u8], limit: usize) {
    assert!(
        reply.len() <= limit,
        "{} byte reply over a {limit} limit",
        reply.len()
    );
    assert!(reply.len() >= 12, "reply shorter than a header");
    assert_eq!(reply[..2], query[..2], "reply ID differs from the query's");
    let response = Message::from_vec(reply)
        .unwrap_or_else(|e| panic!("reply does not parse ({e}): {reply:02x?} to {query:02x?}"));
    assert_eq!(response.metadata.message_type, MessageType::Response);
    let Ok(request) = Message::from_vec(query) else {
        return;
    };
    if let Some(q) = response.queries.first() {
        assert_eq!(response.queries.len(), 1);
        let asked = request
            .queries
            .first()
            .expect("reply has a question the query lacks");
        assert!(
            q.name.eq_case(&asked.name),
            "question {q:?} is not the asked {asked:?}"
        );
        assert_eq!(q.query_type, asked.query_type);
        assert_eq!(q.query_class, asked.query_class);
    }
    if request.queries.len() != 1
        || u16::from(request.queries[0].query_class) != 1
        || request.metadata.op_code != hickory_proto::op::OpCode::Query
        || request.edns.as_ref().is_some_and(|e| e.version() != 0)
        || response.metadata.truncation
    {
        return;
    }
    let asked = &request.queries[0];
    let text = asked.name.to_ascii();
    // Only plain hostname labels: to_ascii escapes anything else, which lookup_text does not read.
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return;
    }
    let Some(set) = zone.lookup_text(&text) else {
        return;
    };
    if response.metadata.response_code == ResponseCode::FormErr {
        // vipd is stricter than hickory's reader, which skips bytes after the last record and
        // keeps a cut EDNS option: FORMERR is right for such a query. A query hickory reads
        // completely (re-encodes to as many bytes) must not get it.
        let strict = request.to_vec().is_ok_and(|v| v.len() == query.len());
        assert!(!strict, "FORMERR for a well-formed query {query:02x?}");
        return;
    }
    assert_eq!(
        response.metadata.response_code,
        ResponseCode::NoError,
        "{response:?}"
    );
    assert!(
        response.metadata.authoritative,
        "owned name answered without AA"
    );
    let qtype = asked.query_type;
    let mut a = Vec::new();
    let mut aaaa = Vec::new();
    let mut ptr = Vec::new();
    for record in &response.answers {
        assert!(
            record.name.to_lowercase() == asked.name.to_lowercase(),
            "answer for {} to a question for {}",
            record.name,
            asked.name
        );
        match &record.data {
            RData::A(x) => a.push(x.0),
            RData::AAAA(x) => aaaa.push(x.0),
            RData::PTR(x) => ptr.push(x.0.to_lowercase().to_ascii()),
            other => panic!("unexpected answer record {other:?}"),
        }
    }
    let any = qtype == RecordType::ANY;
    let want = |t: RecordType| any || qtype == t;
    let mut want_a = if want(RecordType::A) {
        set.a.clone()
    } else {
        Vec::new()
    };
    let mut want_aaaa = if want(RecordType::AAAA) {
        set.aaaa.clone()
    } else {
        Vec::new()
    };
    let mut want_ptr: Vec<String> = if want(RecordType::PTR) {
        set.ptr.iter().map(|w| wire_to_text(w)).collect()
    } else {
        Vec::new()
    };
    for v in [&mut a, &mut want_a] {
        v.sort();
    }
    for v in [&mut aaaa, &mut want_aaaa] {
        v.sort();
    }
    for v in [&mut ptr, &mut want_ptr] {
        v.sort();
    }
    assert_eq!(a, want_a, "A records for {text}");
    assert_eq!(aaaa, want_aaaa, "AAAA records for {text}");
    assert_eq!(ptr, want_ptr, "PTR records for {text}");
}

/// `\x01a\x02bc\x00` -> `a.bc.` (hickory's fully qualified spelling).
fn wire_to_text(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut at = 0;
    while at < wire.len() && wire[at] != 0 {
        let len = usize::from(wire[at]);
        out.push_str(&String::from_utf8_lossy(&wire[at + 1..at + 1 + len]));
        out.push('.');
        at += len + 1;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// True when hickory reads `query` as one question for a plain hostname the zone holds.
pub fn owned_name(zone: &ClusterZone, query: &[u8]) -> bool {
    let Ok(request) = Message::from_vec(query) else {
        return false;
    };
    let [asked] = request.queries.as_slice() else {
        return false;
    };
    let text = asked.name.to_ascii();
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        && zone.lookup_text(&text).is_some()
}
