//! Authentication: who a request comes from, as upstream's `user.Info`. A client
//! certificate signed by the node's CA names the user (CN) and groups (O); the admin
//! bearer token is the admin user; a ServiceAccount token (see `sa_token`) is its
//! ServiceAccount while that ServiceAccount (and the object the token is bound to)
//! still exists with the uid the token names. Every authenticated user is also in
//! `system:authenticated`.
//!
//! Authorization: BeeMesh has no RBAC yet, so every authenticated user may do
//! everything (reviews answer `allowed: true` with `NO_RBAC_REASON`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use beemesh_translator::ResourceInfo;

use crate::sa_token::{TokenClaims, TokenError};
use crate::server::PeerIdentity;
use crate::state::AppState;

/// The user the admin certificate and token stand for.
pub const ADMIN_USER: &str = "beemesh-admin";
/// The admin's group: upstream's superuser group.
pub const MASTERS_GROUP: &str = "system:masters";
/// Every authenticated user's group.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// Why every access review is allowed.
pub const NO_RBAC_REASON: &str = "beemesh: no RBAC, every authenticated user is admin";

/// Who made a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// `UserInfo` as the authentication API writes it (empty fields omitted).
    pub fn to_json(&self) -> Value {
        let mut v = json!({"username": self.username});
        if !self.uid.is_empty() {
            v["uid"] = json!(self.uid);
        }
        if !self.groups.is_empty() {
            v["groups"] = json!(self.groups);
        }
        if !self.extra.is_empty() {
            v["extra"] = json!(self.extra);
        }
        v
    }

    fn with_authenticated_group(mut self) -> UserInfo {
        if !self.groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
            self.groups.push(AUTHENTICATED_GROUP.to_string());
        }
        self
    }

    /// The admin user of this node.
    pub fn admin() -> UserInfo {
        UserInfo {
            username: ADMIN_USER.to_string(),
            groups: vec![MASTERS_GROUP.to_string()],
            ..UserInfo::default()
        }
        .with_authenticated_group()
    }
}

/// The user of a verified client certificate.
pub fn from_certificate(peer: &PeerIdentity) -> Option<UserInfo> {
    let user = peer.user.as_ref().filter(|u| !u.is_empty())?;
    Some(
        UserInfo {
            username: user.clone(),
            groups: peer.groups.clone(),
            ..UserInfo::default()
        }
        .with_authenticated_group(),
    )
}

/// The user of a bearer token for the API's audiences, or why it is not one.
pub fn from_token(state: &AppState, token: &str) -> Result<UserInfo, String> {
    from_token_for(state, token, &api_audiences())
}

/// The API's own audiences (`--api-audiences`, the issuer by default).
pub fn api_audiences() -> Vec<String> {
    vec![crate::sa_token::ISSUER.to_string()]
}

/// The user of a bearer token for `audiences`, or why it is not one (upstream's
/// TokenReview `status.error` wording).
pub fn from_token_for(
    state: &AppState,
    token: &str,
    audiences: &[String],
) -> Result<UserInfo, String> {
    let token = token.trim();
    if !state.admin_token.is_empty() && token == state.admin_token {
        return Ok(UserInfo::admin());
    }
    let now = chrono::Utc::now().timestamp();
    let claims = state
        .token_keys()
        .verify(token, audiences, now)
        .map_err(|e| match e {
            TokenError::NotOurs => "invalid bearer token".to_string(),
            other => format!("[invalid bearer token, {other}]"),
        })?;
    service_account_user(state, &claims)
}

fn resource(state: &AppState, plural: &str) -> Result<std::sync::Arc<ResourceInfo>, String> {
    state
        .registry
        .get("", "v1", plural)
        .ok_or_else(|| format!("{plural} are not served"))
}

/// Upstream's validator: the ServiceAccount (and a bound pod, secret or node) must still
/// exist with the uid the token names.
fn service_account_user(state: &AppState, claims: &TokenClaims) -> Result<UserInfo, String> {
    let store = &state.service.store;
    let ns = claims.namespace.as_str();
    let sa = store
        .get(
            resource(state, "serviceaccounts")?.as_ref(),
            Some(ns),
            &claims.service_account,
        )
        .map_err(|e| e.to_string())?;
    let uid = sa
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if sa.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(format!(
            "service account {ns}/{} has been deleted",
            claims.service_account
        ));
    }
    if uid != claims.service_account_uid {
        return Err(format!(
            "service account UID ({uid}) does not match claim ({})",
            claims.service_account_uid
        ));
    }
    let mut extra = BTreeMap::new();
    if !claims.id.is_empty() {
        extra.insert(
            "authentication.kubernetes.io/credential-id".to_string(),
            vec![format!("JTI={}", claims.id)],
        );
    }
    for bound in &claims.bound {
        let (plural, namespace) = match bound.kind {
            "pod" => ("pods", Some(ns)),
            "secret" => ("secrets", Some(ns)),
            _ => ("nodes", None),
        };
        let obj = store
            .get(resource(state, plural)?.as_ref(), namespace, &bound.name)
            .map_err(|_| "service account token has been invalidated".to_string())?;
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            return Err("service account token has been invalidated".to_string());
        }
        let got = obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if got != bound.uid {
            return Err(format!(
                "{} UID ({got}) does not match service account {} ref claim ({})",
                bound.kind, bound.kind, bound.uid
            ));
        }
        if bound.kind != "secret" {
            extra.insert(
                format!("authentication.kubernetes.io/{}-name", bound.kind),
                vec![bound.name.clone()],
            );
            extra.insert(
                format!("authentication.kubernetes.io/{}-uid", bound.kind),
                vec![bound.uid.clone()],
            );
        }
    }
    Ok(UserInfo {
        username: format!("system:serviceaccount:{ns}:{}", claims.service_account),
        uid: uid.to_string(),
        groups: vec![
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{ns}"),
        ],
        extra,
    }
    .with_authenticated_group())
}

/// Who a request comes from: its client certificate, else its bearer token.
pub fn authenticate(
    state: &AppState,
    peer: Option<&PeerIdentity>,
    authorization: Option<&str>,
) -> Option<UserInfo> {
    if let Some(user) = peer.and_then(from_certificate) {
        return Some(user);
    }
    let token = authorization?.strip_prefix("Bearer ")?;
    from_token(state, token).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_users_join_system_authenticated() {
        let peer = PeerIdentity {
            user: Some("jane".into()),
            groups: vec!["dev".into()],
        };
        let u = from_certificate(&peer).unwrap();
        assert_eq!(u.username, "jane");
        assert_eq!(u.groups, ["dev", "system:authenticated"]);
        assert!(from_certificate(&PeerIdentity::default()).is_none());
        assert_eq!(
            UserInfo::admin().to_json(),
            json!({"username": "beemesh-admin", "groups": ["system:masters", "system:authenticated"]})
        );
    }
}
