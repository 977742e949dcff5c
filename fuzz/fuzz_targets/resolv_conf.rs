//! resolv.conf text, both readers: the forwarder's upstream list
//! (`upstreams_from_resolv_conf`) and the resolver manager's parse -> render -> recover cycle
//! (`ResolvConf::parse`, `render` with the original kept, `recorded_original`).
//!
//! Checks: no panic; upstreams are on port 53 and never this host or an excluded address; the
//! rendered file lists vipd's own address first and at most 3 name servers, none of them
//! excluded, and gives back the original file's lines exactly (crash recovery in bootstrap mode).
#![no_main]

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vipd::resolver::render::{
    is_own_output, recorded_original, render, RenderInput, ResolvConf, LIBC_MAX_NAMESERVERS,
};

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let own: IpAddr = "192.0.2.10".parse().unwrap();
    let exclude: Vec<IpAddr> = vec![
        own,
        "192.0.2.5".parse().unwrap(),
        "2001:db8::5".parse().unwrap(),
    ];

    let (upstreams, _warnings) = vipd_dns::forward::upstreams_from_resolv_conf(&text, &exclude);
    for addr in &upstreams {
        assert_eq!(addr.port(), 53);
        let ip = canonical(addr.ip());
        assert!(
            !ip.is_loopback() && !ip.is_unspecified(),
            "upstream {addr} is this host"
        );
        assert!(!exclude.contains(&ip), "excluded upstream {addr}");
    }
    let unique: std::collections::HashSet<&SocketAddr> = upstreams.iter().collect();
    assert_eq!(unique.len(), upstreams.len(), "duplicate upstreams");

    let conf = ResolvConf::parse(&text);
    let rendered = render(
        &conf,
        &RenderInput {
            own,
            exclude: &exclude,
            search: None,
            cluster_domain: "ostest.test.metalkube.org",
            upstream_path: Path::new("/run/vipd/resolv.conf.upstream"),
            replaced_symlink: None,
            keep_original: Some(&text),
        },
    );
    assert!(is_own_output(&rendered));
    let reread = ResolvConf::parse(&rendered);
    assert_eq!(
        reread.nameservers.first().map(String::as_str),
        Some("192.0.2.10")
    );
    assert!(
        reread.nameservers.len() <= LIBC_MAX_NAMESERVERS,
        "{rendered}"
    );
    for ns in &reread.nameservers[1..] {
        let ip: IpAddr = ns
            .split('%')
            .next()
            .unwrap()
            .parse()
            .expect("written nameserver parses");
        let ip = canonical(ip);
        assert!(
            !exclude.contains(&ip) && !ip.is_loopback() && !ip.is_unspecified(),
            "{ns}"
        );
    }
    // Line ends are normalised: `lines()` drops a CR before LF both when the original is
    // written into the file and when it is read back, so one more trailing CR per line goes.
    let expected: String = text
        .lines()
        .flat_map(|l| [l.strip_suffix('\r').unwrap_or(l), "\n"])
        .collect();
    let recovered = recorded_original(&rendered);
    if text.lines().next().is_some() {
        assert_eq!(
            recovered.as_deref(),
            Some(expected.as_str()),
            "original not recovered"
        );
    } else {
        assert_eq!(recovered, None);
    }
});
