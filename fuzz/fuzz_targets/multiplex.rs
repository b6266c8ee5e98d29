//! Multiplexed request and answer bodies: `lrwatch::wire::multiplex::{parse_answer,
//! parse_query, parse_uri_headers}` on arbitrary text, and `encode_*` -> `parse_*` round trips.
//!
//! Byte 0 chooses: 0 parses the rest as an answer (and checks parse -> encode -> parse gives
//! the same members), 1 as a form A query, 2 as `Uri` header values split on `\n`; 3..=5 build
//! targets or members from the bytes and check that what is encoded parses back the same.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use lrwatch::wire::multiplex::{
    encode_answer, encode_query, encode_uri_header, parse_answer, parse_query, parse_uri_headers,
    Member, Target, MAX_TARGETS, MAX_URI,
};
use lrwatch_fuzz::{split_lossy, unique_by_name, Json};

fuzz_target!(|data: &[u8]| {
    let [which, rest @ ..] = data else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 6 {
        0 => answer(&text),
        1 => query(&text),
        2 => uri_headers(rest),
        mode => {
            let mut u = Unstructured::new(rest);
            match mode {
                3 => {
                    if let Ok(targets) = Vec::<ArbTarget>::arbitrary(&mut u) {
                        query_round_trip(targets);
                    }
                }
                4 => {
                    if let Ok(targets) = Vec::<ArbTarget>::arbitrary(&mut u) {
                        uri_header_round_trip(targets);
                    }
                }
                _ => {
                    if let Ok(members) = Vec::<ArbMember>::arbitrary(&mut u) {
                        answer_round_trip(members);
                    }
                }
            }
        }
    }
});

fn answer(text: &str) {
    let Ok(members) = parse_answer(text) else {
        return;
    };
    for (_, member) in &members {
        assert!((100..1000).contains(&member.code));
    }
    let again = parse_answer(&encode_answer(&members)).expect("an encoded answer parses");
    assert_eq!(again, members);
}

fn query(text: &str) {
    let Ok(targets) = parse_query(text) else {
        return;
    };
    assert!(targets.len() <= MAX_TARGETS);
    let again = parse_query(&encode_query(&targets)).expect("an encoded query parses");
    assert_eq!(again, targets);
}

fn uri_headers(data: &[u8]) {
    let values = split_lossy(data, b'\n');
    let Ok(targets) = parse_uri_headers(values.iter().map(String::as_str)) else {
        return;
    };
    assert!(targets.len() <= MAX_TARGETS);
    for target in &targets {
        assert!(!target.uri.is_empty() && target.uri.len() <= MAX_URI);
    }
}

#[derive(Debug, Arbitrary)]
struct ArbTarget {
    uri: String,
    etag: Option<String>,
    weak: bool,
}

fn valid_uri(uri: &str) -> bool {
    !uri.is_empty()
        && uri.len() <= MAX_URI
        && !uri
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
}

fn query_round_trip(targets: Vec<ArbTarget>) {
    let targets: Vec<Target> = targets
        .into_iter()
        .map(|t| Target {
            uri: t.uri,
            if_none_match: t.etag,
        })
        .collect();
    let parsed = parse_query(&encode_query(&targets));
    if targets.len() <= MAX_TARGETS && targets.iter().all(|t| valid_uri(&t.uri)) {
        assert_eq!(parsed, Ok(targets));
    } else {
        assert!(parsed.is_err(), "{parsed:?}");
    }
}

fn uri_header_round_trip(targets: Vec<ArbTarget>) {
    // The entity tag as an If-None-Match header writes it: quoted, optionally weak. Inside the
    // quotes anything but `"`, `\` and controls (RFC 9110 etagc).
    let targets: Vec<Target> = targets
        .into_iter()
        .map(|t| Target {
            uri: t.uri,
            if_none_match: t.etag.map(|e| {
                let inner: String = e
                    .chars()
                    .filter(|c| !matches!(c, '"' | '\\') && !c.is_control())
                    .collect();
                format!("{}\"{inner}\"", if t.weak { "W/" } else { "" })
            }),
        })
        .collect();
    let valid = targets.len() <= MAX_TARGETS && targets.iter().all(|t| valid_uri(&t.uri));
    let headers: Vec<String> = targets.iter().map(encode_uri_header).collect();
    // Form C: one header per resource; form B: all in one, comma-joined.
    let one_each = parse_uri_headers(headers.iter().map(String::as_str));
    let joined = headers.join(", ");
    let all_in_one = parse_uri_headers([joined.as_str()]);
    // An invalid URI (one with `>` in it, say) is written as given and may read as other
    // targets: callers encode URIs of parsed URLs, which cannot hold such characters.
    if valid {
        assert_eq!(one_each.as_ref(), Ok(&targets), "{headers:?}");
        assert_eq!(all_in_one, Ok(targets), "{joined:?}");
    }
}

#[derive(Debug, Arbitrary)]
struct ArbMember {
    uri: String,
    code: u16,
    headers: Vec<(String, String)>,
    body: Json,
}

fn answer_round_trip(members: Vec<ArbMember>) {
    let members: Vec<(String, Member)> = unique_by_name(
        members
            .into_iter()
            .map(|m| {
                (
                    m.uri,
                    Member {
                        code: 100 + m.code % 900,
                        headers: unique_by_name(m.headers),
                        body: m.body.0,
                    },
                )
            })
            .collect(),
    );
    let parsed = parse_answer(&encode_answer(&members)).expect("an encoded answer parses");
    assert_eq!(parsed, members);
}
