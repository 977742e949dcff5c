//! Forwarder counters: lock-free atomics bumped on the query path, copied out as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets for queries answered by an upstream (not cache hits).
/// Loopback and LAN resolvers land in the first few, a recursive miss across the internet in
/// the middle, an upstream failover near the per-upstream timeout.
pub const LATENCY_BOUNDS: [Duration; 12] = [
    Duration::from_micros(500),
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// One histogram bucket: queries whose upstream latency was at most `le` (None: above the last
/// bound) and above the previous bucket's bound. Counts are per bucket, not cumulative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyBucket {
    pub le: Option<Duration>,
    pub count: u64,
}

/// Snapshot of the forwarder's counters since it was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardMetrics {
    /// Calls to `forward`.
    pub queries: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Queries sent to an upstream over UDP, counting every attempt of a failover.
    pub upstream_udp_queries: u64,
    /// Queries sent to an upstream over TCP (after a TC=1 answer, or all with `force_tcp`).
    pub upstream_tcp_queries: u64,
    /// TCP connections opened to upstreams; fewer than `upstream_tcp_queries` when connections
    /// are reused.
    pub upstream_tcp_connections: u64,
    /// Answers cut to header + question with TC=1 because the UDP client accepts less.
    pub truncated_for_client: u64,
    /// Datagrams from an upstream matching no in-flight query (wrong ID or question: spoofed,
    /// or arriving after the query timed out), dropped.
    pub unmatched_responses: u64,
    /// SERVFAIL answers built by the forwarder itself (no upstream, all failed, over the bound).
    pub servfail_produced: u64,
    /// Queries refused at once because `max_in_flight` were already waiting on upstreams.
    pub rejected_in_flight: u64,
    /// Client messages that are not a single-question query; answered FORMERR or dropped.
    pub malformed_queries: u64,
    pub latency: Vec<LatencyBucket>,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub queries: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub upstream_udp_queries: AtomicU64,
    pub upstream_tcp_queries: AtomicU64,
    pub upstream_tcp_connections: AtomicU64,
    pub truncated_for_client: AtomicU64,
    pub unmatched_responses: AtomicU64,
    pub servfail_produced: AtomicU64,
    pub rejected_in_flight: AtomicU64,
    pub malformed_queries: AtomicU64,
    latency: [AtomicU64; LATENCY_BOUNDS.len() + 1],
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn observe_latency(&self, elapsed: Duration) {
        let bucket = LATENCY_BOUNDS
            .iter()
            .position(|&bound| elapsed <= bound)
            .unwrap_or(LATENCY_BOUNDS.len());
        bump(&self.latency[bucket]);
    }

    pub(crate) fn snapshot(&self) -> ForwardMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ForwardMetrics {
            queries: get(&self.queries),
            cache_hits: get(&self.cache_hits),
            cache_misses: get(&self.cache_misses),
            upstream_udp_queries: get(&self.upstream_udp_queries),
            upstream_tcp_queries: get(&self.upstream_tcp_queries),
            upstream_tcp_connections: get(&self.upstream_tcp_connections),
            truncated_for_client: get(&self.truncated_for_client),
            unmatched_responses: get(&self.unmatched_responses),
            servfail_produced: get(&self.servfail_produced),
            rejected_in_flight: get(&self.rejected_in_flight),
            malformed_queries: get(&self.malformed_queries),
            latency: self
                .latency
                .iter()
                .enumerate()
                .map(|(i, c)| LatencyBucket {
                    le: LATENCY_BOUNDS.get(i).copied(),
                    count: get(c),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_on_a_bound_falls_in_that_bucket_and_beyond_the_last_in_overflow() {
        let counters = Counters::default();
        counters.observe_latency(Duration::from_millis(1));
        counters.observe_latency(Duration::from_secs(3));
        let latency = counters.snapshot().latency;
        assert_eq!(
            latency[1],
            LatencyBucket {
                le: Some(Duration::from_millis(1)),
                count: 1
            }
        );
        assert_eq!(latency[12], LatencyBucket { le: None, count: 1 });
        assert_eq!(latency.iter().map(|b| b.count).sum::<u64>(), 2);
    }
}
