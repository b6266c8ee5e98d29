//! Server-Sent Events framing: the encoder the reference server writes with, and an incremental
//! parser that follows the WHATWG EventSource rules, for the client's stream transports.
//!
//! The parser takes bytes as they come off the socket, in pieces of any size, and keeps what it
//! needs between pieces: a partial line, a CR that may be followed by an LF in the next piece,
//! the event being assembled. Line and event sizes are bounded, because the bytes come from a
//! server we do not control.

use std::fmt;

use bytes::Bytes;

/// The longest line the parser accepts by default, in bytes.
pub const DEFAULT_MAX_LINE: usize = 1024 * 1024;
/// The most `data` bytes one event may gather by default.
pub const DEFAULT_MAX_EVENT: usize = 16 * 1024 * 1024;

const BOM: &[u8] = "\u{feff}".as_bytes();

/// Writes one event: an optional `event:` name, an optional `id:`, and the data, one `data:` line
/// per line of `data`, then the blank line that dispatches it.
///
/// Empty `data` is still written as one `data:` line, because a parser dispatches nothing for
/// an event without data, and an empty value means "deleted" in form A. Line ends inside `data`
/// (LF, CRLF or CR) become line breaks between `data:` lines, so a parser reads them back as LF.
/// CR, LF and NUL are removed from the name and the id, which could not carry them.
#[must_use]
pub fn encode_event(event: Option<&str>, id: Option<&str>, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(name) = event {
        out.push_str("event: ");
        out.push_str(&single_line(name));
        out.push('\n');
    }
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(&single_line(id));
        out.push('\n');
    }
    for line in split_lines(data) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// A comment line (keep-alive): parsers ignore it, but it proves the connection is alive.
#[must_use]
pub fn encode_comment(text: &str) -> String {
    format!(":{}\n\n", single_line(text))
}

/// A `retry:` field alone: the reconnection delay in milliseconds, dispatching nothing.
#[must_use]
pub fn encode_retry(millis: u64) -> String {
    format!("retry: {millis}\n\n")
}

fn single_line(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
        .collect()
}

/// Splits on LF, CRLF or CR, as an SSE parser would.
fn split_lines(data: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = data.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&data[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&data[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    lines.push(&data[start..]);
    lines
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event type: the last `event:` field, or `message` when there was none (an unnamed
    /// event, as form A sends). Borrowed for `message`: a firehose of unnamed events allocates
    /// no name for each.
    pub event: std::borrow::Cow<'static, str>,
    /// The data lines joined with LF, as received: empty for an event whose data lines were
    /// all empty. UTF-8 unless the server sent otherwise; [`Event::text`] decodes it as
    /// EventSource does. One data line read whole in one piece given by
    /// [`Parser::feed_shared`] is a slice of that piece, not a copy.
    pub data: Bytes,
    /// The last event id at dispatch (the stream's, not only this event's): what a reconnecting
    /// client sends as `Last-Event-ID`. Empty when none was set or it was reset.
    pub id: String,
}

impl Event {
    /// The data as text, invalid UTF-8 replaced (EventSource decodes the stream so).
    #[must_use]
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }

    /// The data as UTF-8 bytes: as received when valid (still shared), else decoded as
    /// [`Event::text`] does.
    #[must_use]
    pub fn into_text(self) -> Bytes {
        match std::str::from_utf8(&self.data) {
            Ok(_) => self.data,
            Err(_) => Bytes::from(String::from_utf8_lossy(&self.data).into_owned()),
        }
    }
}

/// The data lines of the event being assembled.
#[derive(Debug, Clone, Default)]
enum Data {
    /// No data line yet: nothing to dispatch.
    #[default]
    None,
    /// One line (perhaps empty), kept as it came: the common event, dispatched without a copy.
    One(Bytes),
    /// Two lines or more, joined with LF.
    Many(Vec<u8>),
}

/// Why the stream cannot be parsed further. The client should drop the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// A line longer than the limit.
    LineTooLong(usize),
    /// An event whose data grew beyond the limit.
    EventTooLarge(usize),
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::LineTooLong(max) => write!(f, "an event-stream line is over {max} bytes"),
            SseError::EventTooLarge(max) => {
                write!(f, "an event-stream event is over {max} bytes of data")
            }
        }
    }
}

impl std::error::Error for SseError {}

/// An incremental `text/event-stream` parser (WHATWG HTML, "Interpreting an event stream").
///
/// Feed it bytes with [`Parser::feed`] in pieces of any size; it returns the events completed
/// so far. At end of stream call nothing: an unterminated last event is discarded by the rules.
#[derive(Debug, Clone)]
pub struct Parser {
    line: Vec<u8>,
    /// The previous piece ended in CR: an LF starting the next piece belongs to that line end.
    after_cr: bool,
    /// Still at the very start of the stream, where one BOM is skipped.
    at_start: bool,
    data: Data,
    /// The data's length as EventSource counts it (each line and its LF), for the limit.
    data_len: usize,
    event: String,
    last_id: String,
    retry: Option<u64>,
    max_line: usize,
    max_event: usize,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::with_limits(DEFAULT_MAX_LINE, DEFAULT_MAX_EVENT)
    }
}

impl Parser {
    /// A parser with the default limits.
    #[must_use]
    pub fn new() -> Parser {
        Parser::default()
    }

    /// A parser with these limits on a line's bytes and an event's data bytes.
    #[must_use]
    pub fn with_limits(max_line: usize, max_event: usize) -> Parser {
        Parser {
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            data: Data::None,
            data_len: 0,
            event: String::new(),
            last_id: String::new(),
            retry: None,
            max_line,
            max_event,
        }
    }

    /// The last event id seen so far (what `Last-Event-ID` should carry on reconnect).
    #[must_use]
    pub fn last_event_id(&self) -> &str {
        &self.last_id
    }

    /// The reconnection delay the server asked for with `retry:`, in milliseconds.
    #[must_use]
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Parses the next piece of the stream and returns the events it completed.
    ///
    /// After an error the parser is in an unspecified state: drop the connection.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Event>, SseError> {
        let mut events = Vec::new();
        self.feed_into(bytes, &mut events)?;
        Ok(events)
    }

    /// Like [`Parser::feed`], adding the events to `events`: after an error, those completed
    /// before it are there (a client shows them before it stops).
    pub fn feed_into(&mut self, bytes: &[u8], events: &mut Vec<Event>) -> Result<(), SseError> {
        self.feed_from(bytes, None, events)
    }

    /// Like [`Parser::feed_into`], for a piece that events may share: the data of an event
    /// that is one line within it is a slice of `piece`, not a copy.
    pub fn feed_shared(&mut self, piece: &Bytes, events: &mut Vec<Event>) -> Result<(), SseError> {
        self.feed_from(piece, Some(piece), events)
    }

    /// Parses `bytes`, which are `shared` when given.
    fn feed_from(
        &mut self,
        bytes: &[u8],
        shared: Option<&Bytes>,
        events: &mut Vec<Event>,
    ) -> Result<(), SseError> {
        let mut rest = bytes;
        // An empty piece must keep the pending CR: clearing it here made the LF in the piece
        // after it a second line end, dispatching an event early (found by fuzzing; see
        // `empty_piece_between_cr_and_lf_changes_nothing`).
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while !rest.is_empty() {
            match memchr::memchr2(b'\n', b'\r', rest) {
                None => {
                    self.push_bytes(rest)?;
                    break;
                }
                Some(end) => {
                    let piece = &rest[..end];
                    let cr = rest[end] == b'\r';
                    rest = &rest[end + 1..];
                    if cr {
                        match rest.first() {
                            Some(b'\n') => rest = &rest[1..],
                            // The LF of a CRLF may come in the next piece.
                            None => self.after_cr = true,
                            Some(_) => {}
                        }
                    }
                    let event = if self.line.is_empty() {
                        // The whole line is in this piece: read in place, not copied.
                        if piece.len() > self.max_line {
                            return Err(SseError::LineTooLong(self.max_line));
                        }
                        self.process_line(piece, shared)?
                    } else {
                        self.push_bytes(piece)?;
                        let mut line = std::mem::take(&mut self.line);
                        let event = self.process_line(&line, None);
                        // Its buffer is kept for the next line split across pieces.
                        line.clear();
                        self.line = line;
                        event?
                    };
                    if let Some(event) = event {
                        events.push(event);
                    }
                }
            }
        }
        // A data line still pending is copied out of the piece: an event dispatched by a later
        // piece would otherwise keep this one (a whole read buffer) alive, unseen by the
        // caller's check of how much of its read an event is (`live_sse::unpin`).
        if let (Some(piece), Data::One(line)) = (shared, &mut self.data) {
            if piece.as_ptr_range().contains(&line.as_ptr()) {
                *line = Bytes::copy_from_slice(line);
            }
        }
        Ok(())
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > self.max_line {
            return Err(SseError::LineTooLong(self.max_line));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// One line, without its line end; `shared` holds it when it can be sliced from.
    ///
    /// Fields are told apart by their bytes and only the values of `event` and `id` are
    /// decoded: a data line's bytes are kept as they came (see [`Event::text`]). That is what
    /// decoding the whole stream first, as the rules say, comes to: a line end or a colon is
    /// never part of a UTF-8 sequence, and a field name that is not valid UTF-8 matches none.
    fn process_line(
        &mut self,
        raw: &[u8],
        shared: Option<&Bytes>,
    ) -> Result<Option<Event>, SseError> {
        let mut raw = raw;
        if self.at_start {
            self.at_start = false;
            raw = raw.strip_prefix(BOM).unwrap_or(raw);
        }
        if raw.is_empty() {
            return Ok(self.dispatch());
        }
        if raw[0] == b':' {
            return Ok(None);
        }
        let (field, value) = match memchr::memchr(b':', raw) {
            Some(colon) => {
                let value = &raw[colon + 1..];
                (&raw[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (raw, &raw[raw.len()..]),
        };
        match field {
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"data" => {
                if self.data_len + value.len() + 1 > self.max_event {
                    return Err(SseError::EventTooLarge(self.max_event));
                }
                self.data_len += value.len() + 1;
                self.data = match std::mem::take(&mut self.data) {
                    Data::None => Data::One(match shared {
                        Some(piece) => piece.slice_ref(value),
                        None => Bytes::copy_from_slice(value),
                    }),
                    Data::One(first) => {
                        let mut joined = Vec::with_capacity(first.len() + value.len() + 1);
                        joined.extend_from_slice(&first);
                        joined.push(b'\n');
                        joined.extend_from_slice(value);
                        Data::Many(joined)
                    }
                    Data::Many(mut joined) => {
                        joined.push(b'\n');
                        joined.extend_from_slice(value);
                        Data::Many(joined)
                    }
                };
            }
            b"id" if !value.contains(&0) => {
                self.last_id = String::from_utf8_lossy(value).into_owned();
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // Digits too many to fit are not a delay anyone meant: ignore them.
                if let Some(ms) = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()) {
                    self.retry = Some(ms);
                }
            }
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = std::mem::take(&mut self.event);
        self.data_len = 0;
        let data = match std::mem::take(&mut self.data) {
            Data::None => return None,
            Data::One(line) => line,
            Data::Many(joined) => Bytes::from(joined),
        };
        Some(Event {
            event: if event.is_empty() {
                "message".into()
            } else {
                event.into()
            },
            data,
            id: self.last_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Event> {
        Parser::new().feed(text.as_bytes()).unwrap()
    }

    fn ev(event: &str, data: &str, id: &str) -> Event {
        Event {
            event: event.to_string().into(),
            data: data.to_string().into(),
            id: id.into(),
        }
    }

    #[test]
    fn encodes_and_parses_back() {
        for data in ["", "1", "a\nb", "{\"x\":[1,2]}", "\n", "a\n\nb", " lead"] {
            for (name, id) in [(None, None), (Some("update"), Some("7"))] {
                let text = encode_event(name, id, data);
                let got = parse(&text);
                assert_eq!(got.len(), 1, "{text:?}");
                assert_eq!(got[0].data, data, "{text:?}");
                assert_eq!(got[0].event, name.unwrap_or("message"));
                assert_eq!(got[0].id, id.unwrap_or(""));
            }
        }
    }

    #[test]
    fn encoder_normalizes_cr_and_strips_breaks_from_name_and_id() {
        let text = encode_event(Some("up\ndate"), Some("1\r\n2\0"), "a\r\nb\rc");
        assert_eq!(text, "event: update\nid: 12\ndata: a\ndata: b\ndata: c\n\n");
        assert_eq!(parse(&text)[0].data, "a\nb\nc");
        assert_eq!(encode_comment("hi\n"), ":hi\n\n");
        assert!(parse(&encode_comment("x")).is_empty());
        let mut p = Parser::new();
        assert!(p.feed(encode_retry(2500).as_bytes()).unwrap().is_empty());
        assert_eq!(p.retry(), Some(2500));
    }

    #[test]
    fn line_ends_of_every_kind() {
        let want = vec![ev("message", "a", ""), ev("message", "b", "")];
        assert_eq!(parse("data: a\n\ndata: b\n\n"), want);
        assert_eq!(parse("data: a\r\n\r\ndata: b\r\n\r\n"), want);
        assert_eq!(parse("data: a\r\rdata: b\r\r"), want);
        assert_eq!(parse("data: a\r\n\ndata: b\r\r\n"), want);
    }

    #[test]
    fn crlf_split_across_pieces_is_one_line_end() {
        let text = b"data: a\r\ndata: b\r\n\r\n";
        // Every split point, and byte by byte.
        for cut in 0..text.len() {
            let mut p = Parser::new();
            let mut got = p.feed(&text[..cut]).unwrap();
            got.extend(p.feed(&text[cut..]).unwrap());
            assert_eq!(got, vec![ev("message", "a\nb", "")], "cut at {cut}");
        }
        let mut p = Parser::new();
        let mut got = Vec::new();
        for b in text {
            got.extend(p.feed(&[*b]).unwrap());
        }
        assert_eq!(got, vec![ev("message", "a\nb", "")]);
        // A CR at the end of a piece followed by a CR: two line ends, so a dispatch.
        let mut p = Parser::new();
        assert!(p.feed(b"data: x\r").unwrap().is_empty());
        assert_eq!(p.feed(b"\r").unwrap(), vec![ev("message", "x", "")]);
    }

    #[test]
    fn empty_piece_between_cr_and_lf_changes_nothing() {
        // The fuzzer's stream (fuzz/corpus/sse/regression-empty-piece-after-cr), fed as it did:
        // one byte, then an empty piece, and so on. Its last event is never ended by a blank
        // line, so nothing may be dispatched.
        let text: &[u8] = b":\"ta: \r\n\r\nevent: update\r\ndata: {\"ETag\":\"\\\"3\\\"\"}\r\n\
                            data: \x00\x02\x01\r\x02event: ";
        assert!(Parser::new().feed(text).unwrap().is_empty());
        let mut p = Parser::new();
        for byte in text {
            assert!(p.feed(&[*byte]).unwrap().is_empty());
            assert!(p.feed(&[]).unwrap().is_empty());
        }
        let mut p = Parser::new();
        p.feed(b"data: a\r").unwrap();
        p.feed(b"").unwrap();
        assert!(
            p.feed(b"\n").unwrap().is_empty(),
            "CR, nothing, LF is one line end"
        );
        assert_eq!(p.feed(b"\n").unwrap(), vec![ev("message", "a", "")]);
    }

    #[test]
    fn bom_only_at_the_start_even_when_split() {
        assert_eq!(parse("\u{feff}data: a\n\n"), vec![ev("message", "a", "")]);
        let mut p = Parser::new();
        let bytes = "\u{feff}data: a\n\n".as_bytes();
        assert!(p.feed(&bytes[..1]).unwrap().is_empty());
        assert!(p.feed(&bytes[1..2]).unwrap().is_empty());
        assert_eq!(p.feed(&bytes[2..]).unwrap(), vec![ev("message", "a", "")]);
        // A second BOM is part of the field name, so the line is an unknown field.
        assert!(parse("\u{feff}\u{feff}data: a\n\n").is_empty());
        assert_eq!(
            parse("data: a\n\n\u{feff}data: b\n\n"),
            vec![ev("message", "a", "")]
        );
    }

    #[test]
    fn fields_by_the_rules() {
        // One leading space removed, not two; no colon means empty value; comments ignored.
        assert_eq!(parse("data:  x\n\n")[0].data, " x");
        assert_eq!(parse("data:x\n\n")[0].data, "x");
        assert_eq!(parse("data\n\n")[0].data, "");
        assert_eq!(parse(": keep-alive\ndata: y\n\n")[0].data, "y");
        assert_eq!(parse("data: a\ndata\ndata: b\n\n")[0].data, "a\n\nb");
        assert_eq!(parse("event: update\ndata: z\n\n")[0].event, "update");
        assert_eq!(parse("Data: x\nunknown: y\n\n"), vec![]);
        assert_eq!(parse("data: a: b\n\n")[0].data, "a: b");
    }

    #[test]
    fn empty_data_dispatches_nothing_but_an_empty_data_line_does() {
        assert_eq!(parse("event: update\n\n"), vec![]);
        assert_eq!(parse("id: 5\n\n"), vec![]);
        assert_eq!(
            parse("event: update\ndata:\n\n"),
            vec![ev("update", "", "")]
        );
        // The event type does not leak into the next event.
        assert_eq!(
            parse("event: x\n\ndata: 1\n\n"),
            vec![ev("message", "1", "")]
        );
    }

    #[test]
    fn ids_persist_reset_and_ignore_nul() {
        let mut p = Parser::new();
        let got = p
            .feed(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\0x\ndata: c\n\nid\ndata: d\n\n")
            .unwrap();
        let ids: Vec<&str> = got.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1", "1", "1", ""]);
        assert_eq!(p.last_event_id(), "");
        // An id without data still sets the last event id.
        let mut p = Parser::new();
        p.feed(b"id: 9\n\n").unwrap();
        assert_eq!(p.last_event_id(), "9");
    }

    #[test]
    fn retry_only_all_digits() {
        for (text, want) in [
            ("retry: 100\n\n", Some(100)),
            ("retry: 1x\n\n", None),
            ("retry: -1\n\n", None),
            ("retry:\n\n", None),
            ("retry:  5\n\n", None),
            ("retry: 99999999999999999999999\n\n", None),
        ] {
            let mut p = Parser::new();
            p.feed(text.as_bytes()).unwrap();
            assert_eq!(p.retry(), want, "{text:?}");
        }
    }

    #[test]
    fn unterminated_last_event_is_not_dispatched() {
        let mut p = Parser::new();
        assert_eq!(
            p.feed(b"data: a\n\ndata: b\n").unwrap(),
            vec![ev("message", "a", "")]
        );
        assert_eq!(parse("data: a"), vec![]);
    }

    #[test]
    fn limits_are_errors_not_panics() {
        let mut p = Parser::with_limits(16, 32);
        assert_eq!(p.feed(&[b'x'; 17]).unwrap_err(), SseError::LineTooLong(16));
        let mut p = Parser::with_limits(16, 32);
        // Split pieces count together.
        p.feed(&[b'x'; 10]).unwrap();
        assert!(p.feed(&[b'x'; 10]).is_err());
        let mut p = Parser::with_limits(64, 32);
        let err = p
            .feed(b"data: 0123456789\ndata: 0123456789\ndata: 0123456789\n")
            .unwrap_err();
        assert_eq!(err, SseError::EventTooLarge(32));
        assert!(err.to_string().contains("32"));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let got = Parser::new()
            .feed(b"event: a\xffb\nid: \xfe1\ndata: \xff\xfe\ndata: \xc3\n\n")
            .unwrap();
        // Data keeps its bytes; read as text, it is what decoding the stream first gives.
        assert_eq!(got[0].text(), "\u{fffd}\u{fffd}\n\u{fffd}");
        assert_eq!(got[0].clone().into_text(), "\u{fffd}\u{fffd}\n\u{fffd}");
        assert_eq!(
            (&*got[0].event, got[0].id.as_str()),
            ("a\u{fffd}b", "\u{fffd}1")
        );
        // A field name that is not UTF-8 is no field.
        let got = Parser::new().feed(b"dat\xe1: 1\ndata: 2\n\n").unwrap();
        assert_eq!(got[0].data, "2");
    }

    #[test]
    fn shared_pieces_are_sliced_not_copied() {
        let piece = Bytes::from_static(b"data: one\n\ndata: a\ndata: b\n\ndata: spl");
        let mut p = Parser::new();
        let mut got = Vec::new();
        p.feed_shared(&piece, &mut got).unwrap();
        assert_eq!(
            (&got[0].data[..], &got[1].data[..]),
            (&b"one"[..], &b"a\nb"[..])
        );
        // One line, whole in the piece: a slice of it.
        assert_eq!(got[0].data.as_ptr(), piece[6..].as_ptr());
        // A line split across pieces is joined (and copied).
        p.feed_shared(&Bytes::from_static(b"it\n\n"), &mut got)
            .unwrap();
        assert_eq!(&got[2].data[..], b"split");
    }

    #[test]
    fn pending_data_is_not_a_slice_of_an_earlier_piece() {
        // A data line at the end of one piece, the blank line in the next: the event must not
        // keep the earlier piece (a whole read buffer) alive once that piece is done.
        let first = Bytes::from(b"data: pending\n".to_vec());
        let mut p = Parser::new();
        let mut got = Vec::new();
        p.feed_shared(&first, &mut got).unwrap();
        p.feed_shared(&Bytes::from_static(b"\n"), &mut got).unwrap();
        assert_eq!(got[0].data, "pending");
        assert!(!first.as_ptr_range().contains(&got[0].data.as_ptr()));
    }
}
