//! Which names the zone holds: `Records::Nodes` (OpenShift's `dnsRecordsType: External`) and
//! `api-int` addresses of their own (`ZoneOptions`), through `answer()`.

mod common;

use common::{config, ip, zone, Query, CD};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RData;
use vipd_dns::answer::{answer, Outcome, Transport, MAX_TCP_SIZE};
use vipd_dns::zone::{ClusterZone, Records, ZoneOptions};

const A: u16 = 1;
const PTR: u16 = 12;
const AAAA: u16 = 28;
const MX: u16 = 15;

fn outcome(zone: &ClusterZone, name: &str, qtype: u16) -> (Outcome, Vec<u8>) {
    let mut out = vec![0u8; MAX_TCP_SIZE];
    let outcome = answer(
        zone,
        &Query::new(name, qtype).bytes(),
        &mut out,
        Transport::Udp,
        512,
    );
    (outcome, out)
}

fn is_forwarded(zone: &ClusterZone, name: &str, qtype: u16) -> bool {
    matches!(outcome(zone, name, qtype).0, Outcome::Forward { .. })
}

fn ask(zone: &ClusterZone, name: &str, qtype: u16) -> Message {
    match outcome(zone, name, qtype) {
        (Outcome::Respond(len), out) => Message::from_vec(&out[..len]).unwrap(),
        (other, _) => panic!("{name}: expected a local answer, got {other:?}"),
    }
}

fn rdata(msg: &Message) -> Vec<String> {
    msg.answers
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => a.0.to_string(),
            RData::AAAA(a) => a.0.to_string(),
            RData::PTR(p) => p.0.to_string(),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn nodes_zone() -> ClusterZone {
    ClusterZone::with_options(
        &config(),
        &ZoneOptions {
            records: Records::Nodes,
            ..ZoneOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn nodes_only_forwards_api_api_int_and_apps_names() {
    let zone = nodes_zone();
    for name in [
        format!("api.{CD}"),
        format!("api-int.{CD}"),
        format!("console-openshift-console.apps.{CD}"),
        format!("a.b.apps.{CD}"),
    ] {
        for qtype in [A, AAAA, MX] {
            assert!(is_forwarded(&zone, &name, qtype), "{name} type {qtype}");
        }
    }
}

#[test]
fn nodes_only_answers_node_names_and_their_ptr_as_before() {
    let zone = nodes_zone();
    let fqdn = ask(&zone, &format!("master-0.{CD}"), A);
    assert!(fqdn.metadata.authoritative);
    assert_eq!(rdata(&fqdn), ["192.0.2.10"]);
    assert_eq!(rdata(&ask(&zone, "master-0", AAAA)), ["2001:db8::10"]);
    assert_eq!(rdata(&ask(&zone, "worker-0", A)), ["192.0.2.20"]);
    let ptr = ask(&zone, "20.2.0.192.in-addr.arpa", PTR);
    assert_eq!(rdata(&ptr), [format!("worker-0.{CD}.")]);
    // The other family at a node name is still NODATA with the cluster SOA.
    let nodata = ask(&zone, &format!("worker-0.{CD}"), AAAA);
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert_eq!(nodata.authorities.len(), 1);
}

#[test]
fn unknown_names_under_the_cluster_domain_are_forwarded_in_both_modes() {
    for zone in [zone(), nodes_zone()] {
        for name in [
            format!("foo.{CD}"),
            CD.to_string(),
            format!("apps.{CD}"),
            format!("x.api.{CD}"),
            format!("master-9.{CD}"),
        ] {
            assert!(is_forwarded(&zone, &name, A), "{name}");
        }
    }
}

#[test]
fn nodes_only_keeps_the_reserved_node_names() {
    let mut config = config();
    config.nodes[0].name = "api".into();
    let options = ZoneOptions {
        records: Records::Nodes,
        ..ZoneOptions::default()
    };
    assert!(ClusterZone::with_options(&config, &options).is_err());
}

#[test]
fn api_int_answers_its_own_addresses_when_given() {
    let zone = ClusterZone::with_options(
        &config(),
        &ZoneOptions {
            api_int_vips: Some(vec![ip("198.51.100.20"), ip("2001:db8::20")]),
            ..ZoneOptions::default()
        },
    )
    .unwrap();
    assert_eq!(rdata(&ask(&zone, &format!("api.{CD}"), A)), ["192.0.2.5"]);
    assert!(ask(&zone, &format!("api.{CD}"), AAAA).answers.is_empty());
    assert_eq!(
        rdata(&ask(&zone, &format!("api-int.{CD}"), A)),
        ["198.51.100.20"]
    );
    assert_eq!(
        rdata(&ask(&zone, &format!("api-int.{CD}"), AAAA)),
        ["2001:db8::20"]
    );
}

#[test]
fn the_default_options_are_what_new_serves() {
    let config = config();
    assert_eq!(
        ClusterZone::with_options(&config, &ZoneOptions::default()).unwrap(),
        ClusterZone::new(&config).unwrap()
    );
    assert_eq!(
        rdata(&ask(&zone(), &format!("api-int.{CD}"), A)),
        ["192.0.2.5"]
    );
}
