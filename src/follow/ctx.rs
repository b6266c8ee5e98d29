//! One resource's follower state (`Ctx`), shared by its transports: deduplication, removal,
//! capability re-reading, catch-ups, the safety-net check and the choice of `auto`, so every
//! transport obeys "only real changes, never the same value twice in a row".

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use url::Url;

use super::queue;
use super::shutdown::Shutdown;
use super::{Options, Shared, DEFAULT_INTERVAL};
use crate::backoff::Backoff;
use crate::discovery::Capabilities;
use crate::error::Error;
use crate::event::{Body, Event, EventKind, Level, Notice, Status, Update};
use crate::http::{FetchError, HttpClient, Response};
use crate::mechanism::Mechanism;

/// How long a plain request may take to answer.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How much longer than the wait a long-poll may take before it counts as lost: a quarter of
/// the wait, at least 2 s (network and server delays) and at most 15 s, so a server that
/// goes silent is noticed soon after the wait it was asked for.
pub(super) fn wait_slack(wait: Duration) -> Duration {
    (wait / 4).clamp(Duration::from_secs(2), Duration::from_secs(15))
}
/// The least time between two renames of a multiplexed subscription (see `Ctx::renamed`).
const RENAME_EVERY: Duration = Duration::from_secs(10);
/// Failures in a row after which `auto` leaves a mechanism for the next one.
pub(super) const FALL_BACK_AFTER: u32 = 3;
/// During a run of failures, how often at most a warning summarises the ones since the last
/// (the first is said at once): a server failing forever gets a line a minute, not one per
/// attempt.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// What the follower knows the resource to be, for deduplication.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Known {
    Unknown,
    Value(Vec<u8>),
    Removed,
}

/// What a safety-net check (`--verify`) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verified {
    /// Nothing the transport had not delivered.
    Fine,
    /// A change the transport missed (reported): resubscribe.
    Missed,
    /// Following stops.
    Stop,
}

/// What a conditional GET of the resource found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Checked {
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
pub(super) enum Next {
    /// Stop following (shutdown, the consumer went away, or a fatal error was sent).
    Stop,
    /// Continue over another mechanism.
    Switch(Mechanism),
}

/// One resource's follower state, shared by its transports.
pub(super) struct Ctx {
    /// The URL the user gave, as events name it: shared by every event (not copied).
    pub(super) uri: std::sync::Arc<str>,
    /// The URL the user gave: the key the follower is known by, and what events name.
    pub(super) url: Url,
    /// Where the resource lives: the final URL of its latest full response, after redirects.
    /// Subscriptions and multiplexed names use it (a server pushes only under its own name).
    pub(super) location: Url,
    /// Whether `location` was reached by permanent redirects only: catch-ups then go there
    /// directly; after a temporary one the user's URL is asked again.
    pub(super) moved_for_good: bool,
    /// Whether any representation of the resource was labelled JSON: its values are then read
    /// as JSON whichever transport brought them (servers mislabel some of them).
    pub(super) json_seen: bool,
    /// A catch-up GET reported a value newer than the transport had delivered: pushes read
    /// after it may be older than what was printed, so each is settled by a conditional GET
    /// until the transport is seen to have caught up.
    pub(super) unsettled: bool,
    /// When the transport last showed it is alive for this resource (a push arrived) or the
    /// resource was last checked (`--verify`).
    pub(super) verified: Instant,
    /// When a multiplexed subscription was last renamed after the resource moved (at most one
    /// rename every `RENAME_EVERY`, so a server whose redirects alternate cannot make it loop).
    pub(super) renamed: Option<Instant>,
    /// How many times a check found a change the transport had not delivered.
    pub(super) missed: u32,
    pub(super) http: HttpClient,
    pub(super) options: Arc<Options>,
    pub(super) tx: Arc<queue::Updates>,
    pub(super) shutdown: Arc<Shutdown>,
    pub(super) shared: Arc<Shared>,
    /// Mechanisms `auto` fell back from, and when.
    pub(super) fell_back: HashMap<Mechanism, Instant>,
    /// In changes mode, the feed's checkpoint and items.
    pub(super) feed: Option<Feed>,
    pub(super) known: Known,
    pub(super) etag: Option<String>,
    pub(super) last_modified: Option<String>,
    pub(super) caps: Option<Capabilities>,
    pub(super) backoff: Backoff,
    /// The failure warnings of the current run of failures (see `warn_failure`).
    pub(super) repeats: Repeats,
    /// The mechanism in use, and since when it has worked: for [`Status`] updates.
    pub(super) transport: Mechanism,
    pub(super) since: SystemTime,
}

/// What the follower holds of a feed.
#[derive(Debug, Clone, Default)]
pub(super) struct Feed {
    /// The held checkpoint: where changes are read from next.
    pub checkpoint: Option<Url>,
    /// The last `Changes-Id` seen (forms B, C).
    pub changes_id: Option<String>,
    /// The items by id, when the listing is a JSON list of objects with ids; `None` when the
    /// feed's format is the server's own.
    pub items: Option<BTreeMap<String, Value>>,
    /// Whether the listing is a JSON list (form A's collection shape): its changes are lists
    /// of items, and a push of one item (servers push items one by one whatever mode was
    /// subscribed) is reported as a list of one.
    pub list: bool,
    /// What the held checkpoint last answered without moving on (see `Ctx::stalled`).
    pub stalled: Option<Vec<u8>>,
}

/// The failure warnings of one run of failures in a row: the first is said, the rest are
/// traced and counted, and summarised now and then and when the run ends.
#[derive(Debug, Default)]
pub(super) struct Repeats {
    /// When a warning of this run was last said; `None` outside a run.
    said: Option<Instant>,
    /// Failures since then, not yet said.
    more: u32,
    /// The latest of them.
    latest: String,
}

/// A value pushed by a stream or socket, with what it says about its place in the sequence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Push {
    /// The new `ETag`, when the push carries one.
    pub(super) etag: Option<String>,
    /// The `ETag` of the value this one replaces (`Previous-ETag`), for gap detection.
    pub(super) previous_etag: Option<String>,
    /// The content and its type; `None` when the resource was deleted.
    pub(super) body: Option<(Vec<u8>, Option<String>)>,
    /// Every header the push carried (changes pushes keep their markers here).
    pub(super) headers: Vec<(String, String)>,
}

/// How a request turned out, after the engine handled the parts all transports share.
// Returned and matched at once, never stored: boxing the response would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum RequestOutcome {
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
    pub(super) fn send(&self, update: Update) -> bool {
        self.tx.send(update)
    }

    /// Hands on the updates of `batch` (emptied), in order, with one wake-up of the consumer
    /// (see `queue::Updates::send_all`); false when the consumer is gone. The events of one read of a fast stream go so.
    pub(super) fn hand_on(&self, batch: &mut Vec<Update>) -> bool {
        let sent = batch.is_empty() || self.tx.send_all(batch.drain(..));
        // A read of tiny events made a large batch once: its room is not kept.
        batch.shrink_to(queue::MAX_UPDATES);
        sent
    }

    /// Hands on `batch` once it holds a queue's worth (see `hand_on`): a read of tiny events
    /// holds tens of thousands, and what waits must stay within the queue's bounds.
    pub(super) fn hand_on_if_full(&self, batch: &mut Vec<Update>) -> bool {
        batch.len() < queue::MAX_UPDATES || self.hand_on(batch)
    }

    /// A notice about this follower's resource, to send now or with a batch.
    pub(super) fn notice_of(&self, level: Level, message: String) -> Update {
        Update::Notice(Notice {
            uri: self.uri.clone(),
            level,
            message,
        })
    }

    pub(super) fn notice(&self, level: Level, message: String) {
        let _ = self.send(self.notice_of(level, message));
    }

    pub(super) fn trace(&self, message: String) {
        self.notice(Level::Trace, message);
    }

    pub(super) fn warn(&self, message: String) {
        self.notice(Level::Warn, message);
    }

    /// Reports where the follower stands; `retries` is 0 when all is well.
    pub(super) fn status(&self) {
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
    pub(super) fn warn_failure(&mut self, attempt: u32, message: String) {
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
    pub(super) fn summarise(&mut self) {
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
    pub(super) fn failures_over(&mut self) {
        self.summarise();
        self.repeats.said = None;
    }

    /// Enters a mechanism: it works from now on.
    pub(super) fn enter(&mut self, mechanism: Mechanism) {
        // The fall back (or climb back) that led here said how the last one failed.
        self.repeats = Repeats::default();
        self.transport = mechanism;
        self.since = SystemTime::now();
        self.status();
    }

    /// A request succeeded: after failures, say that all is well again.
    pub(super) fn succeeded(&mut self) {
        self.failures_over();
        self.connected();
    }

    /// A connection is up (a socket's subscription acknowledged): the backoff starts over,
    /// but a run of failures is over only once something arrives over it (`succeeded`).
    pub(super) fn connected(&mut self) {
        if self.backoff.failures() > 0 {
            self.backoff.reset();
            self.since = SystemTime::now();
            self.status();
        }
    }

    pub(super) fn fail(&self, error: Error) -> Next {
        let _ = self.send(Update::Failed(error));
        Next::Stop
    }

    pub(super) fn running(&self) -> bool {
        !self.shutdown.is_set()
    }

    /// Sleeps, waking early for shutdown; false when following should stop.
    pub(super) fn sleep(&self, d: Duration) -> bool {
        self.shutdown.sleep(d)
    }

    /// The plain-polling period: the user's, else the server's, else the default.
    pub(super) fn poll_period(&self) -> Duration {
        self.options
            .interval
            .or_else(|| self.caps.as_ref().and_then(|c| c.poll_interval))
            .unwrap_or(DEFAULT_INTERVAL)
    }

    /// A short GET of `url` for this resource (discovery, a catch-up, a poll), made on the
    /// shared request threads (see `pool`).
    pub(super) fn short_get(
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
    pub(super) fn fetch(
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
    pub(super) fn long_poll(
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
    pub(super) fn fetch_once(
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
    pub(super) fn retry_later(&mut self, reason: &str) -> RequestOutcome {
        self.retry_after(reason, None)
    }

    /// Waits out the backoff after an answer that was not what was hoped for, or the server's
    /// `Retry-After` when that is longer (a server that says when to come back is believed,
    /// up to ten minutes).
    pub(super) fn retry_response(&mut self, response: &Response) -> RequestOutcome {
        let reason = format!("HTTP {} from {}", response.status, response.url);
        self.retry_after(&reason, retry_after(response.header("retry-after")))
    }

    pub(super) fn retry_after(
        &mut self,
        reason: &str,
        server_says: Option<Duration>,
    ) -> RequestOutcome {
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
    pub(super) fn apply(
        &mut self,
        response: Response,
        transport: Mechanism,
        initial: bool,
    ) -> Option<bool> {
        let _ = self.read_caps(&response);
        self.emit_from(response, transport, initial)
    }

    /// Re-reads what a successful response advertises (a server may change it); returns it
    /// in full, links included, while the follower keeps it without them.
    pub(super) fn read_caps(&mut self, response: &Response) -> Option<Capabilities> {
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
    pub(super) fn emit_from(
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

    pub(super) fn emit_value(
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
    pub(super) fn body(&mut self, bytes: Vec<u8>, content_type: Option<String>) -> Body {
        self.json_seen |= content_type
            .as_deref()
            .is_some_and(crate::event::is_json_media_type);
        Body::typed(bytes, content_type, self.json_seen)
    }

    pub(super) fn emit_removed(&mut self, transport: Mechanism, initial: bool) -> bool {
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
    pub(super) fn apply_push(&mut self, push: Push, transport: Mechanism) -> bool {
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
    pub(super) fn settle(&mut self, push: Push, transport: Mechanism) -> bool {
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
    pub(super) fn catch_up(&mut self, transport: Mechanism) -> bool {
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
    pub(super) fn verify_in(&self) -> Option<Duration> {
        let period = self.options.verify?;
        Some(period.saturating_sub(self.verified.elapsed()))
    }

    /// The safety net (`--verify`): one conditional GET of the resource (in changes mode, a
    /// read of the held checkpoint) to see whether the transport missed a change. A change
    /// found is reported by the check itself; the first time a warning says that the server
    /// missed a push (later ones are traced). True when the transport should resubscribe.
    pub(super) fn verify(&mut self, transport: Mechanism) -> Verified {
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
    pub(super) fn report_missed(&mut self, transport: Mechanism, how: &str) {
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
    pub(super) fn may_rename(&mut self) -> bool {
        if self.renamed.is_some_and(|at| at.elapsed() < RENAME_EVERY) {
            return false;
        }
        self.renamed = Some(Instant::now());
        true
    }

    /// The URL to GET the resource at: where it was moved for good, else the user's (a
    /// temporary redirect is asked again each time).
    pub(super) fn resource_url(&self) -> Url {
        if self.moved_for_good {
            self.location.clone()
        } else {
            self.url.clone()
        }
    }

    /// Remembers where a full response of the resource itself came from (after redirects).
    pub(super) fn relocate(&mut self, response: &Response) {
        if (200..300).contains(&response.status) && response.url != self.location {
            self.trace(format!("the resource lives at {}", response.url));
            self.location = response.url.clone();
        }
        self.moved_for_good = response.url != self.url && response.moved_permanently;
    }

    /// One conditional GET of the resource (`If-None-Match` with the ETag held), its answer
    /// taken in; says what it found.
    pub(super) fn check(&mut self, transport: Mechanism) -> Checked {
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
    pub(super) fn fall_back(
        &mut self,
        mechanism: Mechanism,
        failures: u32,
        reason: &str,
    ) -> Option<Next> {
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
    pub(super) fn situation(&self) -> crate::auto::Situation {
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
    pub(super) fn usable(&self, mechanism: Mechanism) -> std::result::Result<(), String> {
        if mechanism == Mechanism::ValueWait && self.etag.is_none() {
            return Err("the resource has no ETag to wait on".to_string());
        }
        if let Some(caps) = self.caps.as_ref() {
            crate::auto::usable(caps, mechanism, self.situation()).map_err(|u| u.to_string())?;
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
    pub(super) fn preference(&self) -> Vec<Mechanism> {
        match self.caps.as_ref() {
            Some(caps) => crate::auto::preference(caps, self.situation()),
            None => vec![Mechanism::Poll],
        }
    }

    /// The mechanism `auto` picks from the current capabilities, tracing why.
    pub(super) fn choose_auto(&self) -> Mechanism {
        for mechanism in self.preference() {
            match self.usable(mechanism) {
                Ok(()) => return mechanism,
                Err(why) => self.trace(format!("not using {mechanism}: {why}")),
            }
        }
        Mechanism::Poll
    }

    /// The mechanism `auto` picks, without tracing.
    pub(super) fn choose_auto_quietly(&self) -> Mechanism {
        self.preference()
            .into_iter()
            .find(|m| self.usable(*m).is_ok())
            .unwrap_or(Mechanism::Poll)
    }

    /// In `auto`, a mechanism `auto` prefers to `current` and may use now (the climb back
    /// after a fall back), if any.
    pub(super) fn better_than(&self, current: Mechanism) -> Option<Mechanism> {
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
pub(super) fn understood(status: u16) -> bool {
    matches!(status, 200..=299 | 304 | 404 | 410)
}

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Reads `Retry-After`: delay-seconds, or an HTTP-date (how long until then).
pub(super) fn retry_after(value: Option<&str>) -> Option<Duration> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
