//! Which kind of live URL an answer is, decided from its head alone (status, `Content-Type`,
//! `Transfer-Encoding`): an endless body must never be read to its end to find out.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use ureq::http::HeaderMap;
use url::Url;

use crate::http::{FetchError, Response, Stream};

/// How long a chunked JSON answer that has sent one complete line may stay open without more
/// before it counts as a stream: a document's server ends its body at once.
const STILL_OPEN: Duration = Duration::from_secs(1);
/// How long a chunked JSON answer may stay open before the first byte of its body before it
/// counts as a stream of lines: a watch with nothing to report yet (a Kubernetes watch from a
/// `resourceVersion` that sees no change) sends its head and then nothing, while a document's
/// server has its body ready when it answers.
const QUIET: Duration = Duration::from_secs(2);

/// How to follow live URLs given directly (the rest of [`crate::Options`] applies too).
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    /// Ask a JSON-lines URL again after its response ends (`--reconnect`); without it, a
    /// response that ends cleanly means that URL is done.
    pub reconnect: bool,
    /// The subprotocol offered to a `ws://`/`wss://` URL (`--subprotocol`).
    pub subprotocol: Option<String>,
    /// Text messages sent to a `ws://`/`wss://` URL after each connect, in order (`--send`).
    pub send: Vec<String>,
}

/// What a URL turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A document: read whole, followed over LiveResource or plain polling.
    Document,
    /// `text/event-stream`: each event is an event.
    EventStream,
    /// `application/x-ndjson`, `application/jsonl` (and the like): each line is an event.
    JsonLines,
    /// `application/json-seq` (RFC 7464): each record is an event.
    JsonSeq,
    /// A chunked `application/json` answer: a document, or JSON that keeps streaming one value
    /// a line (as Kubernetes watches send); only its first bytes can tell (see
    /// [`first_line_is_a_value`]), or its silence (an answer open with nothing yet is a watch
    /// with nothing to report).
    ChunkedJson,
    /// A `ws://` or `wss://` URL.
    WebSocket,
}

impl Kind {
    /// In words, for `inspect` and traces.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Document => "a document",
            Kind::EventStream => "an event stream (text/event-stream)",
            Kind::JsonLines => "a JSON-lines stream",
            Kind::JsonSeq => "a JSON text sequence (RFC 7464)",
            Kind::ChunkedJson => "chunked JSON",
            Kind::WebSocket => "a WebSocket",
        }
    }

    /// A name for scripts (`inspect --json`): `document`, `event-stream`, `json-lines`,
    /// `json-seq`, `websocket` (chunked JSON is a document until it streams).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Document | Kind::ChunkedJson => "document",
            Kind::EventStream => "event-stream",
            Kind::JsonLines => "json-lines",
            Kind::JsonSeq => "json-seq",
            Kind::WebSocket => "websocket",
        }
    }

    /// The transport that follows it, when it is followed directly.
    pub fn transport(self) -> Option<crate::Mechanism> {
        match self {
            Kind::EventStream => Some(crate::Mechanism::EventStream),
            Kind::JsonLines | Kind::JsonSeq => Some(crate::Mechanism::JsonLines),
            Kind::WebSocket => Some(crate::Mechanism::WebSocket),
            Kind::Document | Kind::ChunkedJson => None,
        }
    }

    /// Whether it is followed as a stream of events rather than as a resource.
    pub fn is_stream(self) -> bool {
        !matches!(self, Kind::Document | Kind::ChunkedJson)
    }
}

/// The kind of a URL before any request: a WebSocket by its scheme, else to be asked.
pub fn by_scheme(url: &Url) -> Option<Kind> {
    matches!(url.scheme(), "ws" | "wss").then_some(Kind::WebSocket)
}

/// The kind of a successful answer, from its head. Anything but a 2xx is a document (an error
/// page, a removal), as is a 204 (it has no body to stream).
pub fn from_head(status: u16, headers: &HeaderMap) -> Kind {
    if !(200..300).contains(&status) || status == 204 {
        return Kind::Document;
    }
    let essence = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "text/event-stream" => Kind::EventStream,
        "application/x-ndjson"
        | "application/jsonl"
        | "application/x-jsonlines"
        | "application/jsonlines"
        | "application/json-lines" => Kind::JsonLines,
        "application/json-seq" => Kind::JsonSeq,
        "application/json" if chunked(headers) => Kind::ChunkedJson,
        _ => Kind::Document,
    }
}

/// Whether the body comes chunked: its length is not known up front, as a stream's is not.
fn chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all("transfer-encoding")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("chunked"))
}

/// For chunked JSON: whether the bytes received so far begin with a complete line that is one
/// JSON value by itself (a pretty-printed document's first line, `{`, is not). Such a line
/// followed by more, or by a body that stays open, is a stream of lines.
pub fn first_line_is_a_value(received: &[u8]) -> bool {
    let mut first = FirstLine::default();
    first.look(received);
    first.is_a_value()
}

/// Whether anything but white space follows the first line: a second value has begun.
pub fn more_after_first_line(received: &[u8]) -> bool {
    let mut first = FirstLine::default();
    first.look(received);
    first.more_after
}

/// What the first line of a growing answer is, looked at once per byte as the answer grows.
/// Why: looking again at all of it each time a chunk came made a 12 MB one-line document sent
/// in small chunks take 4 s of CPU to discover (0.07 s with a Content-Length).
#[derive(Debug, Default)]
struct FirstLine {
    /// How much of the answer has been looked at.
    seen: usize,
    /// Once the first line has ended: whether it is one JSON value.
    line: Option<bool>,
    /// Whether anything but white space followed it.
    more_after: bool,
}

impl FirstLine {
    /// Looks at what `received` (the whole answer so far) added since the last look.
    fn look(&mut self, received: &[u8]) {
        let new = &received[self.seen.min(received.len())..];
        if self.line.is_none() {
            if let Some(at) = new.iter().position(|&b| b == b'\n') {
                let end = self.seen + at;
                let line = received[..end].trim_ascii();
                let value =
                    !line.is_empty() && serde_json::from_slice::<serde_json::Value>(line).is_ok();
                self.line = Some(value);
                self.seen = end + 1;
            } else {
                self.seen = received.len();
                return;
            }
        }
        let new = &received[self.seen.min(received.len())..];
        self.more_after |= !new.trim_ascii().is_empty();
        self.seen = received.len();
    }

    fn is_a_value(&self) -> bool {
        self.line == Some(true)
    }
}

/// An answer read as far as its kind needs.
pub(crate) enum Answer {
    /// A document, read whole.
    Document(Response),
    /// A stream (`kind`: an event stream, JSON lines or a JSON sequence), its body from the
    /// first byte, what was read to decide included.
    Stream {
        kind: Kind,
        body: Box<dyn Read + Send>,
    },
}

/// Reads an answer as far as its kind needs: a stream not at all; a document whole (at most
/// `max_body` bytes); chunked JSON until it shows which it is. `wait` bounds a silence in a
/// chunked answer that has not yet shown (the reads are bounded by the request's own timer).
pub(crate) fn answer(stream: Stream, max_body: u64, wait: Duration) -> Result<Answer, FetchError> {
    let kind = from_head(stream.status, &stream.headers);
    match kind {
        Kind::EventStream | Kind::JsonLines | Kind::JsonSeq => Ok(Answer::Stream {
            kind,
            body: stream.body,
        }),
        Kind::ChunkedJson => chunked_json(stream, max_body, wait),
        Kind::Document | Kind::WebSocket => {
            let Stream {
                status,
                url,
                moved_permanently,
                headers,
                body: reader,
            } = stream;
            let mut body = Vec::new();
            reader
                .take(max_body.saturating_add(1))
                .read_to_end(&mut body)
                .map_err(crate::http::io_failure)?;
            if body.len() as u64 > max_body {
                return Err(FetchError::TooLarge(max_body));
            }
            Ok(Answer::Document(Response {
                status,
                url,
                moved_permanently,
                headers,
                body,
            }))
        }
    }
}

/// A chunked JSON answer, read as it arrives: a stream of lines once a complete first line
/// that is a JSON value is followed by more, or by a body that stays open; a stream of lines
/// too while nothing at all has come for [`QUIET`] (a watch with nothing to report yet); else
/// a document, read to its end. A read that fails while it still looks like a stream (nothing
/// received, or a complete first line) hands the stream on with its failure, for the follower
/// to ask again as it does when any stream breaks: the server did answer.
fn chunked_json(stream: Stream, max_body: u64, wait: Duration) -> Result<Answer, FetchError> {
    let Stream {
        status,
        url,
        moved_permanently,
        headers,
        body,
    } = stream;
    let chunks = spawn_reader(body).map_err(crate::http::io_failure)?;
    let mut received = Vec::new();
    let mut first = FirstLine::default();
    let mut failed = None;
    let is_lines = loop {
        let first_complete = first.is_a_value();
        let nothing_yet = received.trim_ascii().is_empty();
        let silence = if first_complete {
            STILL_OPEN
        } else if nothing_yet {
            QUIET
        } else {
            wait
        };
        match chunks.recv_timeout(silence) {
            Ok(Ok(bytes)) if bytes.is_empty() => break false,
            Ok(Ok(bytes)) => {
                received.extend_from_slice(&bytes);
                first.look(&received);
                if first.is_a_value() && first.more_after {
                    break true;
                }
                if received.len() as u64 > max_body {
                    return Err(FetchError::TooLarge(max_body));
                }
            }
            Ok(Err(e)) if first_complete || nothing_yet => {
                failed = Some(e);
                break true;
            }
            Ok(Err(e)) => return Err(crate::http::io_failure(e)),
            Err(RecvTimeoutError::Timeout) if first_complete || nothing_yet => break true,
            // The reader's own reads are bounded by the request's timer.
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break false,
        }
    };
    if !is_lines {
        return Ok(Answer::Document(Response {
            status,
            url,
            moved_permanently,
            headers,
            body: received,
        }));
    }
    let rest = Chunks {
        chunks,
        current: io::Cursor::new(Vec::new()),
        ended: false,
        failed,
    };
    Ok(Answer::Stream {
        kind: Kind::JsonLines,
        body: Box::new(io::Cursor::new(received).chain(rest)),
    })
}

/// Reads `body` on a thread of its own into a bounded channel: chunks, an empty chunk at its
/// end, or the error that broke it. The thread ends with the body, or at its next read once
/// the receiver is gone.
fn spawn_reader(mut body: Box<dyn Read + Send>) -> io::Result<Receiver<io::Result<Vec<u8>>>> {
    let (tx, rx) = mpsc::sync_channel(4);
    std::thread::Builder::new()
        .name("chunked reader".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let chunk = body.read(&mut buf).map(|n| buf[..n].to_vec());
                let last = !matches!(&chunk, Ok(bytes) if !bytes.is_empty());
                if tx.send(chunk).is_err() || last {
                    return;
                }
            }
        })?;
    Ok(rx)
}

/// The rest of a body that a reader thread reads (see `spawn_reader`), as a `Read`.
struct Chunks {
    chunks: Receiver<io::Result<Vec<u8>>>,
    current: io::Cursor<Vec<u8>>,
    ended: bool,
    /// The failure the reader met before the body was handed on, given at its turn.
    failed: Option<io::Error>,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || self.ended || buf.is_empty() {
                return Ok(n);
            }
            if let Some(e) = self.failed.take() {
                self.ended = true;
                return Err(e);
            }
            match self.chunks.recv() {
                Ok(Ok(bytes)) if bytes.is_empty() => self.ended = true,
                Ok(Ok(bytes)) => self.current = io::Cursor::new(bytes),
                Ok(Err(e)) => {
                    self.ended = true;
                    return Err(e);
                }
                Err(_) => self.ended = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_read_back_in_order_and_end() {
        let body: Box<dyn Read + Send> = Box::new(io::Cursor::new(b"one\ntwo\n".to_vec()));
        let chunks = spawn_reader(body).unwrap();
        let mut rest = Chunks {
            chunks,
            current: io::Cursor::new(Vec::new()),
            ended: false,
            failed: None,
        };
        let mut all = String::new();
        rest.read_to_string(&mut all).unwrap();
        assert_eq!(all, "one\ntwo\n");
    }

    fn head(content_type: &str, chunked: bool) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", content_type.parse().unwrap());
        if chunked {
            h.insert("transfer-encoding", "chunked".parse().unwrap());
        }
        h
    }

    #[test]
    fn kinds_come_from_the_head() {
        let k = |ct, chunked| from_head(200, &head(ct, chunked));
        assert_eq!(
            k("text/event-stream; charset=utf-8", false),
            Kind::EventStream
        );
        assert_eq!(k("Text/Event-Stream", true), Kind::EventStream);
        assert_eq!(k("application/x-ndjson", true), Kind::JsonLines);
        assert_eq!(k("application/jsonl", false), Kind::JsonLines);
        assert_eq!(k("application/json-seq", true), Kind::JsonSeq);
        assert_eq!(k("application/json", true), Kind::ChunkedJson);
        assert_eq!(k("application/json", false), Kind::Document);
        assert_eq!(k("text/html", true), Kind::Document);
        // Not a stream when it is no success, or has no body.
        assert_eq!(
            from_head(500, &head("text/event-stream", false)),
            Kind::Document
        );
        assert_eq!(
            from_head(204, &head("text/event-stream", false)),
            Kind::Document
        );
    }

    #[test]
    fn chunked_json_lines_are_told_from_documents() {
        assert!(first_line_is_a_value(b"{\"type\":\"ADDED\"}\n"));
        assert!(first_line_is_a_value(b"  42 \r\n{"));
        assert!(!first_line_is_a_value(b"{\n  \"a\": 1\n}\n"));
        assert!(!first_line_is_a_value(b"{\"a\":1}"));
        assert!(!first_line_is_a_value(b"\n{}\n"));
        assert!(more_after_first_line(b"{}\n{"));
        assert!(!more_after_first_line(b"{}\n \r\n"));
        assert!(!more_after_first_line(b"{}"));
    }

    #[test]
    fn the_first_line_is_told_the_same_however_the_answer_is_cut() {
        for text in [
            &b"{\"type\":\"ADDED\"}\n{\"type\""[..],
            b"  42 \r\n \r\n",
            b"{\n  \"a\": 1\n}\n",
            b"\n{}\n{}",
            b"{\"a\":1}",
        ] {
            let whole = (first_line_is_a_value(text), more_after_first_line(text));
            for size in 1..text.len() {
                let mut first = FirstLine::default();
                let mut received = Vec::new();
                for chunk in text.chunks(size) {
                    received.extend_from_slice(chunk);
                    first.look(&received);
                }
                let cut = (first.is_a_value(), first.more_after);
                assert_eq!(
                    cut,
                    whole,
                    "{:?} in chunks of {size}",
                    String::from_utf8_lossy(text)
                );
            }
        }
    }

    #[test]
    fn websockets_by_scheme() {
        assert_eq!(
            by_scheme(&Url::parse("wss://h/x").unwrap()),
            Some(Kind::WebSocket)
        );
        assert_eq!(by_scheme(&Url::parse("http://h/x").unwrap()), None);
    }
}
