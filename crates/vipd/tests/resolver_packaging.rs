//! packaging/systemd: the unit and the resolver drop-in pass `systemd-analyze verify`.
//!
//! The tool is required, not optional: without it this test fails and says how to install it
//! (`apt-get install systemd`), so the unit is never shipped unverified by a silent skip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("vipd-unit-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/systemd")
}

/// The unit with its binary path pointed at the vipd just built (verify checks it exists and
/// is executable).
fn unit_text() -> String {
    let text = fs::read_to_string(packaging().join("vipd.service")).unwrap();
    assert!(text.contains("ExecStart=/usr/local/bin/vipd run --config /etc/vipd/vipd.toml\n"));
    text.replace("/usr/local/bin/vipd", env!("CARGO_BIN_EXE_vipd"))
}

fn verify(unit: &Path) -> (bool, String) {
    let out = match Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(unit)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "systemd-analyze cannot run ({e}); install it with `apt-get install systemd` and run the tests again"
        ),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_unit_passes_systemd_analyze_verify_without_a_message() {
    let dir = TempDir::new("plain");
    let unit = dir.0.join("vipd.service");
    fs::write(&unit, unit_text()).unwrap();
    let (ok, text) = verify(&unit);
    assert!(ok, "systemd-analyze verify failed:\n{text}");
    assert_eq!(text, "");
}

#[test]
fn the_unit_with_the_resolver_drop_in_passes_verify() {
    let dir = TempDir::new("dropin");
    let unit = dir.0.join("vipd.service");
    fs::write(&unit, unit_text()).unwrap();
    fs::create_dir_all(dir.0.join("vipd.service.d")).unwrap();
    fs::copy(
        packaging().join("vipd.service.d/resolver.conf"),
        dir.0.join("vipd.service.d/resolver.conf"),
    )
    .unwrap();
    let (ok, text) = verify(&unit);
    assert!(ok, "systemd-analyze verify failed:\n{text}");
    assert_eq!(text, "");
}

#[test]
fn stop_timeout_exceeds_the_longest_resign_wait_plus_grace() {
    let text = unit_text();
    let secs: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.strip_suffix('s'))
        .and_then(|v| v.parse().ok())
        .expect("TimeoutStopSec=<n>s");
    // Default resign_wait 3 s + 2 s shutdown grace (daemon.rs SHUTDOWN_GRACE), with room for
    // a resign_wait raised up to 25 s.
    assert_eq!(secs, 30);
    assert!(secs > 3 + 2);
}

#[test]
fn the_unit_notifies_and_stops_before_the_network() {
    let text = unit_text();
    for line in [
        "Type=notify",
        "Wants=network-online.target",
        "After=network.target network-online.target",
        "RuntimeDirectory=vipd",
        "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?}");
    }
    // vipd's own client, not /bin/kill (absent from a minimal Debian).
    let reload = format!(
        "ExecReload={} reload --config /etc/vipd/vipd.toml",
        env!("CARGO_BIN_EXE_vipd")
    );
    assert!(text.lines().any(|l| l == reload), "missing {reload:?}");
}
