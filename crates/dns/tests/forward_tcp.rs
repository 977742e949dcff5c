//! `force_tcp`: every forwarded query goes to the upstreams over TCP, against TCP-only fake
//! upstreams on 127.0.0.1 (no UDP socket answers on their port: a UDP query would time out).
//! Connection reuse, the per-upstream bound, a closed idle connection, the idle timeout, and
//! failover over TCP. A query finding every connection busy: unit test in src/forward/tcp.rs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use vipd_dns::forward::{ClientTransport, ForwardError, Forwarder, ForwarderConfig};

const UDP512: ClientTransport = ClientTransport::Udp { max_response: 512 };
const TYPE_A: u16 = 1;

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&TYPE_A.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

/// `query`'s answer: one A record 192.0.2.`last_octet`, TTL 20.
fn answer(query: &[u8], last_octet: u8) -> Vec<u8> {
    let mut r = query.to_vec();
    r[2] = 0x80 | (query[2] & 0x01);
    r[3] = 0x80;
    r[6..8].copy_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&[
        0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 20, 0, 4, 192, 0, 2, last_octet,
    ]);
    r
}

fn rcode(msg: &[u8]) -> u8 {
    msg[3] & 0x0f
}

fn last_octet(msg: &[u8]) -> u8 {
    msg[msg.len() - 1]
}

/// What a fake TCP upstream does with each connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// Answers every query on the connection, in order, until the client closes it.
    Persistent,
    /// Answers one query, then closes the connection (a server without keep-alive).
    OneShot,
    /// Accepts and reads, never answers.
    Silent,
}

/// A TCP-only resolver on 127.0.0.1. Its UDP port is held by a socket that counts datagrams
/// and never answers. Counts connections, queries, and the most connections open at once.
struct TcpUpstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    queries: Arc<AtomicUsize>,
    udp_datagrams: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    most_open: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for TcpUpstream {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl TcpUpstream {
    /// Answers with 192.0.2.`octet` after `delay`.
    async fn start(style: Style, octet: u8, delay: Duration) -> Self {
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()).await {
                break (udp, tcp);
            }
        };
        let addr = tcp.local_addr().unwrap();
        let [connections, queries, udp_datagrams, open, most_open] =
            std::array::from_fn(|_| Arc::new(AtomicUsize::new(0)));
        let udp_task = {
            let count = udp_datagrams.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                while udp.recv_from(&mut buf).await.is_ok() {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let tcp_task = {
            let (connections, queries, open, most_open) = (
                connections.clone(),
                queries.clone(),
                open.clone(),
                most_open.clone(),
            );
            tokio::spawn(async move {
                while let Ok((stream, _)) = tcp.accept().await {
                    connections.fetch_add(1, Ordering::SeqCst);
                    let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                    most_open.fetch_max(now, Ordering::SeqCst);
                    let (queries, open) = (queries.clone(), open.clone());
                    tokio::spawn(async move {
                        serve(stream, style, octet, delay, &queries).await;
                        open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            })
        };
        Self {
            addr,
            connections,
            queries,
            udp_datagrams,
            open,
            most_open,
            tasks: vec![udp_task, tcp_task],
        }
    }

    fn count(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

async fn serve(
    mut stream: TcpStream,
    style: Style,
    octet: u8,
    delay: Duration,
    queries: &AtomicUsize,
) {
    loop {
        let mut prefix = [0u8; 2];
        if stream.read_exact(&mut prefix).await.is_err() {
            return;
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        if stream.read_exact(&mut msg).await.is_err() {
            return;
        }
        queries.fetch_add(1, Ordering::SeqCst);
        if style == Style::Silent {
            continue;
        }
        tokio::time::sleep(delay).await;
        let reply = answer(&msg, octet);
        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() || style == Style::OneShot {
            return;
        }
    }
}

fn forwarder(upstreams: &[&TcpUpstream], tweak: impl FnOnce(&mut ForwarderConfig)) -> Forwarder {
    let mut config = ForwarderConfig {
        upstreams: upstreams.iter().map(|u| u.addr).collect(),
        attempt_timeout: Duration::from_millis(300),
        query_deadline: Duration::from_secs(1),
        force_tcp: true,
        cache_capacity: 0,
        ..ForwarderConfig::default()
    };
    tweak(&mut config);
    Forwarder::new(config).unwrap()
}

#[tokio::test]
async fn force_tcp_sends_udp_clients_queries_over_tcp_and_relays_the_answer() {
    let upstream = TcpUpstream::start(Style::Persistent, 7, Duration::ZERO).await;
    let fwd = forwarder(&[&upstream], |_| {});
    let got = fwd.forward(&query(0x1234, "tcp.example.com"), UDP512).await;
    assert_eq!(got, {
        let mut a = answer(&query(0x1234, "tcp.example.com"), 7);
        a[0..2].copy_from_slice(&0x1234u16.to_be_bytes());
        a
    });
    assert_eq!(TcpUpstream::count(&upstream.udp_datagrams), 0);
    assert_eq!(TcpUpstream::count(&upstream.queries), 1);
    let m = fwd.metrics();
    assert_eq!(
        (m.upstream_udp_queries, m.upstream_tcp_queries),
        (0, 1),
        "{m:?}"
    );
}

#[tokio::test]
async fn without_force_tcp_the_same_upstream_is_asked_over_udp_and_never_answers() {
    let upstream = TcpUpstream::start(Style::Persistent, 7, Duration::ZERO).await;
    let fwd = forwarder(&[&upstream], |c| c.force_tcp = false);
    let got = fwd.forward(&query(1, "udp.example.com"), UDP512).await;
    assert_eq!(rcode(&got), 2, "SERVFAIL: the upstream only speaks TCP");
    assert!(TcpUpstream::count(&upstream.udp_datagrams) >= 1);
    assert_eq!(TcpUpstream::count(&upstream.connections), 0);
}

#[tokio::test]
async fn sequential_queries_reuse_one_connection() {
    let upstream = TcpUpstream::start(Style::Persistent, 7, Duration::ZERO).await;
    let fwd = forwarder(&[&upstream], |_| {});
    for n in 0..10 {
        let got = fwd
            .forward(&query(n, &format!("q{n}.example.com")), UDP512)
            .await;
        assert_eq!((rcode(&got), last_octet(&got)), (0, 7), "query {n}");
    }
    assert_eq!(TcpUpstream::count(&upstream.queries), 10);
    assert_eq!(TcpUpstream::count(&upstream.connections), 1);
    assert_eq!(fwd.metrics().upstream_tcp_connections, 1);
    assert_eq!(fwd.upstreams()[0].idle_tcp_connections, 1);
}

#[tokio::test]
async fn concurrent_queries_open_at_most_the_bound_of_connections() {
    let upstream = TcpUpstream::start(Style::Persistent, 7, Duration::from_millis(40)).await;
    let fwd = Arc::new(forwarder(&[&upstream], |c| {
        c.tcp_connections_per_upstream = 3;
        c.attempt_timeout = Duration::from_secs(2);
        c.query_deadline = Duration::from_secs(2);
    }));
    let tasks: Vec<_> = (0..12u16)
        .map(|n| {
            let fwd = fwd.clone();
            tokio::spawn(async move {
                fwd.forward(&query(n, &format!("c{n}.example.com")), UDP512)
                    .await
            })
        })
        .collect();
    for task in tasks {
        let got = task.await.unwrap();
        assert_eq!((rcode(&got), last_octet(&got)), (0, 7));
    }
    assert_eq!(TcpUpstream::count(&upstream.queries), 12);
    assert!(
        TcpUpstream::count(&upstream.most_open) <= 3,
        "{} connections open at once",
        TcpUpstream::count(&upstream.most_open)
    );
    assert!(TcpUpstream::count(&upstream.connections) <= 3);
    assert!(fwd.upstreams()[0].healthy);
}

#[tokio::test]
async fn a_connection_the_upstream_closed_is_not_reused() {
    let upstream = TcpUpstream::start(Style::OneShot, 7, Duration::ZERO).await;
    let fwd = forwarder(&[&upstream], |_| {});
    for n in 0..5 {
        let got = fwd
            .forward(&query(n, &format!("o{n}.example.com")), UDP512)
            .await;
        assert_eq!((rcode(&got), last_octet(&got)), (0, 7), "query {n}");
        // Let the FIN arrive, as it would between two queries of a real client.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(TcpUpstream::count(&upstream.connections), 5);
    assert_eq!(TcpUpstream::count(&upstream.queries), 5);
    assert!(fwd.upstreams()[0].healthy);
}

#[tokio::test]
async fn a_connection_closed_while_the_query_leaves_is_retried_on_a_new_one() {
    let upstream = TcpUpstream::start(Style::OneShot, 7, Duration::ZERO).await;
    let fwd = forwarder(&[&upstream], |_| {});
    // Back to back: the second query may take the connection before its FIN is seen.
    for n in 0..20 {
        let got = fwd
            .forward(&query(n, &format!("b{n}.example.com")), UDP512)
            .await;
        assert_eq!((rcode(&got), last_octet(&got)), (0, 7), "query {n}");
    }
    assert_eq!(fwd.upstreams()[0].consecutive_failures, 0);
}

#[tokio::test]
async fn idle_connections_expire() {
    let upstream = TcpUpstream::start(Style::Persistent, 7, Duration::ZERO).await;
    let fwd = forwarder(&[&upstream], |c| {
        c.tcp_idle_timeout = Duration::from_millis(100)
    });
    fwd.forward(&query(1, "e1.example.com"), UDP512).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    fwd.forward(&query(2, "e2.example.com"), UDP512).await;
    assert_eq!(TcpUpstream::count(&upstream.connections), 2);
    // The expired one was closed by the forwarder, not left open.
    let deadline = Instant::now() + Duration::from_secs(1);
    while TcpUpstream::count(&upstream.open) > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(TcpUpstream::count(&upstream.open), 1);
}

#[tokio::test]
async fn a_silent_tcp_upstream_times_out_and_the_next_answers_in_order() {
    let silent = TcpUpstream::start(Style::Silent, 7, Duration::ZERO).await;
    let good = TcpUpstream::start(Style::Persistent, 8, Duration::ZERO).await;
    let fwd = forwarder(&[&silent, &good], |_| {});
    let started = Instant::now();
    let got = fwd.forward(&query(1, "s1.example.com"), UDP512).await;
    assert_eq!(last_octet(&got), 8);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(!fwd.upstreams()[0].healthy);
    assert_eq!(fwd.upstreams()[0].timeouts, 1);
    // Held down: the next query goes to the second at once.
    let started = Instant::now();
    fwd.forward(&query(2, "s2.example.com"), UDP512).await;
    assert!(started.elapsed() < Duration::from_millis(150));
    assert_eq!(TcpUpstream::count(&silent.queries), 1);
    assert_eq!(TcpUpstream::count(&good.queries), 2);
}

#[tokio::test]
async fn a_closed_tcp_port_fails_over_at_once() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let good = TcpUpstream::start(Style::Persistent, 8, Duration::ZERO).await;
    let fwd = Forwarder::new(ForwarderConfig {
        upstreams: vec![closed, good.addr],
        force_tcp: true,
        ..ForwarderConfig::default()
    })
    .unwrap();
    let started = Instant::now();
    let got = fwd.forward(&query(1, "closed.example.com"), UDP512).await;
    assert_eq!(last_octet(&got), 8);
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(!fwd.upstreams()[0].healthy);
}

#[test]
fn tcp_settings_are_checked() {
    for (config, setting) in [
        (
            ForwarderConfig {
                tcp_connections_per_upstream: 0,
                ..ForwarderConfig::default()
            },
            "tcp_connections_per_upstream",
        ),
        (
            ForwarderConfig {
                tcp_idle_timeout: Duration::ZERO,
                ..ForwarderConfig::default()
            },
            "tcp_idle_timeout",
        ),
    ] {
        match Forwarder::new(config) {
            Err(ForwardError::InvalidSetting { setting: s, .. }) => assert_eq!(s, setting),
            Ok(_) => panic!("{setting} accepted"),
        }
    }
}
