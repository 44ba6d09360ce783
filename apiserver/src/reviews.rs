//! The create-only kinds that are answered, never stored: access reviews
//! (SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview,
//! SelfSubjectRulesReview), SelfSubjectReview, TokenReview, and the ServiceAccount
//! `token` subresource (TokenRequest).
//!
//! BeeMesh has no RBAC yet and every authenticated user is admin, so every access review
//! answers `allowed: true` (reason `auth::NO_RBAC_REASON`) and a rules review lists
//! `*` on everything. Bodies are validated as upstream's registries validate them.

use serde_json::{Value, json};

use beemesh_translator::validation::field;
use beemesh_translator::{ApiError, Cause, ResourceInfo};

use crate::auth::{self, UserInfo};
use crate::sa_token::{self, BoundRef};
use crate::state::AppState;

type Result<T> = std::result::Result<T, ApiError>;

/// Whether `res` is one of the review kinds this module answers.
pub fn is_review(res: &ResourceInfo) -> bool {
    matches!(
        (res.group.as_str(), res.plural.as_str()),
        (
            "authorization.k8s.io",
            "selfsubjectaccessreviews"
                | "subjectaccessreviews"
                | "localsubjectaccessreviews"
                | "selfsubjectrulesreviews"
        ) | (
            "authentication.k8s.io",
            "selfsubjectreviews" | "tokenreviews"
        )
    )
}

/// The TokenRequest a `serviceaccounts/token` POST speaks, as a resource to decode and
/// validate bodies against.
pub fn token_request_resource(parent: &ResourceInfo) -> ResourceInfo {
    ResourceInfo {
        group: "authentication.k8s.io".into(),
        version: "v1".into(),
        kind: "TokenRequest".into(),
        plural: parent.plural.clone(),
        singular: "token".into(),
        namespaced: true,
        verbs: Vec::new(),
        short_names: Vec::new(),
        categories: Vec::new(),
        subresources: Vec::new(),
        list_kind: String::new(),
        definition: "io.k8s.api.authentication.v1.TokenRequest".into(),
        custom: None,
    }
}

fn now_rfc3339() -> String {
    beemesh_translator::service::now_rfc3339()
}

/// `metadata` with what upstream's generic create handler does to it: the request's
/// namespace filled in (namespaced kinds) or cleared (cluster-scoped ones); a namespace
/// that differs from the URL's is a 400.
fn settle_namespace(res: &ResourceInfo, namespace: Option<&str>, obj: &mut Value) -> Result<()> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    let meta = &mut obj["metadata"];
    let body_ns = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match (res.namespaced, namespace) {
        (true, Some(ns)) if body_ns.is_empty() => meta["namespace"] = json!(ns),
        (true, Some(ns)) if body_ns != ns => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        (false, _) => {
            if let Some(m) = meta.as_object_mut() {
                m.remove("namespace");
            }
        }
        _ => {}
    }
    Ok(())
}

/// Go writes a zero `creationTimestamp` as `null` (Kubernetes 1.33).
fn with_creation_timestamp(mut obj: Value, timestamp: Value) -> Value {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.entry("creationTimestamp").or_insert(timestamp);
    }
    obj
}

/// Answers a review POST: `obj` is the decoded body (type-checked and pruned).
pub fn review(
    state: &AppState,
    res: &ResourceInfo,
    namespace: Option<&str>,
    user: &UserInfo,
    mut obj: Value,
) -> Result<Value> {
    settle_namespace(res, namespace, &mut obj)?;
    let answer = match res.plural.as_str() {
        "selfsubjectaccessreviews" => {
            let mut causes = spec_attribute_causes(&obj);
            causes.extend(metadata_must_be_empty(&obj, false));
            invalid_unless_empty(res, causes)?;
            allowed(obj)
        }
        "subjectaccessreviews" => {
            let mut causes = spec_attribute_causes(&obj);
            causes.extend(subject_causes(&obj));
            causes.extend(metadata_must_be_empty(&obj, false));
            invalid_unless_empty(res, causes)?;
            allowed(obj)
        }
        "localsubjectaccessreviews" => {
            let mut causes = spec_attribute_causes(&obj);
            causes.extend(subject_causes(&obj));
            causes.extend(metadata_must_be_empty(&obj, true));
            let ns = obj
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if let Some(attrs) = obj.pointer("/spec/resourceAttributes") {
                let attr_ns = attrs
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if attr_ns != ns {
                    causes.push(field::invalid_str(
                        "spec.resourceAttributes.namespace",
                        attr_ns,
                        "must match metadata.namespace",
                    ));
                }
            }
            if let Some(non) = obj.pointer("/spec/nonResourceAttributes") {
                causes.push(field::invalid(
                    "spec.nonResourceAttributes",
                    non,
                    "disallowed on this kind of request",
                ));
            }
            invalid_unless_empty(res, causes)?;
            allowed(obj)
        }
        "selfsubjectrulesreviews" => {
            let ns = obj
                .pointer("/spec/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if ns.is_empty() {
                return Err(ApiError::bad_request("no namespace on request"));
            }
            json!({
                "kind": res.kind,
                "apiVersion": res.api_version(),
                "metadata": {},
                "spec": {},
                "status": {
                    "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                    "incomplete": false,
                },
            })
        }
        "selfsubjectreviews" => {
            return Ok(json!({
                "kind": res.kind,
                "apiVersion": res.api_version(),
                "metadata": {"creationTimestamp": now_rfc3339()},
                "status": {"userInfo": user.to_json()},
            }));
        }
        "tokenreviews" => token_review(state, obj)?,
        other => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource (post {other})"
            )));
        }
    };
    Ok(with_creation_timestamp(answer, Value::Null))
}

fn allowed(mut obj: Value) -> Value {
    obj["status"] = json!({"allowed": true, "reason": auth::NO_RBAC_REASON});
    obj
}

fn invalid_unless_empty(res: &ResourceInfo, causes: Vec<Cause>) -> Result<()> {
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&res.group, &res.kind, "", causes))
    }
}

/// `ValidateSelfSubjectAccessReviewSpec`: exactly one of resourceAttributes and
/// nonResourceAttributes.
fn spec_attribute_causes(obj: &Value) -> Vec<Cause> {
    let resource = obj.pointer("/spec/resourceAttributes");
    let non_resource = obj.pointer("/spec/nonResourceAttributes");
    match (resource, non_resource) {
        (Some(_), Some(non)) => vec![field::invalid(
            "spec.nonResourceAttributes",
            non,
            "cannot be specified in combination with resourceAttributes",
        )],
        // Go prints the nil pointer it was given as "null".
        (None, None) => vec![field::invalid_str(
            "spec.resourceAttributes",
            "null",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )],
        _ => Vec::new(),
    }
}

/// `ValidateSubjectAccessReviewSpec`: a user or a group to check.
fn subject_causes(obj: &Value) -> Vec<Cause> {
    let user = obj
        .pointer("/spec/user")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let groups = obj
        .pointer("/spec/groups")
        .and_then(Value::as_array)
        .is_some_and(|g| !g.is_empty());
    if user.is_empty() && !groups {
        vec![field::invalid_str(
            "spec.user",
            user,
            "at least one of user or group must be specified",
        )]
    } else {
        Vec::new()
    }
}

/// Reviews carry no metadata (a local review only its namespace).
fn metadata_must_be_empty(obj: &Value, keep_namespace: bool) -> Vec<Cause> {
    let mut meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.remove("managedFields");
        m.remove("creationTimestamp");
        if keep_namespace {
            m.remove("namespace");
        }
        if m.is_empty() {
            return Vec::new();
        }
    }
    let detail = if keep_namespace {
        "must be empty except for namespace"
    } else {
        "must be empty"
    };
    vec![field::invalid("metadata", &meta, detail)]
}

/// TokenReview: whether the token authenticates, and as whom, for its audiences (the
/// API's when none are asked).
fn token_review(state: &AppState, mut obj: Value) -> Result<Value> {
    let token = obj
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if token.is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let requested: Vec<String> = obj
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let audiences = if requested.is_empty() {
        auth::api_audiences()
    } else {
        requested
    };
    obj["status"] = match auth::from_token_for(state, &token, &audiences) {
        Ok(user) => json!({
            "authenticated": true,
            "user": user.to_json(),
            "audiences": audiences,
        }),
        Err(e) => json!({"error": e}),
    };
    Ok(obj)
}

/// `TokenRequest.spec.expirationSeconds` bounds (`ValidateTokenRequest`).
const MIN_EXPIRATION_SECONDS: i64 = 10 * 60;
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// The v1 default of `expirationSeconds`.
const DEFAULT_EXPIRATION_SECONDS: i64 = 60 * 60;

/// `POST .../serviceaccounts/<name>/token`: a signed token for the ServiceAccount.
pub fn token_request(
    state: &AppState,
    res: &ResourceInfo,
    namespace: &str,
    name: &str,
    mut req: Value,
) -> Result<Value> {
    let invalid = |field_path: &str, value: &str, detail: &str| {
        ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            name,
            vec![field::invalid_str(field_path, value, detail)],
        )
    };
    let meta = |req: &Value, f: &str| {
        req.pointer(&format!("/metadata/{f}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let body_name = meta(&req, "name");
    if !body_name.is_empty() && body_name != name {
        return Err(invalid(
            "metadata.name",
            &body_name,
            "must match the service account name if specified",
        ));
    }
    let body_ns = meta(&req, "namespace");
    if !body_ns.is_empty() && body_ns != namespace {
        return Err(invalid(
            "metadata.namespace",
            &body_ns,
            "must match the service account namespace if specified",
        ));
    }
    let store = &state.service.store;
    let sa = store.get(res, Some(namespace), name)?;
    let sa_uid = sa
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();

    if !req.get("spec").is_some_and(Value::is_object) {
        req["spec"] = json!({});
    }
    let spec = &mut req["spec"];
    if spec
        .get("audiences")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        spec["audiences"] = json!(auth::api_audiences());
    }
    if spec.get("expirationSeconds").is_none_or(Value::is_null) {
        spec["expirationSeconds"] = json!(DEFAULT_EXPIRATION_SECONDS);
    }
    let audiences: Vec<String> = spec["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let expiration = spec["expirationSeconds"].as_i64().unwrap_or(0);
    let now = chrono::Utc::now();
    req["metadata"]["name"] = json!(name);
    req["metadata"]["namespace"] = json!(namespace);
    req["metadata"]["creationTimestamp"] =
        json!(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let mut causes = Vec::new();
    if expiration < MIN_EXPIRATION_SECONDS {
        causes.push(field::invalid(
            "spec.expirationSeconds",
            &json!(expiration),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        causes.push(field::invalid(
            "spec.expirationSeconds",
            &json!(expiration),
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            "",
            causes,
        ));
    }
    let bound = match req.pointer("/spec/boundObjectRef").cloned() {
        Some(r) if r.is_object() => bound_refs(state, namespace, name, &r)?,
        _ => Vec::new(),
    };
    let keys = state.token_keys();
    let claims = sa_token::claims(
        namespace,
        name,
        &sa_uid,
        &audiences,
        now.timestamp(),
        expiration,
        &bound,
    );
    let token = keys
        .sign(&claims)
        .map_err(|e| ApiError::internal(format!("failed to generate token: {e}")))?;
    let expires = now + chrono::Duration::seconds(expiration);
    req["status"] = json!({
        "token": token,
        "expirationTimestamp": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    Ok(req)
}

/// The objects a token is bound to: the referenced Pod (and its Node), Secret or Node,
/// which must exist with the uid the reference names.
fn bound_refs(
    state: &AppState,
    namespace: &str,
    sa_name: &str,
    r: &Value,
) -> Result<Vec<BoundRef>> {
    let text = |k: &str| {
        r.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (api_version, kind, name, uid) =
        (text("apiVersion"), text("kind"), text("name"), text("uid"));
    let (plural, ns, claim) = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Pod") => ("pods", Some(namespace), "pod"),
        ("v1", "Secret") => ("secrets", Some(namespace), "secret"),
        ("v1", "Node") => ("nodes", None, "node"),
        _ => {
            let gvk = match api_version.split_once('/') {
                Some((g, v)) => format!("{g}/{v}, Kind={kind}"),
                None => format!("/{api_version}, Kind={kind}"),
            };
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {gvk}"
            )));
        }
    };
    let info = state
        .registry
        .get("", "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} are not served")))?;
    let obj = state.service.store.get(&info, ns, &name)?;
    let got_uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !uid.is_empty() && uid != got_uid {
        return Err(ApiError::conflict(
            "",
            &kind,
            &name,
            &format!(
                "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        ));
    }
    let mut refs = vec![BoundRef {
        kind: claim,
        name: name.clone(),
        uid: got_uid,
    }];
    if claim == "pod" {
        let pod_sa = obj
            .pointer("/spec/serviceAccountName")
            .and_then(Value::as_str)
            .unwrap_or("default");
        if pod_sa != sa_name {
            return Err(ApiError::bad_request(format!(
                "cannot bind token for serviceaccount {sa_name:?} to pod running with different serviceaccount name."
            )));
        }
        // A pod-bound token also names the pod's node.
        if let Some(node_name) = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            && let Some(nodes) = state.registry.get("", "v1", "nodes")
            && let Ok(node) = state.service.store.get(&nodes, None, node_name)
        {
            refs.push(BoundRef {
                kind: "node",
                name: node_name.to_string(),
                uid: node
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            });
        }
    }
    Ok(refs)
}
