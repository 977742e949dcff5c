//! The real kube-rs 5 client and `kube_runtime::watcher` against the stand-in Kubernetes API
//! server (`lab::kube_api`): kubeconfigs in kubelet's shape load, the watcher lists, follows
//! added / modified / deleted nodes, resumes from bookmarks, and re-lists after a 410. Also
//! the client's view of faults. Loopback only.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use lab::kube_api::client::Fixture;
use lab::kube_api::{node, write_kubeconfig, ApiServer, Fault, Options, Pki, Target};
use serde_json::json;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

type Item = Result<Event<Node>, watcher::Error>;

async fn client_from(path: &Path) -> kube::Result<kube::Client> {
    let kubeconfig = Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config)
}

fn name(n: &Node) -> String {
    n.metadata.name.clone().unwrap_or_default()
}

fn add_cluster(server: &ApiServer) {
    for (n, roles, ip) in [
        (
            "master-0",
            &["master", "control-plane"][..],
            "192.168.111.20",
        ),
        (
            "master-1",
            &["master", "control-plane"][..],
            "192.168.111.21",
        ),
        ("worker-0", &["worker"][..], "192.168.111.23"),
    ] {
        server
            .add(node(n, roles, &[("InternalIP", ip), ("Hostname", n)]))
            .unwrap();
    }
}

/// Runs the watcher in a task (it only makes requests while polled) and hands its items over.
fn drive(api: Api<Node>) -> UnboundedReceiver<Item> {
    let (tx, rx) = unbounded_channel();
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    tokio::spawn(async move {
        while let Some(item) = stream.next().await {
            if tx.send(item).is_err() {
                return;
            }
        }
    });
    rx
}

async fn recv(rx: &mut UnboundedReceiver<Item>) -> Item {
    tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("a watcher item within 15 s")
        .expect("the watcher goes on")
}

/// Reads `Init`, the `InitApply`s and `InitDone`; the names listed.
async fn initial_list(rx: &mut UnboundedReceiver<Item>) -> Vec<String> {
    assert!(matches!(recv(rx).await, Ok(Event::Init)));
    let mut names = Vec::new();
    loop {
        match recv(rx).await.unwrap() {
            Event::InitApply(n) => names.push(name(&n)),
            Event::InitDone => return names,
            other => panic!("unexpected {other:?} during the initial list"),
        }
    }
}

async fn wait_for_request(
    server: &ApiServer,
    what: &str,
    found: impl Fn(&lab::kube_api::RequestRecord) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.requests().iter().any(&found) {
        assert!(
            Instant::now() < deadline,
            "no request {what}: {:#?}",
            server.requests()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_watcher_follows_the_node_list() {
    let opts = Options {
        bookmark_period: Duration::from_millis(300),
        ..Options::default()
    };
    let f = Fixture::start("kube-watcher", opts).unwrap();
    add_cluster(&f.server);
    let path = f.dir.join("kubeconfig");
    write_kubeconfig(&path, &f.server.url(), None, &f.pki.embedded()).unwrap();
    let api: Api<Node> = Api::all(client_from(&path).await.unwrap());
    let mut rx = drive(api);
    assert_eq!(
        initial_list(&mut rx).await,
        ["master-0", "master-1", "worker-0"]
    );

    f.server
        .add(node(
            "worker-1",
            &["worker"],
            &[("InternalIP", "192.168.111.24")],
        ))
        .unwrap();
    match recv(&mut rx).await.unwrap() {
        Event::Apply(n) => {
            assert_eq!(name(&n), "worker-1");
            let addrs = n.status.unwrap().addresses.unwrap();
            assert_eq!(
                (addrs[0].type_.as_str(), addrs[0].address.as_str()),
                ("InternalIP", "192.168.111.24")
            );
        }
        other => panic!("{other:?}"),
    }
    f.server
        .patch("master-1", &json!({"metadata": {"labels": {"zone": "b"}}}))
        .unwrap();
    match recv(&mut rx).await.unwrap() {
        Event::Apply(n) => assert_eq!(n.metadata.labels.unwrap()["zone"], "b"),
        other => panic!("{other:?}"),
    }
    f.server.delete("worker-0").unwrap();
    assert!(matches!(recv(&mut rx).await.unwrap(), Event::Delete(n) if name(&n) == "worker-0"));

    // Bookmarks: after a write elsewhere, the watcher resumes from the bookmark's resourceVersion.
    let moved = f.server.touch().to_string();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    f.server.close_watches();
    wait_for_request(&f.server, "resuming from the bookmark", |r| {
        r.is_watch() && r.param("resourceVersion").as_deref() == Some(moved.as_str())
    })
    .await;

    // Compaction while away: 410 in the stream, then a full re-list.
    let expired = f.server.expire();
    let names = relist_after_410(&mut rx).await;
    assert_eq!(names, ["master-0", "master-1", "worker-1"]);
    f.server
        .add(node(
            "master-2",
            &["master"],
            &[("InternalIP", "192.168.111.22")],
        ))
        .unwrap();
    assert!(matches!(recv(&mut rx).await.unwrap(), Event::Apply(n) if name(&n) == "master-2"));

    check_kube_requests(&f.server, expired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_kubeconfig_with_tls_server_name() {
    let dir = std::env::temp_dir().join(format!("kube-api-kubelet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // As the api-int load balancer certificate: a DNS SAN only.
    let pki = Pki::generate(&dir, &["api-int.ostest.test.metalkube.org"]).unwrap();
    let server =
        ApiServer::start("127.0.0.1:0".parse().unwrap(), &pki, Options::default()).unwrap();
    add_cluster(&server);
    let url = server.url();

    let by_ip = dir.join("by-ip");
    write_kubeconfig(&by_ip, &url, None, &pki.embedded()).unwrap();
    let api: Api<Node> = Api::all(client_from(&by_ip).await.unwrap());
    assert!(
        api.list(&ListParams::default()).await.is_err(),
        "the IP is not in the certificate"
    );

    let kubelet = dir.join("kubelet");
    write_kubeconfig(
        &kubelet,
        &url,
        Some("api-int.ostest.test.metalkube.org"),
        &pki.kubelet_files().unwrap(),
    )
    .unwrap();
    let api: Api<Node> = Api::all(client_from(&kubelet).await.unwrap());
    let masters = api
        .list(&ListParams::default().labels("node-role.kubernetes.io/master"))
        .await
        .unwrap();
    let names: Vec<String> = masters.items.iter().map(name).collect();
    assert_eq!(names, ["master-0", "master-1"]);
    assert_eq!(
        masters.metadata.resource_version,
        Some(server.resource_version().to_string())
    );

    let files = dir.join("files");
    write_kubeconfig(
        &files,
        &url,
        Some("api-int.ostest.test.metalkube.org"),
        &pki.files(),
    )
    .unwrap();
    let api: Api<Node> = Api::all(client_from(&files).await.unwrap());
    assert_eq!(
        api.get("worker-0").await.unwrap().metadata.name.as_deref(),
        Some("worker-0")
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_client_sees_the_faults() {
    let f = Fixture::start("kube-faults", Options::default()).unwrap();
    add_cluster(&f.server);
    let path = f.dir.join("kubeconfig");
    write_kubeconfig(&path, &f.server.url(), None, &f.pki.files()).unwrap();
    let api: Api<Node> = Api::all(client_from(&path).await.unwrap());

    f.server.set_fault(Fault::Forbidden, Target::List, Some(1));
    match api.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden")),
        other => panic!("{other:?}"),
    }
    f.server.set_fault(Fault::NotJson, Target::List, Some(1));
    assert!(api.list(&ListParams::default()).await.is_err());
    f.server
        .set_fault(Fault::NoAddresses, Target::List, Some(1));
    let list = api.list(&ListParams::default()).await.unwrap();
    assert!(list
        .items
        .iter()
        .all(|n| n.status.as_ref().unwrap().addresses.is_none()));
    f.server
        .set_fault(Fault::CloseMidStream, Target::List, Some(1));
    assert!(api.list(&ListParams::default()).await.is_err());
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );
}

/// The items after a compaction: the 410 ERROR, then a re-list; the names re-listed.
async fn relist_after_410(rx: &mut UnboundedReceiver<Item>) -> Vec<String> {
    let mut saw_410 = false;
    let names = loop {
        match recv(rx).await {
            Err(watcher::Error::WatchError(status)) => {
                assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
                saw_410 = true;
            }
            Ok(Event::Init) => {
                let mut names = Vec::new();
                while let Event::InitApply(n) = recv(rx).await.unwrap() {
                    names.push(name(&n));
                }
                break names;
            }
            other => panic!("expected the 410 and a re-list, got {other:?}"),
        }
    };
    assert!(saw_410, "the watcher must have seen the 410");
    names
}

fn check_kube_requests(server: &ApiServer, expired: u64) {
    // What kube-rs sent: a paginated list, watches with bookmarks and timeoutSeconds=290, all
    // as the node's certificate user; no streaming list.
    let requests = server.requests();
    assert!(requests
        .iter()
        .all(|r| r.user == "system:node:master-0" && r.param("sendInitialEvents").is_none()));
    let relist = requests
        .iter()
        .find(|r| !r.is_watch() && r.path() == "/api/v1/nodes")
        .unwrap();
    assert_eq!(relist.param("limit").as_deref(), Some("500"));
    let rewatch = requests.iter().rev().find(|r| r.is_watch()).unwrap();
    assert_eq!(
        rewatch.param("allowWatchBookmarks").as_deref(),
        Some("true")
    );
    assert_eq!(rewatch.param("timeoutSeconds").as_deref(), Some("290"));
    assert!(
        rewatch
            .param("resourceVersion")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= expired
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_watcher_pages_the_initial_list() {
    let f = Fixture::start("kube-pages", Options::default()).unwrap();
    add_cluster(&f.server);
    let path = f.dir.join("kubeconfig");
    write_kubeconfig(&path, &f.server.url(), None, &f.pki.embedded()).unwrap();
    let api: Api<Node> = Api::all(client_from(&path).await.unwrap());
    let config = watcher::Config::default()
        .page_size(1)
        .labels("node-role.kubernetes.io/master");
    let mut stream = watcher::watcher(api, config).boxed();
    let mut names = Vec::new();
    loop {
        let item = tokio::time::timeout(Duration::from_secs(15), stream.next()).await;
        match item
            .expect("an item within 15 s")
            .expect("the watcher goes on")
            .unwrap()
        {
            Event::Init => {}
            Event::InitApply(n) => names.push(name(&n)),
            Event::InitDone => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(names, ["master-0", "master-1"]);
    let lists: Vec<_> = f
        .server
        .requests()
        .into_iter()
        .filter(|r| !r.is_watch())
        .collect();
    assert_eq!(lists.len(), 2, "one page per master: {lists:#?}");
    assert!(lists[1].param("continue").is_some());
    assert_eq!(
        lists[1].param("labelSelector").as_deref(),
        Some("node-role.kubernetes.io/master")
    );
}
