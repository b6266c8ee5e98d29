//! `lrwatch check` against the reference server: every form passes, and each fault the server
//! can be told to commit turns exactly its requirement to FAIL. The trigger is a curl POST,
//! independent of lrwatch. Runs within one test go concurrently, so the file takes one run's
//! time (about 2.5 s) per test.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use lrwatch::server::{Fault, ServerConfig};
use serde_json::Value;

use crate::harness::*;

/// A finished `lrwatch check --json` run: its exit code and report.
struct Checked {
    code: Option<i32>,
    report: Value,
}

impl Checked {
    /// The requirement ids with this outcome.
    fn with(&self, outcome: &str) -> BTreeSet<String> {
        self.results(outcome)
            .into_iter()
            .map(|r| r["requirement"].as_str().unwrap().to_string())
            .collect()
    }

    /// The mechanisms over which `requirement` had `outcome`.
    fn mechanisms(&self, requirement: &str, outcome: &str) -> BTreeSet<String> {
        self.results(outcome)
            .into_iter()
            .filter(|r| r["requirement"] == requirement)
            .filter_map(|r| r["mechanism"].as_str().map(str::to_string))
            .collect()
    }

    fn results(&self, outcome: &str) -> Vec<Value> {
        self.report["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["outcome"] == outcome)
            .cloned()
            .collect()
    }
}

fn check(url: &str, trigger: Option<&str>) -> Checked {
    let mut args = vec!["check", "--json", "--budget", "20"];
    if let Some(t) = trigger {
        args.extend(["--trigger", t]);
    }
    args.push(url);
    let mut run = lrwatch(&args);
    // Bounded by the budget, with room to spare: a change that never comes is waited for
    // 10 s (a changes link that keeps leading back to its checkpoint, say).
    let line = run
        .try_line(Duration::from_secs(35))
        .unwrap_or_else(|| panic!("no report in 35 s: {}", run.stderr_text()));
    let code = run.wait().code();
    let report: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    Checked { code, report }
}

/// Runs checks concurrently: (url, trigger) each.
fn check_all(runs: Vec<(String, Option<String>)>) -> Vec<Checked> {
    let handles: Vec<_> = runs
        .into_iter()
        .map(|(url, trigger)| std::thread::spawn(move || check(&url, trigger.as_deref())))
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn post_counter(base: &str, id: &str) -> String {
    format!("curl -s -X POST {base}/counter/{id}")
}

fn post_item(base: &str) -> String {
    format!(
        "curl -s -X POST -H 'Content-Type: application/json' -d '{{\"text\":\"x\"}}' {base}/items/"
    )
}

#[test]
fn passes_in_every_form_with_every_transport_delivering() {
    let base = reference_server();
    let forms = ["", "?form=a", "?form=b", "?form=c"];
    let runs = forms
        .iter()
        .enumerate()
        .map(|(i, form)| {
            let id = format!("form{i}");
            (
                format!("{base}/counter/{id}{form}"),
                Some(post_counter(&base, &id)),
            )
        })
        .collect();
    let results = check_all(runs);
    let delivered = [
        // mixed: everything but webhooks
        &[
            "value-stream",
            "hint-stream",
            "multiplex-stream",
            "multiplex-ws",
            "multiplex-socket",
            "value-wait",
            "multiplex-wait",
        ][..],
        &[
            "value-stream",
            "multiplex-stream",
            "multiplex-ws",
            "value-wait",
            "multiplex-wait",
        ],
        &[
            "value-stream",
            "hint-stream",
            "multiplex-socket",
            "value-wait",
            "multiplex-wait",
        ],
        &[
            "value-stream",
            "multiplex-socket",
            "value-wait",
            "multiplex-wait",
        ],
    ];
    for ((form, checked), expected) in forms.iter().zip(&results).zip(delivered) {
        let report = &checked.report;
        assert_eq!(checked.code, Some(0), "{form}: {report:#}");
        assert!(checked.with("fail").is_empty(), "{form}: {report:#}");
        assert_eq!(
            checked.mechanisms("change-delivered", "pass"),
            set(expected),
            "{form}: {report:#}"
        );
        let passed = checked.with("pass");
        for requirement in [
            "discovery",
            "links",
            "etag-present",
            "etag-stable",
            "not-modified",
            "trigger",
            "long-poll-held",
            "long-poll-timely",
            "bad-wait-handled",
            "multiplex-body",
            "content-type",
            "survives-other-clients",
            "sse-content-type",
            "sse-framing",
            "ws-subprotocol",
            "subscribe-ack",
        ] {
            assert!(
                passed.contains(requirement),
                "{form} {requirement}: {report:#}"
            );
        }
        if expected.contains(&"multiplex-ws") {
            assert!(passed.contains("push-is-value"), "{form}: {report:#}");
        }
        assert!(report["took"].as_f64().unwrap() < 10.0, "{report:#}");
    }
}

#[test]
fn collections_pass_and_their_changes_links_advance() {
    let forms = ["?form=a", "?form=b", "?form=c"];
    // A server each: a run's trigger must not be another run's change.
    let runs = forms
        .iter()
        .map(|form| {
            let base = reference_server();
            (format!("{base}/items/{form}"), Some(post_item(&base)))
        })
        .collect();
    for (form, checked) in forms.iter().zip(check_all(runs)) {
        let report = &checked.report;
        assert_eq!(checked.code, Some(0), "{form}: {report:#}");
        assert_eq!(
            checked.mechanisms("changes-advance", "pass"),
            set(&["changes"])
        );
        // No ETag on a collection: skipped, not failed.
        assert!(checked.with("skip").contains("etag-present"), "{report:#}");
        let delivered = checked.mechanisms("change-delivered", "pass");
        assert!(delivered.contains("multiplex-wait"), "{form}: {report:#}");
        assert!(
            delivered.contains("changes-wait") || delivered.contains("changes"),
            "{form}: {report:#}"
        );
    }
}

#[test]
fn each_fault_breaks_exactly_its_requirement_at_its_level() {
    // (fault, the requirement it breaks, FAIL for a MUST or WARN for a SHOULD)
    let cases = [
        (Fault::WaitNow, "long-poll-held", "warn"),
        (Fault::NoSubprotocol, "ws-subprotocol", "fail"),
        (Fault::WrongContentType, "sse-content-type", "fail"),
        (Fault::StaleChanges, "changes-advance", "fail"),
        (Fault::UnstableEtag, "etag-stable", "warn"),
        (Fault::No304, "not-modified", "warn"),
    ];
    let runs = cases
        .iter()
        .map(|(fault, _, _)| {
            let base = reference_server_with(ServerConfig {
                faults: vec![*fault],
                ..ServerConfig::default()
            });
            if *fault == Fault::StaleChanges {
                (format!("{base}/items/"), Some(post_item(&base)))
            } else {
                (format!("{base}/counter/f"), Some(post_counter(&base, "f")))
            }
        })
        .collect();
    for ((fault, requirement, outcome), checked) in cases.iter().zip(check_all(runs)) {
        let other = if *outcome == "fail" { "warn" } else { "fail" };
        // Exit 1 only for a FAIL.
        let code = if *outcome == "fail" { 1 } else { 0 };
        assert_eq!(checked.code, Some(code), "{fault}: {:#}", checked.report);
        assert_eq!(
            checked.with(outcome),
            set(&[requirement]),
            "{fault}: {:#}",
            checked.report
        );
        assert!(
            checked.with(other).is_empty(),
            "{fault}: {:#}",
            checked.report
        );
        // The evidence: the request that shows it, and the response; where the rule is.
        let failure = &checked.results(outcome)[0];
        assert!(failure["request"].is_string(), "{failure:#}");
        assert!(failure["response"].is_string(), "{failure:#}");
        let level = if *outcome == "fail" { "MUST" } else { "SHOULD" };
        assert_eq!(failure["level"], level, "{failure:#}");
        assert!(
            failure["source"].as_str().unwrap().len() > 10,
            "{failure:#}"
        );
    }
}

#[test]
fn a_malformed_wait_ignored_is_no_failure() {
    // No form requires a 400 for `Wait: soon`, and RFC 7240 has preferences not understood
    // ignored: a server that holds the long-poll anyway passes.
    let base = reference_server_with(ServerConfig {
        faults: vec![Fault::AcceptBadWait],
        ..ServerConfig::default()
    });
    let checked = check(&format!("{base}/counter/w?form=a"), None);
    assert_eq!(checked.code, Some(0), "{:#}", checked.report);
    assert!(checked.with("fail").is_empty(), "{:#}", checked.report);
    assert!(checked.with("warn").is_empty(), "{:#}", checked.report);
    let handled = checked.results("pass");
    let handled = handled
        .iter()
        .find(|r| r["requirement"] == "bad-wait-handled")
        .unwrap_or_else(|| panic!("{:#}", checked.report));
    assert!(
        handled["detail"].as_str().unwrap().starts_with("ignored"),
        "{handled:#}"
    );
}

/// The terminal report's lines, through the summary.
fn report_lines(run: &mut Run) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = run.line();
        let done = line.contains(" passed, ");
        lines.push(line);
        if done {
            return lines;
        }
    }
}

#[test]
fn without_a_trigger_change_checks_are_skipped_and_the_terminal_report_reads_well() {
    let base = reference_server();
    let url = format!("{base}/counter/quiet?form=b");
    let mut run = lrwatch(&["check", "--color", "never", &url]);
    let lines = report_lines(&mut run);
    assert_eq!(run.wait().code(), Some(0), "{lines:#?}");
    assert_eq!(lines[0], url);
    let body = &lines[1..lines.len() - 1];
    for line in body {
        assert!(
            ["PASS  ", "SKIP  "].iter().any(|p| line.starts_with(p)),
            "{line}"
        );
    }
    // The survival check needs a change too.
    assert!(
        body.contains(
            &"SKIP  a subscription survives other clients: no trigger given: give --trigger CMD"
                .to_string()
        ),
        "{body:#?}"
    );

    assert!(
        body.contains(
            &"SKIP  value-wait · change delivered: no trigger given: give --trigger CMD"
                .to_string()
        ),
        "{body:#?}"
    );
    assert!(body.contains(&"PASS  304 on a matching If-None-Match: 304".to_string()));
    let summary = lines.last().unwrap();
    assert!(
        summary.contains(" passed, 0 failed, 0 warned, "),
        "{summary}"
    );
    assert!(summary.contains("s (budget 60s)"), "{summary}");
}

#[test]
fn a_warning_shows_level_source_request_and_response_and_fails_only_when_strict() {
    let base = reference_server_with(ServerConfig {
        faults: vec![Fault::No304],
        ..ServerConfig::default()
    });
    let url = format!("{base}/counter/x");
    for strict in [false, true] {
        let mut args = vec!["check", "--color", "never", "--budget", "10", &url];
        if strict {
            args.insert(1, "--strict");
        }
        let mut run = lrwatch(&args);
        let lines = report_lines(&mut run);
        assert_eq!(
            run.wait().code(),
            Some(if strict { 1 } else { 0 }),
            "{lines:#?}"
        );
        let at = lines
            .iter()
            .position(|l| l.starts_with("WARN  304 on a matching If-None-Match"))
            .unwrap_or_else(|| panic!("{lines:#?}"));
        assert_eq!(
            lines[at + 1],
            "      SHOULD in RFC 7232, section 3.2 \"If-None-Match\" (\"SHOULD respond with a 304\")"
        );
        assert_eq!(lines[at + 2], format!("      > GET {url}"));
        assert_eq!(lines[at + 3], "      > If-None-Match: \"0\"");
        assert_eq!(lines[at + 4], "      < HTTP 200");
        assert!(
            lines.last().unwrap().contains(" 0 failed, 1 warned, "),
            "{lines:#?}"
        );
        let stderr = run.stderr_text();
        assert_eq!(stderr.contains("1 requirement warned"), strict, "{stderr}");
    }
    // `ok` in --json agrees with the exit status, --strict or not.
    for strict in [false, true] {
        let mut args = vec!["check", "--json", "--budget", "10", &url];
        if strict {
            args.insert(1, "--strict");
        }
        let mut run = lrwatch(&args);
        let line = run
            .try_line(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("no report in 20 s: {}", run.stderr_text()));
        let code = run.wait().code();
        let report: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(report["warned"], 1, "{report:#}");
        assert_eq!(code, Some(if strict { 1 } else { 0 }), "{report:#}");
        assert_eq!(report["ok"], !strict, "{report:#}");
        assert_eq!(report["strict"], strict, "{report:#}");
    }
}

#[test]
fn unreachable_servers_and_bad_urls() {
    let mut run = lrwatch(&["check", "http://127.0.0.1:1/x"]);
    assert_eq!(run.wait().code(), Some(1));
    assert!(run.stderr_text().contains("cannot reach"));
    let mut run = lrwatch(&["check", "ftp://h/x"]);
    assert_eq!(run.wait().code(), Some(2));
    let mut run = lrwatch(&["serve", "--fault", "teleport"]);
    assert_eq!(run.wait().code(), Some(2));
    assert!(run.stderr_text().contains("wait-now"));
}

#[test]
fn https_and_wss_with_cacert() {
    let upstream = reference_server();
    let (ca_pem, chain, key) = crate::tls::certificates();
    let base = crate::tls::tls_proxy(&upstream, chain, key);
    let ca_file = std::env::temp_dir().join(format!("lrwatch-check-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca_pem).unwrap();
    let ca = ca_file.to_str().unwrap();
    let url = format!("{base}/counter/tls?form=b");
    let trigger = post_counter(&upstream, "tls");
    let mut run = lrwatch(&[
        "check",
        "--json",
        "--cacert",
        ca,
        "--trigger",
        &trigger,
        &url,
    ]);
    let line = run.line();
    let code = run.wait().code();
    let checked = Checked {
        code,
        report: serde_json::from_str(&line).unwrap(),
    };
    assert_eq!(checked.code, Some(0), "{:#}", checked.report);
    assert!(
        checked
            .mechanisms("change-delivered", "pass")
            .contains("multiplex-socket"),
        "over wss: {:#}",
        checked.report
    );
    assert!(checked
        .mechanisms("ws-subprotocol", "pass")
        .contains("multiplex-socket"));

    let mut run = lrwatch(&["inspect", "--json", "--cacert", ca, &url]);
    let report: Value = serde_json::from_str(&run.line()).unwrap();
    assert_eq!(run.wait().code(), Some(0));
    assert_eq!(report["status"], 200);
    let _ = std::fs::remove_file(&ca_file);
}

#[test]
fn webhooks_are_exercised_with_a_callback_listener_and_skipped_without() {
    let base = reference_server();
    let url = format!("{base}/counter/hooks");
    let trigger = post_counter(&base, "hooks");
    // A free port, named to the server by another host name through --callback-url: the
    // notifications must go where that URL says.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let callback_url = format!("http://localhost:{port}/");
    let mut run = lrwatch(&[
        "check",
        "--json",
        "--callback-listen",
        &listen,
        "--callback-url",
        &callback_url,
        "--trigger",
        &trigger,
        &url,
    ]);
    let line = run.line();
    let checked = Checked {
        code: run.wait().code(),
        report: serde_json::from_str(&line).unwrap(),
    };
    let report = &checked.report;
    assert_eq!(checked.code, Some(0), "{report:#}");
    let hooks = set(&["value-callback", "multiplex-callbacks"]);
    for requirement in [
        "callback-subscribe",
        "change-delivered",
        "callback-location",
        "callback-unsubscribe",
    ] {
        assert!(
            checked.mechanisms(requirement, "pass").is_superset(&hooks),
            "{requirement}: {report:#}"
        );
    }
    // The trigger ran once more after the DELETEs.
    assert!(
        checked
            .results("pass")
            .iter()
            .any(|r| r["requirement"] == "trigger"
                && r["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("webhooks, after DELETE")),
        "{report:#}"
    );

    // Without a way to receive them: SKIP, saying which flag.
    let checked = check(&url, None);
    let skipped = checked.results("skip");
    let hook = skipped
        .iter()
        .find(|r| r["requirement"] == "callback-subscribe" && r["mechanism"] == "value-callback")
        .unwrap_or_else(|| panic!("{:#}", checked.report));
    assert_eq!(hook["needs"], "webhooks", "{hook:#}");
    assert!(
        hook["hint"].as_str().unwrap().contains("--callback-listen"),
        "{hook:#}"
    );
}

/// A trigger that leaves a background process holding its stderr (`… &`) does not hold the
/// run: its output is read for a moment after it exits, not until every holder lets go.
#[test]
fn a_trigger_that_leaves_a_background_process_does_not_hold_the_run() {
    let base = reference_server();
    let pid_file = std::env::temp_dir().join(format!("lrwatch-bg-{}", std::process::id()));
    let trigger = format!(
        "sleep 60 & echo $! > '{}'; {}",
        pid_file.display(),
        post_counter(&base, "background")
    );
    let checked = check(&format!("{base}/counter/background"), Some(&trigger));
    if let Ok(pid) = std::fs::read_to_string(&pid_file) {
        let _ = Command::new("kill").arg(pid.trim()).status();
        let _ = std::fs::remove_file(&pid_file);
    }
    assert_eq!(checked.code, Some(0), "{:#}", checked.report);
    assert_eq!(checked.report["ok"], true, "{:#}", checked.report);
}
