//! Faults of the stand-in Kubernetes API server (`lab::kube_api`), its control socket, and the
//! `lab-kube-api` binary. Loopback only.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lab::kube_api::client::{Fixture, HttpsClient};
use lab::kube_api::control::ControlClient;
use lab::kube_api::{node, ClientCert, Fault, Options, Target};
use serde_json::{json, Value};

fn fixture(name: &str, opts: Options) -> Fixture {
    let f = Fixture::start(name, opts).unwrap();
    f.server
        .add(node(
            "master-0",
            &["master"],
            &[("InternalIP", "192.168.111.20")],
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

#[test]
fn status_faults() {
    let f = fixture("f-status", Options::default());
    f.server.set_fault(Fault::Forbidden, Target::Any, Some(1));
    let r = f.client.get("/api/v1/nodes").unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json().unwrap(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "nodes is forbidden: User \"system:node:master-0\" cannot list resource \"nodes\" in API group \"\" at the cluster scope",
               "reason": "Forbidden", "details": {"kind": "nodes"}, "code": 403})
    );
    assert_eq!(
        f.client.get("/api/v1/nodes").unwrap().status,
        200,
        "the fault was for one request"
    );

    f.server
        .set_fault(Fault::InternalError, Target::Watch, None);
    assert_eq!(
        f.client.get("/api/v1/nodes").unwrap().status,
        200,
        "lists are not a watch"
    );
    for _ in 0..2 {
        let r = f.client.get("/api/v1/nodes?watch=true").unwrap();
        assert_eq!(
            (r.status, r.json().unwrap()["reason"].as_str()),
            (500, Some("InternalError"))
        );
    }
    f.server
        .set_fault(Fault::TooManyRequests, Target::List, Some(2));
    for _ in 0..2 {
        let r = f.client.get("/api/v1/nodes").unwrap();
        assert_eq!((r.status, r.header("retry-after")), (429, Some("1")));
    }
    assert_eq!(f.server.fault(), None);
    f.server.set_fault(Fault::Unauthorized, Target::Get, None);
    assert_eq!(f.client.get("/api/v1/nodes/master-0").unwrap().status, 401);
    f.server.clear_fault();
    assert_eq!(f.client.get("/api/v1/nodes/master-0").unwrap().status, 200);
}

#[test]
fn body_faults() {
    let f = fixture("f-body", Options::default());
    f.server.set_fault(Fault::NotJson, Target::Any, Some(2));
    let r = f.client.get("/api/v1/nodes").unwrap();
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("application/json"))
    );
    assert!(r.json().is_err());
    let mut w = f.client.watch("/api/v1/nodes?watch=true").unwrap();
    assert!(w.next_event().is_err(), "a watch line that is not JSON");

    f.server.set_fault(Fault::NoAddresses, Target::Any, None);
    let list = f.client.get("/api/v1/nodes").unwrap().json().unwrap();
    for item in list["items"].as_array().unwrap() {
        assert!(
            item["status"].get("addresses").is_none() && item["status"]["conditions"].is_array(),
            "{item}"
        );
    }
    let mut w = f.client.watch("/api/v1/nodes?watch=true").unwrap();
    let e = w.next_event().unwrap().unwrap();
    assert!(e["object"]["status"].get("addresses").is_none());

    f.server
        .set_fault(Fault::CloseMidStream, Target::List, Some(1));
    let err = f.client.get("/api/v1/nodes").unwrap_err();
    assert!(
        format!("{err:#}").contains("closed") || format!("{err:#}").contains("eof"),
        "{err:#}"
    );
    f.server
        .set_fault(Fault::CloseMidStream, Target::Watch, Some(1));
    let mut w = f.client.watch("/api/v1/nodes?watch=true").unwrap();
    assert!(w.next_event().is_err(), "the stream is cut inside an event");
    f.server.clear_fault();
    assert_eq!(
        f.client.get("/api/v1/nodes").unwrap().json().unwrap()["items"][0]["status"]["addresses"]
            [0]["type"],
        "InternalIP"
    );
}

#[test]
fn hang_never_answers() {
    let f = fixture(
        "f-hang",
        Options {
            hang_limit: Duration::from_secs(30),
            ..Options::default()
        },
    );
    f.server.set_fault(Fault::Hang, Target::List, Some(1));
    let mut client = f.client.clone();
    client.timeout = Duration::from_millis(700);
    let t0 = Instant::now();
    assert!(client.get("/api/v1/nodes").is_err());
    assert!(t0.elapsed() >= Duration::from_millis(600));
    let hung = f
        .server
        .requests()
        .into_iter()
        .find(|r| r.status == 0)
        .expect("the hung request is logged");
    assert_eq!(hung.line, "GET /api/v1/nodes HTTP/1.1");
    assert_eq!(f.client.get("/api/v1/nodes").unwrap().status, 200);
}

#[test]
fn control_socket() {
    let dir = std::env::temp_dir().join(format!("kube-api-ctl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("control.sock");
    let f = fixture(
        "f-ctl",
        Options {
            control_socket: Some(sock.clone()),
            ..Options::default()
        },
    );
    let ctl = ControlClient::new(&sock);
    assert_eq!(ctl.send("ping").unwrap(), "");
    let rv: u64 = ctl
        .send("add master-1 master,control-plane 192.168.111.21 fd00::21 Hostname=master-1")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(rv, f.server.resource_version());
    let m1 = f.server.get("master-1").unwrap();
    assert_eq!(
        m1["status"]["addresses"][1],
        json!({"address": "fd00::21", "type": "InternalIP"})
    );
    assert_eq!(
        m1["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
        ""
    );
    ctl.send(r#"patch master-1 {"metadata":{"labels":{"zone":"a b"}}}"#)
        .unwrap();
    assert_eq!(
        f.server.get("master-1").unwrap()["metadata"]["labels"]["zone"],
        "a b"
    );
    ctl.send("ready master-1 false").unwrap();
    let got: Value = serde_json::from_str(&ctl.send("get master-1").unwrap()).unwrap();
    assert!(got["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "Unknown"));
    ctl.send(&format!(
        "add-json {}",
        node("worker-7", &["worker"], &[("InternalIP", "10.0.0.7")])
    ))
    .unwrap();
    ctl.send("delete worker-0").unwrap();
    let nodes: Value = serde_json::from_str(&ctl.send("nodes").unwrap()).unwrap();
    assert_eq!(nodes.as_array().unwrap().len(), 3);
    ctl.send("fault forbidden list 1").unwrap();
    assert_eq!(f.client.get("/api/v1/nodes").unwrap().status, 403);
    let requests: Value = serde_json::from_str(&ctl.send("requests").unwrap()).unwrap();
    assert_eq!(requests.as_array().unwrap().last().unwrap()["status"], 403);
    assert_eq!(
        ctl.send("expire").unwrap(),
        f.server.resource_version().to_string()
    );
    assert_eq!(ctl.send("watches").unwrap(), "0");
    for bad in [
        "delete nope",
        "fault sometimes",
        "add",
        "patch master-1 {",
        "frobnicate",
    ] {
        assert!(ctl.send(bad).is_err(), "{bad}");
    }
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lab_kube_api_binary() {
    let dir = std::env::temp_dir().join(format!("kube-api-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bin = env!("CARGO_BIN_EXE_lab-kube-api");
    let mut child = Command::new(bin)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--dir",
            dir.to_str().unwrap(),
            "--server-name",
            "api-int.ostest.test.metalkube.org",
        ])
        .args([
            "--node",
            "master-0 master,control-plane 192.168.111.20",
            "--lifetime",
            "60",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let ready = rx.recv_timeout(Duration::from_secs(20));
    let result = std::panic::catch_unwind(|| {
        assert_eq!(ready.unwrap().trim(), "ready");
        check_binary(bin, &dir);
    });
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// What `lab-kube-api` serves and writes, `ready` printed.
fn check_binary(bin: &str, dir: &std::path::Path) {
    let addr: SocketAddr = std::fs::read_to_string(dir.join("address"))
        .unwrap()
        .parse()
        .unwrap();
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    let cert = ClientCert {
        user: "system:node:master-0".into(),
        groups: vec!["system:nodes".into()],
        cert_pem: read("client.crt"),
        key_pem: read("client.key"),
        cert_path: dir.join("client.crt"),
        key_path: dir.join("client.key"),
    };
    let client = HttpsClient::new(
        addr,
        "api-int.ostest.test.metalkube.org",
        &read("ca.crt"),
        Some(&cert),
    )
    .unwrap();
    let out = Command::new(bin)
        .args([
            "ctl",
            "--dir",
            dir.to_str().unwrap(),
            "add",
            "worker-0",
            "worker",
            "192.168.111.23",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let list = client.get("/api/v1/nodes").unwrap().json().unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let kubeconfig = read("kubeconfig");
    assert!(
        kubeconfig.contains(&format!("server: \"https://{addr}\""))
            && kubeconfig.contains("client-key-data: ")
    );
    assert!(read("kubeconfig-kubelet").contains("kubelet-client-current.pem"));
    assert!(read("requests.log").contains("GET /api/v1/nodes HTTP/1.1"));
}
