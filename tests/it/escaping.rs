//! Invisible characters a hostile server sends (zero-width, bidi marks, line separators, tags)
//! are escaped on every path to a terminal: values, header lines, diffs, notices, `inspect`
//! and `check`.

use crate::harness::*;

/// Waits (bounded) for the rest of a run's stdout, joined by newlines.
fn all_lines(run: &mut Run) -> String {
    let mut lines = Vec::new();
    while let Some(line) = run.try_line(BOUND) {
        lines.push(line);
    }
    lines.join("\n")
}

/// A server that answers every request with 200, these headers and this body.
fn serving(headers: &[(&str, &str)], body: &str) -> Scripted {
    let (headers, body) = (h(headers), body.to_string());
    scripted(move |_, _| (200, headers.clone(), body.clone()))
}

/// No invisible character of the test's set reached the output.
fn assert_visible(text: &str) {
    for c in [
        '\u{200b}',
        '\u{200f}',
        '\u{2028}',
        '\u{2060}',
        '\u{feff}',
        '\u{e0041}',
    ] {
        assert!(
            !text.contains(c),
            "U+{:04X} unescaped in:\n{text}",
            c as u32
        );
    }
}

#[test]
fn values_header_lines_and_diffs_on_a_terminal_are_escaped() {
    let server = scripted(|n, _| {
        let etag = format!("\"v\u{200b}{n}\"");
        let body = if n == 0 {
            "a\u{200b}b\u{2028}c\u{e0041}\n"
        } else {
            "a\u{feff}b\u{200f}c\n"
        };
        (
            200,
            h(&[("Content-Type", "text/plain"), ("ETag", &etag)]),
            body.into(),
        )
    });
    let url = format!("{}/r", server.base);
    let mut run = lrwatch_env(
        &[
            "-n",
            "2",
            "--diff",
            "--transport",
            "poll",
            "--interval",
            "0.1",
            &url,
        ],
        &[("LRWATCH_TEST_TERM", "1"), ("NO_COLOR", "1")],
    );
    let text = all_lines(&mut run);
    assert!(run.wait().success(), "{text}");
    assert_visible(&text);
    assert!(text.contains("ETag \"v\\u{200b}0\""), "{text}");
    assert!(text.contains("a\\u{200b}b\\u{2028}c\\u{e0041}"), "{text}");
    // The diff: both header lines and the changed line.
    assert!(
        text.contains("+++ ") && text.contains("ETag \"v\\u{200b}1\""),
        "{text}"
    );
    assert!(text.contains("\n+a\\u{feff}b\\u{200f}c"), "{text}");
}

#[test]
fn json_strings_and_notices_on_a_terminal_are_escaped() {
    let server = serving(
        &[
            ("Content-Type", "application/json"),
            ("ETag", "\"1\""),
            // Malformed (no closing `>`): warned about, with the server's text.
            ("Link", "<x\u{2060}y; rel=\"value-wait\""),
        ],
        "{\"k\":\"v\u{200b}w\u{2028}\"}",
    );
    let url = format!("{}/r", server.base);
    let mut run = lrwatch_env(
        &["-n", "1", "--transport", "poll", &url],
        &[("LRWATCH_TEST_TERM", "1"), ("NO_COLOR", "1")],
    );
    let text = all_lines(&mut run);
    assert!(run.wait().success(), "{text}");
    assert_visible(&text);
    assert!(text.contains("\"k\": \"v\\u{200b}w\\u{2028}\""), "{text}");
    let stderr = run.stderr_text();
    assert_visible(&stderr);
    assert!(stderr.contains("x\\u{2060}y"), "{stderr}");
}

#[test]
fn inspect_escapes_etags_links_and_titles() {
    let server = serving(
        &[
            ("Content-Type", "text/plain"),
            ("ETag", "\"v\u{200b}1\""),
            (
                "Link",
                "</x>; rel=\"value-wait\"; title=\"t\u{200f}t\", \
                 </y>; rel=\"changes\u{2060}\"",
            ),
        ],
        "1",
    );
    let url = format!("{}/r", server.base);
    let mut run = lrwatch(&["inspect", "--color", "never", &url]);
    let text = all_lines(&mut run);
    assert_eq!(run.wait().code(), Some(0), "{text}");
    assert_visible(&text);
    assert!(text.contains("\"v\\u{200b}1\""), "{text}");
    assert!(text.contains("title=t\\u{200f}t"), "{text}");
    assert!(
        text.contains("changes\\u{2060} (unknown, ignored)"),
        "{text}"
    );
}

#[test]
fn check_escapes_findings_and_exchanges() {
    // An ETag that never matches, so the 304 requirement fails and the exchange is shown.
    let server = serving(
        &[
            ("Content-Type", "text/plain"),
            ("ETag", "\"v\u{200b}1\""),
            ("X-Note", "n\u{feff}b"),
        ],
        "a\u{2028}b",
    );
    let url = format!("{}/r", server.base);
    let mut run = lrwatch(&["check", "--budget", "5", "--color", "never", &url]);
    let text = all_lines(&mut run);
    run.wait();
    assert_visible(&text);
    assert!(text.contains("ETag present: \"v\\u{200b}1\""), "{text}");
    assert!(text.contains("> If-None-Match: \"v\\u{200b}1\""), "{text}");
    assert!(text.contains("< x-note: n\\u{feff}b"), "{text}");
    assert!(text.contains("< a\\u{2028}b"), "{text}");
}

#[test]
fn error_lines_are_escaped() {
    // The URL is quoted back in the error; pasted from a hostile page it may hide characters.
    let mut run = lrwatch(&["ftp://h\u{200b}st/\u{202e}x"]);
    assert_eq!(run.wait().code(), Some(2));
    let err = run.stderr_text();
    assert_visible(&err);
    assert!(err.contains("h\\u{200b}st/\\u{202e}x"), "{err}");
}

/// An event stream whose event id (an entity-tag, so also the ETag) and JSON data hold a bidi
/// override, an isolate and a zero-width space.
fn bidi_stream() -> crate::live_server::LiveServer {
    crate::live_server::http_server(|_, _, stream| {
        crate::live_server::head(&stream, 200, "text/event-stream");
        crate::live_server::send(
            &stream,
            "id: \"v\u{202e}1\"\ndata: {\"k\":\"a\u{2066}b\u{200b}c\"}\n\n".as_bytes(),
        );
        crate::live_server::hold(stream);
    })
}

#[test]
fn json_on_a_terminal_writes_bidi_and_invisible_characters_as_json_escapes() {
    let server = bidi_stream();
    let url = format!("{}/s", server.base);
    let mut run = lrwatch_env(&["--json", "-n", "1", &url], &[("LRWATCH_TEST_TERM", "1")]);
    let line = run.line();
    assert!(run.wait().success());
    for raw in ['\u{202e}', '\u{2066}', '\u{200b}'] {
        assert!(!line.contains(raw), "U+{:04X} raw in {line}", raw as u32);
    }
    assert!(line.contains(r#""etag":"\"v\u202e1\"""#), "{line}");
    assert!(line.contains(r#""id":"\"v\u202e1\"""#), "{line}");
    assert!(line.contains(r#""k":"a\u2066b\u200bc""#), "{line}");
    // Still JSON, with the same value.
    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(value["body"]["k"], "a\u{2066}b\u{200b}c");
    assert_eq!(value["sse"]["id"], "\"v\u{202e}1\"");

    // In a pipe the bytes are kept exact.
    let mut run = lrwatch(&["--json", "-n", "1", &url]);
    let line = run.line();
    assert!(run.wait().success());
    assert!(line.contains("\"k\":\"a\u{2066}b\u{200b}c\""), "{line}");
    assert!(line.contains("\"etag\":\"\\\"v\u{202e}1\\\"\""), "{line}");
}
