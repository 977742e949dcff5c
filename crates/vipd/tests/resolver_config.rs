//! `[resolver]` validation: defaults, the forwarder's resolv_conf default, and refusals.

use std::net::IpAddr;
use std::path::PathBuf;

use vipd::config::Config;
use vipd::resolver::{OwnNameserver, ResolverConfig};

const BASE: &str = r#"
cluster_name = "ostest"
base_domain = "test.metalkube.org"

[[instance]]
name = "api"
vips = ["192.0.2.5"]
interface = "eth0"

[[instance]]
name = "ingress"
vips = ["192.0.2.6"]
interface = "eth0"
"#;

fn parse(extra: &str) -> Config {
    let text = format!("{BASE}{extra}");
    match Config::parse(&text, "vipd.toml") {
        Ok(c) => c,
        Err(e) => panic!("refused:\n{e}\n--- config ---\n{text}"),
    }
}

fn refusal(extra: &str) -> String {
    let text = format!("{BASE}{extra}");
    match Config::parse(&text, "vipd.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn ip(t: &str) -> IpAddr {
    t.parse().unwrap()
}

#[test]
fn without_manage_vipd_does_not_manage_resolv_conf() {
    let c = parse("[dns]\n[resolver]\nnameserver = \"192.0.2.11\"\n");
    assert_eq!(c.resolver, None);
    assert_eq!(
        c.dns.unwrap().resolv_conf,
        PathBuf::from("/etc/resolv.conf")
    );
}

#[test]
fn manage_applies_every_default() {
    let c = parse("[dns]\n[resolver]\nmanage = true\n");
    assert_eq!(
        c.resolver,
        Some(ResolverConfig {
            target: PathBuf::from("/etc/resolv.conf"),
            source: PathBuf::from("/var/run/NetworkManager/resolv.conf"),
            upstream_copy: PathBuf::from("/run/vipd/resolv.conf.upstream"),
            nameserver: OwnNameserver::InstanceAddress("api".to_owned()),
            search: None,
            cluster_domain: "ostest.test.metalkube.org".to_owned(),
        })
    );
}

#[test]
fn manage_makes_the_forwarder_read_the_source() {
    let c = parse("[dns]\n[resolver]\nmanage = true\n");
    assert_eq!(
        c.dns.unwrap().resolv_conf,
        PathBuf::from("/var/run/NetworkManager/resolv.conf")
    );
}

#[test]
fn bootstrap_mode_makes_the_forwarder_read_the_saved_copy() {
    let c = parse("[dns]\n[resolver]\nmanage = true\nsource = \"/etc/resolv.conf\"\n");
    assert_eq!(
        c.dns.unwrap().resolv_conf,
        PathBuf::from("/run/vipd/resolv.conf.upstream")
    );
}

#[test]
fn an_explicit_forwarder_file_other_than_the_target_is_kept() {
    let c = parse("[dns]\nresolv_conf = \"/etc/vipd/upstreams.conf\"\n[resolver]\nmanage = true\n");
    assert_eq!(
        c.dns.unwrap().resolv_conf,
        PathBuf::from("/etc/vipd/upstreams.conf")
    );
}

#[test]
fn a_forwarder_reading_the_target_is_refused() {
    let e = refusal("[dns]\nresolv_conf = \"/etc/resolv.conf\"\n[resolver]\nmanage = true\n");
    assert_eq!(
        e,
        "vipd.toml:15:15: dns: resolv_conf: is /etc/resolv.conf, the file [resolver] rewrites to list this node first: the forwarder would send queries to itself; remove resolv_conf (with [resolver] it defaults to /var/run/NetworkManager/resolv.conf)"
    );
}

#[test]
fn manage_without_dns_is_refused() {
    let e = refusal("[resolver]\nmanage = true\n");
    assert_eq!(
        e,
        "vipd.toml:14:1: resolver: manage: is true but there is no [dns] table: resolv.conf would point the node at a DNS server vipd does not run; add [dns] or set manage = false"
    );
}

#[test]
fn a_configured_nameserver_is_used() {
    let c = parse("[dns]\n[resolver]\nmanage = true\nnameserver = \"192.0.2.11\"\n");
    assert_eq!(
        c.resolver.unwrap().nameserver,
        OwnNameserver::Address(ip("192.0.2.11"))
    );
}

#[test]
fn a_nameserver_the_dns_does_not_listen_on_is_refused() {
    let e = refusal(
        "[dns]\nlisten = [\"192.0.2.12:53\", \"192.0.2.11:5353\"]\n[resolver]\nmanage = true\nnameserver = \"192.0.2.11\"\n",
    );
    assert_eq!(
        e,
        "vipd.toml:18:14: resolver: nameserver: 192.0.2.11 is not served by [dns] listen (192.0.2.12:53, 192.0.2.11:5353); resolv.conf can only name port 53: add \"192.0.2.11:53\" or the wildcard of its family to listen"
    );
}

#[test]
fn the_api_instance_unicast_source_is_the_default_nameserver() {
    let text = BASE.replace(
        "interface = \"eth0\"",
        "interface = \"eth0\"\nunicast_source = \"192.0.2.21\"\nunicast_peers = [\"192.0.2.22\"]",
    );
    let c = Config::parse(
        &format!("{text}[dns]\n[resolver]\nmanage = true\n"),
        "vipd.toml",
    )
    .unwrap();
    assert_eq!(
        c.resolver.unwrap().nameserver,
        OwnNameserver::Address(ip("192.0.2.21"))
    );
}

#[test]
fn without_a_wildcard_listen_the_first_specific_port_53_address_is_the_default() {
    let c = parse(
        "[dns]\nlisten = [\"192.0.2.13:5353\", \"192.0.2.12:53\"]\n[resolver]\nmanage = true\n",
    );
    assert_eq!(
        c.resolver.unwrap().nameserver,
        OwnNameserver::Address(ip("192.0.2.12"))
    );
}

#[test]
fn no_usable_default_nameserver_is_refused() {
    let e = refusal("[dns]\nlisten = [\"[::]:53\"]\n[resolver]\nmanage = true\n");
    assert_eq!(
        e,
        "vipd.toml:16:1: resolver: nameserver: cannot tell which address this node's DNS answers on: no IPv4 api instance with [dns] listen on 0.0.0.0:53, and no specific address on port 53 in listen ([::]:53); set nameserver = \"<this node's address>\""
    );
}

#[test]
fn search_is_normalised_and_checked() {
    let c = parse(
        "[dns]\n[resolver]\nmanage = true\nsearch = [\"Ostest.Example.COM.\", \"example.org\"]\n",
    );
    assert_eq!(
        c.resolver.unwrap().search,
        Some(vec![
            "ostest.example.com".to_owned(),
            "example.org".to_owned()
        ])
    );
}

#[test]
fn a_relative_target_is_refused() {
    let e = refusal("[dns]\n[resolver]\nmanage = true\ntarget = \"resolv.conf\"\n");
    assert_eq!(
        e,
        "vipd.toml:17:10: resolver: target: \"resolv.conf\" is relative; give an absolute path (the daemon's working directory is not defined)"
    );
}

#[test]
fn an_upstream_copy_equal_to_the_target_is_refused() {
    let e = refusal("[dns]\n[resolver]\nmanage = true\nupstream_copy = \"/etc/resolv.conf\"\n");
    assert_eq!(
        e,
        "vipd.toml:17:17: resolver: upstream_copy: is the target /etc/resolv.conf; give a file of vipd's own, e.g. \"/run/vipd/resolv.conf.upstream\""
    );
}

#[test]
fn an_unknown_resolver_key_is_refused() {
    let e = refusal("[dns]\n[resolver]\nmanag = true\n");
    assert!(e.starts_with("vipd.toml:16:1: resolver"), "{e}");
    assert!(e.contains("unknown field `manag`"), "{e}");
}
