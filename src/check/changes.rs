//! Changes links: the answer to a checkpoint that has changes since carries a `changes` link
//! to the next checkpoint, so a client never receives the same changes twice. An answer that
//! stays at the checkpoint asked for (its link leads back, or its `Changes-Id` is the same) is
//! "nothing since", not a fault: the change may reach the feed later.

use std::time::{Duration, Instant};

use super::long_poll::{has_items, next_checkpoint};
use super::report::{Needs, NO_TRIGGER};
use url::Url;

use super::{Finding, Fired, Named, Probe, ProbeEnv, Requirement, REQUEST_TIMEOUT};
use crate::discovery::Capabilities;
use crate::http::Response;
use crate::mechanism::Mechanism;

/// The changes probe, when the resource offers a changes link.
pub(super) fn probes(caps: &Capabilities) -> Vec<Named> {
    if caps.offer(Mechanism::Changes).is_some() {
        vec![(Some(Mechanism::Changes), run)]
    } else {
        Vec::new()
    }
}

fn run(env: &ProbeEnv, probe: &mut Probe<'_>) -> Vec<Finding> {
    let m = Some(Mechanism::Changes);
    let checkpoint = env
        .caps
        .offer(Mechanism::Changes)
        .expect("made for an offered changes link")
        .target
        .clone();
    probe.arm();
    match env.fired() {
        Fired::Changed(_) => {}
        Fired::NoTrigger => {
            return vec![Finding::wanting(
                Requirement::ChangesAdvance,
                m,
                Needs::Trigger,
                NO_TRIGGER,
            )]
        }
        Fired::Failed(_) => {
            return vec![Finding::skip(
                Requirement::ChangesAdvance,
                m,
                "the trigger failed",
            )]
        }
    }
    let deadline = env.change_deadline();
    let mut last = None;
    // The last answer that carried changes but led back to the checkpoint asked for: what
    // a server whose checkpoints never move shows.
    let mut stuck = None;
    while Instant::now() < deadline {
        let (result, exchange) = env.get(&checkpoint, &[], REQUEST_TIMEOUT);
        match result {
            Ok((response, _)) if response.status == 200 && has_items(&response.body) => {
                let links: Vec<String> = response
                    .headers
                    .get_all("link")
                    .iter()
                    .map(|v| crate::http::header_text(v).into_owned())
                    .collect();
                let next = next_checkpoint(&links, &response.url);
                match since(env, &checkpoint, next.as_ref(), &response) {
                    Since::Moved(next) => {
                        return vec![Finding::pass(
                            Requirement::ChangesAdvance,
                            m,
                            format!("next: {next}"),
                        )]
                    }
                    Since::NoLink => {
                        return vec![Finding::fail(
                            Requirement::ChangesAdvance,
                            m,
                            "the changes came without a changes link to the next checkpoint",
                            Some(&exchange),
                        )]
                    }
                    // Not yet: the trigger's change may reach the feed later (the test
                    // server's feed moves on its own 3 s tick).
                    Since::NothingYet { linked_back } => {
                        stuck = linked_back.then(|| exchange.clone());
                        last = Some(exchange);
                    }
                }
            }
            _ => last = Some(exchange),
        }
        std::thread::sleep(Duration::from_millis(200).min(env.left()));
    }
    vec![match stuck {
        Some(exchange) => Finding::fail(
            Requirement::ChangesAdvance,
            m,
            format!(
                "the changes link still led back to {checkpoint} when the wait ended: the change made by the trigger never moved the checkpoint on"
            ),
            Some(&exchange),
        ),
        None => Finding::fail(
            Requirement::ChangesAdvance,
            m,
            "the change made by the trigger never appeared at the changes link",
            last.as_ref(),
        ),
    }]
}

/// What an answer at a checkpoint says about the changes since it.
#[derive(Debug, PartialEq, Eq)]
enum Since {
    /// Changes, and the checkpoint after them.
    Moved(Url),
    /// Nothing since the checkpoint asked for (whatever the body: the test server answers
    /// `{"time:change":"+0"}`); `linked_back` when a `changes` link said so.
    NothingYet { linked_back: bool },
    /// Changes without a `changes` link: a client cannot go on from them.
    NoLink,
}

/// Reads an answer at `asked` that has a body. The `changes` link decides where there is one
/// (2014 "Collections": the link names the checkpoint after the changes; one back to `asked`
/// moves nothing on), as the follower does: a server may repeat the asked checkpoint's
/// `Changes-Id` on an answer whose link moves on. Without a link, a `Changes-Id` equal to the
/// one the resource named at discovery (form B), or else an `ETag` equal to the resource's
/// then, says the checkpoint is where it was.
fn since(env: &ProbeEnv, asked: &Url, next: Option<&Url>, response: &Response) -> Since {
    if let Some(next) = next {
        return if next == asked {
            Since::NothingYet { linked_back: true }
        } else {
            Since::Moved(next.clone())
        };
    }
    let same = |name: &str, held: Option<&str>| matches!((response.header(name), held), (Some(now), Some(then)) if now.trim() == then.trim());
    let held_id = env.first.header("changes-id");
    let unmoved = if held_id.is_some() || response.header("changes-id").is_some() {
        same("changes-id", held_id)
    } else {
        same("etag", env.caps.etag.as_deref())
    };
    if unmoved {
        Since::NothingYet { linked_back: false }
    } else {
        Since::NoLink
    }
}
