//! `Router::sync`: what a member of a sync group does when the group asks (src/sync_group.rs).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use vipd_vrrp::sync_group::SyncCommand;
use vipd_vrrp::timers::master_down_interval;
use vipd_vrrp::{
    Action, Advertisement, Auth, ChecksumForm, Event, Received, Router, RouterConfig, SourceFilter,
    State, Timer, TtlPolicy, Version,
};

const SEC: Duration = Duration::from_secs(1);

fn cfg() -> RouterConfig {
    RouterConfig {
        version: Version::V3,
        vrid: 51,
        priority: 70,
        advert_interval: SEC,
        primary_address: "192.0.2.10".parse().unwrap(),
        vips: vec!["192.0.2.100".parse().unwrap()],
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

fn drain(r: &mut Router) -> Vec<Action> {
    std::iter::from_fn(|| r.poll_action()).collect()
}

fn work(actions: &[Action]) -> Vec<Action> {
    actions
        .iter()
        .filter(|a| !matches!(a, Action::Event(_)))
        .cloned()
        .collect()
}

fn backup(t0: Instant) -> Router {
    let mut r = Router::new(cfg(), t0);
    r.startup(t0);
    drain(&mut r);
    r
}

fn master(t0: Instant) -> (Router, Instant) {
    let mut r = backup(t0);
    let t = t0 + master_down_interval(Version::V3, 70, SEC);
    r.handle_timeout(t);
    drain(&mut r);
    assert_eq!(r.state(), State::Master);
    (r, t)
}

fn hear(r: &mut Router, now: Instant, priority: u8) {
    let advert = Advertisement {
        version: Version::V3,
        vrid: 51,
        priority,
        interval_cs: 100,
        addresses: vec!["192.0.2.100".parse().unwrap()],
        auth: Auth::None,
    };
    let src: IpAddr = "192.0.2.11".parse().unwrap();
    r.handle_advert(
        now,
        Received {
            src,
            ttl: 255,
            advert: &advert,
            checksum_form: ChecksumForm::Plain,
        },
    );
}

#[test]
fn become_master_takes_a_backup_over_at_once_with_vips_announce_and_advert() {
    let t0 = Instant::now();
    let mut r = backup(t0);
    r.sync(t0 + SEC, SyncCommand::BecomeMaster);
    let actions = drain(&mut r);
    assert_eq!(r.state(), State::Master);
    assert!(matches!(
        work(&actions)[..],
        [Action::AddVips, Action::Announce, Action::Send(_)]
    ));
    assert!(actions.contains(&Action::Event(Event::StateChanged {
        from: State::Backup,
        to: State::Master,
        reason: "sync group: another member became Master",
    })));
}

#[test]
fn step_down_resigns_make_before_break_and_ends_in_backup_not_stopped() {
    let t0 = Instant::now();
    let (mut r, t) = master(t0);
    r.sync(t + SEC / 2, SyncCommand::StepDown);
    let actions = drain(&mut r);
    assert_eq!(r.state(), State::Resigning);
    // A priority-0 advert, and no RemoveVips yet.
    assert!(matches!(&work(&actions)[..], [Action::Send(a)] if a.priority == 0));
    // The new Master's advert: VIPs go, Backup with a running Master_Down_Timer.
    hear(&mut r, t + SEC, 100);
    let actions = drain(&mut r);
    assert!(work(&actions).contains(&Action::RemoveVips));
    assert_eq!(r.state(), State::Backup);
    assert!(!r.is_stopped());
    assert_eq!(r.next_timer().map(|(t, _)| t), Some(Timer::MasterDown));
}

#[test]
fn step_down_without_a_new_master_ends_in_backup_after_resign_wait() {
    let t0 = Instant::now();
    let (mut r, t) = master(t0);
    r.sync(t, SyncCommand::StepDown);
    drain(&mut r);
    r.handle_timeout(t + Duration::from_secs(3));
    let actions = drain(&mut r);
    assert!(work(&actions).contains(&Action::RemoveVips));
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn a_shutdown_during_a_step_down_ends_stopped() {
    let t0 = Instant::now();
    let (mut r, t) = master(t0);
    r.sync(t, SyncCommand::StepDown);
    r.shutdown(t + SEC / 10);
    hear(&mut r, t + SEC / 5, 100);
    drain(&mut r);
    assert!(r.is_stopped());
    assert_eq!(r.state(), State::Initialize);
}

#[test]
fn fault_is_shared_and_other_commands_in_other_states_change_nothing() {
    let t0 = Instant::now();
    let mut r = backup(t0);
    r.sync(t0, SyncCommand::StepDown);
    assert_eq!(r.state(), State::Backup);
    r.sync(t0, SyncCommand::Fault(true));
    assert_eq!(r.state(), State::Fault);
    r.sync(t0, SyncCommand::BecomeMaster);
    assert_eq!(r.state(), State::Fault);
    r.sync(t0 + SEC, SyncCommand::Fault(false));
    assert_eq!(r.state(), State::Backup);
}
