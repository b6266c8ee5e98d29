//! The WebSocket endpoints: `multiplex-ws` (form A, JSON messages) and `multiplex-socket`
//! (forms B and C, text messages), both negotiating the `liveresource` subprotocol.
//!
//! tungstenite's `WebSocket` cannot be read on one thread and written on another, yet a socket
//! must react both to its peer and to store changes without polling. So a small reader thread
//! only moves bytes from the socket into the connection's inbox, where store changes and cuts
//! arrive too; the socket thread sleeps on that one inbox and feeds the bytes to tungstenite
//! through an in-memory reader ([`Conn`]), writing straight to the socket.

use std::collections::{HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::handshake::server::{ErrorResponse, Request as WsRequest, Response as WsResponse};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use super::app::App;
use super::checks::allowed;
use super::dialect::{Form, RequestView, Shape};
use super::log::Tap;
use super::multiplex::{MuxFollow, MuxUpdate};
use super::race_hook::{self, Point};
use super::store::{Inbox, Subscription};
use super::streams::Lossy;
use crate::http1::{Reply, Request, Response};
use crate::wire::{socket, ws_json};

/// The subprotocol both endpoints speak.
pub(crate) const SUBPROTOCOL: &str = "liveresource";
/// The largest message accepted from a client.
const MAX_MESSAGE: usize = 64 * 1024;
/// Resources one socket may follow at once: a bound on what one client can make the server
/// hold (a few hundred bytes per follow), roomy enough for 10,000 over one socket
/// (BENCHMARKS.md measures that).
pub(crate) const MAX_FOLLOWS: usize = 16_384;
/// How long a closing socket waits for its peer's Close.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The socket as tungstenite sees it: reads come from bytes the reader thread delivered
/// (`WouldBlock` when there are none yet), writes go to the socket.
struct Conn {
    inbound: VecDeque<u8>,
    out: TcpStream,
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inbound.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.inbound.read(buf)?;
        Ok(n)
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Checks the upgrade before taking the connection over: a plain GET gets a readable 426.
fn check_upgrade(request: &Request) -> Result<(), Response> {
    if let Some(r) = allowed(request, "GET, OPTIONS") {
        return Err(r);
    }
    let upgrade = request.header_values("upgrade").any(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
    });
    if !upgrade {
        return Err(Response::error(
            426,
            "this is a WebSocket endpoint: connect with Upgrade: websocket and Sec-WebSocket-Protocol: liveresource",
        )
        .header("Upgrade", "websocket"));
    }
    let offered: Vec<String> = request
        .header_values("sec-websocket-protocol")
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    if !offered.is_empty() && !offered.iter().any(|p| p.eq_ignore_ascii_case(SUBPROTOCOL)) {
        return Err(Response::error(
            400,
            "this endpoint speaks the liveresource subprotocol only",
        ));
    }
    Ok(())
}

/// Which of the two message languages a socket speaks.
#[derive(Debug, Clone, Copy)]
enum Lang {
    /// `multiplex-ws`.
    Json,
    /// `multiplex-socket`, acking with `OK` (B) or `200` (C); pushing hints (`* /x`) instead
    /// of values when asked with `?push=hint`.
    Text(socket::AckStyle, bool),
}

/// `GET /multiplex/ws`.
pub(crate) fn multiplex_ws(app: &Arc<App>, _ctx: &RequestView, request: &Request) -> Reply {
    takeover(app, request, Lang::Json)
}

/// `GET /multiplex/socket`.
pub(crate) fn multiplex_socket(app: &Arc<App>, ctx: &RequestView, request: &Request) -> Reply {
    // Nothing in the handshake or the messages tells B from C (see `answer_form`).
    let style = match ctx.answer_form(Shape::BOrC) {
        Form::C => socket::AckStyle::Status,
        _ => socket::AckStyle::Ok,
    };
    let hints = match super::dialect::query_param(request, "push").as_deref() {
        None | Some("value") => false,
        Some("hint") => true,
        Some(other) => {
            return Response::error(400, &format!("push={other:?}: use push=value or push=hint"))
                .into()
        }
    };
    takeover(app, request, Lang::Text(style, hints))
}

fn takeover(app: &Arc<App>, request: &Request, lang: Lang) -> Reply {
    if let Err(r) = check_upgrade(request) {
        return r.into();
    }
    let app = Arc::clone(app);
    let head = request.raw_head.clone();
    Reply::Takeover(Box::new(move |stream, early| {
        let _ = run_socket(&app, stream, head, early, lang);
    }))
}

fn run_socket(
    app: &Arc<App>,
    stream: TcpStream,
    head: Vec<u8>,
    early: Vec<u8>,
    lang: Lang,
) -> io::Result<()> {
    let sub = app.store.hub().subscribe();
    let mut inbound: VecDeque<u8> = head.into();
    inbound.extend(early);
    let conn = Conn {
        inbound,
        out: stream.try_clone()?,
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let echo = !app.cfg.has(super::dialect::Fault::NoSubprotocol);
    // The callback type is tungstenite's (a large error variant included).
    #[allow(clippy::result_large_err)]
    let callback = move |req: &WsRequest, resp: WsResponse| {
        if echo {
            echo_subprotocol(req, resp)
        } else {
            Ok(resp)
        }
    };
    let Ok(mut ws) = tungstenite::accept_hdr_with_config(conn, callback, Some(config)) else {
        let _ = stream.shutdown(Shutdown::Both);
        return Ok(());
    };
    let Some(reader) = spawn_reader(stream.try_clone()?, Arc::clone(sub.inbox())) else {
        // No thread to read with: a socket that cannot hear its peer is no use.
        let _ = stream.shutdown(Shutdown::Both);
        return Ok(());
    };
    let mut session = Session {
        tap: app.cfg.log.tap(stream.peer_addr().ok()),
        app: Arc::clone(app),
        lang,
        follows: Vec::new(),
        keys: HashSet::new(),
        lossy: Lossy::new(&app.cfg, false),
    };
    let result = session.serve(&mut ws, &sub);
    let _ = stream.shutdown(Shutdown::Both);
    drop(sub);
    let _ = reader.join();
    result
}

/// Echoes `liveresource` when the client offers it (tungstenite's client, among others, refuses
/// an answer that drops an offered subprotocol); other offers were refused before the takeover.
// The signature is tungstenite's callback type.
#[allow(clippy::result_large_err, clippy::unnecessary_wraps)]
fn echo_subprotocol(req: &WsRequest, mut resp: WsResponse) -> Result<WsResponse, ErrorResponse> {
    let offered = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(SUBPROTOCOL));
    if offered {
        resp.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            tungstenite::http::HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    Ok(resp)
}

/// Moves bytes from the socket into the inbox until the peer closes or the socket is shut down.
fn spawn_reader(mut stream: TcpStream, inbox: Arc<Inbox>) -> Option<std::thread::JoinHandle<()>> {
    let _ = stream.set_read_timeout(None);
    std::thread::Builder::new()
        .name("lrwatch-ws-read".into())
        // It only copies bytes: a small stack keeps thousands of sockets cheap.
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        inbox.push_eof();
                        return;
                    }
                    Ok(n) => inbox.push_bytes(&buf[..n]),
                }
            }
        })
        .ok()
}

struct Session {
    app: Arc<App>,
    lang: Lang,
    follows: Vec<MuxFollow>,
    keys: HashSet<String>,
    lossy: Lossy,
    /// The request log's view of this socket: messages in and out.
    tap: Tap,
}

fn is_would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if matches!(io.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
}

impl Session {
    fn serve(&mut self, ws: &mut WebSocket<Conn>, sub: &Subscription) -> io::Result<()> {
        let cfg = self.app.cfg.clone();
        let cut_at = cfg.cut_after.map(|d| Instant::now() + d);
        let mut closing: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if let Some(since) = closing {
                if now >= since + CLOSE_GRACE {
                    return Ok(());
                }
            } else if cut_at.is_some_and(|c| now >= c) {
                closing = Some(now);
                let _ = ws.close(None);
                let _ = ws.flush();
                continue;
            }
            let mut deadline = now + cfg.keepalive;
            if let Some(c) = cut_at.filter(|_| closing.is_none()) {
                deadline = deadline.min(c);
            }
            if let Some(since) = closing {
                deadline = deadline.min(since + CLOSE_GRACE);
            }
            let woke = sub.wait(deadline);
            if woke.cut && closing.is_none() {
                closing = Some(Instant::now());
                let _ = ws.close(None);
                let _ = ws.flush();
            }
            // Changes first: a client that changes a resource and then pings knows, once it has
            // the pong, that the change's push (if any) came before it.
            if closing.is_none() && !woke.changed.is_empty() {
                self.push(ws, &woke.changed);
            }
            if !woke.bytes.is_empty() {
                ws.get_mut().inbound.extend(woke.bytes);
                loop {
                    match ws.read() {
                        Ok(message) => {
                            if closing.is_none() {
                                self.on_message(ws, message)?;
                            }
                        }
                        Err(e) if is_would_block(&e) => break,
                        // Closed (by either side, handshake complete) or broken.
                        Err(_) => return Ok(()),
                    }
                }
                // What a new follow holds was read before its key was subscribed: look again
                // now that it is, so a change in between is pushed rather than lost.
                let added = self.sync_keys(sub);
                if closing.is_none() && !added.is_empty() {
                    self.push(ws, &added);
                }
            }
            if woke.eof {
                return Ok(());
            }
            let idle = woke.changed.is_empty() && !woke.cut && Instant::now() >= deadline;
            if idle && closing.is_none() && cut_at.is_none_or(|c| Instant::now() < c) {
                // A ping makes a dead peer show up as a failed write.
                let _ = ws.write(Message::Ping(Vec::new().into()));
            }
            if ws.flush().is_err() && closing.is_none() {
                return Ok(());
            }
        }
    }

    fn send(&self, ws: &mut WebSocket<Conn>, text: String) {
        self.tap.message_out(&text);
        let _ = ws.write(Message::text(text));
    }

    fn on_message(&mut self, ws: &mut WebSocket<Conn>, message: Message) -> io::Result<()> {
        let text = match message {
            Message::Text(t) => t.to_string(),
            Message::Binary(b) => {
                self.tap.message_in(&format!("(binary, {} bytes)", b.len()));
                let reply = self.refuse(None, "*", 400, "only text messages are understood");
                self.send(ws, reply);
                return Ok(());
            }
            // Pings are answered by tungstenite; a Close is answered on the next flush.
            _ => return Ok(()),
        };
        self.tap.message_in(&text);
        let reply = match self.lang {
            Lang::Json => self.on_json(&text),
            Lang::Text(style, _) => self.on_text(&text, style),
        };
        self.send(ws, reply);
        // Catch-up for a changes URI subscribed from a checkpoint (values were pre-read).
        self.push(ws, &[super::store::ITEMS.to_owned()]);
        Ok(())
    }

    fn refuse(&self, id: Option<String>, uri: &str, code: u16, reason: &str) -> String {
        match self.lang {
            Lang::Json => ws_json::ServerMessage::Error {
                id,
                code,
                message: reason.to_owned(),
            }
            .encode(),
            Lang::Text(..) => socket::ServerMessage::Error {
                uri: uri.to_owned(),
                code,
                reason: reason.to_owned(),
            }
            .encode(),
        }
    }

    /// Starts following `uri`; `Err` is the status and reason to refuse with.
    fn follow(&mut self, uri: &str) -> Result<(), (u16, String)> {
        if self.follows.iter().any(|f| f.uri == uri) {
            return Ok(());
        }
        if self.follows.len() >= MAX_FOLLOWS {
            return Err((400, format!("at most {MAX_FOLLOWS} resources per socket")));
        }
        let mut follow = MuxFollow::new(&self.app.store, uri, None)?;
        // The client fetches each resource after subscribing; from now on only changes. A
        // changes URI names its own checkpoint: what came after it is pushed after the ack.
        if follow.is_value() {
            let _ = follow.poll(&self.app.store);
            race_hook::reached(Point::Followed, follow.key());
        }
        self.follows.push(follow);
        Ok(())
    }

    fn unfollow(&mut self, uri: &str) -> bool {
        let before = self.follows.len();
        self.follows.retain(|f| f.uri != uri);
        before != self.follows.len()
    }

    fn on_json(&mut self, text: &str) -> String {
        use ws_json::{ClientMessage, ServerMessage};
        match ClientMessage::parse(text) {
            Err(e) => self.refuse(e.id, "*", 400, &e.message),
            Ok(ClientMessage::Ping { id }) => ServerMessage::Pong { id }.encode(),
            Ok(ClientMessage::Subscribe { id, mode, uri }) => {
                let is_changes = matches!(
                    super::multiplex::resolve(&self.app.store, &uri),
                    Ok(super::multiplex::Resolved::Changes(_))
                );
                if is_changes != (mode == ws_json::Mode::Changes) {
                    return self.refuse(
                        Some(id),
                        &uri,
                        400,
                        "mode \"changes\" is for the collection /items/, \"value\" for objects",
                    );
                }
                match self.follow(&uri) {
                    Ok(()) => ServerMessage::Subscribed { id }.encode(),
                    Err((code, reason)) => self.refuse(Some(id), &uri, code, &reason),
                }
            }
            Ok(ClientMessage::Unsubscribe { id, uri, .. }) => {
                if self.unfollow(&uri) {
                    ServerMessage::Unsubscribed { id }.encode()
                } else {
                    self.refuse(Some(id), &uri, 404, "not subscribed to this URI")
                }
            }
        }
    }

    fn on_text(&mut self, text: &str, style: socket::AckStyle) -> String {
        use socket::{ClientMessage, ServerMessage};
        match ClientMessage::parse(text) {
            Err(e) => self.refuse(None, "*", 400, &e.0),
            Ok(ClientMessage::Get(uri)) => match self.follow(&uri) {
                Ok(()) => ServerMessage::Ack { uri, style }.encode(),
                Err((code, reason)) => self.refuse(None, &uri, code, &reason),
            },
            Ok(ClientMessage::Cancel(uri)) => {
                if self.unfollow(&uri) {
                    ServerMessage::Ack { uri, style }.encode()
                } else {
                    self.refuse(None, &uri, 404, "not subscribed to this URI")
                }
            }
        }
    }

    fn push(&mut self, ws: &mut WebSocket<Conn>, changed: &[String]) {
        let store = Arc::clone(&self.app.store);
        let mut out = Vec::new();
        for f in &mut self.follows {
            if !changed.iter().any(|k| k == f.key()) {
                continue;
            }
            if let Some(update) = f.poll(&store) {
                out.push(update);
            }
        }
        for update in out {
            if self.lossy.skip() {
                continue;
            }
            let text = self.encode_update(&update);
            self.send(ws, text);
        }
    }

    fn encode_update(&self, update: &MuxUpdate) -> String {
        match self.lang {
            Lang::Json => {
                let ctx_a = super::dialect::RequestView::plain(Some(Form::A));
                let member = super::multiplex::member(&ctx_a, Form::A, update);
                ws_json::ServerMessage::Event {
                    uri: update.uri().to_owned(),
                    headers: member.headers,
                    body: member.body,
                }
                .encode()
            }
            Lang::Text(_, true) => socket::ServerMessage::Hint {
                uri: update.uri().to_owned(),
            }
            .encode(),
            Lang::Text(style, false) => {
                let form = match style {
                    socket::AckStyle::Ok => Form::B,
                    socket::AckStyle::Status => Form::C,
                };
                let ctx = super::dialect::RequestView::plain(Some(form));
                let (mut headers, content) = match update {
                    MuxUpdate::Value { snap, previous, .. } => (
                        vec![
                            ("ETag".to_owned(), snap.etag.clone()),
                            ("Previous-ETag".to_owned(), previous.clone()),
                        ],
                        snap.value.clone().unwrap_or_default(),
                    ),
                    MuxUpdate::Changes { .. } => {
                        let member = super::multiplex::member(&ctx, form, update);
                        let content = member.body.as_str().unwrap_or_default().to_owned();
                        (member.headers, content)
                    }
                    MuxUpdate::Expired { uri } => {
                        return socket::ServerMessage::Error {
                            uri: uri.clone(),
                            code: 404,
                            reason: "the checkpoint expired: read the collection again".into(),
                        }
                        .encode()
                    }
                };
                if matches!(update, MuxUpdate::Value { snap, .. } if snap.value.is_some()) {
                    headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
                }
                socket::ServerMessage::Update {
                    uri: update.uri().to_owned(),
                    headers,
                    content,
                }
                .encode()
            }
        }
    }
}

impl Session {
    /// Keeps the hub's view of this socket's keys in step with its follows; returns the keys
    /// it began to follow.
    fn sync_keys(&mut self, sub: &Subscription) -> Vec<String> {
        let wanted: HashSet<String> = self.follows.iter().map(|f| f.key().to_owned()).collect();
        for key in self.keys.difference(&wanted) {
            sub.remove(key);
        }
        let added: Vec<String> = wanted.difference(&self.keys).cloned().collect();
        for key in &added {
            sub.add(key);
        }
        self.keys = wanted;
        added
    }
}
