//! `lrwatch inspect`: what the reference server offers in each form, on a terminal and in
//! `--json`; unknown and malformed links; HEAD falling back to GET.

use serde_json::Value;

use crate::harness::*;

/// Every stdout line of a finished run.
fn output(args: &[&str]) -> (Option<i32>, Vec<String>) {
    let mut run = lrwatch(args);
    let code = run.wait().code();
    (code, run.rest())
}

fn json(args: &[&str]) -> Value {
    let mut full = vec!["inspect", "--json"];
    full.extend_from_slice(args);
    let mut run = lrwatch(&full);
    let line = run.line();
    assert_eq!(run.wait().code(), Some(0), "{line}");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

fn mechanism<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["mechanisms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mechanism"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report:#}"))
}

#[test]
fn json_in_each_form() {
    let base = reference_server();
    // (query, forms recognised, auto's pick, its target's query, offered, not offered)
    type Case<'a> = (
        &'a str,
        &'a [&'a str],
        &'a str,
        &'a str,
        &'a [&'a str],
        &'a [&'a str],
    );
    let cases: [Case; 4] = [
        (
            "",
            &["A", "B", "C"],
            "value-stream",
            "stream=value&mode=reliable",
            &[
                "multiplex-ws",
                "multiplex-socket",
                "hint-stream",
                "value-callback",
            ],
            &["changes"],
        ),
        (
            "?form=a",
            // The reference server's form A streams have reliable links, a sign of form B.
            &["A", "B"],
            "value-stream",
            "stream=value&mode=reliable&form=a",
            &["multiplex-ws", "multiplex-stream", "value-wait"],
            &["hint-stream", "multiplex-socket"],
        ),
        (
            "?form=b",
            &["B"],
            "value-stream",
            "mode=reliable&form=b",
            &["hint-stream", "multiplex-socket", "value-wait"],
            &["multiplex-ws", "value-callback"],
        ),
        (
            "?form=c",
            &["C"],
            "value-stream",
            "stream=value&form=c",
            &["multiplex-socket", "value-wait", "value-callback"],
            &["hint-stream", "multiplex-ws"],
        ),
    ];
    for (query, forms, auto, target_query, offered, absent) in cases {
        let url = format!("{base}/counter/i{query}");
        let report = json(&[&url]);
        let context = format!("{query}: {report:#}");
        assert_eq!(report["method"], "HEAD", "{context}");
        assert_eq!(report["status"], 200, "{context}");
        assert_eq!(report["etag"], "\"0\"", "{context}");
        assert_eq!(report["forms"], serde_json::json!(forms), "{context}");
        assert_eq!(report["auto"]["mechanism"], auto, "{context}");
        let target = report["auto"]["target"].as_str().unwrap();
        assert!(target.ends_with(target_query), "{target} {context}");
        for name in offered {
            assert_eq!(
                mechanism(&report, name)["offered"],
                true,
                "{name} {context}"
            );
        }
        for name in absent {
            let m = mechanism(&report, name);
            assert_eq!(m["offered"], false, "{name} {context}");
            assert_eq!(m["reason"], "not advertised");
        }
        let poll = mechanism(&report, "poll");
        assert_eq!(poll["usable"], true);
        assert!(!report["auto"]["reasons"].as_array().unwrap().is_empty());
    }
    // Webhooks are offered but not usable by auto without a callback URL; C has properties.
    let c = json(&[&format!("{base}/counter/i?form=c")]);
    let callbacks = mechanism(&c, "value-callback");
    assert_eq!(callbacks["usable"], false);
    assert!(callbacks["reason"]
        .as_str()
        .unwrap()
        .contains("webhooks need an address to receive notifications at"));
    assert_eq!(c["properties"][0]["name"], "wait");
    assert_eq!(c["properties"][0]["params"]["min"], "1");
    assert_eq!(c["poll_interval"], 5.0);
}

#[test]
fn terminal_report_of_the_mixed_server() {
    let base = reference_server();
    let url = format!("{base}/counter/t");
    let (code, lines) = output(&["inspect", &url]);
    assert_eq!(code, Some(0));
    let text = lines.join("\n");
    assert_eq!(lines[0], url);
    for expected in [
        "Request        HEAD -> 200",
        "ETag           \"0\"",
        "Poll interval  5s (X-Poll-Interval)",
        "Properties     wait; min=1",
        "Links (13)",
        "  alternate (= value-stream)",
        "  multiplex-request (= multiplex-wait)",
        "Forms: A (the 2014 specification), B (the 2016 test server and web page), C (the 2016 draft)",
        "  A      a multiplex-ws link",
        "  yes value-wait          usable",
        "  no  value-callback      webhooks need an address to receive notifications at (--callback-url or --callback-listen)",
        "  -   changes             not advertised",
        "  with several resources of this server followed together: multiplex-stream",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "missing {expected:?} in:\n{text}"
        );
    }
    assert!(text.contains(&format!(
        "auto picks value-stream  {base}/counter/t?stream=value&mode=reliable"
    )));
    // No color in a pipe.
    assert!(!text.contains('\x1b'), "{text}");
}

#[test]
fn collections_in_each_form() {
    let base = reference_server();
    for (form, auto) in [
        ("a", "changes-stream"),
        ("b", "changes-stream"),
        ("c", "multiplex-socket"),
    ] {
        let report = json(&[&format!("{base}/items/?form={form}")]);
        assert_eq!(report["etag"], Value::Null);
        assert_eq!(mechanism(&report, "changes")["offered"], true, "{report:#}");
        assert_eq!(report["auto"]["mechanism"], auto, "{form}: {report:#}");
        assert_eq!(report["auto"]["follows"], "changes", "{form}: {report:#}");
        assert_eq!(mechanism(&report, "poll")["usable"], false, "{report:#}");
    }
}

#[test]
fn unknown_and_malformed_links_are_listed_and_head_falls_back_to_get() {
    // Every HEAD (the even requests: each run makes a HEAD, then a GET) is refused.
    let server = scripted(|n, _| {
        if n % 2 == 0 {
            return (405, h(&[("Allow", "GET")]), String::new());
        }
        (
            200,
            h(&[
                ("ETag", "\"7\""),
                (
                    "Link",
                    "</r>; rel=\"value-wait hub\", </n>; rel=next; title=\"a, b\", <broken; rel=value-stream",
                ),
            ]),
            "{}".to_string(),
        )
    });
    let url = format!("{}/r", server.base);
    let (code, lines) = output(&["inspect", &url]);
    assert_eq!(code, Some(0));
    let text = lines.join("\n");
    assert!(
        text.contains("Request        GET -> 200 (HEAD was answered 405)"),
        "{text}"
    );
    assert!(
        text.contains("  value-wait, hub (unknown, ignored)"),
        "{text}"
    );
    assert!(text.contains("  malformed: "), "{text}");
    assert!(text.contains("auto picks value-wait"), "{text}");
    assert!(text.contains("  next (unknown, ignored)"), "{text}");
    assert!(text.contains("title=a, b"), "{text}");

    let report = json(&[&url]);
    assert_eq!(report["method"], "GET");
    let rels = &report["links"][0]["rels"];
    assert_eq!(rels[1]["rel"], "hub");
    assert_eq!(rels[1]["known"], false);
    assert_eq!(report["link_errors"].as_array().unwrap().len(), 1);
}

#[test]
fn plain_resources_are_polled() {
    let server = scripted(|_, _| (200, h(&[("Content-Type", "text/plain")]), "x".into()));
    let report = json(&[&format!("{}/p", server.base)]);
    assert_eq!(report["forms"], serde_json::json!([]));
    assert_eq!(report["auto"]["mechanism"], "poll");
    assert!(report["auto"]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("no LiveResource mechanism"));
    let mut run = lrwatch(&["inspect", "http://127.0.0.1:1/x"]);
    assert_eq!(run.wait().code(), Some(1));
    assert!(run.stderr_text().contains("cannot reach"));
}

#[test]
fn the_kind_of_a_live_url_is_told_without_reading_it_to_its_end() {
    use crate::live_server::{chunk, chunked_head, head, hold, http_server, send};
    // HEAD refused (each path's first request): the GET's head tells; an endless event
    // stream is not read.
    let asked = std::sync::Mutex::new(std::collections::HashSet::new());
    let server = http_server(move |_, seen, stream| {
        if asked.lock().unwrap().insert(seen.path.clone()) {
            return crate::harness::respond(&stream, 405, &[], "");
        }
        match seen.path.as_str() {
            "/sse" => {
                head(&stream, 200, "text/event-stream");
                send(&stream, b": hello\n\n");
                hold(stream);
            }
            "/watch" => {
                chunked_head(&stream, "application/json");
                chunk(&stream, b"{\"type\":\"ADDED\"}\n{\"type\":");
                hold(stream);
            }
            _ => {
                crate::harness::respond(&stream, 200, &[("Content-Type", "application/json")], "{}")
            }
        }
    });
    let report = json(&[&format!("{}/sse", server.base)]);
    assert_eq!(report["kind"], "event-stream");
    let report = json(&[&format!("{}/watch", server.base)]);
    assert_eq!(report["kind"], "json-lines");
    let report = json(&[&format!("{}/doc", server.base)]);
    assert_eq!(report["kind"], "document");
    // The reference server answers HEAD of its value stream as for the document; the GET
    // that following makes is the stream.
    let stream = format!("{}/counter/kind?stream=value", reference_server());
    assert_eq!(json(&[&stream])["kind"], "event-stream");
    assert_eq!(json(&["ws://127.0.0.1:1/socket"])["kind"], "websocket");
    let (code, lines) = output(&["inspect", &format!("{}/sse", server.base)]);
    assert_eq!(code, Some(0));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("followed directly over event-stream")),
        "{lines:?}"
    );
}
