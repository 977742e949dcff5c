//! Who an instance talks to and hears: `unicast_source`, `unicast_peers`, the source filter
//! (`accept_from`, `check_source`) and the TTL / hop limit accepted on adverts.

use std::net::IpAddr;

use super::super::super::Family;
use super::super::Validator;
use super::addresses::Addresses;
use super::Inst;

/// An instance's validated unicast and source-filter settings.
pub(super) struct Unicast {
    pub source: Option<IpAddr>,
    /// Empty = multicast.
    pub peers: Vec<IpAddr>,
    pub check_source: bool,
    pub accept_from: Vec<IpAddr>,
    /// Accepted TTL / hop limit range of received adverts.
    pub ttl: (u8, u8),
}

impl Validator<'_> {
    pub(super) fn unicast(&mut self, inst: &Inst, a: &Addresses) -> Unicast {
        let source = self.unicast_source(inst, a);
        let peers = self.unicast_peers(inst, a, source);
        let (check_source, accept_from) = self.source_check(inst, &peers, source, a);
        let ttl = self.ttl(inst, !peers.is_empty());
        Unicast {
            source,
            peers,
            check_source,
            accept_from,
            ttl,
        }
    }

    /// `unicast_source`: this node's own address of the VIPs' family.
    fn unicast_source(&mut self, inst: &Inst, a: &Addresses) -> Option<IpAddr> {
        let s = inst.raw.unicast_source.as_ref()?;
        let addr = self.address(s, &inst.at("unicast_source"))?;
        let family = a.family;
        if !a.vips.is_empty() && Family::of(addr) != family {
            self.err(
                s.span(),
                inst.at("unicast_source"),
                format!("{addr} is {}, the VIPs are {family}; adverts must come from an address of the VIPs' family", Family::of(addr)),
            );
            return None;
        }
        if a.vips.contains(&addr) {
            self.err(
                s.span(),
                inst.at("unicast_source"),
                format!("{addr} is one of this instance's VIPs; use the node's own address, which stays when the VIP moves"),
            );
            return None;
        }
        Some(addr)
    }

    /// `unicast_peers`: the other nodes' own addresses of the VIPs' family.
    fn unicast_peers(
        &mut self,
        inst: &Inst,
        a: &Addresses,
        unicast_source: Option<IpAddr>,
    ) -> Vec<IpAddr> {
        let mut peers: Vec<IpAddr> = Vec::new();
        let family = a.family;
        for text in inst.raw.unicast_peers.iter().flat_map(|l| l.get_ref()) {
            let Some(addr) = self.address(text, &inst.at("unicast_peers")) else {
                continue;
            };
            let why = if !a.vips.is_empty() && Family::of(addr) != family {
                Some(format!(
                    "{addr} is {}, the VIPs are {family}; list peers of the VIPs' family (one instance per family)",
                    Family::of(addr)
                ))
            } else if Some(addr) == unicast_source {
                Some(format!(
                    "{addr} is this node's own unicast_source; list only the other nodes"
                ))
            } else if a.vips.contains(&addr) {
                Some(format!(
                    "{addr} is one of this instance's VIPs; list the other nodes' own addresses"
                ))
            } else if peers.contains(&addr) {
                Some(format!("{addr} is listed twice"))
            } else {
                None
            };
            match why {
                Some(why) => self.err(text.span(), inst.at("unicast_peers"), why),
                None => peers.push(addr),
            }
        }
        peers
    }

    /// `check_source` and `accept_from`: which senders may take part in the election.
    ///
    /// Default: checked whenever there is a list to check against (unicast peers or
    /// `accept_from`), except on a role instance that hears the bootstrap without listing it
    /// (a master's API instance) while `accept_from` is empty: checking there would make the
    /// masters ignore the bootstrap and take the API VIP beside it.
    fn source_check(
        &mut self,
        inst: &Inst,
        peers: &[IpAddr],
        unicast_source: Option<IpAddr>,
        a: &Addresses,
    ) -> (bool, Vec<IpAddr>) {
        let accept_from = self.accept_from(inst, peers, unicast_source, a);
        let have_list = !peers.is_empty() || !accept_from.is_empty();
        let default = have_list && !(inst.planned.hears_bootstrap && accept_from.is_empty());
        let check = match &inst.raw.check_source {
            Some(written) if *written.get_ref() && !have_list => {
                self.err(
                    written.span(),
                    inst.at("check_source"),
                    "true needs a list of senders to check against: set unicast_peers (and accept_from for senders that are not peers, such as the bootstrap)",
                );
                false
            }
            Some(written) => *written.get_ref(),
            None => default,
        };
        (check, accept_from)
    }

    /// `accept_from`: senders admitted besides the unicast peers (e.g. the bootstrap).
    fn accept_from(
        &mut self,
        inst: &Inst,
        peers: &[IpAddr],
        unicast_source: Option<IpAddr>,
        a: &Addresses,
    ) -> Vec<IpAddr> {
        let mut accept_from: Vec<IpAddr> = Vec::new();
        let family = a.family;
        for text in inst.raw.accept_from.iter().flat_map(|l| l.get_ref()) {
            let Some(addr) = self.address(text, &inst.at("accept_from")) else {
                continue;
            };
            let why = if !a.vips.is_empty() && Family::of(addr) != family {
                Some(format!(
                    "{addr} is {}, the VIPs are {family}; adverts of this instance come from {family} addresses",
                    Family::of(addr)
                ))
            } else if Some(addr) == unicast_source {
                Some(format!(
                    "{addr} is this node's own unicast_source; list other nodes"
                ))
            } else if a.vips.contains(&addr) {
                Some(format!(
                    "{addr} is one of this instance's VIPs; adverts come from the nodes' own addresses"
                ))
            } else if accept_from.contains(&addr) || peers.contains(&addr) {
                Some(format!(
                    "{addr} is listed twice (unicast_peers are always accepted)"
                ))
            } else {
                None
            };
            match why {
                Some(why) => self.err(text.span(), inst.at("accept_from"), why),
                None => accept_from.push(addr),
            }
        }
        accept_from
    }

    /// `ttl_min` / `ttl_max`: 255 only with multicast (RFC 9568 section 7.1); any range with
    /// unicast, where the default minimum is 1.
    fn ttl(&mut self, inst: &Inst, unicast: bool) -> (u8, u8) {
        let r = inst.raw;
        let ttl_range = "accepted 1..=255";
        let ttl_min = r
            .ttl_min
            .as_ref()
            .and_then(|t| self.ranged(t, &inst.at("ttl_min"), 1, 255, ttl_range));
        let ttl_max = r
            .ttl_max
            .as_ref()
            .and_then(|t| self.ranged(t, &inst.at("ttl_max"), 1, 255, ttl_range));
        let default_min = if unicast { 1 } else { 255 };
        let ttl = (
            ttl_min.unwrap_or(default_min) as u8,
            ttl_max.unwrap_or(255) as u8,
        );
        if !unicast {
            for (key, value, t) in [
                ("ttl_min", ttl_min, &r.ttl_min),
                ("ttl_max", ttl_max, &r.ttl_max),
            ] {
                if let (Some(n), Some(t)) = (value, t) {
                    if n != 255 {
                        self.err(
                            t.span(),
                            inst.at(key),
                            format!("{n} with multicast; RFC 9568 section 7.1 requires TTL / hop limit 255 on multicast adverts; set unicast_peers to relax it"),
                        );
                    }
                }
            }
        } else if ttl.0 > ttl.1 {
            let span = r.ttl_min.as_ref().map(|t| t.span()).unwrap_or(inst.span());
            self.err(
                span,
                inst.at("ttl_min"),
                format!(
                    "{} is above ttl_max {}; accepted ttl_min <= ttl_max",
                    ttl.0, ttl.1
                ),
            );
        }
        ttl
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::validator;
    use super::super::tests::planned;
    use super::*;

    fn unicast(text: &str, hears_bootstrap: bool) -> (Unicast, Vec<String>) {
        let mut v = validator(text);
        let mut p = planned(text);
        p.hears_bootstrap = hears_bootstrap;
        let inst = Inst::new(&p);
        let a = v.addresses(&inst);
        let u = v.unicast(&inst, &a);
        let errors = v
            .errors
            .iter()
            .map(|d| format!("{}:{}: {}: {}", d.line, d.column, d.key, d.message))
            .collect();
        (u, errors)
    }

    #[test]
    fn unicast_accepts_any_ttl_from_1_by_default() {
        let (u, errors) = unicast(
            "name = \"api\"\nvips = [\"192.0.2.5\"]\nunicast_peers = [\"192.0.2.12\"]\n",
            false,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(u.ttl, (1, 255));
        assert!(u.check_source);
    }

    #[test]
    fn multicast_requires_ttl_255() {
        let (u, errors) = unicast(
            "name = \"api\"\nvips = [\"192.0.2.5\"]\nttl_max = 254\n",
            false,
        );
        assert_eq!(u.ttl, (255, 254));
        assert_eq!(
            errors,
            ["3:11: instance \"api\": ttl_max: 254 with multicast; RFC 9568 section 7.1 requires TTL / hop limit 255 on multicast adverts; set unicast_peers to relax it"]
        );
    }

    #[test]
    fn a_role_instance_hearing_the_bootstrap_does_not_check_sources_by_default() {
        let text = "name = \"api\"\nvips = [\"192.0.2.5\"]\nunicast_peers = [\"192.0.2.12\"]\n";
        assert!(!unicast(text, true).0.check_source);
        let with_bootstrap = format!("{text}accept_from = [\"192.0.2.20\"]\n");
        let (u, errors) = unicast(&with_bootstrap, true);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(u.check_source);
        assert_eq!(u.accept_from, ["192.0.2.20".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn accept_from_refuses_a_peer_listed_again() {
        let (_, errors) = unicast(
            "name = \"api\"\nvips = [\"192.0.2.5\"]\nunicast_peers = [\"192.0.2.12\"]\naccept_from = [\"192.0.2.12\"]\n",
            false,
        );
        assert_eq!(
            errors,
            ["4:16: instance \"api\": accept_from: 192.0.2.12 is listed twice (unicast_peers are always accepted)"]
        );
    }
}
