//! One BFD session (RFC 5880 asynchronous mode) driven by an arbitrary sequence of inputs:
//! raw datagrams, well-formed packets with arbitrary fields (from the peer or a stranger, any
//! TTL), timer expiries on a monotone virtual clock, AdminDown on and off, and interval changes.
//!
//! Invariants checked after every input:
//! - a packet counted as dropped changes no state, no timer and nothing known of the remote;
//! - after `handle_timeout(now)` every deadline lies after `now`;
//! - every packet sent parses, carries our discriminator and detect mult, the state we were in
//!   when it was queued, and never both P and F;
//! - StateChanged events chain from the state before the input to the state after it, and
//!   Up is entered only from Down or Init.
#![no_main]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vipd_bfd::{
    Datagram, Diagnostic, Event, FixedJitter, Received, Repr, Session, SessionConfig, State,
};

const OUR_DISCR: u32 = 0x1111_2222;

#[derive(Debug, Arbitrary)]
struct PacketInput {
    diag: u8,
    state: u8,
    poll: bool,
    final_: bool,
    demand: bool,
    detect_mult: u8,
    my_discriminator: u32,
    /// Ours, zero, or this value.
    your: Option<Option<u32>>,
    desired_min_tx_us: u32,
    required_min_rx_us: u32,
}

#[derive(Debug, Arbitrary)]
enum Input {
    Raw { stranger: bool, ttl: u8, bytes: Vec<u8> },
    Packet { stranger: bool, ttl255: bool, packet: PacketInput },
    Advance { ms: u16 },
    AdminDown(bool),
    DesiredMinTx { us: u32 },
    RequiredMinRx { us: u32 },
}

#[derive(Debug, Arbitrary)]
struct Case {
    jitter: u32,
    tx_ms: u8,
    rx_ms: u8,
    mult: u8,
    passive: bool,
    inputs: Vec<Input>,
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn build(p: &PacketInput) -> Repr {
    Repr {
        diag: Diagnostic::from_number(p.diag & 0x1f),
        state: State::from_number(p.state & 3),
        poll: p.poll,
        final_: p.final_ && !p.poll,
        control_plane_independent: false,
        demand: p.demand,
        detect_mult: p.detect_mult,
        my_discriminator: p.my_discriminator,
        your_discriminator: match p.your {
            None => OUR_DISCR,
            Some(None) => 0,
            Some(Some(d)) => d,
        },
        desired_min_tx_us: p.desired_min_tx_us,
        required_min_rx_us: p.required_min_rx_us,
        required_min_echo_rx_us: 0,
        auth: None,
    }
}

/// What a dropped packet must leave alone.
fn snapshot(s: &Session<FixedJitter>) -> impl PartialEq + std::fmt::Debug {
    (s.state(), s.timers().clone(), *s.remote(), s.local_diag())
}

fuzz_target!(|case: Case| {
    let t0 = Instant::now();
    let config = SessionConfig {
        local_address: ip("192.0.2.1"),
        peer_address: ip("192.0.2.2"),
        local_discriminator: OUR_DISCR,
        desired_min_tx: Duration::from_millis(u64::from(case.tx_ms.max(1))),
        required_min_rx: Duration::from_millis(u64::from(case.rx_ms)),
        detect_mult: case.mult.max(1),
        passive: case.passive,
    };
    let mut s = Session::new(config, FixedJitter(case.jitter), t0);
    let mut now = t0;
    for input in case.inputs.iter().take(256) {
        let before_state = s.state();
        let before = snapshot(&s);
        let drops = s.counters().drops.total();
        let mut was_packet = false;
        match input {
            Input::Raw { stranger, ttl, bytes } => {
                was_packet = true;
                let src = if *stranger { ip("192.0.2.9") } else { ip("192.0.2.2") };
                s.handle_datagram(now, Datagram { src, ttl: *ttl, payload: bytes });
            }
            Input::Packet { stranger, ttl255, packet } => {
                was_packet = true;
                let src = if *stranger { ip("192.0.2.9") } else { ip("192.0.2.2") };
                let repr = build(packet);
                let ttl = if *ttl255 { 255 } else { 64 };
                s.handle_packet(now, Received { src, ttl, packet: &repr });
            }
            Input::Advance { ms } => {
                now += Duration::from_millis(u64::from(*ms));
                s.handle_timeout(now);
                if let Some(t) = s.poll_timeout() {
                    assert!(t > now, "deadline {t:?} not after now {now:?}");
                }
            }
            Input::AdminDown(on) => s.set_admin_down(now, *on),
            Input::DesiredMinTx { us } => {
                let _ = s.set_desired_min_tx(now, Duration::from_micros(u64::from(*us)));
            }
            Input::RequiredMinRx { us } => {
                let _ = s.set_required_min_rx(now, Duration::from_micros(u64::from(*us)));
            }
        }
        if was_packet && s.counters().drops.total() > drops {
            assert_eq!(before, snapshot(&s), "a dropped packet changed the session");
        }
        let mut state = before_state;
        while let Some(e) = s.poll_event() {
            if let Event::StateChanged { from, to, .. } = e {
                assert_eq!(from, state, "StateChanged does not chain");
                if to == State::Up {
                    assert!(matches!(from, State::Down | State::Init), "Up from {from:?}");
                }
                state = to;
            }
        }
        assert_eq!(state, s.state());
        while let Some(p) = s.poll_transmit() {
            assert!(!(p.poll && p.final_), "P and F together");
            assert_eq!(p.my_discriminator, OUR_DISCR);
            assert_eq!(p.detect_mult, case.mult.max(1));
            let mut buf = [0u8; 64];
            let n = p.emit(&mut buf).expect("a queued packet emits");
            assert_eq!(Repr::parse(&buf[..n]), Ok(p));
        }
    }
});
