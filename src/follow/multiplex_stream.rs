//! The `multiplex-stream` hub (form A): one event stream for every resource that shares the
//! endpoint, named in the query (`?u=...`); each event's data is `{"uri":..,"body":..}`,
//! `body` null or absent when the resource was deleted.
//!
//! The set of resources is fixed per connection, so a resource joining later opens a new
//! connection for the whole set; events of a replaced connection are ignored, and its reader
//! ends at its next keep-alive.

use std::io::Read;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use serde_json::Value;
use url::Url;

use super::hub::{HubEvent, HubInput, Members};
use super::{Push, Shared};
use crate::backoff::Backoff;
use crate::wire::multiplex::Target;

/// How long to gather subscribers that arrive together before connecting.
const GATHER: Duration = Duration::from_millis(20);

/// Runs the hub until following stops. `myself` feeds the reader threads' events back in.
pub(super) fn run(
    shared: &Shared,
    endpoint: &Url,
    input: &Receiver<HubInput>,
    myself: Sender<HubInput>,
) {
    let mut members = Members::new(endpoint);
    let mut backoff = Backoff::default();
    let mut generation = 0u64;
    let mut connected = false;
    // Whether the current stream delivered an event: only then (or once it stayed open a
    // keep-alive period) did it work; one that ends before is one more failure.
    let mut delivered = false;
    let mut failures = 0u32;
    // Start (or restart) the stream for the current set once subscribers arrive.
    let mut stale = false;
    // When the current stream was opened, and when its members last checked their resources.
    let mut opened = Instant::now();
    let mut last_verify = Instant::now();
    loop {
        if shared.shutdown.is_set() {
            return;
        }
        let verify = shared.options.verify.filter(|_| connected);
        let next = if stale {
            input.recv_timeout(GATHER).ok()
        } else if let Some(period) = verify {
            match input.recv_timeout(period.saturating_sub(last_verify.elapsed())) {
                Ok(i) => Some(i),
                Err(RecvTimeoutError::Timeout) => {
                    // The safety net: every member checks its resource each `--verify` period.
                    last_verify = Instant::now();
                    members.broadcast(|| HubEvent::Verify);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match input.recv() {
                Ok(i) => Some(i),
                Err(_) => return,
            }
        };
        match next {
            Some(HubInput::Reconnect(checked)) if checked > opened && !stale => {
                stale = true;
            }
            Some(HubInput::Subscribe(sub)) => {
                members.add(sub);
                stale = true;
            }
            Some(HubInput::Unsubscribe(url)) => {
                members.remove(url.as_str());
            }
            Some(HubInput::StreamOpened(g)) if g == generation => {
                // Open: the followers catch up, even before the first event.
                connected = true;
                members.broadcast(|| HubEvent::Connected);
            }
            Some(HubInput::Stream(g, event)) if g == generation => {
                delivered = true;
                deliver(&mut members, &event.text());
            }
            Some(HubInput::StreamEnded(g, reason)) if g == generation => {
                let worked =
                    delivered || (connected && opened.elapsed() >= shared.options.keepalive);
                let reason = if connected && !worked {
                    format!("{reason} before any event")
                } else {
                    reason
                };
                if worked {
                    backoff.reset();
                    failures = 0;
                }
                connected = false;
                delivered = false;
                failures += 1;
                members.broadcast(|| HubEvent::Down {
                    reason: reason.clone(),
                    failures,
                });
                if !shared.shutdown.sleep(backoff.next_delay()) {
                    return;
                }
                stale = true;
            }
            Some(_) => {}
            // Gathered: (re)connect for the whole set.
            None => {
                stale = false;
                if members.by_url.is_empty() {
                    continue;
                }
                generation += 1;
                connected = false;
                delivered = false;
                opened = Instant::now();
                last_verify = opened;
                open(shared, endpoint, &members, generation, myself.clone());
            }
        }
    }
}

/// Opens the stream on a reader thread that feeds events back to the hub.
fn open(
    shared: &Shared,
    endpoint: &Url,
    members: &Members,
    generation: u64,
    hub: Sender<HubInput>,
) {
    let targets: Vec<Target> = members
        .by_url
        .values()
        .map(|m| Target {
            uri: m.name.clone(),
            if_none_match: None,
        })
        .collect();
    let mut url = endpoint.clone();
    super::hub::set_targets(&mut url, &targets);
    let origin = members.on_behalf_of();
    let http = shared.http.clone();
    let idle = shared.options.stream_idle();
    let mut parser = shared.options.sse_parser();
    let on_failure = hub.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("multiplex-stream {endpoint}"))
        .stack_size(256 * 1024)
        .spawn(move || {
            let headers = [("Accept", "text/event-stream".to_string())];
            let ended = match http.open(&url, &origin, &headers, idle) {
                Err(e) => e.to_string(),
                Ok(stream) if stream.status != 200 => {
                    format!("HTTP {} for the stream", stream.status)
                }
                Ok(mut stream) => {
                    // A stream is open: say so even before the first event, so followers catch up.
                    let _ = hub.send(HubInput::StreamOpened(generation));
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match stream.body.read(&mut buf) {
                            Ok(0) => break "the stream ended".to_string(),
                            Ok(n) => n,
                            Err(e) => break format!("the stream broke ({e})"),
                        };
                        match parser.feed(&buf[..n]) {
                            Ok(events) => {
                                for event in events {
                                    if hub.send(HubInput::Stream(generation, event)).is_err() {
                                        return;
                                    }
                                }
                            }
                            Err(e) => break e.to_string(),
                        }
                    }
                }
            };
            let _ = hub.send(HubInput::StreamEnded(generation, ended));
        });
    if let Err(e) = spawned {
        let _ = on_failure.send(HubInput::StreamEnded(
            generation,
            format!("cannot start a reader thread: {e}"),
        ));
    }
}

/// Hands one event's `{"uri":..,"body":..}` to its follower.
fn deliver(members: &mut Members, data: &str) {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(data) else {
        return;
    };
    let Some(uri) = object.get("uri").and_then(Value::as_str) else {
        return;
    };
    let Some(key) = members.key_for(uri) else {
        return;
    };
    let body = match object.get("body") {
        None | Some(Value::Null) => None,
        Some(value) => Some((
            value.to_string().into_bytes(),
            Some("application/json".to_string()),
        )),
    };
    members.send(
        &key,
        HubEvent::Push(Box::new(Push {
            body,
            ..Push::default()
        })),
    );
}
