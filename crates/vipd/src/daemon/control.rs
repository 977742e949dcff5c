//! The local control socket behind `vipd status`, `vipd reload`, `vipd resign` and `vipd resume`.
//!
//! Protocol: the client writes one JSON request line, the daemon answers one JSON line and closes.
//! The socket is created mode 0600 (root only): it can move VIPs.
//!
//! With `[control] group`, the socket is given that group and mode 0660, and its members may
//! use it like root. Defence in depth: the daemon also checks the peer's credentials
//! (SO_PEERCRED, and the supplementary groups of the peer's process) before a `reload`,
//! `resign` or `resume`: only root, the daemon's own user and members of that group may change
//! anything, even if the socket's mode was loosened by hand; `status` is answered to anyone who
//! can connect. At most [`MAX_PENDING`] connections may be waiting for their request line; a new
//! one beyond that closes the oldest, so silent clients cannot hold `vipd status` off or use up
//! the daemon's descriptors.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::health::HealthSnapshot;

use super::status::InstanceReport;
use super::{ReloadStats, Shared};

/// Longest request line accepted.
const MAX_REQUEST: usize = 4096;
/// A client that does not send its request within this time is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections still reading their request line at once; a new one closes the oldest.
const MAX_PENDING: usize = 32;
/// A resign waits for the successor; this bounds the client's wait.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    Status,
    Reload,
    Resign { instance: String },
    Resume { instance: String },
}

/// What the main loop must handle (status is answered without it).
#[derive(Debug)]
pub enum ControlRequest {
    Reload {
        reply: oneshot::Sender<ControlReply>,
    },
    Resign {
        instance: String,
        reply: oneshot::Sender<ControlReply>,
    },
    Resume {
        instance: String,
        reply: oneshot::Sender<ControlReply>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlReply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusReport>,
}

impl ControlReply {
    pub fn ok(message: impl Into<String>) -> Self {
        ControlReply {
            ok: true,
            message: Some(message.into()),
            status: None,
        }
    }

    pub fn error(message: impl Into<String>) -> Self {
        ControlReply {
            ok: false,
            message: Some(message.into()),
            status: None,
        }
    }
}

/// Everything `vipd status` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub config: String,
    pub uptime_secs: u64,
    pub ready: bool,
    pub instances: Vec<InstanceReportOwned>,
    #[serde(default)]
    pub checks: Option<serde_json::Value>,
    #[serde(default)]
    pub dns: Option<serde_json::Value>,
    /// `[handoff]` (daemon/handoff.rs), when it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<serde_json::Value>,
    /// BFD sessions (bfd/service.rs), when any instance uses BFD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<serde_json::Value>,
    /// `[kubernetes]` (kube/watch.rs), when it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<serde_json::Value>,
    pub reloads: ReloadStatsOwned,
}

/// The instance report as the client reads it back (same fields as [`InstanceReport`]).
pub type InstanceReportOwned = serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ReloadStatsOwned {
    pub ok: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

impl From<ReloadStats> for ReloadStatsOwned {
    fn from(r: ReloadStats) -> Self {
        ReloadStatsOwned {
            ok: r.ok,
            failed: r.failed,
            last_error: r.last_error,
        }
    }
}

pub fn status_report(shared: &Shared) -> StatusReport {
    let instances: Vec<InstanceReport> = shared.instance_reports();
    let checks: Option<HealthSnapshot> = shared.health_snapshot();
    let dns = shared
        .dns
        .lock()
        .ok()
        .and_then(|d| d.as_ref().map(|d| d.status()));
    StatusReport {
        version: env!("CARGO_PKG_VERSION").to_string(),
        config: shared.config_path.display().to_string(),
        uptime_secs: SystemTime::now()
            .duration_since(shared.started)
            .unwrap_or_default()
            .as_secs(),
        ready: shared.ready.load(std::sync::atomic::Ordering::SeqCst),
        instances: instances
            .iter()
            .filter_map(|i| serde_json::to_value(i).ok())
            .collect(),
        checks: checks.and_then(|c| serde_json::to_value(c).ok()),
        dns,
        handoff: shared
            .handoff
            .lock()
            .ok()
            .and_then(|h| h.as_ref().and_then(|h| h.lock().ok().map(|s| s.clone())))
            .and_then(|s| serde_json::to_value(s).ok()),
        bfd: shared
            .bfd
            .lock()
            .ok()
            .filter(|b| !b.sessions.is_empty() || !b.dropped.is_empty())
            .and_then(|b| serde_json::to_value(&*b).ok()),
        kubernetes: shared
            .kube
            .lock()
            .ok()
            .and_then(|k| k.as_ref().and_then(|k| k.lock().ok().map(|s| s.clone())))
            .map(|s| s.with_ages(SystemTime::now()))
            .and_then(|s| serde_json::to_value(s).ok()),
        reloads: shared
            .reloads
            .lock()
            .map(|r| r.clone().into())
            .unwrap_or_default(),
    }
}

/// Fails if a vipd answers on `path`. Called before anything on the node is touched, so a
/// second vipd started by mistake leaves the running one's VIPs alone; [`listen`] checks again.
pub async fn refuse_if_running(path: &Path) -> std::io::Result<()> {
    if path.exists() && UnixStream::connect(path).await.is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "another vipd is already running and listening on it; stop it first \
             (systemctl stop vipd) or give this one its own [control] socket",
        ));
    }
    Ok(())
}

/// Binds the socket (replacing a stale one) and serves it in the background.
pub async fn listen(
    path: &Path,
    group: Option<&str>,
    requests: mpsc::Sender<ControlRequest>,
    shared: Arc<Shared>,
) -> std::io::Result<()> {
    let gid = group.map(resolve_group).transpose()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    refuse_if_running(path).await?;
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot give it group {gid} ([control] group): {e}; vipd must be a member of the group (SupplementaryGroups= in a drop-in) or have CAP_CHOWN"),
            )
        })?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    }
    tokio::spawn(async move {
        let mut pending = crate::http::Connections::new(MAX_PENDING);
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let reader =
                        tokio::spawn(handle(stream, gid, requests.clone(), Arc::clone(&shared)));
                    if pending.admit(None, reader.abort_handle()) {
                        tracing::debug!(
                            "control socket: {MAX_PENDING} clients silent; closed the oldest"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!("control socket: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(())
}

pub fn remove_socket(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Reads the request line (this task is the one [`MAX_PENDING`] bounds), then answers it on a
/// task of its own: a resign waiting for the successor is not a silent client.
async fn handle(
    stream: UnixStream,
    group: Option<u32>,
    requests: mpsc::Sender<ControlRequest>,
    shared: Arc<Shared>,
) {
    let cred = stream.peer_cred().ok();
    let peer = cred.map(|c| Peer {
        uid: c.uid(),
        in_group: group.is_some_and(|g| {
            c.gid() == g
                || c.pid()
                    .is_some_and(|pid| supplementary_groups(pid).contains(&g))
        }),
    });
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_REQUEST as u64));
    let mut line = String::new();
    let parsed = match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await {
        Ok(Ok(_)) => serde_json::from_str::<Request>(line.trim()),
        _ => return,
    };
    tokio::spawn(async move {
        let reply = match parsed {
            Ok(request) => match refuse(&request, peer, nix::unistd::geteuid().as_raw()) {
                Some(refusal) => {
                    tracing::warn!(uid = ?peer.map(|p| p.uid), "control socket: {refusal}");
                    ControlReply::error(refusal)
                }
                None => dispatch(request, &requests, &shared).await,
            },
            Err(e) => ControlReply::error(format!(
                "cannot understand the request ({e}); expected one JSON line such as {{\"command\":\"status\"}}"
            )),
        };
        if let Ok(mut text) = serde_json::to_string(&reply) {
            text.push('\n');
            let _ = write.write_all(text.as_bytes()).await;
        }
    });
}

/// Who is on the other end of a control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    /// A member of `[control] group` (primary or supplementary group).
    pub in_group: bool,
}

/// `[control] group`: a name, or a number.
fn resolve_group(name: &str) -> std::io::Result<u32> {
    if let Ok(gid) = name.parse() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("[control] group = {name:?}: no such group"),
        )),
        Err(e) => Err(std::io::Error::other(format!(
            "[control] group = {name:?}: {e}"
        ))),
    }
}

/// The supplementary groups of process `pid` (the `Groups:` line of /proc/PID/status).
fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Groups:").map(|g| {
                    g.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
            })
        })
        .unwrap_or_default()
}

/// Why `request` from `peer` (None: unknown) is refused by a daemon running as `daemon_uid`,
/// or None if it may go ahead. Status is open to whoever can connect.
pub fn refuse(request: &Request, peer: Option<Peer>, daemon_uid: u32) -> Option<String> {
    let command = match request {
        Request::Status => return None,
        Request::Reload => "reload",
        Request::Resign { .. } => "resign",
        Request::Resume { .. } => "resume",
    };
    match peer {
        Some(p) if p.uid == 0 || p.uid == daemon_uid || p.in_group => None,
        Some(p) => Some(format!(
            "permission denied: user id {} may not {command}; only root, vipd's own user (uid {daemon_uid}) or members of [control] group may",
            p.uid
        )),
        None => Some(format!(
            "permission denied: cannot tell who is asking to {command} (no peer credentials)"
        )),
    }
}

async fn dispatch(
    request: Request,
    requests: &mpsc::Sender<ControlRequest>,
    shared: &Shared,
) -> ControlReply {
    let (tx, rx) = oneshot::channel();
    let forwarded = match request {
        Request::Status => {
            return ControlReply {
                ok: true,
                message: None,
                status: Some(status_report(shared)),
            }
        }
        Request::Reload => ControlRequest::Reload { reply: tx },
        Request::Resign { instance } => ControlRequest::Resign {
            instance,
            reply: tx,
        },
        Request::Resume { instance } => ControlRequest::Resume {
            instance,
            reply: tx,
        },
    };
    if requests.send(forwarded).await.is_err() {
        return ControlReply::error("the daemon is shutting down");
    }
    match tokio::time::timeout(CLIENT_TIMEOUT, rx).await {
        Ok(Ok(reply)) => reply,
        _ => ControlReply::error("the daemon did not answer in time; check its log"),
    }
}

/// Client side: sends one request and reads the reply (used by the CLI).
pub async fn request(path: &Path, request: &Request) -> anyhow::Result<ControlReply> {
    use anyhow::Context;
    let stream = UnixStream::connect(path).await.with_context(|| {
        format!(
            "cannot reach vipd at {} (is `vipd run` active, and are you root?)",
            path.display()
        )
    })?;
    let (read, mut write) = stream.into_split();
    let mut text = serde_json::to_string(request)?;
    text.push('\n');
    write.write_all(text.as_bytes()).await?;
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    tokio::time::timeout(CLIENT_TIMEOUT, reader.read_line(&mut line))
        .await
        .context("vipd did not answer within 60 s")??;
    serde_json::from_str(line.trim())
        .with_context(|| format!("unexpected answer from vipd: {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32) -> Option<Peer> {
        Some(Peer {
            uid,
            in_group: false,
        })
    }

    #[test]
    fn only_root_the_daemons_user_or_the_group_may_change_anything_and_anyone_may_ask_status() {
        let member = Some(Peer {
            uid: 1000,
            in_group: true,
        });
        for request in [
            Request::Reload,
            Request::Resign {
                instance: "api".into(),
            },
            Request::Resume {
                instance: "api".into(),
            },
        ] {
            assert_eq!(refuse(&request, user(0), 0), None);
            assert_eq!(refuse(&request, user(61234), 61234), None);
            assert_eq!(refuse(&request, member, 61234), None);
            let denied = refuse(&request, user(65534), 61234).unwrap();
            assert!(
                denied.starts_with("permission denied: user id 65534"),
                "{denied}"
            );
            assert!(refuse(&request, None, 0).is_some());
        }
        assert_eq!(refuse(&Request::Status, user(65534), 0), None);
    }

    #[test]
    fn a_group_is_a_number_or_a_known_name() {
        assert_eq!(resolve_group("0").unwrap(), 0);
        assert_eq!(resolve_group("root").unwrap(), 0);
        assert!(resolve_group("no-such-group-vipd").is_err());
        // This process is a member of its own primary group only through its gid; the
        // Groups: line parses (possibly empty).
        let own = supplementary_groups(std::process::id() as i32);
        assert!(own.len() < 65536);
    }
}
