//! OpenShift's fletcher8 virtual router id derivation (reference/openshift.md section 2).
//!
//! OpenShift does not configure VRIDs: every node derives them from the cluster name so that all
//! nodes agree without coordination. vipd must reproduce the exact numbers, or a node running vipd
//! next to nodes still running keepalived would sit in a different virtual router.
//!
//! Known field problem (openshift/installer#2966): the derivation only yields 225 distinct VRIDs,
//! so two clusters on one L2 segment can collide; operators then need an explicit `vrid`.

/// Suffixes appended to the cluster name for each virtual router.
const API_SUFFIX: &str = "-api";
const INGRESS_SUFFIX: &str = "-ingress";

/// The current (baremetal-runtimecfg `FletcherChecksum8`) checksum: both running sums are kept
/// modulo 15, so each nibble is 0..=14 and the result is at most 0xEE.
pub fn fletcher8(input: &[u8]) -> u8 {
    fletcher_nibbles(input, 15)
}

/// The current derivation: `fletcher8(name) + 1`, so the VRID is 1..=239 and never the invalid 0.
pub fn derive_vrid(name: &str) -> u8 {
    // fletcher8 is at most 0xEE, so the +1 cannot overflow.
    fletcher8(name.as_bytes()) + 1
}

/// The VRIDs of the two virtual routers of one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClusterVrids {
    /// From `<cluster>-api`.
    pub api: u8,
    /// From `<cluster>-ingress`.
    pub ingress: u8,
}

/// Derives both VRIDs of a cluster as baremetal-runtimecfg `PopulateVRIDs` does.
///
/// If ingress equals api it is bumped by one. With the current mod-15 checksum this cannot
/// happen (the suffixes "-api" and "-ingress" shift the sums by different amounts mod 15), but
/// runtimecfg has the rule and keeping it costs nothing if the checksum ever changes.
pub fn cluster_vrids(cluster: &str) -> ClusterVrids {
    let api = derive_vrid(&format!("{cluster}{API_SUFFIX}"));
    let mut ingress = derive_vrid(&format!("{cluster}{INGRESS_SUFFIX}"));
    if ingress == api {
        // derive_vrid is at most 239, so this stays a valid VRID.
        ingress += 1;
    }
    ClusterVrids { api, ingress }
}

/// Why an installer-era VRID cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VridError {
    #[error(
        "the installer-era fletcher8 of {name:?} is 0, which is not a valid VRID (VRRP \
         needs 1..=255 and keepalived refuses 0); use the current derivation (checksum + 1) \
         or set an explicit vrid"
    )]
    Zero { name: String },
}

/// The installer-era (2019 bootstrap `fletcher8` script) derivation: sums masked to 4 bits
/// (mod 16) and the checksum used directly as the VRID, without the +1. Kept only to interoperate
/// with clusters set up by that installer; it yields 0 for some names (e.g. `cnf11-api`), which
/// keepalived rejected, so 0 is an error here.
pub fn legacy_vrid(name: &str) -> Result<u8, VridError> {
    match fletcher_nibbles(name.as_bytes(), 16) {
        0 => Err(VridError::Zero {
            name: name.to_owned(),
        }),
        vrid => Ok(vrid),
    }
}

/// Fletcher-style checksum with both running sums reduced modulo `modulus` (at most 16) and packed
/// as `(B << 4) | A`. The reference code adds in a byte-sized variable, so `A + byte` wraps modulo
/// 256 before the reduction; `wrapping_add` reproduces that, and it changes the result for mod 15.
fn fletcher_nibbles(input: &[u8], modulus: u8) -> u8 {
    let (mut a, mut b) = (0u8, 0u8);
    for &byte in input {
        a = a.wrapping_add(byte) % modulus;
        b = (b + a) % modulus;
    }
    (b << 4) | a
}
