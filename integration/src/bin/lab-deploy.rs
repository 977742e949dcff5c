//! `lab-deploy FORM`: runs one of vipd's deployment forms the way a node runs it, inside a lab
//! (two node namespaces, a client, a switch; 192.0.2.0/24 only), with a plain vipd as the peer
//! on node 1 and the form under test on node 0:
//!
//! - `image`: the OCI image (scripts/image.sh) with `podman run` in node 0's network namespace,
//!   only NET_ADMIN + NET_RAW + NET_BIND_SERVICE, config mounted read-only, read-only root;
//! - `kube`: packaging/kube/vipd-static-pod.yaml with `podman kube play` (hostNetwork) entered
//!   into node 0's namespace; stopped with `podman pod stop` and with `podman kube down`;
//! - `systemd`: packaging/systemd/vipd.service installed as docs/operations.md says into a
//!   Debian booted with `systemd-nspawn -b` in node 0's namespace (packaging/nspawn/rootfs.sh);
//! - `metrics`: `promtool check metrics` on /metrics with VRRP, DNS and a check active.
//!
//! Each form checks: node 0 takes the VIP from the peer, answers the cluster names, serves
//! /health; a normal stop hands the VIP back make-before-break (0 lost probes at 10 ms from
//! the client) and leaves exactly one holder; a config that does not validate names file, key
//! and reason in the form's log, and its restart loop never moves the VIP. A missing tool
//! (podman, systemd-nspawn, mmdebstrap, promtool) fails the run; nothing is skipped.
//!
//! Needs root. The peer is `$VIPD_BIN` (default target/debug/vipd); the image is
//! localhost/vipd:latest; the systemd form installs `$VIPD_RELEASE_BIN` (default
//! target/release/vipd, what the image holds too).

use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use lab::scenarios::{dig, http_get};
use lab::topology::workspace_dir;
use lab::{wait_until, Lab, Outage, Proc};

const VIP: &str = "192.0.2.5";
const INGRESS_VIP: &str = "192.0.2.6";
const DOMAIN: &str = "ostest.example.test";
const IMAGE: &str = "localhost/vipd:latest";
/// Names of everything this tool creates in podman start with this.
const PREFIX: &str = "vipdlab";
/// The image's user (packaging/Containerfile).
const IMAGE_UID: u32 = 65534;
/// NET_ADMIN (12) | NET_RAW (13) | NET_BIND_SERVICE (10).
const THREE_CAPS: &str = "0000000000003400";

fn main() -> ExitCode {
    let form = std::env::args().nth(1).unwrap_or_default();
    let started = Instant::now();
    let result = match form.as_str() {
        "image" => image_form(),
        "kube" => kube_form(),
        "systemd" => systemd_form(),
        "metrics" => metrics_form(),
        _ => Err(anyhow!(
            "usage: lab-deploy image|kube|systemd|metrics (see the header of integration/src/bin/lab-deploy.rs)"
        )),
    };
    match result {
        Ok(()) => {
            println!(
                "lab-deploy {form}: all checks passed in {:.0} s",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lab-deploy {form}: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn ok(what: impl AsRef<str>) {
    println!("ok: {}", what.as_ref());
}

fn vip() -> IpAddr {
    VIP.parse().unwrap_or(IpAddr::from([192, 0, 2, 5]))
}

/// Fails with an install hint when `tool` is not on PATH.
fn require(tool: &str, package: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        bail!("{tool} is not installed (apt-get install {package}; scripts/setup.sh installs it)");
    }
    Ok(())
}

/// Runs a command; fails with its command line and stderr.
fn sh(argv: &[&str]) -> Result<String> {
    lab::cmd::run(argv)
}

// ---------------------------------------------------------------------------------------------
// Node configuration

/// Paths as the daemon sees them (inside a container or machine they differ from the host's).
struct Seen<'a> {
    resolv_conf: &'a str,
    socket: &'a str,
}

/// A node's vipd.toml: the api instance (VRID 14, 100 ms adverts), a TCP check on its own HTTP
/// port that the instance tracks, DNS for the cluster names and two node names, HTTP on :18080.
fn render_config(lab: &Lab, i: usize, priority: u8, seen: &Seen) -> String {
    let me = lab.node(i).ipv4();
    let mut nodes = String::new();
    for n in 0..lab.len() {
        nodes.push_str(&format!(
            "\n[[dns.node]]\nname = \"master-{n}\"\naddresses = [\"{}\"]\n",
            lab.node(n).ipv4()
        ));
    }
    format!(
        r#"cluster_name = "ostest"
base_domain = "example.test"

[[check]]
name = "own-http"
tcp = "{me}:18080"
interval = "500ms"
weight = 5

[[instance]]
name = "api"
vips = ["{VIP}"]
interface = "eth0"
vrid = 14
priority = {priority}
advert_interval = "100ms"
track = [{{ check = "own-http" }}]

[dns]
listen = ["{me}:53"]
resolv_conf = "{resolv}"
api_instances = ["api"]
ingress_vips = ["{INGRESS_VIP}"]
{nodes}
[http]
listen = "{me}:18080"

[control]
socket = "{socket}"
"#,
        resolv = seen.resolv_conf,
        socket = seen.socket,
    )
}

/// The same file with a value vipd refuses: `priority = 0` (the resign signal).
fn broken(config: &str) -> String {
    config.replace("priority = 150", "priority = 0")
}

/// Host-side directories of node 0's form: etc/ (vipd.toml, read-only for the form),
/// nm/ (resolv.conf with the upstreams), run/ (control socket, owned by the image's user).
struct Staged {
    etc: PathBuf,
    nm: PathBuf,
    run: PathBuf,
}

fn stage(lab: &Lab, i: usize, config: &str) -> Result<Staged> {
    let dir = lab.node(i).dir()?;
    let s = Staged {
        etc: dir.join("etc"),
        nm: dir.join("nm"),
        run: dir.join("run"),
    };
    for d in [&s.etc, &s.nm, &s.run] {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    fs::write(s.etc.join("vipd.toml"), config)?;
    fs::write(s.nm.join("resolv.conf"), "nameserver 198.51.100.1\n")?;
    nix::unistd::chown(
        &s.run,
        Some(nix::unistd::Uid::from_raw(IMAGE_UID)),
        Some(nix::unistd::Gid::from_raw(IMAGE_UID)),
    )
    .with_context(|| format!("chown {}", s.run.display()))?;
    // The lab's log directories are root's 0755: the image's user must reach these files.
    for d in [&s.etc, &s.nm] {
        sh(&["chmod", "0755", &d.to_string_lossy()])?;
    }
    Ok(s)
}

/// Starts plain vipd (priority 100) on node 1: the peer every form hands the VIP to.
fn start_peer(lab: &Lab) -> Result<Proc> {
    let host = lab.node(1);
    let dir = host.dir()?;
    let resolv = dir.join("resolv.conf");
    let socket = dir.join("vipd.sock");
    let _ = fs::remove_file(&socket);
    fs::write(&resolv, "nameserver 198.51.100.1\n")?;
    let conf = dir.join("vipd.toml");
    let text = render_config(
        lab,
        1,
        100,
        &Seen {
            resolv_conf: &resolv.to_string_lossy(),
            socket: &socket.to_string_lossy(),
        },
    );
    fs::write(&conf, text)?;
    let bin = lab::vipd::binary()?;
    let mut proc = host.spawn(
        "vipd",
        &[
            &bin.to_string_lossy(),
            "run",
            "--config",
            &conf.to_string_lossy(),
        ],
    )?;
    thread::sleep(Duration::from_millis(150));
    proc.ensure_running()?;
    lab.wait_holder_is(vip(), 1, Duration::from_secs(10))
        .context("the peer (plain vipd on node 1) never took the VIP")?;
    ok("peer: plain vipd on node 1 holds the VIP");
    Ok(proc)
}

/// Node `i` answers the cluster names and a node name, and serves /health.
fn check_serves(lab: &Lab, i: usize, form: &str) -> Result<()> {
    let server: IpAddr = lab.node(i).ipv4().into();
    let expect = [
        (format!("api.{DOMAIN}"), VIP.to_string()),
        (format!("api-int.{DOMAIN}"), VIP.to_string()),
        (
            format!("console-openshift-console.apps.{DOMAIN}"),
            INGRESS_VIP.to_string(),
        ),
        (format!("master-1.{DOMAIN}"), lab.node(1).ipv4().to_string()),
    ];
    for (name, want) in &expect {
        let reply = dig(lab.client(), server, name, "A")?;
        if reply.status != "NOERROR" || reply.rdata() != [want.clone()] {
            bail!(
                "{form}: {name} A from {server}: {} {:?}, expected {want}",
                reply.status,
                reply.rdata()
            );
        }
    }
    ok(format!(
        "{form}: answers api, api-int, *.apps and master-1 from {server}:53 to the client"
    ));
    let url = format!("http://{server}:18080/health");
    let (code, _) = http_get(lab.client(), &url)?;
    if code != 200 {
        bail!("{form}: GET {url} gave {code}");
    }
    ok(format!("{form}: GET {url} 200"));
    Ok(())
}

/// Starts the 10 ms prober, runs `stop`, waits for the hand-over to settle, and checks: no probe
/// lost, exactly the peer holds the VIP.
fn stop_make_before_break(
    lab: &Lab,
    what: &str,
    settle: Duration,
    stop: impl FnOnce() -> Result<()>,
) -> Result<Outage> {
    let prober = lab.prober(vip(), Duration::from_millis(10))?;
    thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    stop()?;
    let took = t0.elapsed();
    // Settled: only the peer holds the VIP (at once after a resign; after a kill without
    // SIGTERM, once the VIP's lifetime ran out on the dead node).
    let _ = wait_until(settle, || Ok((lab.who_has(vip())? == [1]).then_some(())))?;
    let single = t0.elapsed();
    thread::sleep(Duration::from_millis(300));
    let outage = prober.stop()?;
    let holders = lab.who_has(vip())?;
    println!(
        "   {what}: returned after {:.2} s, the peer alone after {:.2} s; client probes sent {} lost {} (longest unanswered {:.0} ms); holders after: {holders:?}",
        took.as_secs_f64(),
        single.as_secs_f64(),
        outage.sent,
        outage.lost,
        outage.longest_unanswered.as_secs_f64() * 1000.0
    );
    if holders != [1] {
        bail!("{what}: the VIP is held by nodes {holders:?} afterwards; expected only the peer (node 1)");
    }
    if outage.lost != 0 {
        bail!(
            "{what}: the client lost {} of {} probes at 10 ms: not make-before-break",
            outage.lost,
            outage.sent
        );
    }
    ok(format!(
        "{what}: the peer took over with 0 of {} probes lost, exactly one holder after",
        outage.sent
    ));
    Ok(outage)
}

/// Watches the VIP for `duration` while a broken config restarts: only the peer may hold it.
fn peer_keeps_vip(lab: &Lab, duration: Duration, what: &str) -> Result<()> {
    let samples = lab.sample_holders(vip(), duration, Duration::from_millis(50))?;
    if let Some((at, holders)) = samples.iter().find(|(_, h)| h != &[1]) {
        bail!(
            "{what}: {:.2} s into the restart loop the VIP was held by {holders:?}",
            at.as_secs_f64()
        );
    }
    ok(format!(
        "{what}: the peer held the VIP alone in all {} samples over {:.0} s",
        samples.len(),
        duration.as_secs_f64()
    ));
    Ok(())
}

/// The log names the file, the key and the reason of the refused value.
fn check_refusal_logged(log: &str, what: &str) -> Result<()> {
    let line = log
        .lines()
        .find(|l| l.contains("vipd.toml:") && l.contains("priority") && l.contains("reserved"))
        .ok_or_else(|| {
            anyhow!("{what}: no line naming vipd.toml, `priority` and the reason in:\n{log}")
        })?;
    ok(format!("{what}: logged `{}`", line.trim()));
    Ok(())
}

/// VmHWM / VmRSS of `pid` in KiB.
fn memory_kib(pid: u32) -> Result<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| anyhow!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// User + system CPU time of `pid` in seconds (/proc/PID/stat fields 14 and 15).
fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("malformed /proc/{pid}/stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    Ok(ticks / 100.0)
}

/// DNS load from the client (dnsperf, 3 s), then the daemon's peak RSS and CPU: the figures the
/// static pod's requests are sized from.
fn measure(lab: &Lab, i: usize, pid: u32, what: &str) -> Result<()> {
    require("dnsperf", "dnsperf")?;
    let server = lab.node(i).ipv4().to_string();
    let queries = lab.client().dir()?.join("queries.txt");
    let mut f = fs::File::create(&queries)?;
    for n in 0..50 {
        writeln!(
            f,
            "api.{DOMAIN} A\napi-int.{DOMAIN} A\nh{n}.apps.{DOMAIN} A"
        )?;
    }
    drop(f);
    // Idle first: VRRP adverts every 100 ms, the check every 500 ms, no DNS.
    let idle0 = cpu_secs(pid)?;
    let t_idle = Instant::now();
    thread::sleep(Duration::from_secs(3));
    let idle = (cpu_secs(pid)? - idle0) / t_idle.elapsed().as_secs_f64() * 1000.0;
    let cpu0 = cpu_secs(pid)?;
    let t0 = Instant::now();
    let out = lab.client().exec(&[
        "dnsperf",
        "-s",
        &server,
        "-d",
        &queries.to_string_lossy(),
        "-l",
        "3",
        "-Q",
        "5000",
    ])?;
    let cpu = cpu_secs(pid)? - cpu0;
    let qps = out
        .lines()
        .find(|l| l.contains("Queries per second"))
        .map(|l| l.split_whitespace().last().unwrap_or("?").to_string())
        .unwrap_or_else(|| "?".into());
    let (hwm, rss) = memory_kib(pid)?;
    println!(
        "   {what}: CPU {idle:.0} m idle (100 ms adverts, a check every 500 ms); under {qps} DNS queries/s for 3 s: CPU {:.0} m, peak RSS (VmHWM) {hwm} KiB, RSS after {rss} KiB",
        cpu / t0.elapsed().as_secs_f64() * 1000.0
    );
    // The static pod requests 32 Mi: a peak above it would make the request a lie.
    if hwm > 32 * 1024 {
        bail!("{what}: peak RSS {hwm} KiB exceeds the 32 Mi memory request of the static pod");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// podman

fn podman_conf() {
    // The CI host needs runc and lower ulimits (packaging/podman/containers.conf); a given
    // CONTAINERS_CONF wins.
    if std::env::var_os("CONTAINERS_CONF").is_none() {
        let conf = workspace_dir().join("packaging/podman/containers.conf");
        std::env::set_var("CONTAINERS_CONF", conf);
    }
}

fn podman(args: &[&str]) -> Result<String> {
    let mut argv = vec!["podman"];
    argv.extend_from_slice(args);
    sh(&argv)
}

/// `podman ...` inside node `ns`'s network namespace: nsenter, not `ip netns exec`, which
/// remounts /sys and breaks podman's cgroup handling.
fn podman_in(ns: &str, args: &[&str]) -> Result<String> {
    let net = format!("--net=/run/netns/{ns}");
    let mut argv = vec!["nsenter", &net, "podman"];
    argv.extend_from_slice(args);
    sh(&argv)
}

/// Removes containers and pods of killed runs (names `vipdlab-*`).
fn podman_leftovers() -> Result<()> {
    for (list, rm) in [
        (
            vec!["pod", "ps", "--format", "{{.Name}}"],
            vec!["pod", "rm", "-f", "-t", "0"],
        ),
        (
            vec!["ps", "-a", "--format", "{{.Names}}"],
            vec!["rm", "-f", "-t", "0"],
        ),
    ] {
        for name in podman(&list)?.lines() {
            if name.starts_with(PREFIX) {
                let mut argv = rm.clone();
                argv.push(name);
                podman(&argv)?;
            }
        }
    }
    Ok(())
}

fn require_image() -> Result<()> {
    require("podman", "podman runc")?;
    podman_conf();
    if podman(&["image", "exists", IMAGE]).is_err() {
        bail!("image {IMAGE} not found: build it with scripts/image.sh");
    }
    Ok(())
}

/// Removes a container or pod when dropped (also when a check fails).
struct Removed(Vec<&'static str>, String);

impl Drop for Removed {
    fn drop(&mut self) {
        let mut argv = self.0.clone();
        argv.push(&self.1);
        let _ = podman(&argv);
    }
}

/// `podman logs NAME`: the container's stdout and stderr (vipd logs to stderr).
fn podman_logs(name: &str) -> Result<String> {
    let out = lab::cmd::output(&["podman", "logs", name])?;
    if !out.status.success() {
        bail!(
            "podman logs {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn container_pid(name: &str) -> Result<u32> {
    let pid = podman(&["inspect", "--format", "{{.State.Pid}}", name])?;
    pid.trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| anyhow!("container {name} has no process (pid {pid:?})"))
}

fn check_caps(pid: u32, what: &str) -> Result<()> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let get = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    let (uid, eff, bnd) = (get("Uid:"), get("CapEff:"), get("CapBnd:"));
    if uid != IMAGE_UID.to_string() || eff != THREE_CAPS || bnd != THREE_CAPS {
        bail!("{what}: vipd runs as uid {uid} with CapEff {eff} CapBnd {bnd}; expected uid {IMAGE_UID}, both {THREE_CAPS}");
    }
    ok(format!(
        "{what}: vipd runs as uid {uid}, CapEff = CapBnd = {eff} (NET_ADMIN NET_RAW NET_BIND_SERVICE)"
    ));
    Ok(())
}

fn image_form() -> Result<()> {
    require_image()?;
    podman_leftovers()?;
    let size = podman(&["image", "inspect", "--format", "{{.Size}}", IMAGE])?;
    println!(
        "   image {IMAGE}: {} KiB",
        size.trim().parse::<u64>().unwrap_or(0) / 1024
    );
    let lab = Lab::new(2)?;
    let _peer = start_peer(&lab)?;
    let seen = Seen {
        resolv_conf: "/var/run/NetworkManager/resolv.conf",
        socket: "/run/vipd/vipd.sock",
    };
    let config = render_config(&lab, 0, 150, &seen);
    let st = stage(&lab, 0, &config)?;
    let name = format!("{PREFIX}-{}", std::process::id());
    let netns = format!("ns:/run/netns/{}", lab.node(0).ns());
    let etc = format!("{}:/etc/vipd:ro", st.etc.display());
    let nm = format!("{}:/var/run/NetworkManager:ro", st.nm.display());
    let run = format!("{}:/run/vipd", st.run.display());
    let run_args = |name: &str, restart: &str| -> Vec<String> {
        [
            "run",
            "-d",
            "--name",
            name,
            "--network",
            &netns,
            "--cap-drop",
            "all",
            "--cap-add",
            "NET_ADMIN,NET_RAW,NET_BIND_SERVICE",
            "--read-only",
            "-v",
            &etc,
            "-v",
            &nm,
            "-v",
            &run,
            "--stop-timeout",
            "30",
            "--restart",
            restart,
            IMAGE,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    {
        let _rm = Removed(vec!["rm", "-f", "-t", "0"], name.clone());
        let args = run_args(&name, "no");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        podman(&args)?;
        lab.wait_holder_is(vip(), 0, Duration::from_secs(10))
            .with_context(|| format!("podman logs:\n{}", podman_logs(&name).unwrap_or_default()))?;
        ok("image: the container (network namespace of node 0) took the VIP from the peer");
        check_serves(&lab, 0, "image")?;
        let pid = container_pid(&name)?;
        check_caps(pid, "image")?;
        measure(&lab, 0, pid, "image")?;
        let stop = || podman(&["stop", "--time", "30", &name]).map(|_| ());
        stop_make_before_break(&lab, "image: podman stop", Duration::from_millis(500), stop)?;
        let logs = podman_logs(&name)?;
        if !logs.contains("vipd stopped; all VIPs released") {
            bail!("image: podman logs has no clean stop:\n{logs}");
        }
        ok("image: podman logs: `vipd stopped; all VIPs released`");
    }
    // A file that does not validate: the container exits 1 with file, key and reason; podman
    // restarts it; the peer keeps the VIP throughout.
    fs::write(st.etc.join("vipd.toml"), broken(&config))?;
    let bad = format!("{name}-bad");
    let _rm = Removed(vec!["rm", "-f", "-t", "0"], bad.clone());
    let args = run_args(&bad, "on-failure:20");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    podman(&args)?;
    peer_keeps_vip(&lab, Duration::from_secs(4), "image: broken config")?;
    let restarts = podman(&["inspect", "--format", "{{.RestartCount}}", &bad])?;
    let restarts: u32 = restarts.trim().parse().unwrap_or(0);
    if restarts < 2 {
        bail!("image: broken config: podman restarted the container {restarts} times in 4 s; expected a restart loop");
    }
    ok(format!(
        "image: broken config: {restarts} restarts by podman"
    ));
    let logs = podman_logs(&bad)?;
    check_refusal_logged(&logs, "image: broken config: podman logs")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// podman kube play

fn kube_form() -> Result<()> {
    require_image()?;
    podman_leftovers()?;
    let lab = Lab::new(2)?;
    let _peer = start_peer(&lab)?;
    let seen = Seen {
        resolv_conf: "/var/run/NetworkManager/resolv.conf",
        socket: "/run/vipd/vipd.sock",
    };
    let config = render_config(&lab, 0, 150, &seen);
    let st = stage(&lab, 0, &config)?;
    let pod = format!("{PREFIX}-{}", std::process::id());
    let ctr = format!("{pod}-vipd");
    let manifest_path = workspace_dir().join("packaging/kube/vipd-static-pod.yaml");
    let manifest = fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    // The node's paths become the lab node's; the pod gets this run's name. Anything else in
    // the file is played as shipped.
    let rewritten = [
        (
            "  name: vipd\n  namespace:",
            format!("  name: {pod}\n  namespace:"),
        ),
        ("path: /etc/vipd\n", format!("path: {}\n", st.etc.display())),
        (
            "path: /var/run/NetworkManager\n",
            format!("path: {}\n", st.nm.display()),
        ),
        ("path: /run/vipd\n", format!("path: {}\n", st.run.display())),
    ]
    .iter()
    .try_fold(manifest, |text, (from, to)| {
        if text.contains(from) {
            Ok(text.replace(from, to))
        } else {
            Err(anyhow!(
                "{} no longer contains {from:?}: update lab-deploy kube",
                manifest_path.display()
            ))
        }
    })?;
    let file = lab.node(0).dir()?.join("vipd-static-pod.yaml");
    fs::write(&file, &rewritten)?;
    let file_s = file.to_string_lossy().into_owned();
    let ns = lab.node(0).ns().to_string();
    let _rm = Removed(vec!["pod", "rm", "-f", "-t", "0"], pod.clone());

    let play = || -> Result<()> {
        podman_in(&ns, &["kube", "play", &file_s])?;
        lab.wait_holder_is(vip(), 0, Duration::from_secs(10))
            .with_context(|| format!("podman logs:\n{}", podman_logs(&ctr).unwrap_or_default()))?;
        Ok(())
    };
    play()?;
    ok("kube: podman kube play of packaging/kube/vipd-static-pod.yaml (hostNetwork in node 0) took the VIP from the peer");
    let inspect = podman(&[
        "inspect",
        "--format",
        "{{.HostConfig.NetworkMode}} {{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.Config.Healthcheck.Test}}",
        &ctr,
    ])?;
    println!(
        "   kube: container {ctr}: network, user, read-only root, liveness: {}",
        inspect.trim()
    );
    if !inspect.starts_with("host ") || !inspect.contains("18080/health") {
        bail!("kube: expected host network and a liveness check on :18080/health, got {inspect}");
    }
    check_serves(&lab, 0, "kube")?;
    let pid = container_pid(&ctr)?;
    check_caps(pid, "kube")?;
    measure(&lab, 0, pid, "kube")?;

    let stop = || podman(&["pod", "stop", "-t", "30", &pod]).map(|_| ());
    stop_make_before_break(
        &lab,
        "kube: podman pod stop",
        Duration::from_millis(500),
        stop,
    )?;
    podman(&["pod", "rm", "-f", "-t", "0", &pod])?;

    play()?;
    ok("kube: played again, node 0 holds the VIP");
    let down = || podman_in(&ns, &["kube", "down", &file_s]).map(|_| ());
    // podman 4.3 SIGKILLs (timeout 0): vipd cannot resign; the VIP's lifetime (--vip-lifetime 10
    // in the manifest) removes it from node 0 while the peer has long taken over.
    stop_make_before_break(
        &lab,
        "kube: podman kube down",
        Duration::from_secs(13),
        down,
    )?;

    // restartPolicy Always with a broken file: the kubelet-like restart loop never moves the VIP.
    fs::write(st.etc.join("vipd.toml"), broken(&config))?;
    podman_in(&ns, &["kube", "play", &file_s])?;
    peer_keeps_vip(&lab, Duration::from_secs(4), "kube: broken config")?;
    let restarts = podman(&["inspect", "--format", "{{.RestartCount}}", &ctr])?;
    let restarts: u32 = restarts.trim().parse().unwrap_or(0);
    if restarts < 2 {
        bail!("kube: broken config: the container restarted {restarts} times in 4 s (restartPolicy Always)");
    }
    ok(format!(
        "kube: broken config: {restarts} restarts (restartPolicy Always)"
    ));
    let logs = podman_logs(&ctr)?;
    check_refusal_logged(&logs, "kube: broken config: podman logs")?;
    // Taking down a pod in a restart loop can race podman 4.3's own restart ("unlinkat
    // .../userdata/shm: device or resource busy", seen in CI): retry, bounded, until the pod
    // is gone.
    let mut result = Ok(String::new());
    for _ in 0..5 {
        result = podman_in(&ns, &["kube", "down", &file_s]);
        if result.is_ok() || podman(&["pod", "exists", &pod]).is_err() {
            return Ok(());
        }
        thread::sleep(Duration::from_secs(1));
    }
    result.map(|_| ())
}

// ---------------------------------------------------------------------------------------------
// systemd in systemd-nspawn

/// A booted machine: `systemd-nspawn -b` in a lab node's network namespace.
struct Machine {
    child: Option<Child>,
    leader: u32,
    log: PathBuf,
}

impl Machine {
    fn boot(root: &Path, ns: &str, name: &str, share: &Path, log: PathBuf) -> Result<Machine> {
        fs::create_dir_all(share.join("out"))?;
        let out = fs::File::create(&log)?;
        let err = out.try_clone()?;
        let child = Command::new("systemd-nspawn")
            .args([
                "--quiet",
                "--keep-unit",
                "--register=no",
                "--volatile=overlay",
                "--capability=CAP_NET_ADMIN",
                &format!("--network-namespace-path=/run/netns/{ns}"),
                &format!("--machine={name}"),
                &format!("--bind-ro={}:/mnt/vipd", share.display()),
                // Written from inside (the stand-in kubelet's verdict), read after poweroff.
                &format!("--bind={}:/mnt/out", share.join("out").display()),
                "-D",
                &root.to_string_lossy(),
                "-b",
            ])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .env("SYSTEMD_NSPAWN_TMPFS_TMP", "1")
            .spawn()
            .context("starting systemd-nspawn")?;
        let pid = child.id();
        let mut m = Machine {
            child: Some(child),
            leader: 0,
            log,
        };
        // The container's PID 1 is the child of nspawn whose command is systemd.
        let leader = wait_until(Duration::from_secs(20), || {
            let children =
                fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            Ok(children.split_whitespace().find_map(|c| {
                let comm = fs::read_to_string(format!("/proc/{c}/comm")).unwrap_or_default();
                (comm.trim() == "systemd")
                    .then(|| c.parse::<u32>().ok())
                    .flatten()
            }))
        })?;
        m.leader = leader.ok_or_else(|| {
            anyhow!(
                "systemd-nspawn started no systemd within 20 s; its output:\n{}",
                fs::read_to_string(&m.log).unwrap_or_default()
            )
        })?;
        let mut state = String::new();
        let up = wait_until(Duration::from_secs(60), || {
            state = m
                .output(&["systemctl", "is-system-running"])?
                .trim()
                .to_string();
            Ok(matches!(state.as_str(), "running" | "degraded").then_some(()))
        })?;
        if up.is_none() {
            bail!("the machine did not finish booting in 60 s (state {state:?})");
        }
        if state == "degraded" {
            let failed = m.output(&["systemctl", "--failed", "--no-legend"])?;
            println!(
                "   systemd: booted degraded; failed units: {}",
                failed.trim()
            );
        }
        Ok(m)
    }

    fn argv(&self, args: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "nsenter".into(),
            "-t".into(),
            self.leader.to_string(),
            "-m".into(),
            "-u".into(),
            "-i".into(),
            "-n".into(),
            "-p".into(),
            "-C".into(),
            "--".into(),
        ];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    }

    /// Runs a command inside the machine; fails on a non-zero exit.
    fn exec(&self, args: &[&str]) -> Result<String> {
        let v = self.argv(args);
        let v: Vec<&str> = v.iter().map(String::as_str).collect();
        sh(&v)
    }

    /// Runs a command inside the machine; its stdout whatever the exit status.
    fn output(&self, args: &[&str]) -> Result<String> {
        let v = self.argv(args);
        let v: Vec<&str> = v.iter().map(String::as_str).collect();
        let out = lab::cmd::output(&v)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn show(&self, prop: &str) -> Result<String> {
        Ok(self
            .exec(&["systemctl", "show", "-P", prop, "vipd"])?
            .trim()
            .to_string())
    }

    fn journal(&self) -> Result<String> {
        self.output(&[
            "journalctl",
            "-b",
            "--no-pager",
            "-o",
            "short-precise",
            "-u",
            "vipd",
        ])
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if matches!(c.try_wait(), Ok(None)) {
                // SIGKILL to nspawn would leave the container's processes; its PID 1 first.
                if self.leader > 0 {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(self.leader as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                thread::sleep(Duration::from_millis(300));
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

fn systemd_form() -> Result<()> {
    require("systemd-nspawn", "systemd-container")?;
    require("mmdebstrap", "mmdebstrap")?;
    let ws = workspace_dir();
    let root = sh(&[
        "bash",
        &ws.join("packaging/nspawn/rootfs.sh").to_string_lossy(),
    ])?
    .trim()
    .to_string();
    let release = std::env::var_os("VIPD_RELEASE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target/release/vipd"));
    if !release.is_file() {
        bail!(
            "{} not found: cargo build --release -p vipd (scripts/image.sh does)",
            release.display()
        );
    }
    let lab = Lab::new(2)?;
    let _peer = start_peer(&lab)?;

    // What the operator copies onto the node: the binary, the unit, the config.
    let share = lab.node(0).dir()?.join("share");
    fs::create_dir_all(&share)?;
    fs::copy(&release, share.join("vipd"))?;
    fs::copy(
        ws.join("packaging/systemd/vipd.service"),
        share.join("vipd.service"),
    )?;
    fs::copy(
        ws.join("packaging/systemd/vipd.sysusers"),
        share.join("vipd.sysusers"),
    )?;
    let config = render_config(
        &lab,
        0,
        150,
        &Seen {
            resolv_conf: "/etc/vipd/upstream.conf",
            socket: "/run/vipd/vipd.sock",
        },
    );
    fs::write(share.join("vipd.toml"), &config)?;
    fs::write(share.join("broken.toml"), broken(&config))?;
    fs::write(share.join("upstream.conf"), "nameserver 198.51.100.1\n")?;
    let name = format!("{PREFIX}{}", std::process::id());
    let log = lab.log_dir().join("n0-nspawn.log");
    let t0 = Instant::now();
    let mut m = Machine::boot(Path::new(&root), lab.node(0).ns(), &name, &share, log)?;
    ok(format!(
        "systemd: Debian with systemd {} booted in node 0's namespace in {:.1} s",
        m.exec(&["systemctl", "--version"])?
            .split_whitespace()
            .nth(1)
            .unwrap_or("?"),
        t0.elapsed().as_secs_f64()
    ));

    // docs/operations.md, "Install", as written there.
    for cmd in [
        "install -m 0755 /mnt/vipd/vipd /usr/local/bin/vipd",
        "install -d -m 0755 /etc/vipd",
        "install -m 0644 /mnt/vipd/vipd.toml /etc/vipd/vipd.toml",
        "install -m 0644 /mnt/vipd/upstream.conf /etc/vipd/upstream.conf",
        "vipd check-config --config /etc/vipd/vipd.toml",
        "install -m 0644 /mnt/vipd/vipd.sysusers /usr/lib/sysusers.d/vipd.conf",
        "systemd-sysusers vipd.conf",
        "install -m 0644 /mnt/vipd/vipd.service /etc/systemd/system/vipd.service",
        "systemctl daemon-reload",
        "systemctl enable vipd",
    ] {
        m.exec(&["sh", "-c", cmd])
            .with_context(|| format!("install step `{cmd}`"))?;
    }
    ok("systemd: installed as docs/operations.md says (binary, config, system user, unit, enable)");

    // start: `systemctl start` returns once READY=1 arrived: DNS and the control socket are up
    // at that moment, and the journal has vipd's own `vipd is running` before `Started`.
    m.exec(&["systemctl", "start", "vipd"])?;
    let state = m.show("ActiveState")?;
    let socket = m.exec(&["sh", "-c", "test -S /run/vipd/vipd.sock && echo yes"]);
    if state != "active" || socket.is_err() {
        bail!(
            "systemd: after `systemctl start` returned: ActiveState={state}, control socket up: {}",
            socket.is_ok()
        );
    }
    let reply = dig(
        lab.client(),
        lab.node(0).ipv4().into(),
        &format!("api.{DOMAIN}"),
        "A",
    )?;
    if reply.rdata() != [VIP.to_string()] {
        bail!("systemd: DNS did not answer right after `systemctl start` returned: {reply:?}");
    }
    // vipd logs `HTTP endpoints ... up` (its last listener) just before it sends READY=1; with
    // Type=notify systemd enters `active` only after that, by vipd's own clock and systemd's.
    let entered = m.exec(&[
        "systemctl",
        "show",
        "--timestamp=us+utc",
        "-P",
        "ActiveEnterTimestamp",
        "vipd",
    ])?;
    let entered = entered
        .split_whitespace()
        .nth(2)
        .ok_or_else(|| anyhow!("systemd: no ActiveEnterTimestamp: {entered:?}"))?
        .to_string();
    let journal = m.journal()?;
    let listener_up = journal
        .lines()
        .find(|l| l.contains("HTTP endpoints /health /ready /metrics up"))
        .and_then(|l| {
            l.split_whitespace()
                .find(|w| w.ends_with('Z') && w.contains('T'))
        })
        .and_then(|t| {
            t.split_once('T')
                .map(|(_, time)| time.trim_end_matches('Z').to_string())
        })
        .ok_or_else(|| {
            anyhow!("systemd: no `HTTP endpoints ... up` line in the journal:\n{journal}")
        })?;
    if listener_up > entered {
        bail!("systemd: the unit was active at {entered}, before vipd's last listener came up at {listener_up}");
    }
    println!("   systemd: last listener up at {listener_up} (vipd's clock), unit active at {entered} (systemd's)");
    ok("systemd: `systemctl start` returned active only after READY=1 (socket and DNS already up, `vipd is running` logged before `Started`)");
    lab.wait_holder_is(vip(), 0, Duration::from_secs(10))?;
    ok("systemd: the unit took the VIP from the peer");
    check_serves(&lab, 0, "systemd")?;

    // security
    let sec = m.output(&["systemd-analyze", "security", "--no-pager", "vipd"])?;
    let score: f64 = sec
        .lines()
        .find_map(|l| l.split("vipd.service: ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no overall exposure in `systemd-analyze security vipd`:\n{sec}"))?;
    println!("   systemd: `systemd-analyze security vipd`: overall exposure {score}; open items:");
    for l in sec.lines().filter(|l| l.starts_with('✗')) {
        println!(
            "     {}",
            l.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
    if score > 2.2 {
        bail!("systemd: exposure {score} is worse than 2.2:\n{sec}");
    }
    ok(format!(
        "systemd: systemd-analyze security exposure {score} (limit 2.2)"
    ));

    // reload: no VIP flap, back to active.
    let reloads_before = m.journal()?.matches("Reloaded vipd").count();
    let prober = lab.prober(vip(), Duration::from_millis(10))?;
    m.exec(&["systemctl", "reload", "vipd"])?;
    lab.assert_holder_stays(vip(), 0, Duration::from_secs(2))?;
    let outage = prober.stop()?;
    let reloads = m.journal()?.matches("Reloaded vipd").count();
    if m.show("ActiveState")? != "active" || reloads != reloads_before + 1 || outage.lost != 0 {
        bail!(
            "systemd: reload: ActiveState {}, `Reloaded` lines {reloads_before} -> {reloads}, probes lost {}",
            m.show("ActiveState")?,
            outage.lost
        );
    }
    ok(format!(
        "systemd: `systemctl reload` kept the VIP on node 0 for 2 s, {} probes 0 lost",
        outage.sent
    ));

    // watchdog: a SIGSTOPped daemon is killed and restarted by systemd.
    let pid: i32 = m.show("MainPID")?.parse().context("MainPID")?;
    let restarts: u32 = m.show("NRestarts")?.parse().unwrap_or(0);
    // The machine shares the host's PID space from above: its MainPID is inside the machine's
    // namespace, so stop it from inside.
    m.exec(&["sh", "-c", &format!("kill -STOP {pid}")])?;
    let t0 = Instant::now();
    let restarted = wait_until(Duration::from_secs(30), || {
        let now: u32 = m.show("NRestarts")?.parse().unwrap_or(0);
        let active = m.show("ActiveState")? == "active";
        Ok((now > restarts && active).then_some(()))
    })?;
    if restarted.is_none() {
        bail!(
            "systemd: a SIGSTOPped vipd was not restarted within 30 s:\n{}",
            m.journal()?
        );
    }
    let journal = m.journal()?;
    if !journal.contains("Watchdog timeout") {
        bail!("systemd: vipd restarted, but not by the watchdog:\n{journal}");
    }
    ok(format!(
        "systemd: SIGSTOP: watchdog timeout, killed and restarted by systemd after {:.1} s (WatchdogSec=10s, RestartSec=3s)",
        t0.elapsed().as_secs_f64()
    ));
    lab.wait_holder_is(vip(), 0, Duration::from_secs(10))?;
    ok("systemd: restarted vipd holds the VIP again, alone");

    // stop: make-before-break.
    let stop = || m.exec(&["systemctl", "stop", "vipd"]).map(|_| ());
    stop_make_before_break(
        &lab,
        "systemd: systemctl stop",
        Duration::from_millis(500),
        stop,
    )?;

    // A file that does not validate: ExecStartPre refuses it with file, key and reason in the
    // journal; the restart loop never moves the VIP.
    m.exec(&["cp", "/mnt/vipd/broken.toml", "/etc/vipd/vipd.toml"])?;
    let _ = m.output(&["systemctl", "start", "vipd"]);
    peer_keeps_vip(&lab, Duration::from_secs(7), "systemd: broken config")?;
    let journal = m.journal()?;
    let attempts = journal.matches("configuration refused").count();
    if attempts < 2 {
        bail!("systemd: broken config: {attempts} refused starts in 7 s; expected Restart=on-failure to retry:\n{journal}");
    }
    ok(format!(
        "systemd: broken config: {attempts} refused starts (Restart=on-failure)"
    ));
    check_refusal_logged(&journal, "systemd: broken config: journal")?;
    m.exec(&["cp", "/mnt/vipd/vipd.toml", "/etc/vipd/vipd.toml"])?;
    m.exec(&["systemctl", "reset-failed", "vipd"])?;
    m.exec(&["systemctl", "restart", "vipd"])?;
    lab.wait_holder_is(vip(), 0, Duration::from_secs(10))?;
    ok("systemd: good config back: node 0 holds the VIP");

    // A stand-in kubelet (the API server is its static pod) with graceful node shutdown: it
    // holds a logind delay lock, as the kubelet does while it terminates pods, so systemd stops
    // no unit for logind's InhibitDelayMaxSec (5 s) after the poweroff request. vipd must hand
    // the VIP over within that window, on logind's PrepareForShutdown, not at its own unit's
    // stop; and when the kubelet's unit stops it must find vipd already stopped.
    let kubelet = "[Unit]\nDescription=stand-in kubelet with graceful node shutdown (lab)\n[Service]\n\
                   ExecStart=/usr/bin/systemd-inhibit --what=shutdown --mode=delay --who=kubelet --why=graceful-node-shutdown /bin/sleep infinity\n\
                   ExecStop=/bin/sh -c 'if test -S /run/vipd/vipd.sock; then echo vipd-running; else echo vipd-stopped; fi > /mnt/out/kubelet-stop'\n\
                   [Install]\nWantedBy=multi-user.target\n";
    fs::write(share.join("kubelet.service"), kubelet)?;
    let _ = fs::remove_file(share.join("out").join("kubelet-stop"));
    for cmd in [
        "install -m 0644 /mnt/vipd/kubelet.service /etc/systemd/system/kubelet.service",
        "systemctl daemon-reload",
        "systemctl start kubelet",
        "systemctl restart vipd",
    ] {
        m.exec(&["sh", "-c", cmd])
            .with_context(|| format!("stand-in kubelet step `{cmd}`"))?;
    }
    lab.wait_holder_is(vip(), 0, Duration::from_secs(10))?;
    let locks = wait_until(Duration::from_secs(5), || {
        let list = m.output(&["systemd-inhibit", "--list", "--no-legend"])?;
        Ok((list.contains("vipd") && list.contains("kubelet")).then_some(list))
    })?;
    let Some(locks) = locks else {
        bail!(
            "systemd: vipd and the stand-in kubelet should both hold a shutdown delay lock; systemd-inhibit --list:\n{}\njournal:\n{}",
            m.output(&["systemd-inhibit", "--list"])?,
            m.journal()?
        );
    };
    ok(format!(
        "systemd: logind lists the delay locks of vipd and the stand-in kubelet ({} lines)",
        locks.lines().count()
    ));

    // poweroff of the whole machine through logind.
    let mut moved_after = None;
    let mut journal = String::new();
    let poweroff = || {
        let t0 = Instant::now();
        let _ = m.output(&["systemctl", "poweroff"]);
        let moved = wait_until(Duration::from_secs(4), || {
            Ok((lab.who_has(vip())? == [1]).then_some(()))
        })?;
        moved_after = moved.map(|_| t0.elapsed());
        journal = m.journal().unwrap_or_default();
        let gone = wait_until(Duration::from_secs(30), || Ok((!m.running()).then_some(())))?;
        if gone.is_none() {
            bail!("the machine did not power off within 30 s");
        }
        Ok(())
    };
    stop_make_before_break(
        &lab,
        "systemd: poweroff",
        Duration::from_millis(500),
        poweroff,
    )?;
    let Some(moved_after) = moved_after else {
        bail!("systemd: poweroff: the peer did not hold the VIP alone within 4 s of the request, while the stand-in kubelet's delay lock kept every unit running: vipd did not act on logind's PrepareForShutdown. vipd's journal:\n{journal}");
    };
    if !journal.contains("logind: the host is shutting down") {
        bail!("systemd: poweroff: no logind line in vipd's journal:\n{journal}");
    }
    ok(format!(
        "systemd: poweroff: the VIP moved {:.2} s after the request, on logind's PrepareForShutdown, while the kubelet's delay lock still held every unit",
        moved_after.as_secs_f64()
    ));
    let seen = fs::read_to_string(share.join("out").join("kubelet-stop")).unwrap_or_default();
    if seen.trim() != "vipd-stopped" {
        bail!("systemd: poweroff: the stand-in kubelet stopped while vipd still ran ({:?}); After=kubelet.service must stop vipd first", seen.trim());
    }
    ok("systemd: poweroff: vipd stopped (VIPs handed over) before the kubelet, as After=kubelet.service orders");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// promtool

fn metrics_form() -> Result<()> {
    require("promtool", "prometheus")?;
    let lab = Lab::new(2)?;
    let _peer = start_peer(&lab)?;
    let host = lab.node(1);
    // Some DNS traffic (local and forwarded) so the DNS families have samples.
    for name in [
        format!("api.{DOMAIN}"),
        format!("x.apps.{DOMAIN}"),
        "example.org".into(),
    ] {
        let _ = dig(lab.client(), host.ipv4().into(), &name, "A");
    }
    thread::sleep(Duration::from_millis(1200));
    let url = format!("http://{}:18080/metrics", host.ipv4());
    let (code, body) = http_get(lab.client(), &url)?;
    if code != 200 {
        bail!("GET {url}: {code}");
    }
    for family in [
        "vipd_vrrp_state",
        "vipd_check_up",
        "vipd_dns_queries_total",
        "vipd_dns_forwarded_total",
        "vipd_reloads_total",
    ] {
        if !body.contains(family) {
            bail!("{url} has no {family}:\n{body}");
        }
    }
    let path = host.dir()?.join("metrics.txt");
    fs::write(&path, &body)?;
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(fs::File::open(&path)?)
        .output()
        .context("running promtool")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || !text.trim().is_empty() {
        bail!(
            "promtool check metrics on {url} ({} lines, saved as {}):\n{text}",
            body.lines().count(),
            path.display()
        );
    }
    ok(format!(
        "metrics: promtool check metrics: no problems in {} lines ({} families) with VRRP, DNS and a check active",
        body.lines().count(),
        body.lines().filter(|l| l.starts_with("# TYPE")).count()
    ));
    Ok(())
}
