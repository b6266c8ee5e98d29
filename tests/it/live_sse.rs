//! Event streams given directly (`text/event-stream` at the URL itself), against scripted
//! servers written from the WHATWG event-stream format: each event one event, its name and
//! id in the envelope, EventSource reconnection, 204 = done.

use std::time::Duration;

use crate::harness::{lrwatch, lrwatch_env, BOUND};
use crate::live_server::{head, hold, http_server, send};

#[test]
fn each_event_is_an_event_and_reconnects_resume_until_204() {
    let server = http_server(|n, _, stream| match n {
        0 => {
            head(&stream, 200, "text/event-stream");
            // retry: the reconnection delay; a comment is a keep-alive, not an event.
            send(&stream, b"retry: 50\n\n: keep-alive\n\n");
            send(&stream, b"event: tick\nid: 1\ndata: {\"n\":1}\n\n");
            send(&stream, b"data: plain\r\ndata: text\r\nid: 2\r\n\r\n");
            // The same data again is news too: no deduplication.
            send(&stream, b"event: tick\ndata: {\"n\":1}\n\n");
        }
        1 => {
            head(&stream, 200, "text/event-stream");
            send(&stream, b"id: 3\ndata: {\"n\":3}\n\n");
        }
        _ => crate::harness::respond(&stream, 204, &[], ""),
    });
    let url = format!("{}/feed", server.base);
    let mut run = lrwatch(&["--json", &url]);
    let first = run.json();
    assert_eq!(first["event"], "value");
    assert_eq!(first["transport"], "event-stream");
    assert_eq!(first["body"], serde_json::json!({"n": 1}));
    assert_eq!(
        first["sse"],
        serde_json::json!({"event": "tick", "id": "1"})
    );
    let second = run.json();
    assert_eq!(second["body"], "plain\ntext");
    assert_eq!(
        second["sse"],
        serde_json::json!({"event": "message", "id": "2"})
    );
    let third = run.json();
    assert_eq!(third["body"], serde_json::json!({"n": 1}));
    assert_eq!(
        third["sse"]["id"], "2",
        "an event's id is the stream's last"
    );
    let fourth = run.json();
    assert_eq!(fourth["body"], serde_json::json!({"n": 3}));
    // The 204 ends the only URL: exit 0.
    let status = run.wait();
    assert_eq!(status.code(), Some(0), "{}", run.stderr_text());
    assert_eq!(server.requests(), 3);
    assert_eq!(server.request(0).header("last-event-id"), None);
    assert_eq!(server.request(1).header("last-event-id"), Some("2"));
    assert_eq!(server.request(2).header("last-event-id"), Some("3"));
    assert_eq!(
        server.request(1).header("accept"),
        Some("text/event-stream")
    );
}

#[test]
fn liveresource_framing_keeps_etags_and_a_gap_is_said() {
    let server = http_server(|n, _, stream| {
        if n > 0 {
            return crate::harness::respond(&stream, 204, &[], "");
        }
        head(&stream, 200, "text/event-stream");
        send(
            &stream,
            b"event: update\ndata: {\"ETag\":\"\\\"1\\\"\"}\ndata: {\"v\":1}\n\n",
        );
        // Previous-ETag "5" is not "1": an update was lost.
        send(
            &stream,
            b"event: update\ndata: {\"ETag\":\"\\\"6\\\"\",\"Previous-ETag\":\"\\\"5\\\"\"}\ndata: {\"v\":6}\n\n",
        );
        // Headers and no content: deleted.
        send(
            &stream,
            b"event: update\ndata: {\"ETag\":\"\\\"7\\\"\"}\n\n",
        );
    });
    let mut run = lrwatch(&["--json", &format!("{}/x", server.base)]);
    let first = run.json();
    assert_eq!(first["etag"], "\"1\"");
    assert_eq!(first["body"], serde_json::json!({"v": 1}));
    let second = run.json();
    assert_eq!(second["etag"], "\"6\"");
    run.stderr_until("an update was missed");
    let third = run.json();
    assert_eq!(third["event"], "removed");
    assert_eq!(run.wait().code(), Some(0));
}

#[test]
fn every_url_must_be_done_before_lrwatch_exits() {
    // /slow sends its event only once /fast is done; lrwatch waits for both.
    let fast_done = std::sync::Arc::new(std::sync::Mutex::new(false));
    let flag = std::sync::Arc::clone(&fast_done);
    let server = http_server(move |_, seen, stream| {
        // Reconnects ask for an event stream; discovery asks for anything.
        let first = seen.header("accept") != Some("text/event-stream");
        match (seen.path.as_str(), first) {
            ("/fast", true) => {
                head(&stream, 200, "text/event-stream");
                send(&stream, b"data: fast\n\n");
            }
            ("/fast", false) => {
                *flag.lock().unwrap() = true;
                crate::harness::respond(&stream, 204, &[], "");
            }
            (_, true) => {
                head(&stream, 200, "text/event-stream");
                let until = std::time::Instant::now() + BOUND;
                while !*flag.lock().unwrap() && std::time::Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(10));
                }
                send(&stream, b"data: slow\n\n");
            }
            (_, false) => crate::harness::respond(&stream, 204, &[], ""),
        }
    });
    let mut run = lrwatch(&[
        &format!("{}/fast", server.base),
        &format!("{}/slow", server.base),
    ]);
    let mut lines = vec![run.line(), run.line()];
    lines.sort();
    assert_eq!(lines, ["fast", "slow"]);
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr_text());
}

#[test]
fn exec_gets_the_event_name_and_id() {
    let server = http_server(|n, _, stream| {
        if n > 0 {
            return crate::harness::respond(&stream, 204, &[], "");
        }
        head(&stream, 200, "text/event-stream");
        send(&stream, b"event: greet\nid: 42\ndata: hello\n\n");
    });
    let mut run = lrwatch(&[
        "--exec",
        "printf '%s %s %s ' \"$LRWATCH_SSE_EVENT\" \"$LRWATCH_SSE_ID\" \"$LRWATCH_TRANSPORT\"; cat; echo",
        &format!("{}/x", server.base),
    ]);
    assert_eq!(run.line(), "greet 42 event-stream hello");
    assert_eq!(run.wait().code(), Some(0));
}

#[test]
fn exec_runs_for_every_event_of_a_burst_in_order() {
    let server = http_server(|n, _, stream| {
        if n > 0 {
            return crate::harness::respond(&stream, 204, &[], "");
        }
        head(&stream, 200, "text/event-stream");
        // More than the 64 that may wait, all at once, for a command slower than they come.
        let burst: String = (0..100).map(|i| format!("data: {i}\n\n")).collect();
        send(&stream, burst.as_bytes());
    });
    let mut run = lrwatch(&["--exec", "cat; echo", &format!("{}/burst", server.base)]);
    let lines: Vec<String> = (0..100).map(|_| run.line()).collect();
    let expected: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    assert_eq!(lines, expected);
    assert_eq!(run.wait().code(), Some(0));
}

#[test]
fn a_burst_waiting_for_slow_runs_still_ends_at_timeout() {
    let server = http_server(|_, _, stream| {
        head(&stream, 200, "text/event-stream");
        let burst: String = (0..100).map(|i| format!("data: {i}\n\n")).collect();
        send(&stream, burst.as_bytes());
        hold(stream);
    });
    let started = std::time::Instant::now();
    let mut run = lrwatch(&[
        "--timeout",
        "1",
        "--exec",
        "sleep 30",
        &format!("{}/burst", server.base),
    ]);
    assert_eq!(run.wait().code(), Some(124));
    // One run alone outlasts BOUND: ending within it was the timeout's doing.
    assert!(started.elapsed() < BOUND);
}

#[test]
fn diff_shows_successive_events() {
    let server = http_server(|n, _, stream| {
        if n > 0 {
            return crate::harness::respond(&stream, 204, &[], "");
        }
        head(&stream, 200, "text/event-stream");
        send(
            &stream,
            b"data: {\"a\":1,\"b\":2}\n\ndata: {\"a\":1,\"b\":3}\n\n",
        );
    });
    let mut run = lrwatch(&["--diff", &format!("{}/x", server.base)]);
    assert_eq!(run.wait().code(), Some(0));
    let out = run.rest().join("\n");
    assert!(out.contains("-  \"b\": 2"), "{out}");
    assert!(out.contains("+  \"b\": 3"), "{out}");
}

#[test]
fn a_stream_that_never_sends_a_byte_is_reconnected_by_the_dead_connection_timer() {
    let server = http_server(|_, _, stream| {
        head(&stream, 200, "text/event-stream");
        hold(stream);
    });
    // Keep-alives every 0.2 s expected: silent for 0.6 s is dead.
    let mut run = lrwatch_env(
        &["-v", &format!("{}/x", server.base)],
        &[("LRWATCH_KEEPALIVE", "0.2")],
    );
    run.stderr_until("the stream broke");
    run.stderr_until("GET");
    let deadline = std::time::Instant::now() + BOUND;
    while server.requests() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.requests() >= 2, "{}", run.stderr_text());
}

#[test]
fn keep_alive_comments_feed_the_dead_connection_timer() {
    let server = http_server(|_, _, stream| {
        head(&stream, 200, "text/event-stream");
        // A comment every 0.1 s for 1.5 s (the timer is 0.6 s), then an event.
        for _ in 0..15 {
            send(&stream, b": ping\n\n");
            std::thread::sleep(Duration::from_millis(100));
        }
        send(&stream, b"data: after\n\n");
        hold(stream);
    });
    let mut run = lrwatch_env(
        &["--json", &format!("{}/x", server.base)],
        &[("LRWATCH_KEEPALIVE", "0.2")],
    );
    assert_eq!(run.json()["body"], "after");
    assert_eq!(server.requests(), 1, "{}", run.stderr_text());
}

#[test]
fn a_silent_server_is_bounded_by_timeout() {
    // Not even a response head.
    let server = http_server(|_, _, stream| hold(stream));
    let mut run = lrwatch(&["--timeout", "0.5", &format!("{}/x", server.base)]);
    assert_eq!(run.wait().code(), Some(124));
}

#[test]
fn an_event_over_max_body_stops_with_exit_1() {
    let server = http_server(|_, _, stream| {
        head(&stream, 200, "text/event-stream");
        // The event before the one too large, in the same write, is shown first.
        send(
            &stream,
            format!("data: ok\n\ndata: {}\n\n", "x".repeat(300)).as_bytes(),
        );
        hold(stream);
    });
    let mut run = lrwatch(&["--max-body", "100", &format!("{}/x", server.base)]);
    assert_eq!(run.line(), "ok");
    assert_eq!(run.wait().code(), Some(1));
    assert!(
        run.stderr_text().contains("over 100 bytes"),
        "{:?}",
        run.stderr_seen
    );
}

/// An event stream of `events` once; a reconnect is answered 204, so lrwatch is then done.
fn once(events: &'static [u8]) -> crate::live_server::LiveServer {
    http_server(move |n, _, stream| {
        if n > 0 {
            return crate::harness::respond(&stream, 204, &[], "");
        }
        head(&stream, 200, "text/event-stream");
        send(&stream, events);
    })
}

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    let server = once(b"data: a\xffb\n\ndata: ok\n\n");
    let mut run = lrwatch(&["--json", &format!("{}/x", server.base)]);
    assert_eq!(run.json()["body"], "a\u{fffd}b");
    assert_eq!(run.json()["body"], "ok");
    assert_eq!(run.wait().code(), Some(0));
}

/// Every way out gives the data as EventSource decodes it: a plain line, `--exec`'s stdin,
/// and JSON whose string held an invalid byte (JSON once decoded).
#[test]
fn invalid_utf8_is_replaced_in_every_output() {
    let stream = || once(b"data: a\xffb\n\ndata: {\"s\":\"x\xffy\"}\n\n");
    let server = stream();
    let mut run = lrwatch(&[&format!("{}/x", server.base)]);
    assert_eq!(run.line(), "a\u{fffd}b");
    assert_eq!(run.line(), "{\"s\":\"x\u{fffd}y\"}");
    assert_eq!(run.wait().code(), Some(0));
    let server = stream();
    let mut run = lrwatch(&["--exec", "cat; echo", &format!("{}/x", server.base)]);
    assert_eq!(run.line(), "a\u{fffd}b");
    assert_eq!(run.line(), "{\"s\":\"x\u{fffd}y\"}");
    assert_eq!(run.wait().code(), Some(0));
    let server = stream();
    let mut run = lrwatch(&["--json", &format!("{}/x", server.base)]);
    run.json();
    assert_eq!(run.json()["body"], serde_json::json!({"s": "x\u{fffd}y"}));
    assert_eq!(run.wait().code(), Some(0));
}

/// Compact JSON that holds an invalid byte is printed as its decoded text, as the same JSON
/// without it is printed as it came: not rebuilt from its value (`1e2` stays `1e2`, an escape
/// stays an escape, a lone surrogate, which serde_json refuses, stays JSON).
#[test]
fn compact_json_with_invalid_utf8_is_printed_as_decoded_not_rebuilt() {
    let stream = || {
        once(
            b"data: {\"n\":1e2,\"e\":\"\\u0041\",\"s\":\"x\xffy\"}\n\n\
              data: {\"u\":\"\\ud800\",\"s\":\"\xff\"}\n\n",
        )
    };
    let server = stream();
    let mut run = lrwatch(&[&format!("{}/x", server.base)]);
    assert_eq!(
        run.line(),
        "{\"n\":1e2,\"e\":\"\\u0041\",\"s\":\"x\u{fffd}y\"}"
    );
    assert_eq!(run.line(), "{\"u\":\"\\ud800\",\"s\":\"\u{fffd}\"}");
    assert_eq!(run.wait().code(), Some(0));
    let server = stream();
    let mut run = lrwatch(&["--json", &format!("{}/x", server.base)]);
    let first = run.line();
    assert!(
        first.contains(",\"body\":{\"n\":1e2,\"e\":\"\\u0041\",\"s\":\"x\u{fffd}y\"}}"),
        "{first}"
    );
    let second = run.line();
    assert!(
        second.contains(",\"body\":{\"u\":\"\\ud800\",\"s\":\"\u{fffd}\"}}"),
        "{second}"
    );
    assert_eq!(run.wait().code(), Some(0));
}

#[test]
fn errors_back_off_with_the_servers_retry_as_a_floor() {
    let server = http_server(|n, _, stream| match n {
        0 => {
            head(&stream, 200, "text/event-stream");
            send(&stream, b"retry: 300\ndata: one\n\n");
        }
        1 | 2 => crate::harness::respond(&stream, 503, &[], "busy"),
        3 => {
            head(&stream, 200, "text/event-stream");
            send(&stream, b"data: two\n\n");
        }
        _ => crate::harness::respond(&stream, 204, &[], ""),
    });
    let started = std::time::Instant::now();
    let mut run = lrwatch(&[&format!("{}/x", server.base)]);
    assert_eq!(run.line(), "one");
    run.stderr_until("HTTP 503");
    assert_eq!(run.line(), "two");
    // Three waits of at least the server's 300 ms.
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(run.wait().code(), Some(0));
}

#[test]
fn an_id_that_cannot_be_a_header_is_kept_but_not_sent_and_the_stream_goes_on() {
    // A hostile (or careless) server sets an id with an escape character in it: sending it
    // back as Last-Event-ID would fail every reconnect, here, before a byte leaves.
    let server = http_server(|n, _, stream| match n {
        0 => {
            head(&stream, 200, "text/event-stream");
            send(&stream, b"retry: 50\nid: a\x1b[31mb\ndata: one\n\n");
        }
        1 => {
            head(&stream, 200, "text/event-stream");
            send(&stream, b"data: two\n\n");
        }
        _ => crate::harness::respond(&stream, 204, &[], ""),
    });
    let mut run = lrwatch(&["-v", "--json", &format!("{}/x", server.base)]);
    let one = run.json();
    // Kept as the stream set it (the envelope escapes it as JSON does).
    assert_eq!(one["sse"]["id"], "a\u{1b}[31mb");
    assert_eq!(run.json()["body"], "two");
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr_text());
    assert_eq!(server.request(1).header("last-event-id"), None);
    let said = run.stderr_text();
    assert_eq!(
        said.matches("reconnecting without Last-Event-ID").count(),
        1,
        "{said}"
    );
}

#[test]
fn a_forced_transport_on_a_live_url_is_an_error_naming_what_it_is() {
    let server = http_server(|_, request, stream| {
        if !request.path.contains("lines") {
            head(&stream, 200, "text/event-stream");
            send(&stream, b"data: one\n\n");
        } else {
            head(&stream, 200, "application/x-ndjson");
            send(&stream, b"{\"a\":1}\n");
        }
        hold(stream);
    });
    for (path, what) in [
        ("events", "is an event stream (text/event-stream)"),
        ("lines", "is a JSON-lines stream"),
    ] {
        let url = format!("{}/{path}", server.base);
        let mut run = lrwatch(&["--transport", "value-wait", &url]);
        assert_eq!(run.wait().code(), Some(1), "{}", run.stderr_text());
        assert!(run.rest().is_empty(), "not followed as something else");
        let said = run.stderr_text();
        assert!(said.contains(what), "{said}");
        assert!(said.contains("offers no value-wait transport"), "{said}");
        assert!(said.contains("Leave out --transport"), "{said}");
    }
    // auto is no forcing.
    let mut run = lrwatch(&[
        "--transport",
        "auto",
        "-n",
        "1",
        &format!("{}/e", server.base),
    ]);
    assert_eq!(run.line(), "one");
    assert_eq!(run.wait().code(), Some(0));
}

#[test]
fn the_first_connection_and_reconnects_have_the_same_dead_connection_timer() {
    let server = http_server(|n, _, stream| {
        if n > 1 {
            return crate::harness::respond(&stream, 204, &[], "");
        }
        head(&stream, 200, "text/event-stream");
        send(&stream, b"retry: 50\ndata: x\n\n");
    });
    // The default keep-alive (15 s): three periods, 45 s, on every connection.
    let mut run = lrwatch(&["-v", &format!("{}/x", server.base)]);
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr_text());
    let said = run.stderr_text();
    let timers: Vec<&str> = said
        .lines()
        .filter_map(|l| l.split("; dead after ").nth(1))
        .collect();
    assert_eq!(timers.len(), 3, "{said}");
    assert!(timers.iter().all(|t| *t == "45s of silence"), "{said}");
}

/// What a server puts in an event's name, id or ETag cannot keep `--exec` from running: a NUL
/// (no environment string can hold one) or an id over Linux's 128 KiB per-string limit (it
/// stays the stream's id for the events after it) made every such run fail to start. Each
/// value is given with its NULs replaced and cut to 4 KiB; the command runs for every event.
#[test]
fn exec_runs_for_every_event_whatever_its_name_id_or_etag_holds() {
    let server = http_server(|_, _, stream| {
        head(&stream, 200, "text/event-stream");
        send(&stream, b"event: a\0b\ndata: 1\n\n");
        // LiveResource framing: the first data line's headers give the event its ETag.
        send(
            &stream,
            b"event: update\ndata: {\"ETag\":\"\\\"x\\u0000y\\\"\"}\ndata: 2\n\n",
        );
        let id = format!("id: {}\ndata: 3\n\ndata: 4\n\n", "I".repeat(140_000));
        send(&stream, id.as_bytes());
        let name = format!("event: {}\ndata: 5\n\n", "E".repeat(200_000));
        send(&stream, name.as_bytes());
        hold(stream);
    });
    // body|event name (its start)|its length|the id's length|ETag, in bytes.
    let command = "len() { printf %s \"$1\" | wc -c | tr -d ' '; }; \
        printf '%s|%s|%s|%s|%s\\n' \"$(cat)\" \"$(printf %s \"$LRWATCH_SSE_EVENT\" | head -c 12)\" \
        \"$(len \"$LRWATCH_SSE_EVENT\")\" \"$(len \"$LRWATCH_SSE_ID\")\" \"$LRWATCH_ETAG\"";
    let mut run = lrwatch(&["-n", "5", "--exec", command, &format!("{}/x", server.base)]);
    let lines: Vec<String> = (0..5).map(|_| run.line()).collect();
    assert_eq!(
        lines,
        [
            "1|a\u{FFFD}b|5|0|",
            "2|update|6|0|\"x\u{FFFD}y\"",
            "3|message|7|4096|",
            "4|message|7|4096|",
            "5|EEEEEEEEEEEE|4096|4096|",
        ]
    );
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr_text());
    assert!(
        !run.stderr_text().contains("--exec"),
        "{}",
        run.stderr_text()
    );
}
