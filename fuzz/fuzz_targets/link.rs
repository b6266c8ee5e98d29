//! RFC 8288 `Link` headers: `lrwatch::link::parse_link_headers` on arbitrary text.
//!
//! The input is split into header values on `\n` (a byte no real header value holds). Checked:
//! no panic; the documented bounds on links and errors; and every link parsed reads back the
//! same after `format_link` writes it (but for targets it must percent-encode), since the
//! server writes with one and clients read with the other.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lrwatch::link::{format_link, parse_link_headers};
use url::Url;

fuzz_target!(|data: &[u8]| {
    let base = Url::parse("http://example.com/object/1?x=1").unwrap();
    let values = lrwatch_fuzz::split_lossy(data, b'\n');
    let parsed = parse_link_headers(values.iter().map(String::as_str), &base);
    assert!(parsed.links.len() <= 10_000);
    // 100 individual errors, one summary, and one per limit (input size, link count).
    assert!(parsed.errors.len() <= 103, "{} errors", parsed.errors.len());
    for error in &parsed.errors {
        assert!(error.fragment.chars().count() <= 200);
        let _ = error.to_string();
    }
    for link in &parsed.links {
        let rels: Vec<&str> = link.rels.iter().map(String::as_str).collect();
        let params: Vec<(&str, &str)> = link
            .params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let written = format_link(link.target.as_str(), &rels, &params);
        let again = parse_link_headers([written.as_str()], &base);
        assert!(again.errors.is_empty(), "{written:?}: {:?}", again.errors);
        assert_eq!(again.links.len(), 1, "{written:?}");
        let read = &again.links[0];
        assert_eq!(
            (&read.rels, &read.params),
            (&link.rels, &link.params),
            "{written:?}"
        );
        // Targets are compared for the schemes lrwatch follows. `format_link` percent-encodes
        // what cannot stand between `<` and `>` (a URL of an unknown scheme may keep `"` in its
        // host), and the url crate does not always read its own serialization of a file URL
        // back the same (`file://eleC//e://a/b` loses its host when read again).
        let followed = matches!(link.target.scheme(), "http" | "https" | "ws" | "wss");
        if followed
            && !link
                .target
                .as_str()
                .chars()
                .any(|c| c.is_ascii_control() || matches!(c, ' ' | '"' | '<' | '>'))
        {
            assert_eq!(read.target, link.target, "{written:?}");
        }
        for rel in &link.rels {
            assert!(link.has_rel(rel));
            assert!(parsed.find(rel).is_some());
        }
    }
});
