//! Server-Sent Event streams: `value-stream` (form A unnamed events; forms B/C `open`/`update`
//! with a headers line), `hint-stream`, `changes-stream`, and the pump they share.
//!
//! A stream takes its connection over: the head goes out at once without a `Content-Length`
//! (the body ends when the connection does), and every event is flushed as it is written. The
//! thread sleeps on its subscription between changes and sends a keep-alive comment when idle,
//! so a dead peer is noticed at the next write.

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde_json::{json, Value};

use super::dialect::{query_param, Fault, Form, RequestView, ServerConfig};
use super::log::Tap;
use super::race_hook::{self, Point};
use super::store::{CheckpointError, Snapshot, Store, Subscription, ITEMS};
use crate::http1::{http_date, reason, Reply, Request, Response};
use crate::wire::sse::{encode_comment, encode_event, encode_retry};

/// The longest `Last-Event-ID` accepted.
pub(crate) const MAX_LAST_EVENT_ID: usize = 128;

/// Which object stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The values themselves.
    Value,
    /// Bare "it changed" hints (form B).
    Hint,
}

/// Whether the request's `Accept` names `text/event-stream`.
pub(crate) fn accepts_event_stream(request: &Request) -> bool {
    request.header_values("accept").any(|v| {
        v.split(',').any(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("text/event-stream")
        })
    })
}

/// Reads `mode=`: `reliable` or nothing.
pub(crate) fn reliable(request: &Request) -> Result<bool, Response> {
    match query_param(request, "mode").as_deref() {
        None => Ok(false),
        Some("reliable") => Ok(true),
        Some(other) => Err(Response::error(
            400,
            &format!("mode={other:?}: the only mode is mode=reliable"),
        )),
    }
}

/// Reads and checks `Last-Event-ID`: at most 128 characters of `[A-Za-z0-9._-]`, or such an
/// entity-tag (`"…"`, `W/"…"`): the ids this server hands out.
pub(crate) fn last_event_id(request: &Request) -> Result<Option<String>, Response> {
    let Some(id) = request.header("last-event-id") else {
        return Ok(None);
    };
    let opaque = id.strip_prefix("W/").unwrap_or(id);
    let opaque = opaque
        .strip_prefix('"')
        .and_then(|o| o.strip_suffix('"'))
        .unwrap_or(opaque);
    if id.len() > MAX_LAST_EVENT_ID
        || !opaque
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(Response::error(
            400,
            &format!(
                "malformed Last-Event-ID: at most {MAX_LAST_EVENT_ID} characters of A-Z a-z 0-9 . _ -, or such an entity-tag, as this server's event ids are"
            ),
        ));
    }
    Ok(Some(id.to_owned()))
}

/// Skips every Nth push when the server is lossy (`--lossy N`).
#[derive(Debug)]
pub(crate) struct Lossy {
    every: Option<u32>,
    count: u64,
}

impl Lossy {
    /// A counter for one stream or socket; reliable streams never skip.
    pub(crate) fn new(cfg: &ServerConfig, reliable: bool) -> Lossy {
        Lossy {
            every: if reliable {
                None
            } else {
                cfg.lossy.filter(|n| *n > 0)
            },
            count: 0,
        }
    }

    /// Counts a push; true when this one is to be dropped.
    pub(crate) fn skip(&mut self) -> bool {
        self.count += 1;
        self.every.is_some_and(|n| self.count % u64::from(n) == 0)
    }
}

/// The write side of a stream: every piece flushed at once.
pub(crate) struct SseOut {
    stream: TcpStream,
    tap: Tap,
}

impl SseOut {
    /// Writes the stream's head and wraps the connection.
    pub(crate) fn open(mut stream: TcpStream, cfg: &ServerConfig) -> io::Result<SseOut> {
        let content_type = if cfg.has(Fault::WrongContentType) {
            "text/plain; charset=utf-8"
        } else {
            "text/event-stream"
        };
        let mut headers = vec![
            ("Content-Type".to_owned(), content_type.to_owned()),
            // Proxies such as nginx would otherwise buffer the stream.
            ("X-Accel-Buffering".to_owned(), "no".to_owned()),
        ];
        // An EventSource of another origin is refused without them.
        headers.extend(cfg.cors.headers());
        write_stream_head(&mut stream, 200, &headers)?;
        let tap = cfg.log.tap(stream.peer_addr().ok());
        Ok(SseOut { stream, tap })
    }

    /// Writes and flushes.
    pub(crate) fn send(&mut self, text: &str) -> io::Result<()> {
        self.stream.write_all(text.as_bytes())?;
        self.stream.flush()?;
        self.tap.push(text);
        Ok(())
    }
}

/// Writes the head of a streamed response: no `Content-Length`, and `Connection: close`, since
/// the body ends when the connection does. Flushed at once, so the client sees the stream open.
fn write_stream_head(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    head.push_str(&format!("Date: {}\r\n", http_date(SystemTime::now())));
    head.push_str(concat!(
        "Server: lrwatch/",
        env!("CARGO_PKG_VERSION"),
        "\r\n"
    ));
    head.push_str("Cache-Control: no-cache\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    stream.flush()
}

/// Runs a stream until it is cut, its peer goes away, or `on_change` fails: sleeps on `sub`,
/// calls `on_change` with the keys that changed, and sends a keep-alive comment when idle.
pub(crate) fn pump(
    cfg: &ServerConfig,
    sub: &Subscription,
    out: &mut SseOut,
    mut on_change: impl FnMut(&mut SseOut, &[String]) -> io::Result<()>,
) {
    let cut_at = cfg.cut_after.map(|d| Instant::now() + d);
    loop {
        let now = Instant::now();
        if cut_at.is_some_and(|c| now >= c) {
            return;
        }
        let deadline = cut_at.map_or(now + cfg.keepalive, |c| c.min(now + cfg.keepalive));
        let woke = sub.wait(deadline);
        if woke.cut {
            return;
        }
        let result = if woke.changed.is_empty() {
            if cut_at.is_some_and(|c| Instant::now() >= c) {
                return;
            }
            out.send(&encode_comment(" keep-alive"))
        } else {
            on_change(out, &woke.changed)
        };
        if result.is_err() {
            return;
        }
    }
}

/// The id of an event carrying the value with this ETag: the tag without its quotes.
pub(crate) fn etag_id(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}

/// A value stream's event id for a value: form A's are the ETag itself, quotes included (what
/// its specification suggests and servers do, so a client can take the id as the pushed
/// value's ETag); B's and C's the ETag's opaque part.
fn value_id(form: Form, etag: &str) -> String {
    match form {
        Form::A => etag.to_owned(),
        _ => etag_id(etag),
    }
}

/// A form B/C `update` event's data: a JSON headers line, then the content.
pub(crate) fn update_data(headers: &Value, content: Option<&str>) -> String {
    match content {
        Some(content) => format!("{headers}\n{content}"),
        None => headers.to_string(),
    }
}

fn value_headers(snap: &Snapshot, previous: &str) -> Value {
    let mut h = json!({ "ETag": snap.etag, "Previous-ETag": previous });
    if snap.value.is_some() {
        h["Content-Type"] = json!("application/json");
    }
    h
}

/// `GET` of an object as a stream.
pub(crate) fn value_stream(
    store: &Arc<Store>,
    cfg: &ServerConfig,
    ctx: &RequestView,
    request: &Request,
    key: &str,
    kind: Kind,
) -> Reply {
    let reliable = match reliable(request) {
        Ok(r) => r,
        Err(response) => return response.into(),
    };
    let last_id = match last_event_id(request) {
        Ok(id) => id,
        Err(response) => return response.into(),
    };
    if store.snapshot(key).is_none() {
        return Response::error(404, &format!("{key} cannot be streamed")).into();
    }
    // The caller chose the form from the request's shape (`objects::stream_view`); hints
    // exist only in form B.
    let form = match kind {
        Kind::Hint => Form::B,
        Kind::Value => ctx.payload(Form::A),
    };
    let store = Arc::clone(store);
    let cfg = cfg.clone();
    let key = key.to_owned();
    Reply::Takeover(Box::new(move |stream, _| {
        // Subscribed, then looked, then the head written: a change after the look wakes the
        // pump and is pushed. Looking after the head would swallow a change made between the
        // two, when the client already has the head and (form A) nothing else.
        let sub = store.subscribe(&[&key]);
        let Some(first) = store.snapshot(&key) else {
            return;
        };
        let Ok(mut out) = SseOut::open(stream, &cfg) else {
            return;
        };
        race_hook::reached(Point::HeadWritten, &key);
        let resumed = last_id
            .as_deref()
            .is_some_and(|id| id == first.etag || format!("\"{id}\"") == first.etag);
        let opened = open_value_stream(&mut out, &cfg, form, kind, reliable, resumed, &first);
        if opened.is_err() {
            return;
        }
        let mut last = first.etag;
        let mut lossy = Lossy::new(&cfg, reliable);
        pump(&cfg, &sub, &mut out, |out, _| {
            let Some(snap) = store.snapshot(&key) else {
                return Ok(());
            };
            if snap.etag == last {
                return Ok(());
            }
            let previous = std::mem::replace(&mut last, snap.etag.clone());
            if lossy.skip() {
                return Ok(());
            }
            let id = reliable.then(|| value_id(form, &snap.etag));
            out.send(&value_event(form, kind, &snap, &previous, id.as_deref()))
        });
    }))
}

fn open_value_stream(
    out: &mut SseOut,
    cfg: &ServerConfig,
    form: Form,
    kind: Kind,
    reliable: bool,
    resumed: bool,
    first: &Snapshot,
) -> io::Result<()> {
    if reliable {
        out.send(&encode_retry(cfg.retry_ms))?;
    }
    let id = reliable.then(|| value_id(form, &first.etag));
    match (form, kind) {
        (_, Kind::Hint) => out.send(&encode_event(Some("open"), None, "")),
        (Form::A, Kind::Value) if reliable && !resumed => out.send(&encode_event(
            None,
            id.as_deref(),
            first.value.as_deref().unwrap_or(""),
        )),
        (Form::A, Kind::Value) => out.send(&encode_comment(" open")),
        (_, Kind::Value) if reliable && !resumed => {
            let headers = json!({ "ETag": first.etag, "Content-Type": "application/json" });
            let data = update_data(&headers, first.value.as_deref());
            out.send(&encode_event(Some("open"), id.as_deref(), &data))
        }
        (_, Kind::Value) => out.send(&encode_event(Some("open"), id.as_deref(), "")),
    }
}

/// One pushed change of an object, in the stream's form.
fn value_event(
    form: Form,
    kind: Kind,
    snap: &Snapshot,
    previous: &str,
    id: Option<&str>,
) -> String {
    match (form, kind) {
        (_, Kind::Hint) => encode_event(Some("update"), id, ""),
        (Form::A, Kind::Value) => encode_event(None, id, snap.value.as_deref().unwrap_or("")),
        (_, Kind::Value) => encode_event(
            Some("update"),
            id,
            &update_data(&value_headers(snap, previous), snap.value.as_deref()),
        ),
    }
}

/// The headers of a changes set: the next checkpoint, the one before, and gap markers in both
/// styles (links for form A, ids for B and C).
pub(crate) fn changes_headers(
    ctx: &RequestView,
    next: u64,
    previous: u64,
) -> Vec<(String, String)> {
    let (n, p) = (next.to_string(), previous.to_string());
    let mut h = Vec::new();
    let changes = ctx.link(ITEMS, &[("since", &n)], "changes", &[]);
    if ctx.form == Some(Form::A) || ctx.form.is_none() {
        let prev = ctx.link(ITEMS, &[("since", &p)], "prev-changes", &[]);
        h.push(("Link".to_owned(), format!("{changes}, {prev}")));
    } else {
        h.push(("Link".to_owned(), changes));
    }
    if ctx.form != Some(Form::A) {
        h.push(("Changes-Id".to_owned(), n));
        h.push(("Previous-Changes-Id".to_owned(), p));
    }
    h
}

/// Reads the checkpoint a changes request starts from: `since=N` (all digits, as handed out).
pub(crate) fn checkpoint_param(request: &Request) -> Result<Option<u64>, Response> {
    match query_param(request, "since") {
        None => Ok(None),
        Some(v) => parse_checkpoint(&v).map(Some),
    }
}

/// A checkpoint: a decimal number of at most 19 digits.
pub(crate) fn parse_checkpoint(v: &str) -> Result<u64, Response> {
    if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Response::error(
            400,
            &format!(
                "malformed checkpoint {:?}: use the changes link as given",
                v.chars().take(40).collect::<String>()
            ),
        ));
    }
    v.parse()
        .map_err(|_| Response::error(400, "malformed checkpoint"))
}

/// The answer for a checkpoint that cannot be served.
pub(crate) fn checkpoint_error(e: CheckpointError) -> Response {
    match e {
        CheckpointError::Expired => Response::error(
            404,
            "this checkpoint has expired: read the collection again and follow its changes link",
        ),
        CheckpointError::Unknown => Response::error(
            404,
            "this server never handed out this checkpoint: read the collection again",
        ),
    }
}

/// `GET /items/?stream=changes` (optionally `since=N`, `mode=reliable`, `Last-Event-ID`), in
/// `mixed_form` unless the request or the dialect chose one.
pub(crate) fn changes_stream(
    store: &Arc<Store>,
    cfg: &ServerConfig,
    ctx: &RequestView,
    request: &Request,
    mixed_form: Form,
) -> Reply {
    let reliable = match reliable(request) {
        Ok(r) => r,
        Err(response) => return response.into(),
    };
    let resume = match last_event_id(request) {
        Ok(Some(id)) if reliable => match parse_checkpoint(&id) {
            Ok(c) => Some(c),
            Err(response) => return response.into(),
        },
        Ok(_) => None,
        Err(response) => return response.into(),
    };
    let since = match checkpoint_param(request) {
        Ok(s) => resume.or(s),
        Err(response) => return response.into(),
    };
    let start = match since {
        Some(c) => match store.changes_since(c) {
            Ok(_) => c,
            Err(e) => return checkpoint_error(e).into(),
        },
        None => store.checkpoint(),
    };
    let form = ctx.payload(mixed_form);
    let store = Arc::clone(store);
    let cfg = cfg.clone();
    let ctx = ctx.clone();
    Reply::Takeover(Box::new(move |stream, _| {
        let sub = store.subscribe(&[ITEMS]);
        let Ok(mut out) = SseOut::open(stream, &cfg) else {
            return;
        };
        let mut opening = String::new();
        if reliable {
            opening.push_str(&encode_retry(cfg.retry_ms));
        }
        if form == Form::A {
            opening.push_str(&encode_comment(" open"));
        } else {
            opening.push_str(&encode_event(Some("open"), None, ""));
        }
        if out.send(&opening).is_err() {
            return;
        }
        let mut held = start;
        let mut lossy = Lossy::new(&cfg, reliable);
        let mut push = |out: &mut SseOut| -> io::Result<()> {
            let changes = match store.changes_since(held) {
                Ok(c) => c,
                // More changes than the history holds went by: end the stream, so the client
                // reconnects and starts over from the collection.
                Err(_) => return Err(io::ErrorKind::InvalidData.into()),
            };
            if changes.next == held {
                return Ok(());
            }
            let previous = std::mem::replace(&mut held, changes.next);
            if lossy.skip() {
                return Ok(());
            }
            let body = Value::Array(changes.items).to_string();
            let id = reliable.then(|| held.to_string());
            let event = if form == Form::A {
                encode_event(None, id.as_deref(), &body)
            } else {
                let mut headers = serde_json::Map::new();
                for (n, v) in changes_headers(&ctx, held, previous) {
                    headers.insert(n, Value::String(v));
                }
                headers.insert("Content-Type".into(), json!("application/json"));
                encode_event(
                    Some("update"),
                    id.as_deref(),
                    &update_data(&Value::Object(headers), Some(&body)),
                )
            };
            out.send(&event)
        };
        // Catch up from the checkpoint asked for, then follow.
        if push(&mut out).is_err() {
            return;
        }
        pump(&cfg, &sub, &mut out, |out, _| push(out));
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)], query: &str) -> Request {
        Request {
            query: Some(query.into()),
            ..Request::for_test("GET", "/counter/a", headers, b"")
        }
    }

    #[test]
    fn lossy_counts_pushes_and_spares_reliable_streams() {
        let cfg = ServerConfig {
            lossy: Some(3),
            ..ServerConfig::default()
        };
        let mut lossy = Lossy::new(&cfg, false);
        let skipped: Vec<bool> = (0..6).map(|_| lossy.skip()).collect();
        assert_eq!(skipped, [false, false, true, false, false, true]);
        let mut reliable = Lossy::new(&cfg, true);
        assert!((0..6).all(|_| !reliable.skip()));
        let mut off = Lossy::new(&ServerConfig::default(), false);
        assert!((0..6).all(|_| !off.skip()));
    }

    #[test]
    fn checkpoints_and_event_ids_are_checked() {
        assert_eq!(parse_checkpoint("0").unwrap(), 0);
        assert_eq!(parse_checkpoint("1234").unwrap(), 1234);
        for bad in ["", "-1", "+1", "1e3", " 1", "12345678901234567890"] {
            assert_eq!(parse_checkpoint(bad).unwrap_err().status, 400, "{bad:?}");
        }
        assert_eq!(last_event_id(&req(&[], "")).unwrap(), None);
        assert_eq!(
            last_event_id(&req(&[("Last-Event-ID", "t17.a_b-c")], "")).unwrap(),
            Some("t17.a_b-c".into())
        );
        for etag in ["\"1\"", "W/\"a-1\""] {
            assert_eq!(
                last_event_id(&req(&[("Last-Event-ID", etag)], "")).unwrap(),
                Some(etag.into())
            );
        }
        for bad in [
            "a b",
            "\"1",
            "\"a\"b\"",
            "é",
            &"1".repeat(MAX_LAST_EVENT_ID + 1),
        ] {
            assert!(
                last_event_id(&req(&[("Last-Event-ID", bad)], "")).is_err(),
                "{bad:?}"
            );
        }
        assert!(reliable(&req(&[], "mode=reliable")).unwrap());
        assert!(!reliable(&req(&[], "")).unwrap());
        assert!(reliable(&req(&[], "mode=RELIABLE")).is_err());
    }

    #[test]
    fn accept_is_read_as_a_list_of_media_ranges() {
        let accepts = |v: &str| accepts_event_stream(&req(&[("Accept", v)], ""));
        assert!(accepts("text/event-stream"));
        assert!(accepts("application/json, Text/Event-Stream; q=0.5"));
        assert!(!accepts("text/*"));
        assert!(!accepts("application/json"));
    }

    #[test]
    fn updates_carry_a_headers_line_then_the_content() {
        let headers = json!({"ETag": "\"2\""});
        assert_eq!(
            update_data(&headers, Some("1\n2")),
            "{\"ETag\":\"\\\"2\\\"\"}\n1\n2"
        );
        assert_eq!(update_data(&headers, None), "{\"ETag\":\"\\\"2\\\"\"}");
        assert_eq!(etag_id("\"t17\""), "t17");
    }
}
