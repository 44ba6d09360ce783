//! Validation of objects before they are stored: names and metadata, the schema walk
//! (unknown fields, type errors, pruning) and per-kind semantic rules, each failure worded
//! as the upstream API server words it.
//!
//! Order of use on a write (as upstream): `validate_and_prune` (the decoding step: 400 on
//! type errors, unknown fields per `fieldValidation`), then defaulting, then `validate`
//! (metadata and kind rules: one 422 listing every cause).

mod duplicates;
pub mod events;
pub mod field;
pub mod kinds;
pub mod leases;
pub mod names;
pub mod quantity;
mod schema_lookup;
mod schema_walk;

use serde_json::{Map, Value};

use crate::error::{ApiError, Cause};
use crate::registry::ResourceInfo;

pub use duplicates::{document_order, duplicate_fields, duplicate_fields_in};
pub use names::NameRule;
pub use schema_lookup::{NoSchemas, SchemaLookup, SchemaMap};

/// Upstream's limit on the total size of an object's annotations (keys plus values).
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// The `fieldValidation` query parameter: what to do with unknown and duplicate fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Fail the request with 400 listing every unknown field.
    Strict,
    /// Accept, drop the fields and answer with `Warning` headers (upstream's default).
    #[default]
    Warn,
    /// Accept and drop the fields silently.
    Ignore,
}

impl FieldValidation {
    /// Parses the query value; empty means the default (Warn). Anything else is 422 on the
    /// request options, as upstream (`CreateOptions`, `UpdateOptions` or `PatchOptions`).
    pub fn from_query(value: &str, options_kind: &str) -> Result<Self, ApiError> {
        match value {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Strict" => Ok(FieldValidation::Strict),
            "Ignore" => Ok(FieldValidation::Ignore),
            other => Err(ApiError::invalid(
                "meta.k8s.io",
                options_kind,
                "",
                vec![field::not_supported(
                    "fieldValidation",
                    &Value::from(other),
                    &["", "Ignore", "Strict", "Warn"],
                )],
            )),
        }
    }
}

fn kind_in_data(res: &ResourceInfo, obj: &Value) -> (String, String) {
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .unwrap_or(&res.kind)
        .to_string();
    let version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(|v| v.rsplit('/').next().unwrap_or(v).to_string())
        .unwrap_or_else(|| res.version.clone());
    (kind, version)
}

/// Upstream's decode failure: `Deployment in version "v1" cannot be handled as a Deployment: ...`.
fn cannot_handle(res: &ResourceInfo, obj: &Value, why: &str) -> ApiError {
    let (kind, version) = kind_in_data(res, obj);
    ApiError::bad_request(format!(
        "{kind} in version {version:?} cannot be handled as a {}: {why}",
        res.kind
    ))
}

/// The decoding step: fills a missing `apiVersion`/`kind` from the resource, checks JSON
/// types against the kind's schema (400 on the first mismatch, worded like the Go decoder),
/// drops unknown fields and nulls, and reports unknown fields per `mode` — as a 400
/// `strict decoding error` under Strict, as warnings (`unknown field "spec.x"`) under Warn.
/// Kinds without a schema (custom resources) pass through untouched.
pub fn validate_and_prune<S: SchemaLookup + ?Sized>(
    res: &ResourceInfo,
    schemas: &S,
    obj: &mut Value,
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    decode_checks(res, schemas, obj, mode, Vec::new())
}

/// `validate_and_prune` on a raw JSON body, which also reports keys given twice
/// (`duplicate field "metadata.name"`) the way it reports unknown fields.
pub fn validate_body_and_prune<S: SchemaLookup + ?Sized>(
    res: &ResourceInfo,
    schemas: &S,
    body: &[u8],
    mode: FieldValidation,
) -> Result<(Value, Vec<String>), ApiError> {
    let mut obj: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): {e}",
            res.kind
        ))
    })?;
    let duplicates = match mode {
        FieldValidation::Ignore => Vec::new(),
        _ => duplicate_fields(body)
            .into_iter()
            .map(|p| format!("duplicate field {p:?}"))
            .collect(),
    };
    // Collected in full, then ordered as upstream's decoder meets them in the body.
    let collect = match mode {
        FieldValidation::Ignore => FieldValidation::Ignore,
        _ => FieldValidation::Warn,
    };
    let errors = decode_checks(res, schemas, &mut obj, collect, duplicates)?;
    let errors = duplicates::document_order(body, errors);
    match mode {
        FieldValidation::Strict if !errors.is_empty() => Err(cannot_handle(
            res,
            &obj,
            &format!("strict decoding error: {}", errors.join(", ")),
        )),
        FieldValidation::Warn => Ok((obj, errors)),
        _ => Ok((obj, Vec::new())),
    }
}

fn decode_checks<S: SchemaLookup + ?Sized>(
    res: &ResourceInfo,
    schemas: &S,
    obj: &mut Value,
    mode: FieldValidation,
    mut strict_errors: Vec<String>,
) -> Result<Vec<String>, ApiError> {
    let Value::Object(map) = obj else {
        let what = match obj {
            Value::Array(_) => "array",
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "bool",
            _ => "null",
        };
        return Err(cannot_handle(
            res,
            &Value::Null,
            &format!(
                "json: cannot unmarshal {what} into Go value of type {}",
                res.kind
            ),
        ));
    };
    if map
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        map.insert("apiVersion".into(), Value::from(res.api_version()));
    }
    if map
        .get("kind")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        map.insert("kind".into(), Value::from(res.kind.clone()));
    }
    if let Some(schema) = (!res.definition.is_empty())
        .then(|| schemas.schema(&res.definition))
        .flatten()
    {
        let outcome =
            schema_walk::SchemaWalker::new(schemas).walk_root(obj, &res.definition, schema);
        if let Some(err) = outcome.decode_error {
            return Err(cannot_handle(res, obj, &err));
        }
        strict_errors.extend(
            outcome
                .unknown_fields
                .iter()
                .map(|p| format!("unknown field {p:?}")),
        );
    }
    // Custom resources: the CRD version's structural schema decides what is unknown.
    if let Some(unknown) = crate::crd::prune(res, obj) {
        strict_errors.extend(unknown.iter().map(|p| format!("unknown field {p:?}")));
    }
    match mode {
        FieldValidation::Strict if !strict_errors.is_empty() => Err(cannot_handle(
            res,
            obj,
            &format!("strict decoding error: {}", strict_errors.join(", ")),
        )),
        FieldValidation::Warn => Ok(strict_errors),
        _ => Ok(Vec::new()),
    }
}

/// `apiVersion`/`kind` of the body must be the resource's (400 like upstream), then the
/// metadata rules (422 with one cause per problem).
pub fn validate_metadata(res: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
    check_type_meta(res, obj)?;
    let causes = metadata_causes(res, obj);
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid_error(res, obj, causes))
    }
}

/// Every create/update check after decoding and defaulting: type meta (400), then metadata
/// and the kind's own rules together in one 422, as upstream reports them.
pub fn validate(res: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
    check_type_meta(res, obj)?;
    let mut causes = metadata_causes(res, obj);
    causes.extend(kinds::kind_causes(&res.group, &res.kind, obj));
    causes.extend(crate::crd::causes(res, obj, None));
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid_error(res, obj, causes))
    }
}

/// Checks on an update against the stored object: the metadata that may not change.
pub fn validate_update(res: &ResourceInfo, new: &Value, old: &Value) -> Result<(), ApiError> {
    check_type_meta(res, new)?;
    let mut causes = metadata_causes(res, new);
    for name in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        let pointer = format!("/metadata/{name}");
        let (n, o) = (new.pointer(&pointer), old.pointer(&pointer));
        // An omitted uid or creationTimestamp is filled from the stored object by the caller.
        let omitted_server_field = n.is_none() && matches!(name, "uid" | "creationTimestamp");
        if n != o && !omitted_server_field {
            causes.push(field::invalid(
                &format!("metadata.{name}"),
                n.unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
    }
    if res.group == "events.k8s.io" && res.kind == "Event" {
        // Events written through events.k8s.io are immutable but for their series.
        causes.extend(events::validate_events_v1_update(new, old));
    } else {
        causes.extend(kinds::kind_causes(&res.group, &res.kind, new));
    }
    causes.extend(crate::crd::causes(res, new, Some(old)));
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid_error(res, new, causes))
    }
}

fn check_type_meta(res: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
    let expected = res.api_version();
    if let Some(api_version) = obj.get("apiVersion").and_then(Value::as_str)
        && !api_version.is_empty()
        && api_version != expected
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({expected})"
        )));
    }
    if let Some(kind) = obj.get("kind").and_then(Value::as_str)
        && !kind.is_empty()
        && kind != res.kind
    {
        return Err(cannot_handle(
            res,
            obj,
            &format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                res.kind
            ),
        ));
    }
    Ok(())
}

/// 422 `<Kind>.<group> "<name>" is invalid: ...` with duplicate causes folded.
fn invalid_error(res: &ResourceInfo, obj: &Value, causes: Vec<Cause>) -> ApiError {
    let mut unique: Vec<Cause> = Vec::with_capacity(causes.len());
    for c in causes {
        if !unique.contains(&c) {
            unique.push(c);
        }
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    ApiError::invalid(&res.group, &res.kind, name, unique)
}

/// `ValidateObjectMeta`: name or generateName, namespace presence, labels, annotations,
/// finalizers and owner references.
pub fn metadata_causes(res: &ResourceInfo, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = Map::new();
    let meta = obj
        .get("metadata")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let text = |k: &str| meta.get(k).and_then(Value::as_str).unwrap_or_default();
    let rule = names::name_rule(&res.group, &res.kind);

    let generate_name = text("generateName");
    if !generate_name.is_empty() {
        for msg in rule.check(generate_name, true) {
            causes.push(field::invalid_str(
                "metadata.generateName",
                generate_name,
                &msg,
            ));
        }
    }
    let name = text("name");
    if name.is_empty() {
        causes.push(field::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for msg in rule.check(name, false) {
            causes.push(field::invalid_str("metadata.name", name, &msg));
        }
    }
    if res.group == "apiextensions.k8s.io" && res.kind == "CustomResourceDefinition" {
        let plural = obj
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let group = obj
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !name.is_empty() && name != format!("{plural}.{group}") {
            causes.push(field::invalid_str(
                "metadata.name",
                name,
                "must be spec.names.plural+\".\"+spec.group",
            ));
        }
    }

    let namespace = text("namespace");
    if res.namespaced {
        if namespace.is_empty() {
            causes.push(field::required("metadata.namespace", ""));
        } else {
            for msg in names::is_dns1123_label(namespace) {
                causes.push(field::invalid_str("metadata.namespace", namespace, &msg));
            }
        }
    } else if !namespace.is_empty() {
        causes.push(field::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    if let Some(generation) = meta.get("generation").and_then(Value::as_i64)
        && generation < 0
    {
        causes.push(field::invalid(
            "metadata.generation",
            &Value::from(generation),
            "must be greater than or equal to 0",
        ));
    }
    if let Some(Value::Object(labels)) = meta.get("labels") {
        kinds::validate_labels(labels, "metadata.labels", &mut causes);
    }
    if let Some(Value::Object(annotations)) = meta.get("annotations") {
        validate_annotations(annotations, "metadata.annotations", &mut causes);
    }
    validate_finalizers(meta.get("finalizers"), &mut causes);
    validate_owner_references(meta.get("ownerReferences"), &mut causes);
    causes
}

/// `ValidateAnnotations`: keys are qualified names (checked lower-cased), total size 256 KiB.
pub fn validate_annotations(annotations: &Map<String, Value>, path: &str, causes: &mut Vec<Cause>) {
    let mut total = 0usize;
    for (k, v) in annotations {
        for msg in names::is_qualified_name(&k.to_lowercase()) {
            causes.push(field::invalid_str(path, k, &msg));
        }
        total += k.len() + v.as_str().map(str::len).unwrap_or(0);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        causes.push(field::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

fn validate_finalizers(finalizers: Option<&Value>, causes: &mut Vec<Cause>) {
    let Some(Value::Array(list)) = finalizers else {
        return;
    };
    let mut orphan = false;
    let mut foreground = false;
    for f in list.iter().filter_map(Value::as_str) {
        for msg in names::is_qualified_name(f) {
            causes.push(field::invalid_str("metadata.finalizers", f, &msg));
        }
        orphan |= f == "orphan";
        foreground |= f == "foregroundDeletion";
    }
    if orphan && foreground {
        causes.push(field::invalid(
            "metadata.finalizers",
            &Value::Array(list.clone()),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
}

fn validate_owner_references(refs: Option<&Value>, causes: &mut Vec<Cause>) {
    let Some(Value::Array(list)) = refs else {
        return;
    };
    let path = "metadata.ownerReferences";
    let mut first_controller: Option<String> = None;
    for r in list {
        let get = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        let api_version = get("apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or_default();
        if version.is_empty() {
            causes.push(field::invalid_str(
                &format!("{path}.apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if get("kind").is_empty() {
            causes.push(field::invalid_str(
                &format!("{path}.kind"),
                get("kind"),
                "kind must not be empty",
            ));
        }
        if get("name").is_empty() {
            causes.push(field::invalid_str(
                &format!("{path}.name"),
                get("name"),
                "name must not be empty",
            ));
        }
        if get("uid").is_empty() {
            causes.push(field::invalid_str(
                &format!("{path}.uid"),
                get("uid"),
                "uid must not be empty",
            ));
        }
        // Upstream's BannedOwners: a core v1 Event may not own anything.
        if api_version == "v1" && get("kind") == "Event" {
            causes.push(field::invalid(
                path,
                r,
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.get("controller") == Some(&Value::Bool(true)) {
            let current = format!("{}/{}", get("kind"), get("name"));
            match &first_controller {
                Some(first) => causes.push(field::invalid(
                    path,
                    &Value::Array(list.clone()),
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
}

#[cfg(test)]
mod tests;
