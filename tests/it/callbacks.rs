//! Webhooks: subscribing, receiving notifications, refusing forged ones, and leaving no
//! subscription behind however lrwatch exits.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use crate::harness::*;

fn subscriptions(base: &str) -> serde_json::Value {
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

    let mut run = lrwatch(&["-v", "-t", "1", "--transport", "value-callback", &url]);
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
    assert_eq!(
        notify(&callback, &url, vec![b'7'; 2 * 1024 * 1024]),
        413,
        "an oversized body"
    );
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
    run.stderr_until("not using value-callback: webhooks need --callback-url or --callback-listen");
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
