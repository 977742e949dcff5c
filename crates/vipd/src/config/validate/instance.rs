//! `[[instance]]`: one virtual router, validated as a row of small steps in the order of its
//! keys' diagnostics: name, addresses (VIPs, interface), router (version, VRID, priority,
//! advert interval), authentication and checksum, unicast and the source filter, announcements
//! and resign wait, tracked checks.

use std::net::IpAddr;
use std::ops::Range;

use super::super::raw::RawInstance;
use super::super::{InstanceConfig, TrackConfig};
use super::names::instance_name;
use super::roles::Planned;
use super::Validator;
use crate::health::CheckSpec;

mod addresses;
mod announce;
mod auth;
mod bfd;
mod peers;
mod router;
mod track;

/// The instance being validated: its planned table and the prefix of its diagnostics' keys.
pub(super) struct Inst<'p> {
    planned: &'p Planned,
    raw: &'p RawInstance,
    name: String,
}

impl<'p> Inst<'p> {
    fn new(planned: &'p Planned) -> Self {
        Inst {
            planned,
            raw: &planned.raw,
            name: planned.raw.name.get_ref().clone(),
        }
    }

    /// The key of a diagnostic: `instance "api": priority`.
    fn at(&self, key: &str) -> String {
        format!("instance {:?}: {key}", self.name)
    }

    /// The `[[instance]]` table (or the `role` key), blamed for what is missing from it.
    fn span(&self) -> Range<usize> {
        self.planned.span.clone()
    }

    /// Whether the role supplied `key` (its value is then not the user's to warn about).
    fn role_supplied(&self, key: &str) -> bool {
        self.planned.role_keys.contains(&key)
    }
}

/// Where an instance's values came from, for the checks across instances.
pub(super) struct Placed {
    pub name_span: Range<usize>,
    pub vrid_span: Range<usize>,
    pub vip_spans: Vec<(IpAddr, Range<usize>)>,
    /// `[instance.bfd]`, when written.
    pub bfd_span: Option<Range<usize>>,
}

/// The checks an instance may track: validated specs (for default weights) and every name
/// defined, including those that failed validation (so they are not reported as unknown).
pub(super) struct Checks<'c> {
    pub specs: &'c [CheckSpec],
    pub names: &'c [String],
}

impl Validator<'_> {
    /// Every planned instance, then the checks across them (names, VIPs, VRIDs).
    pub(super) fn instances(
        &mut self,
        planned: &[Planned],
        cluster_name: &str,
        checks: &Checks,
    ) -> Vec<InstanceConfig> {
        let mut instances = Vec::new();
        let mut placed = Vec::new();
        for inst in planned {
            if let Some((i, p)) = self.instance(inst, cluster_name, checks) {
                instances.push(i);
                placed.push(p);
            }
        }
        self.across_instances(&instances, &placed);
        let bfd_spans: Vec<_> = placed.iter().map(|p| p.bfd_span.clone()).collect();
        self.bfd_across(&instances, &bfd_spans);
        instances
    }

    fn instance(
        &mut self,
        planned: &Planned,
        cluster_name: &str,
        checks: &Checks,
    ) -> Option<(InstanceConfig, Placed)> {
        let errors_before = self.errors.len();
        let inst = Inst::new(planned);
        if let Err(why) = instance_name(&inst.name) {
            self.err(inst.raw.name.span(), inst.at("name"), why);
        }
        let addresses = self.addresses(&inst);
        let router = self.router(&inst, cluster_name, &addresses);
        let (auth, checksum) = self.auth(&inst, router.version, addresses.family);
        let unicast = self.unicast(&inst, &addresses);
        let announce = self.announce(&inst);
        let track: Vec<TrackConfig> = self.track(&inst, router.priority, checks);
        let master_down = vipd_vrrp::timers::master_down_interval(
            router.version,
            router.priority,
            router.advert_interval,
        );
        let bfd = self.bfd(&inst, &unicast.peers, master_down);
        if self.errors.len() > errors_before {
            return None;
        }
        let placed = Placed {
            name_span: inst.raw.name.span(),
            vrid_span: router.vrid_span,
            vip_spans: addresses.vip_spans,
            bfd_span: inst.raw.bfd.as_ref().map(|b| b.span()),
        };
        let config = InstanceConfig {
            name: inst.name,
            vrid: router.vrid,
            vrid_source: router.vrid_source,
            vips: addresses.vips,
            family: addresses.family,
            interface: addresses.interface,
            priority: router.priority,
            advert_interval: router.advert_interval,
            version: router.version,
            auth,
            checksum,
            preempt: inst.raw.preempt.unwrap_or(true),
            unicast_source: unicast.source,
            peers: unicast.peers,
            check_source: unicast.check_source,
            accept_from: unicast.accept_from,
            ttl: unicast.ttl,
            announce_count: announce.count,
            announce_repeat_after: announce.repeat_after,
            announce_refresh: announce.refresh,
            resign_wait: announce.resign_wait,
            track,
            bfd,
            role_keys: planned.role_keys.clone(),
        };
        Some((config, placed))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::validator;
    use super::*;

    /// A planned instance from the text of one `[[instance]]` table (spans are into `text`).
    pub(super) fn planned(text: &str) -> Planned {
        let raw: RawInstance = toml::from_str(text).expect("instance table");
        Planned {
            raw,
            span: 0..text.len(),
            role_keys: Vec::new(),
            vrid_input: None,
            hears_bootstrap: false,
        }
    }

    #[test]
    fn an_instance_with_errors_is_left_out_and_the_rest_validated() {
        let text = "name = \"api v6\"\nvips = [\"192.0.2.5\"]\npriority = 0\n";
        let mut v = validator(text);
        let checks = Checks {
            specs: &[],
            names: &[],
        };
        assert!(v.instance(&planned(text), "ostest", &checks).is_none());
        let keys: Vec<(usize, &str)> = v.errors.iter().map(|d| (d.line, d.key.as_str())).collect();
        assert_eq!(
            keys,
            [
                (1, "instance \"api v6\": name"),
                (3, "instance \"api v6\": priority")
            ]
        );
    }

    #[test]
    fn preempt_defaults_to_true() {
        let text = "name = \"api\"\nvips = [\"192.0.2.5\"]\n";
        let mut v = validator(text);
        let checks = Checks {
            specs: &[],
            names: &[],
        };
        let (config, placed) = v.instance(&planned(text), "ostest", &checks).unwrap();
        assert!(config.preempt);
        assert_eq!(placed.name_span, 7..12);
    }
}
