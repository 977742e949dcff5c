//! vipd as the node's cluster DNS (CoreDNS's replacement, reference/dns.md), queried with `dig`
//! from the client namespace. Needs root, the vipd binary, lab-responder and dig.
//!
//! Nodes 0 and 1 run vipd with `api` (192.0.2.5) and `ingress` (192.0.2.10) and `[dns]` on their
//! lab address; node 2 plays the site's resolver: a one-record upstream (`example.test. A
//! 198.51.100.7`) that the nodes' `resolv_conf` names. Cluster domain ostest.test.metalkube.org.

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lab::scenarios::{self, DigReply, Dns, NodeConfig};
use lab::vipd::{self as labvipd, Peering};
use lab::{Lab, Proc};
use nix::sys::signal::Signal;

const RESPONDER: &str = env!("CARGO_BIN_EXE_lab-responder");
const ADVERT: Duration = Duration::from_secs(1);
const PRIORITIES: [u8; 2] = [70, 40];
const ELECTION: Duration = Duration::from_secs(8);
const DOMAIN: &str = "ostest.test.metalkube.org";
const UPSTREAM_NAME: &str = "example.test.";
const UPSTREAM_ANSWER: &str = "198.51.100.7";

fn api_vip() -> IpAddr {
    "192.0.2.5".parse().unwrap()
}

fn ingress_vip() -> IpAddr {
    "192.0.2.10".parse().unwrap()
}

fn dns_server(lab: &Lab, i: usize) -> IpAddr {
    lab.node(i).ipv4().into()
}

/// Node `i`'s config: both instances, `[dns]` on its lab address, `[http]` on port 18080.
fn node_config(lab: &Lab, i: usize) -> NodeConfig {
    let api = labvipd::cluster_instance(lab, i, &PRIORITIES, api_vip(), ADVERT, Peering::Unicast);
    let mut ingress =
        labvipd::cluster_instance(lab, i, &PRIORITIES, ingress_vip(), ADVERT, Peering::Unicast);
    ingress.name = "ingress".into();
    ingress.vrid = Some(93);
    let resolv_conf = lab.node(i).dir().unwrap().join("resolv.conf");
    fs::write(
        &resolv_conf,
        format!("search {DOMAIN}\nnameserver {}\n", lab.node(2).ipv4()),
    )
    .unwrap();
    NodeConfig {
        base_domain: Some("test.metalkube.org".into()),
        instances: vec![(api, Vec::new()), (ingress, Vec::new())],
        dns: Some(Dns {
            listen: vec![SocketAddr::new(dns_server(lab, i), 53)],
            resolv_conf,
            nodes: (0..2)
                .map(|n| (format!("master-{n}"), vec![dns_server(lab, n)]))
                .collect(),
        }),
        http: Some(SocketAddr::new(dns_server(lab, i), 18080)),
        ..NodeConfig::new()
    }
}

struct Cluster {
    upstream: Proc,
    vipd: Vec<Proc>,
}

fn start(lab: &Lab) -> Cluster {
    let upstream = scenarios::start_dns_responder(
        lab.node(2),
        RESPONDER,
        SocketAddr::new(lab.node(2).ipv4().into(), 53),
        UPSTREAM_NAME,
        UPSTREAM_ANSWER.parse().unwrap(),
    )
    .unwrap();
    let vipd = (0..2)
        .map(|i| scenarios::start(lab.node(i), &node_config(lab, i)).unwrap())
        .collect();
    Cluster { upstream, vipd }
}

fn dig(lab: &Lab, node: usize, name: &str, qtype: &str) -> DigReply {
    scenarios::dig(lab.client(), dns_server(lab, node), name, qtype).unwrap()
}

/// A local, authoritative answer with exactly `rdata`.
fn assert_local_answer(reply: &DigReply, rdata: &[&str]) {
    assert_eq!(reply.status, "NOERROR", "{reply:?}");
    assert!(reply.has_flag("aa"), "not authoritative: {reply:?}");
    assert_eq!(reply.rdata(), rdata, "{reply:?}");
}

#[test]
fn api_and_api_int_answer_the_api_vip_authoritatively() {
    let lab = Lab::new(3).unwrap();
    let _cluster = start(&lab);
    for name in ["api", "api-int"] {
        let reply = dig(&lab, 0, &format!("{name}.{DOMAIN}."), "A");
        assert_local_answer(&reply, &["192.0.2.5"]);
        assert_eq!(reply.answers[0].0, format!("{name}.{DOMAIN}."));
    }
}

#[test]
fn any_name_under_apps_answers_the_ingress_vip() {
    let lab = Lab::new(3).unwrap();
    let _cluster = start(&lab);
    for name in [
        "console-openshift-console.apps",
        "oauth-openshift.apps",
        "a.b.apps",
    ] {
        let reply = dig(&lab, 0, &format!("{name}.{DOMAIN}."), "A");
        assert_local_answer(&reply, &["192.0.2.10"]);
    }
}

#[test]
fn node_names_answer_the_node_addresses_short_and_in_the_cluster_domain() {
    let lab = Lab::new(3).unwrap();
    let _cluster = start(&lab);
    assert_local_answer(
        &dig(&lab, 0, &format!("master-1.{DOMAIN}."), "A"),
        &["192.0.2.12"],
    );
    assert_local_answer(&dig(&lab, 0, "master-0.", "A"), &["192.0.2.11"]);
}

#[test]
fn aaaa_at_an_ipv4_only_name_is_nodata() {
    let lab = Lab::new(3).unwrap();
    let _cluster = start(&lab);
    for name in [format!("api.{DOMAIN}."), format!("x.apps.{DOMAIN}.")] {
        let reply = dig(&lab, 0, &name, "AAAA");
        // NODATA (RFC 2308 2.2): the name exists, so NOERROR, with an empty answer section.
        assert_local_answer(&reply, &[]);
    }
}

#[test]
fn a_name_outside_the_cluster_is_forwarded_to_the_resolv_conf_upstream() {
    let lab = Lab::new(3).unwrap();
    let cluster = start(&lab);
    let reply = dig(&lab, 0, UPSTREAM_NAME, "A");
    assert_eq!(reply.status, "NOERROR", "{reply:?}");
    assert!(
        !reply.has_flag("aa"),
        "a relayed answer is the upstream's, not authoritative here: {reply:?}"
    );
    assert_eq!(
        reply.answers,
        vec![(
            UPSTREAM_NAME.to_string(),
            "A".to_string(),
            UPSTREAM_ANSWER.to_string()
        )]
    );
    let unknown = dig(&lab, 0, "nothing.example.", "A");
    assert_eq!(unknown.status, "NXDOMAIN", "{unknown:?}");

    let upstream_log = cluster.upstream.log();
    assert!(
        upstream_log.lines().any(|l| l.starts_with("192.0.2.11:")
            && l.ends_with("qtype 1 for our name -> A 198.51.100.7")),
        "the upstream never heard node 0 ask: {upstream_log}"
    );
}

#[test]
fn answers_are_unchanged_after_a_failover_because_names_map_to_vips_not_nodes() {
    let lab = Lab::new(3).unwrap();
    let _cluster = start(&lab);
    lab.wait_holder_is(api_vip(), 0, ELECTION).unwrap();
    let names = [
        format!("api.{DOMAIN}."),
        format!("api-int.{DOMAIN}."),
        format!("x.apps.{DOMAIN}."),
    ];
    let before: Vec<Vec<String>> = names.iter().map(|n| dig(&lab, 1, n, "A").rdata()).collect();
    assert_eq!(
        before,
        vec![
            vec!["192.0.2.5".to_string()],
            vec!["192.0.2.5".to_string()],
            vec!["192.0.2.10".to_string()]
        ]
    );

    let resign = scenarios::ctl(lab.node(0), &["resign", "api"]).unwrap();
    assert!(resign.success, "{resign:?}");
    lab.wait_holder_is(api_vip(), 1, Duration::from_secs(3))
        .unwrap();
    for node in 0..2 {
        let after: Vec<Vec<String>> = names
            .iter()
            .map(|n| dig(&lab, node, n, "A").rdata())
            .collect();
        assert_eq!(
            after, before,
            "node {node} after the API VIP moved to node 1"
        );
    }
}

#[test]
fn the_health_endpoint_returns_200_ok() {
    let lab = Lab::new(3).unwrap();
    let _cluster = start(&lab);
    let (code, body) = scenarios::http_get(
        lab.client(),
        &format!("http://{}:18080/health", dns_server(&lab, 0)),
    )
    .unwrap();
    assert_eq!(code, 200);
    assert_eq!(body, "OK");
}

#[test]
fn sighup_swaps_the_zone_and_a_new_resolv_conf_path_keeps_forwarding() {
    let lab = Lab::new(3).unwrap();
    let cluster = start(&lab);
    let before = dig(&lab, 0, &format!("master-9.{DOMAIN}."), "A");
    assert_ne!(
        before.status, "NOERROR",
        "not a cluster name yet: {before:?}"
    );

    // A node is added and the upstreams now come from another file, naming another resolver
    // (on the client) that answers the same name differently. Nothing asked for that name
    // before, so no cached answer can hide which upstream replied.
    let _second = scenarios::start_dns_responder(
        lab.client(),
        RESPONDER,
        SocketAddr::new(lab.client().ipv4().into(), 53),
        UPSTREAM_NAME,
        "198.51.100.8".parse().unwrap(),
    )
    .unwrap();
    let mut config = node_config(&lab, 0);
    let dns = config.dns.as_mut().unwrap();
    dns.nodes
        .push(("master-9".into(), vec!["198.51.100.9".parse().unwrap()]));
    let moved = lab.node(0).dir().unwrap().join("resolv-moved.conf");
    fs::write(&moved, format!("nameserver {}\n", lab.client().ipv4())).unwrap();
    dns.resolv_conf = moved;
    scenarios::write_config(lab.node(0), &config).unwrap();
    cluster.vipd[0].signal(Signal::SIGHUP).unwrap();
    let applied = lab::wait_until(Duration::from_secs(3), || {
        let status = scenarios::status_json(lab.node(0))?;
        Ok((status["reloads"]["ok"] == 1).then_some(()))
    })
    .unwrap();
    assert!(applied.is_some(), "the reload was not applied within 3 s");

    assert_local_answer(
        &dig(&lab, 0, &format!("master-9.{DOMAIN}."), "A"),
        &["198.51.100.9"],
    );
    assert_local_answer(&dig(&lab, 0, "master-9.", "A"), &["198.51.100.9"]);
    // Unchanged names still answer, and forwarding follows the new file.
    assert_local_answer(
        &dig(&lab, 0, &format!("api.{DOMAIN}."), "A"),
        &["192.0.2.5"],
    );
    let forwarded = dig(&lab, 0, UPSTREAM_NAME, "A");
    assert_eq!(forwarded.status, "NOERROR", "{forwarded:?}");
    assert_eq!(forwarded.rdata(), vec!["198.51.100.8".to_owned()]);
    let upstreams = scenarios::status_json(lab.node(0)).unwrap()["dns"]["upstreams"].clone();
    let addresses: Vec<&str> = upstreams
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["address"].as_str())
        .collect();
    let want = format!("{}:53", lab.client().ipv4());
    assert_eq!(
        addresses,
        [want.as_str()],
        "only the new file's resolver: {upstreams}"
    );
}
