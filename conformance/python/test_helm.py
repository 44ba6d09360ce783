"""A Helm 3 release lifecycle through the Python client, step by step as Helm performs it:
release records as Secrets (`sh.helm.release.v1.<name>.v<N>`), history by label selector,
chart objects created, upgraded with Helm's three-way strategic merge patch (original
manifest, new manifest, live object), superseded records rewritten by unconditional PUT,
a rollback-shaped upgrade, and uninstall by label-selected deletecollection."""

import base64
import copy
import gzip
import json
import time

from kubernetes import client
from kubernetes.client.rest import ApiException

RELEASE = "shop"
SMP = "application/strategic-merge-patch+json"

# Merge keys of the lists the chart uses (the `x-kubernetes-patch-merge-key` Helm reads
# from the Go types): every other list is replaced whole.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "ports": None,  # containerPort for containers, port for Services: chosen by content
    "volumes": "name",
    "volumeMounts": "mountPath",
}


def merge_key(field, items):
    key = MERGE_KEYS.get(field, "")
    if key is None:
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return key or None


def three_way_patch(original, modified, current):
    """Helm's `strategicpatch.CreateThreeWayMergePatch(original, modified, current)`:
    changes are modified-vs-live (so drift in chart-owned fields is reset), deletions are
    original-vs-modified only (so fields another actor added to the live object stay)."""
    original = original or {}
    current = current or {}
    patch = {}
    for key, want in modified.items():
        live = current.get(key)
        was = original.get(key)
        if isinstance(want, dict) and isinstance(live, dict):
            sub = three_way_patch(was if isinstance(was, dict) else {}, want, live)
            if sub:
                patch[key] = sub
        elif isinstance(want, list) and isinstance(live, list) and merge_key(key, want + live):
            sub = list_patch(key, was if isinstance(was, list) else [], want, live)
            if sub is not None:
                patch[key] = sub
                patch[f"$setElementOrder/{key}"] = [
                    {merge_key(key, want + live): item[merge_key(key, want + live)]} for item in want
                ]
        elif want != live:
            patch[key] = want
    for key in original:
        if key not in modified:
            patch[key] = None
    return patch


def list_patch(field, original, modified, current):
    """A merge-keyed list's patch: changed or new items by key, `$patch: delete` for items
    the chart dropped; items only the live object has are left alone."""
    key = merge_key(field, original + modified + current)
    by_key = lambda items: {i.get(key): i for i in items if isinstance(i, dict)}  # noqa: E731
    was, live = by_key(original), by_key(current)
    out = []
    for item in modified:
        k = item.get(key)
        if k not in live:
            out.append(item)
            continue
        sub = three_way_patch(was.get(k, {}), item, live[k])
        if sub:
            out.append({key: k, **sub})
    wanted = {i.get(key) for i in modified}
    for k in was:
        if k not in wanted and k in live:
            out.append({key: k, "$patch": "delete"})
    return out or None


def chart(namespace, version):
    """The rendered manifest of chart version 1 or 2 (v2: image bump, an env var and the
    sidecar dropped, a ConfigMap key renamed, a Service port added)."""
    labels = {
        "app.kubernetes.io/name": "shop",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/managed-by": "Helm",
        "helm.sh/chart": f"shop-0.{version}.0",
    }
    annotations = {"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": namespace}
    meta = lambda name: {  # noqa: E731
        "name": name,
        "namespace": namespace,
        "labels": dict(labels),
        "annotations": dict(annotations),
    }
    selector = {"app.kubernetes.io/name": "shop", "app.kubernetes.io/instance": RELEASE}
    web = {
        "name": "web",
        "image": "nginx:1.27" if version == 1 else "nginx:1.28",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "MODE", "value": "prod"}]
        + ([{"name": "LEGACY", "value": "on"}] if version == 1 else []),
    }
    containers = [web] + ([{"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "3600"]}] if version == 1 else [])
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("shop-config"),
        "data": {"mode": "prod", "old-key": "x"} if version == 1 else {"mode": "prod", "new-key": "y"},
    }
    service_ports = [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    if version == 2:
        service_ports.append({"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"})
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("shop"),
        "spec": {"type": "ClusterIP", "selector": selector, "ports": service_ports},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("shop"),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": dict(selector)}, "spec": {"containers": containers}},
        },
    }
    return [config, service, deployment]


def manifest_text(objects):
    return "".join(f"---\n# Source: shop/templates/{o['kind'].lower()}.yaml\n{json.dumps(o)}\n" for o in objects)


def encode_release(release):
    """Helm's `encodeRelease`: JSON, gzip, base64 — stored as the Secret's `release` data
    (which the API base64-encodes once more)."""
    inner = base64.b64encode(gzip.compress(json.dumps(release).encode())).decode()
    return base64.b64encode(inner.encode()).decode()


def decode_release(secret):
    inner = base64.b64decode(secret.data["release"])
    return json.loads(gzip.decompress(base64.b64decode(inner)))


def release_secret(namespace, version, status, objects, description):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    release = {
        "name": RELEASE,
        "namespace": namespace,
        "version": version,
        "info": {"first_deployed": now, "last_deployed": now, "deleted": "", "description": description, "status": status},
        "chart": {"metadata": {"name": "shop", "version": "0.1.0", "apiVersion": "v2"}, "templates": [], "values": {}},
        "config": {},
        "manifest": manifest_text(objects),
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{RELEASE}.v{version}",
            "namespace": namespace,
            "labels": {
                "owner": "helm",
                "name": RELEASE,
                "status": status,
                "version": str(version),
                "createdAt": str(int(time.time())),
            },
        },
        "data": {"release": encode_release(release)},
    }


class Kube:
    """Raw-JSON access to the chart's kinds (Helm works on unstructured objects)."""

    def __init__(self, api_client, namespace):
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.ns = namespace

    def _ops(self, kind):
        return {
            "ConfigMap": (self.core.create_namespaced_config_map, self.core.read_namespaced_config_map, self.core.patch_namespaced_config_map, self.core.delete_namespaced_config_map),
            "Service": (self.core.create_namespaced_service, self.core.read_namespaced_service, self.core.patch_namespaced_service, self.core.delete_namespaced_service),
            "Deployment": (self.apps.create_namespaced_deployment, self.apps.read_namespaced_deployment, self.apps.patch_namespaced_deployment, self.apps.delete_namespaced_deployment),
        }[kind]

    def create(self, obj):
        return json.loads(self._ops(obj["kind"])[0](self.ns, obj, _preload_content=False).data)

    def get(self, kind, name):
        return json.loads(self._ops(kind)[1](name, self.ns, _preload_content=False).data)

    def patch(self, kind, name, body):
        return json.loads(self._ops(kind)[2](name, self.ns, body, _content_type=SMP, _preload_content=False).data)

    def delete(self, kind, name):
        self._ops(kind)[3](name, self.ns, propagation_policy="Background")


def helm_upgrade(kube, old_objects, new_objects):
    """`helm upgrade`'s update step: per object, GET live, three-way patch, PATCH if non-empty."""
    old = {(o["kind"], o["metadata"]["name"]): o for o in old_objects}
    for obj in new_objects:
        key = (obj["kind"], obj["metadata"]["name"])
        if key not in old:
            kube.create(obj)
            continue
        live = kube.get(*key)
        patch = three_way_patch(old[key], obj, live)
        if patch:
            kube.patch(key[0], key[1], patch)
    for key in old:
        if key not in {(o["kind"], o["metadata"]["name"]) for o in new_objects}:
            kube.delete(*key)


def history(core, namespace):
    secrets = core.list_namespaced_secret(namespace, label_selector=f"owner=helm,name={RELEASE}").items
    return sorted(((int(s.metadata.labels["version"]), s.metadata.labels["status"]) for s in secrets))


def supersede(core, namespace, version):
    """Helm's Secrets driver `Update`: a fresh Secret object without resourceVersion, PUT."""
    live = core.read_namespaced_secret(f"sh.helm.release.v1.{RELEASE}.v{version}", namespace)
    release = decode_release(live)
    release["info"]["status"] = "superseded"
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": live.metadata.name,
            "namespace": namespace,
            "labels": {**live.metadata.labels, "status": "superseded", "modifiedAt": str(int(time.time()))},
        },
        "data": {"release": encode_release(release)},
    }
    updated = core.replace_namespaced_secret(live.metadata.name, namespace, body)
    assert updated.metadata.resource_version != live.metadata.resource_version
    assert updated.metadata.labels["status"] == "superseded"
    assert decode_release(updated)["info"]["status"] == "superseded"


def containers(dep):
    return {c["name"]: c for c in dep["spec"]["template"]["spec"]["containers"]}


def env(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_helm_release_lifecycle(api_client, namespace):
    core = client.CoreV1Api(api_client)
    kube = Kube(api_client, namespace)
    v1, v2 = chart(namespace, 1), chart(namespace, 2)

    # install: the pending record, the objects, then the record as deployed (Helm creates
    # the Secret first and updates it when the objects are in).
    pending = release_secret(namespace, 1, "pending-install", v1, "Initial install underway")
    core.create_namespaced_secret(namespace, pending)
    for obj in v1:
        kube.create(obj)
    deployed = release_secret(namespace, 1, "deployed", v1, "Install complete")
    core.replace_namespaced_secret(deployed["metadata"]["name"], namespace, deployed)
    assert history(core, namespace) == [(1, "deployed")]
    stored = core.read_namespaced_secret(f"sh.helm.release.v1.{RELEASE}.v1", namespace)
    assert stored.type == "helm.sh/release.v1"
    assert decode_release(stored)["manifest"] == manifest_text(v1)
    # `helm list`: owner=helm and status=deployed across the namespace.
    listed = core.list_namespaced_secret(namespace, label_selector="owner=helm,status=deployed").items
    assert [s.metadata.name for s in listed] == [f"sh.helm.release.v1.{RELEASE}.v1"]
    dep = kube.get("Deployment", "shop")
    assert set(containers(dep)) == {"web", "sidecar"}
    assert dep["metadata"]["annotations"]["meta.helm.sh/release-name"] == RELEASE

    # Another actor edits the live objects: an annotation, an injected container, an
    # extra env var on the chart's container, a replica count (as an HPA would), a
    # ConfigMap key of its own.
    kube.patch(
        "Deployment",
        "shop",
        {
            "metadata": {"annotations": {"other.example.com/owner": "ops"}},
            "spec": {
                "replicas": 5,
                "template": {
                    "metadata": {"annotations": {"sidecar.example.com/injected": "true"}},
                    "spec": {
                        "containers": [
                            {"name": "proxy", "image": "envoyproxy/envoy:v1.30.1"},
                            {"name": "web", "env": [{"name": "INJECTED", "value": "1"}]},
                        ]
                    },
                },
            },
        },
    )
    kube.patch("ConfigMap", "shop-config", {"data": {"ops-key": "kept"}})

    # upgrade to v2: pending-upgrade record, three-way patches, then v1 superseded by an
    # unconditional PUT and v2 deployed.
    core.create_namespaced_secret(namespace, release_secret(namespace, 2, "pending-upgrade", v2, "Preparing upgrade"))
    helm_upgrade(kube, v1, v2)
    supersede(core, namespace, 1)
    v2_deployed = release_secret(namespace, 2, "deployed", v2, "Upgrade complete")
    core.replace_namespaced_secret(v2_deployed["metadata"]["name"], namespace, v2_deployed)
    assert history(core, namespace) == [(1, "superseded"), (2, "deployed")]

    dep = kube.get("Deployment", "shop")
    cs = containers(dep)
    assert set(cs) == {"web", "proxy"}, "sidecar removed from the chart, proxy added by another actor kept"
    assert cs["web"]["image"] == "nginx:1.28"
    assert env(cs["web"]) == {"MODE": "prod", "INJECTED": "1"}, "LEGACY dropped by the chart, INJECTED kept"
    assert dep["spec"]["replicas"] == 2, "a chart-owned field drifted on the live object is reset"
    assert dep["metadata"]["annotations"]["other.example.com/owner"] == "ops"
    assert dep["spec"]["template"]["metadata"]["annotations"] == {"sidecar.example.com/injected": "true"}
    assert dep["metadata"]["labels"]["helm.sh/chart"] == "shop-0.2.0"
    cm = kube.get("ConfigMap", "shop-config")
    assert cm["data"] == {"mode": "prod", "new-key": "y", "ops-key": "kept"}
    svc = kube.get("Service", "shop")
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("http", 80), ("metrics", 9090)]
    assert svc["spec"]["clusterIP"], "the allocated clusterIP survives the patch"

    # rollback to 1: Helm upgrades from the current manifest to revision 1's as revision 3.
    core.create_namespaced_secret(namespace, release_secret(namespace, 3, "pending-rollback", v1, "Rollback to 1"))
    helm_upgrade(kube, v2, v1)
    supersede(core, namespace, 2)
    v3 = release_secret(namespace, 3, "deployed", v1, "Rollback to 1")
    core.replace_namespaced_secret(v3["metadata"]["name"], namespace, v3)
    assert history(core, namespace) == [(1, "superseded"), (2, "superseded"), (3, "deployed")]
    dep = kube.get("Deployment", "shop")
    cs = containers(dep)
    assert set(cs) == {"web", "sidecar", "proxy"}
    assert cs["web"]["image"] == "nginx:1.27"
    assert env(cs["web"]) == {"MODE": "prod", "LEGACY": "on", "INJECTED": "1"}
    assert kube.get("ConfigMap", "shop-config")["data"] == {"mode": "prod", "old-key": "x", "ops-key": "kept"}
    assert [p["name"] for p in kube.get("Service", "shop")["spec"]["ports"]] == ["http"]

    # A no-op upgrade (same manifest twice) sends no patch and changes nothing. The
    # Deployment's resourceVersion also moves with its controller's status writes, so its
    # spec is compared by generation.
    def version(o):
        meta = kube.get(o["kind"], o["metadata"]["name"])["metadata"]
        return meta["generation"] if o["kind"] == "Deployment" else meta["resourceVersion"]

    before = {o["kind"]: version(o) for o in v1}
    for obj in v1:
        live = kube.get(obj["kind"], obj["metadata"]["name"])
        assert three_way_patch(obj, obj, live) == {}, f"{obj['kind']} drifted: {three_way_patch(obj, obj, live)}"
    after = {o["kind"]: version(o) for o in v1}
    assert before == after

    # uninstall: the objects (reverse install order), then every release record at once.
    for obj in reversed(v1):
        kube.delete(obj["kind"], obj["metadata"]["name"])
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "not-helms", "labels": {"owner": "ops", "name": RELEASE}}, "stringData": {"k": "v"}}
    )
    core.delete_collection_namespaced_secret(namespace, label_selector=f"owner=helm,name={RELEASE}")
    assert history(core, namespace) == []
    assert core.read_namespaced_secret("not-helms", namespace).data == {"k": base64.b64encode(b"v").decode()}
    for obj in v1:
        deadline = time.monotonic() + 20
        while True:
            try:
                kube.get(obj["kind"], obj["metadata"]["name"])
            except ApiException as e:
                assert e.status == 404, e
                break
            assert time.monotonic() < deadline, f"{obj['kind']} still present after uninstall"
            time.sleep(0.1)


def test_three_way_patch_shape():
    """The patch computation itself, as Helm would send it (no server involved)."""
    original = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}, "x": 1}
    modified = {"spec": {"containers": [{"name": "a", "image": "2"}]}}
    current = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}, {"name": "c", "image": "1"}]}, "x": 1, "y": 2}
    assert three_way_patch(original, modified, current) == {
        "spec": {
            "containers": [{"name": "a", "image": "2"}, {"name": "b", "$patch": "delete"}],
            "$setElementOrder/containers": [{"name": "a"}],
        },
        "x": None,
    }
    assert three_way_patch(copy.deepcopy(modified), modified, current | {"spec": modified["spec"]}) == {}
