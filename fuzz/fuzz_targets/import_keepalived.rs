//! `vipd import keepalived` on arbitrary text: `translate_keepalived` (with and without
//! --cluster-name), `assemble`, then `Config::parse` of the output, as the CLI does.
//!
//! Checks: no panic; every note names a line of the input (or 0 for the file as a whole);
//! the emitted TOML is valid TOML syntax, whatever the input (values are escaped).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd::config::Config;
use vipd::import::{assemble, translate_keepalived};

fuzz_target!(|data: &[u8]| {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let cluster = (flag & 1 != 0).then_some("ostest");
    let k = translate_keepalived(&text, cluster);
    let lines = text.lines().count();
    for n in &k.notes {
        assert!(
            n.line <= lines + 1,
            "note on line {} of {lines}: {n}",
            n.line
        );
    }
    let import = assemble(Some(("keepalived.conf", k)), None, cluster);
    if let Err(e) = import.toml.parse::<toml::Table>() {
        panic!("import emitted invalid TOML ({e}):\n{}", import.toml);
    }
    let _ = Config::parse(&import.toml, "(imported configuration)");
});
