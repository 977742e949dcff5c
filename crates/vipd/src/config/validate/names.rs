//! Name rules: instance names, Linux interface names, and DNS labels and domains.
//!
//! The DNS rules live in `vipd_dns::zone` (one home for the zone and this validator); this
//! module only words them for a configuration key.

use std::fmt;

/// Linux IFNAMSIZ is 16 including the terminating NUL.
const MAX_IFNAME_LEN: usize = 15;

/// An instance name: 1 to 64 letters, digits, `_`, `-` or `.` (it appears in the derived VRID
/// input, log lines and metric labels).
pub(super) fn instance_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not accepted; use 1 to 64 letters, digits, '_', '-' or '.', e.g. \"api\""
        ))
    }
}

/// A name the kernel accepts for a network interface (dev_valid_name in net/core/dev.c).
pub(super) fn interface_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_IFNAME_LEN
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a Linux interface name; accepted 1 to 15 characters without '/', ':' or spaces; leave interface out to detect it from the VIP's subnet"
        ))
    }
}

/// Why a name is not a DNS label or domain; shown after the quoted name
/// (`"Bad" is not a DNS label: it contains uppercase letters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NameError {
    Label(&'static str),
    Domain(&'static str),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Label(why) => write!(f, "is not a DNS label: {why}"),
            NameError::Domain(why) => write!(f, "is not a domain name: {why}"),
        }
    }
}

/// One DNS label as OpenShift requires for cluster and node names (RFC 1123 host name rules),
/// as the zone serves it: the rule is `vipd_dns::zone::label_problem`.
pub(super) fn dns_label(label: &str) -> Result<(), NameError> {
    match vipd_dns::zone::label_problem(label) {
        Some(why) => Err(NameError::Label(why)),
        None => Ok(()),
    }
}

/// A domain name of such labels: the rule is `vipd_dns::zone::domain_problem`.
pub(super) fn dns_name(name: &str) -> Result<(), NameError> {
    match vipd_dns::zone::domain_problem(name) {
        Some(why) => Err(NameError::Domain(why)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_accept_letters_digits_and_separators_only() {
        assert_eq!(instance_name("api-v6.x_1"), Ok(()));
        assert_eq!(
            instance_name("api v6"),
            Err("\"api v6\" is not accepted; use 1 to 64 letters, digits, '_', '-' or '.', e.g. \"api\"".to_owned())
        );
        assert!(instance_name("").is_err());
        assert!(instance_name(&"a".repeat(65)).is_err());
        assert_eq!(instance_name(&"a".repeat(64)), Ok(()));
    }

    #[test]
    fn interface_names_follow_the_kernel() {
        for ok in ["eth0", "enp0s31f6", "br-ex", "a234567890abcde"] {
            assert_eq!(interface_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "eth0:1", "eth 0", "a234567890abcdef"] {
            assert!(interface_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dns_name_errors_word_the_zone_rule() {
        assert_eq!(
            dns_label("Master-0").unwrap_err().to_string(),
            "is not a DNS label: it contains uppercase letters"
        );
        assert_eq!(
            dns_name("example..com").unwrap_err().to_string(),
            "is not a domain name: it is empty"
        );
        assert_eq!(dns_label("master-0"), Ok(()));
        assert_eq!(dns_name("ostest.example.com"), Ok(()));
    }
}
