//! The task that drives every BFD session of the daemon: one timer (the earliest deadline of all
//! sessions), the receiving sockets, and the requests of the daemon and the instances.
//!
//! Every input is handed to the session it belongs to with `now`; afterwards that session's
//! packets are sent and its events acted on (reports to the instances, logs, status), the way
//! an instance task drives its VRRP router.

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use vipd_bfd::{Diagnostic, Event, JitterSource, Received, Repr, Session, SessionConfig, State};
use vipd_vrrp::Liveness;

use super::socket::{Datagram, ReceiveSocket, SendSocket, MAX_DATAGRAM};
use super::{InstanceBfd, Subscriber, Timers};
use crate::limiter::RateLimiter;
use crate::net::timer::DeadlineTimer;

/// Counters in the status are refreshed at most this often (state changes at once).
const PUBLISH_EVERY: Duration = Duration::from_secs(1);
/// Packets queued by one input are at most a handful; this bounds a logic error.
const MAX_TRANSMITS_PER_DRAIN: usize = 16;

/// What the daemon and the instances ask of the service.
enum Request {
    /// The instances that want BFD, as placed (replaces the previous list).
    Configure(Vec<InstanceBfd>),
    /// A multicast instance now hears `master` as its Master (`None`: nobody).
    Follow {
        instance: String,
        master: Option<IpAddr>,
    },
    /// Set every session AdminDown (the peers learn it is deliberate), then stop.
    Shutdown(oneshot::Sender<()>),
}

/// The daemon's handle on the BFD service.
#[derive(Clone)]
pub struct BfdHandle {
    requests: mpsc::Sender<Request>,
    pub status: Arc<Mutex<BfdStatus>>,
}

impl BfdHandle {
    /// Starts the service on the current tokio runtime. It opens no socket until a session
    /// needs one.
    pub fn start() -> anyhow::Result<BfdHandle> {
        let (tx, rx) = mpsc::channel(64);
        let status = Arc::new(Mutex::new(BfdStatus::default()));
        let timer = DeadlineTimer::new()
            .map_err(|e| anyhow::anyhow!("BFD: cannot create its timer: {e}"))?;
        let service = Service {
            instances: Vec::new(),
            followed: BTreeMap::new(),
            sessions: Vec::new(),
            rx4: None,
            rx6: None,
            timer,
            status: Arc::clone(&status),
            next_port: 49152 + (random_u32() % 16384) as u16,
            rng: Xorshift::seeded(),
            limiter: RateLimiter::new(Duration::from_secs(10)),
            dropped: BTreeMap::new(),
            last_publish: None,
            dirty: true,
        };
        tokio::spawn(service.run(rx));
        Ok(BfdHandle {
            requests: tx,
            status,
        })
    }

    /// Hands the service the instances that want BFD (all of them, after a start or reload).
    pub async fn configure(&self, instances: Vec<InstanceBfd>) {
        let _ = self.requests.send(Request::Configure(instances)).await;
    }

    /// A multicast instance reports the Master it now hears. Never blocks: a full queue drops
    /// the request (the next change sends another).
    pub fn follow(&self, instance: &str, master: Option<IpAddr>) {
        let _ = self.requests.try_send(Request::Follow {
            instance: instance.to_owned(),
            master,
        });
    }

    /// Sets every session AdminDown and stops the service (bounded wait).
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(Request::Shutdown(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), rx).await;
        }
    }
}

/// What `vipd status` and `/metrics` show of BFD.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BfdStatus {
    pub sessions: Vec<SessionReport>,
    /// Packets dropped before reaching a session, by reason (`no_session`, `unusable`, and
    /// the codec's reasons: `bad_version`, `bad_length`, ...).
    pub dropped: BTreeMap<&'static str, u64>,
}

/// One session as `vipd status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionReport {
    pub interface: String,
    pub local: IpAddr,
    pub peer: IpAddr,
    pub source_port: u16,
    /// The instances whose reports it feeds.
    pub instances: Vec<String>,
    pub state: &'static str,
    pub remote_state: &'static str,
    pub local_diag: &'static str,
    pub remote_diag: &'static str,
    pub local_discriminator: u32,
    pub remote_discriminator: u32,
    pub min_tx_ms: f64,
    pub min_rx_ms: f64,
    pub multiplier: u8,
    /// While a remote is known: the agreed detection time and transmit interval.
    pub detection_time_ms: Option<f64>,
    pub transmit_interval_ms: Option<f64>,
    pub up_transitions: u64,
    /// Exits from Up: the flaps.
    pub down_transitions: u64,
    pub rx: u64,
    pub tx: u64,
    pub send_errors: u64,
    pub dropped: BTreeMap<&'static str, u64>,
    /// Reports handed to the instances.
    pub lost_reports: u64,
    pub heard_reports: u64,
    /// When the session entered its current state.
    #[serde(skip)]
    pub since: SystemTime,
    pub seconds_in_state: u64,
}

/// One running session and what the service keeps beside it.
struct Entry {
    ifindex: u32,
    ifname: String,
    local: IpAddr,
    peer: IpAddr,
    timers: Timers,
    session: Session<Xorshift>,
    socket: SendSocket,
    subscribers: Vec<(String, Subscriber)>,
    /// `Lost` was reported and no sign of life since.
    reported_lost: bool,
    /// The remote's discriminator while Up: a restarted peer comes back with another one,
    /// and its packets are no sign of life of the Master that was lost.
    up_remote_discriminator: u32,
    /// The detection time while Up (reset by the core when the session goes Down).
    detection_time: Duration,
    since: SystemTime,
    send_errors: u64,
    lost_reports: u64,
    heard_reports: u64,
}

struct Service {
    instances: Vec<InstanceBfd>,
    /// Multicast instances: the Master each one hears.
    followed: BTreeMap<String, IpAddr>,
    sessions: Vec<Entry>,
    rx4: Option<ReceiveSocket>,
    rx6: Option<ReceiveSocket>,
    timer: DeadlineTimer,
    status: Arc<Mutex<BfdStatus>>,
    next_port: u16,
    rng: Xorshift,
    limiter: RateLimiter,
    dropped: BTreeMap<&'static str, u64>,
    last_publish: Option<Instant>,
    /// Something the status shows beyond counters changed.
    dirty: bool,
}

enum Wake {
    Timer,
    Request(Option<Request>),
    Packet(std::io::Result<Datagram>),
}

impl Service {
    async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut buf = [0u8; MAX_DATAGRAM];
        loop {
            let deadline = self
                .sessions
                .iter()
                .filter_map(|e| e.session.poll_timeout())
                .min();
            if let Err(e) = self.timer.arm(deadline) {
                tracing::error!("BFD: cannot arm its timer, sessions stop: {e}");
                return;
            }
            let (timer, rx4, rx6) = (&mut self.timer, &mut self.rx4, &mut self.rx6);
            let wake = poll_fn(|cx| {
                if timer.poll_expired(cx).is_ready() {
                    return Poll::Ready(Wake::Timer);
                }
                if let Poll::Ready(r) = requests.poll_recv(cx) {
                    return Poll::Ready(Wake::Request(r));
                }
                for rx in [rx4.as_mut(), rx6.as_mut()].into_iter().flatten() {
                    if let Poll::Ready(r) = rx.poll_recv(cx, &mut buf) {
                        return Poll::Ready(Wake::Packet(r));
                    }
                }
                Poll::Pending
            })
            .await;
            let now = Instant::now();
            match wake {
                Wake::Timer => {
                    for i in 0..self.sessions.len() {
                        if self.sessions[i]
                            .session
                            .poll_timeout()
                            .is_some_and(|t| t <= now)
                        {
                            self.sessions[i].session.handle_timeout(now);
                            self.drain(i);
                        }
                    }
                }
                Wake::Request(Some(Request::Configure(list))) => {
                    self.instances = list;
                    self.followed
                        .retain(|name, _| self.instances.iter().any(|i| &i.instance == name));
                    self.reconcile(now);
                }
                Wake::Request(Some(Request::Follow { instance, master })) => {
                    let changed = match master {
                        Some(m) => self.followed.insert(instance, m) != Some(m),
                        None => self.followed.remove(&instance).is_some(),
                    };
                    if changed {
                        self.reconcile(now);
                    }
                }
                Wake::Request(Some(Request::Shutdown(reply))) => {
                    self.admin_down_all(now);
                    self.publish(true);
                    let _ = reply.send(());
                    return;
                }
                Wake::Request(None) => {
                    self.admin_down_all(now);
                    return;
                }
                Wake::Packet(Ok(d)) => {
                    let payload = buf.get(..d.len.min(buf.len())).unwrap_or(&[]);
                    self.on_packet(now, d, payload);
                }
                Wake::Packet(Err(e)) => {
                    if self.limiter.allow("bfd_recv_error") {
                        tracing::warn!("BFD: receiving failed: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            let unusable: u64 = [self.rx4.as_ref(), self.rx6.as_ref()]
                .into_iter()
                .flatten()
                .map(|r| r.unusable)
                .sum();
            if unusable > 0 {
                self.dropped.insert("unusable", unusable);
            }
            self.publish(false);
        }
    }

    fn on_packet(&mut self, now: Instant, d: Datagram, payload: &[u8]) {
        let packet = match Repr::parse(payload) {
            Ok(p) => p,
            Err(e) => {
                self.drop_packet(d.src, e.drop_reason(), &e.to_string());
                return;
            }
        };
        // RFC 5880 section 6.8.6: Your Discriminator selects the session; 0 (only in Down /
        // AdminDown) leaves the choice to the source address and interface (RFC 5881 section 3).
        let found = if packet.your_discriminator != 0 {
            self.sessions
                .iter()
                .position(|e| e.session.config().local_discriminator == packet.your_discriminator)
        } else {
            self.sessions
                .iter()
                .position(|e| e.peer == d.src && e.ifindex == d.ifindex)
        };
        let Some(i) = found else {
            self.drop_packet(
                d.src,
                "no_session",
                "no session with this peer or discriminator",
            );
            return;
        };
        let entry = &mut self.sessions[i];
        let dropped_before = entry.session.counters().drops.total();
        entry.session.handle_packet(
            now,
            Received {
                src: d.src,
                ttl: d.ttl,
                packet: &packet,
            },
        );
        let accepted = entry.session.counters().drops.total() == dropped_before;
        // A sign of life of the peer that was reported lost: the same incarnation (the
        // discriminator it had while Up) and not stepping down on purpose.
        if accepted
            && entry.reported_lost
            && packet.my_discriminator == entry.up_remote_discriminator
            && packet.state != State::AdminDown
        {
            entry.reported_lost = false;
            entry.heard_reports += 1;
            tracing::info!(
                peer = %entry.peer,
                interface = %entry.ifname,
                "BFD: heard {} again after reporting it lost; telling the instances it is alive",
                entry.peer
            );
            report(entry, Liveness::Heard);
        }
        self.drain(i);
    }

    fn drop_packet(&mut self, src: IpAddr, reason: &'static str, detail: &str) {
        *self.dropped.entry(reason).or_insert(0) += 1;
        if self.limiter.allow(reason) {
            tracing::warn!(
                from = %src,
                reason,
                "BFD: dropped a packet from {src}: {detail} (further drops of this kind are logged at most every 10 s)"
            );
        }
    }

    /// Sends what session `i` queued and acts on its events.
    fn drain(&mut self, i: usize) {
        let mut out = [0u8; 64];
        let entry = &mut self.sessions[i];
        for _ in 0..MAX_TRANSMITS_PER_DRAIN {
            let Some(packet) = entry.session.poll_transmit() else {
                break;
            };
            match packet.emit(&mut out) {
                Ok(len) => {
                    if let Err(e) = entry.socket.send(&out[..len.min(out.len())]) {
                        entry.send_errors += 1;
                        if self.limiter.allow("bfd_send_error") {
                            tracing::warn!(peer = %entry.peer, "BFD: sending to {} failed: {e}", entry.peer);
                        }
                    }
                }
                Err(e) => tracing::error!(peer = %entry.peer, "BFD: cannot build a packet: {e}"),
            }
        }
        while let Some(event) = entry.session.poll_event() {
            match event {
                Event::StateChanged { from, to, diag } => {
                    entry.since = SystemTime::now();
                    self.dirty = true;
                    log_transition(entry, from, to, diag);
                }
                Event::SessionUp => {
                    entry.up_remote_discriminator = entry.session.remote().discriminator;
                    entry.reported_lost = false;
                }
                Event::SessionDown { to, diag } => on_session_down(entry, to, diag),
                Event::Dropped { from, reason } => {
                    if self.limiter.allow(reason) {
                        tracing::warn!(
                            from = %from,
                            reason,
                            "BFD: dropped a packet from {from} for the session with {}: {reason} (logged at most every 10 s per reason)",
                            entry.peer
                        );
                    }
                }
            }
        }
        if entry.session.state() == State::Up {
            if let Some(d) = entry.session.detection_time() {
                entry.detection_time = d;
            }
        }
    }

    /// Brings the sessions in line with what the instances want now.
    fn reconcile(&mut self, now: Instant) {
        let wanted = self.wanted();
        // Sessions nobody wants any more: AdminDown first, so the peer does not take the
        // silence for a failure (RFC 5880 section 6.8.16).
        let mut i = 0;
        while i < self.sessions.len() {
            let e = &self.sessions[i];
            if wanted
                .iter()
                .any(|w| (w.ifindex, w.local, w.peer) == (e.ifindex, e.local, e.peer))
            {
                i += 1;
                continue;
            }
            let mut gone = self.sessions.remove(i);
            gone.session.set_admin_down(now, true);
            while let Some(p) = gone.session.poll_transmit() {
                let mut out = [0u8; 64];
                if let Ok(len) = p.emit(&mut out) {
                    let _ = gone.socket.send(&out[..len.min(out.len())]);
                }
            }
            tracing::info!(peer = %gone.peer, interface = %gone.ifname, "BFD: session with {} removed (no instance wants it)", gone.peer);
            self.dirty = true;
        }
        for w in wanted {
            let existing = self
                .sessions
                .iter()
                .position(|e| (e.ifindex, e.local, e.peer) == (w.ifindex, w.local, w.peer));
            match existing {
                Some(i) if self.sessions[i].timers.multiplier == w.timers.multiplier => {
                    let e = &mut self.sessions[i];
                    e.subscribers = w.subscribers;
                    if e.timers != w.timers {
                        e.timers = w.timers;
                        // While Up each change starts a Poll Sequence (RFC 5880 section 6.8.3).
                        let _ = e.session.set_desired_min_tx(now, w.timers.min_tx);
                        let _ = e.session.set_required_min_rx(now, w.timers.min_rx);
                        self.drain(i);
                    }
                }
                existing => {
                    // New, or a new Detect Mult (not changeable in a running session).
                    if let Some(i) = existing {
                        self.sessions.remove(i);
                    }
                    match self.open(now, &w) {
                        Ok(entry) => {
                            tracing::info!(
                                peer = %entry.peer,
                                interface = %entry.ifname,
                                local = %entry.local,
                                source_port = entry.socket.source_port,
                                "BFD: session with {} started (min_tx {:?}, min_rx {:?}, multiplier {})",
                                entry.peer, w.timers.min_tx, w.timers.min_rx, w.timers.multiplier
                            );
                            self.sessions.push(entry);
                            let last = self.sessions.len() - 1;
                            self.drain(last);
                        }
                        Err(e) => tracing::error!(
                            peer = %w.peer,
                            interface = %w.ifname,
                            "BFD: cannot start the session with {}: {e:#}; the instances {} keep plain VRRP timing for it",
                            w.peer,
                            w.subscribers.iter().map(|s| s.0.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    }
                }
            }
        }
        self.dirty = true;
    }

    /// The sessions every instance wants, merged per (interface, local, peer).
    fn wanted(&self) -> Vec<Wanted> {
        let mut out: Vec<Wanted> = Vec::new();
        for ib in &self.instances {
            let followed = ib
                .follow_master
                .zip(self.followed.get(&ib.instance).copied())
                .map(|(t, m)| (m, t));
            for (peer, timers) in ib.peers.iter().copied().chain(followed) {
                if peer == ib.local {
                    continue;
                }
                let sub = (ib.instance.clone(), Arc::clone(&ib.reports));
                match out
                    .iter_mut()
                    .find(|w| (w.ifindex, w.local, w.peer) == (ib.ifindex, ib.local, peer))
                {
                    // The validator refuses different timers for one peer; the first wins.
                    Some(w) => w.subscribers.push(sub),
                    None => out.push(Wanted {
                        ifindex: ib.ifindex,
                        ifname: ib.ifname.clone(),
                        local: ib.local,
                        peer,
                        timers,
                        subscribers: vec![sub],
                    }),
                }
            }
        }
        out
    }

    fn open(&mut self, now: Instant, w: &Wanted) -> anyhow::Result<Entry> {
        let rx = if w.peer.is_ipv4() {
            &mut self.rx4
        } else {
            &mut self.rx6
        };
        if rx.is_none() {
            *rx = Some(ReceiveSocket::open(w.peer.is_ipv4())?);
        }
        let config = SessionConfig {
            local_address: w.local,
            peer_address: w.peer,
            local_discriminator: self.new_discriminator(),
            desired_min_tx: w.timers.min_tx,
            required_min_rx: w.timers.min_rx,
            detect_mult: w.timers.multiplier,
            passive: false,
        };
        config.check()?;
        let socket = SendSocket::open(w.local, w.peer, &w.ifname, w.ifindex, self.next_port)?;
        self.next_port = socket.source_port.wrapping_add(1).max(49152);
        let jitter = Xorshift(self.rng.next_u64() | 1);
        Ok(Entry {
            ifindex: w.ifindex,
            ifname: w.ifname.clone(),
            local: w.local,
            peer: w.peer,
            timers: w.timers,
            session: Session::new(config, jitter, now),
            socket,
            subscribers: w.subscribers.clone(),
            reported_lost: false,
            up_remote_discriminator: 0,
            detection_time: w
                .timers
                .min_rx
                .saturating_mul(u32::from(w.timers.multiplier)),
            since: SystemTime::now(),
            send_errors: 0,
            lost_reports: 0,
            heard_reports: 0,
        })
    }

    /// RFC 5880 section 6.8.1: nonzero and unique among the system's sessions; random, so a
    /// restarted daemon's sessions are not taken for the old ones.
    fn new_discriminator(&mut self) -> u32 {
        loop {
            let d = self.rng.next_u32();
            if d != 0
                && !self
                    .sessions
                    .iter()
                    .any(|e| e.session.config().local_discriminator == d)
            {
                return d;
            }
        }
    }

    fn admin_down_all(&mut self, now: Instant) {
        for i in 0..self.sessions.len() {
            self.sessions[i].session.set_admin_down(now, true);
            self.drain(i);
        }
    }

    /// Copies the sessions into the shared status: at once after a state or set change,
    /// otherwise at most every [`PUBLISH_EVERY`].
    fn publish(&mut self, force: bool) {
        let now = Instant::now();
        let due = self
            .last_publish
            .is_none_or(|t| now.saturating_duration_since(t) >= PUBLISH_EVERY);
        if !(force || self.dirty || due) {
            return;
        }
        self.dirty = false;
        self.last_publish = Some(now);
        let wall = SystemTime::now();
        let sessions = self.sessions.iter().map(|e| e.report(wall)).collect();
        if let Ok(mut s) = self.status.lock() {
            s.sessions = sessions;
            s.dropped = self.dropped.clone();
        }
    }
}

/// One session the instances want.
struct Wanted {
    ifindex: u32,
    ifname: String,
    local: IpAddr,
    peer: IpAddr,
    timers: Timers,
    subscribers: Vec<(String, Subscriber)>,
}

impl Entry {
    fn report(&self, wall: SystemTime) -> SessionReport {
        let s = &self.session;
        let c = s.counters();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        SessionReport {
            interface: self.ifname.clone(),
            local: self.local,
            peer: self.peer,
            source_port: self.socket.source_port,
            instances: self.subscribers.iter().map(|s| s.0.clone()).collect(),
            state: s.state().as_str(),
            remote_state: s.remote().state.as_str(),
            local_diag: s.local_diag().as_str(),
            remote_diag: s.remote().diag.as_str(),
            local_discriminator: s.config().local_discriminator,
            remote_discriminator: s.remote().discriminator,
            min_tx_ms: ms(self.timers.min_tx),
            min_rx_ms: ms(self.timers.min_rx),
            multiplier: self.timers.multiplier,
            detection_time_ms: s.detection_time().map(ms),
            transmit_interval_ms: s.transmit_interval().map(ms),
            up_transitions: c.up_transitions,
            down_transitions: c.down_transitions,
            rx: c.rx,
            tx: c.tx,
            send_errors: self.send_errors,
            dropped: c.drops.iter().filter(|(_, n)| *n > 0).collect(),
            lost_reports: self.lost_reports,
            heard_reports: self.heard_reports,
            since: self.since,
            seconds_in_state: wall
                .duration_since(self.since)
                .unwrap_or_default()
                .as_secs(),
        }
    }
}

/// Hands `report` about the entry's peer to every instance that wants the session.
fn report(entry: &Entry, report: Liveness) {
    for (instance, subscriber) in &entry.subscribers {
        if !subscriber(entry.peer, report) {
            tracing::warn!(
                instance = %instance,
                peer = %entry.peer,
                "BFD: could not hand the report {report:?} to instance {instance} (stopped or busy)"
            );
        }
    }
}

fn on_session_down(entry: &mut Entry, to: State, diag: Diagnostic) {
    // RFC 5882 section 3.2: a session taken down on purpose (ours or the peer's AdminDown) is
    // no failure of the path.
    if to == State::AdminDown || entry.session.remote().state == State::AdminDown {
        tracing::info!(
            peer = %entry.peer,
            "BFD: session with {} administratively down; not a failure, no take-over",
            entry.peer
        );
        return;
    }
    entry.reported_lost = true;
    entry.lost_reports += 1;
    let detection_time = entry.detection_time;
    tracing::warn!(
        peer = %entry.peer,
        interface = %entry.ifname,
        diag = diag.as_str(),
        "BFD: lost {} ({}; detection time {:?}); telling the instances",
        entry.peer,
        diag.as_str(),
        detection_time
    );
    report(entry, Liveness::Lost { detection_time });
}

fn log_transition(entry: &Entry, from: State, to: State, diag: Diagnostic) {
    if to == State::Up {
        tracing::info!(
            peer = %entry.peer,
            interface = %entry.ifname,
            "BFD: session with {} is Up (detection time {:?})",
            entry.peer,
            entry.session.detection_time().unwrap_or_default()
        );
    } else {
        tracing::debug!(
            peer = %entry.peer,
            "BFD: session with {}: {} -> {} ({})",
            entry.peer,
            from.as_str(),
            to.as_str(),
            diag.as_str()
        );
    }
}

/// xorshift64*: transmit jitter and discriminators need spread, not secrecy.
#[derive(Debug, Clone)]
struct Xorshift(u64);

impl Xorshift {
    fn seeded() -> Xorshift {
        let seed = (u64::from(random_u32()) << 32) | u64::from(random_u32());
        Xorshift(seed | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

impl JitterSource for Xorshift {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}

/// A random u32 from the kernel (getrandom(2)); the clock if that fails.
fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the buffer it is given, which
    // is a live, writable local array of that length.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n == 4 {
        return u32::from_ne_bytes(bytes);
    }
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0x9e37_79b9)
}
