//! The resources followed one at a time: `/time`, `/counter/{id}`, `/objects/{name}` (and an
//! item of `/items/`, which the collection hands here to read), and `/plain/{id}` for plain
//! polling. Reading one is a stream, a long-poll, or the value now.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::app::App;
use super::checks::json_body;
use super::conditional::{condition, held_wait, Condition};
use super::dialect::{Fault, RequestView, Shape};
use super::object_response::{gone, object_response};
use super::store::{self, counter_key, object_key, Counter, Plain, Snapshot, Store, StoreError};
use super::streams;
use crate::http1::{Reply, Request, Response};

/// What `/plain/{id}` is served as when it was stored without a `Content-Type`.
const PLAIN_DEFAULT_TYPE: &str = "text/plain; charset=utf-8";

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

/// The view a value stream answers in: `?stream=value` is the link of form A's
/// `value-stream` or form C's `alternate`; `Accept: text/event-stream` on the resource's own
/// URI is form B's way to ask (see [`RequestView::answer_form`]). Hint streams are form B's
/// only, whatever is asked.
fn stream_view(ctx: &RequestView, request: &Request) -> RequestView {
    let shape = if super::dialect::query_param(request, "stream").is_some() {
        Shape::AOrC
    } else {
        Shape::B
    };
    ctx.answering(ctx.answer_form(shape))
}

/// GET and HEAD of an object: a stream, a long-poll, or the value now.
pub(crate) fn object_get(app: &Arc<App>, ctx: &RequestView, request: &Request, key: &str) -> Reply {
    if request.method == "GET" {
        match stream_kind(request) {
            Err(response) => return response.into(),
            Ok(Some(kind)) => {
                let ctx = &stream_view(ctx, request);
                return streams::value_stream(&app.store, &app.cfg, ctx, request, key, kind);
            }
            Ok(None) => {}
        }
    }
    let wait = match held_wait(&app.cfg, request) {
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
        return unstable_etag(response, app.next_unstable()).into();
    }
    response.into()
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

/// `/counter/{id}`.
pub(crate) fn counter(app: &Arc<App>, ctx: &RequestView, request: &Request, id: &str) -> Reply {
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
pub(crate) fn object(app: &Arc<App>, ctx: &RequestView, request: &Request, name: &str) -> Reply {
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

/// `/plain/{id}`: bytes without validators or links, for the plain-polling path.
pub(crate) fn plain(store: &Store, request: &Request, id: &str) -> Response {
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
    use crate::server::dialect::ServerConfig;

    fn app() -> Arc<App> {
        App::new(ServerConfig::default())
    }
    /// A counter's request as the router hands it over.
    fn call(app: &Arc<App>, request: &Request) -> Response {
        let ctx = RequestView::new(app.cfg.dialect, request).expect("a plain request");
        let id = request.path.strip_prefix("/counter/").expect("a counter");
        counter(app, &ctx, request, id).response()
    }

    fn get(path: &str, headers: &[(&str, &str)]) -> Request {
        request("GET", path, headers, b"")
    }
    fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        Request::for_test(method, path, headers, body)
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
            &get("/counter/f", &[inm, ("Wait", "15")]),
        );
        assert_eq!(r.status, 304);
        // Answered at once, not after the 15 s wait: 10 s of room for a loaded machine.
        assert!(start.elapsed() < Duration::from_secs(10));
        let r = call(
            &with(Fault::AcceptBadWait),
            &get("/counter/f", &[("Wait", "soon")]),
        );
        assert_eq!(r.status, 200);
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
            &[("If-None-Match", "\"0\""), ("Wait", "15")],
            b"",
        );
        assert_eq!(call(&store, &head).status, 304);
        // Not held for the 15 s asked: 10 s of room for a loaded machine.
        assert!(start.elapsed() < Duration::from_secs(10));
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
}
