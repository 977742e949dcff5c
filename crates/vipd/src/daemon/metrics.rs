//! Prometheus text exposition (format 0.0.4) of everything the daemon counts.

use std::fmt::Write;

use crate::health::Status;

use super::dns::DnsView;
use super::status::{CountersReport, InstanceReport};
use super::Shared;

/// One per-instance counter family: name, help, and how to read it from a report.
type CounterFamily = (&'static str, &'static str, fn(&CountersReport) -> u64);

/// Renders every metric family. Families are written even with no samples so dashboards can
/// rely on the names.
pub fn render(shared: &Shared) -> String {
    let mut out = String::with_capacity(4096);
    let reports = shared.instance_reports();
    vrrp_state(&mut out, &reports);
    vrrp_counters(&mut out, &reports);
    vrrp_conflicts(&mut out, &reports);
    checks(&mut out, shared);
    let dns = shared.dns.lock().ok().and_then(|d| d.clone());
    if let Some(dns) = dns {
        dns_server(&mut out, &dns);
        dns_forward(&mut out, &dns);
    }
    bfd(&mut out, &reports, shared);
    kubernetes(&mut out, shared);
    reloads(&mut out, shared);
    out
}

/// State, VIPs held and priority of every instance.
fn vrrp_state(out: &mut String, reports: &[InstanceReport]) {
    family(
        out,
        "vipd_vrrp_state",
        "gauge",
        "1 for the instance's current state (INIT, BACKUP, MASTER, FAULT, RESIGNING, RESIGNED)",
    );
    for r in reports {
        for state in ["INIT", "BACKUP", "MASTER", "FAULT", "RESIGNING", "RESIGNED"] {
            let v = u8::from(r.state == state);
            let _ = writeln!(
                out,
                "vipd_vrrp_state{{instance=\"{}\",vrid=\"{}\",state=\"{state}\"}} {v}",
                esc(&r.name),
                r.vrid
            );
        }
    }
    family(
        out,
        "vipd_vrrp_holding_vips",
        "gauge",
        "1 while this node has the instance's VIPs on its interface",
    );
    for r in reports {
        let _ = writeln!(
            out,
            "vipd_vrrp_holding_vips{{instance=\"{}\"}} {}",
            esc(&r.name),
            u8::from(r.holding_vips)
        );
    }
    family(
        out,
        "vipd_vrrp_priority",
        "gauge",
        "Priority: configured base and effective (after health tracking)",
    );
    for r in reports {
        let _ = writeln!(
            out,
            "vipd_vrrp_priority{{instance=\"{}\",kind=\"base\"}} {}",
            esc(&r.name),
            r.base_priority
        );
        let _ = writeln!(
            out,
            "vipd_vrrp_priority{{instance=\"{}\",kind=\"effective\"}} {}",
            esc(&r.name),
            r.effective_priority
        );
    }
}

/// Per-instance counters: adverts, transitions, drops, errors, timer lateness.
fn vrrp_counters(out: &mut String, reports: &[InstanceReport]) {
    let counters: [CounterFamily; 7] = [
        (
            "vipd_vrrp_adverts_received_total",
            "Adverts accepted by the protocol core",
            |c| c.adverts_rx,
        ),
        ("vipd_vrrp_adverts_sent_total", "Adverts sent", |c| {
            c.adverts_tx
        }),
        (
            "vipd_vrrp_priority_zero_received_total",
            "Priority-0 (resign) adverts received",
            |c| c.priority_zero_rx,
        ),
        (
            "vipd_vrrp_priority_zero_sent_total",
            "Priority-0 (resign) adverts sent",
            |c| c.priority_zero_tx,
        ),
        ("vipd_vrrp_transitions_total", "State transitions", |c| {
            c.transitions
        }),
        (
            "vipd_vrrp_master_transitions_total",
            "Transitions to MASTER",
            |c| c.master_transitions,
        ),
        (
            "vipd_vrrp_address_list_mismatch_total",
            "Adverts listing other VIPs than ours (collision or misconfiguration)",
            |c| c.address_list_mismatch,
        ),
    ];
    for (name, help, get) in counters {
        family(out, name, "counter", help);
        for r in reports {
            let _ = writeln!(
                out,
                "{name}{{instance=\"{}\"}} {}",
                esc(&r.name),
                get(&r.counters)
            );
        }
    }
    family(
        out,
        "vipd_vrrp_dropped_total",
        "counter",
        "Received packets dropped, by reason",
    );
    for r in reports {
        for (reason, n) in &r.counters.drops {
            let _ = writeln!(
                out,
                "vipd_vrrp_dropped_total{{instance=\"{}\",reason=\"{}\"}} {n}",
                esc(&r.name),
                esc(reason)
            );
        }
    }
    family(
        out,
        "vipd_vrrp_send_errors_total",
        "counter",
        "Adverts the kernel refused to send",
    );
    for r in reports {
        let _ = writeln!(
            out,
            "vipd_vrrp_send_errors_total{{instance=\"{}\"}} {}",
            esc(&r.name),
            r.counters.send_errors
        );
    }
    family(
        out,
        "vipd_vrrp_vip_repairs_total",
        "counter",
        "VIPs restored after someone else removed them while Master",
    );
    for r in reports {
        let _ = writeln!(
            out,
            "vipd_vrrp_vip_repairs_total{{instance=\"{}\"}} {}",
            esc(&r.name),
            r.counters.vip_repairs
        );
    }
    family(
        out,
        "vipd_vrrp_timer_lateness_max_seconds",
        "gauge",
        "Worst delay between a protocol timer's deadline and its handling",
    );
    for r in reports {
        let _ = writeln!(
            out,
            "vipd_vrrp_timer_lateness_max_seconds{{instance=\"{}\"}} {:.6}",
            esc(&r.name),
            r.counters.timer_lateness_max_ms / 1000.0
        );
    }
}

/// Other routers on our VRIDs that disagree with us (collisions, split brain).
fn vrrp_conflicts(out: &mut String, reports: &[InstanceReport]) {
    family(
        out,
        "vipd_vrrp_peer_conflict",
        "gauge",
        "1 per peer whose adverts collide with ours (other VIPs, password, version)",
    );
    for r in reports {
        for p in r.peers.iter().filter(|p| p.conflict.is_some()) {
            let _ = writeln!(
                out,
                "vipd_vrrp_peer_conflict{{instance=\"{}\",peer=\"{}\"}} 1",
                esc(&r.name),
                p.address
            );
        }
    }
}

/// Health checks.
fn checks(out: &mut String, shared: &Shared) {
    family(
        out,
        "vipd_check_up",
        "gauge",
        "Health check status: 1 good, 0 bad, -1 no result yet",
    );
    if let Some(snapshot) = shared.health_snapshot() {
        for (name, c) in &snapshot.checks {
            let v = match c.status {
                Status::Good => 1,
                Status::Bad => 0,
                Status::Unknown => -1,
            };
            let _ = writeln!(out, "vipd_check_up{{check=\"{}\"}} {v}", esc(name));
        }
        family(
            out,
            "vipd_check_probes_total",
            "counter",
            "Probes run per check",
        );
        for (name, c) in &snapshot.checks {
            let _ = writeln!(
                out,
                "vipd_check_probes_total{{check=\"{}\"}} {}",
                esc(name),
                c.probes
            );
        }
        check_damping(out, &snapshot);
    }
}

/// `hold_down` of the checks: what is held back and how often.
fn check_damping(out: &mut String, snapshot: &crate::health::HealthSnapshot) {
    let now = tokio::time::Instant::now();
    type Get = fn(&crate::health::CheckReport, tokio::time::Instant) -> f64;
    let families: [(&str, &str, &str, Get); 5] = [
        (
            "vipd_check_hold_down_seconds",
            "gauge",
            "The check's hold_down (0 = off)",
            |c, _| c.hold_down.as_secs_f64(),
        ),
        (
            "vipd_check_held_back",
            "gauge",
            "1 while a status change of the check is held back by hold_down",
            |c, _| f64::from(u8::from(c.held_back.is_some())),
        ),
        (
            "vipd_check_held_back_seconds_left",
            "gauge",
            "Time until a held-back change is reported (0 = none held)",
            |c, now| c.held_back_left(now).map_or(0.0, |d| d.as_secs_f64()),
        ),
        (
            "vipd_check_held_back_changes_total",
            "counter",
            "Status changes held back by hold_down",
            |c, _| c.held_back_changes as f64,
        ),
        (
            "vipd_check_status_changes_total",
            "counter",
            "Reported good/bad changes of the check",
            |c, _| c.status_changes as f64,
        ),
    ];
    for (name, kind, help, get) in families {
        family(out, name, kind, help);
        for (check, c) in &snapshot.checks {
            let _ = writeln!(out, "{name}{{check=\"{}\"}} {}", esc(check), get(c, now));
        }
    }
}

/// The DNS server: queries, answers, TCP.
fn dns_server(out: &mut String, dns: &DnsView) {
    if let Some(m) = dns.server_metrics() {
        family(
            out,
            "vipd_dns_queries_total",
            "counter",
            "DNS queries received, by type",
        );
        for (t, n) in [
            ("A", m.queries_a),
            ("AAAA", m.queries_aaaa),
            ("PTR", m.queries_ptr),
            ("other", m.queries_other),
        ] {
            let _ = writeln!(out, "vipd_dns_queries_total{{type=\"{t}\"}} {n}");
        }
        family(
            out,
            "vipd_dns_responses_total",
            "counter",
            "DNS responses sent, by RCODE",
        );
        for (code, n) in m
            .responses_by_rcode
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
        {
            let _ = writeln!(
                out,
                "vipd_dns_responses_total{{rcode=\"{}\"}} {n}",
                rcode_name(code)
            );
        }
        if m.responses_badvers > 0 {
            let _ = writeln!(
                out,
                "vipd_dns_responses_total{{rcode=\"BADVERS\"}} {}",
                m.responses_badvers
            );
        }
        let simple = [
            (
                "vipd_dns_answered_locally_total",
                "Queries answered from the cluster zone",
                m.answered_locally,
            ),
            (
                "vipd_dns_forwarded_total",
                "Queries handed to the forwarder",
                m.forwarded,
            ),
            (
                "vipd_dns_truncated_total",
                "UDP responses truncated (TC=1)",
                m.truncated,
            ),
            (
                "vipd_dns_dropped_malformed_total",
                "Datagrams dropped as malformed",
                m.dropped_malformed,
            ),
            (
                "vipd_dns_dropped_not_allowed_total",
                "Queries from clients outside `allow`",
                m.dropped_not_allowed,
            ),
            (
                "vipd_dns_dropped_overload_total",
                "Forwarded queries dropped: too many in flight",
                m.dropped_overload,
            ),
            (
                "vipd_dns_tcp_displaced_total",
                "TCP connections closed early (longest idle first) to make room for a new client",
                m.tcp_displaced,
            ),
            (
                "vipd_dns_tcp_refused_total",
                "New TCP connections closed at once: every open one was answering a query",
                m.tcp_refused,
            ),
        ];
        for (name, help, v) in simple {
            family(out, name, "counter", help);
            let _ = writeln!(out, "{name} {v}");
        }
        family(
            out,
            "vipd_dns_tcp_connections",
            "gauge",
            "DNS TCP connections open now",
        );
        let _ = writeln!(out, "vipd_dns_tcp_connections {}", m.tcp_open);
    }
}

/// Forwarding: cache, upstream failures, latency, upstream health.
fn dns_forward(out: &mut String, dns: &DnsView) {
    let f = dns.forward_metrics();
    let simple = [
        (
            "vipd_dns_forward_cache_hits_total",
            "Forwarded queries answered from the cache",
            f.cache_hits,
        ),
        (
            "vipd_dns_forward_cache_misses_total",
            "Forwarded queries not in the cache",
            f.cache_misses,
        ),
        (
            "vipd_dns_forward_servfail_total",
            "SERVFAIL answers made because upstreams failed",
            f.servfail_produced,
        ),
        (
            "vipd_dns_forward_unmatched_responses_total",
            "Upstream datagrams matching no query (late or spoofed)",
            f.unmatched_responses,
        ),
        (
            "vipd_dns_forward_upstream_udp_queries_total",
            "Queries sent to upstreams over UDP, every failover attempt counted",
            f.upstream_udp_queries,
        ),
        (
            "vipd_dns_forward_upstream_tcp_queries_total",
            "Queries sent to upstreams over TCP (after TC=1, or all with force_tcp)",
            f.upstream_tcp_queries,
        ),
        (
            "vipd_dns_forward_upstream_tcp_connections_total",
            "TCP connections opened to upstreams (fewer than TCP queries when reused)",
            f.upstream_tcp_connections,
        ),
    ];
    for (name, help, v) in simple {
        family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    }
    family(
        out,
        "vipd_dns_forward_latency_seconds",
        "histogram",
        "Upstream round trip of forwarded queries",
    );
    let mut cumulative = 0u64;
    for bucket in &f.latency {
        cumulative += bucket.count;
        let le = bucket
            .le
            .map_or("+Inf".to_string(), |d| format!("{}", d.as_secs_f64()));
        let _ = writeln!(
            out,
            "vipd_dns_forward_latency_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    let _ = writeln!(out, "vipd_dns_forward_latency_seconds_count {cumulative}");
    let status = dns.status();
    family(
        out,
        "vipd_dns_upstream_healthy",
        "gauge",
        "1 while an upstream resolver answers",
    );
    if let Some(ups) = status.get("upstreams").and_then(|u| u.as_array()) {
        for u in ups {
            let addr = u.get("address").and_then(|a| a.as_str()).unwrap_or("?");
            let healthy = u.get("healthy").and_then(|h| h.as_bool()).unwrap_or(false);
            let _ = writeln!(
                out,
                "vipd_dns_upstream_healthy{{upstream=\"{}\"}} {}",
                esc(addr),
                u8::from(healthy)
            );
        }
    }
}

/// VRRP's use of BFD reports, and every BFD session.
fn bfd(out: &mut String, reports: &[InstanceReport], shared: &Shared) {
    family(
        out,
        "vipd_vrrp_liveness_reports_total",
        "counter",
        "BFD reports about an instance's Master, by outcome: lost (take-over scheduled), takeover, \
         cancelled (sign of life first), refuted (the Master was alive), ignored",
    );
    for r in reports {
        for (outcome, n) in &r.counters.liveness {
            let _ = writeln!(
                out,
                "vipd_vrrp_liveness_reports_total{{instance=\"{}\",outcome=\"{outcome}\"}} {n}",
                esc(&r.name)
            );
        }
    }
    let status = match shared.bfd.lock() {
        Ok(s) => s.clone(),
        Err(_) => return,
    };
    family(
        out,
        "vipd_bfd_session_state",
        "gauge",
        "1 for the BFD session's current state (admin_down, down, init, up), local and as the peer reports it",
    );
    for s in &status.sessions {
        let labels = bfd_labels(s);
        for state in ["admin_down", "down", "init", "up"] {
            let _ = writeln!(
                out,
                "vipd_bfd_session_state{{{labels},side=\"local\",state=\"{state}\"}} {}",
                u8::from(s.state == state)
            );
            let _ = writeln!(
                out,
                "vipd_bfd_session_state{{{labels},side=\"remote\",state=\"{state}\"}} {}",
                u8::from(s.remote_state == state)
            );
        }
    }
    family(
        out,
        "vipd_bfd_detection_time_seconds",
        "gauge",
        "Agreed detection time of the BFD session (absent while no remote is known)",
    );
    for s in &status.sessions {
        if let Some(ms) = s.detection_time_ms {
            let _ = writeln!(
                out,
                "vipd_bfd_detection_time_seconds{{{}}} {:.6}",
                bfd_labels(s),
                ms / 1000.0
            );
        }
    }
    type Get = fn(&crate::bfd::SessionReport) -> u64;
    let counters: [(&str, &str, Get); 7] = [
        ("vipd_bfd_up_total", "Times the session came Up", |s| {
            s.up_transitions
        }),
        (
            "vipd_bfd_flaps_total",
            "Times the session left Up (flaps)",
            |s| s.down_transitions,
        ),
        (
            "vipd_bfd_packets_received_total",
            "Control packets handed to the session",
            |s| s.rx,
        ),
        ("vipd_bfd_packets_sent_total", "Control packets sent", |s| {
            s.tx
        }),
        (
            "vipd_bfd_send_errors_total",
            "Control packets the kernel refused to send",
            |s| s.send_errors,
        ),
        (
            "vipd_bfd_lost_reports_total",
            "Times the session told its instances the peer was lost",
            |s| s.lost_reports,
        ),
        (
            "vipd_bfd_heard_reports_total",
            "Times the session told its instances a lost peer was heard again",
            |s| s.heard_reports,
        ),
    ];
    for (name, help, get) in counters {
        family(out, name, "counter", help);
        for s in &status.sessions {
            let _ = writeln!(out, "{name}{{{}}} {}", bfd_labels(s), get(s));
        }
    }
    family(
        out,
        "vipd_bfd_packets_dropped_total",
        "counter",
        "BFD packets dropped, by reason; without a peer label: before any session was found",
    );
    for s in &status.sessions {
        for (reason, n) in &s.dropped {
            let _ = writeln!(
                out,
                "vipd_bfd_packets_dropped_total{{{},reason=\"{reason}\"}} {n}",
                bfd_labels(s)
            );
        }
    }
    for (reason, n) in &status.dropped {
        let _ = writeln!(
            out,
            "vipd_bfd_packets_dropped_total{{reason=\"{reason}\"}} {n}"
        );
    }
}

fn bfd_labels(s: &crate::bfd::SessionReport) -> String {
    format!(
        "interface=\"{}\",local=\"{}\",peer=\"{}\"",
        esc(&s.interface),
        s.local,
        s.peer
    )
}

/// `[kubernetes]`: whether the node list is in use, its size, errors, and each API-fed set.
fn kubernetes(out: &mut String, shared: &Shared) {
    let status = match shared.kube.lock() {
        Ok(k) => match k.as_ref().and_then(|k| k.lock().ok().map(|s| s.clone())) {
            Some(s) => s.with_ages(std::time::SystemTime::now()),
            None => return,
        },
        Err(_) => return,
    };
    let simple: [(&str, &str, &str, f64); 4] = [
        ("vipd_kube_synced", "gauge", "1 once a complete node list was received (before: the static configuration applies)", f64::from(u8::from(status.synced))),
        ("vipd_kube_nodes", "gauge", "Nodes in the last complete view of the node list", status.nodes as f64),
        ("vipd_kube_errors_total", "counter", "Errors of the Kubernetes API watch (unreachable, refused, garbage); the last good sets stay", status.errors as f64),
        ("vipd_kube_last_change_age_seconds", "gauge", "Seconds since the node list last changed a peer set or the DNS records (-1: never)", status.seconds_since_change.map_or(-1.0, |s| s as f64)),
    ];
    for (name, kind, help, v) in simple {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    family(
        out,
        "vipd_kube_peers",
        "gauge",
        "Peers of an API-fed instance in force (-1: the static configuration still applies)",
    );
    for i in &status.instances {
        let n = i.applied.as_ref().map_or(-1, |p| p.len() as i64);
        let _ = writeln!(
            out,
            "vipd_kube_peers{{instance=\"{}\"}} {n}",
            esc(&i.instance)
        );
    }
    family(
        out,
        "vipd_kube_set_refused",
        "gauge",
        "1 while the node list gives an instance no usable peer set (too few nodes, or this node not listed)",
    );
    for i in &status.instances {
        let _ = writeln!(
            out,
            "vipd_kube_set_refused{{instance=\"{}\"}} {}",
            esc(&i.instance),
            u8::from(i.problem.is_some())
        );
    }
}

/// Configuration reloads.
fn reloads(out: &mut String, shared: &Shared) {
    if let Ok(r) = shared.reloads.lock() {
        family(
            out,
            "vipd_reloads_total",
            "counter",
            "Configuration reloads, by result",
        );
        let _ = writeln!(out, "vipd_reloads_total{{result=\"ok\"}} {}", r.ok);
        let _ = writeln!(out, "vipd_reloads_total{{result=\"failed\"}} {}", r.failed);
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, double quote, newline).
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn rcode_name(code: usize) -> &'static str {
    match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => "other",
    }
}
