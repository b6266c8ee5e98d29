//! The safety net (`--verify`): a server that silently forgot a subscription is noticed, the
//! change reported, and the transport resubscribed.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;

use crate::harness::*;

/// A stream that opens and then never pushes, while the value changes: the check finds the
/// change, says the server missed a push, and the stream is opened anew.
#[test]
fn a_stream_that_forgot_its_subscriber_is_noticed_and_reopened() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (streams_tx, streams) = mpsc::channel::<TcpStream>();
    std::thread::spawn(move || {
        let mut conditional = 0;
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let Some(request) = read_head(&conn) else {
                continue;
            };
            let link = ("Link", "</s>; rel=value-stream");
            let json = ("Content-Type", "application/json");
            if request.path == "/s" {
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n: open\n\n",
                );
                // Held open, silent: the server forgot it.
                let _ = streams_tx.send(conn);
            } else if request.header("if-none-match").is_some() {
                conditional += 1;
                // The catch-up when the stream opens finds nothing new; later, the value has
                // changed without a push.
                if conditional == 1 {
                    respond(&conn, 304, &[("ETag", "\"1\"")], "");
                } else {
                    respond(&conn, 200, &[("ETag", "\"2\""), link, json], "2");
                }
            } else {
                respond(&conn, 200, &[("ETag", "\"1\""), link, json], "1");
            }
        }
    });
    let url = format!("{base}/r");
    let mut run = lrwatch(&["--json", "-v", "--verify", "0.3", &url]);
    assert_eq!(run.json()["body"], 1);
    let first = streams.recv_timeout(BOUND).expect("the stream was opened");
    let found = run.json();
    assert_eq!(found["body"], 2, "{found}");
    assert_eq!(found["transport"], "value-stream");
    run.stderr_until("the server missed a push over value-stream");
    let _again = streams
        .recv_timeout(BOUND)
        .expect("the stream was opened again");
    drop(first);
}

/// Resources over one socket whose server also offers a multiplexed long-poll are checked
/// together: one request for all of them, not a GET each.
#[test]
fn resources_over_a_socket_are_checked_together() {
    let base = reference_server();
    let a = format!("{base}/counter/together-a");
    let b = format!("{base}/counter/together-b");
    let mut run = lrwatch(&[
        "--json",
        "-v",
        "--verify",
        "0.3",
        "--transport",
        "multiplex-socket",
        &a,
        &b,
    ]);
    run.json();
    run.json();
    let line = run.stderr_until("checked 2 resources together at");
    assert!(line.contains("/multiplex/wait: 0 to check alone"), "{line}");
    assert_eq!(post(&a), 200);
    let pushed = run.json();
    assert_eq!(pushed["body"], 1);
    assert_eq!(pushed["transport"], "multiplex-socket");
}

/// A resource behind a temporary redirect is asked again at each catch-up; when the redirect
/// now leads elsewhere, the socket subscription follows it under its new name (the server
/// pushes only under its own name).
#[test]
fn a_socket_subscription_follows_a_temporary_redirect_to_its_new_target() {
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let socket_addr = socket.local_addr().unwrap();
    let (names_tx, names) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for stream in socket.incoming() {
            let Ok(stream) = stream else { continue };
            let names_tx = names_tx.clone();
            std::thread::spawn(move || {
                let Some(mut ws) = accept_liveresource(stream) else {
                    return;
                };
                while let Ok(message) = ws.read() {
                    let tungstenite::Message::Text(text) = message else {
                        continue;
                    };
                    let text = text.as_str().to_string();
                    if let Some(name) = text.strip_prefix("GET ") {
                        let _ = ws.send(tungstenite::Message::text(format!("OK {name}")));
                        let _ = names_tx.send(name.to_string());
                    }
                }
            });
        }
    });
    let link = format!("<http://{socket_addr}/socket>; rel=multiplex-socket");
    let server = scripted(move |n, seen| match seen.path.as_str() {
        // The first answer sends the resource to /a; every later one to /b.
        "/r" if n == 0 => (302, h(&[("Location", "/a")]), String::new()),
        "/r" => (302, h(&[("Location", "/b")]), String::new()),
        _ => (200, h(&[("ETag", "\"1\""), ("Link", &link)]), "1".into()),
    });
    let url = format!("{}/r", server.base);
    let mut run = lrwatch(&["-v", "--transport", "multiplex-socket", &url]);
    assert_eq!(run.line(), "1");
    let first = names.recv_timeout(BOUND).expect("a subscription");
    assert!(first.ends_with("/a"), "{first}");
    run.stderr_until("subscribing under its new name");
    let second = names.recv_timeout(BOUND).expect("a second subscription");
    assert!(second.ends_with("/b"), "{second}");
}
