//! The checks across instances: unique names, a VIP in one instance only, and distinct VRIDs
//! per family on a shared link.

use super::super::InstanceConfig;
use super::instance::Placed;
use super::Validator;

impl Validator<'_> {
    pub(super) fn across_instances(&mut self, instances: &[InstanceConfig], placed: &[Placed]) {
        for (j, (b, pb)) in instances.iter().zip(placed).enumerate() {
            for (a, pa) in instances[..j].iter().zip(placed) {
                let key = |k: &str| format!("instance {:?}: {k}", b.name);
                if a.name == b.name {
                    let line = self.line_of(&pa.name_span);
                    self.err(
                        pb.name_span.clone(),
                        key("name"),
                        format!(
                            "defined twice (first at line {line}); instance names must be unique"
                        ),
                    );
                    continue;
                }
                for (vip, span) in &pb.vip_spans {
                    if a.vips.contains(vip) {
                        self.err(
                            span.clone(),
                            key("vips"),
                            format!("{vip} is also a VIP of instance {:?}; a VIP belongs to one instance", a.name),
                        );
                    }
                }
                let same_link = match (&a.interface, &b.interface) {
                    (Some(x), Some(y)) => x == y,
                    _ => true,
                };
                if a.vrid == b.vrid && a.family == b.family && same_link {
                    let where_ = match &b.interface {
                        Some(i) if a.interface.is_some() => format!("on interface {i}"),
                        _ => "on a possibly shared interface (one of them is detected at start)"
                            .to_owned(),
                    };
                    self.err(
                        pb.vrid_span.clone(),
                        key("vrid"),
                        format!(
                            "VRID {} is also used by instance {:?} for {} {where_}; set a different vrid, or distinct interfaces on both",
                            b.vrid, a.name, b.family
                        ),
                    );
                }
            }
        }
    }
}
