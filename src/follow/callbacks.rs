//! Webhooks (REST Hooks): `value-callback`, `changes-callback` and `multiplex-callbacks`.
//! lrwatch subscribes by POSTing `callback_uri=` to the advertised endpoint, receives the
//! notifications on a small local HTTP listener, and DELETEs every subscription when
//! following ends, whichever way it ends.
//!
//! A subscription still being made when following ends (Ctrl-C while its `POST` is in
//! flight: the server may have made it already) is waited for, a few seconds at most, and
//! removed like the others.
//!
//! A notification is accepted only when its path carries the secret token lrwatch made for
//! this run and a subscription id it handed out, and its `Location` names the resource that
//! subscription follows; bodies are bounded by the listener (1 MiB), also once decoded (a
//! `gzip` or `deflate` delivery; other content codings are refused with 415). At most
//! [`MAX_CONNECTIONS`] connections are served at once: the least recently active is closed to
//! make room for a new one.

use std::collections::HashMap;
use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use url::Url;

use super::hub::HubEvent;
use super::{Ctx, Next, Push, Shared};
use crate::error::Error;
use crate::event::{Level, Notice};
use crate::http::HttpClient;
use crate::http1::{serve_connection, Reply, Request, Response, MAX_BODY};
use crate::mechanism::Mechanism;

/// How long a subscription or unsubscription request may take.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a notification connection may sit idle.
const IDLE: Duration = Duration::from_secs(30);
/// The most notification connections served at once, each on a thread of its own. A server
/// notifies over one or a few; without a cap, anyone who can reach the listener holds a
/// thread (and up to a request's buffers) per connection it opens and leaves idle.
pub(crate) const MAX_CONNECTIONS: usize = 32;
/// Stack for a connection's thread: it parses a request and hands the body on.
const CONNECTION_STACK: usize = 256 * 1024;
/// Notifications that may wait for one follower (see `run`).
const INBOX: usize = 64;
/// How long following's end waits for subscriptions still being made, to remove them too:
/// long enough for a server that is merely slow, short enough that Ctrl-C stays prompt.
const SETTLE: Duration = Duration::from_secs(3);

/// The local listener and the subscriptions it serves.
#[derive(Debug)]
pub(crate) struct Receiver {
    addr: SocketAddr,
    /// Where servers are told to POST: `--callback-url`, else `http://<listen address>/`.
    base: Url,
    /// A random path segment: only someone told the callback URL can notify.
    token: String,
    subs: Mutex<Subscriptions>,
    /// Signalled whenever a subscription in flight settles (made or given up).
    settled: Condvar,
    /// Notifications handed to their follower whose answer is not written yet: lrwatch may
    /// stop the moment a follower has the event (`--count`), and a sender whose connection is
    /// cut before its `204` counts the delivery as failed.
    answering: Arc<Answering>,
}

#[derive(Debug, Default)]
struct Subscriptions {
    next: u64,
    by_id: HashMap<u64, Registered>,
    phase: Phase,
}

/// Where following stands, for subscriptions made or being made.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Subscribing as needed.
    #[default]
    Open,
    /// Following has ended and waits (at most `SETTLE`) for subscriptions in flight: no new
    /// one starts; one that completes now is removed with the rest.
    Closing,
    /// Everything known was removed: a subscription that completes now is removed by the
    /// follower that made it.
    Closed,
}

#[derive(Debug)]
struct Registered {
    resource: Url,
    /// Where it was POSTed (to say which subscription is awaited).
    endpoint: Url,
    inbox: SyncSender<HubEvent>,
    /// The subscription's `Location`, to DELETE when following ends; none while the `POST`
    /// is in flight.
    location: Option<Url>,
}

impl Receiver {
    /// Listens on `listen` (loopback unless told otherwise); `public` is the URL servers
    /// should POST to, when it is not the listener's own.
    pub(crate) fn start(listen: &str, public: Option<&Url>) -> std::io::Result<Arc<Receiver>> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let base = match public {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{addr}/")).map_err(std::io::Error::other)?,
        };
        let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let receiver = Arc::new(Receiver {
            addr,
            base,
            token,
            subs: Mutex::new(Subscriptions::default()),
            settled: Condvar::new(),
            answering: Arc::default(),
        });
        let serving = Arc::clone(&receiver);
        let connections = Arc::new(Connections::default());
        std::thread::Builder::new()
            .name("callbacks".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    // At the cap with every connection in a request: this one is closed.
                    let Some(id) = connections.admit(&stream) else {
                        continue;
                    };
                    let (receiver, connections) = (Arc::clone(&serving), Arc::clone(&connections));
                    let gone = Arc::clone(&connections);
                    let spawned = std::thread::Builder::new()
                        .name("callback".into())
                        .stack_size(CONNECTION_STACK)
                        .spawn(move || {
                            serve_connection(stream, IDLE, &|request| {
                                connections.busy(id, true);
                                let reply = receiver.handle(request);
                                connections.busy(id, false);
                                reply
                            });
                            connections.remove(id);
                        });
                    if spawned.is_err() {
                        gone.remove(id);
                    }
                }
            })?;
        Ok(receiver)
    }

    /// The address the listener is bound to.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Subscriptions> {
        self.subs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new subscription's id and the callback URL that names it, registered before it is
    /// POSTed so that following's end knows it is in flight; none once following has ended.
    fn register(
        &self,
        resource: Url,
        endpoint: Url,
        inbox: SyncSender<HubEvent>,
    ) -> Option<(u64, Url)> {
        let mut subs = self.lock();
        if subs.phase != Phase::Open {
            return None;
        }
        subs.next += 1;
        let id = subs.next;
        subs.by_id.insert(
            id,
            Registered {
                resource,
                endpoint,
                inbox,
                location: None,
            },
        );
        let path = format!("{}/{id}", self.token);
        let url = self.base.join(&path).unwrap_or_else(|_| self.base.clone());
        Some((id, url))
    }

    /// Records where a subscription lives; false when following has already ended and no
    /// longer waits for it: the caller removes it itself.
    fn set_location(&self, id: u64, location: Url) -> bool {
        let mut subs = self.lock();
        let open = subs.phase != Phase::Closed;
        let kept = match subs.by_id.get_mut(&id) {
            Some(sub) if open => {
                sub.location = Some(location);
                true
            }
            _ => false,
        };
        drop(subs);
        self.settled.notify_all();
        kept
    }

    /// A subscription that was not made (refused, or no Location to remove it by).
    fn forget(&self, id: u64) {
        self.lock().by_id.remove(&id);
        self.settled.notify_all();
    }

    /// Unsubscribes everything (DELETE on each subscription's Location), in parallel, each
    /// bounded in time. Subscriptions still in flight are waited for first, at most `SETTLE`
    /// (each said to `note`): the server may have made one whose `201` is still on its way.
    /// One not answered by then cannot be removed, for want of its Location: if the server
    /// makes it, it stays until the server drops it (REST Hooks servers drop subscriptions
    /// whose notifications fail, as they will with nobody listening). Calling it again does
    /// nothing.
    pub(crate) fn unsubscribe_all(&self, http: &HttpClient, note: &dyn Fn(Notice)) {
        self.answering.wait(ANSWER_GRACE);
        let mut subs = self.lock();
        if subs.phase == Phase::Open {
            subs.phase = Phase::Closing;
        }
        let in_flight = |subs: &Subscriptions| subs.by_id.values().any(|s| s.location.is_none());
        if subs.phase == Phase::Closing && in_flight(&subs) {
            for sub in subs.by_id.values().filter(|s| s.location.is_none()) {
                note(Notice {
                    uri: sub.resource.as_str().into(),
                    level: Level::Trace,
                    message: format!(
                        "waiting up to {} s for the webhook subscription being made at {}, to remove it",
                        SETTLE.as_secs(),
                        sub.endpoint
                    ),
                });
            }
            let deadline = Instant::now() + SETTLE;
            while in_flight(&subs) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                subs = self
                    .settled
                    .wait_timeout(subs, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            for sub in subs.by_id.values().filter(|s| s.location.is_none()) {
                note(Notice {
                    uri: sub.resource.as_str().into(),
                    level: Level::Warn,
                    message: format!(
                        "the webhook subscription at {} was not answered within {} s; if the server made it, it stays there until the server drops it",
                        sub.endpoint,
                        SETTLE.as_secs()
                    ),
                });
            }
        }
        subs.phase = Phase::Closed;
        let locations: Vec<(Url, Url)> = subs
            .by_id
            .drain()
            .filter_map(|(_, s)| s.location.map(|l| (l, s.resource)))
            .collect();
        drop(subs);
        std::thread::scope(|scope| {
            for (location, resource) in &locations {
                scope.spawn(move || {
                    // A DELETE can be repeated: once more if a pooled connection had gone stale.
                    let delete =
                        || http.submit("DELETE", location, resource, None, Duration::from_secs(3));
                    if delete().is_err() {
                        let _ = delete();
                    }
                });
            }
        });
    }

    /// One notification: checked, then handed to its follower.
    fn handle(&self, request: &Request) -> Reply {
        let mut parts = request.path.trim_start_matches('/').splitn(2, '/');
        let (token, id) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if token != self.token {
            return Response::error(404, "no such callback").into();
        }
        if request.method != "POST" {
            return Response::error(405, "notifications are POSTed")
                .header("Allow", "POST")
                .into();
        }
        let subs = self.lock();
        let Some(sub) = id.parse::<u64>().ok().and_then(|id| subs.by_id.get(&id)) else {
            // REST Hooks: 410 tells the sender to drop a subscription nobody follows.
            return Response::error(410, "no such subscription").into();
        };
        let named = request
            .header("location")
            .and_then(|l| sub.resource.join(l).ok());
        if !named.is_some_and(|l| same_resource(&l, &sub.resource)) {
            return Response::error(
                403,
                "the Location is not the resource this subscription follows",
            )
            .into();
        }
        let body = match decode(request) {
            Ok(body) => body,
            Err(refusal) => return refusal.into(),
        };
        let body =
            (!body.is_empty()).then(|| (body, request.header("content-type").map(str::to_string)));
        let push = Push {
            etag: request.header("etag").map(str::to_string),
            previous_etag: request.header("previous-etag").map(str::to_string),
            body,
            headers: request.headers.clone(),
        };
        // Sent without the lock held: a full inbox holds this delivery (and so the sender)
        // back until the follower takes events again, which it may need the lock for.
        let inbox = sub.inbox.clone();
        drop(subs);
        // Counted before the follower can have it, so that stopping waits for the answer.
        self.answering.start();
        match inbox.send(HubEvent::Push(Box::new(push))) {
            Ok(()) => {
                let answering = Arc::clone(&self.answering);
                Reply::Then(Response::new(204), Box::new(move || answering.done()))
            }
            Err(_) => {
                self.answering.done();
                Response::error(410, "no longer followed").into()
            }
        }
    }
}

/// How long stopping waits for the answers to notifications already handed to followers.
const ANSWER_GRACE: Duration = Duration::from_secs(1);

/// How many notifications are between being handed to their follower and their answer
/// being written.
#[derive(Debug, Default)]
struct Answering {
    pending: Mutex<usize>,
    idle: Condvar,
}

impl Answering {
    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start(&self) {
        *self.lock() += 1;
    }

    fn done(&self) {
        let mut pending = self.lock();
        *pending = pending.saturating_sub(1);
        if *pending == 0 {
            self.idle.notify_all();
        }
    }

    /// Waits until every answer owed is written, at most `grace`.
    fn wait(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let mut pending = self.lock();
        while *pending > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            pending = self
                .idle
                .wait_timeout(pending, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The connections being served, so that there are never more than [`MAX_CONNECTIONS`].
#[derive(Debug, Default)]
struct Connections {
    open: Mutex<OpenConnections>,
}

#[derive(Debug, Default)]
struct OpenConnections {
    next: u64,
    by_id: HashMap<u64, Connection>,
}

#[derive(Debug)]
struct Connection {
    /// A handle on the socket, to close it from outside its thread.
    stream: TcpStream,
    /// When it was accepted or last finished a request.
    active: Instant,
    /// Whether a request of it is being handled now.
    busy: bool,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, OpenConnections> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes room for a new connection and registers it: at the cap, the least recently
    /// active connection not in a request is shut down (its thread then ends). `None` when
    /// every one is in a request: the new one is not served.
    fn admit(&self, stream: &TcpStream) -> Option<u64> {
        let handle = stream.try_clone().ok()?;
        let mut open = self.lock();
        if open.by_id.len() >= MAX_CONNECTIONS {
            let oldest = open
                .by_id
                .iter()
                .filter(|(_, c)| !c.busy)
                .min_by_key(|(_, c)| c.active)
                .map(|(id, _)| *id)?;
            if let Some(closed) = open.by_id.remove(&oldest) {
                let _ = closed.stream.shutdown(Shutdown::Both);
            }
        }
        open.next += 1;
        let id = open.next;
        open.by_id.insert(
            id,
            Connection {
                stream: handle,
                active: Instant::now(),
                busy: false,
            },
        );
        Some(id)
    }

    /// Marks a connection as in a request (or done with one).
    fn busy(&self, id: u64, busy: bool) {
        if let Some(c) = self.lock().by_id.get_mut(&id) {
            c.busy = busy;
            c.active = Instant::now();
        }
    }

    fn remove(&self, id: u64) {
        self.lock().by_id.remove(&id);
    }
}

/// A notification's body with its content codings undone (`gzip`, `x-gzip`, `deflate`,
/// `identity`, applied in the order listed), bounded like an unencoded one; or the refusal:
/// 415 for a coding not understood (with `Accept-Encoding` saying which are), 413 when the
/// decoded body is over the limit, 400 when it does not decode.
fn decode(request: &Request) -> Result<Vec<u8>, Response> {
    let codings: Vec<String> = request
        .header_values("content-encoding")
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    if codings.is_empty() {
        return Ok(request.body.clone());
    }
    let unsupported = |coding: &str| {
        Response::error(415, &format!("content coding '{coding}' is not supported"))
            .header("Accept-Encoding", "gzip, deflate")
    };
    // A body coded more than twice is no honest sender's; each layer could multiply the size.
    if codings.len() > 2 {
        return Err(unsupported(&codings.join(", ")));
    }
    let mut body = request.body.clone();
    for coding in codings.iter().rev() {
        let limit = MAX_BODY as u64 + 1;
        let mut decoded = Vec::new();
        let read = match coding.as_str() {
            "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(&body[..])
                .take(limit)
                .read_to_end(&mut decoded),
            // RFC 9110's "deflate" is the zlib format; some senders send raw deflate.
            "deflate" if zlib_header(&body) => flate2::read::ZlibDecoder::new(&body[..])
                .take(limit)
                .read_to_end(&mut decoded),
            "deflate" => flate2::read::DeflateDecoder::new(&body[..])
                .take(limit)
                .read_to_end(&mut decoded),
            other => return Err(unsupported(other)),
        };
        if read.is_err() {
            return Err(Response::error(
                400,
                &format!("the body does not decode as {coding}"),
            ));
        }
        if decoded.len() > MAX_BODY {
            return Err(Response::error(
                413,
                "the decoded body is larger than 1 MiB",
            ));
        }
        body = decoded;
    }
    Ok(body)
}

/// Whether `body` starts with a zlib header (RFC 1950: method 8, check bits).
fn zlib_header(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => cmf & 0x0f == 8 && u16::from_be_bytes([*cmf, *flg]) % 31 == 0,
        _ => false,
    }
}

/// Whether a notification's `Location` names the followed resource: same origin and path
/// (the query of the followed URL may carry a client's own switches).
fn same_resource(location: &Url, resource: &Url) -> bool {
    location.origin() == resource.origin() && location.path() == resource.path()
}

impl Shared {
    /// The run's callback receiver, started on first use.
    fn receiver(&self) -> std::io::Result<Arc<Receiver>> {
        let mut slot = self.callbacks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(receiver) = slot.as_ref() {
            return Ok(Arc::clone(receiver));
        }
        let listen = self
            .options
            .callback_listen
            .as_deref()
            .unwrap_or("127.0.0.1:0");
        let receiver = Receiver::start(listen, self.options.callback_url.as_ref())?;
        *slot = Some(Arc::clone(&receiver));
        Ok(receiver)
    }
}

/// Follows the resource through webhook notifications until following stops or a fall back.
pub(super) fn run(ctx: &mut Ctx, mechanism: Mechanism) -> Next {
    let Some(offer) = ctx.caps.as_ref().and_then(|c| c.offer(mechanism)).cloned() else {
        return Next::Switch(ctx.choose_auto());
    };
    let receiver = match ctx.shared.receiver() {
        Ok(r) => r,
        Err(e) => {
            let listen = ctx
                .options
                .callback_listen
                .clone()
                .unwrap_or_else(|| "127.0.0.1:0".into());
            return ctx.fail(Error::Setup(format!(
                "cannot listen for callbacks on {listen}: {e}"
            )));
        }
    };
    ctx.trace(format!(
        "listening for callbacks on http://{}/",
        receiver.addr()
    ));
    let changes = ctx.feed.is_some();
    // Bounded: deliveries that come faster than the follower (and the printer behind it) takes
    // them wait, and so does the server that sends them.
    let (inbox, events) = std::sync::mpsc::sync_channel(INBOX);
    let Some((id, callback)) = receiver.register(ctx.url.clone(), offer.target.clone(), inbox)
    else {
        // Following has ended: subscribe no more.
        return Next::Stop;
    };
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("callback_uri", callback.as_str());
    if mechanism == Mechanism::MultiplexCallbacks {
        form.append_pair("uri", ctx.url.as_str());
    }
    let form = form.finish();
    ctx.trace(format!("POST {} callback_uri={callback}", offer.target));
    let mut subscription = None;
    let refused = match ctx.http.submit(
        "POST",
        &offer.target,
        &ctx.url,
        Some(&form),
        SUBSCRIBE_TIMEOUT,
    ) {
        Ok(r) if r.status == 201 || r.status == 200 => {
            match r.header("location").and_then(|l| offer.target.join(l).ok()) {
                Some(location) => {
                    ctx.trace(format!("subscribed: {location}"));
                    subscription = Some(location.clone());
                    if !receiver.set_location(id, location.clone()) {
                        // Following ended, and gave up waiting for this answer: nobody
                        // else will remove the subscription.
                        let _ = ctx.http.submit(
                            "DELETE",
                            &location,
                            &ctx.url,
                            None,
                            Duration::from_secs(3),
                        );
                        return Next::Stop;
                    }
                    None
                }
                None => Some("the subscription was answered without a Location".to_string()),
            }
        }
        Ok(r) => Some(format!("HTTP {} subscribing", r.status)),
        Err(e) => Some(e.to_string()),
    };
    if let Some(reason) = refused {
        receiver.forget(id);
        if ctx.options.transport.is_some() {
            return ctx.fail(Error::Refused {
                url: ctx.uri.to_string(),
                transport: mechanism.to_string(),
                reason,
            });
        }
        return ctx
            .fall_back(mechanism, super::FALL_BACK_AFTER, &reason)
            .unwrap_or(Next::Switch(Mechanism::Poll));
    }
    ctx.succeeded();
    // Anything that changed before the subscription took effect.
    if !ctx.catch_up(mechanism) {
        return Next::Stop;
    }
    loop {
        let wait = ctx.verify_in().unwrap_or(Duration::MAX);
        let event = match events.recv_timeout(wait) {
            Ok(event) => event,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => match ctx.verify(mechanism) {
                super::Verified::Fine => continue,
                super::Verified::Stop => break,
                // The server forgot the subscription, or its notifications do not reach us:
                // replace it with a new one.
                super::Verified::Missed => {
                    receiver.forget(id);
                    if let Some(location) = &subscription {
                        ctx.trace(format!("DELETE {location}"));
                        let _ = ctx.http.submit(
                            "DELETE",
                            location,
                            &ctx.url,
                            None,
                            Duration::from_secs(3),
                        );
                    }
                    return Next::Switch(mechanism);
                }
            },
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let carried_on = match event {
            HubEvent::Push(push) if changes => {
                super::changes::apply_hub_push(ctx, *push, mechanism)
            }
            HubEvent::Push(push) => ctx.apply_push(*push, mechanism),
            _ => true,
        };
        if !carried_on || !ctx.running() {
            break;
        }
    }
    Next::Stop
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn closing_waits_for_a_subscription_in_flight_and_hands_back_a_late_one() {
        let receiver = Receiver::start("127.0.0.1:0", None).unwrap();
        let http = HttpClient::new(Vec::new(), 1024, None);
        let (inbox, _events) = std::sync::mpsc::sync_channel(INBOX);
        let resource = url("http://127.0.0.1:9/r");
        let (id, _) = receiver
            .register(resource.clone(), url("http://127.0.0.1:9/hooks"), inbox)
            .unwrap();
        let (noted, notes) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let closing = scope.spawn(|| {
                receiver.unsubscribe_all(&http, &move |n| {
                    let _ = noted.send(n.level);
                });
            });
            // Settles while closing waits: kept, to be removed by the closer (its DELETE to
            // a closed port fails at once).
            let waiting = notes.recv_timeout(Duration::from_secs(10));
            assert_eq!(waiting, Ok(Level::Trace));
            assert!(receiver.set_location(id, url("http://127.0.0.1:9/hooks/1")));
            closing.join().unwrap();
        });
        assert!(notes.try_recv().is_err(), "no warning");
        // After closing, nothing more subscribes, and a late answer is the caller's to remove.
        let (inbox, _events) = std::sync::mpsc::sync_channel(INBOX);
        assert!(receiver
            .register(resource, url("http://127.0.0.1:9/hooks"), inbox)
            .is_none());
        assert!(!receiver.set_location(id, url("http://127.0.0.1:9/hooks/2")));
    }
}
