//! A small harness: run the real binary with every wait bounded, talk to servers over HTTP,
//! and stand up scripted servers on 127.0.0.1:0 that record what they were asked.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Whether the tests run under CI (`CI` set and not empty): there every tool a test needs is
/// installed by `.ci/run`, and a missing one is a failure rather than a skip.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty())
}

/// Whether `tool` can be run here. When it cannot: under CI the test fails; elsewhere (a
/// user's fresh clone) it says it was skipped and why, and passes.
pub fn have(tool: &str, needed_for: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            !under_ci(),
            "{tool} is not installed, and CI is set (.ci/run installs it): needed for {needed_for}"
        );
        eprintln!(
            "skipped: {tool} is not installed (needed for {needed_for}; .ci/run installs it)"
        );
    }
    found
}

/// The longest any single wait in a test may take before the test fails.
pub const BOUND: Duration = Duration::from_secs(10);

/// The reference server, in-process; its base URL.
pub fn reference_server() -> String {
    let handle = lrwatch::server::Server::bind("127.0.0.1:0")
        .and_then(|s| s.spawn())
        .expect("start the reference server");
    let base = format!("http://{}", handle.local_addr());
    std::mem::forget(handle);
    base
}

/// A running `lrwatch`, its stdout and stderr read line by line on background threads.
pub struct Run {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    pub stderr_seen: Vec<String>,
    _stdin: Option<ChildStdin>,
}

pub fn lrwatch(args: &[&str]) -> Run {
    lrwatch_env(args, &[])
}

/// Every variable ureq reads a proxy from (`ureq::Proxy::try_from_env`: `ALL_PROXY`, then
/// `HTTPS_PROXY`, then `HTTP_PROXY`, each in both cases, whatever the request's scheme), and the
/// hosts that bypass it.
pub const PROXY_VARS: [&str; 8] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Removes every proxy variable from what `cmd` will see: the tests talk to servers on
/// loopback, and a developer's proxy (which ureq does not bypass for 127.0.0.1) would otherwise
/// receive those requests and fail the suite.
pub fn without_proxy(cmd: &mut Command) -> &mut Command {
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd
}

pub fn lrwatch_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lrwatch"));
    cmd.args(args);
    lrwatch_command(cmd, env)
}

/// Runs `cmd` (the binary, with its arguments) as `lrwatch_env` does: without the environment
/// that would change what it does under test (color, a test terminal, a proxy), then with `env`.
pub fn lrwatch_command(mut cmd: Command, env: &[(&str, &str)]) -> Run {
    without_proxy(&mut cmd)
        .env_remove("NO_COLOR")
        .env_remove("LRWATCH_TEST_TERM")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn lrwatch");
    let stdout = lines(child.stdout.take().unwrap());
    let stderr = lines(child.stderr.take().unwrap());
    let stdin = child.stdin.take();
    Run {
        child,
        stdout,
        stderr,
        stderr_seen: Vec::new(),
        _stdin: stdin,
    }
}

/// The lines left on a reader's channel up to the end of its pipe, or those that came within
/// BOUND if something (a grandchild) still holds the pipe open.
fn to_end(lines: &Receiver<String>) -> Vec<String> {
    let deadline = Instant::now() + BOUND;
    let mut out = Vec::new();
    while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        out.push(line);
    }
    out
}

fn lines(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Run {
    /// How many threads the process runs now (from /proc).
    pub fn threads(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("a thread count")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's standard input (once): written to feed it, dropped to close it.
    pub fn take_stdin(&mut self) -> ChildStdin {
        self._stdin.take().expect("stdin not taken before")
    }

    /// The next stdout line; fails the test after BOUND.
    pub fn line(&mut self) -> String {
        match self.stdout.recv_timeout(BOUND) {
            Ok(line) => line,
            Err(_) => {
                self.drain_stderr();
                panic!(
                    "no stdout line within {BOUND:?}; stderr: {:#?}",
                    self.stderr_seen
                )
            }
        }
    }

    /// The next stdout line within `wait`, if one comes.
    pub fn try_line(&mut self, wait: Duration) -> Option<String> {
        self.stdout.recv_timeout(wait).ok()
    }

    /// The next stdout line parsed as JSON.
    pub fn json(&mut self) -> serde_json::Value {
        let line = self.line();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Waits for a stderr line containing `needle`; fails the test after BOUND.
    pub fn stderr_until(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + BOUND;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.stderr_seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no stderr line with {needle:?} within {BOUND:?}; saw {:#?}",
                    self.stderr_seen
                ),
            }
        }
    }

    fn drain_stderr(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            // Exited: everything it wrote is in the pipe; read it to its end rather than
            // trusting a reader thread to keep up within a fixed time on a loaded machine.
            self.stderr_seen.extend(to_end(&self.stderr));
            return;
        }
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(200)) {
            self.stderr_seen.push(line);
        }
    }

    /// Waits for exit; kills and fails the test after BOUND.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.drain_stderr();
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                self.drain_stderr();
                panic!(
                    "lrwatch did not exit within {BOUND:?}; stderr: {:#?}",
                    self.stderr_seen
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The rest of stdout after exit: read to its end, since the reader thread may still be
    /// handing lines over when the process is gone.
    pub fn rest(&mut self) -> Vec<String> {
        to_end(&self.stdout)
    }

    /// Ends the process now (kill and reap), so that what it wrote can be read to the end.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stderr_text(&mut self) -> String {
        self.drain_stderr();
        self.stderr_seen.join("\n")
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client for making changes on servers.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .new_agent()
}

pub fn post(url: &str) -> u16 {
    agent().post(url).send_empty().unwrap().status().as_u16()
}

pub fn put(url: &str, content_type: &str, body: &str) -> u16 {
    agent()
        .put(url)
        .header("Content-Type", content_type)
        .send(body)
        .unwrap()
        .status()
        .as_u16()
}

pub fn delete(url: &str) -> u16 {
    agent().delete(url).call().unwrap().status().as_u16()
}

/// One request as a scripted server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted HTTP server: `reply(n, request)` gives the n-th (from 0) response as
/// (status, headers, body); every request is recorded. One request per connection.
pub struct Scripted {
    pub base: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

pub type Reply = (u16, Vec<(String, String)>, String);

pub fn scripted(reply: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reply = Arc::new(reply);
    let seen2 = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let seen = Arc::clone(&seen2);
            let reply = Arc::clone(&reply);
            std::thread::spawn(move || serve_one(stream, &seen, &*reply));
        }
    });
    Scripted { base, seen }
}

fn serve_one(
    stream: TcpStream,
    seen: &Mutex<Vec<Seen>>,
    reply: &(dyn Fn(usize, &Seen) -> Reply + Send + Sync),
) {
    let Some(request) = read_head(&stream) else {
        return;
    };
    let n = {
        let mut seen = seen.lock().unwrap();
        seen.push(request.clone());
        seen.len() - 1
    };
    let (status, headers, body) = reply(n, &request);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    respond(&stream, status, &headers, &body);
}

/// Reads one request head: the target and the headers (names lowercased).
pub fn read_head(stream: &TcpStream) -> Option<Seen> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let path = request_line.split_whitespace().nth(1)?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Some(Seen { path, headers })
}

/// Writes a whole response and closes the exchange (`Connection: close`).
pub fn respond(mut stream: &TcpStream, status: u16, headers: &[(&str, &str)], body: &str) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}

/// A scripted WebSocket server's side of the opening handshake: accepts on `stream`, answering
/// with the `liveresource` subprotocol; `None` when the handshake fails.
// tungstenite's handshake callback returns its large error response type by value.
#[allow(clippy::result_large_err)]
pub fn accept_liveresource(stream: TcpStream) -> Option<tungstenite::WebSocket<TcpStream>> {
    tungstenite::accept_hdr(
        stream,
        |_: &tungstenite::handshake::server::Request,
         mut resp: tungstenite::handshake::server::Response| {
            resp.headers_mut()
                .insert("Sec-WebSocket-Protocol", "liveresource".parse().unwrap());
            Ok(resp)
        },
    )
    .ok()
}

/// Headers from literal pairs.
pub fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The reference server with these switches, in-process; its base URL.
pub fn reference_server_with(config: lrwatch::server::ServerConfig) -> String {
    let handle = lrwatch::server::Server::bind_with("127.0.0.1:0", config)
        .and_then(|s| s.spawn())
        .expect("start the reference server");
    let base = format!("http://{}", handle.local_addr());
    std::mem::forget(handle);
    base
}

/// A TCP proxy in front of `upstream` (host:port) that counts the connections it forwards,
/// and among them the WebSocket upgrades.
pub struct Proxy {
    pub base: String,
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
    pub upgrades: Arc<std::sync::atomic::AtomicUsize>,
}

pub fn counting_proxy(upstream: &str) -> Proxy {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let upstream = upstream.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let upgrades = Arc::new(AtomicUsize::new(0));
    let (c, u) = (Arc::clone(&connections), Arc::clone(&upgrades));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            c.fetch_add(1, Ordering::SeqCst);
            let upstream = upstream.clone();
            let u = Arc::clone(&u);
            std::thread::spawn(move || {
                let Ok(mut server) = TcpStream::connect(&upstream) else {
                    return;
                };
                // Peek at the first request head to tell WebSocket upgrades apart.
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
                    match client.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                if String::from_utf8_lossy(&head)
                    .to_ascii_lowercase()
                    .contains("upgrade: websocket")
                {
                    u.fetch_add(1, Ordering::SeqCst);
                }
                if server.write_all(&head).is_err() {
                    return;
                }
                splice(client, server);
            });
        }
    });
    Proxy {
        base,
        connections,
        upgrades,
    }
}

/// Relays bytes both ways between `client` and `server` until either side closes, then shuts
/// both down.
pub fn splice(mut client: TcpStream, mut server: TcpStream) {
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut s2, &mut c2);
        let _ = c2.shutdown(std::net::Shutdown::Both);
    });
    let _ = std::io::copy(&mut client, &mut server);
    let _ = server.shutdown(std::net::Shutdown::Both);
}

/// `lrwatch serve` as a child process, killed when dropped, so that a failing test leaves no
/// server behind holding the test runner's output open.
pub struct Served(Child);

/// Starts `lrwatch serve --listen addr` ("127.0.0.1:0" for any port); returns it and its base URL.
pub fn served(addr: &str) -> (Served, String) {
    let mut child = without_proxy(&mut Command::new(env!("CARGO_BIN_EXE_lrwatch")))
        .args(["serve", "--listen", addr])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let served = Served(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("serve printed {line:?}"))
        .to_string();
    (served, base)
}

impl Served {
    /// Stops the server now and waits for it to end.
    pub fn stop(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server that answers every request with `head` and then `chunk` over and over, as fast as
/// the client reads, until it goes. Its base URL.
pub fn endless(head: &'static str, chunk: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                while stream.write_all(chunk).is_ok() {}
            });
        }
    });
    base
}
