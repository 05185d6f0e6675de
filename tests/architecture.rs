//! The crate's module graph: layers, and no cycles.
//!
//! This test reads every `.rs` file under `src/`, collects the crate paths
//! it uses (`crate::...`, `super::...`, `self::...` and paths through its
//! own child modules, in `use` trees and in code), resolves each to the
//! file that defines the item (following `use` re-exports, so a path
//! through a `mod.rs` façade counts against the file it leads to), and
//! fails on:
//!
//! (a) an import from a higher layer;
//! (b) `mux` → `ttrpc`, and `stub` ⇄ `runtime` in either direction;
//! (c) a cycle among the entries of one directory (its files, and its
//!     subdirectories taken as one node each), reported as a path.
//!
//! # Layers
//!
//! | layer | modules |
//! | --- | --- |
//! | 0 | `error`, `status` (gRPC codes), `event_mask` (the type the error names), `event_table` (the one table of events), `pb`, `locking`, `log_text` (peer text made safe to log), `socket`, `proto` (generated code), `setters` (the builder setter macro) |
//! | 1 | `api` (with `api::fixtures`), `decode` (Go-compatible decoding of annotations and configs) |
//! | 2 | `mux`, `ttrpc` (`ttrpc` may use `mux`, not the reverse) |
//! | 3 | `stub`, `runtime`, `logging`, `logging_config` |
//! | 4 | `cli` (what plugin binaries share: flags, signals, exit codes) |
//!
//! `lib.rs` is the root that declares all of them and is not checked. A
//! new top-level module fails the test until it is placed in this table.
//!
//! A directory's `mod.rs` is the directory's module itself: its files are
//! its children. A child using its parent's own items (`super::X` defined
//! in `mod.rs`) and the parent declaring and re-exporting its children are
//! the module tree, not a cycle among peers; a name the parent re-exports
//! from another child counts against that child.
//!
//! Code under `#[cfg(test)]` (unit tests) is not part of the library's
//! graph and is left out; comments, doc links and string literals too.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

#[path = "architecture/scan.rs"]
mod scan;

use scan::{drop_test_items, scan, strip, Uses};

/// Violations in `src/stub/` and `src/runtime/` that are still being
/// removed, each as "file -> file" (an edge on a cycle, or an import
/// against the layering). The test asserts that the violations found in
/// those two directories are exactly these, so an entry that is fixed must
/// be removed here, and no new one can slip in. Empty this list when that
/// work lands; everything outside those two directories has no allowance.
const KNOWN_VIOLATIONS: &[&str] = &[];

/// The directories whose violations `KNOWN_VIOLATIONS` may list.
const ALLOWANCE_DIRS: &[&str] = &["stub/", "runtime/"];

fn layer_of(top: &str) -> Option<u8> {
    Some(match top {
        "error" | "status" | "event_mask" | "event_table" | "pb" | "locking" | "log_text"
        | "socket" | "proto" | "setters" => 0,
        "api" | "decode" => 1,
        "mux" | "ttrpc" => 2,
        "stub" | "runtime" | "logging" | "logging_config" => 3,
        "cli" => 4,
        _ => return None,
    })
}

// --- the module graph --------------------------------------------------------

/// One source file as a module.
struct Module {
    /// Path relative to `src/`, e.g. `ttrpc/conn/read.rs`.
    file: String,
    /// Module path, e.g. `["ttrpc", "conn", "read"]`; empty for `lib.rs`.
    path: Vec<String>,
    uses: Uses,
}

fn module_path(file: &str) -> Vec<String> {
    let stem = file.trim_end_matches(".rs");
    let mut parts: Vec<String> = stem.split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// One resolved dependency.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: String,
    to: String,
    /// The path as written, for messages.
    via: String,
}

struct Graph {
    modules: Vec<Module>,
    by_path: HashMap<Vec<String>, usize>,
    edges: Vec<Edge>,
}

impl Graph {
    fn build(sources: &BTreeMap<String, String>) -> Graph {
        let mut modules = Vec::new();
        let mut test_only = BTreeSet::new();
        for (file, src) in sources {
            let (code, test_mods) = drop_test_items(&strip(src));
            let path = module_path(file);
            for m in test_mods {
                let mut p = path.clone();
                p.push(m);
                test_only.insert(p);
            }
            modules.push(Module {
                file: file.clone(),
                path,
                uses: scan(&code),
            });
        }
        // A file under a test-only module is test code.
        modules.retain(|m| !test_only.iter().any(|t| m.path.starts_with(t)));
        let by_path = modules
            .iter()
            .enumerate()
            .map(|(i, m)| (m.path.clone(), i))
            .collect();
        let mut g = Graph {
            modules,
            by_path,
            edges: Vec::new(),
        };
        g.edges = g.resolve_all();
        g
    }

    /// The absolute path `p` (written in module `here`) denotes, or `None`
    /// when it leaves the crate (std, dependencies, locals).
    fn absolute(&self, here: &[String], p: &[String]) -> Option<Vec<String>> {
        let first = p.first()?.as_str();
        let mut base: Vec<String> = match first {
            "crate" => Vec::new(),
            "self" => here.to_vec(),
            "super" => {
                let mut b = here.to_vec();
                let mut rest = p;
                while rest.first().map(String::as_str) == Some("super") {
                    b.pop()?;
                    rest = &rest[1..];
                }
                b.extend(rest.iter().cloned());
                return Some(b);
            }
            _ => {
                // A child module of `here` (2018 paths).
                let mut child = here.to_vec();
                child.push(first.to_string());
                if self.by_path.contains_key(&child) {
                    here.to_vec()
                } else {
                    return None;
                }
            }
        };
        let skip = usize::from(matches!(first, "crate" | "self"));
        base.extend(p[skip..].iter().cloned());
        Some(base)
    }

    /// The deepest module on absolute path `p`, and how many segments of
    /// `p` name it.
    fn deepest_module(&self, p: &[String]) -> Option<(usize, usize)> {
        (0..=p.len())
            .rev()
            .find_map(|k| self.by_path.get(&p[..k]).map(|&i| (i, k)))
    }

    /// The file defining what absolute path `p` names: the deepest module
    /// on it, then through that module's imports while the next segment is
    /// a name it imports from elsewhere in the crate.
    fn target(&self, p: &[String], depth: usize) -> Option<usize> {
        let (i, n) = self.deepest_module(p)?;
        if depth < 16 {
            if let Some(name) = p.get(n) {
                let m = &self.modules[i];
                let via = m
                    .uses
                    .imports
                    .iter()
                    .find(|(_, local)| local == name)
                    .and_then(|(full, _)| self.absolute(&m.path, full));
                if let Some(mut full) = via {
                    full.extend(p[n + 1..].iter().cloned());
                    if let Some(t) = self.target(&full, depth + 1) {
                        return Some(t);
                    }
                }
            }
        }
        Some(i)
    }

    fn resolve_all(&self) -> Vec<Edge> {
        let mut edges = BTreeSet::new();
        for (i, m) in self.modules.iter().enumerate() {
            let written = m
                .uses
                .imports
                .iter()
                .map(|(p, _)| p)
                .chain(m.uses.paths.iter());
            for p in written {
                let Some(abs) = self.absolute(&m.path, p) else {
                    continue;
                };
                // The module the path names as written (a façade that
                // re-exports counts: the import depends on its re-export),
                // and the file that defines the item.
                let named = self.deepest_module(&abs).map(|(n, _)| n);
                for t in [named, self.target(&abs, 0)].into_iter().flatten() {
                    if t != i {
                        edges.insert(Edge {
                            from: m.file.clone(),
                            to: self.modules[t].file.clone(),
                            via: p.join("::"),
                        });
                    }
                }
            }
        }
        // One edge per pair of files (the first path as written).
        let mut seen = BTreeSet::new();
        edges
            .into_iter()
            .filter(|e| seen.insert((e.from.clone(), e.to.clone())))
            .collect()
    }

    fn module(&self, file: &str) -> &Module {
        self.modules.iter().find(|m| m.file == file).unwrap()
    }
}

// --- the rules ---------------------------------------------------------------

/// One broken rule: the "from -> to" key and a message.
#[derive(Debug)]
struct Violation {
    key: String,
    message: String,
}

fn layer_violations(g: &Graph) -> Vec<Violation> {
    let mut out = Vec::new();
    for m in &g.modules {
        let Some(top) = m.path.first() else { continue };
        if layer_of(top).is_none() {
            out.push(Violation {
                key: format!("{} -> ?", m.file),
                message: format!(
                    "{}: top-level module `{top}` has no layer; place it in layer_of()",
                    m.file
                ),
            });
        }
    }
    for e in &g.edges {
        let (from, to) = (g.module(&e.from), g.module(&e.to));
        let (Some(a), Some(b)) = (from.path.first(), to.path.first()) else {
            continue;
        };
        let (Some(la), Some(lb)) = (layer_of(a), layer_of(b)) else {
            continue;
        };
        let why = if lb > la {
            Some(format!("layer {la} (`{a}`) imports layer {lb} (`{b}`)"))
        } else if a == "mux" && b == "ttrpc" {
            Some("`mux` must not import `ttrpc` (only the reverse)".to_string())
        } else if (a == "stub" && b == "runtime") || (a == "runtime" && b == "stub") {
            Some(format!("`{a}` must not import `{b}`"))
        } else {
            None
        };
        if let Some(why) = why {
            out.push(Violation {
                key: format!("{} -> {}", e.from, e.to),
                message: format!("{} imports {} via `{}`: {why}", e.from, e.to, e.via),
            });
        }
    }
    out
}

/// The entry of directory `dir` (a module path) that `file` falls under:
/// the file itself, or the subdirectory holding it (as `dir/sub/`).
/// `None` for files outside `dir` and for `dir`'s own `mod.rs`/`lib.rs`.
fn entry_of(g: &Graph, dir: &[String], file: &str) -> Option<String> {
    let m = g.module(file);
    if m.path.len() <= dir.len() || !m.path.starts_with(dir) {
        return None;
    }
    let child = &m.path[..dir.len() + 1];
    let is_dir = g
        .modules
        .iter()
        .any(|o| o.path == child && o.file.ends_with("/mod.rs"));
    let prefix: String = child.iter().map(|s| format!("{s}/")).collect();
    Some(if is_dir {
        prefix
    } else {
        g.modules[g.by_path[child]].file.clone()
    })
}

/// Strongly connected components of size > 1 (Tarjan).
fn cycles(nodes: &BTreeSet<String>, adj: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        adj: &'a BTreeMap<String, BTreeSet<String>>,
        index: HashMap<String, usize>,
        low: HashMap<String, usize>,
        stack: Vec<String>,
        on: BTreeSet<String>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit(t: &mut T<'_>, v: &str) {
        t.index.insert(v.to_string(), t.next);
        t.low.insert(v.to_string(), t.next);
        t.next += 1;
        t.stack.push(v.to_string());
        t.on.insert(v.to_string());
        let succ: Vec<String> = t.adj.get(v).into_iter().flatten().cloned().collect();
        for w in succ {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let lw = t.low[&w];
                let lv = t.low[v];
                t.low.insert(v.to_string(), lv.min(lw));
            } else if t.on.contains(&w) {
                let iw = t.index[&w];
                let lv = t.low[v];
                t.low.insert(v.to_string(), lv.min(iw));
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(&w);
                let done = w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        adj,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in nodes {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// The shortest cycle through edge `a -> b` inside `comp`, as a path
/// `a -> b -> ... -> a`.
fn cycle_path(
    a: &str,
    b: &str,
    comp: &[String],
    adj: &BTreeMap<String, BTreeSet<String>>,
) -> String {
    // Breadth-first search from `b` back to `a`.
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([b.to_string()]);
    let mut found = b == a;
    while let Some(v) = queue.pop_front() {
        if v == a {
            found = true;
            break;
        }
        for w in adj.get(&v).into_iter().flatten() {
            if comp.contains(w) && w != b && !prev.contains_key(w) {
                prev.insert(w.clone(), v.clone());
                queue.push_back(w.clone());
            }
        }
    }
    if !found {
        return comp.join(", ");
    }
    let mut back = vec![a.to_string()];
    let mut cur = a.to_string();
    while cur != b {
        cur = prev[&cur].clone();
        back.push(cur.clone());
    }
    back.push(a.to_string());
    back.reverse();
    back.join(" -> ")
}

fn cycle_violations(g: &Graph) -> Vec<Violation> {
    let mut dirs: BTreeSet<Vec<String>> = BTreeSet::new();
    for m in &g.modules {
        if m.file.ends_with("/mod.rs") || m.file == "lib.rs" {
            dirs.insert(m.path.clone());
        }
    }
    let mut out = Vec::new();
    for dir in dirs {
        let mut nodes = BTreeSet::new();
        let mut adj: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut via: BTreeMap<(String, String), String> = BTreeMap::new();
        for e in &g.edges {
            let (Some(a), Some(b)) = (entry_of(g, &dir, &e.from), entry_of(g, &dir, &e.to)) else {
                continue;
            };
            if a == b {
                continue;
            }
            nodes.insert(a.clone());
            nodes.insert(b.clone());
            adj.entry(a.clone()).or_default().insert(b.clone());
            via.entry((a, b))
                .or_insert_with(|| format!("{} imports {} via `{}`", e.from, e.to, e.via));
        }
        for comp in cycles(&nodes, &adj) {
            for a in &comp {
                for b in adj.get(a).into_iter().flatten() {
                    if comp.contains(b) {
                        let path = cycle_path(a, b, &comp, &adj);
                        out.push(Violation {
                            key: format!("{a} -> {b}"),
                            message: format!("cycle {path}: {}", via[&(a.clone(), b.clone())]),
                        });
                    }
                }
            }
        }
    }
    out
}

fn violations(g: &Graph) -> Vec<Violation> {
    let mut v = layer_violations(g);
    v.extend(cycle_violations(g));
    v
}

fn read_sources(root: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(&p)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
                out.insert(rel, text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn src_graph() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    Graph::build(&read_sources(&root))
}

#[test]
fn the_module_graph_keeps_its_layers_and_has_no_cycles() {
    let g = src_graph();
    assert!(
        g.modules.len() > 40 && g.edges.len() > 100,
        "the scan found only {} files and {} imports",
        g.modules.len(),
        g.edges.len()
    );
    let found = violations(&g);
    let allowed = |key: &str| ALLOWANCE_DIRS.iter().any(|d| key.starts_with(d));
    let mut report = String::new();
    let mut in_allowance = BTreeSet::new();
    for v in &found {
        if allowed(&v.key) {
            in_allowance.insert(v.key.clone());
        } else {
            writeln!(report, "  {}", v.message).unwrap();
        }
    }
    let known: BTreeSet<String> = KNOWN_VIOLATIONS.iter().map(|s| s.to_string()).collect();
    for k in in_allowance.difference(&known) {
        let msgs: Vec<&str> = found
            .iter()
            .filter(|v| &v.key == k)
            .map(|v| v.message.as_str())
            .collect();
        writeln!(report, "  new in {k}: {}", msgs.join("; ")).unwrap();
    }
    for k in known.difference(&in_allowance) {
        writeln!(
            report,
            "  KNOWN_VIOLATIONS lists {k:?}, which is no longer found: remove it"
        )
        .unwrap();
    }
    for k in &known {
        assert!(
            allowed(k),
            "KNOWN_VIOLATIONS may only list files in {ALLOWANCE_DIRS:?}: {k}"
        );
    }
    assert!(report.is_empty(), "module graph violations:\n{report}");
}

// --- the checker checks ------------------------------------------------------

fn graph_of(files: &[(&str, &str)]) -> Graph {
    let sources = files
        .iter()
        .map(|(f, s)| (f.to_string(), s.to_string()))
        .collect();
    Graph::build(&sources)
}

fn keys(g: &Graph) -> Vec<String> {
    let mut k: Vec<String> = violations(g).into_iter().map(|v| v.key).collect();
    k.sort();
    k.dedup();
    k
}

#[test]
fn the_scanner_reads_use_trees_and_paths_but_not_comments_strings_or_tests() {
    let code = r##"
        //! Links to [`crate::stub::Stub`] in docs do not count.
        use crate::a::{b::{self, C}, d as e, f::*};
        use super::g;
        pub(crate) use self::h::I;
        use std::sync::Mutex;
        mod h;
        fn x() {
            let s = "crate::not::this";
            let r = r#"crate::nor::this"#;
            let c = '"';
            crate::pb::decode::<T>(&[]);
            h::J::new();
            y.z::<u8>();
        }
        /* crate::block::comment */
        #[cfg(test)]
        mod tests {
            use crate::stub::Stub;
        }
        #[cfg(test)]
        mod more_tests;
    "##;
    let (code, test_mods) = drop_test_items(&strip(code));
    assert_eq!(test_mods, ["more_tests"]);
    let u = scan(&code);
    let imports: Vec<String> = u
        .imports
        .iter()
        .map(|(p, n)| format!("{}={n}", p.join("::")))
        .collect();
    assert_eq!(
        imports,
        [
            "crate::a::b=b",
            "crate::a::b::C=C",
            "crate::a::d=e",
            "crate::a::f=*",
            "super::g=g",
            "self::h::I=I",
            "std::sync::Mutex=Mutex"
        ]
    );
    let paths: Vec<String> = u.paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(paths, ["crate::pb::decode", "h::J::new"]);
    assert_eq!(u.mods, ["h"]);
}

#[test]
fn layer_breaks_are_named_with_the_file_and_the_import() {
    let g = graph_of(&[
        (
            "lib.rs",
            "mod error; mod api; mod mux; mod ttrpc; mod stub; mod runtime;",
        ),
        ("error.rs", "use crate::api::EventMask;"),
        ("api/mod.rs", "pub use crate::error::Error;"),
        ("mux/mod.rs", "use crate::ttrpc::lock;"),
        ("ttrpc/mod.rs", "use crate::mux::Trunk; pub fn lock() {}"),
        ("stub/mod.rs", "fn f() { crate::runtime::Runtime::new(); }"),
        ("runtime/mod.rs", "use crate::api::Pod;"),
    ]);
    let v = violations(&g);
    let msgs: Vec<&str> = v.iter().map(|v| v.message.as_str()).collect();
    assert!(
        msgs.iter().any(
            |m| m.contains("error.rs imports api/mod.rs via `crate::api::EventMask`")
                && m.contains("layer 0 (`error`) imports layer 1 (`api`)")
        ),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("`mux` must not import `ttrpc`")),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("stub/mod.rs imports runtime/mod.rs")),
        "{msgs:#?}"
    );
    // The root's own cycle error <-> api is reported as a cycle too.
    assert!(
        keys(&g).contains(&"api/ -> error.rs".to_string()),
        "{:?}",
        keys(&g)
    );
    assert!(!keys(&g).iter().any(|k| k.starts_with("runtime/ -> api")));
}

#[test]
fn a_cycle_among_siblings_is_reported_as_a_path_also_through_a_facade() {
    let g = graph_of(&[
        ("lib.rs", "mod ttrpc;"),
        ("ttrpc/mod.rs", "mod conn; mod codec; pub use codec::Frame;"),
        ("ttrpc/codec.rs", "pub struct Frame;"),
        (
            "ttrpc/conn/mod.rs",
            "mod read; mod serve; mod write; use read::ReadSide; pub(crate) struct Shared;",
        ),
        // A child using its parent's own item is the module tree.
        (
            "ttrpc/conn/read.rs",
            "use super::Shared; use super::serve::Envelope; pub struct ReadSide;",
        ),
        // Through the parent's re-export: counts against read.rs.
        (
            "ttrpc/conn/serve.rs",
            "use super::ReadSide; use crate::ttrpc::Frame; pub struct Envelope;",
        ),
        ("ttrpc/conn/write.rs", "use super::super::codec::Frame;"),
    ]);
    let v = violations(&g);
    let cycle: Vec<&Violation> = v
        .iter()
        .filter(|v| v.message.starts_with("cycle"))
        .collect();
    assert_eq!(
        keys(&g),
        [
            "ttrpc/conn/read.rs -> ttrpc/conn/serve.rs",
            "ttrpc/conn/serve.rs -> ttrpc/conn/read.rs"
        ]
    );
    assert!(
        cycle[0]
            .message
            .contains("cycle ttrpc/conn/read.rs -> ttrpc/conn/serve.rs -> ttrpc/conn/read.rs"),
        "{}",
        cycle[0].message
    );
    // The re-exported Frame resolves to codec.rs, not to the façade.
    assert!(g.edges.iter().any(|e| e.from == "ttrpc/conn/serve.rs"
        && e.to == "ttrpc/codec.rs"
        && e.via == "crate::ttrpc::Frame"));
    assert!(g
        .edges
        .iter()
        .any(|e| e.from == "ttrpc/conn/write.rs" && e.to == "ttrpc/codec.rs"));
}

#[test]
fn a_path_through_a_higher_facade_counts_even_for_an_item_defined_lower() {
    let g = graph_of(&[
        ("lib.rs", "mod status; mod mux; mod ttrpc;"),
        ("status.rs", "pub enum Code {}"),
        ("ttrpc/mod.rs", "pub use crate::status::Code;"),
        ("mux/mod.rs", "use crate::ttrpc::Code;"),
    ]);
    let v = violations(&g);
    assert!(
        v.iter().any(|v| v.key == "mux/mod.rs -> ttrpc/mod.rs"
            && v.message
                .contains("via `crate::ttrpc::Code`: `mux` must not import `ttrpc`")),
        "{v:#?}"
    );
    // The item's own file is a dependency too, and a legal one.
    assert!(g
        .edges
        .iter()
        .any(|e| e.from == "mux/mod.rs" && e.to == "status.rs"));
}

#[test]
fn a_subdirectory_is_one_node_of_its_parent() {
    let g = graph_of(&[
        ("lib.rs", "mod ttrpc;"),
        ("ttrpc/mod.rs", "mod conn; mod server;"),
        ("ttrpc/server.rs", "use super::conn::Connection;"),
        ("ttrpc/conn/mod.rs", "mod serve; pub use serve::Connection;"),
        (
            "ttrpc/conn/serve.rs",
            "use crate::ttrpc::server::Method; pub struct Connection;",
        ),
    ]);
    assert_eq!(
        keys(&g),
        [
            "ttrpc/conn/ -> ttrpc/server.rs",
            "ttrpc/server.rs -> ttrpc/conn/"
        ]
    );
}

#[test]
fn an_unplaced_top_level_module_fails() {
    let g = graph_of(&[("lib.rs", "mod gadget;"), ("gadget.rs", "")]);
    assert_eq!(keys(&g), ["gadget.rs -> ?"]);
}
