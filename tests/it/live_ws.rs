//! `ws://` URLs given directly, against scripted servers on tungstenite's server side (RFC
//! 6455): each message one event, binary as base64, the user's subprotocol, headers and
//! messages on the handshake and after it, pings, silence, close codes and reconnects.

use std::sync::mpsc;
use std::time::Duration;

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

use crate::harness::{lrwatch, lrwatch_env, BOUND};
use crate::live_server::ws_server;

#[test]
fn each_message_is_an_event_with_what_the_user_asked_sent() {
    let (got, received) = mpsc::channel();
    let server = ws_server(move |_, _, mut ws| {
        // What the client sends after connecting, before anything else: the --send texts.
        for _ in 0..2 {
            if let Ok(Message::Text(t)) = ws.read() {
                got.send(t.to_string()).unwrap();
            }
        }
        ws.send(Message::text("{\"n\":1}")).unwrap();
        ws.send(Message::text("hello")).unwrap();
        ws.send(Message::binary(vec![0u8, 159, 146, 150])).unwrap();
        ws.send(Message::text("{\"n\":1}")).unwrap();
        let _ = ws.read();
    });
    let url = format!("{}/feed", server.base);
    let mut run = lrwatch(&[
        "--json",
        "--subprotocol",
        "graphql-ws",
        "-H",
        "Authorization: Bearer t0k",
        "--send",
        "{\"op\":\"subscribe\"}",
        "--send",
        "second",
        &url,
    ]);
    let first = run.json();
    assert_eq!(first["transport"], "websocket");
    assert_eq!(first["uri"], url);
    assert_eq!(first["body"], serde_json::json!({"n": 1}));
    assert_eq!(run.json()["body"], "hello");
    let binary = run.json();
    assert_eq!(binary["body"], "AJ+Slg==");
    assert_eq!(binary["encoding"], "base64");
    // The same message again is news.
    assert_eq!(run.json()["body"], serde_json::json!({"n": 1}));
    assert_eq!(
        received.recv_timeout(BOUND).unwrap(),
        "{\"op\":\"subscribe\"}"
    );
    assert_eq!(received.recv_timeout(BOUND).unwrap(), "second");
    let handshake = server.request(0);
    assert_eq!(
        handshake.header("sec-websocket-protocol"),
        Some("graphql-ws")
    );
    assert_eq!(handshake.header("authorization"), Some("Bearer t0k"));
}

#[test]
fn nothing_is_sent_unless_asked() {
    let (got, received) = mpsc::channel();
    let server = ws_server(move |_, _, mut ws| {
        ws.send(Message::text("1")).unwrap();
        // Whatever the client sends in the next moment (pongs and pings aside).
        let _ = set_timeout(&ws, Duration::from_millis(500));
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => got.send(Some(t.to_string())).unwrap(),
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                _ => break,
            }
        }
        let _ = got.send(None);
    });
    let mut run = lrwatch(&[&format!("{}/quiet", server.base)]);
    assert_eq!(run.line(), "1");
    assert_eq!(received.recv_timeout(BOUND).unwrap(), None);
    assert!(server.request(0).header("sec-websocket-protocol").is_none());
}

#[test]
fn a_message_on_exec_stdin_is_raw() {
    let server = ws_server(|_, _, mut ws| {
        ws.send(Message::binary(vec![b'a', 0, b'b'])).unwrap();
        let _ = ws.read();
    });
    let mut run = lrwatch(&[
        "-n",
        "1",
        "--exec",
        "od -An -tx1 | tr -s ' '; echo \"$LRWATCH_TRANSPORT\"",
        &format!("{}/bin", server.base),
    ]);
    assert_eq!(run.line().trim(), "61 00 62");
    assert_eq!(run.line(), "websocket");
    assert_eq!(run.wait().code(), Some(0));
}

#[test]
fn a_close_with_an_error_code_is_said_and_reconnected_with_backoff() {
    let server = ws_server(|n, _, mut ws| {
        ws.send(Message::text(format!("{n}"))).unwrap();
        if n == 0 {
            let _ = ws.close(Some(CloseFrame {
                code: CloseCode::Error,
                reason: "boom".into(),
            }));
        }
        // Read to the end of the closing handshake (or the client's going away).
        while ws.read().is_ok() {}
    });
    let mut run = lrwatch(&[&format!("{}/flaky", server.base)]);
    assert_eq!(run.line(), "0");
    let warning = run.stderr_until("code 1011");
    assert!(warning.contains("boom"), "{warning}");
    assert!(warning.contains("retrying"), "{warning}");
    assert_eq!(run.line(), "1");
}

/// Messages that arrive together are handed on together: every one of a burst is printed, in
/// order, before the close that came right after it is said.
#[test]
fn a_burst_then_a_close_prints_every_message_in_order_first() {
    let server = ws_server(|n, _, mut ws| {
        if n == 0 {
            for i in 0..1000 {
                ws.write(Message::text(format!("{{\"i\":{i}}}"))).unwrap();
            }
            let _ = ws.close(Some(CloseFrame {
                code: CloseCode::Error,
                reason: "after the burst".into(),
            }));
        }
        while ws.read().is_ok() {}
    });
    let mut run = lrwatch(&["--json", &format!("{}/burst", server.base)]);
    for i in 0..1000 {
        assert_eq!(run.json()["body"], serde_json::json!({ "i": i }));
    }
    run.stderr_until("after the burst");
}

#[test]
fn pings_are_answered_and_silence_is_noticed() {
    let (got, pongs) = mpsc::channel();
    let server = ws_server(move |n, _, mut ws| {
        if n == 0 {
            ws.send(Message::Ping(b"are you there".to_vec().into()))
                .unwrap();
            ws.send(Message::text("first")).unwrap();
            let _ = set_timeout(&ws, BOUND);
            while let Ok(message) = ws.read() {
                if let Message::Pong(data) = message {
                    let _ = got.send(data.to_vec());
                    break;
                }
            }
            // Then silence: no reads (so no pongs to the client's pings), no messages.
            std::thread::sleep(BOUND);
        } else {
            ws.send(Message::text("after reconnect")).unwrap();
            while ws.read().is_ok() {}
        }
    });
    // Pings every 0.2 s; silent for 0.5 s is dead.
    let mut run = lrwatch_env(
        &["-v", &format!("{}/s", server.base)],
        &[("LRWATCH_KEEPALIVE", "0.2")],
    );
    assert_eq!(run.line(), "first");
    assert_eq!(pongs.recv_timeout(BOUND).unwrap(), b"are you there");
    run.stderr_until("was silent");
    assert_eq!(run.line(), "after reconnect");
}

#[test]
fn a_refused_handshake_is_an_error() {
    let server = crate::live_server::http_server(|_, _, stream| {
        crate::harness::respond(&stream, 404, &[], "no socket here")
    });
    let url = server.base.replace("http://", "ws://") + "/nope";
    let mut run = lrwatch(&[&url]);
    assert_eq!(run.wait().code(), Some(1));
    let said = run.stderr_text();
    assert!(said.contains("HTTP 404"), "{said}");
    assert!(!said.contains("--transport"), "{said}");
}

/// A ws:// URL is followed as a WebSocket and nothing else (another --transport is a usage
/// error), so the advice after a failed handshake is about the server, not --transport.
#[test]
fn a_failed_handshake_is_an_error_that_does_not_suggest_another_transport() {
    let server = crate::live_server::http_server(|_, _, stream| {
        crate::live_server::send(
            &stream,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: nope\r\n\r\n",
        );
        crate::live_server::hold(stream);
    });
    let url = server.base.replace("http://", "ws://") + "/s";
    let mut run = lrwatch(&[&url]);
    assert_eq!(run.wait().code(), Some(1));
    let said = run.stderr_text();
    assert!(said.contains("Sec-WebSocket-Accept"), "{said}");
    assert!(
        said.ends_with("Check that a WebSocket server answers at that URL."),
        "{said}"
    );
    assert!(!said.contains("--transport"), "{said}");
}

#[test]
fn an_unreachable_socket_is_an_error_as_an_unreachable_server_is() {
    let mut run = lrwatch(&["ws://127.0.0.1:1/x"]);
    assert_eq!(run.wait().code(), Some(1));
    let text = run.stderr_text();
    assert!(text.contains("cannot reach ws://127.0.0.1:1/x"), "{text}");
    assert!(text.contains("refused"), "{text}");
}

#[test]
fn a_message_over_max_body_stops_with_exit_1() {
    let server = ws_server(|_, _, mut ws| {
        let _ = ws.send(Message::text("y".repeat(500)));
        let _ = ws.read();
    });
    let mut run = lrwatch(&["--max-body", "100", &format!("{}/big", server.base)]);
    assert_eq!(run.wait().code(), Some(1));
    assert!(
        run.stderr_text().contains("too large"),
        "{:?}",
        run.stderr_seen
    );
}

#[test]
fn several_sockets_at_once() {
    let server = ws_server(|_, seen, mut ws| {
        let _ = ws.send(Message::text(seen.path.clone()));
        while ws.read().is_ok() {}
    });
    let urls: Vec<String> = (0..5).map(|i| format!("{}/r{i}", server.base)).collect();
    let mut args = vec!["-n", "5"];
    args.extend(urls.iter().map(String::as_str));
    let mut run = lrwatch(&args);
    let mut lines: Vec<String> = (0..5).map(|_| run.line()).collect();
    lines.sort();
    assert_eq!(lines, ["/r0", "/r1", "/r2", "/r3", "/r4"]);
    assert_eq!(run.wait().code(), Some(0));
}

fn set_timeout(
    ws: &tungstenite::WebSocket<std::net::TcpStream>,
    timeout: Duration,
) -> std::io::Result<()> {
    ws.get_ref().set_read_timeout(Some(timeout))
}

#[test]
fn wss_urls_are_verified_against_cacert() {
    let server = ws_server(|_, _, mut ws| {
        let _ = ws.send(Message::text("{\"secure\":true}"));
        while ws.read().is_ok() {}
    });
    let (ca_pem, chain, key) = crate::tls::certificates();
    let upstream = server.base.replace("ws://", "http://");
    let url = crate::tls::tls_proxy(&upstream, chain, key).replace("https://", "wss://") + "/s";
    let ca_file = std::env::temp_dir().join(format!("lrwatch-ws-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca_pem).unwrap();
    let mut run = lrwatch(&["--cacert", ca_file.to_str().unwrap(), "-n", "1", &url]);
    assert_eq!(run.line(), "{\"secure\":true}");
    assert_eq!(run.wait().code(), Some(0));
    // Without the CA the certificate is not trusted: no connection, exit 1.
    let mut run = lrwatch(&[&url]);
    assert_eq!(run.wait().code(), Some(1));
    assert!(
        run.stderr_text().contains("certificate"),
        "{:?}",
        run.stderr_seen
    );
    let _ = std::fs::remove_file(ca_file);
}

#[test]
fn a_forced_transport_on_a_websocket_url_is_an_error_before_connecting() {
    let server = ws_server(|_, _, mut ws| {
        let _ = ws.send(Message::text("hello"));
        let _ = ws.read();
    });
    let mut run = lrwatch(&[
        "--transport",
        "multiplex-ws",
        &format!("{}/feed", server.base),
    ]);
    assert_eq!(run.wait().code(), Some(1), "{}", run.stderr_text());
    assert!(run.rest().is_empty());
    let said = run.stderr_text();
    assert!(
        said.contains("is a WebSocket, followed as it is: it offers no multiplex-ws transport"),
        "{said}"
    );
    assert_eq!(server.requests(), 0);
}

/// A text message that is not UTF-8 breaks its connection, as RFC 6455 says it must: said,
/// and the socket reconnected (README); the next connection's message is printed.
#[test]
fn a_text_message_that_is_not_utf8_breaks_the_connection_which_is_reconnected() {
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    use tungstenite::protocol::frame::Frame;
    let server = ws_server(|n, _, mut ws| {
        if n == 0 {
            let bad = Frame::message(&b"caf\xe9"[..], OpCode::Data(Data::Text), true);
            ws.send(Message::Frame(bad)).unwrap();
        } else {
            ws.send(Message::text("ok")).unwrap();
        }
        while ws.read().is_ok() {}
    });
    let mut run = lrwatch(&[&format!("{}/bad-text", server.base)]);
    let said = run.stderr_until("retrying");
    assert!(said.to_lowercase().contains("utf-8"), "{said}");
    assert_eq!(run.line(), "ok");
}
