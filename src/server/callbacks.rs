//! Webhooks (REST Hooks): `value-callback` / `callbacks`, `changes-callback` /
//! `changes-callbacks` and `multiplex-callbacks`, all served by one subscriptions collection.
//!
//! `POST /subscriptions/?uri=<resource>` (or `uri=` in the form body) with
//! `callback_uri=<url>` subscribes: 201 and the subscription's `Location`. `DELETE` on it
//! unsubscribes; `GET /subscriptions/` lists them all, so tests can check that a client left
//! nothing behind. Each subscription has its own delivery thread that sleeps on the store's
//! hub: deliveries of one subscription stay in order, a slow or dead receiver delays only its
//! own subscription, and no request thread ever waits for a receiver.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::checks::{allowed, JSON};
use super::dialect::{RequestView, ServerConfig};
use super::log::Log;
use super::multiplex::{MuxFollow, MuxUpdate, Resolved};
use super::store::{Inbox, Store, ITEMS};
use crate::http1::{Request, Response};
use crate::link::format_link;

/// The most subscriptions the server keeps.
pub(crate) const MAX_SUBSCRIPTIONS: usize = 1000;
/// The longest callback URI accepted.
const MAX_CALLBACK_URI: usize = 2048;
/// How long one delivery attempt may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// What a subscription is, as listed.
#[derive(Debug, Clone)]
struct Info {
    id: u64,
    uri: String,
    mode: &'static str,
    callback_uri: String,
}

impl Info {
    fn json(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "uri": self.uri,
            "mode": self.mode,
            "callback_uri": self.callback_uri,
            "location": format!("/subscriptions/{}", self.id),
        })
    }
}

struct Entry {
    info: Info,
    inbox: Arc<Inbox>,
}

#[derive(Default)]
struct Subs {
    next: u64,
    entries: BTreeMap<u64, Entry>,
}

/// The subscriptions of one server.
pub(crate) struct Registry {
    subs: Arc<Mutex<Subs>>,
    attempts: u32,
    backoff: Duration,
    /// False only for the fuzzing entry point ([`super::fuzz_request`]): fuzzed input names
    /// any `callback_uri`, and a fuzzer must not send requests to arbitrary hosts.
    deliver: bool,
    /// The request log: deliveries are pushes.
    log: Log,
}

impl Registry {
    /// An empty registry with the server's retry policy.
    pub(crate) fn new(cfg: &ServerConfig) -> Registry {
        Registry {
            subs: Arc::default(),
            attempts: cfg.callback_attempts.max(1),
            backoff: cfg.callback_backoff,
            deliver: true,
            log: cfg.log.clone(),
        }
    }

    /// Keeps subscriptions and their workers, but sends no notification (for fuzzing).
    pub(crate) fn without_deliveries(&mut self) {
        self.deliver = false;
    }

    /// Removes every subscription, so each delivery thread wakes and ends (for fuzzing, which
    /// makes a server per input and must not leave threads behind).
    pub(crate) fn clear(&self) {
        let entries = std::mem::take(&mut self.lock().entries);
        for entry in entries.values() {
            entry.inbox.cut();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Subs> {
        self.subs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn lock(subs: &Mutex<Subs>) -> MutexGuard<'_, Subs> {
    subs.lock().unwrap_or_else(|e| e.into_inner())
}

/// `/subscriptions/` and `/subscriptions/{id}`.
pub(crate) fn handle(
    store: &Arc<Store>,
    registry: &Registry,
    _ctx: &RequestView,
    request: &Request,
) -> Response {
    let rest = &request.path["/subscriptions/".len().min(request.path.len())..];
    if rest.is_empty() {
        if let Some(r) = allowed(request, "GET, HEAD, POST, OPTIONS") {
            return r;
        }
        if request.method == "POST" {
            return subscribe(store, registry, request);
        }
        let list: Vec<Value> = registry
            .lock()
            .entries
            .values()
            .map(|e| e.info.json())
            .collect();
        return Response::new(200).body(JSON, Value::Array(list).to_string());
    }
    if let Some(r) = allowed(request, "GET, HEAD, DELETE, OPTIONS") {
        return r;
    }
    let Some(id) = rest.parse::<u64>().ok() else {
        return Response::error(404, "no such subscription");
    };
    let mut subs = registry.lock();
    match request.method.as_str() {
        "DELETE" => match subs.entries.remove(&id) {
            Some(entry) => {
                // Wakes its delivery thread, which sees it is no longer registered and ends.
                entry.inbox.cut();
                Response::new(204)
            }
            None => Response::error(404, "no such subscription (already deleted?)"),
        },
        _ => match subs.entries.get(&id) {
            Some(entry) => Response::new(200).body(JSON, entry.info.json().to_string()),
            None => Response::error(404, "no such subscription"),
        },
    }
}

fn subscribe(store: &Arc<Store>, registry: &Registry, request: &Request) -> Response {
    let mut uri = super::dialect::query_param(request, "uri");
    let mut callback_uri = None;
    for (name, value) in url::form_urlencoded::parse(&request.body) {
        match name.as_ref() {
            "callback_uri" => callback_uri = Some(value.into_owned()),
            "uri" if uri.is_none() => uri = Some(value.into_owned()),
            _ => {}
        }
    }
    let Some(uri) = uri else {
        return Response::error(
            400,
            "name the resource: ?uri=<resource> or uri= in the form body",
        );
    };
    let Some(callback_uri) = callback_uri else {
        return Response::error(
            400,
            "the form body needs callback_uri=<url to POST notifications to>",
        );
    };
    let valid_callback = callback_uri.len() <= MAX_CALLBACK_URI
        && url::Url::parse(&callback_uri)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if !valid_callback {
        return Response::error(400, "callback_uri must be an absolute http(s) URL");
    }
    let host = request.header("host").unwrap_or("localhost");
    let base = format!("http://{host}");
    let resource = match resource_url(&base, &uri) {
        Ok(resource) => resource,
        Err(why) => return Response::error(400, &why),
    };
    let store = Arc::clone(store);
    let mode = match super::multiplex::resolve(&store, &uri) {
        Ok(Resolved::Value(_)) => "value",
        Ok(Resolved::Changes(_)) => "changes",
        Err((code, reason)) => return Response::error(code, &reason),
    };
    // Subscribed to the hub before the first look, so nothing in between is missed.
    let sub = store.hub().subscribe();
    let mut follow = match MuxFollow::new(&store, &uri, None) {
        Ok(f) => f,
        Err((code, reason)) => return Response::error(code, &reason),
    };
    sub.add(follow.key());
    let _ = follow.poll(&store);
    let info = {
        let mut subs = registry.lock();
        if subs.entries.len() >= MAX_SUBSCRIPTIONS {
            return Response::error(503, "too many subscriptions: DELETE some first");
        }
        subs.next += 1;
        let info = Info {
            id: subs.next,
            uri: uri.clone(),
            mode,
            callback_uri: callback_uri.clone(),
        };
        subs.entries.insert(
            info.id,
            Entry {
                info: info.clone(),
                inbox: Arc::clone(sub.inbox()),
            },
        );
        info
    };
    let worker = Worker {
        id: info.id,
        subs: Arc::clone(&registry.subs),
        store,
        callback_uri,
        base,
        resource,
        attempts: registry.attempts,
        backoff: registry.backoff,
        deliver: registry.deliver,
        log: registry.log.clone(),
    };
    let spawned = std::thread::Builder::new()
        .name("lrwatch-callback".into())
        .spawn(move || worker.run(&sub, follow));
    if spawned.is_err() {
        registry.lock().entries.remove(&info.id);
        return Response::error(503, "cannot start a delivery worker now");
    }
    Response::new(201)
        .header("Location", format!("/subscriptions/{}", info.id))
        .body(JSON, info.json().to_string())
}

/// The absolute URL of the resource a subscription names, which its notifications carry as
/// `Location`: `uri` is a path (resolved against this server, `base`) or an absolute URL on
/// this server's origin (the same host and port; `http`/`https` and `ws`/`wss` alike, as the
/// multiplexed forms take them); a URL elsewhere names nothing this server can watch, and is
/// refused rather than delivered under a `Location` that points to another server.
fn resource_url(base: &str, uri: &str) -> Result<String, String> {
    let here = url::Url::parse(&format!("{base}/"))
        .map_err(|_| "the request's Host is not a host".to_string())?;
    let mut url = here
        .join(uri)
        .map_err(|e| format!("{uri:?} is not a URI: {e}"))?;
    let http = match url.scheme() {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        _ => return Err(format!("{uri:?} is not an http or ws URI")),
    };
    // An absent port is the scheme's default on either side: whichever scheme the subscriber
    // used to reach this server, `Host` then carries no port.
    if url.host() != here.host() || url.port() != here.port() {
        return Err(format!(
            "{uri:?} is not on this server ({base}): name the resource by its path or by a URL on this server"
        ));
    }
    // `Location` names the resource, which is served over HTTP.
    if url.scheme() != http && url.set_scheme(http).is_err() {
        return Err(format!("{uri:?} cannot name an HTTP resource"));
    }
    url.set_fragment(None);
    Ok(url.into())
}

/// One subscription's deliveries.
struct Worker {
    id: u64,
    subs: Arc<Mutex<Subs>>,
    store: Arc<Store>,
    callback_uri: String,
    /// This server as the subscriber reached it (`http://` and its `Host`).
    base: String,
    /// The resource's absolute URL, each notification's `Location`.
    resource: String,
    attempts: u32,
    backoff: Duration,
    deliver: bool,
    log: Log,
}

impl Worker {
    fn registered(&self) -> bool {
        lock(&self.subs).entries.contains_key(&self.id)
    }

    fn run(&self, sub: &super::store::Subscription, mut follow: MuxFollow) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .timeout_global(Some(DELIVERY_TIMEOUT))
            .build()
            .into();
        loop {
            // Long sleeps: a change, an unsubscribe or a cut wakes it.
            let woke = sub.wait(Instant::now() + Duration::from_secs(3600));
            if !self.registered() {
                return;
            }
            if woke.changed.is_empty() {
                continue;
            }
            while let Some(update) = follow.poll(&self.store) {
                self.deliver(&agent, &update);
                if !self.registered() {
                    return;
                }
            }
        }
    }

    /// POSTs one notification, retrying with doubling delays, then drops it.
    fn deliver(&self, agent: &ureq::Agent, update: &MuxUpdate) {
        if !self.deliver {
            return;
        }
        let mut headers: Vec<(String, String)> = vec![("Location".into(), self.resource.clone())];
        let body = match update {
            MuxUpdate::Value { snap, .. } => {
                headers.push(("ETag".into(), snap.etag.clone()));
                snap.value.clone().unwrap_or_default()
            }
            MuxUpdate::Changes {
                items,
                next,
                previous,
                ..
            } => {
                let at = |c: u64| format!("{}{ITEMS}?since={c}", self.base);
                headers.push((
                    "Link".into(),
                    format!(
                        "{}, {}",
                        format_link(&at(*next), &["changes"], &[]),
                        format_link(&at(*previous), &["prev-changes"], &[])
                    ),
                ));
                headers.push(("Changes-Id".into(), next.to_string()));
                headers.push(("Previous-Changes-Id".into(), previous.to_string()));
                Value::Array(items.clone()).to_string()
            }
            MuxUpdate::Expired { .. } => String::new(),
        };
        let mut delay = self.backoff;
        for attempt in 1..=self.attempts {
            let mut request = agent.post(&self.callback_uri);
            for (n, v) in &headers {
                request = request.header(n.as_str(), v.as_str());
            }
            if !body.is_empty() {
                request = request.header("Content-Type", JSON);
            }
            let sent = request.send(body.as_bytes());
            let outcome = match &sent {
                Ok(response) => response.status().as_u16().to_string(),
                Err(e) => format!("failed: {e}"),
            };
            let resource = update.uri();
            self.log.delivery(&self.callback_uri, resource, &outcome);
            match sent {
                Ok(response) if response.status().is_success() => return,
                // REST Hooks: a receiver that answers 410 wants no more.
                Ok(response) if response.status().as_u16() == 410 => {
                    if let Some(entry) = lock(&self.subs).entries.remove(&self.id) {
                        entry.inbox.cut();
                    }
                    return;
                }
                _ => {}
            }
            if attempt == self.attempts || !self.registered() {
                return;
            }
            std::thread::sleep(delay);
            delay = delay.saturating_mul(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::resource_url;

    #[test]
    fn a_resource_is_a_path_or_a_url_on_this_server() {
        let here = |uri: &str| resource_url("http://127.0.0.1:8080", uri);
        let ok = |url: &str| Ok(url.to_string());
        assert_eq!(here("/counter/a"), ok("http://127.0.0.1:8080/counter/a"));
        assert_eq!(here("counter/a"), ok("http://127.0.0.1:8080/counter/a"));
        assert_eq!(
            here("http://127.0.0.1:8080/counter/a"),
            ok("http://127.0.0.1:8080/counter/a")
        );
        assert_eq!(
            here("ws://127.0.0.1:8080/items/?since=2#x"),
            ok("http://127.0.0.1:8080/items/?since=2")
        );
        for elsewhere in [
            "http://127.0.0.1:8081/counter/a",
            "http://localhost:8080/counter/a",
            "http://127.0.0.1/counter/a",
            "//example.test:8080/counter/a",
            "ftp://127.0.0.1:8080/counter/a",
        ] {
            assert!(here(elsewhere).is_err(), "{elsewhere}");
        }
        // Without a port in Host, the subscriber reached the server on its scheme's default.
        let default = |uri: &str| resource_url("http://h.test", uri);
        assert_eq!(default("https://h.test/a"), ok("https://h.test/a"));
        assert_eq!(default("wss://h.test/a"), ok("https://h.test/a"));
        assert!(default("http://h.test:8080/a").is_err());
    }
}
