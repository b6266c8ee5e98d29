//! A plain HTTP client for tests that talk to the reference server directly: statuses are
//! answers, not errors; no proxy; every request bounded.

use std::time::Duration;

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

pub type Resp = ureq::http::Response<ureq::Body>;

/// A header of a response, as text.
pub fn header(response: &Resp, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}
