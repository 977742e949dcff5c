//! OpenShift-level scenarios: vipd with `[[check]]`, `track`, `[dns]`, `[http]` on lab nodes,
//! the stand-in services it talks to (`lab-responder`), and the operator's view of it
//! (`vipd status --json`, `vipd reload`, `/metrics`, `dig`).
//!
//! The configs are written exactly as docs/configuration.md documents them; the instance blocks
//! come from [`crate::vipd::render`] so every lab config spells an instance the same way.

use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::cmd;
use crate::host::{Host, Proc};
use crate::topology::wait_until;
use crate::vipd::{binary, Instance};

/// A `[[check]]` with an `http` probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    pub name: String,
    pub url: String,
    pub interval: Duration,
    pub rise: u32,
    pub fall: u32,
    pub weight: i32,
}

/// One `track` entry: a check name and, optionally, this instance's own weight for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub check: String,
    pub weight: Option<i32>,
}

/// `[dns]` with its `[[dns.node]]` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dns {
    pub listen: Vec<SocketAddr>,
    pub resolv_conf: PathBuf,
    /// (short host name, addresses)
    pub nodes: Vec<(String, Vec<IpAddr>)>,
}

/// A whole node config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub cluster_name: String,
    pub base_domain: Option<String>,
    pub checks: Vec<HttpCheck>,
    /// Each instance with what it tracks.
    pub instances: Vec<(Instance, Vec<Track>)>,
    pub dns: Option<Dns>,
    /// `[http] listen`.
    pub http: Option<SocketAddr>,
    /// `[kubernetes]`.
    pub kubernetes: Option<Kube>,
    /// `[[sync_group]]`s: (name, instance names).
    pub sync_groups: Vec<(String, Vec<String>)>,
}

/// `[kubernetes]`: peers and node records from the API (the lab's stand-in, `kube_api`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kube {
    pub kubeconfig: PathBuf,
    pub settle: Duration,
    /// `None`: vipd's default (the instances named `api`, `api-v4`, `api-v6`).
    pub api_instances: Option<Vec<String>>,
    pub ingress_instances: Option<Vec<String>>,
}

impl NodeConfig {
    /// Cluster `ostest`, no base domain, nothing else.
    pub fn new() -> NodeConfig {
        NodeConfig {
            cluster_name: "ostest".into(),
            base_domain: None,
            checks: Vec::new(),
            instances: Vec::new(),
            dns: None,
            http: None,
            kubernetes: None,
            sync_groups: Vec::new(),
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig::new()
    }
}

fn millis(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Renders `config` as vipd TOML with the control socket at `control_socket`.
pub fn render(config: &NodeConfig, control_socket: &Path) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(out, "cluster_name = {:?}", config.cluster_name);
    if let Some(base) = &config.base_domain {
        let _ = writeln!(out, "base_domain = {base:?}");
    }
    for c in &config.checks {
        let _ = writeln!(out, "\n[[check]]");
        let _ = writeln!(out, "name = {:?}", c.name);
        let _ = writeln!(out, "http = {:?}", c.url);
        let _ = writeln!(out, "interval = \"{}\"", millis(c.interval));
        let _ = writeln!(out, "rise = {}", c.rise);
        let _ = writeln!(out, "fall = {}", c.fall);
        let _ = writeln!(out, "weight = {}", c.weight);
    }
    for (inst, track) in &config.instances {
        // crate::vipd::render writes `cluster_name`, the instance table, then `[control]`: the
        // instance table is the part between the two.
        let full = crate::vipd::render(&config.cluster_name, std::slice::from_ref(inst), "");
        let block = full
            .split_once('\n')
            .map_or("", |(_, rest)| rest)
            .split("\n[control]")
            .next()
            .unwrap_or_default();
        // `track` belongs to the instance table, before its `[instance.bfd]` sub-table.
        let (block, bfd) = match block.split_once("[instance.bfd]") {
            Some((head, tail)) => (head, Some(tail)),
            None => (block, None),
        };
        out.push_str(block);
        if !track.is_empty() {
            let entries: Vec<String> = track
                .iter()
                .map(|t| match t.weight {
                    Some(w) => format!("{{ check = {:?}, weight = {w} }}", t.check),
                    None => format!("{{ check = {:?} }}", t.check),
                })
                .collect();
            let _ = writeln!(out, "track = [{}]", entries.join(", "));
        }
        if let Some(bfd) = bfd {
            let _ = write!(out, "[instance.bfd]{bfd}");
        }
    }
    if let Some(dns) = &config.dns {
        let listen: Vec<String> = dns.listen.iter().map(|l| format!("\"{l}\"")).collect();
        let _ = writeln!(out, "\n[dns]");
        let _ = writeln!(out, "listen = [{}]", listen.join(", "));
        let _ = writeln!(out, "resolv_conf = {:?}", dns.resolv_conf.to_string_lossy());
        for (name, addrs) in &dns.nodes {
            let addrs: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
            let _ = writeln!(out, "\n[[dns.node]]");
            let _ = writeln!(out, "name = {name:?}");
            let _ = writeln!(out, "addresses = [{}]", addrs.join(", "));
        }
    }
    if let Some(http) = config.http {
        let _ = writeln!(out, "\n[http]\nlisten = \"{http}\"");
    }
    for (name, members) in &config.sync_groups {
        let names: Vec<String> = members.iter().map(|n| format!("{n:?}")).collect();
        let _ = writeln!(
            out,
            "\n[[sync_group]]\nname = {name:?}\ninstances = [{}]",
            names.join(", ")
        );
    }
    if let Some(k) = &config.kubernetes {
        let _ = writeln!(out, "\n[kubernetes]");
        let _ = writeln!(out, "kubeconfig = {:?}", k.kubeconfig.to_string_lossy());
        let _ = writeln!(out, "settle = \"{}\"", millis(k.settle));
        for (key, list) in [
            ("api_instances", &k.api_instances),
            ("ingress_instances", &k.ingress_instances),
        ] {
            if let Some(list) = list {
                let names: Vec<String> = list.iter().map(|n| format!("{n:?}")).collect();
                let _ = writeln!(out, "{key} = [{}]", names.join(", "));
            }
        }
    }
    let _ = writeln!(
        out,
        "\n[control]\nsocket = {:?}",
        control_socket.to_string_lossy()
    );
    out
}

/// `<host dir>/vipd.toml`: where [`start`] writes the config (and where a test rewrites it
/// before a reload).
pub fn config_path(host: &Host) -> Result<PathBuf> {
    Ok(host.dir()?.join("vipd.toml"))
}

/// `<host dir>/vipd.sock`: the node's control socket (nodes share one file system, so the
/// default under /run would collide).
pub fn control_socket(host: &Host) -> Result<PathBuf> {
    Ok(host.dir()?.join("vipd.sock"))
}

/// Writes `config` to [`config_path`] and returns that path.
pub fn write_config(host: &Host, config: &NodeConfig) -> Result<PathBuf> {
    let path = config_path(host)?;
    let text = render(config, &control_socket(host)?);
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Writes the config and starts `vipd run` in the host's namespace, as [`crate::vipd::start`]
/// does for plain instances.
pub fn start(host: &Host, config: &NodeConfig) -> Result<Proc> {
    write_config(host, config)?;
    start_written(host)
}

/// Starts `vipd run` with the file already at [`config_path`] (written by [`write_config`] or,
/// say, by `vipd import`; it must name [`control_socket`]); returns once the socket is up.
pub fn start_written(host: &Host) -> Result<Proc> {
    let bin = binary()?;
    // A socket file left by a SIGKILLed run must not stop the restart.
    let _ = fs::remove_file(control_socket(host)?);
    let conf = config_path(host)?;
    let bin_s = bin.to_string_lossy().into_owned();
    let conf_s = conf.to_string_lossy().into_owned();
    let mut proc = host.spawn(
        "vipd",
        &[
            &bin_s,
            "run",
            "--config",
            &conf_s,
            "--log-level",
            "info,vipd=debug",
        ],
    )?;
    // Config errors show within milliseconds, far below any VRRP timer here.
    thread::sleep(Duration::from_millis(150));
    proc.ensure_running()?;
    // The control socket is bound once instances, DNS and HTTP are up.
    let socket = control_socket(host)?;
    let ready = wait_until(Duration::from_secs(5), || Ok(socket.exists().then_some(())))?;
    if ready.is_none() {
        proc.ensure_running()?;
        bail!(
            "vipd on {} did not open its control socket {} within 5 s; see {}",
            host.name(),
            socket.display(),
            proc.log_path().display()
        );
    }
    Ok(proc)
}

/// What a `vipd` client command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtlOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `vipd ARGS... --socket <host's control socket>` (the socket is a path, so this works from
/// any namespace).
pub fn ctl(host: &Host, args: &[&str]) -> Result<CtlOutput> {
    let bin = binary()?;
    let bin_s = bin.to_string_lossy().into_owned();
    let socket = control_socket(host)?;
    let socket_s = socket.to_string_lossy().into_owned();
    let mut argv = vec![bin_s.as_str()];
    argv.extend_from_slice(args);
    argv.extend(["--socket", socket_s.as_str()]);
    let out = cmd::output(&argv)?;
    Ok(CtlOutput {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// `vipd status --json` of the daemon on `host`, parsed.
pub fn status_json(host: &Host) -> Result<Value> {
    let out = ctl(host, &["status", "--json"])?;
    if !out.success {
        bail!(
            "`vipd status --json` on {} failed: {}",
            host.name(),
            out.stderr.trim()
        );
    }
    serde_json::from_str(&out.stdout).with_context(|| {
        format!(
            "parsing `vipd status --json` of {}: {}",
            host.name(),
            out.stdout
        )
    })
}

/// The `instances[]` entry named `name` of `vipd status --json` on `host`.
pub fn instance_status(host: &Host, name: &str) -> Result<Value> {
    let status = status_json(host)?;
    status["instances"]
        .as_array()
        .and_then(|list| list.iter().find(|i| i["name"] == name))
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "`vipd status --json` of {} has no instance {name:?}: {status}",
                host.name()
            )
        })
}

/// Polls [`instance_status`] until `pred` holds for it; fails with the last report.
pub fn wait_instance(
    host: &Host,
    name: &str,
    timeout: Duration,
    what: &str,
    mut pred: impl FnMut(&Value) -> bool,
) -> Result<Value> {
    let mut last = Value::Null;
    let found = wait_until(timeout, || {
        last = instance_status(host, name)?;
        Ok(pred(&last).then(|| last.clone()))
    })?;
    found.ok_or_else(|| {
        anyhow!(
            "after {timeout:?}, instance {name:?} on {} never showed {what}; last status: {last:#}",
            host.name()
        )
    })
}

/// Starts `lab-responder http ADDR` in `host` (binary path from the test:
/// `env!("CARGO_BIN_EXE_lab-responder")`) and waits until it listens.
pub fn start_http_responder(host: &Host, responder: &str, addr: SocketAddr) -> Result<Proc> {
    let addr_s = addr.to_string();
    let label = format!("http-{}", addr.port());
    spawn_responder(host, &label, &[responder, "http", &addr_s])
}

/// Starts `lab-responder dns ADDR NAME IPV4` in `host` and waits until it listens.
pub fn start_dns_responder(
    host: &Host,
    responder: &str,
    addr: SocketAddr,
    name: &str,
    answer: std::net::Ipv4Addr,
) -> Result<Proc> {
    let addr_s = addr.to_string();
    let answer_s = answer.to_string();
    spawn_responder(
        host,
        "upstream-dns",
        &[responder, "dns", &addr_s, name, &answer_s],
    )
}

fn spawn_responder(host: &Host, label: &str, argv: &[&str]) -> Result<Proc> {
    let mut proc = host.spawn(label, argv)?;
    let listening = wait_until(Duration::from_secs(3), || {
        proc.ensure_running()?;
        Ok(proc.log().contains("listening on ").then_some(()))
    })?;
    if listening.is_none() {
        bail!(
            "{} did not report `listening on` within 3 s; see {}",
            argv.join(" "),
            proc.log_path().display()
        );
    }
    Ok(proc)
}

/// `GET url` with curl from inside `host`: (status code, body).
pub fn http_get(host: &Host, url: &str) -> Result<(u16, String)> {
    let out = host.exec(&[
        "curl",
        "-sS",
        "--max-time",
        "3",
        "-w",
        "\n%{http_code}",
        url,
    ])?;
    let (body, code) = out
        .rsplit_once('\n')
        .ok_or_else(|| anyhow!("curl {url}: no status line in {out:?}"))?;
    let code = code
        .trim()
        .parse()
        .with_context(|| format!("curl {url}: status {code:?}"))?;
    Ok((code, body.to_string()))
}

/// What `dig` saw: the header's status and flags, and the answer section's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigReply {
    /// `NOERROR`, `NXDOMAIN`, `SERVFAIL`...
    pub status: String,
    /// Header flags as dig prints them: `qr`, `aa`, `rd`, `ra`...
    pub flags: Vec<String>,
    /// (owner, type, rdata) of each answer record, in order.
    pub answers: Vec<(String, String, String)>,
}

impl DigReply {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The rdata of every answer, sorted.
    pub fn rdata(&self) -> Vec<String> {
        let mut v: Vec<String> = self.answers.iter().map(|a| a.2.clone()).collect();
        v.sort();
        v
    }
}

/// `dig @server name qtype` from inside `host` (1 s per try, 2 tries).
pub fn dig(host: &Host, server: IpAddr, name: &str, qtype: &str) -> Result<DigReply> {
    let at = format!("@{server}");
    let out = host.exec(&[
        "dig",
        &at,
        "+time=1",
        "+tries=2",
        "+noall",
        "+comments",
        "+answer",
        name,
        qtype,
    ])?;
    parse_dig(&out).with_context(|| format!("dig {at} {name} {qtype}"))
}

/// Parses `dig +noall +comments +answer` output.
pub fn parse_dig(text: &str) -> Result<DigReply> {
    let status = text
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .and_then(|r| r.split(',').next())
        .ok_or_else(|| anyhow!("no `status:` in dig's output: {text}"))?
        .to_string();
    let flags = text
        .lines()
        .find_map(|l| l.strip_prefix(";; flags: "))
        .and_then(|r| r.split(';').next())
        .ok_or_else(|| anyhow!("no `;; flags:` in dig's output: {text}"))?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let answers = text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // owner TTL class type rdata...
            (f.len() >= 5).then(|| (f[0].to_string(), f[3].to_string(), f[4..].join(" ")))
        })
        .collect();
    Ok(DigReply {
        status,
        flags,
        answers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master_like() -> NodeConfig {
        let mut api = Instance::new("192.0.2.5".parse().unwrap(), 45, Duration::from_secs(1));
        api.preempt = Some(true);
        let ingress = Instance {
            name: "ingress".into(),
            vrid: Some(93),
            ..Instance::new("192.0.2.10".parse().unwrap(), 20, Duration::from_secs(1))
        };
        NodeConfig {
            base_domain: Some("test.metalkube.org".into()),
            checks: vec![HttpCheck {
                name: "chk_api".into(),
                url: "http://127.0.0.1:9444/readyz".into(),
                interval: Duration::from_millis(500),
                rise: 2,
                fall: 2,
                weight: 20,
            }],
            instances: vec![
                (
                    api,
                    vec![Track {
                        check: "chk_api".into(),
                        weight: None,
                    }],
                ),
                (
                    ingress,
                    vec![Track {
                        check: "chk_api".into(),
                        weight: Some(0),
                    }],
                ),
            ],
            dns: Some(Dns {
                listen: vec!["192.0.2.11:53".parse().unwrap()],
                resolv_conf: "/tmp/lab/resolv.conf".into(),
                nodes: vec![("master-0".into(), vec!["192.0.2.11".parse().unwrap()])],
            }),
            http: Some("192.0.2.11:18080".parse().unwrap()),
            ..NodeConfig::new()
        }
    }

    #[test]
    fn a_rendered_master_config_loads_in_vipd_with_checks_tracks_dns_and_http() {
        let text = render(&master_like(), Path::new("/tmp/lab/vipd.sock"));
        let config = vipd::config::Config::parse(&text, "lab.toml").unwrap();
        assert_eq!(config.instances.len(), 2);
        assert_eq!(config.instances[0].priority, 45);
        assert_eq!(config.checks.len(), 1);
        assert_eq!(config.control.socket, PathBuf::from("/tmp/lab/vipd.sock"));
        assert!(config.dns.is_some());
        assert!(
            text.contains("track = [{ check = \"chk_api\" }]\n"),
            "{text}"
        );
        assert!(
            text.contains("track = [{ check = \"chk_api\", weight = 0 }]\n"),
            "{text}"
        );
        assert!(text.ends_with("\n[http]\nlisten = \"192.0.2.11:18080\"\n\n[control]\nsocket = \"/tmp/lab/vipd.sock\"\n"), "{text}");
    }

    #[test]
    fn parse_dig_reads_status_flags_and_answers() {
        let text = "\
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4242
;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1
;; WARNING: recursion requested but not available

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
api.ostest.test.metalkube.org. 30 IN	A	192.0.2.5
";
        let r = parse_dig(text).unwrap();
        assert_eq!(r.status, "NOERROR");
        assert_eq!(r.flags, vec!["qr", "aa", "rd"]);
        assert_eq!(
            r.answers,
            vec![(
                "api.ostest.test.metalkube.org.".to_string(),
                "A".to_string(),
                "192.0.2.5".to_string()
            )]
        );
    }

    #[test]
    fn parse_dig_without_a_header_is_an_error() {
        assert!(parse_dig(";; connection timed out; no servers could be reached\n").is_err());
    }
}
