//! Tables for custom resources, as apiextensions-apiserver builds them: `Name` plus the CRD
//! version's `additionalPrinterColumns` (or a single `Age` date column when it has none).

use beemesh_translator::ResourceInfo;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::jsonpath::JsonPath;
use super::{IncludeObject, assemble, human_duration, list_metadata, row_object};

/// One printer column of a CRD version.
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    pub name: String,
    /// integer, number, string, boolean or date.
    pub column_type: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    path: JsonPath,
}

const CREATION_TIMESTAMP_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

impl PrinterColumn {
    /// The columns of one `spec.versions[]` entry of a CRD (apiextensions.k8s.io/v1); the error
    /// names a column whose JSONPath cannot be parsed (CRD validation should have refused it).
    pub fn for_crd_version(version: &Value) -> Result<Vec<PrinterColumn>, String> {
        let declared = version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        PrinterColumn::from_declared(declared)
    }

    /// The columns of `additionalPrinterColumns` entries as given (upstream's
    /// `serveDefaultColumnsIfEmpty`: a lone `Age` column when there are none).
    pub fn from_declared(declared: &[Value]) -> Result<Vec<PrinterColumn>, String> {
        if declared.is_empty() {
            return Ok(vec![PrinterColumn {
                name: "Age".into(),
                column_type: "date".into(),
                format: String::new(),
                description: CREATION_TIMESTAMP_DOC.into(),
                priority: 0,
                path: JsonPath::parse(".metadata.creationTimestamp")?,
            }]);
        }
        declared
            .iter()
            .map(|c| {
                let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let json_path = text("jsonPath");
                let path = JsonPath::parse(&json_path)
                    .map_err(|e| format!("unrecognized column definition {json_path:?}: {e}"))?;
                let description = match text("description") {
                    d if d.is_empty() => format!(
                        "Custom resource definition column (in JSONPath format): {json_path}"
                    ),
                    d => d,
                };
                Ok(PrinterColumn {
                    name: text("name"),
                    column_type: text("type"),
                    format: text("format"),
                    description,
                    priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    path,
                })
            })
            .collect()
    }

    fn definition(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.column_type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }

    /// The cell for one object: the first JSONPath result, typed like upstream's
    /// `cellForJSONValue` (strings print any value; mismatched types are null; dates are
    /// ages against `now`, as `ConvertToHumanReadableDateType` renders them).
    fn cell(&self, obj: &Value, now: DateTime<Utc>) -> Value {
        // client-go evaluation errors leave the cell empty, like a missing value.
        let Some(value) = self
            .path
            .try_find(obj)
            .ok()
            .and_then(|found| found.into_iter().next())
        else {
            return Value::Null;
        };
        if value.is_null() {
            return Value::Null;
        }
        match self.column_type.as_str() {
            "string" => json!(go_print(value)),
            "integer" => match value {
                Value::Number(n) => n
                    .as_i64()
                    .or_else(|| n.as_f64().map(|f| f as i64))
                    .map_or(Value::Null, |i| json!(i)),
                _ => Value::Null,
            },
            "number" => match value.as_f64() {
                // Go encodes a whole float64 without a fraction (`3`, not `3.0`).
                Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => json!(f as i64),
                Some(f) => json!(f),
                None => Value::Null,
            },
            "boolean" => match value {
                Value::Bool(b) => json!(b),
                _ => Value::Null,
            },
            "date" => match value.as_str() {
                Some(text) => match DateTime::parse_from_rfc3339(text) {
                    Ok(t) => json!(human_duration(now - t.with_timezone(&Utc))),
                    Err(_) => json!("<invalid>"),
                },
                None => Value::Null,
            },
            _ => Value::Null,
        }
    }
}

/// Go's `fmt.Fprint` of a decoded JSON value, as jsonpath prints string columns.
fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_print(&m[k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Column definitions of a custom resource table.
pub fn custom_column_definitions(columns: &[PrinterColumn]) -> Vec<Value> {
    let mut out = vec![json!({
        "name": "Name", "type": "string", "format": "name",
        "description": NAME_DOC, "priority": 0,
    })];
    out.extend(columns.iter().map(PrinterColumn::definition));
    out
}

/// One custom resource row's cells: name, then one cell per printer column.
pub fn custom_row_cells(columns: &[PrinterColumn], obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut cells = vec![json!(obj["metadata"]["name"].as_str().unwrap_or_default())];
    cells.extend(columns.iter().map(|c| c.cell(obj, now)));
    cells
}

/// A `meta.k8s.io/v1` Table of custom resources. `date` columns are ages (`5m`), computed
/// here as upstream does: kubectl prints cells as they come.
#[allow(clippy::too_many_arguments)]
pub fn custom_table(
    res: &ResourceInfo,
    columns: &[PrinterColumn],
    objects: &[Value],
    include_object: IncludeObject,
    resource_version: &str,
    continue_token: Option<&str>,
    remaining: Option<i64>,
    now: DateTime<Utc>,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let mut row = Map::new();
            row.insert(
                "cells".into(),
                Value::Array(custom_row_cells(columns, obj, now)),
            );
            row.insert("object".into(), row_object(res, obj, include_object));
            Value::Object(row)
        })
        .collect();
    assemble(
        list_metadata(resource_version, continue_token, remaining),
        custom_column_definitions(columns),
        Value::Array(rows),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five minutes after the objects below were created.
    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-01-02T03:09:05Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn crontab_res() -> ResourceInfo {
        ResourceInfo {
            group: "stable.example.com".into(),
            version: "v1".into(),
            kind: "CronTab".into(),
            plural: "crontabs".into(),
            singular: "crontab".into(),
            namespaced: true,
            verbs: vec!["get".into(), "list".into()],
            short_names: vec![],
            categories: vec![],
            subresources: vec![],
            list_kind: "CronTabList".into(),
            definition: String::new(),
            custom: None,
        }
    }

    #[test]
    fn printer_columns_from_a_crd_version() {
        let version = json!({
            "name": "v1",
            "additionalPrinterColumns": [
                {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status", "priority": 1},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
            ]
        });
        let cols = PrinterColumn::for_crd_version(&version).unwrap();
        let defs = custom_column_definitions(&cols);
        assert_eq!(defs.len(), 5);
        assert_eq!(defs[0]["name"], "Name");
        assert_eq!(defs[0]["format"], "name");
        assert_eq!(
            defs[1]["description"],
            "Custom resource definition column (in JSONPath format): .spec.cronSpec"
        );
        assert_eq!(defs[3]["priority"], 1);
        let obj = json!({
            "metadata": {"name": "my-cron", "creationTimestamp": "2025-01-02T03:04:05Z"},
            "spec": {"cronSpec": "* * * * */5", "replicas": 2},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        });
        assert_eq!(
            custom_row_cells(&cols, &obj, now()),
            vec![
                json!("my-cron"),
                json!("* * * * */5"),
                json!(2),
                json!("True"),
                json!("5m")
            ]
        );
        let sparse = json!({"metadata": {"name": "x"}, "spec": {"replicas": "two"}});
        assert_eq!(
            custom_row_cells(&cols, &sparse, now()),
            vec![
                json!("x"),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null
            ]
        );
    }

    #[test]
    fn crds_without_columns_get_age() {
        let cols = PrinterColumn::for_crd_version(&json!({"name": "v1"})).unwrap();
        let t = custom_table(
            &crontab_res(),
            &cols,
            &[json!({"metadata": {"name": "a", "creationTimestamp": "2025-01-02T03:04:05Z"}})],
            IncludeObject::Metadata,
            "7",
            None,
            None,
            now(),
        );
        assert_eq!(t["columnDefinitions"][1]["name"], "Age");
        assert_eq!(t["columnDefinitions"][1]["type"], "date");
        assert_eq!(t["rows"][0]["cells"], json!(["a", "5m"]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn typed_columns_convert_like_upstream() {
        let cols = PrinterColumn::from_declared(&[
            json!({"name": "I", "type": "integer", "jsonPath": ".spec.i"}),
            json!({"name": "N", "type": "number", "jsonPath": ".spec.n"}),
            json!({"name": "W", "type": "number", "jsonPath": ".spec.w"}),
            json!({"name": "B", "type": "boolean", "jsonPath": ".spec.b"}),
            json!({"name": "D", "type": "date", "jsonPath": ".spec.d"}),
            json!({"name": "Bad", "type": "date", "jsonPath": ".spec.bad"}),
            json!({"name": "First", "type": "string", "jsonPath": ".spec.list[*].name"}),
        ])
        .unwrap();
        let obj = json!({"metadata": {"name": "x"}, "spec": {
            "i": 2.7, "n": 1.5, "w": 4, "b": true, "d": "2025-01-01T03:09:05Z",
            "bad": "yesterday", "list": [{"name": "a"}, {"name": "b"}]
        }});
        assert_eq!(
            custom_row_cells(&cols, &obj, now()),
            vec![
                json!("x"),
                json!(2),
                json!(1.5),
                json!(4),
                json!(true),
                json!("24h"),
                json!("<invalid>"),
                json!("a")
            ]
        );
    }

    #[test]
    fn string_columns_print_any_value_like_go() {
        let version = json!({"additionalPrinterColumns": [
            {"name": "Tags", "type": "string", "jsonPath": ".spec.tags"},
            {"name": "Size", "type": "string", "jsonPath": ".spec.size"}
        ]});
        let cols = PrinterColumn::for_crd_version(&version).unwrap();
        let obj = json!({"metadata": {"name": "a"}, "spec": {"tags": ["x", "y"], "size": 3}});
        assert_eq!(
            custom_row_cells(&cols, &obj, now()),
            vec![json!("a"), json!("[x y]"), json!("3")]
        );
    }
}
