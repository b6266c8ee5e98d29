//! Errors that say what happened: a head over `--max-header` names the limit; redirect loops,
//! redirects to other schemes and HTTP errors are not told to check that the server runs;
//! `inspect` reports a non-2xx answer as an error; non-ASCII header values are read.

use std::io::Write;
use std::net::TcpListener;

use crate::harness::*;

const UNREACHABLE_HINT: &str = "Check that the server is running";

/// The only stderr line of a run that exits `code`.
fn one_line_error(args: &[&str], code: i32) -> String {
    let mut run = lrwatch(args);
    assert_eq!(run.wait().code(), Some(code), "{}", run.stderr_text());
    let err = run.stderr_text();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

/// A server that answers every connection with these bytes (a head written byte for byte,
/// so it may hold what `respond` cannot: Latin-1).
fn raw_server(answer: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if read_head(&stream).is_some() {
                let _ = stream.write_all(&answer);
            }
        }
    });
    base
}

#[test]
fn a_head_over_the_limit_names_the_limit_and_the_flag() {
    let big = "b".repeat(40 * 1024);
    let server = scripted(move |_, _| (200, h(&[("X-Big", &big)]), "1".into()));
    let url = format!("{}/r", server.base);
    let err = one_line_error(&[&url], 1);
    assert_eq!(
        err,
        format!(
            "lrwatch: the response head (status line and headers) from {url} is larger than \
             the 32768-byte limit. Raise it with --max-header if that is expected."
        )
    );
    // inspect says the same, and takes --max-header as following does.
    let err = one_line_error(&["inspect", "--max-header", "8K", &url], 1);
    assert!(err.contains("larger than the 8192-byte limit"), "{err}");
    assert!(err.contains("--max-header"), "{err}");
    let mut run = lrwatch(&["inspect", "--json", "--max-header", "64K", &url]);
    let report: serde_json::Value = serde_json::from_str(&run.line()).unwrap();
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(run.wait().code(), Some(0));
}

#[test]
fn a_redirect_loop_is_named_and_not_blamed_on_the_server_being_down() {
    let server = scripted(|n, _| (302, h(&[("Location", &format!("/loop{n}"))]), String::new()));
    let url = format!("{}/start", server.base);
    for args in [vec![url.as_str()], vec!["inspect", url.as_str()]] {
        let err = one_line_error(&args, 1);
        assert!(
            err.starts_with(&format!("lrwatch: cannot follow the redirects of {url}: ")),
            "{err}"
        );
        assert!(err.contains("redirect loop"), "{err}");
        assert!(!err.contains(UNREACHABLE_HINT), "{err}");
    }
}

#[test]
fn a_redirect_to_file_is_refused_by_name() {
    let server = scripted(|_, _| (302, h(&[("Location", "file:///etc/passwd")]), String::new()));
    let url = format!("{}/r", server.base);
    for args in [vec![url.as_str()], vec!["inspect", url.as_str()]] {
        let err = one_line_error(&args, 1);
        assert_eq!(
            err,
            format!(
                "lrwatch: cannot follow the redirects of {url}: redirected (302) to \
                 file:///etc/passwd, which is not an http or https URL"
            )
        );
    }
    // One request following, HEAD and GET inspecting: nothing more was asked.
    assert_eq!(server.seen.lock().unwrap().len(), 3);
}

#[test]
fn inspect_reports_an_http_error_as_one_with_exit_1() {
    for (status, words) in [(404, "Not Found"), (503, "Service Unavailable")] {
        let server = scripted(move |_, _| (status, h(&[("Retry-After", "1")]), "no".into()));
        let url = format!("{}/r", server.base);
        let err = one_line_error(&["inspect", &url], 1);
        assert_eq!(
            err,
            format!("lrwatch: {url} answered HTTP {status} ({words})")
        );
        // HEAD, then GET for the last word (a server may route only GET).
        assert_eq!(server.seen.lock().unwrap().len(), 2);
        let mut run = lrwatch(&["inspect", "--json", &url]);
        assert_eq!(run.wait().code(), Some(1));
        assert!(run.rest().is_empty());
    }
    // Unreachable still gets its hint.
    let err = one_line_error(&["inspect", "http://127.0.0.1:1/x"], 1);
    assert!(
        err.contains("cannot reach") && err.contains(UNREACHABLE_HINT),
        "{err}"
    );
    // Said once: the library error's words hold its cause, which the binary does not repeat
    // from `source()`.
    assert_eq!(
        err,
        format!("lrwatch: cannot reach http://127.0.0.1:1/x: connection refused. {UNREACHABLE_HINT} and the address is right.")
    );
}

#[test]
fn non_ascii_link_and_etag_values_are_read() {
    // UTF-8: three links and an ETag, as a server in another language writes them.
    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\
                  ETag: \"café\"\r\n\
                  Link: </café>; rel=\"value-wait\", </ünï>; rel=\"value-stream\"\r\n\
                  Link: </x>; rel=\"changes\"; title=\"naïve\"\r\n\r\n1";
    let base = raw_server(answer.as_bytes().to_vec());
    let url = format!("{base}/r");
    let mut run = lrwatch(&["inspect", "--json", &url]);
    let report: serde_json::Value = serde_json::from_str(&run.line()).unwrap();
    assert_eq!(run.wait().code(), Some(0));
    assert_eq!(report["etag"], "\"café\"", "{report}");
    let links = report["links"].as_array().unwrap();
    assert_eq!(links.len(), 3, "{report}");
    assert_eq!(links[0]["target"], format!("{base}/caf%C3%A9"));
    // check counts them (it said "0 links").
    let mut run = lrwatch(&["check", "--budget", "5", "--color", "never", &url]);
    let mut lines = Vec::new();
    while let Some(line) = run.try_line(std::time::Duration::from_secs(6)) {
        lines.push(line);
    }
    run.wait();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Link headers well-formed: 3 links")),
        "{lines:#?}"
    );
    // Following keeps the ETag as sent.
    let mut run = lrwatch(&["--json", "-n", "1", "--transport", "poll", &url]);
    assert_eq!(run.json()["etag"], "\"café\"");
    assert!(run.wait().success());

    // Not UTF-8: read as Latin-1, and a C1 control among the bytes (0x9b, CSI) escaped on
    // the terminal.
    let mut answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n".to_vec();
    answer.extend_from_slice(
        b"ETag: \"caf\xe9\x9b2J\"\r\nLink: </b\xe9>; rel=\"value-wait\"\r\n\r\n1",
    );
    let base = raw_server(answer);
    let url = format!("{base}/r");
    let mut run = lrwatch(&["inspect", "--json", &url]);
    let report: serde_json::Value = serde_json::from_str(&run.line()).unwrap();
    assert_eq!(run.wait().code(), Some(0));
    assert_eq!(report["etag"], "\"caf\u{e9}\u{9b}2J\"", "{report}");
    assert_eq!(report["links"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["auto"]["mechanism"], "value-wait", "{report}");
    let mut run = lrwatch(&["inspect", "--color", "never", &url]);
    let mut lines = Vec::new();
    while let Some(line) = run.try_line(std::time::Duration::from_secs(2)) {
        lines.push(line);
    }
    assert_eq!(run.wait().code(), Some(0));
    let text = lines.join("\n");
    assert!(text.contains("\"caf\u{e9}\\u{9b}2J\""), "{text}");
    assert!(!text.contains('\u{9b}'), "{text}");

    // A bidi override in a UTF-8 value, which would reorder the rest of the line: escaped.
    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\
                  ETag: \"ab\u{202e}cd\"\r\n\r\n1";
    let url = format!("{}/r", raw_server(answer.as_bytes().to_vec()));
    let mut run = lrwatch(&["inspect", "--color", "never", &url]);
    let mut lines = Vec::new();
    while let Some(line) = run.try_line(std::time::Duration::from_secs(2)) {
        lines.push(line);
    }
    assert_eq!(run.wait().code(), Some(0));
    let text = lines.join("\n");
    assert!(text.contains("\"ab\\u{202e}cd\""), "{text}");
}

#[test]
fn plain_http_on_an_https_url_is_a_tls_failure_with_its_hint() {
    // A plain HTTP server: it answers the TLS ClientHello with an HTTP error.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/x", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = std::io::Read::read(&mut stream, &mut [0; 4096]);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let err = one_line_error(&[&url], 1);
    assert!(
        err.starts_with(&format!("lrwatch: cannot reach {url}: TLS failed (")),
        "{err}"
    );
    assert!(
        err.ends_with(
            "Check that the port speaks TLS; for a certificate of a private CA, give it with --cacert."
        ),
        "{err}"
    );
}
