//! `lrwatch check`: probes a server's LiveResource support requirement by requirement.
//!
//! Every [`Requirement`] has a source (a section of the 2014 specification, the form B page,
//! the 2016 draft, or an RFC) and a [`Level`] there: breaking a MUST is a FAIL, a SHOULD a
//! WARN. Where the texts are silent, every sensible reading passes.
//!
//! One discovery GET, then phases, each a set of probes on threads of their own:
//!
//! 1. Each probe first checks what needs no change (validators, a long-poll held for a short
//!    wait, stream content types, socket handshakes and acks), sets up a listener for a change
//!    (a long-poll in flight, an open stream, a subscribed socket) and *arms*.
//! 2. When every probe of the phase is armed, the `--trigger` command runs once (`sh -c`), and
//!    each probe waits, bounded, for the change to arrive over its transport.
//!
//! The phases: long-polls (with [`basics`] and [`changes`]); pushes ([`streams`], [`sockets`]),
//! apart because some servers lose a push subscriber when another client's long-poll ends;
//! that loss itself ([`survival`]); webhooks ([`callbacks`], which run the trigger once more
//! after unsubscribing). Without a trigger, change-dependent requirements are skipped. The
//! budget bounds the whole run whatever the server does: every wait, every request to the end
//! of its body (see [`HttpClient::until`]) and every socket read end by it, and a probe the
//! server still keeps busy is left behind, reported as out of budget. Results are data
//! ([`CheckReport`]); the binary renders them.
//!
//! Groups of requirements: [`basics`] (validators, links, content type), [`long_poll`]
//! (value-wait, multiplex-wait, changes-wait), [`streams`] (every SSE mechanism), [`sockets`]
//! (multiplex-ws and multiplex-socket), [`changes`] (changes links advance), [`survival`]
//! (a subscription survives other clients), [`callbacks`] (webhooks).

mod basics;
mod callbacks;
mod changes;
mod long_poll;
mod sockets;
mod streams;
mod survival;

use std::fmt::Write as _;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use url::Url;

use crate::discovery::Capabilities;
use crate::error::Result;
use crate::http::{FetchError, HttpClient, Response, DEFAULT_MAX_BODY};
use crate::mechanism::Mechanism;

/// The default budget of a whole run.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(60);
/// The default wait of the long-polls that check holding, in seconds.
pub const DEFAULT_WAIT: u64 = 2;
/// How much later than its wait a long-poll may end: generous, for slow servers and loaded
/// machines (a late end only warns, too).
const SLACK: Duration = Duration::from_secs(3);
/// How long a change may take to arrive after the trigger ran.
const CHANGE_WAIT: Duration = Duration::from_secs(10);
/// How long the trigger command may run.
pub(crate) const TRIGGER_TIMEOUT: Duration = Duration::from_secs(15);
/// A pause between every listener being armed and the trigger, so requests just sent reach
/// the server first.
const SETTLE: Duration = Duration::from_millis(300);
/// How long a plain request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a body an excerpt shows.
const EXCERPT_BODY: usize = 400;
/// How many `Link` headers an excerpt shows.
const EXCERPT_LINKS: usize = 3;
/// How much of a header value an excerpt shows.
const EXCERPT_HEADER: usize = 240;

/// How to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// A shell command that changes the resource (`sh -c`); `None` skips change-dependent
    /// requirements.
    pub trigger: Option<String>,
    /// The time the whole run may take.
    pub budget: Duration,
    /// The wait of the long-polls that check holding, in seconds.
    pub wait: u64,
    /// Extra request headers (`-H`), sent only to the resource's origin.
    pub headers: Vec<(String, String)>,
    /// Certificate authorities (DER) to trust instead of the bundled roots (`--cacert`).
    pub ca_certs: Option<Vec<Vec<u8>>>,
    /// Where to receive webhook notifications (`--callback-listen`); with neither this nor
    /// `callback_url`, webhooks are skipped.
    pub callback_listen: Option<String>,
    /// The URL servers should notify, when not the listener's own (`--callback-url`).
    pub callback_url: Option<Url>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            trigger: None,
            budget: DEFAULT_BUDGET,
            wait: DEFAULT_WAIT,
            headers: Vec::new(),
            ca_certs: None,
            callback_listen: None,
            callback_url: None,
        }
    }
}

/// A requirement of the protocol that a check tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Requirement {
    /// The resource answers GET with 2xx.
    Discovery,
    /// `Link` headers parse without errors.
    Links,
    /// The response carries an `ETag`.
    EtagPresent,
    /// Two GETs of the same content carry the same `ETag`.
    EtagStable,
    /// A GET with a matching `If-None-Match` is answered 304.
    NotModified,
    /// JSON content is labelled as JSON (not, say, `text/html`).
    ContentType,
    /// A long-poll without news is held, not answered at once.
    LongPollHeld,
    /// A long-poll without news ends by its wait plus a little slack.
    LongPollTimely,
    /// A malformed wait is rejected (400) or ignored: not an error, not a hang.
    BadWaitHandled,
    /// The `--trigger` command ran and succeeded.
    Trigger,
    /// A change made by the trigger arrives over the transport.
    ChangeDelivered,
    /// An event stream is served as `text/event-stream`.
    SseContentType,
    /// An event stream's events are framed as the protocol says.
    SseFraming,
    /// A WebSocket endpoint negotiates the `liveresource` subprotocol.
    WsSubprotocol,
    /// A socket subscription is acknowledged.
    SubscribeAck,
    /// A multiplexed long-poll answers a JSON object of `{code, headers, body}` members.
    MultiplexBody,
    /// A changes response's `changes` link is the next checkpoint, not the same one.
    ChangesAdvance,
    /// A push to a subscription in `value` mode carries the value, not a part of it.
    PushIsValue,
    /// A form B stream update names the one before it (`Previous-ETag`,
    /// `Previous-Changes-Id`), so a client can notice a lost one.
    GapMarkers,
    /// A push subscription keeps receiving changes after another client's long-poll ended.
    SurvivesOtherClients,
    /// A webhook subscription is answered 201 with the subscription's `Location`.
    CallbackSubscribe,
    /// A webhook notification names the resource in its `Location` header.
    CallbackLocation,
    /// After `DELETE` of the subscription, no more notifications arrive.
    CallbackUnsubscribe,
    /// A probe finished within the run's budget (`--budget`).
    Budget,
}

/// How strongly a text asks for a requirement: what breaking it costs (FAIL or WARN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Required (or a conforming client fails without it): breaking it is a FAIL.
    Must,
    /// Recommended (or stated without a keyword): breaking it is a WARN.
    Should,
    /// Allowed: breaking it is a WARN at most.
    May,
}

impl Level {
    /// `MUST`, `SHOULD` or `MAY`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        }
    }
}

/// Where the texts are: named once, quoted by section in every source.
const SPEC_2014: &str = "2014 spec (fanout/liveresource protocol.md)";
const DRAFT_2016: &str = "2016 draft (liveresource/protocol)";
const FORM_B: &str = "form B (the test server's page; PROTOCOL.md)";

impl Requirement {
    /// Every requirement, in the order of the README's table.
    pub const ALL: [Requirement; 24] = [
        Requirement::Discovery,
        Requirement::Links,
        Requirement::EtagPresent,
        Requirement::EtagStable,
        Requirement::NotModified,
        Requirement::ContentType,
        Requirement::LongPollHeld,
        Requirement::LongPollTimely,
        Requirement::BadWaitHandled,
        Requirement::Trigger,
        Requirement::ChangeDelivered,
        Requirement::SseContentType,
        Requirement::SseFraming,
        Requirement::WsSubprotocol,
        Requirement::SubscribeAck,
        Requirement::MultiplexBody,
        Requirement::ChangesAdvance,
        Requirement::PushIsValue,
        Requirement::GapMarkers,
        Requirement::SurvivesOtherClients,
        Requirement::CallbackSubscribe,
        Requirement::CallbackLocation,
        Requirement::CallbackUnsubscribe,
        Requirement::Budget,
    ];

    /// A stable identifier, for scripts.
    pub fn id(self) -> &'static str {
        match self {
            Requirement::Discovery => "discovery",
            Requirement::Links => "links",
            Requirement::EtagPresent => "etag-present",
            Requirement::EtagStable => "etag-stable",
            Requirement::NotModified => "not-modified",
            Requirement::ContentType => "content-type",
            Requirement::LongPollHeld => "long-poll-held",
            Requirement::LongPollTimely => "long-poll-timely",
            Requirement::BadWaitHandled => "bad-wait-handled",
            Requirement::Trigger => "trigger",
            Requirement::ChangeDelivered => "change-delivered",
            Requirement::SseContentType => "sse-content-type",
            Requirement::SseFraming => "sse-framing",
            Requirement::WsSubprotocol => "ws-subprotocol",
            Requirement::SubscribeAck => "subscribe-ack",
            Requirement::MultiplexBody => "multiplex-body",
            Requirement::ChangesAdvance => "changes-advance",
            Requirement::PushIsValue => "push-is-value",
            Requirement::GapMarkers => "gap-markers",
            Requirement::SurvivesOtherClients => "survives-other-clients",
            Requirement::CallbackSubscribe => "callback-subscribe",
            Requirement::CallbackLocation => "callback-location",
            Requirement::CallbackUnsubscribe => "callback-unsubscribe",
            Requirement::Budget => "budget",
        }
    }

    /// What is required, in words.
    pub fn title(self) -> &'static str {
        match self {
            Requirement::Discovery => "GET answers 2xx",
            Requirement::Links => "Link headers well-formed",
            Requirement::EtagPresent => "ETag present",
            Requirement::EtagStable => "ETag stable between two GETs",
            Requirement::NotModified => "304 on a matching If-None-Match",
            Requirement::ContentType => "JSON labelled as JSON",
            Requirement::LongPollHeld => "long-poll held while nothing changes",
            Requirement::LongPollTimely => "long-poll ends by the wait plus slack",
            Requirement::BadWaitHandled => "malformed wait rejected (400) or ignored",
            Requirement::Trigger => "trigger command ran",
            Requirement::ChangeDelivered => "change delivered",
            Requirement::SseContentType => "content type text/event-stream",
            Requirement::SseFraming => "event framing",
            Requirement::WsSubprotocol => "subprotocol liveresource negotiated",
            Requirement::SubscribeAck => "subscription acknowledged",
            Requirement::MultiplexBody => "answer is an object of {code, headers, body} members",
            Requirement::ChangesAdvance => "changes link advances past the changes returned",
            Requirement::PushIsValue => "a value-mode push carries the value",
            Requirement::GapMarkers => "an update names the one before it",
            Requirement::SurvivesOtherClients => "a subscription survives other clients",
            Requirement::CallbackSubscribe => "webhook subscription answered 201 with Location",
            Requirement::CallbackLocation => "webhook notification names the resource (Location)",
            Requirement::CallbackUnsubscribe => "DELETE of the subscription stops notifications",
            Requirement::Budget => "probe finished within the budget",
        }
    }

    /// How strongly the texts ask for it. A rule stated without a keyword is a SHOULD unless
    /// breaking it makes a conforming client fail (then a MUST); a practice of lrwatch's own
    /// is at most a SHOULD.
    pub fn level(self) -> Level {
        match self {
            Requirement::Discovery
            | Requirement::Links
            | Requirement::EtagPresent
            | Requirement::Trigger
            | Requirement::ChangeDelivered
            | Requirement::SseContentType
            | Requirement::SseFraming
            | Requirement::WsSubprotocol
            | Requirement::MultiplexBody
            | Requirement::ChangesAdvance
            | Requirement::SurvivesOtherClients
            | Requirement::CallbackSubscribe
            | Requirement::CallbackLocation
            | Requirement::CallbackUnsubscribe => Level::Must,
            Requirement::EtagStable
            | Requirement::NotModified
            | Requirement::ContentType
            | Requirement::LongPollHeld
            | Requirement::LongPollTimely
            | Requirement::BadWaitHandled
            | Requirement::SubscribeAck
            | Requirement::PushIsValue
            | Requirement::GapMarkers
            | Requirement::Budget => Level::Should,
        }
    }

    /// Where the requirement comes from, by the section's name in the text, so a server
    /// author can look it up; over `mechanism` when the texts differ by mechanism.
    pub fn source(self, mechanism: Option<Mechanism>) -> String {
        use Mechanism as M;
        let by_mechanism = |m: Option<Mechanism>| -> String {
            match m {
                Some(M::ValueWait) => {
                    format!("{SPEC_2014}, \"Objects\"; {DRAFT_2016}, \"Long-polling\"")
                }
                Some(M::Changes | M::ChangesWait) => {
                    format!("{SPEC_2014}, \"Collections\"; {DRAFT_2016}, \"Long-polling\"")
                }
                Some(M::MultiplexWait) => {
                    format!("{SPEC_2014}, \"Multiplexing\"; {DRAFT_2016}, \"Multiplexing\"")
                }
                Some(M::ValueStream | M::ChangesStream | M::HintStream | M::MultiplexStream) => {
                    format!("{SPEC_2014}, \"Server-Sent Events\"; {FORM_B}, \"Server-Sent Events\"; {DRAFT_2016}, \"Stream\"")
                }
                Some(M::MultiplexWs) => format!("{SPEC_2014}, \"WebSockets\""),
                Some(M::MultiplexSocket) => {
                    format!("{FORM_B}, \"Multiplexing\"; {DRAFT_2016}, \"Multiplexing\"")
                }
                Some(M::ValueCallback | M::ChangesCallback | M::MultiplexCallbacks) => {
                    format!("{SPEC_2014}, \"Webhooks\"; {DRAFT_2016}, \"Callbacks\"")
                }
                _ => format!("{SPEC_2014}; {DRAFT_2016}"),
            }
        };
        match self {
            Requirement::Discovery => format!(
                "{SPEC_2014}, introduction (\"Resources indicate support ... using Link headers in HTTP responses\")"
            ),
            Requirement::Links => "RFC 8288, section 3 \"Link Serialisation in HTTP Headers\"".into(),
            Requirement::EtagPresent => format!(
                "{SPEC_2014}, \"Objects\" (\"by including an ETag\"); {DRAFT_2016}, \"Long-polling\""
            ),
            Requirement::EtagStable => {
                "RFC 7232, section 2.1 \"Weak versus Strong\" and 2.3 \"ETag\"".into()
            }
            Requirement::NotModified => {
                "RFC 7232, section 3.2 \"If-None-Match\" (\"SHOULD respond with a 304\")".into()
            }
            Requirement::ContentType => {
                "RFC 7231, section 3.1.1.5 \"Content-Type\" (\"SHOULD generate a Content-Type\")"
                    .into()
            }
            Requirement::LongPollHeld | Requirement::ChangeDelivered => by_mechanism(mechanism),
            Requirement::LongPollTimely => format!(
                "{} (the Wait header is \"a timeout value in seconds\"); RFC 7240, section 4.3 \"The wait Preference\"",
                by_mechanism(mechanism)
            ),
            Requirement::BadWaitHandled => {
                "RFC 7240, section 2 \"The Prefer Request Header Field\" (preferences not understood are ignored); no form says more"
                    .into()
            }
            Requirement::Trigger => "lrwatch check's own (--trigger): not a protocol rule".into(),
            Requirement::SseContentType => {
                "WHATWG HTML, \"Server-sent events\" (a stream not served as text/event-stream fails the connection)".into()
            }
            Requirement::SseFraming => format!(
                "WHATWG HTML, \"Event stream interpretation\"; {}",
                by_mechanism(mechanism)
            ),
            Requirement::WsSubprotocol => format!(
                "{SPEC_2014}, \"WebSockets\" (\"must negotiate the liveresource protocol\"); {DRAFT_2016}, \"Multiplexing\" (MUST); RFC 6455, section 4.2.2"
            ),
            Requirement::SubscribeAck => by_mechanism(mechanism),
            Requirement::MultiplexBody => format!(
                "{SPEC_2014}, \"Multiplexing\" (\"a special format of a JSON object\"); {DRAFT_2016}, \"Multiplexing\""
            ),
            Requirement::ChangesAdvance => format!(
                "{SPEC_2014}, \"Collections\" (\"all items that were modified after some recent checkpoint\"); {DRAFT_2016}, \"Long-polling\""
            ),
            Requirement::PushIsValue => format!(
                "{SPEC_2014}, \"WebSockets\" (mode \"value\"; \"For values:\" the event's body is the object)"
            ),
            Requirement::GapMarkers => format!(
                "{FORM_B}, \"Server-Sent Events\" (\"The Previous-ETag and Previous-Changes-Id fields inside the updates can be used to detect missing data\")"
            ),
            Requirement::SurvivesOtherClients => format!(
                "{}: a subscription is notified of every change until it is cancelled",
                by_mechanism(mechanism)
            ),
            Requirement::CallbackSubscribe
            | Requirement::CallbackLocation
            | Requirement::CallbackUnsubscribe => format!(
                "{SPEC_2014}, \"Webhooks\"; {DRAFT_2016}, \"Callbacks\"; resthooks.org"
            ),
            Requirement::Budget => "lrwatch check's own (--budget): not a protocol rule".into(),
        }
    }
}

/// How a requirement fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Met.
    Pass,
    /// A MUST not met: the finding shows the request and response.
    Fail,
    /// A SHOULD (or MAY) not met: the finding shows the request and response.
    Warn,
    /// Not tested (not advertised, no trigger, or something it depends on failed).
    Skip,
}

impl Outcome {
    /// `PASS`, `FAIL`, `WARN` or `SKIP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Warn => "WARN",
            Outcome::Skip => "SKIP",
        }
    }
}

/// One requirement, checked over one mechanism (or for the resource as a whole).
#[derive(Debug, Clone)]
pub struct Finding {
    /// The requirement.
    pub requirement: Requirement,
    /// The mechanism it was checked over; `None` for the resource as a whole.
    pub mechanism: Option<Mechanism>,
    /// How it fared.
    pub outcome: Outcome,
    /// What was seen, in a line.
    pub detail: String,
    /// On failure, the request that shows it.
    pub request: Option<String>,
    /// On failure, an excerpt of the response that shows it.
    pub response: Option<String>,
}

impl Finding {
    fn new(
        requirement: Requirement,
        mechanism: Option<Mechanism>,
        outcome: Outcome,
        detail: impl Into<String>,
    ) -> Finding {
        Finding {
            requirement,
            mechanism,
            outcome,
            detail: detail.into(),
            request: None,
            response: None,
        }
    }

    fn pass(r: Requirement, m: Option<Mechanism>, detail: impl Into<String>) -> Finding {
        Finding::new(r, m, Outcome::Pass, detail)
    }

    fn skip(r: Requirement, m: Option<Mechanism>, detail: impl Into<String>) -> Finding {
        Finding::new(r, m, Outcome::Skip, detail)
    }

    fn fail(
        r: Requirement,
        m: Option<Mechanism>,
        detail: impl Into<String>,
        exchange: Option<&Exchange>,
    ) -> Finding {
        // Breaking a MUST fails; a SHOULD or MAY only warns.
        let outcome = if r.level() == Level::Must {
            Outcome::Fail
        } else {
            Outcome::Warn
        };
        let mut f = Finding::new(r, m, outcome, detail);
        if let Some(x) = exchange {
            f.request = Some(x.request.clone());
            f.response = x.response.clone();
        }
        f
    }

    /// PASS or FAIL by `ok`.
    fn judge(
        r: Requirement,
        m: Option<Mechanism>,
        ok: bool,
        detail: impl Into<String>,
        exchange: Option<&Exchange>,
    ) -> Finding {
        if ok {
            Finding::pass(r, m, detail)
        } else {
            Finding::fail(r, m, detail, exchange)
        }
    }
}

/// The outcome of a whole run.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The URL checked.
    pub url: Url,
    /// One finding per requirement and mechanism, in a stable order.
    pub findings: Vec<Finding>,
    /// How long the run took.
    pub took: Duration,
    /// The budget it had.
    pub budget: Duration,
}

impl CheckReport {
    /// How many findings had this outcome.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.findings
            .iter()
            .filter(|f| f.outcome == outcome)
            .count()
    }

    /// Whether nothing failed.
    pub fn passed(&self) -> bool {
        self.count(Outcome::Fail) == 0
    }

    /// Whether nothing failed or warned (`--strict`).
    pub fn passed_strictly(&self) -> bool {
        self.passed() && self.count(Outcome::Warn) == 0
    }

    /// The report as JSON, for scripts.
    pub fn to_json(&self) -> Value {
        json!({
            "url": self.url.as_str(),
            "ok": self.passed(),
            "passed": self.count(Outcome::Pass),
            "failed": self.count(Outcome::Fail),
            "warned": self.count(Outcome::Warn),
            "skipped": self.count(Outcome::Skip),
            "took": (self.took.as_secs_f64() * 1000.0).round() / 1000.0,
            "budget": self.budget.as_secs_f64(),
            "results": self.findings.iter().map(|f| json!({
                "requirement": f.requirement.id(),
                "title": f.requirement.title(),
                "level": f.requirement.level().as_str(),
                "source": f.requirement.source(f.mechanism),
                "mechanism": f.mechanism.map(Mechanism::as_str),
                "outcome": f.outcome.as_str().to_ascii_lowercase(),
                "detail": f.detail,
                "request": f.request,
                "response": f.response,
            })).collect::<Vec<_>>(),
        })
    }
}

/// A request and (an excerpt of) its response, for a failure's evidence.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    request: String,
    response: Option<String>,
}

impl Exchange {
    fn new(method: &str, url: &Url, headers: &[(&str, String)]) -> Exchange {
        let mut request = format!("{method} {url}");
        for (name, value) in headers {
            let _ = write!(request, "\n{name}: {value}");
        }
        Exchange {
            request,
            response: None,
        }
    }

    fn with_response(mut self, response: &Response) -> Exchange {
        self.response = Some(excerpt(response.status, &response.headers, &response.body));
        self
    }

    fn with_text(mut self, text: impl Into<String>) -> Exchange {
        self.response = Some(text.into());
        self
    }
}

/// The status line, the headers (long values cut) and the start of the body.
fn excerpt(status: u16, headers: &ureq::http::HeaderMap, body: &[u8]) -> String {
    let mut out = format!("HTTP {status}");
    let links = headers.get_all("link").iter().count();
    let mut shown_links = 0;
    for (name, value) in headers {
        if name == "link" {
            shown_links += 1;
            if shown_links > EXCERPT_LINKS {
                if shown_links == EXCERPT_LINKS + 1 {
                    let _ = write!(out, "\nlink: ... ({} more)", links - EXCERPT_LINKS);
                }
                continue;
            }
        }
        let value = String::from_utf8_lossy(value.as_bytes());
        let _ = write!(out, "\n{name}: {}", cut(&value, EXCERPT_HEADER));
    }
    if !body.is_empty() {
        let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_BODY)]);
        let more = if body.len() > EXCERPT_BODY { "..." } else { "" };
        let _ = write!(out, "\n\n{text}{more}");
    }
    out
}

fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// What the trigger did, as the probes learn it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fired {
    /// The trigger ran and succeeded at this moment.
    Changed(Instant),
    /// No trigger was given.
    NoTrigger,
    /// The trigger failed (why).
    Failed(String),
}

#[derive(Debug)]
struct GateState {
    unarmed: usize,
    /// When the trigger started: a change seen earlier is the resource's own.
    started: Option<Instant>,
    fired: Option<Fired>,
}

/// Where probes say they are ready for the change, and learn what the trigger did.
#[derive(Debug)]
struct Gate {
    state: Mutex<GateState>,
    wake: Condvar,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What every probe shares.
pub(crate) struct ProbeEnv {
    pub(crate) url: Url,
    pub(crate) http: HttpClient,
    pub(crate) caps: Capabilities,
    /// The discovery response.
    pub(crate) first: Response,
    pub(crate) options: CheckOptions,
    pub(crate) deadline: Instant,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    gate: Gate,
}

impl ProbeEnv {
    /// Time left in the budget.
    pub(crate) fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Whether the budget has run out (so a missing answer proves nothing).
    pub(crate) fn out_of_budget(&self) -> bool {
        self.left() < Duration::from_millis(50)
    }

    /// `d`, or less when the budget ends sooner.
    pub(crate) fn bounded(&self, d: Duration) -> Duration {
        d.min(self.left()).max(Duration::from_millis(1))
    }

    /// Whether a trigger was given.
    pub(crate) fn has_trigger(&self) -> bool {
        self.options.trigger.is_some()
    }

    /// The long-poll wait for holding checks: the option, at least the server's minimum.
    pub(crate) fn wait_for(&self, wait_min: Option<u64>) -> u64 {
        self.options.wait.max(wait_min.unwrap_or(0)).max(1)
    }

    /// A GET with these headers, timed; the exchange for evidence either way.
    pub(crate) fn get(
        &self,
        url: &Url,
        headers: &[(&str, String)],
        timeout: Duration,
    ) -> (std::result::Result<(Response, Duration), String>, Exchange) {
        let exchange = Exchange::new("GET", url, headers);
        let started = Instant::now();
        match self
            .http
            .get(url, &self.url, headers, self.bounded(timeout))
        {
            Ok(r) => {
                let took = started.elapsed();
                let exchange = exchange.with_response(&r);
                (Ok((r, took)), exchange)
            }
            Err(e) => {
                let mut why = e.to_string();
                if self.out_of_budget() {
                    why.push_str("; the budget ran out");
                }
                let exchange = exchange.with_text(format!("(no response: {why})"));
                (Err(why), exchange)
            }
        }
    }

    /// When a change should have arrived by: some time after the trigger ran (or, before it
    /// ran, after it could), within the budget.
    pub(crate) fn change_deadline(&self) -> Instant {
        let state = self.gate.lock();
        let by = match state.fired {
            Some(Fired::Changed(at)) => at + CHANGE_WAIT,
            // No change is coming: nothing to wait for.
            Some(Fired::NoTrigger | Fired::Failed(_)) => Instant::now(),
            None => Instant::now() + CHANGE_WAIT + TRIGGER_TIMEOUT,
        };
        by.min(self.deadline)
    }

    /// What the trigger did, waiting until it has run (or the budget ends).
    pub(crate) fn fired(&self) -> Fired {
        let guard = self.gate.lock();
        let (guard, _) = self
            .gate
            .wake
            .wait_timeout_while(guard, self.left(), |s| s.fired.is_none())
            .unwrap_or_else(|e| e.into_inner());
        guard
            .fired
            .clone()
            .unwrap_or_else(|| Fired::Failed("the budget ran out before the trigger ran".into()))
    }

    /// When the trigger started, if it has.
    pub(crate) fn trigger_started(&self) -> Option<Instant> {
        self.gate.lock().started
    }
}

/// A probe's pass to the gate: armed once, by hand or when dropped.
pub(crate) struct Probe<'a> {
    env: &'a ProbeEnv,
    armed: bool,
}

impl Probe<'_> {
    /// Ready for the change.
    pub(crate) fn arm(&mut self) {
        if !self.armed {
            self.armed = true;
            let mut state = self.env.gate.lock();
            state.unarmed = state.unarmed.saturating_sub(1);
            self.env.gate.wake.notify_all();
        }
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        self.arm();
    }
}

/// The finding for a change-dependent requirement that cannot be tested, if it cannot.
pub(crate) fn change_skip(env: &ProbeEnv, mechanism: Mechanism) -> Option<Finding> {
    if !env.has_trigger() {
        return Some(Finding::skip(
            Requirement::ChangeDelivered,
            Some(mechanism),
            "no --trigger given",
        ));
    }
    None
}

/// The finding for a change that did not arrive: FAIL when the trigger ran, else SKIP.
pub(crate) fn not_delivered(
    env: &ProbeEnv,
    mechanism: Mechanism,
    detail: String,
    exchange: Option<&Exchange>,
) -> Finding {
    match env.fired() {
        Fired::Changed(_) if env.out_of_budget() => Finding::skip(
            Requirement::ChangeDelivered,
            Some(mechanism),
            "the budget ran out before the change arrived",
        ),
        Fired::Changed(_) => Finding::fail(
            Requirement::ChangeDelivered,
            Some(mechanism),
            detail,
            exchange,
        ),
        Fired::NoTrigger => Finding::skip(
            Requirement::ChangeDelivered,
            Some(mechanism),
            "no --trigger given",
        ),
        Fired::Failed(_) => Finding::skip(
            Requirement::ChangeDelivered,
            Some(mechanism),
            "the trigger failed",
        ),
    }
}

/// The finding for a change that arrived at `arrived` (after the trigger started).
pub(crate) fn delivered(
    env: &ProbeEnv,
    mechanism: Mechanism,
    what: &str,
    arrived: Instant,
) -> Finding {
    let started = env.trigger_started().unwrap_or(arrived);
    match env.fired() {
        Fired::Changed(_) => Finding::pass(
            Requirement::ChangeDelivered,
            Some(mechanism),
            format!(
                "{what} {:.2}s after the trigger started",
                arrived.saturating_duration_since(started).as_secs_f64()
            ),
        ),
        Fired::NoTrigger => Finding::skip(
            Requirement::ChangeDelivered,
            Some(mechanism),
            "no --trigger given",
        ),
        Fired::Failed(_) => Finding::skip(
            Requirement::ChangeDelivered,
            Some(mechanism),
            "the trigger failed",
        ),
    }
}

type ProbeFn = fn(&ProbeEnv, &mut Probe<'_>) -> Vec<Finding>;
/// A probe and the mechanism it checks (`None`: the resource as a whole), by which the
/// report names it should it run out of budget.
type Named = (Option<Mechanism>, ProbeFn);

/// How long after the budget the run waits for probes still running before it reports them
/// as out of budget and leaves them: their own waits, requests and sockets end at the budget
/// (see [`ProbeEnv::deadline`]), so this is only the time to notice.
const GRACE: Duration = Duration::from_millis(500);

/// Checks the resource at `url`, requirement by requirement, within the budget.
pub fn check(url: &Url, options: &CheckOptions) -> Result<CheckReport> {
    let started = Instant::now();
    let deadline = started + options.budget;
    let headers = crate::http::user_headers(&options.headers)?;
    let http = HttpClient::new(headers, DEFAULT_MAX_BODY, options.ca_certs.as_deref());
    let tls = Arc::new(crate::http::wss_tls_config(
        options.ca_certs.as_deref(),
        false,
    )?);
    // Every request, its body and any stream read to the end, is over by the deadline.
    let http = http.until(deadline);
    let timeout = REQUEST_TIMEOUT.min(options.budget);
    let first = match http.get(url, url, &[], timeout) {
        Ok(r) => r,
        // A server that has not answered in full by the end of the budget (a body dripped a
        // byte at a time, say) fails discovery; one that cannot be reached is an error.
        Err(FetchError::Transport(reason)) if Instant::now() + GRACE >= deadline => {
            let exchange =
                Exchange::new("GET", url, &[]).with_text(format!("(no complete answer: {reason})"));
            return Ok(CheckReport {
                url: url.clone(),
                findings: vec![Finding::fail(
                    Requirement::Discovery,
                    None,
                    format!(
                        "no complete answer within the budget ({}s)",
                        options.budget.as_secs_f64()
                    ),
                    Some(&exchange),
                )],
                took: started.elapsed(),
                budget: options.budget,
            });
        }
        Err(e) => return Err(e.into_error(url)),
    };
    let caps = Capabilities::from_headers(&first.headers, &first.url);
    let mut findings = Vec::new();
    let discovery = Exchange::new("GET", url, &[]).with_response(&first);
    if !(200..300).contains(&first.status) {
        findings.push(Finding::fail(
            Requirement::Discovery,
            None,
            format!("answered {}", first.status),
            Some(&discovery),
        ));
        return Ok(CheckReport {
            url: url.clone(),
            findings,
            took: started.elapsed(),
            budget: options.budget,
        });
    }
    findings.push(Finding::pass(
        Requirement::Discovery,
        None,
        format!(
            "{}; offers {}",
            first.status,
            caps.offered_names().join(", ")
        ),
    ));

    // Probes run in phases, each with its own trigger run: some servers lose one client's
    // subscription when another client's long-poll ends (see `survival`), so long-polls and
    // pushes are checked apart, and that loss only where it is the point.
    let mut first_phase: Vec<Named> = vec![(None, basics::probe)];
    first_phase.extend(long_poll::probes(&caps));
    first_phase.extend(changes::probes(&caps));
    let mut pushes: Vec<Named> = streams::probes(&caps);
    pushes.extend(sockets::probes(&caps));
    let webhooks = callbacks::probes(&caps, options);
    let skipped_webhooks = callbacks::skipped(&caps, options);
    let env = Arc::new(ProbeEnv {
        url: url.clone(),
        http,
        caps,
        first,
        options: options.clone(),
        deadline,
        tls,
        gate: Gate {
            state: Mutex::new(GateState {
                unarmed: 0,
                started: None,
                fired: None,
            }),
            wake: Condvar::new(),
        },
    });
    let phase = |name: &str, probes: &[Named], findings: &mut Vec<Finding>| {
        if probes.is_empty() {
            return;
        }
        let (trigger, results) = run_phase(&env, name, probes);
        let mut results = results.into_iter();
        if name == "long-polls" {
            // The basic probe's findings first, then the trigger's.
            findings.extend(results.next().unwrap_or_default());
        }
        findings.extend(trigger);
        findings.extend(results.flatten());
    };
    phase("long-polls", &first_phase, &mut findings);
    phase("pushes", &pushes, &mut findings);
    // Survival, over the first push mechanism that delivered alone.
    let survivor = survival::PUSHES.into_iter().find(|m| {
        findings.iter().any(|f| {
            f.requirement == Requirement::ChangeDelivered
                && f.mechanism == Some(*m)
                && f.outcome == Outcome::Pass
        })
    });
    if survival::has_long_poll(&env.caps) && !pushes.is_empty() {
        match survivor {
            Some(m) => phase("survival", &[survival::probe_for(m)], &mut findings),
            None => findings.push(Finding::skip(
                Requirement::SurvivesOtherClients,
                None,
                if env.has_trigger() {
                    "no push mechanism delivered a change alone"
                } else {
                    "no --trigger given"
                },
            )),
        }
    }
    phase("webhooks", &webhooks, &mut findings);
    findings.extend(skipped_webhooks);
    Ok(CheckReport {
        url: url.clone(),
        findings,
        took: started.elapsed(),
        budget: options.budget,
    })
}

/// Runs one phase's probes, each on a thread of its own, and the trigger once every one of
/// them is listening; their findings, in order, and the trigger's.
fn run_phase(
    env: &Arc<ProbeEnv>,
    phase: &str,
    probes: &[Named],
) -> (Option<Finding>, Vec<Vec<Finding>>) {
    {
        let mut state = env.gate.lock();
        state.unarmed = probes.len();
        state.started = None;
        state.fired = None;
    }
    let options = &env.options;
    // Probes bound their own waits by the budget; one that the server still keeps busy after
    // it (and the grace) is left behind, reported as out of budget, so the run ends on time
    // whatever the server does (the process does not wait for such a thread when it exits).
    let (tx, rx) = mpsc::channel();
    for (i, (_, probe)) in probes.iter().enumerate() {
        let (mine, sender, probe) = (Arc::clone(env), tx.clone(), *probe);
        let spawned = std::thread::Builder::new()
            .name("lrwatch-check-probe".into())
            .spawn(move || {
                let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let mut pass = Probe {
                        env: &mine,
                        armed: false,
                    };
                    probe(&mine, &mut pass)
                }));
                let _ = sender.send((i, found.ok()));
            });
        if spawned.is_err() {
            let _ = tx.send((i, None));
            let mut state = env.gate.lock();
            state.unarmed = state.unarmed.saturating_sub(1);
        }
    }
    drop(tx);
    let trigger = fire(env, phase);
    let mut done: Vec<Option<Option<Vec<Finding>>>> = vec![None; probes.len()];
    let give_up = env.deadline + GRACE;
    while done.iter().any(Option::is_none) {
        match rx.recv_timeout(give_up.saturating_duration_since(Instant::now())) {
            Ok((i, found)) => done[i] = Some(found),
            Err(_) => break,
        }
    }
    let results = done
        .into_iter()
        .zip(probes)
        .map(|(found, (mechanism, _))| match found {
            Some(Some(findings)) => findings,
            Some(None) => vec![Finding::fail(
                Requirement::Discovery,
                None,
                "a probe crashed (a bug in lrwatch)",
                None,
            )],
            None => vec![Finding::fail(
                Requirement::Budget,
                *mechanism,
                format!(
                    "the {} probe did not finish within the budget ({}s): the server kept it busy",
                    mechanism.map_or("basic", Mechanism::as_str),
                    options.budget.as_secs_f64()
                ),
                None,
            )],
        })
        .collect();
    (trigger, results)
}

/// Waits until every probe is armed, runs the trigger, and tells the probes what it did; the
/// trigger's finding names the phase.
fn fire(env: &ProbeEnv, phase: &str) -> Option<Finding> {
    {
        let guard = env.gate.lock();
        let _ = env
            .gate
            .wake
            .wait_timeout_while(guard, env.left(), |s| s.unarmed > 0)
            .unwrap_or_else(|e| e.into_inner());
    }
    let (fired, finding) = match &env.options.trigger {
        None => (Fired::NoTrigger, None),
        Some(_) if env.out_of_budget() => {
            let why = "the budget ran out before every mechanism was listening";
            (
                Fired::Failed(why.into()),
                Some(Finding::skip(Requirement::Trigger, None, why)),
            )
        }
        Some(command) => {
            std::thread::sleep(env.bounded(SETTLE));
            env.gate.lock().started = Some(Instant::now());
            match run_trigger(command, env.bounded(TRIGGER_TIMEOUT)) {
                Ok(took) => (
                    Fired::Changed(Instant::now()),
                    Some(Finding::pass(
                        Requirement::Trigger,
                        None,
                        format!("{phase}: exit 0 after {:.2}s", took.as_secs_f64()),
                    )),
                ),
                Err((why, output)) => {
                    let exchange = Exchange {
                        request: format!("sh -c {command}"),
                        response: Some(output),
                    };
                    (
                        Fired::Failed(why.clone()),
                        Some(Finding::fail(
                            Requirement::Trigger,
                            None,
                            format!("{phase}: {why}"),
                            Some(&exchange),
                        )),
                    )
                }
            }
        }
    };
    env.gate.lock().fired = Some(fired);
    env.gate.wake.notify_all();
    finding
}

/// Runs the trigger with `sh -c`; how long it took, or why it failed and what it printed.
fn run_trigger(
    command: &str,
    timeout: Duration,
) -> std::result::Result<Duration, (String, String)> {
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| (format!("cannot run sh: {e}"), String::new()))?;
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(err) = stderr.as_mut() {
            let _ = err.take(64 * 1024).read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    });
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let output = reader.join().unwrap_or_default();
                return if status.success() {
                    Ok(started.elapsed())
                } else {
                    Err((format!("the trigger failed ({status})"), output))
                };
            }
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err((
                    format!(
                        "the trigger did not finish within {:.1}s",
                        timeout.as_secs_f64()
                    ),
                    String::new(),
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err((format!("cannot wait for the trigger: {e}"), String::new())),
        }
    }
}

/// Whether a response whose body is JSON says so: `application/json`, any `+json` type, or
/// form A's `application/liveresource-multiplex`. A body that is not JSON (or is empty) has
/// nothing to say here.
pub(crate) fn json_label(response: &Response) -> std::result::Result<String, String> {
    let content_type = response.header("content-type").unwrap_or("").trim();
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let body = String::from_utf8_lossy(&response.body);
    if body.trim().is_empty() || serde_json::from_str::<Value>(body.trim()).is_err() {
        return Ok(format!("not JSON ({})", display_type(content_type)));
    }
    let json = media == "application/json"
        || media == "text/json"
        || media.ends_with("+json")
        || media == "application/liveresource-multiplex";
    if json {
        Ok(media)
    } else {
        Err(format!(
            "JSON content labelled {}: clients that go by the label do not read it as JSON",
            display_type(content_type)
        ))
    }
}

fn display_type(content_type: &str) -> String {
    if content_type.is_empty() {
        "without a Content-Type".into()
    } else {
        format!("{content_type:?}")
    }
}

/// `url` with `ws` read as `http` and `wss` as `https`: a socket's link and the resource it
/// serves are on one origin when only that tells them apart.
fn as_http(url: &Url) -> Url {
    let mut u = url.clone();
    let scheme = match url.scheme() {
        "ws" => "http",
        "wss" => "https",
        _ => return u,
    };
    let _ = u.set_scheme(scheme);
    u
}

/// How to name a resource to a multiplex or socket endpoint, as the texts' examples do: by
/// its path (and query) when the endpoint is on the same host and port (`ws` as `http`, `wss`
/// as `https`), else by its absolute URL. Servers may only know paths.
pub(crate) fn uri_for(endpoint: &Url, resource: &Url) -> String {
    if as_http(endpoint).origin() == as_http(resource).origin() {
        let mut s = resource.path().to_string();
        if let Some(q) = resource.query() {
            s.push('?');
            s.push_str(q);
        }
        s
    } else {
        resource.to_string()
    }
}

/// Whether `uri`, as a server wrote it in a message from `endpoint`, names `resource`:
/// compared resolved (against the endpoint, `ws` as `http`), never as text.
pub(crate) fn names(endpoint: &Url, uri: &str, resource: &Url) -> bool {
    let Ok(mut resolved) = as_http(endpoint).join(uri.trim()) else {
        return false;
    };
    resolved.set_fragment(None);
    let mut resource = as_http(resource);
    resource.set_fragment(None);
    resolved == resource
}

/// What a multiplexed or socket subscription follows: the resource's value, or for a
/// collection (changes links, no ETag) its changes link.
pub(crate) fn subject(env: &ProbeEnv) -> (Url, bool) {
    if env.caps.etag.is_none() {
        if let Some(changes) = env.caps.offer(Mechanism::Changes) {
            return (changes.target.clone(), true);
        }
    }
    (env.first.url.clone(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_run_and_fail_visibly() {
        assert!(run_trigger("true", Duration::from_secs(5)).is_ok());
        let (why, output) =
            run_trigger("echo oops >&2; exit 3", Duration::from_secs(5)).unwrap_err();
        assert!(why.contains("exit status: 3"), "{why}");
        assert_eq!(output.trim(), "oops");
        let (why, _) = run_trigger("sleep 5", Duration::from_millis(100)).unwrap_err();
        assert!(why.contains("did not finish"), "{why}");
    }

    #[test]
    fn without_a_trigger_nothing_fails_and_changes_are_skipped() {
        let server = crate::server::Server::bind("127.0.0.1:0")
            .and_then(crate::server::Server::spawn)
            .unwrap();
        let url = Url::parse(&format!(
            "http://{}/counter/lib?form=a",
            server.local_addr()
        ))
        .unwrap();
        let report = check(
            &url,
            &CheckOptions {
                budget: Duration::from_secs(20),
                ..CheckOptions::default()
            },
        )
        .unwrap();
        assert!(report.passed(), "{:#}", report.to_json());
        let skipped: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.requirement == Requirement::ChangeDelivered)
            .map(|f| f.outcome)
            .collect();
        assert!(!skipped.is_empty());
        assert!(skipped.iter().all(|o| *o == Outcome::Skip));
        assert!(report.took < Duration::from_secs(10));
    }

    #[test]
    fn changes_bodies_with_items() {
        assert!(long_poll::has_items(b"[{\"id\":1}]"));
        assert!(!long_poll::has_items(b"[]"));
        assert!(!long_poll::has_items(b" "));
        assert!(long_poll::has_items(b"+3 lines"));
        let base = Url::parse("http://h/items/").unwrap();
        let links =
            vec!["</items/?since=2>; rel=changes, </items/?since=1>; rel=prev-changes".to_string()];
        assert_eq!(
            long_poll::next_checkpoint(&links, &base).unwrap().as_str(),
            "http://h/items/?since=2"
        );
    }

    #[test]
    fn resources_are_named_by_path_on_one_origin_and_compared_resolved() {
        let ws = Url::parse("ws://h:8/ws/").unwrap();
        let resource = Url::parse("http://h:8/obj/h?x=1").unwrap();
        assert_eq!(uri_for(&ws, &resource), "/obj/h?x=1");
        let elsewhere = Url::parse("ws://h:9/ws/").unwrap();
        assert_eq!(uri_for(&elsewhere, &resource), "http://h:8/obj/h?x=1");
        let wss = Url::parse("wss://h/ws/").unwrap();
        assert_eq!(uri_for(&wss, &Url::parse("https://h/a").unwrap()), "/a");
        assert!(names(&ws, "/obj/h?x=1", &resource));
        assert!(names(&ws, "http://h:8/obj/h?x=1", &resource));
        assert!(names(&ws, "../obj/h?x=1", &resource));
        assert!(!names(&ws, "/obj/h", &resource));
        assert!(!names(&elsewhere, "/obj/h?x=1", &resource));
    }

    #[test]
    fn every_requirement_has_a_level_and_a_source() {
        for r in Requirement::ALL {
            assert!(!r.source(None).is_empty(), "{}", r.id());
            assert!(!r.title().is_empty());
        }
        assert_eq!(Requirement::BadWaitHandled.level(), Level::Should);
        assert_eq!(Requirement::ChangeDelivered.level(), Level::Must);
    }

    #[test]
    fn excerpts_cut_long_values() {
        assert_eq!(cut("abcdef", 3), "abc...");
        assert_eq!(cut("é", 1), "...");
        let mut headers = ureq::http::HeaderMap::new();
        headers.insert("etag", "\"1\"".parse().unwrap());
        assert_eq!(excerpt(304, &headers, b""), "HTTP 304\netag: \"1\"");
    }
}
