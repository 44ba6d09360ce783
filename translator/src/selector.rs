//! Label and field selectors, parsed, validated and matched exactly as
//! k8s.io/apimachinery (`labels.Parse`, `fields.ParseSelector`) and the per-kind field label
//! conversions of kube-apiserver do it, including their error wording: clients such as kubectl
//! print those messages verbatim.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::registry::ResourceInfo;

// ---------------------------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------------------------

/// A label requirement operator (`selection.Operator` upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One `key op values` term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement with upstream's `NewRequirement` validation.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, ApiError> {
        let mut errors: Vec<String> = Vec::new();
        if let Some(e) = validate_label_key(key, Some("key")) {
            errors.push(e);
        }
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errors.push(format!(
                        "values: Invalid value: {}: for 'in', 'notin' operators, values set can't be empty",
                        go_string_slice(&values)
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errors.push(format!(
                        "values: Invalid value: {}: exact-match compatibility requires one single value",
                        go_string_slice(&values)
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errors.push(format!(
                        "values: Invalid value: {}: values set must be empty for exists and does not exist",
                        go_string_slice(&values)
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errors.push(format!(
                        "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                        go_string_slice(&values)
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errors.push(format!(
                            "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                            go_quote(v)
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = label_value_errors(v);
            if !msgs.is_empty() {
                errors.push(format!(
                    "values[{i}][{key}]: Invalid value: {}: {}",
                    go_quote(v),
                    msgs.join("; ")
                ));
            }
        }
        if let Some(message) = aggregate(errors) {
            return Err(ApiError::bad_request(message));
        }
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }
    pub fn operator(&self) -> Operator {
        self.operator
    }
    pub fn values(&self) -> &[String] {
        &self.values
    }

    fn has_value(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }

    /// Whether a label set satisfies this requirement (upstream `Requirement.Matches`).
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        let value = labels.get(&self.key).map(label_text);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.has_value(&v))
            }
            Operator::NotIn | Operator::NotEquals => value.is_none_or(|v| !self.has_value(&v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(actual)) = value.map(|v| v.parse::<i64>()) else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        let mut values = self.values.clone();
        values.sort();
        f.write_str(&values.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector: the AND of its requirements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    /// `labels.Nothing()`: what a null `spec.selector` object converts to.
    nothing: bool,
}

impl LabelSelector {
    /// Matches every object.
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// Matches no object (a missing selector object, as upstream's `LabelSelectorAsSelector(nil)`).
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the `labelSelector` query parameter syntax (`a=b,c in (x,y),!d,e>1`).
    pub fn parse(selector: &str) -> Result<Self, ApiError> {
        let tokens = lex(selector);
        let mut parser = Parser {
            tokens,
            position: 0,
        };
        let mut requirements = parser.parse().map_err(ApiError::bad_request)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// A selector matching exactly the given label set (`labels.SelectorFromSet`), as used by
    /// Service and ReplicationController selectors; an empty set matches everything.
    pub fn from_set(set: &Map<String, Value>) -> Self {
        let mut requirements: Vec<Requirement> = set
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![label_text(v)],
            })
            .collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// Converts a `metav1.LabelSelector` object (`matchLabels` + `matchExpressions`), as
    /// `spec.selector` of Deployments and friends: null matches nothing, `{}` everything.
    pub fn from_label_selector_object(selector: &Value) -> Result<Self, ApiError> {
        let obj = match selector {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(obj) => obj,
            other => {
                return Err(ApiError::bad_request(format!(
                    "label selector must be an object, got {other}"
                )));
            }
        };
        let mut requirements = Vec::new();
        if let Some(match_labels) = obj.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in match_labels {
                requirements.push(Requirement::new(k, Operator::Equals, vec![label_text(v)])?);
            }
        }
        if let Some(exprs) = obj.get("matchExpressions").and_then(Value::as_array) {
            for expr in exprs {
                let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
                let op_name = expr.get("operator").and_then(Value::as_str).unwrap_or("");
                let operator = match op_name {
                    "In" => Operator::In,
                    "NotIn" => Operator::NotIn,
                    "Exists" => Operator::Exists,
                    "DoesNotExist" => Operator::DoesNotExist,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "{} is not a valid label selector operator",
                            go_quote(other)
                        )));
                    }
                };
                let values = expr
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|vs| vs.iter().map(label_text).collect())
                    .unwrap_or_default();
                requirements.push(Requirement::new(key, operator, values)?);
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// True when the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for the selector that matches nothing.
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Matches a label map.
    pub fn matches_map(&self, labels: &Map<String, Value>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Matches a labels value (an object, or null/absent for no labels).
    pub fn matches(&self, labels: &Value) -> bool {
        match labels.as_object() {
            Some(map) => self.matches_map(map),
            None => self.matches_map(&Map::new()),
        }
    }

    /// Matches an object by its `metadata.labels`.
    pub fn matches_object(&self, object: &Value) -> bool {
        self.matches(&object["metadata"]["labels"])
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(|r| r.to_string()).collect();
        f.write_str(&parts.join(","))
    }
}

/// The text of a label value; labels are strings, anything else is rendered as JSON.
fn label_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Tokenises like upstream's `Lexer`; a NUL byte ends the input as it does there.
fn lex(input: &str) -> Vec<(Token, String)> {
    let bytes = input.as_bytes();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        while pos < end && is_whitespace(bytes[pos]) {
            pos += 1;
        }
        if pos >= end {
            out.push((Token::EndOfString, String::new()));
            return out;
        }
        if is_special(bytes[pos]) {
            // Longest run of special characters that still forms a token.
            let start = pos;
            let mut last: Option<(Token, usize)> = None;
            let mut cur = pos;
            while cur < end && is_special(bytes[cur]) {
                cur += 1;
                match keyword(&input[start..cur]) {
                    Some(t) => last = Some((t, cur)),
                    None if last.is_some() => break,
                    None => {}
                }
            }
            match last {
                Some((tok, stop)) => {
                    out.push((tok, input[start..stop].to_string()));
                    pos = stop;
                }
                None => {
                    // Unreachable with the current token table (every special byte is a token),
                    // kept so malformed input can never loop forever.
                    out.push((
                        Token::Identifier,
                        format!("error expected: keyword found '{}'", &input[start..cur]),
                    ));
                    pos = cur;
                }
            }
        } else {
            let start = pos;
            while pos < end && !is_special(bytes[pos]) && !is_whitespace(bytes[pos]) {
                pos += 1;
            }
            let lit = &input[start..pos];
            let tok = keyword(lit).unwrap_or(Token::Identifier);
            out.push((tok, lit.to_string()));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    tokens: Vec<(Token, String)>,
    position: usize,
}

impl Parser {
    fn at(&self, i: usize, ctx: Context) -> (Token, String) {
        let (tok, lit) = self
            .tokens
            .get(i)
            .cloned()
            .unwrap_or((Token::EndOfString, String::new()));
        let tok = match (ctx, tok) {
            (Context::Values, Token::In | Token::NotIn) => Token::Identifier,
            (_, t) => t,
        };
        (tok, lit)
    }
    fn lookahead(&self, ctx: Context) -> (Token, String) {
        self.at(self.position, ctx)
    }
    fn consume(&mut self, ctx: Context) -> (Token, String) {
        let item = self.at(self.position, ctx);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(r);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(op) = inferred {
            return Requirement::new(&key, op, Vec::new()).map_err(|e| e.to_string());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(&key, operator, values.into_iter().collect()).map_err(|e| e.to_string())
    }

    /// Returns the key and, when the requirement has no binary operator, Exists/DoesNotExist.
    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let mut not = false;
        let (mut tok, mut lit) = self.consume(Context::Values);
        if tok == Token::DoesNotExist {
            not = true;
            (tok, lit) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        if let Some(e) = validate_label_key(&lit, None) {
            return Err(e);
        }
        let (next, _) = self.lookahead(Context::Values);
        let op = if not {
            Some(Operator::DoesNotExist)
        } else if next == Token::EndOfString || next == Token::Comma {
            Some(Operator::Exists)
        } else {
            None
        };
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        })
    }

    /// `(a,b,c)`; returned sorted and de-duplicated, as upstream's string set.
    fn parse_values(&mut self) -> Result<std::collections::BTreeSet<String>, String> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let set = self.parse_identifiers_list()?;
                let (closing, _) = self.consume(Context::Values);
                if closing != Token::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(std::iter::once(String::new()).collect())
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<std::collections::BTreeSet<String>, String> {
        let mut set = std::collections::BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    set.insert(lit);
                    let (tok2, lit2) = self.lookahead(Context::Values);
                    match tok2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set),
                        _ => return Err(format!("found '{lit2}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (tok2, _) = self.lookahead(Context::Values);
                    if tok2 == Token::ClosedPar {
                        set.insert(String::new());
                        return Ok(set);
                    }
                    if tok2 == Token::Comma {
                        set.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<std::collections::BTreeSet<String>, String> {
        let (tok, _) = self.lookahead(Context::Values);
        if tok == Token::EndOfString || tok == Token::Comma {
            return Ok(std::iter::once(String::new()).collect());
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            return Ok(std::iter::once(lit).collect());
        }
        Err(format!("found '{lit}', expected: identifier"))
    }
}

// --- upstream validation messages (k8s.io/apimachinery/pkg/util/validation) ---------------------

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, anchored.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
                && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// `validation.IsQualifiedName` messages for a label key.
fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                if prefix.len() > 253 {
                    errs.push("prefix part must be no more than 253 characters".to_string());
                }
                if !is_dns1123_subdomain(prefix) {
                    errs.push(format!(
                        "prefix part {}",
                        regex_error(
                            DNS1123_SUBDOMAIN_ERR,
                            DNS1123_SUBDOMAIN_FMT,
                            &["example.com"]
                        )
                    ));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `validation.IsValidLabelValue` messages.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// A field.Error string for an invalid key; `path` None renders as upstream's nil path `<nil>`.
fn validate_label_key(key: &str, path: Option<&str>) -> Option<String> {
    let errs = qualified_name_errors(key);
    if errs.is_empty() {
        return None;
    }
    Some(format!(
        "{}: Invalid value: {}: {}",
        path.unwrap_or("<nil>"),
        go_quote(key),
        errs.join("; ")
    ))
}

/// Upstream's error aggregate: one message as is, several as `[a, b]`, duplicates dropped.
fn aggregate(errors: Vec<String>) -> Option<String> {
    let mut unique: Vec<String> = Vec::new();
    for e in errors {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    match unique.len() {
        0 => None,
        1 => unique.pop(),
        _ => Some(format!("[{}]", unique.join(", "))),
    }
}

/// Go's `%q` for a string.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%#v` of a `[]string`.
fn go_string_slice(values: &[String]) -> String {
    let inner: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[]string{{{}}}", inner.join(", "))
}

// ---------------------------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------------------------

/// One `field=value` / `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field after the kind's label conversion (e.g. `spec.host` became `spec.nodeName`).
    pub field: String,
    pub value: String,
    /// `!=` rather than `=`/`==`.
    pub not_equal: bool,
}

/// Which object a field selector reads its fields from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FieldSource {
    /// A built-in kind identified by (group, kind).
    BuiltIn { group: String, kind: String },
    /// A custom resource: fields are JSON paths into the object.
    Custom,
}

/// A parsed field selector bound to the resource it was converted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
    source: FieldSource,
}

impl FieldSelector {
    /// Parses a `fieldSelector` for a built-in resource, accepting exactly the fields upstream's
    /// field label conversion for that kind accepts.
    pub fn parse(selector: &str, res: &ResourceInfo) -> Result<Self, ApiError> {
        let terms = parse_field_terms(selector)?;
        let mut requirements = Vec::with_capacity(terms.len());
        for (field, value, not_equal) in terms {
            let field = convert_field_label(&res.group, &res.kind, &field)?;
            requirements.push(FieldRequirement {
                field,
                value,
                not_equal,
            });
        }
        Ok(FieldSelector {
            requirements,
            source: FieldSource::BuiltIn {
                group: res.group.clone(),
                kind: res.kind.clone(),
            },
        })
    }

    /// Parses a `fieldSelector` for a custom resource: `metadata.name`, `metadata.namespace`
    /// (namespaced kinds only) and the CRD version's `selectableFields` paths (without the
    /// leading dot, e.g. `spec.color`).
    pub fn parse_custom(
        selector: &str,
        namespaced: bool,
        selectable_fields: &[String],
    ) -> Result<Self, ApiError> {
        let terms = parse_field_terms(selector)?;
        let mut requirements = Vec::with_capacity(terms.len());
        for (field, value, not_equal) in terms {
            let known = field == "metadata.name"
                || (namespaced && field == "metadata.namespace")
                || selectable_fields.iter().any(|f| f == &field);
            if !known {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            requirements.push(FieldRequirement {
                field,
                value,
                not_equal,
            });
        }
        Ok(FieldSelector {
            requirements,
            source: FieldSource::Custom,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// The value a selector pins `field` to with `=`, if any (e.g. `metadata.name` for a
    /// single-object list), so a store can look the object up directly.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && !r.not_equal)
            .map(|r| r.value.as_str())
    }

    /// Whether an object (full JSON, as stored) satisfies every term.
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let actual = match &self.source {
                FieldSource::BuiltIn { group, kind } => {
                    builtin_field_value(group, kind, object, &r.field)
                }
                FieldSource::Custom => json_path_text(object, &r.field),
            };
            (actual == r.value) != r.not_equal
        })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| {
                let op = if r.not_equal { "!=" } else { "=" };
                format!("{}{}{}", r.field, op, escape_field_value(&r.value))
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Escapes `\`, `,` and `=` in a field selector value (`fields.EscapeValue`).
pub fn escape_field_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `fields.ParseSelector`: split on unescaped commas, sort the terms, split each at the first
/// operator, unescape the value. Returns (field, value, not_equal).
fn parse_field_terms(selector: &str) -> Result<Vec<(String, String, bool)>, ApiError> {
    let mut parts = split_terms(selector);
    parts.sort();
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        if part.is_empty() {
            continue;
        }
        let Some((lhs, op, rhs)) = split_term(&part) else {
            return Err(ApiError::bad_request(format!(
                "invalid selector: '{selector}'; can't understand '{part}'"
            )));
        };
        let value = unescape_field_value(rhs)?;
        out.push((lhs.to_string(), value, op == "!="));
    }
    Ok(out)
}

fn split_terms(selector: &str) -> Vec<String> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(selector[start..i].to_string());
            start = i + 1;
        }
    }
    terms.push(selector[start..].to_string());
    terms
}

fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if rest.starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

fn unescape_field_value(s: &str) -> Result<String, ApiError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    )));
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                // Go formats the rune with %v: its code point.
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )));
            }
            other => out.push(other),
        }
    }
    if in_slash {
        return Err(ApiError::bad_request(
            "invalid field selector: invalid escape sequence: \\",
        ));
    }
    Ok(out)
}

/// How a built-in kind's field label conversion treats labels.
enum Conversion {
    /// Accepted labels and their error message format.
    List {
        accepted: &'static [&'static str],
        renames: &'static [(&'static str, &'static str)],
        error: fn(&str) -> String,
    },
    /// No conversion registered: `runtime.DefaultMetaV1FieldSelectorConversion`.
    Default,
}

fn not_supported(label: &str) -> String {
    format!("field label not supported: {label}")
}

fn job_not_supported(label: &str) -> String {
    format!(
        "field label {} not supported for batchv1.Job",
        go_quote(label)
    )
}

const EVENTS_V1_RENAMES: &[(&str, &str)] = &[
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
];

/// The field label conversions kube-apiserver 1.33 registers (pkg/apis/*/v1/conversion.go).
fn conversion_for(group: &str, kind: &str) -> Conversion {
    match (group, kind) {
        ("", "Pod") => Conversion::List {
            accepted: &[
                "metadata.name",
                "metadata.namespace",
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
            ],
            renames: &[("spec.host", "spec.nodeName")],
            error: not_supported,
        },
        ("", "Node") => Conversion::List {
            accepted: &["metadata.name", "spec.unschedulable"],
            renames: &[],
            error: not_supported,
        },
        ("", "ReplicationController") => Conversion::List {
            accepted: &["metadata.name", "metadata.namespace", "status.replicas"],
            renames: &[],
            error: not_supported,
        },
        ("", "Event") => Conversion::List {
            accepted: &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
                "metadata.namespace",
                "metadata.name",
            ],
            renames: &[],
            error: not_supported,
        },
        ("events.k8s.io", "Event") => Conversion::List {
            accepted: &[
                "reason",
                "source",
                "type",
                "metadata.namespace",
                "metadata.name",
            ],
            renames: EVENTS_V1_RENAMES,
            error: not_supported,
        },
        ("", "Namespace") => Conversion::List {
            accepted: &["status.phase", "metadata.name"],
            renames: &[],
            error: not_supported,
        },
        ("", "Secret") => Conversion::List {
            accepted: &["type", "metadata.namespace", "metadata.name"],
            renames: &[],
            error: not_supported,
        },
        ("", "Service") => Conversion::List {
            accepted: &[
                "metadata.namespace",
                "metadata.name",
                "spec.clusterIP",
                "spec.type",
            ],
            renames: &[],
            error: not_supported,
        },
        ("batch", "Job") => Conversion::List {
            accepted: &["metadata.name", "metadata.namespace", "status.successful"],
            renames: &[],
            error: job_not_supported,
        },
        ("certificates.k8s.io", "CertificateSigningRequest")
        | ("certificates.k8s.io", "ClusterTrustBundle") => Conversion::List {
            accepted: &["metadata.name", "spec.signerName"],
            renames: &[],
            error: not_supported,
        },
        _ => Conversion::Default,
    }
}

fn convert_field_label(group: &str, kind: &str, label: &str) -> Result<String, ApiError> {
    match conversion_for(group, kind) {
        Conversion::List {
            accepted,
            renames,
            error,
        } => {
            if accepted.contains(&label) {
                return Ok(label.to_string());
            }
            if let Some((_, to)) = renames.iter().find(|(from, _)| *from == label) {
                return Ok((*to).to_string());
            }
            Err(ApiError::bad_request(error(label)))
        }
        Conversion::Default => match label {
            "metadata.name" | "metadata.namespace" => Ok(label.to_string()),
            other => Err(ApiError::bad_request(format!(
                "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                go_quote(other)
            ))),
        },
    }
}

fn text_at(object: &Value, path: &[&str]) -> String {
    let mut cur = object;
    for p in path {
        cur = &cur[*p];
    }
    scalar_text(cur)
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

fn json_path_text(object: &Value, dotted: &str) -> String {
    let path: Vec<&str> = dotted.split('.').collect();
    text_at(object, &path)
}

fn int_text(object: &Value, path: &[&str]) -> String {
    let mut cur = object;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_i64().unwrap_or(0).to_string()
}

fn bool_text(object: &Value, path: &[&str]) -> String {
    let mut cur = object;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_bool().unwrap_or(false).to_string()
}

/// The value of a (converted) field label in a built-in object, as the kind's
/// `ToSelectableFields` computes it; fields the kind does not expose read as "".
fn builtin_field_value(group: &str, kind: &str, object: &Value, field: &str) -> String {
    match field {
        "metadata.name" => return text_at(object, &["metadata", "name"]),
        "metadata.namespace" => return text_at(object, &["metadata", "namespace"]),
        _ => {}
    }
    match (group, kind, field) {
        ("", "Pod", "spec.nodeName") => text_at(object, &["spec", "nodeName"]),
        ("", "Pod", "spec.restartPolicy") => text_at(object, &["spec", "restartPolicy"]),
        ("", "Pod", "spec.schedulerName") => text_at(object, &["spec", "schedulerName"]),
        ("", "Pod", "spec.serviceAccountName") => text_at(object, &["spec", "serviceAccountName"]),
        ("", "Pod", "spec.hostNetwork") => bool_text(object, &["spec", "hostNetwork"]),
        ("", "Pod", "status.phase") => text_at(object, &["status", "phase"]),
        ("", "Pod", "status.podIP") => {
            match object["status"]["podIPs"]
                .as_array()
                .and_then(|a| a.first())
            {
                Some(entry) => scalar_text(&entry["ip"]),
                None => text_at(object, &["status", "podIP"]),
            }
        }
        ("", "Pod", "status.nominatedNodeName") => {
            text_at(object, &["status", "nominatedNodeName"])
        }
        ("", "Node", "spec.unschedulable") => bool_text(object, &["spec", "unschedulable"]),
        ("", "ReplicationController", "status.replicas") => {
            int_text(object, &["status", "replicas"])
        }
        ("", "Namespace", "status.phase") => text_at(object, &["status", "phase"]),
        ("", "Secret", "type") => text_at(object, &["type"]),
        ("", "Service", "spec.clusterIP") => text_at(object, &["spec", "clusterIP"]),
        ("", "Service", "spec.type") => text_at(object, &["spec", "type"]),
        ("batch", "Job", "status.successful") => int_text(object, &["status", "succeeded"]),
        ("certificates.k8s.io", _, "spec.signerName") => text_at(object, &["spec", "signerName"]),
        ("", "Event", f) => core_event_field(object, f),
        ("events.k8s.io", "Event", f) => events_v1_field(object, f),
        _ => String::new(),
    }
}

fn core_event_field(event: &Value, field: &str) -> String {
    if let Some(sub) = field.strip_prefix("involvedObject.") {
        return text_at(event, &["involvedObject", sub]);
    }
    match field {
        "reason" => text_at(event, &["reason"]),
        "type" => text_at(event, &["type"]),
        "reportingComponent" => text_at(event, &["reportingComponent"]),
        "source" => {
            let component = text_at(event, &["source", "component"]);
            if component.is_empty() {
                text_at(event, &["reportingComponent"])
            } else {
                component
            }
        }
        _ => String::new(),
    }
}

/// events.k8s.io/v1 objects are selected by the core field names they convert to.
fn events_v1_field(event: &Value, field: &str) -> String {
    if let Some(sub) = field.strip_prefix("involvedObject.") {
        return text_at(event, &["regarding", sub]);
    }
    match field {
        "reason" => text_at(event, &["reason"]),
        "type" => text_at(event, &["type"]),
        "reportingComponent" => text_at(event, &["reportingController"]),
        "source" => {
            let component = text_at(event, &["deprecatedSource", "component"]);
            if component.is_empty() {
                text_at(event, &["reportingController"])
            } else {
                component
            }
        }
        _ => String::new(),
    }
}

/// The string form of a `metav1.LabelSelector` object (`LabelSelectorAsSelector(s).String()`),
/// as a Scale's `status.selector` carries it; "" for an invalid, empty or null selector.
pub fn selector_string(selector: &Value) -> String {
    LabelSelector::from_label_selector_object(selector)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// `metav1.FormatLabelSelector`: the selector's string form, `<none>` when empty and
/// `<error>` when it cannot be converted.
pub fn format_label_selector(selector: &Value) -> String {
    match LabelSelector::from_label_selector_object(selector) {
        Err(_) => "<error>".to_string(),
        Ok(s) => {
            let text = s.to_string();
            if text.is_empty() {
                "<none>".to_string()
            } else {
                text
            }
        }
    }
}

/// Formats a label map as upstream's `labels.FormatLabels`: sorted `k=v` pairs, or `<none>`.
pub fn format_labels(labels: &Value) -> String {
    let sorted: BTreeMap<&String, String> = labels
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k, label_text(v))).collect())
        .unwrap_or_default();
    if sorted.is_empty() {
        return "<none>".to_string();
    }
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Value {
        let mut m = Map::new();
        for (k, v) in pairs {
            m.insert((*k).to_string(), json!(v));
        }
        Value::Object(m)
    }

    fn parse_err(s: &str) -> String {
        match LabelSelector::parse(s) {
            Err(e) => {
                assert_eq!(e.code(), 400, "{s}");
                e.to_string()
            }
            Ok(sel) => panic!("{s:?} parsed as {sel}"),
        }
    }

    // The accepted cases of upstream's TestSelectorParse.
    #[test]
    fn parses_upstream_valid_selectors() {
        for s in [
            "",
            "x=a,y=b,z=c",
            "x!=a,y=b",
            "x=",
            "x= ",
            "x=,z= ",
            "x= ,z= ",
            "!x",
            "x>1",
            "x>1,z<5",
            "x in (a,b)",
            "x notin (a)",
            "x in (a,b),y notin (c)",
            "x in (,a)",
            "x in (a,)",
            "x in ()",
            "in in (in)",
            "a=in",
            "x in (in)",
            "  x  =  y  ",
            "example.com/x=y",
        ] {
            let r = LabelSelector::parse(s);
            assert!(r.is_ok(), "{s}: {:?}", r.err());
        }
    }

    #[test]
    fn rejects_upstream_invalid_selectors() {
        for s in [
            "x=a||y=b",
            "x==a==b",
            "!x=a",
            "x<a",
            "x>",
            "x in (a b)",
            "x in a",
            "a,",
            ",a",
            "x=a,,y=b",
            "(x",
            "x!!=a",
            "x ! a",
            "x=a b",
            "close ~= value",
            "x gt 1",
        ] {
            parse_err(s);
        }
    }

    #[test]
    fn error_messages_match_upstream() {
        assert_eq!(
            parse_err("x=a,"),
            "found '', expected: identifier after ','"
        );
        assert_eq!(
            parse_err("x=a b"),
            "found 'b', expected: ',' or 'end of string'"
        );
        assert_eq!(
            parse_err("!x=a"),
            "found '=', expected: ',' or 'end of string'"
        );
        assert_eq!(
            parse_err("x in a"),
            "unable to parse requirement: found 'a' expected: '('"
        );
        assert_eq!(
            parse_err("x ! a"),
            "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            parse_err(",a"),
            "found ',', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            parse_err("x>a"),
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
        assert_eq!(
            parse_err("A_"),
            "unable to parse requirement: <nil>: Invalid value: \"A_\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert_eq!(
            parse_err("Example.com/x=y"),
            "unable to parse requirement: <nil>: Invalid value: \"Example.com/x\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        assert_eq!(
            parse_err("x=-a"),
            "unable to parse requirement: values[0][x]: Invalid value: \"-a\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
    }

    #[test]
    fn string_form_is_sorted_and_normalised() {
        let s = LabelSelector::parse("z in (c,a,b), a!=x ,!m,k").unwrap();
        assert_eq!(s.to_string(), "a!=x,k,!m,z in (a,b,c)");
        let s = LabelSelector::parse("x in (,a)").unwrap();
        assert_eq!(s.to_string(), "x in (,a)");
        let s = LabelSelector::parse("x>1,y==b").unwrap();
        assert_eq!(s.to_string(), "x>1,y==b");
    }

    // Cases from upstream's TestEverything/TestSelectorMatches/TestSetMatches.
    #[test]
    fn matches_like_upstream() {
        let l = labels(&[("x", "y"), ("z", "w"), ("n", "7")]);
        let yes = [
            "",
            "x=y",
            "x==y",
            "x=y,z=w",
            "x!=z",
            "x notin (z)",
            "q notin (z)",
            "x in (y,z)",
            "x",
            "!q",
            "n>6",
            "n<8",
        ];
        for s in yes {
            assert!(
                LabelSelector::parse(s).unwrap().matches(&l),
                "{s} should match"
            );
        }
        let no = [
            "x=z",
            "x=y,z=q",
            "x!=y",
            "x in (z)",
            "q in (z)",
            "x notin (y)",
            "q",
            "!x",
            "n>7",
            "n<7",
            "x>1",
            "q>1",
        ];
        for s in no {
            assert!(
                !LabelSelector::parse(s).unwrap().matches(&l),
                "{s} should not match"
            );
        }
        // Empty value matches an explicitly empty label only.
        let empty = labels(&[("x", "")]);
        assert!(LabelSelector::parse("x=").unwrap().matches(&empty));
        assert!(!LabelSelector::parse("x=").unwrap().matches(&Value::Null));
        assert!(LabelSelector::parse("x in ()").unwrap().matches(&empty));
    }

    #[test]
    fn keywords_are_values_in_value_position() {
        let s = LabelSelector::parse("in in (in,notin)").unwrap();
        assert!(s.matches(&labels(&[("in", "notin")])));
        assert_eq!(s.to_string(), "in in (in,notin)");
    }

    #[test]
    fn selector_objects_convert_like_label_selector_as_selector() {
        let sel = LabelSelector::from_label_selector_object(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert_eq!(sel.to_string(), "app=web,!canary,tier in (edge,front)");
        assert!(sel.matches(&labels(&[("app", "web"), ("tier", "edge")])));
        assert!(!sel.matches(&labels(&[
            ("app", "web"),
            ("tier", "edge"),
            ("canary", "1")
        ])));
        assert!(
            LabelSelector::from_label_selector_object(&json!({}))
                .unwrap()
                .matches(&Value::Null)
        );
        let nothing = LabelSelector::from_label_selector_object(&Value::Null).unwrap();
        assert!(!nothing.matches(&labels(&[("a", "b")])));
        let bad = LabelSelector::from_label_selector_object(&json!({
            "matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]
        }));
        assert_eq!(
            bad.unwrap_err().to_string(),
            "\"Gt\" is not a valid label selector operator"
        );
        let empty_in = LabelSelector::from_label_selector_object(&json!({
            "matchExpressions": [{"key": "a", "operator": "In", "values": []}]
        }));
        assert_eq!(
            empty_in.unwrap_err().to_string(),
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
        );
    }

    #[test]
    fn from_set_matches_exactly() {
        let sel = LabelSelector::from_set(labels(&[("app", "web")]).as_object().unwrap());
        assert!(sel.matches(&labels(&[("app", "web"), ("x", "y")])));
        assert!(!sel.matches(&labels(&[("app", "db")])));
        assert!(LabelSelector::from_set(&Map::new()).is_empty());
    }

    fn res(group: &str, kind: &str) -> ResourceInfo {
        ResourceInfo {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            plural: format!("{}s", kind.to_lowercase()),
            singular: kind.to_lowercase(),
            namespaced: true,
            verbs: vec![],
            short_names: vec![],
            categories: vec![],
            subresources: vec![],
            list_kind: format!("{kind}List"),
            definition: String::new(),
            custom: None,
        }
    }

    #[test]
    fn field_selectors_accept_the_kinds_fields() {
        let pods = res("", "Pod");
        let pod = json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}]}
        });
        let sel = FieldSelector::parse("status.phase=Running,spec.nodeName==n1", &pods).unwrap();
        assert!(sel.matches(&pod));
        assert!(
            FieldSelector::parse("status.podIP=10.0.0.5", &pods)
                .unwrap()
                .matches(&pod)
        );
        assert!(
            FieldSelector::parse("spec.hostNetwork=false", &pods)
                .unwrap()
                .matches(&pod)
        );
        assert!(
            !FieldSelector::parse("status.phase!=Running", &pods)
                .unwrap()
                .matches(&pod)
        );
        // spec.host is the pre-1.0 spelling of spec.nodeName.
        let host = FieldSelector::parse("spec.host=n1", &pods).unwrap();
        assert_eq!(host.requirements()[0].field, "spec.nodeName");
        assert!(host.matches(&pod));
        assert!(FieldSelector::parse("", &pods).unwrap().is_empty());
        assert_eq!(
            FieldSelector::parse("metadata.name=p", &pods)
                .unwrap()
                .requires_exact_match("metadata.name"),
            Some("p")
        );
    }

    #[test]
    fn unsupported_fields_are_rejected_with_upstream_wording() {
        let err = FieldSelector::parse("spec.foo=bar", &res("", "Pod")).unwrap_err();
        assert_eq!(err.code(), 400);
        assert_eq!(err.to_string(), "field label not supported: spec.foo");
        let err =
            FieldSelector::parse("foo.bar=baz", &res("networking.k8s.io", "Ingress")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"foo.bar\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        let err = FieldSelector::parse("spec.x=1", &res("batch", "Job")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field label \"spec.x\" not supported for batchv1.Job"
        );
        let err = FieldSelector::parse("metadata.namespace=a", &res("", "Node")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field label not supported: metadata.namespace"
        );
    }

    #[test]
    fn field_selector_syntax_errors() {
        let pods = res("", "Pod");
        assert_eq!(
            FieldSelector::parse("status.phase", &pods)
                .unwrap_err()
                .to_string(),
            "invalid selector: 'status.phase'; can't understand 'status.phase'"
        );
        assert_eq!(
            FieldSelector::parse("metadata.name=a=b", &pods)
                .unwrap_err()
                .to_string(),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            FieldSelector::parse("metadata.name=a\\x", &pods)
                .unwrap_err()
                .to_string(),
            "invalid field selector: invalid escape sequence: \\x"
        );
    }

    #[test]
    fn field_values_unescape() {
        let pods = res("", "Pod");
        let sel = FieldSelector::parse("metadata.name=a\\,b\\=c\\\\d", &pods).unwrap();
        assert_eq!(sel.requirements()[0].value, "a,b=c\\d");
        assert!(sel.matches(&json!({"metadata": {"name": "a,b=c\\d"}})));
        assert_eq!(sel.to_string(), "metadata.name=a\\,b\\=c\\\\d");
    }

    #[test]
    fn event_fields_follow_involved_object_and_regarding() {
        let core = json!({
            "metadata": {"name": "e", "namespace": "ns"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns", "uid": "u1"},
            "reason": "Started", "type": "Normal",
            "source": {"component": "kubelet"}
        });
        let sel = FieldSelector::parse(
            "involvedObject.name=p,involvedObject.namespace=ns,involvedObject.uid=u1,source=kubelet",
            &res("", "Event"),
        )
        .unwrap();
        assert!(sel.matches(&core));
        let v1 = json!({
            "metadata": {"name": "e", "namespace": "ns"},
            "regarding": {"kind": "Pod", "name": "p"},
            "reportingController": "kubelet", "reason": "Started", "type": "Normal"
        });
        let ev = res("events.k8s.io", "Event");
        let sel = FieldSelector::parse(
            "regarding.name=p,reportingController=kubelet,source=kubelet",
            &ev,
        )
        .unwrap();
        assert!(sel.matches(&v1));
        assert!(FieldSelector::parse("involvedObject.name=p", &ev).is_err());
    }

    #[test]
    fn other_kind_fields() {
        let secret = json!({"metadata": {"name": "s"}, "type": "Opaque"});
        assert!(
            FieldSelector::parse("type=Opaque", &res("", "Secret"))
                .unwrap()
                .matches(&secret)
        );
        let node = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}});
        assert!(
            FieldSelector::parse("spec.unschedulable=true", &res("", "Node"))
                .unwrap()
                .matches(&node)
        );
        let job = json!({"metadata": {"name": "j"}, "status": {"succeeded": 2}});
        assert!(
            FieldSelector::parse("status.successful=2", &res("batch", "Job"))
                .unwrap()
                .matches(&job)
        );
        let rc = json!({"metadata": {"name": "r"}});
        assert!(
            FieldSelector::parse("status.replicas=0", &res("", "ReplicationController"))
                .unwrap()
                .matches(&rc)
        );
        let ns = json!({"metadata": {"name": "kube-system"}, "status": {"phase": "Active"}});
        assert!(
            FieldSelector::parse("status.phase=Active", &res("", "Namespace"))
                .unwrap()
                .matches(&ns)
        );
        // A cluster-scoped default kind: namespace reads as "".
        let cr = json!({"metadata": {"name": "admin"}});
        let roles = res("rbac.authorization.k8s.io", "ClusterRole");
        assert!(
            FieldSelector::parse("metadata.namespace=", &roles)
                .unwrap()
                .matches(&cr)
        );
        assert!(
            !FieldSelector::parse("metadata.namespace=x", &roles)
                .unwrap()
                .matches(&cr)
        );
    }

    #[test]
    fn custom_resource_field_selectors() {
        let fields = vec!["spec.color".to_string()];
        let sel = FieldSelector::parse_custom("spec.color=red", true, &fields).unwrap();
        assert!(sel.matches(&json!({"spec": {"color": "red"}})));
        assert_eq!(
            FieldSelector::parse_custom("spec.size=1", true, &fields)
                .unwrap_err()
                .to_string(),
            "field label not supported: spec.size"
        );
        assert!(FieldSelector::parse_custom("metadata.namespace=a", false, &fields).is_err());
    }

    #[test]
    fn selector_strings() {
        let sel = json!({"matchLabels": {"app": "web", "a": "b"}});
        assert_eq!(selector_string(&sel), "a=b,app=web");
        assert_eq!(format_label_selector(&sel), "a=b,app=web");
        assert_eq!(format_label_selector(&json!({})), "<none>");
        assert_eq!(format_label_selector(&Value::Null), "<none>");
        assert_eq!(
            format_label_selector(&json!({"matchExpressions": [{"key": "a", "operator": "Bad"}]})),
            "<error>"
        );
    }

    #[test]
    fn format_labels_sorts() {
        assert_eq!(format_labels(&json!({"b": "2", "a": "1"})), "a=1,b=2");
        assert_eq!(format_labels(&json!({})), "<none>");
        assert_eq!(format_labels(&Value::Null), "<none>");
    }
}
