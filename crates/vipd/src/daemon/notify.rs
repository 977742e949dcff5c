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
    if let Err(e) = notify_to(&path, message) {
        tracing::debug!("systemd notification {message:?} failed: {e}");
    }
}

/// Sends `message` to the notification socket `path` (a file path, or `@name` for the abstract
/// namespace, as systemd passes it).
pub fn notify_to(path: &std::ffi::OsStr, message: &str) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        // Abstract socket namespace (Linux).
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(message.as_bytes(), &addr)?;
    } else {
        socket.send_to(message.as_bytes(), path)?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn received(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn a_notification_reaches_a_socket_given_by_path() {
        let dir = std::env::temp_dir().join(format!("vipd-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).unwrap();
        notify_to(path.as_os_str(), "READY=1\nSTATUS=running").unwrap();
        assert_eq!(received(&socket), "READY=1\nSTATUS=running");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_notification_reaches_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("vipd-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        notify_to(std::ffi::OsStr::new(&format!("@{name}")), "WATCHDOG=1").unwrap();
        assert_eq!(received(&socket), "WATCHDOG=1");
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let err = notify_to(std::ffi::OsStr::new("/nonexistent/vipd/notify"), "READY=1");
        assert!(err.is_err());
    }
}
