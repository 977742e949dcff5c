//! The daemon: starts one task per VRRP instance, the health monitor, the cluster DNS, the HTTP
//! endpoints and the control socket, then reacts to signals.
//!
//! - SIGTERM / SIGINT: every Master resigns make-before-break (priority-0 advert, VIPs kept until
//!   a new Master is heard or `resign_wait` passes), then the process exits.
//! - SIGHUP (or `vipd reload`): the configuration file is read again; if it is invalid the running
//!   configuration stays and the errors are logged. Instances whose identity (VRID, version,
//!   family, interface, peers) is unchanged keep their state; others are restarted.

pub mod control;
pub mod dns;
pub mod handoff;
pub mod instance;
pub mod kube_peers;
pub mod logind;
pub mod metrics;
pub mod notify;
pub mod status;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};

use crate::bfd::{BfdHandle, InstanceBfd};
use crate::config::{Config, InstanceConfig};
use crate::health::{HealthMonitor, HealthSnapshot, Priority};
use crate::net::netlink::VipManager;

use self::control::{ControlReply, ControlRequest};
use self::instance::{Command, Hooks, Instance, InstanceHandle};
use self::status::{InstanceReport, InstanceStatus};

/// Extra time allowed on top of the longest `resign_wait` for instances to stop on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Runs the daemon in the foreground until SIGTERM / SIGINT.
pub fn run(config: Config, path: &Path) -> anyhow::Result<()> {
    // One thread for VRRP, health checks, netlink, HTTP and the control socket: nothing here
    // blocks, and a single-threaded runtime wakes fewer threads per advert. DNS runs on its
    // own threads (daemon/dns.rs).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(4)
        .thread_name("vipd")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut daemon = Daemon::start(config, path.to_path_buf()).await?;
        daemon.serve().await
    })
}

fn control_socket_error(config: &Config) -> String {
    format!(
        "cannot open the control socket {} ([control] socket)",
        config.control.socket.display()
    )
}

/// Everything the daemon's main loop owns.
struct Daemon {
    config: Config,
    path: PathBuf,
    vips: VipManager,
    instances: Vec<InstanceHandle>,
    health: Option<HealthMonitor>,
    health_rx: Option<watch::Receiver<HealthSnapshot>>,
    dns: Option<dns::DnsRuntime>,
    resolver: Option<crate::resolver::ResolverWatch>,
    shared: Arc<Shared>,
    control_rx: mpsc::Receiver<ControlRequest>,
    started: Instant,
    // [handoff] (handoff.rs): resigns and resumes instances through the control channel.
    handoff: Option<handoff::Handoff>,
    /// logind's shutdown delay lock and signal (logind.rs); `None` without a system bus.
    logind: Option<logind::ShutdownWatch>,
    /// The instances the last PrepareForShutdown(true) resigned: a cancelled shutdown resumes
    /// these and no others (one resigned by `vipd resign` before stays out).
    shutdown_resigned: Vec<String>,
    control_tx: mpsc::Sender<ControlRequest>,
    /// BFD sessions for the instances that use them (bfd/service.rs).
    bfd: BfdHandle,
    /// `[[sync_group]]`s and the state changes of the instances that feed them.
    sync: SyncGroups,
    /// `[kubernetes]`: the node-list watch and what it decided (daemon/kube_peers.rs).
    kube: Option<kube_peers::KubeState>,
}

/// State read by the HTTP endpoints and the control socket.
pub struct Shared {
    pub ready: AtomicBool,
    pub instances: Mutex<Vec<Arc<Mutex<InstanceStatus>>>>,
    pub health: Mutex<Option<watch::Receiver<HealthSnapshot>>>,
    pub dns: Mutex<Option<dns::DnsView>>,
    pub config_path: PathBuf,
    pub started: SystemTime,
    pub reloads: Mutex<ReloadStats>,
    /// `[handoff]`'s state, when it runs.
    pub handoff: Mutex<Option<Arc<Mutex<handoff::HandoffStatus>>>>,
    /// The BFD sessions (bfd/service.rs publishes them here).
    pub bfd: Arc<Mutex<crate::bfd::BfdStatus>>,
    /// `[kubernetes]`'s state, when it runs.
    pub kube: Mutex<Option<Arc<Mutex<crate::kube::KubeStatus>>>>,
}

impl crate::http::Endpoints for Shared {
    fn ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn metrics(&self) -> String {
        metrics::render(self)
    }
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ReloadStats {
    pub ok: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

impl Shared {
    /// Nothing running yet, not ready; `config_path` is shown by `vipd status`.
    pub fn new(config_path: PathBuf, bfd: Arc<Mutex<crate::bfd::BfdStatus>>) -> Shared {
        Shared {
            ready: AtomicBool::new(false),
            instances: Mutex::new(Vec::new()),
            health: Mutex::new(None),
            dns: Mutex::new(None),
            config_path,
            started: SystemTime::now(),
            reloads: Mutex::new(ReloadStats::default()),
            handoff: Mutex::new(None),
            bfd,
            kube: Mutex::new(None),
        }
    }

    /// Reports of every instance, as `vipd status` shows them.
    pub fn instance_reports(&self) -> Vec<InstanceReport> {
        let now = Instant::now();
        let wall = SystemTime::now();
        let list = match self.instances.lock() {
            Ok(list) => list.clone(),
            Err(_) => return Vec::new(),
        };
        list.iter()
            .filter_map(|s| s.lock().ok().map(|s| s.report(now, wall)))
            .collect()
    }

    pub fn health_snapshot(&self) -> Option<HealthSnapshot> {
        let guard = self.health.lock().ok()?;
        guard.as_ref().map(|rx| rx.borrow().clone())
    }
}

impl Daemon {
    async fn start(config: Config, path: PathBuf) -> anyhow::Result<Self> {
        // Before anything on the node is touched: a second vipd must not remove the running
        // one's VIPs as "left behind by an earlier run".
        control::refuse_if_running(&config.control.socket)
            .await
            .with_context(|| control_socket_error(&config))?;
        let vips = VipManager::new()
            .await
            .context("cannot open a netlink connection to manage addresses")?;
        let (control_tx, control_rx) = mpsc::channel(16);
        let bfd = BfdHandle::start()?;
        let sync = SyncGroups::new(&config);
        let shared = Arc::new(Shared::new(path.clone(), Arc::clone(&bfd.status)));

        let (health, health_rx) = start_health(&config);
        if let Ok(mut h) = shared.health.lock() {
            *h = health_rx.clone();
        }
        let snapshot = health_rx.as_ref().map(|rx| rx.borrow().clone());

        let instances = start_instances(&config, &vips, snapshot.as_ref(), &sync, &bfd).await?;
        publish_instances(&shared, &instances);
        bfd.configure(instance_bfd(&instances)).await;

        let dns = start_dns(&config, &shared).await?;
        start_http(&config, &path, &shared).await?;

        // [handoff]: started once the instances run; its requests wait for the main loop.
        let handoff_tx = control_tx.clone();
        let handoff = config
            .handoff
            .clone()
            .map(|h| handoff::Handoff::start(h, handoff_tx.clone()));
        publish_handoff(&shared, handoff.as_ref());

        control::listen(
            &config.control.socket,
            config.control.group.as_deref(),
            control_tx,
            Arc::clone(&shared),
        )
        .await
        .with_context(|| control_socket_error(&config))?;

        // Once DNS answers: the node then resolves through it first ([resolver]).
        let resolver = crate::resolver::start(&config).await?;
        let kube = start_kube(&config, &instances, &shared).await;

        if let Some(every) = notify::watchdog_interval() {
            spawn_watchdog(every, Arc::clone(&shared));
        }
        let logind = if instances.is_empty() {
            None
        } else {
            logind::ShutdownWatch::start().await
        };
        shared.ready.store(true, Ordering::SeqCst);
        notify::notify("READY=1\nSTATUS=running");
        tracing::info!(
            instances = instances.len(),
            dns = dns.is_some(),
            "vipd is running"
        );
        release_freed_heap();
        Ok(Daemon {
            config,
            path,
            vips,
            instances,
            health,
            health_rx,
            dns,
            resolver,
            shared,
            control_rx,
            started: Instant::now(),
            handoff,
            logind,
            shutdown_resigned: Vec::new(),
            control_tx: handoff_tx,
            bfd,
            sync,
            kube,
        })
    }

    async fn serve(&mut self) -> anyhow::Result<()> {
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: resigning and shutting down"); break; }
                _ = int.recv() => { tracing::info!("SIGINT: resigning and shutting down"); break; }
                _ = hup.recv() => { let _ = self.reload().await; }
                changed = health_changed(&mut self.health_rx) => {
                    if changed { self.push_priorities().await; } else { self.health_rx = None; }
                }
                request = self.control_rx.recv() => {
                    if let Some(request) = request { self.on_control(request).await; }
                }
                update = kube_update(&mut self.kube) => self.on_kube(update).await,
                Some((instance, state)) = self.sync.states.recv() => self.on_state(&instance, state).await,
                start = logind::next(&mut self.logind) => self.on_host_shutdown(start).await,
            }
        }
        self.shutdown().await;
        Ok(())
    }

    async fn on_control(&mut self, request: ControlRequest) {
        match request {
            ControlRequest::Reload { reply } => {
                let result = self.reload().await;
                let _ = reply.send(match result {
                    Ok(summary) => ControlReply::ok(summary),
                    Err(e) => ControlReply::error(format!("{e:#}")),
                });
            }
            ControlRequest::Resign { instance, reply } => {
                let _ = reply.send(self.resign_or_resume(&instance, true).await);
            }
            ControlRequest::Resume { instance, reply } => {
                let _ = reply.send(self.resign_or_resume(&instance, false).await);
            }
        }
    }

    /// logind's PrepareForShutdown: `true`, the host is going down: every instance resigns
    /// make-before-break now, then the delay lock goes and the shutdown proceeds (the unit's
    /// SIGTERM comes later and finds nothing left to hand over). `false`, it was cancelled:
    /// the instances this resigned rejoin the election and a new lock is taken.
    async fn on_host_shutdown(&mut self, start: bool) {
        if start {
            tracing::warn!(
                "logind: the host is shutting down or rebooting: handing every VIP to a peer now"
            );
            // A bootstrap's hand-off must not resume what this resigns.
            if let Some(h) = self.handoff.take() {
                h.stop();
            }
            let mut targets: Vec<&InstanceHandle> = Vec::new();
            for h in &self.instances {
                if !logind::is_resigned(h) {
                    targets.push(h);
                    if !self.shutdown_resigned.contains(&h.name) {
                        self.shutdown_resigned.push(h.name.clone());
                    }
                } else if !self.shutdown_resigned.contains(&h.name) {
                    tracing::info!(instance = %h.name, "logind: already resigned (vipd resign or the hand-off); nothing to hand over");
                }
            }
            logind::resign_all(&targets, true, SHUTDOWN_GRACE).await;
            if let Some(watch) = self.logind.as_mut() {
                watch.release();
            }
        } else {
            tracing::warn!("logind: the shutdown was cancelled: rejoining the election");
            let names = std::mem::take(&mut self.shutdown_resigned);
            let mut targets: Vec<&InstanceHandle> = Vec::new();
            for h in &self.instances {
                if names.contains(&h.name) {
                    targets.push(h);
                } else if logind::is_resigned(h) {
                    tracing::info!(instance = %h.name, "logind: resigned before the shutdown (vipd resign or the hand-off): stays out until vipd resume");
                }
            }
            logind::resign_all(&targets, false, SHUTDOWN_GRACE).await;
            if let Some(watch) = self.logind.as_mut() {
                watch.renew().await;
            }
        }
    }

    /// `vipd resign`: hands the VIPs of one instance to another node (make-before-break) and
    /// keeps this node out of the election until `vipd resume` or a restart.
    async fn resign_or_resume(&mut self, name: &str, resign: bool) -> ControlReply {
        let Some(handle) = self.instances.iter().find(|h| h.name == name) else {
            let names: Vec<&str> = self.instances.iter().map(|h| h.name.as_str()).collect();
            return ControlReply::error(format!(
                "no instance named {name:?} (running: {})",
                names.join(", ")
            ));
        };
        let (tx, rx) = oneshot::channel();
        let command = if resign {
            Command::Resign(tx)
        } else {
            Command::Resume(tx)
        };
        if handle.commands.send(command).await.is_err() {
            return ControlReply::error(format!("instance {name:?} is not running"));
        }
        match tokio::time::timeout(handle.config.resign_wait + SHUTDOWN_GRACE, rx).await {
            Ok(Ok(text)) => ControlReply::ok(text),
            _ => ControlReply::error(format!(
                "instance {name:?} did not confirm the resignation in time; check `vipd status`"
            )),
        }
    }

    /// Re-reads the configuration file. A bad file changes nothing.
    async fn reload(&mut self) -> anyhow::Result<String> {
        notify::notify("RELOADING=1");
        let result = self.try_reload().await;
        match &result {
            Ok(summary) => {
                tracing::info!("reload: {summary}");
                release_freed_heap();
                if let Ok(mut s) = self.shared.reloads.lock() {
                    s.ok += 1;
                    s.last_error = None;
                }
            }
            Err(e) => {
                tracing::error!("reload refused, the running configuration stays in effect: {e:#}");
                if let Ok(mut s) = self.shared.reloads.lock() {
                    s.failed += 1;
                    s.last_error = Some(format!("{e:#}"));
                }
            }
        }
        notify::notify("READY=1");
        result
    }

    async fn try_reload(&mut self) -> anyhow::Result<String> {
        let new = Config::load(&self.path)?;
        for w in &new.warnings {
            tracing::warn!("{w}");
        }
        // Placement (interface detection, socket open) of new instances is done before any
        // running instance is touched, so a reload that cannot start fails as a whole.
        let all_vips = all_vips(&new);
        let plans = self.plan_instances(&new, &all_vips).await?;

        let checks_changed = new.checks != self.config.checks;
        if checks_changed {
            self.restart_health(&new).await;
        }
        let snapshot = self.health_rx.as_ref().map(|rx| rx.borrow().clone());

        let mut counts: HashMap<&'static str, usize> = HashMap::new();
        let kept = self.stop_replaced(&plans, &mut counts).await;
        self.apply_plans(plans, kept, &all_vips, snapshot.as_ref(), &mut counts)
            .await?;
        self.reload_services(&new).await?;
        if checks_changed {
            self.push_priorities().await;
        }
        self.config = new;
        let mut parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        parts.sort();
        Ok(format!(
            "configuration {} reloaded: instances {}",
            self.path.display(),
            if parts.is_empty() {
                "none".to_string()
            } else {
                parts.join(", ")
            }
        ))
    }

    /// What a reload does with each instance of `new` (as the Kubernetes API's peers make it,
    /// without those it excludes); instances to start are placed first, so a placement error
    /// refuses the reload before anything changed.
    async fn plan_instances(
        &self,
        new: &Config,
        all_vips: &[IpAddr],
    ) -> anyhow::Result<Vec<(InstanceConfig, Plan)>> {
        let mut plans: Vec<(InstanceConfig, Plan)> = Vec::new();
        let wanted: Vec<InstanceConfig> = new
            .instances
            .iter()
            .filter(|ic| {
                !self
                    .kube
                    .as_ref()
                    .is_some_and(|k| k.excluded.contains(&ic.name))
            })
            .map(|ic| match &self.kube {
                Some(k) => k.effective(ic),
                None => ic.clone(),
            })
            .collect();
        for ic in &wanted {
            let plan = match self.instances.iter().find(|h| h.name == ic.name) {
                Some(h) if h.config == *ic => Plan::Keep,
                Some(h) if instance::same_identity(&h.config, ic) => Plan::Reconfigure,
                Some(_) => Plan::Restart,
                None => Plan::Start,
            };
            if matches!(plan, Plan::Start | Plan::Restart) {
                crate::net::placement::place(ic, all_vips).await?;
            }
            plans.push((ic.clone(), plan));
        }
        Ok(plans)
    }

    /// The checks changed: a new health monitor for `new`'s checks replaces the running one.
    async fn restart_health(&mut self, new: &Config) {
        if let Some(monitor) = self.health.take() {
            monitor.shutdown().await;
        }
        let (health, rx) = start_health(new);
        self.health = health;
        self.health_rx = rx.clone();
        if let Ok(mut h) = self.shared.health.lock() {
            *h = rx;
        }
    }

    /// Stops what was removed or must restart first, so VRIDs and sockets are free; returns
    /// the instances that keep running.
    async fn stop_replaced(
        &mut self,
        plans: &[(InstanceConfig, Plan)],
        counts: &mut HashMap<&'static str, usize>,
    ) -> Vec<InstanceHandle> {
        let mut old: Vec<InstanceHandle> = std::mem::take(&mut self.instances);
        let mut kept = Vec::new();
        for handle in old.drain(..) {
            match plans.iter().find(|(ic, _)| ic.name == handle.name) {
                Some((_, Plan::Keep | Plan::Reconfigure)) => kept.push(handle),
                Some((_, Plan::Restart)) => {
                    stop_instance(handle).await;
                }
                Some((_, Plan::Start)) | None => {
                    *counts.entry("removed").or_default() += 1;
                    stop_instance(handle).await;
                }
            }
        }
        kept
    }

    /// Carries out the plans in the new configuration's order: kept instances stay, updated
    /// ones are reconfigured in place, the others start.
    async fn apply_plans(
        &mut self,
        plans: Vec<(InstanceConfig, Plan)>,
        mut kept: Vec<InstanceHandle>,
        all_vips: &[IpAddr],
        snapshot: Option<&HealthSnapshot>,
        counts: &mut HashMap<&'static str, usize>,
    ) -> anyhow::Result<()> {
        for (ic, plan) in plans {
            let priority = tracked_priority(&ic, snapshot);
            match plan {
                Plan::Keep => {
                    *counts.entry("unchanged").or_default() += 1;
                    if let Some(pos) = kept.iter().position(|h| h.name == ic.name) {
                        self.instances.push(kept.remove(pos));
                    }
                }
                Plan::Reconfigure => {
                    *counts.entry("updated in place").or_default() += 1;
                    if let Some(pos) = kept.iter().position(|h| h.name == ic.name) {
                        let mut handle = kept.remove(pos);
                        let _ = handle
                            .commands
                            .send(Command::Reconfigure(Box::new(ic.clone())))
                            .await;
                        let _ = handle.commands.send(Command::Priority(priority)).await;
                        handle.config = ic;
                        self.instances.push(handle);
                    }
                }
                Plan::Restart | Plan::Start => {
                    let label = if matches!(plan, Plan::Restart) {
                        "restarted"
                    } else {
                        "added"
                    };
                    *counts.entry(label).or_default() += 1;
                    let handle = start_instance(
                        ic,
                        all_vips,
                        self.vips.clone(),
                        priority,
                        self.sync.hooks(&self.bfd),
                    )
                    .await?;
                    self.instances.push(handle);
                }
            }
        }
        Ok(())
    }

    /// After the instances: publishes them and applies the rest of `new` (BFD, Kubernetes,
    /// sync groups, DNS, resolver, hand-off).
    async fn reload_services(&mut self, new: &Config) -> anyhow::Result<()> {
        publish_instances(&self.shared, &self.instances);
        self.bfd.configure(instance_bfd(&self.instances)).await;
        self.reload_kube(new).await;
        self.sync.reload(new, &self.instances);
        if let Some(dns) = &mut self.dns {
            dns.reload(new.dns.as_ref(), new).await?;
        } else if new.dns.is_some() {
            tracing::warn!(
                "reload: [dns] was added; the DNS server starts only on a restart of vipd"
            );
        }
        crate::resolver::reload(&mut self.resolver, new).await?;
        handoff::reload(&mut self.handoff, new.handoff.as_ref(), &self.control_tx);
        publish_handoff(&self.shared, self.handoff.as_ref());
        Ok(())
    }

    /// Starts one instance of the running configuration (`ic` with the API's peers applied).
    async fn start_one(&mut self, ic: InstanceConfig) -> anyhow::Result<()> {
        let snapshot = self.health_rx.as_ref().map(|rx| rx.borrow().clone());
        let priority = tracked_priority(&ic, snapshot.as_ref());
        let handle = start_instance(
            ic,
            &all_vips(&self.config),
            self.vips.clone(),
            priority,
            self.sync.hooks(&self.bfd),
        )
        .await?;
        self.instances.push(handle);
        publish_instances(&self.shared, &self.instances);
        Ok(())
    }

    /// After a reload: a changed `[kubernetes]` restarts the watch (the last settled peers stay
    /// until the new one settles); the members are re-placed either way.
    async fn reload_kube(&mut self, new: &Config) {
        if new.kubernetes != self.config.kubernetes {
            let kept = self.kube.take().map(|k| {
                k.source.stop();
                (k.peers, k.excluded)
            });
            self.kube = kube_peers::KubeState::start(new);
            if let (Some(k), Some((peers, excluded))) = (&mut self.kube, kept) {
                k.peers = peers;
                k.excluded = excluded;
            }
            if let Ok(mut s) = self.shared.kube.lock() {
                *s = self.kube.as_ref().map(|k| Arc::clone(&k.source.status));
            }
        }
        if let Some(k) = &self.kube {
            k.source
                .set_members(kube_peers::members(new, &self.instances).await)
                .await;
        }
    }

    /// An instance changed state: its sync group may ask the other members to follow.
    async fn on_state(&mut self, instance: &str, state: vipd_vrrp::State) {
        for (member, command) in self.sync.on_state(instance, state) {
            tracing::info!(
                instance = %member,
                following = %instance,
                "sync group: {instance} is now {state:?}; {member} follows ({command:?})"
            );
            if let Some(h) = self.instances.iter().find(|h| h.name == member) {
                let _ = h.commands.send(Command::Sync(command)).await;
            }
        }
    }

    /// Recomputes every instance's effective priority from the latest check results.
    async fn push_priorities(&mut self) {
        let snapshot = self.health_rx.as_ref().map(|rx| rx.borrow().clone());
        for handle in &self.instances {
            let p = tracked_priority(&handle.config, snapshot.as_ref());
            let _ = handle.commands.send(Command::Priority(p)).await;
        }
    }

    async fn shutdown(&mut self) {
        notify::notify("STOPPING=1");
        self.shared.ready.store(false, Ordering::SeqCst);
        // No hand-off decision may race the shutdown's own resignation.
        if let Some(h) = self.handoff.take() {
            h.stop();
        }
        let handles: Vec<InstanceHandle> = std::mem::take(&mut self.instances);
        // All instances resign in parallel: each waits for its own successor.
        let stops: Vec<_> = handles.into_iter().map(stop_instance).collect();
        for stop in stops {
            stop.await;
        }
        // After the VIPs have moved: the peers learn BFD stops on purpose (AdminDown), which
        // they must not take for a failure of this node.
        self.bfd.shutdown().await;
        if let Some(k) = self.kube.take() {
            k.source.stop();
        }
        if let Some(monitor) = self.health.take() {
            monitor.shutdown().await;
        }
        // resolv.conf is given back while DNS still answers, so no lookup hits a closed port.
        crate::resolver::stop(self.resolver.take());
        if let Some(dns) = self.dns.take() {
            dns.shutdown().await;
        }
        control::remove_socket(&self.config.control.socket);
        tracing::info!(
            uptime_secs = self.started.elapsed().as_secs(),
            "vipd stopped; all VIPs released"
        );
    }
}

/// One task per configured instance, at the priority its checks give it now.
async fn start_instances(
    config: &Config,
    vips: &VipManager,
    snapshot: Option<&HealthSnapshot>,
    sync: &SyncGroups,
    bfd: &BfdHandle,
) -> anyhow::Result<Vec<InstanceHandle>> {
    let mut instances = Vec::new();
    let all_vips = all_vips(config);
    for ic in &config.instances {
        let priority = tracked_priority(ic, snapshot);
        let handle = start_instance(
            ic.clone(),
            &all_vips,
            vips.clone(),
            priority,
            sync.hooks(bfd),
        )
        .await?;
        instances.push(handle);
    }
    Ok(instances)
}

/// `[dns]`: the cluster DNS threads, published for status and metrics.
async fn start_dns(config: &Config, shared: &Shared) -> anyhow::Result<Option<dns::DnsRuntime>> {
    let Some(dns_config) = &config.dns else {
        return Ok(None);
    };
    let rt = dns::DnsRuntime::start(dns_config, config)
        .await
        .context("cannot start the cluster DNS")?;
    if let Ok(mut d) = shared.dns.lock() {
        *d = Some(rt.view());
    }
    Ok(Some(rt))
}

/// `[http]`: /health /ready /metrics on their own task.
async fn start_http(config: &Config, path: &Path, shared: &Arc<Shared>) -> anyhow::Result<()> {
    if let Some(http) = &config.http {
        let listener = tokio::net::TcpListener::bind(http.listen)
            .await
            .with_context(|| {
                format!(
                    "{}: [http] listen = \"{}\": cannot listen (is another process, e.g. CoreDNS's health endpoint, using the port?)",
                    path.display(),
                    http.listen
                )
            })?;
        tracing::info!(listen = %http.listen, "HTTP endpoints /health /ready /metrics up");
        tokio::spawn(crate::http::serve(listener, Arc::clone(shared)));
    }
    Ok(())
}

/// `[kubernetes]`: the node-list watch, told which instances it places peers for.
async fn start_kube(
    config: &Config,
    instances: &[InstanceHandle],
    shared: &Shared,
) -> Option<kube_peers::KubeState> {
    let kube = kube_peers::KubeState::start(config);
    if let Some(k) = &kube {
        k.source
            .set_members(kube_peers::members(config, instances).await)
            .await;
        if let Ok(mut s) = shared.kube.lock() {
            *s = Some(Arc::clone(&k.source.status));
        }
    }
    kube
}

enum Plan {
    Keep,
    Reconfigure,
    Restart,
    Start,
}

async fn start_instance(
    config: InstanceConfig,
    all_vips: &[IpAddr],
    vips: VipManager,
    priority: Priority,
    hooks: Hooks,
) -> anyhow::Result<InstanceHandle> {
    let placement = crate::net::placement::place(&config, all_vips).await?;
    // The validator has checked every key; this is the protocol core's own statement of what
    // it needs, now that the source address is known (a refusal here is a validator gap).
    config
        .router_config(placement.source)
        .check()
        .with_context(|| format!("instance {:?}: cannot run this virtual router", config.name))?;
    tracing::info!(
        instance = %config.name,
        vrid = config.vrid,
        interface = %placement.interface.ifname,
        source = %placement.source,
        priority = priority.value,
        vips = ?config.vips,
        mode = if config.peers.is_empty() { "multicast" } else { "unicast" },
        "starting instance"
    );
    if config.peers.is_empty() && config.version == vipd_vrrp::Version::V2 {
        tracing::info!(
            instance = %config.name,
            "no unicast_peers: adverts go to the VRRP multicast group 224.0.0.18 (the bootstrap's mode)"
        );
    }
    if config.is_unicast() && !config.check_source {
        tracing::info!(
            instance = %config.name,
            "check_source is off: adverts from any sender on the segment take part in the election \
             (on a master's API instance this lets the bootstrap, which is not a peer, be heard; \
             set accept_from = [\"<bootstrap address>\"] to check sources there too)"
        );
    }
    let (inst, status) =
        Instance::open(config.clone(), placement.clone(), vips, priority, hooks).await?;
    let (tx, rx) = mpsc::channel(32);
    let task = inst.start(rx, priority).await?;
    Ok(InstanceHandle {
        name: config.name.clone(),
        config,
        placement,
        commands: tx,
        status,
        task,
    })
}

/// What the running instances ask of BFD: each unicast peer of an instance with
/// `[instance.bfd]`, or the Master it hears for a multicast one. Reports go to the instance's
/// command queue without waiting (a full queue is logged by the BFD service).
fn instance_bfd(instances: &[InstanceHandle]) -> Vec<InstanceBfd> {
    instances
        .iter()
        .filter_map(|h| {
            let bfd = h.config.bfd.as_ref()?;
            let commands = h.commands.clone();
            let reports: crate::bfd::Subscriber = Arc::new(move |peer, report| {
                commands
                    .try_send(Command::Liveness { peer, report })
                    .is_ok()
            });
            Some(InstanceBfd {
                instance: h.name.clone(),
                ifindex: h.placement.interface.ifindex,
                ifname: h.placement.interface.ifname.clone(),
                local: h.placement.source,
                peers: h
                    .config
                    .peers
                    .iter()
                    .map(|p| (*p, bfd.timers_for(*p)))
                    .collect(),
                follow_master: (!h.config.is_unicast()).then_some(bfd.timers),
                reports,
            })
        })
        .collect()
}

/// Asks an instance to resign and waits (bounded) until it has released its VIPs.
fn stop_instance(handle: InstanceHandle) -> impl std::future::Future<Output = ()> {
    let wait = handle.config.resign_wait + SHUTDOWN_GRACE;
    let commands = handle.commands.clone();
    async move {
        let _ = commands.send(Command::Shutdown).await;
        let name = handle.name.clone();
        let mut task = handle.task;
        if tokio::time::timeout(wait, &mut task).await.is_err() {
            tracing::error!(
                instance = %name,
                "instance did not stop within {wait:?}; aborting it (its VIPs may need `ip addr del`)"
            );
            task.abort();
        }
    }
}

fn start_health(
    config: &Config,
) -> (
    Option<HealthMonitor>,
    Option<watch::Receiver<HealthSnapshot>>,
) {
    if config.checks.is_empty() {
        return (None, None);
    }
    let monitor = HealthMonitor::start(config.checks.clone());
    let rx = monitor.subscribe();
    (Some(monitor), Some(rx))
}

/// The effective priority of an instance given the latest check results.
fn tracked_priority(config: &InstanceConfig, snapshot: Option<&HealthSnapshot>) -> Priority {
    match snapshot {
        Some(snapshot) if !config.track.is_empty() => {
            let tracked: Vec<(&str, i32)> = config
                .track
                .iter()
                .map(|t| (t.check.as_str(), t.weight))
                .collect();
            snapshot.effective_priority(config.priority, &tracked)
        }
        _ => Priority {
            value: config.priority,
            fault: false,
        },
    }
}

/// The sync groups of the running configuration and the instances' state changes.
struct SyncGroups {
    groups: Vec<vipd_vrrp::sync_group::SyncGroup>,
    states: mpsc::Receiver<(String, vipd_vrrp::State)>,
    tx: mpsc::Sender<(String, vipd_vrrp::State)>,
}

impl SyncGroups {
    fn new(config: &Config) -> SyncGroups {
        let (tx, states) = mpsc::channel(64);
        SyncGroups {
            groups: build_groups(config),
            states,
            tx,
        }
    }

    /// What a new instance reports to: BFD and these groups.
    fn hooks(&self, bfd: &BfdHandle) -> Hooks {
        Hooks {
            bfd: bfd.clone(),
            states: self.tx.clone(),
        }
    }

    fn on_state(
        &mut self,
        instance: &str,
        state: vipd_vrrp::State,
    ) -> Vec<(String, vipd_vrrp::sync_group::SyncCommand)> {
        self.groups
            .iter_mut()
            .find(|g| g.contains(instance))
            .map(|g| g.on_state(instance, state))
            .unwrap_or_default()
    }

    /// New groups from a reloaded configuration, seeded with the members' current states.
    fn reload(&mut self, config: &Config, instances: &[InstanceHandle]) {
        self.groups = build_groups(config);
        for h in instances {
            let state = h.status.lock().map(|s| s.state).ok();
            if let Some(state) = state {
                // Seeding: the answers are for changes, not for the current picture.
                let _ = self.on_state(&h.name, state);
            }
        }
    }
}

fn build_groups(config: &Config) -> Vec<vipd_vrrp::sync_group::SyncGroup> {
    config
        .sync_groups
        .iter()
        .map(|g| vipd_vrrp::sync_group::SyncGroup::new(g.name.clone(), g.instances.clone()))
        .collect()
}

/// The next settled value of the Kubernetes watch; pending forever without one.
async fn kube_update(kube: &mut Option<kube_peers::KubeState>) -> crate::kube::KubeUpdate {
    match kube {
        Some(k) => match k.updates.recv().await {
            Some(u) => u,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

async fn health_changed(rx: &mut Option<watch::Receiver<HealthSnapshot>>) -> bool {
    match rx {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

fn all_vips(config: &Config) -> Vec<IpAddr> {
    config
        .instances
        .iter()
        .flat_map(|i| i.vips.iter().copied())
        .collect()
}

fn publish_instances(shared: &Shared, instances: &[InstanceHandle]) {
    if let Ok(mut list) = shared.instances.lock() {
        *list = instances.iter().map(|h| Arc::clone(&h.status)).collect();
    }
}

fn publish_handoff(shared: &Shared, handoff: Option<&handoff::Handoff>) {
    if let Ok(mut h) = shared.handoff.lock() {
        *h = handoff.map(|h| Arc::clone(&h.status));
    }
}

fn spawn_watchdog(every: Duration, shared: Arc<Shared>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            // The ping proves the runtime is scheduling tasks; the status locks prove no
            // instance task is stuck holding one.
            if shared.ready.load(Ordering::SeqCst) {
                let _ = shared.instance_reports();
                notify::notify("WATCHDOG=1");
            }
        }
    });
}

/// Gives the heap's free pages back to the kernel. Reading the configuration and building the
/// zone free far more than they keep: with 10,000 node records glibc held on to about 5 MiB of
/// freed memory after start-up (anonymous memory, which only swap could reclaim otherwise).
fn release_freed_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim(3) only walks glibc's own arenas and takes no pointer from us.
    unsafe {
        libc::malloc_trim(0);
    }
}
