//! `answer()` as a specification: every response is parsed back with hickory-proto and its fields
//! asserted exactly.

mod common;

use common::{dual_stack_zone, ip, zone, Edns, Query, CD};
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use vipd_dns::answer::{answer, Outcome, Transport, MAX_TCP_SIZE};
use vipd_dns::zone::ClusterZone;

const A: u16 = 1;
const PTR: u16 = 12;
const AAAA: u16 = 28;
const ANY: u16 = 255;

fn respond_with(zone: &ClusterZone, query: &[u8], transport: Transport, max_udp: u16) -> Vec<u8> {
    let mut out = vec![0u8; MAX_TCP_SIZE];
    match answer(zone, query, &mut out, transport, max_udp) {
        Outcome::Respond(len) => out[..len].to_vec(),
        other => panic!("expected a local response, got {other:?}"),
    }
}

fn ask_raw(zone: &ClusterZone, query: &Query) -> Vec<u8> {
    respond_with(zone, &query.bytes(), Transport::Udp, 512)
}

fn ask(zone: &ClusterZone, query: &Query) -> Message {
    Message::from_vec(&ask_raw(zone, query)).unwrap()
}

fn outcome(zone: &ClusterZone, query: &[u8]) -> Outcome {
    let mut out = vec![0u8; 4096];
    answer(zone, query, &mut out, Transport::Udp, 512)
}

fn is_forwarded(zone: &ClusterZone, name: &str, qtype: u16) -> bool {
    matches!(
        outcome(zone, &Query::new(name, qtype).bytes()),
        Outcome::Forward { .. }
    )
}

fn addresses(msg: &Message) -> Vec<std::net::IpAddr> {
    msg.answers
        .iter()
        .map(|record| match &record.data {
            RData::A(a) => std::net::IpAddr::V4(a.0),
            RData::AAAA(aaaa) => std::net::IpAddr::V6(aaaa.0),
            other => panic!("unexpected record {other:?}"),
        })
        .collect()
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn assert_nodata(msg: &Message) {
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    assert!(msg.metadata.authoritative);
    assert!(msg.answers.is_empty());
}

#[test]
fn api_a_returns_the_api_vip_authoritatively_with_the_zone_ttl() {
    let msg = ask(&zone(), &Query::new(&format!("api.{CD}"), A));
    assert_eq!(msg.metadata.id, 0x1234);
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    assert!(msg.metadata.authoritative);
    assert!(msg.metadata.recursion_desired);
    assert!(msg.metadata.recursion_available);
    assert!(!msg.metadata.truncation);
    assert_eq!(addresses(&msg), vec![ip("192.0.2.5")]);
    let record = &msg.answers[0];
    assert_eq!(record.name, name(&format!("api.{CD}.")));
    assert_eq!(record.ttl, 30);
    assert_eq!(record.dns_class, DNSClass::IN);
    assert!(msg.authorities.is_empty());
    assert!(msg.additionals.is_empty());
    assert!(msg.edns.is_none());
}

#[test]
fn api_int_returns_the_api_vip() {
    let msg = ask(&zone(), &Query::new(&format!("api-int.{CD}"), A));
    assert_eq!(addresses(&msg), vec![ip("192.0.2.5")]);
}

#[test]
fn wrong_family_at_api_is_nodata_with_the_cluster_soa() {
    let msg = ask(&zone(), &Query::new(&format!("api.{CD}"), AAAA));
    assert_nodata(&msg);
    assert_eq!(msg.authorities.len(), 1);
    let soa_record = &msg.authorities[0];
    assert_eq!(soa_record.name, name(&format!("{CD}.")));
    assert_eq!(soa_record.ttl, 30);
    let RData::SOA(soa) = &soa_record.data else {
        panic!("authority is not an SOA: {soa_record:?}");
    };
    assert_eq!(soa.mname, name(&format!("vipd.{CD}.")));
    assert_eq!(soa.rname, name(&format!("hostmaster.{CD}.")));
    assert_eq!(soa.minimum, 30);
}

#[test]
fn unknown_type_at_our_name_is_nodata_not_forwarded() {
    let msg = ask(&zone(), &Query::new(&format!("api.{CD}"), 666));
    assert_nodata(&msg);
    assert_eq!(msg.queries[0].query_type, RecordType::Unknown(666));
}

#[test]
fn mx_at_an_apps_name_is_nodata() {
    let msg = ask(&zone(), &Query::new(&format!("console.apps.{CD}"), 15));
    assert_nodata(&msg);
    assert_eq!(msg.authorities.len(), 1);
}

#[test]
fn one_label_below_apps_returns_the_ingress_vip() {
    let msg = ask(&zone(), &Query::new(&format!("x.apps.{CD}"), A));
    assert_eq!(addresses(&msg), vec![ip("192.0.2.6")]);
    assert_eq!(msg.answers[0].name, name(&format!("x.apps.{CD}.")));
}

#[test]
fn two_labels_below_apps_return_the_ingress_vip() {
    let msg = ask(&zone(), &Query::new(&format!("a.b.apps.{CD}"), A));
    assert_eq!(addresses(&msg), vec![ip("192.0.2.6")]);
}

#[test]
fn apps_itself_is_forwarded() {
    assert!(is_forwarded(&zone(), &format!("apps.{CD}"), A));
}

#[test]
fn a_label_ending_in_apps_is_forwarded() {
    assert!(is_forwarded(&zone(), &format!("xapps.{CD}"), A));
}

#[test]
fn a_label_ending_in_apps_below_apps_is_ours() {
    let msg = ask(&zone(), &Query::new(&format!("xapps.apps.{CD}"), A));
    assert_eq!(addresses(&msg), vec![ip("192.0.2.6")]);
}

#[test]
fn names_with_the_cluster_domain_in_the_middle_are_forwarded() {
    assert!(is_forwarded(&zone(), &format!("x.apps.{CD}.other"), A));
    assert!(is_forwarded(&zone(), &format!("api.{CD}.other"), A));
}

#[test]
fn names_just_outside_the_zone_are_forwarded() {
    assert!(is_forwarded(&zone(), CD, A));
    assert!(is_forwarded(&zone(), &format!("foo.{CD}"), A));
    assert!(is_forwarded(&zone(), &format!("x.api.{CD}"), A));
    assert!(is_forwarded(&zone(), "api.ostest.test.metalkube", A));
    assert!(is_forwarded(&zone(), "api.xostest.test.metalkube.org", A));
    assert!(is_forwarded(
        &zone(),
        "x.apps.xostest.test.metalkube.org",
        A
    ));
    assert!(is_forwarded(&zone(), "example.org", A));
    assert!(is_forwarded(&zone(), ".", A));
}

#[test]
fn case_is_folded_for_lookup_and_preserved_in_the_echoed_question() {
    let query = Query::new("API.Ostest.Test.Metalkube.Org", A);
    let response = ask_raw(&zone(), &query);
    let sent = query.bytes();
    assert_eq!(&response[12..sent.len()], &sent[12..]);
    let msg = Message::from_vec(&response).unwrap();
    assert_eq!(addresses(&msg), vec![ip("192.0.2.5")]);
    assert_eq!(
        msg.queries[0].name.to_string(),
        "API.Ostest.Test.Metalkube.Org."
    );
}

#[test]
fn answer_owner_is_a_compression_pointer_to_the_question() {
    let query = Query::new(&format!("api.{CD}"), A);
    let response = ask_raw(&zone(), &query);
    let answer_at = query.bytes().len();
    assert_eq!(&response[answer_at..answer_at + 2], &[0xC0, 0x0C]);
    assert_eq!(response.len(), answer_at + 16);
    assert_eq!(&response[answer_at + 12..], &[192, 0, 2, 5]);
}

#[test]
fn soa_owner_points_at_the_cluster_domain_inside_the_question() {
    let query = Query::new(&format!("Api.{CD}"), AAAA);
    let response = ask_raw(&zone(), &query);
    let soa_at = query.bytes().len();
    // 12 (header) + 4 ("\x03Api") = offset 16 of the cluster domain.
    assert_eq!(&response[soa_at..soa_at + 2], &[0xC0, 16]);
}

#[test]
fn node_short_name_returns_its_addresses_by_family() {
    let zone = zone();
    let v4 = ask(&zone, &Query::new("master-0", A));
    assert_eq!(addresses(&v4), vec![ip("192.0.2.10")]);
    let v6 = ask(&zone, &Query::new("master-0", AAAA));
    assert_eq!(addresses(&v6), vec![ip("2001:db8::10")]);
}

#[test]
fn node_short_name_nodata_carries_no_soa() {
    let msg = ask(&zone(), &Query::new("worker-0", AAAA));
    assert_nodata(&msg);
    assert!(msg.authorities.is_empty());
}

#[test]
fn node_fqdn_returns_its_addresses() {
    let msg = ask(&zone(), &Query::new(&format!("worker-0.{CD}"), A));
    assert_eq!(addresses(&msg), vec![ip("192.0.2.20")]);
}

#[test]
fn node_fqdn_wrong_family_is_nodata_with_soa() {
    let msg = ask(&zone(), &Query::new(&format!("worker-0.{CD}"), AAAA));
    assert_nodata(&msg);
    assert_eq!(msg.authorities.len(), 1);
}

#[test]
fn ipv4_ptr_names_the_node_fqdn() {
    let msg = ask(&zone(), &Query::new("10.2.0.192.in-addr.arpa", PTR));
    assert!(msg.metadata.authoritative);
    assert_eq!(msg.answers.len(), 1);
    let RData::PTR(target) = &msg.answers[0].data else {
        panic!("not a PTR: {:?}", msg.answers[0]);
    };
    assert_eq!(target.0, name(&format!("master-0.{CD}.")));
}

#[test]
fn ipv6_ptr_names_the_node_fqdn() {
    let reverse = "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
    let msg = ask(&zone(), &Query::new(reverse, PTR));
    let RData::PTR(target) = &msg.answers[0].data else {
        panic!("not a PTR: {:?}", msg.answers[0]);
    };
    assert_eq!(target.0, name(&format!("master-0.{CD}.")));
}

#[test]
fn ptr_for_an_address_we_do_not_know_is_forwarded() {
    assert!(is_forwarded(&zone(), "99.2.0.192.in-addr.arpa", PTR));
}

#[test]
fn a_at_a_reverse_name_is_nodata_without_soa() {
    let msg = ask(&zone(), &Query::new("10.2.0.192.in-addr.arpa", A));
    assert_nodata(&msg);
    assert!(msg.authorities.is_empty());
}

#[test]
fn dual_stack_answers_each_family_with_its_vip() {
    let zone = dual_stack_zone();
    let v4 = ask(&zone, &Query::new(&format!("api.{CD}"), A));
    assert_eq!(addresses(&v4), vec![ip("192.0.2.5")]);
    let v6 = ask(&zone, &Query::new(&format!("api.{CD}"), AAAA));
    assert_eq!(addresses(&v6), vec![ip("2001:db8::5")]);
    let apps = ask(&zone, &Query::new(&format!("x.apps.{CD}"), AAAA));
    assert_eq!(addresses(&apps), vec![ip("2001:db8::6")]);
}

#[test]
fn any_returns_every_address_we_hold() {
    let msg = ask(&dual_stack_zone(), &Query::new(&format!("api.{CD}"), ANY));
    assert_eq!(addresses(&msg), vec![ip("192.0.2.5"), ip("2001:db8::5")]);
}

#[test]
fn class_chaos_at_our_name_is_forwarded() {
    let mut query = Query::new(&format!("api.{CD}"), A);
    query.qclass = 3;
    assert!(matches!(
        outcome(&zone(), &query.bytes()),
        Outcome::Forward { .. }
    ));
}

#[test]
fn edns_query_gets_an_opt_advertising_our_size() {
    let query = Query::new(&format!("api.{CD}"), A).edns(Edns::default());
    let msg = ask(&zone(), &query);
    let edns = msg.edns.clone().expect("response lacks OPT");
    assert_eq!(edns.max_payload(), 512);
    assert_eq!(edns.version(), 0);
    assert!(!edns.flags().dnssec_ok);
    assert_eq!(addresses(&msg), vec![ip("192.0.2.5")]);
}

#[test]
fn configured_max_udp_size_is_advertised() {
    let query = Query::new(&format!("api.{CD}"), A).edns(Edns::default());
    let response = respond_with(&zone(), &query.bytes(), Transport::Udp, 1232);
    let msg = Message::from_vec(&response).unwrap();
    assert_eq!(msg.edns.unwrap().max_payload(), 1232);
}

#[test]
fn do_bit_is_echoed() {
    let edns = Edns {
        dnssec_ok: true,
        ..Edns::default()
    };
    let msg = ask(&zone(), &Query::new(&format!("api.{CD}"), A).edns(edns));
    assert!(msg.edns.unwrap().flags().dnssec_ok);
}

#[test]
fn edns_version_1_gets_badvers_without_records() {
    let edns = Edns {
        version: 1,
        ..Edns::default()
    };
    let query = Query::new(&format!("api.{CD}"), A).edns(edns);
    let response = ask_raw(&zone(), &query);
    // Header RCODE holds the low 4 bits (0), the OPT TTL's first byte the high 8 (1).
    assert_eq!(response[3] & 0x0F, 0);
    let msg = Message::from_vec(&response).unwrap();
    // Code 16 is both BADVERS (RFC 6891) and BADSIG (RFC 8945); hickory names it BADSIG.
    assert_eq!(u16::from(msg.metadata.response_code), 16);
    assert!(msg.answers.is_empty());
    assert!(msg.authorities.is_empty());
    let opt = msg.edns.unwrap();
    assert_eq!(opt.version(), 0);
    assert_eq!(opt.rcode_high(), 1);
}

#[test]
fn edns_version_1_for_a_foreign_name_is_also_badvers() {
    let edns = Edns {
        version: 1,
        ..Edns::default()
    };
    let msg = ask(&zone(), &Query::new("example.org", A).edns(edns));
    // Code 16 is both BADVERS (RFC 6891) and BADSIG (RFC 8945); hickory names it BADSIG.
    assert_eq!(u16::from(msg.metadata.response_code), 16);
}

#[test]
fn unknown_edns_option_is_ignored() {
    let edns = Edns {
        options: vec![(65001, vec![1, 2, 3])],
        ..Edns::default()
    };
    let msg = ask(&zone(), &Query::new(&format!("api.{CD}"), A).edns(edns));
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&msg), vec![ip("192.0.2.5")]);
    assert!(msg.edns.unwrap().options().as_ref().is_empty());
}

#[test]
fn edns_option_overrunning_the_opt_is_formerr() {
    let edns = Edns::default();
    let mut bytes = Query::new(&format!("api.{CD}"), A).edns(edns).bytes();
    // RDLENGTH 4 but the option claims 8 bytes of data.
    let rdlen_at = bytes.len() - 2;
    bytes[rdlen_at..].copy_from_slice(&4u16.to_be_bytes());
    bytes.extend_from_slice(&[0xFD, 0xE9, 0, 8]);
    let msg = Message::from_vec(&respond_with(&zone(), &bytes, Transport::Udp, 512)).unwrap();
    assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);
}

#[test]
fn two_opt_records_are_formerr() {
    let mut bytes = Query::new(&format!("api.{CD}"), A)
        .edns(Edns::default())
        .bytes();
    let opt = bytes[bytes.len() - 11..].to_vec();
    bytes.extend_from_slice(&opt);
    bytes[11] = 2;
    let msg = Message::from_vec(&respond_with(&zone(), &bytes, Transport::Udp, 512)).unwrap();
    assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);
    assert!(msg.queries.is_empty());
}

#[test]
fn z_flag_is_ignored_and_not_echoed() {
    let mut query = Query::new(&format!("api.{CD}"), A);
    query.flags_extra = 0x0040;
    let response = ask_raw(&zone(), &query);
    assert_eq!(response[3] & 0x40, 0);
    let msg = Message::from_vec(&response).unwrap();
    assert_eq!(addresses(&msg), vec![ip("192.0.2.5")]);
}

#[test]
fn opcode_15_is_notimp_with_the_question_echoed() {
    let mut query = Query::new(&format!("api.{CD}"), A);
    query.opcode = 15;
    let msg = ask(&zone(), &query);
    assert_eq!(msg.metadata.response_code, ResponseCode::NotImp);
    assert_eq!(msg.metadata.op_code, OpCode::Unknown(15));
    assert_eq!(msg.queries.len(), 1);
    assert!(msg.answers.is_empty());
}

#[test]
fn notify_opcode_is_notimp() {
    let mut query = Query::new(&format!("api.{CD}"), 6);
    query.opcode = 4;
    let msg = ask(&zone(), &query);
    assert_eq!(msg.metadata.response_code, ResponseCode::NotImp);
}

#[test]
fn qdcount_2_is_formerr_with_header_only() {
    let mut bytes = Query::new(&format!("api.{CD}"), A).bytes();
    bytes[5] = 2;
    let response = respond_with(&zone(), &bytes, Transport::Udp, 512);
    assert_eq!(response.len(), 12);
    assert_eq!(&response[..2], &[0x12, 0x34]);
    assert_eq!(response[3] & 0x0F, 1);
}

#[test]
fn qdcount_0_is_formerr() {
    let mut bytes = Query::new(&format!("api.{CD}"), A).bytes();
    bytes[5] = 0;
    let msg = Message::from_vec(&respond_with(&zone(), &bytes, Transport::Udp, 512)).unwrap();
    assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);
}

#[test]
fn question_cut_short_is_formerr() {
    let bytes = Query::new(&format!("api.{CD}"), A).bytes();
    let cut = &bytes[..bytes.len() - 3];
    let msg = Message::from_vec(&respond_with(&zone(), cut, Transport::Udp, 512)).unwrap();
    assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);
}

#[test]
fn compression_pointer_in_the_question_is_formerr() {
    let mut bytes = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    bytes.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1]);
    let msg = Message::from_vec(&respond_with(&zone(), &bytes, Transport::Udp, 512)).unwrap();
    assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);
}

#[test]
fn name_longer_than_255_bytes_is_formerr() {
    let long = vec!["a".repeat(63); 4].join(".");
    let msg = ask(&zone(), &Query::new(&long, A));
    assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);
}

#[test]
fn responses_are_dropped() {
    let mut bytes = Query::new(&format!("api.{CD}"), A).bytes();
    bytes[2] |= 0x80;
    assert_eq!(outcome(&zone(), &bytes), Outcome::Drop);
}

#[test]
fn fewer_than_12_bytes_are_dropped() {
    assert_eq!(outcome(&zone(), &[0x12, 0x34, 0x01]), Outcome::Drop);
}

fn many_vips_zone() -> ClusterZone {
    let mut config = common::config();
    config.ingress_vips = (1..=40)
        .map(|i| ip(&format!("192.0.2.{}", 100 + i)))
        .collect();
    ClusterZone::new(&config).unwrap()
}

#[test]
fn answer_over_512_bytes_without_edns_is_truncated() {
    let query = Query::new(&format!("x.apps.{CD}"), A);
    let response = ask_raw(&many_vips_zone(), &query);
    assert_eq!(response.len(), query.bytes().len());
    let msg = Message::from_vec(&response).unwrap();
    assert!(msg.metadata.truncation);
    assert!(msg.metadata.authoritative);
    assert!(msg.answers.is_empty());
    assert_eq!(msg.queries.len(), 1);
}

#[test]
fn client_edns_size_is_capped_by_max_udp_size() {
    let edns = Edns {
        udp_size: 4096,
        ..Edns::default()
    };
    let query = Query::new(&format!("x.apps.{CD}"), A).edns(edns);
    let msg = ask(&many_vips_zone(), &query);
    assert!(msg.metadata.truncation);
    assert!(msg.answers.is_empty());
    assert_eq!(msg.edns.unwrap().max_payload(), 512);
}

#[test]
fn answer_fits_when_both_sides_allow_a_larger_size() {
    let edns = Edns {
        udp_size: 4096,
        ..Edns::default()
    };
    let query = Query::new(&format!("x.apps.{CD}"), A).edns(edns);
    let response = respond_with(&many_vips_zone(), &query.bytes(), Transport::Udp, 4096);
    let msg = Message::from_vec(&response).unwrap();
    assert!(!msg.metadata.truncation);
    assert_eq!(msg.answers.len(), 40);
}

#[test]
fn tcp_is_not_truncated_at_512() {
    let query = Query::new(&format!("x.apps.{CD}"), A);
    let response = respond_with(&many_vips_zone(), &query.bytes(), Transport::Tcp, 512);
    let msg = Message::from_vec(&response).unwrap();
    assert!(!msg.metadata.truncation);
    assert_eq!(msg.answers.len(), 40);
    assert_eq!(response.len(), query.bytes().len() + 40 * 16);
}

#[test]
fn client_size_below_512_is_treated_as_512() {
    let edns = Edns {
        udp_size: 100,
        ..Edns::default()
    };
    let query = Query::new(&format!("api.{CD}"), A).edns(edns);
    let msg = ask(&zone(), &query);
    assert_eq!(addresses(&msg), vec![ip("192.0.2.5")]);
}

#[test]
fn forward_limit_is_512_without_edns() {
    let query = Query::new("example.org", A).bytes();
    assert_eq!(
        outcome(&zone(), &query),
        Outcome::Forward { max_response: 512 }
    );
}

#[test]
fn forward_limit_is_the_smaller_of_client_and_configured_size() {
    let edns = Edns {
        udp_size: 1232,
        ..Edns::default()
    };
    let query = Query::new("example.org", A).edns(edns).bytes();
    let mut out = vec![0u8; 4096];
    assert_eq!(
        answer(&zone(), &query, &mut out, Transport::Udp, 4096),
        Outcome::Forward { max_response: 1232 }
    );
    assert_eq!(
        answer(&zone(), &query, &mut out, Transport::Udp, 512),
        Outcome::Forward { max_response: 512 }
    );
    assert_eq!(
        answer(&zone(), &query, &mut out, Transport::Tcp, 512),
        Outcome::Forward {
            max_response: u16::MAX
        }
    );
}

#[test]
fn answer_records_in_the_query_are_skipped() {
    let mut bytes = Query::new(&format!("api.{CD}"), A).bytes();
    bytes[7] = 1;
    // A known-answer record owned by a pointer to the question.
    bytes.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 99]);
    let msg = Message::from_vec(&respond_with(&zone(), &bytes, Transport::Udp, 512)).unwrap();
    assert_eq!(addresses(&msg), vec![ip("192.0.2.5")]);
}
