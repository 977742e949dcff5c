//! The UDP workers' scheduling policy (`ServerConfig::batch_scheduling`). A test binary of its
//! own: it reads every thread of the process, so no other server may run beside it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vipd_dns::answer::Transport;
use vipd_dns::server::{DnsServer, ForwardQuery, ServerConfig};
use vipd_dns::zone::{ClusterZone, ZoneConfig, ZoneHandle};

struct NoUpstream;

impl ForwardQuery for NoUpstream {
    async fn forward_query(&self, query: &[u8], _: Transport, _: u16) -> Vec<u8> {
        query.to_vec()
    }
}

/// The scheduling policy of this process's threads named `dns-udp-*` (field 41 of
/// /proc/self/task/TID/stat: 0 SCHED_OTHER, 3 SCHED_BATCH).
fn worker_policies() -> Vec<u32> {
    let mut policies = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.starts_with("dns-udp-") {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue; // exited meanwhile
        };
        // The fields after the command, which ends at the last ')', start with field 3.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        policies.push(after.split(' ').nth(41 - 3).unwrap().parse().unwrap());
    }
    policies
}

#[test]
fn workers_run_under_sched_batch_unless_told_not_to() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let zone = ClusterZone::new(&ZoneConfig {
        cluster_name: "ostest".into(),
        base_domain: "test.metalkube.org".into(),
        ..ZoneConfig::default()
    })
    .unwrap();
    assert!(ServerConfig::default().batch_scheduling);
    for (batch, policy) in [(true, 3), (false, 0)] {
        let config = ServerConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            workers: 2,
            batch_scheduling: batch,
            ..ServerConfig::default()
        };
        let handle = {
            let _guard = runtime.enter();
            DnsServer::start(config, ZoneHandle::new(zone.clone()), Arc::new(NoUpstream)).unwrap()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        // Each thread sets its policy as it starts.
        while worker_policies() != [policy, policy] {
            assert!(Instant::now() < deadline, "{:?}", worker_policies());
            std::thread::sleep(Duration::from_millis(5));
        }
        runtime.block_on(handle.shutdown());
    }
}
