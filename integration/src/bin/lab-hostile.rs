//! Hostile and measuring clients for the soak scenarios (integration/tests/vipd_soak_*.rs), run
//! inside a lab namespace. Every mode is bounded by `--secs` (and most by `--count`), prints
//! `ready` once its set-up is done, and ends with one line `result {json}` that the test parses.
//!
//! - `udp-query ADDR NAME --every-ms MS --secs S`: one A query for NAME every MS over UDP (a
//!   query without a reply within 1 s is lost); latency percentiles of the replies.
//! - `udp-garbage ADDR --count N --secs S`: N datagrams of garbage (random bytes, short or
//!   truncated headers, responses with QR=1, bad counts), spread evenly over S seconds.
//! - `tcp-hold ADDR --count N --secs S [--proto none|dns|http] [--trickle-ms MS] [--reopen]`:
//!   N connections opened at once (non-blocking) and held for S seconds. `dns` sends a length
//!   prefix announcing 65535 bytes, `http` an unfinished request head; with `--trickle-ms` one
//!   more byte follows every MS, so the message never ends. Counts connections completed,
//!   still pending, and closed by the server (with when); with `--reopen` each one closed by
//!   the server is replaced (at most `count / 10` per 50 ms).
//! - `http-probe ADDR PATH --every-ms MS --secs S`: `GET PATH` every MS (2 s timeout each);
//!   latency percentiles of the 200 answers.
//! - `http-garbage ADDR --secs S`: connect, write random bytes (some with a CR LF CR LF), read
//!   until the server closes, again, for S seconds.
//! - `unix-hold PATH --count N --secs S`: N silent connections to a Unix socket (the control
//!   socket), each held until the server closes it or S passes.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, SockaddrStorage};

const USAGE: &str = "usage: lab-hostile udp-query ADDR NAME --every-ms MS --secs S\n       \
    lab-hostile udp-garbage ADDR --count N --secs S\n       \
    lab-hostile tcp-hold ADDR --count N --secs S [--proto none|dns|http] [--trickle-ms MS] [--reopen]\n       \
    lab-hostile http-probe ADDR PATH --every-ms MS --secs S\n       \
    lab-hostile http-garbage ADDR --secs S\n       \
    lab-hostile unix-hold PATH --count N --secs S";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(json) => {
            println!("result {json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lab-hostile: {e}");
            ExitCode::from(2)
        }
    }
}

/// Positional arguments and `--key value` / `--flag` options.
struct Args {
    positional: Vec<String>,
    options: Vec<(String, Option<String>)>,
}

impl Args {
    fn parse(args: &[String]) -> Args {
        let mut positional = Vec::new();
        let mut options = Vec::new();
        let mut i = 0;
        while i < args.len() {
            if let Some(key) = args[i].strip_prefix("--") {
                let value = args.get(i + 1).filter(|v| !v.starts_with("--")).cloned();
                if value.is_some() {
                    i += 1;
                }
                options.push((key.to_string(), value));
            } else {
                positional.push(args[i].clone());
            }
            i += 1;
        }
        Args {
            positional,
            options,
        }
    }

    fn flag(&self, key: &str) -> bool {
        self.options.iter().any(|(k, _)| k == key)
    }

    fn num(&self, key: &str, default: Option<u64>) -> Result<u64, String> {
        match self.options.iter().find(|(k, _)| k == key) {
            Some((_, Some(v))) => v
                .parse()
                .map_err(|e| format!("--{key} {v:?}: {e}; expected a whole number")),
            Some((_, None)) => Err(format!("--{key} needs a value")),
            None => default.ok_or_else(|| format!("--{key} is required\n{USAGE}")),
        }
    }

    fn text(&self, key: &str, default: &str) -> String {
        match self.options.iter().find(|(k, _)| k == key) {
            Some((_, Some(v))) => v.clone(),
            _ => default.to_string(),
        }
    }

    fn pos(&self, i: usize) -> Result<&str, String> {
        self.positional
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| USAGE.to_string())
    }

    fn addr(&self, i: usize) -> Result<SocketAddr, String> {
        let a = self.pos(i)?;
        a.parse().map_err(|e| format!("ADDR {a:?}: {e}"))
    }

    /// `--secs`, capped at 300 so no mode can outlive a test by much.
    fn secs(&self) -> Result<Duration, String> {
        Ok(Duration::from_secs(self.num("secs", None)?.min(300)))
    }
}

fn run(raw: &[String]) -> Result<String, String> {
    let (mode, rest) = raw.split_first().ok_or(USAGE)?;
    let args = Args::parse(rest);
    match mode.as_str() {
        "udp-query" => udp_query(&args),
        "udp-garbage" => udp_garbage(&args),
        "tcp-hold" => tcp_hold(&args),
        "http-probe" => http_probe(&args),
        "http-garbage" => http_garbage(&args),
        "unix-hold" => unix_hold(&args),
        _ => Err(USAGE.to_string()),
    }
}

/// xorshift64*: garbage needs no quality, only no dependency.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = nanos ^ u64::from(std::process::id());
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }
}

/// Percentiles (nearest rank) of `v` in microseconds; `v` is sorted in place.
fn percentiles(v: &mut [u64]) -> (u64, u64, u64) {
    v.sort_unstable();
    let at = |p: f64| -> u64 {
        if v.is_empty() {
            return 0;
        }
        let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    };
    (at(0.50), at(0.99), v.last().copied().unwrap_or(0))
}

/// A DNS query for `name`, type A, RD set.
fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

fn udp_query(args: &Args) -> Result<String, String> {
    let addr = args.addr(0)?;
    let name = args.pos(1)?.to_string();
    let every = Duration::from_millis(args.num("every-ms", Some(10))?.max(1));
    let secs = args.secs()?;
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let socket = UdpSocket::bind(bind).map_err(|e| format!("bind: {e}"))?;
    socket
        .connect(addr)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    socket
        .set_read_timeout(Some(Duration::from_millis(1)))
        .map_err(|e| e.to_string())?;
    println!("ready");
    let start = Instant::now();
    // Send time per ID; queries are numbered from 1 so an ID is never reused within a run.
    let mut sent_at: Vec<Option<Instant>> = Vec::new();
    let mut latencies = Vec::new();
    let mut wrong = 0u64;
    let mut rcodes = [0u64; 16];
    let mut next_send = start;
    let mut buf = [0u8; 1500];
    let timeout = Duration::from_secs(1);
    let mut answered_ids = std::collections::HashSet::new();
    loop {
        let now = Instant::now();
        if now >= next_send && now < start + secs {
            let id = (sent_at.len() + 1) as u16;
            let _ = socket.send(&dns_query(id, &name));
            sent_at.push(Some(now));
            next_send += every;
        }
        if now >= start + secs + timeout {
            break;
        }
        match socket.recv(&mut buf) {
            Ok(n) if n >= 12 => {
                let id = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
                let when = id
                    .checked_sub(1)
                    .and_then(|i| sent_at.get(i).copied().flatten());
                match when {
                    Some(t) if t.elapsed() <= timeout && answered_ids.insert(id) => {
                        latencies.push(t.elapsed().as_micros() as u64);
                        rcodes[usize::from(buf[3] & 0x0f)] += 1;
                    }
                    _ => wrong += 1,
                }
            }
            Ok(_) => wrong += 1,
            Err(_) => {}
        }
    }
    let sent = sent_at.len() as u64;
    let answered = latencies.len() as u64;
    let (p50, p99, max) = percentiles(&mut latencies);
    Ok(serde_json::json!({
        "sent": sent, "answered": answered, "lost": sent - answered, "wrong": wrong,
        "noerror": rcodes[0], "p50_us": p50, "p99_us": p99, "max_us": max,
    })
    .to_string())
}

fn udp_garbage(args: &Args) -> Result<String, String> {
    let addr = args.addr(0)?;
    let count = args.num("count", None)?.min(10_000_000);
    let secs = args.secs()?;
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let socket = UdpSocket::bind(bind).map_err(|e| format!("bind: {e}"))?;
    socket
        .connect(addr)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    println!("ready");
    let mut rng = Rng::new();
    let mut buf = [0u8; 1500];
    let start = Instant::now();
    let mut sent = 0u64;
    let mut kinds = [0u64; 5];
    while sent < count && start.elapsed() < secs {
        // Even pacing: datagram k leaves at k * secs / count.
        let due = secs.mul_f64(sent as f64 / count.max(1) as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        let kind = rng.below(5) as usize;
        let len = match kind {
            // Shorter than a header: dropped.
            0 => rng.below(12) as usize,
            // Random bytes of any length.
            1 => rng.below(1500) as usize,
            // A response (QR=1): dropped.
            2 => {
                rng.fill(&mut buf[..64]);
                buf[2] |= 0x80;
                64
            }
            // A plausible header with a question count of 0 or many, then noise.
            3 => {
                rng.fill(&mut buf[..40]);
                buf[2] &= 0x7f;
                buf[4] = 0;
                buf[5] = if rng.below(2) == 0 { 0 } else { 9 };
                40
            }
            // One question whose name is cut short or uses a bad label type.
            _ => {
                buf[..12].copy_from_slice(&[0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
                buf[12] = 0x40 | rng.below(64) as u8;
                rng.fill(&mut buf[13..30]);
                30
            }
        };
        if kind == 1 {
            rng.fill(&mut buf[..len]);
        }
        if kind == 0 {
            rng.fill(&mut buf[..len]);
        }
        // ECONNREFUSED from an earlier ICMP error, ENOBUFS: garbage may be lost on the way.
        let _ = socket.send(&buf[..len]);
        kinds[kind] += 1;
        sent += 1;
    }
    Ok(serde_json::json!({
        "sent": sent, "short": kinds[0], "random": kinds[1], "responses": kinds[2],
        "bad_counts": kinds[3], "bad_names": kinds[4],
        "secs": start.elapsed().as_secs_f64(),
    })
    .to_string())
}

/// One held connection of `tcp-hold`.
struct Held {
    stream: TcpStream,
    opened: Instant,
    connected: bool,
    sent_prefix: bool,
}

fn open_nonblocking(addr: SocketAddr) -> Result<TcpStream, String> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_NONBLOCK, None)
        .map_err(|e| format!("socket: {e} (raise the open-file limit, e.g. prlimit --nofile)"))?;
    match connect(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    ) {
        Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => {}
        Err(e) => return Err(format!("connect {addr}: {e}")),
    }
    // SAFETY: `fd` is an open socket we own; ownership moves into the TcpStream.
    Ok(unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) })
}

fn tcp_hold(args: &Args) -> Result<String, String> {
    let addr = args.addr(0)?;
    let count = args.num("count", None)?.min(20_000) as usize;
    let secs = args.secs()?;
    let proto = args.text("proto", "none");
    let trickle = args.num("trickle-ms", Some(0))?;
    let reopen = args.flag("reopen");
    let prefix: &[u8] = match proto.as_str() {
        "none" => b"",
        // A length prefix of 65535 bytes: the message can never be complete.
        "dns" => &[0xff, 0xff],
        "http" => b"GET /health HTTP/1.1\r\nX-Slow: ",
        other => return Err(format!("--proto {other:?}: expected none, dns or http")),
    };
    let start = Instant::now();
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        held.push(Held {
            stream: open_nonblocking(addr)?,
            opened: Instant::now(),
            connected: false,
            sent_prefix: false,
        });
    }
    println!("ready");
    let mut opened = count as u64;
    let mut closed_after_ms: Vec<u64> = Vec::new();
    let mut max_connected = 0usize;
    let mut last_trickle = Instant::now();
    let mut buf = [0u8; 512];
    let mut to_reopen = 0usize;
    while start.elapsed() < secs {
        let trickle_now = trickle > 0 && last_trickle.elapsed() >= Duration::from_millis(trickle);
        if trickle_now {
            last_trickle = Instant::now();
        }
        let mut i = 0;
        while i < held.len() {
            let h = &mut held[i];
            if !h.connected && h.stream.peer_addr().is_ok() {
                h.connected = true;
            }
            let mut closed = false;
            if h.connected {
                if !h.sent_prefix {
                    h.sent_prefix = true;
                    if !prefix.is_empty() && h.stream.write_all(prefix).is_err() {
                        closed = true;
                    }
                }
                if trickle_now && !closed && h.stream.write(b"a").is_err() {
                    closed = true;
                }
                match h.stream.read(&mut buf) {
                    Ok(0) => closed = true,
                    // The server answered (an HTTP 4xx or the like): it will close next.
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => closed = true,
                }
            } else if let Ok(Some(_)) = h.stream.take_error() {
                closed = true;
            }
            if closed {
                closed_after_ms.push(h.opened.elapsed().as_millis() as u64);
                held.swap_remove(i);
                if reopen {
                    to_reopen += 1;
                }
                continue;
            }
            i += 1;
        }
        // Reopened in the next rounds, at most a tenth of --count per 50 ms round (2 x count per
        // second): a persistent attacker, not a connect flood.
        let batch = to_reopen.min(count.div_ceil(10));
        for _ in 0..batch {
            held.push(Held {
                stream: open_nonblocking(addr)?,
                opened: Instant::now(),
                connected: false,
                sent_prefix: false,
            });
            opened += 1;
        }
        to_reopen -= batch;
        max_connected = max_connected.max(held.iter().filter(|h| h.connected).count());
        std::thread::sleep(Duration::from_millis(50));
    }
    let connected_at_end = held.iter().filter(|h| h.connected).count();
    let pending_at_end = held.len() - connected_at_end;
    let closed = closed_after_ms.len();
    let (median, _, max) = percentiles(&mut closed_after_ms);
    Ok(serde_json::json!({
        "opened": opened, "closed_by_server": closed, "max_connected": max_connected,
        "connected_at_end": connected_at_end, "pending_at_end": pending_at_end,
        "closed_first_ms": closed_after_ms.first().copied().unwrap_or(0),
        "closed_median_ms": median, "closed_max_ms": max,
    })
    .to_string())
}

fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, Duration), String> {
    let t0 = Instant::now();
    let timeout = Duration::from_secs(2);
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: lab\r\n\r\n").map_err(|e| format!("write: {e}"))?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&reply);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))?;
    Ok((code, t0.elapsed()))
}

fn http_probe(args: &Args) -> Result<String, String> {
    let addr = args.addr(0)?;
    let path = args.pos(1)?.to_string();
    let every = Duration::from_millis(args.num("every-ms", Some(50))?.max(1));
    let secs = args.secs()?;
    println!("ready");
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut failed = 0u64;
    let mut sent = 0u64;
    let mut first_error = String::new();
    while start.elapsed() < secs {
        let t0 = Instant::now();
        sent += 1;
        match http_get(addr, &path) {
            Ok((200, took)) => latencies.push(took.as_micros() as u64),
            Ok((code, _)) => {
                failed += 1;
                if first_error.is_empty() {
                    first_error = format!("status {code}");
                }
            }
            Err(e) => {
                failed += 1;
                if first_error.is_empty() {
                    first_error = e;
                }
            }
        }
        if let Some(wait) = every.checked_sub(t0.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let ok = latencies.len() as u64;
    let (p50, p99, max) = percentiles(&mut latencies);
    Ok(serde_json::json!({
        "sent": sent, "ok": ok, "failed": failed, "first_error": first_error,
        "p50_us": p50, "p99_us": p99, "max_us": max,
    })
    .to_string())
}

fn http_garbage(args: &Args) -> Result<String, String> {
    let addr = args.addr(0)?;
    let secs = args.secs()?;
    println!("ready");
    let mut rng = Rng::new();
    let start = Instant::now();
    let (mut connections, mut answered, mut bytes) = (0u64, 0u64, 0u64);
    let mut buf = vec![0u8; 16 * 1024];
    while start.elapsed() < secs {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        connections += 1;
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
        let len = 1 + rng.below(buf.len() as u64) as usize;
        rng.fill(&mut buf[..len]);
        if rng.below(2) == 0 && len >= 4 {
            buf[len - 4..len].copy_from_slice(b"\r\n\r\n");
        }
        if s.write_all(&buf[..len]).is_ok() {
            bytes += len as u64;
        }
        let mut reply = Vec::new();
        if s.read_to_end(&mut reply).is_ok() && reply.starts_with(b"HTTP/1.1 ") {
            answered += 1;
        }
    }
    Ok(serde_json::json!({
        "connections": connections, "answered": answered, "bytes": bytes,
    })
    .to_string())
}

fn unix_hold(args: &Args) -> Result<String, String> {
    let path = args.pos(0)?.to_string();
    let count = args.num("count", None)?.min(10_000) as usize;
    let secs = args.secs()?;
    let start = Instant::now();
    let mut held = Vec::new();
    let mut refused = 0u64;
    for _ in 0..count {
        match UnixStream::connect(&path) {
            Ok(s) => {
                let _ = s.set_nonblocking(true);
                held.push((s, Instant::now()));
            }
            Err(_) => refused += 1,
        }
    }
    println!("ready");
    let connected = held.len();
    let mut closed_after_ms = Vec::new();
    let mut buf = [0u8; 256];
    while start.elapsed() < secs && !held.is_empty() {
        held.retain_mut(|(s, opened)| match s.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => true,
            _ => {
                closed_after_ms.push(opened.elapsed().as_millis() as u64);
                false
            }
        });
        std::thread::sleep(Duration::from_millis(50));
    }
    let closed = closed_after_ms.len();
    let (median, _, max) = percentiles(&mut closed_after_ms);
    Ok(serde_json::json!({
        "connected": connected, "refused": refused, "closed_by_server": closed,
        "closed_median_ms": median, "closed_max_ms": max, "still_open": held.len(),
    })
    .to_string())
}
