//! Three OpenShift masters whose API VIP follows a health check, as keepalived's `chk_ocp_lb`
//! moves it today (reference/openshift.md section 3). Needs root, the vipd binary and
//! lab-responder (built with this package).
//!
//! Each node runs a stand-in API endpoint on 127.0.0.1:9444 inside its own namespace; vipd probes
//! it every 500 ms (`fall = 2`, `rise = 2`). Base priorities 45/42/30 and a +20 check give
//! 65/62/50 while healthy, so node 0 is the Master, node 1 its successor, and a failing check
//! (45) puts node 0 below node 1. VRRPv2 with PASS authentication, unicast to the other masters,
//! 1 s adverts.
//!
//! The Backups' priorities differ on purpose: with equal ones both time out in the same
//! millisecond, both take the VIP, and the loser of the tie (RFC 3768 6.4.3) may announce after
//! the winner, which leaves clients on the loser's MAC for up to 150 ms (the daemon's follow-up
//! announce); that race is the daemon's to fix, not this scenario's to measure.
//!
//! Timer figures (RFC 3768 6.1): Master_Down_Interval = 3 s + Skew_Time, Skew_Time =
//! (256 - priority) / 256 s: 3.758 s at 62, 3.805 s at 50, 3.746 s at 65.

use std::net::{IpAddr, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use lab::scenarios::{self, HttpCheck, NodeConfig, Track};
use lab::vipd::{self as labvipd, Peering};
use lab::{Lab, Proc};

const RESPONDER: &str = env!("CARGO_BIN_EXE_lab-responder");
const ADVERT: Duration = Duration::from_secs(1);
const BASE: [u8; 3] = [45, 42, 30];
const CHECK_INTERVAL: Duration = Duration::from_millis(500);
const FALL: u32 = 2;
const RISE: u32 = 2;
const CHECK_WEIGHT: i32 = 20;
/// Master_Down_Interval of node 1 at 62, the healthy successor.
const MASTER_DOWN: Duration = Duration::from_millis(3758);
/// Scheduling on a shared 2-core machine, one advert interval for the last advert's phase, and
/// the 20 ms polling of `who_has`.
const SLACK: Duration = Duration::from_millis(2000);
const ELECTION: Duration = Duration::from_secs(10);

fn vip() -> IpAddr {
    "192.0.2.5".parse().unwrap()
}

fn api_endpoint() -> SocketAddr {
    "127.0.0.1:9444".parse().unwrap()
}

/// Node `i`'s config: the `api` instance tracking `chk_api` with `weight` (None: the check's own
/// +20).
fn master_config(lab: &Lab, i: usize, weight: Option<i32>) -> NodeConfig {
    let mut api = labvipd::cluster_instance(lab, i, &BASE, vip(), ADVERT, Peering::Unicast);
    api.version = 2;
    api.password = Some("ostest_api_vip".into());
    NodeConfig {
        checks: vec![HttpCheck {
            name: "chk_api".into(),
            url: format!("http://{}/haproxy_ready", api_endpoint()),
            interval: CHECK_INTERVAL,
            rise: RISE,
            fall: FALL,
            weight: CHECK_WEIGHT,
        }],
        instances: vec![(
            api,
            vec![Track {
                check: "chk_api".into(),
                weight,
            }],
        )],
        ..NodeConfig::new()
    }
}

struct Masters {
    servers: Vec<Proc>,
    _vipd: Vec<Proc>,
}

/// Starts the three API stand-ins, then vipd on every node; returns once node 0 holds the VIP
/// and every node reports `expected[i]` as its effective priority.
fn start_masters(lab: &Lab, weight: Option<i32>, expected: [u64; 3]) -> Masters {
    let servers: Vec<Proc> = (0..3)
        .map(|i| scenarios::start_http_responder(lab.node(i), RESPONDER, api_endpoint()).unwrap())
        .collect();
    let vipd: Vec<Proc> = (0..3)
        .map(|i| scenarios::start(lab.node(i), &master_config(lab, i, weight)).unwrap())
        .collect();
    for (i, want) in expected.iter().enumerate() {
        scenarios::wait_instance(lab.node(i), "api", ELECTION, "the healthy priority", |s| {
            s["effective_priority"] == *want && s["fault"] == false
        })
        .unwrap();
    }
    lab.wait_holder_is(vip(), 0, ELECTION).unwrap();
    Masters {
        servers,
        _vipd: vipd,
    }
}

#[test]
fn a_failing_api_check_lowers_the_masters_priority_and_the_vip_moves_to_a_healthy_master() {
    let lab = Lab::new(3).unwrap();
    let mut masters = start_masters(&lab, None, [65, 62, 50]);
    assert!(lab.client_reaches(vip(), Duration::from_secs(2)).unwrap());
    let prober = lab.prober(vip(), Duration::from_millis(10)).unwrap();
    let _dump = lab
        .client()
        .spawn(
            "tcpdump",
            &[
                "tcpdump",
                "-i",
                "eth0",
                "-n",
                "-e",
                "-tt",
                "-U",
                "arp or vrrp or icmp",
            ],
        )
        .unwrap();
    thread::sleep(Duration::from_millis(300));

    let failed_at = Instant::now();
    masters.servers[0].kill();

    // The check turns bad after `fall` failed probes; the instance then advertises its base.
    let api = scenarios::wait_instance(
        lab.node(0),
        "api",
        CHECK_INTERVAL * (FALL + 1) + SLACK,
        "effective priority 45",
        |s| s["effective_priority"] == 45,
    )
    .unwrap();
    assert_eq!(api["base_priority"], 45);
    assert_eq!(api["fault"], false);
    let status = scenarios::status_json(lab.node(0)).unwrap();
    let check = &status["checks"]["checks"]["chk_api"];
    assert_eq!(check["status"], "bad", "{status:#}");
    assert_eq!(check["weight"], 20);
    let table = scenarios::ctl(lab.node(0), &["status"]).unwrap();
    assert!(
        table.stdout.contains("priority   45 effective (base 45)"),
        "{}",
        table.stdout
    );
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("chk_api") && l.contains("bad")),
        "{}",
        table.stdout
    );

    // Node 1 (62) ignores the 45 (preemption, RFC 3768 6.4.2) and takes over when its
    // Master_Down_Interval since the last 65 advert runs out; node 0 steps down on its advert.
    let bound = CHECK_INTERVAL * FALL + ADVERT + MASTER_DOWN + SLACK;
    lab.wait_holder_is(vip(), 1, bound).unwrap();
    let moved_after = failed_at.elapsed();
    lab.wait_client_neigh_is(vip(), 1, Duration::from_secs(2))
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    let outage = prober.stop().unwrap();
    let backup = scenarios::instance_status(lab.node(1), "api").unwrap();
    assert_eq!(backup["state"], "MASTER");
    assert_eq!(backup["effective_priority"], 62);

    eprintln!(
        "check failure -> VIP on node 1 after {:.0} ms (bound {bound:?}); client: {:?} unanswered at most, longest reply gap {:.1} ms, {} lost",
        moved_after.as_secs_f64() * 1000.0,
        outage.longest_unanswered,
        outage.longest_gap_ms(),
        outage.lost
    );
    // Node 0 keeps answering for the VIP until the new Master's advert arrives, and the new
    // Master announces itself before its advert goes out: make-before-break, so at most one
    // 10 ms probe goes unanswered (counted in probes: late replies on a loaded machine are not
    // an outage).
    assert!(
        outage.longest_unanswered <= Duration::from_millis(20),
        "{outage:?}"
    );
}

#[test]
fn a_failing_weight_zero_check_puts_the_master_in_fault_and_releases_the_vip() {
    let lab = Lab::new(3).unwrap();
    let mut masters = start_masters(&lab, Some(0), [45, 42, 30]);

    let failed_at = Instant::now();
    masters.servers[0].kill();
    let api = scenarios::wait_instance(
        lab.node(0),
        "api",
        CHECK_INTERVAL * (FALL + 1) + SLACK,
        "FAULT",
        |s| s["state"] == "FAULT",
    )
    .unwrap();
    assert_eq!(api["fault"], true);

    // Leaving Master for FAULT sends a priority-0 advert (as keepalived does), so node 1 waits
    // only its Skew_Time, (256 - 42) / 256 = 0.836 s, not a whole Master_Down_Interval.
    let skew = Duration::from_millis(836);
    let bound = CHECK_INTERVAL * (FALL + 1) + skew + SLACK;
    lab.wait_holder_is(vip(), 1, bound).unwrap();
    eprintln!(
        "weight-0 check failure -> VIP on node 1 after {:.0} ms (bound {bound:?})",
        failed_at.elapsed().as_secs_f64() * 1000.0
    );
    let api = scenarios::instance_status(lab.node(0), "api").unwrap();
    assert_eq!(api["state"], "FAULT");
    assert_eq!(api["holding_vips"], false);
    let table = scenarios::ctl(lab.node(0), &["status"]).unwrap();
    assert!(
        table.stdout.lines().any(|l| l
            == "  priority   45 effective (base 45)  FAULT: a weight-0 check is failing   advert interval 1000 ms"),
        "{}",
        table.stdout
    );
    // A node in FAULT stays out of the election for as long as the check is bad.
    lab.assert_holder_stays(vip(), 1, MASTER_DOWN).unwrap();
}

#[test]
fn when_the_api_check_recovers_the_priority_returns_and_the_node_preempts_back() {
    let lab = Lab::new(3).unwrap();
    let mut masters = start_masters(&lab, None, [65, 62, 50]);
    masters.servers[0].kill();
    let bound = CHECK_INTERVAL * FALL + ADVERT + MASTER_DOWN + SLACK;
    lab.wait_holder_is(vip(), 1, bound).unwrap();

    let recovered_at = Instant::now();
    masters.servers[0] =
        scenarios::start_http_responder(lab.node(0), RESPONDER, api_endpoint()).unwrap();
    scenarios::wait_instance(
        lab.node(0),
        "api",
        CHECK_INTERVAL * (RISE + 1) + SLACK,
        "effective priority 65",
        |s| s["effective_priority"] == 65,
    )
    .unwrap();
    // Node 0 (65) ignores node 1's 62 adverts and takes over after its own Master_Down_Interval
    // (3.746 s); preempt is on by default.
    lab.wait_holder_is(vip(), 0, CHECK_INTERVAL * RISE + MASTER_DOWN + SLACK)
        .unwrap();
    eprintln!(
        "check recovery -> VIP back on node 0 after {:.0} ms",
        recovered_at.elapsed().as_secs_f64() * 1000.0
    );
    lab.assert_holder_stays(vip(), 0, Duration::from_secs(2))
        .unwrap();
    lab.wait_client_neigh_is(vip(), 0, Duration::from_secs(2))
        .unwrap();
    let check = &scenarios::status_json(lab.node(0)).unwrap()["checks"]["checks"]["chk_api"];
    assert_eq!(check["status"], "good");
}
