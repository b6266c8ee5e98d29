//! `--select POINTER`: follow only one part of a JSON value (RFC 6901), and report an event
//! only when that part changes.

use std::collections::HashMap;

use anyhow::{bail, Result};
use lrwatch::{Body, Event, EventKind};
use serde_json::Value;

use crate::exit::UsageError;

/// Checks a JSON Pointer's syntax: empty (the whole value), or `/`-separated reference tokens
/// in which `~` is only followed by `0` or `1`.
pub fn check_pointer(pointer: &str) -> Result<(), UsageError> {
    let bad = |why: &str| UsageError(format!("--select '{pointer}' is not a JSON Pointer: {why}"));
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(bad("it must be empty or start with '/'"));
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(bad("'~' must be followed by 0 or 1"));
        }
    }
    Ok(())
}

/// Narrows events to the selected part, remembering the last part seen per resource.
pub struct Selector {
    pointer: String,
    last: HashMap<std::sync::Arc<str>, Option<Value>>,
}

impl Selector {
    pub fn new(pointer: String) -> Selector {
        Selector {
            pointer,
            last: HashMap::new(),
        }
    }

    /// The event narrowed to the selected part, or `None` when that part did not change. A
    /// value that is not JSON, or has nothing at the pointer, is an error naming which.
    pub fn apply(&mut self, mut event: Event) -> Result<Option<Event>> {
        // Items of a collection are not the followed value: they pass as they are.
        if event.kind.is_collection() {
            return Ok(Some(event));
        }
        let part = match (&event.kind, &event.body) {
            (EventKind::Value, Some(body)) => {
                let Some(json) = body.json() else {
                    bail!(
                        "the value of {} is not JSON, so --select '{}' cannot apply to it",
                        event.uri,
                        self.pointer
                    );
                };
                let Some(part) = json.pointer(&self.pointer) else {
                    bail!(
                        "the value of {} has nothing at --select '{}'",
                        event.uri,
                        self.pointer
                    );
                };
                Some(part.clone())
            }
            _ => None,
        };
        if self.last.get(&event.uri) == Some(&part) {
            return Ok(None);
        }
        self.last.insert(event.uri.clone(), part.clone());
        if let Some(part) = part {
            event.body = Some(Body::from_json(part));
        }
        Ok(Some(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lrwatch::Mechanism;
    use std::time::SystemTime;

    fn value(json: &str) -> Event {
        Event {
            kind: EventKind::Value,
            uri: "http://h/r".into(),
            id: None,
            etag: None,
            transport: Mechanism::Poll,
            time: SystemTime::now(),
            body: Some(Body::new(
                json.as_bytes().to_vec(),
                Some("application/json".into()),
            )),
            initial: false,
            live: None,
        }
    }

    #[test]
    fn pointers_are_checked() {
        for ok in ["", "/", "/a", "/a/0", "/a~1b", "/~0"] {
            assert!(check_pointer(ok).is_ok(), "{ok}");
        }
        for bad in ["a", "/a~", "/a~2"] {
            assert!(check_pointer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_changes_of_the_part_are_events() {
        let mut s = Selector::new("/count".into());
        let first = s.apply(value(r#"{"count":1,"other":1}"#)).unwrap().unwrap();
        assert_eq!(first.body.unwrap().bytes, &b"1"[..]);
        assert!(s
            .apply(value(r#"{"count":1,"other":2}"#))
            .unwrap()
            .is_none());
        let next = s
            .apply(value(r#"{"count":{"x":[2]},"other":2}"#))
            .unwrap()
            .unwrap();
        assert_eq!(next.body.unwrap().bytes, &br#"{"x":[2]}"#[..]);
    }

    #[test]
    fn errors_say_which() {
        let mut s = Selector::new("/missing".into());
        let e = s.apply(value(r#"{"count":1}"#)).unwrap_err().to_string();
        assert_eq!(
            e,
            "the value of http://h/r has nothing at --select '/missing'"
        );
        let mut text = value("x");
        text.body = Some(Body::new(b"x".to_vec(), Some("text/plain".into())));
        let e = s.apply(text).unwrap_err().to_string();
        assert!(e.contains("is not JSON"), "{e}");
    }
}
