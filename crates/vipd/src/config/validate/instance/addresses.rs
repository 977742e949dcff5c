//! Where an instance lives: its VIPs (one or more, one family) and its interface.

use std::net::IpAddr;
use std::ops::Range;

use super::super::super::raw::S;
use super::super::super::Family;
use super::super::names::interface_name;
use super::super::Validator;
use super::Inst;

/// An instance's validated addresses.
pub(super) struct Addresses {
    /// Each accepted VIP with the span of its text, for the checks across instances.
    pub vip_spans: Vec<(IpAddr, Range<usize>)>,
    pub vips: Vec<IpAddr>,
    /// The VIPs' family; IPv4 when there is none (an error was reported then).
    pub family: Family,
    pub interface: Option<String>,
}

impl Validator<'_> {
    pub(super) fn addresses(&mut self, inst: &Inst) -> Addresses {
        let vip_spans = self.instance_vips(inst);
        let vips: Vec<IpAddr> = vip_spans.iter().map(|(a, _)| *a).collect();
        let family = vips
            .first()
            .copied()
            .map(Family::of)
            .unwrap_or(Family::Ipv4);
        let interface = inst.raw.interface.as_ref().and_then(|i| {
            let ifname = i.get_ref().trim();
            match interface_name(ifname) {
                Ok(()) => Some(ifname.to_owned()),
                Err(why) => {
                    self.err(i.span(), inst.at("interface"), why);
                    None
                }
            }
        });
        Addresses {
            vip_spans,
            vips,
            family,
            interface,
        }
    }

    /// `vips`: one or more, no duplicates, one family.
    fn instance_vips(&mut self, inst: &Inst) -> Vec<(IpAddr, Range<usize>)> {
        let mut vip_spans: Vec<(IpAddr, Range<usize>)> = Vec::new();
        for text in self.vip_texts(inst) {
            let Some(addr) = self.vip(text, &inst.at("vips")) else {
                continue;
            };
            if let Some((first, _)) = vip_spans.iter().find(|(a, _)| *a == addr) {
                let first = *first;
                self.err(
                    text.span(),
                    inst.at("vips"),
                    format!("{first} is listed twice"),
                );
                continue;
            }
            if let Some((first, _)) = vip_spans.first() {
                let first = *first;
                if Family::of(first) != Family::of(addr) {
                    self.err(
                        text.span(),
                        inst.at("vips"),
                        format!(
                            "{first} and {addr} mix IPv4 and IPv6; use one instance per family"
                        ),
                    );
                    continue;
                }
            }
            vip_spans.push((addr, text.span()));
        }
        vip_spans
    }

    /// The written `vips` list; an error when it is missing or empty.
    fn vip_texts<'i>(&mut self, inst: &Inst<'i>) -> &'i [S<String>] {
        match &inst.raw.vips {
            Some(v) => {
                if v.get_ref().is_empty() {
                    self.err(
                        v.span(),
                        inst.at("vips"),
                        "is empty; list at least one address, e.g. vips = [\"192.0.2.5\"]",
                    );
                }
                v.get_ref()
            }
            None => {
                self.err(
                    inst.span(),
                    inst.at("vips"),
                    "missing; list the instance's addresses, e.g. vips = [\"192.0.2.5\"] (a role fills it from api_vips / ingress_vips only for its own instances)",
                );
                &[]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::validator;
    use super::super::tests::planned;
    use super::*;

    fn addresses(text: &str) -> (Addresses, Vec<(usize, usize, String, String)>) {
        let mut v = validator(text);
        let p = planned(text);
        let a = v.addresses(&Inst::new(&p));
        let errors = v
            .errors
            .iter()
            .map(|d| (d.line, d.column, d.key.clone(), d.message.clone()))
            .collect();
        (a, errors)
    }

    #[test]
    fn a_second_family_is_refused_at_its_address() {
        let (a, errors) = addresses("name = \"api\"\nvips = [\"192.0.2.5\", \"2001:db8::5\"]\n");
        assert_eq!(a.vips, ["192.0.2.5".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            errors,
            [(
                2,
                22,
                "instance \"api\": vips".to_owned(),
                "192.0.2.5 and 2001:db8::5 mix IPv4 and IPv6; use one instance per family"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn missing_vips_blame_the_table_and_default_to_ipv4() {
        let (a, errors) = addresses("name = \"api\"\ninterface = \" eth0 \"\n");
        assert!(a.vips.is_empty());
        assert_eq!(a.family, Family::Ipv4);
        assert_eq!(a.interface.as_deref(), Some("eth0"));
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].0, errors[0].1), (1, 1));
        assert!(errors[0]
            .3
            .starts_with("missing; list the instance's addresses"));
    }
}
