//! `[kubernetes]`: peers and DNS node records from the Kubernetes API (crate::kube).

use std::time::Duration;

use super::super::raw::{RawKubernetes, S};
use super::super::{InstanceConfig, Role};
use super::Validator;
use crate::kube::{KubernetesConfig, PeerRule};

/// `settle` when not written: a changed node list must hold this long before it is applied.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(10);
const MAX_SETTLE: Duration = Duration::from_secs(600);

impl Validator<'_> {
    /// `[kubernetes]`, given the validated instances and whether `[dns]` runs.
    pub(super) fn kubernetes(
        &mut self,
        raw: &S<RawKubernetes>,
        instances: &[InstanceConfig],
        role: Option<Role>,
        dns: bool,
    ) -> Option<KubernetesConfig> {
        let r = raw.get_ref();
        let kubeconfig = self.absolute_path(&r.kubeconfig, "kubernetes: kubeconfig");
        let settle = self.kube_settle(r.settle.as_ref());
        let mut selected = Vec::new();
        for (key, list, rule) in [
            ("api_instances", &r.api_instances, PeerRule::ControlPlane),
            (
                "ingress_instances",
                &r.ingress_instances,
                PeerRule::AllNodes,
            ),
        ] {
            let names = match list {
                Some(l) => self.kube_named(l, key, instances),
                None => default_names(rule, instances),
            };
            for name in names {
                if selected
                    .iter()
                    .any(|(n, _): &(String, PeerRule)| *n == name)
                {
                    self.err(
                        raw.span(),
                        format!("kubernetes: {key}"),
                        format!("instance {name:?} is in both api_instances and ingress_instances; its peers follow one rule"),
                    );
                    continue;
                }
                selected.push((name, rule));
            }
        }
        let dns_nodes = match r.dns_nodes {
            Some(true) if !dns => {
                self.err(
                    raw.span(),
                    "kubernetes: dns_nodes",
                    "is true, but there is no [dns] table to serve node records",
                );
                false
            }
            Some(v) => v,
            None => dns,
        };
        if selected.is_empty() && !dns_nodes {
            self.warn(
                raw.span(),
                "kubernetes",
                "no instance takes its peers from the API and dns_nodes is off: the watch would change nothing",
            );
        }
        Some(KubernetesConfig {
            kubeconfig: kubeconfig?,
            settle,
            instances: selected,
            bootstrap: role == Some(Role::Bootstrap),
            dns_nodes,
        })
    }

    fn kube_settle(&mut self, text: Option<&S<String>>) -> Duration {
        let Some(text) = text else {
            return DEFAULT_SETTLE;
        };
        match self.duration(text, "kubernetes: settle") {
            Some(d) if d <= MAX_SETTLE => d,
            Some(_) => {
                self.err(
                    text.span(),
                    "kubernetes: settle",
                    format!(
                        "{:?} is too long; accepted \"0s\" (apply at once) up to \"10m\"",
                        text.get_ref()
                    ),
                );
                DEFAULT_SETTLE
            }
            None => DEFAULT_SETTLE,
        }
    }

    /// An explicit list of instance names; each must be an `[[instance]]` (or a role's).
    fn kube_named(
        &mut self,
        list: &S<Vec<S<String>>>,
        key: &str,
        instances: &[InstanceConfig],
    ) -> Vec<String> {
        let mut out = Vec::new();
        for name in list.get_ref() {
            let n = name.get_ref();
            if instances.iter().any(|i| &i.name == n) {
                if !out.contains(n) {
                    out.push(n.clone());
                }
            } else {
                let defined: Vec<&str> = instances.iter().map(|i| i.name.as_str()).collect();
                self.err(
                    name.span(),
                    format!("kubernetes: {key}"),
                    format!(
                        "there is no [[instance]] named {n:?} (defined: {})",
                        if defined.is_empty() {
                            "none".to_string()
                        } else {
                            defined.join(", ")
                        }
                    ),
                );
            }
        }
        out
    }
}

/// Without an explicit list: the instances the roles name `api`, `api-v4`, `api-v6` (or
/// `ingress...`), i.e. OpenShift's API and ingress VIPs.
fn default_names(rule: PeerRule, instances: &[InstanceConfig]) -> Vec<String> {
    let stem = match rule {
        PeerRule::ControlPlane => "api",
        PeerRule::AllNodes => "ingress",
    };
    instances
        .iter()
        .map(|i| &i.name)
        .filter(|n| *n == stem || n.strip_prefix(stem).is_some_and(|r| r.starts_with('-')))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::super::raw::RawConfig;
    use super::super::testing::validator;
    use super::*;

    fn kube(text: &str, names: &[&str], dns: bool) -> (Option<KubernetesConfig>, Vec<String>) {
        let raw: RawConfig = toml::from_str(text).expect("config");
        let instances: Vec<InstanceConfig> = names
            .iter()
            .map(|n| {
                let c = crate::config::Config::parse(
                    &format!("cluster_name = \"ostest\"\n[[instance]]\nname = \"{n}\"\nvips = [\"192.0.2.5\"]\n"),
                    "/x.toml",
                )
                .expect("instance");
                c.instances[0].clone()
            })
            .collect();
        let mut v = validator(text);
        let k = raw
            .kubernetes
            .as_ref()
            .and_then(|r| v.kubernetes(r, &instances, None, dns));
        let errors = v
            .errors
            .iter()
            .map(|d| format!("{}: {}", d.key, d.message))
            .collect();
        (k, errors)
    }

    #[test]
    fn defaults_pick_the_api_and_ingress_instances_and_dns_nodes_with_dns() {
        let (k, e) = kube(
            "[kubernetes]\nkubeconfig = \"/var/lib/kubelet/kubeconfig\"\n",
            &["api", "api-v6", "ingress", "other"],
            true,
        );
        assert!(e.is_empty(), "{e:?}");
        let k = k.unwrap();
        assert_eq!(k.settle, DEFAULT_SETTLE);
        assert_eq!(
            k.instances,
            [
                ("api".to_string(), PeerRule::ControlPlane),
                ("api-v6".to_string(), PeerRule::ControlPlane),
                ("ingress".to_string(), PeerRule::AllNodes)
            ]
        );
        assert!(k.dns_nodes);
        assert!(!k.bootstrap);
    }

    #[test]
    fn unknown_instances_a_relative_path_and_dns_nodes_without_dns_are_refused() {
        let (_, e) = kube(
            "[kubernetes]\nkubeconfig = \"kubeconfig\"\napi_instances = [\"nope\"]\ndns_nodes = true\nsettle = \"1h\"\n",
            &["api"],
            false,
        );
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e.iter().any(|m| m.starts_with("kubernetes: kubeconfig")));
        assert!(e
            .iter()
            .any(|m| m.contains("no [[instance]] named \"nope\"")));
        assert!(e.iter().any(|m| m.starts_with("kubernetes: dns_nodes")));
        assert!(e.iter().any(|m| m.starts_with("kubernetes: settle")));
    }

    #[test]
    fn an_instance_in_both_lists_is_refused() {
        let (_, e) = kube(
            "[kubernetes]\nkubeconfig = \"/k\"\napi_instances = [\"api\"]\ningress_instances = [\"api\"]\n",
            &["api"],
            false,
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("in both"));
    }
}
