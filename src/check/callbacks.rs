//! Webhooks (`value-callback`, `changes-callback`, `multiplex-callbacks`), exercised when
//! `--callback-listen` or `--callback-url` says where notifications can be received: check
//! subscribes (201 and a `Location`), the trigger changes the resource, the notification
//! must arrive and name the resource in its `Location`; then check `DELETE`s the
//! subscription, runs the trigger once more, and no notification may follow.
//!
//! Notifications are received on a small listener of the check's own, on paths carrying a
//! random token, one per mechanism; it lives as long as the probe.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

use super::report::{Needs, NO_TRIGGER};
use super::{
    names, run_trigger, subject, uri_for, CheckOptions, Exchange, Finding, Fired, Named, Probe,
    ProbeEnv, Requirement, REQUEST_TIMEOUT, TRIGGER_TIMEOUT,
};
use crate::discovery::Capabilities;
use crate::http1::{serve_connection, Request, Response};
use crate::mechanism::Mechanism;

/// The webhook mechanisms, in the order they are reported.
const CALLBACKS: [Mechanism; 3] = [
    Mechanism::ValueCallback,
    Mechanism::ChangesCallback,
    Mechanism::MultiplexCallbacks,
];
/// How long a notification connection may sit idle.
const IDLE: Duration = Duration::from_secs(5);
/// The most notification connections served at once.
const MAX_CONNECTIONS: usize = 16;
/// How long check listens for a notification after `DELETE` (and the trigger), at least.
const QUIET_MIN: Duration = Duration::from_secs(2);
/// ... and at most.
const QUIET_MAX: Duration = Duration::from_secs(5);
/// The most notifications kept: a server that floods the listener is not kept in memory.
const MAX_KEPT: usize = 256;
/// How often the listener looks at its stop flag.
const TICK: Duration = Duration::from_millis(20);

fn offered(caps: &Capabilities) -> Vec<Mechanism> {
    CALLBACKS
        .into_iter()
        .filter(|m| caps.offer(*m).is_some())
        .collect()
}

fn enabled(options: &CheckOptions) -> bool {
    options.callback_listen.is_some() || options.callback_url.is_some()
}

/// The webhook probe, when webhooks are offered and a way to receive them was given.
pub(super) fn probes(caps: &Capabilities, options: &CheckOptions) -> Vec<Named> {
    if enabled(options) && !offered(caps).is_empty() {
        vec![(offered(caps).first().copied(), run)]
    } else {
        Vec::new()
    }
}

/// SKIPs for offered webhooks when no way to receive them was given, saying which flag does.
pub(super) fn skipped(caps: &Capabilities, options: &CheckOptions) -> Vec<Finding> {
    if enabled(options) {
        return Vec::new();
    }
    offered(caps)
        .into_iter()
        .map(|m| {
            Finding::wanting(
                Requirement::CallbackSubscribe,
                Some(m),
                Needs::Webhooks,
                "no address to receive notifications at was given",
            )
        })
        .collect()
}

/// One notification received.
#[derive(Debug, Clone)]
struct Notification {
    /// The path it was sent to.
    path: String,
    location: Option<String>,
    body: Vec<u8>,
    at: Instant,
}

impl Notification {
    /// The notification as evidence: its request line, Location and the start of its body.
    fn shown(&self) -> String {
        format!(
            "POST {}\nlocation: {}\n\n{}",
            self.path,
            self.location.as_deref().unwrap_or("(none)"),
            String::from_utf8_lossy(&self.body[..self.body.len().min(400)])
        )
    }
}

/// The listener: notifications received, until it is dropped.
struct Inbox {
    received: Arc<Mutex<Vec<Notification>>>,
    stop: Arc<AtomicBool>,
    /// Where servers are told to POST.
    base: Url,
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Inbox {
    fn start(options: &CheckOptions) -> Result<Inbox, String> {
        let addr = options.callback_listen.as_deref().unwrap_or("127.0.0.1:0");
        let listener =
            TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let root = match &options.callback_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{local}/")).map_err(|e| e.to_string())?,
        };
        let base = root
            .join(&format!("lrwatch-check-{token}/"))
            .map_err(|e| e.to_string())?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (inbox, flag) = (Arc::clone(&received), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("lrwatch-check-hooks".into())
            .spawn(move || accept(&listener, &inbox, &flag, &token))
            .map_err(|e| e.to_string())?;
        Ok(Inbox {
            received,
            stop,
            base,
        })
    }

    /// The callback URL for a mechanism.
    fn url_for(&self, mechanism: Mechanism) -> Url {
        self.base
            .join(mechanism.as_str())
            .unwrap_or_else(|_| self.base.clone())
    }

    /// Notifications to `mechanism`'s callback URL that arrived after `since`.
    fn since(&self, mechanism: Mechanism, since: Instant) -> Vec<Notification> {
        let suffix = format!("/{}", mechanism.as_str());
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|n| n.at >= since && n.path.ends_with(&suffix))
            .cloned()
            .collect()
    }
}

/// Accepts notification connections until told to stop.
fn accept(
    listener: &TcpListener,
    inbox: &Arc<Mutex<Vec<Notification>>>,
    stop: &Arc<AtomicBool>,
    token: &str,
) {
    let open = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::SeqCst) {
        let stream: TcpStream = match listener.accept() {
            Ok((s, _)) => s,
            Err(_) => {
                std::thread::sleep(TICK);
                continue;
            }
        };
        if open.load(Ordering::SeqCst) >= MAX_CONNECTIONS || stream.set_nonblocking(false).is_err()
        {
            continue;
        }
        let (inbox, count, prefix) = (
            Arc::clone(inbox),
            Arc::clone(&open),
            format!("/lrwatch-check-{token}/"),
        );
        open.fetch_add(1, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name("lrwatch-check-hook".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                serve_connection(stream, IDLE, &|request: &Request| {
                    if request.method != "POST" || !request.path.contains(&prefix) {
                        return Response::new(404).into();
                    }
                    let mut kept = inbox.lock().unwrap_or_else(|e| e.into_inner());
                    if kept.len() >= MAX_KEPT {
                        return Response::new(503).into();
                    }
                    kept.push(Notification {
                        path: request.path.clone(),
                        location: request.header("location").map(str::to_string),
                        body: request.body.clone(),
                        at: Instant::now(),
                    });
                    Response::new(204).into()
                });
                count.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A subscription made.
struct Subscribed {
    mechanism: Mechanism,
    /// The subscription's `Location`, resolved.
    location: Url,
}

fn run(env: &ProbeEnv, probe: &mut Probe<'_>) -> Vec<Finding> {
    let mechanisms = offered(&env.caps);
    let mut out = Vec::new();
    let inbox = match Inbox::start(&env.options) {
        Ok(inbox) => inbox,
        Err(why) => {
            return mechanisms
                .into_iter()
                .map(|m| Finding::skip(Requirement::CallbackSubscribe, Some(m), why.clone()))
                .collect()
        }
    };
    let mut subscribed = Vec::new();
    for m in mechanisms {
        match subscribe(env, &inbox, m) {
            Ok((s, detail)) => {
                out.push(Finding::pass(
                    Requirement::CallbackSubscribe,
                    Some(m),
                    detail,
                ));
                subscribed.push(s);
            }
            Err((why, x)) => {
                out.push(Finding::fail(
                    Requirement::CallbackSubscribe,
                    Some(m),
                    why,
                    Some(&x),
                ));
                out.push(Finding::skip(
                    Requirement::ChangeDelivered,
                    Some(m),
                    "not subscribed",
                ));
            }
        }
    }
    probe.arm();
    let skip_rest = |out: &mut Vec<Finding>, why: &str, needs: Option<Needs>| {
        for s in &subscribed {
            let m = Some(s.mechanism);
            for r in [
                Requirement::ChangeDelivered,
                Requirement::CallbackLocation,
                Requirement::CallbackUnsubscribe,
            ] {
                out.push(Finding {
                    needs,
                    ..Finding::skip(r, m, why)
                });
            }
        }
    };
    let fired_at = match env.fired() {
        Fired::Changed(at) => at,
        Fired::NoTrigger => {
            skip_rest(&mut out, NO_TRIGGER, Some(Needs::Trigger));
            unsubscribe_all(env, &subscribed);
            return out;
        }
        Fired::Failed(_) => {
            skip_rest(&mut out, "the trigger failed", None);
            unsubscribe_all(env, &subscribed);
            return out;
        }
    };
    let started = env.trigger_started().unwrap_or(fired_at);
    // Deliveries, each waited for until the change's deadline.
    let deadline = env.change_deadline();
    let mut latency = Duration::ZERO;
    let mut delivered = Vec::new();
    for s in &subscribed {
        let m = Some(s.mechanism);
        let note = loop {
            if let Some(n) = inbox.since(s.mechanism, started).into_iter().next() {
                break Some(n);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(TICK);
        };
        let callback = inbox.url_for(s.mechanism);
        match note {
            Some(n) => {
                let took = n.at.saturating_duration_since(started);
                latency = latency.max(took);
                out.push(Finding::pass(
                    Requirement::ChangeDelivered,
                    m,
                    format!(
                        "a notification arrived {:.2}s after the trigger started",
                        took.as_secs_f64()
                    ),
                ));
                out.push(location(env, s.mechanism, &n, &callback));
                delivered.push(s.mechanism);
            }
            None => {
                let x = Exchange {
                    request: format!("(subscribed {callback} at {})", s.location),
                    response: Some("(no notification)".into()),
                };
                out.push(if env.out_of_budget() {
                    Finding::skip(
                        Requirement::ChangeDelivered,
                        m,
                        "the budget ran out before the change arrived",
                    )
                } else {
                    Finding::fail(
                        Requirement::ChangeDelivered,
                        m,
                        "no notification arrived after the trigger",
                        Some(&x),
                    )
                });
                out.push(Finding::skip(
                    Requirement::CallbackLocation,
                    m,
                    "no notification",
                ));
            }
        }
    }
    // Unsubscribe, change again, and listen for what should no longer come.
    let mut deleted = Vec::new();
    for s in &subscribed {
        let (status, x) = delete(env, &s.location);
        match status {
            Some(st) if (200..300).contains(&st) => deleted.push((s, st)),
            _ => out.push(Finding::fail(
                Requirement::CallbackUnsubscribe,
                Some(s.mechanism),
                format!(
                    "DELETE of the subscription was answered {}",
                    status.map_or("not at all".into(), |s| s.to_string())
                ),
                Some(&x),
            )),
        }
    }
    if deleted.is_empty() {
        return out;
    }
    let command = env.options.trigger.clone().unwrap_or_default();
    let after = Instant::now();
    match run_trigger(&command, env.bounded(TRIGGER_TIMEOUT)) {
        Ok(took) => out.push(Finding::pass(
            Requirement::Trigger,
            None,
            format!(
                "webhooks, after DELETE: exit 0 after {:.2}s",
                took.as_secs_f64()
            ),
        )),
        Err((why, output)) => {
            let x = Exchange {
                request: format!("sh -c {command}"),
                response: Some(output),
            };
            out.push(Finding::fail(
                Requirement::Trigger,
                None,
                format!("webhooks, after DELETE: {why}"),
                Some(&x),
            ));
            for (s, _) in deleted {
                out.push(Finding::skip(
                    Requirement::CallbackUnsubscribe,
                    Some(s.mechanism),
                    "the trigger failed",
                ));
            }
            return out;
        }
    }
    // Long enough for a notification as slow as the first ones, several times over.
    let quiet = (latency * 3).clamp(QUIET_MIN, QUIET_MAX);
    let until = (Instant::now() + quiet).min(env.deadline);
    while Instant::now() < until {
        std::thread::sleep(TICK);
    }
    for (s, status) in deleted {
        let m = Some(s.mechanism);
        let late = inbox.since(s.mechanism, after);
        out.push(if let Some(n) = late.first() {
            let x = Exchange {
                request: format!("DELETE {}  (answered {status}), then the trigger", s.location),
                response: Some(n.shown()),
            };
            Finding::fail(
                Requirement::CallbackUnsubscribe,
                m,
                format!(
                    "{} notification(s) arrived after DELETE of the subscription was answered {status}",
                    late.len()
                ),
                Some(&x),
            )
        } else if !delivered.contains(&s.mechanism) {
            Finding::skip(
                Requirement::CallbackUnsubscribe,
                m,
                "nothing was delivered before the DELETE either",
            )
        } else {
            Finding::pass(
                Requirement::CallbackUnsubscribe,
                m,
                format!(
                    "DELETE answered {status}; nothing arrived in {:.1}s after the next change",
                    quiet.as_secs_f64()
                ),
            )
        });
    }
    out
}

/// POSTs the subscription; what was made, or why not.
fn subscribe(
    env: &ProbeEnv,
    inbox: &Inbox,
    mechanism: Mechanism,
) -> Result<(Subscribed, String), (String, Exchange)> {
    let endpoint = env
        .caps
        .offer(mechanism)
        .expect("made for offered mechanisms")
        .target
        .clone();
    let callback = inbox.url_for(mechanism);
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("callback_uri", callback.as_str());
    if mechanism == Mechanism::MultiplexCallbacks {
        // Named as the texts name resources: by path on the endpoint's own origin.
        let (subject, _) = subject(env);
        form.append_pair("uri", &uri_for(&endpoint, &subject));
    }
    let form = form.finish();
    let mut exchange = Exchange::new(
        "POST",
        &endpoint,
        &[("Content-Type", "application/x-www-form-urlencoded".into())],
    );
    exchange.request.push_str(&format!("\n\n{form}"));
    let response = env
        .http
        .submit(
            "POST",
            &endpoint,
            &env.url,
            Some(&form),
            env.bounded(REQUEST_TIMEOUT),
        )
        .map_err(|e| {
            let why = format!("no answer: {e}");
            (why.clone(), exchange.clone().with_text(why))
        })?;
    let exchange = exchange.with_response(&response);
    if !(200..300).contains(&response.status) {
        return Err((format!("answered {}", response.status), exchange));
    }
    let Some(location) = response
        .header("location")
        .and_then(|l| endpoint.join(l.trim()).ok())
    else {
        return Err((
            format!(
                "answered {} without a Location: the subscription cannot be deleted",
                response.status
            ),
            exchange,
        ));
    };
    let detail = format!("{}; Location {location}", response.status);
    Ok((
        Subscribed {
            mechanism,
            location,
        },
        detail,
    ))
}

/// The notification names the resource (or the changes link subscribed to).
fn location(env: &ProbeEnv, mechanism: Mechanism, n: &Notification, callback: &Url) -> Finding {
    let m = Some(mechanism);
    let (subject, _) = subject(env);
    // The resource, its changes link, or the resource without its query (a server's own
    // switches, such as the reference server's `?form=`, need not be repeated).
    let mut bare = env.first.url.clone();
    bare.set_query(None);
    let named = n.location.as_deref().is_some_and(|l| {
        [&env.first.url, &env.url, &subject, &bare]
            .iter()
            .any(|u| names(&env.first.url, l, u))
    });
    if named {
        return Finding::pass(
            Requirement::CallbackLocation,
            m,
            n.location.clone().unwrap_or_default(),
        );
    }
    let x = Exchange {
        request: format!("(the notification to {callback})"),
        response: Some(n.shown()),
    };
    Finding::fail(
        Requirement::CallbackLocation,
        m,
        match &n.location {
            Some(l) => format!(
                "the notification's Location {l:?} does not name {}",
                env.url
            ),
            None => "the notification has no Location: a client cannot tell which resource changed"
                .into(),
        },
        Some(&x),
    )
}

/// `DELETE`s a subscription: the status, if answered, and the exchange.
fn delete(env: &ProbeEnv, location: &Url) -> (Option<u16>, Exchange) {
    let exchange = Exchange::new("DELETE", location, &[]);
    match env.http.submit(
        "DELETE",
        location,
        &env.url,
        None,
        env.bounded(REQUEST_TIMEOUT),
    ) {
        Ok(r) => (Some(r.status), exchange.with_response(&r)),
        Err(e) => (None, exchange.with_text(format!("(no answer: {e})"))),
    }
}

fn unsubscribe_all(env: &ProbeEnv, subscribed: &[Subscribed]) {
    for s in subscribed {
        let _ = delete(env, &s.location);
    }
}
