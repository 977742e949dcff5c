//! Client-side outage measurement: ping the VIP at a fixed interval from the client namespace and
//! report the longest time without a reply. That gap is what a client of the VIP experiences,
//! whatever the daemons' own logs claim.

use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;

use crate::host::{Host, Proc};

/// What the client saw while the prober ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Outage {
    /// Echo requests sent.
    pub sent: u64,
    /// Distinct echo replies received.
    pub received: u64,
    /// `sent - received`.
    pub lost: u64,
    /// Replies marked `DUP!`: two hosts answered for the VIP (or the bridge duplicated a frame).
    pub duplicates: u64,
    /// Longest interval without a reply: between two consecutive replies, or from the last reply to
    /// the moment the prober stopped. With a 10 ms probe an undisturbed run shows about 10 ms.
    pub longest_gap: Duration,
    /// The same outage counted in probes rather than receive times: the longest run of
    /// consecutive unanswered echo requests, plus one, times the probe interval. Receive-side
    /// scheduling jitter on a loaded machine stretches `longest_gap` without any probe going
    /// unanswered; this figure only grows when probes are lost. With 10 ms probes, 10 ms = none
    /// lost, 20 ms = one lost.
    pub longest_unanswered: Duration,
}

impl Outage {
    pub fn longest_gap_ms(&self) -> f64 {
        self.longest_gap.as_secs_f64() * 1000.0
    }
}

static PROBER_COUNTER: AtomicUsize = AtomicUsize::new(0);

pub struct Prober {
    proc: Proc,
    interval: Duration,
    log: PathBuf,
    target: IpAddr,
}

impl Prober {
    /// Starts `ping` in `host`'s namespace. Intervals under 200 ms need root, which the lab has.
    pub fn start(host: &Host, target: IpAddr, interval: Duration) -> Result<Prober> {
        let interval_s = format!("{:.3}", interval.as_secs_f64());
        let target_s = target.to_string();
        // -D: a receive timestamp on every reply; -n: no DNS; output goes to a file, never a pipe,
        // so a long run cannot fill a pipe buffer and stall the prober.
        let n = PROBER_COUNTER.fetch_add(1, Ordering::SeqCst);
        let label = format!("ping{n}-{}", target_s.replace(':', "_"));
        let proc = host.spawn(&label, &["ping", "-n", "-D", "-i", &interval_s, &target_s])?;
        let log = proc.log_path().to_path_buf();
        Ok(Prober {
            proc,
            interval,
            log,
            target,
        })
    }

    /// Stops the prober (SIGINT, so ping prints its summary) and analyses what it saw.
    pub fn stop(mut self) -> Result<Outage> {
        let stopped_at = now_secs();
        self.proc.signal(Signal::SIGINT)?;
        for _ in 0..200 {
            if !self.proc.is_running() {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        self.proc.kill();
        let text = fs::read_to_string(&self.log)
            .with_context(|| format!("reading {}", self.log.display()))?;
        analyse(&text, stopped_at, self.interval)
            .with_context(|| format!("ping of {} (log {})", self.target, self.log.display()))
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Parses ping's `-D` output. `stopped_at` is the UNIX time the probe was stopped; `interval` the
/// probe interval ping was given.
pub fn analyse(output: &str, stopped_at: f64, interval: Duration) -> Result<Outage> {
    let mut sent = None;
    let mut replies = Vec::new();
    let mut seqs = Vec::new();
    let mut duplicates = 0;
    let mut first_ts = None;
    for line in output.lines() {
        if let Some(n) = line
            .split(" packets transmitted")
            .next()
            .filter(|_| line.contains(" packets transmitted"))
        {
            sent = n.trim().parse::<u64>().ok();
            continue;
        }
        let Some(ts) = line
            .strip_prefix('[')
            .and_then(|l| l.split(']').next())
            .and_then(|t| t.parse::<f64>().ok())
        else {
            continue;
        };
        first_ts.get_or_insert(ts);
        if !line.contains("bytes from") {
            continue;
        }
        if line.contains("DUP!") {
            duplicates += 1;
        } else {
            replies.push(ts);
            let seq = line
                .split("icmp_seq=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next());
            if let Some(seq) = seq.and_then(|q| q.parse::<u64>().ok()) {
                seqs.push(seq);
            }
        }
    }
    let Some(sent) = sent else {
        bail!(
            "no `packets transmitted` summary: ping did not run or was killed before printing it"
        );
    };
    let received = replies.len() as u64;
    let longest = if replies.is_empty() {
        // Never answered: the whole run was an outage (from the first line ping printed).
        stopped_at - first_ts.unwrap_or(stopped_at)
    } else {
        let between = replies.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        let tail = stopped_at - replies[replies.len() - 1];
        between.max(tail)
    };
    // Sequence numbers start at 1; a run of misses before the first reply or after the last one
    // counts as well.
    seqs.sort_unstable();
    let mut steps = Vec::with_capacity(seqs.len() + 1);
    let mut prev = 0;
    for &q in &seqs {
        steps.push(q.saturating_sub(prev));
        prev = q;
    }
    steps.push((sent + 1).saturating_sub(prev));
    let longest_step = steps.into_iter().max().unwrap_or(sent + 1);
    Ok(Outage {
        sent,
        received,
        lost: sent.saturating_sub(received),
        duplicates,
        // Whole microseconds: ping's timestamps have that resolution, and f64 noise below it
        // would otherwise turn 1.250 s into 1249 ms.
        longest_gap: Duration::from_micros((longest.max(0.0) * 1e6).round() as u64),
        longest_unanswered: interval * u32::try_from(longest_step).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_MS: Duration = Duration::from_millis(10);

    const RUN: &str = "\
[1700000000.000000] 64 bytes from 192.0.2.5: icmp_seq=1 ttl=64 time=0.050 ms
[1700000000.010000] 64 bytes from 192.0.2.5: icmp_seq=2 ttl=64 time=0.050 ms
[1700000000.020000] 64 bytes from 192.0.2.5: icmp_seq=3 ttl=64 time=0.050 ms
[1700000000.020100] 64 bytes from 192.0.2.5: icmp_seq=3 ttl=64 time=0.060 ms (DUP!)
[1700000001.270000] 64 bytes from 192.0.2.5: icmp_seq=128 ttl=64 time=0.050 ms

--- 192.0.2.5 ping statistics ---
128 packets transmitted, 4 received, +1 duplicates, 96.875% packet loss, time 1270ms
";

    #[test]
    fn longest_gap_is_the_widest_space_between_replies() {
        let o = analyse(RUN, 1700000001.275, TEN_MS).unwrap();
        assert_eq!(o.sent, 128);
        assert_eq!(o.received, 4);
        assert_eq!(o.lost, 124);
        assert_eq!(o.duplicates, 1);
        assert_eq!(o.longest_gap.as_millis(), 1250);
        // Replies to 1, 2, 3 and 128 of 128: 124 in a row unanswered.
        assert_eq!(o.longest_unanswered, Duration::from_millis(1250));
    }

    #[test]
    fn late_replies_without_loss_count_as_no_unanswered_probe() {
        let run = "\
[1700000000.000000] 64 bytes from 192.0.2.5: icmp_seq=1 ttl=64 time=0.050 ms
[1700000000.040000] 64 bytes from 192.0.2.5: icmp_seq=2 ttl=64 time=30.0 ms
[1700000000.041000] 64 bytes from 192.0.2.5: icmp_seq=3 ttl=64 time=21.0 ms
3 packets transmitted, 3 received, 0% packet loss, time 20ms
";
        let o = analyse(run, 1700000000.045, TEN_MS).unwrap();
        assert_eq!(o.longest_gap.as_millis(), 40);
        assert_eq!(o.longest_unanswered, TEN_MS);
        assert_eq!(o.lost, 0);
    }

    #[test]
    fn an_outage_lasting_until_stop_counts_from_the_last_reply() {
        let o = analyse(RUN, 1700000004.270, TEN_MS).unwrap();
        assert_eq!(o.longest_gap.as_millis(), 3000);
    }

    #[test]
    fn missing_summary_is_an_error() {
        assert!(analyse(
            "[1700000000.000000] 64 bytes from 192.0.2.5: icmp_seq=1\n",
            1.0,
            TEN_MS
        )
        .is_err());
    }
}
