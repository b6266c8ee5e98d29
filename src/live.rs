//! Which kind of live URL an answer is, decided from its head alone (status, `Content-Type`,
//! `Transfer-Encoding`): an endless body must never be read to its end to find out.

use ureq::http::HeaderMap;
use url::Url;

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
    /// [`first_line_is_a_value`]).
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

    /// Whether it is followed as a stream of events rather than as a resource.
    pub fn is_stream(self) -> bool {
        !matches!(self, Kind::Document | Kind::ChunkedJson)
    }
}

/// Parses a URL to follow: an http or https URL (see [`crate::parse_url`]), or a `ws://` or
/// `wss://` URL, followed as a WebSocket given directly.
pub fn parse_follow_url(s: &str) -> crate::Result<Url> {
    match Url::parse(s) {
        Ok(url) if matches!(url.scheme(), "ws" | "wss") && url.host().is_some() => Ok(url),
        _ => crate::parse_url(s),
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
    let Some(end) = received.iter().position(|&b| b == b'\n') else {
        return false;
    };
    let line = received[..end].trim_ascii();
    !line.is_empty() && serde_json::from_slice::<serde_json::Value>(line).is_ok()
}

/// Whether anything but white space follows the first line: a second value has begun.
pub fn more_after_first_line(received: &[u8]) -> bool {
    received
        .iter()
        .position(|&b| b == b'\n')
        .is_some_and(|end| !received[end + 1..].trim_ascii().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn websockets_by_scheme() {
        assert_eq!(
            by_scheme(&Url::parse("wss://h/x").unwrap()),
            Some(Kind::WebSocket)
        );
        assert_eq!(by_scheme(&Url::parse("http://h/x").unwrap()), None);
    }
}
