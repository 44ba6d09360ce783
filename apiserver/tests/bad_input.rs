//! Bad input over HTTP: every malformed or contradictory request gets the right 4xx
//! `Status` with a message a user can act on — never a 5xx, never a panic — and nothing
//! already stored changes (the objects and the replica revision are compared after each).

mod common;

use common::*;
use http::{Method, StatusCode};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const CM_COLLECTION: &str = "/api/v1/namespaces/default/configmaps";
const CM: &str = "/api/v1/namespaces/default/configmaps/cm";
const DEPLOY_COLLECTION: &str = "/apis/apps/v1/namespaces/default/deployments";
const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments/web";

/// A node holding a ConfigMap `cm` and a Deployment `web`, and what they look like.
struct Fixture {
    node: Node,
    revision: u64,
    cm: Value,
    deploy: Value,
}

impl Fixture {
    async fn new() -> Fixture {
        let node = Node::start().await;
        let cm = node
            .create(CM_COLLECTION, configmap("cm", json!({"app": "x"})))
            .await;
        let deploy = node.create(DEPLOY_COLLECTION, deployment("web", 2)).await;
        let revision = node.revision();
        Fixture {
            node,
            revision,
            cm,
            deploy,
        }
    }

    /// Nothing was written: same revision, same objects.
    async fn assert_unchanged(&self, what: &str) {
        assert_eq!(
            self.node.revision(),
            self.revision,
            "{what}: the revision moved"
        );
        let cm = self.node.get(CM).send().await.json();
        assert_eq!(cm, self.cm, "{what}: the ConfigMap changed");
        let deploy = self.node.get(DEPLOY).send().await.json();
        assert_eq!(deploy, self.deploy, "{what}: the Deployment changed");
    }

    /// Sends, checks the Status, and checks nothing changed.
    async fn rejects(
        &self,
        what: &str,
        req: Req<'_>,
        code: u16,
        reason: &str,
        message: &str,
    ) -> Value {
        let r = req.send().await;
        assert_eq!(r.status.as_u16(), code, "{what}: {}", r.text());
        let s = r.status_error(code, reason, message);
        self.assert_unchanged(what).await;
        s
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

// ---------------------------------------------------------------- bodies

#[tokio::test]
async fn malformed_json_and_yaml_bodies_are_400() {
    let f = Fixture::new().await;
    let n = &f.node;
    for (what, body) in [
        (
            "truncated",
            &b"{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\""[..],
        ),
        ("trailing comma", b"{\"metadata\": {\"name\": \"x\",}}"),
        ("not JSON", b"hello"),
        ("empty", b""),
        ("invalid UTF-8", b"{\"metadata\": {\"name\": \"\xff\xfe\"}}"),
    ] {
        let s = f
            .rejects(
                what,
                n.post(CM_COLLECTION)
                    .body("application/json", body.to_vec()),
                400,
                "BadRequest",
                "",
            )
            .await;
        let msg = s["message"].as_str().unwrap();
        assert!(
            msg.contains("JSON") || msg.contains("json"),
            "{what}: {msg}"
        );
        f.rejects(
            what,
            n.put(CM).body("application/json", body.to_vec()),
            400,
            "BadRequest",
            "",
        )
        .await;
    }
    // The position of a syntax error is in the message.
    f.rejects(
        "position",
        n.post(CM_COLLECTION).body(
            "application/json",
            &b"{\n  \"metadata\": {\n    \"name\": x\n  }\n}"[..],
        ),
        400,
        "BadRequest",
        "line 3 column",
    )
    .await;
    // Deep nesting is refused, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    f.rejects(
        "deep nesting",
        n.post(CM_COLLECTION).body("application/json", deep),
        400,
        "BadRequest",
        "",
    )
    .await;

    for (what, body) in [
        (
            "bad indentation",
            &b"metadata:\n  name: x\n   labels: {}\n"[..],
        ),
        ("unclosed flow", b"metadata: {name: x\n"),
        ("tab indentation", b"metadata:\n\tname: x\n"),
        (
            "two documents",
            b"metadata: {name: a}\n---\nmetadata: {name: b}\n",
        ),
    ] {
        f.rejects(
            what,
            n.post(CM_COLLECTION)
                .body("application/yaml", body.to_vec()),
            400,
            "BadRequest",
            "YAML",
        )
        .await;
    }
}

#[tokio::test]
async fn bodies_that_are_not_objects_are_400() {
    let f = Fixture::new().await;
    let n = &f.node;
    for body in ["[]", "[1,2]", "\"configmap\"", "42", "null", "true"] {
        f.rejects(
            body,
            n.post(CM_COLLECTION).body("application/json", body),
            400,
            "BadRequest",
            "",
        )
        .await;
        f.rejects(
            body,
            n.put(CM).body("application/json", body),
            400,
            "BadRequest",
            "",
        )
        .await;
        f.rejects(
            body,
            n.post(CM_COLLECTION).body("application/yaml", body),
            400,
            "BadRequest",
            "",
        )
        .await;
    }
    // metadata that is not an object.
    for meta in [json!("cm"), json!([]), json!(1)] {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta});
        let r = n.post(CM_COLLECTION).json(&body).send().await;
        assert_eq!(r.status.as_u16(), 400, "metadata {meta}: {}", r.text());
        r.status_error(400, "BadRequest", "");
    }
    f.assert_unchanged("metadata").await;
}

#[tokio::test]
async fn malformed_protobuf_is_400() {
    let f = Fixture::new().await;
    let n = &f.node;
    const PB: &str = "application/vnd.kubernetes.protobuf";
    f.rejects(
        "no magic",
        n.post(CM_COLLECTION).body(PB, &b"\x0a\x02v1garbage"[..]),
        400,
        "BadRequest",
        "k8s",
    )
    .await;
    f.rejects(
        "magic only",
        n.post(CM_COLLECTION).body(PB, &b"k8s\0"[..]),
        400,
        "BadRequest",
        "",
    )
    .await;
    f.rejects(
        "truncated length",
        n.post(CM_COLLECTION)
            .body(PB, &b"k8s\0\x0a\xff\xff\xff\xff\x0f"[..]),
        400,
        "BadRequest",
        "",
    )
    .await;
    // A well-formed envelope for the wrong kind.
    let mut envelope = b"k8s\0".to_vec();
    let type_meta = [&b"\x0a\x02v1\x12\x06Secret"[..]].concat();
    envelope.push(0x0a);
    envelope.push(type_meta.len() as u8);
    envelope.extend_from_slice(&type_meta);
    envelope.extend_from_slice(b"\x12\x00");
    f.rejects(
        "wrong kind",
        n.post(CM_COLLECTION).body(PB, envelope),
        400,
        "BadRequest",
        "Secret",
    )
    .await;

    // Random bytes, with and without the magic: always a 4xx.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for i in 0..300 {
        let len = rng.random_range(0..200);
        let mut body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if i % 2 == 0 {
            body.splice(0..0, b"k8s\0".iter().copied());
        }
        let r = n.post(CM_COLLECTION).body(PB, body.clone()).send().await;
        assert!(
            r.status.is_client_error(),
            "random protobuf {body:?}: {} {}",
            r.status,
            r.text()
        );
        if r.status != StatusCode::CREATED {
            r.status_error(r.status.as_u16(), r.json()["reason"].as_str().unwrap(), "");
        }
    }
    f.assert_unchanged("random protobuf").await;
}

#[tokio::test]
async fn wrong_kind_or_api_version_in_the_body_is_400() {
    let f = Fixture::new().await;
    let n = &f.node;
    let mut secret = configmap("new", json!({}));
    secret["kind"] = json!("Secret");
    f.rejects(
        "kind on create",
        n.post(CM_COLLECTION).json(&secret),
        400,
        "BadRequest",
        "the kind in the data (Secret) does not match the expected kind (ConfigMap)",
    )
    .await;
    let mut v2 = configmap("new", json!({}));
    v2["apiVersion"] = json!("v2");
    f.rejects(
        "apiVersion on create",
        n.post(CM_COLLECTION).json(&v2),
        400,
        "BadRequest",
        "the API version in the data (v2) does not match the expected API version (v1)",
    )
    .await;
    let mut put = f.cm.clone();
    put["kind"] = json!("Secret");
    f.rejects(
        "kind on update",
        n.put(CM).json(&put),
        400,
        "BadRequest",
        "Secret",
    )
    .await;
    let mut put = f.deploy.clone();
    put["apiVersion"] = json!("extensions/v1beta1");
    f.rejects(
        "apiVersion on update",
        n.put(DEPLOY).json(&put),
        400,
        "BadRequest",
        "the API version in the data (extensions/v1beta1) does not match the expected API version (apps/v1)",
    )
    .await;
    // Non-string kind: a type error.
    let mut odd = configmap("new", json!({}));
    odd["kind"] = json!(7);
    f.rejects(
        "numeric kind",
        n.post(CM_COLLECTION).json(&odd),
        400,
        "BadRequest",
        "",
    )
    .await;
}

#[tokio::test]
async fn names_breaking_dns_1123_are_422_naming_the_field() {
    let f = Fixture::new().await;
    let n = &f.node;
    for bad in [
        "Bad_Name",
        "UPPER",
        "-lead",
        "trail-",
        "dots..twice",
        "sp ace",
        "ümlaut",
    ] {
        let s = f
            .rejects(
                bad,
                n.post(CM_COLLECTION).json(&configmap(bad, json!({}))),
                422,
                "Invalid",
                &format!("ConfigMap \"{bad}\" is invalid: metadata.name: Invalid value: \"{bad}\": a lowercase RFC 1123 subdomain must consist of"),
            )
            .await;
        assert_eq!(s["details"]["kind"], "ConfigMap");
        assert_eq!(s["details"]["name"], bad);
        assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueInvalid");
    }
    let long = "a".repeat(254);
    f.rejects(
        "254 characters",
        n.post(CM_COLLECTION).json(&configmap(&long, json!({}))),
        422,
        "Invalid",
        "must be no more than 253 characters",
    )
    .await;
    // Services need a DNS-1035 label: no dots, start with a letter, at most 63.
    let svc = |name: &str| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}});
    for bad in ["a.b", "1abc", &"a".repeat(64)] {
        f.rejects(
            bad,
            n.post("/api/v1/namespaces/default/services")
                .json(&svc(bad)),
            422,
            "Invalid",
            "metadata.name: Invalid value",
        )
        .await;
    }
    // A bad generateName prefix.
    f.rejects(
        "generateName",
        n.post(CM_COLLECTION).json(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "Bad_"}}),
        ),
        422,
        "Invalid",
        "metadata.generateName",
    )
    .await;
    // Names in the URL that cannot be names.
    f.rejects(
        "slash in the URL name",
        n.get("/api/v1/namespaces/default/configmaps/a%2Fb"),
        400,
        "BadRequest",
        "Name parameter invalid: \"a/b\": may not contain '/'",
    )
    .await;
    f.rejects(
        "percent in the URL name",
        n.delete("/api/v1/namespaces/default/configmaps/a%25b"),
        400,
        "BadRequest",
        "may not contain '%'",
    )
    .await;
    f.rejects(
        "dot-dot",
        n.get("/api/v1/namespaces/default/configmaps/.."),
        400,
        "BadRequest",
        "..",
    )
    .await;
    // Labels and annotations are validated too.
    f.rejects(
        "label value",
        n.post(CM_COLLECTION)
            .json(&configmap("ok", json!({"app": "not valid!"}))),
        422,
        "Invalid",
        "metadata.labels: Invalid value: \"not valid!\"",
    )
    .await;
}

#[tokio::test]
async fn names_and_namespaces_in_the_body_must_match_the_url() {
    let f = Fixture::new().await;
    let n = &f.node;
    let mut other = f.cm.clone();
    other["metadata"]["name"] = json!("other");
    f.rejects(
        "name on PUT",
        n.put(CM).json(&other),
        400,
        "BadRequest",
        "the name of the object (other) does not match the name on the URL (cm)",
    )
    .await;
    let mut other_ns = f.cm.clone();
    other_ns["metadata"]["namespace"] = json!("kube-system");
    f.rejects(
        "namespace on PUT",
        n.put(CM).json(&other_ns),
        400,
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the request",
    )
    .await;
    let mut create_ns = configmap("new", json!({}));
    create_ns["metadata"]["namespace"] = json!("kube-system");
    f.rejects(
        "namespace on POST",
        n.post(CM_COLLECTION).json(&create_ns),
        400,
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the request",
    )
    .await;
    // A uid that is not the stored object's: a failed precondition.
    let mut wrong_uid = f.cm.clone();
    wrong_uid["metadata"]["uid"] = json!("6f3e0c2a-0000-0000-0000-000000000000");
    wrong_uid["data"] = json!({"k": "changed"});
    f.rejects(
        "uid on PUT",
        n.put(CM).json(&wrong_uid),
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on configmaps \"cm\": Precondition failed: UID in precondition: 6f3e0c2a-0000-0000-0000-000000000000, UID in object meta: {}",
            f.cm["metadata"]["uid"].as_str().unwrap()
        ),
    )
    .await;
}

#[tokio::test]
async fn unknown_fields_under_strict_and_wrong_types_are_400() {
    let f = Fixture::new().await;
    let n = &f.node;
    let mut unknown = f.deploy.clone();
    unknown["spec"]["replica"] = json!(3);
    unknown["spec"]["replicas"] = json!(5);
    f.rejects(
        "unknown field on PUT",
        n.put(&format!("{DEPLOY}?fieldValidation=Strict")).json(&unknown),
        400,
        "BadRequest",
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replica\"",
    )
    .await;
    // Duplicate keys are strict errors too.
    let dup = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","name":"dup2"}}"#;
    f.rejects(
        "duplicate key",
        n.post(&format!("{CM_COLLECTION}?fieldValidation=Strict"))
            .body("application/json", &dup[..]),
        400,
        "BadRequest",
        "duplicate field \"metadata.name\"",
    )
    .await;
    // Wrong types, worded like the Go decoder.
    let mut replicas = f.deploy.clone();
    replicas["spec"]["replicas"] = json!("3");
    f.rejects(
        "string replicas",
        n.put(DEPLOY).json(&replicas),
        400,
        "BadRequest",
        "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
    )
    .await;
    let mut data = configmap("new", json!({}));
    data["data"] = json!({"k": 1});
    f.rejects(
        "number in data",
        n.post(CM_COLLECTION).json(&data),
        400,
        "BadRequest",
        "cannot unmarshal number",
    )
    .await;
    let mut labels = configmap("new", json!({}));
    labels["metadata"]["labels"] = json!(["a"]);
    f.rejects(
        "array labels",
        n.post(CM_COLLECTION).json(&labels),
        400,
        "BadRequest",
        "cannot unmarshal array",
    )
    .await;
    let mut containers = f.deploy.clone();
    containers["spec"]["template"]["spec"]["containers"] = json!({"name": "web"});
    f.rejects(
        "object for a list",
        n.put(DEPLOY).json(&containers),
        400,
        "BadRequest",
        "cannot unmarshal object",
    )
    .await;
    // The same through a patch.
    f.rejects(
        "string replicas by patch",
        n.patch(DEPLOY)
            .merge(&json!({"spec": {"replicas": "three"}})),
        400,
        "BadRequest",
        "cannot unmarshal string",
    )
    .await;
    // A semantic error: 422 with the field.
    let s = f
        .rejects(
            "negative replicas",
            n.patch(DEPLOY).merge(&json!({"spec": {"replicas": -3}})),
            422,
            "Invalid",
            "spec.replicas",
        )
        .await;
    assert_eq!(s["details"]["causes"][0]["field"], "spec.replicas");
}

#[tokio::test]
async fn oversize_bodies_are_413_and_unknown_content_types_415() {
    let f = Fixture::new().await;
    let n = &f.node;
    let mut huge = configmap("huge", json!({}));
    huge["data"] = json!({"k": "x".repeat(3 * 1024 * 1024)});
    let body = bytes(&huge);
    f.rejects(
        "POST",
        n.post(CM_COLLECTION).body("application/json", body.clone()),
        413,
        "RequestEntityTooLarge",
        "Request entity too large: limit is 3145728",
    )
    .await;
    f.rejects(
        "PUT",
        n.put(CM).body("application/json", body.clone()),
        413,
        "RequestEntityTooLarge",
        "limit",
    )
    .await;
    f.rejects(
        "PATCH",
        n.patch(CM).body("application/merge-patch+json", body),
        413,
        "RequestEntityTooLarge",
        "limit",
    )
    .await;

    for ct in [
        "text/plain",
        "application/xml",
        "application/cbor",
        "multipart/form-data",
    ] {
        f.rejects(
            ct,
            n.post(CM_COLLECTION).body(ct, bytes(&configmap("new", json!({})))),
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        )
        .await;
        f.rejects(
            ct,
            n.put(CM).body(ct, bytes(&f.cm)),
            415,
            "UnsupportedMediaType",
            "unknown format",
        )
        .await;
    }
    // A PATCH needs a patch type.
    for ct in ["application/json", "application/yaml", "text/plain"] {
        f.rejects(
            ct,
            n.patch(CM).body(ct, &b"{\"data\":{\"k\":\"v2\"}}"[..]),
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json",
        )
        .await;
    }
    f.rejects(
        "no content type",
        n.patch(CM).body("", &b"{\"data\":{\"k\":\"v2\"}}"[..]),
        415,
        "UnsupportedMediaType",
        "unknown format",
    )
    .await;
}

// ---------------------------------------------------------------- query parameters

#[tokio::test]
async fn bogus_selectors_are_400() {
    let f = Fixture::new().await;
    let n = &f.node;
    for (sel, msg) in [
        ("app===x", ""),
        ("app in (a", ""),
        ("!", ""),
        ("-lead!=x", "-lead"),
        ("a/b/c=x", "a/b/c"),
        ("a=b=c", ""),
    ] {
        let q: String = form_urlencoded::byte_serialize(sel.as_bytes()).collect();
        for path in [
            format!("{CM_COLLECTION}?labelSelector={q}"),
            format!("{CM_COLLECTION}?watch=true&labelSelector={q}"),
        ] {
            f.rejects(sel, n.get(&path), 400, "BadRequest", msg).await;
        }
        f.rejects(
            sel,
            n.delete(&format!("{CM_COLLECTION}?labelSelector={q}")),
            400,
            "BadRequest",
            "",
        )
        .await;
    }
    for (sel, msg) in [
        ("metadata.name", "invalid selector"),
        (
            "spec.replicas=1",
            "\"spec.replicas\" is not a known field selector",
        ),
        ("metadata.name<a", "invalid selector"),
    ] {
        let q: String = form_urlencoded::byte_serialize(sel.as_bytes()).collect();
        f.rejects(
            sel,
            n.get(&format!("{DEPLOY_COLLECTION}?fieldSelector={q}")),
            400,
            "BadRequest",
            msg,
        )
        .await;
        f.rejects(
            sel,
            n.delete(&format!("{DEPLOY_COLLECTION}?fieldSelector={q}")),
            400,
            "BadRequest",
            "",
        )
        .await;
    }
}

#[tokio::test]
async fn bogus_resource_versions_and_matches() {
    let f = Fixture::new().await;
    let n = &f.node;
    for rv in ["abc", "-1", "1.5", "0x10", "99999999999999999999999"] {
        let q: String = form_urlencoded::byte_serialize(rv.as_bytes()).collect();
        f.rejects(
            rv,
            n.get(&format!("{CM_COLLECTION}?resourceVersion={q}")),
            400,
            "BadRequest",
            "invalid resource version",
        )
        .await;
        f.rejects(
            rv,
            n.get(&format!("{CM_COLLECTION}?watch=true&resourceVersion={q}")),
            400,
            "BadRequest",
            "invalid resource version",
        )
        .await;
        f.rejects(
            rv,
            n.get(&format!("{CM}?resourceVersion={q}")),
            400,
            "BadRequest",
            "invalid resource version",
        )
        .await;
        // In a body: 422 on metadata.resourceVersion.
        let mut body = f.cm.clone();
        body["metadata"]["resourceVersion"] = json!(rv);
        let s = f
            .rejects(
                rv,
                n.put(CM).json(&body),
                422,
                "Invalid",
                "metadata.resourceVersion",
            )
            .await;
        assert_eq!(
            s["details"]["causes"][0]["field"],
            "metadata.resourceVersion"
        );
    }
    // ListOptions validation: 422 on ListOptions.meta.k8s.io, upstream's wording.
    let s = f
        .rejects(
            "bogus match",
            n.get(&format!("{CM_COLLECTION}?resourceVersion=1&resourceVersionMatch=Bogus")),
            422,
            "Invalid",
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"Bogus\": supported values: \"Exact\", \"NotOlderThan\", \"\"",
        )
        .await;
    assert_eq!(s["details"]["group"], "meta.k8s.io");
    assert_eq!(s["details"]["kind"], "ListOptions");
    assert_eq!(s["details"]["causes"][0]["field"], "resourceVersionMatch");
    assert_eq!(
        s["details"]["causes"][0]["reason"],
        "FieldValueNotSupported"
    );
    f.rejects(
        "match without rv",
        n.get(&format!("{CM_COLLECTION}?resourceVersionMatch=NotOlderThan")),
        422,
        "Invalid",
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
    )
    .await;
    f.rejects(
        "exact at 0",
        n.get(&format!("{CM_COLLECTION}?resourceVersion=0&resourceVersionMatch=Exact")),
        422,
        "Invalid",
        "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
    )
    .await;
    f.rejects(
        "sendInitialEvents on a list",
        n.get(&format!("{CM_COLLECTION}?sendInitialEvents=true")),
        422,
        "Invalid",
        "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
    )
    .await;
    f.rejects(
        "match on a plain watch",
        n.get(&format!("{CM_COLLECTION}?watch=true&resourceVersion=1&resourceVersionMatch=NotOlderThan")),
        422,
        "Invalid",
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
    )
    .await;
    // Booleans read as upstream's Convert_Slice_string_To_bool: anything but 0/false is
    // true, so this is a valid WatchList request.
    let mut w = n
        .get(&format!(
            "{CM_COLLECTION}?watch=yes&allowWatchBookmarks=1&sendInitialEvents=maybe&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"
        ))
        .stream()
        .await;
    assert_eq!(w.status, StatusCode::OK);
    assert_eq!(w.next().await["type"], "ADDED");
    assert_eq!(w.next().await["type"], "BOOKMARK");
    f.assert_unchanged("lenient booleans").await;
}

#[tokio::test]
async fn bogus_continue_limit_and_timeout_are_400() {
    let f = Fixture::new().await;
    let n = &f.node;
    for token in ["x", "%%%", "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ", "AAAA"] {
        f.rejects(
            token,
            n.get(&format!("{CM_COLLECTION}?limit=1&continue={token}")),
            400,
            "BadRequest",
            "invalid continue token",
        )
        .await;
    }
    for limit in ["abc", "1.5", "1e3", "99999999999999999999999"] {
        f.rejects(
            limit,
            n.get(&format!("{CM_COLLECTION}?limit={limit}")),
            400,
            "BadRequest",
            "limit",
        )
        .await;
    }
    // A negative limit means no limit, as upstream.
    let r = n.get(&format!("{CM_COLLECTION}?limit=-1")).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(names(&r.json()), ["cm"]);
    for t in ["abc", "1.5", "ten", "99999999999999999999"] {
        f.rejects(
            t,
            n.get(&format!("{CM_COLLECTION}?watch=true&timeoutSeconds={t}")),
            400,
            "BadRequest",
            "timeoutSeconds",
        )
        .await;
    }
    // A negative timeout (an int64 upstream) ends the watch at once.
    let mut w = n
        .get(&format!(
            "{CM_COLLECTION}?watch=true&timeoutSeconds=-1&resourceVersion={}",
            f.revision
        ))
        .stream()
        .await;
    assert_eq!(w.status, StatusCode::OK);
    assert!(w.ends_within(std::time::Duration::from_secs(2)).await);
    // watch=false and watch=0 are lists.
    for v in ["false", "0", "FALSE"] {
        let r = n.get(&format!("{CM_COLLECTION}?watch={v}")).send().await;
        assert_eq!(r.json()["kind"], "ConfigMapList", "watch={v}");
    }
}

#[tokio::test]
async fn bogus_dry_run_field_validation_and_delete_options_are_422() {
    let f = Fixture::new().await;
    let n = &f.node;
    let new_cm = configmap("new", json!({}));
    let s = f
        .rejects(
            "dryRun on create",
            n.post(&format!("{CM_COLLECTION}?dryRun=Yes")).json(&new_cm),
            422,
            "Invalid",
            "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Yes\"}: supported values: \"All\"",
        )
        .await;
    assert_eq!(s["details"]["causes"][0]["field"], "dryRun");
    f.rejects(
        "dryRun on update",
        n.put(&format!("{CM}?dryRun=true")).json(&f.cm),
        422,
        "Invalid",
        "UpdateOptions.meta.k8s.io \"\" is invalid: dryRun",
    )
    .await;
    f.rejects(
        "dryRun on patch",
        n.patch(&format!("{CM}?dryRun=All&dryRun=Some")).merge(&json!({"data": {"k": "2"}})),
        422,
        "Invalid",
        "PatchOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"All\", \"Some\"}",
    )
    .await;
    f.rejects(
        "dryRun on delete",
        n.delete(&format!("{CM}?dryRun=1")),
        422,
        "Invalid",
        "DeleteOptions.meta.k8s.io \"\" is invalid: dryRun",
    )
    .await;
    f.rejects(
        "dryRun in DeleteOptions",
        n.delete(CM).json(&json!({"dryRun": ["Nope"]})),
        422,
        "Invalid",
        "DeleteOptions.meta.k8s.io \"\" is invalid: dryRun",
    )
    .await;
    f.rejects(
        "dryRun on deletecollection",
        n.delete(&format!("{CM_COLLECTION}?dryRun=x")),
        422,
        "Invalid",
        "dryRun",
    )
    .await;
    for (req, kind) in [
        (
            n.post(&format!("{CM_COLLECTION}?fieldValidation=Loud"))
                .json(&new_cm),
            "CreateOptions",
        ),
        (
            n.put(&format!("{CM}?fieldValidation=strict")).json(&f.cm),
            "UpdateOptions",
        ),
        (
            n.patch(&format!("{CM}?fieldValidation=None"))
                .merge(&json!({})),
            "PatchOptions",
        ),
    ] {
        let s = f
            .rejects(
                kind,
                req,
                422,
                "Invalid",
                &format!("{kind}.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value"),
            )
            .await;
        assert_eq!(s["details"]["causes"][0]["field"], "fieldValidation");
    }
    // DeleteOptions.
    f.rejects(
        "propagationPolicy",
        n.delete(CM).json(&json!({"propagationPolicy": "Sideways"})),
        422,
        "Invalid",
        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Sideways\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
    )
    .await;
    f.rejects(
        "propagationPolicy in the query",
        n.delete(&format!("{CM}?propagationPolicy=Sideways")),
        422,
        "Invalid",
        "propagationPolicy: Unsupported value: \"Sideways\"",
    )
    .await;
    f.rejects(
        "DeleteOptions not JSON",
        n.delete(CM).body("application/json", "{"),
        400,
        "BadRequest",
        "",
    )
    .await;
    f.rejects(
        "DeleteOptions not an object",
        n.delete(CM).body("application/json", "[1]"),
        400,
        "BadRequest",
        "",
    )
    .await;
    f.rejects(
        "DeleteOptions with a wrong type",
        n.delete(CM).json(&json!({"preconditions": {"uid": 5}})),
        400,
        "BadRequest",
        "",
    )
    .await;
    f.rejects(
        "gracePeriodSeconds negative... and a bad orphanDependents",
        n.delete(CM).json(&json!({"orphanDependents": "yes"})),
        400,
        "BadRequest",
        "",
    )
    .await;
}

// ---------------------------------------------------------------- patches

#[tokio::test]
async fn bogus_patch_bodies_for_each_patch_type() {
    let f = Fixture::new().await;
    let n = &f.node;
    let json_patch = |body: &str| {
        n.patch(DEPLOY)
            .body("application/json-patch+json", body.to_string())
    };
    let merge = |body: &str| {
        n.patch(DEPLOY)
            .body("application/merge-patch+json", body.to_string())
    };
    let strategic = |body: &str| {
        n.patch(DEPLOY)
            .body("application/strategic-merge-patch+json", body.to_string())
    };

    // Not JSON at all: 400 for every type.
    for (what, req) in [
        ("json", json_patch("{")),
        ("merge", merge("nope")),
        ("strategic", strategic("[{")),
    ] {
        f.rejects(what, req, 400, "BadRequest", "").await;
    }
    // JSON patch that is not a list of operations.
    for body in [
        r#"{"op":"add"}"#,
        r#"[1]"#,
        r#"[{"op":"explode","path":"/spec"}]"#,
        r#"[{"path":"/spec"}]"#,
        r#"[{"op":"add","path":"/x"}]"#,
        r#"[{"op":"replace","path":"no-slash","value":1}]"#,
    ] {
        let r = json_patch(body).send().await;
        assert!(
            matches!(r.status.as_u16(), 400 | 422),
            "json patch {body}: {} {}",
            r.status,
            r.text()
        );
        r.status_error(r.status.as_u16(), r.json()["reason"].as_str().unwrap(), "");
        f.assert_unchanged(body).await;
    }
    // Operations that do not apply: 422 (upstream: the server rejected our request ...).
    for body in [
        r#"[{"op":"remove","path":"/spec/nope"}]"#,
        r#"[{"op":"replace","path":"/spec/template/spec/containers/5/image","value":"x"}]"#,
        r#"[{"op":"test","path":"/spec/replicas","value":99}]"#,
        r#"[{"op":"move","from":"/spec/nope","path":"/spec/x"}]"#,
    ] {
        let r = json_patch(body).send().await;
        assert!(
            matches!(r.status.as_u16(), 422 | 409 | 400),
            "json patch {body}: {} {}",
            r.status,
            r.text()
        );
        f.assert_unchanged(body).await;
    }
    // Merge and strategic patches must be objects.
    for body in ["[]", "1", "\"s\"", "null"] {
        let r = merge(body).send().await;
        assert!(
            r.status.is_client_error(),
            "merge {body}: {} {}",
            r.status,
            r.text()
        );
        r.status_error(r.status.as_u16(), r.json()["reason"].as_str().unwrap(), "");
        let r = strategic(body).send().await;
        assert!(
            r.status.is_client_error(),
            "strategic {body}: {} {}",
            r.status,
            r.text()
        );
        r.status_error(r.status.as_u16(), r.json()["reason"].as_str().unwrap(), "");
        f.assert_unchanged(body).await;
    }
    // Strategic merge directives that make no sense.
    for body in [
        r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"explode","name":"web"}]}}}}"#,
        r#"{"spec":{"template":{"spec":{"containers":[{"image":"no-merge-key"}]}}}}"#,
        r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":"notalist"}}}}"#,
        r#"{"spec":{"$retainKeys":"x"}}"#,
    ] {
        let r = strategic(body).send().await;
        assert!(
            r.status.is_client_error(),
            "strategic {body}: {} {}",
            r.status,
            r.text()
        );
        r.status_error(r.status.as_u16(), r.json()["reason"].as_str().unwrap(), "");
        f.assert_unchanged(body).await;
    }
}

#[tokio::test]
async fn patches_may_not_rename_or_retype_the_object() {
    let f = Fixture::new().await;
    let n = &f.node;
    for (what, req) in [
        (
            "merge name",
            n.patch(CM).merge(&json!({"metadata": {"name": "renamed"}})),
        ),
        (
            "strategic name",
            n.patch(CM)
                .strategic(&json!({"metadata": {"name": "renamed"}})),
        ),
        (
            "json-patch name",
            n.patch(CM).json_patch(
                &json!([{"op": "replace", "path": "/metadata/name", "value": "renamed"}]),
            ),
        ),
    ] {
        f.rejects(
            what,
            req,
            400,
            "BadRequest",
            "the name of the object (renamed) does not match the name on the URL (cm)",
        )
        .await;
    }
    for (what, req) in [
        ("merge kind", n.patch(CM).merge(&json!({"kind": "Secret"}))),
        (
            "json-patch kind",
            n.patch(CM)
                .json_patch(&json!([{"op": "replace", "path": "/kind", "value": "Secret"}])),
        ),
        (
            "merge apiVersion",
            n.patch(DEPLOY)
                .merge(&json!({"apiVersion": "apps/v1beta2"})),
        ),
    ] {
        f.rejects(what, req, 400, "BadRequest", "does not match the expected")
            .await;
    }
    f.rejects(
        "merge namespace",
        n.patch(CM)
            .merge(&json!({"metadata": {"namespace": "kube-system"}})),
        400,
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the request",
    )
    .await;
    let s = f
        .rejects(
            "merge uid",
            n.patch(CM).merge(&json!({"metadata": {"uid": "6f3e0c2a-0000-0000-0000-000000000000"}})),
            422,
            "Invalid",
            "metadata.uid: Invalid value: \"6f3e0c2a-0000-0000-0000-000000000000\": field is immutable",
        )
        .await;
    assert_eq!(s["details"]["causes"][0]["field"], "metadata.uid");
    // A stale resourceVersion in a patch: 409.
    f.rejects(
        "stale rv in a patch",
        n.patch(CM)
            .merge(&json!({"metadata": {"resourceVersion": "1"}, "data": {"k": "2"}})),
        409,
        "Conflict",
        "Operation cannot be fulfilled on configmaps \"cm\": the object has been modified",
    )
    .await;
}

#[tokio::test]
async fn bad_scale_bodies() {
    let f = Fixture::new().await;
    let n = &f.node;
    let scale_path = format!("{DEPLOY}/scale");
    let scale = n.get(&scale_path).send().await.json();
    let with = |patch: Value| {
        let mut s = scale.clone();
        json_patch::merge(&mut s, &patch);
        s
    };
    f.rejects(
        "name",
        n.put(&scale_path)
            .json(&with(json!({"metadata": {"name": "other"}}))),
        400,
        "BadRequest",
        "the name of the object (other) does not match the name on the URL (web)",
    )
    .await;
    f.rejects(
        "namespace",
        n.put(&scale_path)
            .json(&with(json!({"metadata": {"namespace": "kube-system"}}))),
        400,
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the request",
    )
    .await;
    f.rejects(
        "apiVersion",
        n.put(&scale_path).json(&with(json!({"apiVersion": "apps/v1"}))),
        400,
        "BadRequest",
        "the API version in the data (apps/v1) does not match the expected API version (autoscaling/v1)",
    )
    .await;
    f.rejects(
        "kind",
        n.put(&scale_path)
            .json(&with(json!({"kind": "Deployment"}))),
        400,
        "BadRequest",
        "the kind in the data (Deployment) does not match the expected kind (Scale)",
    )
    .await;
    f.rejects(
        "string replicas",
        n.put(&scale_path).json(&with(json!({"spec": {"replicas": "3"}}))),
        400,
        "BadRequest",
        "Scale in version \"v1\" cannot be handled as a Scale: json: cannot unmarshal string into Go struct field ScaleSpec.spec.replicas of type int32",
    )
    .await;
    f.rejects(
        "unknown field under Strict",
        n.put(&format!("{scale_path}?fieldValidation=Strict"))
            .json(&with(json!({"spec": {"replicas": 3, "replica": 3}}))),
        400,
        "BadRequest",
        "strict decoding error: unknown field \"spec.replica\"",
    )
    .await;
    f.rejects(
        "stale resourceVersion",
        n.put(&scale_path).json(&with(
            json!({"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 3}}),
        )),
        409,
        "Conflict",
        "the object has been modified",
    )
    .await;
    f.rejects(
        "foreign uid",
        n.put(&scale_path).json(&with(
            json!({"metadata": {"uid": "6f3e0c2a-0000-0000-0000-000000000000"}, "spec": {"replicas": 3}}),
        )),
        409,
        "Conflict",
        "Precondition failed: UID in precondition: 6f3e0c2a-0000-0000-0000-000000000000",
    )
    .await;
    f.rejects(
        "negative",
        n.put(&scale_path).json(&with(json!({"spec": {"replicas": -1}}))),
        422,
        "Invalid",
        "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0",
    )
    .await;
    f.rejects(
        "patch: string replicas",
        n.patch(&scale_path)
            .merge(&json!({"spec": {"replicas": "x"}})),
        400,
        "BadRequest",
        "cannot unmarshal string",
    )
    .await;
    f.rejects(
        "patch: rename",
        n.patch(&scale_path)
            .merge(&json!({"metadata": {"name": "other"}})),
        400,
        "BadRequest",
        "does not match the name on the URL",
    )
    .await;
    f.rejects(
        "patch: not a patch type",
        n.patch(&scale_path).body("application/json", "{}"),
        415,
        "UnsupportedMediaType",
        "unknown format",
    )
    .await;
    // A Warning for an unknown field under Warn, and the write goes through.
    let r = n
        .put(&format!("{scale_path}?fieldValidation=Warn"))
        .json(&with(json!({"spec": {"replicas": 3, "replica": 3}})))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.warnings(), [r#"299 - "unknown field \"spec.replica\"""#]);
}

#[tokio::test]
async fn writes_across_all_namespaces_are_405() {
    let f = Fixture::new().await;
    let n = &f.node;
    for (what, req) in [
        ("deletecollection", n.delete("/api/v1/configmaps")),
        (
            "deletecollection deployments",
            n.delete("/apis/apps/v1/deployments?labelSelector=app%3Dweb"),
        ),
        (
            "create",
            n.post("/api/v1/configmaps")
                .json(&configmap("new", json!({}))),
        ),
        ("put", n.put("/api/v1/configmaps").json(&f.cm)),
        ("patch", n.patch("/api/v1/configmaps").merge(&json!({}))),
    ] {
        f.rejects(
            what,
            req,
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .await;
    }
    // Listing across namespaces still works.
    let r = n.get("/api/v1/configmaps").send().await;
    assert_eq!(names(&r.json()), ["cm"]);
}

// ---------------------------------------------------------------- routing and auth

#[tokio::test]
async fn missing_objects_unknown_paths_and_methods() {
    let f = Fixture::new().await;
    let n = &f.node;
    for (what, req) in [
        (
            "merge",
            n.patch(&format!("{CM_COLLECTION}/nope"))
                .merge(&json!({"data": {"k": "v"}})),
        ),
        (
            "strategic",
            n.patch(&format!("{CM_COLLECTION}/nope"))
                .strategic(&json!({"data": {"k": "v"}})),
        ),
        (
            "json",
            n.patch(&format!("{CM_COLLECTION}/nope"))
                .json_patch(&json!([{"op": "add", "path": "/data", "value": {}}])),
        ),
        ("delete", n.delete(&format!("{CM_COLLECTION}/nope"))),
        (
            "put",
            n.put(&format!("{CM_COLLECTION}/nope"))
                .json(&configmap("nope", json!({}))),
        ),
        (
            "status",
            n.patch(&format!("{DEPLOY_COLLECTION}/nope/status"))
                .merge(&json!({"status": {}})),
        ),
    ] {
        let s = f
            .rejects(what, req, 404, "NotFound", "\"nope\" not found")
            .await;
        assert_eq!(s["details"]["name"], "nope");
    }
    for path in [
        "/api/v1/namespaces/default/bogus",
        "/api/v1/bogus",
        "/apis/nogroup/v1/things",
        "/apis/apps/v9/deployments",
        "/api/v2/pods",
        "/apis/apps/v1/namespaces/default/deployments/web/bogus",
        "/api/v1/namespaces/default/configmaps/cm/scale",
        "/api/v1/namespaces/default/configmaps/cm/status/extra",
        "/nothing/here",
    ] {
        f.rejects(
            path,
            n.get(path),
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .await;
        f.rejects(path, n.post(path).json(&json!({})), 404, "NotFound", "")
            .await;
    }
    // A namespaced object must be addressed within its namespace.
    f.rejects(
        "cluster path",
        n.get("/apis/apps/v1/deployments/web"),
        404,
        "NotFound",
        "",
    )
    .await;

    for (what, req) in [
        ("PUT a collection", n.put(CM_COLLECTION).json(&f.cm)),
        (
            "PATCH a collection",
            n.patch(CM_COLLECTION).merge(&json!({})),
        ),
        ("POST an object", n.post(CM).json(&f.cm)),
        (
            "POST status",
            n.post(&format!("{DEPLOY}/status")).json(&f.deploy),
        ),
        ("DELETE status", n.delete(&format!("{DEPLOY}/status"))),
        ("DELETE scale", n.delete(&format!("{DEPLOY}/scale"))),
        ("OPTIONS", n.req(Method::OPTIONS, CM)),
        ("TRACE", n.req(Method::TRACE, CM_COLLECTION)),
        ("PUT discovery", n.put("/api/v1").json(&json!({}))),
    ] {
        f.rejects(
            what,
            req,
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .await;
    }
}

#[tokio::test]
async fn requests_without_valid_credentials_are_401() {
    let f = Fixture::new().await;
    let n = &f.node;
    for (what, req) in [
        ("get", n.get(CM).no_auth()),
        ("list", n.get(CM_COLLECTION).no_auth()),
        (
            "create",
            n.post(CM_COLLECTION)
                .json(&configmap("new", json!({})))
                .no_auth(),
        ),
        ("delete", n.delete(CM).no_auth()),
        (
            "wrong token",
            n.get(CM).header("authorization", "Bearer nope"),
        ),
        (
            "empty token",
            n.delete(CM).header("authorization", "Bearer "),
        ),
        (
            "basic",
            n.delete(CM)
                .header("authorization", "Basic YWRtaW46YWRtaW4="),
        ),
        ("discovery", n.get("/api").no_auth()),
    ] {
        let s = f
            .rejects(what, req, 401, "Unauthorized", "Unauthorized")
            .await;
        assert_eq!(s["message"], "Unauthorized");
    }
    // Health and version stay open.
    for path in ["/healthz", "/livez", "/readyz", "/version"] {
        let r = n.get(path).no_auth().send().await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn random_garbage_never_gets_a_5xx() {
    let f = Fixture::new().await;
    let n = &f.node;
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let content_types = [
        "application/json",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/json-patch+json",
    ];
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        "\"",
        ":",
        ",",
        "null",
        "1",
        "-0",
        "1e999",
        "\"metadata\"",
        "\"name\"",
        "\"cm\"",
        "\"spec\"",
        "\"replicas\"",
        "\"$patch\"",
        "\"delete\"",
        "\"op\"",
        "\"path\"",
        "\"/spec\"",
        "\\u0000",
        "\u{1F600}",
        "\"data\"",
        "\"kind\"",
        "\"Secret\"",
        "\"apiVersion\"",
        "true",
        " ",
        "\n",
        "- ",
        "k8s\u{0}",
    ];
    let scale = format!("{DEPLOY}/scale");
    for i in 0..400 {
        let len = rng.random_range(0..40);
        let body: String = (0..len)
            .map(|_| pieces[rng.random_range(0..pieces.len())])
            .collect();
        let ct = content_types[i % content_types.len()];
        let (method, path) = match i % 4 {
            0 => (Method::POST, CM_COLLECTION),
            1 => (Method::PUT, CM),
            2 => (Method::PATCH, DEPLOY),
            _ => (Method::PATCH, scale.as_str()),
        };
        let r = n
            .req(method.clone(), path)
            .body(ct, body.clone())
            .send()
            .await;
        assert!(
            r.status.as_u16() < 500,
            "{method} {path} {ct} {body:?}: {} {}",
            r.status,
            r.text()
        );
        if !r.status.is_success() {
            r.status_error(r.status.as_u16(), r.json()["reason"].as_str().unwrap(), "");
        }
    }
    // Garbage query strings.
    let params = [
        "labelSelector",
        "fieldSelector",
        "resourceVersion",
        "resourceVersionMatch",
        "limit",
        "continue",
        "watch",
        "timeoutSeconds",
        "allowWatchBookmarks",
        "sendInitialEvents",
        "includeObject",
    ];
    let values = [
        "",
        "=",
        "!",
        "a=b",
        "0",
        "-1",
        "x",
        "%00",
        "((",
        "true",
        "Exact",
        "NotOlderThan",
        "1",
    ];
    for _ in 0..300 {
        let q: Vec<String> = (0..rng.random_range(1..4))
            .map(|_| {
                format!(
                    "{}={}",
                    params[rng.random_range(0..params.len())],
                    values[rng.random_range(0..values.len())]
                )
            })
            .collect();
        let path = format!("{CM_COLLECTION}?{}&timeoutSeconds=1", q.join("&"));
        let r = n.get(&path).stream().await;
        assert!(r.status.as_u16() < 500, "GET {path}: {}", r.status);
    }
    // Every mutation above either failed or was a no-op on fixture objects' content; the
    // fixture's objects may have been rewritten by a valid random patch, so only check
    // that the server still answers.
    let r = n.get(CM).send().await;
    assert_eq!(r.status, StatusCode::OK);
}
