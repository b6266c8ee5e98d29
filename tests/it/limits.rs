//! Limits validated: `--max-header` and `--max-body` beyond what lrwatch's HTTP and WebSocket
//! clients can take are a usage error (exit 2) naming the maximum, and at the maximum they
//! work, with nothing panicking.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;

use crate::harness::*;

/// The largest `--max-header`: ureq 3 keeps a response head in one input buffer of this size
/// and panics when asked for a larger one.
const MAX_HEADER: u64 = 100 << 20;
/// The largest `--max-body`.
const MAX_BODY: u64 = 4 << 30;

fn one_value() -> Scripted {
    scripted(|_, _| (200, h(&[("Content-Type", "application/json")]), "1".into()))
}

/// Runs lrwatch with `args`; its exit status and stderr.
fn usage(args: &[&str]) -> (Option<i32>, String) {
    let mut run = lrwatch(args);
    let status = run.wait();
    (status.code(), run.stderr_text())
}

#[test]
fn max_header_up_to_what_the_http_client_takes() {
    let server = one_value();
    let url = format!("{}/r", server.base);
    // At the maximum: a request is made (ureq allocates its buffer) and the value comes.
    let max = MAX_HEADER.to_string();
    for size in ["100M", max.as_str()] {
        let mut run = lrwatch(&["-n", "1", "--max-header", size, &url]);
        assert_eq!(run.line(), "1", "--max-header {size}");
        assert!(run.wait().success(), "--max-header {size}");
        assert!(!run.stderr_text().contains("panicked"));
    }
    // Just over it, and far over it: a usage error naming the maximum, before any request.
    let over = (MAX_HEADER + 1).to_string();
    for size in [over.as_str(), "101M", "512M", "1G", "99999999G"] {
        let (code, err) = usage(&["-n", "1", "--max-header", size, &url]);
        assert_eq!(code, Some(2), "--max-header {size}: {err}");
        assert!(err.contains("--max-header"), "{err}");
        assert!(err.contains("at most 100M"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(
            err.lines().count(),
            1 + 2,
            "one line, then clap's hint: {err}"
        );
    }
    assert_eq!(
        server.seen.lock().unwrap().len(),
        2,
        "no request over the limit"
    );
}

#[test]
fn max_body_up_to_what_the_clients_take() {
    let server = one_value();
    let url = format!("{}/r", server.base);
    let max = MAX_BODY.to_string();
    for size in ["4G", max.as_str()] {
        let mut run = lrwatch(&["-n", "1", "--max-body", size, &url]);
        assert_eq!(run.line(), "1", "--max-body {size}");
        assert!(run.wait().success(), "--max-body {size}");
    }
    let over = (MAX_BODY + 1).to_string();
    for size in [over.as_str(), "5G", "8000000000G"] {
        let (code, err) = usage(&["-n", "1", "--max-body", size, &url]);
        assert_eq!(code, Some(2), "--max-body {size}: {err}");
        assert!(err.contains("--max-body"), "{err}");
        assert!(err.contains("at most 4G"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// A WebSocket frame's declared length is reserved at once by the client: at the largest
/// --max-body, a frame claiming more is refused before anything is allocated, and lrwatch
/// ends with exit 1, not a crash.
#[test]
fn a_socket_frame_claiming_exabytes_is_refused_at_the_largest_limit() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let Some(mut ws) = accept_liveresource(stream) else {
                    return;
                };
                if ws.read().is_err() {
                    return;
                }
                // A text frame whose 64-bit length says 2^62 bytes follow.
                let mut frame = vec![0x81, 127];
                frame.extend_from_slice(&(1u64 << 62).to_be_bytes());
                let _ = ws.get_mut().write_all(&frame);
                let _ = ws.get_mut().write_all(b"OK /r");
                while ws.read().is_ok() {}
            });
        }
    });
    let link = format!("<http://{addr}/socket>; rel=multiplex-socket");
    let origin = scripted(move |_, _| (200, h(&[("ETag", "\"1\""), ("Link", &link)]), "1".into()));
    let mut run = lrwatch(&[
        "--max-body",
        "4G",
        "--transport",
        "multiplex-socket",
        &format!("{}/r", origin.base),
    ]);
    assert_eq!(run.line(), "1");
    let status = run.wait();
    let err = run.stderr_text();
    assert_eq!(status.signal(), None, "killed by a signal: {err}");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("too large"), "{err}");
}
