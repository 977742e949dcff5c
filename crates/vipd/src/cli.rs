//! Command-line entry points: `run`, `check-config`, `vrids`, `detect-interface`, `import`, and
//! the control-socket clients `status`, `reload`, `resign`, `resume`.
//!
//! Exit status: 0 on success, 1 when the command ran and failed (invalid configuration, no
//! matching interface, an invalid installer-era VRID), 2 for usage errors (as clap does).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::{self, Config, InstanceConfig, VridSource};

mod ctl;
mod import;

#[derive(Debug, Parser)]
#[command(
    name = "vipd",
    version,
    about = "Virtual-IP failover (VRRP) and cluster DNS for bare-metal clusters, in one daemon"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load and validate the configuration, then run the daemon in the foreground.
    Run {
        /// Configuration file.
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// Log filter, e.g. `info` or `vipd=debug`; overrides RUST_LOG. Default: info.
        #[arg(long)]
        log_level: Option<String>,
        /// Give VIPs this valid lifetime in seconds, renewed while held, instead of forever: a
        /// vipd killed without SIGTERM (SIGKILL, OOM, `podman kube down` of podman 4.3) leaves
        /// no VIP behind for longer. Keep it above the Master_Down_Interval (about 3.6 s at 1 s
        /// adverts) so the next Master takes over before it runs out. Default: forever.
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(2..=86400))]
        vip_lifetime: Option<u32>,
    },
    /// Validate the configuration and print what would run; exit 1 on any error.
    CheckConfig {
        /// Configuration file.
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Print the VRIDs OpenShift derives for a cluster name (like `runtimecfg vr-ids`).
    Vrids {
        /// The cluster name (metadata.name of install-config.yaml).
        cluster_name: String,
        /// Print the installer-era (2019 bootstrap script) values instead; exit 1 if one is 0.
        #[arg(long)]
        legacy: bool,
    },
    /// Print the subnet and interface that carry a VIP (like `get_vip_subnet_cidr`).
    DetectInterface {
        /// The virtual IP address.
        vip: IpAddr,
        /// Addresses to disregard (VIPs this node may already hold).
        #[arg(long, value_name = "ADDRESS")]
        ignore: Vec<IpAddr>,
    },
    /// Print this node's IP in the cluster network (like `runtimecfg node-ip show`): the hint
    /// file of nodeip-configuration, else the address whose subnet holds a VIP, else the
    /// default route's. For the resolv-prepender: `nameserver $(vipd node-ip VIPS...)`.
    NodeIp {
        /// The API and ingress VIPs (any address in the wanted subnet works).
        vips: Vec<IpAddr>,
        /// An address inside the wanted subnet, tried before the VIPs; default: $NODEIP_HINT.
        #[arg(long, env = "NODEIP_HINT")]
        hint: Option<IpAddr>,
        /// Prefer an IPv6 address when both families match.
        #[arg(long)]
        prefer_ipv6: bool,
        /// The VIPs are a user-managed load balancer's, not on this network: use the default
        /// route's interface.
        #[arg(long)]
        user_managed_lb: bool,
        /// Read the hint files from here (default: /run/nodeip-configuration); `none` ignores them.
        #[arg(long, default_value = crate::net::nodeip::HINT_DIR)]
        hint_dir: PathBuf,
    },
    /// Translate OpenShift's keepalived.conf / Corefile into a vipd configuration on stdout.
    Import {
        #[command(subcommand)]
        source: import::Source,
    },
    /// Show what the running daemon is doing: state, priority and why, Master, VIPs, checks, DNS.
    Status {
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Ask the running daemon to re-read its configuration (same as SIGHUP); prints the outcome.
    Reload {
        #[command(flatten)]
        target: Target,
    },
    /// Hand an instance's VIPs to another node (make-before-break) and stay out of the election.
    Resign {
        /// Instance name, e.g. `api`.
        instance: String,
        #[command(flatten)]
        target: Target,
    },
    /// Let a resigned instance rejoin the election.
    Resume {
        /// Instance name, e.g. `api`.
        instance: String,
        #[command(flatten)]
        target: Target,
    },
}

/// Which daemon to talk to.
#[derive(Debug, clap::Args)]
struct Target {
    /// Control socket; default: `[control] socket` of the configuration file.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Configuration file to read the socket path from.
    #[arg(long, short, default_value = config::DEFAULT_PATH)]
    config: PathBuf,
}

impl Target {
    fn socket(&self) -> PathBuf {
        ctl::socket_path(self.socket.as_deref(), &self.config)
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Prints usage or help; exits 2 for errors, 0 for --help / --version.
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Run {
            config,
            log_level,
            vip_lifetime,
        } => {
            crate::net::netlink::set_vip_lifetime(
                vip_lifetime.map(|s| std::time::Duration::from_secs(u64::from(s))),
            );
            report(run(&config, log_level.as_deref()))
        }
        Command::CheckConfig { config } => check_config(&config),
        Command::Vrids {
            cluster_name,
            legacy,
        } => vrids(&cluster_name, legacy),
        Command::DetectInterface { vip, ignore } => report(detect_interface(vip, &ignore)),
        Command::NodeIp {
            vips,
            hint,
            prefer_ipv6,
            user_managed_lb,
            hint_dir,
        } => report(node_ip(
            &vips,
            hint,
            prefer_ipv6,
            user_managed_lb,
            &hint_dir,
        )),
        Command::Import { source } => import::run(source),
        Command::Status { json, target } => report(ctl::status(&target.socket(), json)),
        Command::Reload { target } => report(
            ctl::send(&target.socket(), &crate::daemon::control::Request::Reload)
                .and_then(ctl::print_reply),
        ),
        Command::Resign { instance, target } => report(
            ctl::send(
                &target.socket(),
                &crate::daemon::control::Request::Resign { instance },
            )
            .and_then(ctl::print_reply),
        ),
        Command::Resume { instance, target } => report(
            ctl::send(
                &target.socket(),
                &crate::daemon::control::Request::Resume { instance },
            )
            .and_then(ctl::print_reply),
        ),
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vipd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: &Path, log_level: Option<&str>) -> anyhow::Result<()> {
    init_tracing(log_level)?;
    let config = Config::load(path)?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        config = %path.display(),
        instances = config.instances.len(),
        dns = config.dns.is_some(),
        "configuration loaded"
    );
    crate::daemon::run(config, path)
}

fn init_tracing(log_level: Option<&str>) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match log_level {
        Some(level) => EnvFilter::try_new(level)
            .with_context(|| format!("--log-level {level:?}: not a log filter; accepted e.g. \"info\", \"debug\", \"vipd=debug,warn\""))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

fn check_config(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            print!("{}", summary(&config));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{}: configuration refused", path.display());
            ExitCode::FAILURE
        }
    }
}

/// The human summary `vipd check-config` prints for a valid configuration.
pub fn summary(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: configuration is valid", config.source.display());
    for w in &config.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    match &config.identity_source {
        Some(from) => {
            let _ = writeln!(out, "cluster {} (read from {from})", config.cluster_name);
        }
        None => {
            let _ = writeln!(out, "cluster {}", config.cluster_name);
        }
    }
    if let Some(role) = config.role {
        let _ = writeln!(
            out,
            "role {role}: OpenShift's {role} settings fill what the file does not set"
        );
        if !config.role_checks.is_empty() {
            let _ = writeln!(
                out,
                "  checks from the role: {}",
                config.role_checks.join(", ")
            );
        }
    }
    for i in &config.instances {
        instance_summary(&mut out, i, config.role);
    }
    for g in &config.sync_groups {
        let _ = writeln!(
            out,
            "sync group {}: {} move together (Master, Backup, Fault)",
            g.name,
            g.instances.join(", ")
        );
    }
    kubernetes_summary(&mut out, config);
    dns_summary(&mut out, config);
    match &config.http {
        None => {
            let _ = writeln!(out, "http: off");
        }
        Some(h) => {
            let _ = writeln!(out, "http: /health /ready /metrics on {}", h.listen);
        }
    }
    let _ = writeln!(out, "control socket: {}", config.control.socket.display());
    out
}

/// `[kubernetes]`: where the peers come from, for which instances.
fn kubernetes_summary(out: &mut String, config: &Config) {
    if let Some(k) = &config.kubernetes {
        let names: Vec<String> = k
            .instances
            .iter()
            .map(|(n, r)| format!("{n} ({})", r.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "kubernetes: peers from the node list via {} for {}{}; changes settle for {:?}",
            k.kubeconfig.display(),
            if names.is_empty() {
                "no instance".to_string()
            } else {
                names.join(", ")
            },
            if k.dns_nodes {
                ", and DNS node records"
            } else {
                ""
            },
            k.settle
        );
    }
}

/// `[dns]`: what the cluster DNS answers itself, where it forwards the rest.
fn dns_summary(out: &mut String, config: &Config) {
    let Some(dns) = &config.dns else {
        let _ = writeln!(out, "dns: off");
        return;
    };
    let listen: Vec<String> = dns.listen.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(out, "dns: listening on {} (UDP and TCP)", listen.join(", "));
    let cd = &dns.cluster_domain;
    match dns.records {
        vipd_dns::zone::Records::Cluster if dns.api_int_vips == dns.api_vips => {
            let _ = writeln!(out, "  api.{cd}, api-int.{cd} -> {}", join(&dns.api_vips));
        }
        vipd_dns::zone::Records::Cluster => {
            let _ = writeln!(out, "  api.{cd} -> {}", join(&dns.api_vips));
            let _ = writeln!(out, "  api-int.{cd} -> {}", join(&dns.api_int_vips));
        }
        vipd_dns::zone::Records::Nodes => {
            let _ = writeln!(
                out,
                "  api.{cd}, api-int.{cd}, *.apps.{cd}: forwarded (records = \"nodes\")"
            );
        }
    }
    if dns.records == vipd_dns::zone::Records::Cluster {
        let _ = writeln!(out, "  *.apps.{cd} -> {}", join(&dns.ingress_vips));
    }
    for n in &dns.nodes {
        let _ = writeln!(
            out,
            "  {}, {}.{cd} -> {}",
            n.name,
            n.name,
            join(&n.addresses)
        );
    }
    let transport = if dns.force_tcp { " over TCP" } else { "" };
    if dns.upstreams.is_empty() {
        let _ = writeln!(
            out,
            "  anything else forwarded{transport} to the name servers of {}",
            dns.resolv_conf.display()
        );
    } else {
        let upstreams: Vec<String> = dns.upstreams.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(
            out,
            "  anything else forwarded{transport} to {}, tried in this order",
            upstreams.join(", ")
        );
    }
}

fn instance_summary(out: &mut String, i: &InstanceConfig, role: Option<config::Role>) {
    // " (role master default)" after a value the role supplied.
    let origin = |key: &str| match role {
        Some(r) if i.role_keys.contains(&key) => format!(" ({})", r.origin()),
        _ => String::new(),
    };
    let vrid_from = match &i.vrid_source {
        VridSource::Configured => "configured".to_owned(),
        VridSource::Derived(from) => format!("derived from {from:?}"),
    };
    let interface = i
        .interface
        .clone()
        .unwrap_or_else(|| "detected at start".to_owned());
    let version = match i.version {
        vipd_vrrp::Version::V2 => "VRRPv2",
        vipd_vrrp::Version::V3 => "VRRPv3",
    };
    let auth = match i.auth {
        vipd_vrrp::Auth::None => "",
        vipd_vrrp::Auth::Pass(_) => " PASS auth",
    };
    let _ = writeln!(
        out,
        "instance {}: {}{}",
        i.name,
        join(&i.vips),
        origin("vips")
    );
    let _ = writeln!(
        out,
        "  VRID {} ({vrid_from}), interface {interface}",
        i.vrid
    );
    let _ = writeln!(
        out,
        "  priority {}{}, {version}{}{auth}{}, advert every {}{}, preempt {}",
        i.priority,
        origin("priority"),
        // One note for the pair when the role chose both version and password.
        if i.role_keys.contains(&"password") && i.role_keys.contains(&"version") {
            String::new()
        } else {
            origin("version")
        },
        origin("password"),
        config::format_duration(i.advert_interval),
        origin("advert_interval"),
        if i.preempt { "on" } else { "off" }
    );
    let source = i
        .unicast_source
        .map(|s| s.to_string())
        .unwrap_or_else(|| "the interface's primary address".to_owned());
    if i.is_unicast() {
        let _ = writeln!(out, "  unicast from {source} to {}", join(&i.peers));
    } else {
        let group = match i.family {
            config::Family::Ipv4 => "224.0.0.18",
            config::Family::Ipv6 => "ff02::12",
        };
        let _ = writeln!(out, "  multicast to {group} from {source}");
    }
    if !i.track.is_empty() {
        let tracks: Vec<String> = i
            .track
            .iter()
            .map(|t| match t.weight {
                0 => format!("{} (fault)", t.check),
                w => format!("{} ({w:+})", t.check),
            })
            .collect();
        let _ = writeln!(out, "  tracks {}{}", tracks.join(", "), origin("track"));
    }
}

fn join(addrs: &[IpAddr]) -> String {
    let parts: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    parts.join(", ")
}

fn vrids(cluster: &str, legacy: bool) -> ExitCode {
    if !legacy {
        let v = vipd_vrrp::vrid::cluster_vrids(cluster);
        println!("APIVirtualRouterID: {}", v.api);
        println!("IngressVirtualRouterID: {}", v.ingress);
        return ExitCode::SUCCESS;
    }
    // The 2019 installer derived API and DNS instances (there was no ingress VIP yet).
    let mut status = ExitCode::SUCCESS;
    for (label, suffix) in [("APIVirtualRouterID", "api"), ("DNSVirtualRouterID", "dns")] {
        match vipd_vrrp::vrid::legacy_vrid(&format!("{cluster}-{suffix}")) {
            Ok(v) => println!("{label}: {v}"),
            Err(e) => {
                println!("{label}: 0 (invalid)");
                eprintln!("vipd: {e}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}

fn node_ip(
    vips: &[IpAddr],
    hint: Option<IpAddr>,
    prefer_ipv6: bool,
    user_managed_lb: bool,
    hint_dir: &std::path::Path,
) -> anyhow::Result<()> {
    use crate::net::nodeip;
    // What nodeip-configuration chose at boot is the answer, as kubelet uses it.
    if hint_dir != std::path::Path::new("none") {
        let hints = nodeip::Hints::read(hint_dir);
        let preferred = if prefer_ipv6 {
            hints.ipv6.or(hints.ipv4)
        } else {
            hints.primary
        };
        if let Some(ip) = preferred.or(hints.primary) {
            println!("{ip}");
            return Ok(());
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let addrs = runtime
        .block_on(crate::net::iface::local_addresses())
        .context("cannot list the local addresses over netlink")?;
    let routes = runtime
        .block_on(nodeip::default_route_interfaces())
        .context("cannot list the routes over netlink")?;
    let mut targets: Vec<IpAddr> = hint.into_iter().collect();
    if !user_managed_lb {
        targets.extend_from_slice(vips);
    }
    let ip = nodeip::choose(&addrs, &targets, vips, prefer_ipv6, routes)
        .context("cannot choose this node's IP")?;
    println!("{ip}");
    Ok(())
}

fn detect_interface(vip: IpAddr, ignore: &[IpAddr]) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let addrs = runtime
        .block_on(crate::net::iface::local_addresses())
        .context("cannot list the local addresses over netlink")?;
    let d = crate::net::iface::detect(vip, &addrs, ignore)
        .with_context(|| format!("no interface carries VIP {vip}"))?;
    println!("{}/{}", d.subnet.0, d.subnet.1);
    println!("interface {} (local address {})", d.ifname, d.local_address);
    Ok(())
}
