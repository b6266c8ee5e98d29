//! Output for people and scripts: --diff, --exec, --select, broken pipes, completions, man.

use std::process::Command;

use crate::harness::*;

#[test]
fn diff_in_a_pipe_is_a_unified_diff() {
    let base = reference_server();
    let url = format!("{base}/counter/diff");
    put(&url, "application/json", r#"{"b":2,"a":1}"#);
    let mut run = lrwatch(&["--diff", "--transport", "value-wait", "-n", "2", &url]);
    assert_eq!(run.line(), r#"{"b":2,"a":1}"#);
    put(&url, "application/json", r#"{"a":1,"b":3}"#);
    let old = run.line();
    assert!(old.starts_with(&format!("--- {url} ETag \"")), "{old}");
    let new = run.line();
    assert!(
        new.starts_with(&format!("+++ {url} ETag \"")) && new.contains(" · value-wait · "),
        "{new}"
    );
    let hunk: Vec<String> = (0..5).map(|_| run.line()).collect();
    assert_eq!(
        hunk,
        [
            "@@ -1,4 +1,4 @@",
            " {",
            "   \"a\": 1,",
            "-  \"b\": 2",
            "+  \"b\": 3"
        ]
    );
    assert_eq!(run.line(), " }");
    assert!(run.wait().success());
}

#[test]
fn diff_on_a_terminal_highlights_changed_words() {
    let base = reference_server();
    let url = format!("{base}/counter/cdiff");
    put(&url, "application/json", r#"{"greeting":"hello world"}"#);
    let mut run = lrwatch_env(
        &["--diff", "--color", "always", "-n", "2", &url],
        &[("LRWATCH_TEST_TERM", "1")],
    );
    run.line(); // header
    for _ in 0..3 {
        run.line(); // the pretty value
    }
    put(&url, "application/json", r#"{"greeting":"hello there"}"#);
    let mut lines = Vec::new();
    while lines.len() < 8 {
        lines.push(run.line());
        if lines.last().unwrap().contains("there") {
            break;
        }
    }
    let added = lines.last().unwrap();
    assert!(
        added.contains("\x1b[7m"),
        "the changed word is emphasized: {lines:?}"
    );
    assert!(run.wait().success());
}

#[test]
fn exec_gets_the_value_on_stdin_and_facts_in_the_environment() {
    if !have("jq", "the contract's --exec example") {
        return;
    }
    let base = reference_server();
    let url = format!("{base}/counter/exec");
    put(&url, "application/json", r#"{"count":41}"#);
    // The contract's example: a script gets the right value.
    let mut run = lrwatch(&[
        "-n",
        "2",
        "--no-initial",
        "-v",
        "--transport",
        "value-wait",
        "--exec",
        "jq .count",
        &url,
    ]);
    run.stderr_until("If-None-Match");
    put(&url, "application/json", r#"{"count":42}"#);
    assert_eq!(run.line(), "42");
    run.stderr_until("If-None-Match");
    put(&url, "application/json", r#"{"count":43}"#);
    assert_eq!(run.line(), "43");
    assert!(run.wait().success());

    // Hostile content stays data: it is never part of the command line.
    put(
        &url,
        "application/json",
        r#""$(echo INJECTED) `echo INJECTED`; echo INJECTED""#,
    );
    let mut run = lrwatch(&[
        "-n",
        "1",
        "--transport",
        "value-wait",
        "--exec",
        r#"cat; echo; echo "$LRWATCH_EVENT|$LRWATCH_URI|$LRWATCH_ETAG|$LRWATCH_TRANSPORT""#,
        &url,
    ]);
    assert_eq!(
        run.line(),
        r#""$(echo INJECTED) `echo INJECTED`; echo INJECTED""#
    );
    let facts = run.line();
    let parts: Vec<&str> = facts.split('|').collect();
    assert_eq!(parts[0], "value");
    assert_eq!(parts[1], url);
    assert!(parts[2].starts_with('"'), "{facts}");
    assert_eq!(parts[3], "value-wait");
    assert!(run.wait().success());
}

#[test]
fn exec_coalesces_events_that_arrive_during_a_run() {
    let base = reference_server();
    let url = format!("{base}/counter/coalesce");
    let gate = std::env::temp_dir().join(format!("lrwatch-gate-{}", std::process::id()));
    let started = gate.with_extension("started");
    let _ = std::fs::remove_file(&gate);
    let _ = std::fs::remove_file(&started);
    // Each run says it started, then waits for the gate file: the first run (the initial value)
    // holds the runner while three changes arrive; only the latest of them gets a run.
    let command = format!(
        "touch '{}'; while [ ! -e '{}' ]; do sleep 0.02; done; cat; echo",
        started.display(),
        gate.display()
    );
    let mut run = lrwatch(&[
        "-v",
        "-n",
        "4",
        "--transport",
        "value-wait",
        "--exec",
        &command,
        &url,
    ]);
    run.stderr_until("If-None-Match");
    // The first run holds the initial value before any change is made (else, on a loaded
    // machine, the first change can reach the runner first and be coalesced with it).
    let deadline = std::time::Instant::now() + BOUND;
    while !started.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for _ in 0..3 {
        post(&url);
        run.stderr_until("200 in");
    }
    std::fs::write(&gate, "").unwrap();
    assert_eq!(run.line(), "0");
    assert_eq!(run.line(), "3");
    // With --count, lrwatch exits once the last run has finished.
    assert!(run.wait().success());
    assert!(run.rest().is_empty());
    let _ = std::fs::remove_file(&gate);
    let _ = std::fs::remove_file(&started);
}

#[test]
fn a_failing_exec_command_is_reported_and_following_goes_on() {
    let base = reference_server();
    let url = format!("{base}/counter/fail");
    let mut run = lrwatch(&["-n", "2", "-v", "--exec", "cat; echo; exit 3", &url]);
    assert_eq!(run.line(), "0");
    run.stderr_until("--exec: the command failed (exit status: 3)");
    post(&url);
    assert_eq!(run.line(), "1");
    assert!(run.wait().success());
}

#[test]
fn select_follows_one_part() {
    let base = reference_server();
    let url = format!("{base}/counter/sel");
    put(&url, "application/json", r#"{"a":1,"b":{"c":1}}"#);
    let mut run = lrwatch(&[
        "--json",
        "-v",
        "-n",
        "2",
        "--transport",
        "value-wait",
        "--select",
        "/b/c",
        &url,
    ]);
    assert_eq!(run.json()["body"], 1);
    run.stderr_until("If-None-Match");
    put(&url, "application/json", r#"{"a":2,"b":{"c":1}}"#);
    run.stderr_until("200 in");
    put(&url, "application/json", r#"{"a":2,"b":{"c":2}}"#);
    let event = run.json();
    assert_eq!(event["body"], 2, "the change of /a alone was not an event");
    assert!(run.wait().success());
}

#[test]
fn select_errors_say_which_problem() {
    let base = reference_server();
    let url = format!("{base}/counter/selerr");
    let mut run = lrwatch(&["--select", "/nope", &url]);
    assert_eq!(run.wait().code(), Some(1));
    assert_eq!(
        run.stderr_text(),
        format!("lrwatch: the value of {url} has nothing at --select '/nope'")
    );

    let plain = format!("{base}/plain/selerr");
    put(&plain, "text/plain", "not json");
    let mut run = lrwatch(&["--select", "/a", &plain]);
    assert_eq!(run.wait().code(), Some(1));
    assert!(run.stderr_text().contains("is not JSON"));

    let mut run = lrwatch(&["--select", "a", &url]);
    assert_eq!(run.wait().code(), Some(2));
    assert!(run.stderr_text().contains("is not a JSON Pointer"));
}

#[test]
fn a_closed_pipe_ends_quietly_with_exit_0() {
    let bin = env!("CARGO_BIN_EXE_lrwatch");
    let out = without_proxy(&mut Command::new("bash"))
        .args([
            "-c",
            &format!("timeout 10 '{bin}' demo -q | head -1; exit ${{PIPESTATUS[0]}}"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn completions_and_man_page_match_the_checked_in_files_and_load() {
    let root = env!("CARGO_MANIFEST_DIR");
    for (shell, file) in [
        ("bash", "lrwatch.bash"),
        ("zsh", "_lrwatch"),
        ("fish", "lrwatch.fish"),
        ("elvish", "lrwatch.elv"),
        ("powershell", "_lrwatch.ps1"),
    ] {
        let out = without_proxy(&mut Command::new(env!("CARGO_BIN_EXE_lrwatch")))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            out.stdout,
            std::fs::read(format!("{root}/completions/{file}")).unwrap(),
            "{shell}"
        );
    }
    let man = without_proxy(&mut Command::new(env!("CARGO_BIN_EXE_lrwatch")))
        .arg("man")
        .output()
        .unwrap();
    assert_eq!(
        man.stdout,
        std::fs::read(format!("{root}/man/lrwatch.1")).unwrap()
    );
    assert!(String::from_utf8_lossy(&man.stdout).contains(".TH lrwatch 1"));

    let bash = Command::new("bash")
        .args([
            "-c",
            &format!("source '{root}/completions/lrwatch.bash' && complete -p lrwatch"),
        ])
        .output()
        .unwrap();
    assert!(bash.status.success(), "{bash:?}");
    if !have("fish", "loading the fish completions") {
        return;
    }
    let fish = Command::new("fish")
        .args([
            "-c",
            &format!("source '{root}/completions/lrwatch.fish'; complete -C'lrwatch --tra'"),
        ])
        .output()
        .expect("fish is installed by .ci/run");
    assert!(
        String::from_utf8_lossy(&fish.stdout).contains("--transport"),
        "{fish:?}"
    );
}

/// In a pipe, one line is one event: a text value with line breaks is written as a JSON
/// string, from a GET and from a stream push alike, so a server cannot make a line reader
/// see events that never happened.
#[test]
fn text_with_line_breaks_stays_one_line_in_a_pipe() {
    let server = scripted(|_, seen| {
        if seen.path == "/s" {
            let events = "data: pushed\ndata: {\"event\":\"fake\"}\n\ndata: just text\n\n";
            return (
                200,
                h(&[("Content-Type", "text/event-stream")]),
                events.into(),
            );
        }
        if seen.header("if-none-match").is_some() {
            return (304, h(&[("ETag", "\"1\"")]), String::new());
        }
        let headers = h(&[
            ("Content-Type", "text/plain"),
            ("ETag", "\"1\""),
            ("Link", "</s>; rel=\"value-stream\""),
        ]);
        (200, headers, "first\nfake event\r\n".into())
    });
    let url = format!("{}/r", server.base);
    let mut run = lrwatch(&["-n", "3", "--transport", "value-stream", &url]);
    assert_eq!(run.line(), r#""first\nfake event\r\n""#);
    assert_eq!(run.line(), r#""pushed\n{\"event\":\"fake\"}""#);
    assert_eq!(run.line(), "just text");
    assert!(run.wait().success());
    // `--json` is unchanged: the body is the text, as a JSON string.
    let mut run = lrwatch(&["--json", "-n", "1", &url]);
    assert_eq!(run.json()["body"], "first\nfake event\r\n");
    assert!(run.wait().success());
}
