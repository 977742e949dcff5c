//! The lab's PKI (a CA, the API server's serving certificate, kubelet-style client certificates)
//! and kubeconfigs in the shape of a node's `/var/lib/kubelet/kubeconfig`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Whether the API server requires a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// The TLS handshake fails without a certificate signed by the lab CA.
    #[default]
    Required,
    /// No certificate is accepted (a wrong one still fails the handshake); such requests are
    /// `system:anonymous` and get 403 on nodes.
    Optional,
}

/// A client certificate and its key, PEM, and where they were written.
#[derive(Debug, Clone)]
pub struct ClientCert {
    pub user: String,
    pub groups: Vec<String>,
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

/// The lab PKI, written as PEM files in `dir`: `ca.crt`, `ca.key`, `server.crt`, `server.key`,
/// `client.crt`, `client.key` (`system:node:master-0`, group `system:nodes`), `server-names`.
#[derive(Debug, Clone)]
pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert_pem: String,
    ca_key_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    /// The SANs of the serving certificate (IP addresses and DNS names).
    pub server_names: Vec<String>,
    pub client: ClientCert,
}

/// Where a kubeconfig takes a PEM from: inline (`*-data`, base64) or a file path.
#[derive(Debug, Clone)]
pub enum Source {
    Data(String),
    File(PathBuf),
}

/// What a kubeconfig names: the CA to trust and the client certificate and key.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub ca: Source,
    pub cert: Source,
    pub key: Source,
}

/// The default node identity of the client certificate.
pub const NODE_USER: &str = "system:node:master-0";
pub const NODE_GROUP: &str = "system:nodes";

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn key_pem(key: &KeyPair) -> String {
    pem("PRIVATE KEY", &key.serialize_der())
}

fn load_key(pem_text: &str) -> Result<KeyPair> {
    let der =
        PrivateKeyDer::from_pem_slice(pem_text.as_bytes()).context("parsing a PEM private key")?;
    KeyPair::try_from(&der).context("loading a private key")
}

fn ca_params() -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name
        .push(DnType::OrganizationalUnitName, "openshift");
    p.distinguished_name
        .push(DnType::CommonName, "kube-apiserver-lb-signer");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn read(dir: &Path, name: &str) -> Result<String> {
    let path = dir.join(name);
    fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

impl Pki {
    /// Generates a new CA, a serving certificate for `server_names` (IP addresses become iPAddress
    /// SANs, anything else dNSName SANs) and the `system:node:master-0` client certificate.
    pub fn generate(dir: &Path, server_names: &[&str]) -> Result<Pki> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params()?.self_signed(&ca_key)?;
        write(dir, "ca.crt", &ca_cert.pem_string())?;
        write(dir, "ca.key", &key_pem(&ca_key))?;
        let issuer = Issuer::new(ca_params()?, ca_key);
        let mut pki = Pki {
            dir: dir.to_path_buf(),
            ca_cert_pem: ca_cert.pem_string(),
            ca_key_pem: key_pem(issuer.key()),
            server_cert_pem: String::new(),
            server_key_pem: String::new(),
            server_names: Vec::new(),
            client: sign_client(&issuer, dir, NODE_USER, &[NODE_GROUP], "client")?,
        };
        pki.issue_server(&issuer, server_names)?;
        Ok(pki)
    }

    /// Loads the PKI of `dir` when there is one (re-issuing the serving certificate, same CA,
    /// when `server_names` differ from the ones it has), else generates one.
    pub fn load_or_generate(dir: &Path, server_names: &[&str]) -> Result<Pki> {
        if !dir.join("ca.key").exists() || !dir.join("client.key").exists() {
            return Pki::generate(dir, server_names);
        }
        let ca_key_pem = read(dir, "ca.key")?;
        let client = ClientCert {
            user: NODE_USER.into(),
            groups: vec![NODE_GROUP.into()],
            cert_pem: read(dir, "client.crt")?,
            key_pem: read(dir, "client.key")?,
            cert_path: dir.join("client.crt"),
            key_path: dir.join("client.key"),
        };
        let mut pki = Pki {
            dir: dir.to_path_buf(),
            ca_cert_pem: read(dir, "ca.crt")?,
            ca_key_pem,
            server_cert_pem: read(dir, "server.crt").unwrap_or_default(),
            server_key_pem: read(dir, "server.key").unwrap_or_default(),
            server_names: read(dir, "server-names")
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect(),
            client,
        };
        let wanted: Vec<String> = server_names.iter().map(|s| s.to_string()).collect();
        if pki.server_names != wanted || pki.server_cert_pem.is_empty() {
            let issuer = pki.issuer()?;
            pki.issue_server(&issuer, server_names)?;
        }
        Ok(pki)
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>> {
        Ok(Issuer::new(ca_params()?, load_key(&self.ca_key_pem)?))
    }

    fn issue_server(&mut self, issuer: &Issuer<'_, KeyPair>, names: &[&str]) -> Result<()> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(names.clone()).context("server certificate SANs")?;
        let cn = names
            .iter()
            .find(|n| n.parse::<std::net::IpAddr>().is_err());
        p.distinguished_name.push(
            DnType::CommonName,
            cn.map_or("kube-apiserver", |s| s.as_str()),
        );
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, issuer)?;
        self.server_cert_pem = cert.pem_string();
        self.server_key_pem = key_pem(&key);
        self.server_names = names;
        write(&self.dir, "server.crt", &self.server_cert_pem)?;
        write(&self.dir, "server.key", &self.server_key_pem)?;
        write(&self.dir, "server-names", &self.server_names.join("\n"))?;
        Ok(())
    }

    /// Issues another client certificate from the lab CA (e.g. `system:node:master-1`), written
    /// as `<stem>.crt` and `<stem>.key`.
    pub fn issue_client(&self, user: &str, groups: &[&str], stem: &str) -> Result<ClientCert> {
        sign_client(&self.issuer()?, &self.dir, user, groups, stem)
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// Everything inline (`certificate-authority-data`, `client-certificate-data`, `client-key-data`).
    pub fn embedded(&self) -> Credentials {
        Credentials {
            ca: Source::Data(self.ca_cert_pem.clone()),
            cert: Source::Data(self.client.cert_pem.clone()),
            key: Source::Data(self.client.key_pem.clone()),
        }
    }

    /// Everything by file path (`certificate-authority`, `client-certificate`, `client-key`).
    pub fn files(&self) -> Credentials {
        Credentials {
            ca: Source::File(self.ca_path()),
            cert: Source::File(self.client.cert_path.clone()),
            key: Source::File(self.client.key_path.clone()),
        }
    }

    /// Kubelet's form: CA inline, certificate and key both naming one combined PEM file
    /// (`kubelet-client-current.pem`: certificate, then key), written here.
    pub fn kubelet_files(&self) -> Result<Credentials> {
        let combined = format!("{}{}", self.client.cert_pem, self.client.key_pem);
        let path = write(&self.dir, "kubelet-client-current.pem", &combined)?;
        Ok(Credentials {
            ca: Source::Data(self.ca_cert_pem.clone()),
            cert: Source::File(path.clone()),
            key: Source::File(path),
        })
    }

    /// The rustls configuration of the API server: this serving certificate, client
    /// certificates verified against this CA (clientAuth EKU required by webpki), HTTP/1.1 ALPN.
    pub fn server_config(&self, auth: ClientAuth) -> Result<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_cert_pem.as_bytes()) {
            roots.add(cert.context("parsing ca.crt")?)?;
        }
        let builder = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        );
        let verifier = match auth {
            ClientAuth::Required => builder.build()?,
            ClientAuth::Optional => builder.allow_unauthenticated().build()?,
        };
        let chain = CertificateDer::pem_slice_iter(self.server_cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .context("parsing server.crt")?;
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes())
            .context("parsing server.key")?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

trait PemString {
    fn pem_string(&self) -> String;
}

impl PemString for rcgen::Certificate {
    fn pem_string(&self) -> String {
        pem("CERTIFICATE", self.der())
    }
}

fn sign_client(
    issuer: &Issuer<'_, KeyPair>,
    dir: &Path,
    user: &str,
    groups: &[&str],
    stem: &str,
) -> Result<ClientCert> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    for g in groups {
        p.distinguished_name.push(DnType::OrganizationName, *g);
    }
    p.distinguished_name.push(DnType::CommonName, user);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, issuer)?;
    let (cert_pem, key_pem) = (cert.pem_string(), key_pem(&key));
    Ok(ClientCert {
        user: user.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        cert_path: write(dir, &format!("{stem}.crt"), &cert_pem)?,
        key_path: write(dir, &format!("{stem}.key"), &key_pem)?,
        cert_pem,
        key_pem,
    })
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn field(name: &str, source: &Source) -> String {
    match source {
        Source::Data(pem) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
            format!("{name}-data: {b64}")
        }
        Source::File(path) => format!("{name}: {}", quoted(&path.to_string_lossy())),
    }
}

/// Writes a kubeconfig in the shape of a node's kubelet kubeconfig: one cluster `local`, one
/// user `kubelet`, one context `kubelet` (current). `tls_server_name` sets `tls-server-name`
/// (needed when `server_url` names an address the serving certificate does not list).
pub fn write_kubeconfig(
    path: &Path,
    server_url: &str,
    tls_server_name: Option<&str>,
    creds: &Credentials,
) -> Result<()> {
    let tls_name = tls_server_name
        .map(|n| format!("    tls-server-name: {}\n", quoted(n)))
        .unwrap_or_default();
    let text = format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    {ca}\n    server: {server}\n{tls_name}  name: local\n\
         contexts:\n- context:\n    cluster: local\n    user: kubelet\n  name: kubelet\n\
         current-context: kubelet\nkind: Config\npreferences: {{}}\n\
         users:\n- name: kubelet\n  user:\n    {cert}\n    {key}\n",
        ca = field("certificate-authority", &creds.ca),
        server = quoted(server_url),
        cert = field("client-certificate", &creds.cert),
        key = field("client-key", &creds.key),
    );
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Reads one DER TLV: (tag, contents, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The user (subject CN) and groups (subject O) of a client certificate, as kube-apiserver's
/// x509 authenticator maps them; `None` if the DER cannot be read.
pub fn subject_identity(der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after; // [0] version
    }
    for _ in 0..4 {
        rest = tlv(rest)?.2; // serial, signature, issuer, validity
    }
    let (_, mut subject, _) = tlv(rest)?;
    let (mut cn, mut orgs) = (None, Vec::new());
    while let Some((_, set, more)) = tlv(subject) {
        subject = more;
        let (_, attr, _) = tlv(set)?;
        let (_, oid, value) = tlv(attr)?;
        let (_, text, _) = tlv(value)?;
        let text = String::from_utf8_lossy(text).into_owned();
        match oid {
            [0x55, 0x04, 0x03] => cn = Some(text),
            [0x55, 0x04, 0x0a] => orgs.push(text),
            _ => {}
        }
    }
    Some((cn?, orgs))
}

/// Parses the first certificate of a PEM text to DER.
pub fn first_cert_der(pem_text: &str) -> Result<Vec<u8>> {
    let cert = CertificateDer::pem_slice_iter(pem_text.as_bytes())
        .next()
        .ok_or_else(|| anyhow!("no CERTIFICATE in the PEM text"))??;
    Ok(cert.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_identity_is_read_back() {
        let dir = std::env::temp_dir().join(format!("kube-api-pki-{}", std::process::id()));
        let pki = Pki::generate(&dir, &["127.0.0.1", "api-int.ostest.test.metalkube.org"]).unwrap();
        let der = first_cert_der(&pki.client.cert_pem).unwrap();
        let (user, groups) = subject_identity(&der).unwrap();
        assert_eq!(user, NODE_USER);
        assert_eq!(groups, vec![NODE_GROUP.to_string()]);
        let again = Pki::load_or_generate(&dir, &["127.0.0.1", "::1"]).unwrap();
        assert_eq!(again.ca_cert_pem, pki.ca_cert_pem);
        assert_ne!(again.server_cert_pem, pki.server_cert_pem);
        fs::remove_dir_all(&dir).unwrap();
    }
}
