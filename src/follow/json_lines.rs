//! A JSON-lines stream given directly (NDJSON, JSON Lines, RFC 7464 sequences, JSON that keeps
//! streaming): each line (record) is one event. A response that ends cleanly is done (a finite
//! export is printed once), unless `--reconnect` asks again (watches that time out); a broken
//! one is asked again with a backoff. A line that is not JSON is an event with a text body.

use std::io::Read;
use std::time::{Duration, Instant, SystemTime};

use super::live_url::{done, event, reopen};
use super::{Ctx, RequestOutcome};
use crate::event::{Body, EventKind, Level, Live};
use crate::http::FetchError;
use crate::live::Kind;
use crate::mechanism::Mechanism;
use crate::wire::json_lines::Splitter;

const SELF: Mechanism = Mechanism::JsonLines;
/// How soon a response that delivered lines is asked again after it ends (`--reconnect`) or
/// breaks.
const AGAIN_AFTER: Duration = Duration::from_millis(500);
/// How much of the response one read takes at first; reads that fill it double it, and a
/// quiet spell shrinks it again (as for event streams, see `stream_buffers::ReadBuffer`).
const READ_SIZE: usize = 16 * 1024;

/// Follows the stream whose first response body is `first` (RFC 7464 records when `seq`).
pub(super) fn run(mut ctx: Ctx, seq: bool, first: Box<dyn Read + Send>) {
    ctx.enter(SELF);
    let mut body = Some(first);
    let mut seq = seq;
    let mut line = 0u64;
    loop {
        let stream = match body.take() {
            Some(stream) => stream,
            None => match reconnect(&mut ctx) {
                Some(Some((stream, is_seq))) => {
                    seq = is_seq;
                    stream
                }
                Some(None) => continue,
                None => return,
            },
        };
        let max = usize::try_from(ctx.options.max_body).unwrap_or(usize::MAX);
        let mut splitter = if seq {
            Splitter::json_seq(max)
        } else {
            Splitter::lines(max)
        };
        let opened = Instant::now();
        let Some((events, clean, why)) = read(&mut ctx, stream, &mut splitter, &mut line) else {
            return;
        };
        if clean && !ctx.options.live.reconnect {
            done(&ctx, "the response ended");
            return;
        }
        // A response that delivered lines worked: asked again soon (a watch that timed out).
        // So did one that stayed open a keep-alive period or more (a quiet watch that the
        // dead-connection timer ended): the server answered. One that ends or breaks at once
        // without any is a failure: the backoff grows.
        if events > 0 || opened.elapsed() >= ctx.options.keepalive {
            ctx.succeeded();
            ctx.trace(format!(
                "{why}; asking again in {:.1}s",
                AGAIN_AFTER.as_secs_f64()
            ));
            if !ctx.sleep(AGAIN_AFTER) {
                return;
            }
        } else if let RequestOutcome::Stop = ctx.retry_later(&format!("{why} without a line")) {
            return;
        }
    }
}

/// Asks the URL again: the stream and whether it is a JSON text sequence; `Some(None)` to try
/// again after a backoff (waited out); `None` to stop.
fn reconnect(ctx: &mut Ctx) -> Option<Option<(Box<dyn Read + Send>, bool)>> {
    let accept = (
        "Accept",
        "application/x-ndjson, application/jsonl, application/json-seq, application/json"
            .to_string(),
    );
    let problem = match reopen(ctx, &[accept]) {
        Err(e @ (FetchError::TooLarge(_) | FetchError::HeadTooLarge(_))) => {
            let url = ctx.url.clone();
            ctx.fail(e.into_error(&url));
            return None;
        }
        Err(e) => e.to_string(),
        Ok(stream) if stream.status == 204 => {
            done(ctx, "the URL answered 204 (no more lines)");
            return None;
        }
        Ok(stream) if (200..300).contains(&stream.status) => {
            let kind = crate::live::from_head(stream.status, &stream.headers);
            return Some(Some((stream.body, kind == Kind::JsonSeq)));
        }
        Ok(stream) => format!("HTTP {} for the stream of lines", stream.status),
    };
    match ctx.retry_later(&problem) {
        RequestOutcome::Stop => None,
        _ => Some(None),
    }
}

/// Reads records until the response ends: how many, whether it ended cleanly, and why it
/// ended; `None` to stop. `line` numbers records across responses, for warnings.
fn read(
    ctx: &mut Ctx,
    mut stream: Box<dyn Read + Send>,
    splitter: &mut Splitter,
    line: &mut u64,
) -> Option<(u64, bool, String)> {
    let mut buf = crate::stream_buffers::ReadBuffer::new(READ_SIZE);
    let mut events = 0u64;
    let mut records = Vec::new();
    // The events of one read, handed on together (one wake-up of the printer per read), a
    // line that is not JSON said in its place among them.
    let mut batch = Vec::new();
    loop {
        let mut too_long = None;
        let ended = match buf.read(&mut stream) {
            Ok(piece) if piece.is_empty() => {
                records.extend(splitter.finish());
                true
            }
            Ok(piece) => {
                too_long = splitter.feed_shared(&piece, &mut records).err();
                crate::stream_buffers::unpin(&mut records, &piece, buf.room(), |r| r);
                false
            }
            Err(e) => {
                return Some((events, false, format!("the response broke ({e})")));
            }
        };
        let received = SystemTime::now();
        for record in records.drain(..) {
            *line += 1;
            events += 1;
            let body = Body::new(record, None);
            if !body.is_json() {
                batch.push(ctx.notice_of(
                    Level::Trace,
                    format!("line {line} is not JSON; passed on as text"),
                ));
            }
            let live = Live::default();
            batch.push(event(
                ctx,
                EventKind::Value,
                SELF,
                Some(body),
                None,
                live,
                received,
            ));
            if !ctx.hand_on_if_full(&mut batch) {
                return None;
            }
        }
        if !ctx.hand_on(&mut batch) {
            return None;
        }
        records.shrink_to(super::queue::MAX_UPDATES);
        // Over --max-body (after the lines before it): asking again would only read the same.
        if let Some(e) = too_long {
            let url = ctx.url.to_string();
            ctx.fail(crate::Error::TooLarge {
                url,
                what: e.to_string(),
            });
            return None;
        }
        if ended {
            return Some((events, true, "the response ended".to_string()));
        }
        if !ctx.running() {
            return None;
        }
    }
}
