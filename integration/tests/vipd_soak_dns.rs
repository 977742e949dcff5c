//! The cluster DNS under hostile clients and a failing upstream (issue 14, point 2). Needs root,
//! the vipd binary, lab-responder, lab-hostile, dig, ss and prlimit. Figures in docs/soak.md;
//! each test prints a `SOAK` line with its own.
//!
//! Node 0 runs vipd with `[dns]` on 192.0.2.11:53 (server limits from docs/dns.md: at most
//! `max_tcp_connections` = 256 TCP connections served, `tcp_idle_timeout` = 10 s, listen
//! backlog 1024); node 1 is the upstream resolver (lab-responder, one name); the client
//! namespace plays every client.

use std::fs;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use lab::hostile::{self, Hostile};
use lab::scenarios::{self, Dns, NodeConfig};
use lab::vipd::{self as labvipd, Peering};
use lab::{Lab, Proc};
use serde_json::Value;

const RESPONDER: &str = env!("CARGO_BIN_EXE_lab-responder");
const HOSTILE: &str = env!("CARGO_BIN_EXE_lab-hostile");
const DOMAIN: &str = "ostest.test.metalkube.org";
const UPSTREAM_NAME: &str = "example.test.";

fn node_config(lab: &Lab) -> NodeConfig {
    let advert = Duration::from_secs(1);
    let api = labvipd::cluster_instance(
        lab,
        0,
        &[70],
        "192.0.2.5".parse().unwrap(),
        advert,
        Peering::Multicast,
    );
    let mut ingress = labvipd::cluster_instance(
        lab,
        0,
        &[70],
        "192.0.2.10".parse().unwrap(),
        advert,
        Peering::Multicast,
    );
    ingress.name = "ingress".into();
    ingress.vrid = Some(93);
    let resolv_conf = lab.node(0).dir().unwrap().join("resolv.conf");
    fs::write(&resolv_conf, format!("nameserver {}\n", lab.node(1).ipv4())).unwrap();
    NodeConfig {
        base_domain: Some("test.metalkube.org".into()),
        instances: vec![(api, Vec::new()), (ingress, Vec::new())],
        dns: Some(Dns {
            listen: vec![dns_addr(lab)],
            resolv_conf,
            nodes: vec![("master-0".into(), vec![lab.node(0).ipv4().into()])],
        }),
        http: Some(SocketAddr::new(lab.node(0).ipv4().into(), 18080)),
        ..NodeConfig::new()
    }
}

fn dns_addr(lab: &Lab) -> SocketAddr {
    SocketAddr::new(lab.node(0).ipv4().into(), 53)
}

fn start_upstream(lab: &Lab) -> Proc {
    scenarios::start_dns_responder(
        lab.node(1),
        RESPONDER,
        SocketAddr::new(lab.node(1).ipv4().into(), 53),
        UPSTREAM_NAME,
        "198.51.100.7".parse().unwrap(),
    )
    .unwrap()
}

fn pid(p: &Proc) -> u32 {
    p.pid().expect("vipd is running") as u32
}

/// A UDP query loop for the API name from the client: one query every `every_ms` for `secs`.
fn query_loop(lab: &Lab, label: &str, every_ms: u64, secs: u64) -> Hostile {
    let addr = dns_addr(lab).to_string();
    let name = format!("api.{DOMAIN}");
    let (every, secs) = (every_ms.to_string(), secs.to_string());
    hostile::start(
        lab.client(),
        HOSTILE,
        label,
        1024,
        &[
            "udp-query",
            &addr,
            &name,
            "--every-ms",
            &every,
            "--secs",
            &secs,
        ],
    )
    .unwrap()
}

fn us(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN) / 1000.0
}

fn metrics(lab: &Lab) -> String {
    let url = format!("http://{}:18080/metrics", lab.node(0).ipv4());
    let (code, body) = scenarios::http_get(lab.node(0), &url).unwrap();
    assert_eq!(code, 200);
    body
}

/// `dig` over TCP from the client: (answered with the API VIP, seconds taken).
fn tcp_dig(lab: &Lab) -> (bool, f64) {
    let t = Instant::now();
    let at = format!("@{}", lab.node(0).ipv4());
    let name = format!("api.{DOMAIN}.");
    let out = lab
        .client()
        .exec(&[
            "dig", &at, "+tcp", "+time=3", "+tries=1", "+short", &name, "A",
        ])
        .unwrap_or_default();
    (out.trim() == "192.0.2.5", t.elapsed().as_secs_f64())
}

/// 1,000 idle and 1,000 slow TCP clients (a length prefix announcing 65,535 bytes, then one
/// byte a second) plus 150,000 datagrams of garbage in 20 s, while a client asks for the API name
/// every 10 ms over UDP. Local answers must keep their latency, TCP connections stay within the
/// server's bound, the longest-idle ones make room for new clients and the rest are closed by the
/// idle timeout, a TCP client that asks is answered at once, memory stays bounded and comes back,
/// the garbage is counted as dropped, and nothing changes.
#[test]
fn two_thousand_idle_or_slow_tcp_clients_and_a_garbage_flood_leave_local_answers_on_time() {
    const ATTACK: u64 = 20;
    const HOLD: u64 = 24;
    let t0 = Instant::now();
    let lab = Lab::new(2).unwrap();
    let _upstream = start_upstream(&lab);
    let vipd = scenarios::start(lab.node(0), &node_config(&lab)).unwrap();
    let addr = dns_addr(&lab).to_string();
    assert!(tcp_dig(&lab).0, "no TCP answer before the attack");
    thread::sleep(Duration::from_secs(1));
    let rss_before = lab::proc_rss_kib(pid(&vipd)).unwrap();
    let fds_before = hostile::open_fds(pid(&vipd)).unwrap();
    let malformed_before =
        hostile::metric(&metrics(&lab), "vipd_dns_dropped_malformed_total").unwrap();

    let idle = query_loop(&lab, "udp-query-idle", 10, 5)
        .result(Duration::from_secs(15))
        .unwrap();

    // The attack: everything at once, each bounded in count and time. Slow clients come first
    // and last, idle ones between: whichever kind is oldest is displaced first.
    let tcp = |label: &str, count: &str, slow: bool, secs: u64| {
        let secs = secs.to_string();
        let mut args = vec!["tcp-hold", &addr, "--count", count, "--secs", &secs];
        if slow {
            args.extend(["--proto", "dns", "--trickle-ms", "1000"]);
        }
        hostile::start(lab.client(), HOSTILE, label, 4096, &args).unwrap()
    };
    let slow_first = tcp("tcp-slow-first", "200", true, HOLD);
    let idle_tcp = tcp("tcp-idle", "1000", false, HOLD);
    let slow_last = tcp("tcp-slow-last", "800", true, HOLD);
    let garbage = hostile::start(
        lab.client(),
        HOSTILE,
        "udp-garbage",
        1024,
        &[
            "udp-garbage",
            &addr,
            "--count",
            "150000",
            "--secs",
            &ATTACK.to_string(),
        ],
    )
    .unwrap();
    let attacked = query_loop(&lab, "udp-query-attack", 10, ATTACK);
    let attack_start = Instant::now();
    let (mut rss_max, mut fds_max, mut queue_max, mut established_max) = (0, 0, 0, 0);
    let mut syn_recv_max = 0;
    let mut tcp_during = Vec::new();
    // Until the TCP clients give up (HOLD), past the end of the flood and the query loop.
    while attack_start.elapsed() < Duration::from_secs(HOLD) {
        rss_max = rss_max.max(lab::proc_rss_kib(pid(&vipd)).unwrap());
        fds_max = fds_max.max(hostile::open_fds(pid(&vipd)).unwrap());
        let established = lab
            .node(0)
            .exec(&["ss", "-Htn", "state", "established", "( sport = :53 )"])
            .unwrap();
        established_max = established_max.max(established.lines().count());
        // Handshakes the full accept queue left half-done (the client believes it is connected).
        let half = lab
            .node(0)
            .exec(&["ss", "-Htn", "state", "syn-recv", "( sport = :53 )"])
            .unwrap();
        syn_recv_max = syn_recv_max.max(half.lines().count());
        // Recv-Q of a listening socket is its accept queue.
        let listening = lab
            .node(0)
            .exec(&["ss", "-Hltn", "( sport = :53 )"])
            .unwrap();
        let queue: usize = listening
            .split_whitespace()
            .nth(1)
            .and_then(|q| q.parse().ok())
            .unwrap_or(0);
        queue_max = queue_max.max(queue);
        if tcp_during.len() < 3 && attack_start.elapsed() > Duration::from_secs(4) {
            tcp_during.push(tcp_dig(&lab));
        }
        thread::sleep(Duration::from_millis(500));
    }
    let attacked = attacked.result(Duration::from_secs(10)).unwrap();
    let garbage = garbage.result(Duration::from_secs(10)).unwrap();
    let idle_tcp = idle_tcp.result(Duration::from_secs(10)).unwrap();
    let slow_first = slow_first.result(Duration::from_secs(10)).unwrap();
    let slow_last = slow_last.result(Duration::from_secs(10)).unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "the attack phase overran"
    );

    // After: the clients are gone; their connections close and the descriptors come back.
    let back = lab::wait_until(Duration::from_secs(12), || {
        rss_max = rss_max.max(lab::proc_rss_kib(pid(&vipd))?);
        let fds = hostile::open_fds(pid(&vipd))?;
        Ok((fds <= fds_before + 2).then_some(fds))
    })
    .unwrap();
    thread::sleep(Duration::from_secs(1));
    let rss_after = lab::proc_rss_kib(pid(&vipd)).unwrap();
    rss_max = rss_max.max(rss_after);
    let after = query_loop(&lab, "udp-query-after", 10, 2)
        .result(Duration::from_secs(10))
        .unwrap();
    let tcp_after = tcp_dig(&lab);
    let malformed_after =
        hostile::metric(&metrics(&lab), "vipd_dns_dropped_malformed_total").unwrap();
    let dropped = malformed_after - malformed_before;

    // Twice more, the TCP part only, for one idle timeout each: what the first round left is
    // the allocator's free memory, not a leak, if the next rounds do not add to it.
    let mut rss_rounds = Vec::new();
    let mut back2 = None;
    for r in 0..2 {
        let again = [
            tcp(&format!("tcp-slow-again{r}"), "1000", true, 12),
            tcp(&format!("tcp-idle-again{r}"), "1000", false, 12),
        ];
        for h in again {
            rss_max = rss_max.max(lab::proc_rss_kib(pid(&vipd)).unwrap());
            h.result(Duration::from_secs(25)).unwrap();
        }
        back2 = lab::wait_until(Duration::from_secs(12), || {
            rss_max = rss_max.max(lab::proc_rss_kib(pid(&vipd))?);
            let fds = hostile::open_fds(pid(&vipd))?;
            Ok((fds <= fds_before + 2).then_some(fds))
        })
        .unwrap();
        thread::sleep(Duration::from_secs(1));
        rss_rounds.push(lab::proc_rss_kib(pid(&vipd)).unwrap());
    }
    eprintln!(
        "SOAK dns-attack: idle UDP p50 {:.2} ms p99 {:.2} ms max {:.2} ms ({} of {} answered); \
         under attack p50 {:.2} ms p99 {:.2} ms max {:.2} ms ({} of {} answered, {} lost); after p50 {:.2} ms; \
         garbage sent {} ({}), counted dropped-malformed {dropped}; \
         TCP idle clients: {} opened, {} closed by the server (first after {} ms, median {} ms); \
         TCP slow clients, first 200: {} closed by the server (first after {} ms, median {} ms); last 800: {} closed; \
         server side: at most {} established on :53 (served + accept queue), accept queue at most {}, {} half-open (SYN-RECV, queue full), vipd fds {} -> max {} -> {:?}; \
         TCP query during attack {:?} (answered, s), after {:?}; RSS {} KiB before, {} KiB after the attack, {:?} KiB after two more TCP rounds (fds back: {:?}), at most {} KiB; test took {:.1} s",
        us(&idle, "p50_us"),
        us(&idle, "p99_us"),
        us(&idle, "max_us"),
        idle["answered"],
        idle["sent"],
        us(&attacked, "p50_us"),
        us(&attacked, "p99_us"),
        us(&attacked, "max_us"),
        attacked["answered"],
        attacked["sent"],
        attacked["lost"],
        us(&after, "p50_us"),
        garbage["sent"],
        garbage,
        idle_tcp["opened"],
        idle_tcp["closed_by_server"],
        idle_tcp["closed_first_ms"],
        idle_tcp["closed_median_ms"],
        slow_first["closed_by_server"],
        slow_first["closed_first_ms"],
        slow_first["closed_median_ms"],
        slow_last["closed_by_server"],
        established_max,
        queue_max,
        syn_recv_max,
        fds_before,
        fds_max,
        back,
        tcp_during,
        tcp_after,
        rss_before,
        rss_after,
        rss_rounds,
        back2,
        rss_max,
        t0.elapsed().as_secs_f64()
    );

    // Local answers kept coming, on time. The flood and 2,000 sockets share the 2 cores with
    // vipd, so "normal" is judged loosely: nearly all answered, p99 within 50 ms.
    let sent = attacked["sent"].as_f64().unwrap();
    assert!(sent >= 1500.0, "the query loop sent only {sent}");
    assert!(
        attacked["answered"].as_f64().unwrap() >= 0.99 * sent,
        "{attacked}"
    );
    assert_eq!(attacked["noerror"], attacked["answered"], "{attacked}");
    assert!(us(&attacked, "p99_us") <= 50.0, "{attacked}");
    // TCP is bounded: vipd never held more than max_tcp_connections (256) connections.
    assert!(
        fds_max <= fds_before + 256 + 2,
        "vipd had {fds_max} descriptors open (before: {fds_before})"
    );
    // At the bound each new client displaces the connection idle the longest (RFC 7766 section
    // 6.2.3), so the first 1,200 are closed as the later ones arrive, well before the 10 s idle
    // timeout, and the idle timeout closes the last 256, trickling or not.
    for (what, r, min) in [("idle", &idle_tcp, 990), ("slow, first", &slow_first, 200)] {
        let first = r["closed_first_ms"].as_u64().unwrap();
        assert!(
            first < 5_000,
            "{what}: first close by the server after {first} ms (displacement expected): {r}"
        );
        assert!(
            r["closed_by_server"].as_u64().unwrap() >= min,
            "{what}: fewer than {min} closed by the server: {r}"
        );
    }
    let last_close = slow_last["closed_max_ms"].as_u64().unwrap();
    assert!(
        slow_last["closed_by_server"].as_u64().unwrap() >= 790 && last_close <= 14_000,
        "slow, last: not all closed by displacement or the 10 s idle timeout: {slow_last}"
    );
    // A client that asks is answered during the attack, at once, not after the attackers' turn.
    assert!(
        tcp_during.iter().all(|&(ok, secs)| ok && secs < 1.0),
        "TCP queries during the attack: {tcp_during:?} (answered, s)"
    );
    assert!(back.is_some(), "vipd's descriptors did not come back");
    // The garbage was dropped and counted (the rest got FORMERR), and changed nothing.
    assert!(
        dropped >= 0.3 * garbage["sent"].as_f64().unwrap() * 0.9,
        "only {dropped} counted"
    );
    assert!(tcp_after.0, "no TCP answer after the attack");
    assert_eq!(after["answered"], after["sent"], "{after}");
    // Memory: bounded (vipd rests at about 14 MiB here, debug build), and repeating the attack
    // does not add to what the first round left (measured: it levels off; docs/soak.md).
    assert!(
        back2.is_some(),
        "vipd's descriptors did not come back after the TCP rounds"
    );
    assert!(rss_max <= 48 * 1024, "RSS reached {rss_max} KiB");
    // The allocator's high-water mark steps up when a round's connections land on a runtime
    // thread whose malloc arena had not grown yet: once, in any round (measured 14 -> 16..32 MiB
    // after the first, and once 32 -> 32 -> 38.7 MiB in the later rounds). A leak grows with
    // every round instead (2,000 connections each: 1 KiB per connection is 2 MiB a round), so
    // the check fails when both later rounds climbed by more than 2 MiB.
    let climbs = [
        rss_rounds[0] as i64 - rss_after as i64,
        rss_rounds[1] as i64 - rss_rounds[0] as i64,
    ];
    assert!(
        !climbs.iter().all(|&c| c > 2 * 1024),
        "RSS grew with every repeat of the attack: {rss_after} -> {rss_rounds:?} KiB"
    );
}

/// `dig` a fresh name outside the cluster (never cached): the upstream answers NXDOMAIN; with
/// the upstream gone vipd answers SERVFAIL.
fn forwarded_status(lab: &Lab, n: usize) -> String {
    let name = format!("q{n}.nowhere.test.");
    scenarios::dig(lab.client(), lab.node(0).ipv4().into(), &name, "A")
        .map(|r| r.status)
        .unwrap_or_else(|_| "TIMEOUT".into())
}

/// Asks fresh names every 100 ms for at most `limit` until `pred(status)`; returns the time.
fn until_status(
    lab: &Lab,
    n: &mut usize,
    limit: Duration,
    pred: impl Fn(&str) -> bool,
) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        *n += 1;
        if pred(&forwarded_status(lab, *n)) {
            return Some(t.elapsed());
        }
        thread::sleep(Duration::from_millis(100));
    }
    None
}

/// The upstream goes away twice, without restarting vipd: its process stops (the port is closed:
/// ICMP port unreachable) and, later, its link is black-holed (queries time out, and the upstream
/// is held down for `unhealthy_hold` = 5 s). Each time forwarding answers SERVFAIL while it is
/// down and recovers once it is back.
#[test]
fn upstream_down_then_up_forwarding_recovers_without_restart() {
    let t0 = Instant::now();
    let lab = Lab::new(2).unwrap();
    let mut upstream = start_upstream(&lab);
    let _vipd = scenarios::start(lab.node(0), &node_config(&lab)).unwrap();
    let mut n = 0;
    let up = |s: &str| s == "NXDOMAIN";
    assert!(
        until_status(&lab, &mut n, Duration::from_secs(3), up).is_some(),
        "forwarding never worked"
    );

    // 1: the upstream process stops.
    upstream.kill();
    let down1 = until_status(&lab, &mut n, Duration::from_secs(5), |s| s == "SERVFAIL")
        .expect("no SERVFAIL with the upstream stopped");
    thread::sleep(Duration::from_secs(2));
    let restarted = Instant::now();
    let _restarted = start_upstream(&lab);
    let started_in = restarted.elapsed();
    let recovered1 = until_status(&lab, &mut n, Duration::from_secs(10), up)
        .expect("forwarding did not recover after the upstream restarted");

    // 2: the upstream's link black-holes everything (the process keeps running).
    lab.loss(1, 100).unwrap();
    let down2 = until_status(&lab, &mut n, Duration::from_secs(10), |s| s != "NXDOMAIN")
        .expect("answers still came with the upstream black-holed");
    // Long enough for timeouts and the hold-down to be in force.
    thread::sleep(Duration::from_secs(6));
    let during = forwarded_status(&lab, 1_000_000);
    lab.clear_loss(1).unwrap();
    let recovered2 = until_status(&lab, &mut n, Duration::from_secs(10), up)
        .expect("forwarding did not recover after the black hole ended");
    let local = scenarios::dig(
        lab.client(),
        lab.node(0).ipv4().into(),
        &format!("api.{DOMAIN}."),
        "A",
    )
    .unwrap();

    eprintln!(
        "SOAK dns-upstream: stopped: SERVFAIL after {:.0} ms; restarted (responder up in {:.0} ms): \
         forwarded answers again {:.0} ms after the restart began; black-holed: first failure after \
         {:.0} ms, status while down {during}; link back: forwarded answers again after {:.0} ms; \
         {n} queries; test took {:.1} s",
        down1.as_secs_f64() * 1000.0,
        started_in.as_secs_f64() * 1000.0,
        (started_in + recovered1).as_secs_f64() * 1000.0,
        down2.as_secs_f64() * 1000.0,
        recovered2.as_secs_f64() * 1000.0,
        t0.elapsed().as_secs_f64()
    );
    // The stated recovery time (docs/soak.md): within 1 s of the upstream answering again. A
    // closed port costs nothing to retry; a held-down upstream is still tried when it is the
    // only one, so neither waits for the 5 s hold to expire.
    assert!(recovered1 <= Duration::from_secs(1), "{recovered1:?}");
    assert!(recovered2 <= Duration::from_secs(1), "{recovered2:?}");
    assert!(
        during == "SERVFAIL" || during == "TIMEOUT",
        "while black-holed: {during}"
    );
    assert_eq!(local.rdata(), vec!["192.0.2.5".to_string()]);
}
