//! The watcher thread end to end on temporary files, and the in-place write on a bind-mounted
//! target (root: a private mount namespace the test creates).

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use vipd::resolver::file::{self, Written};
use vipd::resolver::{
    OwnNameserver, ResolvConfManager, ResolverConfig, ResolverWatch, Restored, Settings,
};

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "vipd-resolver-watch-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const POLL: Duration = Duration::from_millis(20);

fn setup(dir: &TempDir) -> (Settings, ResolverConfig) {
    let own: IpAddr = "192.0.2.11".parse().unwrap();
    let settings = Settings {
        target: dir.path("resolv.conf"),
        source: dir.path("nm-resolv.conf"),
        upstream_copy: dir.path("run/resolv.conf.upstream"),
        own,
        exclude: vec![],
        search: None,
        cluster_domain: "ostest.test.metalkube.org".to_owned(),
    };
    let config = ResolverConfig {
        target: settings.target.clone(),
        source: settings.source.clone(),
        upstream_copy: settings.upstream_copy.clone(),
        nameserver: OwnNameserver::Address(own),
        search: None,
        cluster_domain: settings.cluster_domain.clone(),
    };
    (settings, config)
}

/// Waits (at most 2 s) until `path` holds a line `want`.
fn wait_for_line(path: &Path, want: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if fs::read_to_string(path).is_ok_and(|t| t.lines().any(|l| l == want)) {
            return true;
        }
        std::thread::sleep(POLL);
    }
    false
}

#[test]
fn the_watcher_follows_source_changes_and_restores_on_stop() {
    let dir = TempDir::new();
    let (settings, config) = setup(&dir);
    fs::write(&settings.source, "nameserver 198.51.100.1\n").unwrap();
    std::os::unix::fs::symlink(&settings.source, &settings.target).unwrap();
    let (manager, _) = ResolvConfManager::start(settings.clone()).unwrap();
    let watch = ResolverWatch::spawn(manager, POLL, config).unwrap();

    fs::write(&settings.source, "nameserver 198.51.100.2\n").unwrap();
    assert!(wait_for_line(&settings.target, "nameserver 198.51.100.2"));
    assert!(wait_for_line(&settings.target, "nameserver 192.0.2.11"));

    // NetworkManager puts its own file back: the watcher takes over again.
    fs::remove_file(&settings.target).unwrap();
    fs::write(&settings.target, "nameserver 198.51.100.2\n").unwrap();
    assert!(wait_for_line(&settings.target, "nameserver 192.0.2.11"));

    let restored = watch.stop().unwrap();
    assert_eq!(restored, Restored::Content(Written::Atomically));
    assert_eq!(
        fs::read_to_string(&settings.target).unwrap(),
        "nameserver 198.51.100.2\n"
    );
}

#[test]
fn dropping_the_watcher_restores_the_target() {
    let dir = TempDir::new();
    let (settings, config) = setup(&dir);
    fs::write(&settings.source, "nameserver 198.51.100.1\n").unwrap();
    std::os::unix::fs::symlink(&settings.source, &settings.target).unwrap();
    let (manager, _) = ResolvConfManager::start(settings.clone()).unwrap();
    let watch = ResolverWatch::spawn(manager, POLL, config).unwrap();
    drop(watch);
    assert_eq!(
        fs::read_link(&settings.target).unwrap(),
        settings.source.clone()
    );
}

/// Set by the parent test for the copy of itself running inside `unshare --mount`.
const IN_MOUNT_NS: &str = "VIPD_TEST_IN_PRIVATE_MOUNT_NS";

/// rename(2) onto a mount point fails with EBUSY (a container's bind-mounted
/// /etc/resolv.conf, systemd's ReadWritePaths= on the file): the file is rewritten in place.
#[test]
fn a_bind_mounted_target_is_rewritten_in_place() {
    if std::env::var_os(IN_MOUNT_NS).is_some() {
        return in_mount_namespace();
    }
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root for a private mount namespace (CI runs as root)"
    );
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args([
            "--exact",
            "a_bind_mounted_target_is_rewritten_in_place",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(IN_MOUNT_NS, "1")
        .output()
        .expect("unshare (util-linux) must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "child ran no test:\n{text}");
}

fn in_mount_namespace() {
    let dir = TempDir::new();
    let target = dir.path("resolv.conf");
    let backing = dir.path("backing");
    fs::write(&target, "").unwrap();
    fs::write(&backing, "nameserver 198.51.100.1\n").unwrap();
    let status = Command::new("mount")
        .arg("--bind")
        .arg(&backing)
        .arg(&target)
        .status()
        .unwrap();
    assert!(status.success());
    // The mount dies with the namespace; unmounting lets TempDir remove the files.
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(target.clone());

    let written = file::replace(&target, "nameserver 192.0.2.11\n").unwrap();
    assert_eq!(written, Written::InPlace);
    assert_eq!(
        fs::read_to_string(&backing).unwrap(),
        "nameserver 192.0.2.11\n"
    );
    assert!(!dir.path(".resolv.conf.vipd-tmp").exists());
}
