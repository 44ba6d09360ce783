//! Manager bookkeeping: the `metadata.managedFields` entries of an object and how an
//! Update or an Apply moves field ownership between them (structured-merge-diff's
//! Updater as the Kubernetes field manager drives it).

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

use super::fieldpath::{Path, PathElement, Set};
use super::typed::{Comparison, Typed};

/// `operation` of a managedFields entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One managedFields entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: String,
    pub set: Set,
}

impl Entry {
    /// Entries are one manager when manager, operation and subresource agree and, for
    /// updates, the apiVersion too (an applier keeps one entry across versions).
    fn is(&self, who: &Who) -> bool {
        self.manager == who.manager
            && self.operation == who.operation
            && self.subresource == who.subresource
            && (self.operation == Operation::Apply || self.api_version == who.api_version)
    }

    /// How conflicts name this manager: `"kubectl"`, or for updaters
    /// `"kubectl-edit" using apps/v1` (upstream leaves the time out of the identifier).
    pub fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// Who is writing.
#[derive(Debug, Clone)]
pub struct Who {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub subresource: String,
}

/// Which paths a write may own: the main resource does not own status when the kind has
/// a status subresource, `/status` owns only status (upstream's reset fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Everything,
    ExceptStatus,
    OnlyStatus,
}

impl Scope {
    fn filter(self, set: &Set) -> Set {
        let status = PathElement::Field("status".into());
        match self {
            Scope::Everything => set.clone(),
            Scope::ExceptStatus => {
                let mut s = set.clone();
                s.members.remove(&status);
                s.children.remove(&status);
                s
            }
            Scope::OnlyStatus => {
                let mut s = Set::new();
                if set.members.contains(&status) {
                    s.members.insert(status.clone());
                }
                if let Some(c) = set.children.get(&status) {
                    s.children.insert(status, c.clone());
                }
                s
            }
        }
    }

    fn filter_comparison(self, c: Comparison) -> Comparison {
        Comparison {
            added: self.filter(&c.added),
            modified: self.filter(&c.modified),
            removed: self.filter(&c.removed),
        }
    }
}

/// Paths nobody owns: identity and server-set metadata (upstream's stripMeta).
fn stripped() -> Set {
    let mut s = Set::new();
    let f = |n: &str| PathElement::Field(n.into());
    s.insert(&[f("apiVersion")]);
    s.insert(&[f("kind")]);
    s.insert(&[f("metadata")]);
    for m in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        s.insert(&[f("metadata"), f(m)]);
    }
    s
}

/// Update entries kept before the oldest are folded together.
const MAX_UPDATERS: usize = 10;
const ANCIENT_CHANGES: &str = "ancient-changes";

/// A field another manager owns and this write would change.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub manager: String,
    pub path: Path,
}

/// The managedFields of one object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Managed {
    pub entries: Vec<Entry>,
}

/// Why managedFields could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

impl Managed {
    /// Reads `metadata.managedFields` (absent or null is no entries).
    pub fn decode(list: Option<&Value>) -> Result<Managed, DecodeError> {
        let items = match list {
            None | Some(Value::Null) => return Ok(Managed::default()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(DecodeError("managedFields must be a list".into())),
        };
        let mut managed = Managed::default();
        for item in items {
            let str_field = |f: &str| {
                item.get(f)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let operation = match item.get("operation").and_then(Value::as_str) {
                Some("Apply") => Operation::Apply,
                Some("Update") => Operation::Update,
                other => return Err(DecodeError(format!("invalid operation {other:?}"))),
            };
            if item.get("fieldsType").and_then(Value::as_str) != Some("FieldsV1") {
                return Err(DecodeError(format!(
                    "invalid fieldsType {:?}",
                    item.get("fieldsType")
                )));
            }
            let set = match item.get("fieldsV1") {
                None | Some(Value::Null) => Set::new(),
                Some(v) => {
                    Set::from_fields_v1(v).ok_or_else(|| DecodeError("invalid fieldsV1".into()))?
                }
            };
            let entry = Entry {
                manager: str_field("manager"),
                operation,
                api_version: str_field("apiVersion"),
                time: item.get("time").and_then(Value::as_str).map(str::to_string),
                subresource: str_field("subresource"),
                set,
            };
            let who = entry.who();
            match managed.entries.iter_mut().find(|e| e.is(&who)) {
                Some(existing) => existing.set = existing.set.union(&entry.set),
                None => managed.entries.push(entry),
            }
        }
        Ok(managed)
    }

    /// The managedFields list, ordered as upstream stores it (operation, time, manager,
    /// apiVersion, subresource).
    pub fn encode(&self) -> Value {
        let mut entries: Vec<&Entry> = self.entries.iter().filter(|e| !e.set.is_empty()).collect();
        entries.sort_by(|p, q| {
            p.operation
                .cmp(&q.operation)
                .then_with(|| time_order(p.time.as_deref(), q.time.as_deref()))
                .then_with(|| p.manager.cmp(&q.manager))
                .then_with(|| p.api_version.cmp(&q.api_version))
                .then_with(|| p.subresource.cmp(&q.subresource))
        });
        Value::Array(
            entries
                .into_iter()
                .map(|e| {
                    let mut m = Map::new();
                    m.insert("manager".into(), json!(e.manager));
                    m.insert("operation".into(), json!(e.operation.as_str()));
                    m.insert("apiVersion".into(), json!(e.api_version));
                    if let Some(t) = &e.time {
                        m.insert("time".into(), json!(t));
                    }
                    m.insert("fieldsType".into(), json!("FieldsV1"));
                    m.insert("fieldsV1".into(), e.set.to_fields_v1());
                    if !e.subresource.is_empty() {
                        m.insert("subresource".into(), json!(e.subresource));
                    }
                    Value::Object(m)
                })
                .collect(),
        )
    }

    fn position(&self, who: &Who) -> Option<usize> {
        self.entries.iter().position(|e| e.is(who))
    }

    /// The set `who` owns now.
    pub fn owned_by(&self, who: &Who) -> Set {
        self.position(who)
            .map(|i| self.entries[i].set.clone())
            .unwrap_or_default()
    }

    fn finish(&mut self) {
        let strip = stripped();
        for e in &mut self.entries {
            e.set = e.set.difference(&strip);
        }
        self.entries.retain(|e| !e.set.is_empty());
        self.cap_updaters();
    }

    /// At most `MAX_UPDATERS` Update entries: the oldest are folded into one
    /// `ancient-changes` entry per apiVersion (upstream's capManagers).
    fn cap_updaters(&mut self) {
        let count = |m: &Managed| {
            m.entries
                .iter()
                .filter(|e| e.operation == Operation::Update)
                .count()
        };
        if count(self) <= MAX_UPDATERS {
            return;
        }
        let mut oldest: Vec<(Option<String>, String, String, String)> = self
            .entries
            .iter()
            .filter(|e| e.operation == Operation::Update && e.manager != ANCIENT_CHANGES)
            .map(|e| {
                (
                    e.time.clone(),
                    e.manager.clone(),
                    e.api_version.clone(),
                    e.subresource.clone(),
                )
            })
            .collect();
        oldest.sort();
        for (time, manager, api_version, subresource) in oldest {
            if count(self) <= MAX_UPDATERS {
                break;
            }
            let who = Who {
                manager,
                operation: Operation::Update,
                api_version: api_version.clone(),
                subresource,
            };
            let Some(i) = self.position(&who) else {
                continue;
            };
            let entry = self.entries.remove(i);
            let bucket = Who {
                manager: ANCIENT_CHANGES.into(),
                operation: Operation::Update,
                api_version,
                subresource: String::new(),
            };
            match self.position(&bucket) {
                Some(b) => {
                    let e = &mut self.entries[b];
                    e.set = e.set.union(&entry.set);
                    e.time = time;
                }
                None => self.entries.push(Entry {
                    manager: ANCIENT_CHANGES.into(),
                    subresource: String::new(),
                    ..entry
                }),
            }
        }
    }

    /// Takes changed fields from the other managers (or, unless `force`, reports them as
    /// conflicts) and drops removed fields from everyone but `who`.
    fn take(
        &mut self,
        typed: &Typed<'_>,
        scope: Scope,
        old: &Value,
        new: &Value,
        who: &Who,
        force: bool,
    ) -> Result<Comparison, Vec<Conflict>> {
        let cmp = scope.filter_comparison(typed.compare(old, new));
        let changed = cmp.modified.union(&cmp.added);
        let mut conflicts = Vec::new();
        for e in self.entries.iter().filter(|e| !e.is(who)) {
            for path in e.set.intersection(&changed).paths() {
                conflicts.push(Conflict {
                    manager: e.display(),
                    path,
                });
            }
        }
        if !force && !conflicts.is_empty() {
            conflicts.sort_by(|a, b| a.manager.cmp(&b.manager).then_with(|| a.path.cmp(&b.path)));
            return Err(conflicts);
        }
        for e in self.entries.iter_mut().filter(|e| !e.is(who)) {
            e.set = e.set.difference(&changed).difference(&cmp.removed);
        }
        Ok(cmp)
    }

    /// A create, update or non-apply patch from `old` to `new` by `who`: `who` gains the
    /// fields it added or changed (taking them from others); its time moves only then.
    pub fn update(
        &mut self,
        typed: &Typed<'_>,
        scope: Scope,
        old: &Value,
        new: &Value,
        who: &Who,
        now: &str,
    ) {
        // Ownership changes are computed for a transient manager so that `who`'s earlier
        // fields shrink like anyone else's, then the fields it took are added to its entry.
        let transient = Who {
            manager: String::new(),
            operation: Operation::Update,
            api_version: "\u{0}transient".into(),
            subresource: String::new(),
        };
        let Ok(cmp) = self.take(typed, scope, old, new, &transient, true) else {
            return;
        };
        let taken = cmp.modified.union(&cmp.added).difference(&stripped());
        if !taken.is_empty() {
            match self.position(who) {
                Some(i) => {
                    let e = &mut self.entries[i];
                    e.set = e.set.union(&taken);
                    e.time = Some(now.to_string());
                }
                None => self.entries.push(Entry {
                    manager: who.manager.clone(),
                    operation: who.operation,
                    api_version: who.api_version.clone(),
                    time: Some(now.to_string()),
                    subresource: who.subresource.clone(),
                    set: taken,
                }),
            }
        }
        self.finish();
    }

    /// An apply of `config` onto `live` by `who`. Returns the new object, or `None` when
    /// the object does not change (the entries may still have).
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        typed: &Typed<'_>,
        scope: Scope,
        live: &Value,
        config: &Value,
        who: &Who,
        force: bool,
        now: &str,
    ) -> Result<Option<Value>, Vec<Conflict>> {
        let merged = typed.merge(live, config);
        let last = self.owned_by(who);
        let applied = scope
            .filter(&typed.field_set(config))
            .difference(&stripped());
        match self.position(who) {
            Some(i) => {
                let e = &mut self.entries[i];
                e.set = applied;
                e.api_version = who.api_version.clone();
            }
            None => self.entries.push(Entry {
                manager: who.manager.clone(),
                operation: Operation::Apply,
                api_version: who.api_version.clone(),
                time: None,
                subresource: who.subresource.clone(),
                set: applied,
            }),
        }
        let new = if last.is_empty() {
            merged
        } else {
            self.prune(typed, &merged, &last)
        };
        self.take(typed, scope, live, &new, who, force)?;
        let changed = &new != live;
        if changed && let Some(i) = self.position(who) {
            self.entries[i].time = Some(now.to_string());
        }
        self.finish();
        Ok(changed.then_some(new))
    }

    /// Removes from `merged` what the applier owned before (`last`) and nobody owns now;
    /// a struct nobody owns anything in any more goes with it.
    fn prune(&self, typed: &Typed<'_>, merged: &Value, last: &Set) -> Value {
        let last = typed.with_named_fields(last);
        let owned = self
            .entries
            .iter()
            .fold(Set::new(), |acc, e| acc.union(&e.set));
        let owned = typed.with_named_fields(&owned);
        let merged_set = typed.with_named_fields(&typed.field_set(merged));
        let without_last = typed.remove(merged, &last);
        let kept = typed
            .with_named_fields(&typed.field_set(&without_last))
            .union(&owned);
        let with_owned = typed.remove(merged, &merged_set.difference(&kept));
        let dropped = merged_set
            .difference(&typed.with_named_fields(&typed.field_set(&with_owned)))
            .intersection(&last);
        typed.remove(merged, &dropped)
    }
}

impl Entry {
    fn who(&self) -> Who {
        Who {
            manager: self.manager.clone(),
            operation: self.operation,
            api_version: self.api_version.clone(),
            subresource: self.subresource.clone(),
        }
    }
}

/// Upstream orders by the time's Unix seconds, a missing time first; RFC 3339 UTC
/// timestamps sort as text.
fn time_order(p: Option<&str>, q: Option<&str>) -> Ordering {
    p.unwrap_or("").cmp(q.unwrap_or(""))
}
