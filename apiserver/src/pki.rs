//! The node's certificates: a CA, the serving certificate and an admin client
//! certificate, created on first start with rcgen and reused afterwards, plus the
//! kubeconfig that carries them to kubectl.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// PEM material of one node.
#[derive(Clone)]
pub struct NodePki {
    pub ca_cert_pem: String,
    /// The CA's private key (PKCS#8 PEM); also signs ServiceAccount tokens.
    pub ca_key_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    /// Bearer token accepted as the admin user.
    pub admin_token: String,
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write(path: &Path, contents: &str) -> Result<(), PkiError> {
    fs::write(path, contents).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn name(cn: &str, org: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(o) = org {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}

impl NodePki {
    /// Loads the node's certificates from `dir/pki`, creating them on first start.
    /// A serving certificate whose SANs miss one of `sans` is re-issued from the same CA.
    pub fn load_or_create(dir: &Path, sans: &[String]) -> Result<NodePki, PkiError> {
        let pki = dir.join("pki");
        fs::create_dir_all(&pki).map_err(|source| PkiError::Io {
            path: pki.clone(),
            source,
        })?;
        let ca_cert_path = pki.join("ca.crt");
        let ca_key_path = pki.join("ca.key");
        if !ca_cert_path.exists() {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name = name("beemesh-ca", None);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            params.not_after = rcgen::date_time_ymd(2036, 1, 1);
            let cert = params.self_signed(&key)?;
            write(&ca_key_path, &key.serialize_pem())?;
            write(&ca_cert_path, &cert.pem())?;
        }
        let ca_cert_pem = read(&ca_cert_path)?;
        let ca_key_pem = read(&ca_key_path)?;
        let ca_key = KeyPair::from_pem(&ca_key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, &ca_key)?;

        let mut all_sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into()];
        for s in sans {
            if !all_sans.contains(s) {
                all_sans.push(s.clone());
            }
        }
        let sans_path = pki.join("server.sans");
        let server_cert_path = pki.join("server.crt");
        let server_key_path = pki.join("server.key");
        let recorded = fs::read_to_string(&sans_path).unwrap_or_default();
        let covered = all_sans.iter().all(|s| recorded.lines().any(|l| l == s));
        if !server_cert_path.exists() || !covered {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(all_sans.clone())?;
            params.distinguished_name = name("beemesh-apiserver", None);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.not_after = rcgen::date_time_ymd(2036, 1, 1);
            let cert = params.signed_by(&key, &issuer)?;
            write(&server_key_path, &key.serialize_pem())?;
            write(&server_cert_path, &cert.pem())?;
            write(&sans_path, &all_sans.join("\n"))?;
        }
        let admin_cert_path = pki.join("admin.crt");
        let admin_key_path = pki.join("admin.key");
        if !admin_cert_path.exists() {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name = name("beemesh-admin", Some("system:masters"));
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            params.not_after = rcgen::date_time_ymd(2036, 1, 1);
            let cert = params.signed_by(&key, &issuer)?;
            write(&admin_key_path, &key.serialize_pem())?;
            write(&admin_cert_path, &cert.pem())?;
        }
        let token_path = pki.join("admin.token");
        if !token_path.exists() {
            let bytes: [u8; 24] = rand::random();
            let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            write(&token_path, &token)?;
        }
        Ok(NodePki {
            ca_cert_pem,
            ca_key_pem,
            server_cert_pem: read(&server_cert_path)?,
            server_key_pem: read(&server_key_path)?,
            admin_cert_pem: read(&admin_cert_path)?,
            admin_key_pem: read(&admin_key_path)?,
            admin_token: read(&token_path)?.trim().to_string(),
        })
    }

    /// A kubeconfig with one context per (name, server URL), all as the admin user.
    pub fn kubeconfig(&self, contexts: &[(String, String)], current: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        let mut clusters = String::new();
        let mut ctxs = String::new();
        for (name, url) in contexts {
            clusters.push_str(&format!(
                "- name: {name}\n  cluster:\n    server: {url}\n    certificate-authority-data: {}\n",
                b64(&self.ca_cert_pem)
            ));
            ctxs.push_str(&format!(
                "- name: {name}\n  context:\n    cluster: {name}\n    user: beemesh-admin\n"
            ));
        }
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n{clusters}contexts:\n{ctxs}current-context: {current}\nusers:\n- name: beemesh-admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\npreferences: {{}}\n",
            b64(&self.admin_cert_pem),
            b64(&self.admin_key_pem)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = NodePki::load_or_create(dir.path(), &["10.1.2.3".into()]).unwrap();
        let b = NodePki::load_or_create(dir.path(), &["10.1.2.3".into()]).unwrap();
        assert_eq!(a.ca_cert_pem, b.ca_cert_pem);
        assert_eq!(a.server_cert_pem, b.server_cert_pem);
        assert_eq!(a.admin_token, b.admin_token);
        // A new listen address re-issues the serving certificate from the same CA.
        let c = NodePki::load_or_create(dir.path(), &["10.9.9.9".into()]).unwrap();
        assert_eq!(a.ca_cert_pem, c.ca_cert_pem);
        assert_ne!(a.server_cert_pem, c.server_cert_pem);
        let kc = a.kubeconfig(&[("n1".into(), "https://127.0.0.1:6443".into())], "n1");
        assert!(kc.contains("server: https://127.0.0.1:6443"));
        assert!(kc.contains("current-context: n1"));
    }
}
