//! The VRRP core driven through its public API by an arbitrary sequence of inputs: adverts
//! (encoded and decoded by the real codec, or raw bytes), timer expiries on a monotone virtual
//! clock, health changes (priority, fault), shutdown, startup and reloads.
//!
//! Invariants checked after every input (the issue 14 list):
//! - one state at a time, and the VIPs are held (AddVips/RemoveVips replayed) exactly while
//!   Master or Resigning; never added twice or removed when not held;
//! - every deadline from `poll_timeout` is in the future; a timeout call before it does nothing;
//! - the effective priority is within 1..=254, or 255 for the address owner;
//! - actions are consistent with the state they are emitted in (adverts only from a Master or
//!   a resigning one, with our VRID, version, VIPs and priority; StateChanged chains from the
//!   state before the input to the state after it);
//! - an advert reported as dropped changes no state, no timer and no priority, and is counted.
#![no_main]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use vipd_vrrp::packet::AddressFamily;
use vipd_vrrp::router::SourceFilter;
use vipd_vrrp::{
    Action, Advertisement, Auth, ChecksumForm, Event, Received, Router, RouterConfig, State,
    TtlPolicy, Version,
};

/// Addresses the inputs pick from, so that adverts often match the configuration.
const V4: [&str; 5] = [
    "192.0.2.10",
    "192.0.2.11",
    "192.0.2.9",
    "192.0.2.100",
    "192.0.2.101",
];
const V6: [&str; 5] = [
    "fe80::10",
    "fe80::11",
    "fe80::9",
    "2001:db8::100",
    "2001:db8::101",
];

fn pool(v6: bool, i: u8) -> IpAddr {
    let list = if v6 { &V6 } else { &V4 };
    list[usize::from(i) % list.len()].parse().unwrap()
}

#[derive(Debug, Arbitrary)]
struct ConfigInput {
    v2: bool,
    v6: bool,
    priority: u8,
    interval: u16,
    primary: u8,
    vips: u8,
    preempt: bool,
    password: bool,
    pseudo_header: bool,
    ttl_range: Option<(u8, u8)>,
    resign_wait_ms: u16,
    repeat_ms: Option<u16>,
    refresh_ms: Option<u16>,
    only_sources: Option<u8>,
}

impl ConfigInput {
    fn build(&self) -> RouterConfig {
        let v6 = self.v6 && !self.v2;
        let version = if self.v2 { Version::V2 } else { Version::V3 };
        let advert_interval = if self.v2 {
            Duration::from_secs(u64::from(self.interval % 255 + 1))
        } else {
            Duration::from_millis(u64::from(self.interval % 4095 + 1) * 10)
        };
        // Bit i of `vips` selects VIP pool entry 3 + i; always at least one.
        let mut vips = vec![pool(v6, 3)];
        if self.vips & 1 != 0 {
            vips.push(pool(v6, 4));
        }
        RouterConfig {
            version,
            vrid: 51,
            priority: self.priority.max(1),
            advert_interval,
            primary_address: pool(v6, self.primary % 3),
            vips,
            preempt: self.preempt,
            auth: if self.v2 && self.password {
                Auth::Pass(*b"ostest_a")
            } else {
                Auth::None
            },
            send_checksum: if self.pseudo_header {
                ChecksumForm::PseudoHeader
            } else {
                ChecksumForm::Plain
            },
            ttl_policy: match self.ttl_range {
                Some((a, b)) => TtlPolicy::Range {
                    min: a.min(b),
                    max: a.max(b),
                },
                None => TtlPolicy::Require255,
            },
            resign_wait: Duration::from_millis(u64::from(self.resign_wait_ms)),
            // The configuration layer maps "0s" to None (config.rs), so Some is never zero.
            announce_repeat_after: self
                .repeat_ms
                .map(|ms| Duration::from_millis(u64::from(ms) + 1)),
            announce_refresh: self
                .refresh_ms
                .map(|ms| Duration::from_millis(u64::from(ms) + 1)),
            sources: match self.only_sources {
                Some(bits) => SourceFilter::Only(
                    (0..3)
                        .filter(|i| bits & (1 << i) != 0)
                        .map(|i| pool(v6, i))
                        .collect(),
                ),
                None => SourceFilter::Any,
            },
        }
    }
}

#[derive(Debug, Arbitrary)]
struct AdvertInput {
    src: u8,
    ttl: u8,
    other_version: bool,
    other_vrid: bool,
    priority: u8,
    interval: u16,
    addresses: u8,
    password: Option<[u8; 8]>,
    pseudo_header: bool,
}

#[derive(Debug, Arbitrary)]
enum Op {
    /// Time passes; due timers fire at their deadline plus up to `late_us` of lateness.
    Advance {
        ms: u16,
        late_us: u16,
    },
    /// Jump to the next deadline and fire it.
    FireNext,
    /// A timeout call at an arbitrary time (possibly early: must do nothing then).
    Timeout,
    Advert(AdvertInput),
    /// Raw bytes from `src` through the decoder; only what decodes reaches the core.
    Raw {
        src: u8,
        ttl: u8,
        bytes: Vec<u8>,
    },
    SetPriority(i16),
    SetFault(bool),
    Shutdown,
    Startup,
    Reconfigure(ConfigInput),
}

/// Everything a dropped advert must leave untouched.
#[derive(Debug, PartialEq)]
struct Snapshot {
    state: State,
    timeout: Option<Instant>,
    priority: u8,
    master_adver_interval: Duration,
    master: Option<vipd_vrrp::MasterInfo>,
    stopped: bool,
}

fn snapshot(r: &Router) -> Snapshot {
    Snapshot {
        state: r.state(),
        timeout: r.poll_timeout(),
        priority: r.effective_priority(),
        master_adver_interval: r.master_adver_interval(),
        master: r.master(),
        stopped: r.is_stopped(),
    }
}

fn drops(r: &Router) -> u64 {
    let c = r.counters();
    c.drop_ttl
        + c.drop_version
        + c.drop_vrid
        + c.drop_family
        + c.drop_auth
        + c.drop_interval
        + c.drop_own_address
        + c.drop_source
        + c.address_list_mismatch
}

struct Driver {
    router: Router,
    now: Instant,
    /// VIPs on the interface, as the daemon would have them after carrying out every action.
    held: bool,
}

impl Driver {
    /// Drains the actions of one input and checks them against the state before it.
    fn drain(&mut self, before: State) -> Vec<Action> {
        let actions: Vec<Action> = std::iter::from_fn(|| self.router.poll_action()).collect();
        let config = self.router.config().clone();
        let mut state = before;
        let later_leaves_master = |i: usize| {
            actions[i..].iter().any(|a| {
                matches!(
                    a,
                    Action::Event(Event::StateChanged {
                        to: State::Fault | State::Resigning,
                        ..
                    })
                )
            })
        };
        for (i, action) in actions.iter().enumerate() {
            match action {
                Action::Send(adv) => {
                    assert!(
                        matches!(state, State::Master | State::Resigning),
                        "advert sent in state {state:?}: {actions:?}"
                    );
                    assert_eq!(adv.vrid, config.vrid);
                    assert_eq!(adv.version, config.version);
                    assert_eq!(adv.addresses, config.vips);
                    if adv.priority == 0 {
                        assert!(
                            state == State::Resigning || later_leaves_master(i),
                            "priority-0 advert while staying {state:?}: {actions:?}"
                        );
                    } else {
                        assert_eq!(
                            adv.priority,
                            self.router.effective_priority(),
                            "advert priority is not the effective priority: {actions:?}"
                        );
                    }
                    // What the core sends, the codec can encode and decode again.
                    let (src, dst) = match AddressFamily::of(config.primary_address) {
                        AddressFamily::Ipv4 => {
                            (config.primary_address, "224.0.0.18".parse().unwrap())
                        }
                        AddressFamily::Ipv6 => {
                            (config.primary_address, "ff02::12".parse().unwrap())
                        }
                    };
                    let mut buf = [0u8; 1024];
                    let n = adv
                        .emit(&mut buf, src, dst, config.send_checksum)
                        .unwrap_or_else(|e| panic!("core sent an advert the codec refuses: {e}"));
                    let (decoded, _) = Advertisement::parse(&buf[..n], src, dst).unwrap();
                    assert_eq!(&decoded, adv);
                }
                Action::AddVips => {
                    assert_eq!(state, State::Master, "AddVips outside Master: {actions:?}");
                    assert!(!self.held, "VIPs added twice: {actions:?}");
                    self.held = true;
                }
                Action::RemoveVips => {
                    assert!(self.held, "VIPs removed while not held: {actions:?}");
                    assert!(matches!(state, State::Master | State::Resigning));
                    self.held = false;
                }
                Action::UpdateVips { .. } => {
                    assert!(self.held, "UpdateVips while not held: {actions:?}");
                    assert!(matches!(state, State::Master | State::Resigning));
                }
                Action::Announce => {
                    assert_eq!(state, State::Master, "Announce outside Master: {actions:?}");
                    assert!(self.held);
                }
                Action::Event(Event::StateChanged { from, to, .. }) => {
                    assert_eq!(*from, state, "StateChanged does not chain: {actions:?}");
                    assert_ne!(from, to);
                    state = *to;
                }
                Action::Event(_) => {}
            }
        }
        assert_eq!(state, self.router.state(), "events disagree with state()");
        assert_eq!(
            self.held,
            matches!(state, State::Master | State::Resigning),
            "VIPs held = {} in state {state:?}: {actions:?}",
            self.held
        );
        actions
    }

    /// `after_timeout`: the input was `handle_timeout(now)`, so nothing may be due any more.
    /// After other inputs a deadline may be `now` itself (a reload re-anchors a pending
    /// announce that is already due), never earlier.
    fn invariants_at(&self, after_timeout: bool) {
        let r = &self.router;
        if let Some(t) = r.poll_timeout() {
            assert!(
                t > self.now || (!after_timeout && t == self.now),
                "deadline {t:?} not after now {:?} in {:?}",
                self.now,
                r.state()
            );
        }
        let p = r.effective_priority();
        if r.config().priority == 255 {
            assert_eq!(p, 255, "the address owner's priority changed");
        } else {
            assert!((1..=254).contains(&p), "effective priority {p}");
        }
        if r.is_stopped() {
            assert_eq!(r.state(), State::Initialize);
        }
        if matches!(r.state(), State::Initialize | State::Fault) {
            assert_eq!(r.poll_timeout(), None);
        }
        if matches!(r.state(), State::Backup | State::Master | State::Resigning) {
            assert!(
                r.poll_timeout().is_some(),
                "{:?} without a timer",
                r.state()
            );
        }
    }

    fn invariants(&self) {
        self.invariants_at(false);
    }

    fn timeout_at(&mut self, at: Instant) {
        let before = self.router.state();
        let due = self.router.poll_timeout().is_some_and(|t| t <= at);
        self.now = at;
        self.router.handle_timeout(at);
        let actions = self.drain(before);
        if !due {
            assert!(
                actions.is_empty(),
                "timeout before any deadline acted: {actions:?}"
            );
        }
        self.invariants_at(true);
    }

    /// Fires every timer due up to `until`, each at its deadline plus `late`, like the daemon.
    fn advance_to(&mut self, until: Instant, late: Duration) {
        for _ in 0..10_000 {
            match self.router.poll_timeout() {
                Some(t) if t <= until => {
                    let at = t.checked_add(late).unwrap_or(t).min(until).max(self.now);
                    self.timeout_at(at);
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    fn advert(&mut self, src: IpAddr, ttl: u8, advert: &Advertisement, form: ChecksumForm) {
        let before = snapshot(&self.router);
        let drops_before = drops(&self.router);
        self.router.handle_advert(
            self.now,
            Received {
                src,
                ttl,
                advert,
                checksum_form: form,
            },
        );
        let actions = self.drain(before.state);
        let dropped = actions
            .iter()
            .any(|a| matches!(a, Action::Event(Event::Dropped { .. })));
        if dropped {
            assert_eq!(actions.len(), 1, "a dropped advert also acted: {actions:?}");
            assert_eq!(
                snapshot(&self.router),
                before,
                "a dropped advert changed state"
            );
            assert_eq!(drops(&self.router), drops_before + 1, "drop not counted");
        }
        self.invariants();
    }
}

fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let config = ConfigInput::arbitrary(u)?.build();
    if config.check().is_err() {
        return Ok(());
    }
    let v6 = config.primary_address.is_ipv6();
    let start = Instant::now();
    let mut d = Driver {
        router: Router::new(config, start),
        now: start,
        held: false,
    };
    d.router.startup(start);
    d.drain(State::Initialize);
    d.invariants();
    for _ in 0..200 {
        if u.is_empty() {
            break;
        }
        match Op::arbitrary(u)? {
            Op::Advance { ms, late_us } => {
                let until = d.now + Duration::from_millis(ms.into());
                d.advance_to(until, Duration::from_micros(late_us.into()));
            }
            Op::FireNext => {
                if let Some(t) = d.router.poll_timeout() {
                    d.advance_to(t, Duration::ZERO);
                }
            }
            Op::Timeout => {
                // Timers that are due fire first (at their deadline), then the call at `now`.
                let now = d.now;
                d.advance_to(now, Duration::ZERO);
                d.timeout_at(now);
            }
            Op::Advert(a) => {
                let cfg = d.router.config();
                let version = match (cfg.version, a.other_version) {
                    (Version::V2, false) | (Version::V3, true) if !v6 => Version::V2,
                    _ => Version::V3,
                };
                let mut addresses = Vec::new();
                for i in 0..3u8 {
                    if a.addresses & (1 << i) != 0 {
                        addresses.push(pool(v6, 2 + i));
                    }
                }
                if addresses.is_empty() {
                    addresses.push(pool(v6, 3));
                }
                let advert = Advertisement {
                    version,
                    vrid: if a.other_vrid { 52 } else { cfg.vrid },
                    priority: a.priority,
                    interval_cs: match version {
                        Version::V2 => (a.interval % 255 + 1) * 100,
                        Version::V3 => a.interval % 4095 + 1,
                    },
                    addresses,
                    auth: match (version, a.password) {
                        (Version::V2, Some(p)) => Auth::Pass(p),
                        (Version::V2, None) => cfg.auth,
                        (Version::V3, _) => Auth::None,
                    },
                };
                let src = pool(v6, a.src % 3);
                let dst: IpAddr = if v6 { "ff02::12" } else { "224.0.0.18" }.parse().unwrap();
                let form = if a.pseudo_header {
                    ChecksumForm::PseudoHeader
                } else {
                    ChecksumForm::Plain
                };
                // Through the real codec: only what decodes reaches the core.
                let mut buf = [0u8; 1024];
                if let Ok(n) = advert.emit(&mut buf, src, dst, form) {
                    if let Ok((decoded, form)) = Advertisement::parse(&buf[..n], src, dst) {
                        d.advert(src, a.ttl, &decoded, form);
                    }
                }
            }
            Op::Raw { src, ttl, bytes } => {
                let src = pool(v6, src % 3);
                let dst: IpAddr = if v6 { "ff02::12" } else { "224.0.0.18" }.parse().unwrap();
                if let Ok((decoded, form)) = Advertisement::parse(&bytes, src, dst) {
                    d.advert(src, ttl, &decoded, form);
                }
            }
            Op::SetPriority(p) => {
                let before = d.router.state();
                d.router.set_priority(d.now, i32::from(p));
                d.drain(before);
                d.invariants();
            }
            Op::SetFault(f) => {
                let before = d.router.state();
                d.router.set_fault(d.now, f);
                d.drain(before);
                d.invariants();
            }
            Op::Shutdown => {
                let before = d.router.state();
                d.router.shutdown(d.now);
                d.drain(before);
                d.invariants();
            }
            Op::Startup => {
                let before = d.router.state();
                d.router.startup(d.now);
                d.drain(before);
                d.invariants();
            }
            Op::Reconfigure(c) => {
                let new = c.build();
                if new.check().is_err() {
                    continue;
                }
                let before = snapshot(&d.router);
                let result = d.router.reconfigure(d.now, new.clone());
                let actions = d.drain(before.state);
                match result {
                    Ok(()) => assert_eq!(d.router.config(), &new),
                    Err(_) => {
                        assert!(actions.is_empty(), "refused reload acted: {actions:?}");
                        assert_eq!(snapshot(&d.router), before, "refused reload changed state");
                    }
                }
                d.invariants();
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
