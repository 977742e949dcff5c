//! Corefile -> `[dns]` and `[http]`.
//!
//! The Corefiles OpenShift renders today (MCO templates: on-prem node and bootstrap,
//! cloud-platform-alt-dns node and bootstrap; docs/migration.md) are one server block for `.`
//! whose plugins map onto vipd's DNS keys:
//!
//! | Corefile | vipd |
//! |---|---|
//! | `errors`, `reload` | nothing to do: vipd logs its errors, `vipd reload` re-reads |
//! | `bufsize N` | `max_udp_size` |
//! | `health :18080` | `[http] listen` |
//! | `forward . IP...` (`policy sequential`, `force_tcp`) | `upstreams` (in order), `force_tcp` |
//! | `forward . /path/resolv.conf` | `resolv_conf` |
//! | `cache 30` | vipd's own cache, TTLs capped at 30 s; `ttl` of local answers |
//! | `template IN A/AAAA <cd>` answering `*.apps`, `api`, `api-int` | `ingress_vips`, `api_vips`, `api_int_vips` (when it differs from api) |
//! | `template` without `answer` (the other family) | nothing: vipd answers NODATA there anyway |
//! | `hosts { <ip> <short> <short>.<cd> }` | `[[dns.node]]` |
//! | `hosts` and no template (`dnsRecordsType: External`) | `records = "nodes"` |
//!
//! Anything else is a [`Note`] with its line: a warning where vipd behaves the same for the
//! cluster's names, a refusal where it would not.

use std::net::{IpAddr, SocketAddr};

use super::syntax::{parse, Parsed, Stmt};
use super::toml_out;
use super::{Note, Severity};

/// Where the static pod mounts the rendered upstream list; on the host the node's own
/// NetworkManager file holds the name servers it was rendered from.
const POD_RESOLV_CONF: &str = "/etc/coredns/resolv.conf";
const NODE_RESOLV_CONF: &str = "/var/run/NetworkManager/resolv.conf";
/// vipd's cap on the TTL of forwarded answers and on how long it caches them (vipd_dns).
const FORWARD_CACHE_CAP: u32 = 30;

/// The translated part of a Corefile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorefileImport {
    /// First label of the cluster domain, with its line.
    pub cluster_name: Option<(String, usize)>,
    /// The rest of the cluster domain, with its line.
    pub base_domain: Option<(String, usize)>,
    /// `[dns]` (with `[[dns.node]]`) and `[http]` tables.
    pub body: String,
    pub notes: Vec<Note>,
}

/// A value with the line it came from.
type Located = (String, usize);

/// What the server block's plugins say, gathered before the `[dns]` table is written.
#[derive(Default)]
struct Found {
    cluster_domain: Option<(String, usize)>,
    api_vips: Vec<(IpAddr, usize)>,
    api_int_vips: Vec<(IpAddr, usize)>,
    ingress_vips: Vec<(IpAddr, usize)>,
    /// (short name, addresses, line).
    nodes: Vec<(String, Vec<IpAddr>, usize)>,
    template_ttl: Option<(u32, usize)>,
    cache: Option<(u32, usize)>,
    /// Line of the first `template`, answering or not.
    template: Option<usize>,
    /// Line of the first `hosts` block.
    hosts: Option<usize>,
    /// `[dns]` lines written as the plugins are read (listen, forwarder, limits).
    dns: String,
    /// The `[http]` table, from `health`.
    http: String,
}

struct Notes(Vec<Note>);

impl Notes {
    fn warn(&mut self, line: usize, message: impl Into<String>) {
        self.0.push(Note {
            severity: Severity::Warning,
            line,
            message: message.into(),
        });
    }

    fn refuse(&mut self, line: usize, message: impl Into<String>) {
        self.0.push(Note {
            severity: Severity::Refused,
            line,
            message: message.into(),
        });
    }
}

pub fn translate_corefile(text: &str) -> CorefileImport {
    let mut notes = Notes(Vec::new());
    let parsed = parse(text, &['#']);
    let Some(main) = server_block(&mut notes, &parsed) else {
        notes.refuse(0, "no server block for \".\": nothing to translate");
        return CorefileImport {
            cluster_name: None,
            base_domain: None,
            body: String::new(),
            notes: notes.0,
        };
    };
    let mut found = Found {
        cluster_domain: cluster_domain(main),
        ..Found::default()
    };
    let cd = found.cluster_domain.as_ref().map(|(c, _)| c.clone());
    listen(main, &mut found.dns);
    for p in main.children() {
        plugin(&mut notes, p, cd.as_deref(), &mut found);
    }
    let mut dns = String::from("\n[dns]\n");
    dns.push_str(&found.dns);
    ttl(&found, &mut dns);
    records(&mut notes, &found, &mut dns);
    for (name, addrs, line) in &found.nodes {
        let addrs: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        dns.push_str("\n[[dns.node]]\n");
        dns.push_str(&toml_out::line(
            "name",
            &toml_out::string(name),
            &format!("line {line}: hosts"),
        ));
        dns.push_str(&format!("addresses = {}\n", toml_out::strings(&addrs)));
    }
    let (cluster_name, base_domain) = identity(&mut notes, &found);
    CorefileImport {
        cluster_name,
        base_domain,
        body: format!("{dns}{}", found.http),
        notes: notes.0,
    }
}

/// The one server block for `.`; every other top-level statement is refused.
fn server_block<'p>(notes: &mut Notes, parsed: &'p Parsed) -> Option<&'p Stmt> {
    for line in &parsed.stray_closes {
        notes.warn(*line, "'}' without a matching '{'; ignored");
    }
    if let Some(line) = parsed.unclosed {
        notes.refuse(
            line,
            "this '{' is never closed; the file is truncated or malformed",
        );
    }
    let mut main: Option<&Stmt> = None;
    for block in &parsed.stmts {
        let is_root = block.words.iter().any(|z| {
            z == "." || z.starts_with(".:") || z == "dns://." || z.starts_with("dns://.:")
        });
        if block.block.is_none() {
            notes.refuse(
                block.line,
                format!("{:?}: expected a server block `. {{ ... }}`", block.text()),
            );
        } else if is_root && main.is_none() {
            main = Some(block);
        } else {
            notes.refuse(
                block.line,
                format!("server block {:?}: vipd runs one server for \".\"; the names this block served would be forwarded instead", block.text()),
            );
        }
    }
    main
}

/// The cluster domain the hosts entries and templates are read against: the first template's
/// zone, else the domain of an `api` / `api-int` hosts entry, else that of a node entry
/// `<ip> <short> <short>.<cd>` (a Corefile with node records only).
fn cluster_domain(main: &Stmt) -> Option<(String, usize)> {
    let lower = |n: &str| n.trim_end_matches('.').to_ascii_lowercase();
    let template = main
        .children()
        .iter()
        .filter(|p| p.keyword() == "template")
        .find_map(|p| p.arg(3).map(|zone| (lower(zone), p.line)));
    if template.is_some() {
        return template;
    }
    let entries = || {
        main.children()
            .iter()
            .filter(|p| p.keyword() == "hosts")
            .flat_map(|p| p.children())
    };
    let api = entries().find_map(|e| {
        e.words.iter().skip(1).find_map(|name| {
            let n = lower(name);
            let cd = n
                .strip_prefix("api-int.")
                .or_else(|| n.strip_prefix("api."))?;
            Some((cd.to_owned(), e.line))
        })
    });
    api.or_else(|| {
        entries().find_map(|e| {
            let names: Vec<String> = e.words.iter().skip(1).map(|n| lower(n)).collect();
            names.iter().find_map(|n| {
                let (short, cd) = n.split_once('.')?;
                names
                    .iter()
                    .any(|m| m == short)
                    .then(|| (cd.to_owned(), e.line))
            })
        })
    })
}

/// `.:5353 { ... }`: the same port on both wildcards.
fn listen(main: &Stmt, dns: &mut String) {
    let port = main
        .words
        .iter()
        .find_map(|z| z.rsplit_once(':').map(|(_, p)| p.to_owned()))
        .filter(|p| p != "53");
    if let Some(p) = &port {
        dns.push_str(&toml_out::line(
            "listen",
            &toml_out::strings(&[format!("0.0.0.0:{p}"), format!("[::]:{p}")]),
            &format!("line {}: {}", main.line, main.text()),
        ));
    }
}

/// One plugin line of the server block.
fn plugin(notes: &mut Notes, p: &Stmt, cd: Option<&str>, found: &mut Found) {
    let from = format!("line {}: {}", p.line, p.text());
    match p.keyword() {
        // vipd logs its own errors and re-reads its file on `vipd reload`.
        "errors" | "reload" => {}
        "log" => notes.warn(
            p.line,
            "log: vipd does not log every query; use /metrics for counts",
        ),
        "bufsize" => match p.arg(1).and_then(|v| v.parse::<u16>().ok()) {
            Some(n) if (512..=4096).contains(&n) => {
                found
                    .dns
                    .push_str(&toml_out::line("max_udp_size", &n.to_string(), &from))
            }
            Some(n) => notes.refuse(
                p.line,
                format!("bufsize {n}: vipd accepts 512 to 4096 bytes (max_udp_size)"),
            ),
            None => notes.refuse(p.line, format!("{:?}: expected bufsize <bytes>", p.text())),
        },
        "health" => health(notes, p, &from, found),
        "ready" => notes.warn(
            p.line,
            "ready: vipd serves GET /ready on its [http] listener instead",
        ),
        "cache" => cache(notes, p, found),
        "forward" => forward(notes, p, &mut found.dns),
        "hosts" => hosts(notes, p, cd, found),
        "template" => template(notes, p, cd, found),
        "mdns" => notes.warn(
            p.line,
            "mdns: node names learnt over mDNS are not translated; list the nodes as [[dns.node]]",
        ),
        "loadbalance" => notes.warn(
            p.line,
            "loadbalance: vipd answers VIPs in configuration order",
        ),
        other => notes.warn(p.line, format!("{other}: plugin not translated")),
    }
}

/// `health [ADDR]`: vipd's `[http]` listener, which serves `GET /health`.
fn health(notes: &mut Notes, p: &Stmt, from: &str, found: &mut Found) {
    let addr = p.arg(1).unwrap_or(":8080");
    let listen = match addr.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => addr.to_owned(),
    };
    found.http = format!(
        "\n[http]\n{}",
        toml_out::line(
            "listen",
            &toml_out::string(&listen),
            &format!("{from} (GET /health)")
        )
    );
    if !p.children().is_empty() {
        notes.warn(
            p.line,
            "health { lameduck ... }: not translated; vipd answers /health until it stops",
        );
    }
}

/// `cache [TTL]`: vipd caches forwarded answers itself, capped at 30 s.
fn cache(notes: &mut Notes, p: &Stmt, found: &mut Found) {
    let seconds = match p.arg(1) {
        None => FORWARD_CACHE_CAP,
        Some(v) => match v.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                notes.warn(
                    p.line,
                    format!(
                        "{:?}: zones after cache are not translated; vipd caches every forwarded answer",
                        p.text()
                    ),
                );
                FORWARD_CACHE_CAP
            }
        },
    };
    found.cache = Some((seconds, p.line));
    found.dns.push_str(&format!(
        "# line {}: {}: vipd caches forwarded answers itself, their TTLs capped at {FORWARD_CACHE_CAP} s\n",
        p.line,
        toml_out::comment_text(&p.text())
    ));
    if seconds != FORWARD_CACHE_CAP {
        notes.warn(
            p.line,
            format!("cache {seconds}: vipd caps forwarded answers and its cache at {FORWARD_CACHE_CAP} s, not {seconds}"),
        );
    }
    for o in p.children() {
        notes.warn(
            o.line,
            format!("cache option {:?}: not translated", o.text()),
        );
    }
}

/// `forward . <resolv.conf>` or `forward . IP[:port]...` with its options.
fn forward(notes: &mut Notes, p: &Stmt, dns: &mut String) {
    let from = format!("line {}: {}", p.line, p.text());
    if p.arg(1) != Some(".") {
        notes.refuse(
            p.line,
            format!(
                "{:?}: only `forward . <upstreams>` is translated; forwarding part of the names elsewhere is not",
                p.text()
            ),
        );
        return;
    }
    let targets: Vec<&str> = p.words.iter().skip(2).map(String::as_str).collect();
    match targets.as_slice() {
        [] => notes.refuse(
            p.line,
            "forward . without upstreams: expected addresses or a resolv.conf path",
        ),
        [file] if file.starts_with('/') => {
            let path = if *file == POD_RESOLV_CONF {
                notes.warn(
                    p.line,
                    format!("forward . {POD_RESOLV_CONF}: that is the static pod's mount; vipd runs on the host and reads {NODE_RESOLV_CONF} (the bootstrap: /etc/resolv.conf)"),
                );
                NODE_RESOLV_CONF
            } else {
                file
            };
            dns.push_str(&toml_out::line(
                "resolv_conf",
                &toml_out::string(path),
                &from,
            ));
        }
        addresses => forward_addresses(notes, p, addresses, dns, &from),
    }
    forward_options(notes, p, dns);
}

/// `forward . 192.0.2.53 dns://198.51.100.53:5353 [2001:db8::53]:53` -> `upstreams`.
fn forward_addresses(notes: &mut Notes, p: &Stmt, targets: &[&str], dns: &mut String, from: &str) {
    let mut upstreams: Vec<String> = Vec::new();
    for target in targets {
        match upstream(target) {
            Ok(addr) => {
                let addr = if addr.port() == 53 {
                    addr.ip().to_string()
                } else {
                    addr.to_string()
                };
                if !upstreams.contains(&addr) {
                    upstreams.push(addr);
                }
            }
            Err(why) => {
                notes.refuse(p.line, format!("forward target {target:?}: {why}"));
                return;
            }
        }
    }
    dns.push_str(&toml_out::line(
        "upstreams",
        &toml_out::strings(&upstreams),
        from,
    ));
    notes.warn(
        p.line,
        format!("forward . {}: OpenShift's CoreDNS monitor re-renders this list whenever the node's resolv.conf changes; `upstreams` keeps it as it is now. To follow the file instead, replace upstreams with resolv_conf = \"{NODE_RESOLV_CONF}\" (the bootstrap: \"/etc/resolv.conf\")", targets.join(" ")),
    );
}

/// One CoreDNS `forward` target: `IP`, `IP:port`, `[IPv6]:port`, optionally `dns://`.
fn upstream(target: &str) -> Result<SocketAddr, String> {
    if target.starts_with('/') {
        return Err("a resolv.conf path among addresses; give either one file or addresses".into());
    }
    if let Some((scheme, _)) = target.split_once("://") {
        if scheme != "dns" {
            return Err(format!(
                "{scheme}:// upstreams are not supported; vipd forwards over plain DNS (UDP, or TCP with force_tcp)"
            ));
        }
    }
    let t = target.strip_prefix("dns://").unwrap_or(target);
    match t.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, 53)),
        Err(_) => t
            .parse::<SocketAddr>()
            .map_err(|_| "not an address or address:port".to_owned()),
    }
}

/// The `{ ... }` of `forward`: `policy sequential` is what vipd does; `force_tcp` is kept.
fn forward_options(notes: &mut Notes, p: &Stmt, dns: &mut String) {
    for o in p.children() {
        let from = format!("line {}: {}", o.line, o.text());
        match (o.keyword(), o.arg(1)) {
            // vipd asks its upstreams in order, as `policy sequential` did.
            ("policy", Some("sequential")) => {}
            ("policy", _) => notes.warn(
                o.line,
                format!("{:?}: vipd asks its upstreams in order (policy sequential)", o.text()),
            ),
            ("force_tcp", None) => dns.push_str(&toml_out::line("force_tcp", "true", &from)),
            ("prefer_udp", None) => {}
            ("expire", _) => notes.warn(
                o.line,
                format!("{:?}: vipd keeps idle upstream connections 10 s", o.text()),
            ),
            ("except" | "tls" | "tls_servername", _) => notes.refuse(
                o.line,
                format!("forward option {:?}: vipd forwards every name it does not hold, over plain DNS", o.text()),
            ),
            _ => notes.warn(o.line, format!("forward option {:?}: not translated", o.text())),
        }
    }
}

/// `hosts { <ip> <short> <short>.<cd> ... fallthrough }` -> nodes; `api` / `api-int` entries
/// (older Corefiles) -> their VIPs.
fn hosts(notes: &mut Notes, p: &Stmt, cd: Option<&str>, found: &mut Found) {
    found.hosts.get_or_insert(p.line);
    if let Some(file) = p.arg(1) {
        notes.warn(
            p.line,
            format!("hosts file {file:?}: its entries are not read; list them as [[dns.node]]"),
        );
    }
    let mut fallthrough = false;
    for e in p.children() {
        let Some(Ok(addr)) = e.arg(0).map(str::parse::<IpAddr>) else {
            match e.keyword() {
                "fallthrough" => fallthrough = true,
                "ttl" | "reload" | "no_reverse" => {}
                other => notes.warn(e.line, format!("hosts option {other}: not translated")),
            }
            continue;
        };
        let mut node: Option<String> = None;
        for name in &e.words[1..] {
            let n = name.trim_end_matches('.').to_ascii_lowercase();
            match cd.and_then(|cd| n.strip_suffix(&format!(".{cd}"))) {
                Some("api") => push_unique(&mut found.api_vips, addr, e.line),
                Some("api-int") => push_unique(&mut found.api_int_vips, addr, e.line),
                Some(short) if !short.contains('.') => {
                    node.get_or_insert(short.to_owned());
                }
                _ if !n.contains('.') => {
                    node.get_or_insert(n);
                }
                _ => notes.warn(
                    e.line,
                    format!("hosts entry {n}: outside the cluster domain; not translated"),
                ),
            }
        }
        if let Some(short) = node {
            match found.nodes.iter_mut().find(|(n, _, _)| *n == short) {
                Some((_, addrs, _)) if !addrs.contains(&addr) => addrs.push(addr),
                Some(_) => {}
                None => found.nodes.push((short, vec![addr], e.line)),
            }
        }
    }
    if !fallthrough {
        notes.warn(p.line, "hosts without fallthrough: CoreDNS answered NXDOMAIN for other names; vipd forwards them upstream");
    }
}

fn push_unique(list: &mut Vec<(IpAddr, usize)>, addr: IpAddr, line: usize) {
    if !list.iter().any(|(a, _)| *a == addr) {
        list.push((addr, line));
    }
}

/// Which of vipd's names a template's `match` regex selects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Apps,
    Api,
    ApiInt,
}

/// `.*[.]apps.<cd>`, `.*.apps.<cd>` -> Apps; `^api.<cd>` -> Api; `^api-int.<cd>` -> ApiInt
/// (both spellings of the dots are in the field, openshift.md 5).
fn role(regex: &str) -> Option<Role> {
    let r = regex
        .to_ascii_lowercase()
        .replace("[.]", ".")
        .replace("\\.", ".");
    let r = r.trim_start_matches('^');
    if r.starts_with("api-int.") {
        Some(Role::ApiInt)
    } else if r.starts_with("api.") {
        Some(Role::Api)
    } else if r.contains(".apps.") || r.starts_with("apps.") {
        Some(Role::Apps)
    } else {
        None
    }
}

/// `template IN A|AAAA <cd> { match <regex> [answer "{{ .Name }} 60 in {{ .Type }} <ip>"]
/// fallthrough }`.
fn template(notes: &mut Notes, p: &Stmt, cd: Option<&str>, found: &mut Found) {
    found.template.get_or_insert(p.line);
    let class = p.arg(1).unwrap_or("").to_ascii_uppercase();
    let qtype = p.arg(2).unwrap_or("").to_ascii_uppercase();
    if class != "IN" || (qtype != "A" && qtype != "AAAA") {
        notes.warn(
            p.line,
            format!("template {class} {qtype}: only IN A and IN AAAA templates are translated"),
        );
        return;
    }
    let zone = p
        .arg(3)
        .map(|z| z.trim_end_matches('.').to_ascii_lowercase());
    if zone.is_some() && zone.as_deref() != cd {
        notes.refuse(
            p.line,
            format!("template for zone {:?}: not the cluster domain {:?}; vipd serves one cluster domain", zone.unwrap_or_default(), cd.unwrap_or("")),
        );
        return;
    }
    let mut regexes: Vec<&str> = Vec::new();
    let mut answers: Vec<(&str, usize)> = Vec::new();
    for o in p.children() {
        match o.keyword() {
            "match" => regexes.extend(o.words[1..].iter().map(String::as_str)),
            "answer" => answers.extend(o.words[1..].iter().map(|a| (a.as_str(), o.line))),
            "fallthrough" => {}
            "additional" | "authority" | "rcode" => notes.refuse(
                o.line,
                format!(
                    "template option {:?}: vipd answers its names with addresses only",
                    o.text()
                ),
            ),
            other => notes.warn(o.line, format!("template option {other}: not translated")),
        }
    }
    let Some(role) = regexes.iter().find_map(|m| role(m)) else {
        let message = if regexes.is_empty() {
            format!("template IN {qtype} without match: CoreDNS answered every {qtype} query under the zone from it; vipd answers its own names (NODATA for a family without addresses) and forwards the others")
        } else {
            format!("template matching {regexes:?}: not an api, api-int or *.apps template; not translated")
        };
        if answers.is_empty() {
            notes.warn(p.line, message);
        } else {
            notes.refuse(p.line, message);
        }
        return;
    };
    // A template without an answer gives the other address family its empty (NODATA)
    // answer, which vipd does by itself for a family without VIPs (openshift.md 5).
    for (answer, line) in answers {
        let Some((ttl, addr)) = template_answer(notes, answer, &qtype, line) else {
            continue;
        };
        found.template_ttl.get_or_insert((ttl, line));
        let list = match role {
            Role::Apps => &mut found.ingress_vips,
            Role::Api => &mut found.api_vips,
            Role::ApiInt => &mut found.api_int_vips,
        };
        push_unique(list, addr, line);
    }
}

/// `{{ .Name }} 60 in {{ .Type }} 192.0.2.10` (or with `A` / `AAAA` written out): the TTL and
/// the address, of the template's family.
fn template_answer(
    notes: &mut Notes,
    answer: &str,
    qtype: &str,
    line: usize,
) -> Option<(u32, IpAddr)> {
    // Placeholders become one word each, whatever spaces they hold.
    let mut words: Vec<String> = Vec::new();
    let mut rest = answer;
    while let Some(open) = rest.find("{{") {
        words.extend(rest[..open].split_whitespace().map(str::to_owned));
        let close = rest[open..].find("}}").map_or(rest.len(), |c| open + c + 2);
        words.push(rest[open..close].split_whitespace().collect());
        rest = &rest[close..];
    }
    words.extend(rest.split_whitespace().map(str::to_owned));
    let expected = "expected \"{{ .Name }} <ttl> IN {{ .Type }} <address>\"".to_owned();
    let [_, ttl, class, rtype, addr] = words.as_slice() else {
        let why = if words.len() == 4 {
            "no address (the VIP list was empty when it was rendered)".to_owned()
        } else {
            expected
        };
        notes.refuse(line, format!("answer {answer:?}: {why}"));
        return None;
    };
    let type_ok = rtype == "{{.Type}}" || rtype.eq_ignore_ascii_case(qtype);
    let (Ok(ttl), true, true) = (
        ttl.parse::<u32>(),
        class.eq_ignore_ascii_case("in"),
        type_ok,
    ) else {
        notes.refuse(
            line,
            format!("answer {answer:?}: {expected} for an IN {qtype} template"),
        );
        return None;
    };
    match addr.parse::<IpAddr>() {
        Ok(a) if a.is_ipv4() == (qtype == "A") => Some((ttl, a)),
        Ok(a) => {
            notes.refuse(
                line,
                format!(
                    "answer {answer:?}: {a} is not of the family the IN {qtype} template answers"
                ),
            );
            None
        }
        Err(_) => {
            notes.refuse(
                line,
                format!("answer {answer:?}: {addr:?} is not an address"),
            );
            None
        }
    }
}

/// `ttl` of local answers: CoreDNS wrote the template TTL but `cache` capped what clients saw
/// (openshift.md 5).
fn ttl(found: &Found, dns: &mut String) {
    let (ttl, from) = match (found.template_ttl, found.cache) {
        (Some((t, tl)), Some((c, cl))) => (
            t.min(c),
            format!("line {tl}: answer TTL {t}, capped by line {cl}: cache {c}"),
        ),
        (Some((t, tl)), None) => (t, format!("line {tl}: answer TTL {t}")),
        (None, Some((c, cl))) => (c, format!("line {cl}: cache {c}")),
        (None, None) => return,
    };
    dns.push_str(&toml_out::line("ttl", &ttl.to_string(), &from));
}

/// The names vipd answers: `records = "nodes"` for a Corefile with node records and no
/// template, else the VIPs of api, api-int (when they differ) and `*.apps`.
fn records(notes: &mut Notes, found: &Found, dns: &mut String) {
    let no_vips =
        found.api_vips.is_empty() && found.api_int_vips.is_empty() && found.ingress_vips.is_empty();
    if let (None, Some(hosts), true) = (found.template, found.hosts, no_vips) {
        dns.push_str(&toml_out::line(
            "records",
            &toml_out::string("nodes"),
            &format!("line {hosts}: hosts and no api / *.apps template (dnsRecordsType External): node records only, the rest forwarded"),
        ));
        return;
    }
    // An older Corefile names the API VIP in hosts as api-int only: it is api's too.
    let api = if found.api_vips.is_empty() {
        &found.api_int_vips
    } else {
        &found.api_vips
    };
    vip_line(notes, dns, "api_vips", api, "api");
    let sorted = |l: &[(IpAddr, usize)]| {
        let mut v: Vec<IpAddr> = l.iter().map(|(a, _)| *a).collect();
        v.sort();
        v
    };
    if found.api_int_vips.is_empty() && !api.is_empty() {
        notes.warn(0, "no api-int template or hosts entry: CoreDNS forwarded api-int.<cluster domain>; vipd answers it with the api addresses");
    } else if sorted(&found.api_int_vips) != sorted(api) {
        vip_line(notes, dns, "api_int_vips", &found.api_int_vips, "api-int");
    }
    vip_line(notes, dns, "ingress_vips", &found.ingress_vips, "*.apps");
}

fn vip_line(notes: &mut Notes, dns: &mut String, key: &str, vips: &[(IpAddr, usize)], role: &str) {
    if vips.is_empty() {
        notes.refuse(
            0,
            format!("no {role} VIP found (expected a hosts entry or template answering {role}.<cluster domain>)"),
        );
        return;
    }
    let addrs: Vec<String> = vips.iter().map(|(a, _)| a.to_string()).collect();
    let lines: Vec<String> = vips.iter().map(|(_, l)| l.to_string()).collect();
    dns.push_str(&toml_out::line(
        key,
        &toml_out::strings(&addrs),
        &format!("line {}", lines.join(", ")),
    ));
}

/// `cluster_name` and `base_domain` from the cluster domain.
fn identity(notes: &mut Notes, found: &Found) -> (Option<Located>, Option<Located>) {
    let Some((cd, line)) = &found.cluster_domain else {
        notes.refuse(
            0,
            "cannot tell the cluster domain (no template zone, no api / api-int or node hosts entry)",
        );
        return (None, None);
    };
    match cd.split_once('.') {
        Some((c, b)) => (Some((c.to_owned(), *line)), Some((b.to_owned(), *line))),
        None => {
            notes.refuse(*line, format!("cluster domain {cd:?} has no base domain"));
            (None, None)
        }
    }
}
