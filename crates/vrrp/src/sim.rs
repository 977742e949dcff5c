//! Deterministic LAN simulator: N routers on a virtual clock with loss, delay and partitions.
//!
//! Every [`Router`] on the [`Lan`] runs unmodified; the simulator plays the daemon's part:
//! it calls `handle_timeout` at each router's `poll_timeout`, carries `Action::Send` to every
//! other connected router (multicast semantics, TTL 255), and records what each router did.
//! Time is virtual (`start` plus offsets), so a scenario of minutes runs in microseconds and the
//! same seed always produces the same trace.
//!
//! Each sent advert is, by default, emitted to bytes with [`Advertisement::emit`] and parsed back
//! with [`Advertisement::parse`] before delivery, so the state machine and the codec are tested
//! together (a router that produced an unencodable advert shows up as [`TraceEvent::CodecError`]).
//!
//! Node indices are positions in the `configs` given to [`Lan::new`]; methods taking a node
//! index panic if it is out of range (a bug in the test, not input the daemon could receive).
//!
//! Ordering at one instant: a packet delivery due at `t` is handled before a timer due at `t`
//! (a packet arriving exactly at the deadline is in time), deliveries in send order, then the
//! failure detector's events, then timers in node order.
//!
//! An optional failure detector ([`Detector`], modelled on BFD) runs between every ordered pair
//! of nodes and feeds [`Router::handle_liveness`]; [`Lan::block_detector`] cuts it alone while
//! adverts still flow.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use crate::liveness::Liveness;
use crate::packet::Advertisement;
use crate::router::{Action, Event, Received, ReconfigureError, Router, RouterConfig, State};

/// 224.0.0.18, the VRRP IPv4 multicast group (RFC 9568 section 5.1.1.2).
const VRRP_GROUP_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
/// ff02::12, the VRRP IPv6 multicast group (RFC 9568 section 5.1.2.2).
const VRRP_GROUP_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));

/// Bound on events handled by one `run_until` call, so a logic error cannot hang a test.
/// Ten routers at 10 ms for an hour of virtual time is about 4 million events.
pub const MAX_STEPS_PER_RUN: usize = 20_000_000;

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast, and good enough to decide packet loss.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1): the top 53 bits as the mantissa.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What happened on the LAN, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceEvent {
    StateChanged {
        from: State,
        to: State,
        reason: &'static str,
    },
    VipsAdded,
    VipsRemoved,
    VipsUpdated {
        added: Vec<IpAddr>,
        removed: Vec<IpAddr>,
    },
    Announce,
    Sent(Advertisement),
    /// An advert reached this node from `from` (before the router validated it).
    Delivered {
        from: usize,
        priority: u8,
    },
    /// An advert to this node from `from` was lost to the configured loss probability.
    Lost {
        from: usize,
    },
    /// The router dropped an advert (validation failure).
    Dropped {
        from: IpAddr,
        reason: &'static str,
    },
    AddressMismatch {
        from: IpAddr,
    },
    LowerPriorityMaster {
        from: IpAddr,
        priority: u8,
    },
    /// The failure detector told this node's router about node `about`.
    Liveness {
        about: usize,
        report: Liveness,
    },
    MasterUnreachable {
        master: IpAddr,
        takeover_at: Instant,
    },
    MasterHeardAgain {
        master: IpAddr,
    },
    LivenessRefuted {
        master: IpAddr,
        until: Instant,
    },
    /// The codec refused to emit or re-parse an advert this node sent; it was not delivered.
    CodecError(String),
    /// The node vanished without resigning (power loss, SIGKILL of the host's VIPs included).
    Crashed,
    /// A crashed node came back with a fresh router and started up.
    Restarted,
    ShutdownRequested,
    FaultSet(bool),
    PrioritySet(i32),
    Reconfigured,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    pub at: Instant,
    pub node: usize,
    pub what: TraceEvent,
}

/// One node's status at some instant, rebuilt from the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStatus {
    pub state: State,
    pub alive: bool,
    pub holds_vips: bool,
}

impl NodeStatus {
    const INITIAL: NodeStatus = NodeStatus {
        state: State::Initialize,
        alive: true,
        holds_vips: false,
    };

    fn is_master(&self) -> bool {
        self.alive && self.state == State::Master
    }
}

#[derive(Debug, Clone)]
struct Node {
    config: RouterConfig,
    router: Router,
    alive: bool,
    holds_vips: bool,
}

#[derive(Debug, Clone)]
struct Delivery {
    from: usize,
    to: usize,
    advert: Advertisement,
    checksum_form: crate::packet::ChecksumForm,
}

/// A failure detector between every ordered pair of nodes, modelled on BFD asynchronous mode
/// (RFC 5880): `from` sends a probe to `to` every `interval` less a random 0-25 % (RFC 5880
/// 6.8.7 jitter), each probe subject to the link's loss, delay and partitions, to crashes and
/// to [`Lan::block_detector`]; `to` reports `from` [`Liveness::Lost`] once nothing arrived for
/// `multiplier x interval` after at least one probe did, and [`Liveness::Heard`] at the first
/// probe that arrives after that. Probes draw their loss from a random stream of their own,
/// so turning the detector on does not change which adverts are lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detector {
    pub interval: Duration,
    pub multiplier: u32,
}

impl Detector {
    /// What the detector reports as its detection time.
    pub fn detection_time(&self) -> Duration {
        self.interval.saturating_mul(self.multiplier)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Send {
        from: usize,
        to: usize,
    },
    Arrive {
        from: usize,
        to: usize,
    },
    /// Detection deadline of `to`'s session with `from`, valid while `generation` is current.
    Deadline {
        from: usize,
        to: usize,
        generation: u64,
    },
}

/// `to`'s view of its detector session with `from`.
#[derive(Debug, Clone, Copy, Default)]
struct Session {
    /// Bumped at every arrival (and restart): older deadlines are stale.
    generation: u64,
    /// A probe arrived once (only then can the session be lost).
    up: bool,
    lost: bool,
}

/// A simulated LAN segment of routers for one virtual router id.
#[derive(Debug, Clone)]
pub struct Lan {
    start: Instant,
    now: Instant,
    nodes: Vec<Node>,
    /// In-flight packets keyed by (arrival time, send sequence number).
    in_flight: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
    rng: SplitMix64,
    loss: f64,
    link_loss: HashMap<(usize, usize), f64>,
    delay: Duration,
    link_delay: HashMap<(usize, usize), Duration>,
    /// Partition group of each node; `None` = everyone connected.
    groups: Option<Vec<usize>>,
    codec_round_trip: bool,
    trace: Vec<TraceEntry>,
    detector: Option<Detector>,
    probes: BTreeMap<(Instant, u64), Probe>,
    sessions: HashMap<(usize, usize), Session>,
    detector_blocked: HashSet<(usize, usize)>,
    detector_rng: SplitMix64,
}

impl Lan {
    /// A LAN of routers built from `configs` (node `i` is `configs[i]`), none started yet, no
    /// loss, no delay, codec round trip on. `seed` drives packet loss only.
    pub fn new(configs: Vec<RouterConfig>, seed: u64) -> Lan {
        let start = Instant::now();
        let nodes = configs
            .into_iter()
            .map(|config| Node {
                router: Router::new(config.clone(), start),
                config,
                alive: true,
                holds_vips: false,
            })
            .collect();
        Lan {
            start,
            now: start,
            nodes,
            in_flight: BTreeMap::new(),
            seq: 0,
            rng: SplitMix64(seed),
            loss: 0.0,
            link_loss: HashMap::new(),
            delay: Duration::ZERO,
            link_delay: HashMap::new(),
            groups: None,
            codec_round_trip: true,
            trace: Vec::new(),
            detector: None,
            probes: BTreeMap::new(),
            sessions: HashMap::new(),
            detector_blocked: HashSet::new(),
            detector_rng: SplitMix64(seed ^ 0x5bd1_e995_0bfd_0bfd),
        }
    }

    /// The virtual time origin.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// `start + offset`.
    pub fn at(&self, offset: Duration) -> Instant {
        self.start + offset
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn router(&self, node: usize) -> &Router {
        &self.nodes[node].router
    }

    pub fn trace(&self) -> &[TraceEntry] {
        &self.trace
    }

    /// Turns the emit/parse round trip of every sent advert on or off.
    pub fn set_codec_round_trip(&mut self, on: bool) {
        self.codec_round_trip = on;
    }

    /// Loss probability (0.0..=1.0) of every link without its own setting.
    pub fn set_loss(&mut self, p: f64) {
        self.loss = p;
    }

    /// Loss probability of the directed link `from -> to`.
    pub fn set_link_loss(&mut self, from: usize, to: usize, p: f64) {
        self.link_loss.insert((from, to), p);
    }

    /// One-way delay of every link without its own setting.
    pub fn set_delay(&mut self, d: Duration) {
        self.delay = d;
    }

    /// One-way delay of the directed link `from -> to`.
    pub fn set_link_delay(&mut self, from: usize, to: usize, d: Duration) {
        self.link_delay.insert((from, to), d);
    }

    /// Splits the LAN: nodes in the same group hear each other, nodes in different groups do
    /// not. Nodes listed in no group form one more group together. Packets already in flight
    /// still arrive (they left before the cut).
    pub fn partition(&mut self, groups: &[&[usize]]) {
        let mut ids = vec![groups.len(); self.nodes.len()];
        for (g, members) in groups.iter().enumerate() {
            for &n in members.iter() {
                if let Some(slot) = ids.get_mut(n) {
                    *slot = g;
                }
            }
        }
        self.groups = Some(ids);
    }

    /// Reconnects everyone.
    pub fn heal(&mut self) {
        self.groups = None;
    }

    /// Runs a failure detector between every ordered pair of nodes from now on (each pair's
    /// first probe at a random offset within one interval).
    pub fn set_detector(&mut self, detector: Detector) {
        self.detector = Some(detector);
        let n = self.nodes.len();
        for from in 0..n {
            for to in (0..n).filter(|&to| to != from) {
                let offset = self.jittered(detector.interval);
                self.schedule_probe(self.now + offset, Probe::Send { from, to });
            }
        }
    }

    /// Drops (or, with `false`, passes again) the detector's probes on the directed link
    /// `from -> to` while adverts still flow: BFD alone filtered.
    pub fn block_detector(&mut self, from: usize, to: usize, blocked: bool) {
        if blocked {
            self.detector_blocked.insert((from, to));
        } else {
            self.detector_blocked.remove(&(from, to));
        }
    }

    /// Hands `node`'s router a detector report about node `about` now, as a daemon would.
    pub fn report_liveness(&mut self, node: usize, about: usize, report: Liveness) {
        let now = self.now;
        let peer = self.nodes[about].config.primary_address;
        self.record(node, TraceEvent::Liveness { about, report });
        self.nodes[node].router.handle_liveness(now, peer, report);
        self.drain(node);
    }

    /// Starts every node's router (RFC 9568 section 6.4.1) at the current time.
    pub fn start_all(&mut self) {
        for n in 0..self.nodes.len() {
            self.startup(n);
        }
    }

    pub fn startup(&mut self, node: usize) {
        let now = self.now;
        self.nodes[node].router.startup(now);
        self.drain(node);
    }

    /// The node disappears without resigning; its VIPs disappear with it.
    pub fn crash(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.alive = false;
        n.holds_vips = false;
        self.record(node, TraceEvent::Crashed);
    }

    /// A crashed node boots again: a fresh router from its configuration, started at once.
    pub fn restart(&mut self, node: usize) {
        let now = self.now;
        let n = &mut self.nodes[node];
        n.router = Router::new(n.config.clone(), now);
        n.alive = true;
        n.holds_vips = false;
        for ((_, to), session) in self.sessions.iter_mut() {
            if *to == node {
                *session = Session {
                    generation: session.generation + 1,
                    ..Session::default()
                };
            }
        }
        self.record(node, TraceEvent::Restarted);
        self.startup(node);
    }

    /// Graceful stop (make-before-break resign when Master).
    pub fn shutdown(&mut self, node: usize) {
        let now = self.now;
        self.record(node, TraceEvent::ShutdownRequested);
        self.nodes[node].router.shutdown(now);
        self.drain(node);
    }

    pub fn set_priority(&mut self, node: usize, priority: i32) {
        let now = self.now;
        self.record(node, TraceEvent::PrioritySet(priority));
        self.nodes[node].router.set_priority(now, priority);
        self.drain(node);
    }

    pub fn set_fault(&mut self, node: usize, fault: bool) {
        let now = self.now;
        self.record(node, TraceEvent::FaultSet(fault));
        self.nodes[node].router.set_fault(now, fault);
        self.drain(node);
    }

    /// Reloads a node's configuration (also used by `restart` from then on).
    pub fn reconfigure(
        &mut self,
        node: usize,
        config: RouterConfig,
    ) -> Result<(), ReconfigureError> {
        let now = self.now;
        self.nodes[node].router.reconfigure(now, config.clone())?;
        self.nodes[node].config = config;
        self.record(node, TraceEvent::Reconfigured);
        self.drain(node);
        Ok(())
    }

    /// Time of the next delivery or timer, if any.
    pub fn next_event(&self) -> Option<Instant> {
        let delivery = self.in_flight.keys().next().map(|(t, _)| *t);
        let probe = self.probes.keys().next().map(|(t, _)| *t);
        let timer = self.next_timer().map(|(t, _)| t);
        [delivery, probe, timer].into_iter().flatten().min()
    }

    /// Handles the single earliest event (a delivery wins a tie with a timer). Returns false
    /// when nothing is pending.
    pub fn step(&mut self) -> bool {
        let delivery = self.in_flight.keys().next().copied();
        let probe = self.probes.keys().next().copied();
        let timer = self.next_timer();
        let timer_at = timer.map(|(t, _)| t);
        let before_timer = |t: Instant| timer_at.is_none_or(|at| t <= at);
        match (delivery, probe, timer) {
            (Some(key), _, _) if before_timer(key.0) && probe.is_none_or(|p| key.0 <= p.0) => {
                self.deliver(key)
            }
            (_, Some(key), _) if before_timer(key.0) => self.probe(key),
            (_, _, Some((t, node))) => {
                self.now = self.now.max(t);
                let now = self.now;
                self.nodes[node].router.handle_timeout(now);
                self.drain(node);
            }
            _ => return false,
        }
        true
    }

    /// Handles every event due at or before `t`, then sets the clock to `t` (if later).
    /// Returns the number of events handled (at most [`MAX_STEPS_PER_RUN`]).
    pub fn run_until(&mut self, t: Instant) -> usize {
        let mut steps = 0;
        while steps < MAX_STEPS_PER_RUN {
            match self.next_event() {
                Some(next) if next <= t => {
                    self.step();
                    steps += 1;
                }
                _ => break,
            }
        }
        self.now = self.now.max(t);
        steps
    }

    /// `run_until(now + d)`.
    pub fn run_for(&mut self, d: Duration) -> usize {
        let t = self.now + d;
        self.run_until(t)
    }

    /// Nodes currently Master (alive only).
    pub fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&n| self.nodes[n].alive && self.nodes[n].router.state() == State::Master)
            .collect()
    }

    /// Nodes currently holding the VIPs (alive only).
    pub fn vip_holders(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&n| self.nodes[n].alive && self.nodes[n].holds_vips)
            .collect()
    }

    /// Every node's status after all trace entries at or before `t`.
    pub fn status_at(&self, t: Instant) -> Vec<NodeStatus> {
        let mut status = vec![NodeStatus::INITIAL; self.nodes.len()];
        for e in self.trace.iter().take_while(|e| e.at <= t) {
            apply(&mut status, e);
        }
        status
    }

    /// Nodes that were Master at `t` (after everything that happened at `t`).
    pub fn masters_at(&self, t: Instant) -> Vec<usize> {
        let status = self.status_at(t);
        (0..status.len())
            .filter(|&n| status[n].is_master())
            .collect()
    }

    /// Nodes that held the VIPs at `t` (after everything that happened at `t`).
    pub fn vip_holders_at(&self, t: Instant) -> Vec<usize> {
        let status = self.status_at(t);
        (0..status.len())
            .filter(|&n| status[n].alive && status[n].holds_vips)
            .collect()
    }

    /// Every moment in `[from, to]` at which, between two consecutive trace entries, no node
    /// held the VIPs, even for zero virtual time. Empty means make-before-break held.
    pub fn vip_gaps(&self, from: Instant, to: Instant) -> Vec<Instant> {
        self.scan(from, to, |s| !s.iter().any(|n| n.alive && n.holds_vips))
    }

    /// Every moment in `[from, to]` at which two or more nodes were Master at once.
    pub fn dual_master_moments(&self, from: Instant, to: Instant) -> Vec<Instant> {
        self.scan(from, to, |s| s.iter().filter(|n| n.is_master()).count() > 1)
    }

    /// Every stretch `(start, end)` within `[from, to]` during which two or more nodes were
    /// Master (one pass over the trace; a stretch still open at `to` ends there).
    pub fn dual_master_episodes(&self, from: Instant, to: Instant) -> Vec<(Instant, Instant)> {
        let mut status = vec![NodeStatus::INITIAL; self.nodes.len()];
        let mut episodes = Vec::new();
        let mut since: Option<Instant> = None;
        for e in &self.trace {
            if e.at > to {
                break;
            }
            apply(&mut status, e);
            let dual = status.iter().filter(|n| n.is_master()).count() > 1;
            match (since, dual) {
                (None, true) => since = Some(e.at),
                (Some(s), false) => {
                    if e.at >= from {
                        episodes.push((s.max(from), e.at));
                    }
                    since = None;
                }
                _ => {}
            }
        }
        if let Some(s) = since {
            episodes.push((s.max(from), to));
        }
        episodes
    }

    /// Total virtual time in `[from, to]` during which two or more nodes were Master.
    pub fn dual_master_time(&self, from: Instant, to: Instant) -> Duration {
        let mut status = vec![NodeStatus::INITIAL; self.nodes.len()];
        let mut total = Duration::ZERO;
        let mut since: Option<Instant> = None;
        let dual = |s: &[NodeStatus]| s.iter().filter(|n| n.is_master()).count() > 1;
        for e in &self.trace {
            if e.at > to {
                break;
            }
            apply(&mut status, e);
            let now_dual = dual(&status);
            match (since, now_dual) {
                (None, true) => since = Some(e.at.max(from)),
                (Some(s), false) => {
                    if e.at >= from {
                        total += e.at.saturating_duration_since(s);
                    }
                    since = None;
                }
                _ => {}
            }
        }
        if let Some(s) = since {
            total += to.saturating_duration_since(s);
        }
        total
    }

    /// State changes of one node: (time, from, to, reason).
    pub fn transitions(&self, node: usize) -> Vec<(Instant, State, State, &'static str)> {
        self.trace
            .iter()
            .filter(|e| e.node == node)
            .filter_map(|e| match e.what {
                TraceEvent::StateChanged { from, to, reason } => Some((e.at, from, to, reason)),
                _ => None,
            })
            .collect()
    }

    /// Times at which one node emitted `Action::Announce`.
    pub fn announces(&self, node: usize) -> Vec<Instant> {
        self.times(node, |w| matches!(w, TraceEvent::Announce))
    }

    /// Adverts one node sent, with their times.
    pub fn sent(&self, node: usize) -> Vec<(Instant, Advertisement)> {
        self.trace
            .iter()
            .filter(|e| e.node == node)
            .filter_map(|e| match &e.what {
                TraceEvent::Sent(a) => Some((e.at, a.clone())),
                _ => None,
            })
            .collect()
    }

    /// Times at which `node` had an advert delivered from `from` (lost ones excluded).
    pub fn deliveries(&self, node: usize, from: usize) -> Vec<Instant> {
        self.times(
            node,
            |w| matches!(w, TraceEvent::Delivered { from: f, .. } if *f == from),
        )
    }

    /// Times of the trace entries of `node` matching `pred`.
    pub fn times(&self, node: usize, pred: impl Fn(&TraceEvent) -> bool) -> Vec<Instant> {
        self.trace
            .iter()
            .filter(|e| e.node == node && pred(&e.what))
            .map(|e| e.at)
            .collect()
    }

    // ---- internals -------------------------------------------------------------------

    fn scan(
        &self,
        from: Instant,
        to: Instant,
        bad: impl Fn(&[NodeStatus]) -> bool,
    ) -> Vec<Instant> {
        let mut status = vec![NodeStatus::INITIAL; self.nodes.len()];
        let mut out = Vec::new();
        for e in &self.trace {
            if e.at > to {
                break;
            }
            apply(&mut status, e);
            if e.at >= from && bad(&status) && out.last() != Some(&e.at) {
                out.push(e.at);
            }
        }
        out
    }

    fn next_timer(&self) -> Option<(Instant, usize)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.alive)
            .filter_map(|(i, n)| n.router.poll_timeout().map(|t| (t, i)))
            .min()
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        match &self.groups {
            None => true,
            Some(g) => g.get(a) == g.get(b),
        }
    }

    fn deliver(&mut self, key: (Instant, u64)) {
        let Some(d) = self.in_flight.remove(&key) else {
            return;
        };
        self.now = self.now.max(key.0);
        if !self.nodes[d.to].alive {
            return;
        }
        self.record(
            d.to,
            TraceEvent::Delivered {
                from: d.from,
                priority: d.advert.priority,
            },
        );
        let now = self.now;
        let src = self.nodes[d.from].config.primary_address;
        self.nodes[d.to].router.handle_advert(
            now,
            Received {
                src,
                ttl: 255,
                advert: &d.advert,
                checksum_form: d.checksum_form,
            },
        );
        self.drain(d.to);
    }

    /// Carries out everything a node's router queued.
    fn drain(&mut self, node: usize) {
        while let Some(action) = self.nodes[node].router.poll_action() {
            match action {
                Action::Send(adv) => self.transmit(node, adv),
                Action::AddVips => {
                    self.nodes[node].holds_vips = true;
                    self.record(node, TraceEvent::VipsAdded);
                }
                Action::RemoveVips => {
                    self.nodes[node].holds_vips = false;
                    self.record(node, TraceEvent::VipsRemoved);
                }
                Action::UpdateVips { added, removed } => {
                    self.record(node, TraceEvent::VipsUpdated { added, removed })
                }
                Action::Announce => self.record(node, TraceEvent::Announce),
                Action::Event(ev) => {
                    let what = match ev {
                        Event::StateChanged { from, to, reason } => {
                            TraceEvent::StateChanged { from, to, reason }
                        }
                        Event::Dropped { from, reason } => TraceEvent::Dropped { from, reason },
                        Event::AddressMismatch { from } => TraceEvent::AddressMismatch { from },
                        Event::LowerPriorityMaster { from, priority } => {
                            TraceEvent::LowerPriorityMaster { from, priority }
                        }
                        Event::MasterUnreachable {
                            master,
                            takeover_at,
                        } => TraceEvent::MasterUnreachable {
                            master,
                            takeover_at,
                        },
                        Event::MasterHeardAgain { master } => {
                            TraceEvent::MasterHeardAgain { master }
                        }
                        Event::LivenessRefuted { master, until } => {
                            TraceEvent::LivenessRefuted { master, until }
                        }
                    };
                    self.record(node, what);
                }
            }
        }
    }

    fn transmit(&mut self, from: usize, adv: Advertisement) {
        self.record(from, TraceEvent::Sent(adv.clone()));
        let config = &self.nodes[from].config;
        let src = config.primary_address;
        let (advert, checksum_form) = if self.codec_round_trip {
            match round_trip(&adv, src, config.send_checksum) {
                Ok(pair) => pair,
                Err(e) => {
                    self.record(from, TraceEvent::CodecError(e));
                    return;
                }
            }
        } else {
            (adv, config.send_checksum)
        };
        for to in 0..self.nodes.len() {
            if to == from || !self.connected(from, to) {
                continue;
            }
            let p = self
                .link_loss
                .get(&(from, to))
                .copied()
                .unwrap_or(self.loss);
            // Draw for every packet (even at p = 0) so the loss pattern of one link does not
            // depend on the loss settings of the others.
            if self.rng.next_f64() < p {
                self.record(to, TraceEvent::Lost { from });
                continue;
            }
            let delay = self
                .link_delay
                .get(&(from, to))
                .copied()
                .unwrap_or(self.delay);
            let at = self.now + delay;
            self.seq += 1;
            self.in_flight.insert(
                (at, self.seq),
                Delivery {
                    from,
                    to,
                    advert: advert.clone(),
                    checksum_form,
                },
            );
        }
    }

    /// `interval` less a random 0-25 % (RFC 5880 6.8.7).
    fn jittered(&mut self, interval: Duration) -> Duration {
        interval.mul_f64(1.0 - 0.25 * self.detector_rng.next_f64())
    }

    fn schedule_probe(&mut self, at: Instant, probe: Probe) {
        self.seq += 1;
        self.probes.insert((at, self.seq), probe);
    }

    fn probe(&mut self, key: (Instant, u64)) {
        let (Some(probe), Some(detector)) = (self.probes.remove(&key), self.detector) else {
            return;
        };
        self.now = self.now.max(key.0);
        match probe {
            Probe::Send { from, to } => {
                let next = self.now + self.jittered(detector.interval);
                self.schedule_probe(next, Probe::Send { from, to });
                let p = self
                    .link_loss
                    .get(&(from, to))
                    .copied()
                    .unwrap_or(self.loss);
                let lost = self.detector_rng.next_f64() < p;
                if self.nodes[from].alive
                    && self.connected(from, to)
                    && !self.detector_blocked.contains(&(from, to))
                    && !lost
                {
                    let delay = self
                        .link_delay
                        .get(&(from, to))
                        .copied()
                        .unwrap_or(self.delay);
                    self.schedule_probe(self.now + delay, Probe::Arrive { from, to });
                }
            }
            Probe::Arrive { from, to } => {
                if !self.nodes[to].alive {
                    return;
                }
                let session = self.sessions.entry((from, to)).or_default();
                session.generation += 1;
                session.up = true;
                let (generation, was_lost) = (session.generation, session.lost);
                session.lost = false;
                let deadline = self.now + detector.detection_time();
                self.schedule_probe(
                    deadline,
                    Probe::Deadline {
                        from,
                        to,
                        generation,
                    },
                );
                if was_lost {
                    self.report_liveness(to, from, Liveness::Heard);
                }
            }
            Probe::Deadline {
                from,
                to,
                generation,
            } => {
                let session = self.sessions.entry((from, to)).or_default();
                if session.generation != generation || !session.up || session.lost {
                    return;
                }
                session.lost = true;
                if self.nodes[to].alive {
                    let detection_time = detector.detection_time();
                    self.report_liveness(to, from, Liveness::Lost { detection_time });
                }
            }
        }
    }

    fn record(&mut self, node: usize, what: TraceEvent) {
        self.trace.push(TraceEntry {
            at: self.now,
            node,
            what,
        });
    }
}

fn apply(status: &mut [NodeStatus], e: &TraceEntry) {
    let Some(s) = status.get_mut(e.node) else {
        return;
    };
    match &e.what {
        TraceEvent::StateChanged { to, .. } => s.state = *to,
        TraceEvent::VipsAdded => s.holds_vips = true,
        TraceEvent::VipsRemoved => s.holds_vips = false,
        TraceEvent::Crashed => {
            s.alive = false;
            s.holds_vips = false;
        }
        TraceEvent::Restarted => *s = NodeStatus::INITIAL,
        _ => {}
    }
}

/// Emits `adv` as the node would put it on the wire and parses it back as a receiver would.
fn round_trip(
    adv: &Advertisement,
    src: IpAddr,
    form: crate::packet::ChecksumForm,
) -> Result<(Advertisement, crate::packet::ChecksumForm), String> {
    let dst = if src.is_ipv4() {
        VRRP_GROUP_V4
    } else {
        VRRP_GROUP_V6
    };
    let mut buf = vec![0u8; adv.buffer_len(crate::packet::AddressFamily::of(src))];
    let len = adv
        .emit(&mut buf, src, dst, form)
        .map_err(|e| format!("emit: {e}"))?;
    let bytes = buf
        .get(..len)
        .ok_or_else(|| format!("emit returned length {len}"))?;
    Advertisement::parse(bytes, src, dst).map_err(|e| format!("parse: {e}"))
}
