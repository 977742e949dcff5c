//! Transparent forwarding to the upstream resolvers, CoreDNS `forward . <upstreams> { policy
//! sequential }` plus `cache 30` and `bufsize 512` (openshift.md section 5).
//!
//! The client's query goes upstream as it came, with only two fields changed: a fresh random ID
//! and, when it has an OPT record, the advertised UDP payload size (clamped to what the client
//! accepts, so the upstream truncates rather than us). The answer comes back byte for byte, with
//! the client's ID restored and TTLs capped at `max_ttl`.
//!
//! Policy, per query:
//! - Upstreams are tried one after another in configured order. A timeout, a network error,
//!   SERVFAIL, REFUSED or a malformed answer moves on to the next; any other answer (NOERROR,
//!   NXDOMAIN, FORMERR, NOTIMP...) is relayed.
//! - A timeout or network error holds the upstream down for `unhealthy_hold`: queries try it
//!   after the healthy ones, so a dead first resolver costs one timeout per hold period, not one
//!   per query. When the hold expires, the next query probes it in its normal place (and renews
//!   the hold for the others until that probe has an answer); a good answer clears the hold.
//!   SERVFAIL and REFUSED do not hold an upstream down: they are often specific to one name (a
//!   broken DNSSEC delegation), and the server is evidently alive.
//! - Each attempt waits at most `attempt_timeout`, the whole query at most `query_deadline`.
//! - When no upstream gives an answer: the last SERVFAIL/REFUSED an upstream sent is relayed
//!   (it may carry an extended error, RFC 8914), else the forwarder answers SERVFAIL itself. With
//!   no upstream configured it answers SERVFAIL at once (not REFUSED: glibc moves on to the next
//!   nameserver on both, but SERVFAIL tells an operator reading a capture that the server tried).
//! - An upstream answer with TC=1: for a TCP client, the same upstream is asked again over TCP.
//!   For a UDP client the answer cannot fit either, so it gets header + question with TC=1 and
//!   retries over TCP itself (RFC 7766 section 5).
//! - With [`ForwarderConfig::force_tcp`] (CoreDNS `force_tcp`) every query goes to the upstreams
//!   over TCP, UDP is never used; the failover rules are the same. TCP connections are reused
//!   and bounded per upstream (`forward::tcp`).
//! - Answers are cached ([`ForwarderConfig::cache_capacity`] entries) for their smallest TTL,
//!   negative answers for their SOA's negative TTL (RFC 2308 section 5), both capped at `max_ttl`.

mod cache;
mod error;
// The upstream-reply path without sockets, for the fuzz target dns_forward_reply; not an API.
#[doc(hidden)]
pub mod fuzzing;
mod metrics;
mod resolv_conf;
mod tcp;
mod upstream;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;

use cache::{cacheable_ttl, CacheKey, CachedAnswer, ResponseCache};
use error::ExchangeError;
use metrics::{bump, Counters};
use tcp::TcpLimits;
use upstream::{Admission, Upstream};
use wire::{Layout, OptRecord};

pub use metrics::{ForwardMetrics, LatencyBucket, LATENCY_BOUNDS};
pub use resolv_conf::{
    upstreams_from_resolv_conf, ResolvConfWatch, ResolvConfWatcher, Warning, DNS_PORT,
};
pub use upstream::UpstreamStatus;

/// RFC 1035 section 4.2.1: the size every UDP client accepts; RFC 6891 section 6.2.5: smaller
/// advertised sizes are treated as this.
const MIN_UDP_PAYLOAD: u16 = 512;

/// How the client's query arrived, which bounds the answer it can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientTransport {
    /// `max_response`: the largest datagram to send back (the client's EDNS size clamped by the
    /// server's `bufsize`, 512 without EDNS). Values under 512 are treated as 512.
    Udp {
        max_response: u16,
    },
    Tcp,
}

/// Forwarder settings; [`Default`] gives the values described on each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwarderConfig {
    /// Initial upstreams, tried in this order. May be empty (then SERVFAIL until set).
    pub upstreams: Vec<SocketAddr>,
    /// Longest wait for one upstream's answer (default 2 s).
    pub attempt_timeout: Duration,
    /// Longest time one query may spend across all upstreams (default 5 s, glibc's own timeout).
    pub query_deadline: Duration,
    /// Queries waiting on upstreams at once; more get SERVFAIL immediately (default 1024).
    pub max_in_flight: usize,
    /// Connected UDP sockets per upstream, each with its own source port (default 4).
    pub sockets_per_upstream: usize,
    /// Cached answers (default 10 000); 0 disables the cache.
    pub cache_capacity: usize,
    /// Largest TTL a client sees and the longest an answer is cached, seconds (default 30).
    pub max_ttl: u32,
    /// How long an upstream that timed out or errored is tried last (default 5 s).
    pub unhealthy_hold: Duration,
    /// EDNS payload size advertised upstream for TCP clients (default 1232, DNS flag day 2020).
    pub upstream_udp_size: u16,
    /// Every query goes to the upstreams over TCP, never UDP (CoreDNS `force_tcp`; default
    /// false: UDP, and TCP only after a truncated answer).
    pub force_tcp: bool,
    /// TCP exchanges at once per upstream, each on its own connection, and idle connections
    /// kept for reuse (default 16). A query finding them all busy waits within its attempt
    /// timeout, then tries the next upstream.
    pub tcp_connections_per_upstream: usize,
    /// How long an idle TCP connection is kept for the next query (default 10 s, CoreDNS
    /// `expire`).
    pub tcp_idle_timeout: Duration,
}

impl Default for ForwarderConfig {
    fn default() -> Self {
        Self {
            upstreams: Vec::new(),
            attempt_timeout: Duration::from_secs(2),
            query_deadline: Duration::from_secs(5),
            max_in_flight: 1024,
            sockets_per_upstream: 4,
            cache_capacity: 10_000,
            max_ttl: 30,
            unhealthy_hold: Duration::from_secs(5),
            upstream_udp_size: 1232,
            force_tcp: false,
            tcp_connections_per_upstream: 16,
            tcp_idle_timeout: Duration::from_secs(10),
        }
    }
}

/// A forwarder setting outside what works.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    #[error("forwarder setting {setting} is {value}; expected {expected}")]
    InvalidSetting {
        setting: &'static str,
        value: String,
        expected: &'static str,
    },
}

fn check(
    ok: bool,
    setting: &'static str,
    value: impl std::fmt::Debug,
    expected: &'static str,
) -> Result<(), ForwardError> {
    if ok {
        Ok(())
    } else {
        Err(ForwardError::InvalidSetting {
            setting,
            value: format!("{value:?}"),
            expected,
        })
    }
}

/// Relays client queries to the upstream resolvers. Share it through an `Arc`.
pub struct Forwarder {
    config: ForwarderConfig,
    upstreams: ArcSwap<Vec<Arc<Upstream>>>,
    cache: ResponseCache,
    in_flight: Semaphore,
    counters: Arc<Counters>,
}

/// How one query ended upstream.
enum Outcome {
    /// An answer to relay (and maybe cache), already walked.
    Answer(Vec<u8>, Layout),
    /// An answer with TC=1 that a UDP client could not take either: header + question only.
    TooLargeForClient(Vec<u8>),
    /// Every upstream failed; the last SERVFAIL/REFUSED one sent, if any.
    Failed(Option<(Vec<u8>, Layout)>),
}

impl Forwarder {
    pub fn new(config: ForwarderConfig) -> Result<Self, ForwardError> {
        check(
            !config.attempt_timeout.is_zero(),
            "attempt_timeout",
            config.attempt_timeout,
            "more than zero",
        )?;
        check(
            config.query_deadline >= config.attempt_timeout,
            "query_deadline",
            config.query_deadline,
            "at least attempt_timeout",
        )?;
        check(
            (1..=Semaphore::MAX_PERMITS).contains(&config.max_in_flight),
            "max_in_flight",
            config.max_in_flight,
            "at least 1",
        )?;
        check(
            (1..=64).contains(&config.sockets_per_upstream),
            "sockets_per_upstream",
            config.sockets_per_upstream,
            "1 to 64",
        )?;
        check(
            config.max_ttl > 0,
            "max_ttl",
            config.max_ttl,
            "more than 0 seconds",
        )?;
        check(
            !config.unhealthy_hold.is_zero(),
            "unhealthy_hold",
            config.unhealthy_hold,
            "more than zero",
        )?;
        check(
            config.upstream_udp_size >= MIN_UDP_PAYLOAD,
            "upstream_udp_size",
            config.upstream_udp_size,
            "at least 512 bytes",
        )?;
        check(
            (1..=1024).contains(&config.tcp_connections_per_upstream),
            "tcp_connections_per_upstream",
            config.tcp_connections_per_upstream,
            "1 to 1024",
        )?;
        check(
            !config.tcp_idle_timeout.is_zero(),
            "tcp_idle_timeout",
            config.tcp_idle_timeout,
            "more than zero",
        )?;
        let forwarder = Self {
            cache: ResponseCache::new(config.cache_capacity),
            in_flight: Semaphore::new(config.max_in_flight),
            counters: Arc::new(Counters::default()),
            upstreams: ArcSwap::from_pointee(Vec::new()),
            config,
        };
        forwarder.set_upstreams(forwarder.config.upstreams.clone());
        if forwarder.config.upstreams.is_empty() {
            tracing::info!("forwarder starts without upstream resolvers; forwarded names get SERVFAIL until some are set");
        }
        Ok(forwarder)
    }

    /// Replaces the upstream list. Upstreams kept from the old list keep their sockets and
    /// health; removed ones close their sockets once their in-flight queries finish.
    pub fn set_upstreams(&self, upstreams: Vec<SocketAddr>) {
        let current = self.upstreams.load();
        let mut next: Vec<Arc<Upstream>> = Vec::with_capacity(upstreams.len());
        for addr in upstreams {
            if next.iter().any(|u| u.addr == addr) {
                continue;
            }
            let upstream = current
                .iter()
                .find(|u| u.addr == addr)
                .cloned()
                .unwrap_or_else(|| {
                    Arc::new(Upstream::new(
                        addr,
                        self.config.sockets_per_upstream,
                        TcpLimits {
                            max_connections: self.config.tcp_connections_per_upstream,
                            idle_timeout: self.config.tcp_idle_timeout,
                        },
                        Arc::clone(&self.counters),
                    ))
                });
            next.push(upstream);
        }
        // Logged on the change to empty only, not per query; the resolv.conf watcher also says
        // which lines were skipped and why.
        if next.is_empty() && !current.is_empty() {
            tracing::warn!(
                "no upstream resolvers: names outside the cluster zone get SERVFAIL until resolv.conf lists a resolver other than this node"
            );
        }
        self.upstreams.store(Arc::new(next));
    }

    /// Every upstream in order, with its health and counters.
    pub fn upstreams(&self) -> Vec<UpstreamStatus> {
        let now = Instant::now();
        self.upstreams
            .load()
            .iter()
            .map(|u| u.status(now))
            .collect()
    }

    pub fn metrics(&self) -> ForwardMetrics {
        self.counters.snapshot()
    }

    /// What [`Forwarder::forward`] would answer, when that answer is in the cache: without
    /// waiting, so the caller (a UDP worker) can answer in its own thread and batch the reply
    /// with its local answers. `None` when the query is not a well-formed QUERY whose answer is
    /// cached; then call `forward`, which counts it. A hit is counted exactly as `forward`
    /// counts one.
    pub fn cached(&self, query: &[u8], transport: ClientTransport) -> Option<Vec<u8>> {
        if query.len() < wire::HEADER_LEN
            || wire::is_response(query)
            || wire::opcode(query) != wire::OPCODE_QUERY
        {
            return None;
        }
        let layout = Layout::parse(query).ok()?;
        let hit = self.cache.get(&cache_key(query, &layout), Instant::now())?;
        bump(&self.counters.queries);
        bump(&self.counters.cache_hits);
        Some(self.answer_from_cache(query, &layout, &hit, transport))
    }

    /// [`Forwarder::cached`] written into `out` instead of a new vector, for the UDP workers'
    /// batches: the entry is copied straight from the cache under its lock, and nothing is
    /// allocated but the question's name. `None` (nothing counted) on a miss, and also when the
    /// entry does not fit `out` or has to be cut for a UDP client; [`Forwarder::forward`] then
    /// serves it from the cache as usual.
    pub fn cached_into(
        &self,
        query: &[u8],
        transport: ClientTransport,
        out: &mut [u8],
    ) -> Option<usize> {
        if query.len() < wire::HEADER_LEN
            || wire::is_response(query)
            || wire::opcode(query) != wire::OPCODE_QUERY
        {
            return None;
        }
        let layout = Layout::parse(query).ok()?;
        let limit = match transport {
            ClientTransport::Udp { max_response } => usize::from(max_response.max(MIN_UDP_PAYLOAD)),
            ClientTransport::Tcp => usize::MAX,
        };
        let question_end = layout.question_end;
        let key = CacheKey {
            edns: layout.opt.is_some(),
            dnssec_ok: layout.opt.is_some_and(|opt| opt.dnssec_ok),
            checking_disabled: wire::checking_disabled(query),
            question: layout.question,
        };
        let written = self.cache.with_hit(&key, Instant::now(), |hit| {
            let response = out
                .get_mut(..hit.bytes.len())
                .filter(|r| r.len() <= limit)?;
            response.copy_from_slice(hit.bytes);
            personalise(response, query, question_end, hit.question_end);
            wire::age_ttls(response, hit.ttl_offsets, hit.age);
            Some(response.len())
        })??;
        bump(&self.counters.queries);
        bump(&self.counters.cache_hits);
        Some(written)
    }

    /// The client's answer built from a cache entry: its ID, RD bit and letter case, the TTLs
    /// aged, cut to what the client takes.
    fn answer_from_cache(
        &self,
        query: &[u8],
        layout: &Layout,
        hit: &CachedAnswer,
        transport: ClientTransport,
    ) -> Vec<u8> {
        let mut response = hit.bytes.to_vec();
        personalise(&mut response, query, layout.question_end, hit.question_end);
        wire::age_ttls(&mut response, &hit.ttl_offsets, hit.age);
        self.fit(response, hit.question_end, hit.opt.as_ref(), transport)
    }

    /// Relays `query` (a complete DNS message from a client) and returns the answer to send
    /// back, with the client's ID; for UDP, at most `max_response` bytes (TC=1 when cut).
    /// Never fails: SERVFAIL when no upstream answers in time, FORMERR for a message that is not
    /// one well-formed question, NOTIMP for opcodes other than QUERY. Returns an empty vector,
    /// meaning "send nothing", for a message shorter than a header or one that is itself a
    /// response (answering those could start a loop between two servers).
    pub async fn forward(&self, query: &[u8], transport: ClientTransport) -> Vec<u8> {
        bump(&self.counters.queries);
        if query.len() < wire::HEADER_LEN || wire::is_response(query) {
            bump(&self.counters.malformed_queries);
            return Vec::new();
        }
        let layout = match Layout::parse(query) {
            Ok(layout) => layout,
            Err(error) => {
                bump(&self.counters.malformed_queries);
                tracing::debug!(%error, "client query rejected with FORMERR");
                return wire::error_response(
                    query,
                    None,
                    None,
                    wire::RCODE_FORMERR,
                    self.payload_size(transport),
                );
            }
        };
        if wire::opcode(query) != wire::OPCODE_QUERY {
            return wire::error_response(
                query,
                Some(layout.question_end),
                layout.opt.as_ref(),
                wire::RCODE_NOTIMP,
                self.payload_size(transport),
            );
        }
        let key = cache_key(query, &layout);
        if let Some(hit) = self.cache.get(&key, Instant::now()) {
            bump(&self.counters.cache_hits);
            return self.answer_from_cache(query, &layout, &hit, transport);
        }
        bump(&self.counters.cache_misses);
        let Ok(_permit) = self.in_flight.try_acquire() else {
            bump(&self.counters.rejected_in_flight);
            return self.servfail(query, &layout, transport);
        };
        let started = Instant::now();
        let outcome = self.resolve(query, &layout, transport).await;
        let client_id = wire::id(query);
        match outcome {
            Outcome::Answer(mut response, answer_layout) => {
                self.counters.observe_latency(started.elapsed());
                wire::cap_ttls(
                    &mut response,
                    &answer_layout.ttl_offsets,
                    self.config.max_ttl,
                );
                if let Some(ttl) = cacheable_ttl(&response, &answer_layout, self.config.max_ttl) {
                    self.cache
                        .insert(key, &response, &answer_layout, ttl, Instant::now());
                }
                wire::set_id(&mut response, client_id);
                self.fit(
                    response,
                    answer_layout.question_end,
                    answer_layout.opt.as_ref(),
                    transport,
                )
            }
            Outcome::TooLargeForClient(mut response) => {
                self.counters.observe_latency(started.elapsed());
                bump(&self.counters.truncated_for_client);
                wire::set_id(&mut response, client_id);
                response
            }
            Outcome::Failed(Some((mut response, answer_layout))) => {
                wire::set_id(&mut response, client_id);
                self.fit(
                    response,
                    answer_layout.question_end,
                    answer_layout.opt.as_ref(),
                    transport,
                )
            }
            Outcome::Failed(None) => self.servfail(query, &layout, transport),
        }
    }

    async fn resolve(&self, query: &[u8], layout: &Layout, transport: ClientTransport) -> Outcome {
        let deadline = Instant::now() + self.config.query_deadline;
        let order = self.attempt_order(Instant::now());
        let mut outgoing = query.to_vec();
        // What the upstream may send over UDP: RFC 6891 section 6.2.3 sizes, RFC 1035 512
        // without EDNS. For a UDP client, no more than it takes (CoreDNS `bufsize`).
        let upstream_limit = match (layout.opt, transport) {
            (None, _) => MIN_UDP_PAYLOAD,
            (Some(opt), ClientTransport::Udp { max_response }) => {
                opt.payload_size.min(max_response).max(MIN_UDP_PAYLOAD)
            }
            (Some(_), ClientTransport::Tcp) => self.config.upstream_udp_size,
        };
        if let Some(opt) = layout.opt {
            outgoing[opt.payload_size_offset..opt.payload_size_offset + 2]
                .copy_from_slice(&upstream_limit.to_be_bytes());
        }
        let mut last_error_answer = None;
        for upstream in order {
            let now = Instant::now();
            let Some(remaining) = deadline
                .checked_duration_since(now)
                .filter(|d| !d.is_zero())
            else {
                break;
            };
            let timeout = remaining.min(self.config.attempt_timeout);
            let first = if self.config.force_tcp {
                upstream
                    .exchange_tcp(&mut outgoing, &layout.question, timeout)
                    .await
            } else {
                upstream
                    .exchange_udp(&mut outgoing, &layout.question, timeout)
                    .await
            };
            let result = match first {
                // Over TCP (force_tcp) a TC=1 answer is all there is; it is relayed as it came.
                Ok(answer) if !self.config.force_tcp && wire::is_truncated(&answer) => {
                    match transport {
                        ClientTransport::Udp { max_response } if upstream_limit >= max_response => {
                            upstream.record_answer(now.elapsed());
                            return self.too_large_for_client(&answer, max_response);
                        }
                        _ => {
                            let remaining = deadline.saturating_duration_since(Instant::now());
                            let timeout = remaining.min(self.config.attempt_timeout);
                            upstream
                                .exchange_tcp(&mut outgoing, &layout.question, timeout)
                                .await
                        }
                    }
                }
                other => other,
            };
            let rtt = now.elapsed();
            let failure = match result {
                Ok(answer) => match Layout::parse(&answer) {
                    Ok(answer_layout) => {
                        let rcode = wire::rcode(&answer);
                        if rcode != wire::RCODE_SERVFAIL && rcode != wire::RCODE_REFUSED {
                            upstream.record_answer(rtt);
                            return Outcome::Answer(answer, answer_layout);
                        }
                        upstream.record_error_rcode(rtt);
                        tracing::debug!(upstream = %upstream.addr, rcode, "upstream answered with an error; trying the next");
                        last_error_answer = Some((answer, answer_layout));
                        continue;
                    }
                    Err(error) => ExchangeError::Malformed(error),
                },
                Err(error) => error,
            };
            tracing::debug!(upstream = %upstream.addr, error = %failure, "upstream attempt failed; trying the next");
            upstream.record_failure(&failure, Instant::now(), self.config.unhealthy_hold);
        }
        Outcome::Failed(last_error_answer)
    }

    /// Healthy upstreams (and ones due for a probe) in configured order, then held-down ones.
    fn attempt_order(&self, now: Instant) -> Vec<Arc<Upstream>> {
        let upstreams = self.upstreams.load();
        let mut order = Vec::with_capacity(upstreams.len());
        let mut last = Vec::new();
        for upstream in upstreams.iter() {
            match upstream.admit(now, self.config.unhealthy_hold) {
                Admission::InOrder => order.push(Arc::clone(upstream)),
                Admission::Last => last.push(Arc::clone(upstream)),
            }
        }
        order.extend(last);
        order
    }

    fn too_large_for_client(&self, answer: &[u8], max_response: u16) -> Outcome {
        // A truncated answer may stop mid-record, so only the question is required to parse.
        let opt = Layout::parse(answer).ok().and_then(|l| l.opt);
        match wire::question_end(answer) {
            Ok(end) => Outcome::TooLargeForClient(wire::truncated_copy(
                answer,
                end,
                opt.as_ref(),
                usize::from(max_response.max(MIN_UDP_PAYLOAD)),
            )),
            Err(_) => Outcome::Failed(None),
        }
    }

    /// Cuts an answer too large for a UDP client to header + question with TC=1.
    fn fit(
        &self,
        response: Vec<u8>,
        question_end: usize,
        opt: Option<&OptRecord>,
        transport: ClientTransport,
    ) -> Vec<u8> {
        match transport {
            ClientTransport::Udp { max_response }
                if response.len() > usize::from(max_response.max(MIN_UDP_PAYLOAD)) =>
            {
                bump(&self.counters.truncated_for_client);
                wire::truncated_copy(
                    &response,
                    question_end,
                    opt,
                    usize::from(max_response.max(MIN_UDP_PAYLOAD)),
                )
            }
            _ => response,
        }
    }

    fn servfail(&self, query: &[u8], layout: &Layout, transport: ClientTransport) -> Vec<u8> {
        bump(&self.counters.servfail_produced);
        wire::error_response(
            query,
            Some(layout.question_end),
            layout.opt.as_ref(),
            wire::RCODE_SERVFAIL,
            self.payload_size(transport),
        )
    }

    /// The payload size our own OPT records advertise.
    fn payload_size(&self, transport: ClientTransport) -> u16 {
        match transport {
            ClientTransport::Udp { max_response } => max_response.max(MIN_UDP_PAYLOAD),
            ClientTransport::Tcp => self.config.upstream_udp_size,
        }
    }
}

/// A cached answer (first fetched for another client, or with another ID) made this client's:
/// its ID, its RD bit (RFC 1035 section 4.1.1: copied into the response) and its spelling of
/// the name, which clients using 0x20 randomisation check.
fn personalise(response: &mut [u8], query: &[u8], query_question_end: usize, question_end: usize) {
    wire::set_id(response, wire::id(query));
    wire::copy_rd(response, query);
    if question_end == query_question_end {
        response[wire::HEADER_LEN..question_end]
            .copy_from_slice(&query[wire::HEADER_LEN..question_end]);
    }
}

/// The cache identity of a parsed client query.
fn cache_key(query: &[u8], layout: &Layout) -> CacheKey {
    CacheKey {
        question: layout.question.clone(),
        edns: layout.opt.is_some(),
        dnssec_ok: layout.opt.is_some_and(|opt| opt.dnssec_ok),
        checking_disabled: wire::checking_disabled(query),
    }
}
