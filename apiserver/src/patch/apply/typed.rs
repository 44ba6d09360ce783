//! Objects read through their schema, as structured-merge-diff reads typed values: which
//! values are leaves (scalars, atomic lists and maps), which maps are structs with named
//! fields, and how list items are identified (`x-kubernetes-list-type` map by
//! `x-kubernetes-list-map-keys`, set by value). On top of that: the field set a value
//! covers, merging an applied configuration into a live object, comparing two objects,
//! and removing paths.
//!
//! Values without a schema (custom resources without one, `x-kubernetes-preserve-unknown-
//! fields`, free-form built-ins such as RawExtension) are "deduced" as upstream does:
//! maps are granular, lists atomic.

use std::collections::{BTreeMap, HashMap, HashSet};

use beemesh_translator::validation::SchemaLookup;
use serde_json::{Map, Value};

use super::fieldpath::{Path, PathElement, Set};

/// Where a value's shape comes from.
#[derive(Debug, Clone, Copy)]
pub enum Node<'a> {
    /// An OpenAPI v3 schema (already dereferenced).
    Schema(&'a Value),
    /// No schema: deduced from the value.
    Deduced,
}

/// How items of a granular list are identified.
#[derive(Debug, Clone)]
enum ListKind {
    Map(Vec<String>),
    Set,
}

/// What a value is, given its schema.
enum Shape<'a> {
    /// Owned as a whole: scalars, atomic lists and maps, values that do not fit the schema.
    Leaf,
    /// A struct or a granular map; `None` when deduced.
    Map(Option<&'a Value>),
    /// A list whose items are owned one by one.
    List(ListKind, Node<'a>),
}

/// The schemas of one kind: the root schema and the lookup its references resolve in.
pub struct Typed<'a> {
    lookup: &'a (dyn SchemaLookup + Sync),
    root: Node<'a>,
    /// The ObjectMeta schema, used for `metadata` at the root whatever the root schema says
    /// (a CRD's schema says only `type: object` there).
    object_meta: Option<&'a Value>,
    /// Whether the kind is a built-in Go type (see `compare_at`).
    go_typed: bool,
}

/// Added, modified and removed paths between two objects.
#[derive(Debug, Default, Clone)]
pub struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

fn is_true(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool).unwrap_or(false)
}

impl<'a> Typed<'a> {
    /// `root` is the kind's schema (a catalog definition or a CRD's openAPIV3Schema);
    /// `None` deduces everything.
    pub fn new(lookup: &'a (dyn SchemaLookup + Sync), root: Option<&'a Value>) -> Typed<'a> {
        let root = match root {
            Some(s) => Node::Schema(lookup.resolve(s)),
            None => Node::Deduced,
        };
        Typed {
            lookup,
            root,
            object_meta: lookup.schema(OBJECT_META),
            go_typed: lookup.go_typed(),
        }
    }

    /// The same schemas for a custom resource, stored as decoded (no Go structs).
    pub fn custom(mut self) -> Typed<'a> {
        self.go_typed = false;
        self
    }

    fn shape(&self, node: Node<'a>, value: &Value) -> Shape<'a> {
        match value {
            Value::Object(_) => match node {
                Node::Deduced => Shape::Map(None),
                Node::Schema(s) => {
                    if s.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic")
                        || is_true(s.get("x-kubernetes-int-or-string"))
                    {
                        return Shape::Leaf;
                    }
                    match s.get("type").and_then(Value::as_str) {
                        None | Some("object") => {
                            let structured = s.get("properties").is_some()
                                || s.get("additionalProperties").is_some_and(Value::is_object);
                            Shape::Map(structured.then_some(s))
                        }
                        Some(_) => Shape::Leaf,
                    }
                }
            },
            Value::Array(items) => {
                let Node::Schema(s) = node else {
                    return Shape::Leaf;
                };
                let item_node = match s.get("items") {
                    Some(i) if i.is_object() => Node::Schema(self.lookup.resolve(i)),
                    _ => Node::Deduced,
                };
                let strategy = s
                    .get("x-kubernetes-patch-strategy")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let merge = strategy.split(',').any(|p| p == "merge");
                let kind = match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("map") => {
                        let keys: Vec<String> = s
                            .get("x-kubernetes-list-map-keys")
                            .and_then(Value::as_array)
                            .map(|k| {
                                k.iter()
                                    .filter_map(Value::as_str)
                                    .map(str::to_string)
                                    .collect()
                            })
                            .unwrap_or_default();
                        ListKind::Map(keys)
                    }
                    Some("set") => ListKind::Set,
                    Some(_) => return Shape::Leaf,
                    None if merge => match s
                        .get("x-kubernetes-patch-merge-key")
                        .and_then(Value::as_str)
                    {
                        Some(key) => ListKind::Map(vec![key.to_string()]),
                        None => ListKind::Set,
                    },
                    None => return Shape::Leaf,
                };
                // Items that cannot be identified make the list a leaf rather than an error.
                let identifiable = items
                    .iter()
                    .all(|item| self.item_element(&kind, item_node, item).is_some());
                if identifiable {
                    Shape::List(kind, item_node)
                } else {
                    Shape::Leaf
                }
            }
            _ => Shape::Leaf,
        }
    }

    /// The schema of field `name` of a map and whether it is a declared (struct) field.
    fn field(&self, map: Option<&'a Value>, name: &str, at_root: bool) -> (Node<'a>, bool) {
        if at_root
            && name == "metadata"
            && let Some(meta) = self.object_meta
        {
            return (Node::Schema(meta), true);
        }
        let Some(s) = map else {
            return (Node::Deduced, false);
        };
        if let Some(p) = s.get("properties").and_then(|p| p.get(name)) {
            return (Node::Schema(self.lookup.resolve(p)), true);
        }
        match s.get("additionalProperties") {
            Some(ap) if ap.is_object() => (Node::Schema(self.lookup.resolve(ap)), false),
            _ => (Node::Deduced, false),
        }
    }

    /// The schema node for a field of `node`, from the schema alone (no value at hand).
    fn field_of(&self, node: Node<'a>, name: &str, at_root: bool) -> (Node<'a>, bool) {
        match node {
            Node::Schema(s) => self.field(Some(s), name, at_root),
            Node::Deduced => self.field(None, name, at_root),
        }
    }

    fn items_of(&self, node: Node<'a>) -> Node<'a> {
        match node {
            Node::Schema(s) => match s.get("items") {
                Some(i) if i.is_object() => Node::Schema(self.lookup.resolve(i)),
                _ => Node::Deduced,
            },
            Node::Deduced => Node::Deduced,
        }
    }

    /// The path element of a list item: its key fields (a missing `protocol` key is
    /// upstream's default `TCP`, a missing key with a schema default is that default),
    /// or its value in a set.
    fn item_element(
        &self,
        kind: &ListKind,
        item_node: Node<'a>,
        item: &Value,
    ) -> Option<PathElement> {
        match kind {
            ListKind::Set => {
                (!item.is_object() && !item.is_array()).then(|| PathElement::value(item))
            }
            ListKind::Map(keys) => {
                let obj = item.as_object()?;
                let mut fields = BTreeMap::new();
                for key in keys {
                    match obj.get(key) {
                        Some(v) if !v.is_null() => {
                            fields.insert(key.clone(), v.clone());
                        }
                        _ => {
                            let (field_node, _) = self.field_of(item_node, key, false);
                            let default = match field_node {
                                Node::Schema(s) => s.get("default").cloned(),
                                Node::Deduced => None,
                            };
                            if let Some(d) = default.or_else(|| {
                                (key == "protocol").then(|| Value::String("TCP".into()))
                            }) {
                                fields.insert(key.clone(), d);
                            }
                        }
                    }
                }
                (!fields.is_empty()).then(|| PathElement::key(&fields))
            }
        }
    }

    fn elements(&self, kind: &ListKind, item_node: Node<'a>, items: &[Value]) -> Vec<PathElement> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                self.item_element(kind, item_node, item)
                    .unwrap_or(PathElement::Index(i))
            })
            .collect()
    }

    /// The paths `value` sets (structured-merge-diff's ToFieldSet).
    pub fn field_set(&self, value: &Value) -> Set {
        let mut set = Set::new();
        self.walk_set(value, self.root, &mut Vec::new(), &mut set);
        set
    }

    fn walk_set(&self, value: &Value, node: Node<'a>, path: &mut Path, set: &mut Set) {
        match self.shape(node, value) {
            Shape::Leaf => set.insert(path),
            Shape::Map(schema) => {
                let at_root = path.is_empty();
                for (k, child) in value.as_object().into_iter().flatten() {
                    let (child_node, declared) = self.field(schema, k, at_root);
                    path.push(PathElement::Field(k.clone()));
                    self.walk_set(child, child_node, path, set);
                    let empty_map = child.as_object().is_some_and(Map::is_empty);
                    if child.is_null() || empty_map || !declared {
                        set.insert(path);
                    }
                    path.pop();
                }
            }
            Shape::List(kind, item_node) => {
                let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
                for (pe, item) in self
                    .elements(&kind, item_node, items)
                    .into_iter()
                    .zip(items)
                {
                    path.push(pe);
                    self.walk_set(item, item_node, path, set);
                    set.insert(path);
                    path.pop();
                }
            }
        }
    }

    /// `set` plus the declared struct fields on the way to its members, which a set
    /// normally leaves out (structured-merge-diff's EnsureNamedFieldsAreMembers). The
    /// object's own `apiVersion`, `kind` and `metadata` are never added.
    pub fn with_named_fields(&self, set: &Set) -> Set {
        let mut out = set.clone();
        self.add_named(&mut out, self.root, true);
        out
    }

    fn add_named(&self, set: &mut Set, node: Node<'a>, at_root: bool) {
        let keys: Vec<PathElement> = set.children.keys().cloned().collect();
        for pe in keys {
            let child_node = match &pe {
                PathElement::Field(name) => {
                    let (child_node, declared) = self.field_of(node, name, at_root);
                    let object_field =
                        at_root && matches!(name.as_str(), "apiVersion" | "kind" | "metadata");
                    if declared && !object_field {
                        set.members.insert(pe.clone());
                    }
                    child_node
                }
                _ => self.items_of(node),
            };
            if let Some(child) = set.children.get_mut(&pe) {
                self.add_named(child, child_node, false);
            }
        }
    }

    /// `value` without the paths in `set` (a member removes its whole subtree).
    pub fn remove(&self, value: &Value, set: &Set) -> Value {
        self.remove_at(value, self.root, set, true)
    }

    fn remove_at(&self, value: &Value, node: Node<'a>, set: &Set, at_root: bool) -> Value {
        match self.shape(node, value) {
            Shape::Leaf => value.clone(),
            Shape::Map(schema) => {
                let mut out = Map::new();
                for (k, child) in value.as_object().into_iter().flatten() {
                    let pe = PathElement::Field(k.clone());
                    if set.members.contains(&pe) {
                        continue;
                    }
                    let v = match set.child(&pe) {
                        Some(sub) if !sub.is_empty() => {
                            let (child_node, _) = self.field(schema, k, at_root);
                            self.remove_at(child, child_node, sub, false)
                        }
                        _ => child.clone(),
                    };
                    out.insert(k.clone(), v);
                }
                Value::Object(out)
            }
            Shape::List(kind, item_node) => {
                let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
                let mut out = Vec::new();
                for (pe, item) in self
                    .elements(&kind, item_node, items)
                    .into_iter()
                    .zip(items)
                {
                    if set.members.contains(&pe) {
                        continue;
                    }
                    out.push(match set.child(&pe) {
                        Some(sub) if !sub.is_empty() => self.remove_at(item, item_node, sub, false),
                        _ => item.clone(),
                    });
                }
                Value::Array(out)
            }
        }
    }

    /// `config` merged into `live`: the configuration's values win, maps merge key by key,
    /// granular lists item by item (the configuration's order for the items it names,
    /// the live items it does not name kept in their places).
    pub fn merge(&self, live: &Value, config: &Value) -> Value {
        self.merge_at(Some(live), config, self.root, true)
    }

    fn merge_at(
        &self,
        live: Option<&Value>,
        config: &Value,
        node: Node<'a>,
        at_root: bool,
    ) -> Value {
        let Some(live) = live else {
            return config.clone();
        };
        match (self.shape(node, config), live, config) {
            (Shape::Map(schema), Value::Object(l), Value::Object(c)) => {
                let mut out = l.clone();
                for (k, cv) in c {
                    let (child_node, _) = self.field(schema, k, at_root);
                    let merged = self.merge_at(l.get(k), cv, child_node, false);
                    out.insert(k.clone(), merged);
                }
                Value::Object(out)
            }
            (Shape::List(kind, item_node), Value::Array(l), Value::Array(c)) => {
                if !matches!(self.shape(node, live), Shape::List(..)) {
                    return config.clone();
                }
                let lpe = self.elements(&kind, item_node, l);
                let cpe = self.elements(&kind, item_node, c);
                let merged = merge_order(&lpe, &cpe);
                let live_by: HashMap<&PathElement, &Value> = lpe.iter().zip(l).collect();
                let conf_by: HashMap<&PathElement, &Value> = cpe.iter().zip(c).collect();
                Value::Array(
                    merged
                        .into_iter()
                        .filter_map(|pe| match (live_by.get(pe), conf_by.get(pe)) {
                            (lv, Some(cv)) => {
                                Some(self.merge_at(lv.copied(), cv, item_node, false))
                            }
                            (Some(lv), None) => Some((*lv).clone()),
                            (None, None) => None,
                        })
                        .collect(),
                )
            }
            _ => config.clone(),
        }
    }

    /// What changed from `old` to `new`.
    pub fn compare(&self, old: &Value, new: &Value) -> Comparison {
        let mut cmp = Comparison::default();
        self.compare_at(Some(old), Some(new), self.root, &mut Vec::new(), &mut cmp);
        cmp
    }

    fn compare_at(
        &self,
        old: Option<&Value>,
        new: Option<&Value>,
        node: Node<'a>,
        path: &mut Path,
        cmp: &mut Comparison,
    ) {
        let Some(sample) = new.or(old) else {
            return;
        };
        let shape = self.shape(node, sample);
        let same_shape = match (old, new, &shape) {
            (Some(o), Some(_), Shape::Map(_)) => o.is_object(),
            (Some(o), Some(_), Shape::List(..)) => matches!(self.shape(node, o), Shape::List(..)),
            _ => true,
        };
        if !same_shape || matches!(shape, Shape::Leaf) {
            match (old, new) {
                (None, Some(_)) => cmp.added.insert(path),
                (Some(_), None) => cmp.removed.insert(path),
                (Some(o), Some(n)) if o != n => cmp.modified.insert(path),
                _ => {}
            }
            return;
        }
        match (old, new) {
            (None, Some(_)) => cmp.added.insert(path),
            (Some(_), None) => cmp.removed.insert(path),
            _ => {}
        }
        match shape {
            Shape::Leaf => {}
            Shape::Map(schema) => {
                let empty = Map::new();
                let o = old.and_then(Value::as_object).unwrap_or(&empty);
                let n = new.and_then(Value::as_object).unwrap_or(&empty);
                let at_root = path.is_empty();
                let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
                keys.sort();
                keys.dedup();
                let empty_value = Value::Object(Map::new());
                for k in keys {
                    let (child_node, _) = self.field(schema, k, at_root);
                    // A built-in's top-level spec and status are Go structs, never absent:
                    // an object without one compares as having an empty one.
                    let always_there =
                        at_root && self.go_typed && matches!(k.as_str(), "spec" | "status");
                    let (ov, nv) = match (o.get(k), n.get(k)) {
                        (None, Some(v)) if always_there && v.is_object() => {
                            (Some(&empty_value), Some(v))
                        }
                        (Some(v), None) if always_there && v.is_object() => {
                            (Some(v), Some(&empty_value))
                        }
                        other => other,
                    };
                    path.push(PathElement::Field(k.clone()));
                    self.compare_at(ov, nv, child_node, path, cmp);
                    path.pop();
                }
            }
            Shape::List(kind, item_node) => {
                let empty = Vec::new();
                let o = old.and_then(Value::as_array).unwrap_or(&empty);
                let n = new.and_then(Value::as_array).unwrap_or(&empty);
                let ope = self.elements(&kind, item_node, o);
                let npe = self.elements(&kind, item_node, n);
                let old_by: HashMap<&PathElement, &Value> = ope.iter().zip(o).collect();
                let new_by: HashMap<&PathElement, &Value> = npe.iter().zip(n).collect();
                let mut seen = HashSet::new();
                for pe in ope.iter().chain(npe.iter()) {
                    if !seen.insert(pe) {
                        continue;
                    }
                    path.push(pe.clone());
                    self.compare_at(
                        old_by.get(pe).copied(),
                        new_by.get(pe).copied(),
                        item_node,
                        path,
                        cmp,
                    );
                    path.pop();
                }
            }
        }
    }
}

/// The order of a merged list: items both sides name follow the configuration's order,
/// live-only items stay where they were relative to them, configuration-only items come
/// where the configuration puts them (structured-merge-diff's interleaving).
fn merge_order<'p>(live: &'p [PathElement], config: &'p [PathElement]) -> Vec<&'p PathElement> {
    let in_live: HashSet<&PathElement> = live.iter().collect();
    let in_config: HashSet<&PathElement> = config.iter().collect();
    let mut shared = config.iter().filter(|pe| in_live.contains(pe));
    let mut next_shared = shared.next();
    let mut taken: HashSet<&PathElement> = HashSet::new();
    let mut out = Vec::with_capacity(live.len().max(config.len()));
    let (mut li, mut ci) = (0, 0);
    while li < live.len() || ci < config.len() {
        if li < live.len() && ci < config.len() {
            if live[li] == config[ci] {
                taken.insert(&live[li]);
                out.push(&live[li]);
                li += 1;
                ci += 1;
                next_shared = shared.next();
                continue;
            }
            if in_config.contains(&live[li]) && next_shared.is_some_and(|n| *n != live[li]) {
                li += 1;
                continue;
            }
        }
        if li < live.len() {
            let pe = &live[li];
            if !in_config.contains(pe) {
                out.push(pe);
                li += 1;
                continue;
            }
            if taken.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ci < config.len() {
            let pe = &config[ci];
            taken.insert(pe);
            out.push(pe);
            ci += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
        } else {
            // Only a live item the configuration names but was never reached is left;
            // it cannot be: every configuration item was taken. Stop rather than spin.
            li += 1;
        }
    }
    out
}
