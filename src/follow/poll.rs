//! Plain polling, for any URL: conditional GETs (`If-None-Match`, else `If-Modified-Since`),
//! else a body comparison, every `--interval`, else `X-Poll-Interval`, else 5 s.

use super::{Ctx, Next, RequestOutcome};
use crate::mechanism::Mechanism;

const SELF: Mechanism = Mechanism::Poll;

/// Polls until shutdown, or until `auto` finds a better mechanism advertised.
pub(super) fn run(ctx: &mut Ctx) -> Next {
    loop {
        if !ctx.sleep(ctx.poll_period()) {
            return Next::Stop;
        }
        let mut headers = Vec::new();
        if let Some(etag) = &ctx.etag {
            headers.push(("If-None-Match", etag.clone()));
        } else if let Some(date) = &ctx.last_modified {
            headers.push(("If-Modified-Since", date.clone()));
        }
        let url = ctx.resource_url();
        let response = match ctx.fetch(&url, &headers, None) {
            RequestOutcome::Response(r, _) => r,
            RequestOutcome::Retry => continue,
            RequestOutcome::Stop => return Next::Stop,
        };
        if !super::understood(response.status) {
            if let RequestOutcome::Stop = ctx.retry_response(&response) {
                return Next::Stop;
            }
            continue;
        }
        if response.status != 304 {
            ctx.relocate(&response);
            ctx.apply(response, SELF, false);
        }
        ctx.succeeded();
        if let Some(better) = ctx.better_than(SELF) {
            return Next::Switch(better);
        }
    }
}
