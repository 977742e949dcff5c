//! The UDP hot path: one OS thread per socket, `recvmmsg` (MSG_WAITFORONE) -> [`answer`] ->
//! `sendmmsg`, with every buffer and system-call header allocated once per thread.
//!
//! The batches call libc directly rather than through nix: nix's `recvmmsg` / `sendmmsg` build
//! their headers from iterators and copy each peer's 128-byte `SockaddrStorage` in and out on
//! every call: about 360 of the 2,500 instructions a local answer cost (callgrind, whole daemon).
//! Here a reply's header points at the address the kernel wrote for its query, so nothing is
//! copied.

use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use nix::libc;
use tracing::{debug, warn};

use super::{bump, is_badvers, Counters, ForwardQuery, Shared, UDP_RESPONSE_BUFFER};
use crate::answer::{answer, Outcome, Transport};
use crate::zone::ClusterZone;

/// Largest UDP query read; anything longer is cut by the kernel and answered FORMERR. Queries are
/// a header, one name and an OPT with perhaps a cookie or padding: far below this.
pub(super) const UDP_QUERY_BUFFER: usize = 2048;

/// Datagrams read per recvmmsg and answered per sendmmsg.
const UDP_BATCH: usize = 32;

/// What one worker thread needs besides its batch buffers.
pub(super) struct Worker<F> {
    pub socket: Arc<UdpSocket>,
    pub shared: Arc<Shared<F>>,
    pub all_counters: Arc<Vec<Counters>>,
    /// This worker's block in `all_counters`.
    pub index: usize,
    pub runtime: tokio::runtime::Handle,
    /// [`super::ServerConfig::batch_scheduling`].
    pub batch_scheduling: bool,
}

/// One batch's buffers and headers. Header pointers are written before each system call from
/// the buffers borrowed for it, so no pointer outlives the borrow it came from.
struct Batch {
    queries: Box<[[u8; UDP_QUERY_BUFFER]; UDP_BATCH]>,
    outs: Box<[[u8; UDP_RESPONSE_BUFFER]; UDP_BATCH]>,
    /// Source address of each query received, as the kernel wrote it.
    peers: Box<[libc::sockaddr_storage; UDP_BATCH]>,
    rx_iovs: [libc::iovec; UDP_BATCH],
    rx: [libc::mmsghdr; UDP_BATCH],
    tx_iovs: [libc::iovec; UDP_BATCH],
    tx: [libc::mmsghdr; UDP_BATCH],
    /// Datagrams in the last receive.
    received: usize,
    /// Reply `r` is `outs[r][..reply_lens[r]]`, sent to `peers[reply_peers[r]]`.
    replies: usize,
    reply_lens: [usize; UDP_BATCH],
    reply_peers: [usize; UDP_BATCH],
}

/// libc's plain C structs used here, whose fields are integers and raw pointers only.
trait PlainC: Copy {}
impl PlainC for libc::sockaddr_storage {}
impl PlainC for libc::iovec {}
impl PlainC for libc::mmsghdr {}

/// An all-zero C value: null pointers, zero lengths, `AF_UNSPEC`.
fn zeroed<T: PlainC>() -> T {
    // SAFETY: `PlainC` is implemented only for C structs of integers and raw pointers, for which
    // all-zero bytes are a valid value (null raw pointers are valid values; they are never
    // dereferenced before the header set-up below replaces them).
    unsafe { std::mem::zeroed() }
}

impl Batch {
    fn new() -> Box<Self> {
        Box::new(Batch {
            queries: Box::new([[0; UDP_QUERY_BUFFER]; UDP_BATCH]),
            outs: Box::new([[0; UDP_RESPONSE_BUFFER]; UDP_BATCH]),
            peers: Box::new([zeroed(); UDP_BATCH]),
            rx_iovs: [zeroed(); UDP_BATCH],
            rx: [zeroed(); UDP_BATCH],
            tx_iovs: [zeroed(); UDP_BATCH],
            tx: [zeroed(); UDP_BATCH],
            received: 0,
            replies: 0,
            reply_lens: [0; UDP_BATCH],
            reply_peers: [0; UDP_BATCH],
        })
    }

    /// Blocks for at least one datagram and takes up to [`UDP_BATCH`] (MSG_WAITFORONE).
    fn receive(&mut self, fd: RawFd) -> io::Result<()> {
        self.received = 0;
        self.replies = 0;
        for (((header, iov), query), peer) in self
            .rx
            .iter_mut()
            .zip(&mut self.rx_iovs)
            .zip(self.queries.iter_mut())
            .zip(self.peers.iter_mut())
        {
            *iov = libc::iovec {
                iov_base: query.as_mut_ptr().cast(),
                iov_len: query.len(),
            };
            header.msg_hdr.msg_name = (peer as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `rx` holds UDP_BATCH headers, each pointing at one iovec of `rx_iovs` that
        // covers exactly one `queries` buffer, and at one `peers` entry with its true size as
        // `msg_namelen`; no control buffer. All of them were borrowed mutably just above from
        // `self`, which stays borrowed for the call, so the kernel writes only into memory we
        // own and nothing else reads or writes it meanwhile. A null timeout blocks until a
        // datagram comes or the socket is shut for reading (shutdown).
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.rx.as_mut_ptr(),
                UDP_BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.received = (n as usize).min(UDP_BATCH);
        Ok(())
    }

    /// The length of the query received in `slot`, cut at the buffer (the kernel reports a
    /// datagram's full length even when it was truncated).
    fn query_len(&self, slot: usize) -> usize {
        (self.rx[slot].msg_len as usize).min(UDP_QUERY_BUFFER)
    }

    /// Queues `outs[self.replies][..len]` for the peer of `slot`.
    fn push_reply(&mut self, slot: usize, len: usize) {
        self.reply_lens[self.replies] = len;
        self.reply_peers[self.replies] = slot;
        self.replies += 1;
    }

    /// Sends the queued replies with as few sendmmsg calls as possible; a message that fails (a
    /// peer's ICMP error, a full buffer) is skipped, not retried.
    fn send(&mut self, fd: RawFd, worker: usize) {
        let count = self.replies;
        for reply in 0..count {
            let slot = self.reply_peers[reply];
            let iov = &mut self.tx_iovs[reply];
            *iov = libc::iovec {
                iov_base: self.outs[reply].as_mut_ptr().cast(),
                iov_len: self.reply_lens[reply],
            };
            let header = &mut self.tx[reply].msg_hdr;
            header.msg_name = (&mut self.peers[slot] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = self.rx[slot].msg_hdr.msg_namelen;
            header.msg_iov = iov;
            header.msg_iovlen = 1;
        }
        let mut next = 0;
        while next < count {
            // SAFETY: headers `next..count` of `tx` were filled just above: each points at one
            // iovec of `tx_iovs` covering the first `reply_lens[r]` (<= UDP_RESPONSE_BUFFER)
            // bytes of one `outs` buffer, and at the `peers` entry of its query with the length
            // the kernel gave it; no control buffer. `self` stays borrowed mutably for the call.
            let sent = unsafe {
                libc::sendmmsg(
                    fd,
                    self.tx[next..count].as_mut_ptr(),
                    (count - next) as libc::c_uint,
                    0,
                )
            };
            if sent > 0 {
                next += sent as usize;
            } else {
                if sent < 0 {
                    let err = io::Error::last_os_error();
                    debug!(worker, error = %err, "DNS UDP send failed; skipping one reply");
                }
                next += 1;
            }
        }
        self.replies = 0;
    }
}

/// Moves the calling thread from SCHED_OTHER to SCHED_BATCH (no privilege needed); any other
/// policy is kept. A failure only costs the saving, so it is logged at debug level.
fn batch_scheduling(worker: usize) {
    // SAFETY: with pid 0 both calls act on the calling thread; `param` is a valid, initialised
    // sched_param that the kernel only reads.
    let switched = unsafe {
        libc::sched_getscheduler(0) == libc::SCHED_OTHER
            && libc::sched_setscheduler(
                0,
                libc::SCHED_BATCH,
                &libc::sched_param { sched_priority: 0 },
            ) == 0
    };
    if !switched {
        debug!(worker, "DNS UDP worker keeps its scheduling policy");
    }
}

/// Whether the kernel wrote a whole IPv4 or IPv6 address (what [`peer_addr`] reads).
fn is_ip(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> bool {
    let len = len as usize;
    match i32::from(storage.ss_family) {
        libc::AF_INET => len >= size_of::<libc::sockaddr_in>(),
        libc::AF_INET6 => len >= size_of::<libc::sockaddr_in6>(),
        _ => false,
    }
}

/// The peer address the kernel wrote, when it is IPv4 or IPv6.
fn peer_addr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: `sockaddr_storage` is at least as large and as aligned as every socket
            // address type, and the kernel wrote an AF_INET address of this length into it.
            let v4 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for an AF_INET6 address of this length.
            let v6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// One UDP socket's loop: up to [`UDP_BATCH`] datagrams per recvmmsg (MSG_WAITFORONE: returns as
/// soon as one is there), local answers written into per-slot buffers and sent with one sendmmsg.
/// Nothing is allocated for local answers; forwarded queries are copied and spawned.
pub(super) fn udp_worker<F: ForwardQuery>(worker: Worker<F>) {
    if worker.batch_scheduling {
        batch_scheduling(worker.index);
    }
    let mut batch = Batch::new();
    let fd = worker.socket.as_raw_fd();
    loop {
        let received = batch.receive(fd);
        // Set before the socket is shut for reading, which is what wakes a blocked receive (and
        // makes it return empty datagrams from then on).
        if worker.shared.stop.load(Ordering::Acquire) {
            break;
        }
        match received {
            Ok(()) => {}
            // Signals, and ICMP errors for earlier replies surfacing on the socket: nothing to
            // do but read again.
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(libc::EAGAIN | libc::EINTR | libc::ECONNREFUSED)
                ) =>
            {
                continue
            }
            Err(err) => {
                warn!(worker = worker.index, error = %err, "DNS UDP receive failed; retrying in 10 ms");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        }
        let zone = worker.shared.zone.load();
        for slot in 0..batch.received {
            worker.handle(&zone, &mut batch, slot);
        }
        drop(zone);
        batch.send(fd, worker.index);
    }
}

impl<F: ForwardQuery> Worker<F> {
    fn counters(&self) -> &Counters {
        &self.all_counters[self.index]
    }

    /// Answers the query in `slot` into the next reply buffer, or hands it to the forwarder.
    fn handle(&self, zone: &ClusterZone, batch: &mut Batch, slot: usize) {
        let counters = self.counters();
        let peer = &batch.peers[slot];
        let peer_len = batch.rx[slot].msg_hdr.msg_namelen;
        if !is_ip(peer, peer_len) {
            bump(&counters.dropped_malformed);
            return;
        }
        if !self.shared.allow.is_empty()
            && !peer_addr(peer, peer_len).is_some_and(|addr| self.shared.allowed(addr.ip()))
        {
            bump(&counters.dropped_not_allowed);
            return;
        }
        let max_udp_size = self.shared.max_udp_size;
        let query = &batch.queries[slot][..batch.query_len(slot)];
        let out = &mut batch.outs[batch.replies][..usize::from(max_udp_size)];
        match answer(zone, query, out, Transport::Udp, max_udp_size) {
            Outcome::Respond(n) => {
                counters.query(query);
                bump(&counters.local);
                counters.response(&out[..n]);
                if is_badvers(&out[..n]) {
                    bump(&counters.badvers);
                }
                batch.push_reply(slot, n);
            }
            Outcome::Forward { max_response } => self.forward(batch, slot, max_response),
            Outcome::Drop => bump(&counters.dropped_malformed),
        }
    }

    /// A query that is not ours: answered from the forwarder's cache in this batch when it can
    /// be, else copied and relayed from a tokio task (at most MAX_FORWARDS_IN_FLIGHT at once).
    fn forward(&self, batch: &mut Batch, slot: usize, max_response: u16) {
        let counters = self.counters();
        // `handle` checked that the peer is an IPv4 or IPv6 address.
        let Some(peer) = peer_addr(&batch.peers[slot], batch.rx[slot].msg_hdr.msg_namelen) else {
            bump(&counters.dropped_malformed);
            return;
        };
        let query = &batch.queries[slot][..batch.query_len(slot)];
        counters.query(query);
        let out = &mut batch.outs[batch.replies];
        if let Some(n) = self
            .shared
            .forwarder
            .cached_into(query, Transport::Udp, max_response, out)
        {
            bump(&counters.forwarded);
            counters.response(&out[..n]);
            batch.push_reply(slot, n);
            return;
        }
        let Some(in_flight) = self.shared.forward_slot() else {
            bump(&counters.dropped_overload);
            return;
        };
        bump(&counters.forwarded);
        let query = query.to_vec();
        let socket = Arc::clone(&self.socket);
        let forwarder = Arc::clone(&self.shared.forwarder);
        let all_counters = Arc::clone(&self.all_counters);
        let index = self.index;
        self.runtime.spawn(async move {
            let response = forwarder
                .forward_query(&query, Transport::Udp, max_response)
                .await;
            all_counters[index].response(&response);
            if let Err(err) = socket.send_to(&response, peer) {
                debug!(%peer, error = %err, "DNS UDP send of a forwarded answer failed");
            }
            drop(in_flight);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::{stop_udp, DnsServer, DnsServerHandle, ServerConfig};
    use super::*;
    use crate::zone::{ClusterZone, ZoneConfig, ZoneHandle};

    struct NoUpstream;

    impl ForwardQuery for NoUpstream {
        async fn forward_query(&self, query: &[u8], _: Transport, _: u16) -> Vec<u8> {
            query.to_vec()
        }
    }

    fn start(runtime: &tokio::runtime::Runtime, workers: usize) -> DnsServerHandle {
        let zone = ClusterZone::new(&ZoneConfig {
            cluster_name: "ostest".into(),
            base_domain: "test.metalkube.org".into(),
            api_vips: vec!["192.0.2.5".parse().unwrap()],
            ..ZoneConfig::default()
        })
        .unwrap();
        let config = ServerConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            workers,
            ..ServerConfig::default()
        };
        let _guard = runtime.enter();
        DnsServer::start(config, ZoneHandle::new(zone), Arc::new(NoUpstream)).unwrap()
    }

    fn query(name: &[&str]) -> Vec<u8> {
        let mut query = vec![0x0a, 0xbc, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name {
            query.push(label.len() as u8);
            query.extend_from_slice(label.as_bytes());
        }
        query.extend_from_slice(&[0, 0, 1, 0, 1]);
        query
    }

    #[test]
    fn datagrams_longer_than_the_receive_buffer_are_cut_not_a_panic() {
        // Multi-threaded: the forwarded query's task runs while this thread blocks.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let handle = start(&runtime, 1);
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reply = [0u8; 4096];
        // Local, then a name the forwarder gets (the stand-in echoes the query), each padded
        // past UDP_QUERY_BUFFER: the kernel reports the full length, the worker reads 2048.
        let api = query(&["api", "ostest", "test", "metalkube", "org"]);
        let other = query(&["www", "example", "org"]);
        for base in [&api, &other, &api] {
            let mut long = base.clone();
            long.resize(UDP_QUERY_BUFFER + 1000, 0);
            client.send_to(&long, handle.local_addrs()[0]).unwrap();
            let (n, _) = runtime
                .block_on(async { tokio::task::block_in_place(|| client.recv_from(&mut reply)) })
                .unwrap_or_else(|err| panic!("no reply: {err}"));
            assert_eq!(reply[..2], [0x0a, 0xbc]);
            assert!(n <= UDP_QUERY_BUFFER, "{n}");
        }
        assert_eq!(handle.metrics().answered_locally, 2);
    }

    #[test]
    fn stop_wakes_blocked_workers_at_once_and_counts_nothing() {
        // No read timeout: shutting the sockets for reading is what wakes a worker blocked in
        // recvmmsg, which from then on returns empty datagrams that must not be counted.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut handle = start(&runtime, 4);
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let api = query(&["api", "ostest", "test", "metalkube", "org"]);
        client.send_to(&api, handle.local_addrs()[0]).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reply = [0u8; 512];
        client.recv_from(&mut reply).unwrap();
        // Every worker back in its blocking receive.
        std::thread::sleep(Duration::from_millis(50));
        let before = handle.metrics();
        assert_eq!(before.answered_locally, 1);
        let started = Instant::now();
        stop_udp(handle.stop.as_ref(), &handle.udp_sockets);
        let threads = std::mem::take(&mut handle.udp_threads);
        while !threads.iter().all(|thread| thread.is_finished()) {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "UDP workers still running after stop"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(handle.metrics(), before);
    }
}
