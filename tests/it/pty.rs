//! Terminal behaviour in a real pseudo-terminal (tmux): the status line, its replacement by
//! events, and server content escaped before it reaches the screen.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::harness::*;

struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        static N: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "lrwatch-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        // A new tmux server, and so the command in it, inherits this environment.
        let status = without_proxy(&mut Command::new("tmux"))
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "150",
                "-y",
                "30",
                command,
            ])
            .env_remove("NO_COLOR")
            .env("TERM", "xterm-256color")
            .status()
            .expect("tmux is installed by .ci/run");
        assert!(status.success());
        Tmux { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (bounded) until the screen satisfies `ok`, and returns it.
    fn until(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + BOUND;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "screen never showed {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn last_line(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

#[test]
fn status_line_waits_below_events_and_content_is_escaped() {
    if !have("tmux", "a real pseudo-terminal") {
        return;
    }
    let base = reference_server();
    let url = format!("{base}/plain/pty");
    put(&url, "text/plain", "first \x1b[2J\x1b]0;pwned\x07 value");
    let tmux = Tmux::start(&format!(
        "{} --interval 0.1 {url}",
        env!("CARGO_BIN_EXE_lrwatch")
    ));
    let screen = tmux.until("the value and the status line", |s| {
        s.contains("first") && last_line(s).starts_with("waiting for changes · poll · since ")
    });
    assert!(
        screen.contains(r"first \x1b[2J\x1b]0;pwned\x07 value"),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("{url} poll")),
        "the header line: {screen}"
    );

    put(&url, "text/plain", "second");
    let screen = tmux.until("the second value", |s| {
        s.contains("second") && last_line(s).starts_with("waiting")
    });
    assert_eq!(
        screen.matches("waiting for changes").count(),
        1,
        "the status line is replaced, not repeated:\n{screen}"
    );
    let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines[lines.len() - 2], "second", "{screen}");
}

#[test]
fn quiet_has_no_status_line() {
    if !have("tmux", "a real pseudo-terminal") {
        return;
    }
    let base = reference_server();
    let url = format!("{base}/counter/ptyq");
    let tmux = Tmux::start(&format!("{} -q {url}", env!("CARGO_BIN_EXE_lrwatch")));
    let screen = tmux.until("the value", |s| s.lines().any(|l| l == "0"));
    // Give a status line every chance to appear: the next change is printed after it would be.
    post(&url);
    let screen2 = tmux.until("the change", |s| s.lines().any(|l| l == "1"));
    assert!(
        !screen.contains("waiting") && !screen2.contains("waiting"),
        "{screen2}"
    );
}

#[test]
fn json_on_a_terminal_escapes_bidi_overrides() {
    if !have("tmux", "a real pseudo-terminal") {
        return;
    }
    let server = crate::live_server::http_server(|_, _, stream| {
        crate::live_server::head(&stream, 200, "text/event-stream");
        crate::live_server::send(
            &stream,
            "id: x\u{2067}y\ndata: \"ab\u{202e}cd\"\n\n".as_bytes(),
        );
        crate::live_server::hold(stream);
    });
    // The pane stays after lrwatch exits, to be read.
    let tmux = Tmux::start(&format!(
        "{} --json -n 1 {}/s; sleep 30",
        env!("CARGO_BIN_EXE_lrwatch"),
        server.base
    ));
    let screen = tmux.until("the envelope", |s| s.contains("\"body\""));
    // The line wraps at the pane's width.
    let screen = screen.replace('\n', "");
    assert!(screen.contains(r#""body":"ab\u202ecd""#), "{screen}");
    assert!(screen.contains(r#""id":"x\u2067y""#), "{screen}");
    assert!(
        !screen.contains('\u{202e}') && !screen.contains('\u{2067}'),
        "{screen}"
    );
}
