//! The LiveResource reference server behind `lrwatch serve`: resources that change, and the
//! mechanisms that announce their changes.
//!
//! Every mechanism of `PROTOCOL.md`, in all three forms: objects (`/time`, `/counter/{id}`,
//! `/objects/{name}`), the `/items/` collection and its changes feed, `/plain/{id}` for plain
//! polling, multiplexing over long-polls, SSE and WebSockets, and webhooks. It is a small
//! HTTP/1.1 server on `std::net`: one thread accepts, one thread serves each connection, and a
//! held long-poll, a stream or a socket sleeps on its subscription in the store's hub, so it costs
//! no CPU until something it follows changes.
//!
//! Parts, each importing only those listed before it: `crate::http1` (below this module,
//! since the webhook receiver of followers serves with it too) reads and writes HTTP/1.1 and
//! hands streams and upgrades their connection; `store` keeps the resources and publishes
//! changes; `cors` (which origins may read the answers) and `log` (the request log of
//! `serve -v`) are switches that `dialect` holds; `dialect` decides forms and switches;
//! `checks` (methods, JSON bodies), `conditional` (`If-None-Match` and waits) and
//! `object_response` (a representation and the links that advertise its mechanisms) are what
//! handlers share; `streams`, `multiplex` and
//! `callbacks` serve mechanisms from the store and the switches; `app` holds one server's
//! state; `objects`, `collection` and `ws` serve resources and sockets from it, and `page` the
//! live page for browsers; `routes` maps a request onto one of them, and `answer` here adds
//! the CORS headers and logs it. The wire formats they write are the shared ones in
//! [`crate::wire`] and [`crate::link`].
//!
//! ```no_run
//! let handle = lrwatch::server::Server::bind("127.0.0.1:0")?.spawn()?;
//! println!("serving on http://{}/time", handle.local_addr());
//! # Ok::<(), std::io::Error>(())
//! ```

mod app;
mod callbacks;
mod checks;
mod collection;
mod conditional;
mod cors;
mod dialect;
mod fuzz;
mod log;
mod multiplex;
mod object_response;
mod objects;
mod page;
mod race_hook;
mod routes;
mod store;
mod streams;
#[cfg(test)]
mod tests;
mod ws;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::http1::Reply;
use app::App;
pub use cors::Cors;
pub use dialect::{Dialect, Fault, ServerConfig};
#[doc(hidden)]
pub use fuzz::{fuzz_request, fuzz_request_with};
pub use log::Log;

/// How long a kept-alive connection may sit idle before its next request head, and the most
/// time a head or a body may take to arrive. Matches common server defaults.
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// The stack of a connection thread: JSON nested to serde_json's limit of 128 levels must fit
/// in debug builds too (256 KiB did not), and the rest is address space, not memory.
const CONNECTION_STACK: usize = 2 * 1024 * 1024;

/// A bound, not yet serving, reference server.
///
/// A thread per connection keeps the code plain and blocking; a held long-poll or an open
/// stream is a parked thread. Thread stacks are reserved, not committed, memory, so thousands of
/// held requests fit; when the system refuses another thread, that one connection is closed and
/// the server goes on.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    app: Arc<App>,
    idle_timeout: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("store", &self.app.store)
            .field("config", &self.app.cfg)
            .finish()
    }
}

impl Server {
    /// Binds (e.g. "127.0.0.1:0") with the default switches.
    ///
    /// Port 0 picks a free port; [`Server::local_addr`] tells which.
    pub fn bind(addr: &str) -> io::Result<Server> {
        Server::bind_with(addr, ServerConfig::default())
    }

    /// Binds with these switches (dialect, lossiness, cuts, limits).
    pub fn bind_with(addr: &str, config: ServerConfig) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        Ok(Server {
            listener,
            addr,
            app: App::new(config),
            idle_timeout: IDLE_TIMEOUT,
        })
    }

    /// The address the server listens on, with the actual port.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shortens the idle timeout, so tests need not wait 75 s to see it.
    #[cfg(test)]
    pub(crate) fn with_idle_timeout(mut self, idle: Duration) -> Server {
        self.idle_timeout = idle;
        self
    }

    /// The server's state, for tests that look inside (subscriptions left behind).
    #[cfg(test)]
    pub(crate) fn app(&self) -> Arc<App> {
        Arc::clone(&self.app)
    }

    /// Serves forever on the calling thread.
    ///
    /// Failed accepts are not fatal: a client that gave up or a momentary lack of file
    /// descriptors must not end the server, so it pauses briefly and accepts again.
    pub fn run(self) -> io::Result<()> {
        start_ticker(&self.app);
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.start_connection(stream),
                Err(e) => match e.kind() {
                    io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::Interrupted
                    | io::ErrorKind::WouldBlock => {}
                    // Out of descriptors or memory: give connections time to close rather than
                    // spinning on an accept that keeps failing.
                    _ => {
                        let why = format!("cannot accept a connection: {e}");
                        self.app.cfg.log.error(&why);
                        thread::sleep(Duration::from_millis(50));
                    }
                },
            }
        }
    }

    /// Serves on a background thread; returns at once.
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let addr = self.addr;
        let thread = thread::Builder::new()
            .name("lrwatch-serve".into())
            .spawn(move || self.run())?;
        Ok(ServerHandle {
            addr,
            _thread: thread,
        })
    }

    fn start_connection(&self, stream: TcpStream) {
        let app = Arc::clone(&self.app);
        let idle = self.idle_timeout;
        let spawned = thread::Builder::new()
            .name("lrwatch-conn".into())
            // Reserved, not committed: a parked connection costs the pages it touched.
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                let peer = stream.peer_addr().ok();
                // The framing errors the reader answers itself carry the CORS headers too, and
                // are logged (`-v`) although no handler sees them.
                let log = app.cfg.log.clone();
                let serving = crate::http1::Serving {
                    idle,
                    error_headers: app.cfg.cors.headers(),
                    on_rejected: log.verbose().then(|| {
                        let peer_text = peer.map_or_else(|| "-".to_owned(), |p| p.to_string());
                        Arc::new(move |r: &crate::http1::Rejected| log.rejected(&peer_text, r))
                            as crate::http1::OnRejected
                    }),
                };
                crate::http1::serve_connection_with(stream, &serving, &|request| {
                    answer(&app, peer, request)
                })
            });
        if let Err(e) = spawned {
            let why = format!("cannot start a thread for a connection: {e}");
            self.app.cfg.log.error(&why);
            // The closure, and with it the stream, is dropped: that client sees the connection
            // close. Pause so a system out of threads gets a moment to recover.
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Answers one request: routes it, adds the CORS headers, logs it. A connection taken over by
/// a stream or a socket is logged when it opens, and again when it closes.
fn answer(app: &Arc<App>, peer: Option<SocketAddr>, request: &crate::http1::Request) -> Reply {
    let started = Instant::now();
    let log = &app.cfg.log;
    let peer_text = peer.map_or_else(|| "-".to_owned(), |p| p.to_string());
    let finish = |response| {
        let response = app.cfg.cors.apply(request, response);
        let status = response.status.to_string();
        log.request(&peer_text, request, &status, started.elapsed());
        response
    };
    match routes::handle(app, request) {
        Reply::Full(response) => finish(response).into(),
        Reply::Then(response, then) => Reply::Then(finish(response), then),
        Reply::Takeover(run) => {
            let upgrade = request
                .header("upgrade")
                .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
            let what = if upgrade { "101 socket" } else { "200 stream" };
            log.request(&peer_text, request, what, started.elapsed());
            let tap = log.tap(peer);
            Reply::Takeover(Box::new(move |stream, early| {
                run(stream, early);
                tap.closed();
            }))
        }
    }
}

/// Publishes `/time` at every second boundary, so streams and multiplexed requests that follow
/// it wake; it costs one lock per second, and nothing when nobody follows the clock.
fn start_ticker(app: &Arc<App>) {
    let hub = Arc::clone(app.store.hub());
    let _ = thread::Builder::new()
        .name("lrwatch-clock".into())
        .spawn(move || loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let to_tick = Duration::from_nanos(1_000_000_000 - u64::from(now.subsec_nanos()))
                + Duration::from_millis(1);
            thread::sleep(to_tick);
            if hub.has_subscribers(store::TIME) {
                hub.publish(store::TIME);
            }
        });
}

/// A server running on a background thread (see [`Server::spawn`]).
///
/// Dropping the handle does not stop the server: it serves until the process ends.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    _thread: thread::JoinHandle<io::Result<()>>,
}

impl ServerHandle {
    /// The address the server listens on, with the actual port.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}
