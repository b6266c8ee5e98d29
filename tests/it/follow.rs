//! Following the reference server: values, changes, output modes, counts, removal, polling.

use crate::harness::*;

#[test]
fn json_counter_over_value_wait_in_order() {
    let base = reference_server();
    let url = format!("{base}/counter/a");
    let mut run = lrwatch(&["--json", "--transport", "value-wait", "-n", "3", &url]);
    let first = run.json();
    assert_eq!(first["event"], "value");
    assert_eq!(first["uri"], url);
    assert_eq!(first["body"], 0);
    assert_eq!(first["transport"], "value-wait");
    assert!(first["etag"].as_str().unwrap().starts_with('"'), "{first}");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(post(&url), 200);
    let second = run.json();
    assert_eq!(second["body"], 1);
    assert_eq!(second["transport"], "value-wait");
    assert_ne!(second["etag"], first["etag"]);
    assert_eq!(put(&url, "application/json", r#"{"b":[1,2],"a":"x"}"#), 200);
    let third = run.json();
    assert_eq!(third["body"], serde_json::json!({"b":[1,2],"a":"x"}));
    assert!(run.wait().success());
    assert!(run.rest().is_empty());
}

#[test]
fn piped_output_is_one_compact_body_per_line() {
    let base = reference_server();
    let url = format!("{base}/counter/p");
    assert_eq!(
        put(
            &url,
            "application/json",
            "{ \"b\": [1, 2],\n \"a\": \"x\" }"
        ),
        200
    );
    let mut run = lrwatch(&["-n", "2", &url]);
    // The server's key order is kept: exact in a pipe.
    assert_eq!(run.line(), r#"{"b":[1,2],"a":"x"}"#);
    put(&url, "application/json", "\"two\"");
    assert_eq!(run.line(), r#""two""#);
    assert!(run.wait().success());
}

#[test]
fn no_initial_emits_changes_only() {
    let base = reference_server();
    let url = format!("{base}/counter/n");
    let mut run = lrwatch(&[
        "--json",
        "--transport",
        "value-wait",
        "--no-initial",
        "-n",
        "1",
        "-v",
        &url,
    ]);
    run.stderr_until("If-None-Match");
    post(&url);
    let event = run.json();
    assert_eq!(event["body"], 1);
    assert!(run.wait().success());
}

#[test]
fn delete_is_a_removed_event_and_recreation_a_value() {
    let base = reference_server();
    let url = format!("{base}/counter/d");
    let mut run = lrwatch(&["--json", "--interval", "0.1", "-n", "3", &url]);
    assert_eq!(run.json()["body"], 0);
    assert_eq!(delete(&url), 204);
    let removed = run.json();
    assert_eq!(removed["event"], "removed");
    assert_eq!(removed["etag"], serde_json::Value::Null);
    assert!(removed.get("body").is_none(), "{removed}");
    // Back again: found by polling, as a removed resource has no ETag to wait on.
    assert_eq!(post(&url), 200);
    let back = run.json();
    assert_eq!(back["event"], "value");
    assert_eq!(back["body"], 1);
    assert!(run.wait().success());
}

#[test]
fn timeout_exits_124_after_printing_what_came() {
    let base = reference_server();
    let url = format!("{base}/counter/t");
    // Long enough for the first value on a loaded machine; the exit is what is tested.
    let mut run = lrwatch(&["-t", "2", &url]);
    assert_eq!(run.line(), "0");
    assert_eq!(run.wait().code(), Some(124));
}

#[test]
fn plain_resource_is_polled_by_body_comparison() {
    let base = reference_server();
    let url = format!("{base}/plain/a");
    assert_eq!(put(&url, "text/plain", "hello"), 204);
    let mut run = lrwatch(&["--json", "-v", "--interval", "0.05", "-n", "3", &url]);
    let first = run.json();
    assert_eq!(first["transport"], "poll");
    assert_eq!(first["body"], "hello");
    assert_eq!(first["etag"], serde_json::Value::Null);
    // The same body again is no event: let lrwatch poll it twice before changing it.
    put(&url, "text/plain", "hello");
    run.stderr_until("200 in");
    run.stderr_until("200 in");
    put(&url, "text/plain", "world");
    let second = run.json();
    assert_eq!(second["body"], "world");
    put(&url, "application/json", r#"{"x":1}"#);
    assert_eq!(run.json()["body"], serde_json::json!({"x": 1}));
    assert!(run.wait().success());
}

#[test]
fn forced_poll_on_a_long_pollable_resource() {
    let base = reference_server();
    let url = format!("{base}/counter/fp");
    let mut run = lrwatch(&[
        "--json",
        "--transport",
        "poll",
        "--interval",
        "0.05",
        "-n",
        "2",
        &url,
    ]);
    assert_eq!(run.json()["transport"], "poll");
    post(&url);
    let second = run.json();
    assert_eq!(second["transport"], "poll");
    assert_eq!(second["body"], 1);
    assert!(run.wait().success());
}

#[test]
fn forced_transport_not_offered_is_exit_1_naming_the_offers() {
    let base = reference_server();
    let url = format!("{base}/plain/x");
    put(&url, "text/plain", "x");
    let mut run = lrwatch(&["--transport", "value-wait", &url]);
    assert_eq!(run.wait().code(), Some(1));
    let err = run.stderr_text();
    assert!(
        err.contains("does not offer the value-wait transport; it offers: poll"),
        "{err}"
    );
    assert!(err.contains(&url), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn several_urls_are_followed_together() {
    let base = reference_server();
    let a = format!("{base}/counter/m1");
    let b = format!("{base}/counter/m2");
    let mut run = lrwatch(&["--json", "-n", "3", &a, &b]);
    let mut uris = vec![
        run.json()["uri"].as_str().unwrap().to_string(),
        run.json()["uri"].as_str().unwrap().to_string(),
    ];
    uris.sort();
    assert_eq!(uris, vec![a.clone(), b.clone()]);
    post(&b);
    let third = run.json();
    assert_eq!(third["uri"], b);
    assert_eq!(third["body"], 1);
    assert!(run.wait().success());
}

#[test]
fn terminal_mode_has_a_header_and_a_pretty_value() {
    let base = reference_server();
    let url = format!("{base}/counter/term");
    put(&url, "application/json", r#"{"k":"v\u001b]0;pwned\u0007"}"#);
    let mut run = lrwatch_env(
        &["-n", "1", "--transport", "value-wait", &url],
        &[("LRWATCH_TEST_TERM", "1"), ("NO_COLOR", "1")],
    );
    let header = run.line();
    assert!(header.contains(&format!(" {url} ETag \"")), "{header}");
    assert!(header.ends_with("\" value-wait"), "{header}");
    assert_eq!(header.as_bytes()[2], b':', "{header}");
    assert_eq!(run.line(), "{");
    assert_eq!(run.line(), r#"  "k": "v\u001b]0;pwned\u0007""#);
    assert_eq!(run.line(), "}");
    assert!(run.wait().success());

    let mut colored = lrwatch_env(
        &["-n", "1", "--color", "always", &url],
        &[("LRWATCH_TEST_TERM", "1")],
    );
    assert!(colored.line().contains("\x1b["), "header should be dim");
    assert!(colored.wait().success());
}
