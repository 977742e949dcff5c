//! Regressions found by the fuzz targets import_keepalived and import_corefile (docs/fuzzing.md):
//! whatever the input, `vipd import` prints valid TOML. The crashing inputs are kept in
//! fuzz/regressions/<target>/ (first byte: the fuzz target's --cluster-name flag).

use vipd::import::{assemble, translate_corefile, translate_keepalived, Severity};

fn parses_as_toml(text: &str) {
    if let Err(e) = text.parse::<toml::Table>() {
        panic!("import printed invalid TOML ({e}):\n{text}");
    }
}

/// A control character (here NUL) in a source line was copied into the `# line N: ...`
/// comment, and TOML comments may not hold control characters.
#[test]
fn a_control_character_in_a_corefile_line_is_escaped_in_the_comment() {
    let input = include_bytes!("../../../fuzz/regressions/import_corefile/nul-in-comment");
    let text = String::from_utf8_lossy(&input[1..]);
    assert!(text.contains("/etc/coredns/r\0."));
    let import = assemble(None, Some(("Corefile", translate_corefile(&text))), None);
    parses_as_toml(&import.toml);
    assert!(
        import
            .toml
            .contains("# line 5: forward . /etc/coredns/r\\u{0}."),
        "{}",
        import.toml
    );
}

/// A keyword given twice in one vrrp_instance became the same TOML key twice ("duplicate key":
/// the whole output unparsable). keepalived uses the last one; so does the import, and says so.
#[test]
fn a_repeated_instance_keyword_keeps_the_last_value_and_warns() {
    let text = "vrrp_instance ostest_API {\n    interface eth0\n    virtual_router_id 51\n    \
                priority 40\n    advert_int 1\n    advert_int 2\n    \
                virtual_ipaddress {\n        192.0.2.5/32\n    }\n}\n";
    let k = translate_keepalived(text, None);
    let import = assemble(Some(("keepalived.conf", k)), None, None);
    parses_as_toml(&import.toml);
    assert!(
        import.toml.contains("advert_interval = \"2s\""),
        "{}",
        import.toml
    );
    assert!(
        !import.toml.contains("advert_interval = \"1s\""),
        "{}",
        import.toml
    );
    let warned = import.notes.iter().flat_map(|(_, n)| n).any(|n| {
        n.severity == Severity::Warning && n.line == 5 && n.message.contains("advert_interval")
    });
    assert!(warned, "{:#?}", import.notes);

    let input = include_bytes!("../../../fuzz/regressions/import_keepalived/repeated-advert-int");
    let text = String::from_utf8_lossy(&input[1..]);
    let cluster = (input[0] & 1 != 0).then_some("ostest");
    let import = assemble(
        Some(("keepalived.conf", translate_keepalived(&text, cluster))),
        None,
        cluster,
    );
    parses_as_toml(&import.toml);
}

/// The same in other blocks: `bufsize` twice in a Corefile server block, `weight` twice in a
/// vrrp_script. Any key repeated in one output table keeps its last value, with a warning.
#[test]
fn a_repeated_setting_in_any_block_keeps_the_last_value_and_warns() {
    let input = include_bytes!("../../../fuzz/regressions/import_corefile/repeated-bufsize");
    let text = String::from_utf8_lossy(&input[1..]);
    let cluster = (input[0] & 1 != 0).then_some("ostest");
    let import = assemble(None, Some(("Corefile", translate_corefile(&text))), cluster);
    parses_as_toml(&import.toml);
    assert_eq!(
        import.toml.matches("\nmax_udp_size = ").count(),
        1,
        "{}",
        import.toml
    );
    let warned = import.notes.iter().flat_map(|(_, n)| n).any(|n| {
        n.severity == Severity::Warning && n.message.contains("`max_udp_size` is set again")
    });
    assert!(warned, "{:#?}", import.notes);

    let input =
        include_bytes!("../../../fuzz/regressions/import_keepalived/repeated-script-weight");
    let text = String::from_utf8_lossy(&input[1..]);
    let cluster = (input[0] & 1 != 0).then_some("ostest");
    let import = assemble(
        Some(("keepalived.conf", translate_keepalived(&text, cluster))),
        None,
        cluster,
    );
    parses_as_toml(&import.toml);
}

/// The comment line written above a translated vrrp_script probe (`# line N: curl ...`) also
/// copied control characters from the source.
#[test]
fn a_control_character_in_a_vrrp_script_is_escaped_in_its_comment_line() {
    let input =
        include_bytes!("../../../fuzz/regressions/import_keepalived/control-character-in-script");
    let text = String::from_utf8_lossy(&input[1..]);
    let cluster = (input[0] & 1 != 0).then_some("ostest");
    let import = assemble(
        Some(("keepalived.conf", translate_keepalived(&text, cluster))),
        None,
        cluster,
    );
    parses_as_toml(&import.toml);
    assert!(
        import
            .toml
            .contains("# line 17: curl http://localhost:1936/hea"),
        "{}",
        import.toml
    );
}
