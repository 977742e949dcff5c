//! HealthMonitor scheduling: scripted probes under tokio's paused clock, and one real HTTP
//! server on 127.0.0.1 that flips from 200 to 500.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

use vipd::health::{
    CheckConfig, CheckSpec, HealthMonitor, HealthSnapshot, ProbeError, Prober, Status,
};

/// What a scripted probe does.
#[derive(Clone, Copy, Debug)]
enum Step {
    Ok,
    Fail,
    /// Never finishes: only the monitor's timeout ends it.
    Hang,
}

/// Plays a per-check script of steps, repeating the last one; counts calls.
struct Scripted {
    steps: Mutex<HashMap<String, VecDeque<Step>>>,
    calls: AtomicU32,
}

impl Scripted {
    fn new(scripts: &[(&str, &[Step])]) -> Self {
        Scripted {
            steps: Mutex::new(
                scripts
                    .iter()
                    .map(|(n, s)| (n.to_string(), s.iter().copied().collect()))
                    .collect(),
            ),
            calls: AtomicU32::new(0),
        }
    }
}

/// The prober handed to the monitor; the test keeps another handle to count calls.
#[derive(Clone)]
struct Shared(Arc<Scripted>);

impl Prober for Shared {
    fn probe(
        &self,
        check: &CheckSpec,
    ) -> impl std::future::Future<Output = Result<String, ProbeError>> + Send {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        let step = {
            let mut steps = self.0.steps.lock().unwrap();
            let queue = steps.get_mut(&check.name).unwrap();
            if queue.len() > 1 {
                queue.pop_front().unwrap()
            } else {
                *queue.front().unwrap()
            }
        };
        async move {
            match step {
                Step::Ok => Ok("scripted ok".to_string()),
                Step::Fail => Err(ProbeError::FileMissing("/scripted".into())),
                Step::Hang => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok("too late".to_string())
                }
            }
        }
    }
}

fn spec(name: &str, interval: &str, timeout: Option<&str>, rise: u32, fall: u32) -> CheckSpec {
    CheckConfig {
        name: name.into(),
        file: Some("/unused".into()),
        interval: Some(interval.into()),
        timeout: timeout.map(Into::into),
        rise: Some(rise),
        fall: Some(fall),
        ..Default::default()
    }
    .validate()
    .unwrap()
}

/// Waits for the next status change and returns (seconds since `t0`, status of `check`).
async fn next_change(
    rx: &mut tokio::sync::watch::Receiver<HealthSnapshot>,
    t0: Instant,
    check: &str,
) -> (Duration, Status) {
    rx.changed().await.unwrap();
    let status = rx.borrow_and_update().status(check);
    (t0.elapsed(), status)
}

#[tokio::test(start_paused = true)]
async fn first_probe_runs_at_once_and_decides_the_status() {
    let prober = Shared(Arc::new(Scripted::new(&[("a", &[Step::Ok])])));
    let t0 = Instant::now();
    let mon = HealthMonitor::start_with(vec![spec("a", "2s", None, 3, 3)], prober);
    let mut rx = mon.subscribe();
    assert_eq!(rx.borrow().status("a"), Status::Unknown);
    assert_eq!(
        next_change(&mut rx, t0, "a").await,
        (Duration::ZERO, Status::Good)
    );
    mon.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn good_check_turns_bad_after_exactly_fall_failed_intervals() {
    use Step::*;
    let prober = Shared(Arc::new(Scripted::new(&[("a", &[Ok, Ok, Fail])])));
    let t0 = Instant::now();
    let mon = HealthMonitor::start_with(vec![spec("a", "2s", None, 3, 3)], prober);
    let mut rx = mon.subscribe();
    assert_eq!(
        next_change(&mut rx, t0, "a").await,
        (Duration::ZERO, Status::Good)
    );
    // Probes at 0 s and 2 s pass; failures at 4, 6 and 8 s: the third one flips it.
    assert_eq!(
        next_change(&mut rx, t0, "a").await,
        (Duration::from_secs(8), Status::Bad)
    );
    let snap = mon.snapshot();
    let report = &snap.checks["a"];
    assert_eq!(report.probes, 5);
    assert_eq!(report.consecutive_failures, 3);
    assert_eq!(report.last_success, Some(false));
    assert_eq!(
        report.last_error.as_deref(),
        Some("/scripted: does not exist")
    );
    mon.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn bad_check_turns_good_after_exactly_rise_passed_intervals() {
    use Step::*;
    let prober = Shared(Arc::new(Scripted::new(&[("a", &[Fail, Ok])])));
    let t0 = Instant::now();
    let mon = HealthMonitor::start_with(vec![spec("a", "1s", None, 3, 2)], prober);
    let mut rx = mon.subscribe();
    assert_eq!(
        next_change(&mut rx, t0, "a").await,
        (Duration::ZERO, Status::Bad)
    );
    assert_eq!(
        next_change(&mut rx, t0, "a").await,
        (Duration::from_secs(3), Status::Good)
    );
    mon.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_outlives_its_timeout_is_a_failure() {
    let prober = Shared(Arc::new(Scripted::new(&[("a", &[Step::Hang])])));
    let t0 = Instant::now();
    let mon = HealthMonitor::start_with(vec![spec("a", "2s", Some("500ms"), 1, 1)], prober);
    let mut rx = mon.subscribe();
    assert_eq!(
        next_change(&mut rx, t0, "a").await,
        (Duration::from_millis(500), Status::Bad)
    );
    let snap = mon.snapshot();
    assert_eq!(
        snap.checks["a"].last_result.as_deref(),
        Some("no result within the 500ms timeout")
    );
    assert_eq!(
        snap.checks["a"].last_duration,
        Some(Duration::from_millis(500))
    );
    mon.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn checks_run_independently_on_their_own_intervals() {
    use Step::*;
    let prober = Shared(Arc::new(Scripted::new(&[
        ("fast", &[Ok, Fail]),
        ("slow", &[Ok]),
    ])));
    let t0 = Instant::now();
    let mon = HealthMonitor::start_with(
        vec![
            spec("fast", "1s", None, 1, 2),
            spec("slow", "5s", None, 1, 1),
        ],
        prober.clone(),
    );
    let mut rx = mon.subscribe();
    loop {
        let (at, fast) = next_change(&mut rx, t0, "fast").await;
        if fast == Status::Bad {
            assert_eq!(at, Duration::from_secs(2));
            break;
        }
    }
    let snap = mon.snapshot();
    assert_eq!(snap.checks["fast"].probes, 3);
    assert_eq!(snap.checks["slow"].probes, 1);
    assert_eq!(snap.status("slow"), Status::Good);
    mon.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_every_probe() {
    let prober = Shared(Arc::new(Scripted::new(&[("a", &[Step::Ok])])));
    let mon = HealthMonitor::start_with(vec![spec("a", "1s", None, 1, 1)], prober.clone());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(prober.0.calls.load(Ordering::SeqCst), 3);
    mon.shutdown().await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(prober.0.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn snapshot_feeds_effective_priority() {
    use Step::*;
    let prober = Shared(Arc::new(Scripted::new(&[("lb", &[Ok]), ("mcs", &[Fail])])));
    let mon = HealthMonitor::start_with(
        vec![spec("lb", "2s", None, 1, 1), spec("mcs", "2s", None, 1, 1)],
        prober,
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    let p = mon
        .snapshot()
        .effective_priority(40, &[("lb", 20), ("mcs", 3), ("absent", 5)]);
    assert_eq!((p.value, p.fault), (60, false));
    mon.shutdown().await;
}

/// Real time: an HTTP server whose status code the test flips. 100 ms interval, fall 3.
#[tokio::test]
async fn real_http_server_flipping_to_500_goes_bad_after_exactly_fall_probes() {
    let code = Arc::new(AtomicU16::new(200));
    let served_500 = Arc::new(AtomicU32::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = {
        let (code, served_500) = (Arc::clone(&code), Arc::clone(&served_500));
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let c = code.load(Ordering::SeqCst);
                if c == 500 {
                    served_500.fetch_add(1, Ordering::SeqCst);
                }
                let _ = s
                    .write_all(format!("HTTP/1.1 {c} X\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        })
    };
    let spec = CheckConfig {
        name: "web".into(),
        http: Some(format!("http://127.0.0.1:{port}/healthz")),
        interval: Some("100ms".into()),
        rise: Some(2),
        fall: Some(3),
        ..Default::default()
    }
    .validate()
    .unwrap();
    let mon = HealthMonitor::start(vec![spec]);
    let mut rx = mon.subscribe();
    let deadline = Duration::from_secs(5);
    tokio::time::timeout(deadline, rx.wait_for(|s| s.status("web") == Status::Good))
        .await
        .unwrap()
        .unwrap();
    code.store(500, Ordering::SeqCst);
    let report = tokio::time::timeout(deadline, rx.wait_for(|s| s.status("web") == Status::Bad))
        .await
        .unwrap()
        .unwrap()
        .checks["web"]
        .clone();
    assert_eq!(report.consecutive_failures, 3);
    assert_eq!(
        report.last_error.as_deref(),
        Some(format!("http://127.0.0.1:{port}/healthz: HTTP status 500 X, expected 2xx").as_str())
    );
    assert!(served_500.load(Ordering::SeqCst) >= 3);
    mon.shutdown().await;
    server.abort();
}
