//! One VRRP instance on one interface: the shell around a `vipd_vrrp::Router`.
//!
//! Every instance runs on the daemon's one VRRP thread (named `vrrp`, `event_loop.rs`), which
//! owns each instance's raw socket, announcer and router, and waits in one `epoll_pwait2` on
//! every socket and mailbox, with the nearest protocol deadline as its timeout
//! (net/poller.rs). Every input (a received packet, a timer deadline, a command from the
//! daemon, an address change seen on netlink) is fed to the instance's router with `now`;
//! after each, the router's actions are carried out in order. Commands and address events
//! reach an instance's mailbox through a small tokio task (`event_loop::bridge`); VIPs are
//! added and removed over the daemon's netlink connection, which its runtime drives.
//!
//! Why a thread and not tokio tasks: at 10 ms adverts a tokio wake-up cost about 2,000
//! instructions of scheduler, reactor and timer-wheel bookkeeping per advert, more than the
//! protocol work itself; and why one thread for all: instances whose timers fall together
//! share a wake-up, as in keepalived's single loop (docs/benchmarks.md).

mod event_loop;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use tokio::sync::{mpsc, oneshot};
use vipd_vrrp::packet::{AddressFamily, Auth, ParseError, Version};
use vipd_vrrp::router::{drop_reason, Received, ReconfigureError};
use vipd_vrrp::sync_group::SyncCommand;
use vipd_vrrp::{Action, Advertisement, Event, Liveness, Router, State};

use crate::bfd::BfdHandle;
use crate::config::InstanceConfig;
use crate::health::Priority;
use crate::net::announce::Announcer;
use crate::net::netlink::{AddressEvent, AddressEventKind, VipManager};
use crate::net::placement::Placement;
use crate::net::socket::{SocketConfig, VrrpSocket};

use super::status::InstanceStatus;
use crate::limiter::RateLimiter;
use event_loop::Wake;

/// Largest VRRP payload we accept: 255 IPv6 addresses plus the header (RFC 9568 5.2.5).
const MAX_PAYLOAD: usize = 8 + 255 * 16 + 8;
/// How late the counters in status and metrics may be. A change of state, priority, Master or
/// VIPs is published at once; copying the counters after every advert was a tenth of the
/// instructions of a 10 ms instance.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// What the daemon can ask of a running instance.
#[derive(Debug)]
pub enum Command {
    /// Health tracking recomputed the effective priority / fault state.
    Priority(Priority),
    /// Reload with a configuration of the same identity (see [`same_identity`]).
    Reconfigure(Box<InstanceConfig>),
    /// Make-before-break resign, then stop.
    Shutdown,
    /// Operator hand-over: resign make-before-break, then stay out of the election (the
    /// reply is sent once the VIPs are released) until [`Command::Resume`].
    Resign(oneshot::Sender<String>),
    /// Rejoin the election after [`Command::Resign`].
    Resume(oneshot::Sender<String>),
    /// A BFD session to `peer` lost it or heard it again (bfd/service.rs).
    Liveness { peer: IpAddr, report: Liveness },
    /// New unicast peers (from the Kubernetes API): adverts go to them and the source filter
    /// admits them from now on; the state stays. Never empty (the source refuses that).
    SetPeers(Vec<IpAddr>),
    /// What the instance's sync group asks of it (daemon.rs, vipd_vrrp::sync_group).
    Sync(SyncCommand),
}

/// What an instance tells the rest of the daemon besides its status.
#[derive(Clone)]
pub struct Hooks {
    /// A multicast instance with BFD tells it which Master it hears.
    pub bfd: BfdHandle,
    /// Every state change (instance name, new state), for the sync groups.
    pub states: mpsc::Sender<(String, State)>,
}

/// The daemon's handle on a running instance task.
#[derive(Debug)]
pub struct InstanceHandle {
    pub name: String,
    pub config: InstanceConfig,
    /// Interface and source address the instance runs on.
    pub placement: Placement,
    pub commands: mpsc::Sender<Command>,
    pub status: Arc<Mutex<InstanceStatus>>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Whether a reload can hand `new` to the running router (same socket, same router identity),
/// or the instance must be stopped and started again.
pub fn same_identity(old: &InstanceConfig, new: &InstanceConfig) -> bool {
    old.vrid == new.vrid
        && old.version == new.version
        && old.family == new.family
        && old.interface == new.interface
        && old.unicast_source == new.unicast_source
        && old.peers == new.peers
        && old.vips.first() == new.vips.first()
}

/// Everything the task needs, opened before it is spawned so a bad interface fails startup.
pub struct Instance {
    config: InstanceConfig,
    placement: Placement,
    socket: VrrpSocket,
    announcer: Announcer,
    vips: VipManager,
    router: Router,
    status: Arc<Mutex<InstanceStatus>>,
    /// Parse failures by label (the router never sees those packets).
    malformed: BTreeMap<&'static str, u64>,
    limiter: RateLimiter,
    /// Whether our VIPs are on the interface, as far as we know.
    holding: bool,
    /// VIPs someone else deleted while we are Master, restored on the next drain.
    pending_repair: Vec<IpAddr>,
    /// Set by an operator's resign: the stopped router stays stopped until resumed.
    resigned: bool,
    resign_reply: Option<oneshot::Sender<String>>,
    /// Health tracking's last verdict, reapplied when the router is rebuilt.
    priority: Priority,
    /// Reused for every advert sent (MAX_PAYLOAD bytes).
    send_buf: Vec<u8>,
    /// Every received advert is decoded into this one (its address list keeps its allocation).
    recv_advert: Advertisement,
    /// BFD (the Master heard) and the sync groups (state changes).
    hooks: Hooks,
    /// The Master last told to BFD.
    followed: Option<IpAddr>,
    /// What the last publish showed, and when the counters are due again.
    published: Option<Published>,
    publish_due: Instant,
    /// The daemon's runtime, which drives the netlink connection the VIPs are changed over.
    rt: tokio::runtime::Handle,
}

impl Instance {
    /// Opens the socket and announcer, and removes VIPs a crashed run left behind.
    pub async fn open(
        config: InstanceConfig,
        placement: Placement,
        vips: VipManager,
        initial: Priority,
        hooks: Hooks,
    ) -> anyhow::Result<(Self, Arc<Mutex<InstanceStatus>>)> {
        let family = config.family;
        let socket = VrrpSocket::open(&SocketConfig {
            ifname: placement.interface.ifname.clone(),
            ifindex: placement.interface.ifindex,
            family,
            vrid: config.vrid,
            source: placement.source,
            peers: config.peers.clone(),
        })
        .with_context(|| format!("instance {:?}: opening the VRRP socket", config.name))?;
        let announcer = Announcer::new(placement.interface.ifindex).with_context(|| {
            format!(
                "instance {:?}: opening the announcement socket on {}",
                config.name, placement.interface.ifname
            )
        })?;
        // A run that was SIGKILLed, or a keepalived before us, may have left our VIPs on the
        // interface: a node that is not Master must not answer for them. An address owner
        // (priority 255) becomes Master at once, so its VIPs stay.
        if config.priority != 255 {
            for vip in &config.vips {
                if vips
                    .present(placement.interface.ifindex, *vip)
                    .await
                    .unwrap_or(false)
                {
                    vips.remove(placement.interface.ifindex, *vip)
                        .await
                        .with_context(|| {
                            format!("instance {:?}: removing stale VIP {vip}", config.name)
                        })?;
                    tracing::warn!(
                        instance = %config.name,
                        %vip,
                        interface = %placement.interface.ifname,
                        "removed a VIP left behind by an earlier run (unclean exit); it returns if this node is elected"
                    );
                }
            }
        }
        let now = Instant::now();
        let mut router = Router::new(config.router_config(placement.source), now);
        router.set_priority(now, i32::from(initial.value));
        let status = Arc::new(Mutex::new(InstanceStatus::new(
            &config, &placement, initial,
        )));
        let instance = Instance {
            config,
            placement,
            socket,
            announcer,
            vips,
            router,
            status: Arc::clone(&status),
            malformed: BTreeMap::new(),
            limiter: RateLimiter::new(Duration::from_secs(10)),
            holding: false,
            pending_repair: Vec::new(),
            resigned: false,
            resign_reply: None,
            priority: initial,
            send_buf: vec![0u8; MAX_PAYLOAD],
            recv_advert: Advertisement {
                version: Version::V3,
                vrid: 0,
                priority: 0,
                interval_cs: 0,
                addresses: Vec::with_capacity(8),
                auth: Auth::None,
            },
            hooks,
            followed: None,
            published: None,
            publish_due: now,
            rt: tokio::runtime::Handle::current(),
        };
        Ok((instance, status))
    }

    /// Hands the instance to the VRRP thread and starts the task that forwards `commands` to
    /// it. The handle completes when the instance has stopped.
    pub async fn start(
        self,
        commands: mpsc::Receiver<Command>,
        initial: Priority,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let name = self.config.name.clone();
        let address_events = match self.vips.watch().await {
            Ok(rx) => Some(rx),
            Err(e) => {
                tracing::warn!(
                    instance = %name,
                    "cannot watch address changes, a VIP deleted by hand will not be restored: {e}"
                );
                None
            }
        };
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let post = event_loop::admit(self, initial, done_tx)
            .await
            .with_context(|| format!("instance {name:?}: handing it to the VRRP thread"))?;
        tokio::spawn(event_loop::bridge(commands, address_events, post));
        Ok(tokio::spawn(async move {
            let _ = done_rx.await;
        }))
    }

    /// Starts the router (on the VRRP thread).
    fn begin(&mut self, now: Instant, initial: Priority) {
        if initial.fault {
            self.router.set_fault(now, true);
        }
        self.router.startup(now);
        self.drain(now);
    }

    /// Handles what woke the instance (the router's actions are carried out afterwards, by
    /// `drain`); a packet's payload is at the start of `buf`. `true`: receiving failed, the
    /// socket should pause.
    fn on_wake(
        &mut self,
        now: Instant,
        event: Wake,
        deadline: Option<Instant>,
        buf: &[u8],
    ) -> bool {
        match event {
            Wake::Packet(Ok(packet)) => {
                self.on_packet(now, packet.payload(buf), &packet);
            }
            Wake::Packet(Err(e)) => {
                if self.limiter.allow("recv_error") {
                    tracing::warn!(instance = %self.config.name, "receiving VRRP adverts failed: {e}");
                }
                return true;
            }
            Wake::Deadline => {
                if let Some(d) = deadline {
                    self.record_lateness(now.saturating_duration_since(d));
                }
                self.router.handle_timeout(now);
            }
            Wake::Command(c) => self.on_command(c),
            // The daemon dropped us without a shutdown: resign anyway, and end even if an
            // operator's resign had stopped us already (nothing can resume us now).
            Wake::Closed => {
                self.resigned = false;
                self.router.shutdown(now);
            }
            Wake::Address(e) => self.on_address_event(e),
        }
        false
    }

    /// The router has stopped: answers a pending resign. `true`: the task ends (a shutdown,
    /// not a resign that waits for `vipd resume`).
    fn stopped(&mut self) -> bool {
        if let Some(reply) = self.resign_reply.take() {
            let _ = reply.send(format!(
                "instance {}: resigned; VIPs released; this node stays out of the election until resumed",
                self.config.name
            ));
        }
        !self.resigned
    }

    fn on_packet(
        &mut self,
        now: Instant,
        payload: &[u8],
        packet: &crate::net::socket::ReceivedPacket,
    ) {
        match self.recv_advert.parse_into(payload, packet.src, packet.dst) {
            Ok(checksum_form) => {
                self.router.handle_advert(
                    now,
                    Received {
                        src: packet.src,
                        ttl: packet.ttl,
                        advert: &self.recv_advert,
                        checksum_form,
                    },
                );
                // Remembers what other routers say about this VRID (collisions, in status).
                let (src, advert) = (packet.src, &self.recv_advert);
                if let Ok(mut status) = self.status.lock() {
                    status.note_peer(src, advert, &self.config.vips, now);
                }
            }
            Err(e) => {
                let label = parse_error_label(&e);
                *self.malformed.entry(label).or_insert(0) += 1;
                if self.limiter.allow(label) {
                    tracing::warn!(
                        instance = %self.config.name,
                        from = %packet.src,
                        reason = label,
                        "dropped a malformed VRRP packet: {e}"
                    );
                }
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Priority(p) => {
                self.priority = p;
                self.router.set_priority(now, i32::from(p.value));
                if p.fault != (self.router.state() == State::Fault) {
                    self.router.set_fault(now, p.fault);
                }
                if let Ok(mut status) = self.status.lock() {
                    status.tracked = p;
                }
            }
            Command::Reconfigure(new) => {
                let router_config = new.router_config(self.placement.source);
                match self.router.reconfigure(now, router_config) {
                    Ok(()) => {
                        tracing::info!(instance = %self.config.name, "configuration reloaded; state kept");
                        self.config = *new;
                        if let Ok(mut status) = self.status.lock() {
                            status.reconfigured(&self.config);
                        }
                    }
                    Err(ReconfigureError::IdentityChanged { field, .. }) => {
                        // The daemon checks identity first; reaching here is a daemon bug, so
                        // keep running on the old configuration rather than half-applying.
                        tracing::error!(
                            instance = %self.config.name,
                            field,
                            "reload changed the instance's identity; keeping the old configuration"
                        );
                    }
                }
            }
            Command::Shutdown => {
                self.resigned = false;
                self.router.shutdown(now);
            }
            Command::Resign(reply) => {
                tracing::info!(instance = %self.config.name, "resigning on request (vipd resign, bootstrap hand-off or host shutdown): handing over make-before-break");
                self.resigned = true;
                self.resign_reply = Some(reply);
                self.router.shutdown(now);
            }
            Command::Liveness { peer, report } => {
                self.router.handle_liveness(now, peer, report);
            }
            Command::SetPeers(peers) => self.set_peers(now, peers),
            Command::Sync(command) => self.router.sync(now, command),
            Command::Resume(reply) => {
                if !self.resigned {
                    let _ = reply.send(format!(
                        "instance {}: not resigned; nothing to do",
                        self.config.name
                    ));
                    return;
                }
                if !self.router.is_stopped() {
                    let _ = reply.send(format!(
                        "instance {}: still handing over; try again in a moment",
                        self.config.name
                    ));
                    return;
                }
                self.resigned = false;
                self.router = Router::new(self.config.router_config(self.placement.source), now);
                self.router
                    .set_priority(now, i32::from(self.priority.value));
                if self.priority.fault {
                    self.router.set_fault(now, true);
                }
                self.router.startup(now);
                tracing::info!(instance = %self.config.name, "resuming on request (vipd resume or bootstrap hand-off): rejoining the election");
                let _ = reply.send(format!(
                    "instance {}: rejoined the election",
                    self.config.name
                ));
            }
        }
    }

    /// Peers from the Kubernetes API: the running router keeps its state; only where adverts
    /// go and whom it hears change (a multicast instance becomes unicast in place).
    fn set_peers(&mut self, now: Instant, peers: Vec<IpAddr>) {
        if peers.is_empty() || peers == self.config.peers {
            return;
        }
        let mut config = self.config.clone();
        config.peers = peers;
        // Unicast with a known peer list: check sources unless the file said otherwise.
        if self.config.peers.is_empty() && self.config.accept_from.is_empty() {
            config.check_source = true;
        }
        match self
            .router
            .reconfigure(now, config.router_config(self.placement.source))
        {
            Ok(()) => {
                tracing::info!(
                    instance = %self.config.name,
                    from = ?self.config.peers,
                    to = ?config.peers,
                    "unicast peers changed (Kubernetes node list); state kept"
                );
                self.config = config;
                if let Ok(mut status) = self.status.lock() {
                    status.reconfigured(&self.config);
                }
            }
            Err(e) => {
                tracing::error!(instance = %self.config.name, "cannot apply the new peers: {e}")
            }
        }
    }

    fn on_address_event(&mut self, event: AddressEvent) {
        if event.kind != AddressEventKind::Removed
            || event.ifindex != self.placement.interface.ifindex
            || !self.router.config().vips.contains(&event.address)
        {
            return;
        }
        if matches!(self.router.state(), State::Master | State::Resigning) && self.holding {
            tracing::warn!(
                instance = %self.config.name,
                vip = %event.address,
                "a VIP was removed from the interface by someone else while this node is Master; restoring it"
            );
            if let Ok(mut status) = self.status.lock() {
                status.vip_repairs += 1;
            }
            self.pending_repair.push(event.address);
        }
    }

    /// Carries out every queued action, in the order the router queued them (the router puts
    /// announcements before adverts where it matters: see `Router::become_master`).
    fn drain(&mut self, now: Instant) {
        for vip in std::mem::take(&mut self.pending_repair) {
            self.add_vip(vip);
            self.announce_one(vip);
        }
        while let Some(action) = self.router.poll_action() {
            match action {
                Action::Send(advert) => {
                    self.send(&advert);
                    self.router.recycle(advert);
                }
                Action::AddVips => {
                    for vip in self.router.config().vips.clone() {
                        self.add_vip(vip);
                    }
                    self.holding = true;
                }
                Action::RemoveVips => {
                    for vip in self.router.config().vips.clone() {
                        self.remove_vip(vip);
                    }
                    self.holding = false;
                }
                Action::UpdateVips { added, removed } => {
                    for vip in removed {
                        self.remove_vip(vip);
                    }
                    for vip in added {
                        self.add_vip(vip);
                        self.announce_one(vip);
                    }
                }
                Action::Announce => {
                    for vip in self.router.config().vips.clone() {
                        self.announce_one(vip);
                    }
                }
                Action::Event(event) => self.on_event(event),
            }
        }
        self.publish(now);
    }

    fn send(&mut self, advert: &Advertisement) {
        let multicast = [VrrpSocket::multicast_group(self.config.family)];
        let destinations: &[IpAddr] = if self.config.peers.is_empty() {
            &multicast
        } else {
            &self.config.peers
        };
        let source = self.socket.source();
        // Only the advert's own bytes are cleared: a whole MAX_PAYLOAD buffer per send was
        // almost half of the instructions of a 10 ms Master (callgrind).
        let len = advert
            .buffer_len(AddressFamily::of(source))
            .min(self.send_buf.len());
        let buf = &mut self.send_buf[..len];
        for &dst in destinations {
            buf.fill(0);
            // The pseudo-header checksum covers the destination, so emit per destination.
            let len = match advert.emit(buf, source, dst, self.config.checksum) {
                Ok(len) => len,
                Err(e) => {
                    if self.limiter.allow("emit_error") {
                        tracing::error!(instance = %self.config.name, "cannot build an advert: {e}");
                    }
                    continue;
                }
            };
            if let Err(e) = self.socket.send(&buf[..len], dst) {
                if let Ok(mut status) = self.status.lock() {
                    status.send_errors += 1;
                }
                if self.limiter.allow("send_error") {
                    tracing::warn!(instance = %self.config.name, %dst, "sending a VRRP advert failed: {e}");
                }
            }
        }
    }

    /// Netlink requests go through the daemon's connection; its runtime (the main thread)
    /// drives it while this thread waits for the answer.
    fn add_vip(&mut self, vip: IpAddr) {
        let ifindex = self.placement.interface.ifindex;
        if let Err(e) = self.rt.block_on(self.vips.add(ifindex, vip)) {
            tracing::error!(
                instance = %self.config.name,
                %vip,
                interface = %self.placement.interface.ifname,
                "cannot add the VIP: {e}"
            );
        }
    }

    fn remove_vip(&mut self, vip: IpAddr) {
        let ifindex = self.placement.interface.ifindex;
        if let Err(e) = self.rt.block_on(self.vips.remove(ifindex, vip)) {
            tracing::error!(
                instance = %self.config.name,
                %vip,
                interface = %self.placement.interface.ifname,
                "cannot remove the VIP: {e}"
            );
        }
    }

    fn announce_one(&mut self, vip: IpAddr) {
        for _ in 0..self.config.announce_count {
            if let Err(e) = self.announcer.announce(vip) {
                if self.limiter.allow("announce_error") {
                    tracing::warn!(instance = %self.config.name, %vip, "announcing the VIP failed: {e}");
                }
                break;
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        let name = &self.config.name;
        match event {
            Event::StateChanged { from, to, reason } => {
                let master = self
                    .router
                    .master()
                    .map(|m| m.address.to_string())
                    .unwrap_or_else(|| "-".into());
                tracing::info!(
                    instance = %name,
                    vrid = self.config.vrid,
                    from = ?from,
                    to = ?to,
                    priority = self.router.effective_priority(),
                    master = %master,
                    "state {from:?} -> {to:?}: {reason}"
                );
                if let Ok(mut status) = self.status.lock() {
                    status.transition(from, to, reason, SystemTime::now());
                }
                // Never blocks: a full queue means the daemon is behind; the next change
                // brings the group up to date.
                let _ = self.hooks.states.try_send((name.clone(), to));
            }
            Event::Dropped { from, reason } => {
                if let Ok(mut status) = self.status.lock() {
                    status.note_rejected(from, reason, Instant::now());
                }
                if self.limiter.allow(reason) {
                    let vrid = self.config.vrid;
                    let why = match reason {
                        drop_reason::ADDRESS_LIST => format!(
                            "it lists other virtual addresses than ours for VRID {vrid}: another \
                             cluster on this segment uses the same VRID, or a peer is misconfigured; \
                             it is ignored for the election (RFC 9568 section 7.1) and both keep \
                             their own VIPs; give one of them another vrid"
                        ),
                        drop_reason::SOURCE => format!(
                            "{from} is neither in unicast_peers nor in accept_from; if it is a \
                             legitimate node, add it to one of them (a forged advert is ignored)"
                        ),
                        _ => format!("reason {reason}"),
                    };
                    tracing::warn!(instance = %name, %from, reason, "dropped a VRRP advert: {why} (further drops of this kind are logged at most every 10 s)");
                }
            }
            Event::AddressMismatch { from } => {
                if self.limiter.allow("address_mismatch") {
                    tracing::warn!(
                        instance = %name,
                        %from,
                        vrid = self.config.vrid,
                        "the address owner {from} (priority 255) lists other virtual addresses than ours \
                         for the same VRID; it is obeyed (RFC 9568 section 7.1), but the configurations \
                         disagree: check the vips of both nodes (vipd status shows the sender)"
                    );
                }
            }
            Event::LowerPriorityMaster { from, priority } => {
                // The router has already queued the re-assertion (Router::reassert).
                if self.limiter.allow("lower_priority_master") {
                    tracing::warn!(
                        instance = %name,
                        %from,
                        their_priority = priority,
                        our_priority = self.router.effective_priority(),
                        "another router claims Master with a lower priority (normal for a moment after a preemption or a healed partition); re-asserting and re-announcing"
                    );
                }
            }
            Event::MasterUnreachable {
                master,
                takeover_at,
            } => {
                let within = takeover_at.saturating_duration_since(Instant::now());
                tracing::warn!(
                    instance = %name,
                    %master,
                    takeover_in_ms = within.as_millis() as u64,
                    "BFD lost the Master {master}: taking over in {} ms unless it shows a sign of life first",
                    within.as_millis()
                );
            }
            Event::MasterHeardAgain { master } => {
                tracing::info!(
                    instance = %name,
                    %master,
                    "the Master {master} is alive after all (heard again before the take-over); staying Backup"
                );
            }
            Event::LivenessRefuted { master, until } => {
                let hold = until.saturating_duration_since(Instant::now());
                tracing::warn!(
                    instance = %name,
                    %master,
                    hold_down_s = hold.as_secs(),
                    "took over because BFD lost {master}, but {master} is still advertising: BFD to it \
                     is unreliable (filtered, or heavy loss); ignoring BFD reports about it for {} s \
                     and using plain VRRP timing",
                    hold.as_secs()
                );
            }
        }
    }

    /// A multicast instance with BFD wants a session to the Master it hears as Backup (a
    /// unicast one has sessions to all its peers).
    fn follow_master(&mut self) {
        if self.config.bfd.is_none() || self.config.is_unicast() {
            return;
        }
        let master = match self.router.state() {
            State::Backup => self.router.master().map(|m| m.address),
            _ => None,
        };
        if master != self.followed {
            self.followed = master;
            self.hooks.bfd.follow(&self.config.name, master);
        }
    }

    fn record_lateness(&mut self, late: Duration) {
        if let Ok(mut status) = self.status.lock() {
            status.record_lateness(late);
        }
    }

    /// Copies what status and metrics show out of the router: at once when what
    /// [`Published`] covers changed, otherwise every [`PUBLISH_EVERY`].
    fn publish(&mut self, now: Instant) {
        self.follow_master();
        let shown = Published {
            state: self.router.state(),
            effective_priority: self.router.effective_priority(),
            master: self.router.master().map(|m| (m.address, m.priority)),
            resigned: self.resigned,
            holding: self.holding,
        };
        if self.published.as_ref() == Some(&shown) && now < self.publish_due {
            return;
        }
        self.published = Some(shown);
        self.publish_due = now + PUBLISH_EVERY;
        if let Ok(mut status) = self.status.lock() {
            status.state = self.router.state();
            status.resigned = self.resigned;
            status.effective_priority = self.router.effective_priority();
            status.master = self.router.master();
            status.counters = self.router.counters().clone();
            status.holding_vips = self.holding;
            status.malformed = self.malformed.clone();
            status.malformed_ip = self.socket.malformed();
            status.advert_interval = self.router.master_adver_interval();
        }
    }
}

/// What a change of publishes at once (see [`Instance::publish`]).
#[derive(Debug, PartialEq, Eq)]
struct Published {
    state: State,
    effective_priority: u8,
    master: Option<(IpAddr, u8)>,
    resigned: bool,
    holding: bool,
}

/// A stable snake_case label per parse failure (metric label and log field).
pub fn parse_error_label(e: &ParseError) -> &'static str {
    match e {
        ParseError::Truncated { .. } => "truncated",
        ParseError::BadVersion(_) => "bad_version",
        ParseError::BadType(_) => "bad_type",
        ParseError::FamilyMismatch { .. } => "family_mismatch",
        ParseError::V2OverIpv6 => "v2_over_ipv6",
        ParseError::LengthMismatch { .. } => "length_mismatch",
        ParseError::BadChecksum { .. } => "bad_checksum",
        ParseError::NoAddresses => "no_addresses",
        ParseError::ZeroVrid => "zero_vrid",
        ParseError::ZeroInterval { .. } => "zero_interval",
        ParseError::UnknownAuthType(_) => "unknown_auth_type",
    }
}
