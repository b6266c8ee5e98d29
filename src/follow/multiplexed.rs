//! A resource followed through a shared multiplex connection (`multiplex-ws`,
//! `multiplex-socket`, `multiplex-stream`, `multiplex-wait`): joins the endpoint's hub and turns
//! what the hub reports into events, catching up after every (re)connect. The follower is
//! parked on the hub (see `parked`) rather than holding a thread of its own.

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::SystemTime;

use url::Url;

use super::hub::{http_form, HubEvent, HubInput, Inbox, Sub};
use super::{Ctx, Next};
use crate::error::Error;
use crate::event::{Status, Update};
use crate::mechanism::Mechanism;

/// A follower's place in a hub.
#[derive(Debug)]
pub(super) struct Joined {
    mechanism: Mechanism,
    endpoint: Url,
    /// Whether it follows the changes feed rather than the value.
    changes: bool,
    /// Where the resource lived when it was named to the server (value mode).
    named_at: Url,
    hub: Sender<HubInput>,
}

impl Joined {
    /// Subscribes the resource through the hub for `mechanism`, its events to go to `inbox`;
    /// what to do instead when the resource does not offer it.
    pub(super) fn join(
        ctx: &mut Ctx,
        mechanism: Mechanism,
        inbox: Arc<dyn Inbox>,
    ) -> Result<Joined, Next> {
        let Some(offer) = ctx.caps.as_ref().and_then(|c| c.offer(mechanism)).cloned() else {
            return Err(Next::Switch(ctx.choose_auto()));
        };
        let endpoint = http_form(&offer.target);
        // In changes mode the server is asked for the feed from the held checkpoint.
        let changes = ctx.feed.is_some();
        let named = match ctx.feed.as_ref().and_then(|f| f.checkpoint.clone()) {
            Some(checkpoint) => checkpoint,
            // Named where it lives: after a redirect the server pushes only under that name.
            None => ctx.location.clone(),
        };
        // A socket's members are checked together (`--verify`) where the resource also offers a
        // multiplexed long-poll: one request for them all instead of a GET each.
        let socket = matches!(
            mechanism,
            Mechanism::MultiplexWs | Mechanism::MultiplexSocket
        );
        let check = ctx
            .caps
            .as_ref()
            .and_then(|c| c.offer(Mechanism::MultiplexWait))
            .filter(|_| socket && !changes)
            .map(|o| (http_form(&o.target), o.rel.clone()));
        let sub = Sub {
            url: ctx.url.clone(),
            name: super::hub::uri_for(&endpoint, &named),
            changes,
            etag: ctx.etag.clone(),
            inbox,
            check,
        };
        let shared = Arc::clone(&ctx.shared);
        let hub = shared
            .hubs
            .join(&shared, mechanism, &offer.rel, &endpoint, sub);
        Ok(Joined {
            mechanism,
            endpoint,
            changes,
            named_at: ctx.location.clone(),
            hub,
        })
    }

    /// Handles one event from the hub; what to do next when the follower leaves the hub (it
    /// has unsubscribed by then).
    pub(super) fn handle(&self, ctx: &mut Ctx, event: HubEvent) -> Option<Next> {
        let mechanism = self.mechanism;
        match event {
            HubEvent::Connected => {
                // Acknowledged, not yet shown to work: a socket that closes after each ack
                // is a run of failures (see `websocket::run`).
                ctx.connected();
                ctx.trace(format!("subscribed over {mechanism} at {}", self.endpoint));
                if !ctx.catch_up(mechanism) {
                    return Some(self.leave(ctx, Next::Stop));
                }
                // A temporary redirect is asked again at each catch-up: when it now leads
                // elsewhere, the server pushes under the new name only, so subscribe under it.
                if !self.changes && ctx.location != self.named_at && ctx.may_rename() {
                    ctx.trace(format!(
                        "the resource moved to {}; subscribing under its new name",
                        ctx.location
                    ));
                    return Some(self.leave(ctx, Next::Switch(mechanism)));
                }
            }
            HubEvent::Push(push) => {
                ctx.failures_over();
                let carried_on = if self.changes {
                    super::changes::apply_hub_push(ctx, *push, mechanism)
                } else {
                    ctx.apply_push(*push, mechanism)
                };
                if !carried_on {
                    return Some(self.leave(ctx, Next::Stop));
                }
            }
            HubEvent::Hint => {
                ctx.failures_over();
                if !ctx.catch_up(mechanism) {
                    return Some(self.leave(ctx, Next::Stop));
                }
            }
            HubEvent::Trace(line) => ctx.trace(line),
            HubEvent::Verify => {
                let began = std::time::Instant::now();
                match ctx.verify(mechanism) {
                    super::Verified::Fine => {}
                    super::Verified::Missed => {
                        let _ = self.hub.send(HubInput::Reconnect(began));
                    }
                    super::Verified::Stop => return Some(self.leave(ctx, Next::Stop)),
                }
            }
            // Forced, a message over the limit stops with the limit named as such (the
            // binary says which option raises it); under auto, the resource falls back.
            HubEvent::TooLarge(what) if ctx.options.transport.is_some() => {
                ctx.fail(Error::TooLarge {
                    url: ctx.uri.to_string(),
                    what,
                });
                return Some(self.leave(ctx, Next::Stop));
            }
            HubEvent::Refused(reason) | HubEvent::TooLarge(reason) => {
                if ctx.options.transport.is_some() {
                    ctx.fail(Error::Refused {
                        url: ctx.uri.to_string(),
                        transport: mechanism.to_string(),
                        reason,
                    });
                    return Some(self.leave(ctx, Next::Stop));
                }
                // Retrying cannot help: fall back at once.
                if let Some(next) = ctx.fall_back(mechanism, super::FALL_BACK_AFTER, &reason) {
                    return Some(self.leave(ctx, next));
                }
            }
            HubEvent::Down { reason, failures } => {
                let _ = ctx.send(Update::Status(Status {
                    uri: ctx.uri.clone(),
                    transport: mechanism,
                    since: SystemTime::now(),
                    retries: failures,
                }));
                ctx.warn_failure(
                    failures,
                    format!("{reason}; reconnecting (attempt {failures})"),
                );
                if let Some(next) = ctx.fall_back(mechanism, failures, &reason) {
                    return Some(self.leave(ctx, next));
                }
            }
        }
        if !ctx.running() {
            return Some(self.leave(ctx, Next::Stop));
        }
        None
    }

    fn leave(&self, ctx: &Ctx, next: Next) -> Next {
        let _ = self.hub.send(HubInput::Unsubscribe(ctx.url.clone()));
        next
    }
}
