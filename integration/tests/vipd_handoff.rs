//! The bootstrap hand-off ([handoff]) in a 2-node lab: node 0 is the bootstrap (API priority 70)
//! with a fake API on its own loopback, node 1 a master (40). When the fake API stops answering
//! after having been up, the bootstrap resigns make-before-break and the master takes the VIP
//! with at most one 10 ms client probe unanswered; when the API answers again, the bootstrap
//! rejoins and preempts back. Needs root and the vipd binary (`$VIPD_BIN` or target/debug/vipd).
//!
//! Fast timers keep it short: 100 ms adverts (Master_Down_Interval 0.37 s at priority 70 /
//! 0.34 s at 40, RFC 9568 6.1), hand-off probes every 100 ms, 5 failures, 3 recoveries.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, TcpListener};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sched::{setns, CloneFlags};

use lab::vipd::{self, Instance};
use lab::{Host, Lab, Proc};

const ADVERT: Duration = Duration::from_millis(100);
/// Nothing listens on it in the bootstrap's fresh namespace: "Ironic" is down throughout.
const IRONIC_PORT: u16 = 6385;

fn vip() -> IpAddr {
    "192.0.2.5".parse().unwrap()
}

/// An HTTP server on 127.0.0.1 inside a node's namespace (a thread that entered it with
/// setns), answering 200 while `up` and 503 otherwise. Stopped and joined on drop.
struct FakeApi {
    port: u16,
    up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeApi {
    fn start(host: &Host) -> Result<FakeApi> {
        let ns_path = format!("/run/netns/{}", host.ns());
        let up = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let (port_tx, port_rx) = mpsc::channel();
        let (thread_up, thread_stop) = (Arc::clone(&up), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            let listener = (|| -> Result<TcpListener> {
                let ns = File::open(&ns_path).with_context(|| format!("opening {ns_path}"))?;
                // Only this thread moves; the test's other threads stay in the host namespace.
                setns(ns, CloneFlags::CLONE_NEWNET).context("setns")?;
                let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
                l.set_nonblocking(true)?;
                Ok(l)
            })();
            let listener = match listener {
                Ok(l) => l,
                Err(e) => {
                    let _ = port_tx.send(Err(e));
                    return;
                }
            };
            let _ = port_tx.send(listener.local_addr().map(|a| a.port()).map_err(Into::into));
            while !thread_stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                        let mut buf = [0u8; 2048];
                        let _ = s.read(&mut buf);
                        let response: &[u8] = if thread_up.load(Ordering::SeqCst) {
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                        } else {
                            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        };
                        let _ = s.write_all(response);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(5))
            .context("the fake API thread did not start")??;
        Ok(FakeApi {
            port,
            up,
            stop,
            thread: Some(thread),
        })
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts vipd on `host` with `instance` and, when given, a `[handoff]` table.
fn start(host: &Host, instance: Instance, handoff: Option<&str>) -> Result<(Proc, String)> {
    let dir = host.dir()?;
    let conf = dir.join("vipd.toml");
    let socket = dir.join("vipd.sock");
    let _ = fs::remove_file(&socket);
    let mut text = vipd::render("ostest", &[instance], &socket.to_string_lossy());
    if let Some(h) = handoff {
        text.push_str(h);
    }
    fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
    let bin = vipd::binary()?;
    let argv = [
        bin.to_str().context("binary path")?,
        "run",
        "--config",
        conf.to_str().context("config path")?,
        "--log-level",
        "info,vipd=debug",
    ];
    let mut proc = host.spawn("vipd", &argv)?;
    thread::sleep(Duration::from_millis(150));
    proc.ensure_running()?;
    Ok((proc, socket.to_string_lossy().into_owned()))
}

/// `handoff` of `vipd status --json` on the node whose control socket is `socket`.
fn handoff_status(socket: &str) -> Result<serde_json::Value> {
    let out = Command::new(vipd::binary()?)
        .args(["status", "--json", "--socket", socket])
        .output()
        .context("running vipd status")?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "vipd status printed {:?}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    Ok(v.get("handoff").cloned().unwrap_or(serde_json::Value::Null))
}

#[test]
fn bootstrap_hands_the_api_vip_to_the_master_when_its_api_goes_and_takes_it_back_when_it_returns() {
    let started = Instant::now();
    let lab = Lab::new(2).unwrap();
    let api = FakeApi::start(lab.node(0)).unwrap();
    let handoff = format!(
        "\n[handoff]\ninstance = \"api\"\nprobe = \"http://127.0.0.1:{}/readyz\"\n\
         also_down = [\"http://127.0.0.1:{IRONIC_PORT}/v1\"]\ninterval = \"100ms\"\n\
         failures = 5\nrecoveries = 3\n",
        api.port
    );
    let (_bootstrap, socket) = start(
        lab.node(0),
        Instance::new(vip(), 70, ADVERT),
        Some(&handoff),
    )
    .unwrap();
    let (_master, _) = start(lab.node(1), Instance::new(vip(), 40, ADVERT), None).unwrap();
    lab.wait_holder_is(vip(), 0, Duration::from_secs(3))
        .unwrap();
    lab.wait_client_neigh_is(vip(), 0, Duration::from_secs(2))
        .unwrap();
    let up = lab::wait_until(Duration::from_secs(2), || {
        Ok((handoff_status(&socket)?["phase"] == "up").then_some(()))
    })
    .unwrap();
    assert!(up.is_some(), "{}", handoff_status(&socket).unwrap());

    let prober = lab.prober(vip(), Duration::from_millis(10)).unwrap();
    thread::sleep(Duration::from_millis(300));
    let api_down_at = Instant::now();
    api.set_up(false);
    // Five 100 ms probes, then the resign: the master answers within its Skew_Time (0.084 s).
    lab.wait_holder_is(vip(), 1, Duration::from_secs(3))
        .unwrap();
    let moved_after = api_down_at.elapsed();
    lab.wait_client_neigh_is(vip(), 1, Duration::from_secs(2))
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    let outage = prober.stop().unwrap();
    let status = handoff_status(&socket).unwrap();
    eprintln!(
        "bootstrap hand-off: VIP on the master {moved_after:?} after the API went down; client: \
         {:?} unanswered at most, longest reply gap {:.1} ms, {} lost",
        outage.longest_unanswered,
        outage.longest_gap_ms(),
        outage.lost
    );
    assert_eq!(status["phase"], "handed_off", "{status}");
    assert_eq!(status["handoffs"], 1, "{status}");
    // Counted in probes: at most one 10 ms probe unanswered (see vipd_failover.rs).
    assert!(
        outage.longest_unanswered <= Duration::from_millis(20),
        "{outage:?}"
    );
    assert!(
        moved_after >= Duration::from_millis(400),
        "handed off after {moved_after:?}, before five failed probes could have run"
    );
    lab.assert_holder_stays(vip(), 1, Duration::from_millis(500))
        .unwrap();

    // The API returns: three good probes, then the bootstrap rejoins and preempts (70 > 40).
    api.set_up(true);
    lab.wait_holder_is(vip(), 0, Duration::from_secs(3))
        .unwrap();
    lab.wait_client_neigh_is(vip(), 0, Duration::from_secs(2))
        .unwrap();
    let status = handoff_status(&socket).unwrap();
    assert_eq!(status["phase"], "up", "{status}");
    assert_eq!(status["rejoins"], 1, "{status}");
    let took = started.elapsed();
    eprintln!("scenario took {took:?}");
    assert!(took < Duration::from_secs(30), "scenario took {took:?}");
}
