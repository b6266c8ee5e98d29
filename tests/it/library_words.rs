//! The library says what happened in words of its own concepts; which command-line flag helps
//! is the binary's to add (it knows its command line: `src/exit.rs`, `src/inspect_output.rs`,
//! `src/check_output.rs`). So no string literal in the library's sources — outside comments
//! and test code (`#[cfg(test)]` and `#[test]` items) — names a flag (`--word`).
//!
//! The library's sources are every `src/**/*.rs` but `src/main.rs` and the modules it
//! declares (the binary's).

use std::path::{Path, PathBuf};

#[test]
fn library_string_literals_name_no_flags() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let binary = binary_files(&src);
    let mut found = Vec::new();
    let mut library = 0;
    for file in rust_files(&src) {
        if binary.iter().any(|b| file.starts_with(b)) {
            continue;
        }
        library += 1;
        let source = std::fs::read_to_string(&file).unwrap();
        for (line, text) in literals(&source) {
            if let Some(flag) = flag_in(&text) {
                found.push(format!(
                    "{}:{line}: {flag} in {text:?}",
                    file.strip_prefix(&src).unwrap().display()
                ));
            }
        }
    }
    assert!(library > 50, "only {library} library files found");
    assert!(
        found.is_empty(),
        "library messages name flags (say the concept; let the binary add the flag):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_sees_literals_and_skips_comments_and_tests() {
    let source = r##"
        // "--in-a-comment"
        /* "--in-a-block" /* nested "--x" */ */
        /// Doc: "--doc"
        fn f() -> &'static str { let c = '"'; let q = '\''; "say --max-body" }
        fn g() -> String { format!(r#"raw "--raw-flag" {}"#, 1) }
        fn h() { let s = "a -- b, x--y, --1, --"; let e = "esc \" --esc"; }
        #[cfg(test)]
        mod tests { fn t() { let _ = "--in-tests"; } }
        #[test]
        fn t2() { let _ = "--in-a-test"; }
        fn last() -> &'static str { "--after" }
    "##;
    let flags: Vec<String> = literals(source)
        .into_iter()
        .filter_map(|(_, text)| flag_in(&text))
        .collect();
    assert_eq!(flags, ["--max-body", "--raw-flag", "--esc", "--after"]);
}

/// `src/main.rs` and the files of the modules it declares (a file, or a directory).
fn binary_files(src: &Path) -> Vec<PathBuf> {
    let main = std::fs::read_to_string(src.join("main.rs")).unwrap();
    let mut files = vec![src.join("main.rs")];
    for line in main.lines() {
        let line = line.trim();
        let Some(name) = line
            .strip_prefix("mod ")
            .or_else(|| line.strip_prefix("pub mod "))
            .and_then(|rest| rest.strip_suffix(';'))
        else {
            continue;
        };
        files.push(src.join(format!("{name}.rs")));
        files.push(src.join(name));
    }
    files
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The first `--word` (a letter after two dashes that follow no word character) in `text`.
fn flag_in(text: &str) -> Option<String> {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(2)).find_map(|i| {
        let starts = b[i] == b'-'
            && b[i + 1] == b'-'
            && b[i + 2].is_ascii_lowercase()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'-'));
        starts.then(|| {
            let end = (i + 2..b.len())
                .find(|&j| !(b[j].is_ascii_alphanumeric() || b[j] == b'-'))
                .unwrap_or(b.len());
            text[i..end].to_string()
        })
    })
}

/// The string literals of Rust `source` (their text between the quotes, escapes as written)
/// with the line each starts on, outside comments and outside items marked `#[cfg(test)]`
/// or `#[test]`.
fn literals(source: &str) -> Vec<(usize, String)> {
    let c: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    // Skipping test code: the next item after a test attribute, to its closing brace.
    let mut test_item_next = false;
    let mut depth = 0usize;
    let mut skip_until_depth: Option<usize> = None;
    let at = |i: usize, s: &str| {
        s.chars()
            .enumerate()
            .all(|(k, ch)| c.get(i + k) == Some(&ch))
    };
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if at(i, "//") {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if at(i, "/*") {
            let mut nest = 0;
            while i < c.len() {
                if at(i, "/*") {
                    nest += 1;
                    i += 2;
                } else if at(i, "*/") {
                    nest -= 1;
                    i += 2;
                    if nest == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if at(i, "#[cfg(test)]") || at(i, "#[test]") {
            test_item_next = skip_until_depth.is_none();
            i += 2;
        } else if ch == '"' || (ch == 'r' && raw_start(&c, i).is_some()) {
            let start_line = line;
            let (text, next) = if ch == '"' {
                let mut j = i + 1;
                while j < c.len() && c[j] != '"' {
                    j += if c[j] == '\\' { 2 } else { 1 };
                }
                (c[i + 1..j.min(c.len())].iter().collect::<String>(), j + 1)
            } else {
                let hashes = raw_start(&c, i).unwrap_or(0);
                let open = i + 1 + hashes + 1;
                let close: String = std::iter::once('"')
                    .chain((0..hashes).map(|_| '#'))
                    .collect();
                let mut j = open;
                while j < c.len() && !at(j, &close) {
                    j += 1;
                }
                (
                    c[open..j.min(c.len())].iter().collect::<String>(),
                    j + close.len(),
                )
            };
            line += text.matches('\n').count();
            if skip_until_depth.is_none() && !test_item_next {
                out.push((start_line, text));
            }
            i = next;
        } else if ch == '\'' {
            // A char literal ('x', '\n', '\'') or a lifetime ('a).
            if c.get(i + 1) == Some(&'\\') {
                let mut j = i + 2;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else {
            if ch.is_alphanumeric() || ch == '_' {
                // A word: skipped whole, so `br"..."` and identifiers ending in r stay apart.
                let mut j = i;
                while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                    j += 1;
                }
                if j > i + 1 && c[j - 1] == 'r' && raw_start(&c, j - 1).is_some() {
                    j -= 1;
                }
                i = j;
                continue;
            }
            match ch {
                '{' => {
                    if test_item_next {
                        test_item_next = false;
                        skip_until_depth = Some(depth);
                    }
                    depth += 1;
                }
                '}' => {
                    depth = depth.saturating_sub(1);
                    if skip_until_depth == Some(depth) {
                        skip_until_depth = None;
                    }
                }
                ';' if test_item_next => test_item_next = false,
                _ => {}
            }
            i += 1;
        }
    }
    out
}

/// At `r`: the number of `#`s of a raw string that starts here (`r"`, `r#"`, …).
fn raw_start(c: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while c.get(j) == Some(&'#') {
        j += 1;
    }
    (c.get(j) == Some(&'"')).then_some(j - i - 1)
}
