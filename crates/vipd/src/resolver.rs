//! Resolver wiring: the node resolves through its own vipd DNS first (`[resolver]`).
//!
//! This is the job OpenShift gives a NetworkManager dispatcher script (and, on the installer-era
//! bootstrap, a `dhclient.conf` prepend): openshift.md sections 1 and 5. vipd does it itself:
//!
//! - at start the target (`/etc/resolv.conf`) is replaced by a file listing vipd's DNS first,
//!   then up to two upstreams of the source as fallbacks (see [`render::render`] for why),
//!   the search list (cluster domain first) and the source's options;
//! - the source and the target are polled every second (content compared) and the target is
//!   rewritten when the source changes or another program overwrites the target;
//! - at stop the target is given back: the symbolic link it was, or the source's content.
//!
//! The DNS forwarder never reads the target (it would forward to itself): with `[resolver]` on,
//! `[dns] resolv_conf` defaults to [`ResolverConfig::upstream_file`] and may not be the target.

pub mod file;
pub mod manager;
pub mod render;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::Config;

pub use crate::config::resolver::{
    OwnNameserver, ResolverConfig, DEFAULT_SOURCE, DEFAULT_TARGET, DEFAULT_UPSTREAM_COPY,
};
pub use manager::{ResolvConfManager, Restored, Rewrite, Settings, Started};

/// How often source and target are re-read.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Why the target could not be taken over, followed or given back.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    // The I/O error is part of the message, not a `source`: anyhow's `{:#}` would print it twice.
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: cannot write: {error}{}", path.display(), write_hint(error))]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "{}: holds vipd's own output from a run that did not stop cleanly, and the original it \
         replaced is neither inside it nor in {}; write a working resolv.conf to {} (or set \
         [resolver] source to NetworkManager's copy) and start vipd again",
        target.display(), copy.display(), target.display()
    )]
    NoOriginal { target: PathBuf, copy: PathBuf },
    #[error(
        "{}: nothing to restore: {} was never readable and the target had no original; the \
         file still lists vipd first (its fallbacks keep resolution working)",
        target.display(), upstream.display()
    )]
    NothingToRestore { target: PathBuf, upstream: PathBuf },
}

impl ResolverError {
    fn read(path: &Path, error: std::io::Error) -> Self {
        ResolverError::Read {
            path: path.to_path_buf(),
            error,
        }
    }

    fn write(path: &Path, error: std::io::Error) -> Self {
        ResolverError::Write {
            path: path.to_path_buf(),
            error,
        }
    }
}

fn write_hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(nix::libc::EROFS) => {
            " (read-only file system: under systemd's ProtectSystem=strict install the \
             resolver drop-in, packaging/systemd/vipd.service.d/resolver.conf)"
        }
        Some(nix::libc::EACCES) | Some(nix::libc::EPERM) => {
            " (permission denied: replacing resolv.conf needs write access to its directory; \
             see the resolver drop-in in docs/operations.md)"
        }
        _ => "",
    }
}

/// The running watcher: a thread that polls every [`POLL_INTERVAL`] and restores the target
/// when stopped or dropped.
pub struct ResolverWatch {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<Result<Restored, ResolverError>>>,
    config: ResolverConfig,
}

impl ResolverWatch {
    /// Starts following `manager` (already started) every `interval`.
    pub fn spawn(
        manager: ResolvConfManager,
        interval: Duration,
        config: ResolverConfig,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("vipd-resolver".to_owned())
            .spawn(move || follow(manager, interval, stopped))?;
        Ok(ResolverWatch {
            stop: Some(stop),
            thread: Some(thread),
            config,
        })
    }

    /// The configuration this watcher was started with.
    pub fn config(&self) -> &ResolverConfig {
        &self.config
    }

    /// Stops polling and gives the target back.
    pub fn stop(mut self) -> Result<Restored, ResolverError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<Restored, ResolverError> {
        drop(self.stop.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            // The thread only runs code that returns errors; a panic would be a bug.
            Some(Err(_)) | None => Err(ResolverError::NothingToRestore {
                target: self.config.target.clone(),
                upstream: self.config.source.clone(),
            }),
        }
    }
}

impl Drop for ResolverWatch {
    /// `vipd run` returning early with an error still gives resolv.conf back.
    fn drop(&mut self) {
        if self.thread.is_some() {
            let result = self.finish();
            log_restored(&self.config.target, result);
        }
    }
}

fn follow(
    mut manager: ResolvConfManager,
    interval: Duration,
    stopped: mpsc::Receiver<()>,
) -> Result<Restored, ResolverError> {
    let mut last_error: Option<String> = None;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
        match manager.poll() {
            Ok(Some(why)) => {
                last_error = None;
                let target = manager.settings().target.display().to_string();
                let upstream = manager.upstream_path().display().to_string();
                match why {
                    Rewrite::UpstreamChanged => tracing::info!(
                        %target, %upstream,
                        "resolver: upstream name servers changed; target rewritten"
                    ),
                    Rewrite::TargetOverwritten => tracing::info!(
                        %target,
                        "resolver: another program rewrote the target (NetworkManager, dhclient?); put this node's DNS first again"
                    ),
                }
            }
            Ok(None) => last_error = None,
            Err(e) => {
                // Logged once per distinct problem, not every second.
                let text = e.to_string();
                if last_error.as_ref() != Some(&text) {
                    tracing::warn!("resolver: {text}; retrying every {interval:?}");
                    last_error = Some(text);
                }
            }
        }
    }
    manager.restore()
}

/// Logs the outcome of giving the target back.
pub fn log_restored(target: &Path, result: Result<Restored, ResolverError>) {
    match result {
        Ok(Restored::Symlink(link)) => tracing::info!(
            target = %target.display(),
            "resolver: restored the symbolic link to {}",
            link.display()
        ),
        Ok(Restored::Content(_)) => tracing::info!(
            target = %target.display(),
            "resolver: restored the upstream resolv.conf"
        ),
        Err(e) => tracing::error!("resolver: {e}"),
    }
}

/// Starts resolver management when `[resolver] manage = true`; call once the DNS server
/// answers, so the node never lists a server that is not there yet.
pub async fn start(config: &Config) -> anyhow::Result<Option<ResolverWatch>> {
    let Some(rc) = config.resolver.as_ref() else {
        return Ok(None);
    };
    let own = match &rc.nameserver {
        OwnNameserver::Address(a) => *a,
        OwnNameserver::InstanceAddress(name) => {
            let ic = config
                .instance(name)
                .with_context(|| format!("[resolver]: no instance {name:?} to take the node address from; set [resolver] nameserver"))?;
            let vips: Vec<IpAddr> = config
                .instances
                .iter()
                .flat_map(|i| i.vips.iter().copied())
                .collect();
            crate::net::placement::place(ic, &vips)
                .await
                .with_context(|| format!("[resolver]: cannot find this node's address on instance {name:?}'s interface; set [resolver] nameserver"))?
                .source
        }
    };
    let settings = Settings {
        target: rc.target.clone(),
        source: rc.source.clone(),
        upstream_copy: rc.upstream_copy.clone(),
        own,
        exclude: excluded(config, own),
        search: rc.search.clone(),
        cluster_domain: rc.cluster_domain.clone(),
    };
    let (manager, started) = ResolvConfManager::start(settings)
        .context("[resolver] manage = true: cannot take over resolv.conf (left as it was)")?;
    if started.recovered_after_crash {
        tracing::warn!(
            target = %rc.target.display(),
            "resolver: found vipd's own resolv.conf from a run that did not stop cleanly; the original was recovered, not overwritten"
        );
    }
    if started.upstream_missing {
        tracing::warn!(
            source = %manager.upstream_path().display(),
            "resolver: the upstream file does not exist (yet); the target lists only this node's DNS until it appears"
        );
    }
    if started.written == file::Written::InPlace {
        tracing::info!(
            target = %rc.target.display(),
            "resolver: the target is a mount point; it is rewritten in place (not atomically)"
        );
    }
    tracing::info!(
        target = %rc.target.display(),
        upstream = %manager.upstream_path().display(),
        nameserver = %own,
        "resolver: this node now resolves through its own DNS first"
    );
    let watch = ResolverWatch::spawn(manager, POLL_INTERVAL, rc.clone())
        .context("[resolver]: cannot start the watcher thread")?;
    Ok(Some(watch))
}

/// Applies a reloaded `[resolver]`: unchanged keeps running; changed gives the old target
/// back and takes over the new one.
pub async fn reload(current: &mut Option<ResolverWatch>, new: &Config) -> anyhow::Result<()> {
    let wanted = new.resolver.as_ref();
    if current.as_ref().map(ResolverWatch::config) == wanted {
        return Ok(());
    }
    if let Some(old) = current.take() {
        let target = old.config().target.clone();
        log_restored(&target, old.stop());
    }
    *current = start(new).await?;
    Ok(())
}

/// Stops following and gives the target back.
pub fn stop(current: Option<ResolverWatch>) {
    if let Some(watch) = current {
        let target = watch.config().target.clone();
        log_restored(&target, watch.stop());
    }
}

/// Upstreams that are vipd itself: own address, VIPs, DNS answers and this node's addresses.
fn excluded(config: &Config, own: IpAddr) -> Vec<IpAddr> {
    let mut out = vec![own];
    out.extend(config.instances.iter().flat_map(|i| i.vips.iter().copied()));
    if let Some(dns) = &config.dns {
        out.extend(dns.api_vips.iter().copied());
        out.extend(dns.api_int_vips.iter().copied());
        out.extend(dns.ingress_vips.iter().copied());
        out.extend(dns.listen.iter().map(|l| l.ip()));
    }
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let Some(s) = a.address else { continue };
            if let Some(v4) = s.as_sockaddr_in() {
                out.push(IpAddr::V4(v4.ip()));
            } else if let Some(v6) = s.as_sockaddr_in6() {
                out.push(IpAddr::V6(v6.ip()));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
