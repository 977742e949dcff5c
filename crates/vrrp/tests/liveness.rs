//! Failure-detector (BFD) reports as an input of the state machine (`src/liveness.rs`): one
//! behaviour each, timer values exact. Oracle: Liveness_Skew = ((256 - P) * Detection_Time) /
//! 256; Master_Down_Interval = 3 * MAI + (256 - P) * MAI / 256 (RFC 9568 section 6.1).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use vipd_vrrp::liveness::{liveness_skew, HOLD_DOWN_INTERVALS};
use vipd_vrrp::timers::master_down_interval;
use vipd_vrrp::{
    Action, Advertisement, Auth, ChecksumForm, Event, Liveness, Received, Router, RouterConfig,
    SourceFilter, State, Timer, TtlPolicy, Version,
};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
/// 50 ms x 3.
const DETECTION: Duration = Duration::from_millis(150);
const LOST: Liveness = Liveness::Lost {
    detection_time: DETECTION,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cfg(priority: u8) -> RouterConfig {
    RouterConfig {
        version: Version::V3,
        vrid: 51,
        priority,
        advert_interval: SEC,
        primary_address: ip("192.0.2.10"),
        vips: vec![ip("192.0.2.100")],
        preempt: true,
        auth: Auth::None,
        send_checksum: ChecksumForm::Plain,
        ttl_policy: TtlPolicy::Require255,
        resign_wait: Duration::from_secs(3),
        announce_repeat_after: Some(Duration::from_secs(5)),
        announce_refresh: Some(Duration::from_secs(60)),
        sources: SourceFilter::Any,
    }
}

fn adv(priority: u8) -> Advertisement {
    Advertisement {
        version: Version::V3,
        vrid: 51,
        priority,
        interval_cs: 100,
        addresses: vec![ip("192.0.2.100")],
        auth: Auth::None,
    }
}

fn hear(r: &mut Router, now: Instant, src: &str, priority: u8) -> Vec<Action> {
    let advert = adv(priority);
    r.handle_advert(
        now,
        Received {
            src: ip(src),
            ttl: 255,
            advert: &advert,
            checksum_form: ChecksumForm::Plain,
        },
    );
    drain(r)
}

fn drain(r: &mut Router) -> Vec<Action> {
    std::iter::from_fn(|| r.poll_action()).collect()
}

fn events(actions: &[Action]) -> Vec<Event> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn mdi(priority: u8) -> Duration {
    master_down_interval(Version::V3, priority, SEC)
}

/// A Backup of priority `p` (primary 192.0.2.10) that heard Master 192.0.2.11 (priority 100)
/// advertise at `t0`.
fn backup_of_11(p: u8, t0: Instant) -> Router {
    let mut r = Router::new(cfg(p), t0);
    r.startup(t0);
    drain(&mut r);
    hear(&mut r, t0, "192.0.2.11", 100);
    assert_eq!(r.timers().get(Timer::MasterDown), Some(t0 + mdi(p)));
    r
}

#[test]
fn lost_master_brings_the_master_down_timer_forward_to_now_plus_liveness_skew() {
    let t0 = Instant::now();
    let mut r = backup_of_11(70, t0);
    let now = t0 + 400 * MS;
    r.handle_liveness(now, ip("192.0.2.11"), LOST);
    let expected = now + liveness_skew(70, DETECTION);
    assert_eq!(
        expected,
        now + Duration::from_nanos(186 * 150_000_000 / 256)
    );
    assert_eq!(r.poll_timeout(), Some(expected));
    assert_eq!(r.next_timer().map(|(t, _)| t), Some(Timer::MasterDown));
    assert_eq!(
        events(&drain(&mut r)),
        [Event::MasterUnreachable {
            master: ip("192.0.2.11"),
            takeover_at: expected,
        }]
    );
    assert_eq!(r.counters().liveness_lost, 1);
    assert_eq!(r.liveness().pending, Some(ip("192.0.2.11")));
}

#[test]
fn when_the_shortened_timer_fires_the_backup_becomes_master_and_says_why() {
    let t0 = Instant::now();
    let mut r = backup_of_11(70, t0);
    let now = t0 + 400 * MS;
    r.handle_liveness(now, ip("192.0.2.11"), LOST);
    drain(&mut r);
    let at = r.poll_timeout().unwrap();
    r.handle_timeout(at - Duration::from_nanos(1));
    assert_eq!(r.state(), State::Backup, "not a nanosecond early");
    r.handle_timeout(at);
    let actions = drain(&mut r);
    assert_eq!(r.state(), State::Master);
    assert!(events(&actions).contains(&Event::StateChanged {
        from: State::Backup,
        to: State::Master,
        reason: "master unreachable: the failure detector (BFD) lost it",
    }));
    // The usual take-over: VIPs, announce, advert, in that order.
    let work: Vec<&Action> = actions
        .iter()
        .filter(|a| !matches!(a, Action::Event(_)))
        .collect();
    assert!(matches!(
        work[..],
        [Action::AddVips, Action::Announce, Action::Send(_)]
    ));
    assert_eq!(r.counters().liveness_takeovers, 1);
    assert_eq!(r.liveness().takeover, Some((ip("192.0.2.11"), at)));
    assert_eq!(r.liveness().pending, None);
}

#[test]
fn the_highest_priority_backup_gets_the_shortest_skew() {
    let t0 = Instant::now();
    let now = t0 + 400 * MS;
    let deadline = |p| {
        let mut r = backup_of_11(p, t0);
        r.handle_liveness(now, ip("192.0.2.11"), LOST);
        r.poll_timeout().unwrap()
    };
    assert!(deadline(80) < deadline(60));
    assert!(deadline(60) < deadline(40));
    assert_eq!(deadline(60) - deadline(80), DETECTION * 20 / 256);
}

#[test]
fn heard_before_the_takeover_puts_the_timer_back_on_the_last_adverts_schedule() {
    let t0 = Instant::now();
    let mut r = backup_of_11(70, t0);
    r.handle_liveness(t0 + 400 * MS, ip("192.0.2.11"), LOST);
    drain(&mut r);
    r.handle_liveness(t0 + 420 * MS, ip("192.0.2.11"), Liveness::Heard);
    assert_eq!(r.poll_timeout(), Some(t0 + mdi(70)));
    assert_eq!(
        events(&drain(&mut r)),
        [Event::MasterHeardAgain {
            master: ip("192.0.2.11")
        }]
    );
    assert_eq!(r.counters().liveness_cancelled, 1);
    assert_eq!(r.liveness().pending, None);
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn an_advert_from_the_lost_master_cancels_and_resets_as_any_advert_does() {
    let t0 = Instant::now();
    let mut r = backup_of_11(70, t0);
    r.handle_liveness(t0 + 900 * MS, ip("192.0.2.11"), LOST);
    drain(&mut r);
    let t1 = t0 + SEC;
    let actions = hear(&mut r, t1, "192.0.2.11", 100);
    assert_eq!(r.poll_timeout(), Some(t1 + mdi(70)));
    assert!(events(&actions).contains(&Event::MasterHeardAgain {
        master: ip("192.0.2.11")
    }));
    assert_eq!(r.counters().liveness_cancelled, 1);
}

#[test]
fn an_advert_from_a_new_master_supersedes_the_report_silently() {
    let t0 = Instant::now();
    let mut r = backup_of_11(40, t0);
    r.handle_liveness(t0 + 400 * MS, ip("192.0.2.11"), LOST);
    drain(&mut r);
    // Another Backup (priority 70) took over first and advertises.
    let t1 = t0 + 500 * MS;
    let actions = hear(&mut r, t1, "192.0.2.12", 70);
    assert!(events(&actions).is_empty());
    assert_eq!(r.poll_timeout(), Some(t1 + mdi(40)));
    assert_eq!(r.liveness().pending, None);
    assert_eq!(r.master().map(|m| m.address), Some(ip("192.0.2.12")));
    assert_eq!(r.counters().liveness_cancelled, 0);
}

#[test]
fn a_lower_priority_advert_does_not_cancel_a_preempting_backup() {
    // RFC 9568 6.4.2: a preempting Backup discards a lower-priority advert, so it does not
    // reset the timer, and it does not stop the take-over either.
    let t0 = Instant::now();
    let mut r = backup_of_11(70, t0);
    let now = t0 + 400 * MS;
    r.handle_liveness(now, ip("192.0.2.11"), LOST);
    drain(&mut r);
    let at = r.poll_timeout().unwrap();
    hear(&mut r, now + 5 * MS, "192.0.2.12", 40);
    assert_eq!(r.poll_timeout(), Some(at));
    assert_eq!(r.liveness().pending, Some(ip("192.0.2.11")));
}

#[test]
fn reports_about_a_router_that_is_not_the_master_are_ignored() {
    let t0 = Instant::now();
    let mut r = backup_of_11(70, t0);
    r.handle_liveness(t0 + 400 * MS, ip("192.0.2.12"), LOST);
    assert_eq!(r.poll_timeout(), Some(t0 + mdi(70)));
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.counters().liveness_ignored, 1);
    // Heard about someone else changes nothing either.
    r.handle_liveness(t0 + 410 * MS, ip("192.0.2.12"), Liveness::Heard);
    assert_eq!(r.poll_timeout(), Some(t0 + mdi(70)));
}

#[test]
fn a_backup_that_never_heard_a_master_ignores_reports() {
    let t0 = Instant::now();
    let mut r = Router::new(cfg(70), t0);
    r.startup(t0);
    drain(&mut r);
    r.handle_liveness(t0 + 100 * MS, ip("192.0.2.11"), LOST);
    assert_eq!(r.poll_timeout(), Some(t0 + mdi(70)));
    assert_eq!(r.counters().liveness_ignored, 1);
}

#[test]
fn reports_are_ignored_by_a_master_a_faulted_router_and_a_stopped_one() {
    let t0 = Instant::now();
    // Master.
    let mut m = Router::new(cfg(70), t0);
    m.startup(t0);
    m.handle_timeout(t0 + mdi(70));
    drain(&mut m);
    let before = m.timers().clone();
    m.handle_liveness(t0 + 5 * SEC, ip("192.0.2.11"), LOST);
    assert_eq!(m.timers(), &before);
    assert_eq!(m.state(), State::Master);
    // Fault.
    let mut f = backup_of_11(70, t0);
    f.set_fault(t0, true);
    drain(&mut f);
    f.handle_liveness(t0 + 100 * MS, ip("192.0.2.11"), LOST);
    assert_eq!(f.poll_timeout(), None);
    // Stopped.
    let mut s = backup_of_11(70, t0);
    s.shutdown(t0);
    drain(&mut s);
    s.handle_liveness(t0 + 100 * MS, ip("192.0.2.11"), LOST);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(
        m.counters().liveness_ignored
            + f.counters().liveness_ignored
            + s.counters().liveness_ignored,
        3
    );
}

#[test]
fn a_report_never_delays_a_timer_that_runs_earlier() {
    // After a priority-0 advert the timer runs on Skew_Time; the Master is gone from the
    // router's view, so a later report is about nobody it follows and changes nothing.
    let t0 = Instant::now();
    let mut r = backup_of_11(70, t0);
    hear(&mut r, t0 + 500 * MS, "192.0.2.11", 0);
    let skew_deadline = r.poll_timeout().unwrap();
    r.handle_liveness(t0 + 501 * MS, ip("192.0.2.11"), LOST);
    assert_eq!(r.poll_timeout(), Some(skew_deadline));
    // And a report whose skew would end after the running deadline leaves it alone.
    let mut late = backup_of_11(1, t0);
    let near = t0 + mdi(1) - MS;
    late.handle_liveness(near, ip("192.0.2.11"), LOST);
    assert_eq!(late.poll_timeout(), Some(t0 + mdi(1)));
}

#[test]
fn a_detector_slower_than_vrrp_is_capped_at_master_down_interval() {
    let t0 = Instant::now();
    let mut r = backup_of_11(70, t0);
    let now = t0 + 10 * MS;
    r.handle_liveness(
        now,
        ip("192.0.2.11"),
        Liveness::Lost {
            detection_time: Duration::from_secs(3600),
        },
    );
    assert_eq!(r.poll_timeout(), Some(now + liveness_skew(70, mdi(70))));
}

/// A Backup that took over at `at` because a report lost Master 192.0.2.11.
fn took_over_on_report(t0: Instant) -> (Router, Instant) {
    let mut r = backup_of_11(70, t0);
    r.handle_liveness(t0 + 400 * MS, ip("192.0.2.11"), LOST);
    let at = r.poll_timeout().unwrap();
    r.handle_timeout(at);
    drain(&mut r);
    assert_eq!(r.state(), State::Master);
    (r, at)
}

#[test]
fn the_lost_master_advertising_after_the_takeover_refutes_the_report_and_holds_reports_down() {
    let t0 = Instant::now();
    let (mut r, at) = took_over_on_report(t0);
    // The old Master is alive (BFD alone was cut) and re-asserts with its higher priority.
    let t1 = at + 2 * MS;
    let actions = hear(&mut r, t1, "192.0.2.11", 100);
    let until = t1 + mdi(70) * HOLD_DOWN_INTERVALS;
    assert!(events(&actions).contains(&Event::LivenessRefuted {
        master: ip("192.0.2.11"),
        until,
    }));
    // RFC 9568 6.4.3 still decides: the higher priority wins, we are Backup again.
    assert_eq!(r.state(), State::Backup);
    assert_eq!(r.counters().liveness_refuted, 1);
    let hold = r.liveness().hold_down.unwrap();
    assert_eq!((hold.peer, hold.until), (ip("192.0.2.11"), until));
    // During the hold-down a report changes nothing: plain VRRP timing.
    r.handle_liveness(t1 + 500 * MS, ip("192.0.2.11"), LOST);
    assert_eq!(r.poll_timeout(), Some(t1 + mdi(70)));
    assert_eq!(r.counters().liveness_ignored, 1);
}

#[test]
fn after_the_hold_down_reports_count_again() {
    let t0 = Instant::now();
    let (mut r, at) = took_over_on_report(t0);
    let t1 = at + 2 * MS;
    hear(&mut r, t1, "192.0.2.11", 100);
    let until = t1 + mdi(70) * HOLD_DOWN_INTERVALS;
    // The Master keeps advertising through the hold-down.
    let mut t = t1;
    while t + SEC < until {
        t += SEC;
        hear(&mut r, t, "192.0.2.11", 100);
    }
    hear(&mut r, until, "192.0.2.11", 100);
    r.handle_liveness(until + MS, ip("192.0.2.11"), LOST);
    assert_eq!(
        r.poll_timeout(),
        Some(until + MS + liveness_skew(70, DETECTION))
    );
}

#[test]
fn an_advert_from_the_lost_master_long_after_the_takeover_is_no_refutation() {
    let t0 = Instant::now();
    let (mut r, at) = took_over_on_report(t0);
    // It came back (rebooted) and preempts with its higher priority after more than one
    // Master_Down_Interval: an ordinary preemption, not a wrong report.
    let actions = hear(&mut r, at + mdi(70) + MS, "192.0.2.11", 100);
    assert!(!events(&actions)
        .iter()
        .any(|e| matches!(e, Event::LivenessRefuted { .. })));
    assert_eq!(r.counters().liveness_refuted, 0);
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn an_ordinary_takeover_is_never_taken_for_a_refuted_report() {
    let t0 = Instant::now();
    let mut r = backup_of_11(70, t0);
    r.handle_timeout(t0 + mdi(70));
    drain(&mut r);
    assert_eq!(r.state(), State::Master);
    assert_eq!(r.liveness().takeover, None);
    hear(&mut r, t0 + mdi(70) + MS, "192.0.2.11", 100);
    assert_eq!(r.counters().liveness_refuted, 0);
}

#[test]
fn leaving_backup_forgets_a_pending_report() {
    let t0 = Instant::now();
    let mut r = backup_of_11(70, t0);
    r.handle_liveness(t0 + 400 * MS, ip("192.0.2.11"), LOST);
    r.set_fault(t0 + 401 * MS, true);
    assert_eq!(r.liveness().pending, None);
    r.set_fault(t0 + 2 * SEC, false);
    drain(&mut r);
    // Back in Backup with a fresh Master_Down_Timer, not the shortened one.
    assert_eq!(r.poll_timeout(), Some(t0 + 2 * SEC + mdi(70)));
}
