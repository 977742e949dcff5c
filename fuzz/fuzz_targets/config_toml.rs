//! TOML text -> validated configuration (`Config::parse`), the path of `vipd run`,
//! `vipd check-config` and every reload.
//!
//! Checks: never a panic; a refusal is a non-empty list of diagnostics, each naming the file,
//! a key, a 1-based line and column inside the text, and a message; warnings likewise.
//! The file is named inside tests/openshift so that relative `openshift_install_config` /
//! `openshift_infrastructure` paths reach the real sample files there.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd::config::{Config, Diagnostic};

fn check(d: &Diagnostic, path: &str, text: &str) {
    assert_eq!(
        d.file.to_str(),
        Some(path),
        "diagnostic names another file: {d}"
    );
    assert!(!d.key.trim().is_empty(), "diagnostic without a key: {d}");
    assert!(
        !d.message.trim().is_empty(),
        "diagnostic without a message: {d}"
    );
    assert!(
        d.line >= 1 && d.column >= 1,
        "diagnostic without a position: {d}"
    );
    assert!(
        d.line <= text.lines().count().max(1) + 1,
        "line {} past the end: {d}",
        d.line
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Validation reads the OpenShift file a config names; keep it from special files.
    if text.contains("\\u") || text.contains("\\U") {
        return;
    }
    if text.contains("openshift")
        && ["dev", "proc", "sys", ".."]
            .iter()
            .any(|s| text.contains(s))
    {
        return;
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/openshift/vipd.toml");
    match Config::parse(text, path) {
        Ok(config) => {
            for w in &config.warnings {
                check(w, path, text);
            }
        }
        Err(e) => {
            let diagnostics = e.diagnostics();
            assert!(!diagnostics.is_empty(), "refused without a diagnostic: {e}");
            for d in diagnostics {
                check(d, path, text);
            }
        }
    }
});
