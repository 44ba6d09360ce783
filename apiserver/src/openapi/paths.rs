//! The REST operations of served resources, as one model rendered both as OpenAPI v3
//! (per group-version documents) and as swagger 2.0 (`/openapi/v2`).
//!
//! Operation ids, actions, parameters and media types follow upstream's generated specs;
//! kubectl relies on `x-kubernetes-group-version-kind` on operations (explain, and the
//! `fieldValidation` support check on every PATCH operation of a kind).

use std::sync::Arc;

use beemesh_translator::catalog::Catalog;
use beemesh_translator::{ResourceInfo, SubresourceInfo};
use serde_json::{Map, Value, json};

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum In {
    Path,
    Query,
}

#[derive(Debug, Clone)]
pub(super) struct Param {
    pub name: &'static str,
    pub location: In,
    pub description: String,
    /// `string`, `integer` or `boolean`.
    pub ty: &'static str,
}

/// What a response body is.
#[derive(Debug, Clone)]
pub(super) enum Payload {
    /// A schema by definition name.
    Definition(String),
    /// Plain text (logs, connect operations).
    Text,
}

#[derive(Debug, Clone)]
pub(super) struct Response {
    pub code: &'static str,
    pub description: &'static str,
    pub payload: Option<Payload>,
}

/// How the request body is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyKind {
    /// `*/*`: create, replace, delete options.
    Any,
    /// The four patch media types.
    Patch,
    /// Custom resources: JSON or YAML.
    CustomObject,
    /// Custom resources: no strategic merge patch.
    CustomPatch,
}

#[derive(Debug, Clone)]
pub(super) struct Body {
    pub kind: BodyKind,
    pub definition: String,
    pub required: bool,
}

/// Which media types a response is offered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Produces {
    Object,
    /// Lists may be watched with `?watch=true`.
    List,
    Watch,
    Text,
    Connect,
    /// Custom resources (JSON and YAML only, as apiextensions-apiserver publishes them).
    Custom,
}

#[derive(Debug, Clone)]
pub(super) struct Operation {
    /// `get`, `put`, `post`, `delete`, `patch`.
    pub method: &'static str,
    pub id: String,
    pub description: String,
    pub action: &'static str,
    /// (group, version, kind) of `x-kubernetes-group-version-kind`.
    pub gvk: Option<(String, String, String)>,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    pub responses: Vec<Response>,
    pub produces: Produces,
}

#[derive(Debug, Clone)]
pub(super) struct PathItem {
    pub path: String,
    pub params: Vec<Param>,
    pub operations: Vec<Operation>,
}

const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";

fn query(name: &'static str, ty: &'static str, description: &str) -> Param {
    Param {
        name,
        location: In::Query,
        description: description.to_string(),
        ty,
    }
}

fn path_param(name: &'static str, description: impl Into<String>) -> Param {
    Param {
        name,
        location: In::Path,
        description: description.into(),
        ty: "string",
    }
}

fn pretty() -> Param {
    query(
        "pretty",
        "string",
        "If 'true', then the output is pretty printed.",
    )
}
fn namespace_param() -> Param {
    path_param(
        "namespace",
        "object name and auth scope, such as for teams and projects",
    )
}
fn dry_run() -> Param {
    query(
        "dryRun",
        "string",
        "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
    )
}
fn field_manager() -> Param {
    query(
        "fieldManager",
        "string",
        "fieldManager is a name associated with the actor or entity that is making these changes.",
    )
}
fn field_validation() -> Param {
    query(
        "fieldValidation",
        "string",
        "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: Ignore, Warn (the default) and Strict.",
    )
}
fn force() -> Param {
    query(
        "force",
        "boolean",
        "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
    )
}

fn write_params() -> Vec<Param> {
    vec![dry_run(), field_manager(), field_validation()]
}

fn list_params() -> Vec<Param> {
    vec![
        query(
            "allowWatchBookmarks",
            "boolean",
            "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
        ),
        query(
            "continue",
            "string",
            "The continue option should be set when retrieving more results from the server.",
        ),
        query(
            "fieldSelector",
            "string",
            "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
        ),
        query(
            "labelSelector",
            "string",
            "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
        ),
        query(
            "limit",
            "integer",
            "limit is a maximum number of responses to return for a list call.",
        ),
        query(
            "resourceVersion",
            "string",
            "resourceVersion sets a constraint on what resource versions a request may be served from.",
        ),
        query(
            "resourceVersionMatch",
            "string",
            "resourceVersionMatch determines how resourceVersion is applied to list calls.",
        ),
        query(
            "sendInitialEvents",
            "boolean",
            "`sendInitialEvents=true` may be set together with `watch=true` to begin the watch stream with synthetic events for the current state.",
        ),
        query(
            "timeoutSeconds",
            "integer",
            "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
        ),
        query(
            "watch",
            "boolean",
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
        ),
    ]
}

fn delete_params() -> Vec<Param> {
    vec![
        dry_run(),
        query(
            "gracePeriodSeconds",
            "integer",
            "The duration in seconds before the object should be deleted. Zero means delete immediately.",
        ),
        query(
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "boolean",
            "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.",
        ),
        query(
            "orphanDependents",
            "boolean",
            "Deprecated: please use the PropagationPolicy. Should the dependent objects be orphaned.",
        ),
        query(
            "propagationPolicy",
            "string",
            "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.",
        ),
    ]
}

fn delete_collection_params() -> Vec<Param> {
    let mut params: Vec<Param> = delete_params();
    params.extend(
        list_params()
            .into_iter()
            .filter(|p| p.name != "watch" && p.name != "allowWatchBookmarks"),
    );
    params.sort_by_key(|p| p.name);
    params
}

fn ok(definition: &str) -> Response {
    Response {
        code: "200",
        description: "OK",
        payload: Some(Payload::Definition(definition.to_string())),
    }
}
fn created(definition: &str) -> Response {
    Response {
        code: "201",
        description: "Created",
        payload: Some(Payload::Definition(definition.to_string())),
    }
}
fn accepted(definition: &str) -> Response {
    Response {
        code: "202",
        description: "Accepted",
        payload: Some(Payload::Definition(definition.to_string())),
    }
}
fn unauthorized() -> Response {
    Response {
        code: "401",
        description: "Unauthorized",
        payload: None,
    }
}
fn text_ok() -> Response {
    Response {
        code: "200",
        description: "OK",
        payload: Some(Payload::Text),
    }
}

/// `Apps`, `RbacAuthorization`, `Core`: the group as upstream spells it in operation ids.
fn group_id(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    group
        .trim_end_matches(".k8s.io")
        .split('.')
        .map(upper_first)
        .collect()
}

/// `apps_v1`, `rbacAuthorization_v1`, `core_v1`: upstream's tags.
pub(super) fn tag(group: &str, version: &str) -> String {
    let id = group_id(group);
    let mut chars = id.chars();
    let lower = match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect::<String>(),
        None => String::new(),
    };
    format!("{lower}_{version}")
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `/api/v1` or `/apis/apps/v1`.
pub(super) fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// Every path of one group-version, sorted by path.
pub(super) fn group_version_paths(
    catalog: &Catalog,
    group: &str,
    version: &str,
    resources: &[Arc<ResourceInfo>],
) -> Vec<PathItem> {
    let mut items = Vec::new();
    // apiextensions-apiserver publishes only the resources' own routes for CRD versions.
    if resources.iter().any(|r| r.custom.is_none()) {
        items.push(api_resources_item(group, version));
    }
    for r in resources {
        items.extend(resource_paths(catalog, r));
    }
    items.sort_by(|a, b| a.path.cmp(&b.path));
    items
}

/// `GET /apis/<group>/<version>/`: the group-version's APIResourceList.
fn api_resources_item(group: &str, version: &str) -> PathItem {
    PathItem {
        path: format!("{}/", prefix(group, version)),
        params: Vec::new(),
        operations: vec![Operation {
            method: "get",
            id: format!("get{}{}APIResources", group_id(group), upper_first(version)),
            description: "get available resources".into(),
            action: "",
            gvk: None,
            params: Vec::new(),
            body: None,
            responses: vec![ok(API_RESOURCE_LIST), unauthorized()],
            produces: Produces::Object,
        }],
    }
}

/// Builds the operations of one resource from its verbs and subresources.
fn resource_paths(catalog: &Catalog, r: &ResourceInfo) -> Vec<PathItem> {
    let gv_prefix = prefix(&r.group, &r.version);
    let g = group_id(&r.group);
    let v = upper_first(&r.version);
    let kind = &r.kind;
    let ns = if r.namespaced { "Namespaced" } else { "" };
    let gvk = Some((r.group.clone(), r.version.clone(), r.kind.clone()));
    let definition = r.definition.clone();
    let list_definition = match definition.rsplit_once('.') {
        Some((p, _)) if !r.list_kind.is_empty() => format!("{p}.{}", r.list_kind),
        _ => String::new(),
    };
    let (collection, scope_params) = if r.namespaced {
        (
            format!("{gv_prefix}/namespaces/{{namespace}}/{}", r.plural),
            vec![namespace_param()],
        )
    } else {
        (format!("{gv_prefix}/{}", r.plural), Vec::new())
    };
    let item = format!("{collection}/{{name}}");
    let name_param = path_param("name", format!("name of the {kind}"));
    let mut out = Vec::new();

    // The collection: list, create, deletecollection.
    let mut ops = Vec::new();
    if r.has_verb("list") && !list_definition.is_empty() {
        ops.push(Operation {
            method: "get",
            id: format!("list{g}{v}{ns}{kind}"),
            description: format!("list or watch objects of kind {kind}"),
            action: "list",
            gvk: gvk.clone(),
            params: list_params(),
            body: None,
            responses: vec![ok(&list_definition), unauthorized()],
            produces: Produces::List,
        });
    }
    if r.has_verb("create") {
        ops.push(Operation {
            method: "post",
            id: format!("create{g}{v}{ns}{kind}"),
            description: format!("create a {kind}"),
            action: "post",
            gvk: gvk.clone(),
            params: write_params(),
            body: Some(Body {
                kind: BodyKind::Any,
                definition: definition.clone(),
                required: true,
            }),
            responses: vec![
                ok(&definition),
                created(&definition),
                accepted(&definition),
                unauthorized(),
            ],
            produces: Produces::Object,
        });
    }
    if r.has_verb("deletecollection") {
        ops.push(Operation {
            method: "delete",
            id: format!("delete{g}{v}Collection{ns}{kind}"),
            description: format!("delete collection of {kind}"),
            action: "deletecollection",
            gvk: gvk.clone(),
            params: delete_collection_params(),
            body: Some(Body {
                kind: BodyKind::Any,
                definition: DELETE_OPTIONS.into(),
                required: false,
            }),
            responses: vec![ok(STATUS), unauthorized()],
            produces: Produces::Object,
        });
    }
    if !ops.is_empty() {
        let mut params = scope_params.clone();
        params.push(pretty());
        out.push(PathItem {
            path: collection.clone(),
            params,
            operations: ops,
        });
    }

    // One object: read, replace, patch, delete.
    let mut ops = Vec::new();
    if r.has_verb("get") {
        ops.push(Operation {
            method: "get",
            id: format!("read{g}{v}{ns}{kind}"),
            description: format!("read the specified {kind}"),
            action: "get",
            gvk: gvk.clone(),
            params: Vec::new(),
            body: None,
            responses: vec![ok(&definition), unauthorized()],
            produces: Produces::Object,
        });
    }
    if r.has_verb("update") {
        ops.push(replace_op(
            format!("replace{g}{v}{ns}{kind}"),
            format!("replace the specified {kind}"),
            &gvk,
            &definition,
        ));
    }
    if r.has_verb("patch") {
        ops.push(patch_op(
            format!("patch{g}{v}{ns}{kind}"),
            format!("partially update the specified {kind}"),
            &gvk,
            &definition,
        ));
    }
    if r.has_verb("delete") {
        ops.push(Operation {
            method: "delete",
            id: format!("delete{g}{v}{ns}{kind}"),
            description: format!("delete a {kind}"),
            action: "delete",
            gvk: gvk.clone(),
            params: delete_params(),
            body: Some(Body {
                kind: BodyKind::Any,
                definition: DELETE_OPTIONS.into(),
                required: false,
            }),
            responses: vec![ok(STATUS), accepted(STATUS), unauthorized()],
            produces: Produces::Object,
        });
    }
    if !ops.is_empty() {
        let mut params = vec![name_param.clone()];
        params.extend(scope_params.clone());
        params.push(pretty());
        out.push(PathItem {
            path: item.clone(),
            params,
            operations: ops,
        });
    }

    // Lists across namespaces.
    if r.namespaced && r.has_verb("list") && !list_definition.is_empty() {
        let mut params = list_params();
        params.push(pretty());
        params.sort_by_key(|p| p.name);
        out.push(PathItem {
            path: format!("{gv_prefix}/{}", r.plural),
            params,
            operations: vec![Operation {
                method: "get",
                id: format!("list{g}{v}{kind}ForAllNamespaces"),
                description: format!("list or watch objects of kind {kind}"),
                action: "list",
                gvk: gvk.clone(),
                params: Vec::new(),
                body: None,
                responses: vec![ok(&list_definition), unauthorized()],
                produces: Produces::List,
            }],
        });
    }

    // Watches (deprecated paths upstream still publishes for built-ins, not for CRDs).
    if r.has_verb("watch") && r.custom.is_none() {
        let watch_prefix = if r.namespaced {
            format!("{gv_prefix}/watch/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{gv_prefix}/watch/{}", r.plural)
        };
        let watch = |path: String, id: String, action: &'static str, extra: Vec<Param>| {
            let mut params = list_params();
            params.extend(extra);
            params.push(pretty());
            params.sort_by_key(|p| (p.location == In::Query, p.name));
            PathItem {
                path,
                params,
                operations: vec![Operation {
                    method: "get",
                    id,
                    description: format!("watch changes to {kind}"),
                    action,
                    gvk: gvk.clone(),
                    params: Vec::new(),
                    body: None,
                    responses: vec![ok(WATCH_EVENT), unauthorized()],
                    produces: Produces::Watch,
                }],
            }
        };
        out.push(watch(
            watch_prefix.clone(),
            format!("watch{g}{v}{ns}{kind}List"),
            "watchlist",
            scope_params.clone(),
        ));
        let mut item_scope = vec![name_param.clone()];
        item_scope.extend(scope_params.clone());
        out.push(watch(
            format!("{watch_prefix}/{{name}}"),
            format!("watch{g}{v}{ns}{kind}"),
            "watch",
            item_scope,
        ));
        if r.namespaced {
            out.push(watch(
                format!("{gv_prefix}/watch/{}", r.plural),
                format!("watch{g}{v}{kind}ListForAllNamespaces"),
                "watchlist",
                Vec::new(),
            ));
        }
    }

    for sub in &r.subresources {
        out.extend(subresource_paths(catalog, r, sub, &item, &scope_params));
    }
    if r.custom.is_some() {
        for op in out.iter_mut().flat_map(|item| item.operations.iter_mut()) {
            op.produces = Produces::Custom;
            if let Some(body) = &mut op.body {
                body.kind = match body.kind {
                    BodyKind::Patch => BodyKind::CustomPatch,
                    _ => BodyKind::CustomObject,
                };
            }
        }
    }
    out
}

fn replace_op(
    id: String,
    description: String,
    gvk: &Option<(String, String, String)>,
    definition: &str,
) -> Operation {
    Operation {
        method: "put",
        id,
        description,
        action: "put",
        gvk: gvk.clone(),
        params: write_params(),
        body: Some(Body {
            kind: BodyKind::Any,
            definition: definition.to_string(),
            required: true,
        }),
        responses: vec![ok(definition), created(definition), unauthorized()],
        produces: Produces::Object,
    }
}

fn patch_op(
    id: String,
    description: String,
    gvk: &Option<(String, String, String)>,
    definition: &str,
) -> Operation {
    let mut params = write_params();
    params.push(force());
    Operation {
        method: "patch",
        id,
        description,
        action: "patch",
        gvk: gvk.clone(),
        params,
        body: Some(Body {
            kind: BodyKind::Patch,
            definition: PATCH.into(),
            required: true,
        }),
        responses: vec![ok(definition), created(definition), unauthorized()],
        produces: Produces::Object,
    }
}

/// The definition name of a subresource's kind (`Scale` → `io.k8s.api.autoscaling.v1.Scale`).
fn subresource_definition(
    catalog: &Catalog,
    parent: &ResourceInfo,
    sub: &SubresourceInfo,
) -> String {
    if sub.kind == parent.kind && sub.group == parent.group && sub.version == parent.version {
        return parent.definition.clone();
    }
    catalog
        .definition_for_kind(&sub.group, &sub.version, &sub.kind)
        .unwrap_or_default()
        .to_string()
}

fn subresource_paths(
    catalog: &Catalog,
    r: &ResourceInfo,
    sub: &SubresourceInfo,
    item: &str,
    scope_params: &[Param],
) -> Vec<PathItem> {
    let g = group_id(&r.group);
    let v = upper_first(&r.version);
    let ns = if r.namespaced { "Namespaced" } else { "" };
    let kind = &r.kind;
    let sub_id = upper_first(&sub.name);
    let path = format!("{item}/{}", sub.name);
    let gvk = Some((sub.group.clone(), sub.version.clone(), sub.kind.clone()));
    let definition = subresource_definition(catalog, r, sub);
    let has = |verb: &str| sub.verbs.iter().any(|v| v == verb);
    let mut path_params = vec![path_param("name", format!("name of the {}", sub.kind))];
    path_params.extend(scope_params.iter().cloned());

    let mut ops = Vec::new();
    let connect = matches!(
        sub.name.as_str(),
        "exec" | "attach" | "portforward" | "proxy"
    );
    if connect {
        let extra: Vec<Param> = match sub.name.as_str() {
            "exec" => vec![
                query(
                    "command",
                    "string",
                    "Command is the remote command to execute.",
                ),
                query(
                    "container",
                    "string",
                    "Container in which to execute the command.",
                ),
                query(
                    "stderr",
                    "boolean",
                    "Redirect the standard error stream of the pod for this call.",
                ),
                query(
                    "stdin",
                    "boolean",
                    "Redirect the standard input stream of the pod for this call.",
                ),
                query(
                    "stdout",
                    "boolean",
                    "Redirect the standard output stream of the pod for this call.",
                ),
                query(
                    "tty",
                    "boolean",
                    "TTY if true indicates that a tty will be allocated for the exec call.",
                ),
            ],
            "attach" => vec![
                query(
                    "container",
                    "string",
                    "The container in which to execute the command.",
                ),
                query(
                    "stderr",
                    "boolean",
                    "Stderr if true indicates that stderr is to be redirected for the attach call.",
                ),
                query(
                    "stdin",
                    "boolean",
                    "Stdin if true, redirects the standard input stream of the pod for this call.",
                ),
                query(
                    "stdout",
                    "boolean",
                    "Stdout if true indicates that stdout is to be redirected for the attach call.",
                ),
                query(
                    "tty",
                    "boolean",
                    "TTY if true indicates that a tty will be allocated for the attach call.",
                ),
            ],
            "portforward" => vec![query("ports", "integer", "List of ports to forward.")],
            _ => vec![query(
                "path",
                "string",
                "Path is the URL path to use for the current proxy request.",
            )],
        };
        for verb in ["get", "post", "put", "patch", "delete", "head", "options"] {
            let allowed = match verb {
                "get" => has("get"),
                "post" => has("create"),
                "put" | "patch" => has("update") || has("patch"),
                "delete" => has("delete"),
                _ => sub.name == "proxy",
            };
            if !allowed {
                continue;
            }
            ops.push(Operation {
                method: match verb {
                    "get" => "get",
                    "post" => "post",
                    "put" => "put",
                    "patch" => "patch",
                    "delete" => "delete",
                    "head" => "head",
                    _ => "options",
                },
                id: format!("connect{g}{v}{}{ns}{kind}{sub_id}", upper_first(verb)),
                description: format!(
                    "connect {} requests to {} of {kind}",
                    verb.to_uppercase(),
                    sub.name
                ),
                action: "connect",
                gvk: gvk.clone(),
                params: Vec::new(),
                body: None,
                responses: vec![text_ok(), unauthorized()],
                produces: Produces::Connect,
            });
        }
        let mut params = path_params.clone();
        params.extend(extra);
        let mut items = vec![PathItem {
            path: path.clone(),
            params,
            operations: ops.clone(),
        }];
        if sub.name == "proxy" {
            let mut params = path_params.clone();
            params.push(path_param("path", "path to the resource"));
            let with_path: Vec<Operation> = ops
                .into_iter()
                .map(|mut op| {
                    op.id.push_str("WithPath");
                    op
                })
                .collect();
            items.push(PathItem {
                path: format!("{path}/{{path}}"),
                params,
                operations: with_path,
            });
        }
        return items;
    }

    if sub.name == "log" {
        let mut params = path_params.clone();
        params.extend([
            query(
                "container",
                "string",
                "The container for which to stream logs.",
            ),
            query("follow", "boolean", "Follow the log stream of the pod."),
            query(
                "insecureSkipTLSVerifyBackend",
                "boolean",
                "Do not verify the serving certificate of the backend.",
            ),
            query(
                "limitBytes",
                "integer",
                "The number of bytes to read from the server before terminating the log output.",
            ),
            pretty(),
            query(
                "previous",
                "boolean",
                "Return previous terminated container logs.",
            ),
            query(
                "sinceSeconds",
                "integer",
                "A relative time in seconds before the current time from which to show logs.",
            ),
            query(
                "stream",
                "string",
                "Specify which container log stream to return to the client.",
            ),
            query(
                "tailLines",
                "integer",
                "The number of lines from the end of the logs to show.",
            ),
            query(
                "timestamps",
                "boolean",
                "If true, add an RFC3339 timestamp at the beginning of every line of log output.",
            ),
        ]);
        return vec![PathItem {
            path,
            params,
            operations: vec![Operation {
                method: "get",
                id: format!("read{g}{v}{ns}{kind}Log"),
                description: format!("read log of the specified {kind}"),
                action: "get",
                gvk,
                params: Vec::new(),
                body: None,
                responses: vec![text_ok(), unauthorized()],
                produces: Produces::Text,
            }],
        }];
    }

    if definition.is_empty() {
        return Vec::new();
    }
    if has("get") {
        ops.push(Operation {
            method: "get",
            id: format!("read{g}{v}{ns}{kind}{sub_id}"),
            description: format!("read {} of the specified {kind}", sub.name),
            action: "get",
            gvk: gvk.clone(),
            params: Vec::new(),
            body: None,
            responses: vec![ok(&definition), unauthorized()],
            produces: Produces::Object,
        });
    }
    if has("update") {
        ops.push(replace_op(
            format!("replace{g}{v}{ns}{kind}{sub_id}"),
            format!("replace {} of the specified {kind}", sub.name),
            &gvk,
            &definition,
        ));
    }
    if has("patch") {
        ops.push(patch_op(
            format!("patch{g}{v}{ns}{kind}{sub_id}"),
            format!("partially update {} of the specified {kind}", sub.name),
            &gvk,
            &definition,
        ));
    }
    if has("create") {
        ops.push(Operation {
            method: "post",
            id: format!("create{g}{v}{ns}{kind}{sub_id}"),
            description: format!("create {} of a {kind}", sub.name),
            action: "post",
            gvk: gvk.clone(),
            params: write_params(),
            body: Some(Body {
                kind: BodyKind::Any,
                definition: definition.clone(),
                required: true,
            }),
            responses: vec![
                ok(&definition),
                created(&definition),
                accepted(&definition),
                unauthorized(),
            ],
            produces: Produces::Object,
        });
    }
    let mut params = path_params;
    params.push(pretty());
    vec![PathItem {
        path,
        params,
        operations: ops,
    }]
}

/// Media types of responses, per shape.
fn produces(p: Produces) -> &'static [&'static str] {
    match p {
        Produces::Object => &[
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf",
        ],
        Produces::List | Produces::Watch => &[
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf",
            "application/json;stream=watch",
            "application/vnd.kubernetes.protobuf;stream=watch",
        ],
        Produces::Text => &[
            "text/plain",
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf",
        ],
        Produces::Connect => &["*/*"],
        Produces::Custom => &["application/json", "application/yaml"],
    }
}

fn consumes(kind: BodyKind) -> &'static [&'static str] {
    match kind {
        BodyKind::Any => &["*/*"],
        BodyKind::Patch => &[
            "application/apply-patch+yaml",
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        ],
        BodyKind::CustomObject => &["application/json", "application/yaml"],
        BodyKind::CustomPatch => &[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ],
    }
}

fn gvk_value(gvk: &(String, String, String)) -> Value {
    json!({"group": gvk.0, "kind": gvk.2, "version": gvk.1})
}

/// OpenAPI v3 `paths` of one group-version.
pub(super) fn render_v3(items: &[PathItem], tag: &str, ref_prefix: &str) -> Value {
    let param_v3 = |p: &Param| {
        let mut o = Map::new();
        o.insert("description".into(), json!(p.description));
        o.insert(
            "in".into(),
            json!(if p.location == In::Path {
                "path"
            } else {
                "query"
            }),
        );
        o.insert("name".into(), json!(p.name));
        if p.location == In::Path {
            o.insert("required".into(), json!(true));
        }
        o.insert("schema".into(), json!({"type": p.ty, "uniqueItems": true}));
        Value::Object(o)
    };
    let mut paths = Map::new();
    for item in items {
        let mut path = Map::new();
        if !item.params.is_empty() {
            path.insert(
                "parameters".into(),
                Value::Array(item.params.iter().map(param_v3).collect()),
            );
        }
        for op in &item.operations {
            let mut o = Map::new();
            o.insert("description".into(), json!(op.description));
            o.insert("operationId".into(), json!(op.id));
            if !op.params.is_empty() {
                o.insert(
                    "parameters".into(),
                    Value::Array(op.params.iter().map(param_v3).collect()),
                );
            }
            if let Some(body) = &op.body {
                let mut content = Map::new();
                for mt in consumes(body.kind) {
                    content.insert(
                        (*mt).into(),
                        json!({"schema": {"$ref": format!("{ref_prefix}{}", body.definition)}}),
                    );
                }
                let mut rb = Map::new();
                rb.insert("content".into(), Value::Object(content));
                if body.required {
                    rb.insert("required".into(), json!(true));
                }
                o.insert("requestBody".into(), Value::Object(rb));
            }
            let mut responses = Map::new();
            for resp in &op.responses {
                let mut r = Map::new();
                if let Some(payload) = &resp.payload {
                    let schema = match payload {
                        Payload::Definition(d) => json!({"$ref": format!("{ref_prefix}{d}")}),
                        Payload::Text => json!({"type": "string"}),
                    };
                    let mut content = Map::new();
                    for mt in produces(op.produces) {
                        content.insert((*mt).into(), json!({ "schema": schema }));
                    }
                    r.insert("content".into(), Value::Object(content));
                }
                r.insert("description".into(), json!(resp.description));
                responses.insert(resp.code.into(), Value::Object(r));
            }
            o.insert("responses".into(), Value::Object(responses));
            o.insert("tags".into(), json!([tag]));
            if !op.action.is_empty() {
                o.insert("x-kubernetes-action".into(), json!(op.action));
            }
            if let Some(gvk) = &op.gvk {
                o.insert("x-kubernetes-group-version-kind".into(), gvk_value(gvk));
            }
            path.insert(op.method.into(), Value::Object(o));
        }
        paths.insert(item.path.clone(), Value::Object(path));
    }
    Value::Object(paths)
}

/// Swagger 2.0 `paths` entries of one group-version, added to `paths`.
pub(super) fn render_v2(items: &[PathItem], tag: &str, paths: &mut Map<String, Value>) {
    let param_v2 = |p: &Param| {
        let mut o = Map::new();
        o.insert("description".into(), json!(p.description));
        o.insert(
            "in".into(),
            json!(if p.location == In::Path {
                "path"
            } else {
                "query"
            }),
        );
        o.insert("name".into(), json!(p.name));
        if p.location == In::Path {
            o.insert("required".into(), json!(true));
        }
        o.insert("type".into(), json!(p.ty));
        o.insert("uniqueItems".into(), json!(true));
        Value::Object(o)
    };
    for item in items {
        let mut path = Map::new();
        if !item.params.is_empty() {
            path.insert(
                "parameters".into(),
                Value::Array(item.params.iter().map(param_v2).collect()),
            );
        }
        for op in &item.operations {
            let mut o = Map::new();
            let mut params: Vec<Value> = Vec::new();
            if let Some(body) = &op.body {
                o.insert("consumes".into(), json!(consumes(body.kind)));
                let mut b = Map::new();
                b.insert("in".into(), json!("body"));
                b.insert("name".into(), json!("body"));
                if body.required {
                    b.insert("required".into(), json!(true));
                }
                b.insert(
                    "schema".into(),
                    json!({"$ref": format!("#/definitions/{}", body.definition)}),
                );
                params.push(Value::Object(b));
            } else {
                o.insert("consumes".into(), json!(["*/*"]));
            }
            params.extend(op.params.iter().map(param_v2));
            o.insert("description".into(), json!(op.description));
            o.insert("operationId".into(), json!(op.id));
            if !params.is_empty() {
                o.insert("parameters".into(), Value::Array(params));
            }
            o.insert("produces".into(), json!(produces(op.produces)));
            let mut responses = Map::new();
            for resp in &op.responses {
                let mut r = Map::new();
                r.insert("description".into(), json!(resp.description));
                match &resp.payload {
                    Some(Payload::Definition(d)) => {
                        r.insert(
                            "schema".into(),
                            json!({"$ref": format!("#/definitions/{d}")}),
                        );
                    }
                    Some(Payload::Text) => {
                        r.insert("schema".into(), json!({"type": "string"}));
                    }
                    None => {}
                }
                responses.insert(resp.code.into(), Value::Object(r));
            }
            o.insert("responses".into(), Value::Object(responses));
            o.insert("schemes".into(), json!(["https"]));
            o.insert("tags".into(), json!([tag]));
            if !op.action.is_empty() {
                o.insert("x-kubernetes-action".into(), json!(op.action));
            }
            if let Some(gvk) = &op.gvk {
                o.insert("x-kubernetes-group-version-kind".into(), gvk_value(gvk));
            }
            path.insert(op.method.into(), Value::Object(o));
        }
        paths.insert(item.path.clone(), Value::Object(path));
    }
}

/// Definition names an operation refers to (bodies and responses).
pub(super) fn referenced_definitions(items: &[PathItem]) -> Vec<String> {
    let mut out = Vec::new();
    for item in items {
        for op in &item.operations {
            if let Some(body) = &op.body {
                out.push(body.definition.clone());
            }
            for resp in &op.responses {
                if let Some(Payload::Definition(d)) = &resp.payload {
                    out.push(d.clone());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
