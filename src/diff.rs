//! `--diff`: what changed between two values, by line, with changed words highlighted.
//!
//! JSON is pretty-printed with sorted keys first, so a diff is by line and a reordering of
//! keys is no difference. With color the diff is for people (hunks, inline emphasis); without
//! it is a valid unified diff. The line diff runs against a deadline, after which `similar`
//! settles for a coarser answer instead of stalling. In color, a replaced line shows what
//! changed in reverse video: the words between the part it shares with its new version at the
//! start and the part at the end (as git's diff-highlight does), which costs one pass over
//! the line where a word-level diff of every pair cost 50 ms on a 1 MB document.
//!
//! Two JSON values are first lined up by their structure: members with the same key, and
//! array items paired by a diff of the items themselves (each by a digest), correspond; the
//! line diff only runs between those anchors. A 1 MB document with a third of its items
//! changed diffs in 20-33 ms this way instead of ~100 ms for one line diff over the whole text
//! (BENCHMARKS.md), a change never pairs with a look-alike line of another member, and a
//! shifted window is one item out and one in.

use std::ops::Range;
use std::time::{Duration, Instant};

use crossterm::style::{Attribute, Color, Stylize};
use lrwatch::Body;
use serde_json::Value;
use similar::udiff::UnifiedHunkHeader;
use similar::{
    capture_diff_deadline, capture_diff_slices_deadline, group_diff_ops, Algorithm, ChangeTag,
    DiffOp,
};

use lrwatch::sanitize::for_terminal;

/// How long the line diff may take before it approximates. Myers: measured on 1 MB JSON
/// documents (~100,000 pretty lines) it beat Patience by 1.5x with 4 changed fields and with
/// 6,667 (BENCHMARKS.md).
const LINE_DEADLINE: Duration = Duration::from_millis(500);
/// Lines of context around each change.
const CONTEXT: usize = 3;

/// A value as it is compared: its text (sorted, pretty JSON, or the text itself) and, for
/// JSON, the sorted tree the text was printed from.
#[derive(Debug, Default)]
pub struct Compared {
    text: String,
    tree: Option<Value>,
}

/// The form a body is compared in; empty for no body.
pub fn normalized(body: Option<&Body>) -> Compared {
    let Some(body) = body else {
        return Compared::default();
    };
    let (mut text, tree) = match body.json() {
        Some(json) => {
            let mut sorted = json.clone();
            sorted.sort_all_objects();
            let text = serde_json::to_string_pretty(&sorted).unwrap_or_default();
            (text, Some(sorted))
        }
        None => (body.text().into_owned(), None),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    Compared { text, tree }
}

/// What the diff header names.
pub struct Labels<'a> {
    pub old: &'a str,
    pub new: &'a str,
}

/// Renders the diff of `old` to `new`. `terminal` escapes control characters; `color` styles.
pub fn render(
    old: &Compared,
    new: &Compared,
    labels: &Labels<'_>,
    terminal: bool,
    color: bool,
) -> String {
    let old_lines: Vec<&str> = old.text.split_inclusive('\n').collect();
    let new_lines: Vec<&str> = new.text.split_inclusive('\n').collect();
    let deadline = Instant::now() + LINE_DEADLINE;
    let mut anchors = vec![(0, 0)];
    if let (Some(a), Some(b)) = (&old.tree, &new.tree) {
        align(a, b, (0, 0), deadline, &mut anchors);
    }
    anchors.push((old_lines.len(), new_lines.len()));
    let mut ops: Vec<DiffOp> = Vec::new();
    for pair in anchors.windows(2) {
        let ((o0, n0), (o1, n1)) = (pair[0], pair[1]);
        for op in capture_diff_deadline(
            Algorithm::Myers,
            &old_lines,
            o0..o1,
            &new_lines,
            n0..n1,
            Some(deadline),
        ) {
            push_op(&mut ops, op);
        }
    }

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
    for hunk in group_diff_ops(ops, CONTEXT) {
        let header = format!("{}\n", UnifiedHunkHeader::new(&hunk));
        out.push_str(&paint(&header, color, |s| s.with(Color::Cyan).to_string()));
        for op in &hunk {
            // Word emphasis only shows in color and only where lines were replaced: every
            // other line is printed whole (much cheaper on large diffs).
            if !color || !matches!(op, DiffOp::Replace { .. }) {
                for change in op.iter_changes(&old_lines, &new_lines) {
                    let (sign, base) = match change.tag() {
                        ChangeTag::Equal => (' ', None),
                        ChangeTag::Delete => ('-', Some(Color::Red)),
                        ChangeTag::Insert => ('+', Some(Color::Green)),
                    };
                    let value = change.value();
                    let shown = clean(value.trim_end_matches(['\n', '\r']));
                    let shown = match base {
                        Some(c) if color => shown.with(c).to_string(),
                        _ => shown,
                    };
                    line(&mut out, sign, &shown, value);
                }
                continue;
            }
            // Replaced lines, in color: paired line by line when the counts agree, each pair
            // shows what lies between their common start and end in reverse video.
            let (olds, news) = (&old_lines[op.old_range()], &new_lines[op.new_range()]);
            let spans: Vec<Option<(Range<usize>, Range<usize>)>> = if olds.len() == news.len() {
                olds.iter()
                    .zip(news)
                    .map(|(a, b)| changed_span(a, b))
                    .collect()
            } else {
                vec![None; olds.len().max(news.len())]
            };
            for (sign, color, lines, side) in
                [('-', Color::Red, olds, 0), ('+', Color::Green, news, 1)]
            {
                for (i, raw) in lines.iter().enumerate() {
                    let text = raw.trim_end_matches(['\n', '\r']);
                    let emphasis =
                        spans[i]
                            .as_ref()
                            .map(|s| if side == 0 { s.0.clone() } else { s.1.clone() });
                    let shown = match emphasis {
                        Some(mid) if !mid.is_empty() && mid.end <= text.len() => format!(
                            "{}{}{}",
                            clean(&text[..mid.start]).with(color),
                            clean(&text[mid.clone()])
                                .with(color)
                                .attribute(Attribute::Reverse),
                            clean(&text[mid.end..]).with(color)
                        ),
                        _ => clean(text).with(color).to_string(),
                    };
                    line(&mut out, sign, &shown, raw);
                }
            }
        }
    }
    out
}

/// Where two versions of a line differ: the byte ranges in each between their common start and
/// common end, widened to whole words; `None` when they have nothing in common but blanks.
fn changed_span(a: &str, b: &str) -> Option<(Range<usize>, Range<usize>)> {
    let (a, b) = (
        a.trim_end_matches(['\n', '\r']),
        b.trim_end_matches(['\n', '\r']),
    );
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut start = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i);
    // Back to the start of a word the difference begins inside (the prefix is the same in both).
    let first = |s: &str| s.chars().next().is_some_and(word);
    let last = |s: &str| s.chars().next_back().is_some_and(word);
    while last(&a[..start]) && (first(&a[start..]) || first(&b[start..])) {
        start -= a[..start].chars().next_back().map_or(0, char::len_utf8);
    }
    let limit = a.len().min(b.len()) - start;
    let mut end = a[start..]
        .chars()
        .rev()
        .zip(b[start..].chars().rev())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x.len_utf8())
        .sum::<usize>()
        .min(limit);
    // On to the end of a word the difference ends inside (the suffix is the same in both).
    while first(&a[a.len() - end..]) && (last(&a[..a.len() - end]) || last(&b[..b.len() - end])) {
        end -= a[a.len() - end..].chars().next().map_or(0, char::len_utf8);
    }
    if a[..start].trim().is_empty() && a[a.len() - end..].trim().is_empty() {
        return None;
    }
    Some((start..a.len() - end, start..b.len() - end))
}

/// Appends one diff line: its sign, its text as shown (cleaned, styled, without the line end),
/// and the unified diff's marker when the original line had no line end.
fn line(out: &mut String, sign: char, shown: &str, raw: &str) {
    out.push(sign);
    out.push_str(shown);
    out.push('\n');
    if !raw.ends_with('\n') {
        out.push_str("\\ No newline at end of file\n");
    }
}

/// Appends `op`, merging it into the last op when both are equal runs that meet, so that
/// hunks are cut where the text is unchanged and not where two anchors happen to meet.
fn push_op(ops: &mut Vec<DiffOp>, op: DiffOp) {
    if let (
        Some(DiffOp::Equal {
            old_index,
            new_index,
            len,
        }),
        DiffOp::Equal {
            old_index: next_old,
            new_index: next_new,
            len: more,
        },
    ) = (ops.last_mut(), op)
    {
        if *old_index + *len == next_old && *new_index + *len == next_new {
            *len += more;
            return;
        }
    }
    if op.old_range().is_empty() && op.new_range().is_empty() {
        return;
    }
    ops.push(op);
}

/// Lines up two sorted JSON values whose pretty texts start at lines `at`, recording in
/// `anchors` the (old, new) line pairs where a part of one corresponds to a part of the
/// other; returns how many lines each value takes. The anchors only ever grow. The diffs of
/// array items run against `deadline`, like the line diff.
fn align(
    old: &Value,
    new: &Value,
    at: (usize, usize),
    deadline: Instant,
    anchors: &mut Vec<(usize, usize)>,
) -> (usize, usize) {
    let (mut o, mut n) = (at.0 + 1, at.1 + 1);
    let pair = |a: &Value, b: &Value, o: &mut usize, n: &mut usize, anchors: &mut Vec<_>| {
        if a == b {
            // Equal parts need no anchor: the line diff between anchors passes over them in
            // one step, and fewer anchors mean fewer (and longer) runs to diff.
            let len = lines(a);
            *o += len;
            *n += len;
            return;
        }
        anchors.push((*o, *n));
        let (la, lb) = align(a, b, (*o, *n), deadline, anchors);
        *o += la;
        *n += lb;
        anchors.push((*o, *n));
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) if !a.is_empty() && !b.is_empty() => {
            let (mut x, mut y) = (a.iter().peekable(), b.iter().peekable());
            loop {
                match (x.peek(), y.peek()) {
                    (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                        std::cmp::Ordering::Equal => {
                            pair(va, vb, &mut o, &mut n, anchors);
                            x.next();
                            y.next();
                        }
                        std::cmp::Ordering::Less => {
                            o += lines(va);
                            x.next();
                        }
                        std::cmp::Ordering::Greater => {
                            n += lines(vb);
                            y.next();
                        }
                    },
                    (Some((_, va)), None) => {
                        o += lines(va);
                        x.next();
                    }
                    (None, Some((_, vb))) => {
                        n += lines(vb);
                        y.next();
                    }
                    (None, None) => break,
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if !a.is_empty() && !b.is_empty() => {
            // Items are lined up by a diff of the items themselves (each by a digest of its
            // content): a shifted window pairs each item with its equal, and items replaced
            // one for one are paired and lined up inside.
            let digests = |items: &[Value]| items.iter().map(digest).collect::<Vec<u64>>();
            let (da, db) = (digests(a), digests(b));
            for op in capture_diff_slices_deadline(Algorithm::Myers, &da, &db, Some(deadline)) {
                match op {
                    DiffOp::Replace {
                        old_index,
                        old_len,
                        new_index,
                        new_len,
                    } if old_len == new_len => {
                        for (va, vb) in a[old_index..old_index + old_len]
                            .iter()
                            .zip(&b[new_index..new_index + new_len])
                        {
                            pair(va, vb, &mut o, &mut n, anchors);
                        }
                    }
                    // Equal items, or items on one side only: the line diff between the
                    // anchors around them sorts them out.
                    op => {
                        o += a[op.old_range()].iter().map(lines).sum::<usize>();
                        n += b[op.new_range()].iter().map(lines).sum::<usize>();
                    }
                }
            }
        }
        _ => return (lines(old), lines(new)),
    }
    // The closing bracket.
    (o + 1 - at.0, n + 1 - at.1)
}

/// A digest of a value's content, to diff array items as units.
fn digest(value: &Value) -> u64 {
    fn feed(value: &Value, h: &mut std::hash::DefaultHasher) {
        use std::hash::Hash;
        match value {
            Value::Null => 0u8.hash(h),
            Value::Bool(b) => (1u8, b).hash(h),
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => (2u8, i).hash(h),
                (_, Some(u), _) => (6u8, u).hash(h),
                (_, _, f) => (7u8, f.map(f64::to_bits)).hash(h),
            },
            Value::String(s) => (3u8, s).hash(h),
            Value::Array(items) => {
                (4u8, items.len()).hash(h);
                items.iter().for_each(|v| feed(v, h));
            }
            Value::Object(members) => {
                (5u8, members.len()).hash(h);
                for (k, v) in members {
                    k.hash(h);
                    feed(v, h);
                }
            }
        }
    }
    let mut h = std::hash::DefaultHasher::new();
    feed(value, &mut h);
    std::hash::Hasher::finish(&h)
}

/// How many lines `serde_json::to_string_pretty` gives a value: one for a scalar or an empty
/// container (strings escape their line breaks), else its brackets' two plus its members'.
fn lines(value: &Value) -> usize {
    match value {
        Value::Array(items) if !items.is_empty() => 2 + items.iter().map(lines).sum::<usize>(),
        Value::Object(members) if !members.is_empty() => {
            2 + members.values().map(lines).sum::<usize>()
        }
        _ => 1,
    }
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

    fn text(s: &str) -> Compared {
        Compared {
            text: s.to_string(),
            tree: None,
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    const LABELS: Labels<'static> = Labels {
        old: "u \"1\"",
        new: "u \"2\"",
    };

    #[test]
    fn json_is_sorted_and_pretty() {
        assert_eq!(
            normalized(Some(&body(r#"{"b":1,"a":{"d":2,"c":3}}"#))).text,
            "{\n  \"a\": {\n    \"c\": 3,\n    \"d\": 2\n  },\n  \"b\": 1\n}\n"
        );
        assert_eq!(normalized(None).text, "");
        let text = Body::new(b"x".to_vec(), Some("text/plain".into()));
        assert_eq!(normalized(Some(&text)).text, "x\n");
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
        let out = render(
            &text("the quick fox\n"),
            &text("the slow fox\n"),
            &LABELS,
            true,
            true,
        );
        assert!(
            out.contains("\x1b[7m"),
            "reverse video for the changed word: {out:?}"
        );
        let hostile = render(&text("a\n"), &text("\x1b]0;x\x07\n"), &LABELS, true, false);
        assert!(hostile.contains("+\\x1b]0;x\\x07\n"), "{hostile:?}");
    }

    #[test]
    fn huge_values_stay_bounded() {
        let old: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
        let new: String = (0..200_000).rev().map(|i| format!("line {i}\n")).collect();
        let started = Instant::now();
        let out = render(&text(&old), &text(&new), &LABELS, false, false);
        assert!(out.starts_with("--- "));
        // The deadlines bound the work; this only guards against a stall, generously.
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn changed_span_is_whole_words_between_common_ends() {
        assert_eq!(
            changed_span("the quick fox\n", "the slow fox\n"),
            Some((4..9, 4..8))
        );
        assert_eq!(
            changed_span("  \"value\": 3,\n", "  \"value\": 34,\n"),
            Some((11..12, 11..13))
        );
        // Multi-byte characters are never split.
        assert_eq!(
            changed_span("café au lait", "cafè au lait"),
            Some((0..5, 0..5))
        );
        assert_eq!(changed_span("x = é", "x = è"), Some((4..6, 4..6)));
        // Nothing in common but blanks: nothing worth emphasizing.
        assert_eq!(changed_span("  abc", "  xyz"), None);
        // A pure insertion emphasizes nothing on the old side.
        assert_eq!(changed_span("a b", "a x b"), Some((2..2, 2..4)));
    }

    #[test]
    fn colored_hunks_have_no_blank_lines() {
        let out = render(&text("a\nb\n"), &text("a\nc\n"), &LABELS, true, true);
        assert_eq!(out.lines().count(), 6, "{out:?}");
        assert!(!out.contains("\n\n"), "{out:?}");
    }

    #[test]
    fn replaced_blocks_of_unequal_size_are_shown_without_emphasis() {
        let out = render(
            &text("x\nsame\n"),
            &text("y1\ny2\nsame\n"),
            &LABELS,
            true,
            true,
        );
        assert!(!out.contains("\x1b[7m"), "{out:?}");
        assert!(out.contains("y2"), "{out:?}");
    }

    /// Applies a unified diff (as `render` prints it without color) to `old`.
    fn patch(old: &str, diff: &str) -> String {
        let old: Vec<&str> = old.lines().collect();
        let mut out: Vec<String> = Vec::new();
        let mut at = 0;
        for line in diff.lines().skip(2) {
            if let Some(header) = line.strip_prefix("@@ -") {
                let start: usize = header.split([',', ' ']).next().unwrap().parse().unwrap();
                // A hunk that deletes from or inserts at the top starts at line 0.
                let start = start.saturating_sub(1).max(at);
                out.extend(old[at..start].iter().map(|s| s.to_string()));
                at = start;
            } else if let Some(kept) = line.strip_prefix(' ') {
                assert_eq!(old[at], kept, "context line {at}");
                out.push(kept.to_string());
                at += 1;
            } else if let Some(gone) = line.strip_prefix('-') {
                assert_eq!(old[at], gone, "deleted line {at}");
                at += 1;
            } else if let Some(added) = line.strip_prefix('+') {
                out.push(added.to_string());
            }
        }
        out.extend(old[at..].iter().map(|s| s.to_string()));
        out.iter().map(|l| format!("{l}\n")).collect()
    }

    #[test]
    fn structural_diffs_are_valid_patches() {
        let items = |every: usize, bump: i64, len: usize| {
            let items: Vec<Value> = (0..len)
                .map(|i| serde_json::json!({"id": i, "v": if i % every == 0 { i as i64 + bump } else { i as i64 }}))
                .collect();
            serde_json::json!({"items": items, "n": len}).to_string()
        };
        let cases = [
            (items(3, 0, 50), items(3, 1, 50)),
            (items(7, 0, 50), items(7, 1, 53)),
            (items(7, 0, 50), items(5, 1, 40)),
            (
                r#"{"a":1,"b":[1,2,3],"c":{"x":null}}"#.into(),
                r#"{"b":[0,1,2,3],"c":"x","d":[]}"#.into(),
            ),
            (
                r#"{"a":{"b":{"c":[1,{"d":2}]}},"z":1}"#.into(),
                r#"{"a":{"b":{"c":[1,{"d":3},4]}}}"#.into(),
            ),
            (r#"[1,2,3]"#.into(), r#"{"a":[1,2,3]}"#.into()),
            (r#"[]"#.into(), r#"[{},[],{"a":[]}]"#.into()),
            (
                r#"{"k":"line\nbreak"}"#.into(),
                r#"{"k":"line\nbreak","l":"x"}"#.into(),
            ),
        ];
        for (a, b) in cases {
            let (old, new) = (normalized(Some(&body(&a))), normalized(Some(&body(&b))));
            let diff = render(&old, &new, &LABELS, false, false);
            assert_eq!(patch(&old.text, &diff), new.text, "{a} -> {b}:\n{diff}");
        }
    }

    #[test]
    fn a_shifted_window_is_an_item_out_and_an_item_in() {
        let changed = |a: &str, b: &str| {
            let (old, new) = (normalized(Some(&body(a))), normalized(Some(&body(b))));
            let diff = render(&old, &new, &LABELS, false, false);
            assert_eq!(patch(&old.text, &diff), new.text, "{diff}");
            diff.lines()
                .skip(2)
                .filter(|l| l.starts_with(['-', '+']))
                .count()
        };
        // The last item gains a comma; one number goes, one comes: not every line changed.
        assert_eq!(
            changed(
                r#"{"recent":[1,2,3,4,5,6,7,8]}"#,
                r#"{"recent":[2,3,4,5,6,7,8,9]}"#
            ),
            4
        );
        let items = |range: std::ops::Range<u32>| {
            let items: Vec<Value> = range
                .map(|i| serde_json::json!({"id": i, "v": i * 10}))
                .collect();
            Value::Array(items).to_string()
        };
        assert!(changed(&items(0..200), &items(1..201)) <= 10);
        // Items changed in place are still lined up inside.
        let mut moved: Vec<Value> = serde_json::from_str(&items(0..200)).unwrap();
        moved[7]["v"] = 1.into();
        assert_eq!(changed(&items(0..200), &Value::Array(moved).to_string()), 2);
    }

    #[test]
    fn line_counts_match_the_pretty_text() {
        for json in [
            r#"{"a":[],"b":{},"c":[1,[2,[3]]],"d":{"e":{"f":"g\nh"}}}"#,
            r#"[[],[[]],{},{"a":null}]"#,
            "3",
        ] {
            let compared = normalized(Some(&body(json)));
            let tree = compared.tree.as_ref().unwrap();
            assert_eq!(lines(tree), compared.text.lines().count(), "{json}");
            let mut anchors = Vec::new();
            assert_eq!(
                align(tree, tree, (0, 0), soon(), &mut anchors),
                (lines(tree), lines(tree))
            );
            // A value lined up with itself needs no anchor inside.
            assert!(anchors.is_empty(), "{anchors:?}");
        }
    }

    #[test]
    fn members_anchor_at_their_own_lines() {
        let old = normalized(Some(&body(r#"{"a":{"x":1,"y":2},"b":{"x":1,"y":2}}"#)));
        let new = normalized(Some(&body(
            r#"{"a":{"w":0,"x":1,"y":2},"b":{"x":1,"y":3}}"#,
        )));
        let mut anchors = Vec::new();
        align(
            old.tree.as_ref().unwrap(),
            new.tree.as_ref().unwrap(),
            (0, 0),
            soon(),
            &mut anchors,
        );
        let (old_lines, new_lines): (Vec<&str>, Vec<&str>) =
            (old.text.lines().collect(), new.text.lines().collect());
        // "b" starts at old line 5 and new line 6, whatever the members before it did.
        assert!(anchors.contains(&(5, 6)), "{anchors:?}");
        assert_eq!(old_lines[5], new_lines[6]);
        assert_eq!(old_lines[5], "  \"b\": {");
        let diff = render(&old, &new, &LABELS, false, false);
        assert_eq!(patch(&old.text, &diff), new.text);
    }

    /// Not a test: `cargo test --release --bin lrwatch diff_timing -- --ignored --nocapture`
    /// prints how long the bench's 1 MB documents take to normalize and diff.
    #[test]
    #[ignore]
    fn diff_timing() {
        for every in [5000usize, 3] {
            let doc = |version: usize| {
                let items: Vec<Value> = (0..20_000)
                    .map(|i| serde_json::json!({"id": i, "name": format!("item number {i}"), "value": if i % every == 0 { i + version } else { i }}))
                    .collect();
                serde_json::json!({"items": items}).to_string()
            };
            let (a, b) = (body(&doc(0)), body(&doc(1)));
            for _ in 0..3 {
                let t0 = Instant::now();
                let (old, new) = (normalized(Some(&a)), normalized(Some(&b)));
                let t1 = Instant::now();
                let out = render(&old, &new, &LABELS, false, false);
                let t2 = Instant::now();
                let colored = render(&old, &new, &LABELS, true, true);
                eprintln!(
                    "every {every}: normalize both {:?}, diff {:?} ({} bytes), in color {:?} ({} bytes)",
                    t1 - t0,
                    t2 - t1,
                    out.len(),
                    t2.elapsed(),
                    colored.len()
                );
            }
        }
    }
}
