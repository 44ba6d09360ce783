//! Real-world installs, applied with every kubectl version as their READMEs say:
//!
//! - `corpora_manifests`: the shared corpus (`shared/corpora/manifests/`, or
//!   `$BEEMESH_CORPORA`); SKIP when this machine has none.
//! - `corpora_in_repo`: `conformance/corpora/`, hand-written multi-document installs in the
//!   shape of well-known projects' (cert-manager, metrics-server, ingress-nginx,
//!   prometheus-operator, kube-state-metrics, Argo CD, Flux, Istio base, Gateway API, a
//!   kubebuilder operator, a tenant namespace, an app bundle of every common built-in), so
//!   every run proves it. None relies on a webhook being called: a real cluster would
//!   refuse what a `failurePolicy: Fail` webhook with no running service guards.
//!
//! Per manifest (on a node with `--runtime sim`): CRDs first (waiting for `Established`), then everything else with
//! client-side `kubectl apply` (server-side for objects too big for the last-applied
//! annotation), applied twice with the second a no-op (no resourceVersion moves), every
//! object read back as applied (the manifest's fields against the live object, tolerant of
//! server defaults), `kubectl diff` empty, every Deployment, DaemonSet and Job with running
//! pods; then the same with `apply --server-side
//! --force-conflicts` (the move from client-side that projects advise); then `kubectl
//! delete -f` removes everything. A manifest that needs a group nobody serves is left out
//! with the reason; the case fails with each failed step named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use beemesh_conformance::locate::{corpora_dir, workspace_root};
use beemesh_conformance::report::{Verdict, record};
use beemesh_conformance::{Ctx, Kubectl, kubectl_cases, skip};
use serde_json::Value;

// The node runs pods (pretending), so the installs' workloads are seen running too.
kubectl_cases!(node_args = ["--runtime", "sim"]; corpora_manifests, corpora_in_repo);

fn corpora_manifests(ctx: &Ctx) {
    let Some(dir) = corpora_dir() else {
        skip("no shared/corpora/manifests directory on this machine (set BEEMESH_CORPORA)");
    };
    run_corpus(ctx, "corpora_manifests", &dir);
}

fn corpora_in_repo(ctx: &Ctx) {
    let dir = workspace_root().join("conformance").join("corpora");
    let files = run_corpus(ctx, "corpora_in_repo", &dir);
    assert!(files >= 13, "the in-repo corpus has only {files} manifests");
}

/// The longest `metadata.annotations` upstream accepts (so the longest object client-side
/// apply can record in `kubectl.kubernetes.io/last-applied-configuration`).
const ANNOTATIONS_LIMIT: usize = 262_144;
const DELETE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an install's workloads may take to get running pods, all together.
const WORKLOADS_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether a workload's status says its pods run: see [`Run::workloads_run`].
fn workload_running(kind: &str, obj: &Value) -> bool {
    let status = &obj["status"];
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    match kind {
        "Deployment" => {
            let want = obj["spec"]["replicas"].as_i64().unwrap_or(1);
            int(&status["availableReplicas"]) >= want && int(&status["updatedReplicas"]) >= want
        }
        "DaemonSet" => {
            let want = int(&status["desiredNumberScheduled"]);
            want >= 1 && int(&status["numberReady"]) == want
        }
        "Job" => int(&status["active"]) + int(&status["succeeded"]) >= 1,
        _ => true,
    }
}

/// Applies every manifest under `dir`; returns how many were installed (not left out).
/// Each left-out manifest gets its own SKIP line (`<case>:<file>`) with the reason.
fn run_corpus(ctx: &Ctx, case: &str, dir: &Path) -> usize {
    let k = &ctx.kubectl;
    let served: BTreeSet<String> = k
        .run(&["api-versions"])
        .ok()
        .stdout
        .lines()
        .map(str::to_string)
        .collect();
    let mut files = Vec::new();
    collect_manifests(dir, &mut files);
    files.sort();
    let started = Instant::now();
    let mut installed = 0;
    let mut left_out = Vec::new();
    let mut failures = Vec::new();
    for file in &files {
        let label = file.strip_prefix(dir).unwrap_or(file).display().to_string();
        let docs = match documents(file) {
            Ok(docs) => docs,
            Err(e) => {
                failures.push(format!("{label}: unreadable: {e}"));
                continue;
            }
        };
        if docs.is_empty() {
            continue;
        }
        let install = Install::split(&label, docs);
        if let Some(why) = install.unservable(&served) {
            record(
                Verdict::Skip,
                &format!("{case}:{label}"),
                &format!("kubectl-{}", k.version()),
                &format!("left out: {why}"),
            );
            left_out.push(format!("{label} ({why})"));
            continue;
        }
        installed += 1;
        let mut run = Run {
            k,
            install: &install,
            failures: Vec::new(),
            applied_rest: false,
        };
        run.all_steps();
        failures.extend(run.failures);
    }
    eprintln!(
        "corpus {}: {installed} installed, {} left out, {} failed steps, {:.1}s{}{}",
        dir.display(),
        left_out.len(),
        failures.len(),
        started.elapsed().as_secs_f64(),
        if left_out.is_empty() {
            String::new()
        } else {
            format!("\nleft out: {}", left_out.join("; "))
        },
        if failures.is_empty() {
            String::new()
        } else {
            format!("\nfailed: {}", failures.join("\n        "))
        },
    );
    assert!(
        failures.is_empty(),
        "{} failed steps over {installed} installs: {}",
        failures.len(),
        failures.join(" || ")
    );
    installed
}

/// One manifest: its CRDs and everything else, in file order.
struct Install {
    label: String,
    crds: Vec<Value>,
    rest: Vec<Value>,
}

impl Install {
    fn split(label: &str, docs: Vec<Value>) -> Install {
        let (crds, rest) = docs
            .into_iter()
            .partition(|d| d["kind"] == "CustomResourceDefinition");
        Install {
            label: label.to_string(),
            crds,
            rest,
        }
    }

    /// Why the install cannot run here: an object whose group-version neither the server
    /// nor one of the manifest's own CRDs serves.
    fn unservable(&self, served: &BTreeSet<String>) -> Option<String> {
        let mut defined = BTreeSet::new();
        for crd in &self.crds {
            let group = crd["spec"]["group"].as_str().unwrap_or_default();
            for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
                if v["served"] != Value::Bool(false) {
                    defined.insert(format!("{group}/{}", v["name"].as_str().unwrap_or("")));
                }
            }
        }
        let missing: BTreeSet<String> = self
            .crds
            .iter()
            .chain(&self.rest)
            .filter_map(|d| {
                let gv = d["apiVersion"].as_str().unwrap_or_default();
                (!served.contains(gv) && !defined.contains(gv))
                    .then(|| format!("{gv} {}", d["kind"].as_str().unwrap_or("?")))
            })
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "needs {} which no server API or CRD in the manifest serves",
                missing.into_iter().collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// The steps of one install with one kubectl, collecting what failed.
struct Run<'a> {
    k: &'a Kubectl,
    install: &'a Install,
    failures: Vec<String>,
    /// Whether the non-CRD objects were ever applied (else deleting them is moot: their
    /// kinds may not even resolve).
    applied_rest: bool,
}

/// The resourceVersion of every object, by `kind/namespace/name`, and the objects.
type Snapshot = BTreeMap<String, (String, Value)>;

impl Run<'_> {
    fn fail(&mut self, step: &str, why: impl std::fmt::Display) {
        self.failures
            .push(format!("{}: {step}: {why}", self.install.label));
    }

    fn all_steps(&mut self) {
        let stem = self
            .install
            .label
            .replace(['/', '.'], "_")
            .trim_matches('_')
            .to_string();
        let crd_file = self.write(&format!("{stem}-crds.yaml"), &self.install.crds);
        let rest_file = self.write(&format!("{stem}-rest.yaml"), &self.install.rest);
        let created_namespaces = self.create_outside_namespaces();

        if self.client_side(crd_file.as_deref(), rest_file.as_deref()) {
            self.server_side(crd_file.as_deref(), rest_file.as_deref());
        }
        self.delete(crd_file.as_deref(), rest_file.as_deref());
        for ns in created_namespaces {
            self.k.run(&[
                "delete",
                "namespace",
                &ns,
                "--ignore-not-found",
                "--wait=false",
            ]);
        }
    }

    /// Writes `docs` as one multi-document file (JSON documents); None when there are none.
    fn write(&self, name: &str, docs: &[Value]) -> Option<String> {
        if docs.is_empty() {
            return None;
        }
        let text: String = docs.iter().map(|d| format!("---\n{d}\n")).collect();
        Some(
            self.k
                .write_file(name, &text)
                .to_string_lossy()
                .into_owned(),
        )
    }

    /// Namespaces the manifest's objects live in but does not create (installs document
    /// `kubectl create namespace X` before `apply`).
    fn create_outside_namespaces(&mut self) -> Vec<String> {
        let defined: BTreeSet<&str> = self
            .install
            .rest
            .iter()
            .filter(|d| d["kind"] == "Namespace")
            .filter_map(|d| d["metadata"]["name"].as_str())
            .collect();
        let wanted: BTreeSet<String> = self
            .install
            .rest
            .iter()
            .filter_map(|d| d["metadata"]["namespace"].as_str())
            .filter(|ns| !defined.contains(ns))
            .map(str::to_string)
            .collect();
        let mut created = Vec::new();
        for ns in wanted {
            if self.k.run(&["get", "namespace", &ns]).code == 0 {
                continue;
            }
            let out = self.k.run(&["create", "namespace", &ns]);
            if out.code == 0 {
                created.push(ns);
            } else {
                self.fail(&format!("create namespace {ns}"), out.brief());
            }
        }
        created
    }

    /// Client-side apply, twice, read back, diff. False when nothing got applied.
    fn client_side(&mut self, crds: Option<&str>, rest: Option<&str>) -> bool {
        self.too_big_refused();
        if let Some(crds) = crds {
            let big = self.install.crds.iter().any(too_big_for_client_side);
            if !self.apply("client-side apply CRDs", crds, big, false) {
                return false;
            }
            if !self.wait_established() {
                return false;
            }
        }
        if let Some(rest) = rest {
            let big = self.install.rest.iter().any(too_big_for_client_side);
            if !self.apply("client-side apply", rest, big, false) {
                return false;
            }
            self.applied_rest = true;
        }
        self.idempotent("client-side", crds, rest, false);
        self.read_back("client-side");
        self.diff("client-side", crds, rest);
        self.workloads_run();
        true
    }

    /// The install's Deployments, DaemonSets and Jobs get running pods (the node runs
    /// `--runtime sim`): Deployments reach their replicas available, DaemonSets one ready
    /// pod per eligible node, Jobs an active or succeeded pod.
    fn workloads_run(&mut self) {
        let workloads: Vec<(String, String, String)> = self
            .install
            .rest
            .iter()
            .filter_map(|d| {
                let kind = d["kind"].as_str()?;
                if !matches!(kind, "Deployment" | "DaemonSet" | "Job") {
                    return None;
                }
                Some((
                    kind.to_string(),
                    d["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("default")
                        .to_string(),
                    d["metadata"]["name"].as_str()?.to_string(),
                ))
            })
            .collect();
        let deadline = Instant::now() + WORKLOADS_TIMEOUT;
        for (kind, ns, name) in workloads {
            let (running, last) = loop {
                let out =
                    self.k
                        .run(&["get", &kind.to_lowercase(), &name, "-n", &ns, "-o", "json"]);
                let obj: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
                if workload_running(&kind, &obj) {
                    break (true, obj);
                }
                if Instant::now() > deadline {
                    break (false, obj);
                }
                std::thread::sleep(Duration::from_millis(300));
            };
            if !running {
                self.fail(
                    &format!("{kind} {ns}/{name} running under sim"),
                    format!("status {}", last["status"]),
                );
            }
        }
    }

    /// An object too big for the last-applied annotation: plain client-side apply is
    /// refused as upstream refuses it (which is why projects document `--server-side`).
    fn too_big_refused(&mut self) {
        let big: Vec<Value> = self
            .install
            .crds
            .iter()
            .chain(&self.install.rest)
            .filter(|d| too_big_for_client_side(d))
            .cloned()
            .collect();
        for doc in big {
            let id = identity(&doc);
            let Some(file) = self.write("too-big.yaml", std::slice::from_ref(&doc)) else {
                continue;
            };
            let out = self.k.run(&["apply", "-f", &file]);
            if out.code == 0 {
                self.fail(
                    "client-side apply of an object over the annotation limit",
                    format!("{id} was accepted with a last-applied annotation over {ANNOTATIONS_LIMIT} bytes"),
                );
                self.k.run(&["delete", "-f", &file, "--ignore-not-found"]);
            } else if !out.stderr.contains("Too long") {
                self.fail(
                    "client-side apply of an object over the annotation limit",
                    format!("{id}: refused, but not as too long: {}", out.brief()),
                );
            }
        }
    }

    /// Server-side apply (taking over from client-side), twice, read back, diff.
    fn server_side(&mut self, crds: Option<&str>, rest: Option<&str>) {
        for (step, file) in [
            ("server-side apply CRDs", crds),
            ("server-side apply", rest),
        ] {
            if let Some(file) = file
                && !self.apply(step, file, true, true)
            {
                return;
            }
        }
        self.idempotent("server-side", crds, rest, true);
        self.read_back("server-side");
        self.diff("server-side", crds, rest);
    }

    fn apply(&mut self, step: &str, file: &str, server_side: bool, force: bool) -> bool {
        let mut args = vec!["apply", "-f", file];
        if server_side {
            args.push("--server-side");
        }
        if force {
            args.push("--force-conflicts");
        }
        let out = self.k.run(&args);
        if out.code != 0 {
            self.fail(step, out.brief());
            return false;
        }
        true
    }

    fn wait_established(&mut self) -> bool {
        let names: Vec<String> = self
            .install
            .crds
            .iter()
            .filter_map(|c| c["metadata"]["name"].as_str())
            .map(|n| format!("crd/{n}"))
            .collect();
        let mut args = vec!["wait", "--for=condition=Established", "--timeout=30s"];
        args.extend(names.iter().map(String::as_str));
        let out = self.k.run(&args);
        if out.code != 0 {
            self.fail("wait for CRDs Established", out.brief());
            return false;
        }
        true
    }

    /// A second identical apply changes no object's resourceVersion.
    fn idempotent(&mut self, mode: &str, crds: Option<&str>, rest: Option<&str>, ssa: bool) {
        let Some(before) = self.snapshot(&format!("{mode} snapshot")) else {
            return;
        };
        // managedFields times have one-second resolution: a re-apply within the same second
        // as the first would hide a write that only moves a timestamp.
        std::thread::sleep(Duration::from_millis(1100));
        for (what, file, objects) in [
            ("CRDs", crds, &self.install.crds),
            ("objects", rest, &self.install.rest),
        ] {
            if let Some(file) = file {
                let big = objects.iter().any(too_big_for_client_side);
                if !self.apply(&format!("{mode} re-apply {what}"), file, ssa || big, ssa) {
                    return;
                }
            }
        }
        let Some(after) = self.snapshot(&format!("{mode} snapshot after re-apply")) else {
            return;
        };
        // Upstream writes a Secret applied server-side with `stringData` on every apply (the
        // applied `stringData` never matches the stored object: kubernetes#118519), so
        // those are not held to the no-op rule.
        let upstream_writes: BTreeSet<String> = if ssa {
            self.install
                .rest
                .iter()
                .filter(|d| d["kind"] == "Secret" && d.get("stringData").is_some())
                .map(identity)
                .collect()
        } else {
            BTreeSet::new()
        };
        let moved: Vec<String> = before
            .iter()
            .filter(|(id, _)| {
                !upstream_writes
                    .iter()
                    .any(|w| same_ignoring_namespace(id, w))
            })
            .filter_map(|(id, (rv, old))| match after.get(id) {
                Some((rv2, _)) if rv2 == rv => None,
                // A controller's own write (a Deployment's status and revision annotation)
                // moves the resourceVersion on a real cluster too; the re-apply wrote
                // nothing if what the applier owns is as it was.
                Some((_, new)) if applier_view(new) == applier_view(old) => None,
                Some((rv2, _)) => Some(format!("{id} {rv}→{rv2}")),
                None => Some(format!("{id} gone")),
            })
            .collect();
        if !moved.is_empty() {
            self.fail(
                &format!("{mode} re-apply is not a no-op"),
                format!("resourceVersion moved: {}", moved.join(", ")),
            );
        }
    }

    /// Every object of the manifest, live: `kubectl get -f` of both files.
    fn snapshot(&mut self, step: &str) -> Option<Snapshot> {
        let mut all = Snapshot::new();
        for docs in [&self.install.crds, &self.install.rest] {
            let Some(file) = self.write("snapshot.yaml", docs) else {
                continue;
            };
            let out = self.k.run(&["get", "-f", &file, "-o", "json"]);
            if out.code != 0 {
                self.fail(step, out.brief());
                return None;
            }
            let got: Value = match serde_json::from_str(&out.stdout) {
                Ok(v) => v,
                Err(e) => {
                    self.fail(step, format!("not JSON: {e}"));
                    return None;
                }
            };
            let items = match got["kind"].as_str() {
                Some("List") => got["items"].as_array().cloned().unwrap_or_default(),
                _ => vec![got],
            };
            for item in items {
                let rv = item["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                all.insert(identity(&item), (rv, item));
            }
        }
        Some(all)
    }

    /// Each manifest object's fields equal the live object's (defaults the server adds
    /// are not compared; quantities compare by value).
    fn read_back(&mut self, mode: &str) {
        let Some(live) = self.snapshot(&format!("{mode} read back")) else {
            return;
        };
        let mut problems = Vec::new();
        for doc in self.install.crds.iter().chain(&self.install.rest) {
            let id = identity(doc);
            let Some((_, obj)) = live.get(&id).or_else(|| {
                // Manifests may leave a namespaced object's namespace out (the default).
                live.iter()
                    .find(|(k, _)| same_ignoring_namespace(k, &id))
                    .map(|(_, v)| v)
            }) else {
                problems.push(format!("{id} not found"));
                continue;
            };
            let mut diffs = Vec::new();
            let want = comparable(doc);
            compare("", &want, obj, &mut diffs);
            if !diffs.is_empty() {
                diffs.truncate(4);
                problems.push(format!("{id}: {}", diffs.join(", ")));
            }
        }
        if !problems.is_empty() {
            problems.truncate(6);
            self.fail(
                &format!("{mode} read back"),
                format!("live objects differ: {}", problems.join("; ")),
            );
        }
    }

    fn diff(&mut self, mode: &str, crds: Option<&str>, rest: Option<&str>) {
        let mut args = vec!["diff"];
        for file in [crds, rest].into_iter().flatten() {
            args.extend(["-f", file]);
        }
        if mode == "server-side" {
            args.extend(["--server-side", "--force-conflicts"]);
        }
        let out = self.k.run(&args);
        if out.code != 0 {
            self.fail(
                &format!("{mode} kubectl diff"),
                format!("exit {}: {}", out.code, out.brief()),
            );
        }
    }

    /// `kubectl delete -f` (objects, then CRDs) and wait until nothing is left.
    fn delete(&mut self, crds: Option<&str>, rest: Option<&str>) {
        let rest = rest.filter(|_| self.applied_rest);
        for (step, file) in [("delete objects", rest), ("delete CRDs", crds)] {
            let Some(file) = file else { continue };
            let out = self.k.run(&[
                "delete",
                "-f",
                file,
                "--ignore-not-found",
                "--wait=true",
                "--timeout=60s",
            ]);
            if out.code != 0 {
                self.fail(step, out.brief());
                continue;
            }
            let deadline = Instant::now() + DELETE_TIMEOUT;
            loop {
                let left = self
                    .k
                    .run(&["get", "-f", file, "--ignore-not-found", "-o", "name"]);
                if left.code == 0 && left.stdout.trim().is_empty() {
                    break;
                }
                if Instant::now() > deadline {
                    self.fail(
                        &format!("{step}: still present after {DELETE_TIMEOUT:?}"),
                        left.brief(),
                    );
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}

/// Too big for client-side apply: the last-applied annotation (the object's JSON) would
/// exceed the annotations limit, so projects document `--server-side` for it.
fn too_big_for_client_side(doc: &Value) -> bool {
    doc.to_string().len() > ANNOTATIONS_LIMIT
}

/// `group/Kind/namespace/name` of an object.
fn identity(obj: &Value) -> String {
    let group = obj["apiVersion"]
        .as_str()
        .and_then(|gv| gv.rsplit_once('/').map(|(g, _)| g))
        .unwrap_or("");
    format!(
        "{group}/{}/{}/{}",
        obj["kind"].as_str().unwrap_or(""),
        obj["metadata"]["namespace"].as_str().unwrap_or(""),
        obj["metadata"]["name"].as_str().unwrap_or("")
    )
}

fn same_ignoring_namespace(live: &str, wanted: &str) -> bool {
    fn strip(id: &str) -> (Option<&str>, Option<&str>, Option<&str>) {
        let parts: Vec<&str> = id.split('/').collect();
        (
            parts.first().copied(),
            parts.get(1).copied(),
            parts.last().copied(),
        )
    }
    strip(live) == strip(wanted)
}

/// The manifest as the server stores it: without `status` (a status subresource ignores it,
/// and built-ins own theirs) and with a Secret's `stringData` merged into `data`.
fn comparable(doc: &Value) -> Value {
    let mut want = doc.clone();
    if let Some(obj) = want.as_object_mut() {
        obj.remove("status");
        if doc["kind"] == "Secret"
            && doc["apiVersion"] == "v1"
            && let Some(Value::Object(strings)) = obj.remove("stringData")
        {
            use base64::Engine as _;
            let data = obj
                .entry("data")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(data) = data.as_object_mut() {
                for (k, v) in strings {
                    let text = v.as_str().unwrap_or_default();
                    data.insert(
                        k,
                        Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
                    );
                }
            }
        }
    }
    want
}

/// Records where `live` differs from every field `want` sets. Empty or null wanted values
/// match a missing live field (the server omits empty optionals); numbers and strings that
/// spell the same number match; Kubernetes quantities match by value.
fn compare(path: &str, want: &Value, live: &Value, diffs: &mut Vec<String>) {
    match (want, live) {
        (Value::Null, _) => {}
        (Value::Object(w), _) if w.is_empty() && matches!(live, Value::Null | Value::Object(_)) => {
        }
        (Value::Array(w), Value::Null) if w.is_empty() => {}
        (Value::String(w), Value::Null) if w.is_empty() => {}
        (Value::Object(w), Value::Object(l)) => {
            for (key, value) in w {
                let at = format!("{path}.{key}");
                compare(&at, value, l.get(key).unwrap_or(&Value::Null), diffs);
            }
        }
        (Value::Array(w), Value::Array(l)) if w.len() == l.len() => {
            for (i, (a, b)) in w.iter().zip(l).enumerate() {
                compare(&format!("{path}[{i}]"), a, b, diffs);
            }
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (Value::Number(a), Value::String(b)) | (Value::String(b), Value::Number(a))
            if b.parse::<f64>().ok() == a.as_f64()
                || (quantity(b).is_some() && quantity(b) == quantity(&a.to_string())) => {}
        (Value::String(a), Value::String(b))
            if a == b || (quantity(a).is_some() && quantity(a) == quantity(b)) => {}
        _ if want == live => {}
        _ => diffs.push(format!("{path}: want {} got {}", short(want), short(live))),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

/// The value of a Kubernetes quantity (`100m`, `1Gi`, `0.5`, `1e3`), or None.
fn quantity(text: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 14] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    let text = text.trim();
    if text.is_empty()
        || !text.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '+' || c == '-')
    {
        return None;
    }
    for (suffix, factor) in SUFFIXES {
        if let Some(number) = text.strip_suffix(suffix) {
            return number.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    if let Some(number) = text.strip_suffix('E') {
        return number.parse::<f64>().ok().map(|n| n * 1e18);
    }
    text.parse::<f64>().ok()
}

fn collect_manifests(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_manifests(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
}

/// Every non-empty YAML document of a file (JSON is YAML), `List`s flattened.
fn documents(file: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: Value = serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())?;
        flatten(value, &mut docs);
    }
    Ok(docs)
}

fn flatten(value: Value, out: &mut Vec<Value>) {
    if value.is_null() {
        return;
    }
    let is_list =
        value["kind"].as_str().is_some_and(|k| k.ends_with("List")) && value["items"].is_array();
    if is_list {
        if let Value::Array(items) = value["items"].clone() {
            for item in items {
                flatten(item, out);
            }
        }
    } else {
        out.push(value);
    }
}

/// What an apply by kubectl writes and nothing else does: the generation (spec changes),
/// the last-applied annotation, and kubectl's own managedFields entries (whose time moves
/// only when the manager's write changed something).
fn applier_view(obj: &Value) -> Value {
    let kubectl_entries: Vec<Value> = obj["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| {
                    e["manager"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("kubectl"))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "generation": obj["metadata"]["generation"],
        "lastApplied": obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "managedFields": kubectl_entries,
        "spec": obj["spec"],
        "data": obj["data"],
    })
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    #[test]
    fn compare_tolerates_defaults_and_quantities() {
        let want = json!({"spec": {"cpu": "0.5", "port": 80, "empty": {}, "list": [], "n": null}});
        let live = json!({"spec": {"cpu": "500m", "port": 80, "extra": true}});
        let mut diffs = Vec::new();
        compare("", &want, &live, &mut diffs);
        assert!(diffs.is_empty(), "{diffs:?}");
        compare(
            "",
            &json!({"cpu": 0.1}),
            &json!({"cpu": "100m"}),
            &mut diffs,
        );
        assert!(diffs.is_empty(), "{diffs:?}");
        compare("", &json!({"a": "1Gi"}), &json!({"a": "1G"}), &mut diffs);
        assert_eq!(diffs.len(), 1);
    }
}
