//! Discovery: what a resource says about itself in the headers of an ordinary response.

use std::time::Duration;

use ureq::http::HeaderMap;
use url::Url;

use crate::http::header_text;
use crate::link::{parse_link_headers, ParsedLinks};
use crate::mechanism::Mechanism;

/// One way the resource offers to be followed, with where to go for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The relation (or property) that advertised it, as normalised by the link parser:
    /// `multiplex-request` and `multiplex-wait` differ in the request form they expect.
    pub rel: String,
    /// Where to make its requests (resolved). For `poll` and `LiveResource-Property: wait`,
    /// the resource itself.
    pub target: Url,
    /// `mode=reliable` on a stream link (form B): event ids and resumption.
    pub reliable: bool,
    /// The smallest wait the server honours, from `wait-min` (a `changes` link, form C) or
    /// `LiveResource-Property: wait; min=N`.
    pub wait_min: Option<u64>,
}

/// Everything one response advertised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// The `ETag`, exactly as sent (quotes included).
    pub etag: Option<String>,
    /// The `Last-Modified` date, exactly as sent.
    pub last_modified: Option<String>,
    /// The server's suggested polling period (`X-Poll-Interval`, forms B and C).
    pub poll_interval: Option<Duration>,
    /// `LiveResource-Property` entries (form C), lowercased names with their parameters.
    pub properties: Vec<(String, Vec<(String, String)>)>,
    /// Every parsed link, including ones lrwatch does not use, and the malformed ones skipped.
    pub links: ParsedLinks,
    /// The mechanisms offered, in the order `auto` prefers them, `poll` always last.
    pub offers: Vec<Offer>,
}

/// The largest `X-Poll-Interval` taken from a server: a day. Larger values are clamped.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(86_400);
/// The smallest: a server cannot make us poll faster than this.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);

impl Capabilities {
    /// The same without the parsed links: what a follower keeps. It decides by the offers,
    /// read from the links once; the links themselves would cost each of thousands of
    /// followed resources a few KiB more.
    #[must_use]
    pub fn without_links(&self) -> Capabilities {
        Capabilities {
            etag: self.etag.clone(),
            last_modified: self.last_modified.clone(),
            poll_interval: self.poll_interval,
            properties: self.properties.clone(),
            links: ParsedLinks::default(),
            // A clone is exactly as long as its contents.
            offers: self.offers.clone(),
        }
    }

    /// Reads the capabilities from response headers; `base` is the final URL after redirects.
    /// Values that are not ASCII are read as UTF-8, else Latin-1 ([`header_text`]), never
    /// skipped: a link to a non-ASCII path is still a link.
    pub fn from_headers(headers: &HeaderMap, base: &Url) -> Capabilities {
        let text = |name: &str| {
            headers
                .get(name)
                .map(|v| header_text(v).trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let link_values: Vec<_> = headers.get_all("link").iter().map(header_text).collect();
        let links = parse_link_headers(link_values.iter().map(|v| v.as_ref()), base);
        let properties = headers
            .get_all("liveresource-property")
            .iter()
            .flat_map(|v| parse_properties(&header_text(v)))
            .collect();
        let poll_interval = text("x-poll-interval").and_then(|s| parse_interval(&s));
        let mut caps = Capabilities {
            etag: text("etag"),
            last_modified: text("last-modified"),
            poll_interval,
            properties,
            links,
            offers: Vec::new(),
        };
        caps.offers = caps.compute_offers(base);
        caps
    }

    fn compute_offers(&self, base: &Url) -> Vec<Offer> {
        let mut offers: Vec<Offer> = Vec::new();
        let mut add = |offer: Offer| {
            if !offers.iter().any(|o| o.mechanism == offer.mechanism) {
                offers.push(offer);
            }
        };
        // Reliable stream links first, so that the first offer of a kind is the best one.
        let mut links: Vec<_> = self.links.links.iter().collect();
        links.sort_by_key(|l| !is_reliable(l.param("mode")));
        for link in links {
            let wait_min = link.param("wait-min").and_then(|v| v.trim().parse().ok());
            for rel in &link.rels {
                let mechanism = match rel.as_str() {
                    "alternate" => link
                        .param("type")
                        .filter(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
                        .map(|_| Mechanism::ValueStream),
                    other => Mechanism::from_rel(other),
                };
                if let Some(mechanism) = mechanism {
                    add(Offer {
                        mechanism,
                        rel: rel.clone(),
                        target: link.target.clone(),
                        reliable: is_reliable(link.param("mode")),
                        wait_min,
                    });
                }
            }
        }
        if let Some((_, params)) = self.properties.iter().find(|(name, _)| name == "wait") {
            let wait_min = params
                .iter()
                .find(|(k, _)| k == "min")
                .and_then(|(_, v)| v.parse().ok());
            add(Offer {
                mechanism: Mechanism::ValueWait,
                rel: "wait".to_string(),
                target: base.clone(),
                reliable: false,
                wait_min,
            });
        }
        add(Offer {
            mechanism: Mechanism::Poll,
            rel: "poll".to_string(),
            target: base.clone(),
            reliable: false,
            wait_min: None,
        });
        offers.sort_by_key(|o| Mechanism::ALL.iter().position(|m| *m == o.mechanism));
        offers
    }

    /// The offer for a mechanism, if the resource makes it.
    pub fn offer(&self, mechanism: Mechanism) -> Option<&Offer> {
        self.offers.iter().find(|o| o.mechanism == mechanism)
    }

    /// The names of every mechanism offered, `poll` last.
    pub fn offered_names(&self) -> Vec<String> {
        self.offers
            .iter()
            .map(|o| o.mechanism.to_string())
            .collect()
    }
}

fn is_reliable(mode: Option<&str>) -> bool {
    mode.is_some_and(|m| m.trim().eq_ignore_ascii_case("reliable"))
}

/// Parses `X-Poll-Interval`: seconds, fractions allowed, clamped to a sane range.
fn parse_interval(s: &str) -> Option<Duration> {
    let secs: f64 = s.parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    let d = Duration::try_from_secs_f64(secs).ok()?;
    Some(d.clamp(MIN_POLL_INTERVAL, MAX_POLL_INTERVAL))
}

/// Parses one `LiveResource-Property` value: `wait; min=20, other; k=v`.
fn parse_properties(value: &str) -> Vec<(String, Vec<(String, String)>)> {
    value
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let name = parts.next()?.to_ascii_lowercase();
            if name.is_empty() {
                return None;
            }
            let params = parts
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (
                        k.trim().to_ascii_lowercase(),
                        v.trim().trim_matches('"').to_string(),
                    ),
                    None => (p.to_ascii_lowercase(), String::new()),
                })
                .collect();
            Some((name, params))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::http::HeaderValue;

    fn caps(headers: &[(&'static str, &str)]) -> Capabilities {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        Capabilities::from_headers(&map, &Url::parse("http://h:1/r/x?q=1").unwrap())
    }

    fn names(c: &Capabilities) -> Vec<&'static str> {
        c.offers.iter().map(|o| o.mechanism.as_str()).collect()
    }

    #[test]
    fn nothing_advertised_is_poll() {
        let c = caps(&[]);
        assert_eq!(names(&c), ["poll"]);
        assert_eq!(c.offers[0].target.as_str(), "http://h:1/r/x?q=1");
        assert_eq!(c.etag, None);
    }

    #[test]
    fn form_a_links() {
        let c = caps(&[
            ("etag", "\"1\""),
            ("link", "</r/x>; rel=value-wait, </r/x>; rel=value-stream"),
            ("link", "</multi/ws/>; rel=multiplex-ws"),
        ]);
        assert_eq!(
            names(&c),
            ["value-stream", "multiplex-ws", "value-wait", "poll"]
        );
        assert_eq!(
            c.offer(Mechanism::MultiplexWs).unwrap().target.as_str(),
            "http://h:1/multi/ws/"
        );
        assert_eq!(c.etag.as_deref(), Some("\"1\""));
    }

    #[test]
    fn form_b_prefers_reliable_stream() {
        let c = caps(&[
            (
                "link",
                "</s/>; rel=value-stream, </s/?r=1>; rel=value-stream; mode=reliable",
            ),
            ("x-poll-interval", "10"),
        ]);
        let s = c.offer(Mechanism::ValueStream).unwrap();
        assert!(s.reliable);
        assert_eq!(s.target.as_str(), "http://h:1/s/?r=1");
        assert_eq!(c.poll_interval, Some(Duration::from_secs(10)));
    }

    #[test]
    fn form_c_property_and_long_names() {
        let c = caps(&[
            ("liveresource-property", "wait; min=20"),
            (
                "link",
                "</stream/>; rel=alternate; type=\"text/event-stream\"",
            ),
            (
                "link",
                "<http://h:1/mux>; rel=\"http://liveresource.org/protocol/multiplex-request\"",
            ),
        ]);
        assert_eq!(
            names(&c),
            ["value-stream", "value-wait", "multiplex-wait", "poll"]
        );
        let w = c.offer(Mechanism::ValueWait).unwrap();
        assert_eq!(w.wait_min, Some(20));
        assert_eq!(w.target.as_str(), "http://h:1/r/x?q=1");
    }

    #[test]
    fn alternate_without_event_stream_is_not_a_stream() {
        let c = caps(&[("link", "</x.html>; rel=alternate; type=\"text/html\"")]);
        assert_eq!(names(&c), ["poll"]);
        assert_eq!(c.links.links.len(), 1);
    }

    #[test]
    fn bad_poll_interval_ignored_and_clamped() {
        assert_eq!(caps(&[("x-poll-interval", "soon")]).poll_interval, None);
        assert_eq!(caps(&[("x-poll-interval", "-3")]).poll_interval, None);
        assert_eq!(
            caps(&[("x-poll-interval", "0")]).poll_interval,
            Some(MIN_POLL_INTERVAL)
        );
        assert_eq!(
            caps(&[("x-poll-interval", "1e12")]).poll_interval,
            Some(MAX_POLL_INTERVAL)
        );
        assert_eq!(
            caps(&[("x-poll-interval", "0.5")]).poll_interval,
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn properties_parse() {
        assert_eq!(
            parse_properties("wait; min=20, Other"),
            vec![
                (
                    "wait".to_string(),
                    vec![("min".to_string(), "20".to_string())]
                ),
                ("other".to_string(), vec![])
            ]
        );
        assert!(parse_properties(" , ;").is_empty());
    }

    #[test]
    fn a_follower_keeps_the_offers_without_the_links() {
        let mut headers = HeaderMap::new();
        headers.insert("etag", "\"3\"".parse().unwrap());
        headers.insert(
            "link",
            "</s>; rel=\"value-stream\", </m>; rel=multiplex-socket"
                .parse()
                .unwrap(),
        );
        let base: Url = "http://h/r".parse().unwrap();
        let full = Capabilities::from_headers(&headers, &base);
        assert_eq!(full.links.links.len(), 2);
        let kept = full.without_links();
        assert!(kept.links.links.is_empty());
        assert_eq!(kept.offers, full.offers);
        assert_eq!(kept.etag.as_deref(), Some("\"3\""));
        assert!(kept.offer(Mechanism::MultiplexSocket).is_some());
    }
}
