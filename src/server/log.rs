//! The request log of `lrwatch serve -v`, for people debugging a client: one line per request
//! (time, peer, method, target, the protocol headers that matter, status, how long it was
//! held), one per push on a stream and per WebSocket message in or out. Without `-v` only
//! errors are logged.
//!
//! The library prints nothing: lines go to a sink the binary gives (stderr). Everything a
//! client sent is escaped first (control, bidi and invisible characters) and cut to a length,
//! so a client cannot rewrite the terminal of the person reading the log, nor flood it.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::http1::{Rejected, Request};
use crate::sanitize::for_terminal;

/// The request headers a log line shows: those the protocol and CORS are made of.
const SHOWN: [&str; 12] = [
    "if-none-match",
    "wait",
    "prefer",
    "uri",
    "last-event-id",
    "accept",
    "content-type",
    "origin",
    "access-control-request-method",
    "access-control-request-headers",
    "upgrade",
    "sec-websocket-protocol",
];
/// The most characters of one client-sent field (a target, a header value) a line shows.
const MAX_FIELD: usize = 200;
/// The most characters of a pushed event or a WebSocket message a line shows.
const MAX_MESSAGE: usize = 300;

type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// Where the server's log lines go, and whether requests are logged or only errors.
#[derive(Clone, Default)]
pub struct Log {
    verbose: bool,
    sink: Option<Sink>,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("verbose", &self.verbose)
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

impl Log {
    /// Lines to `sink`, each without its line end: every request when `verbose`, else errors.
    pub fn to(verbose: bool, sink: impl Fn(&str) + Send + Sync + 'static) -> Log {
        Log {
            verbose,
            sink: Some(Arc::new(sink)),
        }
    }

    /// Whether requests, pushes and messages are logged.
    pub(crate) fn verbose(&self) -> bool {
        self.verbose && self.sink.is_some()
    }

    fn write(&self, line: &str) {
        if let Some(sink) = &self.sink {
            sink(line);
        }
    }

    /// A failure of the server itself, logged with or without `-v`.
    pub(crate) fn error(&self, what: &str) {
        self.write(&format!("{} error: {what}", now()));
    }

    /// One answered request: `status` is the code, or what took the connection over.
    pub(crate) fn request(&self, peer: &str, request: &Request, status: &str, held: Duration) {
        if self.verbose() {
            self.write(&request_line(peer, request, status, held));
        }
    }

    /// One request the HTTP reader refused before routing (malformed, too large, too slow):
    /// what could be read of its method and target, the status and why.
    pub(crate) fn rejected(&self, peer: &str, rejected: &Rejected) {
        if self.verbose() {
            self.write(&rejected_line(peer, rejected));
        }
    }

    /// One attempt to deliver a webhook notification (a push too): to whom, of what, and
    /// what came of it.
    pub(crate) fn delivery(&self, callback_uri: &str, resource: &str, outcome: &str) {
        if self.verbose() {
            self.write(&format!(
                "{} callback POST {} for {} -> {outcome}",
                now(),
                clip(callback_uri, MAX_FIELD),
                clip(resource, MAX_FIELD)
            ));
        }
    }

    /// The log of one connection taken over by a stream or a socket.
    pub(crate) fn tap(&self, peer: Option<SocketAddr>) -> Tap {
        Tap {
            log: self.clone(),
            peer: peer.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            opened: Instant::now(),
        }
    }
}

/// The log of one stream or socket: its pushes and messages, and its end.
#[derive(Debug, Clone)]
pub(crate) struct Tap {
    log: Log,
    peer: String,
    opened: Instant,
}

impl Tap {
    fn line(&self, what: &str, text: &str) {
        if self.log.verbose() {
            let text = clip(text, MAX_MESSAGE);
            self.log
                .write(&format!("{} {} {what} {text}", now(), self.peer));
        }
    }

    /// Events written on a stream, one line each (keep-alive comments and `retry:` are not
    /// pushes).
    pub(crate) fn push(&self, written: &str) {
        for event in written.split("\n\n") {
            let event = event.trim_matches('\n');
            if !(event.is_empty() || event.starts_with(':') || event.starts_with("retry:")) {
                self.line("push", event);
            }
        }
    }

    /// A WebSocket message received.
    pub(crate) fn message_in(&self, text: &str) {
        self.line("ws <-", text);
    }

    /// A WebSocket message sent.
    pub(crate) fn message_out(&self, text: &str) {
        self.line("ws ->", text);
    }

    /// The stream or socket ended.
    pub(crate) fn closed(&self) {
        self.line("closed", &format!("after {}", held(self.opened.elapsed())));
    }
}

/// `time peer METHOD target header=value... -> status held`.
fn request_line(peer: &str, request: &Request, status: &str, took: Duration) -> String {
    let mut target = request.path.clone();
    if let Some(q) = &request.query {
        target.push('?');
        target.push_str(q);
    }
    let mut line = format!(
        "{} {peer} {} {}",
        now(),
        clip(&request.method, 20),
        clip(&target, MAX_FIELD)
    );
    for (name, value) in &request.headers {
        // `Accept: */*` is every client's default: it says nothing.
        if SHOWN.contains(&name.as_str()) && !(name == "accept" && value == "*/*") {
            line.push_str(&format!(" {name}={}", clip(value, MAX_FIELD)));
        }
    }
    line.push_str(&format!(" -> {status} {}", held(took)));
    line
}

/// `time peer METHOD target -> status rejected: why`, with `-` for what never arrived.
fn rejected_line(peer: &str, rejected: &Rejected) -> String {
    let word = |w: &Option<String>, max| {
        w.as_deref()
            .map_or_else(|| "-".to_owned(), |w| clip(w, max))
    };
    format!(
        "{} {peer} {} {} -> {} rejected: {}",
        now(),
        word(&rejected.method, 20),
        word(&rejected.target, MAX_FIELD),
        rejected.status,
        clip(&rejected.why, MAX_FIELD)
    )
}

/// Client text, escaped for a terminal and cut to `max` characters.
fn clip(text: &str, max: usize) -> String {
    let escaped = for_terminal(text, false);
    if escaped.chars().count() <= max {
        return escaped.into_owned();
    }
    let mut cut: String = escaped.chars().take(max).collect();
    cut.push('…');
    cut
}

fn held(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn request(headers: &[(&str, &str)]) -> Request {
        Request {
            query: Some("form=a".into()),
            ..Request::for_test("GET", "/counter/a", headers, b"")
        }
    }

    #[test]
    fn a_request_line_shows_the_protocol_headers_escaped() {
        let line = request_line(
            "127.0.0.1:9",
            &request(&[
                ("If-None-Match", "\"1\u{202e}\""),
                ("User-Agent", "curl"),
                ("Wait", "5"),
            ]),
            "304",
            Duration::from_millis(5002),
        );
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(time.ends_with('Z') && time.len() == 24, "{time}");
        assert_eq!(
            rest,
            "127.0.0.1:9 GET /counter/a?form=a if-none-match=\"1\\u{202e}\" wait=5 -> 304 5.002s"
        );
        assert_eq!(clip(&"x".repeat(5), 3), "xxx…");
    }

    #[test]
    fn a_refused_request_line_is_escaped_and_says_what_never_arrived() {
        let rejected = Rejected {
            method: Some("G\u{1b}T".into()),
            target: None,
            status: 400,
            why: "malformed request: invalid token".into(),
        };
        let line = rejected_line("127.0.0.1:9", &rejected);
        let (_, rest) = line.split_once(' ').unwrap();
        assert_eq!(
            rest,
            "127.0.0.1:9 G\\x1bT - -> 400 rejected: malformed request: invalid token"
        );
    }

    #[test]
    fn only_errors_without_verbose() {
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let s = Arc::clone(&seen);
        let log = Log::to(false, move |l| s.lock().unwrap().push(l.to_owned()));
        log.request("p", &request(&[]), "200", Duration::ZERO);
        log.tap(None).message_in("hi");
        log.error("no more threads");
        let lines = seen.lock().unwrap().clone();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].ends_with(" error: no more threads"));
        // Keep-alive comments are not pushes.
        let s = Arc::clone(&seen);
        let tap = Log::to(true, move |l| s.lock().unwrap().push(l.to_owned())).tap(None);
        tap.push(": keep-alive\n\n");
        tap.push("event: update\ndata: 1\n\n");
        let lines = seen.lock().unwrap().clone();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[1].ends_with(" - push event: update\\x0adata: 1"),
            "{lines:?}"
        );
    }
}
