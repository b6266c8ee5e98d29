//! Scripted servers for live URLs given directly: each connection's request head is read and
//! recorded, then a handler writes whatever it likes on the raw socket (a stream's head, events
//! as they come, silence, a cut), written from the formats' texts (WHATWG event streams,
//! NDJSON, RFC 7464, RFC 6455 through tungstenite's server side).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::harness::{read_head, Seen};

pub struct LiveServer {
    pub base: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl LiveServer {
    /// How many requests (connections) it has seen.
    pub fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn request(&self, n: usize) -> Seen {
        self.seen.lock().unwrap()[n].clone()
    }
}

/// An HTTP server on 127.0.0.1:0: `handler(n, request, socket)` answers the n-th connection
/// (from 0), one request each, on a thread of its own.
pub fn http_server(
    handler: impl Fn(usize, &Seen, TcpStream) + Send + Sync + 'static,
) -> LiveServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(handler);
    let recorded = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (seen, handler) = (Arc::clone(&recorded), Arc::clone(&handler));
            std::thread::spawn(move || {
                let Some(request) = read_head(&stream) else {
                    return;
                };
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(request.clone());
                    seen.len() - 1
                };
                handler(n, &request, stream);
            });
        }
    });
    LiveServer { base, seen }
}

/// A WebSocket server on 127.0.0.1:0: `handler(n, request, socket)` serves the n-th
/// connection after the handshake, which echoes the first offered subprotocol (if any).
pub fn ws_server(
    handler: impl Fn(usize, &Seen, tungstenite::WebSocket<TcpStream>) + Send + Sync + 'static,
) -> LiveServer {
    ws_server_on(TcpListener::bind("127.0.0.1:0").unwrap(), handler)
}

/// [`ws_server`] on a listener of the caller's (another address: the IPv6 loopback).
pub fn ws_server_on(
    listener: TcpListener,
    handler: impl Fn(usize, &Seen, tungstenite::WebSocket<TcpStream>) + Send + Sync + 'static,
) -> LiveServer {
    let base = format!("ws://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(handler);
    let recorded = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (seen, handler) = (Arc::clone(&recorded), Arc::clone(&handler));
            std::thread::spawn(move || {
                let request = Arc::new(Mutex::new(None));
                let heard = Arc::clone(&request);
                #[allow(clippy::result_large_err)]
                let accepted = tungstenite::accept_hdr(
                    stream,
                    |req: &tungstenite::handshake::server::Request,
                     mut resp: tungstenite::handshake::server::Response| {
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.as_str().to_ascii_lowercase(),
                                    v.to_str().unwrap_or("").to_string(),
                                )
                            })
                            .collect();
                        if let Some(offered) = req.headers().get("sec-websocket-protocol") {
                            let first = offered.to_str().unwrap_or("").split(',').next();
                            resp.headers_mut().insert(
                                "Sec-WebSocket-Protocol",
                                first.unwrap_or("").trim().parse().unwrap(),
                            );
                        }
                        *heard.lock().unwrap() = Some(Seen {
                            path: req.uri().to_string(),
                            headers,
                        });
                        Ok(resp)
                    },
                );
                let (Ok(ws), Some(request)) = (accepted, request.lock().unwrap().take()) else {
                    return;
                };
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(request.clone());
                    seen.len() - 1
                };
                handler(n, &request, ws);
            });
        }
    });
    LiveServer { base, seen }
}

/// Writes a response head without a length: the body runs until the connection closes.
pub fn head(mut stream: &TcpStream, status: u16, content_type: &str) {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
}

/// Writes a chunked response head.
pub fn chunked_head(mut stream: &TcpStream, content_type: &str) {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
}

/// Writes one chunk of a chunked body (an empty one ends it).
pub fn chunk(mut stream: &TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(format!("{:x}\r\n", bytes.len()).as_bytes());
    let _ = stream.write_all(bytes);
    let _ = stream.write_all(b"\r\n");
}

/// Writes bytes as they are (an event, a line), ignoring a client that went away.
pub fn send(mut stream: &TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes);
    let _ = stream.flush();
}

/// Holds a connection open (silent) for a while: the client is meant to give up first.
pub fn hold(stream: TcpStream) {
    std::thread::sleep(crate::harness::BOUND);
    drop(stream);
}
