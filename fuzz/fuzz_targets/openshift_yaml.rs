//! OpenShift YAML inputs: install-config.yaml (`parse_install_config`) and the Infrastructure
//! manifest (`parse_infrastructure`), read by `role = ...` configurations.
//!
//! Checks: no panic; a refusal names the file and a key and says why; an accepted file gives a
//! non-empty cluster name and the keys it came from.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vipd::config::openshift::{parse_infrastructure, parse_install_config};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let path = Path::new("/etc/vipd/openshift.yaml");
    let result = if which & 1 == 0 {
        parse_install_config(&text, path)
    } else {
        parse_infrastructure(&text, path)
    };
    match result {
        Ok(id) => {
            assert!(
                !id.cluster_name.is_empty(),
                "accepted without a cluster name: {id:?}"
            );
            assert!(
                !id.keys.is_empty(),
                "accepted without naming its keys: {id:?}"
            );
        }
        Err(e) => {
            assert_eq!(e.file, path);
            assert!(!e.key.trim().is_empty(), "refusal without a key: {e}");
            assert!(
                !e.message.trim().is_empty(),
                "refusal without a reason: {e}"
            );
        }
    }
});
