//! Sync groups (keepalived's `vrrp_sync_group`): virtual routers that move together, so that
//! the VIPs they carry stay on one node. OpenShift renders them on OpenStack dual-stack, where
//! the IPv4 and the IPv6 API VIP share one Neutron port and must not be split across nodes.
//!
//! The group sees every state change of its members and answers with what the other members
//! must do ([`SyncCommand`], carried out with [`crate::Router::sync`]):
//!
//! - a member becomes Master: the others that are Backup become Master too;
//! - a member leaves Master for Backup (a better router took over): the others that are Master
//!   step down, make-before-break (priority-0 advert, VIPs kept until the new Master is heard);
//! - a member goes to Fault: the others go to Fault; when it leaves Fault, those it took along
//!   leave it too.
//!
//! A member reaching the state the group already asked of it triggers nothing more, so the
//! answers cannot echo between members. As with keepalived, a group whose members keep hearing
//! different Masters (one family's adverts lost between two nodes) can move back and forth; the
//! members' own timers bound how fast.

use crate::state::State;

/// What a member of a sync group must do because another member changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncCommand {
    /// Become Master now (only from Backup).
    BecomeMaster,
    /// Leave Master make-before-break and stay Backup (only from Master).
    StepDown,
    /// Enter (true) or leave (false) Fault with the member that did.
    Fault(bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    name: String,
    state: State,
    /// In Fault because another member was (so it leaves Fault with it).
    faulted_by_group: bool,
}

/// One sync group: its members' last known states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    name: String,
    members: Vec<Member>,
}

impl SyncGroup {
    /// A group of the named members, all in Initialize.
    pub fn new(name: impl Into<String>, members: impl IntoIterator<Item = String>) -> SyncGroup {
        SyncGroup {
            name: name.into(),
            members: members
                .into_iter()
                .map(|name| Member {
                    name,
                    state: State::Initialize,
                    faulted_by_group: false,
                })
                .collect(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `member` belongs to the group.
    pub fn contains(&self, member: &str) -> bool {
        self.members.iter().any(|m| m.name == member)
    }

    /// Member `member` is now in state `to`. Returns what the other members must do, by name.
    /// Unknown members change nothing.
    pub fn on_state(&mut self, member: &str, to: State) -> Vec<(String, SyncCommand)> {
        let Some(i) = self.members.iter().position(|m| m.name == member) else {
            return Vec::new();
        };
        let from = std::mem::replace(&mut self.members[i].state, to);
        if from == to {
            return Vec::new();
        }
        if from == State::Fault {
            self.members[i].faulted_by_group = false;
        }
        let mut out = Vec::new();
        for (j, other) in self.members.iter_mut().enumerate() {
            if j == i {
                continue;
            }
            let command = match (from, to, other.state) {
                (_, State::Master, State::Backup) => Some(SyncCommand::BecomeMaster),
                (State::Master, State::Backup, State::Master) => Some(SyncCommand::StepDown),
                (_, State::Fault, s) if s != State::Fault && s != State::Initialize => {
                    other.faulted_by_group = true;
                    Some(SyncCommand::Fault(true))
                }
                (State::Fault, _, State::Fault) if other.faulted_by_group => {
                    other.faulted_by_group = false;
                    Some(SyncCommand::Fault(false))
                }
                _ => None,
            };
            if let Some(c) = command {
                out.push((other.name.clone(), c));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> SyncGroup {
        let mut g = SyncGroup::new("VG_API", ["api-v4".to_string(), "api-v6".to_string()]);
        g.on_state("api-v4", State::Backup);
        g.on_state("api-v6", State::Backup);
        g
    }

    #[test]
    fn one_member_becoming_master_takes_the_backups_along_once() {
        let mut g = group();
        assert_eq!(
            g.on_state("api-v4", State::Master),
            [("api-v6".to_string(), SyncCommand::BecomeMaster)]
        );
        // The commanded member arriving asks nothing of the first one.
        assert!(g.on_state("api-v6", State::Master).is_empty());
    }

    #[test]
    fn a_master_yielding_makes_the_others_step_down_but_a_resign_does_not_echo() {
        let mut g = group();
        g.on_state("api-v4", State::Master);
        g.on_state("api-v6", State::Master);
        assert_eq!(
            g.on_state("api-v4", State::Backup),
            [("api-v6".to_string(), SyncCommand::StepDown)]
        );
        // api-v6 steps down through Resigning: nothing more is asked.
        assert!(g.on_state("api-v6", State::Resigning).is_empty());
        assert!(g.on_state("api-v6", State::Backup).is_empty());
    }

    #[test]
    fn fault_is_shared_and_lifted_together() {
        let mut g = group();
        g.on_state("api-v4", State::Master);
        g.on_state("api-v6", State::Master);
        assert_eq!(
            g.on_state("api-v6", State::Fault),
            [("api-v4".to_string(), SyncCommand::Fault(true))]
        );
        assert!(g.on_state("api-v4", State::Fault).is_empty());
        assert_eq!(
            g.on_state("api-v6", State::Backup),
            [("api-v4".to_string(), SyncCommand::Fault(false))]
        );
        // api-v4 leaves Fault because it was taken along; nothing echoes back.
        assert!(g.on_state("api-v4", State::Backup).is_empty());
    }

    #[test]
    fn unknown_members_and_repeated_states_change_nothing() {
        let mut g = group();
        assert!(g.on_state("ingress", State::Master).is_empty());
        assert!(g.on_state("api-v4", State::Backup).is_empty());
        assert!(g.contains("api-v6"));
        assert!(!g.contains("ingress"));
        assert_eq!(g.name(), "VG_API");
    }
}
