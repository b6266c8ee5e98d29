//! A reverse proxy that can hold the requests of a polling client at its door, so a test can
//! make several changes between two of the client's reads with no timing involved: close the
//! gate, wait until the client's next request is held there (the client reads one request at a
//! time, so nothing of it is in the server then), change things, open the gate.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::harness::BOUND;

#[derive(Default)]
struct State {
    closed: bool,
    /// Requests waiting at the closed gate.
    held: usize,
}

/// A gate in front of a server: point the client at `base`.
pub struct Gate {
    pub base: String,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl Gate {
    /// Holds every request that arrives from now on.
    pub fn close(&self) {
        self.state.0.lock().unwrap().closed = true;
    }

    /// Waits (bounded) until a request is held at the closed gate.
    pub fn wait_held(&self) {
        let deadline = Instant::now() + BOUND;
        let (lock, cond) = &*self.state;
        let mut state = lock.lock().unwrap();
        while state.held == 0 {
            let now = Instant::now();
            assert!(
                now < deadline,
                "no request reached the gate within {BOUND:?}"
            );
            state = cond.wait_timeout(state, deadline - now).unwrap().0;
        }
    }

    /// Lets the held requests, and all later ones, through.
    pub fn open(&self) {
        self.state.0.lock().unwrap().closed = false;
        self.state.1.notify_all();
    }
}

/// A gate, open, in front of `upstream` (`http://host:port`). It passes requests without a
/// body (a polling client's GETs) and responses verbatim.
pub fn gate(upstream: &str) -> Gate {
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
    let shared = Arc::clone(&state);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let state = Arc::clone(&shared);
            std::thread::spawn(move || forward(client, server, &state));
        }
    });
    Gate { base, state }
}

/// Passes request heads one by one, each through the gate; responses are copied as they come.
fn forward(mut client: TcpStream, server: TcpStream, state: &(Mutex<State>, Condvar)) {
    let (Ok(mut back_from), Ok(mut back_to)) = (server.try_clone(), client.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut back_from, &mut back_to);
        let _ = back_to.shutdown(Shutdown::Both);
    });
    let mut server = server;
    let mut byte = [0u8; 1];
    loop {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            match client.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => {
                    let _ = server.shutdown(Shutdown::Both);
                    return;
                }
            }
        }
        {
            let (lock, cond) = state;
            let mut s = lock.lock().unwrap();
            if s.closed {
                s.held += 1;
                cond.notify_all();
                while s.closed {
                    s = cond.wait(s).unwrap();
                }
                s.held -= 1;
            }
        }
        if server.write_all(&head).is_err() {
            return;
        }
    }
}
