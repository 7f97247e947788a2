//! The crate's module graph, read from the source: no import cycle among `src/` modules, and
//! none of the arrows the layers forbid (docs/architecture.md).
//!
//! Each file is a node. A file depends on the file that *defines* what it names: a path
//! through a re-export (`pub use`) is followed to the definition, so a facade `mod.rs` that
//! re-exports its children is not a hub every caller passes through. A module and its own
//! ancestors are not counted against each other (a parent owns its children, as in Rust's
//! privacy rules); siblings, cousins and modules in other trees are. At every level of the
//! module tree, the children of one module, each counted with everything under it, must form
//! no cycle: `chat_stream` -> `provider::Framer` and `provider::dispatch` -> `chat_stream` is
//! a cycle between `chat_stream` and `provider`. Test modules
//! (`#[cfg(test)]`) and the binaries in `src/bin/` are left out: they may reach anywhere.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

type ModPath = Vec<String>;

/// What one file declares and what it names.
#[derive(Default)]
struct Module {
    file: PathBuf,
    /// Names defined here (items, inline modules, macros), not through `use`.
    defined: BTreeSet<String>,
    /// `pub use` re-exports: the name it is known by here, and the absolute path it names.
    reexports: HashMap<String, ModPath>,
    /// `pub use path::*` re-exports.
    globs: Vec<ModPath>,
    /// Every absolute path this file names, with the text it was written as.
    uses: Vec<(ModPath, String)>,
}

struct Crate {
    modules: BTreeMap<ModPath, Module>,
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.parse_args::<syn::Meta>().is_ok_and(|m| m.path().is_ident("test")))
}

fn is_public(vis: &syn::Visibility) -> bool {
    !matches!(vis, syn::Visibility::Inherited)
}

/// Reads one file: its definitions, re-exports and every path it names.
struct Reader<'a> {
    here: &'a ModPath,
    /// Children that are files of their own (`mod x;`), relative paths start there too.
    children: BTreeSet<String>,
    /// Names brought in by (any) `use`: a path starting with one is expanded.
    aliases: HashMap<String, ModPath>,
    module: Module,
}

impl Reader<'_> {
    /// An absolute path for `segments` as written in this file, if it names this crate.
    fn absolute(&self, segments: &[String]) -> Option<ModPath> {
        let (first, rest) = segments.split_first()?;
        let mut base: ModPath = match first.as_str() {
            "crate" => Vec::new(),
            "self" => self.here.clone(),
            "super" => self.here[..self.here.len().saturating_sub(1)].to_vec(),
            name if self.children.contains(name) => {
                let mut p = self.here.clone();
                p.push(name.to_string());
                p
            }
            name => self.aliases.get(name)?.clone(),
        };
        for segment in rest {
            if segment == "super" {
                base.pop();
            } else if segment != "self" {
                base.push(segment.clone());
            }
        }
        Some(base)
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree, public: bool) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree, public);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.use_name(prefix, n.ident.to_string(), n.ident.to_string(), public),
            syn::UseTree::Rename(r) => self.use_name(prefix, r.ident.to_string(), r.rename.to_string(), public),
            syn::UseTree::Glob(_) => {
                if let Some(abs) = self.absolute(prefix) {
                    if public {
                        self.module.globs.push(abs.clone());
                    }
                    self.module.uses.push((abs, format!("{}::*", prefix.join("::"))));
                }
            }
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.use_tree(prefix, item, public);
                }
            }
        }
    }

    fn use_name(&mut self, prefix: &[String], name: String, known_as: String, public: bool) {
        let mut full = prefix.to_vec();
        if name != "self" {
            full.push(name);
        }
        let Some(abs) = self.absolute(&full) else { return };
        let known_as = if known_as == "self" { prefix.last().cloned().unwrap_or_default() } else { known_as };
        self.aliases.insert(known_as.clone(), abs.clone());
        if public {
            // A re-export is not a use: whoever names it is sent on to the definition.
            self.module.reexports.insert(known_as, abs);
        } else {
            self.module.uses.push((abs, full.join("::")));
        }
    }
}

impl<'ast> Visit<'ast> for Reader<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            _ => &Vec::new(),
        };
        if is_test_only(attrs) {
            return;
        }
        let defined = match item {
            syn::Item::Const(i) => Some(&i.ident),
            syn::Item::Enum(i) => Some(&i.ident),
            syn::Item::Fn(i) => Some(&i.sig.ident),
            syn::Item::Macro(i) => i.ident.as_ref(),
            syn::Item::Mod(i) if i.content.is_some() => Some(&i.ident),
            syn::Item::Static(i) => Some(&i.ident),
            syn::Item::Struct(i) => Some(&i.ident),
            syn::Item::Trait(i) => Some(&i.ident),
            syn::Item::TraitAlias(i) => Some(&i.ident),
            syn::Item::Type(i) => Some(&i.ident),
            syn::Item::Union(i) => Some(&i.ident),
            _ => None,
        };
        if let Some(ident) = defined {
            self.module.defined.insert(ident.to_string());
        }
        if let syn::Item::Use(u) = item {
            self.use_tree(&mut Vec::new(), &u.tree, is_public(&u.vis));
            return;
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments.len() > 1
            && let Some(abs) = self.absolute(&segments)
        {
            self.module.uses.push((abs, segments.join("::")));
        }
        syn::visit::visit_path(self, path);
    }
}

/// The module path of a file under `src/`.
fn module_path(src: &Path, file: &Path) -> ModPath {
    let relative = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut path: ModPath = relative.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if path.last().is_some_and(|l| l == "mod" || l == "lib") {
        path.pop();
    }
    path
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "bin") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn read_crate() -> Crate {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let paths: BTreeSet<ModPath> = files.iter().map(|f| module_path(&src, f)).collect();
    let mut modules = BTreeMap::new();
    for file in files {
        let here = module_path(&src, &file);
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let children = paths
            .iter()
            .filter(|p| p.len() == here.len() + 1 && p.starts_with(&here))
            .filter_map(|p| p.last().cloned())
            .collect();
        let mut reader = Reader { here: &here, children, aliases: HashMap::new(), module: Module::default() };
        // `use` items first, so a path naming an alias declared further down is expanded.
        for item in &ast.items {
            if let syn::Item::Use(u) = item
                && !is_test_only(&u.attrs)
            {
                reader.use_tree(&mut Vec::new(), &u.tree, is_public(&u.vis));
            }
        }
        reader.module.uses.clear();
        reader.module.reexports.clear();
        reader.module.globs.clear();
        reader.visit_file(&ast);
        let mut module = reader.module;
        module.file = file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(&file).to_path_buf();
        modules.insert(here, module);
    }
    Crate { modules }
}

impl Crate {
    /// The file that defines what `path` names (following re-exports), if it is in the crate.
    fn defining(&self, path: &[String], depth: usize) -> Option<&ModPath> {
        if depth > 16 {
            return None;
        }
        let (at, module) = (0..=path.len()).rev().find_map(|i| self.modules.get_key_value(&path[..i]))?;
        let Some(next) = path.get(at.len()) else { return Some(at) };
        if module.defined.contains(next) {
            return Some(at);
        }
        if let Some(target) = module.reexports.get(next) {
            let mut full = target.clone();
            full.extend_from_slice(&path[at.len() + 1..]);
            return self.defining(&full, depth + 1).or(Some(at));
        }
        for glob in &module.globs {
            let mut full = glob.clone();
            full.extend_from_slice(&path[at.len()..]);
            if let Some(found) = self.defining(&full, depth + 1)
                && self.modules.get(found).is_some_and(|m| m.defined.contains(next) || found.last() == Some(next))
            {
                return Some(found);
            }
        }
        // Generated code, an enum's variant, a method: it is this module's.
        Some(at)
    }

    /// Every dependency between files, with one way it is written, ancestors left out.
    fn edges(&self) -> BTreeMap<&ModPath, BTreeMap<&ModPath, String>> {
        let mut edges: BTreeMap<&ModPath, BTreeMap<&ModPath, String>> = BTreeMap::new();
        for (from, module) in &self.modules {
            for (path, text) in &module.uses {
                let Some(to) = self.defining(path, 0) else { continue };
                if to == from || from.starts_with(to) || to.starts_with(from) {
                    continue;
                }
                edges.entry(from).or_default().entry(to).or_insert_with(|| text.clone());
            }
        }
        edges
    }
}

fn name(path: &ModPath) -> String {
    if path.is_empty() { "crate".into() } else { path.join("::") }
}

/// Strongly connected components of more than one file (Tarjan's algorithm).
fn cycles<'a>(edges: &BTreeMap<&'a ModPath, BTreeMap<&'a ModPath, String>>) -> Vec<Vec<&'a ModPath>> {
    struct State<'a> {
        index: HashMap<&'a ModPath, usize>,
        low: HashMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        found: Vec<Vec<&'a ModPath>>,
    }
    fn visit<'a>(v: &'a ModPath, edges: &BTreeMap<&'a ModPath, BTreeMap<&'a ModPath, String>>, s: &mut State<'a>) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        for w in edges.get(v).into_iter().flat_map(|m| m.keys().copied()) {
            if !s.index.contains_key(w) {
                visit(w, edges, s);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                component.push(w);
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State { index: HashMap::new(), low: HashMap::new(), stack: Vec::new(), found: Vec::new() };
    for v in edges.keys().copied() {
        if !state.index.contains_key(v) {
            visit(v, edges, &mut state);
        }
    }
    state.found
}

/// The dependencies between sibling modules, each counted with everything under it: for every
/// file-level edge, the two children of the modules' closest common ancestor that hold them.
fn sibling_edges(krate: &Crate) -> BTreeMap<ModPath, BTreeMap<ModPath, String>> {
    let mut edges: BTreeMap<ModPath, BTreeMap<ModPath, String>> = BTreeMap::new();
    for (from, tos) in krate.edges() {
        for (to, text) in tos {
            let common = from.iter().zip(to.iter()).take_while(|(a, b)| a == b).count();
            let (a, b) = (from[..=common].to_vec(), to[..=common].to_vec());
            let file = krate.modules[from].file.display();
            edges.entry(a).or_default().entry(b).or_insert_with(|| format!("{file}: `{text}`"));
        }
    }
    edges
}

#[test]
fn sibling_modules_form_no_cycle() {
    let krate = read_crate();
    let edges = sibling_edges(&krate);
    let borrowed: BTreeMap<&ModPath, BTreeMap<&ModPath, String>> =
        edges.iter().map(|(k, v)| (k, v.iter().map(|(t, w)| (t, w.clone())).collect())).collect();
    let found = cycles(&borrowed);
    let mut report = String::new();
    for component in &found {
        let names: Vec<String> = component.iter().map(|m| name(m)).collect();
        report.push_str(&format!("\ncycle among {}:\n", names.join(", ")));
        for from in component {
            for (to, witness) in borrowed.get(from).into_iter().flatten() {
                if component.contains(to) {
                    report.push_str(&format!("  {} -> {}  ({witness})\n", name(from), name(to)));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "import cycles among src/ modules (at each level of the module tree, siblings, each with \
         what is under it, must form no cycle):{report}"
    );
}

/// The core's layers, lowest first: each may name only those before it (docs/architecture.md).
const LAYERS: &[&str] = &["spec", "error", "transport", "provider", "engine", "client", "router", "gateway"];

/// Arrows that must never exist, beyond the layers' order: (from, to, why).
const FORBIDDEN: &[(&str, &str, &str)] = &[
    ("catalog", "*", "the provider catalog is a leaf: errors and the transport name providers through it"),
    ("pricing", "gateway", "pricing is the SDK's, the gateway is one of its users"),
    ("cache", "gateway", "the response cache is the SDK's, the gateway is one of its users"),
    ("conformance", "gateway", "the conformance harness checks providers and clients, not the gateway's internals"),
    ("*", "gateway", "the SDK core never depends on the gateway"),
];

#[test]
fn no_arrow_goes_against_the_layers() {
    let krate = read_crate();
    let mut wrong = Vec::new();
    for (from, tos) in krate.edges() {
        let (Some(a), file) = (from.first(), krate.modules[from].file.display()) else { continue };
        for (to, text) in tos {
            let Some(b) = to.first() else { continue };
            if a == b {
                continue;
            }
            let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
            if let (Some(ra), Some(rb)) = (rank(a), rank(b))
                && rb > ra
            {
                wrong.push(format!("  {} -> {}: {a} is below {b}  ({file}: `{text}`)", name(from), name(to)));
            }
            for (f, t, why) in FORBIDDEN {
                if (*f == a || *f == "*") && (*t == b || *t == "*") {
                    wrong.push(format!("  {} -> {}: {why}  ({file}: `{text}`)", name(from), name(to)));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "arrows against the layers:\n{}", wrong.join("\n"));
}
