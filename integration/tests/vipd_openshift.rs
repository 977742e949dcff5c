//! Three OpenShift masters whose API VIP follows a health check, as keepalived's `chk_ocp_lb`
//! moves it today (reference/openshift.md section 3). Needs root, the vipd binary and
//! lab-responder (built with this package).
//!
//! Each node runs a stand-in API endpoint on 127.0.0.1:9444 inside its own namespace; vipd probes
//! it every 500 ms (`fall = 2`, `rise = 2`). Base priorities 45/40/40 and a +20 check give
//! 65/60/60 while healthy, so node 0 is the Master and a failing check (45) puts it below the
//! others. VRRPv2 with PASS authentication, unicast to the other masters, 1 s adverts.
//!
//! The two successors have equal priorities, as OpenShift's masters do: both time out in the
//! same millisecond, both may take the VIP for a moment, and the tie goes to the higher address
//! (RFC 3768 6.4.3). The scenarios assert that exactly one of them ends up holding the VIP and
//! that clients never stay on the node that yields (at most one 10 ms probe unanswered).
//!
//! Timer figures (RFC 3768 6.1): Master_Down_Interval = 3 s + Skew_Time, Skew_Time =
//! (256 - priority) / 256 s: 3.766 s at 60, 3.746 s at 65.

use std::net::{IpAddr, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use lab::scenarios::{self, HttpCheck, NodeConfig, Track};
use lab::vipd::{self as labvipd, Peering};
use lab::{Lab, Proc};

const RESPONDER: &str = env!("CARGO_BIN_EXE_lab-responder");
const ADVERT: Duration = Duration::from_secs(1);
const BASE: [u8; 3] = [45, 40, 40];
const CHECK_INTERVAL: Duration = Duration::from_millis(500);
const FALL: u32 = 2;
const RISE: u32 = 2;
const CHECK_WEIGHT: i32 = 20;
/// Master_Down_Interval of the healthy successors at 60.
const MASTER_DOWN: Duration = Duration::from_millis(3766);
/// The two successors at 60. Which one ends up Master depends on which times out first: the
/// address tie-break (RFC 3768 6.4.3) only decides between two Masters, and a Backup that hears
/// an equal priority first simply stays Backup. Either is right; exactly one must hold the VIP.
const SUCCESSORS: [usize; 2] = [1, 2];
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
    let mut masters = start_masters(&lab, None, [65, 60, 60]);
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

    // The 60s ignore the 45 (preemption, RFC 3768 6.4.2) and take over when their
    // Master_Down_Interval since the last 65 advert runs out; node 0 steps down on their adverts,
    // the tie between the 60s goes as explained at the top.
    let bound = CHECK_INTERVAL * FALL + ADVERT + MASTER_DOWN + SLACK;
    let successor = lab
        .wait_single_holder_among(vip(), &SUCCESSORS, bound)
        .unwrap();
    let moved_after = failed_at.elapsed();
    lab.wait_client_neigh_is(vip(), successor, Duration::from_secs(2))
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    let outage = prober.stop().unwrap();
    let backup = scenarios::instance_status(lab.node(successor), "api").unwrap();
    assert_eq!(backup["state"], "MASTER");
    assert_eq!(backup["effective_priority"], 60);

    eprintln!(
        "check failure -> VIP on node {successor} after {:.0} ms (bound {bound:?}); client: {:?} unanswered at most, longest reply gap {:.1} ms, {} lost",
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
    let mut masters = start_masters(&lab, Some(0), [45, 40, 40]);

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

    // Leaving Master for FAULT sends a priority-0 advert (as keepalived does), so the successors
    // wait only their Skew_Time, (256 - 40) / 256 = 0.844 s, not a whole Master_Down_Interval.
    let skew = Duration::from_millis(844);
    let bound = CHECK_INTERVAL * (FALL + 1) + skew + SLACK;
    let successor = lab
        .wait_single_holder_among(vip(), &SUCCESSORS, bound)
        .unwrap();
    eprintln!(
        "weight-0 check failure -> VIP on node {successor} after {:.0} ms (bound {bound:?})",
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
    lab.assert_holder_stays(vip(), successor, MASTER_DOWN)
        .unwrap();
}

#[test]
fn when_the_api_check_recovers_the_priority_returns_and_the_node_preempts_back() {
    let lab = Lab::new(3).unwrap();
    let mut masters = start_masters(&lab, None, [65, 60, 60]);
    masters.servers[0].kill();
    let bound = CHECK_INTERVAL * FALL + ADVERT + MASTER_DOWN + SLACK;
    lab.wait_single_holder_among(vip(), &SUCCESSORS, bound)
        .unwrap();

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
    // Node 0 (65) ignores the successor's 60 adverts and takes over after its own Master_Down_Interval
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
