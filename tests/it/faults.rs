//! Faults survived: a server restarted mid-stream, reset connections, a silent long-poll, a
//! slow drip, 5xx storms with and without Retry-After, a name that does not resolve, limits
//! on what a server may send, and a soak with hundreds of dropped connections.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::*;

/// Reads JSON events until one has `body == want`; fails after BOUND.
fn until_body(run: &mut Run, want: serde_json::Value) -> Vec<serde_json::Value> {
    let mut seen = Vec::new();
    loop {
        let event = run.json();
        let done = event["body"] == want;
        seen.push(event);
        if done {
            return seen;
        }
    }
}

#[test]
fn a_server_restarted_mid_stream_is_followed_again() {
    for (transport, form) in [
        ("value-stream", "b"),
        ("multiplex-socket", "b"),
        ("value-wait", "a"),
    ] {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let (first, base) = served(&addr);
        let url = format!("{base}/counter/r?form={form}");
        let mut run = lrwatch(&["--json", "-q", "--transport", transport, &url]);
        assert_eq!(run.json()["body"], 0);
        // The reference server numbers its ETags from 0 each time it starts: move this one's
        // on, so that the restarted server's first ETag is not one lrwatch already holds (a
        // server reusing an ETag for another value defeats If-None-Match, by definition).
        for _ in 0..3 {
            post(&format!("{base}/counter/other"));
        }
        post(&format!("{base}/counter/r"));
        assert_eq!(run.json()["body"], 1);
        first.stop();
        // The same address, a fresh server: its value is its own.
        let (second, _) = served(&addr);
        put(&format!("{base}/counter/r"), "application/json", "5");
        let seen = until_body(&mut run, 5.into());
        assert!(
            seen.windows(2).all(|w| w[0]["body"] != w[1]["body"]),
            "{transport}: {seen:?}"
        );
        second.stop();
    }
}

#[test]
fn reset_connections_and_a_silent_long_poll_are_recovered() {
    // Request 0 answers; 1 to 3 are reset (the socket closed with the request unread); 4 is
    // held without an answer (a server gone silent); then answers again.
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&held);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let i = n.fetch_add(1, Ordering::SeqCst);
            match i {
                1..=3 => drop(stream),
                4 => keep.lock().unwrap().push(stream),
                _ => {
                    let mut stream = stream;
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf);
                    let body = if i == 0 { "1" } else { "2" };
                    let etag = if i == 0 { "\"1\"" } else { "\"2\"" };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nETag: {etag}\r\nLink: </r>; rel=value-wait\r\nContent-Length: 1\r\nConnection: close\r\n\r\n{body}"
                    );
                }
            }
        }
    });
    let started = Instant::now();
    let mut run = lrwatch(&["-v", "--wait", "1", "-n", "2", &format!("{base}/r")]);
    assert_eq!(run.line(), "1");
    assert_eq!(run.line(), "2");
    assert!(run.wait().success());
    let err = run.stderr_text();
    assert!(err.contains("retrying in"), "{err}");
    assert!(
        err.contains("timed out"),
        "the silent long-poll was given up on: {err}"
    );
    // A 1 s wait plus 2 s of slack: noticed within seconds, not minutes (the bound holds on a
    // loaded machine; without the slack the second line would never come within BOUND).
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(held.lock().unwrap().len() == 1);
}

#[test]
fn a_slow_drip_still_delivers_the_value() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = b"{\"slow\":\"drip\"}";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            for byte in body {
                let _ = stream.write_all(&[*byte]);
                let _ = stream.flush();
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    let mut run = lrwatch(&["-n", "1", &format!("{base}/d")]);
    assert_eq!(run.line(), r#"{"slow":"drip"}"#);
    assert!(run.wait().success());
}

#[test]
fn a_5xx_storm_backs_off_and_retry_after_is_honoured() {
    let honoured = scripted(|n, _| match n {
        0 => (
            200,
            h(&[("ETag", "\"1\""), ("Link", "</r>; rel=value-wait")]),
            "1".into(),
        ),
        _ => (503, h(&[("Retry-After", "2")]), "busy".into()),
    });
    let mut run = lrwatch(&["-t", "3", &format!("{}/r", honoured.base)]);
    assert_eq!(run.line(), "1");
    assert_eq!(run.wait().code(), Some(124));
    // The first long-poll gets a 503; the next waits out the 2 s asked for: 3 requests at most.
    let requests = honoured.seen.lock().unwrap().len();
    assert!((2..=3).contains(&requests), "{requests} requests");
    assert!(run.stderr_text().contains("retrying in 2."));

    let storm = scripted(|n, _| match n {
        0 => (
            200,
            h(&[("ETag", "\"1\""), ("Link", "</r>; rel=value-wait")]),
            "1".into(),
        ),
        _ => (500, h(&[]), "down".into()),
    });
    let mut run = lrwatch(&["-t", "3", &format!("{}/r", storm.base)]);
    assert_eq!(run.line(), "1");
    assert_eq!(run.wait().code(), Some(124));
    // Backing off from 0.25-0.5 s, doubling: a handful of requests in 3 s, never a spin (the
    // lower bound leaves room for a loaded machine: discovery and one retry at least).
    let requests = storm.seen.lock().unwrap().len();
    assert!((2..=8).contains(&requests), "{requests} requests");
    // Said once, not once per attempt (the rest are traced, and summarised later).
    let err = run.stderr_text();
    assert!(err.contains("(attempt 1)"), "{err}");
    assert_eq!(err.matches("retrying in").count(), 1, "{err}");
}

#[test]
fn resources_whose_server_says_wait_do_not_hold_back_the_others() {
    // Followers start a few dozen at a time; forty that are told to come back in ten minutes
    // must not keep the last one from starting.
    let server = scripted(|_, seen| match seen.path.as_str() {
        "/good" => (200, h(&[("ETag", "\"1\"")]), "good".into()),
        _ => (503, h(&[("Retry-After", "600")]), "busy".into()),
    });
    let mut urls: Vec<String> = (0..40)
        .map(|i| format!("{}/busy{i}", server.base))
        .collect();
    urls.push(format!("{}/good", server.base));
    let mut args = vec!["-q", "-n", "1"];
    args.extend(urls.iter().map(String::as_str));
    let mut run = lrwatch(&args);
    assert_eq!(run.line(), "good");
    assert!(run.wait().success());
}

#[test]
fn a_name_that_does_not_resolve_is_exit_1_with_a_clear_message() {
    let mut run = lrwatch(&["http://lrwatch-test.invalid/x"]);
    assert_eq!(run.wait().code(), Some(1));
    let err = run.stderr_text();
    assert!(
        err.starts_with("lrwatch: cannot reach http://lrwatch-test.invalid/x: host not found"),
        "{err}"
    );
    // The hint fits the failure: no server to start, a name to check.
    assert!(err.ends_with(". Check the host name."), "{err}");
}

#[test]
fn limits_stop_endless_bodies_and_lines() {
    let base = endless(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
        &[b'x'; 8192],
    );
    let mut run = lrwatch(&["--max-body", "64K", &format!("{base}/body")]);
    assert_eq!(run.wait().code(), Some(1));
    let err = run.stderr_text();
    assert!(err.contains("larger than the 65536-byte limit"), "{err}");

    // An event-stream line that never ends.
    let stream = endless(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: ",
        &[b'y'; 8192],
    );
    let link = format!("<{stream}/s>; rel=value-stream");
    let origin = scripted(move |_, _| (200, h(&[("ETag", "\"1\""), ("Link", &link)]), "1".into()));
    let mut run = lrwatch(&[
        "--max-body",
        "64K",
        "--transport",
        "value-stream",
        &format!("{}/r", origin.base),
    ]);
    assert_eq!(run.line(), "1");
    assert_eq!(run.wait().code(), Some(1));
    let err = run.stderr_text();
    assert!(err.contains("line is over 65536 bytes"), "{err}");

    // Ten thousand Link headers: refused with a clear error, memory bounded by the header limit.
    let many: Vec<(String, String)> = (0..10_000)
        .map(|i| ("Link".to_string(), format!("</l{i}>; rel=value-wait")))
        .collect();
    let flood = scripted(move |_, _| (200, many.clone(), "1".into()));
    let mut run = lrwatch(&[&format!("{}/r", flood.base)]);
    assert_eq!(run.wait().code(), Some(1));
    let err = run.stderr_text();
    assert!(err.contains("header"), "{err}");
    assert!(err.contains("not valid HTTP"), "{err}");
    // Ten thousand links in one header: over the default head size, and read once it is
    // raised (the Link parser keeps at most 10,000 links).
    let one: Vec<String> = (0..10_000)
        .map(|i| format!("</l{i}>; rel=value-wait"))
        .collect();
    let one = one.join(", ");
    let flood = scripted(move |_, _| (200, vec![("Link".to_string(), one.clone())], "1".into()));
    let mut run = lrwatch(&[&format!("{}/r", flood.base)]);
    assert_eq!(run.wait().code(), Some(1));
    let err = run.stderr_text();
    assert!(err.contains("larger than the 32768-byte limit"), "{err}");
    let mut run = lrwatch(&[
        "-n",
        "1",
        "--max-header",
        "1M",
        &format!("{}/r", flood.base),
    ]);
    assert_eq!(run.line(), "1");
    assert!(run.wait().success());
}

#[test]
fn a_socket_message_over_the_limit_stops_following() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let Some(mut ws) = accept_liveresource(stream) else {
                    return;
                };
                // The subscription, acknowledged; then an update far over the client's limit.
                if ws.read().is_err() {
                    return;
                }
                let _ = ws.send(tungstenite::Message::text("OK /r"));
                let huge = format!(
                    "* /r {{\"ETag\":\"\\\"2\\\"\",\"Previous-ETag\":\"\\\"1\\\"\"}}\n{}",
                    "x".repeat(200_000)
                );
                let _ = ws.send(tungstenite::Message::text(huge));
                while ws.read().is_ok() {}
            });
        }
    });
    let link = format!("<http://{addr}/socket>; rel=multiplex-socket");
    let origin = scripted(move |_, _| (200, h(&[("ETag", "\"1\""), ("Link", &link)]), "1".into()));
    let mut run = lrwatch(&[
        "--max-body",
        "64K",
        "--transport",
        "multiplex-socket",
        &format!("{}/r", origin.base),
    ]);
    assert_eq!(run.line(), "1");
    assert_eq!(run.wait().code(), Some(1));
    let err = run.stderr_text();
    assert!(
        err.contains("too large") && err.contains("--max-body"),
        "{err}"
    );
}

/// A proxy that cuts each connection after a random number of server-to-client chunks;
/// counts the cuts.
fn chaos_proxy(upstream: &str, running: Arc<AtomicBool>) -> (String, Arc<AtomicUsize>) {
    let upstream = upstream.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let cuts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&cuts);
    std::thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            let upstream = upstream.clone();
            let (cuts, running) = (Arc::clone(&counted), Arc::clone(&running));
            std::thread::spawn(move || {
                let Ok(mut server) = TcpStream::connect(&upstream) else {
                    return;
                };
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut s2);
                });
                // Cut after the handshake and the acknowledgement and a push or two: a
                // connection cut before it pushed anything is a failure to back off from
                // (tests/it/storms.rs), not the flaky network this soaks in.
                let mut budget = 3 + fastrand::usize(..2);
                let mut buf = [0u8; 16384];
                loop {
                    let n = match server.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    budget -= 1;
                    if budget == 0 && running.load(Ordering::SeqCst) {
                        cuts.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    budget = budget.max(1);
                }
                let _ = client.shutdown(std::net::Shutdown::Both);
                let _ = server.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    (base, cuts)
}

#[test]
fn soak_many_changes_through_hundreds_of_dropped_connections() {
    let upstream = reference_server();
    let running = Arc::new(AtomicBool::new(true));
    let (base, cuts) = chaos_proxy(&upstream, Arc::clone(&running));
    let url = format!("{base}/counter/soak?form=b");
    let mut run = lrwatch(&["--json", "-q", "--transport", "multiplex-socket", &url]);
    assert_eq!(run.json()["body"], 0);
    // Changes flow until at least 150 connections were dropped (and at least 500 changes
    // were made); the reader collects events until it has seen the last one.
    let last = Arc::new(AtomicUsize::new(usize::MAX));
    let target = Arc::clone(&last);
    let reader = std::thread::spawn(move || {
        let mut seen: Vec<i64> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let want = target.load(Ordering::SeqCst);
            if want != usize::MAX && seen.last() == Some(&(want as i64)) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "the last change never came: {seen:?}"
            );
            if let Some(line) = run.try_line(Duration::from_millis(200)) {
                let event: serde_json::Value = serde_json::from_str(&line).unwrap();
                seen.push(event["body"].as_i64().expect("a number"));
            }
        }
    });
    let mut changes = 0;
    while changes < 3000 && (changes < 500 || cuts.load(Ordering::SeqCst) < 150) {
        post(&format!("{upstream}/counter/soak"));
        changes += 1;
        // Pacing the load (not waiting for lrwatch): the drops happen while changes flow.
        std::thread::sleep(Duration::from_millis(10));
    }
    running.store(false, Ordering::SeqCst);
    last.store(changes, Ordering::SeqCst);
    let values = reader.join().unwrap();
    assert!(
        values.windows(2).all(|w| w[0] < w[1]),
        "in order, never twice: {values:?}"
    );
    let cuts = cuts.load(Ordering::SeqCst);
    eprintln!("soak: {cuts} connections dropped over {changes} changes");
    assert!(cuts >= 150, "only {cuts} connections were dropped");
}
