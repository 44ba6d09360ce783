//! The mesh CA: one per mesh, held by every member (ADR 0004). It signs the API's
//! serving and client certificates and the member certificates that bind a node's
//! libp2p identity: the certificate's subject key *is* the node's ed25519 key, so the
//! peer id noise authenticated on a connection must be the one the certificate names.

use libp2p::PeerId;
use libp2p::identity::{PublicKey, ed25519};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ED25519, PublicKeyData, SignatureAlgorithm,
};
use x509_parser::oid_registry::OID_SIG_ED25519;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::TrustError;
use super::token::ca_hash;

/// Common name of every mesh CA (the CA is told apart by its hash, not its name).
const CA_COMMON_NAME: &str = "beemesh-ca";

/// A mesh CA: certificate and private key.
#[derive(Clone)]
pub struct MeshCa {
    cert_pem: String,
    cert_der: Vec<u8>,
    key_pem: String,
}

impl std::fmt::Debug for MeshCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshCa")
            .field("sha256", &super::token::hex(&self.hash()))
            .finish_non_exhaustive()
    }
}

fn pem_to_der(pem: &str) -> Result<Vec<u8>, TrustError> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| TrustError::Certificate(format!("not a PEM certificate: {e}")))?;
    Ok(parsed.contents)
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, TrustError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(TrustError::Certificate("trailing bytes".into())),
        Err(e) => Err(TrustError::Certificate(e.to_string())),
    }
}

impl MeshCa {
    /// A new CA (ECDSA P-256), for the first node of a mesh.
    pub fn generate() -> Result<MeshCa, TrustError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, CA_COMMON_NAME);
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_after = rcgen::date_time_ymd(2036, 1, 1);
        let cert = params.self_signed(&key)?;
        MeshCa::from_pem(&cert.pem(), &key.serialize_pem())
    }

    /// A CA from its PEM certificate and key; refuses a key that does not belong to the
    /// certificate, or a certificate that is no CA.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<MeshCa, TrustError> {
        let cert_der = pem_to_der(cert_pem)?;
        let key = KeyPair::from_pem(key_pem)?;
        {
            let cert = parse(&cert_der)?;
            if !cert.is_ca() {
                return Err(TrustError::Certificate(
                    "the mesh CA certificate is not a CA".into(),
                ));
            }
            if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
                return Err(TrustError::KeyMismatch);
            }
        }
        Ok(MeshCa {
            cert_pem: cert_pem.to_string(),
            cert_der,
            key_pem: key_pem.to_string(),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// sha256 of the DER certificate: what join tokens name.
    pub fn hash(&self) -> [u8; 32] {
        ca_hash(&self.cert_der)
    }

    /// A member certificate (DER) for the node whose libp2p key is `peer` (ed25519).
    pub fn issue_member_cert(&self, peer: &PublicKey) -> Result<Vec<u8>, TrustError> {
        let key = peer
            .clone()
            .try_into_ed25519()
            .map_err(|_| TrustError::Certificate("member keys are ed25519".into()))?;
        let subject = Ed25519Subject(key.to_bytes());
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            format!("beemesh-peer {}", peer.to_peer_id()),
        );
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_after = rcgen::date_time_ymd(2036, 1, 1);
        let signer = KeyPair::from_pem(&self.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, signer)?;
        Ok(params.signed_by(&subject, &issuer)?.der().to_vec())
    }

    /// Checks that `der` is a member certificate this CA signed, valid now, for `peer`.
    pub fn verify_member_cert(&self, der: &[u8], peer: &PeerId) -> Result<(), TrustError> {
        if der.is_empty() {
            return Err(TrustError::NoCredential);
        }
        let ca = parse(&self.cert_der)?;
        let cert = parse(der)?;
        if cert.issuer().as_raw() != ca.subject().as_raw() {
            return Err(TrustError::NotSignedByMeshCa);
        }
        cert.verify_signature(Some(ca.public_key()))
            .map_err(|_| TrustError::NotSignedByMeshCa)?;
        if !cert.validity().is_valid() {
            return Err(TrustError::Certificate("expired or not yet valid".into()));
        }
        if cert.is_ca() {
            return Err(TrustError::Certificate("a CA is no member".into()));
        }
        let spki = cert.public_key();
        if spki.algorithm.algorithm != OID_SIG_ED25519 {
            return Err(TrustError::Certificate("member keys are ed25519".into()));
        }
        let key = ed25519::PublicKey::try_from_bytes(spki.subject_public_key.data.as_ref())
            .map_err(|e| TrustError::Certificate(format!("member key: {e}")))?;
        let named = PublicKey::from(key).to_peer_id();
        if named != *peer {
            return Err(TrustError::WrongPeer {
                named: named.to_string(),
                presenter: peer.to_string(),
            });
        }
        Ok(())
    }
}

/// A subject public key given as raw ed25519 bytes (rcgen needs no private key for it).
struct Ed25519Subject([u8; 32]);

impl PublicKeyData for Ed25519Subject {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ED25519
    }
}

#[cfg(test)]
mod tests {
    use libp2p::identity::Keypair;

    use super::*;

    #[test]
    fn a_member_certificate_binds_the_peer_id() {
        let ca = MeshCa::generate().unwrap();
        let node = Keypair::generate_ed25519();
        let peer = node.public().to_peer_id();
        let cert = ca.issue_member_cert(&node.public()).unwrap();
        assert_eq!(ca.verify_member_cert(&cert, &peer), Ok(()));

        // Presented by anyone else (a copied certificate): refused, naming both.
        let thief = PeerId::random();
        assert_eq!(
            ca.verify_member_cert(&cert, &thief),
            Err(TrustError::WrongPeer {
                named: peer.to_string(),
                presenter: thief.to_string()
            })
        );
        // Checked against another mesh's CA: refused.
        let other = MeshCa::generate().unwrap();
        assert_eq!(
            other.verify_member_cert(&cert, &peer),
            Err(TrustError::NotSignedByMeshCa)
        );
        // A certificate of another mesh for the same node: refused.
        let foreign = other.issue_member_cert(&node.public()).unwrap();
        assert_eq!(
            ca.verify_member_cert(&foreign, &peer),
            Err(TrustError::NotSignedByMeshCa)
        );
        // No credential, garbage, a tampered certificate, the CA itself: refused.
        assert_eq!(
            ca.verify_member_cert(b"", &peer),
            Err(TrustError::NoCredential)
        );
        assert!(ca.verify_member_cert(b"garbage", &peer).is_err());
        let mut tampered = cert.clone();
        let at = tampered.len() - 40;
        tampered[at] ^= 1;
        assert!(ca.verify_member_cert(&tampered, &peer).is_err());
        assert!(ca.verify_member_cert(ca.cert_der(), &peer).is_err());
    }

    #[test]
    fn a_ca_is_loaded_only_with_its_own_key() {
        let ca = MeshCa::generate().unwrap();
        let again = MeshCa::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
        assert_eq!(again.hash(), ca.hash());
        let other = MeshCa::generate().unwrap();
        assert_eq!(
            MeshCa::from_pem(ca.cert_pem(), other.key_pem()).unwrap_err(),
            TrustError::KeyMismatch
        );
        assert!(MeshCa::from_pem("not pem", ca.key_pem()).is_err());
        // A leaf certificate is no CA.
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["x".to_string()])
            .unwrap()
            .self_signed(&leaf_key)
            .unwrap();
        assert!(MeshCa::from_pem(&leaf.pem(), &leaf_key.serialize_pem()).is_err());
    }
}
