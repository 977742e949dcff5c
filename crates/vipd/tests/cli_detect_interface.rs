//! `vipd detect-interface`, run inside a private network namespace (`unshare --net`, root) so the
//! answer depends only on the addresses the test itself creates (on a veth pair: the dummy
//! module may be missing). The namespace disappears with the process, on success or failure.

use std::process::{Command, Output};

/// Runs a shell script in a fresh network namespace; `$VIPD` is the binary under test.
fn in_netns(script: &str) -> Output {
    let o = Command::new("unshare")
        .args(["--net", "sh", "-ec", script])
        .env("VIPD", env!("CARGO_BIN_EXE_vipd"))
        .output()
        .expect("unshare runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("unshare failed") && !err.contains("Operation not permitted"),
        "these tests need root (CI runs as root): {err}"
    );
    o
}

#[test]
fn detect_interface_prints_subnet_then_interface() {
    let o = in_netns(
        "ip link add vipd-test0 type veth peer name vipd-test1
         ip link set vipd-test0 up
         ip addr add 198.51.100.2/24 dev vipd-test0
         \"$VIPD\" detect-interface 198.51.100.7",
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "198.51.100.0/24\ninterface vipd-test0 (local address 198.51.100.2)\n"
    );
}

#[test]
fn detect_interface_finds_an_ipv6_subnet() {
    let o = in_netns(
        "ip link add vipd-test0 type veth peer name vipd-test1
         ip link set vipd-test0 up
         ip addr add 2001:db8:1::2/64 dev vipd-test0 nodad
         \"$VIPD\" detect-interface 2001:db8:1::5",
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "2001:db8:1::/64\ninterface vipd-test0 (local address 2001:db8:1::2)\n"
    );
}

#[test]
fn detect_interface_exits_1_with_a_reason_when_nothing_matches() {
    let o = in_netns(
        "ip link add vipd-test0 type veth peer name vipd-test1
         ip link set vipd-test0 up
         ip addr add 198.51.100.2/24 dev vipd-test0
         \"$VIPD\" detect-interface 192.0.2.5",
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("vipd: no interface carries VIP 192.0.2.5: "),
        "{err}"
    );
}
