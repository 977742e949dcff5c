//! The session state machine, one behaviour each, named after the RFC 5880 / 5881 section it
//! checks. Two sessions run on one virtual clock over a tiny in-test link (every packet is
//! emitted and re-parsed, delivered with zero delay unless the link is cut), so deadlines are
//! asserted exactly. Jitter is fixed at 0 (the full interval) unless a test is about jitter.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use vipd_bfd::session::SLOW_TX_INTERVAL;
use vipd_bfd::timers::jittered;
use vipd_bfd::{
    drop_reason, Datagram, Diagnostic, Event, FixedJitter, Received, Repr, Session, SessionConfig,
    State, Timer,
};

const MS: Duration = Duration::from_millis(1);
const A_DISCR: u32 = 0x0A0A_0A0A;
const B_DISCR: u32 = 0x0B0B_0B0B;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cfg(local: &str, peer: &str, discr: u32) -> SessionConfig {
    SessionConfig {
        local_address: ip(local),
        peer_address: ip(peer),
        local_discriminator: discr,
        desired_min_tx: 300 * MS,
        required_min_rx: 300 * MS,
        detect_mult: 3,
        passive: false,
    }
}

type S = Session<FixedJitter>;

/// Two sessions, A (192.0.2.1) and B (192.0.2.2), joined by a zero-delay link.
struct Link {
    a: S,
    b: S,
    now: Instant,
    cut: bool,
    /// Every packet that crossed, as (from A?, packet), for assertions.
    log: Vec<(bool, Repr)>,
}

impl Link {
    fn new(a: SessionConfig, b: SessionConfig, t0: Instant) -> Link {
        Link {
            a: Session::new(a, FixedJitter(0), t0),
            b: Session::new(b, FixedJitter(0), t0),
            now: t0,
            cut: false,
            log: Vec::new(),
        }
    }

    fn pair(t0: Instant) -> Link {
        Link::new(
            cfg("192.0.2.1", "192.0.2.2", A_DISCR),
            cfg("192.0.2.2", "192.0.2.1", B_DISCR),
            t0,
        )
    }

    /// Delivers everything queued, both ways, until both sides are quiet.
    fn deliver(&mut self) {
        loop {
            let mut moved = false;
            while let Some(p) = self.a.poll_transmit() {
                moved = true;
                self.carry(true, p);
            }
            while let Some(p) = self.b.poll_transmit() {
                moved = true;
                self.carry(false, p);
            }
            if !moved {
                break;
            }
        }
    }

    fn carry(&mut self, from_a: bool, p: Repr) {
        self.log.push((from_a, p));
        if self.cut {
            return;
        }
        let mut buf = [0u8; 24];
        let n = p.emit(&mut buf).unwrap();
        let (to, src) = if from_a {
            (&mut self.b, ip("192.0.2.1"))
        } else {
            (&mut self.a, ip("192.0.2.2"))
        };
        to.handle_datagram(
            self.now,
            Datagram {
                src,
                ttl: 255,
                payload: &buf[..n],
            },
        );
    }

    /// Runs timers until `until` (inclusive).
    fn run_until(&mut self, until: Instant) {
        self.deliver();
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = t;
                    if self.a.poll_timeout() == Some(t) {
                        self.a.handle_timeout(t);
                    }
                    if self.b.poll_timeout() == Some(t) {
                        self.b.handle_timeout(t);
                    }
                    self.deliver();
                }
                _ => break,
            }
        }
        self.now = until;
    }
}

fn events(s: &mut S) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn transmits(s: &mut S) -> Vec<Repr> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

/// A pair that came Up at t0, queues drained.
fn up_pair(t0: Instant) -> Link {
    let mut link = Link::pair(t0);
    link.run_until(t0);
    assert_eq!((link.a.state(), link.b.state()), (State::Up, State::Up));
    events(&mut link.a);
    events(&mut link.b);
    link.log.clear();
    link
}

// ---- 6.8.1 initial state, 6.8.3 slow rate ----------------------------------------------

#[test]
fn rfc5880_6_8_1_new_session_is_down_and_sends_its_first_packet_at_once() {
    let t0 = Instant::now();
    let s = S::new(cfg("192.0.2.1", "192.0.2.2", A_DISCR), FixedJitter(0), t0);
    assert_eq!((s.state(), s.remote_state()), (State::Down, State::Down));
    assert_eq!(s.local_diag(), Diagnostic::None);
    assert_eq!(s.remote().discriminator, 0);
    assert_eq!(s.next_timer(), Some((Timer::Transmit, t0)));
    assert_eq!(s.detection_time(), None);
}

#[test]
fn rfc5880_6_8_3_not_up_sends_once_a_second_with_desired_min_tx_1s() {
    let t0 = Instant::now();
    let mut s = S::new(cfg("192.0.2.1", "192.0.2.2", A_DISCR), FixedJitter(0), t0);
    for i in 0..3 {
        let t = t0 + SLOW_TX_INTERVAL * i;
        assert_eq!(s.poll_timeout(), Some(t));
        s.handle_timeout(t);
        let sent = transmits(&mut s);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].state, State::Down);
        assert_eq!(sent[0].your_discriminator, 0);
        assert_eq!(sent[0].desired_min_tx_us, 1_000_000);
        assert_eq!(sent[0].required_min_rx_us, 300_000);
        assert_eq!(sent[0].required_min_echo_rx_us, 0);
    }
}

// ---- 6.2 / 6.8.6 three-way handshake ---------------------------------------------------

#[test]
fn rfc5880_6_2_three_way_handshake_down_init_up() {
    let t0 = Instant::now();
    let mut link = Link::pair(t0);
    // A's first packet goes out before B's timer fires, so B hears A first.
    link.a.handle_timeout(t0);
    link.deliver();
    let states: Vec<(bool, State)> = link.log.iter().map(|(a, p)| (*a, p.state)).collect();
    // A: Down (Your Discr 0) -> B goes Init -> A goes Up -> B goes Up.
    assert_eq!(
        &states[..3],
        &[(true, State::Down), (false, State::Init), (true, State::Up)]
    );
    assert_eq!(link.log[0].1.your_discriminator, 0);
    assert_eq!(link.log[1].1.your_discriminator, A_DISCR);
    assert_eq!((link.a.state(), link.b.state()), (State::Up, State::Up));
    assert_eq!(link.a.remote().discriminator, B_DISCR);
    assert_eq!(
        events(&mut link.a),
        vec![
            Event::StateChanged {
                from: State::Down,
                to: State::Up,
                diag: Diagnostic::None
            },
            Event::SessionUp,
        ]
    );
    assert_eq!(
        events(&mut link.b),
        vec![
            Event::StateChanged {
                from: State::Down,
                to: State::Init,
                diag: Diagnostic::None
            },
            Event::StateChanged {
                from: State::Init,
                to: State::Up,
                diag: Diagnostic::None
            },
            Event::SessionUp,
        ]
    );
    assert_eq!(link.a.counters().up_transitions, 1);
}

#[test]
fn rfc5880_6_8_3_going_up_lowers_desired_min_tx_with_a_poll_that_completes() {
    let t0 = Instant::now();
    let mut link = Link::pair(t0);
    link.run_until(t0);
    // Each side polled once after going Up (its Desired Min TX fell from 1 s to 300 ms) and
    // each poll was answered by a Final.
    assert_eq!(link.a.counters().poll_tx, 1);
    assert_eq!(link.b.counters().final_tx, 1);
    assert_eq!(link.b.counters().poll_tx, 1);
    assert_eq!(link.a.counters().final_tx, 1);
    assert!(!link.a.poll_in_progress() && !link.b.poll_in_progress());
    assert!(link.log.iter().all(|(_, p)| !(p.poll && p.final_)));
    assert_eq!(link.a.desired_min_tx(), 300 * MS);
}

#[test]
fn rfc5880_6_8_2_up_sessions_send_every_max_desired_tx_remote_rx() {
    let t0 = Instant::now();
    let mut link = up_pair(t0);
    assert_eq!(link.a.transmit_interval(), Some(300 * MS));
    assert_eq!(link.a.timers().get(Timer::Transmit), Some(t0 + 300 * MS));
    link.b.set_required_min_rx(t0, 500 * MS).unwrap();
    link.deliver();
    // B's Poll announced 500 ms; A's interval is now max(300, 500).
    assert_eq!(link.a.transmit_interval(), Some(500 * MS));
    assert_eq!(link.a.timers().get(Timer::Transmit), Some(t0 + 500 * MS));
}

// ---- 6.8.4 detection -------------------------------------------------------------------

#[test]
fn rfc5880_6_8_4_detection_time_is_remote_mult_times_max_local_rx_remote_tx() {
    let t0 = Instant::now();
    let mut b = cfg("192.0.2.2", "192.0.2.1", B_DISCR);
    b.detect_mult = 5;
    b.desired_min_tx = 400 * MS;
    let mut link = Link::new(cfg("192.0.2.1", "192.0.2.2", A_DISCR), b, t0);
    link.run_until(t0);
    // A: 5 * max(300 ms, 400 ms).
    assert_eq!(link.a.detection_time(), Some(2000 * MS));
    // B: 3 * max(300 ms, 300 ms).
    assert_eq!(link.b.detection_time(), Some(900 * MS));
}

#[test]
fn rfc5880_6_8_4_cut_link_goes_down_with_diag_1_at_exactly_detect_mult_intervals() {
    let t0 = Instant::now();
    let mut link = up_pair(t0);
    link.run_until(t0 + 1000 * MS);
    // Last packet from B reached A at t0 + 900 ms (every 300 ms, no jitter).
    let last = link.a.last_rx().unwrap();
    assert_eq!(last, t0 + 900 * MS);
    link.cut = true;
    assert_eq!(link.a.timers().get(Timer::Detection), Some(last + 900 * MS));
    link.run_until(last + 900 * MS - Duration::from_nanos(1));
    assert_eq!(link.a.state(), State::Up);
    link.run_until(last + 900 * MS);
    assert_eq!(link.a.state(), State::Down);
    assert_eq!(link.a.local_diag(), Diagnostic::ControlDetectionTimeExpired);
    let ev = events(&mut link.a);
    assert!(ev.contains(&Event::SessionDown {
        to: State::Down,
        diag: Diagnostic::ControlDetectionTimeExpired
    }));
    // RFC 5880 section 6.8.1: bfd.RemoteDiscr is zero again; the Down packet says so.
    assert_eq!(link.a.remote().discriminator, 0);
    let (_, down) = link.log.iter().rev().find(|(a, _)| *a).unwrap();
    assert_eq!(
        (down.state, down.diag, down.your_discriminator),
        (State::Down, Diagnostic::ControlDetectionTimeExpired, 0)
    );
    assert_eq!(link.a.counters().down_transitions, 1);
    // Back to the slow rate (6.8.3).
    assert_eq!(link.a.transmit_interval(), Some(SLOW_TX_INTERVAL));
}

#[test]
fn rfc5880_6_8_6_remote_down_takes_an_up_session_down_with_diag_3() {
    let t0 = Instant::now();
    let mut link = up_pair(t0);
    link.b.set_admin_down(t0, true);
    link.deliver();
    assert_eq!(link.b.state(), State::AdminDown);
    assert_eq!(link.b.local_diag(), Diagnostic::AdministrativelyDown);
    assert_eq!(link.a.state(), State::Down);
    assert_eq!(link.a.local_diag(), Diagnostic::NeighborSignaledSessionDown);
    assert_eq!(link.a.remote_state(), State::AdminDown);
    assert!(events(&mut link.a).contains(&Event::SessionDown {
        to: State::Down,
        diag: Diagnostic::NeighborSignaledSessionDown
    }));
}

// ---- 6.8.16 AdminDown ------------------------------------------------------------------

#[test]
fn rfc5880_6_8_16_admin_down_keeps_sending_slowly_discards_input_and_stops_detection() {
    let t0 = Instant::now();
    let mut link = up_pair(t0);
    link.a.set_admin_down(t0, true);
    let sent = transmits(&mut link.a);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].state, sent[0].diag),
        (State::AdminDown, Diagnostic::AdministrativelyDown)
    );
    assert_eq!(link.a.timers().get(Timer::Detection), None);
    assert_eq!(
        link.a.timers().get(Timer::Transmit),
        Some(t0 + SLOW_TX_INTERVAL)
    );
    // B's packets are now discarded and counted.
    link.deliver();
    link.run_until(t0 + 2000 * MS);
    assert_eq!(link.a.state(), State::AdminDown);
    assert!(link.a.counters().drops.get(drop_reason::ADMIN_DOWN) > 0);
    // Leaving AdminDown: Down, then the handshake again.
    link.a.set_admin_down(link.now, false);
    assert_eq!(link.a.state(), State::Down);
    link.deliver();
    assert_eq!((link.a.state(), link.b.state()), (State::Up, State::Up));
}

// ---- 6.5 / 6.8.3 Poll Sequence ---------------------------------------------------------

#[test]
fn rfc5880_6_8_3_larger_desired_min_tx_waits_for_the_final() {
    let t0 = Instant::now();
    let mut link = up_pair(t0);
    link.a.set_desired_min_tx(t0, 600 * MS).unwrap();
    let poll = transmits(&mut link.a);
    assert_eq!(poll.len(), 1);
    assert!(poll[0].poll && !poll[0].final_);
    assert_eq!(poll[0].desired_min_tx_us, 600_000);
    assert!(link.a.poll_in_progress());
    // Not yet answered: the old interval is still in use.
    assert_eq!(link.a.transmit_interval(), Some(300 * MS));
    // Deliver the Poll to B; its Final ends the sequence.
    link.carry(true, poll[0]);
    link.deliver();
    assert!(!link.a.poll_in_progress());
    assert_eq!(link.a.transmit_interval(), Some(600 * MS));
    let (_, fin) = link.log.iter().find(|(a, _)| !*a).unwrap();
    assert!(fin.final_ && !fin.poll);
    // B's detection time follows A's new Desired Min TX: 3 * max(300, 600).
    assert_eq!(link.b.detection_time(), Some(1800 * MS));
}

#[test]
fn rfc5880_6_5_poll_is_repeated_on_every_packet_until_final() {
    let t0 = Instant::now();
    let mut link = up_pair(t0);
    link.cut = true;
    link.a.set_desired_min_tx(t0, 600 * MS).unwrap();
    link.run_until(t0 + 600 * MS);
    let from_a: Vec<&Repr> = link
        .log
        .iter()
        .filter(|(a, _)| *a)
        .map(|(_, p)| p)
        .collect();
    assert_eq!(from_a.len(), 3); // at t0, t0 + 300 ms, t0 + 600 ms: still the old rate
    assert!(from_a.iter().all(|p| p.poll));
}

#[test]
fn rfc5880_6_8_3_smaller_required_min_rx_keeps_the_old_detection_time_until_final() {
    let t0 = Instant::now();
    let mut link = up_pair(t0);
    link.a.set_required_min_rx(t0, 100 * MS).unwrap();
    let poll = transmits(&mut link.a);
    assert_eq!(poll[0].required_min_rx_us, 100_000);
    assert_eq!(link.a.detection_time(), Some(900 * MS));
    link.carry(true, poll[0]);
    link.deliver();
    // After the Final: 3 * max(100 ms, B's 300 ms).
    assert_eq!(link.a.detection_time(), Some(900 * MS));
    link.b.set_desired_min_tx(link.now, 100 * MS).unwrap();
    link.deliver();
    assert_eq!(link.a.detection_time(), Some(300 * MS));
}

#[test]
fn rfc5880_6_8_7_poll_is_answered_at_once_with_final_regardless_of_the_timer() {
    let t0 = Instant::now();
    let mut link = up_pair(t0);
    let t = t0 + 10 * MS;
    let poll = Repr {
        poll: true,
        ..link.b.poll_transmit().unwrap_or(Repr {
            diag: Diagnostic::None,
            state: State::Up,
            poll: true,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: 3,
            my_discriminator: B_DISCR,
            your_discriminator: A_DISCR,
            desired_min_tx_us: 300_000,
            required_min_rx_us: 300_000,
            required_min_echo_rx_us: 0,
            auth: None,
        })
    };
    link.a.handle_packet(
        t,
        Received {
            src: ip("192.0.2.2"),
            ttl: 255,
            packet: &poll,
        },
    );
    let sent = transmits(&mut link.a);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].final_ && !sent[0].poll);
    // The periodic schedule is not disturbed by the Final.
    assert_eq!(link.a.timers().get(Timer::Transmit), Some(t0 + 300 * MS));
}

#[test]
fn rfc5880_6_8_3_remote_required_min_rx_zero_stops_periodic_transmission() {
    let t0 = Instant::now();
    let mut link = up_pair(t0);
    link.b.set_required_min_rx(t0, Duration::ZERO).unwrap();
    link.deliver();
    assert_eq!(link.a.transmit_interval(), None);
    assert_eq!(link.a.timers().get(Timer::Transmit), None);
    // A still answers B's later Polls with a Final (6.8.7).
    link.b.set_desired_min_tx(t0, 200 * MS).unwrap();
    link.log.clear();
    link.deliver();
    assert!(link.log.iter().any(|(a, p)| *a && p.final_));
}

#[test]
fn rfc5880_6_8_7_passive_session_waits_for_the_remote() {
    let t0 = Instant::now();
    let mut b = cfg("192.0.2.2", "192.0.2.1", B_DISCR);
    b.passive = true;
    let mut link = Link::new(cfg("192.0.2.1", "192.0.2.2", A_DISCR), b, t0);
    assert_eq!(link.b.poll_timeout(), None);
    assert!(transmits(&mut link.b).is_empty());
    link.run_until(t0);
    assert_eq!((link.a.state(), link.b.state()), (State::Up, State::Up));
}

// ---- 6.8.7 jitter ----------------------------------------------------------------------

#[test]
fn rfc5880_6_8_7_jitter_is_75_to_100_percent() {
    let i = 300 * MS;
    assert_eq!(jittered(i, 3, 0), i);
    assert_eq!(jittered(i, 3, 1 << 31), Duration::from_micros(262_500));
    let min = jittered(i, 3, u32::MAX);
    assert!(
        min > i * 3 / 4 && min < i * 3 / 4 + Duration::from_nanos(20),
        "{min:?}"
    );
}

#[test]
fn rfc5880_6_8_7_jitter_with_detect_mult_1_is_75_to_90_percent() {
    let i = 300 * MS;
    assert_eq!(jittered(i, 1, 0), 270 * MS);
    let min = jittered(i, 1, u32::MAX);
    assert!(
        min > i * 3 / 4 && min < i * 3 / 4 + Duration::from_nanos(20),
        "{min:?}"
    );
}

#[test]
fn rfc5880_6_8_7_session_draws_each_interval_from_the_jitter_source() {
    let t0 = Instant::now();
    let mut s = Session::new(
        cfg("192.0.2.1", "192.0.2.2", A_DISCR),
        FixedJitter(u32::MAX),
        t0,
    );
    s.handle_timeout(t0);
    let next = s.poll_timeout().unwrap() - t0;
    assert_eq!(next, jittered(SLOW_TX_INTERVAL, 3, u32::MAX));
    let mut values = [0u32, 1 << 31].into_iter().cycle();
    let mut s = Session::new(
        cfg("192.0.2.1", "192.0.2.2", A_DISCR),
        move || values.next().unwrap(),
        t0,
    );
    s.handle_timeout(t0);
    assert_eq!(s.poll_timeout(), Some(t0 + SLOW_TX_INTERVAL));
    s.handle_timeout(t0 + SLOW_TX_INTERVAL);
    assert_eq!(s.poll_timeout(), Some(t0 + SLOW_TX_INTERVAL + 875 * MS));
}

// ---- bad input: dropped, counted, nothing changes --------------------------------------

fn assert_dropped(link: &mut Link, src: &str, ttl: u8, payload: &[u8], reason: &str) {
    let before = (
        link.a.state(),
        *link.a.remote(),
        link.a.timers().clone(),
        link.a.last_rx(),
    );
    let drops = link.a.counters().drops.get(reason);
    link.a.handle_datagram(
        link.now,
        Datagram {
            src: ip(src),
            ttl,
            payload,
        },
    );
    assert_eq!(link.a.counters().drops.get(reason), drops + 1, "{reason}");
    let after = (
        link.a.state(),
        *link.a.remote(),
        link.a.timers().clone(),
        link.a.last_rx(),
    );
    assert_eq!(before, after, "{reason}");
    assert!(transmits(&mut link.a).is_empty(), "{reason}");
    assert_eq!(
        events(&mut link.a),
        vec![Event::Dropped {
            from: ip(src),
            reason: drop_reason::ALL
                .iter()
                .copied()
                .find(|r| *r == reason)
                .unwrap()
        }]
    );
}

/// A valid Down packet from B to A (which would take an Up A down), as bytes.
fn b_down() -> Vec<u8> {
    let repr = Repr {
        diag: Diagnostic::None,
        state: State::Down,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: B_DISCR,
        your_discriminator: A_DISCR,
        desired_min_tx_us: 1_000_000,
        required_min_rx_us: 300_000,
        required_min_echo_rx_us: 0,
        auth: None,
    };
    let mut b = vec![0; 24];
    repr.emit(&mut b).unwrap();
    b
}

#[test]
fn rfc5881_5_wrong_ttl_is_dropped_and_counted() {
    let mut link = up_pair(Instant::now());
    assert_dropped(&mut link, "192.0.2.2", 254, &b_down(), drop_reason::TTL);
    assert_dropped(&mut link, "192.0.2.2", 1, &b_down(), drop_reason::TTL);
}

#[test]
fn rfc5880_6_8_6_malformed_packets_are_dropped_by_reason_and_change_nothing() {
    let mut link = up_pair(Instant::now());
    let good = b_down();
    let mut v2 = good.clone();
    v2[0] = 0x40;
    assert_dropped(&mut link, "192.0.2.2", 255, &v2, drop_reason::BAD_VERSION);
    assert_dropped(
        &mut link,
        "192.0.2.2",
        255,
        &good[..20],
        drop_reason::BAD_LENGTH,
    );
    let mut long = good.clone();
    long[3] = 30;
    assert_dropped(&mut link, "192.0.2.2", 255, &long, drop_reason::BAD_LENGTH);
    let mut mult = good.clone();
    mult[2] = 0;
    assert_dropped(
        &mut link,
        "192.0.2.2",
        255,
        &mult,
        drop_reason::ZERO_DETECT_MULT,
    );
    let mut m = good.clone();
    m[1] |= 0x01;
    assert_dropped(&mut link, "192.0.2.2", 255, &m, drop_reason::MULTIPOINT);
    let mut my = good.clone();
    my[4..8].fill(0);
    assert_dropped(
        &mut link,
        "192.0.2.2",
        255,
        &my,
        drop_reason::ZERO_MY_DISCRIMINATOR,
    );
    let mut your = good.clone();
    your[1] = State::Up.number() << 6;
    your[8..12].fill(0);
    assert_dropped(
        &mut link,
        "192.0.2.2",
        255,
        &your,
        drop_reason::ZERO_YOUR_DISCRIMINATOR,
    );
    let mut other = good.clone();
    other[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    assert_dropped(
        &mut link,
        "192.0.2.2",
        255,
        &other,
        drop_reason::UNKNOWN_DISCRIMINATOR,
    );
    assert_dropped(
        &mut link,
        "192.0.2.99",
        255,
        &good,
        drop_reason::UNKNOWN_PEER,
    );
    let mut auth = good.clone();
    auth[1] |= 0x04;
    auth[3] = 26;
    auth.extend_from_slice(&[1, 2]);
    assert_dropped(
        &mut link,
        "192.0.2.2",
        255,
        &auth,
        drop_reason::AUTH_UNSUPPORTED,
    );
    assert_eq!(link.a.state(), State::Up);
    assert_eq!(link.a.counters().drops.total(), 10);
    // The same packet, well formed, does take A down.
    link.a.handle_datagram(
        link.now,
        Datagram {
            src: ip("192.0.2.2"),
            ttl: 255,
            payload: &good,
        },
    );
    assert_eq!(link.a.state(), State::Down);
}

#[test]
fn rfc5880_6_8_6_hand_built_repr_is_checked_too() {
    let mut link = up_pair(Instant::now());
    let mut repr = Repr::parse(&b_down()).unwrap();
    repr.detect_mult = 0;
    link.a.handle_packet(
        link.now,
        Received {
            src: ip("192.0.2.2"),
            ttl: 255,
            packet: &repr,
        },
    );
    assert_eq!(
        link.a.counters().drops.get(drop_reason::ZERO_DETECT_MULT),
        1
    );
    assert_eq!(link.a.state(), State::Up);
}

#[test]
fn ipv6_sessions_come_up_and_check_hop_limit() {
    let t0 = Instant::now();
    let mut a = S::new(
        cfg("2001:db8::1", "2001:db8::2", A_DISCR),
        FixedJitter(0),
        t0,
    );
    let mut b = S::new(
        cfg("2001:db8::2", "2001:db8::1", B_DISCR),
        FixedJitter(0),
        t0,
    );
    a.handle_timeout(t0);
    let down = a.poll_transmit().unwrap();
    b.handle_packet(
        t0,
        Received {
            src: ip("2001:db8::1"),
            ttl: 64,
            packet: &down,
        },
    );
    assert_eq!(b.counters().drops.get(drop_reason::TTL), 1);
    b.handle_packet(
        t0,
        Received {
            src: ip("2001:db8::1"),
            ttl: 255,
            packet: &down,
        },
    );
    assert_eq!(b.state(), State::Init);
}

#[test]
fn frr_packets_drive_our_session_through_the_handshake_and_a_poll() {
    // Our session plays FRR's peer B of the IPv4 capture (same discriminator).
    let t0 = Instant::now();
    let read = |name: &str| -> Vec<u8> {
        let path = format!(
            "{}/../../tests/vectors/bfd/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).unwrap();
        let hex: String = text.lines().filter(|l| !l.starts_with('#')).collect();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    };
    let mut s = S::new(
        cfg("192.0.2.2", "192.0.2.1", 0xcf8f_51ca),
        FixedJitter(0),
        t0,
    );
    let rx = |s: &mut S, name: &str| {
        s.handle_datagram(
            t0,
            Datagram {
                src: ip("192.0.2.1"),
                ttl: 255,
                payload: &read(name),
            },
        );
    };
    rx(&mut s, "frr-8.4.4-ipv4-down.hex");
    assert_eq!(s.state(), State::Init);
    let init = transmits(&mut s);
    assert_eq!(
        (init[0].state, init[0].your_discriminator),
        (State::Init, 0x6379_a578)
    );
    rx(&mut s, "frr-8.4.4-ipv4-up-poll-tx300ms.hex");
    assert_eq!(s.state(), State::Up);
    let reply = transmits(&mut s);
    assert!(reply[0].final_ && reply[0].state == State::Up);
    rx(&mut s, "frr-8.4.4-ipv4-up-poll-tx200ms.hex");
    assert!(transmits(&mut s)[0].final_);
    // 3 * max(our 300 ms, FRR's 200 ms).
    assert_eq!(s.detection_time(), Some(900 * MS));
    assert_eq!(s.transmit_interval(), Some(300 * MS));
    rx(&mut s, "frr-8.4.4-ipv4-admin-down.hex");
    assert_eq!(
        (s.state(), s.local_diag()),
        (State::Down, Diagnostic::NeighborSignaledSessionDown)
    );
    assert_eq!(s.counters().drops.total(), 0);
}

proptest! {
    /// Arbitrary datagrams never panic the session, and one that is refused changes nothing.
    #[test]
    fn arbitrary_datagrams_never_panic_and_refused_ones_change_nothing(
        bytes in proptest::collection::vec(any::<u8>(), 0..64), ttl in prop_oneof![Just(255u8), any::<u8>()],
    ) {
        let mut link = up_pair(Instant::now());
        let before = (link.a.state(), link.a.timers().clone());
        let drops = link.a.counters().drops.total();
        link.a.handle_datagram(link.now, Datagram { src: ip("192.0.2.2"), ttl, payload: &bytes });
        if link.a.counters().drops.total() > drops {
            prop_assert_eq!(before, (link.a.state(), link.a.timers().clone()));
        }
    }
}
