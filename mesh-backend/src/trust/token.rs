//! The join token: `bm1.<sha256 of the mesh CA certificate, hex>.<secret>`, like kubeadm's
//! `--discovery-token-ca-cert-hash` and token in one string. The hash lets the joiner
//! check the CA it is handed; the secret proves to a member that the joiner was invited,
//! without ever leaving the joiner (it sends an HMAC bound to both peer ids).

use std::fmt;
use std::str::FromStr;

use libp2p::PeerId;
use ring::hmac;
use sha2::{Digest, Sha256};

/// Version tag of the token format.
const TOKEN_VERSION: &str = "bm1";
/// Random bytes in a secret (rendered as twice as many hex digits).
const SECRET_BYTES: usize = 16;
/// Domain separation of the admission proof.
const PROOF_CONTEXT: &[u8] = b"beemesh-join-v1";

/// Why a string is not a join token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a join token has three dot-separated parts: bm1.<ca hash>.<secret>")]
    Shape,
    #[error("unknown join token version {0:?} (this node understands bm1)")]
    Version(String),
    #[error("the CA hash of a join token is 64 hex digits")]
    CaHash,
    #[error("the secret of a join token is {} hex digits", SECRET_BYTES * 2)]
    Secret,
}

/// A parsed join token.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    ca_hash: [u8; 32],
    secret: String,
}

/// Never prints the secret (tokens end up in logs and error messages).
impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinToken({TOKEN_VERSION}.{}.…)", hex(&self.ca_hash))
    }
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TOKEN_VERSION}.{}.{}", hex(&self.ca_hash), self.secret)
    }
}

impl FromStr for JoinToken {
    type Err = TokenError;

    fn from_str(text: &str) -> Result<Self, TokenError> {
        let parts: Vec<&str> = text.trim().split('.').collect();
        let [version, hash, secret] = parts.as_slice() else {
            return Err(TokenError::Shape);
        };
        if *version != TOKEN_VERSION {
            return Err(TokenError::Version((*version).to_string()));
        }
        let ca_hash: [u8; 32] = unhex(hash)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(TokenError::CaHash)?;
        if !is_secret(secret) {
            return Err(TokenError::Secret);
        }
        Ok(JoinToken {
            ca_hash,
            secret: secret.to_ascii_lowercase(),
        })
    }
}

impl JoinToken {
    /// The token of the mesh whose CA certificate is `ca_cert_der`, with `secret`.
    pub fn new(ca_cert_der: &[u8], secret: &str) -> Result<JoinToken, TokenError> {
        if !is_secret(secret) {
            return Err(TokenError::Secret);
        }
        Ok(JoinToken {
            ca_hash: ca_hash(ca_cert_der),
            secret: secret.to_ascii_lowercase(),
        })
    }

    /// A fresh random secret.
    pub fn generate_secret() -> String {
        let bytes: [u8; SECRET_BYTES] = rand::random();
        hex(&bytes)
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Whether this token names the CA whose certificate is `ca_cert_der`.
    pub fn names_ca(&self, ca_cert_der: &[u8]) -> bool {
        ca_hash(ca_cert_der) == self.ca_hash
    }

    /// The CA hash in hex (what the token names).
    pub fn ca_hash_hex(&self) -> String {
        hex(&self.ca_hash)
    }

    /// What a joiner sends the member: `HMAC-SHA256(secret, context ‖ joiner ‖ member)`.
    /// Bound to both noise-authenticated peer ids, it is worthless to an eavesdropper or
    /// to a fake member relaying it to a real one.
    pub fn proof(&self, joiner: &PeerId, member: &PeerId) -> Vec<u8> {
        hmac::sign(&self.key(), &proof_message(joiner, member))
            .as_ref()
            .to_vec()
    }

    /// Checks a joiner's proof in constant time.
    pub fn verify_proof(&self, joiner: &PeerId, member: &PeerId, proof: &[u8]) -> bool {
        hmac::verify(&self.key(), &proof_message(joiner, member), proof).is_ok()
    }

    fn key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, self.secret.as_bytes())
    }
}

fn proof_message(joiner: &PeerId, member: &PeerId) -> Vec<u8> {
    let joiner = joiner.to_bytes();
    let member = member.to_bytes();
    let mut message = Vec::with_capacity(PROOF_CONTEXT.len() + 2 + joiner.len() + member.len());
    message.extend_from_slice(PROOF_CONTEXT);
    for id in [&joiner, &member] {
        message.push(id.len() as u8);
        message.extend_from_slice(id);
    }
    message
}

/// sha256 of a DER certificate.
pub fn ca_hash(ca_cert_der: &[u8]) -> [u8; 32] {
    Sha256::digest(ca_cert_der).into()
}

fn is_secret(text: &str) -> bool {
    text.len() == SECRET_BYTES * 2 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16);
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> JoinToken {
        JoinToken::new(b"ca certificate", &JoinToken::generate_secret()).unwrap()
    }

    #[test]
    fn a_token_round_trips_through_text() {
        let token = token();
        let text = token.to_string();
        assert!(text.starts_with("bm1."));
        assert_eq!(text.len(), 3 + 1 + 64 + 1 + 32);
        assert_eq!(text.parse::<JoinToken>().unwrap(), token);
        // Surrounding whitespace (a file's newline) and upper-case hex are accepted.
        assert_eq!(
            format!("  {}\n", text.to_uppercase().replace("BM1", "bm1"))
                .parse::<JoinToken>()
                .unwrap(),
            token
        );
        assert!(token.names_ca(b"ca certificate"));
        assert!(!token.names_ca(b"another ca"));
        assert_eq!(token.ca_hash_hex(), hex(&Sha256::digest(b"ca certificate")));
    }

    #[test]
    fn malformed_tokens_say_what_is_wrong() {
        let good = token().to_string();
        let hash = good.split('.').nth(1).unwrap().to_string();
        let secret = good.split('.').nth(2).unwrap().to_string();
        let cases = [
            ("", TokenError::Shape),
            ("bm1", TokenError::Shape),
            ("bm1.abc", TokenError::Shape),
            (&format!("{good}.extra"), TokenError::Shape),
            (
                &format!("bm2.{hash}.{secret}"),
                TokenError::Version("bm2".into()),
            ),
            (&format!("bm1.{}.{secret}", &hash[..62]), TokenError::CaHash),
            (
                &format!("bm1.{}zz.{secret}", &hash[..62]),
                TokenError::CaHash,
            ),
            (&format!("bm1.{hash}.{}", &secret[..31]), TokenError::Secret),
            (
                &format!("bm1.{hash}.{}g", &secret[..31]),
                TokenError::Secret,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<JoinToken>(), Err(want), "{text:?}");
        }
        assert_eq!(
            JoinToken::new(b"x", "short").unwrap_err(),
            TokenError::Secret
        );
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let token = token();
        assert!(!format!("{token:?}").contains(token.secret()));
    }

    #[test]
    fn a_proof_holds_only_for_the_same_secret_and_peers() {
        let token = token();
        let (joiner, member, other) = (PeerId::random(), PeerId::random(), PeerId::random());
        let proof = token.proof(&joiner, &member);
        assert!(token.verify_proof(&joiner, &member, &proof));
        // Relayed by someone else, or presented to another member: refused.
        assert!(!token.verify_proof(&other, &member, &proof));
        assert!(!token.verify_proof(&joiner, &other, &proof));
        assert!(!token.verify_proof(&member, &joiner, &proof));
        // Another mesh's secret, or a damaged proof: refused.
        assert!(!self::token().verify_proof(&joiner, &member, &proof));
        let mut bad = proof.clone();
        bad[0] ^= 1;
        assert!(!token.verify_proof(&joiner, &member, &bad));
        assert!(!token.verify_proof(&joiner, &member, &proof[..31]));
        assert!(!token.verify_proof(&joiner, &member, b""));
    }
}
