//! The bootstrap hand-off (`[handoff]`, openshift.md section 3).
//!
//! An OpenShift bootstrap holds the API VIP at priority 70, above every master (40..68), while
//! its own temporary kube-apiserver serves the cluster. Once that API has been up and then goes
//! away for good (the installer tears the bootstrap down), the bootstrap must give the VIP to the
//! masters: today a check stops its keepalived after five failed `/readyz` probes one second
//! apart, provided Ironic is down too, and keepalived's priority-0 advert lets the best master
//! take over at once. vipd does the same without stopping anything: the instance resigns
//! make-before-break (the `vipd resign` path, [`super::instance::Command::Resign`]), and rejoins
//! ([`super::instance::Command::Resume`]) if the API comes back, as a restarted keepalived
//! would.
//!
//! - [`HandoffMachine`] (in `vipd_vrrp::handoff`, with the other protocol decisions): the pure
//!   decision, fed one probe result at a time.
//! - [`run`]: the task probing on a fixed interval and sending resign / resume requests to the
//!   daemon's main loop, which finds the instance by name (so a reload that restarts an
//!   instance never leaves the task holding a dead channel).
//! - [`HandoffStatus`]: what `vipd status` shows under `handoff`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::config::HandoffConfig;
use crate::health::{CheckSpec, HttpTarget, Probe, ProbeError, Prober, SystemProber};
pub use vipd_vrrp::handoff::{Decision, HandoffMachine, Phase};

use super::control::{ControlReply, ControlRequest, CLIENT_TIMEOUT};

/// What `vipd status` shows under `handoff`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandoffStatus {
    #[serde(serialize_with = "phase_name")]
    pub phase: Phase,
    pub instances: Vec<String>,
    pub probe: String,
    pub also_down: Vec<String>,
    pub interval_ms: u64,
    pub failures_needed: u32,
    pub recoveries_needed: u32,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    /// The API probe's last error, cleared by a success.
    pub last_probe_error: Option<String>,
    /// The last decision's log line.
    pub last_decision: Option<String>,
    pub handoffs: u64,
    pub rejoins: u64,
}

/// `never_up`, `up`, `handed_off` in `vipd status --json`.
fn phase_name<S: serde::Serializer>(phase: &Phase, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(phase.as_str())
}

impl HandoffStatus {
    fn new(config: &HandoffConfig, phase: Phase) -> Self {
        HandoffStatus {
            phase,
            instances: config.instances.clone(),
            probe: config.probe.to_string(),
            also_down: config.also_down.iter().map(ToString::to_string).collect(),
            interval_ms: u64::try_from(config.interval.as_millis()).unwrap_or(u64::MAX),
            failures_needed: config.failures,
            recoveries_needed: config.recoveries,
            consecutive_failures: 0,
            consecutive_successes: 0,
            last_probe_error: None,
            last_decision: None,
            handoffs: 0,
            rejoins: 0,
        }
    }
}

/// The running hand-off task.
#[derive(Debug)]
pub struct Handoff {
    config: HandoffConfig,
    pub status: Arc<Mutex<HandoffStatus>>,
    task: JoinHandle<()>,
}

impl Handoff {
    /// Starts probing with the real HTTP prober. `requests` is the daemon's control channel.
    pub fn start(config: HandoffConfig, requests: mpsc::Sender<ControlRequest>) -> Self {
        Handoff::start_with(config, SystemProber, requests, Phase::NeverUp)
    }

    /// Starts probing with `prober`, continuing from `phase`.
    pub fn start_with<P: Prober>(
        config: HandoffConfig,
        prober: P,
        requests: mpsc::Sender<ControlRequest>,
        phase: Phase,
    ) -> Self {
        let status = Arc::new(Mutex::new(HandoffStatus::new(&config, phase)));
        let task = tokio::spawn(run(
            config.clone(),
            prober,
            requests,
            Arc::clone(&status),
            phase,
        ));
        tracing::info!(
            probe = %config.probe,
            instances = ?config.instances,
            "bootstrap hand-off armed: once {} has answered, {} failures in a row{} hand the API VIP to the masters",
            config.probe,
            config.failures,
            others_clause(&config.also_down),
        );
        Handoff {
            config,
            status,
            task,
        }
    }

    pub fn phase(&self) -> Phase {
        self.status
            .lock()
            .map(|s| s.phase)
            .unwrap_or(Phase::NeverUp)
    }

    /// Stops probing. The instances stay as they are (resigned or not).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Applies a reload's `[handoff]`: nothing when unchanged; otherwise the task restarts from the
/// phase it had reached. When the hand-off is removed after it handed off, the instances rejoin
/// (they would otherwise stay out until a restart). Never waits for the daemon's main loop,
/// which is busy with the reload that calls this.
pub fn reload(
    current: &mut Option<Handoff>,
    new: Option<&HandoffConfig>,
    requests: &mpsc::Sender<ControlRequest>,
) {
    if current.as_ref().map(|h| &h.config) == new {
        return;
    }
    let phase = current.as_ref().map_or(Phase::NeverUp, Handoff::phase);
    if let Some(old) = current.take() {
        let instances = old.config.instances.clone();
        old.stop();
        if phase == Phase::HandedOff && new.is_none() {
            tracing::info!(
                instances = ?instances,
                "reload: [handoff] removed after the hand-off; the API instances rejoin the election"
            );
            let requests = requests.clone();
            tokio::spawn(async move {
                for instance in instances {
                    let _ = send(&requests, &instance, false).await;
                }
            });
        }
    }
    *current = new
        .map(|config| Handoff::start_with(config.clone(), SystemProber, requests.clone(), phase));
}

/// Probes every `interval` and acts on the machine's decisions until aborted.
pub async fn run<P: Prober>(
    config: HandoffConfig,
    prober: P,
    requests: mpsc::Sender<ControlRequest>,
    status: Arc<Mutex<HandoffStatus>>,
    phase: Phase,
) {
    let mut machine = HandoffMachine::resumed(config.failures, config.recoveries, phase);
    let api = spec(&config.probe, config.interval);
    let others: Vec<CheckSpec> = config
        .also_down
        .iter()
        .map(|t| spec(t, config.interval))
        .collect();
    let mut tick = tokio::time::interval(config.interval);
    // A slow resign (it waits for the successor) must not be followed by a burst of probes.
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_error = String::new();
    loop {
        tick.tick().await;
        let result = probe_once(&prober, &api).await;
        let decision = match &result {
            Ok(_) => machine.api_up(),
            Err(e) => {
                last_error = e.to_string();
                let others_down = if machine.needs_others() {
                    all_down(&prober, &others).await
                } else {
                    false
                };
                machine.api_down(others_down)
            }
        };
        if let Ok(mut s) = status.lock() {
            s.phase = machine.phase();
            s.consecutive_failures = machine.consecutive_failures();
            s.consecutive_successes = machine.consecutive_successes();
            s.last_probe_error = result.as_ref().err().map(ToString::to_string);
        }
        let Some(decision) = decision else { continue };
        let line = describe(decision, &config, &last_error);
        match decision {
            Decision::HandOff => tracing::warn!("{line}"),
            _ => tracing::info!("{line}"),
        }
        if let Ok(mut s) = status.lock() {
            s.last_decision = Some(line);
            match decision {
                Decision::HandOff => s.handoffs += 1,
                Decision::Rejoin => s.rejoins += 1,
                Decision::ApiUp | Decision::HeldBack => {}
            }
        }
        let resign = match decision {
            Decision::HandOff => true,
            Decision::Rejoin => false,
            Decision::ApiUp | Decision::HeldBack => continue,
        };
        for instance in &config.instances {
            match send(&requests, instance, resign).await {
                Ok(message) => tracing::info!(instance = %instance, "hand-off: {message}"),
                Err(message) => tracing::error!(
                    instance = %instance,
                    "hand-off: could not {} instance {instance:?}: {message}; check `vipd status`",
                    if resign { "resign" } else { "resume" }
                ),
            }
        }
    }
}

/// Asks the daemon to resign (or resume) `instance`; the reply's text, or why it failed.
async fn send(
    requests: &mpsc::Sender<ControlRequest>,
    instance: &str,
    resign: bool,
) -> Result<String, String> {
    let (reply, rx) = oneshot::channel();
    let instance = instance.to_owned();
    let request = if resign {
        ControlRequest::Resign { instance, reply }
    } else {
        ControlRequest::Resume { instance, reply }
    };
    if requests.send(request).await.is_err() {
        return Err("the daemon is shutting down".into());
    }
    match tokio::time::timeout(CLIENT_TIMEOUT, rx).await {
        Ok(Ok(ControlReply {
            ok: true, message, ..
        })) => Ok(message.unwrap_or_default()),
        Ok(Ok(ControlReply { message, .. })) => Err(message.unwrap_or_default()),
        Ok(Err(_)) => Err("the daemon dropped the request".into()),
        Err(_) => Err(format!("no answer within {}s", CLIENT_TIMEOUT.as_secs())),
    }
}

/// One probe bounded by the interval: a probe that hangs is a failure, as curl's timeout was.
async fn probe_once<P: Prober>(prober: &P, check: &CheckSpec) -> Result<String, ProbeError> {
    match tokio::time::timeout(check.timeout, prober.probe(check)).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::Timeout(check.timeout)),
    }
}

/// True when every `also_down` probe fails (probed together); true for an empty list.
async fn all_down<P: Prober>(prober: &P, others: &[CheckSpec]) -> bool {
    join_all(others.iter().map(|c| probe_once(prober, c)))
        .await
        .iter()
        .all(Result::is_err)
}

fn spec(target: &HttpTarget, interval: Duration) -> CheckSpec {
    CheckSpec {
        name: format!("handoff {target}"),
        probe: Probe::Http(target.clone()),
        interval,
        timeout: interval,
        rise: 1,
        fall: 1,
        weight: 0,
        hold_down: Duration::ZERO,
    }
}

/// `Ironic (http://localhost:6385/v1)` for OpenShift's one known service, else the URL.
fn service_name(target: &HttpTarget) -> String {
    match target.port {
        6385 => format!("Ironic ({target})"),
        _ => target.to_string(),
    }
}

fn others_clause(others: &[HttpTarget]) -> String {
    match others {
        [] => String::new(),
        list => format!(
            " with {} down too",
            list.iter()
                .map(service_name)
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    }
}

/// The log line of a decision.
fn describe(decision: Decision, config: &HandoffConfig, last_error: &str) -> String {
    let api = format!("bootstrap API {}", config.probe);
    let n = config.failures;
    let others: Vec<String> = config.also_down.iter().map(service_name).collect();
    let vips = config.instances.join(", ");
    match decision {
        Decision::ApiUp => format!(
            "{api} is up: from now on {n} failures in a row{} hand the API VIP to the masters",
            others_clause(&config.also_down)
        ),
        Decision::HandOff if others.is_empty() => format!(
            "{api} failed {n} times in a row after having been up ({last_error}): handing the API VIP (instance {vips}) to the masters"
        ),
        Decision::HandOff => format!(
            "{api} failed {n} times in a row after having been up ({last_error}), and {} {} down: handing the API VIP (instance {vips}) to the masters",
            others.join(" and "),
            if others.len() == 1 { "is" } else { "are" }
        ),
        Decision::HeldBack => format!(
            "{api} failed {n} times in a row ({last_error}), but not every one of {} is down: keeping the API VIP until they are",
            others.join(", ")
        ),
        Decision::Rejoin => format!(
            "{api} answered {} times in a row after the hand-off: instance {vips} rejoins the election",
            config.recoveries
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handoff_line_names_the_api_the_count_and_ironic() {
        let config = HandoffConfig {
            instances: vec!["api".into()],
            probe: HttpTarget {
                scheme: crate::health::Scheme::Https,
                host: "localhost".into(),
                port: 6443,
                path: "/readyz".into(),
                insecure: false,
            },
            also_down: vec![HttpTarget {
                scheme: crate::health::Scheme::Http,
                host: "localhost".into(),
                port: 6385,
                path: "/v1".into(),
                insecure: false,
            }],
            interval: Duration::from_secs(1),
            failures: 5,
            recoveries: 3,
            from_role: true,
        };
        assert_eq!(
            describe(Decision::HandOff, &config, "connecting to 127.0.0.1:6443: Connection refused"),
            "bootstrap API https://localhost:6443/readyz failed 5 times in a row after having been up \
             (connecting to 127.0.0.1:6443: Connection refused), and Ironic (http://localhost:6385/v1) \
             is down: handing the API VIP (instance api) to the masters"
        );
    }
}
