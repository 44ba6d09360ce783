//! CustomResourceDefinitions with real kubectl (1.27, 1.31, 1.32, 1.33): a CRD becomes
//! Established (`kubectl wait --for condition=established`), custom resources are created,
//! read by plural and short name, patched, scaled, validated (kubectl prints the server's
//! field errors) and deleted with their CRD. One multi-node case: a CRD created through
//! node A serves its kind through node B, and a custom resource written through B is read
//! through A.

use std::time::{Duration, Instant};

use beemesh_conformance::{Ctx, Kubectl, Mesh, eventually, kubectl_cases, run_recorded, skip};

kubectl_cases!(
    crd_established_and_crud,
    crd_invalid_objects,
    crd_subresources_and_patch_types,
    crd_delete_cascades,
);

const ESTABLISH: Duration = Duration::from_secs(30);

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.example.org
spec:
  group: example.org
  scope: Namespaced
  names:
    plural: gizmos
    singular: gizmo
    kind: Gizmo
    shortNames: [gz]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            x-kubernetes-validations:
            - rule: "self.size <= self.maxSize"
              message: size must not exceed maxSize
            properties:
              size:
                type: integer
                minimum: 1
              maxSize:
                type: integer
                default: 10
              colour:
                type: string
                enum: [red, blue]
                default: red
              replicas:
                type: integer
          status:
            type: object
            properties:
              replicas:
                type: integer
              phase:
                type: string
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

fn gizmo(name: &str, spec: &str) -> String {
    format!("apiVersion: example.org/v1\nkind: Gizmo\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

/// Creates the CRD and waits as Helm and users do: `kubectl wait --for condition=established`.
fn install(k: &Kubectl) {
    k.create(CRD);
    k.run(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=30s",
        "crd/gizmos.example.org",
    ])
    .ok()
    .stdout_has("condition met");
    // Discovery caches are per kubectl run; the kind is served once established.
    eventually(ESTABLISH, || {
        let out = k.run(&["get", "gizmos"]);
        if out.code == 0 {
            Ok(())
        } else {
            Err(format!("gizmos are not served yet: {out}"))
        }
    });
}

fn crd_established_and_crud(ctx: &Ctx) {
    let k = &ctx.kubectl;
    install(k);
    let crd = k.get_json(&["crd", "gizmos.example.org"]);
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "Gizmo", "{crd}");
    assert_eq!(crd["status"]["storedVersions"][0], "v1", "{crd}");
    assert_eq!(
        crd["metadata"]["finalizers"][0],
        "customresourcecleanup.apiextensions.k8s.io"
    );

    k.apply(&gizmo("g1", "  size: 2\n  replicas: 1\n"))
        .stdout_has("gizmo.example.org/g1 created");
    k.apply(&gizmo("g2", "  size: 3\n"));
    // Defaults were applied.
    let g1 = k.get_json(&["gizmo", "g1"]);
    assert_eq!(g1["spec"]["colour"], "red", "{g1}");
    assert_eq!(g1["spec"]["maxSize"], 10, "{g1}");
    assert_eq!(g1["metadata"]["generation"], 1, "{g1}");
    // Plural, singular, short name and fully qualified names.
    for kind in [
        "gizmos",
        "gizmo",
        "gz",
        "gizmos.example.org",
        "gizmos.v1.example.org",
    ] {
        let out = k.run(&["get", kind, "-o", "name"]).ok();
        assert_eq!(
            out.stdout.lines().collect::<Vec<_>>(),
            ["gizmo.example.org/g1", "gizmo.example.org/g2"],
            "get {kind}: {out}"
        );
    }
    // The other served version reads the same object.
    let beta = k.get_json(&["gizmos.v1beta1.example.org", "g1"]);
    assert_eq!(beta["apiVersion"], "example.org/v1beta1", "{beta}");
    assert_eq!(beta["spec"]["size"], 2, "{beta}");

    // Client-side apply of a change is a merge patch; kubectl patch --type=merge/json.
    k.apply(&gizmo("g1", "  size: 4\n  replicas: 1\n"))
        .stdout_has("gizmo.example.org/g1 configured");
    k.run(&[
        "patch",
        "gizmo",
        "g1",
        "--type=merge",
        "-p",
        r#"{"spec":{"colour":"blue"}}"#,
    ])
    .ok();
    k.run(&[
        "patch",
        "gz",
        "g1",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/size","value":5}]"#,
    ])
    .ok();
    let g1 = k.get_json(&["gizmo", "g1"]);
    assert_eq!(g1["spec"]["size"], 5, "{g1}");
    assert_eq!(g1["spec"]["colour"], "blue", "{g1}");
    assert_eq!(g1["metadata"]["generation"], 4, "{g1}");

    // A watch sees changes.
    let mut watch = k
        .spawn(&["get", "gizmos", "--watch", "-o", "name"])
        .expect("kubectl get --watch starts");
    k.apply(&gizmo("g3", "  size: 1\n"));
    watch
        .wait_for_line(Duration::from_secs(15), |l| {
            l.contains("gizmo.example.org/g3")
        })
        .unwrap_or_else(|| panic!("watch did not show g3: {:?}", watch.seen()));

    k.run(&["delete", "gizmo", "g2"])
        .ok()
        .stdout_has("gizmo.example.org \"g2\" deleted");
    let out = k.run(&["get", "gizmo", "g2"]).failed();
    assert!(
        out.stderr.contains("NotFound") || out.stderr.contains("not found"),
        "{out}"
    );
}

fn crd_invalid_objects(ctx: &Ctx) {
    let k = &ctx.kubectl;
    // A CRD whose schema is not structural: kubectl prints the server's field path.
    let bad_crd = CRD.replacen(
        "          spec:\n            type: object\n",
        "          spec:\n",
        1,
    );
    let out = k.run_stdin(&["create", "-f", "-"], &bad_crd).failed();
    assert!(
        out.stderr
            .contains("The CustomResourceDefinition \"gizmos.example.org\" is invalid"),
        "{out}"
    );
    assert!(
        out.stderr.contains(
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value"
        ),
        "{out}"
    );
    k.run(&["get", "crd", "gizmos.example.org"]).failed();

    install(k);
    // Type errors, enum and required: one 422 with every cause.
    let out = k
        .run_stdin(
            &["apply", "-f", "-"],
            &gizmo("bad", "  size: big\n  colour: pink\n"),
        )
        .failed();
    for needle in [
        "The Gizmo \"bad\" is invalid",
        "spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\"",
        "spec.colour: Unsupported value: \"pink\": supported values: \"red\", \"blue\"",
    ] {
        assert!(out.stderr.contains(needle), "lacks {needle:?}: {out}");
    }
    let out = k
        .run_stdin(&["create", "-f", "-"], &gizmo("small", "  size: 0\n"))
        .failed();
    assert!(
        out.stderr.contains(
            "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"
        ),
        "{out}"
    );
    // CEL rule.
    let out = k
        .run_stdin(
            &["create", "-f", "-"],
            &gizmo("huge", "  size: 20\n  maxSize: 5\n"),
        )
        .failed();
    assert!(
        out.stderr
            .contains("spec: Invalid value: \"object\": size must not exceed maxSize"),
        "{out}"
    );
    // Unknown fields: refused under strict validation, a warning under warn.
    let out = k
        .run_stdin(
            &["create", "--validate=strict", "-f", "-"],
            &gizmo("strict", "  size: 1\n  bogus: true\n"),
        )
        .failed();
    assert!(out.stderr.contains("unknown field \"spec.bogus\""), "{out}");
    let out = k
        .run_stdin(
            &["create", "--validate=warn", "-f", "-"],
            &gizmo("warned", "  size: 1\n  bogus: true\n"),
        )
        .ok();
    assert!(out.stderr.contains("unknown field \"spec.bogus\""), "{out}");
    let warned = k.get_json(&["gizmo", "warned"]);
    assert!(warned["spec"].get("bogus").is_none(), "pruned: {warned}");
}

fn crd_subresources_and_patch_types(ctx: &Ctx) {
    let k = &ctx.kubectl;
    install(k);
    k.apply(&gizmo("s1", "  size: 1\n  replicas: 1\n"));
    k.run(&["scale", "gizmo", "s1", "--replicas=3"])
        .ok()
        .stdout_has("gizmo.example.org/s1 scaled");
    let s1 = k.get_json(&["gizmo", "s1"]);
    assert_eq!(s1["spec"]["replicas"], 3, "{s1}");
    assert_eq!(s1["metadata"]["generation"], 2, "{s1}");
    // The status subresource changes status only, and not the generation.
    k.run(&[
        "patch",
        "gizmo",
        "s1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":3,"phase":"Ready"},"spec":{"size":9}}"#,
    ])
    .ok();
    let s1 = k.get_json(&["gizmo", "s1"]);
    assert_eq!(s1["status"]["phase"], "Ready", "{s1}");
    assert_eq!(s1["spec"]["size"], 1, "{s1}");
    assert_eq!(s1["metadata"]["generation"], 2, "{s1}");
    // The main resource ignores status.
    k.run(&[
        "patch",
        "gizmo",
        "s1",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Hacked"}}"#,
    ])
    .ok();
    assert_eq!(k.get_json(&["gizmo", "s1"])["status"]["phase"], "Ready");
    // kubectl patch defaults to a strategic merge patch, which custom resources refuse.
    let out = k
        .run(&["patch", "gizmo", "s1", "-p", r#"{"spec":{"size":2}}"#])
        .failed();
    assert!(
        out.stderr.contains("strategic-merge-patch")
            && out.stderr.contains("application/merge-patch+json"),
        "{out}"
    );
}

fn crd_delete_cascades(ctx: &Ctx) {
    let k = &ctx.kubectl;
    install(k);
    k.apply(&gizmo("d1", "  size: 1\n"));
    k.apply(&gizmo("d2", "  size: 1\n"));
    k.run(&[
        "delete",
        "crd",
        "gizmos.example.org",
        "--wait=true",
        "--timeout=60s",
    ])
    .ok()
    .stdout_has("deleted");
    eventually(ESTABLISH, || {
        let out = k.run(&["get", "gizmos"]);
        // Depending on kubectl's discovery cache: no such type, or the path is gone.
        let gone = out
            .stderr
            .contains("the server doesn't have a resource type")
            || out
                .stderr
                .contains("the server could not find the requested resource");
        if out.code != 0 && gone {
            Ok(())
        } else {
            Err(format!("gizmos are still served: {out}"))
        }
    });
    // Re-created, the kind starts empty: the old gizmos went with the CRD.
    install(k);
    let out = k.run(&["get", "gizmos", "-o", "name"]).ok();
    assert_eq!(out.stdout.trim(), "", "{out}");
}

/// Created through A, the CRD serves its kind through B; a custom resource written
/// through B is read through A; the CRD deleted through B disappears from A.
fn mesh_crd_across_nodes() -> String {
    let mesh = match Mesh::start(2) {
        Ok(m) => m,
        Err(e) => panic!("a mesh of 2 did not start: {e}"),
    };
    let kubectl = |i: usize| match Kubectl::new("1.33", &mesh.node(i).kubeconfig()) {
        Ok(k) => k,
        Err(why) => skip(why),
    };
    let (ka, kb) = (kubectl(0), kubectl(1));
    let started = Instant::now();
    ka.create(CRD);
    kb.run(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=30s",
        "crd/gizmos.example.org",
    ])
    .ok();
    eventually(ESTABLISH, || {
        let out = kb.run(&["get", "gizmos"]);
        if out.code == 0 {
            Ok(())
        } else {
            Err(format!("B does not serve gizmos yet: {out}"))
        }
    });
    let served_on_b = started.elapsed();
    kb.apply(&gizmo("via-b", "  size: 2\n"))
        .stdout_has("gizmo.example.org/via-b created");
    let on_a = eventually(ESTABLISH, || {
        let out = ka.run(&["get", "gizmo", "via-b", "-o", "json"]);
        if out.code == 0 {
            Ok(out.json())
        } else {
            Err(format!("A does not have via-b: {out}"))
        }
    });
    assert_eq!(on_a["spec"]["colour"], "red", "defaulted on B: {on_a}");
    // A bad one is refused through B with the schema's field paths.
    let out = kb
        .run_stdin(&["create", "-f", "-"], &gizmo("bad", "  size: big\n"))
        .failed();
    assert!(
        out.stderr
            .contains("spec.size in body must be of type integer"),
        "{out}"
    );
    kb.run(&[
        "patch",
        "gizmo",
        "via-b",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":3}}"#,
    ])
    .ok();
    eventually(ESTABLISH, || {
        let got = ka.get_json(&["gizmo", "via-b"]);
        if got["spec"]["size"] == 3 {
            Ok(())
        } else {
            Err(format!("A has not seen the patch: {got}"))
        }
    });
    kb.run(&["delete", "crd", "gizmos.example.org", "--timeout=60s"])
        .ok();
    eventually(ESTABLISH, || {
        let out = ka.run(&["get", "gizmos"]);
        if out.code != 0 {
            Ok(())
        } else {
            Err(format!("A still serves gizmos: {out}"))
        }
    });
    format!(
        "served through B {} ms after the create through A",
        served_on_b.as_millis()
    )
}

#[test]
fn mesh_crd_across_nodes_kubectl_1_33() {
    run_recorded(
        "mesh_crd_across_nodes",
        "kubectl-1.33",
        mesh_crd_across_nodes,
    );
}
