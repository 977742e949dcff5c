//! The steps before per-instance validation: the cluster identity (from the file or from an
//! OpenShift file), the top-level VIP lists, and the expansion of `role` into instances and
//! checks merged with the file's own `[[instance]]` / `[[check]]` tables.

use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::super::openshift::{self, ClusterIdentity, OpenShiftFileError};

type Reader = fn(&Path) -> Result<ClusterIdentity, OpenShiftFileError>;
use super::super::raw::{RawConfig, RawInstance, RawTrack, S};
use super::super::role::{openshift_password, Role, RoleInstance, VipKind};
use super::super::Family;
use super::Validator;
use crate::health::CheckConfig;

/// The cluster identity and top-level VIPs, wherever they came from.
pub(super) struct Identity {
    pub cluster_name: String,
    pub cluster_name_span: Range<usize>,
    pub base_domain: Option<(String, Range<usize>)>,
    /// `api_vips` / `ingress_vips`, each address with the span to blame for it.
    pub api_vips: Option<Vec<(IpAddr, Range<usize>)>>,
    pub ingress_vips: Option<Vec<(IpAddr, Range<usize>)>>,
    /// `"<file> (metadata.name, baseDomain, ...)"` when an OpenShift file was read.
    pub source: Option<String>,
}

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
    pub(super) fn identity(&mut self, raw: &RawConfig) -> Identity {
        let from_file = self.openshift_file(raw);
        let openshift_named =
            raw.openshift_install_config.is_some() || raw.openshift_infrastructure.is_some();
        let (cluster_name, cluster_name_span) = match (&raw.cluster_name, &from_file) {
            (Some(c), None) => (c.get_ref().trim().to_owned(), c.span()),
            (Some(c), Some((id, _, path))) => {
                let written = c.get_ref().trim();
                if written != id.cluster_name {
                    self.err(
                        c.span(),
                        "cluster_name",
                        format!(
                            "{written:?} differs from {:?} read from {}; a wrong name derives wrong VRIDs: remove cluster_name or correct it",
                            id.cluster_name,
                            path.display()
                        ),
                    );
                }
                (written.to_owned(), c.span())
            }
            (None, Some((id, span, _))) => (id.cluster_name.clone(), span.clone()),
            // A named OpenShift file that failed was reported already; asking for the name
            // again would only hide the cause.
            (None, None) if openshift_named => (String::new(), 0..0),
            (None, None) => {
                self.err(
                    0..0,
                    "(top level)",
                    "missing field `cluster_name`; set cluster_name = \"<cluster>\" (metadata.name of install-config.yaml), or openshift_install_config / openshift_infrastructure to read it",
                );
                (String::new(), 0..0)
            }
        };
        let base_domain = match (&raw.base_domain, &from_file) {
            (Some(b), file) => {
                let written = b
                    .get_ref()
                    .trim()
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                if let Some((id, _, path)) = file {
                    if written != id.base_domain.to_ascii_lowercase() {
                        self.err(
                            b.span(),
                            "base_domain",
                            format!(
                                "{:?} differs from {:?} read from {}; remove base_domain or correct it",
                                b.get_ref(),
                                id.base_domain,
                                path.display()
                            ),
                        );
                    }
                }
                Some((b.get_ref().clone(), b.span()))
            }
            (None, Some((id, span, _))) => Some((id.base_domain.clone(), span.clone())),
            (None, None) => None,
        };
        let mut api_vips = self.top_level_vips(&raw.api_vips, "api_vips");
        let mut ingress_vips = self.top_level_vips(&raw.ingress_vips, "ingress_vips");
        let mut source = None;
        if let Some((id, span, path)) = &from_file {
            if api_vips.is_none() && !id.api_vips.is_empty() {
                api_vips = Some(id.api_vips.iter().map(|a| (*a, span.clone())).collect());
            }
            if ingress_vips.is_none() && !id.ingress_vips.is_empty() {
                ingress_vips = Some(id.ingress_vips.iter().map(|a| (*a, span.clone())).collect());
            }
            source = Some(format!("{} ({})", path.display(), id.keys.join(", ")));
        }
        Identity {
            cluster_name,
            cluster_name_span,
            base_domain,
            api_vips,
            ingress_vips,
            source,
        }
    }

    /// Reads `openshift_install_config` or `openshift_infrastructure` (at most one).
    fn openshift_file(
        &mut self,
        raw: &RawConfig,
    ) -> Option<(ClusterIdentity, Range<usize>, PathBuf)> {
        let (key, text, read): (&str, &S<String>, Reader) = match (
            &raw.openshift_install_config,
            &raw.openshift_infrastructure,
        ) {
            (Some(_), Some(b)) => {
                self.err(
                        b.span(),
                        "openshift_infrastructure",
                        "is set together with openshift_install_config; set one of them (install-config.yaml also gives the VIPs)",
                    );
                return None;
            }
            (Some(a), None) => (
                "openshift_install_config",
                a,
                openshift::read_install_config,
            ),
            (None, Some(b)) => (
                "openshift_infrastructure",
                b,
                openshift::read_infrastructure,
            ),
            (None, None) => return None,
        };
        // A relative path is taken from the configuration file's directory, which is well
        // defined, unlike the daemon's working directory.
        let written = PathBuf::from(text.get_ref());
        let path = if written.is_absolute() {
            written
        } else {
            self.path
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join(written)
        };
        match read(&path) {
            Ok(id) => Some((id, text.span(), path)),
            Err(e) => {
                self.err(text.span(), key, e.to_string());
                None
            }
        }
    }

    fn top_level_vips(
        &mut self,
        list: &Option<S<Vec<S<String>>>>,
        key: &str,
    ) -> Option<Vec<(IpAddr, Range<usize>)>> {
        let list = list.as_ref()?;
        if list.get_ref().is_empty() {
            self.err(
                list.span(),
                key,
                "is empty; list the VIP(s), one per address family, e.g. [\"192.0.2.5\"]",
            );
        }
        let mut out: Vec<(IpAddr, Range<usize>)> = Vec::new();
        for text in list.get_ref() {
            let Some(addr) = self.vip(text, key) else {
                continue;
            };
            if out.iter().any(|(a, _)| *a == addr) {
                self.err(text.span(), key, format!("{addr} is listed twice"));
            } else if out.iter().any(|(a, _)| Family::of(*a) == Family::of(addr)) {
                // One VIP per family, as OpenShift's installer accepts (dual stack = two).
                self.err(
                    text.span(),
                    key,
                    format!(
                        "{addr} is a second {} VIP; list at most one VIP per address family",
                        Family::of(addr)
                    ),
                );
            } else {
                out.push((addr, text.span()));
            }
        }
        Some(out)
    }

    /// The instances to validate: the role's (merged with same-named `[[instance]]`s), then the
    /// file's others. Also returns the role's preset checks to add, with the span of `role`.
    pub(super) fn plan(
        &mut self,
        raw: &RawConfig,
        identity: &Identity,
    ) -> (Option<Role>, Vec<Planned>, Vec<S<CheckConfig>>) {
        let role = raw.role.as_ref().and_then(|r| match Role::parse(r.get_ref().trim()) {
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
        });
        let mut role_instances: Vec<Planned> = Vec::new();
        if let Some((role, span)) = &role {
            for ri in role.instances() {
                let vips = match ri.kind {
                    VipKind::Api => &identity.api_vips,
                    VipKind::Ingress => &identity.ingress_vips,
                };
                // The family of VIPs written in a same-named [[instance]] instead.
                let user_family = raw
                    .instance
                    .iter()
                    .filter(|i| i.get_ref().name.get_ref() == ri.kind.name())
                    .find_map(|i| i.get_ref().vips.as_ref())
                    .map(|v| {
                        let first = v.get_ref().first().map(|t| t.get_ref().trim());
                        match first.and_then(|t| t.parse::<IpAddr>().ok()) {
                            Some(a) => Family::of(a),
                            None => Family::Ipv4,
                        }
                    });
                let Some(vips) = vips else {
                    let Some(family) = user_family else {
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
                    role_instances.push(self.role_instance(ri, &[], family, span, identity, None));
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
                    role_instances
                        .push(self.role_instance(ri, &of_family, *family, span, identity, suffix));
                }
            }
        }

        let mut planned: Vec<Planned> = Vec::new();
        let mut merged: Vec<usize> = Vec::new();
        for mut p in role_instances {
            let name = p.raw.name.get_ref().clone();
            // Only the first table of that name is merged; a second one is validated on its
            // own so the duplicate name is reported.
            if let Some(i) = raw
                .instance
                .iter()
                .position(|i| *i.get_ref().name.get_ref() == name)
            {
                merged.push(i);
                p = merge(p, &raw.instance[i]);
            }
            planned.push(p);
        }
        for (i, user) in raw.instance.iter().enumerate() {
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

        // The role's preset checks that some instance tracks and the file does not define.
        let mut checks = Vec::new();
        if let Some((_, span)) = &role {
            for preset in crate::health::openshift_master_checks() {
                let tracked = planned.iter().any(|p| {
                    p.raw
                        .track
                        .iter()
                        .flatten()
                        .any(|t| *t.get_ref().check.get_ref() == preset.name)
                });
                let defined = raw.check.iter().any(|c| c.get_ref().name == preset.name);
                if tracked && !defined {
                    checks.push(S::new(span.clone(), preset));
                }
            }
        }
        (role.map(|(r, _)| r), planned, checks)
    }

    #[allow(clippy::too_many_arguments)]
    fn role_instance(
        &mut self,
        ri: &RoleInstance,
        vips: &[(IpAddr, Range<usize>)],
        family: Family,
        span: &Range<usize>,
        identity: &Identity,
        suffix: Option<&str>,
    ) -> Planned {
        let (kind, priority, track) = (ri.kind, ri.priority, ri.track);
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
            name: S::new(span.clone(), name),
            vips: (!vips.is_empty()).then(|| {
                S::new(
                    vips_span,
                    vips.iter()
                        .map(|(a, s)| S::new(s.clone(), a.to_string()))
                        .collect(),
                )
            }),
            interface: None,
            vrid: suffix.map(|_| {
                S::new(
                    span.clone(),
                    i64::from(vipd_vrrp::vrid::derive_vrid(&vrid_input)),
                )
            }),
            priority: at(i64::from(priority)),
            advert_interval: text("1s".into()),
            version: at(version),
            password,
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
            track: Some(
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
                    .collect(),
            ),
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
        },
        span: user.span(),
        role_keys,
        vrid_input: role.vrid_input,
        hears_bootstrap: role.hears_bootstrap,
    }
}
