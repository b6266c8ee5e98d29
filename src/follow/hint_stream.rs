//! The `hint-stream` transport: Server-Sent Events that only say "it changed"; each hint is
//! followed by one conditional GET of the resource.

use super::sse::{self, Flow};
use super::{Ctx, Next};
use crate::mechanism::Mechanism;

const SELF: Mechanism = Mechanism::HintStream;

/// Follows the hint stream until shutdown or a fall back.
pub(super) fn run(ctx: &mut Ctx) -> Next {
    sse::run(ctx, SELF, |ctx, event| {
        // The opening event carries no news: the catch-up at connect already fetched.
        if event.event == "open" || ctx.catch_up(SELF) {
            Flow::Continue
        } else {
            Flow::Stop
        }
    })
}
