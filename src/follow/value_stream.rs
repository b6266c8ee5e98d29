//! The `value-stream` transport: Server-Sent Events carrying values. Form A sends unnamed
//! events whose data is the value (empty: deleted); forms B and C send `open` and `update`
//! events whose first data line is a JSON headers object (`ETag`, `Previous-ETag`,
//! `Content-Type`) and the rest the content; an `update` with no data is a hint.

use super::sse::{self, header, headers_and_content, Flow};
use super::{Ctx, Next, Push};
use crate::mechanism::Mechanism;
use crate::wire::sse::Event;

const SELF: Mechanism = Mechanism::ValueStream;

/// Follows the value stream until shutdown or a fall back.
pub(super) fn run(ctx: &mut Ctx) -> Next {
    sse::run(ctx, SELF, handle)
}

fn handle(ctx: &mut Ctx, event: Event) -> Flow {
    let keep_going = match event.event.as_str() {
        "message" if event.data.is_empty() => ctx.apply_push(Push::default(), SELF),
        "message" => ctx.apply_push(
            Push {
                body: Some((event.data.into_bytes(), None)),
                ..Push::default()
            },
            SELF,
        ),
        // An `open` without data only starts the stream; the catch-up at connect covers it.
        "open" if event.data.is_empty() => true,
        "update" if event.data.is_empty() => ctx.catch_up(SELF),
        "open" | "update" => match headers_and_content(&event.data) {
            Some((headers, content)) => {
                let push = Push {
                    headers: Vec::new(),
                    etag: header(&headers, "ETag").map(str::to_string),
                    previous_etag: header(&headers, "Previous-ETag").map(str::to_string),
                    body: content.map(|c| {
                        (
                            c.as_bytes().to_vec(),
                            header(&headers, "Content-Type").map(str::to_string),
                        )
                    }),
                };
                ctx.apply_push(push, SELF)
            }
            None => {
                ctx.trace(format!(
                    "an {} event without a headers line; fetching instead",
                    event.event
                ));
                ctx.catch_up(SELF)
            }
        },
        other => {
            ctx.trace(format!("ignoring a '{other}' event"));
            true
        }
    };
    if keep_going {
        Flow::Continue
    } else {
        Flow::Stop
    }
}
