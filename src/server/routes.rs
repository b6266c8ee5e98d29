//! Routing: which resource a request names, and which module serves it. The resources and
//! mechanisms have their own modules; this one only dispatches to them.

use std::sync::Arc;

use super::app::App;
use super::checks::{allowed, JSON};
use super::dialect::RequestView;
use super::store;
use super::{callbacks, collection, multiplex, objects, page, ws};
use crate::http1::{Reply, Request, Response};

const TIME_METHODS: &str = "GET, HEAD, OPTIONS";
const COUNTER_METHODS: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS";
const OBJECT_METHODS: &str = "GET, HEAD, PUT, DELETE, OPTIONS";
const PLAIN_METHODS: &str = "GET, HEAD, PUT, DELETE, OPTIONS";

/// Answers one request.
pub(crate) fn handle(app: &Arc<App>, request: &Request) -> Reply {
    let path = request.path.as_str();
    let ctx = match RequestView::new(app.cfg.dialect, request) {
        Ok(ctx) => ctx,
        Err(response) => return response.into(),
    };
    let store = &app.store;
    if page::wanted(request) {
        return page::page(request).into();
    }
    if path == "/time" {
        if let Some(r) = allowed(request, TIME_METHODS) {
            return r.into();
        }
        return objects::object_get(app, &ctx, request, store::TIME);
    }
    if let Some(id) = path.strip_prefix("/counter/").filter(|id| valid_id(id)) {
        if let Some(r) = allowed(request, COUNTER_METHODS) {
            return r.into();
        }
        return objects::counter(app, &ctx, request, id);
    }
    if let Some(name) = path.strip_prefix("/objects/").filter(|id| valid_id(id)) {
        if let Some(r) = allowed(request, OBJECT_METHODS) {
            return r.into();
        }
        return objects::object(app, &ctx, request, name);
    }
    if let Some(id) = path.strip_prefix("/plain/").filter(|id| valid_id(id)) {
        return allowed(request, PLAIN_METHODS)
            .unwrap_or_else(|| objects::plain(store, request, id))
            .into();
    }
    if path == "/items/" || path.starts_with("/items/") {
        return collection::handle(app, &ctx, request);
    }
    if let Some(which) = path.strip_prefix("/multiplex/") {
        return match which {
            "wait" => multiplex::wait(&app.store, &app.cfg, &ctx, request),
            "stream" => multiplex::stream(&app.store, &app.cfg, &ctx, request),
            "ws" => ws::multiplex_ws(app, &ctx, request),
            "socket" => ws::multiplex_socket(app, &ctx, request),
            _ => not_found(path),
        };
    }
    if path == "/subscriptions/" || path.starts_with("/subscriptions/") {
        return callbacks::handle(&app.store, &app.callbacks, &ctx, request).into();
    }
    if path == "/_control/cut" {
        if let Some(r) = allowed(request, "POST, OPTIONS") {
            return r.into();
        }
        let cut = store.hub().cut_all();
        return Response::new(200)
            .body(JSON, serde_json::json!({ "cut": cut }).to_string())
            .into();
    }
    not_found(path)
}

fn not_found(path: &str) -> Reply {
    Response::error(
        404,
        &format!(
            "no resource at {path}: this server has /time, /counter/{{id}}, /objects/{{name}}, \
             /items/, /plain/{{id}}, /multiplex/{{wait,stream,ws,socket}} and /subscriptions/ \
             (and a live page at / for browsers)"
        ),
    )
    .into()
}

/// Ids are 1 to 64 characters of `[A-Za-z0-9_.-]`: safe in a path, a header and a log line.
/// `.` and `..` are refused: clients resolve them away as dot-segments (RFC 3986, 5.2.4), so
/// such a resource could not be addressed, nor its `Link` followed.
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::dialect::ServerConfig;

    fn app() -> Arc<App> {
        App::new(ServerConfig::default())
    }

    fn call(app: &Arc<App>, request: &Request) -> Response {
        handle(app, request).response()
    }

    fn get(path: &str, headers: &[(&str, &str)]) -> Request {
        request("GET", path, headers, b"")
    }

    fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        Request::for_test(method, path, headers, body)
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
        let store = app();
        for path in ["/", "/counter/", "/counter/a/b", "/plain/é", "/times"] {
            assert_eq!(call(&store, &get(path, &[])).status, 404, "{path}");
        }
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let store = app();
        let response = call(&store, &request("POST", "/time", &[], b""));
        assert_eq!(response.status, 405);
        assert_eq!(response.get("allow"), Some(TIME_METHODS));
        let response = call(&store, &request("POST", "/plain/a", &[], b""));
        assert_eq!(response.get("allow"), Some(PLAIN_METHODS));
        let response = call(&store, &request("OPTIONS", "/counter/a", &[], b""));
        assert_eq!(response.status, 204);
        assert_eq!(response.get("allow"), Some(COUNTER_METHODS));
    }
}
