//! JSON-lines streams given directly, against scripted servers written from the formats:
//! NDJSON (one value a line), RFC 7464 JSON text sequences (RS … LF), and chunked JSON that
//! keeps streaming one value a line (as Kubernetes watches send).

use std::time::Duration;

use crate::harness::{lrwatch, lrwatch_env, respond, BOUND};
use crate::live_server::{chunk, chunked_head, head, hold, http_server, send};

#[test]
fn a_finite_ndjson_export_is_printed_once_and_done() {
    let server = http_server(|_, _, stream| {
        respond(
            &stream,
            200,
            &[("Content-Type", "application/x-ndjson")],
            "{\"a\":1}\n\n{\"a\":2}\r\nnot json\n{\"a\":1}",
        )
    });
    let mut run = lrwatch(&["-v", "--json", &format!("{}/export", server.base)]);
    let bodies: Vec<_> = (0..4).map(|_| run.json()).collect();
    assert_eq!(bodies[0]["transport"], "json-lines");
    assert_eq!(bodies[0]["body"], serde_json::json!({"a": 1}));
    assert_eq!(bodies[1]["body"], serde_json::json!({"a": 2}));
    // Not JSON: a text body, and a warning under -v, never a stop.
    assert_eq!(bodies[2]["body"], "not json");
    // The same value again is news (a line without its final LF counts).
    assert_eq!(bodies[3]["body"], serde_json::json!({"a": 1}));
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr_text());
    assert!(run.stderr_text().contains("line 3 is not JSON"));
    assert_eq!(server.requests(), 1, "a finished export is not asked again");
}

#[test]
fn json_text_sequences_split_on_rs() {
    let server = http_server(|_, _, stream| {
        respond(
            &stream,
            200,
            &[("Content-Type", "application/json-seq")],
            "\u{1e}{\"a\":1}\n\u{1e}[1,\n2]\n\u{1e}\"x\"\n",
        )
    });
    let mut run = lrwatch(&[&format!("{}/seq", server.base)]);
    assert_eq!(run.line(), "{\"a\":1}");
    assert_eq!(run.line(), "[1,2]");
    assert_eq!(run.line(), "\"x\"");
    assert_eq!(run.wait().code(), Some(0));
}

#[test]
fn a_kubernetes_style_watch_is_a_stream_of_lines() {
    let server = http_server(|_, _, stream| {
        chunked_head(&stream, "application/json");
        chunk(&stream, b"{\"type\":\"ADDED\",\"object\":{\"n\":1}}\n");
        std::thread::sleep(Duration::from_millis(50));
        chunk(&stream, b"{\"type\":\"MODIFIED\",\"object\":{\"n\":2}}\n");
        hold(stream);
    });
    let mut run = lrwatch(&["--json", &format!("{}/pods?watch=1", server.base)]);
    let first = run.json();
    assert_eq!(first["transport"], "json-lines");
    assert_eq!(first["body"]["type"], "ADDED");
    assert_eq!(run.json()["body"]["type"], "MODIFIED");
}

#[test]
fn chunked_json_with_one_line_that_stays_open_is_a_stream_too() {
    let server = http_server(|_, _, stream| {
        chunked_head(&stream, "application/json");
        chunk(&stream, b"{\"type\":\"ADDED\"}\n");
        hold(stream);
    });
    let mut run = lrwatch(&["--json", &format!("{}/w", server.base)]);
    let first = run.json();
    assert_eq!(first["transport"], "json-lines");
}

#[test]
fn a_chunked_json_document_is_still_a_document() {
    let server = http_server(|_, _, stream| {
        chunked_head(&stream, "application/json");
        chunk(&stream, b"{\n  \"a\": 1,\n");
        chunk(&stream, b"  \"b\": 2\n}\n");
        chunk(&stream, b"");
    });
    let mut run = lrwatch(&["--json", "-n", "1", &format!("{}/doc", server.base)]);
    let first = run.json();
    assert_eq!(first["transport"], "poll");
    assert_eq!(first["body"], serde_json::json!({"a": 1, "b": 2}));
    assert_eq!(run.wait().code(), Some(0));
}

#[test]
fn reconnect_asks_again_after_the_response_ends() {
    let server = http_server(|n, _, stream| {
        respond(
            &stream,
            200,
            &[("Content-Type", "application/x-ndjson")],
            &format!("{{\"n\":{n}}}\n"),
        )
    });
    let url = format!("{}/watch", server.base);
    let mut run = lrwatch(&["--reconnect", "-n", "3", &url]);
    assert_eq!(run.line(), "{\"n\":0}");
    assert_eq!(run.line(), "{\"n\":1}");
    assert_eq!(run.line(), "{\"n\":2}");
    assert_eq!(run.wait().code(), Some(0));
    // Without it, the first response is all.
    let mut once = lrwatch(&[&url]);
    assert!(once.line().starts_with("{\"n\":"));
    assert_eq!(once.wait().code(), Some(0));
}

#[test]
fn reconnect_backs_off_while_responses_bring_nothing() {
    let server = http_server(|_, _, stream| {
        respond(
            &stream,
            200,
            &[("Content-Type", "application/x-ndjson")],
            "",
        )
    });
    let mut run = lrwatch(&["-v", "--reconnect", &format!("{}/empty", server.base)]);
    run.stderr_until("attempt 3");
    let requests = server.requests();
    // Attempts 1 to 3 waited at least 0.25 + 0.5 + 1 s between them: a handful of requests,
    // never a spin.
    assert!(requests <= 5, "{requests} requests");
}

#[test]
fn a_line_over_max_body_stops_with_exit_1() {
    let server = http_server(|_, _, stream| {
        head(&stream, 200, "application/x-ndjson");
        send(&stream, b"{\"ok\":1}\n");
        send(&stream, format!("\"{}\"\n", "x".repeat(300)).as_bytes());
        hold(stream);
    });
    let mut run = lrwatch(&["--max-body", "100", &format!("{}/big", server.base)]);
    assert_eq!(run.line(), "{\"ok\":1}");
    assert_eq!(run.wait().code(), Some(1));
    assert!(
        run.stderr_text().contains("over 100 bytes"),
        "{:?}",
        run.stderr_seen
    );
}

#[test]
fn invalid_utf8_in_a_line_is_text_not_a_stop() {
    let server = http_server(|_, _, stream| {
        head(&stream, 200, "application/x-ndjson");
        send(&stream, b"a\xffb\n{\"ok\":2}\n");
    });
    let mut run = lrwatch(&["--json", &format!("{}/bad", server.base)]);
    assert_eq!(run.json()["body"], "a\u{fffd}b");
    assert_eq!(run.json()["body"], serde_json::json!({"ok": 2}));
    assert_eq!(run.wait().code(), Some(0));
}

#[test]
fn several_clients_follow_one_watch_at_once() {
    let server = http_server(|_, _, stream| {
        head(&stream, 200, "application/x-ndjson");
        for n in 0..3 {
            send(&stream, format!("{{\"n\":{n}}}\n").as_bytes());
            std::thread::sleep(Duration::from_millis(20));
        }
        hold(stream);
    });
    let url = format!("{}/w", server.base);
    let mut runs: Vec<_> = (0..4).map(|_| lrwatch(&["-n", "3", &url])).collect();
    for run in &mut runs {
        let lines: Vec<String> = (0..3).map(|_| run.line()).collect();
        assert_eq!(lines, ["{\"n\":0}", "{\"n\":1}", "{\"n\":2}"]);
        assert_eq!(run.wait().code(), Some(0));
    }
    assert_eq!(server.requests(), 4);
}

/// Waits (bounded) until `server` has seen `n` requests.
fn requests_reach(server: &crate::live_server::LiveServer, n: usize) -> bool {
    let deadline = std::time::Instant::now() + BOUND;
    while server.requests() < n && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.requests() >= n
}

#[test]
fn a_quiet_chunked_json_watch_is_a_stream_asked_again_not_unreachable() {
    // A watch from a resourceVersion that sees no change: the head, then nothing at all.
    let server = http_server(|_, _, stream| {
        chunked_head(&stream, "application/json");
        hold(stream);
    });
    // Silent for 0.6 s is dead (keep-alives every 0.2 s expected): asked again, never
    // "cannot reach" — the server answered.
    let mut run = lrwatch_env(
        &[
            "-v",
            &format!("{}/pods?watch=1&resourceVersion=7", server.base),
        ],
        &[("LRWATCH_KEEPALIVE", "0.2")],
    );
    run.stderr_until("transport json-lines");
    assert!(requests_reach(&server, 3), "{}", run.stderr_text());
    run.stop();
    let said = run.stderr_text();
    assert!(!said.contains("cannot reach"), "{said}");
}

#[test]
fn a_quiet_chunked_json_watch_that_speaks_later_is_followed() {
    // Quiet longer than it takes to tell (two seconds), then a line.
    let server = http_server(|_, _, stream| {
        chunked_head(&stream, "application/json");
        std::thread::sleep(Duration::from_millis(2500));
        chunk(&stream, b"{\"type\":\"ADDED\"}\n");
        hold(stream);
    });
    let mut run = lrwatch(&["--json", &format!("{}/pods?watch=1", server.base)]);
    let first = run.json();
    assert_eq!(first["transport"], "json-lines");
    assert_eq!(first["body"]["type"], "ADDED");
    assert_eq!(server.requests(), 1);
}

#[test]
fn a_json_lines_stream_that_never_sends_a_byte_is_asked_again() {
    let server = http_server(|_, _, stream| {
        head(&stream, 200, "application/x-ndjson");
        hold(stream);
    });
    let mut run = lrwatch_env(
        &["-v", &format!("{}/w", server.base)],
        &[("LRWATCH_KEEPALIVE", "0.2")],
    );
    run.stderr_until("the response broke");
    assert!(requests_reach(&server, 3), "{}", run.stderr_text());
    run.stop();
}

#[test]
fn a_quiet_chunked_json_watch_is_bounded_by_timeout() {
    let server = http_server(|_, _, stream| {
        chunked_head(&stream, "application/json");
        hold(stream);
    });
    let mut run = lrwatch(&["--timeout", "1", &format!("{}/w", server.base)]);
    assert_eq!(run.wait().code(), Some(124), "{}", run.stderr_text());
}
