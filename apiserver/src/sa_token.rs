//! ServiceAccount tokens: JWTs signed ES256 with the node's CA key (an ECDSA P-256 key,
//! rcgen's default), carrying upstream's claims (`iss`, `sub`
//! `system:serviceaccount:<ns>:<name>`, `aud`, `exp`, `iat`, `nbf`, `jti` and the private
//! `kubernetes.io` claim naming the namespace, the ServiceAccount and a bound object),
//! and their verification. Verifying needs only the CA certificate's public key, so a
//! node that holds the certificate but not the key can still authenticate tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::PublicKeyData;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, UnparsedPublicKey,
};
use serde_json::{Value, json};
use sha2::Digest;

/// `--service-account-issuer` (kubeadm's default), also the API's audience.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Why a signing key could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TokenKeyError {
    #[error("key: {0}")]
    Key(String),
    #[error("the CA key is not ECDSA P-256 (ES256 needs one)")]
    NotP256,
}

/// Why a bearer token is not a valid ServiceAccount token (worded as upstream's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT issued by this mesh: other authenticators may still know it.
    #[error("not a service account token")]
    NotOurs,
    #[error("crypto/ecdsa: verification error")]
    BadSignature,
    #[error("service account token has expired")]
    Expired,
    #[error("service account token is not valid yet")]
    NotYetValid,
    #[error("token audiences {0} is invalid for the target audiences {1}")]
    Audience(String, String),
}

/// What a token is bound to besides its ServiceAccount (`kubernetes.io.pod` ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundRef {
    /// `pod`, `secret` or `node`.
    pub kind: &'static str,
    pub name: String,
    pub uid: String,
}

/// What a token says, to be checked against the store by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub namespace: String,
    pub service_account: String,
    pub service_account_uid: String,
    pub audiences: Vec<String>,
    pub id: String,
    pub bound: Vec<BoundRef>,
}

/// The keys that sign and check ServiceAccount tokens.
pub struct TokenKeys {
    signer: Option<EcdsaKeyPair>,
    /// Uncompressed P-256 point.
    public_key: Vec<u8>,
    /// Upstream's `kid`: base64url(SHA-256(SubjectPublicKeyInfo DER)).
    key_id: String,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("key_id", &self.key_id)
            .field("can_sign", &self.signer.is_some())
            .finish()
    }
}

fn key_id(spki_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(spki_der))
}

impl TokenKeys {
    /// Signs with `key_pem` (PKCS#8 PEM, as rcgen writes the CA key).
    pub fn from_key_pem(key_pem: &str) -> Result<TokenKeys, TokenKeyError> {
        let key =
            rcgen::KeyPair::from_pem(key_pem).map_err(|e| TokenKeyError::Key(e.to_string()))?;
        if key.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
            return Err(TokenKeyError::NotP256);
        }
        let signer = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &SystemRandom::new(),
        )
        .map_err(|e| TokenKeyError::Key(e.to_string()))?;
        Ok(TokenKeys {
            signer: Some(signer),
            public_key: key.public_key_raw().to_vec(),
            key_id: key_id(&key.subject_public_key_info()),
        })
    }

    /// Checks tokens only, with the public key of a CA certificate (PEM).
    pub fn verify_only(ca_cert_pem: &str) -> Result<TokenKeys, TokenKeyError> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(ca_cert_pem.as_bytes())
            .map_err(|e| TokenKeyError::Key(e.to_string()))?;
        let cert = pem
            .parse_x509()
            .map_err(|e| TokenKeyError::Key(e.to_string()))?;
        let spki = cert.public_key();
        Ok(TokenKeys {
            signer: None,
            public_key: spki.subject_public_key.data.to_vec(),
            key_id: key_id(spki.raw),
        })
    }

    /// A fresh key that lives as long as the process: for a node started without its CA
    /// key (tokens then verify on this node until it restarts).
    pub fn ephemeral() -> Result<TokenKeys, TokenKeyError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| TokenKeyError::Key(e.to_string()))?;
        TokenKeys::from_key_pem(&key.serialize_pem())
    }

    /// Keys that sign nothing and verify nothing (a node whose key could not be read).
    pub fn empty() -> TokenKeys {
        TokenKeys {
            signer: None,
            public_key: Vec::new(),
            key_id: String::new(),
        }
    }

    pub fn can_sign(&self) -> bool {
        self.signer.is_some()
    }

    /// A signed token for `claims`.
    pub fn sign(&self, claims: &Value) -> Result<String, TokenKeyError> {
        let signer = self
            .signer
            .as_ref()
            .ok_or_else(|| TokenKeyError::Key("this node holds no signing key".into()))?;
        let header = json!({"alg": "ES256", "kid": self.key_id});
        let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default());
        let signing_input = format!("{}.{}", encode(&header), encode(claims));
        let signature = signer
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|e| TokenKeyError::Key(e.to_string()))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// Checks the signature, issuer and times of `token` at `now` (unix seconds) and that
    /// one of its audiences is in `audiences`; returns what it says.
    pub fn verify(
        &self,
        token: &str,
        audiences: &[String],
        now: i64,
    ) -> Result<TokenClaims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::NotOurs);
        };
        let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| TokenError::NotOurs);
        let header: Value =
            serde_json::from_slice(&decode(header)?).map_err(|_| TokenError::NotOurs)?;
        let claims: Value =
            serde_json::from_slice(&decode(payload)?).map_err(|_| TokenError::NotOurs)?;
        if claims["iss"] != ISSUER || header["alg"] != "ES256" {
            return Err(TokenError::NotOurs);
        }
        let signing_input = &token[..token.len() - signature.len() - 1];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.public_key)
            .verify(signing_input.as_bytes(), &decode(signature)?)
            .map_err(|_| TokenError::BadSignature)?;
        // go-jose's default leeway.
        const LEEWAY: i64 = 60;
        let at = |k: &str| claims.get(k).and_then(Value::as_i64);
        if at("exp").is_some_and(|exp| now > exp + LEEWAY) {
            return Err(TokenError::Expired);
        }
        if at("nbf").is_some_and(|nbf| now + LEEWAY < nbf) {
            return Err(TokenError::NotYetValid);
        }
        let token_auds: Vec<String> = match &claims["aud"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if !token_auds.iter().any(|a| audiences.contains(a)) {
            return Err(TokenError::Audience(
                format!("{token_auds:?}"),
                format!("{audiences:?}"),
            ));
        }
        let k8s = &claims["kubernetes.io"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let bound = ["pod", "secret", "node"]
            .into_iter()
            .filter_map(|kind| {
                k8s.get(kind).map(|r| BoundRef {
                    kind,
                    name: text(&r["name"]),
                    uid: text(&r["uid"]),
                })
            })
            .collect();
        Ok(TokenClaims {
            namespace: text(&k8s["namespace"]),
            service_account: text(&k8s["serviceaccount"]["name"]),
            service_account_uid: text(&k8s["serviceaccount"]["uid"]),
            audiences: token_auds,
            id: text(&claims["jti"]),
            bound,
        })
    }
}

/// Upstream's claims for a token of ServiceAccount `namespace/name` (uid `uid`), valid
/// `expiration_seconds` from `now` (unix seconds) for `audiences`, bound to `bound`.
pub fn claims(
    namespace: &str,
    name: &str,
    uid: &str,
    audiences: &[String],
    now: i64,
    expiration_seconds: i64,
    bound: &[BoundRef],
) -> Value {
    let mut k8s = json!({
        "namespace": namespace,
        "serviceaccount": {"name": name, "uid": uid},
    });
    for b in bound {
        k8s[b.kind] = json!({"name": b.name, "uid": b.uid});
    }
    json!({
        "aud": audiences,
        "exp": now + expiration_seconds,
        "iat": now,
        "iss": ISSUER,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": k8s,
        "nbf": now,
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Vec<String> {
        vec![ISSUER.to_string()]
    }

    #[test]
    fn signed_tokens_verify_and_carry_upstreams_claims() {
        let keys = TokenKeys::ephemeral().unwrap();
        let c = claims("default", "robot", "u-1", &api(), 1_000, 600, &[]);
        let token = keys.sign(&c).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload["sub"], "system:serviceaccount:default:robot");
        assert_eq!(payload["exp"], 1_600);
        assert_eq!(payload["kubernetes.io"]["serviceaccount"]["uid"], "u-1");
        let got = keys.verify(&token, &api(), 1_100).unwrap();
        assert_eq!(got.service_account, "robot");
        assert_eq!(got.namespace, "default");
        assert_eq!(got.id, payload["jti"].as_str().unwrap());
        assert_eq!(keys.verify(&token, &api(), 1_700), Err(TokenError::Expired));
        assert_eq!(
            keys.verify(&token, &api(), 900),
            Err(TokenError::NotYetValid)
        );
        assert!(matches!(
            keys.verify(&token, &["other".to_string()], 1_100),
            Err(TokenError::Audience(..))
        ));
        // Another key's token, a tampered token and garbage are refused.
        let other = TokenKeys::ephemeral().unwrap();
        assert_eq!(
            other.verify(&token, &api(), 1_100),
            Err(TokenError::BadSignature)
        );
        let tampered = format!("{}.{}.{}", parts[0], parts[0], parts[2]);
        assert!(keys.verify(&tampered, &api(), 1_100).is_err());
        assert_eq!(keys.verify("abc", &api(), 0), Err(TokenError::NotOurs));
    }

    #[test]
    fn a_ca_certificate_verifies_what_its_key_signed() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        let signer = TokenKeys::from_key_pem(&key.serialize_pem()).unwrap();
        let checker = TokenKeys::verify_only(&cert.pem()).unwrap();
        assert!(!checker.can_sign());
        assert_eq!(signer.key_id, checker.key_id);
        let token = signer
            .sign(&claims("ns", "sa", "u", &api(), 10, 600, &[]))
            .unwrap();
        assert!(checker.verify(&token, &api(), 20).is_ok());
    }
}
