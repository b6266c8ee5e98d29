//! The test harness runs the binary in an environment of its own: a developer's proxy
//! settings cannot send the tests' loopback requests elsewhere.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::process::Command;

use crate::harness::*;

/// Every proxy variable ureq reads, set to a listener that would receive lrwatch's requests if
/// any were honoured (ureq does not bypass a proxy for 127.0.0.1, and takes the first variable
/// set whatever the request's scheme); the harness clears them all, so lrwatch reaches the
/// server directly and the listener never sees a connection.
#[test]
fn a_proxy_in_the_developers_environment_is_not_used() {
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let bogus = format!("http://{}", proxy.local_addr().unwrap());
    let base = reference_server();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lrwatch"));
    cmd.args(["-n", "1", "-q", &format!("{base}/counter/proxied")]);
    for var in PROXY_VARS {
        // NO_PROXY naming some other host leaves 127.0.0.1 to the proxy.
        let value = if var.eq_ignore_ascii_case("no_proxy") {
            "example.invalid"
        } else {
            bogus.as_str()
        };
        cmd.env(var, value);
    }
    let mut run = lrwatch_command(cmd, &[]);
    assert_eq!(run.line(), "0");
    assert!(run.wait().success());
    match proxy.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("lrwatch connected to the proxy: {other:?}"),
    }
}
