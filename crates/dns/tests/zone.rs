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
fn zero_ttl_is_served_as_zero() {
    let mut config = config();
    config.ttl = 0;
    assert_eq!(ClusterZone::new(&config).unwrap().ttl(), 0);
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

mod client_net {
    use vipd_dns::server::ClientNet;

    use super::ip;

    #[test]
    fn ipv4_network_contains_its_hosts_only() {
        let net: ClientNet = "192.0.2.0/24".parse().unwrap();
        assert!(net.contains(ip("192.0.2.200")));
        assert!(!net.contains(ip("198.51.100.1")));
        assert!(!net.contains(ip("2001:db8::1")));
    }

    #[test]
    fn ipv4_mapped_client_matches_an_ipv4_network() {
        let net: ClientNet = "192.0.2.0/24".parse().unwrap();
        assert!(net.contains(ip("::ffff:192.0.2.7")));
    }

    #[test]
    fn ipv6_network_contains_its_hosts() {
        let net: ClientNet = "2001:db8::/32".parse().unwrap();
        assert!(net.contains(ip("2001:db8:ffff::1")));
        assert!(!net.contains(ip("2001:db9::1")));
    }

    #[test]
    fn bare_address_is_a_host_network() {
        let net: ClientNet = "192.0.2.7".parse().unwrap();
        assert!(net.contains(ip("192.0.2.7")));
        assert!(!net.contains(ip("192.0.2.8")));
    }

    #[test]
    fn zero_prefix_matches_everything_of_its_family() {
        let net: ClientNet = "0.0.0.0/0".parse().unwrap();
        assert!(net.contains(ip("198.51.100.1")));
    }

    #[test]
    fn host_bits_after_the_prefix_are_rejected() {
        let err = "192.0.2.1/24".parse::<ClientNet>().unwrap_err();
        assert_eq!(err.reason, "host bits are set after the prefix");
        assert!(err.to_string().contains("\"192.0.2.1/24\""), "{err}");
    }

    #[test]
    fn prefix_longer_than_the_address_is_rejected() {
        let err = "192.0.2.0/33".parse::<ClientNet>().unwrap_err();
        assert_eq!(err.reason, "prefix longer than the address");
    }

    #[test]
    fn garbage_is_rejected() {
        let err = "localhost".parse::<ClientNet>().unwrap_err();
        assert_eq!(err.reason, "bad address");
    }
}
