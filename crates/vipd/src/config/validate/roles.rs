//! The expansion of `role` into instances and checks, merged with the file's own
//! `[[instance]]` / `[[check]]` tables: what the per-instance steps validate.

use std::net::IpAddr;
use std::ops::Range;

use super::super::raw::{RawConfig, RawInstance, RawTrack, S};
use super::super::role::{openshift_password, Role, RoleInstance, VipKind};
use super::super::Family;
use super::identity::Identity;
use super::Validator;
use crate::health::CheckConfig;

/// An instance ready for validation: the file's table, a role's, or both merged.
pub(super) struct Planned {
    pub raw: RawInstance,
    /// The `[[instance]]` table, or the `role` key for an instance only the role defines.
    pub span: Range<usize>,
    /// Keys whose value the role supplied (shown by `vipd check-config`).
    pub role_keys: Vec<&'static str>,
    /// For a role's second-family instance: the VRID is derived from the first one's input.
    pub vrid_input: Option<String>,
    /// The role's instance hears a sender that is not in its peer list (the bootstrap):
    /// see [`crate::config::role::RoleInstance::hears_bootstrap`].
    pub hears_bootstrap: bool,
}

/// Keys a role may supply, in the order `vipd check-config` lists them.
pub const ROLE_KEYS: [&str; 7] = [
    "vips",
    "vrid",
    "priority",
    "version",
    "password",
    "advert_interval",
    "track",
];

impl Validator<'_> {
    /// The instances to validate: the role's (merged with same-named `[[instance]]`s), then the
    /// file's others. Also returns the role's preset checks to add, with the span of `role`.
    pub(super) fn plan(
        &mut self,
        raw: &RawConfig,
        identity: &Identity,
    ) -> (Option<Role>, Vec<Planned>, Vec<S<CheckConfig>>) {
        let role = self.role(raw);
        let role_instances = match &role {
            Some((role, span)) => self.role_instances(*role, span, raw, identity),
            None => Vec::new(),
        };
        let planned = merge_all(role_instances, &raw.instance);
        let checks = match &role {
            Some((_, span)) => preset_checks(span, &planned, &raw.check),
            None => Vec::new(),
        };
        (role.map(|(r, _)| r), planned, checks)
    }

    /// `role`, with the span of its value.
    fn role(&mut self, raw: &RawConfig) -> Option<(Role, Range<usize>)> {
        let r = raw.role.as_ref()?;
        match Role::parse(r.get_ref().trim()) {
            Some(role) => Some((role, r.span())),
            None => {
                self.err(
                    r.span(),
                    "role",
                    format!(
                        "{:?} is not a role; accepted \"bootstrap\", \"master\" or \"worker\" (OpenShift's keepalived settings for that node), or leave role out",
                        r.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// The instances a role runs: one per VIP family of each of its VIP kinds.
    fn role_instances(
        &mut self,
        role: Role,
        span: &Range<usize>,
        raw: &RawConfig,
        identity: &Identity,
    ) -> Vec<Planned> {
        let mut out: Vec<Planned> = Vec::new();
        for ri in role.instances() {
            let vips = match ri.kind {
                VipKind::Api => &identity.api_vips,
                VipKind::Ingress => &identity.ingress_vips,
            };
            let Some(vips) = vips else {
                let Some(family) = user_family(raw, ri.kind) else {
                    self.err(
                        span.clone(),
                        "role",
                        format!(
                            "role {role} runs the {name} instance but its VIPs are unknown; set {key} = [\"...\"] (or openshift_install_config to read them)",
                            name = ri.kind.name(),
                            key = ri.kind.vips_key()
                        ),
                    );
                    continue;
                };
                out.push(role_instance(ri, &[], family, span, identity, None));
                continue;
            };
            // One instance per family: `api` for the first VIP's family, `api-v6` (or
            // `api-v4`) for the second. Both keep the VRID derived from `<cluster>-api`:
            // OpenShift derives one router ID per role, and an IPv4 and an IPv6 router may
            // share it (RFC 9568 section 1).
            let mut families: Vec<Family> = Vec::new();
            for (a, _) in vips {
                if !families.contains(&Family::of(*a)) {
                    families.push(Family::of(*a));
                }
            }
            for (n, family) in families.iter().enumerate() {
                let of_family: Vec<(IpAddr, Range<usize>)> = vips
                    .iter()
                    .filter(|(a, _)| Family::of(*a) == *family)
                    .cloned()
                    .collect();
                let suffix = match (n, family) {
                    (0, _) => None,
                    (_, Family::Ipv4) => Some("v4"),
                    (_, Family::Ipv6) => Some("v6"),
                };
                out.push(role_instance(
                    ri, &of_family, *family, span, identity, suffix,
                ));
            }
        }
        out
    }
}

/// The family of VIPs written in a same-named `[[instance]]` instead of the top-level lists.
fn user_family(raw: &RawConfig, kind: VipKind) -> Option<Family> {
    raw.instance
        .iter()
        .filter(|i| i.get_ref().name.get_ref() == kind.name())
        .find_map(|i| i.get_ref().vips.as_ref())
        .map(|v| {
            let first = v.get_ref().first().map(|t| t.get_ref().trim());
            match first.and_then(|t| t.parse::<IpAddr>().ok()) {
                Some(a) => Family::of(a),
                None => Family::Ipv4,
            }
        })
}

/// The role's instances, each merged with the first `[[instance]]` of its name, then the
/// file's other instances.
fn merge_all(role_instances: Vec<Planned>, file: &[S<RawInstance>]) -> Vec<Planned> {
    let mut planned: Vec<Planned> = Vec::new();
    let mut merged: Vec<usize> = Vec::new();
    for mut p in role_instances {
        let name = p.raw.name.get_ref().clone();
        // Only the first table of that name is merged; a second one is validated on its
        // own so the duplicate name is reported.
        if let Some(i) = file
            .iter()
            .position(|i| *i.get_ref().name.get_ref() == name)
        {
            merged.push(i);
            p = merge(p, &file[i]);
        }
        planned.push(p);
    }
    for (i, user) in file.iter().enumerate() {
        if merged.contains(&i) {
            continue;
        }
        planned.push(Planned {
            raw: user.get_ref().clone(),
            span: user.span(),
            role_keys: Vec::new(),
            vrid_input: None,
            hears_bootstrap: false,
        });
    }
    planned
}

/// The role's preset checks that some instance tracks and the file does not define.
fn preset_checks(
    span: &Range<usize>,
    planned: &[Planned],
    file: &[S<CheckConfig>],
) -> Vec<S<CheckConfig>> {
    let mut checks = Vec::new();
    for preset in crate::health::openshift_master_checks() {
        let tracked = planned.iter().any(|p| {
            p.raw
                .track
                .iter()
                .flatten()
                .any(|t| *t.get_ref().check.get_ref() == preset.name)
        });
        let defined = file.iter().any(|c| c.get_ref().name == preset.name);
        if tracked && !defined {
            checks.push(S::new(span.clone(), preset));
        }
    }
    checks
}

/// A role's instance of `family` with `vips` (empty when a same-named `[[instance]]` gives
/// them); `suffix` names a second-family instance (`api-v6`).
fn role_instance(
    ri: &RoleInstance,
    vips: &[(IpAddr, Range<usize>)],
    family: Family,
    span: &Range<usize>,
    identity: &Identity,
    suffix: Option<&str>,
) -> Planned {
    let kind = ri.kind;
    let at = |v: i64| Some(S::new(span.clone(), v));
    let text = |v: String| Some(S::new(span.clone(), v));
    let name = match suffix {
        Some(s) => format!("{}-{s}", kind.name()),
        None => kind.name().to_owned(),
    };
    let vrid_input = format!("{}-{}", identity.cluster_name, kind.name());
    let vips_span = vips.first().map(|(_, s)| s.clone()).unwrap_or(span.clone());
    // OpenShift renders VRRPv2 with PASS for IPv4 and VRRPv3 without authentication for
    // IPv6 (openshift.md section 3).
    let (version, password) = match family {
        Family::Ipv4 => (2, text(openshift_password(&identity.cluster_name, kind))),
        Family::Ipv6 => (3, None),
    };
    let raw = RawInstance {
        vips: (!vips.is_empty()).then(|| {
            S::new(
                vips_span,
                vips.iter()
                    .map(|(a, s)| S::new(s.clone(), a.to_string()))
                    .collect(),
            )
        }),
        vrid: suffix.map(|_| {
            S::new(
                span.clone(),
                i64::from(vipd_vrrp::vrid::derive_vrid(&vrid_input)),
            )
        }),
        priority: at(i64::from(ri.priority)),
        advert_interval: text("1s".into()),
        version: at(version),
        password,
        track: Some(role_track(ri.track, span)),
        ..name_only(S::new(span.clone(), name))
    };
    let role_keys = ROLE_KEYS
        .iter()
        .copied()
        .filter(|k| match *k {
            "vips" => raw.vips.is_some(),
            "vrid" => raw.vrid.is_some(),
            "password" => raw.password.is_some(),
            _ => true,
        })
        .collect();
    Planned {
        raw,
        span: span.clone(),
        role_keys,
        vrid_input: suffix.map(|_| vrid_input),
        hears_bootstrap: ri.hears_bootstrap,
    }
}

/// A role's `track` list, located at the `role` key.
fn role_track(track: &[(&str, i32)], span: &Range<usize>) -> Vec<S<RawTrack>> {
    track
        .iter()
        .map(|(check, weight)| {
            S::new(
                span.clone(),
                RawTrack {
                    check: S::new(span.clone(), (*check).to_owned()),
                    weight: Some(S::new(span.clone(), i64::from(*weight))),
                },
            )
        })
        .collect()
}

/// An `[[instance]]` table with only its name written.
fn name_only(name: S<String>) -> RawInstance {
    RawInstance {
        name,
        vips: None,
        interface: None,
        vrid: None,
        priority: None,
        advert_interval: None,
        version: None,
        password: None,
        checksum: None,
        preempt: None,
        unicast_source: None,
        unicast_peers: None,
        ttl_min: None,
        ttl_max: None,
        announce_count: None,
        announce_repeat_after: None,
        announce_refresh: None,
        resign_wait: None,
        check_source: None,
        accept_from: None,
        track: None,
        bfd: None,
    }
}

/// The file's `[[instance]]` over a role's: every key written in the file wins.
fn merge(role: Planned, user: &S<RawInstance>) -> Planned {
    let u = user.get_ref().clone();
    let r = role.raw;
    let mut role_keys = role.role_keys;
    let mut take = |key: &'static str, written: bool| {
        if written {
            role_keys.retain(|k| *k != key);
        }
    };
    take("vips", u.vips.is_some());
    take("vrid", u.vrid.is_some());
    take("priority", u.priority.is_some());
    take("version", u.version.is_some());
    take("password", u.password.is_some());
    take("advert_interval", u.advert_interval.is_some());
    take("track", u.track.is_some());
    let version = u.version.or(r.version);
    // The role's password belongs to its VRRPv2; a file that switches to v3 drops it
    // (VRRPv3 has no authentication, RFC 9568).
    let password = match (&u.password, &version) {
        (Some(_), _) => u.password,
        (None, Some(v)) if *v.get_ref() == 3 => {
            role_keys.retain(|k| *k != "password");
            None
        }
        (None, _) => r.password,
    };
    Planned {
        raw: RawInstance {
            name: u.name,
            vips: u.vips.or(r.vips),
            interface: u.interface,
            vrid: u.vrid.or(r.vrid),
            priority: u.priority.or(r.priority),
            advert_interval: u.advert_interval.or(r.advert_interval),
            version,
            password,
            checksum: u.checksum,
            preempt: u.preempt,
            unicast_source: u.unicast_source,
            unicast_peers: u.unicast_peers,
            ttl_min: u.ttl_min,
            ttl_max: u.ttl_max,
            announce_count: u.announce_count,
            announce_repeat_after: u.announce_repeat_after,
            announce_refresh: u.announce_refresh,
            resign_wait: u.resign_wait,
            check_source: u.check_source,
            accept_from: u.accept_from,
            track: u.track.or(r.track),
            bfd: u.bfd,
        },
        span: user.span(),
        role_keys,
        vrid_input: role.vrid_input,
        hears_bootstrap: role.hears_bootstrap,
    }
}
