//! The resource verbs over HTTP: get, list, create, update, patch, delete,
//! deletecollection (watch lives in `watch`), and the `/status` and `/scale` subresources.

// ApiError carries a full Status (message, subject, causes); it is the crate-wide error type.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

use beemesh_translator::selector::{FieldSelector, LabelSelector};
use beemesh_translator::service::{Part, WriteOptions};
use beemesh_translator::store::{ListRequest, Preconditions, ReadAt, parse_stored};
use beemesh_translator::validation::FieldValidation;
use beemesh_translator::{ApiError, ResourceInfo};

use crate::auth::UserInfo;
use crate::negotiate::{self, IncludeObject, Output};
use crate::patch::apply::{self, FieldManager};
use crate::patch::{self, PatchType};
use crate::patch_validation;
use crate::request::{Query, ResourceTarget};
use crate::reviews;
use crate::state::AppState;
use crate::{table, watch};

type Result<T> = std::result::Result<T, ApiError>;

/// Entry point for every request that addresses a resource.
pub async fn handle(
    state: AppState,
    user: &UserInfo,
    method: Method,
    target: ResourceTarget,
    query: Query,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let res = target.resource.clone();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // Who the write's fields belong to (managedFields).
    let manager = apply::manager_name(
        query.get("fieldManager"),
        headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    );
    let verb_allowed = |verb: &str| {
        if res.has_verb(verb) {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({verb} {})",
                res.group_resource()
            )))
        }
    };
    // Across all namespaces a namespaced resource can only be listed and watched (upstream
    // installs no other verb there): a DELETE must not empty every namespace at once.
    if res.namespaced && target.namespace.is_none() && method != Method::GET {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {} across all namespaces)",
            res.group_resource()
        )));
    }
    match (
        &method,
        target.name.as_deref(),
        target.subresource.as_deref(),
    ) {
        (&Method::GET, None, None) => {
            if query.flag("watch") {
                verb_allowed("watch")?;
                let output = negotiate::negotiate(accept, true)?;
                return watch::serve(state, &target, &query, output);
            }
            verb_allowed("list")?;
            let output = negotiate::negotiate(accept, true)?;
            list(&state, &target, &query, output)
        }
        (&Method::POST, None, None) if reviews::is_review(&res) => {
            let output = negotiate::negotiate(accept, false)?;
            let (obj, warnings) = decode_write_body(&state, &res, &query, content_type, &body)?;
            let answer = reviews::review(&state, &res, target.namespace.as_deref(), user, obj)?;
            render_object(
                &res,
                StatusCode::CREATED,
                &answer,
                output,
                &query,
                &warnings,
            )
        }
        (&Method::POST, name, sub @ (Some("binding") | None))
            if res.group.is_empty()
                && ((res.plural == "pods" && sub.is_some() && name.is_some())
                    || (res.plural == "bindings" && name.is_none() && sub.is_none())) =>
        {
            let output = negotiate::negotiate(accept, false)?;
            bind(&state, &target, name, &query, content_type, &body, output).await
        }
        (&Method::POST, None, None) => {
            verb_allowed("create")?;
            let output = negotiate::negotiate(accept, false)?;
            create(
                &state,
                &target,
                &query,
                content_type,
                &body,
                output,
                manager,
            )
            .await
        }
        (&Method::POST, Some(name), Some("token")) => {
            let output = negotiate::negotiate(accept, false)?;
            let token_res = reviews::token_request_resource(&res);
            let (obj, warnings) =
                decode_write_body(&state, &token_res, &query, content_type, &body)?;
            let namespace = target.namespace.as_deref().unwrap_or_default();
            let answer = reviews::token_request(&state, &res, namespace, name, obj)?;
            render_object(
                &token_res,
                StatusCode::CREATED,
                &answer,
                output,
                &query,
                &warnings,
            )
        }
        (&Method::DELETE, None, None) => {
            verb_allowed("deletecollection")?;
            let output = negotiate::negotiate(accept, false)?;
            delete_collection(&state, &target, &query, &body, output).await
        }
        (&Method::GET, Some(name), None) => {
            verb_allowed("get")?;
            let output = negotiate::negotiate(accept, true)?;
            check_get_resource_version(&state, &query)?;
            let obj = state
                .service
                .store
                .get(&res, target.namespace.as_deref(), name)?;
            render_object(&res, StatusCode::OK, &obj, output, &query, &[])
        }
        (&Method::GET, Some(name), Some("status")) => {
            let output = negotiate::negotiate(accept, true)?;
            check_get_resource_version(&state, &query)?;
            let obj = state
                .service
                .store
                .get(&res, target.namespace.as_deref(), name)?;
            render_object(&res, StatusCode::OK, &obj, output, &query, &[])
        }
        (&Method::PUT, Some(name), sub @ (None | Some("status") | Some("finalize"))) => {
            verb_allowed("update")?;
            let output = negotiate::negotiate(accept, false)?;
            let part = Part::of(sub);
            update(
                &state,
                &target,
                (name, sub),
                part,
                &query,
                content_type,
                &body,
                output,
                manager,
            )
            .await
        }
        (&Method::PATCH, Some(name), sub @ (None | Some("status"))) => {
            verb_allowed("patch")?;
            let output = negotiate::negotiate(accept, false)?;
            let part = Part::of(sub);
            patch(
                &state,
                &target,
                name,
                part,
                &query,
                content_type,
                &body,
                output,
                manager,
            )
            .await
        }
        (&Method::DELETE, Some(name), None) => {
            verb_allowed("delete")?;
            let output = negotiate::negotiate(accept, false)?;
            delete(&state, &target, name, &query, &body, output).await
        }
        (_, Some(name), Some("scale")) => {
            scale(
                &state,
                &target,
                name,
                &method,
                &query,
                content_type,
                &body,
                accept,
                manager,
            )
            .await
        }
        (_, _, Some(sub)) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {}/{sub})",
            method,
            res.group_resource()
        ))),
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {})",
            res.group_resource()
        ))),
    }
}

/// `POST pods/<name>/binding` (or `bindings` with the name in the body): sets the pod's
/// `spec.nodeName` once (`beemesh_translator::binding`); 201 with a success Status as
/// upstream, 409 when the pod is already bound.
async fn bind(
    state: &AppState,
    target: &ResourceTarget,
    pod_name: Option<&str>,
    query: &Query,
    content_type: Option<&str>,
    body: &[u8],
    output: Output,
) -> Result<Response> {
    let registry = &state.service.registry;
    let (Some(bindings), Some(pods)) = (
        registry.get("", "v1", "bindings"),
        registry.get("", "v1", "pods"),
    ) else {
        return Err(ApiError::internal("pods are not served"));
    };
    let (obj, warnings) = decode_write_body(state, &bindings, query, content_type, body)?;
    let name = match pod_name {
        Some(n) => n.to_string(),
        None => obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    };
    let node = beemesh_translator::binding::target_node(&obj, &name)?;
    if query.dry_run("CreateOptions")? {
        state
            .service
            .store
            .get(&pods, target.namespace.as_deref(), &name)?;
    } else {
        let meta = |f: &str| {
            obj.pointer(&format!("/metadata/{f}"))
                .and_then(Value::as_str)
        };
        beemesh_translator::binding::bind(
            &state.service,
            &pods,
            target.namespace.as_deref().unwrap_or_default(),
            &name,
            &node,
            obj.pointer("/metadata/annotations")
                .and_then(Value::as_object),
            meta("uid"),
            meta("resourceVersion"),
        )
        .await?;
    }
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Success", "code": 201});
    render_object(
        &bindings,
        StatusCode::CREATED,
        &status,
        output,
        query,
        &warnings,
    )
}

/// `dryRun` and `fieldValidation`; `options_kind` names the options in errors
/// (`CreateOptions`, `UpdateOptions`, `PatchOptions`).
fn write_options(query: &Query, options_kind: &str) -> Result<WriteOptions> {
    let field_validation =
        FieldValidation::from_query(query.get("fieldValidation").unwrap_or(""), options_kind)?;
    Ok(WriteOptions {
        dry_run: query.dry_run(options_kind)?,
        field_validation,
    })
}

/// A create body of a kind that is answered, not stored: decoded, its apiVersion/kind
/// checked, and decoded against its schema under the request's `fieldValidation`.
fn decode_write_body(
    state: &AppState,
    res: &ResourceInfo,
    query: &Query,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(Value, Vec<String>)> {
    let mut obj = negotiate::decode_body(content_type, body)?;
    check_type(res, &mut obj)?;
    let opts = write_options(query, "CreateOptions")?;
    let mut warnings = duplicate_field_warnings(state, res, content_type, body, &opts)?;
    warnings.extend(beemesh_translator::validation::validate_and_prune(
        res,
        state.service.catalog,
        &mut obj,
        opts.field_validation,
    )?);
    Ok((obj, in_body_order(content_type, body, warnings)))
}

/// Checks the body's apiVersion/kind against the resource (missing ones are filled in,
/// as upstream's decoder does for typed clients that omit them).
fn check_type(res: &ResourceInfo, obj: &mut Value) -> Result<()> {
    let api_version = res.api_version();
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request("the request body must be an object"));
    };
    for field in ["apiVersion", "kind"] {
        if let Some(v) = map.get(field).filter(|v| !v.is_string() && !v.is_null()) {
            // Upstream reads apiVersion/kind first and fails with the Go decoder's words.
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go struct field .{field} of type string",
                res.kind,
                json_type_name(v)
            )));
        }
    }
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), json!(api_version));
        }
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(res.kind));
        }
        Some(k) if k == res.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({}) for {}",
                res.kind,
                res.group_resource()
            )));
        }
    }
    Ok(())
}

/// The Go decoder's name for a JSON value's type.
fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn json_bytes(value: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| ApiError::internal(e.to_string()))
}

/// Builds a response with the right Content-Type and `Warning` headers.
pub fn respond(
    status: StatusCode,
    output: Output,
    body: Vec<u8>,
    warnings: &[String],
) -> Result<Response> {
    let content_type = match output {
        Output::Json => "application/json",
        Output::Yaml => "application/yaml",
        Output::Table { beta: false } => "application/json;as=Table;v=v1;g=meta.k8s.io",
        Output::Table { beta: true } => "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
        Output::PartialMetadata { beta: false, .. } => {
            "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
        }
        Output::PartialMetadata { beta: true, .. } => {
            "application/json;as=PartialObjectMetadata;v=v1beta1;g=meta.k8s.io"
        }
    };
    let body = if output == Output::Yaml {
        let value: Value =
            serde_json::from_slice(&body).map_err(|e| ApiError::internal(e.to_string()))?;
        serde_yaml::to_string(&value)
            .map_err(|e| ApiError::internal(e.to_string()))?
            .into_bytes()
    } else {
        body
    };
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type);
    for w in warnings {
        // Upstream's quoted-string: `"` and `\` escaped with a backslash.
        let text = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            builder = builder.header(header::WARNING, v);
        }
    }
    builder
        .body(Body::from(body))
        .map_err(|e| ApiError::internal(e.to_string()))
}

fn include_object(query: &Query) -> Result<IncludeObject> {
    match query.get("includeObject") {
        None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
        Some("None") => Ok(IncludeObject::None),
        Some("Object") => Ok(IncludeObject::Object),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid includeObject value {other:?}: must be None, Metadata or Object"
        ))),
    }
}

/// Upstream's 406 when the PartialObjectMetadata kind asked for does not fit the answer
/// (`asPartialObjectMetadata(List)` in handlers/response.go); the Go type is the
/// internal one the handler holds.
fn partial_metadata_mismatch(res: &ResourceInfo, is_list: bool) -> ApiError {
    let package = match res.group.split('.').next() {
        Some("") | None => "core",
        Some("events") => "core",
        Some(first) => first,
    };
    let go_type = if res.custom.is_some() {
        format!(
            "*unstructured.Unstructured{}",
            if is_list { "List" } else { "" }
        )
    } else if is_list {
        format!("*{package}.{}", res.list_kind)
    } else {
        format!("*{package}.{}", res.kind)
    };
    ApiError::not_acceptable(if is_list {
        format!(
            "you requested PartialObjectMetadata, but the requested object is a list ({go_type})"
        )
    } else {
        format!(
            "you requested PartialObjectMetadataList, but the requested object is not a list ({go_type})"
        )
    })
}

/// The `metadata` of an object as PartialObjectMetadata.
pub fn partial_metadata(obj: &Value, beta: bool) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": if beta { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" },
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn render_object(
    res: &ResourceInfo,
    status: StatusCode,
    obj: &Value,
    output: Output,
    query: &Query,
    warnings: &[String],
) -> Result<Response> {
    let body = match output {
        Output::Json | Output::Yaml => json_bytes(obj)?,
        Output::Table { beta } => {
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let mut t = table::table(
                res,
                std::slice::from_ref(obj),
                include_object(query)?,
                &rv,
                None,
                None,
                chrono::Utc::now(),
            );
            if beta {
                t["apiVersion"] = json!("meta.k8s.io/v1beta1");
            }
            json_bytes(&t)?
        }
        Output::PartialMetadata { list: true, .. } => {
            return Err(partial_metadata_mismatch(res, false));
        }
        Output::PartialMetadata { beta, .. } => json_bytes(&partial_metadata(obj, beta))?,
    };
    respond(status, output, body, warnings)
}

/// Parses the selectors of a list or watch into one predicate.
pub struct Filter {
    label: Option<LabelSelector>,
    field: Option<FieldSelector>,
}

impl Filter {
    pub fn from_query(res: &ResourceInfo, query: &Query) -> Result<Filter> {
        let label = match query.get("labelSelector") {
            Some(s) if !s.trim().is_empty() => Some(LabelSelector::parse(s)?),
            _ => None,
        };
        let field = match query.get("fieldSelector") {
            Some(s) if !s.trim().is_empty() => Some(match &res.custom {
                // Custom resources: metadata and the CRD version's selectableFields.
                Some(custom) => {
                    FieldSelector::parse_custom(s, res.namespaced, &custom.selectable_fields)?
                }
                None => FieldSelector::parse(s, res)?,
            }),
            _ => None,
        };
        Ok(Filter { label, field })
    }

    pub fn is_empty(&self) -> bool {
        self.label.is_none() && self.field.is_none()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(l) = &self.label
            && !l.matches(obj.pointer("/metadata/labels").unwrap_or(&Value::Null))
        {
            return false;
        }
        if let Some(f) = &self.field
            && !f.matches(obj)
        {
            return false;
        }
        true
    }
}

/// A GET's `resourceVersion`: ""/"0" any, N at least N (served from the latest state,
/// which is always at least as new as anything this node issued).
fn check_get_resource_version(state: &AppState, query: &Query) -> Result<()> {
    match query.get("resourceVersion").unwrap_or("") {
        "" | "0" => Ok(()),
        rv => {
            let wanted = beemesh_translator::store::parse_resource_version(rv)?;
            let current = state.service.store.revision();
            if wanted > current {
                return Err(ApiError::Timeout {
                    message: format!(
                        "Timeout: Too large resource version: {wanted}, current: {current}"
                    ),
                });
            }
            Ok(())
        }
    }
}

/// Upstream's `ValidateListOptions` (list and watch): a 422 on `ListOptions.meta.k8s.io`
/// listing every problem.
pub fn validate_list_options(query: &Query, watch: bool) -> Result<()> {
    use beemesh_translator::validation::field;
    let rv = query.get("resourceVersion").unwrap_or("");
    let matching = query.get("resourceVersionMatch").unwrap_or("");
    let send_initial = query.get("sendInitialEvents").is_some();
    let continue_token = query.get("continue").unwrap_or("");
    let mut causes = Vec::new();
    if watch {
        if send_initial && matching != "NotOlderThan" {
            causes.push(field::forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !matching.is_empty() {
            if !send_initial {
                causes.push(field::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            if matching != "NotOlderThan" {
                causes.push(field::not_supported(
                    "resourceVersionMatch",
                    &json!(matching),
                    &["NotOlderThan"],
                ));
            }
            if !continue_token.is_empty() {
                causes.push(field::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
        }
    } else {
        if !matching.is_empty() {
            if rv.is_empty() {
                causes.push(field::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if !continue_token.is_empty() {
                causes.push(field::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if matching != "Exact" && matching != "NotOlderThan" {
                causes.push(field::not_supported(
                    "resourceVersionMatch",
                    &json!(matching),
                    &["Exact", "NotOlderThan", ""],
                ));
            }
            if matching == "Exact" && rv == "0" {
                causes.push(field::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if send_initial {
            causes.push(field::forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for list",
            ));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("meta.k8s.io", "ListOptions", "", causes))
    }
}

/// Reads `resourceVersion` + `resourceVersionMatch` of a list (already validated).
fn read_at(query: &Query) -> Result<ReadAt> {
    let rv = query.get("resourceVersion").unwrap_or("");
    let parse = |rv: &str| beemesh_translator::store::parse_resource_version(rv);
    match (rv, query.get("resourceVersionMatch").unwrap_or("")) {
        ("", _) => Ok(ReadAt::Latest),
        (rv, "Exact") => Ok(ReadAt::Exact(parse(rv)?)),
        (rv, _) => Ok(ReadAt::NotOlderThan(parse(rv)?)),
    }
}

fn list(
    state: &AppState,
    target: &ResourceTarget,
    query: &Query,
    output: Output,
) -> Result<Response> {
    let res = &target.resource;
    validate_list_options(query, false)?;
    let filter = Filter::from_query(res, query)?;
    // A limit of zero or less means none, as upstream.
    let limit = query
        .int("limit")?
        .and_then(|l| usize::try_from(l).ok())
        .filter(|l| *l > 0);
    let continue_token = query.get("continue").filter(|c| !c.is_empty());
    let mut read_at = read_at(query)?;
    if continue_token.is_some()
        && query
            .get("resourceVersion")
            .is_some_and(|rv| !rv.is_empty() && rv != "0")
    {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    if read_at == ReadAt::NotOlderThan(0) {
        read_at = ReadAt::Latest;
    }
    let predicate = |obj: &Value| filter.matches(obj);
    let req = ListRequest {
        namespace: target.namespace.as_deref(),
        read_at,
        limit,
        continue_token,
        filter: if filter.is_empty() {
            None
        } else {
            Some(&predicate)
        },
    };
    let page = state.service.store.list(res, &req)?;
    let rv = page.revision.to_string();
    let body = match output {
        Output::Json | Output::Yaml => {
            let mut meta = json!({"resourceVersion": rv});
            if let Some(c) = &page.continue_token {
                meta["continue"] = json!(c);
            }
            if let Some(r) = page.remaining {
                meta["remainingItemCount"] = json!(r);
            }
            let head = json!({
                "kind": res.list_kind,
                "apiVersion": res.api_version(),
                "metadata": meta,
            });
            let mut out = json_bytes(&head)?;
            // Splice the stored items in without re-encoding them.
            out.pop();
            out.extend_from_slice(b",\"items\":[");
            for (i, item) in page.items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(item);
            }
            out.extend_from_slice(b"]}");
            out
        }
        Output::Table { beta } => {
            let objects = page
                .items
                .iter()
                .map(|b| parse_stored(b))
                .collect::<Result<Vec<_>>>()?;
            let mut t = table::table(
                res,
                &objects,
                include_object(query)?,
                &rv,
                page.continue_token.as_deref(),
                page.remaining,
                chrono::Utc::now(),
            );
            if beta {
                t["apiVersion"] = json!("meta.k8s.io/v1beta1");
            }
            json_bytes(&t)?
        }
        Output::PartialMetadata { list: false, .. } => {
            return Err(partial_metadata_mismatch(res, true));
        }
        Output::PartialMetadata { beta, .. } => {
            let items = page
                .items
                .iter()
                .map(|b| parse_stored(b).map(|o| partial_metadata(&o, beta)))
                .collect::<Result<Vec<_>>>()?;
            let mut meta = json!({"resourceVersion": rv});
            if let Some(c) = &page.continue_token {
                meta["continue"] = json!(c);
            }
            if let Some(r) = page.remaining {
                meta["remainingItemCount"] = json!(r);
            }
            json_bytes(&json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": if beta { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" },
                "metadata": meta,
                "items": items,
            }))?
        }
    };
    respond(StatusCode::OK, output, body, &[])
}

async fn create(
    state: &AppState,
    target: &ResourceTarget,
    query: &Query,
    content_type: Option<&str>,
    body: &[u8],
    output: Output,
    manager: String,
) -> Result<Response> {
    let res = &target.resource;
    let mut obj = negotiate::decode_body(content_type, body)?;
    check_type(res, &mut obj)?;
    let opts = write_options(query, "CreateOptions")?;
    apply::validate_field_manager(query.get("fieldManager"), "CreateOptions", false)?;
    let mut warnings = duplicate_field_warnings(state, res, content_type, body, &opts)?;
    let fields = FieldManager::new(res, state.service.catalog, None, manager);
    record_update(res, &fields, None, &mut obj);
    let written = state
        .service
        .create(res, target.namespace.as_deref(), obj, &opts)
        .await?;
    warnings.extend(written.warnings);
    let warnings = in_body_order(content_type, body, warnings);
    render_object(
        res,
        StatusCode::CREATED,
        &written.object,
        output,
        query,
        &warnings,
    )
}

#[allow(clippy::too_many_arguments)]
async fn update(
    state: &AppState,
    target: &ResourceTarget,
    (name, subresource): (&str, Option<&str>),
    part: Part,
    query: &Query,
    content_type: Option<&str>,
    body: &[u8],
    output: Output,
    manager: String,
) -> Result<Response> {
    let res = &target.resource;
    let mut obj = negotiate::decode_body(content_type, body)?;
    check_type(res, &mut obj)?;
    let opts = write_options(query, "UpdateOptions")?;
    apply::validate_field_manager(query.get("fieldManager"), "UpdateOptions", false)?;
    let mut warnings = duplicate_field_warnings(state, res, content_type, body, &opts)?;
    let fields = FieldManager::new(res, state.service.catalog, subresource, manager);
    let written = state
        .service
        .update(
            res,
            target.namespace.as_deref(),
            name,
            part,
            &opts,
            |current| {
                let mut new = obj.clone();
                record_update(res, &fields, Some(current), &mut new);
                Ok(new)
            },
        )
        .await?;
    warnings.extend(written.warnings);
    let warnings = in_body_order(content_type, body, warnings);
    render_object(
        res,
        StatusCode::OK,
        &written.object,
        output,
        query,
        &warnings,
    )
}

#[allow(clippy::too_many_arguments)]
async fn patch(
    state: &AppState,
    target: &ResourceTarget,
    name: &str,
    part: Part,
    query: &Query,
    content_type: Option<&str>,
    body: &[u8],
    output: Output,
    manager: String,
) -> Result<Response> {
    let res = &target.resource;
    if body.len() > negotiate::MAX_BODY_BYTES {
        return Err(negotiate::too_large());
    }
    let patch_type = PatchType::from_content_type(content_type.unwrap_or(""))?;
    check_patch_options(query, patch_type)?;
    let opts = write_options(query, "PatchOptions")?;
    let catalog = state.service.catalog;
    let subresource = (part == Part::Status).then_some("status");
    let fields = FieldManager::new(res, catalog, subresource, manager);
    if patch_type == PatchType::Apply {
        return server_side_apply(
            state, target, name, part, query, body, output, &fields, &opts,
        )
        .await;
    }
    let schema = catalog.schema(&res.definition);
    // Unknown and duplicate fields are judged on the patch and its result here (upstream's
    // 422 on `patch`), so the service only prunes.
    let body_errors = patch_validation::body_errors(patch_type, body, opts.field_validation);
    let mut field_warnings = Vec::new();
    let service_opts = WriteOptions {
        field_validation: FieldValidation::Ignore,
        ..opts
    };
    let written = state
        .service
        .update(
            res,
            target.namespace.as_deref(),
            name,
            part,
            &service_opts,
            |current| {
                let mut patched = patch::apply_patch(schema, catalog, current, patch_type, body)?;
                // A patch may not move the object or change its type or identity.
                check_type(res, &mut patched)?;
                check_uid_unchanged(res, name, current, &patched)?;
                field_warnings = patch_validation::check_patched(
                    res,
                    catalog,
                    patch_type,
                    body,
                    &patched,
                    opts.field_validation,
                    &body_errors,
                )?;
                record_update(res, &fields, Some(current), &mut patched);
                // The resourceVersion the patch inherited from the stored object is no
                // precondition: upstream retries such a patch on a concurrent write (a
                // controller's status update) instead of answering 409. One the patch
                // itself set still pins it (on a retry it differs from the new current).
                if patched.pointer("/metadata/resourceVersion")
                    == current.pointer("/metadata/resourceVersion")
                    && let Some(meta) = patched.get_mut("metadata").and_then(Value::as_object_mut)
                {
                    meta.remove("resourceVersion");
                }
                Ok(patched)
            },
        )
        .await?;
    field_warnings.extend(written.warnings);
    render_object(
        res,
        StatusCode::OK,
        &written.object,
        output,
        query,
        &field_warnings,
    )
}

/// A patch that changes `metadata.uid` fails upstream's ObjectMeta update validation.
fn check_uid_unchanged(
    res: &ResourceInfo,
    name: &str,
    current: &Value,
    patched: &Value,
) -> Result<()> {
    let old = current.pointer("/metadata/uid");
    let new = patched.pointer("/metadata/uid");
    if new.is_none_or(Value::is_null) || new == old {
        return Ok(());
    }
    Err(ApiError::invalid(
        &res.group,
        &res.kind,
        name,
        vec![beemesh_translator::validation::field::invalid(
            "metadata.uid",
            new.unwrap_or(&Value::Null),
            "field is immutable",
        )],
    ))
}

/// Records an Update by `fields` in `new`'s managedFields, crediting the fields the write
/// sets as defaulting will leave them (upstream defaults while decoding, before the field
/// manager runs).
fn record_update(
    res: &ResourceInfo,
    fields: &FieldManager<'_>,
    live: Option<&Value>,
    new: &mut Value,
) {
    let mut defaulted = new.clone();
    // Decoded as the service will decode it (quantities canonical, unknown fields gone);
    // a body that does not decode is refused by the service, whatever is recorded here.
    let _ = beemesh_translator::validation::validate_and_prune(
        res,
        fields.catalog(),
        &mut defaulted,
        FieldValidation::Ignore,
    );
    beemesh_translator::defaulting::apply_defaults(res, &mut defaulted);
    fields.update(live, new, &defaulted);
}

/// Upstream's `ValidatePatchOptions`: `fieldManager` is required for apply, `force` is
/// only for apply, and the manager name must be valid.
fn check_patch_options(query: &Query, patch_type: PatchType) -> Result<()> {
    let apply = patch_type == PatchType::Apply;
    if !apply && query.get("force").is_some() {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "PatchOptions",
            "",
            vec![beemesh_translator::validation::field::forbidden(
                "force",
                "may not be specified for non-apply patch",
            )],
        ));
    }
    apply::validate_field_manager(query.get("fieldManager"), "PatchOptions", apply)
}

/// PATCH with `application/apply-patch+yaml`: merges the configuration into the object by
/// its schema (creating the object when it does not exist), moving field ownership and
/// answering conflicts with 409 unless `force=true`; the result goes through the normal
/// update (or create) path.
#[allow(clippy::too_many_arguments)]
async fn server_side_apply(
    state: &AppState,
    target: &ResourceTarget,
    name: &str,
    part: Part,
    query: &Query,
    body: &[u8],
    output: Output,
    fields: &FieldManager<'_>,
    opts: &WriteOptions,
) -> Result<Response> {
    let res = &target.resource;
    let ns = target.namespace.as_deref();
    let force = query.flag("force");
    let (config, mut warnings) = apply::decode_config(res, name, body, opts.field_validation)?;
    // A resourceVersion or uid in the configuration is a precondition; otherwise the live
    // object's must not become one (a concurrent write retries instead of failing).
    let pinned = |field: &str| {
        config
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let (pinned_rv, pinned_uid) = (pinned("resourceVersion"), pinned("uid"));
    for _ in 0..5 {
        let updated = state
            .service
            .update(res, ns, name, part, opts, |current| {
                let mut new = fields.apply(Some(current), &config, force)?;
                if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                    for (field, pin) in [("resourceVersion", &pinned_rv), ("uid", &pinned_uid)] {
                        match pin {
                            Some(v) => meta.insert(field.into(), json!(v)),
                            None => meta.remove(field),
                        };
                    }
                }
                Ok(new)
            })
            .await;
        match updated {
            Ok(written) => {
                warnings.extend(written.warnings);
                return render_object(
                    res,
                    StatusCode::OK,
                    &written.object,
                    output,
                    query,
                    &warnings,
                );
            }
            Err(e) if e.code() == 404 && part == Part::Main && pinned_uid.is_none() => {
                let obj = fields.apply(None, &config, force)?;
                match state.service.create(res, ns, obj, opts).await {
                    Ok(written) => {
                        warnings.extend(written.warnings);
                        return render_object(
                            res,
                            StatusCode::CREATED,
                            &written.object,
                            output,
                            query,
                            &warnings,
                        );
                    }
                    // Created meanwhile: apply to it.
                    Err(e) if e.reason() == "AlreadyExists" => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::conflict(
        &res.group,
        &res.plural,
        name,
        "the object has been modified; please apply your changes to the latest version and try again",
    ))
}

/// Unknown and duplicate field warnings of a JSON body in the order upstream's decoder
/// meets them (a duplicate inside an unknown field is not one).
fn in_body_order(content_type: Option<&str>, body: &[u8], warnings: Vec<String>) -> Vec<String> {
    if negotiate::is_json_body(content_type) {
        beemesh_translator::validation::document_order(body, warnings)
    } else {
        warnings
    }
}

fn is_yaml_body(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| {
            matches!(
                m.as_str(),
                "application/yaml" | "application/x-yaml" | "text/yaml"
            )
        })
}

/// Keys given twice in a YAML body, as go-yaml's strict decoder words them: under Strict
/// one 400 (`yaml: unmarshal errors:` with a line each, then the unknown fields), under
/// Warn one warning per key (the unknown fields follow from the decoding step).
fn yaml_duplicate_errors(
    state: &AppState,
    res: &ResourceInfo,
    content_type: Option<&str>,
    body: &[u8],
    opts: &WriteOptions,
) -> Result<Vec<String>> {
    let duplicates =
        crate::yaml_duplicates::duplicate_keys(std::str::from_utf8(body).unwrap_or_default());
    if duplicates.is_empty() || opts.field_validation != FieldValidation::Strict {
        return Ok(duplicates);
    }
    let mut obj = negotiate::decode_body(content_type, body)?;
    let unknown = beemesh_translator::validation::validate_and_prune(
        res,
        state.service.catalog,
        &mut obj,
        FieldValidation::Warn,
    )?;
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .unwrap_or(&res.kind)
        .to_string();
    let version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.rsplit('/').next())
        .filter(|v| !v.is_empty())
        .unwrap_or(&res.version)
        .to_string();
    let mut errors = vec![format!(
        "yaml: unmarshal errors:\n  {}",
        duplicates.join("\n  ")
    )];
    errors.extend(unknown);
    Err(ApiError::bad_request(format!(
        "{kind} in version {version:?} cannot be handled as a {}: strict decoding error: {}",
        res.kind,
        errors.join(", ")
    )))
}

/// Keys given twice in a JSON body: with the unknown fields in one 400 under Strict (as
/// upstream's strict decoder reports them), as `duplicate field "..."` warnings under
/// Warn, nothing under Ignore. Other encodings cannot repeat a key.
fn duplicate_field_warnings(
    state: &AppState,
    res: &ResourceInfo,
    content_type: Option<&str>,
    body: &[u8],
    opts: &WriteOptions,
) -> Result<Vec<String>> {
    if opts.field_validation == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    if is_yaml_body(content_type) {
        return yaml_duplicate_errors(state, res, content_type, body, opts);
    }
    if !negotiate::is_json_body(content_type) {
        return Ok(Vec::new());
    }
    // Under Strict the body is judged whole here, so the 400 lists unknown and duplicate
    // fields in the order upstream's decoder meets them.
    if opts.field_validation == FieldValidation::Strict {
        beemesh_translator::validation::validate_body_and_prune(
            res,
            state.service.catalog,
            body,
            FieldValidation::Strict,
        )?;
    }
    let duplicates = beemesh_translator::validation::duplicate_fields(body);
    if duplicates.is_empty() {
        return Ok(Vec::new());
    }
    Ok(duplicates
        .iter()
        .map(|p| format!("duplicate field {p:?}"))
        .collect())
}

/// DeleteOptions from the body (JSON) and the query string.
type DeleteOptions = beemesh_translator::deletion::DeleteOptions;

/// Upstream's `ValidateDeleteOptions` on propagationPolicy: a 422 on DeleteOptions.
fn check_propagation_policy(policy: &str) -> Result<()> {
    if matches!(policy, "Orphan" | "Background" | "Foreground") {
        return Ok(());
    }
    Err(ApiError::invalid(
        "meta.k8s.io",
        "DeleteOptions",
        "",
        vec![beemesh_translator::validation::field::not_supported(
            "propagationPolicy",
            &json!(policy),
            &["Foreground", "Background", "Orphan", "nil"],
        )],
    ))
}

/// A DeleteOptions field of the wrong JSON type, worded like the Go decoder.
fn delete_option_type_error(field: &str, got: &Value, want: &str) -> ApiError {
    ApiError::bad_request(format!(
        "DeleteOptions in version \"v1\" cannot be handled as a DeleteOptions: json: cannot unmarshal {} into Go struct field {field} of type {want}",
        json_type_name(got)
    ))
}

fn delete_options(query: &Query, body: &[u8]) -> Result<DeleteOptions> {
    let mut pre = Preconditions::default();
    let mut dry_run = query.dry_run("DeleteOptions")?;
    let mut policy: Option<String> = None;
    let mut orphan_set = false;
    let mut orphan: Option<bool> = None;
    let mut grace: Option<i64> = None;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let opts: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
        let Some(opts) = opts.as_object() else {
            return Err(ApiError::bad_request(format!(
                "DeleteOptions in version \"v1\" cannot be handled as a DeleteOptions: json: cannot unmarshal {} into Go value of type v1.DeleteOptions",
                json_type_name(&opts)
            )));
        };
        let string_field = |v: Option<&Value>, field: &str| -> Result<Option<String>> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(delete_option_type_error(field, other, "string")),
            }
        };
        match opts.get("preconditions") {
            None | Some(Value::Null) => {}
            Some(Value::Object(p)) => {
                pre.uid = string_field(p.get("uid"), "Preconditions.preconditions.uid")?;
                pre.resource_version = string_field(
                    p.get("resourceVersion"),
                    "Preconditions.preconditions.resourceVersion",
                )?;
            }
            Some(other) => {
                return Err(delete_option_type_error(
                    "DeleteOptions.preconditions",
                    other,
                    "v1.Preconditions",
                ));
            }
        }
        match opts.get("dryRun") {
            None | Some(Value::Null) => {}
            Some(Value::Array(values)) => {
                let mut list = Vec::new();
                for v in values {
                    match v.as_str() {
                        Some(s) => list.push(s),
                        None => {
                            return Err(delete_option_type_error(
                                "DeleteOptions.dryRun",
                                v,
                                "string",
                            ));
                        }
                    }
                }
                crate::request::validate_dry_run(&list, "DeleteOptions")?;
                dry_run |= !list.is_empty();
            }
            Some(other) => {
                return Err(delete_option_type_error(
                    "DeleteOptions.dryRun",
                    other,
                    "[]string",
                ));
            }
        }
        if let Some(p) = string_field(
            opts.get("propagationPolicy"),
            "DeleteOptions.propagationPolicy",
        )? {
            check_propagation_policy(&p)?;
            policy = Some(p);
        }
        match opts.get("orphanDependents") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => {
                orphan_set = true;
                orphan = Some(*b);
            }
            Some(other) => {
                return Err(delete_option_type_error(
                    "DeleteOptions.orphanDependents",
                    other,
                    "bool",
                ));
            }
        }
        match opts.get("gracePeriodSeconds") {
            None | Some(Value::Null) => {}
            Some(v) if v.is_i64() => grace = v.as_i64(),
            Some(other) => {
                return Err(delete_option_type_error(
                    "DeleteOptions.gracePeriodSeconds",
                    other,
                    "int64",
                ));
            }
        }
    }
    if let Some(p) = query.get("propagationPolicy") {
        check_propagation_policy(p)?;
        policy = Some(p.to_string());
    }
    if let Some(o) = query.get("orphanDependents") {
        orphan_set = true;
        orphan = Some(match o {
            "true" | "1" | "t" | "T" | "TRUE" | "True" => true,
            "false" | "0" | "f" | "F" | "FALSE" | "False" => false,
            other => {
                return Err(ApiError::bad_request(format!(
                    "strconv.ParseBool: parsing {other:?}: invalid syntax"
                )));
            }
        });
    }
    if let Some(g) = query.get("gracePeriodSeconds") {
        grace = Some(g.parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!("strconv.ParseInt: parsing {g:?}: invalid syntax"))
        })?);
    }
    if let Some(p) = policy.as_ref().filter(|_| orphan_set) {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "DeleteOptions",
            "",
            vec![beemesh_translator::validation::field::invalid(
                "propagationPolicy",
                &json!(p),
                "orphanDependents and deletionPropagation cannot be both set",
            )],
        ));
    }
    Ok(DeleteOptions {
        preconditions: pre,
        dry_run,
        propagation: policy
            .as_deref()
            .and_then(beemesh_translator::deletion::Propagation::parse),
        orphan_dependents: orphan,
        grace_period_seconds: grace,
    })
}

async fn delete(
    state: &AppState,
    target: &ResourceTarget,
    name: &str,
    query: &Query,
    body: &[u8],
    output: Output,
) -> Result<Response> {
    let res = &target.resource;
    let opts = delete_options(query, body)?;
    let (obj, gone) = state
        .service
        .delete_with(res, target.namespace.as_deref(), name, &opts)
        .await?;
    // Upstream's generic store answers a removal with a success Status unless the
    // resource's registry returns the deleted object; an object kept by finalizers (or a
    // namespace turning Terminating) is always returned.
    let body = if gone && !beemesh_translator::registry_builtin::returns_deleted_object(res) {
        json_bytes(&deleted_status(res, name, &obj))?
    } else {
        json_bytes(&obj)?
    };
    // Upstream answers 202 when a cascading delete asked with `orphanDependents: false`
    // did not remove the object at once (kept for its dependents).
    let status = if !gone && opts.orphan_dependents == Some(false) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    respond(status, output, body, &[])
}

/// The `Status` of a removed object: `details.kind` is the resource (plural), as upstream
/// sets it; an empty group or uid is omitted (Go's omitempty).
fn deleted_status(res: &ResourceInfo, name: &str, obj: &Value) -> Value {
    let mut details = json!({"name": name, "kind": res.plural});
    if !res.group.is_empty() {
        details["group"] = json!(res.group);
    }
    if let Some(uid) = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
    {
        details["uid"] = json!(uid);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

async fn delete_collection(
    state: &AppState,
    target: &ResourceTarget,
    query: &Query,
    body: &[u8],
    output: Output,
) -> Result<Response> {
    let res = &target.resource;
    let opts = delete_options(query, body)?;
    let filter = Filter::from_query(res, query)?;
    let predicate = |obj: &Value| filter.matches(obj);
    let page = state.service.store.list(
        res,
        &ListRequest {
            namespace: target.namespace.as_deref(),
            read_at: ReadAt::Latest,
            limit: None,
            continue_token: None,
            filter: if filter.is_empty() {
                None
            } else {
                Some(&predicate)
            },
        },
    )?;
    let mut deleted = Vec::new();
    for item in &page.items {
        let obj = parse_stored(item)?;
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        // Each object is deleted with the same options, as upstream's DeleteCollection.
        match state
            .service
            .delete_with(res, ns.as_deref(), &name, &opts)
            .await
        {
            Ok((obj, _)) => deleted.push(obj),
            Err(e) if e.code() == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "kind": res.list_kind,
        "apiVersion": res.api_version(),
        "metadata": {"resourceVersion": state.service.store.revision().to_string()},
        "items": deleted,
    });
    respond(StatusCode::OK, output, json_bytes(&list)?, &[])
}

const SCALE_DEFINITION: &str = "io.k8s.api.autoscaling.v1.Scale";

/// The autoscaling/v1 Scale a `/scale` subresource speaks, as a resource to decode and
/// validate bodies against.
fn scale_resource(parent: &ResourceInfo) -> ResourceInfo {
    ResourceInfo {
        group: "autoscaling".into(),
        version: "v1".into(),
        kind: "Scale".into(),
        plural: parent.plural.clone(),
        singular: "scale".into(),
        namespaced: parent.namespaced,
        verbs: Vec::new(),
        short_names: Vec::new(),
        categories: Vec::new(),
        subresources: Vec::new(),
        list_kind: String::new(),
        definition: SCALE_DEFINITION.into(),
        custom: None,
    }
}

/// What a Scale write asks of its object.
struct DesiredScale {
    replicas: Value,
    resource_version: Option<String>,
    uid: Option<String>,
}

/// The autoscaling/v1 Scale view of an object with `spec.replicas`.
fn scale_of(res: &ResourceInfo, obj: &Value) -> Value {
    if let Some(scale) = beemesh_translator::crd::scale_spec(res) {
        return beemesh_translator::crd::scale_view(scale, obj);
    }
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let selector = obj
        .pointer("/spec/selector")
        .map(|s| match s {
            Value::Object(m)
                if m.contains_key("matchLabels") || m.contains_key("matchExpressions") =>
            {
                beemesh_translator::selector::selector_string(s)
            }
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(","),
            _ => String::new(),
        })
        .unwrap_or_default();
    let mut status = json!({
        "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
    });
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    let mut scale_meta = json!({});
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(f) {
            scale_meta[f] = v.clone();
        }
    }
    let _ = res;
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": status,
    })
}

#[allow(clippy::too_many_arguments)]
async fn scale(
    state: &AppState,
    target: &ResourceTarget,
    name: &str,
    method: &Method,
    query: &Query,
    content_type: Option<&str>,
    body: &[u8],
    accept: Option<&str>,
    manager: String,
) -> Result<Response> {
    let res = &target.resource;
    let output = negotiate::negotiate(accept, false)?;
    let fields = FieldManager::new(res, state.service.catalog, Some("scale"), manager);
    let ns = target.namespace.as_deref();
    let catalog = state.service.catalog;
    let scale_schema = catalog.schema(SCALE_DEFINITION);
    let scale_res = scale_resource(res);
    let options_kind = if *method == Method::PUT {
        "UpdateOptions"
    } else {
        "PatchOptions"
    };
    if *method == Method::PATCH {
        let patch_type = PatchType::from_content_type(content_type.unwrap_or(""))?;
        check_patch_options(query, patch_type)?;
        if patch_type == PatchType::Apply {
            let opts = write_options(query, options_kind)?;
            return scale_apply(state, target, name, query, body, output, &fields, &opts).await;
        }
    }
    let mut scale_warnings: Vec<String> = Vec::new();
    // The Scale the client wants, decoded and checked like any body of its kind.
    let mut desired_scale = |current: &Value| -> Result<DesiredScale> {
        let current_scale = scale_of(res, current);
        let mut new_scale = match *method {
            Method::PUT => negotiate::decode_body(content_type, body)?,
            Method::PATCH => {
                let patch_type = PatchType::from_content_type(content_type.unwrap_or(""))?;
                patch::apply_patch(scale_schema, catalog, &current_scale, patch_type, body)?
            }
            _ => unreachable_method(method)?,
        };
        check_type(&scale_res, &mut new_scale)?;
        let field_validation =
            FieldValidation::from_query(query.get("fieldValidation").unwrap_or(""), options_kind)?;
        scale_warnings = if *method == Method::PATCH {
            // A patch is judged as upstream's patch handler does (422 on `patch`).
            let patch_type = PatchType::from_content_type(content_type.unwrap_or(""))?;
            let body_errors = patch_validation::body_errors(patch_type, body, field_validation);
            let warnings = patch_validation::check_patched(
                &scale_res,
                catalog,
                patch_type,
                body,
                &new_scale,
                field_validation,
                &body_errors,
            )?;
            beemesh_translator::validation::validate_and_prune(
                &scale_res,
                catalog,
                &mut new_scale,
                FieldValidation::Ignore,
            )?;
            warnings
        } else {
            beemesh_translator::validation::validate_and_prune(
                &scale_res,
                catalog,
                &mut new_scale,
                field_validation,
            )?
        };
        if let Some(body_name) = new_scale.pointer("/metadata/name").and_then(Value::as_str)
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let (Some(body_ns), Some(ns)) = (
            new_scale
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty()),
            ns,
        ) && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let replicas = new_scale
            .pointer("/spec/replicas")
            .cloned()
            .unwrap_or(json!(0));
        match replicas.as_i64() {
            Some(n) if n >= 0 && n <= i64::from(i32::MAX) => {}
            _ => {
                return Err(ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    name,
                    vec![beemesh_translator::validation::field::invalid(
                        "spec.replicas",
                        &replicas,
                        "must be greater than or equal to 0",
                    )],
                ));
            }
        }
        let meta_field = |f: &str| {
            new_scale
                .pointer(&format!("/metadata/{f}"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Ok(DesiredScale {
            replicas,
            resource_version: meta_field("resourceVersion"),
            uid: meta_field("uid"),
        })
    };
    match *method {
        Method::GET => {
            let obj = state.service.store.get(res, ns, name)?;
            respond(
                StatusCode::OK,
                output,
                json_bytes(&scale_of(res, &obj))?,
                &[],
            )
        }
        Method::PUT | Method::PATCH => {
            let opts = write_options(query, options_kind)?;
            let written = state
                .service
                .update(res, ns, name, Part::Main, &opts, |current| {
                    let desired = desired_scale(current)?;
                    let mut new = current.clone();
                    let path = beemesh_translator::crd::spec_replicas_path(res);
                    beemesh_translator::crd::set_path(&mut new, &path, desired.replicas);
                    // The Scale's resourceVersion and uid are preconditions on the object.
                    // One a patch inherited from the current object is none: upstream
                    // retries such a patch on a concurrent write (a controller's status)
                    // instead of answering 409.
                    let current_rv = current.pointer("/metadata/resourceVersion");
                    let pinned = desired.resource_version.filter(|rv| {
                        *method != Method::PATCH || current_rv.and_then(Value::as_str) != Some(rv)
                    });
                    match pinned {
                        Some(rv) => new["metadata"]["resourceVersion"] = json!(rv),
                        None => {
                            if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut)
                            {
                                m.remove("resourceVersion");
                            }
                        }
                    }
                    if let Some(uid) = desired.uid {
                        new["metadata"]["uid"] = json!(uid);
                    }
                    let changed = new.clone();
                    fields.update(Some(current), &mut new, &changed);
                    Ok(new)
                })
                .await?;
            let mut warnings = std::mem::take(&mut scale_warnings);
            warnings.extend(written.warnings);
            respond(
                StatusCode::OK,
                output,
                json_bytes(&scale_of(res, &written.object))?,
                &warnings,
            )
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {}/scale)",
            res.group_resource()
        ))),
    }
}

/// Server-side apply of a Scale: the configuration's `spec.replicas` is applied to the
/// object's `spec.replicas` by the manager's `scale` subresource entry, so it conflicts
/// with whoever else owns the replicas (upstream maps Scale ownership onto the parent).
#[allow(clippy::too_many_arguments)]
async fn scale_apply(
    state: &AppState,
    target: &ResourceTarget,
    name: &str,
    query: &Query,
    body: &[u8],
    output: Output,
    fields: &FieldManager<'_>,
    opts: &WriteOptions,
) -> Result<Response> {
    let res = &target.resource;
    let scale_res = scale_resource(res);
    let (config, mut warnings) =
        apply::decode_config(&scale_res, name, body, opts.field_validation)?;
    let mut checked = config.clone();
    warnings.extend(beemesh_translator::validation::validate_and_prune(
        &scale_res,
        state.service.catalog,
        &mut checked,
        opts.field_validation,
    )?);
    let mut parent_config = json!({
        "apiVersion": res.api_version(),
        "kind": res.kind,
        "metadata": {"name": name},
    });
    if let Some(replicas) = checked.pointer("/spec/replicas") {
        parent_config["spec"] = json!({"replicas": replicas});
    }
    let force = query.flag("force");
    let written = state
        .service
        .update(
            res,
            target.namespace.as_deref(),
            name,
            Part::Main,
            opts,
            |current| {
                let mut new = fields.apply(Some(current), &parent_config, force)?;
                if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.remove("resourceVersion");
                    meta.remove("uid");
                }
                Ok(new)
            },
        )
        .await?;
    warnings.extend(written.warnings);
    respond(
        StatusCode::OK,
        output,
        json_bytes(&scale_of(res, &written.object))?,
        &warnings,
    )
}

fn unreachable_method(method: &Method) -> Result<Value> {
    Err(ApiError::method_not_allowed(format!(
        "{method} is not supported on scale"
    )))
}
