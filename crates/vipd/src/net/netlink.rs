//! VIP management over rtnetlink: add, remove, check and watch addresses.
//!
//! IPv4 VIPs are /32 with the label `<ifname>:vip`, IPv6 VIPs /128 with IFA_F_NODAD and a
//! preferred lifetime of 0 (valid forever), which the kernel reports as `deprecated`:
//! - the /32 and /128 add no prefix route, so the node's routing does not change when the VIP
//!   moves;
//! - the label is `vip`, exactly what OpenShift's keepalived sets, so `ip addr show label vip`
//!   and scripts reading `ip -o addr` keep working. iproute2 refuses to *add* a label that is not
//!   `<dev>` or `<dev>:<suffix>`, but that check lives in iproute2 only: the kernel stores any
//!   label given over netlink (tested on 6.18, `crates/vipd/tests/net_netlink.rs`), as keepalived
//!   relies on. As for keepalived's VIPs, glibc's getifaddrs(3) then lists the IPv4 VIP under
//!   the name `vip`. Should a kernel ever refuse the label (EINVAL), `<ifname>:vip` is used.
//! - NODAD: a VIP moving between nodes is expected to exist elsewhere for a moment; DAD would
//!   leave it `tentative` or `dadfailed` and unusable.
//! - deprecated: the node must never pick the VIP as the source of its own connections, or they
//!   break when the VIP moves away (RFC 4862 5.5.4).
//!
//! With `vipd run --vip-lifetime SECONDS` ([`set_vip_lifetime`]) VIPs get that valid (IPv4: and
//! preferred) lifetime instead of forever, and a task renews it every quarter of it for the VIPs
//! this process holds. A vipd killed without SIGTERM (SIGKILL, an OOM kill, `podman kube down`
//! of podman 4.3, which stops pods with a timeout of 0) cannot remove its VIPs; the kernel then
//! does, once the lifetime runs out, instead of the node keeping them beside the new Master.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, CacheInfo};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::{Handle, MulticastGroup};
use tokio::sync::mpsc;

use crate::net::iface::{self, message_address, message_flags};
use crate::net::NetError;

/// The label of IPv4 VIPs, as OpenShift's keepalived sets it (`label vip`).
pub const VIP_LABEL: &str = "vip";
/// Kernel limit on label length (IFNAMSIZ 16, including the NUL).
const MAX_LABEL_LEN: usize = 15;
/// INFINITY_LIFE_TIME: a valid lifetime of "forever".
const LIFETIME_FOREVER: u32 = u32::MAX;
/// How many address events may wait for the daemon before the watcher drops new ones.
const WATCH_QUEUE: usize = 256;

/// VIP lifetime in seconds; 0 = forever (the default). See [`set_vip_lifetime`].
static VIP_LIFETIME_SECS: AtomicU32 = AtomicU32::new(0);

/// Gives VIPs added from now on a finite lifetime, renewed while held (`None`: forever). Call it
/// before [`VipManager::new`]: the renewal task starts there.
pub fn set_vip_lifetime(lifetime: Option<Duration>) {
    let secs = lifetime.map_or(0, |d| {
        u32::try_from(d.as_secs().max(1)).unwrap_or(u32::MAX - 1)
    });
    VIP_LIFETIME_SECS.store(secs, Ordering::Relaxed);
}

/// The lifetime set by [`set_vip_lifetime`], if any.
pub fn vip_lifetime() -> Option<Duration> {
    match VIP_LIFETIME_SECS.load(Ordering::Relaxed) {
        0 => None,
        s => Some(Duration::from_secs(u64::from(s))),
    }
}

/// An address appeared on or disappeared from an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressEvent {
    pub kind: AddressEventKind,
    pub ifindex: u32,
    pub address: IpAddr,
    pub prefix_len: u8,
}

/// Whether an [`AddressEvent`] is an addition (RTM_NEWADDR, also sent when flags or lifetimes of
/// an existing address change) or a deletion (RTM_DELADDR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressEventKind {
    Added,
    Removed,
}

/// Adds, removes and checks VIPs; owns one rtnetlink connection whose task is spawned on the
/// current tokio runtime.
#[derive(Debug, Clone)]
pub struct VipManager {
    handle: Handle,
    /// The kernel runs one dump per netlink socket at a time and answers a second one with
    /// EBUSY; instances share this socket, so their address listings take turns.
    dump: Arc<tokio::sync::Mutex<()>>,
    /// With a lifetime: the (interface, VIP) pairs this process added and has not removed. The
    /// renewal task holds the lock across each renewal and `remove` across each removal, so a
    /// renewal can never re-create a VIP that was just removed.
    held: Arc<tokio::sync::Mutex<HashSet<(u32, IpAddr)>>>,
    /// The subscribers of the one address watch every instance shares (`None`: not running).
    watchers: Watchers,
}

type Watchers = Arc<std::sync::Mutex<Option<Vec<mpsc::Sender<AddressEvent>>>>>;

/// The IPv4 label used if the kernel refuses [`VIP_LABEL`]: `<ifname>:vip`, or the interface
/// name alone when that would exceed the kernel's 15-byte limit.
pub fn fallback_vip_label(ifname: &str) -> String {
    let label = format!("{ifname}:{VIP_LABEL}");
    if label.len() <= MAX_LABEL_LEN {
        label
    } else {
        ifname.to_owned()
    }
}

fn host_prefix(vip: IpAddr) -> u8 {
    match vip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn check_vip(vip: IpAddr) -> Result<(), NetError> {
    let reason = if vip.is_unspecified() {
        Some("it is the unspecified address")
    } else if vip.is_multicast() {
        Some("it is a multicast address")
    } else if vip.is_loopback() {
        Some("it is a loopback address")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NetError::BadVip { vip, reason }),
        None => Ok(()),
    }
}

impl VipManager {
    /// Opens the rtnetlink connection. Must be called inside a tokio runtime.
    pub async fn new() -> Result<Self, NetError> {
        let manager = VipManager {
            handle: iface::connect()?,
            dump: Arc::new(tokio::sync::Mutex::new(())),
            held: Arc::new(tokio::sync::Mutex::new(HashSet::new())),
            watchers: Arc::new(std::sync::Mutex::new(None)),
        };
        if let Some(lifetime) = vip_lifetime() {
            let renewer = manager.clone();
            tokio::spawn(async move { renewer.renew_forever(lifetime).await });
        }
        Ok(manager)
    }

    /// Renews the lifetime of every held VIP every quarter of it.
    async fn renew_forever(self, lifetime: Duration) {
        let mut tick = tokio::time::interval((lifetime / 4).max(Duration::from_millis(250)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let held = self.held.lock().await;
            for &(ifindex, vip) in held.iter() {
                if let Err(e) = self.put(ifindex, vip).await {
                    tracing::warn!(%vip, "renewing the VIP's lifetime failed: {e}");
                }
            }
        }
    }

    fn ifname(&self, ifindex: u32) -> String {
        nix::net::if_::if_indextoname(ifindex)
            .ok()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("if{ifindex}"))
    }

    /// The kernel's messages for `vip` on `ifindex` (normally zero or one).
    async fn find(&self, ifindex: u32, vip: IpAddr) -> Result<Vec<AddressMessage>, NetError> {
        let _turn = self.dump.lock().await;
        let msgs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute()
            .filter_map(|m| async move { Some(m) })
            .collect::<Vec<_>>()
            .await;
        let mut found = Vec::new();
        for m in msgs {
            let m = m.map_err(|e| {
                NetError::netlink(format!("listing addresses of interface index {ifindex}"), e)
            })?;
            if message_address(&m) == Some(vip) {
                found.push(m);
            }
        }
        Ok(found)
    }

    /// Whether `vip` is configured on interface `ifindex` (with any prefix length).
    pub async fn present(&self, ifindex: u32, vip: IpAddr) -> Result<bool, NetError> {
        Ok(!self.find(ifindex, vip).await?.is_empty())
    }

    /// Adds `vip` to interface `ifindex` (see the module documentation for prefix, label and
    /// flags). Idempotent: an IPv4 VIP already present is left alone; an IPv6 VIP is replaced,
    /// which also repairs the flags and lifetimes of one added by someone else.
    pub async fn add(&self, ifindex: u32, vip: IpAddr) -> Result<(), NetError> {
        check_vip(vip)?;
        if vip_lifetime().is_none() {
            return self.put(ifindex, vip).await;
        }
        let mut held = self.held.lock().await;
        self.put(ifindex, vip).await?;
        held.insert((ifindex, vip));
        Ok(())
    }

    /// Adds `vip`, or (with a lifetime, and always for IPv6) replaces it, renewing its lifetime.
    async fn put(&self, ifindex: u32, vip: IpAddr) -> Result<(), NetError> {
        let ifname = self.ifname(ifindex);
        let prefix = host_prefix(vip);
        let op = format!("adding VIP {vip}/{prefix} to {ifname} (index {ifindex})");
        let lifetime = VIP_LIFETIME_SECS.load(Ordering::Relaxed);
        if vip.is_ipv4() && lifetime == 0 && self.present(ifindex, vip).await? {
            return Ok(());
        }
        let labels = match vip {
            IpAddr::V4(_) => vec![
                Some(VIP_LABEL.to_owned()),
                Some(fallback_vip_label(&ifname)),
            ],
            IpAddr::V6(_) => vec![None],
        };
        let mut last = None;
        for label in labels {
            let mut request = self.handle.address().add(ifindex, vip, prefix);
            let msg = request.message_mut();
            if let Some(label) = label {
                msg.attributes.push(AddressAttribute::Label(label));
                if lifetime != 0 {
                    let mut lifetimes = CacheInfo::default();
                    lifetimes.ifa_preferred = lifetime;
                    lifetimes.ifa_valid = lifetime;
                    msg.attributes.push(AddressAttribute::CacheInfo(lifetimes));
                    request = request.replace();
                }
            } else {
                msg.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
                let mut lifetimes = CacheInfo::default();
                lifetimes.ifa_preferred = 0;
                lifetimes.ifa_valid = if lifetime == 0 {
                    LIFETIME_FOREVER
                } else {
                    lifetime
                };
                msg.attributes.push(AddressAttribute::CacheInfo(lifetimes));
                request = request.replace();
            }
            let err = match request.execute().await {
                Ok(()) => return Ok(()),
                Err(e) => NetError::netlink(op.clone(), e),
            };
            match err.errno() {
                // Added concurrently between our check and the request.
                Some(nix::libc::EEXIST) => return Ok(()),
                Some(nix::libc::EINVAL) => last = Some(err),
                _ => return Err(err),
            }
        }
        Err(last.unwrap_or(NetError::BadVip {
            vip,
            reason: "the kernel refused every label tried",
        }))
    }

    /// Removes `vip` from interface `ifindex`, whatever prefix length it was added with.
    /// Idempotent: an absent VIP is not an error.
    pub async fn remove(&self, ifindex: u32, vip: IpAddr) -> Result<(), NetError> {
        let mut held = self.held.lock().await;
        held.remove(&(ifindex, vip));
        for found in self.find(ifindex, vip).await? {
            // Delete exactly what the kernel listed: it matches IPv4 deletions on prefix length
            // and label too, so a hand-built message could miss an address added differently.
            let mut msg = AddressMessage::default();
            msg.header = found.header.clone();
            msg.attributes = found
                .attributes
                .iter()
                .filter(|a| {
                    matches!(
                        a,
                        AddressAttribute::Address(_)
                            | AddressAttribute::Local(_)
                            | AddressAttribute::Label(_)
                    )
                })
                .cloned()
                .collect();
            if let Err(e) = self.handle.address().del(msg).execute().await {
                let ifname = self.ifname(ifindex);
                let err = NetError::netlink(
                    format!(
                        "removing VIP {vip}/{} from {ifname} (index {ifindex})",
                        found.header.prefix_len
                    ),
                    e,
                );
                // EADDRNOTAVAIL / ENOENT: removed concurrently, which is what we wanted.
                if !matches!(
                    err.errno(),
                    Some(nix::libc::EADDRNOTAVAIL | nix::libc::ENOENT)
                ) {
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Subscribes to address additions and deletions on every interface (RTNLGRP_IPV4_IFADDR and
    /// RTNLGRP_IPV6_IFADDR), so the daemon can restore a VIP someone deleted while it is Master.
    /// The channel closes if the netlink socket fails. Events can be lost if the kernel's
    /// socket buffer overflows (ENOBUFS) or the channel is full, so the daemon should also check
    /// `present` periodically.
    pub async fn watch(&self) -> Result<mpsc::Receiver<AddressEvent>, NetError> {
        let (tx, rx) = mpsc::channel(WATCH_QUEUE);
        let mut watchers = self
            .watchers
            .lock()
            .map_err(|_| NetError::io("address watch", std::io::Error::other("lock poisoned")))?;
        if let Some(list) = watchers.as_mut() {
            list.push(tx);
            return Ok(rx);
        }
        // One netlink subscription for every instance: a connection per instance cost each a
        // socket, a 64 KiB read buffer and two tasks, all woken by every address change.
        let (conn, _handle, mut messages) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ])
        .map_err(|e| NetError::io("subscribing to netlink address notifications", e))?;
        *watchers = Some(vec![tx]);
        drop(watchers);
        let conn_task = tokio::spawn(conn);
        let watchers = Arc::clone(&self.watchers);
        tokio::spawn(async move {
            while let Some((message, _)) = messages.next().await {
                let NetlinkPayload::InnerMessage(inner) = message.payload else {
                    continue;
                };
                let (kind, msg) = match inner {
                    RouteNetlinkMessage::NewAddress(m) => (AddressEventKind::Added, m),
                    RouteNetlinkMessage::DelAddress(m) => (AddressEventKind::Removed, m),
                    _ => continue,
                };
                let Some(address) = message_address(&msg) else {
                    continue;
                };
                let event = AddressEvent {
                    kind,
                    ifindex: msg.header.index,
                    address,
                    prefix_len: msg.header.prefix_len,
                };
                let Ok(mut list) = watchers.lock() else { break };
                if let Some(list) = list.as_mut() {
                    list.retain(|tx| match tx.try_send(event.clone()) {
                        Ok(()) => true,
                        Err(mpsc::error::TrySendError::Full(event)) => {
                            tracing::warn!(?event, "address watch queue full, event dropped");
                            true
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => false,
                    });
                }
            }
            // The subscription ended: the next watch starts a new one; the current watchers'
            // queues close, which tells them.
            if let Ok(mut list) = watchers.lock() {
                *list = None;
            }
            conn_task.abort();
        });
        Ok(rx)
    }

    /// The IFA_F_* flags of `vip` on `ifindex`, when present (diagnostics and tests).
    pub async fn flags(&self, ifindex: u32, vip: IpAddr) -> Result<Option<u32>, NetError> {
        Ok(self
            .find(ifindex, vip)
            .await?
            .first()
            .map(|m| message_flags(m).bits()))
    }
}
