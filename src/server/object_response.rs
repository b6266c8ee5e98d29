//! An object's response: its representation with its ETag, and the headers that advertise the
//! mechanisms it offers in the request's form (the collection shares the multiplex links and
//! the poll interval).

use super::checks::JSON;
use super::dialect::{Form, RequestView};
use super::store::Snapshot;
use crate::http1::Response;

/// The `X-Poll-Interval` advertised (forms B, C), in seconds.
pub(crate) const POLL_INTERVAL: u64 = 5;
/// Form C's way of saying that the resource URI itself can be long-polled.
pub(crate) const WAIT_PROPERTY: &str = "wait; min=1";

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
        h.push(("X-Poll-Interval".to_owned(), POLL_INTERVAL.to_string()));
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

/// The answer for an object that does not exist.
pub(crate) fn gone(key: &str) -> Response {
    Response::error(
        404,
        &format!("{key} does not exist (deleted, or never set)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store;

    #[test]
    fn time_body_and_etag_agree() {
        let ctx = RequestView::plain(None);
        let response = object_response(&ctx, 200, "/time", &store::time_snapshot(1_795_851_001));
        assert_eq!(response.body, br#"{"time":"2026-11-28T07:30:01Z"}"#);
        assert_eq!(response.get("etag"), Some("\"t1795851001\""));
        assert_eq!(response.get("link"), Some("</time>; rel=\"value-wait\""));
    }
}
