//! `[[sync_group]]`: instances that move together (vipd_vrrp::sync_group).

use super::super::raw::{RawSyncGroup, S};
use super::super::{InstanceConfig, SyncGroupConfig};
use super::Validator;

impl Validator<'_> {
    /// Every `[[sync_group]]`: a unique name, two or more defined instances, each instance in
    /// at most one group.
    pub(super) fn sync_groups(
        &mut self,
        raw: &[S<RawSyncGroup>],
        instances: &[InstanceConfig],
    ) -> Vec<SyncGroupConfig> {
        let mut groups: Vec<SyncGroupConfig> = Vec::new();
        for g in raw {
            let r = g.get_ref();
            let name = r.name.get_ref().clone();
            let key = |k: &str| format!("sync_group {name:?}: {k}");
            if name.is_empty() || groups.iter().any(|o| o.name == name) {
                self.err(
                    r.name.span(),
                    "sync_group: name",
                    format!("{name:?}: a group needs a name, unique among the sync groups"),
                );
                continue;
            }
            let mut members: Vec<String> = Vec::new();
            for i in r.instances.get_ref() {
                let n = i.get_ref();
                let problem = if !instances.iter().any(|x| &x.name == n) {
                    let defined: Vec<&str> = instances.iter().map(|x| x.name.as_str()).collect();
                    Some(format!(
                        "there is no [[instance]] named {n:?} (defined: {})",
                        if defined.is_empty() {
                            "none".into()
                        } else {
                            defined.join(", ")
                        }
                    ))
                } else if members.contains(n) {
                    Some(format!("{n:?} is listed twice"))
                } else {
                    groups
                        .iter()
                        .find(|o| o.instances.contains(n))
                        .map(|other| {
                            format!(
                            "{n:?} is already in sync group {:?}; an instance follows one group",
                            other.name
                        )
                        })
                };
                match problem {
                    Some(p) => self.err(i.span(), key("instances"), p),
                    None => members.push(n.clone()),
                }
            }
            if members.len() < 2 {
                self.err(
                    r.instances.span(),
                    key("instances"),
                    "a sync group needs two or more instances",
                );
                continue;
            }
            groups.push(SyncGroupConfig {
                name,
                instances: members,
            });
        }
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::raw::RawConfig;
    use super::super::testing::validator;
    use super::*;

    fn run(text: &str, names: &[&str]) -> (Vec<SyncGroupConfig>, Vec<String>) {
        let raw: RawConfig = toml::from_str(text).expect("config");
        let instances: Vec<InstanceConfig> = names
            .iter()
            .map(|n| {
                crate::config::Config::parse(
                    &format!("cluster_name = \"ostest\"\n[[instance]]\nname = \"{n}\"\nvips = [\"192.0.2.5\"]\n"),
                    "/x.toml",
                )
                .expect("instance")
                .instances[0]
                .clone()
            })
            .collect();
        let mut v = validator(text);
        let g = v.sync_groups(&raw.sync_group, &instances);
        (
            g,
            v.errors
                .iter()
                .map(|d| format!("{}: {}", d.key, d.message))
                .collect(),
        )
    }

    #[test]
    fn a_group_of_two_instances_is_accepted() {
        let (g, e) = run(
            "[[sync_group]]\nname = \"VG_API\"\ninstances = [\"api\", \"api-v6\"]\n",
            &["api", "api-v6"],
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(g[0].instances, ["api", "api-v6"]);
    }

    #[test]
    fn unknown_shared_and_lonely_members_are_refused() {
        let (g, e) = run(
            "[[sync_group]]\nname = \"a\"\ninstances = [\"api\", \"api-v6\"]\n\
             [[sync_group]]\nname = \"b\"\ninstances = [\"api\", \"nope\"]\n",
            &["api", "api-v6"],
        );
        assert_eq!(g.len(), 1);
        assert!(
            e.iter().any(|m| m.contains("already in sync group \"a\"")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("no [[instance]] named \"nope\"")),
            "{e:?}"
        );
        assert!(e.iter().any(|m| m.contains("two or more")), "{e:?}");
    }
}
