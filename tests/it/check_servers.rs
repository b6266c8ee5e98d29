//! `lrwatch check` against scripted servers: one that does everything right but in a way the
//! texts allow and `lrwatch serve` does not (form A's own multiplex content type, 304 for a
//! multiplexed long-poll with nothing new, sockets that only know paths), which must pass; and
//! one per requirement that breaks that requirement alone, which check must report, and only
//! it, at the requirement's level.
//!
//! The fake resource is a counter at `/r` (ETag `"N"`, body N), changed by `POST /bump` (the
//! trigger is a curl of it). What it offers and how it errs is set by [`Knobs`].

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::*;

/// What the fake server offers, and the one thing it gets wrong.
#[derive(Clone, Copy, Default)]
struct Knobs {
    /// Offer `value-wait` at `/r`.
    value_wait: bool,
    /// Offer `multiplex-wait` at `/multi`.
    multiplex_wait: bool,
    /// `/multi` answers a held wait after 0.3 s with the value it has, as the protocol's test
    /// server answers one when `/test` changes (every 3 s).
    multiplex_early: bool,
    /// Offer `multiplex-ws` at `/ws` (absolute `ws://` link).
    multiplex_ws: bool,
    /// Offer `value-stream` at `/r` (form B events).
    value_stream: bool,
    /// Offer `value-callback` at `/hooks`.
    value_callback: bool,
    /// Offer `changes` at `/changes?after=N` (and `Changes-Id: N` on the resource, but for
    /// [`Stays::Etag`]), answered as the protocol's test server does: `{"change":"+K"}`. Its
    /// feed lags as the test server's 3 s tick can: the first ask at each checkpoint is
    /// answered "nothing since", marked in this way.
    changes: Option<Stays>,
    /// The value is text (`count N`, `text/plain`), not JSON.
    plain_text: bool,
    /// The fault.
    fault: Option<Fault>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Fault {
    Discovery500,
    MalformedLink,
    NoEtag,
    JsonAsHtml,
    /// The value is text (`count N`) labelled `application/json`.
    TextAsJson,
    LateLongPoll,
    BadWait500,
    LongPollNeverDelivers,
    /// A value long-poll with nothing new is never answered (held past any wait, until a
    /// change); one asked across a change is answered.
    LongPollNeverAnswered,
    /// Multiplexed long-polls are held for their wait and answered 304, whatever the client
    /// holds and whatever changes; a plain ask is answered.
    MultiplexNeverDelivers,
    /// The event stream opens, then never sends an update.
    StreamNeverDelivers,
    /// Socket subscriptions are acknowledged, then never pushed to.
    SocketNeverDelivers,
    /// Webhook subscriptions are made, then never notified.
    HooksNeverNotified,
    /// The changes link is also `changes-wait`; a long-poll at it is held for its wait and
    /// answered "nothing since" (`+0`, a link back), whatever changes.
    ChangesWaitNeverDelivers,
    MultiplexList,
    SsePingEvents,
    /// Form B updates without `Previous-ETag`.
    NoPreviousEtag,
    NoAck,
    PushList,
    /// Every socket subscriber forgotten when any long-poll ends (the third-party bug).
    LoseSubscribersOnLongPollEnd,
    SubscribeWithoutLocation,
    NotifyWithoutLocation,
    NotifyAfterDelete,
}

/// How an answer at a changes checkpoint says "nothing since".
#[derive(Clone, Copy, PartialEq, Debug)]
enum Stays {
    /// A `changes` link back to the checkpoint asked for (and its `Changes-Id`).
    LinkBack,
    /// No link; the `Changes-Id` the resource had at that checkpoint.
    ChangesId,
    /// No link, no `Changes-Id`; the `ETag` the resource had at that checkpoint.
    Etag,
}

/// The counter and who waits on it.
struct State {
    count: Mutex<u64>,
    changed: Condvar,
    /// Callback URLs subscribed, and whether each was deleted.
    hooks: Mutex<Vec<(String, bool)>>,
    /// Bumped to tell sockets their subscriptions were forgotten.
    forgotten: Mutex<u64>,
    /// The changes checkpoints asked for so far.
    checkpoints: Mutex<BTreeSet<u64>>,
}

struct Req {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn read_req(stream: &TcpStream) -> Option<Req> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        if reader.read_line(&mut l).ok()? == 0 {
            return None;
        }
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len.min(64 * 1024)];
    reader.read_exact(&mut body).ok()?;
    Some(Req {
        method,
        path,
        query,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A fake server with these knobs; its base URL.
fn fake(knobs: Knobs) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(State {
        count: Mutex::new(0),
        changed: Condvar::new(),
        hooks: Mutex::new(Vec::new()),
        forgotten: Mutex::new(0),
        checkpoints: Mutex::new(BTreeSet::new()),
    });
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let state = Arc::clone(&state);
            std::thread::spawn(move || serve(stream, knobs, &state, &format!("{addr}")));
        }
    });
    format!("http://{addr}")
}

fn count(state: &State) -> u64 {
    *state.count.lock().unwrap()
}

/// Waits until the count differs from `held`, or `wait` passes; whether it changed.
fn wait_change(state: &State, held: u64, wait: Duration) -> bool {
    let guard = state.count.lock().unwrap();
    let (guard, _) = state
        .changed
        .wait_timeout_while(guard, wait, |c| *c == held)
        .unwrap();
    *guard != held
}

fn serve(stream: TcpStream, k: Knobs, state: &State, authority: &str) {
    let mut peek = [0u8; 2048];
    let n = stream.peek(&mut peek).unwrap_or(0);
    let head = String::from_utf8_lossy(&peek[..n]).to_ascii_lowercase();
    if head.contains("upgrade: websocket") {
        return socket(stream, k, state);
    }
    let Some(req) = read_req(&stream) else {
        return;
    };
    let fault = k.fault;
    let links = {
        let mut l = Vec::new();
        if k.value_wait || k.value_stream {
            let rels: Vec<&str> = [
                ("value-wait", k.value_wait),
                ("value-stream", k.value_stream),
            ]
            .iter()
            .filter(|(_, on)| *on)
            .map(|(r, _)| *r)
            .collect();
            l.push(format!("</r>; rel=\"{}\"", rels.join(" ")));
        }
        if k.multiplex_wait {
            l.push("</multi>; rel=multiplex-wait".to_string());
        }
        if k.multiplex_ws {
            l.push(format!("<ws://{authority}/ws>; rel=multiplex-ws"));
        }
        if k.value_callback {
            l.push("</hooks>; rel=value-callback".to_string());
        }
        if k.changes.is_some() {
            let rel = if fault == Some(Fault::ChangesWaitNeverDelivers) {
                "\"changes changes-wait\""
            } else {
                "changes"
            };
            l.push(format!("</changes?after={}>; rel={rel}", count(state)));
        }
        if fault == Some(Fault::MalformedLink) {
            l.push("</other; rel=value-wait".to_string());
        }
        l
    };
    // The value: a JSON number, or text for that knob and that fault.
    let text = k.plain_text || fault == Some(Fault::TextAsJson);
    let value_body = |n: u64| {
        if text {
            format!("count {n}")
        } else {
            n.to_string()
        }
    };
    let value_headers = |n: u64| {
        let mut h = vec![(
            "Content-Type".to_string(),
            if fault == Some(Fault::JsonAsHtml) {
                "text/html".to_string()
            } else if k.plain_text {
                "text/plain".to_string()
            } else {
                "application/json".to_string()
            },
        )];
        if fault != Some(Fault::NoEtag) {
            h.push(("ETag".into(), format!("\"{n}\"")));
        }
        for l in &links {
            h.push(("Link".into(), l.clone()));
        }
        if k.changes.is_some_and(|s| s != Stays::Etag) {
            h.push(("Changes-Id".into(), n.to_string()));
        }
        h
    };
    let send = |status: u16, headers: &[(String, String)], body: &str| {
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        respond(&stream, status, &h, body);
    };
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/bump") => {
            let n = {
                let mut c = state.count.lock().unwrap();
                *c += 1;
                *c
            };
            state.changed.notify_all();
            notify_hooks(state, k, authority, n);
            send(204, &[], "");
        }
        ("GET", "/r") if fault == Some(Fault::Discovery500) => send(500, &[], "oops"),
        ("GET", "/r") if req.header("accept") == Some("text/event-stream") => {
            stream_events(&stream, k, state)
        }
        ("GET", "/r") => {
            let now = count(state);
            let inm = req.header("if-none-match").map(str::to_string);
            let wait = req.header("wait").map(str::to_string);
            let held = inm.as_deref() == Some(&format!("\"{now}\""));
            match (wait, held) {
                (Some(w), _) if w.parse::<u64>().is_err() => {
                    if fault == Some(Fault::BadWait500) {
                        send(500, &[], "bad wait crashed me");
                    } else {
                        send(400, &[], "bad wait");
                    }
                }
                // That fault: every long-poll runs out its wait and says nothing changed.
                (Some(w), _) if fault == Some(Fault::LongPollNeverDelivers) => {
                    std::thread::sleep(Duration::from_secs(w.parse().unwrap()));
                    let mut headers = value_headers(now);
                    headers.retain(|(k, _)| k != "ETag");
                    headers.push(("ETag".into(), inm.clone().unwrap_or_default()));
                    send(304, &headers, "");
                }
                (Some(_), true) if fault == Some(Fault::LongPollNeverAnswered) => {
                    // Held until a change, however long: no answer once the wait runs out.
                    if wait_change(state, now, Duration::from_secs(60)) {
                        let n = count(state);
                        send(200, &value_headers(n), &value_body(n));
                    }
                }
                (Some(w), true) => {
                    let wait = Duration::from_secs(w.parse().unwrap());
                    let changed = wait_change(state, now, wait);
                    if !changed && fault == Some(Fault::LateLongPoll) {
                        std::thread::sleep(Duration::from_secs(4));
                    }
                    if fault == Some(Fault::LoseSubscribersOnLongPollEnd) {
                        *state.forgotten.lock().unwrap() += 1;
                    }
                    if changed {
                        let n = count(state);
                        send(200, &value_headers(n), &value_body(n));
                    } else {
                        send(304, &value_headers(now), "");
                    }
                }
                (None, true) => send(304, &value_headers(now), ""),
                _ => send(200, &value_headers(now), &value_body(now)),
            }
        }
        ("GET", "/multi")
            if fault == Some(Fault::MultiplexNeverDelivers)
                && req.header("wait").is_some_and(|w| w.parse::<u64>().is_ok()) =>
        {
            // Whatever the client holds and whatever changes: held for the wait, then
            // "nothing new".
            let w: u64 = req.header("wait").unwrap().parse().unwrap();
            std::thread::sleep(Duration::from_secs(w));
            send(304, &[], "");
        }
        ("GET", "/multi") => {
            let inm = url_param(&req.query, "inm");
            let now = count(state);
            let mut changed = inm.as_deref() != Some(&format!("\"{now}\""));
            if !changed {
                if let Some(w) = req.header("wait").and_then(|w| w.parse().ok()) {
                    changed = if k.multiplex_early {
                        wait_change(state, now, Duration::from_millis(300));
                        true
                    } else {
                        wait_change(state, now, Duration::from_secs(w))
                    };
                }
            }
            let n = count(state);
            // That fault only in answers without a wait, so that changes still arrive.
            if fault == Some(Fault::MultiplexList) && req.header("wait").is_none() {
                return send(
                    200,
                    &h_owned(&[("Content-Type", "application/json")]),
                    "[1]",
                );
            }
            // As form A's own example: its content type, and 304 when nothing is new.
            let ct = h_owned(&[("Content-Type", "application/liveresource-multiplex")]);
            if changed {
                let body = json!({"/r": {"code": 200, "headers": {"ETag": format!("\"{n}\"")}, "body": n}});
                send(200, &ct, &body.to_string());
            } else {
                send(304, &[], "");
            }
        }
        ("GET", "/changes") if k.changes.is_some() => {
            let Some(after) = url_param(&req.query, "after").and_then(|a| a.parse::<u64>().ok())
            else {
                return send(400, &[], "bad after");
            };
            let wait = req.header("wait").and_then(|w| w.parse::<u64>().ok());
            let now = match wait {
                Some(w) if fault == Some(Fault::ChangesWaitNeverDelivers) => {
                    std::thread::sleep(Duration::from_secs(w));
                    after
                }
                _ => {
                    let first = state.checkpoints.lock().unwrap().insert(after);
                    // The feed's own lag: its first answer at a checkpoint is as if
                    // nothing changed.
                    if first {
                        after
                    } else {
                        count(state)
                    }
                }
            };
            let stays = k.changes.unwrap();
            let mut headers = h_owned(&[("Content-Type", "application/json")]);
            if now != after || stays == Stays::LinkBack {
                headers.push((
                    "Link".into(),
                    format!("</changes?after={now}>; rel=changes"),
                ));
            }
            if stays != Stays::Etag {
                headers.push(("Changes-Id".into(), now.to_string()));
            }
            headers.push(("ETag".into(), format!("\"{now}\"")));
            let body = json!({"change": format!("+{}", now - after)});
            send(200, &headers, &body.to_string());
        }
        ("POST", "/hooks") => {
            let callback = url_param(&req.body, "callback_uri").unwrap_or_default();
            let id = {
                let mut hooks = state.hooks.lock().unwrap();
                hooks.push((callback, false));
                hooks.len()
            };
            if fault == Some(Fault::SubscribeWithoutLocation) {
                send(201, &[], "");
            } else {
                send(201, &h_owned(&[("Location", &format!("/hooks/{id}"))]), "");
            }
        }
        ("DELETE", path) if path.starts_with("/hooks/") => {
            let id: usize = path["/hooks/".len()..].parse().unwrap_or(0);
            if let Some(h) = state.hooks.lock().unwrap().get_mut(id.wrapping_sub(1)) {
                h.1 = true;
            }
            send(204, &[], "");
        }
        _ => send(404, &[], "not found"),
    }
}

fn h_owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    h(pairs)
}

fn url_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// POSTs the new value to every callback URL (deleted ones too, for that fault).
fn notify_hooks(state: &State, k: Knobs, authority: &str, n: u64) {
    if k.fault == Some(Fault::HooksNeverNotified) {
        return;
    }
    let hooks = state.hooks.lock().unwrap().clone();
    for (url, deleted) in hooks {
        if deleted && k.fault != Some(Fault::NotifyAfterDelete) {
            continue;
        }
        let mut request = agent().post(&url);
        if k.fault != Some(Fault::NotifyWithoutLocation) {
            request = request.header("Location", &format!("http://{authority}/r"));
        }
        let _ = request.send(n.to_string());
    }
}

/// A form B event stream: `open`, then an `update` per change (or `ping`s, for that fault).
fn stream_events(mut stream: &TcpStream, k: Knobs, state: &State) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
    let first = if k.fault == Some(Fault::SsePingEvents) {
        "event: ping\ndata: x\n\n"
    } else {
        "event: open\ndata:\n\n"
    };
    if stream.write_all(head.as_bytes()).is_err() || stream.write_all(first.as_bytes()).is_err() {
        return;
    }
    let mut held = count(state);
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if k.fault == Some(Fault::StreamNeverDelivers) {
            // Open, silent: keep-alive comments only.
            std::thread::sleep(Duration::from_millis(500));
            if stream.write_all(b":\n\n").is_err() {
                return;
            }
            continue;
        }
        if wait_change(state, held, Duration::from_millis(500)) {
            let previous = held;
            held = count(state);
            let mut headers = json!({ "ETag": format!("\"{held}\"") });
            if k.fault != Some(Fault::NoPreviousEtag) {
                headers["Previous-ETag"] = json!(format!("\"{previous}\""));
            }
            let event = format!("event: update\ndata: {headers}\ndata: {held}\n\n");
            if stream.write_all(event.as_bytes()).is_err() {
                return;
            }
        }
    }
}

/// `multiplex-ws`: acks (unless that is the fault) and pushes each change, naming the
/// resource as it was subscribed, and only knowing paths, as the Express plugin does.
fn socket(stream: TcpStream, k: Knobs, state: &State) {
    let Some(mut ws) = accept_liveresource(stream) else {
        return;
    };
    let _ = ws
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(100)));
    let mut subscribed: Option<String> = None;
    let mut held = count(state);
    let mut forgotten = *state.forgotten.lock().unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => {
                let m: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                let uri = m["uri"].as_str().unwrap_or("").to_string();
                if m["type"] == "subscribe" && uri.starts_with('/') {
                    subscribed = Some(uri);
                    forgotten = *state.forgotten.lock().unwrap();
                    if k.fault != Some(Fault::NoAck) {
                        let ack = json!({"id": m["id"], "type": "subscribed"});
                        let _ = ws.send(tungstenite::Message::text(ack.to_string()));
                    }
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(_)) => {}
            Err(_) => return,
        }
        if *state.forgotten.lock().unwrap() != forgotten {
            subscribed = None;
        }
        let now = count(state);
        if now != held {
            held = now;
            if k.fault == Some(Fault::SocketNeverDelivers) {
                continue;
            }
            if let Some(uri) = &subscribed {
                let body = if k.fault == Some(Fault::PushList) {
                    json!([now])
                } else {
                    json!(now)
                };
                let event = json!({"type": "event", "uri": uri, "headers": {"ETag": format!("\"{now}\"")}, "body": body});
                if ws
                    .send(tungstenite::Message::text(event.to_string()))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// How long a check run here may take: a change that never comes is waited for 10 s.
const CHECK_BOUND: Duration = Duration::from_secs(60);

/// The JSON report's line, bounded.
fn report_line(run: &mut Run) -> String {
    run.try_line(CHECK_BOUND)
        .unwrap_or_else(|| panic!("no report within {CHECK_BOUND:?}: {}", run.stderr_text()))
}

/// A finished `lrwatch check --json` run.
struct Checked {
    code: Option<i32>,
    report: Value,
}

impl Checked {
    fn with(&self, outcome: &str) -> BTreeSet<String> {
        self.report["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["outcome"] == outcome)
            .map(|r| r["requirement"].as_str().unwrap().to_string())
            .collect()
    }

    /// The mechanisms of the results with this outcome ("" for none).
    fn mechanisms(&self, outcome: &str) -> BTreeSet<String> {
        self.report["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["outcome"] == outcome)
            .map(|r| r["mechanism"].as_str().unwrap_or("").to_string())
            .collect()
    }

    fn result(&self, requirement: &str, outcome: &str) -> Value {
        self.report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["requirement"] == requirement && r["outcome"] == outcome)
            .cloned()
            .unwrap_or_else(|| panic!("no {outcome} {requirement}: {:#}", self.report))
    }
}

fn check(base: &str, extra: &[&str]) -> Checked {
    check_at(base, "/r", extra)
}

/// [`check`] of the counter under another target (`/r` with a query, which it ignores).
fn check_at(base: &str, target: &str, extra: &[&str]) -> Checked {
    let trigger = format!("curl -s -X POST {base}/bump");
    let url = format!("{base}{target}");
    let mut args = vec!["check", "--json", "--budget", "40", "--trigger", &trigger];
    args.extend_from_slice(extra);
    args.push(&url);
    let mut run = lrwatch(&args);
    let line = report_line(&mut run);
    let code = run.wait().code();
    let report = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    Checked { code, report }
}

#[test]
fn readings_the_texts_allow_pass_form_a_multiplex_and_paths_only_sockets() {
    if !have("curl", "check's trigger") {
        return;
    }
    let base = fake(Knobs {
        value_wait: true,
        multiplex_wait: true,
        multiplex_ws: true,
        ..Knobs::default()
    });
    let checked = check(&base, &[]);
    let report = &checked.report;
    assert_eq!(checked.code, Some(0), "{report:#}");
    assert!(checked.with("fail").is_empty(), "{report:#}");
    assert!(checked.with("warn").is_empty(), "{report:#}");
    // application/liveresource-multiplex is JSON; 304 after the wait is "nothing new".
    let body = checked.result("multiplex-body", "pass");
    assert_eq!(body["mechanism"], "multiplex-wait", "{body:#}");
    let held: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["requirement"] == "long-poll-held" && r["mechanism"] == "multiplex-wait")
        .collect();
    assert_eq!(held[0]["outcome"], "pass", "{report:#}");
    assert!(
        held[0]["detail"].as_str().unwrap().starts_with("304 after"),
        "{report:#}"
    );
    // An absolute ws:// link, a resource named by its path: delivered, and surviving.
    for requirement in [
        "change-delivered",
        "survives-other-clients",
        "push-is-value",
    ] {
        assert!(
            report["results"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["requirement"] == requirement
                    && r["mechanism"] == "multiplex-ws"
                    && r["outcome"] == "pass"),
            "{requirement}: {report:#}"
        );
    }
}

/// The fake's `/multi` keys its answer `/r` whatever it was asked, as the protocol's test server
/// answers `/test?no_previous` as `/test`: asked for `/r?no_previous`, a conforming client
/// (which matches keys to the URIs it asked for) never sees the change. Check fails the
/// answer and the delivery, and its evidence names the key asked for and the key answered;
/// a long-poll answered early for the other key is not taken for one that did not hold.
#[test]
fn a_multiplexed_answer_keyed_by_another_uri_fails_naming_both_keys() {
    if !have("curl", "check's trigger") {
        return;
    }
    let base = fake(Knobs {
        value_wait: true,
        multiplex_wait: true,
        multiplex_early: true,
        ..Knobs::default()
    });
    let checked = check_at(&base, "/r?no_previous", &[]);
    let report = &checked.report;
    assert_eq!(checked.code, Some(1), "{report:#}");
    assert_eq!(
        checked.with("fail"),
        BTreeSet::from(["multiplex-body".to_string(), "change-delivered".to_string()]),
        "{report:#}"
    );
    let failed: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "fail")
        .collect();
    for finding in failed {
        assert_eq!(finding["mechanism"], "multiplex-wait", "{finding:#}");
        assert_eq!(finding["level"], "MUST", "{finding:#}");
        let detail = finding["detail"].as_str().unwrap();
        assert!(
            detail.contains(r#""/r?no_previous""#) && detail.contains(r#"keyed "/r""#),
            "{finding:#}"
        );
        assert!(
            finding["request"].as_str().unwrap().contains("no_previous"),
            "{finding:#}"
        );
        assert!(
            finding["response"].as_str().unwrap().contains(r#""/r":"#),
            "{finding:#}"
        );
    }
    // Answered early for another URI: whether it held cannot be told, and is not blamed.
    assert!(checked.with("warn").is_empty(), "{report:#}");
    let held = checked.result("long-poll-held", "skip");
    assert_eq!(held["mechanism"], "multiplex-wait", "{held:#}");
    assert!(
        held["detail"]
            .as_str()
            .unwrap()
            .contains(r#"for "/r", not for "/r?no_previous""#),
        "{held:#}"
    );
    // Value-wait, on the same resource, is not blamed.
    assert!(report["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["requirement"] == "change-delivered"
            && r["mechanism"] == "value-wait"
            && r["outcome"] == "pass"));
}

#[test]
fn a_changes_answer_that_stays_at_its_checkpoint_is_nothing_yet_not_a_failure() {
    if !have("curl", "check's trigger") {
        return;
    }
    // As the protocol's test server answers before its tick: `{"time:change":"+0"}`, marked
    // as "nothing since" by a link back, a `Changes-Id` or an `ETag`; later, the change.
    let handles: Vec<_> = [Stays::LinkBack, Stays::ChangesId, Stays::Etag]
        .into_iter()
        .map(|stays| {
            std::thread::spawn(move || {
                let base = fake(Knobs {
                    changes: Some(stays),
                    ..Knobs::default()
                });
                (stays, check(&base, &[]))
            })
        })
        .collect();
    for handle in handles {
        let (stays, checked) = handle.join().unwrap();
        let report = &checked.report;
        assert_eq!(checked.code, Some(0), "{stays:?}: {report:#}");
        assert!(checked.with("fail").is_empty(), "{stays:?}: {report:#}");
        let advanced = checked.result("changes-advance", "pass");
        assert_eq!(advanced["mechanism"], "changes", "{advanced:#}");
        assert!(
            advanced["detail"]
                .as_str()
                .unwrap()
                .ends_with("/changes?after=1"),
            "{stays:?}: {advanced:#}"
        );
    }
}

/// Runs check against a fake server per case, concurrently; each case must report exactly
/// its requirement, at its level, with evidence.
fn each_breaks_exactly(cases: Vec<(Knobs, &'static str, &'static str)>, extra: &[&str]) {
    let cases = cases
        .into_iter()
        .map(|(knobs, requirement, outcome)| (knobs, requirement, None, outcome))
        .collect();
    each_breaks_exactly_over(cases, extra);
}

/// The same, each case also naming the one mechanism the requirement must be reported for.
fn each_breaks_exactly_over(
    cases: Vec<(Knobs, &'static str, Option<&'static str>, &'static str)>,
    extra: &[&str],
) {
    if !have("curl", "check's trigger") {
        return;
    }
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let handles: Vec<_> = cases
        .into_iter()
        .map(|(knobs, requirement, mechanism, outcome)| {
            let extra = extra.clone();
            std::thread::spawn(move || {
                let base = fake(knobs);
                let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
                (
                    knobs.fault,
                    requirement,
                    mechanism,
                    outcome,
                    check(&base, &extra),
                )
            })
        })
        .collect();
    let mut wrong = Vec::new();
    for handle in handles {
        let (fault, requirement, mechanism, outcome, checked) = handle.join().unwrap();
        let other = if outcome == "fail" { "warn" } else { "fail" };
        let code = if outcome == "fail" { 1 } else { 0 };
        let ok = checked.with(outcome) == BTreeSet::from([requirement.to_string()])
            && checked.with(other).is_empty()
            && checked.code == Some(code)
            && mechanism
                .is_none_or(|m| checked.mechanisms(outcome) == BTreeSet::from([m.to_string()]))
            && {
                let found = checked.result(requirement, outcome);
                found["response"].is_string()
                    && found["request"].is_string()
                    && found["source"].is_string()
                    && found["level"] == if outcome == "fail" { "MUST" } else { "SHOULD" }
            };
        if !ok {
            wrong.push(format!(
                "{fault:?} should {outcome} only {requirement} over {mechanism:?} (exit {code}), got exit {:?}: {:#}",
                checked.code, checked.report
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

fn with(fault: Fault, knobs: Knobs) -> Knobs {
    Knobs {
        fault: Some(fault),
        ..knobs
    }
}

#[test]
fn each_requirement_of_resources_and_long_polls_fails_alone() {
    let vw = Knobs {
        value_wait: true,
        ..Knobs::default()
    };
    let mux = Knobs {
        multiplex_wait: true,
        ..vw
    };
    each_breaks_exactly(
        vec![
            (with(Fault::Discovery500, vw), "discovery", "fail"),
            (with(Fault::MalformedLink, vw), "links", "fail"),
            (with(Fault::NoEtag, vw), "etag-present", "fail"),
            (with(Fault::JsonAsHtml, vw), "content-type", "warn"),
            (with(Fault::TextAsJson, vw), "content-type", "warn"),
            (with(Fault::LateLongPoll, vw), "long-poll-timely", "warn"),
            (with(Fault::BadWait500, vw), "bad-wait-handled", "warn"),
            (
                with(Fault::LongPollNeverDelivers, vw),
                "change-delivered",
                "fail",
            ),
            (with(Fault::MultiplexList, mux), "multiplex-body", "fail"),
        ],
        &[],
    );
}

#[test]
fn each_requirement_of_pushes_and_webhooks_fails_alone() {
    let ws = Knobs {
        multiplex_ws: true,
        ..Knobs::default()
    };
    let both = Knobs {
        value_wait: true,
        ..ws
    };
    let sse = Knobs {
        value_stream: true,
        ..Knobs::default()
    };
    let hooks = Knobs {
        value_callback: true,
        ..Knobs::default()
    };
    each_breaks_exactly(
        vec![
            (with(Fault::SsePingEvents, sse), "sse-framing", "fail"),
            (with(Fault::NoPreviousEtag, sse), "gap-markers", "warn"),
            (with(Fault::NoAck, ws), "subscribe-ack", "warn"),
            (with(Fault::PushList, ws), "push-is-value", "warn"),
            (
                with(Fault::LoseSubscribersOnLongPollEnd, both),
                "survives-other-clients",
                "fail",
            ),
            (
                with(Fault::SubscribeWithoutLocation, hooks),
                "callback-subscribe",
                "fail",
            ),
            (
                with(Fault::NotifyWithoutLocation, hooks),
                "callback-location",
                "fail",
            ),
            (
                with(Fault::NotifyAfterDelete, hooks),
                "callback-unsubscribe",
                "fail",
            ),
        ],
        &["--callback-listen", "127.0.0.1:0"],
    );
}

#[test]
fn a_long_poll_never_answered_while_nothing_changes_is_untimely_alone() {
    if !have("curl", "check's trigger") {
        return;
    }
    let base = fake(with(
        Fault::LongPollNeverAnswered,
        Knobs {
            value_wait: true,
            ..Knobs::default()
        },
    ));
    let checked = check(&base, &[]);
    let report = &checked.report;
    // A SHOULD: it warns, exit 0; held it was, and the change still arrives.
    assert_eq!(checked.code, Some(0), "{report:#}");
    assert!(checked.with("fail").is_empty(), "{report:#}");
    assert_eq!(
        checked.with("warn"),
        BTreeSet::from(["long-poll-timely".to_string()]),
        "{report:#}"
    );
    let late = checked.result("long-poll-timely", "warn");
    assert_eq!(late["mechanism"], "value-wait", "{late:#}");
    assert!(
        late["detail"]
            .as_str()
            .unwrap()
            .starts_with("no answer within 5.0s of a 2s wait"),
        "{late:#}"
    );
    assert!(
        late["request"].as_str().unwrap().contains("Wait: 2"),
        "{late:#}"
    );
    assert!(
        late["response"].as_str().unwrap().contains("no response"),
        "{late:#}"
    );
    assert_eq!(
        checked.result("change-delivered", "pass")["mechanism"],
        "value-wait"
    );
}

#[test]
fn text_labelled_as_text_has_no_json_label_to_judge() {
    if !have("curl", "check's trigger") {
        return;
    }
    let base = fake(Knobs {
        value_wait: true,
        plain_text: true,
        ..Knobs::default()
    });
    let checked = check(&base, &[]);
    let report = &checked.report;
    assert_eq!(checked.code, Some(0), "{report:#}");
    assert!(checked.with("fail").is_empty(), "{report:#}");
    assert!(checked.with("warn").is_empty(), "{report:#}");
    // Not a PASS whose detail says "not JSON": the requirement has nothing to judge.
    let label = checked.result("content-type", "skip");
    assert_eq!(
        label["detail"], "the content is not JSON (\"text/plain\"): nothing to label",
        "{label:#}"
    );
}

#[test]
fn a_change_never_delivered_fails_change_delivered_over_that_mechanism_alone() {
    let stream = Knobs {
        value_stream: true,
        ..Knobs::default()
    };
    let ws = Knobs {
        multiplex_ws: true,
        ..Knobs::default()
    };
    let mux = Knobs {
        multiplex_wait: true,
        ..Knobs::default()
    };
    let hooks = Knobs {
        value_callback: true,
        ..Knobs::default()
    };
    let changes = Knobs {
        changes: Some(Stays::LinkBack),
        ..Knobs::default()
    };
    let delivered = "change-delivered";
    each_breaks_exactly_over(
        vec![
            (
                with(Fault::StreamNeverDelivers, stream),
                delivered,
                Some("value-stream"),
                "fail",
            ),
            (
                with(Fault::SocketNeverDelivers, ws),
                delivered,
                Some("multiplex-ws"),
                "fail",
            ),
            (
                with(Fault::MultiplexNeverDelivers, mux),
                delivered,
                Some("multiplex-wait"),
                "fail",
            ),
            (
                with(Fault::HooksNeverNotified, hooks),
                delivered,
                Some("value-callback"),
                "fail",
            ),
            // Its answers at the end of each wait carry `+0`: a body, but a link back.
            (
                with(Fault::ChangesWaitNeverDelivers, changes),
                delivered,
                Some("changes-wait"),
                "fail",
            ),
        ],
        &["--callback-listen", "127.0.0.1:0"],
    );
}

#[test]
fn a_failing_trigger_warns_skips_what_needed_the_change_and_exits_1() {
    let base = fake(Knobs {
        value_wait: true,
        ..Knobs::default()
    });
    let url = format!("{base}/r");
    let mut run = lrwatch(&["check", "--json", "--trigger", "exit 3", &url]);
    let report: Value = serde_json::from_str(&report_line(&mut run)).unwrap();
    // The user's command failed, not the server: a practice of lrwatch's own, so at most a
    // SHOULD, and no requirement of the server fails; but what needed the change went
    // unchecked, so the run is not ok and exits 1, --strict or not.
    assert_eq!(run.wait().code(), Some(1), "{report:#}");
    assert!(
        run.stderr_text().contains("the trigger failed"),
        "{}",
        run.stderr_text()
    );
    assert_eq!(report["ok"], false, "{report:#}");
    assert_eq!(report["failed"], 0, "{report:#}");
    let results = report["results"].as_array().unwrap();
    let warned: Vec<&Value> = results.iter().filter(|r| r["outcome"] == "warn").collect();
    assert_eq!(warned.len(), 1, "{report:#}");
    assert_eq!(warned[0]["requirement"], "trigger", "{report:#}");
    assert_eq!(warned[0]["level"], "SHOULD", "{report:#}");
    assert!(results
        .iter()
        .any(|r| r["requirement"] == "change-delivered" && r["outcome"] == "skip"));
}
