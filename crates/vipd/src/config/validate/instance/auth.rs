//! How an instance's adverts are protected: VRRPv2 PASS authentication and the VRRPv3
//! checksum form.

use vipd_vrrp::{Auth, ChecksumForm, Version};

use super::super::super::raw::S;
use super::super::super::Family;
use super::super::Validator;
use super::Inst;

impl Validator<'_> {
    pub(super) fn auth(
        &mut self,
        inst: &Inst,
        version: Version,
        family: Family,
    ) -> (Auth, ChecksumForm) {
        let auth = self.password(inst, version);
        let checksum = match &inst.raw.checksum {
            None if version == Version::V2 => ChecksumForm::Plain,
            None => ChecksumForm::PseudoHeader,
            Some(c) => self.checksum(inst, c, version, family),
        };
        (auth, checksum)
    }

    /// `password`: VRRPv2 only; the first 8 bytes are sent.
    fn password(&mut self, inst: &Inst, version: Version) -> Auth {
        let Some(p) = &inst.raw.password else {
            return Auth::None;
        };
        if version == Version::V3 {
            self.err(
                p.span(),
                inst.at("password"),
                "VRRPv3 has no authentication (RFC 9568 removed it); remove password, or set version = 2 to speak VRRPv2 with PASS authentication",
            );
            return Auth::None;
        }
        let bytes = p.get_ref().as_bytes();
        if bytes.is_empty() {
            self.err(
                p.span(),
                inst.at("password"),
                "is empty; remove the key for no authentication (auth type 0), or give 1 to 8 bytes",
            );
            return Auth::None;
        }
        let mut pass = [0u8; 8];
        let n = bytes.len().min(8);
        pass[..n].copy_from_slice(&bytes[..n]);
        // OpenShift's own passwords are longer than 8 bytes and truncated on every node alike;
        // a role default is therefore not worth a warning.
        if bytes.len() > 8 && !inst.role_supplied("password") {
            self.warn(
                p.span(),
                inst.at("password"),
                format!(
                    "{} bytes long; only the first 8 ({:?}) are sent and compared (RFC 3768 section 5.3.10), as keepalived does",
                    bytes.len(),
                    String::from_utf8_lossy(&pass)
                ),
            );
        }
        Auth::Pass(pass)
    }

    /// A written `checksum`: a form VRRPv3 over IPv4 may choose.
    fn checksum(
        &mut self,
        inst: &Inst,
        c: &S<String>,
        version: Version,
        family: Family,
    ) -> ChecksumForm {
        let form = match c.get_ref().as_str() {
            "pseudo-header" => Some(ChecksumForm::PseudoHeader),
            "rfc9568" => Some(ChecksumForm::Plain),
            other => {
                self.err(
                    c.span(),
                    inst.at("checksum"),
                    format!("{other:?} is not a checksum form; accepted: \"pseudo-header\" (keepalived and FRR default) or \"rfc9568\" (RFC 9568 section 5.2.8, Cisco / Juniper / Arista)"),
                );
                None
            }
        };
        match (form, version, family) {
            (Some(_), Version::V2, _) => {
                self.err(
                    c.span(),
                    inst.at("checksum"),
                    "applies to VRRPv3 over IPv4 only; VRRPv2 never includes a pseudo-header (RFC 3768 section 5.3.8); remove checksum",
                );
                ChecksumForm::Plain
            }
            (Some(ChecksumForm::Plain), Version::V3, Family::Ipv6) => {
                self.err(
                    c.span(),
                    inst.at("checksum"),
                    "IPv6 always includes the pseudo-header (RFC 9568 section 5.2.8); remove checksum",
                );
                ChecksumForm::PseudoHeader
            }
            (Some(f), _, _) => f,
            (None, _, _) => ChecksumForm::PseudoHeader,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::validator;
    use super::super::tests::planned;
    use super::*;

    fn auth(text: &str, version: Version, family: Family) -> (Auth, ChecksumForm, Vec<String>) {
        let mut v = validator(text);
        let p = planned(text);
        let (a, c) = v.auth(&Inst::new(&p), version, family);
        let diagnostics = v
            .errors
            .iter()
            .chain(&v.warnings)
            .map(|d| format!("{}:{}: {}: {}", d.line, d.column, d.key, d.message))
            .collect();
        (a, c, diagnostics)
    }

    #[test]
    fn checksum_defaults_follow_the_version() {
        let text = "name = \"api\"\n";
        assert_eq!(auth(text, Version::V2, Family::Ipv4).1, ChecksumForm::Plain);
        assert_eq!(
            auth(text, Version::V3, Family::Ipv4).1,
            ChecksumForm::PseudoHeader
        );
    }

    #[test]
    fn an_unknown_checksum_form_with_v2_reports_the_form_only() {
        let (_, _, diagnostics) = auth(
            "name = \"api\"\nchecksum = \"crc\"\n",
            Version::V2,
            Family::Ipv4,
        );
        assert_eq!(diagnostics.len(), 1);
        assert!(
            diagnostics[0]
                .starts_with("2:12: instance \"api\": checksum: \"crc\" is not a checksum form"),
            "{diagnostics:?}"
        );
    }

    #[test]
    fn a_role_password_longer_than_8_bytes_is_not_warned_about() {
        let text = "name = \"api\"\npassword = \"0123456789\"\n";
        let mut p = planned(text);
        p.role_keys.push("password");
        let mut v = validator(text);
        let (a, _) = v.auth(&Inst::new(&p), Version::V2, Family::Ipv4);
        assert_eq!(a, Auth::Pass(*b"01234567"));
        assert!(v.warnings.is_empty() && v.errors.is_empty());
    }
}
