//! What `auto` would choose for a resource, and why: a pure function of what the resource
//! advertised, for `lrwatch inspect` (and anyone embedding the library).
//!
//! The order is the contract's: a stream (reliable links first) · a socket · a long-poll ·
//! `hint-stream` · callbacks (only when notifications can be received) · plain polling; when
//! several followed resources share a multiplex endpoint, the multiplexed form of a kind comes
//! before it. A collection (changes links, and no `ETag` or a value that is a JSON list) or
//! `--changes` follows the changes feed: a changes stream · a socket · a long-poll · webhooks ·
//! reading the changes link.
//!
//! This restates the follow engine's choice (`src/follow/mod.rs`, `preference` and `usable`)
//! without the engine's run-time state (mechanisms it fell back from); the tests here pin the
//! same order.

use crate::discovery::Capabilities;
use crate::mechanism::Mechanism;

/// The circumstances of the choice besides the resource's headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Situation {
    /// Several resources are followed together (so multiplexed forms are preferred).
    pub several: bool,
    /// Webhook notifications can be received (`--callback-url` or `--callback-listen`).
    pub webhooks: bool,
    /// The changes feed is followed: asked for (`--changes`), or the resource is a collection
    /// (see [`collection`]).
    pub changes: bool,
    /// The value is asked for (`--value`), even of a collection.
    pub value: bool,
}

/// Why `auto` may not use an offered mechanism. The words say what is missing; which option
/// of a program supplies it (a callback address, the changes feed) is the program's to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unusable {
    /// A long-poll needs an ETag to wait on.
    NoETag,
    /// Webhooks need an address where notifications can be received ([`Situation::webhooks`]).
    NoWebhooks,
    /// The changes feed is followed, and the mechanism carries only the value.
    ChangesFollowed,
    /// There is no changes checkpoint to read from.
    NoCheckpoint,
    /// The value is followed, and the mechanism carries only changes ([`Situation::changes`]).
    ValueFollowed,
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unusable::NoETag => "the resource has no ETag to wait on",
            Unusable::NoWebhooks => "webhooks need an address to receive notifications at",
            Unusable::ChangesFollowed => "the collection is followed by its changes",
            Unusable::NoCheckpoint => "there is no changes checkpoint",
            Unusable::ValueFollowed => "the value is followed, not the changes",
        })
    }
}

/// One mechanism as `auto` weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weighed {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// `Ok` when `auto` may use it, else why not.
    pub usable: Result<(), Unusable>,
}

/// `auto`'s choice: the mechanism, and every offered mechanism it considered, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The mechanism chosen: the first usable one in [`Choice::considered`].
    pub mechanism: Mechanism,
    /// Whether the changes feed is followed rather than the value.
    pub changes: bool,
    /// The offered mechanisms in the order `auto` tries them, each with whether it is usable.
    pub considered: Vec<Weighed>,
}

const CHANGES_ONLY: [Mechanism; 4] = [
    Mechanism::Changes,
    Mechanism::ChangesWait,
    Mechanism::ChangesStream,
    Mechanism::ChangesCallback,
];

/// Whether the changes feed is followed: asked for, or a collection without an ETag (one with
/// an ETag is known to be a collection only from its value: see [`collection`]).
pub fn follows_changes(caps: &Capabilities, situation: Situation) -> bool {
    situation.changes || (!situation.value && collection(caps, None))
}

/// Whether a resource is a collection, to be followed by its changes feed unless the user asks
/// for its value: it offers changes links, and it has no `ETag` or its value (`value`, when
/// read) is a JSON list (form A's collection shape; web frameworks such as Express put a weak
/// ETag on every response, so an ETag alone does not make a value). A resource with an ETag
/// whose value is not a list (the test server's `/test`, an object with a feed of deltas)
/// stays a value.
pub fn collection(caps: &Capabilities, value: Option<&[u8]>) -> bool {
    let offers_changes = CHANGES_ONLY.iter().any(|m| caps.offer(*m).is_some());
    let list = || {
        value.is_some_and(|v| {
            serde_json::from_slice::<serde_json::Value>(v).is_ok_and(|v| v.is_array())
        })
    };
    offers_changes && (caps.etag.is_none() || list())
}

/// The offered mechanisms in the order `auto` tries them.
pub fn preference(caps: &Capabilities, situation: Situation) -> Vec<Mechanism> {
    if follows_changes(caps, situation) {
        return [
            Mechanism::ChangesStream,
            Mechanism::MultiplexWs,
            Mechanism::MultiplexSocket,
            Mechanism::MultiplexWait,
            Mechanism::ChangesWait,
            Mechanism::ChangesCallback,
            Mechanism::MultiplexCallbacks,
        ]
        .into_iter()
        .filter(|m| caps.offer(*m).is_some())
        .filter(|m| *m != Mechanism::MultiplexWait || situation.several)
        .chain([Mechanism::Changes])
        .collect();
    }
    let mut order = Vec::new();
    for offer in &caps.offers {
        let shared_form = match offer.mechanism {
            Mechanism::ValueStream => Some(Mechanism::MultiplexStream),
            Mechanism::ValueWait => Some(Mechanism::MultiplexWait),
            _ => None,
        };
        if let Some(m) = shared_form.filter(|m| situation.several && caps.offer(*m).is_some()) {
            order.push(m);
        }
        order.push(offer.mechanism);
    }
    let mut seen = std::collections::HashSet::new();
    order.retain(|m| seen.insert(*m));
    order
}

/// Whether `auto` may use an offered mechanism for this resource, and if not, why.
pub fn usable(
    caps: &Capabilities,
    mechanism: Mechanism,
    situation: Situation,
) -> Result<(), Unusable> {
    if mechanism == Mechanism::ValueWait && caps.etag.is_none() {
        return Err(Unusable::NoETag);
    }
    let callbacks = matches!(
        mechanism,
        Mechanism::ValueCallback | Mechanism::ChangesCallback | Mechanism::MultiplexCallbacks
    );
    if callbacks && !situation.webhooks {
        return Err(Unusable::NoWebhooks);
    }
    if follows_changes(caps, situation) {
        let value_only = matches!(
            mechanism,
            Mechanism::ValueCallback
                | Mechanism::ValueStream
                | Mechanism::ValueWait
                | Mechanism::HintStream
                | Mechanism::MultiplexStream
                | Mechanism::Poll
        );
        if value_only {
            return Err(Unusable::ChangesFollowed);
        }
        if mechanism == Mechanism::Changes && caps.offer(Mechanism::Changes).is_none() {
            return Err(Unusable::NoCheckpoint);
        }
    } else if CHANGES_ONLY.contains(&mechanism) {
        return Err(Unusable::ValueFollowed);
    }
    Ok(())
}

/// What `auto` picks for a resource with these capabilities, and why the ones before it were
/// passed over.
pub fn choose(caps: &Capabilities, situation: Situation) -> Choice {
    let considered: Vec<Weighed> = preference(caps, situation)
        .into_iter()
        .map(|mechanism| Weighed {
            mechanism,
            usable: usable(caps, mechanism, situation),
        })
        .collect();
    let mechanism = considered
        .iter()
        .find(|w| w.usable.is_ok())
        .map_or(Mechanism::Poll, |w| w.mechanism);
    Choice {
        mechanism,
        changes: follows_changes(caps, situation),
        considered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::http::{HeaderMap, HeaderValue};
    use url::Url;

    fn caps(headers: &[(&'static str, &str)]) -> Capabilities {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        Capabilities::from_headers(&map, &Url::parse("http://h/r").unwrap())
    }

    #[test]
    fn streams_first_then_long_poll_then_poll() {
        let c = caps(&[
            ("etag", "\"1\""),
            (
                "link",
                "</r>; rel=value-wait, </r?s>; rel=value-stream, </m>; rel=multiplex-wait",
            ),
        ]);
        let one = choose(&c, Situation::default());
        assert_eq!(one.mechanism, Mechanism::ValueStream);
        let several = choose(
            &c,
            Situation {
                several: true,
                ..Situation::default()
            },
        );
        assert_eq!(
            preference(
                &c,
                Situation {
                    several: true,
                    ..Situation::default()
                }
            ),
            [
                Mechanism::ValueStream,
                Mechanism::MultiplexWait,
                Mechanism::ValueWait,
                Mechanism::Poll
            ]
        );
        assert_eq!(several.mechanism, Mechanism::ValueStream);
    }

    #[test]
    fn no_etag_no_long_poll_and_callbacks_need_a_url() {
        let c = caps(&[("link", "</r>; rel=value-wait, </s/>; rel=value-callback")]);
        let choice = choose(&c, Situation::default());
        assert_eq!(choice.mechanism, Mechanism::Poll);
        let why: Vec<_> = choice
            .considered
            .iter()
            .filter_map(|w| w.usable.err())
            .collect();
        assert_eq!(why, [Unusable::NoETag, Unusable::NoWebhooks]);
    }

    #[test]
    fn collections_follow_their_changes() {
        let c = caps(&[(
            "link",
            "</i/?since=1>; rel=changes, </i/?s>; rel=changes-stream, </ws>; rel=multiplex-ws, </m>; rel=multiplex-wait",
        )]);
        let alone = choose(&c, Situation::default());
        assert!(alone.changes);
        assert_eq!(alone.mechanism, Mechanism::ChangesStream);
        assert_eq!(
            preference(&c, Situation::default()),
            [
                Mechanism::ChangesStream,
                Mechanism::MultiplexWs,
                Mechanism::Changes
            ]
        );
        let values = caps(&[
            ("etag", "\"1\""),
            ("link", "</i/?since=1>; rel=changes, </r>; rel=value-wait"),
        ]);
        let choice = choose(&values, Situation::default());
        assert!(!choice.changes);
        assert_eq!(choice.mechanism, Mechanism::ValueWait);
        assert_eq!(
            usable(&values, Mechanism::Changes, Situation::default()),
            Err(Unusable::ValueFollowed)
        );
        // An ETag on a JSON list with changes links (Express's weak ETags): a collection.
        assert!(collection(&values, Some(b"[{\"text\":\"hi\"}]")));
        assert!(collection(&values, Some(b" [] ")));
        assert!(!collection(&values, Some(b"{\"time\":3}")));
        assert!(!collection(&values, None));
        // Without changes links, a list is a value.
        let list = caps(&[("etag", "\"1\""), ("link", "</r>; rel=value-wait")]);
        assert!(!collection(&list, Some(b"[]")));
        // --value: the collection's value is followed, by value mechanisms.
        let asked = Situation {
            value: true,
            ..Situation::default()
        };
        let choice = choose(&c, asked);
        assert!(!choice.changes);
        assert_eq!(choice.mechanism, Mechanism::MultiplexWs);
    }
}
