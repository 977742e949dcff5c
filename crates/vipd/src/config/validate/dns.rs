//! `[dns]`: the cluster DNS server (listen addresses, forwarder, limits, the api / ingress
//! VIPs it answers, allowed clients and node records).

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;

use vipd_dns::zone::Records;

use super::super::raw::{RawDns, RawDnsNode, S};
use super::super::{ClientNet, DnsConfig, DnsNode, InstanceConfig};
use super::identity::Identity;
use super::names::dns_label;
use super::roles::Planned;
use super::values::parse_default;
use super::{
    Validator, DEFAULT_DNS_LISTEN, DEFAULT_DNS_TTL, DEFAULT_MAX_UDP_SIZE, DEFAULT_RESOLV_CONF,
    MAX_DNS_TTL,
};

/// What `[dns]` is validated against: the instances (those defined, those valid) and the
/// top-level VIPs.
struct Known<'a> {
    /// Every `[[instance]]` name, valid or not (an invalid one is reported once, not here).
    defined: Vec<&'a str>,
    instances: &'a [InstanceConfig],
}

impl Known<'_> {
    fn defined_text(&self) -> String {
        if self.defined.is_empty() {
            "no [[instance]] is defined".to_owned()
        } else {
            format!("defined instances: {}", self.defined.join(", "))
        }
    }

    /// The VIPs of the valid instance `name` (none when it failed validation).
    fn vips_of(&self, name: &str) -> Vec<IpAddr> {
        self.instances
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.vips.clone())
            .unwrap_or_default()
    }
}

/// One role of VIPs the DNS answers for (`api.` / `*.apps.`): its keys and what was written.
struct VipRole<'a> {
    role: &'static str,
    instances_key: &'static str,
    vips_key: &'static str,
    names: &'a Option<S<Vec<S<String>>>>,
    vips: &'a Option<S<Vec<S<String>>>>,
    /// The top-level `api_vips` / `ingress_vips`.
    top_level: Option<Vec<IpAddr>>,
}

impl Validator<'_> {
    pub(super) fn dns(
        &mut self,
        raw: &S<RawDns>,
        identity: &Identity,
        base_domain: Option<&str>,
        planned: &[Planned],
        instances: &[InstanceConfig],
    ) -> Option<DnsConfig> {
        let errors_before = self.errors.len();
        let r: &RawDns = raw.get_ref();
        let cluster_name = &identity.cluster_name;
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
        let listen = self.dns_listen(&r.listen);
        let resolv_conf = r
            .resolv_conf
            .as_ref()
            .and_then(|p| self.absolute_path(p, "dns: resolv_conf"))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RESOLV_CONF));
        let (ttl, max_udp_size) = self.dns_limits(r);
        let known = Known {
            defined: planned
                .iter()
                .map(|p| p.raw.name.get_ref().as_str())
                .collect(),
            instances,
        };
        let records = self.dns_records(&r.records);
        let (api_vips, api_int_vips, ingress_vips) = match records {
            Records::Cluster => {
                let (api, ingress) = vip_roles(r, identity);
                let api_vips = self.dns_vips(raw, &api, &known);
                let ingress_vips = self.dns_vips(raw, &ingress, &known);
                let api_int_vips = match &r.api_int_vips {
                    Some(list) => self.dns_vip_list(&api_int_role(r), list),
                    None => api_vips.clone(),
                };
                (api_vips, api_int_vips, ingress_vips)
            }
            Records::Nodes => {
                self.dns_no_vips(r);
                (Vec::new(), Vec::new(), Vec::new())
            }
        };
        let ours: Vec<IpAddr> = instances
            .iter()
            .flat_map(|i| i.vips.iter())
            .chain(&api_vips)
            .chain(&api_int_vips)
            .chain(&ingress_vips)
            .copied()
            .collect();
        let upstreams = self.dns_upstreams(r, &listen, &ours);
        let allow = self.dns_allow(&r.allow);
        let nodes = self.dns_nodes(&r.node);
        if self.errors.len() > errors_before {
            return None;
        }
        Some(DnsConfig {
            cluster_domain,
            listen,
            resolv_conf,
            upstreams,
            force_tcp: r.force_tcp.as_ref().is_some_and(|b| *b.get_ref()),
            records,
            ttl,
            max_udp_size,
            api_vips,
            api_int_vips,
            ingress_vips,
            allow,
            nodes,
            batch_scheduling: r.batch_scheduling.as_ref().is_none_or(|b| *b.get_ref()),
        })
    }

    /// `records`: `"cluster"` (default) or `"nodes"`.
    fn dns_records(&mut self, records: &Option<S<String>>) -> Records {
        let Some(text) = records else {
            return Records::Cluster;
        };
        match text.get_ref().trim() {
            "cluster" => Records::Cluster,
            "nodes" => Records::Nodes,
            other => {
                self.err(
                    text.span(),
                    "dns: records",
                    format!("{other:?} is not a record set; accepted \"cluster\" (api, api-int, *.apps and the nodes; OpenShift's dnsRecordsType Internal) or \"nodes\" (the nodes only, everything else forwarded; dnsRecordsType External)"),
                );
                Records::Cluster
            }
        }
    }

    /// With `records = "nodes"` no VIP is answered: a key naming one would do nothing.
    fn dns_no_vips(&mut self, r: &RawDns) {
        let keys = [
            ("api_vips", r.api_vips.as_ref().map(|l| l.span())),
            ("api_int_vips", r.api_int_vips.as_ref().map(|l| l.span())),
            ("ingress_vips", r.ingress_vips.as_ref().map(|l| l.span())),
            ("api_instances", r.api_instances.as_ref().map(|l| l.span())),
            (
                "ingress_instances",
                r.ingress_instances.as_ref().map(|l| l.span()),
            ),
        ];
        for (key, span) in keys {
            if let Some(span) = span {
                self.err(
                    span,
                    format!("dns: {key}"),
                    "is set with records = \"nodes\", which answers no api, api-int or *.apps name (they are forwarded); remove it, or use records = \"cluster\"",
                );
            }
        }
    }

    /// `upstreams`: a static list of name servers, tried in order (port 53 unless given).
    /// Not together with `resolv_conf`; never this server itself, which would loop.
    fn dns_upstreams(
        &mut self,
        r: &RawDns,
        listen: &[SocketAddr],
        ours: &[IpAddr],
    ) -> Vec<SocketAddr> {
        let Some(list) = &r.upstreams else {
            return Vec::new();
        };
        let key = "dns: upstreams";
        if r.resolv_conf.is_some() {
            self.err(
                list.span(),
                key,
                "is set together with resolv_conf; the forwarder takes one source: this static list, or the name servers of resolv_conf (watched live)",
            );
        }
        if list.get_ref().is_empty() {
            self.err(
                list.span(),
                key,
                "is empty; list at least one name server, e.g. [\"192.0.2.53\"], or remove upstreams to read them from resolv_conf",
            );
        }
        let mut out: Vec<SocketAddr> = Vec::new();
        for text in list.get_ref() {
            let Some(addr) = self.upstream(text, key, listen, ours) else {
                continue;
            };
            if out.contains(&addr) {
                self.err(text.span(), key, format!("{addr} is listed twice"));
            } else {
                out.push(addr);
            }
        }
        out
    }

    /// One `upstreams` entry: `ip`, `ip:port` or `[ipv6]:port`.
    fn upstream(
        &mut self,
        text: &S<String>,
        key: &str,
        listen: &[SocketAddr],
        ours: &[IpAddr],
    ) -> Option<SocketAddr> {
        let t = text.get_ref().trim();
        let Some(addr) = parse_upstream(t) else {
            self.err(
                text.span(),
                key,
                format!("{t:?} is not a name server address; write an address, optionally with a port: \"192.0.2.53\", \"198.51.100.53:5353\", \"2001:db8::53\" or \"[2001:db8::53]:5353\""),
            );
            return None;
        };
        let ip = addr.ip();
        let problem = if addr.port() == 0 {
            Some("port 0 is not a port a server listens on".to_owned())
        } else if ip.is_unspecified()
            || ip.is_multicast()
            || matches!(ip, IpAddr::V4(a) if a.is_broadcast())
        {
            Some(format!("{ip} is not a server's address"))
        } else if is_this_server(addr, listen, ours) {
            Some(format!(
                "{addr} is this DNS server (listen {}): forwarded queries would come back here",
                list(listen)
            ))
        } else {
            None
        };
        match problem {
            Some(why) => {
                self.err(
                    text.span(),
                    key,
                    format!("{why}; give the site's name servers"),
                );
                None
            }
            None => Some(addr),
        }
    }

    /// `listen`: address:port pairs, no duplicates (default: port 53 on both wildcards).
    fn dns_listen(&mut self, listen: &Option<S<Vec<S<String>>>>) -> Vec<SocketAddr> {
        let Some(list) = listen else {
            return DEFAULT_DNS_LISTEN
                .iter()
                .map(|a| parse_default(a))
                .collect();
        };
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

    /// `ttl` of the answers and `max_udp_size` of UDP replies.
    fn dns_limits(&mut self, r: &RawDns) -> (u32, u16) {
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
        (ttl, max_udp_size)
    }

    /// The VIPs a DNS role (api / ingress) answers: explicit addresses, or those of instances.
    fn dns_vips(&mut self, raw: &S<RawDns>, v: &VipRole, known: &Known) -> Vec<IpAddr> {
        let (role, instances_key, vips_key) = (v.role, v.instances_key, v.vips_key);
        if let (Some(n), Some(_)) = (v.names, v.vips) {
            self.err(
                n.span(),
                format!("dns: {instances_key}"),
                format!("is set together with {vips_key}; use {instances_key} on nodes that run the {role} instance, {vips_key} on nodes that do not"),
            );
            return Vec::new();
        }
        if let Some(list) = v.vips {
            return self.dns_vip_list(v, list);
        }
        // The top-level `api_vips` / `ingress_vips` answer when [dns] names no instances: they
        // are what a worker or the bootstrap knows of the VIPs it does not hold.
        if v.names.is_none() {
            if let Some(top) = &v.top_level {
                return top.clone();
            }
        }
        let Some(list) = v.names else {
            if !known.defined.contains(&role) {
                self.err(
                    raw.span(),
                    "dns",
                    format!("the {role} VIPs are unknown: there is no [[instance]] named {role:?} ({}); set {instances_key} to the instance(s) holding them, or {vips_key} = [...] on a node that does not run that instance", known.defined_text()),
                );
            }
            return known.vips_of(role);
        };
        let key = format!("dns: {instances_key}");
        if list.get_ref().is_empty() {
            self.err(
                list.span(),
                key.clone(),
                format!("is empty; name the instance(s) holding the {role} VIP, or use {vips_key}"),
            );
        }
        let mut out = Vec::new();
        for n in list.get_ref() {
            let name = n.get_ref();
            if !known.defined.contains(&name.as_str()) {
                self.err(
                    n.span(),
                    key.clone(),
                    format!("no [[instance]] named {name:?}; {}", known.defined_text()),
                );
            } else {
                out.extend(known.vips_of(name));
            }
        }
        out
    }

    /// `api_vips` / `ingress_vips` of `[dns]`: VIPs written for a node that does not hold them.
    fn dns_vip_list(&mut self, v: &VipRole, list: &S<Vec<S<String>>>) -> Vec<IpAddr> {
        let key = format!("dns: {}", v.vips_key);
        if list.get_ref().is_empty() {
            self.err(
                list.span(),
                key.clone(),
                format!("is empty; list the {} VIP(s)", v.role),
            );
        }
        let mut out: Vec<IpAddr> = Vec::new();
        for text in list.get_ref() {
            if let Some(addr) = self.vip(text, &key) {
                if out.contains(&addr) {
                    self.err(text.span(), key.clone(), format!("{addr} is listed twice"));
                } else {
                    out.push(addr);
                }
            }
        }
        out
    }

    /// `allow`: client networks (`vipd_dns::server::ClientNet`).
    fn dns_allow(&mut self, allow: &Option<S<Vec<S<String>>>>) -> Vec<ClientNet> {
        let mut out = Vec::new();
        for c in allow.iter().flat_map(|l| l.get_ref()) {
            match c.get_ref().trim().parse::<ClientNet>() {
                Ok(net) => out.push(net),
                Err(why) => self.err(c.span(), "dns: allow", why.to_string()),
            }
        }
        out
    }

    /// `[[dns.node]]`: each node's short host name (one DNS label) and its addresses.
    fn dns_nodes(&mut self, raw: &[S<RawDnsNode>]) -> Vec<DnsNode> {
        let mut nodes: Vec<DnsNode> = Vec::new();
        for n in raw {
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
        nodes
    }
}

/// `api_int_vips`: written addresses only (no instances, no top-level key).
fn api_int_role(r: &RawDns) -> VipRole<'_> {
    VipRole {
        role: "api-int",
        instances_key: "api_instances",
        vips_key: "api_int_vips",
        names: &None,
        vips: &r.api_int_vips,
        top_level: None,
    }
}

/// `ip` (port 53), `ip:port`, `[ipv6]:port`.
fn parse_upstream(text: &str) -> Option<SocketAddr> {
    match text.parse::<IpAddr>() {
        Ok(ip) => Some(SocketAddr::new(ip, vipd_dns::forward::DNS_PORT)),
        Err(_) => text.parse::<SocketAddr>().ok(),
    }
}

/// True when `upstream` reaches this server: one of its listen addresses, or, on the port of
/// a wildcard listen address of its family, loopback or one of the VIPs this node may hold.
fn is_this_server(upstream: SocketAddr, listen: &[SocketAddr], ours: &[IpAddr]) -> bool {
    listen.iter().any(|l| {
        l.port() == upstream.port()
            && (l.ip() == upstream.ip()
                || (l.ip().is_unspecified()
                    && l.is_ipv4() == upstream.is_ipv4()
                    && (upstream.ip().is_loopback() || ours.contains(&upstream.ip()))))
    })
}

fn list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The api and ingress roles of `[dns]`, with the top-level VIPs of each.
fn vip_roles<'a>(r: &'a RawDns, identity: &Identity) -> (VipRole<'a>, VipRole<'a>) {
    let top_level = |v: &Option<Vec<(IpAddr, Range<usize>)>>| {
        v.as_ref()
            .map(|l| l.iter().map(|(a, _)| *a).collect::<Vec<IpAddr>>())
    };
    let api = VipRole {
        role: "api",
        instances_key: "api_instances",
        vips_key: "api_vips",
        names: &r.api_instances,
        vips: &r.api_vips,
        top_level: top_level(&identity.api_vips),
    };
    let ingress = VipRole {
        role: "ingress",
        instances_key: "ingress_instances",
        vips_key: "ingress_vips",
        names: &r.ingress_instances,
        vips: &r.ingress_vips,
        top_level: top_level(&identity.ingress_vips),
    };
    (api, ingress)
}

#[cfg(test)]
mod tests {
    use super::super::super::raw::RawConfig;
    use super::super::testing::validator;
    use super::*;

    fn identity() -> Identity {
        Identity {
            cluster_name: "ostest".to_owned(),
            cluster_name_span: 0..0,
            base_domain: None,
            api_vips: None,
            ingress_vips: None,
            source: None,
        }
    }

    /// `[dns]` of `text` validated with no instances; the config or the located errors.
    fn dns(text: &str, id: &Identity) -> Result<DnsConfig, Vec<String>> {
        let raw: RawConfig = toml::from_str(text).expect("config");
        let mut v = validator(text);
        let dns = v.dns(raw.dns.as_ref().unwrap(), id, Some("example.com"), &[], &[]);
        match dns {
            Some(d) if v.errors.is_empty() => Ok(d),
            _ => Err(v
                .errors
                .iter()
                .map(|d| format!("{}:{}: {}: {}", d.line, d.column, d.key, d.message))
                .collect()),
        }
    }

    const VIPS: &str = "api_vips = [\"192.0.2.5\"]\ningress_vips = [\"192.0.2.10\"]\n";

    #[test]
    fn defaults_and_the_cluster_domain() {
        let d = dns(&format!("[dns]\n{VIPS}"), &identity()).unwrap();
        assert_eq!(d.cluster_domain, "ostest.example.com");
        assert_eq!(d.listen.len(), 2);
        assert_eq!(d.ttl, DEFAULT_DNS_TTL);
        assert_eq!(d.max_udp_size, DEFAULT_MAX_UDP_SIZE);
        assert_eq!(d.resolv_conf, PathBuf::from(DEFAULT_RESOLV_CONF));
    }

    #[test]
    fn listen_and_ttl_are_checked() {
        let errors = dns(
            &format!("[dns]\nlisten = []\nttl = 86401\n{VIPS}"),
            &identity(),
        );
        assert_eq!(
            errors.unwrap_err(),
            [
                "2:10: dns: listen: is empty; give at least one address:port, e.g. [\"0.0.0.0:53\"], or remove [dns] to turn DNS off",
                "3:7: dns: ttl: 86401 is out of range; accepted 0..=86400 seconds",
            ]
        );
    }

    #[test]
    fn top_level_vips_answer_when_no_instance_is_named() {
        let mut id = identity();
        id.api_vips = Some(vec![("192.0.2.5".parse().unwrap(), 0..0)]);
        id.ingress_vips = Some(vec![("192.0.2.10".parse().unwrap(), 0..0)]);
        let d = dns("[dns]\n", &id).unwrap();
        assert_eq!(d.api_vips, ["192.0.2.5".parse::<IpAddr>().unwrap()]);
        assert_eq!(d.ingress_vips, ["192.0.2.10".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn without_instances_or_vips_the_roles_are_unknown() {
        let errors = dns("[dns]\n", &identity()).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(
            errors[0],
            "1:1: dns: the api VIPs are unknown: there is no [[instance]] named \"api\" (no [[instance]] is defined); set api_instances to the instance(s) holding them, or api_vips = [...] on a node that does not run that instance"
        );
    }

    #[test]
    fn node_names_are_lower_cased_and_given_once_with_addresses() {
        let text = format!(
            "[dns]\n{VIPS}[[dns.node]]\nname = \"Master-0\"\naddresses = [\"192.0.2.11\"]\n[[dns.node]]\nname = \"master-0\"\naddresses = []\n"
        );
        assert_eq!(
            dns(&text, &identity()).unwrap_err(),
            [
                "8:8: dns.node \"master-0\": name: is listed twice; give each node once with all its addresses",
                "9:13: dns.node \"master-0\": addresses: is empty; list the node's internal addresses",
            ]
        );
    }
}
