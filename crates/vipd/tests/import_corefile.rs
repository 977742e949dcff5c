//! `vipd import corefile`: OpenShift's Corefile into `[dns]` and `[http]`, parsed back.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use vipd::config::Config;
use vipd::import::{assemble, translate_corefile, Severity};

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/openshift")
        .join(name)
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap()
}

fn ips(texts: &[&str]) -> Vec<IpAddr> {
    texts.iter().map(|t| t.parse().unwrap()).collect()
}

#[test]
fn openshift_corefile_round_trips_to_the_same_names_and_limits() {
    let c = translate_corefile(&fixture("Corefile"));
    let import = assemble(None, Some(("Corefile", c)), None);
    assert!(!import.refused(), "{:#?}", import.notes);
    let config = Config::parse(&import.toml, "Corefile").unwrap();
    assert_eq!(config.cluster_name, "ostest");
    assert_eq!(config.base_domain.as_deref(), Some("test.metalkube.org"));
    let dns = config.dns.unwrap();
    assert_eq!(dns.cluster_domain, "ostest.test.metalkube.org");
    assert_eq!(dns.api_vips, ips(&["192.0.2.5"]));
    assert_eq!(dns.ingress_vips, ips(&["192.0.2.10"]));
    assert_eq!(dns.max_udp_size, 512);
    // The template wrote 60 but `cache 30` capped what clients saw.
    assert_eq!(dns.ttl, 30);
    assert_eq!(
        dns.resolv_conf,
        PathBuf::from("/var/run/NetworkManager/resolv.conf")
    );
    let nodes: Vec<(&str, Vec<IpAddr>)> = dns
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.addresses.clone()))
        .collect();
    assert_eq!(
        nodes,
        [
            ("master-0", ips(&["192.0.2.11"])),
            ("master-1", ips(&["192.0.2.12"])),
            ("master-2", ips(&["192.0.2.13"])),
        ]
    );
    assert_eq!(
        config.http.unwrap().listen,
        "0.0.0.0:18080".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn the_pod_resolv_conf_mount_and_the_match_all_templates_are_the_only_warnings() {
    let c = translate_corefile(&fixture("Corefile"));
    let lines: Vec<(usize, Severity)> = c.notes.iter().map(|n| (n.line, n.severity)).collect();
    // Line 5: the pod's resolv.conf mount; 15 and 23: `template IN AAAA` without `match`
    // answered NODATA for every AAAA name under the zone, vipd only at its own names.
    assert_eq!(
        lines,
        [
            (5, Severity::Warning),
            (15, Severity::Warning),
            (23, Severity::Warning)
        ]
    );
}

#[test]
fn untranslatable_corefile_is_refused_line_by_line() {
    let c = translate_corefile(&fixture("Corefile-untranslatable"));
    let notes: Vec<(usize, Severity)> = c.notes.iter().map(|n| (n.line, n.severity)).collect();
    use Severity::*;
    assert_eq!(
        notes,
        [
            (12, Refused), // a second server block
            (3, Warning),  // log
            (4, Warning),  // forward to addresses: a static list, no longer re-rendered
            (5, Warning),  // rewrite
            (0, Refused),  // no api VIP
        ]
    );
}

#[test]
fn corefile_on_a_non_default_port_listens_there() {
    let c = translate_corefile(
        ".:5353 {\n hosts {\n 192.0.2.5 api-int.ostest.example.com\n fallthrough\n }\n template IN A ostest.example.com {\n match .*.apps.ostest.example.com\n answer \"{{ .Name }} 60 in a 192.0.2.10\"\n }\n}\n",
    );
    let import = assemble(None, Some(("Corefile", c)), None);
    let config = Config::parse(&import.toml, "Corefile").unwrap();
    let dns = config.dns.unwrap();
    assert_eq!(
        dns.listen,
        [
            "0.0.0.0:5353".parse::<SocketAddr>().unwrap(),
            "[::]:5353".parse().unwrap()
        ]
    );
    assert_eq!(dns.ttl, 60);
}

// ---- the Corefiles OpenShift renders today (tests/openshift/Corefile-*) ----

const CD: &str = "ostest.test.metalkube.org";
const A: u16 = 1;
const PTR: u16 = 12;
const AAAA: u16 = 28;

/// What a name gets from the daemon's zone.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    /// Answered here: the addresses (A / AAAA) or the count of other records (PTR).
    Local(Vec<IpAddr>),
    Ptr(usize),
    Forwarded,
}

/// Imports `name` (no refusal), parses it with `Config::parse` and returns the config.
fn import_fixture(name: &str) -> Config {
    let c = translate_corefile(&fixture(name));
    let import = assemble(None, Some((name, c)), None);
    assert!(!import.refused(), "{name}: {:#?}", import.notes);
    Config::parse(&import.toml, name).unwrap_or_else(|e| panic!("{name}: {e}\n{}", import.toml))
}

fn query(name: &str, qtype: u16) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, qtype as u8, 0, 1]);
    q
}

/// Skips a name (labels or a compression pointer) at `at`.
fn skip_name(msg: &[u8], mut at: usize) -> usize {
    loop {
        match msg[at] {
            0 => return at + 1,
            len if len >= 0xc0 => return at + 2,
            len => at += 1 + usize::from(len),
        }
    }
}

/// `name qtype` through `vipd_dns::answer::answer` on the zone `vipd run` builds from `config`.
fn ask(config: &Config, name: &str, qtype: u16) -> Got {
    let zone = vipd::daemon::dns::zone_for(config).unwrap().unwrap();
    let mut out = vec![0u8; 4096];
    let outcome = vipd_dns::answer::answer(
        &zone,
        &query(name, qtype),
        &mut out,
        vipd_dns::answer::Transport::Udp,
        512,
    );
    let len = match outcome {
        vipd_dns::answer::Outcome::Respond(len) => len,
        vipd_dns::answer::Outcome::Forward { .. } => return Got::Forwarded,
        other => panic!("{name}: {other:?}"),
    };
    let msg = &out[..len];
    assert_eq!(msg[3] & 0x0f, 0, "{name}: rcode");
    assert_ne!(msg[2] & 0x04, 0, "{name}: not authoritative");
    let answers = usize::from(u16::from_be_bytes([msg[6], msg[7]]));
    let mut at = skip_name(msg, 12) + 4;
    let mut addrs = Vec::new();
    for _ in 0..answers {
        at = skip_name(msg, at);
        let rtype = u16::from_be_bytes([msg[at], msg[at + 1]]);
        let rdlen = usize::from(u16::from_be_bytes([msg[at + 8], msg[at + 9]]));
        let rdata = &msg[at + 10..at + 10 + rdlen];
        match rtype {
            1 => addrs.push(IpAddr::from(<[u8; 4]>::try_from(rdata).unwrap())),
            28 => addrs.push(IpAddr::from(<[u8; 16]>::try_from(rdata).unwrap())),
            _ => {}
        }
        at += 10 + rdlen;
    }
    if qtype == PTR {
        Got::Ptr(answers)
    } else {
        Got::Local(addrs)
    }
}

fn local(addrs: &[&str]) -> Got {
    Got::Local(ips(addrs))
}

/// Every (name, type, what CoreDNS answered) of a Corefile's intent, asked of the zone.
fn assert_answers(config: &Config, intent: &[(String, u16, Got)]) {
    for (name, qtype, want) in intent {
        assert_eq!(&ask(config, name, *qtype), want, "{name} type {qtype}");
    }
}

fn upstreams(config: &Config) -> (Vec<SocketAddr>, bool) {
    let f = vipd::daemon::dns::forwarder_config(config.dns.as_ref().unwrap());
    (f.upstreams, f.force_tcp)
}

fn socks(texts: &[&str]) -> Vec<SocketAddr> {
    texts.iter().map(|t| t.parse().unwrap()).collect()
}

fn fqdn(label: &str) -> String {
    format!("{label}.{CD}")
}

/// What every on-prem Corefile with these VIPs answered for the API and ingress names (the
/// templates: the VIP of the family, NODATA for the other), and what it forwarded.
fn vip_intent(api: &[&str], ingress: &[&str]) -> Vec<(String, u16, Got)> {
    let family = |addrs: &[&str], v6: bool| -> Got {
        local(
            &addrs
                .iter()
                .copied()
                .filter(|a| a.contains(':') == v6)
                .collect::<Vec<_>>(),
        )
    };
    let mut intent = Vec::new();
    for name in ["api", "api-int"] {
        intent.push((fqdn(name), A, family(api, false)));
        intent.push((fqdn(name), AAAA, family(api, true)));
    }
    for name in ["console-openshift-console.apps", "a.b.apps"] {
        intent.push((fqdn(name), A, family(ingress, false)));
        intent.push((fqdn(name), AAAA, family(ingress, true)));
    }
    for name in [
        fqdn("apps"),
        fqdn("foo"),
        CD.to_owned(),
        "example.com".into(),
    ] {
        intent.push((name, A, Got::Forwarded));
    }
    intent
}

/// The hosts block: `<short>` and `<short>.<cd>` with every address of the node, and PTR.
fn node_intent(nodes: &[(&str, &[&str])]) -> Vec<(String, u16, Got)> {
    let mut intent = Vec::new();
    for (name, addrs) in nodes {
        for qtype in [A, AAAA] {
            let want: Vec<&str> = addrs
                .iter()
                .copied()
                .filter(|a| a.contains(':') == (qtype == AAAA))
                .collect();
            intent.push((fqdn(name), qtype, local(&want)));
            intent.push((name.to_string(), qtype, local(&want)));
        }
        for addr in *addrs {
            let reverse = match addr.parse::<IpAddr>().unwrap() {
                IpAddr::V4(v4) => {
                    let o = v4.octets();
                    format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
                }
                IpAddr::V6(v6) => {
                    let mut labels: Vec<String> = Vec::new();
                    for b in v6.octets().iter().rev() {
                        labels.push(format!("{:x}", b & 0xf));
                        labels.push(format!("{:x}", b >> 4));
                    }
                    format!("{}.ip6.arpa", labels.join("."))
                }
            };
            intent.push((reverse, PTR, Got::Ptr(1)));
        }
    }
    intent
}

const MASTERS: [(&str, &[&str]); 5] = [
    ("master-0", &["192.0.2.11"]),
    ("master-1", &["192.0.2.12"]),
    ("master-2", &["192.0.2.13"]),
    ("worker-0", &["192.0.2.21"]),
    ("worker-1", &["192.0.2.22"]),
];

fn warnings(name: &str) -> Vec<usize> {
    translate_corefile(&fixture(name))
        .notes
        .iter()
        .map(|n| {
            assert_eq!(n.severity, Severity::Warning, "{n}");
            n.line
        })
        .collect()
}

#[test]
fn node_corefile_of_today_answers_and_forwards_as_coredns_did() {
    let config = import_fixture("Corefile-node-current");
    let dns = config.dns.as_ref().unwrap();
    assert_eq!((dns.ttl, dns.max_udp_size), (30, 512));
    assert_answers(&config, &vip_intent(&["192.0.2.5"], &["192.0.2.10"]));
    assert_answers(&config, &node_intent(&MASTERS));
    assert_eq!(
        upstreams(&config),
        (socks(&["198.51.100.53:53", "198.51.100.54:53"]), false)
    );
    assert_eq!(
        config.http.unwrap().listen,
        "0.0.0.0:18080".parse::<SocketAddr>().unwrap()
    );
    // Only the note that the upstream list is no longer re-rendered from resolv.conf.
    assert_eq!(warnings("Corefile-node-current"), [5]);
}

#[test]
fn dual_stack_node_corefile_answers_both_families() {
    let config = import_fixture("Corefile-node-dualstack");
    assert_answers(
        &config,
        &vip_intent(
            &["192.0.2.5", "2001:db8::5"],
            &["192.0.2.10", "2001:db8::10"],
        ),
    );
    let nodes: Vec<(String, [String; 2])> = MASTERS
        .iter()
        .map(|(n, a)| {
            let last = a[0].rsplit('.').next().unwrap();
            (
                n.to_string(),
                [a[0].to_owned(), format!("2001:db8::{last}")],
            )
        })
        .collect();
    let nodes: Vec<(&str, Vec<&str>)> = nodes
        .iter()
        .map(|(n, a)| (n.as_str(), a.iter().map(String::as_str).collect()))
        .collect();
    let nodes: Vec<(&str, &[&str])> = nodes.iter().map(|(n, a)| (*n, a.as_slice())).collect();
    assert_answers(&config, &node_intent(&nodes));
    assert_eq!(
        upstreams(&config),
        (socks(&["198.51.100.53:53", "[2001:db8::53]:53"]), false)
    );
    assert_eq!(warnings("Corefile-node-dualstack"), [5]);
}

#[test]
fn external_records_corefile_serves_nodes_and_forwards_the_rest() {
    let config = import_fixture("Corefile-node-external");
    let dns = config.dns.as_ref().unwrap();
    assert_eq!(dns.records, vipd_dns::zone::Records::Nodes);
    let mut intent = Vec::new();
    for name in ["api", "api-int", "console-openshift-console.apps", "foo"] {
        for qtype in [A, AAAA] {
            intent.push((fqdn(name), qtype, Got::Forwarded));
        }
    }
    assert_answers(&config, &intent);
    assert_answers(&config, &node_intent(&MASTERS));
    assert_eq!(
        upstreams(&config),
        (socks(&["198.51.100.53:53", "198.51.100.54:53"]), false)
    );
    assert_eq!(warnings("Corefile-node-external"), [5]);
}

#[test]
fn bootstrap_corefile_of_today_answers_the_vips_and_no_nodes() {
    let config = import_fixture("Corefile-bootstrap-current");
    assert!(config.dns.as_ref().unwrap().nodes.is_empty());
    assert_answers(&config, &vip_intent(&["192.0.2.5"], &["192.0.2.10"]));
    assert_answers(&config, &[(fqdn("master-0"), A, Got::Forwarded)]);
    assert_eq!(upstreams(&config), (socks(&["198.51.100.53:53"]), false));
    assert_eq!(config.dns.as_ref().unwrap().max_udp_size, 512);
    assert_eq!(warnings("Corefile-bootstrap-current"), [4]);
}

#[test]
fn cloud_alt_dns_corefile_forces_tcp_and_answers_api_int_from_the_internal_lb() {
    let config = import_fixture("Corefile-cloud-alt-dns");
    let mut intent = vec![
        (fqdn("api"), A, local(&["198.51.100.10"])),
        (fqdn("api"), AAAA, local(&[])),
        (fqdn("api-int"), A, local(&["192.0.2.20"])),
        (fqdn("api-int"), AAAA, local(&[])),
        (fqdn("x.apps"), A, local(&["198.51.100.11"])),
        (fqdn("x.apps"), AAAA, local(&[])),
        (fqdn("foo"), A, Got::Forwarded),
    ];
    intent.extend(node_intent(&[
        ("ostest-master-0", &["192.0.2.31"]),
        ("ostest-worker-0", &["192.0.2.41"]),
    ]));
    assert_answers(&config, &intent);
    assert_eq!(
        upstreams(&config),
        (socks(&["192.0.2.53:53", "198.51.100.53:53"]), true)
    );
    assert_eq!(warnings("Corefile-cloud-alt-dns"), [4]);
}

#[test]
fn upstreams_ports_and_schemes_are_translated_in_order() {
    let c = translate_corefile(
        ". {\n forward . dns://198.51.100.53:5353 192.0.2.53 [2001:db8::53]:53 {\n force_tcp\n }\n template IN A ostest.example.com {\n match ^api.ostest.example.com\n answer \"{{ .Name }} 60 IN A 192.0.2.5\"\n }\n template IN A ostest.example.com {\n match .*[.]apps.ostest.example.com\n answer \"{{ .Name }} 60 IN A 192.0.2.10\"\n }\n}\n",
    );
    assert!(
        c.body
            .contains("upstreams = [\"198.51.100.53:5353\", \"192.0.2.53\", \"2001:db8::53\"]"),
        "{}",
        c.body
    );
    let import = assemble(None, Some(("Corefile", c)), None);
    let config = Config::parse(&import.toml, "Corefile").unwrap();
    assert_eq!(
        upstreams(&config),
        (
            socks(&["198.51.100.53:5353", "192.0.2.53:53", "[2001:db8::53]:53"]),
            true
        )
    );
}

#[test]
fn constructs_vipd_cannot_carry_are_refused_with_their_line() {
    let text = ". {
    bufsize 100
    forward . tls://192.0.2.53 {
        tls_servername dns.example.com
    }
    template IN A ostest.example.com {
        match ^api.ostest.example.com
        answer \"{{ .Name }} 60 in {{ .Type }} 2001:db8::5\"
    }
    template IN A ostest.example.com {
        match ^api-int.ostest.example.com
        answer \"{{ .Name }} 60 in {{ .Type }} \"
    }
    template IN A other.example.com {
        match .*[.]apps.other.example.com
        answer \"{{ .Name }} 60 in {{ .Type }} 192.0.2.10\"
    }
}
";
    let c = translate_corefile(text);
    let notes: Vec<(usize, Severity, &str)> = c
        .notes
        .iter()
        .map(|n| (n.line, n.severity, n.message.as_str()))
        .collect();
    use Severity::*;
    let lines: Vec<(usize, Severity)> = notes.iter().map(|(l, s, _)| (*l, *s)).collect();
    assert_eq!(
        lines,
        [
            (2, Refused),  // bufsize under 512
            (3, Refused),  // DNS over TLS
            (4, Refused),  // tls_servername
            (8, Refused),  // an IPv6 answer in an A template
            (12, Refused), // an answer without address (empty VIP list when rendered)
            (14, Refused), // another zone
            (0, Refused),  // so no api VIP
            (0, Refused),  // nor ingress VIP
        ],
        "{notes:#?}"
    );
    assert!(notes[4].2.contains("no address"), "{}", notes[4].2);
}

fn vipd(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vipd"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_import_exits_0_with_warnings_on_stderr() {
    let k = fixture_path("keepalived-master.conf");
    let c = fixture_path("Corefile");
    let (code, stdout, stderr) = vipd(&[
        "import",
        "keepalived",
        k.to_str().unwrap(),
        "--corefile",
        c.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(Config::parse(&stdout, "stdout").is_ok());
    assert!(
        stderr.contains("Corefile:5: warning: forward . /etc/coredns/resolv.conf"),
        "{stderr}"
    );
}

#[test]
fn cli_import_exits_1_when_something_essential_is_lost() {
    let k = fixture_path("keepalived-untranslatable.conf");
    let (code, stdout, stderr) = vipd(&[
        "import",
        "keepalived",
        k.to_str().unwrap(),
        "--cluster-name",
        "ostest",
    ]);
    assert_eq!(code, 1);
    assert!(stdout.contains("cluster_name = \"ostest\"  # --cluster-name\n"));
    assert!(
        stderr.contains("keepalived-untranslatable.conf:25: not translated: virtual_routes"),
        "{stderr}"
    );
}

#[test]
fn cli_import_of_a_missing_file_names_it() {
    let (code, stdout, stderr) = vipd(&["import", "corefile", "/nonexistent/Corefile"]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(
        stderr.starts_with("vipd: /nonexistent/Corefile: cannot read the Corefile: "),
        "{stderr}"
    );
}

mod no_panic {
    use proptest::prelude::*;
    use vipd::import::{translate_corefile, translate_keepalived};

    /// Lines built from the words both grammars use, braces and quotes in odd places included.
    fn text() -> impl Strategy<Value = String> {
        let word = prop::sample::select(vec![
            "{",
            "}",
            "\"",
            ".",
            ".:53",
            "hosts",
            "template",
            "IN",
            "A",
            "AAAA",
            "match",
            "answer",
            "\"{{ .Name }} 60 in a 192.0.2.10\"",
            "forward",
            "/etc/coredns/resolv.conf",
            "fallthrough",
            "192.0.2.5",
            "2001:db8::5",
            "api-int.x.example.com",
            "vrrp_instance",
            "x_API",
            "vrrp_script",
            "script",
            "\"curl -o /dev/null http://0:1/\"",
            "track_script",
            "virtual_ipaddress",
            "192.0.2.5/24",
            "dev",
            "label",
            "unicast_peer",
            "authentication",
            "auth_type",
            "PASS",
            "auth_pass",
            "virtual_router_id",
            "300",
            "weight",
            "-1",
            "#",
            "!",
            "interval",
            "0.5",
            "timeout",
            "cache",
            "bufsize",
            "health",
            ":18080",
            "é",
        ]);
        prop::collection::vec(prop::collection::vec(word, 0..6), 0..30).prop_map(|lines| {
            lines
                .into_iter()
                .map(|l| l.join(" "))
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    proptest! {
        #[test]
        fn translators_never_panic(t in text()) {
            let _ = translate_keepalived(&t, None);
            let _ = translate_corefile(&t);
        }

        #[test]
        fn translators_never_panic_on_arbitrary_text(t in ".{0,400}") {
            let _ = translate_keepalived(&t, Some("ostest"));
            let _ = translate_corefile(&t);
        }
    }
}
