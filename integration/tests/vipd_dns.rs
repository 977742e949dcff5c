//! vipd as the node's cluster DNS (CoreDNS's replacement, reference/dns.md), queried with `dig`
//! from the client namespace. Needs root, the vipd binary, lab-responder and dig.
//!
//! Nodes 0 and 1 run vipd with `api` (192.0.2.5) and `ingress` (192.0.2.10) and `[dns]` on their
//! lab address; node 2 plays the site's resolver: a one-record upstream (`example.test. A
//! 198.51.100.7`) that the nodes' `resolv_conf` names. Cluster domain ostest.test.metalkube.org.
//!
//! The `[dns]` forwarder keys run node 0 as a DNS-only node: a static `upstreams` list whose
//! first entry is dead, `force_tcp` against knotd on node 2 with UDP port 53 dropped there (also
//! needs knotd and nft), and `records = "nodes"` with node 2 holding `api.<cd>`.

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

// ---- [dns] upstreams, force_tcp, records (issue 10) ----

/// The VIPs a DNS-only node answers (it runs no instance).
const VIPS: &str = "api_vips = [\"192.0.2.5\"]\ningress_vips = [\"192.0.2.10\"]\n";

/// No host in the lab holds it: packets to it go unanswered, as to a crashed resolver.
const DEAD_UPSTREAM: &str = "192.0.2.99";

/// Node 0 as a DNS-only node (no VRRP): `[dns]` on its lab address with `keys` added, the
/// `resolv_conf` line dropped when `static_upstreams` (the two are exclusive), and node records
/// for nodes 0 and 1.
fn start_dns_only(lab: &Lab, keys: &str, static_upstreams: bool) -> Proc {
    let host = lab.node(0);
    let config = NodeConfig {
        base_domain: Some("test.metalkube.org".into()),
        dns: node_config(lab, 0).dns,
        http: Some(SocketAddr::new(dns_server(lab, 0), 18080)),
        ..NodeConfig::new()
    };
    let text = scenarios::render(&config, &scenarios::control_socket(host).unwrap());
    let text: String = text
        .lines()
        .filter(|l| !(static_upstreams && l.starts_with("resolv_conf =")))
        .map(|l| format!("{l}\n"))
        .collect();
    let text = text.replacen("\n[dns]\n", &format!("\n[dns]\n{keys}"), 1);
    fs::write(scenarios::config_path(host).unwrap(), text).unwrap();
    scenarios::start_written(host).unwrap()
}

/// `dig` from the client with one try of `wait` seconds, so a slow failover inside vipd is not
/// hidden by dig's own retry; the reply and how long it took.
fn dig_once(lab: &Lab, name: &str, qtype: &str, wait: u32) -> (DigReply, Duration) {
    let at = format!("@{}", dns_server(lab, 0));
    let time = format!("+time={wait}");
    let started = std::time::Instant::now();
    let out = lab
        .client()
        .exec(&[
            "dig",
            &at,
            &time,
            "+tries=1",
            "+noall",
            "+comments",
            "+answer",
            name,
            qtype,
        ])
        .unwrap();
    (scenarios::parse_dig(&out).unwrap(), started.elapsed())
}

/// The `upstreams` of `vipd status --json`: (address, healthy) in order.
fn status_upstreams(lab: &Lab) -> Vec<(String, bool)> {
    let status = scenarios::status_json(lab.node(0)).unwrap();
    status["dns"]["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["address"].as_str().unwrap().to_owned(),
                u["healthy"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn static_upstreams_fail_over_in_order_from_a_dead_first_to_the_second() {
    let lab = Lab::new(3).unwrap();
    let upstream_addr = SocketAddr::new(lab.node(2).ipv4().into(), 53);
    let upstream = scenarios::start_dns_responder(
        lab.node(2),
        RESPONDER,
        upstream_addr,
        UPSTREAM_NAME,
        UPSTREAM_ANSWER.parse().unwrap(),
    )
    .unwrap();
    let _vipd = start_dns_only(
        &lab,
        &format!("{VIPS}upstreams = [\"{DEAD_UPSTREAM}\", \"{upstream_addr}\"]\n"),
        true,
    );
    assert_eq!(
        status_upstreams(&lab),
        [
            (format!("{DEAD_UPSTREAM}:53"), true),
            (upstream_addr.to_string(), true)
        ],
        "the configured order, nothing read from resolv.conf"
    );

    // The first query waits for the dead first upstream (2 s per attempt), then the second answers.
    let (reply, took) = dig_once(&lab, UPSTREAM_NAME, "A", 6);
    assert_eq!(reply.status, "NOERROR", "{reply:?}");
    assert_eq!(reply.rdata(), [UPSTREAM_ANSWER]);
    assert!(
        took >= Duration::from_millis(1800),
        "answered in {took:?}: the dead first upstream was not asked first"
    );
    assert_eq!(
        status_upstreams(&lab),
        [
            (format!("{DEAD_UPSTREAM}:53"), false),
            (upstream_addr.to_string(), true)
        ]
    );
    // Held down: the next name goes to the second at once.
    let (reply, took) = dig_once(&lab, "nothing.example.", "A", 6);
    assert_eq!(reply.status, "NXDOMAIN", "{reply:?}");
    assert!(took < Duration::from_millis(1000), "{took:?}");
    let log = upstream.log();
    assert!(
        log.lines()
            .any(|l| l.starts_with("192.0.2.11:") && l.contains("for another name -> NXDOMAIN")),
        "{log}"
    );
}

/// knotd on node 2 serving `example.test. A 198.51.100.7` over TCP only: UDP to port 53 is
/// dropped in node 2's namespace, so a query over UDP goes unanswered.
fn start_tcp_only_upstream(lab: &Lab) -> Proc {
    let host = lab.node(2);
    let dir = host.dir().unwrap().join("knot");
    fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    fs::write(
        dir.join("example.test.zone"),
        format!(
            "$ORIGIN example.test.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\n@ A {UPSTREAM_ANSWER}\nns A {}\n",
            host.ipv4()
        ),
    )
    .unwrap();
    fs::write(
        dir.join("knot.conf"),
        format!(
            "server:\n    listen: {}@53\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n    rundir: {d}\nlog:\n  - target: stderr\n    any: info\ndatabase:\n    storage: {d}\ntemplate:\n  - id: default\n    storage: {d}\n    journal-content: none\n    zonefile-sync: -1\nzone:\n  - domain: example.test\n    file: {d}/example.test.zone\n",
            host.ipv4()
        ),
    )
    .unwrap();
    for rule in [
        &["nft", "add", "table", "inet", "tcponly"][..],
        &[
            "nft", "add", "chain", "inet", "tcponly", "input", "{", "type", "filter", "hook",
            "input", "priority", "0", ";", "}",
        ],
        &[
            "nft", "add", "rule", "inet", "tcponly", "input", "udp", "dport", "53", "counter",
            "drop",
        ],
    ] {
        host.exec(rule).unwrap();
    }
    let conf = dir.join("knot.conf");
    let knot = host
        .spawn("knot", &["knotd", "-c", conf.to_str().unwrap()])
        .unwrap();
    let server = format!("@{}", host.ipv4());
    let up = lab::wait_until(Duration::from_secs(5), || {
        let out = lab
            .client()
            .exec(&[
                "dig",
                &server,
                "+tcp",
                "+time=1",
                "+tries=1",
                "+short",
                "example.test.",
                "A",
            ])
            .unwrap_or_default();
        Ok((out.trim() == UPSTREAM_ANSWER).then_some(()))
    })
    .unwrap();
    assert!(
        up.is_some(),
        "knotd did not answer over TCP; see {}",
        knot.log_path().display()
    );
    let udp = lab
        .client()
        .exec(&["dig", &server, "+time=1", "+tries=1", "example.test.", "A"])
        .unwrap_or_default();
    assert!(
        !udp.contains("status: NOERROR"),
        "UDP still answered: {udp}"
    );
    knot
}

#[test]
fn force_tcp_reaches_an_upstream_that_only_answers_over_tcp() {
    let lab = Lab::new(3).unwrap();
    let _knot = start_tcp_only_upstream(&lab);
    let _vipd = start_dns_only(
        &lab,
        &format!(
            "{VIPS}upstreams = [\"{}\"]\nforce_tcp = true\n",
            lab.node(2).ipv4()
        ),
        true,
    );
    for n in 0..3 {
        let (reply, took) = dig_once(&lab, "example.test.", "A", 3);
        assert_eq!(reply.status, "NOERROR", "query {n}: {reply:?}");
        assert_eq!(reply.rdata(), [UPSTREAM_ANSWER]);
        assert!(took < Duration::from_secs(1), "query {n} took {took:?}");
    }
    // Names asked for the first time (nothing cached): each goes upstream over TCP too.
    for name in ["a.example.test.", "b.example.test."] {
        let (reply, took) = dig_once(&lab, name, "A", 3);
        assert_eq!(reply.status, "NXDOMAIN", "{reply:?}");
        assert!(took < Duration::from_secs(1), "{name} took {took:?}");
    }
    let status = scenarios::status_json(lab.node(0)).unwrap();
    assert_eq!(status["dns"]["force_tcp"], true, "{status}");
    assert_eq!(status["dns"]["upstreams"][0]["healthy"], true, "{status}");
}

#[test]
fn records_nodes_forwards_api_and_answers_node_names_here() {
    let lab = Lab::new(3).unwrap();
    let api = format!("api.{DOMAIN}.");
    // The site's DNS, which holds api.<cd> with dnsRecordsType External.
    let _site = scenarios::start_dns_responder(
        lab.node(2),
        RESPONDER,
        SocketAddr::new(lab.node(2).ipv4().into(), 53),
        &api,
        "198.51.100.20".parse().unwrap(),
    )
    .unwrap();
    let _vipd = start_dns_only(&lab, "records = \"nodes\"\n", false);
    let reply = dig(&lab, 0, &api, "A");
    assert_eq!(reply.status, "NOERROR", "{reply:?}");
    assert!(!reply.has_flag("aa"), "relayed, not ours: {reply:?}");
    assert_eq!(reply.rdata(), ["198.51.100.20"]);
    // Names the site does not hold are its NXDOMAIN, not ours.
    for name in [format!("api-int.{DOMAIN}."), format!("x.apps.{DOMAIN}.")] {
        let reply = dig(&lab, 0, &name, "A");
        assert_eq!(reply.status, "NXDOMAIN", "{reply:?}");
        assert!(!reply.has_flag("aa"), "{reply:?}");
    }
    assert_local_answer(
        &dig(&lab, 0, &format!("master-1.{DOMAIN}."), "A"),
        &["192.0.2.12"],
    );
    assert_local_answer(&dig(&lab, 0, "master-0.", "A"), &["192.0.2.11"]);
    let status = scenarios::status_json(lab.node(0)).unwrap();
    assert_eq!(status["dns"]["records"], "nodes", "{status}");
}
