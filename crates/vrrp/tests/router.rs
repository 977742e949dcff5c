//! Unit tests of the state machine, one behaviour each, named after the RFC 9568 section 6.4
//! (or RFC 3768 section 7.1) sentence or vipd rule they check. Timer values are exact: the
//! oracle is reference/vrrp.md (Skew_Time = (256 - P) * MAI / 256, MDI = 3 * MAI + Skew_Time).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use vipd_vrrp::reassert;
use vipd_vrrp::router::{drop_reason, ReconfigureError, REASSERT_FOLLOW_UP};
use vipd_vrrp::{
    Action, Advertisement, Auth, ChecksumForm, Event, Received, Router, RouterConfig, SourceFilter,
    State, Timer, TtlPolicy, Version,
};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// v3 over IPv4, VRID 51, 1 s interval, VIP 192.0.2.100, primary 192.0.2.10.
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

fn v2cfg(priority: u8) -> RouterConfig {
    RouterConfig {
        version: Version::V2,
        auth: Auth::Pass(*b"ostest_a"),
        ..cfg(priority)
    }
}

fn adv(priority: u8, interval_cs: u16) -> Advertisement {
    Advertisement {
        version: Version::V3,
        vrid: 51,
        priority,
        interval_cs,
        addresses: vec![ip("192.0.2.100")],
        auth: Auth::None,
    }
}

fn v2adv(priority: u8) -> Advertisement {
    Advertisement {
        version: Version::V2,
        auth: Auth::Pass(*b"ostest_a"),
        ..adv(priority, 100)
    }
}

fn rx<'a>(src: &str, advert: &'a Advertisement) -> Received<'a> {
    Received {
        src: ip(src),
        ttl: 255,
        advert,
        checksum_form: ChecksumForm::Plain,
    }
}

fn drain(r: &mut Router) -> Vec<Action> {
    std::iter::from_fn(|| r.poll_action()).collect()
}

fn sends(actions: &[Action]) -> Vec<Advertisement> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(adv) => Some(adv.clone()),
            _ => None,
        })
        .collect()
}

fn non_events(actions: &[Action]) -> Vec<Action> {
    actions
        .iter()
        .filter(|a| !matches!(a, Action::Event(_)))
        .cloned()
        .collect()
}

/// A started Backup (priority `p`) at `t0`, actions drained.
fn backup(p: u8, t0: Instant) -> Router {
    let mut r = Router::new(cfg(p), t0);
    r.startup(t0);
    drain(&mut r);
    r
}

/// A router of priority `p` that became Master at `t0 + MDI` by timer; returns it and that time.
fn master(p: u8, t0: Instant) -> (Router, Instant) {
    let mut r = backup(p, t0);
    let t = r.poll_timeout().unwrap();
    r.handle_timeout(t);
    drain(&mut r);
    assert_eq!(r.state(), State::Master);
    (r, t)
}

// ---- 6.4.1 Initialize ------------------------------------------------------------------

#[test]
fn new_router_is_initialize_with_nothing_queued_and_no_timer() {
    let t0 = Instant::now();
    let mut r = Router::new(cfg(100), t0);
    assert_eq!(r.state(), State::Initialize);
    assert_eq!(r.poll_action(), None);
    assert_eq!(r.poll_timeout(), None);
    assert!(!r.is_stopped());
}

#[test]
fn rfc9568_6_4_1_priority_255_sends_advert_announces_and_becomes_master_at_startup() {
    let t0 = Instant::now();
    let mut r = Router::new(cfg(255), t0);
    r.startup(t0);
    let actions = drain(&mut r);
    assert_eq!(
        actions,
        vec![
            Action::Event(Event::StateChanged {
                from: State::Initialize,
                to: State::Master,
                reason: "startup as address owner (priority 255)",
            }),
            Action::AddVips,
            Action::Announce,
            Action::Send(adv(255, 100)),
        ]
    );
    assert_eq!(r.state(), State::Master);
    // "Set the Adver_Timer to Advertisement_Interval"
    assert_eq!(r.poll_timeout(), Some(t0 + SEC));
    assert_eq!(r.counters().master_transitions, 1);
}

#[test]
fn rfc9568_6_4_1_below_255_becomes_backup_with_master_down_timer_of_master_down_interval() {
    let t0 = Instant::now();
    let mut r = Router::new(cfg(100), t0);
    r.startup(t0);
    assert_eq!(
        drain(&mut r),
        vec![Action::Event(Event::StateChanged {
            from: State::Initialize,
            to: State::Backup,
            reason: "startup",
        })]
    );
    // 3 * 1 s + (256 - 100) / 256 s = 3.609375 s
    assert_eq!(
        r.poll_timeout(),
        Some(t0 + Duration::from_micros(3_609_375))
    );
}

// ---- 6.4.2 Backup ------------------------------------------------------------------------

#[test]
fn rfc9568_6_4_2_master_down_timer_expiry_sends_advert_announces_and_becomes_master() {
    let t0 = Instant::now();
    let mut r = backup(40, t0);
    let deadline = t0 + Duration::from_micros(3_843_750);
    assert_eq!(r.poll_timeout(), Some(deadline));
    r.handle_timeout(deadline - MS);
    assert_eq!(drain(&mut r), vec![], "nothing fires before the deadline");
    r.handle_timeout(deadline);
    let actions = drain(&mut r);
    assert_eq!(
        actions[0],
        Action::Event(Event::StateChanged {
            from: State::Backup,
            to: State::Master,
            reason: "master down timer expired",
        })
    );
    assert_eq!(
        non_events(&actions),
        vec![
            Action::AddVips,
            Action::Announce,
            Action::Send(adv(40, 100)),
        ]
    );
    assert_eq!(r.poll_timeout(), Some(deadline + SEC));
}

#[test]
fn rfc9568_6_4_2_priority_zero_advert_sets_master_down_timer_to_skew_time() {
    let t0 = Instant::now();
    let mut r = backup(40, t0);
    let t1 = t0 + SEC;
    r.handle_advert(t1, rx("192.0.2.20", &adv(0, 100)));
    // Skew_Time at P=40, 1 s: 216/256 s = 0.84375 s (reference table: 0.844 s)
    assert_eq!(r.poll_timeout(), Some(t1 + Duration::from_micros(843_750)));
    assert_eq!(r.counters().priority_zero_rx, 1);
}

#[test]
fn rfc9568_6_4_2_higher_priority_advert_adopts_its_interval_and_resets_the_timer() {
    let t0 = Instant::now();
    let mut r = backup(40, t0);
    let t1 = t0 + SEC;
    r.handle_advert(t1, rx("192.0.2.20", &adv(70, 10)));
    // Master_Adver_Interval = 100 ms; MDI = 300 ms + 216 * 100 ms / 256 = 384.375 ms
    assert_eq!(r.master_adver_interval(), 100 * MS);
    assert_eq!(r.poll_timeout(), Some(t1 + Duration::from_micros(384_375)));
    let m = r.master().unwrap();
    assert_eq!(
        (m.address, m.priority, m.interval, m.last_seen),
        (ip("192.0.2.20"), 70, 100 * MS, t1)
    );
}

#[test]
fn rfc9568_6_4_2_equal_priority_advert_resets_the_timer() {
    let t0 = Instant::now();
    let mut r = backup(40, t0);
    let t1 = t0 + SEC;
    r.handle_advert(t1, rx("192.0.2.5", &adv(40, 100)));
    assert_eq!(
        r.poll_timeout(),
        Some(t1 + Duration::from_micros(3_843_750))
    );
}

#[test]
fn rfc9568_6_4_2_preempt_discards_lower_priority_advert_so_the_timer_runs_out() {
    let t0 = Instant::now();
    let mut r = backup(100, t0);
    let before = r.poll_timeout();
    r.handle_advert(t0 + SEC, rx("192.0.2.20", &adv(50, 100)));
    assert_eq!(r.poll_timeout(), before);
    assert_eq!(r.master(), None);
}

#[test]
fn rfc9568_6_4_2_preempt_false_accepts_lower_priority_advert_and_resets_the_timer() {
    let t0 = Instant::now();
    let mut r = Router::new(
        RouterConfig {
            preempt: false,
            ..cfg(100)
        },
        t0,
    );
    r.startup(t0);
    let t1 = t0 + SEC;
    r.handle_advert(t1, rx("192.0.2.20", &adv(50, 100)));
    assert_eq!(
        r.poll_timeout(),
        Some(t1 + Duration::from_micros(3_609_375))
    );
}

#[test]
fn rfc3768_v2_backup_times_the_master_with_its_own_interval() {
    let t0 = Instant::now();
    let mut r = Router::new(v2cfg(40), t0);
    r.startup(t0);
    let t1 = t0 + SEC;
    r.handle_advert(t1, rx("192.0.2.20", &v2adv(70)));
    // RFC 3768 6.1: Skew_Time = (256 - 40) / 256 s; MDI = 3 s + 0.84375 s
    assert_eq!(
        r.poll_timeout(),
        Some(t1 + Duration::from_micros(3_843_750))
    );
}

// ---- 6.4.3 Master ------------------------------------------------------------------------

#[test]
fn rfc9568_6_4_3_adver_timer_sends_advert_and_rearms_on_its_grid_when_handled_late() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    let due = tm + SEC;
    assert_eq!(r.poll_timeout(), Some(due));
    r.handle_timeout(due + 300 * MS);
    assert_eq!(drain(&mut r), vec![Action::Send(adv(100, 100))]);
    assert_eq!(
        r.poll_timeout(),
        Some(due + SEC),
        "no drift: next slot is due + interval"
    );
}

#[test]
fn a_recycled_advert_lends_its_address_list_to_the_next_one_and_content_is_unchanged() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    let due = tm + SEC;
    r.handle_timeout(due);
    let mut first = sends(&drain(&mut r));
    assert_eq!(first, vec![adv(100, 100)]);
    // What the driver hands back is stale: the router overwrites it with the VIPs.
    let mut given = first.remove(0);
    given.addresses = Vec::with_capacity(16);
    given.addresses.push(ip("198.51.100.1"));
    let lent = given.addresses.as_ptr();
    r.recycle(given);
    r.handle_timeout(due + SEC);
    let actions = drain(&mut r);
    let Some(Action::Send(second)) = actions.first() else {
        panic!("expected an advert, got {actions:?}");
    };
    assert_eq!(*second, adv(100, 100));
    assert_eq!(
        second.addresses.as_ptr(),
        lent,
        "the recycled list was not reused"
    );
}

#[test]
fn adver_timer_handled_more_than_an_interval_late_sends_once_and_restarts_from_now() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    let late = tm + SEC + 2500 * MS;
    r.handle_timeout(late);
    assert_eq!(
        drain(&mut r),
        vec![Action::Send(adv(100, 100))],
        "no catch-up burst"
    );
    assert_eq!(r.poll_timeout(), Some(late + SEC));
}

#[test]
fn rfc9568_6_4_3_priority_zero_advert_makes_master_send_at_once_and_reset_adver_timer() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    let t = tm + 400 * MS;
    r.handle_advert(t, rx("192.0.2.20", &adv(0, 100)));
    assert_eq!(
        non_events(&drain(&mut r)),
        vec![Action::Send(adv(100, 100))]
    );
    assert_eq!(r.poll_timeout(), Some(t + SEC));
    assert_eq!(r.state(), State::Master);
}

#[test]
fn rfc9568_6_4_3_higher_priority_advert_makes_master_a_backup_with_adopted_interval() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    let t = tm + 400 * MS;
    r.handle_advert(t, rx("192.0.2.20", &adv(150, 10)));
    let actions = drain(&mut r);
    assert_eq!(
        actions[..2],
        [
            // the yield notice: one last advert so the winner hears the split brain
            Action::Send(adv(100, 100)),
            Action::RemoveVips,
        ]
    );
    assert_eq!(
        actions[2],
        Action::Event(Event::StateChanged {
            from: State::Master,
            to: State::Backup,
            reason: "higher priority advert received while Master",
        })
    );
    assert_eq!(r.state(), State::Backup);
    // MDI at P=100, 100 ms: 300 ms + 156 * 100 ms / 256 = 360.9375 ms
    assert_eq!(
        r.poll_timeout(),
        Some(t + Duration::from_nanos(360_937_500))
    );
}

#[test]
fn rfc9568_6_4_3_equal_priority_from_higher_primary_address_wins() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    r.handle_advert(tm + MS, rx("192.0.2.11", &adv(100, 100)));
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn rfc9568_6_4_3_equal_priority_from_lower_primary_address_is_discarded() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    r.handle_advert(tm + MS, rx("192.0.2.9", &adv(100, 100)));
    assert_eq!(r.state(), State::Master);
}

#[test]
fn ipv6_tie_break_compares_link_local_addresses_numerically() {
    let t0 = Instant::now();
    let c = RouterConfig {
        primary_address: ip("fe80::a"),
        vips: vec![ip("2001:db8::100")],
        ..cfg(100)
    };
    let mut r = Router::new(c, t0);
    r.startup(t0);
    r.handle_timeout(r.poll_timeout().unwrap());
    let a = Advertisement {
        addresses: vec![ip("2001:db8::100")],
        ..adv(100, 100)
    };
    r.handle_advert(t0 + 5 * SEC, rx("fe80::9", &a));
    assert_eq!(r.state(), State::Master);
    r.handle_advert(t0 + 5 * SEC, rx("fe80::b", &a));
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn lower_priority_master_makes_master_reassert_with_announce_then_advert() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    let t = tm + 2 * SEC;
    r.handle_advert(t, rx("192.0.2.20", &adv(50, 100)));
    assert_eq!(
        drain(&mut r),
        vec![
            Action::Event(Event::LowerPriorityMaster {
                from: ip("192.0.2.20"),
                priority: 50
            }),
            Action::Announce,
            Action::Send(adv(100, 100)),
        ]
    );
    assert_eq!(
        r.timers().get(Timer::Adver),
        Some(t + SEC),
        "adver timer reset by the re-assert"
    );
    assert_eq!(
        r.next_timer(),
        Some((Timer::ReassertFollowUp, t + REASSERT_FOLLOW_UP))
    );
    assert_eq!(r.counters().lower_priority_master_rx, 1);
}

#[test]
fn reassert_follow_up_announces_once_150_ms_later() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    let t = tm + 2 * SEC;
    r.handle_advert(t, rx("192.0.2.20", &adv(50, 100)));
    drain(&mut r);
    r.handle_timeout(t + REASSERT_FOLLOW_UP - MS);
    assert_eq!(drain(&mut r), vec![]);
    r.handle_timeout(t + REASSERT_FOLLOW_UP);
    assert_eq!(drain(&mut r), vec![Action::Announce]);
    assert_eq!(r.timers().get(Timer::ReassertFollowUp), None);
    assert_eq!(r.next_timer(), Some((Timer::Adver, t + SEC)));
}

#[test]
fn reassert_advert_is_rate_limited_to_once_per_interval_and_extra_claims_get_an_announce() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    let t = tm + 2 * SEC;
    let claim = |r: &mut Router, at: Instant| {
        r.handle_advert(at, rx("192.0.2.20", &adv(50, 100)));
        non_events(&drain(r))
    };
    assert_eq!(
        claim(&mut r, t),
        vec![Action::Announce, Action::Send(adv(100, 100))]
    );
    // Within the interval: announcements only, up to the per-peer budget
    // (reassert::PER_WINDOW claims per window, the first one included).
    for k in 1..u32::from(reassert::PER_WINDOW) {
        assert_eq!(
            claim(&mut r, t + k * MS),
            vec![Action::Announce],
            "claim {k}"
        );
    }
    assert_eq!(claim(&mut r, t + 10 * MS), vec![], "budget spent");
    // One interval after the first: advert and announcement again.
    assert_eq!(
        claim(&mut r, t + SEC),
        vec![Action::Announce, Action::Send(adv(100, 100))]
    );
}

#[test]
fn stepping_down_stops_the_reassert_follow_up() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    let t = tm + 2 * SEC;
    r.handle_advert(t, rx("192.0.2.20", &adv(50, 100)));
    r.handle_advert(t + MS, rx("192.0.2.21", &adv(150, 100)));
    drain(&mut r);
    assert_eq!(r.state(), State::Backup);
    assert_eq!(r.timers().get(Timer::ReassertFollowUp), None);
    assert_eq!(
        r.next_timer().map(|(timer, _)| timer),
        Some(Timer::MasterDown)
    );
}

// ---- validation (RFC 9568 / RFC 3768 section 7.1) ----------------------------------------

fn dropped(r: &mut Router) -> Vec<&'static str> {
    drain(r)
        .into_iter()
        .filter_map(|a| match a {
            Action::Event(Event::Dropped { reason, .. }) => Some(reason),
            _ => None,
        })
        .collect()
}

#[test]
fn rfc9568_7_1_multicast_ttl_other_than_255_is_dropped() {
    let t0 = Instant::now();
    let mut r = backup(40, t0);
    let before = r.poll_timeout();
    let a = adv(70, 100);
    r.handle_advert(
        t0 + SEC,
        Received {
            ttl: 254,
            ..rx("192.0.2.20", &a)
        },
    );
    assert_eq!(dropped(&mut r), vec![drop_reason::TTL]);
    assert_eq!(r.counters().drop_ttl, 1);
    assert_eq!(
        r.poll_timeout(),
        before,
        "a dropped advert does not reset the timer"
    );
}

#[test]
fn unicast_ttl_range_accepts_a_ttl_inside_the_range() {
    let t0 = Instant::now();
    let c = RouterConfig {
        ttl_policy: TtlPolicy::Range { min: 60, max: 255 },
        ..cfg(40)
    };
    let mut r = Router::new(c, t0);
    r.startup(t0);
    drain(&mut r);
    let a = adv(70, 100);
    r.handle_advert(
        t0 + SEC,
        Received {
            ttl: 62,
            ..rx("192.0.2.20", &a)
        },
    );
    assert_eq!(dropped(&mut r), Vec::<&str>::new());
    r.handle_advert(
        t0 + SEC,
        Received {
            ttl: 59,
            ..rx("192.0.2.20", &a)
        },
    );
    assert_eq!(dropped(&mut r), vec![drop_reason::TTL]);
}

#[test]
fn validation_order_is_ttl_version_vrid_family_auth_interval() {
    let t0 = Instant::now();
    let mut r = Router::new(v2cfg(40), t0);
    r.startup(t0);
    drain(&mut r);
    // Everything wrong at once: only the first check is reported and counted.
    let bad = Advertisement {
        version: Version::V3,
        vrid: 9,
        addresses: vec![ip("2001:db8::1")],
        auth: Auth::None,
        interval_cs: 300,
        ..v2adv(70)
    };
    r.handle_advert(
        t0,
        Received {
            ttl: 1,
            ..rx("2001:db8::2", &bad)
        },
    );
    let a = Advertisement {
        vrid: 51,
        ..bad.clone()
    };
    r.handle_advert(
        t0,
        rx(
            "2001:db8::2",
            &Advertisement {
                version: Version::V2,
                ..a.clone()
            },
        ),
    );
    r.handle_advert(
        t0,
        rx(
            "2001:db8::2",
            &Advertisement {
                version: Version::V3,
                vrid: 51,
                ..v2adv(70)
            },
        ),
    );
    r.handle_advert(t0, rx("2001:db8::2", &v2adv(70)));
    r.handle_advert(
        t0,
        rx(
            "192.0.2.20",
            &Advertisement {
                auth: Auth::Pass(*b"wrong___"),
                ..v2adv(70)
            },
        ),
    );
    r.handle_advert(
        t0,
        rx(
            "192.0.2.20",
            &Advertisement {
                interval_cs: 300,
                ..v2adv(70)
            },
        ),
    );
    r.handle_advert(t0, rx("192.0.2.10", &v2adv(70)));
    assert_eq!(
        dropped(&mut r),
        vec![
            drop_reason::TTL,
            drop_reason::FAMILY,
            drop_reason::VERSION,
            drop_reason::FAMILY,
            drop_reason::AUTH,
            drop_reason::INTERVAL,
            drop_reason::OWN_ADDRESS,
        ]
    );
    let c = r.counters();
    assert_eq!(
        (
            c.drop_ttl,
            c.drop_version,
            c.drop_vrid,
            c.drop_family,
            c.drop_auth,
            c.drop_interval
        ),
        (1, 1, 0, 2, 1, 1)
    );
    assert_eq!(c.drop_own_address, 1);
    assert_eq!(c.adverts_rx, 7);
}

#[test]
fn rfc9568_7_1_advert_for_another_vrid_is_dropped() {
    let t0 = Instant::now();
    let mut r = backup(40, t0);
    r.handle_advert(
        t0,
        rx(
            "192.0.2.20",
            &Advertisement {
                vrid: 52,
                ..adv(70, 100)
            },
        ),
    );
    assert_eq!(dropped(&mut r), vec![drop_reason::VRID]);
    assert_eq!(r.counters().drop_vrid, 1);
}

#[test]
fn rfc3768_7_1_v2_auth_type_mismatch_is_dropped() {
    let t0 = Instant::now();
    let mut r = Router::new(v2cfg(40), t0);
    r.startup(t0);
    drain(&mut r);
    r.handle_advert(
        t0,
        rx(
            "192.0.2.20",
            &Advertisement {
                auth: Auth::None,
                ..v2adv(70)
            },
        ),
    );
    assert_eq!(dropped(&mut r), vec![drop_reason::AUTH]);
}

#[test]
fn rfc9568_v3_advert_with_a_different_interval_is_not_dropped_but_adopted() {
    let t0 = Instant::now();
    let mut r = backup(40, t0);
    r.handle_advert(t0, rx("192.0.2.20", &adv(70, 300)));
    assert_eq!(dropped(&mut r), Vec::<&str>::new());
    assert_eq!(r.master_adver_interval(), 3 * SEC);
}

/// An advert for our VRID that lists 192.0.2.101 instead of our 192.0.2.100.
fn foreign(priority: u8) -> Advertisement {
    Advertisement {
        addresses: vec![ip("192.0.2.101")],
        ..adv(priority, 100)
    }
}

#[test]
fn rfc9568_7_1_address_list_mismatch_from_a_non_owner_is_dropped_and_changes_no_timer() {
    // "If the packet was not generated by the address owner (Priority does not equal 255
    // (decimal)), the receiver MUST drop the packet".
    let t0 = Instant::now();
    let mut r = backup(40, t0);
    let before = r.poll_timeout();
    r.handle_advert(t0 + SEC, rx("192.0.2.20", &foreign(70)));
    assert_eq!(
        drain(&mut r),
        vec![Action::Event(Event::Dropped {
            from: ip("192.0.2.20"),
            reason: drop_reason::ADDRESS_LIST
        })]
    );
    assert_eq!(r.counters().address_list_mismatch, 1);
    assert_eq!(r.counters().drop_address_list, 1);
    // The Master_Down_Timer keeps its deadline from startup: the foreign advert did not reset it.
    assert_eq!(r.poll_timeout(), before);
    assert_eq!(before, Some(t0 + Duration::from_micros(3_843_750)));
    assert_eq!(r.master(), None);
}

#[test]
fn rfc9568_7_1_address_list_mismatch_from_the_owner_is_reported_and_used() {
    // "... otherwise, continue processing": the owner's advert counts for the election.
    let t0 = Instant::now();
    let mut r = backup(40, t0);
    r.handle_advert(t0 + SEC, rx("192.0.2.20", &foreign(255)));
    assert_eq!(
        drain(&mut r),
        vec![Action::Event(Event::AddressMismatch {
            from: ip("192.0.2.20")
        })]
    );
    assert_eq!(r.counters().address_list_mismatch, 1);
    assert_eq!(r.counters().drop_address_list, 0);
    assert_eq!(
        r.poll_timeout(),
        Some(t0 + SEC + Duration::from_micros(3_843_750))
    );
    assert_eq!(r.master().map(|m| m.address), Some(ip("192.0.2.20")));
}

#[test]
fn master_keeps_its_vips_when_another_cluster_on_its_vrid_advertises_a_higher_priority() {
    // The VRID collision of issue 14: cluster B (VIP .101, priority 70) must not silence
    // cluster A's Master (VIP .100, priority 40). keepalived behaves the same.
    let t0 = Instant::now();
    let (mut r, tm) = master(40, t0);
    for k in 1..=10u32 {
        r.handle_advert(tm + k * SEC / 2, rx("192.0.2.20", &foreign(254)));
    }
    let actions = drain(&mut r);
    assert_eq!(non_events(&actions), vec![]);
    assert_eq!(r.state(), State::Master);
    assert_eq!(r.counters().drop_address_list, 10);
    // The Adver_Timer still runs on its own schedule.
    assert_eq!(r.poll_timeout(), Some(tm + SEC));
}

#[test]
fn resigning_master_keeps_its_vips_until_a_router_of_its_own_cluster_takes_over() {
    // Make-before-break must not be ended by a foreign Master's advert: that would release
    // our VIPs before any router of ours holds them.
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    r.shutdown(tm);
    drain(&mut r);
    r.handle_advert(tm + 10 * MS, rx("192.0.2.20", &foreign(70)));
    assert_eq!(r.state(), State::Resigning);
    assert!(!non_events(&drain(&mut r)).contains(&Action::RemoveVips));
    r.handle_advert(tm + 20 * MS, rx("192.0.2.21", &adv(40, 100)));
    assert_eq!(non_events(&drain(&mut r)), vec![Action::RemoveVips]);
    assert!(r.is_stopped());
}

fn checked(p: u8, sources: &[&str]) -> RouterConfig {
    RouterConfig {
        sources: SourceFilter::Only(sources.iter().map(|s| ip(s)).collect()),
        ..cfg(p)
    }
}

#[test]
fn advert_from_a_source_the_filter_does_not_admit_is_dropped_before_it_changes_anything() {
    let t0 = Instant::now();
    let mut r = Router::new(checked(40, &["192.0.2.11", "192.0.2.12"]), t0);
    r.startup(t0);
    drain(&mut r);
    let before = r.poll_timeout();
    r.handle_advert(t0 + SEC, rx("192.0.2.66", &adv(255, 100)));
    assert_eq!(
        drain(&mut r),
        vec![Action::Event(Event::Dropped {
            from: ip("192.0.2.66"),
            reason: drop_reason::SOURCE
        })]
    );
    assert_eq!(r.counters().drop_source, 1);
    assert_eq!(r.poll_timeout(), before);
    assert_eq!(r.master(), None);
}

#[test]
fn advert_from_an_admitted_source_is_used() {
    let t0 = Instant::now();
    let mut r = Router::new(checked(40, &["192.0.2.11", "192.0.2.12"]), t0);
    r.startup(t0);
    drain(&mut r);
    r.handle_advert(t0 + SEC, rx("192.0.2.12", &adv(70, 100)));
    assert_eq!(drain(&mut r), vec![]);
    assert_eq!(r.counters().drop_source, 0);
    assert_eq!(
        r.poll_timeout(),
        Some(t0 + SEC + Duration::from_micros(3_843_750))
    );
}

#[test]
fn forged_owner_adverts_from_an_unlisted_host_do_not_move_a_checked_master() {
    // The attack of issue 14: a host that is no peer sends priority-255 adverts (correct
    // checksum, TTL 255) to the Master's address.
    let t0 = Instant::now();
    let mut r = Router::new(checked(100, &["192.0.2.12"]), t0);
    r.startup(t0);
    let tm = r.poll_timeout().unwrap();
    r.handle_timeout(tm);
    drain(&mut r);
    for k in 1..=10u32 {
        r.handle_advert(tm + k * 100 * MS, rx("192.0.2.66", &adv(255, 100)));
        r.handle_advert(tm + k * 100 * MS, rx("192.0.2.66", &adv(0, 100)));
    }
    assert_eq!(non_events(&drain(&mut r)), vec![]);
    assert_eq!(r.state(), State::Master);
    assert_eq!(r.counters().drop_source, 20);
    assert_eq!(r.counters().priority_zero_rx, 0);
}

#[test]
fn without_a_source_filter_any_sender_is_heard() {
    // SourceFilter::Any (multicast, or keepalived's default): the bootstrap, which no master
    // lists as a peer, is heard.
    let t0 = Instant::now();
    let mut r = backup(40, t0);
    r.handle_advert(t0 + SEC, rx("192.0.2.66", &adv(70, 100)));
    assert_eq!(drain(&mut r), vec![]);
    assert_eq!(r.master().map(|m| m.address), Some(ip("192.0.2.66")));
}

#[test]
fn address_list_in_another_order_is_not_a_mismatch() {
    let t0 = Instant::now();
    let c = RouterConfig {
        vips: vec![ip("192.0.2.100"), ip("192.0.2.101")],
        ..cfg(40)
    };
    let mut r = Router::new(c, t0);
    r.startup(t0);
    let a = Advertisement {
        addresses: vec![ip("192.0.2.101"), ip("192.0.2.100")],
        ..adv(70, 100)
    };
    r.handle_advert(t0, rx("192.0.2.20", &a));
    assert_eq!(r.counters().address_list_mismatch, 0);
}

#[test]
fn checksum_forms_are_counted() {
    let t0 = Instant::now();
    let mut r = backup(40, t0);
    let a = adv(70, 100);
    r.handle_advert(t0, rx("192.0.2.20", &a));
    r.handle_advert(
        t0,
        Received {
            checksum_form: ChecksumForm::PseudoHeader,
            ..rx("192.0.2.20", &a)
        },
    );
    r.handle_advert(
        t0,
        Received {
            checksum_form: ChecksumForm::PseudoHeader,
            ..rx("192.0.2.20", &a)
        },
    );
    assert_eq!(
        (
            r.counters().checksum_plain_rx,
            r.counters().checksum_pseudo_header_rx
        ),
        (1, 2)
    );
}

// ---- effective priority ------------------------------------------------------------------

#[test]
fn tracked_priority_is_clamped_to_1_through_254() {
    let t0 = Instant::now();
    let mut r = backup(40, t0);
    r.set_priority(t0, 300);
    assert_eq!(r.effective_priority(), 254);
    r.set_priority(t0, -20);
    assert_eq!(r.effective_priority(), 1);
    r.set_priority(t0, 65u8);
    assert_eq!(r.effective_priority(), 65);
}

#[test]
fn owner_priority_255_is_never_changed_by_tracking() {
    let t0 = Instant::now();
    let mut r = Router::new(cfg(255), t0);
    r.startup(t0);
    drain(&mut r);
    r.set_priority(t0, 100);
    assert_eq!(r.effective_priority(), 255);
    assert_eq!(drain(&mut r), vec![]);
}

#[test]
fn master_whose_priority_changes_advertises_the_new_priority_at_once() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    let t = tm + 250 * MS;
    r.set_priority(t, 60);
    assert_eq!(drain(&mut r), vec![Action::Send(adv(60, 100))]);
    assert_eq!(r.poll_timeout(), Some(t + SEC));
}

// ---- fault ---------------------------------------------------------------------------------

#[test]
fn fault_on_master_sends_priority_zero_removes_vips_and_stops_advertising() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    r.set_fault(tm + MS, true);
    let actions = drain(&mut r);
    assert_eq!(
        non_events(&actions),
        vec![Action::Send(adv(0, 100)), Action::RemoveVips]
    );
    assert_eq!(r.state(), State::Fault);
    assert_eq!(r.poll_timeout(), None);
    assert_eq!(r.counters().priority_zero_tx, 1);
}

#[test]
fn fault_on_backup_stops_the_master_down_timer() {
    let t0 = Instant::now();
    let mut r = backup(100, t0);
    r.set_fault(t0, true);
    assert_eq!(r.state(), State::Fault);
    assert_eq!(r.poll_timeout(), None);
    r.handle_advert(t0 + SEC, rx("192.0.2.20", &adv(0, 100)));
    assert_eq!(
        r.state(),
        State::Fault,
        "a Fault router ignores the election"
    );
}

#[test]
fn fault_cleared_returns_to_backup_with_a_fresh_master_down_timer() {
    let t0 = Instant::now();
    let mut r = backup(100, t0);
    r.set_fault(t0, true);
    let t = t0 + 10 * SEC;
    r.set_fault(t, false);
    assert_eq!(r.state(), State::Backup);
    assert_eq!(r.poll_timeout(), Some(t + Duration::from_micros(3_609_375)));
}

#[test]
fn fault_cleared_on_the_owner_becomes_master_at_once() {
    let t0 = Instant::now();
    let mut r = Router::new(cfg(255), t0);
    r.startup(t0);
    r.set_fault(t0, true);
    drain(&mut r);
    r.set_fault(t0 + SEC, false);
    assert_eq!(r.state(), State::Master);
    assert_eq!(
        non_events(&drain(&mut r)),
        vec![
            Action::AddVips,
            Action::Announce,
            Action::Send(adv(255, 100)),
        ]
    );
}

#[test]
fn startup_with_fault_already_set_goes_to_fault() {
    let t0 = Instant::now();
    let mut r = Router::new(cfg(255), t0);
    r.set_fault(t0, true);
    r.startup(t0);
    assert_eq!(r.state(), State::Fault);
    assert_eq!(sends(&drain(&mut r)), vec![]);
}

// ---- shutdown / make-before-break resign ---------------------------------------------------

#[test]
fn shutdown_of_a_backup_stops_at_once() {
    let t0 = Instant::now();
    let mut r = backup(100, t0);
    r.shutdown(t0);
    assert_eq!(r.state(), State::Initialize);
    assert!(r.is_stopped());
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn shutdown_of_a_master_sends_priority_zero_and_keeps_the_vips_while_resigning() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    let t = tm + 100 * MS;
    r.shutdown(t);
    let actions = drain(&mut r);
    assert_eq!(non_events(&actions), vec![Action::Send(adv(0, 100))]);
    assert_eq!(r.state(), State::Resigning);
    assert!(!r.is_stopped());
    assert_eq!(
        r.poll_timeout(),
        Some(t + SEC),
        "priority-0 advert repeats every interval"
    );
    r.handle_timeout(t + SEC);
    assert_eq!(drain(&mut r), vec![Action::Send(adv(0, 100))]);
}

#[test]
fn resigning_master_removes_vips_when_another_router_advertises() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    r.shutdown(tm);
    drain(&mut r);
    r.handle_advert(tm + 844 * MS, rx("192.0.2.20", &adv(0, 100)));
    assert_eq!(
        r.state(),
        State::Resigning,
        "a priority-0 advert is not a new Master"
    );
    r.handle_advert(tm + 845 * MS, rx("192.0.2.20", &adv(40, 100)));
    let actions = drain(&mut r);
    assert_eq!(non_events(&actions), vec![Action::RemoveVips]);
    assert!(r.is_stopped());
    assert_eq!(r.state(), State::Initialize);
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn resigning_master_removes_vips_when_resign_wait_expires() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    r.shutdown(tm);
    drain(&mut r);
    r.handle_timeout(tm + 3 * SEC);
    let actions = drain(&mut r);
    // the 3 s slot of the repeat and the resign deadline coincide: repeat, then give up
    assert_eq!(
        non_events(&actions),
        vec![Action::Send(adv(0, 100)), Action::RemoveVips]
    );
    assert!(r.is_stopped());
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn stopped_router_ignores_every_input() {
    let t0 = Instant::now();
    let mut r = backup(100, t0);
    r.shutdown(t0);
    drain(&mut r);
    r.handle_advert(t0, rx("192.0.2.20", &adv(0, 100)));
    r.handle_timeout(t0 + 100 * SEC);
    r.set_priority(t0, 200);
    r.set_fault(t0, true);
    assert_eq!(drain(&mut r), vec![]);
}

// ---- announce scheduling -------------------------------------------------------------------

#[test]
fn announce_on_becoming_master_again_after_repeat_delay_then_every_refresh() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    let mut announced = Vec::new();
    let end = tm + Duration::from_secs(130);
    while let Some(t) = r.poll_timeout().filter(|t| *t <= end) {
        r.handle_timeout(t);
        if drain(&mut r).contains(&Action::Announce) {
            announced.push(t - tm);
        }
    }
    assert_eq!(announced, vec![5 * SEC, 65 * SEC, 125 * SEC]);
    assert_eq!(r.counters().announces, 4);
}

// ---- reload ----------------------------------------------------------------------------------

#[test]
fn reload_changing_priority_keeps_master_without_vip_flap_and_advertises_at_once() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    r.reconfigure(tm + MS, cfg(120)).unwrap();
    assert_eq!(drain(&mut r), vec![Action::Send(adv(120, 100))]);
    assert_eq!(r.state(), State::Master);
    assert_eq!(
        r.counters().transitions,
        2,
        "Initialize->Backup->Master, nothing since"
    );
}

#[test]
fn reload_changing_only_preempt_and_announce_settings_emits_nothing_and_keeps_master() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    let c = RouterConfig {
        preempt: false,
        announce_repeat_after: None,
        announce_refresh: Some(Duration::from_secs(30)),
        ..cfg(100)
    };
    let t = tm + 2 * SEC;
    r.reconfigure(t, c).unwrap();
    assert_eq!(drain(&mut r), vec![]);
    assert_eq!(r.state(), State::Master);
    // the pending 5 s repeat was dropped; the refresh restarts from the reload
    r.handle_timeout(t + Duration::from_secs(30));
    assert!(drain(&mut r).contains(&Action::Announce));
}

#[test]
fn reload_changing_the_vip_set_while_backup_emits_no_vip_action() {
    let t0 = Instant::now();
    let mut r = backup(40, t0);
    let c = RouterConfig {
        vips: vec![ip("192.0.2.101")],
        ..cfg(40)
    };
    r.reconfigure(t0 + SEC, c).unwrap();
    assert_eq!(drain(&mut r), vec![]);
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn reload_keeps_the_tracking_offset_relative_to_the_new_base() {
    let t0 = Instant::now();
    let mut r = backup(40, t0);
    r.set_priority(t0, 40 + 25);
    r.reconfigure(t0, cfg(50)).unwrap();
    assert_eq!(r.effective_priority(), 75);
}

#[test]
fn reload_changing_the_vip_set_while_master_updates_only_the_difference() {
    let t0 = Instant::now();
    let (mut r, tm) = master(100, t0);
    let c = RouterConfig {
        vips: vec![ip("192.0.2.101")],
        ..cfg(100)
    };
    r.reconfigure(tm + MS, c).unwrap();
    let mut a = adv(100, 100);
    a.addresses = vec![ip("192.0.2.101")];
    assert_eq!(
        drain(&mut r),
        vec![
            Action::UpdateVips {
                added: vec![ip("192.0.2.101")],
                removed: vec![ip("192.0.2.100")]
            },
            Action::Announce,
            Action::Send(a),
        ]
    );
}

#[test]
fn reload_changing_vrid_is_refused_and_changes_nothing() {
    let t0 = Instant::now();
    let mut r = backup(40, t0);
    let err = r
        .reconfigure(
            t0,
            RouterConfig {
                vrid: 52,
                ..cfg(40)
            },
        )
        .unwrap_err();
    assert_eq!(
        err,
        ReconfigureError::IdentityChanged {
            field: "vrid",
            old: "51".into(),
            new: "52".into()
        }
    );
    assert_eq!(r.config().vrid, 51);
}

#[test]
fn reload_changing_address_family_is_refused() {
    let t0 = Instant::now();
    let mut r = backup(40, t0);
    let c = RouterConfig {
        primary_address: ip("fe80::1"),
        vips: vec![ip("2001:db8::1")],
        ..cfg(40)
    };
    assert!(matches!(
        r.reconfigure(t0, c),
        Err(ReconfigureError::IdentityChanged {
            field: "address family (primary_address)",
            ..
        })
    ));
}

// ---- config check ----------------------------------------------------------------------------

#[test]
fn config_check_names_the_field_at_fault() {
    assert_eq!(cfg(100).check(), Ok(()));
    assert_eq!(v2cfg(100).check(), Ok(()));
    let e = RouterConfig {
        advert_interval: 5 * MS,
        ..cfg(100)
    }
    .check()
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "advert_interval 5ms is out of range: v3 accepts 10 ms..=40.95 s in whole centiseconds, \
         v2 1 s..=255 s in whole seconds"
    );
    let e = RouterConfig {
        vips: vec![ip("2001:db8::1")],
        ..cfg(100)
    }
    .check()
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "vip 2001:db8::1 is not of the same address family as primary_address 192.0.2.10"
    );
}

// ---- never panics; invariants under random input ---------------------------------------------

#[derive(Debug, Clone)]
enum Input {
    Advert {
        dt_ms: u16,
        src: u8,
        prio: u8,
        interval_cs: u16,
        ttl: u8,
        vrid: u8,
        v2: bool,
    },
    Timeout {
        dt_ms: u16,
    },
    Priority {
        dt_ms: u16,
        p: i32,
    },
    Fault {
        dt_ms: u16,
        on: bool,
    },
    Shutdown {
        dt_ms: u16,
    },
    Reload {
        dt_ms: u16,
        prio: u8,
        vips: u8,
    },
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (
            any::<u16>(),
            1u8..40,
            any::<u8>(),
            0u16..5000,
            prop_oneof![Just(255u8), any::<u8>()],
            prop_oneof![Just(51u8), any::<u8>()],
            any::<bool>()
        )
            .prop_map(
                |(dt_ms, src, prio, interval_cs, ttl, vrid, v2)| Input::Advert {
                    dt_ms,
                    src,
                    prio,
                    interval_cs,
                    ttl,
                    vrid,
                    v2
                }
            ),
        any::<u16>().prop_map(|dt_ms| Input::Timeout { dt_ms }),
        (any::<u16>(), -500i32..500).prop_map(|(dt_ms, p)| Input::Priority { dt_ms, p }),
        (any::<u16>(), any::<bool>()).prop_map(|(dt_ms, on)| Input::Fault { dt_ms, on }),
        any::<u16>().prop_map(|dt_ms| Input::Shutdown { dt_ms }),
        (any::<u16>(), 1u8..=255, 0u8..3).prop_map(|(dt_ms, prio, vips)| Input::Reload {
            dt_ms,
            prio,
            vips
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any input sequence: no panic; VIPs held iff Master or Resigning; every sent advert is
    /// ours (version, VRID, family); poll_timeout is None exactly when no timer may run.
    #[test]
    fn random_inputs_never_panic_and_keep_the_invariants(
        base in prop_oneof![Just(255u8), 1u8..=254],
        inputs in proptest::collection::vec(input(), 0..120),
    ) {
        let t0 = Instant::now();
        let mut r = Router::new(cfg(base), t0);
        r.startup(t0);
        let mut now = t0;
        let mut holds = false;
        for inp in inputs {
            let dt = match &inp {
                Input::Advert { dt_ms, .. } | Input::Timeout { dt_ms } | Input::Priority { dt_ms, .. }
                | Input::Fault { dt_ms, .. } | Input::Shutdown { dt_ms } | Input::Reload { dt_ms, .. } => *dt_ms,
            };
            now += Duration::from_millis(u64::from(dt));
            let timed_out = matches!(inp, Input::Timeout { .. });
            match inp {
                Input::Advert { src, prio, interval_cs, ttl, vrid, v2, .. } => {
                    let a = Advertisement {
                        version: if v2 { Version::V2 } else { Version::V3 },
                        vrid, priority: prio, interval_cs,
                        addresses: vec![ip("192.0.2.100")], auth: Auth::None,
                    };
                    let src = IpAddr::from([192, 0, 2, src]);
                    r.handle_advert(now, Received { src, ttl, advert: &a, checksum_form: ChecksumForm::Plain });
                }
                Input::Timeout { .. } => {
                    if let Some(t) = r.poll_timeout() { now = now.max(t); }
                    r.handle_timeout(now);
                }
                Input::Priority { p, .. } => r.set_priority(now, p),
                Input::Fault { on, .. } => r.set_fault(now, on),
                Input::Shutdown { .. } => r.shutdown(now),
                Input::Reload { prio, vips, .. } => {
                    let v: Vec<IpAddr> = (0..=vips).map(|i| IpAddr::from([192, 0, 2, 100 + i])).collect();
                    let _ = r.reconfigure(now, RouterConfig { vips: v, ..cfg(prio) });
                }
            }
            while let Some(a) = r.poll_action() {
                match a {
                    Action::AddVips => { prop_assert!(!holds, "AddVips while holding"); holds = true; }
                    Action::RemoveVips => { prop_assert!(holds, "RemoveVips while not holding"); holds = false; }
                    Action::UpdateVips { .. } => prop_assert!(holds),
                    Action::Send(adv) => {
                        prop_assert_eq!(adv.version, Version::V3);
                        prop_assert_eq!(adv.vrid, 51);
                        prop_assert!(adv.addresses.iter().all(|a| a.is_ipv4()));
                    }
                    Action::Announce | Action::Event(_) => {}
                }
            }
            prop_assert_eq!(holds, matches!(r.state(), State::Master | State::Resigning));
            let timer_expected = matches!(r.state(), State::Backup | State::Master | State::Resigning);
            prop_assert_eq!(r.poll_timeout().is_some(), timer_expected);
            if timed_out {
                // after handle_timeout(now) every remaining deadline lies in the future
                prop_assert!(r.poll_timeout().is_none_or(|t| t > now));
            }
            if r.is_stopped() { prop_assert_eq!(r.state(), State::Initialize); }
        }
    }
}
