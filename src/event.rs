//! What followers report: events (the resource's values) and notices (what the follower is doing).

use std::sync::Arc;

use std::borrow::Cow;

use bytes::Bytes;
use std::time::SystemTime;

use crate::json_text::Shape;
use crate::mechanism::Mechanism;

/// The kind of an event, named as in the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// The resource has a (new) value.
    Value,
    /// The resource is gone (404 or 410).
    Removed,
    /// A change of a collection or feed, in the server's own format, untouched.
    Changes,
    /// An item with an id not seen before appeared in a collection.
    ChildAdded,
    /// An item seen before changed.
    ChildChanged,
    /// An item was removed (`"deleted": true`, or gone from a fresh listing).
    ChildRemoved,
}

impl EventKind {
    /// The contract's name for this kind (`value`, `removed`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Value => "value",
            EventKind::Removed => "removed",
            EventKind::Changes => "changes",
            EventKind::ChildAdded => "child-added",
            EventKind::ChildChanged => "child-changed",
            EventKind::ChildRemoved => "child-removed",
        }
    }

    /// Whether this kind is about a collection's items or feed (no ETag of its own).
    pub fn is_collection(self) -> bool {
        !matches!(self, EventKind::Value | EventKind::Removed)
    }
}

/// A resource's content, as received, with its JSON reading when it is JSON.
///
/// Whether the bytes are JSON is decided the first time it is asked (by validating them, which
/// builds nothing; for a fast stream, on the printer's thread, leaving the reader free to
/// read), and the value is built the first time [`Body::json`] asks for it. A fast stream
/// printed with `--json` never needs it: JSON that is already compact is written as the bytes
/// it came in (see [`Body::compact_json`]).
#[derive(Debug, Clone)]
pub struct Body {
    /// The bytes exactly as the server sent them (perhaps a slice of the read they came in,
    /// shared with the other events made of it).
    pub bytes: Bytes,
    /// The `Content-Type`, if any.
    pub content_type: Option<String>,
    /// Whether `bytes` are one JSON text (`None`: not), and how it is written: set when made
    /// for a type that is not JSON, else checked when first asked. `true` beside it: that is
    /// of the text decoded ([`Body::content`]), not of the bytes (text with invalid UTF-8).
    shape: std::sync::OnceLock<Option<(Shape, bool)>>,
    /// The bytes are known to be UTF-8 (they came as a `String`): the JSON check skips that.
    utf8: bool,
    /// The bytes are text whatever they hold (an event stream's data): given out with invalid
    /// UTF-8 replaced ([`Body::content`]), and JSON when the text so decoded is.
    text: bool,
    /// The parsed value, once asked for (`None` inside: it did not parse after all, which
    /// validation should have ruled out). Boxed: an event is moved several times on its way
    /// to the printer, and a `Value` in place would more than double the bytes moved.
    value: std::sync::OnceLock<Option<Box<serde_json::Value>>>,
}

/// Bodies are equal when their bytes and type are (the JSON reading follows from them).
impl PartialEq for Body {
    fn eq(&self, other: &Body) -> bool {
        self.bytes == other.bytes
            && self.content_type == other.content_type
            && self.is_json() == other.is_json()
    }
}

impl Body {
    /// Wraps received bytes, reading them as JSON when the media type says JSON
    /// (`application/json`, `*+json`), or when there is no `Content-Type` and the bytes parse.
    /// A body that claims JSON but does not parse stays text: it is shown, not dropped.
    pub fn new(bytes: impl Into<Bytes>, content_type: Option<String>) -> Body {
        let json_type = content_type.as_deref().map(is_json_media_type);
        let shape = match json_type {
            Some(false) => std::sync::OnceLock::from(None),
            Some(true) | None => std::sync::OnceLock::new(),
        };
        Body {
            bytes: bytes.into(),
            content_type,
            shape,
            utf8: false,
            text: false,
            value: std::sync::OnceLock::new(),
        }
    }

    /// An event's data as it came (no type): text, read as EventSource reads it (decoded
    /// first, invalid UTF-8 replaced), and JSON when that text is one JSON text. Nothing is
    /// checked here: a fast stream's reader hands its events on at once, and the printer,
    /// which touches the bytes anyway, checks them (BENCHMARKS.md).
    pub fn from_stream_data(data: Bytes) -> Body {
        Body {
            text: true,
            ..Body::new(data, None)
        }
    }

    /// Bytes that are not to be read as JSON whatever they hold (a binary message).
    pub fn opaque(bytes: impl Into<Bytes>, content_type: Option<String>) -> Body {
        Body {
            bytes: bytes.into(),
            content_type,
            shape: std::sync::OnceLock::from(None),
            utf8: false,
            text: false,
            value: std::sync::OnceLock::new(),
        }
    }

    /// A JSON value as a body (`application/json`, its bytes the compact text).
    pub fn from_json(value: serde_json::Value) -> Body {
        Body {
            bytes: value.to_string().into(),
            content_type: Some("application/json".to_string()),
            // Written by serde_json: compact.
            shape: std::sync::OnceLock::from(Some((Shape::Compact, false))),
            utf8: true,
            text: false,
            value: std::sync::OnceLock::from(Some(Box::new(value))),
        }
    }

    /// Like [`Body::new`], and also JSON when it parses and `json_seen` (another
    /// representation of the same resource was labelled JSON), or when it is labelled
    /// `text/html` but is a JSON object or array: servers mislabel JSON (the protocol's public
    /// test server sends it as `text/html`), and an HTML page is never one.
    pub fn typed(bytes: impl Into<Bytes>, content_type: Option<String>, json_seen: bool) -> Body {
        let mut body = Body::new(bytes, content_type);
        if !body.is_json() {
            let html = body
                .content_type
                .as_deref()
                .is_some_and(|ct| media_essence(ct) == "text/html");
            if json_seen || html {
                let value = serde_json::from_slice(&body.bytes)
                    .ok()
                    .filter(|v: &serde_json::Value| json_seen || v.is_object() || v.is_array());
                if value.is_some() {
                    // It parsed, so it is JSON: its shape as written (Spaced, which is
                    // printed by rebuilding, would do if the check ever disagreed).
                    let shape =
                        crate::json_text::shape(&body.bytes, body.utf8).unwrap_or(Shape::Spaced);
                    body.shape = std::sync::OnceLock::from(Some((shape, false)));
                    body.value = std::sync::OnceLock::from(value.map(Box::new));
                }
            }
        }
        body
    }

    /// The parsed value, when the body is JSON (built on the first call).
    pub fn json(&self) -> Option<&serde_json::Value> {
        if !self.is_json() {
            return None;
        }
        self.value
            .get_or_init(|| {
                let decoded = matches!(self.form(), Some((_, true)));
                let text = if decoded {
                    self.content()
                } else {
                    Cow::Borrowed(&self.bytes[..])
                };
                serde_json::from_slice(&text).ok().map(Box::new)
            })
            .as_deref()
    }

    /// Whether the body is JSON, without building its value.
    pub fn is_json(&self) -> bool {
        self.shape().is_some()
    }

    fn shape(&self) -> Option<Shape> {
        self.form().map(|(shape, _)| shape)
    }

    /// The shape, and whether it is that of the decoded text rather than of the bytes.
    fn form(&self) -> Option<(Shape, bool)> {
        *self.shape.get_or_init(|| {
            match crate::json_text::shape(&self.bytes, self.utf8) {
                Some(shape) => Some((shape, false)),
                // Text is decoded first: a string's invalid bytes replaced may make it JSON
                // (its bytes are not that text: given out decoded, see `compact_json`).
                None if self.text => match self.content() {
                    Cow::Owned(text) => crate::json_text::shape(&text, true).map(|s| (s, true)),
                    Cow::Borrowed(_) => None,
                },
                None => None,
            }
        })
    }

    /// Whether the value has been built (it then takes memory beside the bytes).
    pub fn json_built(&self) -> bool {
        self.value.get().is_some_and(Option::is_some)
    }

    /// The bytes, when the body is JSON already written compactly: no whitespace outside
    /// strings, so one line that serde_json would write alike up to number formats and escapes
    /// (both read back the same). Printing them saves building and writing the value.
    /// Text decoded to be JSON (invalid UTF-8 in a string) is given decoded, as it is then
    /// written: printed as the same JSON with valid bytes would be, not rebuilt.
    pub fn compact_json(&self) -> Option<Cow<'_, [u8]>> {
        match self.form() {
            Some((Shape::Compact, false)) => Some(Cow::Borrowed(&self.bytes[..])),
            Some((Shape::Compact, true)) => Some(self.content()),
            _ => None,
        }
    }

    /// The memory it holds, roughly, for bounds on what waits: its bytes, and a parsed JSON
    /// value (once built: most bodies are printed without) as sixteen times as many (a
    /// `Value` is 32 bytes, and `[0,0,…]` takes two bytes an element).
    pub(crate) fn size(&self) -> usize {
        let parsed = if self.json_built() { 16 } else { 0 };
        self.bytes.len() * (1 + parsed)
    }

    /// The body as text (invalid UTF-8 replaced), for bodies that are not JSON.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }

    /// The bytes to give out as the content (stdin of `--exec`, a plain line): as received,
    /// but for text ([`Body::from_stream_data`]) invalid UTF-8 replaced.
    pub fn content(&self) -> Cow<'_, [u8]> {
        if !self.text {
            return Cow::Borrowed(&self.bytes);
        }
        match String::from_utf8_lossy(&self.bytes) {
            Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
            Cow::Owned(text) => Cow::Owned(text.into_bytes()),
        }
    }
}

/// Whether a `Content-Type` names JSON (`application/json`, `*+json`).
pub(crate) fn is_json_media_type(content_type: &str) -> bool {
    let essence = media_essence(content_type);
    essence == "application/json" || essence.ends_with("+json")
}

/// The media type without parameters, lowercased.
fn media_essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// One change of a followed resource (or its initial state).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The URL the user asked to follow, exactly as given (after parsing).
    pub uri: Arc<str>,
    /// The item's id, for child events.
    pub id: Option<String>,
    /// The `ETag` as the server sent it (quotes included), if any.
    pub etag: Option<String>,
    /// The mechanism that delivered it.
    pub transport: Mechanism,
    /// When lrwatch received it.
    pub time: SystemTime,
    /// The content; `None` for removals.
    pub body: Option<Body>,
    /// Whether this is the state found when following began, rather than a change.
    pub initial: bool,
    /// For an event of a live URL given directly (an event stream, a JSON-lines stream, a
    /// WebSocket): what that message was. Such events are news, never deduplicated or
    /// coalesced. `None` for the LiveResource protocol's events.
    pub live: Option<Live>,
}

/// What an event of a live URL given directly was, besides its body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Live {
    /// For an event-stream event: its name and id.
    pub sse: Option<SseFacts>,
    /// A binary WebSocket message: its bytes are not text (`--json` shows them as base64).
    pub binary: bool,
}

/// An event-stream event's name and id, as the `sse` member of the `--json` envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseFacts {
    /// The event type (`message` when the event named none).
    pub event: std::borrow::Cow<'static, str>,
    /// The stream's last event id when it was dispatched (what a reconnect sends as
    /// `Last-Event-ID`); `None` when no id was set.
    pub id: Option<String>,
}

/// How much a notice matters to someone watching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Protocol detail: requests, links found, the transport chosen and why.
    Trace,
    /// Something the user should know while following goes on: retries, a misbehaving server.
    Warn,
}

/// What a follower is doing, for a verbose trace or a status line. Never part of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The resource it is about.
    pub uri: Arc<str>,
    /// How much it matters.
    pub level: Level,
    /// One line, in words.
    pub message: String,
}

/// Where a follower stands, for a one-line status display: replaced by the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The resource it is about.
    pub uri: Arc<str>,
    /// The mechanism it follows over (or is trying to).
    pub transport: Mechanism,
    /// Since when it has followed over this mechanism without failing.
    pub since: SystemTime,
    /// Failed attempts in a row; 0 while all is well.
    pub retries: u32,
}

/// Everything a [`crate::Follow`] yields.
#[derive(Debug)]
#[non_exhaustive]
pub enum Update {
    /// A value or removal.
    Event(Event),
    /// A trace or warning line.
    Notice(Notice),
    /// The follower's state changed: connected, switched transport, retrying.
    Status(Status),
    /// Following one resource ended with an error recovery could not absorb.
    Failed(crate::Error),
    /// [`crate::Interrupter::interrupt`] was called: the consumer asked to stop.
    Interrupted,
    /// Following this URL is over without an error: an event stream answered 204 (EventSource's
    /// "do not reconnect"), or a JSON-lines response ended and `--reconnect` was not given.
    Done {
        /// The URL the user asked to follow.
        uri: Arc<str>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_data_is_json_when_its_decoded_text_is() {
        // EventSource decodes first: `{"a":"\xff"}` is the JSON text {"a":"\u{fffd}"}, as
        // `Body::from_text` of the decoded data found it before.
        let body = Body::from_stream_data(Bytes::from_static(b"{\"a\":\"\xff\"}"));
        assert_eq!(body.json(), Some(&serde_json::json!({"a": "\u{fffd}"})));
        assert_eq!(
            body.compact_json().as_deref(),
            Some("{\"a\":\"\u{fffd}\"}".as_bytes()),
            "printed as its decoded text, not rebuilt from its value"
        );
        assert_eq!(&body.content()[..], "{\"a\":\"\u{fffd}\"}".as_bytes());
        // Text that is not JSON is given out decoded; valid text as it came.
        let body = Body::from_stream_data(Bytes::from_static(b"a\xffb"));
        assert!(!body.is_json());
        assert_eq!(&body.content()[..], "a\u{fffd}b".as_bytes());
        let body = Body::from_stream_data(Bytes::from_static(b"{\"a\":1}"));
        assert_eq!(body.compact_json().as_deref(), Some(&b"{\"a\":1}"[..]));
        assert!(matches!(body.content(), Cow::Borrowed(_)));
        // Bytes that are not text are given out as they came.
        let body = Body::new(Bytes::from_static(b"a\xffb"), None);
        assert_eq!(&body.content()[..], b"a\xffb");
    }

    #[test]
    fn json_detection() {
        let j = |b: &str, ct: Option<&str>| {
            Body::new(b.to_string(), ct.map(String::from))
                .json()
                .cloned()
        };
        assert_eq!(j("1", Some("application/json")), Some(serde_json::json!(1)));
        assert_eq!(
            j("{\"a\":1}", Some("application/vnd.x+json; charset=utf-8")),
            Some(serde_json::json!({"a":1}))
        );
        assert_eq!(j("1", None), Some(serde_json::json!(1)));
        assert_eq!(j("1", Some("text/plain")), None);
        assert_eq!(j("nope", Some("application/json")), None);
        assert_eq!(j("hello", None), None);
    }

    #[test]
    fn typed_follows_the_resource_and_mislabelled_html() {
        let t = |b: &str, ct: Option<&str>, seen| {
            Body::typed(b.to_string(), ct.map(String::from), seen)
                .json()
                .cloned()
        };
        let html = Some("text/html; charset=utf-8");
        assert_eq!(
            t("{\"a\":1}", html, false),
            Some(serde_json::json!({"a":1}))
        );
        assert_eq!(t("[1]", html, false), Some(serde_json::json!([1])));
        // A bare number in HTML stays text unless the resource spoke JSON elsewhere.
        assert_eq!(t("42", html, false), None);
        assert_eq!(t("42", html, true), Some(serde_json::json!(42)));
        assert_eq!(t("42", Some("text/plain"), false), None);
        assert_eq!(
            t("42", Some("text/plain"), true),
            Some(serde_json::json!(42))
        );
        assert_eq!(t("<p>hi</p>", html, true), None);
    }
}
