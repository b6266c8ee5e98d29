//! A resource followed through a shared multiplex connection (`multiplex-ws`,
//! `multiplex-socket`, `multiplex-stream`, `multiplex-wait`): joins the endpoint's hub and turns
//! what the hub reports into events, catching up after every (re)connect.

use std::time::SystemTime;

use super::hub::{HubEvent, HubInput, Sub};
use super::{Ctx, Next};
use crate::error::Error;
use crate::event::{Status, Update};
use crate::mechanism::Mechanism;

/// Follows the resource through the hub for `mechanism` until shutdown or a fall back.
pub(super) fn run(ctx: &mut Ctx, mechanism: Mechanism) -> Next {
    let Some(offer) = ctx.caps.as_ref().and_then(|c| c.offer(mechanism)).cloned() else {
        return Next::Switch(ctx.choose_auto());
    };
    let endpoint = http_form(&offer.target);
    let (inbox, events) = std::sync::mpsc::channel();
    // In changes mode the server is asked for the feed from the held checkpoint.
    let changes = ctx.feed.is_some();
    let named = match ctx.feed.as_ref().and_then(|f| f.checkpoint.clone()) {
        Some(checkpoint) => checkpoint,
        None => ctx.url.clone(),
    };
    let sub = Sub {
        url: ctx.url.clone(),
        name: super::hub::uri_for(&endpoint, &named),
        changes,
        etag: ctx.etag.clone(),
        inbox,
    };
    let shared = std::sync::Arc::clone(&ctx.shared);
    let hub = shared
        .hubs
        .join(&shared, mechanism, &offer.rel, &endpoint, sub);
    let me = ctx.url.clone();
    let leave = |next: Next| {
        let _ = hub.send(HubInput::Unsubscribe(me.clone()));
        next
    };
    // The hub ends when following stops, and with it every inbox: then this ends too.
    while let Ok(event) = events.recv() {
        match event {
            HubEvent::Connected => {
                ctx.succeeded();
                ctx.trace(format!("subscribed over {mechanism} at {endpoint}"));
                if !ctx.catch_up(mechanism) {
                    return leave(Next::Stop);
                }
            }
            HubEvent::Push(push) => {
                let carried_on = if changes {
                    super::changes::apply_hub_push(ctx, *push, mechanism)
                } else {
                    ctx.apply_push(*push, mechanism)
                };
                if !carried_on {
                    return leave(Next::Stop);
                }
            }
            HubEvent::Hint => {
                if !ctx.catch_up(mechanism) {
                    return leave(Next::Stop);
                }
            }
            HubEvent::Refused(reason) => {
                if ctx.options.transport.is_some() {
                    ctx.fail(Error::Refused {
                        url: ctx.uri.clone(),
                        transport: mechanism.to_string(),
                        reason,
                    });
                    return leave(Next::Stop);
                }
                // Retrying cannot help: fall back at once.
                if let Some(next) = ctx.fall_back(mechanism, super::FALL_BACK_AFTER, &reason) {
                    return leave(next);
                }
            }
            HubEvent::Down { reason, failures } => {
                let _ = ctx.send(Update::Status(Status {
                    uri: ctx.uri.clone(),
                    transport: mechanism,
                    since: SystemTime::now(),
                    retries: failures,
                }));
                ctx.warn(format!("{reason}; reconnecting (attempt {failures})"));
                if let Some(next) = ctx.fall_back(mechanism, failures, &reason) {
                    return leave(next);
                }
            }
        }
        if !ctx.running() {
            return leave(Next::Stop);
        }
    }
    Next::Stop
}

/// The http(s) URL of an endpoint that may be advertised as ws(s): resources are compared and
/// named against it; the WebSocket hubs map it back.
pub(super) fn http_form(url: &url::Url) -> url::Url {
    let mut url = url.clone();
    let scheme = match url.scheme() {
        "ws" => "http",
        "wss" => "https",
        _ => return url,
    };
    // Changing between these special schemes cannot fail.
    let _ = url.set_scheme(scheme);
    url
}
