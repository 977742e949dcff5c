//! `role = "bootstrap" | "master" | "worker"` and the cluster identity read from OpenShift files:
//! the exact values a role resolves to, how a file overrides them, and every refusal.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vipd::config::{Config, Family, Role, TrackConfig, VridSource};
use vipd::health::Probe;
use vipd_vrrp::{Auth, Version};

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

/// Parses `text` as if it were a file in tests/configs/ (relative OpenShift paths resolve there).
fn parse(text: &str) -> Config {
    let path = repo_file("tests/configs/inline.toml");
    match Config::parse(text, &path) {
        Ok(config) => config,
        Err(e) => panic!("refused:\n{e}"),
    }
}

fn refusals(text: &str) -> Vec<String> {
    let path = repo_file("tests/configs/inline.toml");
    let prefix = format!("{}:", path.display());
    match Config::parse(text, &path) {
        Ok(config) => panic!("accepted a configuration that should be refused: {config:#?}"),
        Err(e) => e
            .diagnostics()
            .iter()
            .map(|d| d.to_string().replacen(&prefix, "inline.toml:", 1))
            .collect(),
    }
}

fn ips(texts: &[&str]) -> Vec<IpAddr> {
    texts.iter().map(|t| t.parse().unwrap()).collect()
}

fn track(list: &[(&str, i32)]) -> Vec<TrackConfig> {
    list.iter()
        .map(|(check, weight)| TrackConfig {
            check: (*check).to_owned(),
            weight: *weight,
        })
        .collect()
}

#[test]
fn master_role_gives_the_openshift_master_instances() {
    let config = load("examples/role-master.toml");
    assert_eq!(config.role, Some(Role::Master));
    let names: Vec<&str> = config.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["api", "ingress"]);

    let api = config.instance("api").unwrap();
    assert_eq!(api.vips, ips(&["192.0.2.5"]));
    assert_eq!(api.vrid, 14);
    assert_eq!(api.vrid_source, VridSource::Derived("ostest-api".into()));
    assert_eq!(api.priority, 40);
    assert_eq!(api.version, Version::V2);
    assert_eq!(api.auth, Auth::Pass(*b"ostest_a"));
    assert_eq!(api.advert_interval, Duration::from_secs(1));
    assert_eq!(api.peers, ips(&["192.0.2.12", "192.0.2.13"]));
    assert_eq!(
        api.track,
        track(&[("chk_ocp_lb", 20), ("chk_ocp_both", 5), ("chk_mcs", 3)])
    );

    let ingress = config.instance("ingress").unwrap();
    assert_eq!(ingress.vrid, 93);
    assert_eq!(ingress.priority, 20);
    assert_eq!(ingress.auth, Auth::Pass(*b"ostest_i"));
    assert_eq!(
        ingress.track,
        track(&[
            ("chk_ingress", 0),
            ("chk_ingress_ready", 10),
            ("chk_default_ingress", 50)
        ])
    );
}

#[test]
fn master_role_runs_the_six_openshift_checks_with_their_timing() {
    let config = load("examples/role-master.toml");
    let timing: Vec<(&str, u64, u32, u32, i32)> = config
        .checks
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.interval.as_secs(),
                c.rise,
                c.fall,
                c.weight,
            )
        })
        .collect();
    assert_eq!(
        timing,
        [
            ("chk_ocp_lb", 2, 3, 3, 20),
            ("chk_ocp_both", 2, 3, 3, 5),
            ("chk_mcs", 2, 3, 3, 3),
            ("chk_ingress", 1, 3, 2, 0),
            ("chk_ingress_ready", 1, 3, 2, 10),
            ("chk_default_ingress", 5, 3, 2, 50),
        ]
    );
    assert_eq!(config.role_checks.len(), 6);
}

#[test]
fn role_passwords_longer_than_8_bytes_draw_no_warning() {
    let config = load("examples/role-master.toml");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn a_written_long_password_still_draws_the_warning_under_a_role() {
    let config = parse(
        r#"role = "bootstrap"
cluster_name = "ostest"
api_vips = ["192.0.2.5"]
[[instance]]
name = "api"
password = "ostest_api_vip"
"#,
    );
    assert_eq!(config.warnings.len(), 1);
    assert_eq!(config.warnings[0].key, "instance \"api\": password");
    assert_eq!(config.warnings[0].line, 6);
}

#[test]
fn bootstrap_role_is_api_only_at_70_multicast_without_checks() {
    let config = load("examples/role-bootstrap.toml");
    assert_eq!(config.instances.len(), 1);
    let api = &config.instances[0];
    assert_eq!(api.name, "api");
    assert_eq!(api.priority, 70);
    assert_eq!(api.version, Version::V2);
    assert_eq!(api.auth, Auth::Pass(*b"ostest_a"));
    assert!(!api.is_unicast());
    assert_eq!(api.ttl, (255, 255));
    assert!(api.track.is_empty());
    assert!(config.checks.is_empty());
    let dns = config.dns.as_ref().unwrap();
    assert_eq!(dns.api_vips, ips(&["192.0.2.5"]));
    assert_eq!(dns.ingress_vips, ips(&["192.0.2.10"]));
}

#[test]
fn bootstrap_role_with_peers_is_unicast() {
    let config = parse(
        r#"role = "bootstrap"
cluster_name = "ostest"
api_vips = ["192.0.2.5"]
[[instance]]
name = "api"
unicast_peers = ["192.0.2.11", "192.0.2.12", "192.0.2.13"]
"#,
    );
    let api = &config.instances[0];
    assert_eq!(api.peers, ips(&["192.0.2.11", "192.0.2.12", "192.0.2.13"]));
    assert_eq!(api.priority, 70);
    assert_eq!(api.ttl, (1, 255));
}

#[test]
fn worker_role_is_ingress_only_and_dns_answers_the_api_vips() {
    let config = load("examples/role-worker.toml");
    let names: Vec<&str> = config.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["ingress"]);
    assert_eq!(config.instances[0].priority, 20);
    let checks: Vec<&str> = config.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        checks,
        ["chk_ingress", "chk_ingress_ready", "chk_default_ingress"]
    );
    assert_eq!(config.dns.unwrap().api_vips, ips(&["192.0.2.5"]));
}

#[test]
fn worker_with_an_explicit_api_instance_gets_no_role_defaults_for_it() {
    let config = parse(
        r#"role = "worker"
cluster_name = "ostest"
ingress_vips = ["192.0.2.10"]
[[instance]]
name = "api"
vips = ["192.0.2.5"]
"#,
    );
    let api = config.instance("api").unwrap();
    assert_eq!(api.priority, 100);
    assert_eq!(api.version, Version::V3);
    assert!(api.role_keys.is_empty());
    assert_eq!(config.instance("ingress").unwrap().priority, 20);
}

#[test]
fn install_config_gives_identity_and_vips_and_the_file_overrides_the_role() {
    let config = load("tests/configs/role-master-install-config.toml");
    assert_eq!(config.cluster_name, "ostest");
    assert_eq!(config.base_domain.as_deref(), Some("test.metalkube.org"));
    let source = config.identity_source.as_deref().unwrap();
    assert!(
        source.ends_with("install-config.yaml (metadata.name, baseDomain, platform.baremetal.apiVIPs, platform.baremetal.ingressVIPs)"),
        "{source}"
    );
    let api = config.instance("api").unwrap();
    assert_eq!(api.vips, ips(&["192.0.2.5"]));
    assert_eq!(api.priority, 40);
    assert!(api.role_keys.contains(&"priority"));
    let ingress = config.instance("ingress").unwrap();
    assert_eq!(ingress.vips, ips(&["192.0.2.10"]));
    assert_eq!(ingress.priority, 30);
    assert!(!ingress.role_keys.contains(&"priority"));
    assert_eq!(ingress.track, track(&[("chk_ingress", 0)]));
    // The file's chk_ingress replaces the preset; the unused ingress presets are not run.
    let chk = config
        .checks
        .iter()
        .find(|c| c.name == "chk_ingress")
        .unwrap();
    assert!(matches!(&chk.probe, Probe::Http(t) if t.host == "127.0.0.1"));
    assert_eq!(chk.interval, Duration::from_secs(2));
    assert_eq!(
        config.role_checks,
        ["chk_ocp_lb", "chk_ocp_both", "chk_mcs"]
    );
    let dns = config.dns.unwrap();
    assert_eq!(dns.cluster_domain, "ostest.test.metalkube.org");
}

#[test]
fn singular_install_config_vips_of_older_releases_are_read() {
    let config = parse(
        r#"role = "master"
openshift_install_config = "../openshift/install-config-singular.yaml"
"#,
    );
    assert_eq!(config.cluster_name, "cnf11");
    assert_eq!(config.instance("api").unwrap().vrid, 228);
    assert_eq!(config.instance("ingress").unwrap().vrid, 147);
    assert_eq!(
        config.instance("ingress").unwrap().vips,
        ips(&["192.0.2.10"])
    );
}

#[test]
fn dual_stack_role_instance_gets_a_v3_twin_with_the_same_vrid() {
    let config = load("tests/configs/role-worker-dual-stack.toml");
    let v6 = config.instance("ingress-v6").unwrap();
    assert_eq!(v6.family, Family::Ipv6);
    assert_eq!(v6.vips, ips(&["2001:db8::10"]));
    assert_eq!(v6.vrid, 93);
    assert_eq!(v6.vrid_source, VridSource::Derived("ostest-ingress".into()));
    assert_eq!(v6.version, Version::V3);
    assert_eq!(v6.auth, Auth::None);
    let v4 = config.instance("ingress").unwrap();
    assert_eq!((v4.vrid, v4.version), (93, Version::V2));
    let dns = config.dns.unwrap();
    assert_eq!(dns.api_vips, ips(&["192.0.2.5", "2001:db8::5"]));
}

#[test]
fn dual_stack_install_config_in_flow_and_block_style_is_read() {
    let config = parse(
        r#"role = "master"
openshift_install_config = "../openshift/install-config-dual-stack.yaml"
"#,
    );
    let names: Vec<&str> = config.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["api", "api-v6", "ingress", "ingress-v6"]);
    assert_eq!(config.instance("api-v6").unwrap().vrid, 147);
    assert_eq!(config.instance("ingress-v6").unwrap().vrid, 2);
}

#[test]
fn version_3_written_over_the_role_drops_the_role_password() {
    let config = parse(
        r#"role = "bootstrap"
cluster_name = "ostest"
api_vips = ["192.0.2.5"]
[[instance]]
name = "api"
version = 3
"#,
    );
    let api = &config.instances[0];
    assert_eq!(api.version, Version::V3);
    assert_eq!(api.auth, Auth::None);
    assert!(!api.role_keys.contains(&"password"));
}

#[test]
fn check_config_names_each_role_default() {
    let summary = vipd::cli::summary(&load("examples/role-master.toml"));
    assert!(
        summary.contains("  priority 40 (role master default), VRRPv2 PASS auth (role master default), advert every 1s (role master default), preempt on\n"),
        "{summary}"
    );
    assert!(
        summary.contains(
            "  tracks chk_ocp_lb (+20), chk_ocp_both (+5), chk_mcs (+3) (role master default)\n"
        ),
        "{summary}"
    );
    assert!(summary
        .contains("role master: OpenShift's master settings fill what the file does not set\n"));
}

#[test]
fn unknown_role_is_refused_with_the_accepted_names() {
    assert_eq!(
        refusals("role = \"control-plane\"\ncluster_name = \"ostest\"\n"),
        [
            "inline.toml:1:8: role: \"control-plane\" is not a role; accepted \"bootstrap\", \"master\" or \"worker\" (OpenShift's keepalived settings for that node), or leave role out",
            "inline.toml:1:1: (top level): nothing to run: define at least one [[instance]] (a virtual IP) or a [dns] table",
        ]
    );
}

#[test]
fn role_without_the_vips_of_its_instance_is_refused() {
    assert_eq!(
        refusals("role = \"master\"\ncluster_name = \"ostest\"\napi_vips = [\"192.0.2.5\"]\n"),
        ["inline.toml:1:8: role: role master runs the ingress instance but its VIPs are unknown; set ingress_vips = [\"...\"] (or openshift_install_config to read them)"]
    );
}

#[test]
fn cluster_name_disagreeing_with_install_config_is_refused() {
    let errors = refusals(
        "role = \"master\"\ncluster_name = \"cnf10\"\nopenshift_install_config = \"../openshift/install-config.yaml\"\n",
    );
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with(
            "inline.toml:2:16: cluster_name: \"cnf10\" differs from \"ostest\" read from "
        ),
        "{errors:?}"
    );
    assert!(
        errors[0].ends_with("a wrong name derives wrong VRIDs: remove cluster_name or correct it")
    );
}

#[test]
fn install_config_without_metadata_name_is_refused_naming_file_and_key() {
    let errors = refusals("openshift_install_config = \"../openshift/install-config-no-name.yaml\"\n[dns]\napi_vips = [\"192.0.2.5\"]\ningress_vips = [\"192.0.2.10\"]\n");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("inline.toml:1:28: openshift_install_config: "),
        "{errors:?}"
    );
    assert!(
        errors[0].ends_with("install-config-no-name.yaml: metadata.name: not found; expected the cluster name under metadata:, e.g. \"  name: ostest\""),
        "{errors:?}"
    );
    // The name is not asked for again: the file that should have given it is the problem.
    assert_eq!(
        errors[1],
        "inline.toml:2:1: dns: base_domain is not set; the cluster DNS serves <cluster_name>.<base_domain>: add base_domain = \"example.com\" at the top of the file"
    );
}

#[test]
fn infrastructure_with_an_address_url_is_refused_with_what_was_found() {
    let errors = refusals(
        "openshift_infrastructure = \"../openshift/cluster-infrastructure-ip-url.yml\"\n[[instance]]\nname = \"api\"\nvips = [\"192.0.2.5\"]\n",
    );
    assert!(
        errors[0].ends_with("cluster-infrastructure-ip-url.yml: status.apiServerURL: status.apiServerURL = \"https://192.0.2.5:6443\" does not name api.<cluster>.<base domain> (nor api-int.)"),
        "{errors:?}"
    );
}

#[test]
fn missing_openshift_file_is_refused_with_the_os_reason() {
    let errors = refusals("openshift_install_config = \"/nonexistent/install-config.yaml\"\n[[instance]]\nname = \"api\"\nvips = [\"192.0.2.5\"]\n");
    assert!(
        errors[0].starts_with("inline.toml:1:28: openshift_install_config: /nonexistent/install-config.yaml: (file): cannot read: No such file or directory"),
        "{errors:?}"
    );
}

#[test]
fn both_openshift_files_are_refused() {
    let errors = refusals(
        "openshift_install_config = \"../openshift/install-config.yaml\"\nopenshift_infrastructure = \"../openshift/cluster-infrastructure-02-config.yml\"\n[dns]\n",
    );
    assert!(
        errors[0].starts_with("inline.toml:2:28: openshift_infrastructure: is set together with openshift_install_config"),
        "{errors:?}"
    );
}

#[test]
fn two_vips_of_one_family_in_api_vips_are_refused() {
    let errors = refusals(
        "role = \"bootstrap\"\ncluster_name = \"ostest\"\napi_vips = [\"192.0.2.5\", \"192.0.2.6\"]\n",
    );
    assert_eq!(
        errors,
        ["inline.toml:3:26: api_vips: 192.0.2.6 is a second IPv4 VIP; list at most one VIP per address family"]
    );
}

#[test]
fn an_instance_the_role_does_not_define_needs_its_own_vips() {
    let errors = refusals(
        "role = \"worker\"\ncluster_name = \"ostest\"\ningress_vips = [\"192.0.2.10\"]\n[[instance]]\nname = \"api\"\n",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("inline.toml:4:1: instance \"api\": vips: missing;"),
        "{errors:?}"
    );
}

mod openshift_reader_no_panic {
    use proptest::prelude::*;
    use std::path::Path;
    use vipd::config::openshift::{parse_infrastructure, parse_install_config};

    fn yaml() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "metadata:",
            "  name: ostest",
            "baseDomain: example.com",
            "- ",
            "  - 192.0.2.5",
            "platform:",
            "  baremetal:",
            "    apiVIPs:",
            "    apiVIPs: [192.0.2.5, ",
            "|",
            "'",
            "\"",
            "#",
            "status:",
            "  apiServerURL: https://api.:6443",
            "  apiServerURL: https://",
            "  apiServerInternalURI: https://api-int.a.b:x",
            "---",
            ":",
            "- a: b",
            "é: ü",
        ]);
        prop::collection::vec(piece, 0..25).prop_map(|l| l.join("\n"))
    }

    proptest! {
        #[test]
        fn the_yaml_reader_never_panics(t in yaml()) {
            let _ = parse_install_config(&t, Path::new("x"));
            let _ = parse_infrastructure(&t, Path::new("x"));
        }

        #[test]
        fn the_yaml_reader_never_panics_on_arbitrary_text(t in ".{0,300}") {
            let _ = parse_install_config(&t, Path::new("x"));
            let _ = parse_infrastructure(&t, Path::new("x"));
        }
    }
}

#[test]
fn master_role_checks_sources_on_ingress_but_not_on_api_which_hears_the_bootstrap() {
    let config = load("examples/role-master.toml");
    let api = config.instance("api").unwrap();
    assert!(!api.check_source, "the bootstrap is no peer of a master");
    assert_eq!(api.source_filter(), vipd_vrrp::SourceFilter::Any);
    let ingress = config.instance("ingress").unwrap();
    assert!(ingress.check_source);
    assert_eq!(
        ingress.source_filter(),
        vipd_vrrp::SourceFilter::Only(ips(&[
            "192.0.2.12",
            "192.0.2.13",
            "192.0.2.21",
            "192.0.2.22"
        ]))
    );
}

#[test]
fn master_api_with_accept_from_the_bootstrap_checks_sources_against_peers_and_bootstrap() {
    let config = parse(
        r#"role = "master"
cluster_name = "ostest"
api_vips = ["192.0.2.5"]
ingress_vips = ["192.0.2.10"]
[[instance]]
name = "api"
unicast_peers = ["192.0.2.12", "192.0.2.13"]
accept_from = ["192.0.2.9"]
"#,
    );
    let api = config.instance("api").unwrap();
    assert!(api.check_source);
    assert_eq!(
        api.source_filter(),
        vipd_vrrp::SourceFilter::Only(ips(&["192.0.2.12", "192.0.2.13", "192.0.2.9"]))
    );
}

#[test]
fn bootstrap_with_peers_checks_sources_and_multicast_does_not() {
    let unicast = parse(
        r#"role = "bootstrap"
cluster_name = "ostest"
api_vips = ["192.0.2.5"]
[[instance]]
name = "api"
unicast_peers = ["192.0.2.11", "192.0.2.12", "192.0.2.13"]
"#,
    );
    assert!(unicast.instances[0].check_source);
    let multicast = load("examples/role-bootstrap.toml");
    assert!(multicast.instances[0].peers.is_empty());
    assert!(!multicast.instances[0].check_source);
}
