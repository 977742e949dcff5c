//! `[http]` (the status endpoint) and `[control]` (the control socket of `vipd ctl`).

use std::path::PathBuf;

use super::super::raw::{RawControl, RawHttp, S};
use super::super::{ControlConfig, HttpConfig};
use super::values::parse_default;
use super::{Validator, DEFAULT_CONTROL_SOCKET, DEFAULT_HTTP_LISTEN};

impl Validator<'_> {
    /// `[http]`: `None` (no endpoint) when the table is absent or its `listen` is invalid.
    pub(super) fn http(&mut self, raw: Option<&S<RawHttp>>) -> Option<HttpConfig> {
        let listen = match &raw?.get_ref().listen {
            Some(l) => self.socket_addr(l, "http: listen")?,
            None => parse_default(DEFAULT_HTTP_LISTEN),
        };
        Some(HttpConfig { listen })
    }

    /// `[control]`: always present; an absolute socket path and an optional group.
    pub(super) fn control(&mut self, raw: Option<&S<RawControl>>) -> ControlConfig {
        let raw = raw.map(|c| c.get_ref());
        let socket = raw
            .and_then(|c| c.socket.as_ref())
            .and_then(|s| self.absolute_path(s, "control: socket"))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET));
        let group = raw
            .and_then(|c| c.group.as_ref())
            .and_then(|g| self.control_group(g));
        ControlConfig { socket, group }
    }

    /// `group`: a group name or number, 1 to 32 of letters, digits, `_`, `.`, `-`, not starting
    /// with `-`.
    fn control_group(&mut self, g: &S<String>) -> Option<String> {
        let name = g.get_ref();
        let valid = (1..=32).contains(&name.len())
            && !name.starts_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            self.err(
                g.span(),
                "control: group",
                format!("{name:?} is not a group name or number (1..32 of letters, digits, `_`, `.`, `-`)"),
            );
        }
        valid.then(|| name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::raw::RawConfig;
    use super::super::testing::validator;
    use super::*;

    fn parts(text: &str) -> (Option<HttpConfig>, ControlConfig, Vec<String>) {
        let raw: RawConfig = toml::from_str(text).expect("config");
        let mut v = validator(text);
        let http = v.http(raw.http.as_ref());
        let control = v.control(raw.control.as_ref());
        let errors = v
            .errors
            .iter()
            .map(|d| format!("{}:{}: {}: {}", d.line, d.column, d.key, d.message))
            .collect();
        (http, control, errors)
    }

    #[test]
    fn defaults_apply_to_written_tables_only() {
        let (http, control, errors) = parts("[http]\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(http.unwrap().listen, DEFAULT_HTTP_LISTEN.parse().unwrap());
        assert_eq!(control.socket, PathBuf::from(DEFAULT_CONTROL_SOCKET));
        assert_eq!(control.group, None);
        assert!(parts("").0.is_none());
    }

    #[test]
    fn http_listen_must_be_an_address_and_port() {
        let (http, _, errors) = parts("[http]\nlisten = \"localhost:18080\"\n");
        assert!(http.is_none());
        assert_eq!(
            errors,
            ["2:10: http: listen: \"localhost:18080\" is not an address:port; write e.g. \"0.0.0.0:53\" or \"[::1]:53\""]
        );
    }

    #[test]
    fn control_socket_is_absolute_and_group_a_name() {
        let (_, control, errors) = parts("[control]\nsocket = \"vipd.sock\"\ngroup = \"-wheel\"\n");
        assert_eq!(control.socket, PathBuf::from(DEFAULT_CONTROL_SOCKET));
        assert_eq!(control.group, None);
        assert_eq!(
            errors,
            [
                "2:10: control: socket: \"vipd.sock\" is relative; give an absolute path (the daemon's working directory is not defined)",
                "3:9: control: group: \"-wheel\" is not a group name or number (1..32 of letters, digits, `_`, `.`, `-`)",
            ]
        );
        assert_eq!(
            parts("[control]\ngroup = \"vipd-ops\"\n")
                .1
                .group
                .as_deref(),
            Some("vipd-ops")
        );
    }
}
