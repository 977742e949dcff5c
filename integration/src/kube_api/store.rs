//! The node objects, the global resourceVersion and the bounded event history that watches replay
//! from and that consistent (Exact / continue) lists are rebuilt from.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::query::valid_subdomain;

/// What a change did to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Added,
    Modified,
    Deleted,
}

/// One change, kept in the history: the object after it (for a deletion, the last state with the
/// deletion's resourceVersion) and the object before it.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub kind: Kind,
    pub object: Value,
    pub prev: Option<Value>,
}

/// Why a read at a resourceVersion cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// Older than the history: compacted (the u64 is the compaction point).
    TooOld(u64),
    /// Newer than the current resourceVersion (the u64 is the current one).
    TooLarge(u64),
}

/// The state of the stand-in.
#[derive(Debug)]
pub struct Store {
    nodes: BTreeMap<String, Value>,
    /// The current global resourceVersion.
    pub rv: u64,
    /// The compaction point: new reads (lists, watches) from an older resourceVersion get 410.
    pub compacted: u64,
    /// Events up to and including this resourceVersion are gone from the history buffer (open
    /// watches behind it get 410; the buffer is what the watch cache holds, so a compaction
    /// does not end open watches).
    floor: u64,
    history: VecDeque<Event>,
    limit: usize,
    stride: u64,
    /// Bumped to end every open watch.
    pub epoch: u64,
}

impl Store {
    pub fn new(first_rv: u64, stride: u64, limit: usize) -> Self {
        Store {
            nodes: BTreeMap::new(),
            rv: first_rv,
            compacted: first_rv,
            floor: first_rv,
            history: VecDeque::new(),
            limit: limit.max(1),
            stride: stride.max(1),
            epoch: 0,
        }
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += self.stride;
        self.rv
    }

    fn record(&mut self, event: Event) {
        self.history.push_back(event);
        while self.history.len() > self.limit {
            if let Some(old) = self.history.pop_front() {
                self.floor = old.rv;
                self.compacted = self.compacted.max(old.rv);
            }
        }
    }

    /// A write to another resource of the cluster: the resourceVersion moves, no node changes.
    pub fn touch(&mut self) -> u64 {
        self.next_rv()
    }

    /// An etcd compaction at the current revision: reads from older resourceVersions fail.
    pub fn compact(&mut self) {
        self.compacted = self.rv;
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.nodes.get(name)
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Value> {
        self.nodes.values()
    }

    /// Creates a node; the server sets uid, creationTimestamp and resourceVersion.
    pub fn add(&mut self, mut node: Value) -> Result<u64, String> {
        let name = validate_new(&node)?;
        if self.nodes.contains_key(&name) {
            return Err(format!("nodes \"{name}\" already exists"));
        }
        let rv = self.next_rv();
        node["apiVersion"] = json!("v1");
        node["kind"] = json!("Node");
        let meta = &mut node["metadata"];
        meta["uid"] = json!(uid(&name, rv));
        meta["creationTimestamp"] = json!(rfc3339(SystemTime::now()));
        meta["resourceVersion"] = json!(rv.to_string());
        self.nodes.insert(name, node.clone());
        self.record(Event {
            rv,
            kind: Kind::Added,
            object: node,
            prev: None,
        });
        Ok(rv)
    }

    /// Changes a node through `change`; a change that leaves the object as it was writes nothing
    /// (no new resourceVersion, no event), as an apiserver no-op update.
    pub fn update(&mut self, name: &str, change: impl FnOnce(&mut Value)) -> Result<u64, String> {
        let old = self
            .nodes
            .get(name)
            .ok_or_else(|| format!("nodes \"{name}\" not found"))?;
        let mut new = old.clone();
        change(&mut new);
        if !new.is_object()
            || !new["metadata"].is_object()
            || new["metadata"]["name"] != json!(name)
        {
            return Err("metadata.name: Invalid value: field is immutable".into());
        }
        for key in ["uid", "creationTimestamp", "resourceVersion"] {
            new["metadata"][key] = old["metadata"][key].clone();
        }
        new["apiVersion"] = json!("v1");
        new["kind"] = json!("Node");
        if new == *old {
            return Ok(self.rv);
        }
        let prev = old.clone();
        let rv = self.next_rv();
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.nodes.insert(name.to_string(), new.clone());
        self.record(Event {
            rv,
            kind: Kind::Modified,
            object: new,
            prev: Some(prev),
        });
        Ok(rv)
    }

    /// Deletes a node; the DELETED event carries its last state at the deletion's resourceVersion.
    pub fn delete(&mut self, name: &str) -> Result<u64, String> {
        let prev = self
            .nodes
            .remove(name)
            .ok_or_else(|| format!("nodes \"{name}\" not found"))?;
        let rv = self.next_rv();
        let mut last = prev.clone();
        last["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.record(Event {
            rv,
            kind: Kind::Deleted,
            object: last,
            prev: Some(prev),
        });
        Ok(rv)
    }

    /// Whether a read at `rv` can be served from the history.
    pub fn check_at(&self, rv: u64) -> Result<(), At> {
        if rv > self.rv {
            Err(At::TooLarge(self.rv))
        } else if rv < self.compacted {
            Err(At::TooOld(self.compacted))
        } else {
            Ok(())
        }
    }

    /// The nodes as they were at `rv`: the current ones with every later event undone.
    pub fn snapshot(&self, rv: u64) -> Result<BTreeMap<String, Value>, At> {
        self.check_at(rv)?;
        let mut nodes = self.nodes.clone();
        for event in self.history.iter().rev().take_while(|e| e.rv > rv) {
            let name = event.object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match (&event.kind, &event.prev) {
                (Kind::Added, _) | (_, None) => {
                    nodes.remove(&name);
                }
                (_, Some(prev)) => {
                    nodes.insert(name, prev.clone());
                }
            }
        }
        Ok(nodes)
    }

    /// The events after `rv`, oldest first, for a watch already open at `rv`.
    pub fn events_after(&self, rv: u64) -> Result<Vec<Event>, At> {
        if rv > self.rv {
            return Err(At::TooLarge(self.rv));
        }
        if rv < self.floor {
            return Err(At::TooOld(self.floor));
        }
        Ok(self.history.iter().filter(|e| e.rv > rv).cloned().collect())
    }
}

fn validate_new(node: &Value) -> Result<String, String> {
    if !node.is_object() || !node["metadata"].is_object() {
        return Err("a node needs to be a JSON object with metadata".into());
    }
    for (key, want) in [("apiVersion", "v1"), ("kind", "Node")] {
        if !node[key].is_null() && node[key] != json!(want) {
            return Err(format!(
                "{key}: Invalid value: {}: must be {want:?}",
                node[key]
            ));
        }
    }
    let name = node["metadata"]["name"].as_str().unwrap_or_default();
    if !valid_subdomain(name) {
        return Err(format!(
            "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
        ));
    }
    Ok(name.to_string())
}

/// A UUID-shaped uid, different for every creation.
fn uid(name: &str, rv: u64) -> String {
    let mut parts = [0u64; 2];
    for (i, part) in parts.iter_mut().enumerate() {
        let mut h = DefaultHasher::new();
        (name, rv, i, SystemTime::now()).hash(&mut h);
        *part = h.finish();
    }
    let hex = format!("{:016x}{:016x}", parts[0], parts[1]);
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn split(t: SystemTime) -> (i64, u64) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    ((secs / 86_400) as i64, secs % 86_400)
}

/// RFC 3339 in UTC with seconds, as metav1.Time is written: `2023-01-04T14:23:02Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let (days, s) = split(t);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// An HTTP `Date` header value: `Tue, 15 Nov 1994 08:12:31 GMT`.
pub fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, s) = split(t);
    let (y, m, d) = civil(days);
    let wd = DAYS[days.rem_euclid(7) as usize];
    let mon = MONTHS[(m as usize).saturating_sub(1) % 12];
    format!(
        "{wd}, {d:02} {mon} {y:04} {:02}:{:02}:{:02} GMT",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A node object in the shape `kubectl get nodes -o json` items have on OpenShift (see
/// `/tmp/research/issue10.md` section 5). `roles` become `node-role.kubernetes.io/<role>: ""`
/// labels (e.g. `["master", "control-plane"]`, `["worker"]`); a master that is not also a worker
/// gets the `node-role.kubernetes.io/master:NoSchedule` taint. `addresses` are
/// `(type, address)` pairs: `("InternalIP", "192.168.111.20")`, `("Hostname", "master-0")`.
/// uid, creationTimestamp and resourceVersion are set by the server when the node is added.
pub fn node(name: &str, roles: &[&str], addresses: &[(&str, &str)]) -> Value {
    let mut labels = Map::new();
    for (k, v) in [
        ("beta.kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        ("node.openshift.io/os_id", "rhcos"),
    ] {
        labels.insert(k.into(), json!(v));
    }
    for role in roles {
        labels.insert(format!("node-role.kubernetes.io/{role}"), json!(""));
    }
    let pool = if roles.contains(&"master") {
        "master"
    } else {
        "worker"
    };
    let mut spec = node_spec(name);
    if roles.contains(&"master") && !roles.contains(&"worker") {
        spec["taints"] = json!([{"effect": "NoSchedule", "key": "node-role.kubernetes.io/master"}]);
    }
    let addresses: Vec<Value> = addresses
        .iter()
        .map(|(t, a)| json!({"address": a, "type": t}))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                "machineconfiguration.openshift.io/controlPlaneTopology": "HighlyAvailable",
                "machineconfiguration.openshift.io/currentConfig": format!("rendered-{pool}-5b1c8c3e0e4d3b1a"),
                "machineconfiguration.openshift.io/desiredConfig": format!("rendered-{pool}-5b1c8c3e0e4d3b1a"),
                "machineconfiguration.openshift.io/state": "Done",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
        "status": node_status(addresses),
    })
}

fn node_spec(name: &str) -> Value {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    let cidr = format!("10.128.{}.0/23", (h.finish() % 128) * 2);
    json!({"podCIDR": cidr, "podCIDRs": [cidr]})
}

fn node_status(addresses: Vec<Value>) -> Value {
    let now = rfc3339(SystemTime::now());
    let condition = |t: &str, status: &str, reason: &str, message: &str| {
        json!({"type": t, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let resources = json!({"cpu": "8", "ephemeral-storage": "104322028Ki", "hugepages-1Gi": "0",
                           "hugepages-2Mi": "0", "memory": "16371576Ki", "pods": "250"});
    json!({
        "addresses": addresses,
        "allocatable": resources,
        "capacity": resources,
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "architecture": "amd64",
            "bootID": "6d0c0b7e-3f0b-4a2e-9c41-2b0f5b9e8a11",
            "containerRuntimeVersion": "cri-o://1.33.5-3.rhaos4.20.gitd0ea985.el9",
            "kernelVersion": "5.14.0-570.49.1.el9_6.x86_64",
            "kubeProxyVersion": "",
            "kubeletVersion": "v1.33.5",
            "machineID": "b1c3e0e4d3b14a5f9c8e7d6a5b4c3d2e",
            "operatingSystem": "linux",
            "osImage": "Red Hat Enterprise Linux CoreOS 9.6.20251015-1 (Plow)",
            "systemUUID": "4c4c4544-0042-3510-8053-b3c04f4e3432",
        },
    })
}

/// Sets the node's `Ready` condition to `True` or `False` (and its transition time).
pub fn set_ready(node: &mut Value, ready: bool) {
    let now = rfc3339(SystemTime::now());
    let (status, reason, message) = if ready {
        ("True", "KubeletReady", "kubelet is posting ready status")
    } else {
        (
            "Unknown",
            "NodeStatusUnknown",
            "Kubelet stopped posting node status.",
        )
    };
    if let Some(conditions) = node["status"]["conditions"].as_array_mut() {
        for c in conditions.iter_mut().filter(|c| c["type"] == "Ready") {
            if c["status"] != status {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
    }
}

/// RFC 7386 JSON merge patch: objects merge, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(fields) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Some(obj) = target.as_object_mut() {
        for (k, v) in fields {
            if v.is_null() {
                obj.remove(k);
            } else {
                merge_patch(obj.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_672_842_182);
        assert_eq!(rfc3339(t), "2023-01-04T14:23:02Z");
        assert_eq!(http_date(t), "Wed, 04 Jan 2023 14:23:02 GMT");
    }

    #[test]
    fn snapshots_undo_later_events() {
        let mut s = Store::new(100, 1, 10);
        s.add(node("a", &["master"], &[("InternalIP", "10.0.0.1")]))
            .unwrap();
        let at = s.rv;
        s.update("a", |n| n["metadata"]["labels"]["x"] = json!("y"))
            .unwrap();
        s.add(node("b", &[], &[])).unwrap();
        s.delete("a").unwrap();
        let snap = s.snapshot(at).unwrap();
        assert_eq!(snap.len(), 1);
        assert!(snap["a"]["metadata"]["labels"]["x"].is_null());
        assert_eq!(s.events_after(at).unwrap().len(), 3);
        s.compact();
        assert_eq!(s.snapshot(at), Err(At::TooOld(s.rv)));
        assert_eq!(
            s.events_after(at).unwrap().len(),
            3,
            "open watches keep their events"
        );
        for _ in 0..10 {
            s.touch();
            s.add(node("c", &[], &[])).unwrap();
            s.delete("c").unwrap();
        }
        assert!(matches!(s.events_after(at), Err(At::TooOld(_))));
    }
}
