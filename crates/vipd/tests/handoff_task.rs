//! The hand-off task end to end, without the daemon: probe results in, resign / resume requests
//! out (this test answers them as the daemon's main loop would). Scripted probes run under
//! tokio's paused clock so the request times are exact; real HTTP probes run against fake
//! servers on 127.0.0.1 ephemeral ports.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

use vipd::config::HandoffConfig;
use vipd::daemon::control::{ControlReply, ControlRequest};
use vipd::daemon::handoff::{Handoff, Phase};
use vipd::health::{CheckSpec, HttpTarget, Probe, ProbeError, Prober, Scheme};

const API_PORT: u16 = 6443;
const IRONIC_PORT: u16 = 6385;

fn target(port: u16, path: &str) -> HttpTarget {
    HttpTarget {
        scheme: Scheme::Http,
        host: "127.0.0.1".into(),
        port,
        path: path.into(),
        insecure: false,
    }
}

fn config(api_port: u16, ironic_port: u16, interval: Duration) -> HandoffConfig {
    HandoffConfig {
        instances: vec!["api".into()],
        probe: target(api_port, "/readyz"),
        also_down: vec![target(ironic_port, "/v1")],
        interval,
        failures: 5,
        recoveries: 3,
        from_role: false,
    }
}

/// API results in order ('+' good, '-' bad; bad once the script runs out); Ironic up or down.
struct Scripted {
    api: Mutex<VecDeque<bool>>,
    ironic_up: AtomicBool,
    ironic_probes: Mutex<Vec<Duration>>,
    start: Instant,
}

impl Scripted {
    fn new(script: &str, ironic_up: bool) -> Arc<Scripted> {
        Arc::new(Scripted {
            api: Mutex::new(script.chars().map(|c| c == '+').collect()),
            ironic_up: AtomicBool::new(ironic_up),
            ironic_probes: Mutex::new(Vec::new()),
            start: Instant::now(),
        })
    }
}

struct ScriptedProber(Arc<Scripted>);

impl Prober for ScriptedProber {
    fn probe(
        &self,
        check: &CheckSpec,
    ) -> impl std::future::Future<Output = Result<String, ProbeError>> + Send {
        let s = Arc::clone(&self.0);
        let port = match &check.probe {
            Probe::Http(t) => t.port,
            other => panic!("the hand-off only probes HTTP, got {other:?}"),
        };
        async move {
            let up = if port == API_PORT {
                s.api.lock().unwrap().pop_front().unwrap_or(false)
            } else {
                s.ironic_probes.lock().unwrap().push(s.start.elapsed());
                s.ironic_up.load(Ordering::SeqCst)
            };
            if up {
                Ok("HTTP 200 OK".into())
            } else {
                Err(ProbeError::BadResponse {
                    target: format!("port {port}"),
                    reason: "scripted failure".into(),
                })
            }
        }
    }
}

/// Requests the fake daemon received: `(time since start, "resign api")`.
type Seen = Arc<Mutex<Vec<(Duration, String)>>>;

/// Plays the daemon: answers every request, recording it.
fn fake_daemon(start: Instant) -> (mpsc::Sender<ControlRequest>, Seen) {
    let (tx, mut rx) = mpsc::channel::<ControlRequest>(4);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Some(request) = rx.recv().await {
            let (what, reply) = match request {
                ControlRequest::Resign { instance, reply } => (format!("resign {instance}"), reply),
                ControlRequest::Resume { instance, reply } => (format!("resume {instance}"), reply),
                ControlRequest::Reload { reply } => ("reload".to_owned(), reply),
            };
            log.lock().unwrap().push((start.elapsed(), what));
            let _ = reply.send(ControlReply::ok("done"));
        }
    });
    (tx, seen)
}

fn requests(seen: &Mutex<Vec<(Duration, String)>>) -> Vec<(Duration, String)> {
    seen.lock().unwrap().clone()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test(start_paused = true)]
async fn five_failures_after_up_resign_at_the_fifth_probe_and_three_successes_resume() {
    let script = Scripted::new("+-----+++", false);
    let (tx, seen) = fake_daemon(script.start);
    let handoff = Handoff::start_with(
        config(API_PORT, IRONIC_PORT, secs(1)),
        ScriptedProber(Arc::clone(&script)),
        tx,
        Phase::NeverUp,
    );
    tokio::time::sleep(Duration::from_millis(8500)).await;
    // Probes at 0 s (up), 1..5 s (down: the fifth failure, at 5 s, hands off), 6..8 s (up).
    assert_eq!(
        requests(&seen),
        [
            (secs(5), "resign api".to_owned()),
            (secs(8), "resume api".to_owned())
        ]
    );
    // Ironic is asked only about the failure that reaches the threshold.
    assert_eq!(*script.ironic_probes.lock().unwrap(), [secs(5)]);
    let status = handoff.status.lock().unwrap().clone();
    assert_eq!(status.phase, Phase::Up);
    assert_eq!((status.handoffs, status.rejoins), (1, 1));
    handoff.stop();
}

#[tokio::test(start_paused = true)]
async fn failures_before_the_api_was_ever_up_send_nothing() {
    let script = Scripted::new("", false);
    let (tx, seen) = fake_daemon(script.start);
    let handoff = Handoff::start_with(
        config(API_PORT, IRONIC_PORT, secs(1)),
        ScriptedProber(Arc::clone(&script)),
        tx,
        Phase::NeverUp,
    );
    tokio::time::sleep(secs(30)).await;
    assert_eq!(requests(&seen), []);
    assert_eq!(handoff.phase(), Phase::NeverUp);
    assert!(script.ironic_probes.lock().unwrap().is_empty());
    handoff.stop();
}

#[tokio::test(start_paused = true)]
async fn ironic_still_up_holds_the_vip_until_it_goes_down() {
    let script = Scripted::new("+", true);
    let (tx, seen) = fake_daemon(script.start);
    let handoff = Handoff::start_with(
        config(API_PORT, IRONIC_PORT, secs(1)),
        ScriptedProber(Arc::clone(&script)),
        tx,
        Phase::NeverUp,
    );
    tokio::time::sleep(Duration::from_millis(9500)).await;
    assert_eq!(requests(&seen), []);
    let status = handoff.status.lock().unwrap().clone();
    assert_eq!(status.phase, Phase::Up);
    assert_eq!(status.consecutive_failures, 9);
    assert_eq!(
        status.last_decision.as_deref(),
        Some(
            "bootstrap API http://127.0.0.1:6443/readyz failed 5 times in a row (port 6443: \
             malformed HTTP response: scripted failure), but not every one of Ironic \
             (http://127.0.0.1:6385/v1) is down: keeping the API VIP until they are"
        )
    );
    script.ironic_up.store(false, Ordering::SeqCst);
    tokio::time::sleep(secs(1)).await;
    assert_eq!(requests(&seen), [(secs(10), "resign api".to_owned())]);
    handoff.stop();
}

#[tokio::test(start_paused = true)]
async fn a_task_resumed_in_the_handed_off_phase_rejoins_after_three_successes() {
    let script = Scripted::new("+++", false);
    let (tx, seen) = fake_daemon(script.start);
    let handoff = Handoff::start_with(
        config(API_PORT, IRONIC_PORT, secs(1)),
        ScriptedProber(Arc::clone(&script)),
        tx,
        Phase::HandedOff,
    );
    // Up at 0..2 s (the third success rejoins), then four failures: one short of a new hand-off.
    tokio::time::sleep(Duration::from_millis(6500)).await;
    assert_eq!(requests(&seen), [(secs(2), "resume api".to_owned())]);
    assert_eq!(handoff.status.lock().unwrap().consecutive_failures, 4);
    handoff.stop();
}

/// An HTTP server on 127.0.0.1 answering `200 OK` while `up`, else `503`.
async fn fake_api(up: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let up = up.load(Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let response: &[u8] = if up {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                } else {
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
                };
                let _ = s.write_all(response).await;
            });
        }
    });
    port
}

/// A 127.0.0.1 port nothing listens on (bound, then released): connections are refused.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

async fn wait_for(seen: &Mutex<Vec<(Duration, String)>>, count: usize) -> Vec<String> {
    for _ in 0..300 {
        if seen.lock().unwrap().len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    requests(seen).into_iter().map(|(_, what)| what).collect()
}

#[tokio::test]
async fn real_probes_hand_off_when_the_api_answers_503_and_ironic_refuses() {
    let api_up = Arc::new(AtomicBool::new(true));
    let api = fake_api(Arc::clone(&api_up)).await;
    let ironic = closed_port().await;
    let (tx, seen) = fake_daemon(Instant::now());
    let interval = Duration::from_millis(20);
    let handoff = Handoff::start_with(
        config(api, ironic, interval),
        vipd::health::SystemProber,
        tx,
        Phase::NeverUp,
    );
    for _ in 0..100 {
        if handoff.phase() == Phase::Up {
            break;
        }
        tokio::time::sleep(interval).await;
    }
    assert_eq!(handoff.phase(), Phase::Up);

    api_up.store(false, Ordering::SeqCst);
    assert_eq!(wait_for(&seen, 1).await, ["resign api"]);
    let status = handoff.status.lock().unwrap().clone();
    assert_eq!(status.phase, Phase::HandedOff);
    assert_eq!(
        status.last_probe_error,
        Some(format!(
            "http://127.0.0.1:{api}/readyz: HTTP status 503 Service Unavailable, expected 2xx"
        ))
    );

    api_up.store(true, Ordering::SeqCst);
    assert_eq!(wait_for(&seen, 2).await, ["resign api", "resume api"]);
    assert_eq!(handoff.phase(), Phase::Up);
    handoff.stop();
}

#[tokio::test]
async fn real_probes_keep_the_vip_while_ironic_answers() {
    let api_up = Arc::new(AtomicBool::new(true));
    let api = fake_api(Arc::clone(&api_up)).await;
    let ironic = fake_api(Arc::new(AtomicBool::new(true))).await;
    let (tx, seen) = fake_daemon(Instant::now());
    let interval = Duration::from_millis(20);
    let handoff = Handoff::start_with(
        config(api, ironic, interval),
        vipd::health::SystemProber,
        tx,
        Phase::NeverUp,
    );
    for _ in 0..100 {
        if handoff.phase() == Phase::Up {
            break;
        }
        tokio::time::sleep(interval).await;
    }
    api_up.store(false, Ordering::SeqCst);
    // Twenty intervals: four times the five failures needed.
    for _ in 0..100 {
        if handoff.status.lock().unwrap().consecutive_failures >= 20 {
            break;
        }
        tokio::time::sleep(interval).await;
    }
    let status = handoff.status.lock().unwrap().clone();
    assert!(status.consecutive_failures >= 20, "{status:?}");
    assert_eq!(status.phase, Phase::Up);
    assert_eq!(requests(&seen), []);
    handoff.stop();
}
