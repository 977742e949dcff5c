//! The UDP loop shapes compared before choosing the server's (docs/benchmarks.md, "Choosing the
//! UDP loop"):
//! `udp_loops MODE LISTEN WORKERS` with MODE one of
//! - `threads`: one OS thread per SO_REUSEPORT socket, blocking recv_from / send_to (what
//!   the first server used);
//! - `tokio`: one task per socket on a multi-thread runtime with WORKERS threads, async
//!   recv_from / send_to;
//! - `mmsg`: one OS thread per socket, recvmmsg (MSG_WAITFORONE) and sendmmsg in batches of 32.
//!
//! Every mode answers with the same `answer()` and a fixed test zone; forwarded names
//! are dropped, so only local answers should be benchmarked.

use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use nix::sys::socket::{recvmmsg, sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use socket2::{Domain, Protocol, Socket, Type};
use vipd_dns::answer::{answer, Outcome, Transport};
use vipd_dns::zone::{ClusterZone, Node, ZoneConfig, ZoneHandle};

const BATCH: usize = 32;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: udp_loops threads|tokio|mmsg LISTEN WORKERS";
    let mode = args.get(1).ok_or(usage)?.clone();
    let listen: SocketAddr = args.get(2).ok_or(usage)?.parse()?;
    let workers: usize = args.get(3).ok_or(usage)?.parse()?;
    let zone = ZoneHandle::new(bench_zone()?);
    let mut sockets = Vec::new();
    for _ in 0..workers {
        let socket = Socket::new(
            Domain::for_address(listen),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        socket.set_reuse_port(true)?;
        socket.set_recv_buffer_size(4 << 20)?;
        socket.bind(&listen.into())?;
        sockets.push(UdpSocket::from(socket));
    }
    match mode.as_str() {
        "threads" | "mmsg" => {
            let threads: Vec<_> = sockets
                .into_iter()
                .map(|socket| {
                    let zone = zone.clone();
                    let mmsg = mode == "mmsg";
                    std::thread::spawn(move || {
                        let result = if mmsg {
                            serve_mmsg(&socket, &zone)
                        } else {
                            serve_blocking(&socket, &zone)
                        };
                        if let Err(err) = result {
                            eprintln!("worker stopped: {err}");
                        }
                    })
                })
                .collect();
            for thread in threads {
                let _ = thread.join();
            }
        }
        "tokio" => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut tasks = Vec::new();
                for socket in sockets {
                    socket.set_nonblocking(true)?;
                    let socket = Arc::new(tokio::net::UdpSocket::from_std(socket)?);
                    let zone = zone.clone();
                    tasks.push(tokio::spawn(async move {
                        let mut query = vec![0u8; 4096];
                        let mut out = vec![0u8; 512];
                        loop {
                            let Ok((len, peer)) = socket.recv_from(&mut query).await else {
                                continue;
                            };
                            let outcome =
                                answer(&zone.load(), &query[..len], &mut out, Transport::Udp, 512);
                            if let Outcome::Respond(n) = outcome {
                                let _ = socket.send_to(&out[..n], peer).await;
                            }
                        }
                    }));
                }
                for task in tasks {
                    let _ = task.await;
                }
                Ok::<(), Error>(())
            })?;
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}

fn serve_blocking(socket: &UdpSocket, zone: &ZoneHandle) -> Result<(), Error> {
    let mut query = vec![0u8; 4096];
    let mut out = vec![0u8; 512];
    loop {
        let (len, peer) = socket.recv_from(&mut query)?;
        if let Outcome::Respond(n) =
            answer(&zone.load(), &query[..len], &mut out, Transport::Udp, 512)
        {
            let _ = socket.send_to(&out[..n], peer);
        }
    }
}

fn serve_mmsg(socket: &UdpSocket, zone: &ZoneHandle) -> Result<(), Error> {
    let fd = socket.as_raw_fd();
    let mut queries = vec![[0u8; 512]; BATCH];
    let mut outs = vec![[0u8; 512]; BATCH];
    let mut rx = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut tx = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    loop {
        let mut received: [(usize, Option<SockaddrStorage>); BATCH] = [(0, None); BATCH];
        let mut count = 0;
        {
            let mut iovs: Vec<[IoSliceMut; 1]> =
                queries.iter_mut().map(|q| [IoSliceMut::new(q)]).collect();
            let results = recvmmsg(fd, &mut rx, iovs.iter_mut(), MsgFlags::MSG_WAITFORONE, None)?;
            for result in results {
                received[count] = (result.bytes, result.address);
                count += 1;
            }
        }
        let mut lens = [0usize; BATCH];
        let mut addrs: Vec<Option<SockaddrStorage>> = Vec::with_capacity(BATCH);
        let mut replies = 0;
        for (index, (len, addr)) in received[..count].iter().enumerate() {
            let zone = zone.load();
            if let Outcome::Respond(n) = answer(
                &zone,
                &queries[index][..*len],
                &mut outs[replies],
                Transport::Udp,
                512,
            ) {
                lens[replies] = n;
                addrs.push(*addr);
                replies += 1;
            }
        }
        if replies > 0 {
            let slices: Vec<[IoSlice; 1]> = outs[..replies]
                .iter()
                .zip(&lens)
                .map(|(out, len)| [IoSlice::new(&out[..*len])])
                .collect();
            sendmmsg(fd, &mut tx, slices.iter(), &addrs, [], MsgFlags::empty())?;
        }
    }
}

fn bench_zone() -> Result<ClusterZone, Error> {
    let ip = |text: &str| -> Result<IpAddr, std::net::AddrParseError> { text.parse() };
    Ok(ClusterZone::new(&ZoneConfig {
        cluster_name: "ostest".into(),
        base_domain: "test.metalkube.org".into(),
        api_vips: vec![ip("192.0.2.5")?],
        ingress_vips: vec![ip("192.0.2.6")?],
        nodes: (0..3)
            .map(|i| {
                Ok(Node {
                    name: format!("master-{i}"),
                    addresses: vec![ip(&format!("192.0.2.{}", 10 + i))?],
                })
            })
            .collect::<Result<_, std::net::AddrParseError>>()?,
        ttl: 30,
    })?)
}
