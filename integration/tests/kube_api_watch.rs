//! WATCH on the stand-in Kubernetes API server (`lab::kube_api`) over plain HTTPS: synthetic
//! ADDED, replay from a resourceVersion, 410 Expired in the stream, bookmarks, timeoutSeconds,
//! the WatchList gate, selectors, and watches ended by the server. Loopback only.

use std::time::{Duration, Instant};

use lab::kube_api::client::{Fixture, WatchStream};
use lab::kube_api::{node, Options};
use serde_json::{json, Value};

fn fixture(name: &str, opts: Options) -> Fixture {
    let f = Fixture::start(name, opts).unwrap();
    f.server
        .add(node(
            "master-0",
            &["master", "control-plane"],
            &[("InternalIP", "192.168.111.20")],
        ))
        .unwrap();
    f.server
        .add(node(
            "master-1",
            &["master", "control-plane"],
            &[("InternalIP", "192.168.111.21")],
        ))
        .unwrap();
    f.server
        .add(node(
            "worker-0",
            &["worker"],
            &[("InternalIP", "192.168.111.23")],
        ))
        .unwrap();
    f
}

fn watch(f: &Fixture, query: &str) -> WatchStream {
    let mut w = f.client.watch(&format!("/api/v1/nodes?{query}")).unwrap();
    w.set_timeout(Duration::from_secs(5)).unwrap();
    w
}

fn next(w: &mut WatchStream) -> Value {
    w.next_change()
        .unwrap()
        .expect("an event, not the end of the stream")
}

fn kind_name(e: &Value) -> (String, String) {
    (
        e["type"].as_str().unwrap().to_string(),
        e["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

fn kn(kind: &str, name: &str) -> (String, String) {
    (kind.to_string(), name.to_string())
}

#[test]
fn watch_without_resource_version_starts_with_synthetic_added() {
    let f = fixture("w-initial", Options::default());
    let mut w = watch(&f, "watch=true");
    assert_eq!(
        w.headers
            .iter()
            .find(|(k, _)| k == "Transfer-Encoding")
            .map(|(_, v)| v.as_str()),
        Some("chunked")
    );
    let first: Vec<_> = (0..3).map(|_| kind_name(&next(&mut w))).collect();
    assert_eq!(
        first,
        [
            kn("ADDED", "master-0"),
            kn("ADDED", "master-1"),
            kn("ADDED", "worker-0")
        ]
    );

    let added = f
        .server
        .add(node(
            "worker-1",
            &["worker"],
            &[("InternalIP", "192.168.111.24")],
        ))
        .unwrap();
    let modified = f
        .server
        .patch("master-1", &json!({"metadata": {"labels": {"zone": "b"}}}))
        .unwrap();
    let deleted = f.server.delete("worker-0").unwrap();
    let e = next(&mut w);
    assert_eq!(kind_name(&e), kn("ADDED", "worker-1"));
    assert_eq!(
        (
            e["object"]["kind"].as_str(),
            e["object"]["apiVersion"].as_str()
        ),
        (Some("Node"), Some("v1"))
    );
    assert_eq!(
        e["object"]["metadata"]["resourceVersion"],
        added.to_string()
    );
    let e = next(&mut w);
    assert_eq!(kind_name(&e), kn("MODIFIED", "master-1"));
    assert_eq!(e["object"]["metadata"]["labels"]["zone"], "b");
    assert_eq!(
        e["object"]["metadata"]["resourceVersion"],
        modified.to_string()
    );
    let e = next(&mut w);
    assert_eq!(kind_name(&e), kn("DELETED", "worker-0"));
    assert_eq!(
        e["object"]["metadata"]["resourceVersion"],
        deleted.to_string(),
        "DELETED carries the deletion's resourceVersion"
    );
    assert_eq!(
        e["object"]["status"]["addresses"][0]["address"], "192.168.111.23",
        "and the last state"
    );
}

#[test]
fn watch_parameter_forms_and_no_op_writes() {
    let f = fixture("w-forms", Options::default());
    let zone = json!({"metadata": {"labels": {"zone": "b"}}});
    let rv = f.server.patch("master-1", &zone).unwrap();
    // A change that changes nothing writes nothing.
    assert_eq!(
        f.server
            .patch("master-1", &json!({"metadata": {"labels": {"zone": "b"}}}))
            .unwrap(),
        rv
    );
    // watch=1 is a watch too; RV "0" also starts with the current state.
    let mut w1 = watch(&f, "watch=1&resourceVersion=0");
    assert_eq!(kind_name(&next(&mut w1)).0, "ADDED");
    // watch=false is a list.
    let list = f
        .client
        .get("/api/v1/nodes?watch=false")
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["kind"], "NodeList");
}

#[test]
fn watch_from_a_resource_version_replays_what_followed() {
    let f = fixture("w-replay", Options::default());
    let rv0 = f.server.resource_version();
    f.server.set_ready("worker-0", false).unwrap();
    f.server.delete("master-1").unwrap();
    f.server
        .add(node(
            "master-3",
            &["master"],
            &[("InternalIP", "192.168.111.26")],
        ))
        .unwrap();
    // The URL exactly as kube-rs builds it (`?&`, timeoutSeconds=290, bookmarks).
    let mut w = watch(
        &f,
        &format!("&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion={rv0}"),
    );
    let e = next(&mut w);
    assert_eq!(kind_name(&e), kn("MODIFIED", "worker-0"));
    let ready = e["object"]["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["status"], "Unknown");
    assert_eq!(kind_name(&next(&mut w)), kn("DELETED", "master-1"));
    assert_eq!(kind_name(&next(&mut w)), kn("ADDED", "master-3"));
}

#[test]
fn too_old_resource_version_is_an_in_stream_410_and_the_end() {
    let f = fixture(
        "w-410",
        Options {
            history_limit: 3,
            ..Options::default()
        },
    );
    let rv0 = f.server.resource_version();
    for i in 0..4 {
        f.server
            .patch(
                "worker-0",
                &json!({"metadata": {"labels": {"n": i.to_string()}}}),
            )
            .unwrap();
    }
    let compacted = f.server.compacted_resource_version();
    assert!(compacted > rv0);
    let mut w = watch(&f, &format!("watch=true&resourceVersion={rv0}"));
    assert_eq!(w.status, 200, "the 410 comes inside a 200 stream");
    let e = w.next_event().unwrap().unwrap();
    assert_eq!(
        e,
        json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {rv0} ({compacted})"), "reason": "Expired", "code": 410}})
    );
    assert!(
        w.next_event().unwrap().is_none(),
        "the stream ends after the ERROR"
    );
    assert!(w.ended());

    // A watch open before a compaction goes on.
    let now = f.server.resource_version();
    let mut ok = watch(&f, &format!("watch=true&resourceVersion={now}"));
    f.server.compact();
    f.server.delete("worker-0").unwrap();
    assert_eq!(
        kind_name(&next(&mut ok)),
        kn("DELETED", "worker-0"),
        "an open watch survives a compaction"
    );
}

#[test]
fn bookmarks_only_when_allowed_and_carrying_the_current_resource_version() {
    let f = fixture(
        "w-bookmarks",
        Options {
            bookmark_period: Duration::from_millis(200),
            ..Options::default()
        },
    );
    let rv = f.server.resource_version();
    let mut w = watch(
        &f,
        &format!("watch=true&allowWatchBookmarks=true&resourceVersion={rv}"),
    );
    let e = w.next_event().unwrap().unwrap();
    assert_eq!(
        e,
        json!({"type": "BOOKMARK", "object": {"kind": "Node", "apiVersion": "v1", "metadata": {"resourceVersion": rv.to_string()}}})
    );
    let moved = f.server.touch();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let e = w.next_event().unwrap().unwrap();
        assert_eq!(
            e["type"], "BOOKMARK",
            "a write elsewhere is no node event: {e}"
        );
        if e["object"]["metadata"]["resourceVersion"].as_str() == Some(moved.to_string().as_str()) {
            break;
        }
        assert!(Instant::now() < deadline, "no bookmark at {moved}");
    }
    let mut none = watch(
        &f,
        &format!("watch=true&timeoutSeconds=1&resourceVersion={rv}"),
    );
    assert!(
        none.next_event().unwrap().is_none(),
        "no bookmarks unless allowWatchBookmarks"
    );
}

#[test]
fn timeout_seconds_ends_the_stream_cleanly_and_the_connection_goes_on() {
    let f = fixture("w-timeout", Options::default());
    let t0 = Instant::now();
    let mut w = watch(&f, "watch=true&timeoutSeconds=1");
    for _ in 0..3 {
        next(&mut w);
    }
    assert!(w.next_event().unwrap().is_none());
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let mut conn = w.into_connection();
    assert_eq!(
        conn.get("/api/v1/nodes").unwrap().status,
        200,
        "keep-alive after the watch"
    );
}

#[test]
fn send_initial_events_needs_the_watch_list_gate() {
    let f = fixture("w-gate-off", Options::default());
    let q = "/api/v1/nodes?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true";
    let r = f.client.get(q).unwrap();
    assert_eq!(r.status, 422);
    let body = r.json().unwrap();
    assert_eq!(body["message"], "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled");
    assert_eq!(body["details"]["causes"][0]["field"], "sendInitialEvents");
    let r = f
        .client
        .get("/api/v1/nodes?watch=true&resourceVersionMatch=NotOlderThan&resourceVersion=0")
        .unwrap();
    assert_eq!(r.status, 422);
    assert!(r.text().contains(
        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
    ));
    let r = f
        .client
        .get("/api/v1/nodes?watch=true&sendInitialEvents=true")
        .unwrap();
    let body = r.json().unwrap();
    assert_eq!(
        body["details"]["causes"].as_array().unwrap().len(),
        2,
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("[resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan, sendInitialEvents: Forbidden"));

    let g = fixture(
        "w-gate-on",
        Options {
            watch_list_gate: true,
            ..Options::default()
        },
    );
    let rv = g.server.resource_version();
    let mut w = g.client.watch(&format!("{q}&resourceVersion=")).unwrap();
    let added: Vec<_> = (0..3)
        .map(|_| kind_name(&w.next_event().unwrap().unwrap()).0)
        .collect();
    assert_eq!(added, ["ADDED"; 3]);
    let end = w.next_event().unwrap().unwrap();
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(
        end["object"]["metadata"],
        json!({"resourceVersion": rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}})
    );
}

#[test]
fn label_selector_watch_sees_nodes_entering_and_leaving() {
    let f = fixture("w-selector", Options::default());
    let rv = f.server.resource_version();
    let mut w = watch(
        &f,
        &format!("watch=true&labelSelector=node-role.kubernetes.io%2Fmaster&resourceVersion={rv}"),
    );
    f.server
        .patch(
            "worker-0",
            &json!({"metadata": {"labels": {"node-role.kubernetes.io/master": ""}}}),
        )
        .unwrap();
    f.server
        .patch(
            "master-1",
            &json!({"metadata": {"labels": {"node-role.kubernetes.io/master": null}}}),
        )
        .unwrap();
    f.server.add(node("worker-9", &["worker"], &[])).unwrap();
    f.server
        .patch(
            "master-0",
            &json!({"metadata": {"annotations": {"a": "b"}}}),
        )
        .unwrap();
    assert_eq!(kind_name(&next(&mut w)), kn("ADDED", "worker-0"));
    assert_eq!(kind_name(&next(&mut w)), kn("DELETED", "master-1"));
    assert_eq!(
        kind_name(&next(&mut w)),
        kn("MODIFIED", "master-0"),
        "worker-9 is not selected"
    );
}

#[test]
fn watches_ended_by_the_server() {
    let f = fixture("w-closed", Options::default());
    let rv = f.server.resource_version();
    let mut w = watch(&f, &format!("watch=true&resourceVersion={rv}"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while f.server.open_watches() != 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    f.server.close_watches();
    assert!(w.next_event().unwrap().is_none());
    // Resuming from the same resourceVersion works after close_watches, not after expire.
    let mut again = watch(&f, &format!("watch=true&resourceVersion={rv}"));
    let expired = f.server.expire();
    assert!(again.next_event().unwrap().is_none());
    let mut late = watch(&f, &format!("watch=true&resourceVersion={rv}"));
    let e = late.next_event().unwrap().unwrap();
    assert_eq!(e["object"]["code"], 410);
    assert_eq!(
        e["object"]["message"],
        format!("too old resource version: {rv} ({expired})")
    );
    let mut fresh = watch(&f, &format!("watch=true&resourceVersion={expired}"));
    f.server.delete("worker-0").unwrap();
    assert_eq!(kind_name(&next(&mut fresh)), kn("DELETED", "worker-0"));
    drop((w, again, late, fresh));
    let deadline = Instant::now() + Duration::from_secs(5);
    while f.server.open_watches() != 0 {
        assert!(
            Instant::now() < deadline,
            "watches of gone clients must end"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
