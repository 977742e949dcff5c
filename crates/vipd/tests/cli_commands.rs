//! The `vipd` binary's commands, run as an operator would run them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vipd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vipd"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the vipd binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

/// A configuration file that removes itself when the test ends, pass or fail.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(name: &str, text: &str) -> TempConfig {
        let path =
            std::env::temp_dir().join(format!("vipd-cli-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempConfig(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn vrids_prints_the_runtimecfg_values_for_cnf10() {
    let o = vipd(&["vrids", "cnf10"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "APIVirtualRouterID: 147\nIngressVirtualRouterID: 2\n"
    );
}

#[test]
fn vrids_prints_the_runtimecfg_values_for_cnf11() {
    let o = vipd(&["vrids", "cnf11"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "APIVirtualRouterID: 228\nIngressVirtualRouterID: 147\n"
    );
}

#[test]
fn vrids_legacy_prints_installer_era_values() {
    let o = vipd(&["vrids", "ostest", "--legacy"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "APIVirtualRouterID: 169\nDNSVirtualRouterID: 148\n"
    );
}

#[test]
fn vrids_legacy_flags_vrid_zero_and_fails() {
    let o = vipd(&["vrids", "cnf11", "--legacy"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "APIVirtualRouterID: 0 (invalid)\nDNSVirtualRouterID: 251\n"
    );
    assert!(
        stderr(&o).starts_with("vipd: the installer-era fletcher8 of \"cnf11-api\" is 0"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_config_summarises_the_master_example() {
    let path = repo_file("examples/master.toml");
    let o = vipd(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with(&format!("{}: configuration is valid\n", path.display())));
    for line in [
        "instance api: 192.0.2.5\n",
        "  VRID 14 (derived from \"ostest-api\"), interface detected at start\n",
        "  priority 40, VRRPv2 PASS auth, advert every 1s, preempt on\n",
        "  unicast from 192.0.2.11 to 192.0.2.12, 192.0.2.13\n",
        "  tracks chk_ocp_lb (+20), chk_ocp_both (+5), chk_mcs (+3)\n",
        "  VRID 93 (derived from \"ostest-ingress\"), interface detected at start\n",
        "  tracks chk_ingress (fault), chk_ingress_ready (+10), chk_default_ingress (+50)\n",
        "  api.ostest.test.metalkube.org, api-int.ostest.test.metalkube.org -> 192.0.2.5\n",
        "  *.apps.ostest.test.metalkube.org -> 192.0.2.10\n",
        "  master-0, master-0.ostest.test.metalkube.org -> 192.0.2.11\n",
        "http: /health /ready /metrics on 0.0.0.0:18080\n",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
}

#[test]
fn check_config_shows_multicast_for_the_bootstrap() {
    let path = repo_file("examples/bootstrap.toml");
    let o = vipd(&["check-config", "-c", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("  multicast to 224.0.0.18 from the interface's primary address\n"));
}

#[test]
fn check_config_accepts_every_example_and_sample() {
    for f in [
        "examples/bootstrap.toml",
        "examples/master.toml",
        "examples/worker.toml",
        "tests/configs/minimal.toml",
        "tests/configs/ipv6.toml",
        "tests/configs/dual-stack.toml",
    ] {
        let path = repo_file(f);
        let o = vipd(&["check-config", "-c", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{f}: {}", stderr(&o));
    }
}

#[test]
fn check_config_prints_every_error_and_exits_1() {
    let cfg = TempConfig::new(
        "bad",
        "cluster_name = \"ostest\"\n[[instance]]\nname = \"api\"\nvips = [\"192.0.2.5\", \"2001:db8::5\"]\npriority = 0\n",
    );
    let o = vipd(&["check-config", "--config", cfg.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    let p = cfg.path();
    assert_eq!(
        stderr(&o),
        format!(
            "{p}:4:22: instance \"api\": vips: 192.0.2.5 and 2001:db8::5 mix IPv4 and IPv6; use one instance per family\n\
             {p}:5:12: instance \"api\": priority: 0 is reserved for a Master that is resigning (RFC 9568 section 5.2.4); accepted 1..=255 (255 = address owner)\n\
             {p}: configuration refused\n"
        )
    );
}

#[test]
fn check_config_on_a_missing_file_exits_1_naming_it() {
    let o = vipd(&["check-config", "--config", "/nonexistent/vipd.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("/nonexistent/vipd.toml: cannot read the configuration file: "));
}

#[test]
fn usage_error_exits_2() {
    let o = vipd(&["vrids"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("<CLUSTER_NAME>"), "{}", stderr(&o));
}

#[test]
fn unknown_subcommand_exits_2() {
    assert_eq!(vipd(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn run_refuses_an_invalid_configuration_before_starting() {
    let cfg = TempConfig::new("run-bad", "cluster_name = \"ostest\"\n");
    let o = vipd(&["run", "--config", cfg.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&format!("{}:1:1: (top level): nothing to run", cfg.path())));
}

#[test]
fn run_rejects_a_malformed_log_level() {
    let path = repo_file("tests/configs/minimal.toml");
    let o = vipd(&[
        "run",
        "-c",
        path.to_str().unwrap(),
        "--log-level",
        "vipd=loud",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("vipd: --log-level \"vipd=loud\": not a log filter"),
        "{}",
        stderr(&o)
    );
}
