//! The command line itself: usage errors, Ctrl-C, `serve` and `demo`.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use crate::harness::*;

#[test]
fn bad_urls_and_options_are_usage_errors() {
    for args in [
        vec!["ftp://x/y"],
        vec!["not a url"],
        vec![],
        vec!["--count", "0", "http://h/"],
        vec!["-H", "nocolon", "http://h/"],
        vec!["--transport", "carrier-pigeon", "http://h/"],
    ] {
        let mut run = lrwatch(&args);
        assert_eq!(run.wait().code(), Some(2), "{args:?}");
        assert!(!run.stderr_text().is_empty());
    }
    let mut run = lrwatch(&["ftp://x/y"]);
    run.wait();
    assert_eq!(
        run.stderr_text(),
        "lrwatch: invalid URL 'ftp://x/y': the scheme 'ftp' is not http or https. Give an absolute http:// or https:// URL."
    );
}

#[test]
fn ctrl_c_ends_by_sigint_after_flushing() {
    let base = reference_server();
    let url = format!("{base}/counter/int");
    let mut run = lrwatch(&["--json", &url]);
    assert_eq!(run.json()["body"], 0);
    let status = Command::new("kill")
        .args(["-INT", &run.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = run.wait();
    assert_eq!(status.signal(), Some(2), "{status:?}");
}

#[test]
fn serve_prints_its_address_and_serves() {
    let (served, base) = served("127.0.0.1:0");
    let response = agent().get(&format!("{base}/counter/z")).call().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.into_body().read_to_string().unwrap(), "0");
    served.stop();
}

#[test]
fn demo_shows_the_time_ticking() {
    let mut run = lrwatch(&["demo", "--json", "-n", "2"]);
    let first = run.json();
    let second = run.json();
    assert!(run.wait().success());
    for event in [&first, &second] {
        assert_eq!(event["event"], "value");
        assert_eq!(event["transport"], "value-stream");
        assert!(event["uri"].as_str().unwrap().ends_with("/time"));
    }
    let t1 = first["body"]["time"].as_str().unwrap();
    let t2 = second["body"]["time"].as_str().unwrap();
    assert!(t1 < t2, "{t1} then {t2}");
}
