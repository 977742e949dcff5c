//! The per-virtual-router state machine (RFC 9568 section 6), sans-I/O.
//!
//! CONTRACT (the daemon drives it exactly like this):
//! ```text
//! let mut r = Router::new(config, now);     // state Initialize, nothing queued
//! r.startup(now);                           // RFC 6.4.1
//! loop {
//!     // on a received, already-decoded advert for this VRID:
//!     r.handle_advert(now, Received { src, ttl, advert: &adv, checksum_form });
//!     // when now >= r.poll_timeout():
//!     r.handle_timeout(now);
//!     // health tracking changed the effective priority / fault state:
//!     r.set_priority(now, p);  r.set_fault(now, true|false);
//!     // a fast failure detector (BFD) lost a peer, or heard it again:
//!     r.handle_liveness(now, peer, Liveness::Lost { detection_time } | Liveness::Heard);
//!     // after every input, drain:
//!     while let Some(a) = r.poll_action() { ... }
//! }
//! r.shutdown(now);   // make-before-break resign; keep driving until r.is_stopped()
//! // reload: r.reconfigure(now, new_config)? ; Err(IdentityChanged) (vrid, version or family
//! // changed) means: shut this router down and create a new one.
//! ```
//!
//! Actions: `AddVips` / `RemoveVips` mean all of `config().vips`; `UpdateVips { added, removed }`
//! is only emitted by `reconfigure` while the VIPs are held. The driver carries them out in order.

use std::cell::Cell;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::liveness::{liveness_skew, HoldDown, Liveness, LivenessState};
use crate::packet::{Advertisement, Auth, ChecksumForm, Version};
use crate::reassert::ReassertGuard;
use crate::sync_group::SyncCommand;
use crate::timer_table::{Timer, TimerTable};

pub use crate::state::State;

/// How the received TTL / hop limit is checked (RFC 9568 section 7.1 requires 255 for multicast).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlPolicy {
    /// Drop anything whose TTL/hop limit is not 255 (multicast; the RFC rule).
    Require255,
    /// Accept an inclusive range (unicast peers behind routers, as keepalived's min/max_ttl).
    Range { min: u8, max: u8 },
}

/// Static configuration of one virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    pub version: Version,
    pub vrid: u8,
    /// Configured (base) priority, 1..=255. 255 = address owner.
    pub priority: u8,
    /// Our advertisement interval.
    pub advert_interval: Duration,
    /// This router's primary address on the interface (v4: the interface's primary IPv4;
    /// v6: its link-local). Used for the tie-break on equal priority.
    pub primary_address: IpAddr,
    /// Virtual addresses, all one family, same family as `primary_address`.
    pub vips: Vec<IpAddr>,
    pub preempt: bool,
    /// v2 only.
    pub auth: Auth,
    /// Checksum form used when sending v3 over IPv4.
    pub send_checksum: ChecksumForm,
    pub ttl_policy: TtlPolicy,
    /// Make-before-break bound: how long a resigning Master keeps the VIPs waiting for
    /// another router's advert before removing them anyway.
    pub resign_wait: Duration,
    /// Announce (GARP / unsolicited NA) again this long after becoming Master. `None` = never.
    pub announce_repeat_after: Option<Duration>,
    /// Periodic re-announce while Master. `None` = never.
    pub announce_refresh: Option<Duration>,
    /// Which source addresses may take part in the election (unicast source checking).
    pub sources: SourceFilter,
}

/// Which senders' adverts the router acts on.
///
/// VRRPv3 has no authentication (RFC 9568 section 9), so on a shared segment any host can
/// send an advert. In unicast mode the peers are known, and an advert from anyone else is
/// either a misconfiguration or an attack: with [`SourceFilter::Only`] it is dropped and
/// counted ([`drop_reason::SOURCE`]) before it can change any state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SourceFilter {
    /// Any source (multicast, or unicast without source checking: keepalived's default).
    #[default]
    Any,
    /// Only these addresses (the unicast peers plus any explicitly admitted sender, such as
    /// the bootstrap node during the OpenShift hand-off).
    Only(Vec<IpAddr>),
}

impl SourceFilter {
    /// True when an advert from `src` may be used.
    pub fn admits(&self, src: IpAddr) -> bool {
        match self {
            SourceFilter::Any => true,
            SourceFilter::Only(list) => list.contains(&src),
        }
    }
}

/// A decoded advert plus what the socket layer learnt about it.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub src: IpAddr,
    /// IPv4 TTL or IPv6 hop limit as received.
    pub ttl: u8,
    pub advert: &'a Advertisement,
    /// Which checksum form verified (informational; counted).
    pub checksum_form: ChecksumForm,
}

/// What the driver must do. Drained with [`Router::poll_action`], in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this advertisement (to multicast or to every unicast peer).
    Send(Advertisement),
    /// Assign all VIPs to the interface.
    AddVips,
    /// Remove all VIPs from the interface.
    RemoveVips,
    /// A reload changed the VIP set while they are held: add `added`, remove `removed`, keep
    /// the rest (no flap). `config()` already lists the new set.
    UpdateVips {
        added: Vec<IpAddr>,
        removed: Vec<IpAddr>,
    },
    /// Send gratuitous ARP / unsolicited NA for all VIPs (a burst; count is the driver's).
    Announce,
    /// Something worth logging / counting / showing in status.
    Event(Event),
}

/// Observable events (the driver logs them, rate-limited where noted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    StateChanged {
        from: State,
        to: State,
        reason: &'static str,
    },
    /// An advert was dropped; `reason` is a stable snake_case label also used as a metric label
    /// (see [`drop_reason`]). One per dropped packet: the driver rate-limits logging.
    Dropped { from: IpAddr, reason: &'static str },
    /// The address owner (priority 255) advertises an address list that differs from ours.
    /// RFC 9568 section 7.1: logged, and the advert is still used because it comes from the
    /// owner. From anyone else a differing list is dropped instead ([`Event::Dropped`] with
    /// [`drop_reason::ADDRESS_LIST`]). One per advert: the driver rate-limits logging.
    AddressMismatch { from: IpAddr },
    /// Another router claims Master with a lower priority than ours while we are Master.
    LowerPriorityMaster { from: IpAddr, priority: u8 },
    /// The failure detector lost the Master: this Backup takes over at `takeover_at` unless
    /// the Master shows a sign of life first (see [`crate::liveness`]).
    MasterUnreachable {
        master: IpAddr,
        takeover_at: Instant,
    },
    /// The Master the detector had lost showed a sign of life before the take-over (a
    /// detector packet or an advert): the Master_Down_Timer is back on the advert's schedule.
    MasterHeardAgain { master: IpAddr },
    /// We took over because the detector lost `master`, and `master` is still advertising: the
    /// report was wrong. Reports about it are ignored until `until` (plain VRRP timing).
    LivenessRefuted { master: IpAddr, until: Instant },
}

/// Per-instance counters in the spirit of RFC 8347 (ietf-vrrp statistics). `adverts_rx` and
/// the checksum counters count every advert handed to `handle_advert`, dropped or not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub adverts_rx: u64,
    pub adverts_tx: u64,
    pub priority_zero_rx: u64,
    pub priority_zero_tx: u64,
    pub master_transitions: u64,
    pub transitions: u64,
    /// Adverts whose address list differs from ours (dropped unless from the owner).
    pub address_list_mismatch: u64,
    /// Adverts from a source the [`SourceFilter`] does not admit (dropped).
    pub drop_source: u64,
    /// Adverts dropped for their address list (a subset of `address_list_mismatch`: the
    /// owner's are used).
    pub drop_address_list: u64,
    pub checksum_pseudo_header_rx: u64,
    pub checksum_plain_rx: u64,
    pub drop_ttl: u64,
    pub drop_version: u64,
    pub drop_vrid: u64,
    pub drop_auth: u64,
    pub drop_interval: u64,
    pub drop_family: u64,
    /// Our own advert came back (see [`drop_reason::OWN_ADDRESS`]).
    pub drop_own_address: u64,
    /// Adverts from a lower-priority router that also claims Master while we are Master.
    pub lower_priority_master_rx: u64,
    /// `Action::Announce` emitted (becoming Master, repeat, refresh, re-assert, reload).
    pub announces: u64,
    /// Failure-detector reports that lost the current Master and shortened the timer.
    pub liveness_lost: u64,
    /// Of those, how many ended in a take-over / were cancelled by a sign of life.
    pub liveness_takeovers: u64,
    pub liveness_cancelled: u64,
    /// Take-overs a report caused that the lost Master's own advert then refuted.
    pub liveness_refuted: u64,
    /// Reports ignored: about a router that is not the Master, in the wrong state, or held down.
    pub liveness_ignored: u64,
}

/// What the router currently believes about the Master (for status output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MasterInfo {
    pub address: IpAddr,
    pub priority: u8,
    pub interval: Duration,
    pub last_seen: Instant,
}

/// Stable `reason` labels of [`Event::Dropped`] (also metric label values). One per validation
/// step of [`Router::handle_advert`], in the order the steps run.
pub mod drop_reason {
    /// TTL / hop limit outside the configured [`super::TtlPolicy`] (RFC 9568 section 7.1).
    pub const TTL: &str = "ttl";
    /// The advert's version is not this instance's version.
    pub const VERSION: &str = "version_mismatch";
    /// The advert is for another virtual router id.
    pub const VRID: &str = "vrid_mismatch";
    /// Source or virtual addresses are not of this instance's address family.
    pub const FAMILY: &str = "family_mismatch";
    /// VRRPv2 authentication type or password differs (RFC 3768 section 7.1).
    pub const AUTH: &str = "auth_mismatch";
    /// VRRPv2 advertisement interval differs from ours (RFC 3768 section 7.1), or a v3 interval of 0.
    pub const INTERVAL: &str = "interval_mismatch";
    /// The advert carries our own primary address as its source: our own packet looped back
    /// (multicast loop, or a unicast peer list that names this node).
    pub const OWN_ADDRESS: &str = "own_address";
    /// The source is not admitted by the instance's [`super::SourceFilter`]: not a configured
    /// unicast peer nor an explicitly accepted sender.
    pub const SOURCE: &str = "unknown_source";
    /// The advert lists other virtual addresses than ours and does not come from the address
    /// owner (RFC 9568 section 7.1: "MUST drop the packet"). Typically another cluster on the
    /// same segment that derived the same VRID.
    pub const ADDRESS_LIST: &str = "address_list_mismatch";
}

/// Why [`Router::reconfigure`] refused a new configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconfigureError {
    /// vrid, version and address family identify the virtual router on the wire; changing one
    /// is a different virtual router, so the daemon must shut this one down and create a new one.
    #[error(
        "`{field}` changed from {old} to {new}: that is a different virtual router; \
         shut this instance down and start a new one"
    )]
    IdentityChanged {
        field: &'static str,
        old: String,
        new: String,
    },
}

/// A configuration the state machine cannot run correctly. Each variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("vrid 0 is invalid; a VRID is 1..=255 (RFC 9568 section 5.2.3)")]
    ZeroVrid,
    #[error(
        "priority 0 is reserved for a resigning Master; configure 1..=255 (RFC 9568 section 5.2.4)"
    )]
    ZeroPriority,
    #[error(
        "advert_interval {0:?} is out of range: v3 accepts 10 ms..=40.95 s in whole centiseconds, \
         v2 1 s..=255 s in whole seconds"
    )]
    AdvertInterval(Duration),
    #[error("VRRPv2 carries IPv4 only, but primary_address is {0}")]
    V2NeedsIpv4(IpAddr),
    #[error("vips is empty; an advert must carry at least one address (RFC 9568 section 5.2.5)")]
    NoVips,
    #[error("vip {vip} is not of the same address family as primary_address {primary}")]
    VipFamily { vip: IpAddr, primary: IpAddr },
    #[error("ttl_policy range min {min} > max {max}")]
    TtlRange { min: u8, max: u8 },
}

impl RouterConfig {
    /// Checks what the state machine relies on. The router never panics on a config that fails
    /// this check, but it cannot then interoperate correctly, so the daemon should refuse it.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.vrid == 0 {
            return Err(ConfigError::ZeroVrid);
        }
        if self.priority == 0 {
            return Err(ConfigError::ZeroPriority);
        }
        if crate::timers::check_interval(self.version, self.advert_interval).is_err() {
            return Err(ConfigError::AdvertInterval(self.advert_interval));
        }
        if self.version == Version::V2 && !self.primary_address.is_ipv4() {
            return Err(ConfigError::V2NeedsIpv4(self.primary_address));
        }
        if self.vips.is_empty() {
            return Err(ConfigError::NoVips);
        }
        if let Some(vip) = self
            .vips
            .iter()
            .find(|v| v.is_ipv4() != self.primary_address.is_ipv4())
        {
            return Err(ConfigError::VipFamily {
                vip: *vip,
                primary: self.primary_address,
            });
        }
        if let TtlPolicy::Range { min, max } = self.ttl_policy {
            if min > max {
                return Err(ConfigError::TtlRange { min, max });
            }
        }
        Ok(())
    }
}

/// Shortest period any repeating timer is allowed to have. A zero interval (a config that
/// failed [`RouterConfig::check`]) would otherwise make `handle_timeout` spin; 10 ms is the
/// smallest interval v3 can express (1 centisecond).
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// After answering a lower-priority Master, announce once more this long after. Two
/// equal-priority Backups time out within a millisecond of each other (same Skew_Time) and both
/// announce; the one that then yields must not have the last word in the clients' ARP caches
/// (seen in the namespace lab). The follow-up covers a claimant whose announcement was delayed.
pub const REASSERT_FOLLOW_UP: Duration = Duration::from_millis(150);

/// Upper bound on timer expiries handled in one `handle_timeout` call. Each expiry moves its
/// deadline past `now`, so real calls need at most a handful; this only bounds a logic error.
const MAX_EXPIRIES_PER_CALL: usize = 64;

/// `now + d`, or `None` ("never") if that is not representable. `Instant + Duration` panics
/// on overflow, and `resign_wait` / announce settings come from configuration.
fn after(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(d)
}

/// Next deadline of a repeating timer that fired at `deadline` and is being handled at `now`.
///
/// Decision (documented in docs/architecture.md): the schedule stays on its grid
/// (`deadline + period`), so a timer handled a little late does not drift; if the handler is
/// so late that the next slot has also passed, it restarts from `now` instead of sending a
/// burst of catch-up adverts.
fn next_on_grid(deadline: Instant, now: Instant, period: Duration) -> Option<Instant> {
    let period = period.max(MIN_PERIOD);
    match deadline.checked_add(period) {
        Some(next) if next > now => Some(next),
        _ => after(now, period),
    }
}

/// The address owner's priority (RFC 9568 section 6.1).
const OWNER_PRIORITY: u8 = 255;

/// True when both lists hold the same set of addresses, in any order and ignoring repeats.
/// Allocation-free: address lists are short (a handful of VIPs), so the quadratic scan is
/// cheaper than sorting copies on every received advert.
fn same_address_list(theirs: &[IpAddr], ours: &[IpAddr]) -> bool {
    // The same list in the same order, as every advert of a peer configured like us: one pass.
    theirs == ours
        || (theirs.iter().all(|a| ours.contains(a)) && ours.iter().all(|a| theirs.contains(a)))
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// Clamps a tracked priority: the owner's 255 is never changed by tracking (RFC 9568 section
/// 6.1: 255 is reserved for the address owner), and tracking can neither reach 255 nor 0
/// (0 means "resigning" on the wire).
fn clamp_priority(base: u8, requested: i32) -> u8 {
    if base == 255 {
        255
    } else {
        // The clamp bounds the value to 1..=254, so the conversion cannot fail.
        u8::try_from(requested.clamp(1, 254)).unwrap_or(1)
    }
}

/// One VRRP virtual router: RFC 9568 section 6.4 (VRRPv2 per RFC 3768 section 6.4 when
/// configured), plus Fault and make-before-break Resigning. See the module CONTRACT.
#[derive(Debug, Clone)]
pub struct Router {
    config: RouterConfig,
    state: State,
    /// `shutdown` completed: back in Initialize and never to act again.
    stopped: bool,
    /// `shutdown` was called (the router is Resigning or stopped).
    shutting_down: bool,
    /// Health tracking says this instance must not hold the VIPs.
    fault: bool,
    /// Last value passed to `set_priority`, unclamped, so a reload can keep the tracking offset.
    requested_priority: Option<i32>,
    effective_priority: u8,
    /// RFC 9568 section 6.1 Master_Adver_Interval: ours at start, then the Master's (v3).
    master_adver_interval: Duration,
    /// Every running protocol timer (see [`Timer`]).
    timers: TimerTable,
    /// The Announce at `announce_repeat_after` is still due (the next one is a refresh).
    announce_repeat_pending: bool,
    /// When the current Master term began (anchor of `announce_repeat_after`).
    master_since: Option<Instant>,
    /// Last time we announced because of a competing Master (or became Master): rate limit.
    last_reassert: Option<Instant>,
    /// Which lower-priority Masters' claims still get an extra announcement in this window.
    reassert_guard: ReassertGuard,
    /// Failure-detector reports: a shortened Master_Down_Timer, the take-over it caused, the
    /// hold-down after a refuted one (`liveness.rs`).
    liveness: LivenessState,
    /// Resigning because the sync group asked: ends in Backup, not stopped.
    stepping_down: bool,
    last_advert_tx: Option<Instant>,
    peer_master: Option<MasterInfo>,
    actions: VecDeque<Action>,
    counters: Counters,
    /// An address list handed back by [`Router::recycle`], reused by the next advert sent.
    spare_addresses: Option<Vec<IpAddr>>,
    /// The last Master_Down_Interval and the (version, priority, interval) it is for.
    mdi_cache: Cell<Option<MdiCache>>,
}

type MdiCache = ((Version, u8, Duration), Duration);

impl Router {
    /// A router in Initialize with nothing queued. Call [`Router::startup`] to run it.
    pub fn new(config: RouterConfig, _now: Instant) -> Self {
        let effective_priority = clamp_priority(config.priority, i32::from(config.priority));
        let master_adver_interval = config.advert_interval;
        Router {
            config,
            state: State::Initialize,
            stopped: false,
            shutting_down: false,
            fault: false,
            requested_priority: None,
            effective_priority,
            master_adver_interval,
            timers: TimerTable::default(),
            announce_repeat_pending: false,
            master_since: None,
            last_reassert: None,
            reassert_guard: ReassertGuard::default(),
            liveness: LivenessState::default(),
            stepping_down: false,
            last_advert_tx: None,
            peer_master: None,
            actions: VecDeque::new(),
            spare_addresses: None,
            mdi_cache: Cell::new(None),
            counters: Counters::default(),
        }
    }

    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The priority we advertise now (base priority plus tracking, clamped).
    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    /// True once `shutdown` has completed (including the make-before-break wait).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The Master as this router sees it: itself while Master or Resigning, otherwise the
    /// router whose advert it last accepted (cleared when that router resigns).
    pub fn master(&self) -> Option<MasterInfo> {
        match self.state {
            State::Master | State::Resigning => Some(MasterInfo {
                address: self.config.primary_address,
                priority: if self.state == State::Resigning {
                    0
                } else {
                    self.effective_priority
                },
                interval: self.config.advert_interval,
                last_seen: self.last_advert_tx.or(self.master_since)?,
            }),
            State::Backup | State::Fault => self.peer_master,
            State::Initialize => None,
        }
    }

    /// The Master_Adver_Interval in use (RFC 9568 section 6.1): ours, or the one adopted from
    /// the Master's adverts (v3).
    pub fn master_adver_interval(&self) -> Duration {
        self.master_adver_interval
    }

    /// Next queued action, in the order they must be carried out.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Gives back the advertisement of an [`Action::Send`] once it has been sent, so the next
    /// one reuses its address list instead of allocating one (a Master at 10 ms adverts sends
    /// a hundred a second). Optional: without it every advert allocates its own.
    pub fn recycle(&mut self, advert: Advertisement) {
        self.spare_addresses = Some(advert.addresses);
    }

    /// Earliest time at which [`Router::handle_timeout`] must be called; `None` when no timer
    /// runs (Initialize, Fault, stopped).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next().map(|(_, at)| at)
    }

    /// The timer that fires next, by name, and when: "what is the next deadline and why".
    pub fn next_timer(&self) -> Option<(Timer, Instant)> {
        self.timers.next()
    }

    /// Every protocol timer and its deadline (stopped timers are `None`).
    pub fn timers(&self) -> &TimerTable {
        &self.timers
    }

    /// RFC 9568 section 6.4.1 (Initialize): the owner (priority 255) becomes Master at once,
    /// everyone else Backup with Master_Down_Timer = Master_Down_Interval. A router whose
    /// fault flag is already set goes to Fault. Ignored unless in Initialize.
    pub fn startup(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        self.stopped = false;
        self.shutting_down = false;
        if self.fault {
            self.transition(State::Fault, "startup with a tracked check in fault");
        } else if self.effective_priority == 255 {
            self.become_master(now, "startup as address owner (priority 255)");
        } else {
            self.become_backup_fresh(now, "startup");
        }
    }

    /// Handles one received, already-decoded advertisement for this instance.
    ///
    /// Validation runs in this order, each failure counted and reported as
    /// [`Event::Dropped`] with a [`drop_reason`] label: TTL policy, version, VRID, address
    /// family, v2 authentication, v2 interval, own source address, source filter, address list.
    /// A dropped advert changes no state and no timer.
    ///
    /// Address list (RFC 9568 section 7.1): a list that differs from ours is dropped unless the
    /// sender is the address owner (priority 255), whose advert is used and reported as
    /// [`Event::AddressMismatch`]. Obeying a foreign list would let another cluster that
    /// happens to share our VRID silence us, leaving our VIPs unheld.
    pub fn handle_advert(&mut self, now: Instant, rx: Received<'_>) {
        self.counters.adverts_rx += 1;
        match rx.checksum_form {
            ChecksumForm::PseudoHeader => self.counters.checksum_pseudo_header_rx += 1,
            ChecksumForm::Plain => self.counters.checksum_plain_rx += 1,
        }
        if self.state == State::Initialize {
            // Not participating (not started, or stopped): nothing to decide.
            return;
        }
        if let Some(reason) = self.validate(&rx) {
            self.actions.push_back(Action::Event(Event::Dropped {
                from: rx.src,
                reason,
            }));
            return;
        }
        let adv = rx.advert;
        if adv.priority == 0 {
            self.counters.priority_zero_rx += 1;
        }
        if adv.priority == OWNER_PRIORITY && !self.same_address_list(&adv.addresses) {
            self.counters.address_list_mismatch += 1;
            self.actions
                .push_back(Action::Event(Event::AddressMismatch { from: rx.src }));
        }
        match self.state {
            State::Initialize => {}
            State::Backup => self.backup_rx(now, rx.src, adv),
            State::Master => self.master_rx(now, rx.src, adv),
            State::Fault => self.note_peer(now, rx.src, adv),
            State::Resigning => {
                // Make-before-break: any advert with priority > 0 proves another router is now
                // Master (it only sends adverts as Master), so the VIPs can go.
                if adv.priority > 0 {
                    self.finish_resign(now, "resigned: another router is advertising as Master");
                }
            }
        }
    }

    /// Fires every timer whose deadline is at or before `now`, earliest first, each by name.
    pub fn handle_timeout(&mut self, now: Instant) {
        for _ in 0..MAX_EXPIRIES_PER_CALL {
            let Some((timer, deadline)) = self.timers.expired(now) else {
                return;
            };
            self.timers.stop(timer);
            self.fire(timer, deadline, now);
        }
    }

    fn fire(&mut self, timer: Timer, deadline: Instant, now: Instant) {
        match (timer, self.state) {
            (Timer::MasterDown, State::Backup) => match self.liveness.pending.take() {
                // RFC 9568 section 6.4.2: Master_Down_Timer fired.
                None => self.become_master(now, "master down timer expired"),
                // Brought forward by a failure-detector report (liveness.rs).
                Some(lost) => {
                    self.counters.liveness_takeovers += 1;
                    self.become_master(
                        now,
                        "master unreachable: the failure detector (BFD) lost it",
                    );
                    self.liveness.takeover = Some((lost, now));
                }
            },
            (Timer::Adver, State::Master) => {
                // RFC 9568 section 6.4.3: Adver_Timer fired: send and reset.
                self.send_advert(now, self.effective_priority);
                self.timers.set(
                    Timer::Adver,
                    next_on_grid(deadline, now, self.config.advert_interval),
                );
            }
            (Timer::Adver, State::Resigning) => {
                // Repeat the priority-0 advert until someone takes over: a single lost packet
                // would otherwise cost the Backups a full Master_Down_Interval.
                self.send_advert(now, 0);
                self.timers.set(
                    Timer::Adver,
                    next_on_grid(deadline, now, self.config.advert_interval),
                );
            }
            (Timer::Announce, State::Master) => self.announce_timer_fired(now, deadline),
            (Timer::ReassertFollowUp, State::Master) => self.announce(),
            (Timer::ResignWait, State::Resigning) => {
                self.finish_resign(now, "resign wait expired without another Master's advert");
            }
            // A timer left running in a state it does not belong to (every transition stops
            // them, so this is unreachable by design): firing it is a no-op.
            _ => {}
        }
    }

    /// Sets the effective priority from health tracking (`base + weights`, any integer; it is
    /// clamped to 1..=254, and a configured 255 never changes). A Master whose priority changes
    /// advertises the new value at once so Backups can preempt without waiting a full interval.
    pub fn set_priority(&mut self, now: Instant, priority: impl Into<i32>) {
        let requested = priority.into();
        self.requested_priority = Some(requested);
        self.apply_priority(now, clamp_priority(self.config.priority, requested));
    }

    /// Raises or clears the fault state (a tracked check with weight 0 failed).
    ///
    /// Raising: a Master sends a priority-0 advert (so Backups take over after Skew_Time, as in
    /// RFC 9568 section 6.4.3 shutdown) and removes the VIPs; a Backup stops its timer. Clearing:
    /// Backup with a fresh Master_Down_Timer, or Master at once for the owner (section 6.4.1).
    /// While Resigning or before startup only the flag is recorded.
    pub fn set_fault(&mut self, now: Instant, fault: bool) {
        if self.fault == fault {
            return;
        }
        self.fault = fault;
        match (self.state, fault) {
            (State::Master, true) => {
                self.send_advert(now, 0);
                self.actions.push_back(Action::RemoveVips);
                self.clear_master_timers();
                self.transition(State::Fault, "tracked check failed (fault) while Master");
            }
            (State::Backup, true) => {
                self.timers.stop(Timer::MasterDown);
                self.transition(State::Fault, "tracked check failed (fault) while Backup");
            }
            (State::Fault, false) => {
                if self.effective_priority == 255 {
                    self.become_master(now, "fault cleared, address owner (priority 255)");
                } else {
                    self.become_backup_fresh(now, "fault cleared");
                }
            }
            _ => {}
        }
    }

    /// A fast failure detector's report about `peer` ([`crate::liveness`]: the rules and why).
    ///
    /// - `Lost` about the Master this Backup last heard: the Master_Down_Timer is brought
    ///   forward to `now + Liveness_Skew` (never later than it already runs), with
    ///   `Liveness_Skew = ((256 - Priority) * Detection_Time) / 256`; the detection time is
    ///   capped at Master_Down_Interval (a slower detector changes nothing).
    /// - `Heard` about that Master before the timer fires: the timer goes back to the schedule
    ///   of the Master's last advert, and nothing else changes.
    ///
    /// Ignored (and counted in `liveness_ignored`): a report in any state but Backup, about a
    /// router that is not the Master, or about a Master whose earlier report was refuted and
    /// is still held down ([`crate::liveness::HoldDown`]).
    pub fn handle_liveness(&mut self, now: Instant, peer: IpAddr, liveness: Liveness) {
        match liveness {
            Liveness::Lost { detection_time } => self.master_lost(now, peer, detection_time),
            Liveness::Heard => {
                if self.state == State::Backup && self.liveness.pending == Some(peer) {
                    self.cancel_liveness_takeover(peer);
                    self.restore_master_down_timer(now);
                }
            }
        }
    }

    /// A command of this router's sync group ([`crate::sync_group`]): become Master with the
    /// others (from Backup), step down with them make-before-break (from Master), or share
    /// their Fault. Anything else is ignored.
    pub fn sync(&mut self, now: Instant, command: SyncCommand) {
        match (command, self.state) {
            (SyncCommand::BecomeMaster, State::Backup) => {
                self.become_master(now, "sync group: another member became Master")
            }
            (SyncCommand::StepDown, State::Master) => self.step_down(now),
            (SyncCommand::Fault(fault), _) => self.set_fault(now, fault),
            _ => {}
        }
    }

    /// What the router remembers of failure-detector reports (status output).
    pub fn liveness(&self) -> &LivenessState {
        &self.liveness
    }

    /// Starts a graceful stop.
    ///
    /// Backup / Fault: straight to Initialize (stopped). Master: sends a priority-0 advert
    /// (RFC 9568 section 6.4.3) but, unlike the RFC, keeps the VIPs (state Resigning) until the
    /// first advert with priority > 0 from another router shows a new Master, or `resign_wait`
    /// expires; the priority-0 advert is repeated every advert interval meanwhile. This closes
    /// the Skew_Time window in which nobody would answer for the VIPs. Keep driving the router
    /// until [`Router::is_stopped`].
    pub fn shutdown(&mut self, now: Instant) {
        if self.stopped || self.shutting_down {
            return;
        }
        self.shutting_down = true;
        match self.state {
            State::Initialize => self.stopped = true,
            State::Backup | State::Fault => {
                self.timers.stop(Timer::MasterDown);
                self.transition(State::Initialize, "shutdown");
                self.stopped = true;
            }
            State::Master => {
                self.send_advert(now, 0);
                self.clear_master_timers();
                self.transition(
                    State::Resigning,
                    "shutdown: resigning, VIPs kept until a new Master is seen",
                );
                match after(now, self.config.resign_wait) {
                    Some(_) if self.config.resign_wait.is_zero() => {
                        self.finish_resign(now, "shutdown with resign_wait 0")
                    }
                    // `None` (unrepresentable): wait only for another Master's advert.
                    deadline => {
                        self.timers.set(Timer::ResignWait, deadline);
                        self.restart_adver_timer(now);
                    }
                }
            }
            // A sync group's step-down in progress: it now ends stopped.
            State::Resigning => self.stepping_down = false,
        }
    }

    /// Applies a reloaded configuration without disturbing the election where possible.
    ///
    /// - `vrid`, `version` or the address family changed: refused with
    ///   [`ReconfigureError::IdentityChanged`]; nothing changes. The daemon shuts this router
    ///   down and creates a new one (it is a different virtual router on the wire).
    /// - Priority: the tracking offset last given to `set_priority` is kept relative to the
    ///   new base. Preempt, announce, auth, TTL, checksum, resign settings: stored.
    /// - The state is kept: no pass through Backup, no VIP flap (keepalived's reload flaps).
    /// - While Master or Resigning, a changed VIP set is applied with [`Action::UpdateVips`]
    ///   (and an Announce for added ones while Master); a Master whose advert content
    ///   (priority, interval, addresses) changed advertises at once.
    pub fn reconfigure(&mut self, now: Instant, new: RouterConfig) -> Result<(), ReconfigureError> {
        let old = &self.config;
        if old.vrid != new.vrid {
            return Err(ReconfigureError::IdentityChanged {
                field: "vrid",
                old: old.vrid.to_string(),
                new: new.vrid.to_string(),
            });
        }
        if old.version != new.version {
            return Err(ReconfigureError::IdentityChanged {
                field: "version",
                old: format!("{:?}", old.version),
                new: format!("{:?}", new.version),
            });
        }
        if !same_family(old.primary_address, new.primary_address) {
            return Err(ReconfigureError::IdentityChanged {
                field: "address family (primary_address)",
                old: old.primary_address.to_string(),
                new: new.primary_address.to_string(),
            });
        }
        let removed: Vec<IpAddr> = old
            .vips
            .iter()
            .filter(|v| !new.vips.contains(v))
            .copied()
            .collect();
        let added: Vec<IpAddr> = new
            .vips
            .iter()
            .filter(|v| !old.vips.contains(v))
            .copied()
            .collect();
        let interval_changed = old.advert_interval != new.advert_interval;
        let announce_changed = old.announce_repeat_after != new.announce_repeat_after
            || old.announce_refresh != new.announce_refresh;
        let offset = self.requested_priority.map(|r| r - i32::from(old.priority));
        let old_priority = self.effective_priority;

        self.config = new;
        let requested = i32::from(self.config.priority) + offset.unwrap_or(0);
        if offset.is_some() {
            self.requested_priority = Some(requested);
        }
        self.effective_priority = clamp_priority(self.config.priority, requested);

        let holds_vips = matches!(self.state, State::Master | State::Resigning);
        if holds_vips && !(added.is_empty() && removed.is_empty()) {
            self.actions.push_back(Action::UpdateVips {
                added: added.clone(),
                removed: removed.clone(),
            });
        }
        if self.state == State::Master {
            if !added.is_empty() {
                self.announce();
            }
            let content_changed = old_priority != self.effective_priority
                || interval_changed
                || !added.is_empty()
                || !removed.is_empty();
            if content_changed {
                self.send_advert(now, self.effective_priority);
                self.restart_adver_timer(now);
            }
            if announce_changed {
                self.schedule_announce_after_reload(now);
            }
        }
        if self.config.version == Version::V2 || self.state == State::Initialize {
            // v2 always times the Master with its own configured interval (RFC 3768 has no
            // adoption); a router not yet running starts from its own interval (6.4.1).
            self.master_adver_interval = self.config.advert_interval;
        }
        Ok(())
    }

    // ---- internals -------------------------------------------------------------------

    fn validate(&mut self, rx: &Received<'_>) -> Option<&'static str> {
        let adv = rx.advert;
        let c = &mut self.counters;
        // RFC 9568 section 7.1: "MUST verify that the IPvX TTL/Hop Limit is 255".
        let ttl_ok = match self.config.ttl_policy {
            TtlPolicy::Require255 => rx.ttl == 255,
            TtlPolicy::Range { min, max } => (min..=max).contains(&rx.ttl),
        };
        if !ttl_ok {
            c.drop_ttl += 1;
            return Some(drop_reason::TTL);
        }
        if adv.version != self.config.version {
            c.drop_version += 1;
            return Some(drop_reason::VERSION);
        }
        // RFC 9568 section 7.1: "MUST verify that the VRID is configured on the receiving
        // interface"; the daemon demultiplexes, this catches a mis-routed packet.
        if adv.vrid != self.config.vrid {
            c.drop_vrid += 1;
            return Some(drop_reason::VRID);
        }
        let family_ok = same_family(rx.src, self.config.primary_address)
            && adv
                .addresses
                .iter()
                .all(|a| same_family(*a, self.config.primary_address));
        if !family_ok {
            c.drop_family += 1;
            return Some(drop_reason::FAMILY);
        }
        if self.config.version == Version::V2 {
            // RFC 3768 section 7.1: auth type and data must match the local configuration.
            if adv.auth != self.config.auth {
                c.drop_auth += 1;
                return Some(drop_reason::AUTH);
            }
            // RFC 3768 section 7.1: "MUST verify that the Adver Interval in the packet is the
            // same as the locally configured" one. (v3 adopts it instead, section 6.4.2.)
            if adv.interval_cs != crate::timers::interval_to_cs(self.config.advert_interval) {
                c.drop_interval += 1;
                return Some(drop_reason::INTERVAL);
            }
        } else if adv.interval_cs == 0 {
            // Not a valid v3 Max Adver Int (the codec refuses it); adopting it would make
            // Master_Down_Interval zero and every Backup take over at once.
            c.drop_interval += 1;
            return Some(drop_reason::INTERVAL);
        }
        if rx.src == self.config.primary_address {
            // Our own advert: a Backup would otherwise reset its own Master_Down_Timer forever.
            c.drop_own_address += 1;
            return Some(drop_reason::OWN_ADDRESS);
        }
        if !self.config.sources.admits(rx.src) {
            c.drop_source += 1;
            return Some(drop_reason::SOURCE);
        }
        // RFC 9568 section 7.1: "If the above check fails, the receiver MUST log the event
        // [...] If the packet was not generated by the address owner (Priority does not equal
        // 255 (decimal)), the receiver MUST drop the packet".
        if adv.priority != OWNER_PRIORITY && !same_address_list(&adv.addresses, &self.config.vips) {
            c.address_list_mismatch += 1;
            c.drop_address_list += 1;
            return Some(drop_reason::ADDRESS_LIST);
        }
        None
    }

    fn same_address_list(&self, addresses: &[IpAddr]) -> bool {
        same_address_list(addresses, &self.config.vips)
    }

    /// The interval a received advert asks Backups to use: v3 adopts the Master's interval
    /// (RFC 9568 section 6.4.2); v2 always uses its own (mismatches were dropped).
    fn adopted_interval(&self, adv: &Advertisement) -> Duration {
        match self.config.version {
            Version::V3 => crate::timers::interval_from_cs(adv.interval_cs),
            Version::V2 => self.config.advert_interval,
        }
    }

    fn preempts(&self) -> bool {
        // RFC 9568 section 6.1 Preempt_Mode: the address owner always preempts.
        self.config.preempt || self.effective_priority == 255
    }

    fn note_peer(&mut self, now: Instant, src: IpAddr, adv: &Advertisement) {
        if adv.priority == 0 {
            if self.peer_master.is_some_and(|m| m.address == src) {
                self.peer_master = None;
            }
        } else {
            self.peer_master = Some(MasterInfo {
                address: src,
                priority: adv.priority,
                interval: crate::timers::interval_from_cs(adv.interval_cs),
                last_seen: now,
            });
        }
    }

    /// RFC 9568 section 6.4.2, "If an ADVERTISEMENT is received".
    fn backup_rx(&mut self, now: Instant, src: IpAddr, adv: &Advertisement) {
        if adv.priority == 0 {
            // "If the Priority in the ADVERTISEMENT is zero, then: Set the Master_Down_Timer
            // to Skew_Time."
            self.note_peer(now, src, adv);
            self.liveness_superseded(src);
            let skew = crate::timers::skew_time(
                self.config.version,
                self.effective_priority,
                self.master_adver_interval,
            );
            self.timers.set(Timer::MasterDown, after(now, skew));
            return;
        }
        if !self.preempts() || adv.priority >= self.effective_priority {
            // "If Preempt_Mode is False, or if the Priority in the ADVERTISEMENT is greater than
            // or equal to the local Priority": adopt Master_Adver_Interval, recompute
            // Master_Down_Interval, reset the Master_Down_Timer.
            self.note_peer(now, src, adv);
            self.liveness_superseded(src);
            self.master_adver_interval = self.adopted_interval(adv);
            self.reset_master_down_timer(now);
        }
        // "Else (Priority less than local Priority and Preempt_Mode True): Discard the
        // ADVERTISEMENT": the timer runs out and we take over.
    }

    /// An advert about to reset the Master_Down_Timer ends any take-over a report had brought
    /// forward: from the lost Master it is a sign of life; from another router, that router is
    /// the Master now.
    fn liveness_superseded(&mut self, src: IpAddr) {
        match self.liveness.pending {
            Some(lost) if lost == src => self.cancel_liveness_takeover(lost),
            Some(_) => self.liveness.pending = None,
            None => {}
        }
    }

    /// RFC 9568 section 6.4.3, "If an ADVERTISEMENT is received".
    fn master_rx(&mut self, now: Instant, src: IpAddr, adv: &Advertisement) {
        if adv.priority > 0 {
            self.check_liveness_refuted(now, src);
        }
        if adv.priority == 0 {
            // "If the Priority in the ADVERTISEMENT is zero, then: Send an ADVERTISEMENT; Reset
            // the Adver_Timer" so Backups do not take over from us after Skew_Time.
            self.send_advert(now, self.effective_priority);
            self.restart_adver_timer(now);
            return;
        }
        let ours = self.effective_priority;
        let theirs_wins = adv.priority > ours
            || (adv.priority == ours && ip_greater(src, self.config.primary_address));
        if theirs_wins {
            let reason = if adv.priority > ours {
                "higher priority advert received while Master"
            } else {
                "equal priority advert from a higher primary address while Master"
            };
            // vipd extension ("yield notice"): one last advert with our priority before going
            // silent. Without it a winner whose advert reached us first never hears of the
            // split brain and never re-announces, leaving clients on our MAC (reference/vrrp.md,
            // keepalived lesson). The winner answers it with LowerPriorityMaster + Announce.
            self.send_advert(now, ours);
            self.actions.push_back(Action::RemoveVips);
            self.clear_master_timers();
            self.note_peer(now, src, adv);
            self.master_adver_interval = self.adopted_interval(adv);
            self.reset_master_down_timer(now);
            self.transition(State::Backup, reason);
        } else {
            // "Else: Discard ADVERTISEMENT" -- but another router believes it is Master, so
            // clients may be using its MAC.
            self.counters.lower_priority_master_rx += 1;
            self.actions
                .push_back(Action::Event(Event::LowerPriorityMaster {
                    from: src,
                    priority: adv.priority,
                }));
            self.reassert(now, src);
        }
    }

    /// Answers a lower-priority router's claim to be Master.
    ///
    /// - At most once per advert interval (so two confused Masters cannot ping-pong): announce,
    ///   then advertise and restart the Adver_Timer. The claimant announced before it
    ///   advertised (the order of `become_master`), so our announcement lands after its one.
    /// - Otherwise, within a per-peer budget ([`ReassertGuard`]): announce only. Around one
    ///   take-over a yielding router can claim several times within a millisecond, and each
    ///   claim follows its own gratuitous ARP; every one must be answered or clients stay on
    ///   the node that yields.
    /// - Once per burst, one more announcement [`REASSERT_FOLLOW_UP`] later, in case the
    ///   claimant's announcement was delayed past ours.
    fn reassert(&mut self, now: Instant, src: IpAddr) {
        let interval = self.config.advert_interval;
        let in_budget = self.reassert_guard.allow(src, now, interval);
        let interval_passed = self
            .last_reassert
            .is_none_or(|t| now.saturating_duration_since(t) >= interval);
        if interval_passed {
            self.last_reassert = Some(now);
            self.announce();
            self.send_advert(now, self.effective_priority);
            self.restart_adver_timer(now);
        } else if in_budget {
            self.announce();
        }
        if in_budget && self.timers.get(Timer::ReassertFollowUp).is_none() {
            self.timers
                .set(Timer::ReassertFollowUp, after(now, REASSERT_FOLLOW_UP));
        }
    }

    fn master_lost(&mut self, now: Instant, peer: IpAddr, detection_time: Duration) {
        let is_master = self.peer_master.is_some_and(|m| m.address == peer);
        if self.state != State::Backup || !is_master || self.liveness.held_down(peer, now) {
            self.counters.liveness_ignored += 1;
            return;
        }
        let skew = liveness_skew(
            self.effective_priority,
            detection_time.min(self.master_down_interval()),
        );
        let Some(at) = after(now, skew) else {
            self.counters.liveness_ignored += 1;
            return;
        };
        let at = self.timers.get(Timer::MasterDown).map_or(at, |t| t.min(at));
        self.timers.set(Timer::MasterDown, Some(at));
        self.liveness.pending = Some(peer);
        self.counters.liveness_lost += 1;
        self.actions
            .push_back(Action::Event(Event::MasterUnreachable {
                master: peer,
                takeover_at: at,
            }));
    }

    /// A sign of life from the Master a report had lost: the take-over is off.
    fn cancel_liveness_takeover(&mut self, master: IpAddr) {
        self.liveness.pending = None;
        self.counters.liveness_cancelled += 1;
        self.actions
            .push_back(Action::Event(Event::MasterHeardAgain { master }));
    }

    /// The Master_Down_Timer on the schedule of the Master's last advert (after a report that
    /// had brought it forward was cancelled).
    fn restore_master_down_timer(&mut self, now: Instant) {
        let last = self.peer_master.map_or(now, |m| m.last_seen);
        let at = after(last, self.master_down_interval());
        self.timers.set(Timer::MasterDown, at);
    }

    /// An advert from `src` while Master: if it comes from the router whose loss a report
    /// had made us take over, the report was wrong; hold further reports about it down.
    fn check_liveness_refuted(&mut self, now: Instant, src: IpAddr) {
        let mdi = self.master_down_interval();
        if !self.liveness.refuted_by(src, now, mdi) {
            return;
        }
        self.liveness.takeover = None;
        self.counters.liveness_refuted += 1;
        if let Some(hold) = HoldDown::next(self.liveness.hold_down, src, now, mdi) {
            self.liveness.hold_down = Some(hold);
            self.actions
                .push_back(Action::Event(Event::LivenessRefuted {
                    master: src,
                    until: hold.until,
                }));
        }
    }

    /// Computed again only when one of its inputs changed: a Backup needs it for every advert
    /// it hears, and the Duration arithmetic was a tenth of that advert's instructions.
    fn master_down_interval(&self) -> Duration {
        let key = (
            self.config.version,
            self.effective_priority,
            self.master_adver_interval,
        );
        if let Some((cached_key, mdi)) = self.mdi_cache.get() {
            if cached_key == key {
                return mdi;
            }
        }
        let mdi = crate::timers::master_down_interval(key.0, key.1, key.2);
        self.mdi_cache.set(Some((key, mdi)));
        mdi
    }

    fn reset_master_down_timer(&mut self, now: Instant) {
        let mdi = self.master_down_interval();
        self.timers.set(Timer::MasterDown, after(now, mdi));
    }

    /// RFC 9568 section 6.4.1 Backup branch (also used when a fault clears).
    fn become_backup_fresh(&mut self, now: Instant, reason: &'static str) {
        self.master_adver_interval = self.config.advert_interval;
        self.peer_master = None;
        self.reset_master_down_timer(now);
        self.transition(State::Backup, reason);
    }

    /// RFC 9568 sections 6.4.1 / 6.4.2: send an ADVERTISEMENT, announce the addresses, start
    /// the Adver_Timer, transition to Master.
    ///
    /// Order (make-before-break on take-over): the VIPs are added and announced before our
    /// advert goes out. A resigning Master drops its VIPs the moment it hears that advert; if
    /// our gratuitous ARP came after it, clients would keep sending to a node that no longer
    /// answers for as long as the netlink call took (seen as 100+ ms under load in the lab).
    fn become_master(&mut self, now: Instant, reason: &'static str) {
        self.timers.stop(Timer::MasterDown);
        self.liveness.takeover = None;
        self.transition(State::Master, reason);
        self.counters.master_transitions += 1;
        self.actions.push_back(Action::AddVips);
        self.announce();
        self.send_advert(now, self.effective_priority);
        self.master_since = Some(now);
        self.last_reassert = Some(now);
        self.restart_adver_timer(now);
        self.announce_repeat_pending = self.config.announce_repeat_after.is_some();
        let announce_at = match self.config.announce_repeat_after {
            Some(d) => after(now, d),
            None => self
                .config
                .announce_refresh
                .and_then(|r| after(now, r.max(MIN_PERIOD))),
        };
        self.timers.set(Timer::Announce, announce_at);
    }

    fn announce_timer_fired(&mut self, now: Instant, deadline: Instant) {
        self.announce();
        self.announce_repeat_pending = false;
        let next = self
            .config
            .announce_refresh
            .and_then(|r| next_on_grid(deadline, now, r));
        self.timers.set(Timer::Announce, next);
    }

    /// Queues one gratuitous ARP / unsolicited NA burst for every VIP.
    fn announce(&mut self) {
        self.actions.push_back(Action::Announce);
        self.counters.announces += 1;
    }

    /// "Reset the Adver_Timer to Advertisement_Interval" (RFC 9568 section 6.4.3).
    fn restart_adver_timer(&mut self, now: Instant) {
        self.timers.set(
            Timer::Adver,
            after(now, self.config.advert_interval.max(MIN_PERIOD)),
        );
    }

    /// After a reload changed the announce settings: a pending repeat is re-anchored at the
    /// start of the Master term; otherwise the refresh restarts from now.
    fn schedule_announce_after_reload(&mut self, now: Instant) {
        let since = self.master_since.unwrap_or(now);
        let announce_at = match (
            self.announce_repeat_pending,
            self.config.announce_repeat_after,
        ) {
            (true, Some(d)) => after(since, d).map(|t| t.max(now)),
            _ => {
                self.announce_repeat_pending = false;
                self.config
                    .announce_refresh
                    .and_then(|r| after(now, r.max(MIN_PERIOD)))
            }
        };
        self.timers.set(Timer::Announce, announce_at);
    }

    fn finish_resign(&mut self, now: Instant, reason: &'static str) {
        self.actions.push_back(Action::RemoveVips);
        self.clear_master_timers();
        self.timers.stop_all();
        if std::mem::take(&mut self.stepping_down) {
            // A sync group's step-down ends in Backup, not stopped.
            self.become_backup_fresh(now, reason);
            return;
        }
        self.transition(State::Initialize, reason);
        self.stopped = true;
    }

    /// Leaves Master make-before-break because the sync group asks: a priority-0 advert, the
    /// VIPs kept (Resigning) until another router's advert shows the new Master or
    /// `resign_wait` passes, then Backup.
    fn step_down(&mut self, now: Instant) {
        self.send_advert(now, 0);
        self.clear_master_timers();
        self.stepping_down = true;
        self.transition(
            State::Resigning,
            "sync group: another member left Master; stepping down, VIPs kept until the new Master is heard",
        );
        if self.config.resign_wait.is_zero() {
            self.finish_resign(now, "sync group step-down with resign_wait 0");
            return;
        }
        self.timers
            .set(Timer::ResignWait, after(now, self.config.resign_wait));
        self.restart_adver_timer(now);
    }

    fn clear_master_timers(&mut self) {
        self.timers.stop(Timer::Adver);
        self.timers.stop(Timer::Announce);
        self.timers.stop(Timer::ReassertFollowUp);
        self.announce_repeat_pending = false;
        self.master_since = None;
    }

    fn apply_priority(&mut self, now: Instant, new: u8) {
        if new == self.effective_priority {
            return;
        }
        self.effective_priority = new;
        if self.state == State::Master {
            self.send_advert(now, new);
            self.restart_adver_timer(now);
        }
    }

    fn send_advert(&mut self, now: Instant, priority: u8) {
        let auth = match self.config.version {
            Version::V2 => self.config.auth,
            Version::V3 => Auth::None,
        };
        let advert = Advertisement {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            interval_cs: crate::timers::interval_to_cs(self.config.advert_interval),
            addresses: match self.spare_addresses.take() {
                Some(mut spare) => {
                    spare.clear();
                    spare.extend_from_slice(&self.config.vips);
                    spare
                }
                None => self.config.vips.clone(),
            },
            auth,
        };
        self.counters.adverts_tx += 1;
        if priority == 0 {
            self.counters.priority_zero_tx += 1;
        }
        self.last_advert_tx = Some(now);
        self.actions.push_back(Action::Send(advert));
    }

    fn transition(&mut self, to: State, reason: &'static str) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        if to != State::Backup {
            // Only a Backup's Master_Down_Timer can be brought forward.
            self.liveness.pending = None;
        }
        self.counters.transitions += 1;
        self.actions
            .push_back(Action::Event(Event::StateChanged { from, to, reason }));
    }
}

/// Numeric comparison of primary addresses for the equal-priority tie-break (RFC 9568 section
/// 6.4.3: "the primary IPvX address of the sender is greater than the local primary IPvX
/// address"). Mixed families never reach here (dropped as family mismatch).
fn ip_greater(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => u32::from(a) > u32::from(b),
        (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(a) > u128::from(b),
        _ => false,
    }
}
