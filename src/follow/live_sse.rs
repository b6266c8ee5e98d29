//! An event stream given directly (`text/event-stream` at the URL itself): each event is one
//! event, its name and id kept; reconnected as EventSource does (`Last-Event-ID`, the server's
//! `retry`, a backoff on errors), until the server answers 204. Events in LiveResource framing
//! (form B/C `open`/`update` with a headers line) keep their meaning: ETag, Previous-ETag.

use std::io::Read;
use std::time::{Duration, Instant, SystemTime};

use super::live_url::{done, event as live_event, reopen};
use super::sse::{header, headers_and_content};
use super::value_stream::entity_tag;
use super::{Ctx, RequestOutcome};
use crate::event::{Body, EventKind, Level, Live, SseFacts, Update};
use crate::http::FetchError;
use crate::mechanism::Mechanism;
use crate::wire::sse::{Event, Parser};

const SELF: Mechanism = Mechanism::EventStream;
/// How much of the stream one read takes at first: the events in it go to the printer
/// together. Reads that fill it double it, up to as much as the connection's buffer grows to
/// hold, and a quiet spell shrinks it again (see `stream_buffers::ReadBuffer`): a firehose is
/// read in large pieces, while quiet streams each keep a small buffer.
const READ_SIZE: usize = 16 * 1024;
/// EventSource's reconnection delay until the server sets one.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// The headers a LiveResource `update` event's headers line may carry: one of them (and only
/// string values) tells the framing from an event whose data merely is a JSON object.
const FRAMING_HEADERS: [&str; 6] = [
    "etag",
    "previous-etag",
    "content-type",
    "link",
    "changes-id",
    "previous-changes-id",
];

/// Follows the stream whose first response body is `first`, until it is done or stops.
pub(super) fn run(mut ctx: Ctx, first: Box<dyn Read + Send>) {
    ctx.enter(SELF);
    let mut state = State::default();
    let mut retry = DEFAULT_RETRY;
    let mut quick_ends = super::sse::QuickEnds::default();
    let mut body = Some(first);
    loop {
        let stream = match body.take() {
            Some(stream) => stream,
            None => match reconnect(&mut ctx, &mut state, retry) {
                Reopened::Stream(stream) => stream,
                Reopened::Again => continue,
                Reopened::Stop => return,
            },
        };
        let opened = Instant::now();
        let mut parser = ctx.options.sse_parser();
        let (events, why) = match read(&mut ctx, stream, &mut parser, &mut state) {
            Some(read) => read,
            None => return,
        };
        if !parser.last_event_id().is_empty() {
            state.last_id = parser.last_event_id().to_string();
        }
        if let Some(ms) = parser.retry() {
            retry = Duration::from_millis(ms);
        }
        // As EventSource does, a stream that ends is asked again after the server's retry
        // delay; one that ends before any event, at once and again, backs off (retry a floor).
        if events > 0 || opened.elapsed() >= ctx.options.keepalive {
            ctx.succeeded();
            let delay = quick_ends.delay(retry, opened.elapsed());
            ctx.trace(format!(
                "{why}; reconnecting in {:.1}s",
                delay.as_secs_f64()
            ));
            if !ctx.sleep(delay) {
                return;
            }
        } else if let RequestOutcome::Stop =
            ctx.retry_after(&format!("{why} before any event"), Some(retry))
        {
            return;
        }
    }
}

/// What the stream said so far, across reconnects.
#[derive(Default)]
struct State {
    /// What a reconnect sends as `Last-Event-ID`.
    last_id: String,
    /// The id of the event before: only an id an event set names its value (see value_stream).
    previous_id: String,
    /// The ETag of the last LiveResource-framed event, for gap detection.
    etag: Option<String>,
    /// The last id that could not be sent as `Last-Event-ID`, once said (under `-v`).
    unsendable: Option<String>,
}

enum Reopened {
    Stream(Box<dyn Read + Send>),
    Again,
    Stop,
}

/// Asks the URL again for the stream; a 204 means it is done.
fn reconnect(ctx: &mut Ctx, state: &mut State, retry: Duration) -> Reopened {
    let mut headers = vec![("Accept", "text/event-stream".to_string())];
    let last_id = state.last_id.as_str();
    // The last event ID is kept as the stream set it (WHATWG), but one holding a character
    // that HTTP forbids in a header value (a control character) cannot be sent: the request
    // would fail here, every time, and a hostile server could stall the stream for good. It
    // reconnects without one instead, as a stream that set no id does.
    if sendable(last_id) {
        headers.push(("Last-Event-ID", last_id.to_string()));
    } else if !last_id.is_empty() && state.unsendable.as_deref() != Some(last_id) {
        state.unsendable = Some(last_id.to_string());
        ctx.trace(
            "the last event ID holds a control character, which HTTP forbids in a header: \
             reconnecting without Last-Event-ID"
                .to_string(),
        );
    }
    let problem = match reopen(ctx, &headers) {
        Err(e @ (FetchError::TooLarge(_) | FetchError::HeadTooLarge(_))) => {
            let url = ctx.url.clone();
            ctx.fail(e.into_error(&url));
            return Reopened::Stop;
        }
        Err(e) => (e.to_string(), None),
        Ok(stream) if stream.status == 204 => {
            done(ctx, "the event stream answered 204 (no more events)");
            return Reopened::Stop;
        }
        Ok(stream) if stream.status != 200 => (
            format!("HTTP {} for the event stream", stream.status),
            super::retry_after(
                stream
                    .headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()),
            ),
        ),
        Ok(stream)
            if crate::live::from_head(stream.status, &stream.headers)
                != crate::live::Kind::EventStream =>
        {
            (
                format!(
                    "the URL answered with Content-Type '{}', no longer an event stream",
                    stream
                        .headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                ),
                None,
            )
        }
        Ok(stream) => {
            ctx.trace("stream open".to_string());
            return Reopened::Stream(stream.body);
        }
    };
    // A failure backs off, the server's retry delay a floor.
    let (reason, server_says) = problem;
    match ctx.retry_after(&reason, Some(server_says.unwrap_or(retry).max(retry))) {
        RequestOutcome::Stop => Reopened::Stop,
        _ => Reopened::Again,
    }
}

/// Whether `id` can be sent as a `Last-Event-ID` header value: not empty, and no control
/// character (tab aside) in it.
fn sendable(id: &str) -> bool {
    !id.is_empty() && ureq::http::HeaderValue::from_str(id).is_ok()
}

/// Reads events until the stream ends: how many, and why it ended; `None` to stop.
fn read(
    ctx: &mut Ctx,
    mut stream: Box<dyn Read + Send>,
    parser: &mut Parser,
    state: &mut State,
) -> Option<(u64, String)> {
    let mut buf = crate::stream_buffers::ReadBuffer::new(READ_SIZE);
    let mut events = 0u64;
    // The events of one read, handed on together: one wake-up of the printer per read.
    let mut batch = Vec::new();
    let mut parsed = Vec::new();
    loop {
        let piece = match buf.read(&mut stream) {
            Ok(piece) if piece.is_empty() => {
                return Some((events, "the stream ended".to_string()));
            }
            Ok(piece) => piece,
            Err(e) => return Some((events, format!("the stream broke ({e})"))),
        };
        // The events of one read were received together: one time for all of them.
        let received = SystemTime::now();
        let too_large = parser.feed_shared(&piece, &mut parsed).err();
        crate::stream_buffers::unpin(&mut parsed, &piece, buf.room(), |e| &mut e.data);
        for event in parsed.drain(..) {
            if events == 0 {
                ctx.succeeded();
            }
            events += 1;
            dispatch(ctx, event, state, &mut batch, received);
            if !ctx.hand_on_if_full(&mut batch) {
                return None;
            }
        }
        if !ctx.hand_on(&mut batch) {
            return None;
        }
        parsed.shrink_to(super::queue::MAX_UPDATES);
        // Over --max-body (after the events before it): asking again would only read the same.
        if let Some(e) = too_large {
            let url = ctx.url.to_string();
            ctx.fail(crate::Error::TooLarge {
                url,
                what: e.to_string(),
            });
            return None;
        }
        if !ctx.running() {
            return None;
        }
    }
}

/// Adds one event (and a warning about it, if any) to `out`.
fn dispatch(
    ctx: &Ctx,
    event: Event,
    state: &mut State,
    out: &mut Vec<Update>,
    received: SystemTime,
) {
    // Most streams set no ids: two empty ones are told equal without a comparison call.
    let id_changed =
        !(event.id.is_empty() && state.previous_id.is_empty()) && event.id != state.previous_id;
    let id_etag = id_changed.then(|| entity_tag(&event.id)).flatten();
    state.previous_id.clone_from(&event.id);
    let framing = framed(&event);
    // The name and id move into the event (a fast stream's allocations are its cost).
    let live = Live {
        sse: Some(SseFacts {
            id: (!event.id.is_empty()).then_some(event.id),
            event: event.event,
        }),
        binary: false,
    };
    if let Some((etag, previous, content)) = framing {
        let etag = etag.or(id_etag);
        if let (Some(previous), Some(held)) = (&previous, &state.etag) {
            if previous != held {
                out.push(ctx.notice_of(
                    Level::Warn,
                    format!(
                        "an update was missed: this one replaces {previous}, but the last one seen was {held}"
                    ),
                ));
            }
        }
        state.etag.clone_from(&etag);
        out.push(match content {
            Some(body) => live_event(
                ctx,
                EventKind::Value,
                SELF,
                Some(body),
                etag,
                live,
                received,
            ),
            // An update without content: the resource was deleted.
            None => live_event(ctx, EventKind::Removed, SELF, None, etag, live, received),
        });
        return;
    }
    let body = Body::from_stream_data(event.data);
    out.push(live_event(
        ctx,
        EventKind::Value,
        SELF,
        Some(body),
        id_etag,
        live,
        received,
    ));
}

/// A LiveResource-framed event (an `open` or `update` whose first data line is an object of
/// protocol headers): its ETag, Previous-ETag and content.
fn framed(event: &Event) -> Option<(Option<String>, Option<String>, Option<Body>)> {
    if !matches!(&*event.event, "open" | "update") {
        return None;
    }
    let text = event.text();
    let (headers, content) = headers_and_content(&text)?;
    let protocol = !headers.is_empty()
        && headers.iter().all(|(k, v)| {
            v.is_string() && FRAMING_HEADERS.contains(&k.to_ascii_lowercase().as_str())
        });
    if !protocol {
        return None;
    }
    let body = content.map(|c| {
        Body::typed(
            c.as_bytes().to_vec(),
            header(&headers, "Content-Type").map(str::to_string),
            false,
        )
    });
    Some((
        header(&headers, "ETag").map(str::to_string),
        header(&headers, "Previous-ETag").map(str::to_string),
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, data: &str) -> Event {
        Event {
            event: name.to_string().into(),
            data: data.to_string().into(),
            id: String::new(),
        }
    }

    fn unpin(events: &mut [Event], piece: &bytes::Bytes, room: usize) {
        crate::stream_buffers::unpin(events, piece, room, |e| &mut e.data);
    }

    #[test]
    fn events_that_are_a_small_part_of_their_read_are_copied_out_of_it() {
        let parse = |text: String| {
            let piece = bytes::Bytes::from(text);
            let mut events = Vec::new();
            Parser::new().feed_shared(&piece, &mut events).unwrap();
            unpin(&mut events, &piece, piece.len());
            let inside = |e: &Event| piece.as_ptr_range().contains(&e.data.as_ptr());
            (events.len(), events.iter().filter(|e| inside(e)).count())
        };
        // Mostly events: they stay slices of the read.
        assert_eq!(parse("data: 0123456789\n\n".repeat(100)), (100, 100));
        // A few bytes of events padded with a comment: each would hold the whole read.
        let padded = format!(":{}\ndata: 1\n\ndata: 2\n\n", "x".repeat(10_000));
        assert_eq!(parse(padded), (2, 0));
    }

    #[test]
    fn a_small_read_into_a_large_buffer_is_copied_out_of_it() {
        // One small event a read: each would keep the whole buffer (16 KiB here, up to
        // MAX_INPUT once a burst grew it) alive while it waits, though it is most of its read.
        let mut buf = crate::stream_buffers::ReadBuffer::new(READ_SIZE);
        let piece = buf.read(&mut &b"data: 0123456789\n\n"[..]).unwrap();
        let mut events = Vec::new();
        Parser::new().feed_shared(&piece, &mut events).unwrap();
        unpin(&mut events, &piece, buf.room());
        assert_eq!(events[0].data, "0123456789");
        assert!(!piece.as_ptr_range().contains(&events[0].data.as_ptr()));
        // A read that fills most of its buffer stays shared.
        let mut buf = crate::stream_buffers::ReadBuffer::new(128);
        let event = format!("data: {}\n\n", "x".repeat(50));
        let piece = buf.read(&mut event.repeat(2).as_bytes()).unwrap();
        let mut events = Vec::new();
        Parser::new().feed_shared(&piece, &mut events).unwrap();
        unpin(&mut events, &piece, buf.room());
        assert!(events
            .iter()
            .all(|e| piece.as_ptr_range().contains(&e.data.as_ptr())));
    }

    #[test]
    fn ids_with_control_characters_are_not_sent() {
        assert!(sendable("42"));
        assert!(sendable("a b\té")); // Space, tab and UTF-8 are fine in a header value.
        assert!(!sendable(""));
        assert!(!sendable("a\u{1b}[31m"));
        assert!(!sendable("a\u{7f}"));
    }

    #[test]
    fn liveresource_framing_is_told_from_json_data() {
        let (etag, previous, body) = framed(&ev(
            "update",
            "{\"ETag\":\"\\\"2\\\"\",\"Previous-ETag\":\"\\\"1\\\"\"}\n{\"a\":1}",
        ))
        .unwrap();
        assert_eq!(etag.as_deref(), Some("\"2\""));
        assert_eq!(previous.as_deref(), Some("\"1\""));
        assert_eq!(body.unwrap().json(), Some(&serde_json::json!({"a":1})));
        // Deleted: headers and no content.
        assert!(framed(&ev("update", "{\"ETag\":\"x\"}"))
            .unwrap()
            .2
            .is_none());
        // Data that is merely a JSON object, or another event name, is not framing.
        assert!(framed(&ev("update", "{\"count\":1}")).is_none());
        assert!(framed(&ev("update", "{\"ETag\":1}")).is_none());
        assert!(framed(&ev("message", "{\"ETag\":\"x\"}\n1")).is_none());
    }
}
