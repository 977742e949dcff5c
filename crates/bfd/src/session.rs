//! One BFD session in Asynchronous mode (RFC 5880 section 6), sans-I/O.
//!
//! CONTRACT (the daemon drives it exactly like this):
//! ```text
//! let mut s = Session::new(config, jitter, now);  // Down; an active session's first packet is due at `now`
//! loop {
//!     // a datagram arrived on UDP 3784 from config.peer_address (or was demultiplexed to this
//!     // session by Your Discriminator):
//!     s.handle_datagram(now, Datagram { src, ttl, payload });   // parses, checks, counts
//!     //   or, if the daemon parsed it already: s.handle_packet(now, Received { src, ttl, packet: &repr });
//!     // when now >= s.poll_timeout():
//!     s.handle_timeout(now);
//!     // operator / configuration:
//!     s.set_admin_down(now, true | false);  s.set_desired_min_tx(now, d)?;  s.set_required_min_rx(now, d)?;
//!     // after every input, drain both queues:
//!     while let Some(packet) = s.poll_transmit() { /* emit, send to peer:3784, TTL 255, sport 49152..=65535 */ }
//!     while let Some(event) = s.poll_event() { ... }
//! }
//! ```
//!
//! Not implemented: authentication (packets with the A bit are dropped as `auth_unsupported`),
//! Demand mode on our side (we never set D; a remote in Demand mode is honoured), the Echo
//! function (we advertise Required Min Echo RX Interval 0). See `docs/bfd.md`.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::packet::{Diagnostic, ParseError, Repr, State, REQUIRED_TTL};
use crate::timers::{detection_time, jittered, transmit_interval, JitterSource, Timer, TimerTable};

/// The slowest rate limit of RFC 5880 section 6.8.3: while the session is not Up,
/// bfd.DesiredMinTxInterval is at least one second.
pub const SLOW_TX_INTERVAL: Duration = Duration::from_secs(1);

/// bfd.RemoteMinRxInterval before anything was heard (RFC 5880 section 6.8.1: initialised to 1).
const INITIAL_REMOTE_MIN_RX: Duration = Duration::from_micros(1);

/// Shortest period the transmit timer is armed with: a configuration that failed
/// [`SessionConfig::check`] must not make `handle_timeout` spin.
const MIN_TX_PERIOD: Duration = Duration::from_micros(1);

/// Stable `reason` labels of dropped packets: [`Event::Dropped`], [`DropCounters`] and metric
/// label values. Listed in the order the checks run.
pub mod drop_reason {
    /// TTL / hop limit is not 255 (RFC 5881 section 5).
    pub const TTL: &str = "ttl";
    /// Version is not 1 (RFC 5880 section 6.8.6).
    pub const BAD_VERSION: &str = "bad_version";
    /// Shorter than 24 bytes, Length below 24 (26 with A) or beyond the payload, or an Auth Len
    /// that does not fit (RFC 5880 section 6.8.6).
    pub const BAD_LENGTH: &str = "bad_length";
    /// Detect Mult is 0 (RFC 5880 section 6.8.6).
    pub const ZERO_DETECT_MULT: &str = "zero_detect_mult";
    /// The M bit is set (RFC 5880 section 6.8.6).
    pub const MULTIPOINT: &str = "multipoint";
    /// My Discriminator is 0 (RFC 5880 section 6.8.6).
    pub const ZERO_MY_DISCRIMINATOR: &str = "zero_my_discriminator";
    /// Your Discriminator is 0 while the sender is in Init or Up (RFC 5880 section 6.8.6).
    pub const ZERO_YOUR_DISCRIMINATOR: &str = "zero_your_discriminator";
    /// The source address is not this session's peer (RFC 5880 section 6.8.6 selects the
    /// session by source when Your Discriminator is 0; RFC 5881 binds a single-hop session to
    /// its addresses).
    pub const UNKNOWN_PEER: &str = "unknown_peer";
    /// Your Discriminator is not ours (RFC 5880 section 6.8.6: no session found).
    pub const UNKNOWN_DISCRIMINATOR: &str = "unknown_discriminator";
    /// The A bit is set; authentication is not implemented, so no packet with it can be
    /// verified (RFC 5880 section 6.8.6: A set and no authentication in use -> discard).
    pub const AUTH_UNSUPPORTED: &str = "auth_unsupported";
    /// The session is AdminDown and discards everything (RFC 5880 section 6.8.6).
    pub const ADMIN_DOWN: &str = "admin_down";

    /// Every label, in check order (the order [`super::DropCounters::iter`] yields them).
    pub const ALL: [&str; 11] = [
        TTL,
        BAD_VERSION,
        BAD_LENGTH,
        ZERO_DETECT_MULT,
        MULTIPOINT,
        ZERO_MY_DISCRIMINATOR,
        ZERO_YOUR_DISCRIMINATOR,
        UNKNOWN_PEER,
        UNKNOWN_DISCRIMINATOR,
        AUTH_UNSUPPORTED,
        ADMIN_DOWN,
    ];
}

/// Static configuration of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our address on the link (for status; the daemon sends from it).
    pub local_address: IpAddr,
    /// The remote system; packets from any other source are dropped (`unknown_peer`).
    pub peer_address: IpAddr,
    /// bfd.LocalDiscr: nonzero and unique among this system's sessions (RFC 5880 section
    /// 6.8.1). The daemon picks it (randomly, so a restarted daemon is not mistaken for its
    /// previous run).
    pub local_discriminator: u32,
    /// bfd.DesiredMinTxInterval while Up. Raised to [`SLOW_TX_INTERVAL`] while not Up.
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval. Zero asks the remote to send no periodic packets (and then
    /// no detection is possible).
    pub required_min_rx: Duration,
    /// bfd.DetectMult, 1..=255.
    pub detect_mult: u8,
    /// Passive role (RFC 5880 section 6.1): send nothing until the remote has been heard.
    pub passive: bool,
}

/// A configuration the session cannot run correctly. Each variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "local_discriminator 0 is reserved; a discriminator is nonzero (RFC 5880 section 6.8.1)"
    )]
    ZeroDiscriminator,
    #[error("detect_mult 0 is invalid; it is 1..=255 (RFC 5880 section 4.1)")]
    ZeroDetectMult,
    #[error(
        "desired_min_tx {0:?} is invalid: it must be nonzero (zero is reserved, RFC 5880 section \
         4.1), whole microseconds and at most 4294.967295 s"
    )]
    DesiredMinTx(Duration),
    #[error(
        "required_min_rx {0:?} is invalid: it must be whole microseconds and at most 4294.967295 s"
    )]
    RequiredMinRx(Duration),
    #[error("local_address {local} and peer_address {peer} are of different address families")]
    FamilyMismatch { local: IpAddr, peer: IpAddr },
}

impl SessionConfig {
    /// Checks what the session relies on. The session never panics on a config that fails this
    /// check, but cannot then interoperate, so the daemon should refuse it.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.local_discriminator == 0 {
            return Err(ConfigError::ZeroDiscriminator);
        }
        if self.detect_mult == 0 {
            return Err(ConfigError::ZeroDetectMult);
        }
        check_desired_min_tx(self.desired_min_tx)?;
        check_required_min_rx(self.required_min_rx)?;
        if self.local_address.is_ipv4() != self.peer_address.is_ipv4() {
            return Err(ConfigError::FamilyMismatch {
                local: self.local_address,
                peer: self.peer_address,
            });
        }
        Ok(())
    }
}

fn fits_micros_field(d: Duration) -> bool {
    d.subsec_nanos() % 1_000 == 0 && d.as_micros() <= u128::from(u32::MAX)
}

fn check_desired_min_tx(d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() || !fits_micros_field(d) {
        return Err(ConfigError::DesiredMinTx(d));
    }
    Ok(())
}

fn check_required_min_rx(d: Duration) -> Result<(), ConfigError> {
    if !fits_micros_field(d) {
        return Err(ConfigError::RequiredMinRx(d));
    }
    Ok(())
}

/// An interval as the microseconds of the wire fields (saturating; [`SessionConfig::check`]
/// makes it exact).
fn to_micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn from_micros(us: u32) -> Duration {
    Duration::from_micros(u64::from(us))
}

/// A received datagram, not yet parsed.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    pub src: IpAddr,
    /// IPv4 TTL or IPv6 hop limit as received.
    pub ttl: u8,
    /// The UDP payload.
    pub payload: &'a [u8],
}

/// A parsed Control packet plus what the socket layer learnt about it.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub src: IpAddr,
    /// IPv4 TTL or IPv6 hop limit as received.
    pub ttl: u8,
    pub packet: &'a Repr,
}

/// Something the daemon logs, counts or acts on. Drained with [`Session::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Every state change; `diag` is the local diagnostic after it.
    StateChanged {
        from: State,
        to: State,
        diag: Diagnostic,
    },
    /// The session came Up (queued right after the matching `StateChanged`).
    SessionUp,
    /// The session left Up (to Down or AdminDown): for VRRP, the path to that peer is gone.
    /// Queued right after the matching `StateChanged`.
    SessionDown { to: State, diag: Diagnostic },
    /// A packet was dropped without changing anything; `reason` is a [`drop_reason`] label.
    /// One per packet: the daemon rate-limits logging.
    Dropped { from: IpAddr, reason: &'static str },
}

/// Dropped packets by [`drop_reason`] label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropCounters {
    counts: [u64; drop_reason::ALL.len()],
}

impl DropCounters {
    /// Packets dropped for `reason` (0 for a label that is not in [`drop_reason::ALL`]).
    pub fn get(&self, reason: &str) -> u64 {
        drop_reason::ALL
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.counts[i])
    }

    /// Every label with its count, in [`drop_reason::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        drop_reason::ALL
            .iter()
            .copied()
            .zip(self.counts.iter().copied())
    }

    /// All dropped packets.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn add(&mut self, reason: &str) {
        if let Some(i) = drop_reason::ALL.iter().position(|r| *r == reason) {
            self.counts[i] += 1;
        }
    }
}

/// Per-session counters (for `vipd status` and /metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Every packet handed to `handle_datagram` / `handle_packet`, dropped or not.
    pub rx: u64,
    /// Every packet queued for `poll_transmit`.
    pub tx: u64,
    /// Packets sent with P / with F.
    pub poll_tx: u64,
    pub final_tx: u64,
    /// Entries into Up.
    pub up_transitions: u64,
    /// Exits from Up (to Down or AdminDown): the flaps.
    pub down_transitions: u64,
    /// Every state change.
    pub state_changes: u64,
    /// Times the detection timer expired (in any state).
    pub detection_expiries: u64,
    pub drops: DropCounters,
}

/// What the session last learnt from the remote system (RFC 5880 section 6.8.1 bfd.Remote*
/// plus the fields of its last packet the timers need).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteInfo {
    /// bfd.RemoteDiscr; 0 until heard and again after the detection timer expired.
    pub discriminator: u32,
    /// bfd.RemoteSessionState.
    pub state: State,
    /// The Diag field of its last packet.
    pub diag: Diagnostic,
    /// bfd.RemoteDemandMode.
    pub demand: bool,
    /// bfd.RemoteMinRxInterval.
    pub min_rx: Duration,
    /// Its Desired Min TX Interval.
    pub desired_min_tx: Duration,
    /// Its Detect Mult (0 until heard).
    pub detect_mult: u8,
}

impl RemoteInfo {
    /// The RFC 5880 section 6.8.1 initial values: nothing heard.
    fn initial() -> RemoteInfo {
        RemoteInfo {
            discriminator: 0,
            state: State::Down,
            diag: Diagnostic::None,
            demand: false,
            min_rx: INITIAL_REMOTE_MIN_RX,
            desired_min_tx: Duration::ZERO,
            detect_mult: 0,
        }
    }
}

/// One BFD session; see the module CONTRACT.
#[derive(Debug, Clone)]
pub struct Session<J: JitterSource> {
    config: SessionConfig,
    jitter: J,
    /// bfd.SessionState.
    state: State,
    /// bfd.LocalDiag.
    local_diag: Diagnostic,
    remote: RemoteInfo,
    /// bfd.DesiredMinTxInterval: what we advertise.
    desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval: what we advertise.
    required_min_rx: Duration,
    /// The Desired Min TX the transmit interval is computed from. Differs from
    /// `desired_min_tx` only during a Poll Sequence that raised it (RFC 5880 section 6.8.3).
    tx_in_use: Duration,
    /// The Required Min RX the detection time is computed from. Differs from
    /// `required_min_rx` only during a Poll Sequence that lowered it (RFC 5880 section 6.8.3).
    rx_in_use: Duration,
    /// A Poll Sequence is in progress: every packet carries P until one with F arrives.
    poll_active: bool,
    /// A packet must go out before this input is done (a state change or a new Poll).
    send_pending: bool,
    /// The interval the Transmit deadline was drawn from, to notice when it changes.
    tx_interval_armed: Option<Duration>,
    last_rx: Option<Instant>,
    timers: TimerTable,
    transmits: VecDeque<Repr>,
    events: VecDeque<Event>,
    counters: Counters,
}

impl<J: JitterSource> Session<J> {
    /// A session in Down (RFC 5880 section 6.8.1 initial values). An active session's first
    /// packet is due at `now`; a passive one waits for the remote.
    pub fn new(config: SessionConfig, jitter: J, now: Instant) -> Self {
        // RFC 5880 section 6.8.3: not Up, so at least one second.
        let desired_min_tx = config.desired_min_tx.max(SLOW_TX_INTERVAL);
        let required_min_rx = config.required_min_rx;
        let mut session = Session {
            config,
            jitter,
            state: State::Down,
            local_diag: Diagnostic::None,
            remote: RemoteInfo::initial(),
            desired_min_tx,
            required_min_rx,
            tx_in_use: desired_min_tx,
            rx_in_use: required_min_rx,
            poll_active: false,
            send_pending: false,
            tx_interval_armed: None,
            last_rx: None,
            timers: TimerTable::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
        };
        if let Some(interval) = session.periodic_interval() {
            session.timers.set(Timer::Transmit, now);
            session.tx_interval_armed = Some(interval);
        }
        session
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// bfd.SessionState.
    pub fn state(&self) -> State {
        self.state
    }

    /// bfd.RemoteSessionState (Down until heard and after the detection timer expired).
    pub fn remote_state(&self) -> State {
        self.remote.state
    }

    /// bfd.LocalDiag: why the session last changed state.
    pub fn local_diag(&self) -> Diagnostic {
        self.local_diag
    }

    /// Everything known about the remote system.
    pub fn remote(&self) -> &RemoteInfo {
        &self.remote
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// bfd.DesiredMinTxInterval as advertised now.
    pub fn desired_min_tx(&self) -> Duration {
        self.desired_min_tx
    }

    /// bfd.RequiredMinRxInterval as advertised now.
    pub fn required_min_rx(&self) -> Duration {
        self.required_min_rx
    }

    /// True while a Poll Sequence waits for its Final.
    pub fn poll_in_progress(&self) -> bool {
        self.poll_active
    }

    /// The negotiated Detection Time (RFC 5880 section 6.8.4), once the remote has been heard;
    /// `None` before that and when it would be zero.
    pub fn detection_time(&self) -> Option<Duration> {
        if self.remote.detect_mult == 0 {
            return None;
        }
        detection_time(
            self.remote.detect_mult,
            self.rx_in_use,
            self.remote.desired_min_tx,
        )
    }

    /// The interval between periodic packets before jitter (RFC 5880 section 6.8.2); `None`
    /// while periodic transmission is not allowed (RFC 5880 section 6.8.7).
    pub fn transmit_interval(&self) -> Option<Duration> {
        self.periodic_interval()
    }

    /// When the last valid packet from the remote was accepted.
    pub fn last_rx(&self) -> Option<Instant> {
        self.last_rx
    }

    /// Next packet to send, in order.
    pub fn poll_transmit(&mut self) -> Option<Repr> {
        self.transmits.pop_front()
    }

    /// Next event, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Earliest time at which [`Session::handle_timeout`] must be called; `None` when no timer
    /// runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next().map(|(_, at)| at)
    }

    /// The timer that fires next, by name, and when.
    pub fn next_timer(&self) -> Option<(Timer, Instant)> {
        self.timers.next()
    }

    /// Every timer and its deadline.
    pub fn timers(&self) -> &TimerTable {
        &self.timers
    }

    /// A received datagram: the TTL is checked, then the payload parsed ([`Repr::parse`]) and
    /// handled as by [`Session::handle_packet`]. Anything refused is counted and dropped.
    pub fn handle_datagram(&mut self, now: Instant, datagram: Datagram<'_>) {
        self.counters.rx += 1;
        // RFC 5881 section 5: checked before the packet is even looked at.
        if datagram.ttl != REQUIRED_TTL {
            self.drop_packet(datagram.src, drop_reason::TTL);
            return;
        }
        match Repr::parse(datagram.payload) {
            Ok(packet) => self.receive(now, datagram.src, datagram.ttl, &packet),
            Err(error) => self.drop_packet(datagram.src, error.drop_reason()),
        }
    }

    /// A packet the daemon parsed itself. Everything `Repr::parse` cannot know is checked
    /// here (and the field checks are repeated, since a `Repr` may be built by hand).
    pub fn handle_packet(&mut self, now: Instant, received: Received<'_>) {
        self.counters.rx += 1;
        self.receive(now, received.src, received.ttl, received.packet);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = [None; Timer::ALL.len()];
        for (slot, timer) in due.iter_mut().zip(self.timers.expired(now)) {
            *slot = Some(timer);
        }
        for timer in due.into_iter().flatten() {
            match timer {
                Timer::Detection => self.on_detection_timeout(),
                // A state change at this same instant already sent a packet and re-armed
                // the timer; one packet is enough.
                Timer::Transmit if self.timers.get(Timer::Transmit).is_some() => {}
                Timer::Transmit => self.on_transmit_timer(now),
            }
        }
        self.finish_input(now);
    }

    /// RFC 5880 section 6.8.16: AdminDown on (diag 7, packets keep going out at the slow rate
    /// so the remote learns it, everything received is discarded) or off (back to Down).
    pub fn set_admin_down(&mut self, now: Instant, admin_down: bool) {
        match (admin_down, self.state) {
            (true, State::AdminDown) | (false, State::Down | State::Init | State::Up) => {}
            (true, _) => {
                self.transition(State::AdminDown, Diagnostic::AdministrativelyDown);
                // RFC 5880 section 6.8.4: no detection while AdminDown.
                self.timers.stop(Timer::Detection);
            }
            (false, State::AdminDown) => self.transition(State::Down, Diagnostic::None),
        }
        self.finish_input(now);
    }

    /// Changes the configured Desired Min TX Interval. While Up this starts a Poll Sequence,
    /// and a larger value only takes effect once the Final arrives (RFC 5880 section 6.8.3).
    pub fn set_desired_min_tx(
        &mut self,
        now: Instant,
        interval: Duration,
    ) -> Result<(), ConfigError> {
        check_desired_min_tx(interval)?;
        self.config.desired_min_tx = interval;
        self.update_parameters();
        self.finish_input(now);
        Ok(())
    }

    /// Changes the configured Required Min RX Interval. While Up this starts a Poll Sequence,
    /// and a smaller value only shortens the detection time once the Final arrives (RFC 5880
    /// section 6.8.3).
    pub fn set_required_min_rx(
        &mut self,
        now: Instant,
        interval: Duration,
    ) -> Result<(), ConfigError> {
        check_required_min_rx(interval)?;
        self.config.required_min_rx = interval;
        self.update_parameters();
        self.finish_input(now);
        Ok(())
    }

    /// The checks of RFC 5880 section 6.8.6 and RFC 5881 section 5, then the packet's effect.
    fn receive(&mut self, now: Instant, src: IpAddr, ttl: u8, packet: &Repr) {
        match self.check_received(src, ttl, packet) {
            Ok(()) => self.process(now, packet),
            Err(reason) => self.drop_packet(src, reason),
        }
    }

    /// Every reason to discard, in the order they are checked. Nothing is changed here.
    fn check_received(&self, src: IpAddr, ttl: u8, packet: &Repr) -> Result<(), &'static str> {
        // RFC 5881 section 5: single-hop packets are sent with TTL 255 and must arrive with it.
        if ttl != REQUIRED_TTL {
            return Err(drop_reason::TTL);
        }
        // RFC 5880 section 6.8.6: the field checks (Detect Mult, discriminators).
        packet
            .check_fields()
            .map_err(|e: ParseError| e.drop_reason())?;
        // RFC 5880 section 6.8.6 / RFC 5881 section 3: a single-hop session belongs to one peer.
        if src != self.config.peer_address {
            return Err(drop_reason::UNKNOWN_PEER);
        }
        // RFC 5880 section 6.8.6: a nonzero Your Discriminator selects the session; it is not us.
        if packet.your_discriminator != 0
            && packet.your_discriminator != self.config.local_discriminator
        {
            return Err(drop_reason::UNKNOWN_DISCRIMINATOR);
        }
        // RFC 5880 section 6.8.6: A set and no authentication in use -> discard. No
        // authentication is ever in use here (not implemented).
        if packet.auth.is_some() {
            return Err(drop_reason::AUTH_UNSUPPORTED);
        }
        // RFC 5880 section 6.8.6: in AdminDown everything is discarded. Checked before any
        // bfd.Remote* variable is updated (the RFC updates them first), so a dropped packet
        // never changes anything; the next packet after AdminDown ends brings them up to date.
        if self.state == State::AdminDown {
            return Err(drop_reason::ADMIN_DOWN);
        }
        Ok(())
    }

    /// RFC 5880 section 6.8.6 for an accepted packet.
    fn process(&mut self, now: Instant, packet: &Repr) {
        // RFC 5880 section 6.8.6: take over the remote's variables.
        self.remote = RemoteInfo {
            discriminator: packet.my_discriminator,
            state: packet.state,
            diag: packet.diag,
            demand: packet.demand,
            min_rx: from_micros(packet.required_min_rx_us),
            desired_min_tx: from_micros(packet.desired_min_tx_us),
            detect_mult: packet.detect_mult,
        };
        self.last_rx = Some(now);

        // RFC 5880 section 6.5 / 6.8.6: F ends our Poll Sequence, and the values it announced
        // (held back by section 6.8.3) now apply.
        if packet.final_ && self.poll_active {
            self.poll_active = false;
            self.tx_in_use = self.desired_min_tx;
            self.rx_in_use = self.required_min_rx;
        }

        // RFC 5880 section 6.8.6 state table (the transitions of section 6.2).
        match (self.state, packet.state) {
            (State::Init | State::Up, State::AdminDown) | (State::Up, State::Down) => {
                self.transition(State::Down, Diagnostic::NeighborSignaledSessionDown);
            }
            (State::Down, State::Down) => self.transition(State::Init, Diagnostic::None),
            (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                self.transition(State::Up, Diagnostic::None);
            }
            _ => {}
        }

        // RFC 5880 section 6.8.4: every valid packet restarts the detection timer.
        self.arm_detection(now);

        // RFC 5880 section 6.8.7: P is answered at once with F, whatever the timers, the state
        // or Demand mode say. The reply carries the current state, so it also announces a
        // state change this packet caused.
        if packet.poll {
            let announces_state_change = self.send_pending;
            self.queue_packet(true);
            self.send_pending = false;
            if announces_state_change {
                self.rearm_transmit(now);
            }
        }
        self.finish_input(now);
    }

    /// RFC 5880 section 6.8.4: the detection timer expired.
    fn on_detection_timeout(&mut self) {
        self.counters.detection_expiries += 1;
        // RFC 5880 section 6.8.1: bfd.RemoteDiscr goes back to 0 after a Detection Time of
        // silence. The rest of what we knew of the remote is as stale, so it goes back to its
        // initial values too (remote state shows Down; a Demand-mode or zero-RX request no
        // longer holds our transmissions back).
        self.remote = RemoteInfo::initial();
        if matches!(self.state, State::Init | State::Up) {
            self.transition(State::Down, Diagnostic::ControlDetectionTimeExpired);
        }
    }

    fn on_transmit_timer(&mut self, now: Instant) {
        if self.periodic_interval().is_some() {
            self.queue_packet(false);
            self.send_pending = false;
        }
        self.rearm_transmit(now);
    }

    /// Changes bfd.SessionState and everything that follows from it.
    fn transition(&mut self, to: State, diag: Diagnostic) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.local_diag = diag;
        self.counters.state_changes += 1;
        self.events
            .push_back(Event::StateChanged { from, to, diag });
        if to == State::Up {
            self.counters.up_transitions += 1;
            self.events.push_back(Event::SessionUp);
        }
        if from == State::Up {
            self.counters.down_transitions += 1;
            self.events.push_back(Event::SessionDown { to, diag });
        }
        if to != State::Up {
            // Out of Up the held-back values of a Poll Sequence apply at once (RFC 5880
            // section 6.8.3 holds them only while Up), so the sequence has nothing left to do.
            self.poll_active = false;
        }
        self.update_parameters();
        // A state change is announced at once rather than at the next periodic slot, so the
        // three-way handshake and a Down are not delayed by up to a second.
        self.send_pending = true;
    }

    /// Recomputes bfd.DesiredMinTxInterval / bfd.RequiredMinRxInterval from the configuration
    /// and the state, and starts a Poll Sequence if they changed while Up.
    fn update_parameters(&mut self) {
        // RFC 5880 section 6.8.3: at least one second while not Up.
        let want_tx = if self.state == State::Up {
            self.config.desired_min_tx
        } else {
            self.config.desired_min_tx.max(SLOW_TX_INTERVAL)
        };
        let want_rx = self.config.required_min_rx;
        if want_tx == self.desired_min_tx && want_rx == self.required_min_rx {
            return;
        }
        self.desired_min_tx = want_tx;
        self.required_min_rx = want_rx;
        if self.state == State::Up {
            // RFC 5880 section 6.8.3: while Up a larger Desired Min TX must not be used before
            // the Poll Sequence ends (the remote's detection time still assumes the old one);
            // a smaller one is safe at once.
            self.tx_in_use = self.tx_in_use.min(want_tx);
            // RFC 5880 section 6.8.3: while Up a smaller Required Min RX must not shorten our
            // detection time before the Poll Sequence ends (the remote may still send at the
            // old rate); a larger one is safe at once.
            self.rx_in_use = self.rx_in_use.max(want_rx);
            // RFC 5880 section 6.8.3: a change of either interval starts a Poll Sequence.
            self.poll_active = true;
            self.send_pending = true;
        } else {
            self.tx_in_use = want_tx;
            self.rx_in_use = want_rx;
        }
    }

    /// Sends a pending packet, then brings both timers in line with the current parameters.
    fn finish_input(&mut self, now: Instant) {
        if self.send_pending {
            self.send_pending = false;
            // RFC 5880 section 6.8.7: a passive system sends nothing before it knows the
            // remote's discriminator.
            if !(self.config.passive && self.remote.discriminator == 0) {
                self.queue_packet(false);
                self.rearm_transmit(now);
            }
        }
        let interval = self.periodic_interval();
        if interval.is_none() {
            self.timers.stop(Timer::Transmit);
            self.tx_interval_armed = None;
        } else if interval != self.tx_interval_armed || self.timers.get(Timer::Transmit).is_none() {
            // The interval changed (a Poll ended, the remote's Required Min RX changed) or
            // transmission was just allowed: start a fresh period on the new interval.
            self.rearm_transmit(now);
        }
        if self.timers.get(Timer::Detection).is_some() {
            // The detection time may have changed (a Final, a larger Required Min RX).
            self.arm_detection_from_last_rx();
        }
    }

    /// Arms the transmit timer a jittered interval after `now` (RFC 5880 section 6.8.7), or
    /// stops it when periodic transmission is not allowed.
    fn rearm_transmit(&mut self, now: Instant) {
        match self.periodic_interval() {
            Some(interval) => {
                let delay = jittered(
                    interval.max(MIN_TX_PERIOD),
                    self.config.detect_mult,
                    self.jitter.next_u32(),
                );
                match now.checked_add(delay) {
                    Some(at) => self.timers.set(Timer::Transmit, at),
                    None => self.timers.stop(Timer::Transmit),
                }
                self.tx_interval_armed = Some(interval);
            }
            None => {
                self.timers.stop(Timer::Transmit);
                self.tx_interval_armed = None;
            }
        }
    }

    /// The periodic interval, or `None` where RFC 5880 section 6.8.7 forbids periodic packets.
    fn periodic_interval(&self) -> Option<Duration> {
        // RFC 5880 section 6.8.7: passive and the remote not yet heard -> send nothing.
        if self.config.passive && self.remote.discriminator == 0 {
            return None;
        }
        // RFC 5880 section 6.8.7: the remote runs Demand mode and both are Up -> stop.
        if self.remote.demand && self.state == State::Up && self.remote.state == State::Up {
            return None;
        }
        // RFC 5880 sections 6.8.2 and 6.8.3: max(Desired Min TX, remote Required Min RX);
        // none at all when the remote asked for a Required Min RX of 0.
        transmit_interval(self.tx_in_use, self.remote.min_rx)
    }

    fn arm_detection(&mut self, now: Instant) {
        self.last_rx = Some(now);
        self.arm_detection_from_last_rx();
    }

    /// Detection deadline = last valid packet + Detection Time (RFC 5880 section 6.8.4);
    /// stopped in AdminDown and when no detection is possible.
    fn arm_detection_from_last_rx(&mut self) {
        let deadline = match (self.state, self.last_rx, self.detection_time()) {
            (State::AdminDown, _, _) => None,
            (_, Some(last), Some(time)) => last.checked_add(time),
            _ => None,
        };
        match deadline {
            Some(at) => self.timers.set(Timer::Detection, at),
            None => self.timers.stop(Timer::Detection),
        }
    }

    /// Queues one Control packet with the current variables (RFC 5880 section 6.8.7).
    fn queue_packet(&mut self, final_: bool) {
        // RFC 5880 section 6.8.7: never P and F together; the Poll goes out with the next one.
        let poll = self.poll_active && !final_;
        let packet = Repr {
            diag: self.local_diag,
            state: self.state,
            poll,
            final_,
            control_plane_independent: false,
            // Demand mode is not implemented on our side.
            demand: false,
            detect_mult: self.config.detect_mult,
            my_discriminator: self.config.local_discriminator,
            your_discriminator: self.remote.discriminator,
            desired_min_tx_us: to_micros(self.desired_min_tx),
            required_min_rx_us: to_micros(self.required_min_rx),
            // The Echo function is not implemented: 0 tells the remote not to send Echo.
            required_min_echo_rx_us: 0,
            auth: None,
        };
        self.counters.tx += 1;
        if poll {
            self.counters.poll_tx += 1;
        }
        if final_ {
            self.counters.final_tx += 1;
        }
        self.transmits.push_back(packet);
    }

    fn drop_packet(&mut self, from: IpAddr, reason: &'static str) {
        self.counters.drops.add(reason);
        self.events.push_back(Event::Dropped { from, reason });
    }
}
