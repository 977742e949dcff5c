//! Scenario tests on the deterministic LAN simulator. Every advert goes through the codec
//! (emit then parse) on its way. Times are exact: the oracle is reference/vrrp.md's table
//! (Skew_Time = (256 - P) * MAI / 256, Master_Down_Interval = 3 * MAI + Skew_Time).
//!
//! Node `i` has primary address 192.0.2.(11 + i); the VIP is 192.0.2.100. No delay unless set.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use vipd_vrrp::router::REASSERT_FOLLOW_UP;
use vipd_vrrp::sim::{Lan, TraceEvent};
use vipd_vrrp::timers::{master_down_interval, skew_time};
use vipd_vrrp::{Auth, ChecksumForm, RouterConfig, SourceFilter, State, TtlPolicy, Version};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

fn node(i: u8, priority: u8, interval: Duration) -> RouterConfig {
    RouterConfig {
        version: Version::V3,
        vrid: 51,
        priority,
        advert_interval: interval,
        primary_address: IpAddr::from([192, 0, 2, 11 + i]),
        vips: vec![IpAddr::from([192, 0, 2, 100])],
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

fn lan(priorities: &[u8], interval: Duration) -> Lan {
    let configs = priorities
        .iter()
        .enumerate()
        .map(|(i, p)| node(i as u8, *p, interval))
        .collect();
    Lan::new(configs, 1)
}

fn mdi(priority: u8, interval: Duration) -> Duration {
    master_down_interval(Version::V3, priority, interval)
}

/// Time at which `n` last became Master (panics if it never did: a test failure).
fn became_master(lan: &Lan, n: usize) -> Instant {
    lan.transitions(n)
        .iter()
        .rev()
        .find(|t| t.2 == State::Master)
        .map(|t| t.0)
        .expect("node never became Master")
}

/// Starts `lan`, runs until node 0 is Master, then on until just after its `k`-th periodic
/// advert; returns that advert's time (an instant at which every Backup has just reset).
fn elect_node0_and_run_to_advert(lan: &mut Lan, interval: Duration, k: u32) -> Instant {
    lan.start_all();
    for _ in 0..1000 {
        if !lan.masters().is_empty() {
            break;
        }
        lan.run_for(10 * MS);
    }
    assert_eq!(lan.masters(), vec![0]);
    let mut t = became_master(lan, 0) + interval * k;
    while t < lan.now() {
        t += interval;
    }
    lan.run_until(t);
    t
}

#[test]
fn initial_election_70_40_40_node0_wins_at_its_master_down_interval() {
    let mut lan = lan(&[70, 40, 40], SEC);
    let t0 = lan.now();
    lan.start_all();
    lan.run_until(t0 + Duration::from_secs(60));
    // 3 s + 186/256 s
    let expected = t0 + Duration::from_micros(3_726_562) + Duration::from_nanos(500);
    assert_eq!(mdi(70, SEC), expected - t0);
    assert_eq!(
        lan.masters_at(expected - Duration::from_nanos(1)),
        Vec::<usize>::new()
    );
    assert_eq!(lan.masters_at(expected), vec![0]);
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(lan.vip_holders(), vec![0]);
    assert_eq!(lan.router(1).state(), State::Backup);
    assert_eq!(lan.router(2).state(), State::Backup);
    assert_eq!(
        lan.dual_master_moments(t0, lan.now()),
        Vec::<Instant>::new()
    );
    assert!(!lan
        .trace()
        .iter()
        .any(|e| matches!(e.what, TraceEvent::CodecError(_))));
}

fn crash_takeover(interval: Duration) {
    let mut lan = lan(&[200, 100, 40], interval);
    let crash = elect_node0_and_run_to_advert(&mut lan, interval, 10);
    assert_eq!(lan.deliveries(1, 0).last(), Some(&crash));
    lan.crash(0);
    lan.run_until(crash + Duration::from_secs(30));
    let takeover = became_master(&lan, 1);
    assert_eq!(takeover - crash, mdi(100, interval));
    assert_eq!(lan.masters(), vec![1]);
    assert_eq!(lan.vip_holders(), vec![1]);
    assert_eq!(lan.router(2).state(), State::Backup);
}

#[test]
fn master_crash_best_backup_takes_over_at_crash_plus_3_609_s_with_1_s_interval() {
    assert_eq!(mdi(100, SEC), Duration::from_micros(3_609_375));
    crash_takeover(SEC);
}

#[test]
fn master_crash_best_backup_takes_over_at_crash_plus_360_9_ms_with_100_ms_interval() {
    assert_eq!(mdi(100, 100 * MS), Duration::from_nanos(360_937_500));
    crash_takeover(100 * MS);
}

#[test]
fn resign_backup_takes_over_after_skew_time_with_no_moment_without_a_vip_holder() {
    let mut lan = lan(&[70, 50, 40], SEC);
    let t = elect_node0_and_run_to_advert(&mut lan, SEC, 5);
    lan.shutdown(0);
    assert_eq!(lan.router(0).state(), State::Resigning);
    lan.run_until(t + Duration::from_secs(20));
    // Skew_Time at P=50, 1 s: 206/256 s
    let takeover = became_master(&lan, 1);
    assert_eq!(takeover - t, skew_time(Version::V3, 50, SEC));
    assert_eq!(takeover - t, Duration::from_nanos(804_687_500));
    // the resigning node let go of the VIPs on hearing node 1's first advert, same instant
    assert_eq!(
        lan.transitions(0).last().map(|x| (x.0, x.2)),
        Some((takeover, State::Initialize))
    );
    assert!(lan.router(0).is_stopped());
    assert_eq!(lan.vip_gaps(t, lan.now()), Vec::<Instant>::new());
    assert_eq!(lan.masters(), vec![1]);
}

#[test]
fn resign_at_100_ms_backup_40_takes_over_after_84_4_ms() {
    let mut lan = lan(&[70, 40], 100 * MS);
    let t = elect_node0_and_run_to_advert(&mut lan, 100 * MS, 5);
    lan.shutdown(0);
    lan.run_until(t + Duration::from_secs(5));
    assert_eq!(became_master(&lan, 1) - t, Duration::from_micros(84_375));
    assert_eq!(lan.vip_gaps(t, lan.now()), Vec::<Instant>::new());
}

#[test]
fn equal_priorities_higher_primary_address_wins() {
    let mut lan = lan(&[100, 100, 100], SEC);
    // With a 1 ms delay all three time out together, become Master, and the tie-break decides.
    lan.set_delay(MS);
    let t0 = lan.now();
    lan.start_all();
    lan.run_until(t0 + Duration::from_secs(30));
    let t = t0 + mdi(100, SEC);
    assert_eq!(lan.masters_at(t), vec![0, 1, 2]);
    assert_eq!(lan.masters_at(t + MS), vec![2]);
    assert_eq!(lan.masters(), vec![2]);
    assert_eq!(lan.vip_holders(), vec![2]);
}

/// Partitions node 0 (priority 70) from nodes 1 and 2, lets node 1 take over on its side, then
/// heals at the first 10 ms step where `winner_speaks_first` matches who sends next.
fn partition_then_heal(winner_speaks_first: bool) -> (Lan, Instant) {
    let mut lan = lan(&[70, 40, 30], SEC);
    let p = elect_node0_and_run_to_advert(&mut lan, SEC, 3);
    lan.partition(&[&[0], &[1, 2]]);
    lan.run_until(p + Duration::from_secs(10));
    assert_eq!(became_master(&lan, 1) - p, mdi(40, SEC));
    assert_eq!(lan.masters(), vec![0, 1], "split brain while partitioned");
    for _ in 0..200 {
        let (w, l) = (lan.router(0).poll_timeout(), lan.router(1).poll_timeout());
        if (w < l) == winner_speaks_first {
            break;
        }
        lan.run_for(10 * MS);
    }
    let heal = lan.now();
    lan.heal();
    lan.run_until(heal + Duration::from_secs(30));
    (lan, heal)
}

fn assert_healed(lan: &Lan, heal: Instant) {
    assert_eq!(
        lan.masters_at(heal + SEC),
        vec![0],
        "one Master within one advert interval"
    );
    assert_eq!(
        lan.dual_master_moments(heal + SEC, lan.now()),
        Vec::<Instant>::new()
    );
    assert_eq!(lan.vip_holders(), vec![0]);
    let announced: Vec<Instant> = lan
        .announces(0)
        .into_iter()
        .filter(|t| *t > heal && *t <= heal + SEC)
        .collect();
    // The re-assertion, one more per extra claim of the loser (its yield notice), within the
    // per-peer budget, and the follow-up REASSERT_FOLLOW_UP after the first.
    let budget = usize::from(vipd_vrrp::reassert::PER_WINDOW);
    assert!(
        (2..=budget + 1).contains(&announced.len()),
        "the winner re-announced {announced:?} after the heal"
    );
    assert!(
        announced.contains(&(announced[0] + REASSERT_FOLLOW_UP)),
        "{announced:?}"
    );
    // The winner has the last word in the clients' ARP caches.
    let loser_last = lan.announces(1).into_iter().filter(|t| *t > heal).max();
    assert!(
        loser_last.is_none_or(|l| announced.last().is_some_and(|w| *w > l)),
        "winner {announced:?}, loser last {loser_last:?}"
    );
}

#[test]
fn partition_heal_when_loser_advertises_first_winner_reasserts_and_announces() {
    let (lan, heal) = partition_then_heal(false);
    assert_healed(&lan, heal);
}

#[test]
fn partition_heal_when_winner_advertises_first_loser_yield_notice_makes_winner_announce() {
    let (lan, heal) = partition_then_heal(true);
    assert_healed(&lan, heal);
}

#[test]
fn returning_higher_priority_router_preempts_after_its_master_down_interval() {
    let mut lan = lan(&[70, 40], SEC);
    let c = elect_node0_and_run_to_advert(&mut lan, SEC, 2);
    lan.crash(0);
    lan.run_until(c + Duration::from_secs(10));
    assert_eq!(lan.masters(), vec![1]);
    let r = lan.now();
    lan.restart(0);
    lan.run_until(r + Duration::from_secs(10));
    // node 0 discards node 1's lower-priority adverts and its own timer runs out
    assert_eq!(became_master(&lan, 0) - r, mdi(70, SEC));
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(lan.vip_gaps(r, lan.now()), Vec::<Instant>::new());
}

#[test]
fn nopreempt_returning_router_leaves_the_current_master_alone() {
    let configs = vec![
        RouterConfig {
            preempt: false,
            ..node(0, 70, SEC)
        },
        node(1, 40, SEC),
    ];
    let mut lan = Lan::new(configs, 1);
    let c = elect_node0_and_run_to_advert(&mut lan, SEC, 2);
    lan.crash(0);
    lan.run_until(c + Duration::from_secs(10));
    let r = lan.now();
    lan.restart(0);
    lan.run_until(r + Duration::from_secs(120));
    assert_eq!(lan.masters(), vec![1]);
    assert_eq!(lan.router(0).state(), State::Backup);
}

#[test]
fn backup_adopts_master_interval_and_takes_over_after_3x100ms_plus_skew_not_3_s() {
    let configs = vec![node(0, 100, 100 * MS), node(1, 40, SEC)];
    let mut lan = Lan::new(configs, 1);
    let c = elect_node0_and_run_to_advert(&mut lan, 100 * MS, 20);
    assert_eq!(lan.router(1).master_adver_interval(), 100 * MS);
    lan.crash(0);
    lan.run_until(c + Duration::from_secs(10));
    assert_eq!(became_master(&lan, 1) - c, Duration::from_micros(384_375));
}

#[test]
fn owner_priority_255_is_master_at_startup_and_takes_back_at_once_after_restart() {
    let mut lan = lan(&[255, 100], SEC);
    let t0 = lan.now();
    lan.start_all();
    assert_eq!(lan.masters_at(t0), vec![0]);
    lan.run_until(t0 + Duration::from_secs(10));
    assert_eq!(lan.router(1).state(), State::Backup);
    lan.crash(0);
    lan.run_until(t0 + Duration::from_secs(20));
    assert_eq!(lan.masters(), vec![1]);
    let r = lan.now();
    lan.restart(0);
    lan.run_until(r);
    assert_eq!(lan.masters_at(r), vec![0]);
    assert_eq!(lan.dual_master_time(r, r + SEC), Duration::ZERO);
}

#[test]
fn priority_zero_from_a_faulted_master_lets_the_backup_take_over_after_skew_time() {
    let mut lan = lan(&[70, 40], SEC);
    let f = elect_node0_and_run_to_advert(&mut lan, SEC, 4);
    lan.set_fault(0, true);
    assert_eq!(lan.router(0).state(), State::Fault);
    assert_eq!(
        lan.vip_holders(),
        Vec::<usize>::new(),
        "a faulted node lets go at once"
    );
    lan.run_until(f + Duration::from_secs(10));
    assert_eq!(became_master(&lan, 1) - f, Duration::from_micros(843_750));
    // fault cleared: node 0 is Backup again and preempts after its own MDI
    let c = lan.now();
    lan.set_fault(0, false);
    lan.run_until(c + Duration::from_secs(10));
    assert_eq!(became_master(&lan, 0) - c, mdi(70, SEC));
    assert_eq!(lan.masters(), vec![0]);
}

#[test]
fn tracked_priority_drop_on_master_hands_over_to_the_now_better_backup() {
    let mut lan = lan(&[70, 40], SEC);
    let t = elect_node0_and_run_to_advert(&mut lan, SEC, 4);
    lan.set_priority(0, 30);
    lan.run_until(t + Duration::from_secs(10));
    // node 1 discards node 0's priority-30 adverts (the first goes out at once); its timer,
    // last reset by the priority-70 advert at `t`, runs out
    assert_eq!(lan.sent(0).last().map(|(_, a)| a.priority), Some(30));
    assert_eq!(became_master(&lan, 1) - t, mdi(40, SEC));
    assert_eq!(lan.masters(), vec![1]);
}

#[test]
fn v2_auth_mismatch_adverts_are_dropped_so_both_routers_become_master() {
    let v2 = |i: u8, p: u8, pass: &[u8; 8]| RouterConfig {
        version: Version::V2,
        auth: Auth::Pass(*pass),
        ..node(i, p, SEC)
    };
    let mut lan = Lan::new(vec![v2(0, 70, b"ostest_a"), v2(1, 40, b"other_cl")], 1);
    let t0 = lan.now();
    lan.start_all();
    lan.run_until(t0 + Duration::from_secs(20));
    assert_eq!(lan.masters(), vec![0, 1]);
    assert!(lan.router(1).counters().drop_auth > 10);
    assert_eq!(
        lan.router(1).counters().drop_auth,
        lan.router(1).counters().adverts_rx
    );
}

#[test]
fn v2_matching_auth_elects_one_master() {
    let v2 = |i: u8, p: u8| RouterConfig {
        version: Version::V2,
        auth: Auth::Pass(*b"ostest_a"),
        ..node(i, p, SEC)
    };
    let mut lan = Lan::new(vec![v2(0, 70), v2(1, 40)], 1);
    let t0 = lan.now();
    lan.start_all();
    lan.run_until(t0 + Duration::from_secs(20));
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(lan.router(1).counters().drop_auth, 0);
}

#[test]
fn ipv6_instance_elects_by_priority_and_sends_only_ipv6_adverts() {
    let v6 = |i: u16, p: u8| RouterConfig {
        primary_address: IpAddr::from([0xfe80, 0, 0, 0, 0, 0, 0, 0x11 + i]),
        vips: vec!["2001:db8::100".parse().unwrap()],
        send_checksum: ChecksumForm::PseudoHeader,
        ..node(0, p, 100 * MS)
    };
    let mut lan = Lan::new(vec![v6(0, 40), v6(1, 70)], 1);
    let t0 = lan.now();
    lan.start_all();
    lan.run_until(t0 + Duration::from_secs(5));
    assert_eq!(lan.masters(), vec![1]);
    assert!(lan
        .sent(1)
        .iter()
        .all(|(_, a)| a.addresses.iter().all(|x| x.is_ipv6())));
    assert!(lan.router(0).counters().checksum_pseudo_header_rx > 0);
}

/// Over 256 seeds with loss drawn in 0..=30%, for 120 s of virtual time:
/// - a Backup only ever becomes Master when it heard nothing from a router of at least its own
///   priority for its whole Master_Down_Interval (so two Masters at once happen only after a
///   loss burst of three adverts in a row, the RFC's definition of "Master down");
/// - once the loss stops, node 0 (highest priority) is the only Master within one interval
///   plus one MDI, and stays so.
#[test]
fn random_loss_up_to_30_percent_two_masters_only_after_a_master_down_interval_of_silence() {
    let prios = [100u8, 60, 30];
    let mut dual_total = Duration::ZERO;
    let mut seeds_with_dual = 0;
    for seed in 0..256u64 {
        let configs = prios
            .iter()
            .enumerate()
            .map(|(i, p)| node(i as u8, *p, SEC))
            .collect();
        let mut lan = Lan::new(configs, seed);
        let loss = (seed % 31) as f64 / 100.0;
        lan.set_loss(loss);
        let t0 = lan.now();
        lan.start_all();
        let end_loss = t0 + Duration::from_secs(120);
        lan.run_until(end_loss);
        for (n, &prio) in prios.iter().enumerate().skip(1) {
            for (t, from, to, _) in lan.transitions(n) {
                if from != State::Backup || to != State::Master {
                    continue;
                }
                let window_start = t - mdi(prio, SEC);
                let heard = lan.trace().iter().any(|e| {
                    e.node == n
                        && e.at > window_start
                        && e.at < t
                        && matches!(e.what, TraceEvent::Delivered { priority, .. } if priority >= prio)
                });
                assert!(
                    !heard,
                    "seed {seed}: node {n} took over at {:?} despite adverts",
                    t - t0
                );
            }
        }
        let dual = lan.dual_master_time(t0, end_loss);
        if dual > Duration::ZERO {
            seeds_with_dual += 1;
        }
        dual_total += dual;
        lan.set_loss(0.0);
        lan.run_until(end_loss + Duration::from_secs(60));
        let settled = end_loss + SEC + mdi(prios[2], SEC);
        assert_eq!(lan.masters_at(settled), vec![0], "seed {seed} loss {loss}");
        assert_eq!(
            lan.dual_master_moments(settled, lan.now()),
            Vec::<Instant>::new()
        );
        assert_eq!(lan.masters(), vec![0]);
    }
    println!(
        "random loss: {seeds_with_dual}/256 seeds had two Masters at some time; \
         total dual-Master time {dual_total:?} over 256 x 120 s"
    );
}

#[test]
fn two_clusters_on_one_vrid_each_elect_their_own_master_and_hold_their_own_vip() {
    // RFC 9568 section 7.1: an advert whose address list differs, not from the owner, is
    // dropped. Cluster A (nodes 0, 1; VIP .100) and cluster B (node 2; VIP .101, the highest
    // priority) share VRID 51 on one segment.
    let b = RouterConfig {
        vips: vec![IpAddr::from([192, 0, 2, 101])],
        ..node(2, 70, SEC)
    };
    let mut lan = Lan::new(vec![node(0, 40, SEC), node(1, 30, SEC), b], 7);
    let t0 = lan.now();
    lan.start_all();
    lan.run_until(t0 + Duration::from_secs(30));
    assert_eq!(lan.masters(), vec![0, 2]);
    // Node 0 became Master on its own timer, unaffected by node 2's priority-70 adverts.
    assert_eq!(became_master(&lan, 0) - t0, mdi(40, SEC));
    assert!(lan.router(0).counters().drop_address_list >= 25);
    // Every advert node 1 heard from node 2 was dropped, none from node 0.
    assert_eq!(
        lan.router(1).counters().drop_address_list,
        lan.deliveries(1, 2).len() as u64
    );
    // Each cluster's Backup follows its own Master only.
    assert_eq!(
        lan.router(1).master().map(|m| m.address),
        Some(IpAddr::from([192, 0, 2, 11]))
    );
    // Node 0 crashes: its own Backup (node 1) takes over; node 2 stays Master of cluster B.
    let t = lan.now();
    lan.crash(0);
    lan.run_until(t + Duration::from_secs(10));
    assert_eq!(lan.masters(), vec![1, 2]);
}

#[test]
fn forged_owner_adverts_from_a_non_peer_do_not_move_the_vip_when_sources_are_checked() {
    // Node 2 plays the attacker: a host that is nobody's peer and advertises priority 255 for
    // the cluster's VIP. Nodes 0 and 1 check sources against their peer lists.
    let only = |peer: u8| SourceFilter::Only(vec![IpAddr::from([192, 0, 2, 11 + peer])]);
    let n0 = RouterConfig {
        sources: only(1),
        ..node(0, 100, SEC)
    };
    let n1 = RouterConfig {
        sources: only(0),
        ..node(1, 50, SEC)
    };
    let mut lan = Lan::new(vec![n0, n1, node(2, 255, SEC)], 3);
    let t0 = lan.now();
    lan.startup(0);
    lan.startup(1);
    lan.run_until(t0 + Duration::from_secs(10));
    assert_eq!(lan.masters(), vec![0]);
    let t = lan.now();
    lan.startup(2);
    lan.run_until(t + Duration::from_secs(20));
    // The attacker holds the address on its own box (nothing stops that), but the cluster's
    // Master stays Master and its Backup stays Backup.
    assert_eq!(lan.masters(), vec![0, 2]);
    assert_eq!(lan.router(1).state(), State::Backup);
    assert!(lan.router(0).counters().drop_source >= 20);
    assert_eq!(
        lan.transitions(0).len(),
        2,
        "Initialize->Backup->Master only"
    );
}
