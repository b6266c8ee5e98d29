//! Printing events: the one place that writes to stdout, in the contract's three modes.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;

use crossterm::style::{Color, Stylize};
use lrwatch::{Event, EventKind};
use serde_json::Value;

use crate::config::Mode;
pub use crate::urls::Names;
use lrwatch::sanitize::{for_terminal, json_for_terminal};

/// A resource's last value under `--diff`, normalized, and its ETag.
type Previous = (crate::diff::Compared, Option<String>);

/// Writes events to `out`. The caller flushes: after each event when no other is waiting, so an
/// event shows the moment it arrives while a burst is written in large blocks.
pub struct Printer<W: Write> {
    out: W,
    mode: Mode,
    /// With `--diff`: each resource's last value, normalized, and its ETag.
    previous: Option<HashMap<Arc<str>, Previous>>,
    /// The names of `NAME=URL` arguments: `--prefix` labels, the envelope's `name`.
    names: Arc<Names>,
    /// `--prefix`: lines start with the resource's name (else its URL) and a tab.
    prefix: bool,
}

impl<W: Write> Printer<W> {
    /// A printer in `mode`; with `diff`, values after a resource's first are printed as diffs.
    pub fn new(out: W, mode: Mode, diff: bool) -> Printer<W> {
        Printer {
            out,
            mode,
            previous: diff.then(HashMap::new),
            names: Arc::default(),
            prefix: false,
        }
    }

    /// This printer, with the names given to URLs; with `prefix`, `--prefix`: in a pipe each
    /// line starts with the resource's name (else its URL) and a tab, on a terminal each
    /// event's first line. `--json` lines stay JSON: a name is the envelope's `name` member.
    pub fn labelled(mut self, names: Arc<Names>, prefix: bool) -> Printer<W> {
        self.names = names;
        self.prefix = prefix;
        self
    }

    /// What `--prefix` writes before a line of `event`, tab included; empty without it.
    fn label(&self, event: &Event) -> String {
        if !self.prefix || matches!(self.mode, Mode::Json { .. }) {
            return String::new();
        }
        let label = self.names.get(&event.uri).unwrap_or(&event.uri);
        match self.mode {
            Mode::Terminal { .. } => format!("{}\t", for_terminal(label, false)),
            _ => format!("{label}\t"),
        }
    }

    /// Writes one event (buffered; see [`Printer::flush`]).
    pub fn event(&mut self, event: &Event) -> io::Result<()> {
        if let Some(previous) = &mut self.previous {
            let text = crate::diff::normalized(event.body.as_ref());
            let old = previous.insert(event.uri.clone(), (text, event.etag.clone()));
            if let Some((old_text, old_etag)) = old {
                let (new_text, _) = &previous[&event.uri];
                let (terminal, color) = match self.mode {
                    Mode::Terminal { color } => (true, color),
                    _ => (false, false),
                };
                let labels = crate::diff::Labels {
                    old: &format!("{} {}", event.uri, etag_label(old_etag.as_deref())),
                    new: &format!(
                        "{} {} · {} · {}",
                        event.uri,
                        etag_label(event.etag.as_deref()),
                        event.transport,
                        clock(event)
                    ),
                };
                let diff = crate::diff::render(&old_text, new_text, &labels, terminal, color);
                let label = self.label(event);
                // A pipe's reader sees every line labelled; a person, the diff's first.
                let diff = prefixed(&diff, &label, !terminal);
                return self.out.write_all(diff.as_bytes());
            }
        }
        match self.mode {
            Mode::Json { terminal: false } => {
                write_envelope(&mut self.out, event, self.names.get(&event.uri))
            }
            // On a terminal, what it must not get raw is escaped as JSON escapes: the same
            // value, still one line of JSON.
            Mode::Json { terminal: true } => {
                let mut line = Vec::new();
                write_envelope(&mut line, event, self.names.get(&event.uri))?;
                let line = String::from_utf8_lossy(&line);
                self.out.write_all(json_for_terminal(&line).as_bytes())
            }
            Mode::Lines => {
                if self.prefix {
                    let label = self.label(event);
                    self.out.write_all(label.as_bytes())?;
                }
                self.line(event)
            }
            Mode::Terminal { color } => self.terminal(event, color),
        }
    }

    /// Sends what was written on to stdout.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn line(&mut self, event: &Event) -> io::Result<()> {
        // A removal is an empty line: `read` sees "", and jq skips it.
        let Some(body) = &event.body else {
            return self.out.write_all(b"\n");
        };
        if let Some(compact) = body.compact_json() {
            self.out.write_all(&compact)?;
            return self.out.write_all(b"\n");
        }
        match body.json() {
            Some(json) => {
                serde_json::to_writer(&mut self.out, json)?;
                self.out.write_all(b"\n")
            }
            // Binary bytes would not stay one line, nor be text: base64.
            None if is_binary(event) => {
                self.out.write_all(base64_of(&body.bytes).as_bytes())?;
                self.out.write_all(b"\n")
            }
            None => {
                // One line is one event, whatever the server sends: text that would span
                // lines is written as a JSON string (`jq -r .` reads it back), so a line
                // reader never sees an event that did not happen. A final line end is the
                // line's own, as text files end.
                let content = body.content();
                let bytes = &content[..];
                let own_end = bytes
                    .strip_suffix(b"\r\n")
                    .or_else(|| bytes.strip_suffix(b"\n"))
                    .unwrap_or(bytes);
                if own_end.iter().any(|b| matches!(b, b'\n' | b'\r')) {
                    serde_json::to_writer(&mut self.out, &body.text())?;
                } else {
                    self.out.write_all(own_end)?;
                }
                self.out.write_all(b"\n")
            }
        }
    }

    fn terminal(&mut self, event: &Event, color: bool) -> io::Result<()> {
        let mut header = format!(
            "{}{} {}",
            self.label(event),
            clock(event),
            for_terminal(&event.uri, false)
        );
        if event.kind.is_collection() {
            header.push_str(&format!(" {}", event.kind.as_str()));
        }
        if let Some(id) = &event.id {
            header.push_str(&format!(" id {}", for_terminal(id, false)));
        }
        if let Some(etag) = &event.etag {
            header.push_str(&format!(" ETag {}", for_terminal(etag, false)));
        }
        header.push_str(&format!(" {}", event.transport));
        let paint = Paint(color);
        writeln!(self.out, "{}", paint.dim(&header))?;
        match (&event.kind, &event.body) {
            (EventKind::Removed | EventKind::ChildRemoved, _) | (_, None) => {
                writeln!(self.out, "{}", paint.fg("(removed)", Color::Red))
            }
            (_, Some(body)) => match body.json() {
                Some(json) => {
                    let mut text = String::new();
                    pretty(json, 0, paint, &mut text);
                    writeln!(self.out, "{text}")
                }
                None if is_binary(event) => writeln!(
                    self.out,
                    "{} {}",
                    paint.dim(&format!("({} bytes, base64)", body.bytes.len())),
                    base64_of(&body.bytes)
                ),
                None => {
                    let text = body.text();
                    let text = for_terminal(text.trim_end_matches('\n'), true);
                    writeln!(self.out, "{text}")
                }
            },
        }
    }
}

/// The event's time of day (UTC) to the millisecond, as headers show it.
fn clock(event: &Event) -> String {
    let time = humantime::format_rfc3339_millis(event.time).to_string();
    time.get(11..23).unwrap_or(&time).to_string()
}

/// An ETag as a diff's header shows it, in a pipe too: a server's ETag holding a line end
/// would otherwise make a header line that looks like a line of the diff.
fn etag_label(etag: Option<&str>) -> String {
    etag.map_or("(no ETag)".to_string(), |e| {
        format!("ETag {}", for_terminal(e, false))
    })
}

/// `text` with `label` before every line (`every`), or before its first only.
fn prefixed(text: &str, label: &str, every: bool) -> String {
    if label.is_empty() {
        return text.to_string();
    }
    if !every {
        return format!("{label}{text}");
    }
    let mut out = String::with_capacity(text.len() + label.len() * 8);
    for line in text.split_inclusive('\n') {
        out.push_str(label);
        out.push_str(line);
    }
    out
}

/// Writes the `--json` envelope (fields in the contract's order, one line) straight to `out`:
/// strings are escaped by serde_json as they are written, with no intermediate values (this is
/// the hot path of a fast stream). `name`, the `NAME` of a `NAME=URL` argument, follows `uri`.
/// Also what `--exec` gives CMD on stdin with `--json`.
pub fn write_envelope(out: &mut impl Write, event: &Event, name: Option<&str>) -> io::Result<()> {
    fn string(out: &mut impl Write, s: &str) -> io::Result<()> {
        // Most strings here (URLs, event names, ETags) hold nothing JSON escapes (a quote, a
        // backslash, a control character): they are written as they are, in one piece.
        if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            out.write_all(b"\"")?;
            out.write_all(s.as_bytes())?;
            return out.write_all(b"\"");
        }
        serde_json::to_writer(out, s).map_err(io::Error::from)
    }
    out.write_all(b"{\"event\":\"")?;
    out.write_all(event.kind.as_str().as_bytes())?;
    out.write_all(b"\",\"uri\":")?;
    string(out, &event.uri)?;
    if let Some(name) = name {
        out.write_all(b",\"name\":")?;
        string(out, name)?;
    }
    if let Some(id) = &event.id {
        out.write_all(b",\"id\":")?;
        string(out, id)?;
    }
    // A collection's events are about items and feeds, which have no ETag of their own.
    if !event.kind.is_collection() {
        out.write_all(b",\"etag\":")?;
        match &event.etag {
            Some(etag) => string(out, etag)?,
            None => out.write_all(b"null")?,
        }
    }
    // Kind and transport names and the timestamp are plain ASCII: nothing to escape.
    out.write_all(b",\"transport\":\"")?;
    out.write_all(event.transport.as_str().as_bytes())?;
    out.write_all(b"\",\"time\":\"")?;
    write_time(out, event.time)?;
    out.write_all(b"\"")?;
    if let Some(sse) = event.live.as_ref().and_then(|l| l.sse.as_ref()) {
        out.write_all(b",\"sse\":{\"event\":")?;
        string(out, &sse.event)?;
        out.write_all(b",\"id\":")?;
        match &sse.id {
            Some(id) => string(out, id)?,
            None => out.write_all(b"null")?,
        }
        out.write_all(b"}")?;
    }
    if let Some(body) = &event.body {
        out.write_all(b",\"body\":")?;
        // JSON already compact is written as it came (valid, one line): nothing to rebuild.
        if let Some(compact) = body.compact_json() {
            out.write_all(&compact)?;
            return out.write_all(b"}\n");
        }
        match body.json() {
            Some(json) => serde_json::to_writer(&mut *out, json).map_err(io::Error::from)?,
            // A binary message's bytes are not text: base64, and said so.
            None if is_binary(event) => {
                string(out, &base64_of(&body.bytes))?;
                out.write_all(b",\"encoding\":\"base64\"")?;
            }
            None => string(out, &body.text())?,
        }
    }
    out.write_all(b"}\n")
}

/// Writes `time` in RFC 3339 to the millisecond. A fast stream has hundreds of events in the
/// same millisecond (the events of one read share one time): its text is formatted once and
/// kept (per thread) for the next event.
fn write_time(out: &mut impl Write, time: std::time::SystemTime) -> io::Result<()> {
    use std::cell::RefCell;
    /// The last time written, its millisecond, and its text.
    type Last = (Option<std::time::SystemTime>, u128, String);
    thread_local! {
        static LAST: RefCell<Last> = const { RefCell::new((None, u128::MAX, String::new())) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != Some(time) {
            let Ok(since) = time.duration_since(std::time::UNIX_EPOCH) else {
                return write!(out, "{}", humantime::format_rfc3339_millis(time));
            };
            let millis = since.as_millis();
            if last.1 != millis {
                last.1 = millis;
                last.2 = humantime::format_rfc3339_millis(time).to_string();
            }
            last.0 = Some(time);
        }
        out.write_all(last.2.as_bytes())
    })
}

/// Whether the event is a binary message (a WebSocket's), whose bytes are not text.
fn is_binary(event: &Event) -> bool {
    event.live.as_ref().is_some_and(|l| l.binary)
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Styling that is a no-op without color.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn dim(self, s: &str) -> String {
        if self.0 {
            s.dim().to_string()
        } else {
            s.to_string()
        }
    }

    fn fg(self, s: &str, color: Color) -> String {
        if self.0 {
            s.with(color).to_string()
        } else {
            s.to_string()
        }
    }
}

/// Pretty-prints JSON with two-space indents, colored by type, strings escaped for a
/// terminal. Recursion is bounded by serde_json's own nesting limit (128) when parsing.
fn pretty(value: &Value, indent: usize, paint: Paint, out: &mut String) {
    let pad = |n: usize| "  ".repeat(n);
    match value {
        Value::Null => out.push_str(&paint.fg("null", Color::DarkGrey)),
        Value::Bool(b) => out.push_str(&paint.fg(&b.to_string(), Color::Yellow)),
        Value::Number(n) => out.push_str(&paint.fg(&n.to_string(), Color::Cyan)),
        Value::String(s) => out.push_str(&paint.fg(&quoted(s), Color::Green)),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&pad(indent + 1));
                pretty(item, indent + 1, paint, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(indent));
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("{\n");
            for (i, (key, item)) in map.iter().enumerate() {
                out.push_str(&pad(indent + 1));
                out.push_str(&paint.fg(&quoted(key), Color::Blue));
                out.push_str(": ");
                pretty(item, indent + 1, paint, out);
                out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(indent));
            out.push('}');
        }
    }
}

/// A JSON string literal, with the C1 and DEL controls serde_json leaves alone escaped too.
fn quoted(s: &str) -> String {
    for_terminal(&Value::from(s).to_string(), false).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lrwatch::{Body, Mechanism};
    use std::time::{Duration, UNIX_EPOCH};

    fn event(kind: EventKind, body: Option<(&str, Option<&str>)>) -> Event {
        Event {
            kind,
            uri: "http://h/x".into(),
            id: None,
            etag: body.map(|_| "\"2\"".to_string()),
            transport: Mechanism::ValueWait,
            time: UNIX_EPOCH + Duration::from_millis(1_795_000_000_123),
            body: body.map(|(b, ct)| Body::new(b.as_bytes().to_vec(), ct.map(String::from))),
            initial: false,
            live: None,
        }
    }

    fn print(mode: Mode, e: &Event) -> String {
        let mut out = Vec::new();
        Printer::new(&mut out, mode, false).event(e).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_envelope_in_contract_order() {
        let e = event(
            EventKind::Value,
            Some(("{\"b\":1,\"a\":[true]}", Some("application/json"))),
        );
        assert_eq!(
            print(Mode::Json { terminal: false }, &e),
            "{\"event\":\"value\",\"uri\":\"http://h/x\",\"etag\":\"\\\"2\\\"\",\"transport\":\"value-wait\",\"time\":\"2026-11-18T11:06:40.123Z\",\"body\":{\"b\":1,\"a\":[true]}}\n"
        );
        let r = event(EventKind::Removed, None);
        assert_eq!(
            print(Mode::Json { terminal: false }, &r),
            "{\"event\":\"removed\",\"uri\":\"http://h/x\",\"etag\":null,\"transport\":\"value-wait\",\"time\":\"2026-11-18T11:06:40.123Z\"}\n"
        );
        let t = event(EventKind::Value, Some(("hi\n", Some("text/plain"))));
        assert!(print(Mode::Json { terminal: false }, &t).ends_with(",\"body\":\"hi\\n\"}\n"));
    }

    #[test]
    fn compact_json_is_printed_as_it_came_and_other_json_compacted() {
        // Compact already: the bytes as sent (a re-serialization would write 1.5 and "A").
        let raw = "{\"n\":1.50,\"s\":\"\\u0041 b\"}";
        let e = event(EventKind::Value, Some((raw, None)));
        assert!(
            print(Mode::Json { terminal: false }, &e).ends_with(&format!(",\"body\":{raw}}}\n")),
            "{}",
            print(Mode::Json { terminal: false }, &e)
        );
        assert_eq!(print(Mode::Lines, &e), format!("{raw}\n"));
        // With whitespace between tokens (a line end among them): written compact.
        let spaced = event(EventKind::Value, Some(("{ \"b\" :\n [1, 2] }", None)));
        assert!(
            print(Mode::Json { terminal: false }, &spaced).ends_with(",\"body\":{\"b\":[1,2]}}\n")
        );
        assert_eq!(print(Mode::Lines, &spaced), "{\"b\":[1,2]}\n");
    }

    #[test]
    fn times_are_written_to_the_millisecond_each_event_its_own() {
        let at = |micros: u64| UNIX_EPOCH + Duration::from_micros(micros);
        let text = |time| {
            let mut out = Vec::new();
            write_time(&mut out, time).unwrap();
            String::from_utf8(out).unwrap()
        };
        // Kept within a millisecond, formatted again for the next one (and for one before).
        for micros in [
            1_795_000_000_123_000,
            1_795_000_000_123_999,
            1_795_000_000_124_000,
            1_795_000_001_124_000,
            1_795_000_000_123_500,
        ] {
            assert_eq!(
                text(at(micros)),
                humantime::format_rfc3339_millis(at(micros)).to_string()
            );
        }
    }

    #[test]
    fn child_events_carry_an_id_and_no_etag() {
        let mut e = event(
            EventKind::ChildAdded,
            Some(("{\"id\":\"7\",\"text\":\"hi\"}", None)),
        );
        e.id = Some("7".into());
        e.transport = Mechanism::ChangesWait;
        assert_eq!(
            print(Mode::Json { terminal: false }, &e),
            "{\"event\":\"child-added\",\"uri\":\"http://h/x\",\"id\":\"7\",\"transport\":\"changes-wait\",\"time\":\"2026-11-18T11:06:40.123Z\",\"body\":{\"id\":\"7\",\"text\":\"hi\"}}\n"
        );
        let out = print(Mode::Terminal { color: false }, &e);
        assert!(
            out.starts_with("11:06:40.123 http://h/x child-added id 7 "),
            "{out}"
        );
    }

    #[test]
    fn lines_are_compact_json_or_text_as_received() {
        let e = event(EventKind::Value, Some(("{ \"a\" : 1 }", None)));
        assert_eq!(print(Mode::Lines, &e), "{\"a\":1}\n");
        let t = event(EventKind::Value, Some(("a\x1bb", Some("text/plain"))));
        assert_eq!(print(Mode::Lines, &t), "a\x1bb\n");
        assert_eq!(print(Mode::Lines, &event(EventKind::Removed, None)), "\n");
    }

    #[test]
    fn lines_keep_one_event_to_a_line() {
        let line = |body: &str| {
            print(
                Mode::Lines,
                &event(EventKind::Value, Some((body, Some("text/plain")))),
            )
        };
        assert_eq!(line("a\nb"), "\"a\\nb\"\n");
        assert_eq!(line("a\r\nb\n"), "\"a\\r\\nb\\n\"\n");
        assert_eq!(line("lone\rreturn"), "\"lone\\rreturn\"\n");
        assert_eq!(line("two\n\n"), "\"two\\n\\n\"\n");
        // A final line end is the line's own; a quote alone needs no quoting.
        assert_eq!(line("ends\n"), "ends\n");
        assert_eq!(line("ends\r\n"), "ends\n");
        assert_eq!(line("say \"hi\""), "say \"hi\"\n");
        assert_eq!(line(""), "\n");
    }

    #[test]
    fn prefix_labels_lines_and_headers_and_json_gets_the_name() {
        let names = |pairs: &[&str]| {
            let targets: Vec<_> = pairs
                .iter()
                .map(|p| crate::urls::parse_target(p).unwrap())
                .collect();
            Arc::new(Names::of(&targets).unwrap())
        };
        let printed = |mode: Mode, names: Arc<Names>, prefix: bool, e: &Event| {
            let mut out = Vec::new();
            Printer::new(&mut out, mode, false)
                .labelled(names, prefix)
                .event(e)
                .unwrap();
            String::from_utf8(out).unwrap()
        };
        let e = event(EventKind::Value, Some(("{\"a\":1}", None)));
        let named = names(&["n=http://h/x"]);
        assert_eq!(
            printed(Mode::Lines, named.clone(), true, &e),
            "n\t{\"a\":1}\n"
        );
        assert_eq!(
            printed(Mode::Lines, named.clone(), false, &e),
            "{\"a\":1}\n"
        );
        assert_eq!(
            printed(Mode::Lines, names(&[]), true, &e),
            "http://h/x\t{\"a\":1}\n"
        );
        let removed = event(EventKind::Removed, None);
        assert_eq!(printed(Mode::Lines, named.clone(), true, &removed), "n\t\n");
        let header = printed(Mode::Terminal { color: false }, named.clone(), true, &e);
        assert!(
            header.starts_with("n\t11:06:40.123 http://h/x "),
            "{header}"
        );
        // JSON stays JSON: the name is a member, with or without --prefix.
        for prefix in [true, false] {
            let json = printed(Mode::Json { terminal: false }, named.clone(), prefix, &e);
            assert!(
                json.starts_with(
                    "{\"event\":\"value\",\"uri\":\"http://h/x\",\"name\":\"n\",\"etag\""
                ),
                "{json}"
            );
        }
        assert!(
            !printed(Mode::Json { terminal: false }, names(&[]), true, &e).contains("\"name\"")
        );
    }

    #[test]
    fn diff_mode_prints_the_first_value_then_diffs() {
        let mut out = Vec::new();
        let mut printer = Printer::new(&mut out, Mode::Lines, true);
        printer
            .event(&event(EventKind::Value, Some(("{\"a\":1}", None))))
            .unwrap();
        let mut second = event(EventKind::Value, Some(("{\"a\":2}", None)));
        second.etag = Some("\"3\"".into());
        printer.event(&second).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"a\":1}\n--- http://h/x ETag \"2\"\n+++ http://h/x ETag \"3\" · value-wait · 11:06:40.123\n@@ -1,3 +1,3 @@\n {\n-  \"a\": 1\n+  \"a\": 2\n }\n"
        );
    }

    #[test]
    fn a_diff_header_stays_one_line_whatever_the_etag_holds() {
        let mut out = Vec::new();
        let mut printer = Printer::new(&mut out, Mode::Lines, true);
        let mut first = event(EventKind::Value, Some(("1", None)));
        first.etag = Some("\"a\n+injected\"".into());
        printer.event(&first).unwrap();
        let mut second = event(EventKind::Value, Some(("2", None)));
        second.etag = Some("\"b\"".into());
        printer.event(&second).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("--- http://h/x ETag \"a\\x0a+injected\"\n"),
            "{text}"
        );
        assert!(!text.lines().any(|l| l == "+injected\""), "{text}");
    }

    #[test]
    fn terminal_is_pretty_and_escaped() {
        let e = event(
            EventKind::Value,
            Some(("{\"k\":\"v\\u001b[31m\\u009b\",\"n\":[1,null]}", None)),
        );
        let out = print(Mode::Terminal { color: false }, &e);
        assert_eq!(
            out,
            "11:06:40.123 http://h/x ETag \"2\" value-wait\n{\n  \"k\": \"v\\u001b[31m\\u{9b}\",\n  \"n\": [\n    1,\n    null\n  ]\n}\n"
        );
        let colored = print(Mode::Terminal { color: true }, &e);
        assert!(colored.contains("\x1b["), "{colored:?}");
        let t = event(
            EventKind::Value,
            Some(("evil\x1b]0;title\x07\n", Some("text/plain"))),
        );
        let out = print(Mode::Terminal { color: false }, &t);
        assert!(out.ends_with("evil\\x1b]0;title\\x07\n"), "{out:?}");
        assert!(!out.contains('\x1b'));
        let r = print(
            Mode::Terminal { color: false },
            &event(EventKind::Removed, None),
        );
        assert!(r.ends_with("(removed)\n"));
    }
}
