//! Discovery that decides from the response head what a URL is, and the events of live URLs
//! given directly (an event stream, a JSON-lines stream, a WebSocket): each message is news,
//! never deduplicated, and a URL that is done says so.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, SystemTime};

use url::Url;

use super::{Ctx, REQUEST_TIMEOUT};
use crate::event::{Body, Event, EventKind, Live, Update};
use crate::http::{FetchError, Response, Stream};
use crate::live::{self, Kind};
use crate::mechanism::Mechanism;

/// How long a chunked JSON answer that has sent one complete line may stay open without more
/// before it counts as a stream: a document's server ends its body at once.
const STILL_OPEN: Duration = Duration::from_secs(1);

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
    // Each read is bounded like a stream's (the dead-connection timer) and a request's.
    let idle = REQUEST_TIMEOUT.min(ctx.options.stream_idle());
    let stream = ctx.http.open(url, url, &[], idle)?;
    let kind = live::from_head(stream.status, &stream.headers);
    ctx.trace(format!(
        "{} {}: {}",
        stream.status,
        stream
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("(no Content-Type)"),
        kind.describe()
    ));
    match kind {
        Kind::EventStream => Ok(Discovered::Live(Opened::EventStream(stream.body))),
        Kind::JsonLines | Kind::JsonSeq => Ok(Discovered::Live(Opened::Lines {
            seq: kind == Kind::JsonSeq,
            body: stream.body,
        })),
        Kind::ChunkedJson => chunked_json(ctx, stream),
        Kind::Document | Kind::WebSocket => {
            let max = ctx.options.max_body;
            let mut body = Vec::new();
            let mut reader = stream.body;
            reader
                .by_ref()
                .take(max.saturating_add(1))
                .read_to_end(&mut body)
                .map_err(crate::http::io_failure)?;
            if body.len() as u64 > max {
                return Err(FetchError::TooLarge(max));
            }
            Ok(Discovered::Document(document(
                stream.status,
                stream.url,
                stream.moved_permanently,
                stream.headers,
                body,
            )))
        }
    }
}

fn document(
    status: u16,
    url: Url,
    moved_permanently: bool,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
) -> Response {
    Response {
        status,
        url,
        moved_permanently,
        headers,
        body,
    }
}

/// A chunked JSON answer, read as it arrives: a stream of lines once a complete first line
/// that is a JSON value is followed by more, or by a body that stays open; else a document,
/// read to its end.
fn chunked_json(ctx: &Ctx, stream: Stream) -> Result<Discovered, FetchError> {
    let max = ctx.options.max_body;
    let chunks = spawn_reader(stream.body).map_err(crate::http::io_failure)?;
    let mut received = Vec::new();
    let is_lines = loop {
        let first_complete = live::first_line_is_a_value(&received);
        let wait = if first_complete {
            STILL_OPEN
        } else {
            REQUEST_TIMEOUT
        };
        match chunks.recv_timeout(wait) {
            Ok(Ok(bytes)) if bytes.is_empty() => break false,
            Ok(Ok(bytes)) => {
                received.extend_from_slice(&bytes);
                if live::first_line_is_a_value(&received) && live::more_after_first_line(&received)
                {
                    break true;
                }
                if received.len() as u64 > max {
                    return Err(FetchError::TooLarge(max));
                }
            }
            Ok(Err(e)) => return Err(crate::http::io_failure(e)),
            Err(RecvTimeoutError::Timeout) if first_complete => break true,
            // The reader's own reads are bounded by the request's timeout.
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break false,
        }
    };
    if !is_lines {
        return Ok(Discovered::Document(document(
            stream.status,
            stream.url,
            stream.moved_permanently,
            stream.headers,
            received,
        )));
    }
    ctx.trace("the JSON keeps streaming, one value a line: a stream of lines".to_string());
    let rest = Chunks {
        chunks,
        current: io::Cursor::new(Vec::new()),
        ended: false,
    };
    Ok(Discovered::Live(Opened::Lines {
        seq: false,
        body: Box::new(io::Cursor::new(received).chain(rest)),
    }))
}

/// Reads `body` on a thread of its own into a bounded channel: chunks, an empty chunk at its
/// end, or the error that broke it. The thread ends with the body, or at its next read once
/// the receiver is gone.
fn spawn_reader(mut body: Box<dyn Read + Send>) -> io::Result<Receiver<io::Result<Vec<u8>>>> {
    let (tx, rx) = mpsc::sync_channel(4);
    std::thread::Builder::new()
        .name("chunked reader".into())
        .stack_size(super::FOLLOWER_STACK)
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
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || self.ended || buf.is_empty() {
                return Ok(n);
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

/// Follows a live URL given directly until it is done, fails, or following stops.
pub(super) fn follow(ctx: Ctx, opened: Opened) {
    match opened {
        Opened::WebSocket => super::ws_url::run(ctx),
        Opened::EventStream(body) => super::live_sse::run(ctx, body),
        Opened::Lines { seq, body } => super::json_lines::run(ctx, seq, body),
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
    ctx.send(Update::Event(Event {
        kind,
        uri: ctx.uri.clone(),
        id: None,
        etag,
        transport,
        time: SystemTime::now(),
        body,
        initial: false,
        live: Some(live),
    }))
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
    let shown: Vec<String> = extra.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    ctx.trace(
        format!("GET {url} {}", shown.join(", "))
            .trim_end()
            .to_string(),
    );
    ctx.http.open(&url, &url, extra, ctx.options.stream_idle())
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
        };
        let mut all = String::new();
        rest.read_to_string(&mut all).unwrap();
        assert_eq!(all, "one\ntwo\n");
    }
}
