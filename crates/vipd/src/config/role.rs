//! `role = "bootstrap" | "master" | "worker"`: OpenShift's keepalived settings as defaults
//! (openshift.md section 3), so that a node's file needs only the cluster identity, the VIPs and
//! its peers.
//!
//! A role contributes instances (`api` and / or `ingress`, one per address family of the VIPs)
//! and the checks they track. An `[[instance]]` of the same name overrides the role's values key
//! by key; a `[[check]]` of the same name replaces the role's check. Every value a role supplied
//! is recorded so `vipd check-config` can say "priority 40 (role master default)".

use std::fmt;

use crate::health::openshift::{
    MASTER_API_PRIORITY, MASTER_API_TRACK, MASTER_INGRESS_PRIORITY, MASTER_INGRESS_TRACK,
};

/// The OpenShift node role whose keepalived settings are the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Bootstrap,
    Master,
    Worker,
}

/// Priority of the bootstrap's API instance: above every master's 40..68, so the bootstrap keeps
/// the API VIP until it resigns (openshift.md section 3, bootstrap hand-off).
pub const BOOTSTRAP_API_PRIORITY: u8 = 70;

/// The bootstrap hand-off's defaults (`[handoff]`, openshift.md section 3): once the bootstrap's
/// own API has answered, five failed `/readyz` probes one second apart, with Ironic down too,
/// make the bootstrap give the API VIP to the masters. The same values apply to a `[handoff]`
/// table written on a node without `role = "bootstrap"`.
pub mod handoff {
    use std::time::Duration;

    /// The bootstrap's own kube-apiserver, TLS not verified (loopback only), as `curl -k` did.
    pub const PROBE: &str = "https://localhost:6443/readyz";
    /// Ironic on the bootstrap: while it still answers, the installer is not done with the
    /// bootstrap and the API VIP stays.
    pub const ALSO_DOWN: [&str; 1] = ["http://localhost:6385/v1"];
    pub const INTERVAL: Duration = Duration::from_secs(1);
    /// Consecutive `/readyz` failures that (with every `also_down` probe failing) hand off.
    pub const FAILURES: u32 = 5;
    /// Consecutive `/readyz` successes after a hand-off that rejoin the election.
    pub const RECOVERIES: u32 = 3;
    /// Instances handed off when `instance` is not written: the role's API instance of each
    /// address family (see the naming in validate/roles.rs).
    pub const INSTANCES: [&str; 3] = ["api", "api-v4", "api-v6"];
}

/// Which VIPs a role instance carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VipKind {
    Api,
    Ingress,
}

impl VipKind {
    /// The instance name and DNS role (`api`, `ingress`).
    pub fn name(self) -> &'static str {
        match self {
            VipKind::Api => "api",
            VipKind::Ingress => "ingress",
        }
    }

    /// The top-level key listing these VIPs.
    pub fn vips_key(self) -> &'static str {
        match self {
            VipKind::Api => "api_vips",
            VipKind::Ingress => "ingress_vips",
        }
    }
}

/// One instance a role defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleInstance {
    pub kind: VipKind,
    pub priority: u8,
    /// Checks tracked, with their weights (the presets of `health::openshift`).
    pub track: &'static [(&'static str, i32)],
    /// The bootstrap advertises to this instance without being one of its `unicast_peers`
    /// (a master's API instance, openshift.md section 3), so unicast source checking is off by
    /// default unless `accept_from` names the bootstrap.
    pub hears_bootstrap: bool,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Bootstrap, Role::Master, Role::Worker];

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == text)
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Bootstrap => "bootstrap",
            Role::Master => "master",
            Role::Worker => "worker",
        }
    }

    /// The instances OpenShift runs on such a node.
    pub fn instances(self) -> &'static [RoleInstance] {
        const BOOTSTRAP: [RoleInstance; 1] = [RoleInstance {
            kind: VipKind::Api,
            priority: BOOTSTRAP_API_PRIORITY,
            track: &[],
            hears_bootstrap: false,
        }];
        const MASTER: [RoleInstance; 2] = [
            RoleInstance {
                kind: VipKind::Api,
                priority: MASTER_API_PRIORITY,
                track: &MASTER_API_TRACK,
                hears_bootstrap: true,
            },
            RoleInstance {
                kind: VipKind::Ingress,
                priority: MASTER_INGRESS_PRIORITY,
                track: &MASTER_INGRESS_TRACK,
                hears_bootstrap: false,
            },
        ];
        // Workers carry the ingress VIP with the masters' ingress settings.
        const WORKER: [RoleInstance; 1] = [RoleInstance {
            kind: VipKind::Ingress,
            priority: MASTER_INGRESS_PRIORITY,
            track: &MASTER_INGRESS_TRACK,
            hears_bootstrap: false,
        }];
        match self {
            Role::Bootstrap => &BOOTSTRAP,
            Role::Master => &MASTER,
            Role::Worker => &WORKER,
        }
    }

    /// Whether the role hands its API VIP to the masters once its own API is gone (`[handoff]`
    /// on by default). Only the bootstrap does: it exists to be replaced.
    pub fn hands_off(self) -> bool {
        matches!(self, Role::Bootstrap)
    }

    /// `"role master default"`, as printed next to a value.
    pub fn origin(self) -> String {
        format!("role {} default", self.name())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The VRRPv2 PASS password OpenShift renders, `<cluster>_api_vip` / `<cluster>_ingress_vip`.
/// Only its first 8 bytes are sent and compared (RFC 3768 section 5.3.10).
pub fn openshift_password(cluster_name: &str, kind: VipKind) -> String {
    format!("{cluster_name}_{}_vip", kind.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.name()), Some(role));
        }
        assert_eq!(Role::parse("control-plane"), None);
    }

    #[test]
    fn master_runs_api_at_40_and_ingress_at_20() {
        let m = Role::Master.instances();
        assert_eq!(
            m.iter().map(|i| (i.kind, i.priority)).collect::<Vec<_>>(),
            [(VipKind::Api, 40), (VipKind::Ingress, 20)]
        );
        assert_eq!(
            m[0].track,
            [("chk_ocp_lb", 20), ("chk_ocp_both", 5), ("chk_mcs", 3)]
        );
    }

    #[test]
    fn password_is_the_openshift_rendering() {
        assert_eq!(openshift_password("ostest", VipKind::Api), "ostest_api_vip");
        assert_eq!(
            openshift_password("ostest", VipKind::Ingress),
            "ostest_ingress_vip"
        );
    }
}
