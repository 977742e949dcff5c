//! systemd readiness and watchdog notifications (sd_notify protocol, no libsystemd needed).
//!
//! With `Type=notify` systemd passes `NOTIFY_SOCKET`; we send `READY=1` once every instance and
//! listener is up, `RELOADING=1` / `READY=1` around a reload, `STOPPING=1` on shutdown and
//! `WATCHDOG=1` at half of `WATCHDOG_USEC`. Outside systemd all of this is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends one notification; silently does nothing when not started by systemd.
pub fn notify(message: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let result = if let Some(name) = bytes.strip_prefix(b"@") {
        // Abstract socket namespace (Linux).
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|addr| socket.send_to_addr(message.as_bytes(), &addr))
    } else {
        socket.send_to(message.as_bytes(), &path)
    };
    if let Err(e) = result {
        tracing::debug!("systemd notification {message:?} failed: {e}");
    }
}

/// The interval at which to send `WATCHDOG=1`, if systemd asked for a watchdog.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
