//! kubectl 1.27, 1.31, 1.32 and 1.33 against a live node: every case runs once per version
//! (`case::kubectl_1_NN`) on a fresh node and asserts on what kubectl prints.

use std::time::{Duration, Instant};

use base64::Engine;
use beemesh_conformance::{Ctx, Kubectl, Output, eventually, has, kubectl_cases, skip};
use serde_json::{Value, json};

kubectl_cases!(
    // discovery and documentation
    version,
    cluster_info,
    api_resources,
    api_resources_wide,
    api_versions,
    short_names,
    explain_field,
    explain_pods,
    bootstrap_objects,
    // create generators
    create_namespace,
    create_configmap,
    create_secret_generic,
    create_secret_docker_registry,
    create_deployment,
    create_service_clusterip,
    create_service_nodeport,
    create_serviceaccount,
    create_job,
    create_cronjob,
    create_role,
    create_rolebinding,
    create_clusterrole,
    create_clusterrolebinding,
    create_quota,
    create_priorityclass,
    create_poddisruptionbudget,
    create_ingress,
    create_token,
    create_from_file,
    create_generate_name,
    create_already_exists,
    run_and_expose,
    // apply
    apply_lifecycle,
    apply_server_side,
    apply_server_side_conflict_message,
    apply_server_side_shared_list_map,
    apply_server_side_removes_dropped_fields,
    apply_client_side_upgrade_to_server_side,
    apply_server_side_diff_and_managed_fields,
    apply_dry_run_server,
    diff,
    // get
    get_pods_table,
    get_deployments_table,
    get_services_table,
    get_configmaps_table,
    get_secrets_table,
    get_namespaces_table,
    get_output_yaml,
    get_output_json,
    get_output_jsonpath,
    get_label_selector,
    get_field_selector,
    get_chunked,
    get_all_namespaces,
    get_all,
    get_not_found,
    get_watch,
    get_watch_events,
    describe,
    // updates
    label,
    annotate,
    patch_strategic,
    patch_merge,
    patch_json,
    patch_status_subresource,
    set_image,
    scale,
    edit,
    replace,
    replace_force,
    wait_for_jsonpath,
    auth_can_i,
    // delete and namespaces
    delete,
    delete_with_finalizer,
    delete_no_wait,
    namespace_lifecycle,
    namespace_terminating,
    namespace_missing,
    // bad input
    invalid_name,
    invalid_spec,
    unknown_field_strict,
    unknown_field_warn,
    malformed_yaml,
    wrong_api_version,
    wrong_kind,
);

// ---------------------------------------------------------------------------------------
// helpers

/// A `Deployment` named `name` with one container `web` running `image`.
fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: web
        image: {image}
"
    )
}

/// A `ConfigMap` named `name` with `data`, optionally with finalizers.
fn configmap(name: &str, data: &[(&str, &str)], finalizers: &[&str]) -> String {
    let mut text = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
    if !finalizers.is_empty() {
        text.push_str("  finalizers:\n");
        for f in finalizers {
            text.push_str(&format!("  - {f}\n"));
        }
    }
    if !data.is_empty() {
        text.push_str("data:\n");
        for (k, v) in data {
            text.push_str(&format!("  {k}: \"{v}\"\n"));
        }
    }
    text
}

/// A pod with one container (no node needed to store it).
fn pod(name: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: [\"sleep\", \"3600\"]
"
    )
}

/// `kubectl get ARGS -o jsonpath=PATH`.
#[track_caller]
fn jsonpath(k: &Kubectl, args: &[&str], path: &str) -> String {
    let flag = format!("-o=jsonpath={path}");
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    full.push(&flag);
    k.run(&full).ok().stdout
}

/// Waits (at most `bound`) until the object's resourceVersion holds still for `quiet`,
/// and returns it: controllers write status while they settle.
fn settled(k: &Kubectl, args: &[&str], quiet: Duration, bound: Duration) -> String {
    let deadline = Instant::now() + bound;
    let mut last = jsonpath(k, args, "{.metadata.resourceVersion}");
    loop {
        std::thread::sleep(quiet);
        let now = jsonpath(k, args, "{.metadata.resourceVersion}");
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Lines of `-o name` output.
fn names(out: &Output) -> Vec<String> {
    out.stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn unb64(text: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("not base64 ({e}): {text:?}"));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Asserts a `Status`-style error: non-zero exit and every needle in stderr.
#[track_caller]
fn fails_with(out: Output, needles: &[&str]) -> Output {
    let out = out.failed();
    for n in needles {
        assert!(out.stderr.contains(n), "stderr lacks {n:?}: {out}");
    }
    out
}

/// Whether the object is gone (`get` says NotFound).
fn is_gone(k: &Kubectl, args: &[&str]) -> Result<(), String> {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    let out = k.run(&full);
    if out.code != 0 && out.stderr.contains("NotFound") {
        Ok(())
    } else {
        Err(format!("still there: {out}"))
    }
}

const SETTLE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// discovery and documentation

fn version(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let v = k.run(&["version", "-o", "json"]).ok().json();
    has(&v, "/serverVersion/major", json!("1"));
    let minor = v["serverVersion"]["minor"].as_str().unwrap_or_default();
    assert!(minor.starts_with("33"), "server minor {minor:?}");
    let git = v["serverVersion"]["gitVersion"]
        .as_str()
        .unwrap_or_default();
    assert!(git.starts_with("v1.33."), "gitVersion {git:?}");
    for field in [
        "gitCommit",
        "gitTreeState",
        "buildDate",
        "goVersion",
        "compiler",
        "platform",
    ] {
        assert!(
            v["serverVersion"][field].is_string(),
            "serverVersion.{field} missing: {v}"
        );
    }
    assert_eq!(v["clientVersion"]["minor"], k.minor().to_string());
    // 1.27 prints `Server Version: version.Info{..GitVersion:"v1.33.x"..}`, later ones `v1.33.x`.
    let plain = k.run(&["version"]).ok();
    let server = plain
        .stdout
        .lines()
        .find(|l| l.starts_with("Server Version:"))
        .unwrap_or_else(|| panic!("no Server Version line: {plain}"));
    assert!(server.contains("v1.33."), "{server}");
}

fn cluster_info(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let out = k.run(&["cluster-info"]).ok();
    assert!(
        out.stdout.contains("is running at") && out.stdout.contains(ctx.node.url()),
        "{out}"
    );
    k.run(&["get", "--raw", "/readyz"]).ok().stdout_has("ok");
    k.run(&["get", "--raw", "/livez"]).ok().stdout_has("ok");
}

/// (name, short names, apiVersion, namespaced, kind) of resources every 1.33 server lists.
const API_RESOURCES: &[(&str, &str, &str, &str, &str)] = &[
    ("bindings", "", "v1", "true", "Binding"),
    ("componentstatuses", "cs", "v1", "false", "ComponentStatus"),
    ("configmaps", "cm", "v1", "true", "ConfigMap"),
    ("endpoints", "ep", "v1", "true", "Endpoints"),
    ("events", "ev", "v1", "true", "Event"),
    ("limitranges", "limits", "v1", "true", "LimitRange"),
    ("namespaces", "ns", "v1", "false", "Namespace"),
    ("nodes", "no", "v1", "false", "Node"),
    (
        "persistentvolumeclaims",
        "pvc",
        "v1",
        "true",
        "PersistentVolumeClaim",
    ),
    ("persistentvolumes", "pv", "v1", "false", "PersistentVolume"),
    ("pods", "po", "v1", "true", "Pod"),
    ("podtemplates", "", "v1", "true", "PodTemplate"),
    (
        "replicationcontrollers",
        "rc",
        "v1",
        "true",
        "ReplicationController",
    ),
    ("resourcequotas", "quota", "v1", "true", "ResourceQuota"),
    ("secrets", "", "v1", "true", "Secret"),
    ("serviceaccounts", "sa", "v1", "true", "ServiceAccount"),
    ("services", "svc", "v1", "true", "Service"),
    (
        "customresourcedefinitions",
        "crd,crds",
        "apiextensions.k8s.io/v1",
        "false",
        "CustomResourceDefinition",
    ),
    (
        "controllerrevisions",
        "",
        "apps/v1",
        "true",
        "ControllerRevision",
    ),
    ("daemonsets", "ds", "apps/v1", "true", "DaemonSet"),
    ("deployments", "deploy", "apps/v1", "true", "Deployment"),
    ("replicasets", "rs", "apps/v1", "true", "ReplicaSet"),
    ("statefulsets", "sts", "apps/v1", "true", "StatefulSet"),
    (
        "horizontalpodautoscalers",
        "hpa",
        "autoscaling/v2",
        "true",
        "HorizontalPodAutoscaler",
    ),
    ("cronjobs", "cj", "batch/v1", "true", "CronJob"),
    ("jobs", "", "batch/v1", "true", "Job"),
    (
        "certificatesigningrequests",
        "csr",
        "certificates.k8s.io/v1",
        "false",
        "CertificateSigningRequest",
    ),
    ("leases", "", "coordination.k8s.io/v1", "true", "Lease"),
    (
        "endpointslices",
        "",
        "discovery.k8s.io/v1",
        "true",
        "EndpointSlice",
    ),
    ("events", "ev", "events.k8s.io/v1", "true", "Event"),
    (
        "ingresses",
        "ing",
        "networking.k8s.io/v1",
        "true",
        "Ingress",
    ),
    (
        "ingressclasses",
        "",
        "networking.k8s.io/v1",
        "false",
        "IngressClass",
    ),
    (
        "networkpolicies",
        "netpol",
        "networking.k8s.io/v1",
        "true",
        "NetworkPolicy",
    ),
    (
        "poddisruptionbudgets",
        "pdb",
        "policy/v1",
        "true",
        "PodDisruptionBudget",
    ),
    (
        "clusterrolebindings",
        "",
        "rbac.authorization.k8s.io/v1",
        "false",
        "ClusterRoleBinding",
    ),
    (
        "clusterroles",
        "",
        "rbac.authorization.k8s.io/v1",
        "false",
        "ClusterRole",
    ),
    (
        "rolebindings",
        "",
        "rbac.authorization.k8s.io/v1",
        "true",
        "RoleBinding",
    ),
    ("roles", "", "rbac.authorization.k8s.io/v1", "true", "Role"),
    (
        "priorityclasses",
        "pc",
        "scheduling.k8s.io/v1",
        "false",
        "PriorityClass",
    ),
    (
        "storageclasses",
        "sc",
        "storage.k8s.io/v1",
        "false",
        "StorageClass",
    ),
    (
        "selfsubjectaccessreviews",
        "",
        "authorization.k8s.io/v1",
        "false",
        "SelfSubjectAccessReview",
    ),
    (
        "tokenreviews",
        "",
        "authentication.k8s.io/v1",
        "false",
        "TokenReview",
    ),
];

fn api_resources(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let out = k.run(&["api-resources"]).ok();
    let table = out.table();
    assert_eq!(
        table.headers,
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"],
        "{out}"
    );
    for &(name, short, api_version, namespaced, kind) in API_RESOURCES {
        let want = vec![name, short, api_version, namespaced, kind];
        let found = table
            .rows
            .iter()
            .any(|r| r.iter().map(String::as_str).eq(want.iter().copied()));
        assert!(
            found,
            "api-resources lacks the row {want:?}; rows named {name}: {:?}",
            table
                .rows
                .iter()
                .filter(|r| r.first().map(String::as_str) == Some(name))
                .collect::<Vec<_>>()
        );
    }
    // Filters are applied by kubectl to the discovery documents.
    let apps = names(
        &k.run(&["api-resources", "--api-group=apps", "-o", "name"])
            .ok(),
    );
    for n in [
        "controllerrevisions.apps",
        "daemonsets.apps",
        "deployments.apps",
        "replicasets.apps",
        "statefulsets.apps",
    ] {
        assert!(
            apps.contains(&n.to_string()),
            "--api-group=apps lacks {n}: {apps:?}"
        );
    }
    let cluster = names(
        &k.run(&["api-resources", "--namespaced=false", "-o", "name"])
            .ok(),
    );
    assert!(cluster.contains(&"namespaces".to_string()), "{cluster:?}");
    assert!(!cluster.contains(&"pods".to_string()), "{cluster:?}");
}

fn api_resources_wide(ctx: &Ctx) {
    let out = ctx.kubectl.run(&["api-resources", "-o", "wide"]).ok();
    let table = out.table();
    assert_eq!(
        table.headers,
        [
            "NAME",
            "SHORTNAMES",
            "APIVERSION",
            "NAMESPACED",
            "KIND",
            "VERBS",
            "CATEGORIES"
        ],
        "{out}"
    );
    let pods = table
        .row("pods")
        .unwrap_or_else(|| panic!("no pods row: {out}"));
    let verbs = &pods[5];
    for verb in [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ] {
        assert!(verbs.contains(verb), "pods verbs {verbs:?} lack {verb}");
    }
    assert!(pods[6].contains("all"), "pods categories {:?}", pods[6]);
    let bindings = table
        .row("bindings")
        .unwrap_or_else(|| panic!("no bindings row: {out}"));
    assert!(
        bindings[5].contains("create") && !bindings[5].contains("list"),
        "{bindings:?}"
    );
}

fn api_versions(ctx: &Ctx) {
    let out = ctx.kubectl.run(&["api-versions"]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    for gv in [
        "v1",
        "apps/v1",
        "batch/v1",
        "autoscaling/v1",
        "autoscaling/v2",
        "policy/v1",
        "networking.k8s.io/v1",
        "rbac.authorization.k8s.io/v1",
        "storage.k8s.io/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
        "events.k8s.io/v1",
        "scheduling.k8s.io/v1",
        "certificates.k8s.io/v1",
        "apiextensions.k8s.io/v1",
        "admissionregistration.k8s.io/v1",
        "authentication.k8s.io/v1",
        "authorization.k8s.io/v1",
    ] {
        assert!(lines.contains(&gv), "api-versions lacks {gv}: {lines:?}");
    }
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "api-versions is printed sorted");
}

fn short_names(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "configmap", "short", "--from-literal=a=b"])
        .ok();
    k.run(&["get", "cm", "short"]).ok().stdout_has("short");
    for short in [
        "po", "deploy", "svc", "ns", "sa", "cj", "ing", "pdb", "pc", "rs", "sts", "ds", "ev",
        "quota", "netpol", "hpa",
    ] {
        let out = k.run(&["get", short]);
        assert!(
            out.code == 0 || out.stderr.contains("No resources found"),
            "`get {short}` did not resolve: {out}"
        );
    }
}

fn explain_field(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let out = k
        .run(&["explain", "deployment.spec.template.spec.containers"])
        .ok();
    for needle in ["KIND:", "Deployment", "VERSION:", "DESCRIPTION:", "FIELDS:"] {
        assert!(
            out.stdout.contains(needle),
            "explain lacks {needle:?}: {out}"
        );
    }
    // OpenAPI v3 explain prints `GROUP: apps` + `VERSION: v1`; the v2 one `VERSION: apps/v1`.
    let group_line = out.stdout.lines().any(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words == ["GROUP:", "apps"] || words == ["VERSION:", "apps/v1"]
    });
    assert!(group_line, "explain does not name the apps group: {out}");
    assert!(
        out.stdout
            .contains("List of containers belonging to the pod"),
        "the field description is missing: {out}"
    );
    let field = |name: &str| {
        out.stdout
            .lines()
            .map(str::trim_start)
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no field line {name:?}: {out}"))
            .to_string()
    };
    assert!(field("image").contains("<string>"), "{out}");
    let name = field("name");
    assert!(
        name.contains("<string>") && name.contains("-required-"),
        "name line {name:?}"
    );
    assert!(field("ports").contains("[]"), "{out}");
    let replicas = k.run(&["explain", "deploy.spec.replicas"]).ok();
    assert!(
        replicas.stdout.contains("replicas") && replicas.stdout.contains("<integer>"),
        "{replicas}"
    );
}

fn explain_pods(ctx: &Ctx) {
    let out = ctx.kubectl.run(&["explain", "pods"]).ok();
    for needle in [
        "KIND:",
        "Pod",
        "VERSION:",
        "v1",
        "DESCRIPTION:",
        "Pod is a collection of containers that can run on a host",
        "FIELDS:",
    ] {
        assert!(
            out.stdout.contains(needle),
            "explain pods lacks {needle:?}: {out}"
        );
    }
    // OpenAPI v3 explain names the type (`<PodSpec>`); the v2 fallback says `<Object>`.
    for (field, types) in [
        ("apiVersion", &["<string>"][..]),
        ("kind", &["<string>"][..]),
        ("metadata", &["<ObjectMeta>", "<Object>"][..]),
        ("spec", &["<PodSpec>", "<Object>"][..]),
        ("status", &["<PodStatus>", "<Object>"][..]),
    ] {
        let line = out
            .stdout
            .lines()
            .map(str::trim_start)
            .find(|l| l.split_whitespace().next() == Some(field))
            .unwrap_or_else(|| panic!("no field {field}: {out}"));
        assert!(
            types.iter().any(|t| line.contains(t)),
            "field line {line:?} lacks {types:?}"
        );
    }
    let recursive = ctx
        .kubectl
        .run(&["explain", "pods.spec", "--recursive"])
        .ok();
    assert!(
        recursive.stdout.contains("containers") && recursive.stdout.contains("livenessProbe"),
        "{recursive}"
    );
}

fn bootstrap_objects(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let table = k.run(&["get", "namespaces"]).ok().table();
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert_eq!(table.cell(ns, "STATUS"), "Active", "namespace {ns}");
    }
    eventually(SETTLE, || {
        let out = k.run(&["get", "serviceaccount", "default", "-o", "name"]);
        (out.code == 0).then_some(()).ok_or_else(|| out.to_string())
    });
    let ca = eventually(SETTLE, || {
        let out = k.run(&["get", "configmap", "kube-root-ca.crt", "-o", "json"]);
        (out.code == 0)
            .then(|| out.json())
            .ok_or_else(|| out.to_string())
    });
    let pem = ca["data"]["ca.crt"].as_str().unwrap_or_default();
    assert!(
        pem.starts_with("-----BEGIN CERTIFICATE-----"),
        "ca.crt: {pem:?}"
    );
    // The in-cluster API service every pod's client finds.
    let svc = k.get_json(&["service", "kubernetes"]);
    has(&svc, "/spec/ports/0/port", json!(443));
    has(&svc, "/spec/type", json!("ClusterIP"));
}

// ---------------------------------------------------------------------------------------
// create generators

fn create_namespace(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "namespace", "team-a"])
        .ok()
        .stdout_has("namespace/team-a created");
    let ns = k.get_json(&["namespace", "team-a"]);
    has(&ns, "/status/phase", json!("Active"));
    has(
        &ns,
        "/metadata/labels/kubernetes.io~1metadata.name",
        json!("team-a"),
    );
    has(&ns, "/spec/finalizers", json!(["kubernetes"]));
}

fn create_configmap(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.write_file("app.properties", "mode=fast\n");
    k.run(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=color=blue",
        "--from-literal=size=3",
        "--from-file=app.properties",
    ])
    .ok()
    .stdout_has("configmap/settings created");
    let cm = k.get_json(&["configmap", "settings"]);
    has(
        &cm,
        "/data",
        json!({"color": "blue", "size": "3", "app.properties": "mode=fast\n"}),
    );
    let meta = &cm["metadata"];
    assert!(
        meta["uid"].as_str().is_some_and(|u| u.len() == 36),
        "uid {meta}"
    );
    assert!(
        meta["resourceVersion"]
            .as_str()
            .is_some_and(|rv| rv.parse::<u64>().is_ok()),
        "{meta}"
    );
    assert!(
        meta["creationTimestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{meta}"
    );
    assert_eq!(meta["namespace"], "default");
}

fn create_secret_generic(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=user=admin",
        "--from-literal=password=s3cr3t",
    ])
    .ok()
    .stdout_has("secret/creds created");
    let s = k.get_json(&["secret", "creds"]);
    has(&s, "/type", json!("Opaque"));
    has(
        &s,
        "/data",
        json!({"user": b64("admin"), "password": b64("s3cr3t")}),
    );
}

fn create_secret_docker_registry(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        "--docker-server=registry.example.com",
        "--docker-username=robot",
        "--docker-password=pw",
    ])
    .ok()
    .stdout_has("secret/regcred created");
    let s = k.get_json(&["secret", "regcred"]);
    has(&s, "/type", json!("kubernetes.io/dockerconfigjson"));
    let config: Value = serde_json::from_str(&unb64(
        s["data"][".dockerconfigjson"].as_str().unwrap_or_default(),
    ))
    .unwrap_or_else(|e| panic!("dockerconfigjson: {e}"));
    has(
        &config,
        "/auths/registry.example.com/username",
        json!("robot"),
    );
}

fn create_deployment(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=2",
        "--port=80",
    ])
    .ok()
    .stdout_has("deployment.apps/web created");
    let d = k.get_json(&["deployment", "web"]);
    has(&d, "/spec/replicas", json!(2));
    has(&d, "/spec/selector/matchLabels", json!({"app": "web"}));
    has(&d, "/spec/template/metadata/labels", json!({"app": "web"}));
    has(&d, "/spec/template/spec/containers/0/name", json!("nginx"));
    has(
        &d,
        "/spec/template/spec/containers/0/image",
        json!("nginx:1.27"),
    );
    has(
        &d,
        "/spec/template/spec/containers/0/ports/0/containerPort",
        json!(80),
    );
    // Server-side defaults a user sees in `-o yaml`.
    has(
        &d,
        "/spec/template/spec/containers/0/ports/0/protocol",
        json!("TCP"),
    );
    has(
        &d,
        "/spec/template/spec/containers/0/imagePullPolicy",
        json!("IfNotPresent"),
    );
    has(
        &d,
        "/spec/template/spec/containers/0/terminationMessagePath",
        json!("/dev/termination-log"),
    );
    has(
        &d,
        "/spec/template/spec/containers/0/terminationMessagePolicy",
        json!("File"),
    );
    has(&d, "/spec/strategy/type", json!("RollingUpdate"));
    has(&d, "/spec/strategy/rollingUpdate/maxSurge", json!("25%"));
    has(&d, "/spec/revisionHistoryLimit", json!(10));
    has(&d, "/spec/progressDeadlineSeconds", json!(600));
    has(&d, "/spec/template/spec/restartPolicy", json!("Always"));
    has(&d, "/spec/template/spec/dnsPolicy", json!("ClusterFirst"));
    has(
        &d,
        "/spec/template/spec/schedulerName",
        json!("default-scheduler"),
    );
    has(
        &d,
        "/spec/template/spec/terminationGracePeriodSeconds",
        json!(30),
    );
    has(&d, "/metadata/generation", json!(1));
}

fn create_service_clusterip(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "service", "clusterip", "api", "--tcp=80:8080"])
        .ok()
        .stdout_has("service/api created");
    let s = k.get_json(&["service", "api"]);
    has(&s, "/spec/type", json!("ClusterIP"));
    has(&s, "/spec/selector", json!({"app": "api"}));
    has(&s, "/spec/ports/0/port", json!(80));
    has(&s, "/spec/ports/0/targetPort", json!(8080));
    has(&s, "/spec/ports/0/protocol", json!("TCP"));
    has(&s, "/spec/ports/0/name", json!("80-8080"));
    has(&s, "/spec/sessionAffinity", json!("None"));
    let ip = s["spec"]["clusterIP"].as_str().unwrap_or_default();
    assert!(
        ip.parse::<std::net::Ipv4Addr>().is_ok(),
        "no cluster IP allocated: {s}"
    );
    has(&s, "/spec/clusterIPs", json!([ip]));
}

fn create_service_nodeport(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "service", "nodeport", "edge", "--tcp=80:8080"])
        .ok()
        .stdout_has("service/edge created");
    let s = k.get_json(&["service", "edge"]);
    has(&s, "/spec/type", json!("NodePort"));
    let node_port = s["spec"]["ports"][0]["nodePort"].as_u64().unwrap_or(0);
    assert!(
        (30000..=32767).contains(&node_port),
        "nodePort {node_port}: {s}"
    );
    has(&s, "/spec/externalTrafficPolicy", json!("Cluster"));
}

fn create_serviceaccount(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "serviceaccount", "robot"])
        .ok()
        .stdout_has("serviceaccount/robot created");
    let sa = k.get_json(&["serviceaccount", "robot"]);
    assert_eq!(sa["kind"], "ServiceAccount");
    let table = k.run(&["get", "sa"]).ok().table();
    assert_eq!(table.headers, ["NAME", "SECRETS", "AGE"]);
    assert_eq!(table.cell("robot", "SECRETS"), "0");
}

fn create_job(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "job",
        "once",
        "--image=busybox:1.36",
        "--",
        "echo",
        "hi",
    ])
    .ok()
    .stdout_has("job.batch/once created");
    let j = k.get_json(&["job", "once"]);
    has(
        &j,
        "/spec/template/spec/containers/0/command",
        json!(["echo", "hi"]),
    );
    has(&j, "/spec/template/spec/restartPolicy", json!("Never"));
    has(&j, "/spec/backoffLimit", json!(6));
    has(&j, "/spec/completions", json!(1));
    has(&j, "/spec/parallelism", json!(1));
    has(&j, "/spec/completionMode", json!("NonIndexed"));
    has(&j, "/spec/suspend", json!(false));
    // The job strategy generates the selector from the job's uid.
    let uid = j["metadata"]["uid"].as_str().unwrap_or_default();
    has(
        &j,
        "/spec/selector/matchLabels/batch.kubernetes.io~1controller-uid",
        json!(uid),
    );
    has(
        &j,
        "/spec/template/metadata/labels/batch.kubernetes.io~1job-name",
        json!("once"),
    );
}

fn create_cronjob(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox:1.36",
        "--schedule=*/5 * * * *",
        "--",
        "date",
    ])
    .ok()
    .stdout_has("cronjob.batch/tick created");
    let cj = k.get_json(&["cronjob", "tick"]);
    has(&cj, "/spec/schedule", json!("*/5 * * * *"));
    has(&cj, "/spec/concurrencyPolicy", json!("Allow"));
    has(&cj, "/spec/suspend", json!(false));
    has(&cj, "/spec/successfulJobsHistoryLimit", json!(3));
    has(&cj, "/spec/failedJobsHistoryLimit", json!(1));
    has(
        &cj,
        "/spec/jobTemplate/spec/template/spec/containers/0/command",
        json!(["date"]),
    );
    let table = k.run(&["get", "cronjobs"]).ok().table();
    assert_eq!(table.cell("tick", "SCHEDULE"), "*/5 * * * *");
    assert_eq!(table.cell("tick", "SUSPEND"), "False");
}

fn create_role(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list,watch",
        "--resource=pods,deployments.apps",
    ])
    .ok()
    .stdout_has("role.rbac.authorization.k8s.io/pod-reader created");
    let r = k.get_json(&["role", "pod-reader"]);
    let rules = r["rules"].as_array().cloned().unwrap_or_default();
    assert!(
        rules.contains(
            &json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]})
        ),
        "{r}"
    );
    assert!(
        rules.contains(&json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]})),
        "{r}"
    );
}

fn create_rolebinding(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "rolebinding",
        "read-pods",
        "--role=pod-reader",
        "--user=jane",
        "--serviceaccount=default:robot",
    ])
    .ok()
    .stdout_has("rolebinding.rbac.authorization.k8s.io/read-pods created");
    let rb = k.get_json(&["rolebinding", "read-pods"]);
    has(
        &rb,
        "/roleRef",
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"}),
    );
    // Subjects exactly as upstream prints them: a ServiceAccount has no apiGroup field.
    has(
        &rb,
        "/subjects",
        json!([
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "jane"},
            {"kind": "ServiceAccount", "name": "robot", "namespace": "default"}
        ]),
    );
    let table = k.run(&["get", "rolebindings", "-o", "wide"]).ok().table();
    assert_eq!(table.cell("read-pods", "ROLE"), "Role/pod-reader");
}

fn create_clusterrole(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "clusterrole",
        "node-reader",
        "--verb=get,list",
        "--resource=nodes",
    ])
    .ok()
    .stdout_has("clusterrole.rbac.authorization.k8s.io/node-reader created");
    let cr = k.get_json(&["clusterrole", "node-reader"]);
    has(
        &cr,
        "/rules",
        json!([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]),
    );
    assert!(
        cr["metadata"]["namespace"].is_null(),
        "cluster-scoped: {cr}"
    );
}

fn create_clusterrolebinding(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "clusterrolebinding",
        "read-nodes",
        "--clusterrole=node-reader",
        "--group=ops",
    ])
    .ok()
    .stdout_has("clusterrolebinding.rbac.authorization.k8s.io/read-nodes created");
    let crb = k.get_json(&["clusterrolebinding", "read-nodes"]);
    has(&crb, "/roleRef/kind", json!("ClusterRole"));
    has(&crb, "/subjects/0/kind", json!("Group"));
    has(&crb, "/subjects/0/name", json!("ops"));
}

fn create_quota(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "quota", "small", "--hard=pods=2,configmaps=5"])
        .ok()
        .stdout_has("resourcequota/small created");
    let q = k.get_json(&["resourcequota", "small"]);
    has(&q, "/spec/hard", json!({"pods": "2", "configmaps": "5"}));
}

fn create_priorityclass(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "priorityclass",
        "high",
        "--value=1000",
        "--description=important work",
    ])
    .ok()
    .stdout_has("priorityclass.scheduling.k8s.io/high created");
    let pc = k.get_json(&["priorityclass", "high"]);
    has(&pc, "/value", json!(1000));
    has(&pc, "/description", json!("important work"));
    has(&pc, "/preemptionPolicy", json!("PreemptLowerPriority"));
    let table = k.run(&["get", "pc", "high"]).ok().table();
    assert_eq!(table.cell("high", "VALUE"), "1000");
    assert_eq!(table.cell("high", "GLOBAL-DEFAULT"), "false");
}

fn create_poddisruptionbudget(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "poddisruptionbudget",
        "web-pdb",
        "--selector=app=web",
        "--min-available=1",
    ])
    .ok()
    .stdout_has("poddisruptionbudget.policy/web-pdb created");
    let pdb = k.get_json(&["pdb", "web-pdb"]);
    has(&pdb, "/spec/minAvailable", json!(1));
    has(&pdb, "/spec/selector/matchLabels", json!({"app": "web"}));
}

fn create_ingress(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "ingress",
        "web",
        "--rule=example.com/=web:80",
        "--rule=example.com/api*=api:8080",
    ])
    .ok()
    .stdout_has("ingress.networking.k8s.io/web created");
    let ing = k.get_json(&["ingress", "web"]);
    let rule = &ing["spec"]["rules"][0];
    has(&ing, "/spec/rules/0/host", json!("example.com"));
    let paths = rule["http"]["paths"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(paths.contains(&json!({"path": "/", "pathType": "Exact", "backend": {"service": {"name": "web", "port": {"number": 80}}}})), "{ing}");
    assert!(paths.contains(&json!({"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 8080}}}})), "{ing}");
    let table = k.run(&["get", "ingress"]).ok().table();
    assert_eq!(table.cell("web", "HOSTS"), "example.com");
    assert_eq!(table.cell("web", "PORTS"), "80");
}

fn create_token(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "serviceaccount", "robot"]).ok();
    let out = k.run(&["create", "token", "robot", "--duration=10m"]).ok();
    let token = out.stdout.trim();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {out}");
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .unwrap_or_else(|| panic!("JWT claims are not base64url JSON: {out}"));
    has(
        &claims,
        "/sub",
        json!("system:serviceaccount:default:robot"),
    );
}

fn create_from_file(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let manifest = format!(
        "{}---\n{}",
        configmap("one", &[("a", "1")], &[]),
        deployment("two", "nginx:1.27")
    );
    let path = k.write_file("both.yaml", &manifest);
    let path = path.to_string_lossy();
    let out = k.run(&["create", "-f", &path]).ok();
    assert!(
        out.stdout.contains("configmap/one created")
            && out.stdout.contains("deployment.apps/two created"),
        "{out}"
    );
    let json_manifest =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"three"},"data":{"k":"v"}}"#;
    k.run_stdin(&["create", "-f", "-"], json_manifest)
        .ok()
        .stdout_has("configmap/three created");
    assert_eq!(jsonpath(k, &["cm", "three"], "{.data.k}"), "v");
}

fn create_generate_name(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let manifest =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: gen-\ndata:\n  a: b\n";
    let first = k.create(manifest);
    let second = k.create(manifest);
    let name_of = |out: &Output| {
        out.stdout
            .trim()
            .strip_prefix("configmap/")
            .and_then(|s| s.strip_suffix(" created"))
            .unwrap_or_else(|| panic!("unexpected output: {out}"))
            .to_string()
    };
    let (a, b) = (name_of(&first), name_of(&second));
    assert!(
        a.starts_with("gen-") && a.len() == "gen-".len() + 5,
        "generated name {a:?}"
    );
    assert_ne!(a, b, "two generated names collide");
    k.run(&["get", "cm", &a]).ok();
}

fn create_already_exists(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "configmap", "dup", "--from-literal=a=b"])
        .ok();
    // The generator wraps the server's message ("failed to create configmap: ...").
    fails_with(
        k.run(&["create", "configmap", "dup", "--from-literal=a=b"]),
        &["configmaps \"dup\" already exists"],
    );
    fails_with(
        k.run_stdin(
            &["create", "-f", "-"],
            &configmap("dup", &[("a", "b")], &[]),
        ),
        &[
            "Error from server (AlreadyExists)",
            "configmaps \"dup\" already exists",
        ],
    );
}

fn run_and_expose(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "run",
        "solo",
        "--image=busybox:1.36",
        "--labels=app=solo",
        "--",
        "sleep",
        "3600",
    ])
    .ok()
    .stdout_has("pod/solo created");
    let p = k.get_json(&["pod", "solo"]);
    has(&p, "/spec/containers/0/args", json!(["sleep", "3600"]));
    has(&p, "/spec/containers/0/name", json!("solo"));
    k.run(&["create", "deployment", "web", "--image=nginx:1.27"])
        .ok();
    k.run(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
    ])
    .ok()
    .stdout_has("service/web exposed");
    let s = k.get_json(&["service", "web"]);
    has(&s, "/spec/selector", json!({"app": "web"}));
    has(&s, "/spec/ports/0/targetPort", json!(8080));
}

// ---------------------------------------------------------------------------------------
// apply

fn apply_lifecycle(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let v1 = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
    tier: frontend
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
        env:
        - name: MODE
          value: blue
        - name: EXTRA
          value: \"1\"
";
    k.apply(v1).stdout_has("deployment.apps/web created");
    let d = k
        .run(&["get", "deployment", "web", "-o", "yaml"])
        .ok()
        .yaml();
    has(
        &d,
        "/spec/template/spec/containers/0/image",
        json!("nginx:1.27"),
    );
    let last = d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap_or_else(|| panic!("no last-applied-configuration: {d}"));
    assert!(last.contains("nginx:1.27"), "{last}");
    k.apply(v1).stdout_has("deployment.apps/web unchanged");

    let v2 = v1.replace("nginx:1.27", "nginx:1.28");
    k.apply(&v2).stdout_has("deployment.apps/web configured");
    let d = k
        .run(&["get", "deployment", "web", "-o", "yaml"])
        .ok()
        .yaml();
    has(
        &d,
        "/spec/template/spec/containers/0/image",
        json!("nginx:1.28"),
    );
    assert_eq!(
        d["metadata"]["generation"], 2,
        "a spec change bumps generation: {d}"
    );

    // A label set by someone else survives; fields dropped from the manifest are pruned.
    k.run(&["label", "deployment", "web", "owner=ops"]).ok();
    let v3 = v2
        .replace("    tier: frontend\n", "")
        .replace("        - name: EXTRA\n          value: \"1\"\n", "");
    k.apply(&v3).stdout_has("deployment.apps/web configured");
    let d = k
        .run(&["get", "deployment", "web", "-o", "yaml"])
        .ok()
        .yaml();
    has(
        &d,
        "/metadata/labels",
        json!({"app": "web", "owner": "ops"}),
    );
    has(
        &d,
        "/spec/template/spec/containers/0/env",
        json!([{"name": "MODE", "value": "blue"}]),
    );
    has(
        &d,
        "/spec/template/spec/containers/0/image",
        json!("nginx:1.28"),
    );
}

/// Server-side apply is issue #4's work: flip this when it lands and the case runs.
const SERVER_SIDE_APPLY_PENDING: bool = false;

fn apply_server_side(ctx: &Ctx) {
    if SERVER_SIDE_APPLY_PENDING {
        skip("server-side apply (application/apply-patch+yaml) is not implemented yet: issue #4");
    }
    let k = &ctx.kubectl;
    let v1 = deployment("web", "nginx:1.27");
    k.run_stdin(&["apply", "--server-side", "-f", "-"], &v1)
        .ok()
        .stdout_has("deployment.apps/web serverside-applied");
    let d = k
        .run(&[
            "get",
            "deployment",
            "web",
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .ok()
        .json();
    let managers = d["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        managers
            .iter()
            .any(|m| m["manager"] == "kubectl" && m["operation"] == "Apply"),
        "no Apply entry by kubectl in managedFields: {d}"
    );
    let v2 = v1.replace("nginx:1.27", "nginx:1.28");
    k.run_stdin(&["apply", "--server-side", "-f", "-"], &v2)
        .ok();
    assert_eq!(
        jsonpath(
            k,
            &["deploy", "web"],
            "{.spec.template.spec.containers[0].image}"
        ),
        "nginx:1.28"
    );
    // Another manager takes spec.replicas; applying a different value conflicts.
    k.run(&["scale", "deployment", "web", "--replicas=5"]).ok();
    let v3 = v2.replace("replicas: 2", "replicas: 3");
    let out = fails_with(
        k.run_stdin(&["apply", "--server-side", "-f", "-"], &v3),
        &["conflict"],
    );
    assert!(
        out.stderr.contains(".spec.replicas"),
        "the conflict names the field: {out}"
    );
    k.run_stdin(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &v3,
    )
    .ok();
    assert_eq!(jsonpath(k, &["deploy", "web"], "{.spec.replicas}"), "3");
}

/// The conflict kubectl reports without `--force-conflicts`, and that forcing resolves it.
fn apply_server_side_conflict_message(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let v1 = deployment("ssa-conflict", "nginx:1.27");
    k.run_stdin(&["apply", "--server-side", "-f", "-"], &v1)
        .ok();
    k.run(&["scale", "deployment", "ssa-conflict", "--replicas=4"])
        .ok();
    let v2 = v1.replace("replicas: 2", "replicas: 6");
    let out = fails_with(
        k.run_stdin(&["apply", "--server-side", "-f", "-"], &v2),
        &[
            "Apply failed with 1 conflict: conflict with",
            ".spec.replicas",
            "--force-conflicts",
        ],
    );
    assert!(
        out.stderr.contains("subresource \"scale\""),
        "names the scale writer: {out}"
    );
    assert_eq!(
        jsonpath(k, &["deploy", "ssa-conflict"], "{.spec.replicas}"),
        "4"
    );
    k.run_stdin(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &v2,
    )
    .ok();
    assert_eq!(
        jsonpath(k, &["deploy", "ssa-conflict"], "{.spec.replicas}"),
        "6"
    );
}

/// Two appliers own different containers of one list-map (containers by name).
fn apply_server_side_shared_list_map(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let main = deployment("ssa-shared", "nginx:1.27");
    k.run_stdin(&["apply", "--server-side", "-f", "-"], &main)
        .ok();
    let sidecar = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: ssa-shared
spec:
  template:
    spec:
      containers:
      - name: log
        image: busybox
";
    k.run_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=sidecar",
            "-f",
            "-",
        ],
        sidecar,
    )
    .ok();
    let names = "{.spec.template.spec.containers[*].name}";
    assert_eq!(jsonpath(k, &["deploy", "ssa-shared"], names), "web log");
    // The main applier re-applies its own manifest: the sidecar's container stays.
    let v2 = main.replace("nginx:1.27", "nginx:1.28");
    k.run_stdin(&["apply", "--server-side", "-f", "-"], &v2)
        .ok();
    assert_eq!(jsonpath(k, &["deploy", "ssa-shared"], names), "web log");
    // The sidecar stops applying its container: it goes, the main one stays.
    let without = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: ssa-shared
  labels:
    sidecar: \"gone\"
";
    k.run_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=sidecar",
            "-f",
            "-",
        ],
        without,
    )
    .ok();
    assert_eq!(jsonpath(k, &["deploy", "ssa-shared"], names), "web");
    assert_eq!(
        jsonpath(
            k,
            &["deploy", "ssa-shared"],
            "{.spec.template.spec.containers[0].image}"
        ),
        "nginx:1.28"
    );
}

/// A field the applier stops applying is removed; one another manager set stays.
fn apply_server_side_removes_dropped_fields(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let with_data = configmap("ssa-drop", &[("a", "1"), ("b", "2")], &[]);
    k.run_stdin(&["apply", "--server-side", "-f", "-"], &with_data)
        .ok();
    k.run(&["label", "configmap", "ssa-drop", "owner=someone-else"])
        .ok();
    let fewer = configmap("ssa-drop", &[("a", "1")], &[]);
    k.run_stdin(&["apply", "--server-side", "-f", "-"], &fewer)
        .ok();
    let cm = k.get_json(&["configmap", "ssa-drop"]);
    assert_eq!(cm["data"], json!({"a": "1"}), "{cm}");
    assert_eq!(cm["metadata"]["labels"]["owner"], "someone-else");
}

/// `kubectl apply` (client-side), then `--server-side` with a changed manifest (no
/// conflicts with the fields the last-applied annotation shows), then client-side again.
fn apply_client_side_upgrade_to_server_side(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let v1 = deployment("ssa-upgrade", "nginx:1.27");
    k.apply(&v1);
    let v2 = v1
        .replace("nginx:1.27", "nginx:1.28")
        .replace("replicas: 2", "replicas: 3");
    k.run_stdin(&["apply", "--server-side", "-f", "-"], &v2)
        .ok()
        .stdout_has("deployment.apps/ssa-upgrade serverside-applied");
    let d = k.get_json(&["deployment", "ssa-upgrade"]);
    assert_eq!(d["spec"]["replicas"], 3);
    let last = d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        last.contains("nginx:1.28"),
        "annotation kept in sync: {last}"
    );
    // kubectl's csaupgrade step rewrote the client-side-apply entry into its Apply entry.
    let d = k.get_json(&["deployment", "ssa-upgrade", "--show-managed-fields"]);
    let managers = d["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        managers
            .iter()
            .all(|m| m["manager"] != "kubectl-client-side-apply"),
        "client-side apply entry migrated: {managers:?}"
    );
    let applied = managers
        .iter()
        .find(|m| m["manager"] == "kubectl" && m["operation"] == "Apply")
        .cloned()
        .unwrap_or_default();
    assert!(
        applied["fieldsV1"]["f:spec"]["f:replicas"].is_object(),
        "kubectl's Apply entry owns what it applied: {managers:?}"
    );
    let v3 = v2.replace("nginx:1.28", "nginx:1.29");
    k.apply(&v3);
    assert_eq!(
        jsonpath(
            k,
            &["deploy", "ssa-upgrade"],
            "{.spec.template.spec.containers[0].image}"
        ),
        "nginx:1.29"
    );
    assert_eq!(
        jsonpath(k, &["deploy", "ssa-upgrade"], "{.spec.replicas}"),
        "3"
    );
}

/// After an apply, `kubectl diff --server-side` shows nothing; managedFields show with
/// `--show-managed-fields`.
fn apply_server_side_diff_and_managed_fields(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let d = deployment("ssa-diff", "nginx:1.27");
    k.run_stdin(&["apply", "--server-side", "-f", "-"], &d).ok();
    // The controllers write the Deployment's status as its pods are created and placed:
    // wait until that settles, so a moved resourceVersion below is the apply's doing.
    let rv = settled(
        k,
        &["deploy", "ssa-diff"],
        Duration::from_millis(1500),
        Duration::from_secs(20),
    );
    let out = k.run_stdin(&["diff", "--server-side", "-f", "-"], &d).ok();
    assert!(out.stdout.trim().is_empty(), "diff after apply: {out}");
    // Applying the same manifest again changes nothing.
    k.run_stdin(&["apply", "--server-side", "-f", "-"], &d).ok();
    assert_eq!(
        jsonpath(k, &["deploy", "ssa-diff"], "{.metadata.resourceVersion}"),
        rv
    );
    let changed = d.replace("nginx:1.27", "nginx:1.28");
    let out = k.run_stdin(&["diff", "--server-side", "-f", "-"], &changed);
    assert!(
        out.stdout.contains("nginx:1.28"),
        "diff shows the change: {out}"
    );
    let yaml = k
        .run(&[
            "get",
            "deploy",
            "ssa-diff",
            "-o",
            "yaml",
            "--show-managed-fields",
        ])
        .ok()
        .stdout;
    for needle in [
        "managedFields:",
        "manager: kubectl",
        "operation: Apply",
        "fieldsType: FieldsV1",
        "f:replicas: {}",
    ] {
        assert!(yaml.contains(needle), "{needle} missing: {yaml}");
    }
    let plain = k
        .run(&["get", "deploy", "ssa-diff", "-o", "yaml"])
        .ok()
        .stdout;
    assert!(!plain.contains("managedFields"), "hidden by default");
}

fn apply_dry_run_server(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let cm = configmap("dry", &[("color", "blue")], &[]);
    k.run_stdin(&["apply", "--dry-run=server", "-f", "-"], &cm)
        .ok()
        .stdout_has("configmap/dry created (server dry run)");
    fails_with(k.run(&["get", "configmap", "dry"]), &["NotFound"]);
    k.apply(&cm);
    let changed = configmap("dry", &[("color", "green")], &[]);
    k.run_stdin(&["apply", "--dry-run=server", "-f", "-"], &changed)
        .ok()
        .stdout_has("configmap/dry configured (server dry run)");
    assert_eq!(
        jsonpath(k, &["cm", "dry"], "{.data.color}"),
        "blue",
        "dry run stored a change"
    );
    let preview = k
        .run(&[
            "create",
            "configmap",
            "ghost",
            "--from-literal=a=b",
            "--dry-run=server",
            "-o",
            "json",
        ])
        .ok()
        .json();
    has(&preview, "/data/a", json!("b"));
    fails_with(k.run(&["get", "configmap", "ghost"]), &["NotFound"]);
}

fn diff(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let same = configmap("cfg", &[("color", "blue")], &[]);
    k.apply(&same);
    let path = k.write_file("same.yaml", &same);
    let out = k.run(&["diff", "-f", &path.to_string_lossy()]);
    assert_eq!(out.code, 0, "no change must exit 0: {out}");
    assert!(
        out.stdout.trim().is_empty(),
        "no change prints nothing: {out}"
    );

    let changed = k.write_file(
        "changed.yaml",
        &configmap("cfg", &[("color", "green")], &[]),
    );
    let out = k.run(&["diff", "-f", &changed.to_string_lossy()]);
    assert_eq!(out.code, 1, "a change must exit 1: {out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with('-') && l.contains("color: blue")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with('+') && l.contains("color: green")),
        "{out}"
    );
    assert_eq!(
        jsonpath(k, &["cm", "cfg"], "{.data.color}"),
        "blue",
        "diff stored a change"
    );

    let fresh = k.write_file("new.yaml", &configmap("fresh", &[("a", "b")], &[]));
    let out = k.run(&["diff", "-f", &fresh.to_string_lossy()]);
    assert_eq!(out.code, 1, "a new object is a change: {out}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with('+') && l.contains("name: fresh")),
        "{out}"
    );
    fails_with(k.run(&["get", "configmap", "fresh"]), &["NotFound"]);
}

// ---------------------------------------------------------------------------------------
// get

fn get_pods_table(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.apply(&pod("p1")).stdout_has("pod/p1 created");
    let out = k.run(&["get", "pods"]).ok();
    let table = out.table();
    assert_eq!(
        table.headers,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{out}"
    );
    let ready = table.cell("p1", "READY");
    assert!(ready.ends_with("/1"), "READY {ready:?}");
    assert!(!table.cell("p1", "STATUS").is_empty(), "{out}");
    let wide = k.run(&["get", "pods", "-o", "wide"]).ok();
    let table = wide.table();
    assert_eq!(
        table.headers,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES"
        ],
        "{wide}"
    );
    assert_eq!(table.cell("p1", "READINESS GATES"), "<none>", "{wide}");
    let labels = k.run(&["get", "pods", "--show-labels"]).ok().table();
    assert_eq!(labels.cell("p1", "LABELS"), "app=p1");
}

fn get_deployments_table(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.apply(&deployment("web", "nginx:1.27"));
    let out = k.run(&["get", "deployments"]).ok();
    let table = out.table();
    assert_eq!(
        table.headers,
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{out}"
    );
    assert!(table.cell("web", "READY").ends_with("/2"), "{out}");
    let wide = k.run(&["get", "deploy", "-o", "wide"]).ok();
    let table = wide.table();
    assert_eq!(
        table.headers,
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ],
        "{wide}"
    );
    assert_eq!(table.cell("web", "CONTAINERS"), "web");
    assert_eq!(table.cell("web", "IMAGES"), "nginx:1.27");
    assert_eq!(table.cell("web", "SELECTOR"), "app=web");
}

fn get_services_table(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "service", "clusterip", "api", "--tcp=80:8080"])
        .ok();
    let out = k.run(&["get", "services"]).ok();
    let table = out.table();
    assert_eq!(
        table.headers,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ],
        "{out}"
    );
    assert_eq!(table.cell("api", "TYPE"), "ClusterIP");
    assert_eq!(table.cell("api", "EXTERNAL-IP"), "<none>");
    assert_eq!(table.cell("api", "PORT(S)"), "80/TCP");
    let wide = k.run(&["get", "svc", "-o", "wide"]).ok().table();
    assert_eq!(wide.cell("api", "SELECTOR"), "app=api");
}

fn get_configmaps_table(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "configmap",
        "two",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ])
    .ok();
    let out = k.run(&["get", "configmaps"]).ok();
    let table = out.table();
    assert_eq!(table.headers, ["NAME", "DATA", "AGE"], "{out}");
    assert_eq!(table.cell("two", "DATA"), "2");
    let age = table.cell("two", "AGE");
    assert!(age.ends_with('s') || age.ends_with('m'), "AGE {age:?}");
}

fn get_secrets_table(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "secret", "generic", "one", "--from-literal=a=1"])
        .ok();
    let out = k.run(&["get", "secrets"]).ok();
    let table = out.table();
    assert_eq!(table.headers, ["NAME", "TYPE", "DATA", "AGE"], "{out}");
    assert_eq!(table.cell("one", "TYPE"), "Opaque");
    assert_eq!(table.cell("one", "DATA"), "1");
}

fn get_namespaces_table(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "namespace", "extra"]).ok();
    let out = k.run(&["get", "namespaces"]).ok();
    let table = out.table();
    assert_eq!(table.headers, ["NAME", "STATUS", "AGE"], "{out}");
    assert_eq!(table.cell("extra", "STATUS"), "Active");
    let names = table.names();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "lists are sorted by name");
}

fn get_output_yaml(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "configmap", "y1", "--from-literal=a=1"])
        .ok();
    let one = k.run(&["get", "cm", "y1", "-o", "yaml"]).ok().yaml();
    has(&one, "/apiVersion", json!("v1"));
    has(&one, "/kind", json!("ConfigMap"));
    has(&one, "/metadata/name", json!("y1"));
    has(&one, "/data/a", json!("1"));
    let list = k.run(&["get", "cm", "-o", "yaml"]).ok().yaml();
    has(&list, "/kind", json!("List"));
    let items = list["items"].as_array().cloned().unwrap_or_default();
    assert!(
        items
            .iter()
            .any(|i| i["metadata"]["name"] == "y1" && i["kind"] == "ConfigMap"),
        "{list}"
    );
}

fn get_output_json(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "configmap", "j1", "--from-literal=a=1"])
        .ok();
    let one = k.get_json(&["cm", "j1"]);
    has(&one, "/kind", json!("ConfigMap"));
    let list = k.get_json(&["cm"]);
    has(&list, "/kind", json!("List"));
    has(&list, "/apiVersion", json!("v1"));
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let item = items
        .iter()
        .find(|i| i["metadata"]["name"] == "j1")
        .unwrap_or_else(|| panic!("no j1 in {list}"));
    assert_eq!(
        item["apiVersion"], "v1",
        "list items carry apiVersion: {item}"
    );
    assert_eq!(item["kind"], "ConfigMap", "list items carry kind: {item}");
    let raw: Value = serde_json::from_str(
        &k.run(&["get", "--raw", "/api/v1/namespaces/default/configmaps"])
            .ok()
            .stdout,
    )
    .unwrap_or_else(|e| panic!("raw list: {e}"));
    has(&raw, "/kind", json!("ConfigMapList"));
    assert!(
        raw["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|rv| !rv.is_empty()),
        "{raw}"
    );
}

fn get_output_jsonpath(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "configmap", "a", "--from-literal=color=blue"])
        .ok();
    k.run(&["create", "configmap", "b", "--from-literal=color=red"])
        .ok();
    assert_eq!(jsonpath(k, &["cm", "a"], "{.data.color}"), "blue");
    let listed = jsonpath(
        k,
        &["cm"],
        "{range .items[*]}{.metadata.name}={.data.color}{\"\\n\"}{end}",
    );
    let lines: Vec<&str> = listed.lines().collect();
    assert!(
        lines.contains(&"a=blue") && lines.contains(&"b=red"),
        "{listed:?}"
    );
    let out = k
        .run(&[
            "get",
            "cm",
            "a",
            "b",
            "-o",
            "custom-columns=NAME:.metadata.name,COLOR:.data.color",
        ])
        .ok();
    let table = out.table();
    assert_eq!(table.headers, ["NAME", "COLOR"], "{out}");
    assert_eq!(table.cell("b", "COLOR"), "red");
    let out = k.run(&["get", "cm", "a", "-o", "name"]).ok();
    assert_eq!(out.stdout.trim(), "configmap/a", "{out}");
    let go = k
        .run(&["get", "cm", "a", "-o", "go-template={{.data.color}}"])
        .ok();
    assert_eq!(go.stdout, "blue", "{go}");
}

fn get_label_selector(ctx: &Ctx) {
    let k = &ctx.kubectl;
    for (name, env) in [("p1", "prod"), ("p2", "prod"), ("d1", "dev")] {
        k.run(&["create", "configmap", name, "--from-literal=a=b"])
            .ok();
        k.run(&["label", "configmap", name, &format!("env={env}")])
            .ok();
    }
    k.run(&["create", "configmap", "plain", "--from-literal=a=b"])
        .ok();
    let sel = |selector: &str| names(&k.run(&["get", "cm", "-l", selector, "-o", "name"]).ok());
    assert_eq!(sel("env=prod"), ["configmap/p1", "configmap/p2"]);
    assert_eq!(sel("env!=prod,env"), ["configmap/d1"]);
    assert_eq!(
        sel("env in (dev,prod)"),
        ["configmap/d1", "configmap/p1", "configmap/p2"]
    );
    assert_eq!(sel("env notin (prod),env"), ["configmap/d1"]);
    let without = sel("!env");
    assert!(
        without.contains(&"configmap/plain".to_string()),
        "{without:?}"
    );
    assert!(!without.iter().any(|n| n == "configmap/p1"), "{without:?}");
    let out = k.run(&["get", "cm", "-l", "env=nobody"]);
    assert!(
        out.code == 0
            && out
                .stderr
                .contains("No resources found in default namespace."),
        "{out}"
    );
    fails_with(
        k.run(&["get", "cm", "-l", "env in (a"]),
        &["unable to parse requirement"],
    );
}

fn get_field_selector(ctx: &Ctx) {
    let k = &ctx.kubectl;
    for name in ["x", "y", "z"] {
        k.run(&["create", "configmap", name, "--from-literal=a=b"])
            .ok();
    }
    let sel = |args: &[&str]| {
        let mut full = vec!["get"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["-o", "name"]);
        names(&k.run(&full).ok())
    };
    assert_eq!(
        sel(&["cm", "--field-selector", "metadata.name=y"]),
        ["configmap/y"]
    );
    let not_y = sel(&["cm", "--field-selector", "metadata.name!=y"]);
    assert!(
        not_y.contains(&"configmap/x".to_string()) && !not_y.contains(&"configmap/y".to_string()),
        "{not_y:?}"
    );
    assert_eq!(
        sel(&[
            "cm",
            "-A",
            "--field-selector",
            "metadata.namespace=default,metadata.name=z"
        ]),
        ["configmap/z"]
    );
    k.run(&["create", "secret", "generic", "s1", "--from-literal=a=b"])
        .ok();
    assert_eq!(
        sel(&["secrets", "--field-selector", "type=Opaque"]),
        ["secret/s1"]
    );
    k.apply(&pod("runner"));
    let phase = jsonpath(k, &["pod", "runner"], "{.status.phase}");
    if !phase.is_empty() {
        assert_eq!(
            sel(&["pods", "--field-selector", &format!("status.phase={phase}")]),
            ["pod/runner"]
        );
    }
    // Kinds without their own field labels name the two every kind has; kinds with a
    // conversion function (pods) say "field label not supported".
    fails_with(
        k.run(&["get", "cm", "--field-selector", "data.a=b"]),
        &[
            "\"data.a\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
        ],
    );
    fails_with(
        k.run(&["get", "pods", "--field-selector", "spec.foo=bar"]),
        &["field label not supported: spec.foo"],
    );
}

fn get_chunked(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let made: Vec<String> = (0..5).map(|i| format!("chunk-{i}")).collect();
    for name in &made {
        k.run(&["create", "configmap", name, "--from-literal=a=b"])
            .ok();
    }
    let out = k.run(&["get", "cm", "--chunk-size=1"]).ok();
    let table = out.table();
    assert_eq!(table.headers, ["NAME", "DATA", "AGE"], "{out}");
    let listed = table.names();
    for name in &made {
        assert!(
            listed.contains(name),
            "{name} missing from chunked list: {out}"
        );
    }
    assert_eq!(
        out.stdout.matches("NAME").count(),
        1,
        "one header for all chunks: {out}"
    );
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "chunked lists come in key order");
    let by_name = names(&k.run(&["get", "cm", "--chunk-size=2", "-o", "name"]).ok());
    assert_eq!(by_name.len(), listed.len(), "{by_name:?} vs {listed:?}");
    // The raw pages: limit, continue and remainingItemCount.
    let page = k
        .run(&[
            "get",
            "--raw",
            "/api/v1/namespaces/default/configmaps?limit=2",
        ])
        .ok()
        .json();
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2), "{page}");
    let cont = page["metadata"]["continue"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        !cont.is_empty(),
        "a partial page has a continue token: {page}"
    );
    let remaining = page["metadata"]["remainingItemCount"].as_u64();
    assert_eq!(remaining, Some(listed.len() as u64 - 2), "{page}");
    let next = k
        .run(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/default/configmaps?limit=2&continue={cont}"),
        ])
        .ok()
        .json();
    let first_of_next = next["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(first_of_next, listed[2], "{next}");
}

fn get_all_namespaces(ctx: &Ctx) {
    let k = &ctx.kubectl;
    for ns in ["ns-a", "ns-b"] {
        k.run(&["create", "namespace", ns]).ok();
        k.run(&[
            "create",
            "configmap",
            "shared",
            "-n",
            ns,
            "--from-literal=a=b",
        ])
        .ok();
    }
    let out = k.run(&["get", "cm", "-A"]).ok();
    let table = out.table();
    assert_eq!(table.headers, ["NAMESPACE", "NAME", "DATA", "AGE"], "{out}");
    for ns in ["ns-a", "ns-b"] {
        assert!(
            table.rows.iter().any(|r| r[0] == ns && r[1] == "shared"),
            "no {ns}/shared: {out}"
        );
    }
    let only_a = k.run(&["get", "cm", "-n", "ns-a", "-o", "name"]).ok();
    assert!(
        names(&only_a).contains(&"configmap/shared".to_string()),
        "{only_a}"
    );
    let all = k.get_json(&["cm", "--all-namespaces"]);
    let count = all["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|i| i["metadata"]["name"] == "shared")
                .count()
        })
        .unwrap_or(0);
    assert_eq!(count, 2, "{all}");
}

fn get_all(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.apply(&deployment("web", "nginx:1.27"));
    k.run(&["create", "service", "clusterip", "web", "--tcp=80:80"])
        .ok();
    k.run(&[
        "create",
        "job",
        "once",
        "--image=busybox:1.36",
        "--",
        "true",
    ])
    .ok();
    k.run(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox:1.36",
        "--schedule=0 * * * *",
    ])
    .ok();
    k.run(&["create", "configmap", "not-in-all", "--from-literal=a=b"])
        .ok();
    let out = k.run(&["get", "all"]).ok();
    for needle in [
        "deployment.apps/web",
        "service/web",
        "job.batch/once",
        "cronjob.batch/tick",
    ] {
        assert!(out.stdout.contains(needle), "get all lacks {needle}: {out}");
    }
    assert!(
        !out.stdout.contains("not-in-all"),
        "configmaps are not in category all: {out}"
    );
    let names = names(&k.run(&["get", "all", "-o", "name"]).ok());
    assert!(
        names.contains(&"deployment.apps/web".to_string()),
        "{names:?}"
    );
}

fn get_not_found(ctx: &Ctx) {
    let k = &ctx.kubectl;
    fails_with(
        k.run(&["get", "configmap", "nope"]),
        &["Error from server (NotFound): configmaps \"nope\" not found"],
    );
    fails_with(
        k.run(&["get", "deployment", "nope"]),
        &["Error from server (NotFound): deployments.apps \"nope\" not found"],
    );
    k.run(&["get", "configmap", "nope", "--ignore-not-found"])
        .ok();
    k.run(&["create", "namespace", "empty"]).ok();
    let out = k.run(&["get", "deployments", "-n", "empty"]).ok();
    assert!(
        out.stderr
            .contains("No resources found in empty namespace."),
        "{out}"
    );
    fails_with(
        k.run(&["get", "widgets"]),
        &["the server doesn't have a resource type \"widgets\""],
    );
}

fn get_watch(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "configmap", "watched", "--from-literal=a=1"])
        .ok();
    let mut w = k
        .spawn(&["get", "configmaps", "-w", "--request-timeout=60s"])
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let wait = Duration::from_secs(20);
    w.wait_for_line(wait, |l| l.starts_with("NAME"))
        .unwrap_or_else(|| panic!("no header: {}", w.describe()));
    w.wait_for_line(wait, |l| l.starts_with("watched "))
        .unwrap_or_else(|| panic!("no initial row: {}", w.describe()));
    k.run(&["create", "configmap", "later", "--from-literal=x=y"])
        .ok();
    w.wait_for_line(wait, |l| l.starts_with("later "))
        .unwrap_or_else(|| panic!("the created object was not printed: {}", w.describe()));
    k.run(&[
        "patch",
        "configmap",
        "watched",
        "-p",
        r#"{"data":{"b":"2"}}"#,
    ])
    .ok();
    let line = w
        .wait_for_line(wait, |l| l.starts_with("watched "))
        .unwrap_or_else(|| panic!("the change was not printed: {}", w.describe()));
    assert_eq!(
        line.split_whitespace().nth(1),
        Some("2"),
        "DATA after the change: {line:?}"
    );
    assert!(w.is_running(), "the watch ended early: {}", w.describe());
}

fn get_watch_events(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["get", "configmaps"]).ok(); // warm the discovery cache
    let mut w = k
        .spawn(&[
            "get",
            "configmaps",
            "--watch-only",
            "--output-watch-events",
            "--request-timeout=60s",
        ])
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    // Give the watch time to start before making changes it must see.
    std::thread::sleep(Duration::from_millis(1500));
    let wait = Duration::from_secs(20);
    k.run(&["create", "configmap", "ev", "--from-literal=a=1"])
        .ok();
    w.wait_for_line(wait, |l| l.starts_with("ADDED") && l.contains(" ev "))
        .unwrap_or_else(|| panic!("no ADDED: {}", w.describe()));
    k.run(&["label", "configmap", "ev", "x=y"]).ok();
    w.wait_for_line(wait, |l| l.starts_with("MODIFIED") && l.contains(" ev "))
        .unwrap_or_else(|| panic!("no MODIFIED: {}", w.describe()));
    k.run(&["delete", "configmap", "ev"]).ok();
    w.wait_for_line(wait, |l| l.starts_with("DELETED") && l.contains(" ev "))
        .unwrap_or_else(|| panic!("no DELETED: {}", w.describe()));
    assert!(
        !w.seen().iter().any(|l| l.contains("kube-root-ca.crt")),
        "--watch-only must not print existing objects: {}",
        w.describe()
    );
}

fn describe(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=color=blue",
    ])
    .ok();
    let out = k.run(&["describe", "configmap", "settings"]).ok();
    for needle in [
        "Name:",
        "settings",
        "Namespace:",
        "default",
        "Data",
        "====",
        "color:",
        "blue",
    ] {
        assert!(
            out.stdout.contains(needle),
            "describe lacks {needle:?}: {out}"
        );
    }
    k.apply(&deployment("web", "nginx:1.27"));
    let out = k.run(&["describe", "deployment", "web"]).ok();
    for needle in [
        "Name:",
        "web",
        "Selector:",
        "app=web",
        "Replicas:",
        "StrategyType:",
        "RollingUpdate",
        "Pod Template:",
        "Image:",
        "nginx:1.27",
    ] {
        assert!(
            out.stdout.contains(needle),
            "describe lacks {needle:?}: {out}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// updates

fn label(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "configmap", "l", "--from-literal=a=b"])
        .ok();
    k.run(&["label", "configmap", "l", "env=prod", "team=core"])
        .ok()
        .stdout_has("configmap/l labeled");
    assert_eq!(
        k.get_json(&["cm", "l"])["metadata"]["labels"],
        json!({"env": "prod", "team": "core"})
    );
    fails_with(
        k.run(&["label", "configmap", "l", "env=dev"]),
        &["already has a value (prod)", "--overwrite is false"],
    );
    k.run(&["label", "configmap", "l", "env=dev", "--overwrite"])
        .ok()
        .stdout_has("configmap/l labeled");
    k.run(&["label", "configmap", "l", "team-"])
        .ok()
        .stdout_has("configmap/l unlabeled");
    assert_eq!(
        k.get_json(&["cm", "l"])["metadata"]["labels"],
        json!({"env": "dev"})
    );
    fails_with(
        k.run(&[
            "label",
            "configmap",
            "l",
            "stale=yes",
            "--resource-version=1",
        ]),
        &["Conflict", "the object has been modified"],
    );
    fails_with(
        k.run(&["label", "configmap", "l", "bad key=x"]),
        &["metadata.labels: Invalid value: \"bad key\""],
    );
}

fn annotate(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "configmap", "n", "--from-literal=a=b"])
        .ok();
    k.run(&[
        "annotate",
        "configmap",
        "n",
        "note=hello world",
        "example.com/owner=ops",
    ])
    .ok()
    // 1.27 prints "annotate", later versions "annotated".
    .stdout_has("configmap/n annotate");
    let a = k.get_json(&["cm", "n"])["metadata"]["annotations"].clone();
    has(&a, "/note", json!("hello world"));
    has(&a, "/example.com~1owner", json!("ops"));
    k.run(&["annotate", "configmap", "n", "note-"]).ok();
    let a = k.get_json(&["cm", "n"])["metadata"]["annotations"].clone();
    assert!(
        a["note"].is_null() && a["example.com/owner"] == "ops",
        "{a}"
    );
}

/// A deployment with two containers, for patches that must merge lists by name.
fn two_container_deployment() -> String {
    deployment("web", "nginx:1.27").replace(
        "      - name: web\n        image: nginx:1.27\n",
        "      - name: web\n        image: nginx:1.27\n      - name: sidecar\n        image: busybox:1.36\n",
    )
}

fn container_images(k: &Kubectl) -> Vec<(String, String)> {
    let d = k.get_json(&["deployment", "web"]);
    d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or_default().to_string(),
                        c["image"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn patch_strategic(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.apply(&two_container_deployment());
    let patch =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}"#;
    k.run(&["patch", "deployment", "web", "-p", patch])
        .ok()
        .stdout_has("deployment.apps/web patched");
    assert_eq!(
        container_images(k),
        pairs(&[("web", "nginx:1.28"), ("sidecar", "busybox:1.36")])
    );
    // kubectl says "(no change)" when the answer equals the object it read first; the
    // Deployment controller's own status write between the two (as on a real cluster)
    // makes it say "patched", so a repeat of the same patch settles it.
    let no_change = (0..5).any(|attempt| {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        k.run(&["patch", "deployment", "web", "-p", patch])
            .ok()
            .stdout
            .contains("deployment.apps/web patched (no change)")
    });
    assert!(
        no_change,
        "repeating the same patch never reported (no change)"
    );
    let delete =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}"#;
    k.run(&["patch", "deployment", "web", "-p", delete]).ok();
    assert_eq!(container_images(k), pairs(&[("web", "nginx:1.28")]));
    let yaml_patch = "metadata:\n  labels:\n    patched: \"yes\"\n";
    k.run(&["patch", "deployment", "web", "-p", yaml_patch])
        .ok();
    assert_eq!(
        jsonpath(k, &["deploy", "web"], "{.metadata.labels.patched}"),
        "yes"
    );
}

fn patch_merge(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.apply(&two_container_deployment());
    let patch =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.29"}]}}}}"#;
    k.run(&["patch", "deployment", "web", "--type=merge", "-p", patch])
        .ok()
        .stdout_has("deployment.apps/web patched");
    // A merge patch replaces lists whole.
    assert_eq!(container_images(k), pairs(&[("web", "nginx:1.29")]));
    k.run(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"app":null,"x":"1"}}}"#,
    ])
    .ok();
    assert_eq!(
        k.get_json(&["deploy", "web"])["metadata"]["labels"],
        json!({"x": "1"})
    );
}

fn patch_json(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.apply(&two_container_deployment());
    let ops = r#"[{"op":"replace","path":"/spec/replicas","value":3},{"op":"add","path":"/metadata/labels/added","value":"yes"},{"op":"remove","path":"/spec/template/spec/containers/1"}]"#;
    k.run(&["patch", "deployment", "web", "--type=json", "-p", ops])
        .ok()
        .stdout_has("deployment.apps/web patched");
    let d = k.get_json(&["deploy", "web"]);
    has(&d, "/spec/replicas", json!(3));
    has(&d, "/metadata/labels/added", json!("yes"));
    assert_eq!(container_images(k), pairs(&[("web", "nginx:1.27")]));
    let failing = r#"[{"op":"test","path":"/spec/replicas","value":99}]"#;
    k.run(&["patch", "deployment", "web", "--type=json", "-p", failing])
        .failed();
    let missing = r#"[{"op":"remove","path":"/metadata/labels/nothere"}]"#;
    k.run(&["patch", "deployment", "web", "--type=json", "-p", missing])
        .failed();
    assert_eq!(k.get_json(&["deploy", "web"])["spec"]["replicas"], 3);
}

/// `collisionCount`: the one status field the Deployment controller keeps as written (it
/// recomputes the others, observedGeneration among them, as upstream's).
fn patch_status_subresource(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.apply(&deployment("web", "nginx:1.27"));
    // The Deployment controller writes status while it settles; a write between kubectl's
    // read and its patch would turn "(no change)" into "patched".
    settled(
        k,
        &["deploy", "web"],
        Duration::from_millis(500),
        Duration::from_secs(10),
    );
    k.run(&[
        "patch",
        "deployment",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"collisionCount":42}}"#,
    ])
    .ok();
    assert_eq!(
        jsonpath(k, &["deploy", "web"], "{.status.collisionCount}"),
        "42"
    );
    // The main resource ignores status.
    k.run(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"status":{"collisionCount":7}}"#,
    ])
    .ok()
    .stdout_has("(no change)");
    assert_eq!(
        jsonpath(k, &["deploy", "web"], "{.status.collisionCount}"),
        "42"
    );
    // The status subresource ignores spec.
    k.run(&[
        "patch",
        "deployment",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":9}}"#,
    ])
    .ok();
    assert_eq!(jsonpath(k, &["deploy", "web"], "{.spec.replicas}"), "2");
}

fn set_image(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.apply(&two_container_deployment());
    k.run(&["set", "image", "deployment/web", "web=nginx:1.30"])
        .ok()
        .stdout_has("deployment.apps/web image updated");
    assert_eq!(
        container_images(k),
        pairs(&[("web", "nginx:1.30"), ("sidecar", "busybox:1.36")])
    );
    k.run(&["set", "env", "deployment/web", "-c", "web", "MODE=green"])
        .ok();
    assert_eq!(
        jsonpath(
            k,
            &["deploy", "web"],
            "{.spec.template.spec.containers[0].env[0].value}"
        ),
        "green"
    );
}

fn scale(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.apply(&deployment("web", "nginx:1.27"));
    k.run(&["scale", "deployment", "web", "--replicas=3"])
        .ok()
        .stdout_has("deployment.apps/web scaled");
    assert_eq!(jsonpath(k, &["deploy", "web"], "{.spec.replicas}"), "3");
    let table = k.run(&["get", "deploy", "web"]).ok().table();
    assert!(table.cell("web", "READY").ends_with("/3"), "{table:?}");
    fails_with(
        k.run(&[
            "scale",
            "deployment",
            "web",
            "--current-replicas=2",
            "--replicas=4",
        ]),
        &["Expected replicas to be 2, was 3"],
    );
    let scale = k
        .run(&[
            "get",
            "--raw",
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
        ])
        .ok()
        .json();
    has(&scale, "/kind", json!("Scale"));
    has(&scale, "/apiVersion", json!("autoscaling/v1"));
    has(&scale, "/spec/replicas", json!(3));
    has(&scale, "/status/selector", json!("app=web"));
}

fn edit(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=color=blue",
    ])
    .ok();
    let editor = k.write_script("editor.sh", "sed -i 's/color: blue/color: green/' \"$1\"");
    let editor = editor.to_string_lossy();
    k.run_with(
        &["edit", "configmap", "settings"],
        None,
        &[("KUBE_EDITOR", &editor)],
    )
    .ok()
    .stdout_has("configmap/settings edited");
    assert_eq!(jsonpath(k, &["cm", "settings"], "{.data.color}"), "green");
    let noop = k.write_script("noop.sh", "true");
    let out = k
        .run_with(
            &["edit", "configmap", "settings"],
            None,
            &[("KUBE_EDITOR", &noop.to_string_lossy())],
        )
        .ok();
    assert!(
        out.stderr.contains("Edit cancelled, no changes made.")
            || out.stdout.contains("Edit cancelled, no changes made."),
        "{out}"
    );
    let json_editor = k.write_script("json.sh", "sed -i 's/\"green\"/\"red\"/' \"$1\"");
    k.run_with(
        &["edit", "configmap", "settings", "-o", "json"],
        None,
        &[("KUBE_EDITOR", &json_editor.to_string_lossy())],
    )
    .ok();
    assert_eq!(jsonpath(k, &["cm", "settings"], "{.data.color}"), "red");
}

fn replace(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=color=blue",
    ])
    .ok();
    let before = k.get_json(&["cm", "settings"]);
    let yaml = k.run(&["get", "cm", "settings", "-o", "yaml"]).ok().stdout;
    let path = k.write_file(
        "settings.yaml",
        &yaml.replace("color: blue", "color: green"),
    );
    let path = path.to_string_lossy();
    k.run(&["replace", "-f", &path])
        .ok()
        .stdout_has("configmap/settings replaced");
    let after = k.get_json(&["cm", "settings"]);
    has(&after, "/data/color", json!("green"));
    assert_eq!(
        after["metadata"]["uid"], before["metadata"]["uid"],
        "replace keeps the object"
    );
    assert_ne!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    // The file still carries the old resourceVersion: a second replace conflicts.
    fails_with(
        k.run(&["replace", "-f", &path]),
        &["Conflict", "the object has been modified"],
    );
    let missing = k.write_file("missing.yaml", &configmap("absent", &[("a", "b")], &[]));
    fails_with(
        k.run(&["replace", "-f", &missing.to_string_lossy()]),
        &["NotFound", "\"absent\" not found"],
    );
}

fn replace_force(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=color=blue",
    ])
    .ok();
    let before = k.get_json(&["cm", "settings"]);
    let path = k.write_file(
        "settings.yaml",
        &configmap("settings", &[("color", "green")], &[]),
    );
    let out = k
        .run(&["replace", "--force", "-f", &path.to_string_lossy()])
        .ok();
    assert!(
        out.stdout.contains("configmap \"settings\" deleted")
            && out.stdout.contains("configmap/settings replaced"),
        "{out}"
    );
    let after = k.get_json(&["cm", "settings"]);
    has(&after, "/data/color", json!("green"));
    assert_ne!(
        after["metadata"]["uid"], before["metadata"]["uid"],
        "--force recreates the object"
    );
}

fn wait_for_jsonpath(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "configmap", "w", "--from-literal=state=ready"])
        .ok();
    k.run(&[
        "wait",
        "--for=jsonpath={.data.state}=ready",
        "configmap/w",
        "--timeout=20s",
    ])
    .ok()
    .stdout_has("configmap/w condition met");
    let mut waiter = k
        .spawn(&["wait", "--for=delete", "configmap/w", "--timeout=30s"])
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    std::thread::sleep(Duration::from_millis(500));
    k.run(&["delete", "configmap", "w", "--wait=false"]).ok();
    let code = waiter.wait_exit(Duration::from_secs(25));
    assert_eq!(code, Some(0), "wait --for=delete: {}", waiter.describe());
}

fn auth_can_i(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let out = k.run(&["auth", "can-i", "create", "deployments"]).ok();
    assert_eq!(out.stdout.trim(), "yes", "{out}");
    let out = k.run(&["auth", "can-i", "*", "*", "--all-namespaces"]).ok();
    assert_eq!(out.stdout.trim(), "yes", "{out}");
}

// ---------------------------------------------------------------------------------------
// delete and namespaces

fn delete(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "configmap", "gone", "--from-literal=a=b"])
        .ok();
    k.run(&["delete", "configmap", "gone"])
        .ok()
        .stdout_has("configmap \"gone\" deleted");
    fails_with(k.run(&["get", "configmap", "gone"]), &["NotFound"]);
    fails_with(
        k.run(&["delete", "configmap", "gone"]),
        &["Error from server (NotFound): configmaps \"gone\" not found"],
    );
    k.run(&["delete", "configmap", "gone", "--ignore-not-found"])
        .ok();
    for name in ["sel-1", "sel-2", "keep"] {
        k.run(&["create", "configmap", name, "--from-literal=a=b"])
            .ok();
    }
    k.run(&["label", "configmap", "sel-1", "sel-2", "batch=x"])
        .ok();
    let out = k.run(&["delete", "configmap", "-l", "batch=x"]).ok();
    assert!(
        out.stdout.contains("\"sel-1\" deleted") && out.stdout.contains("\"sel-2\" deleted"),
        "{out}"
    );
    k.run(&["get", "configmap", "keep"]).ok();
    k.apply(&deployment("web", "nginx:1.27"));
    k.run(&["delete", "deployment", "web"])
        .ok()
        .stdout_has("deployment.apps \"web\" deleted");
    eventually(SETTLE, || is_gone(k, &["deployment", "web"]));
}

fn delete_with_finalizer(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.apply(&configmap("held", &[("a", "b")], &["example.com/hold"]));
    let mut deleting = k
        .spawn(&["delete", "configmap", "held", "--timeout=60s"])
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let cm = eventually(SETTLE, || {
        let cm = k.get_json(&["cm", "held"]);
        (!cm["metadata"]["deletionTimestamp"].is_null())
            .then_some(cm.clone())
            .ok_or_else(|| format!("no deletionTimestamp yet: {cm}"))
    });
    has(&cm, "/metadata/finalizers", json!(["example.com/hold"]));
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        deleting.is_running(),
        "delete returned while a finalizer holds the object: {}",
        deleting.describe()
    );
    k.run(&[
        "patch",
        "configmap",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])
    .ok();
    let code = deleting.wait_exit(Duration::from_secs(30));
    assert_eq!(
        code,
        Some(0),
        "delete did not finish once the finalizer was removed: {}",
        deleting.describe()
    );
    fails_with(k.run(&["get", "configmap", "held"]), &["NotFound"]);
}

fn delete_no_wait(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.apply(&configmap("held", &[("a", "b")], &["example.com/hold"]));
    let started = std::time::Instant::now();
    k.run(&["delete", "configmap", "held", "--wait=false"])
        .ok()
        .stdout_has("configmap \"held\" deleted");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "--wait=false waited"
    );
    let cm = k.get_json(&["cm", "held"]);
    assert!(cm["metadata"]["deletionTimestamp"].is_string(), "{cm}");
    has(&cm, "/metadata/deletionGracePeriodSeconds", json!(0));
    // Only finalizer removals are allowed now; the object goes once the list is empty.
    k.run(&[
        "patch",
        "configmap",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])
    .ok();
    eventually(SETTLE, || is_gone(k, &["configmap", "held"]));
}

fn namespace_lifecycle(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "namespace", "team"]).ok();
    eventually(SETTLE, || {
        let out = k.run(&[
            "get",
            "serviceaccount",
            "default",
            "-n",
            "team",
            "-o",
            "name",
        ]);
        (out.code == 0).then_some(()).ok_or_else(|| out.to_string())
    });
    let ca = eventually(SETTLE, || {
        let out = k.run(&[
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            "team",
            "-o",
            "json",
        ]);
        (out.code == 0)
            .then(|| out.json())
            .ok_or_else(|| out.to_string())
    });
    assert!(
        ca["data"]["ca.crt"]
            .as_str()
            .is_some_and(|p| p.contains("BEGIN CERTIFICATE")),
        "{ca}"
    );
    k.run(&[
        "create",
        "configmap",
        "inside",
        "-n",
        "team",
        "--from-literal=a=b",
    ])
    .ok();
    k.apply(
        &deployment("web", "nginx:1.27")
            .replace("  name: web\n", "  name: web\n  namespace: team\n"),
    );
    k.run(&["delete", "namespace", "team", "--timeout=60s"])
        .ok()
        .stdout_has("namespace \"team\" deleted");
    eventually(SETTLE, || is_gone(k, &["namespace", "team"]));
    let leftovers = k.get_json(&[
        "configmaps,deployments",
        "-A",
        "--field-selector",
        "metadata.namespace=team",
    ]);
    assert_eq!(
        leftovers["items"],
        json!([]),
        "objects outlived their namespace: {leftovers}"
    );
    // A namespace of the same name starts empty.
    k.run(&["create", "namespace", "team"]).ok();
    fails_with(
        k.run(&["get", "configmap", "inside", "-n", "team"]),
        &["NotFound"],
    );
}

fn namespace_terminating(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&["create", "namespace", "closing"]).ok();
    k.apply(
        &configmap("held", &[("a", "b")], &["example.com/hold"])
            .replace("  name: held\n", "  name: held\n  namespace: closing\n"),
    );
    k.run(&["delete", "namespace", "closing", "--wait=false"])
        .ok();
    let ns = eventually(SETTLE, || {
        let ns = k.get_json(&["namespace", "closing"]);
        (ns["status"]["phase"] == "Terminating")
            .then_some(ns.clone())
            .ok_or_else(|| format!("not Terminating: {ns}"))
    });
    assert!(ns["metadata"]["deletionTimestamp"].is_string(), "{ns}");
    let table = k.run(&["get", "namespace", "closing"]).ok().table();
    assert_eq!(table.cell("closing", "STATUS"), "Terminating");
    fails_with(
        k.run(&[
            "create",
            "configmap",
            "late",
            "-n",
            "closing",
            "--from-literal=a=b",
        ]),
        &[
            "configmaps \"late\" is forbidden",
            "unable to create new content in namespace closing because it is being terminated",
        ],
    );
    k.run(&[
        "patch",
        "configmap",
        "held",
        "-n",
        "closing",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])
    .ok();
    eventually(SETTLE, || is_gone(k, &["namespace", "closing"]));
}

fn namespace_missing(ctx: &Ctx) {
    let k = &ctx.kubectl;
    fails_with(
        k.run(&[
            "create",
            "configmap",
            "x",
            "-n",
            "nowhere",
            "--from-literal=a=b",
        ]),
        &["namespaces \"nowhere\" not found"],
    );
    let out = k.run(&["get", "configmaps", "-n", "nowhere"]).ok();
    assert!(
        out.stderr
            .contains("No resources found in nowhere namespace."),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------
// bad input

fn invalid_name(ctx: &Ctx) {
    let k = &ctx.kubectl;
    fails_with(
        k.run(&["create", "configmap", "Bad_Name", "--from-literal=a=b"]),
        &[
            "ConfigMap \"Bad_Name\" is invalid",
            "metadata.name: Invalid value: \"Bad_Name\"",
            "a lowercase RFC 1123 subdomain must consist of",
        ],
    );
    let out = fails_with(
        k.run_stdin(
            &["apply", "-f", "-"],
            &configmap("Also_Bad", &[("a", "b")], &[]),
        ),
        &["is invalid", "metadata.name: Invalid value: \"Also_Bad\""],
    );
    assert!(out.stderr.contains("Invalid"), "{out}");
    fails_with(
        k.run(&["create", "namespace", "UPPER"]),
        &["Namespace \"UPPER\" is invalid", "RFC 1123 label"],
    );
}

fn invalid_spec(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let no_image = deployment("web", "nginx:1.27").replace("        image: nginx:1.27\n", "");
    fails_with(
        k.run_stdin(&["apply", "-f", "-"], &no_image),
        &[
            "The Deployment \"web\" is invalid",
            "spec.template.spec.containers[0].image: Required value",
        ],
    );
    let bad_selector = deployment("web", "nginx:1.27").replace(
        "      labels:\n        app: web\n    spec:",
        "      labels:\n        app: other\n    spec:",
    );
    fails_with(
        k.run_stdin(&["apply", "-f", "-"], &bad_selector),
        &[
            "spec.template.metadata.labels: Invalid value",
            "`selector` does not match template `labels`",
        ],
    );
    let wrong_type = deployment("web", "nginx:1.27").replace("replicas: 2", "replicas: two");
    fails_with(
        k.run_stdin(&["create", "-f", "-"], &wrong_type),
        &["replicas"],
    );
    fails_with(k.run(&["get", "deployment", "web"]), &["NotFound"]);
}

fn unknown_field_strict(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let typo = deployment("web", "nginx:1.27").replace("  replicas: 2\n", "  replicaz: 2\n");
    fails_with(
        k.run_stdin(&["apply", "--validate=strict", "-f", "-"], &typo),
        &["unknown field \"spec.replicaz\""],
    );
    fails_with(
        k.run_stdin(&["create", "--validate=strict", "-f", "-"], &typo),
        &["unknown field \"spec.replicaz\""],
    );
    fails_with(k.run(&["get", "deployment", "web"]), &["NotFound"]);
    // Strict is the default since 1.25.
    fails_with(
        k.run_stdin(&["apply", "-f", "-"], &typo),
        &["unknown field \"spec.replicaz\""],
    );
}

fn unknown_field_warn(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let typo = deployment("web", "nginx:1.27").replace("  replicas: 2\n", "  replicaz: 2\n");
    let out = k
        .run_stdin(&["apply", "--validate=warn", "-f", "-"], &typo)
        .ok();
    assert!(
        out.stderr.contains("unknown field \"spec.replicaz\""),
        "no warning: {out}"
    );
    assert!(out.stdout.contains("deployment.apps/web created"), "{out}");
    let with_extra = configmap("quiet", &[("a", "b")], &[]).replace("\ndata:", "\nextra: 1\ndata:");
    let out = k
        .run_stdin(&["create", "--validate=false", "-f", "-"], &with_extra)
        .ok();
    assert!(
        !out.stderr.contains("unknown field"),
        "--validate=false must not warn: {out}"
    );
    assert!(
        k.get_json(&["cm", "quiet"])["extra"].is_null(),
        "unknown fields are dropped"
    );
}

fn malformed_yaml(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let broken = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n data: [\n";
    let out = k.run_stdin(&["apply", "-f", "-"], broken).failed();
    assert!(
        out.stderr.to_lowercase().contains("yaml"),
        "the error names YAML: {out}"
    );
    let out = k
        .run_stdin(
            &["create", "-f", "-"],
            "{\"apiVersion\": \"v1\", \"kind\": ",
        )
        .failed();
    assert!(!out.stderr.is_empty(), "{out}");
    fails_with(k.run(&["get", "configmap", "x"]), &["NotFound"]);
}

fn wrong_api_version(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let wrong =
        deployment("web", "nginx:1.27").replace("apiVersion: apps/v1", "apiVersion: apps/v9");
    fails_with(
        k.run_stdin(&["apply", "-f", "-"], &wrong),
        &["no matches for kind \"Deployment\" in version \"apps/v9\""],
    );
    let core = deployment("web", "nginx:1.27").replace("apiVersion: apps/v1", "apiVersion: v1");
    fails_with(
        k.run_stdin(&["apply", "-f", "-"], &core),
        &["no matches for kind \"Deployment\" in version \"v1\""],
    );
}

fn wrong_kind(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let widget = "apiVersion: v1\nkind: Widget\nmetadata:\n  name: w\n";
    fails_with(
        k.run_stdin(&["apply", "-f", "-"], widget),
        &["no matches for kind \"Widget\" in version \"v1\""],
    );
    let kindless = "apiVersion: v1\nmetadata:\n  name: w\n";
    let out = k.run_stdin(&["apply", "-f", "-"], kindless).failed();
    assert!(
        out.stderr.to_lowercase().contains("kind"),
        "the error names the missing kind: {out}"
    );
}
