//! No import circles: the modules of `src/` import each other one way only, so each can be
//! read (and changed) knowing only what lies below it.
//!
//! A module is a file. The test reads every `src/**/*.rs` reachable by `mod` declarations
//! from `src/lib.rs` (the library) and `src/main.rs` (the binary, a crate of its own), and
//! draws an edge from a file to each file it names a path into: `use` declarations (with
//! their `{…}` trees), and paths in code that start with `crate::`, `super::`, `self::` or the
//! name of a module the file declares (`hub::Hubs`). Comments and string literals are skipped.
//! A path is followed down the module tree as far as its segments name modules; when the next
//! segment is an item the module only re-exports (`use a::Item;` or `pub use a::Item;` at its
//! top level), the path is followed to where that item comes from: naming an item through a
//! re-export depends on the item's module, not on the one that passes it on. Paths inside a
//! file's inline modules (`mod tests { … }`) count for the file.
//!
//! A circle is a set of files each of which reaches the others through these edges (a
//! strongly connected component of two files or more). One exception, the only one: a file's
//! `super::NAME` where `super` is its parent module's file and `NAME` is an item that file
//! defines *without any `pub`* (a `fn`, `struct`, `enum`, `const`, `static`, `type`, `trait`
//! or `union` at its top level). Rust makes such an item visible to the parent and its
//! descendants only, so the parent declared it for its children: that edge is not drawn. A
//! parent's `pub` or `pub(…)` items are for others too, and a child naming them (or anything
//! in a sibling) is an ordinary edge.
//!
//! Circles that another change removes are listed in `ALLOWED`, each with the circle it names;
//! an entry that no longer matches a circle fails the test too, so it is deleted once fixed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Circles known and being removed elsewhere: each entry is the exact set of files (relative
/// to `src/`) of one circle, and why it is still here. Delete an entry once its circle is gone
/// (the test then says so).
const ALLOWED: &[(&[&str], &str)] = &[];

#[test]
fn no_module_imports_itself_back() {
    let graph = Graph::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let circles = graph.circles();
    let mut problems = Vec::new();
    for circle in &circles {
        let files: BTreeSet<&str> = circle.iter().map(String::as_str).collect();
        if !ALLOWED
            .iter()
            .any(|(allowed, _)| allowed.iter().copied().collect::<BTreeSet<_>>() == files)
        {
            problems.push(format!("import circle:\n{}", graph.describe(circle)));
        }
    }
    for (allowed, why) in ALLOWED {
        let files: BTreeSet<&str> = allowed.iter().copied().collect();
        if !circles
            .iter()
            .any(|c| c.iter().map(String::as_str).collect::<BTreeSet<_>>() == files)
        {
            problems.push(format!(
                "ALLOWED names a circle that is not there (any more): {allowed:?} ({why}); \
                 delete the entry"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn the_analysis_sees_circles_and_the_exception() {
    // Two siblings naming each other: a circle, whatever the path form.
    let graph = Graph::from_sources(&[
        ("lib.rs", "mod a; mod b;"),
        ("a.rs", "use crate::b::Thing; pub struct Other;"),
        (
            "b.rs",
            "pub struct Thing; fn f() { let _ = super::a::Other; }",
        ),
    ]);
    assert_eq!(
        graph.circles(),
        vec![vec!["a.rs".to_string(), "b.rs".into()]]
    );
    // Through a re-export of the crate root: `crate::Other` is `a`'s.
    let graph = Graph::from_sources(&[
        ("lib.rs", "mod a; mod b; pub use a::Other;"),
        ("a.rs", "use crate::b::Thing; pub struct Other;"),
        (
            "b.rs",
            "// crate::a::Other in a comment is no import\nuse crate::Other;",
        ),
    ]);
    assert_eq!(graph.circles().len(), 1);
    // A child naming its parent's private item is the exception; a `pub(crate)` one is not.
    let sources = |vis: &str| {
        vec![
            ("lib.rs", "mod p;".to_string()),
            (
                "p/mod.rs",
                format!("mod c;\n{vis} struct Shared;\nfn go() {{ c::run(); }}"),
            ),
            ("p/c.rs", "use super::Shared; pub fn run() {}".to_string()),
        ]
    };
    let private: Vec<(&str, String)> = sources("");
    let graph = Graph::from_sources(
        &private
            .iter()
            .map(|(p, s)| (*p, s.as_str()))
            .collect::<Vec<_>>(),
    );
    assert!(graph.circles().is_empty(), "{:?}", graph.circles());
    let public = sources("pub(crate)");
    let graph = Graph::from_sources(
        &public
            .iter()
            .map(|(p, s)| (*p, s.as_str()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(graph.circles().len(), 1);
}

/// Which file imports which, and where.
struct Graph {
    files: BTreeMap<String, Parsed>,
    /// `from` → `to` → the first place (line, path as written) that makes the edge.
    edges: BTreeMap<String, BTreeMap<String, (usize, String)>>,
}

/// One file, as far as the analysis needs it.
#[derive(Default)]
struct Parsed {
    /// The module path (empty for a crate root), and the crate (`lib` or `bin`).
    module: Vec<String>,
    krate: &'static str,
    /// Modules declared in the file (`mod x;`): the file's children.
    children: Vec<String>,
    /// Names bound at the top level by `use` (not globs), to the absolute path they stand for.
    bindings: HashMap<String, Vec<String>>,
    /// Items defined at the top level without `pub`.
    private: BTreeSet<String>,
    /// Paths named: absolute segments, line, the path as written, and whether it was written
    /// `super::…` from the file's own scope.
    paths: Vec<(Vec<String>, usize, String, bool)>,
}

impl Graph {
    fn read(src: &Path) -> Graph {
        let mut sources = Vec::new();
        let mut stack: Vec<PathBuf> = vec![src.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let relative = path
                        .strip_prefix(src)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    sources.push((relative, std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        let borrowed: Vec<(&str, &str)> = sources
            .iter()
            .map(|(p, s)| (p.as_str(), s.as_str()))
            .collect();
        Graph::from_sources(&borrowed)
    }

    /// The graph of these files (paths relative to `src/`, `/`-separated).
    fn from_sources(sources: &[(&str, &str)]) -> Graph {
        let text: HashMap<&str, &str> = sources.iter().copied().collect();
        let mut files = BTreeMap::new();
        // Walk the module tree from each crate root, as rustc does.
        let mut queue: Vec<(String, Vec<String>, &'static str)> = Vec::new();
        for (root, krate) in [("lib.rs", "lib"), ("main.rs", "bin")] {
            if text.contains_key(root) {
                queue.push((root.to_string(), Vec::new(), krate));
            }
        }
        while let Some((file, module, krate)) = queue.pop() {
            let tokens = tokenize(text[file.as_str()]);
            let mut parsed = parse(&tokens, &module);
            parsed.module = module.clone();
            parsed.krate = krate;
            let dir = match file.rsplit_once('/') {
                _ if file == "lib.rs" || file == "main.rs" => String::new(),
                Some((dir, "mod.rs")) => format!("{dir}/"),
                Some((dir, name)) => format!("{dir}/{}/", name.trim_end_matches(".rs")),
                None => format!("{}/", file.trim_end_matches(".rs")),
            };
            for child in &parsed.children {
                let mut child_module = module.clone();
                child_module.push(child.clone());
                let flat = format!("{dir}{child}.rs");
                let nested = format!("{dir}{child}/mod.rs");
                if text.contains_key(flat.as_str()) {
                    queue.push((flat, child_module, krate));
                } else if text.contains_key(nested.as_str()) {
                    queue.push((nested, child_module, krate));
                }
            }
            files.insert(file, parsed);
        }
        let mut graph = Graph {
            files,
            edges: BTreeMap::new(),
        };
        graph.connect();
        graph
    }

    /// The file of a module, if it is one.
    fn file_of(&self, krate: &str, module: &[String]) -> Option<&String> {
        self.files
            .iter()
            .find(|(_, p)| p.krate == krate && p.module == module)
            .map(|(f, _)| f)
    }

    /// Where a path leads: the file of the deepest module it names, through re-exports.
    /// Also whether it stopped at that file on one of its private items.
    fn resolve(&self, krate: &str, path: &[String], depth: usize) -> Option<(String, bool)> {
        let mut module: Vec<String> = Vec::new();
        let mut rest = path;
        while let Some((first, tail)) = rest.split_first() {
            let mut deeper = module.clone();
            deeper.push(first.clone());
            if self.file_of(krate, &deeper).is_none() {
                break;
            }
            module = deeper;
            rest = tail;
        }
        let file = self.file_of(krate, &module)?.clone();
        let parsed = &self.files[&file];
        if let Some((first, tail)) = rest.split_first() {
            if let Some(target) = parsed.bindings.get(first) {
                if depth < 8 && target.as_slice() != path {
                    let mut followed = target.clone();
                    followed.extend(tail.iter().cloned());
                    if let Some(found) = self.resolve(krate, &followed, depth + 1) {
                        return Some(found);
                    }
                }
            }
            return Some((file, parsed.private.contains(first)));
        }
        Some((file, false))
    }

    fn connect(&mut self) {
        let mut edges: BTreeMap<String, BTreeMap<String, (usize, String)>> = BTreeMap::new();
        for (file, parsed) in &self.files {
            let parent = parsed
                .module
                .split_last()
                .and_then(|(_, up)| self.file_of(parsed.krate, up));
            for (path, line, written, via_super) in &parsed.paths {
                let Some((target, private)) = self.resolve(parsed.krate, path, 0) else {
                    continue;
                };
                if &target == file || (*via_super && private && Some(&target) == parent) {
                    continue;
                }
                edges
                    .entry(file.clone())
                    .or_default()
                    .entry(target)
                    .or_insert((*line, written.clone()));
            }
        }
        self.edges = edges;
    }

    /// Every circle: the files of each strongly connected component of two or more, sorted.
    fn circles(&self) -> Vec<Vec<String>> {
        let reach = |from: &String| -> BTreeSet<String> {
            let mut seen = BTreeSet::new();
            let mut todo = vec![from.clone()];
            while let Some(f) = todo.pop() {
                for next in self.edges.get(&f).into_iter().flat_map(|m| m.keys()) {
                    if seen.insert(next.clone()) {
                        todo.push(next.clone());
                    }
                }
            }
            seen
        };
        let reaches: BTreeMap<&String, BTreeSet<String>> =
            self.files.keys().map(|f| (f, reach(f))).collect();
        let mut circles: Vec<Vec<String>> = Vec::new();
        for (file, from_here) in &reaches {
            if !from_here.contains(*file) || circles.iter().any(|c| c.contains(file)) {
                continue;
            }
            let circle: Vec<String> = from_here
                .iter()
                .filter(|other| reaches[other].contains(*file))
                .cloned()
                .collect();
            circles.push(circle);
        }
        circles
    }

    /// A circle's edges among its files, with the import that makes each.
    fn describe(&self, circle: &[String]) -> String {
        let mut lines = Vec::new();
        for from in circle {
            for (to, (line, written)) in self.edges.get(from).into_iter().flatten() {
                if circle.contains(to) {
                    lines.push(format!("  {from} -> {to}   ({from}:{line}: {written})"));
                }
            }
        }
        lines.join("\n")
    }
}

/// A token: an identifier or keyword, `::`, or one punctuation character; with its line.
type Token = (String, usize);

/// Splits Rust source into tokens, dropping whitespace, comments and literals.
fn tokenize(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line) = (0, 1);
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                if i >= chars.len() {
                    break;
                }
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                line += usize::from(chars[i] == '\n');
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if at(i + 1) == '\\' {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            // Raw strings (r"…", r#"…"#, br"…") and byte strings (b"…").
            if matches!(word.as_str(), "r" | "br") && matches!(at(i), '"' | '#') {
                let mut hashes = 0;
                while at(i) == '#' {
                    hashes += 1;
                    i += 1;
                }
                i += 1;
                loop {
                    if i >= chars.len() {
                        break;
                    }
                    if chars[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                        i += 1 + hashes;
                        break;
                    }
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
            } else if word == "b" && at(i) == '\'' {
                i += if at(i + 1) == '\\' { 4 } else { 3 };
                while i < chars.len() && chars[i - 1] != '\'' {
                    i += 1;
                }
            } else if word != "b" || at(i) != '"' {
                tokens.push((word, line));
            }
        } else if c == ':' && at(i + 1) == ':' {
            tokens.push(("::".to_string(), line));
            i += 2;
        } else {
            tokens.push((c.to_string(), line));
            i += 1;
        }
    }
    tokens
}

const ITEM_KEYWORDS: &[&str] = &[
    "fn", "struct", "enum", "const", "static", "type", "trait", "union",
];

/// Reads the declarations, bindings and paths of one file whose module is `module`.
fn parse(tokens: &[Token], module: &[String]) -> Parsed {
    let mut parsed = Parsed::default();
    let word = |i: usize| tokens.get(i).map_or("", |t| t.0.as_str());
    // Inline modules open at a brace depth: the scope a `super` or `self` starts from.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    // Brace depths at which an inline module was opened.
    let mut i = 0;
    while i < tokens.len() {
        let w = word(i);
        let scope = || -> Vec<String> {
            let mut s = module.to_vec();
            s.extend(inline.iter().map(|(n, _)| n.clone()));
            s
        };
        match w {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            "mod" if is_ident(word(i + 1)) && word(i + 2) == ";" && inline.is_empty() => {
                parsed.children.push(word(i + 1).to_string());
                i += 3;
                continue;
            }
            "mod" if is_ident(word(i + 1)) && word(i + 2) == "{" => {
                inline.push((word(i + 1).to_string(), depth));
                depth += 1;
                i += 3;
                continue;
            }
            "use" => {
                let kids: Vec<String> = if inline.is_empty() {
                    parsed.children.clone()
                } else {
                    Vec::new()
                };
                let end = (i..tokens.len())
                    .find(|&k| word(k) == ";")
                    .unwrap_or(tokens.len());
                let mut leaves = Vec::new();
                use_tree(&tokens[i + 1..end], Vec::new(), &mut leaves);
                let scope = scope();
                for (path, alias) in leaves {
                    let written = path.join("::");
                    let via_super = inline.is_empty() && path.first().is_some_and(|s| s == "super");
                    let Some(absolute) = absolute(&path, &scope, &kids) else {
                        continue;
                    };
                    if depth == 0 && inline.is_empty() {
                        if let Some(alias) = alias.filter(|a| a != "*" && a != "_") {
                            parsed.bindings.insert(alias, absolute.clone());
                        }
                    }
                    parsed
                        .paths
                        .push((absolute, tokens[i].1, written, via_super));
                }
                i = end + 1;
                continue;
            }
            kw if ITEM_KEYWORDS.contains(&kw)
                && depth == 0
                && inline.is_empty()
                && is_ident(word(i + 1))
                && !is_public(tokens, i) =>
            {
                parsed.private.insert(word(i + 1).to_string());
            }
            first
                if matches!(first, "crate" | "super" | "self")
                    || (inline.is_empty() && parsed.children.iter().any(|c| c == first)) =>
            {
                let starts_path = word(i + 1) == "::"
                    && !matches!(word(i.wrapping_sub(1)), "::" | "in")
                    && (i == 0 || word(i - 1) != "::");
                if starts_path {
                    let mut path = vec![first.to_string()];
                    let mut k = i + 1;
                    while word(k) == "::" && is_ident(word(k + 1)) {
                        path.push(word(k + 1).to_string());
                        k += 2;
                    }
                    let written = path.join("::");
                    let via_super = inline.is_empty() && first == "super";
                    if let Some(absolute) = absolute(&path, &scope(), &parsed.children) {
                        parsed
                            .paths
                            .push((absolute, tokens[i].1, written, via_super));
                    }
                    i = k;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    parsed
}

fn is_ident(w: &str) -> bool {
    w.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Whether the item whose keyword is at `i` is declared `pub` or `pub(…)`.
fn is_public(tokens: &[Token], mut i: usize) -> bool {
    while i > 0 {
        i -= 1;
        match tokens[i].0.as_str() {
            "async" | "unsafe" | "const" | "extern" => {}
            ")" => {
                while i > 0 && tokens[i].0 != "(" {
                    i -= 1;
                }
                return i > 0 && tokens[i - 1].0 == "pub";
            }
            "pub" => return true,
            _ => return false,
        }
    }
    false
}

/// The leaves of a `use` tree: each full path (as written) and the name it binds.
fn use_tree(tokens: &[Token], prefix: Vec<String>, out: &mut Vec<(Vec<String>, Option<String>)>) {
    let mut path = prefix;
    let mut i = 0;
    if tokens.first().is_some_and(|t| t.0 == "::") {
        i += 1;
    }
    while i < tokens.len() {
        match tokens[i].0.as_str() {
            "{" => {
                // Split the group at its top-level commas.
                let mut level = 0;
                let mut start = i + 1;
                for k in i..tokens.len() {
                    match tokens[k].0.as_str() {
                        "{" => level += 1,
                        "}" => {
                            level -= 1;
                            if level == 0 {
                                if start < k {
                                    use_tree(&tokens[start..k], path.clone(), out);
                                }
                                return;
                            }
                        }
                        "," if level == 1 => {
                            if start < k {
                                use_tree(&tokens[start..k], path.clone(), out);
                            }
                            start = k + 1;
                        }
                        _ => {}
                    }
                }
                return;
            }
            "*" => {
                out.push((path, Some("*".to_string())));
                return;
            }
            "as" => {
                let alias = tokens.get(i + 1).map(|t| t.0.clone());
                out.push((path, alias));
                return;
            }
            "::" | "pub" | "(" | ")" => {}
            segment => {
                if segment == "self" && !path.is_empty() {
                    // `a::{self}` binds `a`.
                } else {
                    path.push(segment.to_string());
                }
            }
        }
        i += 1;
    }
    let alias = path.last().cloned();
    out.push((path, alias));
}

/// A path as written in `scope`, made absolute (from the crate root); `None` for a path into
/// another crate.
fn absolute(path: &[String], scope: &[String], children: &[String]) -> Option<Vec<String>> {
    let mut base = scope.to_vec();
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &path[1..];
        }
        Some("self") => rest = &path[1..],
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        // A module the file declares (only the file's own scope has them).
        Some(first) if children.iter().any(|c| c == first) => {}
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}
