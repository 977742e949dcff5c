//! `[dns]` keys for the forwarder and the record set (issue 10): `upstreams`, `force_tcp`,
//! `records`, `api_int_vips`, `batch_scheduling`: defaults, what the daemon builds from them,
//! and refusals located at the value.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use vipd::config::Config;
use vipd::daemon::dns::{forwarder_config, zone_for};
use vipd_dns::zone::Records;

const FILE: &str = "/etc/vipd/vipd.toml";

const HEAD: &str = r#"cluster_name = "ostest"
base_domain = "test.metalkube.org"
"#;

fn parse(dns: &str) -> Config {
    Config::parse(&format!("{HEAD}{dns}"), FILE).unwrap_or_else(|e| panic!("{e}"))
}

/// The rendered diagnostics of a `[dns]` that must be refused (`HEAD` is two lines).
fn refusals(dns: &str) -> Vec<String> {
    match Config::parse(&format!("{HEAD}{dns}"), FILE) {
        Ok(config) => panic!("accepted: {:#?}", config.dns),
        Err(e) => e.diagnostics().iter().map(|d| d.to_string()).collect(),
    }
}

fn sock(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

const VIPS: &str = "api_vips = [\"192.0.2.5\"]\ningress_vips = [\"192.0.2.10\"]\n";

#[test]
fn defaults_keep_todays_behaviour() {
    let config = parse(&format!("[dns]\n{VIPS}"));
    let dns = config.dns.as_ref().unwrap();
    assert!(dns.upstreams.is_empty());
    assert_eq!(dns.resolv_conf, PathBuf::from("/etc/resolv.conf"));
    assert!(!dns.force_tcp);
    assert_eq!(dns.records, Records::Cluster);
    assert_eq!(dns.api_int_vips, dns.api_vips);
    assert!(dns.batch_scheduling);
    let forwarder = forwarder_config(dns);
    assert!(forwarder.upstreams.is_empty(), "read from resolv.conf");
    assert!(!forwarder.force_tcp);
}

#[test]
fn a_static_upstream_list_keeps_its_order_and_ports() {
    let config = parse(&format!(
        "[dns]\n{VIPS}upstreams = [\"192.0.2.53\", \"198.51.100.53:5353\", \"[2001:db8::53]:53\", \"2001:db8::54\"]\nforce_tcp = true\nbatch_scheduling = false\n"
    ));
    let dns = config.dns.as_ref().unwrap();
    let want = [
        sock("192.0.2.53:53"),
        sock("198.51.100.53:5353"),
        sock("[2001:db8::53]:53"),
        sock("[2001:db8::54]:53"),
    ];
    assert_eq!(dns.upstreams, want);
    assert!(dns.force_tcp);
    assert!(!dns.batch_scheduling);
    let forwarder = forwarder_config(dns);
    assert_eq!(forwarder.upstreams, want);
    assert!(forwarder.force_tcp);
}

#[test]
fn records_nodes_needs_no_vips_and_builds_a_zone_without_them() {
    let config = parse(
        "[dns]\nrecords = \"nodes\"\n[[dns.node]]\nname = \"master-0\"\naddresses = [\"192.0.2.11\"]\n",
    );
    let dns = config.dns.as_ref().unwrap();
    assert_eq!(dns.records, Records::Nodes);
    assert!(dns.api_vips.is_empty() && dns.ingress_vips.is_empty());
    let zone = zone_for(&config).unwrap().unwrap();
    assert_eq!(zone.records(), Records::Nodes);
    assert!(zone.lookup_text("api.ostest.test.metalkube.org").is_none());
    assert!(zone
        .lookup_text("x.apps.ostest.test.metalkube.org")
        .is_none());
    assert_eq!(
        zone.lookup_text("master-0.ostest.test.metalkube.org")
            .unwrap()
            .a,
        ["192.0.2.11".parse::<std::net::Ipv4Addr>().unwrap()]
    );
}

#[test]
fn api_int_vips_answer_api_int_alone() {
    let config = parse(&format!(
        "[dns]\n{VIPS}api_int_vips = [\"198.51.100.20\"]\n"
    ));
    let dns = config.dns.as_ref().unwrap();
    assert_eq!(dns.api_vips, [ip("192.0.2.5")]);
    assert_eq!(dns.api_int_vips, [ip("198.51.100.20")]);
    let zone = zone_for(&config).unwrap().unwrap();
    let a = |name: &str| {
        zone.lookup_text(&format!("{name}.ostest.test.metalkube.org"))
            .unwrap()
            .a
            .clone()
    };
    assert_eq!(
        a("api"),
        ["192.0.2.5".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(
        a("api-int"),
        ["198.51.100.20".parse::<std::net::Ipv4Addr>().unwrap()]
    );
}

#[test]
fn upstreams_are_refused_with_their_place_and_reason() {
    let errors = refusals(&format!(
        "[dns]\n{VIPS}upstreams = [\"dns.example.com\", \"0.0.0.0\", \"192.0.2.53:0\", \"192.0.2.53\", \"192.0.2.53:53\"]\n"
    ));
    assert_eq!(
        errors,
        [
            "/etc/vipd/vipd.toml:6:14: dns: upstreams: \"dns.example.com\" is not a name server address; write an address, optionally with a port: \"192.0.2.53\", \"198.51.100.53:5353\", \"2001:db8::53\" or \"[2001:db8::53]:5353\"",
            "/etc/vipd/vipd.toml:6:33: dns: upstreams: 0.0.0.0 is not a server's address; give the site's name servers",
            "/etc/vipd/vipd.toml:6:44: dns: upstreams: port 0 is not a port a server listens on; give the site's name servers",
            "/etc/vipd/vipd.toml:6:74: dns: upstreams: 192.0.2.53:53 is listed twice",
        ]
    );
}

#[test]
fn an_upstream_that_is_this_server_is_refused() {
    let errors = refusals(&format!(
        "[dns]\n{VIPS}upstreams = [\"127.0.0.1\", \"192.0.2.5\", \"127.0.0.1:5353\"]\n"
    ));
    assert_eq!(
        errors,
        [
            "/etc/vipd/vipd.toml:6:14: dns: upstreams: 127.0.0.1:53 is this DNS server (listen 0.0.0.0:53, [::]:53): forwarded queries would come back here; give the site's name servers",
            "/etc/vipd/vipd.toml:6:27: dns: upstreams: 192.0.2.5:53 is this DNS server (listen 0.0.0.0:53, [::]:53): forwarded queries would come back here; give the site's name servers",
        ],
        "a local resolver on another port is fine"
    );
}

#[test]
fn upstreams_and_resolv_conf_together_or_empty_are_refused() {
    assert_eq!(
        refusals(&format!(
            "[dns]\n{VIPS}resolv_conf = \"/etc/resolv.conf\"\nupstreams = [\"192.0.2.53\"]\n"
        )),
        ["/etc/vipd/vipd.toml:7:13: dns: upstreams: is set together with resolv_conf; the forwarder takes one source: this static list, or the name servers of resolv_conf (watched live)"]
    );
    assert_eq!(
        refusals(&format!("[dns]\n{VIPS}upstreams = []\n")),
        ["/etc/vipd/vipd.toml:6:13: dns: upstreams: is empty; list at least one name server, e.g. [\"192.0.2.53\"], or remove upstreams to read them from resolv_conf"]
    );
}

#[test]
fn records_must_be_cluster_or_nodes() {
    assert_eq!(
        refusals(&format!("[dns]\n{VIPS}records = \"external\"\n")),
        ["/etc/vipd/vipd.toml:6:11: dns: records: \"external\" is not a record set; accepted \"cluster\" (api, api-int, *.apps and the nodes; OpenShift's dnsRecordsType Internal) or \"nodes\" (the nodes only, everything else forwarded; dnsRecordsType External)"]
    );
}

#[test]
fn vip_keys_with_records_nodes_are_refused() {
    assert_eq!(
        refusals("[dns]\nrecords = \"nodes\"\napi_vips = [\"192.0.2.5\"]\napi_int_vips = [\"192.0.2.6\"]\n"),
        [
            "/etc/vipd/vipd.toml:5:12: dns: api_vips: is set with records = \"nodes\", which answers no api, api-int or *.apps name (they are forwarded); remove it, or use records = \"cluster\"",
            "/etc/vipd/vipd.toml:6:16: dns: api_int_vips: is set with records = \"nodes\", which answers no api, api-int or *.apps name (they are forwarded); remove it, or use records = \"cluster\"",
        ]
    );
}

#[test]
fn api_int_vips_are_checked_like_vips() {
    assert_eq!(
        refusals(&format!(
            "[dns]\n{VIPS}api_int_vips = [\"192.0.2.0/24\", \"127.0.0.1\"]\n"
        )),
        [
            "/etc/vipd/vipd.toml:6:17: dns: api_int_vips: \"192.0.2.0/24\" has a prefix length; write the bare address (VIPs are added as /32 or /128, as OpenShift does)",
            "/etc/vipd/vipd.toml:6:33: dns: api_int_vips: 127.0.0.1 cannot be a virtual address; give a unicast address of the node's network",
        ]
    );
}

#[test]
fn force_tcp_and_batch_scheduling_are_booleans() {
    let errors = refusals(&format!("[dns]\n{VIPS}force_tcp = \"yes\"\n"));
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("/etc/vipd/vipd.toml:6:13: dns.force_tcp: invalid type"),
        "{errors:?}"
    );
}
