//! Multiplexing: `multiplex-wait` (one long-poll for many resources, query form A or `Uri`
//! header form B/C), `multiplex-stream` (form A), and the follow-set logic the WebSocket
//! endpoints share with them.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::checks::{allowed, JSON};
use super::conditional::held_wait;
use super::dialect::{Form, RequestView, ServerConfig, Shape};
use super::race_hook::{self, Point};
use super::store::{Snapshot, Store, ITEMS};
use super::streams::{self, Lossy, SseOut};
use crate::http1::{Reply, Request, Response};
use crate::wire::multiplex::{encode_answer, parse_query, parse_uri_headers, Member, Target};
use crate::wire::sse::encode_event;

/// What a URI in a multiplexed request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// An object, by key.
    Value(String),
    /// The collection's changes, from a checkpoint (the current one when none is given).
    Changes(Option<u64>),
}

/// Resolves a URI (absolute, or relative to the server; `ws` and `http` alike) to what it
/// names here. `Err` carries the status and reason for an error reply.
pub(crate) fn resolve(store: &Store, uri: &str) -> Result<Resolved, (u16, String)> {
    let base = url::Url::parse("http://localhost/").expect("a valid base");
    let url = base
        .join(uri)
        .map_err(|e| (400, format!("{uri:?} is not a URI: {e}")))?;
    if !matches!(url.scheme(), "http" | "https" | "ws" | "wss") {
        return Err((400, format!("{uri:?} is not an http or ws URI")));
    }
    let path = url.path();
    if path == ITEMS {
        let since = url
            .query_pairs()
            .find(|(n, _)| n == "since")
            .map(|(_, v)| streams::parse_checkpoint(&v))
            .transpose()
            .map_err(|_| (400, format!("{uri:?} has a malformed checkpoint")))?;
        return Ok(Resolved::Changes(since));
    }
    match store.snapshot(path) {
        Some(_) => Ok(Resolved::Value(path.to_owned())),
        None => Err((
            404,
            format!("{path} is not a resource that can be followed here"),
        )),
    }
}

/// One resource followed on a multiplexed connection, and what its follower last saw.
#[derive(Debug, Clone)]
pub(crate) struct MuxFollow {
    /// The URI as the client wrote it: answers are keyed by it.
    pub(crate) uri: String,
    state: FollowState,
}

#[derive(Debug, Clone)]
enum FollowState {
    Value { key: String, last: Option<String> },
    Changes { held: u64 },
}

/// A change to tell a client about.
#[derive(Debug, Clone)]
pub(crate) enum MuxUpdate {
    /// A new value (or a deletion, `value` `None`).
    Value {
        /// The URI as the client wrote it.
        uri: String,
        /// The new state.
        snap: Snapshot,
        /// The ETag before (what the client should hold), for gap detection.
        previous: String,
    },
    /// Changes of the collection.
    Changes {
        /// The URI as the client wrote it.
        uri: String,
        /// The changed items.
        items: Vec<Value>,
        /// The checkpoint after them.
        next: u64,
        /// The checkpoint before them.
        previous: u64,
    },
    /// A checkpoint that expired or was never handed out.
    Expired {
        /// The URI as the client wrote it.
        uri: String,
    },
}

impl MuxUpdate {
    /// The URI as the client wrote it.
    pub(crate) fn uri(&self) -> &str {
        match self {
            MuxUpdate::Value { uri, .. }
            | MuxUpdate::Changes { uri, .. }
            | MuxUpdate::Expired { uri } => uri,
        }
    }
}

impl MuxFollow {
    /// Starts following `uri`, which the client holds at `etag` (value) or which names its own
    /// checkpoint (changes). A changes URI without a checkpoint starts from now.
    pub(crate) fn new(
        store: &Store,
        uri: &str,
        etag: Option<String>,
    ) -> Result<MuxFollow, (u16, String)> {
        let state = match resolve(store, uri)? {
            Resolved::Value(key) => FollowState::Value { key, last: etag },
            Resolved::Changes(since) => FollowState::Changes {
                held: since.unwrap_or_else(|| store.checkpoint()),
            },
        };
        Ok(MuxFollow {
            uri: uri.to_owned(),
            state,
        })
    }

    /// Whether this follows a value (not the collection's changes).
    pub(crate) fn is_value(&self) -> bool {
        matches!(self.state, FollowState::Value { .. })
    }

    /// The store key whose changes concern this follow.
    pub(crate) fn key(&self) -> &str {
        match &self.state {
            FollowState::Value { key, .. } => key,
            FollowState::Changes { .. } => ITEMS,
        }
    }

    /// What changed since the follower last looked, if anything; advances what it holds.
    pub(crate) fn poll(&mut self, store: &Store) -> Option<MuxUpdate> {
        match &mut self.state {
            FollowState::Value { key, last } => {
                let snap = store.snapshot(key)?;
                if last.as_deref() == Some(snap.etag.as_str()) {
                    return None;
                }
                let previous = last.replace(snap.etag.clone()).unwrap_or_default();
                Some(MuxUpdate::Value {
                    uri: self.uri.clone(),
                    snap,
                    previous,
                })
            }
            FollowState::Changes { held } => match store.changes_since(*held) {
                Ok(c) if c.next == *held => None,
                Ok(c) => {
                    let previous = std::mem::replace(held, c.next);
                    Some(MuxUpdate::Changes {
                        uri: self.uri.clone(),
                        items: c.items,
                        next: c.next,
                        previous,
                    })
                }
                Err(_) => {
                    // Report once, then follow from now.
                    *held = store.checkpoint();
                    Some(MuxUpdate::Expired {
                        uri: self.uri.clone(),
                    })
                }
            },
        }
    }
}

/// An update as a multiplex member: headers and the body in the form's style.
pub(crate) fn member(ctx: &RequestView, form: Form, update: &MuxUpdate) -> Member {
    match update {
        MuxUpdate::Value { snap, .. } => match &snap.value {
            Some(value) => Member {
                code: 200,
                headers: vec![
                    ("ETag".into(), snap.etag.clone()),
                    ("Content-Type".into(), JSON.into()),
                ],
                body: body_in(form, value),
            },
            None => Member {
                code: 404,
                headers: vec![],
                body: Value::Null,
            },
        },
        MuxUpdate::Changes {
            items,
            next,
            previous,
            ..
        } => Member {
            code: 200,
            headers: streams::changes_headers(ctx, *next, *previous),
            body: body_in(form, &Value::Array(items.clone()).to_string()),
        },
        MuxUpdate::Expired { .. } => Member {
            code: 404,
            headers: vec![],
            body: Value::Null,
        },
    }
}

/// The JSON value itself (form A) or the content as a string (B, C).
fn body_in(form: Form, text: &str) -> Value {
    match form {
        Form::A => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())),
        _ => Value::String(text.to_owned()),
    }
}

/// The targets of a multiplexed request (the query form wins when both are sent, as clients of
/// `multiplex-wait` do), and the form its own shape speaks.
fn targets(request: &Request) -> Result<(Vec<Target>, Shape), Response> {
    let bad = |e: crate::wire::multiplex::MultiplexError| {
        Response::error(400, &format!("malformed multiplex request: {e}"))
    };
    let query = parse_query(request.query.as_deref().unwrap_or("")).map_err(bad)?;
    if !query.is_empty() {
        return Ok((query, Shape::A));
    }
    // Field by field, to see B's comma-joined list apart from C's field per resource.
    let mut targets = Vec::new();
    let mut fields = 0;
    let mut joined = false;
    for value in request.header_values("uri") {
        let named = parse_uri_headers(std::iter::once(value)).map_err(bad)?;
        fields += 1;
        joined |= named.len() > 1;
        targets.extend(named);
    }
    if targets.is_empty() {
        return Err(Response::error(
            400,
            "name the resources: ?u=<uri>&inm=<etag> (form A) or Uri: <uri>; If-None-Match=\"etag\" headers (forms B, C)",
        ));
    }
    let shape = match (joined, fields) {
        (true, _) => Shape::B,
        (false, 1) => Shape::BOrC,
        (false, _) => Shape::C,
    };
    Ok((targets, shape))
}

/// `GET /multiplex/wait`.
pub(crate) fn wait(
    store: &Store,
    cfg: &ServerConfig,
    ctx: &RequestView,
    request: &Request,
) -> Reply {
    if let Some(r) = allowed(request, "GET, OPTIONS") {
        return r.into();
    }
    let (targets, shape) = match targets(request) {
        Ok(t) => t,
        Err(r) => return r.into(),
    };
    let wait = match held_wait(cfg, request) {
        Ok(w) => w,
        Err(r) => return r.into(),
    };
    let form = ctx.answer_form(shape);
    let ctx = &ctx.answering(form);
    let mut members: Vec<(String, Member)> = Vec::new();
    let mut follows = Vec::new();
    for target in &targets {
        match MuxFollow::new(store, &target.uri, target.if_none_match.clone()) {
            Ok(f) => follows.push(f),
            Err((code, reason)) => members.push((
                target.uri.clone(),
                Member {
                    code,
                    headers: vec![],
                    body: json!({ "error": reason }),
                },
            )),
        }
    }
    // Subscribed before the first look, so a change in between wakes the hold.
    let sub = store.hub().subscribe();
    for f in &follows {
        sub.add(f.key());
    }
    let deadline = wait.map(|w| Instant::now() + w);
    loop {
        for f in &mut follows {
            if let Some(update) = f.poll(store) {
                members.push((update.uri().to_owned(), member(ctx, form, &update)));
            }
        }
        if !members.is_empty() {
            break;
        }
        match deadline {
            Some(d) if Instant::now() < d => {
                if sub.wait(d).cut {
                    break;
                }
            }
            _ => break,
        }
    }
    Response::new(200)
        .body(JSON, encode_answer(&members))
        .into()
}

/// `GET /multiplex/stream?u=...` (form A): one event stream for many resources; each event's
/// data is `{"uri":..,"body":..}`, `body` null when the resource was deleted.
pub(crate) fn stream(
    store: &Arc<Store>,
    cfg: &ServerConfig,
    _ctx: &RequestView,
    request: &Request,
) -> Reply {
    if let Some(r) = allowed(request, "GET, OPTIONS") {
        return r.into();
    }
    let (targets, _) = match targets(request) {
        Ok(t) => t,
        Err(r) => return r.into(),
    };
    let mut follows = Vec::new();
    for target in &targets {
        match MuxFollow::new(store, &target.uri, None) {
            Ok(mut f) => {
                // A value's client holds what there is now: only changes are pushed. A changes
                // URI names its own checkpoint: what came after it is pushed first.
                if f.is_value() {
                    let _ = f.poll(store);
                }
                follows.push(f);
            }
            Err((code, reason)) => return Response::error(code, &reason).into(),
        }
    }
    let store = Arc::clone(store);
    let cfg = cfg.clone();
    Reply::Takeover(Box::new(move |stream, _| {
        for f in &follows {
            race_hook::reached(Point::Takeover, f.key());
        }
        let sub = store.hub().subscribe();
        for f in &follows {
            sub.add(f.key());
        }
        let Ok(mut out) = SseOut::open(stream, &cfg) else {
            return;
        };
        if out
            .send(&crate::wire::sse::encode_comment(" open"))
            .is_err()
        {
            return;
        }
        let mut lossy = Lossy::new(&cfg, false);
        // Values were read when the request came, before this subscription: look at every
        // follow once more, so a change in between is pushed rather than lost; a changes URI's
        // catch-up is the same look.
        let catch_up: Vec<String> = follows.iter().map(|f| f.key().to_owned()).collect();
        let mut push = |out: &mut SseOut, changed: &[String]| -> std::io::Result<()> {
            for f in &mut follows {
                if !changed.iter().any(|k| k == f.key()) {
                    continue;
                }
                let Some(update) = f.poll(&store) else {
                    continue;
                };
                if lossy.skip() {
                    continue;
                }
                let body = match &update {
                    MuxUpdate::Value { snap, .. } => snap
                        .value
                        .as_deref()
                        .and_then(|v| serde_json::from_str(v).ok())
                        .unwrap_or(Value::Null),
                    MuxUpdate::Changes { items, .. } => Value::Array(items.clone()),
                    MuxUpdate::Expired { .. } => Value::Null,
                };
                let data = json!({ "uri": update.uri(), "body": body }).to_string();
                out.send(&encode_event(None, None, &data))?;
            }
            Ok(())
        };
        if push(&mut out, &catch_up).is_err() {
            return;
        }
        streams::pump(&cfg, &sub, &mut out, push);
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_resolve_relative_absolute_and_ws_alike() {
        let store = Store::default();
        let value = |k: &str| Ok(Resolved::Value(k.to_owned()));
        assert_eq!(resolve(&store, "/counter/a"), value("/counter/a"));
        assert_eq!(resolve(&store, "counter/a"), value("/counter/a"));
        assert_eq!(
            resolve(&store, "http://h:1/counter/a?form=b"),
            value("/counter/a")
        );
        assert_eq!(resolve(&store, "ws://h/objects/x"), value("/objects/x"));
        assert_eq!(resolve(&store, "/time"), value("/time"));
        assert_eq!(resolve(&store, "/items/"), Ok(Resolved::Changes(None)));
        assert_eq!(
            resolve(&store, "/items/?since=3"),
            Ok(Resolved::Changes(Some(3)))
        );
        assert_eq!(resolve(&store, "/items/?since=x").unwrap_err().0, 400);
        assert_eq!(resolve(&store, "ftp://h/counter/a").unwrap_err().0, 400);
        assert_eq!(resolve(&store, "/plain/a").unwrap_err().0, 404);
        assert_eq!(resolve(&store, "/nowhere").unwrap_err().0, 404);
    }

    #[test]
    fn a_follow_reports_each_change_once_with_the_previous_etag() {
        let store = Store::default();
        let mut f = MuxFollow::new(&store, "/counter/a", Some("\"0\"".into())).unwrap();
        assert!(f.poll(&store).is_none());
        store.increment("a").unwrap();
        store.increment("a").unwrap();
        match f.poll(&store) {
            Some(MuxUpdate::Value { snap, previous, .. }) => {
                assert_eq!(snap.value.as_deref(), Some("2"));
                assert_eq!(previous, "\"0\"");
            }
            other => panic!("{other:?}"),
        }
        assert!(f.poll(&store).is_none());
        let mut c = MuxFollow::new(&store, "/items/?since=0", None).unwrap();
        assert!(c.poll(&store).is_none());
        store.add_item(serde_json::Map::new()).unwrap();
        assert!(matches!(
            c.poll(&store),
            Some(MuxUpdate::Changes {
                next: 1,
                previous: 0,
                ..
            })
        ));
    }

    #[test]
    fn members_have_json_bodies_in_a_and_strings_otherwise() {
        let ctx = RequestView::plain(None);
        let update = MuxUpdate::Value {
            uri: "/a".into(),
            snap: Snapshot {
                etag: "\"1\"".into(),
                value: Some("{\"x\":1}".into()),
            },
            previous: String::new(),
        };
        assert_eq!(member(&ctx, Form::A, &update).body, json!({"x": 1}));
        assert_eq!(member(&ctx, Form::B, &update).body, json!("{\"x\":1}"));
        let gone = MuxUpdate::Value {
            uri: "/a".into(),
            snap: Snapshot {
                etag: "\"2\"".into(),
                value: None,
            },
            previous: "\"1\"".into(),
        };
        assert_eq!(member(&ctx, Form::A, &gone).code, 404);
    }
}
