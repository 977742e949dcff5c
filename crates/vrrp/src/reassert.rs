//! How often a Master answers another router's claim to be Master by re-announcing its VIPs
//! (the router's `Event::LowerPriorityMaster` path).
//!
//! Around one take-over a router that is about to yield can claim Master several times within a
//! millisecond (its own take-over, its re-assert against a third router, its yield notice), and
//! each claim follows its gratuitous ARP; every one must be answered or clients stay on the node
//! that yields. A peer that keeps claiming (a misconfigured router, a flood of forged adverts)
//! must not make us flood the segment, and the bookkeeping must stay bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Claims answered per peer per window (one advert interval).
pub const PER_WINDOW: u8 = 4;
/// Peers tracked at once.
pub const MAX_PEERS: usize = 16;

/// Per-peer budget of re-announcements, bounded in peers and per window.
#[derive(Debug, Clone, Default)]
pub struct ReassertGuard {
    /// Per peer: when its current window began and how many claims were answered in it.
    peers: HashMap<IpAddr, (Instant, u8)>,
}

impl ReassertGuard {
    /// Whether to re-announce for this claim from `from` (and record it if so).
    pub fn allow(&mut self, from: IpAddr, now: Instant, window: Duration) -> bool {
        let fresh = |start: Instant| now.saturating_duration_since(start) < window;
        if let Some((start, count)) = self.peers.get_mut(&from) {
            if !fresh(*start) {
                *start = now;
                *count = 0;
            }
            if *count >= PER_WINDOW {
                return false;
            }
            *count += 1;
            return true;
        }
        if self.peers.len() >= MAX_PEERS {
            self.peers.retain(|_, (start, _)| fresh(*start));
            if self.peers.len() >= MAX_PEERS {
                // Many "Masters" at once is a flood, not a partition healing.
                return false;
            }
        }
        self.peers.insert(from, (now, 1));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_burst_of_claims_from_one_peer_is_answered_up_to_the_limit() {
        let mut g = ReassertGuard::default();
        let t = Instant::now();
        let answered: Vec<bool> = (0..6)
            .map(|i| g.allow(peer(12), t + Duration::from_micros(i * 100), SECOND))
            .collect();
        assert_eq!(answered, [true, true, true, true, false, false]);
    }

    #[test]
    fn claims_from_two_peers_are_counted_apart() {
        let mut g = ReassertGuard::default();
        let t = Instant::now();
        for _ in 0..PER_WINDOW {
            assert!(g.allow(peer(11), t, SECOND));
        }
        assert!(!g.allow(peer(11), t, SECOND));
        assert!(g.allow(peer(12), t, SECOND));
    }

    #[test]
    fn the_count_starts_again_after_one_window() {
        let mut g = ReassertGuard::default();
        let t = Instant::now();
        for _ in 0..PER_WINDOW {
            assert!(g.allow(peer(12), t, SECOND));
        }
        assert!(!g.allow(peer(12), t + Duration::from_millis(999), SECOND));
        assert!(g.allow(peer(12), t + SECOND, SECOND));
    }

    #[test]
    fn a_flood_of_distinct_sources_is_bounded_and_then_ignored() {
        let mut g = ReassertGuard::default();
        let t = Instant::now();
        let answered = (0..=255u8).filter(|n| g.allow(peer(*n), t, SECOND)).count();
        assert_eq!(answered, MAX_PEERS);
        assert_eq!(g.peers.len(), MAX_PEERS);
        // A known peer gets a fresh window; once the old windows are over, a new peer gets room.
        assert!(g.allow(peer(7), t + SECOND, SECOND));
        assert!(g.allow(IpAddr::from([198, 51, 100, 1]), t + SECOND, SECOND));
        assert!(g.peers.len() <= MAX_PEERS);
    }
}
