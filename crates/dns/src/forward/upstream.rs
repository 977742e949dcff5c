//! One upstream resolver: a few long-lived connected UDP sockets with an in-flight table keyed
//! by query ID, a pool of TCP connections (`forward::tcp`) for truncated answers and
//! `force_tcp`, and the health record behind the sequential policy.
//!
//! Spoofing defence (RFC 5452 section 9.2): every query gets a fresh random ID, each socket has
//! its own kernel-chosen (randomised) source port, and a connected socket only receives
//! datagrams from the upstream's address and port. A datagram is accepted only if its ID is in
//! flight on that socket and its question equals the one sent; anything else is counted and
//! dropped, and the real answer can still arrive.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{oneshot, OnceCell};

use super::error::ExchangeError;
use super::metrics::{bump, Counters};
use super::tcp::{TcpLimits, TcpPool};
use super::wire::{self, Question};

/// Fresh IDs drawn before giving up on a socket whose table is (nearly) full.
const ID_DRAWS: usize = 16;

/// Health and statistics of one upstream, as reported by `Forwarder::upstreams`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamStatus {
    pub addr: SocketAddr,
    /// False while the upstream is held down after a timeout or network error; it is then tried
    /// after the healthy ones until the hold expires and one query probes it again.
    pub healthy: bool,
    /// Round trip of the last answer it gave.
    pub last_rtt: Option<Duration>,
    /// Queries sent to it (UDP and TCP).
    pub queries: u64,
    /// Failed attempts of any kind: timeouts, network errors, SERVFAIL/REFUSED, malformed.
    pub failures: u64,
    /// The subset of `failures` that were timeouts.
    pub timeouts: u64,
    /// Timeouts and network errors since its last good answer.
    pub consecutive_failures: u32,
    /// TCP connections open and waiting for the next query (reused, see `force_tcp`).
    pub idle_tcp_connections: usize,
}

#[derive(Default)]
struct Health {
    down_until: Option<Instant>,
    last_rtt: Option<Duration>,
    queries: u64,
    failures: u64,
    timeouts: u64,
    consecutive_failures: u32,
}

/// Where an upstream goes in the attempt order of one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// In configured order.
    InOrder,
    /// Held down: after every upstream admitted in order.
    Last,
}

pub(crate) struct Upstream {
    pub addr: SocketAddr,
    sockets: usize,
    channels: OnceCell<Box<[UdpChannel]>>,
    next_channel: AtomicUsize,
    tcp: TcpPool,
    health: Mutex<Health>,
    counters: Arc<Counters>,
}

type Reply = Result<Vec<u8>, ExchangeError>;

/// An in-flight query. The entry lives exactly as long as the query (its `InFlight` guard
/// removes it); an answer only takes `reply`. Were the answer to remove the entry, a new query
/// could draw the same ID before the old guard ran, and that guard would then remove the new
/// query's entry.
struct Pending {
    question: Question,
    reply: Option<oneshot::Sender<Reply>>,
}

type PendingTable = Mutex<HashMap<u16, Pending>>;

fn lock(table: &PendingTable) -> std::sync::MutexGuard<'_, HashMap<u16, Pending>> {
    // The table holds plain data; a panic elsewhere while it was locked leaves it usable.
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connected UDP socket, its in-flight table, and (through `_stop`) the lifetime of the task
/// reading it: dropping the channel drops the sender and the task ends.
struct UdpChannel {
    socket: Arc<UdpSocket>,
    pending: Arc<PendingTable>,
    _stop: oneshot::Sender<()>,
}

/// Removes an in-flight entry when the query is answered, times out or is cancelled.
struct InFlight<'a> {
    pending: &'a PendingTable,
    id: u16,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.id);
    }
}

impl Upstream {
    pub(crate) fn new(
        addr: SocketAddr,
        sockets: usize,
        tcp: TcpLimits,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            addr,
            sockets: sockets.max(1),
            channels: OnceCell::new(),
            next_channel: AtomicUsize::new(0),
            tcp: TcpPool::new(addr, tcp),
            health: Mutex::new(Health::default()),
            counters,
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides this upstream's place for a query starting at `now`. When its hold has expired,
    /// this query becomes the probe: the upstream is tried in order, and the hold is renewed at
    /// once so that concurrent queries keep trying it last until the probe has an answer.
    pub(crate) fn admit(&self, now: Instant, hold: Duration) -> Admission {
        let mut health = self.health();
        match health.down_until {
            None => Admission::InOrder,
            Some(until) if now < until => Admission::Last,
            Some(_) => {
                health.down_until = Some(now + hold);
                Admission::InOrder
            }
        }
    }

    pub(crate) fn record_answer(&self, rtt: Duration) {
        let mut health = self.health();
        health.down_until = None;
        health.consecutive_failures = 0;
        health.last_rtt = Some(rtt);
    }

    pub(crate) fn record_error_rcode(&self, rtt: Duration) {
        let mut health = self.health();
        health.failures += 1;
        health.last_rtt = Some(rtt);
    }

    pub(crate) fn record_failure(&self, error: &ExchangeError, now: Instant, hold: Duration) {
        let mut health = self.health();
        health.failures += 1;
        if matches!(error, ExchangeError::Timeout(_)) {
            health.timeouts += 1;
        }
        if error.marks_down() {
            health.consecutive_failures = health.consecutive_failures.saturating_add(1);
            health.down_until = Some(now + hold);
        }
    }

    pub(crate) fn status(&self, now: Instant) -> UpstreamStatus {
        let health = self.health();
        UpstreamStatus {
            addr: self.addr,
            healthy: health.down_until.is_none_or(|until| now >= until),
            last_rtt: health.last_rtt,
            queries: health.queries,
            failures: health.failures,
            timeouts: health.timeouts,
            consecutive_failures: health.consecutive_failures,
            idle_tcp_connections: self.tcp.idle_count(),
        }
    }

    /// Sends `query` (its ID is overwritten with a fresh random one) over one of the pooled UDP
    /// sockets and waits up to `timeout` for the matching answer, returned with that ID.
    pub(crate) async fn exchange_udp(
        &self,
        query: &mut [u8],
        question: &Question,
        timeout: Duration,
    ) -> Result<Vec<u8>, ExchangeError> {
        let channels = self
            .channels
            .get_or_try_init(|| open_channels(self.addr, self.sockets, Arc::clone(&self.counters)))
            .await?;
        let index = self.next_channel.fetch_add(1, Ordering::Relaxed) % channels.len();
        let channel = &channels[index];
        let (reply, answer) = oneshot::channel();
        let id = {
            let mut table = lock(&channel.pending);
            let id = (0..ID_DRAWS)
                .map(|_| rand::random::<u16>())
                .find(|id| !table.contains_key(id))
                .ok_or(ExchangeError::IdsExhausted)?;
            table.insert(
                id,
                Pending {
                    question: question.clone(),
                    reply: Some(reply),
                },
            );
            id
        };
        let _in_flight = InFlight {
            pending: &channel.pending,
            id,
        };
        wire::set_id(query, id);
        self.health().queries += 1;
        bump(&self.counters.upstream_udp_queries);
        channel.socket.send(query).await?;
        match tokio::time::timeout(timeout, answer).await {
            Err(_) => Err(ExchangeError::Timeout(timeout)),
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ExchangeError::Network(io::Error::other(
                "the socket's receive task stopped",
            ))),
        }
    }

    /// One query over TCP (RFC 7766), on an idle pooled connection or a new one: after a TC=1
    /// answer, and for every query with `force_tcp`. The ID is overwritten with a fresh random
    /// one, as for UDP.
    pub(crate) async fn exchange_tcp(
        &self,
        query: &mut [u8],
        question: &Question,
        timeout: Duration,
    ) -> Result<Vec<u8>, ExchangeError> {
        let id = rand::random::<u16>();
        wire::set_id(query, id);
        self.health().queries += 1;
        bump(&self.counters.upstream_tcp_queries);
        self.tcp
            .exchange(query, id, question, timeout, &self.counters)
            .await
    }
}

async fn open_channels(
    addr: SocketAddr,
    count: usize,
    counters: Arc<Counters>,
) -> io::Result<Box<[UdpChannel]>> {
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        let socket = UdpSocket::bind(local).await?;
        socket.connect(addr).await?;
        let socket = Arc::new(socket);
        let pending = Arc::new(PendingTable::default());
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(receive(
            Arc::clone(&socket),
            Arc::clone(&pending),
            Arc::clone(&counters),
            stopped,
        ));
        channels.push(UdpChannel {
            socket,
            pending,
            _stop: stop,
        });
    }
    Ok(channels.into_boxed_slice())
}

/// Reads answers from one socket and hands each to the query waiting for it.
async fn receive(
    socket: Arc<UdpSocket>,
    pending: Arc<PendingTable>,
    counters: Arc<Counters>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    loop {
        let received = tokio::select! {
            _ = &mut stopped => return,
            received = socket.recv(&mut buf) => received,
        };
        match received {
            Ok(len) => dispatch(&buf[..len], &pending, &counters),
            // An ICMP port unreachable for a connected socket: nothing listens on the upstream's
            // port, so every query waiting on this socket fails now instead of at its timeout.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                for waiting in lock(&pending).values_mut() {
                    if let Some(reply) = waiting.reply.take() {
                        let _ = reply
                            .send(Err(io::Error::from(io::ErrorKind::ConnectionRefused).into()));
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "upstream socket receive error");
                // Avoid spinning if the error repeats; the waiting queries have their timeouts.
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        }
    }
}

fn dispatch(datagram: &[u8], pending: &PendingTable, counters: &Counters) {
    let matched = datagram.len() >= wire::HEADER_LEN && wire::is_response(datagram) && {
        let question = wire::parse_question(datagram);
        let mut table = lock(pending);
        match (table.get_mut(&wire::id(datagram)), question) {
            // A second copy of an answer finds `reply` already taken and counts as unmatched.
            (Some(waiting), Ok(question)) if waiting.question == question => {
                match waiting.reply.take() {
                    Some(reply) => {
                        let _ = reply.send(Ok(datagram.to_vec()));
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        }
    };
    if !matched {
        bump(&counters.unmatched_responses);
    }
}

/// One datagram through [`dispatch`] against a single query in flight with `id` and
/// `question`: the answer that query receives, if any. For forward::fuzzing (no sockets).
pub(crate) fn dispatch_to_one(
    datagram: &[u8],
    id: u16,
    question: &Question,
    counters: &Counters,
) -> Option<Vec<u8>> {
    let table = PendingTable::default();
    let (reply, mut answer) = oneshot::channel();
    lock(&table).insert(
        id,
        Pending {
            question: question.clone(),
            reply: Some(reply),
        },
    );
    dispatch(datagram, &table, counters);
    answer.try_recv().ok().and_then(Result::ok)
}
