//! Shared fixtures: the test cluster zone and a hand-rolled query builder, so tests can set bits a
//! library would refuse to (Z flag, odd opcodes, EDNS versions).
#![allow(dead_code)]

use std::net::IpAddr;

use vipd_dns::zone::{ClusterZone, Node, ZoneConfig};

pub const CD: &str = "ostest.test.metalkube.org";

pub fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Single-stack IPv4 cluster: API VIP 192.0.2.5, ingress VIP 192.0.2.6, two nodes, master-0
/// dual-stack.
pub fn config() -> ZoneConfig {
    ZoneConfig {
        cluster_name: "ostest".into(),
        base_domain: "test.metalkube.org".into(),
        api_vips: vec![ip("192.0.2.5")],
        ingress_vips: vec![ip("192.0.2.6")],
        nodes: vec![
            Node {
                name: "master-0".into(),
                addresses: vec![ip("192.0.2.10"), ip("2001:db8::10")],
            },
            Node {
                name: "worker-0".into(),
                addresses: vec![ip("192.0.2.20")],
            },
        ],
        ttl: 30,
    }
}

pub fn zone() -> ClusterZone {
    ClusterZone::new(&config()).unwrap()
}

/// Dual-stack cluster: both VIP families.
pub fn dual_stack_zone() -> ClusterZone {
    let mut config = config();
    config.api_vips.push(ip("2001:db8::5"));
    config.ingress_vips.push(ip("2001:db8::6"));
    ClusterZone::new(&config).unwrap()
}

#[derive(Clone, Debug)]
pub struct Edns {
    pub udp_size: u16,
    pub version: u8,
    pub dnssec_ok: bool,
    /// (code, data) pairs.
    pub options: Vec<(u16, Vec<u8>)>,
}

impl Default for Edns {
    fn default() -> Self {
        Edns {
            udp_size: 1232,
            version: 0,
            dnssec_ok: false,
            options: Vec::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Query {
    pub id: u16,
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    pub opcode: u8,
    pub flags_extra: u16,
    pub edns: Option<Edns>,
}

impl Query {
    pub fn new(name: &str, qtype: u16) -> Self {
        Query {
            id: 0x1234,
            name: name.into(),
            qtype,
            qclass: 1,
            opcode: 0,
            flags_extra: 0,
            edns: None,
        }
    }

    pub fn edns(mut self, edns: Edns) -> Self {
        self.edns = Some(edns);
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut msg = Vec::new();
        msg.extend_from_slice(&self.id.to_be_bytes());
        let flags: u16 = 0x0100 | (u16::from(self.opcode) << 11) | self.flags_extra;
        msg.extend_from_slice(&flags.to_be_bytes());
        msg.extend_from_slice(&1u16.to_be_bytes());
        msg.extend_from_slice(&0u16.to_be_bytes());
        msg.extend_from_slice(&0u16.to_be_bytes());
        msg.extend_from_slice(&u16::from(self.edns.is_some()).to_be_bytes());
        for label in self.name.split('.').filter(|l| !l.is_empty()) {
            msg.push(label.len() as u8);
            msg.extend_from_slice(label.as_bytes());
        }
        msg.push(0);
        msg.extend_from_slice(&self.qtype.to_be_bytes());
        msg.extend_from_slice(&self.qclass.to_be_bytes());
        if let Some(edns) = &self.edns {
            msg.push(0);
            msg.extend_from_slice(&41u16.to_be_bytes());
            msg.extend_from_slice(&edns.udp_size.to_be_bytes());
            msg.push(0);
            msg.push(edns.version);
            let flags: u16 = if edns.dnssec_ok { 0x8000 } else { 0 };
            msg.extend_from_slice(&flags.to_be_bytes());
            let rdata: Vec<u8> = edns
                .options
                .iter()
                .flat_map(|(code, data)| {
                    let mut option = code.to_be_bytes().to_vec();
                    option.extend_from_slice(&(data.len() as u16).to_be_bytes());
                    option.extend_from_slice(data);
                    option
                })
                .collect();
            msg.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            msg.extend_from_slice(&rdata);
        }
        msg
    }
}
