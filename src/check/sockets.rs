//! WebSockets: `multiplex-ws` (form A, JSON messages) and `multiplex-socket` (forms B and C,
//! text messages). The handshake negotiates the `liveresource` subprotocol; a subscription is
//! acknowledged; a change is pushed.
//!
//! The opening handshake is written here rather than by tungstenite's client, which refuses an
//! answer without the subprotocol before one could see it: this way the answer is evidence, and
//! the other requirements are still checked over a connection made without offering it.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use tungstenite::protocol::Role;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use url::Url;

use super::{
    delivered, names, not_delivered, subject, uri_for, Exchange, Finding, Named, Probe, ProbeEnv,
    Requirement,
};
use crate::discovery::Capabilities;
use crate::mechanism::Mechanism;
use crate::proxy::{Stream, Timed};
use crate::wire::{socket, ws_json};

/// A socket whose reads fail past a deadline (see [`Timed`]): tungstenite reads frame after
/// frame within one `read()` for as long as bytes come, so a server sending frames that never
/// make a message (an unfinished text frame, then empty continuation frames without end) would
/// otherwise hold it past any read timeout, and the budget, at full speed; and a handshake
/// answer dripped a byte at a time would hold the handshake.
type Socket = WebSocket<MaybeTlsStream<Timed<Stream>>>;

/// Reads on `socket` fail from `until` on (see [`Timed`]).
fn read_until(socket: &mut Socket, until: Instant) {
    match socket.get_mut() {
        MaybeTlsStream::Plain(timed) => timed.until = until,
        MaybeTlsStream::Rustls(tls) => tls.sock.until = until,
        _ => {}
    }
}

/// How long the connection and handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an acknowledgement may take.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a blocked read wakes to look at the clock.
const TICK: Duration = Duration::from_millis(100);
/// The subprotocol.
const SUBPROTOCOL: &str = "liveresource";
/// The largest response head read.
const MAX_HEAD: usize = 16 * 1024;

/// The socket probes for what the resource offers.
pub(super) fn probes(caps: &Capabilities) -> Vec<Named> {
    let mut out: Vec<Named> = Vec::new();
    if caps.offer(Mechanism::MultiplexWs).is_some() {
        out.push((Some(Mechanism::MultiplexWs), |env, probe| {
            run(env, probe, Mechanism::MultiplexWs)
        }));
    }
    if caps.offer(Mechanism::MultiplexSocket).is_some() {
        out.push((Some(Mechanism::MultiplexSocket), |env, probe| {
            run(env, probe, Mechanism::MultiplexSocket)
        }));
    }
    out
}

/// The handshake's answer.
struct Opened {
    socket: Socket,
    subprotocol: Option<String>,
    exchange: Exchange,
}

/// Connects and performs the opening handshake, offering the subprotocol when `offer`.
fn connect(env: &ProbeEnv, endpoint: &Url, offer: bool) -> Result<Opened, (String, Exchange)> {
    let mut ws_url = endpoint.clone();
    let tls = endpoint.scheme() == "https";
    let _ = ws_url.set_scheme(if tls { "wss" } else { "ws" });
    let key = tungstenite::handshake::client::generate_key();
    let host = endpoint.host_str().unwrap_or("").to_string();
    let authority = match endpoint.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let mut path = endpoint.path().to_string();
    if let Some(q) = endpoint.query() {
        path.push('?');
        path.push_str(q);
    }
    let mut headers: Vec<(String, String)> = vec![
        ("Host".into(), authority),
        ("Upgrade".into(), "websocket".into()),
        ("Connection".into(), "Upgrade".into()),
        ("Sec-WebSocket-Key".into(), key.clone()),
        ("Sec-WebSocket-Version".into(), "13".into()),
    ];
    if offer {
        headers.push(("Sec-WebSocket-Protocol".into(), SUBPROTOCOL.into()));
    }
    for (name, value) in env.http.headers_for(endpoint, &env.url) {
        headers.push((
            name.to_string(),
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        ));
    }
    let shown: Vec<(&str, String)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    let exchange = Exchange::new("GET", &ws_url, &shown);
    let fail = |why: String| {
        let x = exchange.clone().with_text(format!("(no answer: {why})"));
        (why, x)
    };
    let timeout = env.bounded(CONNECT_TIMEOUT);
    // Through the proxy HTTP requests take, if any; an IPv6 address without its brackets.
    let route = crate::proxy::Route::to(endpoint);
    let stream = crate::proxy::connect(endpoint, &route, timeout, &env.tls).map_err(fail)?;
    let tcp = stream.tcp();
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(timeout));
    let _ = tcp.set_write_timeout(Some(timeout));
    let timed = Timed {
        inner: stream,
        until: Instant::now() + timeout,
    };
    let mut stream = crate::proxy::secure(endpoint, timed, &env.tls).map_err(fail)?;
    let mut head = format!("GET {path} HTTP/1.1\r\n");
    for (n, v) in &headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| fail(format!("cannot send the handshake: {e}")))?;
    // Byte by byte, so nothing after the head is taken from tungstenite.
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() >= MAX_HEAD {
            return Err(fail("the handshake answer is too long".into()));
        }
        match stream.read(&mut byte) {
            Ok(1) => answer.push(byte[0]),
            Ok(_) => return Err(fail("the connection closed during the handshake".into())),
            Err(e) => return Err(fail(format!("no handshake answer: {e}"))),
        }
    }
    let text = String::from_utf8_lossy(&answer).trim_end().to_string();
    let exchange = exchange.with_text(text.clone());
    let mut lines = text.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let fields: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    if status != 101 {
        return Err((format!("answered {status}, not 101"), exchange));
    }
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    if field("sec-websocket-accept").as_deref() != Some(accept.as_str()) {
        return Err(("a wrong Sec-WebSocket-Accept".into(), exchange));
    }
    let tcp = match &stream {
        MaybeTlsStream::Plain(t) => t.inner.tcp(),
        MaybeTlsStream::Rustls(s) => s.get_ref().inner.tcp(),
        _ => return Err(("unsupported stream".into(), exchange)),
    };
    let _ = tcp.set_read_timeout(Some(TICK));
    Ok(Opened {
        socket: WebSocket::from_raw_socket(stream, Role::Client, None),
        subprotocol: field("sec-websocket-protocol"),
        exchange,
    })
}

/// The next text message, or `None` at the deadline or when the connection ends.
fn next_text(socket: &mut Socket, deadline: Instant) -> Option<String> {
    read_text(socket, deadline).ok().flatten()
}

/// The next text message, `Ok(None)` at the deadline, `Err(())` when the connection ended.
fn read_text(socket: &mut Socket, deadline: Instant) -> Result<Option<String>, ()> {
    read_until(socket, deadline);
    loop {
        if Instant::now() >= deadline {
            return Ok(None);
        }
        match socket.read() {
            Ok(Message::Text(t)) => return Ok(Some(t.to_string())),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Err(()),
        }
    }
}

fn run(env: &ProbeEnv, probe: &mut Probe<'_>, mechanism: Mechanism) -> Vec<Finding> {
    let m = Some(mechanism);
    let endpoint = env
        .caps
        .offer(mechanism)
        .expect("probes are made for offered mechanisms")
        .target
        .clone();
    let (subject, changes) = subject(env);
    let uri = uri_for(&endpoint, &subject);
    let mut out = Vec::new();
    let opened = match connect(env, &endpoint, true) {
        Ok(o) => {
            let ok = o
                .subprotocol
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(SUBPROTOCOL));
            let detail = match &o.subprotocol {
                Some(p) if ok => p.clone(),
                Some(p) => format!("the server chose {p:?}"),
                None => "the handshake answer has no Sec-WebSocket-Protocol".to_string(),
            };
            out.push(Finding::judge(
                Requirement::WsSubprotocol,
                m,
                ok,
                detail,
                Some(&o.exchange),
            ));
            o
        }
        Err((why, x)) if env.out_of_budget() => {
            out.push(super::cut_short(Requirement::WsSubprotocol, m, &why, &x));
            let why = "the budget ran out";
            out.push(Finding::skip(Requirement::SubscribeAck, m, why));
            out.push(Finding::skip(Requirement::ChangeDelivered, m, why));
            return out;
        }
        Err((why, x)) => {
            out.push(Finding::fail(Requirement::WsSubprotocol, m, why, Some(&x)));
            // Without the subprotocol, the rest can still be checked.
            match connect(env, &endpoint, false) {
                Ok(o) => o,
                Err((why, _)) => {
                    let why = format!("no connection: {why}");
                    out.push(Finding::skip(Requirement::SubscribeAck, m, why.clone()));
                    out.push(Finding::skip(Requirement::ChangeDelivered, m, why));
                    return out;
                }
            }
        }
    };
    let mut sub = Subscription {
        socket: opened.socket,
        mechanism,
        endpoint,
        subject,
        uri,
    };
    match sub.subscribe(env, changes) {
        Ok(text) => out.push(Finding::pass(Requirement::SubscribeAck, m, text)),
        Err(Unacked::Refused(why, exchange)) => {
            out.push(Finding::fail(
                Requirement::SubscribeAck,
                m,
                why.clone(),
                Some(&exchange),
            ));
            out.push(Finding::skip(
                Requirement::ChangeDelivered,
                m,
                format!("not subscribed: {why}"),
            ));
            sub.close();
            return out;
        }
        // Cut short by the budget, the silence proves nothing about the server.
        Err(Unacked::Silent(why, exchange)) if env.out_of_budget() => out.push(super::cut_short(
            Requirement::SubscribeAck,
            m,
            &why,
            &exchange,
        )),
        // The texts do not make a client wait for the ack: the change may still come.
        Err(Unacked::Silent(why, exchange)) => out.push(Finding::fail(
            Requirement::SubscribeAck,
            m,
            why,
            Some(&exchange),
        )),
    }
    probe.arm();
    if let Some(skip) = super::change_skip(env, mechanism) {
        out.push(skip);
        sub.close();
        return out;
    }
    let (arrived, pushed) = sub.wait_push(env);
    sub.close();
    out.push(match &arrived {
        Some((at, _)) => delivered(env, mechanism, "a push arrived", *at),
        None => not_delivered(
            env,
            mechanism,
            "no push arrived after the trigger".into(),
            Some(&sub.evidence(&pushed)),
        ),
    });
    if let Some((_, text)) = arrived {
        if mechanism == Mechanism::MultiplexWs && !changes {
            out.push(push_is_value(env, &sub, &text));
        }
    }
    out
}

/// Why a subscription was not acknowledged.
pub(super) enum Unacked {
    /// The server refused it: nothing will come.
    Refused(String, Exchange),
    /// No acknowledgement came (and no refusal).
    Silent(String, Exchange),
}

/// A subscription on an open socket: to the resource (or its changes link) at `subject`.
pub(super) struct Subscription {
    socket: Socket,
    mechanism: Mechanism,
    endpoint: Url,
    subject: Url,
    /// How the resource was named to the endpoint.
    uri: String,
}

impl Subscription {
    /// Connects (offering the subprotocol) and subscribes; for checks other than the
    /// handshake's.
    pub(super) fn open(env: &ProbeEnv, mechanism: Mechanism) -> Result<Subscription, String> {
        let endpoint = env
            .caps
            .offer(mechanism)
            .ok_or("not offered")?
            .target
            .clone();
        let (subject, changes) = subject(env);
        let uri = uri_for(&endpoint, &subject);
        let opened = connect(env, &endpoint, true).map_err(|(why, _)| why)?;
        let mut sub = Subscription {
            socket: opened.socket,
            mechanism,
            endpoint,
            subject,
            uri,
        };
        match sub.subscribe(env, changes) {
            Ok(_) | Err(Unacked::Silent(..)) => Ok(sub),
            Err(Unacked::Refused(why, _)) => Err(why),
        }
    }

    /// Sends the subscription and waits, bounded, for its acknowledgement.
    fn subscribe(&mut self, env: &ProbeEnv, changes: bool) -> Result<String, Unacked> {
        let request = if self.mechanism == Mechanism::MultiplexWs {
            ws_json::ClientMessage::Subscribe {
                id: "1".into(),
                mode: if changes {
                    ws_json::Mode::Changes
                } else {
                    ws_json::Mode::Value
                },
                uri: self.uri.clone(),
            }
            .encode()
        } else {
            socket::ClientMessage::Get(self.uri.clone()).encode()
        };
        let exchange = Exchange {
            request: format!("WebSocket message {}\n\n{request}", self.endpoint),
            response: None,
        };
        if self.socket.send(Message::text(request.clone())).is_err() {
            let x = exchange.with_text("(the connection failed)");
            return Err(Unacked::Refused(
                "the subscription could not be sent".into(),
                x,
            ));
        }
        let until = Instant::now() + env.bounded(ACK_TIMEOUT);
        let mut heard = Vec::new();
        let ack = loop {
            let Some(text) = next_text(&mut self.socket, until) else {
                break Err(if env.out_of_budget() {
                    "no acknowledgement yet".to_string()
                } else {
                    "no acknowledgement".to_string()
                });
            };
            heard.push(text.clone());
            if self.mechanism == Mechanism::MultiplexWs {
                match ws_json::ServerMessage::parse(&text) {
                    Ok(ws_json::ServerMessage::Subscribed { id }) if id == "1" => break Ok(text),
                    Ok(ws_json::ServerMessage::Error { code, message, .. }) => {
                        let x = exchange.with_text(heard.join("\n"));
                        return Err(Unacked::Refused(format!("refused: {code} {message}"), x));
                    }
                    _ => {}
                }
            } else {
                match socket::ServerMessage::parse(&text) {
                    Ok(socket::ServerMessage::Ack { uri: acked, .. })
                        if names(&self.endpoint, &acked, &self.subject) =>
                    {
                        break Ok(text)
                    }
                    Ok(socket::ServerMessage::Error { code, reason, .. }) => {
                        let x = exchange.with_text(heard.join("\n"));
                        return Err(Unacked::Refused(format!("refused: {code} {reason}"), x));
                    }
                    _ => {}
                }
            }
        };
        ack.map_err(|why| {
            let heard = if heard.is_empty() {
                "(nothing)".to_string()
            } else {
                heard.join("\n")
            };
            Unacked::Silent(why, exchange.with_text(heard))
        })
    }

    /// Waits for a push about the subject after the trigger started, until some time after
    /// it ran: when it arrived and its text, and every message read.
    pub(super) fn wait_push(&mut self, env: &ProbeEnv) -> (Option<(Instant, String)>, Vec<String>) {
        let mut pushed = Vec::new();
        loop {
            // The deadline moves once the trigger has run: looked at again every tick.
            let deadline = env.change_deadline().min(Instant::now() + TICK * 5);
            if Instant::now() >= env.change_deadline() {
                return (None, pushed);
            }
            let text = match read_text(&mut self.socket, deadline) {
                Ok(Some(text)) => text,
                Ok(None) => continue,
                Err(()) => return (None, pushed),
            };
            pushed.push(text.clone());
            let about = if self.mechanism == Mechanism::MultiplexWs {
                match ws_json::ServerMessage::parse(&text) {
                    Ok(ws_json::ServerMessage::Event { uri: pushed, .. }) => Some(pushed),
                    _ => None,
                }
            } else {
                match socket::ServerMessage::parse(&text) {
                    Ok(socket::ServerMessage::Update { uri: pushed, .. })
                    | Ok(socket::ServerMessage::Hint { uri: pushed }) => Some(pushed),
                    _ => None,
                }
            };
            if about.is_some_and(|p| names(&self.endpoint, &p, &self.subject))
                && env.trigger_started().is_some()
            {
                return (Some((Instant::now(), text)), pushed);
            }
        }
    }

    /// What was subscribed and what came, for evidence.
    pub(super) fn evidence(&self, pushed: &[String]) -> Exchange {
        Exchange {
            request: format!("(subscribed to {} on {})", self.uri, self.endpoint),
            response: Some(if pushed.is_empty() {
                "(no message)".into()
            } else {
                pushed.join("\n")
            }),
        }
    }

    pub(super) fn close(&mut self) {
        let _ = self.socket.close(None);
    }
}

/// A push to a `value` subscription carries the resource's value: its body is the same kind
/// of JSON value as the resource (a list stays a list), not one item of a collection.
fn push_is_value(env: &ProbeEnv, sub: &Subscription, text: &str) -> Finding {
    let m = Some(Mechanism::MultiplexWs);
    let Ok(ws_json::ServerMessage::Event { body, .. }) = ws_json::ServerMessage::parse(text) else {
        return Finding::skip(Requirement::PushIsValue, m, "the push is not an event");
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&env.first.body) else {
        return Finding::skip(Requirement::PushIsValue, m, "the resource is not JSON");
    };
    let kind = |v: &serde_json::Value| match v {
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
        serde_json::Value::Null => "null",
        _ => "a scalar",
    };
    let pushed = body;
    // A null or missing body means deleted: nothing to compare.
    if pushed.is_null() || kind(&pushed) == kind(&value) {
        return Finding::pass(
            Requirement::PushIsValue,
            m,
            format!("the push carries {}, as the resource is", kind(&value)),
        );
    }
    Finding::fail(
        Requirement::PushIsValue,
        m,
        format!(
            "a push to a subscription in mode \"value\" carries {}, while the resource is {}: one item, not the value",
            kind(&pushed),
            kind(&value)
        ),
        Some(&sub.evidence(&[text.to_string()])),
    )
}
