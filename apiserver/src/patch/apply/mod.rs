//! Server-side apply and field ownership (`metadata.managedFields`), as upstream's field
//! manager and structured-merge-diff behave:
//! - `fieldpath`: path sets and their FieldsV1 / dotted spellings;
//! - `typed`: schema-driven field sets, merge, compare and removal;
//! - `managers`: who owns what, and how Update and Apply move ownership.
//!
//! This module is the request-level glue: one `FieldManager` per write, which records an
//! Update (create, update, non-apply patch, subresource writes) or performs an Apply,
//! including upstream's upgrade path from client-side apply (the last-applied annotation).

pub mod fieldpath;
pub mod managers;
pub mod typed;

#[cfg(test)]
mod tests;

use beemesh_translator::catalog::Catalog;
use beemesh_translator::validation::{FieldValidation, field};
use beemesh_translator::{ApiError, Cause, ResourceInfo, Subject};
use serde_json::{Map, Value, json};

use fieldpath::path_string;
use managers::{Conflict, Managed, Operation, Scope, Who};
use typed::Typed;

/// The client-side apply annotation kubectl keeps.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Upstream's limit on a field manager's name.
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// The manager upstream credits with an object's fields when it is first applied to
/// without any managedFields.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// The field manager of one write.
pub struct FieldManager<'a> {
    typed: Typed<'a>,
    scope: Scope,
    api_version: String,
    subresource: String,
    manager: String,
    catalog: &'a Catalog,
}

/// The manager name of a request: `fieldManager`, or what precedes the first `/` of the
/// User-Agent (printable characters only, at most 128 bytes), as upstream derives it.
pub fn manager_name(field_manager: Option<&str>, user_agent: Option<&str>) -> String {
    if let Some(m) = field_manager.filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    let prefix = user_agent.unwrap_or("").split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in prefix.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

/// Upstream's `ValidateFieldManager` (and, for apply, that one is given): a 422 on the
/// request's options kind.
pub fn validate_field_manager(
    field_manager: Option<&str>,
    options_kind: &str,
    apply: bool,
) -> Result<(), ApiError> {
    let m = field_manager.unwrap_or("");
    let mut causes = Vec::new();
    if apply && m.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "fieldManager",
            "Required value: is required for apply patch",
        ));
    }
    if m.len() > FIELD_MANAGER_MAX_LENGTH {
        causes.push(Cause::new(
            "FieldValueTooLong",
            "fieldManager",
            format!("Too long: may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes"),
        ));
    }
    for (i, c) in m.chars().enumerate() {
        if c.is_control() {
            causes.push(field::invalid(
                "fieldManager",
                &json!(m),
                &format!("invalid character U+{:04X} (at position {i})", c as u32),
            ));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("meta.k8s.io", options_kind, "", causes))
    }
}

fn managed_fields_of(obj: &Value) -> Option<&Value> {
    obj.pointer("/metadata/managedFields")
}

/// A copy without `metadata.managedFields` (never part of what is compared or merged).
fn without_managed_fields(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}

/// Stores `managed` in `obj` (no entries: no field, as upstream omits an empty list).
fn set_managed_fields(obj: &mut Value, managed: &Managed) {
    let encoded = managed.encode();
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(m) = meta.as_object_mut() {
        if encoded.as_array().is_some_and(Vec::is_empty) {
            m.remove("managedFields");
        } else {
            m.insert("managedFields".into(), encoded);
        }
    }
}

/// A client asking to reset managedFields sends an empty list or one empty entry.
fn is_reset(list: Option<&Value>) -> bool {
    match list {
        Some(Value::Array(items)) => {
            items.is_empty()
                || (items.len() == 1 && items[0].as_object().is_some_and(Map::is_empty))
        }
        _ => false,
    }
}

/// The `Status` of apply conflicts, worded as upstream (kubectl shows it and adds its
/// `--force-conflicts` advice).
pub fn conflict_error(conflicts: &[Conflict]) -> ApiError {
    let causes = conflicts
        .iter()
        .map(|c| {
            Cause::new(
                "FieldManagerConflict",
                path_string(&c.path),
                format!("conflict with {}", c.manager),
            )
        })
        .collect();
    let message = if let [only] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager,
            path_string(&only.path)
        )
    } else {
        let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for c in conflicts.iter().filter(|c| c.manager == m) {
                lines.push(format!("- {}", path_string(&c.path)));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApiError::Conflict {
        message,
        subject: Box::new(Subject::default()),
        causes,
    }
}

impl<'a> FieldManager<'a> {
    /// The field manager for a write to `res` (or its `subresource`) by `manager`.
    pub fn new(
        res: &'a ResourceInfo,
        catalog: &'a Catalog,
        subresource: Option<&str>,
        manager: String,
    ) -> FieldManager<'a> {
        let schema = match &res.custom {
            Some(custom) => custom.schema.as_ref(),
            None => catalog.schema(&res.definition),
        };
        let scope = match subresource {
            Some("status") => Scope::OnlyStatus,
            _ if res.subresource("status").is_some() => Scope::ExceptStatus,
            _ => Scope::Everything,
        };
        let typed = Typed::new(catalog, schema);
        FieldManager {
            typed: if res.custom.is_some() {
                typed.custom()
            } else {
                typed
            },
            scope,
            api_version: res.api_version(),
            subresource: subresource.unwrap_or("").to_string(),
            manager,
            catalog,
        }
    }

    /// The schemas objects of this write are decoded with.
    pub fn catalog(&self) -> &'a Catalog {
        self.catalog
    }

    fn who(&self, operation: Operation) -> Who {
        Who {
            manager: self.manager.clone(),
            operation,
            api_version: self.api_version.clone(),
            subresource: self.subresource.clone(),
        }
    }

    /// Records an Update from `live` (`None` on create) to `new` and stores the entries
    /// in `new`. `defaulted` is `new` as defaulting will leave it (upstream decodes, and so
    /// defaults, before the field manager runs). The entries come from `new` when the
    /// client sent valid ones (kubectl's client-side-apply upgrade rewrites them so), are
    /// reset by an empty list, and otherwise come from the live object.
    pub fn update(&self, live: Option<&Value>, new: &mut Value, defaulted: &Value) {
        let sent = managed_fields_of(new);
        let live_managed = || Managed::decode(live.and_then(managed_fields_of));
        let managed = if !self.subresource.is_empty() {
            live_managed()
        } else if is_reset(sent) {
            Ok(Managed::default())
        } else {
            match Managed::decode(sent) {
                Ok(m) if !m.entries.is_empty() => Ok(m),
                _ => live_managed(),
            }
        };
        let Ok(mut managed) = managed else {
            // Upstream leaves managedFields alone when it cannot read any.
            return;
        };
        let old = live
            .map(without_managed_fields)
            .unwrap_or_else(|| json!({}));
        let new_view = without_managed_fields(defaulted);
        managed.update(
            &self.typed,
            self.scope,
            &old,
            &new_view,
            &self.who(Operation::Update),
            &beemesh_translator::service::now_rfc3339(),
        );
        set_managed_fields(new, &managed);
    }

    /// Applies `config` to `live` (`None`: the object does not exist yet and is created
    /// from an empty one). Returns the object to store, with its managedFields.
    pub fn apply(
        &self,
        live: Option<&Value>,
        config: &Value,
        force: bool,
    ) -> Result<Value, ApiError> {
        if managed_fields_of(config).is_some_and(|m| !m.is_null()) {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        let now = beemesh_translator::service::now_rfc3339();
        let mut managed = Managed::decode(live.and_then(managed_fields_of))
            .map_err(|e| ApiError::internal(format!("failed to decode managed fields: {e}")))?;
        let live_view = live
            .map(without_managed_fields)
            .unwrap_or_else(|| json!({"apiVersion": self.api_version, "kind": config.get("kind").cloned().unwrap_or(Value::Null), "metadata": {}}));
        // The last-applied annotation records the configuration as sent, nulls included
        // (upstream encodes the applied object itself).
        let sent = config;
        let config = strip_nulls(config);
        if live.is_some() && managed.entries.is_empty() {
            // Fields set before anyone applied belong to a manager of their own, so the
            // first applier neither conflicts with nor removes them.
            let who = Who {
                manager: BEFORE_FIRST_APPLY.into(),
                operation: Operation::Update,
                api_version: self.api_version.clone(),
                subresource: self.subresource.clone(),
            };
            managed.update(&self.typed, self.scope, &json!({}), &live_view, &who, &now);
        }
        let who = self.who(Operation::Apply);
        let mut attempt = managed.clone();
        let result = match attempt.apply(
            &self.typed,
            self.scope,
            &live_view,
            &config,
            &who,
            force,
            &now,
        ) {
            Ok(obj) => Ok((obj, attempt)),
            Err(conflicts) if self.manager == "kubectl" => {
                // kubectl upgrading from client-side apply: fields the last-applied
                // annotation shows it set (and that still hold those values) are its own.
                match self.last_applied_fields(&live_view) {
                    Some(allowed) => {
                        let remaining: Vec<Conflict> = conflicts
                            .into_iter()
                            .filter(|c| !allowed.has(&c.path))
                            .collect();
                        if remaining.is_empty() {
                            let mut forced = managed.clone();
                            forced
                                .apply(
                                    &self.typed,
                                    self.scope,
                                    &live_view,
                                    &config,
                                    &who,
                                    true,
                                    &now,
                                )
                                .map(|obj| (obj, forced))
                        } else {
                            Err(remaining)
                        }
                    }
                    None => Err(conflicts),
                }
            }
            Err(conflicts) => Err(conflicts),
        };
        let (obj, managed) = result.map_err(|c| conflict_error(&c))?;
        let mut out = obj.unwrap_or(live_view);
        if self.manager == "kubectl" && self.subresource.is_empty() {
            sync_last_applied(&mut out, sent);
        }
        set_managed_fields(&mut out, &managed);
        Ok(out)
    }

    /// The fields the last-applied annotation of `live` says kubectl set and that still
    /// have those values (upstream's lastAppliedManager).
    fn last_applied_fields(&self, live: &Value) -> Option<fieldpath::Set> {
        let text = live
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(LAST_APPLIED))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())?;
        let last: Value = serde_json::from_str(text).ok()?;
        if last.get("apiVersion").and_then(Value::as_str) != Some(self.api_version.as_str()) {
            return None;
        }
        let set = self.typed.field_set(&last);
        let cmp = self.typed.compare(&last, live);
        Some(
            set.difference(&cmp.modified)
                .difference(&cmp.added)
                .difference(&cmp.removed),
        )
    }
}

/// Keeps the last-applied annotation in step with what kubectl server-side applied, when
/// the object has one (upstream's lastAppliedUpdater): the configuration without that
/// annotation, as compact JSON with a trailing newline.
fn sync_last_applied(obj: &mut Value, config: &Value) {
    let has = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !has {
        return;
    }
    let mut applied = config.clone();
    if let Some(a) = applied
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(LAST_APPLIED);
    }
    let text = format!("{applied}\n");
    if let Some(a) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.insert(LAST_APPLIED.into(), Value::String(text));
    }
}

/// A configuration's explicit nulls say "not set" (the typed decoding upstream does drops
/// them from structs and maps).
fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// Parses an apply body (YAML, of which JSON is a subset) and checks it names the
/// resource and object it is sent to. Returns the configuration and, under `Warn`, the
/// duplicate-field warnings of a JSON body (under `Strict` they are a 400).
pub fn decode_config(
    res: &ResourceInfo,
    name: &str,
    body: &[u8],
    validation: FieldValidation,
) -> Result<(Value, Vec<String>), ApiError> {
    let config: Value = if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    };
    let mut warnings = Vec::new();
    if validation != FieldValidation::Ignore {
        let duplicates = if serde_json::from_slice::<Value>(body).is_ok() {
            beemesh_translator::validation::duplicate_fields(body)
        } else {
            beemesh_translator::validation::duplicate_fields_in(
                serde_yaml::Deserializer::from_slice(body),
            )
        };
        if !duplicates.is_empty() {
            let texts: Vec<String> = duplicates
                .iter()
                .map(|p| format!("duplicate field {p:?}"))
                .collect();
            if validation == FieldValidation::Strict {
                return Err(ApiError::bad_request(format!(
                    "error strict decoding YAML: {}",
                    texts.join(", ")
                )));
            }
            warnings = texts;
        }
    }
    let Some(obj) = config.as_object() else {
        return Err(ApiError::bad_request(
            "error decoding YAML: the apply configuration must be an object",
        ));
    };
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version.is_empty() || kind.is_empty() {
        return Err(ApiError::bad_request(format!(
            "failed to create typed patch object: Object 'Kind' is missing in '{}'",
            config
        )));
    }
    if api_version != res.api_version() {
        return Err(ApiError::bad_request(format!(
            "Incorrect version specified in apply patch. Specified patch version: {api_version}, expected: {}",
            res.api_version()
        )));
    }
    if kind != res.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({}) for {}",
            res.kind,
            res.group_resource()
        )));
    }
    match config.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) if n == name => {}
        _ => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                config
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            )));
        }
    }
    Ok((config, warnings))
}
