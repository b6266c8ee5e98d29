//! The SSE parser: `lrwatch::wire::sse::Parser::feed` on arbitrary bytes, and the encoder.
//!
//! Input layout: byte 0 holds switches (bit 0: small limits, so the limit errors are reached;
//! bit 1: an encode -> parse round trip instead), byte 1 how many chunk sizes follow, then the
//! sizes (0..=16 bytes each, used in turn), then the stream. The stream is fed all at once and
//! again in those chunks, empty ones included, so CR/LF pairs and UTF-8 characters split across
//! chunks are exercised; both must give the same events, error, last event id and retry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lrwatch::wire::sse::{encode_comment, encode_event, encode_retry, Event, Parser, SseError};

fuzz_target!(|data: &[u8]| {
    let [flags, count, rest @ ..] = data else {
        return;
    };
    if flags & 2 != 0 {
        round_trip(rest);
        return;
    }
    let count = usize::from(*count % 16) + 1;
    if rest.len() < count {
        return;
    }
    let (sizes, stream) = rest.split_at(count);
    if sizes.iter().all(|s| s % 17 == 0) {
        return; // only empty pieces: the stream would never be fed
    }
    let parser = || {
        if flags & 1 != 0 {
            Parser::with_limits(40, 64)
        } else {
            Parser::new()
        }
    };

    let mut whole = parser();
    let at_once = whole.feed(stream);

    let mut chunked = parser();
    let mut events: Vec<Event> = Vec::new();
    let mut error: Option<SseError> = None;
    let mut pos = 0;
    for size in sizes.iter().cycle() {
        let end = (pos + usize::from(size % 17)).min(stream.len());
        match chunked.feed(&stream[pos..end]) {
            Ok(got) => events.extend(got),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        pos = end;
        if pos == stream.len() {
            // One more empty piece: a stream read may end with one.
            if let Err(e) = chunked.feed(&[]) {
                error = Some(e);
            }
            break;
        }
    }

    match at_once {
        Ok(all) => {
            assert_eq!(error, None, "chunked feeding failed where one feed did not");
            assert_eq!(events, all, "chunked events differ");
            assert_eq!(chunked.last_event_id(), whole.last_event_id());
            assert_eq!(chunked.retry(), whole.retry());
        }
        Err(e) => {
            assert_eq!(error, Some(e), "chunked feeding must fail the same way");
            // Every event before the failure was complete in one feed too: a prefix is fine.
        }
    }
});

/// `encode_event` (and the comment and retry encoders) read back by the parser.
fn round_trip(rest: &[u8]) {
    let mut parts = rest.splitn(4, |b| *b == 0xff);
    let mut next = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let (name, id, data, comment) = (next(), next(), next(), next());
    let name = (!name.is_empty()).then_some(name.as_str());
    let id = (!id.is_empty()).then_some(id.as_str());
    let single = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
            .collect()
    };

    let mut text = encode_comment(&comment);
    text.push_str(&encode_event(name, id, &data));
    text.push_str(&encode_retry(u64::from(rest.len() as u32)));
    let mut parser = Parser::new();
    let events = parser
        .feed(text.as_bytes())
        .expect("the encoder's output parses");
    assert_eq!(events.len(), 1, "{text:?}");
    let event = &events[0];
    let want_data = data.replace("\r\n", "\n").replace('\r', "\n");
    assert_eq!(event.data, want_data, "{text:?}");
    let want_name = name.map(single).filter(|n| !n.is_empty());
    assert_eq!(event.event, want_name.as_deref().unwrap_or("message"));
    assert_eq!(event.id, id.map(single).unwrap_or_default());
    assert_eq!(parser.retry(), Some(u64::from(rest.len() as u32)));
}
