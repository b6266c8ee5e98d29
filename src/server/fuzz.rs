//! An entry point for fuzzing the server's request handling (`fuzz/` at the repository root):
//! one connection, fed arbitrary bytes, against a fresh server state.
//!
//! The connection is a real loopback socket, because the HTTP reader, streams and WebSockets are
//! written against `TcpStream`; the server side runs the same `serve_connection` and router as
//! `lrwatch serve`. Only two things differ from a served connection, both so that one input
//! ends quickly and leaves nothing behind: whatever would be held (long-polls, streams,
//! sockets) is cut as soon as the connection goes quiet, as `POST /_control/cut` would; and
//! webhook subscriptions are accepted but deliver nothing, since fuzzed input names arbitrary
//! callback hosts.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use super::app::App;
use super::routes;
use super::{ServerConfig, CONNECTION_STACK};
use crate::http1;

/// Quiet this long, the connection is taken to be waiting on something held: cut it.
const QUIET: Duration = Duration::from_millis(2);
/// One input that is not answered within this time is a hang, reported as a panic.
const HANG: Duration = Duration::from_secs(10);
/// Inputs larger than this are written from their own thread, so that a server writing a
/// large answer the driver is not yet reading cannot deadlock against the driver's write.
const WRITE_INLINE: usize = 32 * 1024;

/// Serves `bytes`, sent by one client on one connection that then stops sending, with a fresh
/// server in the default configuration; returns everything the server wrote back before it
/// closed the connection.
///
/// For fuzzing only (see the module docs for how it differs from `lrwatch serve`). Panics if
/// the server panics or does not finish within 10 s, so a fuzzer reports either as a crash.
#[doc(hidden)]
#[must_use]
pub fn fuzz_request(bytes: &[u8]) -> Vec<u8> {
    fuzz_request_with(ServerConfig::default(), bytes)
}

/// [`fuzz_request`] with these switches (dialect, faults, lossiness).
#[doc(hidden)]
#[must_use]
pub fn fuzz_request_with(config: ServerConfig, bytes: &[u8]) -> Vec<u8> {
    let mut app = App::new(config);
    Arc::get_mut(&mut app)
        .expect("a fresh server state has one owner")
        .callbacks
        .without_deliveries();
    let (mut client, server) = loopback_pair().expect("a loopback connection for fuzzing");
    let serving = {
        let app = Arc::clone(&app);
        thread::Builder::new()
            .name("lrwatch-fuzz-conn".into())
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                http1::serve_connection(server, HANG, &|request| routes::handle(&app, request));
            })
            .expect("a thread for the fuzzed connection")
    };
    let writer = if bytes.len() > WRITE_INLINE {
        let mut stream = client.try_clone().expect("a second handle on the socket");
        let bytes = bytes.to_vec();
        Some(thread::spawn(move || send_all(&mut stream, &bytes)))
    } else {
        send_all(&mut client, bytes);
        None
    };
    let out = read_until_closed(&mut client, &app);
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    if let Err(panic) = serving.join() {
        std::panic::resume_unwind(panic);
    }
    app.callbacks.clear();
    out
}

/// Writes the input, then ends the client's side: the server reads EOF after the last byte.
fn send_all(stream: &mut TcpStream, bytes: &[u8]) {
    // A server that closed early (after a framing error) makes the rest unwritable: fine.
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(Shutdown::Write);
}

/// Reads the server's answer until it closes, cutting whatever is held whenever it goes quiet.
fn read_until_closed(client: &mut TcpStream, app: &App) -> Vec<u8> {
    let give_up = Instant::now() + HANG;
    let _ = client.set_read_timeout(Some(QUIET));
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match client.read(&mut chunk) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                assert!(
                    Instant::now() < give_up,
                    "the server did not finish one fuzzed connection within {HANG:?}"
                );
                // Long-polls answer early, streams and sockets end: as `POST /_control/cut`.
                app.store.hub().cut_all();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A reset: the server closed with input unread, which it may.
            Err(_) => return out,
        }
    }
}

/// A connected pair on loopback, through one listener kept for the whole process.
fn loopback_pair() -> io::Result<(TcpStream, TcpStream)> {
    static LISTENER: OnceLock<Mutex<(TcpListener, SocketAddr)>> = OnceLock::new();
    let listener = match LISTENER.get() {
        Some(l) => l,
        None => {
            let l = TcpListener::bind("127.0.0.1:0")?;
            let addr = l.local_addr()?;
            LISTENER.get_or_init(|| Mutex::new((l, addr)))
        }
    };
    // Held across connect and accept, so concurrent callers cannot take each other's peer.
    let guard = listener.lock().unwrap_or_else(|e| e.into_inner());
    let client = TcpStream::connect(guard.1)?;
    let (server, _) = guard.0.accept()?;
    Ok((client, server))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(&fuzz_request(bytes)).into_owned()
    }

    #[test]
    fn answers_an_ordinary_request() {
        let out = text(b"GET /counter/a HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\n0"), "{out}");
    }

    #[test]
    fn pipelined_requests_share_one_fresh_store() {
        let out = text(
            b"POST /counter/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n\
              GET /counter/a HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
        assert!(out.ends_with("\r\n\r\n1"), "{out}");
        // The next input starts from nothing again.
        assert!(text(b"GET /counter/a HTTP/1.1\r\nHost: x\r\n\r\n").ends_with("\r\n\r\n0"));
    }

    #[test]
    fn held_requests_streams_and_sockets_end() {
        let started = Instant::now();
        let long_poll = text(
            b"GET /counter/a HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"0\"\r\nWait: 300\r\n\r\n",
        );
        assert!(long_poll.starts_with("HTTP/1.1 304"), "{long_poll}");
        let stream = text(b"GET /counter/a?stream=value HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(stream.contains("text/event-stream"), "{stream}");
        let socket = text(
            b"GET /multiplex/socket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        );
        assert!(socket.starts_with("HTTP/1.1 101"), "{socket}");
        // Ended at once rather than held for the 300 s asked: 10 s of room for a loaded
        // machine.
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn webhook_subscriptions_are_taken_but_not_delivered() {
        let receiver = TcpListener::bind("127.0.0.1:0").unwrap();
        receiver.set_nonblocking(true).unwrap();
        let callback = format!("callback_uri=http://{}/", receiver.local_addr().unwrap());
        let request = format!(
            "POST /subscriptions/?uri=/counter/a HTTP/1.1\r\nHost: x\r\n\
             Content-Length: {}\r\n\r\n{callback}\
             POST /counter/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            callback.len()
        );
        let out = text(request.as_bytes());
        assert!(out.starts_with("HTTP/1.1 201"), "{out}");
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 1, "{out}");
        thread::sleep(Duration::from_millis(300));
        let accepted = receiver.accept();
        assert!(accepted.is_err(), "a notification was delivered");
    }
}
