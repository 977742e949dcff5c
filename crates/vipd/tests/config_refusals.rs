//! Every configuration refusal names file:line:column, the key, the reason and what is accepted.

use vipd::config::Config;

const FILE: &str = "/etc/vipd/vipd.toml";

/// The rendered diagnostics of a configuration that must be refused.
fn refusals(text: &str) -> Vec<String> {
    match Config::parse(text, FILE) {
        Ok(config) => panic!("accepted a configuration that should be refused: {config:#?}"),
        Err(e) => e.diagnostics().iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn unknown_top_level_key_is_refused_at_the_key() {
    let text = r#"cluster_name = "ostest"
clustre_domain = "x"
"#;
    let errors = refusals(text);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with(
            "/etc/vipd/vipd.toml:2:1: clustre_domain: unknown field `clustre_domain`, expected one of"
        ),
        "{errors:?}"
    );
}

#[test]
fn unknown_instance_key_is_refused_with_the_table_entry() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
[[instance]]
name = "ingress"
vips = ["192.0.2.10"]
prio = 20
"#;
    let errors = refusals(text);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with(
            "/etc/vipd/vipd.toml:8:1: instance[1].prio: unknown field `prio`, expected one of `name`, `vips`"
        ),
        "{errors:?}"
    );
}

#[test]
fn wrong_type_is_refused_at_the_value() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
priority = "40"
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:12: instance[0].priority: invalid type: string \"40\", expected i64"]
    );
}

#[test]
fn toml_syntax_error_is_located() {
    let text = "cluster_name = \"ostest\"\n[[instance]\n";
    let errors = refusals(text);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("/etc/vipd/vipd.toml:2:12: "),
        "{errors:?}"
    );
}

#[test]
fn missing_cluster_name_is_refused() {
    let text = "[[instance]]\nname = \"api\"\nvips = [\"192.0.2.5\"]\n";
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:1:1: (top level): missing field `cluster_name`; set cluster_name = \"<cluster>\" (metadata.name of install-config.yaml), or openshift_install_config / openshift_infrastructure to read it"]
    );
}

#[test]
fn mixed_address_families_in_one_instance_are_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5", "2001:db8::5"]
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:4:22: instance \"api\": vips: 192.0.2.5 and 2001:db8::5 mix IPv4 and IPv6; use one instance per family"]
    );
}

#[test]
fn vip_with_prefix_length_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5/24"]
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:4:9: instance \"api\": vips: \"192.0.2.5/24\" has a prefix length; write the bare address (VIPs are added as /32 or /128, as OpenShift does)"]
    );
}

#[test]
fn empty_vip_list_is_refused() {
    let text = "cluster_name = \"ostest\"\n[[instance]]\nname = \"api\"\nvips = []\n";
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:4:8: instance \"api\": vips: is empty; list at least one address, e.g. vips = [\"192.0.2.5\"]"]
    );
}

#[test]
fn vrid_zero_is_refused_with_the_derivation_alternative() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
vrid = 0
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:8: instance \"api\": vrid: 0 is out of range; accepted 1..=255, or leave vrid out to derive it from \"ostest-api\""]
    );
}

#[test]
fn vrid_above_255_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
vrid = 256
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:8: instance \"api\": vrid: 256 is out of range; accepted 1..=255, or leave vrid out to derive it from \"ostest-api\""]
    );
}

#[test]
fn same_vrid_family_and_interface_twice_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
interface = "eth0"
vrid = 7
[[instance]]
name = "ingress"
vips = ["192.0.2.10"]
interface = "eth0"
vrid = 7
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:11:8: instance \"ingress\": vrid: VRID 7 is also used by instance \"api\" for IPv4 on interface eth0; set a different vrid, or distinct interfaces on both"]
    );
}

#[test]
fn same_vrid_with_a_detected_interface_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
vrid = 7
[[instance]]
name = "ingress"
vips = ["192.0.2.10"]
interface = "eth1"
vrid = 7
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:10:8: instance \"ingress\": vrid: VRID 7 is also used by instance \"api\" for IPv4 on a possibly shared interface (one of them is detected at start); set a different vrid, or distinct interfaces on both"]
    );
}

#[test]
fn version_2_with_ipv6_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["2001:db8::5"]
version = 2
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:11: instance \"api\": version: VRRPv2 (RFC 3768) carries IPv4 addresses only; use version = 3 for IPv6 VIPs"]
    );
}

#[test]
fn unknown_version_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
version = 4
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:11: instance \"api\": version: 4 is not a VRRP version; accepted: 3 (RFC 9568, default) or 2 (RFC 3768, IPv4 only)"]
    );
}

#[test]
fn password_with_version_3_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
password = "ostest_api_vip"
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:12: instance \"api\": password: VRRPv3 has no authentication (RFC 9568 removed it); remove password, or set version = 2 to speak VRRPv2 with PASS authentication"]
    );
}

#[test]
fn empty_password_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
version = 2
password = ""
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:6:12: instance \"api\": password: is empty; remove the key for no authentication (auth type 0), or give 1 to 8 bytes"]
    );
}

#[test]
fn checksum_with_version_2_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
version = 2
checksum = "rfc9568"
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:6:12: instance \"api\": checksum: applies to VRRPv3 over IPv4 only; VRRPv2 never includes a pseudo-header (RFC 3768 section 5.3.8); remove checksum"]
    );
}

#[test]
fn rfc9568_checksum_with_ipv6_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["2001:db8::5"]
checksum = "rfc9568"
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:12: instance \"api\": checksum: IPv6 always includes the pseudo-header (RFC 9568 section 5.2.8); remove checksum"]
    );
}

#[test]
fn unknown_checksum_form_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
checksum = "plain"
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:12: instance \"api\": checksum: \"plain\" is not a checksum form; accepted: \"pseudo-header\" (keepalived and FRR default) or \"rfc9568\" (RFC 9568 section 5.2.8, Cisco / Juniper / Arista)"]
    );
}

#[test]
fn duration_without_unit_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
advert_interval = "1"
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:19: instance \"api\": advert_interval: \"1\" has no unit; write a number and a unit, e.g. \"1s\", \"100ms\", \"1.5s\", \"2m\""]
    );
}

#[test]
fn v3_interval_not_in_centiseconds_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
advert_interval = "15ms"
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:19: instance \"api\": advert_interval: \"15ms\" is not representable in VRRPv3; accepted multiples of 10ms from \"10ms\" to \"40.95s\""]
    );
}

#[test]
fn v3_interval_above_the_12_bit_field_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
advert_interval = "41s"
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:19: instance \"api\": advert_interval: \"41s\" is not representable in VRRPv3; accepted multiples of 10ms from \"10ms\" to \"40.95s\""]
    );
}

#[test]
fn v2_interval_in_fractions_of_a_second_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
version = 2
advert_interval = "1.5s"
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:6:19: instance \"api\": advert_interval: \"1.5s\" is not representable in VRRPv2; accepted whole seconds from \"1s\" to \"255s\""]
    );
}

#[test]
fn duplicate_instance_names_are_refused_at_the_second() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
[[instance]]
name = "api"
vips = ["192.0.2.6"]
vrid = 200
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:6:8: instance \"api\": name: defined twice (first at line 3); instance names must be unique"]
    );
}

#[test]
fn vip_shared_by_two_instances_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
[[instance]]
name = "ingress"
vips = ["192.0.2.10", "192.0.2.5"]
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:7:23: instance \"ingress\": vips: 192.0.2.5 is also a VIP of instance \"api\"; a VIP belongs to one instance"]
    );
}

#[test]
fn track_naming_a_missing_check_is_refused() {
    let text = r#"cluster_name = "ostest"
[[check]]
name = "chk_ocp_lb"
http = "http://localhost:9444/haproxy_ready"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
track = [{ check = "chk_ocp" }]
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:8:20: instance \"api\": track: no [[check]] named \"chk_ocp\"; defined checks: chk_ocp_lb"]
    );
}

#[test]
fn track_weight_out_of_range_is_refused() {
    let text = r#"cluster_name = "ostest"
[[check]]
name = "chk_ocp_lb"
http = "http://localhost:9444/haproxy_ready"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
track = [{ check = "chk_ocp_lb", weight = 300 }]
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:8:43: instance \"api\": track weight: 300 is out of range; accepted -253..=253 (0 = a failing check puts the instance in FAULT)"]
    );
}

#[test]
fn invalid_check_is_refused_at_its_table() {
    let text = r#"cluster_name = "ostest"
[[check]]
name = "chk_ocp_lb"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:2:1: check \"chk_ocp_lb\": probe: missing; set exactly one of http, tcp, file, exec, all_of, any_of"]
    );
}

#[test]
fn duplicate_check_names_are_refused() {
    let text = r#"cluster_name = "ostest"
[[check]]
name = "chk"
file = "/run/flag"
[[check]]
name = "chk"
file = "/run/other"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:1: check \"chk\": name: defined twice (first at line 2); check names must be unique"]
    );
}

#[test]
fn priority_zero_is_refused_as_the_resign_value() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
priority = 0
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:12: instance \"api\": priority: 0 is reserved for a Master that is resigning (RFC 9568 section 5.2.4); accepted 1..=255 (255 = address owner)"]
    );
}

#[test]
fn priority_255_with_tracking_is_refused() {
    let text = r#"cluster_name = "ostest"
[[check]]
name = "chk_ocp_lb"
http = "http://localhost:9444/haproxy_ready"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
priority = 255
track = [{ check = "chk_ocp_lb", weight = 20 }]
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:8:12: instance \"api\": priority: 255 (address owner) cannot be combined with track: an owner's priority never changes (RFC 9568 section 6.1); use 254 or less"]
    );
}

#[test]
fn dns_instance_reference_to_a_missing_instance_is_refused() {
    let text = r#"cluster_name = "ostest"
base_domain = "test.metalkube.org"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
[dns]
ingress_instances = ["apps"]
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:7:22: dns: ingress_instances: no [[instance]] named \"apps\"; defined instances: api"]
    );
}

#[test]
fn dns_without_an_api_source_is_refused() {
    let text = r#"cluster_name = "ostest"
base_domain = "test.metalkube.org"
[[instance]]
name = "ingress"
vips = ["192.0.2.10"]
[dns]
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:6:1: dns: the api VIPs are unknown: there is no [[instance]] named \"api\" (defined instances: ingress); set api_instances to the instance(s) holding them, or api_vips = [...] on a node that does not run that instance"]
    );
}

#[test]
fn dns_vips_and_instances_together_are_refused() {
    let text = r#"cluster_name = "ostest"
base_domain = "test.metalkube.org"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
[[instance]]
name = "ingress"
vips = ["192.0.2.10"]
[dns]
api_instances = ["api"]
api_vips = ["192.0.2.5"]
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:10:17: dns: api_instances: is set together with api_vips; use api_instances on nodes that run the api instance, api_vips on nodes that do not"]
    );
}

#[test]
fn dns_without_base_domain_is_refused() {
    let text = r#"cluster_name = "ostest"
[dns]
api_vips = ["192.0.2.5"]
ingress_vips = ["192.0.2.10"]
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:2:1: dns: base_domain is not set; the cluster DNS serves <cluster_name>.<base_domain>: add base_domain = \"example.com\" at the top of the file"]
    );
}

#[test]
fn unicast_peer_of_the_wrong_family_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
unicast_peers = ["192.0.2.12", "2001:db8::12"]
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:32: instance \"api\": unicast_peers: 2001:db8::12 is IPv6, the VIPs are IPv4; list peers of the VIPs' family (one instance per family)"]
    );
}

#[test]
fn unicast_peer_equal_to_our_source_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
unicast_source = "192.0.2.11"
unicast_peers = ["192.0.2.11", "192.0.2.12"]
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:6:18: instance \"api\": unicast_peers: 192.0.2.11 is this node's own unicast_source; list only the other nodes"]
    );
}

#[test]
fn unicast_source_that_is_a_vip_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
unicast_source = "192.0.2.5"
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:18: instance \"api\": unicast_source: 192.0.2.5 is one of this instance's VIPs; use the node's own address, which stays when the VIP moves"]
    );
}

#[test]
fn relaxed_ttl_with_multicast_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
ttl_min = 1
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:11: instance \"api\": ttl_min: 1 with multicast; RFC 9568 section 7.1 requires TTL / hop limit 255 on multicast adverts; set unicast_peers to relax it"]
    );
}

#[test]
fn interface_name_longer_than_ifnamsiz_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
interface = "enp0s31f6-very-long"
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:13: instance \"api\": interface: \"enp0s31f6-very-long\" is not a Linux interface name; accepted 1 to 15 characters without '/', ':' or spaces; leave interface out to detect it from the VIP's subnet"]
    );
}

#[test]
fn cluster_name_that_is_not_a_dns_label_is_refused() {
    let text = "cluster_name = \"OS test\"\n[[instance]]\nname = \"api\"\nvips = [\"192.0.2.5\"]\n";
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:1:16: cluster_name: \"OS test\" is not a DNS label: it contains uppercase letters; the OpenShift cluster name is one DNS label, e.g. \"ostest\""]
    );
}

#[test]
fn a_file_with_nothing_to_run_is_refused() {
    assert_eq!(
        refusals("cluster_name = \"ostest\"\n"),
        ["/etc/vipd/vipd.toml:1:1: (top level): nothing to run: define at least one [[instance]] (a virtual IP) or a [dns] table"]
    );
}

#[test]
fn every_problem_of_a_file_is_reported_in_one_run() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
priority = 0
advert_interval = "fast"
"#;
    let errors = refusals(text);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("/etc/vipd/vipd.toml:5:12: instance \"api\": priority: "));
    assert!(errors[1].starts_with("/etc/vipd/vipd.toml:6:19: instance \"api\": advert_interval: "));
}

#[test]
fn unreadable_file_names_the_path() {
    let err = Config::load("/nonexistent/vipd/vipd.toml").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/vipd/vipd.toml: cannot read the configuration file: "),
        "{err}"
    );
}

#[test]
fn check_source_without_any_list_of_senders_is_refused() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
check_source = true
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:5:16: instance \"api\": check_source: true needs a list of senders to check against: set unicast_peers (and accept_from for senders that are not peers, such as the bootstrap)"]
    );
}

#[test]
fn accept_from_entries_that_cannot_be_senders_are_refused_each_at_its_value() {
    let text = r#"cluster_name = "ostest"
[[instance]]
name = "api"
vips = ["192.0.2.5"]
unicast_source = "192.0.2.11"
unicast_peers = ["192.0.2.12"]
accept_from = ["192.0.2.5", "2001:db8::9", "192.0.2.12", "192.0.2.11", "bootstrap"]
"#;
    let errors = refusals(text);
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert!(errors[0].starts_with("/etc/vipd/vipd.toml:7:16: instance \"api\": accept_from: 192.0.2.5 is one of this instance's VIPs"), "{errors:#?}");
    assert!(errors[1].starts_with("/etc/vipd/vipd.toml:7:29: instance \"api\": accept_from: 2001:db8::9 is IPv6, the VIPs are IPv4"), "{errors:#?}");
    assert!(
        errors[2].starts_with(
            "/etc/vipd/vipd.toml:7:44: instance \"api\": accept_from: 192.0.2.12 is listed twice"
        ),
        "{errors:#?}"
    );
    assert!(errors[3].starts_with("/etc/vipd/vipd.toml:7:58: instance \"api\": accept_from: 192.0.2.11 is this node's own unicast_source"), "{errors:#?}");
    assert!(
        errors[4].starts_with("/etc/vipd/vipd.toml:7:72: instance \"api\": accept_from:"),
        "{errors:#?}"
    );
}

#[test]
fn dns_allow_with_host_bits_set_is_refused_with_what_is_accepted() {
    let text = r#"cluster_name = "ostest"
base_domain = "example.com"
api_vips = ["192.0.2.5"]
ingress_vips = ["192.0.2.10"]
[dns]
allow = ["192.0.2.1/24"]
"#;
    assert_eq!(
        refusals(text),
        ["/etc/vipd/vipd.toml:6:10: dns: allow: DNS `allow` entry \"192.0.2.1/24\" is not a network: host bits are set after the prefix (accepted: an IPv4 or IPv6 address with an optional /prefix, e.g. \"192.0.2.0/24\" or \"2001:db8::/32\")"]
    );
}
