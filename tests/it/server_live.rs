//! The mechanisms over real sockets, at the protocol level: ureq for plain requests, a raw
//! `TcpStream` with the shared SSE parser for streams, tungstenite for WebSockets, and a small
//! listener for webhook deliveries. Every wait is bounded; synchronisation is by awaited events
//! (a pong after a change, a stream's next event), not by sleeping.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use lrwatch::link::parse_link_headers;
use lrwatch::server::{Dialect, Server, ServerConfig};
use lrwatch::wire::multiplex::{encode_query, encode_uri_header, parse_answer, Target};
use lrwatch::wire::sse::{Event, Parser};
use lrwatch::wire::{socket, ws_json};

use crate::harness::BOUND;
use crate::plain_http::{agent, header, Resp};
/// A held request's `Wait`: longer than BOUND, so an answer within BOUND came from a change,
/// and shorter than the agent's 20 s safety net.
const HELD_WAIT: &str = "15";

fn start_with(cfg: ServerConfig) -> String {
    let handle = Server::bind_with("127.0.0.1:0", cfg)
        .unwrap()
        .spawn()
        .unwrap();
    format!("http://{}", handle.local_addr())
}

fn start() -> String {
    start_with(ServerConfig::default())
}

fn addr(base: &str) -> &str {
    base.trim_start_matches("http://")
}

/// A link as (target path and query, rels, params).
type LinkParts = (String, Vec<String>, Vec<(String, String)>);

fn links(response: &Resp, base: &str) -> Vec<LinkParts> {
    let values: Vec<&str> = response
        .headers()
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let parsed = parse_link_headers(values, &url::Url::parse(base).unwrap());
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed
        .links
        .into_iter()
        .map(|l| {
            let target = match l.target.query() {
                Some(q) => format!("{}?{q}", l.target.path()),
                None => l.target.path().to_owned(),
            };
            (target, l.rels, l.params)
        })
        .collect()
}

fn rels(response: &Resp, base: &str) -> Vec<String> {
    links(response, base)
        .into_iter()
        .flat_map(|(_, rels, _)| rels)
        .collect()
}

fn target_of(response: &Resp, base: &str, rel: &str) -> String {
    links(response, base)
        .into_iter()
        .find(|(_, rels, params)| {
            rels.iter().any(|r| r == rel) && !params.iter().any(|(n, _)| n == "mode")
        })
        .map(|(t, _, _)| t)
        .unwrap_or_else(|| panic!("no {rel} link"))
}

fn body(response: Resp) -> String {
    response.into_body().read_to_string().unwrap()
}

fn get(url: &str) -> Resp {
    agent().get(url).call().unwrap()
}

fn post(url: &str) -> Resp {
    agent().post(url).send_empty().unwrap()
}

fn put(url: &str, body: &str) -> Resp {
    agent().put(url).send(body).unwrap()
}

/// A raw SSE client reading with the shared parser.
struct Sse {
    stream: TcpStream,
    parser: Parser,
    queue: VecDeque<Event>,
    raw: Vec<u8>,
}

fn sse(base: &str, path: &str, headers: &[(&str, &str)]) -> Sse {
    let mut stream = TcpStream::connect(addr(base)).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n");
    for (n, v) in headers {
        request.push_str(&format!("{n}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed mid-head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.contains("Content-Type: text/event-stream\r\n"),
        "{head}"
    );
    assert!(!head.contains("Content-Length"), "{head}");
    assert!(head.contains("Connection: close\r\n"), "{head}");
    Sse {
        stream,
        parser: Parser::new(),
        queue: VecDeque::new(),
        raw: Vec::new(),
    }
}

impl Sse {
    fn read_more(&mut self) -> usize {
        let mut buf = [0u8; 8192];
        let n = self.stream.read(&mut buf).expect("the stream stalled");
        self.raw.extend_from_slice(&buf[..n]);
        self.queue.extend(self.parser.feed(&buf[..n]).unwrap());
        n
    }

    fn next(&mut self) -> Event {
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(e) = self.queue.pop_front() {
                return e;
            }
            assert!(Instant::now() < deadline, "no event");
            assert!(self.read_more() > 0, "the stream ended");
        }
    }

    fn expect_end(&mut self) {
        let deadline = Instant::now() + BOUND;
        while self.read_more() > 0 {
            assert!(Instant::now() < deadline, "the stream did not end");
        }
    }
}

/// Splits a form B/C update's data into its headers object and content.
fn split_update(data: &str) -> (Value, Option<String>) {
    match data.split_once('\n') {
        Some((h, c)) => (serde_json::from_str(h).unwrap(), Some(c.to_owned())),
        None => (serde_json::from_str(data).unwrap(), None),
    }
}

type Ws = WebSocket<TcpStream>;

fn ws_connect(base: &str, path: &str, protocol: Option<&str>) -> Result<Ws, tungstenite::Error> {
    let mut request = format!("ws://{}{path}", addr(base))
        .into_client_request()
        .unwrap();
    if let Some(p) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    let tcp = TcpStream::connect(addr(base)).unwrap();
    tcp.set_read_timeout(Some(BOUND)).unwrap();
    let (ws, response) = tungstenite::client(request, tcp).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => panic!("interrupted handshake"),
    })?;
    if protocol.is_some() {
        assert_eq!(
            response.headers().get("sec-websocket-protocol").unwrap(),
            "liveresource"
        );
    }
    Ok(ws)
}

fn recv(ws: &mut Ws) -> String {
    loop {
        match ws.read().expect("a message") {
            Message::Text(t) => return t.to_string(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_owned())).unwrap();
}

// ---------------------------------------------------------------- advertising and switches

#[test]
fn mixed_dialect_advertises_everything_with_a_winning_where_forms_clash() {
    let base = start();
    let r = get(&format!("{base}/counter/a"));
    let all = rels(&r, &base);
    for rel in [
        "value-wait",
        "value-stream",
        "alternate",
        "hint-stream",
        "value-callback",
        "callbacks",
        "multiplex-wait",
        "multiplex-request",
        "multiplex-stream",
        "multiplex-ws",
        "multiplex-socket",
        "multiplex-callbacks",
    ] {
        assert!(all.iter().any(|r| r == rel), "{rel} missing from {all:?}");
    }
    // value-wait first, as the foundation's clients read the first Link.
    assert_eq!(all[0], "value-wait");
    assert_eq!(
        target_of(&r, &base, "value-stream"),
        "/counter/a?stream=value"
    );
    assert_eq!(
        target_of(&r, &base, "hint-stream"),
        "/counter/a?stream=hint"
    );
    let reliable = links(&r, &base)
        .into_iter()
        .find(|(_, rels, p)| rels[0] == "value-stream" && !p.is_empty())
        .unwrap();
    assert_eq!(reliable.0, "/counter/a?stream=value&mode=reliable");
    assert_eq!(reliable.2, vec![("mode".into(), "reliable".into())]);
    let alternate = links(&r, &base)
        .into_iter()
        .find(|(_, rels, _)| rels[0] == "alternate")
        .unwrap();
    assert_eq!(alternate.0, "/counter/a?stream=value&form=c");
    assert_eq!(
        alternate.2,
        vec![("type".into(), "text/event-stream".into())]
    );
    assert_eq!(
        header(&r, "liveresource-property").as_deref(),
        Some("wait; min=1")
    );
    assert_eq!(header(&r, "x-poll-interval").as_deref(), Some("5"));
}

#[test]
fn each_form_advertises_its_own_mechanisms_and_carries_the_form() {
    let base = start();
    let a = get(&format!("{base}/counter/a?form=a"));
    let rels_a = rels(&a, &base);
    assert!(rels_a.contains(&"multiplex-ws".into()));
    for absent in ["hint-stream", "multiplex-socket", "alternate", "callbacks"] {
        assert!(!rels_a.contains(&absent.into()), "{absent} in A");
    }
    assert!(header(&a, "x-poll-interval").is_none());
    assert!(header(&a, "liveresource-property").is_none());
    assert_eq!(target_of(&a, &base, "value-wait"), "/counter/a?form=a");

    let b = get(&format!("{base}/counter/a?form=b"));
    let rels_b = rels(&b, &base);
    assert!(rels_b.contains(&"hint-stream".into()));
    assert!(rels_b.contains(&"multiplex-socket".into()));
    for absent in [
        "multiplex-ws",
        "value-callback",
        "multiplex-stream",
        "alternate",
    ] {
        assert!(!rels_b.contains(&absent.into()), "{absent} in B");
    }
    // B streams the resource URI itself, with Accept: text/event-stream.
    assert_eq!(target_of(&b, &base, "value-stream"), "/counter/a?form=b");

    let c = get(&format!("{base}/counter/a?form=c"));
    let raw: Vec<String> = c
        .headers()
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        raw.iter()
            .any(|l| l.contains("rel=\"http://liveresource.org/protocol/callbacks\"")),
        "{raw:?}"
    );
    assert!(
        raw.iter().any(|l| l.contains("rel=\"alternate\"")),
        "{raw:?}"
    );
    let rels_c = rels(&c, &base);
    assert!(!rels_c.contains(&"value-wait".into()));
    assert!(rels_c.contains(&"multiplex-request".into()));
    assert_eq!(
        header(&c, "liveresource-property").as_deref(),
        Some("wait; min=1")
    );
}

#[test]
fn dialect_c_server_uses_long_names_everywhere() {
    let base = start_with(ServerConfig {
        dialect: Dialect::C,
        ..ServerConfig::default()
    });
    let r = get(&format!("{base}/items/"));
    let raw: Vec<String> = r
        .headers()
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        raw[0].starts_with(
            "</items/?since=0>; rel=\"http://liveresource.org/protocol/changes\"; wait-min=\"1\""
        ),
        "{raw:?}"
    );
    assert!(rels(&r, &base).contains(&"changes-callbacks".into()));
    assert!(!rels(&r, &base).contains(&"changes-wait".into()));
}

#[test]
fn types_chooses_the_mechanisms_advertised_and_is_carried() {
    let base = start();
    let r = get(&format!(
        "{base}/counter/a?types=value-wait,multiplex-socket"
    ));
    assert_eq!(rels(&r, &base), vec!["value-wait", "multiplex-socket"]);
    assert_eq!(
        target_of(&r, &base, "value-wait"),
        "/counter/a?types=value-wait%2Cmultiplex-socket"
    );
    assert!(header(&r, "liveresource-property").is_some());
    let none = get(&format!("{base}/counter/a?types="));
    assert!(rels(&none, &base).is_empty());
    assert!(none.headers().get("liveresource-property").is_none());
    let bad = get(&format!("{base}/counter/a?types=value-wait,teleport"));
    assert_eq!(bad.status(), 400);
    assert!(body(bad).contains("teleport"));
    assert_eq!(get(&format!("{base}/counter/a?form=z")).status(), 400);
}

// ---------------------------------------------------------------- objects and value streams

#[test]
fn objects_take_any_json_and_are_removed_by_delete() {
    let base = start();
    let url = format!("{base}/objects/thing");
    assert_eq!(get(&url).status(), 404);
    assert_eq!(put(&url, "not json").status(), 400);
    let r = put(&url, "{\"a\": [1, null]}");
    assert_eq!(r.status(), 200);
    let etag = header(&r, "etag").unwrap();
    let r = get(&url);
    assert_eq!(header(&r, "etag"), Some(etag));
    assert_eq!(body(r), "{\"a\":[1,null]}");
    assert_eq!(agent().delete(&url).call().unwrap().status(), 204);
    assert_eq!(get(&url).status(), 404);
    assert_eq!(agent().delete(&url).call().unwrap().status(), 404);
    assert_eq!(post(&url).status(), 405);
}

#[test]
fn value_stream_form_a_sends_values_and_empty_data_for_deleted() {
    let base = start();
    let mut s = sse(&base, "/objects/v?stream=value", &[]);
    put(&format!("{base}/objects/v"), "[1]");
    let e = s.next();
    assert_eq!((&*e.event, &*e.text()), ("message", "[1]"));
    agent().delete(&format!("{base}/objects/v")).call().unwrap();
    let e = s.next();
    assert_eq!((&*e.event, &*e.text()), ("message", ""));
    assert_eq!(e.id, "", "no ids outside reliable mode");
}

#[test]
fn value_stream_form_b_has_open_then_updates_with_headers() {
    let base = start();
    // B's way: the resource URI with Accept.
    let mut s = sse(&base, "/counter/b", &[("Accept", "text/event-stream")]);
    let open = s.next();
    assert_eq!((&*open.event, &*open.text()), ("open", ""));
    let first = post(&format!("{base}/counter/b"));
    let etag1 = header(&first, "etag").unwrap();
    let e = s.next();
    assert_eq!(e.event, "update");
    let (h, content) = split_update(&e.text());
    assert_eq!(h["ETag"], json!(etag1));
    assert_eq!(h["Previous-ETag"], json!("\"0\""));
    assert_eq!(content.as_deref(), Some("1"));
    post(&format!("{base}/counter/b"));
    let (h, content) = split_update(&s.next().text());
    assert_eq!(h["Previous-ETag"], json!(etag1));
    assert_eq!(content.as_deref(), Some("2"));
    agent().delete(&format!("{base}/counter/b")).call().unwrap();
    let (h, content) = split_update(&s.next().text());
    assert!(h["ETag"].is_string());
    assert_eq!(content, None, "deleted: headers only");
}

#[test]
fn alternate_link_streams_in_form_c() {
    let base = start();
    let r = get(&format!("{base}/objects/c"));
    assert_eq!(r.status(), 404);
    put(&format!("{base}/objects/c"), "1");
    let mut s = sse(&base, "/objects/c?stream=value&form=c", &[]);
    assert_eq!(s.next().event, "open");
    put(&format!("{base}/objects/c"), "2");
    let e = s.next();
    assert_eq!(e.event, "update");
    assert_eq!(split_update(&e.text()).1.as_deref(), Some("2"));
}

#[test]
fn reliable_mode_has_retry_ids_and_resumes_from_last_event_id() {
    let base = start();
    let url = format!("{base}/counter/r");
    let etag = header(&post(&url), "etag").unwrap();
    // Form A's ids are the ETags themselves.
    let id = etag.clone();
    let mut s = sse(&base, "/counter/r?stream=value&mode=reliable", &[]);
    let first = s.next();
    assert_eq!(s.parser.retry(), Some(2000));
    assert_eq!((&*first.text(), first.id.as_str()), ("1", id.as_str()));
    post(&url);
    let second = s.next();
    assert_eq!(second.data, "2");
    assert_ne!(second.id, id);
    // Resuming at the current id: nothing to catch up on.
    let mut resumed = sse(
        &base,
        "/counter/r?stream=value&mode=reliable",
        &[("Last-Event-ID", &second.id)],
    );
    post(&url);
    assert_eq!(resumed.next().data, "3");
    // Resuming from an older id: the current value first.
    let mut behind = sse(
        &base,
        "/counter/r?stream=value&mode=reliable",
        &[("Last-Event-ID", &id)],
    );
    assert_eq!(behind.next().data, "3");
    // B form, reliable: `open` carries the value.
    let mut b = sse(
        &base,
        "/counter/r?mode=reliable",
        &[("Accept", "text/event-stream")],
    );
    let open = b.next();
    assert_eq!(open.event, "open");
    assert_eq!(split_update(&open.text()).1.as_deref(), Some("3"));
    assert!(!open.id.is_empty());
}

#[test]
fn bad_stream_requests_are_400() {
    let base = start();
    for (path, hdr) in [
        ("/counter/x?stream=bogus", None),
        ("/counter/x?stream=value&mode=fast", None),
        ("/counter/x?stream=value", Some("bad id with spaces")),
        ("/items/?stream=nope", None),
        ("/items/?stream=changes&since=x", None),
    ] {
        let mut req = agent().get(format!("{base}{path}"));
        if let Some(h) = hdr {
            req = req.header("Last-Event-ID", h);
        }
        assert_eq!(req.call().unwrap().status(), 400, "{path}");
    }
    let long = "1".repeat(200);
    let r = agent()
        .get(format!("{base}/counter/x?stream=value"))
        .header("Last-Event-ID", &long)
        .call()
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[test]
fn hint_stream_sends_bare_updates() {
    let base = start();
    let mut s = sse(&base, "/counter/h?stream=hint", &[]);
    assert_eq!(s.next().event, "open");
    post(&format!("{base}/counter/h"));
    let e = s.next();
    assert_eq!((&*e.event, &*e.text()), ("update", ""));
}

#[test]
fn time_streams_every_second() {
    let base = start();
    let mut s = sse(&base, "/time?stream=value", &[]);
    // Nothing but the ticker sends on this stream; `next` fails after BOUND without a tick.
    let e = s.next();
    assert!(e.text().contains("\"time\""), "{e:?}");
}

#[test]
fn idle_streams_send_keep_alive_comments() {
    let base = start_with(ServerConfig {
        keepalive: Duration::from_millis(100),
        ..ServerConfig::default()
    });
    let mut s = sse(&base, "/counter/k?stream=value", &[]);
    let deadline = Instant::now() + BOUND;
    while !String::from_utf8_lossy(&s.raw).contains(": keep-alive") {
        assert!(Instant::now() < deadline);
        s.read_more();
    }
    assert!(s.queue.is_empty(), "comments dispatch nothing");
}

#[test]
fn streams_are_cut_after_the_configured_time() {
    let base = start_with(ServerConfig {
        cut_after: Some(Duration::from_millis(300)),
        ..ServerConfig::default()
    });
    let start = Instant::now();
    let mut s = sse(&base, "/counter/c?stream=value", &[]);
    // Only the cut ends it (`expect_end` fails after BOUND), and not before its time.
    s.expect_end();
    assert!(start.elapsed() >= Duration::from_millis(250));
}

#[test]
fn control_cut_ends_streams_and_sockets_on_demand() {
    let base = start();
    let mut s = sse(&base, "/counter/c?stream=value", &[]);
    let mut ws = ws_connect(&base, "/multiplex/ws", Some("liveresource")).unwrap();
    send(&mut ws, r#"{"id":"1","type":"ping"}"#);
    assert!(recv(&mut ws).contains("pong"));
    let r = post(&format!("{base}/_control/cut"));
    assert_eq!(r.status(), 200);
    assert!(
        serde_json::from_str::<Value>(&body(r)).unwrap()["cut"]
            .as_u64()
            .unwrap()
            >= 2
    );
    s.expect_end();
    // The socket gets a Close frame; answering it completes the handshake.
    loop {
        match ws.read() {
            Ok(Message::Close(_)) => {}
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        agent()
            .get(format!("{base}/_control/cut"))
            .call()
            .unwrap()
            .status(),
        405
    );
}

// ---------------------------------------------------------------- the collection

fn add_item(base: &str, text: &str) -> String {
    let r = agent()
        .post(format!("{base}/items/"))
        .send(json!({ "text": text }).to_string())
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = header(&r, "location").unwrap();
    let item: Value = serde_json::from_str(&body(r)).unwrap();
    assert_eq!(location, format!("/items/{}", item["id"].as_str().unwrap()));
    item["id"].as_str().unwrap().to_owned()
}

#[test]
fn collection_crud_and_changes_with_gap_markers() {
    let base = start();
    let list = get(&format!("{base}/items/"));
    assert!(
        header(&list, "etag").is_none(),
        "changes, not values, for the collection"
    );
    let changes0 = target_of(&list, &base, "changes");
    assert_eq!(changes0, "/items/?since=0");
    assert_eq!(target_of(&list, &base, "changes-wait"), "/items/?since=0");
    assert!(rels(&list, &base).contains(&"changes-stream".into()));
    assert!(rels(&list, &base).contains(&"changes-callback".into()));
    assert_eq!(body(list), "[]");
    let a = add_item(&base, "a");
    let b = add_item(&base, "b");
    assert_eq!(
        put(&format!("{base}/items/{a}"), "{\"text\":\"A\"}").status(),
        200
    );
    assert_eq!(put(&format!("{base}/items/{a}"), "[1]").status(), 400);
    assert_eq!(put(&format!("{base}/items/99"), "{}").status(), 404);
    assert_eq!(
        agent()
            .delete(format!("{base}/items/{b}"))
            .call()
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        agent()
            .delete(format!("{base}/items/{b}"))
            .call()
            .unwrap()
            .status(),
        404
    );
    assert_eq!(get(&format!("{base}/items/{b}")).status(), 404);
    assert_eq!(
        body(get(&format!("{base}/items/{a}"))),
        format!("{{\"id\":\"{a}\",\"text\":\"A\"}}")
    );
    // Form A: prev-changes link.
    let r = get(&format!("{base}{changes0}&form=a"));
    let next = target_of(&r, &base, "changes");
    assert_eq!(next, "/items/?since=4&form=a");
    assert_eq!(
        target_of(&r, &base, "prev-changes"),
        "/items/?since=0&form=a"
    );
    assert!(header(&r, "changes-id").is_none());
    let items: Value = serde_json::from_str(&body(r)).unwrap();
    assert_eq!(
        items,
        json!([{"id": a, "text": "A"}, {"id": b, "text": "b", "deleted": true}])
    );
    // Form B: Changes-Id and Previous-Changes-Id.
    let r = get(&format!("{base}/items/?since=2&form=b"));
    assert_eq!(header(&r, "changes-id").as_deref(), Some("4"));
    assert_eq!(header(&r, "previous-changes-id").as_deref(), Some("2"));
    // Form C: the ids, a long rel name, no prev-changes link.
    let r = get(&format!("{base}/items/?since=3&form=c"));
    assert_eq!(header(&r, "changes-id").as_deref(), Some("4"));
    assert_eq!(header(&r, "previous-changes-id").as_deref(), Some("3"));
    let raw = header(&r, "link").unwrap();
    assert_eq!(
        raw,
        "</items/?since=4&form=c>; rel=\"http://liveresource.org/protocol/changes\""
    );
    assert!(!rels(&r, &base).contains(&"prev-changes".into()));
    // Nothing new: an empty list, the same checkpoint.
    let r = get(&format!("{base}/items/?since=4"));
    assert_eq!(target_of(&r, &base, "changes"), "/items/?since=4");
    assert_eq!(body(r), "[]");
}

#[test]
fn checkpoints_expire_and_bad_ones_are_rejected() {
    let base = start_with(ServerConfig {
        history: 2,
        ..ServerConfig::default()
    });
    for t in ["a", "b", "c"] {
        add_item(&base, t);
    }
    assert_eq!(
        get(&format!("{base}/items/?since=0")).status(),
        404,
        "expired"
    );
    assert_eq!(get(&format!("{base}/items/?since=1")).status(), 200);
    assert_eq!(
        get(&format!("{base}/items/?since=9")).status(),
        404,
        "never handed out"
    );
    for bad in ["-1", "x", "1.5", "", "99999999999999999999999"] {
        assert_eq!(
            get(&format!("{base}/items/?since={bad}")).status(),
            400,
            "{bad}"
        );
    }
    assert_eq!(get(&format!("{base}/items/007")).status(), 404);
    assert_eq!(
        agent()
            .post(format!("{base}/items/"))
            .send("[]")
            .unwrap()
            .status(),
        400
    );
}

#[test]
fn changes_wait_is_held_while_empty() {
    let base = start();
    let adder = {
        let base = base.clone();
        thread::spawn(move || {
            // A delay, not a synchronisation: the answer is the same if the change comes
            // first; the delay makes the hold the usual path.
            thread::sleep(Duration::from_millis(200));
            add_item(&base, "late")
        })
    };
    let start = Instant::now();
    let r = agent()
        .get(format!("{base}/items/?since=0"))
        .header("Wait", HELD_WAIT)
        .call()
        .unwrap();
    // The wait runs longer than BOUND: an answer within BOUND was the change's.
    assert!(start.elapsed() < BOUND, "{:?}", start.elapsed());
    let id = adder.join().unwrap();
    let items: Value = serde_json::from_str(&body(r)).unwrap();
    assert_eq!(items[0]["id"], json!(id));
    // Nothing happens: the wait runs out with an empty list.
    let start = Instant::now();
    let r = agent()
        .get(format!("{base}/items/?since=1"))
        .header("Prefer", "wait=1")
        .call()
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert_eq!(body(r), "[]");
    let bad = agent()
        .get(format!("{base}/items/?since=1"))
        .header("Wait", "x")
        .call()
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[test]
fn changes_stream_in_forms_a_and_b_with_resume() {
    let base = start();
    add_item(&base, "before");
    let list = get(&format!("{base}/items/"));
    let stream_link = target_of(&list, &base, "changes-stream");
    assert_eq!(stream_link, "/items/?stream=changes&since=1");
    let mut a = sse(&base, &stream_link, &[]);
    let mut b = sse(&base, "/items/?stream=changes&form=b", &[]);
    assert_eq!(b.next().event, "open");
    let id = add_item(&base, "x");
    let e = a.next();
    assert_eq!(e.event, "message");
    assert_eq!(
        serde_json::from_str::<Value>(&e.text()).unwrap(),
        json!([{"id": id, "text": "x"}])
    );
    let e = b.next();
    assert_eq!(e.event, "update");
    let (h, content) = split_update(&e.text());
    assert_eq!(h["Changes-Id"], json!("2"));
    assert_eq!(h["Previous-Changes-Id"], json!("1"));
    assert!(h["Link"]
        .as_str()
        .unwrap()
        .contains("</items/?since=2&form=b>; rel=\"changes\""));
    assert!(content.unwrap().contains("\"x\""));
    // Reliable: ids are checkpoints; Last-Event-ID resumes after one.
    let mut r = sse(
        &base,
        "/items/?stream=changes&mode=reliable",
        &[("Last-Event-ID", "1")],
    );
    let e = r.next();
    assert_eq!(e.id, "2");
    assert!(e.text().contains("\"x\""));
    let bad = agent()
        .get(format!("{base}/items/?stream=changes&mode=reliable"))
        .header("Last-Event-ID", "abc")
        .call()
        .unwrap();
    assert_eq!(bad.status(), 400);
}

// ---------------------------------------------------------------- multiplexing

#[test]
fn multiplex_wait_query_form_answers_json_bodies() {
    let base = start();
    let a = format!("{base}/counter/ma");
    let etag = header(&get(&a), "etag").unwrap();
    let query = encode_query(&[
        Target {
            uri: "/counter/ma".into(),
            if_none_match: Some(etag.clone()),
        },
        Target {
            uri: "/objects/none".into(),
            if_none_match: Some("\"0\"".into()),
        },
    ]);
    let poster = {
        let a = a.clone();
        thread::spawn(move || {
            // A delay, not a synchronisation (see `changes_wait_is_held_while_empty`).
            thread::sleep(Duration::from_millis(200));
            post(&a)
        })
    };
    let start = Instant::now();
    let r = agent()
        .get(format!("{base}/multiplex/wait?{query}"))
        .header("Wait", HELD_WAIT)
        .call()
        .unwrap();
    assert!(start.elapsed() < BOUND, "{:?}", start.elapsed());
    poster.join().unwrap();
    let answer = parse_answer(&body(r)).unwrap();
    assert_eq!(answer.len(), 1, "{answer:?}");
    assert_eq!(answer[0].0, "/counter/ma");
    assert_eq!(answer[0].1.code, 200);
    assert_eq!(answer[0].1.body, json!(1));
    assert_ne!(answer[0].1.header("etag"), Some(etag.as_str()));
}

#[test]
fn multiplex_wait_uri_headers_answer_string_bodies() {
    let base = start();
    put(&format!("{base}/objects/x"), "{\"v\":1}");
    let etag_x = header(&get(&format!("{base}/objects/x")), "etag").unwrap();
    let t = |uri: &str, inm: Option<&str>| Target {
        uri: uri.into(),
        if_none_match: inm.map(Into::into),
    };
    // One header per resource (C) ...
    let r = agent()
        .get(format!("{base}/multiplex/wait"))
        .header("Uri", encode_uri_header(&t("/objects/x", None)))
        .header("Uri", encode_uri_header(&t("/counter/y", Some("\"0\""))))
        .call()
        .unwrap();
    let answer = parse_answer(&body(r)).unwrap();
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].1.body, json!("{\"v\":1}"));
    // ... or comma-joined (B); absolute URIs answer under the URI as sent.
    let joined = format!(
        "{}, {}",
        encode_uri_header(&t(&format!("{base}/objects/x"), Some(&etag_x))),
        encode_uri_header(&t("/counter/y", Some("\"0\"")))
    );
    let r = agent()
        .get(format!("{base}/multiplex/wait"))
        .header("Uri", &joined)
        .header("Wait", "1")
        .call()
        .unwrap();
    assert_eq!(body(r), "{}", "no news within the wait");
    // A changes URI in a multiplexed request.
    add_item(&base, "m");
    let r = agent()
        .get(format!("{base}/multiplex/wait"))
        .header("Uri", "</items/?since=0>")
        .call()
        .unwrap();
    let answer = parse_answer(&body(r)).unwrap();
    assert_eq!(answer[0].0, "/items/?since=0");
    assert_eq!(answer[0].1.header("Changes-Id"), Some("1"));
    assert!(answer[0].1.body.as_str().unwrap().contains("\"m\""));
}

#[test]
fn multiplex_wait_rejects_bad_requests() {
    let base = start();
    let url = format!("{base}/multiplex/wait");
    assert_eq!(get(&url).status(), 400, "no resources named");
    for bad in ["/counter/a", "</counter/a", "</a>; If-None-Match=\"open"] {
        let r = agent().get(&url).header("Uri", bad).call().unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    let many = vec!["</counter/a>"; 300].join(", ");
    assert_eq!(
        agent()
            .get(&url)
            .header("Uri", &many)
            .call()
            .unwrap()
            .status(),
        400
    );
    assert_eq!(get(&format!("{url}?inm=x&u=/a")).status(), 400);
    let r = agent()
        .get(format!("{url}?u=/counter/a"))
        .header("Wait", "soon")
        .call()
        .unwrap();
    assert_eq!(r.status(), 400);
    // An unknown resource is a 404 member, answered at once.
    let r = get(&format!("{url}?u=/nothing/here&inm=%221%22"));
    let answer = parse_answer(&body(r)).unwrap();
    assert_eq!(answer[0].1.code, 404);
}

#[test]
fn multiplex_stream_pushes_uri_and_body() {
    let base = start();
    let mut s = sse(&base, "/multiplex/stream?u=/counter/s1&u=/objects/s2", &[]);
    post(&format!("{base}/counter/s1"));
    let e = s.next();
    assert_eq!(
        serde_json::from_str::<Value>(&e.text()).unwrap(),
        json!({"uri": "/counter/s1", "body": 1})
    );
    put(&format!("{base}/objects/s2"), "\"x\"");
    agent().delete(format!("{base}/objects/s2")).call().unwrap();
    // The put and the delete may coalesce into one push; the last is the delete: null.
    loop {
        let e: Value = serde_json::from_slice(&s.next().data).unwrap();
        assert_eq!(e["uri"], "/objects/s2");
        if e["body"].is_null() {
            break;
        }
        assert_eq!(e["body"], "x");
    }
    assert_eq!(
        get(&format!("{base}/multiplex/stream?u=/nowhere")).status(),
        404
    );
}

#[test]
fn multiplex_ws_json_messages() {
    let base = start();
    let mut ws = ws_connect(&base, "/multiplex/ws", Some("liveresource")).unwrap();
    send(
        &mut ws,
        r#"{"id":"1","type":"subscribe","mode":"value","uri":"/counter/w"}"#,
    );
    assert_eq!(
        ws_json::ServerMessage::parse(&recv(&mut ws)).unwrap(),
        ws_json::ServerMessage::Subscribed { id: "1".into() }
    );
    let etag = header(&post(&format!("{base}/counter/w")), "etag").unwrap();
    match ws_json::ServerMessage::parse(&recv(&mut ws)).unwrap() {
        ws_json::ServerMessage::Event { uri, headers, body } => {
            assert_eq!(uri, "/counter/w");
            assert!(headers.contains(&("ETag".into(), etag)));
            assert_eq!(body, json!(1));
        }
        other => panic!("{other:?}"),
    }
    send(&mut ws, r#"{"id":"2","type":"ping"}"#);
    assert_eq!(recv(&mut ws), r#"{"id":"2","type":"pong"}"#);
    // Refusals: unknown resource, malformed JSON, wrong mode, binary.
    send(&mut ws, r#"{"id":"3","type":"subscribe","uri":"/nowhere"}"#);
    let e: Value = serde_json::from_str(&recv(&mut ws)).unwrap();
    assert_eq!(
        (e["id"].as_str(), e["type"].as_str(), e["code"].as_u64()),
        (Some("3"), Some("error"), Some(404))
    );
    send(&mut ws, "{not json");
    let e: Value = serde_json::from_str(&recv(&mut ws)).unwrap();
    assert_eq!(
        (e["type"].as_str(), e["code"].as_u64()),
        (Some("error"), Some(400))
    );
    send(
        &mut ws,
        r#"{"id":"4","type":"subscribe","mode":"changes","uri":"/counter/w"}"#,
    );
    assert!(recv(&mut ws).contains("\"error\""));
    ws.send(Message::Binary(vec![1, 2].into())).unwrap();
    assert!(recv(&mut ws).contains("\"error\""));
    // Changes mode: Link with changes and prev-changes.
    send(
        &mut ws,
        r#"{"id":"5","type":"subscribe","mode":"changes","uri":"/items/"}"#,
    );
    assert!(recv(&mut ws).contains("subscribed"));
    add_item(&base, "ws");
    match ws_json::ServerMessage::parse(&recv(&mut ws)).unwrap() {
        ws_json::ServerMessage::Event { uri, headers, body } => {
            assert_eq!(uri, "/items/");
            let link = &headers.iter().find(|(n, _)| n == "Link").unwrap().1;
            assert!(
                link.contains("rel=\"changes\"") && link.contains("rel=\"prev-changes\""),
                "{link}"
            );
            assert_eq!(body[0]["text"], "ws");
        }
        other => panic!("{other:?}"),
    }
    send(
        &mut ws,
        r#"{"id":"6","type":"unsubscribe","uri":"/counter/w"}"#,
    );
    assert!(recv(&mut ws).contains("unsubscribed"));
    post(&format!("{base}/counter/w"));
    send(&mut ws, r#"{"id":"7","type":"ping"}"#);
    assert!(
        recv(&mut ws).contains("pong"),
        "no event after unsubscribing"
    );
    send(
        &mut ws,
        r#"{"id":"8","type":"unsubscribe","uri":"/counter/w"}"#,
    );
    assert!(recv(&mut ws).contains("error"));
    // A client-initiated close completes: the server reads after the Close frame.
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn websocket_upgrades_are_checked() {
    let base = start();
    let r = get(&format!("{base}/multiplex/ws"));
    assert_eq!(r.status(), 426);
    assert_eq!(get(&format!("{base}/multiplex/socket")).status(), 426);
    assert!(ws_connect(&base, "/multiplex/ws", Some("chat")).is_err());
    // Without a subprotocol offer the socket is still served (curl-like tools).
    let mut ws = ws_connect(&base, "/multiplex/socket", None).unwrap();
    send(&mut ws, "GET /counter/z");
    assert_eq!(recv(&mut ws), "OK /counter/z");
}

#[test]
fn multiplex_socket_text_messages_in_forms_b_and_c() {
    let base = start();
    let mut b = ws_connect(&base, "/multiplex/socket", Some("liveresource")).unwrap();
    send(&mut b, "GET /counter/t");
    assert_eq!(recv(&mut b), "OK /counter/t");
    let etag = header(&post(&format!("{base}/counter/t")), "etag").unwrap();
    match socket::ServerMessage::parse(&recv(&mut b)).unwrap() {
        socket::ServerMessage::Update {
            uri,
            headers,
            content,
        } => {
            assert_eq!(uri, "/counter/t");
            assert!(headers.contains(&("ETag".into(), etag)));
            assert!(headers.contains(&("Previous-ETag".into(), "\"0\"".into())));
            assert_eq!(content, "1");
        }
        other => panic!("{other:?}"),
    }
    send(&mut b, "GET /nowhere");
    let refused = recv(&mut b);
    assert!(refused.starts_with("ERROR /nowhere 404\n"), "{refused}");
    send(&mut b, "FETCH /counter/t");
    assert!(recv(&mut b).starts_with("ERROR * 400\n"));
    send(&mut b, "CANCEL /counter/t");
    assert_eq!(recv(&mut b), "OK /counter/t");
    send(&mut b, "CANCEL /counter/t");
    assert!(recv(&mut b).starts_with("ERROR /counter/t 404"));
    let mut c = ws_connect(&base, "/multiplex/socket?form=c", Some("liveresource")).unwrap();
    send(&mut c, &format!("GET ws://{}/counter/t", addr(&base)));
    assert_eq!(recv(&mut c), format!("200 ws://{}/counter/t", addr(&base)));
    post(&format!("{base}/counter/t"));
    assert!(recv(&mut c).starts_with(&format!("* ws://{}/counter/t {{", addr(&base))));
}

#[test]
fn lossy_skips_every_nth_push_and_previous_etag_shows_the_gap() {
    let base = start_with(ServerConfig {
        lossy: Some(2),
        ..ServerConfig::default()
    });
    let mut ws = ws_connect(&base, "/multiplex/socket", Some("liveresource")).unwrap();
    send(&mut ws, "GET /counter/l");
    assert_eq!(recv(&mut ws), "OK /counter/l");
    let mut got = Vec::new();
    for i in 1..=4 {
        post(&format!("{base}/counter/l"));
        // The pong comes after any push for the change made before the ping.
        send(&mut ws, "GET /counter/l");
        loop {
            let m = recv(&mut ws);
            if m == "OK /counter/l" {
                break;
            }
            got.push((i, socket::ServerMessage::parse(&m).unwrap()));
        }
    }
    let contents: Vec<String> = got
        .iter()
        .map(|(_, m)| match m {
            socket::ServerMessage::Update { content, .. } => content.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(contents, ["1", "3"]);
    // The second push's Previous-ETag is the skipped one's, not the first's.
    let etag = |m: &socket::ServerMessage, name: &str| match m {
        socket::ServerMessage::Update { headers, .. } => {
            headers.iter().find(|(n, _)| n == name).unwrap().1.clone()
        }
        _ => unreachable!(),
    };
    assert_ne!(etag(&got[1].1, "Previous-ETag"), etag(&got[0].1, "ETag"));
}

#[test]
fn changes_uris_with_a_checkpoint_catch_up_first() {
    let base = start();
    let id = add_item(&base, "early");
    let mut s = sse(&base, "/multiplex/stream?u=%2Fitems%2F%3Fsince%3D0", &[]);
    let e: Value = serde_json::from_slice(&s.next().data).unwrap();
    assert_eq!(
        e,
        json!({"uri": "/items/?since=0", "body": [{"id": id, "text": "early"}]})
    );
    let mut ws = ws_connect(&base, "/multiplex/socket", Some("liveresource")).unwrap();
    send(&mut ws, "GET /items/?since=0");
    assert_eq!(recv(&mut ws), "OK /items/?since=0");
    match socket::ServerMessage::parse(&recv(&mut ws)).unwrap() {
        socket::ServerMessage::Update {
            headers, content, ..
        } => {
            assert!(headers.contains(&("Changes-Id".into(), "1".into())));
            assert!(content.contains("early"));
        }
        other => panic!("{other:?}"),
    }
    // B's way to ask for the changes stream: Accept on the collection.
    let mut b = sse(&base, "/items/", &[("Accept", "text/event-stream")]);
    assert_eq!(b.next().event, "open");
    add_item(&base, "later");
    let e = b.next();
    assert_eq!(e.event, "update");
    assert_eq!(split_update(&e.text()).0["Previous-Changes-Id"], json!("1"));
}

#[test]
fn idle_sockets_are_pinged_and_cut_after_the_configured_time() {
    let base = start_with(ServerConfig {
        keepalive: Duration::from_millis(50),
        cut_after: Some(Duration::from_millis(400)),
        ..ServerConfig::default()
    });
    let started = Instant::now();
    let mut ws = ws_connect(&base, "/multiplex/ws", Some("liveresource")).unwrap();
    let mut pings = 0;
    loop {
        // Pings keep the read from timing out: without the cut this loop would never end.
        assert!(started.elapsed() < BOUND, "not cut within {BOUND:?}");
        match ws.read() {
            Ok(Message::Ping(_)) => pings += 1,
            Ok(Message::Close(_)) => {}
            Ok(other) => panic!("{other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(pings >= 1);
    assert!(started.elapsed() >= Duration::from_millis(350));
}

#[test]
fn deeply_nested_json_is_stored_or_refused_without_a_crash() {
    let base = start();
    let url = format!("{base}/objects/deep");
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert_eq!(put(&url, &nested(120)).status(), 200);
    assert_eq!(body(get(&url)), nested(120));
    assert_eq!(put(&url, &nested(100_000)).status(), 400);
    let r = agent()
        .post(format!("{base}/items/"))
        .send(format!("{{\"a\":{}}}", nested(126)))
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(get(&format!("{base}/items/?since=0")).status(), 200);
}

#[test]
fn lossy_applies_to_streams_but_not_reliable_ones() {
    let base = start_with(ServerConfig {
        lossy: Some(1),
        keepalive: Duration::from_millis(50),
        ..ServerConfig::default()
    });
    let mut lossy = sse(&base, "/counter/ls?stream=value", &[]);
    let mut reliable = sse(&base, "/counter/ls?stream=value&mode=reliable", &[]);
    assert_eq!(reliable.next().data, "0");
    post(&format!("{base}/counter/ls"));
    assert_eq!(reliable.next().data, "1");
    // Two keep-alives after the change: the second comes from a wake after the change was
    // handled, so an event, had one been sent, would be before it.
    let from = lossy.raw.len();
    let deadline = Instant::now() + BOUND;
    while String::from_utf8_lossy(&lossy.raw[from..])
        .matches(": keep-alive")
        .count()
        < 2
    {
        assert!(Instant::now() < deadline);
        lossy.read_more();
    }
    assert!(lossy.queue.is_empty(), "{:?}", lossy.queue);
}

// ---------------------------------------------------------------- webhooks

/// A webhook receiver: answers with `statuses` in turn (then 200), reports each request.
fn receiver(statuses: Vec<u16>) -> (String, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut statuses = statuses.into_iter();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            stream.set_read_timeout(Some(BOUND)).unwrap();
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while !buf.ends_with(b"\r\n\r\n") {
                if stream.read(&mut byte).unwrap_or(0) == 0 {
                    break;
                }
                buf.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&buf).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|n| n.trim().parse().unwrap())
                })
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            let _ = stream.read_exact(&mut body);
            let status = statuses.next().unwrap_or(200);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            if tx
                .send((head, String::from_utf8_lossy(&body).into_owned()))
                .is_err()
            {
                return;
            }
        }
    });
    (url, rx)
}

fn subscriptions(base: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(&body(get(&format!("{base}/subscriptions/"))))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn value_callback_subscribes_delivers_retries_and_unsubscribes() {
    let base = start_with(ServerConfig {
        callback_backoff: Duration::from_millis(20),
        callback_attempts: 3,
        ..ServerConfig::default()
    });
    let r = get(&format!("{base}/counter/cb"));
    let callbacks = target_of(&r, &base, "value-callback");
    assert_eq!(callbacks, "/subscriptions/?uri=%2Fcounter%2Fcb");
    // Fails twice, then accepts: three attempts for the first delivery.
    let (hook, deliveries) = receiver(vec![500, 503]);
    let r = agent()
        .post(format!("{base}{callbacks}"))
        .content_type("application/x-www-form-urlencoded")
        .send(format!(
            "callback_uri={}",
            url::form_urlencoded::byte_serialize(hook.as_bytes()).collect::<String>()
        ))
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = header(&r, "location").unwrap();
    assert_eq!(subscriptions(&base).len(), 1);
    post(&format!("{base}/counter/cb"));
    for _ in 0..3 {
        let (head, body) = deliveries.recv_timeout(BOUND).unwrap();
        assert!(head.starts_with("POST /hook "), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("location: {base}/counter/cb\r\n")),
            "{head}"
        );
        assert_eq!(body, "1");
    }
    agent().delete(format!("{base}/counter/cb")).call().unwrap();
    let (_, body) = deliveries.recv_timeout(BOUND).unwrap();
    assert_eq!(body, "", "deleted: an empty body");
    assert_eq!(
        agent()
            .delete(format!("{base}{location}"))
            .call()
            .unwrap()
            .status(),
        204
    );
    assert!(subscriptions(&base).is_empty(), "nothing left behind");
    assert_eq!(
        agent()
            .delete(format!("{base}{location}"))
            .call()
            .unwrap()
            .status(),
        404
    );
    post(&format!("{base}/counter/cb"));
    assert!(deliveries.recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn changes_callback_carries_gap_markers() {
    let base = start();
    let (hook, deliveries) = receiver(vec![]);
    // The multiplex-callbacks form: the resource in the body.
    let r = agent()
        .post(format!("{base}/subscriptions/"))
        .send(format!("uri=%2Fitems%2F&callback_uri={hook}"))
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(subscriptions(&base)[0]["mode"], "changes");
    let id = add_item(&base, "hooked");
    let (head, body) = deliveries.recv_timeout(BOUND).unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.contains("changes-id: 1\r\n"), "{head}");
    assert!(head.contains("previous-changes-id: 0\r\n"), "{head}");
    assert!(head.contains("rel=\"prev-changes\""), "{head}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()[0]["id"],
        json!(id)
    );
}

/// A subscription may name its resource by an absolute URL on the server's own origin (as
/// multiplexed requests may): its notifications' `Location` is that URL, not the server's
/// origin with the URL glued on. A URL on another origin names nothing here: 400.
#[test]
fn a_subscription_by_absolute_url_is_delivered_with_that_location() {
    let base = start();
    let (hook, deliveries) = receiver(vec![]);
    let url = format!("{base}/subscriptions/");
    let form = |uri: &str| {
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!("uri={}&callback_uri={}", encode(uri), encode(&hook))
    };
    for (uri, location) in [
        (format!("{base}/counter/abs"), format!("{base}/counter/abs")),
        (
            format!("{}/counter/absws", base.replace("http://", "ws://")),
            format!("{base}/counter/absws"),
        ),
    ] {
        let r = agent().post(&url).send(form(&uri)).unwrap();
        assert_eq!(r.status(), 201, "{uri}");
        let changed = location.clone();
        post(&changed);
        let (head, body) = deliveries.recv_timeout(BOUND).unwrap();
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("\r\nlocation: {location}\r\n")),
            "{uri}: {head}"
        );
        assert_eq!(body, "1", "{uri}");
    }
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    for elsewhere in [
        format!("http://127.0.0.1:{}/counter/abs", port.wrapping_add(1)),
        format!("http://localhost:{port}/counter/abs"),
        "https://example.test/counter/abs".to_string(),
    ] {
        let r = agent().post(&url).send(form(&elsewhere)).unwrap();
        assert_eq!(r.status(), 400, "{elsewhere}");
    }
    assert_eq!(subscriptions(&base).len(), 2);
}

#[test]
fn bad_subscriptions_are_400() {
    let base = start();
    let url = format!("{base}/subscriptions/");
    for bad in [
        "callback_uri=http://127.0.0.1:1/x",
        "uri=/counter/a",
        "uri=/counter/a&callback_uri=ftp://x/",
        "uri=/counter/a&callback_uri=/relative",
    ] {
        assert_eq!(agent().post(&url).send(bad).unwrap().status(), 400, "{bad}");
    }
    let r = agent()
        .post(&url)
        .send("uri=/nowhere&callback_uri=http://127.0.0.1:1/x")
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(get(&format!("{url}42")).status(), 404);
    assert!(subscriptions(&base).is_empty());
}

// ---------------------------------------------------------------- robustness

#[test]
fn oversized_socket_messages_close_only_that_socket() {
    let base = start();
    let mut ws = ws_connect(&base, "/multiplex/socket", Some("liveresource")).unwrap();
    let huge = format!("GET /{}", "a".repeat(100 * 1024));
    let _ = ws.send(Message::text(huge));
    let deadline = Instant::now() + BOUND;
    loop {
        assert!(Instant::now() < deadline);
        match ws.read() {
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let mut other = ws_connect(&base, "/multiplex/socket", Some("liveresource")).unwrap();
    send(&mut other, "GET /counter/ok");
    assert_eq!(recv(&mut other), "OK /counter/ok");
    // A long URI within the frame limit is refused by message, not by closing.
    send(&mut other, &format!("GET /{}", "b".repeat(9 * 1024)));
    assert!(recv(&mut other).starts_with("ERROR * 400"));
}

#[test]
fn socket_hints_and_the_form_asked_for_multiplex_bodies() {
    let base = start();
    let mut ws = ws_connect(&base, "/multiplex/socket?push=hint", Some("liveresource")).unwrap();
    send(&mut ws, "GET /counter/hs");
    assert_eq!(recv(&mut ws), "OK /counter/hs");
    post(&format!("{base}/counter/hs"));
    assert_eq!(recv(&mut ws), "* /counter/hs");
    assert_eq!(
        get(&format!("{base}/multiplex/socket?push=all")).status(),
        400
    );
    // Uri headers alone would get string bodies; ?form=a asks for JSON ones.
    let r = agent()
        .get(format!("{base}/multiplex/wait?form=a"))
        .header("Uri", "</counter/hs>")
        .call()
        .unwrap();
    assert_eq!(parse_answer(&body(r)).unwrap()[0].1.body, json!(1));
    let r = get(&format!("{base}/multiplex/wait?form=b&u=/counter/hs"));
    assert_eq!(parse_answer(&body(r)).unwrap()[0].1.body, json!("1"));
}

#[test]
fn changes_streams_refuse_expired_and_unknown_checkpoints() {
    let base = start_with(ServerConfig {
        history: 1,
        ..ServerConfig::default()
    });
    add_item(&base, "a");
    add_item(&base, "b");
    assert_eq!(
        get(&format!("{base}/items/?stream=changes&since=0")).status(),
        404
    );
    assert_eq!(
        get(&format!("{base}/items/?stream=changes&since=5")).status(),
        404
    );
    // HEAD is never a stream.
    let r = agent()
        .head(format!("{base}/counter/a?stream=value"))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "content-type").as_deref(),
        Some("application/json")
    );
}

#[test]
fn dialect_b_streams_the_resource_itself() {
    let base = start_with(ServerConfig {
        dialect: Dialect::B,
        ..ServerConfig::default()
    });
    let r = get(&format!("{base}/counter/d"));
    assert_eq!(target_of(&r, &base, "value-stream"), "/counter/d");
    assert!(!rels(&r, &base).contains(&"alternate".into()));
    assert!(header(&r, "liveresource-property").is_none());
    let mut s = sse(&base, "/counter/d", &[("Accept", "text/event-stream")]);
    assert_eq!(s.next().event, "open");
    post(&format!("{base}/counter/d"));
    assert_eq!(s.next().event, "update");
    // The socket of a B server acks with OK, of a C request with 200.
    let mut ws = ws_connect(&base, "/multiplex/socket", Some("liveresource")).unwrap();
    send(&mut ws, "GET /counter/d");
    assert_eq!(recv(&mut ws), "OK /counter/d");
}

/// Thousands of held long-polls and open streams, woken by one change each. Not run by default
/// (it takes a few seconds and thousands of descriptors): `cargo test --lib load -- --ignored`.
#[test]
#[ignore]
fn load_thousands_of_held_requests_and_streams() {
    const HELD: usize = 2000;
    const STREAMS: usize = 2000;
    let base = start();
    let started = Instant::now();
    let mut polls = Vec::new();
    for i in 0..HELD {
        let mut s = TcpStream::connect(addr(&base)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let key = i % 10;
        write!(
            s,
            "GET /counter/load{key} HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"0\"\r\nWait: 60\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        polls.push(s);
    }
    let mut streams: Vec<Sse> = (0..STREAMS)
        .map(|i| sse(&base, &format!("/counter/load{}?stream=value", i % 10), &[]))
        .collect();
    eprintln!(
        "opened {HELD} long-polls and {STREAMS} streams in {:?}",
        started.elapsed()
    );
    let changed = Instant::now();
    for key in 0..10 {
        post(&format!("{base}/counter/load{key}"));
    }
    for mut s in polls {
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    }
    for s in &mut streams {
        assert_eq!(s.next().data, "1");
    }
    eprintln!(
        "all {} woken and answered in {:?}",
        HELD + STREAMS,
        changed.elapsed()
    );
}
