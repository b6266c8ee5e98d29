//! `multiplex-wait` / `multiplex-request` on the wire: which resources a request names (query
//! form A, `Uri` header form B/C) and the JSON answer keyed by URI.
//!
//! Written once for both sides: the server parses requests and encodes answers with these, the
//! client encodes requests and parses answers with the same code, so the two cannot drift.

use std::fmt;

use serde_json::{Map, Value};

/// The most resources one multiplexed request may name: bounds the server's work per request.
pub const MAX_TARGETS: usize = 256;
/// The longest URI accepted in a request, in bytes.
pub const MAX_URI: usize = 8 * 1024;

/// One resource a multiplexed request asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URI as the client wrote it (possibly relative to the request URL).
    pub uri: String,
    /// The entity tag the client holds, quotes included (`"b1946ac9"`); none for changes URIs
    /// or a resource not yet seen.
    pub if_none_match: Option<String>,
}

/// Why a multiplexed request or answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiplexError(pub String);

impl fmt::Display for MultiplexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MultiplexError {}

fn err<T>(message: impl Into<String>) -> Result<T, MultiplexError> {
    Err(MultiplexError(message.into()))
}

/// How a client names a resource to a multiplex endpoint (query, `Uri` header, socket
/// message): its path and query when they share an origin, which servers expect, else the
/// absolute URL.
#[must_use]
pub fn name_for(endpoint: &url::Url, resource: &url::Url) -> String {
    if endpoint.origin() == resource.origin() {
        let mut s = resource.path().to_string();
        if let Some(q) = resource.query() {
            s.push('?');
            s.push_str(q);
        }
        s
    } else {
        resource.to_string()
    }
}

/// Form A's query: `u=<uri>&inm=<etag>&u=<uri2>`, percent-encoded, an `inm` belonging to the `u`
/// before it.
#[must_use]
pub fn encode_query(targets: &[Target]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for target in targets {
        out.append_pair("u", &target.uri);
        if let Some(etag) = &target.if_none_match {
            out.append_pair("inm", etag);
        }
    }
    out.finish()
}

/// Reads the targets of form A's query. Parameters other than `u` and `inm` are ignored (the
/// server's own switches travel there too). An `inm` before any `u`, two for one `u`, an empty
/// `u`, or too many targets are errors.
pub fn parse_query(query: &str) -> Result<Vec<Target>, MultiplexError> {
    let mut targets: Vec<Target> = Vec::new();
    let mut inm_taken = false;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "u" => {
                check_uri(&value)?;
                if targets.len() == MAX_TARGETS {
                    return err(format!("more than {MAX_TARGETS} resources in one request"));
                }
                targets.push(Target {
                    uri: value.into_owned(),
                    if_none_match: None,
                });
                inm_taken = false;
            }
            "inm" => {
                let Some(last) = targets.last_mut() else {
                    return err("an inm parameter must follow the u parameter it belongs to");
                };
                if inm_taken {
                    return err(format!("two inm parameters for {}", last.uri));
                }
                inm_taken = true;
                last.if_none_match = Some(value.into_owned());
            }
            _ => {}
        }
    }
    Ok(targets)
}

fn check_uri(uri: &str) -> Result<(), MultiplexError> {
    if uri.is_empty() {
        return err("an empty resource URI");
    }
    if uri.len() > MAX_URI {
        return err(format!("a resource URI over {MAX_URI} bytes"));
    }
    if uri
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
    {
        return err(format!(
            "the resource URI {uri:?} contains characters URIs cannot"
        ));
    }
    Ok(())
}

/// One `Uri` header value for a target: `</objectA>; If-None-Match="b1946ac9"`.
///
/// The parameter carries the entity tag as it appears in an `If-None-Match` header, quotes (and
/// any `W/`) included.
#[must_use]
pub fn encode_uri_header(target: &Target) -> String {
    match &target.if_none_match {
        Some(etag) => format!("<{}>; If-None-Match={etag}", target.uri),
        None => format!("<{}>", target.uri),
    }
}

/// Reads every `Uri` header of a request: one resource per header (C) or several comma-joined
/// (B), each `<uri>` with an optional `If-None-Match` parameter; other parameters are ignored.
pub fn parse_uri_headers<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Target>, MultiplexError> {
    let mut targets = Vec::new();
    for value in values {
        let mut rest = value.trim_start();
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            let (target, tail) = parse_one_uri(rest)?;
            if targets.len() == MAX_TARGETS {
                return err(format!("more than {MAX_TARGETS} resources in one request"));
            }
            targets.push(target);
            rest = tail;
        }
    }
    Ok(targets)
}

/// Parses `<uri> *( ; param )` up to a top-level comma; returns the target and what follows.
fn parse_one_uri(s: &str) -> Result<(Target, &str), MultiplexError> {
    let Some(inner) = s.strip_prefix('<') else {
        return err(format!(
            "a Uri header value must start with '<': {}",
            snippet(s)
        ));
    };
    let Some(end) = inner.find('>') else {
        return err(format!("a Uri header value lacks its '>': {}", snippet(s)));
    };
    let uri = &inner[..end];
    check_uri(uri)?;
    let mut rest = &inner[end + 1..];
    let mut if_none_match = None;
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if rest.is_empty() || rest.starts_with(',') {
            break;
        }
        let Some(param) = rest.strip_prefix(';') else {
            return err(format!("unexpected text after <{uri}>: {}", snippet(rest)));
        };
        let param = param.trim_start_matches([' ', '\t']);
        let name_end = param
            .find(|c: char| c == '=' || c == ';' || c == ',' || c.is_whitespace())
            .unwrap_or(param.len());
        let name = &param[..name_end];
        if name.is_empty() {
            return err(format!("an empty parameter after <{uri}>"));
        }
        let after_name = param[name_end..].trim_start_matches([' ', '\t']);
        let (value, tail) = match after_name.strip_prefix('=') {
            Some(v) => read_param_value(v.trim_start_matches([' ', '\t'])).ok_or_else(|| {
                MultiplexError(format!("a malformed {name} parameter for <{uri}>"))
            })?,
            None => ("", after_name),
        };
        if name.eq_ignore_ascii_case("if-none-match") {
            if value.is_empty() || if_none_match.is_some() {
                return err(format!("a malformed or repeated If-None-Match for <{uri}>"));
            }
            if_none_match = Some(value.to_owned());
        }
        rest = tail;
    }
    Ok((
        Target {
            uri: uri.to_owned(),
            if_none_match,
        },
        rest,
    ))
}

/// A parameter value kept verbatim: an optional `W/`, then a quoted string (quotes kept) or a
/// token. `None` when a quoted string is not closed.
fn read_param_value(s: &str) -> Option<(&str, &str)> {
    let start = if s.starts_with("W/\"") { 2 } else { 0 };
    if s[start..].starts_with('"') {
        let bytes = s.as_bytes();
        let mut i = start + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => return Some((&s[..=i], &s[i + 1..])),
                _ => i += 1,
            }
        }
        None
    } else {
        let end = s
            .find(|c: char| c == ';' || c == ',' || c.is_whitespace())
            .unwrap_or(s.len());
        Some((&s[..end], &s[end..]))
    }
}

fn snippet(s: &str) -> String {
    let cut: String = s.chars().take(40).collect();
    format!("{cut:?}")
}

/// One member of a multiplexed answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The status the resource would have answered alone (200, 404, 304 for "no news").
    pub code: u16,
    /// Response headers of that answer (`ETag`, `Link`, `Changes-Id`, ...), in order.
    pub headers: Vec<(String, String)>,
    /// The body: the JSON value itself (form A; `null` when there is none) or the content as a
    /// JSON string (forms B, C).
    pub body: Value,
}

impl Member {
    /// A header of this member, by case-insensitive name.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The answer body: a JSON object keyed by URI, members in the given order.
#[must_use]
pub fn encode_answer(members: &[(String, Member)]) -> String {
    let mut object = Map::new();
    for (uri, member) in members {
        let mut headers = Map::new();
        for (name, value) in &member.headers {
            headers.insert(name.clone(), Value::String(value.clone()));
        }
        let mut m = Map::new();
        m.insert("code".into(), Value::from(member.code));
        m.insert("headers".into(), Value::Object(headers));
        m.insert("body".into(), member.body.clone());
        object.insert(uri.clone(), Value::Object(m));
    }
    Value::Object(object).to_string()
}

/// Reads an answer body. Members must be objects with a numeric `code`; `headers` (an object
/// of strings) and `body` may be absent.
pub fn parse_answer(text: &str) -> Result<Vec<(String, Member)>, MultiplexError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| MultiplexError(format!("the multiplex answer is not JSON: {e}")))?;
    let Value::Object(object) = value else {
        return err("the multiplex answer is not a JSON object");
    };
    let mut members = Vec::with_capacity(object.len());
    for (uri, member) in object {
        let Value::Object(mut m) = member else {
            return err(format!("the member for {uri} is not an object"));
        };
        let code = m
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| (100..1000).contains(c))
            .ok_or_else(|| MultiplexError(format!("the member for {uri} has no valid code")))?;
        let headers = match m.remove("headers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(h)) => h
                .into_iter()
                .map(|(name, value)| match value {
                    Value::String(s) => Ok((name, s)),
                    _ => err(format!("header {name} of {uri} is not a string")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return err(format!("the headers of {uri} are not an object")),
        };
        let body = m.remove("body").unwrap_or(Value::Null);
        members.push((
            uri,
            Member {
                code,
                headers,
                body,
            },
        ));
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(uri: &str, inm: Option<&str>) -> Target {
        Target {
            uri: uri.into(),
            if_none_match: inm.map(Into::into),
        }
    }

    #[test]
    fn query_round_trip() {
        let targets = vec![
            t("/objectA", Some("\"b1946ac9\"")),
            t("http://h/items/?since=3&x=a%20b", None),
            t("/ü", Some("W/\"x,y\"")),
        ];
        let query = encode_query(&targets);
        assert!(
            query.starts_with("u=%2FobjectA&inm=%22b1946ac9%22&u=http"),
            "{query}"
        );
        assert_eq!(parse_query(&query).unwrap(), targets);
        // Foreign parameters are ignored.
        assert_eq!(
            parse_query(&format!("form=a&{query}&types=x")).unwrap(),
            targets
        );
    }

    #[test]
    fn malformed_queries_are_errors() {
        assert!(parse_query("inm=%221%22&u=/a").is_err());
        assert!(parse_query("u=/a&inm=1&inm=2").is_err());
        assert!(parse_query("u=").is_err());
        assert!(parse_query("u=%0A").is_err());
        assert!(parse_query(&format!("u={}", "a".repeat(MAX_URI + 1))).is_err());
        let many: Vec<String> = (0..=MAX_TARGETS).map(|i| format!("u=/{i}")).collect();
        assert!(parse_query(&many.join("&")).is_err());
        assert_eq!(parse_query("").unwrap(), vec![]);
    }

    #[test]
    fn uri_headers_one_per_header_or_comma_joined() {
        let targets = vec![t("/objectA", Some("\"b1946ac9\"")), t("/objectB", None)];
        let one_each: Vec<String> = targets.iter().map(encode_uri_header).collect();
        assert_eq!(one_each[0], "</objectA>; If-None-Match=\"b1946ac9\"");
        assert_eq!(
            parse_uri_headers(one_each.iter().map(String::as_str)).unwrap(),
            targets
        );
        let joined = one_each.join(", ");
        assert_eq!(parse_uri_headers([joined.as_str()]).unwrap(), targets);
        // Quoted commas and semicolons, weak tags, other parameters, odd spacing.
        let got = parse_uri_headers([
            "</a>;if-none-match=\"x,;y\" ; other=1,</b> ; If-None-Match=W/\"w\"",
        ])
        .unwrap();
        assert_eq!(
            got,
            vec![t("/a", Some("\"x,;y\"")), t("/b", Some("W/\"w\""))]
        );
    }

    #[test]
    fn malformed_uri_headers_are_errors() {
        for bad in [
            "/a",
            "</a",
            "<>",
            "</a> junk",
            "</a>; If-None-Match=\"open",
            "</a>; If-None-Match=",
            "</a>; If-None-Match=\"1\"; If-None-Match=\"2\"",
            "</a>; =x",
            "</a b>",
        ] {
            assert!(parse_uri_headers([bad]).is_err(), "{bad:?}");
        }
        let many = vec!["</x>"; MAX_TARGETS + 1].join(",");
        assert!(parse_uri_headers([many.as_str()]).is_err());
    }

    #[test]
    fn answers_round_trip_in_both_body_styles() {
        let members = vec![
            (
                "/objectA".to_owned(),
                Member {
                    code: 200,
                    headers: vec![("ETag".into(), "\"2\"".into())],
                    body: json!({"a": [1, 2]}),
                },
            ),
            (
                "/objectB".to_owned(),
                Member {
                    code: 200,
                    headers: vec![("ETag".into(), "\"3\"".into())],
                    body: Value::String("{\"b\":1}".into()),
                },
            ),
            (
                "/gone".to_owned(),
                Member {
                    code: 404,
                    headers: vec![],
                    body: Value::Null,
                },
            ),
        ];
        let text = encode_answer(&members);
        let parsed = parse_answer(&text).unwrap();
        assert_eq!(parsed, members);
        assert_eq!(parsed[0].1.header("etag"), Some("\"2\""));
    }

    #[test]
    fn malformed_answers_are_errors() {
        for bad in [
            "",
            "[]",
            "{\"a\": 1}",
            "{\"a\": {}}",
            "{\"a\": {\"code\": \"200\"}}",
            "{\"a\": {\"code\": 70000}}",
            "{\"a\": {\"code\": 200, \"headers\": []}}",
            "{\"a\": {\"code\": 200, \"headers\": {\"ETag\": 1}}}",
        ] {
            assert!(parse_answer(bad).is_err(), "{bad:?}");
        }
        let minimal = parse_answer("{\"a\": {\"code\": 304}}").unwrap();
        assert_eq!(minimal[0].1.body, Value::Null);
    }
}
