//! Raw file -> [`Config`]: every check, every default, every error located to the character.
//!
//! Validation keeps going after an error so that one run of `vipd check-config` lists every
//! problem of a file, not only the first.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{RawConfig, RawDns, S};
use super::{
    ClientNet, Config, ConfigError, ControlConfig, Diagnostic, DnsConfig, DnsNode, HttpConfig,
    InstanceConfig,
};
use crate::health::CheckSpec;

mod across;
mod handoff;
mod instance;
mod names;
mod resolver;
mod roles;
mod values;

use names::{dns_label, dns_name};
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

        let instances = self.instances(
            &planned,
            &cluster_name,
            &instance::Checks {
                specs: &checks,
                names: &check_names,
            },
        );

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

/// A validator over a test's text, for the unit tests of each step.
#[cfg(test)]
mod testing {
    use std::path::Path;

    use super::Validator;

    pub(super) fn validator(text: &str) -> Validator<'_> {
        Validator::new(text, Path::new("/etc/vipd/vipd.toml"))
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
