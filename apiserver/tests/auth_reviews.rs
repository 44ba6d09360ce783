//! Reviews and tokens over HTTP: access reviews answered (no RBAC: every authenticated
//! user is admin) and never stored, SelfSubjectReview naming the caller, TokenRequest
//! issuing ServiceAccount JWTs that authenticate as their ServiceAccount, TokenReview.

mod common;

use base64::Engine;
use common::*;
use http::StatusCode;
use serde_json::{Value, json};

const SSAR: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
const SA: &str = "/api/v1/namespaces/default/serviceaccounts";

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn access_reviews_are_answered_allowed_and_not_stored() {
    let node = Node::start().await;
    let before = node.revision();
    let r = node
        .post(SSAR)
        .json(
            &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": "create", "group": "apps",
                     "resource": "deployments", "namespace": "default"}}}),
        )
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let review = r.json();
    assert_eq!(review["kind"], "SelfSubjectAccessReview");
    assert_eq!(
        review["status"],
        json!({"allowed": true, "reason": "beemesh: no RBAC, every authenticated user is admin"})
    );
    assert_eq!(review["metadata"], json!({"creationTimestamp": null}));
    assert_eq!(
        review["spec"]["resourceAttributes"]["resource"],
        "deployments"
    );
    assert_eq!(node.revision(), before, "a review is never stored");

    let r = node.post(SSAR).json(&json!({"spec": {}})).send().await;
    r.status_error(
        422,
        "Invalid",
        "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
    );
    let r = node
        .post(SSAR)
        .json(&json!({"metadata": {"name": "x"}, "spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}}))
        .send()
        .await;
    r.status_error(422, "Invalid", "metadata: Invalid value:");

    let sar = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    let r = node
        .post(sar)
        .json(&json!({"spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}}))
        .send()
        .await;
    r.status_error(
        422,
        "Invalid",
        "spec.user: Invalid value: \"\": at least one of user or group must be specified",
    );
    let r = node
        .post(sar)
        .json(&json!({"spec": {"user": "jane", "resourceAttributes": {"verb": "get", "resource": "pods"}}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["status"]["allowed"], true);

    let local = "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews";
    let r = node
        .post(local)
        .json(&json!({"spec": {"user": "jane",
            "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "other"}}}))
        .send()
        .await;
    r.status_error(
        422,
        "Invalid",
        "spec.resourceAttributes.namespace: Invalid value: \"other\": must match metadata.namespace",
    );
    let r = node
        .post(local)
        .json(&json!({"spec": {"user": "jane",
            "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "default"}}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["metadata"]["namespace"], "default");

    let rules = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews";
    node.post(rules)
        .json(&json!({"spec": {}}))
        .send()
        .await
        .status_error(400, "BadRequest", "no namespace on request");
    let r = node
        .post(rules)
        .json(&json!({"spec": {"namespace": "default"}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let status = &r.json()["status"];
    assert_eq!(
        status["resourceRules"],
        json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}])
    );
    assert_eq!(status["incomplete"], false);
    // Reviews cannot be read back.
    node.get(SSAR)
        .send()
        .await
        .status_error(405, "MethodNotAllowed", "");
    assert_eq!(node.revision(), before);
}

#[tokio::test]
async fn self_subject_review_names_the_caller() {
    let node = Node::start().await;
    let r = node
        .post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .json(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let review = r.json();
    assert_eq!(
        review["status"]["userInfo"],
        json!({"username": "beemesh-admin", "groups": ["system:masters", "system:authenticated"]})
    );
    assert!(
        review["metadata"]["creationTimestamp"].is_string(),
        "{review}"
    );
}

#[tokio::test]
async fn token_requests_issue_service_account_tokens_that_authenticate() {
    let node = Node::start().await;
    let sa = node
        .create(SA, json!({"metadata": {"name": "robot"}}))
        .await;
    let sa_uid = sa["metadata"]["uid"].as_str().unwrap().to_string();
    let before = node.revision();
    let r = node
        .post(&format!("{SA}/robot/token"))
        .json(
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600}}),
        )
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let tr = r.json();
    assert_eq!(node.revision(), before, "a token request stores nothing");
    assert_eq!(tr["kind"], "TokenRequest");
    assert_eq!(tr["metadata"]["name"], "robot");
    assert_eq!(tr["metadata"]["namespace"], "default");
    assert_eq!(
        tr["spec"]["audiences"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );
    let token = tr["status"]["token"].as_str().unwrap().to_string();
    assert!(tr["status"]["expirationTimestamp"].is_string());
    let claims = claims_of(&token);
    assert_eq!(claims["sub"], "system:serviceaccount:default:robot");
    assert_eq!(
        claims["iss"],
        "https://kubernetes.default.svc.cluster.local"
    );
    assert_eq!(
        claims["aud"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert_eq!(claims["nbf"], claims["iat"]);
    assert!(claims["jti"].is_string());
    assert_eq!(
        claims["kubernetes.io"],
        json!({"namespace": "default", "serviceaccount": {"name": "robot", "uid": sa_uid}})
    );

    // The token authenticates as the ServiceAccount.
    let whoami = node
        .post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header("authorization", &format!("Bearer {token}"))
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(whoami.status, StatusCode::CREATED, "{}", whoami.text());
    let info = &whoami.json()["status"]["userInfo"];
    assert_eq!(info["username"], "system:serviceaccount:default:robot");
    assert_eq!(info["uid"], json!(sa_uid));
    assert_eq!(
        info["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    assert_eq!(
        info["extra"]["authentication.kubernetes.io/credential-id"],
        json!([format!("JTI={}", claims["jti"].as_str().unwrap())])
    );
    let r = node
        .get("/api/v1/namespaces/default/configmaps")
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // TokenReview says the same.
    let r = node
        .post("/apis/authentication.k8s.io/v1/tokenreviews")
        .json(&json!({"spec": {"token": token}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let status = &r.json()["status"];
    assert_eq!(status["authenticated"], true);
    assert_eq!(
        status["user"]["username"],
        "system:serviceaccount:default:robot"
    );
    let r = node
        .post("/apis/authentication.k8s.io/v1/tokenreviews")
        .json(&json!({"spec": {"token": "garbage"}}))
        .send()
        .await;
    assert_eq!(r.json()["status"], json!({"error": "invalid bearer token"}));
    node.post("/apis/authentication.k8s.io/v1/tokenreviews")
        .json(&json!({"spec": {}}))
        .send()
        .await
        .status_error(
            400,
            "BadRequest",
            "token is required for TokenReview in authentication",
        );
    // A token for another audience does not authenticate against the API.
    let r = node
        .post(&format!("{SA}/robot/token"))
        .json(&json!({"spec": {"audiences": ["vault"]}}))
        .send()
        .await;
    let vault = r.json()["status"]["token"].as_str().unwrap().to_string();
    assert_eq!(
        claims_of(&vault)["exp"].as_i64().unwrap() - claims_of(&vault)["iat"].as_i64().unwrap(),
        3600
    );
    node.get("/api/v1/namespaces")
        .header("authorization", &format!("Bearer {vault}"))
        .send()
        .await
        .status_error(401, "Unauthorized", "Unauthorized");

    // Bad requests.
    node.post(&format!("{SA}/nobody/token"))
        .json(&json!({"spec": {}}))
        .send()
        .await
        .status_error(404, "NotFound", "serviceaccounts \"nobody\" not found");
    node.post(&format!("{SA}/robot/token"))
        .json(&json!({"spec": {"expirationSeconds": 599}}))
        .send()
        .await
        .status_error(
            422,
            "Invalid",
            "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes",
        );
    node.post(&format!("{SA}/robot/token"))
        .json(&json!({"metadata": {"name": "other"}, "spec": {}}))
        .send()
        .await
        .status_error(
            422,
            "Invalid",
            "must match the service account name if specified",
        );

    // Deleting the ServiceAccount revokes its tokens.
    node.delete(&format!("{SA}/robot")).send().await;
    node.get("/api/v1/namespaces")
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .await
        .status_error(401, "Unauthorized", "Unauthorized");
    // So does a new ServiceAccount of the same name (another uid).
    node.create(SA, json!({"metadata": {"name": "robot"}}))
        .await;
    node.get("/api/v1/namespaces")
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .await
        .status_error(401, "Unauthorized", "Unauthorized");
}

#[tokio::test]
async fn pod_bound_tokens_name_the_pod() {
    let node = Node::start().await;
    node.create(SA, json!({"metadata": {"name": "default"}}))
        .await;
    let pod = node
        .create("/api/v1/namespaces/default/pods", pod("p", None))
        .await;
    let r = node
        .post(&format!("{SA}/default/token"))
        .json(
            &json!({"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p"}}}),
        )
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let token = r.json()["status"]["token"].as_str().unwrap().to_string();
    assert_eq!(
        claims_of(&token)["kubernetes.io"]["pod"],
        json!({"name": "p", "uid": pod["metadata"]["uid"]})
    );
    let r = node
        .post("/apis/authentication.k8s.io/v1/tokenreviews")
        .json(&json!({"spec": {"token": token}}))
        .send()
        .await;
    assert_eq!(
        r.json()["status"]["user"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["p"])
    );
    node.post(&format!("{SA}/default/token"))
        .json(&json!({"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "wrong"}}}))
        .send()
        .await
        .status_error(409, "Conflict", "the UID in the bound object reference (wrong) does not match");
    node.post(&format!("{SA}/default/token"))
        .json(&json!({"spec": {"boundObjectRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "p"}}}))
        .send()
        .await
        .status_error(400, "BadRequest", "cannot bind token to object of type apps/v1, Kind=Deployment");
    // Deleting the pod invalidates the token.
    node.delete("/api/v1/namespaces/default/pods/p")
        .send()
        .await;
    node.get("/api/v1/namespaces")
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .await
        .status_error(401, "Unauthorized", "Unauthorized");
}
