//! Configurations that must load, and the exact values they resolve to.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use vipd::config::{ClientNet, Config, Family, TrackConfig, VridSource};
use vipd_vrrp::{Auth, ChecksumForm, TtlPolicy, Version};

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

fn load(relative: &str) -> Config {
    let path = repo_file(relative);
    match Config::load(&path) {
        Ok(config) => config,
        Err(e) => panic!("{} was refused:\n{e}", path.display()),
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn ips(texts: &[&str]) -> Vec<IpAddr> {
    texts.iter().map(|t| ip(t)).collect()
}

#[test]
fn minimal_config_applies_every_default() {
    let config = load("tests/configs/minimal.toml");
    assert_eq!(config.cluster_name, "ostest");
    assert_eq!(config.base_domain, None);
    assert_eq!(config.dns, None);
    assert_eq!(config.http, None);
    assert_eq!(config.control.socket, PathBuf::from("/run/vipd/vipd.sock"));
    assert!(config.warnings.is_empty());
    assert_eq!(config.instances.len(), 1);
    let api = &config.instances[0];
    assert_eq!(api.name, "api");
    assert_eq!(api.vrid, 14);
    assert_eq!(
        api.vrid_source,
        VridSource::Derived("ostest-api".to_owned())
    );
    assert_eq!(api.vips, ips(&["192.0.2.5"]));
    assert_eq!(api.family, Family::Ipv4);
    assert_eq!(api.interface, None);
    assert_eq!(api.priority, 100);
    assert_eq!(api.advert_interval, Duration::from_secs(1));
    assert_eq!(api.version, Version::V3);
    assert_eq!(api.auth, Auth::None);
    assert_eq!(api.checksum, ChecksumForm::PseudoHeader);
    assert!(api.preempt);
    assert_eq!(api.unicast_source, None);
    assert!(api.peers.is_empty());
    assert!(!api.is_unicast());
    assert_eq!(api.ttl, (255, 255));
    assert_eq!(api.ttl_policy(), TtlPolicy::Require255);
    assert_eq!(api.announce_count, 5);
    assert_eq!(api.announce_repeat_after, Some(Duration::from_secs(5)));
    assert_eq!(api.announce_refresh, Some(Duration::from_secs(60)));
    assert_eq!(api.resign_wait, Duration::from_secs(3));
    assert!(api.track.is_empty());
}

#[test]
fn master_example_matches_the_openshift_master() {
    let config = load("examples/master.toml");
    assert_eq!(config.checks.len(), 6);
    let api = config.instance("api").unwrap();
    assert_eq!(api.vrid, 14);
    assert_eq!(api.priority, 40);
    assert_eq!(api.version, Version::V2);
    assert_eq!(api.auth, Auth::Pass(*b"ostest_a"));
    assert_eq!(api.checksum, ChecksumForm::Plain);
    assert_eq!(api.unicast_source, Some(ip("192.0.2.11")));
    assert_eq!(api.peers, ips(&["192.0.2.12", "192.0.2.13"]));
    assert_eq!(api.ttl, (1, 255));
    assert_eq!(api.ttl_policy(), TtlPolicy::Range { min: 1, max: 255 });
    // Track weights default to the checks' own: 40 + 20 + 5 + 3 = 68, the OpenShift maximum.
    assert_eq!(
        api.track,
        vec![
            TrackConfig {
                check: "chk_ocp_lb".into(),
                weight: 20
            },
            TrackConfig {
                check: "chk_ocp_both".into(),
                weight: 5
            },
            TrackConfig {
                check: "chk_mcs".into(),
                weight: 3
            },
        ]
    );
    let ingress = config.instance("ingress").unwrap();
    assert_eq!(ingress.vrid, 93);
    assert_eq!(ingress.priority, 20);
    assert_eq!(ingress.auth, Auth::Pass(*b"ostest_i"));
    assert_eq!(
        ingress.track.iter().map(|t| t.weight).collect::<Vec<_>>(),
        vec![0, 10, 50]
    );
    let dns = config.dns.as_ref().unwrap();
    assert_eq!(dns.cluster_domain, "ostest.test.metalkube.org");
    assert_eq!(dns.api_vips, ips(&["192.0.2.5"]));
    assert_eq!(dns.ingress_vips, ips(&["192.0.2.10"]));
    assert_eq!(
        dns.resolv_conf,
        PathBuf::from("/var/run/NetworkManager/resolv.conf")
    );
    assert_eq!(dns.ttl, 30);
    assert_eq!(dns.max_udp_size, 512);
    assert_eq!(
        dns.listen,
        vec![
            "0.0.0.0:53".parse::<SocketAddr>().unwrap(),
            "[::]:53".parse::<SocketAddr>().unwrap()
        ]
    );
    assert_eq!(dns.nodes.len(), 5);
    assert_eq!(dns.nodes[0].name, "master-0");
    assert_eq!(dns.nodes[0].addresses, ips(&["192.0.2.11"]));
    assert_eq!(
        config.http.as_ref().unwrap().listen,
        "0.0.0.0:18080".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn master_example_warns_that_passwords_are_truncated_to_8_bytes() {
    let config = load("examples/master.toml");
    let warnings: Vec<String> = config.warnings.iter().map(|w| w.to_string()).collect();
    let file = repo_file("examples/master.toml");
    assert_eq!(
        warnings[0],
        format!(
            "{}:70:12: instance \"api\": password: 14 bytes long; only the first 8 (\"ostest_a\") are sent and compared (RFC 3768 section 5.3.10), as keepalived does",
            file.display()
        )
    );
    assert_eq!(warnings.len(), 2);
}

#[test]
fn bootstrap_example_is_multicast_api_only() {
    let config = load("examples/bootstrap.toml");
    assert_eq!(config.instances.len(), 1);
    let api = &config.instances[0];
    assert_eq!(api.name, "api");
    assert_eq!(api.vrid, 14);
    assert_eq!(api.priority, 70);
    assert_eq!(api.version, Version::V2);
    assert!(api.peers.is_empty());
    assert_eq!(api.ttl, (255, 255));
    assert!(api.track.is_empty());
    let dns = config.dns.as_ref().unwrap();
    assert_eq!(dns.api_vips, ips(&["192.0.2.5"]));
    assert_eq!(dns.ingress_vips, ips(&["192.0.2.10"]));
    assert_eq!(dns.resolv_conf, PathBuf::from("/etc/resolv.conf"));
}

#[test]
fn worker_example_runs_ingress_and_answers_the_api_vip() {
    let config = load("examples/worker.toml");
    let names: Vec<&str> = config.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["ingress"]);
    assert_eq!(config.instances[0].peers.len(), 4);
    let dns = config.dns.as_ref().unwrap();
    assert_eq!(dns.api_vips, ips(&["192.0.2.5"]));
    assert_eq!(dns.ingress_vips, ips(&["192.0.2.10"]));
}

#[test]
fn ipv6_config_uses_v3_with_the_pseudo_header() {
    let config = load("tests/configs/ipv6.toml");
    let api = config.instance("api").unwrap();
    assert_eq!(api.family, Family::Ipv6);
    assert_eq!(api.version, Version::V3);
    assert_eq!(api.auth, Auth::None);
    assert_eq!(api.checksum, ChecksumForm::PseudoHeader);
    assert_eq!(api.advert_interval, Duration::from_millis(100));
    assert_eq!(api.peers, ips(&["2001:db8::12", "2001:db8::13"]));
    let dns = config.dns.as_ref().unwrap();
    assert_eq!(dns.api_vips, ips(&["2001:db8::5"]));
    assert_eq!(
        dns.allow,
        vec!["2001:db8::/32".parse::<ClientNet>().unwrap()]
    );
    assert_eq!(dns.allow[0].network(), ip("2001:db8::"));
    assert_eq!(dns.allow[0].prefix_len(), 32);
}

#[test]
fn dual_stack_dns_answers_both_families() {
    let config = load("tests/configs/dual-stack.toml");
    let dns = config.dns.as_ref().unwrap();
    assert_eq!(dns.api_vips, ips(&["192.0.2.5", "2001:db8::5"]));
    assert_eq!(dns.ingress_vips, ips(&["192.0.2.10", "2001:db8::10"]));
}

#[test]
fn same_derived_vrid_in_two_families_is_accepted() {
    // "api" and "api-v6" hash differently, but an explicit equal VRID per family is legal too:
    // VRRP keeps IPv4 and IPv6 virtual routers apart (RFC 9568 section 1).
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
vrid = 14
[[instance]]
name = "api-v6"
vips = ["2001:db8::5"]
vrid = 14
"#;
    let config = Config::parse(text, "vipd.toml").unwrap();
    assert_eq!(config.instances[1].vrid, 14);
    assert_eq!(config.instances[1].vrid_source, VridSource::Configured);
}

#[test]
fn zero_durations_turn_announcements_off() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
announce_repeat_after = "0s"
announce_refresh = "0s"
resign_wait = "0s"
"#;
    let config = Config::parse(text, "vipd.toml").unwrap();
    let api = &config.instances[0];
    assert_eq!(api.announce_repeat_after, None);
    assert_eq!(api.announce_refresh, None);
    assert_eq!(api.resign_wait, Duration::ZERO);
}

#[test]
fn version_2_without_password_is_auth_type_0() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
version = 2
"#;
    let config = Config::parse(text, "vipd.toml").unwrap();
    assert_eq!(config.instances[0].auth, Auth::None);
    assert!(config.warnings.is_empty());
}

#[test]
fn track_weight_overrides_the_checks_own() {
    let text = r#"cluster_name = "ostest"
[[check]]
name = "chk_ocp_lb"
http = "http://localhost:9444/haproxy_ready"
weight = 20
[[instance]]
name = "api"
vips = ["192.0.2.5"]
track = [{ check = "chk_ocp_lb", weight = -30 }]
"#;
    let config = Config::parse(text, "vipd.toml").unwrap();
    assert_eq!(
        config.instances[0].track,
        vec![TrackConfig {
            check: "chk_ocp_lb".into(),
            weight: -30
        }]
    );
}

#[test]
fn router_config_carries_the_resolved_values() {
    let config = load("examples/master.toml");
    let api = config.instance("api").unwrap();
    let rc = api.router_config(ip("192.0.2.11"));
    assert_eq!(rc.version, Version::V2);
    assert_eq!(rc.vrid, 14);
    assert_eq!(rc.priority, 40);
    assert_eq!(rc.advert_interval, Duration::from_secs(1));
    assert_eq!(rc.primary_address, ip("192.0.2.11"));
    assert_eq!(rc.vips, ips(&["192.0.2.5"]));
    assert_eq!(rc.auth, Auth::Pass(*b"ostest_a"));
    assert_eq!(rc.ttl_policy, TtlPolicy::Range { min: 1, max: 255 });
    assert_eq!(rc.resign_wait, Duration::from_secs(3));
    assert_eq!(rc.announce_repeat_after, Some(Duration::from_secs(5)));
    assert_eq!(rc.announce_refresh, Some(Duration::from_secs(60)));
}

#[test]
fn dns_allow_networks_contain_only_their_own_family() {
    let config = Config::parse(
        "cluster_name = \"ostest\"\nbase_domain = \"example.com\"\napi_vips = [\"192.0.2.5\"]\ningress_vips = [\"192.0.2.10\"]\n[dns]\nallow = [\"192.0.2.0/24\"]\n",
        "/etc/vipd/vipd.toml",
    )
    .unwrap();
    let net = config.dns.unwrap().allow[0];
    assert!(net.contains(ip("192.0.2.77")));
    assert!(!net.contains(ip("198.51.100.1")));
    assert!(!net.contains(ip("2001:db8::1")));
}

#[test]
fn every_example_loads_without_warnings_except_the_explicit_passwords() {
    let mut names: Vec<String> = std::fs::read_dir(repo_file("examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bootstrap.toml",
            "master.toml",
            "role-bootstrap.toml",
            "role-master.toml",
            "role-worker.toml",
            "worker.toml"
        ]
    );
    for name in names {
        let config = load(&format!("examples/{name}"));
        // Only hand-written v2 passwords longer than 8 bytes warn; the role examples do not.
        let expected = if name.starts_with("role-") {
            0
        } else {
            config.instances.len()
        };
        assert_eq!(
            config.warnings.len(),
            expected,
            "{name}: {:?}",
            config.warnings
        );
    }
}

#[test]
fn every_toml_block_of_the_configuration_reference_loads() {
    let doc = std::fs::read_to_string(repo_file("docs/configuration.md")).unwrap();
    let blocks: Vec<&str> = doc
        .split("```toml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 8);
    for (n, block) in blocks.iter().enumerate() {
        if let Err(e) = Config::parse(block, format!("docs/configuration.md block {}", n + 1)) {
            panic!("{e}");
        }
    }
}

#[test]
fn unicast_instances_check_sources_by_default_and_check_source_false_turns_it_off() {
    let parse = |extra: &str| {
        let text = format!(
            "cluster_name = \"ostest\"\n[[instance]]\nname = \"api\"\nvips = [\"192.0.2.5\"]\nunicast_peers = [\"192.0.2.12\"]\n{extra}"
        );
        match vipd::config::Config::parse(&text, "/etc/vipd/vipd.toml") {
            Ok(c) => c.instances[0].clone(),
            Err(e) => panic!("{e}"),
        }
    };
    let default = parse("");
    assert!(default.check_source);
    assert_eq!(
        default.source_filter(),
        vipd_vrrp::SourceFilter::Only(vec!["192.0.2.12".parse().unwrap()])
    );
    let off = parse("check_source = false\n");
    assert!(!off.check_source);
    assert_eq!(off.source_filter(), vipd_vrrp::SourceFilter::Any);
    let multicast = vipd::config::Config::parse(
        "cluster_name = \"ostest\"\n[[instance]]\nname = \"api\"\nvips = [\"192.0.2.5\"]\n",
        "/etc/vipd/vipd.toml",
    )
    .unwrap();
    assert_eq!(
        multicast.instances[0].source_filter(),
        vipd_vrrp::SourceFilter::Any
    );
}
