//! A server that floods: an event stream sending `data: 1`, `data: 2`, … as fast as it can,
//! while what reads lrwatch's output falls behind (a pipe nobody reads, a slow diff, a command
//! per event). Memory stays bounded (VmHWM from /proc), and once the reader catches up the
//! last value printed is the server's latest.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::*;

/// The most resident memory lrwatch may reach in any flood.
const MAX_RSS_KB: u64 = 64 * 1024;
/// How long the flood runs before memory is read.
const FLOOD: Duration = Duration::from_secs(2);

/// A flooding server: `GET /r` is the resource (`0`, ETag `"0"`, a `value-stream` link to
/// `/s`; 304 to a conditional GET); `GET /s` sends `event(n)` for n = 1, 2, … until
/// `stop`, then holds the stream open. The numbers go on across connections.
struct Flood {
    base: String,
    stop: Arc<AtomicBool>,
    /// The next n to send.
    next: Arc<AtomicU64>,
    /// The last n sent, once the flood stopped.
    stopped: Receiver<u64>,
}

fn flood_server(event: fn(u64) -> String) -> Flood {
    flood_server_of("value-stream", "0", event)
}

/// A flooding server whose resource is `value` and links to the stream as `rel`.
fn flood_server_of(rel: &'static str, value: &'static str, event: fn(u64) -> String) -> Flood {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(1));
    let (stopped_tx, stopped) = mpsc::channel();
    let flag = Arc::clone(&stop);
    let counter = Arc::clone(&next);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (stop, next, stopped_tx) =
                (Arc::clone(&flag), Arc::clone(&counter), stopped_tx.clone());
            std::thread::spawn(move || {
                let Some(seen) = read_head(&stream) else {
                    return;
                };
                if seen.path != "/s" {
                    if seen.header("if-none-match").is_some() {
                        respond(&stream, 304, &[("ETag", "\"0\"")], "");
                    } else {
                        let link = format!("</s>; rel=\"{rel}\"");
                        let headers = [
                            ("ETag", "\"0\""),
                            ("Content-Type", "application/json"),
                            ("Link", link.as_str()),
                        ];
                        respond(&stream, 200, &headers, value);
                    }
                    return;
                }
                let mut out = std::io::BufWriter::with_capacity(64 * 1024, &stream);
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";
                if out.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let mut last = 0;
                while !stop.load(Ordering::SeqCst) {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if out.write_all(event(n).as_bytes()).is_err() {
                        return;
                    }
                    last = n;
                }
                if out.flush().is_err() {
                    return;
                }
                let _ = stopped_tx.send(last);
                // Held open (quiet) until lrwatch is done with it.
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut buf = [0u8; 64];
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                while Instant::now() < deadline {
                    if matches!((&stream).read(&mut buf), Ok(0)) {
                        return;
                    }
                }
            });
        }
    });
    Flood {
        base,
        stop,
        next,
        stopped,
    }
}

fn numbers(n: u64) -> String {
    format!("data: {n}\n\n")
}

/// A kilobyte per event: a slow consumer falls behind faster.
fn padded(n: u64) -> String {
    format!("data: {n} {}\n\n", "x".repeat(1000))
}

/// Four kilobytes per event.
fn padded_more(n: u64) -> String {
    format!("data: {n} {}\n\n", "x".repeat(4000))
}

/// A JSON value of 2,000 lines when pretty-printed (as `--diff` does), of which one changes.
fn long_json(n: u64) -> String {
    let list: Vec<String> = (0..2000).map(|i| i.to_string()).collect();
    format!("data: {{\"a\":[{}],\"n\":{n}}}\n\n", list.join(","))
}

/// Changes of a kilobyte each: `{"n":N,"pad":"xx…"}`.
fn changes(n: u64) -> String {
    format!("data: {{\"n\":{n},\"pad\":\"{}\"}}\n\n", "x".repeat(1000))
}

/// lrwatch with `args`, its stdout going to `stdout`.
fn spawn(args: &[&str], stdout: Stdio) -> Child {
    without_proxy(&mut Command::new(env!("CARGO_BIN_EXE_lrwatch")))
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lrwatch")
}

/// A field of /proc/<pid>/status, in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

/// Lets the flood run, then reads lrwatch's peak memory, asserting it stayed bounded.
fn peak_after_flood(child: &mut Child, what: &str) -> u64 {
    std::thread::sleep(FLOOD);
    assert!(
        child.try_wait().unwrap().is_none(),
        "{what}: lrwatch exited during the flood"
    );
    let peak = status_kb(child.id(), "VmHWM:");
    let now = status_kb(child.id(), "VmRSS:");
    eprintln!("{what}: VmHWM {peak} kB, VmRSS {now} kB after {FLOOD:?} of flood");
    assert!(
        peak <= MAX_RSS_KB,
        "{what}: peak RSS {peak} kB over {MAX_RSS_KB} kB"
    );
    peak
}

/// Stdout's lines, read on a thread of their own.
fn lines_of(stdout: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::with_capacity(1 << 20, stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Takes lines until `done` says one is the last wanted; all the lines taken.
fn read_until(rx: &Receiver<String>, done: impl Fn(&str) -> bool) -> Vec<String> {
    let mut lines = Vec::new();
    let deadline = Instant::now() + BOUND;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let last = done(&line);
                lines.push(line);
                if last {
                    return lines;
                }
            }
            Err(_) => panic!(
                "the last value never came within {BOUND:?}; {} lines, last {:?}",
                lines.len(),
                lines.last()
            ),
        }
    }
}

/// Values printed one per line, as numbers: they only ever grow.
fn assert_increasing(lines: &[String]) {
    let mut before = -1i64;
    for line in lines {
        let n: i64 = line.trim().parse().unwrap_or_else(|_| panic!("{line:?}"));
        assert!(n > before, "{n} printed after {before}");
        before = n;
    }
}

#[test]
fn a_flood_into_a_pipe_nobody_reads_stays_bounded_and_ends_on_the_latest() {
    let flood = flood_server(numbers);
    let url = format!("{}/r", flood.base);
    let mut child = spawn(&["--transport", "value-stream", &url], Stdio::piped());
    let stdout = child.stdout.take().unwrap();
    peak_after_flood(&mut child, "plain output, a pipe nobody reads");
    flood.stop.store(true, Ordering::SeqCst);
    let latest = flood
        .stopped
        .recv_timeout(BOUND)
        .expect("the flood stopped");
    let want = latest.to_string();
    let lines = read_until(&lines_of(stdout), move |line| line == want);
    assert_eq!(lines[0], "0", "the initial value comes first");
    assert_increasing(&lines);
    let _ = child.kill();
    let mut stderr = String::new();
    let _ = child.wait();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    assert_eq!(
        stderr.matches("falling behind").count(),
        1,
        "the coalescing is said once: {stderr}"
    );
}

/// A file to write output to, under the target directory.
fn scratch(name: &str) -> (std::fs::File, std::path::PathBuf) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("flood-{name}-{}", std::process::id()));
    (std::fs::File::create(&path).unwrap(), path)
}

#[test]
fn a_flood_with_json_to_a_file_stays_bounded() {
    flood_to_a_file("--json");
}

#[test]
fn a_flood_with_diff_to_a_file_stays_bounded() {
    flood_to_a_file("--diff");
}

/// A flood followed in `mode` (slower to print than plain lines) into a file.
fn flood_to_a_file(mode: &str) {
    let flood = flood_server(match mode {
        "--diff" => long_json,
        _ => padded_more,
    });
    let url = format!("{}/r", flood.base);
    let (file, path) = scratch(mode.trim_start_matches('-'));
    let mut child = spawn(
        &[mode, "-q", "--transport", "value-stream", &url],
        file.into(),
    );
    peak_after_flood(&mut child, mode);
    flood.stop.store(true, Ordering::SeqCst);
    let latest = flood
        .stopped
        .recv_timeout(BOUND)
        .expect("the flood stopped");
    // The latest value reaches the file.
    let (marker, want) = match mode {
        "--json" => ("\"body\":", format!("\"body\":\"{latest} x")),
        _ => ("+  \"n\": ", format!("+  \"n\": {latest}")),
    };
    let deadline = Instant::now() + BOUND;
    loop {
        let text = tail(&path);
        let last = text
            .lines()
            .rev()
            .find(|l| l.contains(marker))
            .unwrap_or("");
        if last.contains(&want) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{mode}: the latest value {latest} never reached the file; last line {last:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    eprintln!("{mode}: {size} bytes written");
    let _ = std::fs::remove_file(&path);
}

/// The last 64 KiB of a file, as text.
fn tail(path: &std::path::Path) -> String {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path).unwrap();
    let len = file.metadata().unwrap().len();
    file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))
        .unwrap();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn a_flood_with_exec_stays_bounded() {
    let flood = flood_server(padded);
    let url = format!("{}/r", flood.base);
    let mut child = spawn(
        &["-q", "--transport", "value-stream", "-x", "cat", &url],
        Stdio::null(),
    );
    peak_after_flood(&mut child, "--exec");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn check_with_a_trigger_on_a_flood_stays_bounded() {
    let flood = flood_server(padded);
    let url = format!("{}/r", flood.base);
    // The trigger takes its time: the probes hold the stream open meanwhile.
    let mut child = spawn(
        &["check", "--budget", "20", "--trigger", "sleep 5", &url],
        Stdio::null(),
    );
    peak_after_flood(&mut child, "check --trigger");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_flood_of_changes_into_a_pipe_nobody_reads_holds_the_server_back_and_loses_nothing() {
    let flood = flood_server_of("changes-stream", "{}", changes);
    let url = format!("{}/r", flood.base);
    let mut child = spawn(&["--transport", "changes-stream", &url], Stdio::piped());
    let stdout = child.stdout.take().unwrap();
    peak_after_flood(&mut child, "changes, a pipe nobody reads");
    // Every change is news: none is skipped, so reading waits for the printer, and TCP holds
    // the server back.
    let sent = flood.next.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(1));
    let later = flood.next.load(Ordering::SeqCst);
    assert!(
        later - sent < 100,
        "the server was not held back: {sent} changes sent, then {later} a second later"
    );
    flood.stop.store(true, Ordering::SeqCst);
    // Reading lets the server go on and stop; then every change arrives, in order.
    let lines = lines_of(stdout);
    let latest = flood
        .stopped
        .recv_timeout(BOUND)
        .expect("the flood stopped");
    eprintln!("{sent} changes sent before the stop, {latest} in all");
    let n = |line: &str| -> u64 {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        v["n"].as_u64().unwrap_or(0)
    };
    let printed = read_until(&lines, |line| n(line) == latest);
    let numbers: Vec<u64> = printed.iter().map(|l| n(l)).filter(|n| *n > 0).collect();
    assert_eq!(
        numbers,
        (1..=latest).collect::<Vec<_>>(),
        "every change, in order"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn count_counts_the_events_printed_when_values_are_coalesced() {
    let flood = flood_server(padded);
    let url = format!("{}/r", flood.base);
    let mut child = spawn(
        &["-n", "1000", "--transport", "value-stream", &url],
        Stdio::piped(),
    );
    let stdout = child.stdout.take().unwrap();
    // A reader that comes late: meanwhile lrwatch falls behind (a megabyte of output is far
    // more than a pipe, its buffer and its queue hold).
    std::thread::sleep(Duration::from_secs(1));
    let rx = lines_of(stdout);
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(BOUND) {
        lines.push(line);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(lines.len(), 1000);
    let first: Vec<String> = lines
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_increasing(&first);
    assert!(
        first.last().unwrap().parse::<u64>().unwrap() > 1000,
        "values were skipped while lrwatch was behind: {:?}",
        first.last()
    );
    flood.stop.store(true, Ordering::SeqCst);
}

/// A WebSocket that pushes `multiplex-socket` updates as fast as it can (values, or a
/// collection's changes), while stdout is a pipe nobody reads; `stop` ends the flood, and
/// `stopped` gives the last n sent. The resource is `GET /r` on `origin`.
struct SocketFlood {
    origin: Scripted,
    stop: Arc<AtomicBool>,
    stopped: Receiver<u64>,
}

fn socket_flood(changes: bool) -> SocketFlood {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (stopped_tx, stopped) = mpsc::channel::<u64>();
    let flag = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut n = 0u64;
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let Some(mut ws) = accept_liveresource(stream) else {
                continue;
            };
            let Ok(tungstenite::Message::Text(get)) = ws.read() else {
                continue;
            };
            let uri = get.as_str().trim_start_matches("GET ").to_string();
            if ws
                .send(tungstenite::Message::text(format!("OK {uri}")))
                .is_err()
            {
                continue;
            }
            while !flag.load(Ordering::SeqCst) {
                n += 1;
                let (etag, content) = if changes {
                    (String::new(), format!("[{}]", kilobyte_value(n)))
                } else {
                    (format!("\"ETag\":\"\\\"{n}\\\"\","), kilobyte_value(n))
                };
                let push =
                    format!("* {uri} {{{etag}\"Content-Type\":\"application/json\"}}\n{content}");
                if ws.send(tungstenite::Message::text(push)).is_err() {
                    break;
                }
            }
            let _ = stopped_tx.send(n);
            // Held open, quiet, so nothing more arrives.
            std::thread::sleep(Duration::from_secs(60));
        }
    });
    let link = format!("<http://{addr}/socket>; rel=multiplex-socket");
    let origin = scripted(move |_, seen| {
        if changes {
            let links = format!("</r?after=0>; rel=changes, {link}");
            (
                200,
                h(&[("Content-Type", "application/json"), ("Link", &links)]),
                "[]".into(),
            )
        } else if seen.header("if-none-match").is_some() {
            (304, h(&[]), String::new())
        } else {
            (200, h(&[("ETag", "\"0\""), ("Link", &link)]), "0".into())
        }
    });
    SocketFlood {
        origin,
        stop,
        stopped,
    }
}

/// Values pushed over a socket as fast as it can: bounded, and the last value printed is the
/// server's latest once the reader catches up.
#[test]
fn a_socket_flood_of_values_into_a_pipe_nobody_reads_stays_bounded() {
    let flood = socket_flood(false);
    let url = format!("{}/r", flood.origin.base);
    let mut child = spawn(&["--transport", "multiplex-socket", &url], Stdio::piped());
    let stdout = child.stdout.take().unwrap();
    peak_after_flood(&mut child, "socket flood of values, a pipe nobody reads");
    flood.stop.store(true, Ordering::SeqCst);
    let latest = flood
        .stopped
        .recv_timeout(BOUND)
        .expect("the flood stopped");
    let want = kilobyte_value(latest);
    let lines = read_until(&lines_of(stdout), move |line| line == want);
    assert_eq!(lines[0], "0", "the initial value comes first");
    let _ = child.kill();
    let _ = child.wait();
}

/// A collection's changes pushed over a socket as fast as it can: every change is news, so the
/// queue between the socket and the follower is bounded by holding the socket back (TCP slows
/// the server), and every change sent arrives, in order.
#[test]
fn a_socket_flood_of_changes_holds_the_server_back_and_loses_nothing() {
    let flood = socket_flood(true);
    let url = format!("{}/r", flood.origin.base);
    let mut child = spawn(&["--json", &url], Stdio::piped());
    let stdout = child.stdout.take().unwrap();
    peak_after_flood(&mut child, "socket flood of changes, a pipe nobody reads");
    // The server is held back in a send: it sees the stop only once lrwatch reads again, which
    // it does as its output is read.
    flood.stop.store(true, Ordering::SeqCst);
    let output = lines_of(stdout);
    let mut lines: Vec<String> = Vec::new();
    let mut latest = None;
    let deadline = Instant::now() + BOUND;
    loop {
        latest = latest.or_else(|| flood.stopped.try_recv().ok());
        if let (Some(n), Some(last)) = (latest, lines.last()) {
            if last.contains(&format!("{{\"n\":{n},")) {
                break;
            }
        }
        match output.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => lines.push(line),
            Err(_) => assert!(
                Instant::now() < deadline,
                "the last change never came: latest {latest:?}, {} lines",
                lines.len()
            ),
        }
    }
    let latest = latest.unwrap();
    let ns: Vec<u64> = lines[1..]
        .iter()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(event["event"], "changes", "{line}");
            event["body"][0]["n"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(
        ns,
        (1..=latest).collect::<Vec<u64>>(),
        "every change, in order"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// A JSON value of a kilobyte: `{"n":N,"pad":"xx…"}`.
fn kilobyte_value(n: u64) -> String {
    format!("{{\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(1000))
}

/// Webhook notifications of changes posted as fast as several senders can, while stdout is a
/// pipe nobody reads: the follower's inbox is bounded, so deliveries are held back (the
/// senders wait) rather than queued without end.
#[test]
fn a_webhook_flood_into_a_pipe_nobody_reads_stays_bounded() {
    let base = reference_server();
    let url = format!("{base}/items/?form=a");
    let mut child = spawn(
        &["--json", "-v", "--transport", "changes-callback", &url],
        Stdio::piped(),
    );
    let stderr = lines_of(child.stderr.take().unwrap());
    let callback = read_until(&stderr, |line| line.contains("callback_uri="))
        .pop()
        .unwrap()
        .rsplit("callback_uri=")
        .next()
        .unwrap()
        .trim()
        .to_string();
    read_until(&stderr, |line| line.contains("subscribed: "));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let (callback, location, stop) = (callback.clone(), url.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .proxy(None)
                    .timeout_global(Some(Duration::from_millis(500)))
                    .build()
                    .new_agent();
                let pad = "x".repeat(64 * 1024);
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let body = format!("[{{\"n\":{n},\"t\":{t},\"pad\":\"{pad}\"}}]");
                    let _ = agent
                        .post(&callback)
                        .header("Location", &location)
                        .header("Content-Type", "application/json")
                        .send(body.as_bytes());
                }
            })
        })
        .collect();
    let peak = peak_after_flood(&mut child, "webhook flood of changes, a pipe nobody reads");
    stop.store(true, Ordering::SeqCst);
    for sender in senders {
        sender.join().unwrap();
    }
    assert!(peak > 0);
    let _ = child.kill();
    let _ = child.wait();
}

/// Hundreds of thousands of records a second, each a few bytes (one read of the stream holds
/// tens of thousands of them), JSON and not (each line that is not JSON also makes a
/// notice), while stdout is a pipe nobody reads: what one read makes is handed on a queue's
/// worth at a time, so memory stays bounded.
#[test]
fn tiny_records_of_a_live_url_into_a_pipe_nobody_reads_stay_bounded() {
    for (what, head, record) in [
        (
            "NDJSON of tiny lines",
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\r\n",
            "0\na\n",
        ),
        (
            "an event stream of tiny events",
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
            "data:0\n\n",
        ),
    ] {
        // Written 64 KiB at a time: the server keeps up with lrwatch.
        let chunk: &'static [u8] = record.repeat(64 * 1024 / record.len()).leak().as_bytes();
        let url = format!("{}/live", endless(head, chunk));
        let mut child = spawn(&["--json", &url], Stdio::piped());
        let peak = peak_after_flood(&mut child, what);
        assert!(peak > 0);
        let _ = child.kill();
        let _ = child.wait();
    }
}
