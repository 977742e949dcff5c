//! `[handoff]`: when the bootstrap resigns its API VIP (see crate::daemon::handoff).
//!
//! On by default with `role = "bootstrap"` (OpenShift's bootstrap behaviour), off otherwise
//! unless the table is written. `enabled = false` turns it off; the other keys are still checked
//! so a typo is reported before someone turns it on.

use std::ops::Range;
use std::time::Duration;

use super::super::raw::{RawHandoff, S};
use super::super::role::{handoff as defaults, Role};
use super::super::{HandoffConfig, InstanceConfig};
use super::Validator;
use crate::health::config::is_loopback_host;
use crate::health::{HttpTarget, Probe, ProbeConfig};

/// Shortest probe interval: each probe is a TCP (and TLS) connection to this node.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// Upper bound of `failures` / `recoveries`: beyond it the hand-off would take longer than a
/// bootstrap lives.
const MAX_COUNT: i64 = 1000;

impl Validator<'_> {
    /// `raw` is the `[handoff]` table when written; `role` the node role and the span of its key.
    pub(super) fn handoff(
        &mut self,
        raw: Option<&S<RawHandoff>>,
        role: Option<(Role, Range<usize>)>,
        instances: &[InstanceConfig],
    ) -> Option<HandoffConfig> {
        let from_role = match (&raw, &role) {
            (Some(_), _) => false,
            (None, Some((r, _))) if r.hands_off() => true,
            (None, _) => return None,
        };
        let empty = RawHandoff {
            enabled: None,
            instance: None,
            probe: None,
            also_down: None,
            interval: None,
            failures: None,
            recoveries: None,
        };
        let (h, table_span) = match raw {
            Some(t) => (t.get_ref(), t.span()),
            None => (&empty, role.as_ref().map_or(0..0, |(_, s)| s.clone())),
        };
        let errors_before = self.errors.len();

        let instances = self.handoff_instances(h, &table_span, instances);
        let (probe, also_down) = self.handoff_urls(h, &table_span);
        let interval = self.handoff_interval(&h.interval);
        let failures = self.handoff_count(
            &h.failures,
            "failures",
            defaults::FAILURES,
            "failed probes of the API before handing off",
        );
        let recoveries = self.handoff_count(
            &h.recoveries,
            "recoveries",
            defaults::RECOVERIES,
            "good probes of the API before rejoining",
        );
        if h.enabled == Some(false) || self.errors.len() > errors_before {
            return None;
        }
        Some(HandoffConfig {
            instances,
            probe: probe?,
            also_down,
            interval,
            failures,
            recoveries,
            from_role,
        })
    }

    /// `probe` (the API whose loss hands off) and `also_down` (services that must be gone too).
    fn handoff_urls(
        &mut self,
        h: &RawHandoff,
        table_span: &Range<usize>,
    ) -> (Option<HttpTarget>, Vec<HttpTarget>) {
        let probe = match &h.probe {
            Some(url) => self.handoff_url(url.get_ref(), url.span(), "handoff: probe"),
            None => self.handoff_url(defaults::PROBE, table_span.clone(), "handoff: probe"),
        };
        let also_down: Vec<HttpTarget> = match &h.also_down {
            Some(list) => list
                .get_ref()
                .iter()
                .filter_map(|u| self.handoff_url(u.get_ref(), u.span(), "handoff: also_down"))
                .collect(),
            None => defaults::ALSO_DOWN
                .iter()
                .filter_map(|u| self.handoff_url(u, table_span.clone(), "handoff: also_down"))
                .collect(),
        };
        (probe, also_down)
    }

    /// `interval` between probes: 10 ms to 60 s.
    fn handoff_interval(&mut self, interval: &Option<S<String>>) -> Duration {
        let Some(text) = interval else {
            return defaults::INTERVAL;
        };
        match self.duration(text, "handoff: interval") {
            Some(d) if (MIN_INTERVAL..=MAX_INTERVAL).contains(&d) => d,
            Some(_) => {
                self.err(
                    text.span(),
                    "handoff: interval",
                    format!(
                        "{:?} is out of range; accepted \"10ms\" to \"60s\" (OpenShift probes every \"1s\")",
                        text.get_ref()
                    ),
                );
                defaults::INTERVAL
            }
            None => defaults::INTERVAL,
        }
    }

    /// `failures` / `recoveries`: consecutive probes, 1 to [`MAX_COUNT`].
    fn handoff_count(&mut self, v: &Option<S<i64>>, key: &str, default: u32, what: &str) -> u32 {
        match v {
            None => default,
            Some(n) => self
                .ranged(
                    n,
                    &format!("handoff: {key}"),
                    1,
                    MAX_COUNT,
                    &format!("accepted 1..={MAX_COUNT} consecutive {what} (default {default})"),
                )
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(default),
        }
    }

    fn handoff_instances(
        &mut self,
        h: &RawHandoff,
        table_span: &Range<usize>,
        instances: &[InstanceConfig],
    ) -> Vec<String> {
        let key = "handoff: instance";
        let defined: Vec<&str> = instances.iter().map(|i| i.name.as_str()).collect();
        let defined_text = if defined.is_empty() {
            "no [[instance]] is defined".to_owned()
        } else {
            format!("defined instances: {}", defined.join(", "))
        };
        let Some(written) = &h.instance else {
            let found: Vec<String> = defaults::INSTANCES
                .iter()
                .filter(|n| defined.contains(n))
                .map(|n| (*n).to_owned())
                .collect();
            if found.is_empty() && h.enabled != Some(false) {
                self.err(
                    table_span.clone(),
                    key,
                    format!("is not set and there is no [[instance]] named \"api\" to hand off ({defined_text}); set instance = \"<name>\""),
                );
            }
            return found;
        };
        let names: Option<Vec<&str>> = match written.get_ref() {
            toml::Value::String(s) => Some(vec![s.as_str()]),
            toml::Value::Array(list) if !list.is_empty() => {
                list.iter().map(|v| v.as_str()).collect::<Option<Vec<_>>>()
            }
            _ => None,
        };
        let Some(names) = names else {
            self.err(
                written.span(),
                key,
                "expected an instance name or a non-empty list of names, e.g. instance = \"api\" or instance = [\"api\", \"api-v6\"]",
            );
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for name in names {
            if !defined.contains(&name) {
                self.err(
                    written.span(),
                    key,
                    format!("no [[instance]] named {name:?}; {defined_text}"),
                );
            } else if out.iter().any(|n| n == name) {
                self.err(written.span(), key, format!("{name:?} is listed twice"));
            } else {
                out.push(name.to_owned());
            }
        }
        out
    }

    /// An `http://` / `https://` URL on this node (loopback host), parsed as health checks do.
    fn handoff_url(&mut self, url: &str, span: Range<usize>, key: &str) -> Option<HttpTarget> {
        let parsed = ProbeConfig {
            http: Some(url.to_owned()),
            ..ProbeConfig::default()
        }
        .validate();
        match parsed {
            Ok(Probe::Http(target)) if is_loopback_host(&target.host) => Some(target),
            Ok(Probe::Http(target)) => {
                self.err(
                    span,
                    key,
                    format!(
                        "{url:?} is on host {:?}; the hand-off watches this node's own services, give a loopback URL (localhost, 127.0.0.1 or [::1]), e.g. {:?}",
                        target.host,
                        defaults::PROBE
                    ),
                );
                None
            }
            Ok(_) => None,
            Err(why) => {
                self.err(span, key, why);
                None
            }
        }
    }
}
