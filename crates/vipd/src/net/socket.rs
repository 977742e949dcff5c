//! Raw IP protocol 112 sockets: one per VRRP instance and interface.
//!
//! The socket carries VRRP payloads only; the codec lives in `vipd_vrrp::packet`. What the
//! kernel can do for us it does: a classic BPF filter drops other VRIDs before they are queued
//! (so a busy segment with many clusters cannot grow our receive queue, a keepalived field
//! problem), SO_BINDTODEVICE pins the instance to its interface, and TTL / hop limit 255 is set on
//! every packet we send (RFC 9568 5.1.1.3 / 5.1.2.3; receivers drop anything else).

use std::io;
use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrIn6,
    SockaddrLike,
};
use socket2::{Domain, Protocol, SockFilter, Socket, Type};

use crate::net::iface;

/// IANA protocol number of VRRP (RFC 9568 5.1.1.4).
pub const IPPROTO_VRRP: i32 = 112;
/// 224.0.0.18, the IPv4 VRRP group (RFC 9568 5.1.1.2).
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// ff02::12, the IPv6 VRRP group (RFC 9568 5.1.2.2).
pub const MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// TTL / hop limit of every VRRP packet (RFC 9568 5.1.1.3, 5.1.2.3).
pub const VRRP_TTL: u32 = 255;
/// DSCP CS6 ("network control"), the TOS keepalived and most routers put on adverts.
const TOS_NETWORK_CONTROL: u32 = 0xc0;
/// Enough for about 40 queued adverts (the kernel doubles it and charges skb overhead): a Backup
/// only needs the latest advert, and a small queue bounds memory if the daemon stalls.
const RECV_BUFFER_BYTES: usize = 32 * 1024;
/// Datagrams [`VrrpSocket::try_recv`] may skip (our own, malformed, truncated) before it
/// returns to the caller's other event sources.
const SKIPPED_PER_POLL: usize = 64;

/// Pauses before a send into a full socket buffer gives up (see [`VrrpSocket::send`]).
const SEND_FULL_PAUSES: u32 = 3;
const SEND_FULL_PAUSE: Duration = Duration::from_millis(1);

/// Address family of a VRRP socket.
pub use vipd_vrrp::AddressFamily as Family;

/// What `VrrpSocket::open` needs for one instance on one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketConfig {
    pub ifname: String,
    pub ifindex: u32,
    pub family: Family,
    /// Only adverts for this VRID are queued (BPF filter).
    pub vrid: u8,
    /// IPv4: the interface's primary address, the source of every advert. IPv6: ignored unless it
    /// is a link-local address of the interface; otherwise the interface's link-local is used
    /// (RFC 9568 5.1.2.1: the source is the link-local address).
    pub source: IpAddr,
    /// Unicast peers; empty means multicast (the group is joined only then).
    pub peers: Vec<IpAddr>,
}

/// Metadata of one received advert; the payload is in the caller's buffer, at
/// [`ReceivedPacket::payload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedPacket {
    pub src: IpAddr,
    /// The packet's destination: the group or our own unicast address.
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit as received.
    pub ttl: u8,
    pub ifindex: u32,
    /// Where the VRRP payload starts in the buffer (after the IPv4 header; 0 for IPv6).
    pub start: usize,
    /// Length of the VRRP payload (IPv4 header and Ethernet padding removed).
    pub len: usize,
}

impl ReceivedPacket {
    /// The VRRP payload within `buf`, the buffer it was received into.
    pub fn payload<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.start..self.start.saturating_add(self.len))
            .unwrap_or_default()
    }
}

/// A raw protocol-112 socket for one VRRP instance on one interface.
#[derive(Debug)]
pub struct VrrpSocket {
    /// Non-blocking; the VRRP thread polls it (net/poller.rs).
    socket: Socket,
    family: Family,
    ifindex: u32,
    ifname: String,
    source: IpAddr,
    malformed: AtomicU64,
}

fn context(what: &str, ifname: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("VRRP socket on {ifname}: {what}: {e}"))
}

fn ctx<'a>(ifname: &'a str, what: &'a str) -> impl FnOnce(io::Error) -> io::Error + 'a {
    move |e| context(what, ifname, e)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Datagrams of any VRID may have been queued between socket(2) and SO_ATTACH_FILTER; drop
/// them so that the first `recv` already honours the filter. Bounded: the queue is small.
fn discard_queued(socket: &Socket) {
    let mut scratch = [0u8; 64];
    for _ in 0..1024 {
        if nix::sys::socket::recv(socket.as_raw_fd(), &mut scratch, MsgFlags::MSG_DONTWAIT).is_err()
        {
            break;
        }
    }
}

/// BPF for IPv4 raw sockets: the socket sees the IPv4 header, whose length varies with options,
/// so the VRID offset is 4*IHL + 1 (the IHL load is BPF_MSH, made for exactly this).
pub fn vrid_filter_v4(vrid: u8) -> [SockFilter; 5] {
    [
        // ldxb 4*([0]&0xf): X = IPv4 header length
        SockFilter::new(0xb1, 0, 0, 0),
        // ldb [x+1]: the VRID byte of the VRRP header
        SockFilter::new(0x50, 0, 0, 1),
        // jeq #vrid, accept, drop
        SockFilter::new(0x15, 0, 1, u32::from(vrid)),
        SockFilter::new(0x06, 0, 0, 0xffff),
        SockFilter::new(0x06, 0, 0, 0),
    ]
}

/// BPF for IPv6 raw sockets: the kernel hands over the payload only, the VRID is byte 1.
pub fn vrid_filter_v6(vrid: u8) -> [SockFilter; 4] {
    [
        // ldb [1]
        SockFilter::new(0x30, 0, 0, 1),
        SockFilter::new(0x15, 0, 1, u32::from(vrid)),
        SockFilter::new(0x06, 0, 0, 0xffff),
        SockFilter::new(0x06, 0, 0, 0),
    ]
}

/// The fields of a received IPv4 datagram that the receiver reports, and where its payload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Datagram {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub payload: Range<usize>,
}

/// Locates the payload of an IPv4 datagram as a raw socket delivers it. The header length comes
/// from IHL (options are legal, so never assume 20), and the end from the total length, so that
/// Ethernet padding of short frames (60-byte minimum) is not taken for VRRP bytes.
pub fn parse_ipv4(datagram: &[u8]) -> Result<Ipv4Datagram, String> {
    if datagram.len() < 20 {
        return Err(format!(
            "IPv4 datagram of {} bytes is shorter than the 20-byte header",
            datagram.len()
        ));
    }
    let version = datagram[0] >> 4;
    if version != 4 {
        return Err(format!(
            "IPv4 header version field is {version}, expected 4"
        ));
    }
    let header_len = usize::from(datagram[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    if header_len < 20 || header_len > total_len || total_len > datagram.len() {
        return Err(format!(
            "IPv4 header length {header_len} / total length {total_len} inconsistent with the \
             {} bytes received",
            datagram.len()
        ));
    }
    let addr = |at: usize| {
        Ipv4Addr::new(
            datagram[at],
            datagram[at + 1],
            datagram[at + 2],
            datagram[at + 3],
        )
    };
    Ok(Ipv4Datagram {
        src: addr(12),
        dst: addr(16),
        ttl: datagram[8],
        payload: header_len..total_len,
    })
}

impl VrrpSocket {
    /// The VRRP multicast group of a family.
    pub fn multicast_group(family: Family) -> IpAddr {
        match family {
            Family::Ipv4 => IpAddr::V4(MULTICAST_V4),
            Family::Ipv6 => IpAddr::V6(MULTICAST_V6),
        }
    }

    /// Opens a non-blocking raw proto-112 socket for one instance on one interface.
    pub fn open(cfg: &SocketConfig) -> io::Result<Self> {
        let name = cfg.ifname.as_str();
        if let Some(peer) = cfg.peers.iter().find(|p| Family::of(**p) != cfg.family) {
            return Err(invalid(format!(
                "VRRP socket on {name}: unicast peer {peer} is not of the instance's address family"
            )));
        }
        let (domain, source) = Self::domain_and_source(cfg)?;
        let socket =
            Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_VRRP))).map_err(ctx(
                name,
                "creating a raw IP protocol 112 socket (needs CAP_NET_RAW)",
            ))?;
        socket
            .set_nonblocking(true)
            .map_err(ctx(name, "O_NONBLOCK"))?;
        socket
            .bind_device(Some(name.as_bytes()))
            .map_err(ctx(name, "SO_BINDTODEVICE"))?;
        socket
            .set_recv_buffer_size(RECV_BUFFER_BYTES)
            .map_err(ctx(name, "SO_RCVBUF"))?;
        match (cfg.family, source) {
            (Family::Ipv4, IpAddr::V4(src)) => Self::set_options_v4(&socket, cfg, src)?,
            _ => Self::set_options_v6(&socket, cfg)?,
        }
        discard_queued(&socket);
        Ok(VrrpSocket {
            socket,
            family: cfg.family,
            ifindex: cfg.ifindex,
            ifname: cfg.ifname.clone(),
            source,
            malformed: AtomicU64::new(0),
        })
    }

    /// The socket's domain and the source of every advert: the configured IPv4 address, or the
    /// IPv6 link-local one (see [`Self::v6_source`]).
    fn domain_and_source(cfg: &SocketConfig) -> io::Result<(Domain, IpAddr)> {
        let name = cfg.ifname.as_str();
        Ok(match cfg.family {
            Family::Ipv4 => match cfg.source {
                IpAddr::V4(v4) if !v4.is_unspecified() && !v4.is_multicast() => {
                    (Domain::IPV4, IpAddr::V4(v4))
                }
                other => {
                    return Err(invalid(format!(
                        "VRRP socket on {name}: source {other} is not a usable IPv4 address; \
                         expected the interface's primary IPv4 address"
                    )))
                }
            },
            Family::Ipv6 => (Domain::IPV6, IpAddr::V6(Self::v6_source(cfg)?)),
        })
    }

    /// The IPv4 options: the VRID filter, TTL 255, CS6, no loopback of our own adverts, the
    /// group joined only without unicast peers.
    fn set_options_v4(socket: &Socket, cfg: &SocketConfig, src: Ipv4Addr) -> io::Result<()> {
        let name = cfg.ifname.as_str();
        Self::check_local_v4(cfg, src)?;
        socket
            .attach_filter(&vrid_filter_v4(cfg.vrid))
            .map_err(ctx(name, "SO_ATTACH_FILTER"))?;
        socket.set_ttl_v4(VRRP_TTL).map_err(ctx(name, "IP_TTL"))?;
        socket
            .set_multicast_ttl_v4(VRRP_TTL)
            .map_err(ctx(name, "IP_MULTICAST_TTL"))?;
        socket
            .set_multicast_loop_v4(false)
            .map_err(ctx(name, "IP_MULTICAST_LOOP"))?;
        socket
            .set_tos_v4(TOS_NETWORK_CONTROL)
            .map_err(ctx(name, "IP_TOS"))?;
        socket
            .set_multicast_if_v4(&src)
            .map_err(ctx(name, "IP_MULTICAST_IF"))?;
        // Linux otherwise delivers groups joined by any socket of the host: a unicast
        // instance would then hear multicast adverts because another instance joined.
        socket
            .set_multicast_all_v4(false)
            .map_err(ctx(name, "IP_MULTICAST_ALL"))?;
        if cfg.peers.is_empty() {
            socket
                .join_multicast_v4_n(
                    &MULTICAST_V4,
                    &socket2::InterfaceIndexOrAddress::Index(cfg.ifindex),
                )
                .map_err(ctx(name, "joining 224.0.0.18 (IP_ADD_MEMBERSHIP)"))?;
        }
        Ok(())
    }

    /// The IPv6 options: the VRID filter, hop limit 255, CS6, no loopback, the packet info and
    /// hop limit of received adverts, free binding to a tentative link-local address, the group
    /// joined only without unicast peers.
    fn set_options_v6(socket: &Socket, cfg: &SocketConfig) -> io::Result<()> {
        let name = cfg.ifname.as_str();
        socket
            .attach_filter(&vrid_filter_v6(cfg.vrid))
            .map_err(ctx(name, "SO_ATTACH_FILTER"))?;
        socket
            .set_unicast_hops_v6(VRRP_TTL)
            .map_err(ctx(name, "IPV6_UNICAST_HOPS"))?;
        socket
            .set_multicast_hops_v6(VRRP_TTL)
            .map_err(ctx(name, "IPV6_MULTICAST_HOPS"))?;
        socket
            .set_multicast_loop_v6(false)
            .map_err(ctx(name, "IPV6_MULTICAST_LOOP"))?;
        socket
            .set_multicast_if_v6(cfg.ifindex)
            .map_err(ctx(name, "IPV6_MULTICAST_IF"))?;
        socket
            .set_multicast_all_v6(false)
            .map_err(ctx(name, "IPV6_MULTICAST_ALL"))?;
        socket
            .set_tclass_v6(TOS_NETWORK_CONTROL)
            .map_err(ctx(name, "IPV6_TCLASS"))?;
        setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true)
            .map_err(|e| ctx(name, "IPV6_RECVPKTINFO")(e.into()))?;
        setsockopt(socket, sockopt::Ipv6RecvHopLimit, &true)
            .map_err(|e| ctx(name, "IPV6_RECVHOPLIMIT")(e.into()))?;
        // The link-local address may still be tentative (DAD runs for about a second after
        // the link comes up); IPV6_FREEBIND lets IPV6_PKTINFO name it as source anyway.
        socket
            .set_freebind_v6(true)
            .map_err(ctx(name, "IPV6_FREEBIND"))?;
        if cfg.peers.is_empty() {
            socket
                .join_multicast_v6(&MULTICAST_V6, cfg.ifindex)
                .map_err(ctx(name, "joining ff02::12 (IPV6_JOIN_GROUP)"))?;
        }
        Ok(())
    }

    /// The socket is not bound to the source (a raw socket bound to an address only receives
    /// datagrams sent to that address, never the group), so the source travels with each send
    /// in IP_PKTINFO; a wrong one is caught here rather than at the first advert.
    fn check_local_v4(cfg: &SocketConfig, src: Ipv4Addr) -> io::Result<()> {
        let basics = iface::link_basics(cfg.ifindex)
            .map_err(|e| context("listing the interface's addresses", &cfg.ifname, e))?;
        if basics.ipv4.contains(&src) {
            return Ok(());
        }
        let have: Vec<String> = basics.ipv4.iter().map(ToString::to_string).collect();
        Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!(
                "VRRP socket on {}: source {src} is not an address of {} (its IPv4 addresses: \
                 {}); expected the interface's primary IPv4 address",
                cfg.ifname,
                cfg.ifname,
                if have.is_empty() {
                    "none".to_owned()
                } else {
                    have.join(", ")
                }
            ),
        ))
    }

    fn v6_source(cfg: &SocketConfig) -> io::Result<Ipv6Addr> {
        if let IpAddr::V6(v6) = cfg.source {
            if (v6.segments()[0] & 0xffc0) == 0xfe80 {
                return Ok(v6);
            }
        }
        let basics = iface::link_basics(cfg.ifindex)
            .map_err(|e| context("looking up the link-local address", &cfg.ifname, e))?;
        basics.link_local_v6.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!(
                    "VRRP socket on {}: the interface has no IPv6 link-local address, which RFC \
                     9568 5.1.2.1 requires as the advert source (is IPv6 disabled on it?)",
                    cfg.ifname
                ),
            )
        })
    }

    /// The source address of our adverts (the IPv6 link-local in use, needed for the checksum).
    pub fn source(&self) -> IpAddr {
        self.source
    }

    /// How many received datagrams were dropped as malformed or truncated since opening.
    pub fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }

    fn drop_malformed(&self, why: &str) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(interface = %self.ifname, "dropping malformed VRRP datagram: {why}");
    }

    /// The descriptor to poll for readability.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Takes the next packet for this VRID without waiting (its payload is in `buf`, see
    /// [`ReceivedPacket::payload`]).
    /// Datagrams from our own source address are skipped, malformed or truncated ones counted
    /// (see [`malformed`]) and skipped, so the only errors are socket errors. `Ok(None)`:
    /// nothing usable is queued, or [`SKIPPED_PER_POLL`] datagrams in a row were skipped (a
    /// flood of junk; the rest stays queued, and the poller reports the socket again after
    /// the caller's other sources had their turn).
    ///
    /// [`malformed`]: VrrpSocket::malformed
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<ReceivedPacket>> {
        for _ in 0..SKIPPED_PER_POLL {
            match self.recv_once(&self.socket, buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
                Ok(None) => {}
                Ok(Some(packet)) if packet.src == self.source => {}
                Ok(Some(packet)) => return Ok(Some(packet)),
            }
        }
        Ok(None)
    }

    /// Waits up to `timeout` for the next packet for this VRID (see [`VrrpSocket::try_recv`]);
    /// `Ok(None)` if none came. For tools and tests: the daemon polls [`VrrpSocket::as_fd`].
    pub fn recv_timeout(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> io::Result<Option<ReceivedPacket>> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let until = Instant::now() + timeout;
        loop {
            if let Some(packet) = self.try_recv(buf)? {
                return Ok(Some(packet));
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let wait = PollTimeout::try_from(left.as_millis().max(1)).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, wait) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(context("poll", &self.ifname, e.into())),
            }
        }
    }

    /// One recvmsg; `Ok(None)` means the datagram was dropped.
    fn recv_once(&self, socket: &Socket, buf: &mut [u8]) -> io::Result<Option<ReceivedPacket>> {
        let fd = socket.as_raw_fd();
        match self.family {
            Family::Ipv4 => {
                // The IPv4 header carries source, destination and TTL, so a plain recv does:
                // no address or control buffer to fill and parse (a third of the receive
                // path's instructions with recvmsg). MSG_TRUNC makes it return the datagram's
                // real length, so a truncated one is recognised. Made with syscall(2): libc's
                // recv is a thread-cancellation point and brackets the call with the
                // cancellation bookkeeping, which this program never uses.
                // SAFETY: `buf` is valid for writes of `buf.len()` bytes during the call; null
                // address pointers ask for no source address.
                let n = unsafe {
                    nix::libc::syscall(
                        nix::libc::SYS_recvfrom,
                        fd,
                        buf.as_mut_ptr(),
                        buf.len(),
                        nix::libc::MSG_TRUNC,
                        std::ptr::null_mut::<nix::libc::sockaddr>(),
                        std::ptr::null_mut::<nix::libc::socklen_t>(),
                    )
                };
                let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
                if n > buf.len() {
                    self.drop_malformed("datagram larger than the receive buffer");
                    return Ok(None);
                }
                let datagram = match buf.get(..n).map(parse_ipv4) {
                    Some(Ok(d)) => d,
                    Some(Err(why)) => {
                        self.drop_malformed(&why);
                        return Ok(None);
                    }
                    None => return Ok(None),
                };
                Ok(Some(ReceivedPacket {
                    src: IpAddr::V4(datagram.src),
                    dst: IpAddr::V4(datagram.dst),
                    ttl: datagram.ttl,
                    ifindex: self.ifindex,
                    start: datagram.payload.start,
                    len: datagram.payload.len(),
                }))
            }
            Family::Ipv6 => {
                let mut cmsg = nix::cmsg_space!(nix::libc::in6_pktinfo, nix::libc::c_int);
                let mut iov = [IoSliceMut::new(buf)];
                let msg = recvmsg::<SockaddrIn6>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())
                    .map_err(io::Error::from)?;
                if msg
                    .flags
                    .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC)
                {
                    self.drop_malformed("datagram or its control data truncated");
                    return Ok(None);
                }
                let Some(src) = msg.address.map(|a| a.ip()) else {
                    self.drop_malformed("no source address");
                    return Ok(None);
                };
                let (mut dst, mut ttl, mut ifindex) = (None, None, self.ifindex);
                for c in msg.cmsgs().map_err(io::Error::from)? {
                    match c {
                        ControlMessageOwned::Ipv6PacketInfo(info) => {
                            dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                            ifindex = info.ipi6_ifindex;
                        }
                        ControlMessageOwned::Ipv6HopLimit(h) => ttl = u8::try_from(h).ok(),
                        _ => {}
                    }
                }
                let (Some(dst), Some(ttl)) = (dst, ttl) else {
                    self.drop_malformed("IPV6_PKTINFO or IPV6_HOPLIMIT missing");
                    return Ok(None);
                };
                Ok(Some(ReceivedPacket {
                    src: IpAddr::V6(src),
                    dst: IpAddr::V6(dst),
                    ttl,
                    ifindex,
                    start: 0,
                    len: msg.bytes,
                }))
            }
        }
    }

    /// Sends one VRRP payload to `dst` (the multicast group or one unicast peer).
    pub fn send(&self, payload: &[u8], dst: IpAddr) -> io::Result<()> {
        let ifindex = self.ifindex;
        let send_once = |socket: &Socket| -> io::Result<usize> {
            let fd = socket.as_raw_fd();
            let sent = match (self.source, dst) {
                (IpAddr::V4(src), IpAddr::V4(d)) => {
                    let info = nix::libc::in_pktinfo {
                        ipi_ifindex: i32::try_from(ifindex).unwrap_or(0),
                        ipi_spec_dst: nix::libc::in_addr {
                            s_addr: u32::from_ne_bytes(src.octets()),
                        },
                        ipi_addr: nix::libc::in_addr { s_addr: 0 },
                    };
                    sendmsg_one_cmsg(
                        fd,
                        payload,
                        &SockaddrIn::from(SocketAddrV4::new(d, 0)),
                        (nix::libc::IPPROTO_IP, nix::libc::IP_PKTINFO),
                        &info,
                    )
                }
                (IpAddr::V6(src), IpAddr::V6(d)) => {
                    let info = nix::libc::in6_pktinfo {
                        ipi6_addr: nix::libc::in6_addr {
                            s6_addr: src.octets(),
                        },
                        ipi6_ifindex: ifindex,
                    };
                    // Link-local and multicast destinations need the scope; others ignore it.
                    sendmsg_one_cmsg(
                        fd,
                        payload,
                        &SockaddrIn6::from(SocketAddrV6::new(d, 0, 0, ifindex)),
                        (nix::libc::IPPROTO_IPV6, nix::libc::IPV6_PKTINFO),
                        &info,
                    )
                }
                _ => {
                    return Err(invalid(format!(
                        "VRRP socket on {}: cannot send to {dst}, it is not of the instance's \
                         family",
                        self.ifname
                    )))
                }
            };
            sent
        };
        // The socket is polled for readability only: an advert is a few dozen bytes and the
        // send buffer is practically never full, so waiting for writability would only add a
        // wake-up after every send. A full buffer (a stuck device queue) gets a few short
        // pauses, then the send fails and is counted.
        let mut pauses = 0;
        loop {
            match send_once(&self.socket) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && pauses < SEND_FULL_PAUSES => {
                    pauses += 1;
                    std::thread::sleep(SEND_FULL_PAUSE);
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => return Err(e),
                result => {
                    return result.map(drop).map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!("VRRP socket on {}: sending to {dst}: {e}", self.ifname),
                        )
                    })
                }
            }
        }
    }
}

/// `sendmsg(2)` of `payload` to `dst` with one control message (`level`, `kind`) holding `data`.
///
/// nix's `sendmsg` builds the control buffer in a new `Vec` on every call, a malloc and a free
/// per advert (about 250 instructions, measured with callgrind); this uses a buffer on the stack.
fn sendmsg_one_cmsg<T: Copy>(
    fd: std::os::fd::RawFd,
    payload: &[u8],
    dst: &impl SockaddrLike,
    (level, kind): (nix::libc::c_int, nix::libc::c_int),
    data: &T,
) -> io::Result<usize> {
    use nix::libc;
    /// Aligned like `struct cmsghdr` (its largest member is a `size_t`).
    #[repr(C, align(8))]
    struct Control([u8; 64]);
    let mut control = Control([0; 64]);
    let data_len = libc::c_uint::try_from(std::mem::size_of::<T>())
        .map_err(|_| io::Error::other("control message data too large"))?;
    // SAFETY: CMSG_SPACE and CMSG_LEN only compute sizes from their argument.
    let (space, cmsg_len) = unsafe { (libc::CMSG_SPACE(data_len), libc::CMSG_LEN(data_len)) };
    if space as usize > control.0.len() {
        return Err(io::Error::other("control message data too large"));
    }
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    // SAFETY: msghdr is plain integers and pointers (and, on musl, padding), for which all
    // zero bytes are a valid value; the fields that matter are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = dst.as_ptr() as *mut libc::c_void;
    msg.msg_namelen = dst.len();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points at `control`, aligned for cmsghdr and at least CMSG_SPACE(
    // data_len) bytes long (checked above), so CMSG_FIRSTHDR returns a pointer to its start
    // (non-null, since msg_controllen >= sizeof(cmsghdr)) and CMSG_DATA(cmsg) has room for
    // size_of::<T>() bytes; `data` is a valid T and does not overlap the stack buffer.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return Err(io::Error::other("no room for the control message"));
        }
        (*cmsg).cmsg_level = level;
        (*cmsg).cmsg_type = kind;
        (*cmsg).cmsg_len = cmsg_len as _;
        std::ptr::copy_nonoverlapping(
            (data as *const T).cast::<u8>(),
            libc::CMSG_DATA(cmsg),
            std::mem::size_of::<T>(),
        );
    }
    // SAFETY: every pointer in `msg` (name, iovec, payload, control) outlives the call, and
    // the lengths are those of the buffers they describe; the kernel only reads them. Made
    // with syscall(2) rather than libc's sendmsg, a thread-cancellation point (see recv_once).
    let sent = unsafe { libc::syscall(libc::SYS_sendmsg, fd, &msg as *const libc::msghdr, 0) };
    usize::try_from(sent).map_err(|_| io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_datagram(ihl_words: u8, payload: &[u8], padding: usize) -> Vec<u8> {
        let header_len = usize::from(ihl_words) * 4;
        let total = header_len + payload.len();
        let mut d = vec![0u8; header_len];
        d[0] = 0x40 | ihl_words;
        d[2..4].copy_from_slice(&u16::try_from(total).unwrap().to_be_bytes());
        d[8] = 255;
        d[9] = 112;
        d[12..16].copy_from_slice(&[192, 0, 2, 11]);
        d[16..20].copy_from_slice(&[224, 0, 0, 18]);
        d.extend_from_slice(payload);
        d.extend(std::iter::repeat_n(0u8, padding));
        d
    }

    const ADVERT: [u8; 12] = [
        0x31, 0x5d, 0x28, 0x01, 0x00, 0x64, 0x41, 0x98, 192, 0, 2, 10,
    ];

    #[test]
    fn ipv4_payload_starts_after_a_20_byte_header() {
        let d = ipv4_datagram(5, &ADVERT, 0);
        let parsed = parse_ipv4(&d).unwrap();
        assert_eq!(parsed.payload, 20..32);
        assert_eq!(parsed.src, Ipv4Addr::new(192, 0, 2, 11));
        assert_eq!(parsed.dst, MULTICAST_V4);
        assert_eq!(parsed.ttl, 255);
    }

    #[test]
    fn ipv4_payload_starts_after_header_options() {
        let d = ipv4_datagram(6, &ADVERT, 0);
        assert_eq!(parse_ipv4(&d).unwrap().payload, 24..36);
        assert_eq!(&d[24..36], &ADVERT);
    }

    #[test]
    fn ipv4_ethernet_padding_is_not_payload() {
        let d = ipv4_datagram(5, &ADVERT, 14);
        assert_eq!(d.len(), 46);
        assert_eq!(parse_ipv4(&d).unwrap().payload, 20..32);
    }

    #[test]
    fn ipv4_total_length_beyond_received_bytes_is_rejected() {
        let mut d = ipv4_datagram(5, &ADVERT, 0);
        d.truncate(30);
        assert_eq!(
            parse_ipv4(&d),
            Err(
                "IPv4 header length 20 / total length 32 inconsistent with the 30 bytes received"
                    .to_owned()
            )
        );
    }

    #[test]
    fn ipv4_ihl_below_five_is_rejected() {
        let mut d = ipv4_datagram(5, &ADVERT, 0);
        d[0] = 0x44;
        assert!(parse_ipv4(&d).unwrap_err().contains("header length 16"));
    }

    #[test]
    fn ipv4_short_datagram_is_rejected() {
        assert_eq!(
            parse_ipv4(&[0x45; 19]),
            Err("IPv4 datagram of 19 bytes is shorter than the 20-byte header".to_owned())
        );
    }

    #[test]
    fn multicast_groups_are_the_rfc_9568_ones() {
        assert_eq!(
            VrrpSocket::multicast_group(Family::Ipv4),
            "224.0.0.18".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            VrrpSocket::multicast_group(Family::Ipv6),
            "ff02::12".parse::<IpAddr>().unwrap()
        );
    }
}
