//! The built-in resources a default Kubernetes 1.33 kube-apiserver serves: GA and
//! default-on beta APIs, one (the preferred) version per resource, with the verbs, short
//! names, categories and subresources a real 1.33 cluster reports in discovery.
//!
//! Kinds, plurals, scopes, list kinds and definitions come from the catalog (k8s-openapi);
//! what k8s-openapi does not know (verbs, short names, categories, subresources) is listed
//! here.

use crate::catalog::{Catalog, KindScope};
use crate::registry::{Registry, ResourceInfo, SubresourceInfo};

/// Subset of the eight standard verbs a resource answers.
#[derive(Clone, Copy)]
enum Verbs {
    /// create, delete, deletecollection, get, list, patch, update, watch.
    All,
    /// All but deletecollection (namespaces).
    NoDeleteCollection,
    /// Reviews and bindings: a POST that is answered, never stored.
    CreateOnly,
    /// componentstatuses.
    GetList,
}

impl Verbs {
    fn list(self) -> &'static [&'static str] {
        match self {
            Verbs::All => &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            Verbs::NoDeleteCollection => &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ],
            Verbs::CreateOnly => &["create"],
            Verbs::GetList => &["get", "list"],
        }
    }
}

/// A subresource: (name, group, version, kind, verbs). An empty group/version/kind means
/// "the parent's".
type Sub = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];
const CREATE: &[&str] = &["create"];
const CREATE_GET: &[&str] = &["create", "get"];
const PROXY_VERBS: &[&str] = &["create", "delete", "get", "patch", "update"];

const STATUS: Sub = ("status", "", "", "", GET_PATCH_UPDATE);
const SCALE: Sub = ("scale", "autoscaling", "v1", "Scale", GET_PATCH_UPDATE);

/// One served resource: (group, version, plural, verbs, short names, categories, subresources).
type Served = (
    &'static str,
    &'static str,
    &'static str,
    Verbs,
    &'static [&'static str],
    &'static [&'static str],
    &'static [Sub],
);

const ALL: &[&str] = &["all"];
const API_EXTENSIONS: &[&str] = &["api-extensions"];
const NONE: &[&str] = &[];

/// In upstream discovery order of groups.
const SERVED: &[Served] = &[
    ("", "v1", "bindings", Verbs::CreateOnly, NONE, NONE, &[]),
    (
        "",
        "v1",
        "componentstatuses",
        Verbs::GetList,
        &["cs"],
        NONE,
        &[],
    ),
    ("", "v1", "configmaps", Verbs::All, &["cm"], NONE, &[]),
    ("", "v1", "endpoints", Verbs::All, &["ep"], NONE, &[]),
    ("", "v1", "events", Verbs::All, &["ev"], NONE, &[]),
    ("", "v1", "limitranges", Verbs::All, &["limits"], NONE, &[]),
    (
        "",
        "v1",
        "namespaces",
        Verbs::NoDeleteCollection,
        &["ns"],
        NONE,
        &[("finalize", "", "", "", &["update"]), STATUS],
    ),
    (
        "",
        "v1",
        "nodes",
        Verbs::All,
        &["no"],
        NONE,
        &[("proxy", "", "", "NodeProxyOptions", PROXY_VERBS), STATUS],
    ),
    (
        "",
        "v1",
        "persistentvolumeclaims",
        Verbs::All,
        &["pvc"],
        NONE,
        &[STATUS],
    ),
    (
        "",
        "v1",
        "persistentvolumes",
        Verbs::All,
        &["pv"],
        NONE,
        &[STATUS],
    ),
    (
        "",
        "v1",
        "pods",
        Verbs::All,
        &["po"],
        ALL,
        &[
            ("attach", "", "", "PodAttachOptions", CREATE_GET),
            ("binding", "", "", "Binding", CREATE),
            ("ephemeralcontainers", "", "", "", GET_PATCH_UPDATE),
            ("eviction", "policy", "v1", "Eviction", CREATE),
            ("exec", "", "", "PodExecOptions", CREATE_GET),
            ("log", "", "", "", &["get"]),
            ("portforward", "", "", "PodPortForwardOptions", CREATE_GET),
            ("proxy", "", "", "PodProxyOptions", PROXY_VERBS),
            ("resize", "", "", "", GET_PATCH_UPDATE),
            STATUS,
        ],
    ),
    ("", "v1", "podtemplates", Verbs::All, NONE, NONE, &[]),
    (
        "",
        "v1",
        "replicationcontrollers",
        Verbs::All,
        &["rc"],
        ALL,
        &[SCALE, STATUS],
    ),
    (
        "",
        "v1",
        "resourcequotas",
        Verbs::All,
        &["quota"],
        NONE,
        &[STATUS],
    ),
    ("", "v1", "secrets", Verbs::All, NONE, NONE, &[]),
    (
        "",
        "v1",
        "serviceaccounts",
        Verbs::All,
        &["sa"],
        NONE,
        &[(
            "token",
            "authentication.k8s.io",
            "v1",
            "TokenRequest",
            CREATE,
        )],
    ),
    (
        "",
        "v1",
        "services",
        Verbs::All,
        &["svc"],
        ALL,
        &[
            ("proxy", "", "", "ServiceProxyOptions", PROXY_VERBS),
            STATUS,
        ],
    ),
    (
        "apiregistration.k8s.io",
        "v1",
        "apiservices",
        Verbs::All,
        NONE,
        API_EXTENSIONS,
        &[STATUS],
    ),
    (
        "apps",
        "v1",
        "controllerrevisions",
        Verbs::All,
        NONE,
        NONE,
        &[],
    ),
    (
        "apps",
        "v1",
        "daemonsets",
        Verbs::All,
        &["ds"],
        ALL,
        &[STATUS],
    ),
    (
        "apps",
        "v1",
        "deployments",
        Verbs::All,
        &["deploy"],
        ALL,
        &[SCALE, STATUS],
    ),
    (
        "apps",
        "v1",
        "replicasets",
        Verbs::All,
        &["rs"],
        ALL,
        &[SCALE, STATUS],
    ),
    (
        "apps",
        "v1",
        "statefulsets",
        Verbs::All,
        &["sts"],
        ALL,
        &[SCALE, STATUS],
    ),
    (
        "events.k8s.io",
        "v1",
        "events",
        Verbs::All,
        &["ev"],
        NONE,
        &[],
    ),
    (
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        Verbs::CreateOnly,
        NONE,
        NONE,
        &[],
    ),
    (
        "authentication.k8s.io",
        "v1",
        "tokenreviews",
        Verbs::CreateOnly,
        NONE,
        NONE,
        &[],
    ),
    (
        "authorization.k8s.io",
        "v1",
        "localsubjectaccessreviews",
        Verbs::CreateOnly,
        NONE,
        NONE,
        &[],
    ),
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        Verbs::CreateOnly,
        NONE,
        NONE,
        &[],
    ),
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectrulesreviews",
        Verbs::CreateOnly,
        NONE,
        NONE,
        &[],
    ),
    (
        "authorization.k8s.io",
        "v1",
        "subjectaccessreviews",
        Verbs::CreateOnly,
        NONE,
        NONE,
        &[],
    ),
    (
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        Verbs::All,
        &["hpa"],
        ALL,
        &[STATUS],
    ),
    // Also served at v1 (not preferred), stored as v2: see `conversion`.
    (
        "autoscaling",
        "v1",
        "horizontalpodautoscalers",
        Verbs::All,
        &["hpa"],
        ALL,
        &[STATUS],
    ),
    (
        "batch",
        "v1",
        "cronjobs",
        Verbs::All,
        &["cj"],
        ALL,
        &[STATUS],
    ),
    ("batch", "v1", "jobs", Verbs::All, NONE, ALL, &[STATUS]),
    (
        "certificates.k8s.io",
        "v1",
        "certificatesigningrequests",
        Verbs::All,
        &["csr"],
        NONE,
        &[("approval", "", "", "", GET_PATCH_UPDATE), STATUS],
    ),
    (
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        Verbs::All,
        NONE,
        NONE,
        &[],
    ),
    (
        "networking.k8s.io",
        "v1",
        "ingresses",
        Verbs::All,
        &["ing"],
        NONE,
        &[STATUS],
    ),
    (
        "networking.k8s.io",
        "v1",
        "ipaddresses",
        Verbs::All,
        &["ip"],
        NONE,
        &[],
    ),
    (
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        Verbs::All,
        &["netpol"],
        NONE,
        &[],
    ),
    (
        "networking.k8s.io",
        "v1",
        "servicecidrs",
        Verbs::All,
        NONE,
        NONE,
        &[STATUS],
    ),
    (
        "policy",
        "v1",
        "poddisruptionbudgets",
        Verbs::All,
        &["pdb"],
        NONE,
        &[STATUS],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        Verbs::All,
        NONE,
        NONE,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        Verbs::All,
        NONE,
        NONE,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        Verbs::All,
        NONE,
        NONE,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        Verbs::All,
        NONE,
        NONE,
        &[],
    ),
    (
        "storage.k8s.io",
        "v1",
        "csidrivers",
        Verbs::All,
        NONE,
        NONE,
        &[],
    ),
    (
        "storage.k8s.io",
        "v1",
        "csinodes",
        Verbs::All,
        NONE,
        NONE,
        &[],
    ),
    (
        "storage.k8s.io",
        "v1",
        "csistoragecapacities",
        Verbs::All,
        NONE,
        NONE,
        &[],
    ),
    (
        "storage.k8s.io",
        "v1",
        "storageclasses",
        Verbs::All,
        &["sc"],
        NONE,
        &[],
    ),
    (
        "storage.k8s.io",
        "v1",
        "volumeattachments",
        Verbs::All,
        NONE,
        NONE,
        &[STATUS],
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        Verbs::All,
        NONE,
        API_EXTENSIONS,
        &[],
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicies",
        Verbs::All,
        NONE,
        API_EXTENSIONS,
        &[STATUS],
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicybindings",
        Verbs::All,
        NONE,
        API_EXTENSIONS,
        &[],
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        Verbs::All,
        NONE,
        API_EXTENSIONS,
        &[],
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        Verbs::All,
        &["crd", "crds"],
        API_EXTENSIONS,
        &[STATUS],
    ),
    (
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        Verbs::All,
        &["pc"],
        NONE,
        &[],
    ),
    (
        "coordination.k8s.io",
        "v1",
        "leases",
        Verbs::All,
        NONE,
        NONE,
        &[],
    ),
    (
        "node.k8s.io",
        "v1",
        "runtimeclasses",
        Verbs::All,
        NONE,
        NONE,
        &[],
    ),
    (
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        Verbs::All,
        NONE,
        NONE,
        &[],
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "flowschemas",
        Verbs::All,
        NONE,
        NONE,
        &[STATUS],
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "prioritylevelconfigurations",
        Verbs::All,
        NONE,
        NONE,
        &[STATUS],
    ),
];

/// Resources whose registry sets upstream's `ReturnDeletedObject`: a DELETE that removes
/// the object answers with the object itself. Every other resource answers with a
/// `Status{status: Success, details: {name, group, kind: <plural>, uid}}` (the generic
/// store's `finalizeDelete`). From the `storage.go` of each resource in kubernetes 1.33.
const RETURNS_DELETED_OBJECT: &[(&str, &str)] = &[
    ("", "namespaces"),
    ("", "persistentvolumeclaims"),
    ("", "persistentvolumes"),
    ("", "pods"),
    ("", "podtemplates"),
    ("", "resourcequotas"),
    ("", "serviceaccounts"),
    ("", "services"),
    ("storage.k8s.io", "csidrivers"),
    ("storage.k8s.io", "csinodes"),
    ("storage.k8s.io", "storageclasses"),
    ("storage.k8s.io", "volumeattachments"),
];

/// Whether a DELETE that removes an object of `res` answers with the object (true) or
/// with a success `Status` (false). Objects kept by finalizers are always returned.
pub fn returns_deleted_object(res: &ResourceInfo) -> bool {
    RETURNS_DELETED_OBJECT
        .iter()
        .any(|(g, p)| *g == res.group && *p == res.plural)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The `ResourceInfo`s of every built-in resource a default 1.33 server serves, in
/// upstream discovery order of groups.
pub fn builtin_resources(catalog: &Catalog) -> Vec<ResourceInfo> {
    let mut out = Vec::with_capacity(SERVED.len());
    for &(group, version, plural, verbs, short_names, categories, subs) in SERVED {
        let Some(kind) = catalog.kinds().iter().find(|k| {
            k.group == group
                && k.version == version
                && k.plural == plural
                && k.scope != KindScope::Subresource
        }) else {
            // Every entry above names a kind of k8s-openapi v1.33; the catalog test checks it.
            continue;
        };
        let subresources = subs
            .iter()
            .map(|&(name, sub_group, sub_version, sub_kind, sub_verbs)| {
                let (g, v) = if sub_group.is_empty() && sub_version.is_empty() {
                    (group, version)
                } else {
                    (sub_group, sub_version)
                };
                SubresourceInfo {
                    name: name.to_string(),
                    group: g.to_string(),
                    version: v.to_string(),
                    kind: if sub_kind.is_empty() {
                        kind.kind.clone()
                    } else {
                        sub_kind.to_string()
                    },
                    verbs: strings(sub_verbs),
                }
            })
            .collect();
        out.push(ResourceInfo {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.kind.clone(),
            plural: plural.to_string(),
            singular: kind.kind.to_lowercase(),
            namespaced: kind.scope == KindScope::Namespaced,
            verbs: strings(verbs.list()),
            short_names: strings(short_names),
            categories: strings(categories),
            subresources,
            list_kind: if verbs.list().contains(&"list") {
                kind.list_kind.clone()
            } else {
                String::new()
            },
            definition: kind.definition.clone(),
            custom: None,
        });
    }
    out
}

impl Registry {
    /// A registry holding every built-in resource of Kubernetes 1.33 (CRDs are added later).
    pub fn builtin() -> Registry {
        let registry = Registry::new();
        for info in builtin_resources(Catalog::builtin()) {
            registry.insert(info);
        }
        registry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_entry_names_a_known_kind() {
        assert_eq!(builtin_resources(Catalog::builtin()).len(), SERVED.len());
    }

    #[test]
    fn groups_follow_upstream_discovery_order() {
        let names: Vec<String> = Registry::builtin()
            .groups()
            .into_iter()
            .map(|g| g.name)
            .collect();
        assert_eq!(
            names,
            [
                "",
                "apiregistration.k8s.io",
                "apps",
                "events.k8s.io",
                "authentication.k8s.io",
                "authorization.k8s.io",
                "autoscaling",
                "batch",
                "certificates.k8s.io",
                "networking.k8s.io",
                "policy",
                "rbac.authorization.k8s.io",
                "storage.k8s.io",
                "admissionregistration.k8s.io",
                "apiextensions.k8s.io",
                "scheduling.k8s.io",
                "coordination.k8s.io",
                "node.k8s.io",
                "discovery.k8s.io",
                "flowcontrol.apiserver.k8s.io",
            ]
        );
        let autoscaling = Registry::builtin()
            .groups()
            .into_iter()
            .find(|g| g.name == "autoscaling")
            .unwrap();
        assert_eq!(autoscaling.versions, ["v2", "v1"], "v2 preferred");
    }

    #[test]
    fn category_all_is_what_kubectl_get_all_lists() {
        let mut all: Vec<String> = Registry::builtin()
            .all()
            .iter()
            .filter(|r| r.categories.iter().any(|c| c == "all"))
            .map(|r| r.plural.clone())
            .collect();
        all.sort();
        all.dedup(); // HPAs are served at two versions
        assert_eq!(
            all,
            [
                "cronjobs",
                "daemonsets",
                "deployments",
                "horizontalpodautoscalers",
                "jobs",
                "pods",
                "replicasets",
                "replicationcontrollers",
                "services",
                "statefulsets",
            ]
        );
    }

    #[test]
    fn deployments_look_like_upstream_discovery() {
        let r = Registry::builtin();
        let d = r.get("apps", "v1", "deployments").unwrap();
        assert_eq!(d.kind, "Deployment");
        assert_eq!(d.singular, "deployment");
        assert!(d.namespaced);
        assert_eq!(d.short_names, ["deploy"]);
        assert_eq!(d.list_kind, "DeploymentList");
        assert_eq!(d.definition, "io.k8s.api.apps.v1.Deployment");
        assert_eq!(d.verbs.len(), 8);
        let scale = d.subresource("scale").unwrap();
        assert_eq!(
            (
                scale.group.as_str(),
                scale.version.as_str(),
                scale.kind.as_str()
            ),
            ("autoscaling", "v1", "Scale")
        );
        assert_eq!(d.subresource("status").unwrap().kind, "Deployment");
        let pods = r.get("", "v1", "pods").unwrap();
        let eviction = pods.subresource("eviction").unwrap();
        assert_eq!(
            (eviction.group.as_str(), eviction.kind.as_str()),
            ("policy", "Eviction")
        );
        assert_eq!(pods.subresource("log").unwrap().verbs, ["get"]);
        let token = r.get("", "v1", "serviceaccounts").unwrap();
        assert_eq!(token.subresource("token").unwrap().kind, "TokenRequest");
    }

    #[test]
    fn reviews_are_create_only_and_unlistable() {
        let r = Registry::builtin();
        for (g, p) in [
            ("authentication.k8s.io", "tokenreviews"),
            ("authentication.k8s.io", "selfsubjectreviews"),
            ("authorization.k8s.io", "subjectaccessreviews"),
            ("authorization.k8s.io", "selfsubjectaccessreviews"),
            ("authorization.k8s.io", "selfsubjectrulesreviews"),
            ("authorization.k8s.io", "localsubjectaccessreviews"),
            ("", "bindings"),
        ] {
            let info = r.get(g, "v1", p).unwrap();
            assert_eq!(info.verbs, ["create"], "{p}");
            assert_eq!(info.list_kind, "", "{p}");
        }
        assert_eq!(
            r.get("", "v1", "componentstatuses").unwrap().verbs,
            ["get", "list"]
        );
        assert!(
            !r.get("", "v1", "namespaces")
                .unwrap()
                .has_verb("deletecollection")
        );
        assert!(!r.get("", "v1", "nodes").unwrap().namespaced);
    }

    #[test]
    fn kinds_with_status_have_a_status_subresource() {
        let c = Catalog::builtin();
        for r in Registry::builtin().all() {
            let has_status = c.schema(&r.definition).unwrap()["properties"]
                .get("status")
                .is_some();
            let stored = r.has_verb("get");
            assert_eq!(
                has_status && stored,
                r.subresource("status").is_some(),
                "{}",
                r.plural
            );
        }
    }
}
