//! Which resources this server serves: one `ResourceInfo` per (group, version, plural).
//! Discovery, OpenAPI, routing and storage all read from here, so a kind appears
//! everywhere or nowhere.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

/// A subresource such as `deployments/scale` or `pods/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubresourceInfo {
    /// `status`, `scale`, `log`, `exec`, `binding`, `eviction`, `token`, `finalize` ...
    pub name: String,
    /// The kind the subresource speaks (`Scale` in `autoscaling/v1` for scale).
    pub group: String,
    pub version: String,
    pub kind: String,
    pub verbs: Vec<String>,
}

/// One served resource at one version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The URL segment, e.g. `deployments`.
    pub plural: String,
    /// Lower-case kind, e.g. `deployment`.
    pub singular: String,
    pub namespaced: bool,
    /// Subset of create, delete, deletecollection, get, list, patch, update, watch.
    pub verbs: Vec<String>,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub subresources: Vec<SubresourceInfo>,
    /// `DeploymentList` etc.; empty when the resource cannot be listed.
    pub list_kind: String,
    /// The OpenAPI definition name, e.g. `io.k8s.api.apps.v1.Deployment`
    /// (empty for kinds without a built-in schema).
    pub definition: String,
    /// What the CustomResourceDefinition says about this version; `None` for built-ins.
    pub custom: Option<Arc<CustomVersion>>,
}

/// One served version of a CustomResourceDefinition, as the API paths need it: schema for
/// validation, pruning, defaulting and apply; columns for Table output; subresources.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomVersion {
    /// `metadata.name` of the CRD (`widgets.example.com`).
    pub crd_name: String,
    /// `spec.versions[].schema.openAPIV3Schema`; `None` when the version has no schema.
    pub schema: Option<serde_json::Value>,
    /// `spec.versions[].additionalPrinterColumns` as given.
    pub printer_columns: Vec<serde_json::Value>,
    /// `spec.versions[].subresources.scale` (`specReplicasPath`, `statusReplicasPath`,
    /// `labelSelectorPath`), when the scale subresource is enabled.
    pub scale: Option<serde_json::Value>,
    /// Whether the status subresource is enabled.
    pub status: bool,
    /// Whether this is the storage version.
    pub storage: bool,
    /// `spec.versions[].deprecated` / `deprecationWarning`.
    pub deprecation_warning: Option<String>,
    /// `spec.versions[].selectableFields[].jsonPath` without the leading dot
    /// (`spec.color`): the fields a `fieldSelector` may name beside metadata.name/namespace.
    pub selectable_fields: Vec<String>,
}

impl ResourceInfo {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
    pub fn subresource(&self, name: &str) -> Option<&SubresourceInfo> {
        self.subresources.iter().find(|s| s.name == name)
    }
    /// `deployments.apps`, or `pods` for the core group: how upstream names a resource in errors.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// A served API group with its versions, preferred first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// Empty for the core (legacy) group.
    pub name: String,
    pub versions: Vec<String>,
}

/// The set of served resources. Interior mutability so CRDs can be added at run time.
#[derive(Debug, Default)]
pub struct Registry {
    /// (group, version, plural) -> info
    by_path: RwLock<BTreeMap<(String, String, String), Arc<ResourceInfo>>>,
    /// Group order as discovery lists it; each with its versions, preferred first.
    groups: RwLock<Vec<GroupInfo>>,
    /// Bumped on every insert and remove, so documents derived from the registry (OpenAPI)
    /// can tell cheaply whether they are stale.
    generation: AtomicU64,
    /// Asked to catch up when a request names a resource the registry does not know.
    refresher: RwLock<Refresher>,
}

/// Brings the registry up to date on demand. The CRD registrar is one: a CRD can be
/// visible as Established (and a client start using its kind) a moment before the
/// registrar's watch has registered it; a request for an unknown resource asks first.
pub trait RegistryRefresh: Send + Sync {
    fn refresh(&self);
}

/// A weak link to the refresher, so the registry (held by everything) does not keep the
/// registrar (which holds the registry) alive.
#[derive(Default)]
struct Refresher(Option<std::sync::Weak<dyn RegistryRefresh>>);

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Refresher(set)"
        } else {
            "Refresher(none)"
        })
    }
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds (or replaces) a resource; its group and version are appended to the group list
    /// if new (later versions of a known group are appended after the preferred one).
    pub fn insert(&self, info: ResourceInfo) {
        {
            let mut groups = self.groups.write();
            match groups.iter_mut().find(|g| g.name == info.group) {
                Some(g) => {
                    if !g.versions.contains(&info.version) {
                        g.versions.push(info.version.clone());
                    }
                }
                None => groups.push(GroupInfo {
                    name: info.group.clone(),
                    versions: vec![info.version.clone()],
                }),
            }
        }
        self.by_path.write().insert(
            (
                info.group.clone(),
                info.version.clone(),
                info.plural.clone(),
            ),
            Arc::new(info),
        );
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Changes whenever a resource is inserted or removed.
    /// Installs the hook `refresh` calls.
    pub fn set_refresher(&self, refresher: std::sync::Weak<dyn RegistryRefresh>) {
        self.refresher.write().0 = Some(refresher);
    }

    /// Lets the refresher (if any) catch up now; returns whether one ran.
    pub fn refresh(&self) -> bool {
        let hook = self
            .refresher
            .read()
            .0
            .as_ref()
            .and_then(std::sync::Weak::upgrade);
        match hook {
            Some(hook) => {
                hook.refresh();
                true
            }
            None => false,
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Removes a resource (a deleted CRD version); drops the group/version when empty.
    pub fn remove(&self, group: &str, version: &str, plural: &str) {
        let mut by_path = self.by_path.write();
        by_path.remove(&(group.to_string(), version.to_string(), plural.to_string()));
        let still_has_version = by_path.keys().any(|(g, v, _)| g == group && v == version);
        drop(by_path);
        if !still_has_version {
            let mut groups = self.groups.write();
            for g in groups.iter_mut() {
                if g.name == group {
                    g.versions.retain(|v| v != version);
                }
            }
            groups.retain(|g| !g.versions.is_empty());
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.by_path
            .read()
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// [`Self::get`] for a resource a controller cannot work without: a missing one is an
    /// internal error (`<plural> are not served`).
    pub fn served(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Result<Arc<ResourceInfo>, crate::ApiError> {
        self.get(group, version, plural)
            .ok_or_else(|| crate::ApiError::internal(format!("{plural} are not served")))
    }

    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        self.by_path
            .read()
            .values()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .cloned()
    }

    /// All served groups, core first, in registration order.
    pub fn groups(&self) -> Vec<GroupInfo> {
        self.groups.read().clone()
    }

    /// Resources of one group/version, sorted by plural.
    pub fn resources_in(&self, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
        self.by_path
            .read()
            .iter()
            .filter(|((g, v, _), _)| g == group && v == version)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Every served resource at every version.
    pub fn all(&self) -> Vec<Arc<ResourceInfo>> {
        self.by_path.read().values().cloned().collect()
    }
}
