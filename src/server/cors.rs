//! CORS, so that a page from another origin can follow this server with `fetch` and
//! `EventSource`: which origin may read the answers (`serve --cors`), which of the protocol's
//! headers scripts may see, and the answer to a browser's preflight.
//!
//! The headers depend on the switch only, never on the request's `Origin`, so caches need no
//! `Vary` and a streamed head (which is written without the request at hand) gets the same ones.

use std::fmt;
use std::str::FromStr;

use crate::http1::{Request, Response};

/// The protocol's response headers a script may read (`Access-Control-Expose-Headers`):
/// without this a page sees none of them but the few CORS calls safe.
pub(crate) const EXPOSED: &str = "ETag, Previous-ETag, Changes-Id, Previous-Changes-Id, Link, \
     X-Poll-Interval, LiveResource-Property, Location";
/// The request headers the protocol sends, which a preflight allows.
pub(crate) const ALLOWED_HEADERS: &str =
    "If-None-Match, Wait, Prefer, Uri, Last-Event-ID, Content-Type";
/// How long a browser may keep a preflight's answer, in seconds: a day, so a page's long-polls
/// do not each cost an extra round trip.
pub(crate) const MAX_AGE: u32 = 86_400;

/// Which origins may read this server's answers (`lrwatch serve --cors`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Cors {
    /// Any origin (`*`): a public test server, like the protocol's own.
    #[default]
    Any,
    /// One origin, such as `http://localhost:3000`.
    Origin(String),
    /// No CORS headers at all: only pages of the server's own origin can read it.
    Off,
}

impl FromStr for Cors {
    type Err = String;
    fn from_str(s: &str) -> Result<Cors, String> {
        match s.trim() {
            "*" => Ok(Cors::Any),
            off if off.eq_ignore_ascii_case("off") => Ok(Cors::Off),
            origin => {
                // An origin is scheme://host[:port] with nothing after it, which is what
                // browsers compare against; a path or a stray character would never match.
                let parsed = url::Url::parse(origin)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
                match parsed {
                    Some(u) if u.origin().ascii_serialization() == origin => {
                        Ok(Cors::Origin(origin.to_owned()))
                    }
                    _ => Err(format!(
                        "'{origin}' is not an origin: use *, off, or one like http://localhost:3000 (no path, no trailing slash)"
                    )),
                }
            }
        }
    }
}

impl fmt::Display for Cors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cors::Any => f.write_str("*"),
            Cors::Origin(o) => f.write_str(o),
            Cors::Off => f.write_str("off"),
        }
    }
}

impl Cors {
    /// The headers every response carries (none when off).
    pub(crate) fn headers(&self) -> Vec<(String, String)> {
        let origin = match self {
            Cors::Any => "*",
            Cors::Origin(o) => o.as_str(),
            Cors::Off => return Vec::new(),
        };
        vec![
            ("Access-Control-Allow-Origin".to_owned(), origin.to_owned()),
            (
                "Access-Control-Expose-Headers".to_owned(),
                EXPOSED.to_owned(),
            ),
        ]
    }

    /// Adds the CORS headers to an answer; a preflight (`OPTIONS` with
    /// `Access-Control-Request-Method`) that the resource answered with its `Allow` also gets
    /// the methods, the protocol's request headers and how long to remember them.
    pub(crate) fn apply(&self, request: &Request, mut response: Response) -> Response {
        if *self == Cors::Off {
            return response;
        }
        let preflight = request.method == "OPTIONS"
            && request.header("access-control-request-method").is_some()
            && response.status == 204;
        if preflight {
            let methods = response
                .get("allow")
                .unwrap_or("GET, HEAD, OPTIONS")
                .to_owned();
            response = response
                .header("Access-Control-Allow-Methods", methods)
                .header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
                .header("Access-Control-Max-Age", MAX_AGE.to_string());
        }
        for (name, value) in self.headers() {
            response = response.header(&name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_switch() {
        assert_eq!("*".parse::<Cors>(), Ok(Cors::Any));
        assert_eq!("OFF".parse::<Cors>(), Ok(Cors::Off));
        assert_eq!(
            "http://localhost:3000".parse::<Cors>(),
            Ok(Cors::Origin("http://localhost:3000".into()))
        );
        for bad in [
            "localhost:3000",
            "http://localhost:3000/",
            "http://a/b",
            "ftp://a",
            "",
            "http://a\r\nX: y",
        ] {
            assert!(bad.parse::<Cors>().is_err(), "{bad:?}");
        }
        assert!(Cors::Off.headers().is_empty());
        assert_eq!(Cors::Any.to_string(), "*");
    }
}
