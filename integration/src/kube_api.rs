//! A stand-in Kubernetes API server for the node list: the documented list/watch contract of
//! `/api/v1/nodes`, strict enough that a client wrong against a real kube-apiserver fails here.
//! See `/tmp/research/issue10.md` sections 4 and 5 for the contract it follows.
//!
//! - [`Pki`]: a CA, a serving certificate (IP and DNS SANs), kubelet-style client certificates
//!   (`system:node:master-0`, `system:nodes`); [`write_kubeconfig`] in kubelet's kubeconfig shape.
//! - [`ApiServer::start`]: HTTPS (rustls, ring) with client certificates required, on its own
//!   thread and tokio runtime, usable from blocking tests and from `lab-kube-api` in a namespace.
//! - State: [`node`] builds a Node as `kubectl get nodes -o json` shows it; [`ApiHandle`] adds,
//!   modifies and deletes nodes while watches are open; one global resourceVersion, a bounded
//!   history (compaction: [`ApiHandle::compact`], [`ApiHandle::expire`]).
//! - LIST with `limit`/`continue` (consistent snapshots), `labelSelector`, `fieldSelector`,
//!   `resourceVersion` + `resourceVersionMatch` as apimachinery validates and serves them.
//! - WATCH (`watch=true|1`): chunked newline-delimited events, replay from the history, 410
//!   `Expired` as an in-stream ERROR, synthetic ADDED without a resourceVersion, BOOKMARKs,
//!   `timeoutSeconds`, `sendInitialEvents` only with the WatchList gate (off by default).
//! - [`Fault`]s toggled at run time; every request logged ([`ApiHandle::requests`] and a JSON
//!   lines file); a Unix-socket line protocol ([`control`]) for another process.
//! - [`client`]: a small blocking HTTPS client for tests (raw requests, chunked watch streams).

pub mod client;
pub mod control;
mod exchange;
mod http;
mod pki;
mod query;
mod serve;
pub mod status;
mod store;
mod watch;

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

pub use pki::{
    first_cert_der, subject_identity, write_kubeconfig, ClientAuth, ClientCert, Credentials, Pki,
    Source, NODE_GROUP, NODE_USER,
};
pub use query::LabelSelector;
pub use store::{merge_patch, node, rfc3339};

/// How the stand-in behaves; [`Options::default`] mirrors OpenShift on Kubernetes 1.33.
#[derive(Debug, Clone)]
pub struct Options {
    pub client_auth: ClientAuth,
    /// The `WatchList` feature gate: `sendInitialEvents` on watches (off, as in 1.33).
    pub watch_list_gate: bool,
    /// Period of BOOKMARK events on watches that allow them (real servers: about a minute).
    pub bookmark_period: Duration,
    /// Events kept for replay; older ones are compacted away.
    pub history_limit: usize,
    /// Watch duration when `timeoutSeconds` is absent or 0 (kube-apiserver: 30 to 60 minutes).
    pub default_watch_timeout: Duration,
    /// The resourceVersion before the first change.
    pub first_resource_version: u64,
    /// How much each write moves the resourceVersion (1; more mimics other resources' writes).
    pub resource_version_stride: u64,
    /// How long a read waits for a resourceVersion newer than the current one before 504.
    pub too_large_rv_wait: Duration,
    /// A [`Fault::Hang`] connection is dropped after this long at the latest.
    pub hang_limit: Duration,
    /// A keep-alive connection idle this long is closed.
    pub idle_timeout: Duration,
    /// Every request (and TLS failure) as one JSON line.
    pub request_log: Option<PathBuf>,
    /// The control socket ([`control`]), if any.
    pub control_socket: Option<PathBuf>,
    /// `gitVersion` of `/version`.
    pub kubernetes_version: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            client_auth: ClientAuth::Required,
            watch_list_gate: false,
            bookmark_period: Duration::from_secs(60),
            history_limit: 1000,
            default_watch_timeout: Duration::from_secs(1800),
            first_resource_version: 1000,
            resource_version_stride: 1,
            too_large_rv_wait: Duration::from_secs(3),
            hang_limit: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(90),
            request_log: None,
            control_socket: None,
            kubernetes_version: "v1.33.5".into(),
        }
    }
}

/// A misbehaviour of the server for the client's bad-input tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 403 with RBAC's `Status` for the certificate's user.
    Forbidden,
    /// 401 `Unauthorized`.
    Unauthorized,
    /// 500 `InternalError`.
    InternalError,
    /// 429 `TooManyRequests` with `Retry-After: 1`.
    TooManyRequests,
    /// 200 `application/json` whose body is not JSON (a watch: one such line, then the end).
    NotJson,
    /// Nodes served without `status.addresses` (lists, gets, whole watch streams).
    NoAddresses,
    /// The request is read and never answered (until the client leaves or `hang_limit`).
    Hang,
    /// The connection is cut in the middle of the body, without TLS close_notify.
    CloseMidStream,
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Any,
    List,
    Watch,
    Get,
}

impl std::str::FromStr for Fault {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "forbidden" => Fault::Forbidden,
            "unauthorized" => Fault::Unauthorized,
            "internal-error" => Fault::InternalError,
            "too-many-requests" => Fault::TooManyRequests,
            "not-json" => Fault::NotJson,
            "no-addresses" => Fault::NoAddresses,
            "hang" => Fault::Hang,
            "close-mid-stream" => Fault::CloseMidStream,
            _ => bail!("unknown fault {s:?}; one of forbidden, unauthorized, internal-error, too-many-requests, not-json, no-addresses, hang, close-mid-stream, none"),
        })
    }
}

impl std::str::FromStr for Target {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "any" => Target::Any,
            "list" => Target::List,
            "watch" => Target::Watch,
            "get" => Target::Get,
            _ => bail!("unknown fault target {s:?}; one of any, list, watch, get"),
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct FaultRule {
    fault: Fault,
    target: Target,
    remaining: Option<u32>,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub time: String,
    pub peer: SocketAddr,
    /// The client certificate's user (`system:anonymous` without one).
    pub user: String,
    /// The client certificate's groups (subject O).
    pub groups: Vec<String>,
    /// The request line as sent.
    pub line: String,
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// The status answered; 0 when the request was never answered ([`Fault::Hang`]).
    pub status: u16,
}

impl RequestRecord {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A query parameter, percent-decoded (first value).
    pub fn param(&self, key: &str) -> Option<String> {
        let query = self.target.split_once('?').map_or("", |(_, q)| q);
        query::params(query).ok()?.remove(key)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_watch(&self) -> bool {
        self.path() == "/api/v1/watch/nodes"
            || query::is_watch(self.target.split_once('?').map_or("", |(_, q)| q))
    }

    pub fn to_json(&self) -> Value {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), json!(v)))
            .collect();
        json!({"time": self.time, "peer": self.peer.to_string(), "user": self.user, "groups": self.groups, "request": self.line,
               "method": self.method, "target": self.target, "status": self.status, "headers": headers})
    }
}

const MAX_RECORDS: usize = 10_000;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// State shared by the server's tasks and the handles.
pub(crate) struct Shared {
    pub(crate) store: Mutex<store::Store>,
    pub(crate) changed: tokio::sync::watch::Sender<u64>,
    fault: Mutex<Option<FaultRule>>,
    pub(crate) opts: Options,
    pub(crate) listen: SocketAddr,
    records: Mutex<VecDeque<RequestRecord>>,
    tls_failures: Mutex<Vec<String>>,
    log_file: Mutex<Option<File>>,
    pub(crate) shutdown: tokio::sync::watch::Sender<bool>,
    pub(crate) open_watches: AtomicUsize,
    audit: AtomicU64,
}

impl Shared {
    fn new(opts: Options, listen: SocketAddr) -> Result<Self> {
        let log_file = match &opts.request_log {
            Some(p) => Some(File::create(p).with_context(|| format!("creating {}", p.display()))?),
            None => None,
        };
        Ok(Shared {
            store: Mutex::new(store::Store::new(
                opts.first_resource_version,
                opts.resource_version_stride,
                opts.history_limit,
            )),
            changed: tokio::sync::watch::channel(0).0,
            fault: Mutex::new(None),
            opts,
            listen,
            records: Mutex::new(VecDeque::new()),
            tls_failures: Mutex::new(Vec::new()),
            log_file: Mutex::new(log_file),
            shutdown: tokio::sync::watch::channel(false).0,
            open_watches: AtomicUsize::new(0),
            audit: AtomicU64::new(1),
        })
    }

    /// A fresh `Audit-Id` (UUID-shaped).
    pub(crate) fn audit_id(&self) -> String {
        let n = self.audit.fetch_add(1, Ordering::Relaxed);
        format!(
            "4b1d{:04x}-0000-4000-8000-{:012x}",
            std::process::id() & 0xffff,
            n
        )
    }

    fn log_line(&self, line: &Value) {
        if let Some(f) = lock(&self.log_file).as_mut() {
            let _ = writeln!(f, "{line}");
        }
    }

    pub(crate) fn record(&self, record: RequestRecord) {
        self.log_line(&record.to_json());
        let mut records = lock(&self.records);
        if records.len() >= MAX_RECORDS {
            records.pop_front();
        }
        records.push_back(record);
    }

    pub(crate) fn tls_failure(&self, peer: SocketAddr, error: &str) {
        self.log_line(&json!({"time": rfc3339(SystemTime::now()), "peer": peer.to_string(), "tls_error": error}));
        lock(&self.tls_failures).push(format!("{peer}: {error}"));
    }

    /// The fault for a request of `target`, counting it down.
    pub(crate) fn take_fault(&self, target: Target) -> Option<Fault> {
        let mut slot = lock(&self.fault);
        let rule = (*slot)?;
        if rule.target != Target::Any && rule.target != target {
            return None;
        }
        if let Some(n) = rule.remaining {
            *slot = (n > 1).then_some(FaultRule {
                remaining: Some(n - 1),
                ..rule
            });
        }
        Some(rule.fault)
    }

    /// Waits (at most `too_large_rv_wait`) until the store reaches `rv`; else the 504 `Status`.
    pub(crate) async fn wait_fresh(&self, rv: u64) -> Result<(), Value> {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + self.opts.too_large_rv_wait;
        loop {
            let current = lock(&self.store).rv;
            if current >= rv {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(status::too_large_resource_version(rv, lock(&self.store).rv)),
            }
        }
    }
}

/// Resolves once `rx` says the server stops (the guard is not held, so the future stays `Send`).
pub(crate) async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// A cloneable handle on a running stand-in: the test's (or the control socket's) side.
#[derive(Clone)]
pub struct ApiHandle(Arc<Shared>);

impl ApiHandle {
    fn write<R>(&self, f: impl FnOnce(&mut store::Store) -> R) -> R {
        let r = f(&mut lock(&self.0.store));
        self.0.changed.send_modify(|n| *n += 1);
        r
    }

    /// Adds a node (see [`node`]); returns the new resourceVersion.
    pub fn add(&self, node: Value) -> Result<u64> {
        self.write(|s| s.add(node)).map_err(|e| anyhow!(e))
    }

    /// Changes a node in place; a change that changes nothing writes nothing.
    pub fn modify(&self, name: &str, change: impl FnOnce(&mut Value)) -> Result<u64> {
        self.write(|s| s.update(name, change))
            .map_err(|e| anyhow!(e))
    }

    /// Applies a JSON merge patch (RFC 7386) to a node.
    pub fn patch(&self, name: &str, patch: &Value) -> Result<u64> {
        self.modify(name, |n| merge_patch(n, patch))
    }

    /// Sets the node's Ready condition (`True`, or `Unknown` as the node lifecycle controller does).
    pub fn set_ready(&self, name: &str, ready: bool) -> Result<u64> {
        self.modify(name, |n| store::set_ready(n, ready))
    }

    pub fn delete(&self, name: &str) -> Result<u64> {
        self.write(|s| s.delete(name)).map_err(|e| anyhow!(e))
    }

    pub fn get(&self, name: &str) -> Option<Value> {
        lock(&self.0.store).get(name).cloned()
    }

    pub fn nodes(&self) -> Vec<Value> {
        lock(&self.0.store).nodes().cloned().collect()
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.0.store).rv
    }

    /// The compaction point: watches from an older resourceVersion get 410.
    pub fn compacted_resource_version(&self) -> u64 {
        lock(&self.0.store).compacted
    }

    /// A write to some other resource: the resourceVersion moves, no node event (bookmarks and
    /// list metadata carry it).
    pub fn touch(&self) -> u64 {
        self.write(|s| s.touch())
    }

    /// Compacts the history now: watches and Exact lists from older resourceVersions get 410;
    /// open watches go on.
    pub fn compact(&self) -> u64 {
        self.write(|s| {
            s.compact();
            s.rv
        })
    }

    /// As after an apiserver restart with an etcd compaction meanwhile, in one step: every open
    /// watch ends, the resourceVersion moves (another resource's write) and the history is
    /// compacted, so a client resuming from the resourceVersion it had gets 410 and must re-list.
    pub fn expire(&self) -> u64 {
        self.write(|s| {
            s.epoch += 1;
            s.touch();
            s.compact();
            s.rv
        })
    }

    /// Ends every open watch (cleanly, as at its timeout); clients resume from their resourceVersion.
    pub fn close_watches(&self) {
        self.write(|s| s.epoch += 1);
    }

    /// Sets the fault for requests of `target`, for `times` requests (None: until cleared).
    pub fn set_fault(&self, fault: Fault, target: Target, times: Option<u32>) {
        *lock(&self.0.fault) = Some(FaultRule {
            fault,
            target,
            remaining: times,
        });
    }

    pub fn clear_fault(&self) {
        *lock(&self.0.fault) = None;
    }

    pub fn fault(&self) -> Option<(Fault, Target, Option<u32>)> {
        lock(&self.0.fault).map(|r| (r.fault, r.target, r.remaining))
    }

    /// Every request served so far (the last 10 000), oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.0.records).iter().cloned().collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.0.records).clear();
    }

    /// TLS handshakes that failed (`peer: error`).
    pub fn tls_failures(&self) -> Vec<String> {
        lock(&self.0.tls_failures).clone()
    }

    /// Watches being served right now.
    pub fn open_watches(&self) -> usize {
        self.0.open_watches.load(Ordering::SeqCst)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.0.listen
    }

    /// `https://IP:PORT` (IPv6 in brackets).
    pub fn url(&self) -> String {
        format!("https://{}", self.0.listen)
    }
}

/// A running stand-in; stops (bounded) when dropped.
pub struct ApiServer {
    handle: ApiHandle,
    thread: Option<JoinHandle<()>>,
}

impl std::ops::Deref for ApiServer {
    type Target = ApiHandle;
    fn deref(&self) -> &ApiHandle {
        &self.handle
    }
}

impl ApiServer {
    /// Listens on `listen` (port 0: any) with `pki`'s serving certificate and CA, and serves on
    /// a thread of its own until dropped or [`ApiServer::stop`]ped.
    pub fn start(listen: SocketAddr, pki: &Pki, options: Options) -> Result<ApiServer> {
        let tls = Arc::new(pki.server_config(options.client_auth)?);
        let listener =
            std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
        listener.set_nonblocking(true)?;
        let control = match &options.control_socket {
            Some(path) => Some(control::bind(path)?),
            None => None,
        };
        let shared = Arc::new(Shared::new(options, listener.local_addr()?)?);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let task_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("kube-api".into())
            .spawn(move || serve::run(task_shared, listener, control, tls, ready_tx))?;
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => Ok(ApiServer {
                handle: ApiHandle(shared),
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(anyhow!("the API server did not start: {e}")),
            Err(_) => Err(anyhow!("the API server did not start within 10 s")),
        }
    }

    pub fn handle(&self) -> ApiHandle {
        self.handle.clone()
    }

    /// Stops serving: open connections are dropped within about 2 s.
    pub fn stop(&mut self) {
        self.handle.0.shutdown.send_replace(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Blocks until the server stops (for the binary).
    pub fn wait(mut self, lifetime: Duration) {
        let mut rx = self.handle.0.shutdown.subscribe();
        let deadline = std::time::Instant::now() + lifetime;
        while !*rx.borrow_and_update() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        self.stop();
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}
