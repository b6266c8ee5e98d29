//! lrwatch: follow web resources live over the LiveResource protocol, or plain polling.
//!
//! The library is the protocol client (and the reference server); it never prints and never
//! exits. The `lrwatch` binary owns arguments, output and exit codes.
#![deny(missing_docs)]

pub mod link;
pub mod server;
pub mod wire;

pub mod auto;
mod backoff;
pub mod check;
pub mod discovery;
pub mod error;
pub mod event;
pub mod follow;
pub mod http;
mod http1;
pub mod inspect;
mod json_text;
pub mod live;
pub mod mechanism;
pub mod proxy;
pub mod sanitize;
mod stream_buffers;
mod tcp;

pub use error::{Error, ErrorKind, Result};
pub use event::{Body, Event, EventKind, Level, Live, Notice, SseFacts, Status, Update};
pub use follow::{parse_follow_url, parse_url, Client, Follow, Interrupter, Options};
pub use mechanism::Mechanism;
