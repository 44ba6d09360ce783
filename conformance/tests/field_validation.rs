//! `kubectl create/apply/replace` send `fieldValidation=Strict` by default (1.27+): a
//! manifest with an unknown field fails with the words a real cluster answers, prints
//! `Warning: unknown field ...` under `--validate=warn`, and goes through silently under
//! `--validate=false`.

use beemesh_conformance::{Ctx, kubectl_cases};

kubectl_cases!(unknown_field_messages_as_a_cluster_prints_them);

fn deployment(replicas_key: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  {replicas_key}: 2
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
        image: {image}
"
    )
}

/// The one line kubectl printed on stderr (kubectl 1.27 … 1.33 print the same).
#[track_caller]
fn only_line(out: &beemesh_conformance::Output) -> &str {
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one stderr line expected: {out}");
    lines[0]
}

fn unknown_field_messages_as_a_cluster_prints_them(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let typo = deployment("replicaz", "nginx:1.27");
    let decode_error = "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replicaz\"";
    // A new object: POST with fieldValidation=Strict, the decoder's 400.
    for verb in ["apply", "create"] {
        let out = k.run_stdin(&[verb, "-f", "-"], &typo).failed();
        assert_eq!(
            only_line(&out),
            format!(
                "Error from server (BadRequest): error when creating \"STDIN\": {decode_error}"
            ),
            "{verb}"
        );
    }
    // --validate=warn: the server's warning, printed by kubectl's warning handler.
    let out = k
        .run_stdin(&["apply", "--validate=warn", "-f", "-"], &typo)
        .ok();
    assert_eq!(only_line(&out), "Warning: unknown field \"spec.replicaz\"");
    assert_eq!(out.stdout.trim(), "deployment.apps/web created");

    // An existing object: apply sends a strategic merge patch, and upstream's patch
    // handler answers 422 on `patch` with Go's rendering of the patch.
    let changed = deployment("replicaz", "nginx:1.28");
    let out = k.run_stdin(&["apply", "-f", "-"], &changed).failed();
    let line = only_line(&out);
    assert!(
        line.starts_with(
            "The request is invalid: patch: Invalid value: \"map[metadata:map[annotations:map[kubectl.kubernetes.io/last-applied-configuration:{\\\"apiVersion\\\":\\\"apps/v1\\\",\\\"kind\\\":\\\"Deployment\\\""
        ),
        "{out}"
    );
    assert!(
        line.ends_with(
            " spec:map[replicaz:2 template:map[spec:map[$setElementOrder/containers:[map[name:web]] containers:[map[image:nginx:1.28 name:web]]]]]]\": strict decoding error: unknown field \"spec.replicaz\""
        ),
        "{out}"
    );
    // replace: PUT, the decoder's 400 again.
    let out = k.run_stdin(&["replace", "-f", "-"], &changed).failed();
    assert_eq!(
        only_line(&out),
        format!("Error from server (BadRequest): error when replacing \"STDIN\": {decode_error}")
    );
    let image = |k: &beemesh_conformance::Kubectl| {
        k.get_json(&["deployment", "web"])["spec"]["template"]["spec"]["containers"][0]["image"]
            .clone()
    };
    assert_eq!(image(k), "nginx:1.27", "nothing was written");

    // The patch path under Warn, then --validate=false: written, the field dropped.
    let out = k
        .run_stdin(&["apply", "--validate=warn", "-f", "-"], &changed)
        .ok();
    assert_eq!(only_line(&out), "Warning: unknown field \"spec.replicaz\"");
    assert_eq!(out.stdout.trim(), "deployment.apps/web configured");
    let quiet = deployment("replicaz", "nginx:1.29");
    let out = k
        .run_stdin(&["apply", "--validate=false", "-f", "-"], &quiet)
        .ok();
    assert!(
        out.stderr.trim().is_empty(),
        "no warning under --validate=false: {out}"
    );
    assert_eq!(out.stdout.trim(), "deployment.apps/web configured");
    assert_eq!(image(k), "nginx:1.29");
    assert!(
        k.get_json(&["deployment", "web"])["spec"]
            .get("replicaz")
            .is_none()
    );
}
