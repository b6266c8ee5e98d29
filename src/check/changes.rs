//! Changes links: the answer to a checkpoint that has changes since carries a `changes` link
//! to the next checkpoint, so a client never receives the same changes twice.

use std::time::{Duration, Instant};

use super::long_poll::{has_items, next_checkpoint};
use super::report::{Needs, NO_TRIGGER};
use super::{Finding, Fired, Named, Probe, ProbeEnv, Requirement, REQUEST_TIMEOUT};
use crate::discovery::Capabilities;
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
                return vec![match next_checkpoint(&links, &response.url) {
                    None => Finding::fail(
                        Requirement::ChangesAdvance,
                        m,
                        "the changes came without a changes link to the next checkpoint",
                        Some(&exchange),
                    ),
                    Some(next) if next == checkpoint => Finding::fail(
                        Requirement::ChangesAdvance,
                        m,
                        format!(
                            "the changes since {checkpoint} link back to the same checkpoint: a client would get them again"
                        ),
                        Some(&exchange),
                    ),
                    Some(next) => Finding::pass(Requirement::ChangesAdvance, m, format!("next: {next}")),
                }];
            }
            _ => last = Some(exchange),
        }
        std::thread::sleep(Duration::from_millis(200).min(env.left()));
    }
    vec![Finding::fail(
        Requirement::ChangesAdvance,
        m,
        "the change made by the trigger never appeared at the changes link",
        last.as_ref(),
    )]
}
