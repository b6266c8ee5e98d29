//! Changes mode: following a collection or change feed through its checkpoints. Each changes
//! response names the next checkpoint (`Link: <...>; rel="changes"`); items with ids become
//! `child-added` / `child-changed` / `child-removed` events against the set the initial
//! listing seeded, any other format a `changes` event, untouched. Gap markers (`prev-changes`
//! links, `Previous-Changes-Id`) and expired checkpoints (404) trigger a resync, so no change
//! is missed and none is reported twice.

use std::time::{Duration, SystemTime};

use serde_json::Value;
use url::Url;

use super::sse::{self, header, headers_and_content, Flow};
use super::{Ctx, Feed, Next, Push, RequestOutcome, REQUEST_TIMEOUT};
use crate::discovery::Capabilities;
use crate::event::{Body, Event, EventKind, Update};
use crate::http::{FetchError, Response};
use crate::link::parse_link_headers;
use crate::mechanism::Mechanism;
use crate::wire::sse::Event as SseEvent;

/// The gap markers and next checkpoint a changes response (or push) carries.
#[derive(Debug, Default)]
pub(super) struct Markers {
    next: Option<Url>,
    previous: Option<Url>,
    changes_id: Option<String>,
    previous_changes_id: Option<String>,
}

impl Markers {
    /// Reads `Link` (rel `changes`, `prev-changes`), `Changes-Id` and `Previous-Changes-Id`
    /// from headers given as name/value pairs; link targets resolve against `base`.
    pub(super) fn read<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        base: &Url,
    ) -> Markers {
        let mut links = Vec::new();
        let mut markers = Markers::default();
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("link") {
                links.push(value);
            } else if name.eq_ignore_ascii_case("changes-id") {
                markers.changes_id = Some(value.trim().to_string());
            } else if name.eq_ignore_ascii_case("previous-changes-id") {
                markers.previous_changes_id = Some(value.trim().to_string());
            }
        }
        let parsed = parse_link_headers(links, base);
        markers.next = parsed.find("changes").map(|l| l.target.clone());
        markers.previous = parsed.find("prev-changes").map(|l| l.target.clone());
        markers
    }

    fn of_response(response: &Response) -> Markers {
        let pairs: Vec<(&str, std::borrow::Cow<'_, str>)> = response
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), crate::http::header_text(v)))
            .collect();
        Markers::read(pairs.iter().map(|(k, v)| (*k, v.as_ref())), &response.url)
    }
}

/// The items of a body that is a JSON list of objects with ids (string or number).
fn items_of(value: &Value) -> Option<Vec<(String, &Value)>> {
    let Value::Array(list) = value else {
        return None;
    };
    list.iter()
        .map(|item| {
            let id = match item.get("id")? {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((id, item))
        })
        .collect()
}

fn is_deleted(item: &Value) -> bool {
    item.get("deleted")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Whether following this resource should read its changes: forced, asked for, or (unless
/// `--value`) a collection ([`crate::auto::collection`], judged with its value `body`).
pub(super) fn wanted(ctx: &Ctx, caps: &Capabilities, body: &[u8]) -> bool {
    // A forced transport decides only when it exists for one mode alone; the multiplexed
    // ones carry either.
    match ctx.options.transport {
        Some(
            Mechanism::Changes
            | Mechanism::ChangesWait
            | Mechanism::ChangesStream
            | Mechanism::ChangesCallback,
        ) => true,
        Some(
            Mechanism::ValueStream
            | Mechanism::ValueWait
            | Mechanism::HintStream
            | Mechanism::ValueCallback
            | Mechanism::Poll,
        ) => false,
        _ => {
            ctx.options.changes || (!ctx.options.value && crate::auto::collection(caps, Some(body)))
        }
    }
}

impl Feed {
    /// Seeds from the initial listing: its items, and the checkpoint it advertises.
    pub(super) fn seed(response: &Response, caps: &Capabilities) -> Feed {
        let listing = serde_json::from_slice::<Value>(&response.body).ok();
        let list = listing.as_ref().is_some_and(Value::is_array);
        let items = listing.and_then(|v| {
            items_of(&v).map(|items| {
                items
                    .into_iter()
                    .filter(|(_, item)| !is_deleted(item))
                    .map(|(id, item)| (id, item.clone()))
                    .collect()
            })
        });
        let checkpoint = [Mechanism::Changes, Mechanism::ChangesWait]
            .iter()
            .find_map(|m| caps.offer(*m))
            .map(|o| o.target.clone());
        Feed {
            checkpoint,
            // Forms B and C name the listing's checkpoint: the first push continues from it.
            changes_id: response
                .header("changes-id")
                .map(|id| id.trim().to_string()),
            items,
            list,
            stalled: None,
        }
    }
}

impl Ctx {
    fn feed(&mut self) -> &mut Feed {
        self.feed.get_or_insert_with(Feed::default)
    }

    fn emit_child(
        &self,
        kind: EventKind,
        id: Option<String>,
        body: Option<Body>,
        transport: Mechanism,
    ) -> bool {
        self.send(Update::Event(Event {
            kind,
            uri: self.uri.clone(),
            id,
            etag: None,
            transport,
            time: SystemTime::now(),
            body,
            initial: false,
            live: None,
        }))
    }

    /// Reports a changes body: child events for items with ids, else one `changes` event.
    fn report_changes(&mut self, bytes: &[u8], content_type: Option<String>, transport: Mechanism) {
        let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
        let items = parsed.as_ref().and_then(items_of);
        let known = self.feed.as_ref().is_some_and(|f| f.items.is_some());
        match items {
            Some(items) if known => {
                for (id, item) in items {
                    self.report_item(id, item, transport);
                }
            }
            _ => {
                let empty = bytes.iter().all(u8::is_ascii_whitespace)
                    || matches!(&parsed, Some(Value::Array(a)) if a.is_empty());
                if !empty {
                    let body = self.body(bytes.to_vec(), content_type);
                    self.emit_child(EventKind::Changes, None, Some(body), transport);
                }
            }
        }
    }

    fn report_item(&mut self, id: String, item: &Value, transport: Mechanism) {
        let Some(items) = self.feed().items.as_mut() else {
            return;
        };
        let body = || {
            Some(Body::new(
                item.to_string().into_bytes(),
                Some("application/json".into()),
            ))
        };
        if is_deleted(item) {
            if items.remove(&id).is_some() {
                self.emit_child(EventKind::ChildRemoved, Some(id), None, transport);
            }
            return;
        }
        match items.insert(id.clone(), item.clone()) {
            None => {
                self.emit_child(EventKind::ChildAdded, Some(id), body(), transport);
            }
            Some(old) if old != *item => {
                self.emit_child(EventKind::ChildChanged, Some(id), body(), transport);
            }
            Some(_) => {}
        }
    }

    /// Takes in changes that were pushed (stream, socket, webhook) with their markers. A push
    /// that does not continue from what is held means one was missed (or this one is stale):
    /// the held checkpoint is read again instead. Returns false to stop.
    pub(super) fn apply_changes_push(
        &mut self,
        markers: Markers,
        bytes: &[u8],
        content_type: Option<String>,
        transport: Mechanism,
    ) -> bool {
        let feed = self.feed();
        let gap = match (&markers.previous_changes_id, &feed.changes_id) {
            (Some(previous), Some(held)) => previous != held,
            _ => match (&markers.previous, &feed.checkpoint) {
                (Some(previous), Some(held)) => previous != held,
                _ => false,
            },
        };
        if gap {
            self.trace(
                "a changes notification was missed; reading the held checkpoint again".to_string(),
            );
            return self.resync(transport);
        }
        if self.stalled(&markers, bytes) {
            return true;
        }
        let feed = self.feed();
        if markers.next.is_some() {
            feed.checkpoint = markers.next;
        }
        if markers.changes_id.is_some() {
            feed.changes_id = markers.changes_id;
        }
        let one_item = feed.list
            && serde_json::from_slice::<Value>(bytes).is_ok_and(|v| !v.is_array() && !v.is_null());
        if one_item {
            let mut listed = Vec::with_capacity(bytes.len() + 2);
            listed.push(b'[');
            listed.extend_from_slice(bytes);
            listed.push(b']');
            self.report_changes(&listed, content_type, transport);
        } else {
            self.report_changes(bytes, content_type, transport);
        }
        true
    }

    /// Whether changes that name a next checkpoint equal to the one held (or, naming none, a
    /// `Changes-Id` equal to the one held) carry no change: the checkpoint did not advance. Servers answer
    /// so when nothing is new (the test server: `{"time:change":"+0"}`; also when a changes
    /// stream opens). A different payload at the same checkpoint than it gave before is still
    /// reported (a server whose checkpoints do not move); the first one is taken as its
    /// "nothing new".
    fn stalled(&mut self, markers: &Markers, payload: &[u8]) -> bool {
        let feed = self.feed();
        // The next checkpoint decides where there is one: a server may repeat the id of the
        // checkpoint asked on an answer that moves on (the test server's long-polls do).
        let same = match &markers.next {
            Some(next) => feed.checkpoint.as_ref() == Some(next),
            None => markers.changes_id.is_some() && markers.changes_id == feed.changes_id,
        };
        if !same {
            feed.stalled = None;
            return false;
        }
        match &feed.stalled {
            Some(before) if before.as_slice() != payload => {
                feed.stalled = Some(payload.to_vec());
                false
            }
            _ => {
                feed.stalled = Some(payload.to_vec());
                true
            }
        }
    }

    /// Reads the held checkpoint once (after a reconnect, a hint or a gap). Returns false to
    /// stop.
    pub(super) fn resync(&mut self, transport: Mechanism) -> bool {
        let Some(checkpoint) = self.feed().checkpoint.clone() else {
            return self.restart(transport);
        };
        self.trace(format!("GET {checkpoint} (reading changes)"));
        match self.http.get(&checkpoint, &self.url, &[], REQUEST_TIMEOUT) {
            Ok(response) => {
                self.trace(format!(
                    "{} with {} bytes of changes",
                    response.status,
                    response.body.len()
                ));
                self.take_changes(response, transport).unwrap_or(true)
            }
            Err(e @ (FetchError::TooLarge(_) | FetchError::HeadTooLarge(_))) => {
                self.fail(e.into_error(&checkpoint));
                false
            }
            Err(e) => {
                self.trace(format!("reading changes failed: {e}"));
                true
            }
        }
    }

    /// Takes in a response to a request for the held checkpoint: 2xx are changes (and the
    /// next checkpoint), 404/410 an expired checkpoint (start over). `None` for any other
    /// status; else false to stop.
    fn take_changes(&mut self, response: Response, transport: Mechanism) -> Option<bool> {
        match response.status {
            200..=299 => {
                let markers = Markers::of_response(&response);
                if self.stalled(&markers, &response.body) {
                    return Some(true);
                }
                let feed = self.feed();
                if markers.next.is_some() {
                    feed.checkpoint = markers.next;
                }
                if markers.changes_id.is_some() {
                    feed.changes_id = markers.changes_id;
                }
                let content_type = response.header("content-type").map(str::to_string);
                self.report_changes(&response.body, content_type, transport);
                Some(true)
            }
            404 | 410 => {
                self.trace("the checkpoint expired; reading the collection again".to_string());
                Some(self.restart(transport))
            }
            _ => None,
        }
    }

    /// Starts over from the resource: reads the listing and reports what differs from the
    /// items held (no duplicate adds), then continues from the checkpoint it advertises.
    pub(super) fn restart(&mut self, transport: Mechanism) -> bool {
        let url = self.resource_url();
        self.trace(format!("GET {url} (starting over)"));
        let resource = self.url.clone();
        let response = match self.http.get(&url, &resource, &[], REQUEST_TIMEOUT) {
            Ok(r) if (200..300).contains(&r.status) => {
                self.relocate(&r);
                r
            }
            Ok(r) => {
                self.trace(format!("HTTP {} reading the collection", r.status));
                return true;
            }
            Err(e @ (FetchError::TooLarge(_) | FetchError::HeadTooLarge(_))) => {
                self.fail(e.into_error(&url));
                return false;
            }
            Err(e) => {
                self.trace(format!("reading the collection failed: {e}"));
                return true;
            }
        };
        let caps = Capabilities::from_headers(&response.headers, &response.url);
        let fresh = Feed::seed(&response, &caps);
        let feed = self.feed();
        let old_items = feed.items.take();
        feed.checkpoint = fresh.checkpoint;
        feed.changes_id = None;
        match (old_items, fresh.items) {
            (Some(old), Some(new)) => {
                self.feed().items = Some(old.clone());
                for (id, item) in &new {
                    self.report_item(id.clone(), item, transport);
                }
                for id in old.keys().filter(|id| !new.contains_key(*id)) {
                    self.report_item(
                        id.clone(),
                        &serde_json::json!({"id": id, "deleted": true}),
                        transport,
                    );
                }
            }
            (_, items) => {
                self.feed().items = items;
                let content_type = response.header("content-type").map(str::to_string);
                self.emit_child(
                    EventKind::Changes,
                    None,
                    Some(Body::new(response.body.clone(), content_type)),
                    transport,
                );
            }
        }
        self.caps = Some(caps.without_links());
        true
    }
}

/// `changes` and `changes-wait`: read the held checkpoint over and over, long-polled when the
/// server says it can be (`changes-wait`, or `changes` with `wait-min`), else every polling
/// period.
pub(super) fn run_wait(ctx: &mut Ctx, mechanism: Mechanism) -> Next {
    let long = mechanism == Mechanism::ChangesWait
        || ctx
            .caps
            .as_ref()
            .and_then(|c| c.offer(Mechanism::Changes))
            .is_some_and(|o| o.wait_min.is_some());
    let wait = ctx.options.long_poll_wait();
    let requested = Duration::from_secs(wait);
    // The last long-poll was held for its whole wait and answered "no news".
    let mut held_out = false;
    // Long-polls in a row that got no answer at all (see `Ctx::long_poll`).
    let mut unanswered = 0;
    loop {
        if let Some(better) = ctx.better_than(mechanism) {
            return Next::Switch(better);
        }
        let Some(checkpoint) = ctx.feed().checkpoint.clone() else {
            if !ctx.restart(mechanism) {
                return Next::Stop;
            }
            if ctx.feed().checkpoint.is_none() {
                ctx.warn(
                    "the collection advertises no changes checkpoint; polling it instead"
                        .to_string(),
                );
                ctx.feed = None;
                return Next::Switch(Mechanism::Poll);
            }
            continue;
        };
        let headers = if long {
            vec![
                ("Wait", wait.to_string()),
                ("Prefer", format!("wait={wait}")),
            ]
        } else {
            Vec::new()
        };
        // A long-poll is held on this thread; a plain read runs on the request threads. A
        // changes-wait never answered counts toward a fall back (to the plain reads of
        // `changes`, which have nothing to fall back to).
        let timeout = long.then(|| requested + super::wait_slack(requested));
        let outcome = match timeout {
            Some(timeout) if mechanism == Mechanism::ChangesWait => {
                ctx.long_poll(mechanism, &checkpoint, &headers, timeout, &mut unanswered)
            }
            _ => Ok(ctx.fetch(&checkpoint, &headers, timeout)),
        };
        let (response, took) = match outcome {
            Err(next) => return next,
            Ok(RequestOutcome::Response(r, took)) => (r, took),
            Ok(RequestOutcome::Retry) => continue,
            Ok(RequestOutcome::Stop) => return Next::Stop,
        };
        if !super::understood(response.status) {
            if let RequestOutcome::Stop = ctx.retry_response(&response) {
                return Next::Stop;
            }
            continue;
        }
        let before = ctx.feed().checkpoint.clone();
        if ctx.take_changes(response, mechanism) == Some(false) {
            return Next::Stop;
        }
        ctx.succeeded();
        // No news (the checkpoint did not move) answered at once: do not spin.
        let news = ctx.feed().checkpoint != before;
        let early = !long || wait == 0 || took < requested / 2;
        // As for value-wait: news at once after a long-poll held out without any means the
        // server did not answer that one when the change came.
        if long && news && early && held_out {
            ctx.report_missed(
                mechanism,
                "the held long-poll ran out, the next one had the change at once",
            );
        }
        held_out = long && !news && !early;
        if early && !news && !ctx.sleep(ctx.poll_period()) {
            return Next::Stop;
        }
    }
}

/// `changes-stream`: Server-Sent Events of changes. Form A sends unnamed events whose data is
/// the changes; forms B/C `update` events whose first data line holds the markers.
pub(super) fn run_stream(ctx: &mut Ctx) -> Next {
    const SELF: Mechanism = Mechanism::ChangesStream;
    sse::run(ctx, SELF, |ctx, event: SseEvent| {
        let keep_going = match &*event.event {
            "message" => {
                event.data.is_empty()
                    || ctx.apply_changes_push(
                        Markers::default(),
                        event.text().as_bytes(),
                        None,
                        SELF,
                    )
            }
            "open" if event.data.is_empty() => true,
            "update" if event.data.is_empty() => ctx.resync(SELF),
            "open" | "update" => match headers_and_content(&event.text()) {
                Some((headers, content)) => {
                    let pairs: Vec<(&str, &str)> = headers
                        .iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
                        .collect();
                    let base = ctx.location.clone();
                    let mut markers = Markers::read(pairs, &base);
                    // A reliable stream's opening event names its checkpoint by its id.
                    if event.event == "open" && markers.changes_id.is_none() && !event.id.is_empty()
                    {
                        markers.changes_id = Some(event.id.clone());
                    }
                    let content_type = header(&headers, "Content-Type").map(str::to_string);
                    ctx.apply_changes_push(
                        markers,
                        content.unwrap_or("").as_bytes(),
                        content_type,
                        SELF,
                    )
                }
                None => ctx.resync(SELF),
            },
            _ => true,
        };
        if keep_going {
            Flow::Continue
        } else {
            Flow::Stop
        }
    })
}

/// Takes in a push from a multiplexed connection in changes mode.
pub(super) fn apply_hub_push(ctx: &mut Ctx, push: Push, transport: Mechanism) -> bool {
    let base = ctx.location.clone();
    let markers = Markers::read(
        push.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &base,
    );
    match push.body {
        Some((bytes, content_type)) => {
            ctx.apply_changes_push(markers, &bytes, content_type, transport)
        }
        // A changes subscription whose checkpoint expired.
        None => ctx.restart(transport),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_need_ids() {
        let v: Value = serde_json::from_str(r#"[{"id":"1"},{"id":2,"x":1}]"#).unwrap();
        let ids: Vec<String> = items_of(&v)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, ["1", "2"]);
        assert!(items_of(&serde_json::json!([{"x": 1}])).is_none());
        assert!(items_of(&serde_json::json!({"id": 1})).is_none());
        assert_eq!(items_of(&serde_json::json!([])).map(|v| v.len()), Some(0));
    }

    #[test]
    fn markers_read_links_and_ids() {
        let base = Url::parse("http://h/items/?since=1").unwrap();
        let m = Markers::read(
            [
                (
                    "Link",
                    "</items/?since=4>; rel=\"changes\", </items/?since=1>; rel=\"prev-changes\"",
                ),
                ("Changes-Id", "4"),
                ("previous-changes-id", "1"),
            ],
            &base,
        );
        assert_eq!(m.next.unwrap().as_str(), "http://h/items/?since=4");
        assert_eq!(m.previous.unwrap().as_str(), "http://h/items/?since=1");
        assert_eq!(
            (m.changes_id.as_deref(), m.previous_changes_id.as_deref()),
            (Some("4"), Some("1"))
        );
    }
}
