//! Socket messages in both framings: `multiplex-socket` text (`lrwatch::wire::socket`) and
//! `multiplex-ws` JSON (`lrwatch::wire::ws_json`), client and server messages each.
//!
//! Byte 0 chooses: 0..=3 parse the rest as text with one of the four parsers and check that a
//! message read, written again, reads back the same; 4..=7 build a message of that kind from
//! the bytes and check that what `encode` writes, `parse` reads back as it was meant.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use lrwatch::wire::{socket, ws_json};
use lrwatch_fuzz::{unique_by_name, Json};

fuzz_target!(|data: &[u8]| {
    let [which, rest @ ..] = data else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut u = Unstructured::new(rest);
    match which % 8 {
        0 => {
            if let Ok(m) = socket::ClientMessage::parse(&text) {
                assert_eq!(socket::ClientMessage::parse(&m.encode()), Ok(m));
            }
        }
        1 => {
            // Written messages lose what the format cannot carry (line breaks in a reason),
            // so the check is that writing and reading again changes nothing further.
            if let Ok(m) = socket::ServerMessage::parse(&text) {
                let once = socket::ServerMessage::parse(&m.encode())
                    .unwrap_or_else(|e| panic!("{m:?} written as {:?}: {e}", m.encode()));
                assert_eq!(socket::ServerMessage::parse(&once.encode()), Ok(once));
            }
        }
        2 => {
            if let Ok(m) = ws_json::ClientMessage::parse(&text) {
                assert_eq!(ws_json::ClientMessage::parse(&m.encode()), Ok(m));
            }
        }
        3 => {
            if let Ok(m) = ws_json::ServerMessage::parse(&text) {
                assert_eq!(ws_json::ServerMessage::parse(&m.encode()), Ok(m));
            }
        }
        4 => {
            if let Ok(m) = ArbSocketClient::arbitrary(&mut u) {
                socket_client(m);
            }
        }
        5 => {
            if let Ok(m) = ArbSocketServer::arbitrary(&mut u) {
                socket_server(m);
            }
        }
        6 => {
            if let Ok(m) = ArbWsClient::arbitrary(&mut u) {
                ws_client(m);
            }
        }
        _ => {
            if let Ok(m) = ArbWsServer::arbitrary(&mut u) {
                ws_server(m);
            }
        }
    }
});

/// What `multiplex-socket` accepts as a URI.
fn socket_uri_ok(uri: &str) -> bool {
    !uri.is_empty()
        && uri.len() <= socket::MAX_URI
        && !uri.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[derive(Debug, Arbitrary)]
enum ArbSocketClient {
    Get(String),
    Cancel(String),
}

fn socket_client(m: ArbSocketClient) {
    let (m, uri) = match m {
        ArbSocketClient::Get(uri) => (socket::ClientMessage::Get(uri.clone()), uri),
        ArbSocketClient::Cancel(uri) => (socket::ClientMessage::Cancel(uri.clone()), uri),
    };
    let parsed = socket::ClientMessage::parse(&m.encode());
    if socket_uri_ok(&uri) {
        assert_eq!(parsed, Ok(m));
    } else {
        // A URI the format cannot carry never reads back as itself (a trailing line end is
        // read as the message's own, so "GET d\r\n" may still read as `GET d`).
        assert_ne!(parsed, Ok(m));
    }
}

#[derive(Debug, Arbitrary)]
enum ArbSocketServer {
    Ack {
        uri: String,
        status: bool,
    },
    Error {
        uri: String,
        code: u16,
        reason: String,
    },
    Update {
        uri: String,
        headers: Vec<(String, String)>,
        content: String,
    },
    Hint {
        uri: String,
    },
}

fn socket_server(m: ArbSocketServer) {
    use socket::{AckStyle, ServerMessage};
    // The message as the reader should see it: reasons lose their line breaks, a header
    // object keeps one value per name, and codes are the three digits of an HTTP status.
    let (m, want, uri) = match m {
        ArbSocketServer::Ack { uri, status } => {
            let style = if status {
                AckStyle::Status
            } else {
                AckStyle::Ok
            };
            let m = ServerMessage::Ack {
                uri: uri.clone(),
                style,
            };
            (m.clone(), m, uri)
        }
        ArbSocketServer::Error { uri, code, reason } => {
            let code = 100 + code % 900;
            let m = ServerMessage::Error {
                uri: uri.clone(),
                code,
                reason: reason.clone(),
            };
            let reason = reason
                .chars()
                .filter(|c| !matches!(c, '\r' | '\n'))
                .collect();
            (
                m,
                ServerMessage::Error {
                    uri: uri.clone(),
                    code,
                    reason,
                },
                uri,
            )
        }
        ArbSocketServer::Update {
            uri,
            headers,
            content,
        } => {
            let m = ServerMessage::Update {
                uri: uri.clone(),
                headers: unique_by_name(headers),
                content,
            };
            (m.clone(), m, uri)
        }
        ArbSocketServer::Hint { uri } => {
            let m = ServerMessage::Hint { uri: uri.clone() };
            (m.clone(), m, uri)
        }
    };
    let text = m.encode();
    let parsed = ServerMessage::parse(&text);
    if socket_uri_ok(&uri) && text.len() <= socket::MAX_MESSAGE {
        assert_eq!(parsed, Ok(want), "{text:?}");
    } else {
        assert_ne!(parsed, Ok(want), "{text:?}");
    }
}

#[derive(Debug, Arbitrary)]
enum ArbWsClient {
    Subscribe {
        id: String,
        changes: bool,
        uri: String,
    },
    Unsubscribe {
        id: String,
        changes: bool,
        uri: String,
    },
    Ping {
        id: String,
    },
}

fn mode(changes: bool) -> ws_json::Mode {
    if changes {
        ws_json::Mode::Changes
    } else {
        ws_json::Mode::Value
    }
}

fn ws_client(m: ArbWsClient) {
    use ws_json::ClientMessage;
    let (m, uri) = match m {
        ArbWsClient::Subscribe { id, changes, uri } => (
            ClientMessage::Subscribe {
                id,
                mode: mode(changes),
                uri: uri.clone(),
            },
            Some(uri),
        ),
        ArbWsClient::Unsubscribe { id, changes, uri } => (
            ClientMessage::Unsubscribe {
                id,
                mode: mode(changes),
                uri: uri.clone(),
            },
            Some(uri),
        ),
        ArbWsClient::Ping { id } => (ClientMessage::Ping { id }, None),
    };
    let parsed = ClientMessage::parse(&m.encode());
    if uri.is_none_or(|u| !u.is_empty() && u.len() <= 8 * 1024) {
        assert_eq!(parsed, Ok(m));
    } else {
        assert!(parsed.is_err(), "{m:?} read as {parsed:?}");
    }
}

#[derive(Debug, Arbitrary)]
enum ArbWsServer {
    Subscribed {
        id: String,
    },
    Unsubscribed {
        id: String,
    },
    Pong {
        id: String,
    },
    Error {
        id: Option<String>,
        code: u16,
        message: String,
    },
    Event {
        uri: String,
        headers: Vec<(String, String)>,
        body: Json,
    },
}

fn ws_server(m: ArbWsServer) {
    use ws_json::ServerMessage;
    let m = match m {
        ArbWsServer::Subscribed { id } => ServerMessage::Subscribed { id },
        ArbWsServer::Unsubscribed { id } => ServerMessage::Unsubscribed { id },
        ArbWsServer::Pong { id } => ServerMessage::Pong { id },
        ArbWsServer::Error { id, code, message } => ServerMessage::Error { id, code, message },
        ArbWsServer::Event { uri, headers, body } => ServerMessage::Event {
            uri,
            headers: unique_by_name(headers),
            body: body.0,
        },
    };
    let text = m.encode();
    if text.len() <= ws_json::MAX_MESSAGE {
        assert_eq!(ServerMessage::parse(&text), Ok(m), "{text:?}");
    }
}
