//! RFC 8288 `Link` headers: parsing what servers advertise, and writing what our server advertises.
//!
//! The parser is hand-written because the crates around either mangle the cases LiveResource
//! servers really send (see CRATE-NOTES.md) or hide which link-values they had to drop. It scans
//! each header once, byte by byte, without recursion; a malformed link-value becomes a
//! [`LinkError`] and parsing resumes after the next top-level comma, so one bad link never hides
//! its neighbours. Work and memory are bounded (see [`parse_link_headers`]) because the headers
//! come from servers we do not control.

use std::fmt::{self, Write as _};
use url::Url;

/// Header text read in total, over all values; the rest is ignored (with one error).
const MAX_INPUT_BYTES: usize = 1024 * 1024;
/// Links kept; once reached, the rest is ignored (with one error).
const MAX_LINKS: usize = 10_000;
/// Errors reported individually; further ones are only counted, in one summary error.
const MAX_ERRORS: usize = 100;
/// Parameters (other than the first `rel`) on one link-value before it is rejected.
const MAX_PARAMS: usize = 64;
/// Relation types in one `rel` before the link-value is rejected.
const MAX_RELS: usize = 64;
/// Longest [`LinkError::fragment`], in characters.
const MAX_FRAGMENT_CHARS: usize = 200;

/// Prefixes of the long (form C) LiveResource relation names, which mean the same as their leaf.
/// Compared after ASCII-lowercasing, which makes scheme and host case-insensitive.
const LIVERESOURCE_REL_PREFIXES: [&str; 2] = [
    "http://liveresource.org/protocol/",
    "https://liveresource.org/protocol/",
];

/// One parsed link: a resolved target, its relation types, its other parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Target resolved against the base URL (the final request URL after redirects).
    pub target: Url,
    /// Relation types, lowercased; the long LiveResource names
    /// `http://liveresource.org/protocol/<leaf>` (also https, case-insensitive host) reduced to
    /// `<leaf>`. Other absolute-URI rels are kept as given (lowercased). Duplicates are dropped;
    /// empty when the link-value had no `rel`.
    pub rels: Vec<String>,
    /// Other parameters in order: name lowercased, value unquoted and unescaped (a param
    /// without `=` has value ""). Extended values such as `title*` are kept raw (not decoded),
    /// `anchor` is kept unresolved, and any `rel` after the first is ignored (RFC 8288 §3.3).
    pub params: Vec<(String, String)>,
}

impl Link {
    /// Whether this link has relation type `rel`, compared case-insensitively; a long
    /// LiveResource name in `rel` is reduced to its leaf first, like the link's own rels.
    #[must_use]
    pub fn has_rel(&self, rel: &str) -> bool {
        self.has_normalized_rel(&normalize_rel(rel))
    }

    /// The value of the first parameter called `name` (case-insensitive), if any.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has_normalized_rel(&self, rel: &str) -> bool {
        self.rels.iter().any(|r| r == rel)
    }
}

/// Why one link-value was skipped (or, for the limits, why the rest of the input was).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkError {
    /// What was wrong, for people.
    pub message: String,
    /// The offending link-value text, trimmed and truncated to 200 characters.
    pub fragment: String,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.fragment.is_empty() {
            write!(f, "{}", self.message)
        } else {
            // Debug formatting shows control characters and quotes in the fragment unambiguously.
            write!(f, "{} in link-value {:?}", self.message, self.fragment)
        }
    }
}

impl std::error::Error for LinkError {}

/// Result of parsing: the links in header order, and the link-values that had to be skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedLinks {
    /// Every well-formed link, in the order the headers listed them.
    pub links: Vec<Link>,
    /// One entry per skipped link-value, plus at most one per limit reached.
    pub errors: Vec<LinkError>,
}

impl ParsedLinks {
    /// The first link having relation type `rel` (compared as in [`Link::has_rel`]).
    #[must_use]
    pub fn find(&self, rel: &str) -> Option<&Link> {
        self.all(rel).next()
    }

    /// Every link having relation type `rel` (compared as in [`Link::has_rel`]), in order.
    pub fn all(&self, rel: &str) -> impl Iterator<Item = &Link> + '_ {
        let rel = normalize_rel(rel);
        self.links
            .iter()
            .filter(move |link| link.has_normalized_rel(&rel))
    }
}

/// Parses every `Link` header value of one response (there may be several headers), resolving
/// targets against `base`, which should be the final request URL after redirects.
///
/// Malformed link-values are skipped and reported in `errors`; parsing resumes at the next
/// link-value. Never panics. Work is bounded: header text beyond 1 MiB in total (each value
/// also counts one byte, as the separator it would take if joined) and links beyond 10,000 are
/// ignored, each limit recording one error; at most 100 malformed link-values are reported
/// individually, the rest in one summary error.
#[must_use]
pub fn parse_link_headers<'a>(
    values: impl IntoIterator<Item = &'a str>,
    base: &Url,
) -> ParsedLinks {
    let mut sink = Sink::default();
    let mut budget = MAX_INPUT_BYTES;
    for value in values {
        // Each value is charged one more byte for its separator, so that an endless stream of
        // empty values also ends.
        let truncated = value.len() >= budget;
        let text = if truncated {
            &value[..floor_char_boundary(value, budget.saturating_sub(1))]
        } else {
            budget -= value.len() + 1;
            value
        };
        match Header::new(text, base).parse(&mut sink, truncated) {
            Flow::Stopped => break,
            Flow::Ended { dropped_from } if truncated => {
                let from = dropped_from.unwrap_or(text.len());
                sink.limit_error(
                    format!("Link header text beyond {MAX_INPUT_BYTES} bytes in total was ignored"),
                    &value[from..],
                );
                break;
            }
            Flow::Ended { .. } => {}
        }
    }
    sink.finish()
}

/// Formats one link-value for a `Link` header: `<target>; rel="a b"; k="v"`.
///
/// `rels` are joined with spaces into one quoted `rel` parameter; every parameter value is
/// written as a quoted string (with `"` and `\` escaped), which RFC 8288 always allows, so
/// [`parse_link_headers`] reads back the same rels and values. Parameter names must be tokens
/// (they are the caller's constants). Characters that cannot appear in a URI reference and would
/// break the `<...>` framing (controls, space, `"`, `<`, `>`) are percent-encoded in `target`.
#[must_use]
pub fn format_link(target: &str, rels: &[&str], params: &[(&str, &str)]) -> String {
    let mut out = format!(
        "<{}>; rel=\"{}\"",
        encode_target(target),
        quote_escape(&rels.join(" "))
    );
    for (name, value) in params {
        out.push_str("; ");
        out.push_str(name);
        out.push_str("=\"");
        out.push_str(&quote_escape(value));
        out.push('"');
    }
    out
}

fn quote_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn encode_target(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    for c in target.chars() {
        if c.is_ascii_control() || matches!(c, ' ' | '"' | '<' | '>') {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{:02X}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Lowercases a relation type and reduces a long LiveResource name to its leaf.
fn normalize_rel(rel: &str) -> String {
    let lower = rel.to_ascii_lowercase();
    for prefix in LIVERESOURCE_REL_PREFIXES {
        if let Some(leaf) = lower.strip_prefix(prefix) {
            // Only a plain leaf names a LiveResource relation; anything longer is some other URI.
            if !leaf.is_empty() && !leaf.contains(['/', '?', '#']) {
                return leaf.to_string();
            }
        }
    }
    lower
}

/// The largest char boundary of `s` at or below `at` (`str::floor_char_boundary` is unstable).
fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    let mut at = at;
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Trims and shortens a link-value for [`LinkError::fragment`], touching at most a bounded
/// prefix so that reporting errors stays cheap however long the input is.
fn fragment(text: &str) -> String {
    let short: String = text.trim_start().chars().take(MAX_FRAGMENT_CHARS).collect();
    short.trim_end().to_string()
}

/// RFC 9110 `tchar`: the characters of a token (parameter names, unquoted values).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Characters accepted in an unquoted parameter value. Wider than `tchar` because real servers
/// send `type=text/event-stream` and unquoted absolute-URI rels; it still stops at everything
/// that delimits (whitespace, `,`, `;`, quotes, angle brackets) so garbage is not swallowed.
fn is_unquoted_value_byte(b: u8) -> bool {
    !(b.is_ascii_control() || b" ,;\"<>".contains(&b))
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Collects results across header values and enforces the limits on links and errors.
#[derive(Default)]
struct Sink {
    out: ParsedLinks,
    /// Malformed link-values past [`MAX_ERRORS`], reported as one count at the end.
    unreported_errors: usize,
}

impl Sink {
    /// Adds a link, or returns false (after recording why) when the link limit is reached.
    fn link(&mut self, link: Link, text: &str) -> bool {
        if self.out.links.len() >= MAX_LINKS {
            self.limit_error(
                format!("more than {MAX_LINKS} links; the rest were ignored"),
                text,
            );
            return false;
        }
        self.out.links.push(link);
        true
    }

    fn error(&mut self, message: String, text: &str) {
        if self.out.errors.len() >= MAX_ERRORS {
            self.unreported_errors += 1;
        } else {
            self.out.errors.push(LinkError {
                message,
                fragment: fragment(text),
            });
        }
    }

    /// Limit errors bypass [`MAX_ERRORS`]: each limit fires at most once, and must be seen.
    fn limit_error(&mut self, message: String, text: &str) {
        self.out.errors.push(LinkError {
            message,
            fragment: fragment(text),
        });
    }

    fn finish(mut self) -> ParsedLinks {
        if self.unreported_errors > 0 {
            self.out.errors.push(LinkError {
                message: format!(
                    "{} more malformed link-values were not reported",
                    self.unreported_errors
                ),
                fragment: String::new(),
            });
        }
        self.out
    }
}

/// How parsing one header value ended.
enum Flow {
    /// The whole value was read. For a truncated value, `dropped_from` is where the last
    /// link-value started if it was dropped because it ran into the cut.
    Ended { dropped_from: Option<usize> },
    /// The link limit was reached: stop reading headers altogether.
    Stopped,
}

/// Where to resume after a malformed link-value.
#[derive(Clone, Copy)]
enum Resume {
    /// Scan on from here for the next top-level comma, skipping `<...>` and quoted strings.
    ScanFrom(usize),
    /// A `<` or `"` opened here never closed, so its contents cannot be trusted to hide
    /// commas: resume at the first comma after it.
    CommaAfter(usize),
}

struct Fail {
    message: String,
    resume: Resume,
}

fn fail<T>(message: impl Into<String>, resume: Resume) -> Result<T, Fail> {
    Err(Fail {
        message: message.into(),
        resume,
    })
}

/// A parser over one header value. Positions are byte offsets; they only ever stop on ASCII
/// delimiters or the end, so they are always char boundaries.
struct Header<'s> {
    text: &'s str,
    bytes: &'s [u8],
    base: &'s Url,
    /// The position of a `"` whose quoted string ran to the end of the text. Every later `"`
    /// was consumed as an escaped quote by that scan, so a scan starting at any of them reads the
    /// same bytes in the same state and fails too: remembering this keeps hostile input with
    /// many unterminated quotes linear instead of quadratic.
    unterminated_quote_from: Option<usize>,
}

impl<'s> Header<'s> {
    fn new(text: &'s str, base: &'s Url) -> Self {
        Header {
            text,
            bytes: text.as_bytes(),
            base,
            unterminated_quote_from: None,
        }
    }

    /// Parses every link-value into `sink`. When the text was `truncated`, a last link-value
    /// running into the cut (not ended by a comma) may look complete while missing its end, or
    /// look malformed only because of the cut, so it is dropped without a link or an error.
    fn parse(mut self, sink: &mut Sink, truncated: bool) -> Flow {
        let len = self.bytes.len();
        let mut pos = 0;
        loop {
            // The #rule (RFC 9110 §5.6.1) allows empty list elements: skip them silently.
            while pos < len && (is_ows(self.bytes[pos]) || self.bytes[pos] == b',') {
                pos += 1;
            }
            if pos >= len {
                return Flow::Ended { dropped_from: None };
            }
            let start = pos;
            let (result, end) = match self.link_value(start) {
                Ok((link, end)) => (Ok(link), end),
                Err(fail) => {
                    let end = self.recover(fail.resume);
                    (Err(fail.message), end)
                }
            };
            // `end` is the terminating comma or the end of the text, always past `start`.
            if truncated && end >= len {
                return Flow::Ended {
                    dropped_from: Some(start),
                };
            }
            let text = &self.text[start..end];
            match result {
                Ok(link) => {
                    if !sink.link(link, text) {
                        return Flow::Stopped;
                    }
                }
                Err(message) => sink.error(message, text),
            }
            pos = end + 1;
        }
    }

    fn peek(&self, pos: usize) -> Option<u8> {
        self.bytes.get(pos).copied()
    }

    fn skip_ows(&self, mut pos: usize) -> usize {
        while self.peek(pos).is_some_and(is_ows) {
            pos += 1;
        }
        pos
    }

    /// Describes the character at `pos` for an error message.
    fn describe(&self, pos: usize) -> String {
        match self.text[pos..].chars().next() {
            Some(c) => format!("{c:?}"),
            None => "end of header".to_string(),
        }
    }

    /// Parses `<target> *( OWS ";" OWS param )` starting at `start`, returning the link and the
    /// position of the terminating comma (or the end of the text).
    fn link_value(&mut self, start: usize) -> Result<(Link, usize), Fail> {
        if self.peek(start) != Some(b'<') {
            return fail(
                format!(
                    "expected '<' to start a link target, found {}",
                    self.describe(start)
                ),
                Resume::ScanFrom(start),
            );
        }
        let Some(close) = self.target_end(start) else {
            return fail("unterminated '<' target", Resume::CommaAfter(start));
        };
        let raw_target = &self.text[start + 1..close];
        if raw_target
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            // `Url::join` would silently strip or encode these; a URI reference has none.
            return fail(
                "link target contains whitespace or control characters",
                Resume::ScanFrom(close + 1),
            );
        }
        let target = match self.base.join(raw_target) {
            Ok(target) => target,
            Err(e) => {
                return fail(
                    format!("invalid link target URL: {e}"),
                    Resume::ScanFrom(close + 1),
                )
            }
        };

        let mut rel: Option<String> = None;
        let mut params = Vec::new();
        let mut pos = close + 1;
        loop {
            pos = self.skip_ows(pos);
            match self.peek(pos) {
                None | Some(b',') => break,
                Some(b';') => pos += 1,
                Some(_) => {
                    return fail(
                        format!("expected ';' or ',', found {}", self.describe(pos)),
                        Resume::ScanFrom(pos),
                    )
                }
            }
            pos = self.skip_ows(pos);
            // Tolerate empty parameters (`;;`, a trailing `;`): harmless and seen in the wild.
            if matches!(self.peek(pos), None | Some(b';' | b',')) {
                continue;
            }
            let (name, value, end) = self.param(pos)?;
            pos = end;
            if name == "rel" {
                // RFC 8288 §3.3: occurrences after the first MUST be ignored.
                if rel.is_none() {
                    rel = Some(value);
                }
            } else if params.len() >= MAX_PARAMS {
                return fail(
                    format!("more than {MAX_PARAMS} parameters"),
                    Resume::ScanFrom(pos),
                );
            } else {
                params.push((name, value));
            }
        }

        let mut rels: Vec<String> = Vec::new();
        for r in rel.as_deref().unwrap_or("").split_ascii_whitespace() {
            if rels.len() >= MAX_RELS {
                return fail(
                    format!("more than {MAX_RELS} relation types"),
                    Resume::ScanFrom(pos),
                );
            }
            let r = normalize_rel(r);
            if !rels.contains(&r) {
                rels.push(r);
            }
        }
        Ok((
            Link {
                target,
                rels,
                params,
            },
            pos,
        ))
    }

    /// Parses `name [ "=" ( token / quoted-string ) ]` at `start` (with optional whitespace
    /// around `=`), returning the lowercased name, the unquoted value and the position after it.
    fn param(&mut self, start: usize) -> Result<(String, String, usize), Fail> {
        let mut pos = start;
        while self.peek(pos).is_some_and(is_tchar) {
            pos += 1;
        }
        if pos == start {
            return fail(
                format!("expected a parameter name, found {}", self.describe(pos)),
                Resume::ScanFrom(pos),
            );
        }
        let name = self.text[start..pos].to_ascii_lowercase();
        pos = self.skip_ows(pos);
        if self.peek(pos) != Some(b'=') {
            return Ok((name, String::new(), pos));
        }
        pos = self.skip_ows(pos + 1);
        if self.peek(pos) == Some(b'"') {
            let Some(end) = self.quoted_end(pos) else {
                return fail("unterminated quoted string", Resume::CommaAfter(pos));
            };
            let value = unescape(&self.text[pos + 1..end]);
            return Ok((name, value, end + 1));
        }
        let value_start = pos;
        while self.peek(pos).is_some_and(is_unquoted_value_byte) {
            pos += 1;
        }
        if pos == value_start {
            return fail(
                format!(
                    "expected a value for parameter {name:?}, found {}",
                    self.describe(pos)
                ),
                Resume::ScanFrom(pos),
            );
        }
        let value = self.text[value_start..pos].to_string();
        Ok((name, value, pos))
    }

    /// The position of the `>` closing the `<` at `open`, or None when the target is
    /// unterminated: the end comes first, or another `<`, which a URI reference cannot contain
    /// and which most likely starts the next link after a missing `>`.
    fn target_end(&self, open: usize) -> Option<usize> {
        let rest = &self.bytes[open + 1..];
        let i = rest.iter().position(|&b| b == b'>' || b == b'<')?;
        (rest[i] == b'>').then_some(open + 1 + i)
    }

    /// The position of the `"` closing the quoted string opened at `open`, honouring `\`
    /// escapes, or None when it never closes.
    fn quoted_end(&mut self, open: usize) -> Option<usize> {
        if self
            .unterminated_quote_from
            .is_some_and(|from| from <= open)
        {
            return None;
        }
        let mut i = open + 1;
        // Stepping over one byte after `\` is safe even inside a multi-byte character: UTF-8
        // continuation bytes are never `"` or `\`.
        while i < self.bytes.len() {
            match self.bytes[i] {
                b'\\' => i += 2,
                b'"' => return Some(i),
                _ => i += 1,
            }
        }
        self.unterminated_quote_from = Some(open);
        None
    }

    /// Finds where a malformed link-value ends: the position of the comma that ends it, or the
    /// end of the text.
    fn recover(&mut self, resume: Resume) -> usize {
        let mut i = match resume {
            Resume::CommaAfter(open) => return self.comma_after(open),
            Resume::ScanFrom(i) => i,
        };
        while let Some(b) = self.peek(i) {
            match b {
                b',' => return i,
                b'"' => match self.quoted_end(i) {
                    Some(end) => i = end + 1,
                    None => return self.comma_after(i),
                },
                b'<' => match self.target_end(i) {
                    Some(end) => i = end + 1,
                    None => return self.comma_after(i),
                },
                _ => i += 1,
            }
        }
        i
    }

    /// The first comma after `open`, or the end of the text.
    fn comma_after(&self, open: usize) -> usize {
        self.bytes[open + 1..]
            .iter()
            .position(|&b| b == b',')
            .map_or(self.bytes.len(), |i| open + 1 + i)
    }
}

/// The contents of a quoted string with its quoted-pairs (`\x`) replaced by `x`.
fn unescape(quoted: &str) -> String {
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            // `quoted_end` guarantees a character follows every backslash.
            if let Some(escaped) = chars.next() {
                out.push(escaped);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://example.com/object/1").unwrap()
    }

    fn parse(values: &[&str]) -> ParsedLinks {
        parse_link_headers(values.iter().copied(), &base())
    }

    fn parse_with_base(values: &[&str], base: &str) -> ParsedLinks {
        parse_link_headers(values.iter().copied(), &Url::parse(base).unwrap())
    }

    /// A link as (target, rels, params), for comparing whole results at once.
    type Summary = (String, Vec<String>, Vec<(String, String)>);

    fn summary(parsed: &ParsedLinks) -> Vec<Summary> {
        parsed
            .links
            .iter()
            .map(|l| (l.target.to_string(), l.rels.clone(), l.params.clone()))
            .collect()
    }

    fn link(target: &str, rels: &[&str], params: &[(&str, &str)]) -> Summary {
        (
            target.to_string(),
            rels.iter().map(|r| r.to_string()).collect(),
            params
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn assert_clean(parsed: &ParsedLinks) {
        assert!(parsed.errors.is_empty(), "errors: {:?}", parsed.errors);
    }

    #[test]
    fn form_a_value_wait_and_stream_in_one_header() {
        let p = parse(&["</object/1>; rel=value-wait, </object/1>; rel=value-stream"]);
        assert_clean(&p);
        assert_eq!(
            summary(&p),
            vec![
                link("http://example.com/object/1", &["value-wait"], &[]),
                link("http://example.com/object/1", &["value-stream"], &[]),
            ]
        );
    }

    #[test]
    fn form_a_absolute_changes_wait() {
        let p =
            parse(&["<http://example.com/object/?after=1395174448&wait=true>; rel=changes-wait"]);
        assert_clean(&p);
        let l = p.find("changes-wait").unwrap();
        assert_eq!(
            l.target.as_str(),
            "http://example.com/object/?after=1395174448&wait=true"
        );
        assert_eq!(l.target.query(), Some("after=1395174448&wait=true"));
    }

    #[test]
    fn form_a_quoted_rel_list_and_other_rels() {
        let p = parse(&[
            "</items/?after=2>; rel=\"changes changes-wait\"",
            "</items/changes/stream/>; rel=changes-stream",
            "</multi/>; rel=multiplex-wait",
            "</multi/ws/>; rel=multiplex-ws",
            "</object/1/subscriptions/>; rel=value-callback",
        ]);
        assert_clean(&p);
        assert_eq!(
            summary(&p),
            vec![
                link(
                    "http://example.com/items/?after=2",
                    &["changes", "changes-wait"],
                    &[]
                ),
                link(
                    "http://example.com/items/changes/stream/",
                    &["changes-stream"],
                    &[]
                ),
                link("http://example.com/multi/", &["multiplex-wait"], &[]),
                link("http://example.com/multi/ws/", &["multiplex-ws"], &[]),
                link(
                    "http://example.com/object/1/subscriptions/",
                    &["value-callback"],
                    &[]
                ),
            ]
        );
        // One link answers to both of its rels.
        assert!(std::ptr::eq(
            p.find("changes").unwrap(),
            p.find("changes-wait").unwrap()
        ));
    }

    #[test]
    fn form_b_headlines_with_reliable_mode_and_hints() {
        let p = parse(&[
            "</headlines/>; rel=value-wait, </headlines/>; rel=value-stream; mode=reliable, </headlines/?hint=1>; rel=hint-stream",
        ]);
        assert_clean(&p);
        assert_eq!(
            summary(&p),
            vec![
                link("http://example.com/headlines/", &["value-wait"], &[]),
                link(
                    "http://example.com/headlines/",
                    &["value-stream"],
                    &[("mode", "reliable")]
                ),
                link(
                    "http://example.com/headlines/?hint=1",
                    &["hint-stream"],
                    &[]
                ),
            ]
        );
        assert_eq!(
            p.find("value-stream").unwrap().param("mode"),
            Some("reliable")
        );
        assert_eq!(p.find("value-wait").unwrap().param("mode"), None);
    }

    #[test]
    fn form_b_socket_and_changes() {
        let p = parse(&[
            "</ws/>; rel=multiplex-socket",
            "</test?after=5>; rel=changes, </test?after=5>; rel=prev-changes",
        ]);
        assert_clean(&p);
        assert_eq!(
            summary(&p),
            vec![
                link("http://example.com/ws/", &["multiplex-socket"], &[]),
                link("http://example.com/test?after=5", &["changes"], &[]),
                link("http://example.com/test?after=5", &["prev-changes"], &[]),
            ]
        );
    }

    #[test]
    fn form_c_alternate_event_stream() {
        let p = parse(&["</stream/>; rel=alternate; type=\"text/event-stream\""]);
        assert_clean(&p);
        assert_eq!(
            summary(&p),
            vec![link(
                "http://example.com/stream/",
                &["alternate"],
                &[("type", "text/event-stream")]
            )]
        );
    }

    #[test]
    fn form_c_long_names_reduced_to_leaf() {
        let p = parse(&[
            "<http://localhost/mux>; rel=\"http://liveresource.org/protocol/multiplex-request\"",
            "</test?after=abc>; rel=\"http://liveresource.org/protocol/changes\"; wait-min=20",
            "</callbacks/>; rel=\"http://liveresource.org/protocol/callbacks\"",
        ]);
        assert_clean(&p);
        assert_eq!(
            summary(&p),
            vec![
                link("http://localhost/mux", &["multiplex-request"], &[]),
                link(
                    "http://example.com/test?after=abc",
                    &["changes"],
                    &[("wait-min", "20")]
                ),
                link("http://example.com/callbacks/", &["callbacks"], &[]),
            ]
        );
        assert!(p.links[0].has_rel("http://liveresource.org/protocol/multiplex-request"));
        assert_eq!(p.find("changes").unwrap().param("WAIT-MIN"), Some("20"));
    }

    #[test]
    fn long_name_variants() {
        let p = parse(&[
            "</a>; rel=\"HTTPS://LiveResource.ORG/protocol/Value-Wait http://example.org/Rel \
             http://liveresource.org/protocol/ http://liveresource.org/protocol/a/b\"",
        ]);
        assert_clean(&p);
        assert_eq!(
            p.links[0].rels,
            vec![
                "value-wait",
                "http://example.org/rel",
                "http://liveresource.org/protocol/",
                "http://liveresource.org/protocol/a/b",
            ]
        );
        // Unquoted absolute-URI rels are accepted too (seen in the wild).
        let p = parse(&["</a>; rel=http://liveresource.org/protocol/changes"]);
        assert_clean(&p);
        assert_eq!(p.links[0].rels, vec!["changes"]);
    }

    #[test]
    fn has_rel_is_case_insensitive_and_normalizes_argument() {
        let p = parse(&["</a>; rel=\"Value-Wait\""]);
        let l = &p.links[0];
        assert_eq!(l.rels, vec!["value-wait"]);
        assert!(l.has_rel("value-wait"));
        assert!(l.has_rel("VALUE-WAIT"));
        assert!(l.has_rel("http://liveresource.org/protocol/value-wait"));
        assert!(l.has_rel("https://LIVERESOURCE.org/protocol/VALUE-WAIT"));
        assert!(!l.has_rel("value"));
        assert!(!l.has_rel(""));
        assert!(p
            .find("HTTP://liveresource.org/protocol/value-wait")
            .is_some());
    }

    #[test]
    fn find_and_all() {
        let p = parse(&["</a>; rel=x, </b>; rel=\"y x\", </c>; rel=y, </d>"]);
        assert_clean(&p);
        assert_eq!(p.find("x").unwrap().target.path(), "/a");
        assert_eq!(p.find("y").unwrap().target.path(), "/b");
        let xs: Vec<&str> = p.all("X").map(|l| l.target.path()).collect();
        assert_eq!(xs, vec!["/a", "/b"]);
        assert_eq!(p.all("y").count(), 2);
        assert!(p.find("z").is_none());
        assert_eq!(p.all("z").count(), 0);
    }

    #[test]
    fn comma_inside_target_does_not_split() {
        let p = parse(&["<http://h/a,b?c=1,2>; rel=x, </d>; rel=y"]);
        assert_clean(&p);
        assert_eq!(p.links.len(), 2);
        assert_eq!(p.links[0].target.as_str(), "http://h/a,b?c=1,2");
        assert_eq!(p.links[1].rels, vec!["y"]);
    }

    #[test]
    fn quoted_strings_with_commas_semicolons_and_escapes() {
        let p = parse(&[r#"</a>; title="a, b; c \"d\" \\ e"; rel="x", </b>; title=",;,"; rel=y"#]);
        assert_clean(&p);
        assert_eq!(
            summary(&p),
            vec![
                link(
                    "http://example.com/a",
                    &["x"],
                    &[("title", r#"a, b; c "d" \ e"#)]
                ),
                link("http://example.com/b", &["y"], &[("title", ",;,")]),
            ]
        );
    }

    #[test]
    fn only_first_rel_counts() {
        let p = parse(&["</a>; rel=first; rel=second; REL=\"third fourth\""]);
        assert_clean(&p);
        assert_eq!(p.links[0].rels, vec!["first"]);
        assert!(p.links[0].params.is_empty());
        // An empty first rel still wins.
        let p = parse(&["</a>; rel=\"\"; rel=second"]);
        assert_clean(&p);
        assert!(p.links[0].rels.is_empty());
    }

    #[test]
    fn parameter_names_case_insensitive_values_preserved() {
        let p = parse(&["</a>; REL=Value-Stream; Mode=Reliable; TYPE=\"Text/Event-Stream\""]);
        assert_clean(&p);
        let l = &p.links[0];
        assert_eq!(l.rels, vec!["value-stream"]);
        assert_eq!(
            l.params,
            vec![
                ("mode".to_string(), "Reliable".to_string()),
                ("type".to_string(), "Text/Event-Stream".to_string()),
            ]
        );
        assert_eq!(l.param("MODE"), Some("Reliable"));
        assert_eq!(l.param("type"), Some("Text/Event-Stream"));
    }

    #[test]
    fn param_without_value_and_repeated_params() {
        let p = parse(&["</a>; rel=x; crossorigin; hreflang=en; hreflang=de; flag ; k=v"]);
        assert_clean(&p);
        let l = &p.links[0];
        assert_eq!(
            l.params,
            vec![
                ("crossorigin".to_string(), String::new()),
                ("hreflang".to_string(), "en".to_string()),
                ("hreflang".to_string(), "de".to_string()),
                ("flag".to_string(), String::new()),
                ("k".to_string(), "v".to_string()),
            ]
        );
        assert_eq!(l.param("crossorigin"), Some(""));
        assert_eq!(l.param("hreflang"), Some("en"));
    }

    #[test]
    fn ext_value_kept_raw_and_anchor_kept_as_param() {
        let p = parse(&[
            "</TheBook/chapter2>; rel=\"previous\"; title*=UTF-8'de'letztes%20Kapitel; anchor=\"#foo\"",
        ]);
        assert_clean(&p);
        let l = &p.links[0];
        assert_eq!(l.param("title*"), Some("UTF-8'de'letztes%20Kapitel"));
        assert_eq!(l.param("title"), None);
        assert_eq!(l.param("anchor"), Some("#foo"));
        assert_eq!(l.target.as_str(), "http://example.com/TheBook/chapter2");
    }

    #[test]
    fn link_without_rel_is_kept() {
        let p = parse(&["</a>, </b>; type=\"text/plain\""]);
        assert_clean(&p);
        assert_eq!(
            summary(&p),
            vec![
                link("http://example.com/a", &[], &[]),
                link("http://example.com/b", &[], &[("type", "text/plain")]),
            ]
        );
    }

    #[test]
    fn whitespace_everywhere_and_empty_elements() {
        let p = parse(&[
            " \t, </a>  ;  rel = \"x\"\t; k =\tv ,,\t,</b>;rel=y;  ,  </c> ; ; rel=z ;",
            "",
            "   ",
            ",",
        ]);
        assert_clean(&p);
        assert_eq!(
            summary(&p),
            vec![
                link("http://example.com/a", &["x"], &[("k", "v")]),
                link("http://example.com/b", &["y"], &[]),
                link("http://example.com/c", &["z"], &[]),
            ]
        );
    }

    #[test]
    fn rel_list_whitespace_and_duplicates() {
        let p = parse(&["</a>; rel=\"  changes \t changes-wait  CHANGES \""]);
        assert_clean(&p);
        assert_eq!(p.links[0].rels, vec!["changes", "changes-wait"]);
    }

    #[test]
    fn relative_targets_resolve_against_base_with_path() {
        let b = "http://h:8080/a/b?q=1";
        let cases = [
            ("<./value>", "http://h:8080/a/value"),
            ("<value>", "http://h:8080/a/value"),
            ("<../up>", "http://h:8080/up"),
            ("</counter/a>", "http://h:8080/counter/a"),
            ("<?x=1>", "http://h:8080/a/b?x=1"),
            ("<#frag>", "http://h:8080/a/b?q=1#frag"),
            ("<//other.host/p>", "http://other.host/p"),
            ("<>", "http://h:8080/a/b?q=1"),
            ("<https://abs.example/x>", "https://abs.example/x"),
            ("<ws://h:8080/ws>", "ws://h:8080/ws"),
        ];
        for (target, expected) in cases {
            let header = format!("{target}; rel=x");
            let p = parse_with_base(&[&header], b);
            assert_clean(&p);
            assert_eq!(p.links[0].target.as_str(), expected, "for {target}");
        }
    }

    #[test]
    fn empty_target_drops_base_fragment() {
        let p = parse_with_base(&["<>; rel=self"], "http://h/a#top");
        assert_clean(&p);
        assert_eq!(p.links[0].target.as_str(), "http://h/a");
    }

    #[test]
    fn several_headers_keep_order() {
        let p = parse(&["</1>; rel=a, </2>; rel=b", "</3>; rel=a", "</4>; rel=c"]);
        assert_clean(&p);
        let paths: Vec<&str> = p.links.iter().map(|l| l.target.path()).collect();
        assert_eq!(paths, vec!["/1", "/2", "/3", "/4"]);
        let a: Vec<&str> = p.all("a").map(|l| l.target.path()).collect();
        assert_eq!(a, vec!["/1", "/3"]);
    }

    #[test]
    fn malformed_missing_angle_bracket() {
        let p = parse(&["</a>; rel=x, /b; rel=y, </c>; rel=z"]);
        assert_eq!(p.links.len(), 2);
        assert_eq!(p.links[0].rels, vec!["x"]);
        assert_eq!(p.links[1].rels, vec!["z"]);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].fragment, "/b; rel=y");
        assert!(p.errors[0].message.contains("'<'"), "{}", p.errors[0]);
    }

    #[test]
    fn malformed_unterminated_angle_bracket() {
        // A missing `>` followed by the next link: the next link survives.
        let p = parse(&["</a; rel=x, </b>; rel=y"]);
        assert_eq!(summary(&p), vec![link("http://example.com/b", &["y"], &[])]);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].fragment, "</a; rel=x");
        assert!(p.errors[0].message.contains("unterminated"));
        // At the very end of the header.
        let p = parse(&["</a>; rel=x, </b; rel=y"]);
        assert_eq!(summary(&p), vec![link("http://example.com/a", &["x"], &[])]);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].fragment, "</b; rel=y");
    }

    #[test]
    fn malformed_unterminated_quote() {
        let p = parse(&["</a>; title=\"oops, </b>; rel=y", "</c>; rel=z"]);
        assert_eq!(
            summary(&p),
            vec![
                link("http://example.com/b", &["y"], &[]),
                link("http://example.com/c", &["z"], &[]),
            ]
        );
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].fragment, "</a>; title=\"oops");
        assert!(p.errors[0].message.contains("quoted"));
        // An escaped closing quote does not close, a trailing backslash neither.
        let p = parse(&[r#"</a>; rel="x\", </b>; rel=y"#, r#"</c>; rel="z\"#]);
        assert_eq!(summary(&p), vec![link("http://example.com/b", &["y"], &[])]);
        assert_eq!(p.errors.len(), 2);
    }

    #[test]
    fn malformed_garbage_between_links() {
        let p = parse(&[
            "</a>; rel=x garbage, junk \"quoted, still junk\" <skipped, here>, </b>; rel=y",
        ]);
        assert_eq!(summary(&p), vec![link("http://example.com/b", &["y"], &[])]);
        assert_eq!(p.errors.len(), 2, "{:?}", p.errors);
        assert_eq!(p.errors[0].fragment, "</a>; rel=x garbage");
        assert_eq!(
            p.errors[1].fragment,
            "junk \"quoted, still junk\" <skipped, here>"
        );
        // Missing comma between two links.
        let p = parse(&["</a>; rel=x </b>; rel=y, </c>; rel=z"]);
        assert_eq!(summary(&p), vec![link("http://example.com/c", &["z"], &[])]);
        assert_eq!(p.errors.len(), 1);
    }

    #[test]
    fn malformed_invalid_target_url() {
        let p = parse_with_base(
            &[
                "<http://host:99999/>; rel=a, </ok1>; rel=b",
                "<http://[::1/>; rel=c, </ok2>; rel=d",
                "<http://exa mple/>; rel=e, </ok3>; rel=f",
                "<http://h/\u{1}x>; rel=g, </ok4>; rel=h",
            ],
            "http://h/",
        );
        let rels: Vec<&str> = p.links.iter().map(|l| l.rels[0].as_str()).collect();
        assert_eq!(rels, vec!["b", "d", "f", "h"]);
        assert_eq!(p.errors.len(), 4, "{:?}", p.errors);
        assert!(p.errors[0].message.contains("invalid link target URL"));
        assert_eq!(p.errors[0].fragment, "<http://host:99999/>; rel=a");
        assert!(p.errors[2].message.contains("whitespace"));
    }

    #[test]
    fn malformed_parameters() {
        let p = parse(&[
            "</1>; =x, </2>; rel=, </3>; rel=a b, </4>; \"name\"=v, </5>; ok=1, </6>; k=v\"q\"",
        ]);
        assert_eq!(
            summary(&p),
            vec![link("http://example.com/5", &[], &[("ok", "1")])]
        );
        assert_eq!(p.errors.len(), 5, "{:?}", p.errors);
        assert_eq!(p.errors[0].fragment, "</1>; =x");
        assert!(p.errors[0].message.contains("parameter name"));
        assert!(p.errors[1].message.contains("value for parameter \"rel\""));
        assert_eq!(p.errors[2].fragment, "</3>; rel=a b");
        // The final one: an unquoted value running into a quote.
        assert_eq!(p.errors[4].fragment, "</6>; k=v\"q\"");
    }

    #[test]
    fn malformed_non_ascii_does_not_panic() {
        let p = parse(&[
            "</a>; rel=x ü, </ü>; title=ä, </b>; t=\"ünï\\çødé\"; rel=y, «</c>», </d>; tïtle=x",
        ]);
        assert_eq!(p.links.len(), 2, "{:?}", p);
        assert_eq!(p.links[0].target.path(), "/%C3%BC");
        assert_eq!(p.links[0].param("title"), Some("ä"));
        assert_eq!(p.links[1].param("t"), Some("ünïçødé"));
        assert_eq!(p.errors.len(), 3);
        assert!(p.errors[0].message.contains("'ü'"), "{}", p.errors[0]);
        assert_eq!(p.errors[1].fragment, "«</c>»");
        assert!(p.errors[2].message.contains("'ï'"), "{}", p.errors[2]);
    }

    #[test]
    fn every_prefix_of_a_tricky_header_parses_without_panic() {
        let header = r##" </a,b>; rel="value-wait http://liveresource.org/protocol/changes"; title="x, \"y\"; ü", <bad, </c>;title*=UTF-8''%C3%BC;anchor="#x" , "##;
        let mut boundaries = 0;
        for cut in 0..=header.len() {
            if !header.is_char_boundary(cut) {
                continue;
            }
            boundaries += 1;
            let p = parse(&[&header[..cut]]);
            assert!(p.links.len() <= 2);
            // And with its tail as a second header.
            let p2 = parse(&[&header[..cut], &header[cut..]]);
            assert!(p2.links.len() <= 4);
        }
        assert!(boundaries > 50);
        let full = parse(&[header]);
        assert_eq!(full.links.len(), 2);
        assert_eq!(full.errors.len(), 1);
        assert_eq!(full.links[0].rels, vec!["value-wait", "changes"]);
        assert_eq!(full.links[0].param("title"), Some("x, \"y\"; ü"));
        assert_eq!(full.links[1].param("title*"), Some("UTF-8''%C3%BC"));
    }

    #[test]
    fn error_display_and_fragment_truncation() {
        let long = format!("{}, </ok>; rel=x", "é".repeat(500));
        let p = parse(&[&long]);
        assert_eq!(p.links.len(), 1);
        assert_eq!(p.errors.len(), 1);
        let e = &p.errors[0];
        assert_eq!(e.fragment.chars().count(), 200);
        assert!(e.fragment.chars().all(|c| c == 'é'));
        let shown = e.to_string();
        assert!(shown.starts_with("expected '<'"), "{shown}");
        assert!(shown.contains("in link-value \"éé"), "{shown}");
        let bare = LinkError {
            message: "m".into(),
            fragment: String::new(),
        };
        assert_eq!(bare.to_string(), "m");
        let _: &dyn std::error::Error = &bare;
    }

    #[test]
    fn twenty_thousand_links_are_bounded() {
        let header: Vec<String> = (0..20_000).map(|i| format!("</l/{i}>; rel=x")).collect();
        let header = header.join(", ");
        let p = parse(&[&header, "</after>; rel=y"]);
        assert_eq!(p.links.len(), MAX_LINKS);
        assert_eq!(p.links.last().unwrap().target.path(), "/l/9999");
        assert_eq!(
            p.errors.len(),
            1,
            "{:?}",
            &p.errors[..p.errors.len().min(3)]
        );
        assert!(p.errors[0].message.contains("more than 10000 links"));
        assert_eq!(p.errors[0].fragment, "</l/10000>; rel=x");
        assert!(p.find("y").is_none());
    }

    #[test]
    fn two_mib_header_is_bounded() {
        // Each link-value is 16 bytes plus ", ": 1 MiB holds 58254 of them, beyond the link
        // limit, so use long targets to hit the byte limit first.
        let item = format!("</{}>; rel=x", "p".repeat(1000));
        let count = 2 * 1024 * 1024 / (item.len() + 2) + 1;
        let header = vec![item.as_str(); count].join(", ");
        assert!(header.len() > 2 * 1024 * 1024);
        let p = parse(&[&header, "</after>; rel=y"]);
        let expected = MAX_INPUT_BYTES / (item.len() + 2);
        // The link-value the 1 MiB cut goes through is dropped, not parsed half.
        assert_eq!(p.links.len(), expected);
        assert_eq!(p.errors.len(), 1);
        assert!(p.errors[0].message.contains("1048576 bytes"));
        assert!(p.errors[0].fragment.starts_with("</ppp"));
        assert!(p.find("y").is_none());
    }

    #[test]
    fn byte_budget_spans_headers() {
        let half = format!("</{}>; rel=x", "q".repeat(MAX_INPUT_BYTES / 2));
        let p = parse(&[&half, &half, "</z>; rel=z"]);
        assert_eq!(p.links.len(), 1);
        assert_eq!(p.errors.len(), 1);
        assert!(p.errors[0].message.contains("bytes"));
        // Many small headers are charged too: an endless supply of empty values stops.
        let p = parse_link_headers(std::iter::repeat(""), &base());
        assert!(p.links.is_empty());
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].fragment, "");
    }

    #[test]
    fn error_flood_is_capped() {
        let header = vec!["junk"; 50_000].join(", ") + ", </ok>; rel=x";
        let p = parse(&[&header]);
        assert_eq!(p.links.len(), 1);
        assert_eq!(p.errors.len(), MAX_ERRORS + 1);
        assert_eq!(
            p.errors.last().unwrap().message,
            format!(
                "{} more malformed link-values were not reported",
                50_000 - MAX_ERRORS
            )
        );
    }

    #[test]
    fn hostile_unterminated_constructs_stay_linear() {
        // Quadratic rescanning of ~1 MiB would take minutes; these must finish at once.
        // Here the quotes pair up across items, so every other item is a valid link.
        let quotes = "</a>; t=\",".repeat(100_000);
        let p = parse(&[&quotes]);
        assert_eq!(p.links.len(), MAX_LINKS);
        assert_eq!(p.links[0].param("t"), Some(",</a>; t="));
        let angles = "<,".repeat(500_000);
        let p = parse(&[&angles]);
        assert!(p.links.is_empty());
        assert!(!p.errors.is_empty());
        let escapes = format!("</a>; t=\"{}", "\\\",".repeat(300_000));
        let p = parse(&[&escapes]);
        assert!(p.links.is_empty());
        let open_angles = "<".repeat(1_000_000);
        let p = parse(&[&open_angles]);
        assert_eq!(p.errors.len(), 1);
    }

    #[test]
    fn too_many_params_or_rels_rejected() {
        let params: String = (0..=MAX_PARAMS).map(|i| format!("; p{i}=v")).collect();
        let rels: Vec<String> = (0..=MAX_RELS).map(|i| format!("r{i}")).collect();
        let header = format!(
            "</a>{params}, </b>; rel=\"{}\", </c>; rel=ok",
            rels.join(" ")
        );
        let p = parse(&[&header]);
        assert_eq!(
            summary(&p),
            vec![link("http://example.com/c", &["ok"], &[])]
        );
        assert_eq!(p.errors.len(), 2);
        assert!(p.errors[0].message.contains("parameters"));
        assert!(p.errors[1].message.contains("relation types"));
    }

    #[test]
    fn format_link_round_trips() {
        let params = [
            ("title", r#"say "hi", then; leave \ now"#),
            ("mode", "reliable"),
            ("empty", ""),
            ("wait-min", "20"),
        ];
        let header = format_link("/obj/1?x=a,b", &["value-wait", "Value-Stream"], &params);
        assert_eq!(
            header,
            r#"</obj/1?x=a,b>; rel="value-wait Value-Stream"; title="say \"hi\", then; leave \\ now"; mode="reliable"; empty=""; wait-min="20""#
        );
        let p = parse(&[&format!("{header}, {header}")]);
        assert_clean(&p);
        assert_eq!(p.links.len(), 2);
        for l in &p.links {
            assert_eq!(l.target.as_str(), "http://example.com/obj/1?x=a,b");
            assert_eq!(l.rels, vec!["value-wait", "value-stream"]);
            let got: Vec<(&str, &str)> = l
                .params
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            assert_eq!(got, params);
        }
    }

    #[test]
    fn format_link_encodes_framing_characters_in_target() {
        let header = format_link("/a b<c>\"d", &["x"], &[]);
        assert_eq!(header, "</a%20b%3Cc%3E%22d>; rel=\"x\"");
        let p = parse(&[&header]);
        assert_clean(&p);
        assert_eq!(p.links[0].target.path(), "/a%20b%3Cc%3E%22d");
        // No rels: an empty rel parses back to none.
        let p = parse(&[&format_link("/a", &[], &[("k", "v")])]);
        assert_clean(&p);
        assert!(p.links[0].rels.is_empty());
        assert_eq!(p.links[0].param("k"), Some("v"));
    }
}
