//! What a handler checks of a request before acting on it: its method against those the
//! resource has, and a JSON body; and the media type of the JSON it reads and writes.

use crate::http1::{Request, Response};

pub(crate) const JSON: &str = "application/json";

/// Answers OPTIONS, and 405 for a method the resource does not have; `None` lets it through.
pub(crate) fn allowed(request: &Request, methods: &str) -> Option<Response> {
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

/// Parses a JSON body, or answers 400.
pub(crate) fn json_body(request: &Request) -> Result<serde_json::Value, Response> {
    serde_json::from_slice(&request.body)
        .map_err(|e| Response::error(400, &format!("the body is not valid JSON: {e}")))
}
