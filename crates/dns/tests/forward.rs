//! Forwarder behaviour against fake upstream resolvers on 127.0.0.1 ephemeral ports.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use vipd_dns::forward::{
    upstreams_from_resolv_conf, ClientTransport, ForwardError, Forwarder, ForwarderConfig,
    ResolvConfWatch, ResolvConfWatcher, Warning,
};

const UDP512: ClientTransport = ClientTransport::Udp { max_response: 512 };
const TYPE_A: u16 = 1;
const TYPE_TXT: u16 = 16;

// ---- DNS messages, built by hand so every byte is known ----

fn encode_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A query with RD=1; `edns` adds an OPT record with that payload size and DO bit.
fn query(id: u16, name: &str, qtype: u16, edns: Option<(u16, bool)>) -> Vec<u8> {
    let arcount = u16::from(edns.is_some());
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0]);
    q.extend_from_slice(&arcount.to_be_bytes());
    q.extend(encode_name(name));
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    if let Some((size, dnssec_ok)) = edns {
        q.extend_from_slice(&[0, 0, 41]);
        q.extend_from_slice(&size.to_be_bytes());
        q.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
    }
    q
}

fn question_end(msg: &[u8]) -> usize {
    let mut at = 12;
    while msg[at] != 0 {
        at += 1 + usize::from(msg[at]);
    }
    at + 5
}

/// A response to `query`: its ID, RD and question, QR=1 RA=1, `rcode`, then `records` in the
/// answer section, owner compressed to the question name.
fn response(query: &[u8], rcode: u8, records: &[(u16, u32, Vec<u8>)]) -> Vec<u8> {
    let end = question_end(query);
    let mut r = query[..end].to_vec();
    r[2] = 0x80 | (query[2] & 0x01);
    r[3] = 0x80 | rcode;
    r[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
    r[8..12].fill(0);
    for (rtype, ttl, rdata) in records {
        r.extend_from_slice(&[0xc0, 12]);
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(rdata);
    }
    r
}

fn a_record(ttl: u32, last_octet: u8) -> (u16, u32, Vec<u8>) {
    (TYPE_A, ttl, vec![192, 0, 2, last_octet])
}

/// A TXT record of `len` bytes of RDATA (one character-string per 255 bytes).
fn txt_record(ttl: u32, strings: usize) -> (u16, u32, Vec<u8>) {
    let mut rdata = Vec::new();
    for _ in 0..strings {
        rdata.push(200);
        rdata.extend(std::iter::repeat_n(b'x', 200));
    }
    (TYPE_TXT, ttl, rdata)
}

/// NXDOMAIN with an SOA in the authority section.
fn nxdomain(query: &[u8], soa_ttl: u32, minimum: u32) -> Vec<u8> {
    let mut r = response(query, 3, &[]);
    r[8..10].copy_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1]);
    r.extend_from_slice(&soa_ttl.to_be_bytes());
    r.extend_from_slice(&24u16.to_be_bytes());
    r.extend_from_slice(&[0xc0, 12, 0xc0, 12]);
    for field in [1u32, 7200, 3600, 1_209_600, minimum] {
        r.extend_from_slice(&field.to_be_bytes());
    }
    r
}

fn id(msg: &[u8]) -> u16 {
    u16::from_be_bytes([msg[0], msg[1]])
}

fn rcode(msg: &[u8]) -> u8 {
    msg[3] & 0x0f
}

fn answer_ttls(msg: &[u8]) -> Vec<u32> {
    // Records built by `response`: 2-byte pointer owner, so TTL sits 6 bytes into each.
    let mut at = question_end(msg);
    let mut ttls = Vec::new();
    let records = u16::from_be_bytes([msg[6], msg[7]]) + u16::from_be_bytes([msg[8], msg[9]]);
    for _ in 0..records {
        ttls.push(u32::from_be_bytes([
            msg[at + 6],
            msg[at + 7],
            msg[at + 8],
            msg[at + 9],
        ]));
        let rdlen = usize::from(u16::from_be_bytes([msg[at + 10], msg[at + 11]]));
        at += 12 + rdlen;
    }
    ttls
}

// ---- fake upstreams ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Udp,
    Tcp,
}

/// Given a query as the upstream received it, how and from where, the datagrams to send back
/// (none: stay silent).
type Behaviour = Arc<dyn Fn(&[u8], Proto, SocketAddr) -> Vec<Vec<u8>> + Send + Sync>;

/// A fake resolver on 127.0.0.1 (UDP and TCP on one port) that records what it receives.
/// Its tasks are aborted when it is dropped, even if the test fails.
struct FakeUpstream {
    addr: SocketAddr,
    udp_queries: Arc<AtomicUsize>,
    tcp_queries: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl FakeUpstream {
    async fn start(
        behaviour: impl Fn(&[u8], Proto) -> Vec<Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        Self::start_seeing_source(move |q, proto, _| behaviour(q, proto)).await
    }

    async fn start_seeing_source(
        behaviour: impl Fn(&[u8], Proto, SocketAddr) -> Vec<Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        let behaviour: Behaviour = Arc::new(behaviour);
        let (udp, tcp) = bind_pair().await;
        let addr = udp.local_addr().unwrap();
        let udp = Arc::new(udp);
        let udp_queries = Arc::new(AtomicUsize::new(0));
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let udp_task = {
            let (behaviour, count, received) =
                (behaviour.clone(), udp_queries.clone(), received.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65535];
                while let Ok((len, from)) = udp.recv_from(&mut buf).await {
                    count.fetch_add(1, Ordering::SeqCst);
                    received.lock().unwrap().push(buf[..len].to_vec());
                    for datagram in behaviour(&buf[..len], Proto::Udp, from) {
                        let _ = udp.send_to(&datagram, from).await;
                    }
                }
            })
        };
        let tcp_task = {
            let (behaviour, count) = (behaviour.clone(), tcp_queries.clone());
            tokio::spawn(async move {
                while let Ok((mut stream, from)) = tcp.accept().await {
                    let mut prefix = [0u8; 2];
                    if stream.read_exact(&mut prefix).await.is_err() {
                        continue;
                    }
                    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
                    if stream.read_exact(&mut msg).await.is_err() {
                        continue;
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    if let Some(reply) = behaviour(&msg, Proto::Tcp, from).into_iter().next() {
                        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&reply);
                        let _ = stream.write_all(&framed).await;
                    }
                }
            })
        };
        Self {
            addr,
            udp_queries,
            tcp_queries,
            received,
            tasks: vec![udp_task, tcp_task],
        }
    }

    /// Receives and counts queries, never answers.
    async fn silent() -> Self {
        Self::start(|_, _| Vec::new()).await
    }

    /// Answers every query with `rcode` and the given records.
    async fn answering(rcode: u8, records: Vec<(u16, u32, Vec<u8>)>) -> Self {
        Self::start(move |q, _| vec![response(q, rcode, &records)]).await
    }

    fn udp(&self) -> usize {
        self.udp_queries.load(Ordering::SeqCst)
    }

    fn tcp(&self) -> usize {
        self.tcp_queries.load(Ordering::SeqCst)
    }
}

async fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()).await {
            return (udp, tcp);
        }
    }
    panic!("no free port with both UDP and TCP on 127.0.0.1 after 50 tries");
}

fn forwarder(upstreams: &[&FakeUpstream], tweak: impl FnOnce(&mut ForwarderConfig)) -> Forwarder {
    let mut config = ForwarderConfig {
        upstreams: upstreams.iter().map(|u| u.addr).collect(),
        attempt_timeout: Duration::from_millis(300),
        query_deadline: Duration::from_secs(1),
        ..ForwarderConfig::default()
    };
    tweak(&mut config);
    Forwarder::new(config).unwrap()
}

// ---- relaying ----

#[tokio::test]
async fn answer_is_relayed_byte_for_byte_with_the_client_id() {
    let upstream =
        FakeUpstream::answering(0, vec![a_record(20, 1), a_record(25, 2), txt_record(10, 1)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    let client_query = query(0xbeef, "www.example.com", TYPE_A, None);
    let got = fwd.forward(&client_query, ClientTransport::Tcp).await;
    let sent = upstream.received.lock().unwrap()[0].clone();
    let upstream_answer = response(
        &sent,
        0,
        &[a_record(20, 1), a_record(25, 2), txt_record(10, 1)],
    );
    assert_eq!(id(&got), 0xbeef);
    assert_eq!(got[2..], upstream_answer[2..]);
}

#[tokio::test]
async fn query_goes_upstream_unchanged_apart_from_the_id() {
    let upstream = FakeUpstream::answering(0, vec![a_record(20, 1)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    let client_query = query(0x0102, "WwW.Example.COM", TYPE_A, None);
    fwd.forward(&client_query, UDP512).await;
    let sent = upstream.received.lock().unwrap()[0].clone();
    assert_eq!(sent[2..], client_query[2..]);
}

#[tokio::test]
async fn query_without_recursion_desired_is_relayed_with_rd_clear() {
    let upstream = FakeUpstream::answering(0, vec![a_record(20, 1)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    let mut client_query = query(7, "norecurse.example.com", TYPE_A, None);
    client_query[2] = 0x00;
    let got = fwd.forward(&client_query, UDP512).await;
    assert_eq!(upstream.received.lock().unwrap()[0][2], 0x00);
    assert_eq!(got[2], 0x80);
    assert_eq!(rcode(&got), 0);
}

#[tokio::test]
async fn edns_payload_size_sent_upstream_is_clamped_to_the_udp_client_limit() {
    let upstream = FakeUpstream::answering(0, vec![a_record(20, 1)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    fwd.forward(
        &query(9, "edns.example.com", TYPE_A, Some((4096, false))),
        UDP512,
    )
    .await;
    let sent = upstream.received.lock().unwrap()[0].clone();
    let opt_class = question_end(&sent) + 3;
    assert_eq!(
        u16::from_be_bytes([sent[opt_class], sent[opt_class + 1]]),
        512
    );
}

// ---- sequential failover ----

#[tokio::test]
async fn timeout_of_the_first_upstream_fails_over_to_the_second() {
    let dead = FakeUpstream::silent().await;
    let good = FakeUpstream::answering(0, vec![a_record(20, 4)]).await;
    let fwd = forwarder(&[&dead, &good], |_| {});
    let got = fwd
        .forward(&query(1, "a.example.com", TYPE_A, None), UDP512)
        .await;
    assert_eq!(rcode(&got), 0);
    assert_eq!(got[got.len() - 4..], [192, 0, 2, 4]);
    assert_eq!((dead.udp(), good.udp()), (1, 1));
    let status = fwd.upstreams();
    assert_eq!((status[0].timeouts, status[0].healthy), (1, false));
    assert_eq!((status[1].failures, status[1].healthy), (0, true));
}

#[tokio::test]
async fn servfail_from_the_first_upstream_fails_over_to_the_second() {
    let failing = FakeUpstream::answering(2, vec![]).await;
    let good = FakeUpstream::answering(0, vec![a_record(20, 5)]).await;
    let fwd = forwarder(&[&failing, &good], |_| {});
    let got = fwd
        .forward(&query(1, "b.example.com", TYPE_A, None), UDP512)
        .await;
    assert_eq!(rcode(&got), 0);
    assert_eq!(got[got.len() - 4..], [192, 0, 2, 5]);
    assert_eq!((failing.udp(), good.udp()), (1, 1));
    // SERVFAIL is about the name, not the server: it stays first in line.
    assert!(fwd.upstreams()[0].healthy);
}

#[tokio::test]
async fn refused_from_the_first_upstream_fails_over_to_the_second() {
    let refusing = FakeUpstream::answering(5, vec![]).await;
    let good = FakeUpstream::answering(0, vec![a_record(20, 6)]).await;
    let fwd = forwarder(&[&refusing, &good], |_| {});
    let got = fwd
        .forward(&query(1, "c.example.com", TYPE_A, None), UDP512)
        .await;
    assert_eq!(rcode(&got), 0);
    assert_eq!((refusing.udp(), good.udp()), (1, 1));
    assert_eq!(fwd.upstreams()[0].failures, 1);
}

#[tokio::test]
async fn nxdomain_is_an_answer_not_a_failure() {
    let first = FakeUpstream::start(|q, _| vec![nxdomain(q, 60, 60)]).await;
    let second = FakeUpstream::answering(0, vec![a_record(20, 6)]).await;
    let fwd = forwarder(&[&first, &second], |_| {});
    let got = fwd
        .forward(&query(1, "nope.example.com", TYPE_A, None), UDP512)
        .await;
    assert_eq!(rcode(&got), 3);
    assert_eq!(second.udp(), 0);
}

#[tokio::test]
async fn dead_first_upstream_is_not_waited_on_for_every_query() {
    let dead = FakeUpstream::silent().await;
    let good = FakeUpstream::answering(0, vec![a_record(20, 7)]).await;
    let fwd = forwarder(&[&dead, &good], |_| {});
    let first = Instant::now();
    fwd.forward(&query(1, "q0.example.com", TYPE_A, None), UDP512)
        .await;
    assert!(first.elapsed() >= Duration::from_millis(300));
    for n in 1..=5 {
        let started = Instant::now();
        let got = fwd
            .forward(
                &query(1, &format!("q{n}.example.com"), TYPE_A, None),
                UDP512,
            )
            .await;
        assert_eq!(rcode(&got), 0);
        assert!(
            started.elapsed() < Duration::from_millis(150),
            "query {n} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!((dead.udp(), good.udp()), (1, 6));
}

#[tokio::test]
async fn held_down_upstream_is_probed_again_after_the_hold_and_recovers() {
    let flaky_answers = Arc::new(AtomicUsize::new(0));
    let answers = flaky_answers.clone();
    // Silent for its first query, answering afterwards.
    let flaky = FakeUpstream::start(move |q, _| {
        if answers.fetch_add(1, Ordering::SeqCst) == 0 {
            Vec::new()
        } else {
            vec![response(q, 0, &[a_record(20, 8)])]
        }
    })
    .await;
    let good = FakeUpstream::answering(0, vec![a_record(20, 9)]).await;
    let fwd = forwarder(&[&flaky, &good], |c| {
        c.unhealthy_hold = Duration::from_millis(400)
    });
    fwd.forward(&query(1, "p0.example.com", TYPE_A, None), UDP512)
        .await;
    fwd.forward(&query(1, "p1.example.com", TYPE_A, None), UDP512)
        .await;
    assert_eq!((flaky.udp(), good.udp()), (1, 2));
    tokio::time::sleep(Duration::from_millis(450)).await;
    let got = fwd
        .forward(&query(1, "p2.example.com", TYPE_A, None), UDP512)
        .await;
    assert_eq!(got[got.len() - 4..], [192, 0, 2, 8]);
    assert_eq!(flaky.udp(), 2);
    assert!(fwd.upstreams()[0].healthy);
    assert_eq!(fwd.upstreams()[0].consecutive_failures, 0);
}

#[tokio::test]
async fn every_upstream_dead_gives_servfail_within_the_deadline() {
    let dead1 = FakeUpstream::silent().await;
    let dead2 = FakeUpstream::silent().await;
    let fwd = forwarder(&[&dead1, &dead2], |c| {
        c.attempt_timeout = Duration::from_millis(200);
        c.query_deadline = Duration::from_millis(300);
    });
    let client_query = query(0x4242, "dead.example.com", TYPE_A, None);
    let started = Instant::now();
    let got = fwd.forward(&client_query, UDP512).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(450),
        "{elapsed:?}"
    );
    let mut expected = client_query.clone();
    expected[2] = 0x81;
    expected[3] = 0x82;
    assert_eq!(got, expected);
    assert_eq!(fwd.metrics().servfail_produced, 1);
}

#[tokio::test]
async fn closed_upstream_port_fails_over_without_waiting_for_the_timeout() {
    let closed = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap()
    };
    let good = FakeUpstream::answering(0, vec![a_record(20, 10)]).await;
    let fwd = Forwarder::new(ForwarderConfig {
        upstreams: vec![closed, good.addr],
        ..ForwarderConfig::default()
    })
    .unwrap();
    let started = Instant::now();
    let got = fwd
        .forward(&query(1, "closed.example.com", TYPE_A, None), UDP512)
        .await;
    assert_eq!(rcode(&got), 0);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fwd.upstreams()[0].timeouts, 0);
}

#[tokio::test]
async fn no_upstream_gives_servfail_at_once() {
    let fwd = Forwarder::new(ForwarderConfig::default()).unwrap();
    let started = Instant::now();
    let got = fwd
        .forward(&query(3, "x.example.com", TYPE_A, None), UDP512)
        .await;
    assert!(started.elapsed() < Duration::from_millis(50));
    assert_eq!(rcode(&got), 2);
    assert_eq!(id(&got), 3);
}

// ---- truncation ----

#[tokio::test]
async fn truncated_upstream_answer_is_retried_over_tcp_for_a_tcp_client() {
    let full = Arc::new(Mutex::new(Vec::new()));
    let full_seen = full.clone();
    let upstream = FakeUpstream::start(move |q, proto| match proto {
        Proto::Udp => {
            let mut r = response(q, 0, &[]);
            r[2] |= 0x02;
            vec![r]
        }
        Proto::Tcp => {
            let r = response(q, 0, &[txt_record(20, 4)]);
            *full_seen.lock().unwrap() = r.clone();
            vec![r]
        }
    })
    .await;
    let fwd = forwarder(&[&upstream], |_| {});
    let got = fwd
        .forward(
            &query(0x0a0a, "big.example.com", TYPE_TXT, None),
            ClientTransport::Tcp,
        )
        .await;
    assert_eq!((upstream.udp(), upstream.tcp()), (1, 1));
    assert_eq!(id(&got), 0x0a0a);
    assert_eq!(got[2..], full.lock().unwrap()[2..]);
}

#[tokio::test]
async fn truncated_upstream_answer_reaches_a_udp_client_as_tc_without_tcp() {
    let upstream = FakeUpstream::start(|q, _| {
        let mut r = response(q, 0, &[txt_record(20, 2)]);
        r[2] |= 0x02;
        vec![r]
    })
    .await;
    let fwd = forwarder(&[&upstream], |_| {});
    let client_query = query(0x0b0b, "big.example.com", TYPE_TXT, None);
    let got = fwd.forward(&client_query, UDP512).await;
    let mut expected = client_query.clone();
    expected[2] = 0x83;
    expected[3] = 0x80;
    assert_eq!(got, expected);
    assert_eq!(upstream.tcp(), 0);
}

#[tokio::test]
async fn large_answer_to_a_udp_client_is_cut_to_header_and_question_with_tc() {
    let upstream = FakeUpstream::answering(0, vec![txt_record(20, 3)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    let client_query = query(0x0c0c, "big.example.com", TYPE_TXT, None);
    let got = fwd.forward(&client_query, UDP512).await;
    let mut expected = client_query.clone();
    expected[2] = 0x83;
    expected[3] = 0x80;
    assert_eq!(got, expected);
    assert_eq!(fwd.metrics().truncated_for_client, 1);
}

#[tokio::test]
async fn answer_of_exactly_512_bytes_is_not_truncated() {
    let client_query = query(1, "fit.example.com", TYPE_TXT, None);
    // Header+question 33 bytes, record header 12: RDATA of 467 makes 512.
    let rdata: Vec<u8> = std::iter::once(255u8)
        .chain(std::iter::repeat_n(b'y', 255))
        .chain(std::iter::once(210u8))
        .chain(std::iter::repeat_n(b'z', 210))
        .collect();
    assert_eq!(rdata.len(), 467);
    let upstream = FakeUpstream::answering(0, vec![(TYPE_TXT, 20, rdata)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    let got = fwd.forward(&client_query, UDP512).await;
    assert_eq!(got.len(), 512);
    assert_eq!(got[2] & 0x02, 0);
}

#[tokio::test]
async fn tcp_client_gets_the_full_large_answer() {
    let upstream = FakeUpstream::answering(0, vec![txt_record(20, 3)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    let got = fwd
        .forward(
            &query(1, "big.example.com", TYPE_TXT, None),
            ClientTransport::Tcp,
        )
        .await;
    assert_eq!(got.len(), 33 + 12 + 603);
    assert_eq!(got[2] & 0x02, 0);
    assert_eq!(answer_ttls(&got), vec![20]);
}

#[tokio::test]
async fn cached_large_answer_is_still_cut_for_a_udp_client() {
    let upstream = FakeUpstream::answering(0, vec![txt_record(20, 3)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    fwd.forward(
        &query(1, "big.example.com", TYPE_TXT, None),
        ClientTransport::Tcp,
    )
    .await;
    let got = fwd
        .forward(&query(2, "big.example.com", TYPE_TXT, None), UDP512)
        .await;
    assert_eq!(got.len(), 33);
    assert_eq!(got[2] & 0x02, 0x02);
    assert_eq!(upstream.udp(), 1);
}

// ---- cache ----

#[tokio::test]
async fn cache_hit_is_served_without_the_upstream_and_ttl_is_capped_at_30() {
    let upstream = FakeUpstream::answering(0, vec![a_record(300, 11), a_record(3600, 12)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    let first = fwd
        .forward(&query(1, "cached.example.com", TYPE_A, None), UDP512)
        .await;
    let second = fwd
        .forward(&query(2, "cached.example.com", TYPE_A, None), UDP512)
        .await;
    assert_eq!(upstream.udp(), 1);
    assert_eq!(answer_ttls(&first), vec![30, 30]);
    assert_eq!(answer_ttls(&second), vec![30, 30]);
    assert_eq!(id(&second), 2);
    assert_eq!(first[2..], second[2..]);
    let metrics = fwd.metrics();
    assert_eq!((metrics.cache_hits, metrics.cache_misses), (1, 1));
}

#[tokio::test]
async fn cached_without_waiting_gives_what_forward_gives_and_counts_only_hits() {
    let upstream = FakeUpstream::answering(0, vec![a_record(300, 11)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    let mut mixed_case = query(7, "SyNc.example.com", TYPE_A, None);
    mixed_case[2] = 0x00; // RD clear
                          // Not cached yet: None, and nothing counted (the caller then calls forward, which counts).
    assert_eq!(fwd.cached(&mixed_case, UDP512), None);
    assert_eq!(fwd.metrics().queries, 0);
    fwd.forward(&query(1, "sync.example.com", TYPE_A, None), UDP512)
        .await;

    let fast = fwd.cached(&mixed_case, UDP512).unwrap();
    let slow = fwd.forward(&mixed_case, UDP512).await;
    assert_eq!(fast, slow);
    assert_eq!(id(&fast), 7);
    assert_eq!(fast[2], 0x80, "RD copied from the query");
    assert_eq!(
        fast[12..question_end(&fast)],
        mixed_case[12..question_end(&mixed_case)]
    );
    let metrics = fwd.metrics();
    assert_eq!(
        (metrics.queries, metrics.cache_hits, metrics.cache_misses),
        (3, 2, 1)
    );
    assert_eq!(upstream.udp(), 1);

    // Never an answer for what forward answers itself: a response, a short message, another
    // opcode, a malformed question.
    let mut response = query(8, "sync.example.com", TYPE_A, None);
    response[2] |= 0x80;
    let mut notify = query(9, "sync.example.com", TYPE_A, None);
    notify[2] = (notify[2] & 0x87) | (4 << 3);
    let truncated = query(10, "sync.example.com", TYPE_A, None)[..20].to_vec();
    for message in [response, notify, truncated, vec![0u8; 5]] {
        assert_eq!(fwd.cached(&message, UDP512), None, "{message:?}");
    }
    assert_eq!(fwd.metrics().queries, 3);
}

#[tokio::test]
async fn cached_into_writes_what_cached_gives_and_leaves_cuts_to_forward() {
    let upstream = FakeUpstream::answering(0, vec![a_record(300, 11)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    let mut mixed_case = query(7, "InTo.example.com", TYPE_A, None);
    mixed_case[2] = 0x00; // RD clear
    let mut out = [0u8; 4096];
    assert_eq!(fwd.cached_into(&mixed_case, UDP512, &mut out), None);
    assert_eq!(fwd.metrics().queries, 0);
    fwd.forward(&query(1, "into.example.com", TYPE_A, None), UDP512)
        .await;

    let n = fwd.cached_into(&mixed_case, UDP512, &mut out).unwrap();
    assert_eq!(out[..n], fwd.cached(&mixed_case, UDP512).unwrap()[..]);
    assert_eq!(id(&out[..n]), 7);
    let metrics = fwd.metrics();
    assert_eq!((metrics.queries, metrics.cache_hits), (3, 2));
    // No room in the caller's buffer: None, nothing counted (forward serves it).
    assert_eq!(
        fwd.cached_into(&mixed_case, UDP512, &mut out[..n - 1]),
        None
    );
    for message in [
        vec![0u8; 5],
        query(8, "into.example.com", TYPE_A, None)[..20].to_vec(),
    ] {
        assert_eq!(fwd.cached_into(&message, UDP512, &mut out), None);
    }
    assert_eq!(fwd.metrics().queries, 3);
}

#[tokio::test]
async fn cached_into_leaves_an_answer_too_large_for_the_udp_client_to_forward() {
    let upstream = FakeUpstream::answering(0, vec![txt_record(20, 3)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    fwd.forward(
        &query(1, "big.example.com", TYPE_TXT, None),
        ClientTransport::Tcp,
    )
    .await;
    let big = query(2, "big.example.com", TYPE_TXT, None);
    let mut out = [0u8; 4096];
    assert_eq!(fwd.cached_into(&big, UDP512, &mut out), None);
    assert_eq!(fwd.metrics().cache_hits, 0);
    let n = fwd
        .cached_into(&big, ClientTransport::Tcp, &mut out)
        .unwrap();
    assert_eq!(n, 33 + 12 + 603);
    assert_eq!(fwd.forward(&big, UDP512).await.len(), 33);
}

#[tokio::test]
async fn cached_ttls_are_decremented_by_their_age() {
    let upstream = FakeUpstream::answering(0, vec![a_record(300, 11), a_record(5, 12)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    fwd.forward(&query(1, "aging.example.com", TYPE_A, None), UDP512)
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let got = fwd
        .forward(&query(2, "aging.example.com", TYPE_A, None), UDP512)
        .await;
    assert_eq!(answer_ttls(&got), vec![29, 4]);
    assert_eq!(upstream.udp(), 1);
}

#[tokio::test]
async fn cache_entry_expires_after_its_smallest_ttl() {
    let upstream = FakeUpstream::answering(0, vec![a_record(1, 13)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    fwd.forward(&query(1, "short.example.com", TYPE_A, None), UDP512)
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    fwd.forward(&query(2, "short.example.com", TYPE_A, None), UDP512)
        .await;
    assert_eq!(upstream.udp(), 2);
}

#[tokio::test]
async fn cache_hit_keeps_the_clients_letter_case_and_rd_bit() {
    let upstream = FakeUpstream::answering(0, vec![a_record(20, 14)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    fwd.forward(&query(1, "case.example.com", TYPE_A, None), UDP512)
        .await;
    let mut second_query = query(2, "CaSe.ExAmPlE.cOm", TYPE_A, None);
    second_query[2] = 0x00;
    let got = fwd.forward(&second_query, UDP512).await;
    assert_eq!(upstream.udp(), 1);
    assert_eq!(
        got[12..question_end(&got)],
        second_query[12..question_end(&second_query)]
    );
    assert_eq!(got[2], 0x80);
}

#[tokio::test]
async fn dnssec_ok_queries_do_not_share_cache_entries_with_plain_ones() {
    let upstream = FakeUpstream::answering(0, vec![a_record(20, 15)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    fwd.forward(
        &query(1, "do.example.com", TYPE_A, Some((1232, false))),
        UDP512,
    )
    .await;
    fwd.forward(
        &query(2, "do.example.com", TYPE_A, Some((1232, true))),
        UDP512,
    )
    .await;
    assert_eq!(upstream.udp(), 2);
}

#[tokio::test]
async fn queries_with_and_without_edns_do_not_share_cache_entries() {
    let upstream = FakeUpstream::answering(0, vec![a_record(20, 15)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    fwd.forward(
        &query(1, "edns.example.com", TYPE_A, Some((1232, false))),
        UDP512,
    )
    .await;
    fwd.forward(&query(2, "edns.example.com", TYPE_A, None), UDP512)
        .await;
    assert_eq!(upstream.udp(), 2);
}

#[tokio::test]
async fn nxdomain_is_cached_for_the_soa_negative_ttl_capped_at_30() {
    let upstream = FakeUpstream::start(|q, _| vec![nxdomain(q, 3600, 60)]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    let first = fwd
        .forward(&query(1, "missing.example.com", TYPE_A, None), UDP512)
        .await;
    let second = fwd
        .forward(&query(2, "missing.example.com", TYPE_A, None), UDP512)
        .await;
    assert_eq!(upstream.udp(), 1);
    assert_eq!(rcode(&second), 3);
    assert_eq!(answer_ttls(&first), vec![30]);
    assert_eq!(answer_ttls(&second), vec![30]);
}

#[tokio::test]
async fn nodata_without_soa_is_not_cached() {
    let upstream = FakeUpstream::answering(0, vec![]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    fwd.forward(&query(1, "nodata.example.com", TYPE_A, None), UDP512)
        .await;
    fwd.forward(&query(2, "nodata.example.com", TYPE_A, None), UDP512)
        .await;
    assert_eq!(upstream.udp(), 2);
}

#[tokio::test]
async fn servfail_answers_are_not_cached() {
    let upstream = FakeUpstream::answering(2, vec![]).await;
    let fwd = forwarder(&[&upstream], |_| {});
    let got = fwd
        .forward(&query(1, "sf.example.com", TYPE_A, None), UDP512)
        .await;
    fwd.forward(&query(2, "sf.example.com", TYPE_A, None), UDP512)
        .await;
    assert_eq!(rcode(&got), 2);
    assert_eq!(upstream.udp(), 2);
    // The upstream's own SERVFAIL was relayed, not one of ours.
    assert_eq!(fwd.metrics().servfail_produced, 0);
}

// ---- limits and defences ----

#[tokio::test]
async fn queries_over_the_in_flight_bound_get_servfail_at_once() {
    let dead = FakeUpstream::silent().await;
    let fwd = Arc::new(forwarder(&[&dead], |c| {
        c.max_in_flight = 2;
        c.attempt_timeout = Duration::from_secs(1);
    }));
    let waiting: Vec<_> = (0..2)
        .map(|n| {
            let fwd = fwd.clone();
            tokio::spawn(async move {
                fwd.forward(
                    &query(n, &format!("w{n}.example.com"), TYPE_A, None),
                    UDP512,
                )
                .await
            })
        })
        .collect();
    let started = Instant::now();
    while dead.udp() < 2 && started.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(dead.udp(), 2);
    let rejected_at = Instant::now();
    let got = fwd
        .forward(&query(9, "over.example.com", TYPE_A, None), UDP512)
        .await;
    assert!(rejected_at.elapsed() < Duration::from_millis(50));
    assert_eq!((id(&got), rcode(&got)), (9, 2));
    assert_eq!(fwd.metrics().rejected_in_flight, 1);
    assert_eq!(dead.udp(), 2);
    for task in waiting {
        task.abort();
    }
}

#[tokio::test]
async fn mismatched_answers_are_dropped_and_counted_and_the_real_one_accepted() {
    let upstream = FakeUpstream::start(|q, _| {
        let mut wrong_id = response(q, 0, &[a_record(20, 66)]);
        wrong_id[0] ^= 0x01;
        let other = query(id(q), "evil.example.net", TYPE_A, None);
        let wrong_question = response(&other, 0, &[a_record(20, 66)]);
        vec![
            wrong_id,
            wrong_question,
            response(q, 0, &[a_record(20, 16)]),
        ]
    })
    .await;
    let fwd = forwarder(&[&upstream], |_| {});
    let got = fwd
        .forward(&query(1, "real.example.com", TYPE_A, None), UDP512)
        .await;
    assert_eq!(got[got.len() - 4..], [192, 0, 2, 16]);
    // Datagrams are delivered in order on loopback, but the two bad ones may still be in the
    // receive task when forward returns: wait for them to be counted.
    let started = Instant::now();
    while fwd.metrics().unmatched_responses < 2 && started.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(fwd.metrics().unmatched_responses, 2);
}

#[tokio::test]
async fn answer_from_another_source_port_never_reaches_the_query() {
    let spoofer = Arc::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
    let upstream = FakeUpstream::start_seeing_source(move |q, _, from| {
        // The spoofer knows the query's ID, question and source port, but sends from another
        // port; the genuine answer goes out after this closure returns, so the forgery is first.
        spoofer
            .send_to(&response(q, 0, &[a_record(20, 66)]), from)
            .unwrap();
        vec![response(q, 0, &[a_record(20, 17)])]
    })
    .await;
    let fwd = forwarder(&[&upstream], |_| {});
    let got = fwd
        .forward(&query(2, "spoofed.example.com", TYPE_A, None), UDP512)
        .await;
    assert_eq!(got[got.len() - 4..], [192, 0, 2, 17]);
}

#[tokio::test]
async fn message_that_is_a_response_is_dropped() {
    let fwd = Forwarder::new(ForwarderConfig::default()).unwrap();
    let mut msg = query(1, "loop.example.com", TYPE_A, None);
    msg[2] |= 0x80;
    assert_eq!(fwd.forward(&msg, UDP512).await, Vec::<u8>::new());
    assert_eq!(fwd.forward(&[0, 1, 2], UDP512).await, Vec::<u8>::new());
    assert_eq!(fwd.metrics().malformed_queries, 2);
}

#[tokio::test]
async fn query_with_two_questions_gets_formerr() {
    let fwd = Forwarder::new(ForwarderConfig::default()).unwrap();
    let mut msg = query(0x0d0d, "two.example.com", TYPE_A, None);
    msg[5] = 2;
    assert_eq!(
        fwd.forward(&msg, UDP512).await,
        vec![0x0d, 0x0d, 0x81, 0x81, 0, 0, 0, 0, 0, 0, 0, 0]
    );
}

#[tokio::test]
async fn notify_opcode_gets_notimp() {
    let fwd = Forwarder::new(ForwarderConfig::default()).unwrap();
    let mut msg = query(5, "zone.example.com", 6, None);
    msg[2] = 4 << 3;
    let got = fwd.forward(&msg, UDP512).await;
    assert_eq!((got[2], rcode(&got)), (0x80 | (4 << 3), 4));
}

#[test]
fn config_with_zero_attempt_timeout_is_rejected_naming_the_setting() {
    let result = Forwarder::new(ForwarderConfig {
        attempt_timeout: Duration::ZERO,
        ..ForwarderConfig::default()
    });
    assert_eq!(
        result.err(),
        Some(ForwardError::InvalidSetting {
            setting: "attempt_timeout",
            value: "0ns".to_string(),
            expected: "more than zero"
        })
    );
}

// ---- resolv.conf ----

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn resolv_conf_nameservers_come_in_file_order_on_port_53() {
    let text = "# NetworkManager\nsearch cluster.example.com example.com\noptions ndots:2 timeout:1\n\
                nameserver 192.0.2.10\nnameserver 2001:db8::53\n; nameserver 192.0.2.99\nnameserver 198.51.100.7\n";
    let (upstreams, warnings) = upstreams_from_resolv_conf(text, &[]);
    assert_eq!(
        upstreams,
        vec![
            sock("192.0.2.10:53"),
            sock("[2001:db8::53]:53"),
            sock("198.51.100.7:53")
        ]
    );
    assert_eq!(warnings, vec![]);
}

#[test]
fn resolv_conf_excludes_this_node_loopback_and_vips_with_a_warning_each() {
    let node: IpAddr = "192.0.2.20".parse().unwrap();
    let vip: IpAddr = "192.0.2.5".parse().unwrap();
    let text = "nameserver 192.0.2.20\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.5\nnameserver 192.0.2.1\n";
    let (upstreams, warnings) = upstreams_from_resolv_conf(text, &[node, vip]);
    assert_eq!(upstreams, vec![sock("192.0.2.1:53")]);
    assert_eq!(
        warnings,
        vec![
            Warning::Excluded {
                line: 1,
                addr: node,
                reason: "address of this node or a VIP"
            },
            Warning::Excluded {
                line: 2,
                addr: "127.0.0.53".parse().unwrap(),
                reason: "loopback (this host)"
            },
            Warning::Excluded {
                line: 3,
                addr: "::1".parse().unwrap(),
                reason: "loopback (this host)"
            },
            Warning::Excluded {
                line: 4,
                addr: vip,
                reason: "address of this node or a VIP"
            },
        ]
    );
}

#[test]
fn resolv_conf_ipv6_link_local_keeps_its_zone_as_scope_id() {
    let lo_index: u32 = std::fs::read_to_string("/sys/class/net/lo/ifindex")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (upstreams, warnings) = upstreams_from_resolv_conf(
        "nameserver fe80::1%lo\nnameserver fe80::2%3\nnameserver fe80::3%nosuchif0\n",
        &[],
    );
    assert_eq!(
        upstreams,
        vec![
            SocketAddr::V6(SocketAddrV6::new(
                "fe80::1".parse().unwrap(),
                53,
                0,
                lo_index
            )),
            SocketAddr::V6(SocketAddrV6::new("fe80::2".parse().unwrap(), 53, 0, 3)),
        ]
    );
    assert_eq!(
        warnings,
        vec![Warning::UnknownZone {
            line: 3,
            zone: "nosuchif0".to_string()
        }]
    );
}

#[test]
fn resolv_conf_without_usable_nameserver_warns_no_upstream() {
    assert_eq!(
        upstreams_from_resolv_conf("", &[]),
        (vec![], vec![Warning::NoUpstream])
    );
    let (upstreams, warnings) =
        upstreams_from_resolv_conf("nameserver\nnameserver dns.example.com\n", &[]);
    assert_eq!(upstreams, vec![]);
    assert_eq!(
        warnings,
        vec![
            Warning::Unparsable {
                line: 1,
                value: String::new()
            },
            Warning::Unparsable {
                line: 2,
                value: "dns.example.com".to_string()
            },
            Warning::NoUpstream,
        ]
    );
}

#[test]
fn resolv_conf_duplicate_nameserver_is_listed_once() {
    let (upstreams, warnings) =
        upstreams_from_resolv_conf("nameserver 192.0.2.1\nnameserver 192.0.2.1\n", &[]);
    assert_eq!(upstreams, vec![sock("192.0.2.1:53")]);
    assert_eq!(
        warnings,
        vec![Warning::Duplicate {
            line: 2,
            addr: "192.0.2.1".parse().unwrap()
        }]
    );
}

#[test]
fn resolv_conf_does_not_cap_the_number_of_nameservers() {
    let text: String = (1..=5)
        .map(|n| format!("nameserver 192.0.2.{n}\n"))
        .collect();
    let (upstreams, warnings) = upstreams_from_resolv_conf(&text, &[]);
    assert_eq!(upstreams.len(), 5);
    assert_eq!(warnings, vec![]);
}

/// A temporary resolv.conf, removed when the test ends however it ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn wait_for_upstreams(
    fwd: &Forwarder,
    expected: &[SocketAddr],
    within: Duration,
) -> Duration {
    let started = Instant::now();
    while started.elapsed() < within {
        let current: Vec<SocketAddr> = fwd.upstreams().iter().map(|u| u.addr).collect();
        if current == expected {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "upstreams still {:?} after {within:?}, expected {expected:?}",
        fwd.upstreams()
    );
}

#[tokio::test]
async fn watcher_applies_a_rewritten_resolv_conf_within_two_seconds() {
    let file = TempFile(std::env::temp_dir().join(format!(
        "vipd-forward-test-{}-resolv.conf",
        std::process::id()
    )));
    std::fs::write(&file.0, "nameserver 192.0.2.1\n").unwrap();
    let fwd = Arc::new(Forwarder::new(ForwarderConfig::default()).unwrap());
    let node: IpAddr = "192.0.2.30".parse().unwrap();
    let _watcher = ResolvConfWatcher::spawn(fwd.clone(), ResolvConfWatch::new(&file.0, vec![node]));
    wait_for_upstreams(&fwd, &[sock("192.0.2.1:53")], Duration::from_secs(1)).await;
    std::fs::write(
        &file.0,
        "nameserver 192.0.2.30\nnameserver 198.51.100.1\nnameserver 192.0.2.2\n",
    )
    .unwrap();
    let took = wait_for_upstreams(
        &fwd,
        &[sock("198.51.100.1:53"), sock("192.0.2.2:53")],
        Duration::from_secs(2),
    )
    .await;
    assert!(took <= Duration::from_millis(1200), "{took:?}");
}
