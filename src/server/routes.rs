//! Routing: which resource a request names, what each method does, and value-wait long-polls.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::http::{Request, Response};
use super::store::{Counter, Plain, Store, StoreError};
use crate::link::format_link;

/// The longest a request is held, whatever it asks for: below common proxy timeouts.
pub(crate) const MAX_WAIT: u64 = 300;
/// What `/plain/{id}` is served as when it was stored without a `Content-Type`.
const PLAIN_DEFAULT_TYPE: &str = "text/plain; charset=utf-8";
/// Form C's way of saying that the resource URI itself can be long-polled.
const WAIT_PROPERTY: &str = "wait; min=1";
const JSON: &str = "application/json";

const TIME_METHODS: &str = "GET, HEAD, OPTIONS";
const COUNTER_METHODS: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS";
const PLAIN_METHODS: &str = "GET, HEAD, PUT, DELETE, OPTIONS";

/// Answers one request.
pub(crate) fn handle(store: &Store, request: &Request) -> Response {
    let path = request.path.as_str();
    if path == "/time" {
        return allowed(request, TIME_METHODS).unwrap_or_else(|| time(request));
    }
    if let Some(id) = path.strip_prefix("/counter/").filter(|id| valid_id(id)) {
        return allowed(request, COUNTER_METHODS).unwrap_or_else(|| counter(store, request, id));
    }
    if let Some(id) = path.strip_prefix("/plain/").filter(|id| valid_id(id)) {
        return allowed(request, PLAIN_METHODS).unwrap_or_else(|| plain(store, request, id));
    }
    Response::error(
        404,
        &format!("no resource at {path}: this server has /time, /counter/{{id}} and /plain/{{id}}"),
    )
}

/// Ids are 1 to 64 characters of `[A-Za-z0-9_.-]`: safe in a path, a header and a log line.
/// `.` and `..` are refused: clients resolve them away as dot-segments (RFC 3986, 5.2.4), so
/// such a resource could not be addressed, nor its `Link` followed.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Answers OPTIONS, and 405 for a method the resource does not have; `None` lets it through.
fn allowed(request: &Request, methods: &str) -> Option<Response> {
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
fn requested_wait(request: &Request) -> Result<Option<Duration>, Response> {
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
fn seconds(value: &str) -> Option<u64> {
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
fn none_match(request: &Request, etag: &str) -> bool {
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
enum Condition {
    /// Answer in full now.
    Full,
    /// Answer 304 now.
    NotModified,
    /// Hold until a change or the deadline.
    Hold(Instant),
}

/// Decides from `If-None-Match` against the current `etag` and the requested wait.
fn condition(request: &Request, etag: &str, wait: Option<Duration>) -> Condition {
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

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `GET /time`: the current UTC second, long-pollable; the next second is always a change.
fn time(request: &Request) -> Response {
    let wait = match requested_wait(request) {
        Ok(wait) => wait,
        Err(response) => return response,
    };
    let now = unix_seconds();
    match condition(request, &time_etag(now), wait) {
        Condition::Full => time_response(200, now),
        Condition::NotModified => time_response(304, now),
        Condition::Hold(deadline) => loop {
            // No store change drives the clock: sleep to the next second boundary (or the
            // deadline), which wakes the thread once per second at most.
            let clock = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            if clock.as_secs() != now {
                return time_response(200, clock.as_secs());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return time_response(304, now);
            }
            // A millisecond past the boundary, so one sleep is enough despite rounding.
            let to_tick = Duration::from_nanos(1_000_000_000 - u64::from(clock.subsec_nanos()))
                + Duration::from_millis(1);
            std::thread::sleep(to_tick.min(left));
        },
    }
}

fn time_etag(secs: u64) -> String {
    format!("\"t{secs}\"")
}

fn time_response(status: u16, secs: u64) -> Response {
    let stamp = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs));
    let body = serde_json::json!({ "time": stamp.to_string() }).to_string();
    Response::new(status)
        .header("ETag", time_etag(secs))
        .header("Link", format_link("/time", &["value-wait"], &[]))
        .header("LiveResource-Property", WAIT_PROPERTY)
        .body(JSON, body)
}

fn counter_etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// A counter's representation with the headers that advertise long-polling.
fn counter_response(status: u16, id: &str, value: String, version: u64) -> Response {
    Response::new(status)
        .header("ETag", counter_etag(version))
        .header(
            "Link",
            format_link(&format!("/counter/{id}"), &["value-wait"], &[]),
        )
        .header("LiveResource-Property", WAIT_PROPERTY)
        .body(JSON, value)
}

fn counter_gone(id: &str) -> Response {
    Response::error(404, &format!("counter {id} was deleted"))
}

/// The answer for a counter as it reads now.
fn counter_now(id: &str, counter: Counter) -> Response {
    match counter.value {
        Some(value) => counter_response(200, id, value, counter.version),
        None => counter_gone(id),
    }
}

fn store_error(id: &str, error: StoreError) -> Response {
    match error {
        StoreError::NotANumber => Response::error(
            400,
            &format!("counter {id} does not hold a number: PUT a number first"),
        ),
        StoreError::Overflow => Response::error(400, &format!("counter {id} would overflow")),
        StoreError::NotFound => Response::error(404, &format!("nothing to delete at {id}")),
        StoreError::Full => Response::error(507, "the server's store is full: DELETE something"),
    }
}

/// `/counter/{id}`.
fn counter(store: &Store, request: &Request, id: &str) -> Response {
    match request.method.as_str() {
        "POST" => store
            .increment(id)
            .map_or_else(|e| store_error(id, e), |c| counter_now(id, c)),
        "PUT" => match serde_json::from_slice::<serde_json::Value>(&request.body) {
            Ok(value) => store
                .set_counter(id, value.to_string())
                .map_or_else(|e| store_error(id, e), |c| counter_now(id, c)),
            Err(e) => Response::error(400, &format!("the body is not valid JSON: {e}")),
        },
        "DELETE" => match store.delete_counter(id) {
            Ok(_) => Response::new(204),
            Err(StoreError::NotFound) => counter_gone(id),
            Err(e) => store_error(id, e),
        },
        // GET and HEAD.
        _ => {
            let wait = match requested_wait(request) {
                Ok(wait) => wait,
                Err(response) => return response,
            };
            let current = store.counter(id);
            let Some(value) = current.value else {
                return counter_gone(id);
            };
            match condition(request, &counter_etag(current.version), wait) {
                Condition::Full => counter_response(200, id, value, current.version),
                Condition::NotModified => counter_response(304, id, value, current.version),
                Condition::Hold(deadline) => {
                    let later = store.wait_counter(id, current.version, deadline);
                    match later.value {
                        Some(value) if later.version == current.version => {
                            counter_response(304, id, value, later.version)
                        }
                        _ => counter_now(id, later),
                    }
                }
            }
        }
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
    fn ids_and_unknown_paths() {
        assert!(valid_id("a.b_c-9"));
        assert!(valid_id(&"x".repeat(64)));
        assert!(!valid_id(&"x".repeat(65)));
        assert!(!valid_id(""));
        assert!(!valid_id("a/b"));
        assert!(!valid_id(".."));
        assert!(valid_id("..."));
        assert!(!valid_id("a%20b"));
        let store = Store::default();
        for path in ["/", "/counter/", "/counter/a/b", "/plain/é", "/times"] {
            assert_eq!(handle(&store, &get(path, &[])).status, 404, "{path}");
        }
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let store = Store::default();
        let response = handle(&store, &request("POST", "/time", &[], b""));
        assert_eq!(response.status, 405);
        assert_eq!(response.get("allow"), Some(TIME_METHODS));
        let response = handle(&store, &request("POST", "/plain/a", &[], b""));
        assert_eq!(response.get("allow"), Some(PLAIN_METHODS));
        let response = handle(&store, &request("OPTIONS", "/counter/a", &[], b""));
        assert_eq!(response.status, 204);
        assert_eq!(response.get("allow"), Some(COUNTER_METHODS));
    }

    #[test]
    fn counter_without_wait_answers_304_at_once() {
        let store = Store::default();
        let response = handle(&store, &get("/counter/a", &[("If-None-Match", "\"0\"")]));
        assert_eq!(response.status, 304);
        assert_eq!(response.get("etag"), Some("\"0\""));
        let response = handle(&store, &get("/counter/a", &[("If-None-Match", "\"5\"")]));
        assert_eq!(response.status, 200);
    }

    #[test]
    fn head_is_never_held() {
        let store = Store::default();
        let start = Instant::now();
        let head = request(
            "HEAD",
            "/counter/a",
            &[("If-None-Match", "\"0\""), ("Wait", "10")],
            b"",
        );
        assert_eq!(handle(&store, &head).status, 304);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn put_normalizes_json_and_post_needs_a_number() {
        let store = Store::default();
        let put = request("PUT", "/counter/a", &[], b" { \"b\" : [1, 2] } ");
        let response = handle(&store, &put);
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"{\"b\":[1,2]}");
        let response = handle(&store, &request("POST", "/counter/a", &[], b""));
        assert_eq!(response.status, 400);
        assert!(String::from_utf8_lossy(&response.body).contains("does not hold a number"));
    }

    #[test]
    fn time_body_and_etag_agree() {
        let response = time_response(200, 1_795_851_001);
        assert_eq!(response.body, br#"{"time":"2026-11-28T07:30:01Z"}"#);
        assert_eq!(response.get("etag"), Some("\"t1795851001\""));
        assert_eq!(response.get("link"), Some("</time>; rel=\"value-wait\""));
    }
}
