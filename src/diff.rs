//! `--diff`: what changed between two values, by line, with changed words highlighted.
//!
//! JSON is pretty-printed with sorted keys first, so a diff is by line and a reordering of
//! keys is no difference. With color the diff is for people (hunks, inline emphasis); without
//! it is a valid unified diff. The line diff and the word emphasis each run against a
//! deadline, after which `similar` settles for a coarser answer instead of stalling.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crossterm::style::{Attribute, Color, Stylize};
use lrwatch::Body;
use similar::{Algorithm, ChangeTag, TextDiff};

use crate::sanitize::for_terminal;

/// How long the line diff may take before it approximates. Myers: measured on 1 MB JSON
/// documents (~100,000 pretty lines) it beat Patience by 1.5x with 4 changed fields and with
/// 6,667 (BENCHMARKS.md).
const LINE_DEADLINE: Duration = Duration::from_millis(500);
/// How long the word emphasis of all hunks may take before lines are shown without it.
const INLINE_DEADLINE: Duration = Duration::from_millis(200);
/// Lines of context around each change.
const CONTEXT: usize = 3;

/// The text a body is compared as: sorted, pretty JSON, or the text; "" for no body.
pub fn normalized(body: Option<&Body>) -> String {
    let Some(body) = body else {
        return String::new();
    };
    let mut text = match &body.json {
        Some(json) => {
            let mut sorted = json.clone();
            sorted.sort_all_objects();
            serde_json::to_string_pretty(&sorted).unwrap_or_default()
        }
        None => body.text().into_owned(),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// What the diff header names.
pub struct Labels<'a> {
    pub old: &'a str,
    pub new: &'a str,
}

/// Renders the diff of `old` to `new`. `terminal` escapes control characters; `color` styles.
pub fn render(old: &str, new: &str, labels: &Labels<'_>, terminal: bool, color: bool) -> String {
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .deadline(Instant::now() + LINE_DEADLINE)
        .diff_lines(old, new);
    let clean = |s: &str| {
        if terminal {
            for_terminal(s, false).into_owned()
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    let header = format!("--- {}\n+++ {}\n", clean(labels.old), clean(labels.new));
    out.push_str(&paint(&header, color, |s| {
        s.attribute(Attribute::Bold).to_string()
    }));
    let inline_deadline = Instant::now() + INLINE_DEADLINE;
    let mut unified = diff.unified_diff();
    unified.context_radius(CONTEXT);
    for hunk in unified.iter_hunks() {
        let _ = writeln!(
            out,
            "{}",
            paint(&hunk.header().to_string(), color, |s| s
                .with(Color::Cyan)
                .to_string())
        );
        for op in hunk.ops() {
            // Word emphasis only shows in color: without it, plain line changes (much cheaper
            // on large diffs) make the same unified diff.
            if !color {
                for change in diff.iter_changes(op) {
                    let sign = match change.tag() {
                        ChangeTag::Equal => ' ',
                        ChangeTag::Delete => '-',
                        ChangeTag::Insert => '+',
                    };
                    out.push(sign);
                    out.push_str(&clean(change.value().trim_end_matches(['\n', '\r'])));
                    out.push('\n');
                    if change.missing_newline() {
                        out.push_str("\\ No newline at end of file\n");
                    }
                }
                continue;
            }
            for change in diff.iter_inline_changes_deadline(op, Some(inline_deadline)) {
                let (sign, base) = match change.tag() {
                    ChangeTag::Equal => (' ', None),
                    ChangeTag::Delete => ('-', Some(Color::Red)),
                    ChangeTag::Insert => ('+', Some(Color::Green)),
                };
                out.push(sign);
                for (emphasized, part) in change.iter_strings_lossy() {
                    let part = clean(part.trim_end_matches(['\n', '\r']));
                    let styled = match (color, base) {
                        (false, _) | (true, None) => part,
                        (true, Some(c)) if emphasized => {
                            part.with(c).attribute(Attribute::Reverse).to_string()
                        }
                        (true, Some(c)) => part.with(c).to_string(),
                    };
                    out.push_str(&styled);
                }
                out.push('\n');
                if change.missing_newline() {
                    out.push_str("\\ No newline at end of file\n");
                }
            }
        }
    }
    out
}

fn paint(s: &str, color: bool, style: impl Fn(&str) -> String) -> String {
    if color {
        // Style each line on its own, so a line break never carries a style onward.
        s.lines().map(|l| style(l) + "\n").collect()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(s: &str) -> Body {
        Body::new(s.as_bytes().to_vec(), Some("application/json".into()))
    }

    const LABELS: Labels<'static> = Labels {
        old: "u \"1\"",
        new: "u \"2\"",
    };

    #[test]
    fn json_is_sorted_and_pretty() {
        assert_eq!(
            normalized(Some(&body(r#"{"b":1,"a":{"d":2,"c":3}}"#))),
            "{\n  \"a\": {\n    \"c\": 3,\n    \"d\": 2\n  },\n  \"b\": 1\n}\n"
        );
        assert_eq!(normalized(None), "");
        let text = Body::new(b"x".to_vec(), Some("text/plain".into()));
        assert_eq!(normalized(Some(&text)), "x\n");
    }

    #[test]
    fn plain_diff_is_unified() {
        let old = normalized(Some(&body(
            r#"{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9}"#,
        )));
        let new = normalized(Some(&body(
            r#"{"a":1,"b":2,"c":3,"d":4,"e":50,"f":6,"g":7,"h":8,"i":9}"#,
        )));
        let out = render(&old, &new, &LABELS, false, false);
        assert_eq!(
            out,
            "--- u \"1\"\n+++ u \"2\"\n@@ -3,7 +3,7 @@\n   \"b\": 2,\n   \"c\": 3,\n   \"d\": 4,\n-  \"e\": 5,\n+  \"e\": 50,\n   \"f\": 6,\n   \"g\": 7,\n   \"h\": 8,\n"
        );
    }

    #[test]
    fn key_order_is_no_difference() {
        let a = normalized(Some(&body(r#"{"a":1,"b":2}"#)));
        let b = normalized(Some(&body(r#"{"b":2,"a":1}"#)));
        assert_eq!(
            render(&a, &b, &LABELS, false, false),
            "--- u \"1\"\n+++ u \"2\"\n"
        );
    }

    #[test]
    fn color_emphasizes_changed_words_and_terminal_escapes() {
        let out = render("the quick fox\n", "the slow fox\n", &LABELS, true, true);
        assert!(
            out.contains("\x1b[7m"),
            "reverse video for the changed word: {out:?}"
        );
        let hostile = render("a\n", "\x1b]0;x\x07\n", &LABELS, true, false);
        assert!(hostile.contains("+\\x1b]0;x\\x07\n"), "{hostile:?}");
    }

    #[test]
    fn huge_values_stay_bounded() {
        let old: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
        let new: String = (0..200_000).rev().map(|i| format!("line {i}\n")).collect();
        let started = Instant::now();
        let out = render(&old, &new, &LABELS, false, false);
        assert!(out.starts_with("--- "));
        // The deadlines bound the work; this only guards against a stall, generously.
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }
}
