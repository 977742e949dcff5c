//! VRRP soak and fault scenarios (issue 14, point 2): sustained loss, partition and heal, and 50
//! SIGKILL + restart cycles, each bounded in time, with 100 ms adverts so that every timer is
//! short and the runs are long in protocol terms. Needs root, the vipd binary and tcpdump.
//! Figures from these runs are in docs/soak.md; each test prints a `SOAK` line with its own.
//!
//! Timers at 100 ms adverts (RFC 9568 6.1): Master_Down_Interval = 300 ms + Skew_Time with
//! Skew_Time = (256 - priority) / 256 * 100 ms: 372.7 ms at 70, 384.4 ms at 40.

use std::net::IpAddr;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lab::capture::{self, Capture};
use lab::holders::{HolderSampler, Timeline};
use lab::vipd::{self, Instance, Peering};
use lab::{scenarios, Lab, CLIENT};

const ADVERT: Duration = Duration::from_millis(100);
const PRIORITIES: [u8; 3] = [70, 40, 40];
const VRID: u8 = 14;
/// Master_Down_Interval of a priority-40 Backup at 100 ms adverts.
const MASTER_DOWN_40: Duration = Duration::from_micros(384_375);
const SAMPLE: Duration = Duration::from_millis(100);

fn vip() -> IpAddr {
    "192.0.2.5".parse().unwrap()
}

fn vip6() -> IpAddr {
    "2001:db8::5".parse().unwrap()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Median and maximum of `v` (sorted in place).
fn median_max(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort();
    (
        v.get(v.len() / 2).copied().unwrap_or_default(),
        v.last().copied().unwrap_or_default(),
    )
}

fn master_transitions(lab: &Lab, node: usize) -> u64 {
    scenarios::instance_status(lab.node(node), "api").unwrap()["counters"]["master_transitions"]
        .as_u64()
        .unwrap()
}

fn adverts_tx(lab: &Lab, node: usize) -> u64 {
    scenarios::instance_status(lab.node(node), "api").unwrap()["counters"]["adverts_tx"]
        .as_u64()
        .unwrap()
}

/// 16 % on each switch port, in each direction: a frame between two nodes crosses two ports, so
/// it is lost with 1 - 0.84^2 = 29.4 %, on every path at once (Master to each Backup, Backups
/// to each other and back). A Backup takes over when three adverts in a row are lost to it
/// (2.5 % per advert interval at this loss, if losses were independent), so 50 s of 100 ms
/// adverts give a few to a few dozen takeovers by a Backup while the Master is still there:
/// exactly the dual-Master case.
#[test]
fn thirty_percent_loss_for_50_s_every_dual_master_ends_one_advert_after_the_better_one_is_heard() {
    const LOSS_PER_PORT: u8 = 16;
    const SOAK: Duration = Duration::from_secs(50);
    let t0 = Instant::now();
    let lab = Lab::new(3).unwrap();
    let _vipd = vipd::start_cluster(&lab, &PRIORITIES, vip(), ADVERT, Peering::Multicast).unwrap();
    lab.wait_holder_is(vip(), 0, Duration::from_secs(3))
        .unwrap();
    let captures: Vec<Capture> = (1..3)
        .map(|i| Capture::start(lab.node(i), "vrrp", "vrrp").unwrap())
        .collect();
    let before: Vec<u64> = (0..3).map(|i| master_transitions(&lab, i)).collect();
    let sent_before = adverts_tx(&lab, 0);
    let from_unix = unix_now();

    for i in 0..3 {
        lab.loss(i, LOSS_PER_PORT).unwrap();
    }
    let sampler = HolderSampler::start(&lab, vip(), SAMPLE, SOAK + Duration::from_secs(10));
    thread::sleep(SOAK);
    let timeline = sampler.stop().unwrap();
    for i in 0..3 {
        lab.clear_loss(i).unwrap();
    }
    // Whole again: node 0's next advert settles it.
    lab.wait_holder_is(vip(), 0, MASTER_DOWN_40 * 2).unwrap();
    thread::sleep(ADVERT * 3);
    let captured: Vec<String> = captures.into_iter().map(|c| c.stop().unwrap()).collect();
    let after: Vec<u64> = (0..3).map(|i| master_transitions(&lab, i)).collect();
    let sent = adverts_tx(&lab, 0) - sent_before;
    let to_unix = unix_now();

    // What each Backup heard and did, from its own capture.
    let mut episodes = Vec::new();
    let mut measured_loss = Vec::new();
    for (k, text) in captured.iter().enumerate() {
        let node = k + 1;
        let adverts = capture::parse_adverts(text);
        assert!(
            adverts.len() > 100,
            "node {node}'s capture holds only {} adverts",
            adverts.len()
        );
        let node0: IpAddr = lab.node(0).ipv4().into();
        let heard = adverts
            .iter()
            .filter(|a| a.src == node0 && a.at >= from_unix && a.at <= to_unix)
            .count();
        measured_loss.push(format!(
            "{:.1}%",
            100.0 * (1.0 - heard as f64 / sent as f64)
        ));
        let me = lab.node(node).ipv4().into();
        for e in capture::master_episodes(&adverts, me, VRID, PRIORITIES[node], ADVERT) {
            episodes.push((node, e));
        }
    }
    let takeovers: u64 = (1..3).map(|i| after[i] - before[i]).sum();
    let max_reaction = episodes
        .iter()
        .filter_map(|(_, e)| e.reaction())
        .fold(f64::MIN, f64::max);
    let max_unheard = episodes
        .iter()
        .map(|(_, e)| e.unheard())
        .fold(0.0, f64::max);
    let max_span = episodes
        .iter()
        .map(|(_, e)| e.end - e.start)
        .fold(0.0, f64::max);
    let windows = timeline.multi_holder_windows();
    let max_dual = timeline.max_multi_holder();
    eprintln!(
        "SOAK loss: {:.1}% per path for {SOAK:?} (node 0's adverts lost to nodes 1, 2: {}, of {sent}), {} samples (max gap {:.0} ms); Backup takeovers {takeovers} \
         (counters; {} Master stretches in captures, {} dual-holder windows sampled); sole-holder moves {}; \
         max dual-holder window {:.0} ms (sampled, upper bound); longest a Backup-turned-Master went without \
         hearing node 0: {:.0} ms; max advertising after hearing it: {:.1} ms; empty samples {}; \
         node 0 Master transitions {}; test took {:.1} s",
        100.0 * (1.0 - (1.0 - f64::from(LOSS_PER_PORT) / 100.0).powi(2)),
        measured_loss.join(", "),
        timeline.samples.len(),
        ms(timeline.max_gap()),
        episodes.len(),
        windows.len(),
        timeline.moves(),
        ms(max_dual),
        max_unheard * 1000.0,
        max_reaction.max(0.0) * 1000.0,
        timeline.empty_samples(),
        after[0] - before[0],
        t0.elapsed().as_secs_f64()
    );

    // The scenario did what it is for: Backups took over while the Master was alive.
    assert!(
        takeovers >= 1 && !episodes.is_empty(),
        "no Backup ever took over under loss: the test exercised nothing"
    );
    // The Master never yields (it never hears a better router) and never loses the VIP.
    assert_eq!(after[0], before[0], "node 0 left Master under loss");
    assert!(
        timeline.samples.iter().all(|s| s.holders.contains(&0)),
        "node 0 lost the VIP: {:?}",
        timeline.samples.iter().find(|s| !s.holders.contains(&0))
    );
    // The RFC's guarantee, checked on the wire: a Master that hears a better advert stops
    // advertising at once. Its own advert timer may already be due when the better advert
    // comes in, so one more advert within one interval is the most it may send.
    for (node, e) in &episodes {
        let reaction = e.reaction().unwrap_or_else(|| {
            panic!("node {node} stopped advertising as Master at {e:?} without hearing node 0")
        });
        assert!(
            reaction <= ADVERT.as_secs_f64(),
            "node {node} went on advertising {:.0} ms after hearing node 0: {e:?}",
            reaction * 1000.0
        );
    }
    // And the VIP follows the state: two holders only while a Backup-turned-Master had not yet
    // heard node 0 (its stretch in the capture, plus the advert it may send after), within the
    // sampling resolution on either side.
    let bound = Duration::from_secs_f64(max_span) + ADVERT + 2 * timeline.max_gap() + SAMPLE / 2;
    assert!(
        max_dual <= bound,
        "two holders for {max_dual:?}, longer than the longest Master stretch in the captures allows ({bound:?}); windows {windows:?}"
    );
    assert!(
        timeline.samples.iter().all(|s| s.holders.len() <= 3),
        "more holders than nodes?"
    );
}

/// Node 0 (70) keeps the VIP on its side; the client's side elects one of the 40s. On heal the
/// 40 hears the 70 within one advert interval and steps down, and node 0, hearing a
/// lower-priority Master, announces the VIP again so the client's ARP / ND entry comes back to
/// it. Three cycles, IPv4 and IPv6 instances side by side.
#[test]
fn partition_and_heal_three_times_one_master_within_an_advert_and_a_garp_and_na_from_it() {
    const CYCLES: usize = 3;
    let t0 = Instant::now();
    let mut lab = Lab::new(3).unwrap();
    let _vipd: Vec<_> = (0..3)
        .map(|i| {
            let v4 =
                vipd::cluster_instance(&lab, i, &PRIORITIES, vip(), ADVERT, Peering::Multicast);
            let mut v6 = Instance::new(vip6(), PRIORITIES[i], ADVERT);
            v6.name = "api6".into();
            v6.vrid = Some(15);
            vipd::start(lab.node(i), &[v4, v6]).unwrap()
        })
        .collect();
    lab.wait_holder_is(vip(), 0, Duration::from_secs(3))
        .unwrap();
    lab.wait_holder_is(vip6(), 0, Duration::from_secs(3))
        .unwrap();
    let mac0 = lab.node_mac(0).unwrap();
    let client_cap = Capture::start(lab.client(), "announce", "arp or icmp6").unwrap();
    let node_caps: Vec<Capture> = (1..3)
        .map(|i| Capture::start(lab.node(i), "vrrp", "vrrp").unwrap())
        .collect();

    let mut single_after = Vec::new();
    let mut cut_times = Vec::new();
    for cycle in 0..CYCLES {
        cut_times.push(unix_now());
        lab.partition(&[&[0], &[1, 2, CLIENT]]).unwrap();
        let other = lab
            .wait_single_holder_among(vip(), &[1, 2], Duration::from_secs(2))
            .unwrap();
        lab.wait_single_holder_among(vip6(), &[1, 2], Duration::from_secs(2))
            .unwrap();
        lab.wait_client_neigh_is(vip(), other, Duration::from_secs(2))
            .unwrap();
        thread::sleep(Duration::from_millis(500));

        let heal_unix = unix_now();
        let start = Instant::now();
        lab.heal().unwrap();
        let healed = start.elapsed();
        // Polled as fast as `ip` allows (one `ip -j addr` per node, both families at once).
        let mut seen = None;
        while start.elapsed() < Duration::from_secs(3) {
            let mut holders4 = Vec::new();
            let mut holders6 = Vec::new();
            for i in 0..3 {
                let addrs = lab.addresses(i).unwrap();
                if addrs.iter().any(|a| a.addr == vip()) {
                    holders4.push(i);
                }
                if addrs.iter().any(|a| a.addr == vip6()) {
                    holders6.push(i);
                }
            }
            if holders4 == [0] && holders6 == [0] {
                seen = Some(start.elapsed());
                break;
            }
        }
        let seen = seen
            .unwrap_or_else(|| panic!("cycle {cycle}: not back to node 0 alone 3 s after heal"));
        lab.wait_client_neigh_is(vip(), 0, Duration::from_secs(1))
            .unwrap();
        single_after.push((heal_unix, seen, healed));
        // Settle before the next cut: node 0 alone for a few adverts.
        lab.assert_holder_stays(vip(), 0, Duration::from_millis(300))
            .unwrap();
    }
    let announced = capture::parse_announcements(&client_cap.stop().unwrap());
    let node_adverts: Vec<_> = node_caps
        .into_iter()
        .map(|c| capture::parse_adverts(&c.stop().unwrap()))
        .collect();

    let mut report = Vec::new();
    for (cycle, &(heal_unix, seen, healed)) in single_after.iter().enumerate() {
        // What happened between this heal and the next cut.
        let next = cut_times.get(cycle + 1).copied().unwrap_or(f64::MAX);
        let first = |addr: IpAddr| {
            announced
                .iter()
                .find(|a| a.addr == addr && a.mac == mac0 && a.at >= heal_unix && a.at < next)
                .map(|a| a.at - heal_unix)
        };
        let garp = first(vip()).unwrap_or_else(|| {
            panic!(
                "cycle {cycle}: no gratuitous ARP for {} from node 0 after heal",
                vip()
            )
        });
        let na = first(vip6()).unwrap_or_else(|| {
            panic!(
                "cycle {cycle}: no unsolicited NA for {} from node 0 after heal",
                vip6()
            )
        });
        // On the wire, at the node that stepped down: the first advert of node 0 it heard after
        // heal, and its own last advert.
        let mut reaction = f64::MIN;
        for (k, adverts) in node_adverts.iter().enumerate() {
            let node = k + 1;
            let me: IpAddr = lab.node(node).ipv4().into();
            let heard = adverts
                .iter()
                .find(|a| a.vrid == VRID && a.prio == 70 && a.at >= heal_unix && a.at < next)
                .map(|a| a.at);
            let last_own = adverts
                .iter()
                .filter(|a| a.vrid == VRID && a.src == me && a.at >= heal_unix && a.at < next)
                .map(|a| a.at)
                .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
            if let (Some(h), Some(l)) = (heard, last_own) {
                reaction = reaction.max(l - h);
            }
        }
        report.push(format!(
            "cycle {cycle}: heal took {:.0} ms, one holder (both families) {:.0} ms after heal started, \
             GARP {:.0} ms, NA {:.0} ms, stepping-down node advertised {:.1} ms after hearing node 0",
            ms(healed),
            ms(seen),
            garp * 1000.0,
            na * 1000.0,
            reaction.max(0.0) * 1000.0
        ));
        // One advert interval for node 0's next advert to arrive, plus the heal itself (`ip`
        // moving the ports back) and polling slack on a shared 2-core machine.
        assert!(
            seen <= healed + ADVERT + Duration::from_millis(150),
            "cycle {cycle}: two holders {seen:?} after heal (heal itself took {healed:?})"
        );
        assert!(
            reaction <= ADVERT.as_secs_f64(),
            "cycle {cycle}: the 40 advertised {:.0} ms after hearing node 0",
            reaction * 1000.0
        );
        // The announcement follows the first advert exchanged after heal.
        assert!(
            garp <= 1.0 && na <= 1.0,
            "cycle {cycle}: GARP {garp} s, NA {na} s"
        );
    }
    eprintln!(
        "SOAK partition: {}; test took {:.1} s",
        report.join("; "),
        t0.elapsed().as_secs_f64()
    );
}

/// 50 times: SIGKILL node 0's vipd (the Master), see a Backup take over while the dead daemon's
/// VIP is still on node 0 (nothing can remove it), restart node 0, see the stale VIP removed at
/// start and node 0 preempt back. A background sampler checks, over the whole run, that the VIP
/// is never on zero or three nodes and on two only while node 0 is dead or for one advert
/// interval at the preempt hand-over.
#[test]
fn fifty_sigkill_restart_cycles_of_the_master_the_backup_takes_over_and_no_vip_is_left_stale() {
    const CYCLES: usize = 50;
    let t0 = Instant::now();
    let lab = Lab::new(3).unwrap();
    let mut procs =
        vipd::start_cluster(&lab, &PRIORITIES, vip(), ADVERT, Peering::Multicast).unwrap();
    lab.wait_holder_is(vip(), 0, Duration::from_secs(3))
        .unwrap();
    let inst0 = vipd::cluster_instance(&lab, 0, &PRIORITIES, vip(), ADVERT, Peering::Multicast);
    let sampler = HolderSampler::start(&lab, vip(), SAMPLE, Duration::from_secs(150));

    // Per cycle: sampler time of the kill and of the moment the stale VIP was gone.
    let mut dead: Vec<(Duration, Duration)> = Vec::new();
    let mut takeover = Vec::new();
    let mut stale_gone = Vec::new();
    let mut preempt = Vec::new();
    let mut winners = [0usize; 3];
    for cycle in 0..CYCLES {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "cycle {cycle}: out of time"
        );
        let killed_at = sampler.now();
        let start = Instant::now();
        procs[0].kill();
        // The dead daemon's VIP stays on node 0; a Backup adds it after Master_Down_Interval.
        let backup = lab::wait_until(Duration::from_secs(2), || {
            let h = lab.who_has(vip())?;
            Ok((h.len() == 2 && h[0] == 0).then(|| h[1]))
        })
        .unwrap()
        .unwrap_or_else(|| {
            panic!(
                "cycle {cycle}: no Backup took over within 2 s; holders {:?}",
                lab.who_has(vip())
            )
        });
        takeover.push(start.elapsed());
        winners[backup] += 1;

        let restart = Instant::now();
        procs[0] = vipd::start(lab.node(0), std::slice::from_ref(&inst0)).unwrap();
        // The stale VIP goes before node 0 joins the election.
        lab.wait_holder_is(vip(), backup, Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("cycle {cycle}: stale VIP on node 0 after restart: {e}"));
        stale_gone.push(restart.elapsed());
        dead.push((killed_at, sampler.now()));
        // Node 0 preempts after its Master_Down_Interval (372.7 ms) and the 40 yields.
        lab.wait_holder_is(vip(), 0, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("cycle {cycle}: node 0 did not preempt back: {e}"));
        preempt.push(restart.elapsed());
    }
    let timeline: Timeline = sampler.stop().unwrap();

    // Over the whole run: never nobody, never three, two only while node 0 was dead (its stale
    // VIP beside the Backup's) or briefly at the preempt hand-over.
    let empty: Vec<_> = timeline
        .windows(|s| s.holders.is_empty())
        .into_iter()
        .map(|w| {
            let around = &timeline.samples
                [w.first.saturating_sub(2)..(w.last + 3).min(timeline.samples.len())];
            let cycle = dead.iter().rposition(|&(k, _)| k <= w.start);
            format!(
                "{w:?} in cycle {cycle:?} (killed, stale gone) = {:?}: {around:?}",
                cycle.map(|c| dead[c])
            )
        })
        .collect();
    assert!(empty.is_empty(), "the VIP was on no node: {empty:#?}");
    let in_dead = |at: Duration| dead.iter().any(|&(k, r)| at >= k && at <= r + SAMPLE);
    let handover_limit = ADVERT + 2 * timeline.max_gap() + SAMPLE / 2;
    // Three holders: the dead node's stale VIP plus both Backups. Nodes 1 and 2 share priority
    // 40 (as OpenShift's masters do), so their Master_Down timers, started by the same last
    // advert, can expire together; RFC 9568 section 6.4.3 settles the tie on the next advert
    // (higher primary address wins). Allowed only while node 0 is dead, for one advert.
    let three_windows = timeline.windows(|s| s.holders.len() >= 3);
    let mut max_three = Duration::ZERO;
    for w in &three_windows {
        let samples = &timeline.samples[w.first..=w.last];
        let span = w.len;
        max_three = max_three.max(span);
        assert!(
            samples
                .iter()
                .all(|s| in_dead(s.at) && s.holders.len() == 3),
            "three holders outside a dead window, or more than three: {samples:?}"
        );
        assert!(
            span <= handover_limit,
            "both Backups held the VIP for up to {span:?} (limit {handover_limit:?}): {samples:?}"
        );
    }
    let mut max_handover = Duration::ZERO;
    for w in timeline.multi_holder_windows() {
        let samples = &timeline.samples[w.first..=w.last];
        if samples.iter().all(|s| in_dead(s.at)) {
            continue;
        }
        let outside: Vec<_> = samples.iter().filter(|s| !in_dead(s.at)).collect();
        let span = outside.last().unwrap().at - outside[0].at + timeline.max_gap();
        max_handover = max_handover.max(span);
        assert!(
            span <= handover_limit,
            "two holders for up to {span:?} while node 0 was running: {w:?}"
        );
    }
    let (takeover_p50, takeover_max) = median_max(&mut takeover);
    let (stale_p50, stale_max) = median_max(&mut stale_gone);
    let (preempt_p50, preempt_max) = median_max(&mut preempt);
    eprintln!(
        "SOAK sigkill: {CYCLES} cycles, Backup took over each time (node 1: {}, node 2: {}); takeover after \
         SIGKILL median {:.0} ms, max {:.0} ms; stale VIP gone after restart median {:.0} ms, max {:.0} ms; \
         node 0 Master again after restart median {:.0} ms, max {:.0} ms; two holders outside the dead \
         windows at most {:.0} ms (preempt hand-over); both Backups Master together in {} cycles, \
         at most {:.0} ms; {} samples, none empty; test took {:.1} s",
        winners[1],
        winners[2],
        ms(takeover_p50),
        ms(takeover_max),
        ms(stale_p50),
        ms(stale_max),
        ms(preempt_p50),
        ms(preempt_max),
        ms(max_handover),
        three_windows.len(),
        ms(max_three),
        timeline.samples.len(),
        t0.elapsed().as_secs_f64()
    );
    // Master_Down_Interval (384 ms) after the last advert, which left up to 100 ms before the
    // kill; the rest is polling and a busy machine.
    assert!(
        takeover_max <= MASTER_DOWN_40 + Duration::from_millis(600),
        "a takeover took {takeover_max:?}"
    );
}
