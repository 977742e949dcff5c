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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::parse;

    fn instances(second: &str) -> String {
        format!("cluster_name = \"ostest\"\n[[instance]]\nname = \"api\"\nvips = [\"192.0.2.5\"]\nvrid = 7\ninterface = \"eth0\"\n[[instance]]\nname = \"ingress\"\nvrid = 7\n{second}")
    }

    #[test]
    fn a_vrid_may_repeat_on_another_interface_or_family() {
        let path = Path::new("/etc/vipd/vipd.toml");
        for second in [
            "vips = [\"192.0.2.10\"]\ninterface = \"eth1\"\n",
            "vips = [\"2001:db8::10\"]\n",
        ] {
            let config = parse(&instances(second), path);
            assert!(config.is_ok(), "{second}: {config:?}");
        }
        assert!(parse(&instances("vips = [\"192.0.2.10\"]\n"), path).is_err());
    }
}
