//! stderr: messages, and on a terminal a one-line status (transport, since when, reconnect
//! attempts) that stays at the bottom and is cleared before each event is printed.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crossterm::style::Stylize;
use lrwatch::Status;

use lrwatch::sanitize::for_terminal;

/// Erase the current line and return to its start.
const CLEAR: &str = "\r\x1b[2K";

/// All writing to stderr goes through here, so messages and the status line never collide.
pub struct Stderr {
    inner: Mutex<Inner>,
    /// `inner.enabled`, read without the lock: printing an event asks it every time, and
    /// without a status line (a pipe, `-q`) there is nothing else to do around it. While it
    /// is false no status line is shown (one is cleared before it turns false).
    line: AtomicBool,
}

struct Inner {
    /// Whether to draw a status line at all (stderr is a terminal, not `-q`).
    enabled: bool,
    color: bool,
    statuses: BTreeMap<std::sync::Arc<str>, Status>,
    shown: bool,
}

impl Stderr {
    pub fn new(status_line: bool, color: bool) -> Stderr {
        Stderr {
            line: AtomicBool::new(status_line),
            inner: Mutex::new(Inner {
                enabled: status_line,
                color,
                statuses: BTreeMap::new(),
                shown: false,
            }),
        }
    }

    /// Prints one message line, keeping the status line below it.
    pub fn message(&self, text: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = io::stderr().lock();
        inner.clear(&mut err);
        let _ = writeln!(err, "{text}");
        inner.draw(&mut err);
    }

    /// Records a follower's status and redraws.
    pub fn status(&self, status: Status) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.statuses.insert(status.uri.clone(), status);
        let mut err = io::stderr().lock();
        inner.draw(&mut err);
    }

    /// Whether a status line is drawn (stderr is a terminal and not `-q`).
    pub fn draws_status(&self) -> bool {
        self.line.load(Ordering::Relaxed)
    }

    /// Runs `print` (which writes an event to stdout) with the status line out of the way.
    pub fn around_event<T>(&self, print: impl FnOnce() -> T) -> T {
        if !self.draws_status() {
            return print();
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = io::stderr().lock();
        inner.clear(&mut err);
        let result = print();
        inner.draw(&mut err);
        result
    }

    /// Removes the status line for good (at exit).
    pub fn finish(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.clear(&mut io::stderr().lock());
        inner.enabled = false;
        self.line.store(false, Ordering::Relaxed);
    }
}

impl Inner {
    fn clear(&mut self, err: &mut impl Write) {
        if self.shown {
            let _ = write!(err, "{CLEAR}");
            let _ = err.flush();
            self.shown = false;
        }
    }

    fn draw(&mut self, err: &mut impl Write) {
        if !self.enabled {
            return;
        }
        let Some(text) = status_text(&self.statuses) else {
            return;
        };
        let width = crossterm::terminal::size().map_or(80, |(w, _)| usize::from(w.max(20)));
        let text: String = text.chars().take(width - 1).collect();
        let text = if self.color {
            text.dim().to_string()
        } else {
            text
        };
        let _ = write!(err, "{CLEAR}{text}");
        let _ = err.flush();
        self.shown = true;
    }
}

/// The status line's text: the resource in trouble if any, else the one followed the longest.
pub fn status_text(statuses: &BTreeMap<std::sync::Arc<str>, Status>) -> Option<String> {
    let worst = statuses
        .values()
        .max_by_key(|s| (s.retries, std::cmp::Reverse(s.since)))?;
    let since = humantime::format_rfc3339_seconds(worst.since).to_string();
    let since = since.get(11..19).unwrap_or(&since);
    let mut text = if worst.retries > 0 {
        format!(
            "reconnecting · {} · attempt {} · since {since}",
            worst.transport, worst.retries
        )
    } else {
        format!("waiting for changes · {} · since {since}", worst.transport)
    };
    if statuses.len() > 1 {
        text = format!("{} resources · {text}", statuses.len());
    } else {
        text = format!("{text} · {}", worst.uri);
    }
    Some(for_terminal(&text, false).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lrwatch::Mechanism;
    use std::time::{Duration, UNIX_EPOCH};

    fn status(uri: &str, retries: u32, secs: u64) -> Status {
        Status {
            uri: uri.into(),
            transport: Mechanism::ValueWait,
            since: UNIX_EPOCH + Duration::from_secs(secs),
            retries,
        }
    }

    #[test]
    fn text_names_transport_time_and_attempts() {
        let mut map = BTreeMap::new();
        assert_eq!(status_text(&map), None);
        map.insert("a".into(), status("http://h/a", 0, 3600));
        assert_eq!(
            status_text(&map).unwrap(),
            "waiting for changes · value-wait · since 01:00:00 · http://h/a"
        );
        map.insert("b".into(), status("http://h/b", 3, 7200));
        assert_eq!(
            status_text(&map).unwrap(),
            "2 resources · reconnecting · value-wait · attempt 3 · since 02:00:00"
        );
    }

    #[test]
    fn text_escapes_what_the_server_chose() {
        // A resource URI from a server (a changes feed, a multiplex member) with a zero-width
        // space and a right-to-left override would read as another URI.
        let mut map = BTreeMap::new();
        map.insert("a".into(), status("http://h/a\u{200b}\u{202e}b", 0, 0));
        assert_eq!(
            status_text(&map).unwrap(),
            "waiting for changes · value-wait · since 00:00:00 · http://h/a\\u{200b}\\u{202e}b"
        );
    }
}
