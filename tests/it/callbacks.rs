//! Webhooks: subscribing, receiving notifications, refusing forged ones, and leaving no
//! subscription behind however lrwatch exits.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;

use crate::harness::*;

/// The reference server's webhook subscriptions (`GET /subscriptions/`).
pub fn subscriptions(base: &str) -> serde_json::Value {
    let body = agent()
        .get(&format!("{base}/subscriptions/"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

fn none_left(base: &str) {
    assert_eq!(
        subscriptions(base),
        serde_json::json!([]),
        "a subscription was left behind"
    );
}

#[test]
fn value_callbacks_deliver_changes_and_are_removed_at_exit() {
    let base = reference_server();
    let url = format!("{base}/counter/cb");
    let mut run = lrwatch(&[
        "--json",
        "-v",
        "-n",
        "3",
        "--transport",
        "value-callback",
        &url,
    ]);
    assert_eq!(run.json()["body"], 0);
    run.stderr_until("subscribed: ");
    assert_eq!(subscriptions(&base).as_array().unwrap().len(), 1);
    post(&url);
    let first = run.json();
    assert_eq!(
        (first["body"].clone(), first["transport"].clone()),
        (1.into(), "value-callback".into())
    );
    put(&url, "application/json", r#"{"x":1}"#);
    assert_eq!(run.json()["body"], serde_json::json!({"x": 1}));
    assert!(run.wait().success());
    none_left(&base);
}

#[test]
fn changes_callbacks_report_child_events() {
    for form in ["a", "c"] {
        let base = reference_server();
        let url = format!("{base}/items/?form={form}");
        let transport = "changes-callback";
        let mut run = lrwatch(&["--json", "-v", "-n", "2", "--transport", transport, &url]);
        assert_eq!(run.json()["event"], "value");
        run.stderr_until("subscribed: ");
        let response = agent()
            .post(&format!("{base}/items/"))
            .header("Content-Type", "application/json")
            .send(r#"{"text":"hook"}"#)
            .unwrap();
        assert_eq!(response.status(), 201);
        let added = run.json();
        assert_eq!(
            (added["event"].as_str(), added["transport"].as_str()),
            (Some("child-added"), Some(transport)),
            "form {form}: {added}"
        );
        assert_eq!(added["body"]["text"], "hook");
        assert!(run.wait().success());
        none_left(&base);
    }
}

#[test]
fn subscriptions_are_removed_on_ctrl_c_and_on_timeout() {
    let base = reference_server();
    let url = format!("{base}/counter/int");
    let mut run = lrwatch(&["-v", "--transport", "value-callback", &url]);
    run.line();
    run.stderr_until("subscribed: ");
    Command::new("kill")
        .args(["-INT", &run.pid().to_string()])
        .status()
        .unwrap();
    assert_eq!(run.wait().signal(), Some(2));
    none_left(&base);

    // Long enough to subscribe on a loaded machine before the timeout ends the run.
    let mut run = lrwatch(&["-v", "-t", "3", "--transport", "value-callback", &url]);
    run.stderr_until("subscribed: ");
    assert_eq!(run.wait().code(), Some(124));
    none_left(&base);
}

#[test]
fn forged_notifications_are_refused() {
    let base = reference_server();
    let url = format!("{base}/counter/forged");
    let mut run = lrwatch(&[
        "--json",
        "-v",
        "-n",
        "2",
        "--transport",
        "value-callback",
        &url,
    ]);
    assert_eq!(run.json()["body"], 0);
    let line = run.stderr_until("callback_uri=");
    let callback = line
        .rsplit("callback_uri=")
        .next()
        .unwrap()
        .trim()
        .to_string();
    run.stderr_until("subscribed: ");
    let notify = |target: &str, location: &str, body: Vec<u8>| {
        agent()
            .post(target)
            .header("Location", location)
            .header("Content-Type", "application/json")
            .send(&body[..])
            .unwrap()
            .status()
            .as_u16()
    };
    let (prefix, id) = callback.rsplit_once('/').unwrap();
    let (host, _token) = prefix.rsplit_once('/').unwrap();
    assert_eq!(
        notify(&format!("{host}/wrongtoken/{id}"), &url, b"666".to_vec()),
        404,
        "a path without the token"
    );
    assert_eq!(
        notify(&format!("{prefix}/999"), &url, b"666".to_vec()),
        410,
        "an unknown subscription"
    );
    assert_eq!(
        notify(&callback, &format!("{base}/counter/other"), b"666".to_vec()),
        403,
        "another resource's Location"
    );
    // An oversized body is answered 413 as soon as its Content-Length is read, and the
    // connection closed after a bounded linger: a client still writing the body when the
    // linger ends (a loaded machine) sees the close instead of the 413. Either is a refusal.
    let oversized = agent()
        .post(&callback)
        .header("Location", &url)
        .header("Content-Type", "application/json")
        .send(&vec![b'7'; 2 * 1024 * 1024][..]);
    match oversized {
        Ok(response) => assert_eq!(response.status().as_u16(), 413, "an oversized body"),
        Err(e) => assert!(
            matches!(e, ureq::Error::Io(_)) || e.to_string().contains("disconnected"),
            "an oversized body: {e}"
        ),
    }
    assert_eq!(notify(&callback, &url, b"42".to_vec()), 204);
    let event = run.json();
    assert_eq!(
        (event["body"].clone(), event["transport"].clone()),
        (42.into(), "value-callback".into()),
        "only the genuine notification"
    );
    assert!(run.wait().success());
    none_left(&base);
}

#[test]
fn auto_uses_callbacks_only_when_asked_to_listen() {
    let base = reference_server();
    // Only webhooks advertised (the server's ?types= switch).
    let url = format!("{base}/counter/auto?types=value-callback");
    let mut run = lrwatch(&["--json", "-v", "-n", "1", &url]);
    assert_eq!(run.json()["transport"], "poll");
    run.stderr_until(
        "not using value-callback: webhooks need an address to receive notifications at",
    );
    assert!(run.wait().success());

    let mut run = lrwatch(&[
        "--json",
        "-n",
        "2",
        "--callback-listen",
        "127.0.0.1:0",
        &url,
    ]);
    assert_eq!(run.json()["transport"], "value-callback");
    post(&format!("{base}/counter/auto"));
    let change = run.json();
    assert_eq!(
        (change["body"].clone(), change["transport"].clone()),
        (1.into(), "value-callback".into())
    );
    assert!(run.wait().success());
    none_left(&base);
}

/// A webhook server whose subscription `POST` is answered only when the test says so (never,
/// if the test never does). `GET /r` advertises `value-callback` at `/hooks`; `POST /hooks`
/// is told to the test, then held; `DELETE /hooks/7` (the Location it gives) is told too.
struct HeldHooks {
    base: String,
    /// "POST /hooks", "DELETE /hooks/7", ... as they arrive.
    seen: std::sync::mpsc::Receiver<String>,
    /// Lets the held `POST` answer `201 Created`.
    release: std::sync::mpsc::Sender<()>,
}

fn held_hooks() -> HeldHooks {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::{mpsc, Arc, Mutex};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (seen_tx, seen) = mpsc::channel::<String>();
    let (release, released) = mpsc::channel::<()>();
    let released = Arc::new(Mutex::new(released));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (seen_tx, released) = (seen_tx.clone(), Arc::clone(&released));
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let mut words = line.split_whitespace();
                let method = words.next().unwrap_or("").to_string();
                let path = words.next().unwrap_or("").to_string();
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 {
                        return;
                    }
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = header.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                // The whole body is read: closing on unread bytes would reset the connection.
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let _ = seen_tx.send(format!("{method} {path}"));
                let (status, headers, body) = match (method.as_str(), path.as_str()) {
                    ("GET", "/r") => (
                        "200 OK",
                        "ETag: \"1\"\r\nContent-Type: application/json\r\nLink: </hooks>; rel=\"value-callback\"\r\n",
                        "1",
                    ),
                    ("POST", "/hooks") => {
                        // Held until released (or the test ends: then the answer goes
                        // nowhere).
                        let _ = released.lock().unwrap().recv();
                        ("201 Created", "Location: /hooks/7\r\n", "")
                    }
                    ("DELETE", "/hooks/7") => ("204 No Content", "", ""),
                    _ => ("404 Not Found", "", ""),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    HeldHooks {
        base,
        seen,
        release,
    }
}

impl HeldHooks {
    /// Waits for a request starting with `what`, skipping others; fails after BOUND.
    fn expect(&self, what: &str) {
        let deadline = std::time::Instant::now() + BOUND;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.seen.recv_timeout(left) {
                Ok(request) if request.starts_with(what) => return,
                Ok(_) => {}
                Err(_) => panic!("no {what} within {BOUND:?}"),
            }
        }
    }
}

fn interrupt(run: &Run) -> std::time::Instant {
    Command::new("kill")
        .args(["-INT", &run.pid().to_string()])
        .status()
        .unwrap();
    std::time::Instant::now()
}

#[test]
fn a_subscription_answered_after_ctrl_c_is_removed_before_exit() {
    let hooks = held_hooks();
    let url = format!("{}/r", hooks.base);
    let mut run = lrwatch(&["-v", "--transport", "value-callback", &url]);
    assert_eq!(run.line(), "1");
    // The server has made the subscription; lrwatch has not read the 201.
    hooks.expect("POST /hooks");
    interrupt(&run);
    // Released only once lrwatch says it is waiting for the answer, which it says after it
    // has stopped following: so the 201 deterministically arrives during shutdown.
    run.stderr_until("waiting up to 3 s for the webhook subscription being made");
    hooks.release.send(()).unwrap();
    // lrwatch waits for the DELETE's answer before exiting: it arrives while lrwatch lives.
    hooks.expect("DELETE /hooks/7");
    assert_eq!(
        run.wait().signal(),
        Some(2),
        "dies by SIGINT (the shell's 130)"
    );
    // The DELETE above shows the 201 was read; that the wait ended with it, not after its 3 s,
    // shows in what lrwatch did not say (a time bound would fail on a loaded machine).
    let said = run.stderr_text();
    assert!(!said.contains("was not answered"), "{said}");
}

#[test]
fn ctrl_c_waits_for_an_unanswered_subscription_a_bounded_time() {
    let hooks = held_hooks();
    let url = format!("{}/r", hooks.base);
    let mut run = lrwatch(&["-v", "--transport", "value-callback", &url]);
    assert_eq!(run.line(), "1");
    hooks.expect("POST /hooks");
    let interrupted = interrupt(&run);
    run.stderr_until("waiting up to 3 s for the webhook subscription being made");
    // The 201 never comes: lrwatch exits after waiting 3 s for it, saying that a subscription
    // may be left behind. Without its Location nothing can remove it; the server drops it
    // when its notifications fail, as they will with nobody listening.
    run.stderr_until("was not answered within 3 s");
    assert_eq!(run.wait().signal(), Some(2));
    let took = interrupted.elapsed();
    // Not before its 3 s; `wait` above fails if it never ends.
    assert!(took >= Duration::from_millis(2900), "exit took {took:?}");
    assert!(
        hooks.seen.try_iter().all(|r| !r.starts_with("DELETE")),
        "nothing to DELETE"
    );
}

/// A server that made the subscription but never notifies (it forgot it): `--verify` finds
/// the change, says the server missed a push, and replaces the subscription.
#[test]
fn a_forgotten_subscription_is_noticed_by_verify_and_replaced() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // The value changes after the catch-up that follows subscribing (the first conditional
    // GET), and no notification is ever sent.
    let conditional = Arc::new(AtomicUsize::new(0));
    let posts = Arc::new(AtomicUsize::new(0));
    let (c, p) = (Arc::clone(&conditional), Arc::clone(&posts));
    let server = scripted(move |_, seen| match seen.path.as_str() {
        "/hooks" => {
            let n = p.fetch_add(1, Ordering::SeqCst) + 1;
            (
                201,
                h(&[("Location", &format!("/hooks/{n}"))]),
                String::new(),
            )
        }
        path if path.starts_with("/hooks/") => (204, h(&[]), String::new()),
        _ => {
            let link = ("Link", "</hooks>; rel=value-callback");
            let json = ("Content-Type", "application/json");
            let asked = seen.header("if-none-match").is_some();
            if asked && c.fetch_add(1, Ordering::SeqCst) >= 1 {
                (200, h(&[("ETag", "\"2\""), link, json]), "2".into())
            } else if asked {
                (304, h(&[("ETag", "\"1\""), link]), String::new())
            } else {
                (200, h(&[("ETag", "\"1\""), link, json]), "1".into())
            }
        }
    });
    let url = format!("{}/r", server.base);
    let mut run = lrwatch(&[
        "--json",
        "-v",
        "--verify",
        "0.3",
        "--transport",
        "value-callback",
        &url,
    ]);
    assert_eq!(run.json()["body"], 1);
    let found = run.json();
    assert_eq!(found["body"], 2, "{found}");
    assert_eq!(found["transport"], "value-callback");
    run.stderr_until("the server missed a push over value-callback");
    run.stderr_until("DELETE ");
    run.stderr_until("subscribed: ");
    let seen = server.seen.lock().unwrap();
    assert!(seen.iter().any(|s| s.path == "/hooks/1"), "{seen:?}");
    assert!(posts.load(Ordering::SeqCst) >= 2);
}

/// A run following `url` over value-callback, its first value read; with the callback URL it
/// subscribed and the listener's address.
fn subscribed(url: &str) -> (Run, String, String) {
    let mut run = lrwatch(&["--json", "-v", "--transport", "value-callback", url]);
    let line = run.stderr_until("listening for callbacks on http://");
    let listener = line
        .rsplit("http://")
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let line = run.stderr_until("callback_uri=");
    let callback = line
        .rsplit("callback_uri=")
        .next()
        .unwrap()
        .trim()
        .to_string();
    run.stderr_until("subscribed: ");
    assert_eq!(run.json()["body"], 0);
    (run, callback, listener)
}

/// A notification of `url`'s new value, `body` sent with these extra headers; the status.
fn notify(callback: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> u16 {
    let mut request = agent()
        .post(callback)
        .header("Location", url)
        .header("Content-Type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send(body).unwrap().status().as_u16()
}

/// A field of the process's /proc status, in KiB.
fn proc_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

#[test]
fn idle_connections_to_the_listener_are_capped_and_notifications_still_arrive() {
    let base = reference_server();
    let url = format!("{base}/counter/idle");
    let (mut run, callback, listener) = subscribed(&url);
    let before = run.threads();
    // Connections that never send a byte, far more than the cap.
    let idle: Vec<std::net::TcpStream> = (0..300)
        .map(|_| std::net::TcpStream::connect(&listener).unwrap())
        .collect();
    // Connections are accepted in order: once this one is answered, every idle one above
    // has been taken in (and given a thread, or made room for).
    assert_eq!(notify(&callback, &url, &[], b"42"), 204);
    assert_eq!(run.json()["body"], 42);
    // The connections closed to make room end their threads as they see the close.
    let cap = before + 32 + 2;
    let deadline = std::time::Instant::now() + BOUND;
    while run.threads() > cap && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let threads = run.threads();
    assert!(
        threads <= cap,
        "{threads} threads with {} idle connections (before: {before})",
        idle.len()
    );
    drop(idle);
}

#[test]
fn compressed_notifications_are_decoded_within_the_limit() {
    use std::io::Write;
    let base = reference_server();
    let url = format!("{base}/counter/gz");
    let (mut run, callback, _) = subscribed(&url);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"{"n":5}"#).unwrap();
    let gzipped = gz.finish().unwrap();
    assert_eq!(
        notify(&callback, &url, &[("Content-Encoding", "gzip")], &gzipped),
        204
    );
    assert_eq!(run.json()["body"], serde_json::json!({"n": 5}));
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(b"[6]").unwrap();
    let deflated = z.finish().unwrap();
    assert_eq!(
        notify(
            &callback,
            &url,
            &[("Content-Encoding", "deflate")],
            &deflated
        ),
        204
    );
    assert_eq!(run.json()["body"], serde_json::json!([6]));
    // A coding lrwatch cannot undo is refused, not taken as the value.
    assert_eq!(
        notify(
            &callback,
            &url,
            &[("Content-Encoding", "br")],
            b"\x0b\x02\x80\x37"
        ),
        415
    );
    // A gzip bomb: 64 MiB of zeros in about 64 KiB, refused once past the 1 MiB limit,
    // without holding what it expands to.
    let rss_before = proc_kb(run.pid(), "VmRSS:");
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b'0'; 1024 * 1024];
    for _ in 0..64 {
        bomb.write_all(&zeros).unwrap();
    }
    let bomb = bomb.finish().unwrap();
    assert!(bomb.len() < 1024 * 1024, "{}", bomb.len());
    assert_eq!(
        notify(&callback, &url, &[("Content-Encoding", "gzip")], &bomb),
        413
    );
    let peak = proc_kb(run.pid(), "VmHWM:");
    assert!(
        peak < rss_before + 16 * 1024,
        "peak {peak} KiB after the bomb, {rss_before} KiB before"
    );
    // Nothing of the refused ones was emitted; the next genuine one is.
    assert_eq!(notify(&callback, &url, &[], b"7"), 204);
    assert_eq!(run.json()["body"], 7);
}
