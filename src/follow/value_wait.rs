//! The `value-wait` transport: long-polling with `If-None-Match` and a wait, in every form
//! (`Wait: N` for forms A and B, `Prefer: wait=N` for form C; both are always sent).

use std::time::Duration;

use super::{Ctx, Next, RequestOutcome};
use crate::mechanism::Mechanism;

const SELF: Mechanism = Mechanism::ValueWait;

/// Long-polls until shutdown, or until `auto` should move to another mechanism.
pub(super) fn run(ctx: &mut Ctx) -> Next {
    let wait = ctx.options.long_poll_wait();
    let requested = Duration::from_secs(wait);
    let mut warned_early = false;
    // The last long-poll was held for its whole wait and answered "no news".
    let mut held_out = false;
    // Long-polls in a row that got no answer at all (see `Ctx::long_poll`).
    let mut unanswered = 0;
    loop {
        if let Some(better) = ctx.better_than(SELF) {
            return Next::Switch(better);
        }
        // The link may move or vanish with any full response; follow what is advertised now.
        let target = match ctx.caps.as_ref().and_then(|c| c.offer(SELF)) {
            Some(offer) => offer.target.clone(),
            None if ctx.options.transport.is_none() => return Next::Switch(ctx.choose_auto()),
            // Forced, and the resource stopped advertising it (or is gone): keep waiting on the
            // resource itself, which a removed resource answers with 404 until it is back.
            None => ctx.resource_url(),
        };
        if ctx.options.transport.is_none() && ctx.etag.is_none() {
            return Next::Switch(ctx.choose_auto());
        }
        let mut headers = vec![
            ("Wait", wait.to_string()),
            ("Prefer", format!("wait={wait}")),
        ];
        if let Some(etag) = &ctx.etag {
            headers.push(("If-None-Match", etag.clone()));
        }
        let (response, took) = match ctx.long_poll(
            SELF,
            &target,
            &headers,
            requested + super::wait_slack(requested),
            &mut unanswered,
        ) {
            Err(next) => return next,
            Ok(RequestOutcome::Response(r, took)) => (r, took),
            Ok(RequestOutcome::Retry) => continue,
            Ok(RequestOutcome::Stop) => return Next::Stop,
        };
        let status = response.status;
        if !super::understood(status) {
            match ctx.retry_response(&response) {
                RequestOutcome::Stop => return Next::Stop,
                _ => continue,
            }
        }
        let changed = status != 304 && ctx.apply(response, SELF, false).unwrap_or(false);
        ctx.succeeded();
        let early = wait == 0 || took < requested / 2;
        // A change answered at once right after a long-poll that was held to its end without
        // news happened while that one was held: the server did not answer it (servers forget
        // held long-polls). Asking again at once recovered it; the wait is no longer than
        // `--verify`, so that is soon.
        if changed && early && held_out {
            ctx.report_missed(
                SELF,
                "the held long-poll ran out, the next one had the change at once",
            );
        }
        held_out = !changed && !early;
        // A server that ignores the wait answers at once with no news (304, the same value, or
        // a 404 for a removed resource): asking again at once would spin. Slow to the polling
        // period instead, as the protocol asks. A change answered at once is normal.
        if early && !changed {
            if !warned_early && status == 304 {
                warned_early = true;
                ctx.warn(format!(
                    "the server answered a {wait}s long-poll after {:.3}s; asking every {:.1}s instead",
                    took.as_secs_f64(),
                    ctx.poll_period().as_secs_f64()
                ));
            }
            if !ctx.sleep(ctx.poll_period()) {
                return Next::Stop;
            }
        }
    }
}
