//! The start-up gate: followers start from one launcher thread, at most `MAX_STARTING`
//! discovering their resource at once (each holds a thread until it has; thousands at once
//! would cost thousands of threads before any is parked); discovery, then `drive`.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use url::Url;

use super::ctx::{Ctx, Feed, Known, Repeats};
use super::queue::Updates;
use super::shutdown::Shutdown;
use super::{
    changes, drive, json_lines, live_sse, live_url, ws_url, Options, RequestOutcome, Shared,
    FOLLOWER_STACK,
};
use crate::backoff::Backoff;
use crate::discovery::Capabilities;
use crate::error::Error;
use crate::event::Update;
use crate::http::HttpClient;
use crate::live::Kind;
use crate::mechanism::Mechanism;

/// Starts a follower for each URL, at most `MAX_STARTING` discovering at once; runs on a
/// thread of its own (see [`super::Client::follow`]).
pub(super) fn launch(
    urls: Vec<Url>,
    http: HttpClient,
    options: Arc<Options>,
    tx: Arc<Updates>,
    shutdown: Arc<Shutdown>,
    shared: Arc<Shared>,
) {
    let starting = Arc::new(Starting::default());
    for url in urls {
        if shutdown.is_set() || !starting.acquire(&shutdown) {
            return;
        }
        let ctx = Ctx {
            uri: url.as_str().into(),
            url: url.clone(),
            location: url.clone(),
            moved_for_good: false,
            json_seen: false,
            unsettled: false,
            verified: Instant::now(),
            renamed: None,
            missed: 0,
            http: http.clone(),
            options: Arc::clone(&options),
            tx: Arc::clone(&tx),
            shutdown: Arc::clone(&shutdown),
            shared: Arc::clone(&shared),
            fell_back: HashMap::new(),
            feed: None,
            known: Known::Unknown,
            etag: None,
            last_modified: None,
            caps: None,
            backoff: Backoff::default(),
            repeats: Repeats::default(),
            transport: Mechanism::Poll,
            since: SystemTime::now(),
        };
        let permit = Permit(Arc::clone(&starting));
        let spawned = std::thread::Builder::new()
            .name(format!("follow {url}"))
            .stack_size(FOLLOWER_STACK)
            .spawn(move || follow_resource(ctx, permit));
        if let Err(e) = spawned {
            let _ = tx.send(Update::Failed(Error::Setup(format!(
                "cannot start a thread to follow {url}: {e}"
            ))));
        }
    }
}

/// How many followers may be discovering their resource at once.
const MAX_STARTING: usize = 32;

/// The followers starting now (see [`launch`]).
#[derive(Debug, Default)]
struct Starting {
    count: Mutex<usize>,
    done: Condvar,
}

impl Starting {
    /// Waits for room to start one more; false when following stopped first.
    fn acquire(&self, shutdown: &Shutdown) -> bool {
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        while *count >= MAX_STARTING {
            if shutdown.is_set() {
                return false;
            }
            // Woken when one is done; the timeout only notices a shutdown.
            count = self
                .done
                .wait_timeout(count, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *count += 1;
        true
    }
}

/// A starting follower's room, given back when it is dropped (its discovery is over).
#[derive(Debug)]
struct Permit(Arc<Starting>);

impl Drop for Permit {
    fn drop(&mut self) {
        *self.0.count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.0.done.notify_one();
    }
}

/// One resource from discovery to the end.
fn follow_resource(mut ctx: Ctx, permit: Permit) {
    let url = ctx.url.clone();
    // The room to start is given back once discovery is over, or when the server says to
    // come back later: a resource that waits to retry must not hold back the others.
    let mut permit = Some(permit);
    // Discovery: the first GET. Failing to get any answer at all is fatal (the URL is
    // probably wrong); an HTTP error status is retried, as the server may be starting.
    let response = loop {
        if !ctx.running() {
            return;
        }
        ctx.trace(format!("GET {url}"));
        // A live URL (an event stream, JSON lines, a WebSocket) is told from the head.
        let answer = match live_url::discover(&ctx, &url) {
            Ok(live_url::Discovered::Live(opened)) => {
                drop(permit);
                return follow_live(ctx, opened);
            }
            Ok(live_url::Discovered::Document(r)) => Ok(r),
            Err(e) => Err(e),
        };
        match answer {
            Ok(r) if matches!(r.status, 200..=299 | 404 | 410) => break r,
            Ok(r) => {
                permit = None;
                if matches!(ctx.retry_response(&r), RequestOutcome::Stop) {
                    return;
                }
            }
            // No usable answer: unreachable, a head or body over the limits, redirects
            // that lead nowhere.
            Err(e) => {
                ctx.fail(e.into_error(&url));
                return;
            }
        }
    };
    ctx.backoff.reset();
    ctx.relocate(&response);
    let caps = ctx
        .read_caps(&response)
        .unwrap_or_else(|| Capabilities::from_headers(&response.headers, &response.url));
    ctx.trace(format!(
        "{}; ETag {}; links: {}",
        response.status,
        caps.etag.as_deref().unwrap_or("none"),
        describe_links(&caps)
    ));
    for error in &caps.links.errors {
        ctx.warn(format!("ignoring a malformed Link header: {error}"));
    }
    let offered = caps.offered_names();
    if (200..300).contains(&response.status) && changes::wanted(&ctx, &caps, &response.body) {
        ctx.trace("following the changes feed".to_string());
        ctx.feed = Some(Feed::seed(&response, &caps));
    }
    let mechanism = match ctx.options.transport {
        Some(forced) => {
            if caps.offer(forced).is_none() {
                ctx.fail(Error::TransportNotOffered {
                    url: url.to_string(),
                    wanted: forced.to_string(),
                    offered,
                });
                return;
            }
            forced
        }
        None => ctx.choose_auto(),
    };
    ctx.trace(format!(
        "transport {mechanism} ({}; offered: {})",
        if ctx.options.transport.is_some() {
            "forced"
        } else {
            "auto"
        },
        offered.join(", ")
    ));
    ctx.emit_from(response, mechanism, true);
    // Held for as long as the resource is followed otherwise, on each of its threads.
    drop(caps);
    drop(permit);
    ctx.enter(mechanism);
    drive::drive(ctx, mechanism);
}

fn describe_links(caps: &Capabilities) -> String {
    if caps.links.links.is_empty() {
        return "none".to_string();
    }
    caps.links
        .links
        .iter()
        .map(|l| format!("<{}> {}", l.target, l.rels.join(" ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Follows a live URL given directly until it is done, fails, or following stops. A forced
/// transport is an error: such a URL offers none (it is not followed as asked, silently).
fn follow_live(ctx: Ctx, opened: live_url::Opened) {
    let (transport, kind) = match &opened {
        live_url::Opened::WebSocket => (Mechanism::WebSocket, Kind::WebSocket),
        live_url::Opened::EventStream(_) => (Mechanism::EventStream, Kind::EventStream),
        live_url::Opened::Lines { seq: true, .. } => (Mechanism::JsonLines, Kind::JsonSeq),
        live_url::Opened::Lines { seq: false, .. } => (Mechanism::JsonLines, Kind::JsonLines),
    };
    if let Some(forced) = ctx.options.transport {
        ctx.fail(Error::TransportOnLiveUrl {
            url: ctx.url.to_string(),
            wanted: forced.to_string(),
            what: kind.describe().to_string(),
        });
        return;
    }
    ctx.trace(format!(
        "transport {transport} (a live URL given directly: each message is one event)"
    ));
    match opened {
        live_url::Opened::WebSocket => ws_url::run(ctx),
        live_url::Opened::EventStream(body) => live_sse::run(ctx, body),
        live_url::Opened::Lines { seq, body } => json_lines::run(ctx, seq, body),
    }
}
