//! `lab-kube-api`: the stand-in Kubernetes API server (`lab::kube_api`) as a process, for the
//! lab namespaces.
//!
//! ```text
//! lab-kube-api --listen IP:PORT --dir DIR [--server-name NAME]... [--kubeconfig-server URL]
//!              [--tls-server-name NAME] [--node "NAME ROLES [ADDR...]"]... [--bookmark-period SECS]
//!              [--history EVENTS] [--watch-list] [--client-auth required|optional]
//!              [--lifetime SECS]
//! lab-kube-api ctl (--dir DIR | --socket PATH) COMMAND...
//! ```
//!
//! The server generates the PKI into DIR (or reuses it: same CA and client certificate; the
//! serving certificate is re-issued when the names change), with SANs the listen IP and every
//! `--server-name`, and writes there: `kubeconfig` (everything inline), `kubeconfig-files`
//! (file paths), `kubeconfig-kubelet` (one combined `kubelet-client-current.pem`), all naming
//! `--kubeconfig-server` (default `https://LISTEN`) and `--tls-server-name` if given;
//! `requests.log` (one JSON line per request), `control.sock` (see `lab::kube_api::control`) and
//! `address` (the address listened on). `--node` uses the control `add` syntax. It prints
//! `ready` once listening and serves until killed or `--lifetime` (default 3600 s) has passed.
//!
//! `ctl` sends one control command (the words joined by spaces) and prints the payload.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use lab::kube_api::control::{self, ControlClient};
use lab::kube_api::{write_kubeconfig, ApiServer, ClientAuth, Options, Pki};

const USAGE: &str = "usage: lab-kube-api --listen IP:PORT --dir DIR [--server-name NAME]... \
[--kubeconfig-server URL] [--tls-server-name NAME] [--node \"NAME ROLES [ADDR...]\"]... \
[--bookmark-period SECS] [--history EVENTS] [--watch-list] [--client-auth required|optional] [--lifetime SECS]\n       \
lab-kube-api ctl (--dir DIR | --socket PATH) COMMAND...";

#[derive(Default)]
struct Args {
    listen: Option<SocketAddr>,
    dir: Option<PathBuf>,
    names: Vec<String>,
    kubeconfig_server: Option<String>,
    tls_server_name: Option<String>,
    nodes: Vec<String>,
    options: Options,
    lifetime: Option<Duration>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ctl") => ctl(&args[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => parse(&args).and_then(serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab-kube-api: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn seconds(v: &str) -> Result<Duration> {
    let s: f64 = v
        .parse()
        .with_context(|| format!("{v:?} is not a number of seconds"))?;
    if !(0.0..=1e7).contains(&s) {
        bail!("{v:?} seconds is out of range");
    }
    Ok(Duration::from_secs_f64(s))
}

fn parse(argv: &[String]) -> Result<Args> {
    let mut a = Args::default();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        if flag == "--watch-list" {
            a.options.watch_list_gate = true;
            continue;
        }
        let value = it
            .next()
            .ok_or_else(|| anyhow!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--listen" => {
                a.listen = Some(value.parse().with_context(|| format!("--listen {value}"))?)
            }
            "--dir" => a.dir = Some(PathBuf::from(value)),
            "--server-name" => a.names.push(value.clone()),
            "--kubeconfig-server" => a.kubeconfig_server = Some(value.clone()),
            "--tls-server-name" => a.tls_server_name = Some(value.clone()),
            "--node" => a.nodes.push(value.clone()),
            "--bookmark-period" => a.options.bookmark_period = seconds(value)?,
            "--history" => a.options.history_limit = value.parse().context("--history")?,
            "--lifetime" => a.lifetime = Some(seconds(value)?),
            "--client-auth" => {
                a.options.client_auth = match value.as_str() {
                    "required" => ClientAuth::Required,
                    "optional" => ClientAuth::Optional,
                    _ => bail!("--client-auth is required or optional"),
                }
            }
            _ => bail!("unknown argument {flag:?}\n{USAGE}"),
        }
    }
    if a.listen.is_none() || a.dir.is_none() {
        bail!("--listen and --dir are required\n{USAGE}");
    }
    Ok(a)
}

fn serve(mut a: Args) -> Result<()> {
    let (Some(listen), Some(dir)) = (a.listen, a.dir.clone()) else {
        bail!("{USAGE}");
    };
    let mut names = Vec::new();
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    names.extend(a.names.iter().cloned());
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let pki = Pki::load_or_generate(&dir, &names)?;
    a.options.request_log = Some(dir.join("requests.log"));
    a.options.control_socket = Some(dir.join("control.sock"));
    let server = ApiServer::start(listen, &pki, a.options.clone())?;
    let url = a.kubeconfig_server.clone().unwrap_or_else(|| server.url());
    let tls_name = a.tls_server_name.as_deref();
    write_kubeconfig(&dir.join("kubeconfig"), &url, tls_name, &pki.embedded())?;
    write_kubeconfig(&dir.join("kubeconfig-files"), &url, tls_name, &pki.files())?;
    write_kubeconfig(
        &dir.join("kubeconfig-kubelet"),
        &url,
        tls_name,
        &pki.kubelet_files()?,
    )?;
    for spec in &a.nodes {
        let words: Vec<&str> = spec.split_whitespace().collect();
        server
            .add(control::parse_node(&words)?)
            .with_context(|| format!("--node {spec:?}"))?;
    }
    std::fs::write(dir.join("address"), server.addr().to_string())?;
    println!("ready");
    server.wait(a.lifetime.unwrap_or(Duration::from_secs(3600)));
    Ok(())
}

fn ctl(argv: &[String]) -> Result<()> {
    let (socket, command) = match argv {
        [flag, value, rest @ ..] if flag == "--dir" => {
            (PathBuf::from(value).join("control.sock"), rest)
        }
        [flag, value, rest @ ..] if flag == "--socket" => (PathBuf::from(value), rest),
        _ => bail!("{USAGE}"),
    };
    if command.is_empty() {
        bail!("no command\n{USAGE}");
    }
    let payload = ControlClient::new(socket).send(&command.join(" "))?;
    if !payload.is_empty() {
        println!("{payload}");
    }
    Ok(())
}
