//! `lrwatch check --budget` bounds the whole run, whatever the server does: a WebSocket that
//! never finishes a message, bodies dripped a byte at a time. What a server too slow for the
//! budget left unjudged is a `budget` warning, not a failure of the protocol.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

/// Runs `lrwatch check --json --budget 2 url`; its exit code, report and how long it took.
fn check_for_2s(url: &str) -> (Option<i32>, Value, Duration) {
    let started = Instant::now();
    let mut run = lrwatch(&["check", "--json", "--budget", "2", url]);
    let line = run.line();
    let code = run.wait().code();
    let took = started.elapsed();
    let report = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    (code, report, took)
}

/// The result for `requirement` (over `mechanism`, if given).
fn result<'a>(report: &'a Value, requirement: &str, mechanism: Option<&str>) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["requirement"] == requirement && r["mechanism"].as_str() == mechanism)
        .unwrap_or_else(|| panic!("no {requirement} {mechanism:?} in {report:#}"))
}

/// Accepts a WebSocket with the `liveresource` subprotocol, then sends the start of a text
/// message and empty continuation frames after it for as long as the peer reads.
fn endless_message(stream: TcpStream) {
    let Some(mut ws) = accept_liveresource(stream) else {
        return;
    };
    let tcp = ws.get_mut();
    // A text frame without FIN, then continuation frames without FIN and without payload.
    if tcp.write_all(&[0x01, 0x01, b'x']).is_err() {
        return;
    }
    let empties = [0x00u8, 0x00].repeat(4096);
    while tcp.write_all(&empties).is_ok() {}
}

#[test]
fn a_socket_message_that_never_ends_does_not_outlast_the_budget() {
    let sockets = TcpListener::bind("127.0.0.1:0").unwrap();
    let socket = sockets.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in sockets.incoming().flatten() {
            std::thread::spawn(move || endless_message(stream));
        }
    });
    let link = format!("<ws://{socket}/socket>; rel=multiplex-socket");
    let origin = scripted(move |_, _| (200, h(&[("ETag", "\"1\""), ("Link", &link)]), "1".into()));
    let (code, report, took) = check_for_2s(&format!("{}/r", origin.base));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // The wait for the ack was cut short by the budget: that proves nothing about the
    // server's acks, so it is a `budget` warning naming what was left unjudged (exit 0
    // without --strict), not a subscribe-ack finding.
    assert_eq!(code, Some(0), "{report:#}");
    let cut = result(&report, "budget", Some("multiplex-socket"));
    assert_eq!(cut["outcome"], "warn", "{cut:#}");
    let detail = cut["detail"].as_str().unwrap();
    assert!(
        detail.contains("budget ran out before subscribe-ack could be judged"),
        "{cut:#}"
    );
    let judged = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["requirement"] == "subscribe-ack" && r["mechanism"] == "multiplex-socket");
    assert!(
        !judged,
        "subscribe-ack judged though its wait was cut: {report:#}"
    );
    assert!(report["took"].as_f64().unwrap() < 3.0, "{report:#}");
}

/// A server whose answers number `dripped` and on (from 0) send their body a byte every 2 s;
/// the others at once.
fn dripping(dripped: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().flatten().enumerate() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let body = b"\"a value, slowly\"";
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nETag: \"1\"\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                if n < dripped {
                    let _ = stream.write_all(body);
                    return;
                }
                for byte in body {
                    if stream.write_all(&[*byte]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(2));
                }
            });
        }
    });
    base
}

#[test]
fn a_dripped_discovery_body_does_not_outlast_the_budget() {
    let base = dripping(0);
    let (code, report, took) = check_for_2s(&format!("{base}/r"));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(code, Some(1), "{report:#}");
    let discovery = result(&report, "discovery", None);
    assert_eq!(discovery["outcome"], "fail");
    assert!(
        discovery["detail"]
            .as_str()
            .unwrap()
            .contains("within the budget"),
        "{discovery:#}"
    );
}

#[test]
fn dripped_probe_answers_do_not_outlast_the_budget() {
    // Discovery is answered at once; the probes' own GETs drip.
    let base = dripping(1);
    let (code, report, took) = check_for_2s(&format!("{base}/r"));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // The server was too slow for the budget, which says nothing about its ETags: `budget`
    // warns (a SHOULD of lrwatch's own: exit 0 without --strict), naming what it left
    // unjudged, with the request; no requirement of the protocol fails or warns.
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(result(&report, "discovery", None)["outcome"], "pass");
    let budget = result(&report, "budget", None);
    assert_eq!(budget["outcome"], "warn", "{budget:#}");
    assert_eq!(budget["level"], "SHOULD", "{budget:#}");
    assert!(
        budget["detail"]
            .as_str()
            .unwrap()
            .starts_with("the budget ran out before etag-stable could be judged"),
        "{budget:#}"
    );
    assert!(budget["request"].is_string(), "{budget:#}");
    let results = report["results"].as_array().unwrap();
    assert!(
        results.iter().all(|r| r["requirement"] == "budget"
            || !matches!(r["outcome"].as_str(), Some("fail" | "warn"))),
        "{report:#}"
    );
    assert!(report["took"].as_f64().unwrap() < 3.0, "{report:#}");
}
