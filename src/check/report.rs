//! What a check finds: a requirement of the protocol with its level and source, its outcome
//! for one mechanism with the evidence, and the report of them all.

use std::time::Duration;

use serde_json::{json, Value};
use url::Url;

use super::Exchange;
use crate::mechanism::Mechanism;

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
            // Practices of lrwatch's own, not of the protocol: at most a SHOULD. A failed
            // trigger is the user's command failing, not the server; the run still ends in
            // error (see `CheckReport::ok`), since what needed the change went unchecked.
            | Requirement::Trigger
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
            Requirement::Trigger => "lrwatch check's own (the trigger it is given): not a protocol rule".into(),
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
            Requirement::Budget => "lrwatch check's own (its time budget): not a protocol rule".into(),
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
    /// For a skip: what the user could give for it to be checked (a program names its option).
    pub needs: Option<Needs>,
}

/// What a skipped requirement needed that the run was not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Needs {
    /// A trigger: a way to change the resource, so that change delivery can be checked.
    Trigger,
    /// An address where webhook notifications can be received.
    Webhooks,
}

impl Needs {
    /// `trigger` or `webhooks` (the JSON report's `needs`).
    pub fn as_str(self) -> &'static str {
        match self {
            Needs::Trigger => "trigger",
            Needs::Webhooks => "webhooks",
        }
    }
}

/// The detail of a finding skipped for want of a trigger.
pub(super) const NO_TRIGGER: &str = "no trigger given";

impl Finding {
    pub(super) fn new(
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
            needs: None,
        }
    }

    pub(super) fn pass(r: Requirement, m: Option<Mechanism>, detail: impl Into<String>) -> Finding {
        Finding::new(r, m, Outcome::Pass, detail)
    }

    pub(super) fn skip(r: Requirement, m: Option<Mechanism>, detail: impl Into<String>) -> Finding {
        Finding::new(r, m, Outcome::Skip, detail)
    }

    /// SKIP for want of what `needs` names.
    pub(super) fn wanting(
        r: Requirement,
        m: Option<Mechanism>,
        needs: Needs,
        detail: impl Into<String>,
    ) -> Finding {
        Finding {
            needs: Some(needs),
            ..Finding::skip(r, m, detail)
        }
    }

    pub(super) fn fail(
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
    pub(super) fn judge(
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

    /// Whether the `--trigger` command failed (or did not finish): the user's command, not
    /// the server, so it only warns, but what needed the change went unchecked.
    pub fn trigger_failed(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.requirement == Requirement::Trigger && f.outcome == Outcome::Warn)
    }

    /// The run's verdict, which the exit status tells: nothing failed, the trigger (if any)
    /// ran, and, when `strict`, nothing warned.
    pub fn ok(&self, strict: bool) -> bool {
        let passed = if strict {
            self.passed_strictly()
        } else {
            self.passed()
        };
        passed && !self.trigger_failed()
    }

    /// The report as JSON, for scripts; `ok` is [`CheckReport::ok`] with `strict`, so it
    /// agrees with the exit status.
    pub fn to_json(&self, strict: bool) -> Value {
        json!({
            "url": self.url.as_str(),
            "ok": self.ok(strict),
            "strict": strict,
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
                "needs": f.needs.map(Needs::as_str),
                "request": f.request,
                "response": f.response,
            })).collect::<Vec<_>>(),
        })
    }
}
