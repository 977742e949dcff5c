//! `[handoff]`: on by default for `role = "bootstrap"` with OpenShift's values, off otherwise
//! unless written, and every refusal located to the key.

use std::time::Duration;

use vipd::config::{Config, HandoffConfig};
use vipd::health::{HttpTarget, Scheme};

fn parse(text: &str) -> Config {
    match Config::parse(text, "inline.toml") {
        Ok(config) => config,
        Err(e) => panic!("refused:\n{e}"),
    }
}

fn refusals(text: &str) -> Vec<String> {
    match Config::parse(text, "inline.toml") {
        Ok(config) => panic!("accepted a configuration that should be refused: {config:#?}"),
        Err(e) => e.diagnostics().iter().map(ToString::to_string).collect(),
    }
}

fn target(scheme: Scheme, host: &str, port: u16, path: &str) -> HttpTarget {
    HttpTarget {
        scheme,
        host: host.into(),
        port,
        path: path.into(),
        insecure: false,
    }
}

const BOOTSTRAP: &str =
    "cluster_name = \"ostest\"\nrole = \"bootstrap\"\napi_vips = [\"192.0.2.5\"]\n";

/// A node without a role, with one instance named `api`, and `extra` appended.
fn plain(extra: &str) -> String {
    format!("cluster_name = \"ostest\"\n\n[[instance]]\nname = \"api\"\nvips = [\"192.0.2.5\"]\n{extra}")
}

#[test]
fn bootstrap_role_turns_the_handoff_on_with_openshifts_values() {
    let config = parse(BOOTSTRAP);
    assert_eq!(
        config.handoff,
        Some(HandoffConfig {
            instances: vec!["api".into()],
            probe: target(Scheme::Https, "localhost", 6443, "/readyz"),
            also_down: vec![target(Scheme::Http, "localhost", 6385, "/v1")],
            interval: Duration::from_secs(1),
            failures: 5,
            recoveries: 3,
            from_role: true,
        })
    );
}

#[test]
fn dual_stack_bootstrap_hands_off_both_api_instances() {
    let config = parse(
        "cluster_name = \"ostest\"\nrole = \"bootstrap\"\napi_vips = [\"192.0.2.5\", \"2001:db8::5\"]\n",
    );
    assert_eq!(
        config.handoff.map(|h| h.instances),
        Some(vec!["api".to_owned(), "api-v6".to_owned()])
    );
}

#[test]
fn master_and_worker_roles_have_no_handoff() {
    let master = parse(
        "cluster_name = \"ostest\"\nrole = \"master\"\napi_vips = [\"192.0.2.5\"]\ningress_vips = [\"192.0.2.6\"]\n",
    );
    assert_eq!(master.handoff, None);
    let worker =
        parse("cluster_name = \"ostest\"\nrole = \"worker\"\ningress_vips = [\"192.0.2.6\"]\n");
    assert_eq!(worker.handoff, None);
}

#[test]
fn no_role_and_no_table_means_no_handoff() {
    assert_eq!(parse(&plain("")).handoff, None);
}

#[test]
fn enabled_false_turns_the_bootstrap_default_off() {
    let config = parse(&format!("{BOOTSTRAP}\n[handoff]\nenabled = false\n"));
    assert_eq!(config.handoff, None);
}

#[test]
fn every_key_written_replaces_its_default() {
    let config = parse(&plain(
        "\n[handoff]\ninstance = [\"api\"]\nprobe = \"http://127.0.0.1:8080/healthz\"\n\
         also_down = []\ninterval = \"250ms\"\nfailures = 2\nrecoveries = 7\n",
    ));
    assert_eq!(
        config.handoff,
        Some(HandoffConfig {
            instances: vec!["api".into()],
            probe: target(Scheme::Http, "127.0.0.1", 8080, "/healthz"),
            also_down: Vec::new(),
            interval: Duration::from_millis(250),
            failures: 2,
            recoveries: 7,
            from_role: false,
        })
    );
}

#[test]
fn a_written_table_on_a_node_without_role_uses_the_bootstrap_defaults() {
    let config = parse(&plain("\n[handoff]\n"));
    let h = config.handoff.unwrap();
    assert_eq!(h.instances, ["api"]);
    assert_eq!(h.probe, target(Scheme::Https, "localhost", 6443, "/readyz"));
    assert_eq!((h.failures, h.recoveries), (5, 3));
    assert!(!h.from_role);
}

#[test]
fn unknown_instance_is_refused_with_the_defined_names() {
    assert_eq!(
        refusals(&plain("\n[handoff]\ninstance = \"ingress\"\n")),
        ["inline.toml:8:12: handoff: instance: no [[instance]] named \"ingress\"; defined instances: api"]
    );
}

#[test]
fn a_table_without_instance_needs_an_api_instance() {
    let text = "cluster_name = \"ostest\"\n\n[[instance]]\nname = \"vip1\"\nvips = [\"192.0.2.5\"]\n\n[handoff]\n";
    assert_eq!(
        refusals(text),
        ["inline.toml:7:1: handoff: instance: is not set and there is no [[instance]] named \"api\" to hand off (defined instances: vip1); set instance = \"<name>\""]
    );
}

#[test]
fn instance_of_the_wrong_type_is_refused() {
    assert_eq!(
        refusals(&plain("\n[handoff]\ninstance = 3\n")),
        ["inline.toml:8:12: handoff: instance: expected an instance name or a non-empty list of names, e.g. instance = \"api\" or instance = [\"api\", \"api-v6\"]"]
    );
}

#[test]
fn a_non_loopback_probe_is_refused() {
    assert_eq!(
        refusals(&plain("\n[handoff]\nprobe = \"http://192.0.2.11:6443/readyz\"\n")),
        ["inline.toml:8:9: handoff: probe: \"http://192.0.2.11:6443/readyz\" is on host \"192.0.2.11\"; the hand-off watches this node's own services, give a loopback URL (localhost, 127.0.0.1 or [::1]), e.g. \"https://localhost:6443/readyz\""]
    );
}

#[test]
fn a_malformed_also_down_url_is_refused_at_the_entry() {
    assert_eq!(
        refusals(&plain("\n[handoff]\nalso_down = [\"localhost:6385\"]\n")),
        ["inline.toml:8:14: handoff: also_down: http = \"localhost:6385\": expected a URL starting with http:// or https://"]
    );
}

#[test]
fn zero_failures_and_recoveries_are_refused() {
    assert_eq!(
        refusals(&plain("\n[handoff]\nfailures = 0\nrecoveries = 0\n")),
        [
            "inline.toml:8:12: handoff: failures: 0 is out of range; accepted 1..=1000 consecutive failed probes of the API before handing off (default 5)",
            "inline.toml:9:14: handoff: recoveries: 0 is out of range; accepted 1..=1000 consecutive good probes of the API before rejoining (default 3)",
        ]
    );
}

#[test]
fn an_interval_out_of_range_is_refused() {
    assert_eq!(
        refusals(&plain("\n[handoff]\ninterval = \"2m\"\n")),
        ["inline.toml:8:12: handoff: interval: \"2m\" is out of range; accepted \"10ms\" to \"60s\" (OpenShift probes every \"1s\")"]
    );
}

#[test]
fn an_unknown_key_is_refused() {
    let r = refusals(&plain("\n[handoff]\nfailure = 5\n"));
    assert_eq!(r.len(), 1);
    assert!(
        r[0].starts_with("inline.toml:8:1: handoff.failure: unknown field `failure`"),
        "{r:?}"
    );
}

#[test]
fn a_disabled_table_still_reports_its_mistakes() {
    assert_eq!(
        refusals(&plain("\n[handoff]\nenabled = false\nfailures = 0\n")),
        ["inline.toml:9:12: handoff: failures: 0 is out of range; accepted 1..=1000 consecutive failed probes of the API before handing off (default 5)"]
    );
}
