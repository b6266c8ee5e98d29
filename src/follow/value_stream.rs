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
    // The id of the event before: an event's `id` is the stream's last id, which an event
    // that sets none inherits; only an id that an event set names its value.
    let mut previous_id = String::new();
    sse::run(ctx, SELF, move |ctx, event| {
        let etag = (event.id != previous_id)
            .then(|| entity_tag(&event.id))
            .flatten();
        previous_id.clone_from(&event.id);
        handle(ctx, event, etag)
    })
}

/// An event id that is an entity-tag (`"…"` or `W/"…"`), as form A servers (and ours) send
/// their ETags: it is the pushed value's ETag.
pub(super) fn entity_tag(id: &str) -> Option<String> {
    let opaque = id.strip_prefix("W/").unwrap_or(id);
    let quoted = opaque.len() >= 2
        && opaque.starts_with('"')
        && opaque.ends_with('"')
        && !opaque[1..opaque.len() - 1].contains('"');
    quoted.then(|| id.to_string())
}

/// `etag`: the entity-tag the event's own id carries, if any.
fn handle(ctx: &mut Ctx, event: Event, etag: Option<String>) -> Flow {
    let keep_going = match &*event.event {
        "message" if event.data.is_empty() => ctx.apply_push(
            Push {
                etag,
                ..Push::default()
            },
            SELF,
        ),
        "message" => ctx.apply_push(
            Push {
                etag,
                body: Some((event.into_text().into(), None)),
                ..Push::default()
            },
            SELF,
        ),
        // An `open` without data only starts the stream; the catch-up at connect covers it.
        "open" if event.data.is_empty() => true,
        "update" if event.data.is_empty() => ctx.catch_up(SELF),
        "open" | "update" => match headers_and_content(&event.text()) {
            Some((headers, content)) => {
                let push = Push {
                    headers: Vec::new(),
                    etag: header(&headers, "ETag").map(str::to_string).or(etag),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tag_ids() {
        assert_eq!(entity_tag("\"3\"").as_deref(), Some("\"3\""));
        assert_eq!(entity_tag("W/\"a-b\"").as_deref(), Some("W/\"a-b\""));
        for not in ["", "3", "\"", "\"a\"b\"", "W/3", "1796184825"] {
            assert_eq!(entity_tag(not), None, "{not}");
        }
    }
}
