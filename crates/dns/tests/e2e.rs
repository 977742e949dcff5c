//! End to end: the real server on 127.0.0.1 (unprivileged port), queried by `dig` and `kdig`
//! over UDP and TCP, covering the RFC 8906 section 8 list, plus a live zone replace under load.
//!
//! `dig` (Debian bind9-dnsutils) and `kdig` (knot-dnsutils) are required: a missing tool fails
//! the test with the package to install; nothing is skipped.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ip, zone, Query, CD};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RData;
use vipd_dns::answer::Transport;
use vipd_dns::server::{ClientNet, DnsServer, DnsServerHandle, ForwardQuery, ServerConfig};
use vipd_dns::zone::{ClusterZone, ZoneHandle};

/// Stand-in forwarder: answers every query NXDOMAIN (the question echoed, OPT dropped), so
/// tests can tell forwarded names from local ones without any upstream.
struct NxdomainForwarder;

impl ForwardQuery for NxdomainForwarder {
    async fn forward_query(&self, query: &[u8], _: Transport, _: u16) -> Vec<u8> {
        let mut response = query.to_vec();
        response[2] |= 0x80;
        response[3] = (response[3] & 0xF0) | 3;
        response[6..12].fill(0);
        // Keep only the header and the question (name + 4 bytes).
        let mut end = 12;
        while end < response.len() && response[end] != 0 {
            end += usize::from(response[end]) + 1;
        }
        response.truncate((end + 5).min(response.len()));
        response
    }
}

/// A running server with its own runtime, shut down on drop even when the test panics.
struct TestServer {
    runtime: tokio::runtime::Runtime,
    handle: Option<DnsServerHandle>,
    addr: SocketAddr,
    zone: ZoneHandle,
}

impl TestServer {
    fn start(zone: ClusterZone, adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_with(zone, NxdomainForwarder, adjust)
    }

    fn start_with(
        zone: ClusterZone,
        forwarder: impl ForwardQuery,
        adjust: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = ServerConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            workers: 2,
            ..ServerConfig::default()
        };
        adjust(&mut config);
        let zone = ZoneHandle::new(zone);
        let handle = runtime
            .block_on(async { DnsServer::start(config, zone.clone(), Arc::new(forwarder)) })
            .unwrap();
        let addr = handle.local_addrs()[0];
        TestServer {
            runtime,
            handle: Some(handle),
            addr,
            zone,
        }
    }

    fn dig(&self, args: &[&str]) -> String {
        run_tool("dig", "bind9-dnsutils", self.addr, args)
    }

    fn kdig(&self, args: &[&str]) -> String {
        run_tool("kdig", "knot-dnsutils", self.addr, args)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.runtime.block_on(handle.shutdown());
        }
    }
}

fn run_tool(tool: &str, package: &str, addr: SocketAddr, args: &[&str]) -> String {
    let server = format!("@{}", addr.ip());
    let port = addr.port().to_string();
    // Bounded: one try, two seconds.
    let limits: [&str; 2] = if tool == "kdig" {
        ["+timeout=2", "+retry=0"]
    } else {
        ["+time=2", "+tries=1"]
    };
    let output = Command::new(tool)
        .args([server.as_str(), "-p", port.as_str()])
        .args(limits)
        .args(args)
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run `{tool}` ({err}); install the Debian package {package}")
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{tool} {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn api() -> String {
    format!("api.{CD}")
}

/// Substring match with runs of blanks collapsed: dig pads columns with a varying number of tabs.
fn assert_has(output: &str, expected: &str) {
    let squash = |text: &str| {
        text.split([' ', '\t'])
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        squash(output).contains(&squash(expected)),
        "expected {expected:?} in:\n{output}"
    );
}

#[test]
fn dig_plain_query_gets_the_api_vip() {
    let server = TestServer::start(zone(), |_| {});
    let out = server.dig(&["+noedns", &api(), "A"]);
    assert_has(&out, "status: NOERROR");
    assert_has(&out, "flags: qr aa rd ra;");
    assert_has(&out, &format!("{}.\t\t30\tIN\tA\t192.0.2.5", api()));
    assert!(!out.contains("OPT PSEUDOSECTION"), "{out}");
}

#[test]
fn dig_edns0_query_gets_our_opt_with_512() {
    let server = TestServer::start(zone(), |_| {});
    let out = server.dig(&["+edns=0", &api(), "A"]);
    assert_has(&out, "status: NOERROR");
    assert_has(&out, "; EDNS: version: 0, flags:; udp: 512");
    assert_has(&out, "192.0.2.5");
}

#[test]
fn dig_edns1_query_gets_badvers() {
    let server = TestServer::start(zone(), |_| {});
    let out = server.dig(&["+edns=1", "+noednsneg", &api(), "A"]);
    assert_has(&out, "status: BADVERS");
    assert_has(&out, "ANSWER: 0");
    assert_has(&out, "; EDNS: version: 0,");
}

#[test]
fn dig_unknown_edns_option_is_ignored() {
    let server = TestServer::start(zone(), |_| {});
    let out = server.dig(&["+ednsopt=65001:abcd", &api(), "A"]);
    assert_has(&out, "status: NOERROR");
    assert_has(&out, "192.0.2.5");
}

#[test]
fn dig_unknown_flag_is_ignored() {
    let server = TestServer::start(zone(), |_| {});
    let out = server.dig(&["+zflag", &api(), "A"]);
    assert_has(&out, "status: NOERROR");
    assert_has(&out, "flags: qr aa rd ra;");
    assert_has(&out, "192.0.2.5");
}

#[test]
fn dig_do_bit_is_echoed() {
    let server = TestServer::start(zone(), |_| {});
    let out = server.dig(&["+dnssec", &api(), "A"]);
    assert_has(&out, "; EDNS: version: 0, flags: do; udp: 512");
    assert_has(&out, "192.0.2.5");
}

#[test]
fn dig_type666_at_our_name_is_nodata() {
    let server = TestServer::start(zone(), |_| {});
    let out = server.dig(&[&api(), "TYPE666"]);
    assert_has(&out, "status: NOERROR");
    assert_has(&out, "flags: qr aa rd ra;");
    assert_has(&out, "ANSWER: 0, AUTHORITY: 1");
    assert_has(
        &out,
        &format!("{CD}.\t\t30\tIN\tSOA\tvipd.{CD}. hostmaster.{CD}."),
    );
}

#[test]
fn dig_opcode_15_gets_notimp() {
    let server = TestServer::start(zone(), |_| {});
    let out = server.dig(&["+opcode=15", &api(), "A"]);
    assert_has(&out, "opcode: RESERVED15, status: NOTIMP");
}

#[test]
fn dig_over_tcp_gets_the_api_vip() {
    let server = TestServer::start(zone(), |_| {});
    let out = server.dig(&["+tcp", &api(), "A"]);
    assert_has(&out, "status: NOERROR");
    assert_has(&out, "(TCP)");
    assert_has(&out, "192.0.2.5");
}

#[test]
fn dig_forwarded_name_gets_the_forwarders_answer() {
    let server = TestServer::start(zone(), |_| {});
    let udp = server.dig(&["example.org", "A"]);
    assert_has(&udp, "status: NXDOMAIN");
    let tcp = server.dig(&["+tcp", "example.org", "A"]);
    assert_has(&tcp, "status: NXDOMAIN");
}

#[test]
fn kdig_udp_and_tcp_get_the_ingress_vip() {
    let server = TestServer::start(zone(), |_| {});
    let name = format!("console-openshift-console.apps.{CD}");
    for transport in ["+notcp", "+tcp"] {
        let out = server.kdig(&[transport, &name, "A"]);
        assert_has(&out, "status: NOERROR");
        assert_has(&out, "Flags: qr aa rd ra;");
        assert_has(&out, &format!("{name}.\t30\tIN\tA\t192.0.2.6"));
    }
}

#[test]
fn kdig_ptr_for_a_node_address() {
    let server = TestServer::start(zone(), |_| {});
    let out = server.kdig(&["-x", "192.0.2.20"]);
    assert_has(&out, &format!("PTR\tworker-0.{CD}."));
}

fn many_vips_zone() -> ClusterZone {
    let mut config = common::config();
    config.ingress_vips = (1..=40)
        .map(|i| ip(&format!("192.0.2.{}", 100 + i)))
        .collect();
    ClusterZone::new(&config).unwrap()
}

#[test]
fn dig_answer_over_the_advertised_size_is_truncated_then_retried_over_tcp() {
    let server = TestServer::start(many_vips_zone(), |_| {});
    let name = format!("x.apps.{CD}");
    let truncated = server.dig(&["+ignore", "+bufsize=1232", &name, "A"]);
    assert_has(&truncated, "flags: qr aa tc rd ra;");
    assert_has(&truncated, "ANSWER: 0");
    let retried = server.dig(&["+bufsize=1232", &name, "A"]);
    assert_has(&retried, "Truncated, retrying in TCP mode.");
    assert_has(&retried, "ANSWER: 40");
}

/// Sends `query` from a socket bound to `from` and returns the reply, if one comes within 2 s.
fn udp_exchange(from: &str, to: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind(from).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    socket.send_to(query, to).unwrap();
    let mut buf = [0u8; 4096];
    let (n, peer) = socket.recv_from(&mut buf).ok()?;
    assert_eq!(peer, to);
    Some(buf[..n].to_vec())
}

#[test]
fn ipv4_and_ipv6_clients_inside_the_allow_list_get_local_and_forwarded_answers() {
    // The source address the UDP worker reads from the kernel, for both families: it decides
    // the allow-list and where local and forwarded answers go.
    let server = TestServer::start(zone(), |config| {
        config.listen = vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
        config.allow = vec![
            "127.0.0.0/8".parse::<ClientNet>().unwrap(),
            "::1/128".parse::<ClientNet>().unwrap(),
        ];
    });
    let handle = server.handle.as_ref().unwrap();
    let (v4, v6) = (handle.local_addrs()[0], handle.local_addrs()[1]);
    assert!(v6.is_ipv6());
    for (from, to) in [("127.0.0.1:0", v4), ("[::1]:0", v6)] {
        let local = udp_exchange(from, to, &Query::new(&api(), 1).bytes()).unwrap();
        let local = Message::from_vec(&local).unwrap();
        assert_eq!(local.metadata.response_code, ResponseCode::NoError);
        assert_eq!(local.answers.len(), 1, "{to}");
        let forwarded = Query::new("www.example.org.", 1).bytes();
        let forwarded = Message::from_vec(&udp_exchange(from, to, &forwarded).unwrap()).unwrap();
        assert_eq!(
            forwarded.metadata.response_code,
            ResponseCode::NXDomain,
            "{to}"
        );
    }
    let metrics = handle.metrics();
    assert_eq!(metrics.answered_locally, 2);
    assert_eq!(metrics.forwarded, 2);
    assert_eq!(metrics.dropped_not_allowed, 0);
}

#[test]
fn clients_outside_the_allow_list_get_no_reply() {
    let server = TestServer::start(zone(), |config| {
        config.allow = vec!["198.51.100.0/24".parse::<ClientNet>().unwrap()];
    });
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    socket
        .send_to(&Query::new(&api(), 1).bytes(), server.addr)
        .unwrap();
    let mut buf = [0u8; 512];
    let err = socket.recv_from(&mut buf).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
    let metrics = server.handle.as_ref().unwrap().metrics();
    assert_eq!(metrics.dropped_not_allowed, 1);
    assert_eq!(metrics.answered_locally, 0);
}

#[test]
fn metrics_count_queries_by_type_and_responses_by_rcode() {
    let server = TestServer::start(zone(), |_| {});
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 512];
    let mut ask = |query: Vec<u8>| {
        socket.send_to(&query, server.addr).unwrap();
        socket.recv_from(&mut buf).unwrap();
    };
    ask(Query::new(&api(), 1).bytes());
    ask(Query::new(&api(), 28).bytes());
    ask(Query::new("10.2.0.192.in-addr.arpa", 12).bytes());
    ask(Query::new("example.org", 15).bytes());
    let mut notimp = Query::new(&api(), 1);
    notimp.opcode = 15;
    ask(notimp.bytes());
    // A response sent to the server: dropped, never answered.
    let mut reflected = Query::new(&api(), 1).bytes();
    reflected[2] |= 0x80;
    socket.send_to(&reflected, server.addr).unwrap();

    let handle = server.handle.as_ref().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while handle.metrics().dropped_malformed == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let metrics = handle.metrics();
    assert_eq!(metrics.queries_a, 2);
    assert_eq!(metrics.queries_aaaa, 1);
    assert_eq!(metrics.queries_ptr, 1);
    assert_eq!(metrics.queries_other, 1);
    assert_eq!(metrics.answered_locally, 4);
    assert_eq!(metrics.forwarded, 1);
    assert_eq!(metrics.responses_by_rcode[0], 3);
    assert_eq!(metrics.responses_by_rcode[3], 1);
    assert_eq!(metrics.responses_by_rcode[4], 1);
    assert_eq!(metrics.dropped_malformed, 1);
    assert_eq!(metrics.truncated, 0);
}

#[test]
fn burst_of_200_queries_from_one_socket_is_answered_in_full() {
    let server = TestServer::start(zone(), |_| {});
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    for id in 0..200u16 {
        let mut query = Query::new(&api(), 1);
        query.id = id;
        socket.send_to(&query.bytes(), server.addr).unwrap();
    }
    let mut seen = [false; 200];
    let mut buf = [0u8; 512];
    for _ in 0..200 {
        let (len, _) = socket.recv_from(&mut buf).unwrap();
        let msg = Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(msg.answers.len(), 1);
        seen[usize::from(msg.metadata.id)] = true;
    }
    assert!(seen.iter().all(|&s| s));
}

#[test]
fn zone_replaced_100_times_under_load_loses_no_query() {
    let server = TestServer::start(zone(), |_| {});
    let mut other = common::config();
    other.api_vips = vec![ip("192.0.2.7")];
    let other = ClusterZone::new(&other).unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let addr = server.addr;
    let client_done = Arc::clone(&done);
    let client = std::thread::spawn(move || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut buf = [0u8; 512];
        let (mut sent, mut lost, mut seen_new, mut seen_old) = (0u32, 0u32, 0u32, 0u32);
        // Bounded: at most 200 000 queries or 30 s, whichever comes first.
        let deadline = Instant::now() + Duration::from_secs(30);
        while sent < 200_000 && Instant::now() < deadline {
            let mut query = Query::new(&api(), 1);
            query.id = sent as u16;
            socket.send_to(&query.bytes(), addr).unwrap();
            sent += 1;
            match socket.recv_from(&mut buf) {
                Ok((len, _)) => {
                    let msg = Message::from_vec(&buf[..len]).unwrap();
                    assert_eq!(msg.metadata.id, query.id);
                    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
                    assert_eq!(msg.answers.len(), 1, "{msg:?}");
                    match &msg.answers[0].data {
                        RData::A(a) if a.0 == ip("192.0.2.5") => seen_old += 1,
                        RData::A(a) if a.0 == ip("192.0.2.7") => seen_new += 1,
                        other => panic!("unexpected answer {other:?}"),
                    }
                }
                Err(_) => lost += 1,
            }
            if client_done.load(Ordering::Relaxed) {
                break;
            }
        }
        (sent, lost, seen_old, seen_new)
    });

    let original = zone();
    for round in 0..100 {
        std::thread::sleep(Duration::from_millis(5));
        if round % 2 == 0 {
            server.zone.replace(other.clone());
        } else {
            server.zone.replace(original.clone());
        }
    }
    done.store(true, Ordering::Relaxed);
    let (sent, lost, seen_old, seen_new) = client.join().unwrap();
    assert_eq!(lost, 0, "{lost} of {sent} queries lost");
    assert!(sent >= 100, "only {sent} queries sent during the swaps");
    assert!(
        seen_old > 0 && seen_new > 0,
        "old {seen_old}, new {seen_new}"
    );
}

fn framed(query: &Query) -> Vec<u8> {
    let bytes = query.bytes();
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    framed
}

fn read_framed(stream: &mut std::net::TcpStream) -> Message {
    use std::io::Read;
    let mut prefix = [0u8; 2];
    stream.read_exact(&mut prefix).unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut body).unwrap();
    Message::from_vec(&body).unwrap()
}

#[test]
fn tcp_pipelined_queries_are_answered_in_order() {
    use std::io::Write;
    let server = TestServer::start(zone(), |_| {});
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut first = Query::new(&api(), 1);
    first.id = 1;
    let mut second = Query::new(&format!("x.apps.{CD}"), 1);
    second.id = 2;
    let mut third = Query::new("example.org", 1);
    third.id = 3;
    let mut both = framed(&first);
    both.extend(framed(&second));
    both.extend(framed(&third));
    stream.write_all(&both).unwrap();
    let replies: Vec<Message> = (0..3).map(|_| read_framed(&mut stream)).collect();
    assert_eq!(replies[0].metadata.id, 1);
    assert_eq!(replies[0].answers.len(), 1);
    assert_eq!(replies[1].metadata.id, 2);
    assert_eq!(replies[1].answers.len(), 1);
    assert_eq!(replies[2].metadata.id, 3);
    assert_eq!(replies[2].metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn idle_tcp_connection_is_closed_after_the_timeout() {
    use std::io::Read;
    let server = TestServer::start(zone(), |config| {
        config.tcp_idle_timeout = Duration::from_millis(200);
    });
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 1];
    assert_eq!(stream.read(&mut buf).unwrap(), 0, "expected EOF");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(2),
        "closed after {waited:?}"
    );
}

#[test]
fn shutdown_closes_open_tcp_connections_and_frees_the_port() {
    use std::io::Read;
    let mut server = TestServer::start(zone(), |_| {});
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    // One exchange first, so the connection is past accept and held by its own task.
    std::io::Write::write_all(&mut stream, &framed(&Query::new(&api(), 1))).unwrap();
    assert_eq!(read_framed(&mut stream).answers.len(), 1);
    let handle = server.handle.take().unwrap();
    server.runtime.block_on(handle.shutdown());
    let mut buf = [0u8; 1];
    assert_eq!(stream.read(&mut buf).unwrap(), 0, "expected EOF");
    UdpSocket::bind(server.addr).unwrap();
    std::net::TcpListener::bind(server.addr).unwrap();
}

/// Writes `query` framed and reads one framed response.
fn tcp_exchange(stream: &mut std::net::TcpStream, query: &[u8]) -> Message {
    use std::io::Write;
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).unwrap();
    read_framed(stream)
}

fn tcp_connect(addr: SocketAddr) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream
}

#[test]
fn tcp_client_outside_the_allow_list_is_disconnected_without_a_reply() {
    use std::io::{Read, Write};
    let server = TestServer::start(zone(), |config| {
        config.allow = vec!["198.51.100.0/24".parse::<ClientNet>().unwrap()];
    });
    let mut stream = tcp_connect(server.addr);
    let started = Instant::now();
    // The server may already have closed: a failed write is the same verdict.
    let _ = stream.write_all(&framed(&Query::new(&api(), 1)));
    let mut buf = [0u8; 2];
    match stream.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0, "expected EOF, got {n} bytes"),
        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}"),
    }
    // Closed at accept, not left to the 10 s idle timeout.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let metrics = server.handle.as_ref().unwrap().metrics();
    assert_eq!(metrics.dropped_not_allowed, 1);
    assert_eq!(metrics.answered_locally, 0);
    assert_eq!(metrics.queries_a, 0);
}

/// EOF or reset within `within`: the server closed the connection.
fn assert_closed_by_server(stream: &mut std::net::TcpStream, within: Duration) {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 2];
    match std::io::Read::read(stream, &mut buf) {
        Ok(n) => assert_eq!(n, 0, "expected EOF, got {n} bytes"),
        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}"),
    }
}

#[test]
fn tcp_client_beyond_the_bound_displaces_the_longest_idle_connection() {
    let server = TestServer::start(zone(), |config| {
        config.max_tcp_connections = 2;
    });
    // `oldest` asked once, long ago; `quiet` connected later and never asked.
    let mut oldest = tcp_connect(server.addr);
    assert_eq!(
        tcp_exchange(&mut oldest, &Query::new(&api(), 1).bytes())
            .answers
            .len(),
        1
    );
    std::thread::sleep(Duration::from_millis(50));
    let mut quiet = tcp_connect(server.addr);
    std::thread::sleep(Duration::from_millis(50));

    // The third client is served at once, and `oldest`, idle the longest, makes room.
    let started = Instant::now();
    let mut third = tcp_connect(server.addr);
    let mut query = Query::new(&api(), 1);
    query.id = 3;
    assert_eq!(tcp_exchange(&mut third, &query.bytes()).metadata.id, 3);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_closed_by_server(&mut oldest, Duration::from_secs(2));

    // `quiet` is still served; asking makes it the most recently active.
    query.id = 4;
    assert_eq!(tcp_exchange(&mut quiet, &query.bytes()).metadata.id, 4);
    let metrics = server.handle.as_ref().unwrap().metrics();
    assert_eq!(metrics.tcp_displaced, 1);
    assert_eq!(metrics.tcp_refused, 0);
    assert_eq!(metrics.tcp_open, 2);

    drop((quiet, third));
    let deadline = Instant::now() + Duration::from_secs(2);
    while server.handle.as_ref().unwrap().metrics().tcp_open > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.handle.as_ref().unwrap().metrics().tcp_open, 0);
}

#[test]
fn tcp_queries_are_counted_like_udp_ones() {
    let server = TestServer::start(zone(), |_| {});
    let mut stream = tcp_connect(server.addr);
    tcp_exchange(&mut stream, &Query::new(&api(), 1).bytes());
    tcp_exchange(&mut stream, &Query::new(&api(), 28).bytes());
    tcp_exchange(
        &mut stream,
        &Query::new("10.2.0.192.in-addr.arpa", 12).bytes(),
    );
    tcp_exchange(&mut stream, &Query::new("example.org", 15).bytes());
    let mut notimp = Query::new(&api(), 1);
    notimp.opcode = 15;
    tcp_exchange(&mut stream, &notimp.bytes());

    let metrics = server.handle.as_ref().unwrap().metrics();
    assert_eq!(metrics.queries_a, 2);
    assert_eq!(metrics.queries_aaaa, 1);
    assert_eq!(metrics.queries_ptr, 1);
    assert_eq!(metrics.queries_other, 1);
    assert_eq!(metrics.answered_locally, 4);
    assert_eq!(metrics.forwarded, 1);
    assert_eq!(metrics.responses_by_rcode[0], 3);
    assert_eq!(metrics.responses_by_rcode[3], 1);
    assert_eq!(metrics.responses_by_rcode[4], 1);
    assert_eq!(metrics.dropped_malformed, 0);
    assert_eq!(metrics.truncated, 0);
}

#[test]
fn tcp_response_sent_to_the_server_closes_the_connection_and_is_counted() {
    use std::io::{Read, Write};
    let server = TestServer::start(zone(), |_| {});
    let mut stream = tcp_connect(server.addr);
    let mut reflected = Query::new(&api(), 1).bytes();
    reflected[2] |= 0x80;
    let mut framed = (reflected.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&reflected);
    stream.write_all(&framed).unwrap();
    let mut buf = [0u8; 2];
    assert_eq!(stream.read(&mut buf).unwrap(), 0, "expected EOF");
    let metrics = server.handle.as_ref().unwrap().metrics();
    assert_eq!(metrics.dropped_malformed, 1);
    assert_eq!(metrics.answered_locally, 0);
}

#[test]
fn tcp_edns1_query_gets_badvers_in_the_opt() {
    let server = TestServer::start(zone(), |_| {});
    let mut stream = tcp_connect(server.addr);
    let query = Query::new(&api(), 1).edns(common::Edns {
        version: 1,
        ..Default::default()
    });
    let reply = tcp_exchange(&mut stream, &query.bytes());
    // Code 16 is both BADVERS (RFC 6891) and BADSIG (RFC 8945); hickory names it BADSIG.
    assert_eq!(u16::from(reply.metadata.response_code), 16);
    assert_eq!(reply.answers.len(), 0);
    let edns = reply.edns.expect("BADVERS comes with an OPT");
    assert_eq!(edns.rcode_high(), 1);
    assert_eq!(edns.version(), 0);
    assert_eq!(edns.max_payload(), 512);
    assert_eq!(
        server.handle.as_ref().unwrap().metrics().responses_badvers,
        1
    );
}

#[test]
fn tcp_question_keeps_the_clients_letter_case() {
    let server = TestServer::start(zone(), |_| {});
    let mut stream = tcp_connect(server.addr);
    let name = format!("ApI.{}", CD.to_uppercase());
    let reply = tcp_exchange(&mut stream, &Query::new(&name, 1).bytes());
    assert_eq!(reply.queries.len(), 1);
    assert_eq!(reply.queries[0].name().to_string(), format!("{name}."));
    assert_eq!(reply.answers.len(), 1);
    assert!(
        matches!(&reply.answers[0].data, RData::A(a) if a.0 == ip("192.0.2.5")),
        "{reply:?}"
    );
}

#[test]
fn tcp_query_hickory_cannot_parse_gets_formerr_and_the_connection_stays_open() {
    let server = TestServer::start(zone(), |_| {});
    let mut stream = tcp_connect(server.addr);
    // One question whose first label has type 0b01 (RFC 6891's retired extended labels).
    let query = [0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41, 0, 0, 1, 0, 1];
    // The premise: this takes the path where hickory has no Request and answer()'s bytes go out.
    let parsed = hickory_server::server::Request::from_bytes(
        query.to_vec(),
        server.addr,
        hickory_server::net::xfer::Protocol::Tcp,
    );
    assert!(parsed.is_err(), "{parsed:?}");
    let reply = tcp_exchange(&mut stream, &query);
    assert_eq!(reply.metadata.id, 7);
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(reply.queries.len(), 0);
    let next = tcp_exchange(&mut stream, &Query::new(&api(), 1).bytes());
    assert_eq!(next.answers.len(), 1);
}

#[test]
fn tcp_query_with_two_questions_gets_formerr_without_a_question() {
    let server = TestServer::start(zone(), |_| {});
    let mut stream = tcp_connect(server.addr);
    let one = Query::new(&api(), 1).bytes();
    let mut two = one.clone();
    two[5] = 2;
    two.extend_from_slice(&one[12..]);
    let reply = tcp_exchange(&mut stream, &two);
    assert_eq!(reply.metadata.id, 0x1234);
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(reply.queries.len(), 0);
    assert_eq!(reply.answers.len(), 0);
}

/// Stand-in upstream whose answer claims one answer record and stops after the header.
struct BrokenForwarder;

impl ForwardQuery for BrokenForwarder {
    async fn forward_query(&self, query: &[u8], _: Transport, _: u16) -> Vec<u8> {
        let mut response = query[..12].to_vec();
        response[2] |= 0x80;
        response[4..12].copy_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
        response
    }
}

#[test]
fn tcp_forwarded_response_that_does_not_decode_becomes_servfail() {
    let server = TestServer::start_with(zone(), BrokenForwarder, |_| {});
    let mut stream = tcp_connect(server.addr);
    let mut query = Query::new("example.org", 1);
    query.id = 9;
    let reply = tcp_exchange(&mut stream, &query.bytes());
    assert_eq!(reply.metadata.id, 9);
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(reply.queries[0].name().to_string(), "example.org.");
    assert_eq!(reply.answers.len(), 0);
}
