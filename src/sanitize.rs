//! Server content is hostile: control characters and invisible format characters are escaped
//! before they reach a terminal, so a value cannot move the cursor, retitle the window,
//! rewrite what was printed, or read differently from what it is.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as is: C0 controls (but newline and tab when
/// `keep_newlines`), DEL, C1 controls, and the characters that are invisible yet change what
/// a line shows or means (the same set as fd's `sanitize.rs`, plus the rest of general
/// category Cf that renders as nothing, and the line and paragraph separators).
fn needs_escape(c: char, keep_newlines: bool) -> bool {
    if keep_newlines && (c == '\n' || c == '\t') {
        return false;
    }
    c.is_control()
        || matches!(
            c,
            // Soft hyphen: invisible unless the line breaks there.
            '\u{ad}'
            // Arabic letter mark and Mongolian vowel separator: a bidi mark, an invisible one.
            | '\u{61c}'
            | '\u{180e}'
            // Zero-width space, non-joiner, joiner, and the left-to-right / right-to-left
            // marks, which move neutral characters such as quotes and dots across the line.
            | '\u{200b}'..='\u{200f}'
            // Line and paragraph separators: some terminals break the line there.
            | '\u{2028}' | '\u{2029}'
            // Bidi embeddings and overrides ("Trojan Source"), which reorder what follows.
            | '\u{202a}'..='\u{202e}'
            // Word joiner, invisible operators, bidi isolates, deprecated format controls.
            | '\u{2060}'..='\u{206f}'
            // Byte order mark / zero-width no-break space.
            | '\u{feff}'
            // Interlinear annotation anchors.
            | '\u{fff9}'..='\u{fffb}'
            // Egyptian hieroglyph, shorthand and musical format controls.
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            // Tag characters: invisible text that some software reads.
            | '\u{e0000}'..='\u{e007f}'
        )
}

/// Escapes what [`needs_escape`] names as visible `\xNN` / `\u{NN}` sequences. Text without
/// any is returned as is.
pub fn for_terminal(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let bad = |c: char| needs_escape(c, keep_newlines);
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !bad(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// JSON text bound for a terminal (`--json` on one), with every character [`for_terminal`]
/// escapes written as a `\uXXXX` escape (a surrogate pair beyond U+FFFF) — those JSON leaves
/// raw: DEL, C1 controls, bidi overrides and isolates, invisible format characters. Such
/// characters can only stand inside JSON's strings, so the text stays valid JSON with the
/// same value, but none of them reaches the terminal as is. Line ends and tabs (which JSON
/// text can only hold between tokens) are kept. In a pipe, the bytes are kept exact instead.
pub fn json_for_terminal(json: &str) -> Cow<'_, str> {
    let bad = |c: char| needs_escape(c, true);
    if !json.chars().any(bad) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if !bad(c) {
            out.push(c);
            continue;
        }
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            out.push_str(&format!("\\u{unit:04x}"));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls() {
        assert_eq!(for_terminal("plain", true), "plain");
        assert_eq!(for_terminal("a\x1b[2Jb", true), "a\\x1b[2Jb");
        assert_eq!(for_terminal("a\rb", true), "a\\x0db");
        assert_eq!(for_terminal("a\nb\tc", true), "a\nb\tc");
        assert_eq!(for_terminal("a\nb", false), "a\\x0ab");
        assert_eq!(for_terminal("\u{9b}31m\u{7f}", true), "\\u{9b}31m\\x7f");
        assert_eq!(for_terminal("é✓", true), "é✓");
        assert_eq!(
            for_terminal("a\u{202e}b\u{2066}", true),
            "a\\u{202e}b\\u{2066}"
        );
    }

    #[test]
    fn escapes_invisible_format_characters() {
        for (c, escaped) in [
            ('\u{ad}', "\\u{ad}"),
            ('\u{61c}', "\\u{61c}"),
            ('\u{180e}', "\\u{180e}"),
            ('\u{200b}', "\\u{200b}"),
            ('\u{200c}', "\\u{200c}"),
            ('\u{200d}', "\\u{200d}"),
            ('\u{200e}', "\\u{200e}"),
            ('\u{200f}', "\\u{200f}"),
            ('\u{2028}', "\\u{2028}"),
            ('\u{2029}', "\\u{2029}"),
            ('\u{202a}', "\\u{202a}"),
            ('\u{2060}', "\\u{2060}"),
            ('\u{2064}', "\\u{2064}"),
            ('\u{2069}', "\\u{2069}"),
            ('\u{206f}', "\\u{206f}"),
            ('\u{feff}', "\\u{feff}"),
            ('\u{fffb}', "\\u{fffb}"),
            ('\u{1bca0}', "\\u{1bca0}"),
            ('\u{1d173}', "\\u{1d173}"),
            ('\u{e0001}', "\\u{e0001}"),
            ('\u{e007f}', "\\u{e007f}"),
        ] {
            for keep_newlines in [true, false] {
                assert_eq!(
                    for_terminal(&format!("a{c}b"), keep_newlines),
                    format!("a{escaped}b"),
                    "{:x}",
                    c as u32
                );
            }
        }
        // An ETag that would look like another one.
        assert_eq!(for_terminal("\"v1\u{200b}\"", false), "\"v1\\u{200b}\"");
        // A right-to-left mark moves the quote, so it is escaped too (fd does the same).
        assert_eq!(for_terminal("\u{200f}א", true), "\\u{200f}א");
    }

    #[test]
    fn terminal_json_escapes_the_same_set_and_keeps_the_value() {
        let text = "a\u{202e}b\u{2066}c\u{200b}\u{7f}\u{9b}\u{e0041}\x1b\n\t\"é文🦀";
        let value = serde_json::json!({ "k\u{2067}": [text] });
        let json = format!("{value}\n");
        let escaped = json_for_terminal(&json);
        assert_eq!(
            escaped,
            "{\"k\\u2067\":[\"a\\u202eb\\u2066c\\u200b\\u007f\\u009b\\udb40\\udc41\\u001b\\n\\t\\\"é文🦀\"]}\n"
        );
        // Nothing that needs escaping is left, and it reads back as the same value.
        assert!(matches!(for_terminal(&escaped, true), Cow::Borrowed(_)));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&escaped).unwrap(),
            value
        );
        assert!(matches!(
            json_for_terminal("{\"a\":\"é\"}\n"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn keeps_visible_text_borrowed() {
        for text in [
            "plain",
            "résumé",
            "文档",
            "🦀",
            "a\u{fffd}b",
            "heart\u{2764}\u{fe0f}",
            "icon\u{e000}",
            "שלום",
            "مرحبا",
            // Arabic number sign: category Cf, but drawn.
            "\u{600}1",
        ] {
            assert!(
                matches!(for_terminal(text, false), Cow::Borrowed(_)),
                "{text:?}"
            );
        }
    }
}
