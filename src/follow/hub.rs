//! Multiplexing: one connection per advertised multiplex endpoint, shared by every followed
//! resource that uses it. A hub thread owns the connection; each resource's follower joins it
//! with an inbox and keeps its own state (deduplication, catch-up), so a multiplexed resource
//! behaves exactly like one followed alone.

use std::collections::HashMap;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

use url::Url;

use super::parked::Mailbox;
use super::{Push, Shared};
use crate::mechanism::Mechanism;

/// What a hub tells one resource's follower.
#[derive(Debug)]
pub(super) enum HubEvent {
    /// The subscription is in place on a (new) connection: catch up once.
    Connected,
    /// A new value (or a deletion) arrived.
    /// (Boxed: events wait in queues, a mailbox's or a webhook follower's channel, whose slots
    /// are as large as the largest kind.)
    Push(Box<Push>),
    /// "It changed": fetch it.
    Hint,
    /// The server refused the subscription.
    Refused(String),
    /// The connection failed; `failures` in a row so far. The hub retries with backoff.
    Down { reason: String, failures: u32 },
    /// Time for the safety-net check (`--verify`): a conditional GET of the resource.
    Verify,
}

/// A follower joining a hub.
#[derive(Debug)]
pub(super) struct Sub {
    /// The resource (absolute): the key the follower is known by.
    pub url: Url,
    /// What to call it to the server: the resource, or in changes mode its checkpoint (as
    /// `uri_for` writes it).
    pub name: String,
    /// Whether it follows changes rather than a value.
    pub changes: bool,
    /// The ETag the follower holds.
    pub etag: Option<String>,
    /// Where the hub sends its events.
    pub inbox: Arc<Mailbox>,
}

/// What a hub thread receives.
#[derive(Debug)]
pub(super) enum HubInput {
    Subscribe(Sub),
    Unsubscribe(Url),
    /// From a hub's own reader thread (multiplex-stream): an event of connection `generation`.
    Stream(u64, crate::wire::sse::Event),
    /// From a hub's own reader thread: connection `generation` ended, and why.
    StreamEnded(u64, String),
    /// A member's check found a change the connection did not deliver (the server may have
    /// forgotten the whole connection's subscriptions): reconnect, unless the connection is
    /// newer than the check that began at this instant.
    Reconnect(std::time::Instant),
}

/// The hubs of one follow, by mechanism and endpoint.
#[derive(Debug, Default)]
pub(super) struct Hubs {
    map: Mutex<HashMap<(Mechanism, String), Sender<HubInput>>>,
}

impl Hubs {
    /// Subscribes `sub` through the hub for `mechanism` at `endpoint`, starting it if needed.
    /// `rel` is the relation that advertised the endpoint (its request form may differ).
    pub(super) fn join(
        &self,
        shared: &Arc<Shared>,
        mechanism: Mechanism,
        rel: &str,
        endpoint: &Url,
        sub: Sub,
    ) -> Sender<HubInput> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let key = (mechanism, endpoint.to_string());
        let mut input = HubInput::Subscribe(sub);
        if let Some(tx) = map.get(&key) {
            match tx.send(input) {
                Ok(()) => return tx.clone(),
                // The hub ended (it cannot, but never leave a follower stranded): start anew.
                Err(mpsc::SendError(back)) => input = back,
            }
        }
        let (tx, rx) = mpsc::channel();
        let _ = tx.send(input);
        let hub_shared = Arc::clone(shared);
        let hub_tx = tx.clone();
        let endpoint = endpoint.clone();
        let rel = rel.to_string();
        let spawned = std::thread::Builder::new()
            .name(format!("{mechanism} {endpoint}"))
            .spawn(move || match mechanism {
                Mechanism::MultiplexWs | Mechanism::MultiplexSocket => {
                    super::websocket::run(&hub_shared, mechanism, &endpoint, &rx)
                }
                Mechanism::MultiplexWait => {
                    super::multiplex_wait::run(&hub_shared, &rel, &endpoint, &rx)
                }
                _ => super::multiplex_stream::run(&hub_shared, &endpoint, &rx, hub_tx),
            });
        if spawned.is_ok() {
            map.insert(key, tx.clone());
        }
        tx
    }
}

/// The hub's record of one subscriber.
#[derive(Debug)]
pub(super) struct Member {
    pub url: Url,
    pub name: String,
    pub changes: bool,
    pub etag: Option<String>,
    pub inbox: Arc<Mailbox>,
}

/// The subscribers of one hub, by resource URL, and by the name the server knows them by.
#[derive(Debug)]
pub(super) struct Members {
    pub by_url: HashMap<String, Member>,
    /// Absolute form of each member's name → its key.
    by_name: HashMap<String, String>,
    /// What names are resolved against.
    base: Url,
}

impl Members {
    /// No members yet; names resolve against `base` (the endpoint).
    pub(super) fn new(base: &Url) -> Members {
        Members {
            by_url: HashMap::new(),
            by_name: HashMap::new(),
            base: base.clone(),
        }
    }

    fn absolute(&self, name: &str) -> String {
        self.base
            .join(name)
            .map_or_else(|_| name.to_string(), |u| u.to_string())
    }

    /// Adds a subscriber (replacing an earlier one for the same resource).
    pub(super) fn add(&mut self, sub: Sub) -> &Member {
        let key = sub.url.to_string();
        self.remove(&key);
        self.by_name.insert(self.absolute(&sub.name), key.clone());
        self.by_url.insert(
            key.clone(),
            Member {
                url: sub.url,
                name: sub.name,
                changes: sub.changes,
                etag: sub.etag,
                inbox: sub.inbox,
            },
        );
        &self.by_url[&key]
    }

    /// The resource a shared request is made on behalf of (user headers go along only to its
    /// origin): the first subscriber's, else the endpoint itself.
    pub(super) fn on_behalf_of(&self) -> Url {
        self.by_url
            .values()
            .next()
            .map_or_else(|| self.base.clone(), |m| m.url.clone())
    }

    /// Forgets a subscriber.
    pub(super) fn remove(&mut self, key: &str) -> Option<Member> {
        let member = self.by_url.remove(key)?;
        let name = self.absolute(&member.name);
        self.by_name.remove(&name);
        Some(member)
    }

    /// Gives a subscriber a new name (a changes checkpoint moved on).
    pub(super) fn rename(&mut self, key: &str, name: String) {
        let absolute = self.absolute(&name);
        if let Some(member) = self.by_url.get_mut(key) {
            let old = std::mem::replace(&mut member.name, name);
            let old = self.base.join(&old).map_or(old, |u| u.to_string());
            self.by_name.remove(&old);
            self.by_name.insert(absolute, key.to_string());
        }
    }

    /// Sends `event` to the subscriber of `url`; forgets it when it has gone.
    pub(super) fn send(&mut self, url: &str, event: HubEvent) {
        if let Some(member) = self.by_url.get(url) {
            if member.inbox.send(event).is_err() {
                self.remove(url);
            }
        }
    }

    /// Sends an event (made fresh for each) to every subscriber.
    pub(super) fn broadcast(&mut self, event: impl Fn() -> HubEvent) {
        let gone: Vec<String> = self
            .by_url
            .iter()
            .filter(|(_, m)| m.inbox.send(event()).is_err())
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            self.remove(&key);
        }
    }

    /// The subscriber key for a URI as the server wrote it (its name, or the resource),
    /// resolved against the endpoint.
    pub(super) fn key_for(&self, uri: &str) -> Option<String> {
        let absolute = self.absolute(uri);
        if let Some(key) = self.by_name.get(&absolute) {
            return Some(key.clone());
        }
        self.by_url.contains_key(&absolute).then_some(absolute)
    }
}

/// How to name a resource to an endpoint (see [`crate::wire::multiplex::name_for`]).
pub(super) use crate::wire::multiplex::name_for as uri_for;

/// Names `targets` in the endpoint's query (form A), after the query it already has (a
/// server's own switches may travel there).
pub(super) fn set_targets(url: &mut Url, targets: &[crate::wire::multiplex::Target]) {
    let encoded = crate::wire::multiplex::encode_query(targets);
    let query = match url.query() {
        Some(existing) if !existing.is_empty() => format!("{existing}&{encoded}"),
        _ => encoded,
    };
    url.set_query(Some(&query));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_relative_on_the_same_origin() {
        let e = Url::parse("http://h:1/multiplex/ws").unwrap();
        assert_eq!(
            uri_for(&e, &Url::parse("http://h:1/counter/a?x=1").unwrap()),
            "/counter/a?x=1"
        );
        assert_eq!(
            uri_for(&e, &Url::parse("http://o:1/counter/a").unwrap()),
            "http://o:1/counter/a"
        );
    }
}
