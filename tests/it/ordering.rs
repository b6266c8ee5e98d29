//! Values come out in the server's order, once each, typed alike whichever transport brought
//! them: scripted servers built from the protocol's text that hold pushes back on purpose so
//! that they cross a catch-up.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::*;

/// A form A value stream whose server sends the current value when a stream opens (its
/// event ids are ETags), holding that opening event until the catch-up GET has been answered
/// with a newer value. The opening event is then older than what was printed: it must not be
/// printed. A later push comes out after it, with the ETag its event id carries.
#[test]
fn an_opening_event_older_than_the_catch_up_is_never_printed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (caught_up_tx, caught_up) = mpsc::channel::<()>();
    let (stream_tx, stream_rx) = mpsc::channel::<TcpStream>();
    let (seen_tx, seen) = mpsc::channel::<Seen>();
    std::thread::spawn(move || {
        // The server's value: "2" from the moment the stream is accepted, "3" once the stale
        // push has been settled.
        let mut settled = false;
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let Some(request) = read_head(&conn) else {
                continue;
            };
            let _ = seen_tx.send(request.clone());
            let json = [("Content-Type", "application/json")];
            if request.path == "/s" {
                let mut conn = conn;
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
                );
                let _ = conn.flush();
                let _ = stream_tx.send(conn);
                continue;
            }
            let inm = request.header("if-none-match").map(str::to_string);
            let (etag, body) = match inm.as_deref() {
                // Discovery: the value when following began.
                None => ("\"1\"", "1"),
                // The catch-up after the stream opened: the value changed meanwhile.
                Some("\"1\"") => ("\"2\"", "2"),
                // Settling a push while "2" is current: no news.
                Some("\"2\"") if !settled => {
                    settled = true;
                    respond(&conn, 304, &[("ETag", "\"2\"")], "");
                    let _ = caught_up_tx.send(());
                    continue;
                }
                _ => ("\"3\"", "3"),
            };
            let mut headers = vec![("ETag", etag), ("Link", "</s>; rel=value-stream")];
            headers.extend(json);
            respond(&conn, 200, &headers, body);
        }
    });
    let url = format!("{base}/r");
    let mut run = lrwatch(&["--json", "-v", "-n", "3", &url]);
    assert_eq!(run.json()["body"], 1);
    let second = run.json();
    assert_eq!(
        (second["body"].clone(), second["etag"].clone()),
        (2.into(), "\"2\"".into())
    );
    // Only now does the stream deliver its opening event, carrying the older value "1".
    let mut stream = stream_rx
        .recv_timeout(BOUND)
        .expect("the stream was opened");
    stream
        .write_all(b"id: \"1\"\ndata: 1\n\n")
        .expect("write the opening event");
    // lrwatch settles it with a conditional GET (answered 304) instead of printing it.
    caught_up
        .recv_timeout(BOUND)
        .expect("the stale push was settled with a conditional GET");
    // A real change: pushed with its ETag as the event id.
    stream
        .write_all(b"id: \"3\"\ndata: 3\n\n")
        .expect("write a change");
    let third = run.json();
    assert_eq!(third["body"], 3, "{third}");
    assert_eq!(third["etag"], "\"3\"");
    assert!(run.wait().success());
    let settled: Vec<Seen> = seen.try_iter().collect();
    assert!(
        settled
            .iter()
            .any(|s| s.header("if-none-match") == Some("\"2\"")),
        "{settled:?}"
    );
}

/// `lrwatch serve`'s form A stream names each value by its ETag in the event id: pushed
/// values carry it in `--json` and `LRWATCH_ETAG`, not null.
#[test]
fn pushed_values_carry_the_etag_their_event_id_names() {
    let base = reference_server();
    let url = format!("{base}/counter/etag-ids");
    let mut run = lrwatch(&["--json", "--transport", "value-stream", "-n", "2", &url]);
    let first = run.json();
    assert_eq!(first["body"], 0);
    assert_eq!(post(&url), 200);
    let pushed = run.json();
    assert_eq!(pushed["body"], 1);
    assert_eq!(pushed["transport"], "value-stream");
    assert!(
        pushed["etag"].as_str().is_some_and(|e| e.starts_with('"')),
        "{pushed}"
    );
    assert!(run.wait().success());
}

/// A server that labels its GET answers `text/html` and its pushes JSON (the protocol's test
/// server does), whose reliable stream opens with the value already fetched: one value, one
/// event, typed as JSON both times.
#[test]
fn one_value_one_event_whatever_its_label() {
    let (go_tx, go) = mpsc::channel::<()>();
    let go = std::sync::Mutex::new(go);
    let server = scripted(move |_, seen| match seen.path.as_str() {
        "/s" => {
            // The push of a change waits until the test has seen the first value.
            let _ = go.lock().unwrap().recv_timeout(Duration::from_secs(10));
            (
                200,
                h(&[("Content-Type", "text/event-stream")]),
                concat!(
                    "event: open\nid: 1\ndata: {\"Content-Type\":\"application/json\",\"ETag\":\"\\\"1\\\"\"}\ndata: {\"time\":1}\n\n",
                    "event: update\nid: 2\ndata: {\"Content-Type\":\"application/json\",\"ETag\":\"\\\"2\\\"\"}\ndata: {\"time\":2}\n\n",
                )
                .into(),
            )
        }
        _ if seen.header("if-none-match") == Some("\"2\"") => (304, h(&[]), String::new()),
        _ => (
            200,
            h(&[
                ("Content-Type", "text/html; charset=utf-8"),
                ("ETag", "\"1\""),
                ("Link", "</s>; rel=value-stream; mode=reliable"),
            ]),
            "{\"time\":1}\n".into(),
        ),
    });
    let url = format!("{}/r", server.base);
    let mut run = lrwatch(&["--json", "-n", "2", &url]);
    let first = run.json();
    assert_eq!(first["body"], serde_json::json!({"time": 1}), "{first}");
    go_tx.send(()).unwrap();
    let second = run.json();
    assert_eq!(second["body"], serde_json::json!({"time": 2}), "{second}");
    assert_eq!(second["etag"], "\"2\"");
    assert!(run.wait().success());
}

/// A changes feed answered with a next checkpoint equal to the one asked (the test server's
/// `{"time:change":"+0"}` when nothing is new) carries no change: only real changes are events.
#[test]
fn a_checkpoint_that_did_not_advance_is_no_change() {
    let server = scripted(|n, seen| {
        let json = ("Content-Type", "application/json");
        match seen.path.as_str() {
            "/c?after=5" if n < 4 => (
                200,
                h(&[json, ("Link", "</c?after=5>; rel=changes")]),
                "{\"d\":\"+0\"}".into(),
            ),
            "/c?after=5" => (
                200,
                h(&[json, ("Link", "</c?after=8>; rel=changes")]),
                "{\"d\":\"+3\"}".into(),
            ),
            "/c?after=8" => (
                200,
                h(&[json, ("Link", "</c?after=8>; rel=changes")]),
                "{\"d\":\"+0\"}".into(),
            ),
            _ => (
                200,
                h(&[
                    json,
                    ("ETag", "\"5\""),
                    ("Link", "</c?after=5>; rel=changes"),
                ]),
                "{\"t\":5}".into(),
            ),
        }
    });
    let url = format!("{}/c", server.base);
    let mut run = lrwatch(&["--json", "--changes", "--interval", "0.05", "-n", "2", &url]);
    assert_eq!(run.json()["event"], "value");
    let change = run.json();
    assert_eq!(change["event"], "changes");
    assert_eq!(change["body"], serde_json::json!({"d": "+3"}), "{change}");
    assert!(run.wait().success());
}

/// A collection whose framework adds an ETag to every response (Express) is still a
/// collection: a JSON list with changes links is followed by its changes, unless `--value`.
#[test]
fn a_json_list_with_changes_links_is_a_collection_even_with_an_etag() {
    let server = scripted(|_, seen| {
        let json = ("Content-Type", "application/json; charset=utf-8");
        match seen.path.as_str() {
            "/m/?after=1" if seen.header("wait").is_some() => (
                200,
                h(&[json, ("Link", "</m/?after=2>; rel=changes")]),
                "[{\"from\":\"b\",\"text\":\"two\"}]".into(),
            ),
            "/m/?after=2" => {
                std::thread::sleep(Duration::from_millis(200));
                (
                    200,
                    h(&[json, ("Link", "</m/?after=2>; rel=changes")]),
                    "[]".into(),
                )
            }
            _ => (
                200,
                h(&[
                    json,
                    ("ETag", "W/\"e-1\""),
                    (
                        "Link",
                        "</m/?after=1>; rel=changes, </m/?after=1>; rel=changes-wait, </m/>; rel=value-wait",
                    ),
                ]),
                "[{\"from\":\"a\",\"text\":\"one\"}]".into(),
            ),
        }
    });
    let url = format!("{}/m/", server.base);
    let mut run = lrwatch(&["--json", "-n", "2", &url]);
    assert_eq!(run.json()["event"], "value");
    let change = run.json();
    assert_eq!(change["event"], "changes", "{change}");
    assert_eq!(change["transport"], "changes-wait");
    assert_eq!(
        change["body"],
        serde_json::json!([{"from": "b", "text": "two"}])
    );
    assert!(run.wait().success());
    let mut inspect = lrwatch(&["inspect", "--json", &url]);
    let report = inspect.json();
    assert_eq!(report["auto"]["follows"], "changes", "{report}");
    assert!(inspect.wait().success());
    // --value: the list is followed as a value.
    let mut run = lrwatch(&["--json", "--value", "-v", "-n", "1", &url]);
    assert_eq!(run.json()["event"], "value");
    assert!(run.wait().success());
    assert!(
        run.stderr_text().contains("transport value-wait"),
        "{}",
        run.stderr_text()
    );
}
