//! The follow engine: one follower per resource, each discovering what the resource offers,
//! choosing a transport, and sending events over one channel to the consumer.
//!
//! Threads: a follower starts on a thread of its own (a launcher starts at most
//! `MAX_STARTING` at a time); one that long-polls or reads a stream keeps it, one that joins a
//! multiplexed connection is parked there without one (`parked`); short requests of all
//! followers run on shared threads (`pool`).
//!
//! A transport is a module with a `run(&mut Ctx) -> Next` loop that turns responses into
//! events through `Ctx::apply`; adding one means adding a module and a match arm in
//! `drive`. Deduplication, removal and capability re-reading live in `Ctx`, so
//! every transport obeys "only real changes, never the same value twice in a row".
//!
//! This file holds the public API (`Client`, `Follow`) and what the engine's modules share
//! (`Shared`, thread settings); `options` the options, `gate` the start-up gate and
//! discovery, `ctx` a follower's state, `drive` the transport loop.

mod callbacks;
mod changes;
mod ctx;
mod drive;
mod gate;
mod hint_stream;
mod hub;
mod hubs;
mod json_lines;
mod live_sse;
mod live_url;
mod multiplex_stream;
mod multiplex_wait;
mod multiplexed;
mod options;
mod parked;
mod poll;
mod pool;
mod queue;
mod shutdown;
mod sse;
mod value_stream;
mod value_wait;
mod websocket;
mod ws_url;

use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::http::{HeaderName, HeaderValue};
use url::Url;

// What the engine's modules name through their parent (`super::Ctx`).
use ctx::{
    retry_after, understood, wait_slack, Ctx, Feed, Next, Push, RequestOutcome, Verified,
    FALL_BACK_AFTER, REQUEST_TIMEOUT,
};
pub use options::{
    Options, DEFAULT_FALL_BACK_FOR, DEFAULT_INTERVAL, DEFAULT_KEEPALIVE, DEFAULT_VERIFY,
    DEFAULT_WAIT,
};
use shutdown::Shutdown;

use crate::error::{Error, Result};
use crate::event::{Notice, Update};
use crate::http::HttpClient;

/// How many short requests run at once, for all followers (see `pool`).
const REQUEST_THREADS: usize = 8;
/// How many parked followers handle their events at once (see `parked`): as many as may wait
/// on a short request, so that those waits do not hold back the others' pushes.
const PARKED_THREADS: usize = REQUEST_THREADS;
/// A follower thread's stack: followers keep little on it (the short requests run on the
/// pool), and a small one lets thousands run at once.
const FOLLOWER_STACK: usize = 256 * 1024;

/// Parses a URL to follow: an http or https URL (see [`parse_url`]), or a `ws://` or
/// `wss://` URL, followed as a WebSocket given directly.
pub fn parse_follow_url(s: &str) -> Result<Url> {
    match Url::parse(s) {
        Ok(url) if matches!(url.scheme(), "ws" | "wss") && url.host().is_some() => Ok(url),
        _ => parse_url(s),
    }
}

/// Parses a URL to follow: absolute, `http` or `https`.
pub fn parse_url(s: &str) -> Result<Url> {
    let invalid = |reason: String| Error::InvalidUrl {
        url: s.to_string(),
        reason,
    };
    let url = Url::parse(s).map_err(|e| invalid(e.to_string()))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        "http" | "https" => Err(invalid("it has no host".to_string())),
        other => Err(invalid(format!(
            "the scheme '{other}' is not http or https"
        ))),
    }
}

/// A LiveResource client: name resources, receive their values and every change as events,
/// whatever transport carries them.
///
/// ```no_run
/// use lrwatch::{Client, Options, Update};
///
/// let client = Client::new(Options::default())?;
/// let url = lrwatch::parse_url("http://127.0.0.1:8080/counter/a")?;
/// for update in client.follow([url]) {
///     match update {
///         Update::Event(event) => println!("{} {:?}", event.kind.as_str(), event.body),
///         Update::Failed(error) => return Err(error),
///         _ => {}
///     }
/// }
/// # Ok::<(), lrwatch::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    http: HttpClient,
    options: Arc<Options>,
    tls: Arc<rustls::ClientConfig>,
}

/// What every follower of one [`Client::follow`] call shares.
#[derive(Debug)]
struct Shared {
    http: HttpClient,
    options: Arc<Options>,
    shutdown: Arc<Shutdown>,
    /// One connection per multiplex endpoint, for all the resources that use it.
    hubs: hubs::Hubs,
    /// How many resources this follow has.
    followers: usize,
    /// TLS for wss: the same roots as https.
    tls: Arc<rustls::ClientConfig>,
    /// The webhook receiver, once a resource needs it.
    callbacks: Mutex<Option<Arc<callbacks::Receiver>>>,
    /// The threads that make short requests for every follower.
    requests: pool::Pool,
    /// The threads that handle the events of parked followers.
    parked: Arc<pool::Pool>,
}

impl Client {
    /// A client with these options; fails when a user header is not a valid HTTP header, or
    /// a size limit is more than the HTTP client can take.
    pub fn new(options: Options) -> Result<Client> {
        use crate::http::{MAX_BODY_LIMIT, MAX_HEADER_LIMIT};
        if !(1..=MAX_HEADER_LIMIT).contains(&options.max_header) {
            return Err(Error::Setup(format!(
                "the head size limit must be from 1 to {MAX_HEADER_LIMIT} bytes"
            )));
        }
        if options.max_body > MAX_BODY_LIMIT {
            return Err(Error::Setup(format!(
                "the body size limit must be at most {MAX_BODY_LIMIT} bytes"
            )));
        }
        let headers = options
            .headers
            .iter()
            .map(|(name, value)| {
                let n = HeaderName::from_bytes(name.trim().as_bytes())
                    .map_err(|_| Error::Setup(format!("invalid header name '{name}'")))?;
                let v = HeaderValue::from_str(value.trim())
                    .map_err(|_| Error::Setup(format!("invalid value for header '{name}'")))?;
                Ok((n, v))
            })
            .collect::<Result<Vec<_>>>()?;
        let tls = Arc::new(crate::http::wss_tls_config(
            options.ca_certs.as_deref(),
            options.insecure,
        )?);
        Ok(Client {
            http: HttpClient::with_trust(
                headers,
                options.max_body,
                options.ca_certs.as_deref(),
                options.insecure,
                options.max_header,
            ),
            options: Arc::new(options),
            tls,
        })
    }

    /// Starts following each URL (a few dozen start at a time; see the module's threads);
    /// events arrive on the returned [`Follow`].
    pub fn follow(&self, urls: impl IntoIterator<Item = Url>) -> Follow {
        let urls: Vec<Url> = urls.into_iter().collect();
        // Bounded whatever the event rate and however slowly the consumer reads (see `queue`).
        let tx = Arc::new(queue::Updates::default());
        let shutdown = Arc::new(Shutdown::default());
        let shared = Arc::new(Shared {
            http: self.http.clone(),
            options: Arc::clone(&self.options),
            shutdown: Arc::clone(&shutdown),
            hubs: hubs::Hubs::default(),
            followers: urls.len(),
            tls: Arc::clone(&self.tls),
            callbacks: Mutex::new(None),
            requests: pool::Pool::start("requests", REQUEST_THREADS),
            parked: Arc::new(pool::Pool::start("parked", PARKED_THREADS)),
        });
        // Followers start from a thread of their own, a few dozen at a time: each holds a
        // thread at least until it has discovered what its resource offers, and thousands at
        // once would cost thousands of threads before any of them is parked.
        let launcher = {
            let (http, options, tx) = (
                self.http.clone(),
                Arc::clone(&self.options),
                Arc::clone(&tx),
            );
            let (shutdown, shared) = (Arc::clone(&shutdown), Arc::clone(&shared));
            move || gate::launch(urls, http, options, tx, shutdown, shared)
        };
        if let Err(e) = std::thread::Builder::new()
            .name("launcher".into())
            .spawn(launcher)
        {
            let _ = tx.send(Update::Failed(Error::Setup(format!(
                "cannot start a thread to start following: {e}"
            ))));
        }
        Follow {
            tx,
            shutdown,
            shared,
        }
    }
}

/// The stream of updates from [`Client::follow`]. Dropping it stops the followers (a request
/// in flight finishes first, in the background).
#[derive(Debug)]
pub struct Follow {
    tx: Arc<queue::Updates>,
    shutdown: Arc<Shutdown>,
    shared: Arc<Shared>,
}

impl Follow {
    /// The next update, waiting as long as it takes.
    pub fn recv(&self) -> Option<Update> {
        self.tx.recv_until(None)
    }

    /// The next update if one is waiting now, without waiting.
    pub fn try_recv(&self) -> Option<Update> {
        self.tx.try_recv()
    }

    /// The next update, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> std::result::Result<Update, RecvTimeoutError> {
        let deadline = Instant::now().checked_add(timeout);
        self.tx
            .recv_until(deadline)
            .ok_or(RecvTimeoutError::Timeout)
    }

    /// Hands back events the caller is done with, for a follower's thread to free (it made
    /// them; freeing them there is cheaper on a fast stream). Optional: events dropped
    /// anywhere are freed all the same. `events` is left empty.
    pub fn recycle(&self, events: &mut Vec<crate::Event>) {
        self.tx.recycle(events);
    }

    /// A handle that makes this stream yield [`Update::Interrupted`], from any thread (a
    /// signal handler thread, say), so one loop can wait for events and interruptions alike.
    pub fn interrupter(&self) -> Interrupter {
        Interrupter(Arc::clone(&self.tx))
    }
}

impl Iterator for Follow {
    type Item = Update;
    fn next(&mut self) -> Option<Update> {
        self.recv()
    }
}

impl Follow {
    /// Stops following and removes every webhook subscription made (each DELETE bounded to a
    /// few seconds), after waiting (a few seconds at most) for any still being made. Called by
    /// `drop` too; calling it again does nothing.
    pub fn close(&self) {
        self.close_noting(&|_| {});
    }

    /// [`Follow::close`], telling `note` what it waits for and what it could not remove, so
    /// a user who pressed Ctrl-C knows why exiting takes a moment.
    pub fn close_noting(&self, note: &dyn Fn(Notice)) {
        self.shutdown.trigger();
        // Followers waiting for the consumer to take their news give up now.
        self.tx.close();
        let receiver = self
            .shared
            .callbacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(receiver) = receiver {
            receiver.unsubscribe_all(&self.shared.http, note);
        }
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        self.close();
    }
}

/// See [`Follow::interrupter`].
#[derive(Debug, Clone)]
pub struct Interrupter(Arc<queue::Updates>);

impl Interrupter {
    /// Makes the [`Follow`] yield [`Update::Interrupted`].
    pub fn interrupt(&self) {
        let _ = self.0.send(Update::Interrupted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(parse_url("http://127.0.0.1:1/x").is_ok());
        assert!(parse_url("https://example.com").is_ok());
        for bad in [
            "ftp://x/y",
            "127.0.0.1:8080/x",
            "not a url",
            "http://",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(parse_url(bad), Err(Error::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn limits_over_what_the_http_client_takes_are_refused() {
        use crate::http::{MAX_BODY_LIMIT, MAX_HEADER_LIMIT};
        let with = |max_header, max_body| {
            Client::new(Options {
                max_header,
                max_body,
                ..Options::default()
            })
        };
        assert!(with(MAX_HEADER_LIMIT, MAX_BODY_LIMIT).is_ok());
        for (header, body) in [
            (MAX_HEADER_LIMIT + 1, MAX_BODY_LIMIT),
            (0, MAX_BODY_LIMIT),
            (MAX_HEADER_LIMIT, MAX_BODY_LIMIT + 1),
        ] {
            assert!(
                matches!(with(header, body), Err(Error::Setup(_))),
                "{header} {body}"
            );
        }
    }
}
