//! The URLs to follow: command-line arguments and the lines of `--urls FILE`, each a URL or
//! `NAME=URL`; and the names so given, by URL, for `--prefix` and the `--json` envelope.

use std::collections::HashMap;
use std::io::{BufRead, Read};

use url::Url;

use crate::exit::UsageError;

/// The longest line `--urls` accepts, in bytes: far more than any URL a server takes (8 KiB is
/// a common limit), and a file that is not a list of URLs (a binary, `/dev/zero`) fails at the
/// first long line instead of filling memory.
pub const MAX_LINE: usize = 64 * 1024;

/// One resource to follow, as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: Url,
    /// The `NAME` of a `NAME=URL` argument.
    pub name: Option<String>,
}

/// Splits `NAME=URL` into its name and URL; an argument without a name is all URL.
///
/// The text before the first `=` is a name when it is one or more ASCII letters, digits, `_`,
/// `-` or `.`. A URL has a `:` after its scheme before any `=` can come (`http://h/?a=b`), so
/// a URL is never taken for a name; and a name cannot hold a tab or a control character, so
/// the tab after a `--prefix` always ends it.
pub fn split_name(arg: &str) -> (Option<&str>, &str) {
    match arg.split_once('=') {
        Some((name, url)) if is_name(name) => (Some(name), url),
        _ => (None, arg),
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Parses one argument or line: `URL` or `NAME=URL`.
pub fn parse_target(arg: &str) -> Result<Target, String> {
    let (name, url) = split_name(arg);
    let url = lrwatch::parse_follow_url(url).map_err(|e| e.to_string())?;
    Ok(Target {
        url,
        name: name.map(str::to_string),
    })
}

/// Reads a list of targets: one URL or `NAME=URL` a line; blank lines and lines whose first
/// non-blank character is `#` are skipped (only whole lines: a URL may hold a `#`, its
/// fragment). Leading and trailing blanks are trimmed. `source` names the list in errors,
/// which say the line: `--urls list.txt line 3: ...`.
pub fn read_list(mut input: impl BufRead, source: &str) -> Result<Vec<Target>, UsageError> {
    let mut targets = Vec::new();
    let mut line = Vec::new();
    for number in 1u64.. {
        line.clear();
        let at = |why: String| UsageError(format!("--urls {source} line {number}: {why}"));
        // One byte more than a line may hold, so that an overlong line is told from one that
        // fits exactly.
        let read = (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| UsageError(format!("cannot read --urls {source}: {e}")))?;
        if read == 0 {
            break;
        }
        if line.len() > MAX_LINE && !line.ends_with(b"\n") {
            return Err(at(format!("longer than {} KiB", MAX_LINE / 1024)));
        }
        let text = std::str::from_utf8(&line).map_err(|_| at("not UTF-8 text".to_string()))?;
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        targets.push(parse_target(text).map_err(at)?);
    }
    Ok(targets)
}

/// Reads `--urls FILE`; `-` is standard input.
pub fn read_file(path: &str) -> Result<Vec<Target>, UsageError> {
    if path == "-" {
        return read_list(std::io::stdin().lock(), "- (standard input)");
    }
    let file = std::fs::File::open(path)
        .map_err(|e| UsageError(format!("cannot read --urls {path}: {e}")))?;
    read_list(std::io::BufReader::new(file), path)
}

/// The names given to URLs, by URL as events carry it (`Event::uri`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names(HashMap<String, String>);

impl Names {
    /// The names of `targets`. A URL given two different names is a usage error: its events
    /// could not say which they are.
    pub fn of(targets: &[Target]) -> Result<Names, UsageError> {
        let mut names: HashMap<String, String> = HashMap::new();
        for target in targets {
            let Some(name) = &target.name else { continue };
            match names.get(target.url.as_str()) {
                Some(other) if other != name => {
                    return Err(UsageError(format!(
                        "{} is named twice, {other} and {name}: give each URL one name",
                        target.url
                    )))
                }
                Some(_) => {}
                None => {
                    names.insert(target.url.to_string(), name.clone());
                }
            }
        }
        Ok(Names(names))
    }

    /// The name of the resource at `uri`, if one was given. (Asked for every event printed
    /// with `--json`: without names, not even a hash is computed.)
    pub fn get(&self, uri: &str) -> Option<&str> {
        if self.0.is_empty() {
            return None;
        }
        self.0.get(uri).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_told_from_a_url() {
        assert_eq!(split_name("a=http://h/"), (Some("a"), "http://h/"));
        assert_eq!(
            split_name("web-1.prod_x=https://h/?q=1"),
            (Some("web-1.prod_x"), "https://h/?q=1")
        );
        // A URL is never a name, whatever '=' it holds.
        for url in ["http://h/?a=b", "https://h/x=y", "http://[::1]:8/?k=v=w"] {
            assert_eq!(split_name(url), (None, url));
        }
        // What is not a name stays part of the URL (and fails as a URL).
        for arg in [
            "=http://h/",
            "a b=http://h/",
            "a\t=http://h/",
            "é=http://h/",
        ] {
            assert_eq!(split_name(arg), (None, arg));
        }
        assert!(parse_target("=http://h/").is_err());
        assert_eq!(
            parse_target("n=http://h/x").unwrap().name.as_deref(),
            Some("n")
        );
        assert!(parse_target("n=ftp://h/").is_err());
    }

    #[test]
    fn lists_skip_comments_and_blanks_and_say_the_bad_line() {
        let list =
            "# servers\n\nhttp://a/1\n  b=http://b/2  \r\n\t# indented comment\nhttp://c/3#frag\n";
        let targets = read_list(list.as_bytes(), "f").unwrap();
        let shown: Vec<(Option<&str>, &str)> = targets
            .iter()
            .map(|t| (t.name.as_deref(), t.url.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                (None, "http://a/1"),
                (Some("b"), "http://b/2"),
                (None, "http://c/3#frag")
            ]
        );
        let err = read_list("http://a/\n\nnot a url\n".as_bytes(), "f").unwrap_err();
        assert!(err.0.starts_with("--urls f line 3: "), "{}", err.0);
        assert!(!err.0.contains('\n'), "{}", err.0);
        let err = read_list(&b"http://a/\n\xff\n"[..], "f").unwrap_err();
        assert_eq!(err.0, "--urls f line 2: not UTF-8 text");
        // No final line end, and an empty list, are fine.
        assert_eq!(read_list("http://a/".as_bytes(), "f").unwrap().len(), 1);
        assert!(read_list("".as_bytes(), "f").unwrap().is_empty());
    }

    #[test]
    fn an_overlong_line_is_an_error_not_a_memory_hog() {
        let fits = format!("http://h/{}\n", "a".repeat(MAX_LINE - 10));
        assert_eq!(fits.len(), MAX_LINE);
        assert_eq!(read_list(fits.as_bytes(), "f").unwrap().len(), 1);
        let over = format!("http://h/\n{}", "a".repeat(10 * MAX_LINE));
        let err = read_list(over.as_bytes(), "f").unwrap_err();
        assert_eq!(err.0, "--urls f line 2: longer than 64 KiB");
    }

    #[test]
    fn ten_thousand_urls_are_read_quickly() {
        let mut list = String::from("# many\n");
        for i in 0..10_000 {
            list.push_str(&format!("r{i}=http://127.0.0.1:8080/counter/{i}\n"));
        }
        let started = std::time::Instant::now();
        let targets = read_list(list.as_bytes(), "f").unwrap();
        let names = Names::of(&targets).unwrap();
        assert_eq!(targets.len(), 10_000);
        assert_eq!(
            names.get("http://127.0.0.1:8080/counter/9999"),
            Some("r9999")
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn one_url_has_one_name() {
        let t = |s: &str| parse_target(s).unwrap();
        let names = Names::of(&[t("a=http://h/"), t("http://h/"), t("a=http://h/")]).unwrap();
        assert_eq!(names.get("http://h/"), Some("a"));
        assert_eq!(names.get("http://other/"), None);
        let err = Names::of(&[t("a=http://h/"), t("b=http://h/")]).unwrap_err();
        assert!(err.0.contains("named twice, a and b"), "{}", err.0);
    }
}
