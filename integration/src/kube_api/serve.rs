//! Accepting connections, routing requests, LIST and GET of nodes, and the faults.

use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::exchange::{strip_addresses, Exchange, Flow, Mode};
use super::http::{self, Conn, Identity, Read};
use super::query::{self, ListQuery};
use super::status;
use super::store::{At, Store};
use super::{lock, Fault, Shared, Target};

/// Connections served at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 512;
/// A TLS handshake must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// The server thread: a tokio runtime serving until shutdown, then dropped within 2 s.
pub(crate) fn run(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    control: Option<std::os::unix::net::UnixListener>,
    tls: Arc<rustls::ServerConfig>,
    ready: Sender<Result<(), String>>,
) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("tokio runtime: {e}")));
            return;
        }
    };
    rt.block_on(async {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(format!("listener: {e}")));
                return;
            }
        };
        if let Some(control) = control {
            if let Err(e) = super::control::spawn(Arc::clone(&shared), control) {
                let _ = ready.send(Err(format!("control socket: {e}")));
                return;
            }
        }
        let _ = ready.send(Ok(()));
        accept_loop(shared, listener, TlsAcceptor::from(tls)).await;
    });
    rt.shutdown_timeout(Duration::from_secs(2));
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, acceptor: TlsAcceptor) {
    let mut shutdown = shared.shutdown.subscribe();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            _ = super::stopped(&mut shutdown) => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else { continue };
                    let (shared, acceptor) = (Arc::clone(&shared), acceptor.clone());
                    tokio::spawn(async move {
                        connection(shared, tcp, peer, acceptor).await;
                        drop(permit);
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
        }
    }
}

fn identity_of(tls: &tokio_rustls::server::TlsStream<TcpStream>) -> Identity {
    let cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
    match cert.and_then(|c| super::subject_identity(c)) {
        Some((user, groups)) => Identity { user, groups },
        None => Identity {
            user: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        },
    }
}

async fn connection(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr, acceptor: TlsAcceptor) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return shared.tls_failure(peer, &e.to_string()),
        Err(_) => return shared.tls_failure(peer, "handshake timed out"),
    };
    let identity = identity_of(&tls);
    let mut conn = Conn::new(tls, peer, identity);
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let read = tokio::select! {
            r = conn.read_request(shared.opts.idle_timeout) => r,
            _ = super::stopped(&mut shutdown) => return,
        };
        let req = match read {
            Read::Request(r) => r,
            Read::Closed => break,
            Read::Bad(why) => {
                let _ = conn.write(http::plain_bad_request(why).as_bytes()).await;
                break;
            }
        };
        let mut ex = Exchange {
            shared: &shared,
            conn: &mut conn,
            req: &req,
            audit: shared.audit_id(),
        };
        match dispatch(&mut ex).await {
            Flow::KeepAlive if !req.closes() => continue,
            Flow::KeepAlive => break,
            Flow::Abort => return,
        }
    }
    conn.close().await;
}

enum Route {
    Health,
    Version,
    Api,
    ApiV1,
    Nodes { watch_path: bool },
    Node(String),
}

fn route(path: &str) -> Option<Route> {
    Some(match path {
        "/healthz" | "/livez" | "/readyz" => Route::Health,
        "/version" => Route::Version,
        "/api" => Route::Api,
        "/api/v1" => Route::ApiV1,
        "/api/v1/nodes" => Route::Nodes { watch_path: false },
        "/api/v1/watch/nodes" => Route::Nodes { watch_path: true },
        _ => {
            let rest = path.strip_prefix("/api/v1/nodes/")?;
            let name = rest.strip_suffix("/status").unwrap_or(rest);
            if name.is_empty() || name.contains('/') {
                return None;
            }
            Route::Node(name.to_string())
        }
    })
}

async fn dispatch(ex: &mut Exchange<'_>) -> Flow {
    let Some(route) = route(ex.req.path()) else {
        return ex.status(status::path_not_found()).await;
    };
    if ex.req.method != "GET" {
        return ex.status(status::method_not_allowed()).await;
    }
    if !matches!(route, Route::Health) && !http::accepts_json(ex.req.header("accept")) {
        return ex.status(status::not_acceptable()).await;
    }
    match route {
        Route::Health => {
            ex.body(200, "text/plain; charset=utf-8", b"ok", &[], false)
                .await
        }
        Route::Version => {
            let v = version(&ex.shared.opts.kubernetes_version);
            ex.json(200, &v, false).await
        }
        Route::Api => {
            let addr = ex.shared.listen.to_string();
            let v = json!({"kind": "APIVersions", "versions": ["v1"],
                           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}]});
            ex.json(200, &v, false).await
        }
        Route::ApiV1 => ex.json(200, &api_v1(), false).await,
        Route::Nodes { watch_path } => nodes(ex, None, watch_path).await,
        Route::Node(name) => nodes(ex, Some(name), false).await,
    }
}

fn version(git: &str) -> Value {
    let minor = git.split('.').nth(1).unwrap_or("33");
    json!({"major": "1", "minor": minor, "emulationMajor": "1", "emulationMinor": minor,
           "minCompatibilityMajor": "1", "minCompatibilityMinor": minor, "gitVersion": git,
           "gitCommit": "5e8d2b2a4e9f1c1e0c7b6d3f8a9e0b1c2d3e4f5a", "gitTreeState": "clean",
           "buildDate": "2025-10-01T00:00:00Z", "goVersion": "go1.24.6", "compiler": "gc",
           "platform": "linux/amd64"})
}

fn api_v1() -> Value {
    json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "nodes", "singularName": "node", "namespaced": false, "kind": "Node",
         "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
         "shortNames": ["no"], "storageVersionHash": "XwShjMxG9Fs="},
        {"name": "nodes/status", "singularName": "", "namespaced": false, "kind": "Node",
         "verbs": ["get", "patch", "update"]},
    ]})
}

async fn nodes(ex: &mut Exchange<'_>, name: Option<String>, watch_path: bool) -> Flow {
    let is_watch = watch_path || query::is_watch(ex.req.query());
    let (target, verb) = match (&name, is_watch) {
        (Some(_), _) => (Target::Get, "get"),
        (None, true) => (Target::Watch, "watch"),
        (None, false) => (Target::List, "list"),
    };
    if ex.conn.identity.user == "system:anonymous" {
        return ex
            .status(status::forbidden("system:anonymous", verb, name.as_deref()))
            .await;
    }
    let mut mode = Mode::default();
    match ex.shared.take_fault(target) {
        Some(Fault::Forbidden) => {
            let user = ex.conn.identity.user.clone();
            return ex
                .status(status::forbidden(&user, verb, name.as_deref()))
                .await;
        }
        Some(Fault::Unauthorized) => return ex.status(status::unauthorized()).await,
        Some(Fault::InternalError) => {
            return ex
                .status(status::internal_error("etcdserver: request timed out"))
                .await
        }
        Some(Fault::TooManyRequests) => return ex.status(status::too_many_requests()).await,
        Some(Fault::Hang) => return hang(ex).await,
        Some(Fault::NotJson) => return not_json(ex, is_watch).await,
        Some(Fault::NoAddresses) => mode.strip_addresses = true,
        Some(Fault::CloseMidStream) => mode.cut = true,
        None => {}
    }
    if let Some(name) = name {
        return get(ex, &name, mode).await;
    }
    let gate = ex.shared.opts.watch_list_gate;
    match query::parse(ex.req.query(), gate, watch_path) {
        Err(s) => ex.status(s).await,
        Ok(q) if q.watch => super::watch::serve(ex, q, mode).await,
        Ok(q) => list(ex, q, mode).await,
    }
}

async fn hang(ex: &mut Exchange<'_>) -> Flow {
    ex.log(0);
    let mut shutdown = ex.shared.shutdown.subscribe();
    tokio::select! {
        _ = ex.conn.peer_closed() => {}
        _ = tokio::time::sleep(ex.shared.opts.hang_limit) => {}
        _ = super::stopped(&mut shutdown) => {}
    }
    Flow::Abort
}

async fn not_json(ex: &mut Exchange<'_>, is_watch: bool) -> Flow {
    const BODY: &[u8] = b"<html><body><h1>502 Bad Gateway</h1>this is not JSON</body></html>\n";
    if !is_watch {
        return ex.body(200, "application/json", BODY, &[], false).await;
    }
    ex.log(200);
    let mut bytes = http::head(200, "application/json", None, &ex.audit, &[]).into_bytes();
    bytes.extend_from_slice(&http::chunk(BODY));
    bytes.extend_from_slice(http::LAST_CHUNK);
    ex.write(&bytes).await
}

async fn get(ex: &mut Exchange<'_>, name: &str, mode: Mode) -> Flow {
    let node = lock(&ex.shared.store).get(name).cloned();
    match node {
        Some(mut node) => {
            if mode.strip_addresses {
                strip_addresses(&mut node);
            }
            ex.json(200, &node, mode.cut).await
        }
        None => ex.status(status::node_not_found(name)).await,
    }
}

/// Which state a list reads.
enum ReadAt {
    Current,
    Exact(u64),
}

struct ListPlan {
    at: ReadAt,
    /// Wait for the store to reach this resourceVersion first.
    wait_for: Option<u64>,
    /// Names >= this are listed (a continue token's start key).
    start: String,
    from_continue: bool,
}

/// The resourceVersion semantics table of the API concepts page.
fn plan_list(q: &ListQuery) -> Result<ListPlan, Value> {
    if !q.continue_token.is_empty() {
        if !q.resource_version.is_empty() && q.resource_version != "0" {
            return Err(status::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let (rv, start) = query::decode_continue(&q.continue_token)?;
        return Ok(ListPlan {
            at: ReadAt::Exact(rv),
            wait_for: None,
            start,
            from_continue: true,
        });
    }
    let rv = q.resource_version.as_str();
    let (at, wait_for) = match (q.resource_version_match.as_str(), rv) {
        (_, "") | (_, "0") => (ReadAt::Current, None),
        ("Exact", n) => {
            let n = query::parse_rv(n)?;
            (ReadAt::Exact(n), Some(n))
        }
        ("", n) if q.limit > 0 => {
            let n = query::parse_rv(n)?;
            (ReadAt::Exact(n), Some(n))
        }
        (_, n) => (ReadAt::Current, Some(query::parse_rv(n)?)),
    };
    Ok(ListPlan {
        at,
        wait_for,
        start: String::new(),
        from_continue: false,
    })
}

async fn list(ex: &mut Exchange<'_>, q: ListQuery, mode: Mode) -> Flow {
    let plan = match plan_list(&q) {
        Ok(p) => p,
        Err(s) => return ex.status(s).await,
    };
    if let Some(rv) = plan.wait_for {
        if let Err(s) = ex.shared.wait_fresh(rv).await {
            return ex.status(s).await;
        }
    }
    let page = build_list(&lock(&ex.shared.store), &q, &plan, mode);
    match page {
        Ok(list) => ex.json(200, &list, mode.cut).await,
        Err(s) => ex.status(s).await,
    }
}

fn build_list(store: &Store, q: &ListQuery, plan: &ListPlan, mode: Mode) -> Result<Value, Value> {
    let rv = match plan.at {
        ReadAt::Current => store.rv,
        ReadAt::Exact(n) => n,
    };
    let nodes = store.snapshot(rv).map_err(|e| match e {
        At::TooOld(_) if plan.from_continue => status::expired(CONTINUE_EXPIRED),
        At::TooOld(_) => status::expired("The resourceVersion for the provided list is too old."),
        At::TooLarge(current) => status::too_large_resource_version(rv, current),
    })?;
    let selected: Vec<&Value> = nodes
        .iter()
        .filter(|(name, _)| name.as_str() >= plan.start.as_str())
        .map(|(_, n)| n)
        .filter(|n| q.label_selector.matches(n) && q.field_selector.matches(n))
        .collect();
    let take = if q.limit > 0 {
        (q.limit as usize).min(selected.len())
    } else {
        selected.len()
    };
    let remaining = selected.len() - take;
    let items: Vec<Value> = selected[..take]
        .iter()
        .map(|n| {
            let mut item = (*n).clone();
            if let Some(obj) = item.as_object_mut() {
                obj.remove("kind");
                obj.remove("apiVersion");
            }
            if mode.strip_addresses {
                strip_addresses(&mut item);
            }
            item
        })
        .collect();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if remaining > 0 {
        let last = items
            .last()
            .and_then(|i| i["metadata"]["name"].as_str())
            .unwrap_or_default();
        metadata["continue"] = json!(query::encode_continue(rv, last));
        if q.label_selector.is_empty() && q.field_selector.is_empty() {
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    Ok(json!({"kind": "NodeList", "apiVersion": "v1", "metadata": metadata, "items": items}))
}
