//! `vipd import keepalived`: every fixture in tests/openshift/ is translated, parsed back with
//! `Config::parse`, and its resolved values compared with the keepalived.conf they came from.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vipd::config::{Config, TrackConfig, VridSource};
use vipd::health::{Probe, TcpTarget};
use vipd::import::{assemble, translate_corefile, translate_keepalived, Import, Severity};
use vipd_vrrp::{Auth, Version};

fn fixture(name: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/openshift")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

fn import(name: &str) -> Import {
    let (_, text) = fixture(name);
    assemble(Some((name, translate_keepalived(&text, None))), None, None)
}

/// Imports a fixture that must translate completely and parses the result.
fn round_trip(name: &str) -> Config {
    let import = import(name);
    assert!(!import.refused(), "{:#?}", import.notes);
    match Config::parse(&import.toml, name) {
        Ok(c) => c,
        Err(e) => panic!("{e}\n--- output ---\n{}", import.toml),
    }
}

fn ips(texts: &[&str]) -> Vec<IpAddr> {
    texts.iter().map(|t| t.parse().unwrap()).collect()
}

fn tracks(config: &Config, instance: &str) -> Vec<(String, i32)> {
    config
        .instance(instance)
        .unwrap()
        .track
        .iter()
        .map(|TrackConfig { check, weight }| (check.clone(), *weight))
        .collect()
}

fn named(list: &[(&str, i32)]) -> Vec<(String, i32)> {
    list.iter().map(|(n, w)| ((*n).to_owned(), *w)).collect()
}

#[test]
fn bootstrap_round_trips_to_multicast_api_at_70_with_pass() {
    let config = round_trip("keepalived-bootstrap.conf");
    assert_eq!(config.cluster_name, "ostest");
    assert_eq!(config.instances.len(), 1);
    let api = &config.instances[0];
    assert_eq!(api.name, "api");
    assert_eq!(api.vrid, 14);
    assert_eq!(api.vrid_source, VridSource::Derived("ostest-api".into()));
    assert_eq!(api.priority, 70);
    assert_eq!(api.version, Version::V2);
    assert_eq!(api.auth, Auth::Pass(*b"ostest_a"));
    assert_eq!(api.advert_interval, Duration::from_secs(1));
    assert_eq!(api.vips, ips(&["192.0.2.5"]));
    assert_eq!(api.interface.as_deref(), Some("ens3"));
    assert!(api.peers.is_empty());
    assert!(config.checks.is_empty());
}

#[test]
fn master_round_trips_instances_peers_and_auth() {
    let config = round_trip("keepalived-master.conf");
    let api = config.instance("api").unwrap();
    assert_eq!((api.vrid, api.priority), (14, 40));
    assert_eq!(api.auth, Auth::Pass(*b"ostest_a"));
    assert_eq!(api.unicast_source, Some("192.0.2.11".parse().unwrap()));
    assert_eq!(api.peers, ips(&["192.0.2.12", "192.0.2.13"]));
    assert_eq!(api.announce_refresh, Some(Duration::from_secs(60)));
    let ingress = config.instance("ingress").unwrap();
    assert_eq!((ingress.vrid, ingress.priority), (93, 20));
    assert_eq!(ingress.auth, Auth::Pass(*b"ostest_i"));
    assert_eq!(
        ingress.peers,
        ips(&["192.0.2.12", "192.0.2.13", "192.0.2.21", "192.0.2.22"])
    );
}

#[test]
fn master_checks_keep_keepalived_weights_and_timing() {
    let config = round_trip("keepalived-master.conf");
    assert_eq!(
        tracks(&config, "api"),
        named(&[("chk_ocp_lb", 20), ("chk_ocp_both", 5), ("chk_mcs", 3)])
    );
    assert_eq!(
        tracks(&config, "ingress"),
        named(&[
            ("chk_ingress", 0),
            ("chk_ingress_ready", 10),
            ("chk_default_ingress", 50)
        ])
    );
    let timing: Vec<(&str, u128, u128, u32, u32)> = config
        .checks
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.interval.as_millis(),
                c.timeout.as_millis(),
                c.rise,
                c.fall,
            )
        })
        .collect();
    assert_eq!(
        timing,
        [
            ("chk_ocp_lb", 2000, 1900, 3, 3),
            ("chk_ocp_both", 2000, 1900, 3, 3),
            ("chk_mcs", 2000, 1900, 3, 3),
            ("chk_ingress", 1000, 900, 3, 2),
            ("chk_ingress_ready", 1000, 900, 3, 2),
            ("chk_default_ingress", 5000, 4900, 3, 2),
        ]
    );
}

#[test]
fn curl_scripts_become_native_http_checks() {
    let config = round_trip("keepalived-master.conf");
    let ready = config
        .checks
        .iter()
        .find(|c| c.name == "chk_ingress_ready")
        .unwrap();
    match &ready.probe {
        Probe::Http(t) => {
            assert_eq!(t.to_string(), "http://localhost:1936/healthz/ready");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn openshift_script_files_become_the_builtin_checks() {
    let config = round_trip("keepalived-master.conf");
    let mcs = config.checks.iter().find(|c| c.name == "chk_mcs").unwrap();
    assert_eq!(
        mcs.probe,
        Probe::Tcp(TcpTarget {
            host: "localhost".into(),
            port: 22623
        })
    );
    let lb = config
        .checks
        .iter()
        .find(|c| c.name == "chk_ocp_lb")
        .unwrap();
    assert!(matches!(&lb.probe, Probe::AllOf(p) if p.len() == 2));
    let warned: Vec<usize> = import("keepalived-master.conf").notes[0]
        .1
        .iter()
        .map(|n| n.line)
        .collect();
    // 67 and 92: the unicast_peer blocks (no check_unicast_src: vipd checks sources, keepalived
    // did not).
    assert_eq!(warned, [12, 20, 29, 53, 67, 92]);
}

#[test]
fn ipv6_master_round_trips_to_v3_without_auth() {
    let config = round_trip("keepalived-master-ipv6.conf");
    assert_eq!(config.cluster_name, "cnf10");
    let api = config.instance("api").unwrap();
    assert_eq!((api.vrid, api.version), (147, Version::V3));
    assert_eq!(api.auth, Auth::None);
    assert_eq!(api.vips, ips(&["2001:db8::5"]));
    assert_eq!(api.peers, ips(&["2001:db8::12", "2001:db8::13"]));
    let ingress = config.instance("ingress").unwrap();
    assert_eq!((ingress.vrid, ingress.version), (2, Version::V3));
    assert_eq!(tracks(&config, "ingress"), named(&[("chk_ingress", 0)]));
}

#[test]
fn worker_round_trips_ingress_only() {
    let config = round_trip("keepalived-worker.conf");
    let names: Vec<&str> = config.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["ingress"]);
    let ingress = &config.instances[0];
    assert_eq!((ingress.vrid, ingress.priority), (93, 20));
    assert_eq!(ingress.unicast_source, Some("192.0.2.21".parse().unwrap()));
    assert_eq!(config.checks.len(), 3);
}

#[test]
fn every_value_names_its_source_line() {
    let import = import("keepalived-master.conf");
    assert!(import
        .toml
        .contains("priority = 40  # line 64: priority 40\n"));
    assert!(import.toml.contains(
        "unicast_peers = [\"192.0.2.12\", \"192.0.2.13\"]  # lines 68-69: unicast_peer\n"
    ));
    assert!(import
        .toml
        .contains("# line 63: virtual_router_id 14 = the VRID vipd derives from \"ostest-api\"\n"));
}

#[test]
fn untranslatable_keepalived_lists_each_problem_with_its_line() {
    let import = import("keepalived-untranslatable.conf");
    assert!(import.refused());
    let notes: Vec<(usize, Severity)> = import
        .notes
        .iter()
        .flat_map(|(_, n)| n)
        .map(|n| (n.line, n.severity))
        .collect();
    use Severity::*;
    assert_eq!(
        notes,
        [
            // No <cluster>_API / _INGRESS instance: the cluster name is unknown.
            (0, Refused),
            (4, Warning),  // notification_email
            (10, Warning), // a non-curl script becomes an exec check
            (16, Warning), // state MASTER
            (23, Warning), // a /24 VIP is added as /32
            (25, Refused), // virtual_routes
            (31, Warning), // notify_master
        ]
    );
}

#[test]
fn a_script_needing_a_shell_runs_under_bin_sh() {
    let text = "vrrp_script chk { \n script \"killall -0 haproxy\"\n interval 2\n}\nvrrp_instance t_API {\n virtual_router_id 7\n virtual_ipaddress {\n 192.0.2.5\n }\n track_script {\n chk\n }\n}\n";
    let import = assemble(Some(("k", translate_keepalived(text, None))), None, None);
    let config = Config::parse(&import.toml, "k").unwrap();
    assert_eq!(
        config.checks[0].probe,
        Probe::Exec(vec![
            "/bin/sh".into(),
            "-c".into(),
            "killall -0 haproxy".into()
        ])
    );
    assert_eq!(config.instances[0].vrid, 7);
    assert_eq!(config.instances[0].vrid_source, VridSource::Configured);
}

#[test]
fn ah_authentication_is_refused() {
    let text = "vrrp_instance t_API {\n virtual_router_id 7\n authentication {\n auth_type AH\n auth_pass x\n }\n virtual_ipaddress {\n 192.0.2.5\n }\n}\n";
    let k = translate_keepalived(text, None);
    let refused: Vec<usize> = k
        .notes
        .iter()
        .filter(|n| n.severity == Severity::Refused)
        .map(|n| n.line)
        .collect();
    assert_eq!(refused, [4]);
}

#[test]
fn curl_without_fail_is_translated_with_a_warning() {
    let text = "vrrp_script chk {\n script \"curl -o /dev/null -kLs https://0:6443/readyz\"\n interval 1\n}\nvrrp_instance t_API {\n virtual_router_id 7\n virtual_ipaddress {\n 192.0.2.5\n }\n}\n";
    let k = translate_keepalived(text, None);
    assert_eq!(k.notes.len(), 1);
    assert_eq!(k.notes[0].line, 2);
    assert!(k.notes[0].message.contains("without -f/--fail"));
    assert!(k
        .body
        .contains("http = \"https://127.0.0.1:6443/readyz\"\n"));
}

#[test]
fn keepalived_and_corefile_combine_into_one_configuration() {
    let (_, k) = fixture("keepalived-master.conf");
    let (_, c) = fixture("Corefile");
    let import = assemble(
        Some(("keepalived.conf", translate_keepalived(&k, None))),
        Some(("Corefile", translate_corefile(&c))),
        None,
    );
    assert!(!import.refused(), "{:#?}", import.notes);
    let config = Config::parse(&import.toml, "combined").unwrap();
    assert_eq!(config.instances.len(), 2);
    assert_eq!(config.checks.len(), 6);
    let dns = config.dns.unwrap();
    assert_eq!(dns.cluster_domain, "ostest.test.metalkube.org");
    assert_eq!(dns.api_vips, config.instances[0].vips);
}

#[test]
fn cluster_names_that_differ_between_the_files_are_refused() {
    let (_, k) = fixture("keepalived-master-ipv6.conf");
    let (_, c) = fixture("Corefile");
    let import = assemble(
        Some(("keepalived.conf", translate_keepalived(&k, None))),
        Some(("Corefile", translate_corefile(&c))),
        None,
    );
    assert!(import.refused());
    assert_eq!(
        import.notes[0].1[0].message,
        "the cluster name \"cnf10\" (keepalived.conf:25) differs from \"ostest\" (Corefile:10); the two files belong to different clusters, or give --cluster-name"
    );
}

#[test]
fn the_per_instance_version_keyword_is_translated() {
    // keepalived's keyword inside vrrp_instance is `version` (global_defs has `vrrp_version`).
    let text = "global_defs {\n vrrp_version 2\n}\nvrrp_instance t_API {\n virtual_router_id 7\n version 3\n virtual_ipaddress {\n 192.0.2.5\n }\n}\n";
    let k = translate_keepalived(text, None);
    assert!(k.notes.is_empty(), "{:#?}", k.notes);
    let import = assemble(Some(("k", k)), None, None);
    let config = Config::parse(&import.toml, "k").unwrap();
    assert_eq!(config.instances[0].version, Version::V3);
    assert!(
        import.toml.contains("version = 3  # line 6: version 3"),
        "{}",
        import.toml
    );
}

#[test]
fn global_garp_settings_become_announcement_defaults_unless_the_instance_sets_its_own() {
    let text = "global_defs {\n vrrp_garp_master_delay 3\n vrrp_garp_master_repeat 2\n vrrp_garp_master_refresh 0\n}\n\
                vrrp_instance t_API {\n virtual_router_id 7\n virtual_ipaddress {\n 192.0.2.5\n }\n}\n\
                vrrp_instance t_INGRESS {\n virtual_router_id 8\n garp_master_repeat 4\n virtual_ipaddress {\n 192.0.2.10\n }\n}\n";
    let k = translate_keepalived(text, None);
    assert!(k.notes.is_empty(), "{:#?}", k.notes);
    let import = assemble(Some(("k", k)), None, None);
    let config = Config::parse(&import.toml, "k").unwrap();
    let api = config.instance("api").unwrap();
    assert_eq!(api.announce_count, 2);
    assert_eq!(api.announce_repeat_after, Some(Duration::from_secs(3)));
    assert_eq!(
        api.announce_refresh, None,
        "vrrp_garp_master_refresh 0 = off"
    );
    let ingress = config.instance("ingress").unwrap();
    assert_eq!(
        ingress.announce_count, 4,
        "the instance's own garp_master_repeat wins"
    );
    assert_eq!(ingress.announce_repeat_after, Some(Duration::from_secs(3)));
}

#[test]
fn garp_delay_and_refresh_of_zero_turn_the_announcements_off_in_an_instance_too() {
    let text = "vrrp_instance t_API {\n virtual_router_id 7\n garp_master_delay 0\n garp_master_refresh 0\n virtual_ipaddress {\n 192.0.2.5\n }\n}\n";
    let k = translate_keepalived(text, None);
    assert!(k.notes.is_empty(), "{:#?}", k.notes);
    let import = assemble(Some(("k", k)), None, None);
    let api = Config::parse(&import.toml, "k")
        .unwrap()
        .instances
        .remove(0);
    assert_eq!(api.announce_repeat_after, None);
    assert_eq!(api.announce_refresh, None);
}

#[test]
fn unicast_peers_are_source_checked_and_check_unicast_src_is_translated_without_a_note() {
    let instance = |extra: &str| {
        format!(
            "vrrp_instance t_API {{\n virtual_router_id 7\n version 3\n{extra} unicast_src_ip 192.0.2.11\n unicast_peer {{\n  192.0.2.12\n }}\n virtual_ipaddress {{\n 192.0.2.5\n }}\n}}\n"
        )
    };
    // Without check_unicast_src: vipd's default (checked against unicast_peers) with a note
    // on the unicast_peer line saying how keepalived differed.
    let k = translate_keepalived(&instance(""), None);
    let lines: Vec<usize> = k.notes.iter().map(|n| n.line).collect();
    assert_eq!(lines, [5], "{:#?}", k.notes);
    assert!(k.notes[0].message.contains("accept_from"), "{:#?}", k.notes);
    let config = Config::parse(&assemble(Some(("k", k)), None, None).toml, "k").unwrap();
    assert!(config.instances[0].check_source);
    // With it: written explicitly, no note.
    let k = translate_keepalived(&instance(" check_unicast_src\n"), None);
    assert!(k.notes.is_empty(), "{:#?}", k.notes);
    let import = assemble(Some(("k", k)), None, None);
    assert!(
        import.toml.contains("check_source = true"),
        "{}",
        import.toml
    );
    let config = Config::parse(&import.toml, "k").unwrap();
    assert!(config.instances[0].check_source);
    assert_eq!(config.instances[0].peers, ips(&["192.0.2.12"]));
}

// ---- today's MCO renders (tests/openshift/keepalived-*-current.conf and friends) ----------

#[test]
fn current_master_render_imports_api_0_and_ingress_0_with_their_checks() {
    let config = round_trip("keepalived-master-current.conf");
    let api = config.instance("api-0").unwrap();
    assert_eq!((api.vrid, api.priority), (14, 40));
    assert_eq!(api.peers, ips(&["192.0.2.12", "192.0.2.13"]));
    assert_eq!(tracks(&config, "api-0").len(), 3);
    let ingress = config.instance("ingress-0").unwrap();
    assert_eq!((ingress.vrid, ingress.priority), (93, 20));
    assert_eq!(ingress.peers.len(), 4);
    assert!(config.sync_groups.is_empty());
}

#[test]
fn current_worker_and_bootstrap_renders_import() {
    let worker = round_trip("keepalived-worker-current.conf");
    assert_eq!(worker.instances.len(), 1);
    assert_eq!(worker.instances[0].name, "ingress-0");
    let bootstrap = round_trip("keepalived-bootstrap-current.conf");
    let api = bootstrap.instance("api-0").unwrap();
    assert_eq!(api.priority, 70);
    // The bootstrap peers with every master and tracks nothing.
    assert_eq!(api.peers, ips(&["192.0.2.11", "192.0.2.12", "192.0.2.13"]));
    assert!(api.track.is_empty());
}

#[test]
fn openstack_dual_stack_sync_groups_become_sync_groups_and_carry_the_checks_to_every_member() {
    let config = round_trip("keepalived-master-openstack-dualstack.conf");
    let groups: Vec<(&str, Vec<&str>)> = config
        .sync_groups
        .iter()
        .map(|g| {
            (
                g.name.as_str(),
                g.instances.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("VG_API", vec!["api-0", "api-1"]),
            ("VG_INGRESS", vec!["ingress-0", "ingress-1"])
        ]
    );
    for name in ["api-0", "api-1"] {
        assert_eq!(
            tracks(&config, name)
                .iter()
                .map(|t| t.0.as_str())
                .collect::<Vec<_>>(),
            ["chk_ocp_lb", "chk_ocp_both", "chk_mcs"],
            "{name}"
        );
    }
    assert_eq!(
        config.instance("api-1").unwrap().vips,
        ips(&["2001:db8::5"])
    );
    assert_eq!(config.instance("api-1").unwrap().version, Version::V3);
    let worker = round_trip("keepalived-worker-openstack-dualstack.conf");
    assert_eq!(worker.sync_groups.len(), 1);
    assert_eq!(tracks(&worker, "ingress-1").len(), 3);
}

#[test]
fn a_multicast_render_stays_multicast() {
    let config = round_trip("keepalived-master-multicast.conf");
    assert!(config.instances.iter().all(|i| i.peers.is_empty()));
}

#[test]
fn a_sync_group_naming_an_unknown_instance_is_refused_with_its_line() {
    let text = "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 14\n    priority 100\n    virtual_ipaddress {\n        192.0.2.5\n    }\n}\n\
                vrrp_sync_group G {\n    group {\n        VI_1\n        VI_9\n    }\n}\n";
    let import = assemble(
        Some(("x.conf", translate_keepalived(text, None))),
        None,
        None,
    );
    assert!(import.refused());
    assert!(import
        .notes
        .iter()
        .flat_map(|(_, notes)| notes)
        .any(|n| n.line == 12 && n.message.contains("VI_9 is no vrrp_instance")));
}
