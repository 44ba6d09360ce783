"""GitOps controllers against a live node, as they talk to the API server.

- Argo CD's cluster cache: /version, legacy and aggregated discovery, the OpenAPI v2
  document as protobuf, then one informer per listable+watchable resource (paged list with
  limit=500 following `continue`, a watch from the list's resourceVersion, restarted from
  the last seen resourceVersion, relisting on 410 as client-go's reflector does) while the
  test writes across kinds and namespaces; every cache must equal a fresh list.
- Flux's kustomize-controller: per object, server-side apply as a dry run with
  `force=true&fieldManager=kustomize-controller`, compared with the live object; applied
  for real only when drifted. An unchanged second pass writes nothing; drift made by another
  manager is detected and corrected.
"""

import json
import random
import threading
import time
import urllib.parse

import pytest
import urllib3

PROTOBUF_OPENAPI = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
CONVERGE = 30.0


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status = status
        self.body = body


class Http:
    """A raw HTTPS client with the kubeconfig's credentials and a pool big enough for one
    long-running watch per resource (the generated client's pool holds 4)."""

    def __init__(self, api_client):
        cfg = api_client.configuration
        self.host = cfg.host.rstrip("/")
        self.headers = {}
        token = cfg.api_key.get("authorization") if cfg.api_key else None
        if token:
            self.headers["Authorization"] = token
        self.pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=128,
            cert_reqs="CERT_REQUIRED" if cfg.verify_ssl else "CERT_NONE",
            ca_certs=cfg.ssl_ca_cert,
            cert_file=cfg.cert_file,
            key_file=cfg.key_file,
        )

    def url(self, path, query=None):
        q = {k: v for k, v in (query or {}).items() if v is not None}
        return self.host + path + ("?" + urllib.parse.urlencode(q) if q else "")

    def request(self, method, path, query=None, body=None, content_type="application/json", accept="application/json", timeout=30):
        headers = {**self.headers, "Accept": accept}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        resp = self.pool.request(method, self.url(path, query), body=data, headers=headers, timeout=timeout, retries=False)
        if resp.status >= 400:
            raise ApiError(resp.status, resp.data.decode(errors="replace"))
        return resp

    def json(self, method, path, query=None, body=None, **kw):
        return json.loads(self.request(method, path, query, body, **kw).data)

    def stream(self, path, query, read_timeout):
        resp = self.pool.request(
            "GET",
            self.url(path, query),
            headers={**self.headers, "Accept": "application/json"},
            preload_content=False,
            timeout=urllib3.Timeout(connect=10, read=read_timeout),
            retries=False,
        )
        if resp.status >= 400:
            body = resp.data.decode(errors="replace")
            resp.release_conn()
            raise ApiError(resp.status, body)
        return resp


def lines(resp):
    buf = b""
    for chunk in resp.stream(4096, decode_content=True):
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
    if buf.strip():
        yield json.loads(buf)


# ---------------------------------------------------------------------------------------
# discovery, as Argo CD's cluster cache does it


def preferred_resources(http):
    """(group, version, plural, namespaced) of every listable+watchable resource at its
    group's preferred version, from legacy discovery; cross-checked with aggregated."""
    out = []
    core = http.json("GET", "/api")
    assert "v1" in core["versions"], core
    for r in http.json("GET", "/api/v1")["resources"]:
        if "/" not in r["name"] and {"list", "watch"} <= set(r["verbs"]):
            out.append(("", "v1", r["name"], r["namespaced"]))
    groups = http.json("GET", "/apis")["groups"]
    for g in groups:
        gv = g["preferredVersion"]["groupVersion"]
        for r in http.json("GET", f"/apis/{gv}")["resources"]:
            if "/" not in r["name"] and {"list", "watch"} <= set(r["verbs"]):
                out.append((g["name"], g["preferredVersion"]["version"], r["name"], r["namespaced"]))

    agg = http.json("GET", "/apis", accept=AGGREGATED)
    assert agg.get("kind") == "APIGroupDiscoveryList", agg.get("kind")
    agg_core = http.json("GET", "/api", accept=AGGREGATED)
    seen = set()
    for doc in (agg_core, agg):
        for item in doc["items"]:
            group = item["metadata"].get("name", "")
            for v in item["versions"]:
                for r in v["resources"]:
                    if {"list", "watch"} <= set(r.get("verbs", [])):
                        seen.add((group, v["version"], r["resource"]))
    missing = [(g, v, p) for g, v, p, _ in out if (g, v, p) not in seen]
    assert not missing, f"legacy discovery lists resources aggregated discovery does not: {missing}"
    return out


def resource_path(group, version, plural):
    return f"/api/{version}/{plural}" if not group else f"/apis/{group}/{version}/{plural}"


def test_argo_discovery_and_openapi(api_client):
    http = Http(api_client)
    version = http.json("GET", "/version")
    assert version["major"] == "1" and version["gitVersion"].startswith("v1.")
    resources = preferred_resources(http)
    assert ("apps", "v1", "deployments", True) in resources
    assert ("", "v1", "namespaces", False) in resources
    resp = http.request("GET", "/openapi/v2", accept=PROTOBUF_OPENAPI)
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith(PROTOBUF_OPENAPI.split(";")[0]) or "protobuf" in ctype, f"not protobuf: {ctype}"
    body = resp.data
    # openapi_v2.Document: field 1 `swagger` (string "2.0") comes first, then `info`.
    assert body[:5] == b"\n\x032.0", f"not an openapi_v2.Document: {body[:40]!r}"
    assert b"io.k8s.api.apps.v1.Deployment" in body
    assert b"x-kubernetes-group-version-kind" in body


class Informer(threading.Thread):
    """client-go's reflector for one resource: list (paged), then watch from the list's
    resourceVersion; on a closed watch resume from the last seen resourceVersion, on 410
    relist. `restart_every` closes the watch after that many events, as a restarting
    controller would."""

    def __init__(self, http, group, version, plural, stop, restart_every):
        super().__init__(daemon=True, name=f"informer-{plural}.{group}")
        self.http = http
        self.path = resource_path(group, version, plural)
        self.plural = f"{plural}.{group}" if group else plural
        self.stop = stop
        self.restart_every = restart_every
        self.cache = {}
        self.lock = threading.Lock()
        self.rv = None
        self.lists = 0
        self.pages = 0
        self.watches = 0
        self.relists_410 = 0
        self.error = None
        self.resync = threading.Event()
        # Resume once from a resourceVersion this server never issued (as a controller
        # restarted against another node would): the watch must answer 410 and the
        # informer relist.
        self.stale_resume = threading.Event()

    def run(self):
        try:
            self.relist()
            while not self.stop.is_set():
                if self.resync.is_set():
                    self.resync.clear()
                    self.relist()
                if self.stale_resume.is_set():
                    self.stale_resume.clear()
                    with self.lock:
                        self.rv = "1"
                self.watch_once()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = f"{self.plural}: {type(e).__name__}: {e}"

    def relist(self):
        items, rv, pages = paged_list(self.http, self.path)
        with self.lock:
            self.cache = {key(o): o["metadata"]["resourceVersion"] for o in items}
            self.rv = rv
            self.lists += 1
            self.pages += pages

    def watch_once(self):
        query = {"watch": "true", "resourceVersion": self.rv, "allowWatchBookmarks": "true", "timeoutSeconds": str(random.randint(3, 8))}
        try:
            resp = self.http.stream(self.path, query, read_timeout=20)
        except ApiError as e:
            if e.status == 410:
                self.relists_410 += 1
                self.relist()
                return
            raise
        self.watches += 1
        seen = 0
        try:
            for event in lines(resp):
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        self.relists_410 += 1
                        self.relist()
                        return
                    raise ApiError(obj.get("code", 0), json.dumps(obj))
                rv = obj["metadata"]["resourceVersion"]
                with self.lock:
                    if kind in ("ADDED", "MODIFIED"):
                        self.cache[key(obj)] = rv
                    elif kind == "DELETED":
                        self.cache.pop(key(obj), None)
                    elif kind != "BOOKMARK":
                        raise ValueError(f"unknown watch event type {kind}")
                    self.rv = rv
                seen += 1
                if self.stop.is_set() or (self.restart_every and seen >= self.restart_every):
                    break
        finally:
            resp.release_conn()
            resp.close()

    def snapshot(self):
        with self.lock:
            return dict(self.cache)


def key(obj):
    m = obj["metadata"]
    return (m.get("namespace", ""), m["name"])


def paged_list(http, path, limit=500):
    """Every item of a paged list and the resourceVersion of its first page's snapshot."""
    items, cont, rv, pages = [], None, None, 0
    while True:
        page = http.json("GET", path, {"limit": str(limit), "continue": cont})
        pages += 1
        items.extend(page.get("items") or [])
        assert len(page.get("items") or []) <= limit, f"{path}: page of {len(page['items'])} > limit {limit}"
        rv = rv or page["metadata"]["resourceVersion"]
        cont = page["metadata"].get("continue")
        if not cont:
            return items, rv, pages


def write_load(http, namespaces, configmaps):
    """Creates, updates and deletes across kinds and namespaces; `configmaps` in the first
    namespace so their informer pages."""
    a, b = namespaces
    for ns in namespaces:
        http.json("POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    pool = []
    chunks = [range(i, configmaps, 8) for i in range(8)]

    def create_cms(indices):
        for i in indices:
            http.json("POST", f"/api/v1/namespaces/{a}/configmaps", body={"metadata": {"name": f"cm-{i:04d}", "labels": {"load": "gitops"}}, "data": {"i": str(i)}})

    for chunk in chunks:
        t = threading.Thread(target=create_cms, args=(chunk,))
        t.start()
        pool.append(t)
    for i in range(20):
        http.json("POST", f"/api/v1/namespaces/{b}/secrets", body={"metadata": {"name": f"s-{i}"}, "stringData": {"k": str(i)}})
        http.json(
            "POST",
            f"/apis/apps/v1/namespaces/{b}/deployments",
            body={
                "metadata": {"name": f"d-{i}"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": f"d-{i}"}},
                    "template": {"metadata": {"labels": {"app": f"d-{i}"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
                },
            },
        )
        http.json("POST", f"/api/v1/namespaces/{b}/services", body={"metadata": {"name": f"svc-{i}"}, "spec": {"selector": {"app": f"d-{i}"}, "ports": [{"port": 80}]}})
    for t in pool:
        t.join()
    for i in range(0, configmaps, 7):
        http.json("PATCH", f"/api/v1/namespaces/{a}/configmaps/cm-{i:04d}", body={"data": {"i": f"{i}-updated"}}, content_type="application/merge-patch+json")
    for i in range(0, configmaps, 11):
        http.json("DELETE", f"/api/v1/namespaces/{a}/configmaps/cm-{i:04d}")
    for i in range(0, 20, 3):
        http.json("PATCH", f"/apis/apps/v1/namespaces/{b}/deployments/d-{i}", body={"spec": {"replicas": 3}}, content_type="application/merge-patch+json")
        http.json("DELETE", f"/api/v1/namespaces/{b}/services/svc-{i}")
        http.json("DELETE", f"/api/v1/namespaces/{b}/secrets/s-{i}")
    http.json("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", body={"metadata": {"name": f"gitops-{a}"}, "rules": []})
    http.json("DELETE", "/apis/rbac.authorization.k8s.io/v1/clusterroles/" + f"gitops-{a}")


def run_cluster_cache(http, tag, configmaps=620):
    resources = preferred_resources(http)
    stop = threading.Event()
    informers = [Informer(http, g, v, p, stop, restart_every=random.choice([0, 25, 100])) for g, v, p, _ in resources]
    for inf in informers:
        inf.start()
    try:
        deadline = time.monotonic() + CONVERGE
        while any(inf.lists == 0 and inf.error is None for inf in informers):
            assert time.monotonic() < deadline, "initial lists did not finish"
            time.sleep(0.05)
        errors = [inf.error for inf in informers if inf.error]
        assert not errors, errors
        write_load(http, (f"gitops-a-{tag}", f"gitops-b-{tag}"), configmaps)
        by_plural = {inf.plural: inf for inf in informers}
        cm = by_plural["configmaps"]
        for name in ("configmaps", "secrets", "deployments.apps"):
            by_plural[name].stale_resume.set()
        assert_converged(http, informers)
        # Argo's periodic resync: every informer relists (paged) when its watch next ends,
        # and the relisted caches must agree too.
        for inf in informers:
            inf.resync.set()
        deadline = time.monotonic() + CONVERGE
        while any(inf.lists < 2 and inf.error is None for inf in informers):
            assert time.monotonic() < deadline, "resync relists did not finish"
            time.sleep(0.1)
        assert_converged(http, informers)
        ns_cms = [k for k in cm.snapshot() if k[0] == f"gitops-a-{tag}" and k[1].startswith("cm-")]
        assert len(ns_cms) == configmaps - len(range(0, configmaps, 11)), len(ns_cms)
        assert cm.pages >= 3, f"the configmaps relist of {len(cm.snapshot())} items took {cm.pages - 1} page(s)"
        for name in ("configmaps", "secrets", "deployments.apps"):
            assert by_plural[name].relists_410 >= 1, f"{name}: a watch from a foreign resourceVersion did not answer 410"
        # A list of that namespace alone pages at 500.
        items, _, pages = paged_list(http, f"/api/v1/namespaces/gitops-a-{tag}/configmaps")
        assert pages == (len(items) + 499) // 500, (pages, len(items))
        return informers
    finally:
        stop.set()


def assert_converged(http, informers):
    """Every informer's cache equals a fresh paged list (names and resourceVersions)."""
    deadline = time.monotonic() + CONVERGE
    pending = list(informers)
    while pending:
        errors = [inf.error for inf in informers if inf.error]
        assert not errors, errors
        still = []
        for inf in pending:
            items, _, _ = paged_list(http, inf.path)
            fresh = {key(o): o["metadata"]["resourceVersion"] for o in items}
            if inf.snapshot() != fresh:
                still.append((inf, fresh))
        if not still:
            break
        if time.monotonic() > deadline:
            diffs = []
            for inf, fresh in still:
                cache = inf.snapshot()
                extra = sorted(set(cache) - set(fresh))[:3]
                missing = sorted(set(fresh) - set(cache))[:3]
                stale = sorted(k for k in set(cache) & set(fresh) if cache[k] != fresh[k])[:3]
                diffs.append(f"{inf.plural}: extra {extra} missing {missing} stale {stale}")
            raise AssertionError("caches differ from a fresh list: " + "; ".join(diffs))
        pending = [inf for inf, _ in still]
        time.sleep(0.2)


def test_argo_cluster_cache(api_client):
    http = Http(api_client)
    informers = run_cluster_cache(http, "builtin")
    assert sum(inf.watches for inf in informers) > len(informers), "watches were restarted"


def test_argo_cluster_cache_with_crd(api_client):
    """The same cache with a CRD installed: its resource is discovered and cached too."""
    http = Http(api_client)
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.gitops.example.com"},
        "spec": {
            "group": "gitops.example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}},
                }
            ],
        },
    }
    http.json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=crd)
    deadline = time.monotonic() + CONVERGE
    while True:
        got = http.json("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.gitops.example.com")
        conds = {c["type"]: c["status"] for c in got.get("status", {}).get("conditions", [])}
        if conds.get("Established") == "True":
            break
        assert time.monotonic() < deadline, f"CRD not Established: {got.get('status')}"
        time.sleep(0.1)
    http.json("POST", "/api/v1/namespaces", body={"metadata": {"name": "gitops-crs"}})
    for i in range(30):
        http.json("POST", "/apis/gitops.example.com/v1/namespaces/gitops-crs/widgets", body={"apiVersion": "gitops.example.com/v1", "kind": "Widget", "metadata": {"name": f"w-{i}"}, "spec": {"size": i}})
    informers = run_cluster_cache(http, "crd", configmaps=510)
    widgets = next(inf for inf in informers if inf.plural == "widgets.gitops.example.com")
    assert len(widgets.snapshot()) == 30


# ---------------------------------------------------------------------------------------
# Flux's kustomize-controller


NOISE = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink")


def normalized(obj):
    """What Flux's ssa differ compares: no status, no server-owned metadata."""
    obj = json.loads(json.dumps(obj))
    obj.pop("status", None)
    meta = obj.get("metadata", {})
    for k in NOISE:
        meta.pop(k, None)
    return obj


def kustomization(ns):
    labels = {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "podinfo", "namespace": ns, "labels": labels}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "podinfo-config", "namespace": ns, "labels": labels}, "data": {"PODINFO_UI_COLOR": "#34577c", "LEVEL": "info"}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "podinfo", "namespace": ns, "labels": labels},
            "spec": {"type": "ClusterIP", "selector": {"app": "podinfo"}, "ports": [{"name": "http", "port": 9898, "protocol": "TCP", "targetPort": "http"}]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "podinfo", "namespace": ns, "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "podinfo"}},
                "template": {
                    "metadata": {"labels": {"app": "podinfo"}},
                    "spec": {
                        "serviceAccountName": "podinfo",
                        "containers": [
                            {
                                "name": "podinfod",
                                "image": "ghcr.io/stefanprodan/podinfo:6.7.0",
                                "ports": [{"name": "http", "containerPort": 9898, "protocol": "TCP"}],
                                "envFrom": [{"configMapRef": {"name": "podinfo-config"}}],
                                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                            }
                        ],
                    },
                },
            },
        },
    ]


def object_path(obj):
    group_version = obj["apiVersion"]
    plural = {"Namespace": "namespaces", "ServiceAccount": "serviceaccounts", "ConfigMap": "configmaps", "Service": "services", "Deployment": "deployments"}[obj["kind"]]
    base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
    ns = obj["metadata"].get("namespace")
    return f"{base}/namespaces/{ns}/{plural}/{obj['metadata']['name']}" if ns else f"{base}/{plural}/{obj['metadata']['name']}"


def flux_reconcile(http, objects):
    """One reconciliation: returns the kinds applied for real and the live RVs after."""
    applied, rvs = [], {}
    for obj in objects:
        path = object_path(obj)
        try:
            live = http.json("GET", path)
        except ApiError as e:
            if e.status != 404:
                raise
            live = None
        query = {"fieldManager": "kustomize-controller", "force": "true"}
        dry = http.json("PATCH", path, {**query, "dryRun": "All"}, body=obj, content_type="application/apply-patch+yaml")
        if live is None or normalized(dry) != normalized(live):
            result = http.json("PATCH", path, query, body=obj, content_type="application/apply-patch+yaml")
            applied.append(obj["kind"])
            live = result
        if live is None:
            raise AssertionError(f"{path}: dry run created the object")
        rvs[obj["kind"]] = applier_state(live)
    return applied, rvs


def applier_state(live):
    """What an apply by kustomize-controller writes and a controller's own status write
    (a Deployment's) does not: the generation and the applier's managedFields entries
    (their time moves only when the apply changed something)."""
    entries = [
        m for m in live["metadata"].get("managedFields", [])
        if m.get("manager") == "kustomize-controller"
    ]
    return (live["metadata"].get("generation"), json.dumps(entries, sort_keys=True))


def test_flux_kustomize_reconcile(api_client):
    http = Http(api_client)
    objects = kustomization("flux-apps")
    applied, rvs = flux_reconcile(http, objects)
    assert applied == [o["kind"] for o in objects], applied
    dep = http.json("GET", "/apis/apps/v1/namespaces/flux-apps/deployments/podinfo")
    assert dep["spec"]["replicas"] == 2
    managers = {m["manager"]: m["operation"] for m in dep["metadata"].get("managedFields", [])}
    assert managers.get("kustomize-controller") == "Apply", managers

    # An unchanged source: nothing applied, nothing the applier owns moved.
    applied, again = flux_reconcile(http, objects)
    assert applied == [], f"no-op reconciliation applied {applied}"
    assert again == rvs

    # Drift by another manager on fields the Kustomization owns, and one it does not.
    http.json(
        "PATCH",
        "/apis/apps/v1/namespaces/flux-apps/deployments/podinfo",
        {"fieldManager": "kubectl-edit"},
        body={"spec": {"replicas": 5}, "metadata": {"annotations": {"ops.example.com/note": "hand-edited"}}},
        content_type="application/merge-patch+json",
    )
    http.json(
        "PATCH",
        "/api/v1/namespaces/flux-apps/configmaps/podinfo-config",
        {"fieldManager": "kubectl-edit"},
        body={"data": {"LEVEL": "debug"}},
        content_type="application/merge-patch+json",
    )
    applied, _ = flux_reconcile(http, objects)
    assert sorted(applied) == ["ConfigMap", "Deployment"], applied
    dep = http.json("GET", "/apis/apps/v1/namespaces/flux-apps/deployments/podinfo")
    assert dep["spec"]["replicas"] == 2, "drift corrected"
    assert dep["metadata"]["annotations"].get("ops.example.com/note") == "hand-edited", "a field Flux does not own stays"
    cm = http.json("GET", "/api/v1/namespaces/flux-apps/configmaps/podinfo-config")
    assert cm["data"] == {"PODINFO_UI_COLOR": "#34577c", "LEVEL": "info"}
    # After the correction the source is in sync again.
    applied, _ = flux_reconcile(http, objects)
    assert applied == [], applied
