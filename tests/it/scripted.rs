//! Following scripted servers that check exactly what lrwatch sends, and misbehave on purpose.

use std::time::Duration;

use crate::harness::*;

#[test]
fn long_poll_sends_if_none_match_wait_and_prefer() {
    // Form C: no links, only `LiveResource-Property: wait` on the resource itself.
    let server = scripted(|n, _| match n {
        0 => (
            200,
            h(&[
                ("ETag", "\"e1\""),
                ("LiveResource-Property", "wait; min=1"),
                ("Content-Type", "application/json"),
            ]),
            "1".into(),
        ),
        _ => (
            200,
            h(&[
                ("ETag", "\"e2\""),
                ("LiveResource-Property", "wait"),
                ("Content-Type", "application/json"),
            ]),
            "2".into(),
        ),
    });
    let url = format!("{}/r", server.base);
    let mut run = lrwatch(&["--json", "-n", "2", "--wait", "30", &url]);
    let first = run.json();
    assert_eq!(first["transport"], "value-wait");
    assert_eq!(first["etag"], "\"e1\"");
    let second = run.json();
    assert_eq!(second["body"], 2);
    assert_eq!(second["etag"], "\"e2\"");
    assert!(run.wait().success());
    let seen = server.seen.lock().unwrap();
    let poll = &seen[1];
    assert_eq!(poll.path, "/r");
    assert_eq!(poll.header("if-none-match"), Some("\"e1\""));
    assert_eq!(poll.header("wait"), Some("30"));
    assert_eq!(poll.header("prefer"), Some("wait=30"));
}

#[test]
fn a_server_that_ignores_the_wait_does_not_make_lrwatch_spin() {
    let server = scripted(|n, _| {
        let headers = h(&[("ETag", "\"same\""), ("Link", "</r>; rel=\"value-wait\"")]);
        match n {
            0 => (200, headers, "\"v\"".into()),
            _ => (304, headers, String::new()),
        }
    });
    let url = format!("{}/r", server.base);
    let mut run = lrwatch(&["--interval", "0.2", "-t", "1.5", &url]);
    assert_eq!(run.line(), "\"v\"");
    assert_eq!(run.wait().code(), Some(124));
    let requests = server.seen.lock().unwrap().len();
    // 1.5 s at one request per 0.2 s is about 8; a spinning client makes thousands.
    assert!((2..=12).contains(&requests), "{requests} requests");
    let err = run.stderr_text();
    assert!(err.contains("answered a 55s long-poll after"), "{err}");
}

#[test]
fn the_same_value_is_never_emitted_twice() {
    // A server that answers every long-poll at once with 200 and the same body.
    let server = scripted(|_, _| {
        (
            200,
            h(&[("ETag", "\"x\""), ("Link", "</r>; rel=value-wait")]),
            "same".into(),
        )
    });
    let url = format!("{}/r", server.base);
    let mut run = lrwatch(&["--interval", "0.1", "-t", "1", &url]);
    assert_eq!(run.line(), "same");
    assert_eq!(run.wait().code(), Some(124));
    assert!(run.rest().is_empty());
    let requests = server.seen.lock().unwrap().len();
    assert!((3..=15).contains(&requests), "{requests} requests");
}

#[test]
fn polling_uses_if_modified_since_and_the_servers_interval() {
    let server = scripted(|n, _| match n {
        0 => (
            200,
            h(&[
                ("Last-Modified", "Sat, 28 Nov 2026 06:00:00 GMT"),
                ("X-Poll-Interval", "0.2"),
            ]),
            "a".into(),
        ),
        1 => (304, h(&[]), String::new()),
        _ => (
            200,
            h(&[("Last-Modified", "Sat, 28 Nov 2026 06:00:09 GMT")]),
            "b".into(),
        ),
    });
    let url = format!("{}/r", server.base);
    let mut run = lrwatch(&["--json", "-n", "2", &url]);
    assert_eq!(run.json()["body"], "a");
    // The server asked for 0.2 s; the default 5 s would take two polls past the bound.
    let second = run.json();
    assert_eq!(second["body"], "b");
    assert_eq!(second["transport"], "poll");
    assert!(run.wait().success());
    let seen = server.seen.lock().unwrap();
    assert_eq!(
        seen[1].header("if-modified-since"),
        Some("Sat, 28 Nov 2026 06:00:00 GMT")
    );
    assert_eq!(seen[1].header("if-none-match"), None);
}

#[test]
fn errors_back_off_then_recover() {
    let server = scripted(|n, _| {
        let headers = h(&[
            ("ETag", &format!("\"{}\"", n.min(3))),
            ("Link", "</r>; rel=value-wait"),
        ]);
        match n {
            0 => (200, headers, "1".into()),
            1 | 2 => (503, h(&[]), "busy".into()),
            _ => (200, headers, "2".into()),
        }
    });
    let url = format!("{}/r", server.base);
    let mut run = lrwatch(&["-n", "2", &url]);
    assert_eq!(run.line(), "1");
    run.stderr_until("HTTP 503");
    assert_eq!(run.line(), "2");
    assert!(run.wait().success());
    assert!(run.stderr_text().contains("retrying in"));
}

#[test]
fn user_headers_go_only_to_the_resources_origin() {
    // The long-poll link points at another origin (another port): it must not get the token.
    let other = scripted(|_, _| (200, h(&[("ETag", "\"2\"")]), "2".into()));
    let link = format!("<{}/elsewhere>; rel=value-wait", other.base);
    let origin = scripted(move |_, _| (200, h(&[("ETag", "\"1\""), ("Link", &link)]), "1".into()));
    let url = format!("{}/r", origin.base);
    let mut run = lrwatch(&[
        "-n",
        "2",
        "-H",
        "X-Token: s3cret",
        "-H",
        "Authorization: Bearer t",
        &url,
    ]);
    assert_eq!(run.line(), "1");
    assert_eq!(run.line(), "2");
    assert!(run.wait().success());
    let mine = origin.seen.lock().unwrap();
    assert_eq!(mine[0].header("x-token"), Some("s3cret"));
    assert_eq!(mine[0].header("authorization"), Some("Bearer t"));
    let theirs = other.seen.lock().unwrap();
    assert_eq!(theirs[0].path, "/elsewhere");
    assert_eq!(theirs[0].header("x-token"), None);
    assert_eq!(theirs[0].header("authorization"), None);
    assert_eq!(theirs[0].header("if-none-match"), Some("\"1\""));
}

#[test]
fn a_redirect_to_another_origin_drops_user_headers() {
    let target = scripted(|_, _| (200, h(&[]), "moved".into()));
    let location = format!("{}/new", target.base);
    let origin = scripted(move |_, _| (302, h(&[("Location", &location)]), String::new()));
    let mut run = lrwatch(&[
        "-n",
        "1",
        "-H",
        "X-Token: s3cret",
        &format!("{}/old", origin.base),
    ]);
    assert_eq!(run.line(), "moved");
    assert!(run.wait().success());
    assert_eq!(
        origin.seen.lock().unwrap()[0].header("x-token"),
        Some("s3cret")
    );
    assert_eq!(target.seen.lock().unwrap()[0].header("x-token"), None);
}

#[test]
fn unreachable_server_is_exit_1_quickly_with_a_clear_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/x");
    let started = std::time::Instant::now();
    let mut run = lrwatch(&[&url]);
    assert_eq!(run.wait().code(), Some(1));
    assert!(started.elapsed() < BOUND);
    let err = run.stderr_text();
    assert!(
        err.starts_with(&format!("lrwatch: cannot reach {url}: ")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn quiet_hides_warnings_and_verbose_shows_the_choice() {
    let script = |n: usize, _: &Seen| match n {
        0 => (
            200,
            h(&[
                ("ETag", "\"1\""),
                ("Link", "</r>; rel=value-wait, </s>; rel=hint-stream"),
            ]),
            "1".into(),
        ),
        1 => (503, h(&[]), String::new()),
        _ => (
            200,
            h(&[("ETag", "\"2\""), ("Link", "</r>; rel=value-wait")]),
            "2".into(),
        ),
    };
    let quiet = scripted(script);
    let mut run = lrwatch(&["-q", "-n", "2", &format!("{}/r", quiet.base)]);
    assert_eq!(run.line(), "1");
    assert_eq!(run.line(), "2");
    assert!(run.wait().success());
    assert_eq!(run.stderr_text(), "", "-q shows no warnings");

    let verbose = scripted(script);
    let mut run = lrwatch(&["-v", "-n", "2", &format!("{}/r", verbose.base)]);
    run.stderr_until("transport value-wait (auto; offered: value-wait, hint-stream, poll)");
    run.stderr_until("HTTP 503");
    assert!(run.wait().success());
}

/// A listener that answers each connection with `greet` and then says nothing more, holding
/// the connection open; counts connections.
fn silent_server(
    greet: fn(std::net::TcpStream) -> Option<Box<dyn std::any::Any + Send>>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let c = std::sync::Arc::clone(&count);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            if let Some(kept) = greet(stream) {
                c.fetch_add(1, Ordering::SeqCst);
                held.push(kept);
            }
        }
    });
    (format!("127.0.0.1:{}", addr.port()), count)
}

fn wait_for_connections(count: &std::sync::atomic::AtomicUsize, n: usize) {
    let deadline = std::time::Instant::now() + BOUND;
    while count.load(std::sync::atomic::Ordering::SeqCst) < n {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} connections",
            count.load(std::sync::atomic::Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
// tungstenite's handshake callback returns its large error response type by value.
#[allow(clippy::result_large_err)]
fn a_silent_websocket_is_noticed_and_reconnected() {
    // Also: the socket is on another origin, so the user's header must not reach it.
    static SAW_TOKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let (addr, connections) = silent_server(|stream| {
        let ws = tungstenite::accept_hdr(
            stream,
            |req: &tungstenite::handshake::server::Request,
             mut resp: tungstenite::handshake::server::Response| {
                if req.headers().contains_key("x-token") {
                    SAW_TOKEN.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                resp.headers_mut()
                    .insert("Sec-WebSocket-Protocol", "liveresource".parse().unwrap());
                Ok(resp)
            },
        )
        .ok()?;
        // Never reads, never answers a ping: a peer that died without closing.
        Some(Box::new(ws))
    });
    let link = format!("<http://{addr}/socket>; rel=multiplex-socket");
    let origin = scripted(move |_, _| (200, h(&[("ETag", "\"1\""), ("Link", &link)]), "1".into()));
    let url = format!("{}/r", origin.base);
    let mut run = lrwatch_env(
        &[
            "-v",
            "-H",
            "X-Token: s3cret",
            "--transport",
            "multiplex-socket",
            &url,
        ],
        &[("LRWATCH_KEEPALIVE", "0.2")],
    );
    assert_eq!(run.line(), "1");
    run.stderr_until("the WebSocket was silent for 0.5s");
    wait_for_connections(&connections, 2);
    assert_eq!(
        origin.seen.lock().unwrap()[0].header("x-token"),
        Some("s3cret")
    );
    assert!(
        !SAW_TOKEN.load(std::sync::atomic::Ordering::SeqCst),
        "the token went to another origin's socket"
    );
}

#[test]
fn a_silent_event_stream_is_noticed_and_reconnected() {
    let (addr, connections) = silent_server(|mut stream| {
        let mut buf = [0u8; 4096];
        let _ = std::io::Read::read(&mut stream, &mut buf);
        std::io::Write::write_all(
            &mut stream,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
        )
        .ok()?;
        Some(Box::new(stream))
    });
    let link = format!("<http://{addr}/stream>; rel=value-stream");
    let origin = scripted(move |_, _| (200, h(&[("ETag", "\"1\""), ("Link", &link)]), "1".into()));
    let url = format!("{}/r", origin.base);
    let mut run = lrwatch_env(
        &["-v", "--transport", "value-stream", &url],
        &[("LRWATCH_KEEPALIVE", "0.2")],
    );
    assert_eq!(run.line(), "1");
    run.stderr_until("the stream broke");
    wait_for_connections(&connections, 2);
}

#[test]
fn auto_falls_back_from_a_failing_stream_and_climbs_back() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let stream_requests = AtomicUsize::new(0);
    let server = scripted(move |_, seen| {
        let links = h(&[
            ("ETag", "\"1\""),
            ("Link", "</s>; rel=value-stream, </r>; rel=value-wait"),
        ]);
        match seen.path.as_str() {
            // The stream fails three times, then works (and ends, to be reconnected).
            "/s" if stream_requests.fetch_add(1, Ordering::SeqCst) < 3 => {
                (500, h(&[]), "down".into())
            }
            "/s" => (
                200,
                h(&[("Content-Type", "text/event-stream")]),
                "event: open\ndata:\n\n".into(),
            ),
            _ if seen.header("if-none-match").is_some() => (304, links, String::new()),
            _ => (200, links, "1".into()),
        }
    });
    let url = format!("{}/r", server.base);
    let mut run = lrwatch_env(
        &["-v", "--wait", "1", "--interval", "0.1", &url],
        &[("LRWATCH_FALL_BACK_FOR", "0.5")],
    );
    assert_eq!(run.line(), "1");
    run.stderr_until("transport value-stream (auto;");
    run.stderr_until(
        "value-stream failed 3 times (HTTP 500 for the stream); falling back to value-wait",
    );
    run.stderr_until("switching from value-stream to value-wait");
    run.stderr_until("switching from value-wait to value-stream");
    run.stderr_until("stream open");
}

#[test]
fn a_stream_reconnects_with_last_event_id_after_the_servers_retry() {
    let server = scripted(|_, seen| {
        match seen.path.as_str() {
        "/s" if seen.header("last-event-id").is_none() => (
            200,
            h(&[("Content-Type", "text/event-stream")]),
            "retry: 50\n\nid: 7\nevent: update\ndata: {\"ETag\":\"\\\"2\\\"\",\"Previous-ETag\":\"\\\"1\\\"\"}\ndata: 2\n\n".into(),
        ),
        "/s" => (
            200,
            h(&[("Content-Type", "text/event-stream")]),
            "id: 8\nevent: update\ndata: {\"ETag\":\"\\\"3\\\"\",\"Previous-ETag\":\"\\\"2\\\"\"}\ndata: 3\n\n".into(),
        ),
        // The catch-up after the reconnect: nothing newer than what was pushed.
        _ if seen.header("if-none-match").is_some() => (304, h(&[]), String::new()),
        _ => (200, h(&[("ETag", "\"1\""), ("Link", "</s>; rel=value-stream; mode=reliable")]), "1".into()),
    }
    });
    let url = format!("{}/r", server.base);
    let mut run = lrwatch(&["--json", "-n", "3", &url]);
    let bodies: Vec<serde_json::Value> = (0..3).map(|_| run.json()["body"].clone()).collect();
    assert_eq!(bodies, [1, 2, 3]);
    assert!(run.wait().success());
    let seen = server.seen.lock().unwrap();
    let streams: Vec<&Seen> = seen.iter().filter(|s| s.path == "/s").collect();
    assert_eq!(streams[0].header("accept"), Some("text/event-stream"));
    assert_eq!(streams[1].header("last-event-id"), Some("7"));
}

#[test]
fn multiplex_wait_names_resources_in_both_forms_and_multiplex_request_in_headers() {
    for (rel, query) in [("multiplex-wait", true), ("multiplex-request", false)] {
        let link = format!("</mux>; rel=\"http://liveresource.org/protocol/{rel}\"");
        let server = scripted(move |_, seen| {
            match seen.path.split('?').next().unwrap() {
            "/mux" => (
                200,
                h(&[("Content-Type", "application/json")]),
                r#"{"/a":{"code":200,"headers":{"ETag":"\"a2\"","Content-Type":"application/json"},"body":"{\"v\":2}"},"/b":{"code":304,"headers":{}}}"#.into(),
            ),
            path => (200, h(&[("ETag", &format!("\"{}1\"", &path[1..])), ("Link", &link)]), "{\"v\":1}".into()),
        }
        });
        let a = format!("{}/a", server.base);
        let b = format!("{}/b", server.base);
        let mut run = lrwatch(&["--json", "-n", "3", "--transport", "multiplex-wait", &a, &b]);
        let mut events: Vec<serde_json::Value> = (0..3).map(|_| run.json()).collect();
        assert!(run.wait().success());
        let last = events.pop().unwrap();
        assert_eq!(
            (last["uri"].as_str(), last["body"].clone()),
            (Some(a.as_str()), serde_json::json!({"v": 2})),
            "{rel}"
        );
        assert_eq!(last["etag"], "\"a2\"");
        let seen = server.seen.lock().unwrap();
        let uris_of = |s: &Seen| -> Vec<String> {
            s.headers
                .iter()
                .filter(|(k, _)| k == "uri")
                .map(|(_, v)| v.clone())
                .collect()
        };
        // Resources discovered together go in one request: one Uri header each.
        let mux = seen
            .iter()
            .find(|s| s.path.starts_with("/mux") && uris_of(s).len() == 2)
            .expect("a request for both");
        let uris = uris_of(mux);
        assert!(
            uris.contains(&"</a>; If-None-Match=\"a1\"".to_string()),
            "{rel}: {uris:?}"
        );
        assert!(
            uris.contains(&"</b>; If-None-Match=\"b1\"".to_string()),
            "{rel}: {uris:?}"
        );
        assert_eq!(mux.path.contains("u=%2Fa"), query, "{rel}: {}", mux.path);
        assert_eq!(mux.header("wait"), Some("55"));
    }
}

/// The protocol's test server, as its text reads: `/test` (JSON labelled `text/html`) offers
/// only `multiplex-wait` at `/multi`, whose answers key each member by its `path` alone,
/// whatever URI was asked for. `multi(request, asked)` answers the n-th (from 0) `/multi`
/// request; a GET of `/test` holding an ETag is answered 304 (nothing to catch up on)
/// until `changed_after` multiplexed requests, then with the new value.
fn keyed_by_path(
    changed_after: usize,
    multi: impl Fn(usize, &Seen) -> String + Send + Sync + 'static,
) -> Scripted {
    let multis = std::sync::atomic::AtomicUsize::new(0);
    scripted(move |_, seen| {
        let value = |time: u32| {
            (
                200,
                h(&[
                    ("ETag", &format!("\"{time}\"")),
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Link", "</multi>; rel=multiplex-wait"),
                ]),
                format!("{{\"time\":{time}}}\n"),
            )
        };
        if seen.path.starts_with("/multi") {
            let n = multis.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return (200, h(&[("Content-Type", "text/html")]), multi(n, seen));
        }
        let changed = multis.load(std::sync::atomic::Ordering::SeqCst) >= changed_after;
        match seen.header("if-none-match") {
            None => value(1),
            Some(_) if changed => value(2),
            Some(_) => (304, h(&[("ETag", "\"1\"")]), String::new()),
        }
    })
}

/// The `time` of an event's body, whether it came typed as JSON or as the text received (the
/// server labels its JSON `text/html`).
fn time_of(event: &serde_json::Value) -> Option<u64> {
    let body = match &event["body"] {
        serde_json::Value::String(text) => serde_json::from_str(text).ok()?,
        body => body.clone(),
    };
    body["time"].as_u64()
}

#[test]
fn multiplexed_answers_keyed_by_path_alone_are_taken() {
    // Asked for `/test?types=multiplex-wait`, the server answers `{"/test": ...}`; a held
    // ETag of "2" gets no news (304 members are no news).
    let server = keyed_by_path(usize::MAX, |_, seen| {
        if seen.header("uri").is_some_and(|u| u.contains("\"1\"")) {
            r#"{"/test":{"code":200,"headers":{"ETag":"\"2\"","Link":"</test?after=2>; rel=changes"},"body":"{\"time\":2}\n"}}"#.into()
        } else {
            r#"{"/test":{"code":304,"headers":{"ETag":"\"2\""}}}"#.into()
        }
    });
    let url = format!("{}/test?types=multiplex-wait", server.base);
    let mut run = lrwatch(&["--json", "-n", "2", &url]);
    let first = run.json();
    assert_eq!(
        (time_of(&first), first["transport"].as_str()),
        (Some(1), Some("multiplex-wait"))
    );
    let change = run.json();
    assert_eq!(
        (
            time_of(&change),
            change["etag"].as_str(),
            change["transport"].as_str()
        ),
        (Some(2), Some("\"2\""), Some("multiplex-wait"))
    );
    assert!(run.wait().success());
    let seen = server.seen.lock().unwrap();
    let multi = seen.iter().find(|s| s.path.starts_with("/multi")).unwrap();
    assert_eq!(
        multi.header("uri"),
        Some("</test?types=multiplex-wait>; If-None-Match=\"1\"")
    );
}

#[test]
fn a_multiplexed_answer_naming_nothing_asked_is_a_failure_and_auto_falls_back() {
    // Every answer is about a resource nobody asked for. The value changes once lrwatch has
    // asked three times: only a follower that gave up on multiplex-wait by then sees it.
    let server = keyed_by_path(3, |_, _| {
        r#"{"/elsewhere":{"code":200,"headers":{"ETag":"\"9\""},"body":"9"}}"#.into()
    });
    let url = format!("{}/test?types=multiplex-wait", server.base);
    let mut run = lrwatch(&["--json", "-v", "-n", "2", "--interval", "0.2", &url]);
    assert_eq!(run.json()["transport"], "multiplex-wait");
    let said = run.stderr_until("which names nothing asked");
    assert!(
        said.contains("answered for /elsewhere") && said.contains("/test?types=multiplex-wait"),
        "{said}"
    );
    run.stderr_until("falling back to poll");
    let change = run.json();
    assert_eq!(
        (time_of(&change), change["transport"].as_str()),
        (Some(2), Some("poll"))
    );
    assert!(run.wait().success());
}
