//! `lrwatch serve -v`: the request log on stderr, run as the real binary. A request's line is
//! written before its answer goes out, so once a client has its answer the line can be awaited
//! (bounded) without sleeping.

use std::io::{Read, Write};
use std::net::TcpStream;

use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

use crate::harness::{agent, lrwatch, scripted, Run, BOUND};

/// `lrwatch serve` on a free port, with `extra` options; the run and its base URL.
fn serve(extra: &[&str]) -> (Run, String) {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut run = lrwatch(&args);
    let line = run.line();
    let base = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("serve printed {line:?}"))
        .to_owned();
    (run, base)
}

/// Sends raw bytes as a request and reads until the head of the answer is complete.
fn raw(base: &str, request: &[u8]) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream.write_all(request).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed mid-head");
        head.push(byte[0]);
    }
    (stream, String::from_utf8_lossy(&head).into_owned())
}

/// The seconds a request line says it was held (its last word, `1.234s`).
fn held(line: &str) -> f64 {
    line.rsplit(' ')
        .next()
        .and_then(|w| w.strip_suffix('s'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no held time in {line:?}"))
}

#[test]
fn one_line_per_request_with_its_protocol_headers_status_and_hold() {
    let (mut run, base) = serve(&["-v"]);
    let r = agent()
        .get(format!("{base}/counter/a"))
        .header("If-None-Match", "\"0\"")
        .header("Wait", "1")
        .header("User-Agent", "not-shown")
        .call()
        .unwrap();
    assert_eq!(r.status(), 304);
    let line = run.stderr_until("GET /counter/a");
    let (time, rest) = line.split_once(' ').unwrap();
    assert!(time.ends_with('Z') && time.contains('T'), "{line}");
    assert!(rest.starts_with("127.0.0.1:"), "{line}");
    assert!(
        rest.contains(" GET /counter/a if-none-match=\"0\" wait=1 -> 304 "),
        "{line}"
    );
    assert!(!line.contains("not-shown"), "{line}");
    let held = held(&line);
    assert!((0.9..5.0).contains(&held), "{line}");
    // Errors are logged like any answer, with the target's query.
    agent().get(format!("{base}/nowhere?x=1")).call().unwrap();
    let line = run.stderr_until("GET /nowhere");
    assert!(line.contains("GET /nowhere?x=1 -> 404 "), "{line}");
}

#[test]
fn pushes_and_socket_messages_each_get_a_line() {
    let (mut run, base) = serve(&["-v"]);
    let (mut stream, head) = raw(
        &base,
        b"GET /counter/p?stream=value HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let line = run.stderr_until("GET /counter/p?stream=value");
    assert!(
        line.contains("accept=text/event-stream -> 200 stream"),
        "{line}"
    );
    assert_eq!(
        agent()
            .post(format!("{base}/counter/p"))
            .send_empty()
            .unwrap()
            .status(),
        200
    );
    let peer = stream.local_addr().unwrap().to_string();
    let push = run.stderr_until(" push ");
    assert!(push.contains(&format!(" {peer} push data: 1")), "{push}");
    drop(stream.shutdown(std::net::Shutdown::Both));
    let _ = stream.read(&mut [0u8; 64]);

    let mut request = format!("{}/multiplex/ws", base.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "liveresource".parse().unwrap());
    let tcp = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    tcp.set_read_timeout(Some(BOUND)).unwrap();
    let (mut ws, _) = tungstenite::client(request, tcp).unwrap();
    // A client's control characters reach the log escaped, never raw (the server refuses the
    // message: a raw control character is not JSON).
    let hostile = "{\"id\":\"\u{1b}[2J\u{202e}\",\"type\":\"ping\"}";
    ws.send(Message::text(hostile)).unwrap();
    loop {
        match ws.read().unwrap() {
            Message::Text(_) => break,
            _ => continue,
        }
    }
    let opened = run.stderr_until("GET /multiplex/ws");
    assert!(
        opened.contains("sec-websocket-protocol=liveresource -> 101 socket"),
        "{opened}"
    );
    let inbound = run.stderr_until(" ws <- ");
    assert!(
        inbound.ends_with(" ws <- {\"id\":\"\\x1b[2J\\u{202e}\",\"type\":\"ping\"}"),
        "{inbound}"
    );
    let outbound = run.stderr_until(" ws -> ");
    assert!(outbound.contains("\"type\":\"error\""), "{outbound}");
    assert!(!outbound.contains('\u{1b}'), "{outbound}");
    ws.close(None).unwrap();
    let closed = run.stderr_until(" closed after ");
    assert!(!closed.is_empty());
}

#[test]
fn webhook_deliveries_are_pushes_too() {
    let (mut run, base) = serve(&["-v"]);
    let hook = scripted(|_, _| (204, vec![], String::new()));
    let r = agent()
        .post(format!("{base}/subscriptions/?uri=/counter/c"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(format!("callback_uri={}/hook", hook.base))
        .unwrap();
    assert_eq!(r.status(), 201);
    agent()
        .post(format!("{base}/counter/c"))
        .send_empty()
        .unwrap();
    let line = run.stderr_until(" callback POST ");
    assert!(
        line.ends_with(&format!(
            " callback POST {}/hook for /counter/c -> 204",
            hook.base
        )),
        "{line}"
    );
}

#[test]
fn header_values_from_clients_are_escaped() {
    let (mut run, base) = serve(&["-v"]);
    // Bytes above 0x7f are allowed in a header value: here a right-to-left override.
    let mut request =
        b"GET /multiplex/wait HTTP/1.1\r\nHost: x\r\nUri: </counter/a\xe2\x80\xae>\r\n".to_vec();
    request.extend_from_slice(b"Connection: close\r\n\r\n");
    let (_stream, head) = raw(&base, &request);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let line = run.stderr_until("GET /multiplex/wait");
    assert!(line.contains("uri=</counter/a\\u{202e}>"), "{line}");
    assert!(!line.contains('\u{202e}'), "{line}");
}

/// Requests the HTTP/1.1 reader refuses before routing (the 408 of a slow client needs a short
/// idle timeout: `src/server/tests.rs`), each with what the log line must say after the peer.
fn refused() -> Vec<(Vec<u8>, &'static str)> {
    let many: String = (0..130).map(|i| format!("X-{i}: v\r\n")).collect();
    vec![
        (
            b"GET /a\x1b[2J\xe2\x80\xae HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            " GET /a\\x1b[2J\\u{202e} -> 400 rejected: malformed request: invalid token",
        ),
        (
            b"GET /h HTTP/1.1\r\nHost: x\r\nBad Name: x\r\n\r\n".to_vec(),
            " GET /h -> 400 rejected: malformed request: invalid header name",
        ),
        (
            b"GET /nohost HTTP/1.1\r\n\r\n".to_vec(),
            " GET /nohost -> 400 rejected: malformed request: an HTTP/1.1 request needs exactly one Host header",
        ),
        (
            b"hello\r\n\r\n".to_vec(),
            " hello - -> 400 rejected: malformed request: ",
        ),
        (
            b"PUT /objects/te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            " PUT /objects/te -> 411 rejected: Transfer-Encoding is not supported",
        ),
        (
            b"PUT /objects/big?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n".to_vec(),
            " PUT /objects/big?x=1 -> 413 rejected: request body too large",
        ),
        (
            b"PUT /objects/ex HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n1".to_vec(),
            " PUT /objects/ex -> 417 rejected: only \"Expect: 100-continue\" is supported",
        ),
        (
            format!("GET /many HTTP/1.1\r\nHost: x\r\n{many}\r\n").into_bytes(),
            " GET /many -> 431 rejected: request head too large",
        ),
    ]
}

#[test]
fn requests_refused_before_routing_get_a_line_too() {
    let (mut run, base) = serve(&["-v"]);
    for (request, expected) in refused() {
        let (mut stream, head) = raw(&base, &request);
        let status = &expected[expected.find("-> ").unwrap() + 3..][..3];
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        let _ = stream.read_to_end(&mut Vec::new());
        let line = run.stderr_until(" rejected: ");
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(time.ends_with('Z') && time.contains('T'), "{line}");
        let peer = stream.local_addr().unwrap().to_string();
        assert!(rest.starts_with(&peer), "{peer}: {line}");
        assert!(
            rest[peer.len()..].starts_with(expected),
            "{expected}: {line}"
        );
        assert!(!line.contains(['\u{1b}', '\u{202e}']), "{line}");
    }
}

#[test]
fn without_v_only_start_up_and_errors() {
    let (mut run, base) = serve(&[]);
    let a = agent();
    assert_eq!(
        a.get(format!("{base}/counter/a")).call().unwrap().status(),
        200
    );
    assert_eq!(
        a.get(format!("{base}/nowhere")).call().unwrap().status(),
        404
    );
    // Nor are requests refused before routing logged without -v.
    for (request, _) in refused() {
        let (mut stream, head) = raw(&base, &request);
        assert!(head.starts_with("HTTP/1.1 4"), "{head}");
        let _ = stream.read_to_end(&mut Vec::new());
    }
    // Every answer is in, and a line is written before its answer: stop and read it all.
    run.stop();
    let stderr = run.stderr_text();
    assert!(stderr.is_empty(), "{stderr}");
}
