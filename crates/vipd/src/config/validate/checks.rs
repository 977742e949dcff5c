//! `[[check]]`: the health checks, the role's presets first, then the file's.

use std::collections::HashMap;
use std::ops::Range;

use super::super::raw::S;
use super::instance::Checks;
use super::Validator;
use crate::health::{CheckConfig, CheckSpec};

/// The validated checks and the names instances may track.
pub(super) struct CheckSet {
    /// Valid checks, presets first, in file order.
    pub specs: Vec<CheckSpec>,
    /// Every check defined, valid or not (tracking an invalid one is not a second error).
    pub names: Vec<String>,
    /// The role's presets among them.
    pub role_names: Vec<String>,
}

impl CheckSet {
    /// What an instance may track.
    pub fn usable(&self) -> Checks<'_> {
        Checks {
            specs: &self.specs,
            names: &self.names,
        }
    }
}

impl Validator<'_> {
    /// The role's preset checks (those an instance tracks and the file does not define) and
    /// the file's `[[check]]` tables.
    pub(super) fn checks(
        &mut self,
        presets: Vec<S<CheckConfig>>,
        file: &[S<CheckConfig>],
    ) -> CheckSet {
        let role_names = presets.iter().map(|c| c.get_ref().name.clone()).collect();
        let mut all = presets;
        all.extend(file.iter().cloned());
        let specs = self.check_specs(&all);
        CheckSet {
            specs,
            names: all.iter().map(|c| c.get_ref().name.clone()).collect(),
            role_names,
        }
    }

    fn check_specs(&mut self, raw: &[S<CheckConfig>]) -> Vec<CheckSpec> {
        let mut specs: Vec<CheckSpec> = Vec::new();
        let mut seen: HashMap<&str, Range<usize>> = HashMap::new();
        for c in raw {
            let name = c.get_ref().name.as_str();
            let key = format!("check {name:?}");
            if let Some(first) = seen.get(name) {
                let line = self.line_of(first);
                self.err(
                    c.span(),
                    format!("{key}: name"),
                    format!("defined twice (first at line {line}); check names must be unique"),
                );
                continue;
            }
            seen.insert(name, c.span());
            match c.get_ref().to_spec() {
                Ok(spec) => specs.push(spec),
                // At the value when the check kept its position (`hold_down`), else the table.
                Err(e) => self.err(e.span().unwrap_or_else(|| c.span()), key, e.reason()),
            }
        }
        specs
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::validator;
    use super::*;

    #[test]
    fn presets_come_first_and_invalid_checks_keep_their_name() {
        let text = "[[check]]\nname = \"disk\"\nfile = \"/run/ok\"\n[[check]]\nname = \"web\"\n";
        let raw: super::super::super::raw::RawConfig = toml::from_str(text).expect("config");
        let preset = CheckConfig {
            name: "preset".to_owned(),
            file: Some("/run/preset".into()),
            ..CheckConfig::default()
        };
        let mut v = validator(text);
        let set = v.checks(vec![S::new(0..0, preset)], &raw.check);
        assert_eq!(set.role_names, ["preset"]);
        assert_eq!(set.names, ["preset", "disk", "web"]);
        let valid: Vec<&str> = set.specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(valid, ["preset", "disk"]);
        assert_eq!(v.errors.len(), 1);
        assert_eq!(
            (v.errors[0].line, v.errors[0].key.as_str()),
            (4, "check \"web\"")
        );
        // The health module's `[[check]] "web": ` prefix is not repeated after the key.
        assert!(
            !v.errors[0].message.starts_with("[[check]]"),
            "{:?}",
            v.errors[0]
        );
    }
}
