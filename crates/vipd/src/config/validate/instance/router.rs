//! What an instance's adverts say: VRRP version, VRID, priority and advert interval.

use std::ops::Range;
use std::time::Duration;

use vipd_vrrp::Version;

use super::super::super::{Family, VridSource};
use super::super::{Validator, DEFAULT_ADVERT_INTERVAL, DEFAULT_PRIORITY};
use super::addresses::Addresses;
use super::Inst;

/// An instance's validated router settings.
pub(super) struct Router {
    pub version: Version,
    pub vrid: u8,
    pub vrid_source: VridSource,
    /// `vrid`, or the instance's name when the VRID is derived from it.
    pub vrid_span: Range<usize>,
    pub priority: u8,
    pub advert_interval: Duration,
}

impl Validator<'_> {
    pub(super) fn router(&mut self, inst: &Inst, cluster_name: &str, a: &Addresses) -> Router {
        let version = self.version(inst, a);
        let (vrid, vrid_source, vrid_span) = self.vrid(inst, cluster_name);
        let priority = self.priority(inst);
        let advert_interval = self.advert_interval(inst, version);
        Router {
            version,
            vrid,
            vrid_source,
            vrid_span,
            priority,
            advert_interval,
        }
    }

    /// `version`: 3 (default) or 2, which carries IPv4 only.
    fn version(&mut self, inst: &Inst, a: &Addresses) -> Version {
        let version = match &inst.raw.version {
            None => Version::V3,
            Some(v) => match *v.get_ref() {
                2 => Version::V2,
                3 => Version::V3,
                n => {
                    self.err(
                        v.span(),
                        inst.at("version"),
                        format!("{n} is not a VRRP version; accepted: 3 (RFC 9568, default) or 2 (RFC 3768, IPv4 only)"),
                    );
                    Version::V3
                }
            },
        };
        if version == Version::V2 && a.family == Family::Ipv6 && !a.vips.is_empty() {
            let span = inst
                .raw
                .version
                .as_ref()
                .map(|v| v.span())
                .unwrap_or(inst.span());
            self.err(
                span,
                inst.at("version"),
                "VRRPv2 (RFC 3768) carries IPv4 addresses only; use version = 3 for IPv6 VIPs",
            );
        }
        version
    }

    /// `vrid`, or derived from `<cluster_name>-<name>` as OpenShift does.
    fn vrid(&mut self, inst: &Inst, cluster_name: &str) -> (u8, VridSource, Range<usize>) {
        let vrid_input = format!("{cluster_name}-{}", inst.name);
        let (vrid, vrid_source, vrid_span) = match &inst.raw.vrid {
            Some(v) => {
                let n = self.ranged(
                    v,
                    &inst.at("vrid"),
                    1,
                    255,
                    &format!(
                        "accepted 1..=255, or leave vrid out to derive it from {vrid_input:?}"
                    ),
                );
                (n.unwrap_or(1) as u8, VridSource::Configured, v.span())
            }
            None => (
                vipd_vrrp::vrid::derive_vrid(&vrid_input),
                VridSource::Derived(vrid_input.clone()),
                inst.raw.name.span(),
            ),
        };
        // A role's second-family instance carries the first one's derived VRID.
        let vrid_source = match &inst.planned.vrid_input {
            Some(input) if inst.role_supplied("vrid") => VridSource::Derived(input.clone()),
            _ => vrid_source,
        };
        (vrid, vrid_source, vrid_span)
    }

    /// `priority`: 1..=255 (0 is the resigning Master's).
    fn priority(&mut self, inst: &Inst) -> u8 {
        match &inst.raw.priority {
            None => DEFAULT_PRIORITY,
            Some(p) if *p.get_ref() == 0 => {
                self.err(
                    p.span(),
                    inst.at("priority"),
                    "0 is reserved for a Master that is resigning (RFC 9568 section 5.2.4); accepted 1..=255 (255 = address owner)",
                );
                DEFAULT_PRIORITY
            }
            Some(p) => self
                .ranged(
                    p,
                    &inst.at("priority"),
                    1,
                    255,
                    "accepted 1..=255 (255 = address owner)",
                )
                .map(|n| n as u8)
                .unwrap_or(DEFAULT_PRIORITY),
        }
    }

    /// `advert_interval`, representable in the version's wire field
    /// (`vipd_vrrp::timers::check_interval`).
    fn advert_interval(&mut self, inst: &Inst, version: Version) -> Duration {
        let Some(text) = &inst.raw.advert_interval else {
            return DEFAULT_ADVERT_INTERVAL;
        };
        let Some(d) = self.duration(text, &inst.at("advert_interval")) else {
            return DEFAULT_ADVERT_INTERVAL;
        };
        if let Err(why) = vipd_vrrp::timers::check_interval(version, d) {
            self.err(
                text.span(),
                inst.at("advert_interval"),
                format!("{:?} {why}", text.get_ref()),
            );
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::validator;
    use super::super::tests::planned;
    use super::*;

    fn router(text: &str) -> (Router, Vec<String>) {
        let mut v = validator(text);
        let p = planned(text);
        let inst = Inst::new(&p);
        let a = v.addresses(&inst);
        let r = v.router(&inst, "ostest", &a);
        let errors = v
            .errors
            .iter()
            .map(|d| format!("{}:{}: {}: {}", d.line, d.column, d.key, d.message))
            .collect();
        (r, errors)
    }

    #[test]
    fn version_2_with_ipv6_vips_blames_the_version() {
        let (r, errors) = router("name = \"api\"\nvips = [\"2001:db8::5\"]\nversion = 2\n");
        assert_eq!(r.version, Version::V2);
        assert_eq!(
            errors,
            ["3:11: instance \"api\": version: VRRPv2 (RFC 3768) carries IPv4 addresses only; use version = 3 for IPv6 VIPs"]
        );
    }

    #[test]
    fn a_derived_vrid_is_located_at_the_name() {
        let (r, errors) = router("name = \"api\"\nvips = [\"192.0.2.5\"]\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(r.vrid_source, VridSource::Derived("ostest-api".to_owned()));
        assert_eq!(r.vrid, vipd_vrrp::vrid::derive_vrid("ostest-api"));
        assert_eq!(r.vrid_span, 7..12);
    }

    #[test]
    fn an_unknown_version_falls_back_to_3() {
        let (r, errors) = router("name = \"api\"\nvips = [\"192.0.2.5\"]\nversion = 4\n");
        assert_eq!(r.version, Version::V3);
        assert_eq!(
            errors,
            ["3:11: instance \"api\": version: 4 is not a VRRP version; accepted: 3 (RFC 9568, default) or 2 (RFC 3768, IPv4 only)"]
        );
    }
}
