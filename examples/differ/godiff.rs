//! The changes between two messages, found and worded as the Go differ
//! finds them with `github.com/r3labs/diff/v3` (v3.0.0) on the Go structs:
//!
//! ```text
//! update: [Linux Resources Memory Limit Value]: From: 5 -> To: 7
//! create: [Annotations owner]: From: <nil> -> To: web
//! update: [Env 1]: From: B=2 -> To: B=3
//! update: [Linux Resources Cpu]: From: <nil> -> To: shares:{value:1024}
//! ```
//!
//! The rules, as r3labs/diff applies them to generated Go structs:
//!
//! - scalars that differ are an `update`;
//! - a message field set on one side only is an `update` from or to
//!   `<nil>`, the message shown in protobuf's compact text format; set on
//!   both, its fields are compared;
//! - slices are compared as multisets: each element of the first without an
//!   equal, unmatched element in the second is missing from it, and the
//!   other way round; missing elements are paired by index (the first's
//!   index `i` with the second's index `i`) and compared; an element with no
//!   partner is a `create` or `delete` (a message: one line per field it
//!   sets);
//! - maps are compared key by key; a key on one side only is a `create` or
//!   `delete`.
//!
//! Go visits a map's keys in random order; this visits them sorted (the
//! first map's keys, then the keys only the second has), so the lines of one
//! map's changes may come in another order than Go's.

use super::gotree::{Go, Struct};

/// The kind of a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A value that appeared.
    Create,
    /// A value that changed.
    Update,
    /// A value that went away.
    Delete,
}

impl Kind {
    /// Its name in the changelog.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Update => "update",
            Kind::Delete => "delete",
        }
    }
}

/// One change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub kind: Kind,
    /// Where: Go field names, slice indices and map keys.
    pub path: Vec<String>,
    /// The old value as Go's `%v` prints it, `None` for nil.
    pub from: Option<String>,
    /// The new value, likewise.
    pub to: Option<String>,
    /// Whether the change is of a map entry (whose order Go randomizes).
    pub in_map: bool,
}

impl Change {
    /// `update: [Env 1]: From: B=2 -> To: B=3`.
    pub fn line(&self) -> String {
        format!(
            "{}: [{}]: From: {} -> To: {}",
            self.kind.name(),
            self.path.join(" "),
            self.from.as_deref().unwrap_or("<nil>"),
            self.to.as_deref().unwrap_or("<nil>")
        )
    }
}

/// The changes from `a` to `b`.
pub fn diff(a: &Struct, b: &Struct) -> Vec<Change> {
    let mut d = Differ::default();
    d.structs(&[], Some(a), Some(b), false);
    d.changes
}

#[derive(Default)]
struct Differ {
    changes: Vec<Change>,
}

fn path_with(path: &[String], element: &str) -> Vec<String> {
    let mut p = path.to_vec();
    p.push(element.to_string());
    p
}

impl Differ {
    fn add(
        &mut self,
        kind: Kind,
        path: &[String],
        from: Option<String>,
        to: Option<String>,
        in_map: bool,
    ) {
        self.changes.push(Change {
            kind,
            path: path.to_vec(),
            from,
            to,
            in_map,
        });
    }

    /// Two values of one type; `None` is Go's invalid value (a slice
    /// element or map entry the other side lacks).
    fn value(&mut self, path: &[String], a: Option<&Go>, b: Option<&Go>, in_map: bool) {
        let kind = a.or(b);
        match kind {
            None => {}
            Some(Go::Ptr(_)) => self.pointer(path, a, b, in_map),
            Some(Go::Slice(_)) => match (a, b) {
                (Some(Go::Slice(x)), Some(Go::Slice(y))) => self.slice(path, x, y, in_map),
                (None, Some(v)) => self.add(Kind::Create, path, None, Some(v.show()), in_map),
                (Some(v), None) => self.add(Kind::Delete, path, Some(v.show()), None, in_map),
                _ => {}
            },
            Some(Go::Map(_)) => match (a, b) {
                (Some(Go::Map(x)), Some(Go::Map(y))) => self.map(path, x, y),
                (None, Some(Go::Map(y))) => self.map(path, &[], y),
                (Some(Go::Map(x)), None) => self.map(path, x, &[]),
                _ => {}
            },
            Some(_) => match (a, b) {
                (None, Some(v)) => self.add(Kind::Create, path, None, Some(v.show()), in_map),
                (Some(v), None) => self.add(Kind::Delete, path, Some(v.show()), None, in_map),
                (Some(x), Some(y)) => {
                    if !same_scalar(x, y) {
                        self.add(Kind::Update, path, Some(x.show()), Some(y.show()), in_map);
                    }
                }
                (None, None) => {}
            },
        }
    }

    fn pointer(&mut self, path: &[String], a: Option<&Go>, b: Option<&Go>, in_map: bool) {
        fn target(v: Option<&Go>) -> Option<&Struct> {
            match v {
                Some(Go::Ptr(Some(s))) => Some(s),
                _ => None,
            }
        }
        match (a, b) {
            (None, Some(v)) => match target(Some(v)) {
                Some(s) => self.structs(path, None, Some(s), in_map),
                None => self.add(Kind::Create, path, None, Some(v.show()), in_map),
            },
            (Some(v), None) => match target(Some(v)) {
                Some(s) => self.structs(path, Some(s), None, in_map),
                None => self.add(Kind::Delete, path, Some(v.show()), None, in_map),
            },
            (Some(x), Some(y)) => match (target(Some(x)), target(Some(y))) {
                (None, None) => {}
                (None, Some(_)) => self.add(Kind::Update, path, None, Some(y.show()), in_map),
                (Some(_), None) => self.add(Kind::Update, path, Some(x.show()), None, in_map),
                (Some(s), Some(t)) => self.structs(path, Some(s), Some(t), in_map),
            },
            (None, None) => {}
        }
    }

    /// r3labs' `diffStruct`, and `structValues` for a struct on one side.
    fn structs(&mut self, path: &[String], a: Option<&Struct>, b: Option<&Struct>, in_map: bool) {
        match (a, b) {
            (Some(a), Some(b)) => {
                for (fa, fb) in a.fields.iter().zip(&b.fields) {
                    self.value(
                        &path_with(path, &fa.go_name),
                        Some(&fa.value),
                        Some(&fb.value),
                        in_map,
                    );
                }
            }
            (None, Some(s)) => self.struct_values(Kind::Create, path, s, in_map),
            (Some(s), None) => self.struct_values(Kind::Delete, path, s, in_map),
            (None, None) => {}
        }
    }

    /// Every field `s` sets, as a `create` (or `delete`) of its own: the
    /// changes from the zero struct to `s`, their kind replaced.
    fn struct_values(&mut self, kind: Kind, path: &[String], s: &Struct, in_map: bool) {
        let mut nested = Differ::default();
        for f in &s.fields {
            let zero = f.value.zero();
            nested.value(
                &path_with(path, &f.go_name),
                Some(&zero),
                Some(&f.value),
                in_map,
            );
        }
        for c in nested.changes {
            let (from, to) = match kind {
                Kind::Create => (None, c.to),
                _ => (c.to, None),
            };
            self.changes.push(Change {
                kind,
                path: c.path,
                from,
                to,
                in_map: c.in_map,
            });
        }
    }

    /// r3labs' `diffSliceGeneric`: the elements each side misses, paired
    /// by index in the order their indices first come up.
    fn slice(&mut self, path: &[String], a: &[Go], b: &[Go], in_map: bool) {
        let mut slots: Vec<(usize, Option<&Go>, Option<&Go>)> = Vec::new();
        let mut taken = vec![false; b.len()];
        for (i, x) in a.iter().enumerate() {
            if !take_equal(b, x, &mut taken) {
                slots.push((i, Some(x), None));
            }
        }
        let mut taken = vec![false; a.len()];
        for (i, y) in b.iter().enumerate() {
            if !take_equal(a, y, &mut taken) {
                match slots.iter_mut().find(|(key, _, _)| *key == i) {
                    Some(slot) => slot.2 = Some(y),
                    None => slots.push((i, None, Some(y))),
                }
            }
        }
        for (key, x, y) in slots {
            self.value(&path_with(path, &key.to_string()), x, y, in_map);
        }
    }

    /// r3labs' `diffMap`: the first map's keys, then the second's others.
    fn map(&mut self, path: &[String], a: &[(String, Go)], b: &[(String, Go)]) {
        let get = |m: &'_ [(String, Go)], k: &str| -> Option<usize> {
            m.iter().position(|(x, _)| x == k)
        };
        let mut keys: Vec<&str> = a.iter().map(|(k, _)| k.as_str()).collect();
        keys.extend(
            b.iter()
                .map(|(k, _)| k.as_str())
                .filter(|k| get(a, k).is_none()),
        );
        for k in keys {
            let x = get(a, k).map(|i| &a[i].1);
            let y = get(b, k).map(|i| &b[i].1);
            self.value(&path_with(path, k), x, y, true);
        }
    }
}

/// Scalars compare by value (an enum by its number).
fn same_scalar(a: &Go, b: &Go) -> bool {
    match (a, b) {
        (Go::Enum(x, _), Go::Enum(y, _)) => x == y,
        _ => a == b,
    }
}

/// Marks and says whether `s` has an element equal to `v` not taken yet.
fn take_equal(s: &[Go], v: &Go, taken: &mut [bool]) -> bool {
    for (j, x) in s.iter().enumerate() {
        if taken[j] {
            continue;
        }
        let mut d = Differ::default();
        d.value(&[], Some(x), Some(v), false);
        if d.changes.is_empty() {
            taken[j] = true;
            return true;
        }
    }
    false
}
