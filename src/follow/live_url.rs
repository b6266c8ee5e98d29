//! Discovery that decides from the response head what a URL is, and the events of live URLs
//! given directly (an event stream, a JSON-lines stream, a WebSocket): each message is news,
//! never deduplicated, and a URL that is done says so.

use std::io::Read;
use std::time::SystemTime;

use url::Url;

use super::{Ctx, REQUEST_TIMEOUT};
use crate::event::{Body, Event, EventKind, Live, Update};
use crate::http::{FetchError, Response, Stream};
use crate::live::{self, Kind};
use crate::mechanism::Mechanism;

/// What discovery found.
pub(super) enum Discovered {
    /// A document, read whole: followed as a resource, as before.
    Document(Response),
    /// A live URL given directly, ready to follow.
    Live(Opened),
}

/// A live URL's first connection (none yet for a WebSocket).
pub(super) enum Opened {
    WebSocket,
    EventStream(Box<dyn Read + Send>),
    Lines {
        seq: bool,
        body: Box<dyn Read + Send>,
    },
}

/// The first GET of `url`, deciding from the head what it is: a stream is not read here but
/// handed on with the bytes already received; a document is read whole (bounded by
/// `--max-body`). A `ws://` URL is not asked at all.
pub(super) fn discover(ctx: &Ctx, url: &Url) -> Result<Discovered, FetchError> {
    if live::by_scheme(url).is_some() {
        return Ok(Discovered::Live(Opened::WebSocket));
    }
    // Each read is bounded by the dead-connection timer, the same on every connection of a
    // stream, this first one included (so a document's head, which cannot be told from a
    // stream's before it comes, is waited for as long: 45 s by default).
    let idle = dead_after(ctx);
    let stream = ctx.http.open(url, url, &[], idle)?;
    let kind = live::from_head(stream.status, &stream.headers);
    ctx.trace(format!(
        "{} {}: {}{}",
        stream.status,
        stream
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("(no Content-Type)"),
        kind.describe(),
        if kind == Kind::Document {
            String::new()
        } else {
            silence(idle)
        }
    ));
    let chunked = kind == Kind::ChunkedJson;
    match live::answer(stream, ctx.options.max_body, REQUEST_TIMEOUT)? {
        live::Answer::Document(response) => Ok(Discovered::Document(response)),
        live::Answer::Stream { kind, body } => {
            if chunked {
                ctx.trace(
                    "the JSON keeps streaming, one value a line: a stream of lines".to_string(),
                );
            }
            Ok(Discovered::Live(match kind {
                Kind::EventStream => Opened::EventStream(body),
                _ => Opened::Lines {
                    seq: kind == Kind::JsonSeq,
                    body,
                },
            }))
        }
    }
}

/// Sends one event of a live URL; false when the consumer is gone.
pub(super) fn emit(
    ctx: &Ctx,
    kind: EventKind,
    transport: Mechanism,
    body: Option<Body>,
    etag: Option<String>,
    live: Live,
) -> bool {
    ctx.send(event(
        ctx,
        kind,
        transport,
        body,
        etag,
        live,
        SystemTime::now(),
    ))
}

/// One event of a live URL, to be sent (with others that came in the same read).
pub(super) fn event(
    ctx: &Ctx,
    kind: EventKind,
    transport: Mechanism,
    body: Option<Body>,
    etag: Option<String>,
    live: Live,
    time: SystemTime,
) -> Update {
    Update::Event(Event {
        kind,
        uri: ctx.uri.clone(),
        id: None,
        etag,
        transport,
        time,
        body,
        initial: false,
        live: Some(live),
    })
}

/// Says that this URL is done (`why`, traced): lrwatch exits once every URL is.
pub(super) fn done(ctx: &Ctx, why: &str) {
    ctx.trace(format!("{why}: done"));
    let _ = ctx.send(Update::Done {
        uri: ctx.uri.clone(),
    });
}

/// The request headers of a reconnect: `Accept` for the kind, and the caller's.
pub(super) fn reopen(ctx: &mut Ctx, extra: &[(&str, String)]) -> Result<Stream, FetchError> {
    let url = ctx.url.clone();
    let idle = dead_after(ctx);
    let shown: Vec<String> = extra.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    ctx.trace(format!(
        "{}{}",
        format!("GET {url} {}", shown.join(", ")).trim_end(),
        silence(idle)
    ));
    ctx.http.open(&url, &url, extra, idle)
}

/// A live URL's dead-connection timer: how long any read of any of its connections may wait
/// (three keep-alive periods).
fn dead_after(ctx: &Ctx) -> std::time::Duration {
    ctx.options.stream_idle()
}

/// The dead-connection timer, for the trace.
fn silence(idle: std::time::Duration) -> String {
    format!("; dead after {}s of silence", idle.as_secs_f64())
}
