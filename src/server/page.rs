//! The live page: `GET /` with `Accept: text/html` (what a browser sends) serves one small
//! self-contained page (`page.html`, no external scripts or styles) that follows `/time`,
//! `/counter/a` and `/items/` through the browser's own `EventSource`, shows the mechanisms
//! each advertises, and changes them with buttons. Without `text/html`, `/` stays a 404 naming
//! the resources, as before.

use super::checks::allowed;
use crate::http1::{Request, Response};

/// The page, compiled in: the server needs no files at run time.
const PAGE: &str = include_str!("page.html");

/// Inline script and style only, and requests to this origin only: the page loads nothing
/// from elsewhere, and a browser enforces that it cannot.
const POLICY: &str = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'";

/// Whether the request is a browser asking for the root page.
pub(crate) fn wanted(request: &Request) -> bool {
    request.path == "/"
        && request.header_values("accept").any(|v| {
            v.split(',').any(|t| {
                t.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("text/html")
            })
        })
}

/// The page (HEAD: its head), or 405 for another method.
pub(crate) fn page(request: &Request) -> Response {
    if let Some(r) = allowed(request, "GET, HEAD, OPTIONS") {
        return r;
    }
    Response::new(200)
        .header("Content-Security-Policy", POLICY)
        .body("text/html; charset=utf-8", PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(accept: &str) -> Request {
        Request {
            method: "GET".into(),
            path: "/".into(),
            query: None,
            version: 1,
            headers: vec![("accept".into(), accept.into())],
            body: vec![],
            raw_head: vec![],
        }
    }

    #[test]
    fn browsers_get_the_page_and_it_loads_nothing_from_elsewhere() {
        assert!(wanted(&get(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(!wanted(&get("*/*")));
        assert!(!wanted(&get("application/json")));
        let page = page(&get("text/html"));
        assert_eq!(page.status, 200);
        let html = String::from_utf8(page.body).unwrap();
        assert!(html.contains("new EventSource("));
        assert!(!html.contains("<script src"), "no external scripts");
        assert!(!html.contains("<link"), "no external styles");
        assert!(
            !html.contains("innerHTML"),
            "client text goes in as text only"
        );
    }
}
