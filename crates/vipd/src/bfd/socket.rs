//! BFD's UDP sockets (RFC 5881): one receiving socket per address family on port 3784, and one
//! sending socket per session, bound to the session's local address and to a source port of
//! its own in 49152-65535, pinned to the interface, TTL / hop limit 255.
//!
//! The receive side reports the TTL / hop limit and the interface of every datagram (RFC 5881
//! section 5: a single-hop session drops anything whose TTL is not 255; the core checks it).

use std::io;
use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::task::{Context, Poll};

use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use vipd_bfd::packet::{CONTROL_PORT, REQUIRED_TTL, SOURCE_PORT_MAX, SOURCE_PORT_MIN};

/// DSCP CS6 ("network control"), as FRR and keepalived mark BFD.
const TOS_NETWORK_CONTROL: u32 = 0xc0;
/// A Control packet is 24 bytes, 26-52 with authentication; anything longer than this is no
/// BFD packet we could use, and is reported truncated.
pub const MAX_DATAGRAM: usize = 128;
/// Datagrams one [`ReceiveSocket::poll_recv`] may skip (unusable ones) before it yields.
const SKIPPED_PER_POLL: usize = 64;
/// Source ports tried before a session gives up binding one.
const PORT_ATTEMPTS: u16 = 256;

/// Metadata of one received datagram; its payload is in the caller's buffer, `buf[..len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    pub src: IpAddr,
    /// IPv4 TTL or IPv6 hop limit as received.
    pub ttl: u8,
    /// The interface it arrived on.
    pub ifindex: u32,
    pub len: usize,
}

fn context(what: &str, e: impl Into<io::Error>) -> io::Error {
    let e = e.into();
    io::Error::new(e.kind(), format!("BFD socket: {what}: {e}"))
}

/// The socket every Control packet of one address family arrives on (UDP port 3784).
#[derive(Debug)]
pub struct ReceiveSocket {
    fd: AsyncFd<Socket>,
    ipv4: bool,
    /// Datagrams dropped here: truncated, or without the TTL / interface the kernel should
    /// have attached.
    pub unusable: u64,
}

impl ReceiveSocket {
    /// Binds UDP port 3784 on every address of the family. Needs a tokio runtime; binding
    /// port 3784 needs no privilege (it is above 1023).
    pub fn open(ipv4: bool) -> io::Result<ReceiveSocket> {
        let (domain, any) = if ipv4 {
            (Domain::IPV4, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        } else {
            (Domain::IPV6, IpAddr::V6(Ipv6Addr::UNSPECIFIED))
        };
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
            .map_err(|e| context("creating a UDP socket", e))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| context("O_NONBLOCK", e))?;
        if ipv4 {
            setsockopt(&socket, sockopt::Ipv4RecvTtl, &true)
                .map_err(|e| context("IP_RECVTTL", e))?;
            setsockopt(&socket, sockopt::Ipv4PacketInfo, &true)
                .map_err(|e| context("IP_PKTINFO", e))?;
        } else {
            socket
                .set_only_v6(true)
                .map_err(|e| context("IPV6_V6ONLY", e))?;
            setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true)
                .map_err(|e| context("IPV6_RECVHOPLIMIT", e))?;
            setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)
                .map_err(|e| context("IPV6_RECVPKTINFO", e))?;
        }
        let addr = SocketAddr::new(any, CONTROL_PORT);
        socket.bind(&addr.into()).map_err(|e| {
            context(
                &format!(
                    "binding UDP {addr} (is another BFD daemon, such as FRR's bfdd or \
                     keepalived's bfd_instance, running on this node?)"
                ),
                e,
            )
        })?;
        // SAFETY: socket2::Socket owns its descriptor: it stays open, and `as_raw_fd` returns
        // the same one, until the Socket (here the AsyncFd that owns it) is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
            .map_err(|e| context("registering with the tokio reactor", e))?;
        Ok(ReceiveSocket {
            fd,
            ipv4,
            unusable: 0,
        })
    }

    /// The next usable datagram into `buf` (at least [`MAX_DATAGRAM`] bytes), polled in place.
    /// After [`SKIPPED_PER_POLL`] unusable ones in a row it yields, so a flood cannot starve
    /// the caller's other sources.
    pub fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<Datagram>> {
        for _ in 0..SKIPPED_PER_POLL {
            let mut guard = match self.fd.poll_read_ready(cx) {
                Poll::Ready(Ok(guard)) => guard,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            let ipv4 = self.ipv4;
            match guard.try_io(|fd| recv_once(fd.get_ref(), ipv4, buf)) {
                Err(_would_block) => {}
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Ok(Ok(None)) => self.unusable += 1,
                Ok(Ok(Some(d))) => return Poll::Ready(Ok(d)),
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// One recvmsg; `Ok(None)`: the datagram was unusable and is gone.
fn recv_once(socket: &Socket, ipv4: bool, buf: &mut [u8]) -> io::Result<Option<Datagram>> {
    let fd = socket.as_raw_fd();
    let mut cmsg = nix::cmsg_space!(nix::libc::in6_pktinfo, nix::libc::c_int);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())
        .map_err(io::Error::from)?;
    if msg
        .flags
        .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC)
    {
        return Ok(None);
    }
    let src = match msg.address {
        Some(a) if ipv4 => a.as_sockaddr_in().map(|s| IpAddr::V4(s.ip())),
        Some(a) => a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())),
        None => None,
    };
    let (mut ttl, mut ifindex) = (None, None);
    for c in msg.cmsgs().map_err(io::Error::from)? {
        match c {
            ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => {
                ttl = u8::try_from(t).ok()
            }
            ControlMessageOwned::Ipv4PacketInfo(info) => {
                ifindex = u32::try_from(info.ipi_ifindex).ok()
            }
            ControlMessageOwned::Ipv6PacketInfo(info) => ifindex = Some(info.ipi6_ifindex),
            _ => {}
        }
    }
    match (src, ttl, ifindex) {
        (Some(src), Some(ttl), Some(ifindex)) => Ok(Some(Datagram {
            src,
            ttl,
            ifindex,
            len: msg.bytes,
        })),
        _ => Ok(None),
    }
}

/// The socket one session sends from: its local address and a source port of its own.
#[derive(Debug)]
pub struct SendSocket {
    socket: Socket,
    destination: SockAddr,
    pub source_port: u16,
}

impl SendSocket {
    /// Binds `local` and the first free source port at or after `first_port` (wrapping within
    /// 49152-65535), pinned to `ifname`, TTL / hop limit 255, and aims it at `peer` port 3784.
    pub fn open(
        local: IpAddr,
        peer: IpAddr,
        ifname: &str,
        ifindex: u32,
        first_port: u16,
    ) -> io::Result<SendSocket> {
        let (domain, scope) = match local {
            IpAddr::V4(_) => (Domain::IPV4, 0),
            // Link-local addresses need the interface as scope; others ignore it.
            IpAddr::V6(_) => (Domain::IPV6, ifindex),
        };
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
            .map_err(|e| context("creating a UDP socket", e))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| context("O_NONBLOCK", e))?;
        socket
            .bind_device(Some(ifname.as_bytes()))
            .map_err(|e| context(&format!("SO_BINDTODEVICE {ifname}"), e))?;
        let ttl = u32::from(REQUIRED_TTL);
        if local.is_ipv4() {
            socket.set_ttl_v4(ttl).map_err(|e| context("IP_TTL", e))?;
            socket
                .set_tos_v4(TOS_NETWORK_CONTROL)
                .map_err(|e| context("IP_TOS", e))?;
        } else {
            socket
                .set_unicast_hops_v6(ttl)
                .map_err(|e| context("IPV6_UNICAST_HOPS", e))?;
            socket
                .set_tclass_v6(TOS_NETWORK_CONTROL)
                .map_err(|e| context("IPV6_TCLASS", e))?;
            // The link-local address may still be tentative right after the link came up.
            socket
                .set_freebind_v6(true)
                .map_err(|e| context("IPV6_FREEBIND", e))?;
        }
        let source_port = bind_source_port(&socket, local, scope, first_port)?;
        let destination = match peer {
            IpAddr::V4(p) => SockAddr::from(SocketAddrV4::new(p, CONTROL_PORT)),
            IpAddr::V6(p) => SockAddr::from(SocketAddrV6::new(p, CONTROL_PORT, 0, scope)),
        };
        Ok(SendSocket {
            socket,
            destination,
            source_port,
        })
    }

    /// Sends one Control packet to the peer; a full send buffer is an error the caller counts
    /// (the next periodic packet follows within one interval).
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        self.socket.send_to(packet, &self.destination).map(|_| ())
    }
}

/// RFC 5881 section 4: "The source port MUST be in the range 49152 through 65535 [...] SHOULD
/// be unique among all BFD sessions on the system."
fn bind_source_port(socket: &Socket, local: IpAddr, scope: u32, first: u16) -> io::Result<u16> {
    let span = SOURCE_PORT_MAX - SOURCE_PORT_MIN + 1;
    let start = first.saturating_sub(SOURCE_PORT_MIN) % span;
    let mut last = None;
    for i in 0..PORT_ATTEMPTS.min(span) {
        let port = SOURCE_PORT_MIN + (start + i) % span;
        let addr = match local {
            IpAddr::V4(a) => SockAddr::from(SocketAddrV4::new(a, port)),
            IpAddr::V6(a) => SockAddr::from(SocketAddrV6::new(a, port, 0, scope)),
        };
        match socket.bind(&addr) {
            Ok(()) => return Ok(port),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => {
                return Err(context(
                    &format!("binding {local} (is it an address of this node?)"),
                    e,
                ))
            }
        }
    }
    Err(context(
        &format!("no free source port in 49152-65535 for {local} after {PORT_ATTEMPTS} tries"),
        last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)),
    ))
}
