//! Conditional requests and waits: how long a request asks to be held (`Wait`, `Prefer:
//! wait`), whether its `If-None-Match` matches, and so whether to answer now, answer 304, or
//! hold it until a change.

use std::time::{Duration, Instant};

use super::dialect::{Fault, ServerConfig};
use crate::http1::{Request, Response};

/// The longest a request is held, whatever it asks for: below common proxy timeouts.
pub(crate) const MAX_WAIT: u64 = 300;

/// The wait a request asks for, as the server's faults bend it: `wait-now` holds nothing,
/// `accept-bad-wait` reads a malformed wait as none instead of answering 400.
pub(crate) fn held_wait(
    cfg: &ServerConfig,
    request: &Request,
) -> Result<Option<Duration>, Response> {
    let wait = match requested_wait(request) {
        Err(_) if cfg.has(Fault::AcceptBadWait) => None,
        other => other?,
    };
    if cfg.has(Fault::WaitNow) {
        return Ok(wait.map(|_| Duration::ZERO));
    }
    Ok(wait)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, headers: &[(&str, &str)]) -> Request {
        request("GET", path, headers, b"")
    }
    fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        Request::for_test(method, path, headers, body)
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
}
