//! Where an instance runs: its interface (configured, or detected from the VIP's subnet) and
//! the address its adverts come from. Used by the instance task, `vipd status` and the
//! resolver (which writes this node's address into resolv.conf).

use std::net::IpAddr;

use anyhow::{bail, Context};

use crate::config::{Family, InstanceConfig};
use crate::net::iface::{self, InterfaceInfo};

/// Where an instance runs: the resolved interface and the address its adverts come from.
#[derive(Debug, Clone)]
pub struct Placement {
    pub interface: InterfaceInfo,
    pub source: IpAddr,
}

/// Resolves the interface (configured or detected from the VIP's subnet) and the source address.
pub async fn place(config: &InstanceConfig, all_vips: &[IpAddr]) -> anyhow::Result<Placement> {
    let interface = match &config.interface {
        Some(name) => iface::interface_by_name(name)
            .await
            .with_context(|| format!("instance {:?}: interface {name:?}", config.name))?,
        None => {
            let first = config
                .vips
                .first()
                .copied()
                .context("instance has no VIPs")?;
            let hint =
                crate::net::nodeip::Hints::read(std::path::Path::new(crate::net::nodeip::HINT_DIR))
                    .for_family_of(first);
            let detected = iface::detect_on_host_with_hint(first, all_vips, hint)
                .await
                .with_context(|| {
                format!(
                    "instance {:?}: no `interface` configured and none could be detected for VIP {first}; \
                     set `interface = \"...\"` in the [[instance]] table",
                    config.name
                )
            })?;
            iface::interface_by_index(detected.ifindex)
                .await
                .with_context(|| {
                    format!("instance {:?}: interface {}", config.name, detected.ifname)
                })?
        }
    };
    let source = match (config.family == Family::Ipv4, config.unicast_source) {
        (_, Some(source)) => source,
        (true, None) => IpAddr::V4(interface.primary_v4.with_context(|| {
            format!(
                "instance {:?}: interface {} has no IPv4 address to send VRRP adverts from; \
                 add one or set `unicast_source`",
                config.name, interface.ifname
            )
        })?),
        (false, None) => IpAddr::V6(interface.link_local_v6.with_context(|| {
            format!(
                "instance {:?}: interface {} has no IPv6 link-local address, which VRRPv3 over IPv6 \
                 sends from (RFC 9568 5.1.2.1)",
                config.name, interface.ifname
            )
        })?),
    };
    if !interface.up {
        tracing::warn!(
            instance = %config.name,
            interface = %interface.ifname,
            "interface is administratively down; adverts will fail until it is up"
        );
    }
    placement_checked(config, interface, source)
}

fn placement_checked(
    config: &InstanceConfig,
    interface: InterfaceInfo,
    source: IpAddr,
) -> anyhow::Result<Placement> {
    if config.family != Family::of(source) {
        bail!(
            "instance {:?}: source address {source} is not of the VIPs' address family",
            config.name
        );
    }
    Ok(Placement { interface, source })
}
