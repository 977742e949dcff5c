//! Effective priority of a VRRP instance from its tracked checks (keepalived `track_script`).
//!
//! keepalived's rules, which OpenShift's master priorities (API 40..68) are built on:
//! - a positive weight is added while the check is good;
//! - a negative weight is added (so subtracted) while the check is bad;
//! - weight 0 means "this check must be good": a bad check puts the instance in FAULT;
//! - the address owner (base 255, RFC 5798 section 5.2.4) keeps 255 whatever the weights, but a
//!   weight-0 check can still fault it (keepalived tests weight 0 before the owner exemption);
//! - any other result is clamped to 1..=254, so arithmetic can neither resign (0) nor claim
//!   ownership (255).
//!
//! A check with no result yet (`None`) moves no priority, as in keepalived (a script whose exit
//! status is not yet set is skipped). With weight 0 it faults the instance: keepalived keeps such
//! an instance out of the election until the script's first result, and FAULT is how vipd says
//! "not eligible" until then.

/// The address owner's priority (RFC 5798 section 5.1.1.3 / RFC 3768 section 5.3.4).
pub const OWNER_PRIORITY: u8 = 255;

/// An instance's priority after its tracked checks are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    /// Priority to advertise when not in fault.
    pub value: u8,
    /// A weight-0 check is bad or has no result yet: the instance must not be master.
    pub fault: bool,
}

/// Applies `tracked` (weight, status: `Some(true)` good, `Some(false)` bad, `None` unknown) to
/// `base`.
pub fn effective_priority(base: u8, tracked: &[(i32, Option<bool>)]) -> Priority {
    let fault = tracked
        .iter()
        .any(|&(weight, status)| weight == 0 && status != Some(true));
    if base == OWNER_PRIORITY {
        return Priority {
            value: OWNER_PRIORITY,
            fault,
        };
    }
    let total = tracked
        .iter()
        .fold(i64::from(base), |acc, &(weight, status)| {
            let counts = match status {
                Some(true) => weight > 0,
                Some(false) => weight < 0,
                None => false,
            };
            if counts {
                acc + i64::from(weight)
            } else {
                acc
            }
        });
    let value = u8::try_from(total.clamp(1, i64::from(OWNER_PRIORITY) - 1)).unwrap_or(1);
    Priority { value, fault }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(value: u8) -> Priority {
        Priority {
            value,
            fault: false,
        }
    }

    /// OpenShift master API instance: base 40, chk_ocp_lb +20, chk_ocp_both +5, chk_mcs +3.
    #[test]
    fn openshift_master_api_priority_table() {
        let table: [([bool; 3], u8); 8] = [
            ([false, false, false], 40),
            ([false, false, true], 43),
            ([false, true, false], 45),
            ([false, true, true], 48),
            ([true, false, false], 60),
            ([true, false, true], 63),
            ([true, true, false], 65),
            ([true, true, true], 68),
        ];
        for ([lb, both, mcs], want) in table {
            let got = effective_priority(40, &[(20, Some(lb)), (5, Some(both)), (3, Some(mcs))]);
            assert_eq!(got, ok(want), "lb={lb} both={both} mcs={mcs}");
        }
    }

    /// OpenShift master ingress instance: base 20, chk_ingress 0, chk_ingress_ready +10,
    /// chk_default_ingress +50.
    #[test]
    fn openshift_ingress_priority_and_fault() {
        let p = |ingress, ready, default| {
            effective_priority(20, &[(0, ingress), (10, ready), (50, default)])
        };
        assert_eq!(p(Some(true), Some(true), Some(true)), ok(80));
        assert_eq!(p(Some(true), Some(false), Some(true)), ok(70));
        assert_eq!(p(Some(true), Some(false), Some(false)), ok(20));
        assert_eq!(
            p(Some(false), Some(true), Some(true)),
            Priority {
                value: 80,
                fault: true
            }
        );
    }

    #[test]
    fn negative_weight_subtracts_only_while_bad() {
        assert_eq!(effective_priority(100, &[(-30, Some(false))]), ok(70));
        assert_eq!(effective_priority(100, &[(-30, Some(true))]), ok(100));
    }

    #[test]
    fn positive_weight_adds_only_while_good() {
        assert_eq!(effective_priority(100, &[(30, Some(true))]), ok(130));
        assert_eq!(effective_priority(100, &[(30, Some(false))]), ok(100));
    }

    #[test]
    fn unknown_status_moves_no_priority() {
        assert_eq!(effective_priority(100, &[(30, None), (-30, None)]), ok(100));
    }

    #[test]
    fn unknown_weight_zero_check_faults_until_its_first_result() {
        assert_eq!(
            effective_priority(100, &[(0, None)]),
            Priority {
                value: 100,
                fault: true
            }
        );
    }

    #[test]
    fn result_is_clamped_to_1_and_254() {
        assert_eq!(effective_priority(200, &[(253, Some(true))]), ok(254));
        assert_eq!(effective_priority(10, &[(-253, Some(false))]), ok(1));
        assert_eq!(
            effective_priority(
                200,
                &[(100, Some(true)), (100, Some(true)), (-5, Some(false))]
            ),
            ok(254)
        );
    }

    #[test]
    fn owner_keeps_255_whatever_the_weights() {
        assert_eq!(
            effective_priority(255, &[(-100, Some(false)), (10, Some(true))]),
            ok(255)
        );
    }

    #[test]
    fn owner_is_still_faulted_by_a_bad_weight_zero_check() {
        assert_eq!(
            effective_priority(255, &[(0, Some(false))]),
            Priority {
                value: 255,
                fault: true
            }
        );
    }

    #[test]
    fn no_tracked_checks_leave_the_base() {
        assert_eq!(effective_priority(40, &[]), ok(40));
    }
}
