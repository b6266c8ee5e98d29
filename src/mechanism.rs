//! The live-update mechanisms of the protocol, named by their link relations.

use std::fmt;
use std::str::FromStr;

/// A way to learn about changes, named by its link relation (`poll` for plain polling).
///
/// Draft-form (C) mechanisms are named by their equivalent: an `alternate` event-stream link is
/// [`Mechanism::ValueStream`], `LiveResource-Property: wait` is [`Mechanism::ValueWait`],
/// `multiplex-request` is [`Mechanism::MultiplexWait`], `callbacks` is
/// [`Mechanism::ValueCallback`], `changes-callbacks` is [`Mechanism::ChangesCallback`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    /// Server-Sent Events of values.
    ValueStream,
    /// One WebSocket for many resources, JSON messages (form A).
    MultiplexWs,
    /// One WebSocket for many resources, text-framed messages (forms B, C).
    MultiplexSocket,
    /// Long-poll the value with `If-None-Match` and a wait.
    ValueWait,
    /// Server-Sent Events of bare "it changed" hints.
    HintStream,
    /// One long-poll for many resources.
    MultiplexWait,
    /// One SSE stream for many resources.
    MultiplexStream,
    /// Webhook subscriptions for the value.
    ValueCallback,
    /// One webhook registration endpoint for many resources.
    MultiplexCallbacks,
    /// Changes since a checkpoint.
    Changes,
    /// Changes since a checkpoint, long-polled.
    ChangesWait,
    /// Server-Sent Events of changes.
    ChangesStream,
    /// Webhook subscriptions for changes.
    ChangesCallback,
    /// Plain polling: always possible.
    Poll,
    /// A live URL given directly that answers with an event stream (`text/event-stream`),
    /// not a LiveResource mechanism: never advertised, never chosen by `auto`.
    EventStream,
    /// A live URL given directly that answers with JSON lines (NDJSON, JSON Lines, RFC 7464
    /// JSON text sequences, or JSON that keeps streaming).
    JsonLines,
    /// A `ws://` or `wss://` URL given directly.
    WebSocket,
}

impl Mechanism {
    /// Every mechanism, in the order `auto` prefers them (see the contract).
    pub const ALL: [Mechanism; 14] = [
        Mechanism::ValueStream,
        Mechanism::MultiplexWs,
        Mechanism::MultiplexSocket,
        Mechanism::ValueWait,
        Mechanism::HintStream,
        Mechanism::MultiplexWait,
        Mechanism::MultiplexStream,
        Mechanism::ValueCallback,
        Mechanism::MultiplexCallbacks,
        Mechanism::Changes,
        Mechanism::ChangesWait,
        Mechanism::ChangesStream,
        Mechanism::ChangesCallback,
        Mechanism::Poll,
    ];

    /// The link relation name (`poll` for plain polling).
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::ValueStream => "value-stream",
            Mechanism::MultiplexWs => "multiplex-ws",
            Mechanism::MultiplexSocket => "multiplex-socket",
            Mechanism::ValueWait => "value-wait",
            Mechanism::HintStream => "hint-stream",
            Mechanism::MultiplexWait => "multiplex-wait",
            Mechanism::MultiplexStream => "multiplex-stream",
            Mechanism::ValueCallback => "value-callback",
            Mechanism::MultiplexCallbacks => "multiplex-callbacks",
            Mechanism::Changes => "changes",
            Mechanism::ChangesWait => "changes-wait",
            Mechanism::ChangesStream => "changes-stream",
            Mechanism::ChangesCallback => "changes-callback",
            Mechanism::Poll => "poll",
            Mechanism::EventStream => "event-stream",
            Mechanism::JsonLines => "json-lines",
            Mechanism::WebSocket => "websocket",
        }
    }

    /// The mechanism a link relation advertises, accepting every form's name for it.
    ///
    /// `alternate` is not here: it is a value stream only with `type=text/event-stream`,
    /// which discovery checks.
    pub fn from_rel(rel: &str) -> Option<Mechanism> {
        Some(match rel {
            "value-wait" => Mechanism::ValueWait,
            "value-stream" => Mechanism::ValueStream,
            "value-callback" | "callbacks" => Mechanism::ValueCallback,
            "changes" => Mechanism::Changes,
            "changes-wait" => Mechanism::ChangesWait,
            "changes-stream" => Mechanism::ChangesStream,
            "changes-callback" | "changes-callbacks" => Mechanism::ChangesCallback,
            "hint-stream" => Mechanism::HintStream,
            "multiplex-wait" | "multiplex-request" => Mechanism::MultiplexWait,
            "multiplex-stream" => Mechanism::MultiplexStream,
            "multiplex-ws" => Mechanism::MultiplexWs,
            "multiplex-socket" => Mechanism::MultiplexSocket,
            "multiplex-callbacks" => Mechanism::MultiplexCallbacks,
            _ => return None,
        })
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of the contract's mechanism names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMechanism(pub String);

impl fmt::Display for UnknownMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown transport '{}'", self.0)
    }
}

impl std::error::Error for UnknownMechanism {}

impl FromStr for Mechanism {
    type Err = UnknownMechanism;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownMechanism(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Mechanism::ALL {
            assert_eq!(m.as_str().parse::<Mechanism>(), Ok(m));
        }
        assert!("bogus".parse::<Mechanism>().is_err());
    }

    #[test]
    fn every_form_name_maps() {
        assert_eq!(
            Mechanism::from_rel("multiplex-request"),
            Some(Mechanism::MultiplexWait)
        );
        assert_eq!(
            Mechanism::from_rel("callbacks"),
            Some(Mechanism::ValueCallback)
        );
        assert_eq!(
            Mechanism::from_rel("changes-callbacks"),
            Some(Mechanism::ChangesCallback)
        );
        assert_eq!(Mechanism::from_rel("alternate"), None);
        assert_eq!(Mechanism::from_rel("prev-changes"), None);
    }
}
