//! OpenShift's master keepalived checks as native checks (openshift.md section 3), for the role
//! defaults.
//!
//! Deliberate differences from the shell scripts they replace:
//! - `chk_mcs`: keepalived asked the container runtime whether a `machine-config-server`
//!   container runs. vipd connects to its port 22623 instead: that needs no `crictl`, and it
//!   tests what joining nodes need (the server answers), not merely that a process exists.
//! - `chk_default_ingress` still asks the container runtime for a Ready `router-default-*` pod
//!   (no port tells "the *default* router runs here"); it is the one preset that runs a shell,
//!   and it needs `crictl` at `/usr/bin/crictl`.
//! - HTTP probes do not follow redirects (the scripts' `curl -L` did); none of these endpoints
//!   redirects.

use super::config::{CheckConfig, ProbeConfig};

/// haproxy's `monitor-uri` in front of the local kube-apiserver.
pub const HAPROXY_READY_URL: &str = "http://localhost:9444/haproxy_ready";
/// The local kube-apiserver's readiness endpoint (cluster-CA certificate: not verified).
pub const API_READYZ_URL: &str = "https://localhost:6443/readyz";
/// Flag file written once the nftables redirect of API traffic to haproxy is in place.
pub const API_REDIRECT_FLAG_FILE: &str = "/var/run/keepalived/iptables-rule-exists";
/// The machine-config-server, which joining nodes fetch their ignition from.
pub const MCS_ADDRESS: &str = "localhost:22623";
/// The ingress router's liveness and readiness endpoints.
pub const INGRESS_HEALTHZ_URL: &str = "http://localhost:1936/healthz";
pub const INGRESS_READY_URL: &str = "http://localhost:1936/healthz/ready";
/// Succeeds when the container runtime has a Ready pod whose name starts with `router-default-`.
pub const DEFAULT_INGRESS_SCRIPT: &str =
    "/usr/bin/crictl pods --state ready --name '^router-default-' -q | /usr/bin/grep -q .";

/// Base priority of a master's API instance; its checks add up to 68.
pub const MASTER_API_PRIORITY: u8 = 40;
/// Checks the master API instance tracks, with their weights.
pub const MASTER_API_TRACK: [(&str, i32); 3] =
    [("chk_ocp_lb", 20), ("chk_ocp_both", 5), ("chk_mcs", 3)];
/// Base priority of a master's ingress instance.
pub const MASTER_INGRESS_PRIORITY: u8 = 20;
/// Checks the master ingress instance tracks; `chk_ingress` (weight 0) faults the instance.
pub const MASTER_INGRESS_TRACK: [(&str, i32); 3] = [
    ("chk_ingress", 0),
    ("chk_ingress_ready", 10),
    ("chk_default_ingress", 50),
];

fn http(url: &str) -> ProbeConfig {
    ProbeConfig {
        http: Some(url.into()),
        ..Default::default()
    }
}

fn check(name: &str, interval: &str, rise: u32, fall: u32, weight: i32) -> CheckConfig {
    CheckConfig {
        name: name.into(),
        interval: Some(interval.into()),
        rise: Some(rise),
        fall: Some(fall),
        weight: Some(weight),
        ..Default::default()
    }
}

/// The six master checks, each with its OpenShift interval, rise/fall and weight.
pub fn openshift_master_checks() -> Vec<CheckConfig> {
    vec![
        CheckConfig {
            all_of: Some(vec![
                http(HAPROXY_READY_URL),
                ProbeConfig {
                    file: Some(API_REDIRECT_FLAG_FILE.into()),
                    ..Default::default()
                },
            ]),
            ..check("chk_ocp_lb", "2s", 3, 3, 20)
        },
        CheckConfig {
            any_of: Some(vec![http(HAPROXY_READY_URL), http(API_READYZ_URL)]),
            ..check("chk_ocp_both", "2s", 3, 3, 5)
        },
        CheckConfig {
            tcp: Some(MCS_ADDRESS.into()),
            ..check("chk_mcs", "2s", 3, 3, 3)
        },
        CheckConfig {
            http: Some(INGRESS_HEALTHZ_URL.into()),
            ..check("chk_ingress", "1s", 3, 2, 0)
        },
        CheckConfig {
            http: Some(INGRESS_READY_URL.into()),
            ..check("chk_ingress_ready", "1s", 3, 2, 10)
        },
        CheckConfig {
            exec: Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                DEFAULT_INGRESS_SCRIPT.into(),
            ]),
            ..check("chk_default_ingress", "5s", 3, 2, 50)
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::config::validate_checks;
    use crate::health::monitor::{CheckReport, HealthSnapshot};
    use crate::health::priority::Priority;
    use crate::health::state::Status;
    use std::time::Duration;

    #[test]
    fn presets_validate_with_openshift_timing() {
        let specs = validate_checks(&openshift_master_checks()).unwrap();
        let timing: Vec<(&str, Duration, Duration, u32, u32, i32)> = specs
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.interval,
                    s.timeout,
                    s.rise,
                    s.fall,
                    s.weight,
                )
            })
            .collect();
        let s = Duration::from_secs;
        assert_eq!(
            timing,
            [
                ("chk_ocp_lb", s(2), s(2), 3, 3, 20),
                ("chk_ocp_both", s(2), s(2), 3, 3, 5),
                ("chk_mcs", s(2), s(2), 3, 3, 3),
                ("chk_ingress", s(1), s(1), 3, 2, 0),
                ("chk_ingress_ready", s(1), s(1), 3, 2, 10),
                ("chk_default_ingress", s(5), s(5), 3, 2, 50),
            ]
        );
    }

    #[test]
    fn preset_weights_match_the_track_lists() {
        let checks = openshift_master_checks();
        for (name, weight) in MASTER_API_TRACK.iter().chain(MASTER_INGRESS_TRACK.iter()) {
            let c = checks.iter().find(|c| c.name == *name).unwrap();
            assert_eq!(c.weight, Some(*weight), "{name}");
        }
    }

    fn snapshot(statuses: &[(&str, Status)]) -> HealthSnapshot {
        let specs = validate_checks(&openshift_master_checks()).unwrap();
        let mut snap = HealthSnapshot::default();
        for spec in &specs {
            let status = statuses
                .iter()
                .find(|(n, _)| *n == spec.name)
                .map_or(Status::Unknown, |(_, s)| *s);
            snap.checks.insert(
                spec.name.clone(),
                CheckReport {
                    status,
                    probes: 1,
                    ..CheckReport::new(spec)
                },
            );
        }
        snap
    }

    #[test]
    fn master_api_spans_40_to_68() {
        use Status::*;
        let api =
            |snap: &HealthSnapshot| snap.effective_priority(MASTER_API_PRIORITY, &MASTER_API_TRACK);
        let none = snapshot(&[("chk_ocp_lb", Bad), ("chk_ocp_both", Bad), ("chk_mcs", Bad)]);
        let all = snapshot(&[
            ("chk_ocp_lb", Good),
            ("chk_ocp_both", Good),
            ("chk_mcs", Good),
        ]);
        let ok = |value| Priority {
            value,
            fault: false,
        };
        assert_eq!(api(&none), ok(40));
        assert_eq!(api(&all), ok(68));
        // Before any result the master advertises its base priority, never more.
        assert_eq!(api(&snapshot(&[])), ok(40));
    }

    #[test]
    fn master_ingress_faults_until_chk_ingress_is_good() {
        use Status::*;
        let ingress = |snap: &HealthSnapshot| {
            snap.effective_priority(MASTER_INGRESS_PRIORITY, &MASTER_INGRESS_TRACK)
        };
        assert_eq!(
            ingress(&snapshot(&[])),
            Priority {
                value: 20,
                fault: true
            }
        );
        assert_eq!(
            ingress(&snapshot(&[
                ("chk_ingress", Good),
                ("chk_ingress_ready", Good),
                ("chk_default_ingress", Good)
            ])),
            Priority {
                value: 80,
                fault: false
            }
        );
    }
}
