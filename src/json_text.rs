//! Whether bytes are one JSON text, and whether it is written compactly, told in one pass
//! without building anything: the check every event of a fast stream needs before its body is
//! printed as it came.
//!
//! Why not serde_json here: validating with serde_json (a borrowed `RawValue`) and then looking
//! for whitespace were two passes, a fifth of the printer's time on a stream of 1 KB events
//! (BENCHMARKS.md). This pass accepts exactly what that validation did (the unit tests compare
//! the two on many inputs): RFC 8259's grammar, valid UTF-8, any nesting depth, any number's
//! size, `\u` escapes not checked for surrogate pairs. Strings, most of a body's bytes, are
//! passed over with `memchr` and a vectorized look for control characters and bytes past
//! ASCII; only strings with the latter are checked for UTF-8, which stands in for a check of
//! the whole text, as JSON outside strings is ASCII by its grammar.

/// How a JSON text is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// No whitespace outside strings: one line, printable as it came.
    Compact,
    /// Whitespace between tokens (line ends perhaps among it).
    Spaced,
}

/// The shape of `bytes` when they are one JSON text (whitespace around it allowed); `None`
/// when they are not. `utf8`: the caller knows them to be UTF-8 (decoded text).
pub(crate) fn shape(bytes: &[u8], utf8: bool) -> Option<Shape> {
    let mut text = Text {
        bytes,
        at: 0,
        spaced: false,
        utf8,
    };
    text.value()?;
    text.skip_whitespace();
    (text.at == bytes.len()).then_some(if text.spaced {
        Shape::Spaced
    } else {
        Shape::Compact
    })
}

/// A cursor over the text, and whether whitespace was passed.
struct Text<'a> {
    bytes: &'a [u8],
    at: usize,
    spaced: bool,
    /// The bytes are known to be UTF-8: characters in strings need no check.
    utf8: bool,
}

/// Where the containers around the cursor are: a bit per level (set for an object) for the
/// first 128, a vector only for deeper nesting, which real bodies do not reach.
#[derive(Default)]
struct Nesting {
    bits: u128,
    depth: usize,
    deeper: Vec<bool>,
}

impl Nesting {
    fn push(&mut self, object: bool) {
        if self.depth < 128 {
            self.bits = (self.bits & !(1 << self.depth)) | (u128::from(object) << self.depth);
        } else {
            self.deeper.push(object);
        }
        self.depth += 1;
    }

    /// Leaves the innermost container; whether the one around it is an object (`None` at the
    /// top).
    fn pop(&mut self) -> Option<bool> {
        self.depth -= 1;
        if self.depth >= 128 {
            self.deeper.pop();
        }
        self.innermost()
    }

    fn innermost(&self) -> Option<bool> {
        match self.depth {
            0 => None,
            d if d > 128 => self.deeper.last().copied(),
            d => Some(self.bits & (1 << (d - 1)) != 0),
        }
    }
}

impl Text<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
            self.spaced = true;
        }
    }

    /// The next byte after whitespace, taken.
    fn next_token(&mut self) -> Option<u8> {
        self.skip_whitespace();
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    /// One value, containers walked with an explicit stack (no recursion to overflow).
    fn value(&mut self) -> Option<()> {
        let mut nesting = Nesting::default();
        loop {
            // A value starts here.
            match self.next_token()? {
                b'{' => {
                    if self.next_token()? == b'}' {
                        // Empty: a complete value, closed below.
                    } else {
                        self.at -= 1;
                        nesting.push(true);
                        self.key()?;
                        continue;
                    }
                }
                b'[' => {
                    self.skip_whitespace();
                    if self.peek()? == b']' {
                        self.at += 1;
                    } else {
                        nesting.push(false);
                        continue;
                    }
                }
                b'"' => self.string()?,
                b't' => self.literal(b"rue")?,
                b'f' => self.literal(b"alse")?,
                b'n' => self.literal(b"ull")?,
                b'-' | b'0'..=b'9' => {
                    self.at -= 1;
                    self.number()?;
                }
                _ => return None,
            }
            // A value ended: what follows it in its container, closing as many as end here.
            let mut object = nesting.innermost();
            loop {
                let Some(in_object) = object else {
                    return Some(());
                };
                match (self.next_token()?, in_object) {
                    (b',', true) => {
                        self.key()?;
                        break;
                    }
                    (b',', false) => break,
                    (b'}', true) | (b']', false) => object = nesting.pop(),
                    _ => return None,
                }
            }
        }
    }

    /// An object's key and the colon after it.
    fn key(&mut self) -> Option<()> {
        (self.next_token()? == b'"').then_some(())?;
        self.string()?;
        (self.next_token()? == b':').then_some(())
    }

    /// The rest of a string, after its opening quote.
    fn string(&mut self) -> Option<()> {
        loop {
            let rest = &self.bytes[self.at..];
            let end = memchr::memchr2(b'"', b'\\', rest)?;
            let span = &rest[..end];
            // The least and greatest byte before it (reductions the compiler vectorizes): no
            // raw control character, and only a span with a byte past ASCII is checked for
            // UTF-8 (it is whole characters: a quote or backslash is never part of one).
            let (least, greatest) = span
                .iter()
                .fold((u8::MAX, 0), |(lo, hi), &b| (lo.min(b), hi.max(b)));
            if least < 0x20
                || (greatest >= 0x80 && !self.utf8 && std::str::from_utf8(span).is_err())
            {
                return None;
            }
            self.at += end + 1;
            if rest[end] == b'"' {
                return Some(());
            }
            self.escape()?;
        }
    }

    /// The rest of an escape, after its backslash.
    fn escape(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
            b'u' => {
                let hex = self.bytes.get(self.at + 1..self.at + 5)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                self.at += 5;
            }
            _ => return None,
        }
        Some(())
    }

    fn literal(&mut self, rest: &[u8]) -> Option<()> {
        let here = self.bytes.get(self.at..self.at + rest.len())?;
        (here == rest).then(|| self.at += rest.len())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    /// One digit or more.
    fn some_digits(&mut self) -> Option<()> {
        let from = self.at;
        self.digits();
        (self.at > from).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What this pass stands in for: serde_json's validation, and a search for whitespace
    /// outside strings.
    fn oracle(bytes: &[u8]) -> Option<Shape> {
        serde_json::from_slice::<&serde_json::value::RawValue>(bytes).ok()?;
        let text = std::str::from_utf8(bytes).ok()?;
        let mut in_string = false;
        let mut escaped = false;
        for c in text.chars() {
            match (in_string, escaped, c) {
                (true, true, _) => escaped = false,
                (true, false, '\\') => escaped = true,
                (true, false, '"') | (false, _, '"') => in_string = !in_string,
                (false, _, ' ' | '\t' | '\n' | '\r') => return Some(Shape::Spaced),
                _ => {}
            }
        }
        Some(Shape::Compact)
    }

    #[test]
    fn agrees_with_serde_json_on_chosen_cases() {
        let pad = "x".repeat(100);
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let deep_objects = |n: usize| format!("{}1{}", "{\"a\":[".repeat(n), "]}".repeat(n));
        let cases = [
            "1",
            "-0",
            "01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "1E-7",
            "-1.5e+300",
            "1e400",
            "-",
            "[01]",
            "\"\\ud800\"",
            "\"\u{7f}\"",
            "\"a\tb\"",
            "\"a\u{1}b\"",
            "[1,]",
            "{\"a\":1,}",
            " 1 ",
            "1 2",
            "",
            " ",
            "tru",
            "nul",
            "true",
            "false",
            "null",
            "nullx",
            "\"\\x\"",
            "\"\\u00zz\"",
            "\"\\u00e9\"",
            "\"\\u00e\"",
            "{\"a\" : 1}",
            "{\"a\":1}",
            "{}",
            "[]",
            "{ }",
            "[ ]",
            "[[],{}]",
            "{\"a\"}",
            "{\"a\":}",
            "{1:2}",
            "[1 2]",
            "{\"a\":1 \"b\":2}",
            "[}",
            "{]",
            "[",
            "{",
            "]",
            "\"",
            "\"\\\"",
            "\"\\\\\"",
            "\"é\"",
            "[\"a\",\"b\"]\n",
            "\n[1]",
            "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}",
            "[1,\n2]",
            "[-]",
            "[1.e5]",
            "[+1]",
            "\"\\/\\b\\f\\n\\r\\t\"",
            "[true,false,null]",
            "[truefalse]",
            "\u{feff}1",
        ];
        let mut all: Vec<String> = cases.iter().map(|s| s.to_string()).collect();
        all.extend([
            format!("{{\"pad\":\"{pad} {pad}\",\"k\":\"\\\\\"}}"),
            format!("{{\"pad\":\"{pad}\\\"\"\t}}"),
            deep(127),
            deep(128),
            deep(129),
            deep(300),
            deep_objects(200),
            format!("{}]", deep(130)),
            format!("{}1", deep(129)),
        ]);
        for case in &all {
            assert_eq!(
                shape(case.as_bytes(), false),
                oracle(case.as_bytes()),
                "{case:?}"
            );
        }
        // Invalid UTF-8, in and out of strings.
        for bytes in [
            &b"\"\xff\""[..],
            b"[\xc3]",
            b"\"\xc3\xa9\"",
            b"\"\xed\xa0\x80\"",
        ] {
            assert_eq!(shape(bytes, false), oracle(bytes), "{bytes:?}");
        }
    }

    #[test]
    fn agrees_with_serde_json_on_random_texts() {
        // Texts made of JSON's own pieces, so that many are valid and the rest fail in every
        // way there is; a fixed seed, so a failure repeats.
        // Bytes, not text: pieces of invalid UTF-8 too (a lone lead or continuation byte, a
        // surrogate, an overlong form, past U+10FFFF), and runs of plain ASCII longer than a
        // block, so that what ends them falls at every place in a block.
        let long = "abcdefghij".repeat(7);
        let pieces: Vec<&[u8]> = vec![
            b"{",
            b"}",
            b"[",
            b"]",
            b",",
            b":",
            b"\"",
            b"\"k\"",
            b"\"v w\"",
            b"1",
            b"-2.5e3",
            b"0",
            b"true",
            b"null",
            b" ",
            b"\n",
            b"\\",
            b"\\u12",
            b"\\n",
            "é".as_bytes(),
            b"x",
            b"\t",
            b"01",
            b".",
            "€😀".as_bytes(),
            b"\xff",
            b"\xc3",
            b"\x80",
            b"\xed\xa0\x80",
            b"\xc0\x80",
            b"\xf4\x90\x80\x80",
            b"\x01",
            &long.as_bytes()[..33],
            &long.as_bytes()[..64],
            &long.as_bytes()[..40],
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        let mut valid = 0;
        for _ in 0..200_000 {
            let n = rng.usize(1..12);
            let text: Vec<u8> = (0..n)
                .flat_map(|_| pieces[rng.usize(..pieces.len())].iter().copied())
                .collect();
            let expected = oracle(&text);
            valid += usize::from(expected.is_some());
            assert_eq!(
                shape(&text, false),
                expected,
                "{:?}",
                String::from_utf8_lossy(&text)
            );
            if let Ok(known) = std::str::from_utf8(&text) {
                assert_eq!(shape(known.as_bytes(), true), expected, "{known:?}");
            }
        }
        assert!(valid > 1000, "too few valid texts to compare: {valid}");
    }
}
