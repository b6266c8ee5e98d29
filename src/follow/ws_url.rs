//! A `ws://` or `wss://` URL given directly: each text message is one event (JSON when it
//! parses), each binary message one event with its bytes. Nothing is sent but what the user
//! gives (`--send`, after each connect), pings are answered, a silent socket is noticed, and a
//! socket that closes or breaks is reconnected with a backoff.

use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::live_url::emit;
use super::{Ctx, RequestOutcome};
use crate::event::{Body, EventKind, Live};
use crate::mechanism::Mechanism;

const SELF: Mechanism = Mechanism::WebSocket;
/// Time allowed to connect and complete the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How soon a socket that delivered messages is reconnected after it closes.
const AGAIN_AFTER: Duration = Duration::from_millis(500);

type Socket = WebSocket<MaybeTlsStream<crate::proxy::Stream>>;

/// Follows the WebSocket URL until following stops or fails.
pub(super) fn run(mut ctx: Ctx) {
    ctx.enter(SELF);
    let mut connected_once = false;
    // The last connection that delivered messages ended in trouble before it had stayed open
    // a keep-alive period: the next one's messages do not count as it working until it has
    // (see `serve`).
    let mut probation = false;
    loop {
        if !ctx.running() {
            return;
        }
        ctx.trace(format!("connecting to {}", ctx.url));
        let mut ws = match connect(&ctx) {
            Ok(ws) => ws,
            // The first connect failing is fatal, as a first GET that gets no answer is: the
            // URL is probably wrong. Later, the server may be restarting.
            Err(Failed::Unreachable(e)) if !connected_once => {
                let url = ctx.url.clone();
                ctx.fail(crate::http::io_failure(e).into_error(&url));
                return;
            }
            Err(Failed::Other(why)) if !connected_once => {
                let url = ctx.url.to_string();
                ctx.fail(crate::Error::Refused {
                    url,
                    transport: SELF.to_string(),
                    reason: why,
                });
                return;
            }
            Err(failed) => {
                let why = failed.to_string();
                if let RequestOutcome::Stop = ctx.retry_later(&why) {
                    return;
                }
                continue;
            }
        };
        connected_once = true;
        ctx.trace("WebSocket open".to_string());
        let ended = serve(&mut ctx, &mut ws, probation);
        let _ = ws.close(None);
        let Some(ended) = ended else {
            return;
        };
        if ended.messages > 0 && !ended.error {
            // A normal close ends probation only from a connection that stayed open a
            // keep-alive period: a server alternating a message and 1011 with a message and a
            // normal close had the backoff start over, and a stderr line, every other time.
            if !probation || ended.lived >= ctx.options.keepalive {
                probation = false;
                ctx.succeeded();
            }
            ctx.trace(format!(
                "{}; reconnecting in {:.1}s",
                ended.why,
                AGAIN_AFTER.as_secs_f64()
            ));
            if !ctx.sleep(AGAIN_AFTER) {
                return;
            }
            continue;
        }
        // Trouble. A connection that delivered messages worked only if it stayed open a
        // keep-alive period; else the backoff goes on growing from where it was and the next
        // connection is on probation. Why: a server that sent a message and then closed with
        // 1011 (or dropped the connection), every time, was reconnected every 0.25-0.5 s
        // forever with a stderr line each time, each message having started the backoff and
        // its "N more times" over.
        if ended.messages > 0 {
            let stayed = ended.lived >= ctx.options.keepalive;
            probation = !stayed;
            if stayed {
                // Said by `serve` already, mostly: then this changes nothing.
                ctx.succeeded();
            }
        }
        if let RequestOutcome::Stop = ctx.retry_later(&ended.why) {
            return;
        }
    }
}

/// How a connection ended.
struct Ended {
    why: String,
    /// Messages received over it.
    messages: u64,
    /// Whether it ended in trouble (an error close code, a break, silence) rather than a
    /// normal close.
    error: bool,
    /// How long it was open.
    lived: Duration,
}

/// Why a connect failed.
enum Failed {
    /// No connection: the name does not resolve, nothing listens, no route.
    Unreachable(std::io::Error),
    /// Connected, but no WebSocket: a refused or failed handshake.
    Other(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Unreachable(e) => write!(f, "cannot connect: {e}"),
            Failed::Other(why) => f.write_str(why),
        }
    }
}

impl From<String> for Failed {
    fn from(why: String) -> Failed {
        Failed::Other(why)
    }
}

/// Opens the socket: the user's subprotocol and headers on the handshake.
fn connect(ctx: &Ctx) -> Result<Socket, Failed> {
    let url = &ctx.url;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("bad WebSocket URL: {e}"))?;
    if let Some(protocol) = &ctx.options.live.subprotocol {
        let value = tungstenite::http::HeaderValue::from_str(protocol)
            .map_err(|_| format!("invalid subprotocol '{protocol}'"))?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", value);
    }
    super::websocket::add_headers(&mut request, ctx.http.headers_for(url, url));
    // Through the proxy HTTP requests to this URL would take, if any, as the protocol's
    // sockets go (said under -v when there is one); an IPv6 address without its brackets.
    let route = crate::proxy::Route::to(url);
    if !matches!(route, crate::proxy::Route::Direct) {
        ctx.trace(format!("connecting to {url} {route}"));
    }
    let stream =
        crate::proxy::open(url, &route, CONNECT_TIMEOUT, &ctx.shared.tls).map_err(|e| match e {
            crate::proxy::OpenError::Unreachable(e) => Failed::Unreachable(e),
            // The proxy's failure is told as the HTTP client's are: naming the proxy.
            crate::proxy::OpenError::Proxy { why, .. } => {
                Failed::Unreachable(std::io::Error::other(why))
            }
            crate::proxy::OpenError::Other(why) => Failed::Other(why),
        })?;
    let tcp = stream.tcp();
    let _ = tcp.set_nodelay(true);
    // Writes wait as long as they take; the read timeout bounds the handshake, then makes the
    // tick.
    tcp.set_write_timeout(None).map_err(|e| e.to_string())?;
    let max = usize::try_from(ctx.options.max_body).unwrap_or(usize::MAX);
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let stream = crate::proxy::secure(url, stream, &ctx.shared.tls)?;
    let (ws, _) = tungstenite::client::client_with_config(request, stream, Some(config)).map_err(
        |e| match e {
            tungstenite::HandshakeError::Interrupted(_) => {
                "the WebSocket handshake timed out".to_string()
            }
            tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response)) => {
                format!(
                    "the WebSocket handshake was refused (HTTP {})",
                    response.status().as_u16()
                )
            }
            tungstenite::HandshakeError::Failure(e) => {
                format!("the WebSocket handshake failed: {e}")
            }
        },
    )?;
    super::websocket::set_read_timeout(&ws, tick(ctx))?;
    Ok(ws)
}

/// How often a quiet socket's loop wakes up: to notice a shutdown, ping, and tell silence.
fn tick(ctx: &Ctx) -> Duration {
    (ctx.options.keepalive / 4).clamp(Duration::from_millis(10), Duration::from_millis(500))
}

/// Sends the user's messages, then relays what arrives until the socket ends (how), or
/// following stops (`None`). The connection counts as working (`Ctx::succeeded`: the backoff
/// starts over, failures said so far are summed up) at its first message; on `probation`,
/// only once it has delivered one and stayed open a keep-alive period.
fn serve(ctx: &mut Ctx, ws: &mut Socket, probation: bool) -> Option<Ended> {
    let opened = Instant::now();
    let mut messages = 0u64;
    let mut counted = false;
    let ended = |why: String, messages: u64, error: bool| {
        Some(Ended {
            why,
            messages,
            error,
            lived: opened.elapsed(),
        })
    };
    for text in ctx.options.live.send.clone() {
        if let Err(e) = ws.send(Message::text(text)) {
            return ended(format!("cannot send: {e}"), 0, true);
        }
    }
    let mut last_heard = Instant::now();
    let mut last_ping = Instant::now();
    loop {
        let (bytes, binary) = match ws.read() {
            // Kept as tungstenite read them (shared bytes), not copied.
            Ok(Message::Text(text)) => (bytes::Bytes::from(text), false),
            Ok(Message::Binary(bytes)) => (bytes, true),
            Ok(Message::Close(frame)) => {
                let (error, why) = match frame {
                    Some(frame) => {
                        let code = u16::from(frame.code);
                        let reason = if frame.reason.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", frame.reason)
                        };
                        (
                            !matches!(frame.code, CloseCode::Normal | CloseCode::Away),
                            format!("the server closed the WebSocket with code {code}{reason}"),
                        )
                    }
                    None => (false, "the server closed the WebSocket".to_string()),
                };
                return ended(why, messages, error);
            }
            // Pings are answered by tungstenite (the pong goes out with the next read or
            // write); any frame shows the peer is alive.
            Ok(_) => {
                last_heard = Instant::now();
                continue;
            }
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if !ctx.running() {
                    return None;
                }
                // A quiet connection on probation that has now stayed open long enough.
                if messages > 0 && !counted && opened.elapsed() >= ctx.options.keepalive {
                    ctx.succeeded();
                    counted = true;
                }
                let dead_after = ctx.options.socket_dead_after();
                if last_heard.elapsed() > dead_after {
                    return ended(
                        format!(
                            "the WebSocket was silent for {:.1}s",
                            dead_after.as_secs_f64()
                        ),
                        messages,
                        true,
                    );
                }
                if last_ping.elapsed() > ctx.options.keepalive {
                    last_ping = Instant::now();
                    if let Err(e) = ws.send(Message::Ping(Vec::new().into())) {
                        return ended(format!("the WebSocket broke ({e})"), messages, true);
                    }
                }
                continue;
            }
            // A message over --max-body: reconnecting would only read it again.
            Err(tungstenite::Error::Capacity(e)) => {
                let url = ctx.url.to_string();
                ctx.fail(crate::Error::TooLarge {
                    url,
                    what: format!("a WebSocket message is too large ({e})"),
                });
                return None;
            }
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return ended("the WebSocket closed".to_string(), messages, false);
            }
            Err(e) => return ended(format!("the WebSocket broke ({e})"), messages, true),
        };
        last_heard = Instant::now();
        messages += 1;
        if !counted && (!probation || opened.elapsed() >= ctx.options.keepalive) {
            ctx.succeeded();
            counted = true;
        }
        let body = if binary {
            Body::opaque(bytes, Some("application/octet-stream".to_string()))
        } else {
            Body::new(bytes, None)
        };
        let live = Live { sse: None, binary };
        if !emit(ctx, EventKind::Value, SELF, Some(body), None, live) {
            return None;
        }
    }
}
