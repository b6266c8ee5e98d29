//! The WebSocket hubs: `multiplex-ws` (form A, JSON messages with ids) and `multiplex-socket`
//! (forms B and C, text messages), both offering the `liveresource` subprotocol. One connection
//! per endpoint; a read timeout makes a tick in which new subscriptions are sent, keep-alive
//! pings go out, and a silent peer is noticed.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use url::Url;

use super::hub::{HubEvent, HubInput, Members};
use super::{Push, Shared};
use crate::backoff::Backoff;
use crate::mechanism::Mechanism;
use crate::wire::multiplex::{self, Target};
use crate::wire::{socket, ws_json};

/// How often the connection loop wakes while nothing arrives and resources are joining or
/// leaving: a resource joining an open socket waits for a tick at most (resources found together
/// subscribe at connect).
const TICK: Duration = Duration::from_secs(1);
/// How often it wakes once nobody has joined or left for `SETTLED`: an idle socket's cost is
/// its wake-ups (one a second was 3.7–6 ms of CPU a minute, BENCHMARKS.md).
const QUIET_TICK: Duration = Duration::from_secs(4);
/// How long after the last join or leave a socket counts as settled.
const SETTLED: Duration = Duration::from_secs(10);

/// The tick for a connection whose membership last changed `since` ago: never longer than the
/// keep-alive or `--verify` periods, which it times.
fn tick(shared: &Shared, since: Duration) -> Duration {
    let tick = if since < SETTLED { TICK } else { QUIET_TICK };
    let tick = tick.min(shared.options.keepalive);
    match shared.options.verify {
        Some(period) => tick.min(period.max(Duration::from_millis(10))),
        None => tick,
    }
}
// Keep-alive pings go out every `Options::keepalive`; two unanswered, and then some, and the
// peer is presumed dead (`Options::socket_dead_after`).
/// Time allowed to connect and finish the opening handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Socket = WebSocket<MaybeTlsStream<crate::proxy::Stream>>;

/// The two message languages.
enum Language {
    /// `multiplex-ws`: JSON, requests carry ids that replies echo.
    Json {
        next_id: u64,
        ids: HashMap<String, String>,
    },
    /// `multiplex-socket`: text lines.
    Text,
}

/// Something the server said, routed by resource.
enum Heard {
    Ack(String),
    Refused(Option<String>, String),
    Push(String, Push),
    Hint(String),
    Nothing,
}

impl Language {
    fn subscribe(&mut self, uri: &str, changes: bool) -> String {
        match self {
            Language::Json { next_id, ids } => {
                *next_id += 1;
                let id = next_id.to_string();
                ids.insert(id.clone(), uri.to_string());
                ws_json::ClientMessage::Subscribe {
                    id,
                    mode: mode(changes),
                    uri: uri.to_string(),
                }
                .encode()
            }
            Language::Text => socket::ClientMessage::Get(uri.to_string()).encode(),
        }
    }

    fn unsubscribe(&mut self, uri: &str, changes: bool) -> String {
        match self {
            Language::Json { next_id, .. } => {
                *next_id += 1;
                ws_json::ClientMessage::Unsubscribe {
                    id: next_id.to_string(),
                    mode: mode(changes),
                    uri: uri.to_string(),
                }
                .encode()
            }
            Language::Text => socket::ClientMessage::Cancel(uri.to_string()).encode(),
        }
    }

    /// A keep-alive in the language, where it has one (JSON `ping`); else a WebSocket ping.
    fn ping(&mut self) -> Message {
        match self {
            Language::Json { next_id, .. } => {
                *next_id += 1;
                Message::text(
                    ws_json::ClientMessage::Ping {
                        id: next_id.to_string(),
                    }
                    .encode(),
                )
            }
            Language::Text => Message::Ping(Vec::new().into()),
        }
    }

    fn hear(&mut self, text: &str) -> Heard {
        match self {
            Language::Json { ids, .. } => match ws_json::ServerMessage::parse(text) {
                Ok(ws_json::ServerMessage::Subscribed { id }) => {
                    ids.get(&id).cloned().map_or(Heard::Nothing, Heard::Ack)
                }
                Ok(ws_json::ServerMessage::Error { id, code, message }) => Heard::Refused(
                    id.and_then(|id| ids.get(&id).cloned()),
                    format!("{code} {message}"),
                ),
                Ok(ws_json::ServerMessage::Event { uri, headers, body }) => {
                    let etag = header(&headers, "ETag");
                    let body = (!body.is_null()).then(|| {
                        (
                            body.to_string().into_bytes(),
                            Some("application/json".to_string()),
                        )
                    });
                    Heard::Push(
                        uri,
                        Push {
                            etag,
                            previous_etag: header(&headers, "Previous-ETag"),
                            body,
                            headers,
                        },
                    )
                }
                Ok(_) => Heard::Nothing,
                Err(e) => Heard::Refused(None, format!("unreadable message: {e}")),
            },
            Language::Text => match socket::ServerMessage::parse(text) {
                Ok(socket::ServerMessage::Ack { uri, .. }) => Heard::Ack(uri),
                Ok(socket::ServerMessage::Error { uri, code, reason }) => {
                    Heard::Refused(Some(uri), format!("{code} {reason}"))
                }
                Ok(socket::ServerMessage::Update {
                    uri,
                    headers,
                    content,
                }) => {
                    let etag = header(&headers, "ETag");
                    // A deletion is an update with no content and no Content-Type.
                    let content_type = header(&headers, "Content-Type");
                    let deleted = content.is_empty() && content_type.is_none();
                    let body = (!deleted).then(|| (content.into_bytes(), content_type));
                    Heard::Push(
                        uri,
                        Push {
                            etag,
                            previous_etag: header(&headers, "Previous-ETag"),
                            body,
                            headers,
                        },
                    )
                }
                Ok(socket::ServerMessage::Hint { uri }) => Heard::Hint(uri),
                Err(e) => Heard::Refused(None, format!("unreadable message: {e}")),
            },
        }
    }
}

fn mode(changes: bool) -> ws_json::Mode {
    if changes {
        ws_json::Mode::Changes
    } else {
        ws_json::Mode::Value
    }
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// Runs the hub for `endpoint` (an http(s) URL) until following stops. `myself` feeds the
/// hub's checking threads' findings back in.
pub(super) fn run(
    shared: &Shared,
    mechanism: Mechanism,
    endpoint: &Url,
    input: &Receiver<HubInput>,
    myself: &Sender<HubInput>,
) {
    let mut members = Members::new(endpoint);
    let mut backoff = Backoff::default();
    let mut failures = 0u32;
    loop {
        if shared.shutdown.is_set() {
            return;
        }
        // Nobody to follow yet (or any more): wait for a subscriber before connecting.
        if members.by_url.is_empty() {
            match input.recv() {
                Ok(HubInput::Subscribe(sub)) => {
                    members.add(sub);
                }
                Ok(_) => continue,
                Err(_) => return,
            }
        }
        let mut language = match mechanism {
            Mechanism::MultiplexWs => Language::Json {
                next_id: 0,
                ids: HashMap::new(),
            },
            _ => Language::Text,
        };
        let mut was_up = false;
        let reason = match connect(shared, endpoint, &mut members) {
            Ok(mut ws) => {
                let opened = Instant::now();
                let mut delivered = false;
                let reason = serve(
                    shared,
                    &mut ws,
                    &mut language,
                    &mut members,
                    input,
                    myself,
                    &mut delivered,
                );
                let _ = ws.close(None);
                let Some(reason) = reason else {
                    return;
                };
                // A connection that delivered something (acks and pongs are not enough), or
                // stayed up a keep-alive period (a quiet resource pushes nothing), worked:
                // what fails from here on is a new run of failures, retried soon. One that
                // ends before, a server closing right after each subscribe, is one more
                // failure: a growing backoff and, in auto, a fall back after three.
                if delivered || opened.elapsed() >= shared.options.keepalive {
                    was_up = true;
                    failures = 0;
                    backoff.reset();
                    reason
                } else {
                    format!("{reason} before pushing anything")
                }
            }
            Err(reason) => reason,
        };
        failures += 1;
        members.broadcast(|| HubEvent::Down {
            reason: reason.clone(),
            failures,
        });
        // A connection that worked and dropped is tried again soon (jittered, so many clients
        // do not return at once); failures to connect back off exponentially.
        let delay = if was_up {
            RECONNECT_SOON + RECONNECT_SOON.mul_f64(fastrand::f64())
        } else {
            backoff.next_delay()
        };
        if !shared.shutdown.sleep(delay) {
            return;
        }
    }
}

/// The delay before reconnecting a connection that dropped after working (see `run`): 50 to
/// 100 ms.
const RECONNECT_SOON: Duration = Duration::from_millis(50);

/// Opens the WebSocket with the `liveresource` subprotocol: through the proxy HTTP requests to
/// the endpoint would take, if any (said once, to one member's trace).
fn connect(shared: &Shared, endpoint: &Url, members: &mut Members) -> Result<Socket, String> {
    let mut ws_url = endpoint.clone();
    let scheme = if endpoint.scheme() == "https" {
        "wss"
    } else {
        "ws"
    };
    let _ = ws_url.set_scheme(scheme);
    let mut request = ws_url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("bad WebSocket URL: {e}"))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        tungstenite::http::HeaderValue::from_static("liveresource"),
    );
    // User headers go along only when the endpoint shares its origin with the resources.
    {
        let origin = members.on_behalf_of();
        add_headers(&mut request, shared.http.headers_for(endpoint, &origin));
    }
    let route = crate::proxy::Route::to(endpoint);
    if !matches!(route, crate::proxy::Route::Direct) {
        if let Some(first) = members.by_url.keys().next().cloned() {
            members.send(
                &first,
                HubEvent::Trace(format!("connecting to {ws_url} {route}")),
            );
        }
    }
    let stream = crate::proxy::connect(endpoint, &route, CONNECT_TIMEOUT, &shared.tls)?;
    let tcp = stream.tcp();
    let _ = tcp.set_nodelay(true);
    // Writes wait as long as they take, as before: the read timeout makes the tick.
    tcp.set_write_timeout(None).map_err(|e| e.to_string())?;
    let stream = crate::proxy::secure(&ws_url, stream, &shared.tls)?;
    let (ws, _) = tungstenite::client::client_with_config(request, stream, Some(ws_config(shared)))
        .map_err(|e| match e {
            tungstenite::HandshakeError::Interrupted(_) => {
                "the WebSocket handshake timed out".to_string()
            }
            tungstenite::HandshakeError::Failure(e) => {
                format!("the WebSocket handshake failed: {e}")
            }
        })?;
    set_read_timeout(&ws, tick(shared, Duration::ZERO))?;
    Ok(ws)
}

/// Message and frame sizes bounded by `--max-body`.
fn ws_config(shared: &Shared) -> tungstenite::protocol::WebSocketConfig {
    let max = usize::try_from(shared.options.max_body).unwrap_or(usize::MAX);
    tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// Bounds each read of a socket, plain or TLS.
pub(super) fn set_read_timeout(ws: &Socket, timeout: Duration) -> Result<(), String> {
    let tcp = match ws.get_ref() {
        MaybeTlsStream::Plain(stream) => stream.tcp(),
        MaybeTlsStream::Rustls(tls) => tls.get_ref().tcp(),
        _ => return Ok(()),
    };
    tcp.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())
}

/// Subscribes everyone and relays messages until the connection ends (why), or following
/// stops (`None`); `delivered` is set once a push or hint arrives.
fn serve(
    shared: &Shared,
    ws: &mut Socket,
    language: &mut Language,
    members: &mut Members,
    input: &Receiver<HubInput>,
    myself: &Sender<HubInput>,
    delivered: &mut bool,
) -> Option<String> {
    let names: Vec<(String, bool)> = members
        .by_url
        .values()
        .map(|m| (m.name.clone(), m.changes))
        .collect();
    for (uri, changes) in names {
        if let Err(e) = ws.send(Message::text(language.subscribe(&uri, changes))) {
            return Some(format!("cannot subscribe: {e}"));
        }
    }
    let connected = Instant::now();
    let mut last_heard = connected;
    let mut last_ping = connected;
    let mut last_verify = connected;
    // When a resource last joined or left, and the read timeout that makes the tick now.
    let mut last_change = connected;
    let mut current_tick = tick(shared, Duration::ZERO);
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => {
                last_heard = Instant::now();
                match language.hear(text.as_str()) {
                    Heard::Ack(uri) => route(members, &uri, || HubEvent::Connected),
                    Heard::Push(uri, push) => {
                        *delivered = true;
                        if let Some(key) = members.key_for(&uri) {
                            if let Some(m) = members.by_url.get_mut(&key) {
                                if push.etag.is_some() {
                                    m.etag.clone_from(&push.etag);
                                }
                            }
                            members.send(&key, HubEvent::Push(Box::new(push)));
                        }
                    }
                    Heard::Hint(uri) => {
                        *delivered = true;
                        route(members, &uri, || HubEvent::Hint)
                    }
                    Heard::Refused(Some(uri), why) => {
                        route(members, &uri, || HubEvent::Refused(why.clone()))
                    }
                    Heard::Refused(None, _) | Heard::Nothing => {}
                }
            }
            Ok(Message::Close(_)) => return Some("the server closed the WebSocket".to_string()),
            Ok(_) => last_heard = Instant::now(),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if shared.shutdown.is_set() {
                    return None;
                }
                match take_input(ws, language, members, input, connected) {
                    Err(why) => return Some(why),
                    Ok(true) => last_change = Instant::now(),
                    Ok(false) => {}
                }
                let wanted = tick(shared, last_change.elapsed());
                if wanted != current_tick {
                    current_tick = wanted;
                    if let Err(why) = set_read_timeout(ws, wanted) {
                        return Some(why);
                    }
                }
                // The safety net: every member checks its resource each `--verify` period
                // (at the tick's resolution).
                if let Some(period) = shared.options.verify {
                    if last_verify.elapsed() >= period {
                        last_verify = Instant::now();
                        verify_members(shared, members, myself);
                    }
                }
                let dead_after = shared.options.socket_dead_after();
                if last_heard.elapsed() > dead_after {
                    return Some(format!(
                        "the WebSocket was silent for {:.1}s",
                        dead_after.as_secs_f64()
                    ));
                }
                if last_ping.elapsed() > shared.options.keepalive {
                    last_ping = Instant::now();
                    if let Err(e) = ws.send(language.ping()) {
                        return Some(format!("the WebSocket broke ({e})"));
                    }
                }
            }
            // A message over the body limit: reconnecting would only read it again.
            Err(tungstenite::Error::Capacity(e)) => {
                let why = format!("a WebSocket message is too large for the body size limit ({e})");
                members.broadcast(|| HubEvent::TooLarge(why.clone()));
                return Some(why);
            }
            Err(e) => return Some(format!("the WebSocket broke ({e})")),
        }
    }
}

/// New subscribers and leavers, between reads; whether anyone joined or left.
fn take_input(
    ws: &mut Socket,
    language: &mut Language,
    members: &mut Members,
    input: &Receiver<HubInput>,
    connected: Instant,
) -> Result<bool, String> {
    let mut changed = false;
    loop {
        match input.try_recv() {
            Ok(HubInput::Reconnect(checked)) if checked > connected => {
                return Err("a check found a push the server did not send".to_string());
            }
            Ok(HubInput::Checked {
                endpoint,
                asked,
                suspects,
            }) => {
                // Said once, to one member's trace: it is about the connection.
                if let Some(first) = members.by_url.keys().next().cloned() {
                    members.send(
                        &first,
                        HubEvent::Trace(format!(
                            "checked {asked} resources together at {endpoint}: {} to check alone",
                            suspects.len()
                        )),
                    );
                }
                for name in suspects {
                    route(members, &name, || HubEvent::Verify);
                }
            }
            Ok(HubInput::Subscribe(sub)) => {
                let (uri, changes) = (sub.name.clone(), sub.changes);
                members.add(sub);
                changed = true;
                ws.send(Message::text(language.subscribe(&uri, changes)))
                    .map_err(|e| format!("cannot subscribe: {e}"))?;
            }
            Ok(HubInput::Unsubscribe(url)) => {
                if let Some(member) = members.remove(url.as_str()) {
                    changed = true;
                    ws.send(Message::text(
                        language.unsubscribe(&member.name, member.changes),
                    ))
                    .map_err(|e| format!("cannot unsubscribe: {e}"))?;
                }
            }
            Ok(_) => {}
            Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => return Ok(changed),
        }
    }
}

/// The safety net (`--verify`) for every member: those whose resources offer a multiplexed
/// long-poll are checked together, one request per such endpoint made on a thread of its own
/// (answered at once: no `Wait`), and only those it finds changed (or cannot check) check
/// themselves; the others each make their own conditional GET. 10,000 resources over one
/// socket cost one request a period, not 10,000, where the server allows it.
fn verify_members(shared: &Shared, members: &mut Members, myself: &Sender<HubInput>) {
    let mut together: HashMap<(Url, String), Vec<Target>> = HashMap::new();
    let mut alone = Vec::new();
    for (key, member) in &members.by_url {
        match &member.check {
            Some(check) if member.etag.is_some() => {
                together.entry(check.clone()).or_default().push(Target {
                    uri: member.name.clone(),
                    if_none_match: member.etag.clone(),
                });
            }
            _ => alone.push(key.clone()),
        }
    }
    for key in alone {
        members.send(&key, HubEvent::Verify);
    }
    let origin = members.on_behalf_of();
    for ((endpoint, rel), targets) in together {
        let (http, myself, origin) = (shared.http.clone(), myself.clone(), origin.clone());
        let names: Vec<String> = targets.iter().map(|t| t.uri.clone()).collect();
        let spawned = std::thread::Builder::new()
            .name(format!("check {endpoint}"))
            .stack_size(super::FOLLOWER_STACK)
            .spawn(move || {
                let suspects = check_together(&http, &endpoint, &rel, &targets, &origin);
                let _ = myself.send(HubInput::Checked {
                    endpoint,
                    asked: targets.len(),
                    suspects,
                });
            });
        if spawned.is_err() {
            for name in names {
                route(members, &name, || HubEvent::Verify);
            }
        }
    }
}

/// One multiplexed request for `targets` without a wait: the names it answers as changed, or
/// every name when it cannot tell.
fn check_together(
    http: &crate::http::HttpClient,
    endpoint: &Url,
    rel: &str,
    targets: &[Target],
    origin: &Url,
) -> Vec<String> {
    let everyone = || targets.iter().map(|t| t.uri.clone()).collect();
    let mut url = endpoint.clone();
    if rel != "multiplex-request" {
        super::hub::set_targets(&mut url, targets);
    }
    let headers: Vec<(&str, String)> = targets
        .iter()
        .map(|t| ("Uri", multiplex::encode_uri_header(t)))
        .collect();
    match http.get(&url, origin, &headers, super::REQUEST_TIMEOUT) {
        Ok(response) if response.status == 304 => Vec::new(),
        Ok(response) if response.status == 200 => {
            match multiplex::parse_answer(&String::from_utf8_lossy(&response.body)) {
                Ok(answer) => answer
                    .into_iter()
                    .filter(|(_, member)| member.code != 304)
                    .map(|(name, _)| name)
                    .collect(),
                Err(_) => everyone(),
            }
        }
        _ => everyone(),
    }
}

fn route(members: &mut Members, uri: &str, event: impl Fn() -> HubEvent) {
    if let Some(key) = members.key_for(uri) {
        members.send(&key, event());
    }
}

/// Puts the user's headers on a WebSocket handshake (ureq and tungstenite share the `http`
/// crate's types).
pub(super) fn add_headers(
    request: &mut tungstenite::handshake::client::Request,
    headers: &[(ureq::http::HeaderName, ureq::http::HeaderValue)],
) {
    for (name, value) in headers {
        request.headers_mut().insert(name.clone(), value.clone());
    }
}
