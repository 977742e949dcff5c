//! Host shutdown seen early: a delay lock with systemd-logind, so the VIPs leave this node as
//! soon as a shutdown or reboot is asked for, before the kubelet's graceful node shutdown starts
//! terminating pods (the API server among them) and long before systemd stops vipd's unit.
//!
//! logind emits `PrepareForShutdown(true)` when a shutdown is requested and then waits until
//! every delay lock is released (at most `InhibitDelayMaxSec`, 5 s by default). vipd holds one
//! lock; on the signal the main loop resigns every instance make-before-break and then drops
//! the lock. `PrepareForShutdown(false)` (the shutdown was cancelled) rejoins the election and
//! takes a new lock.
//!
//! Without a system bus (a container without `/run/dbus`, a host without logind) nothing
//! happens: the unit's ordering and SIGTERM still move the VIPs (docs/operations.md).

use std::os::fd::OwnedFd;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::instance::{Command, InstanceHandle};

/// Where the system bus listens unless DBUS_SYSTEM_BUS_ADDRESS says otherwise.
const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

/// How long connecting to the bus and taking the lock may take at start-up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[zbus::proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1"
)]
trait Manager {
    /// Takes an inhibitor lock; it lasts as long as the returned descriptor is open.
    fn inhibit(
        &self,
        what: &str,
        who: &str,
        why: &str,
        mode: &str,
    ) -> zbus::Result<zbus::zvariant::OwnedFd>;

    #[zbus(signal)]
    fn prepare_for_shutdown(&self, start: bool) -> zbus::Result<()>;
}

/// What logind said: a shutdown is coming (true) or was cancelled (false).
pub type ShutdownSignal = bool;

/// The lock and the signal stream, as the main loop holds them.
pub struct ShutdownWatch {
    proxy: ManagerProxy<'static>,
    lock: Option<OwnedFd>,
    signals: mpsc::Receiver<ShutdownSignal>,
}

impl ShutdownWatch {
    /// Connects to logind on the system bus and takes a delay lock. `None` (with one log line)
    /// where there is no system bus or no logind.
    pub async fn start() -> Option<Self> {
        if std::env::var_os("DBUS_SYSTEM_BUS_ADDRESS").is_none()
            && !std::path::Path::new(SYSTEM_BUS).exists()
        {
            tracing::info!(
                "logind: no system bus ({SYSTEM_BUS}); not watching for host shutdown, VIPs move when vipd is stopped"
            );
            return None;
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, Self::connect()).await {
            Ok(Ok(watch)) => {
                tracing::info!(
                    "logind: holding a shutdown delay lock; on shutdown or reboot the VIPs move to a peer before anything else stops"
                );
                Some(watch)
            }
            Ok(Err(e)) => {
                tracing::info!(
                    "logind: not watching for host shutdown ({e}); VIPs move when vipd is stopped"
                );
                None
            }
            Err(_) => {
                tracing::warn!(
                    "logind: no answer within {CONNECT_TIMEOUT:?}; not watching for host shutdown, VIPs move when the unit stops"
                );
                None
            }
        }
    }

    async fn connect() -> zbus::Result<Self> {
        let connection = zbus::Connection::system().await?;
        let proxy = ManagerProxy::new(&connection).await?;
        let mut stream = proxy.receive_prepare_for_shutdown().await?;
        let lock = take_lock(&proxy).await?;
        let (tx, signals) = mpsc::channel(4);
        tokio::spawn(async move {
            while let Some(signal) = stream.next().await {
                let start = match signal.args() {
                    Ok(args) => args.start,
                    Err(e) => {
                        tracing::warn!("logind: unreadable PrepareForShutdown signal: {e}");
                        continue;
                    }
                };
                if tx.send(start).await.is_err() {
                    return;
                }
            }
            tracing::warn!(
                "logind: the system bus connection closed; no longer watching for host shutdown"
            );
        });
        Ok(ShutdownWatch {
            proxy,
            lock: Some(lock),
            signals,
        })
    }

    /// The next signal; pending forever once the stream has ended.
    pub async fn next(&mut self) -> ShutdownSignal {
        match self.signals.recv().await {
            Some(start) => start,
            None => std::future::pending().await,
        }
    }

    /// Lets the shutdown go on (closes the lock's descriptor).
    pub fn release(&mut self) {
        if self.lock.take().is_some() {
            tracing::info!("logind: VIPs handed over; shutdown delay lock released");
        }
    }

    /// After a cancelled shutdown: a new lock for the next one.
    pub async fn renew(&mut self) {
        if self.lock.is_some() {
            return;
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, take_lock(&self.proxy)).await {
            Ok(Ok(lock)) => self.lock = Some(lock),
            Ok(Err(e)) => tracing::warn!(
                "logind: cannot take a new shutdown delay lock ({e}); the next shutdown moves the VIPs when the unit stops"
            ),
            Err(_) => tracing::warn!(
                "logind: no answer within {CONNECT_TIMEOUT:?} for a new shutdown delay lock"
            ),
        }
    }
}

async fn take_lock(proxy: &ManagerProxy<'static>) -> zbus::Result<OwnedFd> {
    let fd = proxy
        .inhibit(
            "shutdown",
            "vipd",
            "moving the virtual IPs to a peer before the node shuts down",
            "delay",
        )
        .await?;
    Ok(fd.into())
}

/// Whether an operator (`vipd resign`), the hand-off or an earlier shutdown has resigned the
/// instance: a host shutdown has nothing to hand over for it.
pub fn is_resigned(handle: &InstanceHandle) -> bool {
    handle.status.lock().map(|s| s.resigned).unwrap_or(false)
}

/// Resigns (`resign`) or resumes every instance in parallel and waits, each bounded by its
/// `resign_wait` plus `grace`, until each has confirmed (a resignation: its VIPs are released).
pub async fn resign_all(instances: &[&InstanceHandle], resign: bool, grace: Duration) {
    let waits = instances.iter().map(|handle| {
        let (tx, rx) = oneshot::channel();
        let command = if resign {
            Command::Resign(tx)
        } else {
            Command::Resume(tx)
        };
        let commands = handle.commands.clone();
        let name = handle.name.clone();
        let wait = handle.config.resign_wait + grace;
        async move {
            if commands.send(command).await.is_err() {
                return;
            }
            match tokio::time::timeout(wait, rx).await {
                Ok(Ok(text)) => tracing::info!(instance = %name, "logind: {text}"),
                Ok(Err(_)) => {}
                Err(_) => tracing::warn!(
                    instance = %name,
                    "logind: the instance did not confirm within {wait:?}; check `vipd status`"
                ),
            }
        }
    });
    futures_util::future::join_all(waits).await;
}

/// The next logind signal, or never when vipd is not watching.
pub async fn next(watch: &mut Option<ShutdownWatch>) -> ShutdownSignal {
    match watch {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}
