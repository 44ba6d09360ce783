//! `fieldValidation` on every write path: Strict (create/update: 400 naming every unknown
//! and duplicate field; patches: upstream's 422 on `patch`), Warn (one `299` Warning per
//! field), Ignore (nothing) — for create, update and every patch type, with JSON, YAML and
//! protobuf bodies.

mod common;

use common::{Node, deployment};
use http::StatusCode;
use serde_json::{Value, json};

const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments";
const CM: &str = "/api/v1/namespaces/default/configmaps";

fn warning(text: &str) -> String {
    format!("299 - \"{}\"", text.replace('"', "\\\""))
}

#[tokio::test]
async fn create_and_update_list_every_unknown_and_duplicate_field() {
    let node = Node::start().await;
    let body = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j","name":"j"},"bogus":1,"data":{"a":"b","a":"c"},"other":{"x":1}}"#;
    let before = node.revision();
    let s = node
        .post(&format!("{CM}?fieldValidation=Strict"))
        .body("application/json", body)
        .send()
        .await
        .status_error(400, "BadRequest", "");
    assert_eq!(
        s["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: duplicate field \"metadata.name\", unknown field \"bogus\", duplicate field \"data.a\", unknown field \"other\""
    );
    assert_eq!(node.revision(), before);
    let r = node
        .post(&format!("{CM}?fieldValidation=Warn"))
        .body("application/json", body)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(
        r.warnings(),
        [
            warning(r#"duplicate field "metadata.name""#),
            warning(r#"unknown field "bogus""#),
            warning(r#"duplicate field "data.a""#),
            warning(r#"unknown field "other""#),
        ]
    );
    assert_eq!(
        r.json()["data"],
        json!({"a": "c"}),
        "the last duplicate wins"
    );
    assert!(r.json().get("bogus").is_none());

    // PUT: the same, as UpdateOptions.
    let put = body.replace(r#""data""#, r#""metadata2":1,"data""#);
    let s = node
        .put(&format!("{CM}/j?fieldValidation=Strict"))
        .body("application/json", put.clone())
        .send()
        .await
        .status_error(400, "BadRequest", "strict decoding error: ");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"metadata2\""),
        "{s}"
    );
    let r = node
        .put(&format!("{CM}/j?fieldValidation=Ignore"))
        .body("application/json", put)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.warnings().is_empty());

    // YAML bodies: unknown fields the same way.
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\nbogus: 1\ndata:\n  a: b\n  nested: x\nextra:\n  deep: 1\n";
    let s = node
        .post(&format!("{CM}?fieldValidation=Strict"))
        .body("application/yaml", yaml)
        .send()
        .await
        .status_error(400, "BadRequest", "");
    assert_eq!(
        s["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"bogus\", unknown field \"extra\""
    );
    let r = node
        .post(&format!("{CM}?fieldValidation=Warn"))
        .body("application/yaml", yaml)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(
        r.warnings(),
        [
            warning(r#"unknown field "bogus""#),
            warning(r#"unknown field "extra""#)
        ]
    );
}

/// A protobuf body has no unknown fields to report: Strict accepts it.
#[tokio::test]
async fn protobuf_bodies_pass_strict() {
    let node = Node::start().await;
    // k8s\0 + runtime.Unknown{typeMeta{apiVersion "v1", kind "ConfigMap"}, raw ConfigMap{metadata{name "pb"}, data{a: b}}}
    let type_meta = [&[0x0a, 0x02][..], b"v1", &[0x12, 0x09], b"ConfigMap"].concat();
    let meta = [&[0x0a, 0x02][..], b"pb"].concat();
    let entry = [&[0x0a, 0x01][..], b"a", &[0x12, 0x01], b"b"].concat();
    let cm = [
        &[0x0a, meta.len() as u8][..],
        &meta,
        &[0x12, entry.len() as u8],
        &entry,
    ]
    .concat();
    let unknown = [
        &[0x0a, type_meta.len() as u8][..],
        &type_meta,
        &[0x12, cm.len() as u8],
        &cm,
    ]
    .concat();
    let body = [&b"k8s\0"[..], &unknown].concat();
    let r = node
        .post(&format!("{CM}?fieldValidation=Strict"))
        .body("application/vnd.kubernetes.protobuf", body)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["data"], json!({"a": "b"}));
    assert!(r.warnings().is_empty());
}

async fn patched(node: &Node, mode: &str, content_type: &str, body: &str) -> common::Resp {
    node.patch(&format!("{DEPLOY}/web?fieldValidation={mode}"))
        .body(content_type, body.to_string())
        .send()
        .await
}

#[tokio::test]
async fn patches_report_the_patched_objects_unknown_fields() {
    let node = Node::start().await;
    node.create(DEPLOY, deployment("web", 1)).await;
    let before = node.revision();

    // Strategic merge: 422 on `patch`, its value Go's rendering of the decoded patch.
    let smp = r#"{"spec":{"replicas":3,"replicas":2,"bogus":1,"template":{"spec":{"containers":[{"name":"web","imagex":"a"}]}}}}"#;
    let s = patched(
        &node,
        "Strict",
        "application/strategic-merge-patch+json",
        smp,
    )
    .await
    .status_error(422, "Invalid", "");
    assert_eq!(
        s["message"],
        " \"\" is invalid: patch: Invalid value: \"map[spec:map[bogus:1 replicas:2 template:map[spec:map[containers:[map[imagex:a name:web]]]]]]\": strict decoding error: duplicate field \"spec.replicas\", unknown field \"spec.bogus\", unknown field \"spec.template.spec.containers[0].imagex\""
    );
    assert_eq!(s["details"]["causes"][0]["field"], "patch");
    assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueInvalid");

    // Merge patch: the value is the patched object.
    let s = patched(
        &node,
        "Strict",
        "application/merge-patch+json",
        r#"{"spec":{"bogus":1}}"#,
    )
    .await
    .status_error(
        422,
        "Invalid",
        " \"\" is invalid: patch: Invalid value: \"{",
    );
    let message = s["message"].as_str().unwrap();
    assert!(
        message.ends_with(": strict decoding error: unknown field \"spec.bogus\""),
        "{message}"
    );

    // JSON patch: duplicates in an operation are `json patch` errors.
    let s = patched(
        &node,
        "Strict",
        "application/json-patch+json",
        r#"[{"op":"add","op":"add","path":"/spec/bogus","value":1}]"#,
    )
    .await
    .status_error(422, "Invalid", "");
    let message = s["message"].as_str().unwrap();
    assert!(
        message.ends_with(
            ": strict decoding error: json patch duplicate field \"[0].op\", unknown field \"spec.bogus\""
        ),
        "{message}"
    );
    assert_eq!(node.revision(), before, "a strict failure stores nothing");

    // Warn: one warning per field, the write goes through without them.
    for (content_type, body, want) in [
        (
            "application/strategic-merge-patch+json",
            smp,
            vec![
                r#"duplicate field "spec.replicas""#,
                r#"unknown field "spec.bogus""#,
                r#"unknown field "spec.template.spec.containers[0].imagex""#,
            ],
        ),
        (
            "application/merge-patch+json",
            r#"{"spec":{"bogus":1,"bogus2":{"x":1}}}"#,
            vec![
                r#"unknown field "spec.bogus""#,
                r#"unknown field "spec.bogus2""#,
            ],
        ),
        (
            "application/json-patch+json",
            r#"[{"op":"add","path":"/spec/bogus","value":1}]"#,
            vec![r#"unknown field "spec.bogus""#],
        ),
    ] {
        let r = patched(&node, "Warn", content_type, body).await;
        assert_eq!(r.status, StatusCode::OK, "{content_type}: {}", r.text());
        let want: Vec<String> = want.into_iter().map(warning).collect();
        assert_eq!(r.warnings(), want, "{content_type}");
        let obj: Value = r.json();
        assert!(obj["spec"].get("bogus").is_none(), "{obj}");
        // Ignore: the same patch, silently.
        let r = patched(&node, "Ignore", content_type, body).await;
        assert_eq!(r.status, StatusCode::OK, "{content_type}: {}", r.text());
        assert!(
            r.warnings().is_empty(),
            "{content_type}: {:?}",
            r.warnings()
        );
    }
    let obj = node.get(&format!("{DEPLOY}/web")).send().await.json();
    assert_eq!(obj["spec"]["replicas"], 2);

    // The scale subresource's patches too (a PUT stays the decoder's 400).
    let scale = format!("{DEPLOY}/web/scale");
    let s = node
        .patch(&format!("{scale}?fieldValidation=Strict"))
        .merge(&json!({"spec": {"replicas": 4, "replica": 4}}))
        .send()
        .await
        .status_error(422, "Invalid", " \"\" is invalid: patch: Invalid value: ");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .ends_with(": strict decoding error: unknown field \"spec.replica\""),
        "{s}"
    );
    let r = node
        .patch(&format!("{scale}?fieldValidation=Warn"))
        .merge(&json!({"spec": {"replicas": 4, "replica": 4}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.warnings(), [warning(r#"unknown field "spec.replica""#)]);
    assert_eq!(r.json()["spec"]["replicas"], 4);
}

/// Upstream's integration test body (test/integration/apiserver/field_validation_test.go):
/// errors and warnings in the order the decoder meets them; a key both unknown and
/// duplicated is reported once, as unknown.
const UPSTREAM_INVALID: &str = r#"{
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "NAME", "name": "NAME", "unknownMeta": "metaVal", "labels": {"app": "nginx"}},
    "spec": {
        "unknown1": "val1",
        "unknownDupe": "valDupe",
        "unknownDupe": "valDupe2",
        "paused": true,
        "paused": false,
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": [{
                "name": "nginx",
                "image": "nginx:latest",
                "unknownNested": "val1",
                "imagePullPolicy": "Always",
                "imagePullPolicy": "Never"
            }]}
        }
    }
}"#;

const UPSTREAM_ERRORS: [&str; 7] = [
    r#"duplicate field "metadata.name""#,
    r#"unknown field "metadata.unknownMeta""#,
    r#"unknown field "spec.unknown1""#,
    r#"unknown field "spec.unknownDupe""#,
    r#"duplicate field "spec.paused""#,
    r#"unknown field "spec.template.spec.containers[0].unknownNested""#,
    r#"duplicate field "spec.template.spec.containers[0].imagePullPolicy""#,
];

#[tokio::test]
async fn upstream_post_and_put_cases() {
    let node = Node::start().await;
    let strict = format!("strict decoding error: {}", UPSTREAM_ERRORS.join(", "));
    let body = UPSTREAM_INVALID.replace("NAME", "post");
    let s = node
        .post(&format!("{DEPLOY}?fieldValidation=Strict"))
        .body("application/json", body.clone())
        .send()
        .await
        .status_error(400, "BadRequest", "");
    assert!(s["message"].as_str().unwrap().ends_with(&strict), "{s}");
    for q in ["?fieldValidation=Warn", ""] {
        let r = node
            .post(&format!("{DEPLOY}{q}"))
            .body(
                "application/json",
                UPSTREAM_INVALID.replace("NAME", &format!("post{}", q.len())),
            )
            .send()
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let want: Vec<String> = UPSTREAM_ERRORS.iter().map(|e| warning(e)).collect();
        assert_eq!(r.warnings(), want, "{q:?}");
    }
    let r = node
        .post(&format!("{DEPLOY}?fieldValidation=Ignore"))
        .body(
            "application/json",
            UPSTREAM_INVALID.replace("NAME", "ignored"),
        )
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(r.warnings().is_empty());

    // PUT over an existing Deployment: the same.
    let put = UPSTREAM_INVALID.replace("NAME", "ignored");
    let s = node
        .put(&format!("{DEPLOY}/ignored?fieldValidation=Strict"))
        .body("application/json", put.clone())
        .send()
        .await
        .status_error(400, "BadRequest", "");
    assert!(s["message"].as_str().unwrap().ends_with(&strict), "{s}");
    let r = node
        .put(&format!("{DEPLOY}/ignored?fieldValidation=Warn"))
        .body("application/json", put)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let want: Vec<String> = UPSTREAM_ERRORS.iter().map(|e| warning(e)).collect();
    assert_eq!(r.warnings(), want);
}

#[tokio::test]
async fn upstream_patch_cases() {
    let node = Node::start().await;
    node.create(DEPLOY, deployment("web", 1)).await;
    let merge = r#"{"spec": {"unknown1": "val1", "unknownDupe": "valDupe", "unknownDupe": "valDupe2",
        "paused": true, "paused": false,
        "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:latest",
            "unknownNested": "val1", "imagePullPolicy": "Always", "imagePullPolicy": "Never"}]}}}}"#;
    let merge_errors = [
        r#"duplicate field "spec.unknownDupe""#,
        r#"duplicate field "spec.paused""#,
        r#"duplicate field "spec.template.spec.containers[0].imagePullPolicy""#,
        r#"unknown field "spec.template.spec.containers[0].unknownNested""#,
        r#"unknown field "spec.unknown1""#,
        r#"unknown field "spec.unknownDupe""#,
    ];
    let json_patch = r#"[
        {"op": "add", "path": "/spec/unknown1", "value": "val1", "foo": "bar"},
        {"op": "add", "path": "/spec/unknown2", "path": "/spec/unknown3", "value": "val1"},
        {"op": "add", "path": "/spec/unknownDupe", "value": "valDupe"},
        {"op": "add", "path": "/spec/unknownDupe", "value": "valDupe2"},
        {"op": "add", "path": "/spec/paused", "value": true},
        {"op": "add", "path": "/spec/paused", "value": false},
        {"op": "add", "path": "/spec/template/spec/containers/0/unknownNested", "value": "val1"},
        {"op": "add", "path": "/spec/template/spec/containers/0/imagePullPolicy", "value": "Always"},
        {"op": "add", "path": "/spec/template/spec/containers/0/imagePullPolicy", "value": "Never"}
    ]"#;
    let json_errors = [
        r#"json patch unknown field "[0].foo""#,
        r#"json patch duplicate field "[1].path""#,
        r#"unknown field "spec.template.spec.containers[0].unknownNested""#,
        r#"unknown field "spec.unknown1""#,
        r#"unknown field "spec.unknown3""#,
        r#"unknown field "spec.unknownDupe""#,
    ];
    for (content_type, body, errors) in [
        ("application/merge-patch+json", merge, &merge_errors[..]),
        (
            "application/strategic-merge-patch+json",
            merge,
            &merge_errors[..],
        ),
        ("application/json-patch+json", json_patch, &json_errors[..]),
    ] {
        let s = patched(&node, "Strict", content_type, body)
            .await
            .status_error(422, "Invalid", "");
        let strict = format!("strict decoding error: {}", errors.join(", "));
        assert!(
            s["message"].as_str().unwrap().ends_with(&strict),
            "{content_type}: {s}"
        );
        for mode in ["Warn", ""] {
            let r = if mode.is_empty() {
                node.patch(&format!("{DEPLOY}/web"))
                    .body(content_type, body.to_string())
                    .send()
                    .await
            } else {
                patched(&node, mode, content_type, body).await
            };
            assert_eq!(r.status, StatusCode::OK, "{content_type}: {}", r.text());
            let want: Vec<String> = errors.iter().map(|e| warning(e)).collect();
            assert_eq!(r.warnings(), want, "{content_type} {mode:?}");
        }
        let r = patched(&node, "Ignore", content_type, body).await;
        assert_eq!(r.status, StatusCode::OK, "{content_type}: {}", r.text());
        assert!(r.warnings().is_empty(), "{content_type}");
    }
}

/// Upstream's `invalidBodyYAML`: go-yaml's duplicate-key lines, then the unknown fields.
const UPSTREAM_YAML: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: NAME
  name: NAME
  unknownMeta: metaVal
  labels:
    app: nginx
spec:
  unknown1: val1
  unknownDupe: valDupe
  unknownDupe: valDupe2
  paused: true
  paused: false
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:latest
        unknownNested: val1
        imagePullPolicy: Always
        imagePullPolicy: Never";

const UPSTREAM_YAML_WARNINGS: [&str; 8] = [
    r#"line 5: key "name" already set in map"#,
    r#"line 12: key "unknownDupe" already set in map"#,
    r#"line 14: key "paused" already set in map"#,
    r#"line 28: key "imagePullPolicy" already set in map"#,
    r#"unknown field "metadata.unknownMeta""#,
    r#"unknown field "spec.template.spec.containers[0].unknownNested""#,
    r#"unknown field "spec.unknown1""#,
    r#"unknown field "spec.unknownDupe""#,
];

#[tokio::test]
async fn upstream_yaml_cases() {
    let node = Node::start().await;
    let strict = "strict decoding error: yaml: unmarshal errors:\n  line 5: key \"name\" already set in map\n  line 12: key \"unknownDupe\" already set in map\n  line 14: key \"paused\" already set in map\n  line 28: key \"imagePullPolicy\" already set in map, unknown field \"metadata.unknownMeta\", unknown field \"spec.template.spec.containers[0].unknownNested\", unknown field \"spec.unknown1\", unknown field \"spec.unknownDupe\"";
    let s = node
        .post(&format!("{DEPLOY}?fieldValidation=Strict"))
        .body("application/yaml", UPSTREAM_YAML.replace("NAME", "y"))
        .send()
        .await
        .status_error(400, "BadRequest", "");
    assert!(s["message"].as_str().unwrap().ends_with(strict), "{s}");
    for (q, name) in [("?fieldValidation=Warn", "y1"), ("", "y2")] {
        let r = node
            .post(&format!("{DEPLOY}{q}"))
            .body("application/yaml", UPSTREAM_YAML.replace("NAME", name))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let want: Vec<String> = UPSTREAM_YAML_WARNINGS.iter().map(|e| warning(e)).collect();
        assert_eq!(r.warnings(), want, "{q:?}");
        assert_eq!(r.json()["spec"]["paused"], false, "the last value wins");
    }
    let r = node
        .post(&format!("{DEPLOY}?fieldValidation=Ignore"))
        .body("application/yaml", UPSTREAM_YAML.replace("NAME", "y3"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(r.warnings().is_empty());
    // PUT the same.
    let s = node
        .put(&format!("{DEPLOY}/y3?fieldValidation=Strict"))
        .body("application/yaml", UPSTREAM_YAML.replace("NAME", "y3"))
        .send()
        .await
        .status_error(400, "BadRequest", "");
    assert!(s["message"].as_str().unwrap().ends_with(strict), "{s}");
}
