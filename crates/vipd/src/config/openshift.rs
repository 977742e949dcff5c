//! Cluster identity read from the files an OpenShift installation already has:
//!
//! - the Infrastructure manifest `cluster-infrastructure-02-config.yml`: `status.apiServerURL` /
//!   `status.apiServerInternalURI` (`https://api.<cluster>.<base>:6443`), and on newer releases the
//!   VIPs in `status.platformStatus.baremetal.apiServerInternalIPs` / `ingressIPs`;
//! - `install-config.yaml`: `metadata.name`, `baseDomain`, `platform.baremetal.apiVIPs` /
//!   `ingressVIPs` (the singular `apiVIP` / `ingressVIP` before OpenShift 4.12).
//!
//! Both files are plain block-style YAML written by tools. A general YAML library would be a
//! large dependency for six keys (and `serde_yaml` is archived upstream), so this is a small
//! reader of the subset those files use: nested mappings by indentation, block and flow
//! sequences of scalars, quoted scalars, comments, and block scalars (`|`, `>`), which it skips.
//! Anchors, aliases, multi-document streams and flow mappings are not understood; the keys read
//! here never use them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// What an OpenShift file told us.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterIdentity {
    pub cluster_name: String,
    pub base_domain: String,
    /// API VIPs, in file order (empty when the file does not carry them).
    pub api_vips: Vec<IpAddr>,
    pub ingress_vips: Vec<IpAddr>,
    /// Which keys the values came from, for `vipd check-config` (e.g. `metadata.name`).
    pub keys: Vec<String>,
}

/// A file that could not give the cluster identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {key}: {message}", file.display())]
pub struct OpenShiftFileError {
    pub file: PathBuf,
    /// The key looked for, e.g. `status.apiServerURL`.
    pub key: String,
    /// What was found instead and what would be accepted.
    pub message: String,
}

/// Reads an Infrastructure manifest (`cluster-infrastructure-02-config.yml`).
pub fn read_infrastructure(path: &Path) -> Result<ClusterIdentity, OpenShiftFileError> {
    let text = read(path)?;
    parse_infrastructure(&text, path)
}

/// Reads an `install-config.yaml`.
pub fn read_install_config(path: &Path) -> Result<ClusterIdentity, OpenShiftFileError> {
    let text = read(path)?;
    parse_install_config(&text, path)
}

fn read(path: &Path) -> Result<String, OpenShiftFileError> {
    std::fs::read_to_string(path).map_err(|e| OpenShiftFileError {
        file: path.to_path_buf(),
        key: "(file)".into(),
        message: format!("cannot read: {e}"),
    })
}

/// The identity in an Infrastructure manifest's text; `path` is only used in messages.
pub fn parse_infrastructure(
    text: &str,
    path: &Path,
) -> Result<ClusterIdentity, OpenShiftFileError> {
    let doc = Yaml::parse(text);
    let error = |key: &str, message: String| OpenShiftFileError {
        file: path.to_path_buf(),
        key: key.into(),
        message,
    };
    if let Some(kind) = doc.scalar("kind") {
        if kind != "Infrastructure" {
            return Err(error(
                "kind",
                format!("found {kind:?}; expected an Infrastructure manifest (cluster-infrastructure-02-config.yml)"),
            ));
        }
    }
    // The internal URI names `api-int.<cluster>.<base>`, the external one `api.<cluster>.<base>`;
    // either gives the same two parts. The external one is tried first: older manifests lack
    // the internal one.
    let mut tried = Vec::new();
    let mut identity = None;
    for key in ["status.apiServerURL", "status.apiServerInternalURI"] {
        if let Some(url) = doc.scalar(key) {
            match split_api_url(&url) {
                Ok((cluster, base)) => {
                    identity = Some(ClusterIdentity {
                        cluster_name: cluster,
                        base_domain: base,
                        keys: vec![key.to_owned()],
                        ..Default::default()
                    });
                    break;
                }
                Err(why) => tried.push(format!("{key} = {url:?} {why}")),
            }
        }
    }
    let Some(mut identity) = identity else {
        let message = if tried.is_empty() {
            "neither status.apiServerURL nor status.apiServerInternalURI is present; expected e.g. apiServerURL: https://api.ostest.example.com:6443".to_owned()
        } else {
            tried.join("; ")
        };
        return Err(error("status.apiServerURL", message));
    };
    let vips_key = "status.platformStatus.baremetal";
    for (key, out) in [
        ("apiServerInternalIPs", &mut identity.api_vips),
        ("ingressIPs", &mut identity.ingress_vips),
    ] {
        let full = format!("{vips_key}.{key}");
        if let Some(list) = doc.list(&full) {
            *out = addresses(&list, path, &full)?;
            identity.keys.push(full);
        }
    }
    Ok(identity)
}

/// The identity in an `install-config.yaml` text; `path` is only used in messages.
pub fn parse_install_config(
    text: &str,
    path: &Path,
) -> Result<ClusterIdentity, OpenShiftFileError> {
    let doc = Yaml::parse(text);
    let error = |key: &str, message: String| OpenShiftFileError {
        file: path.to_path_buf(),
        key: key.into(),
        message,
    };
    let cluster_name = doc.scalar("metadata.name").ok_or_else(|| {
        error(
            "metadata.name",
            "not found; expected the cluster name under metadata:, e.g. \"  name: ostest\"".into(),
        )
    })?;
    let base_domain = doc.scalar("baseDomain").ok_or_else(|| {
        error(
            "baseDomain",
            "not found; expected a top-level baseDomain: example.com".into(),
        )
    })?;
    let mut identity = ClusterIdentity {
        cluster_name,
        base_domain: base_domain.trim_end_matches('.').to_owned(),
        keys: vec!["metadata.name".into(), "baseDomain".into()],
        ..Default::default()
    };
    for (plural, singular, out) in [
        ("apiVIPs", "apiVIP", &mut identity.api_vips),
        ("ingressVIPs", "ingressVIP", &mut identity.ingress_vips),
    ] {
        let plural = format!("platform.baremetal.{plural}");
        let singular = format!("platform.baremetal.{singular}");
        if let Some(list) = doc.list(&plural) {
            *out = addresses(&list, path, &plural)?;
            identity.keys.push(plural);
        } else if let Some(one) = doc.scalar(&singular) {
            *out = addresses(&[one], path, &singular)?;
            identity.keys.push(singular);
        }
    }
    Ok(identity)
}

fn addresses(list: &[String], path: &Path, key: &str) -> Result<Vec<IpAddr>, OpenShiftFileError> {
    list.iter()
        .map(|text| {
            text.parse().map_err(|_| OpenShiftFileError {
                file: path.to_path_buf(),
                key: key.into(),
                message: format!("{text:?} is not an IP address; expected addresses such as 192.0.2.5 or 2001:db8::5"),
            })
        })
        .collect()
}

/// `https://api.<cluster>.<base>:6443[/...]` (or `api-int.`) -> (cluster, base).
fn split_api_url(url: &str) -> Result<(String, String), &'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("is not an http(s) URL")?;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let tail = host
        .strip_prefix("api.")
        .or_else(|| host.strip_prefix("api-int."))
        .ok_or("does not name api.<cluster>.<base domain> (nor api-int.)")?;
    match tail.split_once('.') {
        Some((cluster, base)) if !cluster.is_empty() && !base.is_empty() => {
            Ok((cluster.to_owned(), base.to_owned()))
        }
        _ => Err("has no base domain after the cluster name"),
    }
}

/// The subset of YAML described in the module comment, flattened to dotted key paths.
struct Yaml {
    /// (`a.b.c`, value): scalars and sequences of scalars, in file order.
    entries: Vec<(String, Value)>,
}

enum Value {
    Scalar(String),
    List(Vec<String>),
}

impl Yaml {
    fn parse(text: &str) -> Yaml {
        let mut entries: Vec<(String, Value)> = Vec::new();
        // Open mappings: (indent of the key, key).
        let mut stack: Vec<(usize, String)> = Vec::new();
        // A block scalar being skipped: lines indented deeper than this belong to it.
        let mut skip_deeper_than: Option<usize> = None;
        for raw_line in text.lines() {
            let content = raw_line.trim_start();
            let indent = raw_line.len() - content.len();
            if let Some(limit) = skip_deeper_than {
                if content.is_empty() || indent > limit {
                    continue;
                }
                skip_deeper_than = None;
            }
            if content.is_empty() || content.starts_with('#') || content.starts_with("---") {
                continue;
            }
            if let Some(item) =
                content
                    .strip_prefix("- ")
                    .or(if content == "-" { Some("") } else { None })
            {
                // A sequence item belongs to the nearest key at this indent or shallower
                // (block sequences may sit at their key's own indent).
                while stack.last().is_some_and(|(i, _)| *i > indent) {
                    stack.pop();
                }
                let path = join(&stack);
                if let Some((k, v)) = split_key(item) {
                    // A mapping inside a sequence (e.g. hosts, machineNetwork): none of the keys
                    // read here live there; its keys are kept under the sequence's path.
                    if v.is_empty() {
                        stack.push((indent + 2, k));
                    } else {
                        entries.push((format!("{path}.{k}"), Value::Scalar(scalar(&v))));
                    }
                    continue;
                }
                match entries.iter_mut().rev().find(|(p, _)| *p == path) {
                    Some((_, Value::List(items))) => items.push(scalar(item)),
                    _ => entries.push((path, Value::List(vec![scalar(item)]))),
                }
                continue;
            }
            let Some((key, value)) = split_key(content) else {
                continue;
            };
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            let mut path = join(&stack);
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&key);
            let value = strip_comment(&value);
            if value.is_empty() {
                stack.push((indent, key));
            } else if value.starts_with('|') || value.starts_with('>') {
                skip_deeper_than = Some(indent);
            } else if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
                let items = inner
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(scalar)
                    .collect();
                entries.push((path, Value::List(items)));
            } else {
                entries.push((path, Value::Scalar(scalar(value))));
            }
        }
        Yaml { entries }
    }

    fn scalar(&self, path: &str) -> Option<String> {
        self.entries.iter().find_map(|(p, v)| match v {
            Value::Scalar(s) if p == path && !s.is_empty() => Some(s.clone()),
            _ => None,
        })
    }

    fn list(&self, path: &str) -> Option<Vec<String>> {
        self.entries.iter().find_map(|(p, v)| match v {
            Value::List(items) if p == path => Some(items.clone()),
            _ => None,
        })
    }
}

fn join(stack: &[(usize, String)]) -> String {
    stack
        .iter()
        .map(|(_, k)| k.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

/// `key: value` or `key:` (a quoted key is unquoted); `None` for anything else.
fn split_key(content: &str) -> Option<(String, String)> {
    let (key, value) = if let Some(k) = content.strip_suffix(':') {
        (k, "")
    } else {
        content.split_once(": ")?
    };
    let key = scalar(key.trim());
    if key.is_empty() || key.contains(' ') && !content.starts_with(['"', '\'']) {
        return None;
    }
    Some((key, value.trim().to_owned()))
}

/// Removes a trailing ` # comment` from an unquoted value.
fn strip_comment(value: &str) -> &str {
    if value.starts_with(['"', '\'']) {
        return value;
    }
    match value.find(" #") {
        Some(i) => value[..i].trim_end(),
        None => value,
    }
}

fn scalar(text: &str) -> String {
    let t = strip_comment(text.trim());
    for q in ['"', '\''] {
        if let Some(inner) = t.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    t.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_url_splits_into_cluster_and_base_domain() {
        assert_eq!(
            split_api_url("https://api.ostest.test.metalkube.org:6443"),
            Ok(("ostest".into(), "test.metalkube.org".into()))
        );
        assert_eq!(
            split_api_url("https://api-int.cnf10.example.com:6443/"),
            Ok(("cnf10".into(), "example.com".into()))
        );
        assert_eq!(
            split_api_url("https://192.0.2.5:6443"),
            Err("does not name api.<cluster>.<base domain> (nor api-int.)")
        );
        assert_eq!(
            split_api_url("https://api.ostest:6443"),
            Err("has no base domain after the cluster name")
        );
    }

    #[test]
    fn block_sequence_at_the_keys_own_indent_is_read() {
        let doc = Yaml::parse("platform:\n  baremetal:\n    apiVIPs:\n    - 192.0.2.5\n    - 2001:db8::5\n    ingressVIPs: ['192.0.2.10']\n");
        assert_eq!(
            doc.list("platform.baremetal.apiVIPs"),
            Some(vec!["192.0.2.5".to_owned(), "2001:db8::5".to_owned()])
        );
        assert_eq!(
            doc.list("platform.baremetal.ingressVIPs"),
            Some(vec!["192.0.2.10".to_owned()])
        );
    }

    #[test]
    fn block_scalars_are_skipped_whatever_they_contain() {
        let doc = Yaml::parse(
            "sshKey: |\n  baseDomain: wrong.example\nbaseDomain: example.com # the real one\n",
        );
        assert_eq!(doc.scalar("baseDomain"), Some("example.com".to_owned()));
    }

    #[test]
    fn keys_inside_sequence_mappings_do_not_leak_to_the_parent() {
        let doc =
            Yaml::parse("metadata:\n  name: ostest\ncompute:\n- name: worker\n  replicas: 2\n");
        assert_eq!(doc.scalar("metadata.name"), Some("ostest".to_owned()));
        assert_eq!(doc.scalar("compute.name"), Some("worker".to_owned()));
        assert_eq!(doc.scalar("name"), None);
    }
}
