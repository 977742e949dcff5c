//! `lab-forge`: an on-link attacker for the scenario tests. Run inside a lab namespace, it sends
//! VRRP adverts that look legitimate (correct checksum, TTL 255, the cluster's VRID and VIP) from
//! its own address to one target, the way a host that is nobody's configured peer could.
//!
//! ```text
//! lab-forge --src 192.0.2.13 --dst 192.0.2.11 --vrid 14 --vip 192.0.2.5 \
//!           [--priority 255] [--version 3] [--count 10] [--interval-ms 100]
//! ```
//!
//! VRRPv3, IPv4 only, checksum with the IPv4 pseudo-header (keepalived's and vipd's default form).
//! Bounded: at most 10,000 adverts, at least 1 ms apart. Prints `sent N` when done.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use vipd_vrrp::{Advertisement, Auth, ChecksumForm, Version};

const USAGE: &str = "usage: lab-forge --src IPV4 --dst IPV4 --vrid N --vip IPV4 \
                     [--priority N] [--count N] [--interval-ms N]";
/// IANA protocol number of VRRP (RFC 9568 section 5.1.1.4).
const IPPROTO_VRRP: i32 = 112;
const MAX_COUNT: u32 = 10_000;

struct Args {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    vrid: u8,
    vip: Ipv4Addr,
    priority: u8,
    count: u32,
    interval: Duration,
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("lab-forge: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match send(&args) {
        Ok(n) => {
            println!("sent {n}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lab-forge: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(argv: Vec<String>) -> Result<Args, String> {
    let get = |key: &str| -> Option<String> {
        let pos = argv.iter().position(|a| a == key)?;
        argv.get(pos + 1).cloned()
    };
    fn num<T: std::str::FromStr>(
        key: &str,
        v: Option<String>,
        default: Option<T>,
    ) -> Result<T, String> {
        match (v, default) {
            (Some(v), _) => v
                .parse()
                .map_err(|_| format!("{key} {v:?}: not a valid value")),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(format!("{key} is required")),
        }
    }
    let args = Args {
        src: num("--src", get("--src"), None)?,
        dst: num("--dst", get("--dst"), None)?,
        vrid: num("--vrid", get("--vrid"), None)?,
        vip: num("--vip", get("--vip"), None)?,
        priority: num("--priority", get("--priority"), Some(255))?,
        count: num("--count", get("--count"), Some(10))?,
        interval: Duration::from_millis(
            num("--interval-ms", get("--interval-ms"), Some(100u64))?.max(1),
        ),
    };
    if args.count > MAX_COUNT {
        return Err(format!("--count {}: at most {MAX_COUNT}", args.count));
    }
    Ok(args)
}

fn send(args: &Args) -> Result<u32, String> {
    let advert = Advertisement {
        version: Version::V3,
        vrid: args.vrid,
        priority: args.priority,
        interval_cs: 100,
        addresses: vec![IpAddr::V4(args.vip)],
        auth: Auth::None,
    };
    let (src, dst) = (IpAddr::V4(args.src), IpAddr::V4(args.dst));
    let mut buf = [0u8; 64];
    let len = advert
        .emit(&mut buf, src, dst, ChecksumForm::PseudoHeader)
        .map_err(|e| format!("cannot encode the advert: {e}"))?;
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))
        .map_err(|e| format!("raw socket (needs CAP_NET_RAW): {e}"))?;
    socket
        .bind(&SockAddr::from(SocketAddr::new(src, 0)))
        .map_err(|e| format!("bind {src}: {e}"))?;
    // RFC 9568 section 7.1: receivers require TTL 255; a forged advert would carry it too.
    socket.set_ttl_v4(255).map_err(|e| format!("IP_TTL: {e}"))?;
    socket
        .set_multicast_ttl_v4(255)
        .map_err(|e| format!("IP_MULTICAST_TTL: {e}"))?;
    let to = SockAddr::from(SocketAddr::new(dst, 0));
    for i in 0..args.count {
        if i > 0 {
            std::thread::sleep(args.interval);
        }
        socket
            .send_to(&buf[..len], &to)
            .map_err(|e| format!("send to {dst}: {e}"))?;
    }
    Ok(args.count)
}
