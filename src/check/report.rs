//! What a check finds: a requirement of the protocol, its outcome for one mechanism with the
//! evidence, and the report of them all.

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
    /// A long-poll without news is held, not answered at once.
    LongPollHeld,
    /// A long-poll without news ends by its wait plus a little slack.
    LongPollTimely,
    /// A malformed wait is answered 400 at once.
    BadWaitRejected,
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
    /// Webhooks (not exercised by this version).
    Callbacks,
    /// A probe finished within the run's budget (`--budget`).
    Budget,
}

impl Requirement {
    /// A stable identifier, for scripts.
    pub fn id(self) -> &'static str {
        match self {
            Requirement::Discovery => "discovery",
            Requirement::Links => "links",
            Requirement::EtagPresent => "etag-present",
            Requirement::EtagStable => "etag-stable",
            Requirement::NotModified => "not-modified",
            Requirement::LongPollHeld => "long-poll-held",
            Requirement::LongPollTimely => "long-poll-timely",
            Requirement::BadWaitRejected => "bad-wait-rejected",
            Requirement::Trigger => "trigger",
            Requirement::ChangeDelivered => "change-delivered",
            Requirement::SseContentType => "sse-content-type",
            Requirement::SseFraming => "sse-framing",
            Requirement::WsSubprotocol => "ws-subprotocol",
            Requirement::SubscribeAck => "subscribe-ack",
            Requirement::MultiplexBody => "multiplex-body",
            Requirement::ChangesAdvance => "changes-advance",
            Requirement::Callbacks => "callbacks",
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
            Requirement::LongPollHeld => "long-poll held while nothing changes",
            Requirement::LongPollTimely => "long-poll ends by the wait plus slack",
            Requirement::BadWaitRejected => "malformed wait rejected with 400",
            Requirement::Trigger => "trigger command ran",
            Requirement::ChangeDelivered => "change delivered",
            Requirement::SseContentType => "content type text/event-stream",
            Requirement::SseFraming => "event framing",
            Requirement::WsSubprotocol => "subprotocol liveresource negotiated",
            Requirement::SubscribeAck => "subscription acknowledged",
            Requirement::MultiplexBody => "answer is an object of {code, headers, body} members",
            Requirement::ChangesAdvance => "changes link advances past the changes returned",
            Requirement::Callbacks => "webhooks",
            Requirement::Budget => "probe finished within the budget",
        }
    }
}

/// How a requirement fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Met.
    Pass,
    /// Not met: the finding shows the request and response.
    Fail,
    /// Not tested (not advertised, no trigger, or something it depends on failed).
    Skip,
}

impl Outcome {
    /// `PASS`, `FAIL` or `SKIP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
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
        }
    }

    pub(super) fn pass(r: Requirement, m: Option<Mechanism>, detail: impl Into<String>) -> Finding {
        Finding::new(r, m, Outcome::Pass, detail)
    }

    pub(super) fn skip(r: Requirement, m: Option<Mechanism>, detail: impl Into<String>) -> Finding {
        Finding::new(r, m, Outcome::Skip, detail)
    }

    pub(super) fn fail(
        r: Requirement,
        m: Option<Mechanism>,
        detail: impl Into<String>,
        exchange: Option<&Exchange>,
    ) -> Finding {
        let mut f = Finding::new(r, m, Outcome::Fail, detail);
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

    /// The report as JSON, for scripts.
    pub fn to_json(&self) -> Value {
        json!({
            "url": self.url.as_str(),
            "ok": self.passed(),
            "passed": self.count(Outcome::Pass),
            "failed": self.count(Outcome::Fail),
            "skipped": self.count(Outcome::Skip),
            "took": (self.took.as_secs_f64() * 1000.0).round() / 1000.0,
            "budget": self.budget.as_secs_f64(),
            "results": self.findings.iter().map(|f| json!({
                "requirement": f.requirement.id(),
                "title": f.requirement.title(),
                "mechanism": f.mechanism.map(Mechanism::as_str),
                "outcome": f.outcome.as_str().to_ascii_lowercase(),
                "detail": f.detail,
                "request": f.request,
                "response": f.response,
            })).collect::<Vec<_>>(),
        })
    }
}
