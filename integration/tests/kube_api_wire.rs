//! The stand-in Kubernetes API server (`lab::kube_api`) over plain HTTPS: TLS with client
//! certificates, the NodeList shape, pagination, selectors, resourceVersion semantics and
//! validation as apimachinery does them, and HTTP strictness. Loopback only, no root needed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lab::kube_api::client::{Fixture, HttpsClient};
use lab::kube_api::{node, ClientAuth, Options, Pki};
use serde_json::{json, Value};

fn fixture(name: &str) -> Fixture {
    Fixture::start(name, Options::default()).unwrap()
}

fn add_cluster(f: &Fixture) {
    let s = &f.server;
    s.add(node(
        "master-0",
        &["master", "control-plane"],
        &[("InternalIP", "192.168.111.20"), ("Hostname", "master-0")],
    ))
    .unwrap();
    s.add(node(
        "master-1",
        &["master", "control-plane"],
        &[("InternalIP", "192.168.111.21")],
    ))
    .unwrap();
    s.add(node(
        "master-2",
        &["master", "control-plane"],
        &[("InternalIP", "192.168.111.22")],
    ))
    .unwrap();
    s.add(node(
        "worker-0",
        &["worker"],
        &[
            ("InternalIP", "192.168.111.23"),
            ("InternalIP", "fd2e:6f44:5dd8:c956::17"),
        ],
    ))
    .unwrap();
    s.add(node(
        "worker-1",
        &["worker"],
        &[("InternalIP", "192.168.111.24")],
    ))
    .unwrap();
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn get_json(f: &Fixture, target: &str) -> (u16, Value) {
    let r = f.client.get(target).unwrap();
    (r.status, r.json().unwrap())
}

fn expect_status(f: &Fixture, target: &str, code: u16, reason: &str) -> Value {
    let (status, body) = get_json(f, target);
    assert_eq!(status, code, "{target}: {body}");
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["status"], "Failure");
    assert_eq!(body["code"], code);
    assert_eq!(body["reason"], reason, "{body}");
    body
}

#[test]
fn tls_requires_a_client_certificate_signed_by_the_ca() {
    let f = fixture("tls");
    let addr = f.server.addr();
    assert_eq!(f.client.get("/api/v1/nodes").unwrap().status, 200);

    let anonymous = HttpsClient::new(addr, "127.0.0.1", &f.pki.ca_cert_pem, None).unwrap();
    assert!(
        anonymous.get("/api/v1/nodes").is_err(),
        "no client certificate must fail the handshake"
    );

    let other = Pki::generate(&f.dir.join("other"), &["127.0.0.1"]).unwrap();
    let stranger =
        HttpsClient::new(addr, "127.0.0.1", &f.pki.ca_cert_pem, Some(&other.client)).unwrap();
    assert!(
        stranger.get("/api/v1/nodes").is_err(),
        "a certificate from another CA must fail"
    );

    let deadline = Instant::now() + Duration::from_secs(5);
    while f.server.tls_failures().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        f.server.tls_failures().len(),
        2,
        "{:?}",
        f.server.tls_failures()
    );

    // The serving certificate's SANs: the DNS name works, another name does not.
    let by_name = HttpsClient::new(
        addr,
        "api-int.ostest.test.metalkube.org",
        &f.pki.ca_cert_pem,
        Some(&f.pki.client),
    )
    .unwrap();
    assert_eq!(by_name.get("/healthz").unwrap().status, 200);
    let wrong = HttpsClient::new(
        addr,
        "api.example.org",
        &f.pki.ca_cert_pem,
        Some(&f.pki.client),
    )
    .unwrap();
    assert!(wrong.get("/healthz").is_err());

    // The user is the certificate's CN, the groups its O.
    let last = f.server.requests().into_iter().last().unwrap();
    assert_eq!(last.user, "system:node:master-0");
    assert_eq!(last.groups, vec!["system:nodes".to_string()]);
}

#[test]
fn ipv6_loopback() {
    let Ok(f) = Fixture::start_on(
        "v6",
        SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
        Options::default(),
    ) else {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    };
    f.server
        .add(node("master-0", &["master"], &[("InternalIP", "fd00::20")]))
        .unwrap();
    assert!(f.server.url().starts_with("https://[::1]:"));
    let (status, list) = get_json(&f, "/api/v1/nodes");
    assert_eq!(status, 200);
    assert_eq!(names(&list), ["master-0"]);
}

#[test]
fn optional_client_auth_treats_requests_without_a_certificate_as_anonymous() {
    let opts = Options {
        client_auth: ClientAuth::Optional,
        ..Options::default()
    };
    let f = Fixture::start("anon", opts).unwrap();
    let anonymous =
        HttpsClient::new(f.server.addr(), "127.0.0.1", &f.pki.ca_cert_pem, None).unwrap();
    let r = anonymous.get("/api/v1/nodes").unwrap();
    assert_eq!(r.status, 403);
    let body = r.json().unwrap();
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(
        body["message"],
        "nodes is forbidden: User \"system:anonymous\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
    );
    assert_eq!(anonymous.get("/readyz").unwrap().text(), "ok");
    assert_eq!(f.client.get("/api/v1/nodes").unwrap().status, 200);
}

#[test]
fn list_has_the_node_list_shape() {
    let f = fixture("shape");
    add_cluster(&f);
    let r = f.client.get("/api/v1/nodes").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("audit-id").is_some());
    let list = r.json().unwrap();
    assert_eq!(list["kind"], "NodeList");
    assert_eq!(list["apiVersion"], "v1");
    assert_eq!(
        list["metadata"],
        json!({"resourceVersion": f.server.resource_version().to_string()})
    );
    assert_eq!(
        names(&list),
        ["master-0", "master-1", "master-2", "worker-0", "worker-1"]
    );
    let m0 = &list["items"][0];
    assert!(
        m0.get("kind").is_none() && m0.get("apiVersion").is_none(),
        "list items carry no kind/apiVersion: {m0}"
    );
    let meta = &m0["metadata"];
    for key in ["uid", "resourceVersion", "creationTimestamp"] {
        assert!(meta[key].is_string(), "{key}: {meta}");
    }
    assert_eq!(meta["labels"]["node-role.kubernetes.io/master"], "");
    assert_eq!(meta["labels"]["node-role.kubernetes.io/control-plane"], "");
    assert_eq!(
        m0["spec"]["taints"][0]["key"],
        "node-role.kubernetes.io/master"
    );
    assert_eq!(
        m0["status"]["addresses"],
        json!([{"address": "192.168.111.20", "type": "InternalIP"}, {"address": "master-0", "type": "Hostname"}])
    );
    let ready = m0["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["status"], "True");
    assert_eq!(m0["status"]["nodeInfo"]["kubeletVersion"], "v1.33.5");
    let w0 = &list["items"][3];
    assert_eq!(
        w0["metadata"]["labels"]["node-role.kubernetes.io/worker"],
        ""
    );
    assert!(w0["spec"].get("taints").is_none());

    // A single GET carries kind and apiVersion.
    let (status, one) = get_json(&f, "/api/v1/nodes/worker-0");
    assert_eq!(status, 200);
    assert_eq!(
        (one["kind"].as_str(), one["apiVersion"].as_str()),
        (Some("Node"), Some("v1"))
    );
    let missing = expect_status(&f, "/api/v1/nodes/nope", 404, "NotFound");
    assert_eq!(missing["message"], "nodes \"nope\" not found");
    assert_eq!(missing["details"], json!({"name": "nope", "kind": "nodes"}));
}

#[test]
fn pagination_serves_a_consistent_snapshot() {
    let f = fixture("pages");
    add_cluster(&f);
    let (_, first) = get_json(&f, "/api/v1/nodes?&limit=2");
    assert_eq!(names(&first), ["master-0", "master-1"]);
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    assert_eq!(first["metadata"]["remainingItemCount"], 3);

    // Changes after the first page do not show in the next ones.
    f.server.delete("master-2").unwrap();
    f.server
        .add(node(
            "worker-2",
            &["worker"],
            &[("InternalIP", "192.168.111.25")],
        ))
        .unwrap();
    f.server
        .patch(
            "worker-0",
            &json!({"metadata": {"labels": {"changed": "yes"}}}),
        )
        .unwrap();

    let (_, second) = get_json(&f, &format!("/api/v1/nodes?limit=2&continue={token}"));
    assert_eq!(names(&second), ["master-2", "worker-0"]);
    assert_eq!(second["metadata"]["resourceVersion"], rv.as_str());
    assert!(second["items"][1]["metadata"]["labels"]
        .get("changed")
        .is_none());
    let token2 = second["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, third) = get_json(&f, &format!("/api/v1/nodes?limit=2&continue={token2}"));
    assert_eq!(names(&third), ["worker-1"]);
    assert!(third["metadata"].get("continue").is_none());

    // Continue with a resourceVersion is refused; with resourceVersionMatch invalid.
    let b = expect_status(
        &f,
        &format!("/api/v1/nodes?limit=2&continue={token}&resourceVersion={rv}"),
        400,
        "BadRequest",
    );
    assert_eq!(
        b["message"],
        "specifying resource version is not allowed when using continue"
    );
    expect_status(&f, &format!("/api/v1/nodes?limit=2&continue={token}&resourceVersion=0&resourceVersionMatch=NotOlderThan"), 422, "Invalid");
    expect_status(
        &f,
        "/api/v1/nodes?limit=2&continue=garbage",
        400,
        "BadRequest",
    );

    // A token older than the compacted history has expired.
    f.server.compact();
    let e = expect_status(
        &f,
        &format!("/api/v1/nodes?limit=2&continue={token2}"),
        410,
        "Expired",
    );
    assert!(e["message"]
        .as_str()
        .unwrap()
        .starts_with("The provided continue parameter is too old"));
}

#[test]
fn label_and_field_selectors() {
    let f = fixture("selectors");
    add_cluster(&f);
    let sel = |s: &str| {
        let (status, list) = get_json(&f, &format!("/api/v1/nodes?labelSelector={s}"));
        assert_eq!(status, 200, "{s}: {list}");
        names(&list)
    };
    let masters = ["master-0", "master-1", "master-2"];
    assert_eq!(sel("node-role.kubernetes.io/master"), masters);
    assert_eq!(sel("node-role.kubernetes.io%2Fmaster"), masters);
    assert_eq!(sel("node-role.kubernetes.io%2Fmaster%3D"), masters);
    assert_eq!(sel("node-role.kubernetes.io/master=="), masters);
    assert_eq!(
        sel("!node-role.kubernetes.io/master"),
        ["worker-0", "worker-1"]
    );
    assert_eq!(
        sel("node-role.kubernetes.io/worker,!node-role.kubernetes.io/master"),
        ["worker-0", "worker-1"]
    );
    assert_eq!(
        sel("kubernetes.io/hostname%20in%20(master-1,worker-1)"),
        ["master-1", "worker-1"]
    );
    assert_eq!(
        sel("kubernetes.io/hostname!=master-1,node-role.kubernetes.io/master"),
        ["master-0", "master-2"]
    );
    assert_eq!(
        sel("node-role.kubernetes.io/master=yes"),
        Vec::<String>::new()
    );
    for bad in [
        "a%20b",
        "node-role.kubernetes.io/master%3D%3Dx%3Dy",
        "-x",
        "x,",
    ] {
        let s = expect_status(
            &f,
            &format!("/api/v1/nodes?labelSelector={bad}"),
            400,
            "BadRequest",
        );
        assert!(
            s["message"]
                .as_str()
                .unwrap()
                .contains("unable to parse requirement"),
            "{s}"
        );
    }
    let (_, one) = get_json(&f, "/api/v1/nodes?fieldSelector=metadata.name%3Dworker-1");
    assert_eq!(names(&one), ["worker-1"]);
    let s = expect_status(
        &f,
        "/api/v1/nodes?fieldSelector=status.phase%3DRunning",
        400,
        "BadRequest",
    );
    assert_eq!(s["message"], "field label not supported: status.phase");
    // With a selector, pages have no remainingItemCount.
    let (_, page) = get_json(
        &f,
        "/api/v1/nodes?labelSelector=node-role.kubernetes.io%2Fmaster&limit=1",
    );
    assert!(page["metadata"]["continue"].is_string());
    assert!(page["metadata"].get("remainingItemCount").is_none());
}

#[test]
fn list_options_validation() {
    let f = fixture("rv");
    add_cluster(&f);

    let v = expect_status(
        &f,
        "/api/v1/nodes?resourceVersionMatch=NotOlderThan",
        422,
        "Invalid",
    );
    assert_eq!(v["message"], "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided");
    assert_eq!(
        v["details"]["causes"][0],
        json!({"reason": "FieldValueForbidden", "field": "resourceVersionMatch",
        "message": "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"})
    );
    let v = expect_status(
        &f,
        "/api/v1/nodes?resourceVersion=0&resourceVersionMatch=Exact",
        422,
        "Invalid",
    );
    assert!(v["message"]
        .as_str()
        .unwrap()
        .ends_with("resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""));
    let v = expect_status(&f, "/api/v1/nodes?sendInitialEvents=true", 422, "Invalid");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .ends_with("sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"));
    let v = expect_status(
        &f,
        "/api/v1/nodes?resourceVersion=5&resourceVersionMatch=Newest",
        422,
        "Invalid",
    );
    assert!(v["message"].as_str().unwrap().contains(
        "Unsupported value: \"Newest\": supported values: \"Exact\", \"NotOlderThan\", \"\""
    ));
    expect_status(&f, "/api/v1/nodes?resourceVersion=abc", 400, "BadRequest");
    expect_status(&f, "/api/v1/nodes?limit=many", 400, "BadRequest");
}

#[test]
fn list_resource_version_semantics() {
    let opts = Options {
        too_large_rv_wait: Duration::from_millis(300),
        ..Options::default()
    };
    let f = Fixture::start("rv-sem", opts).unwrap();
    add_cluster(&f);
    let old = f.server.resource_version();
    f.server.delete("worker-1").unwrap();
    let now = f.server.resource_version();

    // Exact: the state at that resourceVersion.
    let (_, exact) = get_json(
        &f,
        &format!("/api/v1/nodes?resourceVersion={old}&resourceVersionMatch=Exact"),
    );
    assert_eq!(exact["metadata"]["resourceVersion"], old.to_string());
    assert_eq!(names(&exact).len(), 5);
    // No match with a limit is Exact too; without a limit it is NotOlderThan (current state).
    let (_, legacy_paged) = get_json(&f, &format!("/api/v1/nodes?resourceVersion={old}&limit=10"));
    assert_eq!(legacy_paged["metadata"]["resourceVersion"], old.to_string());
    let (_, legacy) = get_json(&f, &format!("/api/v1/nodes?resourceVersion={old}"));
    assert_eq!(legacy["metadata"]["resourceVersion"], now.to_string());
    assert_eq!(names(&legacy).len(), 4);
    let (_, any) = get_json(
        &f,
        "/api/v1/nodes?resourceVersion=0&resourceVersionMatch=NotOlderThan",
    );
    assert_eq!(any["metadata"]["resourceVersion"], now.to_string());

    // A resourceVersion the server has not reached: 504 after its wait, or served once reached.
    let future = now + 1;
    let s = expect_status(
        &f,
        &format!("/api/v1/nodes?resourceVersion={future}&resourceVersionMatch=NotOlderThan"),
        504,
        "Timeout",
    );
    assert_eq!(
        s["message"],
        format!("Too large resource version: {future}, current: {now}")
    );
    let h = f.server.handle();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        h.touch()
    });
    let (status, later) = get_json(
        &f,
        &format!("/api/v1/nodes?resourceVersion={future}&resourceVersionMatch=NotOlderThan"),
    );
    writer.join().unwrap();
    assert_eq!(
        (status, later["metadata"]["resourceVersion"].as_str()),
        (200, Some(future.to_string().as_str()))
    );

    // Exact below the compaction point has expired.
    f.server.compact();
    let e = expect_status(
        &f,
        &format!("/api/v1/nodes?resourceVersion={old}&resourceVersionMatch=Exact"),
        410,
        "Expired",
    );
    assert_eq!(
        e["message"],
        "The resourceVersion for the provided list is too old."
    );
}

#[test]
fn strict_http_answers() {
    let f = fixture("strict");
    add_cluster(&f);
    let nf = expect_status(&f, "/api/v1/namespaces/default/pods", 404, "NotFound");
    assert_eq!(
        nf["message"],
        "the server could not find the requested resource"
    );
    expect_status(
        &f,
        "/apis/config.openshift.io/v1/infrastructures",
        404,
        "NotFound",
    );
    expect_status(&f, "/api/v1/nodes/master-0/proxy/metrics", 404, "NotFound");

    let mut conn = f.client.connect().unwrap();
    conn.send_raw(b"POST /api/v1/nodes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}").unwrap();
    let r = conn.read_response().unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(r.json().unwrap()["reason"], "MethodNotAllowed");
    // The same connection goes on (keep-alive) after the body was consumed.
    conn.send_get(
        "/api/v1/nodes",
        &[("Accept", "application/vnd.kubernetes.protobuf")],
    )
    .unwrap();
    let r = conn.read_response().unwrap();
    assert_eq!(
        (r.status, r.json().unwrap()["reason"].as_str()),
        (406, Some("NotAcceptable"))
    );
    conn.send_get("/api/v1/nodes", &[("Accept", "application/json, */*")])
        .unwrap();
    assert_eq!(conn.read_response().unwrap().status, 200);
    conn.send_get(
        "/api/v1/nodes",
        &[("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")],
    )
    .unwrap();
    assert_eq!(conn.read_response().unwrap().status, 406);

    // No Host header: Go's plain-text 400, connection closed.
    let mut conn = f.client.connect().unwrap();
    conn.send_raw(b"GET /api/v1/nodes HTTP/1.1\r\n\r\n")
        .unwrap();
    let r = conn.read_response().unwrap();
    assert_eq!(r.status, 400);
    assert!(r.text().contains("missing required Host header"));

    let (_, version) = get_json(&f, "/version");
    assert_eq!(version["gitVersion"], "v1.33.5");
    assert_eq!(f.client.get("/healthz").unwrap().text(), "ok");

    // Every request is in the log file, one JSON line each, with the request line as sent.
    let log = std::fs::read_to_string(f.dir.join("requests.log")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["request"] == "POST /api/v1/nodes HTTP/1.1" && l["status"] == 405));
    assert!(lines
        .iter()
        .any(|l| l["request"] == "GET /api/v1/nodes HTTP/1.1"
            && l["headers"]["accept"] == "application/vnd.kubernetes.protobuf"));
    assert_eq!(f.server.requests().len(), lines.len());
}
