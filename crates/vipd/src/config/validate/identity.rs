//! The cluster identity: `cluster_name`, `base_domain` and the top-level VIP lists, written in
//! the file or read from an OpenShift file (`openshift_install_config` /
//! `openshift_infrastructure`), and checked against each other.

use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::super::openshift::{self, ClusterIdentity, OpenShiftFileError};
use super::super::raw::{RawConfig, S};
use super::super::Family;
use super::names::{dns_label, dns_name};
use super::Validator;

type Reader = fn(&Path) -> Result<ClusterIdentity, OpenShiftFileError>;

/// An OpenShift file read: what it says, the span of the key naming it, and its path.
type FromFile = (ClusterIdentity, Range<usize>, PathBuf);

/// The cluster identity and top-level VIPs, wherever they came from.
pub(super) struct Identity {
    pub cluster_name: String,
    pub cluster_name_span: Range<usize>,
    pub base_domain: Option<(String, Range<usize>)>,
    /// `api_vips` / `ingress_vips`, each address with the span to blame for it.
    pub api_vips: Option<Vec<(IpAddr, Range<usize>)>>,
    pub ingress_vips: Option<Vec<(IpAddr, Range<usize>)>>,
    /// `"<file> (metadata.name, baseDomain, ...)"` when an OpenShift file was read.
    pub source: Option<String>,
}

impl Validator<'_> {
    pub(super) fn identity(&mut self, raw: &RawConfig) -> Identity {
        let from_file = self.openshift_file(raw);
        let (cluster_name, cluster_name_span) = self.cluster_name(raw, from_file.as_ref());
        let base_domain = self.base_domain(raw, from_file.as_ref());
        let mut api_vips = self.top_level_vips(&raw.api_vips, "api_vips");
        let mut ingress_vips = self.top_level_vips(&raw.ingress_vips, "ingress_vips");
        let mut source = None;
        if let Some((id, span, path)) = &from_file {
            if api_vips.is_none() && !id.api_vips.is_empty() {
                api_vips = Some(id.api_vips.iter().map(|a| (*a, span.clone())).collect());
            }
            if ingress_vips.is_none() && !id.ingress_vips.is_empty() {
                ingress_vips = Some(id.ingress_vips.iter().map(|a| (*a, span.clone())).collect());
            }
            source = Some(format!("{} ({})", path.display(), id.keys.join(", ")));
        }
        Identity {
            cluster_name,
            cluster_name_span,
            base_domain,
            api_vips,
            ingress_vips,
            source,
        }
    }

    /// The cluster name is one DNS label and the base domain a domain name. Returns the base
    /// domain as served (lower case, no trailing dot).
    pub(super) fn cluster_domain_names(&mut self, identity: &Identity) -> Option<String> {
        let cluster_name = &identity.cluster_name;
        if !identity.cluster_name_span.is_empty() || !cluster_name.is_empty() {
            if let Err(why) = dns_label(cluster_name) {
                self.err(
                    identity.cluster_name_span.clone(),
                    "cluster_name",
                    format!("{cluster_name:?} {why}; the OpenShift cluster name is one DNS label, e.g. \"ostest\""),
                );
            }
        }
        let (text, span) = identity.base_domain.as_ref()?;
        let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
        match dns_name(&name) {
            Ok(()) => Some(name),
            Err(why) => {
                self.err(
                    span.clone(),
                    "base_domain",
                    format!("{text:?} {why}; write a domain such as \"example.com\""),
                );
                None
            }
        }
    }

    /// `cluster_name`, which must agree with the OpenShift file's when both are given.
    fn cluster_name(
        &mut self,
        raw: &RawConfig,
        from_file: Option<&FromFile>,
    ) -> (String, Range<usize>) {
        let openshift_named =
            raw.openshift_install_config.is_some() || raw.openshift_infrastructure.is_some();
        match (&raw.cluster_name, from_file) {
            (Some(c), None) => (c.get_ref().trim().to_owned(), c.span()),
            (Some(c), Some((id, _, path))) => {
                let written = c.get_ref().trim();
                if written != id.cluster_name {
                    self.err(
                        c.span(),
                        "cluster_name",
                        format!(
                            "{written:?} differs from {:?} read from {}; a wrong name derives wrong VRIDs: remove cluster_name or correct it",
                            id.cluster_name,
                            path.display()
                        ),
                    );
                }
                (written.to_owned(), c.span())
            }
            (None, Some((id, span, _))) => (id.cluster_name.clone(), span.clone()),
            // A named OpenShift file that failed was reported already; asking for the name
            // again would only hide the cause.
            (None, None) if openshift_named => (String::new(), 0..0),
            (None, None) => {
                self.err(
                    0..0,
                    "(top level)",
                    "missing field `cluster_name`; set cluster_name = \"<cluster>\" (metadata.name of install-config.yaml), or openshift_install_config / openshift_infrastructure to read it",
                );
                (String::new(), 0..0)
            }
        }
    }

    /// `base_domain` as written (checked by [`Self::cluster_domain_names`]), which must agree
    /// with the OpenShift file's when both are given.
    fn base_domain(
        &mut self,
        raw: &RawConfig,
        from_file: Option<&FromFile>,
    ) -> Option<(String, Range<usize>)> {
        match (&raw.base_domain, from_file) {
            (Some(b), file) => {
                let written = b
                    .get_ref()
                    .trim()
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                if let Some((id, _, path)) = file {
                    if written != id.base_domain.to_ascii_lowercase() {
                        self.err(
                            b.span(),
                            "base_domain",
                            format!(
                                "{:?} differs from {:?} read from {}; remove base_domain or correct it",
                                b.get_ref(),
                                id.base_domain,
                                path.display()
                            ),
                        );
                    }
                }
                Some((b.get_ref().clone(), b.span()))
            }
            (None, Some((id, span, _))) => Some((id.base_domain.clone(), span.clone())),
            (None, None) => None,
        }
    }

    /// Reads `openshift_install_config` or `openshift_infrastructure` (at most one).
    fn openshift_file(&mut self, raw: &RawConfig) -> Option<FromFile> {
        let (key, text, read): (&str, &S<String>, Reader) = match (
            &raw.openshift_install_config,
            &raw.openshift_infrastructure,
        ) {
            (Some(_), Some(b)) => {
                self.err(
                        b.span(),
                        "openshift_infrastructure",
                        "is set together with openshift_install_config; set one of them (install-config.yaml also gives the VIPs)",
                    );
                return None;
            }
            (Some(a), None) => (
                "openshift_install_config",
                a,
                openshift::read_install_config,
            ),
            (None, Some(b)) => (
                "openshift_infrastructure",
                b,
                openshift::read_infrastructure,
            ),
            (None, None) => return None,
        };
        // A relative path is taken from the configuration file's directory, which is well
        // defined, unlike the daemon's working directory.
        let written = PathBuf::from(text.get_ref());
        let path = if written.is_absolute() {
            written
        } else {
            self.path
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join(written)
        };
        match read(&path) {
            Ok(id) => Some((id, text.span(), path)),
            Err(e) => {
                self.err(text.span(), key, e.to_string());
                None
            }
        }
    }

    /// `api_vips` / `ingress_vips`: at most one VIP per address family.
    fn top_level_vips(
        &mut self,
        list: &Option<S<Vec<S<String>>>>,
        key: &str,
    ) -> Option<Vec<(IpAddr, Range<usize>)>> {
        let list = list.as_ref()?;
        if list.get_ref().is_empty() {
            self.err(
                list.span(),
                key,
                "is empty; list the VIP(s), one per address family, e.g. [\"192.0.2.5\"]",
            );
        }
        let mut out: Vec<(IpAddr, Range<usize>)> = Vec::new();
        for text in list.get_ref() {
            let Some(addr) = self.vip(text, key) else {
                continue;
            };
            if out.iter().any(|(a, _)| *a == addr) {
                self.err(text.span(), key, format!("{addr} is listed twice"));
            } else if out.iter().any(|(a, _)| Family::of(*a) == Family::of(addr)) {
                // One VIP per family, as OpenShift's installer accepts (dual stack = two).
                self.err(
                    text.span(),
                    key,
                    format!(
                        "{addr} is a second {} VIP; list at most one VIP per address family",
                        Family::of(addr)
                    ),
                );
            } else {
                out.push((addr, text.span()));
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::validator;
    use super::*;

    fn identity(text: &str) -> (Identity, Option<String>, Vec<String>) {
        let raw: RawConfig = toml::from_str(text).expect("config");
        let mut v = validator(text);
        let id = v.identity(&raw);
        let base_domain = v.cluster_domain_names(&id);
        let errors = v
            .errors
            .iter()
            .map(|d| format!("{}:{}: {}: {}", d.line, d.column, d.key, d.message))
            .collect();
        (id, base_domain, errors)
    }

    #[test]
    fn base_domain_is_served_lower_case_without_the_root_dot() {
        let (_, base_domain, errors) =
            identity("cluster_name = \"ostest\"\nbase_domain = \" Example.COM. \"\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(base_domain.as_deref(), Some("example.com"));
    }

    #[test]
    fn base_domain_must_be_a_domain_name() {
        let (_, base_domain, errors) =
            identity("cluster_name = \"ostest\"\nbase_domain = \"example..com\"\n");
        assert_eq!(base_domain, None);
        assert_eq!(
            errors,
            ["2:15: base_domain: \"example..com\" is not a domain name: it is empty; write a domain such as \"example.com\""]
        );
    }

    #[test]
    fn a_failed_openshift_file_is_the_only_error() {
        // Relative to the configuration file's directory (/etc/vipd), which has no such file.
        let (id, _, errors) =
            identity("openshift_install_config = \"no-such-install-config.yaml\"\n");
        assert_eq!(id.cluster_name, "");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(
                "1:28: openshift_install_config: /etc/vipd/no-such-install-config.yaml: "
            ),
            "{errors:?}"
        );
    }

    #[test]
    fn a_written_base_domain_must_agree_with_the_openshift_file() {
        let file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/openshift/install-config.yaml");
        let text = format!(
            "openshift_install_config = {:?}\nbase_domain = \"example.com\"\n",
            file.display()
        );
        let (id, _, errors) = identity(&text);
        assert_eq!(id.cluster_name, "ostest");
        assert!(id.source.is_some());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(
                "2:15: base_domain: \"example.com\" differs from \"test.metalkube.org\" read from "
            ),
            "{errors:?}"
        );
    }
}
