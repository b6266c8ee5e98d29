//! Routing: which resource a request names, what each method does, the headers that advertise
//! the mechanisms, and value-wait long-polls. Streams, the collection, multiplexing, sockets and
//! callbacks have their own modules; this one dispatches to them.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::dialect::{Fault, Form, RequestView, ServerConfig};
use super::http::{Reply, Request, Response};
use super::store::{self, counter_key, object_key, Counter, Plain, Snapshot, Store, StoreError};
use super::{callbacks, collection, multiplex, streams, ws};

/// The longest a request is held, whatever it asks for: below common proxy timeouts.
pub(crate) const MAX_WAIT: u64 = 300;
/// What `/plain/{id}` is served as when it was stored without a `Content-Type`.
const PLAIN_DEFAULT_TYPE: &str = "text/plain; charset=utf-8";
/// Form C's way of saying that the resource URI itself can be long-polled.
pub(crate) const WAIT_PROPERTY: &str = "wait; min=1";
pub(crate) const JSON: &str = "application/json";

const TIME_METHODS: &str = "GET, HEAD, OPTIONS";
const COUNTER_METHODS: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS";
const OBJECT_METHODS: &str = "GET, HEAD, PUT, DELETE, OPTIONS";
const PLAIN_METHODS: &str = "GET, HEAD, PUT, DELETE, OPTIONS";

/// Everything a request may need: the store, the switches, the webhook registry.
pub(crate) struct App {
    /// The resources.
    pub(crate) store: Arc<Store>,
    /// The switches.
    pub(crate) cfg: ServerConfig,
    /// Webhook subscriptions and their delivery worker.
    pub(crate) callbacks: callbacks::Registry,
    /// Responses served so far under the `unstable-etag` fault: each gets its own ETag text.
    unstable: std::sync::atomic::AtomicU64,
}

impl App {
    /// The state of one server.
    pub(crate) fn new(cfg: ServerConfig) -> Arc<App> {
        let store = Arc::new(Store::new(cfg.history));
        let callbacks = callbacks::Registry::new(&cfg);
        Arc::new(App {
            store,
            cfg,
            callbacks,
            unstable: std::sync::atomic::AtomicU64::new(0),
        })
    }
}

/// Answers one request.
pub(crate) fn handle(app: &Arc<App>, request: &Request) -> Reply {
    let path = request.path.as_str();
    let ctx = match RequestView::new(app.cfg.dialect, request) {
        Ok(ctx) => ctx,
        Err(response) => return response.into(),
    };
    let store = &app.store;
    if path == "/time" {
        if let Some(r) = allowed(request, TIME_METHODS) {
            return r.into();
        }
        return object_get(app, &ctx, request, store::TIME);
    }
    if let Some(id) = path.strip_prefix("/counter/").filter(|id| valid_id(id)) {
        if let Some(r) = allowed(request, COUNTER_METHODS) {
            return r.into();
        }
        return counter(app, &ctx, request, id);
    }
    if let Some(name) = path.strip_prefix("/objects/").filter(|id| valid_id(id)) {
        if let Some(r) = allowed(request, OBJECT_METHODS) {
            return r.into();
        }
        return object(app, &ctx, request, name);
    }
    if let Some(id) = path.strip_prefix("/plain/").filter(|id| valid_id(id)) {
        return allowed(request, PLAIN_METHODS)
            .unwrap_or_else(|| plain(store, request, id))
            .into();
    }
    if path == "/items/" || path.starts_with("/items/") {
        return collection::handle(app, &ctx, request);
    }
    if let Some(which) = path.strip_prefix("/multiplex/") {
        return match which {
            "wait" => multiplex::wait(app, &ctx, request),
            "stream" => multiplex::stream(app, &ctx, request),
            "ws" => ws::multiplex_ws(app, &ctx, request),
            "socket" => ws::multiplex_socket(app, &ctx, request),
            _ => not_found(path),
        };
    }
    if path == "/subscriptions/" || path.starts_with("/subscriptions/") {
        return callbacks::handle(app, &ctx, request).into();
    }
    if path == "/_control/cut" {
        if let Some(r) = allowed(request, "POST, OPTIONS") {
            return r.into();
        }
        let cut = store.hub().cut_all();
        return Response::new(200)
            .body(JSON, serde_json::json!({ "cut": cut }).to_string())
            .into();
    }
    not_found(path)
}

fn not_found(path: &str) -> Reply {
    Response::error(
        404,
        &format!(
            "no resource at {path}: this server has /time, /counter/{{id}}, /objects/{{name}}, \
             /items/, /plain/{{id}}, /multiplex/{{wait,stream,ws,socket}} and /subscriptions/"
        ),
    )
    .into()
}

/// The headers that advertise what an object resource offers, in this request's form.
pub(crate) fn object_headers(ctx: &RequestView, key: &str) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = Vec::new();
    let mut link = |value: String| h.push(("Link".to_owned(), value));
    let form = ctx.form;
    let not_c = form != Some(Form::C);
    if ctx.offers("value-wait") && not_c {
        link(ctx.link(key, &[], "value-wait", &[]));
    }
    if ctx.offers("value-stream") {
        match form {
            Some(Form::B) => {
                link(ctx.link(key, &[], "value-stream", &[]));
                link(ctx.link(
                    key,
                    &[("mode", "reliable")],
                    "value-stream",
                    &[("mode", "reliable")],
                ));
            }
            Some(Form::C) => {}
            _ => {
                link(ctx.link(key, &[("stream", "value")], "value-stream", &[]));
                link(ctx.link(
                    key,
                    &[("stream", "value"), ("mode", "reliable")],
                    "value-stream",
                    &[("mode", "reliable")],
                ));
            }
        }
        if form.is_none() || form == Some(Form::C) {
            let mut params = vec![("stream", "value")];
            params.extend(ctx.pin(Form::C));
            link(ctx.link(key, &params, "alternate", &[("type", "text/event-stream")]));
        }
    }
    if ctx.offers("hint-stream") {
        link(ctx.link(key, &[("stream", "hint")], "hint-stream", &[]));
    }
    if ctx.offers("value-callback") {
        if form != Some(Form::C) {
            link(ctx.link("/subscriptions/", &[("uri", key)], "value-callback", &[]));
        }
        if form.is_none() || form == Some(Form::C) {
            link(ctx.link("/subscriptions/", &[("uri", key)], "callbacks", &[]));
        }
    }
    multiplex_links(ctx, &mut link);
    if ctx.offers("value-wait") && (form.is_none() || form == Some(Form::C)) {
        h.push(("LiveResource-Property".to_owned(), WAIT_PROPERTY.to_owned()));
    }
    poll_interval(ctx, &mut h);
    h
}

/// `X-Poll-Interval` (forms B, C).
pub(crate) fn poll_interval(ctx: &RequestView, h: &mut Vec<(String, String)>) {
    if ctx.form != Some(Form::A) {
        h.push((
            "X-Poll-Interval".to_owned(),
            super::POLL_INTERVAL.to_string(),
        ));
    }
}

/// The multiplex endpoints, shared by objects and the collection.
pub(crate) fn multiplex_links(ctx: &RequestView, link: &mut dyn FnMut(String)) {
    let form = ctx.form;
    if ctx.offers("multiplex-wait") {
        if form != Some(Form::C) {
            link(ctx.link("/multiplex/wait", &[], "multiplex-wait", &[]));
        }
        if form.is_none() || form == Some(Form::C) {
            link(ctx.link("/multiplex/wait", &[], "multiplex-request", &[]));
        }
    }
    if ctx.offers("multiplex-stream") {
        link(ctx.link("/multiplex/stream", &[], "multiplex-stream", &[]));
    }
    if ctx.offers("multiplex-ws") {
        link(ctx.link("/multiplex/ws", &[], "multiplex-ws", &[]));
    }
    if ctx.offers("multiplex-socket") {
        link(ctx.link("/multiplex/socket", &[], "multiplex-socket", &[]));
    }
    if ctx.offers("multiplex-callbacks") {
        link(ctx.link("/subscriptions/", &[], "multiplex-callbacks", &[]));
    }
}

/// An object's representation with the headers that advertise its mechanisms; 404 when it
/// does not exist.
pub(crate) fn object_response(
    ctx: &RequestView,
    status: u16,
    key: &str,
    snap: &Snapshot,
) -> Response {
    let Some(value) = &snap.value else {
        return gone(key);
    };
    let mut response = Response::new(status).header("ETag", snap.etag.clone());
    for (name, value) in object_headers(ctx, key) {
        response = response.header(&name, value);
    }
    response.body(JSON, value.clone())
}

fn gone(key: &str) -> Response {
    Response::error(
        404,
        &format!("{key} does not exist (deleted, or never set)"),
    )
}

/// Whether the request asks for an event stream, and of which kind.
fn stream_kind(request: &Request) -> Result<Option<streams::Kind>, Response> {
    match super::dialect::query_param(request, "stream").as_deref() {
        Some("value") => Ok(Some(streams::Kind::Value)),
        Some("hint") => Ok(Some(streams::Kind::Hint)),
        Some(other) => Err(Response::error(
            400,
            &format!("stream={other:?}: use stream=value or stream=hint"),
        )),
        None if streams::accepts_event_stream(request) => Ok(Some(streams::Kind::Value)),
        None => Ok(None),
    }
}

/// GET and HEAD of an object: a stream, a long-poll, or the value now.
pub(crate) fn object_get(app: &Arc<App>, ctx: &RequestView, request: &Request, key: &str) -> Reply {
    if request.method == "GET" {
        match stream_kind(request) {
            Err(response) => return response.into(),
            Ok(Some(kind)) => return streams::value_stream(app, ctx, request, key, kind),
            Ok(None) => {}
        }
    }
    let wait = match held_wait(app, request) {
        Ok(wait) => wait,
        Err(response) => return response.into(),
    };
    if key == store::TIME {
        return time(ctx, request, wait).into();
    }
    let Some(current) = app.store.snapshot(key) else {
        return gone(key).into();
    };
    if current.value.is_none() {
        return gone(key).into();
    }
    let unstable = app.cfg.has(Fault::UnstableEtag);
    let stripped;
    let request = if unstable {
        stripped = strip_unstable(request);
        &stripped
    } else {
        request
    };
    let response = match condition(request, &current.etag, wait) {
        Condition::Full => object_response(ctx, 200, key, &current),
        Condition::NotModified if app.cfg.has(Fault::No304) => {
            object_response(ctx, 200, key, &current)
        }
        Condition::NotModified => object_response(ctx, 304, key, &current),
        Condition::Hold(deadline) => match app.store.wait_change(key, &current.etag, deadline) {
            Some(later) if later.etag == current.etag => object_response(ctx, 304, key, &later),
            Some(later) => object_response(ctx, 200, key, &later),
            None => gone(key),
        },
    };
    if unstable {
        let n = app
            .unstable
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return unstable_etag(response, n).into();
    }
    response.into()
}

/// The wait a request asks for, as the server's faults bend it: `wait-now` holds nothing,
/// `accept-bad-wait` reads a malformed wait as none instead of answering 400.
pub(crate) fn held_wait(app: &App, request: &Request) -> Result<Option<Duration>, Response> {
    let wait = match requested_wait(request) {
        Err(_) if app.cfg.has(Fault::AcceptBadWait) => None,
        other => other?,
    };
    if app.cfg.has(Fault::WaitNow) {
        return Ok(wait.map(|_| Duration::ZERO));
    }
    Ok(wait)
}

/// The `unstable-etag` fault's ETag text: the real tag with `-u<n>` inside its quotes.
fn unstable_etag(mut response: Response, n: u64) -> Response {
    for (name, value) in &mut response.headers {
        if name.eq_ignore_ascii_case("etag") {
            if let Some(inner) = value.strip_suffix('"') {
                *value = format!("{inner}-u{n}\"");
            }
        }
    }
    response
}

/// Under `unstable-etag`, any of the tags handed out still matches: `If-None-Match` with the
/// `-u<n>` parts removed.
fn strip_unstable(request: &Request) -> Request {
    let mut request = request.clone();
    for (name, value) in &mut request.headers {
        if name == "if-none-match" {
            *value = strip_unstable_tags(value);
        }
    }
    request
}

/// Removes every `-u<digits>` that ends a quoted tag.
fn strip_unstable_tags(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("-u") {
        let after = &rest[at + 2..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(&rest[..at]);
        if digits > 0 && after[digits..].starts_with('"') {
            rest = &after[digits..];
        } else {
            out.push_str("-u");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// `GET /time`: the current UTC second, long-pollable; the next second is always a change.
fn time(ctx: &RequestView, request: &Request, wait: Option<Duration>) -> Response {
    let now = store::unix_seconds();
    let respond =
        |status, secs| object_response(ctx, status, store::TIME, &store::time_snapshot(secs));
    match condition(request, &store::time_snapshot(now).etag, wait) {
        Condition::Full => respond(200, now),
        Condition::NotModified => respond(304, now),
        Condition::Hold(deadline) => loop {
            // No store change drives the clock: sleep to the next second boundary (or the
            // deadline), which wakes the thread once per second at most.
            let clock = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            if clock.as_secs() != now {
                return respond(200, clock.as_secs());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return respond(304, now);
            }
            // A millisecond past the boundary, so one sleep is enough despite rounding.
            let to_tick = Duration::from_nanos(1_000_000_000 - u64::from(clock.subsec_nanos()))
                + Duration::from_millis(1);
            std::thread::sleep(to_tick.min(left));
        },
    }
}

fn store_error(what: &str, error: StoreError) -> Response {
    match error {
        StoreError::NotANumber => Response::error(
            400,
            &format!("{what} does not hold a number: PUT a number first"),
        ),
        StoreError::Overflow => Response::error(400, &format!("{what} would overflow")),
        StoreError::NotFound => Response::error(404, &format!("nothing at {what}")),
        StoreError::Full => Response::error(507, "the server's store is full: DELETE something"),
    }
}

/// The answer after a change: the new value, or 404 when it is now deleted.
fn changed(ctx: &RequestView, key: &str, c: Counter) -> Response {
    let snap = Snapshot {
        etag: format!("\"{}\"", c.version),
        value: c.value,
    };
    object_response(ctx, 200, key, &snap)
}

/// Parses a JSON body, or answers 400.
pub(crate) fn json_body(request: &Request) -> Result<serde_json::Value, Response> {
    serde_json::from_slice(&request.body)
        .map_err(|e| Response::error(400, &format!("the body is not valid JSON: {e}")))
}

/// `/counter/{id}`.
fn counter(app: &Arc<App>, ctx: &RequestView, request: &Request, id: &str) -> Reply {
    let key = counter_key(id);
    let store = &app.store;
    match request.method.as_str() {
        "POST" => store
            .increment(id)
            .map_or_else(|e| store_error(&key, e), |c| changed(ctx, &key, c)),
        "PUT" => match json_body(request) {
            Ok(value) => store
                .set_counter(id, value.to_string())
                .map_or_else(|e| store_error(&key, e), |c| changed(ctx, &key, c)),
            Err(response) => response,
        },
        "DELETE" => match store.delete_counter(id) {
            Ok(_) => Response::new(204),
            Err(StoreError::NotFound) => gone(&key),
            Err(e) => store_error(&key, e),
        },
        _ => return object_get(app, ctx, request, &key),
    }
    .into()
}

/// `/objects/{name}`: any JSON value; PUT sets it, DELETE removes it.
fn object(app: &Arc<App>, ctx: &RequestView, request: &Request, name: &str) -> Reply {
    let key = object_key(name);
    let store = &app.store;
    match request.method.as_str() {
        "PUT" => match json_body(request) {
            Ok(value) => store
                .set_object(name, value.to_string())
                .map_or_else(|e| store_error(&key, e), |c| changed(ctx, &key, c)),
            Err(response) => response,
        },
        "DELETE" => match store.delete_object(name) {
            Ok(_) => Response::new(204),
            Err(StoreError::NotFound) => gone(&key),
            Err(e) => store_error(&key, e),
        },
        _ => return object_get(app, ctx, request, &key),
    }
    .into()
}

/// Ids are 1 to 64 characters of `[A-Za-z0-9_.-]`: safe in a path, a header and a log line.
/// `.` and `..` are refused: clients resolve them away as dot-segments (RFC 3986, 5.2.4), so
/// such a resource could not be addressed, nor its `Link` followed.
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Answers OPTIONS, and 405 for a method the resource does not have; `None` lets it through.
pub(crate) fn allowed(request: &Request, methods: &str) -> Option<Response> {
    let method = request.method.as_str();
    if method == "OPTIONS" {
        return Some(Response::new(204).header("Allow", methods));
    }
    if methods.split(", ").any(|m| m == method) {
        return None;
    }
    Some(
        Response::error(405, &format!("{method} is not allowed here; use {methods}"))
            .header("Allow", methods),
    )
}

/// How long a GET asks to be held: `Wait: N` (forms A, B) or `Prefer: wait=N` (form C); `Wait`
/// wins when both are sent. Capped at [`MAX_WAIT`]. A malformed value is a 400 naming the
/// header, so a client author sees the mistake instead of a silent non-wait.
pub(crate) fn requested_wait(request: &Request) -> Result<Option<Duration>, Response> {
    let mut waits = request.header_values("wait");
    let from_wait = match (waits.next(), waits.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => return Err(Response::error(400, "more than one Wait header")),
        (Some(value), None) => Some(seconds(value).ok_or_else(|| {
            Response::error(
                400,
                &format!("malformed Wait header {value:?}: expected a whole number of seconds"),
            )
        })?),
    };
    let mut from_prefer = None;
    for preference in request
        .header_values("prefer")
        .flat_map(|v| split_unquoted(v, ','))
    {
        // A preference is `name[=value]` followed by `;` parameters, which do not matter here.
        let head = split_unquoted(preference, ';').next().unwrap_or("");
        let (name, value) = head.split_once('=').unwrap_or((head, ""));
        if !name.trim().eq_ignore_ascii_case("wait") {
            continue;
        }
        let value = value.trim();
        let unquoted = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        let n = seconds(unquoted).ok_or_else(|| {
            Response::error(
                400,
                &format!(
                    "malformed Prefer header: wait={value:?} is not a whole number of seconds"
                ),
            )
        })?;
        from_prefer.get_or_insert(n);
    }
    Ok(from_wait
        .or(from_prefer)
        .map(|n| Duration::from_secs(n.min(MAX_WAIT))))
}

/// A non-negative whole number of seconds; too many digits to fit is still a number (capped).
pub(crate) fn seconds(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.parse().unwrap_or(u64::MAX))
}

/// Splits on `sep` outside double-quoted strings (which may hold `\`-escapes).
fn split_unquoted(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts.into_iter()
}

/// Whether `If-None-Match` matches `etag` (a quoted strong tag), comparing weakly as RFC 9110
/// asks for this header: a list of tags, `W/` prefixes, or `*` for any current representation.
/// A malformed field matches nothing, which at worst costs the client a full response.
pub(crate) fn none_match(request: &Request, etag: &str) -> bool {
    request
        .header_values("if-none-match")
        .any(|field| field_matches(field, etag))
}

fn field_matches(field: &str, etag: &str) -> bool {
    let mut rest = field;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        if rest.starts_with('*') {
            return true;
        }
        let tag = rest.strip_prefix("W/").unwrap_or(rest);
        // Entity tags hold no `"`, but may hold `,`: find the closing quote, not a comma.
        let Some(end) = tag.strip_prefix('"').and_then(|t| t.find('"')) else {
            return false;
        };
        if tag[..end + 2] == *etag {
            return true;
        }
        rest = &tag[end + 2..];
    }
}

/// What a GET or HEAD with validators calls for.
pub(crate) enum Condition {
    /// Answer in full now.
    Full,
    /// Answer 304 now.
    NotModified,
    /// Hold until a change or the deadline.
    Hold(Instant),
}

/// Decides from `If-None-Match` against the current `etag` and the requested wait.
pub(crate) fn condition(request: &Request, etag: &str, wait: Option<Duration>) -> Condition {
    if !none_match(request, etag) {
        return Condition::Full;
    }
    match wait {
        // HEAD is never held: it is for discovery, and a client holding one learns nothing.
        Some(wait) if request.method == "GET" && !wait.is_zero() => {
            Condition::Hold(Instant::now() + wait)
        }
        _ => Condition::NotModified,
    }
}

/// `/plain/{id}`: bytes without validators or links, for the plain-polling path.
fn plain(store: &Store, request: &Request, id: &str) -> Response {
    match request.method.as_str() {
        "PUT" => {
            let content_type = request
                .header("content-type")
                .filter(|t| !t.is_empty())
                .unwrap_or(PLAIN_DEFAULT_TYPE)
                .to_owned();
            let stored = Plain {
                content_type,
                body: request.body.clone(),
            };
            match store.set_plain(id, stored) {
                Ok(()) => Response::new(204),
                Err(e) => store_error(id, e),
            }
        }
        "DELETE" => match store.delete_plain(id) {
            Ok(()) => Response::new(204),
            Err(e) => store_error(id, e),
        },
        // GET and HEAD; any Wait is ignored on purpose.
        _ => match store.plain(id) {
            Some(stored) => Response::new(200).body(&stored.content_type, stored.body.clone()),
            None => Response::error(404, &format!("nothing stored at /plain/{id}: PUT it first")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> Arc<App> {
        App::new(ServerConfig::default())
    }

    fn call(app: &Arc<App>, request: &Request) -> Response {
        handle(app, request).response()
    }

    fn get(path: &str, headers: &[(&str, &str)]) -> Request {
        request("GET", path, headers, b"")
    }

    fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: None,
            version: 1,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
            body: body.to_vec(),
            raw_head: Vec::new(),
        }
    }

    fn wait_of(headers: &[(&str, &str)]) -> Result<Option<u64>, u16> {
        requested_wait(&get("/time", headers))
            .map(|w| w.map(|d| d.as_secs()))
            .map_err(|r| r.status)
    }

    #[test]
    fn wait_from_either_header() {
        assert_eq!(wait_of(&[]), Ok(None));
        assert_eq!(wait_of(&[("Wait", "10")]), Ok(Some(10)));
        assert_eq!(wait_of(&[("Wait", "0")]), Ok(Some(0)));
        assert_eq!(wait_of(&[("Prefer", "wait=7")]), Ok(Some(7)));
        assert_eq!(
            wait_of(&[("Prefer", "respond-async, WAIT=7; x=\"a,b\"")]),
            Ok(Some(7))
        );
        assert_eq!(
            wait_of(&[("Prefer", "return=minimal, wait=\"8\"")]),
            Ok(Some(8))
        );
        assert_eq!(wait_of(&[("Prefer", "return=minimal")]), Ok(None));
        assert_eq!(wait_of(&[("Prefer", "x=\"wait=3\"")]), Ok(None));
        assert_eq!(wait_of(&[("Wait", "5"), ("Prefer", "wait=9")]), Ok(Some(5)));
        assert_eq!(wait_of(&[("Wait", "301")]), Ok(Some(MAX_WAIT)));
        assert_eq!(
            wait_of(&[("Wait", "99999999999999999999999")]),
            Ok(Some(MAX_WAIT))
        );
    }

    #[test]
    fn malformed_waits_are_400_naming_the_header() {
        for bad in ["", "-1", "1.5", "10s", "ten", "+3"] {
            assert_eq!(wait_of(&[("Wait", bad)]), Err(400), "{bad:?}");
        }
        assert_eq!(wait_of(&[("Wait", "1"), ("Wait", "1")]), Err(400));
        assert_eq!(wait_of(&[("Prefer", "wait=soon")]), Err(400));
        assert_eq!(wait_of(&[("Prefer", "wait")]), Err(400));
        let response = requested_wait(&get("/time", &[("Wait", "x")])).unwrap_err();
        assert!(String::from_utf8_lossy(&response.body).contains("Wait header"));
        let response = requested_wait(&get("/time", &[("Prefer", "wait=x")])).unwrap_err();
        assert!(String::from_utf8_lossy(&response.body).contains("Prefer header"));
    }

    #[test]
    fn if_none_match_lists_weak_tags_and_star() {
        let m = |field: &str| field_matches(field, "\"7\"");
        assert!(m("\"7\""));
        assert!(m("W/\"7\""));
        assert!(m("\"1\", \"7\""));
        assert!(m("\"a,b\",\"7\""));
        assert!(m("*"));
        assert!(!m("\"8\""));
        assert!(!m("7"));
        assert!(!m("\"77\""));
        assert!(!m(""));
        assert!(!m("\"7"));
        assert!(!m("garbage, \"7\""));
    }

    #[test]
    fn unstable_etags_still_match() {
        assert_eq!(strip_unstable_tags("\"3-u17\""), "\"3\"");
        assert_eq!(
            strip_unstable_tags("W/\"a-u\", \"b-u2\""),
            "W/\"a-u\", \"b\""
        );
        assert_eq!(strip_unstable_tags("\"x-u1y\""), "\"x-u1y\"");
        let app = App::new(ServerConfig {
            faults: vec![Fault::UnstableEtag],
            ..ServerConfig::default()
        });
        let first = call(&app, &get("/counter/u", &[]));
        let second = call(&app, &get("/counter/u", &[]));
        assert_ne!(first.get("etag"), second.get("etag"));
        let inm = first.get("etag").unwrap().to_owned();
        let again = call(&app, &get("/counter/u", &[("If-None-Match", &inm)]));
        assert_eq!(again.status, 304);
    }

    #[test]
    fn faults_bend_waits_and_304s() {
        let with = |fault| {
            App::new(ServerConfig {
                faults: vec![fault],
                ..ServerConfig::default()
            })
        };
        let inm = ("If-None-Match", "\"0\"");
        let r = call(&with(Fault::No304), &get("/counter/f", &[inm]));
        assert_eq!(r.status, 200);
        let start = Instant::now();
        let r = call(
            &with(Fault::WaitNow),
            &get("/counter/f", &[inm, ("Wait", "5")]),
        );
        assert_eq!(r.status, 304);
        assert!(start.elapsed() < Duration::from_secs(2));
        let r = call(
            &with(Fault::AcceptBadWait),
            &get("/counter/f", &[("Wait", "soon")]),
        );
        assert_eq!(r.status, 200);
    }

    #[test]
    fn ids_and_unknown_paths() {
        assert!(valid_id("a.b_c-9"));
        assert!(valid_id(&"x".repeat(64)));
        assert!(!valid_id(&"x".repeat(65)));
        assert!(!valid_id(""));
        assert!(!valid_id("a/b"));
        assert!(!valid_id(".."));
        assert!(valid_id("..."));
        assert!(!valid_id("a%20b"));
        let store = app();
        for path in ["/", "/counter/", "/counter/a/b", "/plain/é", "/times"] {
            assert_eq!(call(&store, &get(path, &[])).status, 404, "{path}");
        }
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let store = app();
        let response = call(&store, &request("POST", "/time", &[], b""));
        assert_eq!(response.status, 405);
        assert_eq!(response.get("allow"), Some(TIME_METHODS));
        let response = call(&store, &request("POST", "/plain/a", &[], b""));
        assert_eq!(response.get("allow"), Some(PLAIN_METHODS));
        let response = call(&store, &request("OPTIONS", "/counter/a", &[], b""));
        assert_eq!(response.status, 204);
        assert_eq!(response.get("allow"), Some(COUNTER_METHODS));
    }

    #[test]
    fn counter_without_wait_answers_304_at_once() {
        let store = app();
        let response = call(&store, &get("/counter/a", &[("If-None-Match", "\"0\"")]));
        assert_eq!(response.status, 304);
        assert_eq!(response.get("etag"), Some("\"0\""));
        let response = call(&store, &get("/counter/a", &[("If-None-Match", "\"5\"")]));
        assert_eq!(response.status, 200);
    }

    #[test]
    fn head_is_never_held() {
        let store = app();
        let start = Instant::now();
        let head = request(
            "HEAD",
            "/counter/a",
            &[("If-None-Match", "\"0\""), ("Wait", "10")],
            b"",
        );
        assert_eq!(call(&store, &head).status, 304);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn put_normalizes_json_and_post_needs_a_number() {
        let store = app();
        let put = request("PUT", "/counter/a", &[], b" { \"b\" : [1, 2] } ");
        let response = call(&store, &put);
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"{\"b\":[1,2]}");
        let response = call(&store, &request("POST", "/counter/a", &[], b""));
        assert_eq!(response.status, 400);
        assert!(String::from_utf8_lossy(&response.body).contains("does not hold a number"));
    }

    #[test]
    fn time_body_and_etag_agree() {
        let ctx = RequestView::plain(None);
        let response = object_response(&ctx, 200, "/time", &store::time_snapshot(1_795_851_001));
        assert_eq!(response.body, br#"{"time":"2026-11-28T07:30:01Z"}"#);
        assert_eq!(response.get("etag"), Some("\"t1795851001\""));
        assert_eq!(response.get("link"), Some("</time>; rel=\"value-wait\""));
    }
}
