//! What a running instance shows to `vipd status`, the metrics endpoint and the logs.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use vipd_vrrp::router::{drop_reason, MasterInfo};
use vipd_vrrp::{Advertisement, Counters, State};

use crate::config::InstanceConfig;
use crate::health::Priority;

use crate::net::placement::Placement;

/// How many distinct peers one instance remembers (a flood of spoofed sources cannot grow it).
const MAX_PEERS: usize = 64;

/// Live state of one instance, updated by its task after every input.
#[derive(Debug, Clone)]
pub struct InstanceStatus {
    pub name: String,
    pub vrid: u8,
    pub version: u8,
    pub interface: String,
    pub source: IpAddr,
    pub vips: Vec<IpAddr>,
    pub mode: String,
    pub base_priority: u8,
    pub state: State,
    /// An operator resigned the instance (`vipd resign`); it stays out until resumed.
    pub resigned: bool,
    pub effective_priority: u8,
    /// Health tracking's last verdict.
    pub tracked: Priority,
    pub master: Option<MasterInfo>,
    pub advert_interval: Duration,
    pub holding_vips: bool,
    pub counters: Counters,
    /// Packets refused by the codec, by reason.
    pub malformed: BTreeMap<&'static str, u64>,
    /// Packets whose IP header was unusable.
    pub malformed_ip: u64,
    pub send_errors: u64,
    pub vip_repairs: u64,
    pub last_transition: Option<Transition>,
    /// Other routers heard on this VRID, at most `MAX_PEERS`. A list, not a map: it is
    /// searched on every advert received and holds one or two entries in practice, where a
    /// linear scan costs a fraction of hashing the address twice.
    pub peers: Vec<(IpAddr, PeerSeen)>,
    /// Worst and latest delay between a timer's deadline and its handling.
    pub timer_lateness_max: Duration,
    pub timer_lateness_last: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    pub from: String,
    pub to: String,
    pub reason: String,
    #[serde(skip)]
    pub at: SystemTime,
}

/// What one other router on our VRID last said.
#[derive(Debug, Clone)]
pub struct PeerSeen {
    pub priority: u8,
    pub version: u8,
    pub adverts: u64,
    /// Monotonic, so noting a peer costs no wall-clock read per advert.
    pub last_seen: Instant,
    /// Its virtual addresses differ from ours: another cluster or a misconfigured peer.
    pub other_vips: bool,
    /// Its adverts were dropped for this reason (e.g. `auth_mismatch`): a likely VRID collision.
    pub rejected: Option<&'static str>,
}

impl InstanceStatus {
    pub fn new(config: &InstanceConfig, placement: &Placement, tracked: Priority) -> Self {
        InstanceStatus {
            name: config.name.clone(),
            vrid: config.vrid,
            version: version_number(config.version),
            interface: placement.interface.ifname.clone(),
            source: placement.source,
            vips: config.vips.clone(),
            mode: mode(config),
            base_priority: config.priority,
            state: State::Initialize,
            resigned: false,
            effective_priority: tracked.value,
            tracked,
            master: None,
            advert_interval: config.advert_interval,
            holding_vips: false,
            counters: Counters::default(),
            malformed: BTreeMap::new(),
            malformed_ip: 0,
            send_errors: 0,
            vip_repairs: 0,
            last_transition: None,
            peers: Vec::new(),
            timer_lateness_max: Duration::ZERO,
            timer_lateness_last: Duration::ZERO,
        }
    }

    pub fn reconfigured(&mut self, config: &InstanceConfig) {
        self.vips = config.vips.clone();
        self.base_priority = config.priority;
        self.mode = mode(config);
    }

    pub fn transition(&mut self, from: State, to: State, reason: &str, at: SystemTime) {
        self.last_transition = Some(Transition {
            from: state_name(from).into(),
            to: state_name(to).into(),
            reason: reason.into(),
            at,
        });
    }

    pub fn note_peer(
        &mut self,
        src: IpAddr,
        advert: &Advertisement,
        ours: &[IpAddr],
        now: Instant,
    ) {
        let other_vips = !same_set(&advert.addresses, ours);
        if let Some(peer) = self.peer_entry(src, now) {
            peer.priority = advert.priority;
            peer.version = version_number(advert.version);
            peer.adverts += 1;
            peer.last_seen = now;
            peer.other_vips = other_vips;
            peer.rejected = None;
        }
    }

    pub fn note_rejected(&mut self, src: IpAddr, reason: &'static str, now: Instant) {
        if let Some(peer) = self.peer_entry(src, now) {
            peer.adverts += 1;
            peer.last_seen = now;
            peer.rejected = Some(reason);
        }
    }

    fn peer_entry(&mut self, src: IpAddr, now: Instant) -> Option<&mut PeerSeen> {
        let index = match self.peers.iter().position(|(a, _)| *a == src) {
            Some(i) => i,
            None => {
                if self.peers.len() >= MAX_PEERS {
                    // Forget the peer heard from least recently to make room.
                    let oldest = self
                        .peers
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, (_, p))| p.last_seen)
                        .map(|(i, _)| i)?;
                    self.peers.swap_remove(oldest);
                }
                self.peers.push((
                    src,
                    PeerSeen {
                        priority: 0,
                        version: 0,
                        adverts: 0,
                        last_seen: now,
                        other_vips: false,
                        rejected: None,
                    },
                ));
                self.peers.len() - 1
            }
        };
        self.peers.get_mut(index).map(|(_, p)| p)
    }

    pub fn record_lateness(&mut self, late: Duration) {
        self.timer_lateness_last = late;
        self.timer_lateness_max = self.timer_lateness_max.max(late);
    }

    /// A serialisable view, with ages computed now.
    pub fn report(&self, now: Instant, wall: SystemTime) -> InstanceReport {
        let age = |t: SystemTime| wall.duration_since(t).unwrap_or_default().as_secs_f64();
        let mut peers: Vec<PeerReport> = self
            .peers
            .iter()
            .map(|(address, p)| PeerReport {
                address: *address,
                priority: p.priority,
                version: p.version,
                adverts: p.adverts,
                last_seen_secs_ago: now.saturating_duration_since(p.last_seen).as_secs_f64(),
                conflict: conflict_text(p),
            })
            .collect();
        peers.sort_by_key(|p| p.address);
        InstanceReport {
            name: self.name.clone(),
            vrid: self.vrid,
            version: self.version,
            interface: self.interface.clone(),
            source: self.source,
            mode: self.mode.clone(),
            vips: self.vips.clone(),
            state: if self.resigned && self.state == State::Initialize {
                "RESIGNED".into()
            } else {
                state_name(self.state).into()
            },
            holding_vips: self.holding_vips,
            base_priority: self.base_priority,
            effective_priority: self.effective_priority,
            fault: self.tracked.fault,
            advert_interval_ms: millis(self.advert_interval),
            master: self.master.map(|m| MasterReport {
                address: m.address,
                priority: m.priority,
                advert_interval_ms: millis(m.interval),
                last_advert_secs_ago: now.saturating_duration_since(m.last_seen).as_secs_f64(),
            }),
            last_transition: self.last_transition.as_ref().map(|t| TransitionReport {
                from: t.from.clone(),
                to: t.to.clone(),
                reason: t.reason.clone(),
                secs_ago: age(t.at),
            }),
            peers,
            counters: CountersReport::from(self),
        }
    }
}

fn conflict_text(p: &PeerSeen) -> Option<String> {
    match (p.rejected, p.other_vips) {
        (Some(reason @ drop_reason::SOURCE), _) => Some(format!(
            "adverts dropped ({reason}): the sender is neither a unicast peer nor in accept_from"
        )),
        (Some(reason), _) => Some(format!(
            "adverts dropped ({reason}): another cluster or a misconfigured router uses this VRID"
        )),
        (None, true) => Some("advertises other virtual addresses for this VRID".into()),
        (None, false) => None,
    }
}

fn same_set(a: &[IpAddr], b: &[IpAddr]) -> bool {
    a == b || (a.len() == b.len() && a.iter().all(|x| b.contains(x)))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn mode(config: &InstanceConfig) -> String {
    let list = |a: &[IpAddr]| {
        a.iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let base = if config.peers.is_empty() {
        "multicast".to_owned()
    } else {
        format!("unicast to {}", list(&config.peers))
    };
    match (config.check_source, config.accept_from.is_empty()) {
        (true, true) => format!("{base}; adverts from peers only"),
        (true, false) => format!(
            "{base}; adverts from peers and {} only",
            list(&config.accept_from)
        ),
        (false, _) if config.is_unicast() => format!("{base}; adverts from any source"),
        (false, _) => base,
    }
}

pub fn version_number(v: vipd_vrrp::Version) -> u8 {
    match v {
        vipd_vrrp::Version::V2 => 2,
        vipd_vrrp::Version::V3 => 3,
    }
}

/// The operator-facing name of a state (keepalived's words, which operators grep for).
pub fn state_name(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
        State::Resigning => "RESIGNING",
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct InstanceReport {
    pub name: String,
    pub vrid: u8,
    pub version: u8,
    pub interface: String,
    pub source: IpAddr,
    pub mode: String,
    pub vips: Vec<IpAddr>,
    pub state: String,
    pub holding_vips: bool,
    pub base_priority: u8,
    pub effective_priority: u8,
    pub fault: bool,
    pub advert_interval_ms: u64,
    pub master: Option<MasterReport>,
    pub last_transition: Option<TransitionReport>,
    pub peers: Vec<PeerReport>,
    pub counters: CountersReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct MasterReport {
    pub address: IpAddr,
    pub priority: u8,
    pub advert_interval_ms: u64,
    pub last_advert_secs_ago: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransitionReport {
    pub from: String,
    pub to: String,
    pub reason: String,
    pub secs_ago: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerReport {
    pub address: IpAddr,
    pub priority: u8,
    pub version: u8,
    pub adverts: u64,
    pub last_seen_secs_ago: f64,
    pub conflict: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CountersReport {
    pub adverts_rx: u64,
    pub adverts_tx: u64,
    pub priority_zero_rx: u64,
    pub priority_zero_tx: u64,
    pub transitions: u64,
    pub master_transitions: u64,
    pub address_list_mismatch: u64,
    pub drops: BTreeMap<String, u64>,
    pub send_errors: u64,
    pub vip_repairs: u64,
    pub timer_lateness_max_ms: f64,
    /// BFD reports about this instance's Master (`crates/vrrp/src/liveness.rs`), by what
    /// became of them: `lost` (timer brought forward), `takeover`, `cancelled` (a sign of life
    /// first), `refuted` (the Master was alive after all), `ignored`.
    pub liveness: BTreeMap<&'static str, u64>,
}

impl From<&InstanceStatus> for CountersReport {
    fn from(s: &InstanceStatus) -> Self {
        let c = &s.counters;
        let mut drops: BTreeMap<String, u64> = [
            ("ttl", c.drop_ttl),
            ("version", c.drop_version),
            ("vrid", c.drop_vrid),
            ("auth", c.drop_auth),
            ("interval", c.drop_interval),
            ("family", c.drop_family),
            ("own_address", c.drop_own_address),
            ("unknown_source", c.drop_source),
            ("address_list_mismatch", c.drop_address_list),
            ("malformed_ip_header", s.malformed_ip),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_string(), n))
        .collect();
        for (label, n) in &s.malformed {
            drops.insert(format!("malformed_{label}"), *n);
        }
        CountersReport {
            adverts_rx: c.adverts_rx,
            adverts_tx: c.adverts_tx,
            priority_zero_rx: c.priority_zero_rx,
            priority_zero_tx: c.priority_zero_tx,
            transitions: c.transitions,
            master_transitions: c.master_transitions,
            address_list_mismatch: c.address_list_mismatch,
            drops,
            send_errors: s.send_errors,
            vip_repairs: s.vip_repairs,
            timer_lateness_max_ms: s.timer_lateness_max.as_secs_f64() * 1000.0,
            liveness: [
                ("lost", c.liveness_lost),
                ("takeover", c.liveness_takeovers),
                ("cancelled", c.liveness_cancelled),
                ("refuted", c.liveness_refuted),
                ("ignored", c.liveness_ignored),
            ]
            .into_iter()
            .collect(),
        }
    }
}
