//! Custom resources as kubectl 1.27, 1.31, 1.32 and 1.33 see them once a CRD is applied:
//! `explain` from the published schema, `get` with the CRD's printer columns (and `-o wide`
//! for priority columns), short names and categories, `api-resources`, deprecation warnings.

use std::time::Duration;

use beemesh_conformance::{Ctx, Kubectl, Output, eventually, kubectl_cases};

kubectl_cases!(
    crd_api_resources,
    crd_explain,
    crd_apply_validation,
    crd_get_printer_columns,
    crd_short_names_and_categories,
    crd_deprecated_version,
);

/// How long a freshly applied CRD may take to be served.
const ESTABLISH: Duration = Duration::from_secs(30);

const SCHEMA: &str = r#"
        type: object
        description: Widget is a thing the conformance suite makes.
        properties:
          spec:
            type: object
            description: WidgetSpec is what the widget should be.
            properties:
              replicas:
                type: integer
                description: Replicas is how many copies of the widget to run.
              colour:
                type: string
                description: Colour of the paint.
          status:
            type: object
            properties:
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type:
                      type: string
                    status:
                      type: string"#;

const COLUMNS: &str = r#"    additionalPrinterColumns:
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    - name: Ready
      type: string
      jsonPath: .status.conditions[?(@.type=="Ready")].status
    - name: Colour
      type: string
      priority: 1
      description: The paint.
      jsonPath: .spec.colour
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
"#;

/// `widgets.example.com`: v1 (storage) and a deprecated v1beta1, namespaced, short name
/// `wd`, categories `all` and `gadgets`.
fn crd() -> String {
    let version = |name: &str, storage: bool, deprecated: bool| {
        let mut v = format!(
            "  - name: {name}\n    served: true\n    storage: {storage}\n    schema:\n      openAPIV3Schema:{}\n",
            SCHEMA.replace("\n", "\n  ")
        );
        if deprecated {
            v.push_str("    deprecated: true\n");
        }
        v.push_str(COLUMNS);
        v
    };
    format!(
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    listKind: WidgetList
    shortNames: [wd]
    categories: [all, gadgets]
  versions:
{}{}",
        version("v1", true, false),
        version("v1beta1", false, true)
    )
}

fn widget(name: &str, replicas: i64, colour: &str, ready: &str) -> String {
    format!(
        "apiVersion: example.com/v1
kind: Widget
metadata:
  name: {name}
spec:
  replicas: {replicas}
  colour: {colour}
status:
  conditions:
  - type: Synced
    status: \"True\"
  - type: Ready
    status: \"{ready}\"
"
    )
}

/// Applies the CRD and waits until kubectl can list widgets.
fn install(k: &Kubectl) {
    k.apply(&crd());
    eventually(ESTABLISH, || {
        let out = k.run(&["get", "widgets"]);
        if out.code == 0 {
            Ok(())
        } else {
            Err(format!("widgets are not served yet: {out}"))
        }
    });
}

fn install_with_widgets(k: &Kubectl) {
    install(k);
    k.apply(&widget("small", 1, "red", "True"));
    k.apply(&widget("large", 5, "blue", "False"));
}

#[track_caller]
fn field_line(out: &Output, name: &str) -> String {
    out.stdout
        .lines()
        .map(str::trim_start)
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no field line {name:?}: {out}"))
        .to_string()
}

fn crd_api_resources(ctx: &Ctx) {
    let k = &ctx.kubectl;
    install(k);
    let out = k.run(&["api-resources"]).ok();
    let table = out.table();
    let row = table
        .rows
        .iter()
        .find(|r| r.first().map(String::as_str) == Some("widgets"))
        .unwrap_or_else(|| panic!("api-resources lacks widgets: {out}"));
    // The preferred version is v1 (GA before beta), whatever order the CRD lists them in.
    assert_eq!(
        row,
        &["widgets", "wd", "example.com/v1", "true", "Widget"],
        "{out}"
    );
    let out = k
        .run(&["api-resources", "--api-group=example.com", "-o", "wide"])
        .ok();
    let table = out.table();
    assert_eq!(table.cell("widgets", "KIND"), "Widget", "{out}");
    let categories = table.cell("widgets", "CATEGORIES");
    assert!(
        categories.contains("all") && categories.contains("gadgets"),
        "{out}"
    );
    let verbs = table.cell("widgets", "VERBS");
    for verb in [
        "create", "delete", "get", "list", "patch", "update", "watch",
    ] {
        assert!(verbs.contains(verb), "verbs lack {verb}: {out}");
    }
    let out = k.run(&["api-versions"]).ok();
    for gv in ["example.com/v1", "example.com/v1beta1"] {
        assert!(
            out.stdout.lines().any(|l| l.trim() == gv),
            "api-versions lacks {gv}: {out}"
        );
    }
}

fn crd_explain(ctx: &Ctx) {
    let k = &ctx.kubectl;
    install(k);
    // The OpenAPI documents are rebuilt for the new CRD; give a lagging node a moment.
    let out = eventually(ESTABLISH, || {
        let out = k.run(&["explain", "widgets.spec"]);
        if out.code == 0 {
            Ok(out)
        } else {
            Err(format!("explain failed: {out}"))
        }
    });
    for needle in [
        "Widget",
        "DESCRIPTION:",
        "WidgetSpec is what the widget should be.",
        "FIELDS:",
        "Replicas is how many copies of the widget to run.",
    ] {
        assert!(
            out.stdout.contains(needle),
            "explain lacks {needle:?}: {out}"
        );
    }
    // v3 explain prints `GROUP: example.com` + `VERSION: v1`; v2 explain `VERSION: example.com/v1`.
    let names_group = out.stdout.lines().any(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words == ["GROUP:", "example.com"] || words == ["VERSION:", "example.com/v1"]
    });
    assert!(names_group, "explain does not name the group: {out}");
    assert!(field_line(&out, "replicas").contains("<integer>"), "{out}");
    assert!(field_line(&out, "colour").contains("<string>"), "{out}");

    // The kind itself: metadata is ObjectMeta, as for built-ins.
    let out = k.run(&["explain", "widgets"]).ok();
    assert!(
        out.stdout
            .contains("Widget is a thing the conformance suite makes."),
        "{out}"
    );
    assert!(
        field_line(&out, "metadata").contains("<ObjectMeta>"),
        "{out}"
    );
    assert!(field_line(&out, "apiVersion").contains("<string>"), "{out}");
    // A nested field of metadata resolves through ObjectMeta's schema.
    k.run(&["explain", "widgets.metadata.labels"])
        .ok()
        .stdout_has("labels");
    // And a field that does not exist is refused.
    let out = k.run(&["explain", "widgets.spec.nope"]);
    assert_ne!(out.code, 0, "explain of a missing field succeeded: {out}");

    // The swagger 2.0 models (protobuf /openapi/v2) describe the kind too.
    let out = k
        .run(&["explain", "widgets.spec", "--output=plaintext-openapiv2"])
        .ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["VERSION:", "example.com/v1"]),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("Replicas is how many copies of the widget to run."),
        "{out}"
    );
    assert!(field_line(&out, "replicas").contains("<integer>"), "{out}");
}

fn crd_apply_validation(ctx: &Ctx) {
    let k = &ctx.kubectl;
    install(k);
    let bogus =
        widget("odd", 2, "red", "True").replace("  colour: red\n", "  colour: red\n  bogus: 1\n");
    // kubectl finds fieldValidation on the CR's PATCH operation and leaves checking to the
    // server, which knows the schema.
    let out = k.run_stdin(&["apply", "-f", "-"], &bogus);
    assert_ne!(out.code, 0, "an unknown field was accepted: {out}");
    assert!(
        out.stderr.contains(r#"unknown field "spec.bogus""#),
        "{out}"
    );
    let out = k
        .run_stdin(&["apply", "--validate=false", "-f", "-"], &bogus)
        .ok();
    assert!(
        out.stdout.contains("widget.example.com/odd created"),
        "{out}"
    );
    let spec = k.get_json(&["widget", "odd"])["spec"].clone();
    assert_eq!(spec["replicas"], 2, "{spec}");
    assert!(spec.get("bogus").is_none(), "unknown field kept: {spec}");
    // A valid change applies as a merge patch (no strategic merge for custom resources).
    let out = k.apply(&widget("odd", 4, "green", "True"));
    assert!(out.stdout.contains("configured"), "{out}");
    assert_eq!(k.get_json(&["widget", "odd"])["spec"]["colour"], "green");
}

fn crd_get_printer_columns(ctx: &Ctx) {
    let k = &ctx.kubectl;
    install_with_widgets(k);
    let out = k.run(&["get", "widgets"]).ok();
    let table = out.table();
    assert_eq!(table.headers, ["NAME", "REPLICAS", "READY", "AGE"], "{out}");
    assert_eq!(table.cell("small", "REPLICAS"), "1", "{out}");
    assert_eq!(table.cell("small", "READY"), "True", "{out}");
    assert_eq!(table.cell("large", "REPLICAS"), "5", "{out}");
    assert_eq!(table.cell("large", "READY"), "False", "{out}");
    // Ages are relative (`5s`), not timestamps.
    let age = table.cell("small", "AGE");
    assert!(
        age.ends_with('s') || age.ends_with('m'),
        "AGE is not an age: {age:?}: {out}"
    );

    // Priority columns only with -o wide.
    let out = k.run(&["get", "widgets", "-o", "wide"]).ok();
    let table = out.table();
    assert_eq!(
        table.headers,
        ["NAME", "REPLICAS", "READY", "COLOUR", "AGE"],
        "{out}"
    );
    assert_eq!(table.cell("large", "COLOUR"), "blue", "{out}");

    // One object, and across namespaces.
    let out = k.run(&["get", "widget", "small"]).ok();
    assert_eq!(out.table().cell("small", "REPLICAS"), "1", "{out}");
    let out = k.run(&["get", "widgets", "-A"]).ok();
    let table = out.table();
    assert_eq!(
        table.headers,
        ["NAMESPACE", "NAME", "REPLICAS", "READY", "AGE"],
        "{out}"
    );

    // Changes show up in the columns.
    k.run(&[
        "patch",
        "widget",
        "small",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":3}}"#,
    ])
    .ok();
    let out = k.run(&["get", "widgets", "small"]).ok();
    assert_eq!(out.table().cell("small", "REPLICAS"), "3", "{out}");

    // Watching prints rows with the same columns.
    let mut watch = k
        .spawn(&["get", "widgets", "--watch"])
        .expect("kubectl get --watch starts");
    watch
        .wait_for_line(Duration::from_secs(15), |l| l.starts_with("large"))
        .unwrap_or_else(|| panic!("watch printed no row for large: {:?}", watch.seen()));
    let header = watch.seen().first().cloned().unwrap_or_default();
    assert!(
        header.contains("REPLICAS") && header.contains("READY"),
        "watch header: {header:?}"
    );
}

fn crd_short_names_and_categories(ctx: &Ctx) {
    let k = &ctx.kubectl;
    install_with_widgets(k);
    let out = k.run(&["get", "wd"]).ok();
    assert_eq!(
        out.table().names(),
        ["large", "small"],
        "`get wd` does not list the widgets: {out}"
    );
    // A category with one kind in it prints like that kind.
    let out = k.run(&["get", "gadgets"]).ok();
    assert_eq!(out.table().names(), ["large", "small"], "{out}");
    assert_eq!(out.table().cell("large", "REPLICAS"), "5", "{out}");
    // `all` includes custom resources that join the category, after the built-ins.
    k.run(&["create", "configmap", "not-in-all", "--from-literal=a=b"])
        .ok();
    let out = k.run(&["get", "all"]).ok();
    for needle in ["widget.example.com/small", "widget.example.com/large"] {
        assert!(out.stdout.contains(needle), "get all lacks {needle}: {out}");
    }
    assert!(!out.stdout.contains("not-in-all"), "{out}");
    // Fully qualified names resolve too.
    k.run(&["get", "widgets.example.com", "small"]).ok();
    k.run(&["get", "widgets.v1.example.com", "small"]).ok();
}

fn crd_deprecated_version(ctx: &Ctx) {
    let k = &ctx.kubectl;
    install_with_widgets(k);
    let out = k.run(&["get", "widgets.v1beta1.example.com", "small"]).ok();
    assert!(
        out.stderr
            .contains("example.com/v1beta1 Widget is deprecated"),
        "no deprecation warning: {out}"
    );
    // The preferred version does not warn.
    let out = k.run(&["get", "widgets", "small"]).ok();
    assert!(!out.stderr.contains("deprecated"), "{out}");
}
