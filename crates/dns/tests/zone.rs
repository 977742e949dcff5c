//! Zone validation and lookup, independent of the wire format.

mod common;

use common::{config, ip, zone, CD};
use vipd_dns::zone::{reverse_name, ClusterZone, Node, ZoneError, ZoneHandle};

#[test]
fn valid_config_builds_with_the_cluster_domain() {
    assert_eq!(zone().domain(), CD);
    assert_eq!(zone().ttl(), 30);
}

#[test]
fn uppercase_base_domain_is_rejected_naming_the_field() {
    let mut config = config();
    config.base_domain = "Test.metalkube.org".into();
    let err = ClusterZone::new(&config).unwrap_err();
    assert_eq!(
        err,
        ZoneError::InvalidDomain {
            value: "Test.metalkube.org".into(),
            reason: "it contains uppercase letters",
        }
    );
    assert!(err.to_string().contains("`base_domain`"), "{err}");
}

#[test]
fn base_domain_with_trailing_dot_is_rejected() {
    let mut config = config();
    config.base_domain = "test.metalkube.org.".into();
    assert!(matches!(
        ClusterZone::new(&config),
        Err(ZoneError::InvalidDomain {
            reason: "it ends with a dot",
            ..
        })
    ));
}

#[test]
fn empty_label_inside_base_domain_is_rejected() {
    let mut config = config();
    config.base_domain = "test..org".into();
    assert!(matches!(
        ClusterZone::new(&config),
        Err(ZoneError::InvalidDomain {
            reason: "it is empty",
            ..
        })
    ));
}

#[test]
fn cluster_name_with_underscore_is_rejected() {
    let mut config = config();
    config.cluster_name = "os_test".into();
    assert_eq!(
        ClusterZone::new(&config).unwrap_err(),
        ZoneError::InvalidLabel {
            field: "cluster_name",
            value: "os_test".into(),
            reason: "it contains a character other than a-z, 0-9 and '-'",
        }
    );
}

#[test]
fn label_of_64_characters_is_rejected() {
    let mut config = config();
    config.cluster_name = "a".repeat(64);
    assert!(matches!(
        ClusterZone::new(&config),
        Err(ZoneError::InvalidLabel {
            reason: "it is longer than 63 characters",
            ..
        })
    ));
}

#[test]
fn node_name_starting_with_hyphen_is_rejected_with_its_index() {
    let mut config = config();
    config.nodes[1].name = "-worker".into();
    assert_eq!(
        ClusterZone::new(&config).unwrap_err(),
        ZoneError::InvalidLabel {
            field: "nodes[].name",
            value: "-worker (node #1)".into(),
            reason: "it starts or ends with '-'",
        }
    );
}

#[test]
fn duplicate_node_is_rejected() {
    let mut config = config();
    config.nodes.push(config.nodes[0].clone());
    assert_eq!(
        ClusterZone::new(&config).unwrap_err(),
        ZoneError::DuplicateNode {
            name: "master-0".into()
        }
    );
}

#[test]
fn node_named_api_is_rejected() {
    let mut config = config();
    config.nodes.push(Node {
        name: "api".into(),
        addresses: vec![ip("192.0.2.30")],
    });
    assert_eq!(
        ClusterZone::new(&config).unwrap_err(),
        ZoneError::ReservedNodeName { name: "api".into() }
    );
}

#[test]
fn zero_ttl_is_rejected() {
    let mut config = config();
    config.ttl = 0;
    assert_eq!(ClusterZone::new(&config).unwrap_err(), ZoneError::ZeroTtl);
}

#[test]
fn domain_too_long_for_node_names_is_rejected() {
    let mut config = config();
    config.base_domain = vec!["a".repeat(63); 3].join(".");
    assert!(matches!(
        ClusterZone::new(&config),
        Err(ZoneError::DomainTooLong { max: 191, .. })
    ));
}

#[test]
fn duplicate_addresses_are_served_once() {
    let mut config = config();
    config.api_vips = vec![ip("192.0.2.5"), ip("192.0.2.5")];
    let zone = ClusterZone::new(&config).unwrap();
    assert_eq!(
        zone.lookup_text(&format!("api.{CD}")).unwrap().a,
        vec!["192.0.2.5".parse::<std::net::Ipv4Addr>().unwrap()]
    );
}

#[test]
fn two_nodes_sharing_an_address_both_get_a_ptr() {
    let mut config = config();
    config.nodes[1].addresses.push(ip("192.0.2.10"));
    let zone = ClusterZone::new(&config).unwrap();
    let ptr = &zone.lookup_text("10.2.0.192.in-addr.arpa").unwrap().ptr;
    assert_eq!(ptr.len(), 2);
}

#[test]
fn reverse_name_of_ipv4_is_the_octets_reversed() {
    assert_eq!(
        &*reverse_name(ip("192.0.2.10")),
        b"\x0210\x012\x010\x03192\x07in-addr\x04arpa\x00"
    );
}

#[test]
fn reverse_name_of_ipv6_is_32_nibbles() {
    let name = reverse_name(ip("2001:db8::10"));
    assert_eq!(&name[..4], b"\x010\x011");
    assert!(name.ends_with(b"\x012\x03ip6\x04arpa\x00"));
    assert_eq!(name.len(), 32 * 2 + 4 + 5 + 1);
}

#[test]
fn handle_replace_is_seen_by_the_next_load() {
    let handle = ZoneHandle::new(zone());
    let mut other = config();
    other.cluster_name = "other".into();
    handle.replace(ClusterZone::new(&other).unwrap());
    assert_eq!(handle.load().domain(), "other.test.metalkube.org");
}
