//! A two-namespace lab for the network tests: namespaces `a` and `b` joined by a veth pair
//! (`va` in a, `vb` in b) carrying 192.0.2.1/24 + 2001:db8::1/64 and 192.0.2.2/24 +
//! 2001:db8::2/64. Needs root (CI runs as root); without it the test fails, it is never skipped.
//! The namespaces, and with them the veth pair, are deleted when the `Lab` is dropped, also when
//! the test panics.

#![allow(dead_code)] // each test file uses a different part of the lab

use std::fs::File;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::sched::{setns, CloneFlags};

pub const A_V4: &str = "192.0.2.1";
pub const B_V4: &str = "192.0.2.2";
pub const A_V6: &str = "2001:db8::1";
pub const B_V6: &str = "2001:db8::2";
pub const A_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0a];
pub const B_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0b];
/// Upper bound on every wait in these tests.
pub const TIMEOUT: Duration = Duration::from_secs(3);

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Netns {
    pub name: String,
    pub ifname: &'static str,
}

impl Netns {
    /// Runs `ip -n <ns> <args>` and returns its stdout; panics with stderr on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        run("ip", &[&["-n", &self.name], args].concat())
    }

    /// Runs a command inside the namespace (`ip netns exec`).
    pub fn exec(&self, cmd: &[&str]) -> String {
        run("ip", &[&["netns", "exec", &self.name], cmd].concat())
    }

    /// Moves the calling thread into the namespace. Only call it on a thread made for it.
    pub fn enter(&self) {
        let path = format!("/run/netns/{}", self.name);
        let file = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
        setns(file, CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns into {}: {e}", self.name));
    }

    /// Runs `f` on a fresh thread inside the namespace, with a current-thread tokio runtime
    /// (so every socket and task it creates stays in the namespace), and returns its result.
    pub fn run<T, F>(&self, f: impl FnOnce() -> F + Send) -> T
    where
        T: Send,
        F: Future<Output = T>,
    {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter();
                block_on(f())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    pub fn ifindex(&self) -> u32 {
        let out = self.ip(&["-o", "link", "show", "dev", self.ifname]);
        out.split(':')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no ifindex in {out:?}"))
    }

    pub fn link_local(&self) -> Ipv6Addr {
        let out = self.ip(&[
            "-o",
            "-6",
            "addr",
            "show",
            "dev",
            self.ifname,
            "scope",
            "link",
        ]);
        out.split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .and_then(|cidr| cidr.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no link-local address in {out:?}"))
    }
}

pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {} -- these tests need root and iproute2",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub struct Lab {
    pub a: Netns,
    pub b: Netns,
}

impl Lab {
    pub fn new() -> Lab {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("vipdtest-{}-{n}", std::process::id());
        // Built before any namespace exists, so Drop cleans up whatever the set-up got to.
        let lab = Lab {
            a: Netns {
                name: format!("{prefix}-a"),
                ifname: "va",
            },
            b: Netns {
                name: format!("{prefix}-b"),
                ifname: "vb",
            },
        };
        for ns in [&lab.a, &lab.b] {
            run("ip", &["netns", "add", &ns.name]);
            // No DAD: addresses (link-local included) are usable at once, so no test waits.
            ns.exec(&[
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ]);
        }
        lab.a.ip(&[
            "link",
            "add",
            "va",
            "type",
            "veth",
            "peer",
            "name",
            "vb",
            "netns",
            &lab.b.name,
        ]);
        for (ns, mac, v4, v6) in [(&lab.a, A_MAC, A_V4, A_V6), (&lab.b, B_MAC, B_V4, B_V6)] {
            let mac = mac
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":");
            ns.ip(&["link", "set", "dev", ns.ifname, "address", &mac]);
            ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", ns.ifname]);
            ns.ip(&[
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                ns.ifname,
                "nodad",
            ]);
            ns.ip(&["link", "set", "dev", ns.ifname, "up"]);
            ns.ip(&["link", "set", "dev", "lo", "up"]);
        }
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", &ns.name]).output();
        }
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}
