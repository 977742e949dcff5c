//! Raw file -> [`Config`]: every check, every default, every error located to the character.
//!
//! Validation keeps going after an error so that one run of `vipd check-config` lists every
//! problem of a file, not only the first.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vipd_vrrp::{Auth, ChecksumForm, Version};

use super::raw::{RawConfig, RawDns, S};
use super::{
    ClientNet, Config, ConfigError, ControlConfig, Diagnostic, DnsConfig, DnsNode, Family,
    HttpConfig, InstanceConfig, TrackConfig, VridSource,
};
use crate::health::CheckSpec;
use roles::Planned;

mod handoff;
mod names;
mod resolver;
mod roles;
mod values;

use names::{dns_label, dns_name, instance_name, interface_name};
use values::parse_default;

pub const DEFAULT_PRIORITY: u8 = 100;
pub const DEFAULT_ADVERT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_ANNOUNCE_COUNT: u32 = 5;
pub const MAX_ANNOUNCE_COUNT: i64 = 100;
pub const DEFAULT_ANNOUNCE_REPEAT_AFTER: Duration = Duration::from_secs(5);
pub const DEFAULT_ANNOUNCE_REFRESH: Duration = Duration::from_secs(60);
pub const DEFAULT_RESIGN_WAIT: Duration = Duration::from_secs(3);
pub const MAX_RESIGN_WAIT: Duration = Duration::from_secs(60);
pub const DEFAULT_DNS_LISTEN: [&str; 2] = ["0.0.0.0:53", "[::]:53"];
pub const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";
pub const DEFAULT_DNS_TTL: u32 = 30;
pub const MAX_DNS_TTL: i64 = 86_400;
pub const DEFAULT_MAX_UDP_SIZE: u16 = 512;
pub const DEFAULT_HTTP_LISTEN: &str = "0.0.0.0:18080";
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/vipd/vipd.sock";
/// keepalived's weight bound, shared with the health checks (`[[check]] weight`).
const MAX_WEIGHT: i64 = crate::health::config::MAX_WEIGHT as i64;

pub(super) fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let mut v = Validator::new(text, path);
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            // The deserializer reports a key missing from the document itself at 0..0, which
            // is not where the first table starts.
            let key = if span == (0..0) {
                "(top level)".to_owned()
            } else {
                key_path_at(text, span.start)
            };
            let message = e.message().trim().to_owned();
            v.err(span, key, message);
            return Err(ConfigError::Invalid(v.errors));
        }
    };
    let config = v.config(raw);
    if v.errors.is_empty() {
        Ok(Config {
            warnings: v.warnings,
            ..config
        })
    } else {
        Err(ConfigError::Invalid(v.errors))
    }
}

struct Validator<'a> {
    text: &'a str,
    path: &'a Path,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

/// Where an instance's values came from, for the checks across instances.
struct Placed {
    name_span: Range<usize>,
    vrid_span: Range<usize>,
    vip_spans: Vec<(IpAddr, Range<usize>)>,
}

impl<'a> Validator<'a> {
    fn new(text: &'a str, path: &'a Path) -> Self {
        Validator {
            text,
            path,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

impl Validator<'_> {
    fn diagnostic(&self, span: Range<usize>, key: String, message: String) -> Diagnostic {
        let (line, column) = line_column(self.text, span.start);
        Diagnostic {
            file: self.path.to_path_buf(),
            line,
            column,
            key,
            message,
        }
    }

    fn err(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let d = self.diagnostic(span, key.into(), message.into());
        self.errors.push(d);
    }

    fn warn(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let d = self.diagnostic(span, key.into(), message.into());
        self.warnings.push(d);
    }

    fn line_of(&self, span: &Range<usize>) -> usize {
        line_column(self.text, span.start).0
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let identity = self.identity(&raw);
        let cluster_name = identity.cluster_name.clone();
        if !identity.cluster_name_span.is_empty() || !cluster_name.is_empty() {
            if let Err(why) = dns_label(&cluster_name) {
                self.err(
                    identity.cluster_name_span.clone(),
                    "cluster_name",
                    format!("{cluster_name:?} {why}; the OpenShift cluster name is one DNS label, e.g. \"ostest\""),
                );
            }
        }
        let base_domain = identity.base_domain.as_ref().and_then(|(text, span)| {
            let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
            match dns_name(&name) {
                Ok(()) => Some(name),
                Err(why) => {
                    self.err(
                        span.clone(),
                        "base_domain",
                        format!("{text:?} {why}; write a domain such as \"example.com\""),
                    );
                    None
                }
            }
        });

        let (role, planned, role_checks) = self.plan(&raw, &identity);
        let mut all_checks = role_checks.clone();
        all_checks.extend(raw.check.iter().cloned());
        let role_check_names: Vec<String> = role_checks
            .iter()
            .map(|c| c.get_ref().name.clone())
            .collect();
        let checks = self.checks(&all_checks);
        let check_names: Vec<String> = all_checks
            .iter()
            .map(|c| c.get_ref().name.clone())
            .collect();

        let mut instances = Vec::new();
        let mut placed = Vec::new();
        for inst in &planned {
            if let Some((i, p)) = self.instance(inst, &cluster_name, &checks, &check_names) {
                instances.push(i);
                placed.push(p);
            }
        }
        self.across_instances(&instances, &placed);

        let defined: Vec<String> = planned
            .iter()
            .map(|p| p.raw.name.get_ref().clone())
            .collect();
        let top_level = |v: &Option<Vec<(IpAddr, Range<usize>)>>| {
            v.as_ref()
                .map(|l| l.iter().map(|(a, _)| *a).collect::<Vec<IpAddr>>())
        };
        let top_api = top_level(&identity.api_vips);
        let top_ingress = top_level(&identity.ingress_vips);
        let mut dns = raw.dns.as_ref().and_then(|d| {
            self.dns(
                d,
                &cluster_name,
                base_domain.as_deref(),
                &defined,
                &instances,
                (top_api.as_deref(), top_ingress.as_deref()),
            )
        });

        if planned.is_empty() && raw.dns.is_none() {
            self.err(
                0..0,
                "(top level)",
                "nothing to run: define at least one [[instance]] (a virtual IP) or a [dns] table",
            );
        }

        let http = raw.http.as_ref().and_then(|h| {
            let listen = match &h.get_ref().listen {
                Some(l) => self.socket_addr(l, "http: listen")?,
                None => parse_default(DEFAULT_HTTP_LISTEN),
            };
            Some(HttpConfig { listen })
        });

        let socket = raw
            .control
            .as_ref()
            .and_then(|c| c.get_ref().socket.as_ref())
            .and_then(|s| self.absolute_path(s, "control: socket"))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET));
        let control_group = raw
            .control
            .as_ref()
            .and_then(|c| c.get_ref().group.as_ref())
            .and_then(|g| {
                let name = g.get_ref();
                let valid = (1..=32).contains(&name.len())
                    && !name.starts_with('-')
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
                if !valid {
                    self.err(
                        g.span(),
                        "control: group",
                        format!("{name:?} is not a group name or number (1..32 of letters, digits, `_`, `.`, `-`)"),
                    );
                }
                valid.then(|| name.clone())
            });

        let resolver = raw
            .resolver
            .as_ref()
            .and_then(|r| self.resolver(r, raw.dns.as_ref(), dns.as_mut(), &instances));

        let handoff = self.handoff(
            raw.handoff.as_ref(),
            role.zip(raw.role.as_ref().map(|r| r.span())),
            &instances,
        );

        Config {
            source: self.path.to_path_buf(),
            cluster_name,
            base_domain,
            instances,
            checks,
            dns,
            http,
            control: ControlConfig {
                socket,
                group: control_group,
            },
            resolver,
            handoff,
            warnings: Vec::new(),
            role,
            role_checks: role_check_names,
            identity_source: identity.source,
        }
    }

    fn checks(&mut self, raw: &[S<crate::health::CheckConfig>]) -> Vec<CheckSpec> {
        let mut specs: Vec<CheckSpec> = Vec::new();
        let mut seen: HashMap<&str, Range<usize>> = HashMap::new();
        for c in raw {
            let name = c.get_ref().name.as_str();
            let key = format!("check {name:?}");
            if let Some(first) = seen.get(name) {
                let line = self.line_of(first);
                self.err(
                    c.span(),
                    format!("{key}: name"),
                    format!("defined twice (first at line {line}); check names must be unique"),
                );
                continue;
            }
            seen.insert(name, c.span());
            match c.get_ref().validate() {
                Ok(spec) => specs.push(spec),
                Err(message) => {
                    // The health module's messages already start with `[[check]] "name": `.
                    let prefix = format!("[[check]] {name:?}: ");
                    let rest = message.strip_prefix(&prefix).unwrap_or(&message).to_owned();
                    self.err(c.span(), key, rest);
                }
            }
        }
        specs
    }

    fn instance(
        &mut self,
        planned: &Planned,
        cluster_name: &str,
        checks: &[CheckSpec],
        check_names: &[String],
    ) -> Option<(InstanceConfig, Placed)> {
        let errors_before = self.errors.len();
        let r = &planned.raw;
        let name = r.name.get_ref().clone();
        let at = |key: &str| format!("instance {name:?}: {key}");
        if let Err(why) = instance_name(&name) {
            self.err(r.name.span(), at("name"), why);
        }

        // vips: one or more, one family.
        let mut vip_spans: Vec<(IpAddr, Range<usize>)> = Vec::new();
        let no_vips = Vec::new();
        let vip_texts = match &r.vips {
            Some(v) => {
                if v.get_ref().is_empty() {
                    self.err(
                        v.span(),
                        at("vips"),
                        "is empty; list at least one address, e.g. vips = [\"192.0.2.5\"]",
                    );
                }
                v.get_ref()
            }
            None => {
                self.err(
                    planned.span.clone(),
                    at("vips"),
                    "missing; list the instance's addresses, e.g. vips = [\"192.0.2.5\"] (a role fills it from api_vips / ingress_vips only for its own instances)",
                );
                &no_vips
            }
        };
        for text in vip_texts {
            let Some(addr) = self.vip(text, &at("vips")) else {
                continue;
            };
            if let Some((first, _)) = vip_spans.iter().find(|(a, _)| *a == addr) {
                let first = *first;
                self.err(text.span(), at("vips"), format!("{first} is listed twice"));
                continue;
            }
            if let Some((first, _)) = vip_spans.first() {
                let first = *first;
                if Family::of(first) != Family::of(addr) {
                    self.err(
                        text.span(),
                        at("vips"),
                        format!(
                            "{first} and {addr} mix IPv4 and IPv6; use one instance per family"
                        ),
                    );
                    continue;
                }
            }
            vip_spans.push((addr, text.span()));
        }
        let vips: Vec<IpAddr> = vip_spans.iter().map(|(a, _)| *a).collect();
        let family = vips
            .first()
            .copied()
            .map(Family::of)
            .unwrap_or(Family::Ipv4);

        let interface = r.interface.as_ref().and_then(|i| {
            let ifname = i.get_ref().trim();
            match interface_name(ifname) {
                Ok(()) => Some(ifname.to_owned()),
                Err(why) => {
                    self.err(i.span(), at("interface"), why);
                    None
                }
            }
        });

        let version = match &r.version {
            None => Version::V3,
            Some(v) => match *v.get_ref() {
                2 => Version::V2,
                3 => Version::V3,
                n => {
                    self.err(
                        v.span(),
                        at("version"),
                        format!("{n} is not a VRRP version; accepted: 3 (RFC 9568, default) or 2 (RFC 3768, IPv4 only)"),
                    );
                    Version::V3
                }
            },
        };
        if version == Version::V2 && family == Family::Ipv6 && !vips.is_empty() {
            let span = r
                .version
                .as_ref()
                .map(|v| v.span())
                .unwrap_or(planned.span.clone());
            self.err(
                span,
                at("version"),
                "VRRPv2 (RFC 3768) carries IPv4 addresses only; use version = 3 for IPv6 VIPs",
            );
        }

        let vrid_input = format!("{cluster_name}-{name}");
        let (vrid, vrid_source, vrid_span) = match &r.vrid {
            Some(v) => {
                let n = self.ranged(
                    v,
                    &at("vrid"),
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
                r.name.span(),
            ),
        };
        // A role's second-family instance carries the first one's derived VRID.
        let vrid_source = match &planned.vrid_input {
            Some(input) if planned.role_keys.contains(&"vrid") => {
                VridSource::Derived(input.clone())
            }
            _ => vrid_source,
        };

        let priority = match &r.priority {
            None => DEFAULT_PRIORITY,
            Some(p) if *p.get_ref() == 0 => {
                self.err(
                    p.span(),
                    at("priority"),
                    "0 is reserved for a Master that is resigning (RFC 9568 section 5.2.4); accepted 1..=255 (255 = address owner)",
                );
                DEFAULT_PRIORITY
            }
            Some(p) => self
                .ranged(
                    p,
                    &at("priority"),
                    1,
                    255,
                    "accepted 1..=255 (255 = address owner)",
                )
                .map(|n| n as u8)
                .unwrap_or(DEFAULT_PRIORITY),
        };

        let advert_interval = match &r.advert_interval {
            None => DEFAULT_ADVERT_INTERVAL,
            Some(text) => match self.duration(text, &at("advert_interval")) {
                None => DEFAULT_ADVERT_INTERVAL,
                Some(d) => {
                    if let Err(why) = vipd_vrrp::timers::check_interval(version, d) {
                        self.err(
                            text.span(),
                            at("advert_interval"),
                            format!("{:?} {why}", text.get_ref()),
                        );
                    }
                    d
                }
            },
        };

        let auth = match (&r.password, version) {
            (None, _) => Auth::None,
            (Some(p), Version::V3) => {
                self.err(
                    p.span(),
                    at("password"),
                    "VRRPv3 has no authentication (RFC 9568 removed it); remove password, or set version = 2 to speak VRRPv2 with PASS authentication",
                );
                Auth::None
            }
            (Some(p), Version::V2) => {
                let bytes = p.get_ref().as_bytes();
                if bytes.is_empty() {
                    self.err(
                        p.span(),
                        at("password"),
                        "is empty; remove the key for no authentication (auth type 0), or give 1 to 8 bytes",
                    );
                    Auth::None
                } else {
                    let mut pass = [0u8; 8];
                    let n = bytes.len().min(8);
                    pass[..n].copy_from_slice(&bytes[..n]);
                    // OpenShift's own passwords are longer than 8 bytes and truncated on every
                    // node alike; a role default is therefore not worth a warning.
                    if bytes.len() > 8 && !planned.role_keys.contains(&"password") {
                        self.warn(
                            p.span(),
                            at("password"),
                            format!(
                                "{} bytes long; only the first 8 ({:?}) are sent and compared (RFC 3768 section 5.3.10), as keepalived does",
                                bytes.len(),
                                String::from_utf8_lossy(&pass)
                            ),
                        );
                    }
                    Auth::Pass(pass)
                }
            }
        };

        let checksum = match (&r.checksum, version, family) {
            (None, Version::V2, _) => ChecksumForm::Plain,
            (None, Version::V3, _) => ChecksumForm::PseudoHeader,
            (Some(c), _, _) => {
                let form = match c.get_ref().as_str() {
                    "pseudo-header" => Some(ChecksumForm::PseudoHeader),
                    "rfc9568" => Some(ChecksumForm::Plain),
                    other => {
                        self.err(
                            c.span(),
                            at("checksum"),
                            format!("{other:?} is not a checksum form; accepted: \"pseudo-header\" (keepalived and FRR default) or \"rfc9568\" (RFC 9568 section 5.2.8, Cisco / Juniper / Arista)"),
                        );
                        None
                    }
                };
                match (form, version, family) {
                    (Some(_), Version::V2, _) => {
                        self.err(
                            c.span(),
                            at("checksum"),
                            "applies to VRRPv3 over IPv4 only; VRRPv2 never includes a pseudo-header (RFC 3768 section 5.3.8); remove checksum",
                        );
                        ChecksumForm::Plain
                    }
                    (Some(ChecksumForm::Plain), Version::V3, Family::Ipv6) => {
                        self.err(
                            c.span(),
                            at("checksum"),
                            "IPv6 always includes the pseudo-header (RFC 9568 section 5.2.8); remove checksum",
                        );
                        ChecksumForm::PseudoHeader
                    }
                    (Some(f), _, _) => f,
                    (None, _, _) => ChecksumForm::PseudoHeader,
                }
            }
        };

        let preempt = r.preempt.unwrap_or(true);

        let unicast_source = r.unicast_source.as_ref().and_then(|s| {
            let addr = self.address(s, &at("unicast_source"))?;
            if !vips.is_empty() && Family::of(addr) != family {
                self.err(
                    s.span(),
                    at("unicast_source"),
                    format!("{addr} is {}, the VIPs are {family}; adverts must come from an address of the VIPs' family", Family::of(addr)),
                );
                return None;
            }
            if vips.contains(&addr) {
                self.err(
                    s.span(),
                    at("unicast_source"),
                    format!("{addr} is one of this instance's VIPs; use the node's own address, which stays when the VIP moves"),
                );
                return None;
            }
            Some(addr)
        });

        let mut peers: Vec<IpAddr> = Vec::new();
        if let Some(list) = &r.unicast_peers {
            for text in list.get_ref() {
                let Some(addr) = self.address(text, &at("unicast_peers")) else {
                    continue;
                };
                let why = if !vips.is_empty() && Family::of(addr) != family {
                    Some(format!(
                        "{addr} is {}, the VIPs are {family}; list peers of the VIPs' family (one instance per family)",
                        Family::of(addr)
                    ))
                } else if Some(addr) == unicast_source {
                    Some(format!(
                        "{addr} is this node's own unicast_source; list only the other nodes"
                    ))
                } else if vips.contains(&addr) {
                    Some(format!(
                        "{addr} is one of this instance's VIPs; list the other nodes' own addresses"
                    ))
                } else if peers.contains(&addr) {
                    Some(format!("{addr} is listed twice"))
                } else {
                    None
                };
                match why {
                    Some(why) => self.err(text.span(), at("unicast_peers"), why),
                    None => peers.push(addr),
                }
            }
        }
        let unicast = !peers.is_empty();
        let (check_source, accept_from) =
            self.source_check(planned, &peers, unicast_source, &vips, family, &at);

        let ttl_range = "accepted 1..=255";
        let ttl_min = r
            .ttl_min
            .as_ref()
            .and_then(|t| self.ranged(t, &at("ttl_min"), 1, 255, ttl_range));
        let ttl_max = r
            .ttl_max
            .as_ref()
            .and_then(|t| self.ranged(t, &at("ttl_max"), 1, 255, ttl_range));
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
                            at(key),
                            format!("{n} with multicast; RFC 9568 section 7.1 requires TTL / hop limit 255 on multicast adverts; set unicast_peers to relax it"),
                        );
                    }
                }
            }
        } else if ttl.0 > ttl.1 {
            let span = r
                .ttl_min
                .as_ref()
                .map(|t| t.span())
                .unwrap_or(planned.span.clone());
            self.err(
                span,
                at("ttl_min"),
                format!(
                    "{} is above ttl_max {}; accepted ttl_min <= ttl_max",
                    ttl.0, ttl.1
                ),
            );
        }

        let announce_count = match &r.announce_count {
            None => DEFAULT_ANNOUNCE_COUNT,
            Some(c) => self
                .ranged(
                    c,
                    &at("announce_count"),
                    0,
                    MAX_ANNOUNCE_COUNT,
                    "accepted 0..=100 (0 = never announce)",
                )
                .map(|n| n as u32)
                .unwrap_or(DEFAULT_ANNOUNCE_COUNT),
        };
        let announce_repeat_after = self.optional_period(
            &r.announce_repeat_after,
            &at("announce_repeat_after"),
            DEFAULT_ANNOUNCE_REPEAT_AFTER,
            Duration::from_millis(100),
        );
        let announce_refresh = self.optional_period(
            &r.announce_refresh,
            &at("announce_refresh"),
            DEFAULT_ANNOUNCE_REFRESH,
            Duration::from_secs(1),
        );
        let resign_wait = match &r.resign_wait {
            None => DEFAULT_RESIGN_WAIT,
            Some(text) => match self.duration(text, &at("resign_wait")) {
                Some(d) if d > MAX_RESIGN_WAIT => {
                    self.err(
                        text.span(),
                        at("resign_wait"),
                        format!("{:?} is too long; accepted \"0s\" (remove the VIPs at once) up to \"60s\"", text.get_ref()),
                    );
                    DEFAULT_RESIGN_WAIT
                }
                Some(d) => d,
                None => DEFAULT_RESIGN_WAIT,
            },
        };

        let mut track: Vec<TrackConfig> = Vec::new();
        let no_track = Vec::new();
        let raw_track = r.track.as_ref().unwrap_or(&no_track);
        for t in raw_track {
            let tr = t.get_ref();
            let check = tr.check.get_ref();
            if !check_names.iter().any(|c| c == check) {
                let known = if check_names.is_empty() {
                    "no [[check]] is defined".to_owned()
                } else {
                    format!("defined checks: {}", check_names.join(", "))
                };
                self.err(
                    tr.check.span(),
                    at("track"),
                    format!("no [[check]] named {check:?}; {known}"),
                );
                continue;
            }
            if track.iter().any(|x| &x.check == check) {
                self.err(
                    tr.check.span(),
                    at("track"),
                    format!("check {check:?} is tracked twice; list each check once"),
                );
                continue;
            }
            let weight = match &tr.weight {
                Some(w) => self
                    .ranged(w, &at("track weight"), -MAX_WEIGHT, MAX_WEIGHT, &format!(
                        "accepted -{MAX_WEIGHT}..={MAX_WEIGHT} (0 = a failing check puts the instance in FAULT)"
                    ))
                    .unwrap_or(0) as i32,
                None => checks
                    .iter()
                    .find(|c| &c.name == check)
                    .map(|c| c.weight)
                    .unwrap_or(0),
            };
            track.push(TrackConfig {
                check: check.clone(),
                weight,
            });
        }
        if priority == 255 && !raw_track.is_empty() {
            let span = r
                .priority
                .as_ref()
                .map(|p| p.span())
                .unwrap_or(planned.span.clone());
            self.err(
                span,
                at("priority"),
                "255 (address owner) cannot be combined with track: an owner's priority never changes (RFC 9568 section 6.1); use 254 or less",
            );
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some((
            InstanceConfig {
                name,
                vrid,
                vrid_source,
                vips,
                family,
                interface,
                priority,
                advert_interval,
                version,
                auth,
                checksum,
                preempt,
                unicast_source,
                peers,
                check_source,
                accept_from,
                ttl,
                announce_count,
                announce_repeat_after,
                announce_refresh,
                resign_wait,
                track,
                role_keys: planned.role_keys.clone(),
            },
            Placed {
                name_span: r.name.span(),
                vrid_span,
                vip_spans,
            },
        ))
    }

    /// `check_source` and `accept_from`: which senders may take part in the election.
    ///
    /// Default: checked whenever there is a list to check against (unicast peers or
    /// `accept_from`), except on a role instance that hears the bootstrap without listing it
    /// (a master's API instance) while `accept_from` is empty: checking there would make the
    /// masters ignore the bootstrap and take the API VIP beside it.
    fn source_check(
        &mut self,
        planned: &Planned,
        peers: &[IpAddr],
        unicast_source: Option<IpAddr>,
        vips: &[IpAddr],
        family: Family,
        at: &dyn Fn(&str) -> String,
    ) -> (bool, Vec<IpAddr>) {
        let r = &planned.raw;
        let mut accept_from: Vec<IpAddr> = Vec::new();
        for text in r.accept_from.iter().flat_map(|l| l.get_ref()) {
            let Some(addr) = self.address(text, &at("accept_from")) else {
                continue;
            };
            let why = if !vips.is_empty() && Family::of(addr) != family {
                Some(format!(
                    "{addr} is {}, the VIPs are {family}; adverts of this instance come from {family} addresses",
                    Family::of(addr)
                ))
            } else if Some(addr) == unicast_source {
                Some(format!(
                    "{addr} is this node's own unicast_source; list other nodes"
                ))
            } else if vips.contains(&addr) {
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
                Some(why) => self.err(text.span(), at("accept_from"), why),
                None => accept_from.push(addr),
            }
        }
        let have_list = !peers.is_empty() || !accept_from.is_empty();
        let default = have_list && !(planned.hears_bootstrap && accept_from.is_empty());
        let check = match &r.check_source {
            Some(written) if *written.get_ref() && !have_list => {
                self.err(
                    written.span(),
                    at("check_source"),
                    "true needs a list of senders to check against: set unicast_peers (and accept_from for senders that are not peers, such as the bootstrap)",
                );
                false
            }
            Some(written) => *written.get_ref(),
            None => default,
        };
        (check, accept_from)
    }

    fn across_instances(&mut self, instances: &[InstanceConfig], placed: &[Placed]) {
        for (j, (b, pb)) in instances.iter().zip(placed).enumerate() {
            for (a, pa) in instances[..j].iter().zip(placed) {
                let key = |k: &str| format!("instance {:?}: {k}", b.name);
                if a.name == b.name {
                    let line = self.line_of(&pa.name_span);
                    self.err(
                        pb.name_span.clone(),
                        key("name"),
                        format!(
                            "defined twice (first at line {line}); instance names must be unique"
                        ),
                    );
                    continue;
                }
                for (vip, span) in &pb.vip_spans {
                    if a.vips.contains(vip) {
                        self.err(
                            span.clone(),
                            key("vips"),
                            format!("{vip} is also a VIP of instance {:?}; a VIP belongs to one instance", a.name),
                        );
                    }
                }
                let same_link = match (&a.interface, &b.interface) {
                    (Some(x), Some(y)) => x == y,
                    _ => true,
                };
                if a.vrid == b.vrid && a.family == b.family && same_link {
                    let where_ = match &b.interface {
                        Some(i) if a.interface.is_some() => format!("on interface {i}"),
                        _ => "on a possibly shared interface (one of them is detected at start)"
                            .to_owned(),
                    };
                    self.err(
                        pb.vrid_span.clone(),
                        key("vrid"),
                        format!(
                            "VRID {} is also used by instance {:?} for {} {where_}; set a different vrid, or distinct interfaces on both",
                            b.vrid, a.name, b.family
                        ),
                    );
                }
            }
        }
    }

    fn dns(
        &mut self,
        raw: &S<RawDns>,
        cluster_name: &str,
        base_domain: Option<&str>,
        defined: &[String],
        instances: &[InstanceConfig],
        top_level: (Option<&[IpAddr]>, Option<&[IpAddr]>),
    ) -> Option<DnsConfig> {
        let errors_before = self.errors.len();
        let r: &RawDns = raw.get_ref();
        let cluster_domain = match base_domain {
            Some(b) => format!("{cluster_name}.{b}"),
            None => {
                self.err(
                    raw.span(),
                    "dns",
                    "base_domain is not set; the cluster DNS serves <cluster_name>.<base_domain>: add base_domain = \"example.com\" at the top of the file",
                );
                String::new()
            }
        };

        let listen = match &r.listen {
            None => DEFAULT_DNS_LISTEN
                .iter()
                .map(|a| parse_default(a))
                .collect(),
            Some(list) => {
                if list.get_ref().is_empty() {
                    self.err(list.span(), "dns: listen", "is empty; give at least one address:port, e.g. [\"0.0.0.0:53\"], or remove [dns] to turn DNS off");
                }
                let mut out: Vec<SocketAddr> = Vec::new();
                for l in list.get_ref() {
                    if let Some(a) = self.socket_addr(l, "dns: listen") {
                        if out.contains(&a) {
                            self.err(l.span(), "dns: listen", format!("{a} is listed twice"));
                        } else {
                            out.push(a);
                        }
                    }
                }
                out
            }
        };

        let resolv_conf = r
            .resolv_conf
            .as_ref()
            .and_then(|p| self.absolute_path(p, "dns: resolv_conf"))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RESOLV_CONF));

        let ttl = match &r.ttl {
            None => DEFAULT_DNS_TTL,
            Some(t) => self
                .ranged(t, "dns: ttl", 0, MAX_DNS_TTL, "accepted 0..=86400 seconds")
                .map(|n| n as u32)
                .unwrap_or(DEFAULT_DNS_TTL),
        };
        let max_udp_size = match &r.max_udp_size {
            None => DEFAULT_MAX_UDP_SIZE,
            Some(s) => self
                .ranged(
                    s,
                    "dns: max_udp_size",
                    512,
                    4096,
                    "accepted 512..=4096 bytes (RFC 1035 minimum to the usual EDNS maximum)",
                )
                .map(|n| n as u16)
                .unwrap_or(DEFAULT_MAX_UDP_SIZE),
        };

        let api_vips = self.dns_vips(
            raw,
            "api",
            "api_instances",
            "api_vips",
            &r.api_instances,
            &r.api_vips,
            defined,
            instances,
            top_level.0,
        );
        let ingress_vips = self.dns_vips(
            raw,
            "ingress",
            "ingress_instances",
            "ingress_vips",
            &r.ingress_instances,
            &r.ingress_vips,
            defined,
            instances,
            top_level.1,
        );

        let mut allow = Vec::new();
        if let Some(list) = &r.allow {
            for c in list.get_ref() {
                match c.get_ref().trim().parse::<ClientNet>() {
                    Ok(net) => allow.push(net),
                    Err(why) => self.err(c.span(), "dns: allow", why.to_string()),
                }
            }
        }

        let mut nodes: Vec<DnsNode> = Vec::new();
        for n in &r.node {
            let node = n.get_ref();
            let name = node.name.get_ref().trim().to_ascii_lowercase();
            let key = format!("dns.node {name:?}");
            if let Err(why) = dns_label(&name) {
                self.err(
                    node.name.span(),
                    format!("{key}: name"),
                    format!(
                        "{:?} {why}; give the node's short host name, e.g. \"master-0\"",
                        node.name.get_ref()
                    ),
                );
            } else if nodes.iter().any(|x| x.name == name) {
                self.err(
                    node.name.span(),
                    format!("{key}: name"),
                    "is listed twice; give each node once with all its addresses",
                );
            }
            if node.addresses.get_ref().is_empty() {
                self.err(
                    node.addresses.span(),
                    format!("{key}: addresses"),
                    "is empty; list the node's internal addresses",
                );
            }
            let mut addresses = Vec::new();
            for a in node.addresses.get_ref() {
                if let Some(addr) = self.address(a, &format!("{key}: addresses")) {
                    addresses.push(addr);
                }
            }
            nodes.push(DnsNode { name, addresses });
        }

        if self.errors.len() > errors_before {
            return None;
        }
        Some(DnsConfig {
            cluster_domain,
            listen,
            resolv_conf,
            ttl,
            max_udp_size,
            api_vips,
            ingress_vips,
            allow,
            nodes,
        })
    }

    /// The VIPs a DNS role (api / ingress) answers: explicit addresses, or those of instances.
    #[allow(clippy::too_many_arguments)]
    fn dns_vips(
        &mut self,
        raw: &S<RawDns>,
        role: &str,
        instances_key: &str,
        vips_key: &str,
        names: &Option<S<Vec<S<String>>>>,
        vips: &Option<S<Vec<S<String>>>>,
        defined: &[String],
        instances: &[InstanceConfig],
        top_level: Option<&[IpAddr]>,
    ) -> Vec<IpAddr> {
        if let (Some(n), Some(_)) = (names, vips) {
            self.err(
                n.span(),
                format!("dns: {instances_key}"),
                format!("is set together with {vips_key}; use {instances_key} on nodes that run the {role} instance, {vips_key} on nodes that do not"),
            );
            return Vec::new();
        }
        if let Some(list) = vips {
            let key = format!("dns: {vips_key}");
            if list.get_ref().is_empty() {
                self.err(
                    list.span(),
                    key.clone(),
                    format!("is empty; list the {role} VIP(s)"),
                );
            }
            let mut out: Vec<IpAddr> = Vec::new();
            for v in list.get_ref() {
                if let Some(addr) = self.vip(v, &key) {
                    if out.contains(&addr) {
                        self.err(v.span(), key.clone(), format!("{addr} is listed twice"));
                    } else {
                        out.push(addr);
                    }
                }
            }
            return out;
        }
        // The top-level `api_vips` / `ingress_vips` answer when [dns] names no instances: they
        // are what a worker or the bootstrap knows of the VIPs it does not hold.
        if names.is_none() {
            if let Some(top) = top_level {
                return top.to_vec();
            }
        }
        let defined: Vec<&str> = defined.iter().map(String::as_str).collect();
        let defined_text = if defined.is_empty() {
            "no [[instance]] is defined".to_owned()
        } else {
            format!("defined instances: {}", defined.join(", "))
        };
        let mut out = Vec::new();
        match names {
            Some(list) => {
                let key = format!("dns: {instances_key}");
                if list.get_ref().is_empty() {
                    self.err(list.span(), key.clone(), format!("is empty; name the instance(s) holding the {role} VIP, or use {vips_key}"));
                }
                for n in list.get_ref() {
                    let name = n.get_ref();
                    if !defined.contains(&name.as_str()) {
                        self.err(
                            n.span(),
                            key.clone(),
                            format!("no [[instance]] named {name:?}; {defined_text}"),
                        );
                    } else if let Some(i) = instances.iter().find(|i| &i.name == name) {
                        out.extend(i.vips.iter().copied());
                    }
                }
            }
            None => {
                if !defined.contains(&role) {
                    self.err(
                        raw.span(),
                        "dns",
                        format!("the {role} VIPs are unknown: there is no [[instance]] named {role:?} ({defined_text}); set {instances_key} to the instance(s) holding them, or {vips_key} = [...] on a node that does not run that instance"),
                    );
                } else if let Some(i) = instances.iter().find(|i| i.name == role) {
                    out.extend(i.vips.iter().copied());
                }
            }
        }
        out
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// A readable key path (`instance[1].priority`) for an error the TOML deserializer located only by
/// offset: the last table header before it and the key on (or before) its line.
fn key_path_at(text: &str, offset: usize) -> String {
    let mut table = String::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut key: Option<String> = None;
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("[[") {
            let name = rest.split("]]").next().unwrap_or("").trim().to_owned();
            let n = counts.entry(name.clone()).or_insert(0);
            *n += 1;
            table = format!("{name}[{}]", *n - 1);
            key = None;
        } else if let Some(rest) = trimmed.strip_prefix('[') {
            table = rest.split(']').next().unwrap_or("").trim().to_owned();
            key = None;
        } else if !trimmed.starts_with('#') {
            if let Some((k, _)) = trimmed.split_once('=') {
                let k = k.trim();
                let bare = !k.is_empty()
                    && k.bytes().all(|b| {
                        b.is_ascii_alphanumeric()
                            || b == b'_'
                            || b == b'-'
                            || b == b'.'
                            || b == b'"'
                    });
                if bare {
                    key = Some(k.to_owned());
                }
            }
        }
        line_start += line.len();
        if offset < line_start {
            break;
        }
    }
    match (table.is_empty(), key) {
        (true, None) => "(top level)".to_owned(),
        (true, Some(k)) => k,
        (false, None) => table,
        (false, Some(k)) => format!("{table}.{k}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters_not_bytes() {
        assert_eq!(line_column("a = \"é\"\nb", 9), (2, 1));
        assert_eq!(line_column("é = 1", 3), (1, 3));
    }

    #[test]
    fn key_path_names_the_array_table_entry() {
        let text = "cluster_name = \"x\"\n[[instance]]\nname = \"a\"\n[[instance]]\nname = \"b\"\nprio = 1\n";
        let offset = text.find("prio").unwrap();
        assert_eq!(key_path_at(text, offset), "instance[1].prio");
    }

    #[test]
    fn key_path_at_top_level() {
        assert_eq!(key_path_at("cluster_name = 1\n", 15), "cluster_name");
    }
}
