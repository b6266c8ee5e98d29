//! `multiplex-ws` JSON messages (form A): the client's `subscribe`, `unsubscribe` and `ping`,
//! each with an id; the server's `subscribed`, `unsubscribed`, `pong`, `error` replies, which
//! echo that id, and its `event` pushes.

use std::fmt;

use serde_json::{json, Map, Value};

/// The largest message either side accepts, in bytes.
pub const MAX_MESSAGE: usize = 1024 * 1024;

/// What a subscription follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The resource's value.
    Value,
    /// The collection's changes.
    Changes,
}

impl Mode {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Value => "value",
            Mode::Changes => "changes",
        }
    }
}

/// A message from the client. Ids are strings on the wire; a numeric id is read as its decimal
/// text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// Start following `uri`.
    Subscribe {
        /// Echoed in the reply.
        id: String,
        /// Value or changes.
        mode: Mode,
        /// The resource, possibly relative to the socket's URL.
        uri: String,
    },
    /// Stop following `uri`.
    Unsubscribe {
        /// Echoed in the reply.
        id: String,
        /// Value or changes.
        mode: Mode,
        /// The resource.
        uri: String,
    },
    /// Ask for a `pong`.
    Ping {
        /// Echoed in the reply.
        id: String,
    },
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// The subscription with this id is in place.
    Subscribed {
        /// The request's id.
        id: String,
    },
    /// The subscription with this id is gone.
    Unsubscribed {
        /// The request's id.
        id: String,
    },
    /// The answer to a ping.
    Pong {
        /// The request's id.
        id: String,
    },
    /// A refused or unreadable request.
    Error {
        /// The request's id, when it could be read.
        id: Option<String>,
        /// An HTTP-like status (400 malformed, 404 no such resource).
        code: u16,
        /// Why, for people.
        message: String,
    },
    /// A change of a followed resource.
    Event {
        /// The resource, as the client subscribed to it.
        uri: String,
        /// `ETag` (value mode) or `Link` with `changes` and `prev-changes` (changes mode).
        headers: Vec<(String, String)>,
        /// The new value, the changes, or `null` when the resource was deleted.
        body: Value,
    },
}

/// Why a message could not be read: with the id when it was found, so an error reply can echo it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsError {
    /// The message's id, if it had a readable one.
    pub id: Option<String>,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WsError {}

fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn str_field(object: &Map<String, Value>, name: &str) -> Option<String> {
    object.get(name).and_then(Value::as_str).map(str::to_owned)
}

impl ClientMessage {
    /// The text frame for this message.
    #[must_use]
    pub fn encode(&self) -> String {
        match self {
            ClientMessage::Subscribe { id, mode, uri } => {
                json!({"id": id, "type": "subscribe", "mode": mode.as_str(), "uri": uri})
            }
            ClientMessage::Unsubscribe { id, mode, uri } => {
                json!({"id": id, "type": "unsubscribe", "mode": mode.as_str(), "uri": uri})
            }
            ClientMessage::Ping { id } => json!({"id": id, "type": "ping"}),
        }
        .to_string()
    }

    /// Reads a client message. `mode` defaults to `value`.
    pub fn parse(text: &str) -> Result<ClientMessage, WsError> {
        let fail = |id: Option<String>, message: String| Err(WsError { id, message });
        if text.len() > MAX_MESSAGE {
            return fail(None, format!("a message over {MAX_MESSAGE} bytes"));
        }
        let object = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return fail(None, "a message must be a JSON object".into()),
            Err(e) => return fail(None, format!("a message is not JSON: {e}")),
        };
        let Some(id) = object.get("id").and_then(id_of) else {
            return fail(None, "a message needs an \"id\" (a string)".into());
        };
        let kind = str_field(&object, "type").unwrap_or_default();
        if kind == "ping" {
            return Ok(ClientMessage::Ping { id });
        }
        let mode = match object.get("mode") {
            None => Mode::Value,
            Some(Value::String(m)) if m == "value" => Mode::Value,
            Some(Value::String(m)) if m == "changes" => Mode::Changes,
            Some(_) => return fail(Some(id), "\"mode\" must be \"value\" or \"changes\"".into()),
        };
        let uri = match str_field(&object, "uri") {
            Some(uri) if !uri.is_empty() && uri.len() <= 8 * 1024 => uri,
            _ => return fail(Some(id), "a subscription needs a \"uri\"".into()),
        };
        match kind.as_str() {
            "subscribe" => Ok(ClientMessage::Subscribe { id, mode, uri }),
            "unsubscribe" => Ok(ClientMessage::Unsubscribe { id, mode, uri }),
            _ => fail(
                Some(id),
                "\"type\" must be subscribe, unsubscribe or ping".into(),
            ),
        }
    }
}

impl ServerMessage {
    /// The text frame for this message.
    #[must_use]
    pub fn encode(&self) -> String {
        match self {
            ServerMessage::Subscribed { id } => json!({"id": id, "type": "subscribed"}),
            ServerMessage::Unsubscribed { id } => json!({"id": id, "type": "unsubscribed"}),
            ServerMessage::Pong { id } => json!({"id": id, "type": "pong"}),
            ServerMessage::Error { id, code, message } => {
                json!({"id": id, "type": "error", "code": code, "message": message})
            }
            ServerMessage::Event { uri, headers, body } => {
                let headers: Map<String, Value> = headers
                    .iter()
                    .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                    .collect();
                json!({"type": "event", "uri": uri, "headers": headers, "body": body})
            }
        }
        .to_string()
    }

    /// Reads a server message.
    pub fn parse(text: &str) -> Result<ServerMessage, WsError> {
        let fail = |message: &str| {
            Err(WsError {
                id: None,
                message: message.to_owned(),
            })
        };
        if text.len() > MAX_MESSAGE {
            return fail("a message over the size limit");
        }
        let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(text) else {
            return fail("a message is not a JSON object");
        };
        let id = object.get("id").and_then(id_of);
        let need_id = |id: Option<String>| {
            id.ok_or_else(|| WsError {
                id: None,
                message: "a reply without an id".into(),
            })
        };
        match str_field(&object, "type").as_deref() {
            Some("subscribed") => Ok(ServerMessage::Subscribed { id: need_id(id)? }),
            Some("unsubscribed") => Ok(ServerMessage::Unsubscribed { id: need_id(id)? }),
            Some("pong") => Ok(ServerMessage::Pong { id: need_id(id)? }),
            Some("error") => Ok(ServerMessage::Error {
                id,
                code: object
                    .get("code")
                    .and_then(Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(400),
                message: str_field(&object, "message").unwrap_or_default(),
            }),
            Some("event") => {
                let Some(uri) = str_field(&object, "uri") else {
                    return fail("an event without a uri");
                };
                let headers = match object.remove("headers") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Object(h)) => h
                        .into_iter()
                        .filter_map(|(n, v)| v.as_str().map(|s| (n, s.to_owned())))
                        .collect(),
                    Some(_) => return fail("event headers are not an object"),
                };
                Ok(ServerMessage::Event {
                    uri,
                    headers,
                    body: object.remove("body").unwrap_or(Value::Null),
                })
            }
            _ => fail("an unknown message type"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_round_trip() {
        for m in [
            ClientMessage::Subscribe {
                id: "1".into(),
                mode: Mode::Value,
                uri: "/objectA".into(),
            },
            ClientMessage::Unsubscribe {
                id: "2".into(),
                mode: Mode::Changes,
                uri: "/items/".into(),
            },
            ClientMessage::Ping { id: "3".into() },
        ] {
            assert_eq!(ClientMessage::parse(&m.encode()).unwrap(), m);
        }
        // The protocol's example, a numeric id and a default mode.
        assert_eq!(
            ClientMessage::parse(r#"{"id":7,"type":"subscribe","uri":"/a"}"#).unwrap(),
            ClientMessage::Subscribe {
                id: "7".into(),
                mode: Mode::Value,
                uri: "/a".into()
            }
        );
    }

    #[test]
    fn bad_client_messages_say_why_and_keep_the_id() {
        for (bad, id) in [
            ("", None),
            ("[1]", None),
            ("{\"type\":\"ping\"}", None),
            ("{\"id\":null,\"type\":\"ping\"}", None),
            (
                "{\"id\":\"1\",\"type\":\"dance\",\"uri\":\"/a\"}",
                Some("1"),
            ),
            ("{\"id\":\"1\",\"type\":\"subscribe\"}", Some("1")),
            (
                "{\"id\":\"1\",\"type\":\"subscribe\",\"uri\":\"\"}",
                Some("1"),
            ),
            (
                "{\"id\":\"1\",\"type\":\"subscribe\",\"uri\":\"/a\",\"mode\":\"x\"}",
                Some("1"),
            ),
        ] {
            let e = ClientMessage::parse(bad).unwrap_err();
            assert_eq!(e.id.as_deref(), id, "{bad:?}");
            assert!(!e.message.is_empty());
        }
        let huge = format!("{{\"id\":\"{}\"}}", "x".repeat(MAX_MESSAGE));
        assert!(ClientMessage::parse(&huge).is_err());
    }

    #[test]
    fn server_messages_round_trip() {
        for m in [
            ServerMessage::Subscribed { id: "1".into() },
            ServerMessage::Unsubscribed { id: "1".into() },
            ServerMessage::Pong { id: "p".into() },
            ServerMessage::Error {
                id: Some("1".into()),
                code: 404,
                message: "no such resource".into(),
            },
            ServerMessage::Error {
                id: None,
                code: 400,
                message: "not JSON".into(),
            },
            ServerMessage::Event {
                uri: "/a".into(),
                headers: vec![("ETag".into(), "\"2\"".into())],
                body: json!({"x": 1}),
            },
            ServerMessage::Event {
                uri: "/a".into(),
                headers: vec![],
                body: Value::Null,
            },
        ] {
            assert_eq!(ServerMessage::parse(&m.encode()).unwrap(), m);
        }
        assert_eq!(
            ServerMessage::Subscribed { id: "1".into() }.encode(),
            r#"{"id":"1","type":"subscribed"}"#
        );
    }

    #[test]
    fn bad_server_messages_are_errors() {
        for bad in [
            "x",
            "{}",
            "{\"type\":\"pong\"}",
            "{\"type\":\"event\"}",
            "{\"type\":\"event\",\"uri\":\"/a\",\"headers\":[]}",
        ] {
            assert!(ServerMessage::parse(bad).is_err(), "{bad:?}");
        }
    }
}
