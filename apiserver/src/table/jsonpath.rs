//! The part of k8s.io/client-go/util/jsonpath that CRD `additionalPrinterColumns` use:
//! `.field`, `['field']`, `[n]` (negative from the end), `[a:b]`, `[*]`, `.*`, `..field` and
//! filters `[?(@.path == "x")]` (`==`, `!=`, `<`, `<=`, `>`, `>=`, or bare existence).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    /// A number literal without a `.` (client-go's IntNode).
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Wildcard,
    Recursive(String),
    Index(i64),
    Slice(Option<i64>, Option<i64>),
    Filter {
        path: Vec<Step>,
        op: Option<(String, Literal)>,
    },
}

/// A parsed path. Missing keys yield no results (`AllowMissingKeys(true)`); what client-go
/// refuses while evaluating (filtering a non-list, comparing values of different kinds, a
/// filter path with several values) is an error.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    /// Parses a CRD column path such as `.status.conditions[?(@.type=="Ready")].status`
    /// (with or without surrounding `{}`).
    pub fn parse(path: &str) -> Result<Self, String> {
        let trimmed = path.trim();
        let inner = trimmed
            .strip_prefix('{')
            .and_then(|p| p.strip_suffix('}'))
            .unwrap_or(trimmed);
        let chars: Vec<char> = inner.chars().collect();
        let mut pos = 0;
        let steps = parse_steps(&chars, &mut pos, false)?;
        if pos != chars.len() {
            return Err(format!("unexpected {:?} in {path:?}", chars[pos]));
        }
        Ok(JsonPath { steps })
    }

    /// Every value the path selects, in document order (nothing when evaluation fails).
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        self.try_find(root).unwrap_or_default()
    }

    /// Every value the path selects, or why client-go's evaluation would fail.
    pub fn try_find<'a>(&self, root: &'a Value) -> Result<Vec<&'a Value>, String> {
        eval(&self.steps, vec![root])
    }
}

fn parse_name(chars: &[char], pos: &mut usize) -> String {
    let start = *pos;
    while *pos < chars.len()
        && !matches!(chars[*pos], '.' | '[' | ' ' | ')' | '=' | '!' | '<' | '>')
    {
        *pos += 1;
    }
    chars[start..*pos].iter().collect()
}

fn parse_steps(chars: &[char], pos: &mut usize, in_filter: bool) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    if in_filter {
        if chars.get(*pos) != Some(&'@') {
            return Err("filter must start with @".into());
        }
        *pos += 1;
    } else if chars.get(*pos) == Some(&'$') {
        *pos += 1;
    }
    while *pos < chars.len() {
        match chars[*pos] {
            '.' if chars.get(*pos + 1) == Some(&'.') => {
                *pos += 2;
                let name = parse_name(chars, pos);
                if name.is_empty() {
                    return Err("missing field after ..".into());
                }
                steps.push(Step::Recursive(name));
            }
            '.' => {
                *pos += 1;
                if chars.get(*pos) == Some(&'*') {
                    *pos += 1;
                    steps.push(Step::Wildcard);
                } else {
                    let name = parse_name(chars, pos);
                    if !name.is_empty() {
                        steps.push(Step::Field(name));
                    }
                }
            }
            '[' => {
                *pos += 1;
                steps.push(parse_bracket(chars, pos)?);
            }
            _ if in_filter => break,
            c => return Err(format!("unexpected {c:?}")),
        }
    }
    Ok(steps)
}

fn skip_spaces(chars: &[char], pos: &mut usize) {
    while chars.get(*pos) == Some(&' ') {
        *pos += 1;
    }
}

fn parse_quoted(chars: &[char], pos: &mut usize) -> Result<String, String> {
    let quote = chars[*pos];
    *pos += 1;
    let mut out = String::new();
    while let Some(&c) = chars.get(*pos) {
        *pos += 1;
        if c == '\\' {
            if let Some(&next) = chars.get(*pos) {
                out.push(next);
                *pos += 1;
            }
        } else if c == quote {
            return Ok(out);
        } else {
            out.push(c);
        }
    }
    Err("unterminated string".into())
}

fn parse_bracket(chars: &[char], pos: &mut usize) -> Result<Step, String> {
    skip_spaces(chars, pos);
    let step = match chars.get(*pos) {
        Some('\'') | Some('"') => Step::Field(parse_quoted(chars, pos)?),
        Some('*') => {
            *pos += 1;
            Step::Wildcard
        }
        Some('?') => {
            *pos += 1;
            if chars.get(*pos) != Some(&'(') {
                return Err("expected ( after ?".into());
            }
            *pos += 1;
            skip_spaces(chars, pos);
            let path = parse_steps(chars, pos, true)?;
            skip_spaces(chars, pos);
            let mut op = None;
            if chars.get(*pos) != Some(&')') {
                let start = *pos;
                while matches!(chars.get(*pos), Some('=' | '!' | '<' | '>')) {
                    *pos += 1;
                }
                let operator: String = chars[start..*pos].iter().collect();
                if !matches!(operator.as_str(), "==" | "!=" | "<" | "<=" | ">" | ">=") {
                    return Err(format!("unsupported filter operator {operator:?}"));
                }
                skip_spaces(chars, pos);
                let literal = match chars.get(*pos) {
                    Some('\'') | Some('"') => Literal::Str(parse_quoted(chars, pos)?),
                    _ => {
                        let start = *pos;
                        while chars.get(*pos).is_some_and(|c| *c != ')' && *c != ' ') {
                            *pos += 1;
                        }
                        let word: String = chars[start..*pos].iter().collect();
                        match word.as_str() {
                            "true" => Literal::Bool(true),
                            "false" => Literal::Bool(false),
                            w if w.contains('.') => Literal::Float(
                                w.parse()
                                    .map_err(|_| format!("invalid filter value {w:?}"))?,
                            ),
                            w => Literal::Int(
                                w.parse()
                                    .map_err(|_| format!("invalid filter value {w:?}"))?,
                            ),
                        }
                    }
                };
                skip_spaces(chars, pos);
                op = Some((operator, literal));
            }
            if chars.get(*pos) != Some(&')') {
                return Err("expected ) closing the filter".into());
            }
            *pos += 1;
            Step::Filter { path, op }
        }
        _ => {
            let start = *pos;
            while chars.get(*pos).is_some_and(|c| *c != ']') {
                *pos += 1;
            }
            let text: String = chars[start..*pos].iter().collect::<String>();
            let text = text.trim();
            let int = |t: &str| -> Result<Option<i64>, String> {
                if t.trim().is_empty() {
                    Ok(None)
                } else {
                    t.trim()
                        .parse()
                        .map(Some)
                        .map_err(|_| format!("invalid index {t:?}"))
                }
            };
            match text.split_once(':') {
                Some((a, b)) => {
                    let b = b.split(':').next().unwrap_or("");
                    Step::Slice(int(a)?, int(b)?)
                }
                None => Step::Index(int(text)?.ok_or("empty index")?),
            }
        }
    };
    skip_spaces(chars, pos);
    if chars.get(*pos) != Some(&']') {
        return Err("expected ]".into());
    }
    *pos += 1;
    Ok(step)
}

fn recursive_collect<'a>(v: &'a Value, name: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if let Some(found) = m.get(name) {
                out.push(found);
            }
            for child in m.values() {
                recursive_collect(child, name, out);
            }
        }
        Value::Array(a) => {
            for child in a {
                recursive_collect(child, name, out);
            }
        }
        _ => {}
    }
}

/// Go template comparison (`template.Equal`, `Less` ...) of a JSON value with a literal:
/// integers with integers, floats with floats, strings with strings, booleans only for
/// (in)equality; anything else is an error, as in client-go.
fn compare(actual: &Value, op: &str, literal: &Literal) -> Result<bool, String> {
    use std::cmp::Ordering;
    let ordering = match (actual, literal) {
        (Value::String(a), Literal::Str(b)) => Some(a.as_str().cmp(b.as_str())),
        (Value::Number(a), Literal::Int(b)) if a.is_i64() || a.is_u64() => {
            a.as_i64().map(|a| a.cmp(b)).or(Some(Ordering::Greater))
        }
        (Value::Number(a), Literal::Float(b)) if a.is_f64() => {
            a.as_f64().and_then(|a| a.partial_cmp(b))
        }
        (Value::Bool(a), Literal::Bool(b)) if op == "==" || op == "!=" => Some(a.cmp(b)),
        (Value::Bool(_), Literal::Bool(_)) => {
            return Err("invalid type for comparison".into());
        }
        _ => return Err("incompatible types for comparison".into()),
    };
    let Some(o) = ordering else {
        return Ok(false);
    };
    Ok(match op {
        "==" => o == Ordering::Equal,
        "!=" => o != Ordering::Equal,
        "<" => o == Ordering::Less,
        "<=" => o != Ordering::Greater,
        ">" => o == Ordering::Greater,
        _ => o != Ordering::Less,
    })
}

fn eval<'a>(steps: &[Step], mut current: Vec<&'a Value>) -> Result<Vec<&'a Value>, String> {
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            match step {
                Step::Field(name) => {
                    if let Some(found) = v.get(name.as_str()) {
                        next.push(found);
                    }
                }
                Step::Wildcard => match v {
                    Value::Object(m) => next.extend(m.values()),
                    Value::Array(a) => next.extend(a.iter()),
                    _ => {}
                },
                Step::Recursive(name) => recursive_collect(v, name, &mut next),
                Step::Index(i) => {
                    if let Some(a) = v.as_array() {
                        let len = a.len() as i64;
                        let idx = if *i < 0 { len + i } else { *i };
                        if (0..len).contains(&idx) {
                            next.push(&a[idx as usize]);
                        }
                    }
                }
                Step::Slice(start, end) => {
                    if let Some(a) = v.as_array() {
                        let len = a.len() as i64;
                        let clamp = |x: i64| {
                            let x = if x < 0 { len + x } else { x };
                            x.clamp(0, len)
                        };
                        let s = clamp(start.unwrap_or(0));
                        let e = clamp(end.unwrap_or(len));
                        if s < e {
                            next.extend(a[s as usize..e as usize].iter());
                        }
                    }
                }
                Step::Filter { path, op } => {
                    let Value::Array(items) = v else {
                        return Err(format!("{v} is not array or slice and cannot be filtered"));
                    };
                    for item in items {
                        let found = eval(path, vec![item]);
                        let keep = match op {
                            // Existence ignores evaluation errors of the left side.
                            None => found.is_ok_and(|f| !f.is_empty()),
                            Some((operator, literal)) => match found?.as_slice() {
                                [] => false,
                                [one] => compare(one, operator, literal)?,
                                _ => return Err("can only compare one element at a time".into()),
                            },
                        };
                        if keep {
                            next.push(item);
                        }
                    }
                }
            }
        }
        current = next;
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn find(path: &str, v: &Value) -> Vec<Value> {
        JsonPath::parse(path)
            .unwrap()
            .find(v)
            .into_iter()
            .cloned()
            .collect()
    }

    #[test]
    fn filters_compare_numbers_booleans_and_missing_values() {
        let obj = json!({"items": [
            {"name": "a", "n": 1, "on": true},
            {"name": "b", "n": 5, "on": false},
            {"name": "c"}
        ]});
        assert_eq!(find(".items[?(@.n > 2)].name", &obj), [json!("b")]);
        assert_eq!(find(".items[?(@.n<=1)].name", &obj), [json!("a")]);
        assert_eq!(find(".items[?(@.on==true)].name", &obj), [json!("a")]);
        // Items without the value are skipped, even by `!=` (client-go's evalFilter).
        assert_eq!(find(".items[?(@.n != 1)].name", &obj), [json!("b")]);
        assert_eq!(find("$.items[-1:].name", &obj), [json!("c")]);
        // What client-go refuses is an error (the printer column's cell is then empty).
        let path = |p: &str| JsonPath::parse(p).unwrap();
        assert!(path(".items[?(@.n == 1.0)]").try_find(&obj).is_err());
        assert!(path(".items[?(@.name == 1)]").try_find(&obj).is_err());
        assert!(path(".items[?(@.on < true)]").try_find(&obj).is_err());
        assert!(path(".items[0][?(@.n == 1)]").try_find(&obj).is_err());
        let floats = json!({"items": [{"x": 1.5}, {"x": 2.5}]});
        assert_eq!(path(".items[?(@.x > 2.0)].x").find(&floats), [&json!(2.5)]);
        assert_eq!(find(".items[*].n", &obj), [json!(1), json!(5)]);
    }

    #[test]
    fn paths_used_by_printer_columns() {
        let obj = json!({
            "spec": {"replicas": 3, "hosts": ["a", "b", "c"], "labels": {"x.y/z": "1"}},
            "status": {"conditions": [
                {"type": "Progressing", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "Waiting"}
            ]}
        });
        assert_eq!(find(".spec.replicas", &obj), [json!(3)]);
        assert_eq!(find("{.spec.replicas}", &obj), [json!(3)]);
        assert_eq!(find(".spec.hosts[1]", &obj), [json!("b")]);
        assert_eq!(find(".spec.hosts[-1]", &obj), [json!("c")]);
        assert_eq!(find(".spec.hosts[0:2]", &obj), [json!("a"), json!("b")]);
        assert_eq!(find(".spec.hosts[*]", &obj).len(), 3);
        assert_eq!(find(".spec.labels['x.y/z']", &obj), [json!("1")]);
        assert_eq!(
            find(r#".status.conditions[?(@.type=="Ready")].status"#, &obj),
            [json!("False")]
        );
        assert_eq!(
            find(".status.conditions[?(@.type == 'Ready')].reason", &obj),
            [json!("Waiting")]
        );
        assert_eq!(
            find(".status.conditions[?(@.reason)].type", &obj),
            [json!("Ready")]
        );
        assert_eq!(find("..status", &obj).len(), 3);
        assert!(find(".spec.missing.deeper", &obj).is_empty());
        assert_eq!(
            find(".spec.labels.*", &obj),
            [json!("1")],
            "object wildcard"
        );
        assert!(JsonPath::parse(".a[?(@.b=)]").is_err());
        assert!(JsonPath::parse(".a[").is_err());
    }
}
