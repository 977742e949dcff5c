//! VRID derivation against the vectors of reference/openshift.md section 2 (values produced by
//! baremetal-runtimecfg `vr-ids` and the installer's `fletcher8` script).

use vipd_vrrp::vrid::{
    cluster_vrids, derive_vrid, fletcher8, legacy_vrid, ClusterVrids, VridError,
};

#[test]
fn derive_vrid_matches_runtimecfg_for_every_published_name() {
    let vectors = [
        ("cnf10-api", 147),
        ("cnf10-ingress", 2),
        ("cnf11-api", 228),
        ("cnf11-ingress", 147),
        ("oc2-yw674-api", 1),
        ("oc2-yw674-ingress", 223),
        ("ostest-api", 14),
        ("ostest-ingress", 93),
    ];
    for (name, vrid) in vectors {
        assert_eq!(derive_vrid(name), vrid, "{name}");
    }
}

#[test]
fn derive_vrid_is_the_fletcher8_checksum_plus_one() {
    assert_eq!(fletcher8(b"ostest-api"), 13);
    assert_eq!(fletcher8(b"oc2-yw674-api"), 0);
}

#[test]
fn fletcher8_of_empty_input_is_zero() {
    assert_eq!(fletcher8(b""), 0);
}

#[test]
fn fletcher8_wraps_the_byte_sum_modulo_256_before_reducing_mod_15() {
    // A = 14 after 0x0E; 14 + 0xFF = 269 wraps to 13 in the reference's byte arithmetic
    // (unwrapped, 269 mod 15 would be 14). B = (14 + 13) mod 15 = 12.
    assert_eq!(fletcher8(&[0x0E, 0xFF]), (12 << 4) | 13);
}

#[test]
fn fletcher8_never_exceeds_0xee_so_the_plus_one_cannot_overflow() {
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            assert!(fletcher8(&[a, b]) <= 0xEE, "[{a}, {b}]");
        }
    }
}

#[test]
fn cluster_vrids_matches_runtimecfg_vr_ids_output() {
    assert_eq!(
        cluster_vrids("cnf10"),
        ClusterVrids {
            api: 147,
            ingress: 2
        }
    );
    assert_eq!(
        cluster_vrids("cnf11"),
        ClusterVrids {
            api: 228,
            ingress: 147
        }
    );
    assert_eq!(
        cluster_vrids("ostest"),
        ClusterVrids {
            api: 14,
            ingress: 93
        }
    );
}

#[test]
fn api_and_ingress_checksums_never_collide_for_three_character_cluster_names() {
    // The bump-on-equality rule is documented as unreachable: for ASCII names the low nibble is
    // the byte sum mod 15, and "-api" adds 14 while "-ingress" adds 13. Check the raw
    // derivations (not cluster_vrids, whose bump would hide a collision).
    let alphabet: Vec<char> = ('a'..='z').chain('0'..='9').collect();
    for &c1 in &alphabet {
        for &c2 in &alphabet {
            for &c3 in &alphabet {
                let name = format!("{c1}{c2}{c3}");
                assert_ne!(
                    derive_vrid(&format!("{name}-api")),
                    derive_vrid(&format!("{name}-ingress")),
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn legacy_vrid_matches_the_installer_fletcher8_script() {
    assert_eq!(legacy_vrid("cnf10-api"), Ok(191));
    assert_eq!(legacy_vrid("oc2-yw674-api"), Ok(9));
    assert_eq!(legacy_vrid("ostest-api"), Ok(169));
    assert_eq!(legacy_vrid("ostest-dns"), Ok(148));
}

#[test]
fn legacy_vrid_of_zero_is_an_error_naming_the_input_and_the_remedy() {
    let err = legacy_vrid("cnf11-api").unwrap_err();
    assert_eq!(
        err,
        VridError::Zero {
            name: "cnf11-api".to_owned()
        }
    );
    let message = err.to_string();
    assert!(message.contains("\"cnf11-api\""), "{message}");
    assert!(message.contains("keepalived refuses 0"), "{message}");
    assert!(message.contains("explicit vrid"), "{message}");
}

#[test]
fn legacy_vrid_rejects_the_dns_name_reported_in_the_field() {
    assert_eq!(
        legacy_vrid("l3vvqqni-f21ca-dns"),
        Err(VridError::Zero {
            name: "l3vvqqni-f21ca-dns".to_owned()
        })
    );
}
