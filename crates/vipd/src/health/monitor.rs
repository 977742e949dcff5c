//! [`HealthMonitor`]: one tokio task per check, results published on a `watch` channel.
//!
//! Each task probes at once, then every `interval` (measured from probe start; a probe running
//! past the next tick delays it instead of bunching probes up), bounds each probe by `timeout`
//! (a timeout is a failure, as in keepalived), and feeds the result to the check's
//! [`CheckState`]. The snapshot is updated after every probe, but receivers are woken only when
//! a check's status changes: that is when effective priorities can change, while `vipd status`
//! just reads the latest snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::config::CheckSpec;
use super::priority::{effective_priority, Priority};
use super::probe::{ProbeError, Prober, SystemProber};
use super::state::{CheckState, Status};

/// Every check's latest state, keyed by check name.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct HealthSnapshot {
    pub checks: BTreeMap<String, CheckReport>,
}

/// One check's latest state: enough for `vipd status` to say why an instance has its priority.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    pub status: Status,
    /// The check's default weight (instances may track it with their own).
    pub weight: i32,
    pub rise: u32,
    pub fall: u32,
    /// Probes finished since start.
    pub probes: u64,
    /// Whether the latest probe succeeded; `None` before the first one finished.
    pub last_success: Option<bool>,
    /// What the latest probe said: e.g. `HTTP 200 OK`, or its error.
    pub last_result: Option<String>,
    /// The most recent failure, kept after recovery so a flap can be explained afterwards.
    pub last_error: Option<String>,
    pub consecutive_successes: u32,
    pub consecutive_failures: u32,
    /// How long the latest probe took, in milliseconds.
    #[serde(rename = "last_duration_ms", serialize_with = "as_millis")]
    pub last_duration: Option<Duration>,
}

fn as_millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        None => s.serialize_none(),
    }
}

impl CheckReport {
    fn new(spec: &CheckSpec) -> Self {
        CheckReport {
            status: Status::Unknown,
            weight: spec.weight,
            rise: spec.rise,
            fall: spec.fall,
            probes: 0,
            last_success: None,
            last_result: None,
            last_error: None,
            consecutive_successes: 0,
            consecutive_failures: 0,
            last_duration: None,
        }
    }
}

impl HealthSnapshot {
    /// Status of `check`; a name the monitor does not run is `Unknown`.
    pub fn status(&self, check: &str) -> Status {
        self.checks.get(check).map_or(Status::Unknown, |r| r.status)
    }

    /// Effective priority of an instance with `base` priority tracking `(check name, weight)`.
    pub fn effective_priority(&self, base: u8, tracked: &[(&str, i32)]) -> Priority {
        let statuses: Vec<(i32, Option<bool>)> = tracked
            .iter()
            .map(|&(name, weight)| (weight, self.status(name).as_option()))
            .collect();
        effective_priority(base, &statuses)
    }
}

/// Runs the checks until shut down or dropped.
#[derive(Debug)]
pub struct HealthMonitor {
    snapshot: watch::Receiver<HealthSnapshot>,
    tasks: Vec<JoinHandle<()>>,
}

impl HealthMonitor {
    /// Starts one task per check with the real prober. Must be called inside a tokio runtime.
    /// Names must be unique ([`validate_checks`](super::config::validate_checks) ensures it).
    pub fn start(checks: Vec<CheckSpec>) -> Self {
        Self::start_with(checks, SystemProber)
    }

    /// Like [`start`](Self::start) with a chosen prober.
    pub fn start_with<P: Prober>(checks: Vec<CheckSpec>, prober: P) -> Self {
        let initial = HealthSnapshot {
            checks: checks
                .iter()
                .map(|c| (c.name.clone(), CheckReport::new(c)))
                .collect(),
        };
        let (tx, rx) = watch::channel(initial);
        let tx = Arc::new(tx);
        let prober = Arc::new(prober);
        let tasks = checks
            .into_iter()
            .map(|spec| tokio::spawn(run_check(spec, Arc::clone(&prober), Arc::clone(&tx))))
            .collect();
        HealthMonitor {
            snapshot: rx,
            tasks,
        }
    }

    /// A receiver that wakes on every status change.
    pub fn subscribe(&self) -> watch::Receiver<HealthSnapshot> {
        self.snapshot.clone()
    }

    /// The latest state of every check.
    pub fn snapshot(&self) -> HealthSnapshot {
        self.snapshot.borrow().clone()
    }

    /// Stops every check task and waits until they are gone; a running exec probe's process
    /// group is killed.
    pub async fn shutdown(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            // A cancelled task's JoinError is the expected outcome here.
            let _ = t.await;
        }
    }
}

impl Drop for HealthMonitor {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn run_check<P: Prober>(
    spec: CheckSpec,
    prober: Arc<P>,
    snapshot: Arc<watch::Sender<HealthSnapshot>>,
) {
    let mut state = CheckState::new(spec.rise, spec.fall);
    let mut ticker = tokio::time::interval(spec.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let started = Instant::now();
        let result = match tokio::time::timeout(spec.timeout, prober.probe(&spec)).await {
            Ok(result) => result,
            Err(_) => Err(ProbeError::Timeout(spec.timeout)),
        };
        let took = started.elapsed();
        let transition = state.record(result.is_ok());
        let text = match &result {
            Ok(ok) => ok.clone(),
            Err(e) => e.to_string(),
        };
        if let Some(t) = transition {
            match t.to {
                Status::Bad => tracing::warn!(
                    check = %spec.name, from = ?t.from, fall = spec.fall,
                    "health check is now BAD: {text}"
                ),
                _ => tracing::info!(
                    check = %spec.name, from = ?t.from, rise = spec.rise,
                    "health check is now GOOD: {text}"
                ),
            }
        } else if result.is_err() {
            tracing::debug!(check = %spec.name, failures = state.consecutive_failures(), "probe failed: {text}");
        }
        snapshot.send_if_modified(|snap| {
            if let Some(r) = snap.checks.get_mut(&spec.name) {
                r.status = state.status();
                r.probes = r.probes.saturating_add(1);
                r.last_success = Some(result.is_ok());
                if result.is_err() {
                    r.last_error = Some(text.clone());
                }
                r.last_result = Some(text);
                r.consecutive_successes = state.consecutive_successes();
                r.consecutive_failures = state.consecutive_failures();
                r.last_duration = Some(took);
            }
            transition.is_some()
        });
    }
}
