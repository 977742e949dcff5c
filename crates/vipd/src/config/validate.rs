//! Raw file -> [`Config`]: every check, every default, every error located to the character.
//!
//! Validation keeps going after an error so that one run of `vipd check-config` lists every
//! problem of a file, not only the first.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use super::raw::RawConfig;
use super::{Config, ConfigError, Diagnostic};

mod across;
mod checks;
mod dns;
mod handoff;
mod http;
mod identity;
mod instance;
mod kubernetes;
mod names;
mod resolver;
mod roles;
mod sync_groups;
mod values;

pub const DEFAULT_PRIORITY: u8 = 100;
pub const DEFAULT_ADVERT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_ANNOUNCE_COUNT: u32 = 5;
pub const MAX_ANNOUNCE_COUNT: i64 = 100;
pub const DEFAULT_ANNOUNCE_REPEAT_AFTER: Duration = Duration::from_secs(5);
pub const DEFAULT_ANNOUNCE_REFRESH: Duration = Duration::from_secs(60);
pub const DEFAULT_RESIGN_WAIT: Duration = Duration::from_secs(3);
pub const MAX_RESIGN_WAIT: Duration = Duration::from_secs(60);
pub const DEFAULT_DNS_LISTEN: [&str; 2] = ["0.0.0.0:53", "[::]:53"];
pub const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";
pub const DEFAULT_DNS_TTL: u32 = 30;
pub const MAX_DNS_TTL: i64 = 86_400;
pub const DEFAULT_MAX_UDP_SIZE: u16 = 512;
pub const DEFAULT_HTTP_LISTEN: &str = "0.0.0.0:18080";
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/vipd/vipd.sock";
/// keepalived's weight bound, shared with the health checks (`[[check]] weight`).
const MAX_WEIGHT: i64 = crate::health::config_error::MAX_WEIGHT as i64;

pub(super) fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let mut v = Validator::new(text, path);
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            // The deserializer reports a key missing from the document itself at 0..0, which
            // is not where the first table starts.
            let key = if span == (0..0) {
                "(top level)".to_owned()
            } else {
                key_path_at(text, span.start)
            };
            let message = e.message().trim().to_owned();
            v.err(span, key, message);
            return Err(ConfigError::Invalid(v.errors));
        }
    };
    let config = v.config(raw);
    if v.errors.is_empty() {
        Ok(Config {
            warnings: v.warnings,
            ..config
        })
    } else {
        Err(ConfigError::Invalid(v.errors))
    }
}

struct Validator<'a> {
    text: &'a str,
    path: &'a Path,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl<'a> Validator<'a> {
    fn new(text: &'a str, path: &'a Path) -> Self {
        Validator {
            text,
            path,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

impl Validator<'_> {
    fn diagnostic(&self, span: Range<usize>, key: String, message: String) -> Diagnostic {
        let (line, column) = line_column(self.text, span.start);
        Diagnostic {
            file: self.path.to_path_buf(),
            line,
            column,
            key,
            message,
        }
    }

    fn err(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let d = self.diagnostic(span, key.into(), message.into());
        self.errors.push(d);
    }

    fn warn(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let d = self.diagnostic(span, key.into(), message.into());
        self.warnings.push(d);
    }

    fn line_of(&self, span: &Range<usize>) -> usize {
        line_column(self.text, span.start).0
    }

    /// The pipeline: one step per concern, in the order of their diagnostics.
    fn config(&mut self, raw: RawConfig) -> Config {
        let identity = self.identity(&raw);
        let base_domain = self.cluster_domain_names(&identity);
        let (role, planned, presets) = self.plan(&raw, &identity);
        let checks = self.checks(presets, &raw.check);
        let instances = self.instances(&planned, &identity.cluster_name, &checks.usable());
        let mut dns = raw
            .dns
            .as_ref()
            .and_then(|d| self.dns(d, &identity, base_domain.as_deref(), &planned, &instances));
        if planned.is_empty() && raw.dns.is_none() {
            self.err(
                0..0,
                "(top level)",
                "nothing to run: define at least one [[instance]] (a virtual IP) or a [dns] table",
            );
        }
        let http = self.http(raw.http.as_ref());
        let control = self.control(raw.control.as_ref());
        let resolver = raw
            .resolver
            .as_ref()
            .and_then(|r| self.resolver(r, raw.dns.as_ref(), dns.as_mut(), &instances));
        let handoff = self.handoff(
            raw.handoff.as_ref(),
            role.zip(raw.role.as_ref().map(|r| r.span())),
            &instances,
        );
        let kubernetes = raw
            .kubernetes
            .as_ref()
            .and_then(|k| self.kubernetes(k, &instances, role, dns.is_some()));
        let sync_groups = self.sync_groups(&raw.sync_group, &instances);
        Config {
            source: self.path.to_path_buf(),
            cluster_name: identity.cluster_name,
            base_domain,
            instances,
            checks: checks.specs,
            dns,
            http,
            control,
            resolver,
            handoff,
            kubernetes,
            sync_groups,
            warnings: Vec::new(),
            role,
            role_checks: checks.role_names,
            identity_source: identity.source,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// A readable key path (`instance[1].priority`) for an error the TOML deserializer located only by
/// offset: the last table header before it and the key on (or before) its line.
fn key_path_at(text: &str, offset: usize) -> String {
    let mut table = String::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut key: Option<String> = None;
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("[[") {
            let name = rest.split("]]").next().unwrap_or("").trim().to_owned();
            let n = counts.entry(name.clone()).or_insert(0);
            *n += 1;
            table = format!("{name}[{}]", *n - 1);
            key = None;
        } else if let Some(rest) = trimmed.strip_prefix('[') {
            table = rest.split(']').next().unwrap_or("").trim().to_owned();
            key = None;
        } else if !trimmed.starts_with('#') {
            if let Some((k, _)) = trimmed.split_once('=') {
                let k = k.trim();
                let bare = !k.is_empty()
                    && k.bytes().all(|b| {
                        b.is_ascii_alphanumeric()
                            || b == b'_'
                            || b == b'-'
                            || b == b'.'
                            || b == b'"'
                    });
                if bare {
                    key = Some(k.to_owned());
                }
            }
        }
        line_start += line.len();
        if offset < line_start {
            break;
        }
    }
    match (table.is_empty(), key) {
        (true, None) => "(top level)".to_owned(),
        (true, Some(k)) => k,
        (false, None) => table,
        (false, Some(k)) => format!("{table}.{k}"),
    }
}

/// A validator over a test's text, for the unit tests of each step.
#[cfg(test)]
mod testing {
    use std::path::Path;

    use super::Validator;

    pub(super) fn validator(text: &str) -> Validator<'_> {
        Validator::new(text, Path::new("/etc/vipd/vipd.toml"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters_not_bytes() {
        assert_eq!(line_column("a = \"é\"\nb", 9), (2, 1));
        assert_eq!(line_column("é = 1", 3), (1, 3));
    }

    #[test]
    fn key_path_names_the_array_table_entry() {
        let text = "cluster_name = \"x\"\n[[instance]]\nname = \"a\"\n[[instance]]\nname = \"b\"\nprio = 1\n";
        let offset = text.find("prio").unwrap();
        assert_eq!(key_path_at(text, offset), "instance[1].prio");
    }

    #[test]
    fn key_path_at_top_level() {
        assert_eq!(key_path_at("cluster_name = 1\n", 15), "cluster_name");
    }
}
