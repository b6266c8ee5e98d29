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

mod callbacks;
mod changes;
mod hint_stream;
mod hub;
mod json_lines;
mod live_sse;
mod live_url;
mod multiplex_stream;
mod multiplex_wait;
mod multiplexed;
mod parked;
mod poll;
mod pool;
mod queue;
mod sse;
mod value_stream;
mod value_wait;
mod websocket;
mod ws_url;

use std::collections::HashMap;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ureq::http::{HeaderName, HeaderValue};
use url::Url;

use crate::backoff::Backoff;
use crate::discovery::Capabilities;
use crate::error::{Error, Result};
use crate::event::{Body, Event, EventKind, Level, Notice, Status, Update};
use crate::http::{FetchError, HttpClient, Response, DEFAULT_MAX_BODY};
use crate::mechanism::Mechanism;

/// The default wait of a long-poll, in seconds: below common 60 s proxy limits.
pub const DEFAULT_WAIT: u64 = 55;
/// The default period of the safety-net check of push and long-poll transports (`--verify`).
pub const DEFAULT_VERIFY: Duration = Duration::from_secs(60);
/// The default plain-polling period, when neither the user nor the server sets one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// How long a plain request may take to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How many short requests run at once, for all followers (see `pool`).
const REQUEST_THREADS: usize = 8;
/// How many parked followers handle their events at once (see `parked`): as many as may wait
/// on a short request, so that those waits do not hold back the others' pushes.
const PARKED_THREADS: usize = REQUEST_THREADS;
/// A follower thread's stack: followers keep little on it (the short requests run on the
/// pool), and a small one lets thousands run at once.
const FOLLOWER_STACK: usize = 256 * 1024;
/// How much longer than the wait a long-poll may take before it counts as lost: a quarter of
/// the wait, at least 2 s (network and server delays) and at most 15 s, so a server that
/// goes silent is noticed soon after the wait it was asked for.
fn wait_slack(wait: Duration) -> Duration {
    (wait / 4).clamp(Duration::from_secs(2), Duration::from_secs(15))
}
/// The least time between two renames of a multiplexed subscription (see `Ctx::renamed`).
const RENAME_EVERY: Duration = Duration::from_secs(10);
/// Failures in a row after which `auto` leaves a mechanism for the next one.
const FALL_BACK_AFTER: u32 = 3;
/// How long `auto` stays away from a mechanism it fell back from before trying it again.
pub const DEFAULT_FALL_BACK_FOR: Duration = Duration::from_secs(60);
/// During a run of failures, how often at most a warning summarises the ones since the last
/// (the first is said at once): a server failing forever gets a line a minute, not one per
/// attempt.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// How to follow: the parts of the command line the engine needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// A forced mechanism, or `None` for `auto`.
    pub transport: Option<Mechanism>,
    /// The wait for long-polls, in seconds.
    pub wait: u64,
    /// The plain-polling period chosen by the user (else the server's, else 5 s).
    pub interval: Option<Duration>,
    /// Extra request headers, sent only to each resource's own origin.
    pub headers: Vec<(String, String)>,
    /// The largest response body, event-stream event or socket message accepted, in bytes;
    /// at most [`crate::http::MAX_BODY_LIMIT`].
    pub max_body: u64,
    /// The largest response head (status line and headers) accepted, in bytes; from 1 to
    /// [`crate::http::MAX_HEADER_LIMIT`].
    pub max_header: usize,
    /// How often a quiet WebSocket is pinged. A socket silent for 2.5 times this, or a stream
    /// silent for 3 times this (servers send keep-alives), is presumed dead and reconnected.
    pub keepalive: Duration,
    /// How long `auto` stays away from a mechanism that failed repeatedly before it climbs
    /// back to it.
    pub fall_back_for: Duration,
    /// Where to listen for webhook notifications (`--callback-listen`); loopback on a free
    /// port by default.
    pub callback_listen: Option<String>,
    /// The URL servers should POST notifications to (`--callback-url`), when it is not the
    /// listener's own (behind a tunnel or NAT). Either setting lets `auto` use webhooks.
    pub callback_url: Option<Url>,
    /// Follow the resource's changes feed instead of its value (`--changes`); `auto` does so
    /// anyway for a collection ([`crate::auto::collection`]).
    pub changes: bool,
    /// Follow the resource's value even when it is a collection (`--value`).
    pub value: bool,
    /// How often push and long-poll transports check each resource with a conditional GET
    /// (`--verify`), so a server that silently forgot a subscription is noticed; `None`: never.
    pub verify: Option<Duration>,
    /// Certificate authorities (DER) to trust for https and wss instead of the bundled
    /// Mozilla roots, like curl's `--cacert`.
    pub ca_certs: Option<Vec<Vec<u8>>>,
    /// Do not verify certificates at all (`--insecure`). Only for testing: anyone on the path
    /// can then read and change what is followed.
    pub insecure: bool,
    /// How live URLs given directly are followed (event streams, JSON lines, WebSockets).
    pub live: crate::live::LiveOptions,
}

/// The default keep-alive period: the reference server's, and common proxies'.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);

impl Options {
    /// An event-stream parser bounded by `max_body`: a line or an event over it is an error.
    pub(crate) fn sse_parser(&self) -> crate::wire::sse::Parser {
        let max = usize::try_from(self.max_body).unwrap_or(usize::MAX);
        crate::wire::sse::Parser::with_limits(max, max)
    }

    /// The `Wait` of a long-poll: the user's, but no longer than the `--verify` period (rounded
    /// up to whole seconds): each long-poll is itself a conditional GET, and a server that
    /// forgot a held long-poll answers the next one at once.
    pub(crate) fn long_poll_wait(&self) -> u64 {
        match self.verify {
            Some(period) => self.wait.min(period.as_secs_f64().ceil().max(1.0) as u64),
            None => self.wait,
        }
    }

    /// How long a stream may stay silent before it is presumed dead.
    pub(crate) fn stream_idle(&self) -> Duration {
        self.keepalive * 3
    }

    /// How long a WebSocket may stay silent (pings unanswered) before it is presumed dead.
    pub(crate) fn socket_dead_after(&self) -> Duration {
        self.keepalive * 5 / 2
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            transport: None,
            wait: DEFAULT_WAIT,
            interval: None,
            headers: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
            max_header: crate::http::DEFAULT_MAX_HEADER,
            keepalive: DEFAULT_KEEPALIVE,
            fall_back_for: DEFAULT_FALL_BACK_FOR,
            ca_certs: None,
            insecure: false,
            changes: false,
            value: false,
            verify: Some(DEFAULT_VERIFY),
            callback_listen: None,
            callback_url: None,
            live: crate::live::LiveOptions::default(),
        }
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
    hubs: hub::Hubs,
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
            hubs: hub::Hubs::default(),
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
            move || {
                let starting = Arc::new(Starting::default());
                for url in urls {
                    if shutdown.is_set() || !starting.acquire(&shutdown) {
                        return;
                    }
                    let ctx = Ctx {
                        uri: url.to_string(),
                        url: url.clone(),
                        location: url.clone(),
                        moved_for_good: false,
                        json_seen: false,
                        unsettled: false,
                        verified: Instant::now(),
                        renamed: None,
                        missed: 0,
                        http: http.clone(),
                        options: Arc::clone(&options),
                        tx: Arc::clone(&tx),
                        shutdown: Arc::clone(&shutdown),
                        shared: Arc::clone(&shared),
                        fell_back: HashMap::new(),
                        feed: None,
                        known: Known::Unknown,
                        etag: None,
                        last_modified: None,
                        caps: None,
                        backoff: Backoff::default(),
                        repeats: Repeats::default(),
                        transport: Mechanism::Poll,
                        since: SystemTime::now(),
                    };
                    let permit = Permit(Arc::clone(&starting));
                    let spawned = std::thread::Builder::new()
                        .name(format!("follow {url}"))
                        .stack_size(FOLLOWER_STACK)
                        .spawn(move || follow_resource(ctx, permit));
                    if let Err(e) = spawned {
                        let _ = tx.send(Update::Failed(Error::Setup(format!(
                            "cannot start a thread to follow {url}: {e}"
                        ))));
                    }
                }
            }
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

/// A stop flag that sleeping followers wake up for.
#[derive(Debug, Default)]
struct Shutdown {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Shutdown {
    fn trigger(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
    }

    fn is_set(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps for `d`; false when shutdown came first.
    fn sleep(&self, d: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        !*guard
    }
}

/// How many followers may be discovering their resource at once.
const MAX_STARTING: usize = 32;

/// The followers starting now (see [`Client::follow`]).
#[derive(Debug, Default)]
struct Starting {
    count: Mutex<usize>,
    done: Condvar,
}

impl Starting {
    /// Waits for room to start one more; false when following stopped first.
    fn acquire(&self, shutdown: &Shutdown) -> bool {
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        while *count >= MAX_STARTING {
            if shutdown.is_set() {
                return false;
            }
            // Woken when one is done; the timeout only notices a shutdown.
            count = self
                .done
                .wait_timeout(count, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *count += 1;
        true
    }
}

/// A starting follower's room, given back when it is dropped (its discovery is over).
#[derive(Debug)]
struct Permit(Arc<Starting>);

impl Drop for Permit {
    fn drop(&mut self) {
        *self.0.count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.0.done.notify_one();
    }
}

/// What the follower knows the resource to be, for deduplication.
#[derive(Debug, Clone, PartialEq)]
enum Known {
    Unknown,
    Value(Vec<u8>),
    Removed,
}

/// What a safety-net check (`--verify`) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verified {
    /// Nothing the transport had not delivered.
    Fine,
    /// A change the transport missed (reported): resubscribe.
    Missed,
    /// Following stops.
    Stop,
}

/// What a conditional GET of the resource found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checked {
    /// 304: the value held is current.
    Unchanged,
    /// A value that differs from the one held: reported.
    Changed,
    /// A full answer with the value held (or an answer that is not about the value).
    Same,
    /// No answer; the transport's own reconnects deal with it.
    Failed,
    /// Following stops.
    Stop,
}

/// What a transport loop asks the engine to do when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Stop following (shutdown, the consumer went away, or a fatal error was sent).
    Stop,
    /// Continue over another mechanism.
    Switch(Mechanism),
}

/// One resource's follower state, shared by its transports.
struct Ctx {
    uri: String,
    /// The URL the user gave: the key the follower is known by, and what events name.
    url: Url,
    /// Where the resource lives: the final URL of its latest full response, after redirects.
    /// Subscriptions and multiplexed names use it (a server pushes only under its own name).
    location: Url,
    /// Whether `location` was reached by permanent redirects only: catch-ups then go there
    /// directly; after a temporary one the user's URL is asked again.
    moved_for_good: bool,
    /// Whether any representation of the resource was labelled JSON: its values are then read
    /// as JSON whichever transport brought them (servers mislabel some of them).
    json_seen: bool,
    /// A catch-up GET reported a value newer than the transport had delivered: pushes read
    /// after it may be older than what was printed, so each is settled by a conditional GET
    /// until the transport is seen to have caught up.
    unsettled: bool,
    /// When the transport last showed it is alive for this resource (a push arrived) or the
    /// resource was last checked (`--verify`).
    verified: Instant,
    /// When a multiplexed subscription was last renamed after the resource moved (at most one
    /// rename every `RENAME_EVERY`, so a server whose redirects alternate cannot make it loop).
    renamed: Option<Instant>,
    /// How many times a check found a change the transport had not delivered.
    missed: u32,
    http: HttpClient,
    options: Arc<Options>,
    tx: Arc<queue::Updates>,
    shutdown: Arc<Shutdown>,
    shared: Arc<Shared>,
    /// Mechanisms `auto` fell back from, and when.
    fell_back: HashMap<Mechanism, Instant>,
    /// In changes mode, the feed's checkpoint and items.
    feed: Option<changes::Feed>,
    known: Known,
    etag: Option<String>,
    last_modified: Option<String>,
    caps: Option<Capabilities>,
    backoff: Backoff,
    /// The failure warnings of the current run of failures (see `warn_failure`).
    repeats: Repeats,
    /// The mechanism in use, and since when it has worked: for [`Status`] updates.
    transport: Mechanism,
    since: SystemTime,
}

/// The failure warnings of one run of failures in a row: the first is said, the rest are
/// traced and counted, and summarised now and then and when the run ends.
#[derive(Debug, Default)]
struct Repeats {
    /// When a warning of this run was last said; `None` outside a run.
    said: Option<Instant>,
    /// Failures since then, not yet said.
    more: u32,
    /// The latest of them.
    latest: String,
}

/// A value pushed by a stream or socket, with what it says about its place in the sequence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Push {
    /// The new `ETag`, when the push carries one.
    etag: Option<String>,
    /// The `ETag` of the value this one replaces (`Previous-ETag`), for gap detection.
    previous_etag: Option<String>,
    /// The content and its type; `None` when the resource was deleted.
    body: Option<(Vec<u8>, Option<String>)>,
    /// Every header the push carried (changes pushes keep their markers here).
    headers: Vec<(String, String)>,
}

/// How a request turned out, after the engine handled the parts all transports share.
// Returned and matched at once, never stored: boxing the response would buy nothing.
#[allow(clippy::large_enum_variant)]
enum RequestOutcome {
    /// A response arrived (any status); the time it took.
    Response(Response, Duration),
    /// No response; the follower already waited out a backoff (or is stopping).
    Retry,
    /// Following must end (fatal error already sent, or shutdown).
    Stop,
}

impl Ctx {
    /// Hands an update to the consumer; a value may be coalesced, and news waits while the
    /// consumer is far behind (see `queue`). False when the consumer is gone.
    fn send(&self, update: Update) -> bool {
        self.tx.send(update)
    }

    fn notice(&self, level: Level, message: String) {
        let _ = self.send(Update::Notice(Notice {
            uri: self.uri.clone(),
            level,
            message,
        }));
    }

    fn trace(&self, message: String) {
        self.notice(Level::Trace, message);
    }

    fn warn(&self, message: String) {
        self.notice(Level::Warn, message);
    }

    /// Reports where the follower stands; `retries` is 0 when all is well.
    fn status(&self) {
        let _ = self.send(Update::Status(Status {
            uri: self.uri.clone(),
            transport: self.transport,
            since: self.since,
            retries: self.backoff.failures(),
        }));
    }

    /// Warns of failure number `attempt` of a run: the first of a run is said; the others are
    /// traced and counted, and said together at most every `SUMMARY_EVERY` and when the run
    /// ends (`failures_over`), so a server that fails again and again (a socket that closes
    /// after each subscribe) does not fill stderr with a line per attempt.
    fn warn_failure(&mut self, attempt: u32, message: String) {
        if attempt <= 1 {
            // A new run (a hub's count started again): what the last one left unsaid first.
            self.failures_over();
        }
        match self.repeats.said {
            None => {
                self.warn(message);
                self.repeats.said = Some(Instant::now());
            }
            Some(said) => {
                self.trace(message.clone());
                self.repeats.more += 1;
                self.repeats.latest = message;
                if said.elapsed() >= SUMMARY_EVERY {
                    self.summarise();
                    self.repeats.said = Some(Instant::now());
                }
            }
        }
    }

    /// Says the failures of the run not said yet: "… 12 more times (latest: …)".
    fn summarise(&mut self) {
        let more = std::mem::take(&mut self.repeats.more);
        let latest = std::mem::take(&mut self.repeats.latest);
        if more > 0 {
            self.warn(format!(
                "\u{2026} {more} more time{} (latest: {latest})",
                if more == 1 { "" } else { "s" }
            ));
        }
    }

    /// A run of failures is over (it worked again): says what it left unsaid.
    fn failures_over(&mut self) {
        self.summarise();
        self.repeats.said = None;
    }

    /// Enters a mechanism: it works from now on.
    fn enter(&mut self, mechanism: Mechanism) {
        // The fall back (or climb back) that led here said how the last one failed.
        self.repeats = Repeats::default();
        self.transport = mechanism;
        self.since = SystemTime::now();
        self.status();
    }

    /// A request succeeded: after failures, say that all is well again.
    fn succeeded(&mut self) {
        self.failures_over();
        self.connected();
    }

    /// A connection is up (a socket's subscription acknowledged): the backoff starts over,
    /// but a run of failures is over only once something arrives over it (`succeeded`).
    fn connected(&mut self) {
        if self.backoff.failures() > 0 {
            self.backoff.reset();
            self.since = SystemTime::now();
            self.status();
        }
    }

    fn fail(&self, error: Error) -> Next {
        let _ = self.send(Update::Failed(error));
        Next::Stop
    }

    fn running(&self) -> bool {
        !self.shutdown.is_set()
    }

    /// Sleeps, waking early for shutdown; false when following should stop.
    fn sleep(&self, d: Duration) -> bool {
        self.shutdown.sleep(d)
    }

    /// The plain-polling period: the user's, else the server's, else the default.
    fn poll_period(&self) -> Duration {
        self.options
            .interval
            .or_else(|| self.caps.as_ref().and_then(|c| c.poll_interval))
            .unwrap_or(DEFAULT_INTERVAL)
    }

    /// A short GET of `url` for this resource (discovery, a catch-up, a poll), made on the
    /// shared request threads (see `pool`).
    fn short_get(
        &self,
        url: &Url,
        extra: &[(&str, String)],
    ) -> std::result::Result<Response, FetchError> {
        self.shared
            .requests
            .get(&self.http, url, &self.url, extra, REQUEST_TIMEOUT)
    }

    /// Makes one GET, tracing it, and absorbs transport failures with a backoff. A short one
    /// (`timeout` of `None`) runs on the shared request threads; a held one (a long-poll)
    /// here, for up to `timeout`.
    fn fetch(
        &mut self,
        url: &Url,
        extra: &[(&str, String)],
        timeout: Option<Duration>,
    ) -> RequestOutcome {
        match self.fetch_once(url, extra, timeout) {
            Ok(outcome) => outcome,
            Err(reason) => self.retry_later(&reason),
        }
    }

    /// A held long-poll of `mechanism` (value-wait, changes-wait), like `fetch`; one that
    /// gets no answer at all (never answered, or the connection failed) counts in
    /// `unanswered`, and after three in a row `auto` falls back (`Err` with what next), as
    /// from a stream that keeps failing: a server that never answers is not waited on
    /// forever.
    fn long_poll(
        &mut self,
        mechanism: Mechanism,
        url: &Url,
        extra: &[(&str, String)],
        timeout: Duration,
        unanswered: &mut u32,
    ) -> std::result::Result<RequestOutcome, Next> {
        match self.fetch_once(url, extra, Some(timeout)) {
            Ok(outcome) => {
                if matches!(outcome, RequestOutcome::Response(..)) {
                    *unanswered = 0;
                }
                Ok(outcome)
            }
            Err(reason) => {
                *unanswered += 1;
                if let Some(next) = self.fall_back(mechanism, *unanswered, &reason) {
                    return Err(next);
                }
                Ok(self.retry_later(&reason))
            }
        }
    }

    /// One GET, traced; a transport failure is left to the caller (`Err` with why).
    fn fetch_once(
        &mut self,
        url: &Url,
        extra: &[(&str, String)],
        timeout: Option<Duration>,
    ) -> std::result::Result<RequestOutcome, String> {
        if !self.running() {
            return Ok(RequestOutcome::Stop);
        }
        let shown: Vec<String> = extra.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        self.trace(
            format!("GET {url} {}", shown.join(", "))
                .trim_end()
                .to_string(),
        );
        let started = Instant::now();
        let answer = match timeout {
            None => self.short_get(url, extra),
            Some(timeout) => self.http.get(url, &self.url, extra, timeout),
        };
        match answer {
            Ok(response) => {
                let took = started.elapsed();
                self.trace(format!("{} in {:.3}s", response.status, took.as_secs_f64()));
                Ok(RequestOutcome::Response(response, took))
            }
            // Over a size limit: asking again would only read the same.
            Err(e @ (FetchError::TooLarge(_) | FetchError::HeadTooLarge(_))) => {
                self.fail(e.into_error(url));
                Ok(RequestOutcome::Stop)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Waits out the next backoff delay after a failure described by `reason`.
    fn retry_later(&mut self, reason: &str) -> RequestOutcome {
        self.retry_after(reason, None)
    }

    /// Waits out the backoff after an answer that was not what was hoped for, or the server's
    /// `Retry-After` when that is longer (a server that says when to come back is believed,
    /// up to ten minutes).
    fn retry_response(&mut self, response: &Response) -> RequestOutcome {
        let reason = format!("HTTP {} from {}", response.status, response.url);
        self.retry_after(&reason, retry_after(response.header("retry-after")))
    }

    fn retry_after(&mut self, reason: &str, server_says: Option<Duration>) -> RequestOutcome {
        let delay = self
            .backoff
            .next_delay()
            .max(server_says.unwrap_or_default());
        self.status();
        self.warn_failure(
            self.backoff.failures(),
            format!(
                "{reason}; retrying in {:.1}s (attempt {})",
                delay.as_secs_f64(),
                self.backoff.failures()
            ),
        );
        if self.sleep(delay) {
            RequestOutcome::Retry
        } else {
            RequestOutcome::Stop
        }
    }

    /// Takes in a full response for the resource: its capabilities, then its value.
    fn apply(&mut self, response: Response, transport: Mechanism, initial: bool) -> Option<bool> {
        let _ = self.read_caps(&response);
        self.emit_from(response, transport, initial)
    }

    /// Re-reads what a successful response advertises (a server may change it); returns it
    /// in full, links included, while the follower keeps it without them.
    fn read_caps(&mut self, response: &Response) -> Option<Capabilities> {
        if !(200..300).contains(&response.status) {
            return None;
        }
        let caps = Capabilities::from_headers(&response.headers, &response.url);
        self.etag = caps.etag.clone();
        self.last_modified = caps.last_modified.clone();
        self.caps = Some(caps.without_links());
        Some(caps)
    }

    /// Emits what a response says of the resource: 2xx is a value, 404/410 a removal. Returns
    /// whether an event was emitted (false for the same value again), or `None` when the
    /// status is neither (the caller decides how to retry).
    fn emit_from(
        &mut self,
        response: Response,
        transport: Mechanism,
        initial: bool,
    ) -> Option<bool> {
        match response.status {
            200..=299 => {
                let content_type = response.header("content-type").map(str::to_string);
                Some(self.emit_value(response.body, content_type, transport, initial))
            }
            404 | 410 => {
                self.etag = None;
                self.last_modified = None;
                Some(self.emit_removed(transport, initial))
            }
            _ => None,
        }
    }

    fn emit_value(
        &mut self,
        bytes: Vec<u8>,
        content_type: Option<String>,
        transport: Mechanism,
        initial: bool,
    ) -> bool {
        if matches!(&self.known, Known::Value(old) if *old == bytes) {
            return false;
        }
        self.known = Known::Value(bytes.clone());
        let body = self.body(bytes, content_type);
        self.send(Update::Event(Event {
            kind: EventKind::Value,
            uri: self.uri.clone(),
            id: None,
            etag: self.etag.clone(),
            transport,
            time: SystemTime::now(),
            body: Some(body),
            initial,
            live: None,
        }))
    }

    /// Types a value of this resource: as JSON when it parses and any of the resource's
    /// representations was labelled JSON, so one resource's values do not switch between text
    /// and JSON with the transport that brought them (see [`Body::typed`]).
    fn body(&mut self, bytes: Vec<u8>, content_type: Option<String>) -> Body {
        self.json_seen |= content_type
            .as_deref()
            .is_some_and(crate::event::is_json_media_type);
        Body::typed(bytes, content_type, self.json_seen)
    }

    fn emit_removed(&mut self, transport: Mechanism, initial: bool) -> bool {
        if self.known == Known::Removed {
            return false;
        }
        self.known = Known::Removed;
        self.send(Update::Event(Event {
            kind: EventKind::Removed,
            uri: self.uri.clone(),
            id: None,
            etag: None,
            transport,
            time: SystemTime::now(),
            body: None,
            initial,
            live: None,
        }))
    }

    /// Takes in a pushed value. An ETag equal to the one held is no change (a stream's
    /// opening event, say). A push that names the value it replaces (`Previous-ETag`) is
    /// applied only when that is the value held; otherwise a push was missed, or this one is
    /// older than what a catch-up already fetched, and one conditional GET settles which. The
    /// same after a catch-up overtook the transport, for pushes without that chain (see
    /// `unsettled`). So a value older than one printed is never printed. Returns false to stop.
    fn apply_push(&mut self, push: Push, transport: Mechanism) -> bool {
        // A push shows the subscription is alive: the next check can wait.
        self.verified = Instant::now();
        if push.etag.is_some() && push.etag == self.etag {
            // The transport has caught up with what a catch-up fetched.
            self.unsettled = false;
            return true;
        }
        let chained = match (&push.previous_etag, &self.etag) {
            (Some(previous), Some(held)) => previous == held,
            _ => false,
        };
        if push.previous_etag.is_some() && self.etag.is_some() && !chained {
            self.trace(format!(
                "a push replacing {} does not follow the ETag held ({}); fetching to settle it",
                push.previous_etag.as_deref().unwrap_or("?"),
                self.etag.as_deref().unwrap_or("none")
            ));
            return self.catch_up(transport);
        }
        if self.unsettled && !chained {
            return self.settle(push, transport);
        }
        self.unsettled = false;
        // A push without an ETag (form A) leaves none known: the event says so, and the next
        // catch-up is an unconditional GET.
        self.etag = push.etag;
        match push.body {
            Some((bytes, content_type)) => self.emit_value(bytes, content_type, transport, false),
            None => self.emit_removed(transport, false),
        };
        true
    }

    /// A push read after a catch-up overtook the transport may have been sent before that
    /// catch-up's answer: one conditional GET says what is current. 304: the push is older
    /// than the value held and is dropped. A value: it is reported (older pushes cannot follow
    /// it any more once the transport delivered the same). Returns false to stop.
    fn settle(&mut self, push: Push, transport: Mechanism) -> bool {
        self.trace(format!(
            "a push ({}) after a catch-up that overtook {transport}; fetching to settle it",
            push.etag.as_deref().unwrap_or("no ETag")
        ));
        match self.check(transport) {
            Checked::Unchanged => {
                self.trace("the push was older than the value held; dropped".to_string());
                true
            }
            Checked::Changed | Checked::Same => {
                let pushed_is_current = match (&push.etag, &self.etag) {
                    (Some(pushed), Some(held)) => pushed == held,
                    _ => match (&push.body, &self.known) {
                        (Some((bytes, _)), Known::Value(held)) => bytes == held,
                        (None, Known::Removed) => true,
                        _ => false,
                    },
                };
                if pushed_is_current {
                    self.unsettled = false;
                }
                true
            }
            Checked::Failed => true,
            Checked::Stop => false,
        }
    }

    /// One conditional GET of the resource, reporting what changed: after every connect and
    /// reconnect, on a hint, on a gap. Transport failures are left to the caller's next
    /// reconnect (the hub or stream notices them too). Returns false to stop.
    fn catch_up(&mut self, transport: Mechanism) -> bool {
        if !self.running() {
            return false;
        }
        if self.feed.is_some() {
            return self.resync(transport);
        }
        match self.check(transport) {
            Checked::Changed => {
                // Pushes the transport sent before this answer may still be on their way.
                self.unsettled = true;
                true
            }
            Checked::Stop => false,
            Checked::Unchanged | Checked::Same | Checked::Failed => true,
        }
    }

    /// How long until the next safety-net check (`--verify`) is due; `None` when it is off.
    fn verify_in(&self) -> Option<Duration> {
        let period = self.options.verify?;
        Some(period.saturating_sub(self.verified.elapsed()))
    }

    /// The safety net (`--verify`): one conditional GET of the resource (in changes mode, a
    /// read of the held checkpoint) to see whether the transport missed a change. A change
    /// found is reported by the check itself; the first time a warning says that the server
    /// missed a push (later ones are traced). True when the transport should resubscribe.
    fn verify(&mut self, transport: Mechanism) -> Verified {
        self.verified = Instant::now();
        if !self.running() {
            return Verified::Stop;
        }
        self.trace(format!("verifying that {transport} missed nothing"));
        let missed = match self.feed.as_ref() {
            Some(feed) => {
                let before = (feed.checkpoint.clone(), feed.changes_id.clone());
                if !self.resync(transport) {
                    return Verified::Stop;
                }
                self.feed
                    .as_ref()
                    .is_some_and(|f| (f.checkpoint.clone(), f.changes_id.clone()) != before)
            }
            None => match self.check(transport) {
                Checked::Changed => {
                    // Pushes sent before this answer may still be on their way.
                    self.unsettled = true;
                    true
                }
                Checked::Stop => return Verified::Stop,
                Checked::Unchanged | Checked::Same | Checked::Failed => false,
            },
        };
        self.verified = Instant::now();
        if !missed {
            return Verified::Fine;
        }
        self.report_missed(
            transport,
            &format!(
                "a check every {:.1}s found the change; resubscribing",
                self.options.verify.unwrap_or_default().as_secs_f64()
            ),
        );
        Verified::Missed
    }

    /// Says that the server missed a push (`how` it was noticed): a warning the first time,
    /// a trace line after.
    fn report_missed(&mut self, transport: Mechanism, how: &str) {
        self.missed += 1;
        let message = format!("the server missed a push over {transport} ({how})");
        if self.missed == 1 {
            self.warn(message);
        } else {
            self.trace(message);
        }
    }

    /// Whether a multiplexed subscription may be renamed now that the resource moved (and note
    /// that it is).
    fn may_rename(&mut self) -> bool {
        if self.renamed.is_some_and(|at| at.elapsed() < RENAME_EVERY) {
            return false;
        }
        self.renamed = Some(Instant::now());
        true
    }

    /// The URL to GET the resource at: where it was moved for good, else the user's (a
    /// temporary redirect is asked again each time).
    fn resource_url(&self) -> Url {
        if self.moved_for_good {
            self.location.clone()
        } else {
            self.url.clone()
        }
    }

    /// Remembers where a full response of the resource itself came from (after redirects).
    fn relocate(&mut self, response: &Response) {
        if (200..300).contains(&response.status) && response.url != self.location {
            self.trace(format!("the resource lives at {}", response.url));
            self.location = response.url.clone();
        }
        self.moved_for_good = response.url != self.url && response.moved_permanently;
    }

    /// One conditional GET of the resource (`If-None-Match` with the ETag held), its answer
    /// taken in; says what it found.
    fn check(&mut self, transport: Mechanism) -> Checked {
        if !self.running() {
            return Checked::Stop;
        }
        let mut headers = Vec::new();
        if let Some(etag) = &self.etag {
            headers.push(("If-None-Match", etag.clone()));
        }
        let url = self.resource_url();
        self.trace(format!("GET {url} (catching up)"));
        match self.short_get(&url, &headers) {
            Ok(response) if response.status == 304 => Checked::Unchanged,
            Ok(response) => {
                self.relocate(&response);
                match self.apply(response, transport, false) {
                    Some(true) => Checked::Changed,
                    Some(false) => Checked::Same,
                    None => Checked::Failed,
                }
            }
            Err(e @ (FetchError::TooLarge(_) | FetchError::HeadTooLarge(_))) => {
                self.fail(e.into_error(&url));
                Checked::Stop
            }
            Err(e) => {
                self.trace(format!("catching up failed: {e}"));
                Checked::Failed
            }
        }
    }

    /// After `failures` failures in a row of `mechanism`: in `auto`, the mechanism to fall
    /// back to (saying so), once there were enough; `None` to keep trying.
    fn fall_back(&mut self, mechanism: Mechanism, failures: u32, reason: &str) -> Option<Next> {
        if self.options.transport.is_some() || failures < FALL_BACK_AFTER {
            return None;
        }
        self.fell_back.insert(mechanism, Instant::now());
        let next = self.choose_auto();
        self.warn(format!(
            "{mechanism} failed {failures} times ({reason}); falling back to {next}"
        ));
        Some(Next::Switch(next))
    }

    /// What the choice depends on besides the resource: see [`crate::auto::Situation`].
    fn situation(&self) -> crate::auto::Situation {
        crate::auto::Situation {
            several: self.shared.followers > 1,
            webhooks: self.options.callback_url.is_some() || self.options.callback_listen.is_some(),
            changes: self.feed.is_some(),
            value: self.feed.is_none(),
        }
    }

    /// Whether `auto` may (still) use a mechanism, and if not, why: the rules of
    /// [`crate::auto::usable`] (the same that `lrwatch inspect` reports), plus what only a
    /// running follower knows: the ETag held now, the checkpoint held, recent failures.
    fn usable(&self, mechanism: Mechanism) -> std::result::Result<(), String> {
        if mechanism == Mechanism::ValueWait && self.etag.is_none() {
            return Err("the resource has no ETag to wait on".to_string());
        }
        if let Some(caps) = self.caps.as_ref() {
            crate::auto::usable(caps, mechanism, self.situation())?;
        }
        if mechanism == Mechanism::Changes
            && self.feed.as_ref().is_some_and(|f| f.checkpoint.is_none())
        {
            return Err("there is no changes checkpoint".to_string());
        }
        if self
            .fell_back
            .get(&mechanism)
            .is_some_and(|at| at.elapsed() < self.options.fall_back_for)
        {
            return Err("it failed repeatedly a moment ago".to_string());
        }
        Ok(())
    }

    /// The mechanisms offered, in the order `auto` tries them ([`crate::auto::preference`]).
    fn preference(&self) -> Vec<Mechanism> {
        match self.caps.as_ref() {
            Some(caps) => crate::auto::preference(caps, self.situation()),
            None => vec![Mechanism::Poll],
        }
    }

    /// The mechanism `auto` picks from the current capabilities, tracing why.
    fn choose_auto(&self) -> Mechanism {
        for mechanism in self.preference() {
            match self.usable(mechanism) {
                Ok(()) => return mechanism,
                Err(why) => self.trace(format!("not using {mechanism}: {why}")),
            }
        }
        Mechanism::Poll
    }

    /// The mechanism `auto` picks, without tracing.
    fn choose_auto_quietly(&self) -> Mechanism {
        self.preference()
            .into_iter()
            .find(|m| self.usable(*m).is_ok())
            .unwrap_or(Mechanism::Poll)
    }

    /// In `auto`, a mechanism `auto` prefers to `current` and may use now (the climb back
    /// after a fall back), if any.
    fn better_than(&self, current: Mechanism) -> Option<Mechanism> {
        if self.options.transport.is_some() {
            return None;
        }
        let best = self.choose_auto_quietly();
        let order = self.preference();
        let rank = |m: Mechanism| order.iter().position(|x| *x == m).unwrap_or(usize::MAX);
        (rank(best) < rank(current)).then_some(best)
    }
}

/// Whether a status is an answer about the resource (a value, no news, or gone) rather than
/// trouble to back off from.
fn understood(status: u16) -> bool {
    matches!(status, 200..=299 | 304 | 404 | 410)
}

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Reads `Retry-After`: delay-seconds, or an HTTP-date (how long until then).
fn retry_after(value: Option<&str>) -> Option<Duration> {
    let value = value?.trim();
    let delay = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or_default(),
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// One resource from discovery to the end.
fn follow_resource(mut ctx: Ctx, permit: Permit) {
    let url = ctx.url.clone();
    // The room to start is given back once discovery is over, or when the server says to
    // come back later: a resource that waits to retry must not hold back the others.
    let mut permit = Some(permit);
    // Discovery: the first GET. Failing to get any answer at all is fatal (the URL is
    // probably wrong); an HTTP error status is retried, as the server may be starting.
    let response = loop {
        if !ctx.running() {
            return;
        }
        ctx.trace(format!("GET {url}"));
        // A live URL (an event stream, JSON lines, a WebSocket) is told from the head.
        let answer = match live_url::discover(&ctx, &url) {
            Ok(live_url::Discovered::Live(opened)) => {
                drop(permit);
                return live_url::follow(ctx, opened);
            }
            Ok(live_url::Discovered::Document(r)) => Ok(r),
            Err(e) => Err(e),
        };
        match answer {
            Ok(r) if matches!(r.status, 200..=299 | 404 | 410) => break r,
            Ok(r) => {
                permit = None;
                if matches!(ctx.retry_response(&r), RequestOutcome::Stop) {
                    return;
                }
            }
            // No usable answer: unreachable, a head or body over the limits, redirects
            // that lead nowhere.
            Err(e) => {
                ctx.fail(e.into_error(&url));
                return;
            }
        }
    };
    ctx.backoff.reset();
    ctx.relocate(&response);
    let caps = ctx
        .read_caps(&response)
        .unwrap_or_else(|| Capabilities::from_headers(&response.headers, &response.url));
    ctx.trace(format!(
        "{}; ETag {}; links: {}",
        response.status,
        caps.etag.as_deref().unwrap_or("none"),
        describe_links(&caps)
    ));
    for error in &caps.links.errors {
        ctx.warn(format!("ignoring a malformed Link header: {error}"));
    }
    let offered = caps.offered_names();
    if (200..300).contains(&response.status) && changes::wanted(&ctx, &caps, &response.body) {
        ctx.trace("following the changes feed".to_string());
        ctx.feed = Some(changes::Feed::seed(&response, &caps));
    }
    let mechanism = match ctx.options.transport {
        Some(forced) => {
            if caps.offer(forced).is_none() {
                ctx.fail(Error::TransportNotOffered {
                    url: url.to_string(),
                    wanted: forced.to_string(),
                    offered,
                });
                return;
            }
            forced
        }
        None => ctx.choose_auto(),
    };
    ctx.trace(format!(
        "transport {mechanism} ({}; offered: {})",
        if ctx.options.transport.is_some() {
            "forced"
        } else {
            "auto"
        },
        offered.join(", ")
    ));
    ctx.emit_from(response, mechanism, true);
    // Held for as long as the resource is followed otherwise, on each of its threads.
    drop(caps);
    drop(permit);
    ctx.enter(mechanism);
    drive(ctx, mechanism);
}

/// Follows over `mechanism`, and whatever it switches to, until the follower stops or is
/// parked on a multiplexed connection (which gives it a thread again if it leaves).
fn drive(mut ctx: Ctx, mut mechanism: Mechanism) {
    loop {
        let next = match mechanism {
            Mechanism::ValueWait => value_wait::run(&mut ctx),
            Mechanism::ValueStream => value_stream::run(&mut ctx),
            Mechanism::HintStream => hint_stream::run(&mut ctx),
            Mechanism::MultiplexWs
            | Mechanism::MultiplexSocket
            | Mechanism::MultiplexStream
            | Mechanism::MultiplexWait => match multiplexed::park(ctx, mechanism) {
                Ok(()) => return,
                Err(back) => {
                    let (back, next) = *back;
                    ctx = back;
                    next
                }
            },
            Mechanism::Changes | Mechanism::ChangesWait => changes::run_wait(&mut ctx, mechanism),
            Mechanism::ChangesStream => changes::run_stream(&mut ctx),
            Mechanism::ValueCallback
            | Mechanism::ChangesCallback
            | Mechanism::MultiplexCallbacks => callbacks::run(&mut ctx, mechanism),
            _ => poll::run(&mut ctx),
        };
        match next {
            Next::Stop => return,
            Next::Switch(m) => {
                ctx.trace(format!("switching from {mechanism} to {m}"));
                mechanism = m;
                ctx.enter(m);
            }
        }
    }
}

fn describe_links(caps: &Capabilities) -> String {
    if caps.links.links.is_empty() {
        return "none".to_string();
    }
    caps.links
        .links
        .iter()
        .map(|l| format!("<{}> {}", l.target, l.rels.join(" ")))
        .collect::<Vec<_>>()
        .join(", ")
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

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after(Some("3")), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(Some("99999")), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(Some("soon")), None);
        assert_eq!(retry_after(None), None);
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let d = retry_after(Some(&later)).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(30));
        assert_eq!(retry_after(Some(&past)), Some(Duration::ZERO));
    }

    #[test]
    fn shutdown_wakes_sleepers() {
        let s = Arc::new(Shutdown::default());
        let s2 = Arc::clone(&s);
        let t = std::thread::spawn(move || s2.sleep(Duration::from_secs(30)));
        s.trigger();
        assert!(!t.join().unwrap());
        assert!(!s.sleep(Duration::from_secs(30)));
    }
}
