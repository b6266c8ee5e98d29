//! The connection loop shared by the per-resource Server-Sent Events transports: connect,
//! check the answer, catch up, parse events, reconnect with `Last-Event-ID` after the
//! server's `retry` delay — never treating a stream that ends as done, never spinning.

use std::io::Read;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::{Ctx, Next, RequestOutcome, Verified};
use crate::mechanism::Mechanism;
use crate::wire::sse::{Event, Parser};

/// The reconnection delay when the server did not set one.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);

/// A stream that ends sooner than this after it opened ended quickly (see [`QuickEnds`]).
const QUICK: Duration = Duration::from_secs(1);
/// How many quick ends in a row are reconnected after the server's `retry` alone.
const QUICK_FREE: u32 = 2;
/// The least delay after the next quick end, doubling with each one more...
const QUICK_FLOOR: Duration = Duration::from_millis(100);
/// ... up to this: at most two reconnects a second, as Firefox's EventSource floors `retry`
/// (500 ms) and as a WebSocket or JSON-lines URL is asked again.
const QUICK_FLOOR_MOST: Duration = Duration::from_millis(500);

/// The delay before reconnecting a stream that delivered events and ended: the server's
/// `retry`, unless streams keep ending quickly. Why: a server that answers `retry: 0`, sends
/// an event and closes, every time, had lrwatch reconnect thousands of times a second (7,490
/// connections in 3 s, each event news). One quick end, or two (a finite stream, then the
/// 204 that says it is done), costs nothing; after that the delay grows from 100 ms to
/// 500 ms, and a stream that stays open a second starts the count over.
#[derive(Debug, Default)]
pub(super) struct QuickEnds {
    in_a_row: u32,
}

impl QuickEnds {
    /// The delay before reconnecting a stream that stayed open for `lived`, given `retry`.
    pub(super) fn delay(&mut self, retry: Duration, lived: Duration) -> Duration {
        if lived >= QUICK {
            self.in_a_row = 0;
            return retry;
        }
        self.in_a_row = self.in_a_row.saturating_add(1);
        let Some(over) = self.in_a_row.checked_sub(QUICK_FREE + 1) else {
            return retry;
        };
        let floor = QUICK_FLOOR.saturating_mul(1 << over.min(8));
        retry.max(floor.min(QUICK_FLOOR_MOST))
    }
}

/// What an event handler wants next.
pub(super) enum Flow {
    Continue,
    Stop,
}

/// Runs `mechanism` over an SSE stream from the resource's offer, handing each event to
/// `on_event`, until shutdown or a fall back.
pub(super) fn run(
    ctx: &mut Ctx,
    mechanism: Mechanism,
    mut on_event: impl FnMut(&mut Ctx, Event) -> Flow,
) -> Next {
    let mut last_id = String::new();
    let mut retry = DEFAULT_RETRY;
    let mut failures = 0u32;
    let mut connects = 0u32;
    let mut quick_ends = QuickEnds::default();
    loop {
        if !ctx.running() {
            return Next::Stop;
        }
        let (target, reliable) = match ctx.caps.as_ref().and_then(|c| c.offer(mechanism)) {
            Some(offer) => (offer.target.clone(), offer.reliable),
            None if ctx.options.transport.is_none() => return Next::Switch(ctx.choose_auto()),
            None => (ctx.url.clone(), false),
        };
        let mut headers = vec![("Accept", "text/event-stream".to_string())];
        if !last_id.is_empty() {
            headers.push(("Last-Event-ID", last_id.clone()));
        }
        ctx.trace(format!(
            "GET {target} (event stream{})",
            if last_id.is_empty() {
                String::new()
            } else {
                format!(", Last-Event-ID: {last_id}")
            }
        ));
        let mut server_says = None;
        let problem = match ctx
            .http
            .open(&target, &ctx.url, &headers, ctx.options.stream_idle())
        {
            Err(e) => e.to_string(),
            Ok(stream) => {
                let content_type = stream
                    .headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if matches!(stream.status, 404 | 410) {
                    ctx.emit_removed(mechanism, false);
                    format!("HTTP {} for the stream", stream.status)
                } else if stream.status != 200 {
                    server_says = super::retry_after(
                        stream
                            .headers
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok()),
                    );
                    format!("HTTP {} for the stream", stream.status)
                } else if !content_type.starts_with("text/event-stream") {
                    // Not a stream at all: retrying cannot help, so count it as every failure.
                    failures = failures.max(super::FALL_BACK_AFTER - 1);
                    format!("the stream answered with Content-Type '{content_type}', not text/event-stream")
                } else {
                    ctx.trace("stream open".to_string());
                    // A reliable stream opens with the current value: fetching as well would
                    // race it. On a reconnect its resumption depends on the server still
                    // knowing our Last-Event-ID (a restarted server may reuse it), so fetch
                    // then too; pushes that do not follow on are settled by apply_push. Any
                    // other stream only pushes what changes from now on: fetch for the gap.
                    let reconnect = !last_id.is_empty() || connects > 0;
                    connects += 1;
                    if (!reliable || reconnect) && !ctx.catch_up(mechanism) {
                        return Next::Stop;
                    }
                    let mut parser = ctx.options.sse_parser();
                    let opened = Instant::now();
                    let mut events = 0u64;
                    // Open is not yet working: the first event is (see below).
                    let mut counted = |ctx: &mut Ctx, event: Event| {
                        if events == 0 {
                            ctx.succeeded();
                        }
                        events += 1;
                        on_event(ctx, event)
                    };
                    let ended = read_events(ctx, mechanism, stream.body, &mut parser, &mut counted);
                    let Some(ended) = ended else {
                        return Next::Stop;
                    };
                    if !parser.last_event_id().is_empty() {
                        last_id = parser.last_event_id().to_string();
                    }
                    if let Some(ms) = parser.retry() {
                        retry = Duration::from_millis(ms);
                    }
                    // Like EventSource: a stream that ends after delivering events (or after
                    // staying open a keep-alive period, quiet as a resource may be, or that we
                    // ended) is reconnected after the server's retry delay. One that ends
                    // before any event is a failure like any other: a server that answers
                    // `retry: 0` and closes, again and again, gets a growing backoff (its
                    // `retry` a floor) and, in auto, a fall back after three.
                    if events > 0 || ended.ours || opened.elapsed() >= ctx.options.keepalive {
                        failures = 0;
                        ctx.succeeded();
                        let delay = quick_ends.delay(retry, opened.elapsed());
                        ctx.trace(format!(
                            "{}; reconnecting in {:.1}s",
                            ended.why,
                            delay.as_secs_f64()
                        ));
                        if !ctx.sleep(delay) {
                            return Next::Stop;
                        }
                        continue;
                    }
                    server_says = Some(retry);
                    format!("{} before any event", ended.why)
                }
            }
        };
        failures += 1;
        if let Some(next) = ctx.fall_back(mechanism, failures, &problem) {
            return next;
        }
        if let RequestOutcome::Stop = ctx.retry_after(&problem, server_says) {
            return Next::Stop;
        }
    }
}

/// Why a stream ended.
struct Ended {
    why: String,
    /// We ended it (a check found a missed push), not the server.
    ours: bool,
}

impl Ended {
    fn by_server(why: String) -> Option<Ended> {
        Some(Ended { why, ours: false })
    }
}

/// Reads and dispatches events until the stream ends; why it ended, or `None` to stop. With
/// `--verify`, the body is read on a thread of its own so that this one can check the resource
/// every period while the stream is quiet; a check that finds a missed change ends the stream
/// (the caller reconnects, which resubscribes).
fn read_events(
    ctx: &mut Ctx,
    mechanism: Mechanism,
    mut body: Box<dyn Read + Send>,
    parser: &mut Parser,
    on_event: &mut impl FnMut(&mut Ctx, Event) -> Flow,
) -> Option<Ended> {
    if ctx.options.verify.is_none() {
        let mut buf = vec![0u8; READ_SIZE];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => return Ended::by_server("the stream ended".to_string()),
                Ok(n) => n,
                Err(e) => return Ended::by_server(format!("the stream broke ({e})")),
            };
            if !dispatch(ctx, &buf[..n], parser, on_event) {
                return None;
            }
        }
    }
    let chunks = match spawn_reader(body) {
        Ok(chunks) => chunks,
        Err(e) => {
            return Ended::by_server(format!("cannot start a thread to read the stream ({e})"))
        }
    };
    loop {
        let wait = ctx.verify_in().unwrap_or(Duration::MAX);
        match chunks.recv_timeout(wait) {
            Ok(Ok(bytes)) => {
                if !dispatch(ctx, &bytes, parser, on_event) {
                    return None;
                }
            }
            Ok(Err(why)) => return Ended::by_server(why),
            Err(RecvTimeoutError::Disconnected) => {
                return Ended::by_server("the stream ended".to_string())
            }
            Err(RecvTimeoutError::Timeout) => match ctx.verify(mechanism) {
                Verified::Fine => {}
                Verified::Missed => {
                    return Some(Ended {
                        why: "a check found a missed push".to_string(),
                        ours: true,
                    })
                }
                Verified::Stop => return None,
            },
        }
    }
}

/// How much of a stream is read at once.
const READ_SIZE: usize = 16 * 1024;
/// Chunks read ahead of the parser: a few, so a flooding server is held back by TCP.
const READ_AHEAD: usize = 4;

/// Reads `body` on a thread of its own into a bounded channel: chunks, then why it ended. The
/// thread ends with the stream, or at its next read once the receiver is gone.
fn spawn_reader(
    mut body: Box<dyn Read + Send>,
) -> std::io::Result<Receiver<std::result::Result<Vec<u8>, String>>> {
    let (tx, rx) = mpsc::sync_channel(READ_AHEAD);
    std::thread::Builder::new()
        .name("stream reader".into())
        .stack_size(super::FOLLOWER_STACK)
        .spawn(move || {
            let mut buf = vec![0u8; READ_SIZE];
            loop {
                let chunk = match body.read(&mut buf) {
                    Ok(0) => Err("the stream ended".to_string()),
                    Ok(n) => Ok(buf[..n].to_vec()),
                    Err(e) => Err(format!("the stream broke ({e})")),
                };
                let last = chunk.is_err();
                if tx.send(chunk).is_err() || last {
                    return;
                }
            }
        })?;
    Ok(rx)
}

/// Parses bytes and hands each event over; false to stop.
fn dispatch(
    ctx: &mut Ctx,
    bytes: &[u8],
    parser: &mut Parser,
    on_event: &mut impl FnMut(&mut Ctx, Event) -> Flow,
) -> bool {
    let events = match parser.feed(bytes) {
        Ok(events) => events,
        // Over --max-body: retrying would only read the same again.
        Err(e) => {
            let url = ctx.url.to_string();
            ctx.fail(crate::Error::TooLarge {
                url,
                what: e.to_string(),
            });
            return false;
        }
    };
    for event in events {
        if let Flow::Stop = on_event(ctx, event) {
            return false;
        }
    }
    ctx.running()
}

/// Splits a form B/C `update` (or reliable `open`) event's data into the JSON headers of its
/// first line and the content after it; `None` content when there is no content line (the
/// resource was deleted). `None` overall when the first line is not a JSON object.
pub(super) fn headers_and_content(
    data: &str,
) -> Option<(serde_json::Map<String, serde_json::Value>, Option<&str>)> {
    let (first, content) = match data.split_once('\n') {
        Some((first, content)) => (first, Some(content)),
        None => (data, None),
    };
    match serde_json::from_str(first) {
        Ok(serde_json::Value::Object(headers)) => Some((headers, content)),
        _ => None,
    }
}

/// A header from an event's JSON headers object, by case-insensitive name.
pub(super) fn header<'a>(
    headers: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_ends_past_two_in_a_row_are_slowed_to_two_a_second_and_a_long_stream_starts_over() {
        let ms = Duration::from_millis;
        let mut q = QuickEnds::default();
        let quick: Vec<_> = (0..8).map(|_| q.delay(ms(0), ms(10))).collect();
        assert_eq!(
            quick,
            [0, 0, 100, 200, 400, 500, 500, 500].map(ms),
            "free twice, then from 100 ms doubling to 500 ms"
        );
        // A stream that stayed open a second: its own delay is the server's, and the count
        // starts over.
        assert_eq!(q.delay(ms(0), QUICK), ms(0));
        assert_eq!(q.delay(ms(0), ms(10)), ms(0));
        assert_eq!(q.delay(ms(0), ms(10)), ms(0));
        assert_eq!(q.delay(ms(0), ms(10)), ms(100));
        // A server's retry longer than the floor is kept.
        assert_eq!(q.delay(ms(3000), ms(10)), ms(3000));
    }

    #[test]
    fn update_data_splits() {
        let (h, c) = headers_and_content("{\"ETag\":\"\\\"2\\\"\"}\n{\"a\":1}\nmore").unwrap();
        assert_eq!(header(&h, "etag"), Some("\"2\""));
        assert_eq!(c, Some("{\"a\":1}\nmore"));
        let (_, c) = headers_and_content("{\"ETag\":\"x\"}").unwrap();
        assert_eq!(c, None);
        assert!(headers_and_content("not json\nx").is_none());
        assert!(headers_and_content("[1]").is_none());
    }
}
