//! The reference server for browser clients, at the protocol level: CORS headers and
//! preflights (`serve --cors`), and the answer's form following the request's own shape.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use lrwatch::server::{Cors, Dialect, Server, ServerConfig};
use lrwatch::wire::multiplex::parse_answer;

use crate::plain_http::{agent, header, Resp};

const BOUND: Duration = Duration::from_secs(5);

fn start_with(cfg: ServerConfig) -> String {
    let handle = Server::bind_with("127.0.0.1:0", cfg)
        .unwrap()
        .spawn()
        .unwrap();
    format!("http://{}", handle.local_addr())
}

fn start_cors(cors: Cors) -> String {
    start_with(ServerConfig {
        cors,
        ..ServerConfig::default()
    })
}

fn start_dialect(dialect: Dialect) -> String {
    start_with(ServerConfig {
        dialect,
        ..ServerConfig::default()
    })
}

/// Sends a request by hand and reads the head of the answer (enough for streams, which do
/// not end).
fn raw_head(base: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed mid-head");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

const EXPOSED: [&str; 8] = [
    "ETag",
    "Previous-ETag",
    "Changes-Id",
    "Previous-Changes-Id",
    "Link",
    "X-Poll-Interval",
    "LiveResource-Property",
    "Location",
];

fn assert_exposes(response: &Resp) {
    let exposed = header(response, "access-control-expose-headers").expect("exposed headers");
    let names: Vec<String> = exposed
        .split(',')
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    for name in EXPOSED {
        assert!(
            names.contains(&name.to_ascii_lowercase()),
            "{name} in {exposed}"
        );
    }
}

#[test]
fn every_answer_lets_any_origin_read_it_by_default() {
    let base = start_cors(Cors::default());
    let a = agent();
    let get = a
        .get(format!("{base}/counter/a"))
        .header("Origin", "http://elsewhere.test:3000")
        .call()
        .unwrap();
    assert_eq!(get.status(), 200);
    assert_eq!(
        header(&get, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_exposes(&get);
    // Errors and created items too: a page must be able to read why it failed.
    let missing = a.get(format!("{base}/objects/none")).call().unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        header(&missing, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    let created = a
        .post(format!("{base}/items/"))
        .header("Content-Type", "application/json")
        .send("{\"text\":\"x\"}")
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(
        header(&created, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    // A stream's head is written apart from other answers: it carries them as well.
    let head = raw_head(
        &base,
        "GET /counter/a?stream=value HTTP/1.1\r\nHost: x\r\nOrigin: http://o.test\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.contains("\r\nAccess-Control-Allow-Origin: *\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\nAccess-Control-Expose-Headers: ETag"),
        "{head}"
    );
}

#[test]
fn preflights_allow_the_protocols_methods_and_headers() {
    let base = start_cors(Cors::default());
    for (path, method) in [
        ("/counter/a", "POST"),
        ("/items/", "GET"),
        ("/multiplex/wait", "GET"),
    ] {
        let r = agent()
            .options(format!("{base}{path}"))
            .header("Origin", "http://elsewhere.test")
            .header("Access-Control-Request-Method", method)
            .header("Access-Control-Request-Headers", "if-none-match, wait, uri")
            .call()
            .unwrap();
        assert_eq!(r.status(), 204, "{path}");
        assert_eq!(
            header(&r, "access-control-allow-origin").as_deref(),
            Some("*")
        );
        let methods = header(&r, "access-control-allow-methods").unwrap();
        assert!(methods.contains(method), "{path}: {methods}");
        assert_eq!(Some(methods), header(&r, "allow"), "{path}");
        let allowed = header(&r, "access-control-allow-headers").unwrap();
        for name in [
            "If-None-Match",
            "Wait",
            "Prefer",
            "Uri",
            "Last-Event-ID",
            "Content-Type",
        ] {
            assert!(allowed.contains(name), "{name} in {allowed}");
        }
        assert_eq!(
            header(&r, "access-control-max-age").as_deref(),
            Some("86400")
        );
    }
    // A plain OPTIONS (not a preflight) is not dressed up as one.
    let r = agent().options(format!("{base}/counter/a")).call().unwrap();
    assert_eq!(r.status(), 204);
    assert!(header(&r, "access-control-max-age").is_none());
}

#[test]
fn one_named_origin_or_none() {
    let base = start_cors("http://localhost:3000".parse().unwrap());
    let r = agent().get(format!("{base}/counter/a")).call().unwrap();
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("http://localhost:3000")
    );
    assert_exposes(&r);
    let base = start_cors(Cors::Off);
    let r = agent()
        .get(format!("{base}/counter/a"))
        .header("Origin", "http://elsewhere.test")
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    let cors: Vec<_> = r
        .headers()
        .keys()
        .filter(|n| n.as_str().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{cors:?}");
    let r = agent()
        .options(format!("{base}/counter/a"))
        .header("Origin", "http://elsewhere.test")
        .header("Access-Control-Request-Method", "GET")
        .call()
        .unwrap();
    assert!(header(&r, "access-control-allow-origin").is_none());
    assert!(header(&r, "access-control-allow-methods").is_none());
    let head = raw_head(
        &base,
        "GET /counter/a?stream=value HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(!head.contains("Access-Control"), "{head}");
}

/// Requests the HTTP/1.1 reader refuses before any route sees them, each with the status it
/// gets (408, which takes the idle timeout, is tested in the server's unit tests).
fn unroutable() -> Vec<(&'static str, String)> {
    let many_fields: String = (0..200).map(|i| format!("X-F{i}: v\r\n")).collect();
    vec![
        ("400", "GET /counter/a HTTP/1.1\r\n\r\n".to_owned()),
        ("400", "NOT HTTP AT ALL\r\n\r\n".to_owned()),
        (
            "411",
            "POST /counter/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned(),
        ),
        (
            "413",
            "PUT /objects/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n".to_owned(),
        ),
        (
            "417",
            "PUT /objects/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: x\r\n\r\n"
                .to_owned(),
        ),
        (
            "431",
            format!("GET /counter/a HTTP/1.1\r\nHost: x\r\n{many_fields}\r\n"),
        ),
    ]
}

#[test]
fn errors_answered_before_routing_carry_the_cors_headers_too() {
    for (cors, origin) in [
        (Cors::Any, Some("*")),
        (
            "http://localhost:3000".parse().unwrap(),
            Some("http://localhost:3000"),
        ),
        (Cors::Off, None),
    ] {
        let base = start_cors(cors);
        for (status, request) in unroutable() {
            let head = raw_head(&base, &request);
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status} ")),
                "{status}: {head}"
            );
            match origin {
                Some(origin) => {
                    assert!(
                        head.contains(&format!("\r\nAccess-Control-Allow-Origin: {origin}\r\n")),
                        "{status}: {head}"
                    );
                    let exposed = head
                        .split("\r\n")
                        .find_map(|l| l.strip_prefix("Access-Control-Expose-Headers: "))
                        .unwrap_or_else(|| panic!("{status}: {head}"));
                    for name in EXPOSED {
                        assert!(exposed.contains(name), "{status}: {name} in {exposed}");
                    }
                }
                None => assert!(!head.contains("Access-Control"), "{status}: {head}"),
            }
        }
    }
}

/// A multiplexed long-poll of `/counter/m` (changed once) and the items' changes since 0
/// (one added); the answer's members by URI.
fn multiplexed(base: &str, query: &str, uri_fields: &[&str]) -> Vec<(String, Value, Value)> {
    let a = agent();
    let mut request = a.get(format!("{base}/multiplex/wait{query}"));
    for field in uri_fields {
        request = request.header("Uri", *field);
    }
    let r = request.call().unwrap();
    assert_eq!(r.status(), 200);
    let answer = parse_answer(&r.into_body().read_to_string().unwrap()).unwrap();
    answer
        .into_iter()
        .map(|(uri, m)| {
            let link = m.header("link").map(|l| json!(l)).unwrap_or(Value::Null);
            (uri, m.body, link)
        })
        .collect()
}

fn changed(base: &str) {
    let a = agent();
    assert_eq!(
        a.post(format!("{base}/counter/m"))
            .send_empty()
            .unwrap()
            .status(),
        200
    );
    let r = a
        .post(format!("{base}/items/"))
        .header("Content-Type", "application/json")
        .send("{\"text\":\"t\"}")
        .unwrap();
    assert_eq!(r.status(), 201);
}

fn body_of(members: &[(String, Value, Value)], uri: &str) -> Value {
    members
        .iter()
        .find(|(u, _, _)| u == uri)
        .unwrap_or_else(|| panic!("no {uri} in {members:?}"))
        .1
        .clone()
}

fn link_of(members: &[(String, Value, Value)], uri: &str) -> String {
    members
        .iter()
        .find(|(u, _, _)| u == uri)
        .and_then(|(_, _, l)| l.as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no Link for {uri} in {members:?}"))
}

const QUERY: &str = "?u=/counter/m&inm=%220%22&u=/items/%3Fsince%3D0";

#[test]
fn the_query_form_gets_json_bodies_in_every_dialect() {
    for dialect in [Dialect::Mixed, Dialect::A, Dialect::B, Dialect::C] {
        let base = start_dialect(dialect);
        changed(&base);
        let members = multiplexed(&base, QUERY, &[]);
        assert_eq!(body_of(&members, "/counter/m"), json!(1), "{dialect}");
        let items = body_of(&members, "/items/?since=0");
        assert_eq!(items[0]["text"], json!("t"), "{dialect}: {items}");
        // Form A's gap marker: a prev-changes link, short rel names.
        let link = link_of(&members, "/items/?since=0");
        assert!(link.contains("rel=\"prev-changes\""), "{dialect}: {link}");
    }
}

#[test]
fn uri_headers_get_string_bodies_in_every_dialect() {
    for dialect in [Dialect::Mixed, Dialect::A, Dialect::B, Dialect::C] {
        let base = start_dialect(dialect);
        changed(&base);
        let members = multiplexed(
            &base,
            "",
            &["</counter/m>; If-None-Match=\"0\", </items/?since=0>"],
        );
        assert_eq!(body_of(&members, "/counter/m"), json!("1"), "{dialect}");
        assert!(
            body_of(&members, "/items/?since=0").is_string(),
            "{dialect}"
        );
    }
}

#[test]
fn b_and_c_shapes_and_the_dialect_between_them() {
    // Comma-joined in one field is form B's way: short rel names even from a form C server.
    let base = start_dialect(Dialect::C);
    changed(&base);
    let members = multiplexed(&base, "", &["</counter/m>, </items/?since=0>"]);
    let link = link_of(&members, "/items/?since=0");
    assert!(link.contains("rel=\"changes\""), "{link}");
    // A field per resource is form C's: long names even from a form B server.
    let base = start_dialect(Dialect::B);
    changed(&base);
    let members = multiplexed(&base, "", &["</counter/m>", "</items/?since=0>"]);
    let link = link_of(&members, "/items/?since=0");
    assert!(
        link.contains("rel=\"http://liveresource.org/protocol/changes\""),
        "{link}"
    );
    // One field naming one resource could be either: the dialect says which.
    for (dialect, rel) in [
        (
            Dialect::C,
            "rel=\"http://liveresource.org/protocol/changes\"",
        ),
        (Dialect::B, "rel=\"changes\""),
    ] {
        let base = start_dialect(dialect);
        changed(&base);
        let members = multiplexed(&base, "", &["</items/?since=0>"]);
        let link = link_of(&members, "/items/?since=0");
        assert!(link.contains(rel), "{dialect}: {link}");
    }
}

#[test]
fn the_query_form_wins_over_uri_headers_and_form_wins_over_both() {
    let base = start_dialect(Dialect::B);
    changed(&base);
    // Both shapes, as clients of multiplex-wait send: the query's form answers.
    let members = multiplexed(&base, QUERY, &["</counter/m>; If-None-Match=\"0\""]);
    assert_eq!(body_of(&members, "/counter/m"), json!(1));
    // ?form= outranks the shape, either way round.
    let base = start_dialect(Dialect::A);
    changed(&base);
    let members = multiplexed(&base, &format!("{QUERY}&form=b"), &[]);
    assert_eq!(body_of(&members, "/counter/m"), json!("1"));
    let members = multiplexed(&base, "?form=a", &["</counter/m>; If-None-Match=\"0\""]);
    assert_eq!(body_of(&members, "/counter/m"), json!(1));
}

/// An open event stream, read event by event (bounded).
struct Events(std::io::BufReader<TcpStream>);

impl Events {
    /// Asks for `target` (with `Accept: text/event-stream` when `accept`), checks the head.
    fn open(base: &str, target: &str, accept: bool) -> Events {
        let mut stream = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
        stream.set_read_timeout(Some(BOUND)).unwrap();
        let accept = if accept {
            "Accept: text/event-stream\r\n"
        } else {
            ""
        };
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\n{accept}\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut events = Events(std::io::BufReader::new(stream));
        let head = events.next();
        assert!(head.starts_with("HTTP/1.1 200 "), "{target}: {head}");
        assert!(head.contains("Content-Type: text/event-stream"), "{head}");
        events
    }

    /// The next block up to a blank line (the head, then one event each), line ends as `\n`.
    fn next(&mut self) -> String {
        use std::io::BufRead;
        let mut block = Vec::new();
        loop {
            let mut line = String::new();
            assert!(self.0.read_line(&mut line).unwrap() > 0, "stream ended");
            let line = line.trim_end_matches(['\r', '\n']).to_owned();
            if line.is_empty() {
                return block.join("\n");
            }
            block.push(line);
        }
    }
}

/// The framing a value stream of `/objects/f` is written in: A for unnamed events carrying
/// the value, B for `open`/`update` events with a headers line.
fn value_stream_form(base: &str, target: &str, accept: bool) -> char {
    let a = agent();
    let put = |v: &str| {
        let r = a
            .put(format!("{base}/objects/f"))
            .header("Content-Type", "application/json")
            .send(v.to_owned())
            .unwrap();
        assert_eq!(r.status(), 200);
    };
    put("{\"n\":1}");
    let mut events = Events::open(base, target, accept);
    // The opening event is written after the stream took its first look: a change made after
    // it is pushed.
    let open = events.next();
    put("{\"n\":2}");
    let update = events.next();
    if open == ": open" {
        assert_eq!(update, "data: {\"n\":2}", "{target}");
        'A'
    } else {
        assert!(open.starts_with("event: open"), "{target}: {open}");
        let (headers, content) = update
            .strip_prefix("event: update\ndata: ")
            .and_then(|u| u.split_once("\ndata: "))
            .unwrap_or_else(|| panic!("{target}: {update}"));
        let headers: Value = serde_json::from_str(headers).unwrap();
        assert!(headers["Previous-ETag"].is_string(), "{headers}");
        assert_eq!(content, "{\"n\":2}");
        'B'
    }
}

#[test]
fn a_value_stream_is_framed_in_the_form_of_the_way_it_was_asked_for() {
    for dialect in [Dialect::Mixed, Dialect::A, Dialect::B, Dialect::C] {
        let base = start_dialect(dialect);
        let form = |target, accept| value_stream_form(&base, target, accept);
        // Form B's way: Accept on the resource's own URI.
        assert_eq!(form("/objects/f", true), 'B', "{dialect}");
        // Form A's value-stream link (form C's alternate link in dialect C, framed as B's).
        let linked = if dialect == Dialect::C { 'B' } else { 'A' };
        assert_eq!(form("/objects/f?stream=value", true), linked, "{dialect}");
        assert_eq!(form("/objects/f?stream=value", false), linked, "{dialect}");
        // ?form= outranks both.
        assert_eq!(form("/objects/f?form=a", true), 'A', "{dialect}");
        assert_eq!(
            form("/objects/f?stream=value&form=b", true),
            'B',
            "{dialect}"
        );
    }
}

#[test]
fn a_changes_stream_asked_for_with_accept_is_framed_in_form_b() {
    for dialect in [Dialect::Mixed, Dialect::A, Dialect::B, Dialect::C] {
        let base = start_dialect(dialect);
        for (target, form_b) in [
            ("/items/", true),
            ("/items/?form=a", false),
            // The changes-stream link is A's and B's alike: the dialect decides.
            (
                "/items/?stream=changes",
                matches!(dialect, Dialect::B | Dialect::C),
            ),
        ] {
            let mut events = Events::open(&base, target, true);
            let open = events.next();
            let r = agent()
                .post(format!("{base}/items/"))
                .header("Content-Type", "application/json")
                .send("{\"text\":\"t\"}")
                .unwrap();
            assert_eq!(r.status(), 201);
            let update = events.next();
            if form_b {
                assert!(
                    open.starts_with("event: open"),
                    "{dialect} {target}: {open}"
                );
                let headers = update
                    .strip_prefix("event: update\ndata: ")
                    .and_then(|u| u.split_once('\n'))
                    .map(|(h, _)| serde_json::from_str::<Value>(h).unwrap())
                    .unwrap_or_else(|| panic!("{dialect} {target}: {update}"));
                // Form B's gap markers, whatever the dialect.
                assert!(
                    headers["Changes-Id"].is_string(),
                    "{dialect} {target}: {headers}"
                );
            } else {
                assert_eq!(open, ": open", "{dialect} {target}");
                assert!(
                    update.starts_with("data: [{"),
                    "{dialect} {target}: {update}"
                );
            }
        }
    }
}

/// The `Link` headers of a GET of `/counter/w` with `headers`, sorted.
fn links(base: &str, headers: &[(&str, &str)]) -> Vec<String> {
    let mut request = agent().get(format!("{base}/counter/w"));
    for (n, v) in headers {
        request = request.header(*n, *v);
    }
    let r = request.call().unwrap();
    let mut links: Vec<String> = r
        .headers()
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    links.push(format!(
        "property: {:?}",
        header(&r, "liveresource-property")
    ));
    links.sort();
    links
}

#[test]
fn wait_headers_do_not_change_the_form_of_the_answer() {
    // `Prefer: wait` alone is form C's way to wait, `Wait` alone A's and B's; the answer to a
    // long-poll still advertises what the plain GET the client discovered it with did.
    for dialect in [Dialect::Mixed, Dialect::A, Dialect::B, Dialect::C] {
        let base = start_dialect(dialect);
        let plain = links(&base, &[]);
        for wait in [("Prefer", "wait=1"), ("Wait", "1")] {
            let held = links(&base, &[("If-None-Match", "\"other\""), wait]);
            assert_eq!(held, plain, "{dialect} {wait:?}");
        }
    }
}

#[test]
fn a_text_socket_acks_as_asked_or_as_the_dialect_says() {
    use tungstenite::client::IntoClientRequest;
    for (dialect, query, ack) in [
        (Dialect::Mixed, "", "OK"),
        // Form A has no text socket: B's acks.
        (Dialect::A, "", "OK"),
        (Dialect::B, "", "OK"),
        (Dialect::C, "", "200"),
        (Dialect::C, "?form=b", "OK"),
        (Dialect::B, "?form=c", "200"),
    ] {
        let base = start_dialect(dialect);
        let url = format!(
            "{}/multiplex/socket{query}",
            base.replace("http://", "ws://")
        );
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "liveresource".parse().unwrap());
        let tcp = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
        tcp.set_read_timeout(Some(BOUND)).unwrap();
        let (mut ws, _) = tungstenite::client(request, tcp).unwrap();
        ws.send(tungstenite::Message::text("GET /counter/s"))
            .unwrap();
        let reply = loop {
            if let tungstenite::Message::Text(t) = ws.read().unwrap() {
                break t.to_string();
            }
        };
        assert_eq!(reply, format!("{ack} /counter/s"), "{dialect}{query}");
    }
}

/// CORS does not depend on the form the server speaks: in every dialect, a resource, its
/// stream (the link's, and `Accept` on the resource) and a multiplexed answer are readable
/// from another origin.
#[test]
fn every_dialect_answers_other_origins() {
    for dialect in [Dialect::A, Dialect::B, Dialect::C, Dialect::Mixed] {
        let base = start_dialect(dialect);
        let get = agent()
            .get(format!("{base}/counter/a"))
            .header("Origin", "http://elsewhere.test:3000")
            .call()
            .unwrap();
        assert_eq!(
            header(&get, "access-control-allow-origin").as_deref(),
            Some("*"),
            "{dialect:?}"
        );
        assert_exposes(&get);
        for request in [
            "GET /counter/a?stream=value HTTP/1.1\r\nHost: x\r\nOrigin: http://o.test\r\n\r\n",
            "GET /counter/a HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nOrigin: http://o.test\r\n\r\n",
            "GET /multiplex/wait?u=/counter/a HTTP/1.1\r\nHost: x\r\nOrigin: http://o.test\r\n\r\n",
        ] {
            let head = raw_head(&base, request);
            assert!(
                head.contains("\r\nAccess-Control-Allow-Origin: *\r\n"),
                "{dialect:?} {request:?}: {head}"
            );
        }
    }
}
