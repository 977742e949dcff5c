//! UDP and TCP listeners: local answers on the hot path, everything else to the forwarder.
//!
//! UDP: `workers` sockets per listen address, bound with SO_REUSEPORT so the kernel spreads
//! clients over them; each is served by its own OS thread doing blocking recv -> [`answer`] ->
//! send with buffers allocated once (docs/benchmarks.md has the comparison with tokio loops that
//! chose this). Only forwarded queries leave the thread: they are copied and spawned on tokio.
//!
//! TCP (RFC 7766, [`tcp`]): hickory 0.26 serves each connection (framing, idle timeout, request
//! parsing, response encoding) through a hickory `RequestHandler` around the same [`answer`];
//! the accept loop in front of it, which bounds connections and closes those from outside
//! `allow`, is ours because hickory's `Server` can do neither.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::answer::{
    header_rcode, is_truncated, question_type, Transport, MIN_UDP_SIZE, TYPE_A, TYPE_AAAA, TYPE_PTR,
};
use crate::zone::ZoneHandle;

mod tcp;
mod udp;

/// Largest UDP response written locally: `max_udp_size` above it is capped here. 4096 is the
/// largest EDNS size RFC 6891 section 6.2.5 suggests; the default is 512.
pub const UDP_RESPONSE_BUFFER: usize = 4096;

/// Kernel receive buffer per UDP socket, to ride out bursts without drops.
const UDP_RECV_BUFFER: usize = 4 << 20;

/// Forwarded queries in flight at once; beyond this, new ones are dropped (and counted) instead of
/// piling up tasks while every upstream is slow.
const MAX_FORWARDS_IN_FLIGHT: usize = 4096;

/// Anything that relays a query upstream and always returns a response to send back. Implemented
/// by [`crate::forward::Forwarder`]; tests use stand-ins.
pub trait ForwardQuery: Send + Sync + 'static {
    /// `max_response` is the client's limit for UDP (responses above it come back truncated with
    /// TC=1); ignored for TCP.
    fn forward_query(
        &self,
        query: &[u8],
        transport: Transport,
        max_response: u16,
    ) -> impl Future<Output = Vec<u8>> + Send;

    /// The answer `forward_query` would give, when it can be had without waiting (a cache hit);
    /// UDP workers call it first and answer in their own thread. The default has no cache.
    fn cached(&self, query: &[u8], transport: Transport, max_response: u16) -> Option<Vec<u8>> {
        let _ = (query, transport, max_response);
        None
    }

    /// [`ForwardQuery::cached`] written into `out`, returning its length; `None` also when it
    /// does not fit (then the query is forwarded, and answered from the cache there).
    fn cached_into(
        &self,
        query: &[u8],
        transport: Transport,
        max_response: u16,
        out: &mut [u8],
    ) -> Option<usize> {
        let response = self.cached(query, transport, max_response)?;
        let out = out.get_mut(..response.len())?;
        out.copy_from_slice(&response);
        Some(response.len())
    }
}

impl ForwardQuery for crate::forward::Forwarder {
    fn forward_query(
        &self,
        query: &[u8],
        transport: Transport,
        max_response: u16,
    ) -> impl Future<Output = Vec<u8>> + Send {
        self.forward(query, client_transport(transport, max_response))
    }

    fn cached(&self, query: &[u8], transport: Transport, max_response: u16) -> Option<Vec<u8>> {
        crate::forward::Forwarder::cached(self, query, client_transport(transport, max_response))
    }

    fn cached_into(
        &self,
        query: &[u8],
        transport: Transport,
        max_response: u16,
        out: &mut [u8],
    ) -> Option<usize> {
        crate::forward::Forwarder::cached_into(
            self,
            query,
            client_transport(transport, max_response),
            out,
        )
    }
}

/// The forwarder's view of the client's transport: for UDP, the size the client takes.
fn client_transport(transport: Transport, max_response: u16) -> crate::forward::ClientTransport {
    match transport {
        Transport::Udp => crate::forward::ClientTransport::Udp { max_response },
        Transport::Tcp => crate::forward::ClientTransport::Tcp,
    }
}

/// One entry of the optional client allow-list (`allow = ["192.0.2.0/24", ...]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientNet {
    addr: IpAddr,
    prefix: u8,
}

/// The network address of `addr/prefix_len`: every bit after the prefix cleared. A prefix
/// longer than the family's width is a host route. The one home of prefix masking: the allow
/// list here, and the daemon's interface detection and configuration, call it.
pub fn network_of(addr: IpAddr, prefix_len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

impl ClientNet {
    /// The network address (host bits are zero: [`FromStr`] refuses anything else).
    pub fn network(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// True when `ip` is inside this network; an IPv4-mapped IPv6 client counts as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && network_of(ip, self.prefix) == self.addr
    }
}

impl std::fmt::Display for ClientNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An `allow` entry that is not `address/prefix`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("DNS `allow` entry {entry:?} is not a network: {reason} (accepted: an IPv4 or IPv6 address with an optional /prefix, e.g. \"192.0.2.0/24\" or \"2001:db8::/32\")")]
pub struct ClientNetError {
    pub entry: String,
    pub reason: &'static str,
}

impl FromStr for ClientNet {
    type Err = ClientNetError;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let fail = |reason| ClientNetError {
            entry: entry.to_owned(),
            reason,
        };
        let (addr, prefix) = match entry.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (entry, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| fail("bad address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .map_err(|_| fail("bad prefix length"))?,
            None => max,
        };
        if prefix > max {
            return Err(fail("prefix longer than the address"));
        }
        // "192.0.2.1/24" is most likely a typo for a host or for the network; refuse to guess.
        if network_of(addr, prefix) != addr {
            return Err(fail("host bits are set after the prefix"));
        }
        Ok(ClientNet { addr, prefix })
    }
}

/// Listener settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Addresses to serve on, UDP and TCP each. IPv6 sockets are IPv6-only so `0.0.0.0:53` and
    /// `[::]:53` can both be listed.
    pub listen: Vec<SocketAddr>,
    /// UDP sockets (and threads) per address; default: the number of CPUs.
    pub workers: usize,
    /// EDNS payload size advertised and the cap on UDP responses (CoreDNS `bufsize 512`).
    pub max_udp_size: u16,
    /// When non-empty, only these client networks are served; others are dropped without a reply
    /// over UDP (no REFUSED, so the port does not reflect traffic) and disconnected over TCP.
    pub allow: Vec<ClientNet>,
    /// TCP connections idle this long are closed (RFC 7766 section 6.2.3 suggests seconds).
    pub tcp_idle_timeout: Duration,
    /// Concurrent TCP connections. At the bound a new client displaces the connection that has
    /// waited longest for its next query (RFC 7766 section 6.2.3).
    pub max_tcp_connections: usize,
    /// Run the UDP worker threads under SCHED_BATCH (when they start under the default
    /// SCHED_OTHER; another policy chosen for the daemon is left alone). A batch thread woken by
    /// a query does not preempt the task running on its CPU: it runs when that task blocks or
    /// its slice ends, and finds more datagrams queued by then, so fewer wake-ups and context
    /// switches per query (docs/benchmarks.md: about 0.7x the CPU time per query, at a cost in
    /// latency only while the CPU is busy with something else). Default true.
    pub batch_scheduling: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec![
                SocketAddr::from(([0, 0, 0, 0], 53)),
                SocketAddr::from(([0u16; 8], 53)),
            ],
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_udp_size: MIN_UDP_SIZE,
            allow: Vec::new(),
            tcp_idle_timeout: Duration::from_secs(10),
            max_tcp_connections: 256,
            batch_scheduling: true,
        }
    }
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot open the DNS {proto} socket on {addr}: {source} (port 53 needs root or CAP_NET_BIND_SERVICE; is another DNS server such as CoreDNS or systemd-resolved already bound there?)")]
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error("DNS config `listen` is empty; list at least one address such as 0.0.0.0:53")]
    NoListenAddress,
    #[error("DNS config `workers` = 0; use 1 or more UDP sockets per address")]
    NoWorkers,
    #[error("cannot start DNS UDP worker thread: {0}")]
    Thread(io::Error),
    #[error("DnsServer::start must be called from within a tokio runtime (forwarded queries and TCP run on it)")]
    NoRuntime,
}

/// Counter snapshot for Prometheus; every field but `tcp_open` only grows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsMetrics {
    pub queries_a: u64,
    pub queries_aaaa: u64,
    pub queries_ptr: u64,
    pub queries_other: u64,
    /// Responses sent, by header RCODE (index 0 = NOERROR, 1 = FORMERR, 2 = SERVFAIL,
    /// 3 = NXDOMAIN, 4 = NOTIMP, 5 = REFUSED, ...).
    pub responses_by_rcode: [u64; 16],
    /// BADVERS responses (extended RCODE 16; their header RCODE is 0 and counted there too).
    pub responses_badvers: u64,
    pub answered_locally: u64,
    pub forwarded: u64,
    pub truncated: u64,
    /// Responses (QR=1) and datagrams shorter than a header.
    pub dropped_malformed: u64,
    /// Clients outside `allow`.
    pub dropped_not_allowed: u64,
    /// Forwarded queries dropped because too many were already in flight.
    pub dropped_overload: u64,
    /// TCP connections closed early, longest idle first, to make room for a new client at
    /// `max_tcp_connections`.
    pub tcp_displaced: u64,
    /// New TCP connections closed at once because every open one was answering a query.
    pub tcp_refused: u64,
    /// TCP connections open now (a gauge, the only field that goes down).
    pub tcp_open: u64,
}

/// One worker's counters, on its own cache line so workers never contend.
#[derive(Default)]
#[repr(align(64))]
struct Counters {
    queries: [AtomicU64; 4],
    rcodes: [AtomicU64; 16],
    badvers: AtomicU64,
    local: AtomicU64,
    forwarded: AtomicU64,
    truncated: AtomicU64,
    dropped_malformed: AtomicU64,
    dropped_not_allowed: AtomicU64,
    dropped_overload: AtomicU64,
    tcp_displaced: AtomicU64,
    tcp_refused: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    fn query(&self, query: &[u8]) {
        let slot = match question_type(query) {
            Some(TYPE_A) => 0,
            Some(TYPE_AAAA) => 1,
            Some(TYPE_PTR) => 2,
            _ => 3,
        };
        bump(&self.queries[slot]);
    }

    fn response(&self, response: &[u8]) {
        if let Some(rcode) = header_rcode(response) {
            bump(&self.rcodes[usize::from(rcode)]);
        }
        if is_truncated(response) {
            bump(&self.truncated);
        }
    }

    fn add_to(&self, total: &mut DnsMetrics) {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        total.queries_a += get(&self.queries[0]);
        total.queries_aaaa += get(&self.queries[1]);
        total.queries_ptr += get(&self.queries[2]);
        total.queries_other += get(&self.queries[3]);
        for (sum, counter) in total.responses_by_rcode.iter_mut().zip(&self.rcodes) {
            *sum += get(counter);
        }
        total.responses_badvers += get(&self.badvers);
        total.answered_locally += get(&self.local);
        total.forwarded += get(&self.forwarded);
        total.truncated += get(&self.truncated);
        total.dropped_malformed += get(&self.dropped_malformed);
        total.dropped_not_allowed += get(&self.dropped_not_allowed);
        total.dropped_overload += get(&self.dropped_overload);
        total.tcp_displaced += get(&self.tcp_displaced);
        total.tcp_refused += get(&self.tcp_refused);
    }
}

/// State every listener shares.
struct Shared<F> {
    zone: ZoneHandle,
    forwarder: Arc<F>,
    max_udp_size: u16,
    allow: Vec<ClientNet>,
    stop: AtomicBool,
    forwards_in_flight: AtomicUsize,
}

impl<F> Shared<F> {
    fn allowed(&self, ip: IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(ip))
    }

    /// Reserves a forwarding slot; `None` when [`MAX_FORWARDS_IN_FLIGHT`] are busy.
    fn forward_slot(self: &Arc<Self>) -> Option<ForwardSlot<F>> {
        let busy = self.forwards_in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = ForwardSlot(Arc::clone(self));
        (busy < MAX_FORWARDS_IN_FLIGHT).then_some(slot)
    }
}

struct ForwardSlot<F>(Arc<Shared<F>>);

impl<F> Drop for ForwardSlot<F> {
    fn drop(&mut self) {
        self.0.forwards_in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Handle on a running server.
pub struct DnsServerHandle {
    stop: Arc<dyn StopFlag>,
    /// The UDP worker sockets, to wake their blocked threads at shutdown.
    udp_sockets: Vec<Arc<UdpSocket>>,
    udp_threads: Vec<JoinHandle<()>>,
    tcp_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Dropping or setting it ends the TCP accept loops and every open connection.
    tcp_stop: watch::Sender<bool>,
    counters: Arc<Vec<Counters>>,
    tcp_slots: Arc<tcp::Slots>,
    local_addrs: Vec<SocketAddr>,
}

trait StopFlag: Send + Sync {
    fn stop(&self);
}

impl<F: Send + Sync> StopFlag for Shared<F> {
    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Sets the stop flag, then wakes every UDP worker blocked in recvmmsg. The sockets have no read
/// timeout (arming and cancelling its timer on every sleep was ~0.8 % of the daemon's perf
/// samples at 30,000 qps): `shutdown(SHUT_RD)` on a UDP socket wakes its readers, whose receive then returns at
/// once (Linux reports ENOTCONN for an unconnected socket but still marks it shut and wakes
/// them; `inet_shutdown`), and the worker sees the flag.
fn stop_udp(stop: &dyn StopFlag, sockets: &[Arc<UdpSocket>]) {
    stop.stop();
    for socket in sockets {
        let _ = socket2::SockRef::from(socket.as_ref()).shutdown(std::net::Shutdown::Read);
    }
}

impl DnsServerHandle {
    /// The bound addresses, in `listen` order, with ports resolved (useful with port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    pub fn metrics(&self) -> DnsMetrics {
        let mut total = DnsMetrics::default();
        for counters in self.counters.iter() {
            counters.add_to(&mut total);
        }
        total.tcp_open = self.tcp_slots.open() as u64;
        total
    }

    /// Stops serving: closes the TCP listeners and connections and waits for the UDP threads (woken
    /// at once). Forwarded queries still in flight are abandoned. Dropping the handle stops
    /// everything too, without waiting.
    pub async fn shutdown(mut self) {
        stop_udp(self.stop.as_ref(), &self.udp_sockets);
        self.tcp_stop.send_replace(true);
        for task in std::mem::take(&mut self.tcp_tasks) {
            let _ = task.await;
        }
        let threads = std::mem::take(&mut self.udp_threads);
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                if thread.join().is_err() {
                    warn!("a DNS UDP worker thread panicked before shutdown");
                }
            }
        })
        .await;
        if joined.is_err() {
            warn!("joining the DNS UDP worker threads failed");
        }
        info!("DNS server stopped");
    }
}

impl Drop for DnsServerHandle {
    fn drop(&mut self) {
        stop_udp(self.stop.as_ref(), &self.udp_sockets);
        self.tcp_stop.send_replace(true);
    }
}

pub struct DnsServer;

impl DnsServer {
    /// Binds every socket (failing before serving anything if one cannot be bound), then starts
    /// the UDP threads and TCP loops. Must run inside a tokio runtime.
    pub fn start<F: ForwardQuery>(
        config: ServerConfig,
        zone: ZoneHandle,
        forwarder: Arc<F>,
    ) -> Result<DnsServerHandle, ServerError> {
        if config.listen.is_empty() {
            return Err(ServerError::NoListenAddress);
        }
        if config.workers == 0 {
            return Err(ServerError::NoWorkers);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ServerError::NoRuntime)?;

        let Bound {
            udp_sockets,
            tcp_listeners,
            local_addrs,
        } = bind_all(&config)?;

        let shared = Arc::new(Shared {
            zone,
            forwarder,
            max_udp_size: config
                .max_udp_size
                .clamp(MIN_UDP_SIZE, UDP_RESPONSE_BUFFER as u16),
            allow: config.allow.clone(),
            stop: AtomicBool::new(false),
            forwards_in_flight: AtomicUsize::new(0),
        });
        // One counter block per UDP socket, plus one shared by all TCP connections.
        let counters: Arc<Vec<Counters>> = Arc::new(
            (0..=udp_sockets.len())
                .map(|_| Counters::default())
                .collect(),
        );

        let udp_sockets: Vec<Arc<UdpSocket>> = udp_sockets.into_iter().map(Arc::new).collect();
        let mut udp_threads = Vec::new();
        for (index, socket) in udp_sockets.iter().enumerate() {
            let worker = udp::Worker {
                socket: Arc::clone(socket),
                shared: Arc::clone(&shared),
                all_counters: Arc::clone(&counters),
                index,
                runtime: runtime.clone(),
                batch_scheduling: config.batch_scheduling,
            };
            let thread = std::thread::Builder::new()
                .name(format!("dns-udp-{index}"))
                .spawn(move || udp::udp_worker(worker))
                .map_err(ServerError::Thread)?;
            udp_threads.push(thread);
        }

        let (tcp_stop, _) = watch::channel(false);
        let slots = tcp::Slots::new(config.max_tcp_connections);
        let handler = Arc::new(tcp::TcpHandler::new(
            Arc::clone(&shared),
            Arc::clone(&counters),
            counters.len() - 1,
        ));
        let tcp_tasks = tcp_listeners
            .into_iter()
            .map(|listener| {
                let handler = Arc::clone(&handler);
                let slots = Arc::clone(&slots);
                let stop = tcp_stop.subscribe();
                let idle = config.tcp_idle_timeout;
                runtime.spawn(async move {
                    let mut until_stopped = stop.clone();
                    tokio::select! {
                        () = tcp::accept_loop(listener, handler, slots, idle, stop) => {}
                        _ = until_stopped.wait_for(|stopped| *stopped) => {}
                    }
                })
            })
            .collect();

        info!(
            listen = ?local_addrs,
            workers = config.workers,
            max_udp_size = config.max_udp_size,
            allow = config.allow.len(),
            "DNS server started"
        );
        Ok(DnsServerHandle {
            stop: shared,
            udp_sockets,
            udp_threads,
            tcp_tasks,
            tcp_stop,
            counters,
            tcp_slots: slots,
            local_addrs,
        })
    }
}

/// Every socket of a configuration, bound before anything is served.
struct Bound {
    /// `workers` per listen address, in `listen` order.
    udp_sockets: Vec<UdpSocket>,
    tcp_listeners: Vec<TcpListener>,
    local_addrs: Vec<SocketAddr>,
}

fn bind_all(config: &ServerConfig) -> Result<Bound, ServerError> {
    let mut bound = Bound {
        udp_sockets: Vec::new(),
        tcp_listeners: Vec::new(),
        local_addrs: Vec::new(),
    };
    for requested in &config.listen {
        // With port 0 the first socket picks the port; the others must share it.
        let first = bind_udp(*requested)?;
        let addr = first.local_addr().map_err(|source| ServerError::Bind {
            proto: "UDP",
            addr: *requested,
            source,
        })?;
        bound.udp_sockets.push(first);
        for _ in 1..config.workers {
            bound.udp_sockets.push(bind_udp(addr)?);
        }
        bound.tcp_listeners.push(bind_tcp(addr)?);
        bound.local_addrs.push(addr);
    }
    Ok(bound)
}

fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, ServerError> {
    let bind = || -> io::Result<UdpSocket> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_port(true)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        // A smaller buffer than asked for only costs burst tolerance.
        let _ = socket.set_recv_buffer_size(UDP_RECV_BUFFER);
        socket.bind(&addr.into())?;
        Ok(socket.into())
    };
    bind().map_err(|source| ServerError::Bind {
        proto: "UDP",
        addr,
        source,
    })
}

fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    let bind = || -> io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        TcpListener::from_std(socket.into())
    };
    bind().map_err(|source| ServerError::Bind {
        proto: "TCP",
        addr,
        source,
    })
}

fn is_badvers(response: &[u8]) -> bool {
    // The OPT is the last record we write; its TTL's first byte is the extended RCODE.
    response.len() >= 23
        && u16::from_be_bytes([response[10], response[11]]) == 1
        && response[response.len() - 11 + 1..response.len() - 11 + 3] == [0, 41]
        && response[response.len() - 6] == 1
}
