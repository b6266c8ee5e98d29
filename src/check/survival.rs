//! "A subscription survives other clients": a push subscription and a long-poll held at once;
//! the long-poll ends; a change must still be pushed to the subscription.
//!
//! Servers that keep one list of listeners and remove a finished long-poll from it twice (the
//! second time at index -1, which in JavaScript removes the last listener) lose another
//! client's subscription this way, silently: the socket or stream stays open and nothing comes.
//! Checked in a phase of its own, over one push mechanism that delivered in the pushes phase,
//! so the loss shows here and only here.

use std::time::Duration;

use super::report::{Needs, NO_TRIGGER};
use super::sockets::Subscription;
use super::streams::Listening;
use super::{
    delivered, Exchange, Finding, Fired, Named, Probe, ProbeEnv, Requirement, REQUEST_TIMEOUT,
    SLACK,
};
use crate::discovery::Capabilities;
use crate::mechanism::Mechanism;

/// Push mechanisms in the order the survival check prefers them (sockets first: the loss is
/// most often seen there).
pub(super) const PUSHES: [Mechanism; 6] = [
    Mechanism::MultiplexWs,
    Mechanism::MultiplexSocket,
    Mechanism::ValueStream,
    Mechanism::ChangesStream,
    Mechanism::MultiplexStream,
    Mechanism::HintStream,
];

/// The wait of the long-poll that ends beside the subscription, in seconds.
const OTHER_WAIT: u64 = 1;

/// Whether the resource offers a long-poll another client could hold.
pub(super) fn has_long_poll(caps: &Capabilities) -> bool {
    (caps.offer(Mechanism::ValueWait).is_some() && caps.etag.is_some())
        || caps.offer(Mechanism::ChangesWait).is_some()
}

/// The survival probe over `mechanism`.
pub(super) fn probe_for(mechanism: Mechanism) -> Named {
    let run: super::ProbeFn = match mechanism {
        Mechanism::MultiplexWs => |env, probe| run(env, probe, Mechanism::MultiplexWs),
        Mechanism::MultiplexSocket => |env, probe| run(env, probe, Mechanism::MultiplexSocket),
        Mechanism::ValueStream => |env, probe| run(env, probe, Mechanism::ValueStream),
        Mechanism::ChangesStream => |env, probe| run(env, probe, Mechanism::ChangesStream),
        Mechanism::MultiplexStream => |env, probe| run(env, probe, Mechanism::MultiplexStream),
        _ => |env, probe| run(env, probe, Mechanism::HintStream),
    };
    (Some(mechanism), run)
}

/// A subscription over a socket or a stream.
enum Push {
    Socket(Box<Subscription>),
    Stream(Box<Listening>),
}

fn run(env: &ProbeEnv, probe: &mut Probe<'_>, mechanism: Mechanism) -> Vec<Finding> {
    let m = Some(mechanism);
    let skip = |why: String| vec![Finding::skip(Requirement::SurvivesOtherClients, m, why)];
    let opened = if matches!(
        mechanism,
        Mechanism::MultiplexWs | Mechanism::MultiplexSocket
    ) {
        Subscription::open(env, mechanism).map(|s| Push::Socket(Box::new(s)))
    } else {
        Listening::open(env, mechanism).map(|l| Push::Stream(Box::new(l)))
    };
    let mut push = match opened {
        Ok(p) => p,
        Err(why) => return skip(format!("could not subscribe again: {why}")),
    };
    // Another client's long-poll, held beside the subscription until it ends.
    let Some((ended, other)) = other_long_poll(env) else {
        return skip("no long-poll to hold beside it".into());
    };
    probe.arm();
    let (arrived, evidence) = match &mut push {
        Push::Socket(sub) => {
            let (arrived, pushed) = sub.wait_push(env);
            sub.close();
            (arrived.map(|(at, _)| at), sub.evidence(&pushed))
        }
        Push::Stream(listening) => {
            let arrived = listening.wait_change(env);
            (arrived, listening.evidence())
        }
    };
    match (arrived, env.fired()) {
        (Some(at), _) => {
            let mut f = delivered(env, mechanism, "a push arrived", at);
            f.requirement = Requirement::SurvivesOtherClients;
            f.detail = format!(
                "after another client's long-poll ended ({ended}): {}",
                f.detail
            );
            vec![f]
        }
        (None, Fired::Changed(_)) if !env.out_of_budget() => {
            let both = Exchange {
                request: format!(
                    "{}\n(meanwhile, another client:)\n{}",
                    evidence.request, other.request
                ),
                response: Some(format!(
                    "{}\n(the other client's long-poll:)\n{}",
                    evidence.response.unwrap_or_default(),
                    other.response.unwrap_or_default()
                )),
            };
            vec![Finding::fail(
                Requirement::SurvivesOtherClients,
                m,
                format!(
                    "another client's long-poll ended ({ended}), and then no push arrived after the trigger, though {mechanism} delivered alone: the server lost this subscription"
                ),
                Some(&both),
            )]
        }
        (None, Fired::Changed(_)) => skip("the budget ran out before the change arrived".into()),
        (None, Fired::NoTrigger) => vec![Finding::wanting(
            Requirement::SurvivesOtherClients,
            m,
            Needs::Trigger,
            NO_TRIGGER,
        )],
        (None, Fired::Failed(_)) => skip("the trigger failed".into()),
    }
}

/// Holds a short long-poll on the resource's current state, as another client would, until
/// it ends: how it ended, and the exchange. A long-poll the server does not hold (answered at
/// once) is not a listener it could mishandle: then the changes long-poll is held instead.
fn other_long_poll(env: &ProbeEnv) -> Option<(String, Exchange)> {
    // The state now, not at discovery: earlier phases changed it.
    let (now, _) = env.get(&env.url, &[], REQUEST_TIMEOUT);
    let (now, _) = now.ok()?;
    let caps = Capabilities::from_headers(&now.headers, &now.url);
    let wait = [
        ("Wait", OTHER_WAIT.to_string()),
        ("Prefer", format!("wait={OTHER_WAIT}")),
    ];
    let timeout = Duration::from_secs(OTHER_WAIT) + SLACK;
    let ended = |result: Result<(crate::http::Response, Duration), String>| match result {
        Ok((r, took)) => (
            format!("{} after {:.2}s", r.status, took.as_secs_f64()),
            took >= Duration::from_secs(OTHER_WAIT) / 2,
        ),
        Err(why) => (format!("no answer: {why}"), true),
    };
    let mut last = None;
    if let (Some(offer), Some(etag)) = (caps.offer(Mechanism::ValueWait), &caps.etag) {
        let mut headers = vec![("If-None-Match", etag.clone())];
        headers.extend(wait.iter().cloned());
        let (result, exchange) = env.get(&offer.target, &headers, timeout);
        let (how, held) = ended(result);
        if held {
            return Some((how, exchange));
        }
        last = Some((how, exchange));
    }
    if let Some(offer) = caps.offer(Mechanism::ChangesWait) {
        let (result, exchange) = env.get(&offer.target, &wait, timeout);
        let (how, _) = ended(result);
        return Some((how, exchange));
    }
    last
}
