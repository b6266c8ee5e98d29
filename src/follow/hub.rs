//! Multiplexing: one connection per advertised multiplex endpoint, shared by every followed
//! resource that uses it. A hub thread owns the connection; each resource's follower joins it
//! with an inbox and keeps its own state (deduplication, catch-up), so a multiplexed resource
//! behaves exactly like one followed alone.
//!
//! This module holds what hubs and their followers say to each other and a hub's record of
//! its members; `hubs` starts the hub threads, the transports' modules run them.

use std::collections::HashMap;
use std::sync::Arc;

use url::Url;

use super::Push;

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
    /// A message over the size limit (`Options::max_body`) came: reconnecting would only
    /// read it again. In words, without the option's name (the binary adds it).
    TooLarge(String),
    /// The connection failed; `failures` in a row so far. The hub retries with backoff.
    Down { reason: String, failures: u32 },
    /// Time for the safety-net check (`--verify`): a conditional GET of the resource.
    Verify,
    /// A line for the verbose trace, about the connection.
    Trace(String),
}

/// Where a hub delivers one follower's events: a parked follower's mailbox (see `parked`).
pub(super) trait Inbox: Send + Sync + std::fmt::Debug {
    /// Delivers an event (waiting for room while the follower is far behind); it comes back
    /// when the follower has left.
    fn send(self: Arc<Self>, event: HubEvent) -> Result<(), HubEvent>;
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
    pub inbox: Arc<dyn Inbox>,
    /// The resource's own multiplexed long-poll endpoint, if it offers one (with its relation):
    /// a socket hub checks its members together there (`--verify`).
    pub check: Option<(Url, String)>,
}

/// What a hub thread receives.
#[derive(Debug)]
pub(super) enum HubInput {
    Subscribe(Sub),
    Unsubscribe(Url),
    /// From a hub's own reader thread (multiplex-stream): connection `generation` is open.
    StreamOpened(u64),
    /// From a hub's own reader thread (multiplex-stream): an event of connection `generation`.
    Stream(u64, crate::wire::sse::Event),
    /// From a hub's own reader thread: connection `generation` ended, and why.
    StreamEnded(u64, String),
    /// From a socket hub's own checking thread: how many resources a multiplexed check asked
    /// about at the endpoint, and the names (as asked) it found changed or could not check:
    /// those members check themselves.
    Checked {
        endpoint: Url,
        asked: usize,
        suspects: Vec<String>,
    },
    /// A member's check found a change the connection did not deliver (the server may have
    /// forgotten the whole connection's subscriptions): reconnect, unless the connection is
    /// newer than the check that began at this instant.
    Reconnect(std::time::Instant),
}

/// The hub's record of one subscriber.
#[derive(Debug)]
pub(super) struct Member {
    pub url: Url,
    pub name: String,
    pub changes: bool,
    pub etag: Option<String>,
    pub inbox: Arc<dyn Inbox>,
    pub check: Option<(Url, String)>,
}

/// The subscribers of one hub, by resource URL, and by the name the server knows them by.
#[derive(Debug)]
pub(super) struct Members {
    pub by_url: HashMap<String, Member>,
    /// Absolute form of each member's name → its key.
    by_name: HashMap<String, String>,
    /// Absolute form of each member's name without its query → the keys of the members
    /// named so: servers that know only paths answer by path (see `key_for`).
    by_path: HashMap<String, Vec<String>>,
    /// What names are resolved against.
    base: Url,
}

impl Members {
    /// No members yet; names resolve against `base` (the endpoint).
    pub(super) fn new(base: &Url) -> Members {
        Members {
            by_url: HashMap::new(),
            by_name: HashMap::new(),
            by_path: HashMap::new(),
            base: base.clone(),
        }
    }

    /// A name as the URL it stands for: resolved against the endpoint, `ws`/`wss` written
    /// `http`/`https` (a socket's messages may name resources either way).
    fn absolute(&self, name: &str) -> String {
        self.resolve(name)
            .map_or_else(|| name.to_string(), |u| u.to_string())
    }

    fn resolve(&self, name: &str) -> Option<Url> {
        let url = self.base.join(name).ok()?;
        Some(http_form(&url))
    }

    /// A name without its query and fragment, resolved as `absolute` does.
    fn path_of(&self, name: &str) -> Option<String> {
        let mut url = self.resolve(name)?;
        url.set_query(None);
        url.set_fragment(None);
        Some(url.to_string())
    }

    fn index(&mut self, name: &str, key: &str) {
        self.by_name.insert(self.absolute(name), key.to_string());
        if let Some(path) = self.path_of(name) {
            self.by_path.entry(path).or_default().push(key.to_string());
        }
    }

    fn unindex(&mut self, name: &str, key: &str) {
        let absolute = self.absolute(name);
        if self.by_name.get(&absolute).is_some_and(|k| k == key) {
            self.by_name.remove(&absolute);
        }
        if let Some(path) = self.path_of(name) {
            if let Some(keys) = self.by_path.get_mut(&path) {
                keys.retain(|k| k != key);
                if keys.is_empty() {
                    self.by_path.remove(&path);
                }
            }
        }
    }

    /// Adds a subscriber (replacing an earlier one for the same resource).
    pub(super) fn add(&mut self, sub: Sub) -> &Member {
        let key = sub.url.to_string();
        self.remove(&key);
        self.index(&sub.name, &key);
        self.by_url.insert(
            key.clone(),
            Member {
                url: sub.url,
                name: sub.name,
                changes: sub.changes,
                etag: sub.etag,
                inbox: sub.inbox,
                check: sub.check,
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
        self.unindex(&member.name, key);
        Some(member)
    }

    /// Gives a subscriber a new name (a changes checkpoint moved on).
    pub(super) fn rename(&mut self, key: &str, name: String) {
        let Some(member) = self.by_url.get_mut(key) else {
            return;
        };
        let old = std::mem::replace(&mut member.name, name.clone());
        self.unindex(&old, key);
        self.index(&name, key);
    }

    /// Sends `event` to the subscriber of `url`; forgets it when it has gone.
    pub(super) fn send(&mut self, url: &str, event: HubEvent) {
        if let Some(member) = self.by_url.get(url) {
            if Arc::clone(&member.inbox).send(event).is_err() {
                self.remove(url);
            }
        }
    }

    /// Sends an event (made fresh for each) to every subscriber.
    pub(super) fn broadcast(&mut self, event: impl Fn() -> HubEvent) {
        let gone: Vec<String> = self
            .by_url
            .iter()
            .filter(|(_, m)| Arc::clone(&m.inbox).send(event()).is_err())
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            self.remove(&key);
        }
    }

    /// The subscriber key for a URI as the server wrote it, matched tolerantly, since servers
    /// name what they answer their own way (the protocol's test server by path alone, the
    /// Express plugin as it was sent): the name it was asked by or the resource, as written
    /// or resolved against the endpoint (`ws` taken as `http`); else, when exactly one
    /// member's name has that path (any query), that member. None when it names nothing
    /// asked, or more than one.
    pub(super) fn key_for(&self, uri: &str) -> Option<String> {
        // A name as written resolves to itself, so resolving both sides covers "as written".
        let absolute = self.absolute(uri);
        if let Some(key) = self.by_name.get(&absolute) {
            return Some(key.clone());
        }
        if self.by_url.contains_key(&absolute) {
            return Some(absolute);
        }
        match self.by_path.get(&self.path_of(uri)?)?.as_slice() {
            [only] => Some(only.clone()),
            _ => None,
        }
    }

    /// What this hub asks for, for messages: each member's name, at most a few.
    pub(super) fn asked(&self) -> String {
        const SHOWN: usize = 3;
        let mut names: Vec<&str> = self.by_url.values().map(|m| m.name.as_str()).collect();
        names.sort_unstable();
        let more = names.len().saturating_sub(SHOWN);
        let mut text = names.into_iter().take(SHOWN).collect::<Vec<_>>().join(", ");
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
        text
    }
}

/// The http(s) URL of an endpoint that may be advertised as ws(s): resources are compared and
/// named against it; the WebSocket hubs map it back.
pub(super) fn http_form(url: &url::Url) -> url::Url {
    let mut url = url.clone();
    let scheme = match url.scheme() {
        "ws" => "http",
        "wss" => "https",
        _ => return url,
    };
    // Changing between these special schemes cannot fail.
    let _ = url.set_scheme(scheme);
    url
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

    /// An inbox that takes every event and drops it: these tests look only at names.
    #[derive(Debug)]
    struct Discard;

    impl Inbox for Discard {
        fn send(self: Arc<Self>, _: HubEvent) -> Result<(), HubEvent> {
            Ok(())
        }
    }

    fn members(endpoint: &str, names: &[(&str, &str)]) -> Members {
        let mut members = Members::new(&Url::parse(endpoint).unwrap());
        for (url, name) in names {
            members.add(Sub {
                url: Url::parse(url).unwrap(),
                name: (*name).to_string(),
                changes: false,
                etag: None,
                inbox: Arc::new(Discard),
                check: None,
            });
        }
        members
    }

    #[test]
    fn answers_are_matched_to_what_was_asked_tolerantly() {
        let test = "http://h:1/test?types=multiplex-wait";
        let other = "http://o:2/x?a=1";
        let m = members(
            "http://h:1/multi",
            &[(test, "/test?types=multiplex-wait"), (other, other)],
        );
        let key = |uri: &str| m.key_for(uri);
        // Exactly as asked; resolved against the endpoint; as the resource; ws as http.
        assert_eq!(key("/test?types=multiplex-wait").as_deref(), Some(test));
        assert_eq!(key("test?types=multiplex-wait").as_deref(), Some(test));
        assert_eq!(key(test).as_deref(), Some(test));
        assert_eq!(
            key("ws://h:1/test?types=multiplex-wait").as_deref(),
            Some(test)
        );
        assert_eq!(key(other).as_deref(), Some(other));
        // By path alone (the protocol's test server), when one asked resource has it.
        assert_eq!(key("/test").as_deref(), Some(test));
        assert_eq!(key("/test?other").as_deref(), Some(test));
        assert_eq!(key("http://o:2/x").as_deref(), Some(other));
        // Nothing asked: another path, or the same path on another origin.
        assert_eq!(key("/elsewhere"), None);
        assert_eq!(key("http://o:2/test"), None);
        assert_eq!(key("/x"), None);
    }

    #[test]
    fn a_path_two_asked_resources_share_names_neither() {
        let (a, b) = ("http://h:1/c?id=a", "http://h:1/c?id=b");
        let mut m = members("http://h:1/multi", &[(a, "/c?id=a"), (b, "/c?id=b")]);
        assert_eq!(m.key_for("/c"), None, "ambiguous");
        assert_eq!(m.key_for("/c?id=b").as_deref(), Some(b));
        // With one of them gone, the path is the other's again.
        m.remove(a);
        assert_eq!(m.key_for("/c").as_deref(), Some(b));
        // A renamed member (a changes checkpoint moved on) is found by its new name and path.
        m.rename(b, "/feed?after=7".into());
        assert_eq!(m.key_for("/feed?after=7").as_deref(), Some(b));
        assert_eq!(m.key_for("/feed").as_deref(), Some(b));
        assert_eq!(m.key_for("/c?id=a"), None, "gone");
        assert_eq!(
            m.key_for("/c?id=b").as_deref(),
            Some(b),
            "still the resource"
        );
    }

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
