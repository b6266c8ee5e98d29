//! The server over real sockets: ureq for ordinary requests, a raw `TcpStream` for framing,
//! keep-alive and bad input. Every wait is bounded so a broken server fails fast.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use super::Server;

fn start() -> String {
    let handle = Server::bind("127.0.0.1:0").unwrap().spawn().unwrap();
    format!("http://{}", handle.local_addr())
}

/// A server, its state, and its base URL.
fn start_with_app() -> (std::sync::Arc<super::app::App>, String) {
    let server = Server::bind("127.0.0.1:0").unwrap();
    let app = server.app();
    let base = format!("http://{}", server.spawn().unwrap().local_addr());
    (app, base)
}

/// The longest any wait below may take, on a fully loaded machine too (as the integration
/// tests' `harness::BOUND`).
const BOUND: Duration = Duration::from_secs(10);

/// A held request's `Wait`: longer than BOUND, so an answer within BOUND came from a change,
/// and shorter than the agent's 20 s safety net.
const HELD_WAIT: &str = "15";

/// Waits (bounded) until the store has a subscriber: a request is held. Then a change made
/// is one the hold must see.
fn until_held(app: &super::app::App) {
    let deadline = Instant::now() + BOUND;
    while app.store.watched() == 0 {
        assert!(Instant::now() < deadline, "the request was not held");
        thread::sleep(Duration::from_millis(5));
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        // A safety net only: no test should come near it.
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

fn body(response: ureq::http::Response<ureq::Body>) -> String {
    response.into_body().read_to_string().unwrap()
}

/// Sends raw bytes and reads until the server closes (or BOUND passes).
fn raw(base: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one response with a `Content-Length` body off a kept-alive stream.
fn read_one(stream: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed mid-head");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    (head, String::from_utf8(body).unwrap())
}

#[test]
fn untouched_counter_is_zero_and_advertises_value_wait() {
    let base = start();
    let response = agent().get(format!("{base}/counter/fresh")).call().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "etag").as_deref(), Some("\"0\""));
    assert_eq!(
        header(&response, "link").as_deref(),
        Some("</counter/fresh>; rel=\"value-wait\"")
    );
    assert_eq!(
        header(&response, "liveresource-property").as_deref(),
        Some("wait; min=1")
    );
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("no-cache")
    );
    assert_eq!(body(response), "0");
}

#[test]
fn post_increments_and_changes_the_etag() {
    let base = start();
    let agent = agent();
    let url = format!("{base}/counter/c");
    let first = agent.post(&url).send_empty().unwrap();
    assert_eq!(first.status(), 200);
    let etag1 = header(&first, "etag").unwrap();
    assert!(header(&first, "link").is_some());
    assert_eq!(body(first), "1");
    let second = agent.post(&url).send_empty().unwrap();
    let etag2 = header(&second, "etag").unwrap();
    assert_eq!(body(second), "2");
    assert_ne!(etag1, etag2);
    let read = agent.get(&url).call().unwrap();
    assert_eq!(header(&read, "etag"), Some(etag2));
    assert_eq!(body(read), "2");
}

#[test]
fn put_sets_json_and_refuses_anything_else() {
    let base = start();
    let agent = agent();
    let url = format!("{base}/counter/j");
    let bad = agent.put(&url).send("not json").unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        header(&bad, "content-type").as_deref(),
        Some("application/json")
    );
    let error: serde_json::Value = serde_json::from_str(&body(bad)).unwrap();
    assert!(error["error"].as_str().unwrap().contains("not valid JSON"));
    let good = agent.put(&url).send("{\"a\": [1, true]}").unwrap();
    assert_eq!(good.status(), 200);
    assert_eq!(body(good), "{\"a\":[1,true]}");
    // Not a number any more: POST explains.
    let post = agent.post(&url).send_empty().unwrap();
    assert_eq!(post.status(), 400);
}

#[test]
fn delete_then_get_is_404_until_recreated() {
    let base = start();
    let agent = agent();
    let url = format!("{base}/counter/d");
    let before = header(&agent.post(&url).send_empty().unwrap(), "etag").unwrap();
    assert_eq!(agent.delete(&url).call().unwrap().status(), 204);
    let gone = agent.get(&url).call().unwrap();
    assert_eq!(gone.status(), 404);
    assert!(header(&gone, "etag").is_none());
    assert!(body(gone).contains("\"error\""));
    assert_eq!(agent.delete(&url).call().unwrap().status(), 404);
    let again = agent.post(&url).send_empty().unwrap();
    assert_ne!(header(&again, "etag"), Some(before));
    assert_eq!(body(again), "1");
}

#[test]
fn long_poll_is_held_until_a_post() {
    let (app, base) = start_with_app();
    let url = format!("{base}/counter/lp");
    let etag = header(&agent().get(&url).call().unwrap(), "etag").unwrap();
    let getter = {
        let (url, etag) = (url.clone(), etag.clone());
        thread::spawn(move || {
            let start = Instant::now();
            let response = agent()
                .get(&url)
                .header("If-None-Match", &etag)
                .header("Wait", HELD_WAIT)
                .call()
                .unwrap();
            (response, start.elapsed())
        })
    };
    until_held(&app);
    assert_eq!(agent().post(&url).send_empty().unwrap().status(), 200);
    let (response, elapsed) = getter.join().unwrap();
    assert_eq!(response.status(), 200);
    assert_ne!(header(&response, "etag"), Some(etag));
    assert_eq!(body(response), "1");
    // The wait runs longer than BOUND: an answer within BOUND was the post's.
    assert!(elapsed < BOUND, "{elapsed:?}");
}

#[test]
fn long_poll_held_through_a_delete_is_404() {
    let (app, base) = start_with_app();
    let url = format!("{base}/counter/gone");
    let getter = {
        let url = url.clone();
        thread::spawn(move || {
            agent()
                .get(&url)
                .header("If-None-Match", "\"0\"")
                .header("Prefer", format!("wait={HELD_WAIT}"))
                .call()
                .unwrap()
                .status()
        })
    };
    until_held(&app);
    assert_eq!(agent().delete(&url).call().unwrap().status(), 204);
    assert_eq!(getter.join().unwrap(), 404);
}

#[test]
fn long_poll_times_out_with_304() {
    let base = start();
    for (name, value) in [("Wait", "1"), ("Prefer", "return=minimal, wait=1")] {
        let start = Instant::now();
        let response = agent()
            .get(format!("{base}/counter/quiet"))
            .header("If-None-Match", "\"0\"")
            .header(name, value)
            .call()
            .unwrap();
        let elapsed = start.elapsed();
        assert_eq!(response.status(), 304, "{name}");
        assert_eq!(header(&response, "etag").as_deref(), Some("\"0\""));
        assert!(header(&response, "link").is_some());
        assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
        // Held for its one second, not for some longer default.
        assert!(elapsed < BOUND, "{elapsed:?}");
        assert_eq!(body(response), "");
    }
}

#[test]
fn malformed_wait_is_400() {
    let base = start();
    let response = agent()
        .get(format!("{base}/counter/w"))
        .header("If-None-Match", "\"0\"")
        .header("Wait", "soon")
        .call()
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(body(response).contains("Wait header"));
}

#[test]
fn plain_is_verbatim_without_validators_or_links() {
    let base = start();
    let agent = agent();
    let url = format!("{base}/plain/p");
    assert_eq!(agent.get(&url).call().unwrap().status(), 404);
    let put = agent
        .put(&url)
        .header("Content-Type", "text/csv")
        .send("a,b\r\n1,2\n")
        .unwrap();
    assert_eq!(put.status(), 204);
    let start = Instant::now();
    let got = agent.get(&url).header("Wait", HELD_WAIT).call().unwrap();
    assert!(start.elapsed() < BOUND, "Wait must be ignored");
    assert_eq!(got.status(), 200);
    assert_eq!(header(&got, "content-type").as_deref(), Some("text/csv"));
    for absent in ["etag", "last-modified", "link", "liveresource-property"] {
        assert!(header(&got, absent).is_none(), "{absent}");
    }
    assert_eq!(body(got), "a,b\r\n1,2\n");
    assert_eq!(agent.delete(&url).call().unwrap().status(), 204);
    assert_eq!(agent.get(&url).call().unwrap().status(), 404);
}

#[test]
fn plain_defaults_to_text() {
    // Raw, because an HTTP client may add its own Content-Type.
    let base = start();
    let put = raw(
        &base,
        b"PUT /plain/t HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
    );
    assert!(put.starts_with("HTTP/1.1 204 "), "{put}");
    let response = agent().get(format!("{base}/plain/t")).call().unwrap();
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(body(response), "hi");
}

#[test]
fn time_long_poll_returns_at_the_next_second() {
    let base = start();
    let url = format!("{base}/time");
    let first = agent().get(&url).call().unwrap();
    let etag = header(&first, "etag").unwrap();
    assert!(etag.starts_with("\"t"));
    assert!(header(&first, "link").is_some());
    let value: serde_json::Value = serde_json::from_str(&body(first)).unwrap();
    assert!(value["time"].as_str().unwrap().ends_with('Z'));
    let start = Instant::now();
    let next = agent()
        .get(&url)
        .header("If-None-Match", &etag)
        .header("Wait", HELD_WAIT)
        .call()
        .unwrap();
    assert!(
        // Answered by the next tick (a second), not by the wait running out.
        start.elapsed() < BOUND,
        "{:?}",
        start.elapsed()
    );
    assert_eq!(next.status(), 200);
    assert_ne!(header(&next, "etag"), Some(etag));
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let base = start();
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream
        .write_all(b"POST /counter/k HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, body) = read_one(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(!head.contains("Connection: close"));
    assert_eq!(body, "1");
    stream
        .write_all(b"GET /counter/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (head, body) = read_one(&mut stream);
    assert!(head.contains("Connection: close\r\n"), "{head}");
    assert_eq!(body, "1");
    let mut rest = Vec::new();
    assert_eq!(
        stream.read_to_end(&mut rest).unwrap(),
        0,
        "closed after close"
    );
}

#[test]
fn pipelined_requests_and_head_are_answered_in_order() {
    let base = start();
    let out = raw(
        &base,
        b"HEAD /counter/h HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /counter/h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let (head_response, get_response) = out.split_once("\r\n\r\n").unwrap();
    assert!(head_response.contains("Content-Length: 1"), "{out}");
    // The HEAD answer has no body: the next bytes are the GET's status line.
    assert!(get_response.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(get_response.ends_with("\r\n\r\n0"), "{out}");
}

#[test]
fn http_1_0_closes_after_one_response() {
    let base = start();
    let out = raw(&base, b"GET /counter/z HTTP/1.0\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\n0"), "{out}");
}

#[test]
fn oversize_body_is_413() {
    let base = start();
    let out = raw(
        &base,
        b"PUT /counter/big HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n{}",
    );
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert!(out.contains("{\"error\":"), "{out}");
}

#[test]
fn oversize_head_is_431() {
    let base = start();
    let mut request = b"GET /time HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 70 * 1024));
    request.extend_from_slice(b"\r\n\r\n");
    let out = raw(&base, &request);
    assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
}

#[test]
fn chunked_request_is_411_and_closes() {
    let base = start();
    let out = raw(
        &base,
        b"PUT /counter/ch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 411 "), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
}

#[test]
fn garbage_is_400_and_closes() {
    let base = start();
    let out = raw(&base, b"\x00\x01 hello \xff\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
    assert!(out.contains("Content-Type: application/json\r\n"), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
}

#[test]
fn unknown_path_is_404_and_wrong_method_405() {
    let base = start();
    let agent = agent();
    assert_eq!(
        agent.get(format!("{base}/nope")).call().unwrap().status(),
        404
    );
    let response = agent.delete(format!("{base}/time")).call().unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(
        header(&response, "allow").as_deref(),
        Some("GET, HEAD, OPTIONS")
    );
}

#[test]
fn idle_connections_are_closed() {
    let handle = Server::bind("127.0.0.1:0")
        .unwrap()
        .with_idle_timeout(Duration::from_millis(200))
        .spawn()
        .unwrap();
    let mut stream = TcpStream::connect(handle.local_addr()).unwrap();
    // The default idle timeout (75 s) is far beyond BOUND: only the 200 ms one closes it in
    // time, and a read still open at BOUND fails.
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let mut rest = Vec::new();
    // Nothing sent: the server closes without a word.
    assert_eq!(stream.read_to_end(&mut rest).unwrap(), 0);
}

/// A head or a body that does not arrive in time is answered 408 by the HTTP/1.1 reader,
/// before any route: with the CORS headers all the same (the other framing errors are tested
/// in `tests/it/serve_web.rs`; this one needs a short idle timeout).
#[test]
fn a_request_that_does_not_arrive_in_time_is_408_with_cors_headers() {
    for (cors, origin) in [
        (super::Cors::Any, Some("*")),
        (
            super::Cors::Origin("http://o.test".into()),
            Some("http://o.test"),
        ),
        (super::Cors::Off, None),
    ] {
        let config = super::ServerConfig {
            cors,
            ..super::ServerConfig::default()
        };
        let handle = Server::bind_with("127.0.0.1:0", config)
            .unwrap()
            .with_idle_timeout(Duration::from_millis(200))
            .spawn()
            .unwrap();
        let base = format!("http://{}", handle.local_addr());
        for partial in [
            &b"GET /counter/a HTTP/1.1\r\nHost: x\r\n"[..],
            b"PUT /objects/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
        ] {
            let answer = raw(&base, partial);
            assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
            match origin {
                Some(origin) => {
                    let line = format!("\r\nAccess-Control-Allow-Origin: {origin}\r\n");
                    assert!(answer.contains(&line), "{answer}");
                    assert!(
                        answer.contains("\r\nAccess-Control-Expose-Headers: ETag, "),
                        "{answer}"
                    );
                }
                None => assert!(!answer.contains("Access-Control"), "{answer}"),
            }
        }
    }
}

/// A request that does not arrive in time is logged with `-v` like the other refusals (tested
/// against the binary in `tests/it/serve_log.rs`), with what could be read of it.
#[test]
fn a_request_that_does_not_arrive_in_time_is_logged() {
    use std::sync::{mpsc, Mutex};
    let (tx, rx) = mpsc::channel::<String>();
    let tx = Mutex::new(tx);
    let config = super::ServerConfig {
        log: super::Log::to(true, move |line| {
            let _ = tx.lock().unwrap().send(line.to_owned());
        }),
        ..super::ServerConfig::default()
    };
    let handle = Server::bind_with("127.0.0.1:0", config)
        .unwrap()
        .with_idle_timeout(Duration::from_millis(200))
        .spawn()
        .unwrap();
    let base = format!("http://{}", handle.local_addr());
    for (partial, expected) in [
        (
            &b"GET /counter/a?x=\x1b HTTP/1.1\r\nHost: x\r\n"[..],
            " GET /counter/a?x=\\x1b -> 408 rejected: the request head did not arrive in time",
        ),
        (
            b"GE",
            " GE - -> 408 rejected: the request head did not arrive in time",
        ),
        (
            b"PUT /objects/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
            " PUT /objects/a -> 408 rejected: the request body did not arrive in time",
        ),
    ] {
        let answer = raw(&base, partial);
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
        let line = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(line.contains(" 127.0.0.1:"), "{line}");
        assert!(line.ends_with(expected), "{expected}: {line}");
    }
}

// ---------------------------------------------------------------- subscriptions left behind
//
// These look inside the store (how many keys its subscriptions watch), which no public API
// shows, so they stay here while the rest of the over-the-socket tests live in
// `tests/it/server_live.rs`.

/// Waits (bounded) until the store has no subscribers left, poking it with `poke` meanwhile:
/// a stream notices a vanished client only when a write fails.
fn until_unwatched(app: &super::app::App, mut poke: impl FnMut()) {
    let deadline = Instant::now() + BOUND;
    while app.store.watched() > 0 {
        assert!(Instant::now() < deadline, "a subscription was left behind");
        poke();
        thread::sleep(Duration::from_millis(20));
    }
}

/// Opens an event stream and reads its head.
fn sse(base: &str, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed mid-head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    stream
}

/// A `multiplex-ws` socket speaking the `liveresource` subprotocol.
fn ws_connect(base: &str) -> tungstenite::WebSocket<TcpStream> {
    use tungstenite::client::IntoClientRequest;
    let addr = base.trim_start_matches("http://");
    let mut request = format!("ws://{addr}/multiplex/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "liveresource".parse().unwrap());
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(BOUND)).unwrap();
    let Ok((ws, _)) = tungstenite::client(request, tcp) else {
        panic!("the WebSocket handshake failed");
    };
    ws
}

/// The next text message, past pings and pongs.
fn recv(ws: &mut tungstenite::WebSocket<TcpStream>) -> String {
    loop {
        match ws.read().expect("a message") {
            tungstenite::Message::Text(t) => return t.to_string(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn stream_and_socket_threads_end_when_their_client_goes_away() {
    let server = Server::bind("127.0.0.1:0").unwrap();
    let app = server.app();
    let base = format!("http://{}", server.spawn().unwrap().local_addr());
    let s = sse(&base, "/counter/gone?stream=value");
    let mut ws = ws_connect(&base);
    let subscribe = r#"{"id":"1","type":"subscribe","uri":"/counter/gone2"}"#;
    ws.send(tungstenite::Message::text(subscribe)).unwrap();
    assert!(recv(&mut ws).contains("subscribed"));
    assert_eq!(app.store.watched(), 2);
    drop(s);
    drop(ws);
    until_unwatched(&app, || {
        agent()
            .post(format!("{base}/counter/gone"))
            .send_empty()
            .unwrap();
    });
}

#[test]
fn held_requests_leave_nothing_behind() {
    let server = Server::bind("127.0.0.1:0").unwrap();
    let app = server.app();
    let base = format!("http://{}", server.spawn().unwrap().local_addr());
    let r = agent()
        .get(format!(
            "{base}/multiplex/wait?u=/counter/a&inm=%220%22&u=/items/"
        ))
        .header("Wait", "1")
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = agent()
        .get(format!("{base}/counter/a"))
        .header("If-None-Match", "\"0\"")
        .header("Wait", "1")
        .call()
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(app.store.watched(), 0);
}

// ---------------------------------------------------------------- changes in the gap
//
// A change that lands after a stream or socket last looked but before it subscribed (or, for
// a stream, after its head but before its look) must still be pushed. The race hook makes the
// change land exactly there, in the server's own thread.

/// Reads until `needle` shows up; a stream that swallowed the change times out (BOUND).
fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        match stream.read(&mut buf) {
            Ok(0) => panic!("the stream ended before {needle:?}: {seen:?}"),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "no {needle:?} within {BOUND:?} ({e}); the stream sent {:?}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn a_change_right_after_a_value_streams_head_is_pushed() {
    use super::race_hook::{arm, Point};
    let (app, base) = start_with_app();
    let store = std::sync::Arc::clone(&app.store);
    arm(Point::HeadWritten, "/counter/gap-head", move || {
        store.increment("gap-head").unwrap();
    });
    // Form A sends nothing but a comment on open: the change is the first value it may push.
    let mut s = sse(&base, "/counter/gap-head?stream=value");
    read_until(&mut s, "data: 1\n");
}

#[test]
fn a_change_before_a_multiplex_stream_subscribes_is_pushed() {
    use super::race_hook::{arm, Point};
    let (app, base) = start_with_app();
    let store = std::sync::Arc::clone(&app.store);
    arm(Point::Takeover, "/counter/gap-mux", move || {
        store.increment("gap-mux").unwrap();
    });
    let mut s = sse(&base, "/multiplex/stream?u=/counter/gap-mux");
    read_until(&mut s, r#""body":1"#);
}

#[test]
fn a_change_before_a_socket_subscribes_is_pushed() {
    use super::race_hook::{arm, Point};
    let (app, base) = start_with_app();
    let store = std::sync::Arc::clone(&app.store);
    arm(Point::Followed, "/counter/gap-ws", move || {
        store.increment("gap-ws").unwrap();
    });
    let mut ws = ws_connect(&base);
    let subscribe = r#"{"id":"1","type":"subscribe","uri":"/counter/gap-ws"}"#;
    ws.send(tungstenite::Message::text(subscribe)).unwrap();
    assert!(recv(&mut ws).contains("subscribed"));
    let pushed: serde_json::Value = serde_json::from_str(&recv(&mut ws)).unwrap();
    assert_eq!(pushed["type"], "event", "{pushed}");
    assert_eq!(pushed["uri"], "/counter/gap-ws", "{pushed}");
    assert_eq!(pushed["body"], 1, "{pushed}");
}
