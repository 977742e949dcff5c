//! `hold_down` (check damping) under tokio's paused clock: a flapping check's reported status
//! changes at most once per hold-down, the first failure is reported at once, a check that
//! settles is reported as it settled within one hold-down, and without `hold_down` the reported
//! sequence is the rise/fall counter's, as before. Then the configuration and `vipd status`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use vipd::config::Config;
use vipd::health::{CheckConfig, CheckSpec, CheckState, HealthMonitor, ProbeError, Prober, Status};

/// Probe `k` (0, 1, ...) of every check succeeds when `ok(k)`; probes take no time.
#[derive(Clone)]
struct Pattern {
    ok: Arc<dyn Fn(u32) -> bool + Send + Sync>,
    calls: Arc<AtomicU32>,
}

impl Pattern {
    fn new(ok: impl Fn(u32) -> bool + Send + Sync + 'static) -> Self {
        Pattern {
            ok: Arc::new(ok),
            calls: Arc::new(AtomicU32::new(0)),
        }
    }
}

impl Prober for Pattern {
    fn probe(
        &self,
        _check: &CheckSpec,
    ) -> impl std::future::Future<Output = Result<String, ProbeError>> + Send {
        let k = self.calls.fetch_add(1, Ordering::SeqCst);
        let ok = (self.ok)(k);
        async move {
            if ok {
                Ok("scripted ok".to_owned())
            } else {
                Err(ProbeError::FileMissing("/scripted".into()))
            }
        }
    }
}

/// A check `a` from its TOML keys (the probe is replaced by the pattern).
fn spec(keys: &str) -> CheckSpec {
    toml::from_str::<CheckConfig>(&format!("name = \"a\"\nfile = \"/unused\"\n{keys}"))
        .unwrap()
        .to_spec()
        .unwrap()
}

/// The end of a run of `run`: half a second before, so that nothing due at `run` itself (all
/// times in these tests are whole seconds) races the end.
fn end_of(t0: Instant, run: Duration) -> Instant {
    t0 + run - Duration::from_millis(500)
}

/// Runs check `spec` on `pattern` for `run` and returns every reported status with its time
/// since start, the first (from unknown) included.
async fn reported(spec: CheckSpec, pattern: Pattern, run: Duration) -> Vec<(Duration, Status)> {
    let t0 = Instant::now();
    let mon = HealthMonitor::start_with(vec![spec], pattern);
    let mut rx = mon.subscribe();
    let mut seen = Vec::new();
    while let Ok(changed) = tokio::time::timeout_at(end_of(t0, run), rx.changed()).await {
        changed.unwrap();
        seen.push((t0.elapsed(), rx.borrow_and_update().status("a")));
    }
    // The snapshot's counter agrees with what receivers saw.
    let snap = mon.snapshot();
    assert_eq!(snap.checks["a"].status_changes, seen.len() as u64 - 1);
    mon.shutdown().await;
    seen
}

/// What the rise/fall counter alone reports for `ok` at probes `interval` apart: keepalived's
/// behaviour, and vipd's before `hold_down`.
fn counter_alone(
    rise: u32,
    fall: u32,
    interval: Duration,
    run: Duration,
    ok: impl Fn(u32) -> bool,
) -> Vec<(Duration, Status)> {
    let mut state = CheckState::new(rise, fall);
    let mut out = Vec::new();
    let mut k = 0;
    while interval * k < run {
        if let Some(t) = state.record(ok(k)) {
            out.push((interval * k, t.to));
        }
        k += 1;
    }
    out
}

/// A deterministic irregular pattern: alternate runs of successes and failures, each 1 to 6
/// probes long.
fn irregular(k: u32) -> bool {
    let (mut start, mut run) = (0, 0u32);
    loop {
        let len = 1 + (run.wrapping_mul(2_654_435_761) >> 13) % 6;
        if k < start + len {
            return run % 2 == 0;
        }
        start += len;
        run += 1;
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Reported good/bad changes (the first result, from unknown, is not one) and their spacing.
fn assert_damped(changes: &[(Duration, Status)], run: Duration, hold_down: Duration) {
    let moves = &changes[1..];
    let bound = run.as_secs().div_ceil(hold_down.as_secs()) + 1;
    assert!(
        moves.len() as u64 <= bound,
        "{} changes in {run:?} with hold_down {hold_down:?} (bound {bound}): {changes:?}",
        moves.len()
    );
    for pair in moves.windows(2) {
        assert!(
            pair[1].0 - pair[0].0 >= hold_down,
            "two changes closer than {hold_down:?}: {pair:?}"
        );
        assert_ne!(
            pair[0].1, pair[1].1,
            "a change to the same status: {pair:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_check_flapping_every_interval_changes_at_most_once_per_hold_down() {
    let run = secs(600);
    let alternate = |k: u32| k % 2 == 0;
    let damped = reported(
        spec("interval = \"2s\"\nhold_down = \"30s\""),
        Pattern::new(alternate),
        run,
    )
    .await;
    assert_damped(&damped, run, secs(30));
    // Good at once, bad at the first failure, then one change per hold-down, each the status
    // the counter shows at its end.
    assert_eq!(
        &damped[..4],
        [
            (secs(0), Status::Good),
            (secs(2), Status::Bad),
            (secs(32), Status::Good),
            (secs(62), Status::Bad)
        ]
    );
    assert_eq!(damped.len(), 1 + 20);
    // Without damping the same check moves the VIP on every probe.
    let undamped = reported(spec("interval = \"2s\""), Pattern::new(alternate), run).await;
    assert_eq!(undamped.len(), 300);
}

/// The check's keys, its hold-down, and which probes succeed.
type Case = (&'static str, Duration, fn(u32) -> bool);

#[tokio::test(start_paused = true)]
async fn damping_bounds_changes_whatever_the_rhythm_rise_and_fall() {
    let run = secs(600);
    let cases: [Case; 4] = [
        ("interval = \"2s\"\nhold_down = \"25s\"", secs(25), |k| {
            k % 2 == 0
        }),
        (
            "interval = \"1s\"\nrise = 2\nfall = 2\nhold_down = \"7s\"",
            secs(7),
            |k| k % 4 < 2,
        ),
        (
            "interval = \"1s\"\nrise = 2\nfall = 3\nhold_down = \"10s\"",
            secs(10),
            irregular,
        ),
        ("interval = \"3s\"\nhold_down = \"1m\"", secs(60), |k| {
            k % 5 != 4
        }),
    ];
    for (keys, hold_down, ok) in cases {
        let changes = reported(spec(keys), Pattern::new(ok), run).await;
        assert!(changes.len() > 2, "{keys}: the case does flap: {changes:?}");
        assert_damped(&changes, run, hold_down);
    }
}

#[tokio::test(start_paused = true)]
async fn the_first_failure_is_reported_at_once() {
    let keys = "interval = \"2s\"\nhold_down = \"30s\"";
    // Right after start: the first result starts no hold-down.
    let changes = reported(spec(keys), Pattern::new(|k| k == 0), secs(60)).await;
    assert_eq!(changes, [(secs(0), Status::Good), (secs(2), Status::Bad)]);
    // After ten quiet minutes.
    let changes = reported(spec(keys), Pattern::new(|k| k < 300), secs(700)).await;
    assert_eq!(changes, [(secs(0), Status::Good), (secs(600), Status::Bad)]);
    // After a flap long ago, with fall 3: at the third failure, as without damping.
    let keys = "interval = \"2s\"\nfall = 3\nhold_down = \"30s\"";
    let changes = reported(
        spec(keys),
        Pattern::new(|k| !(1..4).contains(&k) && k < 150),
        secs(400),
    )
    .await;
    assert_eq!(
        changes,
        [
            (secs(0), Status::Good),
            (secs(6), Status::Bad),
            (secs(36), Status::Good),
            (secs(304), Status::Bad)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_check_that_stays_bad_after_flapping_is_bad_within_one_hold_down() {
    // Flaps every 2 s (probes at even seconds) until the last success at 96 s, then fails for
    // good. Reported: good 0 s, bad 2 s, good 28 s, bad 54 s, good 80 s; the failures from 82 s
    // on are held back until 105 s.
    let flapping = |k: u32| k < 50 && k % 2 == 0;
    let t0 = Instant::now();
    let mon = HealthMonitor::start_with(
        vec![spec("interval = \"2s\"\nhold_down = \"25s\"")],
        Pattern::new(flapping),
    );
    tokio::time::sleep_until(t0 + secs(100)).await;
    let report = mon.snapshot().checks["a"].clone();
    assert_eq!(
        (report.status, report.held_back),
        (Status::Good, Some(Status::Bad))
    );
    assert_eq!(report.held_back_until, Some(t0 + secs(105)));
    assert_eq!(report.held_back_left(Instant::now()), Some(secs(5)));
    assert_eq!(report.status_changes, 4);
    let json = serde_json::to_value(mon.snapshot()).unwrap();
    let a = &json["checks"]["a"];
    assert_eq!(a["status"], "good");
    assert_eq!(a["held_back"], "bad");
    assert_eq!(a["held_back_left_ms"], 5_000);
    assert_eq!(a["hold_down_ms"], 25_000);
    assert_eq!(a["status_changes"], 4);
    assert_eq!(a["held_back_changes"], report.held_back_changes);
    assert!(report.held_back_changes >= 4, "{report:?}");
    // The end of the hold-down reports it, between two probes.
    let mut rx = mon.subscribe();
    rx.borrow_and_update();
    rx.changed().await.unwrap();
    assert_eq!(t0.elapsed(), secs(105));
    assert_eq!(rx.borrow_and_update().status("a"), Status::Bad);
    let report = mon.snapshot().checks["a"].clone();
    assert_eq!((report.held_back, report.held_back_until), (None, None));
    assert_eq!(
        serde_json::to_value(&report).unwrap()["held_back_left_ms"],
        serde_json::Value::Null
    );
    // And stays so.
    assert!(tokio::time::timeout(secs(600), rx.changed()).await.is_err());
    mon.shutdown().await;

    // Whatever the phase at which flapping stops: bad within one hold-down of the last success.
    for last_ok in 40..56 {
        let ok = move |k: u32| k <= last_ok && k % 2 == 0;
        let changes = reported(
            spec("interval = \"2s\"\nhold_down = \"30s\""),
            Pattern::new(ok),
            secs(400),
        )
        .await;
        let (at, status) = *changes.last().unwrap();
        assert_eq!(status, Status::Bad, "{changes:?}");
        let failing_since = secs(2) * (last_ok / 2 * 2 + 1);
        assert!(at <= failing_since + secs(30), "{last_ok}: {changes:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_check_that_recovers_after_flapping_is_good_within_one_hold_down() {
    for last_fail in 40..56 {
        let ok = move |k: u32| k > last_fail || k % 2 == 0;
        let changes = reported(
            spec("interval = \"2s\"\nhold_down = \"30s\""),
            Pattern::new(ok),
            secs(400),
        )
        .await;
        let (at, status) = *changes.last().unwrap();
        assert_eq!(status, Status::Good, "{changes:?}");
        assert!(
            at <= secs(2) * (last_fail + 1) + secs(30),
            "{last_fail}: {changes:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn without_hold_down_the_reported_sequence_is_the_counters() {
    let run = secs(600);
    for (rise, fall) in [(1, 1), (2, 3), (3, 2)] {
        let expected = counter_alone(rise, fall, secs(1), run, irregular);
        assert!(expected.len() > 20, "the pattern does flap");
        for hold_down in ["", "hold_down = \"0s\""] {
            let keys = format!("interval = \"1s\"\nrise = {rise}\nfall = {fall}\n{hold_down}");
            let s = spec(&keys);
            assert_eq!(s.hold_down, Duration::ZERO);
            let t0 = Instant::now();
            let mon = HealthMonitor::start_with(vec![s], Pattern::new(irregular));
            let mut rx = mon.subscribe();
            let mut seen = Vec::new();
            while let Ok(changed) = tokio::time::timeout_at(end_of(t0, run), rx.changed()).await {
                changed.unwrap();
                let snap = rx.borrow_and_update().clone();
                let report = &snap.checks["a"];
                assert_eq!((report.held_back, report.held_back_until), (None, None));
                seen.push((t0.elapsed(), report.status));
            }
            let report = mon.snapshot().checks["a"].clone();
            assert_eq!(report.held_back_changes, 0);
            assert_eq!(report.hold_down, Duration::ZERO);
            assert_eq!(seen, expected, "{keys}");
            mon.shutdown().await;
        }
    }
}

const FILE: &str = "/etc/vipd/vipd.toml";

fn config(hold_down: &str) -> String {
    format!(
        r#"cluster_name = "ostest"
[[check]]
name = "chk_api"
http = "https://localhost:6443/readyz"
interval = "2s"
hold_down = {hold_down}
[[instance]]
name = "api"
vips = ["192.0.2.5"]
track = [{{ check = "chk_api", weight = 20 }}]
"#
    )
}

fn refusals(text: &str) -> Vec<String> {
    match Config::parse(text, FILE) {
        Ok(config) => panic!("accepted: {config:#?}"),
        Err(e) => e.diagnostics().iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn hold_down_is_read_from_the_file() {
    let config = Config::parse(&config("\"45s\""), FILE).unwrap();
    assert_eq!(config.checks[0].hold_down, secs(45));
    let config = Config::parse(&config_without_hold_down(), FILE).unwrap();
    assert_eq!(config.checks[0].hold_down, Duration::ZERO);
}

fn config_without_hold_down() -> String {
    config("\"0s\"").replace("hold_down = \"0s\"\n", "")
}

#[test]
fn hold_down_refusals_point_at_the_value_and_say_what_is_accepted() {
    let accepted = "accepted \"0s\" (off) or longer than the interval (2s) up to 5m";
    assert_eq!(
        refusals(&config("\"10m\"")),
        [format!(
            "{FILE}:6:13: check \"chk_api\": hold_down: \"10m\" is too long; {accepted}"
        )]
    );
    assert_eq!(
        refusals(&config("\"1s\"")),
        [format!("{FILE}:6:13: check \"chk_api\": hold_down: \"1s\" is not longer than the interval, so it would never hold a change back; {accepted}")]
    );
    assert_eq!(
        refusals(&config("\"30\"")),
        [format!("{FILE}:6:13: check \"chk_api\": hold_down: \"30\" has no unit; write a number and a unit, e.g. \"1s\", \"100ms\", \"1.5s\", \"2m\"")]
    );
    // The keys that keep no position of their own are still reported at the table.
    let text = config("\"30s\"").replace("interval = \"2s\"", "interval = \"0s\"");
    assert_eq!(
        refusals(&text),
        [format!(
            "{FILE}:2:1: check \"chk_api\": interval: \"0s\": must be greater than zero"
        )]
    );
}
