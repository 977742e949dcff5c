//! [`HealthMonitor`]: one tokio task per check, results published on a `watch` channel.
//!
//! Each task probes at once, then every `interval` (measured from probe start; a probe running
//! past the next tick delays it instead of bunching probes up), bounds each probe by `timeout`
//! (a timeout is a failure, as in keepalived), and feeds the result to the check's
//! [`CheckState`], whose status goes through the check's [`HoldDown`] (off unless `hold_down`
//! is set) before it is reported. The snapshot is updated after every probe, but receivers are
//! woken only when a check's reported status changes: that is when effective priorities can
//! change, while `vipd status` just reads the latest snapshot. A held-back change is reported by
//! a timer at the end of the hold-down, also while a probe runs.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::config::CheckSpec;
use super::hold_down::HoldDown;
use super::priority::{effective_priority, Priority};
use super::probe::{ProbeError, Prober, SystemProber};
use super::state::{CheckState, Status, Transition};

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
    /// The check's `hold_down`, in milliseconds; 0 = off.
    #[serde(rename = "hold_down_ms", serialize_with = "millis")]
    pub hold_down: Duration,
    /// The status the rise/fall counter shows while the hold-down keeps it from being
    /// reported; `None` when no change is held back.
    pub held_back: Option<Status>,
    /// When the held-back status will be reported if the counter still shows it then; in the
    /// JSON as the milliseconds left from the moment of serialization.
    #[serde(rename = "held_back_left_ms", serialize_with = "left_millis")]
    pub held_back_until: Option<Instant>,
    /// Changes of the counter away from the reported status that the hold-down did not
    /// report when they happened (a counter).
    pub held_back_changes: u64,
    /// Reported changes between good and bad since start (a counter; the first result,
    /// from unknown, is not one).
    pub status_changes: u64,
}

impl CheckReport {
    /// Time left until the held-back status is reported, `None` when nothing is held back.
    pub fn held_back_left(&self, now: Instant) -> Option<Duration> {
        self.held_back_until
            .map(|until| until.saturating_duration_since(now))
    }
}

fn millis_u64(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn as_millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&millis_u64(*d)),
        None => s.serialize_none(),
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(millis_u64(*d))
}

fn left_millis<S: serde::Serializer>(until: &Option<Instant>, s: S) -> Result<S::Ok, S::Error> {
    match until {
        Some(t) => s.serialize_some(&millis_u64(t.saturating_duration_since(Instant::now()))),
        None => s.serialize_none(),
    }
}

impl CheckReport {
    /// The entry of a check that has not run yet.
    pub fn new(spec: &CheckSpec) -> Self {
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
            hold_down: spec.hold_down,
            held_back: None,
            held_back_until: None,
            held_back_changes: 0,
            status_changes: 0,
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
    let mut check = Tracker::new(&spec, snapshot);
    let mut ticker = tokio::time::interval(spec.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        check.wait(ticker.tick()).await;
        let started = Instant::now();
        let probe = tokio::time::timeout(spec.timeout, prober.probe(&spec));
        let result = match check.wait(probe).await {
            Ok(result) => result,
            Err(_) => Err(ProbeError::Timeout(spec.timeout)),
        };
        check.record(&result, started.elapsed());
    }
}

/// One check's counter, hold-down and entry in the snapshot.
struct Tracker {
    name: String,
    rise: u32,
    fall: u32,
    hold_down: Duration,
    state: CheckState,
    hold: HoldDown,
    snapshot: Arc<watch::Sender<HealthSnapshot>>,
}

impl Tracker {
    fn new(spec: &CheckSpec, snapshot: Arc<watch::Sender<HealthSnapshot>>) -> Self {
        Tracker {
            name: spec.name.clone(),
            rise: spec.rise,
            fall: spec.fall,
            hold_down: spec.hold_down,
            state: CheckState::new(spec.rise, spec.fall),
            hold: HoldDown::new(spec.hold_down),
            snapshot,
        }
    }

    /// Awaits `fut`, reporting a held-back change meanwhile when its hold-down ends.
    async fn wait<F: Future>(&mut self, fut: F) -> F::Output {
        tokio::pin!(fut);
        loop {
            let Some(release_at) = self.hold.release_at() else {
                return fut.await;
            };
            // A result due at the same instant goes first: it is the fresher status.
            tokio::select! {
                biased;
                out = &mut fut => return out,
                () = tokio::time::sleep_until(release_at) => self.release(),
            }
        }
    }

    /// Feeds one probe result to the counter and the hold-down, logs and publishes.
    fn record(&mut self, result: &Result<String, ProbeError>, took: Duration) {
        let counted = self.state.record(result.is_ok());
        let reported = self.hold.record(Instant::now(), self.state.status());
        let text = match result {
            Ok(ok) => ok.clone(),
            Err(e) => e.to_string(),
        };
        match (reported, counted) {
            (Some(t), _) => self.log_reported(t, &text),
            (None, Some(t)) if Some(t.to) == self.hold.held_back() => tracing::info!(
                check = %self.name, hold_down = ?self.hold_down,
                "health check would be {}, held back until the hold-down ends: {text}",
                upper(t.to)
            ),
            (None, Some(t)) => tracing::debug!(
                check = %self.name,
                "health check is {} again within the hold-down; nothing to report: {text}",
                upper(t.to)
            ),
            (None, None) if result.is_err() => tracing::debug!(
                check = %self.name, failures = self.state.consecutive_failures(),
                "probe failed: {text}"
            ),
            (None, None) => {}
        }
        self.publish(reported.is_some(), |r| {
            r.probes = r.probes.saturating_add(1);
            r.last_success = Some(result.is_ok());
            if result.is_err() {
                r.last_error = Some(text.clone());
            }
            r.last_result = Some(text);
            r.last_duration = Some(took);
        });
    }

    /// The hold-down ended: reports what the counter shows now, if it differs.
    fn release(&mut self) {
        let reported = self.hold.release(Instant::now());
        if let Some(t) = reported {
            self.log_reported(t, "at the end of the hold-down");
        }
        self.publish(reported.is_some(), |_| {});
    }

    fn log_reported(&self, t: Transition, text: &str) {
        match t.to {
            Status::Bad => tracing::warn!(
                check = %self.name, from = ?t.from, fall = self.fall,
                "health check is now BAD: {text}"
            ),
            _ => tracing::info!(
                check = %self.name, from = ?t.from, rise = self.rise,
                "health check is now GOOD: {text}"
            ),
        }
    }

    /// Updates this check's entry (`probe` fills in the probe fields); wakes receivers only
    /// when the reported status `changed`.
    fn publish(&self, changed: bool, probe: impl FnOnce(&mut CheckReport)) {
        self.snapshot.send_if_modified(|snap| {
            if let Some(r) = snap.checks.get_mut(&self.name) {
                probe(r);
                r.status = self.hold.reported();
                r.held_back = self.hold.held_back();
                r.held_back_until = self.hold.release_at();
                r.held_back_changes = self.hold.held_back_changes();
                r.status_changes = self.hold.status_changes();
                r.consecutive_successes = self.state.consecutive_successes();
                r.consecutive_failures = self.state.consecutive_failures();
            }
            changed
        });
    }
}

fn upper(s: Status) -> &'static str {
    match s {
        Status::Unknown => "UNKNOWN",
        Status::Good => "GOOD",
        Status::Bad => "BAD",
    }
}
