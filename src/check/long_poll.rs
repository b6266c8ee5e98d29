//! Long-polls: `value-wait` (and form C's `LiveResource-Property: wait`), `multiplex-wait` /
//! `multiplex-request`, `changes-wait` (and form C's `changes` with `wait-min`). Each is held
//! while nothing changes and ends by its wait plus slack; a malformed wait is rejected or
//! ignored; the multiplexed answer has the protocol's shape; a change arrives.
//!
//! Where the texts are silent, every sensible reading passes: a long-poll with nothing new
//! may answer 304 or 200 without news (a multiplexed one 304, 200 with 304 members or
//! `200 {}`); a multiplexed answer may be labelled `application/liveresource-multiplex` (form
//! A's own example) or any JSON type, and a mislabelled one only warns (`content-type`).

use std::cell::RefCell;
use std::time::{Duration, Instant};

use url::Url;

use super::{
    delivered, json_label, names, not_delivered, subject, uri_for, Exchange, Finding, Named, Probe,
    ProbeEnv, Requirement, SLACK,
};
use crate::discovery::{Capabilities, Offer};
use crate::link::parse_link_headers;
use crate::mechanism::Mechanism;
use crate::wire::multiplex::{encode_query, encode_uri_header, parse_answer, Target};

/// The longest wait of the long-polls that wait for the change, in seconds.
const CHANGE_POLL_WAIT: u64 = 4;

/// The long-poll probes for what the resource offers.
pub(super) fn probes(caps: &Capabilities) -> Vec<Named> {
    let mut out: Vec<Named> = Vec::new();
    let value = Some(Mechanism::ValueWait);
    if caps.offer(Mechanism::ValueWait).is_some() {
        if caps.etag.is_some() {
            out.push((value, |env, probe| run(env, probe, Kind::Value)));
        } else {
            out.push((value, |_, _| {
                let why = "the resource has no ETag to wait on";
                let m = Some(Mechanism::ValueWait);
                vec![
                    Finding::skip(Requirement::LongPollHeld, m, why),
                    Finding::skip(Requirement::LongPollTimely, m, why),
                    Finding::skip(Requirement::ChangeDelivered, m, why),
                ]
            }));
        }
    }
    if let Some(offer) = changes_wait(caps) {
        out.push((Some(offer.mechanism), |env, probe| {
            run(env, probe, Kind::Changes)
        }));
    }
    if caps.offer(Mechanism::MultiplexWait).is_some() {
        out.push((Some(Mechanism::MultiplexWait), |env, probe| {
            run(env, probe, Kind::Multiplex)
        }));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Value,
    Multiplex,
    Changes,
}

/// The changes long-poll offered: `changes-wait`, else a `changes` link with `wait-min` (C).
fn changes_wait(caps: &Capabilities) -> Option<&Offer> {
    caps.offer(Mechanism::ChangesWait).or_else(|| {
        caps.offer(Mechanism::Changes)
            .filter(|o| o.wait_min.is_some())
    })
}

/// Which probe checks the malformed wait: the first long-poll there is.
fn checks_bad_wait(caps: &Capabilities, kind: Kind) -> bool {
    let value = caps.offer(Mechanism::ValueWait).is_some() && caps.etag.is_some();
    match kind {
        Kind::Value => true,
        Kind::Changes => !value,
        Kind::Multiplex => !value && changes_wait(caps).is_none(),
    }
}

/// What the client holds between asks.
#[derive(Debug, Clone)]
enum State {
    /// The ETag held (value) or none yet (a multiplexed value asked for the first time).
    Etag(Option<String>),
    /// The changes checkpoint URI held.
    Checkpoint(Url),
}

struct Poll<'a> {
    env: &'a ProbeEnv,
    kind: Kind,
    offer: &'a Offer,
    /// Multiplexed: the URI named to the endpoint.
    uri: String,
    /// Multiplexed: whether it names a changes URI.
    changes: bool,
    /// Changes: the body of the last answer whose link led back to its checkpoint.
    stalled: RefCell<Option<Vec<u8>>>,
}

struct Answer {
    status: u16,
    took: Duration,
    news: bool,
    next: State,
    exchange: Exchange,
    /// Multiplexed: what is wrong with the answer's shape, if anything.
    shape: Result<String, String>,
    /// Multiplexed: the `content-type` finding for the answer.
    label: Finding,
    /// Multiplexed: the URI asked for, and the keys of members that name none of it.
    misnamed: Option<(String, Vec<String>)>,
}

impl Poll<'_> {
    fn mechanism(&self) -> Mechanism {
        self.offer.mechanism
    }

    /// Whether the offer is in form C, which asks with `Prefer: wait=N` only.
    fn prefer_only(&self) -> bool {
        matches!(self.offer.rel.as_str(), "wait" | "multiplex-request")
            || (self.offer.mechanism == Mechanism::Changes && self.offer.wait_min.is_some())
    }

    fn wait_headers(&self, wait: &str) -> Vec<(&'static str, String)> {
        if self.prefer_only() {
            vec![("Prefer", format!("wait={wait}"))]
        } else {
            vec![
                ("Wait", wait.to_string()),
                ("Prefer", format!("wait={wait}")),
            ]
        }
    }

    /// One ask; `wait` is the wait header value (none for a plain ask).
    fn ask(
        &self,
        state: &State,
        wait: Option<&str>,
        timeout: Duration,
    ) -> Result<Answer, (String, Exchange)> {
        let mut headers = wait.map(|w| self.wait_headers(w)).unwrap_or_default();
        let mut url = self.offer.target.clone();
        match (self.kind, state) {
            (Kind::Value, State::Etag(Some(etag))) => {
                headers.insert(0, ("If-None-Match", etag.clone()));
            }
            (Kind::Changes, State::Checkpoint(checkpoint)) => url = checkpoint.clone(),
            (Kind::Multiplex, state) => {
                let target = Target {
                    uri: self.asked_uri(state),
                    if_none_match: match state {
                        State::Etag(etag) => etag.clone(),
                        State::Checkpoint(_) => None,
                    },
                };
                if self.offer.rel != "multiplex-request" {
                    let query = match url.query() {
                        Some(q) if !q.is_empty() => {
                            format!("{q}&{}", encode_query(std::slice::from_ref(&target)))
                        }
                        _ => encode_query(std::slice::from_ref(&target)),
                    };
                    url.set_query(Some(&query));
                }
                headers.push(("Uri", encode_uri_header(&target)));
            }
            _ => {}
        }
        let (result, exchange) = self.env.get(&url, &headers, timeout);
        let (response, took) = result.map_err(|why| (why, exchange.clone()))?;
        let status = response.status;
        let label = json_label(&response, Some(self.mechanism()), &exchange);
        let mut misnamed = None;
        let (news, next, shape) = match (self.kind, state) {
            (Kind::Value, State::Etag(held)) => {
                let etag = response.header("etag").map(|e| e.trim().to_string());
                let news = status == 200 && etag.is_some() && etag != *held;
                (
                    news,
                    State::Etag(if news { etag } else { held.clone() }),
                    Ok(String::new()),
                )
            }
            (Kind::Changes, State::Checkpoint(held)) => {
                let next = next_checkpoint(&response.headers_all_links(), &response.url);
                // A link back to the checkpoint asked for says "nothing since" (the test
                // server ends a wait with `{"time:change":"+0"}`), unless the body differs
                // from the one given there before, as the follower reads it: a server whose
                // checkpoints never move still delivers (`changes-advance` tells that).
                let moved_on = match &next {
                    Some(next) if next == held => {
                        let before = self.stalled.replace(Some(response.body.clone()));
                        before.is_some_and(|b| b != response.body)
                    }
                    Some(_) => {
                        self.stalled.replace(None);
                        true
                    }
                    // No link (an error, say): nothing said about the checkpoint.
                    None => true,
                };
                let news = status == 200 && has_items(&response.body) && moved_on;
                let next = next.unwrap_or_else(|| held.clone());
                (news, State::Checkpoint(next), Ok(String::new()))
            }
            (Kind::Multiplex, state) => self.read_answer(&response, state, &mut misnamed),
            _ => (false, state.clone(), Ok(String::new())),
        };
        Ok(Answer {
            status,
            took,
            news,
            next,
            exchange,
            shape,
            label,
            misnamed,
        })
    }

    /// Multiplexed: how the ask names the resource (or its checkpoint) to the endpoint.
    fn asked_uri(&self, state: &State) -> String {
        match state {
            State::Checkpoint(c) => uri_for(&self.offer.target, c),
            State::Etag(_) => self.uri.clone(),
        }
    }

    /// Reads a multiplexed answer: news for our URI, what to hold next, and its shape;
    /// `misnamed` gets the URI asked and the keys of members that name none of it.
    fn read_answer(
        &self,
        response: &crate::http::Response,
        state: &State,
        misnamed: &mut Option<(String, Vec<String>)>,
    ) -> (bool, State, Result<String, String>) {
        // No form says what a multiplexed long-poll answers when nothing changed: 304, as a
        // single resource's does, is one sensible reading.
        if response.status == 304 {
            return (false, state.clone(), Ok("304: nothing new".into()));
        }
        if response.status != 200 {
            return (
                false,
                state.clone(),
                Err(format!("answered {}", response.status)),
            );
        }
        let text = String::from_utf8_lossy(&response.body);
        let members = match parse_answer(&text) {
            Ok(m) => m,
            Err(e) => return (false, state.clone(), Err(e.to_string())),
        };
        let mut shape = Ok(format!("{} member(s)", members.len()));
        let asked = match state {
            State::Checkpoint(c) => c.clone(),
            State::Etag(_) => self.env.first.url.clone(),
        };
        let mut news = false;
        let mut next = state.clone();
        let mut stray = Vec::new();
        for (uri, member) in &members {
            // A member must be keyed by the URI asked for, compared resolved against the
            // endpoint (a path or an absolute URL, `ws` as `http`), query included; one keyed
            // otherwise (the protocol's test server answers `/test?no_previous` as `/test`) is
            // the server's fault, and a MUST: the 2014 text and the 2016 draft ("Multiplexing")
            // name each member "for a URI that has response data", the URIs the request passed,
            // and a query makes another URI (RFC 3986, 6.2: URIs are compared as strings, after
            // normalisation); the protocol's JavaScript client (fanout/liveresource,
            // MultiplexWaitConnection) resolves each key and compares it with each resource's
            // URI for equality, so a member keyed by the path alone never reaches it, and the
            // change is lost to a conforming client. lrwatch's follower is lenient here
            // (`follow::hub::Members::key_for`); a checker must not be.
            if !names(&self.offer.target, uri, &asked) {
                stray.push(uri.clone());
                continue;
            }
            if member.code == 200 && member.body.is_null() {
                shape = Err(format!("the member for {uri} has code 200 but no body"));
            }
            if member.code != 200 {
                continue;
            }
            match state {
                State::Etag(held) => {
                    let etag = member.header("etag").map(|e| e.trim().to_string());
                    if etag.is_none() || etag != *held {
                        news = true;
                        next = State::Etag(etag);
                    }
                }
                State::Checkpoint(held) => {
                    let body = match &member.body {
                        serde_json::Value::String(s) => s.clone().into_bytes(),
                        other => other.to_string().into_bytes(),
                    };
                    news = has_items(&body);
                    let links: Vec<String> = member
                        .headers
                        .iter()
                        .filter(|(n, _)| n.eq_ignore_ascii_case("link"))
                        .map(|(_, v)| v.clone())
                        .collect();
                    next = State::Checkpoint(
                        next_checkpoint(&links, &self.offer.target).unwrap_or_else(|| held.clone()),
                    );
                }
            }
        }
        if !stray.is_empty() {
            let asked = self.asked_uri(state);
            shape = Err(format!(
                "asked for {asked:?}, answered with a member keyed {}, which names no URI asked for",
                quoted(&stray)
            ));
            *misnamed = Some((asked, stray));
        }
        (news, next, shape)
    }
}

/// Keys, quoted and joined: `"/a", "/b"`.
fn quoted(keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

trait AllLinks {
    fn headers_all_links(&self) -> Vec<String>;
}

impl AllLinks for crate::http::Response {
    fn headers_all_links(&self) -> Vec<String> {
        self.headers
            .get_all("link")
            .iter()
            .map(|v| crate::http::header_text(v).into_owned())
            .collect()
    }
}

/// The `changes` link among these `Link` values.
pub(super) fn next_checkpoint(links: &[String], base: &Url) -> Option<Url> {
    parse_link_headers(links.iter().map(String::as_str), base)
        .find("changes")
        .map(|l| l.target.clone())
}

/// Whether a changes body holds anything: a non-empty JSON array, or any other non-empty body.
pub(super) fn has_items(body: &[u8]) -> bool {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(items)) => !items.is_empty(),
        Ok(serde_json::Value::Null) => false,
        Ok(serde_json::Value::Object(o)) => !o.is_empty(),
        Ok(_) => true,
        Err(_) => !body.iter().all(u8::is_ascii_whitespace),
    }
}

fn run(env: &ProbeEnv, probe: &mut Probe<'_>, kind: Kind) -> Vec<Finding> {
    let offer = match kind {
        Kind::Value => env.caps.offer(Mechanism::ValueWait),
        Kind::Changes => changes_wait(&env.caps),
        Kind::Multiplex => env.caps.offer(Mechanism::MultiplexWait),
    }
    .expect("probes are made for offered mechanisms");
    let (subject, changes) = subject(env);
    let poll = Poll {
        env,
        kind,
        offer,
        uri: uri_for(&offer.target, &subject),
        changes,
        stalled: RefCell::new(None),
    };
    let m = Some(poll.mechanism());
    let mut out = Vec::new();
    let mut state = match kind {
        Kind::Value => State::Etag(env.caps.etag.clone()),
        Kind::Changes => State::Checkpoint(subject.clone()),
        Kind::Multiplex if poll.changes => State::Checkpoint(subject.clone()),
        Kind::Multiplex => State::Etag(env.caps.etag.clone()),
    };
    if kind == Kind::Multiplex {
        // The shape, from a plain ask: a value not yet held is news at once.
        let first = if poll.changes {
            state.clone()
        } else {
            State::Etag(None)
        };
        match poll.ask(&first, None, super::REQUEST_TIMEOUT) {
            Ok(a) => {
                out.push(a.label.clone());
                let ok = a.shape.is_ok();
                let detail = a.shape.unwrap_or_else(|e| e);
                out.push(Finding::judge(
                    Requirement::MultiplexBody,
                    m,
                    ok,
                    detail,
                    Some(&a.exchange),
                ));
            }
            Err((why, x)) if env.out_of_budget() => {
                out.push(super::cut_short(Requirement::MultiplexBody, m, &why, &x));
            }
            Err((why, x)) => out.push(Finding::fail(
                Requirement::MultiplexBody,
                m,
                format!("no answer: {why}"),
                Some(&x),
            )),
        }
    }
    let (held, next) = holding(&poll, state);
    state = next;
    out.extend(held);
    if checks_bad_wait(&env.caps, kind) {
        out.push(bad_wait(&poll, &state));
    }
    probe.arm();
    out.push(change(&poll, state));
    out
}

/// Held while nothing changes, and ended by the wait plus slack.
fn holding(poll: &Poll<'_>, mut state: State) -> (Vec<Finding>, State) {
    let env = poll.env;
    let m = Some(poll.mechanism());
    let wait = env.wait_for(poll.offer.wait_min);
    let wait_d = Duration::from_secs(wait);
    let limit = wait_d + SLACK;
    for _ in 0..3 {
        let answer = poll.ask(
            &state,
            Some(&wait.to_string()),
            limit + Duration::from_secs(2),
        );
        let a = match answer {
            Err(_) if env.out_of_budget() => {
                let why = "the budget ran out during the wait";
                return (
                    vec![
                        Finding::skip(Requirement::LongPollHeld, m, why),
                        Finding::skip(Requirement::LongPollTimely, m, why),
                    ],
                    state,
                );
            }
            Err((why, x)) => {
                return (
                    vec![
                        Finding::pass(Requirement::LongPollHeld, m, format!("held ({why})")),
                        Finding::fail(
                            Requirement::LongPollTimely,
                            m,
                            format!(
                                "no answer within {:.1}s of a {wait}s wait: {why}",
                                limit.as_secs_f64()
                            ),
                            Some(&x),
                        ),
                    ],
                    state,
                )
            }
            Ok(a) => a,
        };
        if a.news {
            state = a.next;
            continue;
        }
        let took = a.took.as_secs_f64();
        // Nothing new: 304 (as the texts show for a value) or 200 without news (as they
        // show for changes); either, whatever the kind, is a sensible reading.
        let expected = matches!(a.status, 200 | 304);
        let held = a.took >= wait_d.mul_f64(0.75) && expected;
        let held_detail = if !expected {
            format!("answered {} after {took:.2}s", a.status)
        } else if held {
            format!("{} after {took:.2}s (wait {wait}s)", a.status)
        } else {
            format!(
                "answered {} at once ({took:.2}s) with nothing new, despite a {wait}s wait",
                a.status
            )
        };
        let timely = a.took <= limit;
        let held = match &a.misnamed {
            // Answered early for a URI it was not asked about: news to the server, perhaps (the
            // test server's /test changes every 3 s), so whether it would have held cannot be
            // told, and the fault is multiplex-body's, not this one's.
            Some((asked, keys)) if !held => Finding::skip(
                Requirement::LongPollHeld,
                m,
                format!(
                    "answered {} after {took:.2}s for {}, not for {asked:?}: cannot tell whether it held",
                    a.status,
                    quoted(keys)
                ),
            ),
            _ => Finding::judge(
                Requirement::LongPollHeld,
                m,
                held,
                held_detail,
                Some(&a.exchange),
            ),
        };
        return (
            vec![
                held,
                Finding::judge(
                    Requirement::LongPollTimely,
                    m,
                    timely,
                    format!("ended after {took:.2}s (limit {:.1}s)", limit.as_secs_f64()),
                    Some(&a.exchange),
                ),
            ],
            a.next,
        );
    }
    let why = "the resource changed during every wait";
    (
        vec![
            Finding::skip(Requirement::LongPollHeld, m, why),
            Finding::skip(Requirement::LongPollTimely, m, why),
        ],
        state,
    )
}

/// A malformed wait is rejected with 400, or ignored (RFC 7240: preferences not understood
/// are ignored); not answered with an error, nor left hanging past the wait and slack.
fn bad_wait(poll: &Poll<'_>, state: &State) -> Finding {
    let m = Some(poll.mechanism());
    let wait = poll.env.wait_for(poll.offer.wait_min);
    let limit = Duration::from_secs(wait.max(super::DEFAULT_WAIT)) + SLACK;
    match poll.ask(state, Some("soon"), limit + SLACK) {
        Ok(a) if a.status == 400 => {
            Finding::pass(Requirement::BadWaitHandled, m, "400 for wait \"soon\"")
        }
        Ok(a) if matches!(a.status, 200 | 304) && a.took <= limit => Finding::pass(
            Requirement::BadWaitHandled,
            m,
            format!(
                "ignored: {} after {:.2}s for wait \"soon\"",
                a.status,
                a.took.as_secs_f64()
            ),
        ),
        Ok(a) => Finding::fail(
            Requirement::BadWaitHandled,
            m,
            format!(
                "a malformed wait (\"soon\") was answered {} after {:.2}s",
                a.status,
                a.took.as_secs_f64()
            ),
            Some(&a.exchange),
        ),
        Err((why, x)) if poll.env.out_of_budget() => {
            super::cut_short(Requirement::BadWaitHandled, m, &why, &x)
        }
        Err((why, x)) => Finding::fail(
            Requirement::BadWaitHandled,
            m,
            format!("a malformed wait was not answered: {why}"),
            Some(&x),
        ),
    }
}

/// Asks (and asks again, as a client does after a 304) until the change arrives.
fn change(poll: &Poll<'_>, mut state: State) -> Finding {
    let env = poll.env;
    let mechanism = poll.mechanism();
    if let Some(skip) = super::change_skip(env, mechanism) {
        return skip;
    }
    let mut last: Option<Exchange> = None;
    // The last answer with members keyed by no URI asked for: the likely reason nothing came.
    let mut misnamed: Option<(String, Vec<String>, Exchange)> = None;
    loop {
        let left = env
            .change_deadline()
            .saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // Short waits: a server that loses a held long-poll (another client's ending
        // removed it) answers the next one at once, well within the change's time.
        let wait = left.as_secs().clamp(1, CHANGE_POLL_WAIT);
        let started = Instant::now();
        match poll.ask(
            &state,
            Some(&wait.to_string()),
            left.min(Duration::from_secs(wait) + SLACK),
        ) {
            Ok(a) if a.news => {
                if env.trigger_started().is_some() {
                    let what = format!("{} arrived", a.status);
                    return delivered(env, mechanism, &what, Instant::now());
                }
                // A change before the trigger: the resource changes by itself; hold on.
                state = a.next;
            }
            Ok(a) => {
                state = a.next;
                if let Some((asked, keys)) = a.misnamed {
                    misnamed = Some((asked, keys, a.exchange.clone()));
                }
                last = Some(a.exchange);
            }
            Err((_, x)) => last = Some(x),
        }
        if started.elapsed() < Duration::from_millis(200) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    if let Some((asked, keys, exchange)) = misnamed {
        return not_delivered(
            env,
            mechanism,
            format!(
                "nothing arrived after the trigger under the URI asked for ({asked:?}): the answers were keyed {}",
                quoted(&keys)
            ),
            Some(&exchange),
        );
    }
    not_delivered(
        env,
        mechanism,
        "nothing arrived after the trigger".to_string(),
        last.as_ref(),
    )
}
