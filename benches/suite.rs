//! The benchmark suite: `cargo bench --bench suite` (release build) runs every measurement and
//! prints a Markdown table for BENCHMARKS.md. Each figure is measured in one run beside the
//! alternative a user could script with curl. `BENCH_IDLE_SECS` sets the idle window (60).
//!
//! Latencies are from just before the change is sent to the reference server (in-process) to
//! the moment the event's line is read from lrwatch's stdout: they include the PUT's round
//! trip, so they overstate lrwatch's share.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const LRWATCH: &str = env!("CARGO_BIN_EXE_lrwatch");

// The binary's diff code, compiled in here so its per-event cost can be timed on its own.
#[allow(dead_code, unused_imports)]
#[path = "../src/diff.rs"]
mod diff;
#[allow(dead_code, unused_imports)]
#[path = "../src/sanitize.rs"]
mod sanitize;

fn server() -> String {
    let handle = lrwatch::server::Server::bind("127.0.0.1:0")
        .and_then(|s| s.spawn())
        .expect("server");
    let base = format!("http://{}", handle.local_addr());
    std::mem::forget(handle);
    base
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .new_agent()
}

fn put(agent: &ureq::Agent, url: &str, body: &str) {
    agent
        .put(url)
        .header("Content-Type", "application/json")
        .send(body)
        .expect("put");
}

/// Lines of a child's stdout, read on a thread.
fn lines(out: ChildStdout) -> Receiver<(Instant, String)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    rx
}

fn spawn(args: &[&str]) -> (Child, Receiver<(Instant, String)>) {
    let mut child = Command::new(LRWATCH)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("lrwatch");
    let rx = lines(child.stdout.take().unwrap());
    (child, rx)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Latency of `changes` changes seen through a command whose stdout prints the value.
fn latency(
    base: &str,
    name: &str,
    changes: usize,
    spacing: Duration,
    follow: impl FnOnce(&str) -> (Child, Receiver<(Instant, String)>),
    line_has: impl Fn(&str, usize) -> bool,
) -> (f64, f64) {
    let agent = agent();
    let url = format!("{base}/counter/{name}");
    put(&agent, &url, "0");
    let (mut child, rx) = follow(&url);
    rx.recv_timeout(Duration::from_secs(10))
        .expect("initial value");
    let mut samples = Vec::new();
    for i in 1..=changes {
        // A random offset, so that polling loops are sampled across their period.
        std::thread::sleep(spacing + spacing.mul_f64(fastrand::f64()));
        let t0 = Instant::now();
        put(&agent, &url, &i.to_string());
        loop {
            let (at, line) = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("the change");
            if line_has(&line, i) {
                samples.push(ms(at - t0));
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    samples.sort_by(f64::total_cmp);
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

fn json_body_is(line: &str, i: usize) -> bool {
    serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v["body"] == i)
}

/// CPU time (ns) of a process and its threads, from schedstat.
fn cpu_ns(pid: u32) -> u64 {
    let mut total = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) {
                total += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

/// CPU time (ns) a shell loop used, counting its waited-for children (utime+stime+cutime+cstime).
fn cpu_ns_with_children(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12, 13, 14]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
        .sum();
    ticks * 10_000_000 // 100 Hz clock ticks
}

fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Follows `url` over `transport` with `--json` until the last of `events` values (`{"n":events}`)
/// is printed: the seconds it took, and how many events were printed. A printer that falls
/// behind is shown the latest value (older ones coalesced), so fewer may be printed than came.
fn drain_seconds(transport: &str, url: &str, events: usize) -> (f64, usize) {
    drain_args(&["--json", "-q", "--transport", transport, url], events)
}

/// Like `drain_seconds`, for lrwatch run with `args`.
fn drain_args(args: &[&str], events: usize) -> (f64, usize) {
    let t0 = Instant::now();
    let mut child = Command::new(LRWATCH)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let last = format!("\"body\":{{\"n\":{events}}}");
    let mut printed = 0;
    let mut reader = BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "lrwatch ended before the last event");
        printed += 1;
        if line.contains(&last) {
            break;
        }
    }
    let took = t0.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    (took, printed)
}

/// A scripted server of one plain event stream (`text/event-stream` at the URL itself, no
/// LiveResource): every connection gets `retry: 0`, then `body` sent `times` times over, then
/// `tail`, and is closed; a reconnect with a `Last-Event-ID` (the tail's id) is answered 204,
/// so that lrwatch, like an EventSource, is done at once. Returns its URL.
fn event_stream_server(body: Vec<u8>, times: usize, tail: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/s", listener.local_addr().unwrap());
    let (body, tail) = (std::sync::Arc::new(body), std::sync::Arc::new(tail));
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let (body, tail) = (std::sync::Arc::clone(&body), std::sync::Arc::clone(&tail));
            // A thread per connection: lrwatch and curl read one after the other, each the
            // whole stream, larger than the socket buffers.
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let n = stream.read(&mut buf).unwrap_or(0);
                if String::from_utf8_lossy(&buf[..n])
                    .to_ascii_lowercase()
                    .contains("last-event-id")
                {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
                    );
                    return;
                }
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\nretry: 0\n\n";
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for _ in 0..times {
                    if stream.write_all(&body).is_err() {
                        return;
                    }
                }
                let _ = stream.write_all(&tail);
            });
        }
    });
    url
}

/// Seconds of one plain event stream of `block` (holding `per_block` events) sent `times` times
/// over, then `last` (data `{"last":true,…}`, with an id that makes the server answer the
/// reconnect 204), the best of `RUNS` rounds each (this 2-core machine is shared: the best
/// is the least disturbed): from starting lrwatch `--json URL` to reading its last line from
/// a pipe, asserting every event printed (a live URL's events are never coalesced); lrwatch
/// `--json URL > /dev/null` from start to exit (done at the 204); `curl -s -N -o /dev/null
/// URL`. The three take turns in each round. And the stream's bytes.
struct LiveStreamRun {
    pipe: f64,
    null: f64,
    curl: f64,
    bytes: usize,
}

/// How many rounds `live_stream_seconds` takes the best of.
const RUNS: usize = 3;

fn live_stream_seconds(block: &str, per_block: usize, times: usize, last: &str) -> LiveStreamRun {
    let events = per_block * times + 1;
    let bytes = block.len() * times + last.len();
    let url = event_stream_server(block.as_bytes().to_vec(), times, last.as_bytes().to_vec());
    let mut best = LiveStreamRun {
        pipe: f64::MAX,
        null: f64::MAX,
        curl: f64::MAX,
        bytes,
    };
    for _ in 0..RUNS {
        best.pipe = best.pipe.min(into_pipe(&url, events));
        let t0 = Instant::now();
        let status = Command::new(LRWATCH)
            .args(["--json", "-q", &url])
            .stdout(Stdio::from(std::fs::File::create("/dev/null").unwrap()))
            .status()
            .unwrap();
        assert!(status.success(), "lrwatch is done at the 204");
        best.null = best.null.min(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        let status = Command::new("curl")
            .args(["-s", "-N", "-o", "/dev/null", &url])
            .status()
            .unwrap();
        assert!(status.success());
        best.curl = best.curl.min(t0.elapsed().as_secs_f64());
    }
    best
}

/// Seconds from starting lrwatch `--json URL` to reading the last of `events` lines from its
/// pipe, which must be the stream's last event.
fn into_pipe(url: &str, events: usize) -> f64 {
    let t0 = Instant::now();
    let mut child = Command::new(LRWATCH)
        .args(["--json", "-q", url])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Read in large blocks and count lines: the reader must not be the bottleneck.
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0usize;
    let mut tail: Vec<u8> = Vec::new();
    while lines < events {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "lrwatch ended after {lines} of {events} lines");
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 8192 {
            tail.drain(..tail.len() - 8192);
        }
    }
    let took = t0.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(lines, events, "one line per event");
    let tail = String::from_utf8_lossy(&tail);
    let last_line = tail.trim_end().rsplit('\n').next().unwrap_or("");
    let envelope: serde_json::Value = serde_json::from_str(last_line).expect("a --json line");
    assert_eq!(envelope["body"]["last"], true, "{last_line}");
    took
}

/// A plain WebSocket server: every connection gets `events` text messages `{"n":N}` at once,
/// then is held open. Returns its address and the bytes of the messages.
fn ws_url_server(events: usize) -> (std::net::SocketAddr, usize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bytes = (1..=events).map(|i| format!("{{\"n\":{i}}}").len()).sum();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(stream) else {
                    return;
                };
                for i in 1..=events {
                    let message = tungstenite::Message::text(format!("{{\"n\":{i}}}"));
                    if ws.write(message).is_err() {
                        return;
                    }
                }
                let _ = ws.flush();
                while ws.read().is_ok() {}
            });
        }
    });
    (addr, bytes)
}

/// A server for the socket throughput: `GET /r` advertises a `multiplex-socket` at `/sock`
/// (and answers 304 to a catch-up); the socket acknowledges the subscription, then pushes
/// `events` updates of a small JSON value back to back. Returns its address and how many bytes
/// of messages the updates are.
fn socket_server(events: usize) -> (std::net::SocketAddr, usize) {
    use lrwatch::wire::socket::ServerMessage;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let update = |uri: &str, i: usize| {
        ServerMessage::Update {
            uri: uri.to_string(),
            headers: vec![("ETag".into(), format!("\"{i}\""))],
            content: format!("{{\"n\":{i}}}"),
        }
        .encode()
    };
    let bytes = (1..=events).map(|i| update("/r", i).len()).sum();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = [0u8; 4096];
            let n = stream.peek(&mut head).unwrap_or(0);
            let head = String::from_utf8_lossy(&head[..n]).to_string();
            if head.starts_with("GET /sock") {
                std::thread::spawn(move || {
                    // The error type is tungstenite's, fixed by its callback signature.
                    #[allow(clippy::result_large_err)]
                    let callback = |_: &tungstenite::handshake::server::Request,
                                    mut response: tungstenite::handshake::server::Response| {
                        response
                            .headers_mut()
                            .insert("Sec-WebSocket-Protocol", "liveresource".parse().unwrap());
                        Ok(response)
                    };
                    let Ok(mut ws) = tungstenite::accept_hdr(stream, callback) else {
                        return;
                    };
                    let Ok(tungstenite::Message::Text(get)) = ws.read() else {
                        return;
                    };
                    let uri = get.as_str().trim_start_matches("GET ").trim().to_string();
                    let _ = ws.send(tungstenite::Message::text(format!("OK {uri}")));
                    for i in 1..=events {
                        if ws
                            .write(tungstenite::Message::text(update(&uri, i)))
                            .is_err()
                        {
                            return;
                        }
                    }
                    let _ = ws.flush();
                    // Hold the socket open until the client is done.
                    while ws.read().is_ok() {}
                });
                continue;
            }
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            if head.to_ascii_lowercase().contains("if-none-match") {
                let _ = write!(
                    stream,
                    "HTTP/1.1 304 Not Modified\r\nETag: \"0\"\r\nConnection: close\r\n\r\n"
                );
            } else {
                let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: \"0\"\r\nLink: </sock>; rel=multiplex-socket\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{{\"n\":0}}");
            }
        }
    });
    (addr, bytes)
}

/// A long-poll server like Python's `http.server`: keep-alive, Nagle's algorithm left on, and
/// every answer's head and body written in two writes (so the body waits for the client's ACK
/// of the head). `GET /r` answers the value N with ETag `"vN"` and a `value-wait` link to
/// itself; with `If-None-Match` of the current ETag and `Wait`, it holds until the value
/// changes (or the wait runs out: 304). Returns the URL and the function that changes it.
fn split_write_server() -> (String, impl Fn()) {
    use std::sync::{Arc, Condvar, Mutex};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/r", listener.local_addr().unwrap());
    let state = Arc::new((Mutex::new(0u64), Condvar::new()));
    let shared = Arc::clone(&state);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let state = Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let (mut inm, mut wait) = (None, None);
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = l.split_once(':') {
                            match name.trim().to_ascii_lowercase().as_str() {
                                "if-none-match" => inm = Some(value.trim().to_string()),
                                "wait" => wait = value.trim().parse::<u64>().ok(),
                                _ => {}
                            }
                        }
                    }
                    let (lock, changed) = &*state;
                    let mut now = lock.lock().unwrap();
                    if let (Some(held), Some(wait)) = (&inm, wait) {
                        let etag = format!("\"v{}\"", *now);
                        now = changed
                            .wait_timeout_while(now, Duration::from_secs(wait), |v| {
                                format!("\"v{v}\"") == etag && *held == etag
                            })
                            .unwrap()
                            .0;
                    }
                    let value = *now;
                    drop(now);
                    let etag = format!("\"v{value}\"");
                    if inm.as_deref() == Some(etag.as_str()) {
                        let _ = write!(stream, "HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\n\r\n");
                        continue;
                    }
                    let body = value.to_string();
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: {etag}\r\nLink: </r>; rel=value-wait\r\nContent-Length: {}\r\n\r\n", body.len());
                    // Two writes, as http.server's end_headers() and wfile.write() make.
                    if stream.write_all(head.as_bytes()).is_err()
                        || stream.write_all(body.as_bytes()).is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    let change = move || {
        let (lock, changed) = &*state;
        *lock.lock().unwrap() += 1;
        changed.notify_all();
    };
    (url, change)
}

/// Change-to-line latency (p50, p99) of `changes` changes of the split-write server, seen
/// through a command whose stdout prints the value; each change comes 100–200 ms after the
/// last, time enough for the follower to ask again.
fn split_write_latency(
    changes: usize,
    follow: impl FnOnce(&str) -> (Child, Receiver<(Instant, String)>),
    line_has: impl Fn(&str, usize) -> bool,
) -> (f64, f64) {
    let (url, change) = split_write_server();
    let (mut child, rx) = follow(&url);
    rx.recv_timeout(Duration::from_secs(10))
        .expect("initial value");
    let mut samples = Vec::new();
    for i in 1..=changes {
        std::thread::sleep(Duration::from_millis(100 + fastrand::u64(0..100)));
        let t0 = Instant::now();
        change();
        loop {
            let (at, line) = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("the change");
            if line_has(&line, i) {
                samples.push(ms(at - t0));
                break;
            }
        }
    }
    // The curl loop runs in its own process group: end the held curl with its shell. (For
    // lrwatch, no such group exists and `kill` only says so.)
    let _ = Command::new("kill")
        .args(["--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
    samples.sort_by(f64::total_cmp);
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

/// Raw requests to the reference server at `addr`: a value stream of `path`, or a long-poll
/// held until it changes from ETag "0".
fn raw_request(addr: &str, path: &str, kind: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = if kind == "value-stream" {
        format!("GET {path}?stream=value HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    } else {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"0\"\r\nWait: 60\r\nConnection: close\r\n\r\n")
    };
    s.write_all(head.as_bytes()).expect("request");
    s
}

/// Reads until `needle` has arrived (or the peer closes); whether it did.
fn read_until(s: &mut TcpStream, seen: &mut Vec<u8>, needle: &[u8]) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        if seen.windows(needle.len()).any(|w| w == needle) {
            return true;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// One change of a counter followed `count` times over `kind`, each follower on its own
/// thread: the times from the change's POST to each follower's read of it (p50, p99, last).
fn fan_out(base: &str, addr: &str, kind: &str, count: usize) -> (f64, f64, f64) {
    let path = format!("/counter/fan-{kind}");
    let (ready_tx, ready) = mpsc::channel();
    let (seen_tx, seen) = mpsc::channel();
    let go = std::sync::Arc::new(std::sync::Barrier::new(count + 1));
    for _ in 0..count {
        let (ready_tx, seen_tx, go) = (ready_tx.clone(), seen_tx.clone(), go.clone());
        let (addr, path, kind) = (addr.to_string(), path.clone(), kind.to_string());
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let mut s = raw_request(&addr, &path, &kind);
                let mut got = Vec::new();
                // A stream is in place once its opening comment arrived; a long-poll once sent.
                let change: &[u8] = if kind == "value-stream" {
                    assert!(read_until(&mut s, &mut got, b": open"), "stream opened");
                    b"data: 1"
                } else {
                    b"\r\n\r\n1"
                };
                ready_tx.send(()).unwrap();
                go.wait();
                let found = read_until(&mut s, &mut got, change);
                seen_tx.send((Instant::now(), found)).unwrap();
            })
            .expect("thread");
    }
    for _ in 0..count {
        ready.recv_timeout(Duration::from_secs(60)).expect("ready");
    }
    // The held long-polls cannot say when the server holds them: give it a moment.
    std::thread::sleep(Duration::from_millis(500));
    go.wait();
    let agent = agent();
    let t0 = Instant::now();
    agent
        .post(&format!("{base}{path}"))
        .send_empty()
        .expect("post");
    let mut samples = Vec::new();
    for _ in 0..count {
        let (at, found) = seen.recv_timeout(Duration::from_secs(60)).expect("seen");
        assert!(found, "every follower saw the change");
        samples.push(ms(at - t0));
    }
    samples.sort_by(f64::total_cmp);
    (
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples[samples.len() - 1],
    )
}

/// `each` held long-polls and `each` open streams on ten counters at once, then one change
/// of each counter: seconds to open them all, and from the changes to the last answer read.
fn held(base: &str, addr: &str, each: usize) -> (f64, f64) {
    let t0 = Instant::now();
    let mut polls: Vec<TcpStream> = (0..each)
        .map(|i| raw_request(addr, &format!("/counter/held{}", i % 10), "value-wait"))
        .collect();
    let mut streams: Vec<(TcpStream, Vec<u8>)> = (0..each)
        .map(|i| {
            let mut s = raw_request(addr, &format!("/counter/held{}", i % 10), "value-stream");
            let mut got = Vec::new();
            assert!(read_until(&mut s, &mut got, b": open"), "stream opened");
            (s, got)
        })
        .collect();
    let opened = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let agent = agent();
    let t0 = Instant::now();
    for key in 0..10 {
        agent
            .post(&format!("{base}/counter/held{key}"))
            .send_empty()
            .expect("post");
    }
    for s in &mut polls {
        let mut got = Vec::new();
        assert!(read_until(s, &mut got, b"\r\n\r\n1"), "long-poll answered");
    }
    for (s, got) in &mut streams {
        assert!(read_until(s, got, b"data: 1"), "stream event");
    }
    (opened, t0.elapsed().as_secs_f64())
}

fn main() {
    let base = server();
    let mut rows: Vec<String> = Vec::new();
    let row = |rows: &mut Vec<String>, cells: &[String]| {
        let line = format!("| {} |", cells.join(" | "));
        println!("{line}");
        rows.push(line);
    };

    // `BENCH_ONLY=diff,memory` runs just those sections (latency, split-write, startup, diff,
    // memory, throughput, server, idle); by default all run. `BENCH_HELD` sets how many long-polls
    // and as many streams the server section holds at once (4000: 16,000 descriptors).
    let only = std::env::var("BENCH_ONLY").ok();
    let run = |section: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|s| s.trim() == section))
    };
    println!("| measure | goal | lrwatch | alternative | ratio |\n|---|---|---|---|---|");

    // 1. Change-to-output latency.
    if run("latency") {
        // The alternative: a shell loop printing the value every `period` seconds.
        let curl_loop = |name: &str, changes: usize, spacing: u64, period: &str| {
            latency(
                &base,
                name,
                changes,
                Duration::from_millis(spacing),
                |url| {
                    let script = format!("while :; do curl -s '{url}'; echo; sleep {period}; done");
                    let mut child = Command::new("sh")
                        .args(["-c", &script])
                        .stdout(Stdio::piped())
                        .spawn()
                        .unwrap();
                    let rx = lines(child.stdout.take().unwrap());
                    (child, rx)
                },
                |line, i| line.trim() == i.to_string(),
            )
        };
        let (curl1_50, curl1_99) = curl_loop("curl1", 20, 300, "1");
        let (curl01_50, curl01_99) = curl_loop("curl01", 100, 30, "0.1");
        for (transport, form, goal) in [
            ("value-stream", "b", 1.0),
            ("multiplex-ws", "a", 1.0),
            ("multiplex-socket", "b", 1.0),
            ("value-wait", "a", 2.0),
            ("multiplex-wait", "a", 2.0),
        ] {
            let (p50, p99) = latency(
                &base,
                transport,
                200,
                Duration::from_millis(5),
                |url| {
                    let url = format!("{url}?form={form}");
                    spawn(&["--json", "-q", "--transport", transport, &url])
                },
                json_body_is,
            );
            row(&mut rows, &[
            format!("latency p50 / p99, {transport}, 200 changes"),
            format!("p50 ≤ {goal} ms; ≥ 200× the 1 s curl loop"),
            format!("{p50:.2} / {p99:.2} ms"),
            format!("curl every 1 s: {curl1_50:.0} / {curl1_99:.0} ms; every 0.1 s: {curl01_50:.1} / {curl01_99:.1} ms"),
            format!("{:.0}× (p50, vs 1 s loop)", curl1_50 / p50),
        ]);
        }
    }

    // 1b. Long-polls on a server that writes head and body apart with Nagle on (issue 13):
    // lrwatch's reused keep-alive connection beside curl's new connection per long-poll.
    if run("split-write") {
        let changes = 100;
        let (ours50, ours99) = split_write_latency(
            changes,
            |url| spawn(&["--json", "-q", "--transport", "value-wait", url]),
            json_body_is,
        );
        let (curl50, curl99) = split_write_latency(
            changes,
            |url| {
                // What a user would script: print the value, then long-poll for the next one
                // with a new curl (a new connection) each time; a 304 prints nothing.
                let script = format!(
                    "v=$(curl -s '{url}'); echo \"$v\"; while :; do b=$(curl -s -H \"If-None-Match: \\\"v$v\\\"\" -H 'Wait: 55' '{url}'); if [ -n \"$b\" ]; then echo \"$b\"; v=$b; fi; done"
                );
                let mut command = Command::new("sh");
                command.args(["-c", &script]).stdout(Stdio::piped());
                // Its own process group, so that the held curl can be ended with the shell.
                #[cfg(unix)]
                std::os::unix::process::CommandExt::process_group(&mut command, 0);
                let mut child = command.spawn().unwrap();
                let rx = lines(child.stdout.take().unwrap());
                (child, rx)
            },
            |line, i| line.trim() == i.to_string(),
        );
        row(
            &mut rows,
            &[
                format!("latency p50 / p99, value-wait, server writing head and body apart (Nagle on), {changes} changes"),
                "p50 ≤ 2× curl's".into(),
                format!("{ours50:.2} / {ours99:.2} ms"),
                format!("curl long-poll loop, a new connection each: {curl50:.2} / {curl99:.2} ms"),
                format!("{:.2}× curl (p50)", ours50 / curl50),
            ],
        );
    }

    // 5. Start-up: exec to first value on stdout, beside curl fetching the same URL.
    if run("startup") {
        let url = format!("{base}/counter/startup");
        let runs = 20;
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..runs {
            let t0 = Instant::now();
            let (mut child, rx) = spawn(&["-n", "1", "-q", &url]);
            rx.recv_timeout(Duration::from_secs(10)).expect("value");
            ours.push(ms(t0.elapsed()));
            let _ = child.wait();
            let t0 = Instant::now();
            let out = Command::new("curl").args(["-s", &url]).output().unwrap();
            assert!(out.status.success());
            theirs.push(ms(t0.elapsed()));
        }
        ours.sort_by(f64::total_cmp);
        theirs.sort_by(f64::total_cmp);
        let (o, t) = (percentile(&ours, 0.5), percentile(&theirs, 0.5));
        row(
            &mut rows,
            &[
                "start-up to first value (median of 20)".into(),
                "≤ 2× curl".into(),
                format!("{o:.1} ms"),
                format!("curl -s: {t:.1} ms"),
                format!("{:.2}× curl", o / t),
            ],
        );
    }

    // 6. --diff between two 1 MB JSON documents: the whole path from the change to the
    // output, with and without --diff; the difference is what the diff itself costs.
    if run("diff") {
        for (what, every) in [("a few fields", 5000usize), ("many fields", 3)] {
            let doc = |version: usize| {
                let items: Vec<serde_json::Value> = (0..20_000)
                .map(|i| serde_json::json!({"id": i, "name": format!("item number {i}"), "value": if i % every == 0 { i + version } else { i }}))
                .collect();
                serde_json::json!({"items": items}).to_string()
            };
            let (a, b) = (doc(0), doc(1));
            let url = format!("{base}/objects/big-{every}");
            let agent = agent();
            // The fastest of `RUNS` runs (the label below says how many).
            const RUNS: usize = 3;
            let took = |diff: bool| {
                let mut best = f64::MAX;
                for _ in 0..RUNS {
                    put(&agent, &url, &a);
                    let mut args =
                        vec!["-n", "2", "-q", "--transport", "value-stream", url.as_str()];
                    if diff {
                        args.insert(0, "--diff");
                    }
                    let (mut child, rx) = spawn(&args);
                    rx.recv_timeout(Duration::from_secs(10))
                        .expect("first value");
                    let t0 = Instant::now();
                    put(&agent, &url, &b);
                    let _ = child.wait();
                    best = best.min(ms(t0.elapsed()));
                }
                best
            };
            let (plain, diffed) = (took(false), took(true));
            // The work --diff adds per event, in-process: normalizing the new value (sorted,
            // pretty) and rendering the diff, without and with color; median of 9.
            let (body_a, body_b) = (
                lrwatch::Body::new(a.clone().into_bytes(), Some("application/json".into())),
                lrwatch::Body::new(b.clone().into_bytes(), Some("application/json".into())),
            );
            let old = diff::normalized(Some(&body_a));
            let labels = diff::Labels { old: "a", new: "b" };
            let cost = |color: bool| {
                let mut samples: Vec<f64> = (0..9)
                    .map(|_| {
                        let t0 = Instant::now();
                        let new = diff::normalized(Some(&body_b));
                        let out = diff::render(&old, &new, &labels, color, color);
                        std::hint::black_box(out);
                        ms(t0.elapsed())
                    })
                    .collect();
                samples.sort_by(f64::total_cmp);
                percentile(&samples, 0.5)
            };
            let (plain_cost, color_cost) = (cost(false), cost(true));
            row(
            &mut rows,
            &[
                format!(
                    "--diff of a {} KB JSON document, {what} changed",
                    a.len() / 1024
                ),
                "≤ 50 ms per event".into(),
                format!("{plain_cost:.1} ms per event ({color_cost:.1} ms in color); change to diff printed {diffed:.0} ms (best of {RUNS})"),
                format!("without --diff: {plain:.0} ms change to value printed (best of {RUNS})"),
                "—".into(),
            ],
        );
        }
    }

    // 3. Memory: peak RSS.
    if run("memory") {
        for (label, count, transport, goal) in [
            ("1 resource", 1usize, "value-stream", "≤ 8 MB"),
            (
                "1,000 resources by separate long-polls",
                1000,
                "value-wait",
                "≤ 128 MB",
            ),
            (
                "1,000 resources over one socket",
                1000,
                "multiplex-socket",
                "≤ 32 MB",
            ),
            (
                "10,000 resources over one socket",
                10_000,
                "multiplex-socket",
                "≤ 96 MB",
            ),
        ] {
            let urls: Vec<String> = (0..count)
                .map(|i| format!("{base}/counter/{transport}-{count}-{i}?form=b"))
                .collect();
            let mut args = vec!["--json", "-q", "--transport", transport];
            args.extend(urls.iter().map(String::as_str));
            let started = Instant::now();
            let (mut child, rx) = spawn(&args);
            for _ in 0..count {
                let (_, line) = rx
                    .recv_timeout(Duration::from_secs(60))
                    .expect("initial values");
                // Each resource is followed on the transport measured, none fell back.
                let event: serde_json::Value = serde_json::from_str(&line).expect("an event");
                assert_eq!(event["transport"], transport, "{line}");
            }
            let ready = started.elapsed();
            // The followers are live, not just started: a change of the last one comes through.
            let last = format!("{base}/counter/{transport}-{count}-{}", count - 1);
            agent().post(&last).send_empty().expect("post");
            loop {
                let (_, line) = rx
                    .recv_timeout(Duration::from_secs(60))
                    .expect("the change");
                let event: serde_json::Value = serde_json::from_str(&line).expect("an event");
                if event["body"] == 1 && event["uri"].as_str().is_some_and(|u| u.starts_with(&last))
                {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(500));
            let kb = peak_rss_kb(child.id());
            let _ = child.kill();
            let _ = child.wait();
            row(
                &mut rows,
                &[
                    format!("peak RSS, {label}"),
                    goal.into(),
                    format!(
                        "{:.1} MB (every initial value printed {:.2} s after start, then a change)",
                        kb as f64 / 1024.0,
                        ready.as_secs_f64()
                    ),
                    "—".into(),
                    "—".into(),
                ],
            );
        }
    }

    // 4. Throughput: one event stream of small JSON values, written as NDJSON to /dev/null.
    if run("throughput") {
        let events = 500_000usize;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut payload = String::from(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n",
        );
        for i in 1..=events {
            payload.push_str(&format!("data: {{\"n\":{i}}}\n\n"));
        }
        let bytes = payload.len();
        let payload = std::sync::Arc::new(payload);
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                // A thread per connection: the stream is larger than the socket buffers, so
                // its write blocks until read, while lrwatch catches up on another connection.
                let payload = std::sync::Arc::clone(&payload);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf);
                    let head = String::from_utf8_lossy(&buf);
                    if head.starts_with("GET /r ") {
                        let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLink: </s>; rel=value-stream\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{{\"n\":0}}");
                    } else if head.starts_with("GET /s ") {
                        let _ = stream.write_all(payload.as_bytes());
                    } else {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n"
                        );
                    }
                });
            }
        });
        let (ours, printed) = drain_seconds("value-stream", &format!("http://{addr}/r"), events);
        let t0 = Instant::now();
        let status = Command::new("curl")
            .args(["-s", "-N", "-o", "/dev/null", &format!("http://{addr}/s")])
            .status()
            .unwrap();
        assert!(status.success());
        let curl = t0.elapsed().as_secs_f64();
        row(
            &mut rows,
            &[
                format!("throughput, one event stream, {events} small JSON events, --json into a pipe read to the last"),
                "≥ 100,000 events/s; ≥ 50% of curl's byte rate".into(),
                format!(
                    "{:.0} events/s ({:.1} MB/s; {printed} printed, the rest coalesced)",
                    events as f64 / ours,
                    bytes as f64 / ours / 1e6
                ),
                format!("curl -N raw: {:.1} MB/s", bytes as f64 / curl / 1e6),
                format!("{:.0}% of curl's byte rate", 100.0 * curl / ours),
            ],
        );

        // A plain event stream given directly (no LiveResource): every event is printed, none
        // coalesced. Events of about 1 KB (a JSON object with a padding string), then small ones.
        {
            let pad = "x".repeat(1000);
            let block: String = (0..1000)
                .map(|i| format!("data: {{\"i\":{i},\"pad\":\"{pad}\"}}\n\n"))
                .collect();
            let last = format!("id: end\ndata: {{\"last\":true,\"pad\":\"{pad}\"}}\n\n");
            let times = 200;
            let run = live_stream_seconds(&block, 1000, times, &last);
            let events = 1000 * times + 1;
            let mb_s = |seconds: f64| run.bytes as f64 / seconds / 1e6;
            row(
            &mut rows,
            &[
                format!("throughput, a plain event-stream URL, {events} JSON events of {} bytes, `--json URL` into a pipe read to the end; and `> /dev/null` (best of {RUNS})", block.len() / 1000),
                "≥ 50% of curl's byte rate".into(),
                format!(
                    "pipe: {:.0} events/s, {:.1} MB/s of stream (all printed); /dev/null: {:.1} MB/s",
                    events as f64 / run.pipe,
                    mb_s(run.pipe),
                    mb_s(run.null)
                ),
                format!("curl -N -o /dev/null: {:.1} MB/s", mb_s(run.curl)),
                format!(
                    "pipe {:.0}%, /dev/null {:.0}% of curl's byte rate",
                    100.0 * run.curl / run.pipe,
                    100.0 * run.curl / run.null
                ),
            ],
        );
            let block: String = (0..1000)
                .map(|i| format!("data: {{\"n\":{i}}}\n\n"))
                .collect();
            let last = "id: end\ndata: {\"last\":true}\n\n".to_string();
            let times = 1000;
            let run = live_stream_seconds(&block, 1000, times, &last);
            let events = 1000 * times + 1;
            let mb_s = |seconds: f64| run.bytes as f64 / seconds / 1e6;
            row(
            &mut rows,
            &[
                format!("throughput, a plain event-stream URL, {events} small JSON events, `--json URL` into a pipe read to the end; and `> /dev/null` (best of {RUNS})"),
                "≥ 500,000 events/s".into(),
                format!(
                    "pipe: {:.0} events/s, {:.1} MB/s (all printed); /dev/null: {:.0} events/s",
                    events as f64 / run.pipe,
                    mb_s(run.pipe),
                    events as f64 / run.null
                ),
                format!("curl -N -o /dev/null: {:.1} MB/s", mb_s(run.curl)),
                format!(
                    "pipe {:.0}%, /dev/null {:.0}% of curl's byte rate",
                    100.0 * run.curl / run.pipe,
                    100.0 * run.curl / run.null
                ),
            ],
        );
        }

        // The same over one socket (multiplex-socket, form B): a scripted server pushes every
        // update as soon as the subscription is acknowledged.
        let (addr, bytes) = socket_server(events);
        let (ours, printed) =
            drain_seconds("multiplex-socket", &format!("http://{addr}/r"), events);
        row(
            &mut rows,
            &[
                format!("throughput, one socket, {events} small JSON updates, --json into a pipe read to the last"),
                "≥ 100,000 events/s".into(),
                format!(
                    "{:.0} events/s ({:.1} MB/s of messages; {printed} printed, the rest coalesced)",
                    events as f64 / ours,
                    bytes as f64 / ours / 1e6
                ),
                "— (curl does not speak WebSocket)".into(),
                "—".into(),
            ],
        );

        // A `ws://` URL given directly: a server sends every message as soon as it connects.
        let (addr, bytes) = ws_url_server(events);
        let (ours, printed) = drain_args(&["--json", "-q", &format!("ws://{addr}/feed")], events);
        row(
            &mut rows,
            &[
                format!("throughput, a ws:// URL, {events} small JSON messages, --json into a pipe read to the last"),
                "—".into(),
                format!(
                    "{:.0} events/s ({:.1} MB/s of messages; {printed} printed)",
                    events as f64 / ours,
                    bytes as f64 / ours / 1e6
                ),
                "— (curl does not speak WebSocket)".into(),
                "—".into(),
            ],
        );
    }

    // 2. Idle cost: CPU used following one unchanged resource, all transports at once: with
    // the default safety net (`--verify 60`: one conditional GET a minute on streams, sockets
    // and webhooks; long-polls are answered every 55 s anyway), and with a check every 10 s.
    if run("idle") {
        let idle = std::env::var("BENCH_IDLE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60u64);
        let mut followers = Vec::new();
        for (transport, form, verify) in [
            ("value-stream", "b", "60"),
            ("multiplex-ws", "a", "60"),
            ("multiplex-socket", "b", "60"),
            ("value-wait", "a", "60"),
            ("multiplex-wait", "a", "60"),
            ("value-stream", "b", "10"),
            ("multiplex-socket", "b", "10"),
            ("value-wait", "a", "10"),
        ] {
            let url = format!("{base}/counter/idle-{transport}-{verify}?form={form}");
            let (child, rx) = spawn(&["-q", "--verify", verify, "--transport", transport, &url]);
            rx.recv_timeout(Duration::from_secs(10)).expect("initial");
            followers.push((format!("{transport}, --verify {verify}"), child, rx));
        }
        let mut watch = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "while :; do curl -s '{base}/counter/idle-curl' >/dev/null; sleep 1; done"
                ),
            ])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs(1));
        let before: Vec<u64> = followers.iter().map(|(_, c, _)| cpu_ns(c.id())).collect();
        let watch_before = cpu_ns_with_children(watch.id());
        std::thread::sleep(Duration::from_secs(idle));
        let watch_used = cpu_ns_with_children(watch.id()) - watch_before;
        let _ = watch.kill();
        let _ = watch.wait();
        for ((transport, child, _), before) in followers.iter_mut().zip(before) {
            let used = cpu_ns(child.id()) - before;
            let per_minute = used as f64 / 1e6 * 60.0 / idle as f64;
            let curl_per_minute = watch_used as f64 / 1e6 * 60.0 / idle as f64;
            row(
                &mut rows,
                &[
                    format!("idle CPU, {transport}, {idle} s"),
                    "≤ 5 ms per minute (push transports)".into(),
                    format!("{per_minute:.1} ms/min"),
                    format!("curl every 1 s: {curl_per_minute:.0} ms/min"),
                    format!("{:.0}× less", curl_per_minute / per_minute.max(0.01)),
                ],
            );
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    // 7. Scale of the reference server: fan-out latency of one change to 1,000 followers of
    // each kind, then how many held long-polls and open streams it carries at once.
    if run("server") {
        let addr = base.trim_start_matches("http://").to_string();
        for (kind, goal_label) in [("value-stream", "streams"), ("value-wait", "long-polls")] {
            let (p50, p99, max) = fan_out(&base, &addr, kind, 1000);
            row(
                &mut rows,
                &[
                    format!("reference server fan-out: one change to 1,000 {goal_label} ({kind})"),
                    "measured, no goal".into(),
                    format!("p50 {p50:.1} ms, p99 {p99:.1} ms, last {max:.1} ms after the change"),
                    "—".into(),
                    "—".into(),
                ],
            );
        }
        let each = std::env::var("BENCH_HELD")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(4000usize);
        let (opened, answered) = held(&base, &addr, each);
        row(
            &mut rows,
            &[
                format!("reference server: {each} held long-polls and {each} open streams at once"),
                "measured, no goal".into(),
                format!("opened in {opened:.2} s; all {} answered {answered:.2} s after one change each", 2 * each),
                "—".into(),
                "—".into(),
            ],
        );
    }

    eprintln!("{} rows", rows.len());
}
