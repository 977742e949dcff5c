//! Who holds a VIP over time: a background sampler (each node's `ip -j addr` in its namespace,
//! at a fixed period) and what a run of samples says: windows with two or more holders, windows
//! with none, takeovers and moves.
//!
//! One sample reads the nodes in order and then in reverse order (`0, 1, 2, 2, 1, 0`), which
//! takes a few milliseconds. A node counts as a holder if either read saw the VIP, so a sample
//! with no holder proves a real gap: a hand-over that happens between two reads cannot look like
//! one (node 0 not yet holding at its two reads, node 2 no longer holding at its two, which lie
//! between node 0's). A sample's time is taken when its first read starts. A window seen in
//! samples `a..=b` really lasted at least `t_b - t_a` and at most `t_{b+1} - t_{a-1}`;
//! [`Window::len`] is that upper bound, so "at most X" assertions on it are conservative.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use crate::host::Host;
use crate::topology::Lab;

/// The holders of the VIP at one moment (node indices, ascending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Since the sampler started.
    pub at: Duration,
    /// Nodes seen holding by either read.
    pub holders: Vec<usize>,
    /// Nodes seen holding by both reads (so throughout the sample, barring a flap).
    pub throughout: Vec<usize>,
}

/// Samples the holders of one VIP on every node of a lab, in a thread, until stopped.
pub struct HolderSampler {
    started: Instant,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Vec<Sample>>>>,
    every: Duration,
}

impl HolderSampler {
    /// Starts sampling `vip` on every node of `lab` every `every` (the period is counted from
    /// one sample's start to the next, so it does not drift with the cost of a sample). The
    /// thread ends by itself after `limit`, so a test that forgets to stop it cannot leak it.
    pub fn start(lab: &Lab, vip: IpAddr, every: Duration, limit: Duration) -> HolderSampler {
        let hosts: Vec<Host> = (0..lab.len()).map(|i| lab.node(i).clone()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut samples = Vec::new();
            let mut next = started;
            while !flag.load(Ordering::SeqCst) && started.elapsed() < limit {
                let at = started.elapsed();
                let mut seen = vec![0u8; hosts.len()];
                let order = (0..hosts.len()).chain((0..hosts.len()).rev());
                for i in order {
                    if hosts[i].addresses()?.iter().any(|a| a.addr == vip) {
                        seen[i] += 1;
                    }
                }
                let nodes = |min: u8| (0..hosts.len()).filter(|&i| seen[i] >= min).collect();
                samples.push(Sample {
                    at,
                    holders: nodes(1),
                    throughout: nodes(2),
                });
                next += every;
                match next.checked_duration_since(Instant::now()) {
                    Some(wait) => thread::sleep(wait),
                    // A slow sample: start the next one at once, and count from now.
                    None => next = Instant::now(),
                }
            }
            Ok(samples)
        });
        HolderSampler {
            started,
            stop,
            thread: Some(thread),
            every,
        }
    }

    /// Time since the sampler started: marks events on the samples' clock.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops the thread and returns what it saw.
    pub fn stop(mut self) -> Result<Timeline> {
        self.stop.store(true, Ordering::SeqCst);
        let samples = self
            .thread
            .take()
            .ok_or_else(|| anyhow!("holder sampler already stopped"))?
            .join()
            .map_err(|_| anyhow!("the holder sampler thread panicked"))??;
        Ok(Timeline {
            every: self.every,
            samples,
        })
    }
}

impl Drop for HolderSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A run of consecutive samples with some property (e.g. two holders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Index of the first sample of the run.
    pub first: usize,
    /// Index of the last sample of the run.
    pub last: usize,
    /// Time of the first sample of the run.
    pub start: Duration,
    /// Upper bound of the run's real length: from the sample before it to the sample after it
    /// (or the run's own first/last sample at either end of the timeline).
    pub len: Duration,
    /// The holders seen at the run's first sample.
    pub holders: Vec<usize>,
}

/// The samples of one run.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// The period asked for.
    pub every: Duration,
    pub samples: Vec<Sample>,
}

impl Timeline {
    /// Runs of samples for which `pred` holds.
    pub fn windows(&self, pred: impl Fn(&Sample) -> bool) -> Vec<Window> {
        let s = &self.samples;
        let mut out = Vec::new();
        let mut i = 0;
        while i < s.len() {
            if !pred(&s[i]) {
                i += 1;
                continue;
            }
            let first = i;
            while i + 1 < s.len() && pred(&s[i + 1]) {
                i += 1;
            }
            let last = i;
            let from = if first > 0 {
                s[first - 1].at
            } else {
                s[first].at
            };
            let to = s.get(last + 1).map_or(s[last].at, |n| n.at);
            out.push(Window {
                first,
                last,
                start: s[first].at,
                len: to.saturating_sub(from),
                holders: s[first].holders.clone(),
            });
            i += 1;
        }
        out
    }

    /// Runs with two or more holders.
    pub fn multi_holder_windows(&self) -> Vec<Window> {
        self.windows(|s| s.holders.len() > 1)
    }

    /// The longest run with two or more holders (upper bound), zero if none.
    pub fn max_multi_holder(&self) -> Duration {
        self.multi_holder_windows()
            .iter()
            .map(|w| w.len)
            .max()
            .unwrap_or_default()
    }

    /// Samples with nobody holding the VIP.
    pub fn empty_samples(&self) -> usize {
        self.samples.iter().filter(|s| s.holders.is_empty()).count()
    }

    /// Times a node joined the holders (it did not hold the VIP in the previous sample).
    pub fn takeovers(&self) -> usize {
        self.samples
            .windows(2)
            .map(|w| {
                w[1].holders
                    .iter()
                    .filter(|h| !w[0].holders.contains(h))
                    .count()
            })
            .sum()
    }

    /// Times the sole holder changed, looking only at samples with exactly one holder.
    pub fn moves(&self) -> usize {
        let sole: Vec<usize> = self
            .samples
            .iter()
            .filter(|s| s.holders.len() == 1)
            .map(|s| s.holders[0])
            .collect();
        sole.windows(2).filter(|w| w[0] != w[1]).count()
    }

    /// The largest time between two consecutive samples (the real sampling resolution).
    pub fn max_gap(&self) -> Duration {
        self.samples
            .windows(2)
            .map(|w| w[1].at.saturating_sub(w[0].at))
            .max()
            .unwrap_or_default()
    }

    /// Samples in `[from, to)`.
    pub fn between(&self, from: Duration, to: Duration) -> impl Iterator<Item = &Sample> {
        self.samples
            .iter()
            .filter(move |s| s.at >= from && s.at < to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(holders: &[&[usize]]) -> Timeline {
        Timeline {
            every: Duration::from_millis(100),
            samples: holders
                .iter()
                .enumerate()
                .map(|(i, h)| Sample {
                    at: Duration::from_millis(100 * i as u64),
                    holders: h.to_vec(),
                    throughout: h.to_vec(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_two_sample_overlap_is_bounded_by_its_neighbours() {
        let t = timeline(&[&[0], &[0, 1], &[0, 1], &[0], &[0]]);
        let w = t.multi_holder_windows();
        assert_eq!(w.len(), 1);
        assert_eq!((w[0].first, w[0].last), (1, 2));
        // Seen at 100 and 200 ms; not at 0 and 300 ms: at most 300 ms.
        assert_eq!(w[0].len, Duration::from_millis(300));
        assert_eq!(t.max_multi_holder(), Duration::from_millis(300));
        assert_eq!(t.takeovers(), 1);
        assert_eq!(t.moves(), 0);
        assert_eq!(t.empty_samples(), 0);
    }

    #[test]
    fn moves_count_changes_of_the_sole_holder_and_takeovers_every_join() {
        let t = timeline(&[&[0], &[0, 1], &[1], &[], &[2], &[2, 0], &[0]]);
        assert_eq!(t.moves(), 3);
        assert_eq!(t.takeovers(), 3);
        assert_eq!(t.empty_samples(), 1);
        assert_eq!(t.multi_holder_windows().len(), 2);
        assert_eq!(t.max_gap(), Duration::from_millis(100));
    }

    #[test]
    fn a_window_at_either_end_is_measured_from_its_own_samples() {
        let t = timeline(&[&[0, 1], &[0, 1], &[0]]);
        assert_eq!(t.multi_holder_windows()[0].len, Duration::from_millis(200));
        let t = timeline(&[&[0], &[0, 1]]);
        assert_eq!(t.multi_holder_windows()[0].len, Duration::from_millis(100));
    }
}
