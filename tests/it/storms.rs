//! Servers that end every stream, socket or long-poll without delivering anything: lrwatch
//! backs off (no reconnect storm), `auto` falls back after three failures, and stderr says it
//! once and then summarises, never a line per attempt.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::*;

/// The instants at which a path was asked, in order.
type Times = Arc<Mutex<Vec<Instant>>>;

fn count(times: &Times) -> usize {
    times.lock().unwrap().len()
}

/// Lines of `text` containing `needle`.
fn lines_with(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

/// Stderr of `run` (stopped here) said the first failure once, then summed up the next two
/// ("2 more times (latest: `latest`…", at attempt 3): not a line per attempt.
fn said_once_then_summed_up(run: &mut Run, latest: &str) {
    let summary = run.stderr_until("more times");
    assert!(
        summary.contains(&format!("2 more times (latest: {latest}"))
            && summary.contains("(attempt 3)"),
        "{summary}"
    );
    run.stop();
    let err = run.stderr_text();
    assert_eq!(
        lines_with(&err, "retrying in"),
        2,
        "one, then the summary: {err}"
    );
    assert!(
        err.contains("(attempt 1)") && !err.contains("(attempt 2)"),
        "{err}"
    );
}

/// A resource offering only `value-stream` at `/s`, whose stream answers `retry: 0` and ends
/// at once, except that stream requests numbered (from 0) `working` and on send an event
/// (and ask for a second before the next). Stream requests are timed.
fn retry_zero_server(working: usize) -> (Scripted, Times) {
    let times: Times = Arc::default();
    let t = Arc::clone(&times);
    let server = scripted(move |_, seen| {
        let links = h(&[("ETag", "\"1\""), ("Link", "</s>; rel=value-stream")]);
        match seen.path.as_str() {
            "/s" => {
                let n = {
                    let mut t = t.lock().unwrap();
                    t.push(Instant::now());
                    t.len() - 1
                };
                let body = if n >= working {
                    "retry: 1000\ndata: 2\n\n"
                } else {
                    "retry: 0\n\n"
                };
                (
                    200,
                    h(&[("Content-Type", "text/event-stream")]),
                    body.into(),
                )
            }
            // Catch-ups after each open: nothing new.
            _ if seen.header("if-none-match").is_some() => (304, links, String::new()),
            _ => (200, links, "1".into()),
        }
    });
    (server, times)
}

#[test]
fn a_stream_that_answers_retry_0_and_closes_backs_off_and_auto_falls_back() {
    let (server, streams) = retry_zero_server(usize::MAX);
    let url = format!("{}/r", server.base);
    let mut run = lrwatch(&["--interval", "0.2", &url]);
    assert_eq!(run.line(), "1");
    let said = run.stderr_until("falling back to poll");
    assert!(
        said.contains("value-stream failed 3 times (the stream ended before any event)"),
        "{said}"
    );
    // Polling now (every 0.2 s): the stream is left alone for the fall-back period (60 s).
    let polls_before = server.seen.lock().unwrap().len();
    // Three polls seen (bounded), rather than counted over a fixed time a loaded machine
    // may not give lrwatch.
    let deadline = std::time::Instant::now() + BOUND;
    while server.seen.lock().unwrap().len() <= polls_before + 2 {
        assert!(std::time::Instant::now() < deadline, "not polling");
        std::thread::sleep(Duration::from_millis(20));
    }
    run.stop();
    let times = streams.lock().unwrap().clone();
    assert_eq!(times.len(), 3, "stream requests");
    // Backing off from 0.25-0.5 s, doubling: the server's retry of 0 is only a floor.
    let spread = times[2] - times[0];
    assert!(spread >= Duration::from_millis(750), "{spread:?}");
    // Said once, then the fall back: not a line per attempt.
    let err = run.stderr_text();
    assert_eq!(lines_with(&err, "retrying in"), 1, "{err}");
    assert!(err.contains("before any event; retrying in"), "{err}");
}

#[test]
fn a_forced_stream_that_keeps_closing_backs_off_and_stderr_is_summarised() {
    // The first three streams close at once; the fourth delivers a value.
    let (server, streams) = retry_zero_server(3);
    let url = format!("{}/r", server.base);
    let mut run = lrwatch(&["--transport", "value-stream", &url]);
    assert_eq!(run.line(), "1");
    assert_eq!(run.line(), "2");
    said_once_then_summed_up(&mut run, "the stream ended before any event; retrying in");
    // Three backoffs of at least 0.25, 0.5 and 1 s before the stream that worked.
    let times = streams.lock().unwrap().clone();
    assert!(
        times[3] - times[0] >= Duration::from_millis(1750),
        "{times:?}"
    );
}

#[test]
fn a_forced_stream_that_keeps_closing_is_not_a_storm() {
    let (server, streams) = retry_zero_server(usize::MAX);
    let url = format!("{}/r", server.base);
    let mut run = lrwatch(&["--transport", "value-stream", "-t", "3", &url]);
    assert_eq!(run.line(), "1");
    assert_eq!(run.wait().code(), Some(124));
    // Backoff from 0.25-0.5 s, doubling: 4 streams at most in 3 s (hundreds a second
    // without it); each open brings one catch-up GET, no more.
    let n = count(&streams);
    assert!((2..=5).contains(&n), "{n} stream requests");
    let all = server.seen.lock().unwrap().len();
    assert!(all <= 1 + 2 * n, "{all} requests for {n} streams");
    let err = run.stderr_text();
    assert_eq!(lines_with(&err, "retrying in"), 1, "{err}");
}

/// A server whose event streams each send one event (a new value each time) with `retry: 0`
/// and end: at `/s`, a LiveResource `value-stream` of the resource `/r`; at `/plain`, a plain
/// event-stream URL. Stream requests are timed.
fn one_event_then_close_server() -> (Scripted, Times) {
    let times: Times = Arc::default();
    let t = Arc::clone(&times);
    let server = scripted(move |_, seen| {
        let links = h(&[("ETag", "\"1\""), ("Link", "</s>; rel=value-stream")]);
        match seen.path.as_str() {
            "/s" | "/plain" => {
                let n = {
                    let mut t = t.lock().unwrap();
                    t.push(Instant::now());
                    t.len()
                };
                let event = format!("retry: 0\ndata: {n}\n\n");
                (200, h(&[("Content-Type", "text/event-stream")]), event)
            }
            _ if seen.header("if-none-match").is_some() => (304, links, String::new()),
            _ => (200, links, "0".into()),
        }
    });
    (server, times)
}

#[test]
fn streams_that_each_deliver_an_event_and_close_are_not_a_storm() {
    // The same server behaviour followed as a LiveResource value-stream and as a plain
    // event-stream URL (two loops in lrwatch).
    for path in ["/r", "/plain"] {
        let (server, streams) = one_event_then_close_server();
        let url = format!("{}{path}", server.base);
        let mut run = lrwatch(&["--transport", "auto", "-t", "3", &url]);
        run.line();
        assert_eq!(run.wait().code(), Some(124), "{path}");
        // Reconnected as asked twice, then from 100 ms doubling to 500 ms: about ten
        // streams in 3 s (thousands without it; each one's event is news, so no failure
        // backoff applies).
        let n = count(&streams);
        assert!((4..=15).contains(&n), "{path}: {n} stream requests");
    }
}

/// How a socket server ends a connection after acknowledging the subscription.
#[derive(Clone, Copy)]
enum Ending {
    Close1000,
    Drop,
    BogusCode,
}

/// A `multiplex-socket` server that acknowledges each subscription and then ends the
/// connection, each in turn of the three ways; the instants it accepted connections, and its
/// address.
fn closing_socket_server() -> (String, Times) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let times: Times = Arc::default();
    let t = Arc::clone(&times);
    let turn = AtomicUsize::new(0);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            t.lock().unwrap().push(Instant::now());
            let ending = [Ending::Close1000, Ending::Drop, Ending::BogusCode]
                [turn.fetch_add(1, Ordering::SeqCst) % 3];
            std::thread::spawn(move || {
                let Some(mut ws) = accept_liveresource(stream) else {
                    return;
                };
                let Ok(tungstenite::Message::Text(get)) = ws.read() else {
                    return;
                };
                let uri = get.as_str().trim_start_matches("GET ").to_string();
                let _ = ws.send(tungstenite::Message::text(format!("OK {uri}")));
                match ending {
                    Ending::Close1000 => {
                        let _ = ws.close(None);
                        while ws.read().is_ok() {}
                    }
                    Ending::Drop => drop(ws),
                    Ending::BogusCode => {
                        let _ = ws.close(Some(tungstenite::protocol::CloseFrame {
                            code: tungstenite::protocol::frame::coding::CloseCode::from(4999),
                            reason: "bye".into(),
                        }));
                        while ws.read().is_ok() {}
                    }
                }
            });
        }
    });
    (addr, times)
}

/// A resource whose only push transport is the socket at `addr`; every GET is timed.
fn socket_resource(addr: &str) -> (Scripted, Times) {
    let link = format!("<http://{addr}/socket>; rel=multiplex-socket");
    let gets: Times = Arc::default();
    let g = Arc::clone(&gets);
    let server = scripted(move |_, _| {
        g.lock().unwrap().push(Instant::now());
        (200, h(&[("ETag", "\"1\""), ("Link", &link)]), "1".into())
    });
    (server, gets)
}

#[test]
fn a_socket_that_closes_after_each_subscribe_backs_off_and_auto_falls_back() {
    let (addr, sockets) = closing_socket_server();
    let (origin, _) = socket_resource(&addr);
    let url = format!("{}/r", origin.base);
    let mut run = lrwatch(&["--interval", "0.2", &url]);
    assert_eq!(run.line(), "1");
    let said = run.stderr_until("falling back to poll");
    assert!(
        said.contains("multiplex-socket failed 3 times (") && said.contains("before pushing"),
        "{said}"
    );
    std::thread::sleep(Duration::from_millis(1000));
    run.stop();
    let times = sockets.lock().unwrap().clone();
    assert_eq!(times.len(), 3, "socket connections");
    // Backoff 0.25-0.5 s, then 0.5-1 s (not 50-100 ms each).
    assert!(
        times[2] - times[0] >= Duration::from_millis(750),
        "{times:?}"
    );
    let err = run.stderr_text();
    assert_eq!(lines_with(&err, "reconnecting (attempt"), 1, "{err}");
    assert!(err.contains("reconnecting (attempt 1)"), "{err}");
}

#[test]
fn a_forced_socket_that_closes_after_each_subscribe_is_not_a_storm() {
    let (addr, sockets) = closing_socket_server();
    let (origin, gets) = socket_resource(&addr);
    let url = format!("{}/r", origin.base);
    let mut run = lrwatch(&["--transport", "multiplex-socket", "-v", "-t", "3.5", &url]);
    assert_eq!(run.line(), "1");
    assert_eq!(run.wait().code(), Some(124));
    // Backoff from 0.25-0.5 s, doubling: 5 connections at most in 3.5 s (a reconnect
    // every 80-120 ms without it); a catch-up GET after each acknowledgement, no more.
    let n = count(&sockets);
    assert!((3..=5).contains(&n), "{n} connections");
    assert!(count(&gets) <= 1 + n, "{} GETs", count(&gets));
    let err = run.stderr_text();
    // The attempts are counted, not "attempt 1" each time.
    assert!(err.contains("reconnecting (attempt 3)"), "{err}");
}

#[test]
fn a_forced_socket_that_keeps_closing_is_said_once() {
    let (addr, sockets) = closing_socket_server();
    let (origin, _) = socket_resource(&addr);
    let url = format!("{}/r", origin.base);
    let mut run = lrwatch(&["--transport", "multiplex-socket", "-t", "2.5", &url]);
    assert_eq!(run.line(), "1");
    assert_eq!(run.wait().code(), Some(124));
    assert!(count(&sockets) >= 3);
    let err = run.stderr_text();
    assert_eq!(lines_with(&err, "reconnecting (attempt"), 1, "{err}");
}

#[test]
fn a_long_poll_never_answered_makes_auto_fall_back_to_polling() {
    // value-wait at /w is never answered (the connection held open, silent); the resource
    // itself answers at once.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let held: Times = Arc::default();
    let h2 = Arc::clone(&held);
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let Some(seen) = read_head(&stream) else {
                continue;
            };
            if seen.path == "/w" {
                h2.lock().unwrap().push(Instant::now());
                kept.push(stream);
            } else {
                respond(
                    &stream,
                    200,
                    &[("ETag", "\"1\""), ("Link", "</w>; rel=value-wait")],
                    "1",
                );
            }
        }
    });
    let mut run = lrwatch(&["--wait", "0", "--interval", "0.2", &format!("{base}/r")]);
    assert_eq!(run.line(), "1");
    // Each long-poll is given up after its wait plus 2 s: three take 6-8 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    let said = loop {
        let line = run.stderr_until("");
        if line.contains("falling back") {
            break line;
        }
        assert!(Instant::now() < deadline, "{:#?}", run.stderr_seen);
    };
    assert!(said.contains("value-wait failed 3 times"), "{said}");
    assert!(said.contains("falling back to poll"), "{said}");
    run.stop();
    assert_eq!(count(&held), 3);
    let err = run.stderr_text();
    assert_eq!(lines_with(&err, "retrying in"), 1, "{err}");
}

#[test]
fn a_multiplexed_stream_that_closes_at_once_backs_off_and_auto_falls_back() {
    let streams: Times = Arc::default();
    let t = Arc::clone(&streams);
    let server = scripted(move |_, seen| {
        let links = h(&[("ETag", "\"1\""), ("Link", "</m>; rel=multiplex-stream")]);
        if seen.path.starts_with("/m") {
            t.lock().unwrap().push(Instant::now());
            return (
                200,
                h(&[("Content-Type", "text/event-stream")]),
                String::new(),
            );
        }
        match seen.header("if-none-match") {
            Some(_) => (304, links, String::new()),
            None => (200, links, "1".into()),
        }
    });
    let url = format!("{}/r", server.base);
    let mut run = lrwatch(&["--interval", "0.2", &url]);
    assert_eq!(run.line(), "1");
    let said = run.stderr_until("falling back to poll");
    assert!(
        said.contains("multiplex-stream failed 3 times (the stream ended before any event)"),
        "{said}"
    );
    std::thread::sleep(Duration::from_millis(1000));
    run.stop();
    let times = streams.lock().unwrap().clone();
    assert_eq!(times.len(), 3, "stream requests");
    assert!(
        times[2] - times[0] >= Duration::from_millis(750),
        "{times:?}"
    );
    let err = run.stderr_text();
    assert_eq!(lines_with(&err, "reconnecting (attempt"), 1, "{err}");
}

/// A `ws://` server whose connections numbered (from 0) below `failing` each send one message
/// (their number) and close with 1011; those after send a message every 100 ms for as long as
/// the client stays. Connections are timed.
fn one_message_then_1011_server(failing: usize) -> (crate::live_server::LiveServer, Times) {
    let times: Times = Arc::default();
    let t = Arc::clone(&times);
    let server = crate::live_server::ws_server(move |n, _, mut ws| {
        t.lock().unwrap().push(Instant::now());
        if n < failing {
            let _ = ws.send(tungstenite::Message::text(n.to_string()));
            let _ = ws.close(Some(tungstenite::protocol::CloseFrame {
                code: tungstenite::protocol::frame::coding::CloseCode::Error,
                reason: "internal".into(),
            }));
            // To the end of the closing handshake, or the client's going away.
            while ws.read().is_ok() {}
            return;
        }
        let deadline = Instant::now() + BOUND;
        while Instant::now() < deadline && ws.send(tungstenite::Message::text("up")).is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    (server, times)
}

#[test]
fn a_websocket_that_sends_a_message_then_closes_with_an_error_backs_off() {
    let (server, sockets) = one_message_then_1011_server(usize::MAX);
    let mut run = lrwatch(&["-t", "3", &format!("{}/feed", server.base)]);
    assert_eq!(run.line(), "0");
    assert_eq!(run.wait().code(), Some(124));
    // Backoff from 0.25-0.5 s, doubling: 4 connections at most in 3 s. Before, each message
    // counted as the connection working and the backoff started over every time: a
    // reconnect every 0.25-0.5 s, 8 or more in 3 s.
    let n = count(&sockets);
    assert!((2..=4).contains(&n), "{n} connections");
    // Each connection's message is still news.
    assert_eq!(run.rest().len() + 1, n);
    let err = run.stderr_text();
    assert_eq!(lines_with(&err, "retrying in"), 1, "{err}");
    assert!(
        err.contains("code 1011: internal; retrying in") && err.contains("(attempt 1)"),
        "{err}"
    );
}

#[test]
fn a_websocket_alternating_error_and_normal_closes_still_backs_off() {
    // Each connection sends its number and closes: with 1011, then normally, in turn. A normal
    // close after a message (the connection worked) ended probation and started the backoff
    // and the "said once" over: a stderr line every other connection.
    let server = crate::live_server::ws_server(move |n, _, mut ws| {
        let _ = ws.send(tungstenite::Message::text(n.to_string()));
        let code = if n % 2 == 0 {
            tungstenite::protocol::frame::coding::CloseCode::Error
        } else {
            tungstenite::protocol::frame::coding::CloseCode::Normal
        };
        let _ = ws.close(Some(tungstenite::protocol::CloseFrame {
            code,
            reason: "".into(),
        }));
        while ws.read().is_ok() {}
    });
    let mut run = lrwatch(&["-t", "4", &format!("{}/feed", server.base)]);
    assert_eq!(run.line(), "0");
    assert_eq!(run.wait().code(), Some(124));
    let err = run.stderr_text();
    assert_eq!(lines_with(&err, "retrying in"), 1, "{err}");
}

#[test]
fn a_websocket_that_keeps_closing_with_an_error_is_summarised_once_one_stays_up() {
    // Three connections that each send a message and close with 1011, then one that stays up
    // (a keep-alive period of 0.5 s makes it count as working).
    let (server, _) = one_message_then_1011_server(3);
    let mut run = lrwatch_env(
        &[&format!("{}/feed", server.base)],
        &[("LRWATCH_KEEPALIVE", "0.5")],
    );
    assert_eq!(run.line(), "0");
    said_once_then_summed_up(&mut run, "the server closed the WebSocket with code 1011");
}
