//! Server-Sent Event streams: `value-stream`, `hint-stream`, `multiplex-stream`,
//! `changes-stream`. Each is served as `text/event-stream`, its events are framed as the
//! protocol says, and a change arrives as an event.

use std::io::Read;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::report::{Needs, NO_TRIGGER};
use super::{
    delivered, names, not_delivered, subject, uri_for, Exchange, Finding, Named, Probe, ProbeEnv,
    Requirement,
};
use crate::discovery::Capabilities;
use crate::http::FetchError;
use crate::mechanism::Mechanism;
use crate::wire::multiplex::{encode_query, Target};
use crate::wire::sse::{Event, Parser};

/// How long a freshly opened stream is read before the probe arms: time for its opening event.
const OPENING: Duration = Duration::from_millis(500);
/// How much of a stream's start an excerpt keeps.
const RAW_KEPT: usize = 2048;

/// The stream probes for what the resource offers.
pub(super) fn probes(caps: &Capabilities) -> Vec<Named> {
    let mut out: Vec<Named> = Vec::new();
    if caps.offer(Mechanism::ValueStream).is_some() {
        out.push((Some(Mechanism::ValueStream), |env, probe| {
            run(env, probe, Mechanism::ValueStream)
        }));
    }
    if caps.offer(Mechanism::HintStream).is_some() {
        out.push((Some(Mechanism::HintStream), |env, probe| {
            run(env, probe, Mechanism::HintStream)
        }));
    }
    if caps.offer(Mechanism::MultiplexStream).is_some() {
        out.push((Some(Mechanism::MultiplexStream), |env, probe| {
            run(env, probe, Mechanism::MultiplexStream)
        }));
    }
    if caps.offer(Mechanism::ChangesStream).is_some() {
        out.push((Some(Mechanism::ChangesStream), |env, probe| {
            run(env, probe, Mechanism::ChangesStream)
        }));
    }
    out
}

/// Chunks read ahead of the probe: a few, so a stream that floods while the probe waits (for
/// the other probes, for the trigger) is held back by TCP instead of filling memory.
const READ_AHEAD: usize = 4;

/// Chunks of the body as they arrive, from a reader thread (a blocking read cannot be given
/// a deadline otherwise). The thread ends with the stream, or once the probe is done with it.
fn pump(mut body: Box<dyn Read + Send>) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::sync_channel(READ_AHEAD);
    let _ = std::thread::Builder::new()
        .name("lrwatch-check-sse".into())
        .spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match body.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    rx
}

/// What is wrong with an event's framing for this mechanism, if anything.
fn framing_problem(
    mechanism: Mechanism,
    event: &Event,
    asked: &dyn Fn(&str) -> bool,
) -> Option<String> {
    let headers_line = |data: &str| {
        let first = data.split('\n').next().unwrap_or("");
        match serde_json::from_str::<serde_json::Value>(first) {
            Ok(serde_json::Value::Object(_)) => None,
            _ => Some(format!(
                "the first data line of an {:?} event is not a JSON object of headers",
                event.event
            )),
        }
    };
    match (mechanism, &*event.event) {
        (Mechanism::MultiplexStream, "message") => {
            match serde_json::from_str::<serde_json::Value>(&event.text()) {
                Ok(serde_json::Value::Object(o)) if o.get("uri").is_some_and(|u| u.is_string()) => {
                    let uri = o["uri"].as_str().unwrap_or("");
                    (!asked(uri))
                        .then(|| format!("an event is about {uri:?}, which was not asked for"))
                }
                _ => Some("an event's data is not a JSON object with a \"uri\"".into()),
            }
        }
        (Mechanism::MultiplexStream, other) => Some(format!(
            "multiplex-stream events are unnamed; got {other:?}"
        )),
        (Mechanism::HintStream, "open" | "update") => None,
        (Mechanism::HintStream, other) => Some(format!(
            "hint-stream events are named open or update; got {other:?}"
        )),
        (_, "message") => {
            let valid = event.data.is_empty()
                || serde_json::from_str::<serde_json::Value>(&event.text()).is_ok();
            (!valid).then(|| "an unnamed event's data is not a JSON value".to_string())
        }
        (_, "open" | "update") if event.data.is_empty() => None,
        (_, "open" | "update") => headers_line(&event.text()),
        (_, other) => Some(format!(
            "events are unnamed (form A) or named open and update (forms B, C); got {other:?}"
        )),
    }
}

/// Whether an event announces a change (not the stream's opening).
fn is_change(mechanism: Mechanism, event: &Event) -> bool {
    match mechanism {
        Mechanism::MultiplexStream => event.event == "message",
        Mechanism::HintStream => event.event == "update",
        _ => event.event == "update" || (event.event == "message" && !event.data.is_empty()),
    }
}

/// An open stream, read for a change (see [`super::survival`]).
pub(super) struct Listening {
    chunks: Receiver<Vec<u8>>,
    reading: Reading,
    mechanism: Mechanism,
    asked: Asked,
    exchange: Exchange,
}

/// Which URIs, as a server writes them, name what was asked for.
type Asked = Box<dyn Fn(&str) -> bool + Send>;

impl Listening {
    /// Opens the stream and reads its opening.
    pub(super) fn open(env: &ProbeEnv, mechanism: Mechanism) -> Result<Listening, String> {
        let (url, asked) = stream_url(env, mechanism).ok_or("not offered")?;
        let headers = [("Accept", "text/event-stream".to_string())];
        let exchange = Exchange::new("GET", &url, &headers);
        let stream = env
            .http
            .open(&url, &env.url, &headers, env.bounded(env.left()))
            .map_err(|e| e.to_string())?;
        if stream.status != 200 {
            return Err(format!("answered {}", stream.status));
        }
        let mut listening = Listening {
            chunks: pump(stream.body),
            reading: Reading {
                hit: None,
                parser: Parser::new(),
                raw: Vec::new(),
                events: 0,
                problem: None,
                ended: false,
            },
            mechanism,
            asked,
            exchange,
        };
        let opening_until = Instant::now() + env.bounded(OPENING);
        let _ = listening.reading.read_until(
            &listening.chunks,
            opening_until,
            mechanism,
            &*listening.asked,
            |_| false,
        );
        Ok(listening)
    }

    /// When a change arrived after the trigger started, if one did in time.
    pub(super) fn wait_change(&mut self, env: &ProbeEnv) -> Option<Instant> {
        let mechanism = self.mechanism;
        loop {
            // The deadline moves once the trigger has run: looked at again every tick.
            let deadline = env.change_deadline();
            if Instant::now() >= deadline || self.reading.ended {
                return None;
            }
            let tick = deadline.min(Instant::now() + Duration::from_millis(500));
            let hit = self
                .reading
                .read_until(&self.chunks, tick, mechanism, &*self.asked, |e| {
                    is_change(mechanism, e) && env.trigger_started().is_some()
                });
            if hit.is_some() {
                return hit;
            }
        }
    }

    /// The request and what the stream sent, for evidence.
    pub(super) fn evidence(&self) -> Exchange {
        self.exchange
            .clone()
            .with_text(String::from_utf8_lossy(&self.reading.raw).into_owned())
    }
}

/// The stream's URL (a multiplexed one names the subject) and which URIs name the subject.
fn stream_url(env: &ProbeEnv, mechanism: Mechanism) -> Option<(url::Url, Asked)> {
    let offer = env.caps.offer(mechanism)?;
    let mut url = offer.target.clone();
    let (subject, _) = subject(env);
    if mechanism == Mechanism::MultiplexStream {
        let named = encode_query(&[Target {
            uri: uri_for(&offer.target, &subject),
            if_none_match: None,
        }]);
        let query = match url.query() {
            Some(q) if !q.is_empty() => format!("{q}&{named}"),
            _ => named,
        };
        url.set_query(Some(&query));
    }
    let endpoint = offer.target.clone();
    Some((
        url,
        Box::new(move |uri: &str| names(&endpoint, uri, &subject)),
    ))
}

fn run(env: &ProbeEnv, probe: &mut Probe<'_>, mechanism: Mechanism) -> Vec<Finding> {
    let m = Some(mechanism);
    let offer = env
        .caps
        .offer(mechanism)
        .expect("probes are made for offered mechanisms");
    let mut url = offer.target.clone();
    let (subject, _) = subject(env);
    let subject_uri = uri_for(&offer.target, &subject);
    if mechanism == Mechanism::MultiplexStream {
        let target = Target {
            uri: subject_uri.clone(),
            if_none_match: None,
        };
        let named = encode_query(&[target]);
        let query = match url.query() {
            Some(q) if !q.is_empty() => format!("{q}&{named}"),
            _ => named,
        };
        url.set_query(Some(&query));
    }
    let headers = [("Accept", "text/event-stream".to_string())];
    let exchange = Exchange::new("GET", &url, &headers);
    let stream = match env
        .http
        .open(&url, &env.url, &headers, env.bounded(env.left()))
    {
        Ok(s) => s,
        Err(e) => {
            let why = match e {
                FetchError::TooLarge(_) => "too large".into(),
                other => other.to_string(),
            };
            let x = exchange.with_text(format!("(no response: {why})"));
            return vec![
                if env.out_of_budget() {
                    super::cut_short(Requirement::SseContentType, m, &why, &x)
                } else {
                    Finding::fail(
                        Requirement::SseContentType,
                        m,
                        format!("cannot open: {why}"),
                        Some(&x),
                    )
                },
                Finding::skip(Requirement::SseFraming, m, "the stream did not open"),
                Finding::skip(Requirement::ChangeDelivered, m, "the stream did not open"),
            ];
        }
    };
    let head_text = super::excerpt(stream.status, &stream.headers, b"");
    let head = exchange.clone().with_text(head_text.clone());
    let content_type = stream
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if stream.status != 200 {
        return vec![
            Finding::fail(
                Requirement::SseContentType,
                m,
                format!("answered {}", stream.status),
                Some(&head),
            ),
            Finding::skip(Requirement::SseFraming, m, "the stream did not open"),
            Finding::skip(Requirement::ChangeDelivered, m, "the stream did not open"),
        ];
    }
    let media = content_type.split(';').next().unwrap_or("").trim();
    let mut out = vec![Finding::judge(
        Requirement::SseContentType,
        m,
        media.eq_ignore_ascii_case("text/event-stream"),
        if content_type.is_empty() {
            "no Content-Type".to_string()
        } else {
            content_type.clone()
        },
        Some(&head),
    )];
    let chunks = pump(stream.body);
    let mut reading = Reading {
        hit: None,
        parser: Parser::new(),
        raw: Vec::new(),
        events: 0,
        problem: None,
        ended: false,
    };
    // The opening, before arming.
    let opening_until = Instant::now() + env.bounded(OPENING);
    let endpoint = offer.target.clone();
    let asked = move |uri: &str| names(&endpoint, uri, &subject);
    let _ = reading.read_until(&chunks, opening_until, mechanism, &asked, |_| false);
    probe.arm();
    let mut delivery = None;
    while env.has_trigger() {
        // The deadline moves once the trigger has run: looked at again every tick.
        let deadline = env.change_deadline();
        if Instant::now() >= deadline || reading.ended {
            break;
        }
        let tick = deadline.min(Instant::now() + Duration::from_millis(500));
        delivery = reading.read_until(&chunks, tick, mechanism, &asked, |e| {
            is_change(mechanism, e) && env.trigger_started().is_some()
        });
        if delivery.is_some() {
            break;
        }
    }
    let evidence = exchange.with_text(format!(
        "{head_text}\n\n{}",
        String::from_utf8_lossy(&reading.raw)
    ));
    out.push(match (&reading.problem, reading.events) {
        (Some(problem), _) => {
            Finding::fail(Requirement::SseFraming, m, problem.clone(), Some(&evidence))
        }
        (None, 0) if env.has_trigger() => {
            Finding::skip(Requirement::SseFraming, m, "no event arrived")
        }
        (None, 0) => Finding::wanting(
            Requirement::SseFraming,
            m,
            Needs::Trigger,
            "no event arrived without a change (no trigger given)",
        ),
        (None, n) => Finding::pass(
            Requirement::SseFraming,
            m,
            format!("{n} event(s) well-formed"),
        ),
    });
    if let (Some(_), Some(event)) = (delivery, &reading.hit) {
        if let Some(f) = gap_markers(mechanism, &offer.rel, event, &evidence) {
            out.push(f);
        }
    }
    out.push(match delivery {
        Some(at) => delivered(env, mechanism, "an event arrived", at),
        None if !env.has_trigger() => {
            Finding::wanting(Requirement::ChangeDelivered, m, Needs::Trigger, NO_TRIGGER)
        }
        None => {
            let why = if reading.ended {
                "the stream ended before a change arrived"
            } else {
                "no event arrived after the trigger"
            };
            not_delivered(env, mechanism, why.to_string(), Some(&evidence))
        }
    });
    out
}

/// Form B's update events carry, in their headers line, the ETag (or changes id) of the
/// update before: judged for form B's value and changes streams (form A's events have no
/// headers; the 2016 draft does not ask for them).
fn gap_markers(
    mechanism: Mechanism,
    rel: &str,
    event: &Event,
    evidence: &Exchange,
) -> Option<Finding> {
    let field = match mechanism {
        Mechanism::ValueStream => "previous-etag",
        Mechanism::ChangesStream => "previous-changes-id",
        _ => return None,
    };
    if rel == "alternate" || event.event != "update" || event.data.is_empty() {
        return None;
    }
    let text = event.text();
    let first = text.split('\n').next().unwrap_or("");
    let headers = serde_json::from_str::<serde_json::Value>(first).ok()?;
    let named = headers
        .as_object()?
        .keys()
        .any(|k| k.eq_ignore_ascii_case(field));
    let m = Some(mechanism);
    Some(if named {
        Finding::pass(
            Requirement::GapMarkers,
            m,
            format!("the update carries {field}"),
        )
    } else {
        Finding::fail(
            Requirement::GapMarkers,
            m,
            format!("the update's headers have no {field}: a lost update goes unnoticed"),
            Some(evidence),
        )
    })
}

struct Reading {
    /// The event a read stopped at.
    hit: Option<Event>,
    parser: Parser,
    raw: Vec<u8>,
    events: usize,
    problem: Option<String>,
    ended: bool,
}

impl Reading {
    /// Reads events until `stop` says one is what was waited for (when it arrived), the
    /// deadline, or the end of the stream; judges the framing of every event.
    fn read_until(
        &mut self,
        chunks: &Receiver<Vec<u8>>,
        deadline: Instant,
        mechanism: Mechanism,
        asked: &dyn Fn(&str) -> bool,
        stop: impl Fn(&Event) -> bool,
    ) -> Option<Instant> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.ended {
                return None;
            }
            let chunk = match chunks.recv_timeout(left) {
                Ok(chunk) => chunk,
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => {
                    self.ended = true;
                    return None;
                }
            };
            let keep = RAW_KEPT.saturating_sub(self.raw.len()).min(chunk.len());
            self.raw.extend_from_slice(&chunk[..keep]);
            let events = match self.parser.feed(&chunk) {
                Ok(events) => events,
                Err(e) => {
                    self.problem.get_or_insert(e.to_string());
                    self.ended = true;
                    return None;
                }
            };
            let mut hit = None;
            for event in events {
                self.events += 1;
                if let Some(problem) = framing_problem(mechanism, &event, asked) {
                    self.problem.get_or_insert(problem);
                }
                if hit.is_none() && stop(&event) {
                    hit = Some(Instant::now());
                    self.hit = Some(event);
                }
            }
            if hit.is_some() {
                return hit;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str) -> Event {
        Event {
            event: name.to_string().into(),
            data: data.to_string().into(),
            id: String::new(),
        }
    }

    #[test]
    fn framing_by_mechanism() {
        let endpoint = url::Url::parse("http://h/multi/").unwrap();
        let a = url::Url::parse("http://h/a").unwrap();
        let asked = |uri: &str| names(&endpoint, uri, &a);
        let asked: &dyn Fn(&str) -> bool = &asked;
        let v = Mechanism::ValueStream;
        assert_eq!(framing_problem(v, &event("message", "1"), asked), None);
        assert_eq!(framing_problem(v, &event("open", ""), asked), None);
        assert_eq!(
            framing_problem(v, &event("update", "{\"ETag\":\"1\"}\n1"), asked),
            None
        );
        assert!(framing_problem(v, &event("update", "1\n1"), asked).is_some());
        assert!(framing_problem(v, &event("message", "{oops"), asked).is_some());
        assert!(framing_problem(v, &event("ping", ""), asked).is_some());
        let mux = Mechanism::MultiplexStream;
        assert_eq!(
            framing_problem(mux, &event("message", "{\"uri\":\"/a\",\"body\":1}"), asked),
            None
        );
        assert!(framing_problem(mux, &event("message", "{\"uri\":\"/b\"}"), asked).is_some());
        assert!(framing_problem(Mechanism::HintStream, &event("message", ""), asked).is_some());
        assert!(is_change(v, &event("update", "")));
        assert!(!is_change(v, &event("open", "")));
    }
}
