//! Server content is hostile: control characters are escaped before they reach a terminal, so
//! a value cannot move the cursor, retitle the window or rewrite what was printed.

use std::borrow::Cow;

/// Escapes C0 controls (but newline and tab when `keep_newlines`), DEL, C1 controls and the
/// bidirectional embeddings, overrides and isolates (which reorder what follows them on the
/// line, "Trojan Source") as visible `\xNN` / `\u{NN}` sequences. Text without any is
/// returned as is.
pub fn for_terminal(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let bad = |c: char| {
        (c.is_control() && !(keep_newlines && (c == '\n' || c == '\t')))
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
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
        // Marks that only nudge neutral characters are text.
        assert_eq!(for_terminal("\u{200f}א", true), "\u{200f}א");
    }
}
