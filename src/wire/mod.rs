//! Wire formats shared by the client and the reference server, each written once: SSE framing,
//! multiplexed long-poll requests and answers, `multiplex-socket` text messages and
//! `multiplex-ws` JSON messages. (`Link` headers live in [`crate::link`].)
//!
//! Every parser here takes input from the other side of a network and is bounded: oversized or
//! malformed input is an error value, never a panic.

pub mod json_lines;
pub mod multiplex;
pub mod socket;
pub mod sse;
pub mod ws_json;
