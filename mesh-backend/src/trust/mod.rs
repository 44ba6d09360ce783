//! Who belongs to a mesh (ADR 0004): one CA per mesh, held by every member; member
//! certificates that bind a node's peer id; join tokens that name the CA and carry the
//! secret a joiner proves it knows; and the hooks that plug this into the mesh
//! ([`PeerAuthorizer`], [`Admitter`]).

mod ca;
mod token;

use std::sync::Arc;

use bytes::Bytes;
use libp2p::PeerId;
use serde::{Deserialize, Serialize};

pub use ca::MeshCa;
pub use token::{JoinToken, TokenError, ca_hash};

use crate::mesh::{Admitter, PeerAuthorizer};

/// Why a credential, certificate or admission was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("the private key does not belong to the CA certificate")]
    KeyMismatch,
    #[error("the peer presented no member certificate")]
    NoCredential,
    #[error("the member certificate is not signed by this mesh's CA")]
    NotSignedByMeshCa,
    #[error("the member certificate names {named}, but {presenter} presented it")]
    WrongPeer { named: String, presenter: String },
    #[error("the join token is not valid for this mesh")]
    InvalidToken,
    #[error(
        "the member's CA (sha256 {got}) is not the one the join token names ({want}): wrong token, or someone in between"
    )]
    CaMismatch { got: String, want: String },
    #[error("malformed admission answer: {0}")]
    Malformed(String),
}

impl From<rcgen::Error> for TrustError {
    fn from(e: rcgen::Error) -> Self {
        TrustError::Certificate(e.to_string())
    }
}

/// What a member hands a node it admits: the mesh CA (certificate and key) and the join
/// secret, so that the new member can admit later joiners and issue its own certificates.
#[derive(Serialize, Deserialize)]
struct MeshSecrets {
    ca_cert_pem: String,
    ca_key_pem: String,
    join_secret: String,
}

/// The admission request a joiner holding `token` sends `member`.
pub fn admission_request(token: &JoinToken, joiner: &PeerId, member: &PeerId) -> Bytes {
    token.proof(joiner, member).into()
}

/// Checks a member's answer against the token: the CA must be the one the token names
/// (so no one in between can hand us another), its key must match it, and the secret
/// must be the token's.
pub fn accept_admission(token: &JoinToken, answer: &[u8]) -> Result<MeshCa, TrustError> {
    let secrets: MeshSecrets =
        serde_json::from_slice(answer).map_err(|e| TrustError::Malformed(e.to_string()))?;
    let ca = MeshCa::from_pem(&secrets.ca_cert_pem, &secrets.ca_key_pem)?;
    if !token.names_ca(ca.cert_der()) {
        return Err(TrustError::CaMismatch {
            got: token::hex(&ca.hash()),
            want: token.ca_hash_hex(),
        });
    }
    if secrets.join_secret != token.secret() {
        return Err(TrustError::Malformed(
            "the member's join secret is not the token's".into(),
        ));
    }
    Ok(ca)
}

/// A member's view of its mesh: the CA, the mesh's join token and its own peer id.
pub struct MeshTrust {
    ca: MeshCa,
    token: JoinToken,
    local: PeerId,
}

impl MeshTrust {
    /// Refuses a token that does not name `ca`.
    pub fn new(ca: MeshCa, token: JoinToken, local: PeerId) -> Result<MeshTrust, TrustError> {
        if !token.names_ca(ca.cert_der()) {
            return Err(TrustError::CaMismatch {
                got: token::hex(&ca.hash()),
                want: token.ca_hash_hex(),
            });
        }
        Ok(MeshTrust { ca, token, local })
    }

    pub fn ca(&self) -> &MeshCa {
        &self.ca
    }

    pub fn token(&self) -> &JoinToken {
        &self.token
    }

    /// Answers an admission request from `joiner`: the mesh secrets if it proved it knows
    /// the join secret for this member.
    pub fn admit(&self, joiner: &PeerId, request: &[u8]) -> Result<Bytes, TrustError> {
        if !self.token.verify_proof(joiner, &self.local, request) {
            return Err(TrustError::InvalidToken);
        }
        let secrets = MeshSecrets {
            ca_cert_pem: self.ca.cert_pem().to_string(),
            ca_key_pem: self.ca.key_pem().to_string(),
            join_secret: self.token.secret().to_string(),
        };
        serde_json::to_vec(&secrets)
            .map(Bytes::from)
            .map_err(|e| TrustError::Malformed(e.to_string()))
    }

    /// Whether `credential` is a member certificate of this mesh for `peer`.
    pub fn authorize(&self, peer: &PeerId, credential: &[u8]) -> Result<(), TrustError> {
        self.ca.verify_member_cert(credential, peer)
    }

    /// The mesh hook that admits only peers with a member certificate of this mesh.
    pub fn authorizer(self: &Arc<Self>) -> PeerAuthorizer {
        let trust = self.clone();
        PeerAuthorizer(Arc::new(move |peer, credential| {
            let verdict = trust.authorize(&peer, &credential);
            Box::pin(async move {
                match verdict {
                    Ok(()) => true,
                    Err(error) => {
                        tracing::warn!(%peer, %error, "refusing a peer without a valid member certificate");
                        false
                    }
                }
            })
        }))
    }

    /// The mesh hook that hands the mesh secrets to joiners with a valid token.
    pub fn admitter(self: &Arc<Self>) -> Admitter {
        let trust = self.clone();
        Admitter(Arc::new(move |joiner, request| {
            let answer = trust.admit(&joiner, &request).map_err(|e| e.to_string());
            Box::pin(async move { answer })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mesh() -> (MeshCa, JoinToken) {
        let ca = MeshCa::generate().unwrap();
        let token = JoinToken::new(ca.cert_der(), &JoinToken::generate_secret()).unwrap();
        (ca, token)
    }

    #[test]
    fn a_joiner_with_the_token_receives_the_mesh_ca() {
        let (ca, token) = mesh();
        let (joiner, member) = (PeerId::random(), PeerId::random());
        let trust = MeshTrust::new(ca.clone(), token.clone(), member).unwrap();
        let answer = trust
            .admit(&joiner, &admission_request(&token, &joiner, &member))
            .unwrap();
        let received = accept_admission(&token, &answer).unwrap();
        assert_eq!(received.hash(), ca.hash());
        assert_eq!(received.key_pem(), ca.key_pem());
    }

    #[test]
    fn a_wrong_or_misdirected_token_is_refused() {
        let (ca, token) = mesh();
        let (joiner, member) = (PeerId::random(), PeerId::random());
        let trust = MeshTrust::new(ca.clone(), token.clone(), member).unwrap();
        // Another secret for the same CA (a made-up or stale token).
        let guessed = JoinToken::new(ca.cert_der(), &JoinToken::generate_secret()).unwrap();
        assert_eq!(
            trust.admit(&joiner, &admission_request(&guessed, &joiner, &member)),
            Err(TrustError::InvalidToken)
        );
        // A proof made for another member, or replayed by another peer.
        let elsewhere = admission_request(&token, &joiner, &PeerId::random());
        assert_eq!(
            trust.admit(&joiner, &elsewhere),
            Err(TrustError::InvalidToken)
        );
        let proof = admission_request(&token, &joiner, &member);
        assert_eq!(
            trust.admit(&PeerId::random(), &proof),
            Err(TrustError::InvalidToken)
        );
        // A token for another CA cannot even configure a member.
        let (other_ca, _) = mesh();
        assert!(matches!(
            MeshTrust::new(other_ca, token, member),
            Err(TrustError::CaMismatch { .. })
        ));
    }

    fn answer(ca_cert_pem: &str, ca_key_pem: &str, join_secret: &str) -> Vec<u8> {
        serde_json::to_vec(&MeshSecrets {
            ca_cert_pem: ca_cert_pem.into(),
            ca_key_pem: ca_key_pem.into(),
            join_secret: join_secret.into(),
        })
        .unwrap()
    }

    #[test]
    fn a_joiner_refuses_a_ca_its_token_does_not_name() {
        let (ca, token) = mesh();
        let (other, _) = mesh();
        // Someone in between answering with its own CA (and the joiner's secret, had it
        // learnt it): not the CA the token names.
        let forged = answer(other.cert_pem(), other.key_pem(), token.secret());
        assert!(matches!(
            accept_admission(&token, &forged),
            Err(TrustError::CaMismatch { .. })
        ));
        // The real CA certificate (it is public) with some other key.
        let wrong_key = answer(ca.cert_pem(), other.key_pem(), token.secret());
        assert_eq!(
            accept_admission(&token, &wrong_key).unwrap_err(),
            TrustError::KeyMismatch
        );
        // The right CA with another secret; garbage.
        let wrong_secret = answer(ca.cert_pem(), ca.key_pem(), &JoinToken::generate_secret());
        assert!(matches!(
            accept_admission(&token, &wrong_secret),
            Err(TrustError::Malformed(_))
        ));
        assert!(matches!(
            accept_admission(&token, b"not json"),
            Err(TrustError::Malformed(_))
        ));
    }

    #[test]
    fn members_authorize_only_certified_peers() {
        let (ca, token) = mesh();
        let trust = MeshTrust::new(ca.clone(), token, PeerId::random()).unwrap();
        let node = libp2p::identity::Keypair::generate_ed25519();
        let cert = ca.issue_member_cert(&node.public()).unwrap();
        assert_eq!(trust.authorize(&node.public().to_peer_id(), &cert), Ok(()));
        assert_eq!(
            trust.authorize(&node.public().to_peer_id(), b""),
            Err(TrustError::NoCredential)
        );
        assert!(trust.authorize(&PeerId::random(), &cert).is_err());
    }
}
