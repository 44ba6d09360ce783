use super::*;

fn openapi() -> OpenApi {
    OpenApi::build(&Registry::builtin(), Catalog::builtin())
}

fn doc(api: &OpenApi, key: &str) -> Value {
    let (bytes, _) = api.v3_group_version(key).unwrap();
    serde_json::from_slice(bytes).unwrap()
}

/// Follows `$ref` or `allOf[0].$ref` inside one document's components, as kubectl explain does.
fn resolve<'a>(doc: &'a Value, prop: &'a Value) -> &'a Value {
    let r = prop
        .get("$ref")
        .or_else(|| prop["allOf"].get(0).and_then(|a| a.get("$ref")))
        .and_then(Value::as_str);
    match r {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            doc["components"]["schemas"]
                .get(name)
                .unwrap_or_else(|| panic!("{name} missing from the document"))
        }
        None => prop,
    }
}

#[test]
fn index_points_at_hashed_documents() {
    let api = openapi();
    let index = api.v3_index();
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    let (bytes, hash) = api.v3_group_version("apis/apps/v1").unwrap();
    assert_eq!(url, format!("/openapi/v3/apis/apps/v1?hash={hash}"));
    assert_eq!(hash, hex_upper(&Sha512::digest(bytes)));
    assert_eq!(hash.len(), 128);
    assert!(index["paths"]["api/v1"].is_object());
    assert!(index["paths"]["apis/autoscaling/v2"].is_object());
    assert!(api.v3_group_version("apis/apps/v1beta1").is_none());
    assert!(api.v3_group_version("/api/v1").is_some());
}

#[test]
fn explain_deployment_resolves_through_the_document() {
    let api = openapi();
    let d = doc(&api, "apis/apps/v1");
    assert_eq!(d["openapi"], "3.0.0");
    // kubectl explain finds the kind by the GVK extension of a component schema ...
    let schemas = d["components"]["schemas"].as_object().unwrap();
    let (name, dep) = schemas
        .iter()
        .find(|(_, s)| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|l| {
                    l.contains(&json!({"group": "apps", "kind": "Deployment", "version": "v1"}))
                })
        })
        .unwrap();
    assert_eq!(name, "io.k8s.api.apps.v1.Deployment");
    // ... and walks deployment.spec.template.spec.containers.
    let spec = resolve(&d, &dep["properties"]["spec"]);
    let template = resolve(&d, &spec["properties"]["template"]);
    let pod_spec = resolve(&d, &template["properties"]["spec"]);
    let containers = &pod_spec["properties"]["containers"];
    assert_eq!(containers["type"], "array");
    let container = resolve(&d, &containers["items"]);
    assert_eq!(container["properties"]["image"]["type"], "string");
    // The GET operation carries the GVK too.
    let get = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["get"];
    assert_eq!(get["x-kubernetes-action"], "get");
    assert_eq!(
        get["x-kubernetes-group-version-kind"],
        json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
}

#[test]
fn every_reference_in_every_document_resolves() {
    let api = openapi();
    let keys: Vec<String> = api.v3_index()["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(keys.len() >= 20);
    for key in keys {
        let d = doc(&api, &key);
        let mut names = Vec::new();
        refs(&d, &mut names);
        for name in names {
            assert!(
                d["components"]["schemas"].get(&name).is_some(),
                "{key}: {name} is referenced but not included"
            );
        }
    }
}

#[test]
fn every_patch_operation_accepts_field_validation() {
    // kubectl's QueryParamVerifierV3 takes the first PATCH operation with the kind's GVK
    // (map order is random) and requires a `fieldValidation` query parameter on it.
    let api = openapi();
    let d = doc(&api, "apis/apps/v1");
    let mut patches = 0;
    for (path, item) in d["paths"].as_object().unwrap() {
        if let Some(patch) = item.get("patch") {
            patches += 1;
            assert!(
                patch["x-kubernetes-group-version-kind"].is_object(),
                "{path}"
            );
            let params = patch["parameters"].as_array().unwrap();
            for name in ["fieldValidation", "fieldManager", "dryRun", "force"] {
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "query"),
                    "{path} lacks {name}"
                );
            }
        }
    }
    assert!(patches >= 10);
    let scale = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["patch"]["x-kubernetes-group-version-kind"],
        json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
    );
    assert_eq!(
        scale["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.autoscaling.v1.Scale"
    );
}

#[test]
fn core_document_has_pod_subresources_and_upstream_operation_ids() {
    let api = openapi();
    let d = doc(&api, "api/v1");
    let paths = &d["paths"];
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/pods"]["get"]["operationId"],
        "listCoreV1NamespacedPod"
    );
    assert_eq!(
        paths["/api/v1/pods"]["get"]["operationId"],
        "listCoreV1PodForAllNamespaces"
    );
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"]["operationId"],
        "readCoreV1NamespacedPodLog"
    );
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["get"]["x-kubernetes-action"],
        "connect"
    );
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]["x-kubernetes-group-version-kind"]
            ["group"],
        "policy"
    );
    assert_eq!(
        paths["/api/v1/watch/namespaces/{namespace}/pods"]["get"]["x-kubernetes-action"],
        "watchlist"
    );
    assert!(
        paths["/api/v1/namespaces"].get("delete").is_none(),
        "no deletecollection"
    );
    let int_or_string = &d["components"]["schemas"][INT_OR_STRING];
    assert_eq!(int_or_string["format"], "int-or-string");
    let rbac = doc(&api, "apis/rbac.authorization.k8s.io/v1");
    assert_eq!(
        rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles"]["get"]["tags"][0],
        "rbacAuthorization_v1"
    );
    let authz = doc(&api, "apis/authorization.k8s.io/v1");
    let review = &authz["paths"]["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"];
    assert!(review.get("post").is_some());
    assert!(review.get("get").is_none());
}

#[test]
fn v2_json_uses_definitions_refs() {
    let api = openapi();
    let v2: Value = serde_json::from_slice(api.v2_json()).unwrap();
    assert_eq!(v2["swagger"], "2.0");
    let defs = v2["definitions"].as_object().unwrap();
    let dep = &defs["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        dep["properties"]["spec"]["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert!(dep["properties"]["spec"]["description"].is_string());
    assert_eq!(
        dep["x-kubernetes-group-version-kind"][0]["kind"],
        "Deployment"
    );
    assert_eq!(defs[INT_OR_STRING]["type"], "string");
    let text = String::from_utf8(api.v2_json().to_vec()).unwrap();
    assert!(!text.contains("#/components/schemas/"));
    let mut names = Vec::new();
    fn v2_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    out.push(r.clone());
                }
                if let Some(Value::Array(all)) = o.get("allOf") {
                    assert!(
                        all.len() != 1 || all[0].get("$ref").is_none(),
                        "lone allOf in v2"
                    );
                }
                o.values().for_each(|x| v2_refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| v2_refs(x, out)),
            _ => {}
        }
    }
    v2_refs(&v2, &mut names);
    for r in names {
        let name = r.strip_prefix("#/definitions/").unwrap();
        assert!(defs.contains_key(name), "{name}");
    }
    let patch = &v2["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(patch["parameters"][0]["in"], "body");
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
}

/// A minimal protobuf reader for checking the gnostic encoding.
fn fields(mut data: &[u8]) -> Vec<(u32, Result<&[u8], u64>)> {
    fn varint(data: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = data[0];
            *data = &data[1..];
            v |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return v;
            }
        }
    }
    let mut out = Vec::new();
    while !data.is_empty() {
        let key = varint(&mut data);
        let tag = (key >> 3) as u32;
        match key & 7 {
            0 => out.push((tag, Err(varint(&mut data)))),
            1 => {
                out.push((tag, Err(u64::from_le_bytes(data[..8].try_into().unwrap()))));
                data = &data[8..];
            }
            2 => {
                let len = varint(&mut data) as usize;
                out.push((tag, Ok(&data[..len])));
                data = &data[len..];
            }
            w => panic!("wire type {w}"),
        }
    }
    out
}

fn sub(data: &[u8], tag: u32) -> Vec<&[u8]> {
    fields(data)
        .into_iter()
        .filter(|(t, _)| *t == tag)
        .filter_map(|(_, v)| v.ok())
        .collect()
}

fn text(data: &[u8], tag: u32) -> String {
    sub(data, tag)
        .first()
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .unwrap_or_default()
}

/// `repeated NamedAny` → (name, yaml).
fn extensions(data: &[u8], tag: u32) -> Vec<(String, String)> {
    sub(data, tag)
        .into_iter()
        .map(|named| {
            let value = sub(named, 2)[0];
            (text(named, 1), text(value, 2))
        })
        .collect()
}

#[test]
fn v2_protobuf_is_what_kubectl_1_27_reads() {
    let api = openapi();
    let doc = api.v2_protobuf();
    assert_eq!(text(doc, 1), "2.0");

    // Definitions: NamedSchema{name, Schema} with the GVK vendor extension (YAML = JSON).
    let defs = sub(doc, 9)[0];
    let dep = sub(defs, 1)
        .into_iter()
        .find(|n| text(n, 1) == "io.k8s.api.apps.v1.Deployment")
        .unwrap();
    let schema = sub(dep, 2)[0];
    let gvk = extensions(schema, 31)
        .into_iter()
        .find(|(n, _)| n == "x-kubernetes-group-version-kind")
        .unwrap()
        .1;
    let gvk: Value = serde_json::from_str(&gvk).unwrap();
    assert_eq!(gvk[0]["kind"], "Deployment");
    assert_eq!(sub(sub(schema, 22)[0], 1), vec![b"object".as_slice()]);
    let props = sub(schema, 25)[0];
    let spec = sub(props, 1)
        .into_iter()
        .find(|n| text(n, 1) == "spec")
        .unwrap();
    assert_eq!(
        text(sub(spec, 2)[0], 1),
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );

    // Paths: the PATCH of deployments has the GVK and a fieldValidation query parameter
    // (Parameter.non_body_parameter.query_parameter_sub_schema.name).
    let paths = sub(doc, 8)[0];
    let item = sub(paths, 2)
        .into_iter()
        .find(|n| text(n, 1) == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
        .unwrap();
    let path_item = sub(item, 2)[0];
    let patch = sub(path_item, 8)[0];
    let op_gvk = extensions(patch, 13)
        .into_iter()
        .find(|(n, _)| n == "x-kubernetes-group-version-kind")
        .unwrap()
        .1;
    let op_gvk: Value = serde_json::from_str(&op_gvk).unwrap();
    assert_eq!(
        op_gvk,
        json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    let query_names: Vec<String> = sub(patch, 8)
        .into_iter()
        .filter_map(|item| sub(item, 1).first().copied())
        .filter_map(|param| sub(param, 2).first().copied())
        .filter_map(|non_body| sub(non_body, 3).first().copied())
        .map(|q| text(q, 4))
        .collect();
    assert!(
        query_names.contains(&"fieldValidation".to_string()),
        "{query_names:?}"
    );
    let body = sub(patch, 8)
        .into_iter()
        .filter_map(|item| sub(item, 1).first().copied())
        .find_map(|param| sub(param, 1).first().copied())
        .unwrap();
    assert_eq!(text(body, 3), "body");
}

#[test]
fn building_is_cheap_and_rendering_is_lazy() {
    let start = std::time::Instant::now();
    let api = openapi();
    let built = start.elapsed();
    assert!(api.v3.get().is_none() && api.v2_json.get().is_none());
    // Debug builds are slow; this only guards against accidental eager rendering.
    assert!(built.as_secs() < 5, "{built:?}");
}

#[test]
fn protobuf_is_chosen_by_either_media_type_spelling() {
    assert!(v2_wants_protobuf(
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    ));
    assert!(v2_wants_protobuf(
        "application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    ));
    assert!(!v2_wants_protobuf("application/json"));
    // The answer's type must parse as a media type (no '@').
    assert!(!V2_PROTOBUF_CONTENT_TYPE.contains('@'));
}

fn widget(version: &str, schema: Value) -> ResourceInfo {
    ResourceInfo {
        group: "example.com".into(),
        version: version.into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
        singular: "widget".into(),
        namespaced: true,
        verbs: [
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "create",
            "update",
            "watch",
        ]
        .map(String::from)
        .to_vec(),
        short_names: vec!["wd".into()],
        categories: vec!["all".into()],
        subresources: vec![
            beemesh_translator::SubresourceInfo {
                name: "status".into(),
                group: "example.com".into(),
                version: version.into(),
                kind: "Widget".into(),
                verbs: ["get", "patch", "update"].map(String::from).to_vec(),
            },
            beemesh_translator::SubresourceInfo {
                name: "scale".into(),
                group: "autoscaling".into(),
                version: "v1".into(),
                kind: "Scale".into(),
                verbs: ["get", "patch", "update"].map(String::from).to_vec(),
            },
        ],
        list_kind: "WidgetList".into(),
        definition: String::new(),
        custom: Some(Arc::new(beemesh_translator::registry::CustomVersion {
            crd_name: "widgets.example.com".into(),
            schema: Some(schema),
            storage: true,
            status: true,
            ..Default::default()
        })),
    }
}

fn widget_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "description": "Desired state.",
                     "properties": {"size": {"type": "integer", "description": "How big."}}}
        }
    })
}

#[test]
fn custom_resources_are_published_with_their_schemas() {
    let registry = Registry::builtin();
    registry.insert(widget("v1", widget_schema()));
    let api = OpenApi::build(&registry, Catalog::builtin());
    let d = doc(&api, "apis/example.com/v1");
    let widget = &d["components"]["schemas"]["com.example.v1.Widget"];
    assert_eq!(
        widget["properties"]["spec"]["properties"]["size"]["type"],
        "integer"
    );
    assert_eq!(
        widget["x-kubernetes-group-version-kind"],
        json!([{"group": "example.com", "kind": "Widget", "version": "v1"}])
    );
    let meta = resolve(&d, &widget["properties"]["metadata"]);
    assert!(meta["properties"]["name"].is_object());
    assert!(d["components"]["schemas"]["com.example.v1.WidgetList"].is_object());
    assert!(d["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());
    let item = &d["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"];
    let patch = &item["patch"];
    assert_eq!(patch["operationId"], "patchExampleComV1NamespacedWidget");
    assert_eq!(
        patch["requestBody"]["content"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        [
            "application/apply-patch+yaml",
            "application/json-patch+json",
            "application/merge-patch+json"
        ]
    );
    // kubectl checks PATCH operations for fieldValidation before relying on the server.
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
    assert_eq!(
        item["get"]["x-kubernetes-group-version-kind"],
        json!({"group": "example.com", "kind": "Widget", "version": "v1"})
    );
    assert!(
        d["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/scale"]["put"]
            .is_object()
    );
    assert!(
        d["paths"]
            .as_object()
            .unwrap()
            .keys()
            .all(|p| !p.contains("/watch/"))
    );
    // Only the resource's own routes, as apiextensions-apiserver publishes them.
    assert!(d["paths"].get("/apis/example.com/v1/").is_none());

    // Swagger 2.0 (JSON and protobuf) carries the v2 form.
    let v2: Value = serde_json::from_slice(api.v2_json()).unwrap();
    let widget = &v2["definitions"]["com.example.v1.Widget"];
    assert_eq!(
        widget["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(
        widget["properties"]["spec"]["properties"]["size"]["description"],
        "How big."
    );
    assert!(v2["paths"]["/apis/example.com/v1/widgets"]["get"].is_object());
    assert!(!api.v2_protobuf().is_empty());
}

#[test]
fn live_documents_follow_the_registry() {
    let registry = Arc::new(Registry::builtin());
    let live = LiveOpenApi::new(registry.clone(), Catalog::builtin());
    let before = live.current();
    assert!(before.v3_group_version("apis/example.com/v1").is_none());
    // Unchanged registry: the same documents.
    assert!(Arc::ptr_eq(&before, &live.current()));

    registry.insert(widget("v1", widget_schema()));
    let after = live.current();
    assert!(after.v3_group_version("apis/example.com/v1").is_some());
    assert!(
        after.v3_index()["paths"]["apis/example.com/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .starts_with("/openapi/v3/apis/example.com/v1?hash=")
    );
    // Re-registering the same version does not rebuild.
    registry.insert(widget("v1", widget_schema()));
    assert!(Arc::ptr_eq(&after, &live.current()));

    // A changed schema does, with a new hash.
    let (_, old_hash) = after.v3_group_version("apis/example.com/v1").unwrap();
    let mut schema = widget_schema();
    schema["properties"]["spec"]["properties"]["colour"] = json!({"type": "string"});
    registry.insert(widget("v1", schema));
    let changed = live.current();
    let (_, new_hash) = changed.v3_group_version("apis/example.com/v1").unwrap();
    assert_ne!(old_hash, new_hash);

    registry.remove("example.com", "v1", "widgets");
    assert!(
        live.current()
            .v3_group_version("apis/example.com/v1")
            .is_none()
    );
    let v2: Value = serde_json::from_slice(live.current().v2_json()).unwrap();
    assert!(v2["definitions"].get("com.example.v1.Widget").is_none());
}
