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
//! (keepalived's own default is 1 s).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Probe interval when `interval` is not set.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// keepalived's `rise` default: one success turns a bad check good.
pub const DEFAULT_RISE: u32 = 1;
/// keepalived's `fall` default: one failure turns a good check bad.
pub const DEFAULT_FALL: u32 = 1;
/// keepalived's `weight` default: 0, i.e. a bad check faults the instance.
pub const DEFAULT_WEIGHT: i32 = 0;
/// keepalived accepts weights in `-253..=253`: enough to move any priority across the whole
/// 1..=254 range, never enough to reach the owner value 255 by arithmetic alone.
pub const MAX_WEIGHT: i32 = 253;
/// Longest accepted check name; names end up in logs, metrics labels and `vipd status`.
pub const MAX_NAME_LEN: usize = 64;

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

impl CheckConfig {
    /// Checks every key and applies the defaults. The error names the check and the key at fault
    /// and says what would be accepted.
    pub fn validate(&self) -> Result<CheckSpec, String> {
        validate_name(&self.name)?;
        let at = |key: &str, msg: String| format!("[[check]] \"{}\": {key}: {msg}", self.name);

        let single = ProbeConfig {
            http: self.http.clone(),
            tcp: self.tcp.clone(),
            file: self.file.clone(),
            exec: self.exec.clone(),
            insecure: self.insecure,
        };
        let composite = [
            ("all_of", self.all_of.as_ref()),
            ("any_of", self.any_of.as_ref()),
        ];
        let set: Vec<&str> = single
            .keys_set()
            .into_iter()
            .chain(
                composite
                    .iter()
                    .filter(|(_, v)| v.is_some())
                    .map(|(k, _)| *k),
            )
            .collect();
        let probe = match set.as_slice() {
            [] => {
                return Err(at(
                    "probe",
                    "missing; set exactly one of http, tcp, file, exec, all_of, any_of".into(),
                ))
            }
            ["all_of"] | ["any_of"] => {
                if self.insecure.is_some() {
                    return Err(at(
                        "insecure",
                        "set it inside the all_of / any_of probe table it applies to".into(),
                    ));
                }
                let key = set[0];
                let list = composite
                    .iter()
                    .find(|(k, _)| *k == key)
                    .and_then(|(_, v)| *v)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                if list.is_empty() {
                    return Err(at(key, "empty; list at least one probe table".into()));
                }
                let mut probes = Vec::with_capacity(list.len());
                for (i, p) in list.iter().enumerate() {
                    probes.push(p.validate().map_err(|e| at(&format!("{key}[{i}]"), e))?);
                }
                if key == "all_of" {
                    Probe::AllOf(probes)
                } else {
                    Probe::AnyOf(probes)
                }
            }
            [_] => single.validate().map_err(|e| at("probe", e))?,
            many => {
                return Err(at(
                    "probe",
                    format!(
                        "{} are all set; a check has exactly one probe (use all_of / any_of to combine)",
                        many.join(", ")
                    ),
                ))
            }
        };

        let interval = match &self.interval {
            None => DEFAULT_INTERVAL,
            Some(s) => parse_duration(s).map_err(|e| at("interval", e))?,
        };
        let timeout = match &self.timeout {
            None => interval,
            Some(s) => parse_duration(s).map_err(|e| at("timeout", e))?,
        };
        let rise = self.rise.unwrap_or(DEFAULT_RISE);
        if rise == 0 {
            return Err(at(
                "rise",
                "0; expected 1 or more consecutive successes".into(),
            ));
        }
        let fall = self.fall.unwrap_or(DEFAULT_FALL);
        if fall == 0 {
            return Err(at(
                "fall",
                "0; expected 1 or more consecutive failures".into(),
            ));
        }
        let weight = self.weight.unwrap_or(DEFAULT_WEIGHT);
        if !(-MAX_WEIGHT..=MAX_WEIGHT).contains(&weight) {
            return Err(at(
                "weight",
                format!("{weight} is out of range; expected -{MAX_WEIGHT}..={MAX_WEIGHT}"),
            ));
        }
        Ok(CheckSpec {
            name: self.name.clone(),
            probe,
            interval,
            timeout,
            rise,
            fall,
            weight,
        })
    }
}

/// Validates a whole `[[check]]` list: each check, plus unique names.
pub fn validate_checks(checks: &[CheckConfig]) -> Result<Vec<CheckSpec>, String> {
    let mut specs: Vec<CheckSpec> = Vec::with_capacity(checks.len());
    for c in checks {
        let spec = c.validate()?;
        if specs.iter().any(|s| s.name == spec.name) {
            return Err(format!(
                "[[check]] \"{}\": name: defined twice; check names must be unique",
                spec.name
            ));
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

    /// Validates a single (non-composite) probe. Messages start with the key at fault.
    pub fn validate(&self) -> Result<Probe, String> {
        let keys = self.keys_set();
        if keys.len() != 1 {
            return Err(format!(
                "{}; set exactly one of http, tcp, file, exec",
                if keys.is_empty() {
                    "no probe key set".to_string()
                } else {
                    format!("{} are all set", keys.join(", "))
                }
            ));
        }
        if self.insecure.is_some() && self.http.is_none() {
            return Err("insecure: only applies to an https:// probe".into());
        }
        if let Some(url) = &self.http {
            let target = parse_http_url(url, self.insecure.unwrap_or(false))
                .map_err(|e| format!("http = {url:?}: {e}"))?;
            return Ok(Probe::Http(target));
        }
        if let Some(addr) = &self.tcp {
            let (host, port) =
                parse_host_port(addr, None).map_err(|e| format!("tcp = {addr:?}: {e}"))?;
            return Ok(Probe::Tcp(TcpTarget { host, port }));
        }
        if let Some(path) = &self.file {
            // The daemon's working directory is not something an operator controls.
            if !path.is_absolute() {
                return Err(format!(
                    "file = {path:?}: relative path; expected an absolute path"
                ));
            }
            return Ok(Probe::File(path.clone()));
        }
        let argv = self.exec.clone().unwrap_or_default();
        match argv.first() {
            None => Err("exec = []: empty; expected [\"/absolute/program\", \"arg\", ...]".into()),
            // No PATH lookup: what runs must not depend on the environment vipd was started in.
            Some(prog) if !prog.starts_with('/') => Err(format!(
                "exec = {argv:?}: program {prog:?} is not an absolute path; write e.g. \"/usr/bin/{prog}\""
            )),
            Some(_) => Ok(Probe::Exec(argv)),
        }
    }
}

fn validate_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.chars().all(ok_char) {
        return Err(format!(
            "[[check]] name = {name:?}: expected 1..={MAX_NAME_LEN} letters, digits, '_', '-' or '.'"
        ));
    }
    Ok(())
}

/// Parses a check duration with the configuration's one duration syntax (`"2s"`, `"500ms"`,
/// `"1.5s"`); zero is rejected because a check must take time to run.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = crate::config::duration::parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("{s:?}: must be greater than zero"));
    }
    Ok(d)
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

fn parse_http_url(url: &str, insecure: bool) -> Result<HttpTarget, String> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        return Err("expected a URL starting with http:// or https://".into());
    };
    // Anything below would end up verbatim in the request line or Host header.
    if url
        .chars()
        .any(|c| c.is_ascii_whitespace() || c.is_control())
    {
        return Err("contains whitespace or control characters".into());
    }
    if url.contains('#') {
        return Err("fragment (#...) not allowed; it is never sent to the server".into());
    }
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') {
        return Err("user information (user@host) is not supported".into());
    }
    let default_port = match scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    };
    let (host, port) = parse_host_port(authority, Some(default_port))?;
    if scheme == Scheme::Https && !insecure && !is_loopback_host(&host) {
        return Err(format!(
            "https to {host:?} would not verify the server certificate; use a loopback host \
             (localhost, 127.0.0.1, ::1) or set insecure = true"
        ));
    }
    if scheme == Scheme::Http && insecure {
        return Err("insecure = true only applies to https:// URLs".into());
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
fn parse_host_port(s: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let expected = if default_port.is_some() {
        "expected host, host:port or [IPv6]:port"
    } else {
        "expected host:port or [IPv6]:port, e.g. \"127.0.0.1:6443\""
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unclosed '['; {expected}"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "{h:?} inside [] is not an IPv6 address; {expected}"
            ));
        }
        match after {
            "" => (h, None),
            p => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return Err(format!("unexpected {p:?} after ']'; {expected}")),
            },
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(format!("IPv6 address without brackets; {expected}"))
            }
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(format!("empty host; {expected}"));
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
    {
        return Err(format!(
            "{host:?} is not a host name or IP address; {expected}"
        ));
    }
    let port = match (port, default_port) {
        (Some(p), _) => match p.parse::<u16>() {
            Ok(n) if n != 0 => n,
            _ => return Err(format!("port {p:?}: expected 1..=65535")),
        },
        (None, Some(d)) => d,
        (None, None) => return Err(format!("no port; {expected}")),
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
            parse_host_port("2001:db8::1:22623", None).unwrap_err(),
            "IPv6 address without brackets; expected host:port or [IPv6]:port, e.g. \"127.0.0.1:6443\""
        );
        assert_eq!(
            parse_host_port("127.0.0.1", None).unwrap_err(),
            "no port; expected host:port or [IPv6]:port, e.g. \"127.0.0.1:6443\""
        );
        assert_eq!(
            parse_host_port("127.0.0.1:0", None).unwrap_err(),
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

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(
            parse_duration("0s"),
            Err("\"0s\": must be greater than zero".into())
        );
        assert_eq!(
            parse_duration("2"),
            Err(
                "\"2\" has no unit; write a number and a unit, e.g. \"1s\", \"100ms\", \"1.5s\", \"2m\""
                    .into()
            )
        );
        // The same syntax as every other duration of the configuration.
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("s").is_err());
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
            validate_checks(&[a.clone(), a]).unwrap_err(),
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
