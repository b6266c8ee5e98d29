//! The LiveResource reference server behind `lrwatch serve`: resources that change, and the
//! mechanisms that announce their changes.
//!
//! This first slice serves `/time`, `/counter/{id}` (both long-pollable with `value-wait`) and
//! `/plain/{id}` (no validators, no links: the plain-polling path). It is a small HTTP/1.1 server
//! on `std::net`: one thread accepts, one thread serves each connection, and a held long-poll
//! simply blocks its connection's thread on a condition variable, so it costs no CPU while held.
//!
//! Parts: `http` reads and writes HTTP/1.1, `store` keeps the resources and wakes waiters,
//! `routes` maps requests onto them.
//!
//! ```no_run
//! let handle = lrwatch::server::Server::bind("127.0.0.1:0")?.spawn()?;
//! println!("serving on http://{}/time", handle.local_addr());
//! # Ok::<(), std::io::Error>(())
//! ```

mod http;
mod routes;
mod store;
#[cfg(test)]
mod tests;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use store::Store;

/// How long a kept-alive connection may sit idle before its next request head, and the most
/// time a head or a body may take to arrive. Matches common server defaults.
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);

/// A bound, not yet serving, reference server.
///
/// A thread per connection keeps the code plain and blocking; a held long-poll is a parked
/// thread. Thread stacks are reserved, not committed, memory, so thousands of held requests fit;
/// when the system refuses another thread, that one connection is closed and the server goes on.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    store: Arc<Store>,
    idle_timeout: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("store", &self.store)
            .finish()
    }
}

impl Server {
    /// Binds (e.g. "127.0.0.1:0").
    ///
    /// Port 0 picks a free port; [`Server::local_addr`] tells which.
    pub fn bind(addr: &str) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        Ok(Server {
            listener,
            addr,
            store: Arc::new(Store::default()),
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

    /// Serves forever on the calling thread.
    ///
    /// Failed accepts are not fatal: a client that gave up or a momentary lack of file
    /// descriptors must not end the server, so it pauses briefly and accepts again.
    pub fn run(self) -> io::Result<()> {
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
                    _ => thread::sleep(Duration::from_millis(50)),
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
        let store = Arc::clone(&self.store);
        let idle = self.idle_timeout;
        let spawned = thread::Builder::new()
            .name("lrwatch-conn".into())
            .spawn(move || {
                http::serve_connection(stream, idle, &|request| routes::handle(&store, request))
            });
        if spawned.is_err() {
            // The closure, and with it the stream, is dropped: that client sees the connection
            // close. Pause so a system out of threads gets a moment to recover.
            thread::sleep(Duration::from_millis(10));
        }
    }
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
