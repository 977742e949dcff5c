//! Small helpers to write TOML values with a trailing source comment.

use crate::health::ProbeConfig;

/// A TOML basic string with every character that needs it escaped.
pub fn string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// `["a", "b"]`.
pub fn strings<S: AsRef<str>>(items: &[S]) -> String {
    let parts: Vec<String> = items.iter().map(|s| string(s.as_ref())).collect();
    format!("[{}]", parts.join(", "))
}

/// `   # from` (two spaces before the hash, as rustfmt-like TOML style has it).
pub fn comment(from: &str) -> String {
    format!("  # {}", comment_text(from))
}

/// `text` fit for a TOML comment: TOML comments may not hold control characters (a NUL in a
/// source line made the whole output unparsable; found by fuzz/fuzz_targets/import_*.rs).
pub fn comment_text(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// `key = value  # from` on its own line.
pub fn line(key: &str, value: &str, from: &str) -> String {
    format!("{key} = {value}{}\n", comment(from))
}

/// One inline probe table: `{ http = "..." }`.
pub fn probe(p: &ProbeConfig) -> String {
    let mut parts = Vec::new();
    if let Some(h) = &p.http {
        parts.push(format!("http = {}", string(h)));
    }
    if let Some(t) = &p.tcp {
        parts.push(format!("tcp = {}", string(t)));
    }
    if let Some(f) = &p.file {
        parts.push(format!("file = {}", string(&f.to_string_lossy())));
    }
    if let Some(e) = &p.exec {
        parts.push(format!("exec = {}", strings(e)));
    }
    if p.insecure == Some(true) {
        parts.push("insecure = true".into());
    }
    format!("{{ {} }}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_read_back_as_written() {
        // Quotes and backslashes from a script line: a literal string needs no escapes.
        assert_eq!(string("a\"b\\c"), r#"'a"b\c'"#);
        assert_eq!(strings(&["x", "y"]), r#"["x", "y"]"#);
        let tricky = "it's \"quoted\" \\ here";
        let doc: toml::Table = toml::from_str(&format!("k = {}", string(tricky))).unwrap();
        assert_eq!(doc["k"].as_str(), Some(tricky));
    }
}
