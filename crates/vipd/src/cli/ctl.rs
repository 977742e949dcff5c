//! `vipd status`, `vipd reload`, `vipd resign`, `vipd resume`: clients of the control socket.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Value;

use crate::config::Config;
use crate::daemon::control::{self, ControlReply, Request};

/// The socket to talk to: `--socket`, else the configuration's `[control] socket`, else the
/// default path.
pub fn socket_path(socket: Option<&Path>, config: &Path) -> PathBuf {
    if let Some(s) = socket {
        return s.to_path_buf();
    }
    match Config::load(config) {
        Ok(c) => c.control.socket,
        Err(_) => PathBuf::from(crate::config::validate::DEFAULT_CONTROL_SOCKET),
    }
}

pub fn send(socket: &Path, request: &Request) -> anyhow::Result<ControlReply> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(control::request(socket, request))
}

/// Prints a reply of reload / resign / resume; errors become the command's error.
pub fn print_reply(reply: ControlReply) -> anyhow::Result<()> {
    let message = reply.message.unwrap_or_default();
    if reply.ok {
        println!("{message}");
        Ok(())
    } else {
        anyhow::bail!("{message}")
    }
}

pub fn status(socket: &Path, json: bool) -> anyhow::Result<()> {
    let reply = send(socket, &Request::Status)?;
    let Some(status) = reply.status else {
        anyhow::bail!(
            "{}",
            reply
                .message
                .unwrap_or_else(|| "vipd sent no status".into())
        );
    };
    let value = serde_json::to_value(&status)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", render_status(&value));
    }
    Ok(())
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("-")
}

fn n(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn f(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn list(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The human table: one block per instance, then checks, DNS, BFD and the last reload error.
pub fn render_status(v: &Value) -> String {
    let mut out = String::new();
    let uptime = n(v, "uptime_secs");
    let _ = writeln!(
        out,
        "vipd {} ({}), up {}h{:02}m{:02}s, {}",
        s(v, "version"),
        s(v, "config"),
        uptime / 3600,
        uptime / 60 % 60,
        uptime % 60,
        if v.get("ready").and_then(Value::as_bool) == Some(true) {
            "ready"
        } else {
            "NOT READY"
        }
    );
    let empty = Vec::new();
    let instances = v
        .get("instances")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    if instances.is_empty() {
        let _ = writeln!(out, "no VRRP instances");
    }
    for i in instances {
        render_instance(&mut out, i);
    }
    render_checks(&mut out, v);
    render_dns(&mut out, v);
    render_bfd(&mut out, v);
    render_reloads(&mut out, v);
    out
}

/// One instance's block.
fn render_instance(out: &mut String, i: &Value) {
    let source = s(i, "source");
    let master = master_line(i, source);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "instance {}  VRID {}  VRRPv{}  {}  on {} from {}",
        s(i, "name"),
        n(i, "vrid"),
        n(i, "version"),
        s(i, "mode"),
        s(i, "interface"),
        source
    );
    let holding = if i.get("holding_vips").and_then(Value::as_bool) == Some(true) {
        "held here"
    } else {
        "not held here"
    };
    let _ = writeln!(
        out,
        "  state      {}   VIPs {} ({holding})",
        s(i, "state"),
        list(i, "vips")
    );
    let fault = if i.get("fault").and_then(Value::as_bool) == Some(true) {
        "  FAULT: a weight-0 check is failing"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "  priority   {} effective (base {}){fault}   advert interval {} ms",
        n(i, "effective_priority"),
        n(i, "base_priority"),
        n(i, "advert_interval_ms")
    );
    let _ = writeln!(out, "  master     {master}");
    if let Some(t) = i.get("last_transition").filter(|t| !t.is_null()) {
        let _ = writeln!(
            out,
            "  last change {} -> {} {:.0}s ago: {}",
            s(t, "from"),
            s(t, "to"),
            f(t, "secs_ago"),
            s(t, "reason")
        );
    }
    render_instance_counters(out, i);
    render_conflicts(out, i);
}

/// Who the instance's Master is: the advert last heard, or this node.
fn master_line(i: &Value, source: &str) -> String {
    match i.get("master").filter(|m| !m.is_null()) {
        Some(m) => {
            let addr = s(m, "address");
            let who = if addr == source { " (this node)" } else { "" };
            format!(
                "{addr}{who} priority {}, last advert {:.1}s ago",
                n(m, "priority"),
                f(m, "last_advert_secs_ago")
            )
        }
        None if s(i, "state") == "MASTER" || s(i, "state") == "RESIGNING" => {
            format!("{source} (this node)")
        }
        None => "unknown (no advert heard yet)".into(),
    }
}

/// An instance's advert counters and drops, and what BFD reported about its Master.
fn render_instance_counters(out: &mut String, i: &Value) {
    if let Some(c) = i.get("counters") {
        let drops = c
            .get("drops")
            .and_then(Value::as_object)
            .map(|d| {
                d.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_u64().unwrap_or(0)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  adverts    rx {} tx {}   transitions {}   drops {}",
            n(c, "adverts_rx"),
            n(c, "adverts_tx"),
            n(c, "transitions"),
            if drops.is_empty() {
                "none".into()
            } else {
                drops
            }
        );
    }
    let liveness = i
        .get("counters")
        .and_then(|c| c.get("liveness"))
        .and_then(Value::as_object)
        .filter(|l| l.values().any(|n| n.as_u64().unwrap_or(0) > 0));
    if let Some(l) = liveness {
        let get = |k: &str| l.get(k).and_then(Value::as_u64).unwrap_or(0);
        let _ = writeln!(
            out,
            "  bfd        Master reported lost {} times: {} take-overs, {} cancelled (alive after all), {} refuted, {} ignored",
            get("lost"),
            get("takeover"),
            get("cancelled"),
            get("refuted"),
            get("ignored")
        );
    }
}

/// Other routers heard for the instance's VRID with a conflicting configuration.
fn render_conflicts(out: &mut String, i: &Value) {
    let empty = Vec::new();
    for p in i.get("peers").and_then(Value::as_array).unwrap_or(&empty) {
        if let Some(conflict) = p.get("conflict").and_then(Value::as_str) {
            let _ = writeln!(
                out,
                "  CONFLICT   {} (priority {}, VRRPv{}, seen {:.0}s ago): {conflict}",
                s(p, "address"),
                n(p, "priority"),
                n(p, "version"),
                f(p, "last_seen_secs_ago")
            );
        }
    }
}

/// The checks and their last results.
fn render_checks(out: &mut String, v: &Value) {
    if let Some(checks) = v
        .get("checks")
        .and_then(|c| c.get("checks"))
        .and_then(Value::as_object)
    {
        let _ = writeln!(out);
        let _ = writeln!(out, "checks");
        for (name, c) in checks {
            let detail = c
                .get("last_result")
                .and_then(Value::as_str)
                .or_else(|| c.get("last_error").and_then(Value::as_str))
                .unwrap_or("no result yet");
            let _ = writeln!(
                out,
                "  {name:<20} {:<8} weight {:>3}  {detail}",
                s(c, "status"),
                c.get("weight").and_then(Value::as_i64).unwrap_or(0)
            );
            if let Some(held) = c.get("held_back").and_then(Value::as_str) {
                let _ = writeln!(
                    out,
                    "  {:<20} change to {held} held back by hold_down for {:.1} s more",
                    "",
                    f(c, "held_back_left_ms") / 1000.0
                );
            }
        }
    }
    render_kube(out, v);
}

/// Where API-fed peers and node records stand (`[kubernetes]`).
fn render_kube(out: &mut String, v: &Value) {
    let Some(k) = v.get("kubernetes").filter(|k| !k.is_null()) else {
        return;
    };
    let _ = writeln!(out);
    let synced = if k.get("synced").and_then(Value::as_bool) == Some(true) {
        format!("{} nodes", n(k, "nodes"))
    } else {
        "NOT SYNCED: the static configuration applies".to_string()
    };
    let _ = writeln!(
        out,
        "kubernetes  {} via {}: {synced}",
        s(k, "server"),
        s(k, "kubeconfig")
    );
    if let Some(e) = k.get("last_error").and_then(Value::as_str) {
        let _ = writeln!(
            out,
            "  last error {:.0}s ago: {e}",
            f(k, "seconds_since_error")
        );
    }
    for i in k
        .get("instances")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let peers = i
            .get("applied")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|| "static configuration".into());
        let _ = writeln!(
            out,
            "  {:<12} peers {peers} ({})",
            s(i, "instance"),
            s(i, "rule")
        );
        if let Some(p) = i.get("problem").and_then(Value::as_str) {
            let _ = writeln!(out, "  {:<12} {p}", "");
        }
    }
}

/// The DNS server and its upstreams.
fn render_dns(out: &mut String, v: &Value) {
    let empty = Vec::new();
    if let Some(dns) = v.get("dns").filter(|d| !d.is_null()) {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "dns  {} on {}   answered locally {}, forwarded {}",
            s(dns, "domain"),
            list(dns, "listen"),
            n(dns, "answered_locally"),
            n(dns, "forwarded")
        );
        let ups = dns
            .get("upstreams")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        if ups.is_empty() {
            let _ = writeln!(
                out,
                "  upstreams  NONE: names outside the cluster zone get SERVFAIL"
            );
        }
        for u in ups {
            let health = if u.get("healthy").and_then(Value::as_bool) == Some(true) {
                "healthy"
            } else {
                "DOWN"
            };
            let _ = writeln!(
                out,
                "  upstream   {} {health}, {} queries, {} failures",
                s(u, "address"),
                n(u, "queries"),
                n(u, "failures")
            );
        }
    }
}

/// The BFD sessions, when any instance uses BFD.
fn render_bfd(out: &mut String, v: &Value) {
    let Some(bfd) = v.get("bfd").filter(|b| !b.is_null()) else {
        return;
    };
    let empty = Vec::new();
    let sessions = bfd
        .get("sessions")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let _ = writeln!(out);
    let _ = writeln!(out, "bfd  {} session(s)", sessions.len());
    for b in sessions {
        let detect = b
            .get("detection_time_ms")
            .and_then(Value::as_f64)
            .map_or("-".to_string(), |ms| format!("{ms:.0} ms"));
        let _ = writeln!(
            out,
            "  {} on {} from {}: {} (peer says {}, diag {})  detection {detect}  for {}s",
            s(b, "peer"),
            s(b, "interface"),
            s(b, "local"),
            s(b, "state"),
            s(b, "remote_state"),
            s(b, "local_diag"),
            n(b, "seconds_in_state")
        );
        let dropped = b
            .get("dropped")
            .and_then(Value::as_object)
            .filter(|d| !d.is_empty())
            .map(|d| {
                d.iter()
                    .map(|(k, c)| format!("{k}={}", c.as_u64().unwrap_or(0)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|| "none".into());
        let _ = writeln!(
            out,
            "    for {}   up {} flaps {}   rx {} tx {}   lost/heard reports {}/{}   drops {dropped}",
            list(b, "instances"),
            n(b, "up_transitions"),
            n(b, "down_transitions"),
            n(b, "rx"),
            n(b, "tx"),
            n(b, "lost_reports"),
            n(b, "heard_reports")
        );
    }
}

/// The last reload's error, if it failed.
fn render_reloads(out: &mut String, v: &Value) {
    if let Some(r) = v.get("reloads") {
        if let Some(err) = r.get("last_error").and_then(Value::as_str) {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "LAST RELOAD FAILED (running configuration kept): {err}"
            );
        }
    }
}
