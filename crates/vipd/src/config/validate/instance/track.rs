//! `track`: the health checks whose failures lower the instance's priority (or fault it).

use super::super::super::TrackConfig;
use super::super::{Validator, MAX_WEIGHT};
use super::{Checks, Inst};

impl Validator<'_> {
    pub(super) fn track(&mut self, inst: &Inst, priority: u8, checks: &Checks) -> Vec<TrackConfig> {
        let mut track: Vec<TrackConfig> = Vec::new();
        let raw_track = inst.raw.track.as_deref().unwrap_or(&[]);
        for t in raw_track {
            let tr = t.get_ref();
            let check = tr.check.get_ref();
            if !checks.names.iter().any(|c| c == check) {
                let known = if checks.names.is_empty() {
                    "no [[check]] is defined".to_owned()
                } else {
                    format!("defined checks: {}", checks.names.join(", "))
                };
                self.err(
                    tr.check.span(),
                    inst.at("track"),
                    format!("no [[check]] named {check:?}; {known}"),
                );
                continue;
            }
            if track.iter().any(|x| &x.check == check) {
                self.err(
                    tr.check.span(),
                    inst.at("track"),
                    format!("check {check:?} is tracked twice; list each check once"),
                );
                continue;
            }
            let weight = match &tr.weight {
                Some(w) => self
                    .ranged(w, &inst.at("track weight"), -MAX_WEIGHT, MAX_WEIGHT, &format!(
                        "accepted -{MAX_WEIGHT}..={MAX_WEIGHT} (0 = a failing check puts the instance in FAULT)"
                    ))
                    .unwrap_or(0) as i32,
                None => checks
                    .specs
                    .iter()
                    .find(|c| &c.name == check)
                    .map(|c| c.weight)
                    .unwrap_or(0),
            };
            track.push(TrackConfig {
                check: check.clone(),
                weight,
            });
        }
        if priority == 255 && !raw_track.is_empty() {
            self.owner_tracks(inst);
        }
        track
    }

    /// An address owner (priority 255) tracking checks: refused.
    fn owner_tracks(&mut self, inst: &Inst) {
        let span = inst
            .raw
            .priority
            .as_ref()
            .map(|p| p.span())
            .unwrap_or(inst.span());
        self.err(
            span,
            inst.at("priority"),
            "255 (address owner) cannot be combined with track: an owner's priority never changes (RFC 9568 section 6.1); use 254 or less",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::validator;
    use super::super::tests::planned;
    use super::*;
    use crate::health::CheckSpec;

    fn track(text: &str, specs: &[CheckSpec], names: &[String]) -> (Vec<TrackConfig>, Vec<String>) {
        let mut v = validator(text);
        let p = planned(text);
        let t = v.track(&Inst::new(&p), 100, &Checks { specs, names });
        let errors = v
            .errors
            .iter()
            .map(|d| format!("{}:{}: {}: {}", d.line, d.column, d.key, d.message))
            .collect();
        (t, errors)
    }

    #[test]
    fn a_check_that_failed_validation_is_not_reported_unknown() {
        // "api" is defined but invalid (no spec): tracking it is not a second error.
        let (t, errors) = track(
            "name = \"api\"\n[[track]]\ncheck = \"api\"\n",
            &[],
            &["api".to_owned()],
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].weight, 0);
    }

    #[test]
    fn an_unknown_check_names_the_defined_ones() {
        let (t, errors) = track(
            "name = \"api\"\n[[track]]\ncheck = \"apiserver\"\n",
            &[],
            &["api".to_owned(), "ingress".to_owned()],
        );
        assert!(t.is_empty());
        assert_eq!(
            errors,
            ["3:9: instance \"api\": track: no [[check]] named \"apiserver\"; defined checks: api, ingress"]
        );
    }
}
