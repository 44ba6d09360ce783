"""The PyPI `kubernetes` client against a live BeeMesh node: what a Python operator or
script does (legacy discovery, CRUD, selectors, watch, patches, /scale, deletes)."""

import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

SETTLE = 20.0


def eventually(check, timeout=SETTLE):
    """Retries `check` until it returns without raising; re-raises the last error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, ApiException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def assert_gone(read):
    """Raises AssertionError unless `read` answers 404."""
    try:
        obj = read()
    except ApiException as e:
        assert e.status == 404, e
        return
    raise AssertionError(f"still present: {getattr(obj, 'metadata', obj)}")


def deployment_body(name, image="nginx:1.27", replicas=2):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": image},
                        {"name": "sidecar", "image": "busybox:1.36"},
                    ]
                },
            },
        },
    }


def images(dep):
    return [(c.name, c.image) for c in dep.spec.template.spec.containers]


def test_version(api_client):
    # The generated client asks for `/version/` (trailing slash).
    info = client.VersionApi(api_client).get_code()
    assert info.major == "1"
    assert info.minor.startswith("33")
    assert info.git_version.startswith("v1.33.")


def test_legacy_discovery(api_client):
    core = client.CoreApi(api_client).get_api_versions()
    assert "v1" in core.versions
    groups = {g.name: g for g in client.ApisApi(api_client).get_api_versions().groups}
    assert groups["apps"].preferred_version.group_version == "apps/v1"
    resources = client.AppsV1Api(api_client).get_api_resources()
    deploy = next(r for r in resources.resources if r.name == "deployments")
    assert deploy.namespaced and deploy.kind == "Deployment" and "deploy" in deploy.short_names


def test_configmap_crud(api_client, namespace):
    core = client.CoreV1Api(api_client)
    created = core.create_namespaced_config_map(
        namespace,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"color": "blue"}},
    )
    assert created.metadata.uid and created.metadata.resource_version
    got = core.read_namespaced_config_map("cfg", namespace)
    assert got.data == {"color": "blue"}
    got.data["size"] = "3"
    replaced = core.replace_namespaced_config_map("cfg", namespace, got)
    assert replaced.data == {"color": "blue", "size": "3"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    # A stale resourceVersion conflicts.
    got.data["size"] = "4"
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("cfg", namespace, got)
    assert err.value.status == 409
    patched = core.patch_namespaced_config_map("cfg", namespace, {"data": {"color": "green"}})
    assert patched.data == {"color": "green", "size": "3"}
    names = [c.metadata.name for c in core.list_namespaced_config_map(namespace).items]
    assert "cfg" in names
    # An immediate delete answers a Status naming what was deleted.
    # (client 37 declares this response as `object`, so it arrives as a dict, whatever
    # the server sends.)
    status = core.delete_namespaced_config_map("cfg", namespace)
    if not isinstance(status, dict):
        status = api_client.sanitize_for_serialization(status)
    assert status.get("kind") == "Status", f"DELETE answered {status!r}, not a Status"
    assert status["status"] == "Success" and status["details"]["name"] == "cfg", status
    assert_gone(lambda: core.read_namespaced_config_map("cfg", namespace))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "Bad_Name"}, "data": {}})
    assert err.value.status == 422
    assert "metadata.name" in err.value.body


def test_namespace_crud(api_client):
    core = client.CoreV1Api(api_client)
    ns = core.create_namespace({"metadata": {"name": "py-ns-crud", "labels": {"purpose": "crud"}}})
    assert ns.status.phase == "Active"
    assert core.read_namespace("py-ns-crud").metadata.labels["kubernetes.io/metadata.name"] == "py-ns-crud"
    listed = [n.metadata.name for n in core.list_namespace(label_selector="purpose=crud").items]
    assert listed == ["py-ns-crud"]
    core.create_namespaced_config_map("py-ns-crud", {"metadata": {"name": "inside"}, "data": {"a": "b"}})
    eventually(lambda: core.read_namespaced_service_account("default", "py-ns-crud"))
    eventually(lambda: core.read_namespaced_config_map("kube-root-ca.crt", "py-ns-crud"))
    core.delete_namespace("py-ns-crud")
    eventually(lambda: assert_gone(lambda: core.read_namespace("py-ns-crud")))
    leftovers = core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=py-ns-crud")
    assert leftovers.items == []


def test_deployment_crud(api_client, namespace):
    apps = client.AppsV1Api(api_client)
    body = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web", labels={"app": "web"}),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1.27")]),
            ),
        ),
    )
    created = apps.create_namespaced_deployment(namespace, body)
    assert created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"
    assert created.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    # Read-modify-write retried on 409, as client-go's RetryOnConflict: the Deployment
    # controller writes the object (revision annotation, status) at the same time.
    for _ in range(10):
        dep = apps.read_namespaced_deployment("web", namespace)
        dep.spec.template.spec.containers[0].image = "nginx:1.28"
        try:
            replaced = apps.replace_namespaced_deployment("web", namespace, dep)
            break
        except ApiException as e:
            if e.status != 409:
                raise
            time.sleep(0.1)
    else:
        pytest.fail("replace kept conflicting")
    assert replaced.spec.template.spec.containers[0].image == "nginx:1.28"
    assert replaced.metadata.generation == 2
    listed = apps.list_namespaced_deployment(namespace)
    assert [d.metadata.name for d in listed.items] == ["web"]
    apps.delete_namespaced_deployment("web", namespace)
    eventually(lambda: assert_gone(lambda: apps.read_namespaced_deployment("web", namespace)))


def test_list_label_selector(api_client, namespace):
    core = client.CoreV1Api(api_client)
    for name, env in [("a", "prod"), ("b", "prod"), ("c", "dev"), ("d", None)]:
        labels = {"env": env} if env else {}
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": labels}, "data": {}})

    def names(**kw):
        return sorted(c.metadata.name for c in core.list_namespaced_config_map(namespace, **kw).items)

    assert names(label_selector="env=prod") == ["a", "b"]
    assert names(label_selector="env in (dev)") == ["c"]
    assert names(label_selector="env,env!=prod") == ["c"]
    assert "d" in names(label_selector="!env") and "a" not in names(label_selector="!env")
    assert names(field_selector="metadata.name=b") == ["b"]
    page = core.list_namespaced_config_map(namespace, limit=2)
    assert len(page.items) == 2 and page.metadata._continue
    rest = core.list_namespaced_config_map(namespace, limit=100, _continue=page.metadata._continue)
    assert len(page.items) + len(rest.items) == len(names())


def test_watch_events(api_client, namespace):
    core = client.CoreV1Api(api_client)
    start_rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    seen = []
    started = threading.Event()

    def run():
        w = watch.Watch()
        started.set()
        for event in w.stream(
            core.list_namespaced_config_map, namespace, resource_version=start_rv, timeout_seconds=15
        ):
            if event["object"].metadata.name == "watched":
                seen.append(event["type"])
            if event["type"] == "DELETED" and event["object"].metadata.name == "watched":
                w.stop()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    started.wait()
    time.sleep(0.5)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "watched"}, "data": {"v": "1"}})
    core.patch_namespaced_config_map("watched", namespace, {"data": {"v": "2"}})
    core.delete_namespaced_config_map("watched", namespace)
    t.join(timeout=20)
    assert not t.is_alive(), f"watch did not see DELETED; saw {seen}"
    assert seen == ["ADDED", "MODIFIED", "DELETED"], seen

    # Replaying from the same resourceVersion gives the same history.
    replay = [
        e["type"]
        for e in watch.Watch().stream(
            core.list_namespaced_config_map, namespace, resource_version=start_rv, timeout_seconds=2
        )
        if e["object"].metadata.name == "watched"
    ]
    assert replay == ["ADDED", "MODIFIED", "DELETED"], replay


def test_watch_timeout_ends_stream(api_client, namespace):
    core = client.CoreV1Api(api_client)
    began = time.monotonic()
    events = list(watch.Watch().stream(core.list_namespaced_config_map, namespace, timeout_seconds=2))
    elapsed = time.monotonic() - began
    # Without a resourceVersion the watch starts with the current objects as ADDED.
    assert all(e["type"] == "ADDED" for e in events), events
    assert 1.0 <= elapsed < 10.0, elapsed


def test_patch_strategic_and_json(api_client, namespace):
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment_body("web"))
    # A dict body is sent as a strategic merge patch: containers merge by name.
    patched = apps.patch_namespaced_deployment(
        "web", namespace, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}}
    )
    assert images(patched) == [("web", "nginx:1.28"), ("sidecar", "busybox:1.36")]
    # A list body is sent as a JSON patch.
    patched = apps.patch_namespaced_deployment(
        "web",
        namespace,
        [
            {"op": "replace", "path": "/spec/template/spec/containers/1/image", "value": "busybox:1.37"},
            {"op": "add", "path": "/metadata/labels/patched", "value": "json"},
        ],
    )
    assert images(patched) == [("web", "nginx:1.28"), ("sidecar", "busybox:1.37")]
    assert patched.metadata.labels["patched"] == "json"
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("web", namespace, [{"op": "test", "path": "/spec/replicas", "value": 99}])
    assert err.value.status in (409, 422), err.value


def test_patch_scale_subresource(api_client, namespace):
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment_body("web", replicas=1))
    scale = apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 3}})
    assert scale.kind == "Scale" and scale.spec.replicas == 3
    scale = apps.patch_namespaced_deployment_scale(
        "web", namespace, [{"op": "replace", "path": "/spec/replicas", "value": 4}]
    )
    assert scale.spec.replicas == 4
    read = apps.read_namespaced_deployment_scale("web", namespace)
    assert read.spec.replicas == 4 and read.status.selector == "app=web"
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 4
    # A Scale read carries the Deployment's resourceVersion, which the Deployment controller
    # moves too: retried on 409, as client-go's RetryOnConflict.
    for _ in range(10):
        read = apps.read_namespaced_deployment_scale("web", namespace)
        read.spec.replicas = 5
        try:
            assert apps.replace_namespaced_deployment_scale("web", namespace, read).spec.replicas == 5
            break
        except ApiException as e:
            if e.status != 409:
                raise
            time.sleep(0.1)
    else:
        pytest.fail("replace of the scale kept conflicting")


def test_delete_foreground_without_body(api_client, namespace):
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "fg"}, "data": {"a": "b"}})
    core.delete_namespaced_config_map("fg", namespace, propagation_policy="Foreground")
    eventually(lambda: assert_gone(lambda: core.read_namespaced_config_map("fg", namespace)))
    # The pods get bound to this node, which runs no kubelet (no --runtime) to end them:
    # a zero grace period lets the garbage collector's deletes finish at once.
    body = deployment_body("fg-deploy")
    body["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 0
    apps.create_namespaced_deployment(namespace, body)
    apps.delete_namespaced_deployment("fg-deploy", namespace, propagation_policy="Foreground")
    eventually(lambda: assert_gone(lambda: apps.read_namespaced_deployment("fg-deploy", namespace)))


def test_delete_collection(api_client, namespace):
    core = client.CoreV1Api(api_client)
    for name in ["x1", "x2", "keep"]:
        labels = {"batch": "x"} if name != "keep" else {}
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": labels}, "data": {}})
    core.delete_collection_namespaced_config_map(namespace, label_selector="batch=x")
    left = sorted(c.metadata.name for c in core.list_namespaced_config_map(namespace).items)
    assert "keep" in left and "x1" not in left and "x2" not in left


def test_status_errors(api_client, namespace):
    core = client.CoreV1Api(api_client)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("missing", namespace)
    assert err.value.status == 404
    assert '"reason":"NotFound"' in err.value.body.replace(" ", "")
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "dup"}, "data": {}})
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "dup"}, "data": {}})
    assert err.value.status == 409
    assert '"reason":"AlreadyExists"' in err.value.body.replace(" ", "")


def test_partial_object_metadata(api_client, namespace):
    """What a metadata-only informer does (client-go's metadata client Accept headers,
    protobuf first, read raw with _preload_content=False): a paged
    PartialObjectMetadataList, a single PartialObjectMetadata, and a watch whose events
    carry PartialObjectMetadata."""
    import json

    core = client.CoreV1Api(api_client)
    for name in ["m1", "m2", "m3"]:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name}, "data": {"secret": "x"}})

    def metadata_api(kind):
        """A client whose every request asks for `kind` (default headers win over the
        generated methods' Accept)."""
        meta_client = client.ApiClient(api_client.configuration)
        accept = f"as={kind};g=meta.k8s.io;v=v1"
        meta_client.set_default_header(
            "Accept",
            f"application/vnd.kubernetes.protobuf;{accept},application/json;{accept},application/json",
        )
        return client.CoreV1Api(meta_client)

    lists, objects = metadata_api("PartialObjectMetadataList"), metadata_api("PartialObjectMetadata")
    first = json.loads(lists.list_namespaced_config_map(namespace, limit=2, _preload_content=False).data)
    assert first["kind"] == "PartialObjectMetadataList" and first["apiVersion"] == "meta.k8s.io/v1", first
    assert len(first["items"]) == 2 and first["metadata"]["continue"], first
    assert all(i["kind"] == "PartialObjectMetadata" and "data" not in i for i in first["items"]), first
    rest = json.loads(
        lists.list_namespaced_config_map(
            namespace, limit=10, _continue=first["metadata"]["continue"], _preload_content=False
        ).data
    )
    names = [i["metadata"]["name"] for i in first["items"] + rest["items"]]
    assert {"m1", "m2", "m3"} <= set(names), names

    one = json.loads(objects.read_namespaced_config_map("m2", namespace, _preload_content=False).data)
    assert one["kind"] == "PartialObjectMetadata" and one["metadata"]["name"] == "m2" and "data" not in one, one

    resp = objects.list_namespaced_config_map(
        namespace,
        watch=True,
        timeout_seconds=2,
        resource_version=rest["metadata"]["resourceVersion"],
        _preload_content=False,
    )
    core.patch_namespaced_config_map("m3", namespace, {"metadata": {"labels": {"seen": "yes"}}})
    events = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    modified = [e for e in events if e["type"] == "MODIFIED" and e["object"]["metadata"]["name"] == "m3"]
    assert modified and modified[0]["object"]["kind"] == "PartialObjectMetadata", events
    assert modified[0]["object"]["metadata"]["labels"] == {"seen": "yes"}
    assert "data" not in modified[0]["object"]
