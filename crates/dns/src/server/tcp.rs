//! DNS over TCP (RFC 7766) on hickory 0.26.
//!
//! Split of the work:
//! - ours: the accept loop, because hickory-server's `Server::register_listener` accepts every
//!   connection it is offered: it has no bound on open connections (and on EMFILE its accept loop
//!   retries at once, spinning), and its access control answers REFUSED per message instead of
//!   closing the connection. vipd keeps at most `max_tcp_connections` open and closes connections
//!   from outside `allow` before reading a byte. At the bound a new client displaces the open
//!   connection that has waited longest for its next whole message ([`Slots`]; RFC 7766 section
//!   6.2.3 lets a server under pressure close idle connections early), so clients that connect
//!   and then say nothing, or trickle a message byte by byte, cannot lock out the ones that ask.
//! - hickory's: everything on an accepted connection, the same pieces `register_listener` uses:
//!   hickory-net's `TcpStream` (two-byte length framing, responses written in the order they
//!   are queued), hickory-server's `TimeoutStream` (idle timeout, reset by every whole message),
//!   `Request` parsing, and the response encoding behind `ResponseHandler`.
//! - [`TcpHandler`] is a hickory `RequestHandler`: it runs [`answer`] on the request's raw bytes
//!   (or the forwarder), counts, and hands the response to hickory to encode. It works unchanged
//!   under `Server::register_listener` (tested below).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hickory_server::net::runtime::iocompat::AsyncIoTokioAsStd;
use hickory_server::net::runtime::{Time, TokioTime};
use hickory_server::net::tcp::TcpStream as DnsTcpStream;
use hickory_server::net::xfer::Protocol;
use hickory_server::net::DnsStreamHandle;
use hickory_server::proto::op::{
    Header, HeaderCounts, Message, Metadata, ResponseCode, SerialMessage,
};
use hickory_server::proto::serialize::binary::{BinDecodable, BinDecoder, DecodeError};
use hickory_server::server::{
    Request, RequestHandler, ResponseHandle, ResponseHandler, ResponseInfo, TimeoutStream,
};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tracing::{debug, warn};

use super::{bump, is_badvers, Counters, ForwardQuery, Shared};
use crate::answer::{answer, Outcome, Transport, MAX_TCP_SIZE};
use crate::protocol::HEADER_LEN;

/// Responses queued per connection before hickory's writer takes them. Queries on one connection
/// are answered one after the other, so at most one response ever waits here.
const RESPONSE_QUEUE: usize = 2;

/// Answers one parsed request: local names with [`answer`], the rest through the forwarder.
pub(super) struct TcpHandler<F> {
    shared: Arc<Shared<F>>,
    counters: Arc<Vec<Counters>>,
    /// Which block of `counters` TCP counts into.
    index: usize,
}

impl<F: ForwardQuery> TcpHandler<F> {
    pub(super) fn new(shared: Arc<Shared<F>>, counters: Arc<Vec<Counters>>, index: usize) -> Self {
        TcpHandler {
            shared,
            counters,
            index,
        }
    }

    fn counters(&self) -> &Counters {
        &self.counters[self.index]
    }

    /// The response bytes for `query`, counted exactly as the UDP path counts them; `None` when
    /// it gets no response (QR=1, shorter than a header).
    async fn respond(&self, query: &[u8]) -> Option<Vec<u8>> {
        let counters = self.counters();
        let mut out = vec![0u8; MAX_TCP_SIZE];
        let outcome = answer(
            &self.shared.zone.load(),
            query,
            &mut out,
            Transport::Tcp,
            self.shared.max_udp_size,
        );
        match outcome {
            Outcome::Respond(n) => {
                out.truncate(n);
                counters.query(query);
                bump(&counters.local);
                counters.response(&out);
                if is_badvers(&out) {
                    bump(&counters.badvers);
                }
                Some(out)
            }
            Outcome::Forward { .. } => {
                counters.query(query);
                bump(&counters.forwarded);
                let response = self
                    .shared
                    .forwarder
                    .forward_query(query, Transport::Tcp, u16::MAX)
                    .await;
                counters.response(&response);
                Some(response)
            }
            Outcome::Drop => {
                bump(&counters.dropped_malformed);
                None
            }
        }
    }
}

#[async_trait::async_trait]
impl<F: ForwardQuery> RequestHandler for TcpHandler<F> {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        match self.respond(request.as_slice()).await {
            Some(response) => send_encoded(request, &response, response_handle).await,
            None => unanswered(request),
        }
    }
}

/// Sends `response` (a whole DNS message built by [`answer`] or relayed from upstream) through
/// hickory: `ResponseHandler` only accepts a `MessageResponse`, so the bytes are decoded once and
/// re-encoded. The question section is carried over as the response's own wire bytes, so the
/// client's letter case survives (RFC 4343) and a FORMERR without a question stays without one.
async fn send_encoded<R: ResponseHandler>(
    request: &Request,
    response: &[u8],
    mut response_handle: R,
) -> ResponseInfo {
    let sent = match decode(response) {
        Ok((queries, message)) => {
            let reply = MessageResponseBuilder::new(&queries, message.edns.as_ref()).build(
                message.metadata,
                message.answers.iter(),
                message.authorities.iter(),
                std::iter::empty(),
                message.additionals.iter(),
            );
            response_handle.send_response(reply).await
        }
        Err(err) => {
            // Only an upstream can produce this: answer() output always decodes (proptest in
            // tests/answer_fuzz.rs). The client still gets an answer, and the operator a reason.
            warn!(
                client = %request.src(),
                id = request.metadata.id,
                error = %err,
                "DNS TCP: the upstream's response does not decode as a DNS message; answering SERVFAIL"
            );
            let reply = MessageResponseBuilder::new(&request.queries, None)
                .error_msg(&request.metadata, ResponseCode::ServFail);
            response_handle.send_response(reply).await
        }
    };
    match sent {
        Ok(info) => info,
        Err(err) => {
            debug!(client = %request.src(), error = %err, "DNS TCP response not sent");
            unanswered(request)
        }
    }
}

/// The question section as received (hickory re-emits those bytes verbatim) and the message.
fn decode(response: &[u8]) -> Result<(Queries, Message), DecodeError> {
    let mut decoder = BinDecoder::new(response);
    let header = Header::read(&mut decoder)?;
    let queries = Queries::read(&mut decoder, usize::from(header.counts.queries))?;
    Ok((queries, Message::from_vec(response)?))
}

/// What a handler reports for a request it did not answer: the request's header turned into a
/// response with no records (hickory only uses it for logging).
fn unanswered(request: &Request) -> ResponseInfo {
    ResponseInfo::from(Header {
        metadata: Metadata::response_from_request(&request.metadata),
        counts: HeaderCounts::default(),
    })
}

/// The open TCP connections: which one a new client displaces when all `max` are taken.
///
/// A connection is *idle* from its accept, and again from each response sent, until its next
/// whole message arrives; while a message is being answered it is *busy* and is never displaced.
/// At the bound, the connection idle the longest is told to close; when every one is busy the
/// new client is closed instead. Locked twice per TCP message and once per accept: TCP is not
/// the hot path, and `max` is a few hundred at most.
pub(super) struct Slots {
    max: usize,
    inner: Mutex<SlotTable>,
    /// Signalled each time a displaced connection's task has closed its socket.
    closed: Notify,
}

#[derive(Default)]
struct SlotTable {
    next_id: u64,
    open: Vec<Slot>,
    /// Displaced connections whose tasks have not closed their sockets yet.
    closing: usize,
}

struct Slot {
    id: u64,
    /// `None` while a message is being answered.
    idle_since: Option<Instant>,
    close: Arc<Notify>,
}

/// What [`Slots::admit`] decided for a new connection.
enum Admission {
    /// Serve it; `displaced` tells whether an idle connection was closed to make room.
    Serve { slot: SlotGuard, displaced: bool },
    /// All `max` connections are answering a message: close the new one.
    Full,
}

impl Slots {
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Slots {
            max: max.max(1),
            inner: Mutex::new(SlotTable::default()),
            closed: Notify::new(),
        })
    }

    fn table(&self) -> MutexGuard<'_, SlotTable> {
        // A panic while holding this lock cannot leave the table inconsistent (every update is
        // one push, remove or field store), so a poisoned lock is used as it is.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Connections open now.
    pub(super) fn open(&self) -> usize {
        self.table().open.len()
    }

    fn admit(self: &Arc<Self>, now: Instant) -> Admission {
        let mut table = self.table();
        let mut displaced = false;
        if table.open.len() >= self.max {
            let longest_idle = table
                .open
                .iter()
                .enumerate()
                .filter_map(|(i, slot)| slot.idle_since.map(|since| (since, i)))
                .min();
            let Some((_, index)) = longest_idle else {
                return Admission::Full;
            };
            // Removed here, so the count is right at once; its task sees the notification
            // (stored if it is not waiting yet) and closes the socket.
            table.open.swap_remove(index).close.notify_one();
            table.closing += 1;
            displaced = true;
        }
        let id = table.next_id;
        table.next_id += 1;
        let close = Arc::new(Notify::new());
        table.open.push(Slot {
            id,
            idle_since: Some(now),
            close: Arc::clone(&close),
        });
        Admission::Serve {
            slot: SlotGuard {
                slots: Arc::clone(self),
                id,
                close,
            },
            displaced,
        }
    }

    /// Waits (at most `limit`) until every displaced connection has closed its socket, so the
    /// accept loop never holds more than `max` descriptors plus the one it just accepted: a
    /// burst of new clients would otherwise accept ahead of the displaced tasks' closes.
    async fn wait_displaced_closed(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.closed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a close between the check and the wait is seen.
            notified.as_mut().enable();
            if self.table().closing == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    fn set_idle(&self, id: u64, idle_since: Option<Instant>) {
        if let Some(slot) = self.table().open.iter_mut().find(|slot| slot.id == id) {
            slot.idle_since = idle_since;
        }
    }
}

/// One admitted connection's place in [`Slots`]; frees it when the connection ends.
struct SlotGuard {
    slots: Arc<Slots>,
    id: u64,
    close: Arc<Notify>,
}

impl SlotGuard {
    fn busy(&self) {
        self.slots.set_idle(self.id, None);
    }

    fn idle(&self) {
        self.slots.set_idle(self.id, Some(Instant::now()));
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut table = self.slots.table();
        if let Some(index) = table.open.iter().position(|slot| slot.id == self.id) {
            table.open.swap_remove(index);
        } else {
            // Displaced: admit already removed it and counted it as closing. The guard drops
            // after the connection's socket (see accept_loop), so the descriptor is gone now.
            table.closing = table.closing.saturating_sub(1);
            drop(table);
            self.slots.closed.notify_waiters();
        }
    }
}

/// Accepts every connection, closes those from outside `allow` at once, makes room for the others
/// in `slots` (displacing the longest-idle connection at the bound), and serves each on its own
/// task until EOF, the idle timeout, displacement, or stop.
pub(super) async fn accept_loop<F: ForwardQuery>(
    listener: TcpListener,
    handler: Arc<TcpHandler<F>>,
    slots: Arc<Slots>,
    idle: Duration,
    stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // EMFILE and friends: back off rather than spin.
                warn!(error = %err, "DNS TCP accept failed; retrying in 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if !handler.shared.allowed(peer.ip()) {
            bump(&handler.counters().dropped_not_allowed);
            continue;
        }
        let slot = match slots.admit(Instant::now()) {
            Admission::Serve { slot, displaced } => {
                if displaced {
                    bump(&handler.counters().tcp_displaced);
                    slots.wait_displaced_closed(Duration::from_secs(1)).await;
                }
                slot
            }
            Admission::Full => {
                bump(&handler.counters().tcp_refused);
                debug!(%peer, "DNS TCP: every connection is answering a query; closing the new one");
                continue;
            }
        };
        let handler = Arc::clone(&handler);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let close = Arc::clone(&slot.close);
            tokio::select! {
                () = serve_connection(stream, peer, &handler, idle, &slot) => {}
                () = close.notified() => {
                    debug!(%peer, "DNS TCP connection closed to make room for a new client (longest idle)");
                }
                // Also fires when the handle is dropped (the sender goes away).
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
            drop(slot);
        });
    }
}

/// One connection, the way hickory-server's own TCP listener serves it: messages in order, each
/// answered before the next is read (so pipelined queries come back in order), closed after
/// `idle` without a whole new message.
async fn serve_connection<F: ForwardQuery>(
    stream: TcpStream,
    peer: SocketAddr,
    handler: &TcpHandler<F>,
    idle: Duration,
    slot: &SlotGuard,
) {
    let _ = stream.set_nodelay(true);
    let (messages, mut sender) =
        DnsTcpStream::from_stream_with_buffer_size(AsyncIoTokioAsStd(stream), peer, RESPONSE_QUEUE);
    let mut messages = TimeoutStream::new(messages, idle);
    while let Some(message) = messages.next().await {
        let bytes = match message {
            Ok(message) => message.into_parts().0,
            Err(err) => {
                // The idle timeout, a reset, or EOF inside a message.
                debug!(%peer, error = %err, "DNS TCP connection closed");
                return;
            }
        };
        // A response sent to a server (QR=1) is reflected or spoofed traffic, and a message
        // shorter than a header cannot be answered: both close the connection, as before hickory.
        if bytes.len() < HEADER_LEN || bytes[2] & 0x80 != 0 {
            bump(&handler.counters().dropped_malformed);
            return;
        }
        slot.busy();
        match Request::from_bytes(bytes.clone(), peer, Protocol::Tcp) {
            Ok(request) => {
                let response_handle = ResponseHandle::new(peer, sender.clone(), Protocol::Tcp);
                handler
                    .handle_request::<_, TokioTime>(&request, response_handle)
                    .await;
            }
            // hickory cannot parse it (bad label, question cut short...): answer() writes the
            // FORMERR, which goes out as it is, since hickory has no Request to encode against.
            Err(_) => {
                let Some(response) = handler.respond(&bytes).await else {
                    return;
                };
                if let Err(err) = sender.send(SerialMessage::new(response, peer)) {
                    debug!(%peer, error = %err, "DNS TCP FORMERR not sent");
                    return;
                }
            }
        }
        slot.idle();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    use hickory_server::proto::rr::RData;
    use hickory_server::Server;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::zone::{ClusterZone, ZoneConfig, ZoneHandle};

    /// Stand-in upstream: never reached by the query below.
    struct NoUpstream;

    impl ForwardQuery for NoUpstream {
        async fn forward_query(&self, query: &[u8], _: Transport, _: u16) -> Vec<u8> {
            query.to_vec()
        }
    }

    fn handler() -> TcpHandler<NoUpstream> {
        let zone = ClusterZone::new(&ZoneConfig {
            cluster_name: "ostest".into(),
            base_domain: "test.metalkube.org".into(),
            api_vips: vec!["192.0.2.5".parse().unwrap()],
            ingress_vips: vec!["192.0.2.6".parse().unwrap()],
            nodes: Vec::new(),
            ttl: 30,
        })
        .unwrap();
        let shared = Arc::new(Shared {
            zone: ZoneHandle::new(zone),
            forwarder: Arc::new(NoUpstream),
            max_udp_size: 512,
            allow: Vec::new(),
            stop: AtomicBool::new(false),
            forwards_in_flight: AtomicUsize::new(0),
        });
        TcpHandler::new(shared, Arc::new(vec![Counters::default()]), 0)
    }

    /// `api.ostest.test.metalkube.org A`, ID 0x0abc, RD.
    fn api_query() -> Vec<u8> {
        let mut query = vec![0x0a, 0xbc, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["api", "ostest", "test", "metalkube", "org"] {
            query.push(label.len() as u8);
            query.extend_from_slice(label.as_bytes());
        }
        query.extend_from_slice(&[0, 0, 1, 0, 1]);
        query
    }

    fn serve(admission: Admission) -> (SlotGuard, bool) {
        match admission {
            Admission::Serve { slot, displaced } => (slot, displaced),
            Admission::Full => panic!("expected a slot"),
        }
    }

    #[test]
    fn slots_displace_the_longest_idle_and_never_a_busy_connection() {
        let slots = Slots::new(2);
        let t0 = Instant::now();
        let (a, displaced) = serve(slots.admit(t0));
        assert!(!displaced);
        let (b, _) = serve(slots.admit(t0 + Duration::from_secs(1)));
        assert_eq!(slots.open(), 2);

        // `a` is idle the longest: it is told to close and leaves the table at once.
        let (c, displaced) = serve(slots.admit(t0 + Duration::from_secs(2)));
        assert!(displaced);
        assert_eq!(slots.open(), 2);
        let close_a = Arc::clone(&a.close);
        let notified = close_a.notified();
        futures_util::pin_mut!(notified);
        // The permit was stored before anyone waited: the first poll completes.
        assert!(futures_util::FutureExt::now_or_never(notified).is_some());
        drop(a);
        assert_eq!(
            slots.open(),
            2,
            "dropping a displaced guard frees nothing twice"
        );

        // Both open connections busy: a new client is refused, nobody is displaced.
        b.busy();
        c.busy();
        assert!(matches!(
            slots.admit(t0 + Duration::from_secs(3)),
            Admission::Full
        ));
        // `b` answered and is idle again: it is the one displaced, not the busy `c`.
        b.idle();
        let (_d, displaced) = serve(slots.admit(Instant::now()));
        assert!(displaced);
        let close_b = Arc::clone(&b.close);
        assert!(futures_util::FutureExt::now_or_never(close_b.notified()).is_some());
        let close_c = Arc::clone(&c.close);
        assert!(futures_util::FutureExt::now_or_never(close_c.notified()).is_none());
        drop((b, c));
        assert_eq!(slots.open(), 1);
    }

    /// The handler is a plain hickory RequestHandler: hickory's own `Server::register_listener`
    /// serves it unchanged, so dropping vipd's accept loop later is one call.
    #[tokio::test]
    async fn handler_answers_under_hickorys_own_tcp_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = Server::new(handler());
        server.register_listener(listener, Duration::from_secs(2), RESPONSE_QUEUE);

        let mut stream = TcpStream::connect(addr).await.unwrap();
        let query = api_query();
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&query);
        stream.write_all(&framed).await.unwrap();
        let mut prefix = [0u8; 2];
        let read = async {
            stream.read_exact(&mut prefix).await.unwrap();
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
            stream.read_exact(&mut body).await.unwrap();
            body
        };
        let body = tokio::time::timeout(Duration::from_secs(2), read)
            .await
            .unwrap();
        let reply = Message::from_vec(&body).unwrap();
        assert_eq!(reply.metadata.id, 0x0abc);
        assert!(reply.metadata.authoritative);
        assert_eq!(reply.answers.len(), 1);
        assert!(
            matches!(&reply.answers[0].data, RData::A(a) if a.0 == "192.0.2.5".parse::<std::net::Ipv4Addr>().unwrap()),
            "{reply:?}"
        );

        tokio::time::timeout(Duration::from_secs(2), server.shutdown_gracefully())
            .await
            .unwrap()
            .unwrap();
    }
}
