//! Telling resources apart: `--prefix`, `NAME=URL` arguments, `--urls FILE`; and `--exec` with
//! `--json`, whose runs read the envelope.

use std::io::Write;

use crate::harness::*;

/// The envelope without its time, which differs between two runs.
fn timeless(mut envelope: serde_json::Value) -> serde_json::Value {
    envelope
        .as_object_mut()
        .expect("an envelope is an object")
        .remove("time")
        .expect("an envelope has a time");
    envelope
}

#[test]
fn exec_with_json_reads_the_envelope_json_prints() {
    let base = reference_server();
    let url = format!("{base}/counter/exec-json");
    put(&url, "application/json", r#"{"count":7}"#);
    let mut printed = lrwatch(&["-n", "1", "--json", "--transport", "value-wait", &url]);
    let printed = timeless(printed.json());
    // One envelope a run, a line of its own (the echo after it starts the next line), and
    // the facts in the environment as ever.
    let mut run = lrwatch(&[
        "-n",
        "1",
        "--json",
        "--transport",
        "value-wait",
        "--exec",
        r#"cat; echo "|$LRWATCH_EVENT|$LRWATCH_NAME|""#,
        &url,
    ]);
    let envelope = run.json();
    assert_eq!(timeless(envelope.clone()), printed);
    assert_eq!(envelope["body"], serde_json::json!({"count": 7}));
    assert_eq!(run.line(), "|value||");
    assert!(run.wait().success());

    // A removal has no body; a named URL's envelope has its name, as --json prints it.
    delete(&url);
    let mut run = lrwatch(&[
        "-n",
        "1",
        "--json",
        "--exec",
        r#"cat; echo "|$LRWATCH_EVENT|$LRWATCH_NAME|""#,
        &format!("gone={url}"),
    ]);
    let envelope = run.json();
    assert_eq!(envelope["event"], "removed");
    assert_eq!(envelope["name"], "gone");
    assert_eq!(envelope["uri"], url.as_str());
    assert!(envelope.get("body").is_none(), "{envelope}");
    assert_eq!(run.line(), "|removed|gone|");
    assert!(run.wait().success());
}

#[test]
fn prefix_labels_each_line_with_its_name_or_url() {
    let base = reference_server();
    let (a, b) = (format!("{base}/counter/pa"), format!("{base}/counter/pb"));
    put(&a, "application/json", "1");
    put(&b, "application/json", "[2, 2]");
    let named = format!("first={a}");
    let mut run = lrwatch(&["-n", "3", "--prefix", &named, &b]);
    let mut lines = vec![run.line(), run.line()];
    lines.sort();
    assert_eq!(lines, ["first\t1".to_string(), format!("{b}\t[2,2]")]);
    post(&a);
    assert_eq!(run.line(), "first\t2");
    assert!(run.wait().success());

    // --json stays JSON, with the name as a member; without --prefix, lines are bare.
    let mut run = lrwatch(&["-n", "1", "--prefix", "--json", &named]);
    let envelope = run.json();
    assert_eq!(
        (&envelope["name"], &envelope["body"]),
        (&"first".into(), &2.into())
    );
    let mut run = lrwatch(&["-n", "1", &named]);
    assert_eq!(run.line(), "2");
}

#[test]
fn prefix_on_a_terminal_and_in_diffs() {
    let base = reference_server();
    let url = format!("{base}/objects/prefix-diff");
    put(&url, "application/json", r#"{"a":1}"#);
    let named = format!("obj={url}");
    let mut run = lrwatch_env(
        &["-n", "1", "--prefix", &named],
        &[("LRWATCH_TEST_TERM", "1"), ("NO_COLOR", "1")],
    );
    let header = run.line();
    assert!(header.starts_with("obj\t"), "{header}");
    assert!(header.contains(&url), "{header}");
    // The value below the header is as ever.
    assert_eq!(run.line(), "{");
    assert!(run.wait().success());

    // In a pipe, every line of a diff is labelled.
    let mut run = lrwatch(&["-n", "2", "--diff", "--prefix", &named]);
    assert_eq!(run.line(), "obj\t{\"a\":1}");
    put(&url, "application/json", r#"{"a":2}"#);
    assert!(run.wait().success());
    let diff = run.rest();
    assert!(diff.len() >= 5, "{diff:#?}");
    for line in &diff {
        assert!(line.starts_with("obj\t"), "{diff:#?}");
    }
    assert!(diff.contains(&"obj\t+  \"a\": 2".to_string()), "{diff:#?}");
}

#[test]
fn urls_come_from_a_file_or_stdin_with_those_on_the_command_line() {
    let base = reference_server();
    let dir = std::env::temp_dir().join(format!("lrwatch-urls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("list");
    std::fs::write(
        &file,
        format!("# followed resources\n\n  a={base}/counter/la  \n\t# off: {base}/counter/x\n{base}/counter/lb\n"),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let cli = format!("c={base}/counter/lc");
    let mut run = lrwatch(&["-n", "3", "--prefix", "--urls", file, &cli]);
    let mut lines = vec![run.line(), run.line(), run.line()];
    lines.sort();
    assert_eq!(
        lines,
        [
            "a\t0".to_string(),
            "c\t0".into(),
            format!("{base}/counter/lb\t0")
        ]
    );
    assert!(run.wait().success());

    // `-` is standard input.
    let mut run = lrwatch(&["-n", "2", "--prefix", "--urls", "-"]);
    let mut stdin = run.take_stdin();
    writeln!(stdin, "s={base}/counter/la\n{base}/counter/lb").unwrap();
    drop(stdin);
    let mut lines = vec![run.line(), run.line()];
    lines.sort();
    assert_eq!(lines, [format!("{base}/counter/lb\t0"), "s\t0".to_string()]);
    assert!(run.wait().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_urls_line_is_a_usage_error_naming_the_line() {
    let base = reference_server();
    let mut run = lrwatch(&["--urls", "-"]);
    let mut stdin = run.take_stdin();
    writeln!(stdin, "# list\n{base}/counter/ok\n\nftp://h/x").unwrap();
    drop(stdin);
    assert_eq!(run.wait().code(), Some(2));
    let stderr = run.stderr_text();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("lrwatch: --urls - (standard input) line 4: "),
        "{stderr}"
    );
    assert!(stderr.contains("ftp"), "{stderr}");

    // A URL with two names, a missing file, an empty list: usage errors too.
    let url = format!("{base}/counter/ok");
    for args in [
        vec![format!("a={url}"), format!("b={url}")],
        vec!["--urls".into(), "/nonexistent/lrwatch-list".into()],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut run = lrwatch(&args);
        assert_eq!(run.wait().code(), Some(2), "{args:?}");
        assert!(!run.stderr_text().is_empty());
    }
    let mut run = lrwatch(&["--urls", "-"]);
    drop(run.take_stdin());
    assert_eq!(run.wait().code(), Some(2));
    assert!(run.stderr_text().contains("lists none"));
}

/// 10,000 URLs are accepted from a file and followed (the first value out says so). That
/// every one of them is followed is the engine's concern (its own tests); here, reading them
/// all in one run alongside other tests cost thousands of threads at once, which failed now
/// and then on a loaded machine. (`urls::tests` reads 10,000 names and URLs at scale.)
#[test]
fn ten_thousand_urls_from_a_file() {
    const N: usize = 10_000;
    let base = reference_server();
    let dir = std::env::temp_dir().join(format!("lrwatch-10k-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("list");
    let list: String = (0..N)
        .map(|i| format!("r{i}={base}/counter/many{i}\n"))
        .collect();
    std::fs::write(&file, list).unwrap();
    let mut run = lrwatch(&[
        "-q",
        "-n",
        "1",
        "--prefix",
        "--urls",
        file.to_str().unwrap(),
    ]);
    let line = run.line();
    let (name, value) = line.split_once('\t').unwrap_or_else(|| panic!("{line}"));
    let k: usize = name
        .strip_prefix('r')
        .and_then(|k| k.parse().ok())
        .unwrap_or(N);
    assert!(k < N && value == "0", "{line}");
    assert!(run.wait().success());
    let _ = std::fs::remove_dir_all(&dir);
}
