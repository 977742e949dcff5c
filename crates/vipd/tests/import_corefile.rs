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
fn the_pod_resolv_conf_mount_is_the_only_warning() {
    let c = translate_corefile(&fixture("Corefile"));
    let lines: Vec<(usize, Severity)> = c.notes.iter().map(|n| (n.line, n.severity)).collect();
    assert_eq!(lines, [(5, Severity::Warning)]);
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
            (4, Refused),  // forward to addresses, not a file
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
