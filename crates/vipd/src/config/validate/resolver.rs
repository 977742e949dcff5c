//! `[resolver]`: management of the node's resolv.conf (see crate::resolver).
//!
//! Kept apart from the rest of the validation: it only reads the already validated `[dns]` and
//! instances, and adjusts one value of `[dns]` (the forwarder's `resolv_conf` default).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;

use super::super::raw::{RawDns, RawResolver, S};
use super::super::resolver::{
    OwnNameserver, ResolverConfig, DEFAULT_SOURCE, DEFAULT_TARGET, DEFAULT_UPSTREAM_COPY,
};
use super::super::{DnsConfig, Family, InstanceConfig};
use super::names::dns_name;
use super::Validator;

/// resolv.conf has no syntax for a port: the node's libc always asks port 53.
const DNS_PORT: u16 = 53;

/// The files of `[resolver]`; `None` where the written path was refused.
struct Files {
    target: Option<PathBuf>,
    source: Option<PathBuf>,
    upstream_copy: Option<PathBuf>,
}

impl Validator<'_> {
    /// Validates `[resolver]`. With `manage = true` it also makes `[dns] resolv_conf` default
    /// to the upstream file and refuses a forwarder that would read vipd's own output.
    pub(super) fn resolver(
        &mut self,
        raw: &S<RawResolver>,
        raw_dns: Option<&S<RawDns>>,
        dns: Option<&mut DnsConfig>,
        instances: &[InstanceConfig],
    ) -> Option<ResolverConfig> {
        let errors_before = self.errors.len();
        let r = raw.get_ref();
        let files = self.resolver_files(r);
        let search = r.search.as_ref().map(|list| self.resolver_search(list));
        self.upstream_copy_apart(raw, &files);
        let explicit = r
            .nameserver
            .as_ref()
            .and_then(|n| self.explicit_nameserver(n));
        if !r.manage.unwrap_or(false) {
            // Still validated above so a typo is reported before someone turns it on.
            return None;
        }
        let Some(dns) = dns else {
            if raw_dns.is_none() {
                self.err(
                    raw.span(),
                    "resolver: manage",
                    "is true but there is no [dns] table: resolv.conf would point the node at a DNS server vipd does not run; add [dns] or set manage = false",
                );
            }
            return None;
        };
        let nameserver = self.own_nameserver(raw, explicit, raw_dns, dns, instances)?;
        self.forwarder_upstream(raw_dns, dns, &files);
        if self.errors.len() > errors_before {
            return None;
        }
        Some(ResolverConfig {
            target: files.target?,
            source: files.source?,
            upstream_copy: files.upstream_copy?,
            nameserver,
            search,
            cluster_domain: dns.cluster_domain.clone(),
        })
    }

    /// `target`, `source` and `upstream_copy`: absolute paths.
    fn resolver_files(&mut self, r: &RawResolver) -> Files {
        let mut path = |text: &Option<S<String>>, key: &str, default: &str| match text {
            Some(t) => self.absolute_path(t, &format!("resolver: {key}")),
            None => Some(PathBuf::from(default)),
        };
        Files {
            target: path(&r.target, "target", DEFAULT_TARGET),
            source: path(&r.source, "source", DEFAULT_SOURCE),
            upstream_copy: path(&r.upstream_copy, "upstream_copy", DEFAULT_UPSTREAM_COPY),
        }
    }

    /// `search`: domain names, as served (lower case, no trailing dot).
    fn resolver_search(&mut self, list: &S<Vec<S<String>>>) -> Vec<String> {
        let mut out = Vec::new();
        for d in list.get_ref() {
            let name = d
                .get_ref()
                .trim()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            match dns_name(&name) {
                Ok(()) => out.push(name),
                Err(why) => self.err(
                    d.span(),
                    "resolver: search",
                    format!(
                        "{:?} {why}; list domains such as \"ostest.example.com\"",
                        d.get_ref()
                    ),
                ),
            }
        }
        out
    }

    /// The copy of the upstream file is not the file vipd rewrites.
    fn upstream_copy_apart(&mut self, raw: &S<RawResolver>, files: &Files) {
        if let (Some(t), Some(c)) = (&files.target, &files.upstream_copy) {
            if t == c {
                let span = raw
                    .get_ref()
                    .upstream_copy
                    .as_ref()
                    .map_or(raw.span(), |s| s.span());
                self.err(
                    span,
                    "resolver: upstream_copy",
                    format!("is the target {}; give a file of vipd's own, e.g. {DEFAULT_UPSTREAM_COPY:?}", t.display()),
                );
            }
        }
    }

    /// A written `nameserver`: an address this node's DNS could answer on.
    fn explicit_nameserver(&mut self, n: &S<String>) -> Option<(IpAddr, Range<usize>)> {
        let addr = self.address(n, "resolver: nameserver")?;
        if addr.is_unspecified() || addr.is_multicast() {
            self.err(
                n.span(),
                "resolver: nameserver",
                format!("{addr} cannot be a name server address; give the address this node's DNS answers on, e.g. \"192.0.2.11\""),
            );
            return None;
        }
        Some((addr, n.span()))
    }

    /// The address resolv.conf names for this node: the written one, which `[dns] listen`
    /// must serve, else [`default_nameserver`].
    fn own_nameserver(
        &mut self,
        raw: &S<RawResolver>,
        explicit: Option<(IpAddr, Range<usize>)>,
        raw_dns: Option<&S<RawDns>>,
        dns: &DnsConfig,
        instances: &[InstanceConfig],
    ) -> Option<OwnNameserver> {
        let nameserver = match explicit {
            Some((addr, span)) => {
                if !serves(&dns.listen, addr) {
                    self.err(
                        span,
                        "resolver: nameserver",
                        format!(
                            "{addr} is not served by [dns] listen ({}); resolv.conf can only name port {DNS_PORT}: add \"{}\" or the wildcard of its family to listen",
                            list(&dns.listen),
                            SocketAddr::new(addr, DNS_PORT)
                        ),
                    );
                }
                Some(OwnNameserver::Address(addr))
            }
            None => default_nameserver(raw_dns, &dns.listen, instances),
        };
        if nameserver.is_none() {
            self.err(
                raw.span(),
                "resolver: nameserver",
                format!(
                    "cannot tell which address this node's DNS answers on: no IPv4 api instance with [dns] listen on 0.0.0.0:{DNS_PORT}, and no specific address on port {DNS_PORT} in listen ({}); set nameserver = \"<this node's address>\"",
                    list(&dns.listen)
                ),
            );
        }
        nameserver
    }

    /// The forwarder must read the real upstreams, never the file vipd writes: it would
    /// forward every outside query to itself. Sets `[dns] resolv_conf` when not written.
    fn forwarder_upstream(
        &mut self,
        raw_dns: Option<&S<RawDns>>,
        dns: &mut DnsConfig,
        files: &Files,
    ) {
        let (Some(target), Some(source), Some(copy)) =
            (&files.target, &files.source, &files.upstream_copy)
        else {
            return;
        };
        let upstream_file = if source == target { copy } else { source };
        let explicit_resolv = raw_dns.and_then(|d| d.get_ref().resolv_conf.as_ref());
        match explicit_resolv {
            Some(text) if dns.resolv_conf == *target => self.err(
                text.span(),
                "dns: resolv_conf",
                format!(
                    "is {}, the file [resolver] rewrites to list this node first: the forwarder would send queries to itself; remove resolv_conf (with [resolver] it defaults to {})",
                    target.display(),
                    upstream_file.display()
                ),
            ),
            Some(_) => {}
            None => dns.resolv_conf = upstream_file.clone(),
        }
    }
}

/// The address of the api instance (`[dns] api_instances`' first, else the instance named
/// "api"), else the first specific `[dns] listen` address on port 53.
fn default_nameserver(
    raw_dns: Option<&S<RawDns>>,
    listen: &[SocketAddr],
    instances: &[InstanceConfig],
) -> Option<OwnNameserver> {
    let api_name = raw_dns
        .and_then(|d| d.get_ref().api_instances.as_ref())
        .and_then(|l| l.get_ref().first().map(|n| n.get_ref().clone()))
        .unwrap_or_else(|| "api".to_owned());
    if let Some(api) = instances.iter().find(|i| i.name == api_name) {
        match api.unicast_source {
            Some(addr) if serves(listen, addr) => return Some(OwnNameserver::Address(addr)),
            // Without unicast_source, IPv4 adverts leave from the interface's primary address,
            // known at start; IPv6 ones from a link-local address, useless in resolv.conf.
            None if api.family == Family::Ipv4 && listens_on_any_ipv4(listen) => {
                return Some(OwnNameserver::InstanceAddress(api.name.clone()));
            }
            _ => {}
        }
    }
    listen
        .iter()
        .find(|l| l.port() == DNS_PORT && !l.ip().is_unspecified())
        .map(|l| OwnNameserver::Address(l.ip()))
}

/// True when a `[dns] listen` entry on port 53 answers queries sent to `addr`.
fn serves(listen: &[SocketAddr], addr: IpAddr) -> bool {
    listen.iter().any(|l| {
        l.port() == DNS_PORT
            && (l.ip() == addr
                || (l.ip().is_unspecified() && Family::of(l.ip()) == Family::of(addr)))
    })
}

fn listens_on_any_ipv4(listen: &[SocketAddr]) -> bool {
    listen
        .iter()
        .any(|l| l.port() == DNS_PORT && l.ip() == IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

fn list(listen: &[SocketAddr]) -> String {
    listen
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::super::testing::validator;
    use super::*;

    fn messages(v: &Validator) -> Vec<String> {
        v.errors
            .iter()
            .map(|d| format!("{}:{}: {}: {}", d.line, d.column, d.key, d.message))
            .collect()
    }

    #[test]
    fn search_domains_are_served_lower_case_and_checked() {
        let text = "search = [\"OSTest.Example.com.\", \"bad..domain\"]\n";
        let raw: RawResolver = toml::from_str(text).expect("resolver");
        let mut v = validator(text);
        let search = v.resolver_search(raw.search.as_ref().unwrap());
        assert_eq!(search, ["ostest.example.com"]);
        assert_eq!(
            messages(&v),
            ["1:34: resolver: search: \"bad..domain\" is not a domain name: it is empty; list domains such as \"ostest.example.com\""]
        );
    }

    #[test]
    fn a_written_nameserver_is_an_address_a_node_answers_on() {
        let text = "nameserver = \"0.0.0.0\"\n";
        let raw: RawResolver = toml::from_str(text).expect("resolver");
        let mut v = validator(text);
        assert_eq!(
            v.explicit_nameserver(raw.nameserver.as_ref().unwrap()),
            None
        );
        assert_eq!(
            messages(&v),
            ["1:14: resolver: nameserver: 0.0.0.0 cannot be a name server address; give the address this node's DNS answers on, e.g. \"192.0.2.11\""]
        );
        let ok = S::new(0..0, "192.0.2.11".to_owned());
        assert_eq!(
            v.explicit_nameserver(&ok),
            Some(("192.0.2.11".parse().unwrap(), 0..0))
        );
    }
}
