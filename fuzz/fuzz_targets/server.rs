//! The reference server's request handling: arbitrary bytes sent on one connection to a fresh
//! server (`lrwatch::server::fuzz_request_with`), through the HTTP/1.1 reader and the router to
//! every resource and mechanism (held long-polls, streams and sockets are cut when the
//! connection goes quiet).
//!
//! Byte 0 chooses the server's switches: bits 0-1 the dialect (mixed, a, b, c), bit 2 `--lossy
//! 2`, bits 3-7 the faults wait-now, unstable-etag, no-304, accept-bad-wait, stale-changes.
//! Checked: no panic, no hang (10 s per input), and the answer, if any, starts with a
//! well-formed response head whose status is not 500.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lrwatch::server::{fuzz_request_with, Dialect, Fault, ServerConfig};

fuzz_target!(|data: &[u8]| {
    let [switches, request @ ..] = data else {
        return;
    };
    let mut config = ServerConfig {
        dialect: [Dialect::Mixed, Dialect::A, Dialect::B, Dialect::C][usize::from(switches & 3)],
        lossy: (switches & 4 != 0).then_some(2),
        ..ServerConfig::default()
    };
    let faults = [
        Fault::WaitNow,
        Fault::UnstableEtag,
        Fault::No304,
        Fault::AcceptBadWait,
        Fault::StaleChanges,
    ];
    for (bit, fault) in faults.into_iter().enumerate() {
        if switches & (8 << bit) != 0 {
            config.faults.push(fault);
        }
    }
    let answer = fuzz_request_with(config, request);
    if answer.is_empty() {
        return;
    }
    let mut headers = [httparse::EMPTY_HEADER; 256];
    let mut head = httparse::Response::new(&mut headers);
    match head.parse(&answer) {
        Ok(httparse::Status::Complete(_)) => {}
        other => panic!(
            "not a response head ({other:?}): {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(500)])
        ),
    }
    assert_eq!(head.version, Some(1));
    let code = head.code.unwrap();
    assert!((100..600).contains(&code) && code != 500, "status {code}");
});
