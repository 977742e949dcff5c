//! Corefile -> `[dns]` and `[http]`.
//!
//! OpenShift's Corefile (openshift.md section 5) is one server block for `.` whose plugins map
//! onto vipd's DNS keys: the API VIP from the `hosts` entries for `api-int.<cd>` / `api.<cd>` or
//! an `api` template, the ingress VIP from the `*.apps` template, upstreams from the `forward`
//! file, `bufsize` and `cache` as `max_udp_size` and `ttl`, `health` as the HTTP listener.

use std::net::IpAddr;

use super::syntax::{parse, Stmt};
use super::toml_out;
use super::{Note, Severity};

/// Where the static pod mounts the rendered upstream list; on the host the node's own
/// NetworkManager file holds the name servers it was rendered from.
const POD_RESOLV_CONF: &str = "/etc/coredns/resolv.conf";
const NODE_RESOLV_CONF: &str = "/var/run/NetworkManager/resolv.conf";

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

#[derive(Default)]
struct Found {
    cluster_domain: Option<(String, usize)>,
    api_vips: Vec<(IpAddr, usize)>,
    ingress_vips: Vec<(IpAddr, usize)>,
    /// (short name, addresses, line).
    nodes: Vec<(String, Vec<IpAddr>, usize)>,
    template_ttl: Option<(u32, usize)>,
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
        let zones: Vec<&str> = block.words.iter().map(String::as_str).collect();
        let is_root = zones.iter().any(|z| {
            *z == "." || z.starts_with(".:") || *z == "dns://." || z.starts_with("dns://.:")
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
    let Some(main) = main else {
        notes.refuse(0, "no server block for \".\": nothing to translate");
        return CorefileImport {
            cluster_name: None,
            base_domain: None,
            body: String::new(),
            notes: notes.0,
        };
    };

    let port = main
        .words
        .iter()
        .find_map(|z| z.rsplit_once(':').map(|(_, p)| p.to_owned()))
        .filter(|p| p != "53");

    // First pass: the cluster domain, which the hosts entries and templates are read against.
    let mut found = Found::default();
    for p in main.children() {
        if p.keyword() == "template" {
            if let Some(zone) = p.arg(3) {
                found
                    .cluster_domain
                    .get_or_insert((zone.trim_end_matches('.').to_ascii_lowercase(), p.line));
            }
        }
    }
    if found.cluster_domain.is_none() {
        for p in main.children().iter().filter(|p| p.keyword() == "hosts") {
            for e in p.children() {
                for name in e.words.iter().skip(1) {
                    let n = name.trim_end_matches('.').to_ascii_lowercase();
                    if let Some(cd) = n
                        .strip_prefix("api-int.")
                        .or_else(|| n.strip_prefix("api."))
                    {
                        found.cluster_domain.get_or_insert((cd.to_owned(), e.line));
                    }
                }
            }
        }
    }
    let cd = found.cluster_domain.as_ref().map(|(c, _)| c.clone());

    let mut dns = String::from("\n[dns]\n");
    let mut http = String::new();
    if let Some(p) = &port {
        dns.push_str(&toml_out::line(
            "listen",
            &toml_out::strings(&[format!("0.0.0.0:{p}"), format!("[::]:{p}")]),
            &format!("line {}: {}", main.line, main.text()),
        ));
    }
    let mut cache: Option<(u32, usize)> = None;
    for p in main.children() {
        let from = format!("line {}: {}", p.line, p.text());
        match p.keyword() {
            // vipd logs its own errors; there is nothing to switch on.
            "errors" => {}
            "log" => notes.warn(p.line, "log: vipd does not log every query; use /metrics for counts"),
            "bufsize" => match p.arg(1).and_then(|v| v.parse::<u16>().ok()) {
                Some(n) => dns.push_str(&toml_out::line("max_udp_size", &n.to_string(), &from)),
                None => notes.refuse(p.line, format!("{:?}: expected bufsize <bytes>", p.text())),
            },
            "health" => {
                let addr = p.arg(1).unwrap_or(":8080");
                let listen = match addr.strip_prefix(':') {
                    Some(port) => format!("0.0.0.0:{port}"),
                    None => addr.to_owned(),
                };
                http = format!(
                    "\n[http]\n{}",
                    toml_out::line("listen", &toml_out::string(&listen), &format!("{from} (GET /health)"))
                );
                if !p.children().is_empty() {
                    notes.warn(p.line, "health { lameduck ... }: not translated; vipd answers /health until it stops");
                }
            }
            "ready" => notes.warn(p.line, "ready: vipd serves GET /ready on its [http] listener instead"),
            "reload" => {}
            "cache" => match p.arg(1).and_then(|v| v.parse::<u32>().ok()) {
                Some(n) => cache = Some((n, p.line)),
                None => cache = Some((30, p.line)),
            },
            "forward" => forward(&mut notes, p, &mut dns),
            "hosts" => hosts(&mut notes, p, cd.as_deref(), &mut found),
            "template" => template(&mut notes, p, &mut found),
            "mdns" => notes.warn(p.line, "mdns: node names learnt over mDNS are not translated; list the nodes as [[dns.node]]"),
            "loadbalance" => notes.warn(p.line, "loadbalance: vipd answers VIPs in configuration order"),
            other => notes.warn(p.line, format!("{other}: plugin not translated")),
        }
    }

    // CoreDNS wrote the template TTL but `cache` capped what clients saw (openshift.md 5).
    match (found.template_ttl, cache) {
        (Some((t, tl)), Some((c, cl))) => {
            let ttl = t.min(c);
            dns.push_str(&toml_out::line(
                "ttl",
                &ttl.to_string(),
                &format!("line {tl}: answer TTL {t}, capped by line {cl}: cache {c}"),
            ));
        }
        (Some((t, tl)), None) => dns.push_str(&toml_out::line(
            "ttl",
            &t.to_string(),
            &format!("line {tl}: answer TTL {t}"),
        )),
        (None, Some((c, cl))) => dns.push_str(&toml_out::line(
            "ttl",
            &c.to_string(),
            &format!("line {cl}: cache {c}"),
        )),
        (None, None) => {}
    }
    for (key, vips, role) in [
        ("api_vips", &found.api_vips, "api"),
        ("ingress_vips", &found.ingress_vips, "*.apps"),
    ] {
        if vips.is_empty() {
            notes.refuse(
                0,
                format!("no {role} VIP found (expected a hosts entry or template answering {role}.<cluster domain>)"),
            );
            continue;
        }
        let addrs: Vec<String> = vips.iter().map(|(a, _)| a.to_string()).collect();
        let lines: Vec<String> = vips.iter().map(|(_, l)| l.to_string()).collect();
        dns.push_str(&toml_out::line(
            key,
            &toml_out::strings(&addrs),
            &format!("line {}", lines.join(", ")),
        ));
    }
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
    if cd.is_none() {
        notes.refuse(
            0,
            "cannot tell the cluster domain (no template zone, no api / api-int hosts entry)",
        );
    }
    let (cluster_name, base_domain) = match (&cd, &found.cluster_domain) {
        (Some(cd), Some((_, line))) => match cd.split_once('.') {
            Some((c, b)) => (Some((c.to_owned(), *line)), Some((b.to_owned(), *line))),
            None => {
                notes.refuse(*line, format!("cluster domain {cd:?} has no base domain"));
                (None, None)
            }
        },
        _ => (None, None),
    };
    CorefileImport {
        cluster_name,
        base_domain,
        body: format!("{dns}{http}"),
        notes: notes.0,
    }
}

fn forward(notes: &mut Notes, p: &Stmt, dns: &mut String) {
    let from = format!("line {}: {}", p.line, p.text());
    if p.arg(1) != Some(".") {
        notes.refuse(
            p.line,
            format!(
                "{:?}: only `forward . <resolv.conf>` is translated",
                p.text()
            ),
        );
        return;
    }
    let targets: Vec<&str> = p.words.iter().skip(2).map(String::as_str).collect();
    match targets.as_slice() {
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
            dns.push_str(&toml_out::line("resolv_conf", &toml_out::string(path), &from));
        }
        _ => notes.refuse(
            p.line,
            format!("{:?}: vipd reads its upstreams from a resolv.conf file; write these servers into one and set dns.resolv_conf", p.text()),
        ),
    }
    for o in p.children() {
        match (o.keyword(), o.arg(1)) {
            // vipd asks its upstreams in order, as `policy sequential` did.
            ("policy", Some("sequential")) => {}
            _ => notes.warn(
                o.line,
                format!("forward option {:?}: not translated", o.text()),
            ),
        }
    }
}

fn hosts(notes: &mut Notes, p: &Stmt, cd: Option<&str>, found: &mut Found) {
    if p.arg(1).is_some() {
        notes.warn(
            p.line,
            format!(
                "hosts file {:?}: its entries are not read; list them as [[dns.node]]",
                p.arg(1).unwrap_or("")
            ),
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
        let names: Vec<String> = e.words[1..]
            .iter()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        let mut node: Option<String> = None;
        for n in &names {
            let local = cd.and_then(|cd| n.strip_suffix(&format!(".{cd}")));
            match local {
                Some("api" | "api-int") => push_unique(&mut found.api_vips, addr, e.line),
                Some(short) if !short.contains('.') => {
                    node.get_or_insert(short.to_owned());
                }
                Some(_) | None if !n.contains('.') => {
                    node.get_or_insert(n.clone());
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

/// `template IN A <cd> { match <regex> answer "{{ .Name }} 60 in a <vip>" fallthrough }`.
fn template(notes: &mut Notes, p: &Stmt, found: &mut Found) {
    let qtype = p.arg(2).unwrap_or("").to_ascii_uppercase();
    if qtype != "A" && qtype != "AAAA" {
        notes.warn(
            p.line,
            format!("template for {qtype}: only A and AAAA templates are translated"),
        );
        return;
    }
    let mut matches: Vec<String> = Vec::new();
    let mut answers: Vec<(String, usize)> = Vec::new();
    for o in p.children() {
        match o.keyword() {
            "match" => matches.extend(o.words[1..].iter().cloned()),
            "answer" => answers.extend(o.words[1..].iter().map(|a| (a.clone(), o.line))),
            "fallthrough" => {}
            other => notes.warn(o.line, format!("template option {other}: not translated")),
        }
    }
    let kind = matches.iter().find_map(|m| {
        let m = m.trim_start_matches('^').to_ascii_lowercase();
        // Both the escaped and the unescaped-dots spellings are in the field (openshift.md 5).
        if m.contains("apps.") || m.contains("apps\\.") {
            Some("ingress")
        } else if m.starts_with("api.") || m.starts_with("api\\.") || m.starts_with("api-int") {
            Some("api")
        } else {
            None
        }
    });
    // A template without an answer gives the other address family its empty (NODATA)
    // answer, which vipd does by itself for a family without VIPs (openshift.md 5).
    if answers.is_empty() {
        return;
    }
    let Some(kind) = kind else {
        notes.warn(
            p.line,
            format!("template matching {matches:?}: not an api or *.apps template; not translated"),
        );
        return;
    };
    for (answer, line) in answers {
        // `{{ .Name }} 60 IN A 192.0.2.10`
        let words: Vec<&str> = answer.split_whitespace().collect();
        let (Some(ttl), Some(addr)) = (words.get(words.len().saturating_sub(4)), words.last())
        else {
            notes.refuse(
                line,
                format!(
                    "answer {answer:?}: expected \"{{{{ .Name }}}} <ttl> IN {qtype} <address>\""
                ),
            );
            continue;
        };
        let Ok(addr) = addr.parse::<IpAddr>() else {
            notes.refuse(
                line,
                format!("answer {answer:?}: {addr:?} is not an address"),
            );
            continue;
        };
        if let Ok(t) = ttl.parse::<u32>() {
            found.template_ttl.get_or_insert((t, line));
        }
        match kind {
            "api" => push_unique(&mut found.api_vips, addr, line),
            _ => push_unique(&mut found.ingress_vips, addr, line),
        }
    }
}
