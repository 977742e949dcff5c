//! Values every step reads the same way: ranged integers, durations, addresses, VIPs,
//! address:port pairs and absolute paths. Each reports a located error and returns `None`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::super::raw::S;
use super::super::{duration::format_duration, parse_duration};
use super::Validator;

impl Validator<'_> {
    /// An integer key in `min..=max`; `None` (with an error) outside.
    pub(super) fn ranged(
        &mut self,
        v: &S<i64>,
        key: &str,
        min: i64,
        max: i64,
        accepted: &str,
    ) -> Option<i64> {
        let n = *v.get_ref();
        if (min..=max).contains(&n) {
            Some(n)
        } else {
            self.err(v.span(), key, format!("{n} is out of range; {accepted}"));
            None
        }
    }

    pub(super) fn duration(&mut self, text: &S<String>, key: &str) -> Option<Duration> {
        match parse_duration(text.get_ref()) {
            Ok(d) => Some(d),
            Err(why) => {
                self.err(text.span(), key, why);
                None
            }
        }
    }

    /// A period where "0s" means off; `Some(min..)` otherwise.
    pub(super) fn optional_period(
        &mut self,
        text: &Option<S<String>>,
        key: &str,
        default: Duration,
        min: Duration,
    ) -> Option<Duration> {
        let Some(text) = text else {
            return Some(default);
        };
        match self.duration(text, key)? {
            d if d.is_zero() => None,
            d if d < min => {
                self.err(
                    text.span(),
                    key,
                    format!(
                        "{:?} is too short; accepted \"0s\" (off) or at least {}",
                        text.get_ref(),
                        format_duration(min)
                    ),
                );
                Some(default)
            }
            d => Some(d),
        }
    }

    pub(super) fn address(&mut self, text: &S<String>, key: &str) -> Option<IpAddr> {
        let t = text.get_ref().trim();
        match t.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                let hint = if t.contains('/') {
                    "write the address without a prefix length"
                } else {
                    "write an IPv4 or IPv6 address, e.g. 192.0.2.11 or 2001:db8::11"
                };
                self.err(
                    text.span(),
                    key,
                    format!("{t:?} is not an IP address; {hint}"),
                );
                None
            }
        }
    }

    /// A virtual address: a unicast address a host can hold.
    pub(super) fn vip(&mut self, text: &S<String>, key: &str) -> Option<IpAddr> {
        let t = text.get_ref().trim();
        if t.contains('/') {
            self.err(
                text.span(),
                key,
                format!("{t:?} has a prefix length; write the bare address (VIPs are added as /32 or /128, as OpenShift does)"),
            );
            return None;
        }
        let addr = self.address(text, key)?;
        let bad = addr.is_unspecified()
            || addr.is_loopback()
            || addr.is_multicast()
            || matches!(addr, IpAddr::V4(a) if a.is_broadcast());
        if bad {
            self.err(
                text.span(),
                key,
                format!("{addr} cannot be a virtual address; give a unicast address of the node's network"),
            );
            return None;
        }
        Some(addr)
    }

    pub(super) fn socket_addr(&mut self, text: &S<String>, key: &str) -> Option<SocketAddr> {
        let t = text.get_ref().trim();
        match t.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
                    text.span(),
                    key,
                    format!(
                        "{t:?} is not an address:port; write e.g. \"0.0.0.0:53\" or \"[::1]:53\""
                    ),
                );
                None
            }
        }
    }

    pub(super) fn absolute_path(&mut self, text: &S<String>, key: &str) -> Option<PathBuf> {
        let p = PathBuf::from(text.get_ref());
        if p.is_absolute() {
            Some(p)
        } else {
            self.err(
                text.span(),
                key,
                format!("{:?} is relative; give an absolute path (the daemon's working directory is not defined)", text.get_ref()),
            );
            None
        }
    }
}

/// One of the compile-time default addresses (valid by construction).
pub(super) fn parse_default(text: &str) -> SocketAddr {
    // Only called with the compile-time constants above, which are valid socket addresses.
    text.parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
}

#[cfg(test)]
mod tests {
    use super::super::testing::validator;
    use super::*;

    /// `text` is one TOML string value; the span covers it.
    fn value(text: &str) -> S<String> {
        S::new(0..text.len(), text.to_owned())
    }

    fn messages(v: &Validator) -> Vec<String> {
        v.errors
            .iter()
            .map(|d| format!("{}: {}", d.key, d.message))
            .collect()
    }

    #[test]
    fn a_vip_is_a_bare_unicast_address() {
        let mut v = validator("");
        assert_eq!(
            v.vip(&value(" 192.0.2.5 "), "vips"),
            Some("192.0.2.5".parse().unwrap())
        );
        for bad in [
            "0.0.0.0",
            "127.0.0.1",
            "224.0.0.18",
            "255.255.255.255",
            "::",
            "ff02::12",
        ] {
            assert_eq!(v.vip(&value(bad), "vips"), None, "{bad}");
        }
        assert_eq!(v.errors.len(), 6);
        assert_eq!(
            messages(&v)[0],
            "vips: 0.0.0.0 cannot be a virtual address; give a unicast address of the node's network"
        );
    }

    #[test]
    fn an_address_error_hints_at_the_likely_mistake() {
        let mut v = validator("");
        assert_eq!(v.address(&value("192.0.2.11/24"), "peer"), None);
        assert_eq!(v.address(&value("node-1"), "peer"), None);
        assert_eq!(
            messages(&v),
            [
                "peer: \"192.0.2.11/24\" is not an IP address; write the address without a prefix length",
                "peer: \"node-1\" is not an IP address; write an IPv4 or IPv6 address, e.g. 192.0.2.11 or 2001:db8::11",
            ]
        );
    }

    #[test]
    fn an_optional_period_is_off_at_zero_and_has_a_minimum() {
        let mut v = validator("");
        let default = Duration::from_secs(5);
        let min = Duration::from_millis(100);
        let period = |v: &mut Validator, t: Option<&str>| {
            v.optional_period(&t.map(value), "every", default, min)
        };
        assert_eq!(period(&mut v, None), Some(default));
        assert_eq!(period(&mut v, Some("0s")), None);
        assert_eq!(
            period(&mut v, Some("250ms")),
            Some(Duration::from_millis(250))
        );
        assert_eq!(period(&mut v, Some("50ms")), Some(default));
        assert_eq!(
            messages(&v),
            ["every: \"50ms\" is too short; accepted \"0s\" (off) or at least 100ms"]
        );
    }
}
