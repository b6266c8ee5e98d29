//! Collections and change feeds: child events over every changes transport, recovery from an
//! expired checkpoint and from skipped notifications, and feeds in the server's own format.

use std::collections::BTreeSet;

use lrwatch::server::ServerConfig;

use crate::gate::gate;
use crate::harness::*;

fn add(base: &str, text: &str) -> String {
    let response = agent()
        .post(&format!("{base}/items/"))
        .header("Content-Type", "application/json")
        .send(format!("{{\"text\":\"{text}\"}}"))
        .unwrap();
    assert_eq!(response.status(), 201);
    let item: serde_json::Value =
        serde_json::from_str(&response.into_body().read_to_string().unwrap()).unwrap();
    item["id"].as_str().unwrap().to_string()
}

/// Add, change, delete: exactly one matching child event each, in order.
fn one_event_per_change(base: &str, form: &str, transport: &str) {
    let context = format!("{transport} (form {form})");
    let url = format!("{base}/items/?form={form}");
    let mut run = lrwatch(&["--json", "-n", "4", "--transport", transport, &url]);
    let listing = run.json();
    assert_eq!(
        (listing["event"].as_str(), listing["transport"].as_str()),
        (Some("value"), Some(transport)),
        "{context}"
    );
    let id = add(base, &format!("{form}-{transport}"));
    let added = run.json();
    assert_eq!(
        (added["event"].as_str(), added["id"].as_str()),
        (Some("child-added"), Some(id.as_str())),
        "{context}: {added}"
    );
    assert_eq!(
        added["body"]["text"],
        format!("{form}-{transport}"),
        "{context}"
    );
    assert!(added.get("etag").is_none(), "{context}: {added}");
    assert_eq!(
        put(
            &format!("{base}/items/{id}"),
            "application/json",
            r#"{"text":"changed"}"#
        ),
        200
    );
    let changed = run.json();
    assert_eq!(
        (changed["event"].as_str(), changed["id"].as_str()),
        (Some("child-changed"), Some(id.as_str())),
        "{context}: {changed}"
    );
    assert_eq!(changed["body"]["text"], "changed");
    assert!(delete(&format!("{base}/items/{id}")) < 300);
    let removed = run.json();
    assert_eq!(
        (removed["event"].as_str(), removed["id"].as_str()),
        (Some("child-removed"), Some(id.as_str())),
        "{context}: {removed}"
    );
    assert!(removed.get("body").is_none());
    assert_eq!(removed["transport"], transport);
    assert!(run.wait().success(), "{context}");
}

#[test]
fn every_changes_transport_reports_each_change_once() {
    let cases = [
        ("a", "changes-wait"),
        ("a", "changes-stream"),
        ("a", "multiplex-ws"),
        ("a", "multiplex-wait"),
        ("b", "changes-wait"),
        ("b", "changes-stream"),
        ("b", "multiplex-socket"),
        ("c", "changes"),
        ("c", "multiplex-socket"),
        ("c", "multiplex-wait"),
    ];
    // One server per case: each run sees only its own changes.
    let threads: Vec<_> = cases
        .into_iter()
        .map(|(form, transport)| {
            std::thread::spawn(move || one_event_per_change(&reference_server(), form, transport))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_collection_is_followed_by_its_changes_in_auto() {
    let base = reference_server();
    let mut run = lrwatch(&["--json", "-n", "2", &format!("{base}/items/")]);
    assert_eq!(run.json()["transport"], "changes-stream");
    let id = add(&base, "x");
    let added = run.json();
    assert_eq!(
        (added["event"].as_str(), added["id"].as_str()),
        (Some("child-added"), Some(id.as_str()))
    );
    assert!(run.wait().success());
}

#[test]
fn an_expired_checkpoint_starts_over_without_duplicates() {
    let base = reference_server_with(ServerConfig {
        history: 2,
        ..ServerConfig::default()
    });
    let first = add(&base, "before");
    // The client reads through a gate, so the four changes below land between two of its
    // reads however slow the machine: two would fit in the history and expire nothing.
    let gate = gate(&base);
    // Form B's plain `changes` link is read every --interval (no wait-min).
    let mut run = lrwatch(&[
        "--json",
        "-v",
        "--transport",
        "changes",
        "--interval",
        "0.2",
        "-n",
        "6",
        &format!("{}/items/?form=b", gate.base),
    ]);
    assert_eq!(run.json()["event"], "value");
    // The next read waits at the gate: the checkpoint it holds expires meanwhile.
    gate.close();
    gate.wait_held();
    let ids: Vec<String> = (0..3).map(|i| add(&base, &format!("new {i}"))).collect();
    put(
        &format!("{base}/items/{first}"),
        "application/json",
        r#"{"text":"after"}"#,
    );
    gate.open();
    let events: Vec<serde_json::Value> = (0..4).map(|_| run.json()).collect();
    run.stderr_until("the checkpoint expired");
    let added: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "child-added")
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        added.iter().copied().collect::<BTreeSet<_>>(),
        ids.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        "{events:?}"
    );
    assert_eq!(added.len(), 3, "no duplicate adds: {events:?}");
    let changed: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "child-changed")
        .collect();
    assert_eq!(changed.len(), 1, "{events:?}");
    assert_eq!(changed[0]["id"], first.as_str());
    // Nothing more: one more change is the fifth event, not a replay.
    let last = add(&base, "last");
    assert_eq!(run.json()["id"], last.as_str());
    assert!(run.wait().success());
}

#[test]
fn skipped_notifications_are_recovered_from_the_held_checkpoint() {
    // Sockets are lossy under --lossy (reliable streams are not): Previous-Changes-Id shows
    // the gap at the next notification that arrives. A lost notification is noticed only then,
    // so after the five changes, more changes are made until all five were reported.
    for (form, transport) in [("b", "multiplex-socket"), ("c", "multiplex-socket")] {
        let base = reference_server_with(ServerConfig {
            lossy: Some(2),
            ..ServerConfig::default()
        });
        let mut run = lrwatch(&[
            "--json",
            "-v",
            "--transport",
            transport,
            &format!("{base}/items/?form={form}"),
        ]);
        assert_eq!(run.json()["event"], "value");
        run.stderr_until("transport ");
        let ids: BTreeSet<String> = (0..5).map(|i| add(&base, &format!("n{i}"))).collect();
        let mut seen: Vec<String> = Vec::new();
        let deadline = std::time::Instant::now() + BOUND;
        while !ids.iter().all(|id| seen.contains(id)) {
            assert!(
                std::time::Instant::now() < deadline,
                "{transport} ({form}): only {seen:?}"
            );
            match run.try_line(std::time::Duration::from_millis(300)) {
                Some(line) => {
                    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
                    assert_eq!(event["event"], "child-added", "{transport}: {event}");
                    seen.push(event["id"].as_str().unwrap().to_string());
                }
                None => {
                    add(&base, "sentinel");
                }
            }
        }
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "{transport} ({form}): duplicates in {seen:?}"
        );
        run.stderr_until("missed");
    }
}

#[test]
fn a_feed_in_the_servers_own_format_is_a_changes_event() {
    let server = scripted(|_, seen| match seen.path.as_str() {
        "/feed" => (
            200,
            h(&[("Link", "</feed?after=1>; rel=changes-wait")]),
            r#"{"time":1}"#.into(),
        ),
        "/feed?after=1" => (
            200,
            h(&[("Link", "</feed?after=2>; rel=changes")]),
            r#"{"time:change":"+3"}"#.into(),
        ),
        _ => (
            200,
            h(&[("Link", "</feed?after=2>; rel=changes")]),
            "".into(),
        ),
    });
    let mut run = lrwatch(&["--json", "-n", "2", &format!("{}/feed", server.base)]);
    assert_eq!(run.json()["event"], "value");
    let change = run.json();
    assert_eq!(change["event"], "changes");
    assert_eq!(change["transport"], "changes-wait");
    assert_eq!(change["body"], serde_json::json!({"time:change": "+3"}));
    assert!(change.get("id").is_none());
    assert!(run.wait().success());
}

#[test]
fn exec_gets_the_item_id() {
    let base = reference_server();
    let mut run = lrwatch(&[
        "-n",
        "2",
        "--no-initial",
        "-v",
        "--transport",
        "changes-wait",
        "--exec",
        r#"echo "$LRWATCH_EVENT $LRWATCH_ID""#,
        &format!("{base}/items/"),
    ]);
    run.stderr_until("/items/?since=");
    let id = add(&base, "x");
    assert_eq!(run.line(), format!("child-added {id}"));
    put(
        &format!("{base}/items/{id}"),
        "application/json",
        r#"{"text":"y"}"#,
    );
    assert_eq!(run.line(), format!("child-changed {id}"));
    assert!(run.wait().success());
}
