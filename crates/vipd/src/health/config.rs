//! The `[[check]]` configuration table ([`CheckConfig`]) and its validated form ([`CheckSpec`]).
//!
//! ```toml
//! [[check]]
//! name = "chk_ingress"
//! http = "http://localhost:1936/healthz"
//! interval = "1s"
//! rise = 3
//! fall = 2
//!
//! [[check]]
//! name = "chk_ocp_lb"               # keepalived ran one script doing both tests; so does vipd
//! all_of = [{ http = "http://localhost:9444/haproxy_ready" }, { file = "/var/run/keepalived/iptables-rule-exists" }]
//! rise = 3
//! fall = 3
//! ```
//!
//! Each check has exactly one probe: `http`, `tcp`, `file`, `exec`, or a composite `all_of` /
//! `any_of` of inline probe tables. A composite is evaluated as a whole on every interval and its
//! single combined result feeds the rise/fall counter, exactly like the one shell script keepalived
//! ran for `chk_ocp_lb` (haproxy ready AND flag file) and `chk_ocp_both` (haproxy OR readyz).
//! Composites hold probes, not references to other checks, so that every check validates on its
//! own and no ordering or cycle question can arise.
//!
//! Defaults follow keepalived's `vrrp_script` except the interval: `rise = 1`, `fall = 1`,
//! `weight = 0` (a bad check puts the tracking instance in FAULT), `timeout = interval`. The
//! interval defaults to 2 s, the value every OpenShift master check except the ingress ones uses
//! (keepalived's own default is 1 s). `hold_down` (damping of a flapping check, see
//! [`hold_down`](super::hold_down)) is vipd's own and off by default.
//!
//! Validation runs in steps (name, probe, timing, counts) and refuses with a typed
//! [`CheckError`]; durations use the configuration's one syntax
//! ([`parse_duration`](crate::config::parse_duration)), with zero refused for `interval` and
//! `timeout` (a probe must be given time to run) and meaning "off" for `hold_down`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use super::config_error::{
    CheckError, Expected, ProbeConfigError, Problem, TargetError, MAX_NAME_LEN, MAX_WEIGHT,
};
use crate::config::duration::{format_duration, parse_duration};

/// Probe interval when `interval` is not set.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// keepalived's `rise` default: one success turns a bad check good.
pub const DEFAULT_RISE: u32 = 1;
/// keepalived's `fall` default: one failure turns a good check bad.
pub const DEFAULT_FALL: u32 = 1;
/// keepalived's `weight` default: 0, i.e. a bad check faults the instance.
pub const DEFAULT_WEIGHT: i32 = 0;

/// One `[[check]]` table as written by the operator.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// Referenced by instances' `track` lists; letters, digits, `_`, `-`, `.`.
    pub name: String,
    /// `http://host[:port]/path` or `https://...`; good on a 2xx status, redirects are not followed.
    pub http: Option<String>,
    /// `host:port` or `[v6]:port`; good when a TCP connection is established.
    pub tcp: Option<String>,
    /// Absolute path; good while the path exists.
    pub file: Option<PathBuf>,
    /// argv with an absolute program path; good on exit status 0. No shell is involved unless
    /// the operator writes one (`["/bin/sh", "-c", "..."]`).
    pub exec: Option<Vec<String>>,
    /// Good when every listed probe is good.
    pub all_of: Option<Vec<ProbeConfig>>,
    /// Good when at least one listed probe is good.
    pub any_of: Option<Vec<ProbeConfig>>,
    /// Allow an unverified `https` probe to a host other than loopback / `localhost`.
    pub insecure: Option<bool>,
    /// Time between probe starts, e.g. `"2s"`, `"500ms"`; default 2 s.
    pub interval: Option<String>,
    /// Time a probe may take before it counts as a failure; default: the interval.
    pub timeout: Option<String>,
    /// Consecutive successes that turn a bad check good; default 1.
    pub rise: Option<u32>,
    /// Consecutive failures that turn a good check bad; default 1.
    pub fall: Option<u32>,
    /// Default weight for instances that track this check without their own; default 0.
    pub weight: Option<i32>,
    /// Damping: after a reported status change, a further change is held back until this long
    /// has passed since it (see [`hold_down`](super::hold_down)); `"0s"` (default) = off,
    /// keepalived semantics. Kept with its position so a refusal points at the value.
    pub hold_down: Option<Spanned<String>>,
}

/// One probe inside `all_of` / `any_of`: exactly one of the keys.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    pub http: Option<String>,
    pub tcp: Option<String>,
    pub file: Option<PathBuf>,
    pub exec: Option<Vec<String>>,
    pub insecure: Option<bool>,
}

/// A validated check: everything the monitor needs, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    pub name: String,
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub weight: i32,
    /// Minimum time between two changes of the reported status; zero: off (every change of
    /// the rise/fall counter is reported when it happens, as keepalived does).
    pub hold_down: Duration,
}

/// What a check probes.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    Http(HttpTarget),
    Tcp(TcpTarget),
    File(PathBuf),
    /// argv; `argv[0]` is an absolute path and the list is never empty.
    Exec(Vec<String>),
    AllOf(Vec<Probe>),
    AnyOf(Vec<Probe>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// A parsed `http` / `https` URL.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpTarget {
    pub scheme: Scheme,
    /// Host name or IP literal, IPv6 without brackets.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Unverified TLS to a non-loopback host was explicitly allowed.
    pub insecure: bool,
}

impl HttpTarget {
    /// The `Host` header value (RFC 9110 section 7.2): brackets around IPv6 literals, the port
    /// only when it is not the scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default_port = match self.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl std::fmt::Display for HttpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}{}", self.host_header(), self.path)
    }
}

/// A parsed `tcp` target.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpTarget {
    /// Host name or IP literal, IPv6 without brackets.
    pub host: String,
    pub port: u16,
}

/// Longest accepted `hold_down`: a failure right after a reported recovery is held back this
/// long, with the VIP on a node whose service fails.
pub const MAX_HOLD_DOWN: Duration = Duration::from_secs(5 * 60);

/// Interval, timeout and hold-down of a check, defaults applied.
struct Timing {
    interval: Duration,
    timeout: Duration,
    hold_down: Duration,
}

impl CheckConfig {
    /// Checks every key and applies the defaults; the error names the check and the key at
    /// fault and says what would be accepted. [`to_spec`](Self::to_spec) with the message only.
    pub fn validate(&self) -> Result<CheckSpec, String> {
        self.to_spec().map_err(|e| e.to_string())
    }

    /// Checks every key and applies the defaults, in steps: name, probe, timing, counts.
    pub fn to_spec(&self) -> Result<CheckSpec, CheckError> {
        validate_name(&self.name)?;
        let probe = self.probe()?;
        let Timing {
            interval,
            timeout,
            hold_down,
        } = self.timing()?;
        let (rise, fall, weight) = self.counts()?;
        Ok(CheckSpec {
            name: self.name.clone(),
            probe,
            interval,
            timeout,
            rise,
            fall,
            weight,
            hold_down,
        })
    }

    /// An error about `key` of this check, located at the table.
    fn at(&self, key: &str, problem: impl Into<Problem>) -> CheckError {
        CheckError::Key {
            check: self.name.clone(),
            key: key.to_owned(),
            problem: Box::new(problem.into()),
            span: None,
        }
    }

    /// The one probe: the check's own probe keys, or `all_of` / `any_of`.
    fn probe(&self) -> Result<Probe, CheckError> {
        let single = ProbeConfig {
            http: self.http.clone(),
            tcp: self.tcp.clone(),
            file: self.file.clone(),
            exec: self.exec.clone(),
            insecure: self.insecure,
        };
        let composite = [
            ("all_of", self.all_of.as_deref()),
            ("any_of", self.any_of.as_deref()),
        ];
        let set: Vec<&'static str> = single
            .keys_set()
            .into_iter()
            .chain(
                composite
                    .iter()
                    .filter(|(_, v)| v.is_some())
                    .map(|(k, _)| *k),
            )
            .collect();
        match set.as_slice() {
            [] => Err(self.at("probe", Problem::NoProbe)),
            [key @ ("all_of" | "any_of")] => {
                let list = composite
                    .iter()
                    .find(|(k, _)| k == key)
                    .and_then(|(_, v)| *v)
                    .unwrap_or_default();
                self.composite(key, list)
            }
            [_] => single.validate().map_err(|e| self.at("probe", e)),
            many => Err(self.at("probe", Problem::ManyProbes(many.to_vec()))),
        }
    }

    /// `all_of` / `any_of` (`key`): a non-empty list of valid probe tables.
    fn composite(&self, key: &str, list: &[ProbeConfig]) -> Result<Probe, CheckError> {
        if self.insecure.is_some() {
            return Err(self.at("insecure", Problem::InsecureOnComposite));
        }
        if list.is_empty() {
            return Err(self.at(key, Problem::EmptyComposite));
        }
        let probes = list
            .iter()
            .enumerate()
            .map(|(i, p)| p.validate().map_err(|e| self.at(&format!("{key}[{i}]"), e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(if key == "all_of" {
            Probe::AllOf(probes)
        } else {
            Probe::AnyOf(probes)
        })
    }

    /// `interval`, `timeout` (default: the interval) and `hold_down` (default off).
    fn timing(&self) -> Result<Timing, CheckError> {
        let interval = self
            .period("interval", self.interval.as_deref())?
            .unwrap_or(DEFAULT_INTERVAL);
        let timeout = self
            .period("timeout", self.timeout.as_deref())?
            .unwrap_or(interval);
        let hold_down = self.hold_down(interval)?;
        Ok(Timing {
            interval,
            timeout,
            hold_down,
        })
    }

    /// A probe period (`interval`, `timeout`): the configuration's duration syntax, not zero.
    fn period(&self, key: &str, text: Option<&str>) -> Result<Option<Duration>, CheckError> {
        let Some(text) = text else {
            return Ok(None);
        };
        match parse_duration(text) {
            Err(why) => Err(self.at(key, Problem::Duration(why))),
            Ok(d) if d.is_zero() => Err(self.at(key, Problem::ZeroDuration(text.to_owned()))),
            Ok(d) => Ok(Some(d)),
        }
    }

    /// `hold_down`: `"0s"` (off, the default) or longer than the interval up to
    /// [`MAX_HOLD_DOWN`]; errors point at the value.
    fn hold_down(&self, interval: Duration) -> Result<Duration, CheckError> {
        let Some(written) = &self.hold_down else {
            return Ok(Duration::ZERO);
        };
        let text = written.get_ref();
        let at = |problem| CheckError::Key {
            check: self.name.clone(),
            key: "hold_down".to_owned(),
            problem: Box::new(problem),
            span: Some(written.span()),
        };
        let accepted = || {
            format!(
                "accepted \"0s\" (off) or longer than the interval ({}) up to {}m",
                format_duration(interval),
                MAX_HOLD_DOWN.as_secs() / 60
            )
        };
        match parse_duration(text).map_err(|why| at(Problem::Duration(why)))? {
            d if d.is_zero() => Ok(d),
            d if d > MAX_HOLD_DOWN => Err(at(Problem::HoldDownTooLong {
                text: text.clone(),
                accepted: accepted(),
            })),
            d if d <= interval => Err(at(Problem::HoldDownTooShort {
                text: text.clone(),
                accepted: accepted(),
            })),
            d => Ok(d),
        }
    }

    /// `rise`, `fall` (at least 1) and `weight` (keepalived's range).
    fn counts(&self) -> Result<(u32, u32, i32), CheckError> {
        let rise = self.rise.unwrap_or(DEFAULT_RISE);
        if rise == 0 {
            return Err(self.at("rise", Problem::ZeroRise));
        }
        let fall = self.fall.unwrap_or(DEFAULT_FALL);
        if fall == 0 {
            return Err(self.at("fall", Problem::ZeroFall));
        }
        let weight = self.weight.unwrap_or(DEFAULT_WEIGHT);
        if !(-MAX_WEIGHT..=MAX_WEIGHT).contains(&weight) {
            return Err(self.at("weight", Problem::Weight(weight)));
        }
        Ok((rise, fall, weight))
    }
}

/// Validates a whole `[[check]]` list: each check, plus unique names.
pub fn validate_checks(checks: &[CheckConfig]) -> Result<Vec<CheckSpec>, CheckError> {
    let mut specs: Vec<CheckSpec> = Vec::with_capacity(checks.len());
    for c in checks {
        let spec = c.to_spec()?;
        if specs.iter().any(|s| s.name == spec.name) {
            return Err(c.at("name", Problem::Duplicate));
        }
        specs.push(spec);
    }
    Ok(specs)
}

impl ProbeConfig {
    fn keys_set(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.http.is_some() {
            keys.push("http");
        }
        if self.tcp.is_some() {
            keys.push("tcp");
        }
        if self.file.is_some() {
            keys.push("file");
        }
        if self.exec.is_some() {
            keys.push("exec");
        }
        keys
    }

    /// Validates a single (non-composite) probe.
    pub fn validate(&self) -> Result<Probe, ProbeConfigError> {
        match self.keys_set().as_slice() {
            [_] => {}
            [] => return Err(ProbeConfigError::NoKey),
            many => return Err(ProbeConfigError::ManyKeys(many.to_vec())),
        }
        if self.insecure.is_some() && self.http.is_none() {
            return Err(ProbeConfigError::InsecureWithoutHttp);
        }
        if let Some(url) = &self.http {
            let target =
                parse_http_url(url, self.insecure.unwrap_or(false)).map_err(|problem| {
                    ProbeConfigError::Http {
                        url: url.clone(),
                        problem,
                    }
                })?;
            return Ok(Probe::Http(target));
        }
        if let Some(addr) = &self.tcp {
            let (host, port) =
                parse_host_port(addr, None).map_err(|problem| ProbeConfigError::Tcp {
                    addr: addr.clone(),
                    problem,
                })?;
            return Ok(Probe::Tcp(TcpTarget { host, port }));
        }
        if let Some(path) = &self.file {
            if !path.is_absolute() {
                return Err(ProbeConfigError::RelativeFile(path.clone()));
            }
            return Ok(Probe::File(path.clone()));
        }
        let argv = self.exec.clone().unwrap_or_default();
        match argv.first() {
            None => Err(ProbeConfigError::EmptyExec),
            Some(prog) if !prog.starts_with('/') => Err(ProbeConfigError::RelativeProgram {
                program: prog.clone(),
                argv,
            }),
            Some(_) => Ok(Probe::Exec(argv)),
        }
    }
}

fn validate_name(name: &str) -> Result<(), CheckError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.chars().all(ok_char) {
        return Err(CheckError::Name(name.to_owned()));
    }
    Ok(())
}

/// True for `localhost`, `*.localhost` (RFC 6761 section 6.3) and loopback IP literals: the hosts
/// an unverified TLS connection cannot be intercepted on from the network.
pub fn is_loopback_host(host: &str) -> bool {
    let lower = host.to_ascii_lowercase();
    let lower = lower.trim_end_matches('.');
    if lower == "localhost" || lower.ends_with(".localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn parse_http_url(url: &str, insecure: bool) -> Result<HttpTarget, TargetError> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        return Err(TargetError::NotHttpUrl);
    };
    if url
        .chars()
        .any(|c| c.is_ascii_whitespace() || c.is_control())
    {
        return Err(TargetError::Whitespace);
    }
    if url.contains('#') {
        return Err(TargetError::Fragment);
    }
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') {
        return Err(TargetError::UserInfo);
    }
    let default_port = match scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    };
    let (host, port) = parse_host_port(authority, Some(default_port))?;
    if scheme == Scheme::Https && !insecure && !is_loopback_host(&host) {
        return Err(TargetError::Unverified(host));
    }
    if scheme == Scheme::Http && insecure {
        return Err(TargetError::InsecureHttp);
    }
    Ok(HttpTarget {
        scheme,
        host,
        port,
        path,
        insecure,
    })
}

/// Parses `host:port`, `[v6]:port`, or (with a default port) `host`, `[v6]`.
fn parse_host_port(s: &str, default_port: Option<u16>) -> Result<(String, u16), TargetError> {
    let expected = if default_port.is_some() {
        Expected::HostOptionalPort
    } else {
        Expected::HostPort
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or(TargetError::UnclosedBracket(expected))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(TargetError::NotIpv6 {
                host: h.to_owned(),
                expected,
            });
        }
        match after {
            "" => (h, None),
            p => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => {
                    return Err(TargetError::AfterBracket {
                        rest: p.to_owned(),
                        expected,
                    })
                }
            },
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => return Err(TargetError::UnbracketedIpv6(expected)),
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(TargetError::EmptyHost(expected));
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
    {
        return Err(TargetError::BadHost {
            host: host.to_owned(),
            expected,
        });
    }
    let port = match (port, default_port) {
        (Some(p), _) => match p.parse::<u16>() {
            Ok(n) if n != 0 => n,
            _ => return Err(TargetError::Port(p.to_owned())),
        },
        (None, Some(d)) => d,
        (None, None) => return Err(TargetError::NoPort(expected)),
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str) -> CheckConfig {
        CheckConfig {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_follow_keepalived_except_the_two_second_interval() {
        let c = CheckConfig {
            tcp: Some("127.0.0.1:6443".into()),
            ..check("api")
        };
        let spec = c.validate().unwrap();
        assert_eq!(
            spec,
            CheckSpec {
                name: "api".into(),
                probe: Probe::Tcp(TcpTarget {
                    host: "127.0.0.1".into(),
                    port: 6443
                }),
                interval: Duration::from_secs(2),
                timeout: Duration::from_secs(2),
                rise: 1,
                fall: 1,
                weight: 0,
                hold_down: Duration::ZERO,
            }
        );
    }

    #[test]
    fn toml_table_with_all_of_parses_into_a_composite() {
        let c: CheckConfig = toml::from_str(
            r#"
            name = "chk_ocp_lb"
            all_of = [{ http = "http://localhost:9444/haproxy_ready" }, { file = "/run/flag" }]
            interval = "2s"
            rise = 3
            fall = 3
            weight = 20
            "#,
        )
        .unwrap();
        let spec = c.validate().unwrap();
        assert_eq!(
            spec.probe,
            Probe::AllOf(vec![
                Probe::Http(HttpTarget {
                    scheme: Scheme::Http,
                    host: "localhost".into(),
                    port: 9444,
                    path: "/haproxy_ready".into(),
                    insecure: false,
                }),
                Probe::File("/run/flag".into()),
            ])
        );
        assert_eq!((spec.rise, spec.fall, spec.weight), (3, 3, 20));
    }

    #[test]
    fn unknown_key_is_rejected_by_serde() {
        let err = toml::from_str::<CheckConfig>("name = \"a\"\nhtpp = \"http://x/\"").unwrap_err();
        assert!(err.to_string().contains("unknown field `htpp`"), "{err}");
    }

    #[test]
    fn two_probe_keys_are_rejected_naming_both() {
        let c = CheckConfig {
            tcp: Some("127.0.0.1:1".into()),
            file: Some("/x".into()),
            ..check("a")
        };
        assert_eq!(
            c.validate().unwrap_err(),
            "[[check]] \"a\": probe: tcp, file are all set; a check has exactly one probe (use all_of / any_of to combine)"
        );
    }

    #[test]
    fn missing_probe_is_rejected() {
        assert_eq!(
            check("a").validate().unwrap_err(),
            "[[check]] \"a\": probe: missing; set exactly one of http, tcp, file, exec, all_of, any_of"
        );
    }

    #[test]
    fn https_to_a_remote_host_needs_insecure() {
        let c = CheckConfig {
            http: Some("https://api.example.test:6443/readyz".into()),
            ..check("a")
        };
        assert_eq!(
            c.validate().unwrap_err(),
            "[[check]] \"a\": probe: http = \"https://api.example.test:6443/readyz\": https to \
             \"api.example.test\" would not verify the server certificate; use a loopback host \
             (localhost, 127.0.0.1, ::1) or set insecure = true"
        );
        let c = CheckConfig {
            insecure: Some(true),
            ..c
        };
        assert!(matches!(c.validate().unwrap().probe, Probe::Http(t) if t.insecure));
    }

    #[test]
    fn https_to_loopback_needs_no_insecure() {
        for url in [
            "https://localhost:6443/readyz",
            "https://127.0.0.1:6443/readyz",
            "https://[::1]:6443/readyz",
        ] {
            let c = CheckConfig {
                http: Some(url.into()),
                ..check("a")
            };
            assert!(c.validate().is_ok(), "{url}");
        }
    }

    #[test]
    fn url_parts_and_host_header() {
        let t = parse_http_url("https://[::1]:6443/readyz?verbose", false).unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.port, 6443);
        assert_eq!(t.path, "/readyz?verbose");
        assert_eq!(t.host_header(), "[::1]:6443");
        let t = parse_http_url("http://localhost", false).unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        assert_eq!(t.host_header(), "localhost");
        let t = parse_http_url("http://localhost?x=1", false).unwrap();
        assert_eq!(t.path, "/?x=1");
    }

    #[test]
    fn url_with_space_or_fragment_or_userinfo_is_rejected() {
        assert!(parse_http_url("http://localhost/a b", false).is_err());
        assert!(parse_http_url("http://localhost/a#x", false).is_err());
        assert!(parse_http_url("http://u:p@localhost/", false).is_err());
        assert!(parse_http_url("ftp://localhost/", false).is_err());
    }

    #[test]
    fn tcp_target_forms() {
        assert_eq!(
            parse_host_port("[2001:db8::1]:22623", None).unwrap(),
            ("2001:db8::1".to_string(), 22623)
        );
        assert_eq!(
            parse_host_port("2001:db8::1:22623", None)
                .unwrap_err()
                .to_string(),
            "IPv6 address without brackets; expected host:port or [IPv6]:port, e.g. \"127.0.0.1:6443\""
        );
        assert_eq!(
            parse_host_port("127.0.0.1", None).unwrap_err().to_string(),
            "no port; expected host:port or [IPv6]:port, e.g. \"127.0.0.1:6443\""
        );
        assert_eq!(
            parse_host_port("127.0.0.1:0", None)
                .unwrap_err()
                .to_string(),
            "port \"0\": expected 1..=65535"
        );
    }

    #[test]
    fn exec_needs_an_absolute_program() {
        let c = CheckConfig {
            exec: Some(vec!["crictl".into(), "ps".into()]),
            ..check("mcs")
        };
        assert_eq!(
            c.validate().unwrap_err(),
            "[[check]] \"mcs\": probe: exec = [\"crictl\", \"ps\"]: program \"crictl\" is not an \
             absolute path; write e.g. \"/usr/bin/crictl\""
        );
    }

    /// The error of a check whose only non-default key besides its probe is `key = text`.
    fn timing_error(key: &str, text: &str) -> String {
        let mut c = CheckConfig {
            file: Some("/x".into()),
            ..check("a")
        };
        match key {
            "interval" => c.interval = Some(text.into()),
            "timeout" => c.timeout = Some(text.into()),
            _ => c.hold_down = Some(Spanned::new(0..text.len(), text.into())),
        }
        c.validate().unwrap_err()
    }

    #[test]
    fn durations() {
        let interval = |text: &str| {
            CheckConfig {
                file: Some("/x".into()),
                interval: Some(text.into()),
                ..check("a")
            }
            .to_spec()
            .map(|s| s.interval)
        };
        assert_eq!(interval("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(interval("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(interval("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(
            timing_error("interval", "0s"),
            "[[check]] \"a\": interval: \"0s\": must be greater than zero"
        );
        assert_eq!(
            timing_error("timeout", "0s"),
            "[[check]] \"a\": timeout: \"0s\": must be greater than zero"
        );
        assert_eq!(
            timing_error("interval", "2"),
            "[[check]] \"a\": interval: \"2\" has no unit; write a number and a unit, e.g. \"1s\", \"100ms\", \"1.5s\", \"2m\""
        );
        // The same syntax as every other duration of the configuration.
        assert_eq!(interval("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(interval("s").is_err());
    }

    #[test]
    fn hold_down_is_off_by_default_and_at_0s() {
        let c = CheckConfig {
            file: Some("/x".into()),
            ..check("a")
        };
        assert_eq!(c.to_spec().unwrap().hold_down, Duration::ZERO);
        let c: CheckConfig =
            toml::from_str("name = \"a\"\nfile = \"/x\"\nhold_down = \"0s\"").unwrap();
        assert_eq!(c.to_spec().unwrap().hold_down, Duration::ZERO);
        let c: CheckConfig =
            toml::from_str("name = \"a\"\nfile = \"/x\"\nhold_down = \"30s\"").unwrap();
        assert_eq!(c.to_spec().unwrap().hold_down, Duration::from_secs(30));
    }

    #[test]
    fn hold_down_is_longer_than_the_interval_and_at_most_five_minutes() {
        let accepted = "accepted \"0s\" (off) or longer than the interval (2s) up to 5m";
        assert_eq!(
            timing_error("hold_down", "2s"),
            format!("[[check]] \"a\": hold_down: \"2s\" is not longer than the interval, so it would never hold a change back; {accepted}")
        );
        // One duration syntax: the configuration's.
        assert!(timing_error("hold_down", "5m1s")
            .starts_with("[[check]] \"a\": hold_down: \"5m1s\" has unit \"m1s\"; the units are"));
        assert_eq!(
            timing_error("hold_down", "301s"),
            format!("[[check]] \"a\": hold_down: \"301s\" is too long; {accepted}")
        );
        let ok = |text: &str| {
            CheckConfig {
                file: Some("/x".into()),
                hold_down: Some(Spanned::new(0..0, text.into())),
                ..check("a")
            }
            .to_spec()
            .map(|s| s.hold_down)
        };
        assert_eq!(ok("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(ok("5m"), Ok(MAX_HOLD_DOWN));
    }

    #[test]
    fn hold_down_errors_point_at_the_value() {
        let text = "name = \"a\"\nfile = \"/x\"\nhold_down = \"1h\"";
        let c: CheckConfig = toml::from_str(text).unwrap();
        let e = c.to_spec().unwrap_err();
        assert_eq!(e.key(), "hold_down");
        assert_eq!(e.span(), text.find("\"1h\"").map(|i| i..i + 4));
        assert!(
            e.reason().starts_with("hold_down: \"1h\" is too long;"),
            "{e}"
        );
        // Keys without a position of their own belong to the table.
        let e = CheckConfig {
            rise: Some(0),
            hold_down: None,
            ..c
        }
        .to_spec()
        .unwrap_err();
        assert_eq!((e.key(), e.span()), ("rise", None));
    }

    #[test]
    fn zero_rise_fall_and_oversized_weight_are_rejected() {
        let base = CheckConfig {
            file: Some("/x".into()),
            ..check("a")
        };
        let e = |c: CheckConfig| c.validate().unwrap_err();
        assert_eq!(
            e(CheckConfig {
                rise: Some(0),
                ..base.clone()
            }),
            "[[check]] \"a\": rise: 0; expected 1 or more consecutive successes"
        );
        assert_eq!(
            e(CheckConfig {
                fall: Some(0),
                ..base.clone()
            }),
            "[[check]] \"a\": fall: 0; expected 1 or more consecutive failures"
        );
        assert_eq!(
            e(CheckConfig {
                weight: Some(254),
                ..base.clone()
            }),
            "[[check]] \"a\": weight: 254 is out of range; expected -253..=253"
        );
    }

    #[test]
    fn bad_names_and_duplicates_are_rejected() {
        assert!(CheckConfig {
            file: Some("/x".into()),
            ..check("a b")
        }
        .validate()
        .is_err());
        let a = CheckConfig {
            file: Some("/x".into()),
            ..check("a")
        };
        assert_eq!(
            validate_checks(&[a.clone(), a]).unwrap_err().to_string(),
            "[[check]] \"a\": name: defined twice; check names must be unique"
        );
    }

    #[test]
    fn relative_file_is_rejected() {
        let c = CheckConfig {
            file: Some("flag".into()),
            ..check("a")
        };
        assert_eq!(
            c.validate().unwrap_err(),
            "[[check]] \"a\": probe: file = \"flag\": relative path; expected an absolute path"
        );
    }

    #[test]
    fn composite_entry_errors_name_the_index() {
        let c = CheckConfig {
            any_of: Some(vec![
                ProbeConfig {
                    http: Some("http://localhost:9444/haproxy_ready".into()),
                    ..Default::default()
                },
                ProbeConfig::default(),
            ]),
            ..check("both")
        };
        assert_eq!(
            c.validate().unwrap_err(),
            "[[check]] \"both\": any_of[1]: no probe key set; set exactly one of http, tcp, file, exec"
        );
    }
}
