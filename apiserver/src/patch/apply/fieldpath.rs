//! Field paths and path sets: what a manager owns, in structured-merge-diff's model, and
//! their two spellings — the FieldsV1 JSON stored in `managedFields` (`f:`, `k:`, `v:`,
//! `i:` keys, `.` for "this node itself") and the dotted form conflicts are reported in
//! (`.spec.containers[name="web"].image`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// One step of a path. Keys and values hold their canonical JSON (object keys sorted), so
/// elements order and compare without a JSON ordering of their own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A field of a struct or a key of a map: `f:name`.
    Field(String),
    /// An item of a list-map, by its key fields: `k:{"name":"web"}`.
    Key(String),
    /// An item of a set, by its value: `v:"a"`.
    Value(String),
    /// An item of a list by position (lists without identity): `i:0`.
    Index(usize),
}

impl PathElement {
    /// The key element of a list-map item whose key fields are `fields` (already in the
    /// order they should be rendered: sorted by name).
    pub fn key(fields: &BTreeMap<String, Value>) -> PathElement {
        let obj: Map<String, Value> = fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        PathElement::Key(canonical_json(&Value::Object(obj)))
    }

    /// The value element of a set item.
    pub fn value(v: &Value) -> PathElement {
        PathElement::Value(canonical_json(v))
    }

    /// The FieldsV1 key of this element.
    fn fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(k) => format!("k:{k}"),
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    fn from_fields_v1_key(key: &str) -> Option<PathElement> {
        let (kind, rest) = key.split_once(':')?;
        match kind {
            "f" => Some(PathElement::Field(rest.to_string())),
            "k" => {
                let v: Value = serde_json::from_str(rest).ok()?;
                v.is_object().then(|| PathElement::Key(canonical_json(&v)))
            }
            "v" => {
                let v: Value = serde_json::from_str(rest).ok()?;
                Some(PathElement::Value(canonical_json(&v)))
            }
            "i" => rest.parse().ok().map(PathElement::Index),
            _ => None,
        }
    }
}

impl fmt::Display for PathElement {
    /// structured-merge-diff's spelling: `.name`, `[name="web",port=80]`, `[="a"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(k) => {
                let fields: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={v}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// JSON with object keys sorted at every level (serde_json's map is ordered by key).
pub fn canonical_json(v: &Value) -> String {
    v.to_string()
}

/// A path from the object's root.
pub type Path = Vec<PathElement>;

/// Renders a path the way conflicts name fields.
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A set of paths as a tree: `members` are paths that end here, `children` continue.
/// A path can be both (a list item that is owned and has owned fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    pub members: BTreeSet<PathElement>,
    pub children: BTreeMap<PathElement, Set>,
}

impl Set {
    pub fn new() -> Set {
        Set::default()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(Set::is_empty)
    }

    /// Adds `path` (an empty path adds nothing: the root is never a member).
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// The subtree under `pe`.
    pub fn child(&self, pe: &PathElement) -> Option<&Set> {
        self.children.get(pe)
    }

    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, c) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out.pruned()
    }

    /// Paths of `self` not in `other` (a member of `other` does not remove `self`'s
    /// children below it: they are other paths).
    pub fn difference(&self, other: &Set) -> Set {
        let mut out = Set::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (pe, c) in &self.children {
            let d = match other.children.get(pe) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(pe.clone(), d);
            }
        }
        out
    }

    pub fn intersection(&self, other: &Set) -> Set {
        let mut out = Set::new();
        out.members = self.members.intersection(&other.members).cloned().collect();
        for (pe, c) in &self.children {
            if let Some(o) = other.children.get(pe) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(pe.clone(), i);
                }
            }
        }
        out
    }

    /// Drops empty subtrees.
    fn pruned(mut self) -> Set {
        self.children.retain(|_, c| !c.is_empty());
        self
    }

    /// Every member path, in order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        let mut keys: BTreeSet<&PathElement> = self.members.iter().collect();
        keys.extend(self.children.keys());
        for pe in keys {
            prefix.push(pe.clone());
            if self.members.contains(pe) {
                out.push(prefix.clone());
            }
            if let Some(c) = self.children.get(pe) {
                c.collect(prefix, out);
            }
            prefix.pop();
        }
    }

    /// The FieldsV1 JSON of this set.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        let mut keys: BTreeSet<&PathElement> = self.members.iter().collect();
        keys.extend(
            self.children
                .iter()
                .filter(|(_, c)| !c.is_empty())
                .map(|(k, _)| k),
        );
        for pe in keys {
            let mut node = match self.children.get(pe) {
                Some(c) if !c.is_empty() => c.to_fields_v1(),
                _ => Value::Object(Map::new()),
            };
            if self.members.contains(pe)
                && let Some(obj) = node.as_object_mut()
                && !obj.is_empty()
            {
                // `.` marks the node itself as owned; it goes first.
                let mut with_dot = Map::new();
                with_dot.insert(".".into(), Value::Object(Map::new()));
                with_dot.extend(std::mem::take(obj));
                *obj = with_dot;
            }
            map.insert(pe.fields_v1_key(), node);
        }
        Value::Object(map)
    }

    /// Reads FieldsV1 JSON; `None` when it is not well formed.
    pub fn from_fields_v1(v: &Value) -> Option<Set> {
        let obj = v.as_object()?;
        let mut set = Set::new();
        for (key, child) in obj {
            if key == "." {
                continue;
            }
            let pe = PathElement::from_fields_v1_key(key)?;
            let child_obj = child.as_object()?;
            if child_obj.is_empty() || child_obj.contains_key(".") {
                set.members.insert(pe.clone());
            }
            let sub = Set::from_fields_v1(child)?;
            if !sub.is_empty() {
                set.children.insert(pe, sub);
            }
        }
        Some(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.into())
    }

    #[test]
    fn fields_v1_round_trips_with_dot_members() {
        let v = json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}},
                "f:finalizers": {"v:\"a\"": {}}, "f:replicas": {}}});
        let set = Set::from_fields_v1(&v).unwrap();
        assert!(set.has(&[f("spec"), f("replicas")]));
        assert!(set.has(&[f("metadata"), f("labels")]));
        assert!(!set.has(&[f("metadata")]));
        assert_eq!(set.to_fields_v1(), v);
        let paths: Vec<String> = set.paths().iter().map(|p| path_string(p)).collect();
        assert!(paths.contains(&".spec.containers[name=\"web\"].image".to_string()));
        assert!(paths.contains(&".spec.finalizers[=\"a\"]".to_string()));
        assert!(Set::from_fields_v1(&json!({"x:y": {}})).is_none());
        assert!(Set::from_fields_v1(&json!({"f:y": 1})).is_none());
    }

    #[test]
    fn set_algebra() {
        let mut a = Set::new();
        a.insert(&[f("a"), f("b")]);
        a.insert(&[f("a"), f("c")]);
        a.insert(&[f("d")]);
        let mut b = Set::new();
        b.insert(&[f("a"), f("b")]);
        b.insert(&[f("e")]);
        let d = a.difference(&b);
        assert!(d.has(&[f("a"), f("c")]) && !d.has(&[f("a"), f("b")]) && d.has(&[f("d")]));
        let i = a.intersection(&b);
        assert_eq!(i.paths(), vec![vec![f("a"), f("b")]]);
        let u = a.union(&b);
        assert_eq!(u.paths().len(), 4);
        assert!(a.difference(&a).is_empty());
    }
}
