//! Stand-ins for the services an OpenShift node's vipd talks to, run inside a lab namespace by the
//! scenario tests (integration/src/scenarios.rs starts them):
//!
//! - `lab-responder http ADDR`: answers every HTTP request with `200 OK` and body `OK`, like the
//!   API server's `/readyz` or haproxy's `/haproxy_ready` when healthy. Stopping the process is
//!   how a test fails a `[[check]]`.
//! - `lab-responder dns ADDR NAME IPV4`: a one-record upstream DNS server: `NAME A IPV4` (TTL
//!   60), NOERROR without answers for other types at `NAME`, NXDOMAIN for every other name.
//!
//! Each prints `listening on ADDR` once ready and one line per request served, and exits by itself
//! after `--lifetime SECS` (default 120), so even a test killed before its clean-up cannot leave
//! one running for long.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: lab-responder http ADDR [--lifetime SECS]\n       \
                     lab-responder dns ADDR NAME IPV4 [--lifetime SECS]";

/// How often the serving loops look at the clock.
const POLL: Duration = Duration::from_millis(50);

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let lifetime = match take_lifetime(&mut args) {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    let deadline = Instant::now() + lifetime;
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["http", addr] => parse_addr(addr).and_then(|a| serve_http(a, deadline)),
        ["dns", addr, name, ip] => parse_addr(addr).and_then(|a| {
            let ip: Ipv4Addr = ip
                .parse()
                .map_err(|e| format!("IPV4 {ip:?}: {e}; expected e.g. 198.51.100.7"))?;
            serve_dns(a, &wire_name(name)?, ip, deadline)
        }),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("lab-responder: {message}");
    ExitCode::from(2)
}

fn take_lifetime(args: &mut Vec<String>) -> Result<Duration, String> {
    let Some(pos) = args.iter().position(|a| a == "--lifetime") else {
        return Ok(Duration::from_secs(120));
    };
    let value = args
        .get(pos + 1)
        .ok_or("--lifetime needs a number of seconds")?
        .clone();
    args.drain(pos..pos + 2);
    value
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|e| format!("--lifetime {value:?}: {e}; expected whole seconds"))
}

fn parse_addr(addr: &str) -> Result<SocketAddr, String> {
    addr.parse()
        .map_err(|e| format!("ADDR {addr:?}: {e}; expected address:port, e.g. 127.0.0.1:9444"))
}

fn serve_http(addr: SocketAddr, deadline: Instant) -> Result<(), String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("binding {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{addr}: {e}"))?;
    println!("listening on {addr}");
    while Instant::now() < deadline {
        let (mut stream, peer) = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(POLL);
                continue;
            }
            Err(e) => return Err(format!("accept on {addr}: {e}")),
        };
        // One request per connection; a client that sends nothing is given up on after 1 s.
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let line = String::from_utf8_lossy(&request);
        println!(
            "{peer} {}",
            line.lines().next().unwrap_or("(no request line)")
        );
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK",
        );
    }
    Ok(())
}

/// `example.test.` -> `\x07example\x04test\x00`, lower-cased for comparison.
fn wire_name(name: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "NAME {name:?}: label {label:?} must be 1..=63 bytes"
            ));
        }
        out.push(label.len() as u8);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
    Ok(out)
}

fn serve_dns(addr: SocketAddr, name: &[u8], ip: Ipv4Addr, deadline: Instant) -> Result<(), String> {
    let socket = UdpSocket::bind(addr).map_err(|e| format!("binding {addr}: {e}"))?;
    socket
        .set_read_timeout(Some(POLL))
        .map_err(|e| format!("{addr}: {e}"))?;
    println!("listening on {addr}");
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(format!("receiving on {addr}: {e}")),
        };
        match dns_answer(&buf[..len], name, ip) {
            Some((reply, summary)) => {
                println!("{peer} {summary}");
                let _ = socket.send_to(&reply, peer);
            }
            None => println!("{peer} ignored a malformed query of {len} bytes"),
        }
    }
    Ok(())
}

/// RFC 1035 4.1: header (12 bytes), one question (QNAME, QTYPE, QCLASS). The reply keeps the
/// ID, opcode and RD bit, sets QR and RA, echoes the question and drops the additional section
/// (so an EDNS OPT is not echoed: a plain RFC 1035 server).
fn dns_answer(query: &[u8], name: &[u8], ip: Ipv4Addr) -> Option<(Vec<u8>, String)> {
    const TYPE_A: u16 = 1;
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let mut pos = 12;
    let mut qname = Vec::new();
    loop {
        let len = usize::from(*query.get(pos)?);
        // Compression pointers (top two bits set) do not appear in a query's only question.
        if len > 63 {
            return None;
        }
        qname.push(len as u8);
        if len == 0 {
            pos += 1;
            break;
        }
        qname.extend(
            query
                .get(pos + 1..pos + 1 + len)?
                .iter()
                .map(u8::to_ascii_lowercase),
        );
        pos += 1 + len;
    }
    let qtype = u16::from_be_bytes([*query.get(pos)?, *query.get(pos + 1)?]);
    let question_end = pos + 4;
    if query.len() < question_end {
        return None;
    }
    let matches = qname == name;
    let answer = matches && qtype == TYPE_A;
    let rcode = if matches { 0 } else { 3 };
    let mut reply = Vec::with_capacity(question_end + 16);
    reply.extend_from_slice(&query[0..2]);
    reply.push(0x80 | (query[2] & 0x79));
    reply.push(0x80 | rcode);
    reply.extend_from_slice(&[0, 1, 0, u8::from(answer), 0, 0, 0, 0]);
    reply.extend_from_slice(&query[12..question_end]);
    if answer {
        // Owner: a pointer to the question's name at offset 12; class IN, TTL 60, RDLENGTH 4.
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&ip.octets());
    }
    let summary = format!(
        "qtype {qtype} {} -> {}",
        if matches {
            "for our name"
        } else {
            "for another name"
        },
        if answer {
            format!("A {ip}")
        } else if matches {
            "NODATA".into()
        } else {
            "NXDOMAIN".into()
        }
    );
    Some((reply, summary))
}
