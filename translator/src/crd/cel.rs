//! `x-kubernetes-validations`: CEL rules on custom resources, evaluated with the `cel`
//! crate (cel-rust). `self` is the value at the rule's schema node, `oldSelf` the value at
//! the same place in the stored object on an update (transition rules, those naming
//! `oldSelf`, are skipped on create and where no old value correlates, as upstream does).
//! `message`, `messageExpression`, `reason` and `fieldPath` shape the cause.
//!
//! Of the Kubernetes CEL libraries, `library` adds `duration` (for comparisons), `isIP`,
//! `isCIDR`, `isURL`, `lowerAscii` and `upperAscii`. Not covered (see ADR 0007): cost limits
//! and estimation, the rest of those libraries (`isSorted`, `quantity`, `url`, `ip`,
//! `format` ...: rules calling them are skipped), type-checking at CRD creation (rules are
//! only parsed), `optionalOldSelf`, and timestamps (the crate's chrono feature is off).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::error::Cause;
use crate::validation::field;

mod library;

/// Parses a rule; the error is the parser's message.
pub fn compile(expr: &str) -> Result<cel::Program, String> {
    // The parser may panic on pathological input; a CRD must never take the server down.
    match std::panic::catch_unwind(|| cel::Program::compile(expr)) {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the expression could not be parsed".to_string()),
    }
}

/// Parsed rules by source text: a rule is parsed once, not on every write.
static PROGRAMS: std::sync::LazyLock<std::sync::Mutex<HashMap<String, Arc<cel::Program>>>> =
    std::sync::LazyLock::new(|| std::sync::Mutex::new(HashMap::new()));

/// How many parsed rules are kept (the cache starts over past this).
const PROGRAM_CACHE_LIMIT: usize = 4096;

/// `compile`, through the cache.
fn program(expr: &str) -> Result<Arc<cel::Program>, String> {
    let mut cache = PROGRAMS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(p) = cache.get(expr) {
        return Ok(p.clone());
    }
    let p = Arc::new(compile(expr)?);
    if cache.len() >= PROGRAM_CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(expr.to_string(), p.clone());
    Ok(p)
}

/// The part of upstream's CEL type-check that catches most mistakes: every field selected
/// from `self`/`oldSelf` (`self.spec.replicas`, `has(self.x)`) must be a property of the
/// schema at that place (maps and preserve-unknown-fields objects take any key). Returns
/// upstream's wording, `undefined field 'x'`.
pub fn check_fields(expr: &str, schema: &Value) -> Result<(), String> {
    let program = compile(expr)?;
    check_expr(program.expression(), schema)
}

fn check_expr(e: &cel::common::ast::IdedExpr, schema: &Value) -> Result<(), String> {
    use cel::common::ast::{EntryExpr, Expr};
    match &e.expr {
        Expr::Select(sel) => {
            // Collect `base.f1.f2...` from the inside out.
            let mut fields = vec![sel.field.as_str()];
            let mut base = sel.operand.as_ref();
            while let Expr::Select(inner) = &base.expr {
                fields.push(inner.field.as_str());
                base = inner.operand.as_ref();
            }
            match &base.expr {
                Expr::Ident(name) if name == "self" || name == "oldSelf" => {
                    let mut node = schema;
                    for f in fields.iter().rev() {
                        match field_schema(node, f) {
                            FieldAt::Known(next) => node = next,
                            FieldAt::Any => return Ok(()),
                            FieldAt::Undefined => return Err(format!("undefined field '{f}'")),
                        }
                    }
                    Ok(())
                }
                _ => check_expr(base, schema),
            }
        }
        Expr::Call(call) => {
            if let Some(t) = &call.target {
                check_expr(t, schema)?;
            }
            call.args.iter().try_for_each(|a| check_expr(a, schema))
        }
        Expr::Comprehension(c) => {
            for part in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                check_expr(part, schema)?;
            }
            Ok(())
        }
        Expr::List(l) => l.elements.iter().try_for_each(|x| check_expr(x, schema)),
        Expr::Map(m) => m.entries.iter().try_for_each(|entry| match &entry.expr {
            EntryExpr::MapEntry(me) => {
                check_expr(&me.key, schema)?;
                check_expr(&me.value, schema)
            }
            EntryExpr::StructField(sf) => check_expr(&sf.value, schema),
        }),
        _ => Ok(()),
    }
}

enum FieldAt<'s> {
    Known(&'s Value),
    /// A map or an object that keeps unknown fields: any key may be selected.
    Any,
    Undefined,
}

fn field_schema<'s>(node: &'s Value, f: &str) -> FieldAt<'s> {
    if let Some(p) = node
        .get("properties")
        .and_then(Value::as_object)
        .and_then(|props| {
            props
                .iter()
                .find(|(name, _)| escape_property(name).as_deref() == Some(f))
                .map(|(_, p)| p)
        })
    {
        return FieldAt::Known(p);
    }
    // apiVersion, kind and metadata exist on every object at the root.
    if matches!(f, "apiVersion" | "kind" | "metadata")
        && node
            .get("properties")
            .is_some_and(|p| p.get("spec").is_some() || p.get("status").is_some())
    {
        return FieldAt::Any;
    }
    let open = node
        .get("additionalProperties")
        .is_some_and(|a| !a.is_null())
        || node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
        || node.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true))
        || node
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(|t| t != "object");
    if open {
        FieldAt::Any
    } else {
        FieldAt::Undefined
    }
}

/// CEL's reserved words: a property so named is selected as `__name__` (`p.__namespace__`).
const CEL_RESERVED: [&str; 21] = [
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// Upstream's property-name escaping (apiserver `cel.Escape`): reserved words become
/// `__word__`; otherwise `__` → `__underscores__`, `.` → `__dot__`, `-` → `__dash__`,
/// `/` → `__slash__`. None for a name CEL cannot select (outside `[a-zA-Z_.-/][a-zA-Z0-9_.-/]*`).
pub fn escape_property(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '_' | '.' | '-' | '/'));
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
    {
        return None;
    }
    if CEL_RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("__") {
            out.push_str("__underscores__");
            rest = &rest[2..];
            continue;
        }
        match c {
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            _ => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}

/// A JSON value as CEL sees it at a schema node: whole numbers are `int`, objects are
/// maps. An object with `properties` is a CEL object whose field names are escaped
/// (`escape_property`); a map's (`additionalProperties`) keys stay as they are.
pub fn to_cel_at(schema: &Value, v: &Value) -> cel::Value {
    match v {
        Value::Array(items) => {
            let sub = schema.get("items").unwrap_or(&Value::Null);
            cel::Value::List(Arc::new(items.iter().map(|i| to_cel_at(sub, i)).collect()))
        }
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties").filter(|a| a.is_object());
            let m: HashMap<String, cel::Value> = match props {
                Some(props) => map
                    .iter()
                    .filter_map(|(k, v)| {
                        let sub = props.get(k).unwrap_or(&Value::Null);
                        escape_property(k).map(|name| (name, to_cel_at(sub, v)))
                    })
                    .collect(),
                None => {
                    let sub = extra.unwrap_or(&Value::Null);
                    map.iter()
                        .map(|(k, v)| (k.clone(), to_cel_at(sub, v)))
                        .collect()
                }
            };
            cel::Value::from(m)
        }
        _ => to_cel(v),
    }
}

/// A JSON value as CEL sees it without a schema: whole numbers are `int`, objects are maps.
pub fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => cel::Value::Int(i),
            None => match n.as_u64() {
                Some(u) => cel::Value::UInt(u),
                None => cel::Value::Float(n.as_f64().unwrap_or_default()),
            },
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(map) => {
            let m: HashMap<String, cel::Value> =
                map.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            cel::Value::from(m)
        }
    }
}

/// Evaluates every rule in the schema against `obj` (and `old` on update).
pub fn validate(schema: &Value, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    walk(schema, obj, old, "", true, &mut causes);
    causes
}

fn walk(
    schema: &Value,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    root: bool,
    causes: &mut Vec<Cause>,
) {
    if !schema.is_object() || v.is_null() {
        return;
    }
    if let Some(Value::Array(rules)) = schema.get("x-kubernetes-validations") {
        for rule in rules {
            check_rule(rule, schema, v, old, path, causes);
        }
    }
    match v {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, sub) in props {
                    if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    if let Some(child) = map.get(k) {
                        let old_child = old.and_then(|o| o.get(k));
                        walk(sub, child, old_child, &field::child(path, k), false, causes);
                    }
                }
            } else if let Some(sub) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                for (k, child) in map {
                    let old_child = old.and_then(|o| o.get(k));
                    walk(sub, child, old_child, &field::child(path, k), false, causes);
                }
            }
        }
        Value::Array(items) => {
            let Some(sub) = schema.get("items").filter(|s| s.is_object()) else {
                return;
            };
            let map_keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let is_map =
                schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map");
            for (i, item) in items.iter().enumerate() {
                // Only map-list items correlate with an old item (by their keys).
                let old_item = if is_map {
                    old.and_then(Value::as_array).and_then(|olds| {
                        olds.iter()
                            .find(|o| map_keys.iter().all(|k| o.get(*k) == item.get(*k)))
                    })
                } else {
                    None
                };
                walk(sub, item, old_item, &field::index(path, i), false, causes);
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check_rule(
    rule: &Value,
    schema: &Value,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    causes: &mut Vec<Cause>,
) {
    let Some(expr) = rule.get("rule").and_then(Value::as_str) else {
        return;
    };
    let program = match program(expr) {
        Ok(p) => p,
        Err(e) => {
            causes.push(field::invalid(
                path,
                &Value::from(type_name(v)),
                &format!("compilation failed: {e}"),
            ));
            return;
        }
    };
    let transition = program.references().has_variable("oldSelf");
    if transition && old.is_none() {
        return;
    }
    let mut ctx = cel::Context::default();
    library::install(&mut ctx);
    ctx.add_variable_from_value("self", to_cel_at(schema, v));
    if let Some(old) = old {
        ctx.add_variable_from_value("oldSelf", to_cel_at(schema, old));
    }
    let outcome =
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| program.execute(&ctx))) {
            Ok(r) => r,
            Err(_) => {
                causes.push(field::invalid(
                    path,
                    &Value::from(type_name(v)),
                    "rule evaluation panicked",
                ));
                return;
            }
        };
    let failed_message = match outcome {
        Ok(cel::Value::Bool(true)) => return,
        // A function or method the cel crate does not have (Kubernetes' CEL libraries:
        // `isURL`, `quantity`, `lowerAscii` ...): the rule cannot be evaluated here, and
        // refusing every object over it would refuse what upstream accepts.
        Err(cel::ExecutionError::UndeclaredReference(name))
            if name.as_str() != "self" && name.as_str() != "oldSelf" =>
        {
            tracing::debug!(rule = expr, function = %name, "CEL rule uses an unsupported function; skipped");
            return;
        }
        Err(cel::ExecutionError::NotSupportedAsMethod { method, .. }) => {
            tracing::debug!(rule = expr, %method, "CEL rule uses an unsupported method; skipped");
            return;
        }
        Ok(cel::Value::Bool(false)) => message_for(rule, expr, &ctx),
        Ok(other) => format!("rule {expr:?} did not evaluate to a bool: {other:?}"),
        // Upstream: `<error> evaluating rule: <rule>`.
        Err(e) => format!("{e} evaluating rule: {expr}"),
    };
    let mut at = path.to_string();
    if let Some(fp) = rule.get("fieldPath").and_then(Value::as_str) {
        let fp = fp.trim_start_matches('.');
        if !fp.is_empty() {
            at = field::child(path, fp);
        }
    }
    let cause = match rule.get("reason").and_then(Value::as_str) {
        Some("FieldValueForbidden") => field::forbidden(&at, &failed_message),
        Some("FieldValueRequired") => field::required(&at, &failed_message),
        Some("FieldValueDuplicate") => Cause::new(
            "FieldValueDuplicate",
            &at,
            format!(
                "Duplicate value: {}: {failed_message}",
                field::go_quote(type_name(v))
            ),
        ),
        _ => field::invalid(&at, &Value::from(type_name(v)), &failed_message),
    };
    causes.push(cause);
}

/// The failure message: `messageExpression` if it evaluates to a non-empty string, else
/// `message`, else `failed rule: <rule>`.
fn message_for(rule: &Value, expr: &str, ctx: &cel::Context) -> String {
    if let Some(me) = rule.get("messageExpression").and_then(Value::as_str)
        && let Ok(p) = program(me)
        && let Ok(Ok(cel::Value::String(s))) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.execute(ctx)))
        && !s.trim().is_empty()
    {
        return s.to_string();
    }
    match rule.get("message").and_then(Value::as_str) {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => format!("failed rule: {expr}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.replicas <= self.maxReplicas", "message": "replicas must not exceed maxReplicas"},
                {"rule": "self.name.startsWith('w')", "messageExpression": "'name ' + self.name + ' must start with w'"},
                {"rule": "self.replicas >= oldSelf.replicas", "message": "may not scale down", "fieldPath": ".replicas"}
            ],
            "properties": {"replicas": {"type": "integer"}, "maxReplicas": {"type": "integer"}, "name": {"type": "string"},
                "mode": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "Value is immutable"}]}}}}})
    }

    #[test]
    fn rules_with_messages_and_expressions() {
        let ok = json!({"spec": {"replicas": 1, "maxReplicas": 3, "name": "web"}});
        assert!(validate(&schema(), &ok, None).is_empty());
        let bad = json!({"spec": {"replicas": 5, "maxReplicas": 3, "name": "app"}});
        let causes = validate(&schema(), &bad, None);
        let msgs: Vec<(String, String)> =
            causes.into_iter().map(|c| (c.field, c.message)).collect();
        assert_eq!(
            msgs,
            [
                (
                    "spec".to_string(),
                    "Invalid value: \"object\": replicas must not exceed maxReplicas".to_string()
                ),
                (
                    "spec".to_string(),
                    "Invalid value: \"object\": name app must start with w".to_string()
                ),
            ]
        );
    }

    #[test]
    fn transition_rules_use_old_self_on_update_only() {
        let old = json!({"spec": {"replicas": 3, "maxReplicas": 5, "name": "w", "mode": "a"}});
        let new = json!({"spec": {"replicas": 2, "maxReplicas": 5, "name": "w", "mode": "b"}});
        assert!(validate(&schema(), &new, None).is_empty());
        let causes = validate(&schema(), &new, Some(&old));
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["spec.replicas", "spec.mode"]);
        assert_eq!(
            causes[1].message,
            "Invalid value: \"string\": Value is immutable"
        );
    }

    #[test]
    fn common_rule_shapes_evaluate() {
        let obj = json!({"spec": {"replicas": 3, "name": "web-1", "tags": ["a", "bb"],
            "labels": {"x": "1"}, "ratio": 0.5, "mode": "fast"}});
        for (rule, want) in [
            ("self.replicas == 3", true),
            ("!has(self.missing) || self.missing > 0", true),
            ("has(self.name) && size(self.name) <= 5", true),
            ("self.tags.all(t, size(t) < 3)", true),
            ("self.tags.exists(t, t == 'bb')", true),
            ("self.labels.exists(k, k == 'x')", true),
            ("self.mode in ['fast', 'slow']", true),
            ("self.name.matches('^[a-z]+-[0-9]+$')", true),
            ("self.ratio < 1.0", true),
            ("self.replicas > 5", false),
        ] {
            let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "x-kubernetes-validations": [{"rule": rule}]}}});
            let causes = validate(&schema, &obj, None);
            assert_eq!(causes.is_empty(), want, "{rule}: {causes:?}");
        }
    }

    #[test]
    fn rules_naming_undefined_fields_are_refused() {
        let spec = &schema()["properties"]["spec"];
        assert!(check_fields("self.replicas <= self.maxReplicas", spec).is_ok());
        assert_eq!(
            check_fields("self.replica > 1", spec),
            Err("undefined field 'replica'".to_string())
        );
        assert_eq!(
            check_fields("has(self.nope)", spec),
            Err("undefined field 'nope'".to_string())
        );
        let open = json!({"type": "object", "additionalProperties": {"type": "string"}});
        assert!(check_fields("self.anything == 'x'", &open).is_ok());
    }

    #[test]
    fn evaluation_errors_name_the_rule() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"a": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "self.a > 1"}]}}});
        let causes = validate(&schema, &json!({"spec": {}}), None);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec");
        assert!(
            causes[0].message.ends_with("evaluating rule: self.a > 1"),
            "{}",
            causes[0].message
        );
    }

    #[test]
    fn rules_needing_unsupported_libraries_are_skipped() {
        for rule in [
            "quantity(self.u).isInteger()",
            "url(self.u).getScheme() == 'https'",
            "ip(self.u).family() == 4",
        ] {
            let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
                "properties": {"u": {"type": "string"}},
                "x-kubernetes-validations": [{"rule": rule}]}}});
            let causes = validate(&schema, &json!({"spec": {"u": "HTTP"}}), None);
            assert!(causes.is_empty(), "{rule}: {causes:?}");
        }
    }

    /// What real CRDs call from the Kubernetes libraries is evaluated, not skipped:
    /// Gateway API's timeouts rule, Istio's address and URL rules.
    #[test]
    fn kubernetes_library_functions_are_evaluated() {
        let timeouts = "!(has(self.request) && has(self.backendRequest) && duration(self.request) != duration('0s') && duration(self.backendRequest) > duration(self.request))";
        for (rule, spec, want) in [
            (
                timeouts,
                json!({"request": "1s", "backendRequest": "500ms"}),
                true,
            ),
            (
                timeouts,
                json!({"request": "1s", "backendRequest": "5s"}),
                false,
            ),
            (
                timeouts,
                json!({"request": "0s", "backendRequest": "5s"}),
                true,
            ),
            (
                "duration(self.request) >= duration('1ms')",
                json!({"request": "15s"}),
                true,
            ),
            (
                "self.addrs.all(a, isCIDR(a) || isIP(a))",
                json!({"addrs": ["10.0.0.0/8", "2001:db8::1"]}),
                true,
            ),
            (
                "self.addrs.all(a, isCIDR(a) || isIP(a))",
                json!({"addrs": ["not-an-ip"]}),
                false,
            ),
            (
                "isURL(self.u)",
                json!({"u": "oci://registry:5000/plugin:latest"}),
                true,
            ),
            ("isURL(self.u)", json!({"u": "HTTP"}), false),
            ("self.u.lowerAscii() == 'http'", json!({"u": "HTTP"}), true),
            ("self.u.upperAscii() == 'HTTP'", json!({"u": "http"}), true),
        ] {
            let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "x-kubernetes-validations": [{"rule": rule}]}}});
            let causes = validate(&schema, &json!({"spec": spec}), None);
            assert_eq!(causes.is_empty(), want, "{rule} on {spec}: {causes:?}");
        }
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "x-kubernetes-validations": [{"rule": "duration(self.d) > duration('1s')"}]}}});
        let causes = validate(&schema, &json!({"spec": {"d": "soon"}}), None);
        assert_eq!(causes.len(), 1);
        assert!(
            causes[0].message.contains("invalid duration"),
            "{}",
            causes[0].message
        );
    }

    /// Properties named like CEL keywords or with `-`, `.`, `/`, `__` are selected by their
    /// escaped names (Gateway API's parentRefs rule reads `p.__namespace__`); map keys are not.
    #[test]
    fn property_names_are_escaped_as_upstream() {
        assert_eq!(
            escape_property("namespace").as_deref(),
            Some("__namespace__")
        );
        assert_eq!(
            escape_property("a-b.c/d").as_deref(),
            Some("a__dash__b__dot__c__slash__d")
        );
        assert_eq!(
            escape_property("x__y").as_deref(),
            Some("x__underscores__y")
        );
        assert_eq!(escape_property("9lives"), None);
        let rule = "self.all(p1, self.all(p2, p1.name == p2.name && ((!has(p1.__namespace__) && !has(p2.__namespace__)) || (has(p1.__namespace__) && has(p2.__namespace__) && p1.__namespace__ == p2.__namespace__)) ? ((!has(p1.sectionName)) == (!has(p2.sectionName))) : true))";
        let schema = json!({"type": "object", "properties": {"refs": {"type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"},
                "namespace": {"type": "string"}, "sectionName": {"type": "string"}}},
            "x-kubernetes-validations": [{"rule": rule}]}}});
        let other_namespaces = json!({"refs": [{"name": "gw", "namespace": "a"}, {"name": "gw", "namespace": "b", "sectionName": "x"}]});
        assert!(validate(&schema, &other_namespaces, None).is_empty());
        let same_namespace = json!({"refs": [{"name": "gw", "namespace": "a"}, {"name": "gw", "namespace": "a", "sectionName": "x"}]});
        assert_eq!(validate(&schema, &same_namespace, None).len(), 1);
        assert!(check_fields("self.refs[0].__namespace__ == 'a'", &schema).is_ok());
        let labels = json!({"type": "object", "properties": {"labels": {"type": "object",
            "additionalProperties": {"type": "string"},
            "x-kubernetes-validations": [{"rule": "self['app.kubernetes.io/name'] == 'web' && self.all(k, !k.contains('*'))"}]}}});
        assert!(
            validate(
                &labels,
                &json!({"labels": {"app.kubernetes.io/name": "web"}}),
                None
            )
            .is_empty()
        );
    }

    #[test]
    fn bad_rules_do_not_compile() {
        assert!(compile("self.a ==").is_err());
        assert!(compile("self.a == 1").is_ok());
    }
}
