//! The control channel of a stand-in running as another process (`lab-kube-api` in a lab
//! namespace): a Unix stream socket (a path, so it is reachable across network namespaces)
//! taking one command per line and answering one line per command, `ok[ PAYLOAD]` or
//! `err MESSAGE`. Commands:
//!
//! | command | effect, payload |
//! | --- | --- |
//! | `ping` | nothing |
//! | `rv` | the current resourceVersion |
//! | `nodes` / `get NAME` | the nodes (JSON array) / one node (JSON) |
//! | `add NAME ROLES [ADDR...]` | adds [`node`](super::node)`(NAME, ROLES, ADDRs)`; ROLES comma-separated or `-`; ADDR `TYPE=VALUE` (`InternalIP=`, `ExternalIP=`, `Hostname=`) or a bare IP (InternalIP); the new resourceVersion |
//! | `add-json JSON` | adds a node object; the new resourceVersion |
//! | `patch NAME JSON` | JSON merge patch; the new resourceVersion |
//! | `ready NAME true\|false` | the Ready condition; the new resourceVersion |
//! | `delete NAME` | the new resourceVersion |
//! | `touch` / `compact` / `expire` | see [`ApiHandle`]; the resourceVersion |
//! | `close-watches` | ends open watches |
//! | `fault KIND [TARGET [COUNT]]` | KIND as [`Fault`] in kebab case or `none`; TARGET any/list/watch/get |
//! | `requests` | the requests served (JSON array of request records) |
//! | `watches` | the number of open watches |

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::{node, ApiHandle, Fault, Shared, Target};

/// Longest command line.
const MAX_LINE: u64 = 1 << 20;
/// A control connection idle this long is closed.
const IDLE: Duration = Duration::from_secs(600);

/// Binds the socket (replacing a stale one).
pub(crate) fn bind(path: &Path) -> Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

pub(crate) fn spawn(shared: Arc<Shared>, listener: UnixListener) -> Result<()> {
    let listener = tokio::net::UnixListener::from_std(listener)?;
    let handle = ApiHandle(shared);
    tokio::spawn(async move {
        let mut shutdown = handle.0.shutdown.subscribe();
        loop {
            tokio::select! {
                _ = super::stopped(&mut shutdown) => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => { tokio::spawn(session(handle.clone(), stream)); }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                },
            }
        }
    });
    Ok(())
}

async fn session(handle: ApiHandle, stream: tokio::net::UnixStream) {
    let (rd, mut wr) = stream.into_split();
    let mut rd = tokio::io::BufReader::new(rd);
    loop {
        let mut line = String::new();
        let read = async {
            let mut limited = (&mut rd).take(MAX_LINE);
            limited.read_line(&mut line).await
        };
        match tokio::time::timeout(IDLE, read).await {
            Ok(Ok(n)) if n > 0 && line.ends_with('\n') => {}
            _ => return,
        }
        let reply = match execute(&handle, line.trim()) {
            Ok(payload) if payload.is_empty() => "ok\n".to_string(),
            Ok(payload) => format!("ok {payload}\n"),
            Err(e) => format!("err {}\n", format!("{e:#}").replace('\n', " ")),
        };
        if wr.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Parses `add`'s arguments into a node object.
pub fn parse_node(args: &[&str]) -> Result<Value> {
    let [name, roles, addrs @ ..] = args else {
        bail!("usage: add NAME ROLES [ADDR...]");
    };
    let roles: Vec<&str> = match *roles {
        "-" => vec![],
        r => r.split(',').filter(|r| !r.is_empty()).collect(),
    };
    let mut addresses = Vec::new();
    for a in addrs {
        let pair = match a.split_once('=') {
            Some((
                t @ ("InternalIP" | "ExternalIP" | "Hostname" | "InternalDNS" | "ExternalDNS"),
                v,
            )) => (t, v),
            Some((t, _)) => bail!("unknown address type {t:?}"),
            None if a.parse::<IpAddr>().is_ok() => ("InternalIP", *a),
            None => bail!("address {a:?}: expected TYPE=VALUE or an IP address"),
        };
        addresses.push(pair);
    }
    Ok(node(name, &roles, &addresses))
}

fn json_arg(rest: &str) -> Result<Value> {
    serde_json::from_str(rest).context("parsing the JSON argument")
}

fn set_fault(handle: &ApiHandle, args: &[&str]) -> Result<String> {
    match args {
        ["none"] => handle.clear_fault(),
        [kind, rest @ ..] if rest.len() <= 2 => {
            let fault: Fault = kind.parse()?;
            let target: Target = rest.first().map_or(Ok(Target::Any), |t| t.parse())?;
            let times = rest
                .get(1)
                .map(|n| n.parse::<u32>())
                .transpose()
                .context("COUNT")?;
            handle.set_fault(fault, target, times);
        }
        _ => bail!("usage: fault KIND [TARGET [COUNT]] | fault none"),
    }
    Ok(String::new())
}

/// Executes one command line; `Ok` holds the payload.
pub fn execute(handle: &ApiHandle, line: &str) -> Result<String> {
    let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    let args: Vec<&str> = rest.split_whitespace().collect();
    let rv = |r: Result<u64>| r.map(|v| v.to_string());
    match (cmd, args.as_slice()) {
        ("ping", []) => Ok(String::new()),
        ("rv", []) => Ok(handle.resource_version().to_string()),
        ("nodes", []) => Ok(Value::from(handle.nodes()).to_string()),
        ("get", [name]) => handle
            .get(name)
            .map(|n| n.to_string())
            .ok_or_else(|| anyhow!("nodes \"{name}\" not found")),
        ("add", _) => rv(handle.add(parse_node(&args)?)),
        ("add-json", _) => rv(handle.add(json_arg(rest)?)),
        ("patch", [name, ..]) => {
            let patch = json_arg(rest[name.len()..].trim())?;
            rv(handle.patch(name, &patch))
        }
        ("ready", [name, ready]) => {
            rv(handle.set_ready(name, ready.parse().context("true or false")?))
        }
        ("delete", [name]) => rv(handle.delete(name)),
        ("touch", []) => Ok(handle.touch().to_string()),
        ("compact", []) => Ok(handle.compact().to_string()),
        ("expire", []) => Ok(handle.expire().to_string()),
        ("close-watches", []) => {
            handle.close_watches();
            Ok(String::new())
        }
        ("fault", _) => set_fault(handle, &args),
        ("requests", []) => Ok(json!(handle
            .requests()
            .iter()
            .map(|r| r.to_json())
            .collect::<Vec<_>>())
        .to_string()),
        ("watches", []) => Ok(handle.open_watches().to_string()),
        _ => bail!("unknown command or arguments: {line:?}"),
    }
}

/// The client side, for tests and `lab-kube-api ctl`.
#[derive(Debug, Clone)]
pub struct ControlClient {
    pub path: PathBuf,
    pub timeout: Duration,
}

impl ControlClient {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ControlClient {
            path: path.into(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Sends one command; the payload of `ok`, or the message of `err` as an error.
    pub fn send(&self, command: &str) -> Result<String> {
        if command.contains('\n') {
            bail!("a command is one line");
        }
        let mut stream = UnixStream::connect(&self.path)
            .with_context(|| format!("connecting to {}", self.path.display()))?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        stream.write_all(format!("{command}\n").as_bytes())?;
        let mut reply = String::new();
        BufReader::new(stream)
            .read_line(&mut reply)
            .context("reading the reply")?;
        let reply = reply.trim_end_matches('\n');
        if reply == "ok" {
            return Ok(String::new());
        }
        match reply.split_once(' ') {
            Some(("ok", payload)) => Ok(payload.to_string()),
            Some(("err", message)) => bail!("{message}"),
            _ => bail!("unexpected reply {reply:?}"),
        }
    }
}
